// SPDX-License-Identifier: Apache-2.0
// Example of a vendor's task service, built out of tree against an installed cshim: it takes the
// place of cshim's task.so and answers Connect and State of containerd.task.v2.Task, and it
// serves the vendor's own service, acme.greeter.v1.Greeter (proto/acme/greeter/v1/greeter.proto).
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cshim/config.h>
#include <cshim/error.h>
#include <cshim/log.h>
#include <cshim/plugin.h>
#include <cshim/publisher.h>
#include <cshim/ttrpc.h>
#include <cshim/util.h>

#include "acme/greeter/v1/greeter.pb-c.h"
#include "containerd/task/v2/shim.pb-c.h"

#define DEFAULT_GREETING "hello"

/* Everything the plugin keeps between init and close. The host hands out borrowed pointers
   (config strings, properties, the publisher) that stay valid until close returns. */
typedef struct vendor_task_s
{
  const cshim_logger_t *log;
  cshim_publisher_t *publisher; /* borrowed: where a real task service sends /tasks/... events */
  const char *greeting;         /* borrowed from the config tree (or static) */
  const char *id;               /* the shim's -id: the one task this example knows about */
  const char *bundle;
  cshim_ttrpc_service_t service;
  cshim_ttrpc_service_t greeter;
} vendor_task_t;

/* Only types listed here may be looked up, and they are initialised before this plugin. */
static const char *const vendor_task_requires[] = {CSHIM_TYPE_EVENT, CSHIM_TYPE_INTERNAL, NULL};

/* The keys of plugins.io.containerd.ttrpc.v1.task in the YAML; anything else is a typo. */
static const char *const vendor_task_config_keys[] = {"greeting", NULL};

static void
connect_cb(cshim_ttrpc_call_t *call, const ProtobufCMessage *request, void *service_data)
{
  vendor_task_t *vt = service_data;
  Containerd__Task__V2__ConnectResponse resp = CONTAINERD__TASK__V2__CONNECT_RESPONSE__INIT;

  resp.shim_pid = (uint32_t)getpid();
  resp.version = (char *)vt->greeting;
  cshim_ttrpc_call_reply(call, &resp.base);
}

static void
state_cb(cshim_ttrpc_call_t *call, const ProtobufCMessage *request, void *service_data)
{
  vendor_task_t *vt = service_data;
  const Containerd__Task__V2__StateRequest *req =
      (const Containerd__Task__V2__StateRequest *)request;
  Containerd__Task__V2__StateResponse resp = CONTAINERD__TASK__V2__STATE_RESPONSE__INIT;
  cshim_error_t err = NULL;

  if (req->id == NULL || vt->id == NULL || strcmp(req->id, vt->id) != 0 ||
      (req->exec_id && req->exec_id[0])) {
    /* ENOENT goes out as NotFound, which containerd's errdefs understand. */
    cshim_error_make(&err, ENOENT, "container `%s` not found", req->id ? req->id : "");
    cshim_ttrpc_call_fail_error(call, &err);
    return;
  }
  resp.id = (char *)vt->id;
  resp.bundle = (char *)(vt->bundle ? vt->bundle : "");
  resp.status = CONTAINERD__V1__TYPES__STATUS__UNKNOWN;
  cshim_ttrpc_call_reply(call, &resp.base);
}

/* Methods left out of the table (Create, Start, Kill, ...) are answered Unimplemented. */
static const cshim_ttrpc_method_t vendor_task_methods[] = {
    {"Connect", connect_cb},
    {"State", state_cb},
    {NULL, NULL},
};

static void
hello_cb(cshim_ttrpc_call_t *call, const ProtobufCMessage *request, void *service_data)
{
  vendor_task_t *vt = service_data;
  const Acme__Greeter__V1__HelloRequest *req = (const Acme__Greeter__V1__HelloRequest *)request;
  Acme__Greeter__V1__HelloResponse resp = ACME__GREETER__V1__HELLO_RESPONSE__INIT;
  cshim_autofree char *text = NULL;

  cshim_xasprintf(&text, "%s, %s", vt->greeting, req->name && req->name[0] ? req->name : "world");
  resp.text = text;
  resp.shim_pid = (uint32_t)getpid();
  cshim_ttrpc_call_reply(call, &resp.base);
}

