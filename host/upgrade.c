// SPDX-License-Identifier: Apache-2.0
// Live upgrade: quiet point, state hand-over through a memfd and execve, restore in the new
// image, rollback to the previous one (docs/live-upgrade.md).
#define _GNU_SOURCE
#include "upgrade.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <cshim/plugin.h>
#include <cshim/util.h>

#include <jansson.h>

#include "cshim/upgrade/v1/upgrade.pb-c.h"

extern char **environ;

/* Crash journal: calls being handled; requests of calls that are run again after a crash (those
   that only read, and Start) up to JOURNAL_REQUEST_MAX bytes are kept. Exits reaped since the
   last snapshot, at most JOURNAL_EXITS_MAX. */
#define JOURNAL_MAX 1024
#define JOURNAL_REQUEST_MAX 480
#define JOURNAL_EXITS_MAX 1024
#define JOURNAL_CONNS_MAX 1024
/* Entries the crash handler appends after the document: kind u32, a u32, b u32, length u32,
   then length bytes. */
enum
{
  J_CALL = 1,  /* a: connection fd, b: stream id, bytes: the request to run again (or none) */
  J_EXIT = 2,  /* a: pid, b: raw wait status (reaped after the snapshot) */
  J_INPUT = 3, /* a: connection fd, b: discarded bytes, bytes: input not yet framed */
  J_END = 4,   /* the journal is whole: connections without J_INPUT were closed */
};

/* Top-level records of the state document; never reuse a number. */
enum
{
  REC_HOST = 1,    /* list */
  REC_SERVER = 2,  /* list: host_ttrpc_server_save */
  REC_PLUGINS = 3, /* list of REC_PLUGIN */
  REC_FDS = 4,     /* list of FD_ENTRY: every descriptor handed over */
  REC_REAPER = 5,  /* list of REAPER_EXIT: exits nobody has been told of yet */
};
enum
{
  REAPER_EXIT = 1, /* list */
  EXIT_PID = 1,
  EXIT_STATUS = 2,
  EXIT_AT_NS = 3, /* CLOCK_MONOTONIC when reaped */
};
enum
{
  HOST_VERSION = 1,
  HOST_BINARY = 2, /* the saving image's own binary */
  HOST_GENERATION = 3,
  HOST_UPGRADES = 4,
  HOST_ROLLBACKS = 5,
  HOST_REFUSALS = 6,
  HOST_LAST_PAUSE_NS = 7,
  HOST_PAUSED_AT_NS = 8, /* CLOCK_MONOTONIC when reading stopped */
  HOST_VIA_CALL = 9,     /* an Upgrade call waits for the outcome */
  HOST_TARGET = 10,      /* the binary asked for */
  HOST_SOCKET = 11,      /* the ttrpc socket path, when known */
  HOST_DEBUG_FD = 12,    /* the debug listener containerd passed (CSHIM_PROP_DEBUG_FD) */
  HOST_PREVIOUS_VERSION = 13,
};
enum
{
  REC_PLUGIN = 1, /* list */
  PLUGIN_URI = 1,
  PLUGIN_STATE = 2, /* list: the plugin's own records */
  FD_ENTRY = 1,
};

struct host_upgrade_s
{
  uv_loop_t *loop;
  const cshim_logger_t *log;
  char **argv; /* without -upgrade-* flags; NULL-terminated */
  size_t argc;
  char *binary;
  host_plugins_t *plugins;
  host_ttrpc_server_t *server;
  host_reaper_t *reaper;
  bool stopping;
  cshim_ttrpc_service_t service;
  host_upgrade_stats_t stats;
  char *previous_version;
  char *socket_path; /* from the state */
  char *debug_fd;    /* from the state */

  /* old image: an upgrade waiting for its quiet point */
  bool pending;
  cshim_ttrpc_call_t *call; /* NULL for SIGHUP */
  char *target;
  uint64_t paused_at_ns;
  uint64_t timeout_ms;
  uv_check_t check;
  uv_timer_t timer;
  int open_handles;
  char reason[256];

  /* new image */
  bool restoring;
  bool answer_pending; /* the re-dispatched Upgrade call gets the outcome */
  uint8_t *doc;
  size_t doc_len;
  cshim_state_reader_t body;
  int state_fd, exe_fd;
  char *rollback_reason;
  char *old_version;
  char *old_binary;
  char *old_target;
  uint64_t pause_ns;
  size_t n_fds;
  /* after a crash: the signal, and the calls that were being handled (fd, stream id) */
  int crash_signal;
  unsigned crash_restarts;
  int64_t crash_first_s;
  char *crash_flag; /* -upgrade-crash as given: a hand-back carries it on */
  uint8_t *journal; /* J_* entries */
  size_t journal_len;
  size_t n_journal;       /* calls */
  size_t n_journal_exits; /* exits reaped after the snapshot */
  bool journal_whole;     /* J_END seen: live_fds is every connection open at the crash */
  int *live_fds;
  size_t n_live_fds;
  /* crash guard (old image side) */
  uv_check_t guard;
  bool guard_on;
  uint64_t guard_gen[3];
  uint64_t guard_mutations; /* calls that may change state, dispatched or answered */
  bool guard_now;           /* such a call is being dispatched: a snapshot right after it */
  uint64_t guard_at_ns;
  /* Descriptors given up (host_upgrade_close_fd) that the active crash snapshot may still name:
     open until a snapshot that does not name them is taken (or none is kept any more), so the
     snapshot never names a closed or reused number. */
  int *deferred;
  size_t n_deferred, cap_deferred;
  uv_idle_t kick; /* a snapshot is due for them: the loop turns without waiting */
  bool kick_init;
};

static bool
is_upgrade_flag(const char *a, size_t *consumed)
{
  static const char *const names[] = {"upgrade-state", "upgrade-exe", "upgrade-rollback",
                                      "upgrade-crash"};
  const char *p = a;

  if (*p != '-')
    return false;
  p++;
  if (*p == '-')
    p++;
  for (size_t i = 0; i < CSHIM_N_ELEMENTS(names); i++) {
    size_t n = strlen(names[i]);
    if (strncmp(p, names[i], n) != 0)
      continue;
    if (p[n] == '=') {
      *consumed = 1;
      return true;
    }
    if (p[n] == '\0') {
      *consumed = 2;
      return true;
    }
  }
  return false;
}

host_upgrade_t *
host_upgrade_new(uv_loop_t *loop, const cshim_logger_t *log, int argc, char **argv,
                 const char *binary)
{
  host_upgrade_t *u = cshim_xmalloc0(sizeof *u);

  u->loop = loop;
  u->log = log;
  u->binary = cshim_xstrdup(binary);
  u->argv = cshim_xmalloc0(((size_t)argc + 1) * sizeof *u->argv);
  for (int i = 0; i < argc;) {
    size_t skip = 0;
    if (i > 0 && is_upgrade_flag(argv[i], &skip)) {
      i += (int)skip;
      continue;
    }
    u->argv[u->argc++] = cshim_xstrdup(argv[i++]);
  }
  u->state_fd = u->exe_fd = -1;
  return u;
}

void
host_upgrade_free(host_upgrade_t *u)
{
  if (u == NULL)
    return;
  for (size_t i = 0; i < u->argc; i++)
    free(u->argv[i]);
  free(u->argv);
  free(u->binary);
  free(u->target);
  free(u->previous_version);
  free(u->socket_path);
  free(u->debug_fd);
  free(u->doc);
  free(u->rollback_reason);
  free(u->old_version);
  free(u->old_binary);
  free(u->old_target);
  free(u->journal);
  free(u->live_fds);
  free(u->crash_flag);
  for (size_t i = 0; i < u->n_deferred; i++)
    close(u->deferred[i]);
  free(u->deferred);
  if (u->state_fd >= 0)
    close(u->state_fd);
  if (u->exe_fd >= 0)
    close(u->exe_fd);
  free(u);
}

void
host_upgrade_set_parts(host_upgrade_t *u, host_plugins_t *plugins, host_ttrpc_server_t *server,
                       host_reaper_t *reaper)
{
  u->plugins = plugins;
  u->server = server;
  u->reaper = reaper;
}

