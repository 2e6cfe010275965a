// SPDX-License-Identifier: Apache-2.0
// Gives back to the kernel what start-up and lifecycle work left behind: free heap pages, the
// stack pages below the serving loop's frames and the clean file pages of code that is no longer
// run (see docs/benchmarks.md for what each saves).
#define _GNU_SOURCE
#include "memory.h"

#include <malloc.h>
#include <stdbool.h>
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

/* One mapping of /proc/self/smaps, as far as unmap_clean_file_pages needs it. */
struct vma
{
  uintptr_t lo, hi;
  bool candidate; /* a read-only or executable private mapping of a file */
  long anonymous; /* kB of copy-on-write pages: -1 until read */
};

static void
drop_if_clean(const struct vma *v)
{
  /* No page of it was ever written (no copy-on-write page: no relocation, no data): every page
     can be read again from the file, so the mapping gives up its pages and faults back only
     those still used. (Private_Dirty is no guide: it also counts page-cache pages not yet
     written back, e.g. of a freshly installed binary.) */
  if (v->candidate && v->anonymous == 0 && v->hi > v->lo)
    madvise((void *)v->lo, v->hi - v->lo, MADV_DONTNEED);
}

/* Code and read-only data that only start-up ran (config and YAML parsing, dlopen and the ELF
   loader, plugin init) stay mapped in every shim: drop the clean file pages of the binary, the
   modules and the libraries; what the serving path uses faults back in once. */
static void
unmap_clean_file_pages(void)
{
  char line[512];
  struct vma v = {0};
  FILE *f = fopen("/proc/self/smaps", "re");

  if (f == NULL)
    return;
  while (fgets(line, sizeof line, f)) {
    unsigned long lo, hi;
    char perms[8], path[2];
    long kb;

    if (sscanf(line, "%lx-%lx %7s %*s %*s %*s %1s", &lo, &hi, perms, path) == 4 ||
        sscanf(line, "%lx-%lx %7s", &lo, &hi, perms) == 3) {
      drop_if_clean(&v);
      memset(&v, 0, sizeof v);
      v.lo = lo;
      v.hi = hi;
      v.anonymous = -1;
      v.candidate = strchr(line, '/') != NULL && strlen(perms) == 4 && perms[0] == 'r' &&
                    perms[1] == '-' && perms[3] == 'p';
    } else if (sscanf(line, "Anonymous: %ld", &kb) == 1)
      v.anonymous = kb;
  }
  drop_if_clean(&v);
  fclose(f);
}

__attribute__((noinline)) void
host_memory_settle(void)
{
  uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
  uintptr_t here = (uintptr_t)__builtin_frame_address(0) & ~(page - 1);
  uintptr_t lo = stack_low_end();

  /* Start-up (config parsing, dlopen, plugin init) left freed chunks between live ones. */
  malloc_trim(0);
  unmap_clean_file_pages();
  /* Everything below the live frames is dead: discard it so it stops counting as ours. */
  if (lo && here > lo + STACK_MARGIN_PAGES * page)
    madvise((void *)lo, here - STACK_MARGIN_PAGES * page - lo, MADV_DONTNEED);
}
