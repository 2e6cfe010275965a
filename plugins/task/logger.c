// SPDX-License-Identifier: Apache-2.0
// Logging binaries (binary:// and binary-v2:// stdio): the helper's command line, its start with
// the output pipes and a ready pipe, the wait for readiness, and its SIGTERM/SIGKILL teardown.
#define _GNU_SOURCE
#include "logger.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cshim/spawn.h>
#include <cshim/util.h>

struct task_logger_s
{
  uv_loop_t *loop;
  const cshim_logger_t *log;
  cshim_reaper_t *reaper;
  char *path;
  bool v2;
  pid_t pid;
  bool watching; /* the spawn's exit watch is still ours */
  bool exited;
  bool ready;
  int ready_fd; /* read end of the ready pipe */
  uv_poll_t ready_poll;
  bool ready_poll_init;
  uv_timer_t timer; /* readiness timeout, then the SIGTERM grace */
  task_logger_cb ready_cb;
  void *ready_data;
  bool stopping;
  task_logger_cb stop_cb;
  void *stop_data;
  bool done; /* stop finished: freed once the handles have closed */
  int pending_closes;
};

/* ---- the URI ---- */

char *
task_uri_unescape(const char *s, const char *end, bool query)
{
  char *out = cshim_xmalloc((size_t)(end - s) + 1), *w = out;
  while (s < end) {
    int hi, lo;
    if (*s == '%' && end - s >= 3 && (hi = cshim_hexval(s[1])) >= 0 &&
        (lo = cshim_hexval(s[2])) >= 0 && (hi | lo) != 0) {
      *w++ = (char)(hi * 16 + lo);
      s += 3;
    } else if (*s == '%') {
      free(out);
      return NULL;
    } else if (query && *s == '+') {
      *w++ = ' ';
      s++;
    } else
      *w++ = *s++;
  }
  *w = '\0';
  return out;
}

struct kv
{
  char *key;
  char *value;
};

static int
kv_cmp(const void *a, const void *b)
{
  return strcmp(((const struct kv *)a)->key, ((const struct kv *)b)->key);
}

static void
free_kvs(struct kv *kvs, size_t n)
{
  for (size_t i = 0; i < n; i++) {
    free(kvs[i].key);
    free(kvs[i].value);
  }
  free(kvs);
}

/* Add key=value to kvs unless the key is there: the first value of a repeated key wins (Go
   passes vs[0]). Takes key and value. */
static void
add_kv(struct kv **kvs, size_t *n, char *key, char *value)
{
  for (size_t i = 0; i < *n; i++)
    if (strcmp((*kvs)[i].key, key) == 0) {
      free(key);
      free(value);
      return;
    }
  *kvs = cshim_xrealloc(*kvs, (*n + 1) * sizeof **kvs);
  (*kvs)[*n].key = key;
  (*kvs)[*n].value = value;
  (*n)++;
}

/* The query of uri, from q to its end or '#', as unescaped pairs in *kvs (*n of them). */
static int
parse_query(const char *uri, const char *q, struct kv **kvs, size_t *n, cshim_error_t *err)
{
  *kvs = NULL;
  *n = 0;
  while (*q && *q != '#') {
    size_t len = strcspn(q, "&#");
    const char *eq = memchr(q, '=', len);
    char *key, *value;
    if (len == 0) {
      q++;
      continue;
    }
    if (memchr(q, ';', len)) {
      free_kvs(*kvs, *n);
      return cshim_error_make(err, EINVAL, "logging binary URI `%s`: `;` in the query", uri);
    }
    key = task_uri_unescape(q, eq ? eq : q + len, true);
    value = eq ? task_uri_unescape(eq + 1, q + len, true) : cshim_xstrdup("");
    if (key == NULL || value == NULL) {
      free(key);
      free(value);
      free_kvs(*kvs, *n);
      return cshim_error_make(err, EINVAL, "logging binary URI `%s`: bad escape in the query", uri);
    }
    add_kv(kvs, n, key, value);
    q += len;
    if (*q == '&')
      q++;
  }
  return 0;
}

