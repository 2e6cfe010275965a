// SPDX-License-Identifier: Apache-2.0
// One container: its identity, bundle, mounts, runtime, processes, and the asynchronous
// operations in flight on it.
#include "container.h"

#include <assert.h>
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include <cshim/util.h>

#include "cgroups.h"
#include "model.h"
#include "oom.h"
#include "op.h"
#include "process.h"

#define MAX_ID_LENGTH 76

static bool
is_alnum(char c)
{
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

int
task_validate_id(const char *id, cshim_error_t *err)
{
  size_t n;
  if (id == NULL || *id == '\0')
    return cshim_error_make(err, EINVAL, "identifier must not be empty");
  n = strlen(id);
  if (n > MAX_ID_LENGTH)
    return cshim_error_make(err, EINVAL,
                            "identifier `%.*s...` greater than maximum length (%d characters)", 20,
                            id, MAX_ID_LENGTH);
  /* [A-Za-z0-9]+([._-][A-Za-z0-9]+)*: separators single, never first or last. */
  for (size_t i = 0; i < n; i++) {
    char c = id[i];
    if (is_alnum(c))
      continue;
    if ((c == '.' || c == '_' || c == '-') && i > 0 && i + 1 < n && is_alnum(id[i - 1]) &&
        is_alnum(id[i + 1]))
      continue;
    return cshim_error_make(err, EINVAL,
                            "identifier `%s` must match [A-Za-z0-9]+(?:[._-][A-Za-z0-9]+)*", id);
  }
  return 0;
}

bool
task_spec_kill_all_on_exit(const char *bundle)
{
  cshim_autofree char *path = NULL;
  json_t *spec, *nss;
  json_error_t jerr;
  bool kill_all = true;
  size_t i;
  json_t *ns;

  cshim_xasprintf(&path, "%s/config.json", bundle);
  spec = json_load_file(path, 0, &jerr);
  if (spec == NULL)
    return true;
  nss = json_object_get(json_object_get(spec, "linux"), "namespaces");
  json_array_foreach(nss, i, ns)
  {
    const char *type = json_string_value(json_object_get(ns, "type"));
    const char *nspath = json_string_value(json_object_get(ns, "path"));
    if (type && strcmp(type, "pid") == 0 && (nspath == NULL || *nspath == '\0'))
      kill_all = false;
  }
  json_decref(spec);
  return kill_all;
}

static Containerd__Types__Mount *
copy_mount(const Containerd__Types__Mount *m)
{
  Containerd__Types__Mount *c = cshim_xmalloc(sizeof *c);
  containerd__types__mount__init(c);
  c->type = cshim_xstrdup(m->type ? m->type : "");
  c->source = cshim_xstrdup(m->source ? m->source : "");
  c->target = cshim_xstrdup(m->target ? m->target : "");
  c->n_options = m->n_options;
  c->options = cshim_xmalloc0((m->n_options + 1) * sizeof *c->options);
  for (size_t i = 0; i < m->n_options; i++)
    c->options[i] = cshim_xstrdup(m->options[i] ? m->options[i] : "");
  return c;
}

static void
free_mount(Containerd__Types__Mount *m)
{
  free(m->type);
  free(m->source);
  free(m->target);
  for (size_t i = 0; i < m->n_options; i++)
    free(m->options[i]);
  free(m->options);
  free(m);
}

task_container_t *
task_container_new(task_service_t *svc, const task_env_t *env,
                   const Containerd__Task__V2__CreateTaskRequest *req)
{
  task_container_t *c = cshim_xmalloc0(sizeof *c);
  c->svc = svc;
  c->env = env;
  c->loop = env->loop;
  c->log = env->log;
  c->reaper = env->reaper;
  c->events = env->events;
  c->id = cshim_xstrdup(req->id);
  c->bundle = cshim_xstrdup(req->bundle);
  cshim_xasprintf(&c->rootfs, "%s/rootfs", req->bundle);
  cshim_xasprintf(&c->pid_file, "%s/init.pid", req->bundle);
  cshim_xasprintf(&c->log_path, "%s/log.json", req->bundle);
  c->n_mounts = req->n_rootfs;
  c->mounts = cshim_xmalloc0((req->n_rootfs + 1) * sizeof *c->mounts);
  for (size_t i = 0; i < req->n_rootfs; i++)
    c->mounts[i] = copy_mount(req->rootfs[i]);
  if (req->checkpoint && *req->checkpoint)
    c->checkpoint = cshim_xstrdup(req->checkpoint);
  if (req->parent_checkpoint && *req->parent_checkpoint)
    c->parent_checkpoint = cshim_xstrdup(req->parent_checkpoint);
  c->init = task_process_new(c, NULL, req->stdin, req->stdout, req->stderr, req->terminal);
  c->creating = true;
  return c;
}

task_process_t *
task_container_process(task_container_t *c, const char *exec_id)
{
  if (exec_id == NULL || *exec_id == '\0')
    return c->init;
  cshim_list_t *l;

  CSHIM_LIST_FOREACH (l, &c->execs) {
    task_process_t *p = cshim_list_entry(l, task_process_t, link);
    if (strcmp(p->exec_id, exec_id) == 0)
      return p;
  }
  return NULL;
}

void
task_container_free(task_container_t *c)
{
  cshim_list_t *l;
  if (c == NULL)
    return;
  /* the runner frees ops first: none may outlive their container */
  assert(cshim_list_empty(&c->ops));
  task_oom_stop(c);
  task_cgroup_free(c->cgroup);
  free(c->checkpoint);
  free(c->parent_checkpoint);
  task_process_free(c->init);
  while ((l = cshim_list_first(&c->execs)) != NULL) {
    cshim_list_remove(l);
    task_process_free(cshim_list_entry(l, task_process_t, link));
  }
  if (c->rt)
    cshim_runtime_free(c->rt);
  cshim_runc_options_clear(&c->opts);
  for (size_t i = 0; i < c->n_mounts; i++)
    free_mount(c->mounts[i]);
  free(c->mounts);
  for (size_t i = 0; i < c->n_mounted; i++)
    free(c->mounted[i]);
  free(c->mounted);
  free(c->id);
  free(c->bundle);
  free(c->rootfs);
  free(c->pid_file);
  free(c->log_path);
  free(c);
}

static void
kill_all_done(task_op_t *op, cshim_runtime_result_t *result)
{
  if (result->error)
    cshim_log_debug(op->container->log, "kill remaining processes of `%s`: %s", op->container->id,
                    result->error->msg);
  task_op_complete(op);
}

void
task_container_kill_all(task_container_t *c)
{
  cshim_error_t err = NULL;
  task_op_t *op;
  if (c->rt == NULL)
    return;
  op = task_op_new(c, c->init, NULL, kill_all_done, "kill remaining processes");
  if (cshim_runtime_kill(c->rt, c->id, SIGKILL, true, c->log_path, task_op_runtime_cb, op, &err) <
      0)
    task_op_fail(op, &err);
}
