// SPDX-License-Identifier: Apache-2.0
// Finding a container's cgroup from /proc/<pid>/cgroup and mountinfo, and reading its usage as
// io.containerd.cgroups.v1/v2 Metrics from the fixture trees in tests/fixtures/cgroups.
#define _GNU_SOURCE
#include <errno.h>
#include <ftw.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/vfs.h>

#include <linux/magic.h>
#include <unistd.h>

#include <cshim/util.h>

#include "containerd/cgroups/v1/metrics.pb-c.h"
#include "containerd/cgroups/v2/metrics.pb-c.h"
#include "cgroups.h"
#include "model.h"

#include <cmocka.h>

#ifndef CGROUP_FIXTURES
#error CGROUP_FIXTURES must be defined
#endif

static char *
fixture_text(const char *rel)
{
  cshim_autofree char *path = NULL;
  cshim_error_t err = NULL;
  char *text = NULL;

  cshim_xasprintf(&path, "%s/%s", CGROUP_FIXTURES, rel);
  if (task_cgroup_read_file(path, &text, &err) < 0)
    fail_msg("%s", err->msg);
  return text;
}

static char *
fixture_dir(const char *rel)
{
  char *path;
  cshim_xasprintf(&path, "%s/%s", CGROUP_FIXTURES, rel);
  return path;
}

static void
test_cgroup_parse_v1_uses_each_controllers_mount(void **state)
{
  cshim_autofree char *proc = fixture_text("v1/proc-cgroup");
  cshim_autofree char *mi = fixture_text("v1/mountinfo");
  task_cgroup_t *cg = NULL;
  cshim_error_t err = NULL;
  (void)state;

  assert_int_equal(task_cgroup_parse(proc, mi, false, &cg, &err), 0);
  assert_false(cg->unified);
  assert_null(cg->dir);
  assert_string_equal(cg->v1[TASK_CGROUP_MEMORY], "/sys/fs/cgroup/memory/ns1/c1");
  /* a co-mounted hierarchy serves both controllers */
  assert_string_equal(cg->v1[TASK_CGROUP_CPU], "/sys/fs/cgroup/cpu,cpuacct/ns1/c1");
  assert_string_equal(cg->v1[TASK_CGROUP_CPUACCT], "/sys/fs/cgroup/cpu,cpuacct/ns1/c1");
  assert_string_equal(cg->v1[TASK_CGROUP_BLKIO], "/sys/fs/cgroup/blkio/ns1/c1");
  /* a mount of a sub-cgroup (root /ns1) at an escaped path */
  assert_string_equal(cg->v1[TASK_CGROUP_PIDS], "/mnt/pids dir/c1");
  /* listed in /proc/<pid>/cgroup but not mounted */
  assert_null(cg->v1[TASK_CGROUP_HUGETLB]);
  assert_string_equal(task_cgroup_memory_dir(cg), "/sys/fs/cgroup/memory/ns1/c1");
  task_cgroup_free(cg);
}

static void
test_cgroup_parse_v2_takes_the_unified_line(void **state)
{
  cshim_autofree char *proc = fixture_text("v2/proc-cgroup");
  cshim_autofree char *mi = fixture_text("v2/mountinfo");
  task_cgroup_t *cg = NULL;
  cshim_error_t err = NULL;
  (void)state;

  assert_int_equal(task_cgroup_parse(proc, mi, true, &cg, &err), 0);
  assert_true(cg->unified);
  assert_string_equal(cg->dir, "/sys/fs/cgroup/system.slice/cshim-c2.scope");
  assert_string_equal(task_cgroup_memory_dir(cg), cg->dir);
  task_cgroup_free(cg);
}

static void
test_cgroup_parse_hybrid_host_reads_v1_and_ignores_unified(void **state)
{
  /* this VM's layout: v1 controllers plus a cgroup2 at /sys/fs/cgroup/unified */
  cshim_autofree char *proc = fixture_text("v1/proc-cgroup");
  cshim_autofree char *mi = fixture_text("v1/mountinfo");
  task_cgroup_t *cg = NULL;
  cshim_error_t err = NULL;
  (void)state;

  assert_int_equal(task_cgroup_parse(proc, mi, false, &cg, &err), 0);
  assert_null(cg->dir);
  task_cgroup_free(cg);
  /* asked for v2 on the same text: the "0::/" line and the cgroup2 mount are used */
  assert_int_equal(task_cgroup_parse(proc, mi, true, &cg, &err), 0);
  assert_string_equal(cg->dir, "/sys/fs/cgroup/unified");
  task_cgroup_free(cg);
}

