// SPDX-License-Identifier: Apache-2.0
// The debug plugin's HTTP/1.1 server: Unix socket listener, requests parsed by http_parser,
// bounded and timed so that no client can stall the loop, one answer per connection.
#define _GNU_SOURCE
#include "debug.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cshim/unix_socket.h>
#include <cshim/util.h>

struct debug_conn_s
{
  debug_t *d;
  cshim_list_t link; /* in d->conns */
  uv_pipe_t pipe;
  uv_timer_t timer;
  http_parser parser;
  char rbuf[4096];
  char url[DEBUG_MAX_REQUEST + 1];
  size_t url_len;
  size_t received;
  int reject;    /* status to answer with instead of routing, 0 = none */
  bool complete; /* a whole request was parsed */
  bool answered; /* an answer has begun */
  bool closing;
  unsigned closes_pending;
  debug_stream_cb next_cb; /* streaming: the previous piece was taken */
  debug_stream_cb gone_cb; /* held or streaming: the connection went away */
  void *cb_data;
  /* the request's bytes while it is incomplete (live upgrade: an idle connection is handed over
     with them and parsed again by the next image); freed once answered */
  char *raw;
  size_t raw_len;
};

struct write_req
{
  uv_write_t req;
  debug_conn_t *conn;
  char *buf;
  bool last;   /* close the connection once written */
  bool stream; /* a streamed piece: ask for the next one once written */
};

static void
conn_closed_cb(uv_handle_t *h)
{
  debug_conn_t *conn = h->data;
  debug_t *d = conn->d;

  if (--conn->closes_pending == 0) {
    free(conn->raw);
    free(conn);
  }
  debug_handle_closed(d);
}

static void
close_conn(debug_conn_t *conn)
{
  debug_t *d = conn->d;
  debug_stream_cb gone = conn->gone_cb;

  if (conn->closing)
    return;
  conn->closing = true;
  conn->gone_cb = NULL;
  conn->next_cb = NULL;
  cshim_list_remove(&conn->link);
  d->n_conns--;
  if (gone)
    gone(conn->cb_data, conn);
  conn->closes_pending = 2;
  uv_close((uv_handle_t *)&conn->pipe, conn_closed_cb);
  uv_close((uv_handle_t *)&conn->timer, conn_closed_cb);
}

static void
timeout_cb(uv_timer_t *t)
{
  debug_conn_t *conn = t->data;

  if (!conn->answered) {
    cshim_log_debug(conn->d->log, "debug: request not received within %u ms",
                    DEBUG_READ_TIMEOUT_MS);
    debug_http_respond_text(conn, 408, "request timeout");
    return;
  }
  cshim_log_debug(conn->d->log, "debug: client did not take the answer within %u ms",
                  DEBUG_WRITE_TIMEOUT_MS);
  close_conn(conn);
}

static void
write_cb(uv_write_t *req, int status)
{
  struct write_req *w = CSHIM_CONTAINER_OF(req, struct write_req, req);
  debug_conn_t *conn = w->conn;
  bool last = w->last, stream = w->stream;

  free(w->buf);
  free(w);
  if (conn->closing)
    return;
  if (status < 0 || last) {
    close_conn(conn);
    return;
  }
  if (stream && conn->next_cb) {
    debug_stream_cb next = conn->next_cb;
    uv_timer_start(&conn->timer, timeout_cb, DEBUG_WRITE_TIMEOUT_MS, 0);
    next(conn->cb_data, conn);
  }
}

/* Queue buf (taken) for writing. */
static void
queue_write(debug_conn_t *conn, char *buf, size_t len, bool last, bool stream)
{
  struct write_req *w = cshim_xmalloc0(sizeof(*w));
  uv_buf_t b = uv_buf_init(buf, (unsigned)len);
  int r;

  w->conn = conn;
  w->buf = buf;
  w->last = last;
  w->stream = stream;
  uv_timer_start(&conn->timer, timeout_cb, DEBUG_WRITE_TIMEOUT_MS, 0);
  r = uv_write(&w->req, (uv_stream_t *)&conn->pipe, &b, 1, write_cb);
  if (r < 0) {
    free(buf);
    free(w);
    close_conn(conn);
  }
}

