// SPDX-License-Identifier: Apache-2.0
// Pause, Resume and Update: `runtime pause|resume` with TaskPaused/TaskResumed, and
// `runtime update --resources FILE` with the request's LinuxResources JSON.
#define _GNU_SOURCE
#include "control.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include <cshim/util.h>

#include "cgroups.h"
#include "container.h"
#include "model.h"
#include "op.h"
#include "process.h"
#include "service.h"

#include "containerd/events/task.pb-c.h"
#include "containerd/task/v2/shim.pb-c.h"

#define LINUX_RESOURCES_TYPE "types.containerd.io/opencontainers/runtime-spec/1/LinuxResources"
#define WINDOWS_RESOURCES_TYPE "types.containerd.io/opencontainers/runtime-spec/1/WindowsResources"

/* The container and its init, if init can be acted on now; errors as the runc shim classes
   them (NotFound for an unknown id, FailedPrecondition for the wrong state). */
static task_container_t *
find_live(task_service_t *svc, const char *id, const char *verb, bool allow_created,
          cshim_error_t *err)
{
  task_container_t *c = task_service_find(svc, id);
  task_process_t *p;

  if (c == NULL) {
    cshim_error_make(err, ENOENT, "container not created: not found");
    return NULL;
  }
  p = c->init;
  if (p->exited || p->state == TASK_PROC_STOPPED) {
    cshim_error_make(err, EBUSY, "cannot %s a stopped container", verb);
    return NULL;
  }
  if (p->state == TASK_PROC_CREATED && !allow_created) {
    cshim_error_make(err, EBUSY, "cannot %s task in created state", verb);
    return NULL;
  }
  if (p->starting || p->deleting) {
    cshim_error_make(err, EBUSY, "cannot %s: the container is being %s", verb,
                     p->starting ? "started" : "deleted");
    return NULL;
  }
  return c;
}

/* ---- Pause / Resume ---- */

static void
pause_done(task_op_t *op, cshim_runtime_result_t *result)
{
  task_container_t *c = op->container;
  Containerd__Events__TaskPaused ev = CONTAINERD__EVENTS__TASK_PAUSED__INIT;

  c->pausing = false;
  c->freezer_kept = false; /* the runtime changed the freezer: State reads it again */
  if (result->error) {
    task_op_fail_result(op, result);
    return;
  }
  c->paused = true;
  ev.container_id = c->id;
  task_service_publish(c->svc, CSHIM_TOPIC_TASK_PAUSED, &ev.base);
  task_op_reply_empty(op);
}

void
task_handle_pause(cshim_ttrpc_call_t *call, const ProtobufCMessage *msg, void *data)
{
  const Containerd__Task__V2__PauseRequest *req = (const void *)msg;
  cshim_error_t err = NULL;
  task_container_t *c;
  task_op_t *op;

  c = find_live(data, req->id, "pause", false, &err);
  if (c == NULL)
    goto fail;
  if (c->pausing || c->paused) {
    cshim_error_make(&err, EBUSY, "cannot pause a %s container", c->paused ? "paused" : "pausing");
    goto fail;
  }
  c->pausing = true;
  c->freezer_kept = false;
  op = task_op_new(c, c->init, call, pause_done, "pause");
  if (cshim_runtime_pause(c->rt, c->id, task_op_runtime_cb, op, &err) < 0) {
    c->pausing = false;
    task_op_fail(op, &err);
  }
  return;

fail:
  cshim_ttrpc_call_fail_error(call, &err);
}

static void
resume_done(task_op_t *op, cshim_runtime_result_t *result)
{
  task_container_t *c = op->container;
  Containerd__Events__TaskResumed ev = CONTAINERD__EVENTS__TASK_RESUMED__INIT;

  c->freezer_kept = false; /* the runtime changed the freezer: State reads it again */
  if (result->error) {
    task_op_fail_result(op, result);
    return;
  }
  c->paused = false;
  ev.container_id = c->id;
  task_service_publish(c->svc, CSHIM_TOPIC_TASK_RESUMED, &ev.base);
  task_op_reply_empty(op);
}

