// SPDX-License-Identifier: Apache-2.0
// The OTLP/HTTP exporter: one POST at a time on libcurl's multi interface, its sockets watched
// by uv_poll and its timeouts by a uv_timer, so nothing waits on the loop.
#include "tracing.h"

#include <cshim/list.h>
#include <cshim/util.h>

#include <curl/curl.h>
#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* libcurl, opened by this module when tracing is on (tracing_exporter_new), never linked: a shim
   with tracing off must not pay for loading it and the ~30 libraries it needs (TLS, HTTP/2, ...),
   which costs more than the rest of the shim's start. Kept open for the process's lifetime once
   loaded (its global state is set up once and never torn down). */
static struct
{
  void *handle;
  CURLcode (*global_init)(long flags);
  CURLM *(*multi_init)(void);
  CURLMcode (*multi_setopt)(CURLM *m, CURLMoption option, ...);
  CURLMcode (*multi_cleanup)(CURLM *m);
  CURLMcode (*multi_socket_action)(CURLM *m, curl_socket_t s, int ev_bitmask, int *running);
  CURLMsg *(*multi_info_read)(CURLM *m, int *msgs_in_queue);
  CURLMcode (*multi_assign)(CURLM *m, curl_socket_t s, void *sockp);
  CURLMcode (*multi_add_handle)(CURLM *m, CURL *e);
  CURLMcode (*multi_remove_handle)(CURLM *m, CURL *e);
  CURL *(*easy_init)(void);
  CURLcode (*easy_setopt)(CURL *e, CURLoption option, ...);
  void (*easy_cleanup)(CURL *e);
  CURLcode (*easy_getinfo)(CURL *e, CURLINFO info, ...);
  const char *(*easy_strerror)(CURLcode code);
  struct curl_slist *(*slist_append)(struct curl_slist *list, const char *s);
  void (*slist_free_all)(struct curl_slist *list);
} api;

