// SPDX-License-Identifier: Apache-2.0
// Tests of sdk/src/ttrpc_client.c against a scripted raw ttrpc server on a real Unix socket.
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

#include <cshim/frame.h>
#include <cshim/ttrpc.h>
#include <cshim/ttrpc_client.h>
#include <cshim/util.h>

#include "google/rpc/status.pb-c.h"
#include "ttrpc/request.pb-c.h"

/* Last: cmocka defines a `fail` macro that would clash with cshim_ttrpc_call_ops_t.fail. */
#include <cmocka.h>

#define MAX_REQUESTS 64
#define SERVICE "test.v1.Echo"

/* ---- a raw ttrpc server whose answers each test scripts -------------------------------- */

typedef struct fake_server_s fake_server_t;

typedef struct fake_conn_s
{
  uv_pipe_t pipe;
  fake_server_t *srv;
  cshim_frame_reader_t reader;
  bool open;
} fake_conn_t;

typedef struct received_s
{
  uint32_t stream_id;
  Ttrpc__Request *req; /* owned */
  fake_conn_t *conn;
} received_t;

typedef enum
{
  SERVE_ECHO,     /* answer at once with Status{code = stream id, message = request message} */
  SERVE_HOLD,     /* keep requests for the test to answer */
  SERVE_FAIL,     /* answer with status fail_code */
  SERVE_OVERSIZE, /* answer with a frame header announcing more than 4 MiB, then the bytes */
} serve_mode_t;

struct fake_server_s
{
  uv_loop_t *loop;
  uv_pipe_t listener;
  bool listening;
  char dir[64];
  char path[128];
  serve_mode_t mode;
  int fail_code;
  fake_conn_t *conns[8];
  size_t n_conns;
  received_t received[MAX_REQUESTS];
  size_t n_received;
  unsigned open_handles;
};

static void
server_handle_close_cb(uv_handle_t *h)
{
  fake_server_t *srv = h->data;

  if (h != (uv_handle_t *)&srv->listener) {
    fake_conn_t *c = CSHIM_CONTAINER_OF(h, fake_conn_t, pipe);
    for (size_t i = 0; i < srv->n_conns; i++)
      if (srv->conns[i] == c)
        srv->conns[i] = NULL;
    cshim_frame_reader_fini(&c->reader);
    free(c);
  }
  srv->open_handles--;
}

static void
server_write_cb(uv_write_t *req, int status)
{
  free(req->data);
  free(req);
}

static void
server_write(fake_conn_t *c, const uint8_t *bytes, size_t len)
{
  uv_write_t *w = cshim_xmalloc0(sizeof *w);
  uint8_t *copy = cshim_xmemdup(bytes, len);
  uv_buf_t b = uv_buf_init((char *)copy, (unsigned)len);

  w->data = copy;
  assert_int_equal(uv_write(w, (uv_stream_t *)&c->pipe, &b, 1, server_write_cb), 0);
}

static void
server_reply(fake_conn_t *c, uint32_t stream_id, int code, const char *message,
             const ProtobufCMessage *payload)
{
  Ttrpc__Response resp = TTRPC__RESPONSE__INIT;
  Google__Rpc__Status status = GOOGLE__RPC__STATUS__INIT;
  cshim_frame_header_t h = {.stream_id = stream_id, .type = CSHIM_FRAME_RESPONSE};
  cshim_autofree uint8_t *pl = NULL;
  cshim_autofree uint8_t *frame = NULL;
  size_t frame_len;

  status.code = code;
  status.message = (char *)(message ? message : "");
  resp.status = &status;
  if (payload) {
    resp.payload.len = protobuf_c_message_get_packed_size(payload);
    pl = cshim_xmalloc(resp.payload.len);
    protobuf_c_message_pack(payload, pl);
    resp.payload.data = pl;
  }
  assert_int_equal(cshim_frame_pack(&h, &resp.base, CSHIM_FRAME_MAX_DATA, &frame, &frame_len, NULL),
                   0);
  server_write(c, frame, frame_len);
}

