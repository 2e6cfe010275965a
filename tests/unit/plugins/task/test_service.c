// SPDX-License-Identifier: Apache-2.0
// The task service driven end to end with a fake runc: RPC answers, event order, stdio, mounts,
// errors, shutdown.
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
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <cshim/util.h>

#include "containerd/events/task.pb-c.h"
#include "containerd/runc/options/oci.pb-c.h"
#include "fixture.h"
#include "handlers.h"
#include "model.h"
#include "service.h"
#include "containerd/task/v2/shim.pb-c.h"

#include <cmocka.h>

#ifndef FAKE_RUNC_PATH
#error FAKE_RUNC_PATH must be defined
#endif

static int
setup(void **state)
{
  task_fixture_t *f = task_fixture_new("task-test", FAKE_RUNC_PATH, "[\"/bin/true\"]");
  unsetenv("FAKE_RUNC_START_DELAY_MS");
  unsetenv("FAKE_RUNC_FAIL");
  *state = f;
  return 0;
}

static int
teardown(void **state)
{
  task_fixture_free(*state);
  return 0;
}

static void
make_fifos(task_fixture_t *f)
{
  assert_int_equal(mkfifo(f->out_path, 0600), 0);
  assert_int_equal(mkfifo(f->err_path, 0600), 0);
  f->out_fd = open(f->out_path, O_RDONLY | O_NONBLOCK);
  f->err_fd = open(f->err_path, O_RDONLY | O_NONBLOCK);
  assert_true(f->out_fd >= 0 && f->err_fd >= 0);
}

static uint32_t
create(task_fixture_t *f, const char *id, const char *stdout_, const char *stderr_)
{
  Containerd__Task__V2__CreateTaskRequest req = CONTAINERD__TASK__V2__CREATE_TASK_REQUEST__INIT;
  Containerd__Task__V2__CreateTaskResponse *resp;
  mock_call_t *c;
  uint32_t pid;

  req.id = (char *)id;
  req.bundle = f->bundle;
  req.stdout = (char *)(stdout_ ? stdout_ : "");
  req.stderr = (char *)(stderr_ ? stderr_ : "");
  c = task_fixture_call(f, "Create", &req.base);
  if (c->code != 0)
    fail_msg("create: %s", c->message);
  resp = (void *)mock_call_unpack(c, &containerd__task__v2__create_task_response__descriptor);
  pid = resp->pid;
  assert_true(pid > 0);
  protobuf_c_message_free_unpacked(&resp->base, NULL);
  mock_call_free(c);
  return pid;
}

static void
start(task_fixture_t *f, const char *id, uint32_t want_pid)
{
  Containerd__Task__V2__StartRequest req = CONTAINERD__TASK__V2__START_REQUEST__INIT;
  Containerd__Task__V2__StartResponse *resp;
  mock_call_t *c;
  req.id = (char *)id;
  c = task_fixture_call(f, "Start", &req.base);
  if (c->code != 0)
    fail_msg("start: %s", c->message);
  resp = (void *)mock_call_unpack(c, &containerd__task__v2__start_response__descriptor);
  assert_int_equal(resp->pid, want_pid);
  protobuf_c_message_free_unpacked(&resp->base, NULL);
  mock_call_free(c);
}

static mock_call_t *
wait_call(task_fixture_t *f, const char *id)
{
  Containerd__Task__V2__WaitRequest req = CONTAINERD__TASK__V2__WAIT_REQUEST__INIT;
  req.id = (char *)id;
  return task_fixture_invoke(f, "Wait", &req.base);
}

static uint32_t
wait_status(task_fixture_t *f, mock_call_t *c)
{
  Containerd__Task__V2__WaitResponse *resp;
  uint32_t st;
  if (!mock_host_run_call(&f->m.host, c, TASK_FIXTURE_TIMEOUT_MS))
    fail_msg("wait not answered");
  resp = (void *)mock_call_unpack(c, &containerd__task__v2__wait_response__descriptor);
  st = resp->exit_status;
  assert_non_null(resp->exited_at);
  assert_true(resp->exited_at->seconds > 1600000000);
  protobuf_c_message_free_unpacked(&resp->base, NULL);
  mock_call_free(c);
  return st;
}

static Containerd__Task__V2__DeleteResponse *
delete_task(task_fixture_t *f, const char *id, bool draining)
{
  Containerd__Task__V2__DeleteRequest req = CONTAINERD__TASK__V2__DELETE_REQUEST__INIT;
  Containerd__Task__V2__DeleteResponse *resp;
  mock_call_t *c;
  req.id = (char *)id;
  c = draining ? task_fixture_call_draining(f, "Delete", &req.base)
               : task_fixture_call(f, "Delete", &req.base);
  if (c->code != 0)
    fail_msg("delete: %s", c->message);
  resp = (void *)mock_call_unpack(c, &containerd__task__v2__delete_response__descriptor);
  mock_call_free(c);
  return resp;
}

static Containerd__V1__Types__Status
state_of(task_fixture_t *f, const char *id, int64_t *exited_sec)
{
  Containerd__Task__V2__StateRequest req = CONTAINERD__TASK__V2__STATE_REQUEST__INIT;
  Containerd__Task__V2__StateResponse *resp;
  Containerd__V1__Types__Status st;
  mock_call_t *c;
  req.id = (char *)id;
  c = task_fixture_call(f, "State", &req.base);
  if (c->code != 0)
    fail_msg("state: %s", c->message);
  /* answered already packed (reply_state keeps the packed answer) */
  assert_int_equal(c->packed, 1);
  assert_ptr_equal(c->packed_type, &containerd__task__v2__state_response__descriptor);
  resp = (void *)mock_call_unpack(c, &containerd__task__v2__state_response__descriptor);
  st = resp->status;
  assert_string_equal(resp->id, id);
  assert_string_equal(resp->bundle, f->bundle);
  assert_non_null(resp->exited_at);
  if (exited_sec)
    *exited_sec = resp->exited_at->seconds;
  protobuf_c_message_free_unpacked(&resp->base, NULL);
  mock_call_free(c);
  return st;
}

static void
expect_topics(task_fixture_t *f, const char *const *topics)
{
  size_t n = 0;
  while (topics[n])
    n++;
  if (f->m.n_events != n) {
    for (size_t i = 0; i < f->m.n_events; i++)
      fprintf(stderr, "  event %zu: %s\n", i, f->m.events[i].topic);
    fail_msg("%zu events, want %zu", f->m.n_events, n);
  }
  for (size_t i = 0; i < n; i++)
    assert_string_equal(f->m.events[i].topic, topics[i]);
}

static bool
no_containers(void *data)
{
  task_fixture_t *f = data;
  return cshim_list_empty(&f->svc->containers);
}