int
task_logger_parse_uri(const char *uri, char ***argv_out, bool *v2, cshim_error_t *err)
{
  const char *p, *path_end;
  struct kv *kvs = NULL;
  size_t n = 0;
  char **argv;
  char *path;
  int ret;

  if (strncmp(uri, "binary://", 9) == 0) {
    *v2 = false;
    p = uri + 9;
  } else if (strncmp(uri, "binary-v2://", 12) == 0) {
    *v2 = true;
    p = uri + 12;
  } else
    return cshim_error_make(err, EINVAL, "`%s` is not a binary:// or binary-v2:// URI", uri);
  /* binary://host/path: like Go's URL.Path, the authority is not part of the command */
  if (*p != '/')
    p += strcspn(p, "/?#");
  path_end = p + strcspn(p, "?#");
  if (path_end == p)
    return cshim_error_make(err, EINVAL, "logging binary URI `%s` names no absolute path", uri);
  path = task_uri_unescape(p, path_end, false);
  if (path == NULL)
    return cshim_error_make(err, EINVAL, "logging binary URI `%s`: bad escape in the path", uri);
  ret = parse_query(uri, *path_end == '?' ? path_end + 1 : path_end, &kvs, &n, err);
  if (ret < 0) {
    free(path);
    return ret;
  }
  /* Go iterates a map (random order); a sorted order keeps runs reproducible. */
  if (n > 1)
    qsort(kvs, n, sizeof *kvs, kv_cmp);
  argv = cshim_xmalloc0((2 * n + 2) * sizeof *argv);
  argv[0] = path;
  for (size_t i = 0; i < n; i++) {
    argv[1 + 2 * i] = kvs[i].key;
    argv[2 + 2 * i] = kvs[i].value;
  }
  free(kvs);
  *argv_out = argv;
  return 0;
}

void
task_logger_free_argv(char **argv)
{
  if (argv == NULL)
    return;
  for (char **a = argv; *a; a++)
    free(*a);
  free(argv);
}

/* ---- the helper process ---- */

static void
handle_closed_cb(uv_handle_t *h)
{
  task_logger_t *l = h->data;
  if (--l->pending_closes > 0 || !l->done)
    return;
  free(l->path);
  free(l);
}

static void
close_handle(task_logger_t *l, uv_handle_t *h)
{
  if (uv_is_closing(h))
    return;
  h->data = l;
  l->pending_closes++;
  uv_close(h, handle_closed_cb);
}

static void
stop_ready_poll(task_logger_t *l)
{
  if (l->ready_poll_init)
    close_handle(l, (uv_handle_t *)&l->ready_poll);
  l->ready_poll_init = false;
  if (l->ready_fd >= 0)
    close(l->ready_fd);
  l->ready_fd = -1;
}

static void exit_cb(void *data, pid_t pid, int wait_status);

/* Stop finished (exited or killed): tell the owner, then go. */
static void
finish_stop(task_logger_t *l)
{
  task_logger_cb cb = l->stop_cb;
  void *data = l->stop_data;
  if (l->done)
    return;
  l->done = true;
  l->stop_cb = NULL;
  if (l->watching) {
    /* Killed: the reaper collects the exit as unclaimed. */
    l->reaper->ops->unwatch(l->reaper, l->pid, exit_cb, l);
    l->watching = false;
  }
  stop_ready_poll(l);
  close_handle(l, (uv_handle_t *)&l->timer);
  if (cb) {
    cshim_error_t none = NULL;
    cb(data, &none);
  }
}

static void
report_ready(task_logger_t *l, cshim_error_t *err)
{
  task_logger_cb cb = l->ready_cb;
  void *data = l->ready_data;
  l->ready_cb = NULL;
  stop_ready_poll(l);
  if (l->stopping)
    ; /* the timer now belongs to the stop */
  else
    uv_timer_stop(&l->timer);
  if (*err == NULL)
    l->ready = true;
  if (cb)
    cb(data, err);
  cshim_error_release(err);
}

static void
exit_cb(void *data, pid_t pid, int wait_status)
{
  task_logger_t *l = data;
  l->watching = false;
  l->exited = true;
  cshim_log_debug(l->log, "logging binary `%s` (pid %d) exited with status %u", l->path, (int)pid,
                  cshim_exit_status(wait_status));
  /* What it left in its process group goes with it. Reaped just now: the group id cannot have
     been handed out again (pids are allocated cyclically, and a group with members keeps its
     id). */
  kill(-pid, SIGKILL);
  if (l->stopping)
    finish_stop(l);
}

