// SPDX-License-Identifier: Apache-2.0
// Pause, Resume and Update.
#ifndef TASK_CONTROL_H
#define TASK_CONTROL_H

#include <cshim/ttrpc.h>

void task_handle_pause(cshim_ttrpc_call_t *call, const ProtobufCMessage *msg, void *data);
void task_handle_resume(cshim_ttrpc_call_t *call, const ProtobufCMessage *msg, void *data);
void task_handle_update(cshim_ttrpc_call_t *call, const ProtobufCMessage *msg, void *data);

#endif
