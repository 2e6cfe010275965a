// SPDX-License-Identifier: Apache-2.0
// Queued operations on a container: one runner creates them, completes each exactly once and
// frees it.
#ifndef TASK_OP_H
#define TASK_OP_H

#include <stdbool.h>
#include <stdint.h>

#include <cshim/error.h>
#include <cshim/list.h>
#include <cshim/runtime.h>
#include <cshim/ttrpc.h>

#include "types.h"

/* One step of an op, run inside the runner when what the op waited for has finished (its runtime
   command, or the IO and terminal of a launch). The last step (done) completes the op
   (task_op_reply, task_op_fail, task_op_complete...); a step before it starts what comes next or
   hands over with task_op_run_done. A step never frees the op. */
typedef void (*task_op_fn)(task_op_t *op, cshim_runtime_result_t *result);

/* An in-flight asynchronous operation on a container: a runtime command and what follows it.
   Lifetime: task_op_new creates it; it is completed exactly once (an assert guards it) and the
   runner frees it then, or once the runner's callback returns when it was completed inside. */
struct task_op_s
{
  cshim_list_t link; /* in container->ops, newest first */
  task_container_t *container;
  task_process_t *process;
  cshim_ttrpc_call_t *call; /* NULL for internal operations, or once answered */
  task_op_fn done;          /* the last step: completes the op (set once, by task_op_new) */
  task_op_fn step;          /* where the op's runtime result goes: done, or a step before it */
  const char *what;         /* for logs */
  int signal;
  bool all;
  bool force;
  void *data;                    /* the op's own state, released with it by free_data */
  void (*free_data)(void *data); /* NULL = nothing to release */
  /* task_launch (launch.c): the runtime command that makes a process, with its IO and console */
  int (*launch_run)(task_op_t *op, const char *console_socket, cshim_error_t *err);
  bool launched;        /* the runtime command succeeded (what follows may still fail) */
  bool ran;             /* the runtime command ran, whether it succeeded or not */
  uint64_t deadline_ns; /* the call's deadline (cshim_now_ns clock); 0 = none */
  uint64_t owner;       /* the call's connection (cshim_ttrpc_call_connection); 0 = internal */
  /* crash recovery (upgrade.c): a start or exec start a crash interrupted; Start run again for
     its process takes this op instead of starting anything, and is answered with its outcome */
  bool takes_start_call;
  /* the runner's own state */
  bool completed;     /* answered and finished: freed as soon as no runner callback holds it */
  unsigned in_runner; /* runner callbacks on the stack that hold the op */
};

/* A new op on c (first in c->ops), answered through call (NULL = internal). */
task_op_t *task_op_new(task_container_t *c, task_process_t *p, cshim_ttrpc_call_t *call,
                       task_op_fn done, const char *what);
/* The newest op of c, NULL when none is in flight. */
task_op_t *task_op_first(const task_container_t *c);
/* The runtime's deadline_of for ops (data = op): the deadline of the op's call. */
uint64_t task_op_deadline(void *data);
/* The runtime's owner_of for ops (data = op): the connection of the op's call, so that the
   runtime limit shares its slots fairly between clients. */
uint64_t task_op_owner(void *data);
/* The runner: the runtime callback for ops (data = op). Runs op->step, and frees the op when it
   was completed. */
void task_op_runtime_cb(void *data, cshim_runtime_result_t *result);
/* Run fn(op, result) as the runner does for a runtime result: an op completed inside is freed
   once fn returns. For steps that do not come from the runtime (IO, console). */
void task_op_run(task_op_t *op, task_op_fn fn, cshim_runtime_result_t *result);
/* Send the op's next runtime result to step, a step before done (which hands over with
   task_op_run_done). At most one such step at a time. */
void task_op_step(task_op_t *op, task_op_fn step);
/* The steps before done are over: run done with result (in the runner, from a step or from a
   callback of the op's IO). */
void task_op_run_done(task_op_t *op, cshim_runtime_result_t *result);

/* Completion: each op gets exactly one of these. */
/* Its call (if any) has been answered by the caller (op->call NULL): the op is finished. */
void task_op_complete(task_op_t *op);
/* Fail the op's call with err (released; logged for internal ops). */
void task_op_fail(task_op_t *op, cshim_error_t *err);
/* Fail the op with the runtime's error (taken from result->error). */
void task_op_fail_result(task_op_t *op, cshim_runtime_result_t *result);
/* Answer the op's call with resp (borrowed). */
void task_op_reply(task_op_t *op, const ProtobufCMessage *resp);
/* Answer the op's call with google.protobuf.Empty. */
void task_op_reply_empty(task_op_t *op);
/* Answer call with google.protobuf.Empty. */
void task_reply_empty(cshim_ttrpc_call_t *call);

/* The shim is closing: answer every op of c with Unavailable and free them (no runner may hold
   any: the runtime never calls back once the container's runtime is freed). */
void task_op_cancel_all(task_container_t *c);

#endif
