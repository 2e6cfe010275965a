// SPDX-License-Identifier: Apache-2.0
// The tracer interface: spans a plugin (or the SDK's runtime runner) opens around its work, as
// children of the span of the RPC being served. The tracing plugin (io.containerd.internal.v1
// "tracing") is the instance that implements it; without it nothing is traced.
#ifndef CSHIM_TRACE_H
#define CSHIM_TRACE_H

#include <stddef.h>
#include <stdint.h>

#include <cshim/error.h>
#include <cshim/struct_size.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Plugin id of the tracer, under CSHIM_TYPE_INTERNAL. */
#define CSHIM_TRACER_ID "tracing"

/* Length of a W3C traceparent ("00-<32 hex>-<16 hex>-<2 hex>"), without the NUL. */
#define CSHIM_TRACEPARENT_LEN 55

typedef struct cshim_tracer_s cshim_tracer_t;
/* The ttrpc call a span may stand for (<cshim/ttrpc.h>); only compared here. */
typedef struct cshim_ttrpc_call_s cshim_ttrpc_call_t;

/* A span being recorded. Opaque; owned by the tracer from start until end (after end the
   pointer is gone). Every function below accepts NULL for a span and then does nothing, so a
   caller never has to check whether tracing is on. */
typedef struct cshim_span_s cshim_span_t;

/* Counters of a tracer. The caller sets struct_size; get_stats fills only what fits. */
typedef struct cshim_tracer_stats_s
{
  uint32_t struct_size;
  uint64_t open;            /* spans started, not ended */
  uint64_t queued;          /* ended spans waiting for export */
  uint64_t exported;        /* spans the collector accepted */
  uint64_t dropped;         /* spans lost: queue full, failed export, or left at exit */
  uint64_t not_recorded;    /* spans not started (too many open at once) or never ended */
  uint64_t export_failures; /* export requests that failed */
} cshim_tracer_stats_t;

/* What a tracing plugin offers; its instance starts with this struct (look it up by
   CSHIM_TYPE_INTERNAL / CSHIM_TRACER_ID and take it with cshim_tracer_from_instance). Loop
   thread only. No function blocks or fails loudly: a span that cannot be kept (bound reached)
   is simply not recorded and counted. */
struct cshim_tracer_s
{
  uint32_t struct_size; /* sizeof (cshim_tracer_t) in the implementing plugin */
  /* Open a span named `name` (copied) as a child of parent (borrowed for the call; its ids are
     copied, so the parent may end first), or of nothing when parent is NULL: then NULL is
     returned too, as work done for no traced RPC is not recorded. */
  cshim_span_t *(*start)(cshim_tracer_t *tracer, const cshim_span_t *parent, const char *name);
  /* Set a string attribute (both copied); the value may be NULL (then nothing is set). */
  void (*set_attr)(cshim_span_t *span, const char *key, const char *value);
  /* Close the span; error 0 = success, otherwise a status of error with message (copied, may be
     NULL). The span is queued for export and gone for the caller. */
  void (*end)(cshim_span_t *span, int error, const char *message);
  /* The span of the RPC `call` while it is being served (from its interceptor's before until it
     is answered), or NULL. Borrowed until the call is answered. The call is only compared, never
     read: a stale pointer is harmless. */
  cshim_span_t *(*call_span)(cshim_tracer_t *tracer, const cshim_ttrpc_call_t *call);
  /* Write the span's W3C traceparent into buf (at least CSHIM_TRACEPARENT_LEN + 1 bytes) and
     return 0, or -EINVAL for a NULL span or a short buffer. */
  int (*traceparent)(const cshim_span_t *span, char *buf, size_t len);
  /* Fill *out with the tracer's counters (for metrics). */
  void (*get_stats)(cshim_tracer_t *tracer, cshim_tracer_stats_t *out);
};

/* The first sizes of these structs: smaller struct_size values are refused. */
#define CSHIM_TRACER_SIZE_1_0 CSHIM_SIZE_THROUGH(cshim_tracer_t, get_stats)
#define CSHIM_TRACER_STATS_SIZE_1_0 CSHIM_SIZE_THROUGH(cshim_tracer_stats_t, export_failures)

/* The tracer an instance of that type offers, after checking its struct_size: 0 and *out set,
   or -EINVAL naming the reason. */
static inline int
cshim_tracer_from_instance(void *instance, cshim_tracer_t **out, cshim_error_t *err)
{
  cshim_tracer_t *t = (cshim_tracer_t *)instance;
  int ret = cshim_struct_size_check("tracer", t->struct_size, CSHIM_TRACER_SIZE_1_0, err);

  if (ret < 0)
    return ret;
  *out = t;
  return 0;
}

/* NULL-safe wrappers. */
static inline cshim_span_t *
cshim_span_start(cshim_tracer_t *tracer, const cshim_span_t *parent, const char *name)
{
  return tracer && parent ? tracer->start(tracer, parent, name) : NULL;
}

static inline void
cshim_span_set_attr(cshim_tracer_t *tracer, cshim_span_t *span, const char *key, const char *value)
{
  if (tracer && span)
    tracer->set_attr(span, key, value);
}

static inline void
cshim_span_end(cshim_tracer_t *tracer, cshim_span_t *span, int error, const char *message)
{
  if (tracer && span)
    tracer->end(span, error, message);
}

static inline cshim_span_t *
cshim_tracer_call_span(cshim_tracer_t *tracer, const cshim_ttrpc_call_t *call)
{
  return tracer && call ? tracer->call_span(tracer, call) : NULL;
}

#ifdef __cplusplus
}
#endif
#endif