static const char *
reason(int status)
{
  const char *s = http_status_str((enum http_status)status);
  return s && strcmp(s, "<unknown>") != 0 ? s : "Unknown";
}

static char *
format_head(int status, const char *content_type, uint64_t length, const char *extra, size_t *len)
{
  char *head;
  int n = asprintf(&head,
                   "HTTP/1.1 %d %s\r\n"
                   "Content-Type: %s\r\n"
                   "Content-Length: %llu\r\n"
                   "Cache-Control: no-store\r\n"
                   "X-Content-Type-Options: nosniff\r\n"
                   "Connection: close\r\n"
                   "%s\r\n",
                   status, reason(status), content_type, (unsigned long long)length,
                   extra ? extra : "");
  if (n < 0)
    abort();
  *len = (size_t)n;
  return head;
}

static void
begin_answer(debug_conn_t *conn, int status)
{
  conn->answered = true;
  free(conn->raw);
  conn->raw = NULL;
  conn->raw_len = 0;
  conn->d->http_requests++;
  if (status >= 400)
    conn->d->http_rejected++;
  uv_read_stop((uv_stream_t *)&conn->pipe);
}

void
debug_http_respond(debug_conn_t *conn, int status, const char *content_type, const char *body,
                   size_t len, const char *extra_headers)
{
  size_t head_len;
  char *head, *buf;

  if (conn->closing || conn->answered)
    return;
  begin_answer(conn, status);
  conn->gone_cb = NULL;
  head = format_head(status, content_type, len, extra_headers, &head_len);
  buf = cshim_xmalloc(head_len + len + 1);
  memcpy(buf, head, head_len);
  if (len)
    memcpy(buf + head_len, body, len);
  free(head);
  queue_write(conn, buf, head_len + len, true, false);
}

void
debug_http_respond_text(debug_conn_t *conn, int status, const char *fmt, ...)
{
  va_list ap;
  char *msg = NULL, *body;

  va_start(ap, fmt);
  if (vasprintf(&msg, fmt, ap) < 0)
    abort();
  va_end(ap);
  cshim_xasprintf(&body, "%s\n", msg);
  debug_http_respond(conn, status, "text/plain; charset=utf-8", body, strlen(body),
                     status == 405 ? "Allow: GET\r\n" : "");
  free(msg);
  free(body);
}

void
debug_http_stream_begin(debug_conn_t *conn, int status, const char *content_type, uint64_t total,
                        const char *extra_headers, debug_stream_cb next_cb, debug_stream_cb gone_cb,
                        void *data)
{
  size_t head_len;
  char *head;

  if (conn->closing || conn->answered)
    return;
  begin_answer(conn, status);
  conn->next_cb = next_cb;
  conn->gone_cb = gone_cb;
  conn->cb_data = data;
  head = format_head(status, content_type, total, extra_headers, &head_len);
  queue_write(conn, head, head_len, false, true);
}

void
debug_http_stream_write(debug_conn_t *conn, char *piece, size_t len)
{
  if (conn->closing) {
    free(piece);
    return;
  }
  queue_write(conn, piece, len, false, true);
}

void
debug_http_stream_end(debug_conn_t *conn)
{
  conn->gone_cb = NULL;
  conn->next_cb = NULL;
  close_conn(conn);
}

void
debug_http_hold(debug_conn_t *conn, debug_stream_cb gone_cb, void *data)
{
  conn->gone_cb = gone_cb;
  conn->cb_data = data;
  uv_timer_stop(&conn->timer);
}

/* ---- requests ------------------------------------------------------------------------------ */

static int
on_url_cb(http_parser *p, const char *at, size_t len)
{
  debug_conn_t *conn = p->data;

  if (conn->url_len + len > DEBUG_MAX_REQUEST) {
    conn->reject = 414;
    http_parser_pause(p, 1);
    return 0;
  }
  memcpy(conn->url + conn->url_len, at, len);
  conn->url_len += len;
  conn->url[conn->url_len] = '\0';
  return 0;
}

