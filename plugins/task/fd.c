// SPDX-License-Identifier: Apache-2.0
// Giving up descriptors a crash snapshot may name (see fd.h).
#include "fd.h"

/* One host per process: every instance of the plugin gets the same one. */
static cshim_host_t *task_fd_host;

void
task_fd_use_host(cshim_host_t *host)
{
  task_fd_host = host;
}

void
task_fd_close(int *fd)
{
  if (*fd >= 0)
    cshim_host_close_fd(task_fd_host, *fd);
  *fd = -1;
}
