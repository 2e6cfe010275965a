// SPDX-License-Identifier: Apache-2.0
// The task RPCs that make and remove a container or process: Create, Start, Delete.
#ifndef TASK_LIFECYCLE_H
#define TASK_LIFECYCLE_H

#include <cshim/ttrpc.h>

void task_handle_create(cshim_ttrpc_call_t *call, const ProtobufCMessage *msg, void *data);
void task_handle_start(cshim_ttrpc_call_t *call, const ProtobufCMessage *msg, void *data);
void task_handle_delete(cshim_ttrpc_call_t *call, const ProtobufCMessage *msg, void *data);
/* Delete under containerd.task.v3.Task: it also marks the shim as driven by task API v3, whose
   lifetime ends with the last Delete. */
void task_handle_delete_v3(cshim_ttrpc_call_t *call, const ProtobufCMessage *msg, void *data);

#endif
