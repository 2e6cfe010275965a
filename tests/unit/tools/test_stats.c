// SPDX-License-Identifier: Apache-2.0
// Unit tests of tools/cshimctl/stats.c: cgroup v1 and v2 metrics from a Stats answer's Any, as
// JSON and as the human table.
#define _GNU_SOURCE
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <cshim/util.h>

#include "containerd/cgroups/v1/metrics.pb-c.h"
#include "containerd/cgroups/v2/metrics.pb-c.h"
#include "stats.h"

static uint8_t *
pack(const ProtobufCMessage *m, size_t *len)
{
  uint8_t *buf = cshim_xmalloc(protobuf_c_message_get_packed_size(m) + 1);

  *len = protobuf_c_message_pack(m, buf);
  return buf;
}

static char *
human(const json_t *stats)
{
  char *text = NULL;
  size_t size = 0;
  FILE *f = open_memstream(&text, &size);

  ctl_stats_print(f, stats);
  fclose(f);
  return text;
}

/* A row "NAME<spaces>VALUE\n" of the table. */
static void
assert_row(const char *table, const char *name, const char *value)
{
  cshim_autofree char *row = NULL;

  cshim_xasprintf(&row, "\n%-40s %s\n", name, value);
  if (strstr(table, row) == NULL)
    fail_msg("no row `%s %s` in:\n%s", name, value, table);
}

static void
test_names_match_descriptors(void **state)
{
  (void)state;
  for (const pbjson_names_t *n = ctl_stats_names; n->desc; n++)
    assert_int_equal(n->n_names, n->desc->n_fields);
  /* Every message of both files has its table. */
  assert_int_equal(ctl_stats_names[0].desc, &io__containerd__cgroups__v1__metrics__descriptor);
}

static void
test_v2(void **state)
{
  Io__Containerd__Cgroups__V2__Metrics m = IO__CONTAINERD__CGROUPS__V2__METRICS__INIT;
  Io__Containerd__Cgroups__V2__PidsStat pids = IO__CONTAINERD__CGROUPS__V2__PIDS_STAT__INIT;
  Io__Containerd__Cgroups__V2__CPUStat cpu = IO__CONTAINERD__CGROUPS__V2__CPUSTAT__INIT;
  Io__Containerd__Cgroups__V2__MemoryStat mem = IO__CONTAINERD__CGROUPS__V2__MEMORY_STAT__INIT;
  Io__Containerd__Cgroups__V2__IOStat io = IO__CONTAINERD__CGROUPS__V2__IOSTAT__INIT;
  Io__Containerd__Cgroups__V2__IOEntry e = IO__CONTAINERD__CGROUPS__V2__IOENTRY__INIT;
  Io__Containerd__Cgroups__V2__IOEntry *entries[] = {&e};
  cshim_autofree uint8_t *bytes = NULL;
  cshim_autofree char *table = NULL;
  cshim_error_t err = NULL;
  json_t *j, *metrics;
  size_t len;

  (void)state;
  pids.current = 3;
  pids.limit = UINT64_MAX;
  cpu.usage_usec = 123456;
  mem.usage = 4096 * 1000;
  mem.usage_limit = UINT64_MAX;
  e.major = 8;
  e.minor = 0;
  e.rbytes = 1 << 20;
  io.usage = entries;
  io.n_usage = 1;
  m.pids = &pids;
  m.cpu = &cpu;
  m.memory = &mem;
  m.io = &io;
  bytes = pack(&m.base, &len);

  assert_int_equal(ctl_stats_decode("io.containerd.cgroups.v2.Metrics", bytes, len, &j, &err), 0);
  assert_string_equal(json_string_value(json_object_get(j, "type_url")),
                      "io.containerd.cgroups.v2.Metrics");
  metrics = json_object_get(j, "metrics");
  assert_int_equal(json_integer_value(json_object_get(json_object_get(metrics, "pids"), "current")),
                   3);
  assert_string_equal(json_string_value(json_object_get(json_object_get(metrics, "pids"), "limit")),
                      "18446744073709551615");
  assert_int_equal(json_integer_value(json_object_get(json_object_get(metrics, "memory"), "usage")),
                   4096000);
  assert_int_equal(
      json_integer_value(json_object_get(json_object_get(metrics, "cpu"), "usage_usec")), 123456);
  assert_true(json_is_null(json_object_get(metrics, "memory_events")));
  assert_int_equal(
      json_integer_value(json_object_get(
          json_array_get(json_object_get(json_object_get(metrics, "io"), "usage"), 0), "rbytes")),
      1 << 20);

  table = human(j);
  assert_non_null(strstr(table, "type: io.containerd.cgroups.v2.Metrics\n"));
  assert_row(table, "pids.current", "3");
  assert_row(table, "pids.limit", "max");
  assert_row(table, "cpu.usage_usec", "123456");
  assert_row(table, "memory.usage", "4096000");
  assert_row(table, "memory.usage_limit", "max");
  assert_row(table, "io.usage[8:0].rbytes", "1048576");
  assert_null(strstr(table, "memory_events"));
  json_decref(j);

  /* A type URL with the googleapis prefix names the same type. */
  assert_int_equal(ctl_stats_decode("type.googleapis.com/io.containerd.cgroups.v2.Metrics", bytes,
                                    len, &j, &err),
                   0);
  assert_non_null(json_object_get(j, "metrics"));
  json_decref(j);
}

