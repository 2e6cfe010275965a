// SPDX-License-Identifier: Apache-2.0
// `runsc events --stats` JSON (fixtures in tests/fixtures/runsc: runsc's shape, made-up values)
// mapped to io.containerd.cgroups.v1/v2 Metrics, and the CPU time of a process tree.
#define _GNU_SOURCE
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/times.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cshim/util.h>

#include "containerd/cgroups/v1/metrics.pb-c.h"
#include "containerd/cgroups/v2/metrics.pb-c.h"
#include "runsc_stats.h"
#include "cgroups.h"

#include <cmocka.h>

#ifndef RUNSC_FIXTURES
#error RUNSC_FIXTURES must be defined
#endif

static char *
fixture(const char *name)
{
  cshim_autofree char *path = NULL;
  cshim_error_t err = NULL;
  char *text = NULL;

  cshim_xasprintf(&path, "%s/%s", RUNSC_FIXTURES, name);
  if (task_cgroup_read_file(path, &text, &err) < 0)
    fail_msg("%s", err->msg);
  return text;
}

static Io__Containerd__Cgroups__V1__Metrics *
parse_v1(const char *json, const task_runsc_cpu_t *cpu)
{
  Google__Protobuf__Any any;
  cshim_error_t err = NULL;
  Io__Containerd__Cgroups__V1__Metrics *m;

  if (task_runsc_stats_parse(json, strlen(json), false, cpu, &any, &err) < 0)
    fail_msg("%s", err->msg);
  assert_string_equal(any.type_url, TASK_CGROUPS_V1_METRICS_TYPE);
  m = io__containerd__cgroups__v1__metrics__unpack(NULL, any.value.len, any.value.data);
  free(any.value.data);
  assert_non_null(m);
  assert_non_null(m->cpu);
  assert_non_null(m->cpu->usage);
  assert_non_null(m->cpu->throttling);
  assert_non_null(m->memory);
  assert_non_null(m->memory->usage);
  assert_non_null(m->memory->swap);
  assert_non_null(m->memory->kernel);
  assert_non_null(m->memory->kernel_tcp);
  assert_non_null(m->pids);
  return m;
}

static Io__Containerd__Cgroups__V2__Metrics *
parse_v2(const char *json, const task_runsc_cpu_t *cpu)
{
  Google__Protobuf__Any any;
  cshim_error_t err = NULL;
  Io__Containerd__Cgroups__V2__Metrics *m;

  if (task_runsc_stats_parse(json, strlen(json), true, cpu, &any, &err) < 0)
    fail_msg("%s", err->msg);
  assert_string_equal(any.type_url, TASK_CGROUPS_V2_METRICS_TYPE);
  m = io__containerd__cgroups__v2__metrics__unpack(NULL, any.value.len, any.value.data);
  free(any.value.data);
  assert_non_null(m);
  assert_non_null(m->cpu);
  assert_non_null(m->memory);
  assert_non_null(m->pids);
  return m;
}

static void
test_runsc_2022_v1_takes_memory_and_pids_and_the_shims_cpu(void **state)
{
  cshim_autofree char *json = fixture("events-stats-2022.json");
  const task_runsc_cpu_t cpu = {.user_ns = 30000000, .kernel_ns = 12000000};
  Io__Containerd__Cgroups__V1__Metrics *m = parse_v1(json, &cpu);
  (void)state;

  assert_int_equal(m->memory->usage->usage, 3145728);
  assert_int_equal(m->memory->usage->limit, 0);
  assert_int_equal(m->pids->current, 3);
  /* runsc's 431 s (its host cgroup's) is replaced by the tree's CPU time */
  assert_int_equal(m->cpu->usage->total, 42000000);
  assert_int_equal(m->cpu->usage->user, 30000000);
  assert_int_equal(m->cpu->usage->kernel, 12000000);
  assert_int_equal(m->cpu->usage->n_per_cpu, 0);
  assert_null(m->blkio);
  assert_int_equal(m->n_hugetlb, 0);
  io__containerd__cgroups__v1__metrics__free_unpacked(m, NULL);
}

static void
test_runsc_2022_without_cpu_keeps_runscs_figure(void **state)
{
  cshim_autofree char *json = fixture("events-stats-2022.json");
  Io__Containerd__Cgroups__V1__Metrics *m = parse_v1(json, NULL);
  (void)state;

  assert_int_equal(m->cpu->usage->total, 431000000000ull);
  assert_int_equal(m->cpu->usage->user, 0);
  io__containerd__cgroups__v1__metrics__free_unpacked(m, NULL);
}

