// SPDX-License-Identifier: Apache-2.0
// The task plugin's descriptor and lifecycle: io.containerd.ttrpc.v1 "task", serving
// containerd.task.v2.Task and containerd.task.v3.Task.
#include "service.h"

#include "debug_state.h"
#include "fd.h"
#include "handlers.h"
#include "trace.h"
#include "upgrade.h"

#include <stdlib.h>

#include <cshim/plugin.h>
#include <cshim/util.h>

#include "containerd/task/v2/shim.pb-c.h"

static const char *const task_requires[] = {CSHIM_TYPE_EVENT, CSHIM_TYPE_INTERNAL, NULL};

/* The tracing plugin's tracer, or NULL when it is absent, skipped or unreadable (then nothing is
   traced; never a reason not to run containers). */
static cshim_tracer_t *
find_tracer(const cshim_init_ctx_t *ctx)
{
  void *instance = NULL;
  cshim_tracer_t *tracer = NULL;
  cshim_error_t err = NULL;

  if (ctx->get_by_id(ctx, CSHIM_TYPE_INTERNAL, CSHIM_TRACER_ID, &instance, NULL) < 0 ||
      instance == NULL)
    return NULL;
  if (cshim_tracer_from_instance(instance, &tracer, &err) < 0) {
    cshim_error_log_release(&err, ctx->log, CSHIM_LOG_WARN, "task: not tracing");
    return NULL;
  }
  return tracer;
}

static int
task_init(const cshim_init_ctx_t *ctx, void **instance, cshim_error_t *err)
{
  void *publisher_instance = NULL, *shutdown_instance = NULL;
  cshim_publisher_t *publisher = NULL;
  cshim_shutdown_t *shutdown = NULL;
  task_service_t *svc;

  if (ctx->get_by_id(ctx, CSHIM_TYPE_EVENT, "publisher", &publisher_instance, err) < 0 ||
      cshim_publisher_from_instance(publisher_instance, &publisher, err) < 0)
    return cshim_error_wrap(err, "task: look up the event publisher");
  if (ctx->get_by_id(ctx, CSHIM_TYPE_INTERNAL, "shutdown", &shutdown_instance, err) < 0 ||
      cshim_shutdown_from_instance(shutdown_instance, &shutdown, err) < 0)
    return cshim_error_wrap(err, "task: look up the shutdown service");

  svc = cshim_xmalloc0(sizeof *svc);
  if (task_service_init(svc, ctx->loop, ctx->log, ctx->reaper, publisher, shutdown,
                        cshim_init_ctx_property(ctx, CSHIM_PROP_NAMESPACE), ctx->config, err) < 0) {
    free(svc);
    return (*err)->status;
  }
  svc->service_v2 = (cshim_ttrpc_service_t){
      .struct_size = sizeof(cshim_ttrpc_service_t),
      .name = "containerd.task.v2.Task",
      .descriptor = &containerd__task__v2__task__descriptor,
      .methods = task_methods,
      .data = svc,
  };
  svc->service_v3 = svc->service_v2;
  svc->service_v3.name = "containerd.task.v3.Task";
  svc->service_v3.methods = task_methods_v3;
  task_trace_init(svc, find_tracer(ctx));
  task_fd_use_host(cshim_init_ctx_host(ctx));
  *instance = svc;
  task_debug_state_register(svc, cshim_init_ctx_host(ctx));
  return 0;
}

static int
task_register_ttrpc(void *instance, cshim_ttrpc_server_t *server, cshim_error_t *err)
{
  task_service_t *svc = instance;
  if (cshim_ttrpc_server_register(server, &svc->service_v2, err) < 0)
    return cshim_error_wrap(err, "task: register `%s`", svc->service_v2.name);
  if (cshim_ttrpc_server_register(server, &svc->service_v3, err) < 0)
    return cshim_error_wrap(err, "task: register `%s`", svc->service_v3.name);
  return 0;
}

static void
free_service(task_service_t *svc)
{
  task_trace_clear(svc);
  free(svc);
}

static void
task_close(void *instance)
{
  task_debug_state_unregister(instance);
  task_service_close(instance, free_service);
}

CSHIM_PLUGIN_DEFINE(.type = CSHIM_TYPE_TTRPC, .id = "task", .requires = task_requires,
                    .init = task_init, .register_ttrpc = task_register_ttrpc, .close = task_close,
                    .upgrade_busy = task_upgrade_busy, .upgrade_save = task_upgrade_save,
                    .upgrade_restore = task_upgrade_restore)
