// SPDX-License-Identifier: Apache-2.0
// Tests of the debug plugin (plugins/debug/): when it serves and where, every endpoint over a
// real Unix socket on the loop, the HTTP rejections, connection limits and CPU profiles.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <gperftools/profiler.h>
#include <jansson.h>

#include <cshim/host.h>
#include <cshim/plugin.h>
#include <cshim/publisher.h>
#include <cshim/state.h>
#include <cshim/trace.h>
#include <cshim/util.h>

#include "mock_host.h"

/* Last: cmocka defines a `fail` macro that would clash with cshim_ttrpc_call_ops_t.fail. */
#include <cmocka.h>

static const char *const requires_all[] = {"*", NULL};

/* ---- a fake host interface and publisher ----------------------------------------------------- */

typedef struct fake_host_s
{
  cshim_host_t base;
  const char *tasks_json;
} fake_host_t;

static size_t
fake_plugin_count(cshim_host_t *host)
{
  return 1;
}

static int
fake_plugin_info(cshim_host_t *host, size_t i, cshim_host_plugin_info_t *out, cshim_error_t *err)
{
  if (i > 0)
    return cshim_error_make(err, ERANGE, "no plugin %zu", i);
  *out = (cshim_host_plugin_info_t){.uri = "io.containerd.ttrpc.v1.task",
                                    .type = "io.containerd.ttrpc.v1",
                                    .id = "task",
                                    .path = "/x/task.so",
                                    .state = "initialised",
                                    .n_services = 2};
  return 0;
}

static const char *
fake_config_source(cshim_host_t *host)
{
  return "/etc/cshim/test.yaml";
}

static char *
fake_config_json(cshim_host_t *host)
{
  return cshim_xstrdup("{\"version\":\"1\"}");
}

static void
fake_ttrpc_stats(cshim_host_t *host, cshim_ttrpc_stats_t *out)
{
  *out = (cshim_ttrpc_stats_t){.connections_open = 2, .connections_total = 5, .calls_total = 9};
}

static void
fake_log_stats(cshim_host_t *host, cshim_host_log_stats_t *out)
{
  *out = (cshim_host_log_stats_t){.lines = 40, .dropped = 1};
}

static size_t
fake_source_count(cshim_host_t *host)
{
  return ((fake_host_t *)host)->tasks_json ? 1 : 0;
}

static char *
fake_source_dump(cshim_host_t *host, size_t i, const char **name)
{
  fake_host_t *f = (fake_host_t *)host;

  if (name)
    *name = i == 0 ? "tasks" : NULL;
  return i == 0 && f->tasks_json ? cshim_xstrdup(f->tasks_json) : NULL;
}

static size_t
fake_process_starts(cshim_host_t *host, size_t i, cshim_host_process_starts_t *out)
{
  static const cshim_host_process_starts_t rows[] = {
      {.kind = "runtime", .command = "create", .count = 3},
      {.kind = "runtime", .command = "start", .count = 2},
      {.kind = "logger", .command = "", .count = 1},
  };
  (void)host;
  if (out && i < CSHIM_N_ELEMENTS(rows))
    *out = rows[i];
  return CSHIM_N_ELEMENTS(rows);
}

static void
fake_host_init(fake_host_t *f)
{
  memset(f, 0, sizeof(*f));
  f->base = (cshim_host_t){.struct_size = sizeof(cshim_host_t),
                           .version = "0.0.test",
                           .started_ns = cshim_now_ns(),
                           .started_unix_ns = 1700000000000000000LL,
                           .plugin_count = fake_plugin_count,
                           .plugin_info = fake_plugin_info,
                           .config_source = fake_config_source,
                           .config_json = fake_config_json,
                           .ttrpc_stats = fake_ttrpc_stats,
                           .log_stats = fake_log_stats,
                           .state_source_count = fake_source_count,
                           .state_source_dump = fake_source_dump,
                           .process_starts = fake_process_starts};
  f->tasks_json = "[{\"container_id\":\"c1\",\"exec_id\":\"\",\"pid\":10,\"status\":\"running\"},"
                  "{\"container_id\":\"c1\",\"exec_id\":\"e1\",\"pid\":11,\"status\":\"stopped\"},"
                  "{\"container_id\":\"c2\",\"exec_id\":\"\",\"pid\":12,\"status\":\"running\"}]";
}

static void
fake_publisher_stats(cshim_publisher_t *self, cshim_publisher_stats_t *out)
{
  *out = (cshim_publisher_stats_t){.accepted = 7, .published = 5, .retried = 3, .dropped = 2};
}

static cshim_publisher_t fake_publisher = {.struct_size = sizeof(cshim_publisher_t),
                                           .get_stats = fake_publisher_stats};

static void
fake_tracer_stats(cshim_tracer_t *self, cshim_tracer_stats_t *out)
{
  (void)self;
  *out = (cshim_tracer_stats_t){
      .struct_size = sizeof *out, .exported = 40, .dropped = 6, .export_failures = 2, .queued = 1};
}

