// SPDX-License-Identifier: Apache-2.0
// The event publisher (io.containerd.event.v1 "publisher"): forwards events to containerd's
// Events service one at a time, in the order they were published.
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <uv.h>

#include <cshim/config.h>
#include <cshim/error.h>
#include <cshim/log.h>
#include <cshim/plugin.h>
#include <cshim/publisher.h>
#include <cshim/shutdown.h>
#include <cshim/ttrpc.h>
#include <cshim/ttrpc_client.h>
#include <cshim/util.h>

#include "containerd/services/events/ttrpc/v1/events.pb-c.h"
#include "google/protobuf/any.pb-c.h"
#include "google/protobuf/timestamp.pb-c.h"

#include "queue.h"

#define EVENTS_SERVICE "containerd.services.events.ttrpc.v1.Events"
#define EVENTS_FORWARD "Forward"
#define EVENTS_TYPE_PREFIX "containerd.events."
#define TASK_EXIT_NAME "containerd.events.TaskExit"

#define DEFAULT_QUEUE_SIZE 2048u
#define DEFAULT_MAX_RETRIES 5u
#define DEFAULT_RETRY_BASE_MS 1000u
#define DEFAULT_RETRY_MAX_MS 10000u
#define DEFAULT_TIMEOUT_MS 5000u

typedef struct publisher_s
{
  cshim_publisher_t base; /* must stay first: what io.containerd.event.v1 users call */
  uv_loop_t *loop;
  const cshim_logger_t *log;
  char *namespace_;
  char *address; /* NULL: nowhere to forward to */

  size_t queue_size;
  uint64_t max_retries;
  uint64_t retry_base_ms;
  uint64_t retry_max_ms;
  uint64_t timeout_ms;

  publisher_queue_t queue;
  cshim_ttrpc_client_t *client;      /* dialled lazily; NULL until needed or after a loss */
  bool client_proven;                /* a Forward succeeded on this connection */
  bool redialed;                     /* the head item already had its one immediate redial */
  bool in_flight;                    /* the head item is being forwarded */
  uv_timer_t retry_timer;            /* backoff before the next attempt; also defers "go on" */
  cshim_shutdown_done_t *flush_done; /* the shutdown callback waiting for an empty queue */
  bool closing;
  cshim_publisher_stats_t stats;
} publisher_t;

static const char *const publisher_requires[] = {CSHIM_TYPE_INTERNAL, NULL};
static const char *const publisher_config_keys[] = {"queue_size",  "retry_base", "retry_max",
                                                    "max_retries", "timeout",    NULL};

static void send_head(publisher_t *p);

static const char *
or_none(const char *s)
{
  return s && *s ? s : "<none>";
}

/* The event's container_id field, when it has one (every task event does). */
static const char *
event_container_id(const ProtobufCMessage *event)
{
  const ProtobufCFieldDescriptor *f =
      protobuf_c_message_descriptor_get_field_by_name(event->descriptor, "container_id");

  if (f == NULL || f->type != PROTOBUF_C_TYPE_STRING || f->label == PROTOBUF_C_LABEL_REPEATED)
    return NULL;
  return *(const char *const *)((const char *)event + f->offset);
}

/* The Any type_url containerd's typeurl gives an event: its full protobuf name, which for
   containerd's own events is "containerd.events.<Name>". */
static char *
event_type_url(const ProtobufCMessageDescriptor *desc)
{
  char *url;

  if (desc->package_name && desc->package_name[0])
    return cshim_xstrdup(desc->name);
  cshim_xasprintf(&url, EVENTS_TYPE_PREFIX "%s", desc->short_name);
  return url;
}

