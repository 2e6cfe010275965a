// SPDX-License-Identifier: Apache-2.0
// The host's SIGCHLD owner: reaps every child and dispatches exits by pid.
#ifndef HOST_REAPER_H
#define HOST_REAPER_H

#include <stdint.h>
#include <uv.h>

#include <cshim/log.h>
#include <cshim/reaper.h>

typedef struct host_reaper_s host_reaper_t;

/* Processes the shim forked (cshim_spawn through the `started` op), by kind and command. */
typedef struct host_reaper_started_s
{
  char kind[24];    /* "runtime", "logger", "other"... (truncated) */
  char command[24]; /* the runtime's subcommand, or "" */
  uint64_t count;
} host_reaper_started_t;

/* Install the SIGCHLD watcher on loop. Only one per process. */
int host_reaper_new(uv_loop_t *loop, const cshim_logger_t *log, host_reaper_t **out,
                    cshim_error_t *err);
cshim_reaper_t *host_reaper_api(host_reaper_t *r);
/* Reap whatever has exited now (also done on every SIGCHLD). */
void host_reaper_reap(host_reaper_t *r);
/* The started-process counts in first-seen order (*out borrowed until the next start). */
size_t host_reaper_started(const host_reaper_t *r, const host_reaper_started_t **out);
/* Stop watching SIGCHLD; memory is freed once the handles have closed. Pending watches are
   dropped without being called. */
void host_reaper_close(host_reaper_t *r);

/* Live upgrade. Exits reaped and not claimed yet (kept for a late watch), and exits claimed by a
   watch whose call is still deferred to the next loop turn: both must reach the next image.
   cb is called for each (pid, raw wait status, CLOCK_MONOTONIC ns when reaped). */
void host_reaper_foreach_unclaimed(const host_reaper_t *r,
                                   void (*cb)(void *data, pid_t pid, int status, uint64_t at_ns),
                                   void *data);
/* Put an exit back as unclaimed (restore; at_ns 0 = now): the next watch of pid gets it. */
void host_reaper_add_unclaimed(host_reaper_t *r, pid_t pid, int status, uint64_t at_ns);
/* Crash survival: told of every exit as it is reaped, before it is dispatched (NULL = none). */
void host_reaper_set_exit_hook(host_reaper_t *r, void (*hook)(void *data, pid_t pid, int status),
                               void *data);

/* Exits dispatched so far. */
uint64_t host_reaper_exits(const host_reaper_t *r);

#endif
