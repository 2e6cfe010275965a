// SPDX-License-Identifier: Apache-2.0
// The runner of queued operations: the only place that creates, completes and frees them.
#include "op.h"

#include <assert.h>
#include <stdlib.h>

#include <cshim/log.h>
#include <cshim/util.h>

#include "model.h"

#include "google/protobuf/empty.pb-c.h"

task_op_t *
task_op_new(task_container_t *c, task_process_t *p, cshim_ttrpc_call_t *call, task_op_fn done,
            const char *what)
{
  task_op_t *op = cshim_xmalloc0(sizeof *op);
  op->container = c;
  op->process = p;
  op->call = call;
  op->done = done;
  op->step = done;
  op->what = what;
  if (call && call->timeout_nano > 0)
    op->deadline_ns = call->started_ns + (uint64_t)call->timeout_nano;
  if (call)
    op->owner = cshim_ttrpc_call_connection(call);
  cshim_list_push_front(&c->ops, &op->link);
  return op;
}

static void
op_free(task_op_t *op)
{
  task_container_t *c = op->container;
  cshim_list_remove(&op->link);
  if (op->free_data)
    op->free_data(op->data);
  free(op);
  if (c->removed && cshim_list_empty(&c->ops))
    task_events_gc_needed(c->events);
}

/* Mark op finished; free it now unless a runner callback still holds it. */
static void
finish(task_op_t *op)
{
  assert(!op->completed); /* an op is completed exactly once */
  op->completed = true;
  if (op->in_runner == 0)
    op_free(op);
}

void
task_op_complete(task_op_t *op)
{
  assert(op->call == NULL); /* answered by the caller */
  finish(op);
}

void
task_op_fail(task_op_t *op, cshim_error_t *err)
{
  if (op->call)
    cshim_ttrpc_call_fail_error(op->call, err);
  else
    cshim_error_log_release(err, op->container->log, CSHIM_LOG_WARN, "%s `%s`", op->what,
                            op->container->id);
  op->call = NULL;
  finish(op);
}

void
task_op_fail_result(task_op_t *op, cshim_runtime_result_t *result)
{
  cshim_error_t err = cshim_steal_pointer(&result->error);
  task_op_fail(op, &err);
}

void
task_op_reply(task_op_t *op, const ProtobufCMessage *resp)
{
  cshim_ttrpc_call_reply(op->call, resp);
  op->call = NULL;
  finish(op);
}

void
task_reply_empty(cshim_ttrpc_call_t *call)
{
  Google__Protobuf__Empty empty = GOOGLE__PROTOBUF__EMPTY__INIT;
  cshim_ttrpc_call_reply(call, &empty.base);
}

void
task_op_reply_empty(task_op_t *op)
{
  task_reply_empty(op->call);
  op->call = NULL;
  finish(op);
}

task_op_t *
task_op_first(const task_container_t *c)
{
  cshim_list_t *l = cshim_list_first(&c->ops);
  return l ? cshim_list_entry(l, task_op_t, link) : NULL;
}

uint64_t
task_op_deadline(void *data)
{
  const task_op_t *op = data;
  return op->deadline_ns;
}

uint64_t
task_op_owner(void *data)
{
  const task_op_t *op = data;
  return op->owner;
}

void
task_op_run(task_op_t *op, task_op_fn fn, cshim_runtime_result_t *result)
{
  assert(!op->completed); /* a completed op has no further steps */
  op->in_runner++;
  fn(op, result);
  op->in_runner--;
  if (op->completed && op->in_runner == 0)
    op_free(op);
}

void
task_op_runtime_cb(void *data, cshim_runtime_result_t *result)
{
  task_op_t *op = data;
  task_op_run(op, op->step, result);
}

void
task_op_step(task_op_t *op, task_op_fn step)
{
  assert(op->step == op->done); /* one step before done at a time */
  op->step = step;
}

void
task_op_run_done(task_op_t *op, cshim_runtime_result_t *result)
{
  op->step = op->done;
  task_op_run(op, op->done, result);
}

void
task_op_cancel_all(task_container_t *c)
{
  task_op_t *op;
  while ((op = task_op_first(c)) != NULL) {
    assert(op->in_runner == 0);
    if (op->call) {
      cshim_error_t err = NULL;
      cshim_error_make_code(&err, CSHIM_GRPC_UNAVAILABLE, "shim shutting down");
      cshim_ttrpc_call_fail_error(op->call, &err);
    }
    op->call = NULL;
    op->completed = true;
    op_free(op);
  }
}
