// SPDX-License-Identifier: Apache-2.0
// The debug plugin's metrics: per-method ttrpc counters and latency histograms recorded by a
// server interceptor, process and loop figures, and their Prometheus text rendering.
#define _GNU_SOURCE
#include "debug.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include <jansson.h>

#include <cshim/util.h>

const double debug_bucket_bounds[DEBUG_N_BUCKETS] = {
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30,
};

static const char *const standard_statuses[] = {"created", "running", "paused", "stopped", NULL};

static debug_method_t *
find_or_add(debug_metrics_t *m, const char *service, const char *method)
{
  cshim_list_t *l, *before = NULL;
  debug_method_t *e;

  CSHIM_LIST_FOREACH (l, &m->methods) {
    int c;
    e = cshim_list_entry(l, debug_method_t, link);
    c = strcmp(e->service, service);
    if (c == 0)
      c = strcmp(e->method, method);
    if (c == 0)
      return e;
    if (c > 0) {
      before = l;
      break;
    }
  }
  e = cshim_xmalloc0(sizeof(*e));
  e->service = cshim_xstrdup(service);
  e->method = cshim_xstrdup(method);
  if (before)
    cshim_list_insert_after(before->prev, &e->link);
  else
    cshim_list_push_back(&m->methods, &e->link);
  m->n_methods++;
  return e;
}

void
debug_metrics_observe(debug_metrics_t *m, const char *service, const char *method, int code,
                      uint64_t duration_ns)
{
  debug_method_t *e = find_or_add(m, service ? service : "", method ? method : "");
  double seconds = (double)duration_ns / 1e9;
  size_t b = 0;

  if (code < 0 || code >= DEBUG_N_CODES)
    code = CSHIM_GRPC_UNKNOWN;
  e->by_code[code]++;
  while (b < DEBUG_N_BUCKETS && seconds > debug_bucket_bounds[b])
    b++;
  e->buckets[b]++;
  e->count++;
  e->sum_ns += duration_ns;
}

void
debug_metrics_clear(debug_metrics_t *m)
{
  cshim_list_t *l;

  while ((l = cshim_list_first(&m->methods)) != NULL) {
    debug_method_t *e = cshim_list_entry(l, debug_method_t, link);
    cshim_list_remove(&e->link);
    free(e->service);
    free(e->method);
    free(e);
  }
  m->n_methods = 0;
}

void
debug_metrics_after_cb(void *data, const cshim_ttrpc_call_t *call, int grpc_code)
{
  debug_t *d = data;
  uint64_t now = cshim_now_ns();

  debug_metrics_observe(&d->metrics, call->service, call->method, grpc_code,
                        now > call->started_ns ? now - call->started_ns : 0);
}

