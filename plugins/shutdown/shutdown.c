// SPDX-License-Identifier: Apache-2.0
// The shutdown service (io.containerd.internal.v1 "shutdown"): callbacks run once, together,
// under a shared timeout, then whoever waits on it is told.
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <uv.h>

#include <cshim/config.h>
#include <cshim/error.h>
#include <cshim/list.h>
#include <cshim/log.h>
#include <cshim/plugin.h>
#include <cshim/shutdown.h>
#include <cshim/util.h>

#define DEFAULT_TIMEOUT_MS 30000u

enum phase
{
  PHASE_IDLE,
  PHASE_RUNNING,
  PHASE_DONE,
};

typedef struct shutdown_s shutdown_t;

/* A registered callback. While it runs, `done` is what it completes. */
typedef struct callback_s
{
  cshim_shutdown_done_t done; /* must stay first: handed to the callback */
  cshim_list_t link;          /* in the owner's callbacks */
  shutdown_t *owner;
  cshim_shutdown_cb cb;
  void *data;
  bool running;
} callback_t;

typedef struct waiter_s
{
  cshim_list_t link; /* in the owner's waiters */
  cshim_shutdown_done_cb cb;
  void *data;
} waiter_t;

struct shutdown_s
{
  cshim_shutdown_t base; /* must stay first: what io.containerd.internal.v1 users call */
  uv_loop_t *loop;
  const cshim_logger_t *log;
  uint64_t timeout_ms;
  enum phase phase;
  cshim_list_t callbacks; /* callback_t.link, in registration order */
  size_t n_running;
  cshim_list_t waiters; /* waiter_t.link, in registration order */
  cshim_error_t result; /* first error, once done */
  uv_timer_t timeout;   /* the shared timeout */
  uv_timer_t notify;    /* tells waiters from the loop, never from inside a caller */
  unsigned open_handles;
};

static const char *const shutdown_config_keys[] = {"timeout", NULL};

static void
start_timer(uv_timer_t *t, uv_timer_cb cb, uint64_t ms)
{
  /* Count from now, not from the start of this loop iteration. */
  uv_update_time(t->loop);
  uv_timer_start(t, cb, ms, 0);
  uv_ref((uv_handle_t *)t);
}

static void
stop_timer(uv_timer_t *t)
{
  uv_timer_stop(t);
  uv_unref((uv_handle_t *)t);
}

static void
notify_cb(uv_timer_t *t)
{
  shutdown_t *s = CSHIM_CONTAINER_OF(t, shutdown_t, notify);

  cshim_list_t list, *l;

  stop_timer(t);
  /* Detached first: a waiter that adds another one gets it told on the next round. */
  cshim_list_move(&list, &s->waiters);
  while ((l = cshim_list_first(&list)) != NULL) {
    waiter_t *w = cshim_list_entry(l, waiter_t, link);

    cshim_list_remove(l);
    w->cb(w->data);
    free(w);
  }
}

static void
finish(shutdown_t *s)
{
  if (s->phase != PHASE_RUNNING)
    return;
  s->phase = PHASE_DONE;
  stop_timer(&s->timeout);
  if (s->result)
    cshim_log_error(s->log, "shutdown: %s", s->result->msg);
  else
    cshim_log_info(s->log, "shutdown complete");
  start_timer(&s->notify, notify_cb, 0);
}

static void
complete_cb(cshim_shutdown_done_t *self, cshim_error_t *err)
{
  callback_t *c = (callback_t *)self;
  shutdown_t *s = c->owner;

  if (!c->running) {
    cshim_log_warn(s->log, "shutdown: a callback completed twice");
    cshim_error_release(err);
    return;
  }
  c->running = false;
  s->n_running--;
  if (err && *err) {
    if (s->phase == PHASE_RUNNING && s->result == NULL)
      s->result = cshim_steal_pointer(err);
    else
      cshim_log_warn(s->log, "shutdown: callback failed: %s", (*err)->msg);
    cshim_error_release(err);
  }
  if (s->n_running == 0)
    finish(s);
}

static void
timeout_cb(uv_timer_t *t)
{
  shutdown_t *s = CSHIM_CONTAINER_OF(t, shutdown_t, timeout);

  if (s->result == NULL)
    cshim_error_make(&s->result, ETIMEDOUT,
                     "%zu callback(s) did not finish within the shutdown timeout of %llu ms",
                     s->n_running, (unsigned long long)s->timeout_ms);
  finish(s);
}

static int
shutdown_register_callback(cshim_shutdown_t *self, cshim_shutdown_cb cb, void *data,
                           cshim_error_t *err)
{
  shutdown_t *s = (shutdown_t *)self;
  callback_t *c;

  if (s->phase != PHASE_IDLE)
    return cshim_error_make(err, EALREADY, "shutdown already started");
  if (cb == NULL)
    return cshim_error_make(err, EINVAL, "shutdown callback is NULL");
  c = cshim_xmalloc0(sizeof *c);
  c->done.struct_size = sizeof c->done;
  c->done.complete = complete_cb;
  c->owner = s;
  c->cb = cb;
  c->data = data;
  cshim_list_push_back(&s->callbacks, &c->link);
  return 0;
}

