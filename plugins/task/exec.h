// SPDX-License-Identifier: Apache-2.0
// Exec processes (Exec, and their Start and Delete) and ResizePty.
#ifndef TASK_EXEC_H
#define TASK_EXEC_H

#include <cshim/ttrpc.h>

#include "types.h"

void task_handle_exec(cshim_ttrpc_call_t *call, const ProtobufCMessage *msg, void *data);
void task_handle_resize_pty(cshim_ttrpc_call_t *call, const ProtobufCMessage *msg, void *data);
/* Start and Delete of an exec process (p->exec_id set), after the shared checks. */
void task_exec_start(cshim_ttrpc_call_t *call, task_container_t *c, task_process_t *p);
void task_exec_delete(cshim_ttrpc_call_t *call, task_container_t *c, task_process_t *p);

#endif
