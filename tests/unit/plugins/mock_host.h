// SPDX-License-Identifier: Apache-2.0
// A mock of what the host gives a plugin (init context, logger, config, lookups, a fake
// shutdown service) and a fake containerd Events service, for plugin unit tests.
#ifndef MOCK_HOST_H
#define MOCK_HOST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include <cshim/config.h>
#include <cshim/error.h>
#include <cshim/log.h>
#include <cshim/plugin.h>
#include <cshim/shutdown.h>
#include <cshim/ttrpc.h>

#include "containerd/services/events/ttrpc/v1/events.pb-c.h"

#define MOCK_MAX 32

/* A shutdown service whose callbacks the test runs by hand. */
typedef struct mock_shutdown_s mock_shutdown_t;
typedef struct mock_shutdown_done_s
{
  cshim_shutdown_done_t base; /* first: handed to the callback */
  mock_shutdown_t *owner;
  bool completed;
  int completions;
  int status;    /* 0, or the error's class */
  char msg[256]; /* the error's message */
} mock_shutdown_done_t;

struct mock_shutdown_s
{
  cshim_shutdown_t base; /* first: what plugins call */
  cshim_shutdown_cb cbs[MOCK_MAX];
  void *data[MOCK_MAX];
  mock_shutdown_done_t dones[MOCK_MAX];
  size_t n;
  bool started;
  int calls; /* times a plugin called shutdown () */
};

/* Run every registered callback (once). */
void mock_shutdown_trigger(mock_shutdown_t *s);
/* Whether every callback run so far has completed. */
bool mock_shutdown_all_completed(const mock_shutdown_t *s);

typedef struct mock_log_line_s
{
  int level;
  char *line; /* owned, without the trailing newline */
} mock_log_line_t;

typedef struct mock_host_s
{
  uv_loop_t loop;
  cshim_init_ctx_t ctx;
  cshim_logger_t logger;
  mock_log_line_t *lines;
  size_t n_lines;
  bool echo; /* copy log lines to stderr (MOCK_HOST_VERBOSE set) */

  const char *prop_keys[MOCK_MAX];
  const char *prop_values[MOCK_MAX];
  size_t n_props;

  /* The plugin's config section: a map of plain scalars. */
  cshim_config_node_t config;
  const char *config_keys[MOCK_MAX];
  cshim_config_node_t config_items[MOCK_MAX];
  char *config_values[MOCK_MAX]; /* owned copies */

  struct
  {
    const char *type, *id;
    void *instance;
  } instances[MOCK_MAX];
  size_t n_instances;
  const char *const *requires; /* types lookups are allowed for; NULL = none */

  mock_shutdown_t shutdown;
} mock_host_t;

/* Set up a loop, a capturing logger and an init context for plugin `uri`. Lookups are allowed
   for the NULL-terminated `requires` (borrowed). The fake shutdown service is registered as
   io.containerd.internal.v1 "shutdown". */
void mock_host_init(mock_host_t *h, const char *uri, const char *const *requires);

/* Close every handle still open on the loop, run it dry, close it, free what was captured.
   Fails the test if handles are left. */
void mock_host_fini(mock_host_t *h);

/* Strings are borrowed for the host's lifetime (use literals). */
void mock_host_set_property(mock_host_t *h, const char *key, const char *value);
/* Add key: value to the plugin's config map (a plain scalar, as if unquoted in YAML; the value
   is copied, the key borrowed), or replace the value of key. */
void mock_host_set_config(mock_host_t *h, const char *key, const char *value);
void mock_host_add_instance(mock_host_t *h, const char *type, const char *id, void *instance);

/* Run the loop until pred(data) holds or timeout_ms passes; returns the last pred value. */
bool mock_host_run_until(mock_host_t *h, bool (*pred)(void *data), void *data, uint64_t timeout_ms);
/* Run the loop for ms milliseconds. */
void mock_host_run_for(mock_host_t *h, uint64_t ms);

/* Captured log lines at `level` or above containing every given substring (NULL-terminated). */
size_t mock_host_count_lines(const mock_host_t *h, int min_level, ...) __attribute__((sentinel));
void mock_host_dump_lines(const mock_host_t *h);

/* ---- fake ttrpc calls, for driving a plugin's handlers ---- */

typedef struct mock_call_s
{
  cshim_ttrpc_call_t base; /* first */
  int answered;            /* times answered (must end as 1) */
  int code;                /* 0 on reply, -1 until answered */
  char *message;
  uint8_t *payload; /* packed reply */
  size_t len;
  int parked; /* times the handler parked it (cshim_ttrpc_call_park) */
  int packed; /* answers given already packed (cshim_ttrpc_call_reply_packed) */
  const ProtobufCMessageDescriptor *packed_type; /* the type they named */
  uint64_t connection; /* what cshim_ttrpc_call_connection answers (0 by default) */
  /* cshim_ttrpc_call_on_cancel: a test runs it to play a closed connection */
  void (*cancel_cb)(cshim_ttrpc_call_t *call, void *data);
  void *cancel_data;
} mock_call_t;

/* A call of `method` (borrowed) on service `service` (borrowed). */
mock_call_t *mock_call_new(const char *service, const char *method);
void mock_call_free(mock_call_t *c);
/* Decode the reply with desc (the call must have been answered OK); caller frees with
   protobuf_c_message_free_unpacked. */
ProtobufCMessage *mock_call_unpack(const mock_call_t *c, const ProtobufCMessageDescriptor *desc);
/* Run the loop until the call is answered or timeout_ms passes; returns whether it was. */
bool mock_host_run_call(mock_host_t *h, mock_call_t *c, uint64_t timeout_ms);

/* ---- fake containerd Events service (containerd.services.events.ttrpc.v1.Events) ---- */

typedef struct mock_events_conn_s mock_events_conn_t;

typedef struct mock_forward_s
{
  Containerd__Services__Events__Ttrpc__V1__ForwardRequest *req; /* owned (unpacked) */
  char *namespace_md; /* containerd-namespace-ttrpc metadata, owned, or NULL */
  uint32_t stream_id;
  int64_t timeout_nano;
  int answered_code; /* what the server answered (-1: not answered) */
} mock_forward_t;

typedef struct mock_events_server_s
{
  uv_loop_t *loop;
  char dir[64];
  char path[128];
  uv_pipe_t listener;
  bool listening;
  mock_events_conn_t *conns[MOCK_MAX];
  unsigned open_handles;
  size_t n_connections; /* accepted so far */

  /* Behaviour, changeable at any time. */
  int fail_next;  /* answer the next N Forwards with fail_code */
  int fail_code;  /* default Unavailable */
  int hold;       /* don't answer the next N Forwards at all */
  int close_next; /* close the connection on the next N Forwards, without answering */

  mock_forward_t *received; /* every Forward received, in arrival order */
  size_t n_received;
  size_t n_ok; /* answered OK */
} mock_events_server_t;

/* Pick a socket path in a new temporary directory; nothing listens yet. */
void mock_events_server_init(mock_events_server_t *s, uv_loop_t *loop);
/* Start listening on the path (again). */
void mock_events_server_start(mock_events_server_t *s);
/* Stop listening and close every connection (the socket file is removed). */
void mock_events_server_stop(mock_events_server_t *s);
/* Stop, wait for the handles to close (runs the loop), free, remove the directory. */
void mock_events_server_fini(mock_events_server_t *s);

/* The envelope of the i-th Forward that was answered OK (in arrival order), or NULL. */
const Containerd__Services__Events__Ttrpc__V1__Envelope *
mock_events_server_ok_envelope(const mock_events_server_t *s, size_t i);

#endif
