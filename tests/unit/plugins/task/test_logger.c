// SPDX-License-Identifier: Apache-2.0
// Logging binaries: the command line from the URI, the environment and fds the helper gets, the
// ready pipe (binary:// and binary-v2://), and the SIGTERM-then-SIGKILL teardown.
#define _GNU_SOURCE
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
#include <sys/stat.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <cshim/util.h>

#include "fixture.h"
#include "logger.h"

#include <cmocka.h>

#ifndef LOGGER_PATH
#error LOGGER_PATH must be defined
#endif

struct fx
{
  task_mock_t m;
  char dir[64];
  char out[128], info[128];
  int ready_calls, stop_calls;
  cshim_error_t err;
};

static int
rm_cb(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
  if (flag == FTW_DP || flag == FTW_D)
    rmdir(path);
  else
    unlink(path);
  return 0;
}

static int
setup(void **state)
{
  struct fx *f = cshim_xmalloc0(sizeof *f);
  task_mock_init(&f->m);
  snprintf(f->dir, sizeof f->dir, "/tmp/cshim-logger-XXXXXX");
  assert_non_null(mkdtemp(f->dir));
  snprintf(f->out, sizeof f->out, "%s/out", f->dir);
  snprintf(f->info, sizeof f->info, "%s/info", f->dir);
  *state = f;
  return 0;
}

static int
teardown(void **state)
{
  struct fx *f = *state;
  mock_host_run_for(&f->m.host, 10);
  task_mock_fini(&f->m);
  cshim_error_release(&f->err);
  nftw(f->dir, rm_cb, 8, FTW_DEPTH | FTW_PHYS);
  free(f);
  return 0;
}

static void
expect_argv(const char *uri, const char *const *want, bool want_v2)
{
  cshim_error_t err = NULL;
  char **argv = NULL;
  bool v2 = !want_v2;
  size_t i;
  if (task_logger_parse_uri(uri, &argv, &v2, &err) < 0)
    fail_msg("%s: %s", uri, err->msg);
  for (i = 0; want[i]; i++) {
    assert_non_null(argv[i]);
    assert_string_equal(argv[i], want[i]);
  }
  assert_null(argv[i]);
  assert_int_equal(v2, want_v2);
  task_logger_free_argv(argv);
}

static void
expect_bad_uri(const char *uri)
{
  cshim_error_t err = NULL;
  char **argv = NULL;
  bool v2;
  assert_int_equal(task_logger_parse_uri(uri, &argv, &v2, &err), -EINVAL);
  assert_null(argv);
  cshim_error_release(&err);
}

static void
test_logger_argv_is_the_path_then_sorted_query_pairs(void **state)
{
  static const char *const a[] = {"/usr/bin/log", "a", "1",  "b",   "2", "flag", "",
                                  "pc",           "/", "sp", "x y", NULL};
  static const char *const b[] = {"/opt/my logger", NULL};
  static const char *const c[] = {"/path", "k", "v", NULL};
  expect_argv("binary:///usr/bin/log?b=2&a=1&a=3&flag&sp=x+y&pc=%2F", a, false);
  expect_argv("binary-v2:///opt/my%20logger", b, true);
  expect_argv("binary://host/path?k=v#frag", c, false);
  expect_bad_uri("binary://");
  expect_bad_uri("binary://hostonly");
  expect_bad_uri("binary:///bad%zz");
  expect_bad_uri("binary:///x?a=1;b=2");
  expect_bad_uri("file:///x");
}

static void
ready_cb(void *data, cshim_error_t *err)
{
  struct fx *f = data;
  f->ready_calls++;
  f->err = cshim_steal_pointer(err);
}

static void
stop_cb(void *data, cshim_error_t *err)
{
  struct fx *f = data;
  f->stop_calls++;
}

static bool
ready_called(void *data)
{
  return ((struct fx *)data)->ready_calls > 0;
}