static cshim_tracer_t fake_tracer = {.struct_size = sizeof(cshim_tracer_t),
                                     .get_stats = fake_tracer_stats};

/* A ttrpc server that only records the interceptor it is given. */
static const cshim_ttrpc_interceptor_t *recorded_interceptor;

static int
record_interceptor(cshim_ttrpc_server_t *server, const cshim_ttrpc_interceptor_t *ic,
                   cshim_error_t *err)
{
  recorded_interceptor = ic;
  return 0;
}

static const cshim_ttrpc_server_ops_t recording_ops = {
    .struct_size = sizeof(cshim_ttrpc_server_ops_t), .add_interceptor = record_interceptor};

/* Set key in the plugin's config section, replacing an earlier value. */
static void
config_set(mock_host_t *h, const char *key, const char *value)
{
  for (size_t i = 0; i < h->config.n; i++)
    if (strcmp(h->config_keys[i], key) == 0) {
      h->config_items[i].value = value;
      return;
    }
  mock_host_set_config(h, key, value);
}

/* ---- fixture ----------------------------------------------------------------------------------
 */

typedef struct fixture_s
{
  mock_host_t h;
  fake_host_t host;
  const cshim_plugin_t *desc;
  void *instance;
  char dir[64];
  char sock[128];
  char state_dir[128];
} fixture_t;

const cshim_plugin_t *cshim_plugin_entry(void);

static int
setup(void **state)
{
  fixture_t *f = cshim_xmalloc0(sizeof(*f));

  mock_host_init(&f->h, "io.containerd.http.v1.debug", requires_all);
  fake_host_init(&f->host);
  f->h.ctx.host = &f->host.base;
  mock_host_add_instance(&f->h, CSHIM_TYPE_EVENT, "publisher", &fake_publisher);
  mock_host_add_instance(&f->h, CSHIM_TYPE_INTERNAL, CSHIM_TRACER_ID, &fake_tracer);
  strcpy(f->dir, "/tmp/cshim-debug-test.XXXXXX");
  assert_non_null(mkdtemp(f->dir));
  snprintf(f->sock, sizeof(f->sock), "%s/s/deeper/debug.sock", f->dir);
  snprintf(f->state_dir, sizeof(f->state_dir), "%s/state", f->dir);
  mock_host_set_property(&f->h, CSHIM_PROP_STATE_DIR, cshim_xstrdup(f->state_dir));
  f->desc = cshim_plugin_entry();
  recorded_interceptor = NULL;
  *state = f;
  return 0;
}

static void
close_plugin(fixture_t *f)
{
  if (f->instance) {
    f->desc->close(f->instance);
    f->instance = NULL;
  }
}

static int
remove_entry_cb(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
  (void)st;
  (void)flag;
  (void)ftw;
  remove(path);
  return 0;
}

static int
teardown(void **state)
{
  fixture_t *f = *state;

  close_plugin(f);
  mock_host_fini(&f->h);
  /* Everything in the directory was made by this test (sockets, the state directory). */
  nftw(f->dir, remove_entry_cb, 16, FTW_DEPTH | FTW_PHYS);
  for (size_t i = 0; i < f->h.n_props; i++)
    if (strcmp(f->h.prop_keys[i], CSHIM_PROP_STATE_DIR) == 0)
      free((char *)f->h.prop_values[i]);
  free(f);
  return 0;
}

static int
init_plugin(fixture_t *f, cshim_error_t *err)
{
  return f->desc->init(&f->h.ctx, &f->instance, err);
}

static void
start_serving(fixture_t *f)
{
  cshim_error_t err = NULL;
  cshim_ttrpc_server_t server = {.ops = &recording_ops};

  mock_host_set_property(&f->h, CSHIM_PROP_DEBUG, "true");
  mock_host_set_property(&f->h, CSHIM_PROP_DEBUG_ADDRESS, f->sock);
  if (init_plugin(f, &err) != 0) {
    mock_host_dump_lines(&f->h);
    fail_msg("init: %s", err ? err->msg : "skipped");
  }
  assert_int_equal(f->desc->register_ttrpc(f->instance, &server, &err), 0);
  assert_non_null(recorded_interceptor);
}

/* ---- a client that runs the plugin's loop while it waits ------------------------------------ */

static int
connect_to(const char *path)
{
  struct sockaddr_un sun = {.sun_family = AF_UNIX};
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

  assert_true(fd >= 0);
  strcpy(sun.sun_path, path);
  assert_int_equal(connect(fd, (struct sockaddr *)&sun, sizeof(sun)), 0);
  return fd;
}

/* Read what fd receives until EOF or timeout_ms, running the loop meanwhile. */
static char *
collect(fixture_t *f, int fd, int timeout_ms, size_t *len_out)
{
  char *out = cshim_xmalloc0(1);
  size_t len = 0;
  uint64_t deadline = cshim_now_ns() + (uint64_t)timeout_ms * 1000000u;

  fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
  while (cshim_now_ns() < deadline) {
    char buf[65536];
    ssize_t n;
    struct pollfd p = {.fd = fd, .events = POLLIN};

    uv_run(&f->h.loop, UV_RUN_NOWAIT);
    poll(&p, 1, 2);
    n = read(fd, buf, sizeof(buf));
    if (n > 0) {
      out = cshim_xrealloc(out, len + (size_t)n + 1);
      memcpy(out + len, buf, (size_t)n);
      len += (size_t)n;
      out[len] = '\0';
      continue;
    }
    if (n == 0 || (errno != EAGAIN && errno != EINTR))
      break;
  }
  if (len_out)
    *len_out = len;
  return out;
}

