// SPDX-License-Identifier: Apache-2.0
// TaskOOM from the memory cgroup (v1 eventfd, v2 memory.events oom_kill).
#ifndef TASK_OOM_H
#define TASK_OOM_H

#include <stdbool.h>
#include <stdint.h>

#include <cshim/error.h>

#include "types.h"

/* Watch c->cgroup for OOM kills and publish TaskOOM{c->id} for each; baseline = now. */
int task_oom_watch(task_container_t *c, cshim_error_t *err);
/* Look now, synchronously, for an OOM not yet published (init exited: its TaskOOM must precede
   TaskExit), publish it, and stop watching. No-op without a watch. */
void task_oom_flush(task_container_t *c);
/* Stop watching (handles close on a later loop turn). NULL-safe on c->oom. */
void task_oom_stop(task_container_t *c);
/* After the runtime created (or restored) c's init: find its cgroup and watch it for OOM
   (failures are logged: Stats then answers NotFound and no TaskOOM is sent). */
void task_container_track_cgroup(task_container_t *c);

/* Live upgrade (upgrade.c). */
/* The OOM watch's progress (oom_kill count already looked at, v1 credit); false without one. */
bool task_oom_progress(const task_container_t *c, uint64_t *reported, uint64_t *credit);
/* The v1 OOM watch's eventfd (handed over as it is), or -1 (none, or cgroup v2). */
int task_oom_eventfd(const task_container_t *c);
/* Watch c->cgroup (v1) through efd, registered by the previous image (the descriptor is taken
   over; on failure it is the caller's), then task_oom_resume. */
int task_oom_adopt(task_container_t *c, int efd, uint64_t reported, uint64_t credit,
                   cshim_error_t *err);
/* After the new image watched c again (baseline = now): go back to the saved progress and report
   the kills counted in between. */
void task_oom_resume(task_container_t *c, uint64_t reported, uint64_t credit);

#endif
