// SPDX-License-Identifier: Apache-2.0
// The host's asynchronous ttrpc server: Unix listeners, connections, dispatch of Request frames
// to plugin services, answers written in completion order.
#define _GNU_SOURCE /* struct ucred */
#include <assert.h>
#include <errno.h>
#include <stddef.h>
#include <fcntl.h>
#include <inttypes.h>
#include <malloc.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cshim/frame.h>
#include <cshim/list.h>
#include <cshim/state.h>
#include <cshim/unix_socket.h>
#include <cshim/util.h>

#include "google/rpc/status.pb-c.h"
#include "ttrpc/request.pb-c.h"
#include "ttrpc_server.h"
#include "ttrpc_request.h"

#define READ_BUF_SIZE (64u * 1024u)
/* Bytes of a call's unpacking arena: the Request (service, method, metadata) and the input of
   State, Connect, Pids, Stats, Wait... fit; a Create's spec does not and goes to malloc. */
#define CALL_ARENA_SIZE 512u
/* Answers gathered during one read callback before they are written anyway (bytes); a larger
   answer goes out on its own. */
#define CORK_BYTES (16u * 1024u)
/* A connection's cork buffer starts this small and grows by doubling; past CORK_KEEP it is
   given back at the next trim, so only a burst of large answers makes it big, and only for a
   while. */
#define CORK_MIN 512u
#define CORK_KEEP 4096u
/* Answered calls kept for the next ones (their struct with its arena): a call then costs no
   malloc and no free. Given back at the next trim. */
#define CALL_POOL_MAX 16u
/* A peer that sends requests but does not read its answers stops being read from once this
   much is queued (or half the buffer budget, if less), so its answers cannot grow our memory
   without bound; reading resumes when the queue is down to the low mark. */
#define WRITE_QUEUE_HIGH (16u << 20)
#define WRITE_QUEUE_LOW (4u << 20)
/* Frames up to this length are taken even when the buffer budget is spent (the connection may
   be paused instead); longer ones are refused with ResourceExhausted. */
#define SMALL_FRAME READ_BUF_SIZE
/* The smallest budget that still holds one frame of the largest size, the read buffer and a
   few connections' structures (see overhead below). */
#define MIN_BUFFER_BUDGET ((size_t)CSHIM_FRAME_MAX_DATA + 2 * READ_BUF_SIZE)
/* Past the budget, a connection holding more than budget / FAIR_SHARE_DIV is paused. */
#define FAIR_SHARE_DIV 16u
/* Returning memory: after this many bytes went through the budget, trim the heap once the loop
   has seen no traffic for one tick of the trim timer. */
#define TRIM_CHURN (1u << 20)
/* What a call costs its handler in allocations it frees again (runtime commands, their output,
   answers), beyond its request: a burst of small calls deserves a trim too. */
#define TRIM_CALL_WEIGHT (4u * 1024u)
#define TRIM_TICK_MS 200u
/* Charged on top of a connection's or a call's struct: the allocator's header and rounding,
   and libuv's slot for the connection's fd in its watcher table. */
#define OBJECT_SLACK 64u

/* Why reading a connection is stopped (bits of conn->paused). */
enum
{
  PAUSE_WRITE_QUEUE = 1u << 0, /* the peer does not read its answers */
  PAUSE_IN_FLIGHT = 1u << 1,   /* max_calls_in_flight calls are being worked on */
  PAUSE_BUDGET = 1u << 2,      /* the buffer budget is spent and this connection holds its share */
  PAUSE_UPGRADE = 1u << 3,     /* a live upgrade is saving or restoring the server */
};

#define ERR_PROTO_PARSE "proto: cannot parse invalid wire-format data"

struct registered_service
{
  const char *name;                 /* borrowed from the service or its descriptor */
  const cshim_ttrpc_service_t *svc; /* borrowed */
  cshim_ttrpc_handler_t *handlers;  /* owned; indexed like descriptor->methods */
  /* owned; indexed the same way: the method's input is decoded by host_ttrpc_unpack_strings
     (decided once here, not per call) */
  bool *strings_only;
};

struct listener
{
  uv_pipe_t pipe;
  host_ttrpc_server_t *srv;
  cshim_list_t link; /* in srv->listeners */
};

struct conn
{
  uv_pipe_t pipe;
  host_ttrpc_server_t *srv;
  cshim_list_t link;  /* in srv->conns while active */
  cshim_list_t calls; /* unanswered calls received here */
  uint64_t id;        /* cshim_ttrpc_call_connection: unique, never 0 */
  cshim_frame_reader_t reader;
  uint32_t last_stream_id;
  bool active;
  bool closing;
  bool reading;     /* uv_read_start is in effect */
  unsigned paused;  /* PAUSE_* bits; reading runs only when 0 */
  size_t n_working; /* calls received here, unanswered and not parked */
  /* Bytes read but not yet framed when the connection was paused mid-read; handled first when
     it resumes. */
  uint8_t *stash;
  size_t stash_len;
  /* While feed dispatches a frame: the input after it, not yet framed (crash survival: the
     handler writes it out, so the next image reads on from the same byte). */
  const uint8_t *feed_rest;
  size_t feed_rest_len;
  /* Bytes charged to the server's buffer budget, by what holds them. */
  size_t held_partial; /* the reader's partial frame */
  size_t held_write;   /* the write queue */
  size_t held_calls;   /* requests of unanswered calls received here */
  size_t held_stash;
  uint64_t last_input_ns;   /* last bytes read, or reading resumed (cshim_now_ns) */
  cshim_list_t resume_link; /* in srv->resume while a resume is scheduled */
  /* Inside a read callback, answers given at once are packed one after the other into `cork`
     and go out in one write(2) when it returns: N calls read together cost one write, not N,
     and a small answer costs no allocation (see cork_reserve, uncork). */
  bool corked;
  uint8_t *cork;   /* owned; charged to the server's overhead (cork_cap bytes) */
  size_t cork_len; /* bytes waiting in it */
  size_t cork_cap;
};

struct call
{
  cshim_ttrpc_call_t base;
  host_ttrpc_server_t *srv; /* NULL once the server is freed */
  struct conn *conn;        /* NULL once the connection is closing */
  cshim_list_t link;        /* in conn->calls, or srv->orphans once the connection is gone */
  Ttrpc__Request *req;      /* owned; base.service and base.method point into it */
  const ProtobufCMethodDescriptor *method;
  size_t n_before_passed; /* interceptors whose before returned 0: their after runs */
  size_t charged;         /* bytes of the request charged to the buffer budget */
  bool dispatching;       /* still inside dispatch: the answer must not free the call */
  bool answered;
  bool parked;            /* waits for an event: not counted in conn->n_working */
  struct call *next_free; /* in srv->call_pool */
  /* on_cancel: run once if the connection closes first (from srv->cancelled, next loop turn) */
  void (*cancel_cb)(cshim_ttrpc_call_t *call, void *data);
  void *cancel_data;
  /* The request and the decoded input are unpacked into the call's own arena: a small call
     costs no malloc/free per string and submessage (callgrind: ~30% of the user-space
     instructions of a Connect). What does not fit goes to malloc. Last member: not zeroed. */
  ProtobufCAllocator alloc;
  size_t arena_used;
  size_t spilled; /* blocks that went to malloc: only then is there anything to free */
  uint8_t arena[CALL_ARENA_SIZE] __attribute__((aligned(16)));
};

static void *
arena_alloc(void *data, size_t size)
{
  struct call *call = data;
  size_t rounded = (size + 15u) & ~(size_t)15u;

  if (rounded >= size && rounded <= sizeof call->arena - call->arena_used) {
    void *p = call->arena + call->arena_used;
    call->arena_used += rounded;
    return p;
  }
  call->spilled++;
  return malloc(size); /* NULL fails the unpack, as protobuf-c's default allocator would */
}

static void
arena_free(void *data, void *p)
{
  struct call *call = data;

  if ((uint8_t *)p >= call->arena && (uint8_t *)p < call->arena + sizeof call->arena)
    return; /* released with the call */
  free(p);
}

struct out_frame
{
  uv_write_t req;
  uint8_t *buf;
};

struct host_ttrpc_server_s
{
  cshim_ttrpc_server_t api; /* what plugins see */
  uv_loop_t *loop;
  const cshim_logger_t *log;

  struct registered_service *services;
  size_t n_services;
  const cshim_ttrpc_interceptor_t **interceptors;
  size_t n_interceptors;

  cshim_list_t listeners; /* newest first */
  cshim_list_t conns;
  cshim_list_t orphans;   /* unanswered calls whose connection is gone */
  cshim_list_t cancelled; /* such calls whose on_cancel callback is still to run */
  uint64_t next_conn_id;
  cshim_ttrpc_stats_t stats;

  host_ttrpc_server_limits_t limits;
  host_ttrpc_server_usage_t usage;
  size_t n_budget_paused; /* connections with PAUSE_BUDGET set */
  cshim_list_t resume;    /* connections whose reading resumes on the next loop turn */
  bool have_handles;      /* resume_idle, trim_timer and stall_timer are initialised */
  /* One read buffer for every connection: a read callback consumes its bytes before the next
     read starts (frames are copied by the reader, the rest of a paused read is stashed). */
  uint8_t *read_buf;
  uv_idle_t resume_idle;
  uv_timer_t trim_timer;
  uv_timer_t stall_timer; /* runs while a connection holds a partial frame */
  size_t churn;           /* bytes charged since the last trim */
  bool activity;          /* traffic since the last trim tick */
  struct call *call_pool; /* answered calls kept for reuse (CALL_POOL_MAX) */
  size_t n_call_pool;
  void (*input_hook)(void *data); /* one-shot, see host_ttrpc_server_on_next_input */
  void *input_hook_data;

  size_t n_handles; /* initialised and not yet closed */
  bool closing;
  uv_idle_t close_guard; /* makes done_cb always run from the loop */
  void (*done_cb)(void *data);
  void *done_data;

  /* live upgrade: no connection is read while set; calls carried over from the previous image
     wait in `restored` until host_ttrpc_server_redispatch */
  bool upgrade_paused;
  cshim_list_t restored; /* struct restored_call, in the order saved */
  /* crash survival: told of every call before its handler runs and once it is answered */
  void (*call_hook)(void *data, int fd, uint32_t stream_id, const char *method,
                    const uint8_t *request, size_t request_len, bool answered);
  void *call_hook_data;
  void (*dispatched_hook)(void *data); /* after a call's handler has returned */
  /* crash survival, new image: descriptors of the connections open at the crash (NULL = all) */
  const int *live_fds;
  size_t n_live_fds;
};

/* ---- limits: calls in flight, the buffer budget, memory handed back ---------------------------
 */

static void close_conn(struct conn *conn);
static void feed(struct conn *conn, const uint8_t *p, size_t len);
static int uncork(struct conn *conn);
static void trim_corks(host_ttrpc_server_t *srv);
static void drain_call_pool(host_ttrpc_server_t *srv);
static void read_alloc_cb(uv_handle_t *handle, size_t suggested, uv_buf_t *buf);
static void conn_read_cb(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf);

static size_t
min_size(size_t a, size_t b)
{
  return a < b ? a : b;
}

static size_t
fair_share(const host_ttrpc_server_t *srv)
{
  return srv->limits.buffer_budget / FAIR_SHARE_DIV;
}

/* What the budget bounds is the memory the server holds for its clients: the bytes they sent
   or are sent (usage.buffered) and the server's own structures for them (usage.overhead: the
   shared read buffer, each open connection, each unanswered call). So however many clients
   hold partial frames, the shim's memory grows by at most the budget (plus small frames, which
   pause their connection instead of being refused). */
