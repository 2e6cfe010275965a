// SPDX-License-Identifier: Apache-2.0
// The tracing plugin (io.containerd.internal.v1 "tracing"): a span per ttrpc call, continuing
// the W3C trace context containerd puts in the call's metadata, children for the work plugins
// do for it (cshim_tracer_t), exported in batches over OTLP/HTTP. Skips itself when no OTLP
// endpoint is set and the config does not enable it.
#include "tracing.h"

#include <cshim/config.h>
#include <cshim/plugin.h>
#include <cshim/util.h>

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const char *const tracing_config_keys[] = {"enabled", "endpoint", "service_name", NULL};

/* Metadata keys of W3C trace context in ttrpc requests (containerd's otelttrpc client
   interceptor injects them with the TraceContext propagator). */
#define TRACEPARENT_KEY "traceparent"
#define TRACESTATE_KEY "tracestate"
#define TRACESTATE_MAX 512u

struct tracing_s
{
  cshim_tracer_t base; /* must stay first: what users of CSHIM_TRACER_ID call */
  uv_loop_t *loop;
  const cshim_logger_t *log;
  cshim_host_t *host;
  char *service;
  char *instance; /* <namespace>/<id> of the shim */
  char *url;
  tracing_queue_t queue;
  cshim_list_t open; /* tracing_span_t started, not ended; newest first */
  size_t n_open;
  uint64_t not_recorded; /* spans not started: too many open, or closing */
  uint64_t export_failures;
  char *last_error;
  tracing_exporter_t *exporter;
  uv_timer_t batch_timer;
  uv_timer_t flush_timer;
  int open_handles; /* the timers and the exporter */
  bool closing;
  cshim_ttrpc_interceptor_t interceptor;
  /* Spans a previous image handed over (live upgrade), already encoded: sent first. */
  uint8_t *pending_body;
  size_t pending_len, pending_spans;
};

/* ---- spans ---- */

static void
link_open(tracing_t *tr, tracing_span_t *s)
{
  s->tr = tr;
  cshim_list_push_front(&tr->open, &s->link);
  tr->n_open++;
}

static void
unlink_open(tracing_t *tr, tracing_span_t *s)
{
  cshim_list_remove(&s->link);
  tr->n_open--;
}

static bool
may_open(tracing_t *tr)
{
  if (tr->closing || tr->n_open >= TRACING_MAX_OPEN) {
    tr->not_recorded++;
    return false;
  }
  return true;
}

static void export_now(tracing_t *tr);

/* Spans waiting for export: the queue and what a previous image handed over. */
static size_t
waiting(const tracing_t *tr)
{
  return tr->queue.n + (tr->pending_body ? tr->pending_spans : 0);
}

static void
end_span(tracing_span_t *s, bool error, const char *message)
{
  tracing_t *tr = s->tr;

  unlink_open(tr, s);
  s->end_unix_ns = tracing_unix_ns();
  s->error = error;
  if (error && message)
    s->status_message = cshim_xstrndup(message, TRACING_MAX_STRING);
  tracing_queue_push(&tr->queue, s);
  if (tr->queue.n >= TRACING_MAX_BATCH)
    export_now(tr);
}

static cshim_span_t *
tracer_start(cshim_tracer_t *base, const cshim_span_t *parent, const char *name)
{
  tracing_t *tr = (tracing_t *)base;
  tracing_span_t *s;

  if (parent == NULL || !may_open(tr))
    return NULL;
  s = tracing_span_new(name, TRACING_KIND_INTERNAL);
  memcpy(s->trace_id, parent->trace_id, sizeof s->trace_id);
  memcpy(s->parent_id, parent->span_id, sizeof s->parent_id);
  s->has_parent = true;
  s->flags = parent->flags;
  if (parent->trace_state)
    s->trace_state = cshim_xstrdup(parent->trace_state);
  link_open(tr, s);
  return s;
}

static void
tracer_set_attr(cshim_span_t *span, const char *key, const char *value)
{
  tracing_span_set_attr(span, key, value);
}

static void
tracer_end(cshim_span_t *span, int error, const char *message)
{
  if (span)
    end_span(span, error != 0, message);
}

static cshim_span_t *
tracer_call_span(cshim_tracer_t *base, const cshim_ttrpc_call_t *call)
{
  tracing_t *tr = (tracing_t *)base;

  cshim_list_t *l;

  CSHIM_LIST_FOREACH (l, &tr->open) {
    tracing_span_t *s = cshim_list_entry(l, tracing_span_t, link);
    if (s->call == call)
      return s;
  }
  return NULL;
}