static void
server_echo(fake_conn_t *c, received_t *r)
{
  Google__Rpc__Status out = GOOGLE__RPC__STATUS__INIT;
  Google__Rpc__Status *in =
      google__rpc__status__unpack(NULL, r->req->payload.len, r->req->payload.data);

  out.code = (int32_t)r->stream_id;
  out.message = in ? in->message : (char *)"";
  server_reply(c, r->stream_id, 0, NULL, &out.base);
  if (in)
    google__rpc__status__free_unpacked(in, NULL);
}

static void
server_close_conn(fake_conn_t *c)
{
  if (!c->open)
    return;
  c->open = false;
  uv_close((uv_handle_t *)&c->pipe, server_handle_close_cb);
}

static void
server_frame(fake_conn_t *c, const cshim_frame_t *f)
{
  fake_server_t *srv = c->srv;
  received_t *r;

  assert_int_equal(f->header.type, CSHIM_FRAME_REQUEST);
  assert_true(srv->n_received < MAX_REQUESTS);
  r = &srv->received[srv->n_received++];
  r->stream_id = f->header.stream_id;
  r->conn = c;
  r->req = ttrpc__request__unpack(NULL, f->header.length, f->data);
  assert_non_null(r->req);

  switch (srv->mode) {
  case SERVE_ECHO:
    server_echo(c, r);
    break;
  case SERVE_HOLD:
    break;
  case SERVE_FAIL:
    server_reply(c, r->stream_id, srv->fail_code, "no such thing", NULL);
    break;
  case SERVE_OVERSIZE: {
    size_t n = CSHIM_FRAME_MAX_DATA + 1;
    uint8_t *big = cshim_xmalloc0(CSHIM_FRAME_HEADER_SIZE + n);
    cshim_frame_header_t h = {
        .length = (uint32_t)n, .stream_id = r->stream_id, .type = CSHIM_FRAME_RESPONSE};

    cshim_frame_header_encode(&h, big);
    server_write(c, big, CSHIM_FRAME_HEADER_SIZE + n);
    free(big);
    srv->mode = SERVE_ECHO;
    break;
  }
  }
}

static void
server_alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
  buf->base = cshim_xmalloc(suggested);
  buf->len = suggested;
}

static void
server_read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
  fake_conn_t *c = CSHIM_CONTAINER_OF(s, fake_conn_t, pipe);
  const uint8_t *p = (const uint8_t *)buf->base;
  size_t len = nread > 0 ? (size_t)nread : 0;

  if (nread < 0)
    server_close_conn(c);
  while (len > 0 && c->open) {
    cshim_frame_t f = {0};
    if (cshim_frame_reader_next(&c->reader, &p, &len, &f) == CSHIM_FRAME_NEED_MORE)
      break;
    server_frame(c, &f);
    free(f.data);
  }
  free(buf->base);
}

static void
server_connection_cb(uv_stream_t *listener, int status)
{
  fake_server_t *srv = listener->data;
  fake_conn_t *c = cshim_xmalloc0(sizeof *c);

  assert_int_equal(status, 0);
  c->srv = srv;
  c->open = true;
  cshim_frame_reader_init(&c->reader, 0);
  uv_pipe_init(srv->loop, &c->pipe, 0);
  c->pipe.data = srv;
  srv->open_handles++;
  assert_int_equal(uv_accept(listener, (uv_stream_t *)&c->pipe), 0);
  /* The server never keeps the loop alive: what a test waits for is the client's doing. */
  uv_unref((uv_handle_t *)&c->pipe);
  assert_true(srv->n_conns < CSHIM_N_ELEMENTS(srv->conns));
  srv->conns[srv->n_conns++] = c;
  uv_read_start((uv_stream_t *)&c->pipe, server_alloc_cb, server_read_cb);
}

