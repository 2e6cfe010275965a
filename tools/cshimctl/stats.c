// SPDX-License-Identifier: Apache-2.0
// Decoding the cgroup metrics of a Stats answer (see stats.h).
#define _GNU_SOURCE
#include "stats.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include <cshim/util.h>

#include "containerd/cgroups/v1/metrics.pb-c.h"
#include "containerd/cgroups/v2/metrics.pb-c.h"

#define V1_TYPE "io.containerd.cgroups.v1.Metrics"
#define V2_TYPE "io.containerd.cgroups.v2.Metrics"

/* In field-number order, as protobuf-c orders each descriptor's fields (a unit test checks each
   table's length against its descriptor). */
static const char *const v1_metrics_names[] = {"hugetlb", "pids",         "cpu",
                                               "memory",  "blkio",        "rdma",
                                               "network", "cgroup_stats", "memory_oom_control"};
static const char *const v1_hugetlb_stat_names[] = {"usage", "max", "failcnt", "pagesize"};
static const char *const v1_pids_stat_names[] = {"current", "limit"};
static const char *const v1_cpustat_names[] = {"usage", "throttling"};
static const char *const v1_cpuusage_names[] = {"total", "kernel", "user", "per_cpu"};
static const char *const v1_throttle_names[] = {"periods", "throttled_periods", "throttled_time"};
static const char *const v1_memory_stat_names[] = {"cache",
                                                   "rss",
                                                   "rss_huge",
                                                   "mapped_file",
                                                   "dirty",
                                                   "writeback",
                                                   "pg_pg_in",
                                                   "pg_pg_out",
                                                   "pg_fault",
                                                   "pg_maj_fault",
                                                   "inactive_anon",
                                                   "active_anon",
                                                   "inactive_file",
                                                   "active_file",
                                                   "unevictable",
                                                   "hierarchical_memory_limit",
                                                   "hierarchical_swap_limit",
                                                   "total_cache",
                                                   "total_rss",
                                                   "total_rss_huge",
                                                   "total_mapped_file",
                                                   "total_dirty",
                                                   "total_writeback",
                                                   "total_pg_pg_in",
                                                   "total_pg_pg_out",
                                                   "total_pg_fault",
                                                   "total_pg_maj_fault",
                                                   "total_inactive_anon",
                                                   "total_active_anon",
                                                   "total_inactive_file",
                                                   "total_active_file",
                                                   "total_unevictable",
                                                   "usage",
                                                   "swap",
                                                   "kernel",
                                                   "kernel_tcp"};
static const char *const v1_memory_entry_names[] = {"limit", "usage", "max", "failcnt"};
static const char *const v1_memory_oom_control_names[] = {"oom_kill_disable", "under_oom",
                                                          "oom_kill"};
static const char *const v1_blk_iostat_names[] = {
    "io_service_bytes_recursive", "io_serviced_recursive",  "io_queued_recursive",
    "io_service_time_recursive",  "io_wait_time_recursive", "io_merged_recursive",
    "io_time_recursive",          "sectors_recursive"};
static const char *const v1_blk_ioentry_names[] = {"op", "device", "major", "minor", "value"};
static const char *const v1_rdma_stat_names[] = {"current", "limit"};
static const char *const v1_rdma_entry_names[] = {"device", "hca_handles", "hca_objects"};
static const char *const v1_network_stat_names[] = {"name",       "rx_bytes",   "rx_packets",
                                                    "rx_errors",  "rx_dropped", "tx_bytes",
                                                    "tx_packets", "tx_errors",  "tx_dropped"};
static const char *const v1_cgroup_stats_names[] = {"nr_sleeping", "nr_running", "nr_stopped",
                                                    "nr_uninterruptible", "nr_io_wait"};
static const char *const v2_metrics_names[] = {"pids", "cpu",     "memory",       "rdma",
                                               "io",   "hugetlb", "memory_events"};
static const char *const v2_pids_stat_names[] = {"current", "limit"};
static const char *const v2_cpustat_names[] = {"usage_usec", "user_usec",    "system_usec",
                                               "nr_periods", "nr_throttled", "throttled_usec"};
static const char *const v2_memory_stat_names[] = {"anon",
                                                   "file",
                                                   "kernel_stack",
                                                   "slab",
                                                   "sock",
                                                   "shmem",
                                                   "file_mapped",
                                                   "file_dirty",
                                                   "file_writeback",
                                                   "anon_thp",
                                                   "inactive_anon",
                                                   "active_anon",
                                                   "inactive_file",
                                                   "active_file",
                                                   "unevictable",
                                                   "slab_reclaimable",
                                                   "slab_unreclaimable",
                                                   "pgfault",
                                                   "pgmajfault",
                                                   "workingset_refault",
                                                   "workingset_activate",
                                                   "workingset_nodereclaim",
                                                   "pgrefill",
                                                   "pgscan",
                                                   "pgsteal",
                                                   "pgactivate",
                                                   "pgdeactivate",
                                                   "pglazyfree",
                                                   "pglazyfreed",
                                                   "thp_fault_alloc",
                                                   "thp_collapse_alloc",
                                                   "usage",
                                                   "usage_limit",
                                                   "swap_usage",
                                                   "swap_limit"};
