// SPDX-License-Identifier: Apache-2.0
// TaskOOM events: a container's memory cgroup watched on the loop (cgroup v1: an eventfd
// registered on memory.oom_control; v2: inotify on memory.events and its oom_kill counter), and
// a synchronous look when init exits so that TaskOOM always goes out before TaskExit.
#define _GNU_SOURCE
#include "oom.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cshim/util.h>

#include "cgroups.h"
#include "fd.h"
#include "model.h"
#include "options.h"

#include "containerd/events/task.pb-c.h"

struct task_oom_s
{
  task_container_t *container; /* NULL once stopped */
  const cshim_logger_t *log;
  bool unified;
  char *dir;         /* the memory cgroup */
  char *counter;     /* file holding the oom_kill counter */
  uint64_t reported; /* oom_kill count already looked at */
  uint64_t credit;   /* TaskOOMs sent on a v1 notification whose kill is not counted yet */
  int efd;           /* v1 eventfd */
  uv_poll_t poll;    /* v1 */
  uv_fs_event_t fs;  /* v2 */
  bool handle_init;
};

/* The cgroup's oom_kill counter (memory.oom_control on v1, memory.events on v2); false when the
   file is gone (the cgroup was removed) or has no such counter (v1 before Linux 4.13). */
static bool
read_kills(const struct task_oom_s *o, uint64_t *kills)
{
  cshim_autofree char *text = NULL;
  cshim_error_t err = NULL;

  if (task_cgroup_read_file(o->counter, &text, &err) < 0) {
    cshim_error_release(&err);
    return false;
  }
  return task_cgroup_kv(text, "oom_kill", kills) == 0;
}

static bool
cgroup_exists(const struct task_oom_s *o)
{
  return access(o->counter, F_OK) == 0;
}

static void
publish_oom(struct task_oom_s *o)
{
  Containerd__Events__TaskOOM ev = CONTAINERD__EVENTS__TASK_OOM__INIT;
  task_container_t *c = o->container;

  cshim_log_info(o->log, "container `%s` hit an out-of-memory condition", c->id);
  ev.container_id = c->id;
  task_events_publish(c->events, CSHIM_TOPIC_TASK_OOM, &ev.base);
}

/* Read the v1 eventfd without blocking: whether the kernel signalled since the last read. */
static bool
drain_eventfd(struct task_oom_s *o)
{
  uint64_t n;
  ssize_t r;

  r = CSHIM_RETRY_EINTR(read(o->efd, &n, sizeof n));
  return r == (ssize_t)sizeof n && n > 0;
}

/* Publish what happened since the last look, once. `signalled`: the v1 eventfd fired. The v1
   notification comes when the cgroup enters OOM, before the kill is counted: a TaskOOM sent for
   it stands for the next counted kill too (its credit), so that kill is not reported twice. */
static void
check(struct task_oom_s *o, bool signalled)
{
  uint64_t kills = 0, fresh = 0;
  bool published = false;

  /* On v1 the eventfd also fires when the cgroup is removed: that is no OOM. */
  if (signalled && cgroup_exists(o)) {
    publish_oom(o);
    published = true;
    o->credit++;
  }
  if (read_kills(o, &kills) && kills > o->reported) {
    fresh = kills - o->reported;
    o->reported = kills;
  }
  if (fresh > o->credit) {
    if (!published)
      publish_oom(o);
    o->credit = 0;
  } else
    o->credit -= fresh;
}

static void
closed_cb(uv_handle_t *h)
{
  struct task_oom_s *o = h->data;
  task_fd_close(&o->efd); /* a crash snapshot may name it (C_OOM_EFD) */
  free(o->dir);
  free(o->counter);
  free(o);
}

static void
release(struct task_oom_s *o)
{
  if (o->handle_init) {
    uv_handle_t *h = o->unified ? (uv_handle_t *)&o->fs : (uv_handle_t *)&o->poll;
    h->data = o;
    if (o->unified)
      uv_fs_event_stop(&o->fs);
    else
      uv_poll_stop(&o->poll);
    uv_close(h, closed_cb);
    return;
  }
  task_fd_close(&o->efd);
  free(o->dir);
  free(o->counter);
  free(o);
}

