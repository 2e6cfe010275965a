// SPDX-License-Identifier: Apache-2.0
// The shim daemon: config, plugins in containerd's order, one ttrpc server, orderly shutdown.
#define _GNU_SOURCE
#include "shim.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>
#include <uv.h>

#include <cshim/plugin.h>
#include <cshim/shutdown.h>
#include <cshim/unix_socket.h>
#include <cshim/file.h>
#include <cshim/util.h>

#include "address.h"
#include "config.h"
#include "introspect.h"
#include "log.h"
#include "memory.h"
#include "plugins.h"
#include "reaper.h"
#include "start.h"
#include "ttrpc_server.h"
#include "upgrade.h"

/* After shutdown starts, the daemon exits within this time even if a plugin never lets go. */
#define STOP_DEADLINE_MS 10000
/* How long a stopping shim waits for calls still being worked on (e.g. a Kill waiting for its
   runtime command) to be answered before it closes the connections. */
#define STOP_DRAIN_MS 2000
/* Memory is given back once the shim has been idle this long after a child exit (the end of a
   create, start, exec or delete: the work that grows the heap and stack) or after calls (a
   Stats leaves its buffers and heap pages dirty), so a burst of them is settled once. */
#define SETTLE_DELAY_MS 1000
/* Under calls that never stop for SETTLE_DELAY_MS, memory is given back this often anyway. */
#define SETTLE_BUSY_MAX_MS 10000

typedef struct shim_s
{
  uv_loop_t *loop;
  host_log_t log;
  host_introspect_t *intro;
  host_config_t *config;
  host_reaper_t *reaper;
  host_plugins_t *plugins;
  host_ttrpc_server_t *server;
  cshim_shutdown_t *shutdown;
  uv_signal_t sigterm, sigint, sigusr1, sighup;
  uv_timer_t deadline;
  uv_timer_t settle;     /* host_memory_settle after child exits; once stopping, the drain poll */
  uint64_t settle_calls; /* the server's calls_total when the settle timer last looked */
  uint64_t settle_busy_since; /* loop time of the first postponement of a settle, or 0 */
  uint64_t drain_until;       /* loop time at which a stopping shim stops waiting for calls */
  bool settle_subscribed;
  bool signals_open;
  bool stopping;
  char *socket_path; /* to unlink at exit; NULL if unknown */
  bool own_socket;   /* socket_path is ours to unlink: inherited, or bound by us */
  bool debug_fd;     /* fd 4 is an inherited listening debug socket */
  int ready_fd;      /* start's readiness pipe (HOST_START_READY_ENV), or -1 */
  /* CSHIM_PROP_DEBUG_ADDRESS, computed on the first ask (only a serving debug plugin asks):
     hashing it loads libnettle and reads config.json, which the start-up before serving skips. */
  const host_flags_t *flags;
  char *bundle;
  char *debug_address;
  bool debug_address_done;
  host_upgrade_t *upgrade; /* live upgrade (docs/live-upgrade.md) */
} shim_t;

char *
host_shim_default_plugin_dir(const char *binary_path)
{
  cshim_autofree char *copy = cshim_xstrdup(binary_path);
  char *out;
  cshim_xasprintf(&out, "%s/../%s", dirname(copy), CSHIM_PLUGIN_RELDIR);
  return out;
}

static void
deadline_cb(uv_timer_t *t)
{
  shim_t *s = CSHIM_CONTAINER_OF(t, shim_t, deadline);
  cshim_log_error(&s->log.base, "shutdown did not finish within %d ms, exiting", STOP_DEADLINE_MS);
  if (s->socket_path && s->own_socket)
    unlink(s->socket_path);
  _exit(1);
}

static void
server_closed_cb(void *data)
{
  shim_t *s = data;
  s->server = NULL;
  if (s->plugins)
    host_plugins_close(s->plugins);
  host_introspect_set_reaper(s->intro, NULL);
  host_reaper_close(s->reaper);
  s->reaper = NULL;
}

static uint64_t
calls_total(shim_t *s)
{
  cshim_ttrpc_stats_t st;

  if (s->server == NULL)
    return 0;
  host_ttrpc_server_get_stats(s->server, &st);
  return st.calls_total;
}

static void input_cb(void *data);

