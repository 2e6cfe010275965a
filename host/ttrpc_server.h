// SPDX-License-Identifier: Apache-2.0
// The host's asynchronous ttrpc server: listeners, connections, dispatch to plugin services.
#ifndef HOST_TTRPC_SERVER_H
#define HOST_TTRPC_SERVER_H

#include <stddef.h>
#include <uv.h>

#include <cshim/error.h>
#include <cshim/log.h>
#include <cshim/ttrpc.h>

typedef struct host_ttrpc_server_s host_ttrpc_server_t;

/* Calls a connection may have in flight (received, being worked on, not yet answered) before
   the server stops reading it; calls parked on an event (Wait) do not count. */
#define HOST_TTRPC_DEFAULT_MAX_CALLS_IN_FLIGHT 32u
/* Bytes the server may hold for all connections together in partially received frames, write
   queues and the requests of unanswered calls, with its own structures for them (the shared read
   buffer, each open connection and unanswered call). Past it, frames longer than 64 KiB are refused
   with ResourceExhausted and connections holding more than 1/16 of it stop being read until
   it is down to 3/4; a stalled connection whose write queue alone exceeds it is closed. */
#define HOST_TTRPC_DEFAULT_BUFFER_BUDGET ((size_t)32 << 20)
/* A connection that holds part of a frame (bytes charged to the budget) and sends nothing more
   for this long while the server reads it is closed: a stalled half frame gives its share back. */
#define HOST_TTRPC_DEFAULT_STALLED_FRAME_TIMEOUT_MS 10000u

/* Limits of the server; 0 in a field means its default. */
typedef struct host_ttrpc_server_limits_s
{
  size_t max_calls_in_flight;        /* per connection, >= 1 */
  size_t buffer_budget;              /* bytes; raised to 4 MiB + 128 KiB if smaller */
  uint64_t stalled_frame_timeout_ms; /* see HOST_TTRPC_DEFAULT_STALLED_FRAME_TIMEOUT_MS */
} host_ttrpc_server_limits_t;

/* What the limits are doing right now, and how often they acted. */
typedef struct host_ttrpc_server_usage_s
{
  size_t buffered;           /* bytes of clients charged to the budget (frames, answers) */
  size_t overhead;           /* bytes of the server's own structures charged to it too */
  size_t budget;             /* the budget in effect */
  size_t calls_working;      /* unanswered calls not parked (connections open or gone) */
  size_t calls_parked;       /* unanswered calls parked on an event */
  uint64_t frames_refused;   /* frames refused because the budget was spent */
  uint64_t paused_in_flight; /* times a connection was paused at its in-flight limit */
  uint64_t paused_budget;    /* times a connection was paused for the budget */
  uint64_t closed_budget;    /* connections closed for exceeding the budget while stalled */
  uint64_t trims;            /* times memory was handed back to the system */
  uint64_t calls_cancelled;  /* unanswered calls whose owner was told their connection closed */
  uint64_t closed_stalled;   /* connections closed for holding a partial frame without sending */
} host_ttrpc_server_usage_t;

/* Create a server on `loop` (borrowed until the server is freed). `log` (may be NULL) is
   borrowed until close's done_cb runs. The server owns no handle until it listens. Sets SIGPIPE
   to SIG_IGN if it is at its default, so a vanished peer fails a write instead of killing the
   process. */
int host_ttrpc_server_new(uv_loop_t *loop, const cshim_logger_t *log, host_ttrpc_server_t **out,
                          cshim_error_t *err);

/* The plugin-facing interface (what register_ttrpc receives). Borrowed from the server, valid
   until close is called. */
cshim_ttrpc_server_t *host_ttrpc_server_api(host_ttrpc_server_t *srv);

/* Number of registered services. */
size_t host_ttrpc_server_n_services(host_ttrpc_server_t *srv);

/* Set the limits; they apply to what happens from now on. */
void host_ttrpc_server_set_limits(host_ttrpc_server_t *srv,
                                  const host_ttrpc_server_limits_t *limits);

/* The limits in effect (defaults filled in). */
void host_ttrpc_server_get_limits(host_ttrpc_server_t *srv, host_ttrpc_server_limits_t *out);

/* Usage of the limits. */
void host_ttrpc_server_get_usage(host_ttrpc_server_t *srv, host_ttrpc_server_usage_t *out);

/* Counters (same as the api's get_stats). */
void host_ttrpc_server_get_stats(host_ttrpc_server_t *srv, cshim_ttrpc_stats_t *out);

/* Give the pages of the connections' read buffers back to the kernel: between read callbacks
   they hold nothing (partial frames live in the frame readers). For host_memory_settle's
   moments, not per call. */
void host_ttrpc_server_release_buffers(host_ttrpc_server_t *srv);

/* Runs hook(data) once, at the next input read on any connection (from the read callback,
   before the input is handled), then forgets it; NULL forgets it now. For host_memory_settle's
   moments: the shim settles once the calls stop. Costs one test per read. */
