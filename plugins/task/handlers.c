// SPDX-License-Identifier: Apache-2.0
// The task RPCs of a running process (containerd.task.v2.Task / v3.Task): Kill, CloseIO, Wait,
// Shutdown, and the method tables of both services.
#include "handlers.h"

#include <errno.h>
#include <signal.h>

#include <cshim/util.h>

#include "checkpoint.h"
#include "control.h"
#include "exec.h"
#include "io.h"
#include "lifecycle.h"
#include "op.h"
#include "process.h"
#include "queries.h"
#include "service.h"
#include "stats.h"

#include "containerd/task/v2/shim.pb-c.h"

/* ---- Kill ---- */

static void
kill_done(task_op_t *op, cshim_runtime_result_t *result)
{
  if (result->error) {
    cshim_error_t err = cshim_steal_pointer(&result->error);
    if (err->status == -ESRCH || err->status == -ENOENT || op->process->exited) {
      cshim_error_release(&err);
      cshim_error_make(&err, ENOENT, "process already finished: not found");
    }
    task_op_fail(op, &err);
    return;
  }
  task_op_reply_empty(op);
}

static void
handle_kill(cshim_ttrpc_call_t *call, const ProtobufCMessage *msg, void *data)
{
  task_service_t *svc = data;
  const Containerd__Task__V2__KillRequest *req = (const void *)msg;
  cshim_error_t err = NULL;
  task_container_t *c;
  task_process_t *p;
  task_op_t *op;

  if (task_service_lookup(svc, req->id, req->exec_id, &c, &p, &err) < 0)
    goto fail;
  if (req->signal >= 65) {
    cshim_error_make(&err, EINVAL, "invalid signal %u", req->signal);
    goto fail;
  }
  if (p->exited && !req->all) {
    cshim_error_make(&err, ENOENT, "process already finished: not found");
    goto fail;
  }
  if (p->exec_id) {
    if (p->pid <= 0) {
      cshim_error_make(&err, EBUSY, "process %s is not started", p->exec_id);
      goto fail;
    }
    if (kill(p->pid, (int)req->signal) < 0) {
      if (errno == ESRCH)
        cshim_error_make(&err, ENOENT, "process already finished: not found");
      else
        cshim_error_sys(&err, errno, "kill %d", (int)p->pid);
      goto fail;
    }
    task_reply_empty(call);
    return;
  }

  op = task_op_new(c, p, call, kill_done, "kill");
  if (cshim_runtime_kill(c->rt, c->id, (int)req->signal, req->all, c->log_path, task_op_runtime_cb,
                         op, &err) < 0)
    task_op_fail(op, &err);
  return;

fail:
  cshim_ttrpc_call_fail_error(call, &err);
}

/* ---- CloseIO ---- */

static void
handle_close_io(cshim_ttrpc_call_t *call, const ProtobufCMessage *msg, void *data)
{
  task_service_t *svc = data;
  const Containerd__Task__V2__CloseIORequest *req = (const void *)msg;
  cshim_error_t err = NULL;
  task_container_t *c;
  task_process_t *p;

  if (task_service_lookup(svc, req->id, req->exec_id, &c, &p, &err) < 0)
    goto fail;
  /* The client's writer is gone: drop ours too, so the copy reaches EOF and the process's stdin
     is closed once what was written has been delivered. */
  if (req->stdin) {
    p->stdin_closed = true; /* an exec's IO appears only with Start */
    task_io_close_stdin(p->io);
  }
  task_reply_empty(call);
  return;

fail:
  cshim_ttrpc_call_fail_error(call, &err);
}

/* ---- Wait, Shutdown ---- */

static void
handle_wait(cshim_ttrpc_call_t *call, const ProtobufCMessage *msg, void *data)
{
  task_service_t *svc = data;
  const Containerd__Task__V2__WaitRequest *req = (const void *)msg;
  cshim_error_t err = NULL;
  task_container_t *c;
  task_process_t *p;

  if (task_service_lookup(svc, req->id, req->exec_id, &c, &p, &err) < 0)
    goto fail;
  task_process_add_waiter(p, call);
  return;

fail:
  cshim_ttrpc_call_fail_error(call, &err);
}

static void
handle_shutdown(cshim_ttrpc_call_t *call, const ProtobufCMessage *msg, void *data)
{
  task_service_t *svc = data;

  task_reply_empty(call);
  if (!cshim_list_empty(&svc->containers) || svc->shutdown_requested || svc->closing)
    return;
  /* The reply is queued; let it leave before the server starts closing. */
  task_service_request_shutdown(svc);
}

/* The same methods under v2 and v3; only Delete differs (under v3 it also marks the shim as
   driven by task API v3, whose lifetime ends with the last Delete). */
/* clang-format off */
#define TASK_METHODS(delete_handler)                                                              \
  {"State", task_handle_state},       {"Create", task_handle_create},                             \
  {"Start", task_handle_start},       {"Delete", delete_handler},                                 \
  {"Pids", task_handle_pids},         {"Pause", task_handle_pause},                               \
  {"Resume", task_handle_resume},     {"Checkpoint", task_handle_checkpoint},                     \
  {"Kill", handle_kill},              {"Exec", task_handle_exec},                                 \
  {"ResizePty", task_handle_resize_pty}, {"CloseIO", handle_close_io},                            \
  {"Update", task_handle_update},     {"Wait", handle_wait},                                      \
  {"Stats", task_handle_stats},       {"Connect", task_handle_connect},                           \
  {"Shutdown", handle_shutdown}
/* clang-format on */

const cshim_ttrpc_method_t task_methods[] = {TASK_METHODS(task_handle_delete), {NULL, NULL}};
const cshim_ttrpc_method_t task_methods_v3[] = {TASK_METHODS(task_handle_delete_v3), {NULL, NULL}};
