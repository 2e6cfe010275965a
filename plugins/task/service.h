// SPDX-License-Identifier: Apache-2.0
// The task plugin's instance: its container table, the events it implements, setup and teardown.
#ifndef TASK_SERVICE_H
#define TASK_SERVICE_H

#include <stdbool.h>
#include <sys/types.h>
#include <uv.h>

#include <cshim/config.h>
#include <cshim/error.h>
#include <cshim/list.h>
#include <cshim/log.h>
#include <cshim/publisher.h>
#include <cshim/reaper.h>
#include <cshim/runtime.h>
#include <cshim/shutdown.h>
#include <cshim/ttrpc.h>

#include "events.h"
#include "options.h"
#include "types.h"

struct task_service_s
{
  uv_loop_t *loop;
  const cshim_logger_t *log;
  cshim_reaper_t *reaper;
  cshim_publisher_t *publisher;
  cshim_shutdown_t *shutdown;
  char *namespace_;
  pid_t shim_pid; /* getpid() once: Connect answers it on every call */
  bool debug;
  task_config_t cfg;
  cshim_runtime_limit_t *runtime_limit; /* shared by every container's runtime */
  cshim_list_t containers;              /* the table (task_container_t.link), newest first */
  cshim_list_t removed;       /* out of the table, waiting for their last op; newest first */
  cshim_list_t runtime_paths; /* task_runtime_path's cache */
  bool closing;
  bool shutdown_requested;
  /* A Delete came through containerd.task.v3.Task: containerd 2.x announced v3 and sends no
     Shutdown for the containers of a sandbox, so the shim exits when the last one is deleted
     (as with a Shutdown that finds no container). */
  bool api_v3;
  /* task_upgrade_restore of a crash snapshot: a process whose stdio cannot be restored is kept
     without it (the shim cannot hand back to anything better) */
  bool restoring_crash;
  uv_timer_t gc_timer; /* frees removed containers on a later loop turn */
  /* The clock a container's freezer reading is kept by (ms): the loop's (uv_now, which the loop
     sets after each poll), a unit test's own. State calls in the same millisecond share one
     reading. */
  uint64_t (*now_ms)(const task_service_t *svc);
  uv_timer_t shutdown_timer; /* asks for shutdown after the Shutdown reply has gone */
  int pending_closes;
  cshim_ttrpc_service_t service_v2;
  cshim_ttrpc_service_t service_v3;
  void (*free_cb)(task_service_t *svc);
  task_events_t events; /* what its containers report through */
  task_env_t env;       /* what a new container runs with */
  /* Tracing (trace.c): the tracer, NULL when tracing is off; the method tables that name the
     container of each call on its span before calling the plain ones; the call whose handler is
     running (synchronously). */
  cshim_tracer_t *tracer;
  cshim_ttrpc_method_t *traced_v2, *traced_v3;
  const cshim_ttrpc_method_t *plain_v2, *plain_v3;
  cshim_ttrpc_call_t *current_call;
};

task_container_t *task_service_find(task_service_t *svc, const char *id);
/* The container id and its process exec_id (NULL/"" = init); NotFound worded as the runc shim
   words it. */
int task_service_lookup(task_service_t *svc, const char *id, const char *exec_id,
                        task_container_t **c, task_process_t **p, cshim_error_t *err);
/* Take c out of the table; its memory goes once no op refers to it (on a later loop turn). */
void task_service_remove(task_container_t *c);
/* Ask the host to shut the shim down once the replies queued now have left. */
void task_service_request_shutdown(task_service_t *svc);
/* Publish an event; failures are logged. */
void task_service_publish(task_service_t *svc, const char *topic, const ProtobufCMessage *event);

/* Set up and tear down the instance (task.c delegates here and fills service_v2/v3). */
int task_service_init(task_service_t *svc, uv_loop_t *loop, const cshim_logger_t *log,
                      cshim_reaper_t *reaper, cshim_publisher_t *publisher,
                      cshim_shutdown_t *shutdown, const char *namespace_,
                      const cshim_config_node_t *config, cshim_error_t *err);
/* Fail pending calls, free containers, close handles; svc is freed by free_cb once they are
   closed (free_cb may be NULL when svc is not heap memory the caller wants freed). */
void task_service_close(task_service_t *svc, void (*free_cb)(task_service_t *svc));

#endif
