// SPDX-License-Identifier: Apache-2.0
// The task RPCs that make and remove a container or process (containerd.task.v2.Task / v3.Task):
// Create, Start, Delete, and the cleanup of a container whose create or start failed.
#include "lifecycle.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cshim/util.h>

#include "checkpoint.h"
#include "container.h"
#include "exec.h"
#include "io.h"
#include "launch.h"
#include "mount.h"
#include "oom.h"
#include "op.h"
#include "options.h"
#include "process.h"
#include "service.h"
#include "trace.h"

#include "containerd/events/task.pb-c.h"
#include "containerd/task/v2/shim.pb-c.h"

static bool
id_taken(task_service_t *svc, const char *id)
{
  cshim_list_t *l;

  CSHIM_LIST_FOREACH (l, &svc->containers)
    if (strcmp(cshim_list_entry(l, task_container_t, link)->id, id) == 0)
      return true;
  return false;
}

/* ---- Create ---- */

/* Undo what a failed Create set up and drop the container. */
static void
abandon_create(task_container_t *c)
{
  task_io_close(c->init->io);
  c->init->io = NULL;
  task_mount_unmount_all(c->mounted, c->n_mounted, c->svc->log);
  c->mounted = NULL;
  c->n_mounted = 0;
  task_service_remove(c);
}

/* Whatever API: a shim left with no container after a failed create or start ends, as a Shutdown
   would end it (after the replies have left). */
static void
exit_when_idle(task_service_t *svc)
{
  if (!cshim_list_empty(&svc->containers) || svc->closing)
    return;
  task_service_request_shutdown(svc);
}

/* The runtime's `delete --force` of a failed container has finished: drop the record. */
static void
cleaned_up(task_container_t *c)
{
  task_process_t *p = c->init;

  if (!p->exited) {
    /* Killed by `delete --force`, or never ran; its own exit may not be reaped yet. Waiters get
       their answer; no TaskExit goes out for a task containerd saw fail (p->deleting). */
    struct timespec now;
    if (p->watching) {
      cshim_reaper_t *reaper = c->svc->reaper;
      reaper->ops->unwatch(reaper, p->pid, task_process_exit_cb, p);
      p->watching = false;
    }
    task_now(&now);
    task_process_set_exited(p, SIGKILL, &now);
  }
  abandon_create(c);
}

static void reply_delete(cshim_ttrpc_call_t *call, task_process_t *p);

static void
cleanup_done(task_op_t *op, cshim_runtime_result_t *result)
{
  task_container_t *c = op->container;
  task_service_t *svc = c->svc;

  if (result->error && result->error->status != -ENOENT)
    cshim_log_warn(svc->log, "clean up `%s`: %s", c->id, result->error->msg);
  cleaned_up(c);
  if (op->call) {
    /* containerd's Delete came while the runtime deleted (task_handle_delete): answered now, as
       a Delete is, with TaskDelete and the exit (137) */
    Containerd__Events__TaskDelete ev = CONTAINERD__EVENTS__TASK_DELETE__INIT;
    Google__Protobuf__Timestamp ts = GOOGLE__PROTOBUF__TIMESTAMP__INIT;
    task_process_exited_at(c->init, &ts);
    ev.container_id = c->id;
    ev.pid = (uint32_t)c->init->pid;
    ev.exit_status = c->init->exit_status;
    ev.exited_at = &ts;
    ev.id = "";
    task_service_publish(svc, CSHIM_TOPIC_TASK_DELETE, &ev.base);
    reply_delete(op->call, c->init);
    op->call = NULL;
  }
  task_op_complete(op);
  exit_when_idle(svc);
}

/* A create, start or restore that failed in or after the runtime: `delete --force` removes
   whatever the runtime left (runsc's sandbox and gofer, a runc init waiting on its FIFO), then
   the record goes and the shim ends if it serves nothing else. Until the runtime answers, the
   container stays listed (its id taken, Start refused as `being deleted`, a Delete answered when
   it is done), so that a new container of the same id never meets this delete. */
