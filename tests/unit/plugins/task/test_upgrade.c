// SPDX-License-Identifier: Apache-2.0
// The task plugin's live-upgrade state (plugins/task/upgrade.c): a round trip through the state
// format of containers made by the real handlers with a fake runc (FIFO stdio with output
// flowing, an exec, a created task, the cgroup v1 OOM eventfd where the machine has one); the
// previous release's records; corrupt records refused with a reason.
//
// One process plays both images: the first service saves, its descriptors are kept under their
// numbers (as an exec keeps them) while it is closed, and a second service on a fresh loop
// restores; its own save must give the same document back.
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

#include <cshim/state.h>
#include <cshim/util.h>

#include "container.h"
#include "fd.h"
#include "fixture.h"
#include "handlers.h"
#include "model.h"
#include "oom.h"
#include "service.h"
#include "upgrade.h"

#include <cmocka.h>

#ifndef FAKE_RUNC_PATH
#error FAKE_RUNC_PATH must be defined
#endif

#define TIMEOUT_MS 10000

/* Record numbers of plugins/task/upgrade.c (documented there; never reused). */
enum
{
  UP_CONTAINER = 1,
  C_ID = 1,
  C_BUNDLE = 2,
  C_OPTS = 3,
  C_INIT = 9,
  C_EXEC = 10,
  C_OP = 15,
  O_BINARY = 6,
  O_ROOT = 7,
  P_EXEC_ID = 1,
  P_PID = 2,
  P_STATE = 3,
  OP_WHAT = 1,
  OP_EXEC_ID = 2,
};

#define ARGS "[\"/bin/sh\",\"-c\",\"while :; do echo tick; sleep 0.02; done\"]"

static int
setup(void **state)
{
  *state = task_fixture_new("upgrade", FAKE_RUNC_PATH, ARGS);
  return 0;
}

static int
teardown(void **state)
{
  task_fixture_free(*state);
  return 0;
}

/* ---- calls ---- */

static int
call(task_fixture_t *f, const char *name, const ProtobufCMessage *req)
{
  mock_call_t *c = task_fixture_call(f, name, req);
  int code = c->code;
  if (code != 0) {
    print_message("%s: %s\n", name, c->message ? c->message : "");
    mock_host_dump_lines(&f->m.host);
  }
  mock_call_free(c);
  return code;
}

static void
create(task_fixture_t *f, const char *id, const char *out)
{
  Containerd__Task__V2__CreateTaskRequest req = CONTAINERD__TASK__V2__CREATE_TASK_REQUEST__INIT;
  req.id = (char *)id;
  req.bundle = f->bundle;
  req.stdin = "";
  req.stdout = (char *)out;
  req.stderr = "";
  assert_int_equal(call(f, "Create", &req.base), 0);
}

static void
start(task_fixture_t *f, const char *id, const char *exec_id)
{
  Containerd__Task__V2__StartRequest req = CONTAINERD__TASK__V2__START_REQUEST__INIT;
  req.id = (char *)id;
  req.exec_id = (char *)exec_id;
  assert_int_equal(call(f, "Start", &req.base), 0);
}

static void
exec_process_io(task_fixture_t *f, const char *id, const char *exec_id, const char *in,
                const char *out)
{
  Containerd__Task__V2__ExecProcessRequest req = CONTAINERD__TASK__V2__EXEC_PROCESS_REQUEST__INIT;
  Google__Protobuf__Any spec = GOOGLE__PROTOBUF__ANY__INIT;
  static char json[] = "{\"args\":[\"/bin/sleep\",\"100\"],\"env\":[\"PATH=/bin\"],\"cwd\":\"/\"}";

  spec.type_url = "types.containerd.io/opencontainers/runtime-spec/1/Process";
  spec.value.data = (uint8_t *)json;
  spec.value.len = strlen(json);
  req.id = (char *)id;
  req.exec_id = (char *)exec_id;
  req.stderr = "";
  req.stdin = (char *)in;
  req.stdout = (char *)out;
  req.spec = &spec;
  assert_int_equal(call(f, "Exec", &req.base), 0);
}

static void
exec_process(task_fixture_t *f, const char *id, const char *exec_id)
{
  exec_process_io(f, id, exec_id, "", "");
}

static int
kill_task(task_fixture_t *f, const char *id, const char *exec_id)
{
  Containerd__Task__V2__KillRequest req = CONTAINERD__TASK__V2__KILL_REQUEST__INIT;
  req.id = (char *)id;
  req.exec_id = (char *)exec_id;
  req.signal = SIGKILL;
  return call(f, "Kill", &req.base);
}

