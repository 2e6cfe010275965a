// SPDX-License-Identifier: Apache-2.0
// cshimctl against real shims without containerd: its errors, a full busybox container lifecycle
// on runc through cshim (with the debug socket and events), and the same calls against
// containerd's own containerd-shim-runc-v2.
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
#include <sys/wait.h>
#include <unistd.h>

#include <jansson.h>

#include <cshim/util.h>

#include "itest.h"

#include <cmocka.h>

#ifndef CSHIM_TEST_SHIM_BINARY
#error "CSHIM_TEST_SHIM_BINARY, CSHIM_TEST_CSHIMCTL and the plugin paths must be defined"
#endif

#define RUNC_SHIM "/usr/bin/containerd-shim-runc-v2"

typedef struct fixture_s
{
  itest_t t;
  char config[256];
  char grpc[200];   /* containerd's gRPC address as the shims are told (nobody serves it) */
  char events[256]; /* TTRPC_ADDRESS: `cshimctl events` serves it */
  char events_out[256];
  char path_env[4096];
  char config_env[300];
  char *address; /* the launched shim's ttrpc address */
  char *debug;   /* its debug address, if any */
  pid_t shim;
} fixture_t;

static int
setup(void **state)
{
  fixture_t *f = cshim_xmalloc0(sizeof(*f));
  cshim_autofree char *shim_dir = cshim_xstrdup(CSHIM_TEST_SHIM_BINARY);
  char *text;
  FILE *cfg;

  itest_init(&f->t, "ctl");
  snprintf(f->config, sizeof(f->config), "%s/cshim.yaml", f->t.dir);
  snprintf(f->grpc, sizeof(f->grpc), "%s/containerd.sock", f->t.dir);
  snprintf(f->events, sizeof(f->events), "%s.ttrpc", f->grpc);
  snprintf(f->events_out, sizeof(f->events_out), "%s/events.jsonl", f->t.dir);
  snprintf(f->path_env, sizeof(f->path_env), "PATH=%s:%s", dirname(shim_dir),
           getenv("PATH") ? getenv("PATH") : "/usr/bin:/bin");
  snprintf(f->config_env, sizeof(f->config_env), "CSHIM_CONFIG=%s", f->config);
  cshim_xasprintf(&text,
                  "version: 1\n"
                  "modules:\n  - %s\n  - %s\n  - %s\n  - %s\n"
                  "plugins:\n"
                  "  io.containerd.internal.v1.shutdown:\n    timeout: 5s\n",
                  CSHIM_TEST_SHUTDOWN_SO, CSHIM_TEST_PUBLISHER_SO, CSHIM_TEST_TASK_SO,
                  CSHIM_TEST_DEBUG_SO);
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
  free(f->address);
  free(f->debug);
  free(f);
  return 0;
}

/* cshimctl ARGS... with the fixture's PATH and config; the result is the caller's to free. */
static void
ctl_v(fixture_t *f, itest_result_t *r, va_list ap)
{
  char *argv[40];
  char *env[] = {f->path_env, f->config_env, NULL};
  size_t n = 0;
  const char *a;

  argv[n++] = CSHIM_TEST_CSHIMCTL;
  while ((a = va_arg(ap, const char *)) && n < 39)
    argv[n++] = (char *)a;
  argv[n] = NULL;
  itest_run(argv, env, NULL, 60000, r);
}

static void
ctl(fixture_t *f, itest_result_t *r, ...)
{
  va_list ap;

  va_start(ap, r);
  ctl_v(f, r, ap);
  va_end(ap);
}

/* cshimctl ARGS... that must succeed; returns its stdout (caller frees). */
static char *
ctl_ok(fixture_t *f, ...)
{
  itest_result_t r;
  va_list ap;
  char *out;

  va_start(ap, f);
  ctl_v(f, &r, ap);
  va_end(ap);
  if (!itest_exited(&r, 0))
    fail_msg("cshimctl failed (status %d): %s", r.status, r.err);
  out = cshim_steal_pointer(&r.out);
  itest_result_free(&r);
  return out;
}

