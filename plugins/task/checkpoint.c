// SPDX-License-Identifier: Apache-2.0
// Checkpoint and restore through the runtime (and CRIU): `runtime checkpoint` with the options
// of containerd.runc.v1.CheckpointOptions and TaskCheckpointed; a task created from a checkpoint
// is brought back by `runtime restore` when it is started, as the runc shim does.
#define _GNU_SOURCE
#include "checkpoint.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cshim/util.h>

#include "container.h"
#include "io.h"
#include "launch.h"
#include "model.h"
#include "oom.h"
#include "op.h"
#include "process.h"
#include "service.h"

#include "containerd/events/task.pb-c.h"
#include "containerd/runc/options/oci.pb-c.h"
#include "containerd/task/v2/shim.pb-c.h"

#define CHECKPOINT_OPTIONS_TYPE "containerd.runc.v1.CheckpointOptions"
#define CRIU_LOG "dump.log"
#define CRIU_LOG_COPY "criu-dump.log"

struct checkpoint
{
  char *image;    /* reported in TaskCheckpointed */
  char *work;     /* criu's work directory */
  bool temp_work; /* ours: removed when done */
};

static int
remove_cb(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
  (void)st;
  (void)ftw;
  if (flag == FTW_DP)
    rmdir(path);
  else
    unlink(path);
  return 0;
}

/* The work directory holds criu's logs and statistics: a handful of small local files, removed
   synchronously. */
static void
free_checkpoint(void *data)
{
  struct checkpoint *ck = data;
  if (ck->temp_work && ck->work)
    nftw(ck->work, remove_cb, 8, FTW_DEPTH | FTW_PHYS);
  free(ck->image);
  free(ck->work);
  free(ck);
}

static bool
is_checkpoint_options(const char *type_url)
{
  const char *slash = strrchr(type_url, '/');
  return strcmp(slash ? slash + 1 : type_url, CHECKPOINT_OPTIONS_TYPE) == 0;
}

