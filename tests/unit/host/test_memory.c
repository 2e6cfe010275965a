// SPDX-License-Identifier: Apache-2.0
// Tests of host/memory.c: host_memory_settle gives back the dead stack below its caller, the
// heap's free pages and clean code pages, and leaves live data alone.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "memory.h"

/* Resident kB of the mapping named `name` ("[stack]", "[heap]"), or -1. */
static long
rss_kb(const char *name)
{
  char line[512];
  long kb = -1;
  int in = 0;
  FILE *f = fopen("/proc/self/smaps", "re");

  assert_non_null(f);
  while (fgets(line, sizeof line, f)) {
    if (strstr(line, name) && strchr(line, '-')) {
      in = 1;
      continue;
    }
    if (in && strncmp(line, "Rss:", 4) == 0) {
      kb = strtol(line + 4, NULL, 10);
      break;
    }
  }
  fclose(f);
  return kb;
}

/* Dirties `kb` kB of stack below the caller, then returns: that stack is dead afterwards. */
static __attribute__((noinline)) int
dirty_stack(size_t kb)
{
  volatile char buf[256 * 1024];
  size_t n = kb * 1024 < sizeof buf ? kb * 1024 : sizeof buf;
  for (size_t i = 0; i < n; i += 512)
    buf[i] = (char)i;
  return buf[n / 2];
}

static void
test_memory_settle_releases_dead_stack(void **state)
{
  volatile int keep = 0x5a5a; /* live, in this frame: must survive */
  long before, dirty, after;
  (void)state;

  before = rss_kb("[stack]");
  assert_true(before > 0);
  dirty_stack(200);
  dirty = rss_kb("[stack]");
  if (dirty < before + 128)
    skip(); /* the stack lives elsewhere (sanitizer fake stacks): nothing to measure */
  host_memory_settle();
  after = rss_kb("[stack]");
  assert_true(after < dirty - 128);
  assert_int_equal(keep, 0x5a5a);
  /* The released stack works as before. */
  dirty_stack(64);
}

static void
test_memory_settle_keeps_live_heap_data(void **state)
{
  enum
  {
    N = 64,
    SIZE = 16 * 1024
  };
  char *live[N], *dead[N];
  long before, after;
  (void)state;

  /* Live small blocks between large freed ones: only the free pages may go. */
  for (int i = 0; i < N; i++) {
    dead[i] = malloc(SIZE);
    assert_non_null(dead[i]);
    memset(dead[i], 0xee, SIZE);
    live[i] = malloc(64);
    assert_non_null(live[i]);
    memset(live[i], i, 64);
  }
  for (int i = 0; i < N; i++)
    free(dead[i]);
  before = rss_kb("[heap]");
  host_memory_settle();
  after = rss_kb("[heap]");
  /* glibc's heap (not a sanitizer's allocator): the freed 1 MB between live blocks goes back. */
  if (before > (long)(N * SIZE / 1024))
    assert_true(after < before - (long)(N * SIZE / 1024) / 2);
  for (int i = 0; i < N; i++) {
    for (int j = 0; j < 64; j++)
      assert_int_equal((unsigned char)live[i][j], (unsigned char)i);
    free(live[i]);
  }
}

/* Resident kB of the read-only and executable private file mappings (code, constants). */
static long
clean_file_rss_kb(void)
{
  char line[512];
  long total = 0, kb;
  int counting = 0;
  FILE *f = fopen("/proc/self/smaps", "re");

  assert_non_null(f);
  while (fgets(line, sizeof line, f)) {
    char perms[8];
    unsigned long lo, hi;
    if (sscanf(line, "%lx-%lx %7s", &lo, &hi, perms) == 3)
      counting = strchr(line, '/') != NULL && strcmp(perms, "r-xp") == 0;
    else if (counting && sscanf(line, "Rss: %ld", &kb) == 1)
      total += kb;
  }
  fclose(f);
  return total;
}

/* Code pages are given back and fault in again: the process runs on. */
static void
test_memory_settle_gives_back_code_pages(void **state)
{
  long before, after;
  (void)state;

  before = clean_file_rss_kb();
  assert_true(before > 0);
  host_memory_settle();
  after = clean_file_rss_kb();
  assert_true(after < before);
  /* libc, cmocka and this binary still run (and fault their pages back in). */
  assert_int_equal(dirty_stack(8), dirty_stack(8));
}

int
main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_memory_settle_releases_dead_stack),
      cmocka_unit_test(test_memory_settle_keeps_live_heap_data),
      cmocka_unit_test(test_memory_settle_gives_back_code_pages),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
