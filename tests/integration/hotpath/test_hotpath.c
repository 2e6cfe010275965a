// SPDX-License-Identifier: Apache-2.0
// The hot paths of a real shim with a running busybox container: 10,000 State, Connect and Wait
// calls (and Pids and Stats) start no process, counted by the shim itself in the debug plugin's
// /metrics; a cgroup frozen by hand shows as paused in State, still without a process. Once with
// runc, once with crun when it is installed.
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <libgen.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <jansson.h>
#include <linux/magic.h>
#include <uv.h>

#include <cshim/ttrpc.h>
#include <cshim/ttrpc_client.h>
#include <cshim/util.h>

#include "containerd/task/v2/shim.pb-c.h"
#include "itest.h"

#include <cmocka.h>

#ifndef CSHIM_TEST_SHIM_BINARY
#error "CSHIM_TEST_SHIM_BINARY, CSHIM_TEST_CSHIMCTL and the plugin paths must be defined"
#endif

#define TASK_SERVICE "containerd.task.v2.Task"
#define N_CALLS 10000 /* State (init and exec), Connect and Wait, in turn */
#define N_EXTRA 1000  /* Pids and Stats, in turn */
#define IN_FLIGHT 16
#define STARTED "cshim_processes_started_total"

typedef struct fixture_s
{
  itest_t t;
  const char *runtime; /* "runc" or "crun" */
  char crun_root[200]; /* crun's --root (its state is not runc's: cleaned up separately) */
  char config[256];
  char grpc[200];
  char path_env[4096];
  char config_env[300];
  char id[64];
  char *address;
  char *debug;
  pid_t shim;
} fixture_t;

static int
setup_with(void **state, const char *runtime)
{
  fixture_t *f = cshim_xmalloc0(sizeof(*f));
  cshim_autofree char *shim_dir = cshim_xstrdup(CSHIM_TEST_SHIM_BINARY);
  cshim_autofree char *task_section = NULL;
  char *text;
  FILE *cfg;

  itest_init(&f->t, "hot");
  f->runtime = runtime;
  snprintf(f->id, sizeof(f->id), "hot-%s-%d", runtime, (int)getpid());
  snprintf(f->config, sizeof(f->config), "%s/cshim.yaml", f->t.dir);
  snprintf(f->grpc, sizeof(f->grpc), "%s/containerd.sock", f->t.dir);
  snprintf(f->crun_root, sizeof(f->crun_root), "%s/crun-root", f->t.dir);
  snprintf(f->path_env, sizeof(f->path_env), "PATH=%s:%s", dirname(shim_dir),
           getenv("PATH") ? getenv("PATH") : "/usr/bin:/bin");
  snprintf(f->config_env, sizeof(f->config_env), "CSHIM_CONFIG=%s", f->config);
  if (strcmp(runtime, "crun") == 0)
    cshim_xasprintf(&task_section,
                    "  io.containerd.ttrpc.v1.task:\n    runtime: crun\n    runtime_root: %s\n",
                    f->crun_root);
  else
    task_section = cshim_xstrdup("");
  cshim_xasprintf(&text,
                  "version: 1\n"
                  "modules:\n  - %s\n  - %s\n  - %s\n  - %s\n"
                  "plugins:\n"
                  "  io.containerd.internal.v1.shutdown:\n    timeout: 5s\n"
                  "  io.containerd.event.v1.publisher:\n"
                  "    max_retries: 0\n    retry_base: 10ms\n    retry_max: 20ms\n"
                  "    timeout: 100ms\n"
                  "%s",
                  CSHIM_TEST_SHUTDOWN_SO, CSHIM_TEST_PUBLISHER_SO, CSHIM_TEST_TASK_SO,
                  CSHIM_TEST_DEBUG_SO, task_section);
  cfg = fopen(f->config, "w");
  assert_non_null(cfg);
  fputs(text, cfg);
  fclose(cfg);
  free(text);
  *state = f;
  return 0;
}

static int
setup_runc(void **state)
{
  return setup_with(state, "runc");
}

static int
setup_crun(void **state)
{
  return setup_with(state, "crun");
}

static void run_maybe_private(fixture_t *f, char *const *argv, itest_result_t *r);

static int
teardown(void **state)
{
  fixture_t *f = *state;

  /* A failed test may leave its crun container: remove it before the tree goes. */
  if (strcmp(f->runtime, "crun") == 0 && access(f->crun_root, F_OK) == 0) {
    char *const del[] = {"/usr/bin/crun", "--root", f->crun_root, "delete", "-f", f->id, NULL};
    itest_result_t r;
    run_maybe_private(f, del, &r);
    itest_result_free(&r);
  }
  itest_fini(&f->t);
  free(f->address);
  free(f->debug);
  free(f);
  return 0;
}

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