static size_t
budget_used(const host_ttrpc_server_t *srv)
{
  return srv->usage.buffered + srv->usage.overhead;
}

static bool
over_budget(const host_ttrpc_server_t *srv)
{
  return budget_used(srv) > srv->limits.buffer_budget;
}

static size_t
conn_held(const struct conn *conn)
{
  return conn->held_partial + conn->held_write + conn->held_calls + conn->held_stash;
}

/* The longest frame a connection may announce now: what the budget has left, but never less
   than a small frame (those pause their connection instead, see feed) nor more than ttrpc's. */
static uint32_t
frame_limit(const host_ttrpc_server_t *srv)
{
  size_t used = budget_used(srv);
  size_t room = used < srv->limits.buffer_budget ? srv->limits.buffer_budget - used : 0;

  if (room < SMALL_FRAME)
    room = SMALL_FRAME;
  if (room > CSHIM_FRAME_MAX_DATA)
    room = CSHIM_FRAME_MAX_DATA;
  return (uint32_t)room;
}

static void
trim_timer_cb(uv_timer_t *timer)
{
  host_ttrpc_server_t *srv = CSHIM_CONTAINER_OF(timer, host_ttrpc_server_t, trim_timer);

  /* Still busy: what a trim gives back now would be taken again at once. */
  if (srv->activity) {
    srv->activity = false;
    return;
  }
  uv_timer_stop(timer);
  srv->churn = 0;
  drain_call_pool(srv);
  trim_corks(srv);
  malloc_trim(0);
  srv->usage.trims++;
}

static void resume_idle_cb(uv_idle_t *idle);

static void
init_limit_handles(host_ttrpc_server_t *srv)
{
  if (srv->have_handles)
    return;
  uv_idle_init(srv->loop, &srv->resume_idle);
  uv_timer_init(srv->loop, &srv->trim_timer);
  uv_timer_init(srv->loop, &srv->stall_timer);
  /* The trim and the stall check never need to keep a loop alive on their own. */
  uv_unref((uv_handle_t *)&srv->trim_timer);
  uv_unref((uv_handle_t *)&srv->stall_timer);
  srv->n_handles += 3;
  srv->read_buf = cshim_xmap(READ_BUF_SIZE);
  srv->usage.overhead += READ_BUF_SIZE; /* for the server's life: its pages come and go */
  srv->have_handles = true;
}

static void
budget_add(host_ttrpc_server_t *srv, size_t n)
{
  srv->usage.buffered += n;
  srv->churn += n;
  if (srv->churn >= TRIM_CHURN && srv->have_handles && !srv->closing &&
      !uv_is_active((uv_handle_t *)&srv->trim_timer))
    uv_timer_start(&srv->trim_timer, trim_timer_cb, TRIM_TICK_MS, TRIM_TICK_MS);
}

static void unpause_conn(struct conn *conn, unsigned why);

/* Connections paused for the budget resume once it is down to 3/4. */
static void
budget_freed(host_ttrpc_server_t *srv)
{
  cshim_list_t *l;

  if (srv->n_budget_paused == 0 || budget_used(srv) > srv->limits.buffer_budget / 4 * 3)
    return;
  CSHIM_LIST_FOREACH (l, &srv->conns) {
    if (srv->n_budget_paused == 0)
      break;
    unpause_conn(cshim_list_entry(l, struct conn, link), PAUSE_BUDGET);
  }
}

static void
budget_sub(host_ttrpc_server_t *srv, size_t n)
{
  assert(srv->usage.buffered >= n);
  srv->usage.buffered -= n;
  budget_freed(srv);
}

/* The server's own memory for a connection or a call, charged while it exists. */
#define CONN_COST (sizeof(struct conn) + OBJECT_SLACK)
#define CALL_COST (sizeof(struct call) + OBJECT_SLACK)

static void
overhead_add(host_ttrpc_server_t *srv, size_t n)
{
  srv->usage.overhead += n;
}

static void
overhead_sub(host_ttrpc_server_t *srv, size_t n)
{
  assert(srv->usage.overhead >= n);
  srv->usage.overhead -= n;
  budget_freed(srv);
}

/* Move a holder's charge to `now` bytes. */
static void
set_held(host_ttrpc_server_t *srv, size_t *held, size_t now)
{
  if (now > *held)
    budget_add(srv, now - *held);
  else if (now < *held)
    budget_sub(srv, *held - now);
  *held = now;
}

/* Close connections that hold a partial frame and have sent nothing for the timeout while
   being read (a paused connection is not waiting on its peer). */
static void
stall_timer_cb(uv_timer_t *timer)
{
  host_ttrpc_server_t *srv = CSHIM_CONTAINER_OF(timer, host_ttrpc_server_t, stall_timer);
  uint64_t now = cshim_now_ns(), limit = srv->limits.stalled_frame_timeout_ms * 1000000u;
  bool any = false;
  cshim_list_t *l, *next;

  CSHIM_LIST_FOREACH_SAFE (l, next, &srv->conns) {
    struct conn *conn = CSHIM_CONTAINER_OF(l, struct conn, link);
    if (conn->held_partial == 0 || conn->closing)
      continue;
    if (conn->paused || now - conn->last_input_ns < limit) {
      any = true;
      continue;
    }
    cshim_log_warn(srv->log,
                   "ttrpc: closing a connection that sent part of a frame (%zu bytes held) and "
                   "nothing more for %" PRIu64 " ms",
                   conn->held_partial, srv->limits.stalled_frame_timeout_ms);
    srv->usage.closed_stalled++;
    close_conn(conn);
  }
  if (!any)
    uv_timer_stop(timer);
}

static void
watch_stalls(host_ttrpc_server_t *srv)
{
  uint64_t tick = srv->limits.stalled_frame_timeout_ms / 4;

  if (!srv->have_handles || srv->closing || uv_is_active((uv_handle_t *)&srv->stall_timer))
    return;
  tick = tick < 10 ? 10 : tick > 1000 ? 1000 : tick;
  uv_timer_start(&srv->stall_timer, stall_timer_cb, tick, tick);
}

static void
start_reading(struct conn *conn)
{
  int r;

  if (conn->reading || conn->paused || conn->closing)
    return;
  conn->last_input_ns = cshim_now_ns(); /* a stall counts from here, not from before a pause */
  r = uv_read_start((uv_stream_t *)&conn->pipe, read_alloc_cb, conn_read_cb);
  if (r < 0) {
    cshim_log_warn(conn->srv->log, "ttrpc: cannot read connection: %s", uv_strerror(r));
    close_conn(conn);
    return;
  }
  conn->reading = true;
}

static void
pause_conn(struct conn *conn, unsigned why)
{
  host_ttrpc_server_t *srv = conn->srv;

  if ((conn->paused & why) || conn->closing)
    return;
  if (why == PAUSE_BUDGET) {
    srv->n_budget_paused++;
    srv->usage.paused_budget++;
    cshim_log_debug(srv->log,
                    "ttrpc: buffer budget spent (%zu of %zu bytes): stopped reading a connection "
                    "that holds %zu",
                    budget_used(srv), srv->limits.buffer_budget, conn_held(conn));
  } else if (why == PAUSE_IN_FLIGHT)
    srv->usage.paused_in_flight++;
  conn->paused |= why;
  if (conn->reading) {
    uv_read_stop((uv_stream_t *)&conn->pipe);
    conn->reading = false;
  }
}

/* Clear a reason; once none is left, reading resumes on the next loop turn, never from inside
   the answer or callback that cleared it. */
static void
unpause_conn(struct conn *conn, unsigned why)
{
  host_ttrpc_server_t *srv = conn->srv;

  if (!(conn->paused & why))
    return;
  if (why == PAUSE_BUDGET)
    srv->n_budget_paused--;
  conn->paused &= ~why;
  if (conn->paused || conn->closing || srv->closing || !cshim_list_empty(&conn->resume_link))
    return;
  cshim_list_push_back(&srv->resume, &conn->resume_link);
  uv_idle_start(&srv->resume_idle, resume_idle_cb);
}

static void
stash_input(struct conn *conn, const uint8_t *p, size_t len)
{
  conn->stash = cshim_xrealloc(conn->stash, conn->stash_len + len);
  memcpy(conn->stash + conn->stash_len, p, len);
  conn->stash_len += len;
  set_held(conn->srv, &conn->held_stash, conn->stash_len);
}

static void
resume_conn(struct conn *conn)
{
  if (conn->closing || conn->paused)
    return;
  if (conn->stash) {
    cshim_autofree uint8_t *input = cshim_steal_pointer(&conn->stash);
    size_t len = conn->stash_len;

    conn->stash_len = 0;
    set_held(conn->srv, &conn->held_stash, 0);
    conn->corked = true;
    feed(conn, input, len);
    conn->corked = false;
    if (!conn->closing)
      uncork(conn);
    if (conn->closing || conn->paused)
      return;
  }
  start_reading(conn);
}

static void
resume_idle_cb(uv_idle_t *idle)
{
  host_ttrpc_server_t *srv = CSHIM_CONTAINER_OF(idle, host_ttrpc_server_t, resume_idle);

  /* Calls parked by connections that are gone: their owners answer (to nobody) and forget them. */
  while (!cshim_list_empty(&srv->cancelled) && !srv->closing) {
    struct call *call = cshim_list_entry(cshim_list_first(&srv->cancelled), struct call, link);
    void (*cb)(cshim_ttrpc_call_t *, void *) = call->cancel_cb;

    cshim_list_remove(&call->link);
    cshim_list_push_back(&srv->orphans, &call->link);
    call->cancel_cb = NULL;
    srv->usage.calls_cancelled++;
    cb(&call->base, call->cancel_data);
  }

  while (!cshim_list_empty(&srv->resume) && !srv->closing) {
    struct conn *conn = cshim_list_entry(cshim_list_first(&srv->resume), struct conn, resume_link);
    cshim_list_remove(&conn->resume_link);
    resume_conn(conn);
  }
  uv_idle_stop(idle);
}

/* Charge the write queue to the budget and pause, resume or close the connection for it. */
static void
account_write_queue(struct conn *conn)
{
  host_ttrpc_server_t *srv = conn->srv;
  size_t queued = conn->pipe.write_queue_size;
  size_t high = min_size(WRITE_QUEUE_HIGH, srv->limits.buffer_budget / 2);
  size_t low = min_size(WRITE_QUEUE_LOW, srv->limits.buffer_budget / 8);

  set_held(srv, &conn->held_write, queued);
  if (queued > srv->limits.buffer_budget) {
    cshim_log_warn(srv->log,
                   "ttrpc: closing a connection that does not read its answers: %zu bytes "
                   "queued exceed the buffer budget of %zu",
                   queued, srv->limits.buffer_budget);
    srv->usage.closed_budget++;
    close_conn(conn);
    return;
  }
  if (queued > high && !(conn->paused & PAUSE_WRITE_QUEUE)) {
    cshim_log_debug(srv->log,
                    "ttrpc: peer reads its answers slowly (%zu bytes queued): "
                    "stopped reading from it",
                    queued);
    pause_conn(conn, PAUSE_WRITE_QUEUE);
  } else if (queued <= low)
    unpause_conn(conn, PAUSE_WRITE_QUEUE);
  if (over_budget(srv) && conn_held(conn) > fair_share(srv))
    pause_conn(conn, PAUSE_BUDGET);
}