static char *
request(fixture_t *f, const char *raw, size_t raw_len, bool shut_write, size_t *len)
{
  int fd = connect_to(f->sock);
  char *out;

  /* The server may answer and close before reading everything (that is the point of the
     limits): a short write is fine. */
  assert_true(send(fd, raw, raw_len, MSG_NOSIGNAL) > 0);
  if (shut_write)
    shutdown(fd, SHUT_WR);
  out = collect(f, fd, 10000, len);
  close(fd);
  return out;
}

static char *
get(fixture_t *f, const char *path)
{
  char *req;
  char *out;

  cshim_xasprintf(&req, "GET %s HTTP/1.1\r\nHost: x\r\n\r\n", path);
  out = request(f, req, strlen(req), false, NULL);
  free(req);
  return out;
}

static int
status_of(const char *response)
{
  int status = 0;

  if (sscanf(response, "HTTP/1.1 %d ", &status) != 1)
    return -1;
  return status;
}

static const char *
body_of(const char *response)
{
  const char *b = strstr(response, "\r\n\r\n");
  return b ? b + 4 : "";
}

/* The value of the unlabelled sample `name` in a metrics text: -1 when there is none. */
static double
sample(const char *text, const char *name)
{
  size_t len = strlen(name);

  for (const char *line = text; line && *line;
       line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL)
    if (strncmp(line, name, len) == 0 && line[len] == ' ')
      return strtod(line + len + 1, NULL);
  return -1;
}

static void
observe(const char *method, int code, uint64_t ms)
{
  cshim_ttrpc_call_t call = {.service = "containerd.task.v2.Task",
                             .method = method,
                             .started_ns = cshim_now_ns() - ms * 1000000u};

  recorded_interceptor->after(recorded_interceptor->data, &call, code);
}

/* ---- when and where it serves -----------------------------------------------------------------
 */

static void
test_debug_skips_without_debug_flag_or_socket(void **state)
{
  fixture_t *f = *state;
  cshim_error_t err = NULL;

  mock_host_set_property(&f->h, CSHIM_PROP_DEBUG, "false");
  mock_host_set_property(&f->h, CSHIM_PROP_DEBUG_ADDRESS, f->sock);
  assert_int_equal(init_plugin(f, &err), CSHIM_PLUGIN_SKIP);
  assert_non_null(strstr(err->msg, "debugging is off"));
  cshim_error_release(&err);
  assert_int_equal(access(f->sock, F_OK), -1);
}

static void
test_debug_config_can_force_it_off_or_on(void **state)
{
  fixture_t *f = *state;
  cshim_error_t err = NULL;

  mock_host_set_property(&f->h, CSHIM_PROP_DEBUG, "true");
  mock_host_set_property(&f->h, CSHIM_PROP_DEBUG_ADDRESS, f->sock);
  config_set(&f->h, "enabled", "false");
  assert_int_equal(init_plugin(f, &err), CSHIM_PLUGIN_SKIP);
  assert_non_null(strstr(err->msg, "disabled by config"));
  cshim_error_release(&err);

  mock_host_set_property(&f->h, CSHIM_PROP_DEBUG, "false");
  config_set(&f->h, "enabled", "true");
  assert_int_equal(init_plugin(f, &err), 0);
  assert_int_equal(access(f->sock, F_OK), 0);
}

static void
test_debug_rejects_unknown_config_keys(void **state)
{
  fixture_t *f = *state;
  cshim_error_t err = NULL;

  config_set(&f->h, "bogus", "1");
  assert_int_equal(init_plugin(f, &err), -EINVAL);
  assert_non_null(strstr(err->msg, "bogus"));
  cshim_error_release(&err);
}

static void
test_debug_socket_is_private(void **state)
{
  fixture_t *f = *state;
  struct stat st;
  char dir[128];
  char *resp;

  start_serving(f);
  assert_int_equal(stat(f->sock, &st), 0);
  assert_true(S_ISSOCK(st.st_mode));
  assert_int_equal(st.st_mode & 0777, 0600);
  snprintf(dir, sizeof(dir), "%s/s/deeper", f->dir);
  assert_int_equal(stat(dir, &st), 0);
  assert_int_equal(st.st_mode & 0777, 0700);
  assert_int_equal(
      mock_host_count_lines(&f->h, CSHIM_LOG_INFO, "debug endpoints on unix://", f->sock, NULL), 1);

  resp = get(f, "/");
  assert_int_equal(status_of(resp), 200);
  assert_non_null(strstr(resp, "/debug/pprof/profile"));
  free(resp);

  close_plugin(f);
  assert_int_equal(access(f->sock, F_OK), -1);
}

