// SPDX-License-Identifier: Apache-2.0
// The operation runner (plugins/task/op.c): every op is completed exactly once and freed by the
// runner, after the callback that completed it has returned.
#define _GNU_SOURCE
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cshim/util.h>

#include "fixture.h"
#include "model.h"
#include "op.h"

#include <cmocka.h>

struct fixture
{
  task_mock_t m;
  task_events_t events;
  task_env_t env;
  task_container_t c;
  int gc_requests;
  int released; /* free_data calls */
};

static void
events_publish(void *data, const char *topic, const ProtobufCMessage *event)
{
}

static void
events_gc_needed(void *data)
{
  ((struct fixture *)data)->gc_requests++;
}

static void
events_process_stopped(void *data, task_process_t *p)
{
}

static int
setup(void **state)
{
  struct fixture *f = cshim_xmalloc0(sizeof *f);
  task_mock_init(&f->m);
  f->events = (task_events_t){.data = f,
                              .publish = events_publish,
                              .gc_needed = events_gc_needed,
                              .process_stopped = events_process_stopped};
  f->env = (task_env_t){.loop = &f->m.host.loop,
                        .log = &f->m.host.logger,
                        .reaper = f->m.reaper,
                        .events = &f->events};
  f->c.id = "c1";
  f->c.env = &f->env;
  f->c.log = f->env.log;
  f->c.events = &f->events;
  *state = f;
  return 0;
}

static int
teardown(void **state)
{
  struct fixture *f = *state;
  assert_null(task_op_first(&f->c));
  task_mock_fini(&f->m);
  free(f);
  return 0;
}

static void
release(void *data)
{
  ((struct fixture *)data)->released++;
}

static task_op_t *
new_op(struct fixture *f, mock_call_t *call, task_op_fn done)
{
  task_op_t *op = task_op_new(&f->c, NULL, call ? &call->base : NULL, done, "test");
  op->data = f;
  op->free_data = release;
  return op;
}

/* Completes inside the runner, then still reads the op: it must not have been freed yet. */
static void
reply_then_read(task_op_t *op, cshim_runtime_result_t *result)
{
  struct fixture *f = op->data;
  task_op_reply_empty(op);
  assert_true(op->completed);
  assert_ptr_equal(task_op_first(&f->c), op);
  assert_int_equal(f->released, 0);
}

static void
test_op_completed_in_the_runner_is_freed_after_the_callback(void **state)
{
  struct fixture *f = *state;
  mock_call_t *call = task_call_new("Kill");
  cshim_runtime_result_t result = {0};

  new_op(f, call, reply_then_read);
  task_op_runtime_cb(task_op_first(&f->c), &result);
  assert_null(task_op_first(&f->c));
  assert_int_equal(f->released, 1);
  assert_int_equal(call->answered, 1);
  assert_int_equal(call->code, 0);
  mock_call_free(call);
}

static void
continue_later(task_op_t *op, cshim_runtime_result_t *result)
{
}

static void
test_op_not_completed_by_its_callback_stays_until_completed(void **state)
{
  struct fixture *f = *state;
  mock_call_t *call = task_call_new("Delete");
  cshim_runtime_result_t result = {0};
  cshim_error_t err = NULL;
  task_op_t *op = new_op(f, call, continue_later);

  task_op_runtime_cb(op, &result);
  assert_ptr_equal(task_op_first(&f->c), op);
  assert_int_equal(call->answered, 0);
  /* a later step (an IO wait) completes it outside the runner: freed at once */
  cshim_error_make(&err, ENOENT, "gone");
  task_op_fail(op, &err);
  assert_null(err);
  assert_null(task_op_first(&f->c));
  assert_int_equal(f->released, 1);
  assert_int_equal(call->answered, 1);
  assert_int_equal(call->code, CSHIM_GRPC_NOT_FOUND);
  mock_call_free(call);
}

static void
test_op_last_op_of_a_removed_container_asks_for_gc(void **state)
{
  struct fixture *f = *state;
  task_op_t *a = new_op(f, NULL, continue_later);
  task_op_t *b = new_op(f, NULL, continue_later);

  f->c.removed = true;
  task_op_complete(a);
  assert_int_equal(f->gc_requests, 0);
  task_op_complete(b);
  assert_int_equal(f->gc_requests, 1);
  assert_int_equal(f->released, 2);
}

