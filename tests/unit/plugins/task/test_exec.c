// SPDX-License-Identifier: Apache-2.0
// Exec processes, terminals and logging binaries driven through the task service with a fake
// runc (exec, console socket) and a test logging binary: answers, event order, stdio, cleanup.
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
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cshim/util.h>

#include "containerd/events/task.pb-c.h"
#include "containerd/runc/options/oci.pb-c.h"
#include "container.h"
#include "fixture.h"
#include "io.h"
#include "model.h"
#include "service.h"
#include "containerd/task/v2/shim.pb-c.h"

#include <cmocka.h>

#ifndef FAKE_RUNC_PATH
#error FAKE_RUNC_PATH must be defined
#endif
#ifndef LOGGER_PATH
#error LOGGER_PATH must be defined
#endif

static int
setup(void **state)
{
  task_fixture_t *f = task_fixture_new("exec-test", FAKE_RUNC_PATH, "[\"/bin/sleep\",\"100\"]");
  /* console sockets go under the test's directory */
  setenv("TMPDIR", f->base, 1);
  unsetenv("XDG_RUNTIME_DIR");
  unsetenv("FAKE_RUNC_CONSOLE");
  unsetenv("FAKE_RUNC_ARGV_LOG");
  *state = f;
  return 0;
}

static int
teardown(void **state)
{
  task_fixture_free(*state);
  return 0;
}

struct until
{
  task_fixture_t *f;
  mock_call_t *c;
  const char *text;
};

static bool
answered_pred(void *data)
{
  struct until *u = data;
  task_fixture_drain(u->f);
  return u->c->answered > 0;
}

static bool
output_pred(void *data)
{
  struct until *u = data;
  task_fixture_drain(u->f);
  return u->f->out && strstr(u->f->out, u->text);
}

static void
wait_output(task_fixture_t *f, const char *text)
{
  struct until u = {f, NULL, text};
  if (!mock_host_run_until(&f->m.host, output_pred, &u, TASK_FIXTURE_TIMEOUT_MS))
    fail_msg("`%s` never arrived; output so far: `%s`", text, f->out ? f->out : "");
}

static void
make_fifos(task_fixture_t *f, bool with_stdin)
{
  if (with_stdin)
    assert_int_equal(mkfifo(f->in_path, 0600), 0);
  assert_int_equal(mkfifo(f->out_path, 0600), 0);
  assert_int_equal(mkfifo(f->err_path, 0600), 0);
  f->out_fd = open(f->out_path, O_RDONLY | O_NONBLOCK);
  f->err_fd = open(f->err_path, O_RDONLY | O_NONBLOCK);
  assert_true(f->out_fd >= 0 && f->err_fd >= 0);
}

static void
reset_output(task_fixture_t *f)
{
  free(f->out);
  f->out = NULL;
  f->out_len = 0;
}

/* Create with the given stdio; returns the reply's code (0 = created) and the pid. */
static int
create_io(task_fixture_t *f, const char *id, bool terminal, const char *in, const char *out,
          const char *err_, uint32_t *pid, char **message)
{
  Containerd__Task__V2__CreateTaskRequest req = CONTAINERD__TASK__V2__CREATE_TASK_REQUEST__INIT;
  mock_call_t *c;
  int code;

  req.id = (char *)id;
  req.bundle = f->bundle;
  req.terminal = terminal;
  req.stdin = (char *)(in ? in : "");
  req.stdout = (char *)(out ? out : "");
  req.stderr = (char *)(err_ ? err_ : "");
  c = task_fixture_call_draining(f, "Create", &req.base);
  code = c->code;
  if (code == 0 && pid) {
    Containerd__Task__V2__CreateTaskResponse *resp =
        (void *)mock_call_unpack(c, &containerd__task__v2__create_task_response__descriptor);
    *pid = resp->pid;
    protobuf_c_message_free_unpacked(&resp->base, NULL);
  }
  if (message)
    *message = cshim_xstrdup(c->message ? c->message : "");
  mock_call_free(c);
  return code;
}

static uint32_t
create(task_fixture_t *f, const char *id)
{
  uint32_t pid = 0;
  char *msg = NULL;
  if (create_io(f, id, false, NULL, NULL, NULL, &pid, &msg) != 0)
    fail_msg("create: %s", msg);
  free(msg);
  return pid;
}

static uint32_t
start(task_fixture_t *f, const char *id, const char *exec_id)
{
  Containerd__Task__V2__StartRequest req = CONTAINERD__TASK__V2__START_REQUEST__INIT;
  Containerd__Task__V2__StartResponse *resp;
  mock_call_t *c;
  uint32_t pid;
  req.id = (char *)id;
  req.exec_id = (char *)(exec_id ? exec_id : "");
  c = task_fixture_call_draining(f, "Start", &req.base);
  if (c->code != 0)
    fail_msg("start %s/%s: %s", id, exec_id ? exec_id : "", c->message);
  resp = (void *)mock_call_unpack(c, &containerd__task__v2__start_response__descriptor);
  pid = resp->pid;
  assert_true(pid > 0);
  protobuf_c_message_free_unpacked(&resp->base, NULL);
  mock_call_free(c);
  return pid;
}