static int
load_curl(cshim_error_t *err)
{
  void *h;

  if (api.handle)
    return 0;
  h = dlopen(CSHIM_CURL_SONAME, RTLD_NOW | RTLD_LOCAL);
  if (h == NULL)
    return cshim_error_make(err, ENOENT, "load %s: %s", CSHIM_CURL_SONAME, dlerror());
#define SYM(name)                                                                                  \
  do {                                                                                             \
    *(void **)&api.name = dlsym(h, "curl_" #name);                                                 \
    if (api.name == NULL) {                                                                        \
      dlclose(h);                                                                                  \
      return cshim_error_make(err, ENOENT, "%s has no curl_" #name, CSHIM_CURL_SONAME);            \
    }                                                                                              \
  } while (0)
  SYM(global_init);
  SYM(multi_init);
  SYM(multi_setopt);
  SYM(multi_cleanup);
  SYM(multi_socket_action);
  SYM(multi_info_read);
  SYM(multi_assign);
  SYM(multi_add_handle);
  SYM(multi_remove_handle);
  SYM(easy_init);
  SYM(easy_setopt);
  SYM(easy_cleanup);
  SYM(easy_getinfo);
  SYM(easy_strerror);
  SYM(slist_append);
  SYM(slist_free_all);
#undef SYM
  if (api.global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
    dlclose(h);
    return cshim_error_make(err, EIO, "libcurl: global init failed");
  }
  api.handle = h;
  return 0;
}

struct tracing_exporter_s
{
  uv_loop_t *loop;
  const cshim_logger_t *log;
  char *url;
  char **headers_extra; /* NULL-terminated "Key: value" lines, or NULL */
  CURLM *multi;
  uv_timer_t timer;   /* libcurl's timeout */
  int open_handles;   /* the timer and the socket polls */
  cshim_list_t socks; /* struct sock: polls not yet closing, newest first */
  bool closing;
  void (*closed)(void *data);
  tracing_export_done_cb done;
  void *data;
  /* the request in flight */
  CURL *easy;
  struct curl_slist *headers;
  uint8_t *body;
  size_t spans;
  char error[CURL_ERROR_SIZE];
};

/* One socket libcurl asked us to watch. */
struct sock
{
  uv_poll_t poll;
  curl_socket_t fd;
  tracing_exporter_t *x;
  cshim_list_t link; /* in x->socks */
};

static void sock_closed_cb(uv_handle_t *h);

static void
close_sock(struct sock *s)
{
  cshim_list_remove(&s->link);
  uv_poll_stop(&s->poll);
  uv_close((uv_handle_t *)&s->poll, sock_closed_cb);
}

static void
maybe_closed(tracing_exporter_t *x)
{
  if (x->closing && x->open_handles == 0) {
    void (*closed)(void *) = x->closed;
    void *data = x->data;
    tracing_headers_free(x->headers_extra);
    free(x->url);
    free(x);
    if (closed)
      closed(data);
  }
}

static void
sock_closed_cb(uv_handle_t *h)
{
  struct sock *s = CSHIM_CONTAINER_OF((uv_poll_t *)h, struct sock, poll);
  tracing_exporter_t *x = s->x;
  free(s);
  x->open_handles--;
  maybe_closed(x);
}

static void
timer_closed_cb(uv_handle_t *h)
{
  tracing_exporter_t *x = CSHIM_CONTAINER_OF((uv_timer_t *)h, tracing_exporter_t, timer);
  x->open_handles--;
  maybe_closed(x);
}

static void
end_request(tracing_exporter_t *x, bool ok, const char *why)
{
  size_t spans = x->spans;

  if (x->easy == NULL)
    return;
  api.multi_remove_handle(x->multi, x->easy); /* CURL_POLL_REMOVE for its sockets */
  api.easy_cleanup(x->easy);
  api.slist_free_all(x->headers);
  free(x->body);
  x->easy = NULL;
  x->headers = NULL;
  x->body = NULL;
  x->spans = 0;
  x->done(x->data, spans, ok, why);
}

static void
check_done(tracing_exporter_t *x)
{
  CURLMsg *msg;
  int left;

  /* done() may close the exporter (the last export at exit): then there is no multi handle. */
  while (x->multi && (msg = api.multi_info_read(x->multi, &left))) {
    long code = 0;
    char why[CURL_ERROR_SIZE + 64];

    if (msg->msg != CURLMSG_DONE || msg->easy_handle != x->easy)
      continue;
    if (msg->data.result != CURLE_OK) {
      snprintf(why, sizeof why, "%s", x->error[0] ? x->error : api.easy_strerror(msg->data.result));
      end_request(x, false, why);
      continue;
    }
    api.easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &code);
    if (code >= 200 && code < 300)
      end_request(x, true, NULL);
    else {
      snprintf(why, sizeof why, "the collector answered HTTP %ld", code);
      end_request(x, false, why);
    }
  }
}

static void
poll_cb(uv_poll_t *p, int status, int events)
{
  struct sock *s = CSHIM_CONTAINER_OF(p, struct sock, poll);
  tracing_exporter_t *x = s->x;
  int flags = 0, running;

  if (status < 0)
    flags = CURL_CSELECT_ERR;
  if (events & UV_READABLE)
    flags |= CURL_CSELECT_IN;
  if (events & UV_WRITABLE)
    flags |= CURL_CSELECT_OUT;
  api.multi_socket_action(x->multi, s->fd, flags, &running);
  check_done(x);
}

static void
timer_cb(uv_timer_t *t)
{
  tracing_exporter_t *x = CSHIM_CONTAINER_OF(t, tracing_exporter_t, timer);
  int running;

  api.multi_socket_action(x->multi, CURL_SOCKET_TIMEOUT, 0, &running);
  check_done(x);
}

/* The collector's answer body (an ExportTraceServiceResponse) is not used: without this libcurl
   would write it to the shim's stdout. */
static size_t
discard_body(char *data, size_t size, size_t n, void *userp)
{
  (void)data;
  (void)userp;
  return size * n;
}

/* CURLMOPT_SOCKETFUNCTION: watch, change or forget a socket. */
static int
socket_fn(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp)
{
  tracing_exporter_t *x = userp;
  struct sock *s = socketp;
  int events = 0;

  (void)easy;
  if (what == CURL_POLL_REMOVE) {
    if (s) {
      api.multi_assign(x->multi, fd, NULL);
      close_sock(s);
    }
    return 0;
  }
  if (s == NULL) {
    s = cshim_xmalloc0(sizeof *s);
    s->fd = fd;
    s->x = x;
    if (uv_poll_init_socket(x->loop, &s->poll, fd) < 0) {
      free(s);
      return -1;
    }
    x->open_handles++;
    cshim_list_push_front(&x->socks, &s->link);
    api.multi_assign(x->multi, fd, s);
  }
  if (what & CURL_POLL_IN)
    events |= UV_READABLE;
  if (what & CURL_POLL_OUT)
    events |= UV_WRITABLE;
  uv_poll_start(&s->poll, events, poll_cb);
  return 0;
}

/* CURLMOPT_TIMERFUNCTION: libcurl wants to be called back after timeout_ms (-1 = never). */
static int
timer_fn(CURLM *multi, long timeout_ms, void *userp)
{
  tracing_exporter_t *x = userp;

  (void)multi;
  if (timeout_ms < 0)
    uv_timer_stop(&x->timer);
  else
    uv_timer_start(&x->timer, timer_cb, (uint64_t)timeout_ms, 0);
  return 0;
}

int
tracing_exporter_new(uv_loop_t *loop, const char *url, char *const *headers,
                     const cshim_logger_t *log, tracing_export_done_cb done, void *data,
                     tracing_exporter_t **out, cshim_error_t *err)
{
  tracing_exporter_t *x;
  int ret = load_curl(err);

  if (ret < 0)
    return ret;
  x = cshim_xmalloc0(sizeof *x);
  x->loop = loop;
  x->log = log;
  x->url = cshim_xstrdup(url);
  if (headers && headers[0]) {
    size_t n = 0;
    while (headers[n])
      n++;
    x->headers_extra = cshim_xmalloc0((n + 1) * sizeof *x->headers_extra);
    for (size_t i = 0; i < n; i++)
      x->headers_extra[i] = cshim_xstrdup(headers[i]);
  }
  x->done = done;
  x->data = data;
  x->multi = api.multi_init();
  if (x->multi == NULL) {
    tracing_headers_free(x->headers_extra);
    free(x->url);
    free(x);
    return cshim_error_make(err, ENOMEM, "libcurl: cannot make a multi handle");
  }
  api.multi_setopt(x->multi, CURLMOPT_SOCKETFUNCTION, socket_fn);
  api.multi_setopt(x->multi, CURLMOPT_SOCKETDATA, x);
  api.multi_setopt(x->multi, CURLMOPT_TIMERFUNCTION, timer_fn);
  api.multi_setopt(x->multi, CURLMOPT_TIMERDATA, x);
  uv_timer_init(loop, &x->timer);
  x->open_handles = 1;
  *out = x;
  return 0;
}

bool
tracing_exporter_busy(const tracing_exporter_t *x)
{
  return x->easy != NULL;
}

size_t
tracing_exporter_in_flight(const tracing_exporter_t *x)
{
  return x->easy ? x->spans : 0;
}

int
tracing_exporter_send(tracing_exporter_t *x, uint8_t *body, size_t len, size_t spans,
                      cshim_error_t *err)
{
  CURL *easy;

  if (x->easy || x->closing) {
    free(body);
    return cshim_error_make(err, EBUSY, "an export is in flight");
  }
  easy = api.easy_init();
  if (easy == NULL) {
    free(body);
    return cshim_error_make(err, ENOMEM, "libcurl: cannot make a request");
  }
  x->headers = api.slist_append(NULL, "Content-Type: application/x-protobuf");
  /* No "Expect: 100-continue" round trip for bodies over 1 KiB. */
  x->headers = api.slist_append(x->headers, "Expect:");
  for (char **h = x->headers_extra; h && *h; h++)
    x->headers = api.slist_append(x->headers, *h);
  x->error[0] = '\0';
  api.easy_setopt(easy, CURLOPT_URL, x->url);
  api.easy_setopt(easy, CURLOPT_POST, 1L);
  api.easy_setopt(easy, CURLOPT_POSTFIELDS, (const char *)body);
  api.easy_setopt(easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
  api.easy_setopt(easy, CURLOPT_HTTPHEADER, x->headers);
  api.easy_setopt(easy, CURLOPT_TIMEOUT_MS, (long)TRACING_REQUEST_TIMEOUT_MS);
  api.easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
  api.easy_setopt(easy, CURLOPT_WRITEFUNCTION, discard_body);
  api.easy_setopt(easy, CURLOPT_ERRORBUFFER, x->error);
  api.easy_setopt(easy, CURLOPT_PROTOCOLS_STR, "http,https");
  api.easy_setopt(easy, CURLOPT_USERAGENT, "cshim");
  x->easy = easy;
  x->body = body;
  x->spans = spans;
  if (api.multi_add_handle(x->multi, easy) != CURLM_OK) {
    api.easy_cleanup(easy);
    api.slist_free_all(x->headers);
    free(body);
    x->easy = NULL;
    x->headers = NULL;
    x->body = NULL;
    x->spans = 0;
    return cshim_error_make(err, EIO, "libcurl: cannot start the request");
  }
  return 0;
}

void
tracing_exporter_close(tracing_exporter_t *x, void (*closed)(void *data))
{
  if (x == NULL || x->closing)
    return;
  x->closing = true;
  x->closed = closed;
  end_request(x, false, "the shim is exiting");
  /* Kept-alive connections go now (their sockets are forgotten through socket_fn), then any
     socket libcurl left with us. */
  api.multi_cleanup(x->multi);
  x->multi = NULL;
  while (!cshim_list_empty(&x->socks))
    close_sock(cshim_list_entry(cshim_list_first(&x->socks), struct sock, link));
  uv_close((uv_handle_t *)&x->timer, timer_closed_cb);
}