static int
tracer_traceparent(const cshim_span_t *span, char *buf, size_t len)
{
  if (span == NULL || len < CSHIM_TRACEPARENT_LEN + 1)
    return -EINVAL;
  tracing_traceparent_format(span->trace_id, span->span_id, span->flags, buf);
  return 0;
}

static void
tracer_get_stats(cshim_tracer_t *base, cshim_tracer_stats_t *out)
{
  tracing_t *tr = (tracing_t *)base;
  cshim_tracer_stats_t st = {.struct_size = sizeof st,
                             .open = tr->n_open,
                             .queued = waiting(tr),
                             .exported = tr->queue.exported,
                             .dropped = tr->queue.dropped,
                             .not_recorded = tr->not_recorded,
                             .export_failures = tr->export_failures};

  cshim_struct_size_copy_out(out, &st, sizeof st);
}

/* ---- the interceptor: a server span per call ---- */

static int
call_before(void *data, cshim_ttrpc_call_t *call)
{
  tracing_t *tr = data;
  const char *tp = cshim_ttrpc_call_metadata(call, TRACEPARENT_KEY);
  const char *ts, *ns;
  uint8_t trace_id[16], parent_id[8], flags = 1;
  bool has_parent = false;
  tracing_span_t *s;
  char name[TRACING_MAX_STRING];

  if (tp) {
    if (tracing_traceparent_parse(tp, trace_id, parent_id, &flags) == 0)
      has_parent = true;
    else
      cshim_log_debug(tr->log, "%s/%s: ignoring malformed traceparent `%.64s`", call->service,
                      call->method, tp);
  }
  /* The caller decided not to sample this trace: neither do we. */
  if (has_parent && !(flags & 1))
    return 0;
  if (!may_open(tr))
    return 0;
  snprintf(name, sizeof name, "%s/%s", call->service, call->method);
  s = tracing_span_new(name, TRACING_KIND_SERVER);
  if (has_parent) {
    memcpy(s->trace_id, trace_id, 16);
    memcpy(s->parent_id, parent_id, 8);
    s->has_parent = true;
    s->flags = flags;
    ts = cshim_ttrpc_call_metadata(call, TRACESTATE_KEY);
    if (ts && ts[0])
      s->trace_state = cshim_xstrndup(ts, TRACESTATE_MAX);
  } else
    tracing_random_id(s->trace_id, sizeof s->trace_id);
  tracing_span_set_attr(s, "rpc.system", "ttrpc");
  tracing_span_set_attr(s, "rpc.service", call->service);
  tracing_span_set_attr(s, "rpc.method", call->method);
  ns = cshim_ttrpc_call_metadata(call, CSHIM_TTRPC_NAMESPACE_KEY);
  if (ns)
    tracing_span_set_attr(s, "containerd.namespace", ns);
  s->call = call;
  link_open(tr, s);
  return 0;
}

static void
call_after(void *data, const cshim_ttrpc_call_t *call, int grpc_code)
{
  tracing_t *tr = data;
  tracing_span_t *s = tracer_call_span(&tr->base, call);
  char message[48];

  if (s == NULL)
    return;
  s->call = NULL;
  tracing_span_set_int(s, "rpc.grpc.status_code", grpc_code);
  snprintf(message, sizeof message, "answered with gRPC status %d", grpc_code);
  end_span(s, grpc_code != CSHIM_GRPC_OK, message);
}

/* ---- export ---- */

static void release(tracing_t *tr);

static void
export_now(tracing_t *tr)
{
  cshim_list_t list = {0};
  uint8_t *body;
  size_t n, len;
  cshim_error_t err = NULL;

  if (tr->exporter == NULL || tracing_exporter_busy(tr->exporter))
    return;
  if (tr->pending_body) {
    /* The exporter takes the buffer over. */
    body = cshim_steal_pointer(&tr->pending_body);
    n = tr->pending_spans;
    tr->pending_spans = 0;
    if (tracing_exporter_send(tr->exporter, body, tr->pending_len, n, &err) < 0) {
      tr->queue.dropped += n;
      cshim_error_release(&err);
    }
    return;
  }
  if (tr->queue.n == 0)
    return;
  tracing_queue_take(&tr->queue, TRACING_MAX_BATCH, &list, &n);
  body = tracing_encode(tr->service, tr->instance, &list, n, &len);
  tracing_span_list_free(&list);
  if (tracing_exporter_send(tr->exporter, body, len, n, &err) < 0) {
    tr->queue.dropped += n;
    cshim_log_debug(tr->log, "export of %zu spans: %s", n, err->msg);
    cshim_error_release(&err);
  }
}

