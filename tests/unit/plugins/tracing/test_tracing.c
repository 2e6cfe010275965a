// SPDX-License-Identifier: Apache-2.0
// Tests of plugins/tracing/tracing.c through its descriptor and a mock init context: when it
// skips itself, how a call's span continues the caller's trace, children, and what happens to
// spans when the collector is away (export.c on the real loop, to a closed local port).
#define _GNU_SOURCE /* strcasestr */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <sys/socket.h>
#include <unistd.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mock_host.h"

/* The plugin's own file: the test reads its instance. */
#include "tracing.c"

#include "opentelemetry/proto/collector/trace/v1/trace_service.pb-c.h"

/* Last: cmocka defines a `fail` macro that would clash with cshim_ttrpc_call_ops_t.fail. */
#include <cmocka.h>

/* The oldest and the newest span of the export queue. */
static tracing_span_t *
queue_first(tracing_t *tr)
{
  assert_false(cshim_list_empty(&tr->queue.spans));
  return cshim_list_entry(cshim_list_first(&tr->queue.spans), tracing_span_t, link);
}

static tracing_span_t *
queue_last(tracing_t *tr)
{
  assert_false(cshim_list_empty(&tr->queue.spans));
  return cshim_list_entry(cshim_list_last(&tr->queue.spans), tracing_span_t, link);
}

/* A call whose metadata the test sets. */
typedef struct fake_call_s
{
  cshim_ttrpc_call_t base;
  const char *traceparent;
  const char *tracestate;
} fake_call_t;

static const char *
fake_metadata(const cshim_ttrpc_call_t *call, const char *key)
{
  const fake_call_t *c = (const fake_call_t *)call;
  if (strcmp(key, "traceparent") == 0)
    return c->traceparent;
  if (strcmp(key, "tracestate") == 0)
    return c->tracestate;
  return NULL;
}

static const cshim_ttrpc_call_ops_t fake_ops = {.struct_size = sizeof(cshim_ttrpc_call_ops_t),
                                                .metadata = fake_metadata};

static void
fake_call_init(fake_call_t *c, const char *method, const char *traceparent)
{
  memset(c, 0, sizeof *c);
  c->base.ops = &fake_ops;
  c->base.service = "containerd.task.v2.Task";
  c->base.method = method;
  c->traceparent = traceparent;
}

static int
init_plugin(mock_host_t *h, void **instance, cshim_error_t *err)
{
  return cshim_plugin_entry()->init(&h->ctx, instance, err);
}

static bool
logged(const mock_host_t *h, const char *needle)
{
  for (size_t i = 0; i < h->n_lines; i++)
    if (strstr(h->lines[i].line, needle))
      return true;
  return false;
}

static void
close_plugin(mock_host_t *h, void *instance)
{
  cshim_plugin_entry()->close(instance);
  for (int i = 0; i < 1000 && uv_run(&h->loop, UV_RUN_ONCE) != 0; i++)
    ;
}

static void
test_tracing_skips_without_an_endpoint(void **state)
{
  mock_host_t h;
  void *instance = NULL;
  cshim_error_t err = NULL;
  (void)state;

  unsetenv("OTEL_EXPORTER_OTLP_ENDPOINT");
  unsetenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT");
  mock_host_init(&h, TRACING_URI, NULL);
  assert_int_equal(init_plugin(&h, &instance, &err), CSHIM_PLUGIN_SKIP);
  assert_non_null(strstr(err->msg, "tracing is off"));
  assert_null(instance);
  cshim_error_release(&err);
  mock_host_fini(&h);
}

static void
test_tracing_skips_when_the_config_disables_it(void **state)
{
  mock_host_t h;
  void *instance = NULL;
  cshim_error_t err = NULL;
  (void)state;

  setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:1", 1);
  mock_host_init(&h, TRACING_URI, NULL);
  mock_host_set_config(&h, "enabled", "false");
  assert_int_equal(init_plugin(&h, &instance, &err), CSHIM_PLUGIN_SKIP);
  assert_string_equal(err->msg, "disabled by config");
  cshim_error_release(&err);
  mock_host_fini(&h);
}

