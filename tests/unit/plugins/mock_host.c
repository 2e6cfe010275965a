// SPDX-License-Identifier: Apache-2.0
// A mock of what the host gives a plugin, and a fake containerd Events service, for plugin tests.
#define _GNU_SOURCE
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cshim/frame.h>
#include <cshim/ttrpc.h>
#include <cshim/util.h>

#include "google/rpc/status.pb-c.h"
#include "ttrpc/request.pb-c.h"

#include "mock_host.h"

/* Last: cmocka defines a `fail` macro that would clash with cshim_ttrpc_call_ops_t.fail. */
#include <cmocka.h>

/* ---- fake shutdown ----------------------------------------------------------------------- */

static void
mock_done_complete(cshim_shutdown_done_t *self, cshim_error_t *err)
{
  mock_shutdown_done_t *d = (mock_shutdown_done_t *)self;

  d->completions++;
  d->completed = true;
  if (err && *err) {
    d->status = (*err)->status;
    snprintf(d->msg, sizeof d->msg, "%s", (*err)->msg);
    cshim_error_release(err);
  }
}

static int
mock_shutdown_register(cshim_shutdown_t *self, cshim_shutdown_cb cb, void *data, cshim_error_t *err)
{
  mock_shutdown_t *s = (mock_shutdown_t *)self;

  if (s->started)
    return cshim_error_make(err, EALREADY, "shutdown already started");
  assert_true(s->n < MOCK_MAX);
  s->cbs[s->n] = cb;
  s->data[s->n] = data;
  s->n++;
  return 0;
}

static void
mock_shutdown_shutdown(cshim_shutdown_t *self)
{
  ((mock_shutdown_t *)self)->calls++;
  mock_shutdown_trigger((mock_shutdown_t *)self);
}

static int
mock_shutdown_on_done(cshim_shutdown_t *self, cshim_shutdown_done_cb cb, void *data,
                      cshim_error_t *err)
{
  return cshim_error_make(err, ENOSYS, "mock shutdown: on_done not supported");
}

static bool
mock_shutdown_is_shutting_down(cshim_shutdown_t *self)
{
  return ((mock_shutdown_t *)self)->started;
}

void
mock_shutdown_trigger(mock_shutdown_t *s)
{
  if (s->started)
    return;
  s->started = true;
  for (size_t i = 0; i < s->n; i++) {
    s->dones[i].base.struct_size = sizeof s->dones[i].base;
    s->dones[i].base.complete = mock_done_complete;
    s->dones[i].owner = s;
    s->cbs[i](s->data[i], &s->dones[i].base);
  }
}

bool
mock_shutdown_all_completed(const mock_shutdown_t *s)
{
  for (size_t i = 0; i < s->n; i++)
    if (!s->dones[i].completed)
      return false;
  return true;
}

/* ---- init context ------------------------------------------------------------------------ */

static const char *
mock_property(const cshim_init_ctx_t *ctx, const char *key)
{
  mock_host_t *h = ctx->host_private;

  for (size_t i = 0; i < h->n_props; i++)
    if (strcmp(h->prop_keys[i], key) == 0)
      return h->prop_values[i];
  return NULL;
}

static bool
type_required(const mock_host_t *h, const char *type)
{
  for (const char *const *r = h->requires; r && *r; r++)
    if (strcmp(*r, type) == 0 || strcmp(*r, "*") == 0)
      return true;
  return false;
}

static int
mock_get_by_id(const cshim_init_ctx_t *ctx, const char *type, const char *id, void **instance,
               cshim_error_t *err)
{
  mock_host_t *h = ctx->host_private;

  if (!type_required(h, type))
    return cshim_error_make(err, EPERM, "plugin `%s` did not require type `%s`", ctx->uri, type);
  for (size_t i = 0; i < h->n_instances; i++)
    if (strcmp(h->instances[i].type, type) == 0 && strcmp(h->instances[i].id, id) == 0) {
      *instance = h->instances[i].instance;
      return 0;
    }
  return cshim_error_make(err, ENOENT, "plugin `%s.%s` not found", type, id);
}

