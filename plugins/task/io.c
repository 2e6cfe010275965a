// SPDX-License-Identifier: Apache-2.0
// A process's stdio: pipes for the runtime, a terminal's console, a logging binary, and copies
// between them and the client's FIFOs or files on the loop, without ever blocking it.
#define _GNU_SOURCE
#include "task.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#include <cshim/util.h>

enum
{
  STDIN = 0,
  STDOUT = 1,
  STDERR = 2,
};

/* One direction of copying: src -> dst through a buffer. While the buffer holds data the source
   is not read (back-pressure reaches the writer through the full pipe). */
struct copier
{
  task_io_t *io;
  int index;
  bool used;     /* the copy exists */
  bool started;  /* task_io_start ran */
  bool finished; /* source done, buffer flushed, fds closed */
  bool discard;  /* destination failed: keep draining the source, drop the data */
  int src_fd;
  int dst_fd;
  int keeper_fd;   /* extra reader kept on an output FIFO */
  bool dst_sync;   /* destination cannot be polled (regular file): write it directly */
  bool dst_shared; /* dst_fd is io->shared_fd */
  bool drain_only; /* the console is shut down: finish once the source has nothing more */
  bool src_poll_init, dst_poll_init;
  uv_poll_t src_poll;
  uv_poll_t dst_poll;
  char *buf;
  size_t len, off;
};

struct task_io_s
{
  uv_loop_t *loop;
  const cshim_logger_t *log;
  struct copier copy[3];
  int runtime_fd[3];
  int stdin_keeper; /* extra writer on the stdin FIFO: the copy sees no EOF while it is open */
  int shared_fd;    /* stdout and stderr share one file */
  int shared_refs;
  int outputs_pending;
  uint64_t moved; /* bytes read from the process's outputs, for task_io_wait's progress check */
  uint64_t moved_seen; /* `moved` when the wait timer last fired */
  unsigned extensions; /* periods added to task_io_wait's bound because output was still moving */
  uv_timer_t timer;
  task_io_done_cb wait_cb;
  void *wait_data;
  bool closing;
  int pending_closes;
  /* terminal: the runtime sends the pty master on the console socket; stdin is copied into it
     and its output into stdout's destination (stderr is unused) */
  bool terminal;
  task_console_t *console;
  int master_fd; /* kept for resizes; -1 until the console is attached, or once it is shut down */
  bool have_size;
  struct winsize size; /* asked for before the console arrived */
  bool stdin_closed;   /* task_io_close_stdin ran */
  task_io_ready_cb console_cb;
  void *console_data;
  /* logging binary: it reads the output pipes; torn down by task_io_wait and task_io_close */
  task_logger_t *logger;
  task_io_ready_cb ready_cb;
  void *ready_data;
};

static void
close_fd(int *fd)
{
  if (*fd >= 0)
    close(*fd);
  *fd = -1;
}

int
task_io_kind(const char *stdin_, const char *stdout_, const char *stderr_, task_io_kind_t *kind,
             cshim_error_t *err)
{
  const char *sep;
  size_t n;

  if ((stdin_ == NULL || *stdin_ == '\0') && (stdout_ == NULL || *stdout_ == '\0') &&
      (stderr_ == NULL || *stderr_ == '\0')) {
    *kind = TASK_IO_NULL;
    return 0;
  }
  *kind = TASK_IO_FIFO;
  if (stdout_ == NULL || (sep = strstr(stdout_, "://")) == NULL)
    return 0;
  n = (size_t)(sep - stdout_);
  if (n == 4 && strncmp(stdout_, "fifo", 4) == 0)
    return 0;
  if (n == 4 && strncmp(stdout_, "file", 4) == 0)
    *kind = TASK_IO_FILE;
  else if ((n == 6 && strncmp(stdout_, "binary", 6) == 0) ||
           (n == 9 && strncmp(stdout_, "binary-v2", 9) == 0))
    *kind = TASK_IO_BINARY;
  else
    return cshim_error_make(err, EINVAL, "unknown STDIO scheme `%.*s`", (int)n, stdout_);
  return 0;
}

