// SPDX-License-Identifier: Apache-2.0
// The debug plugin's descriptor and lifecycle: io.containerd.http.v1 "debug", an HTTP server
// on the debug socket (metrics, vars, state, CPU profiles) when debugging is enabled.
#define _GNU_SOURCE
#include "debug.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cshim/config.h>
#include <cshim/unix_socket.h>
#include <cshim/util.h>

/* After every other plugin, so that it can find the publisher and see the whole set. Its type is
   containerd's for the pprof handler (io.containerd.http.v1): a "*" plugin must be of a type
   nobody requires, and the publisher and task plugins require io.containerd.internal.v1. */
static const char *const debug_requires[] = {"*", NULL};
static const char *const debug_config_keys[] = {"enabled", "socket", "max_profile_seconds", NULL};

static const char index_text[] = "cshim debug endpoints:\n"
                                 "  /metrics                          Prometheus metrics\n"
                                 "  /debug/vars                       counters, plugins, config "
                                 "(JSON)\n"
                                 "  /debug/state                      process table (JSON)\n"
                                 "  /debug/pprof/profile?seconds=N    CPU profile (pprof)\n";

void
debug_handle_closed(debug_t *d)
{
  if (--d->open_handles == 0 && d->closing) {
    debug_metrics_clear(&d->metrics);
    free(d->socket_path);
    free(d->profile_dir);
    free(d);
  }
}

static void
check_closed_cb(uv_handle_t *h)
{
  debug_handle_closed(h->data);
}

static void
check_cb(uv_check_t *h)
{
  debug_t *d = h->data;
  d->loop_iterations++;
}

static void
respond_owned(debug_conn_t *conn, const char *content_type, char *body, size_t len)
{
  debug_http_respond(conn, 200, content_type, body, len, "");
  free(body);
}

/* ?seconds=N of the profile endpoint: -2 when absent, -1 when malformed. */
static long
query_seconds(const char *query)
{
  cshim_autofree char *copy = cshim_xstrdup(query);
  char *save = NULL;
  long value = -2;

  for (char *kv = strtok_r(copy, "&", &save); kv; kv = strtok_r(NULL, "&", &save)) {
    char *end;
    if (strncmp(kv, "seconds=", 8) != 0)
      continue;
    errno = 0;
    if (kv[8] < '0' || kv[8] > '9')
      return -1;
    value = strtol(kv + 8, &end, 10);
    if (errno != 0 || *end != '\0' || value > 100000)
      return -1;
  }
  return value;
}

void
debug_route(debug_t *d, debug_conn_t *conn, int method, const char *path, const char *query)
{
  static const char *const known[] = {
      "/", "/metrics", "/debug/vars", "/debug/state", "/debug/pprof/", "/debug/pprof/profile",
      NULL};
  bool found = false;
  size_t len;

  for (const char *const *k = known; *k && !found; k++)
    found = strcmp(*k, path) == 0;
  if (!found) {
    debug_http_respond_text(conn, 404, "404 page not found");
    return;
  }
  if (method != HTTP_GET) {
    debug_http_respond_text(conn, 405, "method %s not allowed: only GET is",
                            http_method_str((enum http_method)method));
    return;
  }

  if (strcmp(path, "/metrics") == 0) {
    char *text = debug_render_metrics(d, &len);
    respond_owned(conn, "text/plain; version=0.0.4; charset=utf-8", text, len);
  } else if (strcmp(path, "/debug/vars") == 0) {
    char *text = debug_render_vars(d, &len);
    respond_owned(conn, "application/json", text, len);
  } else if (strcmp(path, "/debug/state") == 0) {
    char *text = debug_render_state(d, &len);
    respond_owned(conn, "application/json", text, len);
  } else if (strcmp(path, "/debug/pprof/profile") == 0) {
    long seconds = query_seconds(query);
    if (seconds == -2)
      seconds = DEBUG_DEFAULT_PROFILE_SECONDS < d->max_profile_seconds
                    ? DEBUG_DEFAULT_PROFILE_SECONDS
                    : d->max_profile_seconds;
    if (seconds < 1 || seconds > (long)d->max_profile_seconds) {
      debug_http_respond_text(conn, 400, "seconds must be a number from 1 to %u",
                              d->max_profile_seconds);
      return;
    }
    debug_profile_request(d, conn, (unsigned)seconds);
  } else if (strcmp(path, "/debug/pprof/") == 0) {
    static const char text[] = "profile: CPU profile, /debug/pprof/profile?seconds=N\n";
    debug_http_respond(conn, 200, "text/plain; charset=utf-8", text, sizeof(text) - 1, "");
  } else {
    debug_http_respond(conn, 200, "text/plain; charset=utf-8", index_text, sizeof(index_text) - 1,
                       "");
  }
}