static void end_wait(host_upgrade_t *u);
static void kick_snapshot(host_upgrade_t *u);
static void refuse(host_upgrade_t *u, int code, bool rollback, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

void
host_upgrade_set_identity(host_upgrade_t *u, const char *socket_path, const char *debug_fd)
{
  free(u->socket_path);
  free(u->debug_fd);
  u->socket_path = cshim_xstrdup(socket_path);
  u->debug_fd = cshim_xstrdup(debug_fd);
}

static void guard_stop(host_upgrade_t *u);

void
host_upgrade_set_stopping(host_upgrade_t *u)
{
  u->stopping = true;
  guard_stop(u);
  if (u->pending) {
    end_wait(u);
    refuse(u, CSHIM_GRPC_UNAVAILABLE, false, "refused: the shim is shutting down");
  }
}

void
host_upgrade_stats(const host_upgrade_t *u, host_upgrade_stats_t *out)
{
  *out = u->stats;
  out->previous_version = u->previous_version;
}

const char *
host_upgrade_socket_path(const host_upgrade_t *u)
{
  return u->socket_path;
}

const char *
host_upgrade_debug_fd(const host_upgrade_t *u)
{
  return u->debug_fd;
}

/* ---- the old image ---- */

static void
handle_closed_cb(uv_handle_t *h)
{
  host_upgrade_t *u = h->data;
  u->open_handles--;
}

static void
end_wait(host_upgrade_t *u)
{
  u->check.data = u->timer.data = u;
  uv_close((uv_handle_t *)&u->check, handle_closed_cb);
  uv_close((uv_handle_t *)&u->timer, handle_closed_cb);
}

static void
finish_attempt(host_upgrade_t *u)
{
  u->pending = false;
  u->call = NULL;
  free(u->target);
  u->target = NULL;
}

/* The upgrade did not happen; the old image carries on. */
static void
refuse(host_upgrade_t *u, int code, bool rollback, const char *fmt, ...)
{
  cshim_autofree char *msg = NULL;
  va_list ap;

  va_start(ap, fmt);
  if (vasprintf(&msg, fmt, ap) < 0)
    abort();
  va_end(ap);
  cshim_log_warn(u->log, "upgrade: %s", msg);
  if (rollback)
    u->stats.rollbacks++;
  else
    u->stats.refusals++;

  if (u->call) {
    cshim_error_t err = NULL;
    cshim_error_make_code(&err, code, "%s", msg);
    cshim_ttrpc_call_fail_error(u->call, &err);
  }
  finish_attempt(u);
  kick_snapshot(u); /* descriptors given up while it waited */
}

/* Why the shim is not quiet, or NULL. */
static const char *
busy(host_upgrade_t *u)
{
  const char *why = host_ttrpc_server_busy(u->server);
  size_t n = host_plugins_n_ordered(u->plugins);

  if (why)
    return why;
  for (size_t i = 0; i < n; i++) {
    const cshim_plugin_t *desc;
    const char *uri;
    void *instance;
    host_plugins_ordered(u->plugins, i, &uri, &desc, &instance);
    if (instance == NULL || desc == NULL)
      continue;
    why = cshim_plugin_upgrade_busy(desc, instance);
    if (why) {
      snprintf(u->reason, sizeof u->reason, "%s: %s", uri, why);
      return u->reason;
    }
  }
  return NULL;
}

static void
set_cloexec(const int *fds, size_t n, bool on)
{
  for (size_t i = 0; i < n; i++) {
    int fl = fcntl(fds[i], F_GETFD);
    if (fl >= 0)
      fcntl(fds[i], F_SETFD, on ? fl | FD_CLOEXEC : fl & ~FD_CLOEXEC);
  }
}

static void
save_exit(void *data, pid_t pid, int status, uint64_t at_ns)
{
  cshim_state_writer_t *w = data;
  cshim_state_begin(w, REAPER_EXIT);
  cshim_state_put_u32(w, EXIT_PID, (uint32_t)pid);
  cshim_state_put_u32(w, EXIT_STATUS, (uint32_t)status);
  cshim_state_put_u64(w, EXIT_AT_NS, at_ns);
  cshim_state_end(w);
}

static int
save_document(host_upgrade_t *u, cshim_state_writer_t *w, uint8_t **doc, size_t *len,
              cshim_error_t *err)
{
  size_t n = host_plugins_n_ordered(u->plugins);
  const int *fds;
  size_t n_fds;
  int ret;

  cshim_state_begin(w, REC_HOST);
  cshim_state_put_str(w, HOST_VERSION, CSHIM_VERSION);
  cshim_state_put_str(w, HOST_BINARY, u->binary);
  cshim_state_put_u64(w, HOST_GENERATION, u->stats.generation);
  cshim_state_put_u64(w, HOST_UPGRADES, u->stats.upgrades);
  cshim_state_put_u64(w, HOST_ROLLBACKS, u->stats.rollbacks);
  cshim_state_put_u64(w, HOST_REFUSALS, u->stats.refusals);
  cshim_state_put_u64(w, HOST_LAST_PAUSE_NS, u->stats.last_pause_ns);
  cshim_state_put_u64(w, HOST_PAUSED_AT_NS, u->paused_at_ns);
  cshim_state_put_bool(w, HOST_VIA_CALL, u->call != NULL);
  cshim_state_put_str(w, HOST_TARGET, u->target);
  cshim_state_put_str(w, HOST_SOCKET, u->socket_path);
  cshim_state_put_str(w, HOST_DEBUG_FD, u->debug_fd);
  cshim_state_put_str(w, HOST_PREVIOUS_VERSION, u->previous_version);
  cshim_state_end(w);

  cshim_state_begin(w, REC_SERVER);
  ret = host_ttrpc_server_save(u->server, w, err);
  if (ret < 0)
    return ret;
  cshim_state_end(w);

  cshim_state_begin(w, REC_PLUGINS);
  for (size_t i = 0; i < n; i++) {
    const cshim_plugin_t *desc;
    const char *uri;
    void *instance;
    host_plugins_ordered(u->plugins, i, &uri, &desc, &instance);
    if (instance == NULL || desc == NULL)
      continue;
    if (!cshim_plugin_upgrade_hooks(desc))
      return cshim_error_make(err, ENOTSUP, "plugin `%s` cannot hand over its state", uri);
    cshim_state_begin(w, REC_PLUGIN);
    cshim_state_put_str(w, PLUGIN_URI, uri);
    cshim_state_begin(w, PLUGIN_STATE);
    ret = desc->upgrade_save(instance, w, err);
    if (ret < 0)
      return cshim_error_wrap(err, "save the state of `%s`", uri);
    cshim_state_end(w);
    cshim_state_end(w);
  }
  cshim_state_end(w);

  if (u->reaper) {
    cshim_state_begin(w, REC_REAPER);
    host_reaper_foreach_unclaimed(u->reaper, save_exit, w);
    cshim_state_end(w);
  }

  fds = cshim_state_writer_fds(w, &n_fds);
  cshim_state_begin(w, REC_FDS);
  for (size_t i = 0; i < n_fds; i++)
    cshim_state_put_u32(w, FD_ENTRY, (uint32_t)fds[i]);
  cshim_state_end(w);
  return cshim_state_writer_finish(w, doc, len, err);
}

static int
write_memfd(const uint8_t *doc, size_t len, cshim_error_t *err)
{
  int fd = memfd_create("cshim-upgrade-state", 0); /* no MFD_CLOEXEC: it crosses the exec */
  size_t off = 0;

  if (fd < 0)
    return cshim_error_sys(err, errno, "memfd_create");
  while (off < len) {
    ssize_t n = write(fd, doc + off, len - off);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0) {
      int e = n < 0 ? errno : EIO;
      close(fd);
      return cshim_error_sys(err, e, "write the state");
    }
    off += (size_t)n;
  }
  return fd;
}

/* argv + the hand-over flags; strings in bufs. */
static char **
exec_argv(host_upgrade_t *u, int state_fd, int exe_fd, const char *rollback, char bufs[2][16])
{
  char **argv = cshim_xmalloc0((u->argc + 9) * sizeof *argv);
  size_t n = 0;

  for (size_t i = 0; i < u->argc; i++)
    argv[n++] = u->argv[i];
  snprintf(bufs[0], 16, "%d", state_fd);
  snprintf(bufs[1], 16, "%d", exe_fd);
  argv[n++] = "-upgrade-state";
  argv[n++] = bufs[0];
  argv[n++] = "-upgrade-exe";
  argv[n++] = bufs[1];
  if (rollback) {
    argv[n++] = "-upgrade-rollback";
    argv[n++] = (char *)rollback;
    /* A crash document is followed by its journal: the image handed back to reads it as the
       crash restart it is (and counts the restart once). */
    if (u->crash_flag) {
      argv[n++] = "-upgrade-crash";
      argv[n++] = u->crash_flag;
    }
  }
  argv[n] = NULL;
  return argv;
}

