// SPDX-License-Identifier: Apache-2.0
// Stats of a gVisor (runsc) container whose sandbox runs without a cgroup of its own
// (--ignore-cgroups): the workload's usage as the sandbox's kernel counts it, from
// `runsc events --stats <id>` (one JSON object in the shape of runc's stats event), mapped to the
// cgroups Metrics message containerd's runc shim would send on this host: v2 on a cgroup2-only
// host, v1 otherwise (as gVisor's own shim maps it, its v2 CPU figures in microseconds).
//
// runsc's memory usage and process count are the sandbox's own accounting. Its CPU figure is
// not: runsc 2022-12 takes the CPU usage of the host cgroup the sandbox sits in and gives a
// single container all of it, and with --ignore-cgroups that cgroup is the shim's (the host's
// root cgroup on a bare host: every process on the machine). So the CPU comes from the shim
// itself: the CPU time of the sandbox process and everything below it (its ptrace stubs run the
// workload), read from procfs like the cgroup files in cgroups.c (in-memory counters, read
// synchronously on the loop, bounded).
#define _GNU_SOURCE
#include "runsc_stats.h"

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <jansson.h>
#include <linux/magic.h>

#include <cshim/util.h>

#include "cgroups.h"
#include "model.h"
#include "op.h"

#include "containerd/cgroups/v1/metrics.pb-c.h"
#include "containerd/cgroups/v2/metrics.pb-c.h"
#include "containerd/task/v2/shim.pb-c.h"

/* ---- the JSON ---- */

/* parent[key] as an object: NULL when absent or null; EINVAL when something else. */
static int
get_obj(json_t *parent, const char *key, json_t **out, cshim_error_t *err)
{
  json_t *v = parent ? json_object_get(parent, key) : NULL;

  *out = NULL;
  if (v == NULL || json_is_null(v))
    return 0;
  if (!json_is_object(v))
    return cshim_error_make(err, EINVAL, "runsc stats: `%s` is not an object", key);
  *out = v;
  return 0;
}

/* A count: a non-negative integer (a whole double when the document had integers beyond
   INT64_MAX and was read with JSON_DECODE_INT_AS_REAL). */
static int
count_value(json_t *v, const char *key, uint64_t *out, cshim_error_t *err)
{
  if (json_is_integer(v) && json_integer_value(v) >= 0) {
    *out = (uint64_t)json_integer_value(v);
    return 0;
  }
  if (json_is_real(v)) {
    double d = json_real_value(v);
    /* every double from 2^53 up is whole; below, a whole one survives the round trip */
    if (d >= 18446744073709551615.0) {
      *out = UINT64_MAX;
      return 0;
    }
    if (d >= 0 && (double)(uint64_t)d == d) {
      *out = (uint64_t)d;
      return 0;
    }
  }
  return cshim_error_make(err, EINVAL, "runsc stats: `%s` is not a count", key);
}

/* parent[key] as a count; 0 when parent or the key is absent (runsc omits zero values). */
static int
get_count(json_t *parent, const char *key, uint64_t *out, cshim_error_t *err)
{
  json_t *v = parent ? json_object_get(parent, key) : NULL;

  *out = 0;
  if (v == NULL || json_is_null(v))
    return 0;
  return count_value(v, key, out, err);
}

/* What runsc reports, in runc's terms (nanoseconds, bytes). */
typedef struct
{
  uint64_t total, kernel, user;
  uint64_t *percpu;
  size_t n_percpu;
  uint64_t periods, throttled_periods, throttled_time;
} runsc_cpu_t;

typedef struct
{
  uint64_t limit, usage, max, failcnt;
} runsc_mem_entry_t;

typedef struct
{
  runsc_cpu_t cpu;
  uint64_t cache;
  runsc_mem_entry_t usage, swap, kernel, kernel_tcp;
  uint64_t pids_current, pids_limit;
} runsc_stats_t;

static int
read_entry(json_t *memory, const char *key, runsc_mem_entry_t *e, cshim_error_t *err)
{
  json_t *o;

  if (get_obj(memory, key, &o, err) < 0 || get_count(o, "limit", &e->limit, err) < 0 ||
      get_count(o, "usage", &e->usage, err) < 0 || get_count(o, "max", &e->max, err) < 0 ||
      get_count(o, "failcnt", &e->failcnt, err) < 0)
    return -EINVAL;
  return 0;
}

