// SPDX-License-Identifier: Apache-2.0
// Test harness for the real shim binary: a temporary bundle, a config, the daemon as a child
// process on a temporary socket, and a small blocking ttrpc client over raw frames.
#ifndef CSHIM_TEST_HARNESS_H
#define CSHIM_TEST_HARNESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <protobuf-c/protobuf-c.h>

#include "ttrpc/request.pb-c.h"

/* One daemon under test. Every path lives in `dir`, which harness_fini removes. */
typedef struct harness_s
{
  char dir[64];     /* mkdtemp'ed directory */
  char bundle[128]; /* dir/bundle: the daemon's cwd */
  char config[128]; /* dir/cshim.yaml */
  char sock[128];   /* dir/shim.sock */
  char log[128];    /* dir/shim.log: the daemon's stderr */
  pid_t pid;        /* 0 when not running */
  int status;       /* wait status once it exited */
} harness_t;

/* Create the temporary tree and write `yaml` as the config; "%DIR%" in yaml is replaced by
   h->dir. Aborts the test on failure. */
void harness_init(harness_t *h, const char *yaml);

/* Start the daemon: `-namespace NS -id ID -address dir/containerd.sock -socket dir/shim.sock`,
   cwd = bundle, CSHIM_CONFIG = the config, stderr to the log. */
void harness_start(harness_t *h);

/* Wait up to timeout_ms for the socket to accept connections. Returns false when the daemon
   exited first (h->status holds how) or the time ran out. */
bool harness_wait_ready(harness_t *h, int timeout_ms);

/* Wait up to timeout_ms for the daemon to exit. Returns false on timeout (it is still
   running). */
bool harness_wait_exit(harness_t *h, int timeout_ms);

/* Start, expecting the daemon to give up: returns its exit status (-1 if it was killed by a
   signal or did not exit within 10 s; then it is killed). */
int harness_run_to_failure(harness_t *h);

/* The daemon's stderr so far, NUL-terminated; caller frees. */
char *harness_read_log(const harness_t *h);

/* Kill the daemon if it still runs and remove the temporary tree. */
void harness_fini(harness_t *h);

/* ---- a blocking client (every read times out after 10 s) --------------------------------- */

/* Connect to path; returns the fd or -1. */
int raw_connect(const char *path);

/* Write one frame (header + len bytes of data). Returns 0 or -1. */
int raw_send_frame(int fd, uint32_t stream_id, uint8_t type, uint8_t flags, const void *data,
                   size_t len);

/* Send a Request frame for service/method with msg as payload (NULL = empty) and, when ns is
   not NULL, the containerd-namespace-ttrpc metadata. Returns 0 or -1. */
int raw_send_request(int fd, uint32_t stream_id, const char *service, const char *method,
                     const ProtobufCMessage *msg, const char *ns);

/* Like raw_send_request with an already serialized payload (len bytes, which may be
   anything). */
int raw_send_request_bytes(int fd, uint32_t stream_id, const char *service, const char *method,
                           const void *payload, size_t len, const char *ns);

/* Read one Response frame. Returns the decoded response (caller frees with
   ttrpc__response__free_unpacked) and its stream id, or NULL on error/timeout/EOF. */
Ttrpc__Response *raw_recv_response(int fd, uint32_t *stream_id);

/* gRPC code of a response (0 when status is absent). */
int raw_response_code(const Ttrpc__Response *resp);

/* Status message of a response ("" when absent). */
const char *raw_response_message(const Ttrpc__Response *resp);

#endif
