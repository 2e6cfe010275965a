// SPDX-License-Identifier: Apache-2.0
// A small mock of the host for the task plugin's unit tests: loop, real reaper, recording
// publisher, fake shutdown service, fake ttrpc calls and a config map.
#ifndef TASK_MOCK_CTX_H
#define TASK_MOCK_CTX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include <cshim/config.h>
#include <cshim/log.h>
#include <cshim/publisher.h>
#include <cshim/reaper.h>
#include <cshim/shutdown.h>
#include <cshim/ttrpc.h>

#define MOCK_CTX_MAX 64

typedef struct mock_event_s
{
  char *topic;
  const ProtobufCMessageDescriptor *desc;
  uint8_t *data; /* packed event */
  size_t len;
} mock_event_t;

typedef struct mock_call_s
{
  cshim_ttrpc_call_t base; /* first */
  int answered;            /* times answered (must end as 1) */
  int code;                /* 0 on reply */
  char *message;
  uint8_t *payload; /* packed reply */
  size_t len;
  int parked; /* times the handler parked it (cshim_ttrpc_call_park) */
  uint64_t connection; /* what cshim_ttrpc_call_connection answers (0 by default) */
  /* cshim_ttrpc_call_on_cancel: a test runs it to play a closed connection */
  void (*cancel_cb)(cshim_ttrpc_call_t *call, void *data);
  void *cancel_data;
} mock_call_t;

typedef struct mock_ctx_s
{
  uv_loop_t loop;
  cshim_logger_t logger;
  void *reaper_host; /* host_reaper_t */
  cshim_reaper_t *reaper;
  cshim_publisher_t publisher;
  mock_event_t events[MOCK_CTX_MAX];
  size_t n_events;
  cshim_shutdown_t shutdown;
  int shutdown_calls;
  cshim_config_node_t config;
  const char *config_keys[MOCK_CTX_MAX];
  cshim_config_node_t config_items[MOCK_CTX_MAX];
  char *config_values[MOCK_CTX_MAX];
  bool verbose;
} mock_ctx_t;

void mock_ctx_init(mock_ctx_t *m);
/* Close the reaper, run the loop dry, close the loop; fails the test when handles remain. */
void mock_ctx_fini(mock_ctx_t *m);
/* Add key: value (plain scalar; the value is copied). */
void mock_ctx_set_config(mock_ctx_t *m, const char *key, const char *value);

mock_call_t *mock_call_new(const char *method);
void mock_call_free(mock_call_t *c);
/* Decode the reply with desc; caller frees with protobuf_c_message_free_unpacked. */
ProtobufCMessage *mock_call_unpack(const mock_call_t *c, const ProtobufCMessageDescriptor *desc);

/* Run the loop until pred(data) or timeout. */
bool mock_ctx_run_until(mock_ctx_t *m, bool (*pred)(void *data), void *data, uint64_t timeout_ms);
/* Run until the call is answered (or timeout); returns whether it was. */
bool mock_ctx_run_call(mock_ctx_t *m, mock_call_t *c, uint64_t timeout_ms);
void mock_ctx_run_for(mock_ctx_t *m, uint64_t ms);

/* Index of the first event on topic at or after from, or -1. */
int mock_ctx_find_event(const mock_ctx_t *m, const char *topic, size_t from);
ProtobufCMessage *mock_ctx_unpack_event(const mock_ctx_t *m, size_t i);

#endif