static int
read_cpu(json_t *data, runsc_cpu_t *cpu, cshim_error_t *err)
{
  json_t *o, *usage, *throttling, *percpu;

  if (get_obj(data, "cpu", &o, err) < 0 || get_obj(o, "usage", &usage, err) < 0 ||
      get_obj(o, "throttling", &throttling, err) < 0)
    return -EINVAL;
  if (get_count(usage, "total", &cpu->total, err) < 0 ||
      get_count(usage, "kernel", &cpu->kernel, err) < 0 ||
      get_count(usage, "user", &cpu->user, err) < 0 ||
      get_count(throttling, "periods", &cpu->periods, err) < 0 ||
      get_count(throttling, "throttledPeriods", &cpu->throttled_periods, err) < 0 ||
      get_count(throttling, "throttledTime", &cpu->throttled_time, err) < 0)
    return -EINVAL;
  percpu = usage ? json_object_get(usage, "percpu") : NULL;
  if (percpu == NULL || json_is_null(percpu))
    return 0;
  if (!json_is_array(percpu))
    return cshim_error_make(err, EINVAL, "runsc stats: `percpu` is not an array");
  if (json_array_size(percpu) == 0)
    return 0;
  cpu->percpu = cshim_xmalloc(json_array_size(percpu) * sizeof(uint64_t));
  for (size_t i = 0; i < json_array_size(percpu); i++)
    if (count_value(json_array_get(percpu, i), "percpu", &cpu->percpu[cpu->n_percpu++], err) < 0)
      return -EINVAL;
  return 0;
}

static int
read_stats(json_t *root, runsc_stats_t *s, cshim_error_t *err)
{
  json_t *type, *data, *memory, *pids;

  if (!json_is_object(root))
    return cshim_error_make(err, EINVAL, "runsc stats: not a JSON object");
  type = json_object_get(root, "type");
  if (!json_is_string(type) || strcmp(json_string_value(type), "stats") != 0)
    return cshim_error_make(err, EINVAL, "runsc stats: not a stats event");
  if (get_obj(root, "data", &data, err) < 0)
    return -EINVAL;
  if (data == NULL)
    return cshim_error_make(err, EINVAL, "runsc stats: no `data`");
  if (read_cpu(data, &s->cpu, err) < 0 || get_obj(data, "memory", &memory, err) < 0 ||
      get_count(memory, "cache", &s->cache, err) < 0 ||
      read_entry(memory, "usage", &s->usage, err) < 0 ||
      read_entry(memory, "swap", &s->swap, err) < 0 ||
      read_entry(memory, "kernel", &s->kernel, err) < 0 ||
      read_entry(memory, "kernelTCP", &s->kernel_tcp, err) < 0 ||
      get_obj(data, "pids", &pids, err) < 0 ||
      get_count(pids, "current", &s->pids_current, err) < 0 ||
      get_count(pids, "limit", &s->pids_limit, err) < 0)
    return -EINVAL;
  return 0;
}

/* ---- the Metrics messages ---- */

static void
pack(const ProtobufCMessage *msg, const char *type_url, Google__Protobuf__Any *out)
{
  google__protobuf__any__init(out);
  out->type_url = (char *)type_url;
  out->value.len = protobuf_c_message_get_packed_size(msg);
  out->value.data = cshim_xmalloc(out->value.len + 1);
  protobuf_c_message_pack(msg, out->value.data);
}

static void
v1_entry(Io__Containerd__Cgroups__V1__MemoryEntry *m, const runsc_mem_entry_t *e)
{
  io__containerd__cgroups__v1__memory_entry__init(m);
  m->limit = e->limit;
  m->usage = e->usage;
  m->max = e->max;
  m->failcnt = e->failcnt;
}

static void
to_v1(const runsc_stats_t *s, Google__Protobuf__Any *out)
{
  Io__Containerd__Cgroups__V1__Metrics m = IO__CONTAINERD__CGROUPS__V1__METRICS__INIT;
  Io__Containerd__Cgroups__V1__CPUStat cpu = IO__CONTAINERD__CGROUPS__V1__CPUSTAT__INIT;
  Io__Containerd__Cgroups__V1__CPUUsage usage = IO__CONTAINERD__CGROUPS__V1__CPUUSAGE__INIT;
  Io__Containerd__Cgroups__V1__Throttle thr = IO__CONTAINERD__CGROUPS__V1__THROTTLE__INIT;
  Io__Containerd__Cgroups__V1__MemoryStat mem = IO__CONTAINERD__CGROUPS__V1__MEMORY_STAT__INIT;
  Io__Containerd__Cgroups__V1__MemoryEntry mu, ms, mk, mt;
  Io__Containerd__Cgroups__V1__PidsStat pids = IO__CONTAINERD__CGROUPS__V1__PIDS_STAT__INIT;

  usage.total = s->cpu.total;
  usage.kernel = s->cpu.kernel;
  usage.user = s->cpu.user;
  usage.n_per_cpu = s->cpu.n_percpu;
  usage.per_cpu = s->cpu.percpu;
  thr.periods = s->cpu.periods;
  thr.throttled_periods = s->cpu.throttled_periods;
  thr.throttled_time = s->cpu.throttled_time;
  cpu.usage = &usage;
  cpu.throttling = &thr;
  mem.cache = s->cache;
  v1_entry(&mu, &s->usage);
  v1_entry(&ms, &s->swap);
  v1_entry(&mk, &s->kernel);
  v1_entry(&mt, &s->kernel_tcp);
  mem.usage = &mu;
  mem.swap = &ms;
  mem.kernel = &mk;
  mem.kernel_tcp = &mt;
  pids.current = s->pids_current;
  pids.limit = s->pids_limit;
  m.cpu = &cpu;
  m.memory = &mem;
  m.pids = &pids;
  pack(&m.base, TASK_CGROUPS_V1_METRICS_TYPE, out);
}