static const char *const v2_memory_events_names[] = {"low", "high", "max", "oom", "oom_kill"};
static const char *const v2_rdma_stat_names[] = {"current", "limit"};
static const char *const v2_rdma_entry_names[] = {"device", "hca_handles", "hca_objects"};
static const char *const v2_iostat_names[] = {"usage"};
static const char *const v2_ioentry_names[] = {"major",  "minor", "rbytes",
                                               "wbytes", "rios",  "wios"};
static const char *const v2_huge_tlb_stat_names[] = {"current", "max", "pagesize"};

#define NAMES(desc, names)                                                                         \
  {                                                                                                \
    &desc, names, CSHIM_N_ELEMENTS(names)                                                          \
  }

const pbjson_names_t ctl_stats_names[] = {
    NAMES(io__containerd__cgroups__v1__metrics__descriptor, v1_metrics_names),
    NAMES(io__containerd__cgroups__v1__hugetlb_stat__descriptor, v1_hugetlb_stat_names),
    NAMES(io__containerd__cgroups__v1__pids_stat__descriptor, v1_pids_stat_names),
    NAMES(io__containerd__cgroups__v1__cpustat__descriptor, v1_cpustat_names),
    NAMES(io__containerd__cgroups__v1__cpuusage__descriptor, v1_cpuusage_names),
    NAMES(io__containerd__cgroups__v1__throttle__descriptor, v1_throttle_names),
    NAMES(io__containerd__cgroups__v1__memory_stat__descriptor, v1_memory_stat_names),
    NAMES(io__containerd__cgroups__v1__memory_entry__descriptor, v1_memory_entry_names),
    NAMES(io__containerd__cgroups__v1__memory_oom_control__descriptor, v1_memory_oom_control_names),
    NAMES(io__containerd__cgroups__v1__blk_iostat__descriptor, v1_blk_iostat_names),
    NAMES(io__containerd__cgroups__v1__blk_ioentry__descriptor, v1_blk_ioentry_names),
    NAMES(io__containerd__cgroups__v1__rdma_stat__descriptor, v1_rdma_stat_names),
    NAMES(io__containerd__cgroups__v1__rdma_entry__descriptor, v1_rdma_entry_names),
    NAMES(io__containerd__cgroups__v1__network_stat__descriptor, v1_network_stat_names),
    NAMES(io__containerd__cgroups__v1__cgroup_stats__descriptor, v1_cgroup_stats_names),
    NAMES(io__containerd__cgroups__v2__metrics__descriptor, v2_metrics_names),
    NAMES(io__containerd__cgroups__v2__pids_stat__descriptor, v2_pids_stat_names),
    NAMES(io__containerd__cgroups__v2__cpustat__descriptor, v2_cpustat_names),
    NAMES(io__containerd__cgroups__v2__memory_stat__descriptor, v2_memory_stat_names),
    NAMES(io__containerd__cgroups__v2__memory_events__descriptor, v2_memory_events_names),
    NAMES(io__containerd__cgroups__v2__rdma_stat__descriptor, v2_rdma_stat_names),
    NAMES(io__containerd__cgroups__v2__rdma_entry__descriptor, v2_rdma_entry_names),
    NAMES(io__containerd__cgroups__v2__iostat__descriptor, v2_iostat_names),
    NAMES(io__containerd__cgroups__v2__ioentry__descriptor, v2_ioentry_names),
    NAMES(io__containerd__cgroups__v2__huge_tlb_stat__descriptor, v2_huge_tlb_stat_names),
    {NULL, NULL, 0},
};

/* The type name of a type URL: "io.containerd.cgroups.v2.Metrics" for that or
   "type.googleapis.com/io.containerd.cgroups.v2.Metrics". */
static const char *
type_name(const char *type_url)
{
  const char *slash = strrchr(type_url, '/');

  return slash ? slash + 1 : type_url;
}

