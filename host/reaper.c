// SPDX-License-Identifier: Apache-2.0
// The one SIGCHLD owner of the process: wait4(-1, WNOHANG) and dispatch by pid.
#define _GNU_SOURCE
#include "reaper.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>

#include <cshim/list.h>
#include <cshim/util.h>

/* An exit nobody was watching yet is kept this long for a late watch (the exit-before-start
   race), and at most this many are kept. */
#define UNCLAIMED_TTL_NS (60ull * 1000000000ull)
#define UNCLAIMED_MAX 1024
/* Distinct (kind, command) pairs counted; later new pairs are counted under the last one. */
#define STARTED_MAX 48

struct watch
{
  cshim_list_t link; /* in watches (newest first) or subscribers (in subscription order) */
  pid_t pid;         /* 0 for subscribers */
  cshim_exit_cb cb;
  void *data;
  bool fired; /* unclaimed exit waiting for its deferred call */
  int status;
};

struct unclaimed
{
  pid_t pid;
  int status;
  uint64_t at_ns;
};

struct host_reaper_s
{
  cshim_reaper_t base; /* must stay first */
  uv_loop_t *loop;
  const cshim_logger_t *log;
  uv_signal_t sigchld;
  uv_timer_t deferred; /* runs watches whose pid had already exited */
  int open_handles;
  cshim_list_t watches;        /* struct watch, newest first */
  cshim_list_t subscribers;    /* struct watch, in subscription order */
  struct unclaimed *unclaimed; /* grown on demand up to UNCLAIMED_MAX: most shims need a few */
  size_t n_unclaimed, cap_unclaimed;
  uint64_t exits; /* every exit dispatched (live upgrade: the crash snapshot is redone) */
  void (*exit_hook)(void *data, pid_t pid, int status);
  void *exit_hook_data;
  host_reaper_started_t started[STARTED_MAX];
  size_t n_started;
};

static void
remember_unclaimed_at(host_reaper_t *r, pid_t pid, int status, uint64_t at_ns)
{
  uint64_t now = cshim_now_ns();
  size_t i, j = 0;

  for (i = 0; i < r->n_unclaimed; i++)
    if (now - r->unclaimed[i].at_ns < UNCLAIMED_TTL_NS && r->unclaimed[i].pid != pid)
      r->unclaimed[j++] = r->unclaimed[i];
  r->n_unclaimed = j;
  if (r->n_unclaimed == UNCLAIMED_MAX) {
    memmove(&r->unclaimed[0], &r->unclaimed[1], (UNCLAIMED_MAX - 1) * sizeof r->unclaimed[0]);
    r->n_unclaimed--;
  }
  if (r->n_unclaimed == r->cap_unclaimed) {
    r->cap_unclaimed = r->cap_unclaimed ? r->cap_unclaimed * 2 : 8;
    if (r->cap_unclaimed > UNCLAIMED_MAX)
      r->cap_unclaimed = UNCLAIMED_MAX;
    r->unclaimed = cshim_xrealloc(r->unclaimed, r->cap_unclaimed * sizeof *r->unclaimed);
  }
  r->unclaimed[r->n_unclaimed++] =
      (struct unclaimed){pid, status, at_ns && at_ns <= now ? at_ns : now};
}

static void
remember_unclaimed(host_reaper_t *r, pid_t pid, int status)
{
  remember_unclaimed_at(r, pid, status, 0);
}

static bool
take_unclaimed(host_reaper_t *r, pid_t pid, int *status)
{
  uint64_t now = cshim_now_ns();
  for (size_t i = 0; i < r->n_unclaimed; i++)
    if (r->unclaimed[i].pid == pid && now - r->unclaimed[i].at_ns < UNCLAIMED_TTL_NS) {
      *status = r->unclaimed[i].status;
      r->unclaimed[i] = r->unclaimed[--r->n_unclaimed];
      return true;
    }
  return false;
}

/* While somebody waits for an exit the loop must stay alive for SIGCHLD; otherwise the reaper
   alone does not keep it running. */
static void
update_ref(host_reaper_t *r)
{
  if (!cshim_list_empty(&r->watches))
    uv_ref((uv_handle_t *)&r->sigchld);
  else
    uv_unref((uv_handle_t *)&r->sigchld);
}

/* Move the watches `pick` selects to `out` (an empty head), oldest first: callbacks run
   after, from `out`, and may add or remove watches. True when any was moved. */
static bool
take_watches(host_reaper_t *r, bool (*pick)(const struct watch *w, pid_t pid), pid_t pid,
             cshim_list_t *out)
{
  cshim_list_t *l, *tmp;
  bool any = false;

  CSHIM_LIST_FOREACH_SAFE (l, tmp, &r->watches) {
    struct watch *w = cshim_list_entry(l, struct watch, link);
    if (pick(w, pid)) {
      cshim_list_remove(&w->link);
      cshim_list_push_front(out, &w->link);
      any = true;
    }
  }
  return any;
}