static json_t *
ctl_json(fixture_t *f, const char *a1, const char *a2, const char *a3, const char *a4)
{
  cshim_autofree char *out =
      ctl_ok(f, "--json", "--socket", f->address, "-n", f->t.ns, a1, a2, a3, a4, NULL);
  json_t *j = json_loads(out, 0, NULL);

  if (j == NULL)
    fail_msg("not JSON: %s", out);
  return j;
}

static void
start_events(fixture_t *f)
{
  char *argv[] = {CSHIM_TEST_CSHIMCTL, "events", "--json", "--address", f->events, NULL};

  itest_spawn(&f->t, argv, NULL, NULL, f->events_out, NULL, -1);
  assert_true(itest_wait_socket(f->events, 5000));
}

static void
launch(fixture_t *f, const char *runtime, const char *id, const char *bundle)
{
  cshim_autofree char *out =
      ctl_ok(f, "launch", "--json", "--runtime", runtime, "-n", f->t.ns, "--id", id, "--bundle",
             bundle, "--address", f->grpc, "--debug", NULL);
  json_t *j = json_loads(out, 0, NULL);

  if (j == NULL)
    fail_msg("launch printed no JSON: %s", out);
  f->address = cshim_xstrdup(json_string_value(json_object_get(j, "address")));
  if (json_is_string(json_object_get(j, "debug_address")))
    f->debug = cshim_xstrdup(json_string_value(json_object_get(j, "debug_address")));
  f->shim = (pid_t)json_integer_value(json_object_get(j, "shim_pid"));
  /* The log relay ends by itself once the shim is gone; the test does not wait for that. */
  itest_track_pid(&f->t, (pid_t)json_integer_value(json_object_get(j, "log_relay_pid")));
  json_decref(j);
  assert_non_null(f->address);
  assert_true(strncmp(f->address, "unix://", 7) == 0);
  assert_true(f->shim > 0);
  itest_track_pid(&f->t, f->shim);
  itest_track_path(&f->t, f->address + 7);
  if (f->debug)
    itest_track_path(&f->t, f->debug + 7);
}

static void
shutdown_and_teardown(fixture_t *f, const char *runtime, const char *id, const char *bundle)
{
  cshim_autofree char *addr_file = NULL;
  char *out;

  free(ctl_ok(f, "--socket", f->address, "-n", f->t.ns, "shutdown", id, NULL));
  if (!itest_wait_gone(f->shim, 20000))
    fail_msg("the shim (pid %d) did not exit after Shutdown", (int)f->shim);
  out = ctl_ok(f, "teardown", "--runtime", runtime, "-n", f->t.ns, "--id", id, "--bundle", bundle,
               "--address", f->grpc, NULL);
  assert_non_null(strstr(out, "exit status"));
  free(out);
  cshim_xasprintf(&addr_file, "%s/address", bundle);
  assert_int_equal(access(addr_file, F_OK), -1);
  assert_int_equal(access(f->address + 7, F_OK), -1);
}

static bool
events_seen(fixture_t *f, const char *const *topics, const char *id)
{
  for (int i = 0; i < 100; i++) {
    cshim_autofree char *text = itest_read_file(f->events_out);
    bool all = text != NULL;

    for (const char *const *t = topics; all && *t; t++) {
      char needle[128];
      snprintf(needle, sizeof(needle), "\"topic\":\"%s\"", *t);
      all = strstr(text, needle) != NULL;
    }
    if (all && strstr(text, id))
      return true;
    usleep(50000);
  }
  return false;
}

/* `stats` of a running container decodes its cgroup metrics: a table with at least one process
   in the pids row, and the same figures as JSON. */