/* crun 1.8 refuses a hybrid host whose cgroup2 mount carries controllers; without that mount
   (in a private mount namespace, the host untouched) it sees plain v1. */
static bool
needs_private_mounts(const fixture_t *f)
{
  cshim_autofree char *controllers = itest_read_file("/sys/fs/cgroup/unified/cgroup.controllers");
  return strcmp(f->runtime, "crun") == 0 && controllers && controllers[0] && controllers[0] != '\n';
}

/* argv run by itself, or in a private mount namespace without /sys/fs/cgroup/unified. */
static void
run_maybe_private(fixture_t *f, char *const *argv, itest_result_t *r)
{
  char *env[] = {f->path_env, f->config_env, NULL};
  char *wrapped[48];
  size_t n = 0;

  if (!needs_private_mounts(f)) {
    itest_run(argv, env, NULL, 60000, r);
    return;
  }
  wrapped[n++] = "/usr/bin/unshare";
  wrapped[n++] = "--mount";
  wrapped[n++] = "--propagation";
  wrapped[n++] = "private";
  wrapped[n++] = "--";
  wrapped[n++] = "/bin/sh";
  wrapped[n++] = "-c";
  wrapped[n++] = "umount /sys/fs/cgroup/unified 2>/dev/null; exec \"$@\"";
  wrapped[n++] = "sh";
  for (; *argv && n < 47; argv++)
    wrapped[n++] = *argv;
  wrapped[n] = NULL;
  itest_run(wrapped, env, NULL, 60000, r);
}

static void
launch(fixture_t *f, const char *bundle)
{
  char *argv[] = {CSHIM_TEST_CSHIMCTL,
                  "launch",
                  "--json",
                  "--runtime",
                  "io.containerd.cshim.v2",
                  "-n",
                  f->t.ns,
                  "--id",
                  f->id,
                  "--bundle",
                  (char *)bundle,
                  "--address",
                  f->grpc,
                  "--debug",
                  NULL};
  cshim_autofree char *out = NULL;
  itest_result_t r;
  json_t *j;

  run_maybe_private(f, argv, &r);
  if (!itest_exited(&r, 0))
    fail_msg("cshimctl launch failed (status %d): %s", r.status, r.err);
  out = cshim_steal_pointer(&r.out);
  itest_result_free(&r);
  j = json_loads(out, 0, NULL);

  if (j == NULL)
    fail_msg("launch printed no JSON: %s", out);
  f->address = cshim_xstrdup(json_string_value(json_object_get(j, "address")));
  if (json_is_string(json_object_get(j, "debug_address")))
    f->debug = cshim_xstrdup(json_string_value(json_object_get(j, "debug_address")));
  f->shim = (pid_t)json_integer_value(json_object_get(j, "shim_pid"));
  itest_track_pid(&f->t, (pid_t)json_integer_value(json_object_get(j, "log_relay_pid")));
  json_decref(j);
  assert_non_null(f->address);
  assert_true(f->shim > 0);
  itest_track_pid(&f->t, f->shim);
  itest_track_path(&f->t, f->address + 7);
  if (f->debug == NULL)
    fail_msg("launch found no debug socket for cshim started with --debug");
  itest_track_path(&f->t, f->debug + 7);
}

/* The sum of every cshim_processes_started_total sample, and the value of one of them. */
static double
started_total(fixture_t *f, const char *kind, const char *command, double *one)
{
  cshim_autofree char *text = ctl_ok(f, "--socket", f->debug, "debug", "metrics", NULL);
  cshim_autofree char *want = NULL;
  double sum = 0;

  if (strstr(text, "# TYPE " STARTED " counter") == NULL)
    fail_msg("no %s in the metrics:\n%s", STARTED, text);
  for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n"))
    if (strncmp(line, STARTED "{", strlen(STARTED) + 1) == 0)
      sum += strtod(strrchr(line, ' ') + 1, NULL);
  if (one) {
    cshim_autofree char *again = ctl_ok(f, "--socket", f->debug, "debug", "metrics", NULL);
    cshim_xasprintf(&want, STARTED "{kind=\"%s\",command=\"%s\"}", kind, command);
    *one = itest_metric(again, want);
  }
  return sum;
}

/* ---- many calls on one connection, IN_FLIGHT at a time ---- */