static bool
no_containers_but_one(void *data)
{
  task_fixture_t *f = data;
  return cshim_list_length(&f->svc->containers) == 1;
}

static char *
read_text(const char *path, size_t *len)
{
  FILE *fp = fopen(path, "r");
  char *text = cshim_xmalloc0(65536);
  assert_non_null(fp);
  *len = fread(text, 1, 65535, fp);
  fclose(fp);
  return text;
}

/* ---- tests ---- */

/* ---- tracing: the call's span names the container; runtime and stdio work are children ---- */

struct cshim_span_s
{
  char name[64];
  const struct cshim_span_s *parent;
  char container[64];
  int ended, error;
};

static struct cshim_span_s server_span = {.name = "server"};
static struct cshim_span_s child_spans[16];
static int n_child_spans;

static cshim_span_t *
fake_start(cshim_tracer_t *tracer, const cshim_span_t *parent, const char *name)
{
  cshim_span_t *s;
  (void)tracer;
  if (parent == NULL || n_child_spans == (int)CSHIM_N_ELEMENTS(child_spans))
    return NULL;
  s = &child_spans[n_child_spans++];
  memset(s, 0, sizeof *s);
  snprintf(s->name, sizeof s->name, "%s", name);
  s->parent = parent;
  return s;
}

static void
fake_set_attr(cshim_span_t *span, const char *key, const char *value)
{
  if (strcmp(key, "container.id") == 0)
    snprintf(span->container, sizeof span->container, "%s", value);
}

static void
fake_end(cshim_span_t *span, int error, const char *message)
{
  (void)message;
  span->ended++;
  span->error = error;
}

/* Every call in progress has the one server span (the test runs one call at a time). */
static cshim_span_t *
fake_call_span(cshim_tracer_t *tracer, const cshim_ttrpc_call_t *call)
{
  (void)tracer;
  return call ? &server_span : NULL;
}

static cshim_tracer_t fake_tracer = {.struct_size = sizeof(cshim_tracer_t),
                                     .start = fake_start,
                                     .set_attr = fake_set_attr,
                                     .end = fake_end,
                                     .call_span = fake_call_span};

static const struct cshim_span_s *
child_named(const char *name)
{
  for (int i = 0; i < n_child_spans; i++)
    if (strcmp(child_spans[i].name, name) == 0)
      return &child_spans[i];
  return NULL;
}

static void
test_service_traces_calls_runtime_commands_and_stdio_setup(void **state)
{
  task_fixture_t *f = *state;
  const struct cshim_span_s *s;
  uint32_t pid;

  n_child_spans = 0;
  memset(server_span.container, 0, sizeof server_span.container);
  /* The task plugin finds the tracer at init, as it finds the tracing plugin's. */
  mock_host_add_instance(&f->m.host, CSHIM_TYPE_INTERNAL, CSHIM_TRACER_ID, &fake_tracer);
  task_fixture_reopen_service(f);
  assert_ptr_equal(f->svc->tracer, &fake_tracer);
  assert_ptr_not_equal(f->svc->service_v2.methods, task_methods);
  make_fifos(f);
  pid = create(f, "c1", f->out_path, f->err_path);
  assert_string_equal(server_span.container, "c1");

  s = child_named("stdio setup");
  assert_non_null(s);
  assert_ptr_equal(s->parent, &server_span);
  assert_string_equal(s->container, "c1");
  assert_int_equal(s->ended, 1);
  assert_int_equal(s->error, 0);
  s = child_named("fake-runc create");
  assert_non_null(s);
  assert_ptr_equal(s->parent, &server_span);
  assert_string_equal(s->container, "c1");
  assert_int_equal(s->ended, 1);

  start(f, "c1", pid);
  s = child_named("fake-runc start");
  assert_non_null(s);
  assert_int_equal(s->ended, 1);
  assert_int_equal(s->error, 0);
}

static void
test_service_runs_container_with_fifo_io_in_event_order(void **state)
{
  task_fixture_t *f = *state;
  static const char *const topics[] = {"/tasks/create", "/tasks/start", "/tasks/exit",
                                       "/tasks/delete", NULL};
  Containerd__Events__TaskCreate *ev;
  Containerd__Events__TaskExit *ex;
  Containerd__Task__V2__DeleteResponse *del;
  mock_call_t *w;
  uint32_t pid;
  cshim_runc_options_t opts;
  cshim_error_t err = NULL;
  char *rt = NULL;

  task_fixture_write_spec(f, "[\"/bin/sh\",\"-c\",\"echo hello; echo oops >&2; exit 3\"]", true);
  make_fifos(f);
  pid = create(f, "c1", f->out_path, f->err_path);

  ev = (void *)task_mock_unpack_event(&f->m, 0);
  assert_string_equal(ev->container_id, "c1");
  assert_string_equal(ev->bundle, f->bundle);
  assert_int_equal(ev->pid, pid);
  assert_string_equal(ev->io->stdout, f->out_path);
  protobuf_c_message_free_unpacked(&ev->base, NULL);

  /* The bundle records what `delete` needs. */
  assert_int_equal(cshim_runc_options_read(f->bundle, &opts, &err), 1);
  assert_string_equal(opts.binary_name, FAKE_RUNC_PATH);
  assert_string_equal(opts.root, f->root);
  cshim_runc_options_clear(&opts);
  assert_int_equal(cshim_runc_runtime_read(f->bundle, &rt, &err), 1);
  assert_string_equal(rt, FAKE_RUNC_PATH);
  free(rt);

  w = wait_call(f, "c1");
  assert_int_equal(w->answered, 0);
  start(f, "c1", pid);
  assert_int_equal(wait_status(f, w), 3);

  ex = (void *)task_mock_unpack_event(&f->m, 2);
  assert_string_equal(ex->container_id, "c1");
  assert_string_equal(ex->id, "c1");
  assert_int_equal(ex->pid, pid);
  assert_int_equal(ex->exit_status, 3);
  protobuf_c_message_free_unpacked(&ex->base, NULL);

  del = delete_task(f, "c1", true);
  assert_int_equal(del->pid, pid);
  assert_int_equal(del->exit_status, 3);
  protobuf_c_message_free_unpacked(&del->base, NULL);
  expect_topics(f, topics);
  assert_non_null(f->out);
  assert_string_equal(f->out, "hello\n");
  assert_int_equal(f->err_len, 5);
  /* Gone from the table. */
  {
    Containerd__Task__V2__StateRequest req = CONTAINERD__TASK__V2__STATE_REQUEST__INIT;
    req.id = "c1";
    task_fixture_expect_code(task_fixture_call(f, "State", &req.base), CSHIM_GRPC_NOT_FOUND);
  }
}

