// SPDX-License-Identifier: Apache-2.0
// The host side of <cshim/host.h>: what plugins may see of the shim, and the SIGUSR1 state dump.
#define _GNU_SOURCE
#include "introspect.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include <cshim/util.h>
#include <cshim/version.h>

#define MAX_SOURCE_NAME 64
/* A log message holds 2 KiB; keep JSON pieces well below so the line stays whole. */
#define DUMP_CHUNK 1800

struct state_source
{
  char *name;
  cshim_state_dump_fn dump_json;
  void *data;
};

struct host_introspect_s
{
  cshim_host_t base; /* handed to plugins */
  const host_log_t *log;
  char *config_source;
  const cshim_config_node_t *config_root;
  const host_plugins_t *plugins;
  host_ttrpc_server_t *server;
  const host_reaper_t *reaper;
  cshim_ttrpc_stats_t last_stats; /* kept when the server is detached */
  struct state_source *sources;
  size_t n_sources;
};

static host_introspect_t *
from_api(cshim_host_t *host)
{
  return CSHIM_CONTAINER_OF(host, host_introspect_t, base);
}

static size_t
plugin_count_op(cshim_host_t *host)
{
  host_introspect_t *intro = from_api(host);

  return intro->plugins ? host_plugins_count(intro->plugins) : 0;
}

static int
plugin_info_op(cshim_host_t *host, size_t i, cshim_host_plugin_info_t *out, cshim_error_t *err)
{
  host_introspect_t *intro = from_api(host);
  const host_plugin_info_t *p;
  cshim_host_plugin_info_t full;
  int ret;

  /* out is the plugin's, maybe from an older SDK: fill only what it has room for. */
  ret = cshim_struct_size_check("plugin_info: out", out->struct_size,
                                CSHIM_HOST_PLUGIN_INFO_SIZE_1_0, err);
  if (ret < 0)
    return ret;
  p = intro->plugins ? host_plugins_get(intro->plugins, i) : NULL;
  if (p == NULL)
    return cshim_error_make(err, ERANGE, "no plugin number %zu", i);
  full = (cshim_host_plugin_info_t){.struct_size = sizeof full,
                                    .uri = p->uri,
                                    .type = p->type,
                                    .id = p->id,
                                    .path = p->path,
                                    .state = host_plugins_state_name(p->state),
                                    .n_services = p->n_services,
                                    .n_interceptors = p->n_interceptors};
  cshim_struct_size_copy_out(out, &full, sizeof full);
  return 0;
}

static const char *
config_source_op(cshim_host_t *host)
{
  host_introspect_t *intro = from_api(host);

  return intro->config_source ? intro->config_source : "";
}

static json_t *
node_to_json(const cshim_config_node_t *node)
{
  json_t *out;

  if (node == NULL)
    return json_null();
  switch (node->kind) {
  case CSHIM_CONFIG_SCALAR:
    if (!node->quoted && cshim_config_is_null(node))
      return json_null();
    return json_string(node->value ? node->value : "");
  case CSHIM_CONFIG_MAP:
    out = json_object();
    for (size_t i = 0; i < node->n; i++)
      json_object_set_new(out, node->keys[i], node_to_json(&node->items[i]));
    return out;
  case CSHIM_CONFIG_SEQ:
    out = json_array();
    for (size_t i = 0; i < node->n; i++)
      json_array_append_new(out, node_to_json(&node->items[i]));
    return out;
  }
  return json_null();
}

char *
host_introspect_config_to_json(const cshim_config_node_t *root)
{
  json_t *j = node_to_json(root);
  char *text = json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY);

  json_decref(j);
  return text ? text : cshim_xstrdup("null");
}

static char *
config_json_op(cshim_host_t *host)
{
  return host_introspect_config_to_json(from_api(host)->config_root);
}

static void
ttrpc_stats_op(cshim_host_t *host, cshim_ttrpc_stats_t *out)
{
  host_introspect_t *intro = from_api(host);

  if (intro->server)
    host_ttrpc_server_get_stats(intro->server, &intro->last_stats);
  intro->last_stats.struct_size = sizeof intro->last_stats;
  cshim_struct_size_copy_out(out, &intro->last_stats, sizeof intro->last_stats);
}

static void
log_stats_op(cshim_host_t *host, cshim_host_log_stats_t *out)
{
  host_introspect_t *intro = from_api(host);
  cshim_host_log_stats_t full = {.struct_size = sizeof full};

  if (intro->log) {
    full.lines = intro->log->lines;
    full.dropped = intro->log->dropped;
  }
  cshim_struct_size_copy_out(out, &full, sizeof full);
}

static size_t
process_starts_op(cshim_host_t *host, size_t i, cshim_host_process_starts_t *out)
{
  host_introspect_t *intro = from_api(host);
  const host_reaper_started_t *started = NULL;
  size_t n;

  if (intro->reaper == NULL)
    return 0;
  n = host_reaper_started(intro->reaper, &started);
  if (out && i < n)
    *out = (cshim_host_process_starts_t){
        .kind = started[i].kind, .command = started[i].command, .count = started[i].count};
  return n;
}