static void
shutdown_shutdown(cshim_shutdown_t *self)
{
  shutdown_t *s = (shutdown_t *)self;
  size_t n = cshim_list_length(&s->callbacks);
  cshim_list_t *l;

  if (s->phase != PHASE_IDLE)
    return;
  s->phase = PHASE_RUNNING;
  cshim_log_info(s->log, "shutdown started: %zu callback(s), timeout %llu ms", n,
                 (unsigned long long)s->timeout_ms);
  start_timer(&s->timeout, timeout_cb, s->timeout_ms);

  /* One extra count held while starting them, so a callback that completes at once cannot
     finish the shutdown before the others have started. */
  s->n_running = n + 1;
  CSHIM_LIST_FOREACH (l, &s->callbacks) {
    callback_t *c = cshim_list_entry(l, callback_t, link);
    c->running = true;
    c->cb(c->data, &c->done);
  }
  s->n_running--;
  if (s->n_running == 0)
    finish(s);
}

static int
shutdown_on_done(cshim_shutdown_t *self, cshim_shutdown_done_cb cb, void *data, cshim_error_t *err)
{
  shutdown_t *s = (shutdown_t *)self;
  waiter_t *w;

  if (cb == NULL)
    return cshim_error_make(err, EINVAL, "shutdown done callback is NULL");
  w = cshim_xmalloc0(sizeof *w);
  w->cb = cb;
  w->data = data;
  cshim_list_push_back(&s->waiters, &w->link);
  if (s->phase == PHASE_DONE)
    start_timer(&s->notify, notify_cb, 0);
  return 0;
}

static bool
shutdown_is_shutting_down(cshim_shutdown_t *self)
{
  shutdown_t *s = (shutdown_t *)self;

  return s->phase != PHASE_IDLE;
}

static void
handle_close_cb(uv_handle_t *h)
{
  shutdown_t *s = h->data;
  cshim_list_t *l;

  if (--s->open_handles > 0)
    return;
  while ((l = cshim_list_first(&s->callbacks)) != NULL) {
    cshim_list_remove(l);
    free(cshim_list_entry(l, callback_t, link));
  }
  while ((l = cshim_list_first(&s->waiters)) != NULL) {
    cshim_list_remove(l);
    free(cshim_list_entry(l, waiter_t, link));
  }
  cshim_error_release(&s->result);
  free(s);
}

static void
shutdown_close(void *instance)
{
  shutdown_t *s = instance;

  uv_close((uv_handle_t *)&s->timeout, handle_close_cb);
  uv_close((uv_handle_t *)&s->notify, handle_close_cb);
}

static int
shutdown_init(const cshim_init_ctx_t *ctx, void **instance, cshim_error_t *err)
{
  uint64_t timeout_ms = DEFAULT_TIMEOUT_MS;
  shutdown_t *s;
  int ret;

  ret = cshim_config_check_keys(ctx->config, shutdown_config_keys, ctx->uri, err);
  if (ret < 0)
    return ret;
  ret = cshim_config_get_duration_ms(ctx->config, "timeout", &timeout_ms, err);
  if (ret < 0)
    return ret;
  if (timeout_ms == 0)
    return cshim_error_make(err, EINVAL, "%s: `timeout` must be more than 0", ctx->uri);

  s = cshim_xmalloc0(sizeof *s);
  s->base.struct_size = sizeof s->base;
  s->base.register_callback = shutdown_register_callback;
  s->base.shutdown = shutdown_shutdown;
  s->base.on_done = shutdown_on_done;
  s->base.is_shutting_down = shutdown_is_shutting_down;
  s->loop = ctx->loop;
  s->log = ctx->log;
  s->timeout_ms = timeout_ms;
  /* Idle timers must not keep the loop alive: only a shutdown in progress does. */
  uv_timer_init(ctx->loop, &s->timeout);
  uv_timer_init(ctx->loop, &s->notify);
  s->timeout.data = s;
  s->notify.data = s;
  uv_unref((uv_handle_t *)&s->timeout);
  uv_unref((uv_handle_t *)&s->notify);
  s->open_handles = 2;
  *instance = s;
  return 0;
}

/* ---- live upgrade (docs/live-upgrade.md) ---- */

/* Callbacks are registered again by each plugin's init in the new image; only a shutdown in
   progress cannot be handed over. */
static const char *
shutdown_upgrade_busy(void *instance)
{
  shutdown_t *s = instance;
  return s->phase == PHASE_IDLE ? NULL : "the shim is shutting down";
}

static int
shutdown_upgrade_save(void *instance, cshim_state_writer_t *w, cshim_error_t *err)
{
  shutdown_t *s = instance;
  (void)w;
  if (s->phase != PHASE_IDLE)
    return cshim_error_make(err, ESHUTDOWN, "the shim is shutting down");
  return 0;
}

static int
shutdown_upgrade_restore(void *instance, const cshim_state_reader_t *state, cshim_error_t *err)
{
  (void)instance;
  (void)state;
  (void)err;
  return 0;
}

CSHIM_PLUGIN_DEFINE(.type = CSHIM_TYPE_INTERNAL, .id = "shutdown", .init = shutdown_init,
                    .close = shutdown_close, .upgrade_busy = shutdown_upgrade_busy,
                    .upgrade_save = shutdown_upgrade_save,
                    .upgrade_restore = shutdown_upgrade_restore)