static void
server_listen(fake_server_t *srv)
{
  uv_pipe_init(srv->loop, &srv->listener, 0);
  srv->listener.data = srv;
  srv->open_handles++;
  assert_int_equal(uv_pipe_bind(&srv->listener, srv->path), 0);
  assert_int_equal(uv_listen((uv_stream_t *)&srv->listener, 16, server_connection_cb), 0);
  uv_unref((uv_handle_t *)&srv->listener);
  srv->listening = true;
}

static void
server_stop(fake_server_t *srv)
{
  for (size_t i = 0; i < srv->n_conns; i++)
    if (srv->conns[i])
      server_close_conn(srv->conns[i]);
  if (srv->listening) {
    srv->listening = false;
    uv_close((uv_handle_t *)&srv->listener, server_handle_close_cb);
  }
}

/* ---- fixture ----------------------------------------------------------------------------- */

typedef struct result_s
{
  bool done;
  int calls;
  int grpc_code; /* 0 on success */
  char msg[256];
  int32_t resp_code; /* Status.code of the decoded response */
  char resp_msg[64];
  int order; /* completion order */
} result_t;

typedef struct fixture_s
{
  uv_loop_t loop;
  fake_server_t srv;
  cshim_ttrpc_client_t *client;
  bool client_freed;
  int completions;
} fixture_t;

static fixture_t *current;

static void
result_cb(void *data, ProtobufCMessage *response, cshim_error_t *err)
{
  result_t *r = data;

  r->done = true;
  r->calls++;
  r->order = ++current->completions;
  if (*err) {
    assert_null(response);
    r->grpc_code = cshim_error_grpc_code(*err);
    snprintf(r->msg, sizeof r->msg, "%s", (*err)->msg);
    return;
  }
  r->grpc_code = 0;
  if (response) {
    Google__Rpc__Status *s = (Google__Rpc__Status *)response;
    r->resp_code = s->code;
    snprintf(r->resp_msg, sizeof r->resp_msg, "%s", s->message);
    protobuf_c_message_free_unpacked(response, NULL);
  }
}

static void
guard_cb(uv_timer_t *t)
{
}

/* Run the loop until *flag is true or timeout_ms passes; returns *flag. */
static bool
run_until(fixture_t *f, const bool *flag, uint64_t timeout_ms)
{
  uv_timer_t guard;
  uint64_t deadline = uv_now(&f->loop) + timeout_ms;

  uv_timer_init(&f->loop, &guard);
  uv_timer_start(&guard, guard_cb, 5, 5);
  while (!*flag && uv_now(&f->loop) < deadline)
    uv_run(&f->loop, UV_RUN_ONCE);
  uv_close((uv_handle_t *)&guard, NULL);
  uv_run(&f->loop, UV_RUN_NOWAIT);
  return *flag;
}

static int
setup(void **state)
{
  fixture_t *f = cshim_xmalloc0(sizeof *f);

  assert_int_equal(uv_loop_init(&f->loop), 0);
  f->srv.loop = &f->loop;
  snprintf(f->srv.dir, sizeof f->srv.dir, "/tmp/cshim-client-XXXXXX");
  assert_non_null(mkdtemp(f->srv.dir));
  snprintf(f->srv.path, sizeof f->srv.path, "%s/ttrpc.sock", f->srv.dir);
  current = f;
  *state = f;
  return 0;
}

static void
client_done_cb(void *data)
{
  fixture_t *f = data;
  f->client_freed = true;
}

static int
teardown(void **state)
{
  fixture_t *f = *state;

  if (f->client)
    cshim_ttrpc_client_close(f->client, client_done_cb, f);
  server_stop(&f->srv);
  for (int i = 0; i < 200 && (f->srv.open_handles > 0 || (f->client && !f->client_freed)); i++)
    uv_run(&f->loop, UV_RUN_NOWAIT);
  uv_run(&f->loop, UV_RUN_DEFAULT);
  for (size_t i = 0; i < f->srv.n_received; i++)
    ttrpc__request__free_unpacked(f->srv.received[i].req, NULL);
  unlink(f->srv.path);
  rmdir(f->srv.dir);
  assert_int_equal(uv_loop_close(&f->loop), 0);
  free(f);
  return 0;
}

