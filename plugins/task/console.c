// SPDX-License-Identifier: Apache-2.0
// The console socket handed to the runtime for a terminal: a temporary unix socket on which the
// runtime sends the pty master (SCM_RIGHTS), accepted and read on the loop without blocking.
#define _GNU_SOURCE
#include "console.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cshim/unix_socket.h>
#include <cshim/util.h>

/* runc sends the pty's name (at most a path) with the descriptor. */
#define NAME_BUFFER 4096
#define MAX_FDS 4

struct task_console_s
{
  uv_loop_t *loop;
  const cshim_logger_t *log;
  char *dir;  /* the mkdtemp directory; removed once a connection came, or at close */
  char *path; /* <dir>/pty.sock */
  int listen_fd;
  int conn_fd;
  int master_fd;         /* received, not yet handed over */
  cshim_error_t failure; /* the runtime misbehaved before anyone waited */
  uv_poll_t listen_poll, conn_poll;
  bool listen_init, conn_init;
  uv_timer_t timer;
  task_console_cb cb;
  void *data;
  bool closing;
  int pending_closes;
};

static void
close_fd(int *fd)
{
  if (*fd >= 0)
    close(*fd);
  *fd = -1;
}

static void
handle_closed_cb(uv_handle_t *h)
{
  task_console_t *c = h->data;
  if (--c->pending_closes > 0 || !c->closing)
    return;
  free(c->dir);
  free(c->path);
  free(c);
}

static void
close_handle(task_console_t *c, uv_handle_t *h)
{
  if (uv_is_closing(h))
    return;
  h->data = c;
  c->pending_closes++;
  uv_close(h, handle_closed_cb);
}

/* The socket is needed only until the runtime has connected: then nobody else may. */
static void
remove_socket(task_console_t *c)
{
  if (c->listen_init) {
    close_handle(c, (uv_handle_t *)&c->listen_poll);
    c->listen_init = false;
  }
  close_fd(&c->listen_fd);
  if (c->path)
    unlink(c->path);
  if (c->dir)
    rmdir(c->dir);
  free(c->dir);
  c->dir = NULL;
}

/* Hand the result to the waiter, or keep it until someone waits. */
static void
deliver(task_console_t *c)
{
  task_console_cb cb = c->cb;
  cshim_error_t err = NULL;
  int fd;

  if (cb == NULL || (c->master_fd < 0 && c->failure == NULL))
    return;
  c->cb = NULL;
  uv_timer_stop(&c->timer);
  fd = cshim_steal_fd(&c->master_fd);
  err = cshim_steal_pointer(&c->failure);
  cb(c->data, fd, &err);
  cshim_error_release(&err);
}

static void
fail(task_console_t *c, cshim_error_t *err)
{
  if (c->conn_init) {
    close_handle(c, (uv_handle_t *)&c->conn_poll);
    c->conn_init = false;
  }
  close_fd(&c->conn_fd);
  if (c->failure == NULL)
    c->failure = cshim_steal_pointer(err);
  cshim_error_release(err);
  deliver(c);
}

static void
conn_cb(uv_poll_t *h, int status, int events)
{
  task_console_t *c = CSHIM_CONTAINER_OF(h, task_console_t, conn_poll);
  union
  {
    char buf[CMSG_SPACE(MAX_FDS * sizeof(int))];
    struct cmsghdr align;
  } control;
  char name[NAME_BUFFER];
  struct iovec iov = {name, sizeof name};
  struct msghdr msg = {0};
  cshim_error_t err = NULL;
  int master = -1;
  ssize_t n;

  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control.buf;
  msg.msg_controllen = sizeof control.buf;
  n = CSHIM_RETRY_EINTR(recvmsg(c->conn_fd, &msg, MSG_CMSG_CLOEXEC | MSG_DONTWAIT));
  if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) && status == 0)
    return;
  if (n < 0) {
    cshim_error_sys(&err, errno, "console socket: receive the terminal");
    fail(c, &err);
    return;
  }
  for (struct cmsghdr *cm = CMSG_FIRSTHDR(&msg); cm; cm = CMSG_NXTHDR(&msg, cm)) {
    size_t nfd;
    if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS)
      continue;
    nfd = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    for (size_t i = 0; i < nfd; i++) {
      int fd;
      memcpy(&fd, CMSG_DATA(cm) + i * sizeof(int), sizeof fd);
      if (master < 0)
        master = fd;
      else
        close(fd);
    }
  }
  if (master < 0) {
    cshim_error_make(&err, EPROTO, "console socket: the runtime %s without sending a terminal",
                     n == 0 ? "hung up" : "wrote");
    fail(c, &err);
    return;
  }
  if (!isatty(master)) {
    close(master);
    cshim_error_make(&err, EPROTO,
                     "console socket: the runtime sent a descriptor that is not a "
                     "terminal");
    fail(c, &err);
    return;
  }
  close_handle(c, (uv_handle_t *)&c->conn_poll);
  c->conn_init = false;
  close_fd(&c->conn_fd);
  c->master_fd = master;
  deliver(c);
}

