// SPDX-License-Identifier: Apache-2.0
// Asynchronous runc-compatible runtime commands: go-runc's argv, output captured on the loop.
#define _GNU_SOURCE
#include <cshim/runtime.h>
#include <cshim/spawn.h>
#include <cshim/util.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <jansson.h>

/* Captured stdout beyond this fails the command; stderr beyond it is dropped. */
#define OUTPUT_CAP (1024u * 1024u)
/* After the runtime exits, how long its capture pipes may stay open (a grandchild holding
   them) before the command completes anyway. */
#define EXIT_GRACE_MS 100

struct capture
{
  char *data;
  size_t len, cap;
  bool overflow;
};

struct cmd
{
  struct cmd *prev, *next; /* the runtime's running commands */
  cshim_runtime_t *rt;
  char *name; /* subcommand, for messages */
  char *id;   /* container id or NULL, to recognise runtimes' not-found messages */
  char *log_path;
  off_t log_offset;
  pid_t pid;
  bool exited, done, abandoned, timed_out;
  int wait_status;
  uv_timer_t timer; /* timeout, then the grace after exit */
  uv_pipe_t out_pipe, err_pipe;
  bool out_reading, err_reading;
  int open_handles;
  struct capture out, err;
  char read_buf[16384];
  cshim_runtime_cb cb;
  void *data;
};

struct cshim_runtime_s
{
  uv_loop_t *loop;
  cshim_reaper_t *reaper;
  const cshim_logger_t *log;
  char *binary;
  const char *display; /* basename of binary */
  char *root;
  char *criu;
  bool systemd_cgroup, debug;
  uint64_t timeout_ms;
  struct cmd *running;
  size_t alive; /* commands not yet freed */
  bool closing;
};

/* argv under construction; strings are borrowed for the duration of the spawn. */
struct args
{
  const char **v;
  size_t n, cap;
};

static void
push(struct args *a, const char *s)
{
  if (a->n + 2 > a->cap) {
    a->cap = a->cap ? a->cap * 2 : 32;
    a->v = cshim_xrealloc(a->v, a->cap * sizeof *a->v);
  }
  a->v[a->n++] = s;
  a->v[a->n] = NULL;
}

static void
push_opt(struct args *a, const char *flag, const char *value)
{
  if (value && value[0]) {
    push(a, flag);
    push(a, value);
  }
}

/* `<binary> <global flags> <subcommand>`, in go-runc's order. */
static void
begin(cshim_runtime_t *rt, struct args *a, const char *log_path, const char *subcommand)
{
  push(a, rt->binary);
  push_opt(a, "--root", rt->root);
  if (rt->debug)
    push(a, "--debug");
  if (log_path && log_path[0]) {
    push(a, "--log");
    push(a, log_path);
    push(a, "--log-format");
    push(a, "json");
  }
  push_opt(a, "--criu", rt->criu);
  if (rt->systemd_cgroup)
    push(a, "--systemd-cgroup");
  push(a, subcommand);
}

int
cshim_runtime_new(const cshim_runtime_config_t *cfg, cshim_runtime_t **out, cshim_error_t *err)
{
  cshim_runtime_t *rt;
  const char *slash;

  if (cfg == NULL || cfg->loop == NULL || cfg->reaper == NULL || cfg->binary == NULL ||
      cfg->binary[0] == '\0' || out == NULL)
    return cshim_error_make(err, EINVAL, "runtime: invalid configuration");
  rt = cshim_xmalloc0(sizeof *rt);
  rt->loop = cfg->loop;
  rt->reaper = cfg->reaper;
  rt->log = cfg->log;
  rt->binary = cshim_xstrdup(cfg->binary);
  slash = strrchr(rt->binary, '/');
  rt->display = slash && slash[1] ? slash + 1 : rt->binary;
  rt->root = cfg->root && cfg->root[0] ? cshim_xstrdup(cfg->root) : NULL;
  rt->criu = cfg->criu && cfg->criu[0] ? cshim_xstrdup(cfg->criu) : NULL;
  rt->systemd_cgroup = cfg->systemd_cgroup;
  rt->debug = cfg->debug;
  rt->timeout_ms = cfg->timeout_ms;
  *out = rt;
  return 0;
}