static void
hand_over(host_upgrade_t *u)
{
  cshim_state_writer_t w;
  cshim_autofree uint8_t *doc = NULL;
  cshim_autofree char **argv = NULL;
  cshim_error_t err = NULL;
  char bufs[2][16];
  const int *fds;
  size_t len = 0, n_fds;
  int state_fd, exe_fd, e;

  cshim_state_writer_init(&w);
  if (save_document(u, &w, &doc, &len, &err) < 0) {
    cshim_state_writer_fini(&w);
    host_ttrpc_server_resume(u->server);
    refuse(u, CSHIM_GRPC_FAILED_PRECONDITION, false, "refused: %s", err->msg);
    cshim_error_release(&err);
    return;
  }
  fds = cshim_state_writer_fds(&w, &n_fds);
  state_fd = write_memfd(doc, len, &err);
  if (state_fd < 0) {
    cshim_state_writer_fini(&w);
    host_ttrpc_server_resume(u->server);
    refuse(u, CSHIM_GRPC_FAILED_PRECONDITION, false, "refused: %s", err->msg);
    cshim_error_release(&err);
    return;
  }
  /* The running binary, for a rollback: the file at its path may have been replaced. */
  exe_fd = open("/proc/self/exe", O_PATH);
  argv = exec_argv(u, state_fd, exe_fd, NULL, bufs);
  cshim_log_info(u->log,
                 "upgrade: exec `%s` (quiet after %.1f ms, state %zu bytes, %zu descriptors)",
                 u->target, (double)(cshim_now_ns() - u->paused_at_ns) / 1e6, len, n_fds);
  set_cloexec(fds, n_fds, false);
  /* given up since the last snapshot: the new image does not know them */
  set_cloexec(u->deferred, u->n_deferred, true);
  execve(u->target, argv, environ);

  e = errno;
  set_cloexec(fds, n_fds, true);
  cshim_state_writer_fini(&w);
  close(state_fd);
  if (exe_fd >= 0)
    close(exe_fd);
  host_ttrpc_server_resume(u->server);
  refuse(u, CSHIM_GRPC_FAILED_PRECONDITION, true, "rolled back: exec `%s`: %s", u->target,
         strerror(e));
}

static void
check_cb(uv_check_t *h)
{
  host_upgrade_t *u = h->data;
  const char *why = busy(u);

  if (why) {
    if (why != u->reason)
      snprintf(u->reason, sizeof u->reason, "%s", why);
    return;
  }
  end_wait(u);
  hand_over(u);
}

static void
timeout_cb(uv_timer_t *t)
{
  host_upgrade_t *u = t->data;

  end_wait(u);
  host_ttrpc_server_resume(u->server);
  refuse(u, CSHIM_GRPC_DEADLINE_EXCEEDED, false, "refused: no quiet point within %llu ms: %s",
         (unsigned long long)u->timeout_ms, u->reason);
}

/* The first plugin instance that cannot hand over its state (no upgrade hooks), or NULL. */
static const char *
plugin_without_hooks(host_upgrade_t *u)
{
  for (size_t i = 0; i < host_plugins_n_ordered(u->plugins); i++) {
    const cshim_plugin_t *desc;
    const char *uri;
    void *instance;
    host_plugins_ordered(u->plugins, i, &uri, &desc, &instance);
    if (instance != NULL && desc != NULL && !cshim_plugin_upgrade_hooks(desc))
      return uri;
  }
  return NULL;
}

/* What must hold before anything stops. */
static int
check_target(host_upgrade_t *u, const char *path, cshim_error_t *err)
{
  const char *uri;
  struct stat st;

  if (u->stopping)
    return cshim_error_make(err, ESHUTDOWN, "the shim is shutting down");
  if (u->pending)
    return cshim_error_make(err, EBUSY, "an upgrade is already in progress");
  if (path[0] != '/')
    return cshim_error_make(err, EINVAL, "binary `%s` is not an absolute path", path);
  if (stat(path, &st) < 0)
    return cshim_error_sys(err, errno, "binary `%s`", path);
  if (!S_ISREG(st.st_mode))
    return cshim_error_make(err, EINVAL, "binary `%s` is not a regular file", path);
  if (access(path, X_OK) < 0)
    return cshim_error_sys(err, errno, "binary `%s` is not executable", path);
  uri = plugin_without_hooks(u);
  if (uri)
    return cshim_error_make(err, ENOTSUP,
                            "plugin `%s` cannot hand over its state (no upgrade_save and "
                            "upgrade_restore)",
                            uri);
  return 0;
}

static void
start(host_upgrade_t *u, const char *binary, uint64_t timeout_ms, cshim_ttrpc_call_t *call)
{
  cshim_error_t err = NULL;
  const char *path = binary && *binary ? binary : u->binary;

  if (u->server == NULL || u->plugins == NULL)
    cshim_error_make(&err, EAGAIN, "the shim is still starting");
  else
    check_target(u, path, &err);
  if (err) {
    cshim_log_warn(u->log, "upgrade to `%s` refused: %s", path, err->msg);
    u->stats.refusals++;
    /* Whatever the cause, a refusal is FailedPrecondition (upgrade.proto). */
    err->grpc_code = CSHIM_GRPC_FAILED_PRECONDITION;
    if (call)
      cshim_ttrpc_call_fail_error(call, &err);
    cshim_error_release(&err);
    return;
  }
  u->pending = true;
  u->call = call;
  u->target = cshim_xstrdup(path);
  u->timeout_ms = timeout_ms ? timeout_ms : HOST_UPGRADE_DEFAULT_TIMEOUT_MS;
  u->paused_at_ns = cshim_now_ns();
  snprintf(u->reason, sizeof u->reason, "not checked yet");
  cshim_log_info(u->log, "upgrade: to `%s` requested (%s); waiting for a quiet point", path,
                 call ? "Upgrade call" : "SIGHUP");
  host_ttrpc_server_pause(u->server);
  uv_check_init(u->loop, &u->check);
  uv_timer_init(u->loop, &u->timer);
  u->check.data = u->timer.data = u;
  u->open_handles += 2;
  uv_check_start(&u->check, check_cb);
  uv_timer_start(&u->timer, timeout_cb, u->timeout_ms, 0);
}

void
host_upgrade_signal(host_upgrade_t *u)
{
  start(u, NULL, 0, NULL);
}

static void
answer_outcome(host_upgrade_t *u, cshim_ttrpc_call_t *call)
{
  Cshim__Upgrade__V1__UpgradeResponse resp = CSHIM__UPGRADE__V1__UPGRADE_RESPONSE__INIT;
  cshim_error_t err = NULL;

  if (u->rollback_reason) {
    cshim_error_make_code(&err, CSHIM_GRPC_FAILED_PRECONDITION, "upgrade to `%s` rolled back: %s",
                          u->old_target ? u->old_target : "?", u->rollback_reason);
    cshim_ttrpc_call_fail_error(call, &err);
    return;
  }
  resp.pid = (uint32_t)getpid();
  resp.old_version = u->old_version ? u->old_version : "";
  resp.new_version = CSHIM_VERSION;
  resp.binary = u->binary;
  resp.pause_ns = u->pause_ns;
  resp.state_bytes = u->doc_len;
  resp.fds = (uint32_t)u->n_fds;
  resp.generation = u->stats.generation;
  cshim_ttrpc_call_reply(call, &resp.base);
}

static void
handle_upgrade(cshim_ttrpc_call_t *call, const ProtobufCMessage *msg, void *data)
{
  host_upgrade_t *u = data;
  const Cshim__Upgrade__V1__UpgradeRequest *req = (const void *)msg;

  if (u->answer_pending) {
    /* the call that asked for this upgrade, re-dispatched by the image that resulted */
    u->answer_pending = false;
    answer_outcome(u, call);
    return;
  }
  start(u, req->binary, req->timeout_ms, call);
}

static const cshim_ttrpc_method_t upgrade_methods[] = {
    {"Upgrade", handle_upgrade},
    {NULL, NULL},
};

int
host_upgrade_register(host_upgrade_t *u, cshim_ttrpc_server_t *server, cshim_error_t *err)
{
  u->service.struct_size = sizeof u->service;
  u->service.descriptor = &cshim__upgrade__v1__upgrade__descriptor;
  u->service.methods = upgrade_methods;
  u->service.data = u;
  return cshim_ttrpc_server_register(server, &u->service, err);
}

/* ---- the new image ---- */

