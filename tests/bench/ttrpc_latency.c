// SPDX-License-Identifier: Apache-2.0
// Benchmark: round-trip latency of task API calls (Connect) against any shim socket.
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include <cshim/ttrpc_client.h>
#include <cshim/util.h>

#include "containerd/task/v2/shim.pb-c.h"

typedef struct bench_s
{
  uv_loop_t *loop;
  cshim_ttrpc_client_t *client;
  const char *service;
  const char *id;
  const char *ns;
  size_t total, done, inflight, concurrency;
  uint64_t *lat;
  uint64_t *start;
  int failures;
  char last_error[256];
} bench_t;

static void issue(bench_t *b);

/* A tiny per-call record: the bench and the call's index. */
typedef struct call_s
{
  bench_t *b;
  size_t idx;
} call_t;

static void
call_cb(void *data, ProtobufCMessage *response, cshim_error_t *err)
{
  call_t *c = data;
  bench_t *b = c->b;
  b->lat[c->idx] = cshim_now_ns() - b->start[c->idx];
  if (err && *err) {
    b->failures++;
    snprintf(b->last_error, sizeof b->last_error, "%s", (*err)->msg);
  }
  if (response)
    protobuf_c_message_free_unpacked(response, NULL);
  b->done++;
  b->inflight--;
  free(c);
  issue(b);
}

static void
issue(bench_t *b)
{
  while (b->inflight < b->concurrency && b->done + b->inflight < b->total) {
    Containerd__Task__V2__ConnectRequest req = CONTAINERD__TASK__V2__CONNECT_REQUEST__INIT;
    cshim_ttrpc_client_kv_t md = {"containerd-namespace-ttrpc", b->ns};
    cshim_ttrpc_client_opts_t opts = {.timeout_ms = 5000, .metadata = &md, .n_metadata = 1};
    cshim_error_t err = NULL;
    call_t *c = cshim_xmalloc(sizeof *c);
    c->b = b;
    c->idx = b->done + b->inflight;
    req.id = (char *)b->id;
    b->start[c->idx] = cshim_now_ns();
    if (cshim_ttrpc_client_call(b->client, b->service, "Connect", &req.base,
                                &containerd__task__v2__connect_response__descriptor, &opts, call_cb,
                                c, &err) < 0) {
      fprintf(stderr, "call: %s\n", err->msg);
      exit(1);
    }
    b->inflight++;
  }
}

static int
cmp_u64(const void *a, const void *b)
{
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return x < y ? -1 : x > y;
}

int
main(int argc, char **argv)
{
  bench_t b;
  cshim_error_t err = NULL;
  uint64_t t0, t1;

  if (argc < 3) {
    fprintf(stderr, "usage: %s SOCKET TASK-ID [CALLS [CONCURRENCY [NAMESPACE]]]\n", argv[0]);
    return 2;
  }
  memset(&b, 0, sizeof b);
  b.loop = uv_default_loop();
  b.service = "containerd.task.v2.Task";
  b.id = argv[2];
  b.total = argc > 3 ? strtoul(argv[3], NULL, 10) : 10000;
  b.concurrency = argc > 4 ? strtoul(argv[4], NULL, 10) : 1;
  b.ns = argc > 5 ? argv[5] : "default";
  b.lat = cshim_xmalloc0(b.total * sizeof *b.lat);
  b.start = cshim_xmalloc0(b.total * sizeof *b.start);
  if (cshim_ttrpc_client_new(b.loop, argv[1], NULL, &b.client, &err) < 0) {
    fprintf(stderr, "connect: %s\n", err->msg);
    return 1;
  }
  t0 = cshim_now_ns();
  issue(&b);
  uv_run(b.loop, UV_RUN_DEFAULT);
  t1 = cshim_now_ns();
  if (b.done != b.total || b.failures) {
    fprintf(stderr, "%zu/%zu calls done, %d failed (%s)\n", b.done, b.total, b.failures,
            b.last_error);
    return 1;
  }
  qsort(b.lat, b.total, sizeof *b.lat, cmp_u64);
  printf("calls=%zu concurrency=%zu p50_us=%.1f p99_us=%.1f max_us=%.1f calls_per_s=%.0f\n",
         b.total, b.concurrency, b.lat[b.total / 2] / 1e3, b.lat[b.total * 99 / 100] / 1e3,
         b.lat[b.total - 1] / 1e3, b.total / ((t1 - t0) / 1e9));
  cshim_ttrpc_client_close(b.client, NULL, NULL);
  uv_run(b.loop, UV_RUN_DEFAULT);
  free(b.lat);
  free(b.start);
  return 0;
}