/* The path of a file:// URL (authority skipped, %XX decoded, query/fragment dropped). */
static int
file_url_path(const char *url, char **out, cshim_error_t *err)
{
  const char *p = url + strlen("file://");
  const char *end;

  if (*p != '/') {
    p = strchr(p, '/'); /* file://host/path: the host is ignored, as Go's u.Path does */
    if (p == NULL)
      return cshim_error_make(err, EINVAL, "`%s`: no path", url);
  }
  end = p + strcspn(p, "?#");
  *out = task_uri_unescape(p, end, false);
  if (*out == NULL)
    return cshim_error_make(err, EINVAL, "`%s`: bad escape", url);
  return 0;
}

static int
mkdir_parents(const char *path, cshim_error_t *err)
{
  cshim_autofree char *dir = cshim_xstrdup(path);
  char *slash = strrchr(dir, '/');
  if (slash == NULL || slash == dir)
    return 0;
  *slash = '\0';
  for (char *p = dir + 1; *p; p++) {
    if (*p != '/')
      continue;
    *p = '\0';
    if (mkdir(dir, 0755) < 0 && errno != EEXIST)
      return cshim_error_sys(err, errno, "mkdir `%s`", dir);
    *p = '/';
  }
  if (mkdir(dir, 0755) < 0 && errno != EEXIST)
    return cshim_error_sys(err, errno, "mkdir `%s`", dir);
  return 0;
}

static bool
fd_pollable(int fd)
{
  struct stat st;
  if (fstat(fd, &st) < 0)
    return false;
  return S_ISFIFO(st.st_mode) || S_ISSOCK(st.st_mode);
}

static int
set_nonblock(int fd, cshim_error_t *err)
{
  int fl = fcntl(fd, F_GETFL);
  if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
    return cshim_error_sys(err, errno, "set O_NONBLOCK");
  return 0;
}

/* A pipe for the runtime: container_end is handed to the runtime (blocking, owned by uid/gid),
   shim_end is ours (non-blocking). */
static int
make_pipe(bool container_reads, uid_t uid, gid_t gid, int *container_end, int *shim_end,
          cshim_error_t *err)
{
  int p[2];
  if (pipe2(p, O_CLOEXEC) < 0)
    return cshim_error_sys(err, errno, "pipe");
  if ((uid || gid) && (fchown(p[0], uid, gid) < 0 || fchown(p[1], uid, gid) < 0)) {
    int e = errno;
    close(p[0]);
    close(p[1]);
    return cshim_error_sys(err, e, "chown stdio pipe to %u:%u", (unsigned)uid, (unsigned)gid);
  }
  *container_end = container_reads ? p[0] : p[1];
  *shim_end = container_reads ? p[1] : p[0];
  if (set_nonblock(*shim_end, err) < 0) {
    close(p[0]);
    close(p[1]);
    return -EIO;
  }
  return 0;
}

/* Open the client's side of stdout/stderr as its destination. */
static int
open_output(task_io_t *io, struct copier *c, const char *path, const char *shared_with,
            cshim_error_t *err)
{
  struct stat st;

  if (shared_with && strcmp(path, shared_with) == 0 && io->shared_fd >= 0) {
    c->dst_fd = io->shared_fd;
    c->dst_shared = true;
    c->dst_sync = true;
    io->shared_refs++;
    return 0;
  }
  if (stat(path, &st) < 0)
    return cshim_error_sys(err, errno, "stat `%s`", path);
  if (S_ISFIFO(st.st_mode)) {
    /* Our own reader first: then opening for writing cannot block or fail with ENXIO, and
       writes keep working while no client reads. */
    c->keeper_fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (c->keeper_fd < 0)
      return cshim_error_sys(err, errno, "open `%s` for reading", path);
    c->dst_fd = open(path, O_WRONLY | O_NONBLOCK | O_CLOEXEC);
    if (c->dst_fd < 0)
      return cshim_error_sys(err, errno, "open `%s` for writing", path);
    return 0;
  }
  c->dst_fd = open(path, O_WRONLY | O_APPEND | O_CLOEXEC);
  if (c->dst_fd < 0)
    return cshim_error_sys(err, errno, "open `%s`", path);
  c->dst_sync = !fd_pollable(c->dst_fd);
  if (c->dst_sync && io->shared_fd < 0) {
    /* A regular file named by both stdout and stderr is written through one descriptor. */
    io->shared_fd = c->dst_fd;
    io->shared_refs = 1;
    c->dst_shared = true;
  }
  return 0;
}

