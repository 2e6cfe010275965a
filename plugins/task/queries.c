// SPDX-License-Identifier: Apache-2.0
// The task RPCs that only read (containerd.task.v2.Task / v3.Task): State, Pids, Connect.
#include "queries.h"

#include <errno.h>
#include <stdlib.h>

#include <cshim/util.h>

#include "cgroups.h"
#include "oom.h"
#include "op.h"
#include "process.h"
#include "service.h"

#include "containerd/runc/options/oci.pb-c.h"
#include "containerd/task/v2/shim.pb-c.h"

#define PROCESS_DETAILS_TYPE "containerd.runc.v1.ProcessDetails"

/* ---- State ---- */

/* Whether p->state_packed still answers State with `status`. */
static bool
state_packed_valid(const task_process_t *p, Containerd__V1__Types__Status status)
{
  return p->state_packed && p->state_key.status == (int)status && p->state_key.pid == p->pid &&
         p->state_key.exit_status == p->exit_status && p->state_key.exited == p->exited &&
         (!p->exited || (p->state_key.exited_at.tv_sec == p->exited_at.tv_sec &&
                         p->state_key.exited_at.tv_nsec == p->exited_at.tv_nsec));
}

static void
reply_state(cshim_ttrpc_call_t *call, task_process_t *p, Containerd__V1__Types__Status status)
{
  Containerd__Task__V2__StateResponse resp = CONTAINERD__TASK__V2__STATE_RESPONSE__INIT;
  Google__Protobuf__Timestamp ts = GOOGLE__PROTOBUF__TIMESTAMP__INIT;
  task_container_t *c = p->container;

  /* A running container's State is asked again and again with the same answer: packed once
     (measuring and packing it was ~2.4k instructions per call, a quarter of the call). */
  if (state_packed_valid(p, status) &&
      cshim_ttrpc_call_reply_packed(call, &containerd__task__v2__state_response__descriptor,
                                    p->state_packed, p->state_packed_len) != -ENOSYS)
    return;
  task_process_exited_at(p, &ts);
  resp.id = p->exec_id ? p->exec_id : c->id;
  resp.bundle = c->bundle;
  resp.pid = (uint32_t)p->pid;
  resp.status = status;
  resp.stdin = p->stdin_;
  resp.stdout = p->stdout_;
  resp.stderr = p->stderr_;
  resp.terminal = p->terminal;
  resp.exit_status = p->exit_status;
  resp.exited_at = &ts;
  resp.exec_id = p->exec_id ? p->exec_id : "";

  free(p->state_packed);
  p->state_packed_len = containerd__task__v2__state_response__get_packed_size(&resp);
  p->state_packed = cshim_xmalloc(p->state_packed_len + 1);
  containerd__task__v2__state_response__pack(&resp, p->state_packed);
  p->state_key.status = (int)status;
  p->state_key.pid = p->pid;
  p->state_key.exit_status = p->exit_status;
  p->state_key.exited = p->exited;
  p->state_key.exited_at = p->exited_at;
  if (cshim_ttrpc_call_reply_packed(call, &containerd__task__v2__state_response__descriptor,
                                    p->state_packed, p->state_packed_len) == -ENOSYS)
    cshim_ttrpc_call_reply(call, &resp.base);
}

static Containerd__V1__Types__Status
recorded_status(const task_process_t *p)
{
  /* Start is still running and holds the exit back: the process ran, TaskExit is not out. */
  if (p->exit_pending)
    return CONTAINERD__V1__TYPES__STATUS__RUNNING;
  if (p->exited || p->state == TASK_PROC_STOPPED)
    return CONTAINERD__V1__TYPES__STATUS__STOPPED;
  if (p->state == TASK_PROC_RUNNING)
    return CONTAINERD__V1__TYPES__STATUS__RUNNING;
  return CONTAINERD__V1__TYPES__STATUS__CREATED;
}

/* A running process of a runc-model container: the shim's own record, corrected by the
   container's freezer (a cgroup frozen or thawed by hand, as `runc state` would see it). */