/* A call takes one of its connection's in-flight slots and charges its request. */
static void
charge_call(struct conn *conn, struct call *call, size_t len)
{
  host_ttrpc_server_t *srv = conn->srv;

  call->charged = len;
  conn->held_calls += len;
  srv->churn += TRIM_CALL_WEIGHT;
  budget_add(srv, len);
  overhead_add(srv, CALL_COST);
  conn->n_working++;
  srv->usage.calls_working++;
}

static void
release_working_slot(struct conn *conn)
{
  conn->n_working--;
  if (conn->n_working < conn->srv->limits.max_calls_in_flight)
    unpause_conn(conn, PAUSE_IN_FLIGHT);
}

/* The call is answered: give back its slot and its charge. */
static void
release_call(host_ttrpc_server_t *srv, struct call *call)
{
  if (call->parked)
    srv->usage.calls_parked--;
  else
    srv->usage.calls_working--;
  if (call->conn) {
    assert(call->conn->held_calls >= call->charged);
    call->conn->held_calls -= call->charged;
    if (!call->parked)
      release_working_slot(call->conn);
  }
  budget_sub(srv, call->charged);
  call->charged = 0;
  overhead_sub(srv, CALL_COST);
}

/* The connection closes: what it buffered is released (its calls keep their own charge). */
static void
release_conn(struct conn *conn)
{
  host_ttrpc_server_t *srv = conn->srv;

  if (!cshim_list_empty(&conn->resume_link))
    cshim_list_remove(&conn->resume_link);
  if (conn->paused & PAUSE_BUDGET)
    srv->n_budget_paused--;
  conn->paused = 0;
  conn->held_calls = 0;
  set_held(srv, &conn->held_partial, 0);
  set_held(srv, &conn->held_write, 0);
  set_held(srv, &conn->held_stash, 0);
}

/* ---- handles and final free ---------------------------------------------------------------- */

static void
finish(host_ttrpc_server_t *srv)
{
  void (*done_cb)(void *data) = srv->done_cb;
  void *done_data = srv->done_data;
  size_t i;

  while (!cshim_list_empty(&srv->orphans)) {
    struct call *call = cshim_list_entry(cshim_list_first(&srv->orphans), struct call, link);
    cshim_list_remove(&call->link);
    call->srv = NULL;
  }
  while (!cshim_list_empty(&srv->cancelled)) {
    struct call *call = cshim_list_entry(cshim_list_first(&srv->cancelled), struct call, link);
    cshim_list_remove(&call->link);
    call->srv = NULL;
  }
  drain_call_pool(srv);
  for (i = 0; i < srv->n_services; i++) {
    free(srv->services[i].handlers);
    free(srv->services[i].strings_only);
  }
  if (srv->read_buf)
    cshim_xunmap(srv->read_buf, READ_BUF_SIZE);
  free(srv->services);
  free(srv->interceptors);
  free(srv);
  if (done_cb)
    done_cb(done_data);
}

static void
handle_closed(host_ttrpc_server_t *srv)
{
  srv->n_handles--;
  if (srv->closing && srv->n_handles == 0)
    finish(srv);
}

static void
listener_close_cb(uv_handle_t *handle)
{
  struct listener *l = CSHIM_CONTAINER_OF(handle, struct listener, pipe);
  host_ttrpc_server_t *srv = l->srv;

  free(l);
  handle_closed(srv);
}

static void
guard_close_cb(uv_handle_t *handle)
{
  host_ttrpc_server_t *srv = CSHIM_CONTAINER_OF(handle, host_ttrpc_server_t, close_guard);

  handle_closed(srv);
}

static void
resume_idle_close_cb(uv_handle_t *handle)
{
  handle_closed(CSHIM_CONTAINER_OF(handle, host_ttrpc_server_t, resume_idle));
}

static void
stall_timer_close_cb(uv_handle_t *handle)
{
  handle_closed(CSHIM_CONTAINER_OF(handle, host_ttrpc_server_t, stall_timer));
}

static void
trim_timer_close_cb(uv_handle_t *handle)
{
  handle_closed(CSHIM_CONTAINER_OF(handle, host_ttrpc_server_t, trim_timer));
}

static void
conn_close_cb(uv_handle_t *handle)
{
  struct conn *conn = CSHIM_CONTAINER_OF(handle, struct conn, pipe);
  host_ttrpc_server_t *srv = conn->srv;

  cshim_frame_reader_fini(&conn->reader);
  free(conn->stash);
  free(conn);
  handle_closed(srv);
}

static void drop_corked(struct conn *conn);

static void
close_conn(struct conn *conn)
{
  host_ttrpc_server_t *srv = conn->srv;

  if (conn->closing)
    return;
  conn->closing = true;
  drop_corked(conn);
  /* Answers to these calls have nowhere to go any more; the calls live on until answered. */
  while (!cshim_list_empty(&conn->calls)) {
    struct call *call = cshim_list_entry(cshim_list_first(&conn->calls), struct call, link);
    cshim_list_remove(&call->link);
    call->conn = NULL;
    /* A call that asked to be told goes to the cancelled list, whose callbacks run on the next
       loop turn (never from inside whatever closed the connection). */
    if (call->cancel_cb && !srv->closing && srv->have_handles) {
      cshim_list_push_back(&srv->cancelled, &call->link);
      uv_idle_start(&srv->resume_idle, resume_idle_cb);
    } else
      cshim_list_push_back(&srv->orphans, &call->link);
  }
  if (conn->active) {
    cshim_list_remove(&conn->link);
    srv->stats.connections_open--;
    overhead_sub(srv, CONN_COST);
  }
  release_conn(conn);
  uv_close((uv_handle_t *)&conn->pipe, conn_close_cb);
}

/* ---- writing ------------------------------------------------------------------------------- */

static void
conn_write_cb(uv_write_t *req, int status)
{
  struct out_frame *out = CSHIM_CONTAINER_OF(req, struct out_frame, req);
  struct conn *conn = CSHIM_CONTAINER_OF(req->handle, struct conn, pipe);

  free(out->buf);
  free(out);
  if (status == UV_ECANCELED || conn->closing)
    return;
  if (status < 0) {
    cshim_log_debug(conn->srv->log, "ttrpc: write failed, closing connection: %s",
                    uv_strerror(status));
    close_conn(conn);
    return;
  }
  account_write_queue(conn);
}

/* Hand a frame whose first bytes may already be written (b: what is left) to libuv, which
   writes the rest when the socket has room. Takes buf. */
static int
write_later(struct conn *conn, uint8_t *buf, uv_buf_t b)
{
  struct out_frame *out = cshim_xmalloc(sizeof(*out));
  int r;

  out->buf = buf;
  r = uv_write(&out->req, (uv_stream_t *)&conn->pipe, &b, 1, conn_write_cb);
  if (r < 0) {
    free(buf);
    free(out);
    cshim_log_debug(conn->srv->log, "ttrpc: write failed, closing connection: %s", uv_strerror(r));
    close_conn(conn);
    return r;
  }
  account_write_queue(conn);
  return 0;
}

/* The connection closes, or its memory is trimmed: the cork buffer goes (and what waits in it,
   which only a closing connection can have). */
static void
drop_corked(struct conn *conn)
{
  if (conn->cork_cap > 0)
    overhead_sub(conn->srv, conn->cork_cap);
  free(conn->cork);
  conn->cork = NULL;
  conn->cork_len = 0;
  conn->cork_cap = 0;
}

static void
trim_corks(host_ttrpc_server_t *srv)
{
  cshim_list_t *l;

  CSHIM_LIST_FOREACH (l, &srv->conns) {
    struct conn *conn = cshim_list_entry(l, struct conn, link);
    if (conn->cork_len == 0 && conn->cork_cap > CORK_KEEP)
      drop_corked(conn);
  }
}

/* Write what the cork holds with one write; what the socket does not take is queued (a copy:
   the cork is refilled by the next read). */
static int
uncork(struct conn *conn)
{
  size_t n = conn->cork_len;
  uv_buf_t b = uv_buf_init((char *)conn->cork, (unsigned int)n);
  uint8_t *rest;
  int done;

  if (n == 0)
    return 0;
  conn->cork_len = 0;
  done = uv_try_write((uv_stream_t *)&conn->pipe, &b, 1);
  if (done == UV_EAGAIN)
    done = 0;
  else if (done < 0) {
    cshim_log_debug(conn->srv->log, "ttrpc: write failed, closing connection: %s",
                    uv_strerror(done));
    close_conn(conn);
    return done;
  }
  if ((size_t)done == n)
    return 0;
  rest = cshim_xmalloc(n - (size_t)done);
  memcpy(rest, conn->cork + done, n - (size_t)done);
  return write_later(conn, rest, uv_buf_init((char *)rest, (unsigned int)(n - (size_t)done)));
}

/* Room for a frame of len bytes at the end of the cork, or NULL when the frame must go out on
   its own (not inside a read callback, answers already queued, or too large). May write what
   the cork holds first; *err is then that write's error (the connection is closed). */
static uint8_t *
cork_reserve(struct conn *conn, size_t len, int *err)
{
  uint8_t *p;

  *err = 0;
  if (!conn->corked || conn->closing || conn->pipe.write_queue_size != 0 || len > CORK_BYTES)
    return NULL;
  if (conn->cork_len + len > CORK_BYTES) {
    if ((*err = uncork(conn)) < 0 || conn->pipe.write_queue_size != 0)
      return NULL;
  }
  if (conn->cork_len + len > conn->cork_cap) {
    size_t cap = conn->cork_cap ? conn->cork_cap : CORK_MIN;
    while (cap < conn->cork_len + len)
      cap *= 2;
    if (cap > CORK_BYTES)
      cap = CORK_BYTES;
    conn->cork = cshim_xrealloc(conn->cork, cap);
    overhead_add(conn->srv, cap - conn->cork_cap);
    conn->cork_cap = cap;
  }
  p = conn->cork + conn->cork_len;
  conn->cork_len += len;
  return p;
}

/* Queue one whole frame; libuv keeps frames in order and finishes partial writes. Takes buf. */
static int
queue_frame(struct conn *conn, uint8_t *buf, size_t len)
{
  uv_buf_t b = uv_buf_init((char *)buf, (unsigned int)len);
  uint8_t *dst;
  int r;

  /* Only small answers wait in the cork (at most CORK_BYTES per connection); a large one goes
     to the write queue at once, after what the cork holds, where the buffer budget sees it. */
  dst = cork_reserve(conn, len, &r);
  if (dst) {
    memcpy(dst, buf, len);
    free(buf);
    return 0;
  }
  if (r == 0 && conn->cork_len > 0)
    r = uncork(conn);
  if (r < 0) {
    free(buf);
    return r;
  }

  /* Nothing queued: write now. A frame that goes out whole costs one write(2) and no uv_write
     request (libuv re-arms the epoll watcher after every completed uv_write). */
  if (conn->pipe.write_queue_size == 0) {
    r = uv_try_write((uv_stream_t *)&conn->pipe, &b, 1);
    if (r == (int)len) {
      free(buf);
      return 0;
    }
    if (r > 0) {
      b.base += r;
      b.len -= (size_t)r;
    } else if (r != UV_EAGAIN) {
      free(buf);
      cshim_log_debug(conn->srv->log, "ttrpc: write failed, closing connection: %s",
                      uv_strerror(r));
      close_conn(conn);
      return r;
    }
  }
  return write_later(conn, buf, b);
}

/* A successful Response is Response{status: Status{} (code 0, no message), payload: msg}: as
   protobuf-c packs it, `0a 00` (field 1, an empty message), then `12 <varint length> <msg>`
   (field 2; left out when empty, proto3). Written here directly, with msg packed straight into
   the frame: protobuf-c would measure msg twice, pack it into a buffer and then copy that
   buffer into the Response (unit test: test_ttrpc_server_ok_answers_pack_as_protobuf_c_does). */
