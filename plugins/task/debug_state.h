// SPDX-License-Identifier: Apache-2.0
// The task plugin's state source ("tasks"): its process table as JSON, for debug and SIGUSR1.
#ifndef TASK_DEBUG_STATE_H
#define TASK_DEBUG_STATE_H

#include <cshim/host.h>

#include "service.h"

#define TASK_DEBUG_STATE_NAME "tasks"

/* The process table as a JSON array (caller frees), one object per process, init first:
   {"container_id", "exec_id" ("" for init), "pid", "status" ("created", "running", "pausing",
   "stopped"; paused is the runtime's to tell, through State), "io" ("null", "fifo", "file",
   "binary"), "stdin", "stdout", "stderr", "terminal", "exit_status" (null until exited),
   "exited_at" (Unix seconds, once exited), "bundle", "runtime" (init only)}. Containers still
   being created are left out. data = the task_service_t. */
char *task_debug_state_json(void *data);

/* Register svc's table as state source "tasks" with host (NULL: nothing happens). A failure is
   logged, not returned: debugging aids never stop the task service. */
void task_debug_state_register(task_service_t *svc, cshim_host_t *host);

/* Remove what task_debug_state_register added for svc, if anything. */
void task_debug_state_unregister(task_service_t *svc);

#endif