static void
test_cgroup_parse_without_a_match_is_not_found(void **state)
{
  cshim_autofree char *mi = fixture_text("v2/mountinfo");
  task_cgroup_t *cg = NULL;
  cshim_error_t err = NULL;
  (void)state;

  assert_int_equal(task_cgroup_parse("9:memory:/x\n", mi, false, &cg, &err), -ENOENT);
  assert_null(cg);
  cshim_error_release(&err);
  assert_int_equal(task_cgroup_parse("", mi, true, &cg, &err), -ENOENT);
  cshim_error_release(&err);
}

static void
test_cgroup_kv_reads_flat_keyed_files(void **state)
{
  uint64_t v = 0;
  (void)state;
  assert_int_equal(task_cgroup_kv("oom 1\noom_kill 7\n", "oom_kill", &v), 0);
  assert_int_equal(v, 7);
  assert_int_equal(task_cgroup_kv("oom 1\noom_kill 7\n", "oom", &v), 0);
  assert_int_equal(v, 1);
  assert_int_equal(task_cgroup_kv("oom 1\n", "max", &v), -ENOENT);
  assert_int_equal(task_cgroup_kv("max x\n", "max", &v), -EINVAL);
}

static task_cgroup_t *
v1_fixture(void)
{
  task_cgroup_t *cg = cshim_xmalloc0(sizeof *cg);
  cg->v1[TASK_CGROUP_MEMORY] = fixture_dir("v1/memory");
  cg->v1[TASK_CGROUP_CPU] = fixture_dir("v1/cpu");
  cg->v1[TASK_CGROUP_CPUACCT] = fixture_dir("v1/cpuacct");
  cg->v1[TASK_CGROUP_PIDS] = fixture_dir("v1/pids");
  cg->v1[TASK_CGROUP_BLKIO] = fixture_dir("v1/blkio");
  cg->v1[TASK_CGROUP_HUGETLB] = fixture_dir("v1/hugetlb");
  cg->partitions = fixture_dir("v1/partitions");
  return cg;
}

static Io__Containerd__Cgroups__V1__Metrics *
v1_stats(task_cgroup_t *cg)
{
  Google__Protobuf__Any any;
  cshim_error_t err = NULL;
  Io__Containerd__Cgroups__V1__Metrics *m;

  if (task_cgroup_stats(cg, &any, &err) < 0)
    fail_msg("%s", err->msg);
  assert_string_equal(any.type_url, "io.containerd.cgroups.v1.Metrics");
  m = io__containerd__cgroups__v1__metrics__unpack(NULL, any.value.len, any.value.data);
  free(any.value.data);
  assert_non_null(m);
  return m;
}