static int
on_headers_complete_cb(http_parser *p)
{
  debug_conn_t *conn = p->data;

  /* Nothing here takes a body: refuse one rather than read it. */
  if ((p->flags & F_CHUNKED) || (p->content_length > 0 && p->content_length != ULLONG_MAX)) {
    conn->reject = 413;
    http_parser_pause(p, 1);
  }
  return 0;
}

static int
on_message_complete_cb(http_parser *p)
{
  debug_conn_t *conn = p->data;

  conn->complete = true;
  /* One request per connection: whatever follows is not parsed. */
  http_parser_pause(p, 1);
  return 0;
}

static const http_parser_settings parser_settings = {
    .on_url = on_url_cb,
    .on_headers_complete = on_headers_complete_cb,
    .on_message_complete = on_message_complete_cb,
};

static void
dispatch(debug_conn_t *conn)
{
  struct http_parser_url u;
  char path[DEBUG_MAX_REQUEST + 1], query[DEBUG_MAX_REQUEST + 1];

  uv_timer_stop(&conn->timer);
  http_parser_url_init(&u);
  if (conn->url_len == 0 || http_parser_parse_url(conn->url, conn->url_len, 0, &u) != 0 ||
      !(u.field_set & (1 << UF_PATH))) {
    debug_http_respond_text(conn, 400, "bad request: malformed URL");
    return;
  }
  snprintf(path, sizeof(path), "%.*s", (int)u.field_data[UF_PATH].len,
           conn->url + u.field_data[UF_PATH].off);
  query[0] = '\0';
  if (u.field_set & (1 << UF_QUERY))
    snprintf(query, sizeof(query), "%.*s", (int)u.field_data[UF_QUERY].len,
             conn->url + u.field_data[UF_QUERY].off);
  debug_route(conn->d, conn, conn->parser.method, path, query);
}

/* Decide what to do after feeding the parser. */
static void
after_parse(debug_conn_t *conn)
{
  enum http_errno e = HTTP_PARSER_ERRNO(&conn->parser);

  if (conn->reject) {
    debug_http_respond_text(conn, conn->reject, "%s", reason(conn->reject));
    return;
  }
  if (e == HPE_HEADER_OVERFLOW || conn->received > DEBUG_MAX_REQUEST) {
    debug_http_respond_text(conn, 431, "request header fields too large");
    return;
  }
  if (conn->complete) {
    dispatch(conn);
    return;
  }
  if (e != HPE_OK && e != HPE_PAUSED)
    debug_http_respond_text(conn, 400, "bad request: %s", http_errno_description(e));
}

static void
alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
  debug_conn_t *conn = h->data;

  buf->base = conn->rbuf;
  buf->len = sizeof(conn->rbuf);
}

static void
read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
  debug_conn_t *conn = s->data;

  if (conn->closing || conn->answered)
    return;
  if (nread == UV_EOF) {
    /* The client shut down its side: the request is whatever came (it can still be answered). */
    if (conn->received == 0) {
      close_conn(conn);
      return;
    }
    http_parser_execute(&conn->parser, &parser_settings, NULL, 0);
    after_parse(conn);
    if (!conn->answered)
      debug_http_respond_text(conn, 400, "bad request: incomplete request");
    return;
  }
  if (nread < 0) {
    close_conn(conn);
    return;
  }
  if (nread == 0)
    return;
  conn->received += (size_t)nread;
  if (conn->received <= DEBUG_MAX_REQUEST) {
    conn->raw = cshim_xrealloc(conn->raw, conn->raw_len + (size_t)nread);
    memcpy(conn->raw + conn->raw_len, buf->base, (size_t)nread);
    conn->raw_len += (size_t)nread;
  }
  http_parser_execute(&conn->parser, &parser_settings, buf->base, (size_t)nread);
  after_parse(conn);
}

static bool
peer_allowed(debug_conn_t *conn)
{
  struct ucred cred;
  socklen_t len = sizeof(cred);
  uv_os_fd_t fd;

  if (uv_fileno((uv_handle_t *)&conn->pipe, &fd) < 0 ||
      getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0)
    return false;
  return cred.uid == 0 || cred.uid == geteuid();
}