static void
test_service_close_io_lets_stdin_reach_eof(void **state)
{
  task_fixture_t *f = *state;
  Containerd__Task__V2__CreateTaskRequest req = CONTAINERD__TASK__V2__CREATE_TASK_REQUEST__INIT;
  Containerd__Task__V2__CloseIORequest cio = CONTAINERD__TASK__V2__CLOSE_IOREQUEST__INIT;
  Containerd__Task__V2__CreateTaskResponse *resp;
  char in_path[600];
  mock_call_t *c, *w;
  uint32_t pid;
  int writer;

  task_fixture_write_spec(f, "[\"/bin/cat\"]", true);
  make_fifos(f);
  snprintf(in_path, sizeof in_path, "%s/stdin", f->base);
  assert_int_equal(mkfifo(in_path, 0600), 0);
  req.id = "cat";
  req.bundle = f->bundle;
  req.stdin = in_path;
  req.stdout = f->out_path;
  req.stderr = f->err_path;
  c = task_fixture_call(f, "Create", &req.base);
  resp = (void *)mock_call_unpack(c, &containerd__task__v2__create_task_response__descriptor);
  pid = resp->pid;
  protobuf_c_message_free_unpacked(&resp->base, NULL);
  mock_call_free(c);
  writer = open(in_path, O_WRONLY | O_NONBLOCK);
  assert_true(writer >= 0);
  assert_int_equal(write(writer, "piped\n", 6), 6);
  close(writer);
  w = wait_call(f, "cat");
  start(f, "cat", pid);
  mock_host_run_for(&f->m.host, 200);
  assert_int_equal(w->answered, 0); /* our keeper holds stdin open */
  cio.id = "cat";
  cio.stdin = 1;
  task_fixture_expect_code(task_fixture_call(f, "CloseIO", &cio.base), 0);
  assert_int_equal(wait_status(f, w), 0);
  Containerd__Task__V2__DeleteResponse *del = delete_task(f, "cat", true);
  protobuf_c_message_free_unpacked(&del->base, NULL);
  assert_non_null(f->out);
  assert_string_equal(f->out, "piped\n");
}

static void
test_service_publishes_exit_after_start_when_exit_is_reaped_first(void **state)
{
  task_fixture_t *f = *state;
  static const char *const topics[] = {"/tasks/create", "/tasks/start", "/tasks/exit", NULL};
  uint32_t pid;
  mock_call_t *w;

  setenv("FAKE_RUNC_START_DELAY_MS", "300", 1);
  task_fixture_write_spec(f, "[\"/bin/true\"]", true);
  pid = create(f, "fast", NULL, NULL);
  w = wait_call(f, "fast");
  start(f, "fast", pid);
  assert_int_equal(wait_status(f, w), 0);
  expect_topics(f, topics);
  Containerd__Task__V2__DeleteResponse *del = delete_task(f, "fast", false);
  protobuf_c_message_free_unpacked(&del->base, NULL);
}

static void
test_service_kill_state_pids(void **state)
{
  task_fixture_t *f = *state;
  Containerd__Task__V2__KillRequest kill_req = CONTAINERD__TASK__V2__KILL_REQUEST__INIT;
  Containerd__Task__V2__PidsRequest pids_req = CONTAINERD__TASK__V2__PIDS_REQUEST__INIT;
  Containerd__Task__V2__PidsResponse *pids;
  Containerd__Task__V2__DeleteRequest del_req = CONTAINERD__TASK__V2__DELETE_REQUEST__INIT;
  Containerd__Task__V2__DeleteResponse *del;
  mock_call_t *c, *w1, *w2, *w3;
  int64_t exited = 0;
  uint32_t pid;

  task_fixture_write_spec(f, "[\"/bin/sleep\",\"100\"]", true);
  pid = create(f, "sleeper", NULL, NULL);
  assert_int_equal(state_of(f, "sleeper", &exited), CONTAINERD__V1__TYPES__STATUS__CREATED);
  assert_int_equal(exited, TASK_GO_ZERO_TIME_SECONDS);
  start(f, "sleeper", pid);
  assert_int_equal(state_of(f, "sleeper", NULL), CONTAINERD__V1__TYPES__STATUS__RUNNING);
  {
    /* asked again, the same answer (the kept one) */
    Containerd__Task__V2__StateRequest sreq = CONTAINERD__TASK__V2__STATE_REQUEST__INIT;
    mock_call_t *s1, *s2;
    sreq.id = "sleeper";
    s1 = task_fixture_call(f, "State", &sreq.base);
    s2 = task_fixture_call(f, "State", &sreq.base);
    assert_int_equal(s1->code, 0);
    assert_int_equal(s2->code, 0);
    assert_int_equal(s1->len, s2->len);
    assert_memory_equal(s1->payload, s2->payload, s1->len);
    mock_call_free(s1);
    mock_call_free(s2);
  }

  pids_req.id = "sleeper";
  c = task_fixture_call(f, "Pids", &pids_req.base);
  pids = (void *)mock_call_unpack(c, &containerd__task__v2__pids_response__descriptor);
  assert_int_equal(pids->n_processes, 1);
  assert_int_equal(pids->processes[0]->pid, pid);
  protobuf_c_message_free_unpacked(&pids->base, NULL);
  mock_call_free(c);

  del_req.id = "sleeper";
  c = task_fixture_call(f, "Delete", &del_req.base);
  assert_int_equal(c->code, CSHIM_GRPC_UNKNOWN);
  assert_string_equal(c->message, "cannot delete a running process");
  mock_call_free(c);

  w1 = wait_call(f, "sleeper");
  w3 = wait_call(f, "sleeper");
  w2 = wait_call(f, "sleeper");
  /* Waiting for an exit is not work in flight: the calls are parked. */
  assert_int_equal(w1->parked, 1);
  assert_int_equal(w2->parked, 1);
  /* The connection of a parked Wait closes: the call is dropped (answered to nobody), the
     others still wait. */
  assert_non_null(w3->cancel_cb);
  w3->cancel_cb(&w3->base, w3->cancel_data);
  assert_int_equal(w3->answered, 1);
  assert_int_equal(w3->code, CSHIM_GRPC_CANCELED);
  mock_call_free(w3);
  assert_int_equal(w1->answered, 0);
  assert_int_equal(w2->answered, 0);
  kill_req.id = "sleeper";
  kill_req.signal = SIGKILL;
  task_fixture_expect_code(task_fixture_call(f, "Kill", &kill_req.base), 0);
  assert_int_equal(wait_status(f, w1), 137);
  assert_int_equal(wait_status(f, w2), 137);
  task_fixture_expect_code(task_fixture_call(f, "Kill", &kill_req.base), CSHIM_GRPC_NOT_FOUND);
  assert_int_equal(state_of(f, "sleeper", &exited), CONTAINERD__V1__TYPES__STATUS__STOPPED);
  assert_true(exited > 1600000000);
  /* A Wait after the exit answers at once. */
  c = wait_call(f, "sleeper");
  assert_int_equal(c->answered, 1);
  assert_int_equal(c->parked, 0);
  assert_int_equal(wait_status(f, c), 137);

  del = delete_task(f, "sleeper", false);
  assert_int_equal(del->exit_status, 137);
  protobuf_c_message_free_unpacked(&del->base, NULL);
}