static void
ready_cb(uv_poll_t *h, int status, int events)
{
  task_logger_t *l = CSHIM_CONTAINER_OF(h, task_logger_t, ready_poll);
  cshim_error_t err = NULL;
  char byte;
  ssize_t n;

  n = CSHIM_RETRY_EINTR(read(l->ready_fd, &byte, 1));
  if (n < 0 && errno == EAGAIN)
    return;
  if (n < 0)
    cshim_error_sys(&err, errno, "logging binary `%s`: read the ready pipe", l->path);
  else if (n == 0 && l->v2)
    cshim_error_make(&err, EPROTO,
                     "logging binary `%s` closed its ready pipe (fd 5) without writing a byte "
                     "(binary-v2:// requires one)",
                     l->path);
  report_ready(l, &err);
}

static void
timer_cb(uv_timer_t *t)
{
  task_logger_t *l = CSHIM_CONTAINER_OF(t, task_logger_t, timer);
  cshim_error_t err = NULL;

  if (l->stopping) {
    if (!l->exited && l->watching) {
      cshim_log_warn(l->log, "logging binary `%s` (pid %d) ignored SIGTERM: killing it", l->path,
                     (int)l->pid);
      cshim_spawn_kill_tree(l->pid); /* with everything it started */
    }
    finish_stop(l);
    return;
  }
  cshim_error_make(&err, ETIMEDOUT, "logging binary `%s` did not become ready in time", l->path);
  report_ready(l, &err);
}

int
task_logger_spawn(uv_loop_t *loop, const cshim_logger_t *log, cshim_reaper_t *reaper,
                  const char *uri, const char *id, const char *namespace_, int stdout_r,
                  int stderr_r, task_logger_t **out, cshim_error_t *err)
{
  cshim_spawn_opts_t opts = {0};
  char **argv = NULL;
  cshim_autofree char *env_id = NULL;
  cshim_autofree char *env_ns = NULL;
  char *envp[3];
  int ready[2] = {-1, -1};
  int extra[3];
  task_logger_t *l;
  bool v2;
  int r;

  r = task_logger_parse_uri(uri, &argv, &v2, err);
  if (r < 0)
    return r;
  if (pipe2(ready, O_CLOEXEC) < 0) {
    r = cshim_error_sys(err, errno, "logging binary: pipe");
    task_logger_free_argv(argv);
    return r;
  }
  cshim_xasprintf(&env_id, "CONTAINER_ID=%s", id);
  cshim_xasprintf(&env_ns, "CONTAINER_NAMESPACE=%s", namespace_);
  envp[0] = env_id;
  envp[1] = env_ns;
  envp[2] = NULL;
  extra[0] = stdout_r;
  extra[1] = stderr_r;
  extra[2] = ready[1];

  l = cshim_xmalloc0(sizeof *l);
  l->loop = loop;
  l->log = log;
  l->reaper = reaper;
  l->path = cshim_xstrdup(argv[0]);
  l->v2 = v2;
  l->ready_fd = ready[0];

  opts.path = argv[0];
  opts.argv = argv;
  opts.envp = envp;
  opts.stdin_fd = opts.stdout_fd = opts.stderr_fd = -1;
  opts.extra_fds = extra;
  opts.n_extra_fds = 3;
  opts.new_process_group = true; /* so that stopping it reaches what it starts */
  opts.kind = "logger";
  r = cshim_spawn(reaper, &opts, exit_cb, l, &l->pid, err);
  task_logger_free_argv(argv);
  /* The helper holds the write end now: its exit (or its close) must reach us as EOF. */
  close(ready[1]);
  if (r < 0) {
    close(ready[0]);
    free(l->path);
    free(l);
    return cshim_error_wrap(err, "start logging binary");
  }
  l->watching = true;
  cshim_log_debug(log, "started logging binary `%s` (pid %d) for `%s`", l->path, (int)l->pid, id);

  uv_timer_init(loop, &l->timer);
  if (fcntl(l->ready_fd, F_SETFL, fcntl(l->ready_fd, F_GETFL) | O_NONBLOCK) < 0 ||
      (r = uv_poll_init(loop, &l->ready_poll, l->ready_fd)) < 0) {
    r = r < 0 ? cshim_error_from_uv(err, r, "logging binary: poll the ready pipe")
              : cshim_error_sys(err, errno, "logging binary: ready pipe");
    task_logger_stop(l, 0, NULL, NULL);
    return r;
  }
  l->ready_poll_init = true;
  *out = l;
  return 0;
}

