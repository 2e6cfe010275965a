// SPDX-License-Identifier: Apache-2.0
// The console socket: a runtime's pty master arrives over SCM_RIGHTS on the loop; the socket
// and its directory go away; hang-ups, non-terminals and silence are errors.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cshim/util.h>

#include "fixture.h"
#include "console.h"

#include <cmocka.h>

struct fx
{
  task_mock_t m;
  char dir[64];
  bool called;
  int master;
  cshim_error_t err;
};

static int
setup(void **state)
{
  struct fx *f = cshim_xmalloc0(sizeof *f);
  task_mock_init(&f->m);
  snprintf(f->dir, sizeof f->dir, "/tmp/cshim-console-XXXXXX");
  assert_non_null(mkdtemp(f->dir));
  setenv("TMPDIR", f->dir, 1);
  unsetenv("XDG_RUNTIME_DIR");
  f->master = -1;
  *state = f;
  return 0;
}

static int
teardown(void **state)
{
  struct fx *f = *state;
  mock_host_run_for(&f->m.host, 10);
  task_mock_fini(&f->m);
  if (f->master >= 0)
    close(f->master);
  cshim_error_release(&f->err);
  assert_int_equal(rmdir(f->dir), 0); /* nothing left in it */
  free(f);
  return 0;
}

static void
got_cb(void *data, int master, cshim_error_t *err)
{
  struct fx *f = data;
  f->called = true;
  f->master = master;
  f->err = cshim_steal_pointer(err);
}

static bool
called(void *data)
{
  return ((struct fx *)data)->called;
}

static int
connect_to(const char *path)
{
  struct sockaddr_un addr = {.sun_family = AF_UNIX};
  int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  assert_true(s >= 0);
  snprintf(addr.sun_path, sizeof addr.sun_path, "%s", path);
  assert_int_equal(connect(s, (struct sockaddr *)&addr, sizeof addr), 0);
  return s;
}

static void
send_fd(int s, int fd, const char *name)
{
  union
  {
    char buf[CMSG_SPACE(sizeof(int))];
    struct cmsghdr align;
  } control;
  struct iovec iov = {(void *)name, strlen(name)};
  struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1};
  struct cmsghdr *cm;
  msg.msg_control = control.buf;
  msg.msg_controllen = sizeof control.buf;
  cm = CMSG_FIRSTHDR(&msg);
  cm->cmsg_level = SOL_SOCKET;
  cm->cmsg_type = SCM_RIGHTS;
  cm->cmsg_len = CMSG_LEN(sizeof(int));
  memcpy(CMSG_DATA(cm), &fd, sizeof fd);
  assert_true(sendmsg(s, &msg, 0) > 0);
}

static void
test_console_receives_the_master_and_removes_its_socket(void **state)
{
  struct fx *f = *state;
  cshim_error_t err = NULL;
  task_console_t *c = NULL;
  char dir[256];
  int pty, s;

  assert_int_equal(task_console_new(&f->m.host.loop, &f->m.host.logger, &c, &err), 0);
  assert_non_null(task_console_path(c));
  assert_int_equal(strncmp(task_console_path(c), f->dir, strlen(f->dir)), 0);
  assert_non_null(strstr(task_console_path(c), "/pty"));
  snprintf(dir, sizeof dir, "%s", task_console_path(c));
  *strrchr(dir, '/') = '\0';

  /* As runc does: connect and send before anyone waits (create has not returned yet). */
  pty = posix_openpt(O_RDWR | O_NOCTTY);
  assert_true(pty >= 0);
  s = connect_to(task_console_path(c));
  send_fd(s, pty, "/dev/pts/99");
  close(s);
  close(pty);
  mock_host_run_for(&f->m.host, 50);
  assert_int_not_equal(access(dir, F_OK), 0); /* gone once the runtime connected */

  task_console_receive(c, 5000, got_cb, f);
  assert_false(f->called); /* never from inside the call */
  assert_true(mock_host_run_until(&f->m.host, called, f, 5000));
  assert_null(f->err);
  assert_true(f->master >= 0);
  assert_true(isatty(f->master));
  task_console_close(c);
}

static void
test_console_reports_a_hang_up_and_a_non_terminal(void **state)
{
  struct fx *f = *state;
  cshim_error_t err = NULL;
  task_console_t *c = NULL;
  int p[2];

  assert_int_equal(task_console_new(&f->m.host.loop, &f->m.host.logger, &c, &err), 0);
  task_console_receive(c, 5000, got_cb, f);
  close(connect_to(task_console_path(c)));
  assert_true(mock_host_run_until(&f->m.host, called, f, 5000));
  assert_non_null(f->err);
  assert_int_equal(f->err->status, -EPROTO);
  assert_int_equal(f->master, -1);
  task_console_close(c);
  cshim_error_release(&f->err);
  f->called = false;

  assert_int_equal(task_console_new(&f->m.host.loop, &f->m.host.logger, &c, &err), 0);
  task_console_receive(c, 5000, got_cb, f);
  assert_int_equal(pipe(p), 0);
  {
    int s = connect_to(task_console_path(c));
    send_fd(s, p[0], "pipe");
    close(s);
  }
  close(p[0]);
  close(p[1]);
  assert_true(mock_host_run_until(&f->m.host, called, f, 5000));
  assert_non_null(f->err);
  assert_non_null(strstr(f->err->msg, "not a terminal"));
  task_console_close(c);
}

static void
test_console_times_out_when_the_runtime_never_connects(void **state)
{
  struct fx *f = *state;
  cshim_error_t err = NULL;
  task_console_t *c = NULL;

  assert_int_equal(task_console_new(&f->m.host.loop, &f->m.host.logger, &c, &err), 0);
  task_console_receive(c, 100, got_cb, f);
  assert_true(mock_host_run_until(&f->m.host, called, f, 5000));
  assert_non_null(f->err);
  assert_int_equal(f->err->status, -ETIMEDOUT);
  task_console_close(c);
}

static void
test_console_close_without_a_connection_cleans_up(void **state)
{
  struct fx *f = *state;
  cshim_error_t err = NULL;
  task_console_t *c = NULL;

  assert_int_equal(task_console_new(&f->m.host.loop, &f->m.host.logger, &c, &err), 0);
  task_console_receive(c, 5000, got_cb, f);
  task_console_close(c);
  mock_host_run_for(&f->m.host, 20);
  assert_false(f->called);
}

int
main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_console_receives_the_master_and_removes_its_socket,
                                      setup, teardown),
      cmocka_unit_test_setup_teardown(test_console_reports_a_hang_up_and_a_non_terminal, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_console_times_out_when_the_runtime_never_connects, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_console_close_without_a_connection_cleans_up, setup,
                                      teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