static void
free_runtime(cshim_runtime_t *rt)
{
  free(rt->binary);
  free(rt->root);
  free(rt->criu);
  free(rt);
}

static void
free_cmd(struct cmd *c)
{
  cshim_runtime_t *rt = c->rt;
  free(c->name);
  free(c->id);
  free(c->log_path);
  free(c->out.data);
  free(c->err.data);
  free(c);
  if (--rt->alive == 0 && rt->closing)
    free_runtime(rt);
}

static void
handle_closed_cb(uv_handle_t *h)
{
  struct cmd *c = h->data;
  if (--c->open_handles == 0)
    free_cmd(c);
}

static void
stop_reading(uv_pipe_t *p, bool *reading)
{
  if (!*reading)
    return;
  *reading = false;
  uv_read_stop((uv_stream_t *)p);
}

static void
discard_exit_cb(void *data, pid_t pid, int wait_status)
{
  (void)data;
  (void)pid;
  (void)wait_status;
}

/* ---- error messages ---- */

static void
trim(char *s)
{
  size_t len = strlen(s), start = 0;
  while (len > 0 &&
         (s[len - 1] == ' ' || s[len - 1] == '\n' || s[len - 1] == '\r' || s[len - 1] == '\t'))
    s[--len] = '\0';
  while (s[start] == ' ' || s[start] == '\n' || s[start] == '\r' || s[start] == '\t')
    start++;
  if (start)
    memmove(s, s + start, len - start + 1);
}

static bool
is_error_level(const char *level)
{
  return strcmp(level, "error") == 0 || strcmp(level, "fatal") == 0;
}

/* The value of `key=` in a logrus text line: a Go-quoted string or a bare word. */
static char *
logfmt_value(const char *line, const char *key)
{
  size_t klen = strlen(key);
  const char *p = line;
  char *out, *o;

  for (;;) {
    p = strstr(p, key);
    if (p == NULL)
      return NULL;
    if ((p == line || p[-1] == ' ') && p[klen] == '=')
      break;
    p += klen;
  }
  p += klen + 1;
  out = o = cshim_xmalloc(strlen(p) + 1);
  if (*p != '"') {
    while (*p && *p != ' ')
      *o++ = *p++;
    *o = '\0';
    return out;
  }
  for (p++; *p && *p != '"'; p++) {
    if (*p == '\\' && p[1]) {
      p++;
      *o++ = *p == 'n' ? '\n' : *p == 't' ? '\t' : *p;
    } else
      *o++ = *p;
  }
  *o = '\0';
  return out;
}

/* The message of one log line at level error or fatal, in runc's JSON or logrus text format. */
static char *
error_entry(const char *line)
{
  json_t *entry = json_loads(line, 0, NULL);
  char *msg = NULL;

  if (entry) {
    const char *level = json_string_value(json_object_get(entry, "level"));
    const char *text = json_string_value(json_object_get(entry, "msg"));
    if (level && text && is_error_level(level))
      msg = cshim_xstrdup(text);
    json_decref(entry);
    return msg;
  }
  cshim_autofree char *level = logfmt_value(line, "level");
  if (level && is_error_level(level))
    msg = logfmt_value(line, "msg");
  return msg;
}

/* The last error entry in text (modified), trimmed, or NULL. */
static char *
last_error_entry(char *text)
{
  char *line, *last = NULL;

  for (char *save = NULL, *p = text; (line = strtok_r(p, "\n", &save)); p = NULL) {
    char *msg = error_entry(line);
    if (msg) {
      free(last);
      last = msg;
    }
  }
  if (last)
    trim(last);
  if (last && last[0] == '\0') {
    free(last);
    last = NULL;
  }
  return last;
}