static void
export_done_cb(void *data, size_t spans, bool ok, const char *why)
{
  tracing_t *tr = data;

  if (tr->closing) {
    /* flush_timer_cb has said what was left behind. */
    if (ok)
      tr->queue.exported += spans;
    else
      tr->queue.dropped += spans;
    if (ok && waiting(tr) > 0)
      export_now(tr);
    else
      release(tr);
    return;
  }
  if (ok) {
    tr->queue.exported += spans;
    if (tr->last_error) {
      cshim_log_info(tr->log, "exporting spans to `%s` again", tr->url);
      free(tr->last_error);
      tr->last_error = NULL;
    }
  } else {
    tr->queue.dropped += spans;
    tr->export_failures++;
    /* Said once per outage, not once per batch. */
    if (tr->last_error == NULL)
      cshim_log_warn(tr->log, "cannot export spans to `%s` (dropping them until it answers): %s",
                     tr->url, why ? why : "unknown error");
    free(tr->last_error);
    tr->last_error = cshim_xstrdup(why ? why : "unknown error");
  }
  if (tr->queue.n >= TRACING_MAX_BATCH)
    export_now(tr);
}

static void
batch_timer_cb(uv_timer_t *t)
{
  export_now(CSHIM_CONTAINER_OF(t, tracing_t, batch_timer));
}

static void
flush_timer_cb(uv_timer_t *t)
{
  tracing_t *tr = CSHIM_CONTAINER_OF(t, tracing_t, flush_timer);
  cshim_log_warn(tr->log, "%zu spans not exported within %u ms of exiting",
                 waiting(tr) + tracing_exporter_in_flight(tr->exporter), TRACING_FLUSH_MS);
  release(tr);
}

/* ---- state for the debug plugin ---- */

static char *
dump_state(void *data)
{
  tracing_t *tr = data;
  json_t *o = json_pack(
      "{s:s, s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:s?}", "endpoint", tr->url, "service",
      tr->service, "open", (json_int_t)tr->n_open, "queued", (json_int_t)waiting(tr), "accepted",
      (json_int_t)tr->queue.accepted, "exported", (json_int_t)tr->queue.exported, "dropped",
      (json_int_t)tr->queue.dropped, "not_recorded", (json_int_t)tr->not_recorded,
      "export_failures", (json_int_t)tr->export_failures, "last_error", tr->last_error);
  char *text = o ? json_dumps(o, JSON_COMPACT) : NULL;
  json_decref(o);
  return text;
}

/* ---- lifecycle ---- */

/* One of the timers or the exporter is closed; the memory goes with the last. */
static void
handle_gone(tracing_t *tr)
{
  if (--tr->open_handles > 0)
    return;
  free(tr->service);
  free(tr->instance);
  free(tr->url);
  free(tr->last_error);
  free(tr);
}

static void
handle_closed_cb(uv_handle_t *h)
{
  handle_gone(h->data);
}

static void
exporter_closed_cb(void *data)
{
  handle_gone(data);
}

/* Everything goes: what is still queued is counted as dropped. */
static void
release(tracing_t *tr)
{
  tracing_exporter_t *x = tr->exporter;

  if (tr->host)
    cshim_host_remove_state_source(tr->host, "tracing", tr);
  tr->host = NULL;
  tracing_queue_clear(&tr->queue);
  if (tr->pending_body) {
    tr->queue.dropped += tr->pending_spans;
    free(cshim_steal_pointer(&tr->pending_body));
    tr->pending_spans = 0;
  }
  if (x) {
    tr->exporter = NULL;
    tracing_exporter_close(x, exporter_closed_cb);
  }
  if (!uv_is_closing((uv_handle_t *)&tr->batch_timer))
    uv_close((uv_handle_t *)&tr->batch_timer, handle_closed_cb);
  if (!uv_is_closing((uv_handle_t *)&tr->flush_timer))
    uv_close((uv_handle_t *)&tr->flush_timer, handle_closed_cb);
}

static bool
is_set(const char *s)
{
  return s != NULL && s[0] != '\0';
}

static bool
is_http(const char *url)
{
  return strncmp(url, "http://", 7) == 0 || strncmp(url, "https://", 8) == 0;
}

/* The first of the variables that is set. */
static const char *
env_first(const char *a, const char *b)
{
  const char *v = getenv(a);
  return is_set(v) ? v : getenv(b);
}

