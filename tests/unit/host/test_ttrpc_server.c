// SPDX-License-Identifier: Apache-2.0
// Tests of host/ttrpc_server.c: a raw-socket client against the server on a real libuv loop.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <uv.h>

/* Before cmocka.h: its fail() macro would swallow the call ops' `fail` member. */
#include <cshim/frame.h>
#include <cshim/state.h>
#include <cshim/ttrpc.h>
#include <cshim/util.h>

#include "echo.pb-c.h"
#include "google/rpc/status.pb-c.h"
#include "ttrpc/request.pb-c.h"
#include "ttrpc_server.h"

#include <cmocka.h>

#define SVC "cshim.fixture.v1.Echo"
#define DEADLINE_NS (20ull * 1000 * 1000 * 1000)

struct env;

/* A Sleep call waiting for its timer: how an asynchronous handler keeps its call. */
struct sleeper
{
  uv_timer_t timer;
  struct env *env;
  cshim_ttrpc_call_t *call;
  char *text;
  char *ns;
  struct sleeper *next;
};

struct env
{
  uv_loop_t loop;
  host_ttrpc_server_t *srv;
  cshim_logger_t logger;
  size_t log_lines;
  bool saw_read_pause;
  cshim_ttrpc_service_t service;
  cshim_ttrpc_interceptor_t interceptors[3];
  char dir[64];
  char sock[128];
  struct sleeper *sleepers;
  size_t n_late_replies;
  int late_reply_ret;
  size_t n_handled;
  char events[32][32];
  size_t n_events;
  bool closed;
  size_t n_cancelled;   /* park-cancel calls whose connection closed */
  int cancel_ret;       /* what answering the last of them returned */
  uint64_t conn_ids[8]; /* cshim_ttrpc_call_connection of the first Sleep calls */
  size_t n_conn_ids;
};

/* ---- the fixture service -------------------------------------------------------------------- */

static void
record(struct env *env, const char *fmt, ...)
{
  va_list ap;

  if (!env->interceptors[0].name)
    return; /* only the interceptor tests keep a trace */
  assert_true(env->n_events < CSHIM_N_ELEMENTS(env->events));
  va_start(ap, fmt);
  vsnprintf(env->events[env->n_events++], sizeof(env->events[0]), fmt, ap);
  va_end(ap);
}

static void
close_server_done_cb(void *data)
{
  ((struct env *)data)->closed = true;
}

static void
echo_handler(cshim_ttrpc_call_t *call, const ProtobufCMessage *request, void *data)
{
  const Cshim__Fixture__V1__EchoRequest *req = (const Cshim__Fixture__V1__EchoRequest *)request;
  Cshim__Fixture__V1__EchoResponse resp = CSHIM__FIXTURE__V1__ECHO_RESPONSE__INIT;
  struct env *env = data;
  const char *ns = cshim_ttrpc_call_metadata(call, CSHIM_TTRPC_NAMESPACE_KEY);

  env->n_handled++;
  record(env, "h");
  if (strcmp(req->text, "wrong-type") == 0) {
    Cshim__Fixture__V1__BigResponse big = CSHIM__FIXTURE__V1__BIG_RESPONSE__INIT;
    assert_int_equal(cshim_ttrpc_call_reply(call, &big.base), -EINVAL);
    return;
  }
  resp.text = req->text;
  resp.namespace_ = (char *)(ns ? ns : "");
  if (strncmp(req->text, "packed", 6) == 0) {
    /* the same answer, handed over already packed (or, "packed-wrong", naming another type) */
    uint8_t buf[256];
    size_t n = cshim__fixture__v1__echo_response__get_packed_size(&resp);
    bool wrong = strcmp(req->text, "packed-wrong") == 0;
    assert_true(n <= sizeof buf);
    cshim__fixture__v1__echo_response__pack(&resp, buf);
    assert_int_equal(
        cshim_ttrpc_call_reply_packed(call,
                                      wrong ? &cshim__fixture__v1__big_response__descriptor
                                            : &cshim__fixture__v1__echo_response__descriptor,
                                      buf, n),
        wrong ? -EINVAL : 0);
    return;
  }
  if (strcmp(req->text, "into the void") == 0) {
    /* The peer is gone: the answer may fail at once (EPIPE) or later; either way it is final. */
    int r = cshim_ttrpc_call_reply(call, &resp.base);
    assert_true(r == 0 || r == -EPIPE || r == -ECONNRESET);
    return;
  }
  assert_int_equal(cshim_ttrpc_call_reply(call, &resp.base), 0);
  if (strcmp(req->text, "close-server") == 0)
    host_ttrpc_server_close(env->srv, close_server_done_cb, env);
}

static void
sleeper_close_cb(uv_handle_t *handle)
{
  struct sleeper *s = CSHIM_CONTAINER_OF(handle, struct sleeper, timer);

  free(s->text);
  free(s->ns);
  free(s);
}

static void
unlink_sleeper(struct sleeper *s)
{
  struct sleeper **pp;

  for (pp = &s->env->sleepers; *pp; pp = &(*pp)->next)
    if (*pp == s) {
      *pp = s->next;
      return;
    }
}

static void
sleeper_timer_cb(uv_timer_t *timer)
{
  struct sleeper *s = CSHIM_CONTAINER_OF(timer, struct sleeper, timer);
  Cshim__Fixture__V1__EchoResponse resp = CSHIM__FIXTURE__V1__ECHO_RESPONSE__INIT;

  resp.text = s->text;
  resp.namespace_ = s->ns;
  s->env->late_reply_ret = cshim_ttrpc_call_reply(s->call, &resp.base);
  s->env->n_late_replies++;
  unlink_sleeper(s);
  uv_close((uv_handle_t *)&s->timer, sleeper_close_cb);
}

static void
sleeper_cancel_cb(cshim_ttrpc_call_t *call, void *data)
{
  struct sleeper *s = data;

  assert_ptr_equal(call, s->call);
  assert_int_equal(cshim_ttrpc_call_connection(call), 0); /* gone */
  s->env->n_cancelled++;
  s->env->cancel_ret = cshim_ttrpc_call_fail(call, CSHIM_GRPC_CANCELED, "connection closed");
  unlink_sleeper(s);
  uv_timer_stop(&s->timer);
  uv_close((uv_handle_t *)&s->timer, sleeper_close_cb);
}

static void
sleep_handler(cshim_ttrpc_call_t *call, const ProtobufCMessage *request, void *data)
{
  const Cshim__Fixture__V1__SleepRequest *req = (const Cshim__Fixture__V1__SleepRequest *)request;
  struct env *env = data;
  const char *ns = cshim_ttrpc_call_metadata(call, CSHIM_TTRPC_NAMESPACE_KEY);
  struct sleeper *s = cshim_xmalloc0(sizeof(*s));

  env->n_handled++;
  s->env = env;
  s->call = call;
  if (env->n_conn_ids < 8)
    env->conn_ids[env->n_conn_ids++] = cshim_ttrpc_call_connection(call);
  /* "park": the call waits for an event, like Wait; "grow": the late answer is 1 MiB. */
  if (strcmp(req->text, "park") == 0 || strcmp(req->text, "park-cancel") == 0)
    cshim_ttrpc_call_park(call);
  /* "park-cancel": like Wait, dropped (answered to nobody) when its connection closes. */
  if (strcmp(req->text, "park-cancel") == 0)
    assert_true(cshim_ttrpc_call_on_cancel(call, sleeper_cancel_cb, s));
  if (strcmp(req->text, "grow") == 0) {
    s->text = cshim_xmalloc(1u << 20);
    memset(s->text, 'g', (1u << 20) - 1);
    s->text[(1u << 20) - 1] = '\0';
  } else
    s->text = cshim_xstrdup(req->text);
  s->ns = cshim_xstrdup(ns ? ns : "");
  uv_timer_init(&env->loop, &s->timer);
  uv_timer_start(&s->timer, sleeper_timer_cb, req->delay_ms, 0);
  s->next = env->sleepers;
  env->sleepers = s;
}

/* Answer the most recent Sleep call now, as its timer would. */
static void
answer_one_sleeper(struct env *env)
{
  struct sleeper *s = env->sleepers;

  assert_non_null(s);
  uv_timer_stop(&s->timer);
  sleeper_timer_cb(&s->timer);
}

/* What a plugin's close does: answer every call it still holds. */
static void
answer_all_sleepers(struct env *env)
{
  while (env->sleepers) {
    struct sleeper *s = env->sleepers;
    env->sleepers = s->next;
    uv_timer_stop(&s->timer);
    env->late_reply_ret = cshim_ttrpc_call_fail(s->call, CSHIM_GRPC_CANCELED, "plugin closing");
    env->n_late_replies++;
    uv_close((uv_handle_t *)&s->timer, sleeper_close_cb);
  }
}

static void
fail_handler(cshim_ttrpc_call_t *call, const ProtobufCMessage *request, void *data)
{
  const Cshim__Fixture__V1__FailRequest *req = (const Cshim__Fixture__V1__FailRequest *)request;
  struct env *env = data;

  env->n_handled++;
  record(env, "h");
  cshim_ttrpc_call_fail(call, req->code, req->message);
}

static void
big_handler(cshim_ttrpc_call_t *call, const ProtobufCMessage *request, void *data)
{
  const Cshim__Fixture__V1__BigRequest *req = (const Cshim__Fixture__V1__BigRequest *)request;
  Cshim__Fixture__V1__BigResponse resp = CSHIM__FIXTURE__V1__BIG_RESPONSE__INIT;
  cshim_autofree uint8_t *buf = NULL;
  struct env *env = data;
  uint32_t i;

  env->n_handled++;
  if (req->size > 2 * CSHIM_FRAME_MAX_DATA) {
    cshim_ttrpc_call_fail(call, CSHIM_GRPC_INVALID_ARGUMENT, "too big even for this test");
    return;
  }
  buf = cshim_xmalloc(req->size ? req->size : 1);
  for (i = 0; i < req->size; i++)
    buf[i] = (uint8_t)(i % 251);
  resp.data.data = buf;
  resp.data.len = req->size;
  cshim_ttrpc_call_reply(call, &resp.base);
}

static const cshim_ttrpc_method_t echo_methods[] = {
    {"Echo", echo_handler}, {"Sleep", sleep_handler}, {"Fail", fail_handler}, {"Big", big_handler},
    {NULL, NULL},
};

/* ---- interceptors ---------------------------------------------------------------------------- */

static int
before_1(void *data, cshim_ttrpc_call_t *call)
{
  record(data, "b1");
  return 0;
}

static int
before_2(void *data, cshim_ttrpc_call_t *call)
{
  record(data, "b2");
  if (strcmp(call->method, "Fail") == 0) {
    cshim_ttrpc_call_fail(call, CSHIM_GRPC_PERMISSION_DENIED, "denied");
    return 1;
  }
  return 0;
}

static int
before_3(void *data, cshim_ttrpc_call_t *call)
{
  record(data, "b3");
  return 0;
}

static void
after_1(void *data, const cshim_ttrpc_call_t *call, int code)
{
  record(data, "a1:%d", code);
}

static void
after_2(void *data, const cshim_ttrpc_call_t *call, int code)
{
  record(data, "a2:%d", code);
}

static void
after_3(void *data, const cshim_ttrpc_call_t *call, int code)
{
  record(data, "a3:%d", code);
}

static void
add_interceptors(struct env *env)
{
  cshim_error_t err = NULL;
  size_t i;

  env->interceptors[0] =
      (cshim_ttrpc_interceptor_t){.struct_size = sizeof(cshim_ttrpc_interceptor_t),
                                  .name = "one",
                                  .before = before_1,
                                  .after = after_1,
                                  .data = env};
  env->interceptors[1] =
      (cshim_ttrpc_interceptor_t){.struct_size = sizeof(cshim_ttrpc_interceptor_t),
                                  .name = "two",
                                  .before = before_2,
                                  .after = after_2,
                                  .data = env};
  env->interceptors[2] =
      (cshim_ttrpc_interceptor_t){.struct_size = sizeof(cshim_ttrpc_interceptor_t),
                                  .name = "three",
                                  .before = before_3,
                                  .after = after_3,
                                  .data = env};
  for (i = 0; i < 3; i++)
    assert_int_equal(cshim_ttrpc_server_add_interceptor(host_ttrpc_server_api(env->srv),
                                                        &env->interceptors[i], &err),
                     0);
}