static size_t
ok_response_prefix(size_t payload_len, uint8_t out[2 + 1 + 10])
{
  size_t n = 0;

  out[n++] = 0x0a;
  out[n++] = 0x00;
  if (payload_len == 0)
    return n;
  out[n++] = 0x12;
  while (payload_len >= 0x80) {
    out[n++] = (uint8_t)(payload_len | 0x80);
    payload_len >>= 7;
  }
  out[n++] = (uint8_t)payload_len;
  return n;
}

/* A Response carrying a status (code != OK): packed by protobuf-c. */
static int
send_status_response(struct conn *conn, uint32_t stream_id, int code, const char *message)
{
  Google__Rpc__Status status = GOOGLE__RPC__STATUS__INIT;
  Ttrpc__Response resp = TTRPC__RESPONSE__INIT;
  cshim_frame_header_t header = {.stream_id = stream_id, .type = CSHIM_FRAME_RESPONSE};
  cshim_error_t err = NULL;
  uint8_t *frame = NULL;
  size_t frame_len = 0;
  int r;

  status.code = code;
  status.message = (char *)(message ? message : "");
  resp.status = &status;
  r = cshim_frame_pack(&header, &resp.base, CSHIM_FRAME_MAX_DATA, &frame, &frame_len, &err);
  if (r < 0) {
    /* Only a huge status message can get here. */
    cshim_log_error(conn->srv->log, "ttrpc: cannot answer stream %u: %s", stream_id, err->msg);
    cshim_error_release(&err);
    return r;
  }
  return queue_frame(conn, frame, frame_len);
}

/* Send a Response. On success the payload is `msg`, or else the `packed_len` bytes at `packed`
   (neither: empty); otherwise the status. A Response that would exceed the frame limit is
   replaced by ResourceExhausted, which ttrpc >= 1.2 reports too; unlike Go's server we keep the
   connection open, since the peer did nothing wrong. Returns the code actually sent in
   *sent_code. */
static int
send_response_packed(struct conn *conn, uint32_t stream_id, int code, const char *message,
                     const ProtobufCMessage *msg, const uint8_t *packed, size_t packed_len,
                     int *sent_code)
{
  cshim_autofree char *too_big = NULL;
  int r;

  if (code == CSHIM_GRPC_OK) {
    cshim_frame_header_t header = {.stream_id = stream_id, .type = CSHIM_FRAME_RESPONSE};
    uint8_t prefix[2 + 1 + 10];
    size_t plen = msg ? protobuf_c_message_get_packed_size(msg) : packed ? packed_len : 0;
    size_t n_prefix = ok_response_prefix(plen, prefix);
    size_t n = n_prefix + plen;

    /* Measured before anything is packed, so an absurd answer costs no memory. */
    if (n <= CSHIM_FRAME_MAX_DATA) {
      size_t frame_len = CSHIM_FRAME_HEADER_SIZE + n;
      uint8_t *frame;
      bool in_cork;

      if (sent_code)
        *sent_code = code;
      header.length = (uint32_t)n;
      /* Packed straight into the cork when it takes the answer: no allocation, no copy. */
      frame = cork_reserve(conn, frame_len, &r);
      if (r < 0)
        return r;
      in_cork = frame != NULL;
      if (!in_cork)
        frame = cshim_xmalloc(frame_len);
      cshim_frame_header_encode(&header, frame);
      memcpy(frame + CSHIM_FRAME_HEADER_SIZE, prefix, n_prefix);
      if (plen > 0 && msg)
        protobuf_c_message_pack(msg, frame + CSHIM_FRAME_HEADER_SIZE + n_prefix);
      else if (plen > 0)
        memcpy(frame + CSHIM_FRAME_HEADER_SIZE + n_prefix, packed, plen);
      return in_cork ? 0 : queue_frame(conn, frame, frame_len);
    }
    cshim_xasprintf(&too_big, "message length %zu exceed maximum message size of %u", n,
                    CSHIM_FRAME_MAX_DATA);
    cshim_log_warn(conn->srv->log, "ttrpc: answer on stream %u is too large: %s", stream_id,
                   too_big);
    if (sent_code)
      *sent_code = CSHIM_GRPC_RESOURCE_EXHAUSTED;
    r = send_status_response(conn, stream_id, CSHIM_GRPC_RESOURCE_EXHAUSTED, too_big);
    return r < 0 ? r : -EMSGSIZE;
  }
  if (sent_code)
    *sent_code = code;
  return send_status_response(conn, stream_id, code, message);
}

static int
send_response(struct conn *conn, uint32_t stream_id, int code, const char *message,
              const ProtobufCMessage *msg, int *sent_code)
{
  return send_response_packed(conn, stream_id, code, message, msg, NULL, 0, sent_code);
}

static void
send_status(struct conn *conn, uint32_t stream_id, int code, const char *message)
{
  conn->srv->stats.frames_rejected++;
  cshim_log_debug(conn->srv->log, "ttrpc: rejected frame on stream %u: %s", stream_id, message);
  send_response(conn, stream_id, code, message, NULL, NULL);
}

/* ---- calls --------------------------------------------------------------------------------- */

static void
call_hook_run(struct conn *conn, uint32_t stream_id, const char *method, const uint8_t *request,
              size_t request_len, bool answered)
{
  uv_os_fd_t fd;
  if (uv_fileno((uv_handle_t *)&conn->pipe, &fd) == 0)
    conn->srv->call_hook(conn->srv->call_hook_data, fd, stream_id, method, request, request_len,
                         answered);
}

/* A call whose members before the arena are zero and whose allocator is its arena; from the
   server's pool when it has one. */
static struct call *
call_new(host_ttrpc_server_t *srv)
{
  struct call *call = srv->call_pool;

  if (call) {
    srv->call_pool = call->next_free;
    srv->n_call_pool--;
    srv->usage.overhead -= CALL_COST; /* charged again by charge_call when it works */
  } else
    call = cshim_xmalloc(sizeof(*call));
  memset(call, 0, offsetof(struct call, arena));
  call->alloc.alloc = arena_alloc;
  call->alloc.free = arena_free;
  call->alloc.allocator_data = call;
  return call;
}

/* srv: the server the call came to, NULL once it is gone. */
static void
free_call(host_ttrpc_server_t *srv, struct call *call)
{
  /* Everything in the arena goes with the call: walking the message only finds malloc blocks. */
  if (call->req && call->spilled)
    ttrpc__request__free_unpacked(call->req, &call->alloc);
  if (srv && !srv->closing && srv->n_call_pool < CALL_POOL_MAX) {
    call->next_free = srv->call_pool;
    srv->call_pool = call;
    srv->n_call_pool++;
    srv->usage.overhead += CALL_COST;
    return;
  }
  free(call);
}

static void
drain_call_pool(host_ttrpc_server_t *srv)
{
  while (srv->call_pool) {
    struct call *call = srv->call_pool;
    srv->call_pool = call->next_free;
    srv->n_call_pool--;
    overhead_sub(srv, CALL_COST);
    free(call);
  }
}

static int
answer_packed(struct call *call, int code, const char *message, const ProtobufCMessage *msg,
              const uint8_t *packed, size_t packed_len)
{
  host_ttrpc_server_t *srv = call->srv;
  int sent_code = code;
  int ret = -ENOTCONN;
  size_t i;

  if (call->answered) {
    if (srv)
      cshim_log_error(srv->log, "ttrpc: %s/%s on stream %u answered twice", call->base.service,
                      call->base.method, call->base.stream_id);
    return -EALREADY;
  }
  call->answered = true;
  cshim_list_remove(&call->link);
  if (srv && srv->call_hook && call->conn)
    call_hook_run(call->conn, call->base.stream_id, call->base.method, NULL, 0, true);
  if (srv)
    release_call(srv, call);

  if (call->conn)
    ret = send_response_packed(call->conn, call->base.stream_id, code, message, msg, packed,
                               packed_len, &sent_code);
  if (srv) {
    srv->stats.calls_in_flight--;
    /* After close the interceptors may belong to plugins that are already gone. */
    if (!srv->closing) {
      for (i = call->n_before_passed; i > 0 && !srv->closing; i--) {
        const cshim_ttrpc_interceptor_t *ic = srv->interceptors[i - 1];
        if (ic->after)
          ic->after(ic->data, &call->base, sent_code);
      }
    }
  }
  if (!call->dispatching)
    free_call(srv, call);
  return ret;
}

static int
answer(struct call *call, int code, const char *message, const ProtobufCMessage *msg)
{
  return answer_packed(call, code, message, msg, NULL, 0);
}

static int
call_reply_packed(cshim_ttrpc_call_t *base, const ProtobufCMessageDescriptor *type,
                  const uint8_t *bytes, size_t len)
{
  struct call *call = (struct call *)base;

  if (call->method && type != call->method->output) {
    char msg[512];
    snprintf(msg, sizeof(msg), "ttrpc: %s/%s answered with a %s instead of a %s",
             call->base.service, call->base.method, type ? type->name : "(none)",
             call->method->output->name);
    if (call->srv)
      cshim_log_error(call->srv->log, "%s", msg);
    answer(call, CSHIM_GRPC_INTERNAL, msg, NULL);
    return -EINVAL;
  }
  return answer_packed(call, CSHIM_GRPC_OK, NULL, NULL, len ? bytes : NULL, len);
}

static int
call_reply(cshim_ttrpc_call_t *base, const ProtobufCMessage *response)
{
  struct call *call = (struct call *)base;

  if (response && call->method && response->descriptor != call->method->output) {
    char msg[512];
    snprintf(msg, sizeof(msg), "ttrpc: %s/%s answered with a %s instead of a %s",
             call->base.service, call->base.method, response->descriptor->name,
             call->method->output->name);
    if (call->srv)
      cshim_log_error(call->srv->log, "%s", msg);
    answer(call, CSHIM_GRPC_INTERNAL, msg, NULL);
    return -EINVAL;
  }
  return answer(call, CSHIM_GRPC_OK, NULL, response);
}

static int
call_fail(cshim_ttrpc_call_t *base, int grpc_code, const char *message)
{
  struct call *call = (struct call *)base;

  if (grpc_code <= CSHIM_GRPC_OK || grpc_code > CSHIM_GRPC_UNAUTHENTICATED)
    grpc_code = CSHIM_GRPC_UNKNOWN;
  return answer(call, grpc_code, message, NULL);
}

static const char *
call_metadata(const cshim_ttrpc_call_t *base, const char *key)
{
  const struct call *call = (const struct call *)base;
  size_t i;

  if (!key)
    return NULL;
  for (i = 0; i < call->req->n_metadata; i++) {
    const Ttrpc__KeyValue *kv = call->req->metadata[i];
    if (kv && kv->key && strcasecmp(kv->key, key) == 0)
      return kv->value;
  }
  return NULL;
}

static void
call_park(cshim_ttrpc_call_t *base)
{
  struct call *call = (struct call *)base;

  if (call->answered || call->parked || !call->srv)
    return;
  call->parked = true;
  call->srv->usage.calls_working--;
  call->srv->usage.calls_parked++;
  if (call->conn)
    release_working_slot(call->conn);
}

static uint64_t
call_connection(const cshim_ttrpc_call_t *base)
{
  const struct call *call = (const struct call *)base;

  return call->conn && !call->conn->closing ? call->conn->id : 0;
}

static void
call_on_cancel(cshim_ttrpc_call_t *base, void (*cb)(cshim_ttrpc_call_t *call, void *data),
               void *data)
{
  struct call *call = (struct call *)base;

  if (call->answered)
    return;
  call->cancel_cb = cb;
  call->cancel_data = data;
}