static void
test_tracing_refuses_an_endpoint_that_is_not_http(void **state)
{
  mock_host_t h;
  void *instance = NULL;
  cshim_error_t err = NULL;
  (void)state;

  mock_host_init(&h, TRACING_URI, NULL);
  mock_host_set_config(&h, "endpoint", "ftp://collector/v1/traces");
  assert_int_equal(init_plugin(&h, &instance, &err), -EINVAL);
  assert_non_null(strstr(err->msg, "`endpoint` `ftp://collector/v1/traces` is not an http://"));
  cshim_error_release(&err);
  mock_host_fini(&h);
}

static void
test_tracing_call_span_continues_the_callers_trace(void **state)
{
  static const char tp[] = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
  mock_host_t h;
  void *instance = NULL;
  cshim_error_t err = NULL;
  fake_call_t call;
  tracing_t *tr;
  cshim_span_t *span, *child;
  uint8_t t[16], s[8], f;
  char buf[CSHIM_TRACEPARENT_LEN + 1];
  (void)state;

  setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:1", 1);
  mock_host_init(&h, TRACING_URI, NULL);
  mock_host_set_property(&h, CSHIM_PROP_BINARY, "/usr/bin/containerd-shim-cshim-v2");
  assert_int_equal(init_plugin(&h, &instance, &err), 0);
  tr = instance;
  assert_string_equal(tr->service, "containerd-shim-cshim-v2");
  assert_string_equal(tr->url, "http://127.0.0.1:1/v1/traces");

  fake_call_init(&call, "Create", tp);
  call.tracestate = "vendor=x";
  assert_int_equal(tr->interceptor.before(tr, &call.base), 0);
  span = tr->base.call_span(&tr->base, &call.base);
  assert_non_null(span);
  assert_string_equal(span->name, "containerd.task.v2.Task/Create");
  assert_int_equal(tracing_traceparent_parse(tp, t, s, &f), 0);
  assert_memory_equal(span->trace_id, t, 16);
  assert_true(span->has_parent);
  assert_memory_equal(span->parent_id, s, 8);
  assert_memory_not_equal(span->span_id, s, 8);
  assert_string_equal(span->trace_state, "vendor=x");

  child = cshim_span_start(&tr->base, span, "runc create");
  assert_non_null(child);
  assert_memory_equal(child->trace_id, t, 16);
  assert_memory_equal(child->parent_id, span->span_id, 8);
  assert_int_equal(tr->base.traceparent(child, buf, sizeof buf), 0);
  assert_memory_equal(buf, "00-4bf92f3577b34da6a3ce929d0e0e4736-", 36);
  assert_null(cshim_span_start(&tr->base, NULL, "no parent")); /* not traced */
  cshim_span_end(&tr->base, child, -ENOENT, "runc create: no such container");
  tr->interceptor.after(tr, &call.base, 5 /* NotFound */);
  assert_null(tr->base.call_span(&tr->base, &call.base));
  assert_int_equal(tr->n_open, 0);
  assert_int_equal(tr->queue.n, 2);
  assert_true(queue_first(tr)->error); /* the child, ended first */
  assert_string_equal(queue_first(tr)->status_message, "runc create: no such container");
  assert_true(queue_last(tr)->error);
  assert_string_equal(queue_last(tr)->status_message, "answered with gRPC status 5");
  assert_int_equal(queue_last(tr)->attrs[queue_last(tr)->n_attrs - 1].int_value, 5);

  tracing_queue_clear(&tr->queue);
  close_plugin(&h, instance);
  mock_host_fini(&h);
}

