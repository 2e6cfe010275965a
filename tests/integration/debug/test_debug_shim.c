// SPDX-License-Identifier: Apache-2.0
// The debug plugin in the real shim binary: where its socket goes (-debug, -debug-socket, fd 4,
// off), every endpoint, metrics that follow real ttrpc calls, a CPU profile read by google-pprof,
// HTTP rejections, and the SIGUSR1 state dump.
#define _GNU_SOURCE
#include <errno.h>
#include <libgen.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <jansson.h>

#include <cshim/util.h>

#include "address.h"
#include "itest.h"

#include <cmocka.h>

#ifndef CSHIM_TEST_SHIM_BINARY
#error "CSHIM_TEST_SHIM_BINARY, CSHIM_TEST_CSHIMCTL and the plugin paths must be defined"
#endif

#define GOOGLE_PPROF "/usr/bin/google-pprof"

typedef struct fixture_s
{
  itest_t t;
  char *bundle;
  char config[256];
  char address[256]; /* -address: containerd's gRPC socket (never served here) */
  char sockdir[160]; /* where -socket lives */
  char sock[200];    /* -socket */
  char log[200];     /* the daemon's stderr */
  char debug[256];   /* the debug socket the shim computes */
  pid_t shim;
} fixture_t;

static int
setup(void **state)
{
  fixture_t *f = cshim_xmalloc0(sizeof(*f));
  char *text, *computed;
  FILE *cfg;

  itest_init(&f->t, "debug");
  cshim_xasprintf(&f->bundle, "%s/bundle", f->t.dir);
  assert_int_equal(mkdir(f->bundle, 0700), 0);
  snprintf(f->config, sizeof(f->config), "%s/cshim.yaml", f->t.dir);
  snprintf(f->address, sizeof(f->address), "%s/containerd.sock", f->t.dir);
  snprintf(f->sockdir, sizeof(f->sockdir), "%s/s", f->t.dir);
  snprintf(f->sock, sizeof(f->sock), "%s/shim.sock", f->sockdir);
  snprintf(f->log, sizeof(f->log), "%s/shim.log", f->t.dir);
  computed = host_address_socket(f->sockdir, f->address, f->t.ns, "d1", true);
  assert_non_null(computed);
  snprintf(f->debug, sizeof(f->debug), "%s", host_address_path(computed));
  free(computed);
  cshim_xasprintf(
      &text,
      "version: 1\n"
      "modules:\n  - %s\n  - %s\n  - %s\n  - %s\n"
      "plugins:\n"
      "  io.containerd.internal.v1.shutdown:\n    timeout: 2s\n"
      "  io.containerd.event.v1.publisher:\n"
      "    max_retries: 0\n    retry_base: 10ms\n    retry_max: 20ms\n    timeout: 100ms\n",
      CSHIM_TEST_SHUTDOWN_SO, CSHIM_TEST_PUBLISHER_SO, CSHIM_TEST_TASK_SO, CSHIM_TEST_DEBUG_SO);
  cfg = fopen(f->config, "w");
  assert_non_null(cfg);
  fputs(text, cfg);
  fclose(cfg);
  free(text);
  *state = f;
  return 0;
}

static int
teardown(void **state)
{
  fixture_t *f = *state;

  itest_fini(&f->t);
  free(f->bundle);
  free(f);
  return 0;
}

/* The daemon as containerd runs it, but on -socket; extra flags before the end. */
static void
start_shim(fixture_t *f, const char *const *extra, int listen_fd)
{
  char *argv[20];
  char *env[3];
  size_t n = 0;

  argv[n++] = CSHIM_TEST_SHIM_BINARY;
  argv[n++] = "-namespace";
  argv[n++] = f->t.ns;
  argv[n++] = "-id";
  argv[n++] = "d1";
  argv[n++] = "-address";
  argv[n++] = f->address;
  argv[n++] = "-socket";
  argv[n++] = f->sock;
  for (; extra && *extra; extra++)
    argv[n++] = (char *)*extra;
  argv[n] = NULL;
  cshim_xasprintf(&env[0], "CSHIM_CONFIG=%s", f->config);
  cshim_xasprintf(&env[1], "TTRPC_ADDRESS=%s/events.sock", f->t.dir);
  env[2] = NULL;
  f->shim = itest_spawn(&f->t, argv, env, f->bundle, NULL, f->log, listen_fd);
  free(env[0]);
  free(env[1]);
  if (!itest_wait_socket(f->sock, 10000)) {
    char *log = itest_read_file(f->log);
    fail_msg("the shim did not serve; its log:\n%s", log ? log : "");
  }
}

