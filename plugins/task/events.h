// SPDX-License-Identifier: Apache-2.0
// How containers, processes and their OOM watch report to the service that owns them.
#ifndef TASK_EVENTS_H
#define TASK_EVENTS_H

#include <stdint.h>

#include <protobuf-c/protobuf-c.h>
#include <uv.h>

#include <cshim/log.h>
#include <cshim/publisher.h>
#include <cshim/reaper.h>

#include "types.h"

/* Implemented by the service (service.c) and handed to every container it makes; the data model
   calls these instead of the service. All run on the loop, never re-entered. */
struct task_events_s
{
  void *data; /* the service */
  /* Publish an event (borrowed for the call); failures are logged by the service. */
  void (*publish)(void *data, const char *topic, const ProtobufCMessage *event);
  /* A removed container has no more operations: free it on a later loop turn. */
  void (*gc_needed)(void *data);
  /* p's exit is final and its waiters answered: the service decides what follows (for the init
     of a container without its own pid namespace, kill what is left). */
  void (*process_stopped)(void *data, task_process_t *p);
};

static inline void
task_events_publish(const task_events_t *ev, const char *topic, const ProtobufCMessage *event)
{
  ev->publish(ev->data, topic, event);
}

static inline void
task_events_gc_needed(const task_events_t *ev)
{
  ev->gc_needed(ev->data);
}

/* What the data model runs with, lent by the service for its whole life. */
typedef struct task_env_s
{
  uv_loop_t *loop;
  const cshim_logger_t *log;
  cshim_reaper_t *reaper;
  const task_events_t *events;
  const char *namespace_;      /* containerd's namespace (a logging binary's CONTAINER_NAMESPACE) */
  uint64_t command_timeout_ms; /* bound of one runtime command, and of a logging binary's start */
} task_env_t;

#endif
