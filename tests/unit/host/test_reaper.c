// SPDX-License-Identifier: Apache-2.0
// Tests of host/reaper.c: one SIGCHLD owner dispatching exits by pid, incl. exits seen early.
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>
#include <uv.h>

#include "reaper.h"

struct seen
{
  int calls;
  pid_t pid;
  int status;
};

static void
exit_cb(void *data, pid_t pid, int status)
{
  struct seen *s = data;
  s->calls++;
  s->pid = pid;
  s->status = status;
}

static pid_t
child_exiting(int code)
{
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0)
    _exit(code);
  return pid;
}

static void
run_until(uv_loop_t *loop, int *counter, int want)
{
  for (int i = 0; i < 20000 && *counter < want; i++) {
    uv_run(loop, UV_RUN_NOWAIT);
    usleep(1000);
  }
}

static void
test_reaper_dispatches_exit_code_to_watcher(void **state)
{
  uv_loop_t *loop = uv_default_loop();
  host_reaper_t *r;
  cshim_error_t err = NULL;
  struct seen s = {0};
  pid_t pid;
  (void)state;

  assert_int_equal(host_reaper_new(loop, NULL, &r, &err), 0);
  pid = child_exiting(7);
  assert_int_equal(host_reaper_api(r)->ops->watch(host_reaper_api(r), pid, exit_cb, &s, &err), 0);
  run_until(loop, &s.calls, 1);
  assert_int_equal(s.calls, 1);
  assert_int_equal(s.pid, pid);
  assert_int_equal(cshim_exit_status(s.status), 7);
  host_reaper_close(r);
  uv_run(loop, UV_RUN_DEFAULT);
}

static void
test_reaper_keeps_exit_seen_before_watch(void **state)
{
  uv_loop_t *loop = uv_default_loop();
  host_reaper_t *r;
  cshim_error_t err = NULL;
  struct seen s = {0};
  pid_t pid;
  (void)state;

  assert_int_equal(host_reaper_new(loop, NULL, &r, &err), 0);
  pid = child_exiting(3);
  /* Let it die and be reaped with nobody watching: the exit-before-start race. WNOWAIT leaves
     the zombie for the reaper. */
  {
    siginfo_t si;
    assert_int_equal(waitid(P_PID, (id_t)pid, &si, WEXITED | WNOWAIT), 0);
  }
  host_reaper_reap(r);
  assert_int_equal(host_reaper_api(r)->ops->watch(host_reaper_api(r), pid, exit_cb, &s, &err), 0);
  assert_int_equal(s.calls, 0); /* never from inside watch */
  run_until(loop, &s.calls, 1);
  assert_int_equal(s.calls, 1);
  assert_int_equal(cshim_exit_status(s.status), 3);
  host_reaper_close(r);
  uv_run(loop, UV_RUN_DEFAULT);
}

/* More early exits than the unclaimed table's first allocation: it grows and keeps every one. */
static void
test_reaper_keeps_many_exits_seen_before_watch(void **state)
{
  enum
  {
    N = 40
  };
  uv_loop_t *loop = uv_default_loop();
  host_reaper_t *r;
  cshim_error_t err = NULL;
  struct seen s[N];
  pid_t pids[N];
  int total = 0;
  (void)state;

  memset(s, 0, sizeof s);
  assert_int_equal(host_reaper_new(loop, NULL, &r, &err), 0);
  for (int i = 0; i < N; i++) {
    siginfo_t si;
    pids[i] = child_exiting(i);
    assert_int_equal(waitid(P_PID, (id_t)pids[i], &si, WEXITED | WNOWAIT), 0);
  }
  host_reaper_reap(r);
  for (int i = 0; i < N; i++)
    assert_int_equal(
        host_reaper_api(r)->ops->watch(host_reaper_api(r), pids[i], exit_cb, &s[i], &err), 0);
  for (int tries = 0; tries < 20000 && total < N; tries++) {
    uv_run(loop, UV_RUN_NOWAIT);
    total = 0;
    for (int i = 0; i < N; i++)
      total += s[i].calls;
  }
  for (int i = 0; i < N; i++) {
    assert_int_equal(s[i].calls, 1);
    assert_int_equal(s[i].pid, pids[i]);
    assert_int_equal(cshim_exit_status(s[i].status), (unsigned)i);
  }
  host_reaper_close(r);
  uv_run(loop, UV_RUN_DEFAULT);
}