static void
ping_cb(cshim_ttrpc_call_t *call, const ProtobufCMessage *request, void *service_data)
{
  cshim_ttrpc_call_reply(call, NULL); /* NULL = an empty message: google.protobuf.Empty */
}

static const cshim_ttrpc_method_t greeter_methods[] = {
    {"Hello", hello_cb},
    {"Ping", ping_cb},
    {NULL, NULL},
};

static int
vendor_task_init(const cshim_init_ctx_t *ctx, void **instance, cshim_error_t *err)
{
  cshim_autofree vendor_task_t *vt = NULL;
  const char *greeting = DEFAULT_GREETING;
  void *instance_ = NULL;
  cshim_publisher_t *publisher = NULL;
  int ret;

  /* ctx->config is NULL when the YAML has no section for us: the accessors accept that. */
  ret = cshim_config_check_keys(ctx->config, vendor_task_config_keys, ctx->uri, err);
  if (ret < 0)
    return ret;
  ret = cshim_config_get_string(ctx->config, "greeting", &greeting, err);
  if (ret < 0)
    return ret;
  ret = cshim_init_ctx_get_by_id(ctx, CSHIM_TYPE_EVENT, "publisher", &instance_, err);
  /* The instance starts with cshim_publisher_t; this checks its struct_size before use. */
  if (ret == 0)
    ret = cshim_publisher_from_instance(instance_, &publisher, err);
  if (ret < 0)
    return cshim_error_wrap(err, "%s: look up the event publisher", ctx->uri);

  vt = cshim_xmalloc0(sizeof *vt);
  vt->log = ctx->log;
  vt->publisher = publisher;
  vt->greeting = greeting;
  vt->id = cshim_init_ctx_property(ctx, CSHIM_PROP_ID);
  vt->bundle = cshim_init_ctx_property(ctx, CSHIM_PROP_BUNDLE);
  vt->service = (cshim_ttrpc_service_t){
      .struct_size = sizeof(cshim_ttrpc_service_t),
      .descriptor = &containerd__task__v2__task__descriptor,
      .methods = vendor_task_methods,
  };
  /* A service of the vendor's own: clients find it at the same address as the task service
     (the one the shim wrote to <bundle>/address) under its own name. */
  vt->greeter = (cshim_ttrpc_service_t){
      .struct_size = sizeof(cshim_ttrpc_service_t),
      .descriptor = &acme__greeter__v1__greeter__descriptor,
      .methods = greeter_methods,
  };
  cshim_log_info(vt->log, "vendor task service for `%s`, greeting `%s`", vt->id ? vt->id : "",
                 vt->greeting);
  *instance = cshim_steal_pointer(&vt);
  return 0;
}

static int
vendor_task_register_ttrpc(void *instance, cshim_ttrpc_server_t *server, cshim_error_t *err)
{
  vendor_task_t *vt = instance;
  int ret;

  vt->service.data = vt;
  vt->greeter.data = vt;
  ret = cshim_ttrpc_server_register(server, &vt->service, err);
  if (ret < 0)
    return ret;
  return cshim_ttrpc_server_register(server, &vt->greeter, err);
}

static void
vendor_task_close(void *instance)
{
  free(instance);
}

/* The one exported symbol: the host dlopens this file, calls cshim_plugin_entry, and checks the
   descriptor (ABI version, size, type, id, requires) before it calls anything else. */
CSHIM_PLUGIN_DEFINE(.type = CSHIM_TYPE_TTRPC, .id = "task", .requires = vendor_task_requires,
                    .init = vendor_task_init, .register_ttrpc = vendor_task_register_ttrpc,
                    .close = vendor_task_close)
