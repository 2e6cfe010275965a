// SPDX-License-Identifier: Apache-2.0
// Pause/Resume, Update, Stats, Checkpoint and restore through the task service with the fake
// runc: the argv each RPC gives the runtime, the events, the states and the error codes.
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cshim/util.h>

#include "containerd/cgroups/v1/metrics.pb-c.h"
#include "containerd/cgroups/v2/metrics.pb-c.h"
#include "containerd/events/task.pb-c.h"
#include "containerd/runc/options/oci.pb-c.h"
#include "fixture.h"
#include "cgroups.h"
#include "model.h"
#include "service.h"
#include "containerd/task/v2/shim.pb-c.h"

#include <cmocka.h>

#ifndef FAKE_RUNC_PATH
#error FAKE_RUNC_PATH must be defined
#endif

#define RESOURCES_TYPE "types.containerd.io/opencontainers/runtime-spec/1/LinuxResources"

static int
setup(void **state)
{
  task_fixture_t *f = task_fixture_new("ctl-test", FAKE_RUNC_PATH, "[\"/bin/sleep\",\"100\"]");
  setenv("FAKE_RUNC_ARGV_LOG", f->argv_log, 1);
  unsetenv("FAKE_RUNC_FAIL");
  unsetenv("FAKE_RUNC_CRIU_FAIL");
  *state = f;
  return 0;
}

/* The same, with the fake reached through a link named `runc`: the runc model, where State and
   Pids are answered without the runtime. */
static int
setup_named(void **state, const char *name)
{
  task_fixture_t *f;
  char link_dir[160], link_path[200];

  setup(state);
  f = *state;
  snprintf(link_dir, sizeof link_dir, "%s/bin", f->base);
  snprintf(link_path, sizeof link_path, "%s/%s", link_dir, name);
  assert_int_equal(mkdir(link_dir, 0700), 0);
  assert_int_equal(symlink(FAKE_RUNC_PATH, link_path), 0);
  mock_host_set_config(&f->m.host, "runtime", link_path);
  task_fixture_reopen_service(f);
  return 0;
}

static int
setup_runc_named(void **state)
{
  return setup_named(state, "runc");
}

/* Reached through a link named `runsc`: gVisor's model, asked with `runsc events --stats` when
   the sandbox has no cgroup of its own (the fake's container shares the test's). */
static int
setup_runsc_named(void **state)
{
  return setup_named(state, "runsc");
}

static int
teardown(void **state)
{
  task_fixture_free(*state);
  unsetenv("FAKE_RUNC_ARGV_LOG");
  unsetenv("FAKE_RUNC_CRIU_FAIL");
  return 0;
}

static uint32_t
create(task_fixture_t *f, const char *id, const char *checkpoint, Google__Protobuf__Any *options)
{
  Containerd__Task__V2__CreateTaskRequest req = CONTAINERD__TASK__V2__CREATE_TASK_REQUEST__INIT;
  Containerd__Task__V2__CreateTaskResponse *resp;
  mock_call_t *c;
  uint32_t pid;

  req.id = (char *)id;
  req.bundle = f->bundle;
  req.checkpoint = (char *)(checkpoint ? checkpoint : "");
  req.options = options;
  c = task_fixture_call(f, "Create", &req.base);
  if (c->code != 0)
    fail_msg("create: %s", c->message);
  resp = (void *)mock_call_unpack(c, &containerd__task__v2__create_task_response__descriptor);
  pid = resp->pid;
  protobuf_c_message_free_unpacked(&resp->base, NULL);
  mock_call_free(c);
  return pid;
}

static mock_call_t *
start_call(task_fixture_t *f, const char *id)
{
  Containerd__Task__V2__StartRequest req = CONTAINERD__TASK__V2__START_REQUEST__INIT;
  req.id = (char *)id;
  return task_fixture_call(f, "Start", &req.base);
}

static uint32_t
start(task_fixture_t *f, const char *id)
{
  Containerd__Task__V2__StartResponse *resp;
  mock_call_t *c = start_call(f, id);
  uint32_t pid;
  if (c->code != 0)
    fail_msg("start: %s", c->message);
  resp = (void *)mock_call_unpack(c, &containerd__task__v2__start_response__descriptor);
  pid = resp->pid;
  protobuf_c_message_free_unpacked(&resp->base, NULL);
  mock_call_free(c);
  assert_true(pid > 0);
  return pid;
}

static uint32_t
run(task_fixture_t *f, const char *id)
{
  uint32_t pid = create(f, id, NULL, NULL);
  assert_int_equal(start(f, id), pid);
  return pid;
}

static Containerd__V1__Types__Status
status(task_fixture_t *f, const char *id)
{
  Containerd__Task__V2__StateRequest req = CONTAINERD__TASK__V2__STATE_REQUEST__INIT;
  Containerd__Task__V2__StateResponse *resp;
  Containerd__V1__Types__Status st;
  mock_call_t *c;

  req.id = (char *)id;
  c = task_fixture_call(f, "State", &req.base);
  if (c->code != 0)
    fail_msg("state: %s", c->message);
  resp = (void *)mock_call_unpack(c, &containerd__task__v2__state_response__descriptor);
  st = resp->status;
  protobuf_c_message_free_unpacked(&resp->base, NULL);
  mock_call_free(c);
  return st;
}

static mock_call_t *
id_call(task_fixture_t *f, const char *method, const char *id)
{
  /* Pause, Resume, Stats and Pids requests are all {1: id}. */
  Containerd__Task__V2__PauseRequest req = CONTAINERD__TASK__V2__PAUSE_REQUEST__INIT;
  req.id = (char *)id;
  return task_fixture_call(f, method, &req.base);
}