void
task_handle_resume(cshim_ttrpc_call_t *call, const ProtobufCMessage *msg, void *data)
{
  const Containerd__Task__V2__ResumeRequest *req = (const void *)msg;
  cshim_error_t err = NULL;
  task_container_t *c;
  task_op_t *op;

  c = find_live(data, req->id, "resume", false, &err);
  if (c == NULL)
    goto fail;
  /* Tracked here, as the runc shim does: runtimes differ (crun resumes a running container
     without complaint). */
  if (!c->paused) {
    cshim_error_make(&err, EBUSY, "cannot resume a running process");
    goto fail;
  }
  op = task_op_new(c, c->init, call, resume_done, "resume");
  if (cshim_runtime_resume(c->rt, c->id, task_op_runtime_cb, op, &err) < 0)
    task_op_fail(op, &err);
  return;

fail:
  cshim_ttrpc_call_fail_error(call, &err);
}

/* ---- Update ---- */

static void
remove_file(void *data)
{
  char *path = data;
  unlink(path);
  free(path);
}

static void
update_done(task_op_t *op, cshim_runtime_result_t *result)
{
  if (result->error) {
    task_op_fail_result(op, result);
    return;
  }
  task_op_reply_empty(op);
}

/* The resources must be a JSON object: runc would otherwise fail with a less clear message. */
static int
check_resources(const Google__Protobuf__Any *any, cshim_error_t *err)
{
  json_error_t jerr;
  json_t *v;
  bool object;

  if (any == NULL || any->value.len == 0)
    return cshim_error_make(err, EINVAL, "update: no resources given");
  if (any->type_url && strcmp(any->type_url, WINDOWS_RESOURCES_TYPE) == 0)
    return cshim_error_make(err, EINVAL, "update: `%s` cannot apply to a Linux container",
                            any->type_url);
  v = json_loadb((const char *)any->value.data, any->value.len, 0, &jerr);
  if (v == NULL)
    return cshim_error_make(err, EINVAL, "update: resources are not valid JSON: %s", jerr.text);
  object = json_is_object(v);
  json_decref(v);
  if (!object)
    return cshim_error_make(err, EINVAL, "update: resources are not a JSON object");
  return 0;
}

/* A private file in the bundle holding the JSON, for `--resources`. Small local file: written
   synchronously. */
static int
write_resources(const task_container_t *c, const Google__Protobuf__Any *any, char **out,
                cshim_error_t *err)
{
  cshim_autofree char *path = NULL;
  cshim_autoclose int fd = -1;
  size_t off = 0;

  cshim_xasprintf(&path, "%s/.update-resources-XXXXXX", c->bundle);
  fd = mkostemp(path, O_CLOEXEC);
  if (fd < 0)
    return cshim_error_sys(err, errno, "create a resources file in `%s`", c->bundle);
  while (off < any->value.len) {
    ssize_t n = CSHIM_RETRY_EINTR(write(fd, any->value.data + off, any->value.len - off));
    if (n < 0) {
      int e = errno;
      unlink(path);
      return cshim_error_sys(err, e, "write `%s`", path);
    }
    off += (size_t)n;
  }
  *out = cshim_steal_pointer(&path);
  return 0;
}

void
task_handle_update(cshim_ttrpc_call_t *call, const ProtobufCMessage *msg, void *data)
{
  const Containerd__Task__V2__UpdateTaskRequest *req = (const void *)msg;
  cshim_error_t err = NULL;
  task_container_t *c;
  char *path = NULL;
  task_op_t *op;

  /* A created container can be updated (its cgroup exists); annotations carry nothing the
     runtime applies and are accepted as they are. */
  c = find_live(data, req->id, "update", true, &err);
  if (c == NULL)
    goto fail;
  if (check_resources(req->resources, &err) < 0 ||
      write_resources(c, req->resources, &path, &err) < 0)
    goto fail;
  op = task_op_new(c, c->init, call, update_done, "update");
  op->data = path;
  op->free_data = remove_file;
  if (cshim_runtime_update(c->rt, c->id, path, task_op_runtime_cb, op, &err) < 0)
    task_op_fail(op, &err);
  return;

fail:
  cshim_ttrpc_call_fail_error(call, &err);
}