static const cshim_ttrpc_call_ops_t call_ops = {
    .struct_size = sizeof(cshim_ttrpc_call_ops_t),
    .reply = call_reply,
    .fail = call_fail,
    .metadata = call_metadata,
    .park = call_park,
    .connection = call_connection,
    .on_cancel = call_on_cancel,
    .reply_packed = call_reply_packed,
};

static const struct registered_service *
find_service(host_ttrpc_server_t *srv, const char *name)
{
  size_t i;

  for (i = 0; i < srv->n_services; i++)
    if (strcmp(srv->services[i].name, name) == 0)
      return &srv->services[i];
  return NULL;
}

static void
lowercase_metadata_keys(Ttrpc__Request *req)
{
  size_t i;
  char *p;

  for (i = 0; i < req->n_metadata; i++) {
    if (!req->metadata[i] || !req->metadata[i]->key)
      continue;
    for (p = req->metadata[i]->key; *p; p++)
      if (*p >= 'A' && *p <= 'Z')
        *p = (char)(*p - 'A' + 'a');
  }
}

/* Run the interceptors' before hooks, decode the payload and call the handler. */
static void
dispatch(struct call *call, const struct registered_service *rs, cshim_ttrpc_handler_t handler)
{
  host_ttrpc_server_t *srv = call->srv;
  ProtobufCMessage *input;
  size_t i;

  call->dispatching = true;
  for (i = 0; i < srv->n_interceptors && !call->answered && !srv->closing; i++) {
    const cshim_ttrpc_interceptor_t *ic = srv->interceptors[i];
    if (ic->before && ic->before(ic->data, &call->base) != 0)
      break;
    if (call->answered)
      break;
    call->n_before_passed++;
  }

  /* An interceptor closed the server: nobody else will ever answer this call. */
  if (srv->closing && !call->answered)
    answer(call, CSHIM_GRPC_UNAVAILABLE, "ttrpc server is closing", NULL);

  if (i == srv->n_interceptors && !call->answered) {
    /* Decoded after the interceptors, as Go does: they see the call even when its payload is
       bad, and then see its Internal answer. */
    if (rs->strings_only[call->method - rs->svc->descriptor->methods])
      input = host_ttrpc_unpack_strings(call->method->input, &call->alloc, call->req->payload.len,
                                        call->req->payload.data);
    else
      input = protobuf_c_message_unpack(call->method->input, &call->alloc, call->req->payload.len,
                                        call->req->payload.data);
    if (!input)
      answer(call, CSHIM_GRPC_INTERNAL, "ttrpc: error unmarshalling payload: " ERR_PROTO_PARSE,
             NULL);
    else {
      handler(&call->base, input, rs->svc->data);
      if (call->spilled)
        protobuf_c_message_free_unpacked(input, &call->alloc);
    }
  }

  call->dispatching = false;
  if (call->answered)
    free_call(srv, call);
}

static void
handle_request(struct conn *conn, uint32_t stream_id, const uint8_t *data, size_t len)
{
  host_ttrpc_server_t *srv = conn->srv;
  const struct registered_service *rs;
  const ProtobufCMethodDescriptor *method;
  cshim_ttrpc_handler_t handler = NULL;
  cshim_autofree char *msg = NULL;
  Ttrpc__Request *req;
  struct call *call;

  if (stream_id % 2 != 1) {
    send_status(conn, stream_id, CSHIM_GRPC_INVALID_ARGUMENT,
                "StreamID must be odd for client initiated streams");
    return;
  }
  if (stream_id <= conn->last_stream_id) {
    send_status(conn, stream_id, CSHIM_GRPC_INVALID_ARGUMENT,
                "StreamID cannot be re-used and must increment");
    return;
  }
  conn->last_stream_id = stream_id;

  call = call_new(srv);
  req = host_ttrpc_request_decode(&call->alloc, len, data);
  if (!req) {
    free_call(srv, call);
    send_status(conn, stream_id, CSHIM_GRPC_INVALID_ARGUMENT,
                "unmarshal request error: " ERR_PROTO_PARSE);
    return;
  }
  call->req = req;
  srv->stats.calls_total++;

  rs = find_service(srv, req->service);
  if (!rs) {
    cshim_xasprintf(&msg, "service %s", req->service);
    send_response(conn, stream_id, CSHIM_GRPC_UNIMPLEMENTED, msg, NULL, NULL);
    free_call(srv, call);
    return;
  }
  method = protobuf_c_service_descriptor_get_method_by_name(rs->svc->descriptor, req->method);
  if (method)
    handler = rs->handlers[method - rs->svc->descriptor->methods];
  if (!handler) {
    cshim_xasprintf(&msg, "method %s", req->method);
    send_response(conn, stream_id, CSHIM_GRPC_UNIMPLEMENTED, msg, NULL, NULL);
    free_call(srv, call);
    return;
  }

  lowercase_metadata_keys(req);
  call->base.ops = &call_ops;
  call->base.service = req->service;
  call->base.method = req->method;
  call->base.stream_id = stream_id;
  call->base.timeout_nano = req->timeout_nano;
  /* When its bytes were read (the read callback's clock reading: one per read, not per call) */
  call->base.started_ns = conn->last_input_ns ? conn->last_input_ns : cshim_now_ns();
  call->srv = srv;
  call->conn = conn;
  call->method = method;
  cshim_list_push_back(&conn->calls, &call->link);
  srv->stats.calls_in_flight++;
  charge_call(conn, call, len);
  if (srv->call_hook)
    call_hook_run(conn, stream_id, req->method, data, len, false);

  dispatch(call, rs, handler);
  if (srv->dispatched_hook)
    srv->dispatched_hook(srv->call_hook_data);
}

/* ---- reading ------------------------------------------------------------------------------- */

static void
read_alloc_cb(uv_handle_t *handle, size_t suggested, uv_buf_t *buf)
{
  struct conn *conn = CSHIM_CONTAINER_OF(handle, struct conn, pipe);

  buf->base = (char *)conn->srv->read_buf;
  buf->len = READ_BUF_SIZE;
}

/* Refuse a frame the reader discarded: longer than ttrpc allows, or than the budget can hold. */
static void
refuse_frame(struct conn *conn, const cshim_frame_header_t *header)
{
  host_ttrpc_server_t *srv = conn->srv;
  char msg[192];

  if (header->length > CSHIM_FRAME_MAX_DATA) {
    snprintf(msg, sizeof(msg), "message length %u exceed maximum message size of %u",
             header->length, CSHIM_FRAME_MAX_DATA);
    send_status(conn, header->stream_id, CSHIM_GRPC_RESOURCE_EXHAUSTED, msg);
    return;
  }
  srv->usage.frames_refused++;
  snprintf(msg, sizeof(msg),
           "message length %u exceeds the shim's free buffer space (%zu of %zu bytes in use); "
           "retry later",
           header->length, budget_used(srv), srv->limits.buffer_budget);
  send_status(conn, header->stream_id, CSHIM_GRPC_RESOURCE_EXHAUSTED, msg);
  if (!conn->closing && conn_held(conn) > fair_share(srv))
    pause_conn(conn, PAUSE_BUDGET);
}

/* The next frame of the input, as cshim_frame_reader_next. A frame that lies whole in the input
   while the reader holds nothing (what a read of pipelined calls brings) is not copied: its data
   points into the input and *borrowed is set; it is valid while feed() is on that frame. One
   that spans reads goes through the reader, which copies it. */
static enum cshim_frame_result
next_frame(cshim_frame_reader_t *rd, const uint8_t **p, size_t *len, cshim_frame_t *frame,
           bool *borrowed)
{
  *borrowed = false;
  if (rd->header_len == 0 && *len >= CSHIM_FRAME_HEADER_SIZE) {
    cshim_frame_header_t h;

    cshim_frame_header_decode(*p, &h);
    if (h.length > 0 && h.length <= rd->max_data && h.length <= *len - CSHIM_FRAME_HEADER_SIZE) {
      frame->header = h;
      frame->data = (uint8_t *)(*p + CSHIM_FRAME_HEADER_SIZE); /* only read */
      *p += CSHIM_FRAME_HEADER_SIZE + h.length;
      *len -= CSHIM_FRAME_HEADER_SIZE + h.length;
      *borrowed = true;
      return CSHIM_FRAME_COMPLETE;
    }
  }
  return cshim_frame_reader_next(rd, p, len, frame);
}

/* Frame and dispatch input until it is used up or the connection is paused or closed; what is
   left of it then is stashed for when the connection resumes. */
static void
feed(struct conn *conn, const uint8_t *p, size_t len)
{
  host_ttrpc_server_t *srv = conn->srv;

  srv->activity = true;
  /* A handler may close the connection (or the whole server) while we are in this loop. */
  while (len > 0 && !conn->closing && !conn->paused) {
    cshim_frame_t frame;
    enum cshim_frame_result res;
    bool borrowed;

    if (cshim_frame_reader_held(&conn->reader) == 0 && over_budget(srv) &&
        conn_held(conn) > fair_share(srv)) {
      pause_conn(conn, PAUSE_BUDGET);
      break;
    }
    cshim_frame_reader_set_limit(&conn->reader, frame_limit(srv));
    res = next_frame(&conn->reader, &p, &len, &frame, &borrowed);
    set_held(srv, &conn->held_partial, cshim_frame_reader_held(&conn->reader));
    if (conn->held_partial > 0)
      watch_stalls(srv);
    if (res == CSHIM_FRAME_NEED_MORE)
      break;
    if (res == CSHIM_FRAME_OVERSIZED) {
      refuse_frame(conn, &frame.header);
      continue;
    }
    /* Data frames belong to streaming methods, which no service here has; like ttrpc 1.1 we
       ignore them along with unknown types, for forward compatibility. */
    if (frame.header.type == CSHIM_FRAME_REQUEST) {
      conn->feed_rest = p;
      conn->feed_rest_len = len;
      handle_request(conn, frame.header.stream_id, frame.data, frame.header.length);
      conn->feed_rest = NULL;
      conn->feed_rest_len = 0;
    }
    if (!borrowed)
      free(frame.data);
    if (!conn->closing && conn->n_working >= srv->limits.max_calls_in_flight)
      pause_conn(conn, PAUSE_IN_FLIGHT);
  }
  if (len > 0 && !conn->closing)
    stash_input(conn, p, len);
}

static void
conn_read_cb(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
  struct conn *conn = CSHIM_CONTAINER_OF(stream, struct conn, pipe);
  const uint8_t *p = (const uint8_t *)buf->base;
  size_t len = nread > 0 ? (size_t)nread : 0;

  if (nread < 0) {
    if (nread != UV_EOF && nread != UV_ECONNRESET)
      cshim_log_debug(conn->srv->log, "ttrpc: read failed, closing connection: %s",
                      uv_strerror((int)nread));
    close_conn(conn);
    return;
  }
  if (conn->srv->input_hook) {
    void (*hook)(void *data) = conn->srv->input_hook;
    conn->srv->input_hook = NULL;
    hook(conn->srv->input_hook_data);
  }
  conn->last_input_ns = cshim_now_ns();
  conn->corked = true;
  feed(conn, p, len);
  conn->corked = false;
  if (!conn->closing)
    uncork(conn);
}