static void
listen_cb(uv_poll_t *h, int status, int events)
{
  task_console_t *c = CSHIM_CONTAINER_OF(h, task_console_t, listen_poll);
  cshim_error_t err = NULL;
  int fd, r;

  fd = accept4(c->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
  if (fd < 0) {
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR || errno == ECONNABORTED)
      return;
    cshim_error_sys(&err, errno, "console socket: accept");
    remove_socket(c);
    fail(c, &err);
    return;
  }
  /* One connection only: from here on the socket and its directory are gone. */
  remove_socket(c);
  c->conn_fd = fd;
  r = uv_poll_init(c->loop, &c->conn_poll, fd);
  if (r < 0) {
    cshim_error_from_uv(&err, r, "console socket: poll");
    fail(c, &err);
    return;
  }
  c->conn_init = true;
  r = uv_poll_start(&c->conn_poll, UV_READABLE | UV_DISCONNECT, conn_cb);
  if (r < 0) {
    cshim_error_from_uv(&err, r, "console socket: poll");
    fail(c, &err);
  }
}

static const char *
temp_base(void)
{
  const char *d = getenv("XDG_RUNTIME_DIR");
  if (d && d[0] == '/')
    return d;
  d = getenv("TMPDIR");
  if (d && d[0] == '/')
    return d;
  return "/tmp";
}

int
task_console_new(uv_loop_t *loop, const cshim_logger_t *log, task_console_t **out,
                 cshim_error_t *err)
{
  task_console_t *c = cshim_xmalloc0(sizeof *c);
  struct sockaddr_un addr;
  socklen_t addr_len;
  const char *base = temp_base();
  int r;

  c->loop = loop;
  c->log = log;
  c->listen_fd = c->conn_fd = c->master_fd = -1;
  uv_timer_init(loop, &c->timer);
  cshim_xasprintf(&c->dir, "%s/ptyXXXXXX", base);
  if (mkdtemp(c->dir) == NULL) {
    r = cshim_error_sys(err, errno, "console socket: mkdtemp `%s`", c->dir);
    free(c->dir);
    c->dir = NULL;
    goto fail;
  }
  cshim_xasprintf(&c->path, "%s/pty.sock", c->dir);
  if ((r = cshim_unix_sockaddr(c->path, false, &addr, &addr_len, err)) < 0) {
    cshim_error_wrap(err, "console socket");
    goto fail;
  }
  c->listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (c->listen_fd < 0) {
    r = cshim_error_sys(err, errno, "console socket");
    goto fail;
  }
  if (bind(c->listen_fd, (struct sockaddr *)&addr, addr_len) < 0) {
    r = cshim_error_sys(err, errno, "console socket: bind `%s`", c->path);
    goto fail;
  }
  /* A runtime running as another user (rootless setups) must be able to connect. */
  if (getenv("XDG_RUNTIME_DIR") && chmod(c->path, 0755 | S_ISVTX) < 0) {
    r = cshim_error_sys(err, errno, "console socket: chmod `%s`", c->path);
    goto fail;
  }
  if (listen(c->listen_fd, 1) < 0) {
    r = cshim_error_sys(err, errno, "console socket: listen");
    goto fail;
  }
  r = uv_poll_init(loop, &c->listen_poll, c->listen_fd);
  if (r < 0) {
    r = cshim_error_from_uv(err, r, "console socket: poll");
    goto fail;
  }
  c->listen_init = true;
  r = uv_poll_start(&c->listen_poll, UV_READABLE, listen_cb);
  if (r < 0) {
    r = cshim_error_from_uv(err, r, "console socket: poll");
    goto fail;
  }
  *out = c;
  return 0;

fail:
  task_console_close(c);
  return r;
}

const char *
task_console_path(const task_console_t *c)
{
  return c ? c->path : NULL;
}

static void
timeout_cb(uv_timer_t *t)
{
  task_console_t *c = CSHIM_CONTAINER_OF(t, task_console_t, timer);
  cshim_error_t err = NULL;
  if (c->failure == NULL)
    cshim_error_make(&c->failure, ETIMEDOUT, "the runtime did not send the terminal in time");
  remove_socket(c);
  fail(c, &err);
}

static void
now_cb(uv_timer_t *t)
{
  deliver(CSHIM_CONTAINER_OF(t, task_console_t, timer));
}

void
task_console_receive(task_console_t *c, uint64_t timeout_ms, task_console_cb cb, void *data)
{
  c->cb = cb;
  c->data = data;
  if (c->master_fd >= 0 || c->failure)
    uv_timer_start(&c->timer, now_cb, 0, 0);
  else
    uv_timer_start(&c->timer, timeout_cb, timeout_ms, 0);
}

void
task_console_close(task_console_t *c)
{
  if (c == NULL || c->closing)
    return;
  c->closing = true;
  c->cb = NULL;
  remove_socket(c);
  if (c->conn_init)
    close_handle(c, (uv_handle_t *)&c->conn_poll);
  c->conn_init = false;
  close_fd(&c->conn_fd);
  close_fd(&c->master_fd);
  cshim_error_release(&c->failure);
  free(c->path);
  c->path = NULL;
  close_handle(c, (uv_handle_t *)&c->timer);
}
