// SPDX-License-Identifier: Apache-2.0
// A process's stdio: pipes for the runtime, a terminal's console, a logging binary, and copies
// between them and the client's FIFOs or files on the loop, without ever blocking it.
#define _GNU_SOURCE
#include "io.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#include <cshim/util.h>

#include "console.h"
#include "logger.h"

/* task_io_wait gives up on a destination whose reader holds it open but has taken nothing for
   this many periods in a row while output waits for it (60 s with Delete's 5 s period). */
#define TASK_IO_DRAIN_STUCK_PERIODS 12u

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
  /* Pipe to pipe: splice(2) moves the bytes in the kernel. Otherwise, to a pipe, never read more
     than it has room for. Either way no byte waits in buf for a full destination, so a crash
     (docs/live-upgrade.md) cannot lose one. */
  bool splice;
  bool dst_pipe;
  /* FIFO into a terminal (a pty master takes no splice): tee(2) the input into a scratch pipe,
     write that copy, then consume from the FIFO exactly what was written. What the terminal
     does not take stays in the FIFO, never only in buf. */
  bool tee;
  bool scratch_open;
  int scratch[2];
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
  uint64_t moved;      /* bytes read or written for the outputs: task_io_wait's progress */
  uint64_t moved_seen; /* `moved` when the wait timer last fired */
  unsigned stalled;    /* task_io_wait's periods in a row without progress while output waits */
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
      cshim_xunmap(io->copy[i].buf, TASK_IO_BUFFER_SIZE);
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
  if (c->scratch_open) {
    close(c->scratch[0]);
    close(c->scratch[1]);
    c->scratch_open = false;
  }
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
    n = CSHIM_RETRY_EINTR(write(c->dst_fd, c->buf + c->off, c->len - c->off));
    if (n > 0) {
      c->off += (size_t)n;
      c->io->moved += (uint64_t)n;
      continue;
    }
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
static void dst_cb(uv_poll_t *h, int status, int events);

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

/* Bytes waiting in a pipe (FIONREAD); 0 when unknown. */
static int
pipe_pending(int fd)
{
  int n = 0;
  if (ioctl(fd, FIONREAD, &n) < 0)
    return 0;
  return n;
}

/* Room left in the pipe fd (its size less what waits in it). */
static size_t
pipe_room(int fd)
{
  int size = fcntl(fd, F_GETPIPE_SZ);
  int used = pipe_pending(fd);
  if (size <= 0 || used >= size)
    return size <= 0 ? TASK_IO_BUFFER_SIZE : 0;
  return (size_t)(size - used);
}

static void
wait_for_destination(struct copier *c)
{
  uv_poll_stop(&c->src_poll);
  uv_poll_start(&c->dst_poll, UV_WRITABLE, dst_cb);
}

/* Which way to copy: splice between two pipes, read and write otherwise. */
static void
copier_kinds(struct copier *c)
{
  struct stat src, dst;
  c->dst_pipe = !c->dst_sync && fstat(c->dst_fd, &dst) == 0 && S_ISFIFO(dst.st_mode);
  c->splice = c->dst_pipe && fstat(c->src_fd, &src) == 0 && S_ISFIFO(src.st_mode);
  c->tee = !c->dst_sync && !c->dst_pipe && fstat(c->src_fd, &src) == 0 && S_ISFIFO(src.st_mode) &&
           fstat(c->dst_fd, &dst) == 0 && S_ISCHR(dst.st_mode);
}

/* Consume exactly n bytes of the source (they have been written out). */
static void
consume(struct copier *c, size_t n)
{
  while (n > 0) {
    ssize_t r = read(c->src_fd, c->buf, n < TASK_IO_BUFFER_SIZE ? n : TASK_IO_BUFFER_SIZE);
    if (r < 0 && errno == EINTR)
      continue;
    if (r <= 0)
      return; /* cannot happen: the bytes were there when tee saw them, and only we read */
    n -= (size_t)r;
  }
}

