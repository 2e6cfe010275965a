// SPDX-License-Identifier: Apache-2.0
// cshimctl's synchronous use of the SDK ttrpc client: connect, call, run the loop until the
// answer is in, and clear errors for missing sockets and refused connections.
#define _GNU_SOURCE
#include "ctl.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <cshim/ttrpc.h>
#include <cshim/unix_socket.h>
#include <cshim/util.h>

struct sync_result
{
  bool done;
  ProtobufCMessage *response;
  cshim_error_t err;
};

const char *
ctl_socket_path(const char *address)
{
  return strncmp(address, "unix://", 7) == 0 ? address + 7 : address;
}

static int
probe(const char *path, cshim_error_t *err)
{
  struct sockaddr_un sun;
  socklen_t len;
  int fd, r;

  if (cshim_unix_sockaddr(path, false, &sun, &len, err) < 0)
    return cshim_error_wrap(err, "connect");
  fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return cshim_error_sys(err, errno, "socket");
  r = connect(fd, (struct sockaddr *)&sun, len);
  if (r < 0) {
    int e = errno;
    close(fd);
    return cshim_error_sys(err, e, "connect `%s`", path);
  }
  close(fd);
  return 0;
}

int
ctl_client_open(ctl_client_t *c, const ctl_opts_t *opts, cshim_error_t *err)
{
  int ret;

  memset(c, 0, sizeof(*c));
  c->opts = opts;
  if (opts->address == NULL || opts->address[0] == '\0')
    return cshim_error_make(err, EINVAL, "no shim socket: pass --address unix:///PATH");
  c->path = cshim_xstrdup(ctl_socket_path(opts->address));
  ret = probe(c->path, err);
  if (ret < 0) {
    free(c->path);
    c->path = NULL;
    return ret;
  }
  uv_loop_init(&c->loop);
  ret = cshim_ttrpc_client_new(&c->loop, c->path, NULL, &c->client, err);
  if (ret < 0) {
    uv_loop_close(&c->loop);
    free(c->path);
    c->path = NULL;
    return ret;
  }
  cshim_ttrpc_client_add_metadata(c->client, CSHIM_TTRPC_NAMESPACE_KEY, opts->namespace_);
  return 0;
}

static void
sync_cb(void *data, ProtobufCMessage *response, cshim_error_t *err)
{
  struct sync_result *r = data;

  r->done = true;
  r->response = response;
  if (err && *err)
    r->err = cshim_steal_pointer(err);
}

int
ctl_client_call(ctl_client_t *c, const char *method, const ProtobufCMessage *req,
                const ProtobufCMessageDescriptor *resp_desc, ProtobufCMessage **out,
                cshim_error_t *err)
{
  cshim_ttrpc_client_opts_t copts = {.timeout_ms = c->opts->timeout_ms};
  struct sync_result r = {0};
  int ret;

  *out = NULL;
  ret = cshim_ttrpc_client_call(c->client, c->opts->task_service, method, req, resp_desc, &copts,
                                sync_cb, &r, err);
  if (ret < 0)
    return cshim_error_wrap(err, "%s", method);
  while (!r.done)
    uv_run(&c->loop, UV_RUN_ONCE);
  if (r.err) {
    int code = cshim_error_grpc_code(r.err);
    ret = cshim_error_make_code(err, code, "RPC failed: %s: %s", cshim_grpc_code_name(code),
                                r.err->msg ? r.err->msg : "");
    cshim_error_release(&r.err);
    if (r.response)
      protobuf_c_message_free_unpacked(r.response, NULL);
    return ret;
  }
  *out = r.response;
  return 0;
}

void
ctl_client_close(ctl_client_t *c)
{
  if (c->client == NULL)
    return;
  cshim_ttrpc_client_close(c->client, NULL, NULL);
  c->client = NULL;
  uv_run(&c->loop, UV_RUN_DEFAULT);
  uv_loop_close(&c->loop);
  free(c->path);
  c->path = NULL;
}

int
ctl_fail(cshim_error_t *err)
{
  fprintf(stderr, "cshimctl: %s\n", *err && (*err)->msg ? (*err)->msg : "unknown error");
  cshim_error_release(err);
  return 1;
}

int
ctl_usage_error(const char *fmt, ...)
{
  va_list ap;

  fputs("cshimctl: ", stderr);
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fputs("\n(see cshimctl --help)\n", stderr);
  return 2;
}

const char *
ctl_format_time(const Google__Protobuf__Timestamp *ts, char *buf, size_t size)
{
  struct tm tm;
  time_t secs;

  if (ts == NULL) {
    snprintf(buf, size, "%s", "");
    return buf;
  }
  /* gmtime_r handles year 1 on glibc, so Go's zero time prints as Go prints it. */
  secs = (time_t)ts->seconds;
  if (gmtime_r(&secs, &tm) == NULL) {
    snprintf(buf, size, "%lld", (long long)ts->seconds);
    return buf;
  }
  if (ts->nanos)
    snprintf(buf, size, "%04d-%02d-%02dT%02d:%02d:%02d.%09dZ", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ts->nanos);
  else
    snprintf(buf, size, "%04d-%02d-%02dT%02d:%02d:%02dZ", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
  return buf;
}

void
ctl_print_json(json_t *j)
{
  char *text = json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER);

  puts(text ? text : "null");
  free(text);
  json_decref(j);
}
