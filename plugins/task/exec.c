// SPDX-License-Identifier: Apache-2.0
// Exec processes (Exec, and Start/Delete of an exec id), ResizePty, and the launch sequence
// shared with Create: logging binary ready -> runtime command -> terminal received.
#define _GNU_SOURCE
#include "exec.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include <cshim/file.h>
#include <cshim/util.h>

#include "container.h"
#include "io.h"
#include "launch.h"
#include "model.h"
#include "op.h"
#include "process.h"
#include "service.h"
#include "trace.h"

#include "containerd/events/task.pb-c.h"
#include "containerd/task/v2/shim.pb-c.h"

#define PROCESS_SPEC_TYPE "types.containerd.io/opencontainers/runtime-spec/1/Process"

/* ---- Exec ---- */

/* The request's OCI process with `terminal` taken from the request, as the runc shim does. */
static char *
process_spec(const Containerd__Task__V2__ExecProcessRequest *req, cshim_error_t *err)
{
  json_error_t jerr;
  json_t *spec;
  char *text;

  if (req->spec == NULL || req->spec->value.len == 0) {
    cshim_error_make(err, EINVAL, "exec `%s`: no process spec", req->exec_id);
    return NULL;
  }
  spec = json_loadb((const char *)req->spec->value.data, req->spec->value.len, 0, &jerr);
  if (spec == NULL || !json_is_object(spec)) {
    cshim_error_make(err, EINVAL, "exec `%s`: the process spec (%s) is not a JSON object: %s",
                     req->exec_id, req->spec->type_url ? req->spec->type_url : "",
                     spec ? "not an object" : jerr.text);
    json_decref(spec);
    return NULL;
  }
  json_object_set_new(spec, "terminal", json_boolean(req->terminal));
  text = json_dumps(spec, JSON_COMPACT);
  json_decref(spec);
  return text;
}

void
task_handle_exec(cshim_ttrpc_call_t *call, const ProtobufCMessage *msg, void *data)
{
  task_service_t *svc = data;
  const Containerd__Task__V2__ExecProcessRequest *req = (const void *)msg;
  Containerd__Events__TaskExecAdded ev = CONTAINERD__EVENTS__TASK_EXEC_ADDED__INIT;
  cshim_error_t err = NULL;
  task_io_kind_t kind;
  task_container_t *c;
  task_process_t *p;
  char *spec;

  /* The id names files in the bundle: check it before anything else. */
  if (task_validate_id(req->exec_id, &err) < 0) {
    cshim_error_wrap(&err, "exec id");
    goto fail;
  }
  c = task_service_find(svc, req->id);
  if (c == NULL) {
    cshim_error_make(&err, ENOENT, "container not created: not found");
    goto fail;
  }
  if (task_container_process(c, req->exec_id) != NULL) {
    cshim_error_make(&err, EEXIST, "id %s: already exists", req->exec_id);
    goto fail;
  }
  if (c->init->deleting || c->init->exited || c->init->state == TASK_PROC_STOPPED) {
    cshim_error_make(&err, EBUSY, "cannot exec in a stopped state");
    goto fail;
  }
  /* Created from a checkpoint: nothing runs until Start restores it. */
  if (c->checkpoint && c->init->state == TASK_PROC_CREATED) {
    cshim_error_make(&err, EBUSY, "cannot exec in a created state");
    goto fail;
  }
  if (task_io_kind(req->stdin, req->stdout, req->stderr, &kind, &err) < 0)
    goto fail;
  if (req->spec && req->spec->type_url && strcmp(req->spec->type_url, PROCESS_SPEC_TYPE) != 0)
    cshim_log_debug(svc->log, "exec `%s`: process spec of type `%s`", req->exec_id,
                    req->spec->type_url);
  spec = process_spec(req, &err);
  if (spec == NULL)
    goto fail;

  p = task_process_new(c, req->exec_id, req->stdin, req->stdout, req->stderr, req->terminal);
  p->spec_json = spec;
  cshim_list_push_back(&c->execs, &p->link);

  ev.container_id = c->id;
  ev.exec_id = p->exec_id;
  task_service_publish(svc, CSHIM_TOPIC_TASK_EXEC_ADDED, &ev.base);
  task_reply_empty(call);
  return;

fail:
  cshim_ttrpc_call_fail_error(call, &err);
}