static void
stop_shim(fixture_t *f)
{
  kill(f->shim, SIGTERM);
  assert_true(itest_wait_gone(f->shim, 10000));
}

static void
ctl(fixture_t *f, const char *const *args, itest_result_t *r)
{
  char *argv[24];
  size_t n = 0;

  argv[n++] = CSHIM_TEST_CSHIMCTL;
  for (; *args; args++)
    argv[n++] = (char *)*args;
  argv[n] = NULL;
  itest_run(argv, NULL, NULL, 60000, r);
}

/* cshimctl debug <what> on socket; returns stdout (caller frees). */
static char *
debug_get(fixture_t *f, const char *socket, const char *what)
{
  const char *args[] = {"--socket", socket, "debug", what, NULL};
  itest_result_t r;
  char *out;

  ctl(f, args, &r);
  if (!itest_exited(&r, 0))
    fail_msg("cshimctl debug %s: %s", what, r.err);
  out = cshim_steal_pointer(&r.out);
  itest_result_free(&r);
  return out;
}

static void
task_call(fixture_t *f, const char *cmd, const char *id, int want_exit, const char *want_err)
{
  const char *args[] = {"--socket", f->sock, "-n", f->t.ns, cmd, id, NULL};
  itest_result_t r;

  ctl(f, args, &r);
  if (!itest_exited(&r, want_exit))
    fail_msg("cshimctl %s %s: status %d: %s", cmd, id ? id : "", r.status, r.err);
  if (want_err && !strstr(r.err, want_err))
    fail_msg("cshimctl %s: expected `%s` in `%s`", cmd, want_err, r.err);
  itest_result_free(&r);
}

static void
test_debug_endpoints_follow_real_calls(void **state)
{
  fixture_t *f = *state;
  const char *debug_flag[] = {"-debug", NULL};
  char *before, *after, *vars, *st;
  json_t *j;
  struct stat sb;

  start_shim(f, debug_flag, -1);
  assert_true(itest_wait_socket(f->debug, 5000));
  assert_int_equal(stat(f->debug, &sb), 0);
  assert_int_equal(sb.st_mode & 0777, 0600);

  before = debug_get(f, f->debug, "metrics");
  assert_non_null(strstr(before, "# TYPE cshim_ttrpc_calls_total counter"));
  assert_true(itest_metric(before, "cshim_ttrpc_calls_total{service=\"containerd.task.v2.Task\","
                                   "method=\"State\",code=\"NotFound\"}") < 0);

  task_call(f, "state", "nope", 1, "RPC failed: NotFound");
  task_call(f, "state", "nope", 1, "RPC failed: NotFound");
  task_call(f, "connect", "nope", 0, NULL);

  after = debug_get(f, f->debug, "metrics");
  assert_int_equal((int)itest_metric(after, "cshim_ttrpc_calls_total{service=\"containerd.task."
                                            "v2.Task\",method=\"State\",code=\"NotFound\"}"),
                   2);
  assert_int_equal((int)itest_metric(after, "cshim_ttrpc_calls_total{service=\"containerd.task."
                                            "v2.Task\",method=\"Connect\",code=\"OK\"}"),
                   1);
  assert_int_equal((int)itest_metric(after, "cshim_ttrpc_call_duration_seconds_count{service="
                                            "\"containerd.task.v2.Task\",method=\"State\"}"),
                   2);
  assert_true(itest_metric(after, "cshim_ttrpc_connections_total") >=
              itest_metric(before, "cshim_ttrpc_connections_total") + 3);
  assert_true(itest_metric(after, "cshim_loop_iterations_total") >
              itest_metric(before, "cshim_loop_iterations_total"));
  assert_true(itest_metric(after, "cshim_process_resident_memory_bytes") > 0);
  assert_true(itest_metric(after, "cshim_process_open_fds") > 3);
  assert_true(itest_metric(after, "cshim_events_published_total") == 0);
  assert_true(itest_metric(after, "cshim_processes{state=\"running\"}") == 0);
  free(before);
  free(after);

  vars = debug_get(f, f->debug, "vars");
  j = json_loads(vars, 0, NULL);
  assert_non_null(j);
  assert_string_equal(json_string_value(json_object_get(json_object_get(j, "config"), "source")),
                      f->config);
  assert_int_equal(json_array_size(json_object_get(j, "plugins")), 4);
  assert_string_equal(
      json_string_value(json_object_get(json_array_get(json_object_get(j, "plugins"), 3), "uri")),
      "io.containerd.http.v1.debug");
  assert_string_equal(
      json_string_value(json_object_get(json_array_get(json_object_get(j, "plugins"), 3), "state")),
      "initialised");
  assert_string_equal(json_string_value(json_object_get(json_object_get(j, "shim"), "namespace")),
                      f->t.ns);
  assert_true(json_is_array(json_object_get(json_object_get(j, "state"), "tasks")));
  json_decref(j);
  free(vars);

  st = debug_get(f, f->debug, "state");
  assert_non_null(strstr(st, "tasks:"));
  free(st);
  stop_shim(f);
  /* Both sockets go with the shim. */
  assert_int_equal(access(f->debug, F_OK), -1);
  assert_int_equal(access(f->sock, F_OK), -1);
}

