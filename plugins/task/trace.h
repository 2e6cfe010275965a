// SPDX-License-Identifier: Apache-2.0
// The task service's spans: the container and exec id on each call's span, runtime commands
// and stdio set-up as its children. Nothing when the tracing plugin is absent or skipped.
#ifndef TASK_TRACE_H
#define TASK_TRACE_H

#include <cshim/error.h>
#include <cshim/trace.h>

#include "types.h"

/* Use tracer (NULL = off): calls go through method tables that put the container and exec id
   on each call's span, and runtime commands become child spans of their call's. Call after the
   service's method tables are set, before they are registered. */
void task_trace_init(task_service_t *svc, cshim_tracer_t *tracer);
void task_trace_clear(task_service_t *svc);
/* The span of the runtime command an op (callback data) runs: a child of its call's span. */
cshim_span_t *task_op_span(void *data);
/* A child span of the call being handled now, or NULL; end it with task_trace_end. */
cshim_span_t *task_trace_start(task_service_t *svc, const char *name);
void task_trace_end(task_service_t *svc, cshim_span_t *span, const cshim_error_t *err);

#endif