static bool
stopped_pred(void *data)
{
  const task_process_t *p = data;
  return p->state == TASK_PROC_STOPPED;
}

/* Output arriving on c1's stdout FIFO (n more bytes than before). */
struct output
{
  task_fixture_t *f;
  size_t want;
};

static bool
output_pred(void *data)
{
  struct output *o = data;
  task_fixture_drain(o->f);
  return o->f->out_len >= o->want;
}

static void
expect_output(task_fixture_t *f, size_t more)
{
  struct output o = {f, f->out_len + more};
  if (!mock_host_run_until(&f->m.host, output_pred, &o, TIMEOUT_MS))
    fail_msg("no output (%zu bytes so far)", f->out_len);
}

/* ---- the state ---- */

static void
save_as(task_fixture_t *f, bool crash, uint8_t **doc, size_t *len, int *fds, size_t max_fds,
        size_t *n_fds)
{
  cshim_state_writer_t w;
  cshim_error_t err = NULL;
  const int *list;

  cshim_state_writer_init(&w);
  w.crash = crash; /* as the host's crash guard sets it */
  if (task_upgrade_save(f->svc, &w, &err) < 0)
    fail_msg("save: %s", err->msg);
  list = cshim_state_writer_fds(&w, n_fds);
  assert_true(*n_fds <= max_fds);
  memcpy(fds, list, *n_fds * sizeof *fds);
  assert_int_equal(cshim_state_writer_finish(&w, doc, len, &err), 0);
  cshim_state_writer_fini(&w);
}

static void
save(task_fixture_t *f, uint8_t **doc, size_t *len, int *fds, size_t max_fds, size_t *n_fds)
{
  save_as(f, false, doc, len, fds, max_fds, n_fds);
}

static int
restore(task_fixture_t *f, const uint8_t *doc, size_t len, cshim_error_t *err)
{
  cshim_state_reader_t r;
  int ret =
      cshim_state_open(doc, len, CSHIM_STATE_FORMAT_MIN, CSHIM_STATE_FORMAT_VERSION, NULL, &r, err);
  if (ret < 0)
    return ret;
  return task_upgrade_restore(f->svc, &r, err);
}

/* Close the service as an exec would end the image: its descriptors stay open under their
   numbers; then a new service (same loop and reaper) for the next image. */
static void
next_image(task_fixture_t *f, const int *fds, size_t n)
{
  int kept[64];

  assert_true(n <= 64);
  for (size_t i = 0; i < n; i++) {
    kept[i] = fcntl(fds[i], F_DUPFD_CLOEXEC, 100);
    if (kept[i] < 0)
      fail_msg("the document names fd %d, which is closed", fds[i]);
  }
  task_fixture_close_service(f->svc);
  mock_host_run_for(&f->m.host, 20);
  for (size_t i = 0; i < n; i++) {
    assert_int_equal(dup2(kept[i], fds[i]), fds[i]);
    close(kept[i]);
  }
  f->svc = task_fixture_open_service(&f->m);
}

/* A host that keeps what the plugin gives up open, as the crash guard does until its next
   snapshot (host_upgrade_close_fd). */
static int given_up[64];
static size_t n_given_up;

static void
keeping_close_fd(cshim_host_t *host, int fd)
{
  (void)host;
  assert_true(n_given_up < 64);
  given_up[n_given_up++] = fd;
}

static cshim_host_t keeping_host = {.struct_size = sizeof(cshim_host_t),
                                    .close_fd = keeping_close_fd};

/* c1 runs with its stdout on a FIFO; exec e1 runs with its stdin and stdout on FIFOs; a crash
   snapshot is taken (it names e1's copies); then e1's stdin is closed (CloseIO): the shim gives
   up its own writer on the stdin FIFO, the copy sees the end and gives up its descriptors. */
struct given_up_wait
{
  const int *fds;
  size_t n;
};

/* e1's stdin writer, its FIFO and its pipe given up: to the keeping host, or closed */
static bool
stdin_done_pred(void *data)
{
  const struct given_up_wait *g = data;
  size_t closed = 0;
  for (size_t i = 0; i < g->n; i++)
    closed += fcntl(g->fds[i], F_GETFD) < 0;
  return n_given_up >= 3 || closed >= 3;
}