void host_ttrpc_server_on_next_input(host_ttrpc_server_t *srv, void (*hook)(void *data),
                                     void *data);

/* Serve on an already listening Unix socket, e.g. the one containerd passes as fd 3. The server
   takes ownership of fd on success only. May be called more than once (several listeners). */
int host_ttrpc_server_listen_fd(host_ttrpc_server_t *srv, int fd, cshim_error_t *err);

/* Serve on a Unix socket at `path` (an optional "unix://" prefix is ignored): create missing
   parent directories with mode 0700, bind, chmod the socket 0600, listen. A stale socket file
   (nobody accepts on it) is unlinked and bound again; a live one fails with EADDRINUSE. The
   socket file is left in place at close (removing it is the caller's business). */
int host_ttrpc_server_listen_path(host_ttrpc_server_t *srv, const char *path, cshim_error_t *err);

/* Stop accepting, close every connection and free the server once all of its handles have
   closed; then call done_cb (always from the loop, never before close returns; may be NULL).
   From this call on the server no longer calls into services or interceptors: the host may
   close plugins right after. Calls still pending keep working from the handler's side (their
   answers are dropped, after hooks are skipped) and each is freed when its handler answers;
   plugins must therefore answer every pending call in their close at the latest, or it leaks.
   Call it once; srv is invalid afterwards. */
void host_ttrpc_server_close(host_ttrpc_server_t *srv, void (*done_cb)(void *data), void *data);

/* ---- live upgrade (docs/live-upgrade.md) ---- */
#include <cshim/state.h>

/* Stop reading every connection (new requests wait in the kernel: held, not refused); new
   connections are accepted but not read either. resume reads again. */
void host_ttrpc_server_pause(host_ttrpc_server_t *srv);
void host_ttrpc_server_resume(host_ttrpc_server_t *srv);
/* NULL when every answer has been written, else why not (static). */
const char *host_ttrpc_server_busy(host_ttrpc_server_t *srv);
/* Listeners, connections (with a partly read frame) and their unanswered calls, as records of
   w. Descriptors go into w's fd table. */
int host_ttrpc_server_save(host_ttrpc_server_t *srv, cshim_state_writer_t *w, cshim_error_t *err);
/* In the new image, before anything is read: adopt listeners and connections from state (the
   server's list, borrowed). The server stays paused; the calls wait for redispatch. */
int host_ttrpc_server_restore(host_ttrpc_server_t *srv, const cshim_state_reader_t *state,
                              cshim_error_t *err);
/* Dispatch again every call carried over (once plugins have their state back). */
void host_ttrpc_server_redispatch(host_ttrpc_server_t *srv);
/* Crash survival: hook(data, connection fd, stream id, method, request, request_len, answered)
   runs before each call's handler (answered false; request is the packed ttrpc.Request, borrowed
   for the hook) and when it is answered (true; request NULL). NULL removes it. */
void host_ttrpc_server_set_call_hook(host_ttrpc_server_t *srv,
                                     void (*hook)(void *data, int fd, uint32_t stream_id,
                                                  const char *method, const uint8_t *request,
                                                  size_t request_len, bool answered),
                                     void *data);
/* Crash survival: runs (with the call hook's data) each time a call's handler has returned, the
   call maybe answered already. NULL removes it. */
void host_ttrpc_server_set_dispatched_hook(host_ttrpc_server_t *srv, void (*hook)(void *data));
/* After a crash, for a call that was being handled on the connection whose descriptor is fd:
   nothing when a carried-over call holds that stream (0; its re-run answers it), else run it
   again from request (2), or, with request NULL, answer it Unavailable with message (1).
   -ENOENT: no such connection. */
int host_ttrpc_server_recover_stream(host_ttrpc_server_t *srv, int fd, uint32_t stream_id,
                                     const uint8_t *request, size_t request_len,
                                     const char *message);
/* Crash survival, from a signal handler (async-signal-safe): for every open connection, one
   journal entry at *off of memfd: kind u32, fd u32, discarded u32 (data bytes of an oversized
   frame already dropped), length u32, then the input read from it and not yet framed (the
   partial frame, the rest of a read being dispatched, input held while paused). The
   descriptors go to fds (at most max_fds; -1 when there are more, or a write failed). */
int host_ttrpc_server_crash_write(host_ttrpc_server_t *srv, int memfd, uint32_t kind, off_t *off,
                                  int *fds, size_t max_fds, size_t *n_fds);
/* New image after a crash, before host_ttrpc_server_restore: only connections with these
   descriptors were open at the crash (borrowed until the restore returns; NULL = all). */
void host_ttrpc_server_set_live_fds(host_ttrpc_server_t *srv, const int *fds, size_t n);
/* After the restore: the connection on fd (adopted now when the snapshot did not have it) reads
   on from `bytes` (what host_ttrpc_server_crash_write wrote), replacing the snapshot's partial
   frame. */
int host_ttrpc_server_crash_input(host_ttrpc_server_t *srv, int fd, uint32_t discarded,
                                  const uint8_t *bytes, size_t len, cshim_error_t *err);

#endif
