// SPDX-License-Identifier: Apache-2.0
// cshimctl debug: GET the debug plugin's endpoints over its Unix socket (responses parsed with
// http_parser) and print them, or save a CPU profile.
#define _GNU_SOURCE
#include "ctl.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <http_parser.h>
#include <jansson.h>

#include <cshim/unix_socket.h>
#include <cshim/util.h>

typedef struct response_s
{
  int status;
  char *body;
  size_t len;
  bool complete;
} response_t;

static int
on_body_cb(http_parser *p, const char *at, size_t len)
{
  response_t *r = p->data;

  r->body = cshim_xrealloc(r->body, r->len + len + 1);
  memcpy(r->body + r->len, at, len);
  r->len += len;
  r->body[r->len] = '\0';
  return 0;
}

static int
on_message_complete_cb(http_parser *p)
{
  response_t *r = p->data;

  r->complete = true;
  r->status = (int)p->status_code;
  return 0;
}

static const http_parser_settings settings = {
    .on_body = on_body_cb,
    .on_message_complete = on_message_complete_cb,
};

static int
send_all(int fd, const char *data, size_t len)
{
  while (len > 0) {
    ssize_t n = CSHIM_RETRY_EINTR(write(fd, data, len));
    if (n <= 0)
      return -1;
    data += n;
    len -= (size_t)n;
  }
  return 0;
}

/* GET path on the socket; waits up to timeout_ms for the whole answer. */
static int
http_get(const char *socket_path, const char *path, uint64_t timeout_ms, response_t *r,
         cshim_error_t *err)
{
  struct sockaddr_un sun;
  socklen_t sun_len;
  cshim_autoclose int fd = -1;
  cshim_autofree char *request = NULL;
  struct timespec start;
  http_parser parser;
  char chunk[16384];

  memset(r, 0, sizeof(*r));
  if (cshim_unix_sockaddr(socket_path, false, &sun, &sun_len, err) < 0)
    return cshim_error_wrap(err, "connect");
  fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return cshim_error_sys(err, errno, "socket");
  if (connect(fd, (struct sockaddr *)&sun, sun_len) < 0)
    return cshim_error_sys(err, errno, "connect `%s`", socket_path);
  cshim_xasprintf(&request,
                  "GET %s HTTP/1.1\r\nHost: cshim\r\nUser-Agent: cshimctl\r\n"
                  "Connection: close\r\n\r\n",
                  path);
  if (send_all(fd, request, strlen(request)) < 0)
    return cshim_error_sys(err, errno, "send request to `%s`", socket_path);

  http_parser_init(&parser, HTTP_RESPONSE);
  parser.data = r;
  clock_gettime(CLOCK_MONOTONIC, &start);
  while (!r->complete) {
    struct pollfd pfd = {.fd = fd, .events = POLLIN};
    struct timespec now;
    int64_t left;
    ssize_t n;

    clock_gettime(CLOCK_MONOTONIC, &now);
    left = (int64_t)timeout_ms -
           ((now.tv_sec - start.tv_sec) * 1000 + (now.tv_nsec - start.tv_nsec) / 1000000);
    if (timeout_ms && left <= 0)
      return cshim_error_make(err, ETIMEDOUT, "no answer from `%s` within %llu ms", socket_path,
                              (unsigned long long)timeout_ms);
    if (poll(&pfd, 1, timeout_ms ? (int)left : -1) < 0 && errno != EINTR)
      return cshim_error_sys(err, errno, "poll");
    if (!(pfd.revents & (POLLIN | POLLHUP | POLLERR)))
      continue;
    n = CSHIM_RETRY_EINTR(read(fd, chunk, sizeof(chunk)));
    if (n < 0)
      return cshim_error_sys(err, errno, "read from `%s`", socket_path);
    http_parser_execute(&parser, &settings, chunk, (size_t)n);
    if (HTTP_PARSER_ERRNO(&parser) != HPE_OK)
      return cshim_error_make(err, EPROTO, "bad HTTP answer from `%s`: %s", socket_path,
                              http_errno_description(HTTP_PARSER_ERRNO(&parser)));
    if (n == 0 && !r->complete)
      return cshim_error_make(err, EPROTO, "`%s` closed the connection before answering",
                              socket_path);
  }
  return 0;
}

static void
response_free(response_t *r)
{
  free(r->body);
  r->body = NULL;
}