void
task_oom_stop(task_container_t *c)
{
  struct task_oom_s *o = c->oom;
  if (o == NULL)
    return;
  c->oom = NULL;
  o->container = NULL;
  release(o);
}

static void
poll_cb(uv_poll_t *h, int status, int events)
{
  struct task_oom_s *o = CSHIM_CONTAINER_OF(h, struct task_oom_s, poll);
  bool signalled;

  (void)events;
  if (o->container == NULL)
    return;
  if (status < 0) {
    cshim_log_warn(o->log, "OOM watch of `%s`: %s", o->container->id, uv_strerror(status));
    task_oom_stop(o->container);
    return;
  }
  signalled = drain_eventfd(o);
  if (signalled && !cgroup_exists(o)) {
    task_oom_stop(o->container);
    return;
  }
  check(o, signalled);
}

static void
fs_event_cb(uv_fs_event_t *h, const char *filename, int events, int status)
{
  struct task_oom_s *o = CSHIM_CONTAINER_OF(h, struct task_oom_s, fs);

  (void)filename;
  (void)events;
  if (o->container == NULL)
    return;
  if (status < 0) {
    cshim_log_warn(o->log, "OOM watch of `%s`: %s", o->container->id, uv_strerror(status));
    task_oom_stop(o->container);
    return;
  }
  if (!cgroup_exists(o)) {
    task_oom_stop(o->container);
    return;
  }
  check(o, false);
}

/* cgroup v1: cgroup.event_control takes "<eventfd> <fd of memory.oom_control>"; the kernel keeps
   its own reference to the file, so ours is closed right after. */
static int
register_eventfd(struct task_oom_s *o, cshim_error_t *err)
{
  cshim_autofree char *control = NULL;
  cshim_autoclose int ofd = -1;
  cshim_autoclose int cfd = -1;
  char line[64];
  int n;

  o->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (o->efd < 0)
    return cshim_error_sys(err, errno, "eventfd");
  ofd = open(o->counter, O_RDONLY | O_CLOEXEC);
  if (ofd < 0)
    return cshim_error_sys(err, errno, "open `%s`", o->counter);
  cshim_xasprintf(&control, "%s/cgroup.event_control", o->dir);
  cfd = open(control, O_WRONLY | O_CLOEXEC);
  if (cfd < 0)
    return cshim_error_sys(err, errno, "open `%s`", control);
  n = snprintf(line, sizeof line, "%d %d", o->efd, ofd);
  if (write(cfd, line, (size_t)n) != n)
    return cshim_error_sys(err, errno, "write `%s`", control);
  return 0;
}

/* adopt_efd >= 0: the v1 eventfd a previous image registered (live upgrade): its kernel
   registration lives as long as the descriptor, so nothing is registered again and a
   notification still unread in it is not lost. */
static int
watch(task_container_t *c, int adopt_efd, cshim_error_t *err)
{
  const char *dir = c->cgroup ? task_cgroup_memory_dir(c->cgroup) : NULL;
  struct task_oom_s *o;
  int r;

  if (c->oom)
    return 0;
  if (dir == NULL)
    return cshim_error_make(err, ENOENT, "no memory cgroup");
  if (adopt_efd >= 0 && c->cgroup->unified)
    return cshim_error_make(err, EINVAL, "an OOM eventfd handed over for a cgroup v2 watch");
  o = cshim_xmalloc0(sizeof *o);
  o->container = c;
  o->log = c->log;
  o->unified = c->cgroup->unified;
  o->dir = cshim_xstrdup(dir);
  o->efd = -1;
  cshim_xasprintf(&o->counter, "%s/%s", dir, o->unified ? "memory.events" : "memory.oom_control");
  read_kills(o, &o->reported);

  if (o->unified) {
    uv_fs_event_init(c->loop, &o->fs);
    o->handle_init = true;
    r = uv_fs_event_start(&o->fs, fs_event_cb, o->counter, 0);
    if (r < 0) {
      r = cshim_error_from_uv(err, r, "watch `%s`", o->counter);
      release(o);
      return r;
    }
  } else {
    if (adopt_efd >= 0)
      o->efd = adopt_efd;
    else if (register_eventfd(o, err) < 0) {
      release(o);
      return (*err)->status;
    }
    r = uv_poll_init(c->loop, &o->poll, o->efd);
    if (r == 0) {
      o->handle_init = true;
      r = uv_poll_start(&o->poll, UV_READABLE, poll_cb);
    }
    if (r < 0) {
      if (adopt_efd >= 0)
        o->efd = -1; /* the caller's again */
      release(o);
      return cshim_error_from_uv(err, r, "poll the OOM eventfd");
    }
  }
  c->oom = o;
  return 0;
}