/* Kill init, wait for its exit, delete it. */
static void
finish(task_fixture_t *f, const char *id)
{
  Containerd__Task__V2__KillRequest kr = CONTAINERD__TASK__V2__KILL_REQUEST__INIT;
  Containerd__Task__V2__WaitRequest wr = CONTAINERD__TASK__V2__WAIT_REQUEST__INIT;
  Containerd__Task__V2__DeleteRequest dr = CONTAINERD__TASK__V2__DELETE_REQUEST__INIT;

  kr.id = wr.id = dr.id = (char *)id;
  kr.signal = SIGKILL;
  mock_call_free(task_fixture_call(f, "Kill", &kr.base));
  task_fixture_expect_code(task_fixture_call(f, "Wait", &wr.base), 0);
  task_fixture_expect_code(task_fixture_call(f, "Delete", &dr.base), 0);
}

/* The argv lines the fake runc logged that contain `word` (a subcommand), joined. */
static char *
argv_lines(task_fixture_t *f, const char *word)
{
  FILE *fp = fopen(f->argv_log, "r");
  char line[4096];
  char *out = cshim_xstrdup("");
  cshim_autofree char *needle = NULL;

  cshim_xasprintf(&needle, " %s ", word);
  if (fp == NULL)
    return out;
  while (fgets(line, sizeof line, fp)) {
    if (strstr(line, needle)) {
      char *joined;
      cshim_xasprintf(&joined, "%s%s", out, line);
      free(out);
      out = joined;
    }
  }
  fclose(fp);
  return out;
}

static int
count_events(task_fixture_t *f, const char *topic)
{
  int n = 0;
  for (size_t i = 0; i < f->m.n_events; i++)
    if (strcmp(f->m.events[i].topic, topic) == 0)
      n++;
  return n;
}

static void
test_control_pause_and_resume_publish_events_and_states(void **state)
{
  task_fixture_t *f = *state;
  Containerd__Events__TaskPaused *paused;
  int i;

  run(f, "pr");
  assert_int_equal(status(f, "pr"), CONTAINERD__V1__TYPES__STATUS__RUNNING);
  task_fixture_expect_code(id_call(f, "Pause", "pr"), 0);
  i = task_mock_find_event(&f->m, CSHIM_TOPIC_TASK_PAUSED, 0);
  assert_true(i >= 0);
  paused = (void *)task_mock_unpack_event(&f->m, (size_t)i);
  assert_string_equal(paused->container_id, "pr");
  protobuf_c_message_free_unpacked(&paused->base, NULL);
  assert_int_equal(status(f, "pr"), CONTAINERD__V1__TYPES__STATUS__PAUSED);

  task_fixture_expect_code(id_call(f, "Resume", "pr"), 0);
  assert_true(task_mock_find_event(&f->m, CSHIM_TOPIC_TASK_RESUMED, (size_t)i) > i);
  assert_int_equal(status(f, "pr"), CONTAINERD__V1__TYPES__STATUS__RUNNING);
  /* resuming a running container, pausing a paused one: failed preconditions, found without
     asking the runtime (crun would resume a running container without complaint) */
  task_fixture_expect_code(id_call(f, "Resume", "pr"), CSHIM_GRPC_FAILED_PRECONDITION);
  assert_int_equal(count_events(f, CSHIM_TOPIC_TASK_RESUMED), 1);
  {
    cshim_autofree char *lines = argv_lines(f, "resume");
    assert_string_equal(strchr(lines, '\n') + 1, "");
  }

  /* a paused container can still be killed and deleted */
  task_fixture_expect_code(id_call(f, "Pause", "pr"), 0);
  task_fixture_expect_code(id_call(f, "Pause", "pr"), CSHIM_GRPC_FAILED_PRECONDITION);
  finish(f, "pr");
  cshim_autofree char *lines = argv_lines(f, "pause");
  assert_non_null(strstr(lines, " pause pr\n"));
}

static void
test_control_state_reports_pausing_while_pause_runs(void **state)
{
  task_fixture_t *f = *state;
  task_container_t *c;

  run(f, "ps1");
  c = task_service_find(f->svc, "ps1");
  assert_non_null(c);
  c->pausing = true; /* what Pause sets until the runtime returns */
  assert_int_equal(status(f, "ps1"), CONTAINERD__V1__TYPES__STATUS__PAUSING);
  task_fixture_expect_code(id_call(f, "Pause", "ps1"), CSHIM_GRPC_FAILED_PRECONDITION);
  c->pausing = false;
  finish(f, "ps1");
}

static void
put_file(const char *dir, const char *name, const char *text)
{
  char path[512];
  FILE *fp;
  snprintf(path, sizeof path, "%s/%s", dir, name);
  fp = fopen(path, "w");
  assert_non_null(fp);
  fputs(text, fp);
  fclose(fp);
}

static Containerd__Task__V2__PidsResponse *
pids_of(task_fixture_t *f, const char *id)
{
  Containerd__Task__V2__PidsResponse *resp;
  mock_call_t *c = id_call(f, "Pids", id);
  if (c->code != 0)
    fail_msg("pids: %s", c->message);
  resp = (void *)mock_call_unpack(c, &containerd__task__v2__pids_response__descriptor);
  mock_call_free(c);
  return resp;
}

/* A clock for the freezer reading that moves only when the test moves it. */
static uint64_t test_clock_ms;

static uint64_t
test_clock(const task_service_t *svc)
{
  (void)svc;
  return test_clock_ms;
}

