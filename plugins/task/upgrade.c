// SPDX-License-Identifier: Apache-2.0
// The task plugin's live-upgrade hooks: containers, processes and their stdio are handed to the
// new image; nothing is started or stopped (docs/live-upgrade.md).
#define _GNU_SOURCE
#include "upgrade.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <signal.h>
#include <unistd.h>

#include <cshim/util.h>

#include "cgroups.h"
#include "container.h"
#include "fd.h"
#include "io.h"
#include "lifecycle.h"
#include "logger.h"
#include "model.h"
#include "oom.h"
#include "op.h"
#include "process.h"
#include "service.h"

#include "containerd/events/task.pb-c.h"
#include "containerd/task/v2/shim.pb-c.h"

/* Record tags; never reuse a number. */
enum
{
  UP_CONTAINER = 1, /* list */
  UP_API_V3 = 2,    /* containerd drives this shim through task API v3 (its lifetime rule) */
  UP_CRASH = 3,     /* the document is a crash snapshot */

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
  C_CREATING = 14, /* crash snapshot: Create had not finished */
  C_OP = 15,       /* crash snapshot, list: an operation in progress */
  C_OOM_EFD = 16,  /* the v1 OOM watch's eventfd: handed over, not registered again */

  OP_WHAT = 1,    /* task_op_t.what */
  OP_EXEC_ID = 2, /* its process (absent: init) */
  OP_PID = 3,     /* the runtime command's process (absent: none started) */
  OP_EXITED = 4,  /* ... already reaped, with OP_STATUS */
  OP_STATUS = 5,
  OP_RAN = 6, /* the runtime command has finished (task_op_t.ran, .launched) */
  OP_LAUNCHED = 7,

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
  /* crash snapshot: */
  P_STARTING = 17,
  P_DELETING = 18,
  P_EXIT_PENDING = 19,
  P_IO_DROPPED = 20, /* its stdio could not be described (a terminal or logging binary starting) */
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
  cshim_list_t *cl, *pl;