/* The endpoint the OTEL_* variables name: 0 with *url set (NULL when none is named), or 1 with
   err set when they turn tracing off or ask for what cshim does not do. */
static int
env_endpoint(char **url, cshim_error_t *err)
{
  const char *disabled = getenv("OTEL_SDK_DISABLED");
  const char *exporter = getenv("OTEL_TRACES_EXPORTER");
  const char *protocol =
      env_first("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL");

  *url = tracing_endpoint_from_env(getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"),
                                   getenv("OTEL_EXPORTER_OTLP_ENDPOINT"));
  if (*url == NULL)
    return 0;
  if (disabled && strcasecmp(disabled, "true") == 0)
    cshim_error_make(err, ENOENT, "OTEL_SDK_DISABLED is true");
  else if (exporter && strcmp(exporter, "none") == 0)
    cshim_error_make(err, ENOENT, "OTEL_TRACES_EXPORTER is none");
  else if (is_set(protocol) && strcmp(protocol, "http/protobuf") != 0)
    cshim_error_make(err, ENOTSUP, "OTLP protocol `%.32s` is not supported (only http/protobuf)",
                     protocol);
  else if (!is_http(*url))
    cshim_error_make(err, EINVAL, "OTLP endpoint `%s` is not an http:// or https:// URL", *url);
  else
    return 0;
  free(*url);
  *url = NULL;
  return 1;
}

/* The collector's URL from the config, else from containerd's environment, else OTLP/HTTP's
   default when `enabled: true`; and the configured service name. CSHIM_PLUGIN_SKIP (err set)
   when tracing is off. */
static int
tracing_url(const cshim_init_ctx_t *ctx, char **url, const char **config_service,
            cshim_error_t *err)
{
  const char *config_endpoint = NULL;
  bool enabled = false, enabled_set = false;
  int ret;

  ret = cshim_config_check_keys(ctx->config, tracing_config_keys, ctx->uri, err);
  if (ret < 0)
    return ret;
  if (cshim_config_get(ctx->config, "enabled") &&
      !cshim_config_is_null(cshim_config_get(ctx->config, "enabled"))) {
    ret = cshim_config_get_bool(ctx->config, "enabled", &enabled, err);
    if (ret < 0)
      return ret;
    enabled_set = true;
  }
  if ((ret = cshim_config_get_string(ctx->config, "endpoint", &config_endpoint, err)) < 0 ||
      (ret = cshim_config_get_string(ctx->config, "service_name", config_service, err)) < 0)
    return ret;
  if (enabled_set && !enabled) {
    cshim_error_make(err, ENOENT, "disabled by config");
    return CSHIM_PLUGIN_SKIP;
  }
  if (is_set(config_endpoint)) {
    if (!is_http(config_endpoint))
      return cshim_error_make(err, EINVAL, "%s: `endpoint` `%s` is not an http:// or https:// URL",
                              ctx->uri, config_endpoint);
    *url = cshim_xstrdup(config_endpoint);
  } else {
    /* What containerd's environment says. A mistake there must not stop containers: it turns
       tracing off, loudly. */
    ret = env_endpoint(url, err);
    if (ret != 0) {
      if ((*err)->status != -ENOENT) /* not asked for: a setting cshim cannot follow */
        cshim_log_warn(ctx->log, "tracing off: %s", (*err)->msg);
      return CSHIM_PLUGIN_SKIP;
    }
  }
  if (*url == NULL && !enabled) {
    cshim_error_make(err, ENOENT,
                     "tracing is off (set OTEL_EXPORTER_OTLP_ENDPOINT or "
                     "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT, or `enabled: true`)");
    return CSHIM_PLUGIN_SKIP;
  }
  if (*url == NULL)
    *url = cshim_xstrdup("http://localhost:4318/v1/traces"); /* OTLP/HTTP's default */
  return 0;
}

