// SPDX-License-Identifier: Apache-2.0
// Giving up a descriptor that a state document may name: through the host, which keeps it open
// while a crash snapshot still names it (docs/live-upgrade.md, "Crash survival").
#ifndef TASK_FD_H
#define TASK_FD_H

#include <cshim/host.h>

/* The host every later task_fd_close goes through (borrowed until replaced; NULL: close at
   once). Set by the plugin's init. */
void task_fd_use_host(cshim_host_t *host);
/* Give up *fd (nothing when it is < 0) and set it to -1. */
void task_fd_close(int *fd);

#endif
