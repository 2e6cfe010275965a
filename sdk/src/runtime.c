// SPDX-License-Identifier: Apache-2.0
// Asynchronous runc-compatible runtime commands: go-runc's argv, output captured on the loop.
#define _GNU_SOURCE
#include <cshim/list.h>
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
/* After SIGKILL, how long a runtime may take to be reaped (a process in uninterruptible sleep)
   before its command is reported anyway: the caller gets its answer either way. */
#define KILL_GRACE_MS 5000u

struct capture
{
  char *data;
  size_t len, cap;
  bool overflow;
};

/* The commands of one owner (e.g. one ttrpc connection) under a limit: its own FIFO queue, and
   how many slots it holds. Lives while any command of the owner is attached. */
struct owner_q
{
  cshim_list_t link;      /* in the limit's owners */
  cshim_list_t ring_link; /* in the limit's ring of owners that wait, while queued > 0 */
  uint64_t owner;
  cshim_list_t queue; /* struct cmd, oldest first */
  size_t queued;
  unsigned running;
  uint64_t served; /* the limit's start count when it last started one of ours; 0 = never */
  size_t refs;     /* commands attached */
};

struct cmd
{
  cshim_list_t link;       /* in the runtime's unfinished commands */
  cshim_list_t queue_link; /* in its owner's queue, while queued */
  struct owner_q *oq;      /* its owner under the limit (NULL without a limit) */
  cshim_runtime_t *rt;
  char *name;  /* subcommand, for messages */
  char *id;    /* container id or NULL, to recognise runtimes' not-found messages */
  char **argv; /* owned copy: a queued command starts later */
  char *log_path;
  off_t log_offset;
  bool has_io;           /* io is the runtime's stdio (create, exec, restore) */
  int nice;              /* added to the runtime's niceness (commands that start no container) */
  int exec_fd;           /* the spawn's exec status, read once the runtime has exited; -1 */
  bool owns_io;          /* io holds duplicates owned by the command (queued commands) */
  cshim_runtime_io_t io; /* -1 = /dev/null */
  pid_t pid;             /* 0 until started */
  bool queued, holds_slot, expiry_is_deadline, kill_sent;
  bool exited, done, abandoned, timed_out, deadline_hit;
  int read_errno;            /* reading stdout failed: the output may be incomplete */
  cshim_error_t start_error; /* a queued command that could not start */
  uint64_t submitted_ns, deadline_ns;
  int wait_status;
  uv_timer_t timer; /* the deadline while queued; then the timeout; then the grace after SIGKILL */
  uv_pipe_t out_pipe, err_pipe;
  bool out_reading, err_reading;
  int open_handles;
  struct capture out, err;
  char read_buf[16384];
  cshim_runtime_cb cb;
  void *data;
  cshim_span_t *span;                               /* NULL when not traced */
  char traceparent[12 + CSHIM_TRACEPARENT_LEN + 1]; /* "TRACEPARENT=..." for the runtime */
};

struct cshim_runtime_limit_s
{
  unsigned max;
  unsigned running;
  size_t queued;
  uint64_t waited;   /* commands that had to queue, ever */
  cshim_list_t all;  /* struct owner_q with a command attached, newest first */
  cshim_list_t ring; /* struct owner_q with queued commands, in the order they began to wait */
  uint64_t starts;   /* commands started, ever */
  size_t refs;       /* runtimes using the limit */
  bool closed;  /* cshim_runtime_limit_free was called: nothing starts from the queue any more */
  bool pumping; /* starting queued commands (launch failures must not recurse) */
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
  cshim_runtime_limit_t *limit;
  uint64_t (*deadline_of)(void *data);
  uint64_t (*owner_of)(void *data);
  int nice;
  char **global_args; /* NULL-terminated, or NULL */
  cshim_tracer_t *tracer;
  cshim_span_t *(*span_of)(void *data);
  cshim_list_t cmds; /* struct cmd started or queued, not finished; newest first */
  size_t alive;      /* commands not yet freed */
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
  for (char **g = rt->global_args; g && *g; g++)
    push(a, *g);
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
  rt->limit = cfg->limit;
  rt->deadline_of = cfg->deadline_of;
  rt->tracer = cfg->tracer;
  rt->span_of = cfg->span_of;
  rt->owner_of = cfg->owner_of;
  rt->nice = cfg->nice;
  if (cfg->global_args && cfg->global_args[0]) {
    size_t n = 0;
    while (cfg->global_args[n])
      n++;
    rt->global_args = cshim_xmalloc0((n + 1) * sizeof *rt->global_args);
    for (size_t i = 0; i < n; i++)
      rt->global_args[i] = cshim_xstrdup(cfg->global_args[i]);
  }
  if (rt->limit)
    rt->limit->refs++;
  *out = rt;
  return 0;
}