/* The last error entry the runtime appended to its JSON log since `offset`, or NULL. */
static char *
last_log_error(const char *path, off_t offset)
{
  cshim_autoclose int fd = -1;
  cshim_autofree char *buf = NULL;
  struct stat st;
  size_t len = 0, want;

  if (path == NULL)
    return NULL;
  fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0 || fstat(fd, &st) < 0)
    return NULL;
  if (st.st_size < offset) /* truncated or replaced during the command */
    offset = 0;
  if (st.st_size - offset > (off_t)OUTPUT_CAP)
    offset = st.st_size - (off_t)OUTPUT_CAP;
  want = (size_t)(st.st_size - offset);
  if (want == 0)
    return NULL;
  buf = cshim_xmalloc(want + 1);
  while (len < want) {
    ssize_t r = pread(fd, buf + len, want - len, offset + (off_t)len);
    if (r < 0 && errno == EINTR)
      continue;
    if (r <= 0)
      break;
    len += (size_t)r;
  }
  buf[len] = '\0';

  return last_error_entry(buf);
}

static bool
contains(const char *haystack, const char *needle)
{
  return strstr(haystack, needle) != NULL;
}

/* Error classes for messages seen from runc 1.1 and crun 1.8 (see tests/unit/sdk/test_runtime.c);
   anything else stays unclassified (EIO -> Unknown). */
static int
classify(const struct cmd *c, const char *msg)
{
  static const struct
  {
    const char *cmd; /* NULL = any */
    const char *needle;
    int errnum;
  } table[] = {
      /* runc: every command on an unknown id */
      {NULL, "container does not exist", ENOENT},
      /* runc "container with given ID already exists", crun "container `x` already exists" */
      {"create", "already exists", EEXIST},
      /* a kill after the process exited: containerd reports "process already finished" */
      {"kill", "container not running", ESRCH},
      {"kill", "No such process", ESRCH},
      /* runc state errors */
      {NULL, "container not running", EBUSY},
      {NULL, "container not paused", EBUSY},
      {NULL, "cannot start an already running container", EBUSY},
      {NULL, "cannot start a container that has stopped", EBUSY},
      {NULL, "cannot start a container in the paused state", EBUSY},
      {NULL, "that is not stopped", EBUSY},
      {NULL, "cannot exec in a paused container", EBUSY},
      {NULL, "cannot exec in a stopped container", EBUSY},
      /* crun state errors */
      {NULL, "` is not running", EBUSY},
      {NULL, "` is paused", EBUSY},
      {NULL, "` is not in `created` or `stopped` state", EBUSY},
  };

  for (size_t i = 0; i < CSHIM_N_ELEMENTS(table); i++)
    if ((table[i].cmd == NULL || strcmp(table[i].cmd, c->name) == 0) &&
        contains(msg, table[i].needle))
      return table[i].errnum;

  /* crun names the missing state file or directory of the id */
  if (c->id && c->id[0]) {
    cshim_autofree char *status_file = NULL;
    cshim_autofree char *state_dir = NULL;
    cshim_xasprintf(&status_file, "/%s/status`: No such file or directory", c->id);
    cshim_xasprintf(&state_dir, "/%s': No such file or directory", c->id);
    if (contains(msg, status_file) ||
        (contains(msg, "cannot open directory") && contains(msg, state_dir)))
      return ENOENT;
  }
  return EIO;
}

static void
build_error(struct cmd *c, cshim_error_t *err)
{
  cshim_runtime_t *rt = c->rt;
  cshim_autofree char *msg = NULL;
  int ws = c->wait_status;

  if (c->timed_out) {
    cshim_error_make(err, ETIMEDOUT, "%s %s: timed out after %" PRIu64 "ms", rt->display, c->name,
                     rt->timeout_ms);
    return;
  }
  if (c->out.overflow) {
    cshim_error_make(err, EMSGSIZE, "%s %s: output larger than %u bytes", rt->display, c->name,
                     OUTPUT_CAP);
    return;
  }
  if (WIFEXITED(ws) && WEXITSTATUS(ws) == 0)
    return;

  msg = last_log_error(c->log_path, c->log_offset);
  if (msg == NULL && c->err.len > 0) {
    /* Without --log, runc logs to stderr in logrus text format; other output is taken whole. */
    cshim_autofree char *copy = cshim_xstrndup(c->err.data, c->err.len);
    msg = last_error_entry(copy);
    if (msg == NULL) {
      msg = cshim_xstrndup(c->err.data, c->err.len);
      trim(msg);
      if (msg[0] == '\0') {
        free(msg);
        msg = NULL;
      }
    }
  }
  if (msg == NULL) {
    if (WIFEXITED(ws))
      cshim_xasprintf(&msg, "exit status %d", WEXITSTATUS(ws));
    else
      cshim_xasprintf(&msg, "killed by signal %d", WTERMSIG(ws));
  }
  cshim_error_make(err, classify(c, msg), "%s %s: %s", rt->display, c->name, msg);
}

