// SPDX-License-Identifier: Apache-2.0
// The host's log sink: whole lines to a non-blocking descriptor, drops counted, never blocking.
#define _GNU_SOURCE
#include "log.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>

#include <cshim/util.h>

static void
write_cb(void *data, int level, const char *line, size_t len)
{
  host_log_t *log = data;
  ssize_t r;
  (void)level;

  r = CSHIM_RETRY_EINTR(write(log->fd, line, len));
  /* A partial line is still better than none; a full pipe (EAGAIN) or no reader (EPIPE, with
     SIGPIPE ignored) loses the line, which is counted rather than blocking the loop. */
  if (r < 0)
    log->dropped++;
  else
    log->lines++;
}

void
host_log_init(host_log_t *log, int fd, int level, const char *fields)
{
  memset(log, 0, sizeof *log);
  log->fd = fd;
  log->base.struct_size = sizeof log->base;
  log->base.write = write_cb;
  log->base.data = log;
  log->base.level = level;
  log->base.fields = fields;
}

int
host_log_parse_level(const char *name)
{
  static const struct
  {
    const char *name;
    int level;
  } levels[] = {
      {"trace", CSHIM_LOG_TRACE}, {"debug", CSHIM_LOG_DEBUG},  {"info", CSHIM_LOG_INFO},
      {"warn", CSHIM_LOG_WARN},   {"warning", CSHIM_LOG_WARN}, {"error", CSHIM_LOG_ERROR},
      {"fatal", CSHIM_LOG_FATAL},
  };
  for (size_t i = 0; i < sizeof levels / sizeof levels[0]; i++)
    if (strcmp(name, levels[i].name) == 0)
      return levels[i].level;
  return -1;
}
