// SPDX-License-Identifier: Apache-2.0
// `cshimctl call SERVICE METHOD`: one unary request to any service registered on a shim socket,
// with the request body as binary protobuf (file or stdin) and the response as binary or hex,
// or, with --json, both as JSON through the service's protobuf-c descriptors (cshim's own, or a
// vendor's from --descriptors LIB.so), so a vendor can try a custom service without writing a
// client.
#define _GNU_SOURCE
#include "ctl.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cshim/file.h>
#include <cshim/ttrpc.h>
#include <cshim/util.h>

#include "containerd/services/events/ttrpc/v1/events.pb-c.h"
#include "containerd/task/v2/shim.pb-c.h"
#include "cshim/upgrade/v1/upgrade.pb-c.h"
#include "pbjson.h"

struct bytes_result
{
  bool done;
  uint8_t *payload; /* owned */
  size_t len;
  cshim_error_t err;
};

/* Read the whole request body from fd: at most CSHIM_TTRPC_MAX_MESSAGE bytes. */
static int
read_body(int fd, const char *what, uint8_t **out, size_t *len, cshim_error_t *err)
{
  cshim_autofree char *name = NULL;
  char *text = NULL;
  int ret;

  cshim_xasprintf(&name, "request body `%s`", what);
  ret = cshim_file_read_fd(fd, name, CSHIM_TTRPC_MAX_MESSAGE, &text, len, err);
  if (ret == 0)
    *out = (uint8_t *)text;
  return ret;
}

/* The request body: --input FILE, --input - (stdin), or stdin when it is not a terminal;
   empty otherwise. */
