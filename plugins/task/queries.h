// SPDX-License-Identifier: Apache-2.0
// The task RPCs that only read: State, Pids, Connect.
#ifndef TASK_QUERIES_H
#define TASK_QUERIES_H

#include <cshim/ttrpc.h>

void task_handle_state(cshim_ttrpc_call_t *call, const ProtobufCMessage *msg, void *data);
void task_handle_pids(cshim_ttrpc_call_t *call, const ProtobufCMessage *msg, void *data);
void task_handle_connect(cshim_ttrpc_call_t *call, const ProtobufCMessage *msg, void *data);

#endif