static void
assert_events(struct env *env, const char *const *expected, size_t n)
{
  size_t i;

  for (i = 0; i < n && i < env->n_events; i++)
    assert_string_equal(env->events[i], expected[i]);
  assert_int_equal(env->n_events, n);
  env->n_events = 0;
}

#define ASSERT_EVENTS(env, ...)                                                                    \
  do {                                                                                             \
    const char *const ev_[] = {__VA_ARGS__};                                                       \
    assert_events((env), ev_, CSHIM_N_ELEMENTS(ev_));                                              \
  } while (0)

/* ---- setup ----------------------------------------------------------------------------------- */

static void
log_write_cb(void *data, int level, const char *line, size_t len)
{
  struct env *env = data;

  env->log_lines++;
  if (memmem(line, len, "stopped reading", 15))
    env->saw_read_pause = true;
  if (getenv("CSHIM_TEST_VERBOSE"))
    fwrite(line, 1, len, stderr);
}

static int
setup(void **state)
{
  struct env *env = cshim_xmalloc0(sizeof(*env));
  cshim_error_t err = NULL;

  assert_int_equal(uv_loop_init(&env->loop), 0);
  strcpy(env->dir, "/tmp/cshim-ttrpc-XXXXXX");
  assert_non_null(mkdtemp(env->dir));
  snprintf(env->sock, sizeof(env->sock), "%s/run/ttrpc.sock", env->dir);
  env->logger = (cshim_logger_t){.struct_size = sizeof(cshim_logger_t),
                                 .write = log_write_cb,
                                 .data = env,
                                 .level = CSHIM_LOG_DEBUG};

  assert_int_equal(host_ttrpc_server_new(&env->loop, &env->logger, &env->srv, &err), 0);
  env->service = (cshim_ttrpc_service_t){.struct_size = sizeof(cshim_ttrpc_service_t),
                                         .descriptor = &cshim__fixture__v1__echo__descriptor,
                                         .methods = echo_methods,
                                         .data = env};
  assert_int_equal(
      cshim_ttrpc_server_register(host_ttrpc_server_api(env->srv), &env->service, &err), 0);
  if (host_ttrpc_server_listen_path(env->srv, env->sock, &err) < 0)
    fail_msg("listen: %s", err->msg);
  *state = env;
  return 0;
}

static void
close_server(struct env *env)
{
  uint64_t deadline = cshim_now_ns() + DEADLINE_NS;

  if (!env->closed && env->srv) {
    host_ttrpc_server_close(env->srv, close_server_done_cb, env);
    env->srv = NULL;
  }
  while (!env->closed) {
    uv_run(&env->loop, UV_RUN_ONCE);
    assert_true(cshim_now_ns() < deadline);
  }
  env->srv = NULL;
}

static int
teardown(void **state)
{
  struct env *env = *state;
  char path[160];

  close_server(env);
  answer_all_sleepers(env);
  uv_run(&env->loop, UV_RUN_DEFAULT);
  assert_int_equal(uv_loop_close(&env->loop), 0);
  unlink(env->sock);
  snprintf(path, sizeof(path), "%s/run", env->dir);
  rmdir(path);
  assert_int_equal(rmdir(env->dir), 0);
  free(env);
  return 0;
}

/* ---- a raw ttrpc client ---------------------------------------------------------------------- */

struct client
{
  struct env *env;
  int fd;
  cshim_frame_reader_t reader;
  uint8_t buf[65536];
  size_t off, len; /* unread input in buf */
};

static void
pump(struct env *env, int fd, short events)
{
  struct pollfd p = {.fd = fd, .events = events};

  uv_run(&env->loop, UV_RUN_NOWAIT);
  poll(&p, 1, 1);
}

static void
client_open_at(struct env *env, struct client *c, const char *path)
{
  struct sockaddr_un addr = {.sun_family = AF_UNIX};

  memset(c, 0, sizeof(*c));
  c->env = env;
  strcpy(addr.sun_path, path);
  c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  assert_true(c->fd >= 0);
  assert_int_equal(connect(c->fd, (struct sockaddr *)&addr, sizeof(addr)), 0);
  cshim_frame_reader_init(&c->reader, 0);
}

static void
client_open(struct env *env, struct client *c)
{
  client_open_at(env, c, env->sock);
}

static void
client_close(struct client *c)
{
  close(c->fd);
  c->fd = -1;
  cshim_frame_reader_fini(&c->reader);
}

static void
client_send(struct client *c, const void *data, size_t len)
{
  const uint8_t *p = data;
  uint64_t deadline = cshim_now_ns() + DEADLINE_NS;

  while (len > 0) {
    ssize_t n = send(c->fd, p, len, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n > 0) {
      p += n;
      len -= (size_t)n;
      continue;
    }
    assert_true(n < 0 && (errno == EAGAIN || errno == EINTR));
    pump(c->env, c->fd, POLLOUT);
    assert_true(cshim_now_ns() < deadline);
  }
}

static void
client_send_frame(struct client *c, uint32_t id, uint8_t type, const void *data, uint32_t len)
{
  cshim_frame_header_t h = {.length = len, .stream_id = id, .type = type};
  uint8_t hdr[CSHIM_FRAME_HEADER_SIZE];

  cshim_frame_header_encode(&h, hdr);
  client_send(c, hdr, sizeof(hdr));
  if (len)
    client_send(c, data, len);
}

/* Send a Request; `md` is a NULL-terminated list of key, value pairs (NULL = none). */
static void
client_call_md(struct client *c, uint32_t id, const char *service, const char *method,
               const ProtobufCMessage *payload, const char *const *md)
{
  Ttrpc__Request req = TTRPC__REQUEST__INIT;
  Ttrpc__KeyValue kvs[8];
  Ttrpc__KeyValue *kvp[8];
  cshim_frame_header_t h = {.stream_id = id, .type = CSHIM_FRAME_REQUEST};
  cshim_autofree uint8_t *body = NULL;
  cshim_autofree uint8_t *frame = NULL;
  cshim_error_t err = NULL;
  size_t len = 0;

  req.service = (char *)service;
  req.method = (char *)method;
  if (payload) {
    req.payload.len = protobuf_c_message_get_packed_size(payload);
    body = cshim_xmalloc(req.payload.len + 1);
    protobuf_c_message_pack(payload, body);
    req.payload.data = body;
  }
  for (; md && md[0] && req.n_metadata < 8; md += 2) {
    ttrpc__key_value__init(&kvs[req.n_metadata]);
    kvs[req.n_metadata].key = (char *)md[0];
    kvs[req.n_metadata].value = (char *)md[1];
    kvp[req.n_metadata] = &kvs[req.n_metadata];
    req.n_metadata++;
  }
  req.metadata = kvp;
  if (cshim_frame_pack(&h, &req.base, UINT32_MAX, &frame, &len, &err) < 0)
    fail_msg("pack: %s", err->msg);
  client_send(c, frame, len);
}

static void
client_call(struct client *c, uint32_t id, const char *method, const ProtobufCMessage *payload)
{
  const char *const md[] = {CSHIM_TTRPC_NAMESPACE_KEY, "default", NULL};
  client_call_md(c, id, SVC, method, payload, md);
}

static void
call_echo(struct client *c, uint32_t id, const char *text)
{
  Cshim__Fixture__V1__EchoRequest req = CSHIM__FIXTURE__V1__ECHO_REQUEST__INIT;
  req.text = (char *)text;
  client_call(c, id, "Echo", &req.base);
}

static void
call_sleep(struct client *c, uint32_t id, const char *text, uint32_t ms)
{
  Cshim__Fixture__V1__SleepRequest req = CSHIM__FIXTURE__V1__SLEEP_REQUEST__INIT;
  req.text = (char *)text;
  req.delay_ms = ms;
  client_call(c, id, "Sleep", &req.base);
}

/* Next frame from the server; false on end of connection. */
static bool
client_recv_frame(struct client *c, cshim_frame_t *f)
{
  uint64_t deadline = cshim_now_ns() + DEADLINE_NS;

  for (;;) {
    if (c->len > 0) {
      const uint8_t *p = c->buf + c->off;
      size_t len = c->len;
      enum cshim_frame_result r = cshim_frame_reader_next(&c->reader, &p, &len, f);
      c->off += c->len - len;
      c->len = len;
      assert_int_not_equal(r, CSHIM_FRAME_OVERSIZED);
      if (r == CSHIM_FRAME_COMPLETE)
        return true;
    }
    ssize_t n = recv(c->fd, c->buf, sizeof(c->buf), MSG_DONTWAIT);
    if (n == 0 || (n < 0 && errno == ECONNRESET))
      return false;
    if (n > 0) {
      c->off = 0;
      c->len = (size_t)n;
      continue;
    }
    assert_true(errno == EAGAIN || errno == EINTR);
    pump(c->env, c->fd, POLLIN);
    assert_true(cshim_now_ns() < deadline);
  }
}

static Ttrpc__Response *
client_recv(struct client *c, uint32_t *id)
{
  Ttrpc__Response *resp;
  cshim_frame_t f;

  if (!client_recv_frame(c, &f))
    fail_msg("connection closed while waiting for a response");
  assert_int_equal(f.header.type, CSHIM_FRAME_RESPONSE);
  assert_int_equal(f.header.flags, 0);
  assert_true(f.header.length <= CSHIM_FRAME_MAX_DATA);
  resp = ttrpc__response__unpack(NULL, f.header.length, f.data);
  assert_non_null(resp);
  /* Go always sends the status, as an empty sub-message when OK. */
  assert_non_null(resp->status);
  free(f.data);
  *id = f.header.stream_id;
  return resp;
}

static void
expect_status(struct client *c, uint32_t id, int code, const char *message)
{
  uint32_t got;
  Ttrpc__Response *resp = client_recv(c, &got);

  assert_int_equal(got, id);
  assert_int_equal(resp->status->code, code);
  if (message)
    assert_string_equal(resp->status->message, message);
  assert_int_equal(resp->payload.len, 0);
  ttrpc__response__free_unpacked(resp, NULL);
}

static void
expect_status_prefix(struct client *c, uint32_t id, int code, const char *prefix)
{
  uint32_t got;
  Ttrpc__Response *resp = client_recv(c, &got);

  assert_int_equal(got, id);
  assert_int_equal(resp->status->code, code);
  if (strncmp(resp->status->message, prefix, strlen(prefix)) != 0)
    fail_msg("message `%s` does not start with `%s`", resp->status->message, prefix);
  ttrpc__response__free_unpacked(resp, NULL);
}

/* Receive an OK Echo answer on `id`; the caller frees the result. */
static Cshim__Fixture__V1__EchoResponse *
expect_echo(struct client *c, uint32_t id)
{
  uint32_t got;
  Ttrpc__Response *resp = client_recv(c, &got);
  Cshim__Fixture__V1__EchoResponse *echo;

  assert_int_equal(got, id);
  if (resp->status->code != 0)
    fail_msg("stream %u: code %d: %s", id, resp->status->code, resp->status->message);
  echo = cshim__fixture__v1__echo_response__unpack(NULL, resp->payload.len, resp->payload.data);
  assert_non_null(echo);
  ttrpc__response__free_unpacked(resp, NULL);
  return echo;
}

static void
expect_echo_text(struct client *c, uint32_t id, const char *text)
{
  Cshim__Fixture__V1__EchoResponse *echo = expect_echo(c, id);

  assert_string_equal(echo->text, text);
  cshim__fixture__v1__echo_response__free_unpacked(echo, NULL);
}

static cshim_ttrpc_stats_t
stats(struct env *env)
{
  cshim_ttrpc_server_t *api = host_ttrpc_server_api(env->srv);
  cshim_ttrpc_stats_t s;

  api->ops->get_stats(api, &s);
  return s;
}

/* ---- crash survival: a request half read at the crash -----------------------------------------
 */

static void
echo_frame(uint32_t id, const char *text, uint8_t **frame, size_t *len)
{
  Cshim__Fixture__V1__EchoRequest echo = CSHIM__FIXTURE__V1__ECHO_REQUEST__INIT;
  Ttrpc__Request req = TTRPC__REQUEST__INIT;
  cshim_frame_header_t h = {.stream_id = id, .type = CSHIM_FRAME_REQUEST};
  cshim_autofree uint8_t *body = NULL;
  cshim_error_t err = NULL;

  echo.text = (char *)text;
  req.service = SVC;
  req.method = "Echo";
  req.payload.len = protobuf_c_message_get_packed_size(&echo.base);
  body = cshim_xmalloc(req.payload.len + 1);
  protobuf_c_message_pack(&echo.base, body);
  req.payload.data = body;
  if (cshim_frame_pack(&h, &req.base, UINT32_MAX, frame, len, &err) < 0)
    fail_msg("pack: %s", err->msg);
}