static int
mock_get_by_type(const cshim_init_ctx_t *ctx, const char *type, cshim_plugin_ref_t **out,
                 size_t *n_out, cshim_error_t *err)
{
  mock_host_t *h = ctx->host_private;
  size_t n = 0;

  if (!type_required(h, type))
    return cshim_error_make(err, EPERM, "plugin `%s` did not require type `%s`", ctx->uri, type);
  *out = cshim_xmalloc0(MOCK_MAX * sizeof **out);
  for (size_t i = 0; i < h->n_instances; i++)
    if (strcmp(h->instances[i].type, type) == 0) {
      (*out)[n].type = h->instances[i].type;
      (*out)[n].id = h->instances[i].id;
      (*out)[n].instance = h->instances[i].instance;
      n++;
    }
  if (n == 0) {
    free(*out);
    *out = NULL;
    return cshim_error_make(err, ENOENT, "no plugin of type `%s`", type);
  }
  *n_out = n;
  return 0;
}

static void
mock_log_write(void *data, int level, const char *line, size_t len)
{
  mock_host_t *h = data;

  if (h->echo)
    fwrite(line, 1, len, stderr);
  while (len > 0 && line[len - 1] == '\n')
    len--;
  h->lines = cshim_xrealloc(h->lines, (h->n_lines + 1) * sizeof *h->lines);
  h->lines[h->n_lines].level = level;
  h->lines[h->n_lines].line = cshim_xstrndup(line, len);
  h->n_lines++;
}

void
mock_host_init(mock_host_t *h, const char *uri, const char *const *requires)
{
  memset(h, 0, sizeof *h);
  assert_int_equal(uv_loop_init(&h->loop), 0);
  h->echo = getenv("MOCK_HOST_VERBOSE") != NULL;
  h->logger.struct_size = sizeof h->logger;
  h->logger.write = mock_log_write;
  h->logger.data = h;
  h->logger.level = CSHIM_LOG_TRACE;
  h->logger.fields = "plugin=mock";

  h->config.kind = CSHIM_CONFIG_MAP;
  h->config.keys = h->config_keys;
  h->config.items = h->config_items;
  h->config.file = "mock.yaml";
  h->config.line = 1;
  h->config.column = 1;

  h->requires = requires;
  h->ctx.struct_size = sizeof h->ctx;
  h->ctx.uri = uri;
  h->ctx.loop = &h->loop;
  h->ctx.property = mock_property;
  h->ctx.config = NULL;
  h->ctx.get_by_id = mock_get_by_id;
  h->ctx.get_by_type = mock_get_by_type;
  h->ctx.log = &h->logger;
  h->ctx.host_private = h;

  h->shutdown.base.struct_size = sizeof h->shutdown.base;
  h->shutdown.base.register_callback = mock_shutdown_register;
  h->shutdown.base.shutdown = mock_shutdown_shutdown;
  h->shutdown.base.on_done = mock_shutdown_on_done;
  h->shutdown.base.is_shutting_down = mock_shutdown_is_shutting_down;
  mock_host_add_instance(h, CSHIM_TYPE_INTERNAL, "shutdown", &h->shutdown);
}

void
mock_host_set_property(mock_host_t *h, const char *key, const char *value)
{
  for (size_t i = 0; i < h->n_props; i++)
    if (strcmp(h->prop_keys[i], key) == 0) {
      h->prop_values[i] = value;
      return;
    }
  assert_true(h->n_props < MOCK_MAX);
  h->prop_keys[h->n_props] = key;
  h->prop_values[h->n_props] = value;
  h->n_props++;
}