static void
test_tracing_roots_calls_without_context_and_skips_unsampled_ones(void **state)
{
  mock_host_t h;
  void *instance = NULL;
  cshim_error_t err = NULL;
  fake_call_t root, unsampled, malformed;
  tracing_t *tr;
  cshim_span_t *span;
  (void)state;

  setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:1", 1);
  mock_host_init(&h, TRACING_URI, NULL);
  assert_int_equal(init_plugin(&h, &instance, &err), 0);
  tr = instance;

  fake_call_init(&root, "State", NULL);
  fake_call_init(&unsampled, "State", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00");
  fake_call_init(&malformed, "State", "00-zz");
  assert_int_equal(tr->interceptor.before(tr, &root.base), 0);
  assert_int_equal(tr->interceptor.before(tr, &unsampled.base), 0);
  assert_int_equal(tr->interceptor.before(tr, &malformed.base), 0);
  span = tr->base.call_span(&tr->base, &root.base);
  assert_non_null(span);
  assert_false(span->has_parent);
  assert_null(tr->base.call_span(&tr->base, &unsampled.base));
  span = tr->base.call_span(&tr->base, &malformed.base);
  assert_non_null(span); /* a root of its own, like no context */
  assert_false(span->has_parent);
  tr->interceptor.after(tr, &unsampled.base, CSHIM_GRPC_OK);
  tr->interceptor.after(tr, &root.base, CSHIM_GRPC_OK);
  /* Calls never answered: their spans are not sent at exit. */
  close_plugin(&h, instance);
  mock_host_fini(&h);
}

static void
test_tracing_drops_and_counts_when_the_collector_is_away(void **state)
{
  mock_host_t h;
  void *instance = NULL;
  cshim_error_t err = NULL;
  fake_call_t call;
  tracing_t *tr;
  (void)state;

  /* Port 1 on loopback: nothing listens, the connection is refused at once. */
  setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:1", 1);
  mock_host_init(&h, TRACING_URI, NULL);
  assert_int_equal(init_plugin(&h, &instance, &err), 0);
  tr = instance;
  for (int i = 0; i < 3; i++) {
    fake_call_init(&call, "State", NULL);
    tr->interceptor.before(tr, &call.base);
    tr->interceptor.after(tr, &call.base, CSHIM_GRPC_OK);
  }
  assert_int_equal(tr->queue.n, 3);
  export_now(tr);
  assert_true(tracing_exporter_busy(tr->exporter)); /* never waits in the call */
  for (int i = 0; i < 1000 && tracing_exporter_busy(tr->exporter); i++)
    uv_run(&h.loop, UV_RUN_ONCE);
  assert_false(tracing_exporter_busy(tr->exporter));
  assert_int_equal(tr->queue.dropped, 3);
  assert_int_equal(tr->queue.exported, 0);
  assert_int_equal(tr->export_failures, 1);
  assert_true(logged(&h, "cannot export spans to `http://127.0.0.1:1/v1/traces`"));
  {
    cshim_tracer_stats_t st = {.struct_size = sizeof st};
    tr->base.get_stats(&tr->base, &st);
    assert_int_equal(st.dropped, 3);
    assert_int_equal(st.export_failures, 1);
    assert_int_equal(st.queued, 0);
  }

  /* At exit, what is queued gets its bounded attempt, then everything is released. */
  fake_call_init(&call, "Delete", NULL);
  tr->interceptor.before(tr, &call.base);
  tr->interceptor.after(tr, &call.base, CSHIM_GRPC_OK);
  close_plugin(&h, instance);
  mock_host_fini(&h);
}

static void
test_tracing_exit_waits_a_bounded_time_for_a_silent_collector(void **state)
{
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t alen = sizeof a;
  mock_host_t h;
  void *instance = NULL;
  cshim_error_t err = NULL;
  fake_call_t call;
  tracing_t *tr;
  char url[64];
  int l;
  (void)state;

  /* A collector that takes the connection (the kernel's backlog) and never answers. */
  l = socket(AF_INET, SOCK_STREAM, 0);
  assert_true(l >= 0);
  assert_int_equal(bind(l, (struct sockaddr *)&a, sizeof a), 0);
  assert_int_equal(listen(l, 4), 0);
  assert_int_equal(getsockname(l, (struct sockaddr *)&a, &alen), 0);
  snprintf(url, sizeof url, "http://127.0.0.1:%d/v1/traces", ntohs(a.sin_port));
  setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", url, 1);
  mock_host_init(&h, TRACING_URI, NULL);
  assert_int_equal(init_plugin(&h, &instance, &err), 0);
  unsetenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT");
  tr = instance;
  fake_call_init(&call, "Delete", NULL);
  tr->interceptor.before(tr, &call.base);
  tr->interceptor.after(tr, &call.base, CSHIM_GRPC_OK);

  cshim_plugin_entry()->close(instance);
  /* The loop runs until the plugin's handles are gone, as the host's does at exit. */
  while (uv_run(&h.loop, UV_RUN_ONCE) != 0)
    ;
  /* It ended through the flush timer (not by the collector answering), and the loop ran dry. */
  assert_true(logged(&h, "1 spans not exported within 1000 ms of exiting"));
  close(l);
  mock_host_fini(&h);
}

static void
test_tracing_environment_it_cannot_follow_turns_it_off_not_the_shim(void **state)
{
  static const struct
  {
    const char *key, *value, *why;
    bool warned;
  } cases[] = {
      {"OTEL_SDK_DISABLED", "true", "OTEL_SDK_DISABLED is true", false},
      {"OTEL_TRACES_EXPORTER", "none", "OTEL_TRACES_EXPORTER is none", false},
      {"OTEL_EXPORTER_OTLP_PROTOCOL", "grpc", "OTLP protocol `grpc` is not supported", true},
      {"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "ftp://x/v1/traces", "is not an http://", true},
      {"OTEL_EXPORTER_OTLP_HEADERS", "a=b%0aX: y", "OTLP header `a`", true},
  };
  (void)state;

  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    mock_host_t h;
    void *instance = NULL;
    cshim_error_t err = NULL;

    setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:1", 1);
    setenv(cases[i].key, cases[i].value, 1);
    mock_host_init(&h, TRACING_URI, NULL);
    assert_int_equal(init_plugin(&h, &instance, &err), CSHIM_PLUGIN_SKIP);
    if (strstr(err->msg, cases[i].why) == NULL)
      fail_msg("%s=%s: %s", cases[i].key, cases[i].value, err->msg);
    assert_int_equal(logged(&h, "tracing off"), cases[i].warned);
    cshim_error_release(&err);
    unsetenv(cases[i].key);
    mock_host_fini(&h);
  }
}

/* ---- a collector on the test's loop: answers each POST with 200 and a body ---- */

#define PROBE_BODY "cshim-probe-body"

typedef struct collector_s
{
  uv_tcp_t server;
  uv_tcp_t conn;
  bool busy;
  char buf[65536];
  size_t len;
  int requests;
  char last_request[4096]; /* headers of the last request */
  uv_write_t write;
} collector_t;

static void
collector_closed_cb(uv_handle_t *h)
{
  collector_t *c = h->data;
  c->busy = false;
}

static void
collector_alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
  collector_t *c = h->data;
  (void)suggested;
  *buf = uv_buf_init(c->buf + c->len, (unsigned)(sizeof c->buf - c->len - 1));
}