static void
cleanup_failed(task_container_t *c)
{
  task_service_t *svc = c->svc;
  cshim_error_t err = NULL;
  task_op_t *op;

  c->init->deleting = true;
  op = task_op_new(c, c->init, NULL, cleanup_done, "clean up");
  if (cshim_runtime_delete(c->rt, c->id, true, c->log_path, task_op_runtime_cb, op, &err) < 0) {
    cshim_error_log_release(&err, svc->log, CSHIM_LOG_WARN, "clean up `%s`", c->id);
    cleaned_up(c);
    task_op_complete(op);
    exit_when_idle(svc);
  }
}

/* Crash recovery (upgrade.c): a create that a crash interrupted. */
void
task_upgrade_abandon_create(task_container_t *c)
{
  abandon_create(c);
}

void
task_upgrade_cleanup_failed(task_container_t *c)
{
  cleanup_failed(c);
}

static void
publish_create(task_container_t *c)
{
  Containerd__Events__TaskCreate ev = CONTAINERD__EVENTS__TASK_CREATE__INIT;
  Containerd__Events__TaskIO io = CONTAINERD__EVENTS__TASK_IO__INIT;
  task_process_t *p = c->init;

  io.stdin = p->stdin_;
  io.stdout = p->stdout_;
  io.stderr = p->stderr_;
  io.terminal = p->terminal;
  ev.container_id = c->id;
  ev.bundle = c->bundle;
  ev.n_rootfs = c->n_mounts;
  ev.rootfs = c->mounts;
  ev.io = &io;
  ev.checkpoint = c->checkpoint ? c->checkpoint : "";
  ev.pid = (uint32_t)p->pid;
  task_service_publish(c->svc, CSHIM_TOPIC_TASK_CREATE, &ev.base);
}

static void
create_done(task_op_t *op, cshim_runtime_result_t *result)
{
  task_container_t *c = op->container;
  task_process_t *p = c->init;
  Containerd__Task__V2__CreateTaskResponse resp = CONTAINERD__TASK__V2__CREATE_TASK_RESPONSE__INIT;
  cshim_error_t err = NULL;
  pid_t pid = 0;

  if (result->error) {
    err = cshim_steal_pointer(&result->error);
    /* The runtime created it, what followed (the terminal) failed. */
    if (op->launched)
      goto undo;
    /* The runtime failed: it may still have left processes and state (runsc does), unless it
       never ran (the logging binary or IO failed first) or refused because the id belongs to
       another container of its root. */
    if (!op->ran || err->status == -EEXIST)
      abandon_create(c);
    else
      cleanup_failed(c);
    task_op_fail(op, &err);
    return;
  }
  if (task_read_pid(c->pid_file, &pid, &err) < 0)
    goto undo;
  p->pid = pid;
  /* Watch before anything else can reap it; an exit that came first is replayed. */
  if (task_process_watch(p, &err) < 0)
    goto undo;
  c->creating = false;
  task_container_track_cgroup(c);
  publish_create(c);
  resp.pid = (uint32_t)pid;
  task_op_reply(op, &resp.base);
  return;

undo:
  /* The runtime created the container: remove it before dropping our record. */
  cleanup_failed(c);
  cshim_error_wrap(&err, "create `%s`", c->id);
  task_op_fail(op, &err);
}

/* The container's runtime handle from its resolved options: the one way Create and a live
   upgrade's restore build it (binary resolved once per shim, the shared process limit, each
   call's deadline). */
int
task_container_make_runtime(task_service_t *svc, task_container_t *c, cshim_error_t *err)
{
  cshim_runtime_config_t rcfg = {0};
  int ret;

  ret = task_runtime_path(&svc->runtime_paths, c->opts.binary_name, &rcfg.binary, err);
  if (ret < 0)
    return ret;
  c->runc_model = task_runtime_runc_model(c->opts.binary_name);
  rcfg.loop = svc->loop;
  rcfg.reaper = svc->reaper;
  rcfg.log = svc->log;
  rcfg.root = cshim_runc_options_runtime_root(&c->opts, svc->cfg.runtime_root, svc->namespace_);
  rcfg.systemd_cgroup = c->opts.systemd_cgroup;
  rcfg.criu = c->opts.criu_path;
  rcfg.debug = false;
  rcfg.timeout_ms = svc->cfg.command_timeout_ms;
  rcfg.limit = svc->runtime_limit;
  rcfg.deadline_of = task_op_deadline;
  rcfg.tracer = svc->tracer;
  rcfg.span_of = task_op_span;
  rcfg.owner_of = task_op_owner;
  rcfg.nice = svc->cfg.runtime_nice;
  rcfg.global_args = (const char *const *)svc->cfg.runtime_args;
  ret = cshim_runtime_new(&rcfg, &c->rt, err);
  free((char *)rcfg.root);
  return ret;
}

