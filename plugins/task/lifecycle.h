// SPDX-License-Identifier: Apache-2.0
// The task RPCs that make and remove a container or process: Create, Start, Delete.
#ifndef TASK_LIFECYCLE_H
#define TASK_LIFECYCLE_H

#include <cshim/error.h>
#include <cshim/ttrpc.h>

#include "types.h"

void task_handle_create(cshim_ttrpc_call_t *call, const ProtobufCMessage *msg, void *data);
void task_handle_start(cshim_ttrpc_call_t *call, const ProtobufCMessage *msg, void *data);
void task_handle_delete(cshim_ttrpc_call_t *call, const ProtobufCMessage *msg, void *data);
/* Delete under containerd.task.v3.Task: it also marks the shim as driven by task API v3, whose
   lifetime ends with the last Delete. */
void task_handle_delete_v3(cshim_ttrpc_call_t *call, const ProtobufCMessage *msg, void *data);

/* The container's runtime, made from its effective options (c->opts) and the service's config
   (Create, and a live upgrade's restore). */
int task_container_make_runtime(task_service_t *svc, task_container_t *c, cshim_error_t *err);

/* Crash recovery (upgrade.c): Create's undo paths for a create a crash interrupted. */
void task_upgrade_abandon_create(task_container_t *c);
void task_upgrade_cleanup_failed(task_container_t *c);

#endif