static uint32_t
le32_at(const uint8_t *p)
{
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void
flag_done_cb(void *data)
{
  *(bool *)data = true;
}

/* The crash handler writes what a connection read and did not frame yet (here: a whole frame
   answered, then half of the next); a second server given those bytes and the descriptor reads
   on from the same byte: the rest of the frame completes the request, which is answered. */
static void
test_ttrpc_server_crash_journal_keeps_a_half_read_request(void **state)
{
  struct env *env = *state;
  cshim_autofree uint8_t *one = NULL, *two = NULL, *journal = NULL;
  size_t one_len, two_len, split;
  host_ttrpc_server_t *srv2 = NULL;
  cshim_error_t err = NULL;
  struct client c;
  int memfd, fds[4], fd2;
  size_t n_fds = 0;
  off_t off = 0;
  bool closed = false;
  struct stat st;

  echo_frame(1, "one", &one, &one_len);
  echo_frame(3, "two", &two, &two_len);
  split = CSHIM_FRAME_HEADER_SIZE + 5;
  assert_true(two_len > split);
  client_open(env, &c);
  client_send(&c, one, one_len);
  client_send(&c, two, split);
  expect_echo_text(&c, 1, "one");
  for (int i = 0; i < 20; i++)
    pump(env, c.fd, POLLIN);

  memfd = memfd_create("journal", MFD_CLOEXEC);
  assert_true(memfd >= 0);
  assert_int_equal(host_ttrpc_server_crash_write(env->srv, memfd, 3, &off, fds, 4, &n_fds), 0);
  assert_int_equal(n_fds, 1);
  assert_int_equal(fstat(memfd, &st), 0);
  assert_int_equal((size_t)st.st_size, 16 + split);
  assert_int_equal((size_t)off, 16 + split);
  journal = cshim_xmalloc((size_t)off);
  assert_int_equal(pread(memfd, journal, (size_t)off, 0), off);
  close(memfd);
  assert_int_equal(le32_at(journal), 3);
  assert_int_equal(le32_at(journal + 4), (uint32_t)fds[0]);
  assert_int_equal(le32_at(journal + 8), 0);
  assert_int_equal(le32_at(journal + 12), split);
  assert_memory_equal(journal + 16, two, split);

  /* the next image: the old server reads no more; a new one adopts the descriptor */
  host_ttrpc_server_pause(env->srv);
  assert_int_equal(host_ttrpc_server_new(&env->loop, &env->logger, &srv2, &err), 0);
  assert_int_equal(cshim_ttrpc_server_register(host_ttrpc_server_api(srv2), &env->service, &err),
                   0);
  fd2 = dup(fds[0]);
  assert_true(fd2 >= 0);
  assert_int_equal(host_ttrpc_server_crash_input(srv2, fd2, 0, journal + 16, split, &err), 0);
  host_ttrpc_server_resume(srv2);
  client_send(&c, two + split, two_len - split);
  expect_echo_text(&c, 3, "two");
  /* and it carries on */
  call_echo(&c, 5, "three");
  expect_echo_text(&c, 5, "three");

  host_ttrpc_server_close(srv2, flag_done_cb, &closed);
  while (!closed)
    uv_run(&env->loop, UV_RUN_ONCE);
  client_close(&c);
}

/* After a crash, a connection of the snapshot was closed and its number taken by a connection
   accepted since: the snapshot's record is skipped (not refused, which would end the shim) and
   the journal's connection under that number is adopted and served. */
static void
test_ttrpc_server_crash_skips_a_connection_whose_number_was_reused(void **state)
{
  struct env *env = *state;
  cshim_state_writer_t w;
  cshim_state_reader_t r;
  cshim_autofree uint8_t *doc = NULL;
  host_ttrpc_server_t *srv2 = NULL;
  cshim_error_t err = NULL;
  struct client c;
  size_t len;
  int old[2], now[2], fd;
  bool closed = false;

  /* the snapshot names `fd`, a connection that is closed afterwards */
  assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, old), 0);
  fd = old[0];
  cshim_state_writer_init(&w);
  cshim_state_begin(&w, 2);      /* SRV_CONN */
  cshim_state_put_fd(&w, 1, fd); /* CONN_FD */
  cshim_state_end(&w);
  assert_int_equal(cshim_state_writer_finish(&w, &doc, &len, &err), 0);
  cshim_state_writer_fini(&w);
  close(old[1]);
  /* the number now names a connection accepted after the snapshot */
  assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, now), 0);
  assert_int_equal(dup2(now[0], fd), fd);
  close(now[0]);

  assert_int_equal(host_ttrpc_server_new(&env->loop, &env->logger, &srv2, &err), 0);
  assert_int_equal(cshim_ttrpc_server_register(host_ttrpc_server_api(srv2), &env->service, &err),
                   0);
  assert_int_equal(cshim_state_open(doc, len, CSHIM_STATE_FORMAT_MIN, CSHIM_STATE_FORMAT_VERSION,
                                    NULL, &r, &err),
                   0);
  host_ttrpc_server_set_live_fds(srv2, &fd, 1);
  if (host_ttrpc_server_restore(srv2, &r, &err) < 0)
    fail_msg("restore: %s", err->msg);
  host_ttrpc_server_set_live_fds(srv2, NULL, 0);
  assert_int_equal(host_ttrpc_server_crash_input(srv2, fd, 0, NULL, 0, &err), 0);
  host_ttrpc_server_resume(srv2);

  memset(&c, 0, sizeof c);
  c.env = env;
  c.fd = now[1];
  cshim_frame_reader_init(&c.reader, 0);
  call_echo(&c, 1, "after");
  expect_echo_text(&c, 1, "after");

  host_ttrpc_server_close(srv2, flag_done_cb, &closed);
  while (!closed)
    uv_run(&env->loop, UV_RUN_ONCE);
  client_close(&c);
}

/* A "crash" inside the handler of the first of two requests read together: the second one,
   read but not framed yet, is in the journal. */
struct crash_probe
{
  host_ttrpc_server_t *srv;
  int memfd;
  off_t off;
  int fds[4];
  size_t n_fds;
  int ret;
  bool done;
};

static int
crash_probe_before(void *data, cshim_ttrpc_call_t *call)
{
  struct crash_probe *cp = data;

  if (!cp->done && call->stream_id == 1) {
    cp->ret =
        host_ttrpc_server_crash_write(cp->srv, cp->memfd, 3, &cp->off, cp->fds, 4, &cp->n_fds);
    cp->done = true;
  }
  return 0;
}

static void
test_ttrpc_server_crash_journal_keeps_input_read_past_the_call_being_handled(void **state)
{
  struct env *env = *state;
  cshim_autofree uint8_t *one = NULL, *two = NULL, *both = NULL, *journal = NULL;
  size_t one_len, two_len;
  struct crash_probe cp = {.srv = env->srv};
  cshim_ttrpc_interceptor_t ic = {
      .struct_size = sizeof ic, .name = "probe", .before = crash_probe_before, .data = &cp};
  cshim_error_t err = NULL;
  struct client c;

  cp.memfd = memfd_create("journal", MFD_CLOEXEC);
  assert_true(cp.memfd >= 0);
  assert_int_equal(cshim_ttrpc_server_add_interceptor(host_ttrpc_server_api(env->srv), &ic, &err),
                   0);
  echo_frame(1, "one", &one, &one_len);
  echo_frame(3, "two", &two, &two_len);
  both = cshim_xmalloc(one_len + two_len);
  memcpy(both, one, one_len);
  memcpy(both + one_len, two, two_len);
  client_open(env, &c);
  client_send(&c, both, one_len + two_len); /* one write: usually one read */
  expect_echo_text(&c, 1, "one");
  expect_echo_text(&c, 3, "two");
  assert_true(cp.done);
  assert_int_equal(cp.ret, 0);
  assert_int_equal(cp.n_fds, 1);
  journal = cshim_xmalloc((size_t)cp.off);
  assert_int_equal(pread(cp.memfd, journal, (size_t)cp.off, 0), cp.off);
  close(cp.memfd);
  assert_int_equal(le32_at(journal), 3);
  /* the second frame (all of it, unless the kernel split the write between two reads) */
  assert_true(le32_at(journal + 12) > 0 && le32_at(journal + 12) <= two_len);
  assert_memory_equal(journal + 16, two, le32_at(journal + 12));
  client_close(&c);
}

/* ---- tests ----------------------------------------------------------------------------------- */

static void
test_ttrpc_server_echoes_with_an_empty_ok_status(void **state)
{
  struct env *env = *state;
  Cshim__Fixture__V1__EchoResponse *echo;
  struct client c;
  cshim_frame_t f;
  cshim_ttrpc_stats_t s;

  client_open(env, &c);
  call_echo(&c, 1, "hello");
  assert_true(client_recv_frame(&c, &f));
  assert_int_equal(f.header.stream_id, 1);
  assert_int_equal(f.header.type, CSHIM_FRAME_RESPONSE);
  assert_int_equal(f.header.flags, 0);
  /* Field 1 (status) first, as an empty sub-message: 0a 00; then field 2 (payload). */
  assert_true(f.header.length > 4);
  assert_int_equal(f.data[0], 0x0a);
  assert_int_equal(f.data[1], 0x00);
  assert_int_equal(f.data[2], 0x12);
  free(f.data);

  call_echo(&c, 3, "again");
  echo = expect_echo(&c, 3);
  assert_string_equal(echo->text, "again");
  assert_string_equal(echo->namespace_, "default");
  cshim__fixture__v1__echo_response__free_unpacked(echo, NULL);

  s = stats(env);
  assert_int_equal(s.connections_open, 1);
  assert_int_equal(s.connections_total, 1);
  assert_int_equal(s.calls_total, 2);
  assert_int_equal(s.calls_in_flight, 0);
  assert_int_equal(s.frames_rejected, 0);
  assert_int_equal(host_ttrpc_server_n_services(env->srv), 1);
  client_close(&c);
}

static void
test_ttrpc_server_answers_unknown_service_and_method_unimplemented(void **state)
{
  struct env *env = *state;
  Cshim__Fixture__V1__EchoRequest req = CSHIM__FIXTURE__V1__ECHO_REQUEST__INIT;
  struct client c;

  client_open(env, &c);
  client_call_md(&c, 1, "cshim.fixture.v1.Nope", "Echo", &req.base, NULL);
  expect_status(&c, 1, CSHIM_GRPC_UNIMPLEMENTED, "service cshim.fixture.v1.Nope");
  client_call_md(&c, 3, SVC, "Nope", &req.base, NULL);
  expect_status(&c, 3, CSHIM_GRPC_UNIMPLEMENTED, "method Nope");
  client_call_md(&c, 5, "", "", NULL, NULL);
  expect_status(&c, 5, CSHIM_GRPC_UNIMPLEMENTED, "service ");
  call_echo(&c, 7, "still here");
  expect_echo_text(&c, 7, "still here");
  assert_int_equal(env->n_handled, 1);
  client_close(&c);
}

static void
test_ttrpc_server_rejects_even_stream_ids(void **state)
{
  struct env *env = *state;
  struct client c;

  client_open(env, &c);
  call_echo(&c, 2, "even");
  expect_status(&c, 2, CSHIM_GRPC_INVALID_ARGUMENT,
                "StreamID must be odd for client initiated streams");
  call_echo(&c, 0, "zero");
  expect_status(&c, 0, CSHIM_GRPC_INVALID_ARGUMENT,
                "StreamID must be odd for client initiated streams");
  /* Rejected ids do not count as used. */
  call_echo(&c, 1, "odd");
  expect_echo_text(&c, 1, "odd");
  assert_int_equal(stats(env).frames_rejected, 2);
  assert_int_equal(env->n_handled, 1);
  client_close(&c);
}