/* Pack ForwardRequest{Envelope{now, namespace, topic, Any(event)}}. */
static uint8_t *
pack_forward(publisher_t *p, const char *topic, const ProtobufCMessage *event, size_t *len)
{
  Containerd__Services__Events__Ttrpc__V1__ForwardRequest req =
      CONTAINERD__SERVICES__EVENTS__TTRPC__V1__FORWARD_REQUEST__INIT;
  Containerd__Services__Events__Ttrpc__V1__Envelope env =
      CONTAINERD__SERVICES__EVENTS__TTRPC__V1__ENVELOPE__INIT;
  Google__Protobuf__Timestamp ts = GOOGLE__PROTOBUF__TIMESTAMP__INIT;
  Google__Protobuf__Any any = GOOGLE__PROTOBUF__ANY__INIT;
  cshim_autofree char *type_url = event_type_url(event->descriptor);
  cshim_autofree uint8_t *value = NULL;
  struct timespec now;
  uint8_t *out;

  clock_gettime(CLOCK_REALTIME, &now);
  ts.seconds = now.tv_sec;
  ts.nanos = (int32_t)now.tv_nsec;

  any.value.len = protobuf_c_message_get_packed_size(event);
  value = cshim_xmalloc(any.value.len);
  protobuf_c_message_pack(event, value);
  any.value.data = value;
  any.type_url = type_url;

  env.timestamp = &ts;
  env.namespace_ = p->namespace_;
  env.topic = (char *)topic;
  env.event = &any;
  req.envelope = &env;

  *len = protobuf_c_message_get_packed_size(&req.base);
  out = cshim_xmalloc(*len);
  protobuf_c_message_pack(&req.base, out);
  return out;
}

static void
flush_check(publisher_t *p)
{
  cshim_shutdown_done_t *done;

  if (p->flush_done == NULL || p->queue.len > 0)
    return;
  done = cshim_steal_pointer(&p->flush_done);
  cshim_log_info(p->log, "event queue flushed");
  done->complete(done, NULL);
}

static void
kick(publisher_t *p)
{
  if (p->closing || p->in_flight || uv_is_active((uv_handle_t *)&p->retry_timer) ||
      p->queue.len == 0)
    return;
  send_head(p);
}

static void
retry_cb(uv_timer_t *t)
{
  kick(CSHIM_CONTAINER_OF(t, publisher_t, retry_timer));
}

/* Never sends from here: the next attempt always starts from the timer, so failures (even
   synchronous ones) cannot recurse through the queue. */
static void
schedule(publisher_t *p, uint64_t delay_ms)
{
  uv_timer_start(&p->retry_timer, retry_cb, delay_ms, 0);
}

static void
drop_client(publisher_t *p)
{
  cshim_ttrpc_client_t *c = cshim_steal_pointer(&p->client);

  p->client_proven = false;
  if (c)
    cshim_ttrpc_client_close(c, NULL, NULL);
}

/* The head item's attempt failed with err (taken). */
static void
attempt_failed(publisher_t *p, cshim_error_t *err)
{
  publisher_item_t *item = publisher_queue_peek(&p->queue);
  int code = cshim_error_grpc_code(*err);
  uint64_t delay;

  if (code == CSHIM_GRPC_UNAVAILABLE) {
    bool lost = p->client_proven;

    drop_client(p);
    /* A connection that used to work was lost (containerd restarted): redial at once, once. */
    if (lost && !p->redialed) {
      p->redialed = true;
      cshim_log_info(p->log, "connection to containerd lost (%s): redialing", (*err)->msg);
      cshim_error_release(err);
      schedule(p, 0);
      return;
    }
  }

  if (!item->is_exit && item->failures >= p->max_retries) {
    cshim_log_error(p->log,
                    "dropping event %s for container %s after %u failed attempts: forward: %s",
                    item->topic, or_none(item->container_id), item->failures + 1, (*err)->msg);
    cshim_error_release(err);
    publisher_item_free(publisher_queue_pop(&p->queue));
    p->stats.dropped++;
    p->redialed = false;
    flush_check(p);
    schedule(p, 0);
    return;
  }

  item->failures++;
  p->stats.retried++;
  delay = p->retry_base_ms * item->failures;
  if (delay > p->retry_max_ms || delay / item->failures != p->retry_base_ms)
    delay = p->retry_max_ms;
  cshim_log(p->log, item->is_exit ? CSHIM_LOG_ERROR : CSHIM_LOG_WARN,
            "forwarding %s for container %s failed (attempt %u), retrying in %llu ms: %s",
            item->topic, or_none(item->container_id), item->failures, (unsigned long long)delay,
            (*err)->msg);
  cshim_error_release(err);
  schedule(p, delay);
}

