// SPDX-License-Identifier: Apache-2.0
// Tests of sdk/src/unix_socket.c: paths and abstract names into sockaddr_un, and back.
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cshim/unix_socket.h>
#include <cshim/util.h>
#include <cmocka.h>

static void
test_unix_sockaddr_fills_path_and_abstract_names(void **state)
{
  struct sockaddr_un addr;
  socklen_t len = 0;
  cshim_error_t err = NULL;
  (void)state;

  assert_int_equal(cshim_unix_sockaddr("/run/x.sock", false, &addr, &len, &err), 0);
  assert_int_equal(addr.sun_family, AF_UNIX);
  assert_string_equal(addr.sun_path, "/run/x.sock");
  assert_int_equal(len, offsetof(struct sockaddr_un, sun_path) + strlen("/run/x.sock") + 1);

  assert_int_equal(cshim_unix_sockaddr("name", true, &addr, &len, &err), 0);
  assert_int_equal(addr.sun_path[0], '\0');
  assert_memory_equal(addr.sun_path + 1, "name", 4);
  assert_int_equal(len, offsetof(struct sockaddr_un, sun_path) + 1 + 4);
  assert_null(err);
}

static void
test_unix_sockaddr_refuses_empty_and_too_long(void **state)
{
  char longest[sizeof(((struct sockaddr_un *)0)->sun_path)];
  struct sockaddr_un addr;
  socklen_t len;
  cshim_error_t err = NULL;
  (void)state;

  assert_int_equal(cshim_unix_sockaddr("", false, &addr, &len, &err), -ENAMETOOLONG);
  assert_string_equal(err->msg, "socket path `` is empty or longer than 107 bytes");
  cshim_error_release(&err);

  /* 107 bytes and the NUL fit; an abstract name of 107 bytes and its leading NUL fit too. */
  memset(longest, 'a', sizeof longest - 1);
  longest[sizeof longest - 1] = '\0';
  assert_int_equal(cshim_unix_sockaddr(longest, false, &addr, &len, &err), 0);
  assert_int_equal(cshim_unix_sockaddr(longest, true, &addr, &len, &err), -ENAMETOOLONG);
  assert_non_null(strstr(err->msg, "longer than 106 bytes"));
  cshim_error_release(&err);
}

static void
test_unix_socket_path_reads_back_the_bound_path(void **state)
{
  char dir[] = "/tmp/cshim-unix-XXXXXX";
  cshim_autofree char *path = NULL;
  cshim_autofree char *got = NULL;
  cshim_autofree char *abstract_got = NULL;
  struct sockaddr_un addr;
  socklen_t len;
  cshim_error_t err = NULL;
  int fd, afd;
  (void)state;

  assert_non_null(mkdtemp(dir));
  cshim_xasprintf(&path, "%s/s.sock", dir);
  assert_int_equal(cshim_unix_sockaddr(path, false, &addr, &len, &err), 0);
  fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  assert_true(fd >= 0);
  assert_int_equal(bind(fd, (struct sockaddr *)&addr, len), 0);
  got = cshim_unix_socket_path(fd);
  assert_non_null(got);
  assert_string_equal(got, path);

  afd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  assert_int_equal(cshim_unix_sockaddr(dir + 5, true, &addr, &len, &err), 0);
  assert_int_equal(bind(afd, (struct sockaddr *)&addr, len), 0);
  abstract_got = cshim_unix_socket_path(afd);
  assert_null(abstract_got);
  assert_null(cshim_unix_socket_path(-1));

  close(fd);
  close(afd);
  unlink(path);
  rmdir(dir);
}

int
main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_unix_sockaddr_fills_path_and_abstract_names),
      cmocka_unit_test(test_unix_sockaddr_refuses_empty_and_too_long),
      cmocka_unit_test(test_unix_socket_path_reads_back_the_bound_path),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