static bool
pid_gone(void *data)
{
  pid_t pid = *(pid_t *)data;
  return kill(pid, 0) < 0 && errno == ESRCH;
}

static void
test_service_kills_leftovers_when_init_exits_without_pid_namespace(void **state)
{
  task_fixture_t *f = *state;
  char pidfile[600], cmd[800];
  mock_call_t *w;
  uint32_t pid;
  pid_t bg = 0;
  FILE *fp;

  snprintf(pidfile, sizeof pidfile, "%s/bg.pid", f->base);
  snprintf(cmd, sizeof cmd, "[\"/bin/sh\",\"-c\",\"sleep 100 & echo $! > %s; exit 0\"]", pidfile);
  task_fixture_write_spec(f, cmd, false);
  pid = create(f, "shared", NULL, NULL);
  w = wait_call(f, "shared");
  start(f, "shared", pid);
  assert_int_equal(wait_status(f, w), 0);
  fp = fopen(pidfile, "r");
  assert_non_null(fp);
  assert_int_equal(fscanf(fp, "%d", &bg), 1);
  fclose(fp);
  /* runtime kill --all SIGKILL follows the init's exit */
  assert_true(mock_host_run_until(&f->m.host, pid_gone, &bg, TASK_FIXTURE_TIMEOUT_MS));
  Containerd__Task__V2__DeleteResponse *del = delete_task(f, "shared", false);
  protobuf_c_message_free_unpacked(&del->base, NULL);
}

static void
test_service_delete_of_created_task_forces_and_answers_waiters(void **state)
{
  task_fixture_t *f = *state;
  static const char *const topics[] = {"/tasks/create", "/tasks/delete", NULL};
  Containerd__Task__V2__DeleteResponse *del;
  mock_call_t *w;
  uint32_t pid;

  task_fixture_write_spec(f, "[\"/bin/sleep\",\"100\"]", true);
  pid = create(f, "created", NULL, NULL);
  w = wait_call(f, "created");
  del = delete_task(f, "created", false);
  assert_int_equal(del->pid, pid);
  assert_int_equal(del->exit_status, 137);
  protobuf_c_message_free_unpacked(&del->base, NULL);
  assert_int_equal(wait_status(f, w), 137);
  expect_topics(f, topics);
  assert_int_equal(kill((pid_t)pid, 0) < 0 && errno == ESRCH, 1);
}

static void
test_service_kill_created_task_publishes_exit(void **state)
{
  task_fixture_t *f = *state;
  static const char *const topics[] = {"/tasks/create", "/tasks/exit", "/tasks/delete", NULL};
  Containerd__Task__V2__KillRequest kill_req = CONTAINERD__TASK__V2__KILL_REQUEST__INIT;
  Containerd__Task__V2__StartRequest start_req = CONTAINERD__TASK__V2__START_REQUEST__INIT;
  Containerd__Task__V2__DeleteResponse *del;
  mock_call_t *w;

  task_fixture_write_spec(f, "[\"/bin/sleep\",\"100\"]", true);
  create(f, "k", NULL, NULL);
  w = wait_call(f, "k");
  kill_req.id = "k";
  kill_req.signal = SIGKILL;
  task_fixture_expect_code(task_fixture_call(f, "Kill", &kill_req.base), 0);
  assert_int_equal(wait_status(f, w), 137);
  start_req.id = "k";
  task_fixture_expect_code(task_fixture_call(f, "Start", &start_req.base),
                           CSHIM_GRPC_FAILED_PRECONDITION);
  del = delete_task(f, "k", false);
  assert_int_equal(del->exit_status, 137);
  protobuf_c_message_free_unpacked(&del->base, NULL);
  expect_topics(f, topics);
}

static void
test_service_file_io_gets_large_output_whole(void **state)
{
  task_fixture_t *f = *state;
  char uri[700], path[600];
  struct stat st;
  mock_call_t *w;
  uint32_t pid;

  snprintf(path, sizeof path, "%s/logs/sub/out.log", f->base);
  snprintf(uri, sizeof uri, "file://%s", path);
  task_fixture_write_spec(f, "[\"/bin/sh\",\"-c\",\"head -c 3000000 /dev/zero; echo tail >&2\"]",
                          true);
  pid = create(f, "big", uri, uri);
  w = wait_call(f, "big");
  start(f, "big", pid);
  assert_int_equal(wait_status(f, w), 0);
  Containerd__Task__V2__DeleteResponse *del = delete_task(f, "big", false);
  protobuf_c_message_free_unpacked(&del->base, NULL);
  assert_int_equal(stat(path, &st), 0);
  assert_int_equal(st.st_size, 3000000 + 5);
  assert_int_equal(st.st_mode & 0777, 0644);
}

static void
test_service_fifo_io_gets_large_output_whole(void **state)
{
  task_fixture_t *f = *state;
  mock_call_t *w;
  uint32_t pid;

  task_fixture_write_spec(f, "[\"/bin/sh\",\"-c\",\"head -c 4000000 /dev/zero\"]", true);
  make_fifos(f);
  pid = create(f, "bigfifo", f->out_path, f->err_path);
  w = wait_call(f, "bigfifo");
  start(f, "bigfifo", pid);
  assert_true(task_fixture_run_draining(f, w, TASK_FIXTURE_TIMEOUT_MS));
  assert_int_equal(wait_status(f, w), 0);
  Containerd__Task__V2__DeleteResponse *del = delete_task(f, "bigfifo", true);
  protobuf_c_message_free_unpacked(&del->base, NULL);
  assert_int_equal(f->out_len, 4000000);
}

static void
test_service_mounts_rootfs_and_unmounts_on_delete(void **state)
{
  task_fixture_t *f = *state;
  Containerd__Task__V2__CreateTaskRequest req = CONTAINERD__TASK__V2__CREATE_TASK_REQUEST__INIT;
  Containerd__Types__Mount m = CONTAINERD__TYPES__MOUNT__INIT;
  Containerd__Types__Mount *mounts[1] = {&m};
  char *options[] = {"nodev", "size=1m"};
  char rootfs[600];
  struct statfs sfs;
  mock_call_t *c;

  if (geteuid() != 0)
    skip();
  snprintf(rootfs, sizeof rootfs, "%s/rootfs", f->bundle);
  m.type = "tmpfs";
  m.source = "tmpfs";
  m.n_options = 2;
  m.options = options;
  req.id = "mnt";
  req.bundle = f->bundle;
  req.n_rootfs = 1;
  req.rootfs = mounts;
  c = task_fixture_call(f, "Create", &req.base);
  assert_int_equal(c->code, 0);
  mock_call_free(c);
  assert_int_equal(statfs(rootfs, &sfs), 0);
  assert_int_equal(sfs.f_type, 0x01021994); /* TMPFS_MAGIC */
  Containerd__Task__V2__DeleteResponse *del = delete_task(f, "mnt", false);
  protobuf_c_message_free_unpacked(&del->base, NULL);
  assert_int_equal(statfs(rootfs, &sfs), 0);
  assert_int_not_equal(sfs.f_type, 0x01021994);
}