static int
exec_io(task_fixture_t *f, const char *id, const char *exec_id, const char *args_json,
        bool terminal, const char *in, const char *out, const char *err_)
{
  Containerd__Task__V2__ExecProcessRequest req = CONTAINERD__TASK__V2__EXEC_PROCESS_REQUEST__INIT;
  Google__Protobuf__Any spec = GOOGLE__PROTOBUF__ANY__INIT;
  char json[1024];
  mock_call_t *c;
  int code;

  /* containerd sends the whole OCI process; terminal is overridden by the request */
  snprintf(json, sizeof json, "{\"terminal\":%s,\"args\":%s,\"env\":[\"PATH=/bin\"],\"cwd\":\"/\"}",
           terminal ? "false" : "true", args_json);
  spec.type_url = "types.containerd.io/opencontainers/runtime-spec/1/Process";
  spec.value.data = (uint8_t *)json;
  spec.value.len = strlen(json);
  req.id = (char *)id;
  req.exec_id = (char *)exec_id;
  req.terminal = terminal;
  req.stdin = (char *)(in ? in : "");
  req.stdout = (char *)(out ? out : "");
  req.stderr = (char *)(err_ ? err_ : "");
  req.spec = args_json ? &spec : NULL;
  c = task_fixture_call_draining(f, "Exec", &req.base);
  code = c->code;
  mock_call_free(c);
  return code;
}

static mock_call_t *
wait_call(task_fixture_t *f, const char *id, const char *exec_id)
{
  Containerd__Task__V2__WaitRequest req = CONTAINERD__TASK__V2__WAIT_REQUEST__INIT;
  req.id = (char *)id;
  req.exec_id = (char *)(exec_id ? exec_id : "");
  return task_fixture_invoke(f, "Wait", &req.base);
}

static uint32_t
wait_status(task_fixture_t *f, mock_call_t *c)
{
  Containerd__Task__V2__WaitResponse *resp;
  struct until u = {f, c, NULL};
  uint32_t st;
  if (!mock_host_run_until(&f->m.host, answered_pred, &u, TASK_FIXTURE_TIMEOUT_MS))
    fail_msg("wait not answered");
  if (c->code != 0)
    fail_msg("wait: %s", c->message);
  resp = (void *)mock_call_unpack(c, &containerd__task__v2__wait_response__descriptor);
  st = resp->exit_status;
  protobuf_c_message_free_unpacked(&resp->base, NULL);
  mock_call_free(c);
  return st;
}

static void
kill_process(task_fixture_t *f, const char *id, const char *exec_id, int sig)
{
  Containerd__Task__V2__KillRequest req = CONTAINERD__TASK__V2__KILL_REQUEST__INIT;
  req.id = (char *)id;
  req.exec_id = (char *)(exec_id ? exec_id : "");
  req.signal = (uint32_t)sig;
  task_fixture_expect_code(task_fixture_call_draining(f, "Kill", &req.base), 0);
}

static Containerd__Task__V2__DeleteResponse *
delete_process(task_fixture_t *f, const char *id, const char *exec_id)
{
  Containerd__Task__V2__DeleteRequest req = CONTAINERD__TASK__V2__DELETE_REQUEST__INIT;
  Containerd__Task__V2__DeleteResponse *resp;
  mock_call_t *c;
  req.id = (char *)id;
  req.exec_id = (char *)(exec_id ? exec_id : "");
  c = task_fixture_call_draining(f, "Delete", &req.base);
  if (c->code != 0)
    fail_msg("delete %s/%s: %s", id, exec_id ? exec_id : "", c->message);
  resp = (void *)mock_call_unpack(c, &containerd__task__v2__delete_response__descriptor);
  mock_call_free(c);
  return resp;
}

static void
delete_ok(task_fixture_t *f, const char *id, const char *exec_id)
{
  Containerd__Task__V2__DeleteResponse *resp = delete_process(f, id, exec_id);
  protobuf_c_message_free_unpacked(&resp->base, NULL);
}

/* Kill the init and delete the container. */
static void
finish_container(task_fixture_t *f, const char *id)
{
  mock_call_t *w = wait_call(f, id, NULL);
  kill_process(f, id, NULL, SIGKILL);
  wait_status(f, w);
  delete_ok(f, id, NULL);
}

static void
close_io(task_fixture_t *f, const char *id, const char *exec_id)
{
  Containerd__Task__V2__CloseIORequest req = CONTAINERD__TASK__V2__CLOSE_IOREQUEST__INIT;
  req.id = (char *)id;
  req.exec_id = (char *)(exec_id ? exec_id : "");
  req.stdin = 1;
  task_fixture_expect_code(task_fixture_call_draining(f, "CloseIO", &req.base), 0);
}