static int
prepare_create(task_service_t *svc, task_container_t *c,
               const Containerd__Task__V2__CreateTaskRequest *req, cshim_error_t *err)
{
  task_io_opts_t io_opts;
  cshim_span_t *span;
  int ret;

  ret = task_options_resolve(&svc->cfg, req->options, &c->opts, err);
  if (ret < 0)
    return ret;
  ret = cshim_runc_options_write(c->bundle, &c->opts, err);
  if (ret < 0)
    return ret;
  ret = cshim_runc_runtime_write(c->bundle, c->opts.binary_name, err);
  if (ret < 0)
    return ret;
  c->kill_all_on_exit = task_spec_kill_all_on_exit(c->bundle);

  if (c->n_mounts > 0) {
    ret = task_mount_all(c->mounts, c->n_mounts, c->rootfs, &c->mounted, &c->n_mounted, err);
    if (ret < 0)
      return cshim_error_wrap(err, "mount rootfs");
  }

  task_process_io_opts(c->init, &io_opts);
  span = task_trace_start(svc, "stdio setup");
  cshim_span_set_attr(svc->tracer, span, "container.id", c->id);
  ret = task_io_open(svc->loop, svc->log, &io_opts, &c->init->io, err);
  task_trace_end(svc, span, ret < 0 ? err : NULL);
  if (ret < 0)
    return ret;

  ret = task_container_make_runtime(svc, c, err);
  if (ret < 0)
    return ret;

  if (unlink(c->pid_file) < 0 && errno != ENOENT)
    return cshim_error_sys(err, errno, "remove stale `%s`", c->pid_file);
  return task_io_start(c->init->io, err);
}

static int
run_create(task_op_t *op, const char *console_socket, cshim_error_t *err)
{
  task_container_t *c = op->container;
  cshim_runtime_create_opts_t copts = {0};

  copts.bundle = c->bundle;
  copts.pid_file = c->pid_file;
  copts.log_path = c->log_path;
  copts.console_socket = console_socket;
  copts.no_pivot = c->opts.no_pivot_root;
  copts.no_new_keyring = c->opts.no_new_keyring;
  task_io_runtime_fds(c->init->io, &copts.io);
  return cshim_runtime_create(c->rt, c->id, &copts, task_op_runtime_cb, op, err);
}

void
task_handle_create(cshim_ttrpc_call_t *call, const ProtobufCMessage *msg, void *data)
{
  task_service_t *svc = data;
  const Containerd__Task__V2__CreateTaskRequest *req = (const void *)msg;
  cshim_error_t err = NULL;
  task_io_kind_t kind;
  task_container_t *c;
  task_op_t *op;

  if (task_validate_id(req->id, &err) < 0)
    goto fail;
  if (id_taken(svc, req->id)) {
    cshim_error_make(&err, EEXIST, "container `%s`: already exists", req->id);
    goto fail;
  }
  if (req->bundle == NULL || req->bundle[0] != '/') {
    cshim_error_make(&err, EINVAL, "bundle `%s` is not an absolute path",
                     req->bundle ? req->bundle : "");
    goto fail;
  }
  if (task_io_kind(req->stdin, req->stdout, req->stderr, &kind, &err) < 0)
    goto fail;

  c = task_container_new(svc, &svc->env, req);
  cshim_list_push_front(&svc->containers, &c->link);

  if (prepare_create(svc, c, req, &err) < 0) {
    abandon_create(c);
    cshim_error_wrap(&err, "create `%s`", req->id);
    goto fail;
  }
  if (c->checkpoint) {
    /* Restored by Start (checkpoint.c), as the runc shim does: until then created, no pid. */
    Containerd__Task__V2__CreateTaskResponse resp =
        CONTAINERD__TASK__V2__CREATE_TASK_RESPONSE__INIT;
    c->creating = false;
    publish_create(c);
    cshim_ttrpc_call_reply(call, &resp.base);
    return;
  }

  /* A logging binary is ready, the runtime creates, its terminal arrives: then create_done. */
  op = task_op_new(c, c->init, call, create_done, "create");
  if (task_launch(op, run_create, &err) < 0) {
    abandon_create(c);
    task_op_fail(op, &err);
  }
  return;

fail:
  cshim_ttrpc_call_fail_error(call, &err);
}