static void
test_control_runc_model_answers_state_and_pids_without_the_runtime(void **state)
{
  task_fixture_t *f = *state;
  char freezer_dir[160], pids_dir[160], procs[64];
  Containerd__Task__V2__PidsResponse *pids;
  task_container_t *c;
  uint32_t pid;

  pid = run(f, "rm");
  c = task_service_find(f->svc, "rm");
  assert_non_null(c);
  assert_true(c->runc_model);
  /* The container's cgroup, as the test arranges it: a freezer and a process list. */
  snprintf(freezer_dir, sizeof freezer_dir, "%s/freezer", f->base);
  snprintf(pids_dir, sizeof pids_dir, "%s/pids", f->base);
  assert_int_equal(mkdir(freezer_dir, 0700), 0);
  assert_int_equal(mkdir(pids_dir, 0700), 0);
  put_file(freezer_dir, "freezer.state", "THAWED\n");
  snprintf(procs, sizeof procs, "%u\n4242\n", pid);
  put_file(pids_dir, "cgroup.procs", procs);
  task_cgroup_free(c->cgroup);
  c->cgroup = cshim_xmalloc0(sizeof *c->cgroup);
  c->cgroup->v1[TASK_CGROUP_FREEZER] = cshim_xstrdup(freezer_dir);
  c->cgroup->v1[TASK_CGROUP_PIDS] = cshim_xstrdup(pids_dir);

  /* State reads the freezer at most once per millisecond of the service's clock: the calls of
     one millisecond share the reading. The test's clock stands still while the file changes. */
  f->svc->now_ms = test_clock;
  test_clock_ms = 1000;
  assert_int_equal(status(f, "rm"), CONTAINERD__V1__TYPES__STATUS__RUNNING);
  put_file(freezer_dir, "freezer.state", "FROZEN\n");
  assert_int_equal(status(f, "rm"), CONTAINERD__V1__TYPES__STATUS__RUNNING);
  /* the shim's own Pause or Resume forgets the reading at once, in the same millisecond */
  c->freezer_kept = false;
  assert_int_equal(status(f, "rm"), CONTAINERD__V1__TYPES__STATUS__PAUSED);
  put_file(freezer_dir, "freezer.state", "THAWED\n");
  assert_int_equal(status(f, "rm"), CONTAINERD__V1__TYPES__STATUS__PAUSED);
  /* the next millisecond reads it again */
  test_clock_ms++;
  assert_int_equal(status(f, "rm"), CONTAINERD__V1__TYPES__STATUS__RUNNING);
  /* frozen or freezing by hand, not through Pause: State follows the freezer */
  put_file(freezer_dir, "freezer.state", "FROZEN\n");
  test_clock_ms++;
  assert_int_equal(status(f, "rm"), CONTAINERD__V1__TYPES__STATUS__PAUSED);
  put_file(freezer_dir, "freezer.state", "FREEZING\n");
  test_clock_ms++;
  assert_int_equal(status(f, "rm"), CONTAINERD__V1__TYPES__STATUS__PAUSING);
  put_file(freezer_dir, "freezer.state", "THAWED\n");
  test_clock_ms++;
  c->pausing = true; /* Pause is running and the freezer has not moved yet */
  assert_int_equal(status(f, "rm"), CONTAINERD__V1__TYPES__STATUS__PAUSING);
  c->pausing = false;
  /* the shim's own Pause has returned (crun does not wait for the freeze to settle): PAUSED,
     as the runtime's own state would say */
  put_file(freezer_dir, "freezer.state", "FREEZING\n");
  test_clock_ms++;
  c->paused = true;
  assert_int_equal(status(f, "rm"), CONTAINERD__V1__TYPES__STATUS__PAUSED);
  c->paused = false;
  put_file(freezer_dir, "freezer.state", "THAWED\n");
  test_clock_ms++;

  pids = pids_of(f, "rm");
  assert_int_equal(pids->n_processes, 2);
  assert_int_equal(pids->processes[0]->pid, pid);
  assert_int_equal(pids->processes[1]->pid, 4242);
  protobuf_c_message_free_unpacked(&pids->base, NULL);
  {
    cshim_autofree char *st = argv_lines(f, "state");
    cshim_autofree char *ps = argv_lines(f, "ps");
    assert_string_equal(st, "");
    assert_string_equal(ps, "");
  }

  /* Without a readable freezer, the shim's own record: paused by Pause. */
  {
    char path[200];
    snprintf(path, sizeof path, "%s/freezer.state", freezer_dir);
    assert_int_equal(unlink(path), 0);
  }
  task_fixture_expect_code(id_call(f, "Pause", "rm"), 0);
  assert_int_equal(status(f, "rm"), CONTAINERD__V1__TYPES__STATUS__PAUSED);
  task_fixture_expect_code(id_call(f, "Resume", "rm"), 0);
  assert_int_equal(status(f, "rm"), CONTAINERD__V1__TYPES__STATUS__RUNNING);

  /* The cgroup cannot be read: the runtime's ps answers. */
  {
    char path[200];
    snprintf(path, sizeof path, "%s/cgroup.procs", pids_dir);
    assert_int_equal(unlink(path), 0);
    assert_int_equal(rmdir(pids_dir), 0);
  }
  pids = pids_of(f, "rm");
  assert_int_equal(pids->n_processes, 1);
  assert_int_equal(pids->processes[0]->pid, pid);
  protobuf_c_message_free_unpacked(&pids->base, NULL);
  {
    cshim_autofree char *st = argv_lines(f, "state");
    cshim_autofree char *ps = argv_lines(f, "ps");
    assert_string_equal(st, "");
    assert_non_null(strstr(ps, " ps --format json rm\n"));
  }
  finish(f, "rm");
}

static void
test_control_other_runtimes_are_asked_for_state(void **state)
{
  task_fixture_t *f = *state;
  task_container_t *c;

  run(f, "ask");
  c = task_service_find(f->svc, "ask");
  assert_false(c->runc_model);
  assert_int_equal(status(f, "ask"), CONTAINERD__V1__TYPES__STATUS__RUNNING);
  cshim_autofree char *st = argv_lines(f, "state");
  assert_non_null(strstr(st, " state ask\n"));
  finish(f, "ask");
}

static void
test_control_pause_refuses_unknown_created_and_stopped_tasks(void **state)
{
  task_fixture_t *f = *state;

  task_fixture_expect_code(id_call(f, "Pause", "nope"), CSHIM_GRPC_NOT_FOUND);
  task_fixture_expect_code(id_call(f, "Resume", "nope"), CSHIM_GRPC_NOT_FOUND);
  create(f, "cr", NULL, NULL);
  task_fixture_expect_code(id_call(f, "Pause", "cr"), CSHIM_GRPC_FAILED_PRECONDITION);
  task_fixture_expect_code(id_call(f, "Resume", "cr"), CSHIM_GRPC_FAILED_PRECONDITION);
  assert_int_equal(start(f, "cr") > 0, 1);
  finish(f, "cr");
  assert_int_equal(count_events(f, CSHIM_TOPIC_TASK_PAUSED), 0);
}