static void
forward_cb(void *data, ProtobufCMessage *response, cshim_error_t *err)
{
  publisher_t *p = data;
  publisher_item_t *item;

  p->in_flight = false;
  if (response)
    protobuf_c_message_free_unpacked(response, NULL);
  if (p->closing)
    return;
  if (*err) {
    attempt_failed(p, err);
    return;
  }

  item = publisher_queue_pop(&p->queue);
  cshim_log_debug(p->log, "forwarded %s for container %s", item->topic,
                  or_none(item->container_id));
  publisher_item_free(item);
  p->stats.published++;
  p->client_proven = true;
  p->redialed = false;
  flush_check(p);
  kick(p);
}

static void
send_head(publisher_t *p)
{
  publisher_item_t *item = publisher_queue_peek(&p->queue);
  cshim_ttrpc_client_opts_t opts = {.timeout_ms = p->timeout_ms};
  cshim_error_t err = NULL;
  int ret;

  if (p->client && cshim_ttrpc_client_is_broken(p->client))
    drop_client(p);
  if (p->client == NULL) {
    ret = cshim_ttrpc_client_new(p->loop, p->address, p->log, &p->client, &err);
    if (ret < 0) {
      cshim_error_wrap(&err, "dial containerd");
      attempt_failed(p, &err);
      return;
    }
    cshim_ttrpc_client_add_metadata(p->client, CSHIM_TTRPC_NAMESPACE_KEY, p->namespace_);
  }

  ret = cshim_ttrpc_client_call_raw(p->client, EVENTS_SERVICE, EVENTS_FORWARD, item->payload,
                                    item->payload_len, NULL, &opts, forward_cb, p, &err);
  if (ret < 0) {
    /* The call never started: treat it like a lost connection. */
    if (ret == -ENOTCONN)
      drop_client(p);
    attempt_failed(p, &err);
    return;
  }
  p->in_flight = true;
}

static int
publisher_publish(cshim_publisher_t *self, const char *topic, const ProtobufCMessage *event,
                  cshim_error_t *err)
{
  publisher_t *p = (publisher_t *)self;
  const char *cid;
  bool is_exit;
  publisher_item_t *item;
  uint8_t *payload;
  size_t len;

  if (topic == NULL || topic[0] != '/')
    return cshim_error_make(err, EINVAL, "publish: topic `%s` must start with /",
                            topic ? topic : "");
  if (event == NULL)
    return cshim_error_make(err, EINVAL, "publish %s: no event", topic);
  cid = event_container_id(event);
  if (p->closing)
    return cshim_error_make(err, ECANCELED, "publish %s for container %s: publisher closed", topic,
                            or_none(cid));
  /* Refused events are counted here and reported once, by the caller that gets the error. */
  if (p->address == NULL) {
    p->stats.dropped++;
    return cshim_error_make(err, ENOTCONN,
                            "publish %s for container %s: no containerd ttrpc address", topic,
                            or_none(cid));
  }

  is_exit = strcmp(event->descriptor->name, TASK_EXIT_NAME) == 0;
  if (publisher_queue_is_full(&p->queue)) {
    p->stats.queue_full++;
    /* A lost TaskExit leaves the pod Terminating forever; the queue grows for it instead. */
    if (!is_exit) {
      p->stats.dropped++;
      return cshim_error_make(err, ENOSPC,
                              "publish %s for container %s: event queue full (%zu events)", topic,
                              or_none(cid), p->queue.len);
    }
    cshim_log_error(p->log,
                    "event queue full (%zu events): queueing %s for container %s past the bound",
                    p->queue.len, topic, or_none(cid));
  }

  payload = pack_forward(p, topic, event, &len);
  item = publisher_item_new(topic, cid, is_exit, payload, len);
  publisher_queue_push(&p->queue, item, true);
  p->stats.accepted++;
  kick(p);
  return 0;
}