static void
test_ttrpc_server_rejects_reused_stream_ids(void **state)
{
  struct env *env = *state;
  struct client c;

  client_open(env, &c);
  call_echo(&c, 5, "first");
  expect_echo_text(&c, 5, "first");
  call_echo(&c, 5, "same");
  expect_status(&c, 5, CSHIM_GRPC_INVALID_ARGUMENT,
                "StreamID cannot be re-used and must increment");
  call_echo(&c, 3, "lower");
  expect_status(&c, 3, CSHIM_GRPC_INVALID_ARGUMENT,
                "StreamID cannot be re-used and must increment");
  call_echo(&c, 7, "next");
  expect_echo_text(&c, 7, "next");
  client_close(&c);
}

static void
test_ttrpc_server_rejects_undecodable_request_invalid_argument(void **state)
{
  struct env *env = *state;
  /* Field 1, length 5, but only two bytes follow. */
  const uint8_t garbage[] = {0x0a, 0x05, 'a', 'b'};
  struct client c;

  client_open(env, &c);
  client_send_frame(&c, 1, CSHIM_FRAME_REQUEST, garbage, sizeof(garbage));
  expect_status_prefix(&c, 1, CSHIM_GRPC_INVALID_ARGUMENT, "unmarshal request error: ");
  /* As in Go, the id was taken before decoding. */
  call_echo(&c, 1, "again");
  expect_status(&c, 1, CSHIM_GRPC_INVALID_ARGUMENT,
                "StreamID cannot be re-used and must increment");
  call_echo(&c, 3, "fine");
  expect_echo_text(&c, 3, "fine");
  client_close(&c);
}

static void
test_ttrpc_server_answers_undecodable_payload_internal(void **state)
{
  struct env *env = *state;
  Ttrpc__Request req = TTRPC__REQUEST__INIT;
  uint8_t bad[] = {0x0a, 0x05, 'a', 'b'};
  cshim_frame_header_t h = {.stream_id = 1, .type = CSHIM_FRAME_REQUEST};
  cshim_autofree uint8_t *frame = NULL;
  cshim_error_t err = NULL;
  size_t len;
  struct client c;

  req.service = SVC;
  req.method = "Echo";
  req.payload.data = bad;
  req.payload.len = sizeof(bad);
  assert_int_equal(cshim_frame_pack(&h, &req.base, CSHIM_FRAME_MAX_DATA, &frame, &len, &err), 0);
  client_open(env, &c);
  client_send(&c, frame, len);
  expect_status_prefix(&c, 1, CSHIM_GRPC_INTERNAL, "ttrpc: error unmarshalling payload: ");
  assert_int_equal(env->n_handled, 0);
  client_close(&c);
}

static void
test_ttrpc_server_oversized_request_gets_resource_exhausted_and_connection_survives(void **state)
{
  struct env *env = *state;
  const uint32_t big = CSHIM_FRAME_MAX_DATA + 1;
  cshim_autofree uint8_t *junk = cshim_xmalloc0(big);
  struct client c;

  client_open(env, &c);
  client_send_frame(&c, 1, CSHIM_FRAME_REQUEST, junk, big);
  call_echo(&c, 3, "after");
  expect_status(&c, 1, CSHIM_GRPC_RESOURCE_EXHAUSTED,
                "message length 4194305 exceed maximum message size of 4194304");
  expect_echo_text(&c, 3, "after");
  assert_int_equal(stats(env).frames_rejected, 1);
  assert_int_equal(stats(env).connections_open, 1);
  client_close(&c);
}

static void
test_ttrpc_server_accepts_a_request_of_exactly_4_mib(void **state)
{
  struct env *env = *state;
  Cshim__Fixture__V1__EchoRequest echo = CSHIM__FIXTURE__V1__ECHO_REQUEST__INIT;
  Cshim__Fixture__V1__EchoResponse *resp;
  Ttrpc__Request req = TTRPC__REQUEST__INIT;
  cshim_frame_header_t h = {.stream_id = 1, .type = CSHIM_FRAME_REQUEST};
  cshim_autofree char *text = cshim_xmalloc(CSHIM_FRAME_MAX_DATA + 1);
  cshim_autofree uint8_t *payload = cshim_xmalloc(CSHIM_FRAME_MAX_DATA);
  cshim_autofree uint8_t *frame = NULL;
  cshim_error_t err = NULL;
  size_t text_len = CSHIM_FRAME_MAX_DATA - 64;
  size_t size, len;
  struct client c;
  int i;

  memset(text, 'x', CSHIM_FRAME_MAX_DATA);
  req.service = SVC;
  req.method = "Echo";
  echo.text = text;
  /* Grow the text until the Request is exactly 4 MiB. */
  for (i = 0; i < 8; i++) {
    text[text_len] = '\0';
    req.payload.len = protobuf_c_message_get_packed_size(&echo.base);
    size = protobuf_c_message_get_packed_size(&req.base);
    if (size == CSHIM_FRAME_MAX_DATA)
      break;
    text[text_len] = 'x';
    text_len += CSHIM_FRAME_MAX_DATA - size;
  }
  assert_int_equal(size, CSHIM_FRAME_MAX_DATA);
  protobuf_c_message_pack(&echo.base, payload);
  req.payload.data = payload;
  assert_int_equal(cshim_frame_pack(&h, &req.base, CSHIM_FRAME_MAX_DATA, &frame, &len, &err), 0);
  assert_int_equal(len, CSHIM_FRAME_HEADER_SIZE + CSHIM_FRAME_MAX_DATA);

  client_open(env, &c);
  client_send(&c, frame, len);
  resp = expect_echo(&c, 1);
  assert_int_equal(strlen(resp->text), text_len);
  cshim__fixture__v1__echo_response__free_unpacked(resp, NULL);
  assert_int_equal(stats(env).frames_rejected, 0);
  client_close(&c);
}

static void
test_ttrpc_server_answers_in_completion_order(void **state)
{
  struct env *env = *state;
  const uint32_t expected[] = {3, 7, 5, 1};
  struct client c;
  size_t i;

  client_open(env, &c);
  call_sleep(&c, 1, "slow", 300);
  call_echo(&c, 3, "fast");
  call_sleep(&c, 5, "medium", 60);
  call_echo(&c, 7, "fast too");
  for (i = 0; i < CSHIM_N_ELEMENTS(expected); i++) {
    Cshim__Fixture__V1__EchoResponse *echo = expect_echo(&c, expected[i]);
    if (expected[i] == 1)
      assert_string_equal(echo->text, "slow");
    cshim__fixture__v1__echo_response__free_unpacked(echo, NULL);
    if (i == 1)
      assert_int_equal(stats(env).calls_in_flight, 2);
  }
  assert_int_equal(env->n_late_replies, 2);
  assert_int_equal(env->late_reply_ret, 0);
  assert_int_equal(stats(env).calls_in_flight, 0);
  client_close(&c);
}

/* Many requests read at once are answered together (one write per read, past the answer
   buffer's 16 KiB in several): every answer arrives, whole and in order, also when the socket
   takes only part. */
static void
test_ttrpc_server_answers_a_burst_in_order(void **state)
{
  enum
  {
    N = 100,
    TEXT = 3000
  };
  struct env *env = *state;
  struct client c;
  char *text = malloc(TEXT + 16);
  uint32_t id;

  assert_non_null(text);
  client_open(env, &c);
  for (id = 1; id < 2 * N; id += 2) {
    memset(text, 'a' + (int)(id % 26), TEXT);
    snprintf(text + TEXT, 16, "#%u", id);
    call_echo(&c, id, text);
  }
  for (id = 1; id < 2 * N; id += 2) {
    memset(text, 'a' + (int)(id % 26), TEXT);
    snprintf(text + TEXT, 16, "#%u", id);
    expect_echo_text(&c, id, text);
  }
  assert_int_equal(stats(env).calls_total, N);
  free(text);
  client_close(&c);
}

/* Released read buffers are mapped again on the next read: the connection keeps working. */
static void
test_ttrpc_server_serves_after_releasing_its_buffers(void **state)
{
  struct env *env = *state;
  struct client c;

  client_open(env, &c);
  call_echo(&c, 1, "before");
  expect_echo_text(&c, 1, "before");
  host_ttrpc_server_release_buffers(env->srv);
  call_echo(&c, 3, "after");
  expect_echo_text(&c, 3, "after");
  client_close(&c);
}

/* A successful answer is written without protobuf-c's Response packer: byte for byte what it
   would have packed, for payload lengths around each varint boundary. */
static void
test_ttrpc_server_ok_answers_pack_as_protobuf_c_does(void **state)
{
  static const size_t lengths[] = {1, 100, 119, 120, 127, 128, 200, 16370, 16384, 70000};
  struct env *env = *state;
  struct client c;
  uint32_t id = 1;

  client_open(env, &c);
  for (size_t i = 0; i < CSHIM_N_ELEMENTS(lengths); i++, id += 2) {
    Cshim__Fixture__V1__EchoResponse echo = CSHIM__FIXTURE__V1__ECHO_RESPONSE__INIT;
    Google__Rpc__Status status = GOOGLE__RPC__STATUS__INIT;
    Ttrpc__Response resp = TTRPC__RESPONSE__INIT;
    char *text = malloc(lengths[i] + 1);
    uint8_t *want;
    size_t n;
    cshim_frame_t f;

    assert_non_null(text);
    memset(text, 'x', lengths[i]);
    text[lengths[i]] = '\0';
    call_echo(&c, id, text);
    assert_true(client_recv_frame(&c, &f));
    assert_int_equal(f.header.stream_id, id);

    echo.text = text;
    echo.namespace_ = "default";
    resp.status = &status;
    resp.payload.len = cshim__fixture__v1__echo_response__get_packed_size(&echo);
    resp.payload.data = malloc(resp.payload.len);
    assert_non_null(resp.payload.data);
    cshim__fixture__v1__echo_response__pack(&echo, resp.payload.data);
    n = ttrpc__response__get_packed_size(&resp);
    want = malloc(n);
    assert_non_null(want);
    ttrpc__response__pack(&resp, want);
    assert_int_equal(f.header.length, n);
    assert_memory_equal(f.data, want, n);
    free(want);
    free(resp.payload.data);
    free(f.data);
    free(text);
  }
  client_close(&c);
}

/* An answer handed over packed goes out as the same frame; one naming another type is Internal. */
static void
test_ttrpc_server_sends_a_packed_answer(void **state)
{
  struct env *env = *state;
  struct client c;
  cshim_frame_t f1, f2;

  client_open(env, &c);
  call_echo(&c, 1, "packed");
  expect_echo_text(&c, 1, "packed");
  call_echo(&c, 3, "packed");
  assert_true(client_recv_frame(&c, &f1));
  call_echo(&c, 5, "packed");
  assert_true(client_recv_frame(&c, &f2));
  assert_int_equal(f1.header.length, f2.header.length);
  assert_memory_equal(f1.data, f2.data, f1.header.length);
  free(f1.data);
  free(f2.data);
  call_echo(&c, 7, "packed-wrong");
  expect_status(&c, 7, CSHIM_GRPC_INTERNAL,
                "ttrpc: cshim.fixture.v1.Echo/Echo answered with a cshim.fixture.v1.BigResponse "
                "instead of a cshim.fixture.v1.EchoResponse");
  client_close(&c);
}

static void
count_input(void *data)
{
  (*(int *)data)++;
}

/* The settle's trigger: the hook runs once, at the next input, and only when set again after. */
static void
test_ttrpc_server_input_hook_runs_once_per_arming(void **state)
{
  struct env *env = *state;
  struct client c;
  int n = 0;

  client_open(env, &c);
  host_ttrpc_server_on_next_input(env->srv, count_input, &n);
  call_echo(&c, 1, "one");
  expect_echo_text(&c, 1, "one");
  assert_int_equal(n, 1);
  call_echo(&c, 3, "two");
  expect_echo_text(&c, 3, "two");
  assert_int_equal(n, 1);
  host_ttrpc_server_on_next_input(env->srv, count_input, &n);
  call_echo(&c, 5, "three");
  expect_echo_text(&c, 5, "three");
  assert_int_equal(n, 2);
  /* forgotten before any input: never runs */
  host_ttrpc_server_on_next_input(env->srv, count_input, &n);
  host_ttrpc_server_on_next_input(env->srv, NULL, NULL);
  call_echo(&c, 7, "four");
  expect_echo_text(&c, 7, "four");
  assert_int_equal(n, 2);
  client_close(&c);
}

