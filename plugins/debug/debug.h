// SPDX-License-Identifier: Apache-2.0
// Private interfaces of the debug plugin: the instance, its HTTP server, metrics, JSON views
// and the CPU profiler.
#ifndef DEBUG_DEBUG_H
#define DEBUG_DEBUG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include <http_parser.h>

#include <cshim/error.h>
#include <cshim/host.h>
#include <cshim/list.h>
#include <cshim/log.h>
#include <cshim/plugin.h>
#include <cshim/publisher.h>
#include <cshim/trace.h>
#include <cshim/ttrpc.h>

#define DEBUG_URI CSHIM_TYPE_HTTP ".debug"

/* Limits of the HTTP server. */
#define DEBUG_MAX_REQUEST 16384u          /* request line + headers; bodies are refused */
#define DEBUG_MAX_CONNECTIONS 16u         /* more are answered 503 and closed */
#define DEBUG_READ_TIMEOUT_MS 10000u      /* a request must arrive whole within this */
#define DEBUG_WRITE_TIMEOUT_MS 30000u     /* the peer must take each piece of an answer within */
#define DEBUG_DEFAULT_PROFILE_SECONDS 30u /* /debug/pprof/profile without ?seconds= */
#define DEBUG_MAX_PROFILE_SECONDS 60u     /* default cap of ?seconds= */
#define DEBUG_CHUNK (64u * 1024u)         /* profile file streamed in pieces of this size */

/* gRPC codes 0..16. */
#define DEBUG_N_CODES 17
/* Upper bounds (seconds) of the latency histogram buckets; +Inf is implicit. */
#define DEBUG_N_BUCKETS 15
extern const double debug_bucket_bounds[DEBUG_N_BUCKETS];

typedef struct debug_s debug_t;
typedef struct debug_conn_s debug_conn_t;
typedef struct debug_profile_s debug_profile_t;

/* ---- metrics.c: what the interceptor records, and the Prometheus text ---- */

typedef struct debug_method_s
{
  cshim_list_t link; /* in debug_metrics_t.methods */
  char *service;
  char *method;
  uint64_t by_code[DEBUG_N_CODES];
  uint64_t buckets[DEBUG_N_BUCKETS + 1]; /* per bucket, not cumulative; last = above every bound */
  uint64_t count;
  uint64_t sum_ns;
} debug_method_t;

typedef struct debug_metrics_s
{
  cshim_list_t methods; /* debug_method_t, sorted by service, then method */
  size_t n_methods;
} debug_metrics_t;

/* Record one answered call. Codes outside 0..16 count as Unknown. */
void debug_metrics_observe(debug_metrics_t *m, const char *service, const char *method, int code,
                           uint64_t duration_ns);
void debug_metrics_clear(debug_metrics_t *m);

/* The unary server interceptor the plugin adds (data = debug_t). */
void debug_metrics_after_cb(void *data, const cshim_ttrpc_call_t *call, int grpc_code);

/* The shim's own process, read from /proc/self and getrusage. */
typedef struct debug_proc_stats_s
{
  uint64_t rss_bytes;
  uint64_t open_fds;
  double cpu_seconds;
  uint64_t threads;
} debug_proc_stats_t;
void debug_proc_stats(debug_proc_stats_t *out);

/* Processes by status across every state source (see cshim_state_dump_fn). */
typedef struct debug_status_count_s
{
  char *status;
  uint64_t n;
} debug_status_count_t;
/* The standard statuses (created, running, paused, stopped) always appear. Caller frees with
   debug_status_counts_free. */
size_t debug_status_counts(debug_t *d, debug_status_count_t **out);
void debug_status_counts_free(debug_status_count_t *counts, size_t n);

/* The /metrics body (Prometheus text format 0.0.4). Caller frees. */
char *debug_render_metrics(debug_t *d, size_t *len);

/* ---- vars.c: JSON views ---- */

/* /debug/state: {"<source>": <its JSON>, ...}; a source whose text does not parse appears as a
   string. Caller frees. */
char *debug_render_state(debug_t *d, size_t *len);
/* /debug/vars: everything /metrics shows and more. Caller frees. */
char *debug_render_vars(debug_t *d, size_t *len);

/* ---- http.c: the HTTP/1.1 server on the debug socket ---- */

/* Serve on a listening Unix socket: a path bound here (mode 0600; missing parent directories
   are created 0700; a stale socket is replaced, a live one is EADDRINUSE), or an inherited
   listening fd (taken over). */
