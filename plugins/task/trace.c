// SPDX-License-Identifier: Apache-2.0
// The task service's spans: the container and exec id on each call's span, runtime commands
// and stdio set-up as its children. Costs nothing when the tracing plugin is absent or skipped.
#include "trace.h"

#include <stdlib.h>
#include <string.h>

#include <cshim/util.h>

#include "model.h"
#include "op.h"
#include "service.h"

/* The `id` and `exec_id` string fields every task request has (by name: they sit at different
   numbers in some messages). */
static const char *
string_field(const ProtobufCMessage *msg, const char *name)
{
  const ProtobufCFieldDescriptor *f =
      protobuf_c_message_descriptor_get_field_by_name(msg->descriptor, name);

  if (f == NULL || f->type != PROTOBUF_C_TYPE_STRING || f->label == PROTOBUF_C_LABEL_REPEATED)
    return NULL;
  return *(const char *const *)((const char *)msg + f->offset);
}

static void
dispatch(const cshim_ttrpc_method_t *table, cshim_ttrpc_call_t *call, const ProtobufCMessage *msg,
         task_service_t *svc)
{
  cshim_span_t *span = cshim_tracer_call_span(svc->tracer, call);
  const char *id = string_field(msg, "id"), *exec_id = string_field(msg, "exec_id");
  cshim_error_t err = NULL;

  if (id && id[0])
    cshim_span_set_attr(svc->tracer, span, "container.id", id);
  if (exec_id && exec_id[0])
    cshim_span_set_attr(svc->tracer, span, "exec.id", exec_id);
  for (const cshim_ttrpc_method_t *m = table; m->name; m++)
    if (strcmp(m->name, call->method) == 0) {
      cshim_ttrpc_call_t *outer = svc->current_call;
      svc->current_call = call;
      m->handler(call, msg, svc);
      svc->current_call = outer;
      return;
    }
  cshim_error_make_code(&err, CSHIM_GRPC_UNIMPLEMENTED, "method not implemented");
  cshim_ttrpc_call_fail_error(call, &err);
}

static void
traced_v2(cshim_ttrpc_call_t *call, const ProtobufCMessage *msg, void *data)
{
  task_service_t *svc = data;
  dispatch(svc->plain_v2, call, msg, svc);
}

static void
traced_v3(cshim_ttrpc_call_t *call, const ProtobufCMessage *msg, void *data)
{
  task_service_t *svc = data;
  dispatch(svc->plain_v3, call, msg, svc);
}

static cshim_ttrpc_method_t *
traced_table(const cshim_ttrpc_method_t *table, cshim_ttrpc_handler_t handler)
{
  size_t n = 0;
  cshim_ttrpc_method_t *out;

  while (table[n].name)
    n++;
  out = cshim_xmalloc0((n + 1) * sizeof *out);
  for (size_t i = 0; i < n; i++)
    out[i] = (cshim_ttrpc_method_t){table[i].name, table[i].handler ? handler : NULL};
  return out;
}

void
task_trace_init(task_service_t *svc, cshim_tracer_t *tracer)
{
  if (tracer == NULL)
    return;
  svc->tracer = tracer;
  svc->plain_v2 = svc->service_v2.methods;
  svc->plain_v3 = svc->service_v3.methods;
  svc->traced_v2 = traced_table(svc->plain_v2, traced_v2);
  svc->traced_v3 = traced_table(svc->plain_v3, traced_v3);
  svc->service_v2.methods = svc->traced_v2;
  svc->service_v3.methods = svc->traced_v3;
}

void
task_trace_clear(task_service_t *svc)
{
  free(svc->traced_v2);
  free(svc->traced_v3);
  svc->traced_v2 = svc->traced_v3 = NULL;
}

cshim_span_t *
task_op_span(void *data)
{
  const task_op_t *op = data;
  return op->call ? cshim_tracer_call_span(op->container->svc->tracer, op->call) : NULL;
}

cshim_span_t *
task_trace_start(task_service_t *svc, const char *name)
{
  return cshim_span_start(svc->tracer, cshim_tracer_call_span(svc->tracer, svc->current_call),
                          name);
}

void
task_trace_end(task_service_t *svc, cshim_span_t *span, const cshim_error_t *err)
{
  cshim_span_end(svc->tracer, span, err && *err ? (*err)->status : 0,
                 err && *err ? (*err)->msg : NULL);
}