/* ---- command lifecycle ---- */

static void
close_handles(struct cmd *c)
{
  uv_timer_stop(&c->timer);
  uv_close((uv_handle_t *)&c->timer, handle_closed_cb);
  if (c->out_pipe.data) {
    stop_reading(&c->out_pipe, &c->out_reading);
    if (!uv_is_closing((uv_handle_t *)&c->out_pipe))
      uv_close((uv_handle_t *)&c->out_pipe, handle_closed_cb);
  }
  if (c->err_pipe.data) {
    stop_reading(&c->err_pipe, &c->err_reading);
    if (!uv_is_closing((uv_handle_t *)&c->err_pipe))
      uv_close((uv_handle_t *)&c->err_pipe, handle_closed_cb);
  }
}

static void
unlink_cmd(struct cmd *c)
{
  if (c->prev)
    c->prev->next = c->next;
  else
    c->rt->running = c->next;
  if (c->next)
    c->next->prev = c->prev;
  c->prev = c->next = NULL;
}

static void
finish(struct cmd *c)
{
  cshim_runtime_result_t result;

  if (c->done)
    return;
  c->done = true;
  unlink_cmd(c);
  close_handles(c); /* memory goes in the close callbacks, after the callback below */
  if (c->abandoned)
    return;

  memset(&result, 0, sizeof result);
  result.wait_status = c->wait_status;
  result.out = c->out.data ? c->out.data : "";
  result.out_len = c->out.len;
  build_error(c, &result.error);
  if (result.error)
    cshim_log_debug(c->rt->log, "%s", result.error->msg);
  c->cb(c->data, &result);
  cshim_error_release(&result.error);
}

static void
maybe_finish(struct cmd *c)
{
  if (c->exited && !c->out_reading && !c->err_reading)
    finish(c);
}

static void
timer_cb(uv_timer_t *t)
{
  struct cmd *c = t->data;

  if (c->exited) {
    cshim_log_warn(c->rt->log, "%s %s exited but its output is still open: not waiting",
                   c->rt->display, c->name);
    finish(c);
    return;
  }
  c->timed_out = true;
  kill(c->pid, SIGKILL); /* not reaped yet: the pid is still ours */
}

static void
exit_cb(void *data, pid_t pid, int wait_status)
{
  struct cmd *c = data;
  (void)pid;

  c->exited = true;
  c->wait_status = wait_status;
  if (!c->out_reading && !c->err_reading) {
    finish(c);
    return;
  }
  uv_timer_stop(&c->timer);
  uv_timer_start(&c->timer, timer_cb, EXIT_GRACE_MS, 0);
}

static void
alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
  struct cmd *c = h->data;
  (void)suggested;
  *buf = uv_buf_init(c->read_buf, sizeof c->read_buf);
}

static void
append(struct capture *cap, const char *p, size_t n)
{
  if (cap->len + n > OUTPUT_CAP) {
    cap->overflow = true;
    n = OUTPUT_CAP - cap->len;
  }
  if (cap->len + n + 1 > cap->cap) {
    size_t want = cap->cap ? cap->cap : 4096;
    while (want < cap->len + n + 1)
      want *= 2;
    cap->data = cshim_xrealloc(cap->data, want);
    cap->cap = want;
  }
  memcpy(cap->data + cap->len, p, n);
  cap->len += n;
  cap->data[cap->len] = '\0';
}