void
mock_host_set_config(mock_host_t *h, const char *key, const char *value)
{
  cshim_config_node_t *item;

  for (size_t i = 0; i < h->config.n; i++)
    if (strcmp(h->config_keys[i], key) == 0) {
      free(h->config_values[i]);
      h->config_values[i] = cshim_xstrdup(value);
      h->config_items[i].value = h->config_values[i];
      return;
    }
  assert_true(h->config.n < MOCK_MAX);
  item = &h->config_items[h->config.n];
  memset(item, 0, sizeof *item);
  item->kind = CSHIM_CONFIG_SCALAR;
  h->config_values[h->config.n] = cshim_xstrdup(value);
  item->value = h->config_values[h->config.n];
  item->file = "mock.yaml";
  item->line = (unsigned)h->config.n + 2;
  item->column = 3;
  h->config_keys[h->config.n] = key;
  h->config.n++;
  h->ctx.config = &h->config;
}

void
mock_host_add_instance(mock_host_t *h, const char *type, const char *id, void *instance)
{
  assert_true(h->n_instances < MOCK_MAX);
  h->instances[h->n_instances].type = type;
  h->instances[h->n_instances].id = id;
  h->instances[h->n_instances].instance = instance;
  h->n_instances++;
}

static void
noop_timer_cb(uv_timer_t *t)
{
}

bool
mock_host_run_until(mock_host_t *h, bool (*pred)(void *data), void *data, uint64_t timeout_ms)
{
  uv_timer_t tick;
  uint64_t deadline;
  bool ok;

  uv_update_time(&h->loop);
  deadline = uv_now(&h->loop) + timeout_ms;
  uv_timer_init(&h->loop, &tick);
  uv_timer_start(&tick, noop_timer_cb, 2, 2);
  while (!(ok = pred(data)) && uv_now(&h->loop) < deadline)
    uv_run(&h->loop, UV_RUN_ONCE);
  uv_close((uv_handle_t *)&tick, NULL);
  uv_run(&h->loop, UV_RUN_NOWAIT);
  return ok;
}

static bool
never(void *data)
{
  return false;
}

void
mock_host_run_for(mock_host_t *h, uint64_t ms)
{
  mock_host_run_until(h, never, NULL, ms);
}

size_t
mock_host_count_lines(const mock_host_t *h, int min_level, ...)
{
  size_t n = 0;

  for (size_t i = 0; i < h->n_lines; i++) {
    va_list ap;
    const char *sub;
    bool all = h->lines[i].level >= min_level;

    va_start(ap, min_level);
    while (all && (sub = va_arg(ap, const char *)))
      all = strstr(h->lines[i].line, sub) != NULL;
    va_end(ap);
    if (all)
      n++;
  }
  return n;
}

void
mock_host_dump_lines(const mock_host_t *h)
{
  for (size_t i = 0; i < h->n_lines; i++)
    fprintf(stderr, "  log: %s\n", h->lines[i].line);
}

static void
close_walk_cb(uv_handle_t *handle, void *arg)
{
  int *n = arg;

  if (!uv_is_closing(handle)) {
    (*n)++;
    uv_close(handle, NULL);
  }
}

void
mock_host_fini(mock_host_t *h)
{
  int leftover = 0;

  uv_run(&h->loop, UV_RUN_NOWAIT);
  uv_walk(&h->loop, close_walk_cb, &leftover);
  uv_run(&h->loop, UV_RUN_DEFAULT);
  if (leftover)
    fprintf(stderr, "mock host: %d handle(s) were left open\n", leftover);
  assert_int_equal(uv_loop_close(&h->loop), 0);
  for (size_t i = 0; i < h->n_lines; i++)
    free(h->lines[i].line);
  free(h->lines);
  for (size_t i = 0; i < h->config.n; i++)
    free(h->config_values[i]);
  assert_int_equal(leftover, 0);
}

/* ---- fake ttrpc calls -------------------------------------------------------------------- */