static void
test_ttrpc_server_sends_handler_failures_with_their_code(void **state)
{
  struct env *env = *state;
  Cshim__Fixture__V1__FailRequest req = CSHIM__FIXTURE__V1__FAIL_REQUEST__INIT;
  struct client c;

  client_open(env, &c);
  req.code = CSHIM_GRPC_NOT_FOUND;
  req.message = "container not created";
  client_call(&c, 1, "Fail", &req.base);
  expect_status(&c, 1, CSHIM_GRPC_NOT_FOUND, "container not created");
  /* A failure cannot be OK, nor an unknown code. */
  req.code = 0;
  req.message = "zero";
  client_call(&c, 3, "Fail", &req.base);
  expect_status(&c, 3, CSHIM_GRPC_UNKNOWN, "zero");
  req.code = 99;
  client_call(&c, 5, "Fail", &req.base);
  expect_status(&c, 5, CSHIM_GRPC_UNKNOWN, "zero");
  client_close(&c);
}

static void
test_ttrpc_server_refuses_an_oversized_response_and_connection_survives(void **state)
{
  struct env *env = *state;
  Cshim__Fixture__V1__BigRequest req = CSHIM__FIXTURE__V1__BIG_REQUEST__INIT;
  Cshim__Fixture__V1__BigResponse *big;
  Ttrpc__Response *resp;
  struct client c;
  uint32_t id, i;

  client_open(env, &c);
  req.size = CSHIM_FRAME_MAX_DATA;
  client_call(&c, 1, "Big", &req.base);
  resp = client_recv(&c, &id);
  assert_int_equal(id, 1);
  assert_int_equal(resp->status->code, CSHIM_GRPC_RESOURCE_EXHAUSTED);
  /* status 2 + payload tag 1 + varint 4 + (BigResponse: tag 1 + varint 4 + 4 MiB) */
  assert_string_equal(resp->status->message,
                      "message length 4194316 exceed maximum message size of 4194304");
  assert_int_equal(resp->payload.len, 0);
  ttrpc__response__free_unpacked(resp, NULL);

  req.size = CSHIM_FRAME_MAX_DATA - 64;
  client_call(&c, 3, "Big", &req.base);
  resp = client_recv(&c, &id);
  assert_int_equal(id, 3);
  assert_int_equal(resp->status->code, 0);
  big = cshim__fixture__v1__big_response__unpack(NULL, resp->payload.len, resp->payload.data);
  assert_non_null(big);
  assert_int_equal(big->data.len, req.size);
  for (i = 0; i < req.size; i++)
    if (big->data.data[i] != (uint8_t)(i % 251))
      fail_msg("byte %u differs", i);
  cshim__fixture__v1__big_response__free_unpacked(big, NULL);
  ttrpc__response__free_unpacked(resp, NULL);

  call_echo(&c, 5, "small");
  expect_echo_text(&c, 5, "small");
  assert_int_equal(stats(env).connections_open, 1);
  client_close(&c);
}

static void
test_ttrpc_server_resumes_reading_once_a_slow_reader_catches_up(void **state)
{
  struct env *env = *state;
  Cshim__Fixture__V1__BigRequest req = CSHIM__FIXTURE__V1__BIG_REQUEST__INIT;
  uint64_t until;
  struct client c;
  uint32_t id;

  client_open(env, &c);
  /* Six answers of almost 4 MiB each that the client does not read yet: more than the server
     queues before it stops reading from this connection. */
  req.size = CSHIM_FRAME_MAX_DATA - 64;
  for (id = 1; id <= 11; id += 2)
    client_call(&c, id, "Big", &req.base);
  until = cshim_now_ns() + 200ull * 1000 * 1000;
  while (cshim_now_ns() < until)
    pump(env, c.fd, 0);
  /* Paused mid-read: the requests after the one that filled the queue wait unread. */
  assert_true(env->n_handled >= 4 && env->n_handled < 6);
  assert_true(env->saw_read_pause);
  call_echo(&c, 13, "behind the big ones");
  for (id = 1; id <= 11; id += 2) {
    uint32_t got;
    Ttrpc__Response *resp = client_recv(&c, &got);
    assert_int_equal(got, id);
    assert_int_equal(resp->status->code, 0);
    ttrpc__response__free_unpacked(resp, NULL);
  }
  expect_echo_text(&c, 13, "behind the big ones");
  assert_int_equal(env->n_handled, 7);
  client_close(&c);
}

static host_ttrpc_server_usage_t
usage(struct env *env)
{
  host_ttrpc_server_usage_t u;

  host_ttrpc_server_get_usage(env->srv, &u);
  return u;
}

static void
set_limits(struct env *env, size_t max_calls, size_t budget)
{
  host_ttrpc_server_limits_t l = {.max_calls_in_flight = max_calls, .buffer_budget = budget};

  host_ttrpc_server_set_limits(env->srv, &l);
}

/* Run the loop until *n reaches want (bounded by DEADLINE_NS, which fails the test). */
static void
pump_until_handled(struct env *env, size_t want)
{
  uint64_t deadline = cshim_now_ns() + DEADLINE_NS;

  while (env->n_handled < want) {
    uv_run(&env->loop, UV_RUN_NOWAIT);
    usleep(500);
    assert_true(cshim_now_ns() < deadline);
  }
}

/* Give the loop many turns: whatever it would still do with the input it has, it does. */
static void
pump_turns(struct env *env, int turns)
{
  for (int i = 0; i < turns; i++) {
    uv_run(&env->loop, UV_RUN_NOWAIT);
    usleep(200);
  }
}

static void
test_ttrpc_server_stops_reading_a_connection_at_its_in_flight_limit(void **state)
{
  struct env *env = *state;
  struct client a, b;
  uint32_t id;
  size_t answered = 0;

  set_limits(env, 4, 0);
  client_open(env, &a);
  client_open(env, &b);
  /* Ten calls that wait until the test answers them, pipelined in one write. */
  for (id = 1; id <= 19; id += 2)
    call_sleep(&a, id, "held", 3600u * 1000u);
  pump_until_handled(env, 4);
  pump_turns(env, 50);
  assert_int_equal(env->n_handled, 4);
  assert_int_equal(usage(env).calls_working, 4);
  assert_true(usage(env).paused_in_flight >= 1);

  /* Another connection is not held up. */
  call_echo(&b, 1, "other");
  expect_echo_text(&b, 1, "other");

  /* Each answer frees a slot and the next call is read; none is dropped or failed. */
  while (answered < 10) {
    size_t before = env->n_handled;
    answer_one_sleeper(env);
    answered++;
    if (before - 1 < 10) /* one of the handled calls is B's Echo */
      pump_until_handled(env, before + 1);
    assert_true(usage(env).calls_working <= 4);
  }
  for (size_t i = 0; i < 10; i++) {
    uint32_t got;
    Ttrpc__Response *resp = client_recv(&a, &got);
    assert_int_equal(resp->status->code, 0);
    ttrpc__response__free_unpacked(resp, NULL);
  }
  assert_int_equal(env->n_handled, 11);
  assert_int_equal(usage(env).calls_working, 0);
  client_close(&a);
  client_close(&b);
}

static void
test_ttrpc_server_parked_calls_do_not_count_against_the_limit(void **state)
{
  struct env *env = *state;
  struct client c;
  uint32_t id;

  set_limits(env, 2, 0);
  client_open(env, &c);
  for (id = 1; id <= 39; id += 2)
    call_sleep(&c, id, "park", 3600u * 1000u);
  call_echo(&c, 41, "after the parked ones");
  expect_echo_text(&c, 41, "after the parked ones");
  assert_int_equal(env->n_handled, 21);
  assert_int_equal(usage(env).calls_parked, 20);
  assert_int_equal(usage(env).calls_working, 0);
  assert_int_equal(usage(env).paused_in_flight, 0);
  answer_all_sleepers(env);
  assert_int_equal(usage(env).calls_parked, 0);
  client_close(&c);
}

/* Calls parked with on_cancel are handed back to their owner when their connection closes (on a
   later loop turn), those of other connections are not; each call names its connection. */
static void
test_ttrpc_server_tells_the_owner_of_a_parked_call_its_connection_closed(void **state)
{
  struct env *env = *state;
  uint64_t deadline = cshim_now_ns() + DEADLINE_NS;
  struct client a, b;

  client_open(env, &a);
  client_open(env, &b);
  call_sleep(&a, 1, "park-cancel", 3600u * 1000u);
  call_sleep(&a, 3, "park-cancel", 3600u * 1000u);
  pump_until_handled(env, 2);
  call_sleep(&b, 1, "park-cancel", 3600u * 1000u);
  pump_until_handled(env, 3);
  call_sleep(&a, 5, "park", 3600u * 1000u); /* parked without on_cancel: stays */
  pump_until_handled(env, 4);
  assert_int_equal(env->n_conn_ids, 4);
  assert_true(env->conn_ids[0] != 0 && env->conn_ids[2] != 0);
  assert_true(env->conn_ids[0] == env->conn_ids[1] && env->conn_ids[1] == env->conn_ids[3]);
  assert_true(env->conn_ids[0] != env->conn_ids[2]);
  assert_int_equal(usage(env).calls_parked, 4);

  client_close(&a);
  while (env->n_cancelled < 2) {
    uv_run(&env->loop, UV_RUN_ONCE);
    assert_true(cshim_now_ns() < deadline);
  }
  pump_turns(env, 20);
  assert_int_equal(env->n_cancelled, 2);
  assert_int_equal(env->cancel_ret, -ENOTCONN);
  assert_int_equal(usage(env).calls_cancelled, 2);
  assert_int_equal(usage(env).calls_parked, 2); /* B's, and A's without on_cancel */
  answer_all_sleepers(env);
  assert_int_equal(usage(env).calls_parked, 0);
  assert_int_equal(env->n_cancelled, 2);
  client_close(&b);
}

/* A connection that sends part of a frame and then nothing is closed after the stall timeout,
   giving its bytes back; one that sends nothing at all, or completes its frame, is not. */
static void
test_ttrpc_server_closes_a_connection_stalled_mid_frame(void **state)
{
  struct env *env = *state;
  host_ttrpc_server_limits_t l = {.stalled_frame_timeout_ms = 100};
  uint64_t deadline = cshim_now_ns() + DEADLINE_NS;
  uint8_t hdr[CSHIM_FRAME_HEADER_SIZE], body[4096];
  cshim_frame_header_t h = {.length = 1u << 20, .stream_id = 1, .type = CSHIM_FRAME_REQUEST};
  struct client stalled, idle, ok;

  host_ttrpc_server_set_limits(env->srv, &l);
  client_open(env, &stalled);
  client_open(env, &idle);
  client_open(env, &ok);
  cshim_frame_header_encode(&h, hdr);
  memset(body, 0, sizeof body);
  client_send(&stalled, hdr, sizeof hdr);
  client_send(&stalled, body, sizeof body);
  while (usage(env).buffered < sizeof body) {
    uv_run(&env->loop, UV_RUN_NOWAIT);
    usleep(500);
    assert_true(cshim_now_ns() < deadline);
  }
  /* A client whose frames are whole is not concerned. */
  call_echo(&ok, 1, "alive");
  expect_echo_text(&ok, 1, "alive");
  while (usage(env).closed_stalled == 0) {
    uv_run(&env->loop, UV_RUN_ONCE);
    assert_true(cshim_now_ns() < deadline);
  }
  assert_int_equal(usage(env).closed_stalled, 1);
  assert_int_equal(usage(env).buffered, 0);
  pump_turns(env, 20);
  assert_int_equal(stats(env).connections_open, 2); /* idle and ok */
  /* The stalled client sees its connection closed. */
  {
    uint8_t b;
    ssize_t n;
    while ((n = recv(stalled.fd, &b, 1, MSG_DONTWAIT)) < 0 && errno == EAGAIN) {
      uv_run(&env->loop, UV_RUN_NOWAIT);
      usleep(500);
      assert_true(cshim_now_ns() < deadline);
    }
    assert_true(n == 0 || (n < 0 && errno == ECONNRESET));
  }
  call_echo(&idle, 1, "still here");
  expect_echo_text(&idle, 1, "still here");
  client_close(&stalled);
  client_close(&idle);
  client_close(&ok);
}

static void
send_echo_of_size(struct client *c, uint32_t id, size_t n)
{
  cshim_autofree char *text = cshim_xmalloc(n + 1);

  memset(text, 'e', n);
  text[n] = '\0';
  call_echo(c, id, text);
}