static void
connect_client(fixture_t *f, const char *address)
{
  cshim_error_t err = NULL;

  assert_int_equal(
      cshim_ttrpc_client_new(&f->loop, address ? address : f->srv.path, NULL, &f->client, &err), 0);
  assert_null(err);
}

static int
call_msg(fixture_t *f, const char *method, const char *text, const cshim_ttrpc_client_opts_t *o,
         result_t *r)
{
  Google__Rpc__Status req = GOOGLE__RPC__STATUS__INIT;
  cshim_error_t err = NULL;
  int ret;

  req.message = (char *)text;
  ret = cshim_ttrpc_client_call(f->client, SERVICE, method, &req.base,
                                &google__rpc__status__descriptor, o, result_cb, r, &err);
  if (ret < 0) {
    assert_non_null(err);
    snprintf(r->msg, sizeof r->msg, "%s", err->msg);
    r->grpc_code = cshim_error_grpc_code(err);
    cshim_error_release(&err);
  }
  return ret;
}

/* Run the loop until the server has received n requests. */
static void
wait_received(fixture_t *f, size_t n)
{
  bool never = false;

  for (int i = 0; i < 400 && f->srv.n_received < n; i++)
    run_until(f, &never, 5);
  assert_int_equal(f->srv.n_received, n);
}

static const char *
metadata_value(const Ttrpc__Request *req, const char *key)
{
  for (size_t i = 0; i < req->n_metadata; i++)
    if (strcmp(req->metadata[i]->key, key) == 0)
      return req->metadata[i]->value;
  return NULL;
}

/* ---- tests ------------------------------------------------------------------------------- */

static void
test_ttrpc_client_call_sends_request_and_decodes_response(void **state)
{
  fixture_t *f = *state;
  cshim_ttrpc_client_kv_t md[] = {{"X-Trace", "abc"}};
  cshim_ttrpc_client_opts_t o = {.timeout_ms = 5000, .metadata = md, .n_metadata = 1};
  result_t r = {0};
  received_t *got;

  server_listen(&f->srv);
  connect_client(f, NULL);
  cshim_ttrpc_client_add_metadata(f->client, "Containerd-Namespace-TTRPC", "k8s.io");
  assert_int_equal(call_msg(f, "Say", "hello", &o, &r), 0);
  assert_false(r.done); /* never completed from inside the call function */
  assert_int_equal(cshim_ttrpc_client_n_pending(f->client), 1);
  assert_true(run_until(f, &r.done, 2000));

  assert_int_equal(r.calls, 1);
  assert_int_equal(r.grpc_code, 0);
  assert_int_equal(r.resp_code, 1);
  assert_string_equal(r.resp_msg, "hello");
  assert_true(cshim_ttrpc_client_is_connected(f->client));
  assert_int_equal(cshim_ttrpc_client_n_pending(f->client), 0);

  assert_int_equal(f->srv.n_received, 1);
  got = &f->srv.received[0];
  assert_int_equal(got->stream_id, 1);
  assert_string_equal(got->req->service, SERVICE);
  assert_string_equal(got->req->method, "Say");
  assert_int_equal(got->req->timeout_nano, 5000ll * 1000000ll);
  assert_int_equal(got->req->n_metadata, 2);
  assert_string_equal(metadata_value(got->req, CSHIM_TTRPC_NAMESPACE_KEY), "k8s.io");
  assert_string_equal(metadata_value(got->req, "x-trace"), "abc");
}

typedef struct bytes_result_s
{
  bool done;
  int calls;
  uint8_t *payload; /* owned */
  size_t len;
  int grpc_code;
} bytes_result_t;

