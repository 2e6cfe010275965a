// SPDX-License-Identifier: Apache-2.0
// cshimctl events: stand in for containerd's event service (Events/Forward on its ttrpc socket,
// TTRPC_ADDRESS) and print every event a shim publishes, until SIGINT or SIGTERM.
#define _GNU_SOURCE
#include "ctl.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include <cshim/ttrpc.h>
#include <cshim/util.h>

#include "containerd/events/task.pb-c.h"
#include "containerd/services/events/ttrpc/v1/events.pb-c.h"
#include "ttrpc_server.h"

typedef struct events_s
{
  uv_loop_t loop;
  host_ttrpc_server_t *server;
  uv_signal_t sigint, sigterm;
  const ctl_opts_t *opts;
  cshim_ttrpc_service_t service;
  unsigned long count;
} events_t;

static const ProtobufCMessageDescriptor *const task_events[] = {
    &containerd__events__task_create__descriptor,
    &containerd__events__task_start__descriptor,
    &containerd__events__task_delete__descriptor,
    &containerd__events__task_io__descriptor,
    &containerd__events__task_exit__descriptor,
    &containerd__events__task_oom__descriptor,
    &containerd__events__task_exec_added__descriptor,
    &containerd__events__task_exec_started__descriptor,
    &containerd__events__task_paused__descriptor,
    &containerd__events__task_resumed__descriptor,
    &containerd__events__task_checkpointed__descriptor,
};

/* The event's container_id, when it is a task event we know. Caller frees. */
static char *
container_id(const Google__Protobuf__Any *any)
{
  const char *type;
  char *out = NULL;

  if (any == NULL || any->type_url == NULL)
    return NULL;
  type = strrchr(any->type_url, '/');
  type = type ? type + 1 : any->type_url;
  for (size_t i = 0; i < CSHIM_N_ELEMENTS(task_events); i++) {
    const ProtobufCMessageDescriptor *d = task_events[i];
    const ProtobufCFieldDescriptor *f;
    ProtobufCMessage *m;

    if (strcmp(d->name, type) != 0)
      continue;
    m = protobuf_c_message_unpack(d, NULL, any->value.len, any->value.data);
    f = protobuf_c_message_descriptor_get_field_by_name(d, "container_id");
    if (m && f && f->type == PROTOBUF_C_TYPE_STRING) {
      const char *v = *(char *const *)((const char *)m + f->offset);
      out = cshim_xstrdup(v ? v : "");
    }
    if (m)
      protobuf_c_message_free_unpacked(m, NULL);
    break;
  }
  return out;
}

static void
handle_forward(cshim_ttrpc_call_t *call, const ProtobufCMessage *msg, void *data)
{
  events_t *ev = data;
  const Containerd__Services__Events__Ttrpc__V1__ForwardRequest *req = (const void *)msg;
  const Containerd__Services__Events__Ttrpc__V1__Envelope *env = req->envelope;
  cshim_autofree char *cid = NULL;
  char when[64] = "";
  const char *type = "";

  if (env == NULL) {
    cshim_error_t err = NULL;
    cshim_error_make(&err, EINVAL, "forward without an envelope");
    cshim_ttrpc_call_fail_error(call, &err);
    return;
  }
  ctl_format_time(env->timestamp, when, sizeof(when));
  if (env->event && env->event->type_url)
    type = env->event->type_url;
  cid = container_id(env->event);
  ev->count++;
  if (ev->opts->json) {
    json_t *j = json_pack("{s:s, s:s, s:s, s:s, s:s?}", "timestamp", when, "namespace",
                          env->namespace_ ? env->namespace_ : "", "topic",
                          env->topic ? env->topic : "", "type", type, "container_id", cid);
    char *text = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER);
    printf("%s\n", text);
    free(text);
    json_decref(j);
  } else {
    printf("%s %s %s %s%s%s\n", when, env->namespace_ ? env->namespace_ : "",
           env->topic ? env->topic : "", type, cid ? " " : "", cid ? cid : "");
  }
  fflush(stdout);
  cshim_ttrpc_call_reply(call, NULL);
}

static const cshim_ttrpc_method_t events_methods[] = {
    {"Forward", handle_forward},
    {NULL, NULL},
};

static void
closed_cb(void *data)
{
  (void)data;
}

static void
signal_cb(uv_signal_t *h, int signum)
{
  events_t *ev = h->data;

  if (ev->server) {
    host_ttrpc_server_close(ev->server, closed_cb, ev);
    ev->server = NULL;
  }
  uv_close((uv_handle_t *)&ev->sigint, NULL);
  uv_close((uv_handle_t *)&ev->sigterm, NULL);
}

int
ctl_cmd_events(const ctl_opts_t *o)
{
  events_t ev;
  cshim_error_t err = NULL;
  const char *path;
  int ret;

  if (o->address == NULL)
    return ctl_usage_error("events: --address unix:///PATH (the TTRPC_ADDRESS to serve) is "
                           "required");
  path = ctl_socket_path(o->address);
  memset(&ev, 0, sizeof(ev));
  ev.opts = o;
  uv_loop_init(&ev.loop);
  ev.service = (cshim_ttrpc_service_t){
      .struct_size = sizeof(cshim_ttrpc_service_t),
      .descriptor = &containerd__services__events__ttrpc__v1__events__descriptor,
      .methods = events_methods,
      .data = &ev,
  };
  ret = host_ttrpc_server_new(&ev.loop, NULL, &ev.server, &err);
  if (ret == 0)
    ret = cshim_ttrpc_server_register(host_ttrpc_server_api(ev.server), &ev.service, &err);
  if (ret == 0)
    ret = host_ttrpc_server_listen_path(ev.server, path, &err);
  if (ret < 0) {
    if (ev.server)
      host_ttrpc_server_close(ev.server, closed_cb, &ev);
    uv_run(&ev.loop, UV_RUN_DEFAULT);
    uv_loop_close(&ev.loop);
    return ctl_fail(&err);
  }
  uv_signal_init(&ev.loop, &ev.sigint);
  uv_signal_init(&ev.loop, &ev.sigterm);
  ev.sigint.data = &ev;
  ev.sigterm.data = &ev;
  uv_signal_start(&ev.sigint, signal_cb, SIGINT);
  uv_signal_start(&ev.sigterm, signal_cb, SIGTERM);
  if (!o->json) {
    printf("serving containerd.services.events.ttrpc.v1.Events on unix://%s\n", path);
    fflush(stdout);
  }
  uv_run(&ev.loop, UV_RUN_DEFAULT);
  unlink(path);
  uv_loop_close(&ev.loop);
  return 0;
}
