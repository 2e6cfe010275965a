// SPDX-License-Identifier: Apache-2.0
// The method tables of containerd.task.v2.Task and v3.Task, and the RPCs of a running process
// (Kill, CloseIO, Wait, Shutdown).
#ifndef TASK_HANDLERS_H
#define TASK_HANDLERS_H

#include <cshim/error.h>
#include <cshim/ttrpc.h>

#include "types.h"

/* The method table shared by containerd.task.v2.Task and containerd.task.v3.Task. */
extern const cshim_ttrpc_method_t task_methods[];
/* The same under containerd.task.v3.Task, whose Delete also sets api_v3. */
extern const cshim_ttrpc_method_t task_methods_v3[];

#endif