static void
resize(task_fixture_t *f, const char *id, const char *exec_id, uint32_t w, uint32_t h)
{
  Containerd__Task__V2__ResizePtyRequest req = CONTAINERD__TASK__V2__RESIZE_PTY_REQUEST__INIT;
  req.id = (char *)id;
  req.exec_id = (char *)(exec_id ? exec_id : "");
  req.width = w;
  req.height = h;
  task_fixture_expect_code(task_fixture_call_draining(f, "ResizePty", &req.base), 0);
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
exists(const char *path)
{
  return access(path, F_OK) == 0;
}

static char *
slurp(const char *path)
{
  FILE *fp = fopen(path, "r");
  char *buf = cshim_xmalloc0(65536);
  if (fp) {
    size_t n = fread(buf, 1, 65535, fp);
    buf[n] = '\0';
    fclose(fp);
  }
  return buf;
}

/* ---- exec ---- */

static void
test_exec_runs_with_fifo_io_and_events_in_order(void **state)
{
  task_fixture_t *f = *state;
  static const char *const topics[] = {"/tasks/create",
                                       "/tasks/start",
                                       "/tasks/exec-added",
                                       "/tasks/exec-started",
                                       "/tasks/exit",
                                       "/tasks/delete",
                                       NULL};
  Containerd__Events__TaskExecAdded *added;
  Containerd__Events__TaskExecStarted *started;
  Containerd__Events__TaskExit *ex;
  Containerd__Events__TaskDelete *del_ev;
  Containerd__Task__V2__DeleteResponse *del;
  Containerd__Task__V2__StateRequest sr = CONTAINERD__TASK__V2__STATE_REQUEST__INIT;
  Containerd__Task__V2__StateResponse *st;
  char path[700];
  mock_call_t *w, *c;
  uint32_t pid, epid;

  pid = create(f, "c1");
  start(f, "c1", NULL);
  make_fifos(f, false);
  assert_int_equal(exec_io(f, "c1", "e1", "[\"/bin/sh\",\"-c\",\"echo hi; echo oops >&2; exit 4\"]",
                           false, NULL, f->out_path, f->err_path),
                   0);
  added = (void *)task_mock_unpack_event(&f->m, 2);
  assert_string_equal(added->container_id, "c1");
  assert_string_equal(added->exec_id, "e1");
  protobuf_c_message_free_unpacked(&added->base, NULL);

  /* Created, not started: State says so, Kill refuses. */
  sr.id = "c1";
  sr.exec_id = "e1";
  c = task_fixture_call_draining(f, "State", &sr.base);
  st = (void *)mock_call_unpack(c, &containerd__task__v2__state_response__descriptor);
  assert_int_equal(st->status, CONTAINERD__V1__TYPES__STATUS__CREATED);
  assert_string_equal(st->id, "e1");
  assert_string_equal(st->exec_id, "e1");
  assert_int_equal(st->pid, 0);
  protobuf_c_message_free_unpacked(&st->base, NULL);
  mock_call_free(c);
  {
    Containerd__Task__V2__KillRequest kr = CONTAINERD__TASK__V2__KILL_REQUEST__INIT;
    kr.id = "c1";
    kr.exec_id = "e1";
    kr.signal = 9;
    task_fixture_expect_code(task_fixture_call_draining(f, "Kill", &kr.base),
                             CSHIM_GRPC_FAILED_PRECONDITION);
  }

  w = wait_call(f, "c1", "e1");
  assert_int_equal(w->answered, 0);
  epid = start(f, "c1", "e1");
  assert_int_not_equal(epid, pid);
  assert_int_equal(wait_status(f, w), 4);
  wait_output(f, "hi\n");

  started = (void *)task_mock_unpack_event(&f->m, 3);
  assert_string_equal(started->container_id, "c1");
  assert_string_equal(started->exec_id, "e1");
  assert_int_equal(started->pid, epid);
  protobuf_c_message_free_unpacked(&started->base, NULL);
  ex = (void *)task_mock_unpack_event(&f->m, 4);
  assert_string_equal(ex->container_id, "c1");
  assert_string_equal(ex->id, "e1");
  assert_int_equal(ex->pid, epid);
  assert_int_equal(ex->exit_status, 4);
  protobuf_c_message_free_unpacked(&ex->base, NULL);

  /* The runtime got the process from a file in the bundle, terminal from the request. */
  snprintf(path, sizeof path, "%s/e1.pid", f->bundle);
  assert_true(exists(path));
  snprintf(path, sizeof path, "%s/e1.process.json", f->bundle);
  assert_false(exists(path));

  c = task_fixture_call_draining(f, "State", &sr.base);
  st = (void *)mock_call_unpack(c, &containerd__task__v2__state_response__descriptor);
  assert_int_equal(st->status, CONTAINERD__V1__TYPES__STATUS__STOPPED);
  assert_int_equal(st->exit_status, 4);
  assert_int_equal(st->pid, epid);
  protobuf_c_message_free_unpacked(&st->base, NULL);
  mock_call_free(c);

  /* as the runc shim: a stopped exec cannot be resized, terminal or not */
  {
    Containerd__Task__V2__ResizePtyRequest rr = CONTAINERD__TASK__V2__RESIZE_PTY_REQUEST__INIT;
    rr.id = "c1";
    rr.exec_id = "e1";
    rr.width = 80;
    rr.height = 24;
    c = task_fixture_call_draining(f, "ResizePty", &rr.base);
    assert_int_equal(c->code, CSHIM_GRPC_UNKNOWN);
    assert_string_equal(c->message, "cannot resize a stopped container");
    mock_call_free(c);
  }
  del = delete_process(f, "c1", "e1");
  assert_int_equal(del->pid, epid);
  assert_int_equal(del->exit_status, 4);
  assert_true(del->exited_at->seconds > 1600000000);
  protobuf_c_message_free_unpacked(&del->base, NULL);
  del_ev = (void *)task_mock_unpack_event(&f->m, 5);
  assert_string_equal(del_ev->container_id, "c1");
  assert_string_equal(del_ev->id, "e1");
  assert_int_equal(del_ev->exit_status, 4);
  protobuf_c_message_free_unpacked(&del_ev->base, NULL);
  snprintf(path, sizeof path, "%s/e1.pid", f->bundle);
  assert_false(exists(path));
  task_fixture_expect_code(task_fixture_call_draining(f, "State", &sr.base), CSHIM_GRPC_NOT_FOUND);
  expect_topics(f, topics);
  assert_string_equal(f->out, "hi\n");

  /* The id is free again. */
  assert_int_equal(exec_io(f, "c1", "e1", "[\"/bin/true\"]", false, NULL, NULL, NULL), 0);
  finish_container(f, "c1");
}

static void
test_exec_exit_reaped_before_its_pid_is_read_follows_exec_started(void **state)
{
  task_fixture_t *f = *state;
  int started, exited;
  mock_call_t *w;

  create(f, "fast");
  start(f, "fast", NULL);
  assert_int_equal(
      exec_io(f, "fast", "quick", "[\"/bin/sh\",\"-c\",\"exit 9\"]", false, NULL, NULL, NULL), 0);
  w = wait_call(f, "fast", "quick");
  setenv("FAKE_RUNC_EXEC_DELAY_MS", "300", 1);
  start(f, "fast", "quick");
  unsetenv("FAKE_RUNC_EXEC_DELAY_MS");
  assert_int_equal(wait_status(f, w), 9);
  started = task_mock_find_event(&f->m, "/tasks/exec-started", 0);
  exited = task_mock_find_event(&f->m, "/tasks/exit", 0);
  assert_true(started >= 0);
  assert_true(exited > started);
  delete_ok(f, "fast", "quick");
  finish_container(f, "fast");
}

static void
test_exec_answers_errors_with_containerd_codes(void **state)
{
  task_fixture_t *f = *state;
  Containerd__Task__V2__DeleteRequest dr = CONTAINERD__TASK__V2__DELETE_REQUEST__INIT;
  Containerd__Task__V2__StartRequest sr = CONTAINERD__TASK__V2__START_REQUEST__INIT;
  const char *args = "[\"/bin/sleep\",\"100\"]";
  mock_call_t *c, *w;

  assert_int_equal(exec_io(f, "nope", "e1", args, false, NULL, NULL, NULL), CSHIM_GRPC_NOT_FOUND);
  create(f, "c2");
  start(f, "c2", NULL);
  assert_int_equal(exec_io(f, "c2", "../escape", args, false, NULL, NULL, NULL),
                   CSHIM_GRPC_INVALID_ARGUMENT);
  assert_int_equal(exec_io(f, "c2", "", args, false, NULL, NULL, NULL),
                   CSHIM_GRPC_INVALID_ARGUMENT);
  assert_int_equal(exec_io(f, "c2", "e1", NULL, false, NULL, NULL, NULL),
                   CSHIM_GRPC_INVALID_ARGUMENT);
  assert_int_equal(exec_io(f, "c2", "e1", args, false, NULL, "gopher://x", NULL),
                   CSHIM_GRPC_INVALID_ARGUMENT);
  assert_int_equal(exec_io(f, "c2", "e1", args, false, NULL, NULL, NULL), 0);
  assert_int_equal(exec_io(f, "c2", "e1", args, false, NULL, NULL, NULL),
                   CSHIM_GRPC_ALREADY_EXISTS);

  sr.id = "c2";
  sr.exec_id = "e1";
  start(f, "c2", "e1");
  c = task_fixture_call_draining(f, "Start", &sr.base);
  assert_int_equal(c->code, CSHIM_GRPC_FAILED_PRECONDITION);
  mock_call_free(c);
  dr.id = "c2";
  dr.exec_id = "e1";
  c = task_fixture_call_draining(f, "Delete", &dr.base);
  assert_int_equal(c->code, CSHIM_GRPC_UNKNOWN);
  assert_string_equal(c->message, "cannot delete a running process");
  mock_call_free(c);
  dr.exec_id = "nope";
  task_fixture_expect_code(task_fixture_call_draining(f, "Delete", &dr.base), CSHIM_GRPC_NOT_FOUND);

  /* A runtime failure leaves the exec created (Start may be retried, Delete removes it). */
  assert_int_equal(exec_io(f, "c2", "e2", "[\"/bin/true\"]", false, NULL, NULL, NULL), 0);
  setenv("FAKE_RUNC_FAIL", "exec", 1);
  sr.exec_id = "e2";
  w = wait_call(f, "c2", "e2");
  c = task_fixture_call_draining(f, "Start", &sr.base);
  unsetenv("FAKE_RUNC_FAIL");
  assert_int_equal(c->code, CSHIM_GRPC_UNKNOWN);
  assert_non_null(strstr(c->message, "injected failure"));
  mock_call_free(c);
  assert_int_equal(w->answered, 0);
  delete_ok(f, "c2", "e2");
  assert_int_equal(w->answered, 1);
  assert_int_equal(w->code, CSHIM_GRPC_NOT_FOUND);
  mock_call_free(w);

  /* The init has exited: no more execs. */
  kill_process(f, "c2", "e1", SIGKILL);
  finish_container(f, "c2");
  create(f, "c3");
  start(f, "c3", NULL);
  w = wait_call(f, "c3", NULL);
  kill_process(f, "c3", NULL, SIGKILL);
  wait_status(f, w);
  assert_int_equal(exec_io(f, "c3", "late", args, false, NULL, NULL, NULL),
                   CSHIM_GRPC_FAILED_PRECONDITION);
  delete_ok(f, "c3", NULL);
}

static void
test_exec_stdin_closed_before_start_still_gets_its_input(void **state)
{
  task_fixture_t *f = *state;
  mock_call_t *w;
  int writer;

  create(f, "c4");
  start(f, "c4", NULL);
  make_fifos(f, true);
  assert_int_equal(
      exec_io(f, "c4", "cat", "[\"/bin/cat\"]", false, f->in_path, f->out_path, f->err_path), 0);
  /* ctr: CloseIO may come before Start; the client's writer opens once the shim reads. */
  close_io(f, "c4", "cat");
  w = wait_call(f, "c4", "cat");
  start(f, "c4", "cat");
  writer = open(f->in_path, O_WRONLY | O_NONBLOCK);
  assert_true(writer >= 0);
  assert_int_equal(write(writer, "piped\n", 6), 6);
  close(writer);
  assert_int_equal(wait_status(f, w), 0);
  delete_ok(f, "c4", "cat");
  assert_string_equal(f->out, "piped\n");
  finish_container(f, "c4");
}

static void
test_exec_pids_carry_process_details(void **state)
{
  task_fixture_t *f = *state;
  Containerd__Task__V2__PidsRequest pr = CONTAINERD__TASK__V2__PIDS_REQUEST__INIT;
  Containerd__Task__V2__PidsResponse *pids;
  uint32_t pid, epid;
  mock_call_t *c, *w;
  bool seen_init = false, seen_exec = false;

  pid = create(f, "c5");
  start(f, "c5", NULL);
  assert_int_equal(exec_io(f, "c5", "sleeper", "[\"/bin/sleep\",\"100\"]", false, NULL, NULL, NULL),
                   0);
  epid = start(f, "c5", "sleeper");
  pr.id = "c5";
  c = task_fixture_call_draining(f, "Pids", &pr.base);
  pids = (void *)mock_call_unpack(c, &containerd__task__v2__pids_response__descriptor);
  assert_int_equal(pids->n_processes, 2);
  for (size_t i = 0; i < pids->n_processes; i++) {
    Containerd__V1__Types__ProcessInfo *pi = pids->processes[i];
    if (pi->pid == pid) {
      seen_init = true;
      assert_null(pi->info);
    } else if (pi->pid == epid) {
      Containerd__Runc__V1__ProcessDetails *d;
      seen_exec = true;
      assert_non_null(pi->info);
      assert_string_equal(pi->info->type_url, "containerd.runc.v1.ProcessDetails");
      d = containerd__runc__v1__process_details__unpack(NULL, pi->info->value.len,
                                                        pi->info->value.data);
      assert_non_null(d);
      assert_string_equal(d->exec_id, "sleeper");
      containerd__runc__v1__process_details__free_unpacked(d, NULL);
    }
  }
  assert_true(seen_init && seen_exec);
  protobuf_c_message_free_unpacked(&pids->base, NULL);
  mock_call_free(c);
  w = wait_call(f, "c5", "sleeper");
  kill_process(f, "c5", "sleeper", SIGKILL);
  assert_int_equal(wait_status(f, w), 137);
  delete_ok(f, "c5", "sleeper");
  finish_container(f, "c5");
}

static void
test_exec_is_killed_and_reported_when_init_exits(void **state)
{
  task_fixture_t *f = *state;
  mock_call_t *we, *wi;
  int i_exit;

  /* No pid namespace: the runc shim kills what is left (kill --all) when init exits. */
  task_fixture_write_spec(f, "[\"/bin/sleep\",\"100\"]", false);
  create(f, "c6");
  start(f, "c6", NULL);
  assert_int_equal(exec_io(f, "c6", "orphan", "[\"/bin/sleep\",\"100\"]", false, NULL, NULL, NULL),
                   0);
  start(f, "c6", "orphan");
  we = wait_call(f, "c6", "orphan");
  wi = wait_call(f, "c6", NULL);
  kill_process(f, "c6", NULL, SIGKILL);
  assert_int_equal(wait_status(f, wi), 137);
  assert_int_equal(wait_status(f, we), 137);
  i_exit = task_mock_find_event(&f->m, "/tasks/exit", 0);
  assert_true(i_exit >= 0);
  assert_true(task_mock_find_event(&f->m, "/tasks/exit", (size_t)i_exit + 1) > i_exit);
  delete_ok(f, "c6", "orphan");
  delete_ok(f, "c6", NULL);
}

/* ---- terminals ---- */

static void
test_terminal_init_gets_a_pty_and_the_requested_size(void **state)
{
  task_fixture_t *f = *state;
  Containerd__Task__V2__StateRequest sr = CONTAINERD__TASK__V2__STATE_REQUEST__INIT;
  Containerd__Task__V2__StateResponse *st;
  char *msg = NULL;
  uint32_t pid = 0;
  mock_call_t *w, *c;
  DIR *d;
  struct dirent *e;

  task_fixture_write_spec(f, "[\"/bin/sh\",\"-c\",\"tty; stty size; echo done\"]", true);
  make_fifos(f, true);
  if (create_io(f, "t1", true, f->in_path, f->out_path, f->err_path, &pid, &msg) != 0)
    fail_msg("create: %s", msg);
  free(msg);
  /* the console socket's directory is gone once the runtime has connected */
  d = opendir(f->base);
  while ((e = readdir(d)) != NULL)
    assert_int_not_equal(strncmp(e->d_name, "pty", 3), 0);
  closedir(d);
  resize(f, "t1", NULL, 100, 30);
  w = wait_call(f, "t1", NULL);
  start(f, "t1", NULL);
  assert_int_equal(wait_status(f, w), 0);
  wait_output(f, "done");
  assert_non_null(strstr(f->out, "/dev/pts/"));
  assert_non_null(strstr(f->out, "30 100\r\n"));
  sr.id = "t1";
  c = task_fixture_call_draining(f, "State", &sr.base);
  st = (void *)mock_call_unpack(c, &containerd__task__v2__state_response__descriptor);
  assert_true(st->terminal);
  protobuf_c_message_free_unpacked(&st->base, NULL);
  mock_call_free(c);
  delete_ok(f, "t1", NULL);
}

static void
test_terminal_exec_echoes_input_and_hangs_up_when_stdin_ends(void **state)
{
  task_fixture_t *f = *state;
  mock_call_t *w;
  int writer;

  create(f, "t2");
  start(f, "t2", NULL);
  make_fifos(f, true);
  assert_int_equal(exec_io(f, "t2", "sh", "[\"/bin/cat\"]", true, f->in_path, f->out_path, ""), 0);
  w = wait_call(f, "t2", "sh");
  start(f, "t2", "sh");
  resize(f, "t2", "sh", 80, 24);
  writer = open(f->in_path, O_WRONLY | O_NONBLOCK);
  assert_true(writer >= 0);
  assert_int_equal(write(writer, "abc\n", 4), 4);
  wait_output(f, "abc\r\nabc\r\n"); /* the terminal's echo, then cat's copy */
  /* The client is gone and said so: the console is shut down, cat sees a hangup. */
  close(writer);
  close_io(f, "t2", "sh");
  assert_int_equal(wait_status(f, w), 128 + SIGHUP);
  delete_ok(f, "t2", "sh");
  finish_container(f, "t2");
}

struct stalled
{
  task_fixture_t *f;
  task_process_t *p;
  int fifo; /* the writer of the stdin FIFO */
  int last, same;
};

/* The copy stopped moving (the echo is drained meanwhile): what waits in the FIFO has not
   changed for 20 looks. */
static bool
stalled_pred(void *data)
{
  struct stalled *st = data;
  int pending = -1;
  task_fixture_drain(st->f);
  if (ioctl(st->fifo, FIONREAD, &pending) < 0 || pending != st->last) {
    st->last = pending;
    st->same = 0;
    return false;
  }
  return ++st->same > 20;
}

/* Terminal input that the process does not read: once the terminal is full, what it did not
   take waits in the stdin FIFO, not in the shim's buffer (tee, then consume what was written):
   a crash at that moment loses none of it (docs/live-upgrade.md). */
static void
test_terminal_input_the_terminal_cannot_take_stays_in_the_fifo(void **state)
{
  task_fixture_t *f = *state;
  struct stalled st = {.f = f};
  static char input[60000];
  task_container_t *c;
  mock_call_t *w;
  int writer, pending = 0;
  ssize_t n;

  create(f, "t3");
  start(f, "t3", NULL);
  make_fifos(f, true);
  assert_int_equal(
      exec_io(f, "t3", "sl", "[\"/bin/sleep\",\"1000\"]", true, f->in_path, f->out_path, ""), 0);
  w = wait_call(f, "t3", "sl");
  start(f, "t3", "sl");
  writer = open(f->in_path, O_WRONLY | O_NONBLOCK);
  assert_true(writer >= 0);
  memset(input, 'x', sizeof input);
  for (size_t i = 0; i < sizeof input; i += 64)
    input[i] = '\n';
  n = write(writer, input, sizeof input);
  assert_true(n > 0);
  c = task_service_find(f->svc, "t3");
  assert_non_null(c);
  st.p = task_container_process(c, "sl");
  assert_non_null(st.p);
  st.fifo = writer;
  st.last = -1;
  assert_true(mock_host_run_until(&f->m.host, stalled_pred, &st, TASK_FIXTURE_TIMEOUT_MS));
  /* the terminal did not take it all: the rest is in the FIFO, and nothing is held */
  assert_int_equal(ioctl(writer, FIONREAD, &pending), 0);
  assert_true(pending > 0);
  assert_int_equal(task_io_held(st.p->io), 0);
  close(writer);
  kill_process(f, "t3", "sl", SIGKILL);
  assert_int_equal(wait_status(f, w), 128 + SIGKILL);
  delete_ok(f, "t3", "sl");
  finish_container(f, "t3");
}

static void
test_terminal_create_fails_cleanly_when_no_pty_arrives(void **state)
{
  task_fixture_t *f = *state;
  char state_dir[700], *msg = NULL;

  setenv("FAKE_RUNC_CONSOLE", "hangup", 1);
  make_fifos(f, false);
  assert_int_not_equal(create_io(f, "t3", true, NULL, f->out_path, NULL, NULL, &msg), 0);
  assert_non_null(strstr(msg, "terminal"));
  free(msg);
  assert_int_equal(f->m.n_events, 0);
  /* The runtime had created it: `delete --force` removes it again, and the id stays taken until
     the shim has the runtime's answer. */
  snprintf(state_dir, sizeof state_dir, "%s/testns/t3", f->root);
  for (int i = 0; i < 200 && (exists(state_dir) || !cshim_list_empty(&f->svc->containers)); i++)
    mock_host_run_for(&f->m.host, 10);
  assert_false(exists(state_dir));
  assert_true(cshim_list_empty(&f->svc->containers));
  unsetenv("FAKE_RUNC_CONSOLE");
  create(f, "t3");
  delete_ok(f, "t3", NULL);
}

/* ---- logging binaries ---- */

static void
test_logger_gets_init_output_and_only_its_environment(void **state)
{
  task_fixture_t *f = *state;
  char uri[2048], log_path[600], info_path[600];
  char *text, *info, *msg = NULL;
  uint32_t pid = 0;
  mock_call_t *w;

  snprintf(log_path, sizeof log_path, "%s/log.txt", f->base);
  snprintf(info_path, sizeof info_path, "%s/info.txt", f->base);
  snprintf(uri, sizeof uri, "binary://%s?out=%s&info=%s", LOGGER_PATH, log_path, info_path);
  task_fixture_write_spec(f, "[\"/bin/sh\",\"-c\",\"echo to-out; echo to-err >&2\"]", true);
  if (create_io(f, "l1", false, NULL, uri, uri, &pid, &msg) != 0)
    fail_msg("create: %s", msg);
  free(msg);
  info = slurp(info_path);
  assert_non_null(strstr(info, "env CONTAINER_ID=l1\nenv CONTAINER_NAMESPACE=testns\nfd0"));
  free(info);
  w = wait_call(f, "l1", NULL);
  start(f, "l1", NULL);
  assert_int_equal(wait_status(f, w), 0);
  delete_ok(f, "l1", NULL); /* returns once the helper has flushed and exited */
  text = slurp(log_path);
  assert_non_null(strstr(text, "to-out\n"));
  assert_non_null(strstr(text, "to-err\n"));
  free(text);
}

static void
test_logger_v2_without_a_ready_byte_fails_create_before_the_runtime(void **state)
{
  task_fixture_t *f = *state;
  char uri[1024], log_path[600], argv_log[600];
  char *msg = NULL, *argv_text;

  snprintf(log_path, sizeof log_path, "%s/log.txt", f->base);
  snprintf(argv_log, sizeof argv_log, "%s/argv.log", f->base);
  setenv("FAKE_RUNC_ARGV_LOG", argv_log, 1);
  snprintf(uri, sizeof uri, "binary-v2://%s?out=%s&ready=eof", LOGGER_PATH, log_path);
  assert_int_not_equal(create_io(f, "l2", false, NULL, uri, uri, NULL, &msg), 0);
  assert_non_null(strstr(msg, "binary-v2"));
  free(msg);
  assert_int_equal(f->m.n_events, 0);
  argv_text = slurp(argv_log);
  assert_null(strstr(argv_text, "create"));
  free(argv_text);
  /* binary:// takes the same EOF as ready */
  snprintf(uri, sizeof uri, "binary://%s?out=%s&ready=eof", LOGGER_PATH, log_path);
  assert_int_equal(create_io(f, "l2", false, NULL, uri, uri, NULL, NULL), 0);
  delete_ok(f, "l2", NULL);
}

static void
test_logger_gets_terminal_exec_output_with_the_exec_id(void **state)
{
  task_fixture_t *f = *state;
  char uri[2048], log_path[600], info_path[600];
  char *text, *info;
  mock_call_t *w;

  snprintf(log_path, sizeof log_path, "%s/log.txt", f->base);
  snprintf(info_path, sizeof info_path, "%s/info.txt", f->base);
  snprintf(uri, sizeof uri, "binary://%s?out=%s&info=%s", LOGGER_PATH, log_path, info_path);
  create(f, "l3");
  start(f, "l3", NULL);
  assert_int_equal(
      exec_io(f, "l3", "x1", "[\"/bin/sh\",\"-c\",\"tty; echo via-pty\"]", true, NULL, uri, uri),
      0);
  w = wait_call(f, "l3", "x1");
  start(f, "l3", "x1");
  assert_int_equal(wait_status(f, w), 0);
  delete_ok(f, "l3", "x1");
  text = slurp(log_path);
  assert_non_null(strstr(text, "/dev/pts/"));
  assert_non_null(strstr(text, "via-pty\r\n"));
  free(text);
  /* as the runc shim: an exec's helper gets the exec id as CONTAINER_ID */
  info = slurp(info_path);
  assert_non_null(strstr(info, "env CONTAINER_ID=x1\n"));
  free(info);
  finish_container(f, "l3");
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
test_exec_terminal_and_logger_cycles_leave_no_descriptors(void **state)
{
  task_fixture_t *f = *state;
  char uri[1024], log_path[600];
  int before = 0;

  snprintf(log_path, sizeof log_path, "%s/log.txt", f->base);
  snprintf(uri, sizeof uri, "binary://%s?out=%s", LOGGER_PATH, log_path);
  make_fifos(f, true);
  create(f, "fd");
  start(f, "fd", NULL);
  for (int round = 0; round < 7; round++) {
    mock_call_t *w;
    bool terminal = round % 2 == 1;
    const char *out = round % 3 == 2 ? uri : f->out_path;
    if (round == 1)
      before = count_fds();
    assert_int_equal(exec_io(f, "fd", "e", "[\"/bin/echo\",\"x\"]", terminal, f->in_path, out,
                             terminal ? "" : (round % 3 == 2 ? uri : f->err_path)),
                     0);
    w = wait_call(f, "fd", "e");
    start(f, "fd", "e");
    assert_int_equal(wait_status(f, w), 0);
    delete_ok(f, "fd", "e");
  }
  mock_host_run_for(&f->m.host, 20);
  assert_int_equal(count_fds(), before);
  reset_output(f);
  finish_container(f, "fd");
}

int
main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_exec_runs_with_fifo_io_and_events_in_order, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(
          test_exec_exit_reaped_before_its_pid_is_read_follows_exec_started, setup, teardown),
      cmocka_unit_test_setup_teardown(test_exec_answers_errors_with_containerd_codes, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_exec_stdin_closed_before_start_still_gets_its_input,
                                      setup, teardown),
      cmocka_unit_test_setup_teardown(test_exec_pids_carry_process_details, setup, teardown),
      cmocka_unit_test_setup_teardown(test_exec_is_killed_and_reported_when_init_exits, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_terminal_init_gets_a_pty_and_the_requested_size, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_terminal_exec_echoes_input_and_hangs_up_when_stdin_ends,
                                      setup, teardown),
      cmocka_unit_test_setup_teardown(
          test_terminal_input_the_terminal_cannot_take_stays_in_the_fifo, setup, teardown),
      cmocka_unit_test_setup_teardown(test_terminal_create_fails_cleanly_when_no_pty_arrives, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_logger_gets_init_output_and_only_its_environment, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(
          test_logger_v2_without_a_ready_byte_fails_create_before_the_runtime, setup, teardown),
      cmocka_unit_test_setup_teardown(test_logger_gets_terminal_exec_output_with_the_exec_id, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_exec_terminal_and_logger_cycles_leave_no_descriptors,
                                      setup, teardown),
  };
  signal(SIGPIPE, SIG_IGN);
  /* The fake runc and the logger (built with the same sanitizers) exit without freeing. */
  setenv("ASAN_OPTIONS", "detect_leaks=0", 1);
  /* Container and exec processes are grandchildren (the fake runc exits): adopt them. */
  prctl(PR_SET_CHILD_SUBREAPER, 1);
  return cmocka_run_group_tests(tests, NULL, NULL);
}