static int
setup_stdin(task_io_t *io, const char *path, uid_t uid, gid_t gid, cshim_error_t *err)
{
  struct copier *c = &io->copy[STDIN];
  struct stat st;

  if (stat(path, &st) < 0)
    return cshim_error_sys(err, errno, "stat `%s`", path);
  if (!S_ISFIFO(st.st_mode)) {
    /* Not a FIFO (a regular file): nothing to wait for, the runtime reads it directly. */
    io->runtime_fd[STDIN] = open(path, O_RDONLY | O_CLOEXEC);
    if (io->runtime_fd[STDIN] < 0)
      return cshim_error_sys(err, errno, "open `%s`", path);
    return 0;
  }
  c->src_fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  if (c->src_fd < 0)
    return cshim_error_sys(err, errno, "open `%s` for reading", path);
  if (!io->stdin_closed) {
    io->stdin_keeper = open(path, O_WRONLY | O_NONBLOCK | O_CLOEXEC);
    if (io->stdin_keeper < 0)
      return cshim_error_sys(err, errno, "open `%s` for writing", path);
  }
  if (make_pipe(true, uid, gid, &io->runtime_fd[STDIN], &c->dst_fd, err) < 0)
    return cshim_error_wrap(err, "stdin");
  c->used = true;
  return 0;
}

static void
io_handle_close_cb(uv_handle_t *h)
{
  task_io_t *io = h->data;
  if (--io->pending_closes == 0 && io->closing) {
    for (int i = 0; i < 3; i++)
      free(io->copy[i].buf);
    free(io);
  }
}

static void
close_handle(task_io_t *io, uv_handle_t *h)
{
  if (uv_is_closing(h))
    return;
  h->data = io;
  io->pending_closes++;
  uv_close(h, io_handle_close_cb);
}

static void fire_wait(task_io_t *io);

static void
logger_stopped_cb(void *data, cshim_error_t *err)
{
  task_io_t *io = data;
  io->logger = NULL;
  fire_wait(io);
}

static void
fire_wait(task_io_t *io)
{
  task_io_done_cb cb = io->wait_cb;
  void *data = io->wait_data;
  if (cb == NULL)
    return;
  uv_timer_stop(&io->timer);
  /* The output has reached the helper: let it flush and exit before the process is gone. */
  if (io->logger) {
    task_logger_stop(io->logger, TASK_LOGGER_GRACE_MS, logger_stopped_cb, io);
    return;
  }
  io->wait_cb = NULL;
  io->wait_data = NULL;
  cb(data);
}

/* Release a copy's descriptors. Poll handles are closed before their fds: libuv removes the fd
   from epoll when the handle closes, which must not hit a reused descriptor number. */
static void
copier_release(struct copier *c)
{
  task_io_t *io = c->io;
  if (c->src_poll_init)
    close_handle(io, (uv_handle_t *)&c->src_poll);
  if (c->dst_poll_init)
    close_handle(io, (uv_handle_t *)&c->dst_poll);
  c->src_poll_init = c->dst_poll_init = false;
  close_fd(&c->src_fd);
  if (c->dst_shared) {
    c->dst_shared = false;
    c->dst_fd = -1;
    if (--io->shared_refs == 0)
      close_fd(&io->shared_fd);
  } else
    close_fd(&c->dst_fd);
  close_fd(&c->keeper_fd);
}

static void shutdown_console(task_io_t *io);

static void
copier_finish(struct copier *c)
{
  task_io_t *io = c->io;
  if (c->finished)
    return;
  c->finished = true;
  copier_release(c);
  /* Like the runc shim: the end of a terminal's input shuts its console down (the process sees
     a hangup once the output still buffered has been copied). */
  if (c->index == STDIN && io->terminal && c->used && !io->closing)
    shutdown_console(io);
  if (c->index != STDIN && c->used && --io->outputs_pending == 0)
    fire_wait(io);
}

/* Write out the buffer. true = empty now; false = destination full (EAGAIN). */
static bool
copier_flush(struct copier *c)
{
  while (c->off < c->len) {
    ssize_t n;
    if (c->discard)
      break;
    n = write(c->dst_fd, c->buf + c->off, c->len - c->off);
    if (n > 0) {
      c->off += (size_t)n;
      continue;
    }
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0 && errno == EAGAIN && !c->dst_sync)
      return false;
    cshim_log_debug(c->io->log, "stdio copy %d: write: %s; dropping further output", c->index,
                    n < 0 ? strerror(errno) : "no progress");
    c->discard = true;
  }
  c->off = c->len = 0;
  return true;
}