static mock_call_t *
update(task_fixture_t *f, const char *id, const char *type_url, const char *json)
{
  Containerd__Task__V2__UpdateTaskRequest req = CONTAINERD__TASK__V2__UPDATE_TASK_REQUEST__INIT;
  Containerd__Task__V2__UpdateTaskRequest__AnnotationsEntry ann =
      CONTAINERD__TASK__V2__UPDATE_TASK_REQUEST__ANNOTATIONS_ENTRY__INIT;
  Containerd__Task__V2__UpdateTaskRequest__AnnotationsEntry *anns[] = {&ann};
  Google__Protobuf__Any any = GOOGLE__PROTOBUF__ANY__INIT;

  req.id = (char *)id;
  if (json) {
    any.type_url = (char *)type_url;
    any.value.data = (uint8_t *)json;
    any.value.len = strlen(json);
    req.resources = &any;
  }
  ann.key = "io.kubernetes.cri.sandbox-id";
  ann.value = "x";
  req.n_annotations = 1;
  req.annotations = anns;
  return task_fixture_call(f, "Update", &req.base);
}

static bool
bundle_has_temp_files(task_fixture_t *f)
{
  DIR *d = opendir(f->bundle);
  struct dirent *e;
  bool found = false;
  assert_non_null(d);
  while ((e = readdir(d)) != NULL)
    if (strncmp(e->d_name, ".update-resources-", 18) == 0)
      found = true;
  closedir(d);
  return found;
}

static void
test_control_update_hands_the_resources_json_to_the_runtime(void **state)
{
  task_fixture_t *f = *state;
  const char *json = "{\"memory\":{\"limit\":33554432},\"cpu\":{\"shares\":512}}";
  char path[256], got[512] = "";
  FILE *fp;

  run(f, "up");
  task_fixture_expect_code(update(f, "up", RESOURCES_TYPE, json), 0);
  snprintf(path, sizeof path, "%s/testns/up/resources.json", f->root);
  fp = fopen(path, "r");
  assert_non_null(fp);
  assert_non_null(fgets(got, sizeof got, fp));
  fclose(fp);
  assert_string_equal(got, "{\"cpu\":{\"shares\":512},\"memory\":{\"limit\":33554432}}");
  assert_false(bundle_has_temp_files(f));
  {
    cshim_autofree char *lines = argv_lines(f, "update");
    char want[256];
    snprintf(want, sizeof want, " update --resources %s/.update-resources-", f->bundle);
    assert_non_null(strstr(lines, want));
    assert_non_null(strstr(lines, " up\n"));
  }

  task_fixture_expect_code(update(f, "up", RESOURCES_TYPE, "{not json"),
                           CSHIM_GRPC_INVALID_ARGUMENT);
  task_fixture_expect_code(update(f, "up", RESOURCES_TYPE, "[1,2]"), CSHIM_GRPC_INVALID_ARGUMENT);
  task_fixture_expect_code(update(f, "up", RESOURCES_TYPE, NULL), CSHIM_GRPC_INVALID_ARGUMENT);
  task_fixture_expect_code(
      update(f, "up", "types.containerd.io/opencontainers/runtime-spec/1/WindowsResources", "{}"),
      CSHIM_GRPC_INVALID_ARGUMENT);
  task_fixture_expect_code(update(f, "nope", RESOURCES_TYPE, json), CSHIM_GRPC_NOT_FOUND);
  /* the runtime's failure comes back, and the file is still removed */
  setenv("FAKE_RUNC_FAIL", "update", 1);
  task_fixture_expect_code(update(f, "up", RESOURCES_TYPE, json), CSHIM_GRPC_UNKNOWN);
  unsetenv("FAKE_RUNC_FAIL");
  assert_false(bundle_has_temp_files(f));
  finish(f, "up");
}

static void
test_control_update_of_created_task_works_and_of_stopped_does_not(void **state)
{
  task_fixture_t *f = *state;
  Containerd__Task__V2__KillRequest kr = CONTAINERD__TASK__V2__KILL_REQUEST__INIT;
  Containerd__Task__V2__WaitRequest wr = CONTAINERD__TASK__V2__WAIT_REQUEST__INIT;
  Containerd__Task__V2__DeleteRequest dr = CONTAINERD__TASK__V2__DELETE_REQUEST__INIT;

  create(f, "uc", NULL, NULL);
  task_fixture_expect_code(update(f, "uc", RESOURCES_TYPE, "{\"pids\":{\"limit\":10}}"), 0);
  start(f, "uc");
  kr.id = wr.id = dr.id = "uc";
  kr.signal = SIGKILL;
  mock_call_free(task_fixture_call(f, "Kill", &kr.base));
  task_fixture_expect_code(task_fixture_call(f, "Wait", &wr.base), 0);
  task_fixture_expect_code(update(f, "uc", RESOURCES_TYPE, "{}"), CSHIM_GRPC_FAILED_PRECONDITION);
  task_fixture_expect_code(task_fixture_call(f, "Delete", &dr.base), 0);
}

static void
test_control_stats_returns_cgroup_metrics(void **state)
{
  task_fixture_t *f = *state;
  Containerd__Task__V2__StatsResponse *resp;
  mock_call_t *c;

  run(f, "st");
  c = id_call(f, "Stats", "st");
  if (c->code != 0)
    fail_msg("stats: %s", c->message);
  resp = (void *)mock_call_unpack(c, &containerd__task__v2__stats_response__descriptor);
  assert_non_null(resp->stats);
  /* the fake's "container" is a child of this test: it reports this test's own cgroup */
  if (strcmp(resp->stats->type_url, "io.containerd.cgroups.v1.Metrics") == 0) {
    Io__Containerd__Cgroups__V1__Metrics *m = io__containerd__cgroups__v1__metrics__unpack(
        NULL, resp->stats->value.len, resp->stats->value.data);
    assert_non_null(m);
    assert_non_null(m->memory);
    assert_true(m->memory->usage->usage > 0);
    io__containerd__cgroups__v1__metrics__free_unpacked(m, NULL);
  } else {
    Io__Containerd__Cgroups__V2__Metrics *m = io__containerd__cgroups__v2__metrics__unpack(
        NULL, resp->stats->value.len, resp->stats->value.data);
    assert_string_equal(resp->stats->type_url, "io.containerd.cgroups.v2.Metrics");
    assert_non_null(m);
    assert_true(m->cpu->usage_usec > 0);
    io__containerd__cgroups__v2__metrics__free_unpacked(m, NULL);
  }
  protobuf_c_message_free_unpacked(&resp->base, NULL);
  mock_call_free(c);
  task_fixture_expect_code(id_call(f, "Stats", "nope"), CSHIM_GRPC_NOT_FOUND);
  finish(f, "st");
}