static void
publisher_get_stats(cshim_publisher_t *self, cshim_publisher_stats_t *out)
{
  publisher_t *p = (publisher_t *)self;
  cshim_publisher_stats_t full = p->stats;

  /* out is the caller's, maybe from an older SDK: fill only what it has room for. */
  full.struct_size = sizeof full;
  full.pending = p->queue.len;
  cshim_struct_size_copy_out(out, &full, sizeof full);
}

static void
flush_cb(void *data, cshim_shutdown_done_t *done)
{
  publisher_t *p = data;

  p->flush_done = done;
  if (p->queue.len > 0)
    cshim_log_info(p->log, "shutdown: flushing %zu queued event(s)", p->queue.len);
  flush_check(p);
}

static void
retry_timer_close_cb(uv_handle_t *h)
{
  publisher_t *p = h->data;

  publisher_queue_clear(&p->queue);
  free(p->namespace_);
  free(p->address);
  free(p);
}

static void
publisher_close(void *instance)
{
  publisher_t *p = instance;
  size_t unsent = p->queue.len;

  p->closing = true;
  uv_timer_stop(&p->retry_timer);
  drop_client(p);
  for (publisher_item_t *it = publisher_queue_peek(&p->queue); it;
       it = publisher_queue_next(&p->queue, it))
    if (it->is_exit)
      cshim_log_error(p->log, "publisher closed: %s for container %s was never delivered",
                      it->topic, or_none(it->container_id));
  if (unsent > 0) {
    p->stats.dropped += unsent;
    cshim_log_error(p->log, "publisher closed with %zu event(s) undelivered", unsent);
  }
  if (p->flush_done) {
    cshim_shutdown_done_t *done = cshim_steal_pointer(&p->flush_done);
    cshim_error_t err = NULL;

    cshim_error_make(&err, ECANCELED, "publisher closed with %zu event(s) undelivered", unsent);
    done->complete(done, &err);
    cshim_error_release(&err);
  }
  uv_close((uv_handle_t *)&p->retry_timer, retry_timer_close_cb);
}

static int
read_config(publisher_t *p, const cshim_init_ctx_t *ctx, cshim_error_t *err)
{
  const cshim_config_node_t *cfg = ctx->config;
  uint64_t queue_size = DEFAULT_QUEUE_SIZE;
  int ret;

  ret = cshim_config_check_keys(cfg, publisher_config_keys, ctx->uri, err);
  if (ret == 0)
    ret = cshim_config_get_uint(cfg, "queue_size", &queue_size, err);
  if (ret == 0)
    ret = cshim_config_get_uint(cfg, "max_retries", &p->max_retries, err);
  if (ret == 0)
    ret = cshim_config_get_duration_ms(cfg, "retry_base", &p->retry_base_ms, err);
  if (ret == 0)
    ret = cshim_config_get_duration_ms(cfg, "retry_max", &p->retry_max_ms, err);
  if (ret == 0)
    ret = cshim_config_get_duration_ms(cfg, "timeout", &p->timeout_ms, err);
  if (ret < 0)
    return ret;
  if (queue_size == 0 || queue_size > (1u << 20))
    return cshim_error_make(err, EINVAL, "%s: `queue_size` must be between 1 and %u", ctx->uri,
                            1u << 20);
  if (p->retry_base_ms == 0 || p->timeout_ms == 0)
    return cshim_error_make(err, EINVAL, "%s: `retry_base` and `timeout` must be more than 0",
                            ctx->uri);
  if (p->retry_max_ms < p->retry_base_ms)
    return cshim_error_make(err, EINVAL, "%s: `retry_max` must not be less than `retry_base`",
                            ctx->uri);
  p->queue_size = (size_t)queue_size;
  return 0;
}

