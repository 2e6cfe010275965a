// SPDX-License-Identifier: Apache-2.0
// One container: identity, bundle, mounts, runtime, processes.
#ifndef TASK_CONTAINER_H
#define TASK_CONTAINER_H

#include <stdbool.h>

#include <cshim/error.h>

#include "containerd/task/v2/shim.pb-c.h"

#include "events.h"
#include "model.h"

/* containerd's identifier rule: 1-76 chars, [A-Za-z0-9]+([._-][A-Za-z0-9]+)*. */
int task_validate_id(const char *id, cshim_error_t *err);

/* Whether config.json gives the container no private pid namespace (then its processes are
   killed when init exits). Unreadable spec: true, like the runc shim. */
bool task_spec_kill_all_on_exit(const char *bundle);

/* A container made for svc (kept for the handlers); loop, log, reaper and events come from env
   (they must outlive the container). */
task_container_t *task_container_new(task_service_t *svc, const task_env_t *env,
                                     const Containerd__Task__V2__CreateTaskRequest *req);
/* The process named by exec_id (NULL/"" = init), or NULL. */
task_process_t *task_container_process(task_container_t *c, const char *exec_id);
/* Free now (ops must be gone). */
void task_container_free(task_container_t *c);

/* Internal: SIGKILL everything left in c (runtime kill --all), errors logged. */
void task_container_kill_all(task_container_t *c);

#endif
