// SPDX-License-Identifier: Apache-2.0
// The launch sequence of a process: its IO ready, the runtime command, then its terminal.
#ifndef TASK_LAUNCH_H
#define TASK_LAUNCH_H

#include <cshim/error.h>

#include "io.h"
#include "types.h"

/* Run op's runtime command once the IO of op->process is ready: run(op, console_socket, err)
   must start it with task_op_runtime_cb; when it has succeeded (op->launched), wait for the
   terminal. This is the op's step before done (task_op_step): op->done then runs as usual, with
   result->error set if any step failed (the runtime may have succeeded: see op->launched).
   Returns <0 (op->done not called) when nothing could be started. */
int task_launch(task_op_t *op,
                int (*run)(task_op_t *op, const char *console_socket, cshim_error_t *err),
                cshim_error_t *err);
/* The IO options of p (container id for init, exec id for execs: the runc shim's CONTAINER_ID
   for a logging binary). */
void task_process_io_opts(const task_process_t *p, task_io_opts_t *o);

#endif