static void
test_debug_socket_flag_wins_over_the_computed_path(void **state)
{
  fixture_t *f = *state;
  cshim_error_t err = NULL;
  char flag[160], other[160];

  snprintf(flag, sizeof(flag), "unix://%s/flag.sock", f->dir);
  snprintf(other, sizeof(other), "%s/computed.sock", f->dir);
  mock_host_set_property(&f->h, CSHIM_PROP_DEBUG_SOCKET, flag);
  mock_host_set_property(&f->h, CSHIM_PROP_DEBUG_ADDRESS, other);
  assert_int_equal(init_plugin(f, &err), 0);
  assert_int_equal(access(flag + 7, F_OK), 0);
  assert_int_equal(access(other, F_OK), -1);
  close_plugin(f);
  assert_int_equal(access(flag + 7, F_OK), -1);
}

static void
test_debug_serves_an_inherited_listening_socket(void **state)
{
  fixture_t *f = *state;
  struct sockaddr_un sun = {.sun_family = AF_UNIX};
  cshim_error_t err = NULL;
  char fd_text[16];
  char *resp;
  int fd;

  fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  snprintf(f->sock, sizeof(f->sock), "%s/inherited.sock", f->dir);
  strcpy(sun.sun_path, f->sock);
  assert_int_equal(bind(fd, (struct sockaddr *)&sun, sizeof(sun)), 0);
  assert_int_equal(listen(fd, 8), 0);
  snprintf(fd_text, sizeof(fd_text), "%d", fd);
  mock_host_set_property(&f->h, CSHIM_PROP_DEBUG_FD, fd_text);
  assert_int_equal(init_plugin(f, &err), 0);

  resp = get(f, "/debug/pprof/");
  assert_int_equal(status_of(resp), 200);
  free(resp);
  close_plugin(f);
  /* The plugin owned the fd and the path: both are gone. */
  assert_int_equal(fcntl(fd, F_GETFD), -1);
  assert_int_equal(access(f->sock, F_OK), -1);
}

static void
test_debug_replaces_a_stale_socket_and_leaves_a_live_one(void **state)
{
  fixture_t *f = *state;
  struct sockaddr_un sun = {.sun_family = AF_UNIX};
  cshim_error_t err = NULL;
  int fd;

  snprintf(f->sock, sizeof(f->sock), "%s/taken.sock", f->dir);
  strcpy(sun.sun_path, f->sock);
  fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  assert_int_equal(bind(fd, (struct sockaddr *)&sun, sizeof(sun)), 0);
  assert_int_equal(listen(fd, 8), 0);

  mock_host_set_property(&f->h, CSHIM_PROP_DEBUG, "true");
  mock_host_set_property(&f->h, CSHIM_PROP_DEBUG_ADDRESS, f->sock);
  assert_int_equal(init_plugin(f, &err), CSHIM_PLUGIN_SKIP);
  assert_non_null(strstr(err->msg, "is in use"));
  cshim_error_release(&err);
  assert_int_equal(
      mock_host_count_lines(&f->h, CSHIM_LOG_WARN, "debug endpoints unavailable", NULL), 1);
  assert_int_equal(access(f->sock, F_OK), 0);
  /* Let the skipped instance's handles close. */
  mock_host_run_for(&f->h, 10);

  close(fd); /* now stale: nobody accepts */
  assert_int_equal(init_plugin(f, &err), 0);
  close_plugin(f);
  assert_int_equal(access(f->sock, F_OK), -1);
}

/* ---- endpoints --------------------------------------------------------------------------------
 */