static void
test_service_create_failure_undoes_everything(void **state)
{
  task_fixture_t *f = *state;
  Containerd__Task__V2__CreateTaskRequest req = CONTAINERD__TASK__V2__CREATE_TASK_REQUEST__INIT;
  Containerd__Types__Mount m = CONTAINERD__TYPES__MOUNT__INIT;
  Containerd__Types__Mount *mounts[1] = {&m};
  char rootfs[600];
  struct statfs sfs;
  mock_call_t *c;

  setenv("FAKE_RUNC_FAIL", "create", 1);
  snprintf(rootfs, sizeof rootfs, "%s/rootfs", f->bundle);
  m.type = "tmpfs";
  m.source = "tmpfs";
  req.id = "bad";
  req.bundle = f->bundle;
  if (geteuid() == 0) {
    req.n_rootfs = 1;
    req.rootfs = mounts;
  }
  c = task_fixture_call(f, "Create", &req.base);
  assert_int_equal(c->code, CSHIM_GRPC_UNKNOWN);
  assert_non_null(strstr(c->message, "injected failure"));
  mock_call_free(c);
  unsetenv("FAKE_RUNC_FAIL");
  /* Once the runtime's `delete --force` has run, the id is free again and the shim, left with
     nothing to serve, ends. */
  assert_true(mock_host_run_until(&f->m.host, no_containers, f, TASK_FIXTURE_TIMEOUT_MS));
  assert_int_equal(f->m.n_events, 0);
  assert_int_equal(statfs(rootfs, &sfs), 0);
  assert_int_not_equal(sfs.f_type, 0x01021994);
  mock_host_run_for(&f->m.host, 20);
  assert_int_equal(f->m.host.shutdown.calls, 1);
  create(f, "bad", NULL, NULL);
  Containerd__Task__V2__DeleteResponse *del = delete_task(f, "bad", false);
  protobuf_c_message_free_unpacked(&del->base, NULL);
}

/* A runtime whose start fails (runsc in the host network namespace, say) leaves its container
   process and state behind: the shim deletes them with `delete --force`, answers the waiters,
   drops the record, and ends when it serves nothing else. */
static void
test_service_failed_start_deletes_the_container_and_ends_the_shim(void **state)
{
  task_fixture_t *f = *state;
  static const char *const topics[] = {"/tasks/create", NULL};
  Containerd__Task__V2__StartRequest req = CONTAINERD__TASK__V2__START_REQUEST__INIT;
  char log[700], state_dir[700], *argv_log;
  struct stat st;
  mock_call_t *c, *w;
  uint32_t pid;
  size_t len;

  snprintf(log, sizeof log, "%s/argv.log", f->base);
  setenv("FAKE_RUNC_ARGV_LOG", log, 1);
  task_fixture_write_spec(f, "[\"/bin/sleep\",\"100\"]", true);
  pid = create(f, "bad", NULL, NULL);
  w = wait_call(f, "bad");
  setenv("FAKE_RUNC_FAIL", "start", 1);
  req.id = "bad";
  c = task_fixture_call(f, "Start", &req.base);
  assert_int_equal(c->code, CSHIM_GRPC_UNKNOWN);
  assert_non_null(strstr(c->message, "injected failure"));
  mock_call_free(c);
  unsetenv("FAKE_RUNC_FAIL");

  /* While the runtime deletes, the container is still there and refuses another Start. */
  if (!cshim_list_empty(&f->svc->containers)) {
    c = task_fixture_call(f, "Start", &req.base);
    assert_int_not_equal(c->code, 0);
    mock_call_free(c);
  }
  assert_true(mock_host_run_until(&f->m.host, no_containers, f, TASK_FIXTURE_TIMEOUT_MS));
  assert_int_equal(wait_status(f, w), 137);
  assert_int_equal(kill((pid_t)pid, 0) < 0 && errno == ESRCH, 1);
  snprintf(state_dir, sizeof state_dir, "%s/testns/bad", f->root);
  assert_int_equal(lstat(state_dir, &st) < 0 && errno == ENOENT, 1);
  argv_log = read_text(log, &len);
  assert_non_null(strstr(argv_log, "delete --force bad"));
  free(argv_log);
  unsetenv("FAKE_RUNC_ARGV_LOG");
  expect_topics(f, topics); /* no TaskStart, no TaskExit: containerd saw the start fail */

  /* Nothing left to serve: the shim ends, after the replies. */
  mock_host_run_for(&f->m.host, 20);
  assert_int_equal(f->m.host.shutdown.calls, 1);
}

/* Another container keeps the shim: only the failed one goes. */
static void
test_service_failed_start_keeps_serving_the_others(void **state)
{
  task_fixture_t *f = *state;
  Containerd__Task__V2__StartRequest req = CONTAINERD__TASK__V2__START_REQUEST__INIT;
  Containerd__Task__V2__DeleteRequest dreq = CONTAINERD__TASK__V2__DELETE_REQUEST__INIT;
  Containerd__Task__V2__DeleteResponse *del;

  task_fixture_write_spec(f, "[\"/bin/sleep\",\"100\"]", true);
  create(f, "keep", NULL, NULL);
  create(f, "bad", NULL, NULL);
  setenv("FAKE_RUNC_FAIL", "start", 1);
  req.id = "bad";
  task_fixture_expect_code(task_fixture_call(f, "Start", &req.base), CSHIM_GRPC_UNKNOWN);
  unsetenv("FAKE_RUNC_FAIL");
  assert_true(mock_host_run_until(&f->m.host, no_containers_but_one, f, TASK_FIXTURE_TIMEOUT_MS));
  mock_host_run_for(&f->m.host, 20);
  assert_int_equal(f->m.host.shutdown.calls, 0);
  assert_string_equal(
      cshim_list_entry(cshim_list_first(&f->svc->containers), task_container_t, link)->id, "keep");
  dreq.id = "bad";
  task_fixture_expect_code(task_fixture_call(f, "Delete", &dreq.base), CSHIM_GRPC_NOT_FOUND);
  del = delete_task(f, "keep", false);
  protobuf_c_message_free_unpacked(&del->base, NULL);
}