  if (svc->closing || svc->shutdown_requested)
    return "shutting down";
  /* A crash snapshot describes operations in progress too (C_OP; the next image recovers them). */
  if (crash)
    return NULL;
  if (!cshim_list_empty(&svc->removed))
    return "a deleted container is being released";
  CSHIM_LIST_FOREACH (cl, &svc->containers) {
    task_container_t *c = cshim_list_entry(cl, task_container_t, link);
    const char *why = NULL;
    const char *who = "init";
    if (c->creating)
      why = "being created";
    else if (task_op_first(c) && !(crash && only_read_only_ops(c)))
      why = task_op_first(c)->what ? task_op_first(c)->what : "an operation";
    else if (c->pausing)
      why = "being paused";
    else if ((why = process_busy(c->init)) == NULL)
      CSHIM_LIST_FOREACH (pl, &c->execs) {
        task_process_t *p = cshim_list_entry(pl, task_process_t, link);
        if (why != NULL)
          break;
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
  bool crash = cshim_state_writer_is_crash(w);

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
  if (crash) {
    cshim_state_put_bool(w, P_STARTING, p->starting);
    cshim_state_put_bool(w, P_DELETING, p->deleting);
    cshim_state_put_bool(w, P_EXIT_PENDING, p->exit_pending);
    if (p->io && task_io_crash_busy(p->io)) {
      cshim_state_put_bool(w, P_IO_DROPPED, true);
      return;
    }
  }
  if (p->io) {
    cshim_state_begin(w, P_IO);
    task_io_save(p->io, w);
    cshim_state_end(w);
  }
}

/* Crash snapshot: an operation in progress and its runtime command. */
static void
save_op(const task_op_t *op, cshim_state_writer_t *w)
{
  pid_t pid = 0;
  bool exited = false;
  int status = 0;

  if (read_only_op(op) || op->what == NULL)
    return; /* its call is run again */
  /* Nothing to finish after a crash (recover: their effect shows in the processes): left out,
     a flood of Kill calls does not make every snapshot describe each one queued. */
  if (strcmp(op->what, "kill") == 0 || strcmp(op->what, "update") == 0 ||
      strcmp(op->what, "checkpoint") == 0)
    return;
  cshim_state_begin(w, C_OP);
  cshim_state_put_str(w, OP_WHAT, op->what);
  if (op->process && op->process->exec_id)
    cshim_state_put_str(w, OP_EXEC_ID, op->process->exec_id);
  if (op->container->rt &&
      cshim_runtime_command_process(op->container->rt, op, &pid, &exited, &status) > 0) {
    cshim_state_put_u32(w, OP_PID, (uint32_t)pid);
    cshim_state_put_bool(w, OP_EXITED, exited);
    cshim_state_put_u32(w, OP_STATUS, (uint32_t)status);
  }
  cshim_state_put_bool(w, OP_RAN, op->ran);
  cshim_state_put_bool(w, OP_LAUNCHED, op->launched);
  cshim_state_end(w);
}

int
task_upgrade_save(void *instance, cshim_state_writer_t *w, cshim_error_t *err)
{
  task_service_t *svc = instance;
  const char *why = busy(svc, cshim_state_writer_is_crash(w));
  cshim_list_t *cl, *pl;

  if (why)
    return cshim_error_make(err, EBUSY, "%s", why);
  cshim_state_put_bool(w, UP_API_V3, svc->api_v3);
  if (cshim_state_writer_is_crash(w))
    cshim_state_put_bool(w, UP_CRASH, true);
  CSHIM_LIST_FOREACH (cl, &svc->containers) {
    task_container_t *c = cshim_list_entry(cl, task_container_t, link);
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
        if (task_oom_eventfd(c) >= 0)
          cshim_state_put_fd(w, C_OOM_EFD, task_oom_eventfd(c));
      }
    }
    if (cshim_state_writer_is_crash(w)) {
      cshim_state_put_bool(w, C_CREATING, c->creating);
      cshim_list_t *l;
      CSHIM_LIST_FOREACH (l, &c->ops)
        save_op(cshim_list_entry(l, task_op_t, link), w);
    }
    cshim_state_begin(w, C_INIT);
    save_process(c->init, w);
    cshim_state_end(w);
    CSHIM_LIST_FOREACH (pl, &c->execs) {
      cshim_state_begin(w, C_EXEC);
      save_process(cshim_list_entry(pl, task_process_t, link), w);
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
      cshim_state_get_str(r, P_SPEC, &p->spec_json, err) < 0 ||
      cshim_state_get_bool(r, P_STARTING, &p->starting, err) < 0 ||
      cshim_state_get_bool(r, P_DELETING, &p->deleting, err) < 0 ||
      cshim_state_get_bool(r, P_EXIT_PENDING, &p->exit_pending, err) < 0)
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
    bool listed;
    ret = cshim_state_item_list(&it, &ior, err);
    listed = ret == 0;
    if (ret == 0)
      ret = task_io_restore(svc->loop, svc->log, svc->reaper, &ior, &p->io, err);
    if (ret < 0 && listed && svc->restoring_crash) {
      /* One process's stdio is not worth the shim: the process goes on without it (an exec
         being started is then killed by its recovery, as when its stdio was left out). */
      cshim_log_warn(
          svc->log, "crash recovery: stdio of %s%s (pid %d) dropped, it cannot be restored: %s",
          p->exec_id ? "exec " : "init", p->exec_id ? p->exec_id : "", (int)p->pid, (*err)->msg);
      cshim_error_release(err);
      task_io_close(p->io);
      p->io = NULL;
      task_io_drop_restored(&ior);
      ret = 0;
    }
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

/* ---- crash recovery: operations that were in progress ---------------------------------------

   A crash snapshot records each operation with its runtime command's process. The next image
   waits for that process to exit (the reaper carries exits across the crash), takes its exit
   status as the command's outcome and finishes the operation the way its own completion would
   have, without the call: that one was answered by the host (Unavailable, "retry"), except a
   Start, which is run again and answered from here. */

typedef enum
{
  OUTCOME_NOT_RUN, /* the command never started (queued): nothing happened */
  OUTCOME_OK,
  OUTCOME_FAILED,
} outcome_t;

typedef struct recovery_s
{
  task_op_t *op;
  pid_t pid;
  bool watching;
  bool io_dropped;
  uv_timer_t *timer; /* runs it on the first loop turn when there is nothing to wait for */
  outcome_t outcome;
  int status;
} recovery_t;

static void recovery_exit_cb(void *data, pid_t pid, int wait_status);

static void
timer_closed_cb(uv_handle_t *h)
{
  free(h);
}

static void
recovery_free(void *data)
{
  recovery_t *rc = data;
  task_service_t *svc = rc->op->container->svc;

  if (rc->watching)
    svc->reaper->ops->unwatch(svc->reaper, rc->pid, recovery_exit_cb, rc);
  if (rc->timer)
    uv_close((uv_handle_t *)rc->timer, timer_closed_cb);
  free(rc);
}

static void recover(task_op_t *op);

static void
recovery_exit_cb(void *data, pid_t pid, int wait_status)
{
  recovery_t *rc = data;
  (void)pid;
  rc->watching = false;
  rc->status = wait_status;
  rc->outcome = wait_status == 0 ? OUTCOME_OK : OUTCOME_FAILED;
  recover(rc->op);
}

static void
recovery_timer_cb(uv_timer_t *t)
{
  recover(((recovery_t *)t->data)->op);
}

static void
answer_start(task_op_t *op, pid_t pid, const char *why)
{
  Containerd__Task__V2__StartResponse resp = CONTAINERD__TASK__V2__START_RESPONSE__INIT;
  cshim_error_t err = NULL;

  if (op->call == NULL)
    return;
  if (why) {
    cshim_error_make(&err, EIO, "%s", why);
    cshim_ttrpc_call_fail_error(op->call, &err);
  } else {
    resp.pid = (uint32_t)pid;
    cshim_ttrpc_call_reply(op->call, &resp.base);
  }
  op->call = NULL;
}

static void
recover_start(task_op_t *op, outcome_t outcome)
{
  task_container_t *c = op->container;
  task_process_t *p = op->process;
  cshim_error_t err = NULL;

  p->starting = false;
  if (outcome == OUTCOME_OK && p->pid <= 0) {
    /* restored from a checkpoint: the runtime wrote the pid */
    pid_t pid = 0;
    if (task_read_pid(c->pid_file, &pid, &err) == 0) {
      p->pid = pid;
      if (task_process_watch(p, &err) == 0)
        task_container_track_cgroup(c);
    }
    if (err) {
      cshim_log_warn(c->svc->log, "recover start of `%s`: %s", c->id, err->msg);
      cshim_error_release(&err);
      outcome = OUTCOME_FAILED;
    }
  }
  if (outcome == OUTCOME_OK) {
    task_process_started(p);
    answer_start(op, p->pid, NULL);
  } else
    answer_start(op, 0,
                 outcome == OUTCOME_NOT_RUN
                     ? "start interrupted by a shim restart before the runtime ran; retry"
                     : "OCI runtime start failed (interrupted by a shim restart)");
  if (p->exit_pending)
    task_process_finish_exit(p);
  if (outcome == OUTCOME_FAILED)
    task_upgrade_cleanup_failed(c);
}

static void
recover_exec(task_op_t *op, outcome_t outcome, bool io_dropped)
{
  task_container_t *c = op->container;
  task_process_t *p = op->process;
  cshim_autofree char *spec = NULL, *pid_file = NULL;
  cshim_error_t err = NULL;
  pid_t pid = 0;

  cshim_xasprintf(&spec, "%s/%s.process.json", c->bundle, p->exec_id);
  cshim_xasprintf(&pid_file, "%s/%s.pid", c->bundle, p->exec_id);
  unlink(spec);
  p->starting = false;
  if (outcome == OUTCOME_OK && task_read_pid(pid_file, &pid, &err) == 0 && io_dropped) {
    /* it runs, but its terminal or logging binary was being set up: nobody could read it */
    kill(pid, SIGKILL);
    pid = 0;
    cshim_error_make(&err, EIO, "exec interrupted by a shim restart while its stdio was set up");
  }
  if (outcome == OUTCOME_OK && err == NULL) {
    p->pid = pid;
    if (task_process_watch(p, &err) < 0)
      kill(pid, SIGKILL);
  }
  if (outcome != OUTCOME_OK || err) {
    cshim_log_warn(c->svc->log, "recover exec `%s` of `%s`: %s", p->exec_id, c->id,
                   err ? err->msg : "the runtime did not start it");
    answer_start(op, 0,
                 err ? err->msg
                     : "OCI runtime exec failed (interrupted by a shim restart); the process "
                       "stays created");
    cshim_error_release(&err);
    p->pid = 0;
    task_io_close(p->io);
    p->io = NULL;
    return;
  }
  task_process_started(p);
  answer_start(op, pid, NULL);
  if (p->exit_pending)
    task_process_finish_exit(p);
}

static void
recover(task_op_t *op)
{
  recovery_t *rc = op->data;
  task_container_t *c = op->container;
  task_process_t *p = op->process;
  const char *what = op->what;
  outcome_t outcome = rc->outcome;
  bool io_dropped = rc->io_dropped;

  cshim_log_info(c->svc->log, "crash recovery: %s of `%s`%s%s: %s", what, c->id,
                 p && p->exec_id ? " exec " : "", p && p->exec_id ? p->exec_id : "",
                 outcome == OUTCOME_OK       ? "the runtime succeeded"
                 : outcome == OUTCOME_FAILED ? "the runtime failed"
                                             : "the runtime never ran");
  /* The operation ends here; what follows may start new ones on the container. */
  if (strcmp(what, "create") == 0) {
    task_op_complete(op);
    if (outcome == OUTCOME_NOT_RUN)
      task_upgrade_abandon_create(c);
    else
      task_upgrade_cleanup_failed(c);
    return;
  }
  if (strcmp(what, "start") == 0 && p) {
    recover_start(op, outcome);
    task_op_complete(op);
    return;
  }
  if (strcmp(what, "exec") == 0 && p && p->exec_id) {
    recover_exec(op, outcome, io_dropped);
    task_op_complete(op);
    return;
  }
  task_op_complete(op);
  if (strcmp(what, "pause") == 0) {
    c->pausing = false;
    if (outcome == OUTCOME_OK)
      c->paused = true;
  } else if (strcmp(what, "resume") == 0) {
    if (outcome == OUTCOME_OK)
      c->paused = false;
  } else if (strcmp(what, "delete") == 0 || strcmp(what, "delete exec") == 0) {
    /* Delete is asked again by its client: the runtime's part is idempotent */
    if (p)
      p->deleting = false;
  } else if (strcmp(what, "clean up") == 0) {
    task_upgrade_cleanup_failed(c);
  } else if (strcmp(what, "kill remaining processes") == 0) {
    if (outcome != OUTCOME_OK)
      task_container_kill_all(c);
  }
  /* kill, update, checkpoint: nothing to finish (their effect shows in the processes) */
}

/* Names the ops are made with (op->what is not copied). */
static const char *
static_what(const char *what)
{
  static const char *const names[] = {
      "create", "start",  "exec",   "kill",       "delete",   "delete exec",
      "pause",  "resume", "update", "checkpoint", "clean up", "kill remaining processes",
  };
  for (size_t i = 0; i < CSHIM_N_ELEMENTS(names); i++)
    if (strcmp(names[i], what) == 0)
      return names[i];
  return NULL;
}

static int
restore_ops(task_container_t *c, const cshim_state_reader_t *r, cshim_error_t *err)
{
  task_service_t *svc = c->svc;
  cshim_state_reader_t it_r = *r, or_;
  cshim_state_item_t it;
  int ret;

  while ((ret = cshim_state_next(&it_r, &it, err)) > 0) {
    cshim_autofree char *what = NULL, *exec_id = NULL;
    uint32_t pid = 0, status = 0;
    bool exited = false, ran = false, launched = false, io_dropped = false;
    task_process_t *p;
    recovery_t *rc;
    task_op_t *op;
    const char *name;

    if (it.tag != C_OP)
      continue;
    if (cshim_state_item_list(&it, &or_, err) < 0 ||
        cshim_state_get_str(&or_, OP_WHAT, &what, err) < 0 ||
        cshim_state_get_str(&or_, OP_EXEC_ID, &exec_id, err) < 0 ||
        cshim_state_get_u32(&or_, OP_PID, &pid, err) < 0 ||
        cshim_state_get_bool(&or_, OP_EXITED, &exited, err) < 0 ||
        cshim_state_get_u32(&or_, OP_STATUS, &status, err) < 0 ||
        cshim_state_get_bool(&or_, OP_RAN, &ran, err) < 0 ||
        cshim_state_get_bool(&or_, OP_LAUNCHED, &launched, err) < 0)
      return -EBADMSG;
    name = what ? static_what(what) : NULL;
    if (name == NULL) {
      /* a later release's operation: nothing to finish here */
      cshim_log_warn(svc->log, "crash recovery: unknown operation `%s` on `%s` dropped",
                     what ? what : "?", c->id);
      continue;
    }
    p = task_container_process(c, exec_id);
    if (p == NULL)
      return cshim_error_make(err, EBADMSG, "state: operation `%s` on unknown process `%s`", name,
                              exec_id ? exec_id : "init");
    /* its stdio was left out of the snapshot (being set up): restore_process left it NULL */
    io_dropped = p->io == NULL && (p->stdout_[0] || p->stderr_[0] || p->stdin_[0] || p->terminal);
    op = task_op_new(c, p, NULL, NULL, name);
    rc = cshim_xmalloc0(sizeof *rc);
    rc->op = op;
    op->data = rc;
    op->free_data = recovery_free;
    op->ran = ran;
    op->launched = launched;
    rc->io_dropped = io_dropped;
    /* Start run again from the crash journal is answered with this one's outcome */
    op->takes_start_call = name == static_what("start") || name == static_what("exec");
    if (name == static_what("pause"))
      c->pausing = true;
    if (pid > 0 && !exited) {
      rc->pid = (pid_t)pid;
      ret = svc->reaper->ops->watch(svc->reaper, rc->pid, recovery_exit_cb, rc, err);
      if (ret < 0)
        return ret;
      rc->watching = true;
      continue;
    }
    if (pid > 0)
      rc->outcome = status == 0 ? OUTCOME_OK : OUTCOME_FAILED;
    else
      rc->outcome = launched ? OUTCOME_OK : ran ? OUTCOME_FAILED : OUTCOME_NOT_RUN;
    rc->timer = cshim_xmalloc0(sizeof *rc->timer);
    uv_timer_init(svc->loop, rc->timer);
    rc->timer->data = rc;
    uv_timer_start(rc->timer, recovery_timer_cb, 0, 0);
  }
  return ret;
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

/* The container's runtime options and flags. */
static int
restore_container_settings(task_container_t *c, const cshim_state_reader_t *r, bool *cgroup,
                           cshim_error_t *err)
{
  cshim_state_reader_t it_r;
  cshim_state_item_t it;
  int ret;

  ret = cshim_state_find(r, C_OPTS, &it, err);
  if (ret > 0 && (ret = cshim_state_item_list(&it, &it_r, err)) == 0)
    ret = restore_opts(&c->opts, &it_r, err);
  if (ret < 0 || cshim_state_get_bool(r, C_KILL_ALL, &c->kill_all_on_exit, err) < 0 ||
      cshim_state_get_bool(r, C_PAUSED, &c->paused, err) < 0 ||
      cshim_state_get_str(r, C_CHECKPOINT, &c->checkpoint, err) < 0 ||
      cshim_state_get_str(r, C_PARENT_CHECKPOINT, &c->parent_checkpoint, err) < 0 ||
      cshim_state_get_bool(r, C_CGROUP, cgroup, err) < 0)
    return -EBADMSG;
  if (c->opts.binary_name == NULL || c->opts.root == NULL)
    return cshim_error_make(err, EBADMSG, "state: `%s` has no runtime", c->id);
  return 0;
}

/* What the container's record lists: the mounts it made, and its exec processes in order. */
static int
restore_container_children(task_service_t *svc, task_container_t *c, const cshim_state_reader_t *r,
                           cshim_error_t *err)
{
  const char *id = c->id;
  cshim_state_reader_t it_r, pr;
  cshim_state_item_t it;
  int ret;

  it_r = *r;
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
      cshim_list_push_back(&c->execs, &p->link);
      ret = restore_process(svc, p, &pr, err);
      if (ret < 0)
        return cshim_error_wrap(err, "container `%s` exec `%s`", id, e_id);
    }
  }
  return ret;
}

/* The init's OOM watch: adopted (v1 eventfd) or started again from the cgroup, with the kills
   already reported. */
static int
restore_oom_watch(task_service_t *svc, task_container_t *c, const cshim_state_reader_t *r,
                  cshim_error_t *err)
{
  const char *id = c->id;
  cshim_state_item_t oi;
  uint64_t reported = 0, credit = 0;
  bool progress = false;
  int efd = -1, ret;

  if (cshim_state_find(r, C_OOM_REPORTED, &oi, err) > 0 &&
      cshim_state_item_u64(&oi, &reported, err) == 0) {
    progress = true;
    if (cshim_state_find(r, C_OOM_CREDIT, &oi, err) > 0)
      cshim_state_item_u64(&oi, &credit, err);
  }
  cshim_error_release(err);
  /* v1: the eventfd the old image registered; a wrong descriptor fails the restore */
  ret = cshim_state_find(r, C_OOM_EFD, &oi, err);
  if (ret > 0)
    ret = cshim_state_item_fd(&oi, &efd, err);
  if (ret < 0)
    return cshim_error_wrap(err, "container `%s`: OOM eventfd", id);
  if (efd >= 0 && task_cgroup_load(c->init->pid, &c->cgroup, err) == 0 &&
      task_oom_adopt(c, efd, reported, credit, err) == 0)
    return 0;
  if (efd >= 0) {
    /* the cgroup is gone (the container is exiting): nothing to watch */
    cshim_log_warn(svc->log, "OOM watch of `%s` not resumed: %s", id, (*err)->msg);
    cshim_error_release(err);
    task_fd_close(&efd);
    return 0;
  }
  task_container_track_cgroup(c);
  if (progress)
    task_oom_resume(c, reported, credit);
  return 0;
}

static int
restore_container(task_service_t *svc, const cshim_state_item_t *list, cshim_error_t *err)
{
  Containerd__Task__V2__CreateTaskRequest req = CONTAINERD__TASK__V2__CREATE_TASK_REQUEST__INIT;
  cshim_autofree char *id = NULL, *bundle = NULL;
  cshim_autofree char *in = NULL, *out = NULL, *errp = NULL, *exec_id = NULL;
  cshim_state_reader_t r, pr;
  cshim_state_item_t it;
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
  if (cshim_state_get_bool(&r, C_CREATING, &c->creating, err) < 0)
    return -EBADMSG;
  free(c->checkpoint);
  free(c->parent_checkpoint);
  cshim_list_push_back(&svc->containers, &c->link);

  ret = restore_container_settings(c, &r, &cgroup, err);
  if (ret < 0)
    return ret;
  ret = task_container_make_runtime(svc, c, err);
  if (ret < 0)
    return cshim_error_wrap(err, "container `%s`", id);
  ret = restore_process(svc, c->init, &pr, err);
  if (ret < 0)
    return cshim_error_wrap(err, "container `%s`", id);

  ret = restore_container_children(svc, c, &r, err);
  if (ret < 0)
    return ret;
  ret = restore_ops(c, &r, err);
  if (ret < 0)
    return cshim_error_wrap(err, "container `%s`", id);
  /* Cgroup paths are read again from /proc (no descriptor is involved); OOM kills from now on
     are reported. */
  if (cgroup && c->init->pid > 0 && !c->init->exited)
    return restore_oom_watch(svc, c, &r, err);
  return 0;
}

int
task_upgrade_restore(void *instance, const cshim_state_reader_t *state, cshim_error_t *err)
{
  task_service_t *svc = instance;
  cshim_state_reader_t r;
  cshim_state_item_t it;
  int ret;

  if (state == NULL)
    return 0;
  svc->restoring_crash = false;
  ret = cshim_state_get_bool(state, UP_CRASH, &svc->restoring_crash, err);
  if (ret < 0)
    return ret;
  r = *state;
  while ((ret = cshim_state_next(&r, &it, err)) > 0) {
    if (it.tag == UP_CONTAINER)
      ret = restore_container(svc, &it, err);
    else if (it.tag == UP_API_V3)
      ret = cshim_state_item_bool(&it, &svc->api_v3, err);
    if (ret < 0)
      return ret;
  }
  return ret;
}