static int
parse_fd(const char *s, const char *what, int *out, cshim_error_t *err)
{
  char *end;
  long v;

  errno = 0;
  v = strtol(s ? s : "", &end, 10);
  if (s == NULL || *s == '\0' || *end != '\0' || errno || v < 0 || v > 1 << 20 ||
      fcntl((int)v, F_GETFD) < 0)
    return cshim_error_make(err, EBADF, "-%s `%s` is not an open descriptor", what, s ? s : "");
  *out = (int)v;
  return 0;
}

static int
find_list(const cshim_state_reader_t *r, uint16_t tag, cshim_state_reader_t *out,
          cshim_error_t *err)
{
  cshim_state_item_t it;
  int ret = cshim_state_find(r, tag, &it, err);
  if (ret <= 0)
    return ret < 0 ? ret : cshim_error_make(err, EBADMSG, "state: record %u missing", tag);
  return cshim_state_item_list(&it, out, err);
}

static int
read_host(host_upgrade_t *u, cshim_error_t *err)
{
  cshim_state_reader_t h, fds;
  cshim_state_item_t it;
  bool via_call = false;
  int ret;

  ret = find_list(&u->body, REC_HOST, &h, err);
  if (ret < 0)
    return ret;
  if (cshim_state_get_str(&h, HOST_VERSION, &u->old_version, err) < 0 ||
      cshim_state_get_str(&h, HOST_BINARY, &u->old_binary, err) < 0 ||
      cshim_state_get_str(&h, HOST_TARGET, &u->old_target, err) < 0 ||
      cshim_state_get_str(&h, HOST_SOCKET, &u->socket_path, err) < 0 ||
      cshim_state_get_str(&h, HOST_DEBUG_FD, &u->debug_fd, err) < 0 ||
      cshim_state_get_str(&h, HOST_PREVIOUS_VERSION, &u->previous_version, err) < 0 ||
      cshim_state_get_u64(&h, HOST_GENERATION, &u->stats.generation, err) < 0 ||
      cshim_state_get_u64(&h, HOST_UPGRADES, &u->stats.upgrades, err) < 0 ||
      cshim_state_get_u64(&h, HOST_ROLLBACKS, &u->stats.rollbacks, err) < 0 ||
      cshim_state_get_u64(&h, HOST_REFUSALS, &u->stats.refusals, err) < 0 ||
      cshim_state_get_u64(&h, HOST_LAST_PAUSE_NS, &u->stats.last_pause_ns, err) < 0 ||
      cshim_state_get_u64(&h, HOST_PAUSED_AT_NS, &u->paused_at_ns, err) < 0)
    return -EBADMSG;
  ret = cshim_state_find(&h, HOST_VIA_CALL, &it, err);
  if (ret > 0)
    ret = cshim_state_item_bool(&it, &via_call, err);
  if (ret < 0)
    return ret;
  u->answer_pending = via_call;
  ret = find_list(&u->body, REC_FDS, &fds, err);
  if (ret < 0)
    return ret;
  while ((ret = cshim_state_next(&fds, &it, err)) > 0)
    u->n_fds++;
  return ret;
}

