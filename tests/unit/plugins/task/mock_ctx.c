// SPDX-License-Identifier: Apache-2.0
// The task tests' mock host: a real loop and reaper, a publisher that records, a fake shutdown
// service and fake ttrpc calls.
#include "mock_ctx.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <cshim/util.h>

#include "reaper.h"

static void
log_write(void *data, int level, const char *line, size_t len)
{
  mock_ctx_t *m = data;
  if (m->verbose)
    fwrite(line, 1, len, stderr);
}

static int
publish(cshim_publisher_t *self, const char *topic, const ProtobufCMessage *event,
        cshim_error_t *err)
{
  mock_ctx_t *m = CSHIM_CONTAINER_OF(self, mock_ctx_t, publisher);
  mock_event_t *e;
  assert_true(m->n_events < MOCK_CTX_MAX);
  e = &m->events[m->n_events++];
  e->topic = cshim_xstrdup(topic);
  e->desc = event->descriptor;
  e->len = protobuf_c_message_get_packed_size(event);
  e->data = cshim_xmalloc(e->len + 1);
  protobuf_c_message_pack(event, e->data);
  if (m->verbose)
    fprintf(stderr, "event %s\n", topic);
  return 0;
}

static int
sd_register(cshim_shutdown_t *self, cshim_shutdown_cb cb, void *data, cshim_error_t *err)
{
  return 0;
}

static void
sd_shutdown(cshim_shutdown_t *self)
{
  mock_ctx_t *m = CSHIM_CONTAINER_OF(self, mock_ctx_t, shutdown);
  m->shutdown_calls++;
}

static int
sd_on_done(cshim_shutdown_t *self, cshim_shutdown_done_cb cb, void *data, cshim_error_t *err)
{
  return 0;
}

static bool
sd_is_shutting_down(cshim_shutdown_t *self)
{
  mock_ctx_t *m = CSHIM_CONTAINER_OF(self, mock_ctx_t, shutdown);
  return m->shutdown_calls > 0;
}

void
mock_ctx_init(mock_ctx_t *m)
{
  cshim_error_t err = NULL;
  host_reaper_t *r = NULL;

  memset(m, 0, sizeof *m);
  m->verbose = getenv("MOCK_CTX_VERBOSE") != NULL;
  assert_int_equal(uv_loop_init(&m->loop), 0);
  m->logger.struct_size = sizeof m->logger;
  m->logger.write = log_write;
  m->logger.data = m;
  m->logger.level = CSHIM_LOG_DEBUG;
  if (host_reaper_new(&m->loop, &m->logger, &r, &err) < 0)
    fail_msg("reaper: %s", err->msg);
  m->reaper_host = r;
  m->reaper = host_reaper_api(r);
  m->publisher.struct_size = sizeof m->publisher;
  m->publisher.publish = publish;
  m->shutdown.struct_size = sizeof m->shutdown;
  m->shutdown.register_callback = sd_register;
  m->shutdown.shutdown = sd_shutdown;
  m->shutdown.on_done = sd_on_done;
  m->shutdown.is_shutting_down = sd_is_shutting_down;
  m->config.kind = CSHIM_CONFIG_MAP;
  m->config.keys = m->config_keys;
  m->config.items = m->config_items;
  m->config.file = "<test>";
  m->config.line = 1;
  m->config.column = 1;
}

static void
walk_cb(uv_handle_t *h, void *arg)
{
  int *n = arg;
  if (!uv_is_closing(h)) {
    fprintf(stderr, "handle left open: type %d\n", (int)h->type);
    (*n)++;
  }
}

void
mock_ctx_fini(mock_ctx_t *m)
{
  int left = 0;
  host_reaper_close(m->reaper_host);
  uv_run(&m->loop, UV_RUN_DEFAULT);
  uv_walk(&m->loop, walk_cb, &left);
  assert_int_equal(left, 0);
  assert_int_equal(uv_loop_close(&m->loop), 0);
  for (size_t i = 0; i < m->n_events; i++) {
    free(m->events[i].topic);
    free(m->events[i].data);
  }
  for (size_t i = 0; i < m->config.n; i++)
    free(m->config_values[i]);
}

void
mock_ctx_set_config(mock_ctx_t *m, const char *key, const char *value)
{
  size_t i = m->config.n++;
  assert_true(i < MOCK_CTX_MAX);
  m->config_keys[i] = key;
  m->config_values[i] = cshim_xstrdup(value);
  memset(&m->config_items[i], 0, sizeof m->config_items[i]);
  m->config_items[i].kind = CSHIM_CONFIG_SCALAR;
  m->config_items[i].value = m->config_values[i];
  m->config_items[i].file = "<test>";
  m->config_items[i].line = (unsigned)i + 2;
  m->config_items[i].column = 3;
}

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
};

mock_call_t *
mock_call_new(const char *method)
{
  mock_call_t *c = cshim_xmalloc0(sizeof *c);
  c->base.ops = &call_ops;
  c->base.service = "containerd.task.v2.Task";
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

struct until
{
  bool (*pred)(void *);
  void *data;
  bool done;
  bool timed_out;
};

static void
poll_timer_cb(uv_timer_t *t)
{
  struct until *u = t->data;
  if (u->pred(u->data)) {
    u->done = true;
    uv_stop(t->loop);
  }
}

static void
timeout_cb(uv_timer_t *t)
{
  struct until *u = t->data;
  u->timed_out = true;
  uv_stop(t->loop);
}

bool
mock_ctx_run_until(mock_ctx_t *m, bool (*pred)(void *data), void *data, uint64_t timeout_ms)
{
  struct until u = {pred, data, false, false};
  uv_timer_t poll, timeout;

  if (pred(data))
    return true;
  uv_timer_init(&m->loop, &poll);
  uv_timer_init(&m->loop, &timeout);
  poll.data = timeout.data = &u;
  uv_timer_start(&poll, poll_timer_cb, 1, 1);
  uv_timer_start(&timeout, timeout_cb, timeout_ms, 0);
  while (!u.done && !u.timed_out)
    uv_run(&m->loop, UV_RUN_DEFAULT);
  uv_close((uv_handle_t *)&poll, NULL);
  uv_close((uv_handle_t *)&timeout, NULL);
  uv_run(&m->loop, UV_RUN_NOWAIT);
  return pred(data);
}

static bool
call_answered(void *data)
{
  return ((mock_call_t *)data)->answered > 0;
}

bool
mock_ctx_run_call(mock_ctx_t *m, mock_call_t *c, uint64_t timeout_ms)
{
  return mock_ctx_run_until(m, call_answered, c, timeout_ms);
}

static bool
never(void *data)
{
  return false;
}

void
mock_ctx_run_for(mock_ctx_t *m, uint64_t ms)
{
  mock_ctx_run_until(m, never, NULL, ms);
}

int
mock_ctx_find_event(const mock_ctx_t *m, const char *topic, size_t from)
{
  for (size_t i = from; i < m->n_events; i++)
    if (strcmp(m->events[i].topic, topic) == 0)
      return (int)i;
  return -1;
}

ProtobufCMessage *
mock_ctx_unpack_event(const mock_ctx_t *m, size_t i)
{
  assert_true(i < m->n_events);
  return protobuf_c_message_unpack(m->events[i].desc, NULL, m->events[i].len, m->events[i].data);
}