/* A tracer for ctx with no exporter or timers yet; takes url over. */
static tracing_t *
tracing_new(const cshim_init_ctx_t *ctx, const char *config_service, char **url)
{
  tracing_t *tr = cshim_xmalloc0(sizeof *tr);
  const char *binary, *ns, *id, *slash;

  tr->base = (cshim_tracer_t){.struct_size = sizeof(cshim_tracer_t),
                              .start = tracer_start,
                              .set_attr = tracer_set_attr,
                              .end = tracer_end,
                              .call_span = tracer_call_span,
                              .traceparent = tracer_traceparent,
                              .get_stats = tracer_get_stats};
  tr->loop = ctx->loop;
  tr->log = ctx->log;
  tr->queue.max = TRACING_MAX_QUEUED;
  /* The shim's own name: OTEL_SERVICE_NAME is containerd's (shims inherit its environment). */
  binary = cshim_init_ctx_property(ctx, CSHIM_PROP_BINARY);
  slash = binary ? strrchr(binary, '/') : NULL;
  tr->service = cshim_xstrdup(is_set(config_service) ? config_service
                              : slash && slash[1]    ? slash + 1
                              : is_set(binary)       ? binary
                                                     : "cshim");
  ns = cshim_init_ctx_property(ctx, CSHIM_PROP_NAMESPACE);
  id = cshim_init_ctx_property(ctx, CSHIM_PROP_ID);
  if (is_set(ns) || is_set(id))
    cshim_xasprintf(&tr->instance, "%s/%s", ns ? ns : "", id ? id : "");
  tr->url = cshim_steal_pointer(url);
  tr->interceptor = (cshim_ttrpc_interceptor_t){.struct_size = sizeof(cshim_ttrpc_interceptor_t),
                                                .name = TRACING_URI,
                                                .before = call_before,
                                                .after = call_after,
                                                .data = tr};
  return tr;
}

/* The batch and flush timers, and the host's state source. */
static void
tracing_start(tracing_t *tr, const cshim_init_ctx_t *ctx)
{
  tr->open_handles = 3; /* two timers, the exporter */
  uv_timer_init(ctx->loop, &tr->batch_timer);
  uv_timer_init(ctx->loop, &tr->flush_timer);
  tr->batch_timer.data = tr->flush_timer.data = tr;
  uv_timer_start(&tr->batch_timer, batch_timer_cb, TRACING_EXPORT_INTERVAL_MS,
                 TRACING_EXPORT_INTERVAL_MS);
  /* Never what keeps the shim alive. */
  uv_unref((uv_handle_t *)&tr->batch_timer);
  tr->host = cshim_init_ctx_host(ctx);
  if (tr->host && cshim_host_add_state_source(tr->host, "tracing", dump_state, tr, NULL) < 0)
    tr->host = NULL;
}

static int
tracing_init(const cshim_init_ctx_t *ctx, void **instance, cshim_error_t *err)
{
  const char *config_service = NULL, *headers_env;
  cshim_autofree char *url = NULL;
  char **headers = NULL;
  tracing_t *tr;
  int ret;

  ret = tracing_url(ctx, &url, &config_service, err);
  if (ret != 0)
    return ret;
  headers_env = getenv("OTEL_EXPORTER_OTLP_TRACES_HEADERS");
  if (headers_env == NULL)
    headers_env = getenv("OTEL_EXPORTER_OTLP_HEADERS");
  if (tracing_headers_parse(headers_env, &headers, err) < 0) {
    cshim_log_warn(ctx->log, "tracing off: %s", (*err)->msg);
    return CSHIM_PLUGIN_SKIP;
  }

  tr = tracing_new(ctx, config_service, &url);
  ret = tracing_exporter_new(ctx->loop, tr->url, headers, ctx->log, export_done_cb, tr,
                             &tr->exporter, err);
  tracing_headers_free(headers);
  if (ret < 0) {
    free(tr->service);
    free(tr->instance);
    free(tr->url);
    free(tr);
    return cshim_error_wrap(err, "%s", ctx->uri);
  }
  tracing_start(tr, ctx);
  cshim_log_info(ctx->log, "exporting spans to `%s` as service `%s`", tr->url, tr->service);
  *instance = tr;
  return 0;
}

static int
tracing_register_ttrpc(void *instance, cshim_ttrpc_server_t *server, cshim_error_t *err)
{
  tracing_t *tr = instance;
  return cshim_ttrpc_server_add_interceptor(server, &tr->interceptor, err);
}

/* The shim is exiting: what is queued gets TRACING_FLUSH_MS to leave (the timer keeps the loop
   running until then); spans still open belong to calls never answered and are not sent. */
static void
tracing_close(void *instance)
{
  tracing_t *tr = instance;

  tr->closing = true;
  uv_timer_stop(&tr->batch_timer);
  while (!cshim_list_empty(&tr->open)) {
    tracing_span_t *s = cshim_list_entry(cshim_list_first(&tr->open), tracing_span_t, link);
    unlink_open(tr, s);
    tracing_span_free(s);
    tr->not_recorded++;
  }
  if (waiting(tr) == 0 && !tracing_exporter_busy(tr->exporter)) {
    release(tr);
    return;
  }
  uv_timer_start(&tr->flush_timer, flush_timer_cb, TRACING_FLUSH_MS, 0);
  export_now(tr);
}