static uint32_t
le32(const uint8_t *p)
{
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* The next whole journal entry at *off, or false. */
static bool
journal_next(const host_upgrade_t *u, size_t *off, uint32_t v[3], const uint8_t **bytes,
             size_t *len)
{
  const uint8_t *e = u->journal + *off;
  uint32_t n;

  if (*off + 16 > u->journal_len)
    return false;
  n = le32(e + 12);
  if (n > u->journal_len - *off - 16)
    return false;
  for (int k = 0; k < 3; k++)
    v[k] = le32(e + 4 * k);
  *bytes = e + 16;
  *len = n;
  *off += 16 + (size_t)n;
  return true;
}

/* Count the calls; collect the connections open at the crash (when the journal is whole). */
static void
journal_scan(host_upgrade_t *u)
{
  size_t off = 0, len;
  const uint8_t *bytes;
  uint32_t v[3];

  while (journal_next(u, &off, v, &bytes, &len)) {
    if (v[0] == J_CALL)
      u->n_journal++;
    else if (v[0] == J_EXIT)
      u->n_journal_exits++;
    else if (v[0] == J_INPUT && u->n_live_fds < JOURNAL_CONNS_MAX) {
      u->live_fds = cshim_xrealloc(u->live_fds, (u->n_live_fds + 1) * sizeof *u->live_fds);
      u->live_fds[u->n_live_fds++] = (int)v[1];
    } else if (v[0] == J_END)
      u->journal_whole = true;
  }
  if (u->journal_whole && u->live_fds == NULL)
    u->live_fds = cshim_xmalloc0(sizeof *u->live_fds); /* none open: not NULL (= all) */
}

static void
rollback_reason_only(host_upgrade_t *u, const char *why)
{
  cshim_error_t err = NULL;
  cshim_error_make(&err, EINVAL, "%s", why);
  host_upgrade_rollback(u, &err);
}

int
host_upgrade_load(host_upgrade_t *u, const host_flags_t *flags, cshim_error_t *err)
{
  struct stat st;
  size_t off = 0;
  int ret;

  if (flags->upgrade_state == NULL)
    return 0;
  u->restoring = true;
  if (flags->upgrade_rollback)
    u->rollback_reason = cshim_xstrdup(flags->upgrade_rollback);
  ret = parse_fd(flags->upgrade_state, "upgrade-state", &u->state_fd, err);
  if (ret < 0)
    return ret;
  if (flags->upgrade_exe && parse_fd(flags->upgrade_exe, "upgrade-exe", &u->exe_fd, err) < 0)
    return -EBADF;
  if (fstat(u->state_fd, &st) < 0)
    return cshim_error_sys(err, errno, "state fd %d", u->state_fd);
  if (st.st_size <= 0 || (uint64_t)st.st_size > CSHIM_STATE_MAX_SIZE)
    return cshim_error_make(err, EFBIG, "state fd %d: %lld bytes", u->state_fd,
                            (long long)st.st_size);
  u->doc_len = (size_t)st.st_size;
  u->doc = cshim_xmalloc(u->doc_len);
  while (off < u->doc_len) {
    ssize_t n = pread(u->state_fd, u->doc + off, u->doc_len - off, (off_t)off);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      return cshim_error_sys(err, n < 0 ? errno : EIO, "read the state");
    off += (size_t)n;
  }
  /* After a crash the calls being handled follow the document: (fd, stream id) pairs. */
  if (flags->upgrade_crash) {
    unsigned sig = 0, count = 0;
    long long first = 0;
    free(u->crash_flag);
    u->crash_flag = cshim_xstrdup(flags->upgrade_crash);
    if (sscanf(flags->upgrade_crash, "%u,%u,%lld", &sig, &count, &first) == 3) {
      u->crash_signal = (int)sig;
      u->crash_restarts = count;
      u->crash_first_s = first;
    }
    if (u->doc_len >= CSHIM_STATE_HEADER_SIZE) {
      size_t doc = CSHIM_STATE_HEADER_SIZE + ((size_t)u->doc[16] | (size_t)u->doc[17] << 8 |
                                              (size_t)u->doc[18] << 16 | (size_t)u->doc[19] << 24);
      if (doc < u->doc_len) {
        u->journal_len = u->doc_len - doc;
        u->journal = cshim_xmemdup(u->doc + doc, u->journal_len);
        u->doc_len = doc;
        journal_scan(u);
      }
    }
  }
  /* From here on, anything this build cannot use goes back to the previous image. */
  ret = cshim_state_open(u->doc, u->doc_len, CSHIM_STATE_FORMAT_MIN, CSHIM_STATE_FORMAT_VERSION,
                         NULL, &u->body, err);
  if (ret == 0)
    ret = read_host(u, err);
  if (ret < 0) {
    cshim_autofree char *why = cshim_xstrdup((*err)->msg);
    cshim_error_release(err);
    rollback_reason_only(u, why);
    return cshim_error_make(err, EIO, "cannot read the handed-over state: %s", why);
  }
  return 1;
}

bool
host_upgrade_restoring(const host_upgrade_t *u)
{
  return u->restoring;
}

/* Exits nobody had been told of, then those reaped after a crash snapshot: the plugins'
   watches (of their processes, of runtime commands that were running) find them. */
static int
restore_exits(host_upgrade_t *u, cshim_error_t *err)
{
  cshim_state_reader_t rr;
  cshim_state_item_t it;
  int ret;

  ret = cshim_state_find(&u->body, REC_REAPER, &it, err);
  if (ret > 0 && (ret = cshim_state_item_list(&it, &rr, err)) == 0) {
    while ((ret = cshim_state_next(&rr, &it, err)) > 0) {
      cshim_state_reader_t er;
      uint32_t pid = 0, status = 0;
      uint64_t at = 0;
      if (it.tag != REAPER_EXIT)
        continue;
      if (cshim_state_item_list(&it, &er, err) < 0 ||
          cshim_state_get_u32(&er, EXIT_PID, &pid, err) < 0 ||
          cshim_state_get_u32(&er, EXIT_STATUS, &status, err) < 0 ||
          cshim_state_get_u64(&er, EXIT_AT_NS, &at, err) < 0)
        return -EBADMSG;
      host_reaper_add_unclaimed(u->reaper, (pid_t)pid, (int)status, at);
    }
  }
  if (ret < 0)
    return ret;
  for (size_t off = 0, len; u->journal;) {
    const uint8_t *bytes;
    uint32_t v[3];
    if (!journal_next(u, &off, v, &bytes, &len))
      break;
    if (v[0] == J_EXIT)
      host_reaper_add_unclaimed(u->reaper, (pid_t)v[1], (int)v[2], 0);
  }
  return 0;
}

/* Every plugin record must find its plugin here. */
static int
check_plugin_records(host_upgrade_t *u, const cshim_state_reader_t *plugins, cshim_error_t *err)
{
  cshim_state_reader_t r = *plugins;
  cshim_state_item_t it;
  size_t n = host_plugins_n_ordered(u->plugins);
  int ret;

  while ((ret = cshim_state_next(&r, &it, err)) > 0) {
    cshim_state_reader_t pr;
    cshim_autofree char *uri = NULL;
    bool found = false;
    if (it.tag != REC_PLUGIN)
      continue;
    if (cshim_state_item_list(&it, &pr, err) < 0 ||
        cshim_state_get_str(&pr, PLUGIN_URI, &uri, err) < 0)
      return -EBADMSG;
    for (size_t i = 0; i < n && uri && !found; i++) {
      const cshim_plugin_t *desc;
      const char *name;
      void *instance;
      host_plugins_ordered(u->plugins, i, &name, &desc, &instance);
      found = instance != NULL && strcmp(name, uri) == 0;
    }
    if (!found)
      return cshim_error_make(err, ENOENT, "plugin `%s` handed over state but does not run here",
                              uri ? uri : "?");
  }
  return ret;
}

/* The state plugin `uri` handed over, if any: *have tells. */
static int
find_plugin_state(const cshim_state_reader_t *plugins, const char *uri, cshim_state_reader_t *state,
                  bool *have, cshim_error_t *err)
{
  cshim_state_reader_t r = *plugins;
  cshim_state_item_t it;

  *have = false;
  while (!*have && cshim_state_next(&r, &it, err) > 0) {
    cshim_state_reader_t pr;
    cshim_autofree char *name = NULL;
    if (it.tag != REC_PLUGIN || cshim_state_item_list(&it, &pr, err) < 0 ||
        cshim_state_get_str(&pr, PLUGIN_URI, &name, err) < 0 || name == NULL ||
        strcmp(name, uri) != 0)
      continue;
    if (find_list(&pr, PLUGIN_STATE, state, err) < 0)
      return -EBADMSG;
    *have = true;
  }
  return 0;
}

/* Each running plugin, in order, restores what it handed over (NULL: nothing). */
static int
restore_plugins(host_upgrade_t *u, const cshim_state_reader_t *plugins, cshim_error_t *err)
{
  size_t n = host_plugins_n_ordered(u->plugins);
  int ret;

  for (size_t i = 0; i < n; i++) {
    const cshim_plugin_t *desc;
    const char *uri;
    void *instance;
    cshim_state_reader_t state;
    bool have = false;

    host_plugins_ordered(u->plugins, i, &uri, &desc, &instance);
    if (instance == NULL || desc == NULL)
      continue;
    if (!cshim_plugin_upgrade_hooks(desc))
      return cshim_error_make(err, ENOTSUP, "plugin `%s` cannot restore a handed-over state", uri);
    if (find_plugin_state(plugins, uri, &state, &have, err) < 0)
      return -EBADMSG;
    ret = desc->upgrade_restore(instance, have ? &state : NULL, err);
    if (ret < 0)
      return cshim_error_wrap(err, "restore `%s`", uri);
  }
  return 0;
}

/* The ttrpc server's connections; after a crash each reads on from the byte it had reached. */
static int
restore_server(host_upgrade_t *u, cshim_error_t *err)
{
  cshim_state_reader_t server;
  int ret;

  ret = find_list(&u->body, REC_SERVER, &server, err);
  if (ret < 0)
    return ret;
  if (u->journal_whole)
    host_ttrpc_server_set_live_fds(u->server, u->live_fds, u->n_live_fds);
  ret = host_ttrpc_server_restore(u->server, &server, err);
  host_ttrpc_server_set_live_fds(u->server, NULL, 0);
  if (ret < 0)
    return ret;
  for (size_t off = 0, len; u->journal && u->journal_whole;) {
    const uint8_t *bytes;
    uint32_t v[3];
    if (!journal_next(u, &off, v, &bytes, &len))
      break;
    if (v[0] != J_INPUT)
      continue;
    ret = host_ttrpc_server_crash_input(u->server, (int)v[1], v[2], bytes, len, err);
    if (ret < 0)
      return ret;
  }
  return 0;
}

int
host_upgrade_restore(host_upgrade_t *u, cshim_error_t *err)
{
  cshim_state_reader_t plugins;
  int ret;

  if (u->reaper) {
    ret = restore_exits(u, err);
    if (ret < 0)
      return ret;
  }
  ret = find_list(&u->body, REC_PLUGINS, &plugins, err);
  if (ret < 0)
    return ret;
  ret = check_plugin_records(u, &plugins, err);
  if (ret < 0)
    return ret;
  ret = restore_plugins(u, &plugins, err);
  if (ret < 0)
    return ret;
  return restore_server(u, err);
}

void
host_upgrade_finish(host_upgrade_t *u)
{
  u->pause_ns = cshim_now_ns() - u->paused_at_ns;
  if (u->crash_signal) {
    u->stats.crash_restarts++;
    u->stats.last_crash_signal = (uint64_t)u->crash_signal;
    cshim_log_error(u->log,
                    "restarted after fatal signal %d (%s): restart %u within %d s, state from "
                    "%.1f ms before, %zu call(s) being handled, %zu exit(s) reaped since, %zu "
                    "connection(s)",
                    u->crash_signal, strsignal(u->crash_signal), u->crash_restarts,
                    HOST_UPGRADE_CRASH_WINDOW_S, (double)u->pause_ns / 1e6, u->n_journal,
                    u->n_journal_exits, u->n_live_fds);
    if (u->rollback_reason)
      cshim_log_warn(u->log, "crash restart: handed back once to `%s`: %s", u->binary,
                     u->rollback_reason);
  } else if (u->rollback_reason) {
    u->stats.rollbacks++;
    cshim_log_warn(u->log, "upgrade: rolled back to %s (`%s`): %s", CSHIM_VERSION, u->binary,
                   u->rollback_reason);
  } else {
    u->stats.upgrades++;
    u->stats.generation++;
    u->stats.last_pause_ns = u->pause_ns;
    free(u->previous_version);
    u->previous_version = cshim_xstrdup(u->old_version);
    cshim_log_info(u->log,
                   "upgrade: %s -> %s done (`%s`), paused %.1f ms (state %zu bytes, %zu "
                   "descriptors)",
                   u->old_version ? u->old_version : "?", CSHIM_VERSION, u->binary,
                   (double)u->pause_ns / 1e6, u->doc_len, u->n_fds);
  }
  host_ttrpc_server_redispatch(u->server);
  u->answer_pending = false;
  for (size_t off = 0, len; u->journal;) {
    const uint8_t *bytes;
    uint32_t v[3];
    if (!journal_next(u, &off, v, &bytes, &len))
      break;
    if (v[0] != J_CALL || len > JOURNAL_REQUEST_MAX)
      continue;
    host_ttrpc_server_recover_stream(u->server, (int)v[1], v[2], len ? bytes : NULL, len,
                                     "the shim restarted after a crash while handling the call; "
                                     "retry");
  }
  free(u->journal);
  u->journal = NULL;
  u->journal_len = 0;
  u->n_journal = 0;
  if (u->reaper)
    host_reaper_reap(u->reaper);
  host_ttrpc_server_resume(u->server);
  u->restoring = false;
  close(u->state_fd);
  u->state_fd = -1;
  if (u->exe_fd >= 0)
    close(u->exe_fd);
  u->exe_fd = -1;
  free(u->doc);
  u->doc = NULL;
}

char **
host_upgrade_rollback_argv(host_upgrade_t *u, const char *reason, char bufs[2][16])
{
  return exec_argv(u, u->state_fd, u->exe_fd, reason, bufs);
}

void
host_upgrade_rollback(host_upgrade_t *u, cshim_error_t *err)
{
  cshim_autofree char **argv = NULL;
  cshim_state_reader_t fds;
  cshim_state_item_t it;
  cshim_error_t ignored = NULL;
  char bufs[2][16];
  int fd_self[2];

  cshim_log_error(u->log, "upgrade: restore failed: %s", (*err)->msg);
  if (u->rollback_reason || u->exe_fd < 0) {
    cshim_log_error(u->log, "upgrade: no image to go back to");
    cshim_error_release(err);
    return;
  }
  /* Every descriptor of the state crosses the exec again. */
  if (u->doc && find_list(&u->body, REC_FDS, &fds, &ignored) == 0) {
    while (cshim_state_next(&fds, &it, &ignored) > 0) {
      uint32_t v;
      if (cshim_state_item_u32(&it, &v, &ignored) == 0) {
        int fd = (int)v;
        set_cloexec(&fd, 1, false);
      }
    }
  }
  cshim_error_release(&ignored);
  /* after a crash: the connections accepted after the snapshot, adopted from the journal */
  set_cloexec(u->live_fds, u->n_live_fds, false);
  fd_self[0] = u->state_fd;
  fd_self[1] = u->exe_fd;
  set_cloexec(fd_self, 2, false);
  argv = host_upgrade_rollback_argv(u, (*err)->msg, bufs);
  cshim_log_warn(u->log, "upgrade: handing back to `%s` (%s)",
                 u->old_binary ? u->old_binary : "the previous image",
                 u->old_version ? u->old_version : "?");
  syscall(SYS_execveat, u->exe_fd, "", argv, environ, AT_EMPTY_PATH);
  cshim_log_error(u->log, "upgrade: exec of the previous image failed: %s", strerror(errno));
  cshim_error_release(err);
}

/* ---- crash survival (docs/live-upgrade.md) ---------------------------------------------------

   The snapshot lives in a memfd; the handler only reads what is below, all of it prepared on the
   loop, and calls async-signal-safe functions only. */

struct journal_entry
{
  uint32_t fd, stream_id, len; /* len 0: not to be run again */
  uint8_t request[JOURNAL_REQUEST_MAX];
};

static struct
{
  volatile sig_atomic_t valid; /* the active slot holds a whole, current document */
  volatile sig_atomic_t in_handler;
  /* Two snapshots: the next one is written into the slot the handler does not use, then made
     active; a signal that lands while a snapshot is being written finds the previous one. */
  struct
  {
    int memfd;
    int *fds; /* the document's fd table */
    size_t n_fds, cap_fds;
    size_t doc_len;
    char **argv; /* prepared; the last flag's value is crash_arg */
    char fd_buf[16];
  } slots[2];
  volatile sig_atomic_t active;
  int exe_fd;
  char crash_arg[64]; /* "SIGNAL,RESTARTS,FIRST" */
  unsigned restarts;
  int64_t first_s;
  /* calls being handled: JOURNAL_MAX entries in pages of their own (cshim_xmap), so only those
     written count, and host_upgrade_release_buffers gives back the ones no call uses any more
     (kept in .data, the 480 kB array was a whole page of file-backed data dirtied per shim) */
  struct journal_entry *journal;
  volatile size_t n_journal;
  bool journal_overflow;
  volatile size_t n_exits;
  bool exits_overflow;
  host_ttrpc_server_t *srv;
  char exe_buf[16];
} guard = {.slots = {{.memfd = -1}, {.memfd = -1}}, .exe_fd = -1};

/* The guard's large tables, outside `guard` (initialised, so in .data, file-backed and dirtied
   per shim when touched): zero-initialised in .bss, they cost only the pages written. */
static struct guard_exit
{
  uint32_t pid, status;
} * guard_exits; /* reaped since the snapshot: JOURNAL_EXITS_MAX entries in pages of their own
                    (cshim_xmap, as the journal), given back when empty */
static int guard_conn_fds[JOURNAL_CONNS_MAX];

/* What the crash guard does with a call, by its method name (any service):
   - METHOD_READ_ONLY: it changes nothing a snapshot holds and does not make one due (a crash
     while one is being handled runs it again). Wait is not among them: a parked Wait must be in
     the snapshot to be re-run.
   - METHOD_RERUN: run again after a crash: those that only read, and Start (the task plugin's
     restore knows a start that was running and answers the re-run with its outcome; one not
     begun yet simply runs).
   - METHOD_END_OF_TURN: its snapshot can wait for the end of the loop turn (one for all the calls
     of the turn): a crash before it finds them in the journal, answers them "retry", and the new
     image has nothing of theirs to finish (docs/live-upgrade.md, operations in progress: kill,
     update, checkpoint, delete are not finished by a restart; Exec only adds a record, CloseIO
     and ResizePty change stdio the retry changes again). A Wait only parks: taking a whole
     snapshot per Wait starved the loop when 20,000 clients parked Waits
     (integration_containerd_load, park-and-leave); a flood of pipelined Kill calls took one per
     call. Create, Start, Pause and Resume keep theirs: a runtime command they started must be in
     the snapshot before anything else runs (its recovery needs it), and so do calls of other
     services.
   Looked up once per hook call, first letter before strcmp: it runs twice for every call. */
enum
{
  METHOD_READ_ONLY = 1,
  METHOD_RERUN = 2,
  METHOD_END_OF_TURN = 4,
};

static unsigned
method_class(const char *method)
{
  static const struct
  {
    const char *name;
    unsigned flags;
  } table[] = {
      {"State", METHOD_READ_ONLY | METHOD_RERUN},
      {"Pids", METHOD_READ_ONLY | METHOD_RERUN},
      {"Stats", METHOD_READ_ONLY | METHOD_RERUN},
      {"Connect", METHOD_READ_ONLY | METHOD_RERUN},
      {"Start", METHOD_RERUN},
      {"Wait", METHOD_END_OF_TURN},
      {"Kill", METHOD_END_OF_TURN},
      {"Delete", METHOD_END_OF_TURN},
      {"Update", METHOD_END_OF_TURN},
      {"Exec", METHOD_END_OF_TURN},
      {"Checkpoint", METHOD_END_OF_TURN},
      {"CloseIO", METHOD_END_OF_TURN},
      {"ResizePty", METHOD_END_OF_TURN},
  };

  if (method == NULL || method[0] == '\0')
    return 0;
  for (size_t i = 0; i < CSHIM_N_ELEMENTS(table); i++)
    if (table[i].name[0] == method[0] && strcmp(table[i].name + 1, method + 1) == 0)
      return table[i].flags;
  return 0;
}

static void
exit_hook(void *data, pid_t pid, int status)
{
  (void)data;
  if (guard.n_exits == JOURNAL_EXITS_MAX) {
    guard.exits_overflow = true;
    return;
  }
  guard_exits[guard.n_exits].pid = (uint32_t)pid;
  guard_exits[guard.n_exits].status = (uint32_t)status;
  guard.n_exits++;
}

static void
journal_hook(void *data, int fd, uint32_t stream_id, const char *method, const uint8_t *request,
             size_t request_len, bool answered)
{
  host_upgrade_t *u = data;
  unsigned cls = method_class(method);
  bool read_only = cls & METHOD_READ_ONLY;

  if (!read_only)
    u->guard_mutations++;
  /* A call that may change something makes a snapshot due at once, after its handler, unless
     the snapshot at the end of the loop turn does as well (METHOD_END_OF_TURN). */
  if (!answered && !read_only && !(cls & METHOD_END_OF_TURN))
    u->guard_now = true;
  if (!answered) {
    struct journal_entry *e;
    if (guard.journal == NULL)
      return;
    if (guard.n_journal == JOURNAL_MAX) {
      guard.journal_overflow = true;
      return;
    }
    e = &guard.journal[guard.n_journal];
    e->fd = (uint32_t)fd;
    e->stream_id = stream_id;
    e->len = 0;
    if ((cls & METHOD_RERUN) && request && request_len > 0 && request_len <= JOURNAL_REQUEST_MAX) {
      memcpy(e->request, request, request_len);
      e->len = (uint32_t)request_len;
    }
    guard.n_journal++;
    return;
  }
  for (size_t i = 0; i < guard.n_journal; i++)
    if (guard.journal[i].fd == (uint32_t)fd && guard.journal[i].stream_id == stream_id) {
      if (i != guard.n_journal - 1)
        guard.journal[i] = guard.journal[guard.n_journal - 1];
      guard.n_journal--;
      return;
    }
}

static int64_t
mono_s(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec;
}

/* Decimal digits of v at p; returns the end. */
static char *
put_num(char *p, uint64_t v)
{
  char tmp[24];
  int n = 0;
  do
    tmp[n++] = (char)('0' + v % 10);
  while ((v /= 10) != 0);
  while (n > 0)
    *p++ = tmp[--n];
  return p;
}

static void
die_as_today(int sig)
{
  signal(sig, SIG_DFL);
  raise(sig);
}

/* One journal entry (async-signal-safe). */
static void
journal_put(int memfd, off_t *off, uint32_t kind, uint32_t a, uint32_t b, const uint8_t *bytes,
            uint32_t len)
{
  uint8_t e[16];
  uint32_t v[4] = {kind, a, b, len};

  for (int i = 0; i < 4; i++)
    for (int k = 0; k < 4; k++)
      e[4 * i + k] = (uint8_t)(v[i] >> (8 * k));
  (void)!pwrite(memfd, e, sizeof e, *off);
  if (len)
    (void)!pwrite(memfd, bytes, len, *off + (off_t)sizeof e);
  *off += (off_t)(sizeof e + len);
}

static void
crash_handler(int sig)
{
  static const char msg[] = "cshim: fatal signal, re-executing from the last consistent state\n";
  sigset_t none;
  int64_t now = mono_s();
  unsigned restarts = guard.restarts;
  int64_t first = guard.first_s;
  char *p;
  int slot = guard.active;
  int memfd = guard.slots[slot].memfd;

  if (guard.in_handler || !guard.valid || guard.journal_overflow || guard.exits_overflow) {
    static const char no_state[] =
        "cshim: fatal signal while no consistent state is kept (snapshot failed or a bound was "
        "exceeded): exiting\n";
    if (!guard.in_handler)
      (void)!write(STDERR_FILENO, no_state, sizeof no_state - 1);
    die_as_today(sig);
    return;
  }
  guard.in_handler = 1;
  if (restarts == 0 || now - first >= HOST_UPGRADE_CRASH_WINDOW_S) {
    restarts = 0;
    first = now;
  }
  if (restarts >= HOST_UPGRADE_CRASH_MAX) {
    static const char give_up[] = "cshim: fatal signal: too many restarts, exiting\n";
    (void)!write(STDERR_FILENO, give_up, sizeof give_up - 1);
    die_as_today(sig);
    return;
  }
  (void)!write(STDERR_FILENO, msg, sizeof msg - 1);
  {
    off_t off = (off_t)guard.slots[slot].doc_len;
    size_t n_conns = 0;
    for (size_t i = 0; i < guard.n_journal; i++) {
      const struct journal_entry *j = &guard.journal[i];
      journal_put(memfd, &off, J_CALL, j->fd, j->stream_id, j->request, j->len);
    }
    for (size_t i = 0; i < guard.n_exits; i++)
      journal_put(memfd, &off, J_EXIT, guard_exits[i].pid, guard_exits[i].status, NULL, 0);
    /* every open connection's unframed input; J_END says the list is whole */
    if (guard.srv && host_ttrpc_server_crash_write(guard.srv, memfd, J_INPUT, &off, guard_conn_fds,
                                                   JOURNAL_CONNS_MAX, &n_conns) == 0) {
      journal_put(memfd, &off, J_END, 0, 0, NULL, 0);
      for (size_t i = 0; i < n_conns; i++)
        fcntl(guard_conn_fds[i], F_SETFD, 0);
    }
  }
  for (size_t i = 0; i < guard.slots[slot].n_fds; i++)
    fcntl(guard.slots[slot].fds[i], F_SETFD, 0);
  fcntl(memfd, F_SETFD, 0);
  fcntl(guard.exe_fd, F_SETFD, 0);
  p = put_num(guard.crash_arg, (uint64_t)sig);
  *p++ = ',';
  p = put_num(p, restarts + 1);
  *p++ = ',';
  p = put_num(p, (uint64_t)first);
  *p = '\0';
  /* execve keeps the signal mask: this signal is blocked while its handler runs */
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, NULL);
  syscall(SYS_execveat, guard.exe_fd, "", guard.slots[slot].argv, environ, AT_EMPTY_PATH);
  die_as_today(sig);
}