static void
test_cgroup_v1_stats_from_fixture(void **state)
{
  task_cgroup_t *cg = v1_fixture();
  Io__Containerd__Cgroups__V1__Metrics *m = v1_stats(cg);
  (void)state;

  assert_non_null(m->memory);
  assert_int_equal(m->memory->cache, 11);
  assert_int_equal(m->memory->rss, 12);
  assert_int_equal(m->memory->pg_pg_in, 17);
  assert_int_equal(m->memory->pg_maj_fault, 20);
  assert_int_equal(m->memory->hierarchical_memory_limit, 26);
  assert_int_equal(m->memory->hierarchical_swap_limit, 27);
  assert_int_equal(m->memory->total_cache, 28);
  assert_int_equal(m->memory->total_pg_pg_out, 35);
  assert_int_equal(m->memory->total_unevictable, 42);
  assert_int_equal(m->memory->usage->usage, 1000);
  assert_int_equal(m->memory->usage->max, 2000);
  assert_int_equal(m->memory->usage->failcnt, 3);
  assert_int_equal(m->memory->usage->limit, 16777216);
  assert_int_equal(m->memory->swap->usage, 1100);
  assert_int_equal(m->memory->swap->failcnt, 4);
  assert_int_equal(m->memory->kernel->max, 2200);
  assert_int_equal(m->memory->kernel_tcp->usage, 1300);
  assert_int_equal(m->memory->kernel_tcp->limit, 9223372036854771712ull);
  assert_non_null(m->memory_oom_control);
  assert_int_equal(m->memory_oom_control->under_oom, 1);
  assert_int_equal(m->memory_oom_control->oom_kill, 2);

  assert_non_null(m->cpu);
  assert_int_equal(m->cpu->usage->total, 123456789);
  /* USER_HZ ticks to nanoseconds */
  assert_int_equal(m->cpu->usage->user, 150ull * (1000000000ull / (uint64_t)sysconf(_SC_CLK_TCK)));
  assert_int_equal(m->cpu->usage->kernel, 50ull * (1000000000ull / (uint64_t)sysconf(_SC_CLK_TCK)));
  assert_int_equal(m->cpu->usage->n_per_cpu, 3);
  assert_int_equal(m->cpu->usage->per_cpu[0], 100000000);
  assert_int_equal(m->cpu->usage->per_cpu[1], 23456789);
  assert_int_equal(m->cpu->usage->per_cpu[2], 0);
  assert_int_equal(m->cpu->throttling->periods, 10);
  assert_int_equal(m->cpu->throttling->throttled_periods, 3);
  assert_int_equal(m->cpu->throttling->throttled_time, 4500);

  assert_non_null(m->pids);
  assert_int_equal(m->pids->current, 7);
  assert_int_equal(m->pids->limit, 0); /* "max" */

  assert_non_null(m->blkio);
  assert_int_equal(m->blkio->n_io_serviced_recursive, 6); /* "Total" line skipped */
  assert_string_equal(m->blkio->io_serviced_recursive[0]->op, "Read");
  assert_string_equal(m->blkio->io_serviced_recursive[0]->device, "/dev/sda");
  assert_int_equal(m->blkio->io_serviced_recursive[0]->major, 8);
  assert_int_equal(m->blkio->io_serviced_recursive[0]->minor, 0);
  assert_int_equal(m->blkio->io_serviced_recursive[0]->value, 10);
  assert_string_equal(m->blkio->io_serviced_recursive[5]->op, "Total");
  assert_int_equal(m->blkio->io_serviced_recursive[5]->value, 30);
  assert_int_equal(m->blkio->n_io_service_bytes_recursive, 3);
  assert_int_equal(m->blkio->io_service_bytes_recursive[1]->value, 8192);
  assert_int_equal(m->blkio->n_sectors_recursive, 1);
  assert_string_equal(m->blkio->sectors_recursive[0]->op, "");
  assert_int_equal(m->blkio->sectors_recursive[0]->value, 24);
  assert_int_equal(m->blkio->n_io_time_recursive, 1);
  assert_int_equal(m->blkio->n_io_queued_recursive, 0);

  assert_int_equal(m->n_hugetlb, 1);
  assert_string_equal(m->hugetlb[0]->pagesize, "2MB");
  assert_int_equal(m->hugetlb[0]->usage, 2097152);
  assert_int_equal(m->hugetlb[0]->max, 4194304);
  assert_int_equal(m->hugetlb[0]->failcnt, 1);

  io__containerd__cgroups__v1__metrics__free_unpacked(m, NULL);
  task_cgroup_free(cg);
}

