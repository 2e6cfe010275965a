// SPDX-License-Identifier: Apache-2.0
// The task plugin's live-upgrade hooks: containers, processes and their stdio are handed to the
// new image; nothing is started or stopped (docs/live-upgrade.md).
#define _GNU_SOURCE
#include "upgrade.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cshim/util.h>

#include "container.h"
#include "io.h"
#include "lifecycle.h"
#include "logger.h"
#include "model.h"
#include "oom.h"
#include "op.h"
#include "process.h"
#include "service.h"

#include "containerd/task/v2/shim.pb-c.h"

/* Record tags; never reuse a number. */
enum
{
  UP_CONTAINER = 1, /* list */
  UP_API_V3 = 2,    /* containerd drives this shim through task API v3 (its lifetime rule) */

  C_ID = 1,
  C_BUNDLE = 2,
  C_OPTS = 3, /* list */
  C_MOUNTED = 4,
  C_KILL_ALL = 5,
  C_PAUSED = 6,
  C_CHECKPOINT = 7,
  C_PARENT_CHECKPOINT = 8,
  C_INIT = 9,    /* list: a process */
  C_EXEC = 10,   /* list: a process, in exec-list order */
  C_CGROUP = 11, /* the init's cgroup was tracked: track it again */
  C_OOM_REPORTED = 12,
  C_OOM_CREDIT = 13,

  O_NO_PIVOT = 1,
  O_NO_KEYRING = 2,
  O_SYSTEMD = 3,
  O_IO_UID = 4,
  O_IO_GID = 5,
  O_BINARY = 6,
  O_ROOT = 7,
  O_SHIM_CGROUP = 8,
  O_CRIU_IMAGE = 9,
  O_CRIU_WORK = 10,
  O_CRIU = 11,

  P_EXEC_ID = 1,
  P_PID = 2,
  P_STATE = 3,
  P_EXITED = 4,
  P_WAIT_STATUS = 5,
  P_EXIT_STATUS = 6,
  P_EXITED_SEC = 7,
  P_EXITED_NSEC = 8,
  P_STDIN = 9,
  P_STDOUT = 10,
  P_STDERR = 11,
  P_TERMINAL = 12,
  P_SPEC = 13,
  P_STDIN_CLOSED = 14,
  P_WATCHING = 15,
  P_IO = 16, /* list: task_io_save */
};

static char reason[512];

static const char *
process_busy(const task_process_t *p)
{
  const char *why;
  if (p->starting)
    return "being started";
  if (p->deleting)
    return "being deleted";
  if (p->exit_pending)
    return "exit not yet published";
  why = task_io_busy(p->io);
  return why;
}

/* Runtime commands that only read: a crash snapshot may be taken while one runs (the call is
   run again after a crash; the command's exit is reaped as unclaimed). */
static bool
read_only_op(const task_op_t *op)
{
  return op->what && (strcmp(op->what, "state") == 0 || strcmp(op->what, "ps") == 0);
}

static bool
only_read_only_ops(const task_container_t *c)
{
  cshim_list_t *l;
  CSHIM_LIST_FOREACH (l, &c->ops) {
    if (!read_only_op(cshim_list_entry(l, task_op_t, link)))
      return false;
  }
  return true;
}

static const char *
busy(task_service_t *svc, bool crash)
{

  if (svc->closing || svc->shutdown_requested)
    return "shutting down";
  if (svc->removed)
    return "a deleted container is being released";
  for (task_container_t *c = svc->containers; c; c = c->next) {
    const char *why = NULL;
    const char *who = "init";
    if (c->creating)
      why = "being created";
    else if (task_op_first(c) && !(crash && only_read_only_ops(c)))
      why = task_op_first(c)->what ? task_op_first(c)->what : "an operation";
    else if (c->pausing)
      why = "being paused";
    else if ((why = process_busy(c->init)) == NULL)
      for (task_process_t *p = c->execs; p && why == NULL; p = p->next) {
        why = process_busy(p);
        who = p->exec_id;
      }
    if (why) {
      snprintf(reason, sizeof reason, "container `%s` (%s): %s", c->id, who, why);
      return reason;
    }
  }
  return NULL;
}

const char *
task_upgrade_busy(void *instance)
{
  return busy(instance, false);
}