static void
read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
  struct cmd *c = s->data;
  bool is_out = s == (uv_stream_t *)&c->out_pipe;
  struct capture *cap = is_out ? &c->out : &c->err;
  bool *reading = is_out ? &c->out_reading : &c->err_reading;

  if (nread > 0) {
    append(cap, buf->base, (size_t)nread);
    if (!(is_out && cap->overflow))
      return;
    /* The result is an error now: stop the runtime rather than read on. */
    if (!c->exited)
      kill(c->pid, SIGKILL);
  } else if (nread == 0)
    return;
  else if (nread != UV_EOF)
    cshim_log_warn(c->rt->log, "%s %s: read %s: %s", c->rt->display, c->name,
                   is_out ? "stdout" : "stderr", uv_strerror((int)nread));
  stop_reading((uv_pipe_t *)s, reading);
  maybe_finish(c);
}

static int
open_capture(struct cmd *c, uv_pipe_t *p, bool *reading, int fd)
{
  int r;

  uv_pipe_init(c->rt->loop, p, 0);
  p->data = c;
  c->open_handles++;
  r = uv_pipe_open(p, fd);
  if (r < 0) {
    close(fd);
    return r;
  }
  r = uv_read_start((uv_stream_t *)p, alloc_cb, read_cb);
  if (r < 0)
    return r;
  *reading = true;
  return 0;
}

static void
close_pair(int p[2])
{
  if (p[0] >= 0)
    close(p[0]);
  if (p[1] >= 0)
    close(p[1]);
  p[0] = p[1] = -1;
}

static void
link_cmd(struct cmd *c)
{
  cshim_runtime_t *rt = c->rt;
  rt->alive++;
  c->prev = NULL;
  c->next = rt->running;
  if (rt->running)
    rt->running->prev = c;
  rt->running = c;
}

/* Stop a command whose result nobody will read: the runtime is killed, its exit goes to a
   no-op watcher (so the reaper never calls into freed memory) and the callback never runs. */
static void
abandon(struct cmd *c)
{
  cshim_reaper_t *reaper = c->rt->reaper;
  c->abandoned = true;
  if (!c->exited) {
    reaper->ops->unwatch(reaper, c->pid, exit_cb, c);
    reaper->ops->watch(reaper, c->pid, discard_exit_cb, NULL, NULL);
    kill(c->pid, SIGKILL); /* not reaped yet: the pid is still ours */
  }
  finish(c);
}

/* Start argv; io == NULL captures stdout and stderr, otherwise io becomes the runtime's stdio
   (and so the container process's). */
static int
run(cshim_runtime_t *rt, struct args *a, const char *name, const char *id,
    const cshim_runtime_io_t *io, const char *log_path, cshim_runtime_cb cb, void *data,
    cshim_error_t *err)
{
  cshim_spawn_opts_t opts;
  struct cmd *c;
  int out_pipe[2] = {-1, -1}, err_pipe[2] = {-1, -1};
  struct stat st;
  int ret;

  c = cshim_xmalloc0(sizeof *c);
  c->rt = rt;
  c->name = cshim_xstrdup(name);
  c->id = cshim_xstrdup(id);
  c->log_path = log_path && log_path[0] ? cshim_xstrdup(log_path) : NULL;
  c->cb = cb;
  c->data = data;
  if (c->log_path && stat(c->log_path, &st) == 0)
    c->log_offset = st.st_size;

  memset(&opts, 0, sizeof opts);
  opts.path = rt->binary;
  opts.argv = (char *const *)a->v;
  opts.parent_death_signal = SIGKILL;
  opts.kind = "runtime";
  opts.command = name;
  if (io) {
    opts.stdin_fd = io->stdin_fd;
    opts.stdout_fd = io->stdout_fd;
    opts.stderr_fd = io->stderr_fd;
  } else {
    if (pipe2(out_pipe, O_CLOEXEC) < 0 || pipe2(err_pipe, O_CLOEXEC) < 0) {
      ret = cshim_error_sys(err, errno, "%s %s: pipe", rt->display, name);
      goto fail;
    }
    opts.stdin_fd = -1;
    opts.stdout_fd = out_pipe[1];
    opts.stderr_fd = err_pipe[1];
  }

  ret = cshim_spawn(rt->reaper, &opts, exit_cb, c, &c->pid, err);
  if (ret < 0) {
    cshim_error_wrap(err, "%s %s", rt->display, name);
    goto fail;
  }
  if (rt->log && rt->log->level <= CSHIM_LOG_DEBUG) {
    size_t len = 0;
    for (size_t i = 0; i < a->n; i++)
      len += strlen(a->v[i]) + 1;
    cshim_autofree char *line = cshim_xmalloc0(len + 1);
    for (size_t i = 0; i < a->n; i++) {
      strcat(line, a->v[i]);
      if (i + 1 < a->n)
        strcat(line, " ");
    }
    cshim_log_debug(rt->log, "started %s (pid %d)", line, (int)c->pid);
  }

  uv_timer_init(rt->loop, &c->timer);
  c->timer.data = c;
  c->open_handles = 1;
  link_cmd(c);
  if (!io) {
    close(out_pipe[1]);
    close(err_pipe[1]);
    ret = open_capture(c, &c->out_pipe, &c->out_reading, out_pipe[0]);
    if (ret < 0)
      close(err_pipe[0]);
    else
      ret = open_capture(c, &c->err_pipe, &c->err_reading, err_pipe[0]);
    if (ret < 0) {
      abandon(c);
      return cshim_error_from_uv(err, ret, "%s %s: read output", rt->display, name);
    }
  }
  if (rt->timeout_ms)
    uv_timer_start(&c->timer, timer_cb, rt->timeout_ms, 0);
  return 0;

fail:
  close_pair(out_pipe);
  close_pair(err_pipe);
  free(c->name);
  free(c->id);
  free(c->log_path);
  free(c);
  return ret;
}