static int
call_reply(cshim_ttrpc_call_t *call, const ProtobufCMessage *resp)
{
  mock_call_t *c = (mock_call_t *)call;
  c->answered++;
  c->code = 0;
  free(c->payload);
  c->payload = NULL;
  c->len = 0;
  if (resp) {
    c->len = protobuf_c_message_get_packed_size(resp);
    c->payload = cshim_xmalloc(c->len + 1);
    protobuf_c_message_pack(resp, c->payload);
  }
  return 0;
}

static int
call_reply_packed(cshim_ttrpc_call_t *call, const ProtobufCMessageDescriptor *type,
                  const uint8_t *bytes, size_t len)
{
  mock_call_t *c = (mock_call_t *)call;
  c->answered++;
  c->packed++;
  c->code = 0;
  c->packed_type = type;
  free(c->payload);
  c->payload = cshim_xmalloc(len + 1);
  memcpy(c->payload, bytes, len);
  c->len = len;
  return 0;
}

static int
call_fail(cshim_ttrpc_call_t *call, int code, const char *message)
{
  mock_call_t *c = (mock_call_t *)call;
  c->answered++;
  c->code = code;
  free(c->message);
  c->message = cshim_xstrdup(message);
  return 0;
}

static const char *
call_metadata(const cshim_ttrpc_call_t *call, const char *key)
{
  return NULL;
}

static void
call_park(cshim_ttrpc_call_t *call)
{
  ((mock_call_t *)call)->parked++;
}

static uint64_t
call_connection(const cshim_ttrpc_call_t *call)
{
  return ((const mock_call_t *)call)->connection;
}

static void
call_on_cancel(cshim_ttrpc_call_t *call, void (*cb)(cshim_ttrpc_call_t *call, void *data),
               void *data)
{
  ((mock_call_t *)call)->cancel_cb = cb;
  ((mock_call_t *)call)->cancel_data = data;
}

static const cshim_ttrpc_call_ops_t call_ops = {
    .struct_size = sizeof(cshim_ttrpc_call_ops_t),
    .reply = call_reply,
    .fail = call_fail,
    .metadata = call_metadata,
    .park = call_park,
    .connection = call_connection,
    .on_cancel = call_on_cancel,
    .reply_packed = call_reply_packed,
};

mock_call_t *
mock_call_new(const char *service, const char *method)
{
  mock_call_t *c = cshim_xmalloc0(sizeof *c);
  c->base.ops = &call_ops;
  c->base.service = service;
  c->base.method = method;
  c->code = -1;
  return c;
}

void
mock_call_free(mock_call_t *c)
{
  if (c == NULL)
    return;
  free(c->message);
  free(c->payload);
  free(c);
}

ProtobufCMessage *
mock_call_unpack(const mock_call_t *c, const ProtobufCMessageDescriptor *desc)
{
  assert_int_equal(c->answered, 1);
  assert_int_equal(c->code, 0);
  return protobuf_c_message_unpack(desc, NULL, c->len, c->payload);
}

static bool
call_answered(void *data)
{
  return ((mock_call_t *)data)->answered > 0;
}

bool
mock_host_run_call(mock_host_t *h, mock_call_t *c, uint64_t timeout_ms)
{
  return mock_host_run_until(h, call_answered, c, timeout_ms);
}

/* ---- fake containerd Events service ------------------------------------------------------ */

struct mock_events_conn_s
{
  uv_pipe_t pipe;
  mock_events_server_t *srv;
  cshim_frame_reader_t reader;
  bool open;
};

static void
events_handle_close_cb(uv_handle_t *h)
{
  mock_events_server_t *s = h->data;

  if (h != (uv_handle_t *)&s->listener) {
    mock_events_conn_t *c = CSHIM_CONTAINER_OF(h, mock_events_conn_t, pipe);
    for (size_t i = 0; i < MOCK_MAX; i++)
      if (s->conns[i] == c)
        s->conns[i] = NULL;
    cshim_frame_reader_fini(&c->reader);
    free(c);
  }
  s->open_handles--;
}