static void
bytes_cb(void *data, uint8_t *payload, size_t len, cshim_error_t *err)
{
  bytes_result_t *r = data;

  r->done = true;
  r->calls++;
  r->payload = payload;
  r->len = len;
  r->grpc_code = *err ? cshim_error_grpc_code(*err) : 0;
}

static void
test_ttrpc_client_call_bytes_answers_undecoded(void **state)
{
  fixture_t *f = *state;
  Google__Rpc__Status req = GOOGLE__RPC__STATUS__INIT;
  Google__Rpc__Status *resp;
  uint8_t buf[64];
  size_t len;
  bytes_result_t r = {0}, failed = {0};
  cshim_error_t err = NULL;

  server_listen(&f->srv);
  connect_client(f, NULL);
  req.message = "raw";
  len = google__rpc__status__pack(&req, buf);
  assert_int_equal(
      cshim_ttrpc_client_call_bytes(f->client, SERVICE, "Say", buf, len, NULL, bytes_cb, &r, &err),
      0);
  assert_false(r.done);
  assert_true(run_until(f, &r.done, 2000));
  assert_int_equal(r.calls, 1);
  assert_int_equal(r.grpc_code, 0);
  /* The bytes are the server's answer as sent: Status{code = stream id, message = request's}. */
  resp = google__rpc__status__unpack(NULL, r.len, r.payload);
  assert_non_null(resp);
  assert_int_equal(resp->code, 1);
  assert_string_equal(resp->message, "raw");
  google__rpc__status__free_unpacked(resp, NULL);
  free(r.payload);

  f->srv.mode = SERVE_FAIL;
  f->srv.fail_code = CSHIM_GRPC_NOT_FOUND;
  assert_int_equal(cshim_ttrpc_client_call_bytes(f->client, SERVICE, "Get", NULL, 0, NULL, bytes_cb,
                                                 &failed, &err),
                   0);
  assert_true(run_until(f, &failed.done, 2000));
  assert_int_equal(failed.grpc_code, CSHIM_GRPC_NOT_FOUND);
  assert_null(failed.payload);
}

static void
test_ttrpc_client_strips_unix_prefix(void **state)
{
  fixture_t *f = *state;
  char address[160];
  result_t r = {0};

  server_listen(&f->srv);
  snprintf(address, sizeof address, "unix://%s", f->srv.path);
  connect_client(f, address);
  assert_int_equal(call_msg(f, "Say", "x", NULL, &r), 0);
  assert_true(run_until(f, &r.done, 2000));
  assert_int_equal(r.grpc_code, 0);
  assert_int_equal(f->srv.received[0].req->timeout_nano, 0);
}

static void
test_ttrpc_client_many_calls_use_odd_increasing_ids_and_match_out_of_order_replies(void **state)
{
  fixture_t *f = *state;
  result_t r[5] = {{0}};

  f->srv.mode = SERVE_HOLD;
  server_listen(&f->srv);
  connect_client(f, NULL);
  for (int i = 0; i < 5; i++) {
    char text[8];
    snprintf(text, sizeof text, "m%d", i);
    assert_int_equal(call_msg(f, "Say", text, NULL, &r[i]), 0);
  }
  wait_received(f, 5);
  for (int i = 0; i < 5; i++)
    assert_int_equal(f->srv.received[i].stream_id, (uint32_t)(2 * i + 1));

  /* Answer in reverse order: each reply must reach its own caller. */
  for (int i = 4; i >= 0; i--)
    server_echo(f->srv.received[i].conn, &f->srv.received[i]);
  assert_true(run_until(f, &r[0].done, 2000));
  for (int i = 0; i < 5; i++) {
    char text[8];
    snprintf(text, sizeof text, "m%d", i);
    assert_int_equal(r[i].calls, 1);
    assert_int_equal(r[i].grpc_code, 0);
    assert_int_equal(r[i].resp_code, 2 * i + 1);
    assert_string_equal(r[i].resp_msg, text);
    assert_int_equal(r[i].order, 5 - i);
  }
}