static bool
stop_called(void *data)
{
  return ((struct fx *)data)->stop_calls > 0;
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

/* Start the test logger with extra query text; p_out/p_err are our write ends. */
static task_logger_t *
start(struct fx *f, const char *scheme, const char *query, int *p_out, int *p_err, int *ret)
{
  cshim_error_t err = NULL;
  task_logger_t *l = NULL;
  char uri[512];
  int out[2], errp[2];

  snprintf(uri, sizeof uri, "%s://%s?out=%s&info=%s%s", scheme, LOGGER_PATH, f->out, f->info,
           query);
  assert_int_equal(pipe2(out, O_CLOEXEC), 0);
  assert_int_equal(pipe2(errp, O_CLOEXEC), 0);
  *ret = task_logger_spawn(&f->m.host.loop, &f->m.host.logger, f->m.reaper, uri, "ctr1", "ns1",
                           out[0], errp[0], &l, &err);
  close(out[0]);
  close(errp[0]);
  if (*ret < 0) {
    f->err = err;
    close(out[1]);
    close(errp[1]);
    return NULL;
  }
  *p_out = out[1];
  *p_err = errp[1];
  return l;
}

static void
test_logger_gets_the_outputs_env_and_ready_byte(void **state)
{
  struct fx *f = *state;
  cshim_error_t err = NULL;
  task_logger_t *l;
  int out, errfd, ret;
  char *info, *text;

  l = start(f, "binary", "&zz=last", &out, &errfd, &ret);
  assert_non_null(l);
  assert_int_equal(task_logger_wait_ready(l, 5000, ready_cb, f, &err), 0);
  assert_true(mock_host_run_until(&f->m.host, ready_called, f, 5000));
  assert_null(f->err);
  assert_int_equal(write(out, "to-out\n", 7), 7);
  assert_int_equal(write(errfd, "to-err\n", 7), 7);
  close(out);
  close(errfd);
  /* It exits by itself at EOF; the stop then has nothing to signal. */
  mock_host_run_for(&f->m.host, 300);
  task_logger_stop(l, 5000, stop_cb, f);
  assert_true(mock_host_run_until(&f->m.host, stop_called, f, 5000));

  info = slurp(f->info);
  /* argv: path, then pairs in key order; env: exactly the two variables; stdin is /dev/null */
  {
    char want[1024];
    snprintf(want, sizeof want,
             "arg %s\narg info\narg %s\narg out\narg %s\narg zz\narg last\n"
             "env CONTAINER_ID=ctr1\nenv CONTAINER_NAMESPACE=ns1\nfd0 open\n",
             LOGGER_PATH, f->info, f->out);
    assert_string_equal(info, want);
  }
  text = slurp(f->out);
  assert_non_null(strstr(text, "to-out\n"));
  assert_non_null(strstr(text, "to-err\n"));
  free(info);
  free(text);
}

static void
test_logger_v2_needs_a_byte_and_v1_takes_eof(void **state)
{
  struct fx *f = *state;
  cshim_error_t err = NULL;
  task_logger_t *l;
  int out, errfd, ret;

  l = start(f, "binary-v2", "&ready=eof", &out, &errfd, &ret);
  assert_non_null(l);
  assert_int_equal(task_logger_wait_ready(l, 5000, ready_cb, f, &err), 0);
  assert_true(mock_host_run_until(&f->m.host, ready_called, f, 5000));
  assert_non_null(f->err);
  assert_int_equal(f->err->status, -EPROTO);
  assert_non_null(strstr(f->err->msg, "without writing a byte"));
  cshim_error_release(&f->err);
  close(out);
  close(errfd);
  task_logger_stop(l, 5000, stop_cb, f);
  assert_true(mock_host_run_until(&f->m.host, stop_called, f, 5000));

  f->ready_calls = f->stop_calls = 0;
  l = start(f, "binary", "&ready=eof", &out, &errfd, &ret);
  assert_non_null(l);
  assert_int_equal(task_logger_wait_ready(l, 5000, ready_cb, f, &err), 0);
  assert_true(mock_host_run_until(&f->m.host, ready_called, f, 5000));
  assert_null(f->err);
  close(out);
  close(errfd);
  task_logger_stop(l, 5000, stop_cb, f);
  assert_true(mock_host_run_until(&f->m.host, stop_called, f, 5000));
}

static void
test_logger_readiness_times_out(void **state)
{
  struct fx *f = *state;
  cshim_error_t err = NULL;
  task_logger_t *l;
  int out, errfd, ret;

  l = start(f, "binary", "&ready=none", &out, &errfd, &ret);
  assert_non_null(l);
  assert_int_equal(task_logger_wait_ready(l, 100, ready_cb, f, &err), 0);
  assert_true(mock_host_run_until(&f->m.host, ready_called, f, 5000));
  assert_non_null(f->err);
  assert_int_equal(f->err->status, -ETIMEDOUT);
  close(out);
  close(errfd);
  task_logger_stop(l, 5000, stop_cb, f);
  assert_true(mock_host_run_until(&f->m.host, stop_called, f, 5000));
}

static void
test_logger_that_ignores_sigterm_is_killed_after_the_grace(void **state)
{
  struct fx *f = *state;
  cshim_error_t err = NULL;
  task_logger_t *l;
  int out, errfd, ret;
  pid_t pid;

  l = start(f, "binary", "&term=ignore&linger=1", &out, &errfd, &ret);
  assert_non_null(l);
  pid = task_logger_pid(l);
  assert_int_equal(task_logger_wait_ready(l, 5000, ready_cb, f, &err), 0);
  assert_true(mock_host_run_until(&f->m.host, ready_called, f, 5000));
  close(out);
  close(errfd);
  mock_host_run_for(&f->m.host, 100);
  assert_int_equal(kill(pid, 0), 0); /* still there after EOF */
  task_logger_stop(l, 200, stop_cb, f);
  mock_host_run_for(&f->m.host, 100);
  assert_int_equal(f->stop_calls, 0);
  assert_true(mock_host_run_until(&f->m.host, stop_called, f, 5000));
  /* the reaper collects it as an unclaimed exit */
  for (int i = 0; i < 100 && kill(pid, 0) == 0; i++)
    mock_host_run_for(&f->m.host, 10);
  assert_int_equal(kill(pid, 0), -1);
}

/* The pids a test logger wrote with `children PATH`, once it has written them. */
static void
read_children(struct fx *f, const char *path, pid_t pids[2])
{
  for (int i = 0; i < 500; i++) {
    char *text = slurp(path);
    char *nl = strchr(text, '\n');
    if (nl && strchr(nl + 1, '\n')) {
      pids[0] = (pid_t)atoi(text);
      pids[1] = (pid_t)atoi(nl + 1);
      free(text);
      return;
    }
    free(text);
    mock_host_run_for(&f->m.host, 10);
  }
  fail_msg("the test logger never wrote its children's pids");
}

static void
assert_reaped(struct fx *f, pid_t pid)
{
  for (int i = 0; i < 300 && kill(pid, 0) == 0; i++)
    mock_host_run_for(&f->m.host, 10);
  assert_int_equal(kill(pid, 0), -1);
  assert_int_equal(errno, ESRCH);
}

static void
test_logger_stop_kills_everything_a_hung_logger_started(void **state)
{
  struct fx *f = *state;
  cshim_error_t err = NULL;
  task_logger_t *l;
  char query[320], children[160];
  int out, errfd, ret;
  pid_t pid, kids[2];

  /* Like the shim: orphans come back to us and the reaper reaps them. */
  assert_int_equal(prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0), 0);
  snprintf(children, sizeof children, "%s.children", f->out);
  snprintf(query, sizeof query, "&term=ignore&linger=1&children=%s", children);
  l = start(f, "binary", query, &out, &errfd, &ret);
  assert_non_null(l);
  pid = task_logger_pid(l);
  assert_int_equal(task_logger_wait_ready(l, 5000, ready_cb, f, &err), 0);
  assert_true(mock_host_run_until(&f->m.host, ready_called, f, 5000));
  read_children(f, children, kids);
  assert_int_equal(getpgid(pid), pid); /* its own process group */
  assert_int_equal(getpgid(kids[0]), pid);
  assert_int_equal(getpgid(kids[1]), kids[1]); /* left it */
  close(out);
  close(errfd);
  task_logger_stop(l, 200, stop_cb, f);
  assert_true(mock_host_run_until(&f->m.host, stop_called, f, 5000));
  assert_reaped(f, pid);
  assert_reaped(f, kids[0]);
  assert_reaped(f, kids[1]);
  unlink(children);
}

