// SPDX-License-Identifier: Apache-2.0
// Checkpoint, and Start from a checkpoint.
#ifndef TASK_CHECKPOINT_H
#define TASK_CHECKPOINT_H

#include <cshim/error.h>
#include <cshim/ttrpc.h>

#include "types.h"

void task_handle_checkpoint(cshim_ttrpc_call_t *call, const ProtobufCMessage *msg, void *data);
/* Start for a container created from a checkpoint: `runtime restore` instead of `start`,
   then the usual TaskStart and Start reply. Takes op (answered exactly once). */
int task_checkpoint_restore(task_op_t *op, cshim_error_t *err);

#endif