static void
test_ttrpc_client_deadline_fails_call_and_late_reply_is_discarded(void **state)
{
  fixture_t *f = *state;
  cshim_ttrpc_client_opts_t o = {.timeout_ms = 50};
  result_t r = {0}, r2 = {0};

  f->srv.mode = SERVE_HOLD;
  server_listen(&f->srv);
  connect_client(f, NULL);
  assert_int_equal(call_msg(f, "Slow", "x", &o, &r), 0);
  assert_true(run_until(f, &r.done, 2000));
  assert_int_equal(r.grpc_code, CSHIM_GRPC_DEADLINE_EXCEEDED);
  assert_int_equal(r.calls, 1);
  assert_int_equal(f->srv.n_received, 1);

  /* The late answer is dropped; the connection keeps working. */
  server_echo(f->srv.received[0].conn, &f->srv.received[0]);
  f->srv.mode = SERVE_ECHO;
  assert_int_equal(call_msg(f, "Say", "after", NULL, &r2), 0);
  assert_true(run_until(f, &r2.done, 2000));
  assert_int_equal(r2.grpc_code, 0);
  assert_string_equal(r2.resp_msg, "after");
  assert_int_equal(r2.resp_code, 3);
  assert_int_equal(r.calls, 1);
}

static void
test_ttrpc_client_error_status_is_decoded(void **state)
{
  fixture_t *f = *state;
  result_t r = {0};

  f->srv.mode = SERVE_FAIL;
  f->srv.fail_code = CSHIM_GRPC_NOT_FOUND;
  server_listen(&f->srv);
  connect_client(f, NULL);
  assert_int_equal(call_msg(f, "Get", "x", NULL, &r), 0);
  assert_true(run_until(f, &r.done, 2000));
  assert_int_equal(r.grpc_code, CSHIM_GRPC_NOT_FOUND);
  assert_string_equal(r.msg, "no such thing");
}

static void
test_ttrpc_client_connection_closed_fails_pending_with_unavailable(void **state)
{
  fixture_t *f = *state;
  result_t r[2] = {{0}};
  result_t late = {0};

  f->srv.mode = SERVE_HOLD;
  server_listen(&f->srv);
  connect_client(f, NULL);
  assert_int_equal(call_msg(f, "A", "x", NULL, &r[0]), 0);
  assert_int_equal(call_msg(f, "B", "x", NULL, &r[1]), 0);
  wait_received(f, 2);
  server_close_conn(f->srv.conns[0]);
  assert_true(run_until(f, &r[1].done, 2000));
  for (int i = 0; i < 2; i++) {
    assert_int_equal(r[i].calls, 1);
    assert_int_equal(r[i].grpc_code, CSHIM_GRPC_UNAVAILABLE);
  }
  assert_true(cshim_ttrpc_client_is_broken(f->client));
  assert_false(cshim_ttrpc_client_is_connected(f->client));

  /* A broken client refuses calls at once and never runs their callback. */
  assert_int_equal(call_msg(f, "C", "x", NULL, &late), -ENOTCONN);
  uv_run(&f->loop, UV_RUN_NOWAIT);
  assert_int_equal(late.calls, 0);
}

static void
test_ttrpc_client_connect_refused_fails_calls_with_unavailable(void **state)
{
  fixture_t *f = *state;
  result_t r = {0};

  connect_client(f, NULL); /* nobody listens at that path */
  assert_int_equal(call_msg(f, "Say", "x", NULL, &r), 0);
  assert_true(run_until(f, &r.done, 2000));
  assert_int_equal(r.calls, 1);
  assert_int_equal(r.grpc_code, CSHIM_GRPC_UNAVAILABLE);
  assert_non_null(strstr(r.msg, f->srv.path));
}