static void
snapshot_write(host_upgrade_t *u)
{
  cshim_state_writer_t w;
  cshim_autofree uint8_t *doc = NULL;
  cshim_error_t err = NULL;
  const int *fds;
  size_t len, n_fds, off = 0;
  int next;
  __typeof__(&guard.slots[0]) sl;

  cshim_state_writer_init(&w);
  w.crash = true;
  u->paused_at_ns = cshim_now_ns();
  if (save_document(u, &w, &doc, &len, &err) < 0) {
    if (guard.valid)
      cshim_log_debug(u->log, "crash snapshot: none while %s", err->msg);
    cshim_error_release(&err);
    guard.valid = 0;
    cshim_state_writer_fini(&w);
    return;
  }
  fds = cshim_state_writer_fds(&w, &n_fds);
  next = !guard.active;
  sl = &guard.slots[next];
  if (n_fds > sl->cap_fds) {
    sl->cap_fds = n_fds * 2;
    sl->fds = cshim_xrealloc(sl->fds, sl->cap_fds * sizeof *sl->fds);
  }
  memcpy(sl->fds, fds, n_fds * sizeof *fds);
  sl->n_fds = n_fds;
  cshim_state_writer_fini(&w);
  if (ftruncate(sl->memfd, (off_t)len) < 0) {
    guard.valid = 0;
    return;
  }
  while (off < len) {
    ssize_t n = pwrite(sl->memfd, doc + off, len - off, (off_t)off);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0) {
      guard.valid = 0;
      return;
    }
    off += (size_t)n;
  }
  sl->doc_len = len;
  guard.active = next;
  guard.valid = 1;
  /* what the document holds now includes every exit reaped so far (a signal between these
     lines replays an exit twice: the reaper keeps one per pid) */
  guard.n_exits = 0;
  guard.exits_overflow = false;
}

