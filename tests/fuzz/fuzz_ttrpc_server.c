// SPDX-License-Identifier: Apache-2.0
// libFuzzer harness: raw bytes from a client socket through the ttrpc server's frame reader,
// request decode, limits and dispatch to a service with synchronous and asynchronous methods.
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <uv.h>

#include <cshim/ttrpc.h>
#include <cshim/util.h>

#include "echo.pb-c.h"
#include "ttrpc_server.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A Sleep call whose answer comes from a timer, as a runtime command's would. */
struct sleeper
{
  uv_timer_t timer;
  cshim_ttrpc_call_t *call;
  char *text;
};

static uv_loop_t loop;
static host_ttrpc_server_t *srv;
static char sock_path[108];
static size_t n_sleepers;

static void
sleeper_close_cb(uv_handle_t *h)
{
  struct sleeper *s = CSHIM_CONTAINER_OF(h, struct sleeper, timer);

  free(s->text);
  free(s);
  n_sleepers--;
}

static void
sleeper_timer_cb(uv_timer_t *t)
{
  struct sleeper *s = CSHIM_CONTAINER_OF(t, struct sleeper, timer);
  Cshim__Fixture__V1__EchoResponse resp = CSHIM__FIXTURE__V1__ECHO_RESPONSE__INIT;

  resp.text = s->text;
  resp.namespace_ = "";
  cshim_ttrpc_call_reply(s->call, &resp.base);
  uv_close((uv_handle_t *)&s->timer, sleeper_close_cb);
}

static void
echo_handler(cshim_ttrpc_call_t *call, const ProtobufCMessage *request, void *data)
{
  const Cshim__Fixture__V1__EchoRequest *req = (const void *)request;
  Cshim__Fixture__V1__EchoResponse resp = CSHIM__FIXTURE__V1__ECHO_RESPONSE__INIT;
  const char *ns = cshim_ttrpc_call_metadata(call, CSHIM_TTRPC_NAMESPACE_KEY);

  resp.text = req->text;
  resp.namespace_ = (char *)(ns ? ns : "");
  cshim_ttrpc_call_reply(call, &resp.base);
}

static void
sleep_handler(cshim_ttrpc_call_t *call, const ProtobufCMessage *request, void *data)
{
  const Cshim__Fixture__V1__SleepRequest *req = (const void *)request;
  struct sleeper *s = cshim_xmalloc0(sizeof(*s));

  s->call = call;
  s->text = cshim_xstrdup(req->text);
  /* Odd delays park the call, as Wait does; delays stay short so every input ends quickly. */
  if (req->delay_ms % 2)
    cshim_ttrpc_call_park(call);
  uv_timer_init(&loop, &s->timer);
  uv_timer_start(&s->timer, sleeper_timer_cb, req->delay_ms % 3, 0);
  n_sleepers++;
}

static void
fail_handler(cshim_ttrpc_call_t *call, const ProtobufCMessage *request, void *data)
{
  const Cshim__Fixture__V1__FailRequest *req = (const void *)request;

  cshim_ttrpc_call_fail(call, req->code, req->message);
}

static void
big_handler(cshim_ttrpc_call_t *call, const ProtobufCMessage *request, void *data)
{
  const Cshim__Fixture__V1__BigRequest *req = (const void *)request;
  Cshim__Fixture__V1__BigResponse resp = CSHIM__FIXTURE__V1__BIG_RESPONSE__INIT;
  cshim_autofree uint8_t *buf = NULL;
  /* Up to just over the frame limit, to reach the oversized-answer path. */
  size_t n = req->size % (CSHIM_TTRPC_MAX_MESSAGE + 64);

  buf = cshim_xmalloc0(n ? n : 1);
  resp.data.data = buf;
  resp.data.len = n;
  cshim_ttrpc_call_reply(call, &resp.base);
}

static const cshim_ttrpc_method_t methods[] = {
    {"Echo", echo_handler}, {"Sleep", sleep_handler}, {"Fail", fail_handler}, {"Big", big_handler},
    {NULL, NULL},
};

static const cshim_ttrpc_service_t service = {
    .struct_size = sizeof(cshim_ttrpc_service_t),
    .descriptor = &cshim__fixture__v1__echo__descriptor,
    .methods = methods,
};