static void
check_stats(fixture_t *f, const char *id)
{
  cshim_autofree char *text = ctl_ok(f, "--socket", f->address, "-n", f->t.ns, "stats", id, NULL);
  json_t *j, *pids;
  char *row;
  long n = 0;

  if (strstr(text, "type: io.containerd.cgroups.v") == NULL)
    fail_msg("stats: %s", text);
  assert_non_null(strstr(text, "\nMETRIC "));
  row = strstr(text, "\npids.current ");
  assert_non_null(row);
  assert_int_equal(sscanf(row, " pids.current %ld", &n), 1);
  assert_true(n >= 1);
  j = ctl_json(f, "stats", id, NULL, NULL);
  assert_non_null(strstr(json_string_value(json_object_get(j, "type_url")), "cgroups.v"));
  pids = json_object_get(json_object_get(j, "metrics"), "pids");
  assert_true(json_integer_value(json_object_get(pids, "current")) >= 1);
  json_decref(j);
}

/* Wait until the debug plugin says a profile runs. */
static void
wait_profiling(fixture_t *f)
{
  for (int i = 0; i < 100; i++) {
    cshim_autofree char *vars = ctl_ok(f, "--socket", f->debug, "debug", "vars", NULL);
    if (strstr(vars, "\"profiling\": true"))
      return;
    usleep(20000);
  }
  fail_msg("the profile did not start");
}

/* ---- errors -----------------------------------------------------------------------------------
 */

static void
test_cshimctl_says_what_went_wrong(void **state)
{
  fixture_t *f = *state;
  struct sockaddr_un sun = {.sun_family = AF_UNIX};
  char missing[256], stale[256], want[512];
  itest_result_t r;
  int fd;

  snprintf(missing, sizeof(missing), "%s/none.sock", f->t.dir);
  ctl(f, &r, "--socket", missing, "state", "c1", NULL);
  assert_true(itest_exited(&r, 1));
  snprintf(want, sizeof(want), "cshimctl: connect `%s`: No such file or directory\n", missing);
  assert_string_equal(r.err, want);
  itest_result_free(&r);

  snprintf(stale, sizeof(stale), "%s/stale.sock", f->t.dir);
  assert_true(strlen(stale) < sizeof(sun.sun_path));
  memcpy(sun.sun_path, stale, strlen(stale) + 1);
  fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  assert_int_equal(bind(fd, (struct sockaddr *)&sun, sizeof(sun)), 0);
  close(fd);
  ctl(f, &r, "--address", stale, "pids", "c1", NULL);
  assert_true(itest_exited(&r, 1));
  snprintf(want, sizeof(want), "cshimctl: connect `%s`: Connection refused\n", stale);
  assert_string_equal(r.err, want);
  itest_result_free(&r);

  ctl(f, &r, "--socket", missing, "debug", "metrics", NULL);
  assert_true(itest_exited(&r, 1));
  assert_non_null(strstr(r.err, "No such file or directory"));
  itest_result_free(&r);

  ctl(f, &r, "--socket", missing, "state", NULL);
  assert_true(itest_exited(&r, 2));
  assert_non_null(strstr(r.err, "a container ID is required"));
  itest_result_free(&r);
  ctl(f, &r, "--socket", missing, "frobnicate", "x", NULL);
  assert_true(itest_exited(&r, 2));
  assert_non_null(strstr(r.err, "unknown command `frobnicate`"));
  itest_result_free(&r);
  ctl(f, &r, "--timeout", "soon", "connect", NULL);
  assert_true(itest_exited(&r, 2));
  itest_result_free(&r);

  ctl(f, &r, "launch", "--runtime", "io.containerd.nosuch.v9", "--id", "x", "--bundle", f->t.dir,
      NULL);
  assert_true(itest_exited(&r, 1));
  assert_non_null(strstr(r.err, "binary `containerd-shim-nosuch-v9` not found in PATH"));
  itest_result_free(&r);

  ctl(f, &r, "--help", NULL);
  assert_true(itest_exited(&r, 0));
  assert_non_null(strstr(r.out, "launch"));
  assert_non_null(strstr(r.out, "debug metrics"));
  itest_result_free(&r);
}