static void src_cb(uv_poll_t *h, int status, int events);
static void copier_read(struct copier *c);

static void
dst_cb(uv_poll_t *h, int status, int events)
{
  struct copier *c = CSHIM_CONTAINER_OF(h, struct copier, dst_poll);
  if (status < 0)
    c->discard = true;
  if (!copier_flush(c))
    return;
  uv_poll_stop(&c->dst_poll);
  if (c->drain_only) {
    copier_read(c);
    return;
  }
  uv_poll_start(&c->src_poll, UV_READABLE | UV_DISCONNECT, src_cb);
}

/* Read one buffer and pass it on; on a full destination, wait for it instead of the source. */
static void
copier_read(struct copier *c)
{
  for (;;) {
    ssize_t n;
    do
      n = read(c->src_fd, c->buf, TASK_IO_BUFFER_SIZE);
    while (n < 0 && errno == EINTR);
    if (n < 0 && errno == EAGAIN && !c->drain_only)
      return;
    /* EIO: a terminal whose other side has closed */
    if (n <= 0) {
      copier_finish(c);
      return;
    }
    c->len = (size_t)n;
    c->off = 0;
    c->io->moved += (uint64_t)n;
    if (!copier_flush(c)) {
      uv_poll_stop(&c->src_poll);
      uv_poll_start(&c->dst_poll, UV_WRITABLE, dst_cb);
      return;
    }
    if (!c->drain_only)
      return;
  }
}

static void
src_cb(uv_poll_t *h, int status, int events)
{
  struct copier *c = CSHIM_CONTAINER_OF(h, struct copier, src_poll);
  if (status < 0) {
    copier_finish(c);
    return;
  }
  copier_read(c);
}

/* Terminal stdin: the FIFO is read (and kept open for writing) now; the copy into the console
   begins once the console has arrived. */
static int
setup_terminal_stdin(task_io_t *io, const char *path, cshim_error_t *err)
{
  struct copier *c = &io->copy[STDIN];
  struct stat st;

  if (stat(path, &st) < 0)
    return cshim_error_sys(err, errno, "stat `%s`", path);
  if (!S_ISFIFO(st.st_mode))
    return cshim_error_make(err, EINVAL, "terminal stdin `%s` is not a FIFO", path);
  c->src_fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  if (c->src_fd < 0)
    return cshim_error_sys(err, errno, "open `%s` for reading", path);
  if (io->stdin_closed)
    return 0;
  io->stdin_keeper = open(path, O_WRONLY | O_NONBLOCK | O_CLOEXEC);
  if (io->stdin_keeper < 0)
    return cshim_error_sys(err, errno, "open `%s` for writing", path);
  return 0;
}

/* Pipes into a logging binary, and the binary itself. Without a terminal the runtime writes into
   them directly; with one, the console's output is copied into the stdout pipe and the stderr
   pipe stays unused. */
static int
setup_logger(task_io_t *io, const task_io_opts_t *o, cshim_error_t *err)
{
  int out[2] = {-1, -1}, errp[2] = {-1, -1};
  int ret;

  if (o->reaper == NULL)
    return cshim_error_make(err, ENOTSUP, "logging binaries (`%s`) are not supported here",
                            o->stdout_);
  if (pipe2(out, O_CLOEXEC) < 0 || pipe2(errp, O_CLOEXEC) < 0) {
    ret = cshim_error_sys(err, errno, "logging binary pipes");
    goto done;
  }
  ret = task_logger_spawn(io->loop, io->log, o->reaper, o->stdout_, o->id ? o->id : "",
                          o->namespace_ ? o->namespace_ : "", out[0], errp[0], &io->logger, err);
  if (ret < 0)
    goto done;
  if (o->terminal) {
    struct copier *c = &io->copy[STDOUT];
    if (set_nonblock(out[1], err) < 0) {
      ret = -EIO;
      goto done;
    }
    c->dst_fd = cshim_steal_fd(&out[1]);
  } else {
    io->runtime_fd[STDOUT] = cshim_steal_fd(&out[1]);
    io->runtime_fd[STDERR] = cshim_steal_fd(&errp[1]);
  }
done:
  close_fd(&out[0]);
  close_fd(&out[1]);
  close_fd(&errp[0]);
  close_fd(&errp[1]);
  return ret;
}