static void
snapshot_then_close_exec_stdin(task_fixture_t *f, bool crash, uint8_t **doc, size_t *len, int *fds,
                               size_t *n_fds)
{
  Containerd__Task__V2__CloseIORequest req = CONTAINERD__TASK__V2__CLOSE_IOREQUEST__INIT;
  struct given_up_wait g;

  assert_int_equal(mkfifo(f->out_path, 0600), 0);
  assert_int_equal(mkfifo(f->err_path, 0600), 0);
  assert_int_equal(mkfifo(f->in_path, 0600), 0);
  f->out_fd = open(f->out_path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  f->err_fd = open(f->err_path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  assert_true(f->out_fd >= 0 && f->err_fd >= 0);
  create(f, "c1", f->out_path);
  start(f, "c1", "");
  exec_process_io(f, "c1", "e1", f->in_path, f->err_path);
  start(f, "c1", "e1");
  save_as(f, crash, doc, len, fds, 64, n_fds);
  assert_true(*n_fds >= 4);
  g.fds = fds;
  g.n = *n_fds;
  req.id = "c1";
  req.exec_id = "e1";
  req.stdin = true;
  assert_int_equal(call(f, "CloseIO", &req.base), 0);
  assert_true(mock_host_run_until(&f->m.host, stdin_done_pred, &g, TIMEOUT_MS));
}

/* The issue-10 failure at its root: a descriptor a crash snapshot names (e1's runtime-side
   stdout pipe) is closed after the snapshot. Given up through the host, it stays open until the
   next snapshot, so a crash at this point restores every process with its stdio. */
static void
test_upgrade_crash_snapshot_names_only_open_descriptors(void **state)
{
  task_fixture_t *f = *state;
  cshim_autofree uint8_t *doc = NULL;
  cshim_error_t err = NULL;
  size_t len = 0, n_fds = 0;
  int fds[64];
  task_container_t *c1;
  task_process_t *e1;

  task_fd_use_host(&keeping_host);
  snapshot_then_close_exec_stdin(f, true, &doc, &len, fds, &n_fds);
  for (size_t i = 0; i < n_fds; i++)
    if (fcntl(fds[i], F_GETFD) < 0)
      fail_msg("the crash snapshot names fd %d, closed since", fds[i]);

  /* the crash: what was given up and what the plugin still held stay under their numbers */
  task_fd_use_host(NULL);
  n_given_up = 0;
  next_image(f, fds, n_fds);
  if (restore(f, doc, len, &err) < 0)
    fail_msg("restore: %s", err->msg);
  c1 = task_service_find(f->svc, "c1");
  assert_non_null(c1);
  e1 = task_container_process(c1, "e1");
  assert_non_null(e1);
  assert_non_null(e1->io);
  assert_non_null(c1->init->io);
  expect_output(f, 10);
}

/* A crash restore that finds one process's stdio unusable (here: a descriptor the snapshot
   names was closed for good) keeps that process without its stdio, logs it, and restores every
   container; output of the others goes on. */
static void
test_upgrade_crash_restore_drops_only_the_stdio_it_cannot_use(void **state)
{
  task_fixture_t *f = *state;
  cshim_autofree uint8_t *doc = NULL;
  cshim_error_t err = NULL;
  size_t len = 0, n_fds = 0, n_open = 0;
  int fds[64], open_fds[64];
  task_container_t *c1;
  task_process_t *e1;

  task_fd_use_host(NULL); /* closed at once */
  snapshot_then_close_exec_stdin(f, true, &doc, &len, fds, &n_fds);
  for (size_t i = 0; i < n_fds; i++)
    if (fcntl(fds[i], F_GETFD) >= 0)
      open_fds[n_open++] = fds[i];
  assert_true(n_open < n_fds); /* e1's stdin descriptors are gone */

  next_image(f, open_fds, n_open);
  if (restore(f, doc, len, &err) < 0)
    fail_msg("restore: %s", err->msg);
  c1 = task_service_find(f->svc, "c1");
  assert_non_null(c1);
  assert_int_equal(c1->init->state, TASK_PROC_RUNNING);
  assert_non_null(c1->init->io);
  e1 = task_container_process(c1, "e1");
  assert_non_null(e1);
  assert_null(e1->io);
  assert_true(
      mock_host_count_lines(&f->m.host, CSHIM_LOG_WARN, "stdio of exec e1", "dropped", NULL) > 0);
  expect_output(f, 10);
}

/* An upgrade's document is taken at a quiet point: a descriptor missing there is refused (the
   host hands back to the previous image, which still holds everything). */
static void
test_upgrade_refuses_missing_stdio_outside_a_crash(void **state)
{
  task_fixture_t *f = *state;
  cshim_autofree uint8_t *doc = NULL;
  cshim_error_t err = NULL;
  size_t len = 0, n_fds = 0, n_open = 0;
  int fds[64], open_fds[64];

  task_fd_use_host(NULL);
  snapshot_then_close_exec_stdin(f, false, &doc, &len, fds, &n_fds);
  for (size_t i = 0; i < n_fds; i++)
    if (fcntl(fds[i], F_GETFD) >= 0)
      open_fds[n_open++] = fds[i];
  next_image(f, open_fds, n_open);
  assert_true(restore(f, doc, len, &err) < 0);
  assert_non_null(strstr(err->msg, "stdio of pid"));
  cshim_error_release(&err);
  task_fixture_reopen_service(f);
}

static void
test_upgrade_round_trip_of_running_containers(void **state)
{
  task_fixture_t *f = *state;
  cshim_autofree uint8_t *doc = NULL, *again = NULL;
  size_t len = 0, again_len = 0, n_fds = 0, n_again = 0;
  int fds[64], fds_again[64];
  char out_uri[600];
  cshim_error_t err = NULL;
  task_container_t *c1, *c2;
  task_process_t *e1;
  bool oom_v1;

  assert_int_equal(mkfifo(f->out_path, 0600), 0);
  f->out_fd = open(f->out_path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  assert_true(f->out_fd >= 0);
  snprintf(out_uri, sizeof out_uri, "%s", f->out_path);
  create(f, "c1", out_uri);
  start(f, "c1", "");
  exec_process(f, "c1", "e1");
  start(f, "c1", "e1");
  create(f, "c2", "");
  expect_output(f, 10);
  c1 = task_service_find(f->svc, "c1");
  assert_non_null(c1);
  oom_v1 = task_oom_eventfd(c1) >= 0;

  save(f, &doc, &len, fds, 64, &n_fds);
  assert_true(n_fds >= 2); /* c1's stdout copy at least */
  print_message("state: %zu bytes, %zu descriptors, OOM eventfd: %s\n", len, n_fds,
                oom_v1 ? "yes" : "no");
  next_image(f, fds, n_fds);
  if (restore(f, doc, len, &err) < 0)
    fail_msg("restore: %s", err->msg);

  /* the same document back */
  save(f, &again, &again_len, fds_again, 64, &n_again);
  assert_int_equal(n_again, n_fds);
  assert_memory_equal(fds_again, fds, n_fds * sizeof *fds);
  assert_int_equal(again_len, len);
  assert_memory_equal(again, doc, len);

  /* and it carries on: output flows, the OOM watch is the same eventfd, the processes are
     watched (kill: 137) */
  expect_output(f, 10);
  c1 = task_service_find(f->svc, "c1");
  c2 = task_service_find(f->svc, "c2");
  assert_non_null(c1);
  assert_non_null(c2);
  assert_int_equal(c1->init->state, TASK_PROC_RUNNING);
  assert_int_equal(c2->init->state, TASK_PROC_CREATED);
  if (oom_v1)
    assert_true(task_oom_eventfd(c1) >= 0);
  e1 = task_container_process(c1, "e1");
  assert_non_null(e1);
  assert_int_equal(kill_task(f, "c1", "e1"), 0);
  assert_true(mock_host_run_until(&f->m.host, stopped_pred, e1, TIMEOUT_MS));
  assert_int_equal(e1->exit_status, 128 + SIGKILL);
  assert_int_equal(kill_task(f, "c1", ""), 0);
  assert_true(mock_host_run_until(&f->m.host, stopped_pred, c1->init, TIMEOUT_MS));
  assert_int_equal(c1->init->exit_status, 128 + SIGKILL);
}

/* What the previous release wrote (no crash records, no OOM eventfd) restores as it did. */
static void
test_upgrade_reads_the_previous_release_records(void **state)
{
  task_fixture_t *f = *state;
  cshim_state_writer_t w;
  cshim_autofree uint8_t *doc = NULL;
  cshim_error_t err = NULL;
  task_container_t *c;
  size_t len = 0;

  cshim_state_writer_init(&w);
  cshim_state_begin(&w, UP_CONTAINER);
  cshim_state_put_str(&w, C_ID, "old");
  cshim_state_put_str(&w, C_BUNDLE, f->bundle);
  cshim_state_begin(&w, C_OPTS);
  cshim_state_put_str(&w, O_BINARY, FAKE_RUNC_PATH);
  cshim_state_put_str(&w, O_ROOT, f->root);
  cshim_state_end(&w);
  cshim_state_begin(&w, C_INIT);
  cshim_state_put_u32(&w, P_PID, 0);
  cshim_state_put_u32(&w, P_STATE, TASK_PROC_CREATED);
  cshim_state_end(&w);
  cshim_state_put_u32(&w, 999, 7); /* a later release's record: skipped */
  cshim_state_end(&w);
  assert_int_equal(cshim_state_writer_finish(&w, &doc, &len, &err), 0);
  cshim_state_writer_fini(&w);

  if (restore(f, doc, len, &err) < 0)
    fail_msg("restore: %s", err->msg);
  c = task_service_find(f->svc, "old");
  assert_non_null(c);
  assert_false(c->creating);
  assert_int_equal(c->init->state, TASK_PROC_CREATED);
  assert_true(cshim_list_empty(&c->ops));
  assert_false(c->init->starting);
}

/* Each corrupt document is refused with a reason (the host then rolls back). */
static void
corrupt_case(task_fixture_t *f, int which, const char *expect)
{
  cshim_state_writer_t w;
  cshim_autofree uint8_t *doc = NULL;
  cshim_error_t err = NULL;
  size_t len = 0;

  cshim_state_writer_init(&w);
  cshim_state_begin(&w, UP_CONTAINER);
  cshim_state_put_str(&w, C_ID, which == 0 ? "../escape" : "bad");
  cshim_state_put_str(&w, C_BUNDLE, f->bundle);
  cshim_state_begin(&w, C_OPTS);
  cshim_state_put_str(&w, O_BINARY, FAKE_RUNC_PATH);
  cshim_state_put_str(&w, O_ROOT, f->root);
  cshim_state_end(&w);
  if (which == 1) {
    cshim_state_put_u32(&w, C_INIT, 5); /* a scalar where a list belongs */
  } else if (which != 2) {
    cshim_state_begin(&w, C_INIT);
    cshim_state_put_u32(&w, P_STATE, which == 3 ? 9 : TASK_PROC_RUNNING);
    cshim_state_end(&w);
  }
  if (which == 4) {
    cshim_state_begin(&w, C_EXEC); /* an exec without its id */
    cshim_state_put_u32(&w, P_STATE, TASK_PROC_CREATED);
    cshim_state_end(&w);
  }
  if (which == 5) {
    cshim_state_begin(&w, C_OP); /* an operation on a process that is not there */
    cshim_state_put_str(&w, OP_WHAT, "start");
    cshim_state_put_str(&w, OP_EXEC_ID, "nope");
    cshim_state_end(&w);
  }
  cshim_state_end(&w);
  assert_int_equal(cshim_state_writer_finish(&w, &doc, &len, &err), 0);
  cshim_state_writer_fini(&w);

  assert_true(restore(f, doc, len, &err) < 0);
  assert_non_null(err);
  if (strstr(err->msg, expect) == NULL)
    fail_msg("case %d: `%s` does not say `%s`", which, err->msg, expect);
  cshim_error_release(&err);
  /* a half-restored service still closes cleanly (the host would roll back instead) */
  task_fixture_reopen_service(f);
}

static void
test_upgrade_refuses_corrupt_records(void **state)
{
  task_fixture_t *f = *state;

  corrupt_case(f, 0, "escape");
  corrupt_case(f, 1, "");
  corrupt_case(f, 2, "has no init");
  corrupt_case(f, 3, "process state 9");
  corrupt_case(f, 4, "without an id");
  corrupt_case(f, 5, "unknown process `nope`");
}

int
main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_upgrade_round_trip_of_running_containers, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_upgrade_reads_the_previous_release_records, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_upgrade_refuses_corrupt_records, setup, teardown),
      cmocka_unit_test_setup_teardown(test_upgrade_crash_snapshot_names_only_open_descriptors,
                                      setup, teardown),
      cmocka_unit_test_setup_teardown(test_upgrade_crash_restore_drops_only_the_stdio_it_cannot_use,
                                      setup, teardown),
      cmocka_unit_test_setup_teardown(test_upgrade_refuses_missing_stdio_outside_a_crash, setup,
                                      teardown),
  };
  /* the fake runc leaks on purpose (it exits at once) */
  setenv("ASAN_OPTIONS", "detect_leaks=0", 1);
  /* Container and exec processes are grandchildren (the fake runc exits): adopt them. */
  prctl(PR_SET_CHILD_SUBREAPER, 1);
  return cmocka_run_group_tests(tests, NULL, NULL);
}