/* ---- Start ---- */

static void
start_done(task_op_t *op, cshim_runtime_result_t *result)
{
  task_process_t *p = op->process;
  task_container_t *c = op->container;

  p->starting = false;
  if (result->error) {
    task_op_fail_result(op, result);
    if (p->exit_pending)
      task_process_finish_exit(p);
    /* Nothing of a container whose start failed may stay behind (see cleanup_failed). */
    if (p == c->init)
      cleanup_failed(c);
    return;
  } else {
    Containerd__Task__V2__StartResponse resp = CONTAINERD__TASK__V2__START_RESPONSE__INIT;
    task_process_started(p);
    resp.pid = (uint32_t)p->pid;
    task_op_reply(op, &resp.base);
  }
  /* An exit reaped while starting goes out only now, after TaskStart. */
  if (p->exit_pending)
    task_process_finish_exit(p);
}

void
task_handle_start(cshim_ttrpc_call_t *call, const ProtobufCMessage *msg, void *data)
{
  task_service_t *svc = data;
  const Containerd__Task__V2__StartRequest *req = (const void *)msg;
  cshim_error_t err = NULL;
  task_container_t *c;
  task_process_t *p;
  task_op_t *op;
  cshim_list_t *l;

  if (task_service_lookup(svc, req->id, req->exec_id, &c, &p, &err) < 0)
    goto fail;
  /* Run again after a crash interrupted it: answered with the interrupted start's outcome
     (upgrade.c). */
  if (p->starting) {
    CSHIM_LIST_FOREACH (l, &c->ops) {
      op = cshim_list_entry(l, task_op_t, link);
      if (op->takes_start_call && op->process == p && op->call == NULL) {
        op->call = call;
        return;
      }
    }
  }
  if (p->starting || p->deleting) {
    cshim_error_make(&err, EBUSY, "process is being %s", p->starting ? "started" : "deleted");
    goto fail;
  }
  if (p->state != TASK_PROC_CREATED || p->exited) {
    cshim_error_make(&err, EBUSY, "cannot start a %s process",
                     p->state == TASK_PROC_RUNNING ? "running" : "stopped");
    goto fail;
  }
  if (p->exec_id) {
    task_exec_start(call, c, p);
    return;
  }

  p->starting = true;
  if (p == c->init && c->checkpoint) {
    task_checkpoint_restore(call, c, cleanup_failed);
    return;
  }
  op = task_op_new(c, p, call, start_done, "start");
  if (cshim_runtime_start(c->rt, c->id, c->log_path, task_op_runtime_cb, op, &err) < 0) {
    p->starting = false;
    task_op_fail(op, &err);
  }
  return;

fail:
  cshim_ttrpc_call_fail_error(call, &err);
}

/* ---- Delete ---- */

static void
reply_delete(cshim_ttrpc_call_t *call, task_process_t *p)
{
  Containerd__Task__V2__DeleteResponse resp = CONTAINERD__TASK__V2__DELETE_RESPONSE__INIT;
  Google__Protobuf__Timestamp ts = GOOGLE__PROTOBUF__TIMESTAMP__INIT;
  task_process_exited_at(p, &ts);
  resp.pid = (uint32_t)p->pid;
  resp.exit_status = p->exit_status;
  resp.exited_at = &ts;
  cshim_ttrpc_call_reply(call, &resp.base);
}

/* Task API v3 (containerd 2.x): no Shutdown comes for the containers of a sandbox, so the last
   Delete ends the shim, after its reply has left (same path as Shutdown). */
