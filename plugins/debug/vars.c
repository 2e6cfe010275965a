// SPDX-License-Identifier: Apache-2.0
// The debug plugin's JSON views: /debug/state (every state source) and /debug/vars (counters,
// plugins, config in effect, uptime, version and the state).
#define _GNU_SOURCE
#include "debug.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include <cshim/util.h>

static char *
dump(json_t *j, size_t *len)
{
  char *text = json_dumps(j, JSON_INDENT(2) | JSON_SORT_KEYS);

  json_decref(j);
  if (text == NULL)
    text = cshim_xstrdup("{}");
  /* One JSON document per answer, newline-terminated like curl users expect. */
  text = cshim_xrealloc(text, strlen(text) + 2);
  strcat(text, "\n");
  *len = strlen(text);
  return text;
}

static json_t *
state_json(debug_t *d)
{
  json_t *out = json_object();
  size_t n;

  if (d->host == NULL)
    return out;
  n = d->host->state_source_count(d->host);
  for (size_t i = 0; i < n; i++) {
    const char *name = NULL;
    cshim_autofree char *text = d->host->state_source_dump(d->host, i, &name);
    json_t *j;

    if (name == NULL)
      continue;
    j = text ? json_loads(text, JSON_DECODE_ANY, NULL) : json_null();
    if (j == NULL)
      j = json_string(text);
    json_object_set_new(out, name, j);
  }
  return out;
}

char *
debug_render_state(debug_t *d, size_t *len)
{
  return dump(state_json(d), len);
}

static json_t *
plugins_json(debug_t *d)
{
  json_t *out = json_array();
  size_t n = d->host ? d->host->plugin_count(d->host) : 0;

  for (size_t i = 0; i < n; i++) {
    cshim_host_plugin_info_t p = {.struct_size = sizeof p};
    if (d->host->plugin_info(d->host, i, &p, NULL) < 0)
      continue;
    json_array_append_new(out, json_pack("{s:s, s:s, s:s, s:s, s:s, s:I, s:I}", "uri", p.uri,
                                         "type", p.type, "id", p.id, "path", p.path, "state",
                                         p.state, "services", (json_int_t)p.n_services,
                                         "interceptors", (json_int_t)p.n_interceptors));
  }
  return out;
}

static json_t *
methods_json(debug_t *d)
{
  json_t *out = json_array();

  const cshim_list_t *l;

  CSHIM_LIST_FOREACH (l, &d->metrics.methods) {
    const debug_method_t *e = cshim_list_entry(l, debug_method_t, link);
    json_t *codes = json_object(), *buckets = json_object();
    uint64_t cumulative = 0;
    char bound[32];

    for (int c = 0; c < DEBUG_N_CODES; c++)
      if (e->by_code[c])
        json_object_set_new(codes, cshim_grpc_code_name(c),
                            json_integer((json_int_t)e->by_code[c]));
    for (int b = 0; b <= DEBUG_N_BUCKETS; b++) {
      cumulative += e->buckets[b];
      if (b < DEBUG_N_BUCKETS)
        snprintf(bound, sizeof(bound), "%g", debug_bucket_bounds[b]);
      else
        snprintf(bound, sizeof(bound), "+Inf");
      json_object_set_new(buckets, bound, json_integer((json_int_t)cumulative));
    }
    json_array_append_new(out,
                          json_pack("{s:s, s:s, s:I, s:I, s:o, s:{s:f, s:I, s:o}}", "service",
                                    e->service, "method", e->method, "calls", (json_int_t)e->count,
                                    "errors", (json_int_t)(e->count - e->by_code[0]), "codes",
                                    codes, "latency_seconds", "sum", (double)e->sum_ns / 1e9,
                                    "count", (json_int_t)e->count, "buckets", buckets));
  }
  return out;
}

static json_t *
property(debug_t *d, const char *key)
{
  const char *v = cshim_init_ctx_property(d->ctx, key);
  return v ? json_string(v) : json_null();
}

static json_t *
config_json(debug_t *d)
{
  cshim_autofree char *text = d->host ? d->host->config_json(d->host) : NULL;
  json_t *effective = text ? json_loads(text, JSON_DECODE_ANY, NULL) : NULL;

  return json_pack("{s:s, s:o}", "source", d->host ? d->host->config_source(d->host) : "",
                   "effective", effective ? effective : json_null());
}

/* The host's start time, uptime and log counters into root; its ttrpc counters into st. */
static void
add_host_vars(json_t *root, debug_t *d, cshim_ttrpc_stats_t *st)
{
  cshim_host_log_stats_t ls = {.struct_size = sizeof ls};
  struct timespec ts = {.tv_sec = (time_t)(d->host->started_unix_ns / 1000000000LL)};
  struct tm tm;
  char when[64];

  gmtime_r(&ts.tv_sec, &tm);
  strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
  json_object_set_new(root, "started_at", json_string(when));
  json_object_set_new(root, "uptime_seconds",
                      json_real((double)(cshim_now_ns() - d->host->started_ns) / 1e9));
  d->host->log_stats(d->host, &ls);
  json_object_set_new(
      root, "log",
      json_pack("{s:I, s:I}", "lines", (json_int_t)ls.lines, "dropped", (json_int_t)ls.dropped));
  d->host->ttrpc_stats(d->host, st);
}