/* Run and free every watch of `taken`, in order, with `status` (or each one's own when pid is
   0). */
static void
run_taken(cshim_list_t *taken, pid_t pid, int status)
{
  cshim_list_t *l;

  while ((l = cshim_list_first(taken)) != NULL) {
    struct watch *w = cshim_list_entry(l, struct watch, link);
    cshim_list_remove(&w->link);
    if (pid)
      w->cb(w->data, pid, status);
    else
      w->cb(w->data, w->pid, w->status);
    free(w);
  }
}

static bool
is_unfired_watch_of(const struct watch *w, pid_t pid)
{
  return w->pid == pid && !w->fired;
}

static bool
is_fired(const struct watch *w, pid_t pid)
{
  (void)pid;
  return w->fired;
}

static void
dispatch(host_reaper_t *r, pid_t pid, int status)
{
  cshim_list_t claimed = {0}, *l, *tmp;

  r->exits++;
  if (r->exit_hook)
    r->exit_hook(r->exit_hook_data, pid, status);
  if (take_watches(r, is_unfired_watch_of, pid, &claimed))
    run_taken(&claimed, pid, status);
  else
    remember_unclaimed(r, pid, status);
  update_ref(r);

  CSHIM_LIST_FOREACH_SAFE (l, tmp, &r->subscribers) {
    struct watch *s = cshim_list_entry(l, struct watch, link);
    s->cb(s->data, pid, status);
  }
}

void
host_reaper_reap(host_reaper_t *r)
{
  for (;;) {
    int status;
    pid_t pid = CSHIM_RETRY_EINTR(wait4(-1, &status, WNOHANG, NULL));
    if (pid <= 0)
      break;
    if (WIFSTOPPED(status) || WIFCONTINUED(status))
      continue;
    dispatch(r, pid, status);
  }
}

static void
sigchld_cb(uv_signal_t *h, int signum)
{
  host_reaper_t *r = CSHIM_CONTAINER_OF(h, host_reaper_t, sigchld);
  (void)signum;
  host_reaper_reap(r);
}

static void
deferred_cb(uv_timer_t *t)
{
  host_reaper_t *r = CSHIM_CONTAINER_OF(t, host_reaper_t, deferred);
  cshim_list_t fired = {0};

  take_watches(r, is_fired, 0, &fired);
  update_ref(r);
  run_taken(&fired, 0, 0);
}

static int
reaper_watch(cshim_reaper_t *base, pid_t pid, cshim_exit_cb cb, void *data, cshim_error_t *err)
{
  host_reaper_t *r = (host_reaper_t *)base;
  struct watch *w;

  if (pid <= 0 || cb == NULL)
    return cshim_error_make(err, EINVAL, "invalid pid %d to watch", (int)pid);
  w = cshim_xmalloc0(sizeof *w);
  w->pid = pid;
  w->cb = cb;
  w->data = data;
  if (take_unclaimed(r, pid, &w->status)) {
    w->fired = true;
    uv_timer_start(&r->deferred, deferred_cb, 0, 0);
  }
  cshim_list_push_front(&r->watches, &w->link);
  update_ref(r);
  return 0;
}

static void
remove_from(cshim_list_t *list, pid_t pid, cshim_exit_cb cb, void *data)
{
  cshim_list_t *l;

  CSHIM_LIST_FOREACH (l, list) {
    struct watch *w = cshim_list_entry(l, struct watch, link);
    if (w->pid == pid && w->cb == cb && w->data == data) {
      cshim_list_remove(&w->link);
      free(w);
      return;
    }
  }
}

static void
reaper_unwatch(cshim_reaper_t *base, pid_t pid, cshim_exit_cb cb, void *data)
{
  host_reaper_t *r = (host_reaper_t *)base;
  remove_from(&r->watches, pid, cb, data);
  update_ref(r);
}

static int
reaper_subscribe(cshim_reaper_t *base, cshim_exit_cb cb, void *data, cshim_error_t *err)
{
  host_reaper_t *r = (host_reaper_t *)base;
  struct watch *w = cshim_xmalloc0(sizeof *w);
  (void)err;
  w->cb = cb;
  w->data = data;
  cshim_list_push_back(&r->subscribers, &w->link);
  return 0;
}

static void
reaper_unsubscribe(cshim_reaper_t *base, cshim_exit_cb cb, void *data)
{
  remove_from(&((host_reaper_t *)base)->subscribers, 0, cb, data);
}