static int
publisher_init(const cshim_init_ctx_t *ctx, void **instance, cshim_error_t *err)
{
  const char *ns = cshim_init_ctx_property(ctx, CSHIM_PROP_NAMESPACE);
  const char *address = cshim_init_ctx_property(ctx, CSHIM_PROP_TTRPC_ADDRESS);
  void *shutdown_instance = NULL;
  cshim_shutdown_t *shutdown = NULL;
  cshim_error_t lookup_err = NULL;
  publisher_t *p;
  int ret;

  if (ns == NULL || ns[0] == '\0')
    return cshim_error_make(err, EINVAL, "%s: no namespace (property `%s`)", ctx->uri,
                            CSHIM_PROP_NAMESPACE);

  p = cshim_xmalloc0(sizeof *p);
  p->max_retries = DEFAULT_MAX_RETRIES;
  p->retry_base_ms = DEFAULT_RETRY_BASE_MS;
  p->retry_max_ms = DEFAULT_RETRY_MAX_MS;
  p->timeout_ms = DEFAULT_TIMEOUT_MS;
  ret = read_config(p, ctx, err);
  if (ret < 0) {
    free(p);
    return ret;
  }

  p->base.struct_size = sizeof p->base;
  p->base.publish = publisher_publish;
  p->base.get_stats = publisher_get_stats;
  p->loop = ctx->loop;
  p->log = ctx->log;
  p->namespace_ = cshim_xstrdup(ns);
  if (address && address[0])
    p->address = cshim_xstrdup(address);
  else
    cshim_log_warn(ctx->log, "no containerd ttrpc address (property `%s`): events are dropped",
                   CSHIM_PROP_TTRPC_ADDRESS);
  publisher_queue_init(&p->queue, p->queue_size);
  uv_timer_init(ctx->loop, &p->retry_timer);
  p->retry_timer.data = p;

  ret = cshim_init_ctx_get_by_id(ctx, CSHIM_TYPE_INTERNAL, "shutdown", &shutdown_instance,
                                 &lookup_err);
  if (ret == 0)
    ret = cshim_shutdown_from_instance(shutdown_instance, &shutdown, &lookup_err);
  if (ret == 0)
    ret = shutdown->register_callback(shutdown, flush_cb, p, &lookup_err);
  if (ret < 0) {
    cshim_log_warn(ctx->log, "events will not be flushed at shutdown: %s",
                   lookup_err ? lookup_err->msg : "no shutdown service");
    cshim_error_release(&lookup_err);
  }

  *instance = p;
  return 0;
}

/* ---- live upgrade (docs/live-upgrade.md): the queue of events not yet forwarded ---- */

enum
{
  UP_ITEM = 1, /* list, in queue order */
  UP_STATS = 2,
  ITEM_TOPIC = 1,
  ITEM_CONTAINER = 2,
  ITEM_EXIT = 3,
  ITEM_PAYLOAD = 4,
  ITEM_FAILURES = 5,
  STATS_ACCEPTED = 1,
  STATS_PUBLISHED = 2,
  STATS_RETRIED = 3,
  STATS_DROPPED = 4,
  STATS_QUEUE_FULL = 5,
};

static const char *
publisher_upgrade_busy(void *instance)
{
  publisher_t *p = instance;

  if (p->closing || p->flush_done)
    return "flushing events for shutdown";
  if (p->in_flight)
    return "an event is being forwarded";
  return NULL;
}

static int
publisher_upgrade_save(void *instance, cshim_state_writer_t *w, cshim_error_t *err)
{
  publisher_t *p = instance;
  (void)err;

  for (publisher_item_t *it = publisher_queue_peek(&p->queue); it;
       it = publisher_queue_next(&p->queue, it)) {
    cshim_state_begin(w, UP_ITEM);
    cshim_state_put_str(w, ITEM_TOPIC, it->topic);
    cshim_state_put_str(w, ITEM_CONTAINER, it->container_id);
    cshim_state_put_bool(w, ITEM_EXIT, it->is_exit);
    cshim_state_put_bytes(w, ITEM_PAYLOAD, it->payload, it->payload_len);
    cshim_state_put_u32(w, ITEM_FAILURES, it->failures);
    cshim_state_end(w);
  }
  cshim_state_begin(w, UP_STATS);
  cshim_state_put_u64(w, STATS_ACCEPTED, p->stats.accepted);
  cshim_state_put_u64(w, STATS_PUBLISHED, p->stats.published);
  cshim_state_put_u64(w, STATS_RETRIED, p->stats.retried);
  cshim_state_put_u64(w, STATS_DROPPED, p->stats.dropped);
  cshim_state_put_u64(w, STATS_QUEUE_FULL, p->stats.queue_full);
  cshim_state_end(w);
  return 0;
}