static void
test_logger_stop_kills_the_group_of_a_logger_that_exits(void **state)
{
  struct fx *f = *state;
  cshim_error_t err = NULL;
  task_logger_t *l;
  char query[320], children[160];
  int out, errfd, ret;
  pid_t pid, kids[2];

  assert_int_equal(prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0), 0);
  snprintf(children, sizeof children, "%s.children", f->out);
  snprintf(query, sizeof query, "&linger=1&children=%s", children);
  l = start(f, "binary", query, &out, &errfd, &ret);
  assert_non_null(l);
  pid = task_logger_pid(l);
  assert_int_equal(task_logger_wait_ready(l, 5000, ready_cb, f, &err), 0);
  assert_true(mock_host_run_until(&f->m.host, ready_called, f, 5000));
  read_children(f, children, kids);
  close(out);
  close(errfd);
  /* It exits on SIGTERM; its group goes with it, although that member ignores SIGTERM. */
  task_logger_stop(l, 5000, stop_cb, f);
  assert_true(mock_host_run_until(&f->m.host, stop_called, f, 5000));
  assert_reaped(f, pid);
  assert_reaped(f, kids[0]);
  kill(kids[1], SIGKILL); /* out of reach once its parent is gone: the test cleans it up */
  assert_reaped(f, kids[1]);
  unlink(children);
}