static void
events_conn_close(mock_events_conn_t *c)
{
  if (!c->open)
    return;
  c->open = false;
  uv_close((uv_handle_t *)&c->pipe, events_handle_close_cb);
}

static void
events_write_cb(uv_write_t *req, int status)
{
  free(req->data);
  free(req);
}

static void
events_reply(mock_events_conn_t *c, uint32_t stream_id, int code, const char *message)
{
  Ttrpc__Response resp = TTRPC__RESPONSE__INIT;
  Google__Rpc__Status status = GOOGLE__RPC__STATUS__INIT;
  cshim_frame_header_t hdr = {.stream_id = stream_id, .type = CSHIM_FRAME_RESPONSE};
  uint8_t *frame = NULL;
  size_t len = 0;
  uv_write_t *w;
  uv_buf_t b;

  status.code = code;
  status.message = (char *)(message ? message : "");
  resp.status = &status;
  assert_int_equal(cshim_frame_pack(&hdr, &resp.base, CSHIM_FRAME_MAX_DATA, &frame, &len, NULL), 0);
  w = cshim_xmalloc0(sizeof *w);
  w->data = frame;
  b = uv_buf_init((char *)frame, (unsigned)len);
  assert_int_equal(uv_write(w, (uv_stream_t *)&c->pipe, &b, 1, events_write_cb), 0);
}

static const char *
request_metadata(const Ttrpc__Request *req, const char *key)
{
  for (size_t i = 0; i < req->n_metadata; i++)
    if (strcmp(req->metadata[i]->key, key) == 0)
      return req->metadata[i]->value;
  return NULL;
}

static void
events_request(mock_events_conn_t *c, const cshim_frame_t *f)
{
  mock_events_server_t *s = c->srv;
  Ttrpc__Request *req = ttrpc__request__unpack(NULL, f->header.length, f->data);
  mock_forward_t *fw;

  assert_non_null(req);
  if (strcmp(req->service, "containerd.services.events.ttrpc.v1.Events") != 0) {
    events_reply(c, f->header.stream_id, CSHIM_GRPC_UNIMPLEMENTED, "service");
    ttrpc__request__free_unpacked(req, NULL);
    return;
  }
  if (strcmp(req->method, "Forward") != 0) {
    events_reply(c, f->header.stream_id, CSHIM_GRPC_UNIMPLEMENTED, "method");
    ttrpc__request__free_unpacked(req, NULL);
    return;
  }

  s->received = cshim_xrealloc(s->received, (s->n_received + 1) * sizeof *s->received);
  fw = &s->received[s->n_received++];
  memset(fw, 0, sizeof *fw);
  fw->stream_id = f->header.stream_id;
  fw->timeout_nano = req->timeout_nano;
  fw->namespace_md = cshim_xstrdup(request_metadata(req, CSHIM_TTRPC_NAMESPACE_KEY));
  fw->req = containerd__services__events__ttrpc__v1__forward_request__unpack(NULL, req->payload.len,
                                                                             req->payload.data);
  fw->answered_code = -1;
  ttrpc__request__free_unpacked(req, NULL);
  assert_non_null(fw->req);

  if (s->close_next > 0) {
    s->close_next--;
    events_conn_close(c);
  } else if (s->hold > 0) {
    s->hold--;
  } else if (s->fail_next > 0) {
    s->fail_next--;
    fw->answered_code = s->fail_code;
    events_reply(c, fw->stream_id, s->fail_code, "mock failure");
  } else {
    fw->answered_code = 0;
    s->n_ok++;
    events_reply(c, fw->stream_id, 0, NULL);
  }
}

static void
events_alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
  buf->base = cshim_xmalloc(suggested);
  buf->len = suggested;
}