static void
settle_cb(uv_timer_t *t)
{
  shim_t *s = CSHIM_CONTAINER_OF(t, shim_t, settle);
  uint64_t calls = calls_total(s), now = uv_now(s->loop);

  /* Calls came since the timer was started: settle once they stop (or they never do). */
  if (calls != s->settle_calls) {
    s->settle_calls = calls;
    if (s->settle_busy_since == 0)
      s->settle_busy_since = now;
    if (now - s->settle_busy_since < SETTLE_BUSY_MAX_MS) {
      uv_timer_start(&s->settle, settle_cb, SETTLE_DELAY_MS, 0);
      return;
    }
  }
  s->settle_busy_since = 0;
  if (s->server) {
    host_ttrpc_server_release_buffers(s->server);
    host_ttrpc_server_on_next_input(s->server, input_cb, s);
  }
  if (s->upgrade)
    host_upgrade_release_buffers(s->upgrade);
  host_memory_settle();
}

/* Start the settle timer unless it already runs (it then looks at the calls when it fires). */
static void
settle_soon(shim_t *s)
{
  if (s->stopping || uv_is_active((uv_handle_t *)&s->settle))
    return;
  s->settle_calls = calls_total(s);
  uv_timer_start(&s->settle, settle_cb, SETTLE_DELAY_MS, 0);
}

/* The first input after a settle: the calls it starts leave memory to give back. */
static void
input_cb(void *data)
{
  settle_soon(data);
}

static void
settle_on_exit(void *data, pid_t pid, int wait_status)
{
  shim_t *s = data;
  (void)pid;
  (void)wait_status;
  if (s->stopping)
    return;
  /* counted from the last exit of a burst */
  s->settle_calls = calls_total(s);
  uv_timer_start(&s->settle, settle_cb, SETTLE_DELAY_MS, 0);
}

static void
close_server(shim_t *s)
{
  host_introspect_set_server(s->intro, NULL);
  if (s->server)
    host_ttrpc_server_close(s->server, server_closed_cb, s);
  else
    server_closed_cb(s);
}

static void
drain_cb(uv_timer_t *t)
{
  shim_t *s = CSHIM_CONTAINER_OF(t, shim_t, settle);
  host_ttrpc_server_usage_t u = {0};

  host_ttrpc_server_get_usage(s->server, &u);
  if (u.calls_working > 0 && uv_now(s->loop) < s->drain_until)
    return;
  uv_timer_stop(t);
  close_server(s);
}

static void
stop(shim_t *s)
{
  if (s->stopping)
    return;
  s->stopping = true;
  uv_timer_stop(&s->settle);
  if (s->settle_subscribed) {
    host_reaper_api(s->reaper)->ops->unsubscribe(host_reaper_api(s->reaper), settle_on_exit, s);
    s->settle_subscribed = false;
  }
  cshim_log_info(&s->log.base, "shim shutting down");
  if (s->upgrade)
    host_upgrade_set_stopping(s->upgrade);
  if (s->signals_open) {
    uv_close((uv_handle_t *)&s->sigterm, NULL);
    uv_close((uv_handle_t *)&s->sigint, NULL);
    uv_close((uv_handle_t *)&s->sigusr1, NULL);
    uv_close((uv_handle_t *)&s->sighup, NULL);
    s->signals_open = false;
  }
  uv_timer_start(&s->deadline, deadline_cb, STOP_DEADLINE_MS, 0);
  uv_unref((uv_handle_t *)&s->deadline);
  if (s->server) {
    host_ttrpc_server_usage_t u = {0};
    host_ttrpc_server_get_usage(s->server, &u);
    if (u.calls_working > 0) {
      /* Answer what is being worked on rather than leave the client with `ttrpc: closed`;
         parked calls (Wait) are not waited for. The settle timer is idle from here on. */
      cshim_log_info(&s->log.base, "waiting up to %d ms for %zu call(s) being worked on",
                     STOP_DRAIN_MS, u.calls_working);
      s->drain_until = uv_now(s->loop) + STOP_DRAIN_MS;
      uv_ref((uv_handle_t *)&s->settle);
      uv_timer_start(&s->settle, drain_cb, 10, 10);
      return;
    }
  }
  close_server(s);
}

static void
shutdown_done_cb(void *data)
{
  stop(data);
}

static void
signal_cb(uv_signal_t *h, int signum)
{
  shim_t *s = h->data;
  if (signum == SIGUSR1) {
    host_introspect_dump(s->intro, &s->log.base);
    return;
  }
  if (signum == SIGHUP) {
    host_upgrade_signal(s->upgrade);
    return;
  }
  cshim_log_info(&s->log.base, "received %s", strsignal(signum));
  if (s->shutdown)
    s->shutdown->shutdown(s->shutdown);
  else
    stop(s);
}