static void
test_cgroup_v1_blkio_falls_back_to_throttle_counters(void **state)
{
  task_cgroup_t *cg = v1_fixture();
  Io__Containerd__Cgroups__V1__Metrics *m;
  (void)state;

  /* no CFQ files (this machine's BFQ kernel): the memory dir has no blkio files at all */
  free(cg->v1[TASK_CGROUP_BLKIO]);
  cg->v1[TASK_CGROUP_BLKIO] = fixture_dir("v1/pids");
  m = v1_stats(cg);
  assert_non_null(m->blkio);
  assert_int_equal(m->blkio->n_io_serviced_recursive, 0);
  io__containerd__cgroups__v1__metrics__free_unpacked(m, NULL);

  /* the CFQ probe file missing, the throttle file present */
  cshim_autofree char *dir = NULL;
  char tmpl[] = "/tmp/cshim-blkio-XXXXXX";
  assert_non_null(mkdtemp(tmpl));
  cshim_xasprintf(&dir, "%s", tmpl);
  {
    char path[256];
    FILE *f;
    snprintf(path, sizeof path, "%s/blkio.throttle.io_serviced", dir);
    f = fopen(path, "w");
    assert_non_null(f);
    fputs("253:0 Read 99\n253:0 Write 1\nTotal 100\n", f);
    fclose(f);
  }
  free(cg->v1[TASK_CGROUP_BLKIO]);
  cg->v1[TASK_CGROUP_BLKIO] = cshim_xstrdup(dir);
  m = v1_stats(cg);
  assert_int_equal(m->blkio->n_io_serviced_recursive, 2);
  assert_string_equal(m->blkio->io_serviced_recursive[0]->device, "/dev/dm-0");
  assert_int_equal(m->blkio->io_serviced_recursive[0]->value, 99);
  io__containerd__cgroups__v1__metrics__free_unpacked(m, NULL);
  {
    char path[256];
    snprintf(path, sizeof path, "%s/blkio.throttle.io_serviced", dir);
    unlink(path);
    rmdir(dir);
  }
  task_cgroup_free(cg);
}

static void
test_cgroup_v1_missing_controllers_leave_sections_out(void **state)
{
  task_cgroup_t *cg = cshim_xmalloc0(sizeof *cg);
  Io__Containerd__Cgroups__V1__Metrics *m;
  (void)state;

  cg->v1[TASK_CGROUP_MEMORY] = fixture_dir("v1/memory");
  cg->partitions = fixture_dir("v1/partitions");
  m = v1_stats(cg);
  assert_non_null(m->memory);
  assert_null(m->cpu);
  assert_null(m->pids);
  assert_null(m->blkio);
  assert_int_equal(m->n_hugetlb, 0);
  io__containerd__cgroups__v1__metrics__free_unpacked(m, NULL);
  task_cgroup_free(cg);
}