static json_t *
shim_json(debug_t *d)
{
  return json_pack("{s:o, s:o, s:o, s:o, s:o, s:o, s:s?}", "namespace",
                   property(d, CSHIM_PROP_NAMESPACE), "id", property(d, CSHIM_PROP_ID), "bundle",
                   property(d, CSHIM_PROP_BUNDLE), "socket", property(d, CSHIM_PROP_SOCKET),
                   "binary", property(d, CSHIM_PROP_BINARY), "containerd_ttrpc_address",
                   property(d, CSHIM_PROP_TTRPC_ADDRESS), "debug_socket", d->socket_path);
}

static json_t *
ttrpc_json(debug_t *d, const cshim_ttrpc_stats_t *st)
{
  return json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:o}", "connections_open",
                   (json_int_t)st->connections_open, "connections_total",
                   (json_int_t)st->connections_total, "connections_rejected",
                   (json_int_t)st->connections_rejected, "calls_in_flight",
                   (json_int_t)st->calls_in_flight, "requests_total", (json_int_t)st->calls_total,
                   "frames_rejected", (json_int_t)st->frames_rejected, "methods", methods_json(d));
}

static json_t *
events_json(debug_t *d)
{
  cshim_publisher_stats_t pst = {.struct_size = sizeof pst};

  if (d->publisher == NULL)
    return json_null();
  d->publisher->get_stats(d->publisher, &pst);
  return json_pack("{s:I, s:I, s:I, s:I, s:I, s:I}", "accepted", (json_int_t)pst.accepted,
                   "published", (json_int_t)pst.published, "retried", (json_int_t)pst.retried,
                   "dropped", (json_int_t)pst.dropped, "queue_full", (json_int_t)pst.queue_full,
                   "pending", (json_int_t)pst.pending);
}

/* How many processes are in each status. */
static json_t *
processes_json(debug_t *d)
{
  json_t *processes = json_object();
  debug_status_count_t *counts = NULL;
  size_t n_counts = debug_status_counts(d, &counts);

  for (size_t i = 0; i < n_counts; i++)
    json_object_set_new(processes, counts[i].status, json_integer((json_int_t)counts[i].n));
  debug_status_counts_free(counts, n_counts);
  return processes;
}

/* The shim process, its loop and the debug server itself. */
static void
add_self_vars(json_t *root, debug_t *d)
{
  debug_proc_stats_t ps;

  debug_proc_stats(&ps);
  json_object_set_new(root, "process",
                      json_pack("{s:I, s:I, s:f, s:I}", "resident_memory_bytes",
                                (json_int_t)ps.rss_bytes, "open_fds", (json_int_t)ps.open_fds,
                                "cpu_seconds", ps.cpu_seconds, "threads", (json_int_t)ps.threads));
  json_object_set_new(root, "loop",
                      json_pack("{s:I, s:f}", "iterations", (json_int_t)d->loop_iterations,
                                "idle_seconds", (double)uv_metrics_idle_time(d->loop) / 1e9));
  json_object_set_new(root, "debug",
                      json_pack("{s:I, s:I, s:I, s:b, s:I}", "http_requests",
                                (json_int_t)d->http_requests, "http_rejected",
                                (json_int_t)d->http_rejected, "connections_open",
                                (json_int_t)d->n_conns, "profiling", d->profile != NULL, "profiles",
                                (json_int_t)d->profiles));
}

char *
debug_render_vars(debug_t *d, size_t *len)
{
  cshim_ttrpc_stats_t st = {.struct_size = sizeof st};
  json_t *root = json_object();

  json_object_set_new(root, "version", json_string(d->host ? d->host->version : "unknown"));
  json_object_set_new(root, "pid", json_integer(getpid()));
  if (d->host)
    add_host_vars(root, d, &st);
  json_object_set_new(root, "shim", shim_json(d));
  json_object_set_new(root, "config", config_json(d));
  json_object_set_new(root, "plugins", plugins_json(d));
  json_object_set_new(root, "ttrpc", ttrpc_json(d, &st));
  json_object_set_new(root, "events", events_json(d));
  json_object_set_new(root, "upgrade", debug_host_source_json(d, "upgrade"));
  json_object_set_new(root, "tracing", debug_host_source_json(d, "tracing"));
  json_object_set_new(root, "processes", processes_json(d));
  add_self_vars(root, d);
  json_object_set_new(root, "state", state_json(d));
  return dump(root, len);
}