void
debug_proc_stats(debug_proc_stats_t *out)
{
  struct rusage ru;
  unsigned long size = 0, resident = 0;
  char line[256];
  FILE *f;
  DIR *dir;

  memset(out, 0, sizeof(*out));
  /* /proc/self is answered from kernel memory: these reads never wait on a device. */
  f = fopen("/proc/self/statm", "re");
  if (f) {
    if (fscanf(f, "%lu %lu", &size, &resident) == 2)
      out->rss_bytes = (uint64_t)resident * (uint64_t)sysconf(_SC_PAGESIZE);
    fclose(f);
  }
  f = fopen("/proc/self/status", "re");
  if (f) {
    while (fgets(line, sizeof(line), f))
      if (strncmp(line, "Threads:", 8) == 0)
        out->threads = strtoull(line + 8, NULL, 10);
    fclose(f);
  }
  dir = opendir("/proc/self/fd");
  if (dir) {
    struct dirent *de;
    while ((de = readdir(dir)))
      if (de->d_name[0] != '.')
        out->open_fds++;
    closedir(dir);
    if (out->open_fds > 0)
      out->open_fds--; /* the directory being listed */
  }
  if (getrusage(RUSAGE_SELF, &ru) == 0)
    out->cpu_seconds = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
                       (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

static void
count_status(debug_status_count_t **counts, size_t *n, const char *status)
{
  for (size_t i = 0; i < *n; i++)
    if (strcmp((*counts)[i].status, status) == 0) {
      (*counts)[i].n++;
      return;
    }
  *counts = cshim_xrealloc(*counts, (*n + 1) * sizeof(**counts));
  (*counts)[*n] = (debug_status_count_t){.status = cshim_xstrdup(status), .n = 1};
  (*n)++;
}

size_t
debug_status_counts(debug_t *d, debug_status_count_t **out)
{
  debug_status_count_t *counts = NULL;
  size_t n = 0;

  for (const char *const *s = standard_statuses; *s; s++) {
    count_status(&counts, &n, *s);
    counts[n - 1].n = 0;
  }
  if (d->host) {
    size_t sources = d->host->state_source_count(d->host);
    for (size_t i = 0; i < sources; i++) {
      cshim_autofree char *text = d->host->state_source_dump(d->host, i, NULL);
      json_t *j = text ? json_loads(text, JSON_DECODE_ANY, NULL) : NULL;
      size_t k;
      json_t *item;

      if (json_is_array(j))
        json_array_foreach(j, k, item)
        {
          const char *status = json_string_value(json_object_get(item, "status"));
          if (status && status[0])
            count_status(&counts, &n, status);
        }
      json_decref(j);
    }
  }
  *out = counts;
  return n;
}

void
debug_status_counts_free(debug_status_count_t *counts, size_t n)
{
  for (size_t i = 0; i < n; i++)
    free(counts[i].status);
  free(counts);
}

/* A label value in the text format: backslash, double quote and newline escaped. */
static void
put_label(FILE *f, const char *s)
{
  for (; *s; s++) {
    if (*s == '\\' || *s == '"')
      fprintf(f, "\\%c", *s);
    else if (*s == '\n')
      fputs("\\n", f);
    else
      fputc(*s, f);
  }
}

static void
family(FILE *f, const char *name, const char *type, const char *help)
{
  fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void
single(FILE *f, const char *name, const char *type, const char *help, double value)
{
  family(f, name, type, help);
  fprintf(f, "%s %.17g\n", name, value);
}

/* A figure of the shim process under cshim's own name (cshim_process_*) and under the name
   Prometheus client libraries give it for every process (process_*), so that generic dashboards
   and alerts find it: one value, two families. */
static void
process_figure(FILE *f, const char *name, const char *type, const char *help, double value)
{
  char own[96];

  snprintf(own, sizeof own, "cshim_%s", name);
  single(f, own, type, help, value);
  single(f, name, type, help, value);
}

static void
method_labels(FILE *f, const debug_method_t *e)
{
  fputs("service=\"", f);
  put_label(f, e->service);
  fputs("\",method=\"", f);
  put_label(f, e->method);
  fputc('"', f);
}

static void
render_ttrpc(FILE *f, debug_t *d)
{
  cshim_ttrpc_stats_t st = {.struct_size = sizeof st};
  const cshim_list_t *l;

  if (d->host)
    d->host->ttrpc_stats(d->host, &st);

  family(f, "cshim_ttrpc_calls_total", "counter",
         "ttrpc calls answered, by service, method and gRPC status code.");
  CSHIM_LIST_FOREACH (l, &d->metrics.methods) {
    const debug_method_t *e = cshim_list_entry(l, debug_method_t, link);
    for (int c = 0; c < DEBUG_N_CODES; c++)
      if (e->by_code[c]) {
        fputs("cshim_ttrpc_calls_total{", f);
        method_labels(f, e);
        fprintf(f, ",code=\"%s\"} %llu\n", cshim_grpc_code_name(c),
                (unsigned long long)e->by_code[c]);
      }
  }

  family(f, "cshim_ttrpc_call_errors_total", "counter",
         "ttrpc calls answered with a status other than OK, by service and method.");
  CSHIM_LIST_FOREACH (l, &d->metrics.methods) {
    const debug_method_t *e = cshim_list_entry(l, debug_method_t, link);
    fputs("cshim_ttrpc_call_errors_total{", f);
    method_labels(f, e);
    fprintf(f, "} %llu\n", (unsigned long long)(e->count - e->by_code[0]));
  }

  family(f, "cshim_ttrpc_call_duration_seconds", "histogram",
         "Time from decoding a ttrpc request to its answer, by service and method.");
  CSHIM_LIST_FOREACH (l, &d->metrics.methods) {
    const debug_method_t *e = cshim_list_entry(l, debug_method_t, link);
    uint64_t cumulative = 0;
    for (int b = 0; b <= DEBUG_N_BUCKETS; b++) {
      cumulative += e->buckets[b];
      fputs("cshim_ttrpc_call_duration_seconds_bucket{", f);
      method_labels(f, e);
      if (b < DEBUG_N_BUCKETS)
        fprintf(f, ",le=\"%g\"} %llu\n", debug_bucket_bounds[b], (unsigned long long)cumulative);
      else
        fprintf(f, ",le=\"+Inf\"} %llu\n", (unsigned long long)cumulative);
    }
    fputs("cshim_ttrpc_call_duration_seconds_sum{", f);
    method_labels(f, e);
    fprintf(f, "} %.9f\n", (double)e->sum_ns / 1e9);
    fputs("cshim_ttrpc_call_duration_seconds_count{", f);
    method_labels(f, e);
    fprintf(f, "} %llu\n", (unsigned long long)e->count);
  }

  single(f, "cshim_ttrpc_connections_open", "gauge", "ttrpc connections open now.",
         (double)st.connections_open);
  single(f, "cshim_ttrpc_connections_total", "counter", "ttrpc connections accepted.",
         (double)st.connections_total);
  single(f, "cshim_ttrpc_connections_rejected_total", "counter",
         "ttrpc connections refused by the peer credential check.",
         (double)st.connections_rejected);
  single(f, "cshim_ttrpc_calls_in_flight", "gauge", "ttrpc calls received and not yet answered.",
         (double)st.calls_in_flight);
  single(f, "cshim_ttrpc_requests_total", "counter",
         "ttrpc requests received, including those for unknown services or methods.",
         (double)st.calls_total);
  single(f, "cshim_ttrpc_frames_rejected_total", "counter",
         "ttrpc frames rejected as oversized, malformed or out of sequence.",
         (double)st.frames_rejected);
}

static void
render_events(FILE *f, debug_t *d)
{
  cshim_publisher_stats_t ps = {.struct_size = sizeof ps};

  if (d->publisher == NULL)
    return;
  d->publisher->get_stats(d->publisher, &ps);
  single(f, "cshim_events_accepted_total", "counter", "Events queued for containerd.",
         (double)ps.accepted);
  single(f, "cshim_events_published_total", "counter", "Events containerd acknowledged.",
         (double)ps.published);
  single(f, "cshim_events_retried_total", "counter",
         "Failed event forwards that were queued again for a retry.", (double)ps.retried);
  single(f, "cshim_events_dropped_total", "counter",
         "Events given up after their retries, refused by a full queue, or left at close.",
         (double)ps.dropped);
  single(f, "cshim_events_queue_full_total", "counter",
         "Publish attempts that found the event queue full.", (double)ps.queue_full);
  single(f, "cshim_events_pending", "gauge", "Events waiting to be forwarded, in flight included.",
         (double)ps.pending);
}

static void
render_tracing(FILE *f, debug_t *d)
{
  cshim_tracer_stats_t ts = {.struct_size = sizeof ts};

  if (d->tracer == NULL)
    return;
  d->tracer->get_stats(d->tracer, &ts);
  single(f, "cshim_tracing_spans_exported_total", "counter", "Spans the OTLP collector accepted.",
         (double)ts.exported);
  single(f, "cshim_tracing_spans_dropped_total", "counter",
         "Spans lost: export queue full, export failed (collector away) or left at exit.",
         (double)ts.dropped);
  single(f, "cshim_tracing_spans_not_recorded_total", "counter",
         "Spans not started (too many open at once) or never ended.", (double)ts.not_recorded);
  single(f, "cshim_tracing_export_failures_total", "counter", "OTLP export requests that failed.",
         (double)ts.export_failures);
  single(f, "cshim_tracing_spans_queued", "gauge", "Ended spans waiting for export.",
         (double)ts.queued);
}

json_t *
debug_host_source_json(debug_t *d, const char *want)
{
  size_t n = d->host ? d->host->state_source_count(d->host) : 0;

  for (size_t i = 0; i < n; i++) {
    const char *name = NULL;
    cshim_autofree char *text = d->host->state_source_dump(d->host, i, &name);
    json_t *j;
    if (name == NULL || strcmp(name, want) != 0 || text == NULL)
      continue;
    j = json_loads(text, 0, NULL);
    return j ? j : json_null();
  }
  return json_null();
}

/* Live upgrade and crash restarts, from the host's "upgrade" state source. */
static void
render_upgrade(FILE *f, debug_t *d)
{
  static const struct
  {
    const char *key, *name, *type, *help;
  } rows[] = {
      {"upgrades", "cshim_upgrades_total", "counter", "Live upgrades this shim went through."},
      {"rollbacks", "cshim_upgrade_rollbacks_total", "counter",
       "Upgrades that failed after the quiet point and left the old binary running."},
      {"refusals", "cshim_upgrade_refusals_total", "counter",
       "Upgrades refused before anything stopped (checks, no quiet point in time)."},
      {"crash_restarts", "cshim_crash_restarts_total", "counter",
       "Re-executions after a fatal signal."},
      {"last_pause_seconds", "cshim_upgrade_last_pause_seconds", "gauge",
       "How long the last upgrade held requests."},
  };
  json_t *j = debug_host_source_json(d, "upgrade");

  if (json_is_object(j))
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
      json_t *v = json_object_get(j, rows[i].key);
      if (!json_is_number(v))
        continue;
      family(f, rows[i].name, rows[i].type, rows[i].help);
      fprintf(f, "%s %.9g\n", rows[i].name, json_number_value(v));
    }
  json_decref(j);
}

char *
debug_render_metrics(debug_t *d, size_t *len)
{
  debug_proc_stats_t ps;
  debug_status_count_t *counts = NULL;
  size_t n_counts;
  char *text = NULL;
  size_t size = 0;
  FILE *f = open_memstream(&text, &size);

  if (f == NULL)
    abort();
  render_ttrpc(f, d);
  render_events(f, d);
  render_tracing(f, d);
  render_upgrade(f, d);

  n_counts = debug_status_counts(d, &counts);
  family(f, "cshim_processes", "gauge", "Container processes (init and exec) by status.");
  for (size_t i = 0; i < n_counts; i++) {
    fputs("cshim_processes{state=\"", f);
    put_label(f, counts[i].status);
    fprintf(f, "\"} %llu\n", (unsigned long long)counts[i].n);
  }
  debug_status_counts_free(counts, n_counts);

  family(f, "cshim_processes_started_total", "counter",
         "Processes the shim started: runtime commands by subcommand, logging binaries, other "
         "children.");
  for (size_t i = 0, n = cshim_host_process_starts(d->host, 0, NULL); i < n; i++) {
    cshim_host_process_starts_t st;
    cshim_host_process_starts(d->host, i, &st);
    fputs("cshim_processes_started_total{kind=\"", f);
    put_label(f, st.kind);
    fputs("\",command=\"", f);
    put_label(f, st.command);
    fprintf(f, "\"} %llu\n", (unsigned long long)st.count);
  }

  debug_proc_stats(&ps);
  process_figure(f, "process_resident_memory_bytes", "gauge", "Resident memory of the shim.",
                 (double)ps.rss_bytes);
  process_figure(f, "process_open_fds", "gauge", "Open file descriptors of the shim.",
                 (double)ps.open_fds);
  process_figure(f, "process_cpu_seconds_total", "counter", "User and system CPU time of the shim.",
                 ps.cpu_seconds);
  if (d->host) {
    cshim_host_log_stats_t ls = {.struct_size = sizeof ls};

    process_figure(f, "process_start_time_seconds", "gauge",
                   "Start time of the shim since the Unix epoch.",
                   (double)d->host->started_unix_ns / 1e9);
    single(f, "cshim_uptime_seconds", "gauge", "Seconds since the shim started.",
           (double)(cshim_now_ns() - d->host->started_ns) / 1e9);
    d->host->log_stats(d->host, &ls);
    single(f, "cshim_log_lines_total", "counter", "Log lines written.", (double)ls.lines);
    single(f, "cshim_log_lines_dropped_total", "counter",
           "Log lines lost because nobody was reading the log.", (double)ls.dropped);
  }

  single(f, "cshim_loop_iterations_total", "counter", "Iterations of the shim's event loop.",
         (double)d->loop_iterations);
  single(f, "cshim_loop_idle_seconds_total", "counter",
         "Time the event loop spent waiting for events.",
         (double)uv_metrics_idle_time(d->loop) / 1e9);

  single(f, "cshim_debug_http_requests_total", "counter", "Requests answered on the debug socket.",
         (double)d->http_requests);
  single(f, "cshim_debug_http_rejected_total", "counter",
         "Debug socket requests answered with an error status.", (double)d->http_rejected);

  family(f, "cshim_info", "gauge", "Version of the shim, always 1.");
  fputs("cshim_info{version=\"", f);
  put_label(f, d->host ? d->host->version : "unknown");
  fputs("\"} 1\n", f);

  fclose(f);
  *len = size;
  return text;
}