cshim_runtime_limit_t *
cshim_runtime_limit_new(unsigned max_running)
{
  cshim_runtime_limit_t *l = cshim_xmalloc0(sizeof *l);
  l->max = max_running ? max_running : 1;
  return l;
}

void
cshim_runtime_limit_free(cshim_runtime_limit_t *l)
{
  if (l == NULL || l->closed)
    return;
  l->closed = true;
  if (l->refs == 0)
    free(l);
}

void
cshim_runtime_limit_get_stats(const cshim_runtime_limit_t *l, cshim_runtime_limit_stats_t *out)
{
  memset(out, 0, sizeof *out);
  if (l == NULL)
    return;
  out->max = l->max;
  out->running = l->running;
  out->queued = l->queued;
  out->waited = l->waited;
}

static void
unref_limit(cshim_runtime_limit_t *l)
{
  if (l && --l->refs == 0 && l->closed)
    free(l);
}

static void
free_runtime(cshim_runtime_t *rt)
{
  unref_limit(rt->limit);
  free(rt->binary);
  free(rt->root);
  free(rt->criu);
  for (char **g = rt->global_args; g && *g; g++)
    free(*g);
  free(rt->global_args);
  free(rt);
}

static void
free_argv(char **argv)
{
  if (argv == NULL)
    return;
  for (char **p = argv; *p; p++)
    free(*p);
  free(argv);
}

static void detach_owner(struct cmd *c);