static void
test_logger_missing_binary_fails_at_spawn(void **state)
{
  struct fx *f = *state;
  cshim_error_t err = NULL;
  task_logger_t *l = NULL;
  int p[2];

  assert_int_equal(pipe2(p, O_CLOEXEC), 0);
  assert_true(task_logger_spawn(&f->m.host.loop, &f->m.host.logger, f->m.reaper,
                                "binary:///does/not/exist?x=1", "c", "n", p[0], p[0], &l,
                                &err) < 0);
  assert_null(l);
  assert_int_equal(err->status, -ENOENT);
  cshim_error_release(&err);
  close(p[0]);
  close(p[1]);
}

int
main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_logger_argv_is_the_path_then_sorted_query_pairs),
      cmocka_unit_test_setup_teardown(test_logger_gets_the_outputs_env_and_ready_byte, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_logger_v2_needs_a_byte_and_v1_takes_eof, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_logger_readiness_times_out, setup, teardown),
      cmocka_unit_test_setup_teardown(test_logger_that_ignores_sigterm_is_killed_after_the_grace,
                                      setup, teardown),
      cmocka_unit_test_setup_teardown(test_logger_stop_kills_everything_a_hung_logger_started,
                                      setup, teardown),
      cmocka_unit_test_setup_teardown(test_logger_stop_kills_the_group_of_a_logger_that_exits,
                                      setup, teardown),
      cmocka_unit_test_setup_teardown(test_logger_missing_binary_fails_at_spawn, setup, teardown),
  };
  signal(SIGPIPE, SIG_IGN);
  return cmocka_run_group_tests(tests, NULL, NULL);
}