static void
test_cgroup_v2_stats_from_fixture(void **state)
{
  task_cgroup_t *cg = cshim_xmalloc0(sizeof *cg);
  Io__Containerd__Cgroups__V2__Metrics *m;
  Google__Protobuf__Any any;
  cshim_error_t err = NULL;
  (void)state;

  cg->unified = true;
  cg->dir = fixture_dir("v2/container");
  if (task_cgroup_stats(cg, &any, &err) < 0)
    fail_msg("%s", err->msg);
  assert_string_equal(any.type_url, "io.containerd.cgroups.v2.Metrics");
  m = io__containerd__cgroups__v2__metrics__unpack(NULL, any.value.len, any.value.data);
  free(any.value.data);
  assert_non_null(m);

  assert_int_equal(m->pids->current, 3);
  assert_int_equal(m->pids->limit, 100);
  assert_int_equal(m->cpu->usage_usec, 5000);
  assert_int_equal(m->cpu->user_usec, 3000);
  assert_int_equal(m->cpu->system_usec, 2000);
  assert_int_equal(m->cpu->nr_periods, 40);
  assert_int_equal(m->cpu->nr_throttled, 4);
  assert_int_equal(m->cpu->throttled_usec, 800);

  assert_int_equal(m->memory->anon, 1);
  assert_int_equal(m->memory->file, 2);
  assert_int_equal(m->memory->kernel_stack, 3);
  assert_int_equal(m->memory->slab, 4);
  assert_int_equal(m->memory->sock, 5);
  assert_int_equal(m->memory->shmem, 6);
  assert_int_equal(m->memory->file_mapped, 7);
  assert_int_equal(m->memory->anon_thp, 10);
  assert_int_equal(m->memory->slab_unreclaimable, 17);
  assert_int_equal(m->memory->pgfault, 18);
  assert_int_equal(m->memory->workingset_refault, 20);
  assert_int_equal(m->memory->workingset_nodereclaim, 22);
  assert_int_equal(m->memory->pglazyfreed, 29);
  assert_int_equal(m->memory->thp_collapse_alloc, 31);
  assert_int_equal(m->memory->usage, 4096000);
  assert_int_equal(m->memory->usage_limit, 33554432);
  assert_int_equal(m->memory->swap_usage, 0);
  assert_true(m->memory->swap_limit == UINT64_MAX); /* "max" */

  assert_non_null(m->memory_events);
  assert_int_equal(m->memory_events->high, 1);
  assert_int_equal(m->memory_events->max, 5);
  assert_int_equal(m->memory_events->oom, 2);
  assert_int_equal(m->memory_events->oom_kill, 1);

  assert_int_equal(m->io->n_usage, 2);
  assert_int_equal(m->io->usage[0]->major, 8);
  assert_int_equal(m->io->usage[0]->minor, 16);
  assert_int_equal(m->io->usage[0]->rbytes, 1459200);
  assert_int_equal(m->io->usage[0]->wbytes, 314773504);
  assert_int_equal(m->io->usage[0]->rios, 192);
  assert_int_equal(m->io->usage[0]->wios, 353);
  assert_int_equal(m->io->usage[1]->major, 254);

  assert_int_equal(m->rdma->n_current, 1);
  assert_string_equal(m->rdma->current[0]->device, "mlx4_0");
  assert_int_equal(m->rdma->current[0]->hca_handles, 2);
  assert_int_equal(m->rdma->current[0]->hca_objects, 2000);
  assert_int_equal(m->rdma->limit[0]->hca_handles, UINT32_MAX);

  assert_int_equal(m->n_hugetlb, 1);
  assert_string_equal(m->hugetlb[0]->pagesize, "2MB");
  assert_true(m->hugetlb[0]->max == UINT64_MAX);

  io__containerd__cgroups__v2__metrics__free_unpacked(m, NULL);
  task_cgroup_free(cg);
}

static void
test_cgroup_stats_of_a_removed_cgroup_is_not_found(void **state)
{
  task_cgroup_t *cg = cshim_xmalloc0(sizeof *cg);
  Google__Protobuf__Any any;
  cshim_error_t err = NULL;
  (void)state;

  cg->unified = true;
  cg->dir = cshim_xstrdup("/nonexistent/cgroup");
  assert_int_equal(task_cgroup_stats(cg, &any, &err), -ENOENT);
  cshim_error_release(&err);
  cg->unified = false;
  cg->v1[TASK_CGROUP_MEMORY] = cshim_xstrdup("/nonexistent/memory");
  assert_int_equal(task_cgroup_stats(cg, &any, &err), -ENOENT);
  cshim_error_release(&err);
  task_cgroup_free(cg);
}

/* ---- freezer and processes, on temporary trees ---- */

static void
put(const char *dir, const char *name, const char *text)
{
  char path[512];
  FILE *f;

  snprintf(path, sizeof path, "%s/%s", dir, name);
  f = fopen(path, "w");
  assert_non_null(f);
  fputs(text, f);
  fclose(f);
}

static char *
temp_tree(void)
{
  char tmpl[] = "/tmp/cshim-cg-XXXXXX";
  assert_non_null(mkdtemp(tmpl));
  return cshim_xstrdup(tmpl);
}

static int
rm_cb(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
  (void)st;
  (void)ftw;
  return flag == FTW_DP ? rmdir(path) : unlink(path);
}

static void
remove_tree(const char *dir)
{
  assert_int_equal(nftw(dir, rm_cb, 16, FTW_DEPTH | FTW_PHYS), 0);
}

static Io__Containerd__Cgroups__V2__Metrics *
v2_stats_of(task_cgroup_t *cg)
{
  Google__Protobuf__Any any;
  cshim_error_t err = NULL;
  Io__Containerd__Cgroups__V2__Metrics *m;

  if (task_cgroup_stats(cg, &any, &err) < 0)
    fail_msg("%s", err->msg);
  m = io__containerd__cgroups__v2__metrics__unpack(NULL, any.value.len, any.value.data);
  free(any.value.data);
  assert_non_null(m);
  return m;
}