void
cshim_runtime_free(cshim_runtime_t *rt)
{
  if (rt == NULL || rt->closing)
    return;
  rt->closing = true;
  while (rt->running)
    abandon(rt->running);
  if (rt->alive == 0)
    free_runtime(rt);
}

/* ---- commands ---- */

static int
check(cshim_runtime_t *rt, const char *id, cshim_runtime_cb cb, const char *name,
      cshim_error_t *err)
{
  if (rt == NULL || cb == NULL || rt->closing)
    return cshim_error_make(err, EINVAL, "runtime %s: invalid arguments", name);
  if (id != NULL && id[0] == '\0')
    return cshim_error_make(err, EINVAL, "%s %s: empty container id", rt->display, name);
  return 0;
}

static int
run_simple(cshim_runtime_t *rt, const char *name, const char *id, const char *log_path,
           cshim_runtime_cb cb, void *data, cshim_error_t *err)
{
  struct args a = {0};
  int ret = check(rt, id ? id : "", cb, name, err);
  if (ret < 0)
    return ret;
  begin(rt, &a, log_path, name);
  push(&a, id);
  ret = run(rt, &a, name, id, NULL, log_path, cb, data, err);
  free(a.v);
  return ret;
}

int
cshim_runtime_create(cshim_runtime_t *rt, const char *id, const cshim_runtime_create_opts_t *opts,
                     cshim_runtime_cb cb, void *data, cshim_error_t *err)
{
  struct args a = {0};
  int ret = check(rt, id ? id : "", cb, "create", err);
  if (ret < 0)
    return ret;
  if (opts == NULL || opts->bundle == NULL || opts->bundle[0] == '\0')
    return cshim_error_make(err, EINVAL, "%s create: no bundle", rt->display);
  begin(rt, &a, opts->log_path, "create");
  push(&a, "--bundle");
  push(&a, opts->bundle);
  push_opt(&a, "--pid-file", opts->pid_file);
  push_opt(&a, "--console-socket", opts->console_socket);
  if (opts->no_pivot)
    push(&a, "--no-pivot");
  if (opts->no_new_keyring)
    push(&a, "--no-new-keyring");
  /* opts->detach is not passed: `create` always detaches, and runc and crun reject the flag. */
  push(&a, id);
  ret = run(rt, &a, "create", id, &opts->io, opts->log_path, cb, data, err);
  free(a.v);
  return ret;
}

int
cshim_runtime_start(cshim_runtime_t *rt, const char *id, const char *log_path, cshim_runtime_cb cb,
                    void *data, cshim_error_t *err)
{
  return run_simple(rt, "start", id, log_path, cb, data, err);
}