/* ---- Start (exec) ---- */

static char *
exec_file(const task_process_t *p, const char *suffix)
{
  char *path;
  cshim_xasprintf(&path, "%s/%s%s", p->container->bundle, p->exec_id, suffix);
  return path;
}

static int
exec_run(task_op_t *op, const char *console_socket, cshim_error_t *err)
{
  task_container_t *c = op->container;
  task_process_t *p = op->process;
  cshim_runtime_exec_opts_t o = {0};
  cshim_autofree char *spec = exec_file(p, ".process.json");
  cshim_autofree char *pid_file = exec_file(p, ".pid");

  o.process_json = spec;
  o.pid_file = pid_file;
  o.console_socket = console_socket;
  o.log_path = c->log_path;
  o.detach = true;
  task_io_runtime_fds(p->io, &o.io);
  return cshim_runtime_exec(c->rt, c->id, &o, task_op_runtime_cb, op, err);
}

/* Start failed: the process stays created (Start may be retried; Delete removes it). */
static void
exec_start_failed(task_op_t *op, cshim_error_t *err)
{
  task_process_t *p = op->process;
  p->starting = false;
  task_io_close(p->io);
  p->io = NULL;
  cshim_error_wrap(err, "OCI runtime exec failed");
  task_op_fail(op, err);
}

static void
exec_done(task_op_t *op, cshim_runtime_result_t *result)
{
  task_process_t *p = op->process;
  Containerd__Task__V2__StartResponse resp = CONTAINERD__TASK__V2__START_RESPONSE__INIT;
  cshim_autofree char *spec = exec_file(p, ".process.json");
  cshim_autofree char *pid_file = exec_file(p, ".pid");
  cshim_error_t err = NULL;
  pid_t pid = 0;

  unlink(spec);
  if (result->error) {
    err = cshim_steal_pointer(&result->error);
    /* The terminal did not come although the process runs: do not leave it behind. */
    if (op->launched && cshim_read_pid_file(pid_file, &pid, NULL) == 0 && pid > 0)
      kill(pid, SIGKILL);
    goto fail;
  }
  if (task_read_pid(pid_file, &pid, &err) < 0)
    goto fail;
  p->pid = pid;
  /* The process is ours (reparented to the subreaper when the runtime exited); an exit that
     was reaped before this watch is replayed on the next loop turn. */
  if (task_process_watch(p, &err) < 0) {
    kill(pid, SIGKILL);
    p->pid = 0;
    goto fail;
  }
  p->starting = false;
  task_process_started(p);
  resp.pid = (uint32_t)pid;
  task_op_reply(op, &resp.base);
  /* An exit reaped while starting goes out only now, after TaskExecStarted. */
  if (p->exit_pending)
    task_process_finish_exit(p);
  return;

fail:
  exec_start_failed(op, &err);
}

/* Never through a symbolic link planted in the bundle. */
static int
write_spec(const char *path, const char *text, cshim_error_t *err)
{
  return cshim_file_write_state(path, text, strlen(text), 0600, err);
}