static Google__Protobuf__Any *
checkpoint_options(Containerd__Runc__V1__CheckpointOptions *o, uint8_t *buf)
{
  static Google__Protobuf__Any any;
  google__protobuf__any__init(&any);
  any.type_url = "containerd.runc.v1.CheckpointOptions";
  any.value.len = containerd__runc__v1__checkpoint_options__pack(o, buf);
  any.value.data = buf;
  return &any;
}

static mock_call_t *
checkpoint(task_fixture_t *f, const char *id, const char *path, Google__Protobuf__Any *opts)
{
  Containerd__Task__V2__CheckpointTaskRequest req =
      CONTAINERD__TASK__V2__CHECKPOINT_TASK_REQUEST__INIT;
  req.id = (char *)id;
  req.path = (char *)(path ? path : "");
  req.options = opts;
  return task_fixture_call(f, "Checkpoint", &req.base);
}

static void
test_control_checkpoint_passes_every_option_to_the_runtime(void **state)
{
  task_fixture_t *f = *state;
  Containerd__Runc__V1__CheckpointOptions o = CONTAINERD__RUNC__V1__CHECKPOINT_OPTIONS__INIT;
  Containerd__Events__TaskCheckpointed *ev;
  char *ns[] = {"network", "ipc"};
  char image[256], work[256], marker[300], want[1024];
  uint8_t buf[512];
  int i;

  run(f, "ck");
  snprintf(image, sizeof image, "%s/image", f->base);
  snprintf(work, sizeof work, "%s/criu-work", f->base);
  o.exit = false;
  o.open_tcp = true;
  o.external_unix_sockets = true;
  o.terminal = true;
  o.file_locks = true;
  o.n_empty_namespaces = 2;
  o.empty_namespaces = ns;
  o.cgroups_mode = "soft";
  o.work_path = work;
  task_fixture_expect_code(checkpoint(f, "ck", image, checkpoint_options(&o, buf)), 0);

  cshim_autofree char *lines = argv_lines(f, "checkpoint");
  snprintf(want, sizeof want,
           " checkpoint --image-path %s --work-path %s --tcp-established --ext-unix-sk "
           "--shell-job --file-locks --manage-cgroups-mode soft --empty-ns network --empty-ns "
           "ipc --leave-running ck\n",
           image, work);
  if (strstr(lines, want) == NULL)
    fail_msg("argv:\n%s\nwant:%s", lines, want);
  snprintf(marker, sizeof marker, "%s/fake-checkpoint", image);
  assert_int_equal(access(marker, F_OK), 0);
  i = task_mock_find_event(&f->m, CSHIM_TOPIC_TASK_CHECKPOINTED, 0);
  assert_true(i >= 0);
  ev = (void *)task_mock_unpack_event(&f->m, (size_t)i);
  assert_string_equal(ev->container_id, "ck");
  assert_string_equal(ev->checkpoint, image);
  protobuf_c_message_free_unpacked(&ev->base, NULL);
  /* left running */
  assert_int_equal(status(f, "ck"), CONTAINERD__V1__TYPES__STATUS__RUNNING);
  assert_int_equal(count_events(f, CSHIM_TOPIC_TASK_EXIT), 0);
  /* the work directory was the caller's: kept */
  finish(f, "ck");
}

static void
test_control_checkpoint_with_exit_stops_the_task(void **state)
{
  task_fixture_t *f = *state;
  Containerd__Runc__V1__CheckpointOptions o = CONTAINERD__RUNC__V1__CHECKPOINT_OPTIONS__INIT;
  Containerd__Task__V2__WaitRequest wr = CONTAINERD__TASK__V2__WAIT_REQUEST__INIT;
  Containerd__Task__V2__DeleteRequest dr = CONTAINERD__TASK__V2__DELETE_REQUEST__INIT;
  char image[256], want[512], tmpwork[300];
  uint8_t buf[256];

  run(f, "cx");
  snprintf(image, sizeof image, "%s/image-x", f->base);
  o.exit = true;
  /* no path in the request: the options' image path is used */
  o.image_path = image;
  task_fixture_expect_code(checkpoint(f, "cx", NULL, checkpoint_options(&o, buf)), 0);
  cshim_autofree char *lines = argv_lines(f, "checkpoint");
  snprintf(want, sizeof want, " checkpoint --image-path %s --work-path %s/work/criu-work cx\n",
           image, f->bundle);
  if (strstr(lines, want) == NULL)
    fail_msg("argv:\n%s\nwant:%s", lines, want);
  /* the default work directory is temporary */
  snprintf(tmpwork, sizeof tmpwork, "%s/work/criu-work", f->bundle);
  assert_int_not_equal(access(tmpwork, F_OK), 0);
  wr.id = dr.id = "cx";
  task_fixture_expect_code(task_fixture_call(f, "Wait", &wr.base), 0);
  assert_int_equal(count_events(f, CSHIM_TOPIC_TASK_EXIT), 1);
  task_fixture_expect_code(task_fixture_call(f, "Delete", &dr.base), 0);
}