/* ---- cshim ------------------------------------------------------------------------------------
 */

static void
test_cshimctl_runs_a_container_through_cshim(void **state)
{
  fixture_t *f = *state;
  static const char *const args[] = {"sh", "-c", "echo hello from cshimctl; exec sleep 300", NULL};
  static const char *const topics[] = {"/tasks/create", "/tasks/start", "/tasks/exit",
                                       "/tasks/delete", NULL};
  cshim_autofree char *bundle = NULL;
  char out_file[256], err_file[256], prof[256], *text, *metrics, pid_text[32];
  pid_t profiler;
  json_t *j, *task;
  itest_result_t r;
  int pid;

  if (!itest_can_run_containers())
    skip();
  bundle = itest_make_bundle(&f->t, "c1", args);
  snprintf(out_file, sizeof(out_file), "%s/stdout", f->t.dir);
  snprintf(err_file, sizeof(err_file), "%s/stderr", f->t.dir);
  fclose(fopen(out_file, "w"));
  fclose(fopen(err_file, "w"));
  start_events(f);
  launch(f, "io.containerd.cshim.v2", "c1", bundle);
  if (f->debug == NULL)
    fail_msg("launch found no debug socket for cshim started with --debug");

  /* Before anything: the debug socket answers, nothing runs. */
  metrics = ctl_ok(f, "--socket", f->debug, "debug", "metrics", NULL);
  assert_true(itest_metric(metrics, "cshim_ttrpc_calls_total{service=\"containerd.task.v2.Task\","
                                    "method=\"Create\",code=\"OK\"}") < 0);
  free(metrics);

  /* A CPU profile runs while the shim spawns runc: SIGPROF must not reach the children (spawn
     resets dispositions; interval timers do not survive fork). */
  snprintf(prof, sizeof(prof), "%s/cpu.prof", f->t.dir);
  {
    char *argv[] = {CSHIM_TEST_CSHIMCTL, "--socket", f->debug,   "debug", "profile",
                    "--seconds",         "2",        "--output", prof,    NULL};
    profiler = itest_spawn(&f->t, argv, NULL, NULL, NULL, NULL, -1);
  }
  wait_profiling(f);
  text = ctl_ok(f, "--socket", f->address, "-n", f->t.ns, "create", "c1", "--bundle", bundle,
                "--stdout", out_file, "--stderr", err_file, NULL);
  assert_int_equal(sscanf(text, "pid %d", &pid), 1);
  assert_true(pid > 0);
  free(text);

  j = ctl_json(f, "state", "c1", NULL, NULL);
  assert_string_equal(json_string_value(json_object_get(j, "status")), "created");
  assert_int_equal(json_integer_value(json_object_get(j, "pid")), pid);
  json_decref(j);

  text = ctl_ok(f, "--json", "--socket", f->debug, "debug", "state", NULL);
  j = json_loads(text, 0, NULL);
  task = json_array_get(json_object_get(j, "tasks"), 0);
  assert_string_equal(json_string_value(json_object_get(task, "container_id")), "c1");
  assert_string_equal(json_string_value(json_object_get(task, "status")), "created");
  assert_string_equal(json_string_value(json_object_get(task, "io")), "fifo");
  json_decref(j);
  free(text);

  free(ctl_ok(f, "--socket", f->address, "-n", f->t.ns, "start", "c1", NULL));
  assert_true(itest_wait_file_contains(out_file, "hello from cshimctl", 10000));
  j = ctl_json(f, "state", "c1", NULL, NULL);
  assert_string_equal(json_string_value(json_object_get(j, "status")), "running");
  json_decref(j);
  text = ctl_ok(f, "--socket", f->address, "-n", f->t.ns, "pids", "c1", NULL);
  snprintf(pid_text, sizeof(pid_text), "%d ", pid);
  assert_non_null(strstr(text, pid_text));
  free(text);
  text = ctl_ok(f, "--socket", f->debug, "debug", "state", NULL);
  assert_non_null(strstr(text, "running"));
  free(text);
  {
    struct stat st;
    int status = -1;
    assert_int_equal(waitpid(profiler, &status, 0), profiler);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    assert_int_equal(stat(prof, &st), 0);
    assert_true(st.st_size > 0);
  }

  check_stats(f, "c1");
  metrics = ctl_ok(f, "--socket", f->debug, "debug", "metrics", NULL);
  assert_int_equal((int)itest_metric(metrics, "cshim_processes{state=\"running\"}"), 1);
  assert_int_equal((int)itest_metric(metrics, "cshim_ttrpc_calls_total{service=\"containerd.task."
                                              "v2.Task\",method=\"Create\",code=\"OK\"}"),
                   1);
  assert_int_equal((int)itest_metric(metrics, "cshim_ttrpc_calls_total{service=\"containerd.task."
                                              "v2.Task\",method=\"Start\",code=\"OK\"}"),
                   1);
  free(metrics);

  ctl(f, &r, "--socket", f->address, "-n", f->t.ns, "start", "nope", NULL);
  assert_true(itest_exited(&r, 1));
  assert_non_null(strstr(r.err, "cshimctl: start: RPC failed: NotFound: "));
  itest_result_free(&r);

  free(ctl_ok(f, "--socket", f->address, "-n", f->t.ns, "kill", "c1", "--signal", "KILL", NULL));
  text = ctl_ok(f, "--socket", f->address, "-n", f->t.ns, "wait", "c1", NULL);
  assert_non_null(strstr(text, "exit status 137 at "));
  free(text);
  j = ctl_json(f, "delete", "c1", NULL, NULL);
  assert_int_equal(json_integer_value(json_object_get(j, "exit_status")), 137);
  assert_int_equal(json_integer_value(json_object_get(j, "pid")), pid);
  json_decref(j);

  if (!events_seen(f, topics, "\"container_id\":\"c1\""))
    fail_msg("events: %s", itest_read_file(f->events_out));
  metrics = ctl_ok(f, "--socket", f->debug, "debug", "metrics", NULL);
  assert_true(itest_metric(metrics, "cshim_events_published_total") >= 4);
  assert_int_equal((int)itest_metric(metrics, "cshim_processes{state=\"running\"}"), 0);
  free(metrics);

  shutdown_and_teardown(f, "io.containerd.cshim.v2", "c1", bundle);
  assert_int_equal(access(f->debug + 7, F_OK), -1);
  {
    cshim_autofree char *log_path = NULL;
    cshim_autofree char *log = NULL;
    cshim_xasprintf(&log_path, "%s/shim.log", bundle);
    assert_true(itest_wait_file_contains(log_path, "shim exited", 5000));
    log = itest_read_file(log_path);
    assert_non_null(strstr(log, "serving on"));
  }
}

