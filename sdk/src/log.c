// SPDX-License-Identifier: Apache-2.0
// Log line formatting in logrus's text format (what containerd's own shims write).
#define _GNU_SOURCE
#include <cshim/log.h>

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cshim/util.h>

const char *
cshim_log_level_name(int level)
{
  switch (level) {
  case CSHIM_LOG_TRACE:
    return "trace";
  case CSHIM_LOG_DEBUG:
    return "debug";
  case CSHIM_LOG_INFO:
    return "info";
  case CSHIM_LOG_WARN:
    return "warning";
  case CSHIM_LOG_ERROR:
    return "error";
  default:
    return "fatal";
  }
}

struct buf
{
  char *p;
  size_t size, len;
};

static void
put(struct buf *b, const char *s, size_t n)
{
  /* Keep one byte for the NUL; silently truncate. */
  if (b->len + 1 >= b->size)
    return;
  if (n > b->size - 1 - b->len)
    n = b->size - 1 - b->len;
  memcpy(b->p + b->len, s, n);
  b->len += n;
  b->p[b->len] = '\0';
}

static void
puts_(struct buf *b, const char *s)
{
  put(b, s, strlen(s));
}

/* logrus quotes a value unless every byte is in [A-Za-z0-9-._/@^+]. */
static bool
needs_quoting(const char *s)
{
  for (; *s; s++) {
    unsigned char c = (unsigned char)*s;
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
          strchr("-._/@^+", c)))
      return true;
  }
  return false;
}

/* Go's %q for the subset that matters in log lines. */
static void
put_quoted(struct buf *b, const char *s)
{
  put(b, "\"", 1);
  for (; *s; s++) {
    unsigned char c = (unsigned char)*s;
    char esc[8];
    switch (c) {
    case '"':
      put(b, "\\\"", 2);
      break;
    case '\\':
      put(b, "\\\\", 2);
      break;
    case '\n':
      put(b, "\\n", 2);
      break;
    case '\r':
      put(b, "\\r", 2);
      break;
    case '\t':
      put(b, "\\t", 2);
      break;
    default:
      if (c < 0x20 || c == 0x7f) {
        snprintf(esc, sizeof esc, "\\x%02x", c);
        puts_(b, esc);
      } else
        put(b, (const char *)&c, 1);
    }
  }
  put(b, "\"", 1);
}

size_t
cshim_log_format(char *out, size_t size, int level, const char *msg, const char *fields)
{
  struct buf b = {out, size, 0};
  struct timespec ts;
  struct tm tm;
  char stamp[64];

  if (size == 0)
    return 0;
  out[0] = '\0';
  clock_gettime(CLOCK_REALTIME, &ts);
  gmtime_r(&ts.tv_sec, &tm);
  snprintf(stamp, sizeof stamp, "%04d-%02d-%02dT%02d:%02d:%02d.%09ldZ", tm.tm_year + 1900,
           tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec);

  puts_(&b, "time=\"");
  puts_(&b, stamp);
  puts_(&b, "\" level=");
  puts_(&b, cshim_log_level_name(level));
  puts_(&b, " msg=");
  if (needs_quoting(msg) || msg[0] == '\0')
    put_quoted(&b, msg);
  else
    puts_(&b, msg);
  if (fields && *fields) {
    puts_(&b, " ");
    puts_(&b, fields);
  }
  /* A line always ends in a newline, even when truncated. */
  if (b.len + 1 >= size)
    b.len = size >= 2 ? size - 2 : 0;
  out[b.len++] = '\n';
  out[b.len] = '\0';
  return b.len;
}

char *
cshim_log_fields_append(const char *fields, const char *key, const char *value)
{
  /* Quoting at most doubles a byte (or makes it \xNN): four times the length always fits. */
  size_t size = (fields ? strlen(fields) : 0) + strlen(key) + 4 * strlen(value) + 8;
  struct buf b = {cshim_xmalloc(size), size, 0};

  b.p[0] = '\0';
  if (fields && *fields) {
    puts_(&b, fields);
    puts_(&b, " ");
  }
  puts_(&b, key);
  puts_(&b, "=");
  if (needs_quoting(value) || value[0] == '\0')
    put_quoted(&b, value);
  else
    puts_(&b, value);
  return b.p;
}

/* A logger filled without struct_size (or by code older than SDK 1.0) cannot be trusted past
   its first members: say so once, on stderr (the shim's log when containerd started it). */
static void
warn_bad_logger(const cshim_logger_t *log)
{
  static bool warned;

  if (warned)
    return;
  warned = true;
  fprintf(stderr,
          "cshim: logger with struct_size %u, smaller than %zu, its size in cshim SDK 1.0 (fill "
          "it with designated initialisers and .struct_size = sizeof (cshim_logger_t)): log "
          "lines dropped\n",
          log->struct_size, (size_t)CSHIM_LOGGER_SIZE_1_0);
}

void
cshim_log(const cshim_logger_t *log, int level, const char *fmt, ...)
{
  char msg[2048];
  char line[4096];
  va_list ap;
  size_t n;

  if (log == NULL || log->write == NULL || level < log->level)
    return;
  if (log->struct_size < CSHIM_LOGGER_SIZE_1_0) {
    warn_bad_logger(log);
    return;
  }
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  n = cshim_log_format(line, sizeof line, level, msg, log->fields);
  log->write(log->data, level, line, n);
}

void
cshim_error_log_release(cshim_error_t *err, const cshim_logger_t *log, int level, const char *fmt,
                        ...)
{
  char context[1024];
  va_list ap;

  va_start(ap, fmt);
  vsnprintf(context, sizeof context, fmt, ap);
  va_end(ap);
  cshim_log(log, level, "%s: %s", context, *err && (*err)->msg ? (*err)->msg : "unknown error");
  cshim_error_release(err);
}