static debug_conn_t *
new_conn(debug_t *d)
{
  debug_conn_t *conn = cshim_xmalloc0(sizeof(*conn));

  conn->d = d;
  uv_pipe_init(d->loop, &conn->pipe, 0);
  uv_timer_init(d->loop, &conn->timer);
  conn->pipe.data = conn;
  conn->timer.data = conn;
  d->open_handles += 2;
  cshim_list_push_front(&d->conns, &conn->link);
  d->n_conns++;
  return conn;
}

static void
start_conn(debug_conn_t *conn)
{
  http_parser_init(&conn->parser, HTTP_REQUEST);
  conn->parser.data = conn;
  uv_timer_start(&conn->timer, timeout_cb, DEBUG_READ_TIMEOUT_MS, 0);
  if (uv_read_start((uv_stream_t *)&conn->pipe, alloc_cb, read_cb) < 0)
    close_conn(conn);
}

static void
connection_cb(uv_stream_t *listener, int status)
{
  debug_t *d = listener->data;
  debug_conn_t *conn;

  if (status < 0) {
    cshim_log_warn(d->log, "debug: accept: %s", uv_strerror(status));
    return;
  }
  conn = new_conn(d);
  if (uv_accept(listener, (uv_stream_t *)&conn->pipe) < 0) {
    close_conn(conn);
    return;
  }
  if (!peer_allowed(conn)) {
    cshim_log_warn(d->log, "debug: connection from another user refused");
    close_conn(conn);
    return;
  }
  if (d->n_conns > DEBUG_MAX_CONNECTIONS) {
    debug_http_respond_text(conn, 503, "too many connections");
    return;
  }
  start_conn(conn);
}

/* ---- live upgrade ---------------------------------------------------------------------------- */

const char *
debug_http_busy(const debug_t *d)
{
  /* An answer handed to the kernel closes its connection on the next loop turn: wait for that.
     One the client does not take (bytes still queued) is not waited for: the exec closes it and
     the client sees the answer cut short of its Content-Length. */
  const cshim_list_t *l;

  CSHIM_LIST_FOREACH (l, &d->conns) {
    const debug_conn_t *c = cshim_list_entry(l, debug_conn_t, link);
    if (c->answered && !c->closing && c->pipe.write_queue_size == 0)
      return "a debug HTTP answer is being written";
  }
  return NULL;
}

void
debug_http_foreach_idle(const debug_t *d,
                        void (*cb)(void *data, int fd, const char *raw, size_t len), void *data)
{
  const cshim_list_t *l;

  CSHIM_LIST_FOREACH (l, &d->conns) {
    const debug_conn_t *c = cshim_list_entry(l, debug_conn_t, link);
    uv_os_fd_t fd;
    if (c->answered || c->closing || uv_fileno((const uv_handle_t *)&c->pipe, &fd) < 0)
      continue;
    cb(data, fd, c->raw, c->raw_len);
  }
}

int
debug_http_adopt(debug_t *d, int fd, const char *raw, size_t len, cshim_error_t *err)
{
  debug_conn_t *conn = new_conn(d);
  int r = uv_pipe_open(&conn->pipe, fd);

  if (r < 0) {
    close_conn(conn);
    return cshim_error_from_uv(err, r, "adopt debug connection fd %d", fd);
  }
  start_conn(conn);
  if (conn->closing || len == 0)
    return 0;
  /* what the previous image had read of the request: parsed again (never complete, else it
     would have been answered there) */
  conn->received = len;
  conn->raw = cshim_xmemdup(raw, len);
  conn->raw_len = len;
  /* Nothing is answered before the restore is whole: a parser error shows with the next read */
  http_parser_execute(&conn->parser, &parser_settings, raw, len);
  return 0;
}

/* ---- listening ----------------------------------------------------------------------------- */