static void
test_debug_rejects_bad_requests_over_the_real_socket(void **state)
{
  fixture_t *f = *state;
  const char *debug_flag[] = {"-debug", NULL};
  static const char r404[] = "GET /nope HTTP/1.1\r\nHost: x\r\n\r\n";
  static const char r405[] = "DELETE /metrics HTTP/1.1\r\nHost: x\r\n\r\n";
  static const char r400[] = "NOT HTTP AT ALL\r\n\r\n";
  static const char r413[] = "POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n\r\nbody";
  static const char rsec[] = "GET /debug/pprof/profile?seconds=9999 HTTP/1.1\r\nHost: x\r\n\r\n";
  char *big, *answer;

  start_shim(f, debug_flag, -1);
  assert_true(itest_wait_socket(f->debug, 5000));
  assert_int_equal(itest_http(f->debug, r404, strlen(r404), NULL), 404);
  assert_int_equal(itest_http(f->debug, r405, strlen(r405), &answer), 405);
  assert_non_null(strstr(answer, "Allow: GET"));
  free(answer);
  assert_int_equal(itest_http(f->debug, r400, strlen(r400), NULL), 400);
  assert_int_equal(itest_http(f->debug, r413, strlen(r413), NULL), 413);
  assert_int_equal(itest_http(f->debug, rsec, strlen(rsec), NULL), 400);
  big = cshim_xmalloc(40000);
  strcpy(big, "GET /metrics HTTP/1.1\r\nX-Big: ");
  memset(big + strlen(big), 'b', 30000);
  strcpy(big + 30 + 30000, "\r\n\r\n");
  assert_int_equal(itest_http(f->debug, big, strlen(big), NULL), 431);
  free(big);
  /* Still serving, and the ttrpc side never noticed. */
  answer = debug_get(f, f->debug, "metrics");
  assert_int_equal((int)itest_metric(answer, "cshim_debug_http_rejected_total"), 6);
  free(answer);
  task_call(f, "connect", "x", 0, NULL);
  stop_shim(f);
}

static void
test_debug_profile_is_read_by_google_pprof(void **state)
{
  fixture_t *f = *state;
  const char *debug_flag[] = {"-debug", NULL};
  char prof[256];
  char *argv[8];
  const char *args[12];
  itest_result_t r, p;
  pid_t burner;

  if (access(GOOGLE_PPROF, X_OK) != 0)
    skip();
  start_shim(f, debug_flag, -1);
  assert_true(itest_wait_socket(f->debug, 5000));
  snprintf(prof, sizeof(prof), "%s/cpu.prof", f->t.dir);

  /* Calls during the profile give it samples: a child keeps asking for metrics. */
  burner = fork();
  assert_true(burner >= 0);
  if (burner == 0) {
    static const char req[] = "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n";
    for (int i = 0; i < 400; i++)
      itest_http(f->debug, req, strlen(req), NULL);
    _exit(0);
  }
  itest_track_pid(&f->t, burner);
  args[0] = "--socket";
  args[1] = f->debug;
  args[2] = "debug";
  args[3] = "profile";
  args[4] = "--seconds";
  args[5] = "2";
  args[6] = "--output";
  args[7] = prof;
  args[8] = NULL;
  ctl(f, args, &r);
  if (!itest_exited(&r, 0))
    fail_msg("cshimctl debug profile: %s", r.err);
  assert_non_null(strstr(r.out, "CPU profile"));
  itest_result_free(&r);
  kill(burner, SIGKILL);
  itest_wait_gone(burner, 2000);

  argv[0] = GOOGLE_PPROF;
  argv[1] = "--text";
  argv[2] = CSHIM_TEST_SHIM_BINARY;
  argv[3] = prof;
  argv[4] = NULL;
  itest_run(argv, NULL, NULL, 60000, &p);
  if (!itest_exited(&p, 0) || !strstr(p.out, "Total:"))
    fail_msg("google-pprof: status %d\nstdout: %s\nstderr: %s", p.status, p.out, p.err);
  itest_result_free(&p);
  /* The profile file on the shim's side is gone; the shim still serves. */
  task_call(f, "connect", "x", 0, NULL);
  stop_shim(f);
}

