// SPDX-License-Identifier: Apache-2.0
// Gives back to the kernel what start-up and lifecycle work left behind: free heap pages, the
// stack pages below the serving loop's frames and the clean file pages of code that is no longer
// run (see docs/benchmarks.md for what each saves).
#define _GNU_SOURCE
#include "memory.h"

#include <fcntl.h>
#include <malloc.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cshim/util.h>

/* Pages kept below the caller's frame: room for this function, madvise and its libc wrapper,
   whose frames must survive the call that discards the pages under them. */
#define STACK_MARGIN_PAGES 2
/* Clean file mappings gathered before any is dropped (a shim has ~20; more are dropped at once). */
#define SCAN_RANGES_MAX 64
/* Bytes of an smaps line kept: enough for a header line's range, permissions and path start. */
#define SCAN_LINE_MAX 256

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

/* What one pass over /proc/self/smaps found: the stack's low end and the clean file mappings. */
struct smaps_scan
{
  uintptr_t stack_lo; /* lowest address of the main thread's stack, or 0 */
  size_t n;           /* ranges[0..n) may be dropped */
  struct
  {
    uintptr_t lo, hi;
  } ranges[SCAN_RANGES_MAX];
};

/* One mapping being read. */
struct vma
{
  uintptr_t lo, hi;
  bool candidate; /* a read-only or executable private mapping of a file */
  long anonymous; /* kB of copy-on-write pages: -1 until read */
};

static void
keep_if_clean(struct smaps_scan *scan, const struct vma *v)
{
  /* No page of it was ever written (no copy-on-write page: no relocation, no data): every page
     can be read again from the file, so the mapping may give up its pages and fault back only
     those still used. (Private_Dirty is no guide: it also counts page-cache pages not yet
     written back, e.g. of a freshly installed binary.) */
  if (!v->candidate || v->anonymous != 0 || v->hi <= v->lo)
    return;
  if (scan->n == SCAN_RANGES_MAX) { /* more mappings than room: give this one up at once */
    madvise((void *)v->lo, v->hi - v->lo, MADV_DONTNEED);
    return;
  }
  scan->ranges[scan->n].lo = v->lo;
  scan->ranges[scan->n].hi = v->hi;
  scan->n++;
}

/* Hex digits at *p, moving *p past them. */
static uintptr_t
parse_hex(const char **p)
{
  uintptr_t v = 0;
  for (;; (*p)++) {
    int d = cshim_hexval(**p);
    if (d < 0)
      return v;
    v = v * 16 + (uintptr_t)d;
  }
}

/* One line of smaps (NUL-terminated, without its newline). */
static void
scan_line(struct smaps_scan *scan, struct vma *v, const char *line)
{
  const char *p = line, *perms;

  if (strncmp(line, "Anonymous:", 10) == 0) {
    p += 10;
    while (*p == ' ')
      p++;
    v->anonymous = 0;
    while (*p >= '0' && *p <= '9')
      v->anonymous = v->anonymous * 10 + (*p++ - '0');
    return;
  }
  /* A mapping's first line starts with its address range ("lo-hi perms offset dev inode path");
     the other lines start with a field name (a letter that is no hex digit, e.g. "Rss:"). */
  if (cshim_hexval(*p) < 0)
    return;
  {
    uintptr_t lo = parse_hex(&p), hi;
    if (*p != '-')
      return;
    p++;
    hi = parse_hex(&p);
    if (*p != ' ')
      return;
    keep_if_clean(scan, v);
    memset(v, 0, sizeof *v);
    v->lo = lo;
    v->hi = hi;
    v->anonymous = -1;
    perms = p + 1;
    v->candidate = strlen(perms) > 4 && perms[0] == 'r' && perms[1] == '-' && perms[3] == 'p' &&
                   perms[4] == ' ' && strchr(perms, '/') != NULL;
    if (strstr(perms, "[stack]") != NULL)
      scan->stack_lo = lo;
  }
}

/* Reads /proc/self/smaps with read(2) and hand-written parsing: stdio and scanf would fault back
   in the very libc pages this pass is about to drop (a settle once left ~600 kB of libc text
   resident that only the settle itself had run). Nothing is dropped while reading. */
static __attribute__((noinline)) void
scan_smaps(struct smaps_scan *scan)
{
  char buf[4096], line[SCAN_LINE_MAX];
  size_t len = 0;
  struct vma v = {0};
  ssize_t n;
  int fd = open("/proc/self/smaps", O_RDONLY | O_CLOEXEC);

  if (fd < 0)
    return;
  while ((n = CSHIM_RETRY_EINTR(read(fd, buf, sizeof buf))) > 0)
    for (ssize_t i = 0; i < n; i++) {
      if (buf[i] != '\n') {
        if (len < sizeof line - 1) /* of a long path, the start is all a header line needs */
          line[len++] = buf[i];
        continue;
      }
      line[len] = '\0';
      scan_line(scan, &v, line);
      len = 0;
    }
  close(fd);
  keep_if_clean(scan, &v);
}

/* Code and read-only data that only start-up ran (config and YAML parsing, dlopen and the ELF
   loader, plugin init) stay mapped in every shim: drop the clean file pages of the binary, the
   modules and the libraries; what the serving path uses faults back in once. Returns the stack's
   low end. */
static __attribute__((noinline)) uintptr_t
unmap_clean_file_pages(void)
{
  struct smaps_scan scan;

  scan.stack_lo = 0;
  scan.n = 0;
  scan_smaps(&scan);
  for (size_t i = 0; i < scan.n; i++)
    madvise((void *)scan.ranges[i].lo, scan.ranges[i].hi - scan.ranges[i].lo, MADV_DONTNEED);
  return scan.stack_lo;
}

__attribute__((noinline)) void
host_memory_settle(void)
{
  uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
  uintptr_t here = (uintptr_t)__builtin_frame_address(0) & ~(page - 1);
  uintptr_t lo;

  /* Start-up (config parsing, dlopen, plugin init) left freed chunks between live ones. */
  malloc_trim(0);
  lo = unmap_clean_file_pages();
  /* Everything below the live frames is dead: discard it so it stops counting as ours. */
  if (lo && here > lo + STACK_MARGIN_PAGES * page)
    madvise((void *)lo, here - STACK_MARGIN_PAGES * page - lo, MADV_DONTNEED);
}