typedef struct burst_s
{
  uv_loop_t loop;
  cshim_ttrpc_client_t *client;
  const char *id;
  uint32_t pid;
  size_t n_total, sent, done;
  size_t failures;
  char first_failure[512];
  bool extra; /* Pids and Stats instead of State/Connect/Wait */
} burst_t;

static void send_next(burst_t *b);

static void
note_failure(burst_t *b, const char *what)
{
  if (b->failures++ == 0)
    snprintf(b->first_failure, sizeof(b->first_failure), "%s", what);
}

static void
reply_cb(void *data, ProtobufCMessage *resp, cshim_error_t *err)
{
  burst_t *b = data;
  char why[400];

  b->done++;
  if (err && *err) {
    snprintf(why, sizeof(why), "call failed: %s", (*err)->msg);
    note_failure(b, why);
  } else if (resp->descriptor == &containerd__task__v2__state_response__descriptor) {
    Containerd__Task__V2__StateResponse *s = (void *)resp;
    bool is_exec = s->exec_id && s->exec_id[0];
    Containerd__V1__Types__Status want =
        is_exec ? CONTAINERD__V1__TYPES__STATUS__STOPPED : CONTAINERD__V1__TYPES__STATUS__RUNNING;
    if (s->status != want || (!is_exec && s->pid != b->pid)) {
      snprintf(why, sizeof(why), "State %s: status %d pid %u", is_exec ? "exec" : "init",
               (int)s->status, s->pid);
      note_failure(b, why);
    }
  } else if (resp->descriptor == &containerd__task__v2__connect_response__descriptor) {
    if (((Containerd__Task__V2__ConnectResponse *)resp)->task_pid != b->pid)
      note_failure(b, "Connect: wrong task pid");
  } else if (resp->descriptor == &containerd__task__v2__wait_response__descriptor) {
    if (((Containerd__Task__V2__WaitResponse *)resp)->exit_status != 0)
      note_failure(b, "Wait: the exec's exit status is not 0");
  } else if (resp->descriptor == &containerd__task__v2__pids_response__descriptor) {
    Containerd__Task__V2__PidsResponse *p = (void *)resp;
    bool found = false;
    for (size_t i = 0; i < p->n_processes; i++)
      found = found || p->processes[i]->pid == b->pid;
    if (!found)
      note_failure(b, "Pids: init's pid is not listed");
  } else if (resp->descriptor == &containerd__task__v2__stats_response__descriptor) {
    if (((Containerd__Task__V2__StatsResponse *)resp)->stats == NULL)
      note_failure(b, "Stats: no stats");
  }
  if (resp)
    protobuf_c_message_free_unpacked(resp, NULL);
  send_next(b);
}

static void
send_next(burst_t *b)
{
  cshim_error_t err = NULL;
  const ProtobufCMessageDescriptor *desc;
  const char *method;
  int ret;

  if (b->sent == b->n_total)
    return;
  /* Every request below is {1: id, 2: exec_id} or {1: id}: one message of each shape. */
  Containerd__Task__V2__StateRequest st = CONTAINERD__TASK__V2__STATE_REQUEST__INIT;
  Containerd__Task__V2__ConnectRequest co = CONTAINERD__TASK__V2__CONNECT_REQUEST__INIT;
  Containerd__Task__V2__WaitRequest wa = CONTAINERD__TASK__V2__WAIT_REQUEST__INIT;
  Containerd__Task__V2__PidsRequest pi = CONTAINERD__TASK__V2__PIDS_REQUEST__INIT;
  Containerd__Task__V2__StatsRequest sr = CONTAINERD__TASK__V2__STATS_REQUEST__INIT;
  const ProtobufCMessage *req;
  size_t k = b->sent++;

  st.id = co.id = wa.id = pi.id = sr.id = (char *)b->id;
  if (b->extra) {
    if (k % 2 == 0) {
      method = "Pids", req = &pi.base, desc = &containerd__task__v2__pids_response__descriptor;
    } else {
      method = "Stats", req = &sr.base, desc = &containerd__task__v2__stats_response__descriptor;
    }
  } else
    switch (k % 4) {
    case 0:
      method = "State", req = &st.base, desc = &containerd__task__v2__state_response__descriptor;
      break;
    case 1:
      st.exec_id = "e1";
      method = "State", req = &st.base, desc = &containerd__task__v2__state_response__descriptor;
      break;
    case 2:
      method = "Connect", req = &co.base;
      desc = &containerd__task__v2__connect_response__descriptor;
      break;
    default:
      wa.exec_id = "e1";
      method = "Wait", req = &wa.base, desc = &containerd__task__v2__wait_response__descriptor;
      break;
    }
  ret =
      cshim_ttrpc_client_call(b->client, TASK_SERVICE, method, req, desc, NULL, reply_cb, b, &err);
  if (ret < 0) {
    b->done++;
    note_failure(b, err->msg);
    cshim_error_release(&err);
  }
}

