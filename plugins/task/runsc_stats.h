// SPDX-License-Identifier: Apache-2.0
// Stats of a gVisor (runsc) container whose sandbox has no cgroup of its own (--ignore-cgroups):
// `runsc events --stats <id>` read through the runtime runner and mapped to the cgroups Metrics
// message containerd's runc shim would send on this host (docs/runtimes.md).
#ifndef TASK_RUNSC_STATS_H
#define TASK_RUNSC_STATS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <cshim/error.h>
#include <cshim/ttrpc.h>

#include "google/protobuf/any.pb-c.h"
#include "types.h"

/* CPU time measured by the shim, replacing runsc's figure (nanoseconds). */
typedef struct task_runsc_cpu_s
{
  uint64_t user_ns;
  uint64_t kernel_ns;
} task_runsc_cpu_t;

/* Parse the JSON `runsc events --stats` prints ({"type":"stats","id":...,"data":{...}}, the shape
   of runc's event; unknown keys are ignored, absent ones are 0) into out: type_url (static)
   io.containerd.cgroups.v2.Metrics when unified, else io.containerd.cgroups.v1.Metrics;
   value.data malloc'ed (caller frees). cpu, when not NULL, replaces the CPU usage runsc reports
   (total = user + kernel). Integers above INT64_MAX are accepted (rounded through a double).
   EINVAL for anything else: not an object, type not "stats", a negative or non-numeric count. */
int task_runsc_stats_parse(const char *json, size_t len, bool unified, const task_runsc_cpu_t *cpu,
                           Google__Protobuf__Any *out, cshim_error_t *err);

/* CPU time of pid and every process below it (/proc/<pid>/stat utime + stime, plus the reaped
   children's cutime + cstime; children from /proc/<pid>/task/<tid>/children), at most
   TASK_RUNSC_MAX_TREE processes and TASK_RUNSC_MAX_TREE_THREADS `children` files (a few dozen for
   a gVisor sandbox): a bounded number of procfs reads on the loop. ENOENT when pid is gone. */
#define TASK_RUNSC_MAX_TREE 4096u
#define TASK_RUNSC_MAX_TREE_THREADS 16384u
int task_runsc_tree_cpu(pid_t pid, task_runsc_cpu_t *out, cshim_error_t *err);

/* Whether this host's cgroup hierarchy is v2 only (/sys/fs/cgroup is cgroup2): the Metrics
   version containerd's runc shim reports. */
bool task_runsc_host_unified(void);

/* Stats of a runsc container without a cgroup of its own: `runsc events --stats`, answered on
   call (exactly once) when it has finished. */
void task_runsc_stats(cshim_ttrpc_call_t *call, task_container_t *c);

#endif