pid_t
task_logger_pid(const task_logger_t *l)
{
  return l->pid;
}

int
task_logger_wait_ready(task_logger_t *l, uint64_t timeout_ms, task_logger_cb cb, void *data,
                       cshim_error_t *err)
{
  int r;
  l->ready_cb = cb;
  l->ready_data = data;
  r = uv_poll_start(&l->ready_poll, UV_READABLE | UV_DISCONNECT, ready_cb);
  if (r < 0) {
    l->ready_cb = NULL;
    return cshim_error_from_uv(err, r, "logging binary: poll the ready pipe");
  }
  if (timeout_ms)
    uv_timer_start(&l->timer, timer_cb, timeout_ms, 0);
  return 0;
}

static void
stopped_now_cb(uv_timer_t *t)
{
  finish_stop(CSHIM_CONTAINER_OF(t, task_logger_t, timer));
}

void
task_logger_stop(task_logger_t *l, uint64_t grace_ms, task_logger_cb cb, void *data)
{
  l->ready_cb = NULL;
  l->stop_cb = cb;
  l->stop_data = data;
  if (l->stopping || l->done)
    return;
  l->stopping = true;
  stop_ready_poll(l);
  uv_timer_stop(&l->timer);
  if (l->exited || !l->watching) {
    uv_timer_start(&l->timer, stopped_now_cb, 0, 0);
    return;
  }
  /* SIGTERM first, to its whole group, so that it can flush what it holds. */
  kill(-l->pid, SIGTERM);
  uv_timer_start(&l->timer, timer_cb, grace_ms, 0);
}

/* ---- live upgrade (docs/live-upgrade.md): the helper stays our child across the exec ---- */

enum
{
  LG_PID = 1,
  LG_PATH = 2,
  LG_V2 = 3,
  LG_EXITED = 4,
  LG_WATCHING = 5,
};

bool
task_logger_busy(const task_logger_t *l)
{
  return !l->ready || l->stopping || l->ready_cb != NULL;
}

void
task_logger_save(const task_logger_t *l, cshim_state_writer_t *w)
{
  cshim_state_put_u32(w, LG_PID, (uint32_t)l->pid);
  cshim_state_put_str(w, LG_PATH, l->path);
  cshim_state_put_bool(w, LG_V2, l->v2);
  cshim_state_put_bool(w, LG_EXITED, l->exited);
  cshim_state_put_bool(w, LG_WATCHING, l->watching);
}

int
task_logger_restore(uv_loop_t *loop, const cshim_logger_t *log, cshim_reaper_t *reaper,
                    const cshim_state_reader_t *state, task_logger_t **out, cshim_error_t *err)
{
  cshim_state_reader_t r = *state;
  cshim_state_item_t it;
  task_logger_t *l = cshim_xmalloc0(sizeof *l);
  uint32_t pid = 0;
  bool watching = false;
  int ret;

  l->loop = loop;
  l->log = log;
  l->reaper = reaper;
  l->ready = true;
  l->ready_fd = -1;
  while ((ret = cshim_state_next(&r, &it, err)) > 0) {
    if (it.tag == LG_PID)
      ret = cshim_state_item_u32(&it, &pid, err);
    else if (it.tag == LG_PATH && l->path == NULL)
      ret = cshim_state_item_str(&it, &l->path, err);
    else if (it.tag == LG_V2)
      ret = cshim_state_item_bool(&it, &l->v2, err);
    else if (it.tag == LG_EXITED)
      ret = cshim_state_item_bool(&it, &l->exited, err);
    else if (it.tag == LG_WATCHING)
      ret = cshim_state_item_bool(&it, &watching, err);
    if (ret < 0)
      break;
  }
  if (ret >= 0 && pid == 0)
    ret = cshim_error_make(err, EBADMSG, "state: logging binary without a pid");
  if (ret < 0) {
    free(l->path);
    free(l);
    return ret;
  }
  if (l->path == NULL)
    l->path = cshim_xstrdup("?");
  l->pid = (pid_t)pid;
  uv_timer_init(loop, &l->timer);
  if (watching) {
    ret = reaper->ops->watch(reaper, l->pid, exit_cb, l, err);
    if (ret < 0)
      return cshim_error_wrap(err, "watch logging binary pid %d", (int)l->pid);
    l->watching = true;
  }
  *out = l;
  return 0;
}