/* The process table as a table (the "tasks" source, and any other array of objects). */
static void
print_state_table(const char *body)
{
  json_t *root = json_loads(body, 0, NULL), *value;
  const char *name;

  if (!json_is_object(root)) {
    fputs(body, stdout);
    json_decref(root);
    return;
  }
  json_object_foreach(root, name, value)
  {
    size_t i;
    json_t *p;

    printf("%s:\n", name);
    if (!json_is_array(value)) {
      char *text = json_dumps(value, JSON_INDENT(2) | JSON_ENCODE_ANY);
      printf("%s\n", text ? text : "null");
      free(text);
      continue;
    }
    printf("  %-24s %-16s %-8s %-9s %-7s %s\n", "CONTAINER", "EXEC", "PID", "STATUS", "IO", "EXIT");
    json_array_foreach(value, i, p)
    {
      const char *exec = json_string_value(json_object_get(p, "exec_id"));
      json_t *exit_status = json_object_get(p, "exit_status");
      char exit_text[32] = "-";

      if (json_is_integer(exit_status))
        snprintf(exit_text, sizeof(exit_text), "%lld", (long long)json_integer_value(exit_status));
      printf("  %-24s %-16s %-8lld %-9s %-7s %s\n",
             json_string_value(json_object_get(p, "container_id"))
                 ? json_string_value(json_object_get(p, "container_id"))
                 : "-",
             exec && exec[0] ? exec : "-", (long long)json_integer_value(json_object_get(p, "pid")),
             json_string_value(json_object_get(p, "status"))
                 ? json_string_value(json_object_get(p, "status"))
                 : "-",
             json_string_value(json_object_get(p, "io"))
                 ? json_string_value(json_object_get(p, "io"))
                 : "-",
             exit_text);
    }
  }
  json_decref(root);
}

static int
save_profile(const ctl_opts_t *o, const response_t *r, cshim_error_t *err)
{
  const char *output = o->output ? o->output : "cshim.prof";
  cshim_autoclose int fd = open(output, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);

  if (fd < 0)
    return cshim_error_sys(err, errno, "create `%s`", output);
  if (send_all(fd, r->body ? r->body : "", r->len) < 0)
    return cshim_error_sys(err, errno, "write `%s`", output);
  if (o->json)
    printf("{\"file\": \"%s\", \"bytes\": %zu}\n", output, r->len);
  else
    printf("wrote a %zu-byte CPU profile to %s (read it with: google-pprof --text "
           "<shim binary> %s)\n",
           r->len, output, output);
  return 0;
}

int
ctl_cmd_debug(const ctl_opts_t *o)
{
  const char *what = o->n_args > 0 ? o->args[0] : NULL;
  cshim_autofree char *path = NULL;
  cshim_error_t err = NULL;
  uint64_t timeout = o->timeout_ms;
  response_t r;

  if (what == NULL)
    return ctl_usage_error("debug: metrics, vars, state or profile?");
  if (o->address == NULL)
    return ctl_usage_error("debug: --address unix:///DEBUG_SOCKET is required");
  if (strcmp(what, "metrics") == 0)
    path = cshim_xstrdup("/metrics");
  else if (strcmp(what, "vars") == 0)
    path = cshim_xstrdup("/debug/vars");
  else if (strcmp(what, "state") == 0)
    path = cshim_xstrdup("/debug/state");
  else if (strcmp(what, "profile") == 0) {
    unsigned seconds = o->seconds ? o->seconds : 30;
    cshim_xasprintf(&path, "/debug/pprof/profile?seconds=%u", seconds);
    if (timeout)
      timeout += (uint64_t)seconds * 1000u;
  } else
    return ctl_usage_error("debug: unknown endpoint `%s` (metrics, vars, state, profile)", what);

  if (http_get(ctl_socket_path(o->address), path, timeout, &r, &err) < 0) {
    response_free(&r);
    return ctl_fail(&err);
  }
  if (r.status != 200) {
    cshim_error_make(&err, EIO, "debug %s: HTTP %d: %s", what, r.status, r.body ? r.body : "");
    response_free(&r);
    if (err->msg[strlen(err->msg) - 1] == '\n')
      err->msg[strlen(err->msg) - 1] = '\0';
    return ctl_fail(&err);
  }
  if (strcmp(what, "profile") == 0) {
    int ret = save_profile(o, &r, &err);
    response_free(&r);
    return ret < 0 ? ctl_fail(&err) : 0;
  }
  if (strcmp(what, "state") == 0 && !o->json)
    print_state_table(r.body ? r.body : "{}");
  else
    fwrite(r.body ? r.body : "", 1, r.len, stdout);
  response_free(&r);
  return 0;
}