static void
test_service_answers_errors_with_containerd_codes(void **state)
{
  task_fixture_t *f = *state;
  Containerd__Task__V2__CreateTaskRequest cr = CONTAINERD__TASK__V2__CREATE_TASK_REQUEST__INIT;
  Containerd__Task__V2__StartRequest sr = CONTAINERD__TASK__V2__START_REQUEST__INIT;
  Containerd__Task__V2__KillRequest kr = CONTAINERD__TASK__V2__KILL_REQUEST__INIT;
  Containerd__Task__V2__StateRequest str = CONTAINERD__TASK__V2__STATE_REQUEST__INIT;
  Containerd__Task__V2__WaitRequest wr = CONTAINERD__TASK__V2__WAIT_REQUEST__INIT;
  Containerd__Task__V2__DeleteRequest dr = CONTAINERD__TASK__V2__DELETE_REQUEST__INIT;
  Containerd__Task__V2__PidsRequest pr = CONTAINERD__TASK__V2__PIDS_REQUEST__INIT;
  mock_call_t *c;

  cr.bundle = f->bundle;
  cr.id = "../escape";
  task_fixture_expect_code(task_fixture_call(f, "Create", &cr.base), CSHIM_GRPC_INVALID_ARGUMENT);
  cr.id = "";
  task_fixture_expect_code(task_fixture_call(f, "Create", &cr.base), CSHIM_GRPC_INVALID_ARGUMENT);
  cr.id = "t";
  cr.stdout = "binary:///does/not/exist?x=y";
  task_fixture_expect_code(task_fixture_call(f, "Create", &cr.base), CSHIM_GRPC_NOT_FOUND);
  cr.stdout = "gopher://x";
  task_fixture_expect_code(task_fixture_call(f, "Create", &cr.base), CSHIM_GRPC_INVALID_ARGUMENT);
  cr.stdout = "/does/not/exist";
  task_fixture_expect_code(task_fixture_call(f, "Create", &cr.base), CSHIM_GRPC_NOT_FOUND);
  cr.stdout = "";
  cr.bundle = "relative";
  task_fixture_expect_code(task_fixture_call(f, "Create", &cr.base), CSHIM_GRPC_INVALID_ARGUMENT);
  assert_int_equal(f->m.n_events, 0);

  sr.id = kr.id = str.id = wr.id = dr.id = pr.id = "nope";
  kr.signal = 9;
  c = task_fixture_call(f, "Start", &sr.base);
  assert_string_equal(c->message, "container not created: not found");
  task_fixture_expect_code(c, CSHIM_GRPC_NOT_FOUND);
  task_fixture_expect_code(task_fixture_call(f, "Kill", &kr.base), CSHIM_GRPC_NOT_FOUND);
  task_fixture_expect_code(task_fixture_call(f, "State", &str.base), CSHIM_GRPC_NOT_FOUND);
  task_fixture_expect_code(task_fixture_call(f, "Wait", &wr.base), CSHIM_GRPC_NOT_FOUND);
  task_fixture_expect_code(task_fixture_call(f, "Delete", &dr.base), CSHIM_GRPC_NOT_FOUND);
  task_fixture_expect_code(task_fixture_call(f, "Pids", &pr.base), CSHIM_GRPC_NOT_FOUND);

  task_fixture_write_spec(f, "[\"/bin/sleep\",\"100\"]", true);
  cr.bundle = f->bundle;
  create(f, "dup", NULL, NULL);
  cr.id = "dup";
  task_fixture_expect_code(task_fixture_call(f, "Create", &cr.base), CSHIM_GRPC_ALREADY_EXISTS);
  sr.id = str.id = "dup";
  sr.exec_id = str.exec_id = "e1";
  c = task_fixture_call(f, "Start", &sr.base);
  assert_string_equal(c->message, "process does not exist e1: not found");
  task_fixture_expect_code(c, CSHIM_GRPC_NOT_FOUND);
  task_fixture_expect_code(task_fixture_call(f, "State", &str.base), CSHIM_GRPC_NOT_FOUND);
  Containerd__Task__V2__DeleteResponse *del = delete_task(f, "dup", false);
  protobuf_c_message_free_unpacked(&del->base, NULL);
}

static int
count_fds(void)
{
  int n = 0;
  DIR *d = opendir("/proc/self/fd");
  assert_non_null(d);
  while (readdir(d) != NULL)
    n++;
  closedir(d);
  return n;
}

static void
test_service_leaves_no_descriptors_behind(void **state)
{
  task_fixture_t *f = *state;
  char uri[700];
  int before;

  task_fixture_write_spec(f, "[\"/bin/sh\",\"-c\",\"echo out; echo err >&2\"]", true);
  make_fifos(f);
  snprintf(uri, sizeof uri, "file://%s/log/out.txt", f->base);
  /* One run first: lazily created things (log file, runtime root) are not leaks. */
  for (int round = 0; round < 11; round++) {
    mock_call_t *w;
    uint32_t pid;
    if (round == 1)
      before = count_fds();
    pid = create(f, "fds", round % 2 ? f->out_path : uri, round % 2 ? f->err_path : uri);
    w = wait_call(f, "fds");
    start(f, "fds", pid);
    assert_int_equal(wait_status(f, w), 0);
    Containerd__Task__V2__DeleteResponse *del = delete_task(f, "fds", true);
    protobuf_c_message_free_unpacked(&del->base, NULL);
  }
  mock_host_run_for(&f->m.host, 20);
  assert_int_equal(count_fds(), before);
}

static void
test_service_connect_and_shutdown(void **state)
{
  task_fixture_t *f = *state;
  Containerd__Task__V2__ConnectRequest cr = CONTAINERD__TASK__V2__CONNECT_REQUEST__INIT;
  Containerd__Task__V2__ShutdownRequest sr = CONTAINERD__TASK__V2__SHUTDOWN_REQUEST__INIT;
  Containerd__Task__V2__ConnectResponse *resp;
  mock_call_t *c;
  uint32_t pid;

  task_fixture_write_spec(f, "[\"/bin/sleep\",\"100\"]", true);
  pid = create(f, "conn", NULL, NULL);
  cr.id = "conn";
  c = task_fixture_call(f, "Connect", &cr.base);
  resp = (void *)mock_call_unpack(c, &containerd__task__v2__connect_response__descriptor);
  assert_int_equal(resp->shim_pid, getpid());
  assert_int_equal(resp->task_pid, pid);
  protobuf_c_message_free_unpacked(&resp->base, NULL);
  mock_call_free(c);

  sr.id = "conn";
  task_fixture_expect_code(task_fixture_call(f, "Shutdown", &sr.base), 0);
  mock_host_run_for(&f->m.host, 20);
  assert_int_equal(f->m.host.shutdown.calls, 0); /* a container is still here */

  Containerd__Task__V2__DeleteResponse *del = delete_task(f, "conn", false);
  protobuf_c_message_free_unpacked(&del->base, NULL);
  cr.id = "conn";
  c = task_fixture_call(f, "Connect", &cr.base);
  resp = (void *)mock_call_unpack(c, &containerd__task__v2__connect_response__descriptor);
  assert_int_equal(resp->task_pid, 0);
  protobuf_c_message_free_unpacked(&resp->base, NULL);
  mock_call_free(c);

  c = task_fixture_invoke(f, "Shutdown", &sr.base);
  assert_int_equal(c->answered, 1);
  assert_int_equal(f->m.host.shutdown.calls, 0); /* only after the reply has gone */
  mock_call_free(c);
  mock_host_run_for(&f->m.host, 20);
  assert_int_equal(f->m.host.shutdown.calls, 1);
}

