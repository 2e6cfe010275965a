// SPDX-License-Identifier: Apache-2.0
// A container process (init or exec): its state, its exit, the Wait calls pending on it, and
// the TaskExit event, kept behind TaskStart.
#include "process.h"

#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <cshim/util.h>

#include "io.h"
#include "model.h"
#include "oom.h"

#include "containerd/events/task.pb-c.h"
#include "containerd/task/v2/shim.pb-c.h"

int
task_read_pid(const char *path, pid_t *pid, cshim_error_t *err)
{
  int ret = cshim_read_pid_file(path, pid, err);

  if (ret < 0 && *err != NULL)
    return ret;
  if (ret < 0 || *pid <= 0)
    return cshim_error_make(err, EIO, "pid file `%s` holds no pid", path);
  return 0;
}

void
task_now(struct timespec *ts)
{
  clock_gettime(CLOCK_REALTIME, ts);
}

Containerd__V1__Types__Status
task_status_from_string(const char *s)
{
  if (s == NULL)
    return CONTAINERD__V1__TYPES__STATUS__UNKNOWN;
  if (strcmp(s, "created") == 0)
    return CONTAINERD__V1__TYPES__STATUS__CREATED;
  if (strcmp(s, "running") == 0)
    return CONTAINERD__V1__TYPES__STATUS__RUNNING;
  if (strcmp(s, "stopped") == 0)
    return CONTAINERD__V1__TYPES__STATUS__STOPPED;
  if (strcmp(s, "paused") == 0)
    return CONTAINERD__V1__TYPES__STATUS__PAUSED;
  if (strcmp(s, "pausing") == 0)
    return CONTAINERD__V1__TYPES__STATUS__PAUSING;
  return CONTAINERD__V1__TYPES__STATUS__UNKNOWN;
}

task_process_t *
task_process_new(task_container_t *c, const char *exec_id, const char *stdin_, const char *stdout_,
                 const char *stderr_, bool terminal)
{
  task_process_t *p = cshim_xmalloc0(sizeof *p);
  p->container = c;
  p->exec_id = exec_id && *exec_id ? cshim_xstrdup(exec_id) : NULL;
  p->state = TASK_PROC_CREATED;
  p->stdin_ = cshim_xstrdup(stdin_ ? stdin_ : "");
  p->stdout_ = cshim_xstrdup(stdout_ ? stdout_ : "");
  p->stderr_ = cshim_xstrdup(stderr_ ? stderr_ : "");
  p->terminal = terminal;
  return p;
}

void
task_process_free(task_process_t *p)
{
  if (p == NULL)
    return;
  task_process_fail_waiters(p, CSHIM_GRPC_UNAVAILABLE, "shim shutting down");
  if (p->watching)
    p->container->reaper->ops->unwatch(p->container->reaper, p->pid, task_process_exit_cb, p);
  task_io_close(p->io);
  free(p->spec_json);
  free(p->exec_id);
  free(p->stdin_);
  free(p->stdout_);
  free(p->stderr_);
  free(p->state_packed);
  free(p);
}

int
task_process_watch(task_process_t *p, cshim_error_t *err)
{
  cshim_reaper_t *reaper = p->container->reaper;
  int ret = reaper->ops->watch(reaper, p->pid, task_process_exit_cb, p, err);
  if (ret < 0)
    return cshim_error_wrap(err, "watch pid %d", (int)p->pid);
  p->watching = true;
  return 0;
}

const char *
task_process_event_id(const task_process_t *p)
{
  return p->exec_id ? p->exec_id : p->container->id;
}

void
task_process_exited_at(const task_process_t *p, Google__Protobuf__Timestamp *ts)
{
  if (p->exited) {
    ts->seconds = (int64_t)p->exited_at.tv_sec;
    ts->nanos = (int32_t)p->exited_at.tv_nsec;
  } else {
    ts->seconds = TASK_GO_ZERO_TIME_SECONDS;
    ts->nanos = 0;
  }
}

void
task_process_exit_cb(void *data, pid_t pid, int wait_status)
{
  task_process_t *p = data;
  struct timespec now;
  p->watching = false;
  task_now(&now);
  task_process_set_exited(p, wait_status, &now);
}

void
task_process_set_exited(task_process_t *p, int wait_status, const struct timespec *when)
{
  if (p->exited)
    return;
  p->exited = true;
  p->wait_status = wait_status;
  p->exit_status = cshim_exit_status(wait_status);
  p->exited_at = *when;
  cshim_log_debug(p->container->log, "process %d of `%s` (%s) exited with status %u", (int)p->pid,
                  p->container->id, task_process_event_id(p), p->exit_status);
  if (p->starting) {
    /* TaskStart is not out yet; the exit follows it (Start's completion calls finish). */
    p->exit_pending = true;
    return;
  }
  task_process_finish_exit(p);
}