static void
to_v2(const runsc_stats_t *s, Google__Protobuf__Any *out)
{
  Io__Containerd__Cgroups__V2__Metrics m = IO__CONTAINERD__CGROUPS__V2__METRICS__INIT;
  Io__Containerd__Cgroups__V2__CPUStat cpu = IO__CONTAINERD__CGROUPS__V2__CPUSTAT__INIT;
  Io__Containerd__Cgroups__V2__MemoryStat mem = IO__CONTAINERD__CGROUPS__V2__MEMORY_STAT__INIT;
  Io__Containerd__Cgroups__V2__PidsStat pids = IO__CONTAINERD__CGROUPS__V2__PIDS_STAT__INIT;

  /* cgroup v2 counts CPU time in microseconds */
  cpu.usage_usec = s->cpu.total / 1000;
  cpu.user_usec = s->cpu.user / 1000;
  cpu.system_usec = s->cpu.kernel / 1000;
  cpu.nr_periods = s->cpu.periods;
  cpu.nr_throttled = s->cpu.throttled_periods;
  cpu.throttled_usec = s->cpu.throttled_time / 1000;
  mem.usage = s->usage.usage;
  mem.usage_limit = s->usage.limit;
  mem.swap_usage = s->swap.usage;
  mem.swap_limit = s->swap.limit;
  mem.slab = s->kernel.usage;
  mem.file = s->cache;
  pids.current = s->pids_current;
  pids.limit = s->pids_limit;
  m.cpu = &cpu;
  m.memory = &mem;
  m.pids = &pids;
  pack(&m.base, TASK_CGROUPS_V2_METRICS_TYPE, out);
}

int
task_runsc_stats_parse(const char *json, size_t len, bool unified, const task_runsc_cpu_t *cpu,
                       Google__Protobuf__Any *out, cshim_error_t *err)
{
  runsc_stats_t s = {0};
  json_error_t jerr;
  json_t *root;
  int ret;

  root = json_loadb(json, len, 0, &jerr);
  /* a count beyond INT64_MAX (runc prints 2^64-1 for "no limit"): read again as doubles */
  if (root == NULL)
    root = json_loadb(json, len, JSON_DECODE_INT_AS_REAL, &jerr);
  if (root == NULL)
    return cshim_error_make(err, EINVAL, "runsc stats: %d:%d: %s", jerr.line, jerr.column,
                            jerr.text);
  ret = read_stats(root, &s, err);
  json_decref(root);
  if (ret == 0) {
    if (cpu) {
      /* runsc's percpu and throttling belong to the same host cgroup as its total */
      s.cpu = (runsc_cpu_t){.total = cpu->user_ns + cpu->kernel_ns,
                            .user = cpu->user_ns,
                            .kernel = cpu->kernel_ns,
                            .percpu = s.cpu.percpu};
    }
    if (unified)
      to_v2(&s, out);
    else
      to_v1(&s, out);
  }
  free(s.cpu.percpu);
  return ret;
}

/* ---- the sandbox's CPU time from procfs ---- */

/* utime + stime + cutime + cstime (clock ticks) of /proc/<pid>/stat; user and kernel apart. */
static int
stat_ticks(pid_t pid, uint64_t *user, uint64_t *kernel, cshim_error_t *err)
{
  cshim_autofree char *path = NULL;
  cshim_autofree char *text = NULL;
  unsigned long long ut, st;
  long long cut, cst;
  const char *p;

  int ret;

  cshim_xasprintf(&path, "/proc/%d/stat", (int)pid);
  ret = task_cgroup_read_file(path, &text, err);
  if (ret < 0)
    return ret;
  /* the command name may hold spaces and parentheses: fields go on after the last ')' */
  p = strrchr(text, ')');
  if (p == NULL || sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu %lld %lld",
                          &ut, &st, &cut, &cst) != 4)
    return cshim_error_make(err, EINVAL, "`%s`: unexpected format", path);
  *user += ut + (cut > 0 ? (uint64_t)cut : 0);
  *kernel += st + (cst > 0 ? (uint64_t)cst : 0);
  return 0;
}

