// SPDX-License-Identifier: Apache-2.0
// Checkpoint, and Start from a checkpoint.
#ifndef TASK_CHECKPOINT_H
#define TASK_CHECKPOINT_H

#include <cshim/error.h>
#include <cshim/ttrpc.h>

#include "types.h"

void task_handle_checkpoint(cshim_ttrpc_call_t *call, const ProtobufCMessage *msg, void *data);
/* Start for a container created from a checkpoint (its init marked starting): `runtime restore`
   instead of `start`, then the usual TaskStart and Start reply; call is answered exactly once.
   When the restore fails, after the reply, failed(c) removes what the runtime left (lifecycle.c:
   as after a failed start). */
void task_checkpoint_restore(cshim_ttrpc_call_t *call, task_container_t *c,
                             void (*failed)(task_container_t *c));

#endif