/* The oldest pending Wait, out of the list; NULL when none is left. */
static task_waiter_t *
take_waiter(task_process_t *p)
{
  cshim_list_t *l = cshim_list_first(&p->waiters);
  if (l == NULL)
    return NULL;
  cshim_list_remove(l);
  return cshim_list_entry(l, task_waiter_t, link);
}

static void
reply_wait(task_process_t *p, cshim_ttrpc_call_t *call)
{
  Containerd__Task__V2__WaitResponse resp = CONTAINERD__TASK__V2__WAIT_RESPONSE__INIT;
  Google__Protobuf__Timestamp ts = GOOGLE__PROTOBUF__TIMESTAMP__INIT;
  task_process_exited_at(p, &ts);
  resp.exit_status = p->exit_status;
  resp.exited_at = &ts;
  cshim_ttrpc_call_reply(call, &resp.base);
}

void
task_process_finish_exit(task_process_t *p)
{
  task_container_t *c = p->container;
  task_waiter_t *w;

  assert(p->exited); /* an exit is recorded before it is published */
  p->exit_pending = false;
  p->state = TASK_PROC_STOPPED;
  if (!p->deleting) {
    Containerd__Events__TaskExit ev = CONTAINERD__EVENTS__TASK_EXIT__INIT;
    Google__Protobuf__Timestamp ts = GOOGLE__PROTOBUF__TIMESTAMP__INIT;
    /* An OOM kill of the container is reported before its init's exit. */
    if (p == c->init)
      task_oom_flush(c);
    task_process_exited_at(p, &ts);
    ev.container_id = c->id;
    ev.id = (char *)task_process_event_id(p);
    ev.pid = (uint32_t)p->pid;
    ev.exit_status = p->exit_status;
    ev.exited_at = &ts;
    task_events_publish(c->events, CSHIM_TOPIC_TASK_EXIT, &ev.base);
  }
  while ((w = take_waiter(p)) != NULL) {
    reply_wait(p, w->call);
    free(w);
  }
  c->events->process_stopped(c->events->data, p);
}

/* The Wait's connection closed: nobody can read its answer, so it does not wait on. */
static void
waiter_cancel_cb(cshim_ttrpc_call_t *call, void *data)
{
  task_waiter_t *w = data;
  cshim_error_t err = NULL;

  cshim_list_remove(&w->link);
  free(w);
  cshim_error_make_code(&err, CSHIM_GRPC_CANCELED, "the client's connection closed");
  cshim_ttrpc_call_fail_error(call, &err);
}

void
task_process_started(task_process_t *p)
{
  task_container_t *c = p->container;

  if (p->state == TASK_PROC_CREATED)
    p->state = TASK_PROC_RUNNING;
  if (p->exec_id == NULL) {
    Containerd__Events__TaskStart ev = CONTAINERD__EVENTS__TASK_START__INIT;
    ev.container_id = c->id;
    ev.pid = (uint32_t)p->pid;
    task_events_publish(c->events, CSHIM_TOPIC_TASK_START, &ev.base);
  } else {
    Containerd__Events__TaskExecStarted ev = CONTAINERD__EVENTS__TASK_EXEC_STARTED__INIT;
    ev.container_id = c->id;
    ev.exec_id = p->exec_id;
    ev.pid = (uint32_t)p->pid;
    task_events_publish(c->events, CSHIM_TOPIC_TASK_EXEC_STARTED, &ev.base);
  }
}

void
task_process_add_waiter(task_process_t *p, cshim_ttrpc_call_t *call)
{
  task_waiter_t *w;
  if (p->state == TASK_PROC_STOPPED) {
    reply_wait(p, call);
    return;
  }
  /* It waits for an exit, not for work: it must not hold a slot of the connection's limit. */
  cshim_ttrpc_call_park(call);
  w = cshim_xmalloc0(sizeof *w);
  w->call = call;
  /* A client that parks Waits and goes away (connect, Wait, close, again) must not pile them
     up until the process exits: they are dropped with their connection. */
  cshim_ttrpc_call_on_cancel(call, waiter_cancel_cb, w);
  cshim_list_push_back(&p->waiters, &w->link);
}

void
task_process_fail_waiters(task_process_t *p, int grpc_code, const char *why)
{
  task_waiter_t *w;
  while ((w = take_waiter(p)) != NULL) {
    cshim_error_t err = NULL;
    cshim_error_make_code(&err, grpc_code, "%s", why);
    cshim_ttrpc_call_fail_error(w->call, &err);
    free(w);
  }
}