static bool
valid_source_name(const char *name)
{
  size_t n = name ? strlen(name) : 0;

  if (n == 0 || n > MAX_SOURCE_NAME)
    return false;
  for (const char *p = name; *p; p++)
    if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
          *p == '_' || *p == '.' || *p == '-'))
      return false;
  return true;
}

static int
add_state_source_op(cshim_host_t *host, const char *name, cshim_state_dump_fn dump_json, void *data,
                    cshim_error_t *err)
{
  host_introspect_t *intro = from_api(host);

  if (!valid_source_name(name))
    return cshim_error_make(err, EINVAL, "invalid state source name `%s`", name ? name : "");
  if (dump_json == NULL)
    return cshim_error_make(err, EINVAL, "state source `%s` without a dump function", name);
  for (size_t i = 0; i < intro->n_sources; i++)
    if (strcmp(intro->sources[i].name, name) == 0)
      return cshim_error_make(err, EEXIST, "state source `%s` already registered", name);
  intro->sources = cshim_xrealloc(intro->sources, (intro->n_sources + 1) * sizeof(*intro->sources));
  intro->sources[intro->n_sources++] =
      (struct state_source){.name = cshim_xstrdup(name), .dump_json = dump_json, .data = data};
  return 0;
}

static void
remove_state_source_op(cshim_host_t *host, const char *name, void *data)
{
  host_introspect_t *intro = from_api(host);

  if (name == NULL)
    return;
  for (size_t i = 0; i < intro->n_sources; i++) {
    struct state_source *s = &intro->sources[i];
    if (strcmp(s->name, name) == 0 && s->data == data) {
      free(s->name);
      memmove(s, s + 1, (intro->n_sources - i - 1) * sizeof(*s));
      intro->n_sources--;
      return;
    }
  }
}

static size_t
state_source_count_op(cshim_host_t *host)
{
  return from_api(host)->n_sources;
}

static char *
state_source_dump_op(cshim_host_t *host, size_t i, const char **name)
{
  host_introspect_t *intro = from_api(host);

  if (name)
    *name = NULL;
  if (i >= intro->n_sources)
    return NULL;
  if (name)
    *name = intro->sources[i].name;
  return intro->sources[i].dump_json(intro->sources[i].data);
}

