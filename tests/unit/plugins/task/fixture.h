// SPDX-License-Identifier: Apache-2.0
// The task plugin's test fixture: the host mock (../mock_host.h) with the host's real reaper and
// a publisher that records, and the task service made through the plugin's descriptor.
#ifndef TASK_TEST_FIXTURE_H
#define TASK_TEST_FIXTURE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cshim/ttrpc.h>

#include <cshim/publisher.h>
#include <cshim/reaper.h>

#include "mock_host.h"
#include "service.h"

#define TASK_MOCK_MAX_EVENTS 64
#define TASK_FIXTURE_TIMEOUT_MS 10000

typedef struct task_mock_event_s
{
  char *topic;
  const ProtobufCMessageDescriptor *desc;
  uint8_t *data; /* packed event */
  size_t len;
} task_mock_event_t;

/* What the host gives the task plugin. */
typedef struct task_mock_s
{
  mock_host_t host;  /* loop, logger, config, init context, fake shutdown service */
  void *reaper_host; /* host_reaper_t */
  cshim_reaper_t *reaper;
  cshim_publisher_t publisher; /* records what is published */
  task_mock_event_t events[TASK_MOCK_MAX_EVENTS];
  size_t n_events;
} task_mock_t;

/* The host mock for io.containerd.ttrpc.v1.task, with a real reaper and the recording publisher
   registered as io.containerd.event.v1 "publisher". */
void task_mock_init(task_mock_t *m);
/* Close the reaper, run the loop dry, close the loop; fails the test when handles remain. */
void task_mock_fini(task_mock_t *m);
/* Index of the first event on topic at or after from, or -1. */
int task_mock_find_event(const task_mock_t *m, const char *topic, size_t from);
/* Decode event i; caller frees with protobuf_c_message_free_unpacked. */
ProtobufCMessage *task_mock_unpack_event(const task_mock_t *m, size_t i);
/* A call of containerd.task.v2.Task `method` (borrowed). */
mock_call_t *task_call_new(const char *method);

/* A task service test: the host mock, the service made through the descriptor with a fake runc,
   a bundle in a temporary directory, and our ends of the process's stdio. */
typedef struct task_fixture_s
{
  task_mock_t m;
  task_service_t *svc;
  char base[64];    /* the temporary directory */
  char bundle[128]; /* <base>/bundle, with rootfs/ and config.json */
  char root[128];   /* the runtime's root */
  char argv_log[128];
  char in_path[128];
  char out_path[128];
  char err_path[128];
  int out_fd, err_fd; /* our readers of the FIFOs; -1 = none */
  char *out;          /* what arrived on stdout */
  size_t out_len;
  size_t err_len;
} task_fixture_t;

/* A new fixture in /tmp/cshim-<name>-XXXXXX whose bundle runs args_json (a JSON array) in its
   own pid namespace; config: runtime = fake_runc, its root under the directory, a 20 s command
   timeout. */
task_fixture_t *task_fixture_new(const char *name, const char *fake_runc, const char *args_json);
/* Kill what the test left, close the service, remove the directory, free f. */
void task_fixture_free(task_fixture_t *f);
/* Write the bundle's config.json: args_json as the process args, with or without a pid
   namespace of its own. */
void task_fixture_write_spec(task_fixture_t *f, const char *args_json, bool pid_ns);
/* Close the service and make it again from the current config. */
void task_fixture_reopen_service(task_fixture_t *f);

/* The handler of method in the containerd.task.v2.Task table. */
const cshim_ttrpc_method_t *task_fixture_method(const char *name);
/* Invoke the handler and return the call (answered or not). */
mock_call_t *task_fixture_invoke(task_fixture_t *f, const char *name, const ProtobufCMessage *req);
/* Invoke and run the loop until answered (fails the test otherwise); returns the call. */
mock_call_t *task_fixture_call(task_fixture_t *f, const char *name, const ProtobufCMessage *req);
/* The same, reading our FIFO ends while waiting (a client that keeps reading). */
mock_call_t *task_fixture_call_draining(task_fixture_t *f, const char *name,
                                        const ProtobufCMessage *req);
/* Run the loop, reading our FIFO ends, until c is answered or timeout_ms passes; whether it was. */
bool task_fixture_run_draining(task_fixture_t *f, mock_call_t *c, uint64_t timeout_ms);
/* Read what is there on our FIFO ends (stdout into f->out). */
void task_fixture_drain(task_fixture_t *f);
/* Fail unless c ended with code (0 = OK); frees c. */
void task_fixture_expect_code(mock_call_t *c, int code);

/* The service as the host makes it: the plugin's descriptor, init with m's context (config
   included), register_ttrpc skipped. The instance goes with task_fixture_close_service. */
task_service_t *task_fixture_open_service(task_mock_t *m);
/* The plugin's close; the memory goes once its handles have closed (run the loop). */
void task_fixture_close_service(task_service_t *svc);

#endif