int
ctl_stats_decode(const char *type_url, const uint8_t *data, size_t len, json_t **out,
                 cshim_error_t *err)
{
  const ProtobufCMessageDescriptor *desc = NULL;
  const char *name = type_name(type_url ? type_url : "");
  ProtobufCMessage *msg;

  if (strcmp(name, V1_TYPE) == 0)
    desc = &io__containerd__cgroups__v1__metrics__descriptor;
  else if (strcmp(name, V2_TYPE) == 0)
    desc = &io__containerd__cgroups__v2__metrics__descriptor;
  if (desc == NULL) {
    cshim_autofree char *b64 = pbjson_base64(data, len);
    *out = json_pack("{s:s, s:I, s:s}", "type_url", type_url ? type_url : "", "size",
                     (json_int_t)len, "value", b64);
    return 0;
  }
  msg = protobuf_c_message_unpack(desc, NULL, len, data);
  if (msg == NULL)
    return cshim_error_make(err, EPROTO, "stats: %zu bytes do not decode as %s", len, name);
  *out = json_pack("{s:s, s:o}", "type_url", type_url, "metrics",
                   pbjson_from_message(msg, ctl_stats_names, PBJSON_INT64_AS_NUMBER));
  protobuf_c_message_free_unpacked(msg, NULL);
  return 0;
}

/* The row label of a list element: its name, page size or device (hugetlb[2MB],
   network[eth0]), else major:minor with the blkio op (io.usage[8:0], blkio...[8:0 Read]), else
   its index. */
static char *
element_label(const json_t *elem, size_t index)
{
  static const char *const keys[] = {"pagesize", "name", "device"};
  const json_t *major = json_object_get(elem, "major"), *minor = json_object_get(elem, "minor");
  const char *op = json_string_value(json_object_get(elem, "op"));
  char *label;

  for (size_t i = 0; i < CSHIM_N_ELEMENTS(keys); i++) {
    const char *v = json_string_value(json_object_get(elem, keys[i]));
    if (v && v[0] && !(strcmp(keys[i], "device") == 0 && major))
      return cshim_xstrdup(v);
  }
  if (json_is_integer(major) && json_is_integer(minor)) {
    cshim_xasprintf(&label, "%" JSON_INTEGER_FORMAT ":%" JSON_INTEGER_FORMAT "%s%s",
                    json_integer_value(major), json_integer_value(minor), op && op[0] ? " " : "",
                    op ? op : "");
    return label;
  }
  cshim_xasprintf(&label, "%zu", index);
  return label;
}

static bool
is_label_key(const char *key)
{
  static const char *const keys[] = {"pagesize", "name", "device", "major", "minor", "op"};

  for (size_t i = 0; i < CSHIM_N_ELEMENTS(keys); i++)
    if (strcmp(key, keys[i]) == 0)
      return true;
  return false;
}

static void
print_value(FILE *out, const char *name, const json_t *v)
{
  if (json_is_integer(v))
    fprintf(out, "%-40s %" JSON_INTEGER_FORMAT "\n", name, json_integer_value(v));
  else if (json_is_string(v))
    /* Only 64-bit figures past 2^63-1 are strings: cgroup's "max" (2^64-1). */
    fprintf(out, "%-40s %s\n", name,
            strcmp(json_string_value(v), "18446744073709551615") == 0 ? "max"
                                                                      : json_string_value(v));
}

static void
print_rows(FILE *out, const char *prefix, const json_t *obj, bool in_list)
{
  const char *key;
  json_t *v;

  json_object_foreach((json_t *)obj, key, v)
  {
    cshim_autofree char *name = NULL;

    if (in_list && is_label_key(key))
      continue;
    cshim_xasprintf(&name, "%s%s%s", prefix, prefix[0] ? "." : "", key);
    if (json_is_object(v)) {
      print_rows(out, name, v, false);
    } else if (json_is_array(v)) {
      size_t i;
      json_t *elem;
      json_array_foreach(v, i, elem)
      {
        cshim_autofree char *label = json_is_object(elem) ? element_label(elem, i) : NULL;
        cshim_autofree char *row = NULL;

        if (label == NULL)
          cshim_xasprintf(&label, "%zu", i);
        cshim_xasprintf(&row, "%s[%s]", name, label);
        if (json_is_object(elem))
          print_rows(out, row, elem, true);
        else
          print_value(out, row, elem);
      }
    } else {
      print_value(out, name, v);
    }
  }
}

void
ctl_stats_print(FILE *out, const json_t *stats)
{
  const char *type = json_string_value(json_object_get(stats, "type_url"));
  const json_t *metrics = json_object_get(stats, "metrics");

  if (metrics == NULL) {
    fprintf(out, "%s (%" JSON_INTEGER_FORMAT " bytes, not decoded)\n",
            type && type[0] ? type : "no stats",
            json_integer_value(json_object_get(stats, "size")));
    return;
  }
  fprintf(out, "type: %s\n", type);
  fprintf(out, "%-40s %s\n", "METRIC", "VALUE");
  print_rows(out, "", metrics, false);
}
