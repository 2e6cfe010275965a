// SPDX-License-Identifier: Apache-2.0
// Logging in containerd's logrus text format, through a sink the host provides.
#ifndef CSHIM_LOG_H
#define CSHIM_LOG_H

#include <stddef.h>
#include <stdint.h>

#include <cshim/error.h>
#include <cshim/struct_size.h>

#ifdef __cplusplus
extern "C" {
#endif

enum cshim_log_level
{
  CSHIM_LOG_TRACE = 0,
  CSHIM_LOG_DEBUG,
  CSHIM_LOG_INFO,
  CSHIM_LOG_WARN,
  CSHIM_LOG_ERROR,
  CSHIM_LOG_FATAL,
};

/* Where log lines go. The host owns every logger it hands out (valid until the plugin's
   close returns). Called on the loop thread only. */
typedef struct cshim_logger_s cshim_logger_t;
struct cshim_logger_s
{
  uint32_t struct_size; /* sizeof (cshim_logger_t) where it was filled */
  /* Receives one complete line (with trailing newline); must not block. */
  void (*write)(void *data, int level, const char *line, size_t len);
  void *data;
  int level; /* lines below this level are not formatted at all */
  const char
      *fields; /* extra logrus fields appended to every line, e.g. `plugin=task`; may be NULL */
};

/* Size in SDK 1.0: cshim_log drops the lines of a logger with a smaller struct_size, saying
   so once on stderr. */
#define CSHIM_LOGGER_SIZE_1_0 CSHIM_SIZE_THROUGH(cshim_logger_t, fields)

/* Format and emit one line:
   time="2026-01-02T03:04:05.123456789Z" level=info msg="text" <fields>
   The message is quoted and escaped as logrus does. NULL logger: no-op. */
void cshim_log(const cshim_logger_t *log, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Format one logrus text line into buf (always NUL-terminated, truncated to size). Returns the
   length written (without NUL). The time is the current wall-clock time in UTC. */
size_t cshim_log_format(char *buf, size_t size, int level, const char *msg, const char *fields);

/* fields (may be NULL or "") with ` key=value` appended, the value quoted and escaped as
   logrus's text formatter does when it is not all of [A-Za-z0-9-._/@^+]. Caller frees. */
char *cshim_log_fields_append(const char *fields, const char *key, const char *value);

/* "trace", "debug", "info", "warning", "error", "fatal"; static. */
const char *cshim_log_level_name(int level);

/* Handle an error by logging it: one line "<context>: <message>" at level (fmt formats the
   context), then release *err and set it to NULL. For an error that goes no further (a cleanup
   that failed, an event that could not be sent); an error that is returned is not also logged.
   *err may be NULL ("unknown error" is logged); a NULL logger only releases it. */
void cshim_error_log_release(cshim_error_t *err, const cshim_logger_t *log, int level,
                             const char *fmt, ...) __attribute__((format(printf, 4, 5)));

#define cshim_log_debug(l, ...) cshim_log((l), CSHIM_LOG_DEBUG, __VA_ARGS__)
#define cshim_log_info(l, ...) cshim_log((l), CSHIM_LOG_INFO, __VA_ARGS__)
#define cshim_log_warn(l, ...) cshim_log((l), CSHIM_LOG_WARN, __VA_ARGS__)
#define cshim_log_error(l, ...) cshim_log((l), CSHIM_LOG_ERROR, __VA_ARGS__)

#ifdef __cplusplus
}
#endif
#endif