static void
exit_when_idle_v3(task_service_t *svc)
{
  if (!svc->api_v3 || !cshim_list_empty(&svc->containers) || svc->shutdown_requested ||
      svc->closing)
    return;
  task_service_request_shutdown(svc);
}

static void
delete_io_done_cb(void *data)
{
  task_op_t *op = data;
  task_container_t *c = op->container;
  task_service_t *svc = c->svc;
  task_process_t *p = op->process;
  Containerd__Events__TaskDelete ev = CONTAINERD__EVENTS__TASK_DELETE__INIT;
  Google__Protobuf__Timestamp ts = GOOGLE__PROTOBUF__TIMESTAMP__INIT;

  task_io_close(p->io);
  p->io = NULL;
  task_mount_unmount_all(c->mounted, c->n_mounted, c->svc->log);
  c->mounted = NULL;
  c->n_mounted = 0;

  task_process_exited_at(p, &ts);
  ev.container_id = c->id;
  ev.pid = (uint32_t)p->pid;
  ev.exit_status = p->exit_status;
  ev.exited_at = &ts;
  ev.id = "";
  task_service_publish(c->svc, CSHIM_TOPIC_TASK_DELETE, &ev.base);

  reply_delete(op->call, p);
  op->call = NULL;
  task_service_remove(c);
  task_op_complete(op);
  exit_when_idle_v3(svc);
}

static void
delete_done(task_op_t *op, cshim_runtime_result_t *result)
{
  task_process_t *p = op->process;

  if (result->error && result->error->status != -ENOENT) {
    p->deleting = false;
    task_op_fail_result(op, result);
    return;
  }
  if (!p->exited) {
    /* Never started: `delete --force` killed it. Its own exit may not be reaped yet. */
    struct timespec now;
    if (p->watching) {
      cshim_reaper_t *reaper = op->container->reaper;
      reaper->ops->unwatch(reaper, p->pid, task_process_exit_cb, p);
      p->watching = false;
    }
    task_now(&now);
    task_process_set_exited(p, SIGKILL, &now);
  }
  if (p->io)
    task_io_wait(p->io, TASK_IO_DRAIN_TIMEOUT_MS, delete_io_done_cb, op);
  else
    delete_io_done_cb(op);
}

void
task_handle_delete(cshim_ttrpc_call_t *call, const ProtobufCMessage *msg, void *data)
{
  task_service_t *svc = data;
  const Containerd__Task__V2__DeleteRequest *req = (const void *)msg;
  cshim_error_t err = NULL;
  task_container_t *c;
  task_process_t *p;
  task_op_t *op;
  cshim_list_t *l;
  bool force;

  if (task_service_lookup(svc, req->id, req->exec_id, &c, &p, &err) < 0)
    goto fail;
  if (p == c->init && p->deleting) {
    /* A failed create, start or restore being cleaned up (cleanup_failed): containerd's Delete
       that follows is answered once the runtime's delete has finished. */
    CSHIM_LIST_FOREACH (l, &c->ops) {
      op = cshim_list_entry(l, task_op_t, link);
      if (op->done == cleanup_done && op->call == NULL) {
        op->call = call;
        return;
      }
    }
  }
  if (p->starting || p->deleting) {
    cshim_error_make(&err, EBUSY, "process is being %s", p->starting ? "started" : "deleted");
    goto fail;
  }
  if (p->state == TASK_PROC_RUNNING) {
    cshim_error_make_code(&err, CSHIM_GRPC_UNKNOWN, "cannot delete a running process");
    goto fail;
  }
  if (p->exec_id) {
    task_exec_delete(call, c, p);
    return;
  }

  force = p->state == TASK_PROC_CREATED;
  p->deleting = true;
  op = task_op_new(c, p, call, delete_done, "delete");
  if (cshim_runtime_delete(c->rt, c->id, force, c->log_path, task_op_runtime_cb, op, &err) < 0) {
    p->deleting = false;
    task_op_fail(op, &err);
  }
  return;

fail:
  cshim_ttrpc_call_fail_error(call, &err);
}

void
task_handle_delete_v3(cshim_ttrpc_call_t *call, const ProtobufCMessage *msg, void *data)
{
  task_service_t *svc = data;

  svc->api_v3 = true;
  task_handle_delete(call, msg, data);
}