/* Close the first n descriptors given up: no snapshot the handler may use names them any more. */
static void
close_deferred(host_upgrade_t *u, size_t n)
{
  for (size_t i = 0; i < n; i++)
    close(u->deferred[i]);
  if (n > 0) /* u->deferred is NULL until the first descriptor is given up */
    memmove(u->deferred, u->deferred + n, (u->n_deferred - n) * sizeof *u->deferred);
  u->n_deferred -= n;
  if (u->n_deferred == 0 && u->kick_init)
    uv_idle_stop(&u->kick);
}

/* A new snapshot, then the descriptors given up before it began are closed: it does not name
   them, and when it failed no snapshot is used at all (guard.valid is 0). */
static void
snapshot(host_upgrade_t *u)
{
  size_t n = u->n_deferred;

  snapshot_write(u);
  close_deferred(u, n);
}

static void guard_refresh(host_upgrade_t *u);

static void
kick_cb(uv_idle_t *h)
{
  host_upgrade_t *u = h->data;

  uv_idle_stop(h);
  guard_refresh(u);
}

/* Descriptors wait to be closed: take the snapshot in this loop turn or the next one, without
   the loop waiting in between (a pipe's other end sees its EOF only once the fd is closed). */
static void
kick_snapshot(host_upgrade_t *u)
{
  if (u->n_deferred > 0 && u->kick_init && u->guard_on && !u->pending && !u->stopping)
    uv_idle_start(&u->kick, kick_cb);
}

void
host_upgrade_close_fd(void *data, int fd)
{
  host_upgrade_t *u = data;

  if (fd < 0)
    return;
  /* Before the guard runs (or without one) no snapshot names it, except while restoring: then
     the previous image's document does, and a hand-back needs it as it was. */
  if (!u->guard_on && !u->restoring) {
    close(fd);
    return;
  }
  for (size_t i = 0; i < u->n_deferred; i++)
    if (u->deferred[i] == fd)
      return; /* given up twice (a restore that dropped a process's stdio): closed once */
  if (u->n_deferred == u->cap_deferred) {
    u->cap_deferred = u->cap_deferred ? 2 * u->cap_deferred : 16;
    u->deferred = cshim_xrealloc(u->deferred, u->cap_deferred * sizeof *u->deferred);
  }
  u->deferred[u->n_deferred++] = fd;
  kick_snapshot(u);
}