static int
mkdir_parents(const char *path, cshim_error_t *err)
{
  cshim_autofree char *copy = cshim_xstrdup(path);
  char *dir = dirname(copy);
  struct stat st;

  if (stat(dir, &st) == 0)
    return S_ISDIR(st.st_mode) ? 0 : cshim_error_make(err, ENOTDIR, "`%s` is not a directory", dir);
  if (strcmp(dir, "/") != 0 && strcmp(dir, ".") != 0) {
    int ret = mkdir_parents(dir, err);
    if (ret < 0)
      return ret;
  }
  if (mkdir(dir, 0700) < 0 && errno != EEXIST)
    return cshim_error_sys(err, errno, "create directory `%s`", dir);
  return 0;
}

/* A socket file nobody accepts on is stale; a live one belongs to another shim. */
static int
clear_stale(const char *path, cshim_error_t *err)
{
  struct sockaddr_un sun;
  socklen_t len;
  struct stat st;
  int fd, r;

  if (lstat(path, &st) < 0)
    return errno == ENOENT ? 0 : cshim_error_sys(err, errno, "stat `%s`", path);
  if (!S_ISSOCK(st.st_mode))
    return cshim_error_make(err, EEXIST, "`%s` exists and is not a socket", path);
  if (cshim_unix_sockaddr(path, false, &sun, &len, err) < 0)
    return cshim_error_wrap(err, "debug socket");
  fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return cshim_error_sys(err, errno, "socket");
  r = connect(fd, (struct sockaddr *)&sun, len);
  close(fd);
  if (r == 0 || errno == EAGAIN || errno == EINPROGRESS)
    return cshim_error_make(err, EADDRINUSE, "debug socket `%s` is in use", path);
  if (unlink(path) < 0 && errno != ENOENT)
    return cshim_error_sys(err, errno, "remove stale socket `%s`", path);
  return 0;
}

static int
bind_path(const char *path, int *out, cshim_error_t *err)
{
  struct sockaddr_un sun;
  socklen_t len;
  cshim_autoclose int fd = -1;
  int ret;

  if (cshim_unix_sockaddr(path, false, &sun, &len, err) < 0)
    return cshim_error_wrap(err, "debug socket");
  ret = mkdir_parents(path, err);
  if (ret < 0)
    return ret;
  ret = clear_stale(path, err);
  if (ret < 0)
    return ret;
  fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return cshim_error_sys(err, errno, "socket");
  if (bind(fd, (struct sockaddr *)&sun, len) < 0)
    return cshim_error_sys(err, errno, "bind debug socket `%s`", path);
  if (chmod(path, 0600) < 0 || listen(fd, 64) < 0) {
    ret = cshim_error_sys(err, errno, "listen on debug socket `%s`", path);
    unlink(path);
    return ret;
  }
  *out = cshim_steal_fd(&fd);
  return 0;
}

int
debug_http_listen_fd(debug_t *d, int fd, cshim_error_t *err)
{
  int r;

  uv_pipe_init(d->loop, &d->listener, 0);
  d->listener.data = d;
  d->open_handles++;
  d->listening = true;
  r = uv_pipe_open(&d->listener, fd);
  if (r < 0)
    close(fd);
  else
    r = uv_listen((uv_stream_t *)&d->listener, 64, connection_cb);
  if (r < 0)
    return cshim_error_from_uv(err, r, "serve debug socket (fd %d)", fd);
  return 0;
}

int
debug_http_listen_path(debug_t *d, const char *path, cshim_error_t *err)
{
  int fd = -1, ret;

  ret = bind_path(path, &fd, err);
  if (ret < 0)
    return ret;
  d->socket_path = cshim_xstrdup(path);
  d->unlink_socket = true;
  return debug_http_listen_fd(d, fd, err);
}

static void
listener_closed_cb(uv_handle_t *h)
{
  debug_handle_closed(h->data);
}

void
debug_http_close(debug_t *d)
{
  while (!cshim_list_empty(&d->conns))
    close_conn(cshim_list_entry(cshim_list_first(&d->conns), debug_conn_t, link));
  if (d->listening) {
    d->listening = false;
    uv_close((uv_handle_t *)&d->listener, listener_closed_cb);
  }
}