int
task_io_open(uv_loop_t *loop, const cshim_logger_t *log, const task_io_opts_t *o, task_io_t **out,
             cshim_error_t *err)
{
  const char *stdin_ = o->stdin_, *stdout_ = o->stdout_, *stderr_ = o->stderr_;
  uid_t uid = o->uid;
  gid_t gid = o->gid;
  task_io_t *io;
  task_io_kind_t kind;
  cshim_autofree char *file = NULL;
  const char *out_path[3] = {NULL, NULL, NULL};
  int ret;

  *out = NULL;
  if (task_io_kind(stdin_, stdout_, stderr_, &kind, err) < 0)
    return cshim_error_wrap(err, "stdio");
  if (kind == TASK_IO_NULL && !o->terminal)
    return 0;

  io = cshim_xmalloc0(sizeof *io);
  io->loop = loop;
  io->log = log;
  io->stdin_keeper = -1;
  io->shared_fd = -1;
  io->master_fd = -1;
  io->terminal = o->terminal;
  io->stdin_closed = o->stdin_closed;
  for (int i = 0; i < 3; i++) {
    struct copier *c = &io->copy[i];
    c->io = io;
    c->index = i;
    c->src_fd = c->dst_fd = c->keeper_fd = -1;
    io->runtime_fd[i] = -1;
  }
  uv_timer_init(loop, &io->timer);

  if (kind == TASK_IO_BINARY) {
    ret = setup_logger(io, o, err);
    if (ret < 0)
      goto fail;
  } else if (kind == TASK_IO_FILE) {
    cshim_autoclose int fd = -1;
    ret = file_url_path(stdout_, &file, err);
    if (ret < 0)
      goto fail;
    ret = mkdir_parents(file, err);
    if (ret < 0)
      goto fail;
    fd = open(file, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) {
      ret = cshim_error_sys(err, errno, "open `%s`", file);
      goto fail;
    }
    io->shared_fd = cshim_steal_fd(&fd);
    io->shared_refs = 1; /* dropped below once the outputs hold their own references */
  } else {
    out_path[STDOUT] = stdout_;
    out_path[STDERR] = stderr_;
  }

  if (o->terminal) {
    struct copier *c = &io->copy[STDOUT];
    ret = task_console_new(loop, log, &io->console, err);
    if (ret < 0)
      goto fail;
    if (stdin_ && *stdin_) {
      ret = setup_terminal_stdin(io, stdin_, err);
      if (ret < 0)
        goto fail;
    }
    if (kind == TASK_IO_FILE) {
      c->dst_fd = io->shared_fd;
      c->dst_shared = true;
      c->dst_sync = true;
      io->shared_refs++;
    } else if (kind == TASK_IO_FIFO && stdout_ && *stdout_) {
      ret = open_output(io, c, stdout_, NULL, err);
      if (ret < 0)
        goto fail;
    }
    goto opened;
  }

  if (stdin_ && *stdin_) {
    ret = setup_stdin(io, stdin_, uid, gid, err);
    if (ret < 0)
      goto fail;
  }
  for (int i = STDOUT; i <= STDERR && kind != TASK_IO_BINARY; i++) {
    struct copier *c = &io->copy[i];
    const char *s = i == STDOUT ? stdout_ : stderr_;
    if (s == NULL || *s == '\0')
      continue;
    ret = make_pipe(false, uid, gid, &io->runtime_fd[i], &c->src_fd, err);
    if (ret < 0)
      goto fail;
    c->used = true;
    io->outputs_pending++;
    if (kind == TASK_IO_FILE) {
      c->dst_fd = io->shared_fd;
      c->dst_shared = true;
      c->dst_sync = true;
      io->shared_refs++;
    } else {
      ret = open_output(io, c, out_path[i], i == STDERR ? out_path[STDOUT] : NULL, err);
      if (ret < 0)
        goto fail;
    }
  }
opened:
  if (kind == TASK_IO_FILE && --io->shared_refs == 0)
    close_fd(&io->shared_fd);

  *out = io;
  return 0;

fail:
  cshim_error_wrap(err, "stdio");
  task_io_close(io);
  return ret < 0 ? ret : -EIO;
}

