// SPDX-License-Identifier: Apache-2.0
// Stats: the container's cgroup usage as io.containerd.cgroups.v1.Metrics or
// io.containerd.cgroups.v2.Metrics, read straight from the cgroup filesystem (see cgroups.c).
#include "stats.h"

#include <errno.h>
#include <stdlib.h>

#include <cshim/util.h>

#include "cgroups.h"
#include "model.h"
#include "oom.h"
#include "options.h"
#include "runsc_stats.h"
#include "service.h"

#include "containerd/task/v2/shim.pb-c.h"

void
task_handle_stats(cshim_ttrpc_call_t *call, const ProtobufCMessage *msg, void *data)
{
  task_service_t *svc = data;
  const Containerd__Task__V2__StatsRequest *req = (const void *)msg;
  Containerd__Task__V2__StatsResponse resp = CONTAINERD__TASK__V2__STATS_RESPONSE__INIT;
  Google__Protobuf__Any any;
  cshim_error_t err = NULL;
  task_container_t *c = task_service_find(svc, req->id);

  if (c == NULL) {
    cshim_error_make(&err, ENOENT, "container not created: not found");
    goto fail;
  }
  /* Found at create; a container restored later (or whose cgroup was unreadable then) is looked
     up again while its init lives. */
  if (c->cgroup == NULL && c->init->pid > 0 && !c->init->exited)
    task_container_track_cgroup(c);
  /* runsc --ignore-cgroups: the sandbox's own accounting (runsc_stats.c) */
  if (c->cgroup == NULL && task_runtime_is_runsc(c->opts.binary_name) && c->init->pid > 0 &&
      !c->init->exited) {
    task_runsc_stats(call, c);
    return;
  }
  if (c->cgroup == NULL) {
    cshim_error_make(&err, ENOENT, "cgroup does not exist: not found");
    goto fail;
  }
  if (task_cgroup_stats(c->cgroup, &any, &err) < 0)
    goto fail;
  resp.stats = &any;
  cshim_ttrpc_call_reply(call, &resp.base);
  free(any.value.data);
  return;

fail:
  cshim_ttrpc_call_fail_error(call, &err);
}