static void
save_process(const task_process_t *p, cshim_state_writer_t *w)
{
  cshim_state_put_str(w, P_EXEC_ID, p->exec_id);
  cshim_state_put_u32(w, P_PID, (uint32_t)p->pid);
  cshim_state_put_u32(w, P_STATE, (uint32_t)p->state);
  cshim_state_put_bool(w, P_EXITED, p->exited);
  cshim_state_put_u32(w, P_WAIT_STATUS, (uint32_t)p->wait_status);
  cshim_state_put_u32(w, P_EXIT_STATUS, p->exit_status);
  cshim_state_put_i64(w, P_EXITED_SEC, (int64_t)p->exited_at.tv_sec);
  cshim_state_put_i64(w, P_EXITED_NSEC, (int64_t)p->exited_at.tv_nsec);
  cshim_state_put_str(w, P_STDIN, p->stdin_);
  cshim_state_put_str(w, P_STDOUT, p->stdout_);
  cshim_state_put_str(w, P_STDERR, p->stderr_);
  cshim_state_put_bool(w, P_TERMINAL, p->terminal);
  cshim_state_put_str(w, P_SPEC, p->spec_json);
  cshim_state_put_bool(w, P_STDIN_CLOSED, p->stdin_closed);
  cshim_state_put_bool(w, P_WATCHING, p->watching);
  if (p->io) {
    cshim_state_begin(w, P_IO);
    task_io_save(p->io, w);
    cshim_state_end(w);
  }
}

int
task_upgrade_save(void *instance, cshim_state_writer_t *w, cshim_error_t *err)
{
  task_service_t *svc = instance;
  const char *why = busy(svc, cshim_state_writer_is_crash(w));

  if (why)
    return cshim_error_make(err, EBUSY, "%s", why);
  cshim_state_put_bool(w, UP_API_V3, svc->api_v3);
  for (task_container_t *c = svc->containers; c; c = c->next) {
    const cshim_runc_options_t *o = &c->opts;
    cshim_state_begin(w, UP_CONTAINER);
    cshim_state_put_str(w, C_ID, c->id);
    cshim_state_put_str(w, C_BUNDLE, c->bundle);
    cshim_state_begin(w, C_OPTS);
    cshim_state_put_bool(w, O_NO_PIVOT, o->no_pivot_root);
    cshim_state_put_bool(w, O_NO_KEYRING, o->no_new_keyring);
    cshim_state_put_bool(w, O_SYSTEMD, o->systemd_cgroup);
    cshim_state_put_u32(w, O_IO_UID, o->io_uid);
    cshim_state_put_u32(w, O_IO_GID, o->io_gid);
    cshim_state_put_str(w, O_BINARY, o->binary_name);
    cshim_state_put_str(w, O_ROOT, o->root);
    cshim_state_put_str(w, O_SHIM_CGROUP, o->shim_cgroup);
    cshim_state_put_str(w, O_CRIU_IMAGE, o->criu_image_path);
    cshim_state_put_str(w, O_CRIU_WORK, o->criu_work_path);
    cshim_state_put_str(w, O_CRIU, o->criu_path);
    cshim_state_end(w);
    for (size_t i = 0; i < c->n_mounted; i++)
      cshim_state_put_str(w, C_MOUNTED, c->mounted[i]);
    cshim_state_put_bool(w, C_KILL_ALL, c->kill_all_on_exit);
    cshim_state_put_bool(w, C_PAUSED, c->paused);
    cshim_state_put_str(w, C_CHECKPOINT, c->checkpoint);
    cshim_state_put_str(w, C_PARENT_CHECKPOINT, c->parent_checkpoint);
    cshim_state_put_bool(w, C_CGROUP, c->cgroup != NULL);
    {
      uint64_t reported, credit;
      if (task_oom_progress(c, &reported, &credit)) {
        cshim_state_put_u64(w, C_OOM_REPORTED, reported);
        cshim_state_put_u64(w, C_OOM_CREDIT, credit);
      }
    }
    cshim_state_begin(w, C_INIT);
    save_process(c->init, w);
    cshim_state_end(w);
    for (task_process_t *p = c->execs; p; p = p->next) {
      cshim_state_begin(w, C_EXEC);
      save_process(p, w);
      cshim_state_end(w);
    }
    cshim_state_end(w);
  }
  return 0;
}

/* ---- restore ---- */