/* tee one buffer's worth into the terminal: 1 moved (or fell back: go on), 0 wait, -1 done. */
static int
copier_tee(struct copier *c)
{
  ssize_t n, m = 0, w;

  if (!c->scratch_open) {
    if (pipe2(c->scratch, O_NONBLOCK | O_CLOEXEC) < 0) {
      c->tee = false;
      return 1;
    }
    c->scratch_open = true;
  }
  do
    n = tee(c->src_fd, c->scratch[1], TASK_IO_BUFFER_SIZE, SPLICE_F_NONBLOCK);
  while (n < 0 && errno == EINTR);
  if (n == 0)
    return -1; /* empty and no writer left */
  if (n < 0 && errno == EAGAIN)
    return c->drain_only ? -1 : 0;
  if (n < 0) {
    c->tee = false; /* not a pair tee takes: read and write */
    return 1;
  }
  while (m < n) {
    ssize_t r = read(c->scratch[0], c->buf + m, (size_t)(n - m));
    if (r < 0 && errno == EINTR)
      continue;
    if (r <= 0)
      break;
    m += r;
  }
  do
    w = write(c->dst_fd, c->buf, (size_t)m);
  while (w < 0 && errno == EINTR);
  if (w < 0 && errno != EAGAIN) {
    cshim_log_debug(c->io->log, "stdio copy %d: write: %s; dropping further input", c->index,
                    strerror(errno));
    c->discard = true;
    w = m;
  }
  if (w < 0)
    w = 0;
  consume(c, (size_t)w);
  c->io->moved += (uint64_t)w;
  c->off = c->len = 0;
  if (w < m) {
    /* the rest stays in the FIFO until the terminal has room */
    char drop[256];
    while (read(c->scratch[0], drop, sizeof drop) > 0)
      ;
    wait_for_destination(c);
    return 0;
  }
  return 1;
}

/* splice one buffer's worth: 1 moved (or a fallback was chosen: go on), 0 wait, -1 done. */
static int
copier_splice(struct copier *c)
{
  ssize_t n;

  n = CSHIM_RETRY_EINTR(
      splice(c->src_fd, NULL, c->dst_fd, NULL, TASK_IO_BUFFER_SIZE, SPLICE_F_NONBLOCK));
  if (n > 0) {
    c->io->moved += (uint64_t)n;
    return 1;
  }
  if (n == 0)
    return -1; /* no writer left */
  if (errno == EAGAIN) {
    if (pipe_pending(c->src_fd) > 0) {
      wait_for_destination(c); /* the destination is full */
      return 0;
    }
    return c->drain_only ? -1 : 0;
  }
  if (errno == EPIPE) {
    cshim_log_debug(c->io->log, "stdio copy %d: write: %s; dropping further output", c->index,
                    strerror(errno));
    c->discard = true;
  }
  /* EPIPE (drain and drop), or a pair splice refuses: go on with read and write */
  c->splice = false;
  return 1;
}