/* "unix:///a/b" and "/a/b" both name /a/b. */
static const char *
strip_unix(const char *address)
{
  return strncmp(address, "unix://", 7) == 0 ? address + 7 : address;
}

/* The path an inherited listening socket is bound to, or NULL (abstract, unnamed). */
static char *
socket_name(int fd)
{
  return cshim_unix_socket_path(fd);
}

static bool
is_set(const char *s)
{
  return s != NULL && s[0] != '\0';
}

/* Config, then flags: whether to serve at all. */
static int
read_config(const cshim_init_ctx_t *ctx, int *enabled, const char **socket, uint64_t *max_seconds,
            cshim_error_t *err)
{
  bool on = false;
  int ret;

  *enabled = -1;
  ret = cshim_config_check_keys(ctx->config, debug_config_keys, ctx->uri, err);
  if (ret < 0)
    return ret;
  if (cshim_config_get(ctx->config, "enabled") &&
      !cshim_config_is_null(cshim_config_get(ctx->config, "enabled"))) {
    ret = cshim_config_get_bool(ctx->config, "enabled", &on, err);
    if (ret < 0)
      return ret;
    *enabled = on;
  }
  ret = cshim_config_get_string(ctx->config, "socket", socket, err);
  if (ret < 0)
    return ret;
  if (*socket && (*socket)[0] != '/' && strncmp(*socket, "unix:///", 8) != 0)
    return cshim_error_make(err, EINVAL, "%s: `socket` must be an absolute path", ctx->uri);
  ret = cshim_config_get_uint(ctx->config, "max_profile_seconds", max_seconds, err);
  if (ret < 0)
    return ret;
  if (*max_seconds < 1 || *max_seconds > 3600)
    return cshim_error_make(err, EINVAL, "%s: `max_profile_seconds` must be from 1 to 3600",
                            ctx->uri);
  return 0;
}

static void
find_publisher(debug_t *d, const cshim_init_ctx_t *ctx)
{
  cshim_plugin_ref_t *refs = NULL;
  size_t n = 0;

  if (ctx->get_by_type(ctx, CSHIM_TYPE_EVENT, &refs, &n, NULL) < 0)
    return;
  for (size_t i = 0; i < n && d->publisher == NULL; i++) {
    cshim_publisher_t *p = NULL;
    cshim_error_t err = NULL;

    /* A publisher this plugin cannot read is left out of the metrics, not fatal. */
    if (refs[i].instance && cshim_publisher_from_instance(refs[i].instance, &p, &err) < 0) {
      cshim_log_warn(ctx->log, "publisher `%s`: %s", refs[i].id, err->msg);
      cshim_error_release(&err);
      continue;
    }
    if (p && p->get_stats)
      d->publisher = p;
  }
  free(refs);
}

static void
find_tracer(debug_t *d, const cshim_init_ctx_t *ctx)
{
  void *instance = NULL;
  cshim_error_t err = NULL;

  if (ctx->get_by_id(ctx, CSHIM_TYPE_INTERNAL, CSHIM_TRACER_ID, &instance, NULL) < 0 ||
      instance == NULL)
    return;
  /* A tracer this plugin cannot read is left out of the metrics, not fatal. */
  if (cshim_tracer_from_instance(instance, &d->tracer, &err) < 0) {
    cshim_log_warn(ctx->log, "tracer: %s", err->msg);
    cshim_error_release(&err);
    d->tracer = NULL;
  }
}

static void
release(debug_t *d)
{
  d->closing = true;
  debug_profile_close(d);
  debug_http_close(d);
  if (d->socket_path && d->unlink_socket)
    unlink(d->socket_path);
  /* Profiles are removed once sent; the directory goes too when nothing else is in it. */
  rmdir(d->profile_dir);
  uv_close((uv_handle_t *)&d->check, check_closed_cb);
}

/* Serve the debug socket the flags, containerd or the config name. A debugging aid never stops
   the shim: a failure is logged and returned. */