static void
test_control_checkpoint_failure_keeps_the_criu_log(void **state)
{
  task_fixture_t *f = *state;
  char image[256], log[256], text[256] = "";
  mock_call_t *c;
  FILE *fp;

  run(f, "cf");
  snprintf(image, sizeof image, "%s/image-f", f->base);
  setenv("FAKE_RUNC_CRIU_FAIL", "1", 1);
  c = checkpoint(f, "cf", image, NULL);
  unsetenv("FAKE_RUNC_CRIU_FAIL");
  assert_int_equal(c->code, CSHIM_GRPC_UNKNOWN);
  snprintf(log, sizeof log, "%s/criu-dump.log", f->bundle);
  assert_non_null(strstr(c->message, "criu failed"));
  assert_non_null(strstr(c->message, log));
  mock_call_free(c);
  fp = fopen(log, "r");
  assert_non_null(fp);
  assert_non_null(fgets(text, sizeof text, fp));
  fclose(fp);
  assert_non_null(strstr(text, "fake dump failure"));
  assert_int_equal(count_events(f, CSHIM_TOPIC_TASK_CHECKPOINTED), 0);
  assert_int_equal(status(f, "cf"), CONTAINERD__V1__TYPES__STATUS__RUNNING);
  finish(f, "cf");
}

static void
test_control_checkpoint_refuses_bad_requests(void **state)
{
  task_fixture_t *f = *state;
  Google__Protobuf__Any other = GOOGLE__PROTOBUF__ANY__INIT;
  Google__Protobuf__Any junk = GOOGLE__PROTOBUF__ANY__INIT;
  uint8_t bad[] = {0xff, 0xff, 0xff};

  task_fixture_expect_code(checkpoint(f, "nope", "/tmp/x", NULL), CSHIM_GRPC_NOT_FOUND);
  create(f, "cb", NULL, NULL);
  task_fixture_expect_code(checkpoint(f, "cb", "/tmp/x", NULL), CSHIM_GRPC_FAILED_PRECONDITION);
  start(f, "cb");
  task_fixture_expect_code(checkpoint(f, "cb", NULL, NULL), CSHIM_GRPC_INVALID_ARGUMENT);
  other.type_url = "containerd.runc.v1.Options";
  task_fixture_expect_code(checkpoint(f, "cb", "/tmp/x", &other), CSHIM_GRPC_INVALID_ARGUMENT);
  junk.type_url = "type.googleapis.com/containerd.runc.v1.CheckpointOptions";
  junk.value.data = bad;
  junk.value.len = sizeof bad;
  task_fixture_expect_code(checkpoint(f, "cb", "/tmp/x", &junk), CSHIM_GRPC_INVALID_ARGUMENT);
  cshim_autofree char *lines = argv_lines(f, "checkpoint");
  assert_string_equal(lines, "");
  finish(f, "cb");
}

static void
test_control_create_from_checkpoint_restores_at_start(void **state)
{
  task_fixture_t *f = *state;
  Containerd__Events__TaskCreate *created;
  Containerd__Events__TaskStart *started;
  char image[256], marker[300], want[1024];
  uint32_t pid;
  FILE *fp;
  int i;

  snprintf(image, sizeof image, "%s/image-r", f->base);
  assert_int_equal(mkdir(image, 0700), 0);
  snprintf(marker, sizeof marker, "%s/fake-checkpoint", image);
  fp = fopen(marker, "w");
  assert_non_null(fp);
  fclose(fp);

  /* Create registers the task without running the runtime: no pid until Start restores it */
  assert_int_equal(create(f, "rs", image, NULL), 0);
  {
    cshim_autofree char *creates = argv_lines(f, "create");
    assert_string_equal(creates, "");
  }
  i = task_mock_find_event(&f->m, CSHIM_TOPIC_TASK_CREATE, 0);
  assert_true(i >= 0);
  created = (void *)task_mock_unpack_event(&f->m, (size_t)i);
  assert_string_equal(created->checkpoint, image);
  assert_int_equal(created->pid, 0);
  protobuf_c_message_free_unpacked(&created->base, NULL);
  assert_int_equal(status(f, "rs"), CONTAINERD__V1__TYPES__STATUS__CREATED);

  pid = start(f, "rs");
  cshim_autofree char *lines = argv_lines(f, "restore");
  snprintf(want, sizeof want,
           " restore --image-path %s --work-path %s/work --detach --pid-file %s/init.pid "
           "--bundle %s rs\n",
           image, f->bundle, f->bundle, f->bundle);
  if (strstr(lines, want) == NULL)
    fail_msg("argv:\n%s\nwant:%s", lines, want);
  i = task_mock_find_event(&f->m, CSHIM_TOPIC_TASK_START, 0);
  assert_true(i >= 0);
  started = (void *)task_mock_unpack_event(&f->m, (size_t)i);
  assert_int_equal(started->pid, pid);
  protobuf_c_message_free_unpacked(&started->base, NULL);
  assert_int_equal(status(f, "rs"), CONTAINERD__V1__TYPES__STATUS__RUNNING);
  assert_int_equal(kill((pid_t)pid, 0), 0);
  finish(f, "rs");
  assert_true(task_mock_find_event(&f->m, CSHIM_TOPIC_TASK_EXIT, 0) > i);
}

static void
test_control_restored_task_writes_to_its_stdio(void **state)
{
  task_fixture_t *f = *state;
  Containerd__Task__V2__CreateTaskRequest req = CONTAINERD__TASK__V2__CREATE_TASK_REQUEST__INIT;
  Containerd__Task__V2__WaitRequest wr = CONTAINERD__TASK__V2__WAIT_REQUEST__INIT;
  Containerd__Task__V2__DeleteRequest dr = CONTAINERD__TASK__V2__DELETE_REQUEST__INIT;
  char image[256], marker[300], uri[300], path[256], text[64] = "";
  FILE *fp;

  snprintf(image, sizeof image, "%s/image-io", f->base);
  assert_int_equal(mkdir(image, 0700), 0);
  snprintf(marker, sizeof marker, "%s/fake-checkpoint", image);
  fp = fopen(marker, "w");
  assert_non_null(fp);
  fclose(fp);
  task_fixture_write_spec(f, "[\"/bin/sh\",\"-c\",\"echo restored\"]", true);
  snprintf(path, sizeof path, "%s/out.log", f->base);
  snprintf(uri, sizeof uri, "file://%s", path);

  req.id = "rio";
  req.bundle = f->bundle;
  req.checkpoint = image;
  req.stdout = uri;
  task_fixture_expect_code(task_fixture_call(f, "Create", &req.base), 0);
  start(f, "rio");
  wr.id = dr.id = "rio";
  task_fixture_expect_code(task_fixture_call(f, "Wait", &wr.base), 0);
  task_fixture_expect_code(task_fixture_call(f, "Delete", &dr.base), 0);
  fp = fopen(path, "r");
  assert_non_null(fp);
  assert_non_null(fgets(text, sizeof text, fp));
  fclose(fp);
  assert_string_equal(text, "restored\n");
}