static void
burst(const char *address, const char *ns, const char *id, uint32_t pid, size_t n, bool extra)
{
  burst_t b = {.id = id, .pid = pid, .n_total = n, .extra = extra};
  cshim_error_t err = NULL;

  assert_int_equal(uv_loop_init(&b.loop), 0);
  if (cshim_ttrpc_client_new(&b.loop, address, NULL, &b.client, &err) < 0)
    fail_msg("client: %s", err->msg);
  cshim_ttrpc_client_add_metadata(b.client, CSHIM_TTRPC_NAMESPACE_KEY, ns);
  for (int i = 0; i < IN_FLIGHT; i++)
    send_next(&b);
  while (b.done < b.n_total && uv_run(&b.loop, UV_RUN_ONCE))
    ;
  cshim_ttrpc_client_close(b.client, NULL, NULL);
  uv_run(&b.loop, UV_RUN_DEFAULT);
  assert_int_equal(uv_loop_close(&b.loop), 0);
  if (b.failures)
    fail_msg("%zu of %zu calls went wrong; the first: %s", b.failures, n, b.first_failure);
  assert_int_equal(b.done, n);
}

/* ---- the container's freezer, set by hand ---- */

/* The container's freezer control file and the values that freeze and thaw it, or false. */
static bool
freezer_of(pid_t pid, char *path, size_t size, const char **frozen, const char **thawed)
{
  char proc[64];
  cshim_autofree char *text = NULL;
  struct statfs sfs;
  bool v2;

  assert_int_equal(statfs("/sys/fs/cgroup", &sfs), 0);
  v2 = sfs.f_type == CGROUP2_SUPER_MAGIC;
  snprintf(proc, sizeof(proc), "/proc/%d/cgroup", (int)pid);
  text = itest_read_file(proc);
  assert_non_null(text);
  for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
    char *c1 = strchr(line, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
    if (c2 == NULL)
      continue;
    *c2 = '\0';
    if (v2 && strcmp(line, "0:") == 0) {
      snprintf(path, size, "/sys/fs/cgroup%s/cgroup.freeze", c2 + 1);
      *frozen = "1", *thawed = "0";
      return access(path, W_OK) == 0;
    }
    if (!v2 && strstr(c1 + 1, "freezer")) {
      snprintf(path, size, "/sys/fs/cgroup/freezer%s/freezer.state", c2 + 1);
      *frozen = "FROZEN", *thawed = "THAWED";
      return access(path, W_OK) == 0;
    }
  }
  return false;
}

static void
write_text(const char *path, const char *text)
{
  FILE *fp = fopen(path, "w");
  if (fp == NULL)
    fail_msg("open `%s`: %s", path, strerror(errno));
  fputs(text, fp);
  assert_int_equal(fclose(fp), 0);
}

static const char *
status_of(fixture_t *f)
{
  static char status[32];
  cshim_autofree char *out =
      ctl_ok(f, "--json", "--socket", f->address, "-n", f->t.ns, "state", f->id, NULL);
  json_t *j = json_loads(out, 0, NULL);

  assert_non_null(j);
  snprintf(status, sizeof(status), "%s", json_string_value(json_object_get(j, "status")));
  json_decref(j);
  return status;
}

/* Descriptors of process pid open on files under /sys/fs/cgroup (Stats' and State's kept
   cgroup files). */
static int
cgroup_fds(pid_t pid)
{
  char dir[64], link[320], target[512];
  struct dirent *e;
  int n = 0;
  DIR *d;

  snprintf(dir, sizeof dir, "/proc/%d/fd", (int)pid);
  d = opendir(dir);
  if (d == NULL)
    fail_msg("opendir `%s`: %s", dir, strerror(errno));
  while ((e = readdir(d)) != NULL) {
    ssize_t len;
    if (e->d_name[0] == '.')
      continue;
    snprintf(link, sizeof link, "%s/%s", dir, e->d_name);
    len = readlink(link, target, sizeof target - 1);
    if (len <= 0)
      continue;
    target[len] = '\0';
    n += strncmp(target, "/sys/fs/cgroup/", 15) == 0;
  }
  closedir(d);
  return n;
}