static void
test_reaper_reports_signal_as_128_plus_signo(void **state)
{
  uv_loop_t *loop = uv_default_loop();
  host_reaper_t *r;
  cshim_error_t err = NULL;
  struct seen s = {0};
  pid_t pid;
  (void)state;

  assert_int_equal(host_reaper_new(loop, NULL, &r, &err), 0);
  pid = fork();
  if (pid == 0) {
    pause();
    _exit(0);
  }
  host_reaper_api(r)->ops->watch(host_reaper_api(r), pid, exit_cb, &s, &err);
  kill(pid, SIGKILL);
  run_until(loop, &s.calls, 1);
  assert_int_equal(cshim_exit_status(s.status), 137);
  host_reaper_close(r);
  uv_run(loop, UV_RUN_DEFAULT);
}

static void
idle_cb(uv_idle_t *h)
{
  (void)h;
}

static void
test_reaper_unwatch_and_subscribers(void **state)
{
  uv_loop_t *loop = uv_default_loop();
  host_reaper_t *r;
  cshim_reaper_t *api;
  cshim_error_t err = NULL;
  struct seen watched = {0}, all = {0};
  uv_idle_t keep_alive;
  pid_t a, b;
  (void)state;

  assert_int_equal(host_reaper_new(loop, NULL, &r, &err), 0);
  api = host_reaper_api(r);
  /* Subscribers alone do not keep a loop alive (in the shim its server does): once b's watch
     has fired, only this handle makes uv_run poll for a's exit. */
  uv_idle_init(loop, &keep_alive);
  uv_idle_start(&keep_alive, idle_cb);
  assert_int_equal(api->ops->subscribe(api, exit_cb, &all, &err), 0);
  a = child_exiting(1);
  b = child_exiting(2);
  api->ops->watch(api, a, exit_cb, &watched, &err);
  api->ops->watch(api, b, exit_cb, &watched, &err);
  api->ops->unwatch(api, a, exit_cb, &watched);
  run_until(loop, &all.calls, 2);
  assert_int_equal(all.calls, 2);
  assert_int_equal(watched.calls, 1);
  assert_int_equal(watched.pid, b);
  api->ops->unsubscribe(api, exit_cb, &all);
  uv_close((uv_handle_t *)&keep_alive, NULL);
  assert_int_equal(api->ops->watch(api, 0, exit_cb, &watched, &err), -EINVAL);
  cshim_error_release(&err);
  host_reaper_close(r);
  uv_run(loop, UV_RUN_DEFAULT);
}

static void
test_reaper_counts_started_processes_in_a_bounded_table(void **state)
{
  uv_loop_t *loop = uv_default_loop();
  host_reaper_t *r;
  cshim_reaper_t *api;
  cshim_error_t err = NULL;
  const host_reaper_started_t *e = NULL;
  char name[32];
  size_t n;
  (void)state;

  assert_int_equal(host_reaper_new(loop, NULL, &r, &err), 0);
  api = host_reaper_api(r);
  assert_int_equal(host_reaper_started(r, &e), 0);
  api->ops->started(api, 100, "runtime", "create");
  api->ops->started(api, 101, "runtime", "start");
  api->ops->started(api, 102, "runtime", "create");
  api->ops->started(api, 103, NULL, NULL);
  api->ops->started(api, 104, "logger", NULL);
  n = host_reaper_started(r, &e);
  assert_int_equal(n, 4);
  assert_string_equal(e[0].kind, "runtime");
  assert_string_equal(e[0].command, "create");
  assert_int_equal(e[0].count, 2);
  assert_string_equal(e[1].command, "start");
  assert_int_equal(e[1].count, 1);
  assert_string_equal(e[2].kind, "other");
  assert_string_equal(e[2].command, "");
  assert_string_equal(e[3].kind, "logger");
  /* Endless new names do not grow the table: the last row takes them, as "other". */
  for (int i = 0; i < 200; i++) {
    snprintf(name, sizeof name, "cmd%d", i);
    api->ops->started(api, 200 + i, "runtime", name);
  }
  n = host_reaper_started(r, &e);
  assert_true(n < 100);
  assert_string_equal(e[n - 1].kind, "other");
  {
    uint64_t total = 0;
    for (size_t i = 0; i < n; i++)
      total += e[i].count;
    assert_int_equal(total, 205); /* nothing lost */
  }
  host_reaper_close(r);
  uv_run(loop, UV_RUN_DEFAULT);
}

