// SPDX-License-Identifier: Apache-2.0
// The host's log sink: logrus text lines to a file descriptor (the bundle's `log` FIFO or stderr).
#ifndef HOST_LOG_H
#define HOST_LOG_H

#include <stdint.h>

#include <cshim/log.h>

typedef struct host_log_s
{
  cshim_logger_t base; /* handed out as the host's logger */
  int fd;
  uint64_t lines;
  uint64_t dropped; /* lines lost because nobody was reading (full pipe, EPIPE) */
} host_log_t;

/* Log to fd at the given level; fields (copied by reference: must outlive the logger) are
   appended to every line. Writes never block: a line that does not fit is counted as dropped. */
void host_log_init(host_log_t *log, int fd, int level, const char *fields);

/* Parse "trace|debug|info|warn|warning|error|fatal"; -1 if unknown. */
int host_log_parse_level(const char *name);

#endif