static void
test_debug_sigusr1_writes_the_state_dump(void **state)
{
  fixture_t *f = *state;

  start_shim(f, NULL, -1);
  kill(f->shim, SIGUSR1);
  assert_true(itest_wait_file_contains(f->log, "state dump: end", 5000));
  {
    char *log = itest_read_file(f->log);
    assert_non_null(strstr(log, "state dump: plugin `io.containerd.ttrpc.v1.task`"));
    assert_non_null(strstr(log, "state dump: plugin `io.containerd.http.v1.debug`"));
    assert_non_null(strstr(log, "skipped"));
    assert_non_null(strstr(log, "state dump: state `tasks`: []"));
    assert_non_null(strstr(log, "ttrpc: "));
    free(log);
  }
  stop_shim(f);
}

static void
test_debug_is_off_without_debugging(void **state)
{
  fixture_t *f = *state;

  start_shim(f, NULL, -1);
  assert_true(itest_wait_file_contains(f->log, "debugging is off", 5000));
  assert_int_equal(access(f->debug, F_OK), -1);
  task_call(f, "connect", "x", 0, NULL);
  stop_shim(f);
}

static void
test_debug_socket_flag_is_used(void **state)
{
  fixture_t *f = *state;
  char path[256];
  const char *flags[] = {"-debug-socket", path, NULL};
  char *m;

  snprintf(path, sizeof(path), "%s/flag/debug.sock", f->t.dir);
  start_shim(f, flags, -1);
  assert_true(itest_wait_socket(path, 5000));
  assert_int_equal(access(f->debug, F_OK), -1);
  m = debug_get(f, path, "metrics");
  assert_non_null(strstr(m, "cshim_info{version="));
  free(m);
  stop_shim(f);
  assert_int_equal(access(path, F_OK), -1);
}

/* containerd 2.x passes a listening debug socket as fd 4. */
static void
test_debug_serves_inherited_fd_4(void **state)
{
  fixture_t *f = *state;
  struct sockaddr_un sun = {.sun_family = AF_UNIX};
  char path[256];
  char *m;
  int fd;

  snprintf(path, sizeof(path), "%s/fd4.sock", f->t.dir);
  assert_true(strlen(path) < sizeof(sun.sun_path));
  memcpy(sun.sun_path, path, strlen(path) + 1);
  fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  assert_int_equal(bind(fd, (struct sockaddr *)&sun, sizeof(sun)), 0);
  assert_int_equal(listen(fd, 8), 0);
  start_shim(f, NULL, fd);
  close(fd);
  assert_true(itest_wait_file_contains(f->log, "debug endpoints on unix://", 5000));
  m = debug_get(f, path, "vars");
  assert_non_null(strstr(m, "\"debug_socket\": \""));
  free(m);
  assert_int_equal(access(f->debug, F_OK), -1);
  stop_shim(f);
}

int
main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_debug_endpoints_follow_real_calls, setup, teardown),
      cmocka_unit_test_setup_teardown(test_debug_rejects_bad_requests_over_the_real_socket, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_debug_profile_is_read_by_google_pprof, setup, teardown),
      cmocka_unit_test_setup_teardown(test_debug_sigusr1_writes_the_state_dump, setup, teardown),
      cmocka_unit_test_setup_teardown(test_debug_is_off_without_debugging, setup, teardown),
      cmocka_unit_test_setup_teardown(test_debug_socket_flag_is_used, setup, teardown),
      cmocka_unit_test_setup_teardown(test_debug_serves_inherited_fd_4, setup, teardown),
  };
  signal(SIGPIPE, SIG_IGN);
  return cmocka_run_group_tests(tests, NULL, NULL);
}