static void
free_cmd(struct cmd *c)
{
  cshim_runtime_t *rt = c->rt;
  detach_owner(c);
  if (c->exec_fd >= 0)
    close(c->exec_fd);
  free(c->name);
  free(c->id);
  free_argv(c->argv);
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
  /* arrays, not pointers: the table needs no relocation (a shared read-only page in every
     module that links it, not a private one) */
  static const struct
  {
    char cmd[8]; /* "" = any */
    char needle[48];
    int errnum;
  } table[] = {
      /* runc: every command on an unknown id */
      {"", "container does not exist", ENOENT},
      /* runc "container with given ID already exists", crun "container `x` already exists" */
      {"create", "already exists", EEXIST},
      /* a kill after the process exited: containerd reports "process already finished" */
      {"kill", "container not running", ESRCH},
      {"kill", "No such process", ESRCH},
      /* runc state errors */
      {"", "container not running", EBUSY},
      {"", "container not paused", EBUSY},
      {"", "cannot start an already running container", EBUSY},
      {"", "cannot start a container that has stopped", EBUSY},
      {"", "cannot start a container in the paused state", EBUSY},
      {"", "that is not stopped", EBUSY},
      {"", "cannot exec in a paused container", EBUSY},
      {"", "cannot exec in a stopped container", EBUSY},
      /* crun state errors */
      {"", "` is not running", EBUSY},
      {"", "` is paused", EBUSY},
      {"", "` is not in `created` or `stopped` state", EBUSY},
  };

  for (size_t i = 0; i < CSHIM_N_ELEMENTS(table); i++)
    if ((table[i].cmd[0] == '\0' || strcmp(table[i].cmd, c->name) == 0) &&
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

  if (c->start_error) {
    *err = cshim_steal_pointer(&c->start_error);
    return;
  }
  if (c->deadline_hit && c->pid == 0) {
    cshim_runtime_limit_t *l = rt->limit;
    cshim_error_make(err, ETIMEDOUT,
                     "%s %s: deadline exceeded after %" PRIu64
                     "ms waiting for a free runtime slot (%u of %u in use)",
                     rt->display, c->name, (cshim_now_ns() - c->submitted_ns) / 1000000u,
                     l ? l->running : 0, l ? l->max : 0);
    return;
  }
  if (c->deadline_hit) {
    cshim_error_make(err, ETIMEDOUT, "%s %s: deadline exceeded after %" PRIu64 "ms", rt->display,
                     c->name, (cshim_now_ns() - c->submitted_ns) / 1000000u);
    return;
  }
  if (c->timed_out) {
    cshim_error_make(err, ETIMEDOUT, "%s %s: timed out after %" PRIu64 "ms", rt->display, c->name,
                     rt->timeout_ms);
    return;
  }
  if (c->read_errno) {
    cshim_error_sys(err, c->read_errno, "%s %s: read its output", rt->display, c->name);
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

/* A command is queued (when the limit is reached), then running (it holds a slot of the limit
   until its runtime has exited or been given up), then finished: its callback has run (unless it
   was abandoned) and its handles are closing. */

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
close_io(struct cmd *c)
{
  if (!c->owns_io)
    return;
  c->owns_io = false;
  if (c->io.stdin_fd >= 0)
    close(c->io.stdin_fd);
  if (c->io.stdout_fd >= 0)
    close(c->io.stdout_fd);
  if (c->io.stderr_fd >= 0)
    close(c->io.stderr_fd);
  c->io = (cshim_runtime_io_t){-1, -1, -1};
}

static void
unlink_cmd(struct cmd *c)
{
  cshim_list_remove(&c->link);
}

/* The owner record of `owner` under l, made on first use. */
static struct owner_q *
find_owner(cshim_runtime_limit_t *l, uint64_t owner)
{
  struct owner_q *o;
  cshim_list_t *e;

  CSHIM_LIST_FOREACH (e, &l->all) {
    o = cshim_list_entry(e, struct owner_q, link);
    if (o->owner == owner)
      return o;
  }
  o = cshim_xmalloc0(sizeof *o);
  o->owner = owner;
  cshim_list_push_front(&l->all, &o->link);
  return o;
}

static void
attach_owner(struct cmd *c, uint64_t owner)
{
  if (c->rt->limit == NULL)
    return;
  c->oq = find_owner(c->rt->limit, owner);
  c->oq->refs++;
}

static void
detach_owner(struct cmd *c)
{
  struct owner_q *o = c->oq;

  if (o == NULL)
    return;
  c->oq = NULL;
  if (--o->refs > 0)
    return;
  cshim_list_remove(&o->link);
  free(o);
}

static void
enqueue(struct cmd *c)
{
  cshim_runtime_limit_t *l = c->rt->limit;
  struct owner_q *o = c->oq;

  c->queued = true;
  cshim_list_push_back(&o->queue, &c->queue_link);
  if (o->queued++ == 0)
    cshim_list_push_back(&l->ring, &o->ring_link);
  l->queued++;
  l->waited++;
}

static void
dequeue(struct cmd *c)
{
  cshim_runtime_limit_t *l = c->rt->limit;
  struct owner_q *o = c->oq;

  if (!c->queued)
    return;
  c->queued = false;
  cshim_list_remove(&c->queue_link);
  if (--o->queued == 0)
    cshim_list_remove(&o->ring_link);
  l->queued--;
}

/* The next command to start: the oldest of the waiting owner that holds the fewest slots; among
   those, the one served longest ago (round-robin). O(owners waiting). */
static struct cmd *
next_queued(cshim_runtime_limit_t *l)
{
  struct owner_q *best = NULL;
  cshim_list_t *e;

  CSHIM_LIST_FOREACH (e, &l->ring) {
    struct owner_q *o = cshim_list_entry(e, struct owner_q, ring_link);
    if (best == NULL || o->running < best->running ||
        (o->running == best->running && o->served < best->served))
      best = o;
  }
  return best ? cshim_list_entry(cshim_list_first(&best->queue), struct cmd, queue_link) : NULL;
}

static void
finish(struct cmd *c)
{
  cshim_runtime_result_t result;

  if (c->done)
    return;
  c->done = true;
  dequeue(c);
  unlink_cmd(c);
  close_io(c);
  close_handles(c); /* memory goes in the close callbacks, after the callback below */
  if (c->abandoned) {
    cshim_span_end(c->rt->tracer, c->span, ECANCELED, "abandoned");
    cshim_error_release(&c->start_error);
    return;
  }

  memset(&result, 0, sizeof result);
  result.wait_status = c->wait_status;
  result.out = c->out.data ? c->out.data : "";
  result.out_len = c->out.len;
  build_error(c, &result.error);
  if (result.error)
    cshim_span_end(c->rt->tracer, c->span, result.error->status ? result.error->status : -EIO,
                   result.error->msg);
  else
    cshim_span_end(c->rt->tracer, c->span, 0, NULL);
  c->span = NULL;
  if (result.error)
    cshim_log_debug(c->rt->log, "%s", result.error->msg);
  c->cb(c->data, &result);
  cshim_error_release(&result.error);
}

static void timer_cb(uv_timer_t *t);
static void exit_cb(void *data, pid_t pid, int wait_status);
static void append(struct capture *cap, const char *p, size_t n);
static int launch(struct cmd *c, cshim_error_t *err);

/* Milliseconds from now until a monotonic deadline, rounded up; 0 when it has passed. */
static uint64_t
ms_until(uint64_t deadline_ns)
{
  uint64_t now = cshim_now_ns();
  return deadline_ns > now ? (deadline_ns - now + 999999u) / 1000000u : 0;
}

/* Arm the timer of a running command: the runtime's timeout or the caller's deadline, whichever
   comes first. */
static void
arm_running_timer(struct cmd *c)
{
  uint64_t ms = c->rt->timeout_ms;
  if (c->deadline_ns) {
    uint64_t left = ms_until(c->deadline_ns);
    if (ms == 0 || left < ms) {
      ms = left;
      c->expiry_is_deadline = true;
    }
  }
  if (ms || c->expiry_is_deadline)
    uv_timer_start(&c->timer, timer_cb, ms, 0);
}

/* Start what the queue holds while slots are free. A command that cannot start is reported from
   its timer, on a later loop turn, never from inside another command's callback. */
static void
pump(cshim_runtime_limit_t *l)
{
  if (l->pumping)
    return;
  l->pumping = true;
  while (!l->closed && !cshim_list_empty(&l->ring) && l->running < l->max) {
    struct cmd *c = next_queued(l);
    cshim_error_t err = NULL;

    dequeue(c);
    uv_timer_stop(&c->timer);
    if (launch(c, &err) < 0) {
      c->start_error = err;
      uv_timer_start(&c->timer, timer_cb, 0, 0);
      continue;
    }
    arm_running_timer(c);
  }
  l->pumping = false;
}

static void
release_slot(struct cmd *c)
{
  cshim_runtime_limit_t *l = c->rt->limit;
  if (!c->holds_slot)
    return;
  c->holds_slot = false;
  l->running--;
  c->oq->running--;
  pump(l);
}

/* The runtime is gone for us (killed, not to be waited for): its exit goes to a no-op watcher so
   the reaper never calls into freed memory. */
static void
forget_process(struct cmd *c)
{
  cshim_reaper_t *reaper = c->rt->reaper;
  if (c->pid <= 0 || c->exited)
    return;
  reaper->ops->unwatch(reaper, c->pid, exit_cb, c);
  reaper->ops->watch(reaper, c->pid, discard_exit_cb, NULL, NULL);
  c->exited = true;
}

/* Read what is left in a capture pipe. Called once the runtime has been reaped: a dead process
   has closed its fds, so everything it wrote is in the pipe now. EOF ends the stream; EAGAIN
   means a process it started still holds the pipe open, and what follows is not its output. */
static void
drain(struct cmd *c, uv_pipe_t *p, bool *reading, struct capture *cap)
{
  uv_os_fd_t fd;

  if (!*reading || uv_fileno((const uv_handle_t *)p, &fd) < 0)
    return;
  while (!cap->overflow) {
    ssize_t n = read(fd, c->read_buf, sizeof c->read_buf);
    if (n > 0) {
      append(cap, c->read_buf, (size_t)n);
      continue;
    }
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
      return;
    if (n < 0 && p == &c->out_pipe) /* stderr only feeds messages */
      c->read_errno = errno;
    stop_reading(p, reading);
    return;
  }
}

static void
maybe_finish(struct cmd *c)
{
  if (c->exited && !c->out_reading && !c->err_reading)
    finish(c);
}

static void
kill_runtime(struct cmd *c)
{
  if (c->pid > 0 && !c->exited)
    cshim_spawn_kill_tree(c->pid); /* not reaped yet: the pid and its group are still ours */
}

static void
timer_cb(uv_timer_t *t)
{
  struct cmd *c = t->data;

  if (c->start_error) { /* queued, then could not start */
    finish(c);
    return;
  }
  if (c->queued) { /* the caller's deadline passed before a slot came free */
    c->deadline_hit = true;
    finish(c);
    return;
  }
  if (c->kill_sent) {
    cshim_log_warn(c->rt->log, "%s %s (pid %d) not reaped %ums after SIGKILL: reporting it anyway",
                   c->rt->display, c->name, (int)c->pid, KILL_GRACE_MS);
    forget_process(c);
    release_slot(c);
    finish(c);
    return;
  }
  if (c->expiry_is_deadline)
    c->deadline_hit = true;
  else
    c->timed_out = true;
  kill_runtime(c);
  c->kill_sent = true;
  uv_timer_start(&c->timer, timer_cb, KILL_GRACE_MS, 0);
}

static void
exit_cb(void *data, pid_t pid, int wait_status)
{
  struct cmd *c = data;
  (void)pid;

  c->exited = true;
  c->wait_status = wait_status;
  if (c->exec_fd >= 0) {
    cshim_error_t e = NULL;
    int fd = c->exec_fd;
    c->exec_fd = -1;
    /* The runtime never ran: say why, as a spawn that waited for the exec would have. */
    if (cshim_spawn_exec_status(fd, c->rt->binary, &e) < 0 && c->start_error == NULL) {
      cshim_error_wrap(&e, "%s %s", c->rt->display, c->name);
      c->start_error = e;
    } else
      cshim_error_release(&e);
  }
  drain(c, &c->out_pipe, &c->out_reading, &c->out);
  drain(c, &c->err_pipe, &c->err_reading, &c->err);
  if (c->out_reading || c->err_reading)
    cshim_log_debug(c->rt->log, "%s %s exited; a process it started holds its output open",
                    c->rt->display, c->name);
  /* Before the callback: a command it submits queues behind those already waiting. */
  release_slot(c);
  finish(c);
}

int
cshim_runtime_command_process(const cshim_runtime_t *rt, const void *data, pid_t *pid, bool *exited,
                              int *wait_status)
{
  const cshim_list_t *e;

  if (rt == NULL)
    return 0;
  CSHIM_LIST_FOREACH (e, &rt->cmds) {
    const struct cmd *c = cshim_list_entry(e, struct cmd, link);
    if (c->data != data || c->done || c->pid <= 0)
      continue;
    *pid = c->pid;
    *exited = c->exited;
    *wait_status = c->exited ? c->wait_status : 0;
    return 1;
  }
  return 0;
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
    kill_runtime(c);
  } else if (nread == 0)
    return;
  else if (nread != UV_EOF) {
    cshim_log_warn(c->rt->log, "%s %s: read %s: %s", c->rt->display, c->name,
                   is_out ? "stdout" : "stderr", uv_strerror((int)nread));
    if (is_out) /* stderr only feeds messages */
      c->read_errno = -(int)nread;
  }
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
  cshim_list_push_front(&rt->cmds, &c->link);
}

/* Stop a command whose result nobody will read: a queued one leaves the queue, a running one is
   killed with everything it started; the callback never runs. */
static void
abandon(struct cmd *c)
{
  c->abandoned = true;
  kill_runtime(c);
  forget_process(c);
  release_slot(c);
  finish(c);
}

static void
log_argv(const struct cmd *c)
{
  const cshim_logger_t *log = c->rt->log;
  size_t len = 0;

  if (log == NULL || log->level > CSHIM_LOG_DEBUG)
    return;
  for (char **a = c->argv; *a; a++)
    len += strlen(*a) + 1;
  cshim_autofree char *line = cshim_xmalloc0(len + 1);
  for (char **a = c->argv; *a; a++) {
    strcat(line, *a);
    if (a[1])
      strcat(line, " ");
  }
  cshim_log_debug(log, "started %s (pid %d)", line, (int)c->pid);
}

/* Start the runtime process of c (in its own process group, so that a timeout can kill what it
   started) and take a slot of the limit. On failure nothing runs and no slot is held. */
/* The shim's environment with TRACEPARENT set to the command's span (the OpenTelemetry
   convention for handing trace context to a child process; runc and crun ignore it, a runtime
   that traces can continue it), or NULL (inherit) when the command is not traced. The strings
   are borrowed (environ and c->traceparent); the caller frees the array. */
static char **
trace_env(struct cmd *c)
{
  extern char **environ;
  size_t n = 0, k = 0;
  char **envp;

  if (c->span == NULL || c->rt->tracer->traceparent == NULL ||
      c->rt->tracer->traceparent(c->span, c->traceparent + 12, sizeof c->traceparent - 12) < 0)
    return NULL;
  memcpy(c->traceparent, "TRACEPARENT=", 12);
  while (environ && environ[n])
    n++;
  envp = cshim_xmalloc((n + 2) * sizeof *envp);
  for (size_t i = 0; i < n; i++)
    if (strncmp(environ[i], "TRACEPARENT=", 12) != 0)
      envp[k++] = environ[i];
  envp[k++] = c->traceparent;
  envp[k] = NULL;
  return envp;
}

static int
launch(struct cmd *c, cshim_error_t *err)
{
  cshim_runtime_t *rt = c->rt;
  cshim_spawn_opts_t opts;
  char **envp;
  int out_pipe[2] = {-1, -1}, err_pipe[2] = {-1, -1};
  struct stat st;
  int ret;

  /* Only what the runtime appends from here on is this command's. */
  if (c->log_path && stat(c->log_path, &st) == 0)
    c->log_offset = st.st_size;

  memset(&opts, 0, sizeof opts);
  opts.path = rt->binary;
  opts.argv = c->argv;
  opts.parent_death_signal = SIGKILL;
  opts.new_process_group = true;
  opts.kind = "runtime";
  opts.command = c->name;
  opts.nice = c->nice;
  /* The loop does not wait for the runtime to be scheduled and exec: under CPU pressure that
     wait was most of a call's latency for every other client. */
  opts.exec_status_fd = &c->exec_fd;
  if (c->has_io) {
    opts.stdin_fd = c->io.stdin_fd;
    opts.stdout_fd = c->io.stdout_fd;
    opts.stderr_fd = c->io.stderr_fd;
  } else {
    if (pipe2(out_pipe, O_CLOEXEC) < 0 || pipe2(err_pipe, O_CLOEXEC) < 0) {
      ret = cshim_error_sys(err, errno, "%s %s: pipe", rt->display, c->name);
      close_pair(out_pipe);
      close_pair(err_pipe);
      return ret;
    }
    opts.stdin_fd = -1;
    opts.stdout_fd = out_pipe[1];
    opts.stderr_fd = err_pipe[1];
  }

  envp = trace_env(c);
  opts.envp = envp;
  ret = cshim_spawn(rt->reaper, &opts, exit_cb, c, &c->pid, err);
  free(envp);
  close_io(c); /* the runtime has its own copies now */
  if (ret < 0) {
    close_pair(out_pipe);
    close_pair(err_pipe);
    c->pid = 0;
    return cshim_error_wrap(err, "%s %s", rt->display, c->name);
  }
  if (rt->limit) {
    c->holds_slot = true;
    rt->limit->running++;
    c->oq->running++;
    c->oq->served = ++rt->limit->starts;
  }
  log_argv(c);
  if (c->has_io)
    return 0;

  close(out_pipe[1]);
  close(err_pipe[1]);
  ret = open_capture(c, &c->out_pipe, &c->out_reading, out_pipe[0]);
  if (ret < 0)
    close(err_pipe[0]);
  else
    ret = open_capture(c, &c->err_pipe, &c->err_reading, err_pipe[0]);
  if (ret < 0) {
    kill_runtime(c);
    forget_process(c);
    release_slot(c);
    return cshim_error_from_uv(err, ret, "%s %s: read output", rt->display, c->name);
  }
  return 0;
}

static char **
copy_argv(const struct args *a)
{
  char **v = cshim_xmalloc0((a->n + 1) * sizeof *v);
  for (size_t i = 0; i < a->n; i++)
    v[i] = cshim_xstrdup(a->v[i]);
  return v;
}

static int
dup_fd(int fd)
{
  return fd < 0 ? -1 : fcntl(fd, F_DUPFD_CLOEXEC, 3);
}

/* Whether the runtime's process (or one it starts) becomes a container process, which would
   inherit the runtime's niceness. */
static bool
creates_process(const char *name)
{
  return strcmp(name, "create") == 0 || strcmp(name, "exec") == 0 || strcmp(name, "start") == 0 ||
         strcmp(name, "restore") == 0;
}

static bool
must_queue(const cshim_runtime_t *rt)
{
  const cshim_runtime_limit_t *l = rt->limit;
  return l && !l->closed && (!cshim_list_empty(&l->ring) || l->running >= l->max);
}

/* Run argv now, or queue it behind the limit; io == NULL captures stdout and stderr, otherwise io
   becomes the runtime's stdio (and so the container process's). */
static int
run(cshim_runtime_t *rt, struct args *a, const char *name, const char *id,
    const cshim_runtime_io_t *io, const char *log_path, cshim_runtime_cb cb, void *data,
    cshim_error_t *err)
{
  struct cmd *c;
  int ret;

  c = cshim_xmalloc0(sizeof *c);
  c->rt = rt;
  c->name = cshim_xstrdup(name);
  c->id = cshim_xstrdup(id);
  c->argv = copy_argv(a);
  c->log_path = log_path && log_path[0] ? cshim_xstrdup(log_path) : NULL;
  c->cb = cb;
  c->data = data;
  c->io = (cshim_runtime_io_t){-1, -1, -1};
  if (io) {
    c->has_io = true;
    c->io = *io;
  }
  c->submitted_ns = cshim_now_ns();
  c->deadline_ns = rt->deadline_of ? rt->deadline_of(data) : 0;
  if (rt->tracer && rt->span_of) {
    char span_name[128];

    snprintf(span_name, sizeof span_name, "%s %s", rt->display, name);
    c->span = cshim_span_start(rt->tracer, rt->span_of(data), span_name);
    cshim_span_set_attr(rt->tracer, c->span, "container.id", id);
  }
  c->exec_fd = -1;
  c->nice = creates_process(name) ? 0 : rt->nice;
  attach_owner(c, rt->owner_of ? rt->owner_of(data) : 0);
  uv_timer_init(rt->loop, &c->timer);
  c->timer.data = c;
  c->open_handles = 1;
  link_cmd(c);

  if (!must_queue(rt)) {
    ret = launch(c, err);
    if (ret < 0) {
      c->abandoned = true;
      finish(c);
      return ret;
    }
    arm_running_timer(c);
    return 0;
  }

  /* The caller closes its copies of the stdio once this returns: keep our own until the start. */
  if (io) {
    c->owns_io = true;
    c->io.stdin_fd = dup_fd(io->stdin_fd);
    c->io.stdout_fd = dup_fd(io->stdout_fd);
    c->io.stderr_fd = dup_fd(io->stderr_fd);
    if ((io->stdin_fd >= 0 && c->io.stdin_fd < 0) || (io->stdout_fd >= 0 && c->io.stdout_fd < 0) ||
        (io->stderr_fd >= 0 && c->io.stderr_fd < 0)) {
      ret = cshim_error_sys(err, errno, "%s %s: keep the stdio while queued", rt->display, name);
      c->abandoned = true;
      finish(c);
      return ret;
    }
  }
  enqueue(c);
  cshim_log_debug(rt->log, "%s %s queued: %u runtime processes running, %zu queued", rt->display,
                  name, rt->limit->running, rt->limit->queued);
  if (c->deadline_ns)
    uv_timer_start(&c->timer, timer_cb, ms_until(c->deadline_ns), 0);
  return 0;
}

void
cshim_runtime_free(cshim_runtime_t *rt)
{
  if (rt == NULL || rt->closing)
    return;
  rt->closing = true;
  /* Queued ones first: a slot freed below must not start a command of this runtime. */
  cshim_list_t *e, *next;

  CSHIM_LIST_FOREACH_SAFE (e, next, &rt->cmds) {
    struct cmd *c = cshim_list_entry(e, struct cmd, link);
    if (c->queued)
      abandon(c);
  }
  while ((e = cshim_list_first(&rt->cmds)) != NULL)
    abandon(cshim_list_entry(e, struct cmd, link));
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