static void
reaper_started(cshim_reaper_t *base, pid_t pid, const char *kind, const char *command)
{
  host_reaper_t *r = (host_reaper_t *)base;
  host_reaper_started_t *e;
  size_t i;
  (void)pid;

  if (kind == NULL || kind[0] == '\0')
    kind = "other";
  if (command == NULL)
    command = "";
  for (i = 0; i < r->n_started; i++) {
    e = &r->started[i];
    if (strncmp(e->kind, kind, sizeof e->kind - 1) == 0 &&
        strncmp(e->command, command, sizeof e->command - 1) == 0)
      break;
  }
  if (i == r->n_started) {
    if (r->n_started == STARTED_MAX) {
      /* Overflow: an unbounded set of names must not grow the table. */
      e = &r->started[STARTED_MAX - 1];
      snprintf(e->kind, sizeof e->kind, "%s", "other");
      e->command[0] = '\0';
    } else {
      e = &r->started[r->n_started++];
      snprintf(e->kind, sizeof e->kind, "%s", kind);
      snprintf(e->command, sizeof e->command, "%s", command);
    }
  } else
    e = &r->started[i];
  e->count++;
}

size_t
host_reaper_started(const host_reaper_t *r, const host_reaper_started_t **out)
{
  *out = r->started;
  return r->n_started;
}

static const cshim_reaper_ops_t reaper_ops = {
    .struct_size = sizeof(cshim_reaper_ops_t),
    .watch = reaper_watch,
    .unwatch = reaper_unwatch,
    .subscribe = reaper_subscribe,
    .unsubscribe = reaper_unsubscribe,
    .started = reaper_started,
};

int
host_reaper_new(uv_loop_t *loop, const cshim_logger_t *log, host_reaper_t **out, cshim_error_t *err)
{
  host_reaper_t *r = cshim_xmalloc0(sizeof *r);
  int ret;

  r->base.ops = &reaper_ops;
  r->loop = loop;
  r->log = log;
  ret = uv_signal_init(loop, &r->sigchld);
  if (ret < 0) {
    free(r);
    return cshim_error_from_uv(err, ret, "init SIGCHLD watcher");
  }
  r->open_handles++;
  uv_timer_init(loop, &r->deferred);
  r->open_handles++;
  ret = uv_signal_start(&r->sigchld, sigchld_cb, SIGCHLD);
  if (ret < 0) {
    host_reaper_close(r);
    return cshim_error_from_uv(err, ret, "watch SIGCHLD");
  }
  /* The reaper alone must not keep the loop alive. */
  uv_unref((uv_handle_t *)&r->sigchld);
  *out = r;
  return 0;
}

cshim_reaper_t *
host_reaper_api(host_reaper_t *r)
{
  return &r->base;
}

static void
free_list(cshim_list_t *list)
{
  cshim_list_t *l;

  while ((l = cshim_list_first(list)) != NULL) {
    cshim_list_remove(l);
    free(cshim_list_entry(l, struct watch, link));
  }
}

static void
handle_closed_cb(uv_handle_t *h)
{
  host_reaper_t *r = h->data;
  if (--r->open_handles == 0) {
    free_list(&r->watches);
    free_list(&r->subscribers);
    free(r->unclaimed);
    free(r);
  }
}

void
host_reaper_close(host_reaper_t *r)
{
  if (r == NULL)
    return;
  r->sigchld.data = r;
  r->deferred.data = r;
  uv_close((uv_handle_t *)&r->sigchld, handle_closed_cb);
  uv_close((uv_handle_t *)&r->deferred, handle_closed_cb);
}

void
host_reaper_foreach_unclaimed(const host_reaper_t *r,
                              void (*cb)(void *data, pid_t pid, int status, uint64_t at_ns),
                              void *data)
{
  uint64_t now = cshim_now_ns();

  for (size_t i = 0; i < r->n_unclaimed; i++)
    if (now - r->unclaimed[i].at_ns < UNCLAIMED_TTL_NS)
      cb(data, r->unclaimed[i].pid, r->unclaimed[i].status, r->unclaimed[i].at_ns);
  /* claimed, but the watcher has not been told yet: the next image's watch must find it */
  const cshim_list_t *l;
  CSHIM_LIST_FOREACH (l, &r->watches) {
    const struct watch *w = cshim_list_entry(l, struct watch, link);
    if (w->fired)
      cb(data, w->pid, w->status, now);
  }
}

void
host_reaper_add_unclaimed(host_reaper_t *r, pid_t pid, int status, uint64_t at_ns)
{
  if (pid > 0)
    remember_unclaimed_at(r, pid, status, at_ns);
}

void
host_reaper_set_exit_hook(host_reaper_t *r, void (*hook)(void *data, pid_t pid, int status),
                          void *data)
{
  r->exit_hook = hook;
  r->exit_hook_data = data;
}

uint64_t
host_reaper_exits(const host_reaper_t *r)
{
  return r->exits;
}