int
task_io_new(uv_loop_t *loop, const cshim_logger_t *log, const char *stdin_, const char *stdout_,
            const char *stderr_, uid_t uid, gid_t gid, task_io_t **out, cshim_error_t *err)
{
  task_io_opts_t o = {0};
  o.stdin_ = stdin_;
  o.stdout_ = stdout_;
  o.stderr_ = stderr_;
  o.uid = uid;
  o.gid = gid;
  return task_io_open(loop, log, &o, out, err);
}

void
task_io_runtime_fds(const task_io_t *io, cshim_runtime_io_t *out)
{
  out->stdin_fd = io ? io->runtime_fd[STDIN] : -1;
  out->stdout_fd = io ? io->runtime_fd[STDOUT] : -1;
  out->stderr_fd = io ? io->runtime_fd[STDERR] : -1;
}

void
task_io_close_runtime_side(task_io_t *io)
{
  if (io == NULL)
    return;
  for (int i = 0; i < 3; i++)
    close_fd(&io->runtime_fd[i]);
}

int
task_io_start(task_io_t *io, cshim_error_t *err)
{
  if (io == NULL)
    return 0;
  for (int i = 0; i < 3; i++) {
    struct copier *c = &io->copy[i];
    int r;
    if (!c->used || c->started || c->finished)
      continue;
    c->started = true;
    c->buf = cshim_xmalloc(TASK_IO_BUFFER_SIZE);
    r = uv_poll_init(io->loop, &c->src_poll, c->src_fd);
    if (r < 0)
      return cshim_error_from_uv(err, r, "stdio copy %d: poll source", i);
    c->src_poll_init = true;
    if (!c->dst_sync) {
      r = uv_poll_init(io->loop, &c->dst_poll, c->dst_fd);
      if (r < 0)
        return cshim_error_from_uv(err, r, "stdio copy %d: poll destination", i);
      c->dst_poll_init = true;
    }
    r = uv_poll_start(&c->src_poll, UV_READABLE | UV_DISCONNECT, src_cb);
    if (r < 0)
      return cshim_error_from_uv(err, r, "stdio copy %d: start", i);
  }
  return 0;
}

static void
wait_timer_cb(uv_timer_t *t)
{
  task_io_t *io = CSHIM_CONTAINER_OF(t, task_io_t, timer);
  /* The bound is on a stalled copy, not on a long one: a loaded machine may need more than one
     period to move a large output that is still flowing. */
  if (io->outputs_pending > 0 && io->moved != io->moved_seen &&
      io->extensions < TASK_IO_DRAIN_MAX_EXTENSIONS) {
    io->moved_seen = io->moved;
    io->extensions++;
    uv_timer_again(t);
    return;
  }
  if (io->outputs_pending > 0)
    cshim_log_warn(io->log, "stdio copy did not finish in time; closing it");
  fire_wait(io);
}

void
task_io_wait(task_io_t *io, uint64_t timeout_ms, task_io_done_cb cb, void *data)
{
  io->wait_cb = cb;
  io->wait_data = data;
  io->moved_seen = io->moved;
  io->extensions = 0;
  uv_timer_start(&io->timer, wait_timer_cb, io->outputs_pending > 0 ? timeout_ms : 0,
                 io->outputs_pending > 0 ? timeout_ms : 0);
}

void
task_io_close_stdin(task_io_t *io)
{
  if (io == NULL)
    return;
  io->stdin_closed = true;
  close_fd(&io->stdin_keeper);
  /* A copy that never started has nobody to notice the EOF: close the container's stdin now.
     A terminal's copy starts with the console; the FIFO's EOF is noticed then. */
  if (io->copy[STDIN].used && !io->copy[STDIN].started && !io->terminal)
    copier_finish(&io->copy[STDIN]);
}

void
task_io_close(task_io_t *io)
{
  if (io == NULL || io->closing)
    return;
  io->closing = true;
  io->wait_cb = NULL;
  io->ready_cb = NULL;
  io->console_cb = NULL;
  for (int i = 0; i < 3; i++) {
    struct copier *c = &io->copy[i];
    c->finished = true;
    copier_release(c);
    close_fd(&io->runtime_fd[i]);
  }
  close_fd(&io->stdin_keeper);
  close_fd(&io->shared_fd);
  close_fd(&io->master_fd);
  task_console_close(io->console);
  io->console = NULL;
  /* Its pipes are closed above: a helper that exits at EOF needs no signal, others get one. */
  if (io->logger)
    task_logger_stop(io->logger, TASK_LOGGER_GRACE_MS, NULL, NULL);
  io->logger = NULL;
  close_handle(io, (uv_handle_t *)&io->timer);
}