/* Append the children of every thread of pid to q (at most max in all); one `children` file is
   read per thread, while the budget in reads lasts. */
static void
add_children(pid_t pid, pid_t *q, size_t *n, size_t max, unsigned *reads)
{
  cshim_autofree char *dir_path = NULL;
  struct dirent *de;
  DIR *dir;

  cshim_xasprintf(&dir_path, "/proc/%d/task", (int)pid);
  dir = opendir(dir_path);
  if (dir == NULL)
    return;
  for (de = readdir(dir); de != NULL && *n < max && *reads != 0; de = readdir(dir)) {
    cshim_autofree char *path = NULL;
    cshim_autofree char *text = NULL;
    cshim_error_t err = NULL;
    char *p, *end;

    if (de->d_name[0] < '0' || de->d_name[0] > '9')
      continue;
    (*reads)--;
    cshim_xasprintf(&path, "%s/%s/children", dir_path, de->d_name);
    if (task_cgroup_read_file(path, &text, &err) < 0) {
      cshim_error_release(&err);
      continue;
    }
    for (p = text; *n < max;) {
      long v = strtol(p, &end, 10);
      if (end == p)
        break;
      if (v > 0)
        q[(*n)++] = (pid_t)v;
      p = end;
    }
  }
  closedir(dir);
}

int
task_runsc_tree_cpu(pid_t pid, task_runsc_cpu_t *out, cshim_error_t *err)
{
  cshim_autofree pid_t *q = cshim_xmalloc(TASK_RUNSC_MAX_TREE * sizeof(pid_t));
  uint64_t user = 0, kernel = 0;
  long tck = sysconf(_SC_CLK_TCK);
  unsigned reads = TASK_RUNSC_MAX_TREE_THREADS;
  size_t n = 1;

  if (tck <= 0)
    tck = 100;
  q[0] = pid;
  for (size_t i = 0; i < n; i++) {
    cshim_error_t e = NULL;
    if (stat_ticks(q[i], &user, &kernel, &e) < 0) {
      if (i == 0) {
        *err = e;
        return e->status;
      }
      cshim_error_release(&e); /* exited since its parent listed it */
      continue;
    }
    add_children(q[i], q, &n, TASK_RUNSC_MAX_TREE, &reads);
  }
  out->user_ns = user * (1000000000ull / (uint64_t)tck);
  out->kernel_ns = kernel * (1000000000ull / (uint64_t)tck);
  return 0;
}

bool
task_runsc_host_unified(void)
{
  struct statfs sfs;
  return statfs("/sys/fs/cgroup", &sfs) == 0 && sfs.f_type == CGROUP2_SUPER_MAGIC;
}

/* ---- Stats ---- */

static void
events_stats_done(task_op_t *op, cshim_runtime_result_t *result)
{
  task_container_t *c = op->container;
  Containerd__Task__V2__StatsResponse resp = CONTAINERD__TASK__V2__STATS_RESPONSE__INIT;
  task_runsc_cpu_t cpu = {0};
  Google__Protobuf__Any any;
  cshim_error_t err = NULL;

  if (result->error) {
    err = cshim_steal_pointer(&result->error);
    cshim_error_wrap(&err, "stats of `%s`", c->id);
    task_op_fail(op, &err);
    return;
  }
  /* The sandbox gone since runsc answered: no CPU time to tell (0), rather than runsc's. */
  if (c->init->pid > 0 && !c->init->exited && task_runsc_tree_cpu(c->init->pid, &cpu, &err) < 0) {
    cshim_log_debug(c->log, "CPU time of `%s`: %s", c->id, err->msg);
    cshim_error_release(&err);
  }
  if (task_runsc_stats_parse(result->out ? result->out : "", result->out_len,
                             task_runsc_host_unified(), &cpu, &any, &err) < 0) {
    cshim_error_wrap(&err, "stats of `%s`", c->id);
    task_op_fail(op, &err);
    return;
  }
  resp.stats = &any;
  task_op_reply(op, &resp.base);
  free(any.value.data);
}

void
task_runsc_stats(cshim_ttrpc_call_t *call, task_container_t *c)
{
  task_op_t *op = task_op_new(c, c->init, call, events_stats_done, "stats");
  cshim_error_t err = NULL;

  if (cshim_runtime_stats(c->rt, c->id, task_op_runtime_cb, op, &err) < 0)
    task_op_fail(op, &err);
}