static void
test_v1(void **state)
{
  Io__Containerd__Cgroups__V1__Metrics m = IO__CONTAINERD__CGROUPS__V1__METRICS__INIT;
  Io__Containerd__Cgroups__V1__HugetlbStat h = IO__CONTAINERD__CGROUPS__V1__HUGETLB_STAT__INIT;
  Io__Containerd__Cgroups__V1__HugetlbStat *hs[] = {&h};
  Io__Containerd__Cgroups__V1__CPUStat cpu = IO__CONTAINERD__CGROUPS__V1__CPUSTAT__INIT;
  Io__Containerd__Cgroups__V1__CPUUsage usage = IO__CONTAINERD__CGROUPS__V1__CPUUSAGE__INIT;
  uint64_t per_cpu[] = {10, 20};
  Io__Containerd__Cgroups__V1__MemoryStat mem = IO__CONTAINERD__CGROUPS__V1__MEMORY_STAT__INIT;
  Io__Containerd__Cgroups__V1__MemoryEntry mu = IO__CONTAINERD__CGROUPS__V1__MEMORY_ENTRY__INIT;
  Io__Containerd__Cgroups__V1__BlkIOStat blk = IO__CONTAINERD__CGROUPS__V1__BLK_IOSTAT__INIT;
  Io__Containerd__Cgroups__V1__BlkIOEntry be = IO__CONTAINERD__CGROUPS__V1__BLK_IOENTRY__INIT;
  Io__Containerd__Cgroups__V1__BlkIOEntry *bes[] = {&be};
  cshim_autofree uint8_t *bytes = NULL;
  cshim_autofree char *table = NULL;
  cshim_error_t err = NULL;
  json_t *j;
  size_t len;

  (void)state;
  h.pagesize = "2MB";
  h.usage = 2097152;
  m.hugetlb = hs;
  m.n_hugetlb = 1;
  usage.total = 999;
  usage.per_cpu = per_cpu;
  usage.n_per_cpu = 2;
  cpu.usage = &usage;
  m.cpu = &cpu;
  mu.usage = 8192;
  mu.limit = 9223372036854771712ull;
  mem.usage = &mu;
  mem.rss = 4096;
  m.memory = &mem;
  be.op = "Read";
  be.device = "";
  be.major = 8;
  be.minor = 16;
  be.value = 512;
  blk.io_service_bytes_recursive = bes;
  blk.n_io_service_bytes_recursive = 1;
  m.blkio = &blk;
  bytes = pack(&m.base, &len);

  assert_int_equal(ctl_stats_decode("io.containerd.cgroups.v1.Metrics", bytes, len, &j, &err), 0);
  table = human(j);
  assert_row(table, "hugetlb[2MB].usage", "2097152");
  assert_row(table, "cpu.usage.total", "999");
  assert_row(table, "cpu.usage.per_cpu[1]", "20");
  assert_row(table, "memory.rss", "4096");
  assert_row(table, "memory.usage.usage", "8192");
  assert_row(table, "memory.usage.limit", "9223372036854771712");
  assert_row(table, "blkio.io_service_bytes_recursive[8:16 Read].value", "512");
  assert_null(strstr(table, "pagesize"));
  json_decref(j);
}

static void
test_other_types_and_errors(void **state)
{
  static const uint8_t junk[] = {0xff, 0xff, 0xff};
  cshim_autofree char *table = NULL;
  cshim_error_t err = NULL;
  json_t *j;

  (void)state;
  /* Not a cgroup type: shown undecoded. */
  assert_int_equal(ctl_stats_decode("example.com/other.Stats", junk, 3, &j, &err), 0);
  assert_int_equal(json_integer_value(json_object_get(j, "size")), 3);
  assert_string_equal(json_string_value(json_object_get(j, "value")), "////");
  table = human(j);
  assert_string_equal(table, "example.com/other.Stats (3 bytes, not decoded)\n");
  json_decref(j);

  /* No stats at all. */
  assert_int_equal(ctl_stats_decode(NULL, NULL, 0, &j, &err), 0);
  free(table);
  table = human(j);
  assert_string_equal(table, "no stats (0 bytes, not decoded)\n");
  json_decref(j);

  /* A cgroup type whose bytes do not decode. */
  assert_int_equal(ctl_stats_decode("io.containerd.cgroups.v2.Metrics", junk, 3, &j, &err),
                   -EPROTO);
  assert_non_null(strstr(err->msg, "do not decode as io.containerd.cgroups.v2.Metrics"));
  cshim_error_release(&err);
}

int
main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_names_match_descriptors),
      cmocka_unit_test(test_v2),
      cmocka_unit_test(test_v1),
      cmocka_unit_test(test_other_types_and_errors),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