static void
guard_take(host_upgrade_t *u, uint64_t now)
{
  cshim_ttrpc_stats_t st;

  host_ttrpc_server_get_stats(u->server, &st);
  u->guard_gen[0] = u->guard_mutations;
  u->guard_gen[1] = st.connections_total;
  u->guard_gen[2] = u->reaper ? host_reaper_exits(u->reaper) : 0;
  u->guard_at_ns = now;
  snapshot(u);
}

/* At the end of each loop turn: a new snapshot when something changed (or it is 50 ms old). */
static void
guard_refresh(host_upgrade_t *u)
{
  cshim_ttrpc_stats_t st;
  uint64_t gen[3], now = cshim_now_ns();

  if (u->pending || u->restoring || u->stopping)
    return;
  host_ttrpc_server_get_stats(u->server, &st);
  gen[0] = u->guard_mutations;
  gen[1] = st.connections_total;
  gen[2] = u->reaper ? host_reaper_exits(u->reaper) : 0;
  if (guard.valid && u->n_deferred == 0 && memcmp(gen, u->guard_gen, sizeof gen) == 0 &&
      now - u->guard_at_ns < 50 * 1000000ull)
    return;
  guard_take(u, now);
}

/* Right after the handler of a call that may change something: a runtime command it started is
   in the snapshot before anything else runs (a crash later in the same loop turn must not find
   a snapshot without it: the call's re-run would start the command a second time). */
static void
dispatched_hook(void *data)
{
  host_upgrade_t *u = data;

  if (!u->guard_now)
    return;
  u->guard_now = false;
  if (u->pending || u->restoring || u->stopping)
    return;
  guard_take(u, cshim_now_ns());
}

static void
guard_cb(uv_check_t *h)
{
  guard_refresh(h->data);
}

static int guard_start(host_upgrade_t *u, cshim_error_t *err);

int
host_upgrade_guard_start(host_upgrade_t *u, cshim_error_t *err)
{
  int ret = guard_start(u, err);

  /* without a guard (or with a broken one) no snapshot will name what restore gave up */
  if (ret < 0 || !u->guard_on)
    close_deferred(u, u->n_deferred);
  return ret;
}

static int
guard_start(host_upgrade_t *u, cshim_error_t *err)
{
  static const int sigs[] = {SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT};
  static char altstack[64 * 1024];
  stack_t ss = {.ss_sp = altstack, .ss_size = sizeof altstack};
  struct sigaction sa;
  const char *uri;

  if ((uri = plugin_without_hooks(u)) != NULL)
    return cshim_error_make(err, ENOTSUP,
                            "plugin `%s` cannot hand over its state (no upgrade_save and "
                            "upgrade_restore): a crash ends the shim",
                            uri);
  if (guard.journal == NULL)
    guard.journal = cshim_xmap(JOURNAL_MAX * sizeof *guard.journal);
  if (guard_exits == NULL)
    guard_exits = cshim_xmap(JOURNAL_EXITS_MAX * sizeof *guard_exits);
  guard.exe_fd = open("/proc/self/exe", O_PATH | O_CLOEXEC);
  if (guard.exe_fd < 0)
    return cshim_error_sys(err, errno, "crash guard: open own binary");
  snprintf(guard.exe_buf, sizeof guard.exe_buf, "%d", guard.exe_fd);
  guard.restarts = u->crash_restarts;
  guard.first_s = u->crash_first_s;
  for (int k = 0; k < 2; k++) {
    size_t n = 0;
    guard.slots[k].memfd = memfd_create("cshim-crash-state", MFD_CLOEXEC);
    if (guard.slots[k].memfd < 0)
      return cshim_error_sys(err, errno, "crash guard: memfd_create");
    snprintf(guard.slots[k].fd_buf, sizeof guard.slots[k].fd_buf, "%d", guard.slots[k].memfd);
    guard.slots[k].argv = cshim_xmalloc0((u->argc + 7) * sizeof *guard.slots[k].argv);
    for (size_t i = 0; i < u->argc; i++)
      guard.slots[k].argv[n++] = u->argv[i];
    guard.slots[k].argv[n++] = "-upgrade-state";
    guard.slots[k].argv[n++] = guard.slots[k].fd_buf;
    guard.slots[k].argv[n++] = "-upgrade-exe";
    guard.slots[k].argv[n++] = guard.exe_buf;
    guard.slots[k].argv[n++] = "-upgrade-crash";
    guard.slots[k].argv[n++] = guard.crash_arg;
    guard.slots[k].argv[n] = NULL;
  }

  host_ttrpc_server_set_call_hook(u->server, journal_hook, u);
  host_ttrpc_server_set_dispatched_hook(u->server, dispatched_hook);
  guard.srv = u->server;
  if (u->reaper)
    host_reaper_set_exit_hook(u->reaper, exit_hook, u);
  uv_check_init(u->loop, &u->guard);
  u->guard.data = u;
  uv_check_start(&u->guard, guard_cb);
  uv_unref((uv_handle_t *)&u->guard);
  uv_idle_init(u->loop, &u->kick);
  u->kick.data = u;
  uv_unref((uv_handle_t *)&u->kick);
  u->kick_init = true;
  u->guard_on = true;
  /* an idle shim may not turn the loop for a long time: the first snapshot is taken now */
  snapshot(u);

  if (sigaltstack(&ss, NULL) < 0)
    return cshim_error_sys(err, errno, "crash guard: sigaltstack");
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = crash_handler;
  sa.sa_flags = SA_ONSTACK;
  sigemptyset(&sa.sa_mask);
  for (size_t i = 0; i < CSHIM_N_ELEMENTS(sigs); i++)
    if (sigaction(sigs[i], &sa, NULL) < 0)
      return cshim_error_sys(err, errno, "crash guard: sigaction %d", sigs[i]);
  return 0;
}

void
host_upgrade_release_buffers(host_upgrade_t *u)
{
  uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
  uintptr_t base = (uintptr_t)guard.journal, end, from;

  if (guard.journal == NULL)
    return;
  /* A snapshot due now is taken before the memory is settled, not by the loop's check handle
     right after it: its buffers would dirty the heap pages the settle has just given back. */
  if (u->guard_on)
    guard_refresh(u);
  /* Entries at n_journal and above hold no call; a crash reads only those below. */
  end = base + JOURNAL_MAX * sizeof *guard.journal;
  from = (base + guard.n_journal * sizeof *guard.journal + page - 1) & ~(page - 1);
  if (from < end)
    madvise((void *)from, end - from, MADV_DONTNEED);
  /* Likewise the exits above n_exits (every exit reaped before the last snapshot is in it): the
     start of a container leaves the first page written. */
  base = (uintptr_t)guard_exits;
  end = base + JOURNAL_EXITS_MAX * sizeof *guard_exits;
  from = (base + guard.n_exits * sizeof *guard_exits + page - 1) & ~(page - 1);
  if (guard_exits != NULL && from < end)
    madvise((void *)from, end - from, MADV_DONTNEED);
}

/* Shutdown: a crash from here on takes its default course. */
static void
guard_stop(host_upgrade_t *u)
{
  guard.valid = 0;
  if (!u->guard_on)
    return;
  u->guard_on = false;
  host_ttrpc_server_set_call_hook(u->server, NULL, NULL);
  host_ttrpc_server_set_dispatched_hook(u->server, NULL);
  guard.srv = NULL;
  if (u->reaper)
    host_reaper_set_exit_hook(u->reaper, NULL, NULL);
  uv_close((uv_handle_t *)&u->guard, NULL);
  close_deferred(u, u->n_deferred);
  if (u->kick_init)
    uv_close((uv_handle_t *)&u->kick, NULL);
  u->kick_init = false;
}

char *
host_upgrade_dump_json(void *data)
{
  host_upgrade_t *u = data;
  json_t *j = json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:f, s:s?, s:b}", "generation",
                        (json_int_t)u->stats.generation, "upgrades", (json_int_t)u->stats.upgrades,
                        "rollbacks", (json_int_t)u->stats.rollbacks, "refusals",
                        (json_int_t)u->stats.refusals, "crash_restarts",
                        (json_int_t)u->stats.crash_restarts, "last_crash_signal",
                        (json_int_t)u->stats.last_crash_signal, "last_pause_seconds",
                        (double)u->stats.last_pause_ns / 1e9, "previous_version",
                        u->previous_version, "crash_snapshot_valid", guard.valid != 0);
  char *out = json_dumps(j, JSON_COMPACT);
  json_decref(j);
  return out;
}