static Containerd__V1__Types__Status
running_status(task_container_t *c)
{
  task_freezer_t fz;
  cshim_error_t err = NULL;
  uint64_t now = c->svc->now_ms(c->svc);

  /* At most one reading per millisecond: a burst of State calls shares it, and one call every
     few tens of microseconds (one in flight) no longer pays a system call each. A freeze made
     by hand shows within a millisecond; the shim's own Pause and Resume drop the reading. */
  if (c->cgroup && c->freezer_kept && c->freezer_ms == now)
    fz = (task_freezer_t)c->freezer_seen;
  else if (c->cgroup && task_cgroup_freezer_state(c->cgroup, &fz, &err) == 0) {
    c->freezer_kept = true;
    c->freezer_ms = now;
    c->freezer_seen = (int)fz;
  } else
    c->freezer_kept = false;
  if (c->freezer_kept) {
    if (fz == TASK_FREEZER_FROZEN)
      return CONTAINERD__V1__TYPES__STATUS__PAUSED;
    /* The shim's own Pause has returned: the runtime said paused, as its `state` would now
       (crun does not wait for cgroup v2's "frozen 1" and reads cgroup.freeze alone; runc waits).
       A freeze still settling is PAUSING only while a Pause is in flight or the freeze was
       started by hand. */
    if (fz == TASK_FREEZER_FREEZING && c->paused && !c->pausing)
      return CONTAINERD__V1__TYPES__STATUS__PAUSED;
    if (fz == TASK_FREEZER_FREEZING || c->pausing)
      return CONTAINERD__V1__TYPES__STATUS__PAUSING;
    return CONTAINERD__V1__TYPES__STATUS__RUNNING;
  }
  cshim_error_release(&err);
  if (c->pausing)
    return CONTAINERD__V1__TYPES__STATUS__PAUSING;
  if (c->paused)
    return CONTAINERD__V1__TYPES__STATUS__PAUSED;
  return CONTAINERD__V1__TYPES__STATUS__RUNNING;
}

static void
state_done(task_op_t *op, cshim_runtime_result_t *result)
{
  task_process_t *p = op->process;
  Containerd__V1__Types__Status status;
  cshim_runtime_state_t st;
  cshim_error_t err = NULL;

  if (result->error || p->exited) {
    if (p->exited || result->error->status == -ENOENT) {
      reply_state(op->call, p, CONTAINERD__V1__TYPES__STATUS__STOPPED);
      op->call = NULL;
      task_op_complete(op);
      return;
    }
    task_op_fail_result(op, result);
    return;
  }
  if (cshim_runtime_parse_state(result->out, &st, &err) < 0) {
    task_op_fail(op, &err);
    return;
  }
  status = task_status_from_string(st.status);
  /* The runtime says running until the freeze completes; Pause is in flight meanwhile. */
  if (status == CONTAINERD__V1__TYPES__STATUS__RUNNING && op->container->pausing)
    status = CONTAINERD__V1__TYPES__STATUS__PAUSING;
  reply_state(op->call, p, status);
  op->call = NULL;
  task_op_complete(op);
}

void
task_handle_state(cshim_ttrpc_call_t *call, const ProtobufCMessage *msg, void *data)
{
  task_service_t *svc = data;
  const Containerd__Task__V2__StateRequest *req = (const void *)msg;
  cshim_error_t err = NULL;
  task_container_t *c;
  task_process_t *p;
  task_op_t *op;

  if (task_service_lookup(svc, req->id, req->exec_id, &c, &p, &err) < 0)
    goto fail;
  if (c->runc_model && recorded_status(p) == CONTAINERD__V1__TYPES__STATUS__RUNNING &&
      !p->exit_pending && !c->init->exited) {
    /* A process in a paused container is paused too, as the runc shim reports it. */
    reply_state(call, p, running_status(c));
    return;
  }
  /* Only a running init can be in a state we do not track ourselves (paused, pausing). */
  if (c->runc_model || p->exec_id || p->exit_pending ||
      recorded_status(p) != CONTAINERD__V1__TYPES__STATUS__RUNNING) {
    reply_state(call, p, recorded_status(p));
    return;
  }
  op = task_op_new(c, p, call, state_done, "state");
  if (cshim_runtime_state(c->rt, c->id, task_op_runtime_cb, op, &err) < 0)
    task_op_fail(op, &err);
  return;

fail:
  cshim_ttrpc_call_fail_error(call, &err);
}

/* ---- Pids ---- */