static void
test_ttrpc_client_calls_before_connect_are_sent_once_connected(void **state)
{
  fixture_t *f = *state;
  result_t r[3] = {{0}};

  server_listen(&f->srv);
  connect_client(f, NULL);
  assert_false(cshim_ttrpc_client_is_connected(f->client));
  for (int i = 0; i < 3; i++)
    assert_int_equal(call_msg(f, "Say", "early", NULL, &r[i]), 0);
  assert_true(run_until(f, &r[2].done, 2000));
  for (int i = 0; i < 3; i++) {
    assert_int_equal(r[i].grpc_code, 0);
    assert_int_equal(r[i].order, i + 1);
  }
}

static void
test_ttrpc_client_oversized_request_fails_at_once(void **state)
{
  fixture_t *f = *state;
  size_t n = CSHIM_FRAME_MAX_DATA + 16;
  cshim_autofree uint8_t *big = cshim_xmalloc0(n);
  cshim_error_t err = NULL;
  result_t r = {0};

  server_listen(&f->srv);
  connect_client(f, NULL);
  assert_int_equal(cshim_ttrpc_client_call_raw(f->client, SERVICE, "Big", big, n, NULL, NULL,
                                               result_cb, &r, &err),
                   -EMSGSIZE);
  assert_non_null(err);
  assert_int_equal(cshim_error_grpc_code(err), CSHIM_GRPC_RESOURCE_EXHAUSTED);
  assert_non_null(strstr(err->msg, "exceed maximum message size of 4194304"));
  cshim_error_release(&err);
  uv_run(&f->loop, UV_RUN_NOWAIT);
  assert_int_equal(r.calls, 0);
  assert_int_equal(cshim_ttrpc_client_n_pending(f->client), 0);
}

static void
test_ttrpc_client_oversized_response_fails_call_and_keeps_connection(void **state)
{
  fixture_t *f = *state;
  result_t r = {0}, r2 = {0};

  f->srv.mode = SERVE_OVERSIZE;
  server_listen(&f->srv);
  connect_client(f, NULL);
  assert_int_equal(call_msg(f, "Big", "x", NULL, &r), 0);
  assert_true(run_until(f, &r.done, 5000));
  assert_int_equal(r.grpc_code, CSHIM_GRPC_RESOURCE_EXHAUSTED);
  assert_int_equal(call_msg(f, "Say", "fine", NULL, &r2), 0);
  assert_true(run_until(f, &r2.done, 2000));
  assert_int_equal(r2.grpc_code, 0);
  assert_string_equal(r2.resp_msg, "fine");
}

static void
close_in_cb(void *data, ProtobufCMessage *response, cshim_error_t *err)
{
  result_t *r = data;

  result_cb(data, response, err);
  if (r->calls == 1 && current->client) {
    cshim_ttrpc_client_close(current->client, client_done_cb, current);
    current->client = NULL;
  }
}

static void
test_ttrpc_client_close_cancels_pending_calls_before_returning(void **state)
{
  fixture_t *f = *state;
  result_t r[2] = {{0}};

  f->srv.mode = SERVE_HOLD;
  server_listen(&f->srv);
  connect_client(f, NULL);
  assert_int_equal(call_msg(f, "A", "x", NULL, &r[0]), 0);
  assert_int_equal(call_msg(f, "B", "x", NULL, &r[1]), 0);
  wait_received(f, 2);

  cshim_ttrpc_client_close(f->client, client_done_cb, f);
  f->client = NULL;
  for (int i = 0; i < 2; i++) {
    assert_int_equal(r[i].calls, 1);
    assert_int_equal(r[i].grpc_code, CSHIM_GRPC_CANCELED);
  }
  assert_false(f->client_freed); /* done_cb only from the loop */
  assert_true(run_until(f, &f->client_freed, 2000));
}