/* ---- live upgrade: the spans waiting for export go to the new image ---- */

/* Tags of the plugin's records. */
enum
{
  UP_PENDING = 1,   /* bytes: an ExportTraceServiceRequest of the queued spans */
  UP_PENDING_SPANS, /* u64: how many it carries */
  UP_EXPORTED,      /* u64 counters */
  UP_DROPPED,
  UP_NOT_RECORDED,
  UP_EXPORT_FAILURES,
};

/* Never busy: a request in flight is not waited for (the collector may be slow or away; an
   upgrade must not depend on it). Its spans are the only ones an upgrade can lose, and are
   counted as dropped by the new image. */
static const char *
tracing_upgrade_busy(void *instance)
{
  (void)instance;
  return NULL;
}

static int
tracing_upgrade_save(void *instance, cshim_state_writer_t *w, cshim_error_t *err)
{
  tracing_t *tr = instance;
  size_t n = tr->queue.n, len = 0;
  cshim_autofree uint8_t *body = NULL;

  (void)err;
  /* A crash snapshot is taken while the spans keep leaving: saving them would send them twice. */
  if (!cshim_state_writer_is_crash(w) && (n > 0 || tr->pending_body)) {
    /* Encoded as the request the new image sends first. One hand-over is kept: spans a
       previous image handed over and still unsent when new ones are queued (upgrades in quick
       succession with the collector away) are counted as dropped. */
    if (tr->pending_body && n == 0) {
      cshim_state_put_bytes(w, UP_PENDING, tr->pending_body, tr->pending_len);
      cshim_state_put_u64(w, UP_PENDING_SPANS, tr->pending_spans);
    } else {
      body = tracing_encode(tr->service, tr->instance, &tr->queue.spans, n, &len);
      cshim_state_put_bytes(w, UP_PENDING, body, len);
      cshim_state_put_u64(w, UP_PENDING_SPANS, n);
    }
  }
  cshim_state_put_u64(w, UP_EXPORTED, tr->queue.exported);
  cshim_state_put_u64(w, UP_DROPPED,
                      tr->queue.dropped + tracing_exporter_in_flight(tr->exporter) +
                          (tr->pending_body && n > 0 ? tr->pending_spans : 0));
  cshim_state_put_u64(w, UP_NOT_RECORDED, tr->not_recorded + tr->n_open);
  cshim_state_put_u64(w, UP_EXPORT_FAILURES, tr->export_failures);
  return 0;
}

static int
tracing_upgrade_restore(void *instance, const cshim_state_reader_t *r, cshim_error_t *err)
{
  tracing_t *tr = instance;
  cshim_state_item_t item;
  uint64_t spans = 0;
  int ret;

  if (r == NULL)
    return 0;
  if ((ret = cshim_state_get_u64(r, UP_EXPORTED, &tr->queue.exported, err)) < 0 ||
      (ret = cshim_state_get_u64(r, UP_DROPPED, &tr->queue.dropped, err)) < 0 ||
      (ret = cshim_state_get_u64(r, UP_NOT_RECORDED, &tr->not_recorded, err)) < 0 ||
      (ret = cshim_state_get_u64(r, UP_EXPORT_FAILURES, &tr->export_failures, err)) < 0 ||
      (ret = cshim_state_get_u64(r, UP_PENDING_SPANS, &spans, err)) < 0)
    return cshim_error_wrap(err, "%s: restore", TRACING_URI);
  ret = cshim_state_find(r, UP_PENDING, &item, err);
  if (ret < 0)
    return cshim_error_wrap(err, "%s: restore", TRACING_URI);
  if (ret > 0 && item.len > 0 && spans > 0) {
    tr->pending_body = cshim_xmemdup(item.value, item.len);
    tr->pending_len = item.len;
    tr->pending_spans = (size_t)spans;
  }
  return 0;
}

CSHIM_PLUGIN_DEFINE(.type = CSHIM_TYPE_INTERNAL, .id = CSHIM_TRACER_ID, .init = tracing_init,
                    .register_ttrpc = tracing_register_ttrpc, .close = tracing_close,
                    .upgrade_busy = tracing_upgrade_busy, .upgrade_save = tracing_upgrade_save,
                    .upgrade_restore = tracing_upgrade_restore)