static int
restore_item(publisher_t *p, const cshim_state_item_t *list, cshim_error_t *err)
{
  cshim_state_reader_t r;
  cshim_state_item_t it;
  cshim_autofree char *topic = NULL, *container = NULL;
  cshim_autofree uint8_t *payload = NULL;
  size_t len = 0;
  bool is_exit = false;
  uint32_t failures = 0;
  publisher_item_t *item;
  int ret = cshim_state_item_list(list, &r, err);

  while (ret >= 0 && (ret = cshim_state_next(&r, &it, err)) > 0) {
    if (it.tag == ITEM_TOPIC && topic == NULL)
      ret = cshim_state_item_str(&it, &topic, err);
    else if (it.tag == ITEM_CONTAINER && container == NULL)
      ret = cshim_state_item_str(&it, &container, err);
    else if (it.tag == ITEM_EXIT)
      ret = cshim_state_item_bool(&it, &is_exit, err);
    else if (it.tag == ITEM_FAILURES)
      ret = cshim_state_item_u32(&it, &failures, err);
    else if (it.tag == ITEM_PAYLOAD && payload == NULL) {
      payload = cshim_xmemdup(it.value, it.len ? it.len : 1);
      len = it.len;
    }
  }
  if (ret < 0)
    return ret;
  if (topic == NULL || payload == NULL)
    return cshim_error_make(err, EBADMSG, "state: queued event without topic or payload");
  item = publisher_item_new(topic, container, is_exit, cshim_steal_pointer(&payload), len);
  item->failures = failures;
  /* The old image held them within its bound; keep every one. */
  publisher_queue_push(&p->queue, item, true);
  return 0;
}

static int
publisher_upgrade_restore(void *instance, const cshim_state_reader_t *state, cshim_error_t *err)
{
  publisher_t *p = instance;
  cshim_state_reader_t r;
  cshim_state_item_t it;
  int ret;

  if (state == NULL)
    return 0;
  r = *state;
  while ((ret = cshim_state_next(&r, &it, err)) > 0) {
    if (it.tag == UP_ITEM)
      ret = restore_item(p, &it, err);
    else if (it.tag == UP_STATS) {
      cshim_state_reader_t sr;
      cshim_state_item_t si;
      ret = cshim_state_item_list(&it, &sr, err);
      while (ret >= 0 && (ret = cshim_state_next(&sr, &si, err)) > 0) {
        uint64_t *field = si.tag == STATS_ACCEPTED     ? &p->stats.accepted
                          : si.tag == STATS_PUBLISHED  ? &p->stats.published
                          : si.tag == STATS_RETRIED    ? &p->stats.retried
                          : si.tag == STATS_DROPPED    ? &p->stats.dropped
                          : si.tag == STATS_QUEUE_FULL ? &p->stats.queue_full
                                                       : NULL;
        if (field)
          ret = cshim_state_item_u64(&si, field, err);
      }
    }
    if (ret < 0)
      return ret;
  }
  if (ret < 0)
    return ret;
  /* Sent from the loop, once the whole shim is back. */
  if (p->queue.len > 0)
    schedule(p, 0);
  return 0;
}

CSHIM_PLUGIN_DEFINE(.type = CSHIM_TYPE_EVENT, .id = "publisher", .requires = publisher_requires,
                    .init = publisher_init, .close = publisher_close,
                    .upgrade_busy = publisher_upgrade_busy, .upgrade_save = publisher_upgrade_save,
                    .upgrade_restore = publisher_upgrade_restore)