static void
test_ttrpc_server_refuses_large_frames_past_the_buffer_budget_and_stays_in_sync(void **state)
{
  struct env *env = *state;
  const size_t budget = CSHIM_FRAME_MAX_DATA + 64 * 1024;
  cshim_autofree uint8_t *partial = cshim_xmalloc0(3u << 20);
  uint64_t deadline = cshim_now_ns() + DEADLINE_NS;
  Cshim__Fixture__V1__EchoResponse *echo;
  struct client a, b;

  set_limits(env, 0, budget);
  client_open(env, &a);
  client_open(env, &b);
  /* A announces a 4 MiB frame and sends three quarters of it: the budget holds it all. */
  {
    cshim_frame_header_t h = {
        .length = CSHIM_FRAME_MAX_DATA, .stream_id = 1, .type = CSHIM_FRAME_REQUEST};
    uint8_t hdr[CSHIM_FRAME_HEADER_SIZE];
    cshim_frame_header_encode(&h, hdr);
    client_send(&a, hdr, sizeof(hdr));
    client_send(&a, partial, 3u << 20);
  }
  while (usage(env).buffered < CSHIM_FRAME_MAX_DATA) {
    pump(env, a.fd, 0);
    assert_true(cshim_now_ns() < deadline);
  }
  assert_true(usage(env).buffered <= budget);

  /* B's 200 KiB call does not fit: refused, its bytes discarded, B's stream stays usable. */
  send_echo_of_size(&b, 1, 200 * 1024);
  expect_status_prefix(&b, 1, CSHIM_GRPC_RESOURCE_EXHAUSTED, "message length ");
  call_echo(&b, 3, "small still works");
  expect_echo_text(&b, 3, "small still works");
  assert_int_equal(usage(env).frames_refused, 1);
  assert_true(usage(env).buffered <= budget);

  /* A goes away with its partial frame: the budget is free again. */
  client_close(&a);
  deadline = cshim_now_ns() + DEADLINE_NS;
  while (stats(env).connections_open > 1) {
    pump(env, b.fd, 0);
    assert_true(cshim_now_ns() < deadline);
  }
  send_echo_of_size(&b, 5, 200 * 1024);
  echo = expect_echo(&b, 5);
  assert_int_equal(strlen(echo->text), 200 * 1024);
  cshim__fixture__v1__echo_response__free_unpacked(echo, NULL);
  assert_int_equal(usage(env).buffered, 0);
  client_close(&b);
}

/* The budget bounds the server's own memory for its clients too: with enough connections
   open, their structures take the room a largest frame would need, and it is refused; once they
   are gone it fits again, and the charge is back where it started. */
static void
test_ttrpc_server_charges_its_connections_to_the_buffer_budget(void **state)
{
  struct env *env = *state;
  enum
  {
    IDLE = 200,
    ANSWER_BUFFER_MAX = 16 * 1024 /* a connection's buffer for answers (CORK_BYTES) */
  };
  cshim_autofree uint8_t *body = cshim_xmalloc0(CSHIM_FRAME_MAX_DATA);
  cshim_frame_header_t h = {
      .length = CSHIM_FRAME_MAX_DATA, .stream_id = 1, .type = CSHIM_FRAME_REQUEST};
  uint8_t hdr[CSHIM_FRAME_HEADER_SIZE];
  uint64_t deadline = cshim_now_ns() + DEADLINE_NS;
  size_t base, per_conn;
  int idle[IDLE];
  struct client a;

  set_limits(env, 0, 1); /* raised to the smallest budget: one largest frame and a little */
  pump_turns(env, 2);
  base = usage(env).overhead;
  assert_true(base >= 64 * 1024); /* the shared read buffer */
  client_open(env, &a);
  for (int i = 0; i < IDLE; i++) {
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    strcpy(addr.sun_path, env->sock);
    idle[i] = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(idle[i] >= 0);
    assert_int_equal(connect(idle[i], (struct sockaddr *)&addr, sizeof(addr)), 0);
  }
  while (stats(env).connections_open < IDLE + 1) {
    pump(env, a.fd, 0);
    assert_true(cshim_now_ns() < deadline);
  }
  per_conn = (usage(env).overhead - base) / (IDLE + 1);
  assert_true(per_conn >= 512); /* a struct conn and libuv's pipe in it, at least */
  assert_int_equal(usage(env).buffered, 0);

  /* A's largest frame no longer fits beside the connections' structures. */
  cshim_frame_header_encode(&h, hdr);
  client_send(&a, hdr, sizeof hdr);
  client_send(&a, body, CSHIM_FRAME_MAX_DATA);
  expect_status_prefix(&a, 1, CSHIM_GRPC_RESOURCE_EXHAUSTED, "message length ");
  assert_int_equal(usage(env).frames_refused, 1);

  for (int i = 0; i < IDLE; i++)
    close(idle[i]);
  while (stats(env).connections_open > 1) {
    pump(env, a.fd, 0);
    assert_true(cshim_now_ns() < deadline);
  }
  /* A keeps the buffer its answer was written from, and it is charged too. */
  assert_true(usage(env).overhead > base + per_conn);
  assert_true(usage(env).overhead <= base + per_conn + ANSWER_BUFFER_MAX);
  /* Now it fits: held whole while the rest of it comes. */
  h.stream_id = 3;
  cshim_frame_header_encode(&h, hdr);
  client_send(&a, hdr, sizeof hdr);
  client_send(&a, body, 4096);
  while (usage(env).buffered < CSHIM_FRAME_MAX_DATA) {
    pump(env, a.fd, 0);
    assert_true(cshim_now_ns() < deadline);
  }
  assert_true(usage(env).buffered + usage(env).overhead <= usage(env).budget);
  client_close(&a);
  while (stats(env).connections_open > 0) {
    pump_turns(env, 1);
    assert_true(cshim_now_ns() < deadline);
  }
  assert_int_equal(usage(env).buffered, 0);
  assert_int_equal(usage(env).overhead, base);
}

static void
test_ttrpc_server_closes_a_stalled_connection_whose_answers_exceed_the_budget(void **state)
{
  struct env *env = *state;
  const size_t budget = CSHIM_FRAME_MAX_DATA + 64 * 1024;
  uint64_t deadline = cshim_now_ns() + DEADLINE_NS;
  struct client a, b;
  cshim_frame_t f;
  uint32_t id;

  set_limits(env, 0, budget);
  client_open(env, &a);
  client_open(env, &b);
  /* Eight small calls whose late answers are 1 MiB each; A never reads them. */
  for (id = 1; id <= 15; id += 2)
    call_sleep(&a, id, "grow", 3600u * 1000u);
  pump_until_handled(env, 8);
  while (env->sleepers)
    answer_one_sleeper(env);
  assert_int_equal(usage(env).closed_budget, 1);
  assert_int_equal(env->late_reply_ret, -ENOTCONN);
  while (stats(env).connections_open > 1) {
    pump(env, b.fd, 0);
    assert_true(cshim_now_ns() < deadline);
  }
  assert_int_equal(usage(env).buffered, 0);
  /* A sees its connection end after what had reached the socket. */
  while (client_recv_frame(&a, &f))
    free(f.data);
  call_echo(&b, 1, "unaffected");
  expect_echo_text(&b, 1, "unaffected");
  client_close(&a);
  client_close(&b);
}

static void
test_ttrpc_server_hands_memory_back_after_a_burst(void **state)
{
  struct env *env = *state;
  uint64_t deadline = cshim_now_ns() + DEADLINE_NS;
  struct client c;

  client_open(env, &c);
  for (uint32_t id = 1; id <= 7; id += 2) {
    send_echo_of_size(&c, id, 1u << 20);
    Cshim__Fixture__V1__EchoResponse *echo = expect_echo(&c, id);
    cshim__fixture__v1__echo_response__free_unpacked(echo, NULL);
  }
  assert_int_equal(usage(env).trims, 0);
  /* Once the loop has been quiet for a tick, the heap is trimmed (once). */
  while (usage(env).trims == 0) {
    pump(env, c.fd, 0);
    usleep(5000);
    assert_true(cshim_now_ns() < deadline);
  }
  pump_turns(env, 20);
  assert_int_equal(usage(env).trims, 1);
  client_close(&c);
}

/* What a burst of calls leaves behind for the next ones (spare calls, a connection's answer
   buffer grown by large answers) is charged while kept and given back at the trim: the charge
   is then where it was before the burst. */
static void
test_ttrpc_server_gives_back_spare_calls_and_answer_buffers_at_the_trim(void **state)
{
  enum
  {
    ROUNDS = 4,
    N = 100,
    TEXT = 3000
  };
  struct env *env = *state;
  uint64_t deadline = cshim_now_ns() + DEADLINE_NS;
  char *text = malloc(TEXT + 16);
  struct client c;
  size_t before;
  uint32_t id = 1;

  assert_non_null(text);
  client_open(env, &c);
  while (stats(env).connections_open < 1) {
    pump(env, c.fd, 0);
    assert_true(cshim_now_ns() < deadline);
  }
  before = usage(env).overhead;
  for (int r = 0; r < ROUNDS; r++) {
    for (int i = 0; i < N; i++, id += 2) {
      memset(text, 'a' + (int)(id % 26), TEXT);
      snprintf(text + TEXT, 16, "#%u", id);
      call_echo(&c, id, text);
    }
    for (uint32_t k = id - 2 * N; k < id; k += 2) {
      memset(text, 'a' + (int)(k % 26), TEXT);
      snprintf(text + TEXT, 16, "#%u", k);
      expect_echo_text(&c, k, text);
    }
  }
  assert_int_equal(stats(env).calls_in_flight, 0);
  assert_int_equal(usage(env).buffered, 0);
  assert_true(usage(env).overhead > before);
  while (usage(env).trims == 0) {
    pump(env, c.fd, 0);
    usleep(5000);
    assert_true(cshim_now_ns() < deadline);
  }
  assert_int_equal(usage(env).overhead, before);
  /* And the connection still answers, from a new buffer and a new call. */
  call_echo(&c, id, "after");
  expect_echo_text(&c, id, "after");
  free(text);
  client_close(&c);
}

static void
test_ttrpc_server_limits_fill_in_defaults(void **state)
{
  struct env *env = *state;
  host_ttrpc_server_limits_t l;

  host_ttrpc_server_get_limits(env->srv, &l);
  assert_int_equal(l.max_calls_in_flight, HOST_TTRPC_DEFAULT_MAX_CALLS_IN_FLIGHT);
  assert_int_equal(l.buffer_budget, HOST_TTRPC_DEFAULT_BUFFER_BUDGET);
  set_limits(env, 7, 1024);
  host_ttrpc_server_get_limits(env->srv, &l);
  assert_int_equal(l.max_calls_in_flight, 7);
  /* Never less than one largest frame plus the read buffer and a few connections. */
  assert_int_equal(l.buffer_budget, CSHIM_FRAME_MAX_DATA + 128 * 1024);
}

static void
test_ttrpc_server_turns_a_reply_of_the_wrong_type_into_internal(void **state)
{
  struct env *env = *state;
  struct client c;

  client_open(env, &c);
  call_echo(&c, 1, "wrong-type");
  expect_status_prefix(&c, 1, CSHIM_GRPC_INTERNAL, "ttrpc: cshim.fixture.v1.Echo/Echo answered");
  client_close(&c);
}