/* ---- the shim next to cshimctl ----------------------------------------------------------------
 */

/* As installed (bin/cshimctl beside bin/containerd-shim-cshim-v2), cshimctl finds the shim when
   it is not on PATH, for launch and teardown alike; without it the error names both places. */
static void
test_cshimctl_finds_the_shim_next_to_itself(void **state)
{
  fixture_t *f = *state;
  cshim_autofree char *bin = NULL;
  cshim_autofree char *ctl_copy = NULL;
  cshim_autofree char *shim_link = NULL;
  cshim_autofree char *bundle = NULL;
  cshim_autofree char *want = NULL;
  char *env[] = {"PATH=/usr/bin:/bin", f->config_env, NULL};
  itest_result_t r;
  json_t *j;

  cshim_xasprintf(&bin, "%s/bin", f->t.dir);
  cshim_xasprintf(&ctl_copy, "%s/cshimctl", bin);
  cshim_xasprintf(&shim_link, "%s/containerd-shim-cshim-v2", bin);
  cshim_xasprintf(&bundle, "%s/n1", f->t.dir);
  assert_int_equal(mkdir(bin, 0755), 0);
  assert_int_equal(mkdir(bundle, 0755), 0);
  {
    char *const cp[] = {"/bin/cp", CSHIM_TEST_CSHIMCTL, ctl_copy, NULL};
    itest_run(cp, NULL, NULL, 10000, &r);
    assert_true(itest_exited(&r, 0));
    itest_result_free(&r);
  }
  {
    char *const argv[] = {ctl_copy,   "launch", "--runtime", "io.containerd.cshim.v2",
                          "-n",       f->t.ns,  "--id",      "n1",
                          "--bundle", bundle,   "--address", f->grpc,
                          NULL};
    itest_run(argv, env, NULL, 60000, &r);
    assert_true(itest_exited(&r, 1));
    cshim_xasprintf(&want, "binary `containerd-shim-cshim-v2` not found in PATH or in `%s`", bin);
    if (strstr(r.err, want) == NULL)
      fail_msg("launch: %s", r.err);
    itest_result_free(&r);
  }
  if (geteuid() != 0)
    skip();
  assert_int_equal(symlink(CSHIM_TEST_SHIM_BINARY, shim_link), 0);
  {
    char *const argv[] = {ctl_copy, "launch",    "--json", "--runtime", "io.containerd.cshim.v2",
                          "-n",     f->t.ns,     "--id",   "n1",        "--bundle",
                          bundle,   "--address", f->grpc,  NULL};
    itest_run(argv, env, NULL, 60000, &r);
    if (!itest_exited(&r, 0))
      fail_msg("launch: %s", r.err);
    j = json_loads(r.out, 0, NULL);
    assert_non_null(j);
    assert_string_equal(json_string_value(json_object_get(j, "binary")), shim_link);
    f->address = cshim_xstrdup(json_string_value(json_object_get(j, "address")));
    f->shim = (pid_t)json_integer_value(json_object_get(j, "shim_pid"));
    itest_track_pid(&f->t, (pid_t)json_integer_value(json_object_get(j, "log_relay_pid")));
    itest_track_pid(&f->t, f->shim);
    itest_track_path(&f->t, f->address + 7);
    json_decref(j);
    itest_result_free(&r);
  }
  {
    char *const argv[] = {ctl_copy, "--socket", f->address, "-n", f->t.ns, "shutdown", NULL};
    itest_run(argv, env, NULL, 60000, &r);
    assert_true(itest_exited(&r, 0));
    itest_result_free(&r);
  }
  assert_true(itest_wait_gone(f->shim, 20000));
  {
    char *const argv[] = {ctl_copy,   "teardown", "--runtime", "io.containerd.cshim.v2",
                          "-n",       f->t.ns,    "--id",      "n1",
                          "--bundle", bundle,     "--address", f->grpc,
                          NULL};
    itest_run(argv, env, NULL, 60000, &r);
    if (!itest_exited(&r, 0))
      fail_msg("teardown: %s", r.err);
    assert_non_null(strstr(r.out, "exit status"));
    itest_result_free(&r);
  }
}