/* ---- logging binary readiness ---- */

static void
logger_ready_cb(void *data, cshim_error_t *err)
{
  task_io_t *io = data;
  task_io_ready_cb cb = io->ready_cb;
  io->ready_cb = NULL;
  if (cb)
    cb(io->ready_data, err);
}

int
task_io_ready(task_io_t *io, uint64_t timeout_ms, task_io_ready_cb cb, void *data,
              cshim_error_t *err)
{
  int ret;
  if (io == NULL || io->logger == NULL)
    return 0;
  io->ready_cb = cb;
  io->ready_data = data;
  ret = task_logger_wait_ready(io->logger, timeout_ms, logger_ready_cb, io, err);
  if (ret < 0) {
    io->ready_cb = NULL;
    return ret;
  }
  return 1;
}

/* ---- terminal ---- */

const char *
task_io_console_socket(const task_io_t *io)
{
  return io ? task_console_path(io->console) : NULL;
}

static int
dup_cloexec(int fd, cshim_error_t *err)
{
  int r = fcntl(fd, F_DUPFD_CLOEXEC, 3);
  if (r < 0)
    return cshim_error_sys(err, errno, "console: dup");
  return r;
}

/* The console is here: copy stdin into it and its output out. Takes master. */
static int
attach_console(task_io_t *io, int master, cshim_error_t *err)
{
  struct copier *in = &io->copy[STDIN], *out = &io->copy[STDOUT];
  int fd;

  io->master_fd = master;
  if (set_nonblock(master, err) < 0)
    return -EIO;
  if (io->have_size && ioctl(master, TIOCSWINSZ, &io->size) < 0)
    cshim_log_warn(io->log, "console: set the window size: %s", strerror(errno));
  /* Each copy polls its own descriptor: one fd can be in the loop's epoll set only once. */
  fd = dup_cloexec(master, err);
  if (fd < 0)
    return fd;
  out->src_fd = fd;
  out->used = true;
  io->outputs_pending++;
  if (out->dst_fd < 0) {
    /* Nobody reads the output: drain the terminal anyway so that the process never blocks. */
    out->discard = true;
    out->dst_sync = true;
  }
  if (in->src_fd >= 0) {
    fd = dup_cloexec(master, err);
    if (fd < 0)
      return fd;
    in->dst_fd = fd;
    in->used = true;
  }
  return task_io_start(io, err);
}

static void
console_cb(void *data, int master, cshim_error_t *err)
{
  task_io_t *io = data;
  task_io_ready_cb cb = io->console_cb;
  void *cb_data = io->console_data;

  io->console_cb = NULL;
  task_console_close(io->console);
  io->console = NULL;
  if (*err == NULL && attach_console(io, master, err) < 0)
    cshim_error_wrap(err, "terminal");
  if (cb)
    cb(cb_data, err);
}

int
task_io_await_console(task_io_t *io, uint64_t timeout_ms, task_io_ready_cb cb, void *data)
{
  if (io == NULL || io->console == NULL)
    return 0;
  io->console_cb = cb;
  io->console_data = data;
  task_console_receive(io->console, timeout_ms, console_cb, io);
  return 1;
}

/* The input has ended: stop feeding the terminal and let the output run dry. */
static void
shutdown_console(task_io_t *io)
{
  struct copier *out = &io->copy[STDOUT];
  close_fd(&io->master_fd);
  if (!out->used || out->finished)
    return;
  out->drain_only = true;
  /* Waiting on a full destination: dst_cb goes on draining once it can write. */
  if (out->len > out->off)
    return;
  copier_read(out);
}

int
task_io_resize(task_io_t *io, uint32_t width, uint32_t height, cshim_error_t *err)
{
  if (io == NULL || !io->terminal)
    return 0;
  io->size.ws_col = (unsigned short)width;
  io->size.ws_row = (unsigned short)height;
  io->have_size = true;
  if (io->master_fd < 0)
    return 0; /* applied when the console arrives */
  if (ioctl(io->master_fd, TIOCSWINSZ, &io->size) < 0)
    return cshim_error_sys(err, errno, "resize the terminal");
  return 0;
}