/* The bundle's `log` FIFO becomes stderr, as in containerd's shims. containerd keeps it open for
   reading; without a reader (containerd down) writes must fail fast rather than block. */
static void
setup_log_fifo(void)
{
  struct stat st;
  int fd;

  if (stat("log", &st) < 0 || !S_ISFIFO(st.st_mode))
    return;
  fd = open("log", O_WRONLY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0)
    return;
  dup2(fd, STDERR_FILENO);
  close(fd);
}

static void
set_nonblocking(int fd)
{
  int fl = fcntl(fd, F_GETFL);
  struct stat st;
  /* Only pipes: a terminal or file shared with a parent must keep its flags. */
  if (fl >= 0 && fstat(fd, &st) == 0 && S_ISFIFO(st.st_mode))
    fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

/* The config the daemon runs with: the one `start` recorded in the bundle (so start, daemon and
   delete agree), else the normal resolution. */
int
host_shim_load_config(const char *argv0, const char *default_plugin_dir, host_config_t **out,
                      cshim_error_t *err)
{
  cshim_autofree char *recorded = NULL;
  cshim_error_t ignored = NULL;

  /* cwd is the bundle. A choice that cannot be read falls back to the normal resolution. */
  if (host_start_read_config_choice(".", &recorded, &ignored) < 0)
    cshim_error_release(&ignored);
  if (recorded && strcmp(recorded, HOST_CONFIG_EMBEDDED) == 0)
    return host_config_parse(host_default_config, host_default_config_len, HOST_CONFIG_EMBEDDED,
                             default_plugin_dir, out, err);
  return host_config_resolve(recorded, getenv("CSHIM_CONFIG"), argv0,
                             getenv("CSHIM_ETC_DIR") ? getenv("CSHIM_ETC_DIR") : "/etc/cshim",
                             default_plugin_dir, out, err);
}

static char *
listener_path(int fd)
{
  return cshim_unix_socket_path(fd);
}

static int
start_signals(shim_t *s, cshim_error_t *err)
{
  uv_signal_t *hs[] = {&s->sigterm, &s->sigint, &s->sigusr1, &s->sighup};
  int sigs[] = {SIGTERM, SIGINT, SIGUSR1, SIGHUP};
  for (size_t i = 0; i < CSHIM_N_ELEMENTS(hs); i++) {
    uv_signal_init(s->loop, hs[i]);
    hs[i]->data = s;
  }
  s->signals_open = true;
  for (size_t i = 0; i < CSHIM_N_ELEMENTS(hs); i++) {
    int r = uv_signal_start(hs[i], signal_cb, sigs[i]);
    if (r < 0)
      return cshim_error_from_uv(err, r, "watch signal %d", sigs[i]);
    /* Signals alone must not keep the loop alive. */
    uv_unref((uv_handle_t *)hs[i]);
  }
  return 0;
}

/* containerd 2.x hands the debug socket over as fd 4 (a listening Unix stream socket). */
static bool
inherited_debug_listener(void)
{
  int v = 0;
  socklen_t len = sizeof v;

  if (getsockopt(4, SOL_SOCKET, SO_ACCEPTCONN, &v, &len) < 0 || v != 1)
    return false;
  len = sizeof v;
  if (getsockopt(4, SOL_SOCKET, SO_DOMAIN, &v, &len) < 0 || v != AF_UNIX)
    return false;
  len = sizeof v;
  if (getsockopt(4, SOL_SOCKET, SO_TYPE, &v, &len) < 0 || v != SOCK_STREAM)
    return false;
  fcntl(4, F_SETFD, FD_CLOEXEC);
  return true;
}

/* The debug socket containerd would compute (§4.10, "/debug" appended), in the directory of our
   own ttrpc socket; NULL when that is unknown. */
static char *
debug_address(const shim_t *s, const host_flags_t *flags, const char *bundle)
{
  cshim_autofree char *dir = NULL;
  cshim_autofree char *group = NULL;
  cshim_autofree char *address = NULL;
  cshim_error_t err = NULL;

  if (s->socket_path == NULL || s->socket_path[0] != '/')
    return NULL;
  if (host_address_group(bundle, flags->id ? flags->id : "", &group, &err) < 0) {
    cshim_log_warn(&s->log.base, "no default debug socket: %s", err->msg);
    cshim_error_release(&err);
    return NULL;
  }
  dir = cshim_xstrdup(s->socket_path);
  address = host_address_socket(dirname(dir), flags->address ? flags->address : "",
                                flags->namespace_ ? flags->namespace_ : "", group, true);
  if (address == NULL)
    return NULL;
  return cshim_xstrdup(host_address_path(address));
}

/* The binary's path and the working directory, exactly as long as they are:
   run()'s frame stays under the serving loop for the shim's life, PATH_MAX buffers must not. */
static __attribute__((noinline)) int
own_paths(char **exe, char **cwd, cshim_error_t *err)
{
  char buf[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);

  if (n < 0)
    return cshim_error_sys(err, errno, "resolve own binary");
  buf[n] = '\0';
  *cwd = getcwd(NULL, 0);
  if (*cwd == NULL)
    return cshim_error_sys(err, errno, "getcwd");
  *exe = cshim_xstrdup(buf);
  return 0;
}

/* glibc has read the tunables start gave this daemon; what it starts gets the value containerd
   gave the shim (HOST_START_TUNABLES_ENV). */
static void
restore_tunables(void)
{
  const char *v = getenv(HOST_START_TUNABLES_ENV);

  if (v == NULL)
    return;
  if (v[0] == '=')
    setenv("GLIBC_TUNABLES", v + 1, 1);
  else
    unsetenv("GLIBC_TUNABLES");
  unsetenv(HOST_START_TUNABLES_ENV);
}

/* The pipe `start` waits on, when it spawned us: taken out of the environment so that nothing
   this daemon starts inherits the name. */
static int
take_ready_fd(void)
{
  const char *v = getenv(HOST_START_READY_ENV);
  struct stat st;
  char *end = NULL;
  long fd;

  if (v == NULL)
    return -1;
  fd = strtol(v, &end, 10);
  unsetenv(HOST_START_READY_ENV);
  if (end == NULL || *end != '\0' || fd < 3 || fd > 1024 || fstat((int)fd, &st) < 0 ||
      !S_ISFIFO(st.st_mode))
    return -1;
  fcntl((int)fd, F_SETFD, FD_CLOEXEC);
  fcntl((int)fd, F_SETFL, fcntl((int)fd, F_GETFL) | O_NONBLOCK);
  return (int)fd;
}

/* Tell start whether we serve (HOST_START_READY) or why not, once. */
static void
report_to_start(shim_t *s, const char *text)
{
  cshim_error_t ignored = NULL;

  if (s->ready_fd < 0)
    return;
  /* A failure means start is gone or not reading: it will answer on its own. */
  cshim_file_write_fd(s->ready_fd, text, strlen(text), NULL, &ignored);
  cshim_error_release(&ignored);
  close(s->ready_fd);
  s->ready_fd = -1;
}

static const char *
lazy_property(void *data, const char *key)
{
  shim_t *s = data;

  if (strcmp(key, CSHIM_PROP_DEBUG_ADDRESS) != 0)
    return NULL;
  if (!s->debug_address_done) {
    s->debug_address_done = true;
    s->debug_address = debug_address(s, s->flags, s->bundle);
  }
  return s->debug_address;
}

/* A live upgrade hands over its state first: an unreadable one goes straight back. */
static int
load_upgrade_state(shim_t *s, const host_flags_t *flags, int argc, char **argv, const char *exe,
                   cshim_error_t *err)
{
  int ret;

  s->upgrade = host_upgrade_new(s->loop, &s->log.base, argc, argv, exe);
  ret = host_upgrade_load(s->upgrade, flags, err);
  if (ret < 0)
    return ret;
  if (host_upgrade_restoring(s->upgrade)) {
    free(s->socket_path);
    s->socket_path = cshim_xstrdup(host_upgrade_socket_path(s->upgrade));
    s->own_socket = s->socket_path != NULL;
    s->debug_fd = host_upgrade_debug_fd(s->upgrade) != NULL;
  }
  host_upgrade_set_identity(s->upgrade, s->socket_path, s->debug_fd ? "4" : NULL);
  cshim_host_add_state_source(host_introspect_api(s->intro), "upgrade", host_upgrade_dump_json,
                              s->upgrade, NULL);
  /* plugins give up descriptors a crash snapshot may name through the crash guard */
  host_introspect_set_close_fd(s->intro, host_upgrade_close_fd, s->upgrade);
  return 0;
}

/* The properties every plugin sees, as key, value, ..., NULL in props (room for cap entries);
   the values are borrowed from flags, s and the arguments. */
static int
plugin_properties(shim_t *s, const host_flags_t *flags, const char *exe, const char *cwd,
                  const char *ttrpc_address, const char **props, size_t cap, cshim_error_t *err)
{
  size_t np = 0;

/* A key, a value and the closing NULL must fit: refuse rather than write past props. */
#define PROP(k, v)                                                                                 \
  do                                                                                               \
    if ((v) != NULL) {                                                                             \
      if (np + 3 > cap)                                                                            \
        return cshim_error_make(err, E2BIG, "plugin property `%s`: more than %zu properties", (k), \
                                cap / 2 - 1);                                                      \
      props[np++] = (k);                                                                           \
      props[np++] = (v);                                                                           \
    }                                                                                              \
  while (0)
  PROP(CSHIM_PROP_NAMESPACE, flags->namespace_);
  PROP(CSHIM_PROP_ID, flags->id);
  PROP(CSHIM_PROP_BUNDLE, cwd);
  PROP(CSHIM_PROP_GRPC_ADDRESS, flags->address);
  PROP(CSHIM_PROP_TTRPC_ADDRESS, ttrpc_address);
  PROP(CSHIM_PROP_DEBUG, flags->debug ? "true" : "false");
  PROP(CSHIM_PROP_DEBUG_SOCKET, flags->debug_socket);
  PROP(CSHIM_PROP_SOCKET, s->socket_path);
  PROP(CSHIM_PROP_BINARY, exe);
  PROP(CSHIM_PROP_CONFIG_PATH, s->config->source);
  PROP(CSHIM_PROP_DEBUG_FD, s->debug_fd ? "4" : NULL);
  PROP(CSHIM_PROP_RESTORING, host_upgrade_restoring(s->upgrade) ? "true" : NULL);
#undef PROP
  props[np] = NULL;
  return 0;
}

/* Load the configured modules with props and initialise them. */
static int
load_plugins(shim_t *s, const host_flags_t *flags, const char *cwd, const char *const *props,
             cshim_error_t *err)
{
  cshim_autofree char **paths = NULL;
  cshim_autofree const char **disabled = NULL;
  host_plugins_options_t opts;
  int ret;

  paths = cshim_xmalloc0((s->config->n_modules + 1) * sizeof *paths);
  for (size_t i = 0; i < s->config->n_modules; i++)
    paths[i] = host_config_module_path(s->config, i);
  disabled = cshim_xmalloc0((s->config->n_disabled + 1) * sizeof *disabled);
  for (size_t i = 0; i < s->config->n_disabled; i++)
    disabled[i] = s->config->disabled[i];

  memset(&opts, 0, sizeof opts);
  opts.loop = s->loop;
  opts.properties = props;
  opts.plugins_map = s->config->plugins;
  opts.disabled = disabled;
  opts.log = &s->log.base;
  opts.reaper = host_reaper_api(s->reaper);
  opts.host = host_introspect_api(s->intro);
  s->flags = flags;
  s->bundle = cshim_xstrdup(cwd);
  opts.lazy_property = lazy_property;
  opts.lazy_data = s;

  ret =
      host_plugins_load((const char *const *)paths, s->config->n_modules, &opts, &s->plugins, err);
  for (size_t i = 0; i < s->config->n_modules; i++)
    free(paths[i]);
  if (ret < 0)
    return ret;
  host_introspect_set_plugins(s->intro, s->plugins);
  return host_plugins_init(s->plugins, err);
}

/* The ttrpc server with every plugin's services and the upgrade service, the shutdown plugin's
   callback and the signal handlers: all before the socket exists (a client that sees it may
   signal the shim, and SIGUSR1's default action would end it). */
static int
prepare_server(shim_t *s, cshim_error_t *err)
{
  int ret;

  ret = host_ttrpc_server_new(s->loop, &s->log.base, &s->server, err);
  if (ret < 0)
    return ret;
  host_ttrpc_server_set_limits(
      s->server, &(host_ttrpc_server_limits_t){
                     .max_calls_in_flight = s->config->ttrpc_max_calls_in_flight,
                     .buffer_budget = s->config->ttrpc_buffer_budget,
                     .stalled_frame_timeout_ms = s->config->ttrpc_stalled_frame_timeout_ms,
                 });
  host_introspect_set_server(s->intro, s->server);
  ret = host_plugins_register(s->plugins, host_ttrpc_server_api(s->server), err);
  if (ret < 0)
    return ret;
  host_upgrade_set_parts(s->upgrade, s->plugins, s->server, s->reaper);
  ret = host_upgrade_register(s->upgrade, host_ttrpc_server_api(s->server), err);
  if (ret < 0)
    return ret;

  s->shutdown = host_plugins_find(s->plugins, CSHIM_TYPE_INTERNAL, "shutdown");
  if (s->shutdown) {
    ret = s->shutdown->on_done(s->shutdown, shutdown_done_cb, s, err);
    if (ret < 0)
      return ret;
  }
  return start_signals(s, err);
}

/* Serve: the sockets a restored image keeps, -socket PATH, or the listening socket on fd 3. */
static int
listen_socket(shim_t *s, const host_flags_t *flags, cshim_error_t *err)
{
  int ret;

  if (host_upgrade_restoring(s->upgrade))
    ret = host_upgrade_restore(s->upgrade, err);
  else if (flags->socket)
    ret = host_ttrpc_server_listen_path(s->server, flags->socket, err);
  else {
    int type = 0;
    socklen_t len = sizeof type;
    if (getsockopt(3, SOL_SOCKET, SO_TYPE, &type, &len) < 0 || type != SOCK_STREAM)
      return cshim_error_make(err, EBADF,
                              "no listening socket: pass -socket PATH or a unix socket as fd 3");
    ret = host_ttrpc_server_listen_fd(s->server, 3, err);
  }
  if (ret < 0)
    return ret;
  s->own_socket = true;
  return 0;
}

static int
run(shim_t *s, const host_flags_t *flags, int argc, char **argv, cshim_error_t *err)
{
  cshim_autofree char *exe = NULL;
  cshim_autofree char *cwd = NULL;
  cshim_autofree char *plugin_dir = NULL;
  cshim_autofree char *ttrpc_address = NULL;
  const char *props[32];
  int ret;

  ret = own_paths(&exe, &cwd, err);
  if (ret < 0)
    return ret;
  ret = load_upgrade_state(s, flags, argc, argv, exe, err);
  if (ret < 0)
    return ret;

  plugin_dir = host_shim_default_plugin_dir(exe);
  ret = host_shim_load_config(argv[0], plugin_dir, &s->config, err);
  if (ret < 0)
    return cshim_error_wrap(err, "load config");
  s->log.base.level = flags->debug ? CSHIM_LOG_DEBUG : s->config->log_level;
  host_introspect_set_config(s->intro, s->config->source, s->config->root);

  ret = host_reaper_new(s->loop, &s->log.base, &s->reaper, err);
  if (ret < 0)
    return ret;
  host_introspect_set_reaper(s->intro, s->reaper);

  if (getenv("TTRPC_ADDRESS") && *getenv("TTRPC_ADDRESS"))
    ttrpc_address = cshim_xstrdup(getenv("TTRPC_ADDRESS"));
  else if (flags->address)
    cshim_xasprintf(&ttrpc_address, "%s.ttrpc", flags->address);
  ret = plugin_properties(s, flags, exe, cwd, ttrpc_address, props, CSHIM_N_ELEMENTS(props), err);
  if (ret == 0)
    ret = load_plugins(s, flags, cwd, props, err);
  if (ret == 0)
    ret = prepare_server(s, err);
  if (ret == 0)
    ret = listen_socket(s, flags, err);
  if (ret < 0)
    return ret;

  ret = host_reaper_api(s->reaper)->ops->subscribe(host_reaper_api(s->reaper), settle_on_exit, s,
                                                   err);
  if (ret < 0)
    return ret;
  s->settle_subscribed = true;

  cshim_log_info(&s->log.base, "cshim %s serving on `%s` (config `%s`)", CSHIM_VERSION,
                 s->socket_path ? s->socket_path : "fd 3", s->config->source);
  report_to_start(s, HOST_START_READY);
  if (host_upgrade_restoring(s->upgrade))
    host_upgrade_finish(s->upgrade);
  if (host_upgrade_guard_start(s->upgrade, err) < 0) {
    cshim_log_info(&s->log.base, "no crash survival: %s", (*err)->msg);
    cshim_error_release(err);
  }
  /* Start-up's memory is given back later, as after a burst of runtime commands: done here it
     would delay the first call (containerd's Create follows the address at once), and the
     Create that follows re-grows the heap and faults back the pages it drops. The timer waits
     for the calls to stop (settle_cb), then arms the input hook for the next burst. */
  s->settle_calls = calls_total(s);
  uv_timer_start(&s->settle, settle_cb, SETTLE_DELAY_MS, 0);
  uv_run(s->loop, UV_RUN_DEFAULT);
  return 0;
}

/* What every line of the daemon carries, as containerd's shims do: which task group, where. */
static char *
log_fields(const host_flags_t *flags)
{
  cshim_autofree char *id = cshim_log_fields_append(NULL, "id", flags->id ? flags->id : "");
  return cshim_log_fields_append(id, "namespace", flags->namespace_ ? flags->namespace_ : "");
}

int
host_shim_serve(const host_flags_t *flags, int argc, char **argv, cshim_error_t *err)
{
  cshim_autofree char *fields = NULL;
  shim_t s;
  int ret;

  host_memory_init();
  memset(&s, 0, sizeof s);
  restore_tunables();
  /* After a live upgrade every descriptor is the previous image's: none is start's or
     containerd's to take. */
  s.ready_fd = flags->upgrade_state == NULL ? take_ready_fd() : -1;
  s.debug_fd = flags->upgrade_state == NULL && inherited_debug_listener();
  signal(SIGPIPE, SIG_IGN);
  if (flags->socket == NULL)
    setup_log_fifo();
  set_nonblocking(STDERR_FILENO);
  fields = log_fields(flags);
  host_log_init(&s.log, STDERR_FILENO, CSHIM_LOG_INFO, fields);

  /* Container processes whose parent dies are reparented to us, so we see their exits. */
  if (prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) < 0) {
    cshim_error_sys(err, errno, "become child subreaper");
    cshim_log_error(&s.log.base, "%s", (*err)->msg);
    report_to_start(&s, (*err)->msg);
    return (*err)->status;
  }

  s.loop = uv_default_loop();
  s.intro = host_introspect_new(s.loop, CSHIM_VERSION);
  host_introspect_set_log(s.intro, &s.log);
  uv_timer_init(s.loop, &s.deadline);
  uv_timer_init(s.loop, &s.settle);
  /* Never what keeps the loop alive. */
  uv_unref((uv_handle_t *)&s.settle);
  s.socket_path = flags->socket                  ? cshim_xstrdup(flags->socket)
                  : flags->upgrade_state == NULL ? listener_path(3)
                                                 : NULL;
  /* The fd 3 socket was made for us by start; a -socket path becomes ours only once we bound
     it: before that it may be another daemon's live socket. */
  s.own_socket = flags->socket == NULL;

  ret = run(&s, flags, argc, argv, err);
  if (ret < 0 && s.upgrade && host_upgrade_restoring(s.upgrade)) {
    /* Nothing of the handed-over state has been touched: give it back to the previous image
       (returns only if that is impossible). */
    cshim_error_t copy = NULL;
    cshim_error_make(&copy, EIO, "%s", (*err)->msg);
    host_upgrade_rollback(s.upgrade, &copy);
    cshim_error_release(&copy);
  }
  if (ret < 0) {
    cshim_log_error(&s.log.base, "%s", (*err)->msg);
    report_to_start(&s, (*err)->msg);
    stop(&s);
    uv_run(s.loop, UV_RUN_DEFAULT);
  }

  uv_close((uv_handle_t *)&s.deadline, NULL);
  uv_close((uv_handle_t *)&s.settle, NULL);
  uv_run(s.loop, UV_RUN_DEFAULT);
  host_plugins_unload(s.plugins);
  if (s.upgrade)
    cshim_host_remove_state_source(host_introspect_api(s.intro), "upgrade", s.upgrade);
  host_introspect_set_close_fd(s.intro, NULL, NULL);
  host_upgrade_free(s.upgrade);
  host_introspect_free(s.intro);
  host_config_free(s.config);
  if (s.socket_path && s.own_socket)
    unlink(s.socket_path);
  free(s.socket_path);
  free(s.bundle);
  free(s.debug_address);
  uv_loop_close(s.loop);
  cshim_log_info(&s.log.base, "shim exited");
  return ret;
}