int
cshim_runtime_exec(cshim_runtime_t *rt, const char *id, const cshim_runtime_exec_opts_t *opts,
                   cshim_runtime_cb cb, void *data, cshim_error_t *err)
{
  struct args a = {0};
  int ret = check(rt, id ? id : "", cb, "exec", err);
  if (ret < 0)
    return ret;
  if (opts == NULL || opts->process_json == NULL || opts->process_json[0] == '\0')
    return cshim_error_make(err, EINVAL, "%s exec: no process spec", rt->display);
  begin(rt, &a, opts->log_path, "exec");
  push(&a, "--process");
  push(&a, opts->process_json);
  push_opt(&a, "--console-socket", opts->console_socket);
  if (opts->detach)
    push(&a, "--detach");
  push_opt(&a, "--pid-file", opts->pid_file);
  push(&a, id);
  ret = run(rt, &a, "exec", id, &opts->io, opts->log_path, cb, data, err);
  free(a.v);
  return ret;
}

int
cshim_runtime_kill(cshim_runtime_t *rt, const char *id, int signal, bool all, const char *log_path,
                   cshim_runtime_cb cb, void *data, cshim_error_t *err)
{
  struct args a = {0};
  char sig[16];
  int ret = check(rt, id ? id : "", cb, "kill", err);
  if (ret < 0)
    return ret;
  if (signal <= 0 || signal >= NSIG)
    return cshim_error_make(err, EINVAL, "%s kill: invalid signal %d", rt->display, signal);
  snprintf(sig, sizeof sig, "%d", signal);
  begin(rt, &a, log_path, "kill");
  if (all)
    push(&a, "--all");
  push(&a, id);
  push(&a, sig);
  ret = run(rt, &a, "kill", id, NULL, log_path, cb, data, err);
  free(a.v);
  return ret;
}

int
cshim_runtime_delete(cshim_runtime_t *rt, const char *id, bool force, const char *log_path,
                     cshim_runtime_cb cb, void *data, cshim_error_t *err)
{
  struct args a = {0};
  int ret = check(rt, id ? id : "", cb, "delete", err);
  if (ret < 0)
    return ret;
  begin(rt, &a, log_path, "delete");
  if (force)
    push(&a, "--force");
  push(&a, id);
  ret = run(rt, &a, "delete", id, NULL, log_path, cb, data, err);
  free(a.v);
  return ret;
}

int
cshim_runtime_state(cshim_runtime_t *rt, const char *id, cshim_runtime_cb cb, void *data,
                    cshim_error_t *err)
{
  return run_simple(rt, "state", id, NULL, cb, data, err);
}

int
cshim_runtime_ps(cshim_runtime_t *rt, const char *id, cshim_runtime_cb cb, void *data,
                 cshim_error_t *err)
{
  struct args a = {0};
  int ret = check(rt, id ? id : "", cb, "ps", err);
  if (ret < 0)
    return ret;
  begin(rt, &a, NULL, "ps");
  push(&a, "--format");
  push(&a, "json");
  push(&a, id);
  ret = run(rt, &a, "ps", id, NULL, NULL, cb, data, err);
  free(a.v);
  return ret;
}

int
cshim_runtime_pause(cshim_runtime_t *rt, const char *id, cshim_runtime_cb cb, void *data,
                    cshim_error_t *err)
{
  return run_simple(rt, "pause", id, NULL, cb, data, err);
}

int
cshim_runtime_resume(cshim_runtime_t *rt, const char *id, cshim_runtime_cb cb, void *data,
                     cshim_error_t *err)
{
  return run_simple(rt, "resume", id, NULL, cb, data, err);
}

int
cshim_runtime_update(cshim_runtime_t *rt, const char *id, const char *resources_json,
                     cshim_runtime_cb cb, void *data, cshim_error_t *err)
{
  struct args a = {0};
  int ret = check(rt, id ? id : "", cb, "update", err);
  if (ret < 0)
    return ret;
  if (resources_json == NULL || resources_json[0] == '\0')
    return cshim_error_make(err, EINVAL, "%s update: no resources file", rt->display);
  begin(rt, &a, NULL, "update");
  push(&a, "--resources");
  push(&a, resources_json);
  push(&a, id);
  ret = run(rt, &a, "update", id, NULL, NULL, cb, data, err);
  free(a.v);
  return ret;
}