void
task_exec_start(cshim_ttrpc_call_t *call, task_container_t *c, task_process_t *p)
{
  task_service_t *svc = c->svc;
  cshim_autofree char *spec = exec_file(p, ".process.json");
  cshim_autofree char *pid_file = exec_file(p, ".pid");
  cshim_error_t err = NULL;
  task_io_opts_t o;
  cshim_span_t *span;
  task_op_t *op;

  if (c->rt == NULL) {
    cshim_error_make(&err, EBUSY, "container `%s` has no runtime", c->id);
    goto fail;
  }
  task_process_io_opts(p, &o);
  span = task_trace_start(svc, "stdio setup");
  cshim_span_set_attr(svc->tracer, span, "container.id", c->id);
  cshim_span_set_attr(svc->tracer, span, "exec.id", p->exec_id);
  if (task_io_open(svc->loop, svc->log, &o, &p->io, &err) < 0 || task_io_start(p->io, &err) < 0) {
    task_trace_end(svc, span, &err);
    goto fail;
  }
  task_trace_end(svc, span, NULL);
  if (write_spec(spec, p->spec_json, &err) < 0)
    goto fail;
  if (unlink(pid_file) < 0 && errno != ENOENT) {
    cshim_error_sys(&err, errno, "remove stale `%s`", pid_file);
    goto fail;
  }

  p->starting = true;
  op = task_op_new(c, p, call, exec_done, "exec");
  if (task_launch(op, exec_run, &err) < 0) {
    unlink(spec);
    exec_start_failed(op, &err);
  }
  return;

fail:
  task_io_close(p->io);
  p->io = NULL;
  cshim_ttrpc_call_fail_error(call, &err);
}

/* ---- Delete (exec) ---- */

static void
exec_delete_io_done_cb(void *data)
{
  task_op_t *op = data;
  task_container_t *c = op->container;
  task_process_t *p = op->process;
  Containerd__Events__TaskDelete ev = CONTAINERD__EVENTS__TASK_DELETE__INIT;
  Containerd__Task__V2__DeleteResponse resp = CONTAINERD__TASK__V2__DELETE_RESPONSE__INIT;
  Google__Protobuf__Timestamp ts = GOOGLE__PROTOBUF__TIMESTAMP__INIT;
  cshim_autofree char *pid_file = exec_file(p, ".pid");

  task_io_close(p->io);
  p->io = NULL;
  unlink(pid_file);

  task_process_exited_at(p, &ts);
  /* containerd's docs: exec deletes SHOULD publish TaskDelete, with the exec id as `id`. */
  ev.container_id = c->id;
  ev.pid = (uint32_t)p->pid;
  ev.exit_status = p->exit_status;
  ev.exited_at = &ts;
  ev.id = p->exec_id;
  task_service_publish(c->svc, CSHIM_TOPIC_TASK_DELETE, &ev.base);

  resp.pid = (uint32_t)p->pid;
  resp.exit_status = p->exit_status;
  resp.exited_at = &ts;
  cshim_ttrpc_call_reply(op->call, &resp.base);
  op->call = NULL;

  cshim_list_remove(&p->link);
  task_process_fail_waiters(p, CSHIM_GRPC_NOT_FOUND, "process deleted before it ran: not found");
  op->process = NULL;
  task_process_free(p);
  task_op_complete(op);
}

void
task_exec_delete(cshim_ttrpc_call_t *call, task_container_t *c, task_process_t *p)
{
  task_op_t *op;

  p->deleting = true;
  op = task_op_new(c, p, call, NULL, "delete exec");
  /* Like the runc shim: up to 2 s for the output copies to finish, then everything is closed
     (a logging binary is stopped first). */
  if (p->io)
    task_io_wait(p->io, TASK_IO_DRAIN_TIMEOUT_MS, exec_delete_io_done_cb, op);
  else
    exec_delete_io_done_cb(op);
}

/* ---- ResizePty ---- */

void
task_handle_resize_pty(cshim_ttrpc_call_t *call, const ProtobufCMessage *msg, void *data)
{
  task_service_t *svc = data;
  const Containerd__Task__V2__ResizePtyRequest *req = (const void *)msg;
  cshim_error_t err = NULL;
  task_container_t *c;
  task_process_t *p;

  if (task_service_lookup(svc, req->id, req->exec_id, &c, &p, &err) < 0)
    goto fail;
  /* The runc shim's exec state machine refuses this once the exec has exited (its init does
     not); without a terminal it is a no-op. */
  if (p->exec_id && (p->exited || p->state == TASK_PROC_STOPPED)) {
    cshim_error_make_code(&err, CSHIM_GRPC_UNKNOWN, "cannot resize a stopped container");
    goto fail;
  }
  if (task_io_resize(p->io, req->width, req->height, &err) < 0)
    goto fail;
  task_reply_empty(call);
  return;

fail:
  cshim_ttrpc_call_fail_error(call, &err);
}