/* runsc with its sandbox in the shim's cgroup (--ignore-cgroups): Stats from `runsc events
   --stats`, memory and tasks as runsc says, CPU from the sandbox's process tree, not runsc's. */
static void
test_control_runsc_stats_come_from_runsc_events(void **state)
{
  task_fixture_t *f = *state;
  Containerd__Task__V2__StatsResponse *resp;
  Containerd__Task__V2__KillRequest kr = CONTAINERD__TASK__V2__KILL_REQUEST__INIT;
  Containerd__Task__V2__WaitRequest wr = CONTAINERD__TASK__V2__WAIT_REQUEST__INIT;
  Containerd__Task__V2__DeleteRequest dr = CONTAINERD__TASK__V2__DELETE_REQUEST__INIT;
  mock_call_t *c;
  uint32_t pid;

  pid = create(f, "gv", NULL, NULL);
  start(f, "gv");
  c = id_call(f, "Stats", "gv");
  if (c->code != 0)
    fail_msg("stats: %s", c->message);
  resp = (void *)mock_call_unpack(c, &containerd__task__v2__stats_response__descriptor);
  assert_non_null(resp->stats);
  if (strcmp(resp->stats->type_url, "io.containerd.cgroups.v1.Metrics") == 0) {
    Io__Containerd__Cgroups__V1__Metrics *m = io__containerd__cgroups__v1__metrics__unpack(
        NULL, resp->stats->value.len, resp->stats->value.data);
    assert_non_null(m);
    assert_int_equal(m->memory->usage->usage, 1048576 + pid);
    assert_int_equal(m->pids->current, 1);
    assert_true(m->cpu->usage->total < 987654321000ull);
    assert_int_equal(m->cpu->usage->total, m->cpu->usage->user + m->cpu->usage->kernel);
    io__containerd__cgroups__v1__metrics__free_unpacked(m, NULL);
  } else {
    Io__Containerd__Cgroups__V2__Metrics *m = io__containerd__cgroups__v2__metrics__unpack(
        NULL, resp->stats->value.len, resp->stats->value.data);
    assert_string_equal(resp->stats->type_url, "io.containerd.cgroups.v2.Metrics");
    assert_non_null(m);
    assert_int_equal(m->memory->usage, 1048576 + pid);
    assert_int_equal(m->pids->current, 1);
    assert_true(m->cpu->usage_usec < 987654321ull);
    io__containerd__cgroups__v2__metrics__free_unpacked(m, NULL);
  }
  protobuf_c_message_free_unpacked(&resp->base, NULL);
  mock_call_free(c);
  {
    cshim_autofree char *lines = argv_lines(f, "events");
    assert_non_null(strstr(lines, " events --stats gv\n"));
  }
  /* once the sandbox has exited there is nothing to ask: NotFound, as for a removed cgroup */
  kr.id = wr.id = dr.id = "gv";
  kr.signal = SIGKILL;
  mock_call_free(task_fixture_call(f, "Kill", &kr.base));
  task_fixture_expect_code(task_fixture_call(f, "Wait", &wr.base), 0);
  task_fixture_expect_code(id_call(f, "Stats", "gv"), CSHIM_GRPC_NOT_FOUND);
  task_fixture_expect_code(task_fixture_call(f, "Delete", &dr.base), 0);
}

static bool
no_containers(void *data)
{
  task_fixture_t *f = data;
  return cshim_list_empty(&f->svc->containers);
}

/* A restore that fails is cleaned up as a failed start is: `runtime delete --force` removes what
   the runtime left (runsc's sandbox and gofer), the task goes, and the shim, serving nothing
   else, ends. No TaskStart or TaskExit goes out; a Wait gets 137; containerd's Delete that
   follows at once is answered when the runtime's delete is done. */