int
cshim_runtime_checkpoint(cshim_runtime_t *rt, const char *id,
                         const cshim_runtime_checkpoint_opts_t *opts, cshim_runtime_cb cb,
                         void *data, cshim_error_t *err)
{
  struct args a = {0};
  int ret = check(rt, id ? id : "", cb, "checkpoint", err);
  if (ret < 0)
    return ret;
  if (opts == NULL || opts->image_path == NULL || opts->image_path[0] == '\0')
    return cshim_error_make(err, EINVAL, "%s checkpoint: no image path", rt->display);
  begin(rt, &a, opts->log_path, "checkpoint");
  push_opt(&a, "--image-path", opts->image_path);
  push_opt(&a, "--work-path", opts->work_path);
  push_opt(&a, "--parent-path", opts->parent_path);
  if (opts->tcp_established)
    push(&a, "--tcp-established");
  if (opts->ext_unix_sk)
    push(&a, "--ext-unix-sk");
  if (opts->shell_job)
    push(&a, "--shell-job");
  if (opts->file_locks)
    push(&a, "--file-locks");
  push_opt(&a, "--manage-cgroups-mode", opts->cgroups_mode);
  for (const char *const *ns = opts->empty_ns; ns && *ns; ns++)
    push_opt(&a, "--empty-ns", *ns);
  if (opts->leave_running)
    push(&a, "--leave-running");
  push(&a, id);
  ret = run(rt, &a, "checkpoint", id, NULL, opts->log_path, cb, data, err);
  free(a.v);
  return ret;
}

int
cshim_runtime_restore(cshim_runtime_t *rt, const char *id, const cshim_runtime_create_opts_t *opts,
                      cshim_runtime_cb cb, void *data, cshim_error_t *err)
{
  struct args a = {0};
  int ret = check(rt, id ? id : "", cb, "restore", err);
  if (ret < 0)
    return ret;
  if (opts == NULL || opts->bundle == NULL || opts->bundle[0] == '\0' ||
      opts->criu_image_path == NULL || opts->criu_image_path[0] == '\0')
    return cshim_error_make(err, EINVAL, "%s restore: no bundle or image path", rt->display);
  begin(rt, &a, opts->log_path, "restore");
  push_opt(&a, "--image-path", opts->criu_image_path);
  push_opt(&a, "--work-path", opts->criu_work_path);
  /* Always detached: an attached restore would run until the container exits. */
  push(&a, "--detach");
  push_opt(&a, "--pid-file", opts->pid_file);
  push_opt(&a, "--console-socket", opts->console_socket);
  if (opts->no_pivot)
    push(&a, "--no-pivot");
  push(&a, "--bundle");
  push(&a, opts->bundle);
  push(&a, id);
  ret = run(rt, &a, "restore", id, &opts->io, opts->log_path, cb, data, err);
  free(a.v);
  return ret;
}

int
cshim_runtime_features(cshim_runtime_t *rt, cshim_runtime_cb cb, void *data, cshim_error_t *err)
{
  struct args a = {0};
  int ret = check(rt, NULL, cb, "features", err);
  if (ret < 0)
    return ret;
  begin(rt, &a, NULL, "features");
  ret = run(rt, &a, "features", NULL, NULL, NULL, cb, data, err);
  free(a.v);
  return ret;
}

int
cshim_runtime_stats(cshim_runtime_t *rt, const char *id, cshim_runtime_cb cb, void *data,
                    cshim_error_t *err)
{
  struct args a = {0};
  int ret = check(rt, id ? id : "", cb, "events", err);
  if (ret < 0)
    return ret;
  begin(rt, &a, NULL, "events");
  push(&a, "--stats");
  push(&a, id);
  ret = run(rt, &a, "events", id, NULL, NULL, cb, data, err);
  free(a.v);
  return ret;
}