static void
test_debug_metrics_show_calls_events_processes_and_process(void **state)
{
  fixture_t *f = *state;
  char *resp;
  const char *body;

  start_serving(f);
  observe("Create", CSHIM_GRPC_OK, 3);
  observe("State", CSHIM_GRPC_OK, 0);
  observe("State", CSHIM_GRPC_NOT_FOUND, 200);
  resp = get(f, "/metrics");
  assert_int_equal(status_of(resp), 200);
  assert_non_null(strstr(resp, "Content-Type: text/plain; version=0.0.4"));
  body = body_of(resp);

  assert_non_null(strstr(body, "# TYPE cshim_ttrpc_calls_total counter\n"));
  assert_non_null(strstr(body, "cshim_ttrpc_calls_total{service=\"containerd.task.v2.Task\","
                               "method=\"Create\",code=\"OK\"} 1\n"));
  assert_non_null(strstr(body, "cshim_ttrpc_calls_total{service=\"containerd.task.v2.Task\","
                               "method=\"State\",code=\"NotFound\"} 1\n"));
  assert_non_null(strstr(body, "cshim_ttrpc_call_errors_total{service=\"containerd.task.v2.Task\","
                               "method=\"State\"} 1\n"));
  assert_non_null(strstr(body, "# TYPE cshim_ttrpc_call_duration_seconds histogram\n"));
  /* 3 ms: above the 2.5 ms bound, within 5 ms; 200 ms within 250 ms. */
  assert_non_null(strstr(body, "cshim_ttrpc_call_duration_seconds_bucket{service=\"containerd."
                               "task.v2.Task\",method=\"Create\",le=\"0.0025\"} 0\n"));
  assert_non_null(strstr(body, "cshim_ttrpc_call_duration_seconds_bucket{service=\"containerd."
                               "task.v2.Task\",method=\"Create\",le=\"0.005\"} 1\n"));
  assert_non_null(strstr(body, "cshim_ttrpc_call_duration_seconds_bucket{service=\"containerd."
                               "task.v2.Task\",method=\"State\",le=\"0.1\"} 1\n"));
  assert_non_null(strstr(body, "cshim_ttrpc_call_duration_seconds_bucket{service=\"containerd."
                               "task.v2.Task\",method=\"State\",le=\"+Inf\"} 2\n"));
  assert_non_null(strstr(body, "cshim_ttrpc_call_duration_seconds_count{service=\"containerd."
                               "task.v2.Task\",method=\"State\"} 2\n"));
  assert_non_null(strstr(body, "cshim_ttrpc_connections_open 2\n"));
  assert_non_null(strstr(body, "cshim_ttrpc_requests_total 9\n"));
  assert_non_null(strstr(body, "cshim_events_published_total 5\n"));
  assert_non_null(strstr(body, "cshim_events_retried_total 3\n"));
  assert_non_null(strstr(body, "cshim_events_dropped_total 2\n"));
  assert_non_null(strstr(body, "cshim_tracing_spans_exported_total 40\n"));
  assert_non_null(strstr(body, "cshim_tracing_spans_dropped_total 6\n"));
  assert_non_null(strstr(body, "cshim_tracing_export_failures_total 2\n"));
  assert_non_null(strstr(body, "cshim_tracing_spans_queued 1\n"));
  assert_non_null(strstr(body, "cshim_processes{state=\"running\"} 2\n"));
  assert_non_null(strstr(body, "cshim_processes{state=\"stopped\"} 1\n"));
  assert_non_null(strstr(body, "cshim_processes{state=\"created\"} 0\n"));
  assert_non_null(strstr(body, "# TYPE cshim_processes_started_total counter\n"));
  assert_non_null(
      strstr(body, "cshim_processes_started_total{kind=\"runtime\",command=\"create\"} 3\n"));
  assert_non_null(
      strstr(body, "cshim_processes_started_total{kind=\"runtime\",command=\"start\"} 2\n"));
  assert_non_null(strstr(body, "cshim_processes_started_total{kind=\"logger\",command=\"\"} 1\n"));
  assert_non_null(strstr(body, "cshim_log_lines_total 40\n"));
  assert_non_null(strstr(body, "cshim_process_start_time_seconds 1700000000\n"));
  assert_non_null(strstr(body, "cshim_info{version=\"0.0.test\"} 1\n"));
  assert_non_null(strstr(body, "# TYPE cshim_loop_iterations_total counter\n"));
  assert_null(strstr(body, "cshim_process_resident_memory_bytes 0\n"));
  /* the conventional process_* names, beside cshim's own, with the same figures */
  assert_non_null(strstr(body, "\nprocess_start_time_seconds 1700000000\n"));
  assert_non_null(strstr(body, "# TYPE process_start_time_seconds gauge\n"));
  assert_non_null(strstr(body, "# TYPE process_resident_memory_bytes gauge\n"));
  assert_non_null(strstr(body, "# TYPE process_open_fds gauge\n"));
  assert_non_null(strstr(body, "# TYPE process_cpu_seconds_total counter\n"));
  assert_true(sample(body, "process_resident_memory_bytes") > 0);
  assert_true(sample(body, "process_open_fds") >= 3);
  assert_true(sample(body, "process_open_fds") == sample(body, "cshim_process_open_fds"));
  assert_true(sample(body, "process_cpu_seconds_total") >= 0);
  free(resp);
}

/* Every sample belongs to a family announced by # HELP and # TYPE before it. */
static void
test_debug_metrics_are_well_formed_text(void **state)
{
  fixture_t *f = *state;
  char *resp, *save = NULL;
  char families[64][96];
  size_t n = 0;

  start_serving(f);
  observe("Wait", CSHIM_GRPC_CANCELED, 1);
  resp = get(f, "/metrics");
  for (char *line = strtok_r((char *)body_of(resp), "\n", &save); line;
       line = strtok_r(NULL, "\n", &save)) {
    char name[96];
    bool known = false;

    if (strncmp(line, "# HELP ", 7) == 0)
      continue;
    if (strncmp(line, "# TYPE ", 7) == 0) {
      assert_true(n < 64);
      assert_int_equal(sscanf(line + 7, "%95s", families[n]), 1);
      n++;
      continue;
    }
    assert_int_equal(sscanf(line, "%95[a-z_]", name), 1);
    for (size_t i = 0; i < n && !known; i++) {
      size_t l = strlen(families[i]);
      known = strncmp(name, families[i], l) == 0 &&
              (name[l] == '\0' || strcmp(name + l, "_bucket") == 0 ||
               strcmp(name + l, "_sum") == 0 || strcmp(name + l, "_count") == 0);
    }
    if (!known)
      fail_msg("sample without a family: %s", line);
    /* name{labels} value: the value parses as a number. */
    assert_non_null(strrchr(line, ' '));
    {
      char *end;
      strtod(strrchr(line, ' ') + 1, &end);
      assert_true(*end == '\0');
    }
  }
  assert_true(n > 20);
  free(resp);
}