int debug_http_listen_path(debug_t *d, const char *path, cshim_error_t *err);
int debug_http_listen_fd(debug_t *d, int fd, cshim_error_t *err);
/* Stop listening and drop every connection; handles close asynchronously. */
void debug_http_close(debug_t *d);

/* Answer the request on conn with a whole body (copied) and close the connection after it.
   extra_headers: "" or lines each ending in "\r\n". */
void debug_http_respond(debug_conn_t *conn, int status, const char *content_type, const char *body,
                        size_t len, const char *extra_headers);
/* Answer with a short text/plain message (and a trailing newline). */
void debug_http_respond_text(debug_conn_t *conn, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* A streamed answer: the head with Content-Length total, then pieces; next_cb runs when the
   previous piece has been taken, and must call debug_http_stream_write or debug_http_stream_end
   (or the connection is dropped when it goes). When the connection fails or closes, gone_cb runs
   once instead and the stream is over. */
typedef void (*debug_stream_cb)(void *data, debug_conn_t *conn);
void debug_http_stream_begin(debug_conn_t *conn, int status, const char *content_type,
                             uint64_t total, const char *extra_headers, debug_stream_cb next_cb,
                             debug_stream_cb gone_cb, void *data);
void debug_http_stream_write(debug_conn_t *conn, char *piece, size_t len); /* takes piece */
void debug_http_stream_end(debug_conn_t *conn);

/* Keep conn open and unanswered until the owner answers; gone_cb (data) runs if it closes
   first (timeout does not apply while held). */
void debug_http_hold(debug_conn_t *conn, debug_stream_cb gone_cb, void *data);

/* Live upgrade: why an answer is still being written (NULL = none); each connection still
   waiting for its request (fd, what was read of it); take one over in the next image. */
const char *debug_http_busy(const debug_t *d);
void debug_http_foreach_idle(const debug_t *d,
                             void (*cb)(void *data, int fd, const char *raw, size_t len),
                             void *data);
int debug_http_adopt(debug_t *d, int fd, const char *raw, size_t len, cshim_error_t *err);

/* ---- profile.c: CPU profiles with gperftools ---- */

/* Start a profile of `seconds` answered on conn (409 when one runs, 500 when the profiler
   cannot start). */
void debug_profile_request(debug_t *d, debug_conn_t *conn, unsigned seconds);
/* Stop a running profile, drop its file. */
void debug_profile_close(debug_t *d);

/* ---- debug.c: the instance ---- */

struct debug_s
{
  uv_loop_t *loop;
  const cshim_logger_t *log;
  const cshim_init_ctx_t *ctx;  /* for properties; borrowed until close */
  cshim_host_t *host;           /* NULL when the host offers no introspection */
  cshim_publisher_t *publisher; /* NULL when there is none */
  cshim_tracer_t *tracer;       /* NULL when tracing is off */
  char *socket_path;            /* the debug socket (to unlink at close); NULL if unknown */
  bool unlink_socket;
  char *profile_dir; /* where profiles are written */
  unsigned max_profile_seconds;

  debug_metrics_t metrics;
  cshim_ttrpc_interceptor_t interceptor;

  uv_check_t check; /* counts loop iterations */
  uint64_t loop_iterations;

  uv_pipe_t listener;
  bool listening;
  cshim_list_t conns; /* debug_conn_t, newest first */
  size_t n_conns;
  uint64_t http_requests;   /* requests answered */
  uint64_t http_rejected;   /* answered 4xx/5xx */
  debug_profile_t *profile; /* the running profile, or NULL */
  uint64_t profiles;        /* profiles taken */

  unsigned open_handles; /* the instance is freed when this drops to 0 after close */
  bool closing;
};

/* Serve the socket the flags, containerd or the config name (init, or a restore without a
   handed-over listener); a failure is logged and returned. */
int debug_listen(debug_t *d, cshim_error_t *err);

/* The JSON of the host's state source `name` (new reference; null when there is none). */
#include <jansson.h>
json_t *debug_host_source_json(debug_t *d, const char *name);

/* ---- upgrade.c: live upgrade hooks (docs/live-upgrade.md) ---- */
const char *debug_upgrade_busy(void *instance);
int debug_upgrade_save(void *instance, cshim_state_writer_t *w, cshim_error_t *err);
int debug_upgrade_restore(void *instance, const cshim_state_reader_t *state, cshim_error_t *err);

/* Route one complete request (method, path, query) to its handler. */
void debug_route(debug_t *d, debug_conn_t *conn, int method, const char *path, const char *query);

/* A handle of d closed (for counting). */
void debug_handle_closed(debug_t *d);

#endif