static void
test_service_v3_exits_after_the_last_delete(void **state)
{
  task_fixture_t *f = *state;
  Containerd__Task__V2__DeleteRequest req = CONTAINERD__TASK__V2__DELETE_REQUEST__INIT;
  const cshim_ttrpc_method_t *del_v3 = NULL;
  Containerd__Task__V2__DeleteResponse *del;
  mock_call_t *c;

  for (const cshim_ttrpc_method_t *m = task_methods_v3; m->name; m++)
    if (strcmp(m->name, "Delete") == 0)
      del_v3 = m;
  assert_non_null(del_v3);

  /* task API v2 (containerd 1.x, or 2.x told v2): only Shutdown ends the shim */
  task_fixture_write_spec(f, "[\"/bin/sleep\",\"100\"]", true);
  create(f, "v2", NULL, NULL);
  del = delete_task(f, "v2", false);
  protobuf_c_message_free_unpacked(&del->base, NULL);
  mock_host_run_for(&f->m.host, 20);
  assert_int_equal(f->m.host.shutdown.calls, 0);

  /* v3: containerd 2.x sends no Shutdown for a sandbox's containers; the last Delete ends it */
  create(f, "a", NULL, NULL);
  create(f, "b", NULL, NULL);
  req.id = "a";
  c = task_call_new("Delete");
  del_v3->handler(&c->base, &req.base, f->svc);
  assert_true(mock_host_run_call(&f->m.host, c, TASK_FIXTURE_TIMEOUT_MS));
  assert_int_equal(c->code, 0);
  mock_call_free(c);
  mock_host_run_for(&f->m.host, 20);
  assert_int_equal(f->m.host.shutdown.calls, 0); /* b is still here */

  req.id = "b";
  c = task_call_new("Delete");
  del_v3->handler(&c->base, &req.base, f->svc);
  assert_true(mock_host_run_call(&f->m.host, c, TASK_FIXTURE_TIMEOUT_MS));
  assert_int_equal(c->code, 0);
  mock_call_free(c);
  mock_host_run_for(&f->m.host, 20);
  assert_int_equal(f->m.host.shutdown.calls, 1);
}

static void
test_service_close_fails_pending_waits(void **state)
{
  task_fixture_t *f = *state;
  mock_call_t *w;
  uint32_t pid;

  task_fixture_write_spec(f, "[\"/bin/sleep\",\"100\"]", true);
  pid = create(f, "closing", NULL, NULL);
  start(f, "closing", pid);
  w = wait_call(f, "closing");
  assert_int_equal(w->answered, 0);
  task_fixture_close_service(f->svc);
  f->svc = NULL;
  assert_int_equal(w->answered, 1);
  assert_int_equal(w->code, CSHIM_GRPC_UNAVAILABLE);
  mock_call_free(w);
  kill((pid_t)pid, SIGKILL);
  mock_host_run_for(&f->m.host, 50);
  /* teardown must not close again */
}

static void
test_service_uses_runc_options_from_create(void **state)
{
  task_fixture_t *f = *state;
  Containerd__Task__V2__CreateTaskRequest req = CONTAINERD__TASK__V2__CREATE_TASK_REQUEST__INIT;
  Containerd__Runc__V1__Options o = CONTAINERD__RUNC__V1__OPTIONS__INIT;
  Google__Protobuf__Any any = GOOGLE__PROTOBUF__ANY__INIT;
  cshim_runc_options_t opts;
  cshim_error_t err = NULL;
  char other_root[600], state_dir[700];
  uint8_t buf[512];
  mock_call_t *c;

  snprintf(other_root, sizeof other_root, "%s/other-root", f->base);
  o.root = other_root;
  o.no_new_keyring = 1;
  any.type_url = "type.googleapis.com/containerd.runc.v1.Options";
  any.value.len = containerd__runc__v1__options__pack(&o, buf);
  any.value.data = buf;
  req.id = "opts";
  req.bundle = f->bundle;
  req.options = &any;
  c = task_fixture_call(f, "Create", &req.base);
  assert_int_equal(c->code, 0);
  mock_call_free(c);
  snprintf(state_dir, sizeof state_dir, "%s/testns/opts", other_root);
  assert_int_equal(access(state_dir, F_OK), 0);
  assert_int_equal(cshim_runc_options_read(f->bundle, &opts, &err), 1);
  assert_string_equal(opts.root, other_root);
  assert_true(opts.no_new_keyring);
  cshim_runc_options_clear(&opts);
  Containerd__Task__V2__DeleteResponse *del = delete_task(f, "opts", false);
  protobuf_c_message_free_unpacked(&del->base, NULL);
  assert_int_not_equal(access(state_dir, F_OK), 0);
}

/* The caller's deadline (ttrpc timeout) reaches the runtime command: a start that outlives it is
   killed and the call fails with DeadlineExceeded. */
static void
test_service_call_deadline_reaches_the_runtime_command(void **state)
{
  task_fixture_t *f = *state;
  Containerd__Task__V2__StartRequest req = CONTAINERD__TASK__V2__START_REQUEST__INIT;
  mock_call_t *c = task_call_new("Start");
  uint32_t pid;

  task_fixture_write_spec(f, "[\"/bin/sleep\",\"100\"]", true);
  pid = create(f, "late", NULL, NULL);
  setenv("FAKE_RUNC_START_DELAY_MS", "30000", 1);
  req.id = "late";
  c->base.started_ns = cshim_now_ns();
  c->base.timeout_nano = 300 * 1000000ll;
  task_fixture_method("Start")->handler(&c->base, &req.base, f->svc);
  assert_true(mock_host_run_call(&f->m.host, c, TASK_FIXTURE_TIMEOUT_MS));
  assert_int_equal(c->code, CSHIM_GRPC_DEADLINE_EXCEEDED);
  assert_non_null(strstr(c->message, "deadline exceeded after"));
  mock_call_free(c);
  unsetenv("FAKE_RUNC_START_DELAY_MS");
  kill((pid_t)pid, SIGKILL);
}