static bool
peer_is_self(struct conn *conn)
{
  struct ucred cred;
  socklen_t len = sizeof(cred);
  uv_os_fd_t fd;

  if (uv_fileno((uv_handle_t *)&conn->pipe, &fd) < 0)
    return false;
  if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0) {
    cshim_log_warn(conn->srv->log, "ttrpc: rejected connection: SO_PEERCRED: %s", strerror(errno));
    return false;
  }
  if (cred.uid != geteuid() || cred.gid != getegid()) {
    cshim_log_warn(conn->srv->log,
                   "ttrpc: rejected connection from pid %d: uid %u gid %u, want uid %u gid %u",
                   (int)cred.pid, (unsigned)cred.uid, (unsigned)cred.gid, (unsigned)geteuid(),
                   (unsigned)getegid());
    return false;
  }
  return true;
}

static void
connection_cb(uv_stream_t *server, int status)
{
  struct listener *l = CSHIM_CONTAINER_OF(server, struct listener, pipe);
  host_ttrpc_server_t *srv = l->srv;
  struct conn *conn;
  int r;

  if (status < 0) {
    cshim_log_warn(srv->log, "ttrpc: accept failed: %s", uv_strerror(status));
    return;
  }

  conn = cshim_xmalloc0(sizeof(*conn));
  conn->srv = srv;
  cshim_list_init(&conn->link);
  cshim_list_init(&conn->calls);
  cshim_list_init(&conn->resume_link);
  cshim_frame_reader_init(&conn->reader, CSHIM_FRAME_MAX_DATA);
  r = uv_pipe_init(srv->loop, &conn->pipe, 0);
  if (r < 0) {
    cshim_log_warn(srv->log, "ttrpc: accept failed: %s", uv_strerror(r));
    free(conn);
    return;
  }
  srv->n_handles++;

  r = uv_accept(server, (uv_stream_t *)&conn->pipe);
  if (r < 0) {
    cshim_log_warn(srv->log, "ttrpc: accept failed: %s", uv_strerror(r));
    close_conn(conn);
    return;
  }
  if (!peer_is_self(conn)) {
    srv->stats.connections_rejected++;
    close_conn(conn);
    return;
  }

  conn->active = true;
  conn->id = ++srv->next_conn_id;
  cshim_list_push_back(&srv->conns, &conn->link);
  srv->stats.connections_open++;
  overhead_add(srv, CONN_COST);
  srv->stats.connections_total++;
  if (srv->upgrade_paused)
    pause_conn(conn, PAUSE_UPGRADE); /* read once the upgrade has finished or given up */
  start_reading(conn);
}

/* ---- listening ----------------------------------------------------------------------------- */

/* Serve on listening socket fd; takes fd in every case. */
static int
adopt_listener(host_ttrpc_server_t *srv, int fd, cshim_error_t *err)
{
  struct listener *l;
  int r;

  if (srv->closing) {
    close(fd);
    return cshim_error_make(err, ESHUTDOWN, "ttrpc server is closing");
  }
  init_limit_handles(srv);
  l = cshim_xmalloc0(sizeof(*l));
  l->srv = srv;
  r = uv_pipe_init(srv->loop, &l->pipe, 0);
  if (r < 0) {
    free(l);
    close(fd);
    return cshim_error_from_uv(err, r, "init ttrpc listener");
  }
  srv->n_handles++;
  r = uv_pipe_open(&l->pipe, fd);
  if (r < 0) {
    close(fd);
    uv_close((uv_handle_t *)&l->pipe, listener_close_cb);
    return cshim_error_from_uv(err, r, "open ttrpc listener fd %d", fd);
  }
  r = uv_listen((uv_stream_t *)&l->pipe, SOMAXCONN, connection_cb);
  if (r < 0) {
    uv_close((uv_handle_t *)&l->pipe, listener_close_cb);
    return cshim_error_from_uv(err, r, "listen on ttrpc socket");
  }
  cshim_list_push_front(&srv->listeners, &l->link);
  return 0;
}

int
host_ttrpc_server_listen_fd(host_ttrpc_server_t *srv, int fd, cshim_error_t *err)
{
  /* A private copy keeps the caller's fd untouched if anything fails. */
  int copy = fcntl(fd, F_DUPFD_CLOEXEC, 3);
  int r;

  if (copy < 0)
    return cshim_error_sys(err, errno, "duplicate ttrpc listener fd %d", fd);
  r = adopt_listener(srv, copy, err);
  if (r < 0)
    return r;
  close(fd);
  return 0;
}

/* mkdir -p for the directories above path; the ones created get mode 0700. */
static int
make_parent_dirs(const char *path, cshim_error_t *err)
{
  cshim_autofree char *dir = cshim_xstrdup(path);
  char *slash = strrchr(dir, '/');
  char *p;

  if (!slash || slash == dir)
    return 0;
  *slash = '\0';
  for (p = dir + 1;; p++) {
    bool last = *p == '\0';
    if (*p != '/' && !last)
      continue;
    *p = '\0';
    if (mkdir(dir, 0700) == 0) {
      if (chmod(dir, 0700) < 0)
        return cshim_error_sys(err, errno, "chmod `%s`", dir);
    } else if (errno != EEXIST)
      return cshim_error_sys(err, errno, "create directory `%s`", dir);
    if (last)
      return 0;
    *p = '/';
  }
}

/* Whether someone accepts connections on the socket at addr (a dead one refuses them). */
static bool
socket_is_live(const struct sockaddr_un *addr)
{
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  bool live;

  if (fd < 0)
    return true;
  live = connect(fd, (const struct sockaddr *)addr, sizeof(*addr)) == 0 || errno == EAGAIN ||
         errno == EINPROGRESS;
  close(fd);
  return live;
}