static void
test_op_internal_failure_is_logged_with_the_container(void **state)
{
  struct fixture *f = *state;
  cshim_error_t err = NULL;
  task_op_t *op = new_op(f, NULL, continue_later);

  cshim_error_make(&err, EIO, "runtime said no");
  task_op_fail(op, &err);
  assert_int_equal(
      mock_host_count_lines(&f->m.host, CSHIM_LOG_WARN, "test `c1`", "runtime said no", NULL), 1);
}

static void
test_op_cancel_all_answers_unavailable(void **state)
{
  struct fixture *f = *state;
  mock_call_t *call = task_call_new("State");

  new_op(f, call, continue_later);
  new_op(f, NULL, continue_later);
  task_op_cancel_all(&f->c);
  assert_null(task_op_first(&f->c));
  assert_int_equal(f->released, 2);
  assert_int_equal(call->code, CSHIM_GRPC_UNAVAILABLE);
  mock_call_free(call);
}

/* A step before done: records that it ran, then hands over (the runtime result with it). */
static void
step_then_done(task_op_t *op, cshim_runtime_result_t *result)
{
  struct fixture *f = op->data;
  assert_int_equal(f->released, 0);
  op->signal = 1; /* the step ran */
  task_op_run_done(op, result);
}

static void
done_after_step(task_op_t *op, cshim_runtime_result_t *result)
{
  assert_int_equal(op->signal, 1);
  assert_ptr_equal(op->step, op->done); /* the steps before done are over */
  assert_non_null(result->error);
  task_op_fail_result(op, result);
}

static void
test_op_step_before_done_runs_first_and_done_completes_once(void **state)
{
  struct fixture *f = *state;
  mock_call_t *call = task_call_new("Create");
  cshim_runtime_result_t result = {0};
  task_op_t *op = new_op(f, call, done_after_step);

  task_op_step(op, step_then_done);
  assert_ptr_equal(op->done, done_after_step); /* done is never replaced */
  cshim_error_make(&result.error, EEXIST, "taken");
  task_op_runtime_cb(op, &result);
  assert_null(result.error);
  assert_null(task_op_first(&f->c));
  assert_int_equal(f->released, 1);
  assert_int_equal(call->answered, 1);
  assert_int_equal(call->code, CSHIM_GRPC_ALREADY_EXISTS);
  mock_call_free(call);
}

#ifndef NDEBUG
static void
complete_twice(task_op_t *op, cshim_runtime_result_t *result)
{
  task_op_complete(op);
  task_op_complete(op);
}
#endif

/* The guard: a second completion aborts (in a child, so the test goes on). */
static void
test_op_second_completion_aborts(void **state)
{
#ifdef NDEBUG
  skip();
#else
  struct fixture *f = *state;
  cshim_runtime_result_t result = {0};
  char msg[1024] = "";
  size_t len = 0;
  ssize_t n;
  int status = 0, fds[2];
  pid_t pid;

  assert_int_equal(pipe(fds), 0);
  pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    signal(SIGABRT, SIG_DFL);
    dup2(fds[1], STDERR_FILENO);
    task_op_runtime_cb(new_op(f, NULL, complete_twice), &result);
    _exit(0);
  }
  close(fds[1]);
  while (len + 1 < sizeof msg && (n = read(fds[0], msg + len, sizeof msg - 1 - len)) > 0)
    len += (size_t)n;
  msg[len] = '\0';
  close(fds[0]);
  assert_int_equal(waitpid(pid, &status, 0), pid);
  assert_true(WIFSIGNALED(status));
  assert_int_equal(WTERMSIG(status), SIGABRT);
  /* the runner's assert, not the allocator finding a double free */
  assert_non_null(strstr(msg, "!op->completed"));
#endif
}

int
main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_op_completed_in_the_runner_is_freed_after_the_callback,
                                      setup, teardown),
      cmocka_unit_test_setup_teardown(test_op_not_completed_by_its_callback_stays_until_completed,
                                      setup, teardown),
      cmocka_unit_test_setup_teardown(test_op_last_op_of_a_removed_container_asks_for_gc, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_op_internal_failure_is_logged_with_the_container, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_op_cancel_all_answers_unavailable, setup, teardown),
      cmocka_unit_test_setup_teardown(test_op_step_before_done_runs_first_and_done_completes_once,
                                      setup, teardown),
      cmocka_unit_test_setup_teardown(test_op_second_completion_aborts, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
