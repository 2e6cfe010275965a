// SPDX-License-Identifier: Apache-2.0
// An asynchronous unary ttrpc client on libuv: one connection, many calls in flight.
#ifndef CSHIM_TTRPC_CLIENT_H
#define CSHIM_TTRPC_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <protobuf-c/protobuf-c.h>
#include <uv.h>

#include <cshim/error.h>
#include <cshim/log.h>

#ifdef __cplusplus
extern "C" {
#endif

/* One client is one connection to one Unix socket. It starts connecting when created; calls
   made before the connection is up are sent as soon as it is. Once the connection is lost (or
   could not be made) the client is broken for good: every pending call fails with Unavailable
   and later calls are refused; close it and create another one to redial. Loop thread only;
   nothing blocks. An idle client (no call pending) does not keep the loop alive. */
typedef struct cshim_ttrpc_client_s cshim_ttrpc_client_t;

/* A metadata entry sent with a request. Keys are sent lower case (as Go ttrpc does). */
typedef struct cshim_ttrpc_client_kv_s
{
  const char *key;
  const char *value;
} cshim_ttrpc_client_kv_t;

/* Per-call options; a NULL pointer means all defaults. Borrowed for the call function only. */
typedef struct cshim_ttrpc_client_opts_s
{
  /* Deadline in milliseconds from the call (0 = none). When it passes the call fails with
     DeadlineExceeded; nothing is sent to the server and a late response is discarded. The
     remaining time is also sent as the request's timeout_nano. */
  uint64_t timeout_ms;
  /* Metadata for this call, after the client's own (cshim_ttrpc_client_add_metadata). */
  const cshim_ttrpc_client_kv_t *metadata;
  size_t n_metadata;
} cshim_ttrpc_client_opts_t;

/* Completion of a call, run exactly once, on the loop (never from inside the call function).
   On success *err is NULL and `response` is the decoded response (NULL when the call gave no
   response descriptor); the callback owns it: protobuf_c_message_free_unpacked (response, NULL).
   On failure `response` is NULL and *err holds the error; its gRPC code
   (cshim_error_grpc_code) is the server's status code, or DeadlineExceeded, Unavailable
   (connection closed or never made), Canceled (client closed), ResourceExhausted (response
   over 4 MiB), Internal (undecodable response). The callback may take the error with
   cshim_steal_pointer (err); what it leaves is released after it returns. */
typedef void (*cshim_ttrpc_client_cb)(void *data, ProtobufCMessage *response, cshim_error_t *err);

/* Create a client and start connecting to `address`: a Unix socket path, with an optional
   "unix://" prefix. `loop` is borrowed until the client is freed; `log` (may be NULL: no
   logging) until close's done_cb runs. Fails only for an unusable address (EINVAL,
   ENAMETOOLONG) or a libuv error; a refused connection is reported through the calls. */
int cshim_ttrpc_client_new(uv_loop_t *loop, const char *address, const cshim_logger_t *log,
                           cshim_ttrpc_client_t **out, cshim_error_t *err);

/* Add a metadata entry sent with every later request (e.g. CSHIM_TTRPC_NAMESPACE_KEY, in
   <cshim/ttrpc.h>). Both strings are copied. */
void cshim_ttrpc_client_add_metadata(cshim_ttrpc_client_t *client, const char *key,
                                     const char *value);

/* Start a unary call of service/method (e.g. "containerd.services.events.ttrpc.v1.Events",
   "Forward") with `request` (borrowed for this function only; NULL = empty payload). The
   response is decoded with `response_desc` (NULL: the payload is ignored). Stream ids are odd
   and increasing on the connection. Returns 0 and later runs cb exactly once; or fails at once
   (the callback is then never run): ENOTCONN when the client is broken or closing, EMSGSIZE
   when the request is over 4 MiB (gRPC ResourceExhausted), ERANGE when stream ids ran out. */
int cshim_ttrpc_client_call(cshim_ttrpc_client_t *client, const char *service, const char *method,
                            const ProtobufCMessage *request,
                            const ProtobufCMessageDescriptor *response_desc,
                            const cshim_ttrpc_client_opts_t *opts, cshim_ttrpc_client_cb cb,
                            void *data, cshim_error_t *err);

/* Like cshim_ttrpc_client_call with an already serialized request payload (borrowed for this
   function only; it is copied). */
int cshim_ttrpc_client_call_raw(cshim_ttrpc_client_t *client, const char *service,
                                const char *method, const uint8_t *payload, size_t payload_len,
                                const ProtobufCMessageDescriptor *response_desc,
                                const cshim_ttrpc_client_opts_t *opts, cshim_ttrpc_client_cb cb,
                                void *data, cshim_error_t *err);

/* Completion of a call made with cshim_ttrpc_client_call_bytes, with the same rules as
   cshim_ttrpc_client_cb, but the response is not decoded: on success `payload` holds its
   payload_len bytes as the server sent them (NULL when empty), and the callback owns them
   (free()). On failure payload is NULL and *err holds the error. */
typedef void (*cshim_ttrpc_client_bytes_cb)(void *data, uint8_t *payload, size_t payload_len,
                                            cshim_error_t *err);

/* Like cshim_ttrpc_client_call_raw, for a method whose message types the caller does not know
   (a generic client such as `cshimctl call`): the answer comes undecoded. */
int cshim_ttrpc_client_call_bytes(cshim_ttrpc_client_t *client, const char *service,
                                  const char *method, const uint8_t *payload, size_t payload_len,
                                  const cshim_ttrpc_client_opts_t *opts,
                                  cshim_ttrpc_client_bytes_cb cb, void *data, cshim_error_t *err);

/* Whether the connection is up (false while connecting, once broken, and when closing). */
bool cshim_ttrpc_client_is_connected(const cshim_ttrpc_client_t *client);

/* Whether the client is broken or closing, i.e. refuses calls. */
bool cshim_ttrpc_client_is_broken(const cshim_ttrpc_client_t *client);

/* Calls started and not yet completed. */
size_t cshim_ttrpc_client_n_pending(const cshim_ttrpc_client_t *client);

/* Close the connection and free the client. Every pending call completes with Canceled before
   close returns (its callback runs inside this function). The memory is freed once libuv has
   closed the handles; then done_cb (may be NULL) runs, always from the loop, never before close
   returns. Call it once, also from inside a call's callback if wanted; client is invalid
   afterwards. */
void cshim_ttrpc_client_close(cshim_ttrpc_client_t *client, void (*done_cb)(void *data),
                              void *data);

#ifdef __cplusplus
}
#endif
#endif
