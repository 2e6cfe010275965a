// SPDX-License-Identifier: Apache-2.0
// The tracing plugin's internals: spans, W3C trace context, the bounded export queue, OTLP
// encoding (span.c), the OTLP/HTTP exporter on libcurl's multi interface (export.c).
#ifndef CSHIM_PLUGIN_TRACING_H
#define CSHIM_PLUGIN_TRACING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include <cshim/error.h>
#include <cshim/list.h>
#include <cshim/log.h>
#include <cshim/trace.h>

#define TRACING_URI "io.containerd.internal.v1.tracing"

/* Bounds. Ended spans waiting for export: past it a span is dropped (counted). Spans open at
   once (RPCs and runtime commands in progress): past it a new span is not recorded (counted).
   Attributes per span: more are counted as dropped. Spans per export request. */
#define TRACING_MAX_QUEUED 2048u
#define TRACING_MAX_OPEN 4096u
#define TRACING_MAX_ATTRS 8u
#define TRACING_MAX_BATCH 512u
/* Export every this often, or as soon as a batch is full. */
#define TRACING_EXPORT_INTERVAL_MS 1000u
/* One export request may take this long (connect included) before it is given up. */
#define TRACING_REQUEST_TIMEOUT_MS 5000u
/* At exit, pending spans get this long to reach the collector. */
#define TRACING_FLUSH_MS 1000u
/* Longest span name, attribute key or value kept (longer ones are cut). */
#define TRACING_MAX_STRING 256u

enum tracing_kind
{
  TRACING_KIND_INTERNAL = 1,
  TRACING_KIND_SERVER = 2,
};

typedef struct tracing_s tracing_t;

struct tracing_attr
{
  char *key;
  char *value; /* NULL for an integer */
  int64_t int_value;
};

struct cshim_span_s
{
  cshim_list_t link; /* in the open list, then in the export queue or a batch taken off it */
  tracing_t *tr;
  uint8_t trace_id[16];
  uint8_t span_id[8];
  uint8_t parent_id[8];
  bool has_parent;
  uint8_t flags; /* W3C trace flags (01 = sampled) */
  char *trace_state;
  char *name;
  int kind;
  uint64_t start_unix_ns, end_unix_ns;
  struct tracing_attr attrs[TRACING_MAX_ATTRS];
  unsigned n_attrs, dropped_attrs;
  bool error;
  char *status_message;
  const void *call; /* the RPC a server span stands for; NULL otherwise */
};
typedef struct cshim_span_s tracing_span_t;

/* ---- span.c: pure parts, unit-tested ---- */

/* Parse a W3C traceparent header value. 0 with the ids and flags set, or -EINVAL: wrong length
   or separators, upper-case or non-hex digits, version ff, all-zero trace or span id. A version
   above 00 may carry more fields after a '-', which are ignored (the W3C rule). */
int tracing_traceparent_parse(const char *s, uint8_t trace_id[16], uint8_t span_id[8],
                              uint8_t *flags);
/* "00-<trace id>-<span id>-<flags>" into buf (CSHIM_TRACEPARENT_LEN + 1 bytes). */
void tracing_traceparent_format(const uint8_t trace_id[16], const uint8_t span_id[8], uint8_t flags,
                                char *buf);
/* n random bytes, never all zero (getrandom; a clock-seeded fallback if that fails). */
void tracing_random_id(uint8_t *buf, size_t n);
/* The OTLP endpoint rules: OTEL_EXPORTER_OTLP_TRACES_ENDPOINT as given, else
   OTEL_EXPORTER_OTLP_ENDPOINT with "/v1/traces" appended; NULL when neither is set (empty counts
   as unset). Caller frees. */
char *tracing_endpoint_from_env(const char *traces_endpoint, const char *endpoint);
/* OTEL_EXPORTER_OTLP_HEADERS' format, "k1=v1,k2=v2" with percent-encoded values, as HTTP header
   lines "k1: v1" (a NULL-terminated array the caller frees with tracing_headers_free; NULL for
   none). At most TRACING_MAX_HEADERS; a key that is not an HTTP token, or a value with control
   characters once decoded, fails with EINVAL naming it. */
#define TRACING_MAX_HEADERS 32u
int tracing_headers_parse(const char *s, char ***out, cshim_error_t *err);
void tracing_headers_free(char **headers);
/* Nanoseconds since the Unix epoch. */
uint64_t tracing_unix_ns(void);

tracing_span_t *tracing_span_new(const char *name, int kind);
void tracing_span_set_attr(tracing_span_t *span, const char *key, const char *value);
void tracing_span_set_int(tracing_span_t *span, const char *key, int64_t value);
void tracing_span_free(tracing_span_t *span);

/* Ended spans waiting for export, oldest first, at most max of them. */
typedef struct tracing_queue_s
{
  cshim_list_t spans; /* tracing_span_t, oldest first */
  size_t n, max;
  uint64_t accepted; /* spans queued, ever */
  uint64_t dropped;  /* spans refused by a full queue or lost with a failed export */
  uint64_t exported; /* spans the collector accepted */
} tracing_queue_t;

/* Queue an ended span; a full queue frees it and counts it as dropped. Returns whether it was
   queued. */
bool tracing_queue_push(tracing_queue_t *q, tracing_span_t *span);
/* Move up to max spans off the head, in order, to `out` (an empty head); *n gets how many. */
void tracing_queue_take(tracing_queue_t *q, size_t max, cshim_list_t *out, size_t *n);
void tracing_queue_clear(tracing_queue_t *q);
/* Free every span of `list` (it is empty after). */
void tracing_span_list_free(cshim_list_t *list);

/* Encode the first n spans of `list` as an ExportTraceServiceRequest from service `service`: a
   malloc'ed buffer (caller frees) and its length. */
uint8_t *tracing_encode(const char *service, const char *service_instance, const cshim_list_t *list,
                        size_t n, size_t *len);

/* ---- export.c: OTLP/HTTP on libcurl's multi interface, driven by the loop ---- */

typedef struct tracing_exporter_s tracing_exporter_t;

/* done(data, spans, ok): an export request ended; `spans` is how many it carried. */
typedef void (*tracing_export_done_cb)(void *data, size_t spans, bool ok, const char *why);

/* headers: extra HTTP header lines sent with every request (NULL-terminated, copied; NULL =
   none). */
int tracing_exporter_new(uv_loop_t *loop, const char *url, char *const *headers,
                         const cshim_logger_t *log, tracing_export_done_cb done, void *data,
                         tracing_exporter_t **out, cshim_error_t *err);
/* Whether a request is in flight (one at a time). */
bool tracing_exporter_busy(const tracing_exporter_t *x);
/* Spans the request in flight carries (0 when none). */
size_t tracing_exporter_in_flight(const tracing_exporter_t *x);
/* POST body (taken over: freed by the exporter) carrying `spans` spans. 0, or a negative errno
   (then body is freed and done is not called). */
int tracing_exporter_send(tracing_exporter_t *x, uint8_t *body, size_t len, size_t spans,
                          cshim_error_t *err);
/* Abort any request (its done runs with ok = false) and close every handle; the memory goes
   once they are closed, then closed(data) runs. */
void tracing_exporter_close(tracing_exporter_t *x, void (*closed)(void *data));

#endif