static void
test_cgroup_stats_keeps_its_files_open_and_reads_them_again(void **state)
{
  cshim_autofree char *dir = temp_tree();
  task_cgroup_t *cg = cshim_xmalloc0(sizeof *cg);
  Io__Containerd__Cgroups__V2__Metrics *m;
  size_t before = task_cgroup_kept_files(), kept;
  (void)state;

  cg->unified = true;
  cg->dir = cshim_xstrdup(dir);
  put(dir, "pids.current", "3\n");
  put(dir, "memory.stat", "anon 100\nfile 200\n");
  m = v2_stats_of(cg);
  assert_int_equal(m->pids->current, 3);
  assert_int_equal(m->memory->anon, 100);
  io__containerd__cgroups__v2__metrics__free_unpacked(m, NULL);
  kept = task_cgroup_kept_files() - before;
  assert_int_equal(kept, 2); /* the two files there; the absent ones hold nothing */
  /* new values (same files, rewritten in place) are read through the same descriptors */
  put(dir, "pids.current", "5\n");
  put(dir, "memory.stat", "anon 101\nfile 200\n");
  m = v2_stats_of(cg);
  assert_int_equal(m->pids->current, 5);
  assert_int_equal(m->memory->anon, 101);
  io__containerd__cgroups__v2__metrics__free_unpacked(m, NULL);
  assert_int_equal(task_cgroup_kept_files() - before, kept);
  /* an absent file is not looked for again at once (no open per call for it) */
  put(dir, "pids.max", "9\n");
  m = v2_stats_of(cg);
  assert_int_equal(m->pids->limit, 0);
  io__containerd__cgroups__v2__metrics__free_unpacked(m, NULL);
  /* closed with the cgroup */
  task_cgroup_free(cg);
  assert_int_equal(task_cgroup_kept_files(), before);
  remove_tree(dir);
}

/* On a real cgroup (as root): a removed cgroup's kept files fail with ENODEV; Stats then says
   NotFound and holds no descriptor. */
static void
test_cgroup_stats_of_a_real_cgroup_removed_later_is_not_found(void **state)
{
  task_cgroup_t *cg = cshim_xmalloc0(sizeof *cg);
  Google__Protobuf__Any any;
  cshim_error_t err = NULL;
  struct statfs sfs;
  char dir[128];
  size_t before = task_cgroup_kept_files();
  (void)state;

  if (statfs("/sys/fs/cgroup", &sfs) < 0) {
    free(cg);
    skip();
  }
  cg->unified = sfs.f_type == CGROUP2_SUPER_MAGIC;
  snprintf(dir, sizeof dir,
           cg->unified ? "/sys/fs/cgroup/cshim-unit-%d" : "/sys/fs/cgroup/pids/cshim-unit-%d",
           (int)getpid());
  if (mkdir(dir, 0700) < 0) {
    free(cg);
    skip(); /* not root, or no such hierarchy */
  }
  if (cg->unified)
    cg->dir = cshim_xstrdup(dir);
  else
    cg->v1[TASK_CGROUP_PIDS] = cshim_xstrdup(dir);
  assert_int_equal(task_cgroup_stats(cg, &any, &err), 0);
  free(any.value.data);
  assert_true(task_cgroup_kept_files() > before);
  assert_int_equal(rmdir(dir), 0);
  assert_int_equal(task_cgroup_stats(cg, &any, &err), -ENOENT);
  assert_non_null(strstr(err->msg, "does not exist"));
  cshim_error_release(&err);
  assert_int_equal(task_cgroup_kept_files(), before);
  task_cgroup_free(cg);
}