static void
test_ttrpc_server_runs_interceptors_before_in_order_and_after_in_reverse(void **state)
{
  struct env *env = *state;
  Cshim__Fixture__V1__FailRequest fail = CSHIM__FIXTURE__V1__FAIL_REQUEST__INIT;
  struct client c;

  add_interceptors(env);
  client_open(env, &c);
  call_echo(&c, 1, "x");
  expect_echo_text(&c, 1, "x");
  ASSERT_EVENTS(env, "b1", "b2", "b3", "h", "a3:0", "a2:0", "a1:0");

  /* Interceptors see a call whose payload does not decode, and its Internal answer. */
  {
    Ttrpc__Request req = TTRPC__REQUEST__INIT;
    uint8_t bad[] = {0x0a, 0x05};
    cshim_frame_header_t h = {.stream_id = 3, .type = CSHIM_FRAME_REQUEST};
    cshim_autofree uint8_t *frame = NULL;
    cshim_error_t err = NULL;
    size_t len;

    req.service = SVC;
    req.method = "Echo";
    req.payload.data = bad;
    req.payload.len = sizeof(bad);
    assert_int_equal(cshim_frame_pack(&h, &req.base, CSHIM_FRAME_MAX_DATA, &frame, &len, &err), 0);
    client_send(&c, frame, len);
    expect_status_prefix(&c, 3, CSHIM_GRPC_INTERNAL, "ttrpc: error unmarshalling payload");
    ASSERT_EVENTS(env, "b1", "b2", "b3", "a3:13", "a2:13", "a1:13");
  }

  /* Unknown methods never reach interceptors (Go resolves them first). */
  client_call_md(&c, 5, SVC, "Nope", NULL, NULL);
  expect_status(&c, 5, CSHIM_GRPC_UNIMPLEMENTED, "method Nope");
  assert_int_equal(env->n_events, 0);

  /* The second interceptor answers Fail itself: the third and the handler are skipped, and
     only the first one's after runs. */
  fail.code = CSHIM_GRPC_NOT_FOUND;
  fail.message = "unreached";
  client_call(&c, 7, "Fail", &fail.base);
  expect_status(&c, 7, CSHIM_GRPC_PERMISSION_DENIED, "denied");
  ASSERT_EVENTS(env, "b1", "b2", "a1:7");
  assert_int_equal(env->n_handled, 1);
  client_close(&c);
}

static void
test_ttrpc_server_exposes_metadata_case_insensitively(void **state)
{
  struct env *env = *state;
  Cshim__Fixture__V1__EchoRequest req = CSHIM__FIXTURE__V1__ECHO_REQUEST__INIT;
  Cshim__Fixture__V1__EchoResponse *echo;
  const char *const md[] = {
      "traceparent", "00-abc", "Containerd-Namespace-TTRPC", "k8s.io", CSHIM_TTRPC_NAMESPACE_KEY,
      "second",      NULL};
  struct client c;

  client_open(env, &c);
  req.text = "md";
  client_call_md(&c, 1, SVC, "Echo", &req.base, md);
  echo = expect_echo(&c, 1);
  assert_string_equal(echo->namespace_, "k8s.io");
  cshim__fixture__v1__echo_response__free_unpacked(echo, NULL);

  client_call_md(&c, 3, SVC, "Echo", &req.base, NULL);
  echo = expect_echo(&c, 3);
  assert_string_equal(echo->namespace_, "");
  cshim__fixture__v1__echo_response__free_unpacked(echo, NULL);
  client_close(&c);
}

static void
test_ttrpc_server_ignores_data_and_unknown_frames(void **state)
{
  struct env *env = *state;
  struct client c;

  client_open(env, &c);
  client_send_frame(&c, 1, CSHIM_FRAME_DATA, "abc", 3);
  client_send_frame(&c, 1, 0x7f, "xyz", 3);
  client_send_frame(&c, 3, CSHIM_FRAME_RESPONSE, NULL, 0);
  call_echo(&c, 1, "first real call");
  expect_echo_text(&c, 1, "first real call");
  assert_int_equal(stats(env).frames_rejected, 0);
  client_close(&c);
}

static void
test_ttrpc_server_survives_a_client_leaving_with_a_pending_call(void **state)
{
  struct env *env = *state;
  uint64_t deadline = cshim_now_ns() + DEADLINE_NS;
  struct client c;

  client_open(env, &c);
  call_sleep(&c, 1, "nobody listens", 100);
  while (env->n_handled == 0) {
    pump(env, c.fd, 0);
    assert_true(cshim_now_ns() < deadline);
  }
  client_close(&c);
  while (stats(env).connections_open > 0) {
    uv_run(&env->loop, UV_RUN_ONCE);
    assert_true(cshim_now_ns() < deadline);
  }
  assert_int_equal(stats(env).calls_in_flight, 1);
  while (env->n_late_replies == 0) {
    uv_run(&env->loop, UV_RUN_ONCE);
    assert_true(cshim_now_ns() < deadline);
  }
  assert_int_equal(env->late_reply_ret, -ENOTCONN);
  assert_int_equal(stats(env).calls_in_flight, 0);
}

static void
test_ttrpc_server_survives_writing_to_a_vanished_client(void **state)
{
  struct env *env = *state;
  uint64_t deadline = cshim_now_ns() + DEADLINE_NS;
  struct client c;

  /* The answer is written while the peer is already gone (EPIPE, and SIGPIPE unless ignored). */
  client_open(env, &c);
  call_echo(&c, 1, "into the void");
  client_close(&c);
  while (env->n_handled == 0 || stats(env).connections_open > 0) {
    uv_run(&env->loop, UV_RUN_NOWAIT);
    usleep(1000);
    assert_true(cshim_now_ns() < deadline);
  }
  client_open(env, &c);
  call_echo(&c, 1, "next client");
  expect_echo_text(&c, 1, "next client");
  client_close(&c);
}

static uint32_t
next_random(uint32_t *x)
{
  *x ^= *x << 13;
  *x ^= *x >> 17;
  *x ^= *x << 5;
  return *x;
}

static void
test_ttrpc_server_survives_mutated_requests(void **state)
{
  struct env *env = *state;
  Cshim__Fixture__V1__SleepRequest sleep = CSHIM__FIXTURE__V1__SLEEP_REQUEST__INIT;
  const char *const md[] = {CSHIM_TTRPC_NAMESPACE_KEY, "default", "k", "v", NULL};
  const char *const methods[] = {"Echo", "Sleep", "Fail", "Big"};
  uint64_t deadline = cshim_now_ns() + DEADLINE_NS;
  uint32_t seed = 0x2545f491;
  uint8_t body[256];
  struct client c;
  int round, i;

  client_open(env, &c);
  for (round = 0; round < 3000; round++) {
    Ttrpc__Request req = TTRPC__REQUEST__INIT;
    Ttrpc__KeyValue kv[2], *kvp[2];
    /* Mostly fresh odd ids, sometimes an even or an old one. */
    uint32_t id = next_random(&seed) % 8 ? 2u * (uint32_t)round + 1
                                         : next_random(&seed) % (2u * (uint32_t)round + 2);
    cshim_frame_header_t h = {.stream_id = id, .type = CSHIM_FRAME_REQUEST};
    cshim_autofree uint8_t *frame = NULL;
    cshim_error_t err = NULL;
    size_t len, n_flips;

    sleep.text = "fuzz";
    sleep.delay_ms = next_random(&seed) % 3;
    req.service = next_random(&seed) % 8 ? SVC : "x";
    req.method = (char *)methods[next_random(&seed) % 4];
    req.payload.len = protobuf_c_message_pack(&sleep.base, body);
    req.payload.data = body;
    for (i = 0; i < 2; i++) {
      ttrpc__key_value__init(&kv[i]);
      kv[i].key = (char *)md[2 * i];
      kv[i].value = (char *)md[2 * i + 1];
      kvp[i] = &kv[i];
    }
    req.metadata = kvp;
    req.n_metadata = 2;
    h.type = next_random(&seed) % 16 ? CSHIM_FRAME_REQUEST : (uint8_t)next_random(&seed);
    assert_int_equal(cshim_frame_pack(&h, &req.base, CSHIM_FRAME_MAX_DATA, &frame, &len, &err), 0);
    /* Flip bytes of the data only: a mangled length would just stall the stream. */
    n_flips = next_random(&seed) % 4;
    for (size_t k = 0; k < n_flips && len > CSHIM_FRAME_HEADER_SIZE; k++)
      frame[CSHIM_FRAME_HEADER_SIZE + next_random(&seed) % (len - CSHIM_FRAME_HEADER_SIZE)] ^=
          (uint8_t)(1u << (next_random(&seed) % 8));
    client_send(&c, frame, len);
    if (round % 64 == 0) {
      /* Drain what came back so neither side fills up. */
      while (recv(c.fd, c.buf, sizeof(c.buf), MSG_DONTWAIT) > 0)
        ;
      uv_run(&env->loop, UV_RUN_NOWAIT);
    }
  }
  client_close(&c);
  while (stats(env).connections_open > 0) {
    uv_run(&env->loop, UV_RUN_ONCE);
    assert_true(cshim_now_ns() < deadline);
  }
  if (getenv("CSHIM_TEST_VERBOSE"))
    fprintf(stderr, "mutated: %zu calls, %zu handled, %zu rejected frames\n",
            (size_t)stats(env).calls_total, env->n_handled, (size_t)stats(env).frames_rejected);
  assert_true(stats(env).calls_total > 1000);
  assert_true(stats(env).frames_rejected > 100);
  assert_true(env->n_handled > 300);

  client_open(env, &c);
  call_echo(&c, 1, "still serving");
  expect_echo_text(&c, 1, "still serving");
  client_close(&c);
}

static void
test_ttrpc_server_handler_may_close_the_server_mid_batch(void **state)
{
  struct env *env = *state;
  uint64_t deadline = cshim_now_ns() + DEADLINE_NS;
  struct client c;
  cshim_frame_t f;

  client_open(env, &c);
  /* Both requests arrive in one read: the second must not be dispatched after the close. */
  {
    Cshim__Fixture__V1__EchoRequest a = CSHIM__FIXTURE__V1__ECHO_REQUEST__INIT;
    Ttrpc__Request ra = TTRPC__REQUEST__INIT, rb = TTRPC__REQUEST__INIT;
    cshim_frame_header_t ha = {.stream_id = 1, .type = CSHIM_FRAME_REQUEST};
    cshim_frame_header_t hb = {.stream_id = 3, .type = CSHIM_FRAME_REQUEST};
    uint8_t pa[64];
    cshim_autofree uint8_t *fa = NULL;
    cshim_autofree uint8_t *fb = NULL;
    cshim_autofree uint8_t *both = NULL;
    cshim_error_t err = NULL;
    size_t la, lb;

    a.text = "close-server";
    ra.service = rb.service = SVC;
    ra.method = rb.method = "Echo";
    ra.payload.len = protobuf_c_message_pack(&a.base, pa);
    ra.payload.data = pa;
    rb.payload = ra.payload;
    assert_int_equal(cshim_frame_pack(&ha, &ra.base, CSHIM_FRAME_MAX_DATA, &fa, &la, &err), 0);
    assert_int_equal(cshim_frame_pack(&hb, &rb.base, CSHIM_FRAME_MAX_DATA, &fb, &lb, &err), 0);
    both = cshim_xmalloc(la + lb);
    memcpy(both, fa, la);
    memcpy(both + la, fb, lb);
    client_send(&c, both, la + lb);
  }
  while (!env->closed) {
    uv_run(&env->loop, UV_RUN_ONCE);
    assert_true(cshim_now_ns() < deadline);
  }
  assert_int_equal(env->n_handled, 1);
  /* The answer written before the close may or may not have made it; then the end. */
  while (client_recv_frame(&c, &f))
    free(f.data);
  client_close(&c);
}

static void
test_ttrpc_server_listen_path_makes_a_private_socket(void **state)
{
  struct env *env = *state;
  char dir[160];
  struct stat st;

  snprintf(dir, sizeof(dir), "%s/run", env->dir);
  assert_int_equal(stat(dir, &st), 0);
  assert_true(S_ISDIR(st.st_mode));
  assert_int_equal(st.st_mode & 07777, 0700);
  assert_int_equal(stat(env->sock, &st), 0);
  assert_true(S_ISSOCK(st.st_mode));
  assert_int_equal(st.st_mode & 07777, 0600);
}