/* The fields of p (made by task_process_new) from its record. */
static int
restore_process(task_service_t *svc, task_process_t *p, const cshim_state_reader_t *r,
                cshim_error_t *err)
{
  cshim_state_item_t it;
  uint32_t pid = 0, state = TASK_PROC_CREATED, wait_status = 0;
  int64_t sec = 0, nsec = 0;
  bool watching = false;
  int ret;

  if (cshim_state_get_u32(r, P_PID, &pid, err) < 0 ||
      cshim_state_get_u32(r, P_STATE, &state, err) < 0 ||
      cshim_state_get_bool(r, P_EXITED, &p->exited, err) < 0 ||
      cshim_state_get_u32(r, P_WAIT_STATUS, &wait_status, err) < 0 ||
      cshim_state_get_u32(r, P_EXIT_STATUS, &p->exit_status, err) < 0 ||
      cshim_state_get_i64(r, P_EXITED_SEC, &sec, err) < 0 ||
      cshim_state_get_i64(r, P_EXITED_NSEC, &nsec, err) < 0 ||
      cshim_state_get_bool(r, P_STDIN_CLOSED, &p->stdin_closed, err) < 0 ||
      cshim_state_get_bool(r, P_WATCHING, &watching, err) < 0 ||
      cshim_state_get_str(r, P_SPEC, &p->spec_json, err) < 0)
    return -EBADMSG;
  if (state < TASK_PROC_CREATED || state > TASK_PROC_STOPPED)
    return cshim_error_make(err, EBADMSG, "state: process state %u", state);
  p->pid = (pid_t)pid;
  p->state = (task_proc_state_t)state;
  p->wait_status = (int)wait_status;
  p->exited_at.tv_sec = (time_t)sec;
  p->exited_at.tv_nsec = (long)nsec;
  ret = cshim_state_find(r, P_IO, &it, err);
  if (ret > 0) {
    cshim_state_reader_t ior;
    ret = cshim_state_item_list(&it, &ior, err);
    if (ret == 0)
      ret = task_io_restore(svc->loop, svc->log, svc->reaper, &ior, &p->io, err);
    if (ret < 0)
      return cshim_error_wrap(err, "stdio of pid %d", (int)p->pid);
  }
  if (ret < 0)
    return ret;
  /* An exit that happened during the hand-over waits in the reaper (a zombie, or unclaimed). */
  if (watching && p->pid > 0)
    return task_process_watch(p, err);
  return 0;
}

/* The runtime a container's commands run with, as Create made it. */
static int
restore_opts(cshim_runc_options_t *o, const cshim_state_reader_t *r, cshim_error_t *err)
{
  if (cshim_state_get_bool(r, O_NO_PIVOT, &o->no_pivot_root, err) < 0 ||
      cshim_state_get_bool(r, O_NO_KEYRING, &o->no_new_keyring, err) < 0 ||
      cshim_state_get_bool(r, O_SYSTEMD, &o->systemd_cgroup, err) < 0 ||
      cshim_state_get_u32(r, O_IO_UID, &o->io_uid, err) < 0 ||
      cshim_state_get_u32(r, O_IO_GID, &o->io_gid, err) < 0 ||
      cshim_state_get_str(r, O_BINARY, &o->binary_name, err) < 0 ||
      cshim_state_get_str(r, O_ROOT, &o->root, err) < 0 ||
      cshim_state_get_str(r, O_SHIM_CGROUP, &o->shim_cgroup, err) < 0 ||
      cshim_state_get_str(r, O_CRIU_IMAGE, &o->criu_image_path, err) < 0 ||
      cshim_state_get_str(r, O_CRIU_WORK, &o->criu_work_path, err) < 0 ||
      cshim_state_get_str(r, O_CRIU, &o->criu_path, err) < 0)
    return -EBADMSG;
  return 0;
}

static int
process_record(const cshim_state_item_t *it, cshim_state_reader_t *pr, char **exec_id, char **in,
               char **out, char **errp, bool *terminal, cshim_error_t *err)
{
  if (cshim_state_item_list(it, pr, err) < 0 ||
      cshim_state_get_str(pr, P_EXEC_ID, exec_id, err) < 0 ||
      cshim_state_get_str(pr, P_STDIN, in, err) < 0 ||
      cshim_state_get_str(pr, P_STDOUT, out, err) < 0 ||
      cshim_state_get_str(pr, P_STDERR, errp, err) < 0 ||
      cshim_state_get_bool(pr, P_TERMINAL, terminal, err) < 0)
    return -EBADMSG;
  return 0;
}