static void
test_cgroup_load_of_this_process_reads_real_values(void **state)
{
  task_cgroup_t *cg = NULL;
  cshim_error_t err = NULL;
  Google__Protobuf__Any any;
  (void)state;

  if (task_cgroup_load(getpid(), &cg, &err) < 0) {
    cshim_error_release(&err);
    skip(); /* no cgroup filesystem here */
  }
  assert_int_equal(task_cgroup_stats(cg, &any, &err), 0);
  if (cg->unified) {
    Io__Containerd__Cgroups__V2__Metrics *m =
        io__containerd__cgroups__v2__metrics__unpack(NULL, any.value.len, any.value.data);
    assert_non_null(m);
    assert_true(m->cpu->usage_usec > 0);
    io__containerd__cgroups__v2__metrics__free_unpacked(m, NULL);
  } else {
    Io__Containerd__Cgroups__V1__Metrics *m =
        io__containerd__cgroups__v1__metrics__unpack(NULL, any.value.len, any.value.data);
    assert_non_null(m);
    assert_non_null(m->memory);
    assert_true(m->memory->usage->usage > 0);
    assert_non_null(m->cpu);
    assert_true(m->cpu->usage->total > 0);
    assert_true(m->cpu->usage->n_per_cpu > 0);
    io__containerd__cgroups__v1__metrics__free_unpacked(m, NULL);
  }
  free(any.value.data);
  task_cgroup_free(cg);
}

static task_freezer_t
freezer(task_cgroup_t *cg)
{
  task_freezer_t fz = (task_freezer_t)-1;
  cshim_error_t err = NULL;
  if (task_cgroup_freezer_state(cg, &fz, &err) < 0)
    fail_msg("%s", err->msg);
  return fz;
}

static void
test_cgroup_v1_freezer_state_reads_freezer_state(void **state)
{
  cshim_autofree char *dir = temp_tree();
  task_cgroup_t *cg = cshim_xmalloc0(sizeof *cg);
  task_freezer_t fz;
  cshim_error_t err = NULL;
  (void)state;

  /* no freezer hierarchy: not found, nothing guessed */
  assert_int_equal(task_cgroup_freezer_state(cg, &fz, &err), -ENOENT);
  cshim_error_release(&err);
  cg->v1[TASK_CGROUP_FREEZER] = cshim_xstrdup(dir);
  put(dir, "freezer.state", "THAWED\n");
  assert_int_equal(freezer(cg), TASK_FREEZER_THAWED);
  put(dir, "freezer.state", "FREEZING\n");
  assert_int_equal(freezer(cg), TASK_FREEZER_FREEZING);
  put(dir, "freezer.state", "FROZEN\n");
  assert_int_equal(freezer(cg), TASK_FREEZER_FROZEN);
  put(dir, "freezer.state", "MELTED\n");
  assert_int_equal(task_cgroup_freezer_state(cg, &fz, &err), -EIO);
  assert_non_null(strstr(err->msg, "says `MELTED`"));
  cshim_error_release(&err);
  remove_tree(dir);
  /* the cgroup is gone */
  assert_int_equal(task_cgroup_freezer_state(cg, &fz, &err), -ENOENT);
  cshim_error_release(&err);
  task_cgroup_free(cg);
}

static void
test_cgroup_v2_freezer_state_reads_freeze_and_events(void **state)
{
  cshim_autofree char *dir = temp_tree();
  task_cgroup_t *cg = cshim_xmalloc0(sizeof *cg);
  task_freezer_t fz;
  cshim_error_t err = NULL;
  (void)state;

  cg->unified = true;
  cg->dir = cshim_xstrdup(dir);
  /* a kernel without cgroup.freeze (before 5.2) has no freezer */
  assert_int_equal(task_cgroup_freezer_state(cg, &fz, &err), -ENOENT);
  cshim_error_release(&err);
  put(dir, "cgroup.freeze", "0\n");
  put(dir, "cgroup.events", "populated 1\nfrozen 0\n");
  assert_int_equal(freezer(cg), TASK_FREEZER_THAWED);
  put(dir, "cgroup.freeze", "1\n");
  assert_int_equal(freezer(cg), TASK_FREEZER_FREEZING);
  put(dir, "cgroup.events", "populated 1\nfrozen 1\n");
  assert_int_equal(freezer(cg), TASK_FREEZER_FROZEN);
  remove_tree(dir);
  task_cgroup_free(cg);
}

