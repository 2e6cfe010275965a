// SPDX-License-Identifier: Apache-2.0
// Stats: the container's cgroup usage.
#ifndef TASK_STATS_H
#define TASK_STATS_H

#include <cshim/ttrpc.h>

void task_handle_stats(cshim_ttrpc_call_t *call, const ProtobufCMessage *msg, void *data);

#endif
