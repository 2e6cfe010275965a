// SPDX-License-Identifier: Apache-2.0
// The core task RPCs (Create, Start, Delete, Kill, State, Pids, CloseIO, Wait, Connect, Shutdown)
// and the method tables.
#ifndef TASK_HANDLERS_H
#define TASK_HANDLERS_H

#include <cshim/error.h>
#include <cshim/ttrpc.h>

#include "types.h"

/* The method table shared by containerd.task.v2.Task and containerd.task.v3.Task. */
extern const cshim_ttrpc_method_t task_methods[];
/* The same under containerd.task.v3.Task, whose Delete also sets api_v3. */
extern const cshim_ttrpc_method_t task_methods_v3[];

/* The container's runtime, made from its effective options (c->opts) and the service's config. */
int task_container_make_runtime(task_service_t *svc, task_container_t *c, cshim_error_t *err);

/* Crash recovery (upgrade.c): Create's undo paths for a create a crash interrupted. */
void task_upgrade_abandon_create(task_container_t *c);
void task_upgrade_cleanup_failed(task_container_t *c);

#endif