/* ---- containerd's runc shim -------------------------------------------------------------------
 */

static void
test_cshimctl_drives_containerds_runc_shim(void **state)
{
  fixture_t *f = *state;
  static const char *const args[] = {"sleep", "300", NULL};
  static const char *const topics[] = {"/tasks/create",       "/tasks/start",  "/tasks/exec-added",
                                       "/tasks/exec-started", "/tasks/paused", "/tasks/resumed",
                                       "/tasks/exit",         "/tasks/delete", NULL};
  cshim_autofree char *bundle = NULL;
  char exec_out[256], *text;
  json_t *j;
  int pid;

  if (!itest_can_run_containers() || access(RUNC_SHIM, X_OK) != 0)
    skip();
  /* containerd's layout: the bundle directory is named after the task (the runc shim's delete
     relies on it). */
  bundle = itest_make_bundle(&f->t, "r1", args);
  snprintf(exec_out, sizeof(exec_out), "%s/exec.out", f->t.dir);
  fclose(fopen(exec_out, "w"));
  start_events(f);
  launch(f, "io.containerd.runc.v2", "r1", bundle);
  assert_null(f->debug);

  text = ctl_ok(f, "--socket", f->address, "-n", f->t.ns, "connect", "r1", NULL);
  assert_non_null(strstr(text, "shim pid "));
  free(text);
  text = ctl_ok(f, "--socket", f->address, "-n", f->t.ns, "create", "r1", "--bundle", bundle, NULL);
  assert_int_equal(sscanf(text, "pid %d", &pid), 1);
  free(text);
  free(ctl_ok(f, "--socket", f->address, "-n", f->t.ns, "start", "r1", NULL));

  /* The State call against containerd's own shim. */
  j = ctl_json(f, "state", "r1", NULL, NULL);
  assert_string_equal(json_string_value(json_object_get(j, "id")), "r1");
  assert_string_equal(json_string_value(json_object_get(j, "status")), "running");
  assert_int_equal(json_integer_value(json_object_get(j, "pid")), pid);
  assert_string_equal(json_string_value(json_object_get(j, "bundle")), bundle);
  json_decref(j);

  free(ctl_ok(f, "--socket", f->address, "-n", f->t.ns, "exec", "r1", "e1", "--stdout", exec_out,
              "--stderr", exec_out, "--", "sh", "-c", "echo exec says hi", NULL));
  free(ctl_ok(f, "--socket", f->address, "-n", f->t.ns, "start", "r1", "--exec-id", "e1", NULL));
  text = ctl_ok(f, "--socket", f->address, "-n", f->t.ns, "wait", "r1", "--exec-id", "e1", NULL);
  assert_non_null(strstr(text, "exit status 0 "));
  free(text);
  assert_true(itest_wait_file_contains(exec_out, "exec says hi", 5000));
  free(ctl_ok(f, "--socket", f->address, "-n", f->t.ns, "delete", "r1", "--exec-id", "e1", NULL));

  free(ctl_ok(f, "--socket", f->address, "-n", f->t.ns, "pause", "r1", NULL));
  j = ctl_json(f, "state", "r1", NULL, NULL);
  assert_string_equal(json_string_value(json_object_get(j, "status")), "paused");
  json_decref(j);
  free(ctl_ok(f, "--socket", f->address, "-n", f->t.ns, "resume", "r1", NULL));

  check_stats(f, "r1");
  j = ctl_json(f, "pids", "r1", NULL, NULL);
  assert_int_equal(json_integer_value(json_object_get(json_array_get(j, 0), "pid")), pid);
  json_decref(j);

  free(ctl_ok(f, "--socket", f->address, "-n", f->t.ns, "kill", "r1", "--signal", "SIGKILL", NULL));
  text = ctl_ok(f, "--socket", f->address, "-n", f->t.ns, "wait", "r1", NULL);
  assert_non_null(strstr(text, "exit status 137 "));
  free(text);
  free(ctl_ok(f, "--socket", f->address, "-n", f->t.ns, "delete", "r1", NULL));
  if (!events_seen(f, topics, "\"container_id\":\"r1\""))
    fail_msg("events: %s", itest_read_file(f->events_out));

  shutdown_and_teardown(f, "io.containerd.runc.v2", "r1", bundle);
}

int
main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_cshimctl_says_what_went_wrong, setup, teardown),
      cmocka_unit_test_setup_teardown(test_cshimctl_runs_a_container_through_cshim, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_cshimctl_drives_containerds_runc_shim, setup, teardown),
      cmocka_unit_test_setup_teardown(test_cshimctl_finds_the_shim_next_to_itself, setup, teardown),
  };
  signal(SIGPIPE, SIG_IGN);
  return cmocka_run_group_tests(tests, NULL, NULL);
}