static int
restore_container(task_service_t *svc, const cshim_state_item_t *list, task_container_t ***tail,
                  cshim_error_t *err)
{
  Containerd__Task__V2__CreateTaskRequest req = CONTAINERD__TASK__V2__CREATE_TASK_REQUEST__INIT;
  cshim_autofree char *id = NULL, *bundle = NULL;
  cshim_autofree char *in = NULL, *out = NULL, *errp = NULL, *exec_id = NULL;
  cshim_state_reader_t r, pr, it_r;
  cshim_state_item_t it;
  task_process_t **exec_tail;
  task_container_t *c;
  bool terminal = false, cgroup = false;
  int ret;

  if (cshim_state_item_list(list, &r, err) < 0 || cshim_state_get_str(&r, C_ID, &id, err) < 0 ||
      cshim_state_get_str(&r, C_BUNDLE, &bundle, err) < 0)
    return -EBADMSG;
  if (id == NULL || bundle == NULL)
    return cshim_error_make(err, EBADMSG, "state: container without id or bundle");
  ret = task_validate_id(id, err);
  if (ret < 0)
    return ret;
  ret = cshim_state_find(&r, C_INIT, &it, err);
  if (ret <= 0)
    return ret < 0 ? ret : cshim_error_make(err, EBADMSG, "state: `%s` has no init", id);
  if (process_record(&it, &pr, &exec_id, &in, &out, &errp, &terminal, err) < 0)
    return -EBADMSG;

  req.id = id;
  req.bundle = bundle;
  req.stdin = in ? in : "";
  req.stdout = out ? out : "";
  req.stderr = errp ? errp : "";
  req.terminal = terminal;
  c = task_container_new(svc, &svc->env, &req);
  c->creating = false;
  free(c->checkpoint);
  free(c->parent_checkpoint);
  **tail = c;
  *tail = &c->next;

  ret = cshim_state_find(&r, C_OPTS, &it, err);
  if (ret > 0 && (ret = cshim_state_item_list(&it, &it_r, err)) == 0)
    ret = restore_opts(&c->opts, &it_r, err);
  if (ret < 0 || cshim_state_get_bool(&r, C_KILL_ALL, &c->kill_all_on_exit, err) < 0 ||
      cshim_state_get_bool(&r, C_PAUSED, &c->paused, err) < 0 ||
      cshim_state_get_str(&r, C_CHECKPOINT, &c->checkpoint, err) < 0 ||
      cshim_state_get_str(&r, C_PARENT_CHECKPOINT, &c->parent_checkpoint, err) < 0 ||
      cshim_state_get_bool(&r, C_CGROUP, &cgroup, err) < 0)
    return -EBADMSG;
  if (c->opts.binary_name == NULL || c->opts.root == NULL)
    return cshim_error_make(err, EBADMSG, "state: `%s` has no runtime", id);
  ret = task_container_make_runtime(svc, c, err);
  if (ret < 0)
    return cshim_error_wrap(err, "container `%s`", id);
  ret = restore_process(svc, c->init, &pr, err);
  if (ret < 0)
    return cshim_error_wrap(err, "container `%s`", id);

  exec_tail = &c->execs;
  it_r = r;
  while ((ret = cshim_state_next(&it_r, &it, err)) > 0) {
    if (it.tag == C_MOUNTED) {
      char *m = NULL;
      if (cshim_state_item_str(&it, &m, err) < 0)
        return -EBADMSG;
      c->mounted = cshim_xrealloc(c->mounted, (c->n_mounted + 1) * sizeof *c->mounted);
      c->mounted[c->n_mounted++] = m;
    } else if (it.tag == C_EXEC) {
      cshim_autofree char *e_id = NULL, *e_in = NULL, *e_out = NULL, *e_err = NULL;
      bool e_term = false;
      task_process_t *p;
      if (process_record(&it, &pr, &e_id, &e_in, &e_out, &e_err, &e_term, err) < 0)
        return -EBADMSG;
      if (e_id == NULL || *e_id == '\0')
        return cshim_error_make(err, EBADMSG, "state: exec of `%s` without an id", id);
      p = task_process_new(c, e_id, e_in, e_out, e_err, e_term);
      *exec_tail = p;
      exec_tail = &p->next;
      ret = restore_process(svc, p, &pr, err);
      if (ret < 0)
        return cshim_error_wrap(err, "container `%s` exec `%s`", id, e_id);
    }
  }
  if (ret < 0)
    return ret;
  /* Cgroup paths are read again from /proc (no descriptor is involved); OOM kills from now on
     are reported. */
  if (cgroup && c->init->pid > 0 && !c->init->exited) {
    cshim_state_item_t oi;
    uint64_t reported = 0, credit = 0;
    task_container_track_cgroup(c);
    if (cshim_state_find(&r, C_OOM_REPORTED, &oi, err) > 0 &&
        cshim_state_item_u64(&oi, &reported, err) == 0) {
      if (cshim_state_find(&r, C_OOM_CREDIT, &oi, err) > 0)
        cshim_state_item_u64(&oi, &credit, err);
      task_oom_resume(c, reported, credit);
    }
    cshim_error_release(err);
  }
  return 0;
}

int
task_upgrade_restore(void *instance, const cshim_state_reader_t *state, cshim_error_t *err)
{
  task_service_t *svc = instance;
  task_container_t **tail = &svc->containers;
  cshim_state_reader_t r;
  cshim_state_item_t it;
  int ret;

  if (state == NULL)
    return 0;
  while (*tail)
    tail = &(*tail)->next;
  r = *state;
  while ((ret = cshim_state_next(&r, &it, err)) > 0) {
    if (it.tag == UP_CONTAINER)
      ret = restore_container(svc, &it, &tail, err);
    else if (it.tag == UP_API_V3)
      ret = cshim_state_item_bool(&it, &svc->api_v3, err);
    if (ret < 0)
      return ret;
  }
  return ret;
}