static void
test_ttrpc_client_can_be_closed_from_a_callback(void **state)
{
  fixture_t *f = *state;
  Google__Rpc__Status req = GOOGLE__RPC__STATUS__INIT;
  result_t r = {0}, r2 = {0};
  cshim_error_t err = NULL;

  f->srv.mode = SERVE_HOLD;
  server_listen(&f->srv);
  connect_client(f, NULL);
  assert_int_equal(cshim_ttrpc_client_call(f->client, SERVICE, "A", &req.base, NULL, NULL,
                                           close_in_cb, &r, &err),
                   0);
  assert_int_equal(call_msg(f, "B", "x", NULL, &r2), 0);
  wait_received(f, 2);
  server_echo(f->srv.received[0].conn, &f->srv.received[0]);
  assert_true(run_until(f, &f->client_freed, 2000));
  assert_int_equal(r.calls, 1);
  assert_int_equal(r.grpc_code, 0);
  assert_int_equal(r2.calls, 1);
  assert_int_equal(r2.grpc_code, CSHIM_GRPC_CANCELED);
}

static void
test_ttrpc_client_idle_connection_does_not_keep_loop_alive(void **state)
{
  fixture_t *f = *state;
  result_t r = {0};

  server_listen(&f->srv);
  connect_client(f, NULL);
  assert_int_equal(call_msg(f, "Say", "x", NULL, &r), 0);
  /* The pending call keeps the loop running until it completes; then nothing does. */
  uv_run(&f->loop, UV_RUN_DEFAULT);
  assert_true(r.done);
  assert_int_equal(r.grpc_code, 0);
  assert_true(cshim_ttrpc_client_is_connected(f->client));
}

static void
test_ttrpc_client_rejects_bad_addresses(void **state)
{
  fixture_t *f = *state;
  cshim_ttrpc_client_t *c = NULL;
  cshim_error_t err = NULL;
  char longpath[200];

  assert_int_equal(cshim_ttrpc_client_new(&f->loop, "", NULL, &c, &err), -EINVAL);
  cshim_error_release(&err);
  assert_int_equal(cshim_ttrpc_client_new(&f->loop, "unix://", NULL, &c, &err), -EINVAL);
  cshim_error_release(&err);
  memset(longpath, 'a', sizeof longpath - 1);
  longpath[0] = '/';
  longpath[sizeof longpath - 1] = '\0';
  assert_int_equal(cshim_ttrpc_client_new(&f->loop, longpath, NULL, &c, &err), -ENAMETOOLONG);
  cshim_error_release(&err);
  assert_null(c);
}

int
main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_ttrpc_client_call_sends_request_and_decodes_response,
                                      setup, teardown),
      cmocka_unit_test_setup_teardown(test_ttrpc_client_call_bytes_answers_undecoded, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_ttrpc_client_strips_unix_prefix, setup, teardown),
      cmocka_unit_test_setup_teardown(
          test_ttrpc_client_many_calls_use_odd_increasing_ids_and_match_out_of_order_replies, setup,
          teardown),
      cmocka_unit_test_setup_teardown(
          test_ttrpc_client_deadline_fails_call_and_late_reply_is_discarded, setup, teardown),
      cmocka_unit_test_setup_teardown(test_ttrpc_client_error_status_is_decoded, setup, teardown),
      cmocka_unit_test_setup_teardown(
          test_ttrpc_client_connection_closed_fails_pending_with_unavailable, setup, teardown),
      cmocka_unit_test_setup_teardown(
          test_ttrpc_client_connect_refused_fails_calls_with_unavailable, setup, teardown),
      cmocka_unit_test_setup_teardown(
          test_ttrpc_client_calls_before_connect_are_sent_once_connected, setup, teardown),
      cmocka_unit_test_setup_teardown(test_ttrpc_client_oversized_request_fails_at_once, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(
          test_ttrpc_client_oversized_response_fails_call_and_keeps_connection, setup, teardown),
      cmocka_unit_test_setup_teardown(
          test_ttrpc_client_close_cancels_pending_calls_before_returning, setup, teardown),
      cmocka_unit_test_setup_teardown(test_ttrpc_client_can_be_closed_from_a_callback, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_ttrpc_client_idle_connection_does_not_keep_loop_alive,
                                      setup, teardown),
      cmocka_unit_test_setup_teardown(test_ttrpc_client_rejects_bad_addresses, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