/* ---- the test ---- */

static void
hot_calls_start_no_process(void **state)
{
  fixture_t *f = *state;
  static const char *const args[] = {"sleep", "300", NULL};
  cshim_autofree char *bundle = NULL;
  char freeze[512], *text;
  const char *frozen = NULL, *thawed = NULL;
  double before, after, creates = -1, execs = -1;
  int pid = 0, kept;

  if (!itest_can_run_containers())
    skip();
  if (strcmp(f->runtime, "crun") == 0 && access("/usr/bin/crun", X_OK) != 0)
    skip();
  bundle = itest_make_bundle(&f->t, f->id, args);
  launch(f, bundle);

  text =
      ctl_ok(f, "--socket", f->address, "-n", f->t.ns, "create", f->id, "--bundle", bundle, NULL);
  assert_int_equal(sscanf(text, "pid %d", &pid), 1);
  free(text);
  free(ctl_ok(f, "--socket", f->address, "-n", f->t.ns, "start", f->id, NULL));
  free(ctl_ok(f, "--socket", f->address, "-n", f->t.ns, "exec", f->id, "e1", "--", "true", NULL));
  free(ctl_ok(f, "--socket", f->address, "-n", f->t.ns, "start", f->id, "--exec-id", "e1", NULL));
  free(ctl_ok(f, "--socket", f->address, "-n", f->t.ns, "wait", f->id, "--exec-id", "e1", NULL));

  /* The counter counts: the runtime ran create and exec once each. */
  before = started_total(f, "runtime", "create", &creates);
  assert_int_equal((int)creates, 1);
  started_total(f, "runtime", "exec", &execs);
  assert_int_equal((int)execs, 1);
  assert_true(before >= 3); /* create, start, and exec (the exec's Start) */

  burst(f->address, f->t.ns, f->id, (uint32_t)pid, N_CALLS, false);
  burst(f->address, f->t.ns, f->id, (uint32_t)pid, N_EXTRA, true);
  after = started_total(f, NULL, NULL, NULL);
  if (after != before)
    fail_msg("%d State/Connect/Wait and %d Pids/Stats calls started %.0f processes", N_CALLS,
             N_EXTRA, after - before);
  /* Stats keeps the cgroup's files open: more Stats open none (the count stays), and they are
     closed once the container is deleted (below). */
  kept = cgroup_fds(f->shim);
  assert_true(kept >= 4); /* the freezer file and Stats' (~25 on v1, ~12 on v2) */
  burst(f->address, f->t.ns, f->id, (uint32_t)pid, N_EXTRA, true);
  assert_int_equal(cgroup_fds(f->shim), kept);

  /* Frozen by hand, not through Pause: State reads the freezer, as `runc state` would. */
  if (freezer_of(pid, freeze, sizeof(freeze), &frozen, &thawed)) {
    write_text(freeze, frozen);
    assert_string_equal(status_of(f), "paused");
    write_text(freeze, thawed);
    assert_string_equal(status_of(f), "running");
    assert_true(started_total(f, NULL, NULL, NULL) == before);
  } else
    print_message("no writable freezer for pid %d: the hand-frozen check is skipped\n", pid);

  free(ctl_ok(f, "--socket", f->address, "-n", f->t.ns, "kill", f->id, "--signal", "KILL", NULL));
  free(ctl_ok(f, "--socket", f->address, "-n", f->t.ns, "wait", f->id, NULL));
  free(ctl_ok(f, "--socket", f->address, "-n", f->t.ns, "delete", f->id, NULL));
  /* the container's record goes on a later loop turn, its kept files with it */
  for (int i = 0; i < 200 && cgroup_fds(f->shim) > 0; i++)
    usleep(50 * 1000);
  assert_int_equal(cgroup_fds(f->shim), 0);
  free(ctl_ok(f, "--socket", f->address, "-n", f->t.ns, "shutdown", f->id, NULL));
  if (!itest_wait_gone(f->shim, 20000))
    fail_msg("the shim (pid %d) did not exit after Shutdown", (int)f->shim);
}

static void
test_hotpath_runc_hot_calls_start_no_process(void **state)
{
  hot_calls_start_no_process(state);
}

static void
test_hotpath_crun_hot_calls_start_no_process(void **state)
{
  hot_calls_start_no_process(state);
}

int
main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_hotpath_runc_hot_calls_start_no_process, setup_runc,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_hotpath_crun_hot_calls_start_no_process, setup_crun,
                                      teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