int
debug_listen(debug_t *d, cshim_error_t *err)
{
  const cshim_init_ctx_t *ctx = d->ctx;
  const char *flag_socket = cshim_init_ctx_property(ctx, CSHIM_PROP_DEBUG_SOCKET);
  const char *inherited = cshim_init_ctx_property(ctx, CSHIM_PROP_DEBUG_FD);
  const char *config_socket = NULL;
  /* Asked for only when needed: the host computes it on demand (a hash). */
  const char *computed = NULL;
  int ret;

  cshim_config_get_string(ctx->config, "socket", &config_socket, NULL);
  if (is_set(flag_socket))
    ret = debug_http_listen_path(d, strip_unix(flag_socket), err);
  else if (is_set(inherited)) {
    d->socket_path = socket_name(atoi(inherited));
    d->unlink_socket = d->socket_path != NULL;
    ret = debug_http_listen_fd(d, atoi(inherited), err);
  } else if (is_set(config_socket))
    ret = debug_http_listen_path(d, strip_unix(config_socket), err);
  else if (is_set(computed = cshim_init_ctx_property(ctx, CSHIM_PROP_DEBUG_ADDRESS)))
    ret = debug_http_listen_path(d, strip_unix(computed), err);
  else
    ret = cshim_error_make(err, EINVAL,
                           "no debug socket: none was passed and the shim's own socket is unknown "
                           "(set `socket`)");
  if (ret < 0) {
    /* A debugging aid never stops the shim: say why and carry on without it. */
    cshim_log_warn(ctx->log, "debug endpoints unavailable: %s", (*err)->msg);
    return ret;
  }
  if (d->socket_path == NULL)
    cshim_log_info(ctx->log, "debug endpoints on inherited fd %s", inherited);
  else
    cshim_log_info(ctx->log, "debug endpoints on unix://%s", d->socket_path);
  return 0;
}

static int
debug_init(const cshim_init_ctx_t *ctx, void **instance, cshim_error_t *err)
{
  const char *debug_flag = cshim_init_ctx_property(ctx, CSHIM_PROP_DEBUG);
  const char *flag_socket = cshim_init_ctx_property(ctx, CSHIM_PROP_DEBUG_SOCKET);
  const char *inherited = cshim_init_ctx_property(ctx, CSHIM_PROP_DEBUG_FD);
  const char *state_dir = cshim_init_ctx_property(ctx, CSHIM_PROP_STATE_DIR);
  const char *config_socket = NULL;
  uint64_t max_seconds = DEBUG_MAX_PROFILE_SECONDS;
  int enabled, ret;
  debug_t *d;

  ret = read_config(ctx, &enabled, &config_socket, &max_seconds, err);
  if (ret < 0)
    return ret;
  if (enabled == 0) {
    cshim_error_make(err, ENOENT, "disabled by config");
    return CSHIM_PLUGIN_SKIP;
  }
  if (enabled < 0 && !(debug_flag && strcmp(debug_flag, "true") == 0) && !is_set(flag_socket) &&
      !is_set(inherited)) {
    cshim_error_make(err, ENOENT,
                     "debugging is off (run the shim with -debug or -debug-socket, or set "
                     "`enabled: true`)");
    return CSHIM_PLUGIN_SKIP;
  }

  d = cshim_xmalloc0(sizeof(*d));
  d->loop = ctx->loop;
  d->log = ctx->log;
  d->ctx = ctx;
  d->host = cshim_init_ctx_host(ctx);
  d->max_profile_seconds = (unsigned)max_seconds;
  d->profile_dir = cshim_xstrdup(is_set(state_dir) ? state_dir : DEBUG_URI);
  d->interceptor = (cshim_ttrpc_interceptor_t){.struct_size = sizeof(cshim_ttrpc_interceptor_t),
                                               .name = DEBUG_URI,
                                               .after = debug_metrics_after_cb,
                                               .data = d};
  find_publisher(d, ctx);
  find_tracer(d, ctx);

  uv_check_init(d->loop, &d->check);
  d->check.data = d;
  d->open_handles++;
  uv_check_start(&d->check, check_cb);
  uv_unref((uv_handle_t *)&d->check);
  /* Needed for uv_metrics_idle_time; harmless for everyone else on the loop. */
  uv_loop_configure(d->loop, UV_METRICS_IDLE_TIME);

  /* After a live upgrade the listener comes back through debug_upgrade_restore. */
  if (!is_set(cshim_init_ctx_property(ctx, CSHIM_PROP_RESTORING)) && debug_listen(d, err) < 0) {
    release(d);
    return CSHIM_PLUGIN_SKIP;
  }
  *instance = d;
  return 0;
}

static int
debug_register_ttrpc(void *instance, cshim_ttrpc_server_t *server, cshim_error_t *err)
{
  debug_t *d = instance;

  return cshim_ttrpc_server_add_interceptor(server, &d->interceptor, err);
}

static void
debug_close(void *instance)
{
  release(instance);
}

CSHIM_PLUGIN_DEFINE(.type = CSHIM_TYPE_HTTP, .id = "debug", .requires = debug_requires,
                    .init = debug_init, .register_ttrpc = debug_register_ttrpc,
                    .close = debug_close, .upgrade_busy = debug_upgrade_busy,
                    .upgrade_save = debug_upgrade_save, .upgrade_restore = debug_upgrade_restore)