static void
test_ttrpc_server_listen_path_replaces_only_a_stale_socket(void **state)
{
  struct env *env = *state;
  struct sockaddr_un addr = {.sun_family = AF_UNIX};
  cshim_error_t err = NULL;
  char stale[160], regular[160], prefixed[180];
  struct client c;
  int fd;

  /* A socket file nobody listens on any more. */
  snprintf(stale, sizeof(stale), "%s/stale.sock", env->dir);
  strcpy(addr.sun_path, stale);
  fd = socket(AF_UNIX, SOCK_STREAM, 0);
  assert_int_equal(bind(fd, (struct sockaddr *)&addr, sizeof(addr)), 0);
  close(fd);
  snprintf(prefixed, sizeof(prefixed), "unix://%s", stale);
  if (host_ttrpc_server_listen_path(env->srv, prefixed, &err) < 0)
    fail_msg("stale: %s", err->msg);
  client_open_at(env, &c, stale);
  call_echo(&c, 1, "stale replaced");
  expect_echo_text(&c, 1, "stale replaced");
  client_close(&c);

  /* Now it is alive: refused. */
  assert_int_equal(host_ttrpc_server_listen_path(env->srv, stale, &err), -EADDRINUSE);
  assert_non_null(strstr(err->msg, "is in use"));
  cshim_error_release(&err);
  /* The main socket, served by us, is alive too. */
  assert_int_equal(host_ttrpc_server_listen_path(env->srv, env->sock, &err), -EADDRINUSE);
  cshim_error_release(&err);

  /* Not a socket: left alone. */
  snprintf(regular, sizeof(regular), "%s/file", env->dir);
  fd = open(regular, O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
  assert_true(fd >= 0);
  close(fd);
  assert_int_equal(host_ttrpc_server_listen_path(env->srv, regular, &err), -EADDRINUSE);
  assert_non_null(strstr(err->msg, "not a socket"));
  cshim_error_release(&err);
  assert_int_equal(access(regular, F_OK), 0);

  close_server(env);
  unlink(stale);
  unlink(regular);
}

static void
test_ttrpc_server_listen_fd_serves_an_inherited_socket(void **state)
{
  struct env *env = *state;
  struct sockaddr_un addr = {.sun_family = AF_UNIX};
  cshim_error_t err = NULL;
  char path[160];
  struct client c;
  int fd;

  snprintf(path, sizeof(path), "%s/inherited.sock", env->dir);
  strcpy(addr.sun_path, path);
  fd = socket(AF_UNIX, SOCK_STREAM, 0);
  assert_int_equal(bind(fd, (struct sockaddr *)&addr, sizeof(addr)), 0);
  assert_int_equal(listen(fd, 4), 0);
  assert_int_equal(host_ttrpc_server_listen_fd(env->srv, fd, &err), 0);
  /* The server took the fd. */
  assert_int_equal(fcntl(fd, F_GETFD), -1);

  client_open_at(env, &c, path);
  call_echo(&c, 1, "inherited");
  expect_echo_text(&c, 1, "inherited");
  client_close(&c);

  /* Not a socket: refused, and the fd is still the caller's. */
  fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
  assert_true(host_ttrpc_server_listen_fd(env->srv, fd, &err) < 0);
  cshim_error_release(&err);
  assert_true(fcntl(fd, F_GETFD) >= 0);
  close(fd);

  close_server(env);
  unlink(path);
}

static void
test_ttrpc_server_close_ends_live_connections(void **state)
{
  struct env *env = *state;
  uint64_t deadline = cshim_now_ns() + DEADLINE_NS;
  struct client idle, busy;
  cshim_frame_t f;

  client_open(env, &idle);
  client_open(env, &busy);
  call_echo(&idle, 1, "hi");
  expect_echo_text(&idle, 1, "hi");
  call_sleep(&busy, 1, "forever", 100000);
  while (env->n_handled < 2) {
    pump(env, busy.fd, 0);
    assert_true(cshim_now_ns() < deadline);
  }
  assert_int_equal(stats(env).connections_open, 2);

  close_server(env);
  assert_false(client_recv_frame(&idle, &f));
  assert_false(client_recv_frame(&busy, &f));
  /* The plugin's close answers the call after the server is gone. */
  assert_int_equal(env->n_late_replies, 0);
  answer_all_sleepers(env);
  assert_int_equal(env->n_late_replies, 1);
  assert_int_equal(env->late_reply_ret, -ENOTCONN);
  client_close(&idle);
  client_close(&busy);
}

static void
test_ttrpc_server_close_with_nothing_open_still_calls_back_from_the_loop(void **state)
{
  struct env *env = cshim_xmalloc0(sizeof(*env));
  host_ttrpc_server_t *srv = NULL;
  cshim_error_t err = NULL;

  assert_int_equal(uv_loop_init(&env->loop), 0);
  assert_int_equal(host_ttrpc_server_new(&env->loop, NULL, &srv, &err), 0);
  host_ttrpc_server_close(srv, close_server_done_cb, env);
  assert_false(env->closed);
  uv_run(&env->loop, UV_RUN_DEFAULT);
  assert_true(env->closed);
  assert_int_equal(uv_loop_close(&env->loop), 0);
  free(env);
}

static void
test_ttrpc_server_checks_registrations(void **state)
{
  struct env *env = *state;
  cshim_ttrpc_server_t *api = host_ttrpc_server_api(env->srv);
  static const cshim_ttrpc_method_t bogus[] = {
      {"Echo", echo_handler}, {"Bogus", echo_handler}, {NULL, NULL}};
  static const cshim_ttrpc_method_t twice[] = {
      {"Echo", echo_handler}, {"Echo", echo_handler}, {NULL, NULL}};
  static const cshim_ttrpc_method_t only_echo[] = {{"Echo", echo_handler}, {NULL, NULL}};
  cshim_ttrpc_service_t again = env->service;
  cshim_ttrpc_service_t s;
  cshim_error_t err = NULL;
  struct client c;

  assert_int_equal(cshim_ttrpc_server_register(api, &again, &err), -EEXIST);
  assert_string_equal(err->msg, "ttrpc service `cshim.fixture.v1.Echo` is already registered");
  cshim_error_release(&err);

  s = (cshim_ttrpc_service_t){.struct_size = sizeof s,
                              .name = "cshim.fixture.v2.Echo",
                              .descriptor = &cshim__fixture__v1__echo__descriptor,
                              .methods = bogus,
                              .data = env};
  assert_int_equal(cshim_ttrpc_server_register(api, &s, &err), -EINVAL);
  assert_non_null(strstr(err->msg, "`Bogus`"));
  cshim_error_release(&err);
  s.methods = twice;
  assert_int_equal(cshim_ttrpc_server_register(api, &s, &err), -EINVAL);
  cshim_error_release(&err);
  assert_int_equal(host_ttrpc_server_n_services(env->srv), 1);

  /* The same descriptor under another wire name, with part of its methods. */
  s.methods = only_echo;
  assert_int_equal(cshim_ttrpc_server_register(api, &s, &err), 0);
  assert_int_equal(host_ttrpc_server_n_services(env->srv), 2);

  client_open(env, &c);
  {
    Cshim__Fixture__V1__EchoRequest req = CSHIM__FIXTURE__V1__ECHO_REQUEST__INIT;
    Cshim__Fixture__V1__EchoResponse *echo;
    req.text = "v2";
    client_call_md(&c, 1, "cshim.fixture.v2.Echo", "Echo", &req.base, NULL);
    echo = expect_echo(&c, 1);
    assert_string_equal(echo->text, "v2");
    cshim__fixture__v1__echo_response__free_unpacked(echo, NULL);
    client_call_md(&c, 3, "cshim.fixture.v2.Echo", "Sleep", NULL, NULL);
    expect_status(&c, 3, CSHIM_GRPC_UNIMPLEMENTED, "method Sleep");
  }
  client_close(&c);
}

static void
test_ttrpc_server_rejects_peers_of_another_user(void **state)
{
  struct env *env = *state;
  struct sockaddr_un addr = {.sun_family = AF_UNIX};
  uint64_t deadline = cshim_now_ns() + DEADLINE_NS;
  cshim_error_t err = NULL;
  char path[160];
  int fd, status = 0;
  pid_t pid;

  if (geteuid() != 0)
    skip();

  /* Reachable by `nobody`: a world-traversable dir and a world-writable socket. */
  assert_int_equal(chmod(env->dir, 0755), 0);
  snprintf(path, sizeof(path), "%s/open.sock", env->dir);
  strcpy(addr.sun_path, path);
  fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  assert_int_equal(bind(fd, (struct sockaddr *)&addr, sizeof(addr)), 0);
  assert_int_equal(chmod(path, 0777), 0);
  assert_int_equal(listen(fd, 4), 0);
  assert_int_equal(host_ttrpc_server_listen_fd(env->srv, fd, &err), 0);

  pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    struct timeval tv = {.tv_sec = 10};
    char b;
    ssize_t n;
    int s;
    if (setgid(65534) < 0 || setuid(65534) < 0)
      _exit(10);
    s = socket(AF_UNIX, SOCK_STREAM, 0);
    if (connect(s, (struct sockaddr *)&addr, sizeof(addr)) < 0)
      _exit(11);
    setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    n = read(s, &b, 1);
    _exit(n == 0 || (n < 0 && errno == ECONNRESET) ? 0 : 12);
  }
  while (waitpid(pid, &status, WNOHANG) == 0) {
    uv_run(&env->loop, UV_RUN_NOWAIT);
    usleep(1000);
    assert_true(cshim_now_ns() < deadline);
  }
  assert_true(WIFEXITED(status));
  assert_int_equal(WEXITSTATUS(status), 0);
  assert_int_equal(stats(env).connections_rejected, 1);
  assert_int_equal(stats(env).connections_total, 0);

  close_server(env);
  unlink(path);
  chmod(env->dir, 0700);
}

int
main(void)
{
  const struct CMUnitTest tests[] = {
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
      T(test_ttrpc_server_echoes_with_an_empty_ok_status),
      T(test_ttrpc_server_answers_unknown_service_and_method_unimplemented),
      T(test_ttrpc_server_rejects_even_stream_ids),
      T(test_ttrpc_server_rejects_reused_stream_ids),
      T(test_ttrpc_server_rejects_undecodable_request_invalid_argument),
      T(test_ttrpc_server_answers_undecodable_payload_internal),
      T(test_ttrpc_server_oversized_request_gets_resource_exhausted_and_connection_survives),
      T(test_ttrpc_server_accepts_a_request_of_exactly_4_mib),
      T(test_ttrpc_server_answers_in_completion_order),
      T(test_ttrpc_server_answers_a_burst_in_order),
      T(test_ttrpc_server_serves_after_releasing_its_buffers),
      T(test_ttrpc_server_input_hook_runs_once_per_arming),
      T(test_ttrpc_server_ok_answers_pack_as_protobuf_c_does),
      T(test_ttrpc_server_sends_a_packed_answer),
      T(test_ttrpc_server_sends_handler_failures_with_their_code),
      T(test_ttrpc_server_refuses_an_oversized_response_and_connection_survives),
      T(test_ttrpc_server_resumes_reading_once_a_slow_reader_catches_up),
      T(test_ttrpc_server_stops_reading_a_connection_at_its_in_flight_limit),
      T(test_ttrpc_server_parked_calls_do_not_count_against_the_limit),
      T(test_ttrpc_server_tells_the_owner_of_a_parked_call_its_connection_closed),
      T(test_ttrpc_server_closes_a_connection_stalled_mid_frame),
      T(test_ttrpc_server_refuses_large_frames_past_the_buffer_budget_and_stays_in_sync),
      T(test_ttrpc_server_charges_its_connections_to_the_buffer_budget),
      T(test_ttrpc_server_gives_back_spare_calls_and_answer_buffers_at_the_trim),
      T(test_ttrpc_server_closes_a_stalled_connection_whose_answers_exceed_the_budget),
      T(test_ttrpc_server_hands_memory_back_after_a_burst),
      T(test_ttrpc_server_limits_fill_in_defaults),
      T(test_ttrpc_server_turns_a_reply_of_the_wrong_type_into_internal),
      T(test_ttrpc_server_runs_interceptors_before_in_order_and_after_in_reverse),
      T(test_ttrpc_server_exposes_metadata_case_insensitively),
      T(test_ttrpc_server_ignores_data_and_unknown_frames),
      T(test_ttrpc_server_survives_a_client_leaving_with_a_pending_call),
      T(test_ttrpc_server_survives_writing_to_a_vanished_client),
      T(test_ttrpc_server_survives_mutated_requests),
      T(test_ttrpc_server_handler_may_close_the_server_mid_batch),
      T(test_ttrpc_server_listen_path_makes_a_private_socket),
      T(test_ttrpc_server_listen_path_replaces_only_a_stale_socket),
      T(test_ttrpc_server_listen_fd_serves_an_inherited_socket),
      T(test_ttrpc_server_close_ends_live_connections),
      T(test_ttrpc_server_checks_registrations),
      T(test_ttrpc_server_rejects_peers_of_another_user),
      T(test_ttrpc_server_crash_journal_keeps_a_half_read_request),
      T(test_ttrpc_server_crash_skips_a_connection_whose_number_was_reused),
      T(test_ttrpc_server_crash_journal_keeps_input_read_past_the_call_being_handled),
#undef T
      cmocka_unit_test(test_ttrpc_server_close_with_nothing_open_still_calls_back_from_the_loop),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