static void
test_debug_vars_and_state_are_json(void **state)
{
  fixture_t *f = *state;
  char *resp;
  json_t *j;

  start_serving(f);
  observe("Start", CSHIM_GRPC_OK, 1);
  resp = get(f, "/debug/vars");
  assert_int_equal(status_of(resp), 200);
  assert_non_null(strstr(resp, "Content-Type: application/json"));
  j = json_loads(body_of(resp), 0, NULL);
  assert_non_null(j);
  assert_string_equal(json_string_value(json_object_get(j, "version")), "0.0.test");
  assert_int_equal(json_integer_value(json_object_get(j, "pid")), getpid());
  assert_string_equal(json_string_value(json_object_get(json_object_get(j, "config"), "source")),
                      "/etc/cshim/test.yaml");
  assert_string_equal(json_string_value(json_object_get(
                          json_object_get(json_object_get(j, "config"), "effective"), "version")),
                      "1");
  assert_string_equal(
      json_string_value(json_object_get(json_array_get(json_object_get(j, "plugins"), 0), "uri")),
      "io.containerd.ttrpc.v1.task");
  assert_int_equal(json_integer_value(json_object_get(json_object_get(j, "events"), "published")),
                   5);
  assert_string_equal(
      json_string_value(json_object_get(
          json_array_get(json_object_get(json_object_get(j, "ttrpc"), "methods"), 0), "method")),
      "Start");
  assert_int_equal(json_integer_value(json_object_get(json_object_get(j, "processes"), "running")),
                   2);
  assert_true(json_integer_value(
                  json_object_get(json_object_get(j, "process"), "resident_memory_bytes")) > 0);
  assert_true(json_integer_value(json_object_get(json_object_get(j, "process"), "open_fds")) > 2);
  assert_int_equal(json_array_size(json_object_get(json_object_get(j, "state"), "tasks")), 3);
  assert_string_equal(
      json_string_value(json_object_get(json_object_get(j, "shim"), "debug_socket")), f->sock);
  json_decref(j);
  free(resp);

  resp = get(f, "/debug/state");
  assert_int_equal(status_of(resp), 200);
  j = json_loads(body_of(resp), 0, NULL);
  assert_non_null(j);
  assert_string_equal(
      json_string_value(json_object_get(json_array_get(json_object_get(j, "tasks"), 1), "exec_id")),
      "e1");
  json_decref(j);
  free(resp);
}

static void
test_debug_answers_bad_requests_with_4xx(void **state)
{
  fixture_t *f = *state;
  static const char post_body[] = "POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\n"
                                  "hello";
  static const char chunked[] = "POST /metrics HTTP/1.1\r\nHost: x\r\n"
                                "Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n";
  static const char post_empty[] = "POST /metrics HTTP/1.1\r\nHost: x\r\n\r\n";
  static const char garbage[] = "HELLO THERE\r\n\r\n";
  static const char partial[] = "GET /metrics HTTP/1.1\r\nHost:";
  size_t big_len = 20000;
  char *big = cshim_xmalloc(big_len + 64);
  char *resp;

  start_serving(f);

  resp = get(f, "/nope");
  assert_int_equal(status_of(resp), 404);
  free(resp);
  resp = get(f, "/metrics/x");
  assert_int_equal(status_of(resp), 404);
  free(resp);
  resp = request(f, post_empty, strlen(post_empty), false, NULL);
  assert_int_equal(status_of(resp), 405);
  assert_non_null(strstr(resp, "Allow: GET\r\n"));
  free(resp);
  resp = request(f, post_body, strlen(post_body), false, NULL);
  assert_int_equal(status_of(resp), 413);
  free(resp);
  resp = request(f, chunked, strlen(chunked), false, NULL);
  assert_int_equal(status_of(resp), 413);
  free(resp);
  resp = request(f, garbage, strlen(garbage), false, NULL);
  assert_int_equal(status_of(resp), 400);
  free(resp);
  resp = request(f, partial, strlen(partial), true, NULL);
  assert_int_equal(status_of(resp), 400);
  free(resp);

  strcpy(big, "GET /metrics HTTP/1.1\r\nX-Big: ");
  memset(big + strlen(big), 'a', big_len);
  big[30 + big_len] = '\0';
  strcat(big, "\r\n\r\n");
  resp = request(f, big, strlen(big), false, NULL);
  assert_int_equal(status_of(resp), 431);
  free(resp);
  free(big);

  resp = get(f, "/debug/pprof/profile?seconds=abc");
  assert_int_equal(status_of(resp), 400);
  free(resp);
  resp = get(f, "/debug/pprof/profile?seconds=0");
  assert_int_equal(status_of(resp), 400);
  free(resp);
  resp = get(f, "/debug/pprof/profile?seconds=61");
  assert_int_equal(status_of(resp), 400);
  assert_non_null(strstr(resp, "from 1 to 60"));
  free(resp);

  /* Answered and counted; the server still works. */
  resp = get(f, "/metrics");
  assert_int_equal(status_of(resp), 200);
  assert_non_null(strstr(resp, "cshim_debug_http_rejected_total 11\n"));
  free(resp);
}