static void
test_control_failed_restore_deletes_the_container_and_ends_the_shim(void **state)
{
  task_fixture_t *f = *state;
  Containerd__Task__V2__DeleteRequest dr = CONTAINERD__TASK__V2__DELETE_REQUEST__INIT;
  Containerd__Task__V2__WaitRequest wr = CONTAINERD__TASK__V2__WAIT_REQUEST__INIT;
  Containerd__Task__V2__WaitResponse *wresp;
  Containerd__Task__V2__DeleteResponse *dresp;
  char image[256], gate[300], gate_env[320];
  mock_call_t *c, *w, *d;
  int fd;

  snprintf(image, sizeof image, "%s/not-an-image", f->base);
  snprintf(gate, sizeof gate, "%s/delete-may-go", f->base);
  snprintf(gate_env, sizeof gate_env, "delete:%s", gate);
  setenv("FAKE_RUNC_GATE", gate_env, 1);
  create(f, "rf", image, NULL);
  wr.id = "rf";
  w = task_fixture_invoke(f, "Wait", &wr.base);
  assert_int_equal(w->answered, 0);
  c = start_call(f, "rf");
  assert_int_not_equal(c->code, 0);
  assert_non_null(strstr(c->message, "restore"));
  assert_non_null(strstr(c->message, "not a checkpoint image"));
  mock_call_free(c);
  /* the runtime's delete waits for the gate: so does the Delete */
  dr.id = "rf";
  d = task_fixture_invoke(f, "Delete", &dr.base);
  mock_host_run_for(&f->m.host, 50);
  if (d->answered)
    fail_msg("delete answered before the runtime's: %d %s", d->code, d->message ? d->message : "");
  fd = open(gate, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
  assert_true(fd >= 0);
  close(fd);
  unsetenv("FAKE_RUNC_GATE");
  assert_true(mock_host_run_call(&f->m.host, d, TASK_FIXTURE_TIMEOUT_MS));
  assert_int_equal(d->answered, 1);
  if (d->code != 0)
    fail_msg("delete: %s", d->message);
  dresp = (void *)mock_call_unpack(d, &containerd__task__v2__delete_response__descriptor);
  assert_int_equal(dresp->exit_status, 137);
  protobuf_c_message_free_unpacked(&dresp->base, NULL);
  mock_call_free(d);
  assert_true(mock_host_run_until(&f->m.host, no_containers, f, TASK_FIXTURE_TIMEOUT_MS));
  {
    cshim_autofree char *lines = argv_lines(f, "delete");
    assert_non_null(strstr(lines, "delete --force rf\n"));
  }
  assert_true(mock_host_run_call(&f->m.host, w, TASK_FIXTURE_TIMEOUT_MS));
  assert_int_equal(w->code, 0);
  wresp = (void *)mock_call_unpack(w, &containerd__task__v2__wait_response__descriptor);
  assert_int_equal(wresp->exit_status, 137);
  protobuf_c_message_free_unpacked(&wresp->base, NULL);
  mock_call_free(w);
  assert_int_equal(count_events(f, CSHIM_TOPIC_TASK_START), 0);
  assert_int_equal(count_events(f, CSHIM_TOPIC_TASK_EXIT), 0);
  assert_int_equal(count_events(f, CSHIM_TOPIC_TASK_DELETE), 1);
  task_fixture_expect_code(task_fixture_call(f, "Delete", &dr.base), CSHIM_GRPC_NOT_FOUND);
  mock_host_run_for(&f->m.host, 20);
  assert_int_equal(f->m.host.shutdown.calls, 1);
}

static void
test_control_criu_path_option_reaches_every_runtime_call(void **state)
{
  task_fixture_t *f = *state;
  Containerd__Runc__V1__Options o = CONTAINERD__RUNC__V1__OPTIONS__INIT;
  Google__Protobuf__Any any = GOOGLE__PROTOBUF__ANY__INIT;
  cshim_runc_options_t opts;
  cshim_error_t err = NULL;
  uint8_t buf[256];
  char image[256];

  o.criu_path = "/opt/criu/bin/criu";
  o.criu_work_path = "/tmp/cshim-criu-work-unused";
  snprintf(image, sizeof image, "%s/image-opt", f->base);
  o.criu_image_path = image;
  any.type_url = "containerd.runc.v1.Options";
  any.value.len = containerd__runc__v1__options__pack(&o, buf);
  any.value.data = buf;
  create(f, "cp", NULL, &any);
  start(f, "cp");
  /* no path in the request or its options: the runc options' criu_image_path */
  task_fixture_expect_code(checkpoint(f, "cp", NULL, NULL), 0);
  {
    cshim_autofree char *lines = argv_lines(f, "checkpoint");
    char want[512];
    /* --criu sits among the global flags; the work path comes from the options */
    snprintf(want, sizeof want,
             " --criu /opt/criu/bin/criu checkpoint --image-path %s --work-path "
             "/tmp/cshim-criu-work-unused --leave-running cp\n",
             image);
    if (strstr(lines, want) == NULL)
      fail_msg("argv:\n%s\nwant:%s", lines, want);
  }
  {
    cshim_autofree char *lines = argv_lines(f, "create");
    assert_non_null(strstr(lines, " --criu /opt/criu/bin/criu create "));
  }
  assert_int_equal(cshim_runc_options_read(f->bundle, &opts, &err), 1);
  assert_string_equal(opts.criu_path, "/opt/criu/bin/criu");
  cshim_runc_options_clear(&opts);
  finish(f, "cp");
}

int
main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_control_pause_and_resume_publish_events_and_states,
                                      setup, teardown),
      cmocka_unit_test_setup_teardown(test_control_state_reports_pausing_while_pause_runs, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_control_pause_refuses_unknown_created_and_stopped_tasks,
                                      setup, teardown),
      cmocka_unit_test_setup_teardown(test_control_update_hands_the_resources_json_to_the_runtime,
                                      setup, teardown),
      cmocka_unit_test_setup_teardown(
          test_control_update_of_created_task_works_and_of_stopped_does_not, setup, teardown),
      cmocka_unit_test_setup_teardown(test_control_stats_returns_cgroup_metrics, setup, teardown),
      cmocka_unit_test_setup_teardown(test_control_checkpoint_passes_every_option_to_the_runtime,
                                      setup, teardown),
      cmocka_unit_test_setup_teardown(test_control_checkpoint_with_exit_stops_the_task, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_control_checkpoint_failure_keeps_the_criu_log, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_control_checkpoint_refuses_bad_requests, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_control_create_from_checkpoint_restores_at_start, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_control_restored_task_writes_to_its_stdio, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_control_runsc_stats_come_from_runsc_events,
                                      setup_runsc_named, teardown),
      cmocka_unit_test_setup_teardown(
          test_control_failed_restore_deletes_the_container_and_ends_the_shim, setup, teardown),
      cmocka_unit_test_setup_teardown(test_control_criu_path_option_reaches_every_runtime_call,
                                      setup, teardown),
      cmocka_unit_test_setup_teardown(
          test_control_runc_model_answers_state_and_pids_without_the_runtime, setup_runc_named,
          teardown),
      cmocka_unit_test_setup_teardown(test_control_other_runtimes_are_asked_for_state, setup,
                                      teardown),
  };
  signal(SIGPIPE, SIG_IGN);
  setenv("ASAN_OPTIONS", "detect_leaks=0", 1);
  prctl(PR_SET_CHILD_SUBREAPER, 1);
  return cmocka_run_group_tests(tests, NULL, NULL);
}