static void
collector_written_cb(uv_write_t *w, int status)
{
  collector_t *c = w->data;
  (void)status;
  uv_close((uv_handle_t *)&c->conn, collector_closed_cb);
}

static void
collector_read_cb(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
  static char answer[] = "HTTP/1.1 200 OK\r\nContent-Type: application/x-protobuf\r\n"
                         "Content-Length: 16\r\nConnection: close\r\n\r\n" PROBE_BODY;
  collector_t *c = s->data;
  char *end;
  const char *cl;
  size_t head, body = 0;
  uv_buf_t out = uv_buf_init(answer, sizeof answer - 1);
  (void)buf;

  if (n < 0) {
    uv_close((uv_handle_t *)&c->conn, collector_closed_cb);
    return;
  }
  c->len += (size_t)n;
  c->buf[c->len] = '\0';
  end = strstr(c->buf, "\r\n\r\n");
  if (end == NULL)
    return;
  head = (size_t)(end - c->buf) + 4;
  cl = strcasestr(c->buf, "\r\nContent-Length:");
  if (cl && cl < end)
    body = strtoul(cl + 17, NULL, 10);
  if (c->len < head + body)
    return;
  snprintf(c->last_request, sizeof c->last_request, "%.*s", (int)head, c->buf);
  c->requests++;
  uv_read_stop(s);
  c->write.data = c;
  uv_write(&c->write, s, &out, 1, collector_written_cb);
}

static void
collector_connection_cb(uv_stream_t *server, int status)
{
  collector_t *c = server->data;

  assert_int_equal(status, 0);
  assert_false(c->busy); /* one request at a time, as the exporter promises */
  c->busy = true;
  c->len = 0;
  uv_tcp_init(server->loop, &c->conn);
  c->conn.data = c;
  assert_int_equal(uv_accept(server, (uv_stream_t *)&c->conn), 0);
  uv_read_start((uv_stream_t *)&c->conn, collector_alloc_cb, collector_read_cb);
}