static void
test_debug_partial_request_does_not_block_others(void **state)
{
  fixture_t *f = *state;
  char *resp;
  int slow;

  start_serving(f);
  slow = connect_to(f->sock);
  assert_int_equal(write(slow, "GET /met", 8), 8);
  resp = get(f, "/metrics");
  assert_int_equal(status_of(resp), 200);
  free(resp);
  close(slow);
}

static void
test_debug_refuses_connections_over_the_limit(void **state)
{
  fixture_t *f = *state;
  int idle[16];
  char *resp;
  int fd;

  start_serving(f);
  for (size_t i = 0; i < 16; i++) {
    idle[i] = connect_to(f->sock);
    mock_host_run_for(&f->h, 1);
  }
  mock_host_run_for(&f->h, 20);
  fd = connect_to(f->sock);
  resp = collect(f, fd, 5000, NULL);
  assert_int_equal(status_of(resp), 503);
  free(resp);
  close(fd);
  for (size_t i = 0; i < 16; i++)
    close(idle[i]);
  mock_host_run_for(&f->h, 20);
  resp = get(f, "/metrics");
  assert_int_equal(status_of(resp), 200);
  free(resp);
}

/* ---- CPU profiles -----------------------------------------------------------------------------
 */

static void
test_debug_profile_streams_a_pprof_file_and_refuses_a_second(void **state)
{
  fixture_t *f = *state;
  static const char req[] = "GET /debug/pprof/profile?seconds=1 HTTP/1.1\r\nHost: x\r\n\r\n";
  char *resp, *second;
  const char *body;
  size_t len;
  uint64_t header[3];
  int fd;
  struct ProfilerState ps;

  start_serving(f);
  fd = connect_to(f->sock);
  assert_int_equal(write(fd, req, strlen(req)), (ssize_t)strlen(req));
  mock_host_run_for(&f->h, 50);
  second = get(f, "/debug/pprof/profile?seconds=1");
  assert_int_equal(status_of(second), 409);
  free(second);
  ProfilerGetCurrentState(&ps);
  assert_true(ps.enabled);

  /* Burn some CPU so that there are samples. */
  for (uint64_t end = cshim_now_ns() + 300000000u; cshim_now_ns() < end;)
    free(get(f, "/metrics"));
  resp = collect(f, fd, 10000, &len);
  close(fd);
  assert_int_equal(status_of(resp), 200);
  assert_non_null(strstr(resp, "Content-Type: application/octet-stream"));
  body = body_of(resp);
  len -= (size_t)(body - resp);
  /* gperftools' legacy CPU profile: header words 0, 3 (header size), 0 (version). */
  assert_true(len > sizeof(header));
  memcpy(header, body, sizeof(header));
  assert_int_equal(header[0], 0);
  assert_int_equal(header[1], 3);
  assert_int_equal(header[2], 0);
  free(resp);

  ProfilerGetCurrentState(&ps);
  assert_false(ps.enabled);
  mock_host_run_for(&f->h, 20);
  /* The file is gone once sent: the state directory is empty again. */
  assert_int_equal(rmdir(f->state_dir), 0);
}

static void
test_debug_close_during_a_profile_stops_it(void **state)
{
  fixture_t *f = *state;
  static const char req[] = "GET /debug/pprof/profile?seconds=5 HTTP/1.1\r\nHost: x\r\n\r\n";
  struct ProfilerState ps;
  char *resp;
  int fd;

  start_serving(f);
  fd = connect_to(f->sock);
  assert_int_equal(write(fd, req, strlen(req)), (ssize_t)strlen(req));
  mock_host_run_for(&f->h, 50);
  ProfilerGetCurrentState(&ps);
  assert_true(ps.enabled);
  close_plugin(f);
  ProfilerGetCurrentState(&ps);
  assert_false(ps.enabled);
  resp = collect(f, fd, 2000, NULL);
  /* The answer may or may not get out before the connection goes: never a 200. */
  assert_true(status_of(resp) == 503 || status_of(resp) == -1);
  free(resp);
  close(fd);
  assert_int_equal(access(f->state_dir, F_OK), -1);
}

