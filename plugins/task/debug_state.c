// SPDX-License-Identifier: Apache-2.0
// The task plugin's state source for the debug plugin and SIGUSR1: its process table as JSON.
#include "debug_state.h"

#include "cgroups.h"
#include "io.h"
#include "model.h"
#include "service.h"

#include <stdlib.h>

#include <jansson.h>

#include <cshim/host.h>
#include <cshim/util.h>

static const char *
state_name(const task_process_t *p)
{
  if (p->exited || p->state == TASK_PROC_STOPPED)
    return "stopped";
  /* The shim tracks its own Pause/Resume (as the runc shim does). */
  if (p->state == TASK_PROC_RUNNING && p == p->container->init && p->container->pausing)
    return "pausing";
  if (p->state == TASK_PROC_RUNNING && p == p->container->init && p->container->paused)
    return "paused";
  if (p->state == TASK_PROC_RUNNING)
    return "running";
  return "created";
}

static const char *
io_kind_name(const task_process_t *p)
{
  task_io_kind_t kind;

  if (task_io_kind(p->stdin_, p->stdout_, p->stderr_, &kind, NULL) < 0)
    return "unknown";
  switch (kind) {
  case TASK_IO_NULL:
    return "null";
  case TASK_IO_FIFO:
    return "fifo";
  case TASK_IO_FILE:
    return "file";
  case TASK_IO_BINARY:
    return "binary";
  }
  return "unknown";
}

static json_t *
process_json(const task_container_t *c, const task_process_t *p)
{
  json_t *o = json_object();

  json_object_set_new(o, "container_id", json_string(c->id));
  json_object_set_new(o, "exec_id", json_string(p->exec_id ? p->exec_id : ""));
  json_object_set_new(o, "pid", json_integer(p->pid));
  json_object_set_new(o, "status", json_string(state_name(p)));
  json_object_set_new(o, "io", json_string(io_kind_name(p)));
  json_object_set_new(o, "stdin", json_string(p->stdin_ ? p->stdin_ : ""));
  json_object_set_new(o, "stdout", json_string(p->stdout_ ? p->stdout_ : ""));
  json_object_set_new(o, "stderr", json_string(p->stderr_ ? p->stderr_ : ""));
  json_object_set_new(o, "terminal", json_boolean(p->terminal));
  if (p->exited) {
    json_object_set_new(o, "exit_status", json_integer(p->exit_status));
    json_object_set_new(o, "exited_at", json_integer(p->exited_at.tv_sec));
  } else {
    json_object_set_new(o, "exit_status", json_null());
  }
  json_object_set_new(o, "bundle", json_string(c->bundle ? c->bundle : ""));
  if (p == c->init) {
    json_t *args = json_array();
    json_object_set_new(o, "runtime", json_string(c->opts.binary_name ? c->opts.binary_name : ""));
    /* The global flags every runtime command of this container gets (`runtime_args`). */
    for (size_t i = 0; i < c->svc->cfg.n_runtime_args; i++)
      json_array_append_new(args, json_string(c->svc->cfg.runtime_args[i]));
    json_object_set_new(o, "runtime_args", args);
    /* Descriptors Stats keeps open on the container's cgroup files (cgroups.c). */
    if (c->cgroup) {
      size_t open_files = 0;
      for (size_t i = 0; i < c->cgroup->n_files; i++)
        open_files += c->cgroup->files[i].fd >= 0;
      json_object_set_new(o, "cgroup_files_open", json_integer((json_int_t)open_files));
    }
  }
  return o;
}

char *
task_debug_state_json(void *data)
{
  task_service_t *svc = data;
  json_t *list = json_array();
  char *text;

  const cshim_list_t *cl, *pl;

  CSHIM_LIST_FOREACH (cl, &svc->containers) {
    const task_container_t *c = cshim_list_entry(cl, task_container_t, link);
    if (c->creating || c->init == NULL)
      continue;
    json_array_append_new(list, process_json(c, c->init));
    CSHIM_LIST_FOREACH (pl, &c->execs)
      json_array_append_new(list, process_json(c, cshim_list_entry(pl, task_process_t, link)));
  }
  text = json_dumps(list, JSON_COMPACT);
  json_decref(list);
  return text;
}

/* The host a service registered with. A module holds one task instance (the host refuses a
   second plugin with the same uri), so one slot is enough and task_service_t stays as it is. */
static struct
{
  task_service_t *svc;
  cshim_host_t *host;
} registered;

void
task_debug_state_register(task_service_t *svc, cshim_host_t *host)
{
  cshim_error_t err = NULL;

  if (host == NULL || registered.svc != NULL)
    return;
  if (cshim_host_add_state_source(host, TASK_DEBUG_STATE_NAME, task_debug_state_json, svc, &err) <
      0) {
    cshim_error_log_release(&err, svc->log, CSHIM_LOG_WARN, "no debug state");
    return;
  }
  registered.svc = svc;
  registered.host = host;
}

void
task_debug_state_unregister(task_service_t *svc)
{
  if (registered.svc != svc || svc == NULL)
    return;
  cshim_host_remove_state_source(registered.host, TASK_DEBUG_STATE_NAME, svc);
  registered.svc = NULL;
  registered.host = NULL;
}