static int
collector_start(collector_t *c, uv_loop_t *loop)
{
  struct sockaddr_in a;
  int alen = sizeof a;

  memset(c, 0, sizeof *c);
  uv_ip4_addr("127.0.0.1", 0, &a);
  uv_tcp_init(loop, &c->server);
  c->server.data = c;
  assert_int_equal(uv_tcp_bind(&c->server, (struct sockaddr *)&a, 0), 0);
  assert_int_equal(uv_listen((uv_stream_t *)&c->server, 4, collector_connection_cb), 0);
  assert_int_equal(uv_tcp_getsockname(&c->server, (struct sockaddr *)&a, &alen), 0);
  return ntohs(a.sin_port);
}

static void
test_tracing_exports_to_a_collector_and_keeps_its_answer_off_stdout(void **state)
{
  mock_host_t h;
  void *instance = NULL;
  cshim_error_t err = NULL;
  collector_t col;
  fake_call_t call;
  tracing_t *tr;
  char url[64], tmpl[] = "/tmp/cshim-tracing-stdout-XXXXXX", seen[256] = "";
  int saved, fd;
  ssize_t n;
  (void)state;

  mock_host_init(&h, TRACING_URI, NULL);
  snprintf(url, sizeof url, "http://127.0.0.1:%d/v1/traces", collector_start(&col, &h.loop));
  setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", url, 1);
  setenv("OTEL_EXPORTER_OTLP_HEADERS", "x-probe=1", 1);
  assert_int_equal(init_plugin(&h, &instance, &err), 0);
  unsetenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT");
  unsetenv("OTEL_EXPORTER_OTLP_HEADERS");
  tr = instance;
  for (int i = 0; i < 2; i++) {
    fake_call_init(&call, "State", NULL);
    tr->interceptor.before(tr, &call.base);
    tr->interceptor.after(tr, &call.base, CSHIM_GRPC_OK);
  }

  /* Whatever libcurl would print goes to a file while the export runs. */
  fflush(stdout);
  fd = mkstemp(tmpl);
  assert_true(fd >= 0);
  saved = dup(STDOUT_FILENO);
  dup2(fd, STDOUT_FILENO);
  export_now(tr);
  for (int i = 0; i < 2000 && tracing_exporter_busy(tr->exporter); i++)
    uv_run(&h.loop, UV_RUN_ONCE);
  fflush(stdout);
  dup2(saved, STDOUT_FILENO);
  close(saved);
  n = pread(fd, seen, sizeof seen - 1, 0);
  close(fd);
  unlink(tmpl);

  assert_false(tracing_exporter_busy(tr->exporter));
  assert_int_equal(tr->queue.exported, 2);
  assert_int_equal(tr->queue.dropped, 0);
  assert_int_equal(col.requests, 1);
  assert_non_null(strstr(col.last_request, "POST /v1/traces HTTP/1.1\r\n"));
  assert_non_null(strcasestr(col.last_request, "\r\nContent-Type: application/x-protobuf\r\n"));
  assert_non_null(strcasestr(col.last_request, "\r\nx-probe: 1\r\n"));
  if (n > 0 && strstr(seen, PROBE_BODY))
    fail_msg("the collector's answer reached stdout: %s", seen);

  uv_close((uv_handle_t *)&col.server, NULL);
  close_plugin(&h, instance);
  mock_host_fini(&h);
}

