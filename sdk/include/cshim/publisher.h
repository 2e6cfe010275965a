// SPDX-License-Identifier: Apache-2.0
// The event publisher interface (io.containerd.event.v1 instances start with this struct).
#ifndef CSHIM_PUBLISHER_H
#define CSHIM_PUBLISHER_H

#include <stdint.h>
#include <protobuf-c/protobuf-c.h>

#include <cshim/error.h>
#include <cshim/struct_size.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct cshim_publisher_s cshim_publisher_t;

/* Counters a publisher keeps (for debug and metrics). */
typedef struct cshim_publisher_stats_s
{
  uint32_t struct_size; /* set by the caller; get_stats fills only what fits */
  uint64_t accepted;    /* events publish() queued */
  uint64_t published;   /* events containerd acknowledged */
  uint64_t retried;     /* failed Forward attempts that were retried */
  uint64_t dropped;     /* events given up after their retries, refused by a full queue, or
                           still queued when the publisher closed */
  uint64_t queue_full;  /* publish() calls that found the queue at its bound */
  uint64_t pending;     /* events queued now (including the one in flight) */
} cshim_publisher_stats_t;

/* An io.containerd.event.v1 instance begins with this struct (embedded first), so a plugin that
   required the type takes the looked-up instance with cshim_publisher_from_instance. */
struct cshim_publisher_s
{
  uint32_t struct_size; /* sizeof (cshim_publisher_t) in the implementing plugin */
  /* Queue an event for containerd. The event is packed at once (borrowed for the call) into an
     Envelope {now, namespace, topic, Any{type_url = "containerd.events.<Name>"}}. Events leave
     in the order published. Returns 0 once queued; a refused event (full queue, no containerd
     address) is counted as dropped and returned as an error, which the caller reports (the
     publisher does not log it too). */
  int (*publish)(cshim_publisher_t *self, const char *topic, const ProtobufCMessage *event,
                 cshim_error_t *err);
  /* Optional (may be NULL): fill *out with the publisher's counters. Loop thread only. */
  void (*get_stats)(cshim_publisher_t *self, cshim_publisher_stats_t *out);
};

/* Sizes in SDK 1.0: smaller struct_size values are refused. */
#define CSHIM_PUBLISHER_SIZE_1_0 CSHIM_SIZE_THROUGH(cshim_publisher_t, get_stats)
#define CSHIM_PUBLISHER_STATS_SIZE_1_0 CSHIM_SIZE_THROUGH(cshim_publisher_stats_t, pending)

/* The publisher at the start of an io.containerd.event.v1 instance (from get_by_id or
   get_by_type), after checking its struct_size: 0 and *out set, or -EINVAL naming the reason. */
static inline int
cshim_publisher_from_instance(void *instance, cshim_publisher_t **out, cshim_error_t *err)
{
  cshim_publisher_t *p = (cshim_publisher_t *)instance;
  int ret =
      cshim_struct_size_check("event publisher", p->struct_size, CSHIM_PUBLISHER_SIZE_1_0, err);

  if (ret < 0)
    return ret;
  *out = p;
  return 0;
}

static inline int
cshim_publish(cshim_publisher_t *p, const char *topic, const ProtobufCMessage *event,
              cshim_error_t *err)
{
  return p->publish(p, topic, event, err);
}

/* Topics of the task events, as containerd names them. */
#define CSHIM_TOPIC_TASK_CREATE "/tasks/create"
#define CSHIM_TOPIC_TASK_START "/tasks/start"
#define CSHIM_TOPIC_TASK_DELETE "/tasks/delete"
#define CSHIM_TOPIC_TASK_EXIT "/tasks/exit"
#define CSHIM_TOPIC_TASK_OOM "/tasks/oom"
#define CSHIM_TOPIC_TASK_EXEC_ADDED "/tasks/exec-added"
#define CSHIM_TOPIC_TASK_EXEC_STARTED "/tasks/exec-started"
#define CSHIM_TOPIC_TASK_PAUSED "/tasks/paused"
#define CSHIM_TOPIC_TASK_RESUMED "/tasks/resumed"
#define CSHIM_TOPIC_TASK_CHECKPOINTED "/tasks/checkpointed"

#ifdef __cplusplus
}
#endif
#endif