/* Keep criu's log where containerd's users look for it: <bundle>/criu-dump.log (small file). */
static char *
keep_criu_log(const task_container_t *c, const char *work)
{
  cshim_autofree char *src = NULL;
  cshim_autofree char *dst = NULL;
  cshim_autoclose int in = -1;
  cshim_autoclose int out = -1;
  char buf[8192];
  ssize_t n;

  cshim_xasprintf(&src, "%s/%s", work, CRIU_LOG);
  cshim_xasprintf(&dst, "%s/%s", c->bundle, CRIU_LOG_COPY);
  in = open(src, O_RDONLY | O_CLOEXEC);
  if (in < 0)
    return NULL;
  out = open(dst, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (out < 0)
    return NULL;
  while ((n = read(in, buf, sizeof buf)) > 0)
    if (write(out, buf, (size_t)n) != n)
      return NULL;
  return cshim_steal_pointer(&dst);
}

static void
checkpoint_done(task_op_t *op, cshim_runtime_result_t *result)
{
  task_container_t *c = op->container;
  struct checkpoint *ck = op->data;
  Containerd__Events__TaskCheckpointed ev = CONTAINERD__EVENTS__TASK_CHECKPOINTED__INIT;

  if (result->error) {
    cshim_error_t err = cshim_steal_pointer(&result->error);
    cshim_autofree char *log = keep_criu_log(c, ck->work);
    if (log)
      cshim_error_wrap(&err, "checkpoint `%s` (criu log: `%s`)", c->id, log);
    else
      cshim_error_wrap(&err, "checkpoint `%s`", c->id);
    task_op_fail(op, &err);
    return;
  }
  ev.container_id = c->id;
  ev.checkpoint = ck->image;
  task_service_publish(c->svc, CSHIM_TOPIC_TASK_CHECKPOINTED, &ev.base);
  task_op_reply_empty(op);
}

/* The request's CheckpointOptions (NULL = none given); EINVAL for another type or bad bytes. */
static int
unpack_options(const Containerd__Task__V2__CheckpointTaskRequest *req,
               Containerd__Runc__V1__CheckpointOptions **out, cshim_error_t *err)
{
  *out = NULL;
  if (req->options == NULL || req->options->type_url == NULL || *req->options->type_url == '\0')
    return 0;
  if (!is_checkpoint_options(req->options->type_url))
    return cshim_error_make(err, EINVAL, "checkpoint options of type `%s` are not supported",
                            req->options->type_url);
  *out = containerd__runc__v1__checkpoint_options__unpack(NULL, req->options->value.len,
                                                          req->options->value.data);
  if (*out == NULL)
    return cshim_error_make(err, EINVAL, "decode `%s`: malformed protobuf", req->options->type_url);
  return 0;
}

/* Where the image goes and where criu works (a temporary work directory is removed after). */
static struct checkpoint *
checkpoint_new(const task_container_t *c, const Containerd__Runc__V1__CheckpointOptions *o,
               const char *image)
{
  struct checkpoint *ck = cshim_xmalloc0(sizeof *ck);
  ck->image = cshim_xstrdup(image);
  if (o && o->work_path && *o->work_path)
    ck->work = cshim_xstrdup(o->work_path);
  else if (c->opts.criu_work_path)
    ck->work = cshim_xstrdup(c->opts.criu_work_path);
  else {
    /* <bundle>/work is containerd's persistent work directory for the task. */
    cshim_xasprintf(&ck->work, "%s/work/criu-work", c->bundle);
    ck->temp_work = true;
  }
  return ck;
}

/* The runtime's checkpoint flags from ck and o. *empty_ns (caller frees) holds the list
   copts->empty_ns points to. */
static void
checkpoint_opts(const task_container_t *c, const struct checkpoint *ck,
                const Containerd__Runc__V1__CheckpointOptions *o,
                cshim_runtime_checkpoint_opts_t *copts, const char ***empty_ns)
{
  copts->image_path = ck->image;
  copts->work_path = ck->work;
  copts->log_path = c->log_path;
  if (o) {
    copts->leave_running = !o->exit;
    copts->tcp_established = o->open_tcp;
    copts->ext_unix_sk = o->external_unix_sockets;
    copts->shell_job = o->terminal;
    copts->file_locks = o->file_locks;
    copts->cgroups_mode = o->cgroups_mode && *o->cgroups_mode ? o->cgroups_mode : NULL;
    copts->parent_path = o->parent_path && *o->parent_path ? o->parent_path : NULL;
  } else
    copts->leave_running = true;

  /* protobuf-c's repeated strings are not NULL-terminated: copy them into a list that is. */
  if (o && o->n_empty_namespaces) {
    *empty_ns = cshim_xmalloc0((o->n_empty_namespaces + 1) * sizeof **empty_ns);
    for (size_t i = 0; i < o->n_empty_namespaces; i++)
      (*empty_ns)[i] = o->empty_namespaces[i];
    copts->empty_ns = *empty_ns;
  } else
    copts->empty_ns = NULL;
}

void
task_handle_checkpoint(cshim_ttrpc_call_t *call, const ProtobufCMessage *msg, void *data)
{
  task_service_t *svc = data;
  const Containerd__Task__V2__CheckpointTaskRequest *req = (const void *)msg;
  Containerd__Runc__V1__CheckpointOptions *o = NULL;
  cshim_autofree const char **empty_ns = NULL;
  cshim_runtime_checkpoint_opts_t copts = {0};
  cshim_error_t err = NULL;
  task_container_t *c;
  task_process_t *p;
  struct checkpoint *ck;
  const char *image;
  task_op_t *op;

  if (task_service_lookup(svc, req->id, NULL, &c, &p, &err) < 0)
    goto fail;
  if (p->exited || p->state == TASK_PROC_STOPPED || p->deleting)
    cshim_error_make(&err, EBUSY, "cannot checkpoint a stopped container");
  else if (p->state == TASK_PROC_CREATED || p->starting)
    cshim_error_make(&err, EBUSY, "cannot checkpoint a task in created state");
  if (err || unpack_options(req, &o, &err) < 0)
    goto fail;

  image = req->path && *req->path                               ? req->path
          : o && o->image_path && *o->image_path                ? o->image_path
          : c->opts.criu_image_path && *c->opts.criu_image_path ? c->opts.criu_image_path
                                                                : NULL;
  if (image == NULL) {
    cshim_error_make(&err, EINVAL, "checkpoint `%s`: no image path", c->id);
    goto fail;
  }

  ck = checkpoint_new(c, o, image);
  checkpoint_opts(c, ck, o, &copts, &empty_ns);
  op = task_op_new(c, p, call, checkpoint_done, "checkpoint");
  op->data = ck;
  op->free_data = free_checkpoint;
  if (cshim_runtime_checkpoint(c->rt, c->id, &copts, task_op_runtime_cb, op, &err) < 0)
    task_op_fail(op, &err);
  if (o)
    containerd__runc__v1__checkpoint_options__free_unpacked(o, NULL);
  return;

fail:
  if (o)
    containerd__runc__v1__checkpoint_options__free_unpacked(o, NULL);
  cshim_ttrpc_call_fail_error(call, &err);
}

/* ---- restore ---- */

/* A restore's own state (op->data): who cleans up after it failed. */
struct restore
{
  void (*failed)(task_container_t *c);
};

static void
restore_done(task_op_t *op, cshim_runtime_result_t *result)
{
  task_container_t *c = op->container;
  task_process_t *p = op->process;
  Containerd__Task__V2__StartResponse resp = CONTAINERD__TASK__V2__START_RESPONSE__INIT;
  void (*failed)(task_container_t * c) = ((struct restore *)op->data)->failed;
  cshim_error_t err = NULL;
  pid_t pid = 0;

  if (result->error) {
    err = cshim_steal_pointer(&result->error);
    if (op->launched) /* restored, but its terminal never came */
      goto fail;
    p->starting = false;
    cshim_error_wrap(&err, "restore `%s` from `%s`", c->id, c->checkpoint);
    task_op_fail(op, &err);
    /* As after a failed start: whatever the runtime left (runsc's sandbox and gofer, a runc
       container half restored) goes, then the record, then the shim if it serves nothing. */
    failed(c);
    return;
  }
  if (task_read_pid(c->pid_file, &pid, &err) < 0)
    goto fail;
  p->pid = pid;
  /* Still "starting": an exit the reaper already holds is kept back until TaskStart is out. */
  if (task_process_watch(p, &err) < 0)
    goto fail;
  task_container_track_cgroup(c);
  p->starting = false;
  task_process_started(p);
  resp.pid = (uint32_t)pid;
  task_op_reply(op, &resp.base);
  if (p->exit_pending)
    task_process_finish_exit(p);
  return;

fail:
  p->starting = false;
  /* The runtime restored it but we cannot follow it: do not leave it running unseen. */
  cshim_error_wrap(&err, "restore `%s`", c->id);
  task_op_fail(op, &err);
  if (p->exit_pending)
    task_process_finish_exit(p);
  failed(c);
}

/* task_launch's runtime step: IO (or a logging binary) is ready, the console socket exists for
   a terminal. */
static int
run_restore(task_op_t *op, const char *console_socket, cshim_error_t *err)
{
  task_container_t *c = op->container;
  task_process_t *p = op->process;
  cshim_runtime_create_opts_t ropts = {0};
  cshim_autofree char *work = NULL;

  if (c->opts.criu_work_path)
    work = cshim_xstrdup(c->opts.criu_work_path);
  else
    cshim_xasprintf(&work, "%s/work", c->bundle);
  ropts.bundle = c->bundle;
  ropts.pid_file = c->pid_file;
  ropts.log_path = c->log_path;
  ropts.console_socket = console_socket;
  ropts.no_pivot = c->opts.no_pivot_root;
  ropts.no_new_keyring = c->opts.no_new_keyring;
  ropts.detach = true;
  ropts.criu_image_path = c->checkpoint;
  ropts.criu_work_path = work;
  task_io_runtime_fds(p->io, &ropts.io);
  return cshim_runtime_restore(c->rt, c->id, &ropts, task_op_runtime_cb, op, err);
}

void
task_checkpoint_restore(cshim_ttrpc_call_t *call, task_container_t *c,
                        void (*failed)(task_container_t *c))
{
  task_op_t *op = task_op_new(c, c->init, call, restore_done, "start");
  struct restore *r = cshim_xmalloc0(sizeof *r);
  cshim_error_t err = NULL;

  r->failed = failed;
  op->data = r;
  op->free_data = free;
  if (unlink(c->pid_file) < 0 && errno != ENOENT)
    cshim_error_sys(&err, errno, "remove stale `%s`", c->pid_file);
  else
    task_launch(op, run_restore, &err);
  if (err) {
    c->init->starting = false;
    task_op_fail(op, &err);
  }
}