/* A hung `runc create` has started the container's init in a session of its own (runc init):
   when the call's deadline kills the runtime, that process must not survive it. */
static void
test_service_hung_create_leaves_no_process_behind(void **state)
{
  task_fixture_t *f = *state;
  Containerd__Task__V2__CreateTaskRequest req = CONTAINERD__TASK__V2__CREATE_TASK_REQUEST__INIT;
  mock_call_t *c = task_call_new("Create");
  char pid_path[700];
  pid_t init = 0;

  task_fixture_write_spec(f, "[\"/bin/sleep\",\"100\"]", true);
  setenv("FAKE_RUNC_HANG", "create", 1);
  snprintf(pid_path, sizeof pid_path, "%s/testns/hung/pid", f->root);
  req.id = "hung";
  req.bundle = f->bundle;
  req.stdout = "";
  req.stderr = "";
  c->base.started_ns = cshim_now_ns();
  c->base.timeout_nano = 1000 * 1000000ll;
  task_fixture_method("Create")->handler(&c->base, &req.base, f->svc);
  for (int i = 0; i < 500 && init <= 0 && !c->answered; i++) {
    FILE *fp = fopen(pid_path, "r");
    if (fp == NULL || fscanf(fp, "%d", &init) != 1)
      init = 0;
    if (fp)
      fclose(fp);
    mock_host_run_for(&f->m.host, 5);
  }
  assert_true(init > 0);
  assert_int_equal(kill(init, 0), 0);
  assert_true(mock_host_run_call(&f->m.host, c, TASK_FIXTURE_TIMEOUT_MS));
  assert_int_equal(c->code, CSHIM_GRPC_DEADLINE_EXCEEDED);
  mock_call_free(c);
  unsetenv("FAKE_RUNC_HANG");
  assert_true(mock_host_run_until(&f->m.host, pid_gone, &init, TASK_FIXTURE_TIMEOUT_MS));
}

/* max_runtime_processes: 1 makes a second runtime command wait for the first, then run; nothing
   fails for having waited. */
static void
test_service_runtime_commands_wait_for_a_free_slot(void **state)
{
  task_fixture_t *f = *state;
  Containerd__Task__V2__StartRequest start_req = CONTAINERD__TASK__V2__START_REQUEST__INIT;
  Containerd__Task__V2__KillRequest kill_req = CONTAINERD__TASK__V2__KILL_REQUEST__INIT;
  cshim_runtime_limit_stats_t st;
  mock_call_t *started, *signalled;
  uint32_t pid;

  mock_host_set_config(&f->m.host, "max_runtime_processes", "1");
  task_fixture_reopen_service(f);

  task_fixture_write_spec(f, "[\"/bin/sleep\",\"100\"]", true);
  pid = create(f, "one", NULL, NULL);
  setenv("FAKE_RUNC_START_DELAY_MS", "1000", 1);
  start_req.id = "one";
  started = task_fixture_invoke(f, "Start", &start_req.base);
  kill_req.id = "one";
  kill_req.signal = SIGCONT;
  signalled = task_fixture_invoke(f, "Kill", &kill_req.base);
  if (signalled->answered)
    fail_msg("kill answered at once: %d %s", signalled->code, signalled->message);
  cshim_runtime_limit_get_stats(f->svc->runtime_limit, &st);
  assert_int_equal(st.max, 1);
  assert_int_equal(st.running, 1);
  assert_int_equal(st.queued, 1);

  assert_true(mock_host_run_call(&f->m.host, started, TASK_FIXTURE_TIMEOUT_MS));
  assert_int_equal(started->code, 0);
  assert_true(mock_host_run_call(&f->m.host, signalled, TASK_FIXTURE_TIMEOUT_MS));
  if (signalled->code != 0)
    fail_msg("kill: %s", signalled->message);
  cshim_runtime_limit_get_stats(f->svc->runtime_limit, &st);
  assert_int_equal(st.queued, 0);
  assert_int_equal(st.waited, 1);
  mock_call_free(started);
  mock_call_free(signalled);
  unsetenv("FAKE_RUNC_START_DELAY_MS");
  kill((pid_t)pid, SIGKILL);
}

int
main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_service_traces_calls_runtime_commands_and_stdio_setup,
                                      setup, teardown),
      cmocka_unit_test_setup_teardown(test_service_runs_container_with_fifo_io_in_event_order,
                                      setup, teardown),
      cmocka_unit_test_setup_teardown(
          test_service_publishes_exit_after_start_when_exit_is_reaped_first, setup, teardown),
      cmocka_unit_test_setup_teardown(test_service_close_io_lets_stdin_reach_eof, setup, teardown),
      cmocka_unit_test_setup_teardown(test_service_v3_exits_after_the_last_delete, setup, teardown),
      cmocka_unit_test_setup_teardown(test_service_kill_state_pids, setup, teardown),
      cmocka_unit_test_setup_teardown(
          test_service_kills_leftovers_when_init_exits_without_pid_namespace, setup, teardown),
      cmocka_unit_test_setup_teardown(
          test_service_delete_of_created_task_forces_and_answers_waiters, setup, teardown),
      cmocka_unit_test_setup_teardown(test_service_kill_created_task_publishes_exit, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_service_file_io_gets_large_output_whole, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_service_fifo_io_gets_large_output_whole, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_service_mounts_rootfs_and_unmounts_on_delete, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_service_create_failure_undoes_everything, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(
          test_service_failed_start_deletes_the_container_and_ends_the_shim, setup, teardown),
      cmocka_unit_test_setup_teardown(test_service_failed_start_keeps_serving_the_others, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_service_answers_errors_with_containerd_codes, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_service_connect_and_shutdown, setup, teardown),
      cmocka_unit_test_setup_teardown(test_service_call_deadline_reaches_the_runtime_command, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_service_runtime_commands_wait_for_a_free_slot, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_service_hung_create_leaves_no_process_behind, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_service_leaves_no_descriptors_behind, setup, teardown),
      cmocka_unit_test_setup_teardown(test_service_close_fails_pending_waits, setup, teardown),
      cmocka_unit_test_setup_teardown(test_service_uses_runc_options_from_create, setup, teardown),
  };
  signal(SIGPIPE, SIG_IGN);
  /* The fake runc (built with the same sanitizers) exits without freeing: not what is tested. */
  setenv("ASAN_OPTIONS", "detect_leaks=0", 1);
  /* Container processes are grandchildren (the fake runc exits): adopt them, as the shim does. */
  prctl(PR_SET_CHILD_SUBREAPER, 1);
  return cmocka_run_group_tests(tests, NULL, NULL);
}