static void
test_cgroup_pids_lists_the_cgroup_and_its_children(void **state)
{
  cshim_autofree char *dir = temp_tree();
  cshim_autofree char *sub = NULL;
  cshim_autofree char *subsub = NULL;
  task_cgroup_t *cg = cshim_xmalloc0(sizeof *cg);
  cshim_autofree pid_t *pids = NULL;
  cshim_error_t err = NULL;
  size_t n = 0;
  (void)state;

  cshim_xasprintf(&sub, "%s/init.scope", dir);
  cshim_xasprintf(&subsub, "%s/inner", sub);
  assert_int_equal(mkdir(sub, 0755), 0);
  assert_int_equal(mkdir(subsub, 0755), 0);
  put(dir, "cgroup.procs", "10\n11\n");
  put(sub, "cgroup.procs", "");
  put(subsub, "cgroup.procs", "12"); /* no trailing newline */
  /* v1: the pids hierarchy first; other hierarchies are not read */
  cg->v1[TASK_CGROUP_PIDS] = cshim_xstrdup(dir);
  cg->v1[TASK_CGROUP_MEMORY] = cshim_xstrdup("/nonexistent");
  assert_int_equal(task_cgroup_pids(cg, &pids, &n, &err), 0);
  assert_int_equal(n, 3);
  assert_int_equal(pids[0], 10);
  assert_int_equal(pids[1], 11);
  assert_int_equal(pids[2], 12);
  free(cshim_steal_pointer(&pids));
  /* v1 without a pids hierarchy: the next one the container has */
  free(cg->v1[TASK_CGROUP_PIDS]);
  cg->v1[TASK_CGROUP_PIDS] = NULL;
  free(cg->v1[TASK_CGROUP_MEMORY]);
  cg->v1[TASK_CGROUP_MEMORY] = NULL;
  cg->v1[TASK_CGROUP_FREEZER] = cshim_xstrdup(sub);
  assert_int_equal(task_cgroup_pids(cg, &pids, &n, &err), 0);
  assert_int_equal(n, 1);
  assert_int_equal(pids[0], 12);
  free(cshim_steal_pointer(&pids));
  /* v2: the unified directory */
  cg->unified = true;
  cg->dir = cshim_xstrdup(dir);
  assert_int_equal(task_cgroup_pids(cg, &pids, &n, &err), 0);
  assert_int_equal(n, 3);
  free(cshim_steal_pointer(&pids));
  /* gone: not found, so the caller can ask the runtime */
  remove_tree(dir);
  assert_int_equal(task_cgroup_pids(cg, &pids, &n, &err), -ENOENT);
  assert_non_null(strstr(err->msg, "does not exist"));
  cshim_error_release(&err);
  assert_null(pids);
  task_cgroup_free(cg);
}

int
main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_cgroup_parse_v1_uses_each_controllers_mount),
      cmocka_unit_test(test_cgroup_parse_v2_takes_the_unified_line),
      cmocka_unit_test(test_cgroup_parse_hybrid_host_reads_v1_and_ignores_unified),
      cmocka_unit_test(test_cgroup_parse_without_a_match_is_not_found),
      cmocka_unit_test(test_cgroup_kv_reads_flat_keyed_files),
      cmocka_unit_test(test_cgroup_v1_stats_from_fixture),
      cmocka_unit_test(test_cgroup_v1_blkio_falls_back_to_throttle_counters),
      cmocka_unit_test(test_cgroup_v1_missing_controllers_leave_sections_out),
      cmocka_unit_test(test_cgroup_v2_stats_from_fixture),
      cmocka_unit_test(test_cgroup_stats_of_a_removed_cgroup_is_not_found),
      cmocka_unit_test(test_cgroup_stats_keeps_its_files_open_and_reads_them_again),
      cmocka_unit_test(test_cgroup_stats_of_a_real_cgroup_removed_later_is_not_found),
      cmocka_unit_test(test_cgroup_load_of_this_process_reads_real_values),
      cmocka_unit_test(test_cgroup_v1_freezer_state_reads_freezer_state),
      cmocka_unit_test(test_cgroup_v2_freezer_state_reads_freeze_and_events),
      cmocka_unit_test(test_cgroup_pids_lists_the_cgroup_and_its_children),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