struct carried
{
  int n;
  pid_t pid[8];
  int status[8];
  int hooked;
};

static void
carry_cb(void *data, pid_t pid, int status, uint64_t at_ns)
{
  struct carried *c = data;
  (void)at_ns;
  if (c->n < 8) {
    c->pid[c->n] = pid;
    c->status[c->n] = status;
  }
  c->n++;
}

static void
hook_cb(void *data, pid_t pid, int status)
{
  (void)pid;
  (void)status;
  ((struct carried *)data)->hooked++;
}

/* Live upgrade: an exit reaped with nobody watching, and one claimed by a watch whose deferred
   call has not run yet, both reach the next image (host_reaper_foreach_unclaimed), where a
   watch gets them (host_reaper_add_unclaimed); the exit hook sees every exit. */
static void
test_reaper_carries_unclaimed_and_deferred_exits(void **state)
{
  uv_loop_t *loop = uv_default_loop();
  host_reaper_t *r, *r2;
  cshim_error_t err = NULL;
  struct carried c = {0};
  struct seen s1 = {0}, s2 = {0}, late = {0};
  siginfo_t si;
  pid_t a, b;
  (void)state;

  assert_int_equal(host_reaper_new(loop, NULL, &r, &err), 0);
  host_reaper_set_exit_hook(r, hook_cb, &c);
  a = child_exiting(4);
  b = child_exiting(5);
  assert_int_equal(waitid(P_PID, (id_t)a, &si, WEXITED | WNOWAIT), 0);
  assert_int_equal(waitid(P_PID, (id_t)b, &si, WEXITED | WNOWAIT), 0);
  host_reaper_reap(r);
  assert_int_equal(c.hooked, 2);
  /* b is claimed now, but its callback waits for the next loop turn */
  assert_int_equal(host_reaper_api(r)->ops->watch(host_reaper_api(r), b, exit_cb, &late, &err), 0);
  assert_int_equal(late.calls, 0);
  host_reaper_foreach_unclaimed(r, carry_cb, &c);
  assert_int_equal(c.n, 2);
  assert_true((c.pid[0] == a && c.pid[1] == b) || (c.pid[0] == b && c.pid[1] == a));
  host_reaper_set_exit_hook(r, NULL, NULL);
  host_reaper_close(r);
  uv_run(loop, UV_RUN_DEFAULT);

  /* the next image */
  assert_int_equal(host_reaper_new(loop, NULL, &r2, &err), 0);
  for (int i = 0; i < 2; i++)
    host_reaper_add_unclaimed(r2, c.pid[i], c.status[i], 0);
  assert_int_equal(host_reaper_api(r2)->ops->watch(host_reaper_api(r2), a, exit_cb, &s1, &err), 0);
  assert_int_equal(host_reaper_api(r2)->ops->watch(host_reaper_api(r2), b, exit_cb, &s2, &err), 0);
  run_until(loop, &s2.calls, 1);
  run_until(loop, &s1.calls, 1);
  assert_int_equal(s1.calls, 1);
  assert_int_equal(cshim_exit_status(s1.status), 4);
  assert_int_equal(s2.calls, 1);
  assert_int_equal(cshim_exit_status(s2.status), 5);
  host_reaper_close(r2);
  uv_run(loop, UV_RUN_DEFAULT);
}

int
main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_reaper_dispatches_exit_code_to_watcher),
      cmocka_unit_test(test_reaper_carries_unclaimed_and_deferred_exits),
      cmocka_unit_test(test_reaper_keeps_exit_seen_before_watch),
      cmocka_unit_test(test_reaper_keeps_many_exits_seen_before_watch),
      cmocka_unit_test(test_reaper_reports_signal_as_128_plus_signo),
      cmocka_unit_test(test_reaper_unwatch_and_subscribers),
      cmocka_unit_test(test_reaper_counts_started_processes_in_a_bounded_table),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
