// SPDX-License-Identifier: Apache-2.0
// Gives back to the kernel what start-up and lifecycle work left behind: free heap pages and the
// stack pages below the serving loop's frames (see docs/benchmarks.md for what it saves).
#define _GNU_SOURCE
#include "memory.h"

#include <malloc.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

/* Pages kept below the caller's frame: room for this function, madvise and its libc wrapper,
   whose frames must survive the call that discards the pages under them. */
#define STACK_MARGIN_PAGES 2

void
host_memory_init(void)
{
  /* Blocks of 16 kB and more (the YAML parser's buffers, a runtime command's output buffer, a
     Create's spec) get pages of their own instead of growing the heap around live data: freed,
     they leave no hole that small allocations then spread into. Measured: -6 kB private per
     shim with one container. The heap grows by what is asked, not 128 kB more at a time. */
  mallopt(M_MMAP_THRESHOLD, 16 * 1024);
  mallopt(M_TOP_PAD, 0);
}

/* Lowest address of the main thread's stack mapping, or 0. */
static uintptr_t
stack_low_end(void)
{
  char line[256];
  uintptr_t lo = 0, hi;
  FILE *f = fopen("/proc/self/maps", "re");
  if (f == NULL)
    return 0;
  while (fgets(line, sizeof line, f))
    if (strstr(line, "[stack]") && sscanf(line, "%lx-%lx", &lo, &hi) == 2)
      break;
    else
      lo = 0;
  fclose(f);
  return lo;
}

__attribute__((noinline)) void
host_memory_settle(void)
{
  uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
  uintptr_t here = (uintptr_t)__builtin_frame_address(0) & ~(page - 1);
  uintptr_t lo = stack_low_end();

  /* Start-up (config parsing, dlopen, plugin init) left freed chunks between live ones. */
  malloc_trim(0);
  /* Everything below the live frames is dead: discard it so it stops counting as ours. */
  if (lo && here > lo + STACK_MARGIN_PAGES * page)
    madvise((void *)lo, here - STACK_MARGIN_PAGES * page - lo, MADV_DONTNEED);
}