static void
events_read_cb(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
  mock_events_conn_t *c = CSHIM_CONTAINER_OF(stream, mock_events_conn_t, pipe);
  const uint8_t *p = (const uint8_t *)buf->base;
  size_t len = nread > 0 ? (size_t)nread : 0;

  if (nread < 0)
    events_conn_close(c);
  while (len > 0 && c->open) {
    cshim_frame_t f = {0};

    if (cshim_frame_reader_next(&c->reader, &p, &len, &f) == CSHIM_FRAME_NEED_MORE)
      break;
    if (f.header.type == CSHIM_FRAME_REQUEST)
      events_request(c, &f);
    free(f.data);
  }
  free(buf->base);
}

static void
events_connection_cb(uv_stream_t *listener, int status)
{
  mock_events_server_t *s = listener->data;
  mock_events_conn_t *c;
  size_t slot;

  if (status < 0)
    return;
  for (slot = 0; slot < MOCK_MAX && s->conns[slot]; slot++)
    ;
  assert_true(slot < MOCK_MAX);
  c = cshim_xmalloc0(sizeof *c);
  c->srv = s;
  c->open = true;
  cshim_frame_reader_init(&c->reader, 0);
  uv_pipe_init(s->loop, &c->pipe, 0);
  c->pipe.data = s;
  s->open_handles++;
  assert_int_equal(uv_accept(listener, (uv_stream_t *)&c->pipe), 0);
  /* Only the plugin under test decides whether the loop has work. */
  uv_unref((uv_handle_t *)&c->pipe);
  s->conns[slot] = c;
  s->n_connections++;
  uv_read_start((uv_stream_t *)&c->pipe, events_alloc_cb, events_read_cb);
}

void
mock_events_server_init(mock_events_server_t *s, uv_loop_t *loop)
{
  memset(s, 0, sizeof *s);
  s->loop = loop;
  s->fail_code = CSHIM_GRPC_UNAVAILABLE;
  snprintf(s->dir, sizeof s->dir, "/tmp/cshim-events-XXXXXX");
  assert_non_null(mkdtemp(s->dir));
  snprintf(s->path, sizeof s->path, "%s/containerd.sock.ttrpc", s->dir);
}

void
mock_events_server_start(mock_events_server_t *s)
{
  assert_false(s->listening);
  uv_pipe_init(s->loop, &s->listener, 0);
  s->listener.data = s;
  s->open_handles++;
  assert_int_equal(uv_pipe_bind(&s->listener, s->path), 0);
  assert_int_equal(uv_listen((uv_stream_t *)&s->listener, 64, events_connection_cb), 0);
  uv_unref((uv_handle_t *)&s->listener);
  s->listening = true;
}

void
mock_events_server_stop(mock_events_server_t *s)
{
  for (size_t i = 0; i < MOCK_MAX; i++)
    if (s->conns[i])
      events_conn_close(s->conns[i]);
  if (s->listening) {
    s->listening = false;
    uv_close((uv_handle_t *)&s->listener, events_handle_close_cb);
    unlink(s->path);
  }
}

void
mock_events_server_fini(mock_events_server_t *s)
{
  mock_events_server_stop(s);
  for (int i = 0; i < 1000 && s->open_handles > 0; i++)
    uv_run(s->loop, UV_RUN_NOWAIT);
  for (size_t i = 0; i < s->n_received; i++) {
    containerd__services__events__ttrpc__v1__forward_request__free_unpacked(s->received[i].req,
                                                                            NULL);
    free(s->received[i].namespace_md);
  }
  free(s->received);
  s->received = NULL;
  unlink(s->path);
  rmdir(s->dir);
}

const Containerd__Services__Events__Ttrpc__V1__Envelope *
mock_events_server_ok_envelope(const mock_events_server_t *s, size_t i)
{
  for (size_t k = 0; k < s->n_received; k++)
    if (s->received[k].answered_code == 0 && i-- == 0)
      return s->received[k].req->envelope;
  return NULL;
}