static int
load_body(const ctl_opts_t *opts, uint8_t **out, size_t *len, cshim_error_t *err)
{
  cshim_autoclose int fd = -1;

  *out = NULL;
  *len = 0;
  if (opts->input == NULL || strcmp(opts->input, "-") == 0) {
    if (opts->input == NULL && isatty(STDIN_FILENO))
      return 0;
    return read_body(STDIN_FILENO, "<stdin>", out, len, err);
  }
  fd = open(opts->input, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return cshim_error_sys(err, errno, "open request body `%s`", opts->input);
  return read_body(fd, opts->input, out, len, err);
}

static void
bytes_cb(void *data, uint8_t *payload, size_t len, cshim_error_t *err)
{
  struct bytes_result *r = data;

  r->done = true;
  r->payload = payload;
  r->len = len;
  if (*err)
    r->err = cshim_steal_pointer(err);
}

static int
print_response(const ctl_opts_t *opts, const uint8_t *p, size_t len, cshim_error_t *err)
{
  static const char digits[] = "0123456789abcdef";
  cshim_autofree char *hex = NULL;

  if (!opts->hex)
    return cshim_file_write_fd(STDOUT_FILENO, p, len, "the response", err);
  hex = cshim_xmalloc(2 * len + 1);
  for (size_t i = 0; i < len; i++) {
    hex[2 * i] = digits[p[i] >> 4];
    hex[2 * i + 1] = digits[p[i] & 0xf];
  }
  hex[2 * len] = '\n';
  return cshim_file_write_fd(STDOUT_FILENO, hex, 2 * len + 1, "the response", err);
}

/* The services whose descriptors cshimctl carries (libcshim_proto, installed with the SDK). */
static const struct
{
  const char *name;
  const ProtobufCServiceDescriptor *desc;
} known_services[] = {
    {"containerd.task.v2.Task", &containerd__task__v2__task__descriptor},
    /* v3 has v2's methods and messages under another name. */
    {"containerd.task.v3.Task", &containerd__task__v2__task__descriptor},
    {"containerd.services.events.ttrpc.v1.Events",
     &containerd__services__events__ttrpc__v1__events__descriptor},
    {"cshim.upgrade.v1.Upgrade", &cshim__upgrade__v1__upgrade__descriptor},
};

/* The descriptor of service `name`: from --descriptors LIB (a shared library with the
   vendor's generated .pb-c.c, default visibility) when given, else one cshimctl carries. */
static const ProtobufCServiceDescriptor *
find_service(const ctl_opts_t *opts, const char *name, cshim_error_t *err)
{
  if (opts->descriptors) {
    cshim_autofree char *symbol = pbjson_descriptor_symbol(name);
    void *lib = dlopen(opts->descriptors, RTLD_NOW | RTLD_LOCAL);
    const ProtobufCServiceDescriptor *desc;

    if (lib == NULL) {
      cshim_error_make(err, ENOENT, "--descriptors: %s", dlerror());
      return NULL;
    }
    desc = dlsym(lib, symbol);
    /* The library stays loaded: the descriptors live in it. */
    if (desc && desc->magic == PROTOBUF_C__SERVICE_DESCRIPTOR_MAGIC)
      return desc;
    cshim_error_make(err, ENOENT, "service `%s`: no symbol `%s` in `%s`", name, symbol,
                     opts->descriptors);
    return NULL;
  }
  for (size_t i = 0; i < CSHIM_N_ELEMENTS(known_services); i++)
    if (strcmp(known_services[i].name, name) == 0)
      return known_services[i].desc;
  cshim_error_make(err, ENOENT,
                   "service `%s`: no descriptors for it in cshimctl (its own: "
                   "containerd.task.v2.Task, containerd.task.v3.Task, "
                   "containerd.services.events.ttrpc.v1.Events, cshim.upgrade.v1.Upgrade); "
                   "give a vendor's with --descriptors LIB.so",
                   name);
  return NULL;
}

/* --json: the method's descriptors, and the request body (JSON text; empty means {}) packed. */
static int
json_request(const ctl_opts_t *opts, const ProtobufCMethodDescriptor **method, uint8_t **body,
             size_t *len, cshim_error_t *err)
{
  const ProtobufCServiceDescriptor *service = find_service(opts, opts->args[0], err);
  ProtobufCMessage *msg = NULL;
  json_error_t jerr;
  json_t *j;
  int ret;

  if (service == NULL)
    return -ENOENT;
  *method = protobuf_c_service_descriptor_get_method_by_name(service, opts->args[1]);
  if (*method == NULL)
    return cshim_error_make(err, ENOENT, "service `%s` has no method `%s`", opts->args[0],
                            opts->args[1]);
  j = *len == 0 ? json_object() : json_loadb((const char *)*body, *len, 0, &jerr);
  if (j == NULL)
    return cshim_error_make(err, EINVAL, "request body: line %d column %d: %s", jerr.line,
                            jerr.column, jerr.text);
  ret = pbjson_to_message((*method)->input, j, &msg, err);
  json_decref(j);
  if (ret < 0)
    return cshim_error_wrap(err, "request body (%s)", (*method)->input->name);
  free(*body);
  *body = cshim_xmalloc(protobuf_c_message_get_packed_size(msg) + 1);
  *len = protobuf_c_message_pack(msg, *body);
  protobuf_c_message_free_unpacked(msg, NULL);
  return 0;
}

static int
print_json_response(const ProtobufCMethodDescriptor *method, const uint8_t *p, size_t len,
                    cshim_error_t *err)
{
  ProtobufCMessage *msg = protobuf_c_message_unpack(method->output, NULL, len, p);
  json_t *j;

  if (msg == NULL)
    return cshim_error_make(err, EPROTO, "the response (%zu bytes) is not a %s", len,
                            method->output->name);
  j = pbjson_from_message(msg, NULL, 0);
  protobuf_c_message_free_unpacked(msg, NULL);
  ctl_print_json(j);
  return 0;
}

int
ctl_cmd_call(const ctl_opts_t *opts)
{
  cshim_ttrpc_client_opts_t copts = {.timeout_ms = opts->timeout_ms};
  struct bytes_result r = {0};
  const ProtobufCMethodDescriptor *method = NULL;
  cshim_autofree uint8_t *body = NULL;
  size_t body_len = 0;
  cshim_error_t err = NULL;
  ctl_client_t c;
  int ret;

  if (opts->n_args != 2)
    return ctl_usage_error("call: expected SERVICE METHOD (e.g. call acme.greeter.v1.Greeter "
                           "Hello)");
  if (load_body(opts, &body, &body_len, &err) < 0)
    return ctl_fail(&err);
  if (opts->json && json_request(opts, &method, &body, &body_len, &err) < 0)
    return ctl_fail(&err);
  if (ctl_client_open(&c, opts, &err) < 0)
    return ctl_fail(&err);
  ret = cshim_ttrpc_client_call_bytes(c.client, opts->args[0], opts->args[1], body, body_len,
                                      &copts, bytes_cb, &r, &err);
  if (ret < 0) {
    ctl_client_close(&c);
    cshim_error_wrap(&err, "call %s/%s", opts->args[0], opts->args[1]);
    return ctl_fail(&err);
  }
  while (!r.done)
    uv_run(&c.loop, UV_RUN_ONCE);
  ctl_client_close(&c);
  if (r.err) {
    int code = cshim_error_grpc_code(r.err);

    cshim_error_make_code(&err, code, "call %s/%s: RPC failed: %s: %s", opts->args[0],
                          opts->args[1], cshim_grpc_code_name(code), r.err->msg ? r.err->msg : "");
    cshim_error_release(&r.err);
    return ctl_fail(&err);
  }
  if (method)
    ret = print_json_response(method, r.payload, r.len, &err);
  else
    ret = print_response(opts, r.payload, r.len, &err);
  free(r.payload);
  return ret < 0 ? ctl_fail(&err) : 0;
}