int
host_ttrpc_server_listen_path(host_ttrpc_server_t *srv, const char *path, cshim_error_t *err)
{
  struct sockaddr_un addr;
  socklen_t addr_len;
  cshim_autoclose int fd = -1;
  struct stat st;
  int r;

  if (strncmp(path, "unix://", 7) == 0)
    path += 7;
  if (path[0] == '\0')
    return cshim_error_make(err, EINVAL, "empty ttrpc socket path");
  if (cshim_unix_sockaddr(path, false, &addr, &addr_len, err) < 0)
    return cshim_error_wrap(err, "ttrpc socket");

  r = make_parent_dirs(path, err);
  if (r < 0)
    return cshim_error_wrap(err, "ttrpc socket `%s`", path);

  fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0)
    return cshim_error_sys(err, errno, "create ttrpc socket");
  if (bind(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
    if (errno != EADDRINUSE)
      return cshim_error_sys(err, errno, "bind ttrpc socket `%s`", path);
    if (lstat(path, &st) < 0 || !S_ISSOCK(st.st_mode))
      return cshim_error_make(err, EADDRINUSE, "ttrpc socket `%s`: path exists and is not a socket",
                              path);
    if (socket_is_live(&addr))
      return cshim_error_make(err, EADDRINUSE, "ttrpc socket `%s` is in use", path);
    cshim_log_info(srv->log, "ttrpc: removing stale socket `%s`", path);
    if (unlink(path) < 0 && errno != ENOENT)
      return cshim_error_sys(err, errno, "remove stale ttrpc socket `%s`", path);
    if (bind(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0)
      return cshim_error_sys(err, errno, "bind ttrpc socket `%s`", path);
  }
  if (chmod(path, 0600) < 0) {
    r = cshim_error_sys(err, errno, "chmod ttrpc socket `%s`", path);
    unlink(path);
    return r;
  }
  if (listen(fd, SOMAXCONN) < 0) {
    r = cshim_error_sys(err, errno, "listen on ttrpc socket `%s`", path);
    unlink(path);
    return r;
  }
  r = adopt_listener(srv, cshim_steal_fd(&fd), err);
  if (r < 0) {
    unlink(path);
    return cshim_error_wrap(err, "ttrpc socket `%s`", path);
  }
  return 0;
}

/* ---- the plugin-facing interface ------------------------------------------------------------ */

static int
register_service_op(cshim_ttrpc_server_t *api, const cshim_ttrpc_service_t *service,
                    cshim_error_t *err)
{
  host_ttrpc_server_t *srv = CSHIM_CONTAINER_OF(api, host_ttrpc_server_t, api);
  const ProtobufCServiceDescriptor *desc = service ? service->descriptor : NULL;
  cshim_autofree cshim_ttrpc_handler_t *handlers = NULL;
  cshim_autofree bool *strings_only = NULL;
  struct registered_service *rs;
  const cshim_ttrpc_method_t *m;
  const char *name;

  if (srv->closing)
    return cshim_error_make(err, ESHUTDOWN, "ttrpc server is closing");
  if (!desc || !service->methods)
    return cshim_error_make(err, EINVAL, "ttrpc service without descriptor or methods");
  name = service->name ? service->name : desc->name;
  if (!name || !name[0])
    return cshim_error_make(err, EINVAL, "ttrpc service without a name");
  if (find_service(srv, name))
    return cshim_error_make(err, EEXIST, "ttrpc service `%s` is already registered", name);

  handlers = cshim_xmalloc0((desc->n_methods ? desc->n_methods : 1) * sizeof(*handlers));
  for (m = service->methods; m->name; m++) {
    const ProtobufCMethodDescriptor *md =
        protobuf_c_service_descriptor_get_method_by_name(desc, m->name);
    size_t idx;
    if (!md)
      return cshim_error_make(err, EINVAL, "method `%s` is not in service `%s`", m->name,
                              desc->name);
    idx = (size_t)(md - desc->methods);
    if (handlers[idx])
      return cshim_error_make(err, EINVAL, "method `%s` of service `%s` is listed twice", m->name,
                              name);
    handlers[idx] = m->handler;
  }
  strings_only = cshim_xmalloc0((desc->n_methods ? desc->n_methods : 1) * sizeof(*strings_only));
  for (size_t i = 0; i < desc->n_methods; i++)
    strings_only[i] = host_ttrpc_strings_only(desc->methods[i].input);

  srv->services = cshim_xrealloc(srv->services, (srv->n_services + 1) * sizeof(*srv->services));
  rs = &srv->services[srv->n_services++];
  rs->name = name;
  rs->svc = service;
  rs->handlers = cshim_steal_pointer(&handlers);
  rs->strings_only = cshim_steal_pointer(&strings_only);
  cshim_log_debug(srv->log, "ttrpc: registered service `%s`", name);
  return 0;
}

static int
add_interceptor_op(cshim_ttrpc_server_t *api, const cshim_ttrpc_interceptor_t *interceptor,
                   cshim_error_t *err)
{
  host_ttrpc_server_t *srv = CSHIM_CONTAINER_OF(api, host_ttrpc_server_t, api);

  if (srv->closing)
    return cshim_error_make(err, ESHUTDOWN, "ttrpc server is closing");
  if (!interceptor)
    return cshim_error_make(err, EINVAL, "NULL ttrpc interceptor");
  srv->interceptors =
      cshim_xrealloc(srv->interceptors, (srv->n_interceptors + 1) * sizeof(*srv->interceptors));
  srv->interceptors[srv->n_interceptors++] = interceptor;
  return 0;
}

static void
get_stats_op(cshim_ttrpc_server_t *api, cshim_ttrpc_stats_t *out)
{
  host_ttrpc_server_get_stats(CSHIM_CONTAINER_OF(api, host_ttrpc_server_t, api), out);
}

static const cshim_ttrpc_server_ops_t server_ops = {
    .struct_size = sizeof(cshim_ttrpc_server_ops_t),
    .register_service = register_service_op,
    .add_interceptor = add_interceptor_op,
    .get_stats = get_stats_op,
};

/* ---- lifecycle ----------------------------------------------------------------------------- */

int
host_ttrpc_server_new(uv_loop_t *loop, const cshim_logger_t *log, host_ttrpc_server_t **out,
                      cshim_error_t *err)
{
  struct sigaction old_pipe;
  host_ttrpc_server_t *srv;

  if (!loop || !out)
    return cshim_error_make(err, EINVAL, "ttrpc server needs a loop");
  /* libuv writes to sockets with write(2): a peer that has gone away would kill the shim with
     SIGPIPE instead of failing the write with EPIPE. */
  if (sigaction(SIGPIPE, NULL, &old_pipe) == 0 && old_pipe.sa_handler == SIG_DFL)
    signal(SIGPIPE, SIG_IGN);

  srv = cshim_xmalloc0(sizeof(*srv));
  srv->api.ops = &server_ops;
  srv->loop = loop;
  srv->log = log;
  cshim_list_init(&srv->conns);
  cshim_list_init(&srv->orphans);
  cshim_list_init(&srv->cancelled);
  cshim_list_init(&srv->resume);
  cshim_list_init(&srv->listeners);
  cshim_list_init(&srv->restored);
  host_ttrpc_server_set_limits(srv, &(host_ttrpc_server_limits_t){0});
  *out = srv;
  return 0;
}

cshim_ttrpc_server_t *
host_ttrpc_server_api(host_ttrpc_server_t *srv)
{
  return &srv->api;
}

size_t
host_ttrpc_server_n_services(host_ttrpc_server_t *srv)
{
  return srv->n_services;
}

void
host_ttrpc_server_release_buffers(host_ttrpc_server_t *srv)
{
  /* One read buffer serves every connection (see host_ttrpc_server_s.read_buf). */
  if (srv->read_buf)
    madvise(srv->read_buf, READ_BUF_SIZE, MADV_DONTNEED);
}

void
host_ttrpc_server_on_next_input(host_ttrpc_server_t *srv, void (*hook)(void *data), void *data)
{
  srv->input_hook = hook;
  srv->input_hook_data = data;
}

void
host_ttrpc_server_get_stats(host_ttrpc_server_t *srv, cshim_ttrpc_stats_t *out)
{
  *out = srv->stats;
}

void
host_ttrpc_server_set_limits(host_ttrpc_server_t *srv, const host_ttrpc_server_limits_t *limits)
{
  srv->limits.max_calls_in_flight = limits->max_calls_in_flight
                                        ? limits->max_calls_in_flight
                                        : HOST_TTRPC_DEFAULT_MAX_CALLS_IN_FLIGHT;
  srv->limits.buffer_budget =
      limits->buffer_budget ? limits->buffer_budget : HOST_TTRPC_DEFAULT_BUFFER_BUDGET;
  srv->limits.stalled_frame_timeout_ms = limits->stalled_frame_timeout_ms
                                             ? limits->stalled_frame_timeout_ms
                                             : HOST_TTRPC_DEFAULT_STALLED_FRAME_TIMEOUT_MS;
  if (srv->limits.buffer_budget < MIN_BUFFER_BUDGET)
    srv->limits.buffer_budget = MIN_BUFFER_BUDGET;
}

void
host_ttrpc_server_get_limits(host_ttrpc_server_t *srv, host_ttrpc_server_limits_t *out)
{
  *out = srv->limits;
}

void
host_ttrpc_server_get_usage(host_ttrpc_server_t *srv, host_ttrpc_server_usage_t *out)
{
  *out = srv->usage;
  out->budget = srv->limits.buffer_budget;
}

void
host_ttrpc_server_close(host_ttrpc_server_t *srv, void (*done_cb)(void *data), void *data)
{
  struct listener *l;

  if (srv->closing)
    return;
  srv->closing = true;
  srv->done_cb = done_cb;
  srv->done_data = data;

  uv_idle_init(srv->loop, &srv->close_guard);
  srv->n_handles++;
  uv_close((uv_handle_t *)&srv->close_guard, guard_close_cb);
  if (srv->have_handles) {
    uv_close((uv_handle_t *)&srv->resume_idle, resume_idle_close_cb);
    uv_close((uv_handle_t *)&srv->trim_timer, trim_timer_close_cb);
    uv_close((uv_handle_t *)&srv->stall_timer, stall_timer_close_cb);
  }

  while (!cshim_list_empty(&srv->listeners)) {
    l = cshim_list_entry(cshim_list_first(&srv->listeners), struct listener, link);
    cshim_list_remove(&l->link);
    uv_close((uv_handle_t *)&l->pipe, listener_close_cb);
  }
  while (!cshim_list_empty(&srv->conns))
    close_conn(cshim_list_entry(cshim_list_first(&srv->conns), struct conn, link));
}

/* ---- live upgrade (docs/live-upgrade.md) ---------------------------------------------------- */

/* Record tags of the server's state; never reuse a number. */
enum
{
  SRV_LISTENER = 1, /* fd */
  SRV_CONN = 2,     /* list */
  SRV_STATS_TOTAL = 3,
};
enum
{
  CONN_FD = 1,
  CONN_LAST_STREAM = 2,
  CONN_PENDING = 3,   /* bytes of a partly read frame */
  CONN_DISCARDED = 4, /* data bytes of an oversized frame already dropped */
  CONN_CALL = 5,      /* list */
};
enum
{
  CALL_STREAM = 1,
  CALL_REQUEST = 2, /* the packed ttrpc.Request */
};

struct restored_call
{
  cshim_list_t link; /* in srv->restored */
  struct conn *conn;
  uint32_t stream_id;
  uint8_t *request;
  size_t len;
};

void
host_ttrpc_server_pause(host_ttrpc_server_t *srv)
{
  cshim_list_t *l;

  srv->upgrade_paused = true;
  CSHIM_LIST_FOREACH (l, &srv->conns)
    pause_conn(CSHIM_CONTAINER_OF(l, struct conn, link), PAUSE_UPGRADE);
}

void
host_ttrpc_server_resume(host_ttrpc_server_t *srv)
{
  cshim_list_t *l, *next;

  srv->upgrade_paused = false;
  CSHIM_LIST_FOREACH_SAFE (l, next, &srv->conns) {
    struct conn *conn = CSHIM_CONTAINER_OF(l, struct conn, link);
    if (!conn->closing)
      unpause_conn(conn, PAUSE_UPGRADE);
  }
}

const char *
host_ttrpc_server_busy(host_ttrpc_server_t *srv)
{
  cshim_list_t *l;

  CSHIM_LIST_FOREACH (l, &srv->conns) {
    struct conn *conn = CSHIM_CONTAINER_OF(l, struct conn, link);
    if (!conn->closing && conn->pipe.write_queue_size > 0)
      return "ttrpc answers are still being written";
    /* Input read past a pause is not in the saved state: let it be handled first. */
    if (!conn->closing && conn->stash_len > 0)
      return "ttrpc requests are read and wait for the connection's limits";
  }
  return NULL;
}

int
host_ttrpc_server_save(host_ttrpc_server_t *srv, cshim_state_writer_t *w, cshim_error_t *err)
{
  struct listener *ls;
  cshim_list_t *l, *c;
  uv_os_fd_t fd;

  CSHIM_LIST_FOREACH (l, &srv->listeners) {
    ls = cshim_list_entry(l, struct listener, link);
    if (uv_fileno((uv_handle_t *)&ls->pipe, &fd) < 0)
      return cshim_error_make(err, EBADF, "ttrpc listener has no descriptor");
    cshim_state_put_fd_new(w, SRV_LISTENER, fd); /* the server's own: no other part names it */
  }
  cshim_state_put_u64(w, SRV_STATS_TOTAL, srv->stats.connections_total);
  CSHIM_LIST_FOREACH (l, &srv->conns) {
    struct conn *conn = CSHIM_CONTAINER_OF(l, struct conn, link);
    cshim_autofree uint8_t *pending = NULL;
    size_t plen;
    uint32_t discarded;

    if (conn->closing || uv_fileno((uv_handle_t *)&conn->pipe, &fd) < 0)
      continue;
    cshim_state_begin(w, SRV_CONN);
    cshim_state_put_fd_new(w, CONN_FD, fd);
    cshim_state_put_u32(w, CONN_LAST_STREAM, conn->last_stream_id);
    /* Not in a crash snapshot: the partial frame may be stale by the time of the crash, and the
       crash handler writes every connection's unframed input as it is then
       (host_ttrpc_server_crash_write), which replaces it; a copy here would also cost up to the
       whole buffer budget per snapshot. */
    if (!cshim_state_writer_is_crash(w)) {
      cshim_frame_reader_pending(&conn->reader, &pending, &plen, &discarded);
      if (plen)
        cshim_state_put_bytes(w, CONN_PENDING, pending, plen);
      if (discarded)
        cshim_state_put_u32(w, CONN_DISCARDED, discarded);
    }
    CSHIM_LIST_FOREACH (c, &conn->calls) {
      struct call *call = CSHIM_CONTAINER_OF(c, struct call, link);
      size_t n;
      /* A crash snapshot carries only parked calls (Wait): one being worked on is in the crash
         journal, which runs it again or answers it Unavailable. */
      if (cshim_state_writer_is_crash(w) && !call->parked)
        continue;
      n = ttrpc__request__get_packed_size(call->req);
      cshim_autofree uint8_t *buf = cshim_xmalloc(n ? n : 1);
      ttrpc__request__pack(call->req, buf);
      cshim_state_begin(w, CONN_CALL);
      cshim_state_put_u32(w, CALL_STREAM, call->base.stream_id);
      cshim_state_put_bytes(w, CALL_REQUEST, buf, n);
      cshim_state_end(w);
    }
    cshim_state_end(w);
  }
  return 0;
}

/* A connection handed over by the previous image; not read until resume. */
static int
adopt_conn(host_ttrpc_server_t *srv, int fd, uint32_t last_stream, const uint8_t *pending,
           size_t plen, uint32_t discarded, struct conn **out, cshim_error_t *err)
{
  struct conn *conn = cshim_xmalloc0(sizeof(*conn));
  int r;

  init_limit_handles(srv);
  conn->srv = srv;
  cshim_list_init(&conn->link);
  cshim_list_init(&conn->calls);
  cshim_list_init(&conn->resume_link);
  conn->paused = PAUSE_UPGRADE; /* read once the upgrade has finished */
  cshim_frame_reader_init(&conn->reader, CSHIM_FRAME_MAX_DATA);
  r = cshim_frame_reader_resume(&conn->reader, pending, plen, discarded, err);
  if (r < 0) {
    cshim_frame_reader_fini(&conn->reader);
    free(conn);
    return cshim_error_wrap(err, "ttrpc connection fd %d", fd);
  }
  uv_pipe_init(srv->loop, &conn->pipe, 0);
  srv->n_handles++;
  r = uv_pipe_open(&conn->pipe, fd);
  if (r < 0) {
    close_conn(conn);
    return cshim_error_from_uv(err, r, "adopt ttrpc connection fd %d", fd);
  }
  conn->last_stream_id = last_stream;
  conn->active = true;
  conn->id = ++srv->next_conn_id;
  cshim_list_push_back(&srv->conns, &conn->link);
  srv->stats.connections_open++;
  overhead_add(srv, CONN_COST);
  set_held(srv, &conn->held_partial, cshim_frame_reader_held(&conn->reader));
  if (conn->held_partial > 0)
    watch_stalls(srv); /* counted from when reading resumes, after the upgrade */
  *out = conn;
  return 0;
}

static bool
fd_live(const host_ttrpc_server_t *srv, int fd)
{
  if (srv->live_fds == NULL)
    return true;
  for (size_t i = 0; i < srv->n_live_fds; i++)
    if (srv->live_fds[i] == fd)
      return true;
  return false;
}

static int
restore_conn(host_ttrpc_server_t *srv, const cshim_state_item_t *item, cshim_error_t *err)
{
  cshim_state_reader_t r;
  cshim_state_item_t it;
  const uint8_t *pending = NULL;
  size_t plen = 0;
  uint32_t last = 0, discarded = 0;
  int fd = -1, ret;
  struct conn *conn = NULL;

  ret = cshim_state_item_list(item, &r, err);
  if (ret < 0)
    return ret;
  while ((ret = cshim_state_next(&r, &it, err)) > 0) {
    if (it.tag == CONN_FD) {
      uint32_t raw = 0;
      /* the number first: a connection closed since a crash snapshot is not checked */
      if (it.len >= 4)
        raw = (uint32_t)it.value[0] | (uint32_t)it.value[1] << 8 | (uint32_t)it.value[2] << 16 |
              (uint32_t)it.value[3] << 24;
      if (!fd_live(srv, (int)raw)) {
        fd = (int)raw;
        continue;
      }
      ret = cshim_state_item_fd(&it, &fd, err);
      if (ret < 0 && srv->live_fds != NULL) {
        /* After a crash: the snapshot's connection was closed and its number taken by one
           accepted since (the journal lists it; host_ttrpc_server_crash_input adopts it). */
        cshim_error_release(err);
        return 0;
      }
    } else if (it.tag == CONN_LAST_STREAM)
      ret = cshim_state_item_u32(&it, &last, err);
    else if (it.tag == CONN_PENDING) {
      pending = it.value;
      plen = it.len;
    } else if (it.tag == CONN_DISCARDED)
      ret = cshim_state_item_u32(&it, &discarded, err);
    if (ret < 0)
      return ret;
  }
  if (ret < 0)
    return ret;
  if (fd < 0)
    return cshim_error_make(err, EBADMSG, "state: ttrpc connection without a descriptor");
  if (!fd_live(srv, fd))
    return 0; /* closed after the crash snapshot: its number may name another file now */
  ret = adopt_conn(srv, fd, last, pending, plen, discarded, &conn, err);
  if (ret < 0)
    return ret;

  ret = cshim_state_item_list(item, &r, err);
  while (ret >= 0 && (ret = cshim_state_next(&r, &it, err)) > 0) {
    cshim_state_reader_t cr;
    cshim_state_item_t ci;
    struct restored_call *rc;

    if (it.tag != CONN_CALL)
      continue;
    rc = cshim_xmalloc0(sizeof(*rc));
    rc->conn = conn;
    cshim_list_push_back(&srv->restored, &rc->link);
    ret = cshim_state_item_list(&it, &cr, err);
    while (ret >= 0 && (ret = cshim_state_next(&cr, &ci, err)) > 0) {
      if (ci.tag == CALL_STREAM)
        ret = cshim_state_item_u32(&ci, &rc->stream_id, err);
      else if (ci.tag == CALL_REQUEST && rc->request == NULL) {
        rc->request = cshim_xmemdup(ci.value, ci.len ? ci.len : 1);
        rc->len = ci.len;
      }
    }
    if (ret >= 0 && (rc->stream_id == 0 || rc->request == NULL))
      ret = cshim_error_make(err, EBADMSG, "state: ttrpc call without stream or request");
  }
  return ret < 0 ? ret : 0;
}

int
host_ttrpc_server_restore(host_ttrpc_server_t *srv, const cshim_state_reader_t *state,
                          cshim_error_t *err)
{
  cshim_state_reader_t r = *state;
  cshim_state_item_t it;
  int ret, fd;

  srv->upgrade_paused = true;
  while ((ret = cshim_state_next(&r, &it, err)) > 0) {
    if (it.tag == SRV_LISTENER) {
      ret = cshim_state_item_fd(&it, &fd, err);
      if (ret < 0)
        return ret;
      ret = adopt_listener(srv, fd, err);
    } else if (it.tag == SRV_CONN)
      ret = restore_conn(srv, &it, err);
    else if (it.tag == SRV_STATS_TOTAL)
      ret = cshim_state_item_u64(&it, &srv->stats.connections_total, err);
    if (ret < 0)
      return ret;
  }
  return ret;
}

void
host_ttrpc_server_redispatch(host_ttrpc_server_t *srv)
{
  cshim_list_t *l;

  while ((l = cshim_list_first(&srv->restored)) != NULL) {
    struct restored_call *rc = cshim_list_entry(l, struct restored_call, link);
    struct conn *conn = rc->conn;
    uint32_t last = conn->last_stream_id;

    cshim_list_remove(&rc->link);
    if (!conn->closing) {
      /* the stream was accepted once already: let it through the ordering check again */
      conn->last_stream_id = rc->stream_id - 1;
      handle_request(conn, rc->stream_id, rc->request, rc->len);
      if (conn->last_stream_id < last)
        conn->last_stream_id = last;
      if (!conn->closing && conn->n_working >= srv->limits.max_calls_in_flight)
        pause_conn(conn, PAUSE_IN_FLIGHT);
    }
    free(rc->request);
    free(rc);
  }
}

void
host_ttrpc_server_set_call_hook(host_ttrpc_server_t *srv,
                                void (*hook)(void *data, int fd, uint32_t stream_id,
                                             const char *method, const uint8_t *request,
                                             size_t request_len, bool answered),
                                void *data)
{
  srv->call_hook = hook;
  srv->call_hook_data = data;
}

void
host_ttrpc_server_set_dispatched_hook(host_ttrpc_server_t *srv, void (*hook)(void *data))
{
  srv->dispatched_hook = hook;
}

int
host_ttrpc_server_recover_stream(host_ttrpc_server_t *srv, int fd, uint32_t stream_id,
                                 const uint8_t *request, size_t request_len, const char *message)
{
  cshim_list_t *l;
  uv_os_fd_t cfd;

  CSHIM_LIST_FOREACH (l, &srv->conns) {
    struct conn *conn = CSHIM_CONTAINER_OF(l, struct conn, link);
    cshim_list_t *c;
    if (conn->closing || uv_fileno((uv_handle_t *)&conn->pipe, &cfd) < 0 || cfd != fd)
      continue;
    /* a call carried over is answered by its re-run */
    CSHIM_LIST_FOREACH (c, &conn->calls)
      if (CSHIM_CONTAINER_OF(c, struct call, link)->base.stream_id == stream_id)
        return 0;
    CSHIM_LIST_FOREACH (c, &srv->restored) {
      const struct restored_call *rc = cshim_list_entry(c, struct restored_call, link);
      if (rc->conn == conn && rc->stream_id == stream_id)
        return 0;
    }
    if (request) {
      uint32_t last = conn->last_stream_id;
      conn->last_stream_id = stream_id - 1;
      handle_request(conn, stream_id, (uint8_t *)request, request_len);
      if (conn->last_stream_id < last)
        conn->last_stream_id = last;
      return 2;
    }
    send_response(conn, stream_id, CSHIM_GRPC_UNAVAILABLE, message, NULL, NULL);
    return 1;
  }
  return -ENOENT;
}

/* ---- crash survival: the connections' unframed input -------------------------------------- */

static void
put_le32(uint8_t *p, uint32_t v)
{
  for (int k = 0; k < 4; k++)
    p[k] = (uint8_t)(v >> (8 * k));
}

/* Async-signal-safe (pwrite only; reads the loop's structures as they are). */
int
host_ttrpc_server_crash_write(host_ttrpc_server_t *srv, int memfd, uint32_t kind, off_t *off,
                              int *fds, size_t max_fds, size_t *n_fds)
{
  cshim_list_t *l;

  *n_fds = 0;
  CSHIM_LIST_FOREACH (l, &srv->conns) {
    struct conn *conn = CSHIM_CONTAINER_OF(l, struct conn, link);
    const cshim_frame_reader_t *rd = &conn->reader;
    size_t hlen = rd->header_len, dlen = 0;
    uint32_t discarded = 0;
    uint8_t e[16];
    off_t o;
    int fd = conn->pipe.io_watcher.fd;

    if (conn->closing || fd < 0)
      continue;
    if (*n_fds == max_fds)
      return -1;
    fds[(*n_fds)++] = fd;
    if (hlen == CSHIM_FRAME_HEADER_SIZE) {
      if (rd->discarding)
        discarded = (uint32_t)rd->data_len;
      else
        dlen = rd->data_len;
    }
    put_le32(e, kind);
    put_le32(e + 4, (uint32_t)fd);
    put_le32(e + 8, discarded);
    put_le32(e + 12, (uint32_t)(hlen + dlen + conn->feed_rest_len + conn->stash_len));
    o = *off;
    if (pwrite(memfd, e, sizeof e, o) != (ssize_t)sizeof e)
      return -1;
    o += (off_t)sizeof e;
    if (hlen && pwrite(memfd, rd->header_buf, hlen, o) != (ssize_t)hlen)
      return -1;
    o += (off_t)hlen;
    if (dlen && pwrite(memfd, rd->data, dlen, o) != (ssize_t)dlen)
      return -1;
    o += (off_t)dlen;
    if (conn->feed_rest_len &&
        pwrite(memfd, conn->feed_rest, conn->feed_rest_len, o) != (ssize_t)conn->feed_rest_len)
      return -1;
    o += (off_t)conn->feed_rest_len;
    if (conn->stash_len &&
        pwrite(memfd, conn->stash, conn->stash_len, o) != (ssize_t)conn->stash_len)
      return -1;
    o += (off_t)conn->stash_len;
    *off = o;
  }
  return 0;
}

void
host_ttrpc_server_set_live_fds(host_ttrpc_server_t *srv, const int *fds, size_t n)
{
  srv->live_fds = fds;
  srv->n_live_fds = n;
}

int
host_ttrpc_server_crash_input(host_ttrpc_server_t *srv, int fd, uint32_t discarded,
                              const uint8_t *bytes, size_t len, cshim_error_t *err)
{
  struct conn *conn = NULL;
  cshim_list_t *l;
  size_t head = 0;
  int ret;

  CSHIM_LIST_FOREACH (l, &srv->conns) {
    struct conn *c = CSHIM_CONTAINER_OF(l, struct conn, link);
    uv_os_fd_t cfd;
    if (!c->closing && uv_fileno((uv_handle_t *)&c->pipe, &cfd) == 0 && cfd == fd) {
      conn = c;
      break;
    }
  }
  if (conn == NULL) {
    /* accepted after the crash snapshot: its descriptor crossed the exec all the same */
    int fl = fcntl(fd, F_GETFD);
    if (fl < 0)
      return cshim_error_sys(err, errno, "ttrpc connection fd %d", fd);
    fcntl(fd, F_SETFD, fl | FD_CLOEXEC);
    ret = adopt_conn(srv, fd, 0, NULL, 0, 0, &conn, err);
    if (ret < 0)
      return ret;
    srv->stats.connections_total++;
  }
  cshim_frame_reader_fini(&conn->reader);
  cshim_frame_reader_init(&conn->reader, CSHIM_FRAME_MAX_DATA);
  if (discarded > 0) {
    head = CSHIM_FRAME_HEADER_SIZE;
    if (len < head)
      return cshim_error_make(err, EBADMSG,
                              "crash journal: fd %d: a discarded frame without its header", fd);
    ret = cshim_frame_reader_resume(&conn->reader, bytes, head, discarded, err);
    if (ret < 0)
      return ret;
  }
  set_held(srv, &conn->held_partial, cshim_frame_reader_held(&conn->reader));
  free(conn->stash);
  conn->stash = NULL;
  conn->stash_len = 0;
  set_held(srv, &conn->held_stash, 0);
  if (len > head)
    stash_input(conn, bytes + head, len - head);
  return 0;
}