/* A second name for the same service, with part of its methods. */
static const cshim_ttrpc_method_t v2_methods[] = {{"Echo", echo_handler}, {NULL, NULL}};
static const cshim_ttrpc_service_t service_v2 = {
    .struct_size = sizeof(cshim_ttrpc_service_t),
    .name = "cshim.fixture.v2.Echo",
    .descriptor = &cshim__fixture__v1__echo__descriptor,
    .methods = v2_methods,
};

static void
die(const char *what, cshim_error_t err)
{
  fprintf(stderr, "fuzz_ttrpc_server: %s: %s\n", what, err ? err->msg : strerror(errno));
  abort();
}

static void
cleanup_dir(void)
{
  char dir[sizeof(sock_path)];

  unlink(sock_path);
  snprintf(dir, sizeof(dir), "%s", sock_path);
  *strrchr(dir, '/') = '\0';
  rmdir(dir);
}

static void
setup_once(void)
{
  char dir[] = "/tmp/cshim-fuzz-ttrpc-XXXXXX";
  /* Small limits, so that inputs reach the pauses and the budget's refusals. */
  host_ttrpc_server_limits_t limits = {.max_calls_in_flight = 3, .buffer_budget = 1};
  cshim_error_t err = NULL;

  if (!mkdtemp(dir))
    die("mkdtemp", NULL);
  snprintf(sock_path, sizeof(sock_path), "%s/ttrpc.sock", dir);
  atexit(cleanup_dir);
  if (uv_loop_init(&loop) < 0)
    die("uv_loop_init", NULL);
  if (host_ttrpc_server_new(&loop, NULL, &srv, &err) < 0)
    die("server", err);
  host_ttrpc_server_set_limits(srv, &limits);
  if (cshim_ttrpc_server_register(host_ttrpc_server_api(srv), &service, &err) < 0 ||
      cshim_ttrpc_server_register(host_ttrpc_server_api(srv), &service_v2, &err) < 0)
    die("register", err);
  if (host_ttrpc_server_listen_path(srv, sock_path, &err) < 0)
    die("listen", err);
}

static void
turn(int fd, short events)
{
  struct pollfd p = {.fd = fd, .events = events};

  uv_run(&loop, UV_RUN_NOWAIT);
  if (events)
    poll(&p, 1, 1);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  struct sockaddr_un addr = {.sun_family = AF_UNIX};
  cshim_ttrpc_stats_t st;
  uint8_t sink[65536];
  size_t off = 0;
  bool eof = false;
  int fd;

  if (!srv)
    setup_once();
  strcpy(addr.sun_path, sock_path);
  fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0 || connect(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0)
    die("connect", NULL);

  /* Send everything while reading the answers (a client that does not read would stall a
     connection the budget then closes, which is also a path worth reaching). */
  while (off < size) {
    ssize_t n = send(fd, data + off, size - off, MSG_NOSIGNAL);
    if (n > 0)
      off += (size_t)n;
    else if (n < 0 && errno != EAGAIN && errno != EINTR)
      break; /* the server closed the connection */
    while (recv(fd, sink, sizeof(sink), 0) > 0)
      ;
    turn(fd, POLLOUT | POLLIN);
  }
  shutdown(fd, SHUT_WR);
  /* The server closes the connection on EOF; its pending calls finish from their timers. */
  while (!eof) {
    ssize_t n = recv(fd, sink, sizeof(sink), 0);
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
      eof = true;
    else if (n < 0)
      turn(fd, POLLIN);
  }
  close(fd);
  do {
    turn(-1, 0);
    host_ttrpc_server_get_stats(srv, &st);
  } while (n_sleepers > 0 || st.connections_open > 0 || st.calls_in_flight > 0);
  {
    /* Everything charged to the budget is given back once nothing is left. */
    host_ttrpc_server_usage_t u;
    host_ttrpc_server_get_usage(srv, &u);
    if (u.buffered != 0 || u.calls_working != 0 || u.calls_parked != 0) {
      fprintf(stderr, "fuzz_ttrpc_server: %zu bytes, %zu calls, %zu parked still charged\n",
              u.buffered, u.calls_working, u.calls_parked);
      abort();
    }
  }
  return 0;
}
