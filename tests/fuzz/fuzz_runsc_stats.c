// SPDX-License-Identifier: Apache-2.0
// libFuzzer harness: the `runsc events --stats` reader (plugins/task/runsc_stats.c). The first
// input byte picks v1 or v2 Metrics (bit 0) and whether the shim's CPU time replaces runsc's
// (bit 1); the rest is the JSON. What it accepts must pack into Metrics that unpack again.
#include <stdint.h>
#include <stdlib.h>

#include "containerd/cgroups/v1/metrics.pb-c.h"
#include "containerd/cgroups/v2/metrics.pb-c.h"
#include "runsc_stats.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  const task_runsc_cpu_t cpu = {.user_ns = 1000, .kernel_ns = 2000};
  Google__Protobuf__Any any = {0};
  cshim_error_t err = NULL;
  bool unified;

  if (size < 1)
    return 0;
  unified = data[0] & 1;
  if (task_runsc_stats_parse((const char *)data + 1, size - 1, unified, (data[0] & 2) ? &cpu : NULL,
                             &any, &err) < 0) {
    if (err == NULL || any.value.data != NULL)
      abort(); /* a refusal says why and leaves nothing behind */
    cshim_error_release(&err);
    return 0;
  }
  if (err != NULL)
    abort();
  if (unified) {
    Io__Containerd__Cgroups__V2__Metrics *m =
        io__containerd__cgroups__v2__metrics__unpack(NULL, any.value.len, any.value.data);
    if (m == NULL || m->cpu == NULL || m->memory == NULL || m->pids == NULL)
      abort();
    if ((data[0] & 2) && m->cpu->usage_usec != 3)
      abort();
    io__containerd__cgroups__v2__metrics__free_unpacked(m, NULL);
  } else {
    Io__Containerd__Cgroups__V1__Metrics *m =
        io__containerd__cgroups__v1__metrics__unpack(NULL, any.value.len, any.value.data);
    if (m == NULL || m->cpu == NULL || m->cpu->usage == NULL || m->memory == NULL ||
        m->memory->usage == NULL || m->pids == NULL)
      abort();
    if ((data[0] & 2) && m->cpu->usage->total != 3000)
      abort();
    io__containerd__cgroups__v1__metrics__free_unpacked(m, NULL);
  }
  free(any.value.data);
  return 0;
}