int
task_oom_watch(task_container_t *c, cshim_error_t *err)
{
  return watch(c, -1, err);
}

void
task_oom_flush(task_container_t *c)
{
  struct task_oom_s *o = c->oom;
  if (o == NULL)
    return;
  /* The kernel counts the kill (and signals the eventfd) before it sends SIGKILL, so whatever
     killed init is visible now, even if the loop has not dispatched the notification yet. */
  check(o, o->unified ? false : drain_eventfd(o));
  task_oom_stop(c);
}

/* Whether pid is in the same cgroups as this shim (every hierarchy alike). */
static bool
shares_shim_cgroup(pid_t pid)
{
  cshim_autofree char *path = NULL;
  cshim_autofree char *theirs = NULL;
  cshim_autofree char *ours = NULL;
  cshim_error_t err = NULL;

  cshim_xasprintf(&path, "/proc/%d/cgroup", (int)pid);
  if (task_cgroup_read_file(path, &theirs, &err) < 0 ||
      task_cgroup_read_file("/proc/self/cgroup", &ours, &err) < 0) {
    cshim_error_release(&err);
    return false;
  }
  return strcmp(theirs, ours) == 0;
}

void
task_container_track_cgroup(task_container_t *c)
{
  cshim_error_t err = NULL;

  if (c->init == NULL || c->init->pid <= 0)
    return;
  if (c->cgroup == NULL && task_runtime_is_runsc(c->opts.binary_name) &&
      shares_shim_cgroup(c->init->pid)) {
    /* runsc --ignore-cgroups: the sandbox stays in the shim's cgroup, which is not the
       container's; its usage and OOM kills are not the container's either (Stats asks runsc,
       runsc_stats.c; runsc reports no OOM). */
    cshim_log_debug(c->log, "`%s` has no cgroup of its own: stats from runsc, no OOM events",
                    c->id);
    return;
  }
  if (c->cgroup == NULL && task_cgroup_load(c->init->pid, &c->cgroup, &err) < 0) {
    cshim_error_log_release(&err, c->log, CSHIM_LOG_WARN, "cgroup of `%s` (pid %d)", c->id,
                            (int)c->init->pid);
    return;
  }
  if (task_oom_watch(c, &err) < 0)
    cshim_error_log_release(&err, c->log, CSHIM_LOG_WARN, "no OOM events for `%s`", c->id);
}

/* ---- live upgrade (docs/live-upgrade.md) ---- */

bool
task_oom_progress(const task_container_t *c, uint64_t *reported, uint64_t *credit)
{
  const struct task_oom_s *o = c->oom;
  if (o == NULL || o->container == NULL)
    return false;
  *reported = o->reported;
  *credit = o->credit;
  return true;
}

int
task_oom_eventfd(const task_container_t *c)
{
  const struct task_oom_s *o = c->oom;
  return o && o->container && !o->unified ? o->efd : -1;
}

int
task_oom_adopt(task_container_t *c, int efd, uint64_t reported, uint64_t credit, cshim_error_t *err)
{
  int ret = watch(c, efd, err);
  if (ret < 0)
    return ret;
  task_oom_resume(c, reported, credit);
  return 0;
}

void
task_oom_resume(task_container_t *c, uint64_t reported, uint64_t credit)
{
  struct task_oom_s *o = c->oom;
  /* A count below the saved one: another cgroup under the same path; keep the fresh baseline. */
  if (o == NULL || o->container == NULL || reported > o->reported)
    return;
  o->reported = reported;
  o->credit = credit;
  check(o, false);
}
