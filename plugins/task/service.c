// SPDX-License-Identifier: Apache-2.0
// The task plugin's instance: the container table, the events interface its containers report
// through, and setup and teardown.
#include "service.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cshim/util.h>

#include "container.h"
#include "op.h"
#include "options.h"
#include "process.h"

/* ---- the table ---- */

task_container_t *
task_service_find(task_service_t *svc, const char *id)
{
  if (id == NULL)
    return NULL;
  cshim_list_t *l;

  CSHIM_LIST_FOREACH (l, &svc->containers) {
    task_container_t *c = cshim_list_entry(l, task_container_t, link);
    if (!c->creating && strcmp(c->id, id) == 0)
      return c;
  }
  return NULL;
}

void
task_service_publish(task_service_t *svc, const char *topic, const ProtobufCMessage *event)
{
  cshim_error_t err = NULL;
  if (svc->publisher == NULL)
    return;
  if (cshim_publish(svc->publisher, topic, event, &err) < 0)
    cshim_error_log_release(&err, svc->log, CSHIM_LOG_ERROR, "publish %s", topic);
}

static void
gc_cb(uv_timer_t *t)
{
  task_service_t *svc = CSHIM_CONTAINER_OF(t, task_service_t, gc_timer);
  cshim_list_t *l, *next;

  CSHIM_LIST_FOREACH_SAFE (l, next, &svc->removed) {
    task_container_t *c = cshim_list_entry(l, task_container_t, link);
    if (cshim_list_empty(&c->ops)) {
      cshim_list_remove(&c->link);
      task_container_free(c);
    }
  }
}

static void
schedule_gc(task_service_t *svc)
{
  if (svc->closing)
    return;
  uv_timer_start(&svc->gc_timer, gc_cb, 0, 0);
}

void
task_service_remove(task_container_t *c)
{
  task_service_t *svc = c->svc;
  if (c->removed)
    return;
  cshim_list_remove(&c->link);
  cshim_list_push_front(&svc->removed, &c->link);
  c->removed = true;
  schedule_gc(svc);
}

/* ---- the events interface its containers report through ---- */

static void
events_publish(void *data, const char *topic, const ProtobufCMessage *event)
{
  task_service_publish(data, topic, event);
}

static void
events_gc_needed(void *data)
{
  schedule_gc(data);
}

static void
events_process_stopped(void *data, task_process_t *p)
{
  task_container_t *c = p->container;
  (void)data;
  if (p == c->init && c->kill_all_on_exit && !p->deleting)
    task_container_kill_all(c);
}

int
task_service_lookup(task_service_t *svc, const char *id, const char *exec_id, task_container_t **c,
                    task_process_t **p, cshim_error_t *err)
{
  *c = task_service_find(svc, id);
  if (*c == NULL)
    return cshim_error_make(err, ENOENT, "container not created: not found");
  *p = task_container_process(*c, exec_id);
  if (*p == NULL)
    return cshim_error_make(err, ENOENT, "process does not exist %s: not found", exec_id);
  return 0;
}

static void
shutdown_timer_cb(uv_timer_t *t)
{
  task_service_t *svc = CSHIM_CONTAINER_OF(t, task_service_t, shutdown_timer);
  if (svc->closing || !cshim_list_empty(&svc->containers) || svc->shutdown == NULL)
    return;
  cshim_log_info(svc->log, "no containers left: shutting down");
  svc->shutdown->shutdown(svc->shutdown);
}

void
task_service_request_shutdown(task_service_t *svc)
{
  svc->shutdown_requested = true;
  uv_timer_start(&svc->shutdown_timer, shutdown_timer_cb, 0, 0);
}

/* ---- lifecycle ---- */

static uint64_t
loop_now_ms(const task_service_t *svc)
{
  return uv_now(svc->loop);
}

int
task_service_init(task_service_t *svc, uv_loop_t *loop, const cshim_logger_t *log,
                  cshim_reaper_t *reaper, cshim_publisher_t *publisher, cshim_shutdown_t *shutdown,
                  const char *namespace_, const cshim_config_node_t *config, cshim_error_t *err)
{
  int ret;

  memset(svc, 0, sizeof *svc);
  ret = task_config_parse(config, &svc->cfg, err);
  if (ret < 0)
    return ret;
  svc->loop = loop;
  svc->shim_pid = getpid();
  svc->log = log;
  svc->reaper = reaper;
  svc->publisher = publisher;
  svc->shutdown = shutdown;
  svc->namespace_ = cshim_xstrdup(namespace_ && *namespace_ ? namespace_ : "default");
  svc->runtime_limit = cshim_runtime_limit_new(svc->cfg.max_runtime_processes);
  uv_timer_init(loop, &svc->gc_timer);
  uv_timer_init(loop, &svc->shutdown_timer);
  svc->now_ms = loop_now_ms;
  svc->events = (task_events_t){
      .data = svc,
      .publish = events_publish,
      .gc_needed = events_gc_needed,
      .process_stopped = events_process_stopped,
  };
  svc->env = (task_env_t){
      .loop = loop,
      .log = log,
      .reaper = reaper,
      .events = &svc->events,
      .namespace_ = svc->namespace_,
      .command_timeout_ms = svc->cfg.command_timeout_ms,
  };

  return 0;
}

static void
timer_closed_cb(uv_handle_t *h)
{
  task_service_t *svc = h->data;
  if (--svc->pending_closes > 0)
    return;
  task_config_clear(&svc->cfg);
  task_runtime_paths_free(&svc->runtime_paths);
  free(svc->namespace_);
  svc->namespace_ = NULL;
  if (svc->free_cb)
    svc->free_cb(svc);
}

static void
close_container(task_container_t *c)
{
  task_op_cancel_all(c);
  task_container_free(c);
}

void
task_service_close(task_service_t *svc, void (*free_cb)(task_service_t *svc))
{
  cshim_list_t *l;

  svc->closing = true;
  /* First, so that killing one container's commands starts no queued one of another. */
  cshim_runtime_limit_free(svc->runtime_limit);
  svc->runtime_limit = NULL;
  while ((l = cshim_list_first(&svc->containers)) != NULL) {
    cshim_list_remove(l);
    close_container(cshim_list_entry(l, task_container_t, link));
  }
  while ((l = cshim_list_first(&svc->removed)) != NULL) {
    cshim_list_remove(l);
    close_container(cshim_list_entry(l, task_container_t, link));
  }
  svc->free_cb = free_cb;
  svc->pending_closes = 2;
  svc->gc_timer.data = svc;
  svc->shutdown_timer.data = svc;
  uv_close((uv_handle_t *)&svc->gc_timer, timer_closed_cb);
  uv_close((uv_handle_t *)&svc->shutdown_timer, timer_closed_cb);
}