host_introspect_t *
host_introspect_new(uv_loop_t *loop, const char *version)
{
  host_introspect_t *intro = cshim_xmalloc0(sizeof(*intro));
  struct timespec ts;

  clock_gettime(CLOCK_REALTIME, &ts);
  intro->base = (cshim_host_t){
      .struct_size = sizeof(cshim_host_t),
      .version = version,
      .loop = loop,
      .started_ns = cshim_now_ns(),
      .started_unix_ns = (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec,
      .plugin_count = plugin_count_op,
      .plugin_info = plugin_info_op,
      .config_source = config_source_op,
      .config_json = config_json_op,
      .ttrpc_stats = ttrpc_stats_op,
      .log_stats = log_stats_op,
      .add_state_source = add_state_source_op,
      .remove_state_source = remove_state_source_op,
      .state_source_count = state_source_count_op,
      .state_source_dump = state_source_dump_op,
      .sdk_version = cshim_sdk_version(),
      .process_starts = process_starts_op,
  };
  return intro;
}

cshim_host_t *
host_introspect_api(host_introspect_t *intro)
{
  return &intro->base;
}

void
host_introspect_set_log(host_introspect_t *intro, const host_log_t *log)
{
  intro->log = log;
}

void
host_introspect_set_config(host_introspect_t *intro, const char *source,
                           const cshim_config_node_t *root)
{
  free(intro->config_source);
  intro->config_source = cshim_xstrdup(source);
  intro->config_root = root;
}

void
host_introspect_set_plugins(host_introspect_t *intro, const host_plugins_t *plugins)
{
  intro->plugins = plugins;
}

void
host_introspect_set_server(host_introspect_t *intro, host_ttrpc_server_t *server)
{
  if (intro->server)
    host_ttrpc_server_get_stats(intro->server, &intro->last_stats);
  intro->server = server;
}

void
host_introspect_set_reaper(host_introspect_t *intro, const host_reaper_t *reaper)
{
  intro->reaper = reaper;
}

/* Log a JSON text in pieces small enough for one line each. */
static void
log_chunked(const cshim_logger_t *log, const char *what, const char *text)
{
  size_t len = strlen(text);

  if (len <= DUMP_CHUNK) {
    cshim_log_info(log, "state dump: %s: %s", what, text);
    return;
  }
  for (size_t off = 0, part = 1; off < len; off += DUMP_CHUNK, part++)
    cshim_log_info(log, "state dump: %s (part %zu/%zu): %.*s", what, part,
                   (len + DUMP_CHUNK - 1) / DUMP_CHUNK, DUMP_CHUNK, text + off);
}

static void
dump_source(const cshim_logger_t *log, const char *name, const char *text)
{
  json_error_t jerr;
  json_t *j = json_loads(text, JSON_DECODE_ANY, &jerr);
  cshim_autofree char *what = NULL;

  if (j == NULL || !json_is_array(j)) {
    cshim_xasprintf(&what, "state `%s`", name);
    log_chunked(log, what, text);
    json_decref(j);
    return;
  }
  if (json_array_size(j) == 0)
    cshim_log_info(log, "state dump: state `%s`: []", name);
  for (size_t i = 0; i < json_array_size(j); i++) {
    cshim_autofree char *item = json_dumps(json_array_get(j, i), JSON_COMPACT | JSON_ENCODE_ANY);
    free(what);
    cshim_xasprintf(&what, "state `%s` [%zu]", name, i);
    log_chunked(log, what, item ? item : "null");
  }
  json_decref(j);
}

void
host_introspect_dump(host_introspect_t *intro, const cshim_logger_t *log)
{
  cshim_host_t *host = &intro->base;
  cshim_ttrpc_stats_t st = {.struct_size = sizeof st};
  cshim_host_log_stats_t ls = {.struct_size = sizeof ls};
  size_t n = plugin_count_op(host);
  uint64_t uptime_ms = (cshim_now_ns() - host->started_ns) / 1000000u;

  cshim_log_info(log, "state dump: cshim %s, pid %d, up %llu.%03llu s, config `%s`", host->version,
                 (int)getpid(), (unsigned long long)(uptime_ms / 1000),
                 (unsigned long long)(uptime_ms % 1000), config_source_op(host));
  cshim_log_info(log, "state dump: %zu plugins", n);
  for (size_t i = 0; i < n; i++) {
    cshim_host_plugin_info_t p = {.struct_size = sizeof p};
    if (plugin_info_op(host, i, &p, NULL) < 0)
      continue;
    cshim_log_info(log, "state dump: plugin `%s` (%s): %s, %zu services, %zu interceptors", p.uri,
                   p.path, p.state, p.n_services, p.n_interceptors);
  }
  ttrpc_stats_op(host, &st);
  log_stats_op(host, &ls);
  cshim_log_info(log,
                 "state dump: ttrpc: %llu connections open (%llu total, %llu rejected), %llu calls "
                 "in flight (%llu total), %llu frames rejected; log: %llu lines, %llu dropped",
                 (unsigned long long)st.connections_open, (unsigned long long)st.connections_total,
                 (unsigned long long)st.connections_rejected,
                 (unsigned long long)st.calls_in_flight, (unsigned long long)st.calls_total,
                 (unsigned long long)st.frames_rejected, (unsigned long long)ls.lines,
                 (unsigned long long)ls.dropped);
  if (intro->server) {
    host_ttrpc_server_usage_t u;
    host_ttrpc_server_get_usage(intro->server, &u);
    cshim_log_info(log,
                   "state dump: ttrpc limits: %zu + %zu of %zu buffer bytes in use (clients' "
                   "bytes + the server's structures), %zu calls working, "
                   "%zu parked; %llu frames refused, %llu pauses at the in-flight limit, %llu for "
                   "the budget, %llu connections closed for it, %llu for a stalled frame; %llu "
                   "parked calls dropped with their connection; %llu trims",
                   u.buffered, u.overhead, u.budget, u.calls_working, u.calls_parked,
                   (unsigned long long)u.frames_refused, (unsigned long long)u.paused_in_flight,
                   (unsigned long long)u.paused_budget, (unsigned long long)u.closed_budget,
                   (unsigned long long)u.closed_stalled, (unsigned long long)u.calls_cancelled,
                   (unsigned long long)u.trims);
  }
  for (size_t i = 0, k = process_starts_op(host, 0, NULL); i < k; i++) {
    cshim_host_process_starts_t ps;
    process_starts_op(host, i, &ps);
    cshim_log_info(log, "state dump: processes started: %s%s%s: %llu", ps.kind,
                   ps.command[0] ? " " : "", ps.command, (unsigned long long)ps.count);
  }
  for (size_t i = 0; i < intro->n_sources; i++) {
    const char *name = NULL;
    cshim_autofree char *text = state_source_dump_op(host, i, &name);
    if (text == NULL)
      cshim_log_info(log, "state dump: state `%s`: none", name);
    else
      dump_source(log, name, text);
  }
  cshim_log_info(log, "state dump: end");
}

void
host_introspect_free(host_introspect_t *intro)
{
  if (intro == NULL)
    return;
  for (size_t i = 0; i < intro->n_sources; i++) {
    if (intro->log)
      cshim_log_warn(&intro->log->base, "state source `%s` was never removed",
                     intro->sources[i].name);
    free(intro->sources[i].name);
  }
  free(intro->sources);
  free(intro->config_source);
  free(intro);
}