static void
test_runsc_2022_v2_counts_cpu_in_microseconds(void **state)
{
  cshim_autofree char *json = fixture("events-stats-2022.json");
  const task_runsc_cpu_t cpu = {.user_ns = 30000999, .kernel_ns = 12000000};
  Io__Containerd__Cgroups__V2__Metrics *m = parse_v2(json, &cpu);
  (void)state;

  assert_int_equal(m->memory->usage, 3145728);
  assert_int_equal(m->memory->usage_limit, 0);
  assert_int_equal(m->pids->current, 3);
  assert_int_equal(m->cpu->usage_usec, 42000);
  assert_int_equal(m->cpu->user_usec, 30000);
  assert_int_equal(m->cpu->system_usec, 12000);
  assert_null(m->io);
  io__containerd__cgroups__v2__metrics__free_unpacked(m, NULL);
}

static void
test_runsc_unknown_keys_are_ignored(void **state)
{
  cshim_autofree char *json = fixture("events-stats-rootfs.json");
  Io__Containerd__Cgroups__V1__Metrics *m = parse_v1(json, NULL);
  (void)state;

  assert_int_equal(m->memory->usage->usage, 8388608);
  assert_int_equal(m->pids->current, 2);
  assert_int_equal(m->cpu->usage->total, 2500000);
  io__containerd__cgroups__v1__metrics__free_unpacked(m, NULL);
}

static void
test_runc_shaped_event_fills_every_v1_field(void **state)
{
  cshim_autofree char *json = fixture("events-stats-full.json");
  Io__Containerd__Cgroups__V1__Metrics *m = parse_v1(json, NULL);
  (void)state;

  assert_int_equal(m->cpu->usage->total, 7000000123ull);
  assert_int_equal(m->cpu->usage->kernel, 2000000000ull);
  assert_int_equal(m->cpu->usage->user, 5000000000ull);
  assert_int_equal(m->cpu->usage->n_per_cpu, 2);
  assert_int_equal(m->cpu->usage->per_cpu[0], 3000000123ull);
  assert_int_equal(m->cpu->usage->per_cpu[1], 4000000000ull);
  assert_int_equal(m->cpu->throttling->periods, 11);
  assert_int_equal(m->cpu->throttling->throttled_periods, 3);
  assert_int_equal(m->cpu->throttling->throttled_time, 45000);
  assert_int_equal(m->memory->cache, 40960);
  assert_int_equal(m->memory->usage->limit, 268435456);
  assert_int_equal(m->memory->usage->usage, 1048576);
  assert_int_equal(m->memory->usage->max, 2097152);
  assert_int_equal(m->memory->usage->failcnt, 4);
  /* 2^64-1 does not fit jansson's integers: read through a double, still "no limit" */
  assert_true(m->memory->swap->limit == UINT64_MAX);
  assert_int_equal(m->memory->swap->usage, 1052672);
  assert_int_equal(m->memory->swap->max, 2101248);
  assert_int_equal(m->memory->kernel->usage, 65536);
  assert_int_equal(m->memory->kernel->max, 131072);
  assert_int_equal(m->memory->kernel_tcp->usage, 4096);
  assert_int_equal(m->memory->kernel_tcp->max, 8192);
  assert_int_equal(m->pids->current, 5);
  assert_int_equal(m->pids->limit, 64);
  io__containerd__cgroups__v1__metrics__free_unpacked(m, NULL);
}

static void
test_runc_shaped_event_maps_to_v2_as_gvisors_shim_does(void **state)
{
  cshim_autofree char *json = fixture("events-stats-full.json");
  Io__Containerd__Cgroups__V2__Metrics *m = parse_v2(json, NULL);
  (void)state;

  assert_int_equal(m->cpu->usage_usec, 7000000);
  assert_int_equal(m->cpu->user_usec, 5000000);
  assert_int_equal(m->cpu->system_usec, 2000000);
  assert_int_equal(m->cpu->nr_periods, 11);
  assert_int_equal(m->cpu->nr_throttled, 3);
  assert_int_equal(m->cpu->throttled_usec, 45);
  assert_int_equal(m->memory->usage, 1048576);
  assert_int_equal(m->memory->usage_limit, 268435456);
  assert_int_equal(m->memory->swap_usage, 1052672);
  assert_true(m->memory->swap_limit == UINT64_MAX);
  assert_int_equal(m->memory->slab, 65536);
  assert_int_equal(m->memory->file, 40960);
  assert_int_equal(m->pids->current, 5);
  assert_int_equal(m->pids->limit, 64);
  io__containerd__cgroups__v2__metrics__free_unpacked(m, NULL);
}

static void
test_runsc_empty_data_gives_zeroes(void **state)
{
  Io__Containerd__Cgroups__V1__Metrics *m = parse_v1("{\"type\":\"stats\",\"data\":{}}", NULL);
  (void)state;

  assert_int_equal(m->memory->usage->usage, 0);
  assert_int_equal(m->pids->current, 0);
  assert_int_equal(m->cpu->usage->total, 0);
  io__containerd__cgroups__v1__metrics__free_unpacked(m, NULL);
}