/* Move one buffer and pass it on; on a full destination, wait for it instead of the source. */
static void
copier_read(struct copier *c)
{
  for (;;) {
    size_t want = TASK_IO_BUFFER_SIZE;
    ssize_t n;
    if (c->splice && !c->discard) {
      int r = copier_splice(c);
      if (r < 0) {
        copier_finish(c);
        return;
      }
      if (r == 0 || (!c->drain_only && c->splice))
        return;
      continue;
    }
    if (c->tee && !c->discard) {
      int r = copier_tee(c);
      if (r < 0) {
        copier_finish(c);
        return;
      }
      if (r == 0 || (!c->drain_only && c->tee))
        return;
      continue;
    }
    if (c->dst_pipe && !c->discard) {
      want = pipe_room(c->dst_fd);
      if (want == 0) {
        wait_for_destination(c);
        return;
      }
      if (want > TASK_IO_BUFFER_SIZE)
        want = TASK_IO_BUFFER_SIZE;
    }
    n = CSHIM_RETRY_EINTR(read(c->src_fd, c->buf, want));
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
      wait_for_destination(c);
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

/* A new io with nothing open yet. */
static task_io_t *
io_alloc(uv_loop_t *loop, const cshim_logger_t *log, const task_io_opts_t *o)
{
  task_io_t *io = cshim_xmalloc0(sizeof *io);
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
  return io;
}

/* file://PATH: the one file both outputs append to (its parent directories made as needed). */
static int
open_shared_file(task_io_t *io, const char *url, cshim_error_t *err)
{
  cshim_autofree char *file = NULL;
  cshim_autoclose int fd = -1;
  int ret;

  ret = file_url_path(url, &file, err);
  if (ret < 0)
    return ret;
  ret = mkdir_parents(file, err);
  if (ret < 0)
    return ret;
  fd = open(file, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0)
    return cshim_error_sys(err, errno, "open `%s`", file);
  io->shared_fd = cshim_steal_fd(&fd);
  io->shared_refs = 1; /* dropped by task_io_open once the outputs hold their own references */
  return 0;
}

/* c writes into the shared file (file://), synchronously, holding a reference to it. */
static void
share_file(task_io_t *io, struct copier *c)
{
  c->dst_fd = io->shared_fd;
  c->dst_shared = true;
  c->dst_sync = true;
  io->shared_refs++;
}

/* With a terminal: the console socket, stdin into the terminal, its output to stdout. */
static int
open_terminal(task_io_t *io, const task_io_opts_t *o, task_io_kind_t kind, cshim_error_t *err)
{
  struct copier *c = &io->copy[STDOUT];
  int ret;

  ret = task_console_new(io->loop, io->log, &io->console, err);
  if (ret < 0)
    return ret;
  if (o->stdin_ && *o->stdin_) {
    ret = setup_terminal_stdin(io, o->stdin_, err);
    if (ret < 0)
      return ret;
  }
  if (kind == TASK_IO_FILE)
    share_file(io, c);
  else if (kind == TASK_IO_FIFO && o->stdout_ && *o->stdout_)
    return open_output(io, c, o->stdout_, NULL, err);
  return 0;
}

/* Without a terminal: a pipe for each stream the client asked for, and its copy (a logging
   binary's outputs are set up by setup_logger). */
static int
open_pipes(task_io_t *io, const task_io_opts_t *o, task_io_kind_t kind, cshim_error_t *err)
{
  int ret;

  if (o->stdin_ && *o->stdin_) {
    ret = setup_stdin(io, o->stdin_, o->uid, o->gid, err);
    if (ret < 0)
      return ret;
  }
  for (int i = STDOUT; i <= STDERR && kind != TASK_IO_BINARY; i++) {
    struct copier *c = &io->copy[i];
    const char *s = i == STDOUT ? o->stdout_ : o->stderr_;
    if (s == NULL || *s == '\0')
      continue;
    ret = make_pipe(false, o->uid, o->gid, &io->runtime_fd[i], &c->src_fd, err);
    if (ret < 0)
      return ret;
    c->used = true;
    io->outputs_pending++;
    if (kind == TASK_IO_FILE)
      share_file(io, c);
    else {
      ret = open_output(io, c, s, i == STDERR ? o->stdout_ : NULL, err);
      if (ret < 0)
        return ret;
    }
  }
  return 0;
}

int
task_io_open(uv_loop_t *loop, const cshim_logger_t *log, const task_io_opts_t *o, task_io_t **out,
             cshim_error_t *err)
{
  task_io_kind_t kind;
  task_io_t *io;
  int ret = 0;

  *out = NULL;
  if (task_io_kind(o->stdin_, o->stdout_, o->stderr_, &kind, err) < 0)
    return cshim_error_wrap(err, "stdio");
  if (kind == TASK_IO_NULL && !o->terminal)
    return 0;

  io = io_alloc(loop, log, o);
  if (kind == TASK_IO_BINARY)
    ret = setup_logger(io, o, err);
  else if (kind == TASK_IO_FILE)
    ret = open_shared_file(io, o->stdout_, err);
  if (ret == 0)
    ret = o->terminal ? open_terminal(io, o, kind, err) : open_pipes(io, o, kind, err);
  if (ret < 0) {
    cshim_error_wrap(err, "stdio");
    task_io_close(io);
    return ret;
  }
  if (kind == TASK_IO_FILE && --io->shared_refs == 0)
    close_fd(&io->shared_fd);
  *out = io;
  return 0;
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
    /* Own pages: a quiet container's copy costs nothing resident. */
    c->buf = cshim_xmap(TASK_IO_BUFFER_SIZE);
    copier_kinds(c);
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

/* Output a copy still has to deliver: bytes in its buffer or in its source. */
static bool
output_waiting(const task_io_t *io)
{
  for (int i = STDOUT; i <= STDERR; i++) {
    const struct copier *c = &io->copy[i];
    if (c->used && c->started && !c->finished && (c->off < c->len || pipe_pending(c->src_fd) > 0))
      return true;
  }
  return false;
}

/* Each period: output that moved (read or written) waits another period, however long the copy
   takes (a large output on a loaded machine); output that waits for a reader that holds its FIFO
   open but takes nothing (a paused client) waits too, up to TASK_IO_DRAIN_STUCK_PERIODS in a
   row; a source with nothing in it that is not at EOF (a process that keeps its output open) ends
   the wait after one quiet period. A FIFO nobody reads does not hold it up: task_io_wait closed
   our own reader, so writing to it fails and the rest is dropped. */
static void
wait_timer_cb(uv_timer_t *t)
{
  task_io_t *io = CSHIM_CONTAINER_OF(t, task_io_t, timer);
  bool waiting;

  if (io->outputs_pending == 0) {
    fire_wait(io);
    return;
  }
  if (io->moved != io->moved_seen) {
    io->moved_seen = io->moved;
    io->stalled = 0;
    return;
  }
  waiting = output_waiting(io);
  if (waiting && ++io->stalled < TASK_IO_DRAIN_STUCK_PERIODS)
    return;
  if (waiting)
    cshim_log_warn(io->log, "stdio copy: its reader took nothing for %u periods; closing it",
                   io->stalled);
  else
    cshim_log_warn(io->log, "stdio copy: nothing came and no end of output in a whole period (a "
                            "process still holds it open); closing it");
  fire_wait(io);
}

void
task_io_wait(task_io_t *io, uint64_t timeout_ms, task_io_done_cb cb, void *data)
{
  assert(io->wait_cb == NULL); /* one waiter at a time */
  io->wait_cb = cb;
  io->wait_data = data;
  io->moved_seen = io->moved;
  io->stalled = 0;
  /* Nobody attaches to a process whose stdio is being drained: without our extra reader, an
     output FIFO that nobody else reads fails the copy's writes (EPIPE), so the copy drops the
     rest and ends at once, while a reader that is there still gets every byte. */
  for (int i = STDOUT; i <= STDERR; i++)
    close_fd(&io->copy[i].keeper_fd);
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
  assert(io->ready_cb == NULL); /* one waiter at a time */
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
  assert(io->console_cb == NULL); /* one waiter at a time */
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

/* ---- live upgrade (docs/live-upgrade.md): the copies cross the exec with their descriptors
   and the bytes read but not yet written ---- */

enum
{
  IO_STDIN_KEEPER = 1,
  IO_SHARED_FD = 2,
  IO_SHARED_REFS = 3,
  IO_OUTPUTS_PENDING = 4,
  IO_TERMINAL = 5,
  IO_MASTER_FD = 6,
  IO_WS_COL = 7,
  IO_WS_ROW = 8,
  IO_STDIN_CLOSED = 9,
  IO_RUNTIME_FD = 10, /* list: RT_INDEX, RT_FD */
  IO_COPY = 11,       /* list */
  IO_LOGGER = 12,     /* list: task_logger_save */
  IO_HAVE_SIZE = 13,
  RT_INDEX = 1,
  RT_FD = 2,
  CP_INDEX = 1,
  CP_USED = 2,
  CP_STARTED = 3,
  CP_FINISHED = 4,
  CP_DISCARD = 5,
  CP_SRC_FD = 6,
  CP_DST_FD = 7,
  CP_KEEPER_FD = 8,
  CP_DST_SYNC = 9,
  CP_DST_SHARED = 10,
  CP_DRAIN_ONLY = 11,
  CP_PENDING = 12, /* bytes read and not yet written */
};

const char *
task_io_busy(const task_io_t *io)
{
  if (io == NULL)
    return NULL;
  if (io->closing)
    return "stdio is being closed";
  if (io->wait_cb)
    return "stdio is draining after an exit";
  if (io->ready_cb)
    return "a logging binary is starting";
  if (io->console_cb || io->console)
    return "a terminal is waiting for its console";
  if (io->logger && task_logger_busy(io->logger))
    return "a logging binary is starting or stopping";
  return NULL;
}

size_t
task_io_held(const task_io_t *io)
{
  size_t n = 0;
  for (int i = 0; io && i < 3; i++)
    n += io->copy[i].len - io->copy[i].off;
  return n;
}

const char *
task_io_crash_busy(const task_io_t *io)
{
  if (io && io->wait_cb && !io->closing && !io->ready_cb && !io->console_cb && !io->console &&
      !(io->logger && task_logger_busy(io->logger)))
    return NULL;
  return task_io_busy(io);
}

void
task_io_save(const task_io_t *io, cshim_state_writer_t *w)
{
  cshim_state_put_fd(w, IO_STDIN_KEEPER, io->stdin_keeper);
  cshim_state_put_fd(w, IO_SHARED_FD, io->shared_fd);
  cshim_state_put_u32(w, IO_SHARED_REFS, (uint32_t)io->shared_refs);
  cshim_state_put_u32(w, IO_OUTPUTS_PENDING, (uint32_t)io->outputs_pending);
  cshim_state_put_bool(w, IO_TERMINAL, io->terminal);
  cshim_state_put_fd(w, IO_MASTER_FD, io->master_fd);
  cshim_state_put_bool(w, IO_HAVE_SIZE, io->have_size);
  cshim_state_put_u32(w, IO_WS_COL, io->size.ws_col);
  cshim_state_put_u32(w, IO_WS_ROW, io->size.ws_row);
  cshim_state_put_bool(w, IO_STDIN_CLOSED, io->stdin_closed);
  for (int i = 0; i < 3; i++) {
    if (io->runtime_fd[i] < 0)
      continue;
    cshim_state_begin(w, IO_RUNTIME_FD);
    cshim_state_put_u32(w, RT_INDEX, (uint32_t)i);
    cshim_state_put_fd(w, RT_FD, io->runtime_fd[i]);
    cshim_state_end(w);
  }
  for (int i = 0; i < 3; i++) {
    const struct copier *c = &io->copy[i];
    if (!c->used && c->src_fd < 0 && c->dst_fd < 0 && c->keeper_fd < 0)
      continue;
    cshim_state_begin(w, IO_COPY);
    cshim_state_put_u32(w, CP_INDEX, (uint32_t)i);
    cshim_state_put_bool(w, CP_USED, c->used);
    cshim_state_put_bool(w, CP_STARTED, c->started);
    cshim_state_put_bool(w, CP_FINISHED, c->finished);
    cshim_state_put_bool(w, CP_DISCARD, c->discard);
    cshim_state_put_fd(w, CP_SRC_FD, c->src_fd);
    cshim_state_put_fd(w, CP_DST_FD, c->dst_fd);
    cshim_state_put_fd(w, CP_KEEPER_FD, c->keeper_fd);
    cshim_state_put_bool(w, CP_DST_SYNC, c->dst_sync);
    cshim_state_put_bool(w, CP_DST_SHARED, c->dst_shared);
    cshim_state_put_bool(w, CP_DRAIN_ONLY, c->drain_only);
    /* (a crash snapshot goes stale as soon as the reader drains them: not saved there) */
    if (c->len > c->off && !cshim_state_writer_is_crash(w))
      cshim_state_put_bytes(w, CP_PENDING, c->buf + c->off, c->len - c->off);
    cshim_state_end(w);
  }
  if (io->logger) {
    cshim_state_begin(w, IO_LOGGER);
    task_logger_save(io->logger, w);
    cshim_state_end(w);
  }
}

static int
item_int(const cshim_state_item_t *it, int *out, cshim_error_t *err)
{
  uint32_t v;
  int ret = cshim_state_item_u32(it, &v, err);
  if (ret == 0)
    *out = (int)v;
  return ret;
}

/* One IO_COPY record into *tmp: its index, and its unwritten bytes (pointing into the state). */
static int
read_copier_record(const cshim_state_item_t *list, struct copier *tmp, int *index,
                   const uint8_t **pending, uint32_t *pending_len, cshim_error_t *err)
{
  cshim_state_reader_t r;
  cshim_state_item_t it;
  int ret = cshim_state_item_list(list, &r, err);

  while (ret >= 0 && (ret = cshim_state_next(&r, &it, err)) > 0) {
    switch (it.tag) {
    case CP_INDEX:
      ret = item_int(&it, index, err);
      break;
    case CP_USED:
      ret = cshim_state_item_bool(&it, &tmp->used, err);
      break;
    case CP_STARTED:
      ret = cshim_state_item_bool(&it, &tmp->started, err);
      break;
    case CP_FINISHED:
      ret = cshim_state_item_bool(&it, &tmp->finished, err);
      break;
    case CP_DISCARD:
      ret = cshim_state_item_bool(&it, &tmp->discard, err);
      break;
    case CP_SRC_FD:
      ret = cshim_state_item_fd(&it, &tmp->src_fd, err);
      break;
    case CP_DST_FD:
      ret = cshim_state_item_fd(&it, &tmp->dst_fd, err);
      break;
    case CP_KEEPER_FD:
      ret = cshim_state_item_fd(&it, &tmp->keeper_fd, err);
      break;
    case CP_DST_SYNC:
      ret = cshim_state_item_bool(&it, &tmp->dst_sync, err);
      break;
    case CP_DST_SHARED:
      ret = cshim_state_item_bool(&it, &tmp->dst_shared, err);
      break;
    case CP_DRAIN_ONLY:
      ret = cshim_state_item_bool(&it, &tmp->drain_only, err);
      break;
    case CP_PENDING:
      *pending = it.value;
      *pending_len = it.len;
      break;
    default:
      break;
    }
  }
  return ret;
}

/* A copy that was running goes on: its buffer with the unwritten bytes, its polls started. */
static int
resume_copier(struct copier *c, const uint8_t *pending, uint32_t pending_len, cshim_error_t *err)
{
  task_io_t *io = c->io;
  int index = c->index, ret;

  c->buf = cshim_xmap(TASK_IO_BUFFER_SIZE);
  copier_kinds(c);
  if (pending_len) {
    memcpy(c->buf, pending, pending_len);
    c->len = pending_len;
  }
  ret = uv_poll_init(io->loop, &c->src_poll, c->src_fd);
  if (ret < 0)
    return cshim_error_from_uv(err, ret, "stdio copy %d: poll source", index);
  c->src_poll_init = true;
  if (!c->dst_sync) {
    ret = uv_poll_init(io->loop, &c->dst_poll, c->dst_fd);
    if (ret < 0)
      return cshim_error_from_uv(err, ret, "stdio copy %d: poll destination", index);
    c->dst_poll_init = true;
  }
  /* What the previous image read and could not write yet goes out first. */
  if (c->len > 0 && c->dst_poll_init)
    ret = uv_poll_start(&c->dst_poll, UV_WRITABLE, dst_cb);
  else
    ret = uv_poll_start(&c->src_poll, UV_READABLE | UV_DISCONNECT, src_cb);
  if (ret < 0)
    return cshim_error_from_uv(err, ret, "stdio copy %d: start", index);
  return 0;
}

static int
restore_copier(task_io_t *io, const cshim_state_item_t *list, cshim_error_t *err)
{
  struct copier tmp = {0}, *c;
  const uint8_t *pending = NULL;
  uint32_t pending_len = 0;
  int index = -1;
  int ret;

  tmp.src_fd = tmp.dst_fd = tmp.keeper_fd = -1;
  ret = read_copier_record(list, &tmp, &index, &pending, &pending_len, err);
  if (ret < 0)
    return ret;
  if (index < 0 || index > 2 || pending_len > TASK_IO_BUFFER_SIZE)
    return cshim_error_make(err, EBADMSG, "state: bad stdio copy record");
  c = &io->copy[index];
  tmp.io = io;
  tmp.index = index;
  *c = tmp;
  if (c->dst_shared)
    c->dst_fd = io->shared_fd;
  if (!c->started || c->finished)
    return 0;
  return resume_copier(c, pending, pending_len, err);
}

/* An io with nothing open yet, as restore fills it. */
static task_io_t *
io_new_empty(uv_loop_t *loop, const cshim_logger_t *log)
{
  task_io_t *io = cshim_xmalloc0(sizeof *io);

  io->loop = loop;
  io->log = log;
  io->stdin_keeper = io->shared_fd = io->master_fd = -1;
  for (int i = 0; i < 3; i++) {
    io->copy[i].io = io;
    io->copy[i].index = i;
    io->copy[i].src_fd = io->copy[i].dst_fd = io->copy[i].keeper_fd = -1;
    io->runtime_fd[i] = -1;
  }
  uv_timer_init(loop, &io->timer);
  return io;
}

static int
restore_runtime_fd(task_io_t *io, const cshim_state_item_t *list, cshim_error_t *err)
{
  cshim_state_reader_t rr;
  cshim_state_item_t ri;
  int index = -1, fd = -1;
  int ret = cshim_state_item_list(list, &rr, err);

  while (ret >= 0 && (ret = cshim_state_next(&rr, &ri, err)) > 0) {
    if (ri.tag == RT_INDEX)
      ret = item_int(&ri, &index, err);
    else if (ri.tag == RT_FD)
      ret = cshim_state_item_fd(&ri, &fd, err);
  }
  if (ret >= 0 && (index < 0 || index > 2))
    ret = cshim_error_make(err, EBADMSG, "state: bad runtime stdio record");
  if (ret >= 0)
    io->runtime_fd[index] = fd;
  return ret;
}

/* One io-wide record of the state (copies are restored after). */
static int
restore_io_field(task_io_t *io, const cshim_state_item_t *it, cshim_reaper_t *reaper,
                 cshim_error_t *err)
{
  cshim_state_reader_t lr;
  uint32_t v;
  int ret = 0;

  switch (it->tag) {
  case IO_STDIN_KEEPER:
    return cshim_state_item_fd(it, &io->stdin_keeper, err);
  case IO_SHARED_FD:
    return cshim_state_item_fd(it, &io->shared_fd, err);
  case IO_SHARED_REFS:
    return item_int(it, &io->shared_refs, err);
  case IO_OUTPUTS_PENDING:
    return item_int(it, &io->outputs_pending, err);
  case IO_TERMINAL:
    return cshim_state_item_bool(it, &io->terminal, err);
  case IO_MASTER_FD:
    return cshim_state_item_fd(it, &io->master_fd, err);
  case IO_HAVE_SIZE:
    return cshim_state_item_bool(it, &io->have_size, err);
  case IO_WS_COL:
    if ((ret = cshim_state_item_u32(it, &v, err)) == 0)
      io->size.ws_col = (unsigned short)v;
    return ret;
  case IO_WS_ROW:
    if ((ret = cshim_state_item_u32(it, &v, err)) == 0)
      io->size.ws_row = (unsigned short)v;
    return ret;
  case IO_STDIN_CLOSED:
    return cshim_state_item_bool(it, &io->stdin_closed, err);
  case IO_RUNTIME_FD:
    return restore_runtime_fd(io, it, err);
  case IO_LOGGER:
    ret = cshim_state_item_list(it, &lr, err);
    if (ret >= 0)
      ret = task_logger_restore(io->loop, io->log, reaper, &lr, &io->logger, err);
    return ret;
  default:
    return 1; /* not an io-wide record */
  }
}

int
task_io_restore(uv_loop_t *loop, const cshim_logger_t *log, cshim_reaper_t *reaper,
                const cshim_state_reader_t *state, task_io_t **out, cshim_error_t *err)
{
  cshim_state_reader_t r = *state;
  cshim_state_item_t it;
  task_io_t *io = io_new_empty(loop, log);
  int ret;

  *out = io;
  /* The io-wide fields first: copies refer to the shared descriptor. */
  while ((ret = cshim_state_next(&r, &it, err)) > 0) {
    ret = restore_io_field(io, &it, reaper, err);
    if (ret < 0)
      return ret;
  }
  if (ret < 0)
    return ret;
  r = *state;
  while ((ret = cshim_state_next(&r, &it, err)) > 0)
    if (it.tag == IO_COPY && (ret = restore_copier(io, &it, err)) < 0)
      return ret;
  return ret;
}
