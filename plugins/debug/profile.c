// SPDX-License-Identifier: Apache-2.0
// CPU profiles for /debug/pprof/profile: gperftools' sampling profiler for N seconds (a loop
// timer, never a sleep), then the profile file streamed back in pieces, one per loop turn.
#define _GNU_SOURCE
#include "debug.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <dlfcn.h>
#include <gperftools/profiler.h>

#include <cshim/util.h>

/* gperftools' profiler is opened on the first profile request, not linked: it brings libstdc++,
   libunwind and friends (over 1 MB resident), which no shim should carry until someone asks
   for a profile. Its header gives the types; the soname comes from the build. Once opened it
   stays (its signal handler may still be installed). */
static struct
{
  bool tried;
  void *handle;
  int (*start)(const char *fname);
  void (*stop)(void);
  void (*get_state)(struct ProfilerState *state);
} profiler;

static const char *
load_profiler(void)
{
  static char why[512];
  if (profiler.handle)
    return NULL;
  if (profiler.tried)
    return why;
  profiler.tried = true;
  profiler.handle = dlopen(CSHIM_PROFILER_SONAME, RTLD_NOW | RTLD_LOCAL);
  if (profiler.handle == NULL) {
    snprintf(why, sizeof(why), "load %s: %s", CSHIM_PROFILER_SONAME, dlerror());
    return why;
  }
  *(void **)&profiler.start = dlsym(profiler.handle, "ProfilerStart");
  *(void **)&profiler.stop = dlsym(profiler.handle, "ProfilerStop");
  *(void **)&profiler.get_state = dlsym(profiler.handle, "ProfilerGetCurrentState");
  if (!profiler.start || !profiler.stop || !profiler.get_state) {
    snprintf(why, sizeof(why), "%s lacks the profiler API", CSHIM_PROFILER_SONAME);
    dlclose(profiler.handle);
    profiler.handle = NULL;
    return why;
  }
  return NULL;
}

struct debug_profile_s
{
  debug_t *d;
  debug_conn_t *conn; /* NULL once the client has gone */
  uv_timer_t timer;
  char *path;
  int fd;
  bool running;  /* ProfilerStart'ed and not yet stopped */
  bool finished; /* finish has run; the memory goes with the timer */
};

static void
drop_file(debug_profile_t *p)
{
  if (p->fd >= 0) {
    close(p->fd);
    p->fd = -1;
  }
  if (p->path) {
    unlink(p->path);
    free(p->path);
    p->path = NULL;
  }
}

static void
stop_profiler(debug_profile_t *p)
{
  if (p->running) {
    profiler.stop();
    p->running = false;
  }
}

static void
timer_closed_cb(uv_handle_t *h)
{
  debug_profile_t *p = h->data;
  debug_t *d = p->d;

  free(p);
  debug_handle_closed(d);
}

/* The profile is over for good: stop, forget the file, free once the timer has closed. */
static void
finish(debug_profile_t *p)
{
  debug_t *d = p->d;

  if (p->finished)
    return;
  p->finished = true;
  stop_profiler(p);
  drop_file(p);
  if (d->profile == p)
    d->profile = NULL;
  p->conn = NULL;
  uv_close((uv_handle_t *)&p->timer, timer_closed_cb);
}

static void
gone_cb(void *data, debug_conn_t *conn)
{
  debug_profile_t *p = data;

  p->conn = NULL;
  if (p->finished)
    return;
  /* While profiling, keep going (the timer ends it); while streaming, nobody is left to read. */
  if (!p->running)
    finish(p);
}

static void
next_piece_cb(void *data, debug_conn_t *conn)
{
  debug_profile_t *p = data;
  char *buf = cshim_xmalloc(DEBUG_CHUNK);
  ssize_t n;

  /* A just-written file of a few KiB is in the page cache: this read does not wait. */
  n = CSHIM_RETRY_EINTR(read(p->fd, buf, DEBUG_CHUNK));
  if (n <= 0) {
    free(buf);
    if (n < 0)
      cshim_log_warn(p->d->log, "debug: read profile `%s`: %s", p->path, strerror(errno));
    p->conn = NULL;
    debug_http_stream_end(conn);
    finish(p);
    return;
  }
  debug_http_stream_write(conn, buf, (size_t)n);
}

static void
profile_done_cb(uv_timer_t *t)
{
  debug_profile_t *p = t->data;
  struct stat st;

  stop_profiler(p);
  p->d->profiles++;
  if (p->conn == NULL) {
    finish(p);
    return;
  }
  p->fd = open(p->path, O_RDONLY | O_CLOEXEC);
  if (p->fd < 0 || fstat(p->fd, &st) < 0) {
    debug_http_respond_text(p->conn, 500, "profile file `%s`: %s", p->path, strerror(errno));
    finish(p);
    return;
  }
  cshim_log_info(p->d->log, "debug: CPU profile done, %lld bytes", (long long)st.st_size);
  debug_http_stream_begin(p->conn, 200, "application/octet-stream", (uint64_t)st.st_size,
                          "Content-Disposition: attachment; filename=\"profile\"\r\n",
                          next_piece_cb, gone_cb, p);
}

void
debug_profile_request(debug_t *d, debug_conn_t *conn, unsigned seconds)
{
  static unsigned serial;
  debug_profile_t *p;
  struct ProfilerState state;
  const char *why;

  if (d->profile) {
    debug_http_respond_text(conn, 409, "a CPU profile is already running");
    return;
  }
  why = load_profiler();
  if (why) {
    debug_http_respond_text(conn, 501, "the CPU profiler is not available: %s", why);
    return;
  }
  profiler.get_state(&state);
  if (state.enabled) {
    debug_http_respond_text(conn, 409, "the CPU profiler is in use (CPUPROFILE?)");
    return;
  }
  if (mkdir(d->profile_dir, 0700) < 0 && errno != EEXIST) {
    debug_http_respond_text(conn, 500, "create `%s`: %s", d->profile_dir, strerror(errno));
    return;
  }

  p = cshim_xmalloc0(sizeof(*p));
  p->d = d;
  p->conn = conn;
  p->fd = -1;
  cshim_xasprintf(&p->path, "%s/cpu-%d-%u.prof", d->profile_dir, (int)getpid(), ++serial);
  if (!profiler.start(p->path)) {
    debug_http_respond_text(conn, 500, "the CPU profiler did not start (file `%s`)", p->path);
    free(p->path);
    free(p);
    return;
  }
  p->running = true;
  uv_timer_init(d->loop, &p->timer);
  p->timer.data = p;
  d->open_handles++;
  d->profile = p;
  cshim_log_info(d->log, "debug: CPU profile for %u s to `%s`", seconds, p->path);
  debug_http_hold(conn, gone_cb, p);
  uv_timer_start(&p->timer, profile_done_cb, (uint64_t)seconds * 1000u, 0);
}

void
debug_profile_close(debug_t *d)
{
  debug_profile_t *p = d->profile;

  if (p == NULL)
    return;
  if (p->conn) {
    debug_conn_t *conn = p->conn;
    p->conn = NULL;
    if (p->running)
      debug_http_respond_text(conn, 503, "the shim is shutting down");
  }
  finish(p);
}