static void
test_debug_max_profile_seconds_is_configurable(void **state)
{
  fixture_t *f = *state;
  cshim_error_t err = NULL;
  char *resp;

  config_set(&f->h, "max_profile_seconds", "0");
  mock_host_set_property(&f->h, CSHIM_PROP_DEBUG, "true");
  mock_host_set_property(&f->h, CSHIM_PROP_DEBUG_ADDRESS, f->sock);
  assert_int_equal(init_plugin(f, &err), -EINVAL);
  cshim_error_release(&err);
  config_set(&f->h, "max_profile_seconds", "2");
  assert_int_equal(init_plugin(f, &err), 0);
  resp = get(f, "/debug/pprof/profile?seconds=3");
  assert_int_equal(status_of(resp), 400);
  assert_non_null(strstr(resp, "from 1 to 2"));
  free(resp);
}

/* Live upgrade: a connection whose request is half read is handed over (descriptor and the bytes
   read so far) and answered by the next instance once the rest arrives; the client never sees it
   closed. One process plays both images: the descriptors are kept under their numbers across
   the first instance's close, as an exec keeps them. */
static void
test_debug_upgrade_hands_over_a_half_read_request(void **state)
{
  fixture_t *f = *state;
  static const char head[] = "GET /debug/pprof/ HTTP/1.1\r\nHo";
  static const char rest[] = "st: x\r\n\r\n";
  cshim_state_writer_t w;
  cshim_state_reader_t r;
  cshim_error_t err = NULL;
  cshim_autofree uint8_t *doc = NULL;
  const int *fds;
  size_t len = 0, n_fds = 0;
  int kept[8], client;
  char *resp;

  start_serving(f);
  client = connect_to(f->sock);
  assert_int_equal(send(client, head, sizeof head - 1, MSG_NOSIGNAL), (ssize_t)sizeof head - 1);
  for (int i = 0; i < 50; i++) {
    uv_run(&f->h.loop, UV_RUN_NOWAIT);
    usleep(1000);
  }
  assert_null(f->desc->upgrade_busy(f->instance));
  cshim_state_writer_init(&w);
  assert_int_equal(f->desc->upgrade_save(f->instance, &w, &err), 0);
  fds = cshim_state_writer_fds(&w, &n_fds);
  assert_int_equal(n_fds, 2); /* the listener and the connection */
  for (size_t i = 0; i < n_fds; i++)
    kept[i] = dup(fds[i]);
  assert_int_equal(cshim_state_writer_finish(&w, &doc, &len, &err), 0);
  {
    int numbers[8];
    for (size_t i = 0; i < n_fds; i++)
      numbers[i] = fds[i];
    cshim_state_writer_fini(&w);
    close_plugin(f);
    uv_run(&f->h.loop, UV_RUN_NOWAIT);
    for (size_t i = 0; i < n_fds; i++) {
      assert_int_equal(dup2(kept[i], numbers[i]), numbers[i]);
      close(kept[i]);
    }
  }

  /* the next image */
  mock_host_set_property(&f->h, CSHIM_PROP_RESTORING, "true");
  assert_int_equal(init_plugin(f, &err), 0);
  assert_int_equal(cshim_state_open(doc, len, CSHIM_STATE_FORMAT_MIN, CSHIM_STATE_FORMAT_VERSION,
                                    NULL, &r, &err),
                   0);
  if (f->desc->upgrade_restore(f->instance, &r, &err) < 0)
    fail_msg("restore: %s", err->msg);
  assert_int_equal(send(client, rest, sizeof rest - 1, MSG_NOSIGNAL), (ssize_t)sizeof rest - 1);
  resp = collect(f, client, 10000, NULL);
  assert_int_equal(status_of(resp), 200);
  free(resp);
  close(client);
}

int
main(void)
{
  signal(SIGPIPE, SIG_IGN);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_debug_skips_without_debug_flag_or_socket, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_debug_config_can_force_it_off_or_on, setup, teardown),
      cmocka_unit_test_setup_teardown(test_debug_rejects_unknown_config_keys, setup, teardown),
      cmocka_unit_test_setup_teardown(test_debug_socket_is_private, setup, teardown),
      cmocka_unit_test_setup_teardown(test_debug_socket_flag_wins_over_the_computed_path, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_debug_serves_an_inherited_listening_socket, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_debug_replaces_a_stale_socket_and_leaves_a_live_one,
                                      setup, teardown),
      cmocka_unit_test_setup_teardown(test_debug_metrics_show_calls_events_processes_and_process,
                                      setup, teardown),
      cmocka_unit_test_setup_teardown(test_debug_metrics_are_well_formed_text, setup, teardown),
      cmocka_unit_test_setup_teardown(test_debug_vars_and_state_are_json, setup, teardown),
      cmocka_unit_test_setup_teardown(test_debug_answers_bad_requests_with_4xx, setup, teardown),
      cmocka_unit_test_setup_teardown(test_debug_partial_request_does_not_block_others, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_debug_refuses_connections_over_the_limit, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_debug_profile_streams_a_pprof_file_and_refuses_a_second,
                                      setup, teardown),
      cmocka_unit_test_setup_teardown(test_debug_close_during_a_profile_stops_it, setup, teardown),
      cmocka_unit_test_setup_teardown(test_debug_upgrade_hands_over_a_half_read_request, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_debug_max_profile_seconds_is_configurable, setup,
                                      teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