static void
expect_refused(const char *json, const char *what)
{
  Google__Protobuf__Any any = {0};
  cshim_error_t err = NULL;

  assert_int_equal(task_runsc_stats_parse(json, strlen(json), false, NULL, &any, &err), -EINVAL);
  assert_non_null(err);
  if (strstr(err->msg, what) == NULL)
    fail_msg("`%s`: error `%s` lacks `%s`", json, err->msg, what);
  assert_null(any.value.data);
  cshim_error_release(&err);
}

static void
test_runsc_bad_documents_are_refused(void **state)
{
  (void)state;
  expect_refused("", "runsc stats: ");
  expect_refused("not json", "runsc stats: 1:");
  expect_refused("[1,2]", "not a JSON object");
  expect_refused("{\"type\":\"oom\",\"data\":{}}", "not a stats event");
  expect_refused("{\"data\":{}}", "not a stats event");
  expect_refused("{\"type\":\"stats\"}", "no `data`");
  expect_refused("{\"type\":\"stats\",\"data\":[]}", "`data` is not an object");
  expect_refused("{\"type\":\"stats\",\"data\":{\"cpu\":1}}", "`cpu` is not an object");
  expect_refused("{\"type\":\"stats\",\"data\":{\"pids\":{\"current\":-1}}}",
                 "`current` is not a count");
  expect_refused("{\"type\":\"stats\",\"data\":{\"pids\":{\"current\":\"3\"}}}",
                 "`current` is not a count");
  expect_refused("{\"type\":\"stats\",\"data\":{\"memory\":{\"usage\":{\"usage\":1.5}}}}",
                 "`usage` is not a count");
  expect_refused("{\"type\":\"stats\",\"data\":{\"cpu\":{\"usage\":{\"percpu\":{}}}}}",
                 "`percpu` is not an array");
  expect_refused("{\"type\":\"stats\",\"data\":{\"cpu\":{\"usage\":{\"percpu\":[1,-2]}}}}",
                 "`percpu` is not a count");
  /* a huge count makes the document go through doubles: a fraction elsewhere is still refused */
  expect_refused("{\"type\":\"stats\",\"data\":{\"pids\":{\"limit\":18446744073709551615,"
                 "\"current\":0.5}}}",
                 "`current` is not a count");
  expect_refused("{\"type\":\"stats\",\"data\":{}} trailing", "runsc stats: ");
}

/* A child that has used at least 3 clock ticks of user time, then waits: its CPU time shows in
   its parent's tree. */
static void
test_tree_cpu_counts_the_children(void **state)
{
  long tck = sysconf(_SC_CLK_TCK);
  task_runsc_cpu_t before = {0}, after = {0};
  cshim_error_t err = NULL;
  int ready[2];
  char byte;
  pid_t child;
  (void)state;

  assert_int_equal(task_runsc_tree_cpu(getpid(), &before, &err), 0);
  assert_int_equal(pipe(ready), 0);
  child = fork();
  assert_true(child >= 0);
  if (child == 0) {
    struct tms t;
    volatile unsigned long spin = 0;
    close(ready[0]);
    do {
      for (int i = 0; i < 1000000; i++)
        spin++;
      times(&t);
    } while (t.tms_utime < 3);
    if (write(ready[1], "r", 1) != 1)
      _exit(1);
    pause();
    _exit(0);
  }
  close(ready[1]);
  assert_int_equal(read(ready[0], &byte, 1), 1);
  close(ready[0]);
  assert_int_equal(task_runsc_tree_cpu(getpid(), &after, &err), 0);
  kill(child, SIGKILL);
  waitpid(child, NULL, 0);
  assert_true(after.user_ns >= before.user_ns + 3ull * (1000000000ull / (uint64_t)tck));
}

static void
test_tree_cpu_of_a_gone_process_is_not_found(void **state)
{
  task_runsc_cpu_t cpu = {0};
  cshim_error_t err = NULL;
  pid_t child = fork();
  (void)state;

  assert_true(child >= 0);
  if (child == 0)
    _exit(0);
  waitpid(child, NULL, 0);
  assert_int_equal(task_runsc_tree_cpu(child, &cpu, &err), -ENOENT);
  assert_non_null(err);
  cshim_error_release(&err);
}

int
main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_runsc_2022_v1_takes_memory_and_pids_and_the_shims_cpu),
      cmocka_unit_test(test_runsc_2022_without_cpu_keeps_runscs_figure),
      cmocka_unit_test(test_runsc_2022_v2_counts_cpu_in_microseconds),
      cmocka_unit_test(test_runsc_unknown_keys_are_ignored),
      cmocka_unit_test(test_runc_shaped_event_fills_every_v1_field),
      cmocka_unit_test(test_runc_shaped_event_maps_to_v2_as_gvisors_shim_does),
      cmocka_unit_test(test_runsc_empty_data_gives_zeroes),
      cmocka_unit_test(test_runsc_bad_documents_are_refused),
      cmocka_unit_test(test_tree_cpu_counts_the_children),
      cmocka_unit_test(test_tree_cpu_of_a_gone_process_is_not_found),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
