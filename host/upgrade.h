// SPDX-License-Identifier: Apache-2.0
// Live upgrade: the Upgrade service and SIGHUP, the quiet point, the state hand-over through a
// memfd and execve, the restore in the new image, and rollback (docs/live-upgrade.md).
#ifndef HOST_UPGRADE_H
#define HOST_UPGRADE_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include <cshim/error.h>
#include <cshim/log.h>
#include <cshim/state.h>
#include <cshim/ttrpc.h>

#include "flags.h"
#include "plugins.h"
#include "reaper.h"
#include "ttrpc_server.h"

/* Longest wait for a quiet point unless the request says otherwise. */
#define HOST_UPGRADE_DEFAULT_TIMEOUT_MS 5000u

typedef struct host_upgrade_s host_upgrade_t;

/* Counters shown in /metrics and /debug/vars; they survive upgrades. */
typedef struct host_upgrade_stats_s
{
  uint64_t generation; /* upgrades this process went through */
  uint64_t upgrades;   /* finished upgrades */
  uint64_t rollbacks;  /* refused after the quiet point, or handed back by a new image */
  uint64_t refusals;   /* refused before anything stopped (checks, timeout) */
  uint64_t last_pause_ns;
  uint64_t crash_restarts; /* re-executions after a fatal signal */
  uint64_t last_crash_signal;
  const char *previous_version; /* borrowed; NULL before the first upgrade */
} host_upgrade_stats_t;

/* argv is the daemon's command line (copied without its -upgrade-* flags); binary is the
   shim's own absolute path (copied). log is borrowed for the life of u. */
host_upgrade_t *host_upgrade_new(uv_loop_t *loop, const cshim_logger_t *log, int argc, char **argv,
                                 const char *binary);
void host_upgrade_free(host_upgrade_t *u);

/* The parts an upgrade saves and restores (borrowed; set them as they come to exist). */
void host_upgrade_set_parts(host_upgrade_t *u, host_plugins_t *plugins, host_ttrpc_server_t *server,
                            host_reaper_t *reaper);
/* What the new image cannot find out by itself: the ttrpc socket path (NULL = unknown) and the
   debug listener containerd passed ("4", or NULL). Copied. */
void host_upgrade_set_identity(host_upgrade_t *u, const char *socket_path, const char *debug_fd);
/* Shutdown has begun: refuse upgrades from now on (one waiting for its quiet point is
   refused with Unavailable). */
void host_upgrade_set_stopping(host_upgrade_t *u);
/* Gives back the crash journal's pages that hold no call being handled (at the settle points). */
void host_upgrade_release_buffers(host_upgrade_t *u);
void host_upgrade_stats(const host_upgrade_t *u, host_upgrade_stats_t *out);
/* The counters as a JSON object (caller frees): the host's "upgrade" state source, shown in
   /debug/vars and /debug/state and read by /metrics. */
char *host_upgrade_dump_json(void *data);

/* Register cshim.upgrade.v1.Upgrade on the server. */
int host_upgrade_register(host_upgrade_t *u, cshim_ttrpc_server_t *server, cshim_error_t *err);
/* SIGHUP: upgrade to the shim's own binary; the outcome is logged. */
void host_upgrade_signal(host_upgrade_t *u);

/* ---- the new image ---- */

/* When flags carry -upgrade-state, read and check the state (before any plugin is loaded) and
   return 1; 0 when this is a normal start. A state this build cannot read rolls back at once
   (this call then does not return unless even that fails: <0 with err). */
int host_upgrade_load(host_upgrade_t *u, const host_flags_t *flags, cshim_error_t *err);
bool host_upgrade_restoring(const host_upgrade_t *u);
/* What host_upgrade_set_identity said in the previous image (borrowed; NULL when unset). */
const char *host_upgrade_socket_path(const host_upgrade_t *u);
const char *host_upgrade_debug_fd(const host_upgrade_t *u);
/* Each initialised plugin's upgrade_restore with its record; the server's listeners and
   connections. Any failure: call host_upgrade_rollback. */
int host_upgrade_restore(host_upgrade_t *u, cshim_error_t *err);
/* Everything is back: re-dispatch carried-over calls (the upgrade call among them is answered
   from here), reap what exited meanwhile, read again, log. */
void host_upgrade_finish(host_upgrade_t *u);
/* Crash survival: keep a snapshot of the state current (at the end of loop turns in which
   something changed and the shim is quiet) and install the fatal-signal handler that
   re-executes the shim from it (at most HOST_UPGRADE_CRASH_MAX restarts within
   HOST_UPGRADE_CRASH_WINDOW_S seconds; then the signal takes its default course). */
#define HOST_UPGRADE_CRASH_MAX 3u
#define HOST_UPGRADE_CRASH_WINDOW_S 60
int host_upgrade_guard_start(host_upgrade_t *u, cshim_error_t *err);

/* cshim_host_t.close_fd (data: u): fd is given up. While a crash snapshot may name it (the guard
   runs, or the state is being restored) it stays open until a snapshot that does not name it
   has been taken, made due at once; otherwise it is closed now. */
void host_upgrade_close_fd(void *data, int fd);

/* The command line of the hand-back to the previous image (host_upgrade_rollback): argv, the
   state and binary descriptors (their numbers written into bufs), -upgrade-rollback reason and,
   after a crash, -upgrade-crash as this image got it. Caller frees the array (not the
   strings, borrowed from u, bufs and reason). */
char **host_upgrade_rollback_argv(host_upgrade_t *u, const char *reason, char bufs[2][16]);

/* Hand back to the previous image with the same state and reason (err's message, released).
   Returns only when that exec failed (then the process cannot go on: the caller exits). */
void host_upgrade_rollback(host_upgrade_t *u, cshim_error_t *err);

#endif