/* Answer Pids: one ProcessInfo per pid; exec processes carry ProcessDetails{exec_id}. */
static void
reply_pids(cshim_ttrpc_call_t *call, task_container_t *c, const pid_t *pids, size_t n)
{
  Containerd__Task__V2__PidsResponse resp = CONTAINERD__TASK__V2__PIDS_RESPONSE__INIT;
  Containerd__V1__Types__ProcessInfo *infos = cshim_xmalloc0((n + 1) * sizeof *infos);
  Containerd__V1__Types__ProcessInfo **ptrs = cshim_xmalloc0((n + 1) * sizeof *ptrs);
  Google__Protobuf__Any *anys = cshim_xmalloc0((n + 1) * sizeof *anys);
  cshim_list_t *l;

  for (size_t i = 0; i < n; i++) {
    containerd__v1__types__process_info__init(&infos[i]);
    infos[i].pid = (uint32_t)pids[i];
    ptrs[i] = &infos[i];
    CSHIM_LIST_FOREACH (l, &c->execs) {
      task_process_t *p = cshim_list_entry(l, task_process_t, link);
      Containerd__Runc__V1__ProcessDetails d = CONTAINERD__RUNC__V1__PROCESS_DETAILS__INIT;
      if (p->pid <= 0 || p->pid != pids[i])
        continue;
      d.exec_id = p->exec_id;
      google__protobuf__any__init(&anys[i]);
      anys[i].type_url = PROCESS_DETAILS_TYPE;
      anys[i].value.data =
          cshim_xmalloc(containerd__runc__v1__process_details__get_packed_size(&d) + 1);
      anys[i].value.len = containerd__runc__v1__process_details__pack(&d, anys[i].value.data);
      infos[i].info = &anys[i];
      break;
    }
  }
  resp.n_processes = n;
  resp.processes = ptrs;
  cshim_ttrpc_call_reply(call, &resp.base);
  for (size_t i = 0; i < n; i++)
    free(anys[i].value.data);
  free(anys);
  free(ptrs);
  free(infos);
}

static void
pids_done(task_op_t *op, cshim_runtime_result_t *result)
{
  cshim_error_t err = NULL;
  cshim_autofree pid_t *pids = NULL;
  size_t n = 0;

  if (result->error) {
    task_op_fail_result(op, result);
    return;
  }
  if (cshim_runtime_parse_ps(result->out, &pids, &n, &err) < 0) {
    task_op_fail(op, &err);
    return;
  }
  reply_pids(op->call, op->container, pids, n);
  op->call = NULL;
  task_op_complete(op);
}

void
task_handle_pids(cshim_ttrpc_call_t *call, const ProtobufCMessage *msg, void *data)
{
  task_service_t *svc = data;
  const Containerd__Task__V2__PidsRequest *req = (const void *)msg;
  cshim_error_t err = NULL;
  task_container_t *c;
  task_process_t *p;
  task_op_t *op;

  if (task_service_lookup(svc, req->id, NULL, &c, &p, &err) < 0)
    goto fail;
  if (c->runc_model) {
    cshim_autofree pid_t *pids = NULL;
    size_t n = 0;
    if (c->cgroup == NULL && p->pid > 0 && !p->exited)
      task_container_track_cgroup(c);
    if (c->cgroup && task_cgroup_pids(c->cgroup, &pids, &n, &err) == 0) {
      reply_pids(call, c, pids, n);
      return;
    }
    /* The cgroup cannot be read: the runtime knows where the processes are. */
    cshim_error_release(&err);
  }
  op = task_op_new(c, p, call, pids_done, "ps");
  if (cshim_runtime_ps(c->rt, c->id, task_op_runtime_cb, op, &err) < 0)
    task_op_fail(op, &err);
  return;

fail:
  cshim_ttrpc_call_fail_error(call, &err);
}

/* ---- Connect ---- */

void
task_handle_connect(cshim_ttrpc_call_t *call, const ProtobufCMessage *msg, void *data)
{
  task_service_t *svc = data;
  const Containerd__Task__V2__ConnectRequest *req = (const void *)msg;
  Containerd__Task__V2__ConnectResponse resp = CONTAINERD__TASK__V2__CONNECT_RESPONSE__INIT;
  task_container_t *c = task_service_find(svc, req->id);

  resp.shim_pid = (uint32_t)svc->shim_pid;
  resp.task_pid = c ? (uint32_t)c->init->pid : 0;
  cshim_ttrpc_call_reply(call, &resp.base);
}