static void
test_tracing_upgrade_hands_queued_spans_to_the_new_image(void **state)
{
  const cshim_plugin_t *desc = cshim_plugin_entry();
  mock_host_t h;
  void *old = NULL, *new = NULL;
  cshim_error_t err = NULL;
  cshim_state_writer_t w, crash;
  cshim_state_reader_t r;
  fake_call_t call;
  tracing_t *a, *b;
  uint8_t *doc = NULL, *crash_doc = NULL;
  size_t len = 0, crash_len = 0;
  Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceRequest *m;
  static const char *const methods[] = {"Create", "Start", "State"};
  (void)state;

  setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:1", 1);
  mock_host_init(&h, TRACING_URI, NULL);
  assert_true(cshim_plugin_upgrade_hooks(desc));
  assert_int_equal(init_plugin(&h, &old, &err), 0);
  a = old;
  for (int i = 0; i < 3; i++) {
    fake_call_init(&call, methods[i], NULL);
    a->interceptor.before(a, &call.base);
    a->interceptor.after(a, &call.base, CSHIM_GRPC_OK);
  }
  a->queue.dropped = 4;
  assert_null(cshim_plugin_upgrade_busy(desc, old)); /* never waits for the collector */

  cshim_state_writer_init(&w);
  assert_int_equal(desc->upgrade_save(old, &w, &err), 0);
  assert_int_equal(cshim_state_writer_finish(&w, &doc, &len, &err), 0);
  cshim_state_writer_fini(&w);
  assert_int_equal(a->queue.n, 3); /* saving changes nothing */
  cshim_state_writer_init(&crash);
  crash.crash = true;
  assert_int_equal(desc->upgrade_save(old, &crash, &err), 0);
  assert_int_equal(cshim_state_writer_finish(&crash, &crash_doc, &crash_len, &err), 0);
  cshim_state_writer_fini(&crash);

  /* The new image: the spans come back as the first request it sends. */
  assert_int_equal(init_plugin(&h, &new, &err), 0);
  b = new;
  assert_int_equal(cshim_state_open(doc, len, CSHIM_STATE_FORMAT_MIN, CSHIM_STATE_FORMAT_VERSION,
                                    NULL, &r, &err),
                   0);
  assert_int_equal(desc->upgrade_restore(new, &r, &err), 0);
  assert_int_equal(b->pending_spans, 3);
  assert_int_equal(waiting(b), 3);
  assert_int_equal(b->queue.dropped, 4);
  m = opentelemetry__proto__collector__trace__v1__export_trace_service_request__unpack(
      NULL, b->pending_len, b->pending_body);
  assert_non_null(m);
  assert_int_equal(m->resource_spans[0]->scope_spans[0]->n_spans, 3);
  assert_string_equal(m->resource_spans[0]->scope_spans[0]->spans[0]->name,
                      "containerd.task.v2.Task/Create");
  opentelemetry__proto__collector__trace__v1__export_trace_service_request__free_unpacked(m, NULL);

  /* They leave before anything queued since (here they are refused and counted). */
  export_now(b);
  assert_null(b->pending_body);
  assert_int_equal(tracing_exporter_in_flight(b->exporter), 3);
  for (int i = 0; i < 1000 && tracing_exporter_busy(b->exporter); i++)
    uv_run(&h.loop, UV_RUN_ONCE);
  assert_int_equal(b->queue.dropped, 7);

  /* A crash snapshot keeps the counters only. */
  assert_int_equal(cshim_state_open(crash_doc, crash_len, CSHIM_STATE_FORMAT_MIN,
                                    CSHIM_STATE_FORMAT_VERSION, NULL, &r, &err),
                   0);
  assert_int_equal(desc->upgrade_restore(new, &r, &err), 0);
  assert_null(b->pending_body);
  assert_int_equal(b->queue.dropped, 4);

  /* Neither instance reaches a collector: their spans are dropped at exit, nothing leaks. */
  tracing_queue_clear(&a->queue);
  close_plugin(&h, old);
  close_plugin(&h, new);
  free(doc);
  free(crash_doc);
  mock_host_fini(&h);
}

int
main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_tracing_skips_without_an_endpoint),
      cmocka_unit_test(test_tracing_skips_when_the_config_disables_it),
      cmocka_unit_test(test_tracing_refuses_an_endpoint_that_is_not_http),
      cmocka_unit_test(test_tracing_environment_it_cannot_follow_turns_it_off_not_the_shim),
      cmocka_unit_test(test_tracing_call_span_continues_the_callers_trace),
      cmocka_unit_test(test_tracing_roots_calls_without_context_and_skips_unsampled_ones),
      cmocka_unit_test(test_tracing_drops_and_counts_when_the_collector_is_away),
      cmocka_unit_test(test_tracing_exports_to_a_collector_and_keeps_its_answer_off_stdout),
      cmocka_unit_test(test_tracing_exit_waits_a_bounded_time_for_a_silent_collector),
      cmocka_unit_test(test_tracing_upgrade_hands_queued_spans_to_the_new_image),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
