// SPDX-License-Identifier: Apache-2.0
// Unit tests of sdk/src/file.c: cshim_file_read_small and cshim_file_write_atomic.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <sys/wait.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include <cshim/error.h>
#include <cshim/file.h>
#include <cshim/util.h>

struct fixture
{
  char dir[64];
};

static int
setup(void **state)
{
  struct fixture *f = cshim_xmalloc0(sizeof *f);
  strcpy(f->dir, "/tmp/cshim-test-file-XXXXXX");
  assert_non_null(mkdtemp(f->dir));
  *state = f;
  return 0;
}

static int
teardown(void **state)
{
  struct fixture *f = *state;
  static const char *const names[] = {"a",           "big",          ".a.tmp",  "victim",
                                      "address",     "options.json", "runtime", ".options.json.tmp",
                                      ".runtime.tmp"};
  for (size_t i = 0; i < CSHIM_N_ELEMENTS(names); i++) {
    cshim_autofree char *path = NULL;
    cshim_xasprintf(&path, "%s/%s", f->dir, names[i]);
    unlink(path);
  }
  rmdir(f->dir);
  free(f);
  return 0;
}

static void
test_write_then_read_round_trips(void **state)
{
  struct fixture *f = *state;
  cshim_autofree char *path = NULL, *tmp = NULL;
  char *text = NULL;
  cshim_error_t err = NULL;
  struct stat st;
  size_t len = 0;

  cshim_xasprintf(&path, "%s/a", f->dir);
  cshim_xasprintf(&tmp, "%s/.a.tmp", f->dir);
  assert_int_equal(cshim_file_write_atomic(path, "first", 5, 0600, &err), 0);
  assert_int_equal(cshim_file_write_atomic(path, "hello\n", 6, 0600, &err), 0);
  assert_null(err);
  assert_int_equal(stat(path, &st), 0);
  assert_int_equal(st.st_mode & 0777, 0600);
  assert_int_equal(access(tmp, F_OK), -1);

  assert_int_equal(cshim_file_read_small(path, 64, &text, &len, &err), 0);
  assert_int_equal(len, 6);
  assert_string_equal(text, "hello\n");
  free(text);
}

static void
test_read_missing_is_enoent(void **state)
{
  struct fixture *f = *state;
  cshim_autofree char *path = NULL, *want = NULL;
  char *text = (char *)"x";
  cshim_error_t err = NULL;

  cshim_xasprintf(&path, "%s/missing", f->dir);
  assert_int_equal(cshim_file_read_small(path, 64, &text, NULL, &err), -ENOENT);
  assert_null(text);
  assert_non_null(err);
  cshim_xasprintf(&want, "open `%s`", path);
  assert_memory_equal(err->msg, want, strlen(want));
  cshim_error_release(&err);
}

static void
test_read_larger_than_max_is_efbig(void **state)
{
  struct fixture *f = *state;
  cshim_autofree char *path = NULL, *want = NULL;
  char big[10000];
  char *text = NULL;
  cshim_error_t err = NULL;
  size_t len = 0;

  memset(big, 'x', sizeof big);
  cshim_xasprintf(&path, "%s/big", f->dir);
  assert_int_equal(cshim_file_write_atomic(path, big, sizeof big, 0644, &err), 0);
  /* exactly max bytes: read whole, across buffer growth */
  assert_int_equal(cshim_file_read_small(path, sizeof big, &text, &len, &err), 0);
  assert_int_equal(len, sizeof big);
  assert_int_equal(strlen(text), sizeof big);
  free(text);
  text = NULL;
  assert_int_equal(cshim_file_read_small(path, sizeof big - 1, &text, &len, &err), -EFBIG);
  assert_null(text);
  cshim_xasprintf(&want, "read `%s`: larger than %zu bytes", path, sizeof big - 1);
  assert_string_equal(err->msg, want);
  cshim_error_release(&err);
}

/* A pipe read to its end: unbounded with SIZE_MAX, EFBIG past max, errors named by `what`. */
static void
test_read_fd_reads_a_pipe_to_its_end(void **state)
{
  char *text = NULL;
  cshim_error_t err = NULL;
  size_t len = 0;
  int p[2];

  (void)state;
  assert_int_equal(pipe(p), 0);
  assert_int_equal(write(p[1], "hello\n", 6), 6);
  close(p[1]);
  assert_int_equal(cshim_file_read_fd(p[0], "stdin", SIZE_MAX, &text, &len, &err), 0);
  assert_int_equal(len, 6);
  assert_string_equal(text, "hello\n");
  free(text);
  close(p[0]);

  assert_int_equal(pipe(p), 0);
  assert_int_equal(write(p[1], "12345", 5), 5);
  close(p[1]);
  assert_int_equal(cshim_file_read_fd(p[0], "the body", 4, &text, &len, &err), -EFBIG);
  assert_null(text);
  assert_string_equal(err->msg, "read the body: larger than 4 bytes");
  cshim_error_release(&err);
  close(p[0]);

  /* Not readable: "read" and the errno, with or without a name. */
  assert_int_equal(pipe(p), 0);
  assert_int_equal(cshim_file_read_fd(p[1], NULL, SIZE_MAX, &text, NULL, &err), -EBADF);
  assert_string_equal(err->msg, "read: Bad file descriptor");
  cshim_error_release(&err);
  assert_int_equal(cshim_file_read_fd(p[1], "`x`", 10, &text, NULL, &err), -EBADF);
  assert_string_equal(err->msg, "read `x`: Bad file descriptor");
  cshim_error_release(&err);
  close(p[0]);
  close(p[1]);
}

/* Whole writes across a pipe's capacity (a reader drains it); a closed reader is EPIPE, named. */
static void
test_write_fd_writes_everything(void **state)
{
  const size_t total = 200 * 1024;
  cshim_autofree char *data = cshim_xmalloc(total);
  cshim_autofree char *back = NULL;
  cshim_error_t err = NULL;
  size_t len = 0;
  int p[2], status;
  pid_t child;

  (void)state;
  for (size_t i = 0; i < total; i++)
    data[i] = (char)(i * 31);
  assert_int_equal(pipe(p), 0);
  child = fork();
  assert_true(child >= 0);
  if (child == 0) {
    close(p[0]);
    _exit(cshim_file_write_fd(p[1], data, total, "the data", &err) == 0 ? 0 : 1);
  }
  close(p[1]);
  assert_int_equal(cshim_file_read_fd(p[0], NULL, SIZE_MAX, &back, &len, &err), 0);
  close(p[0]);
  assert_int_equal(waitpid(child, &status, 0), child);
  assert_int_equal(status, 0);
  assert_int_equal(len, total);
  assert_memory_equal(back, data, total);

  assert_int_equal(pipe(p), 0);
  close(p[0]);
  signal(SIGPIPE, SIG_IGN);
  assert_int_equal(cshim_file_write_fd(p[1], "x", 1, "the data", &err), -EPIPE);
  assert_string_equal(err->msg, "write the data: Broken pipe");
  cshim_error_release(&err);
  assert_int_equal(cshim_file_write_fd(p[1], "x", 1, NULL, &err), -EPIPE);
  assert_string_equal(err->msg, "write: Broken pipe");
  cshim_error_release(&err);
  close(p[1]);
}

static void
test_hexval(void **state)
{
  static const char digits[] = "0123456789abcdefABCDEF";
  static const int values[] = {0,  1,  2,  3,  4,  5,  6,  7,  8,  9,  10,
                               11, 12, 13, 14, 15, 10, 11, 12, 13, 14, 15};

  (void)state;
  for (size_t i = 0; digits[i]; i++)
    assert_int_equal(cshim_hexval(digits[i]), values[i]);
  assert_int_equal(cshim_hexval('g'), -1);
  assert_int_equal(cshim_hexval('G'), -1);
  assert_int_equal(cshim_hexval('/'), -1);
  assert_int_equal(cshim_hexval(':'), -1);
  assert_int_equal(cshim_hexval('\0'), -1);
  assert_int_equal(cshim_hexval((char)0xe9), -1);
  assert_int_equal(cshim_hexval(-1), -1);
}

static void
test_write_into_missing_dir_fails_and_names_the_temp_file(void **state)
{
  struct fixture *f = *state;
  cshim_autofree char *path = NULL, *want = NULL;
  cshim_error_t err = NULL;

  cshim_xasprintf(&path, "%s/nodir/a", f->dir);
  assert_int_equal(cshim_file_write_atomic(path, "x", 1, 0644, &err), -ENOENT);
  cshim_xasprintf(&want, "create `%s/nodir/.a.tmp`", f->dir);
  assert_memory_equal(err->msg, want, strlen(want));
  cshim_error_release(&err);
}

/* cshim_file_write_state: the same replace, without the sync (what it leaves out cannot be seen
   from user space; what must hold is the atomic replace and the refusals). */
static void
test_write_state_replaces_and_refuses_a_symlink(void **state)
{
  struct fixture *f = *state;
  cshim_autofree char *path = NULL, *tmp = NULL, *link = NULL;
  char *text = NULL;
  cshim_error_t err = NULL;
  struct stat st;
  size_t len = 0;

  cshim_xasprintf(&path, "%s/address", f->dir);
  cshim_xasprintf(&tmp, "%s/.address.tmp", f->dir);
  cshim_xasprintf(&link, "%s/runtime", f->dir);
  assert_int_equal(cshim_file_write_state(path, "first", 5, 0644, &err), 0);
  assert_int_equal(cshim_file_write_state(path, "unix:///x", 9, 0644, &err), 0);
  assert_null(err);
  assert_int_equal(stat(path, &st), 0);
  assert_int_equal(st.st_mode & 0777, 0644);
  assert_int_equal(access(tmp, F_OK), -1);
  assert_int_equal(cshim_file_read_small(path, 64, &text, &len, &err), 0);
  assert_string_equal(text, "unix:///x");
  free(text);

  assert_int_equal(symlink(path, link), 0);
  assert_int_equal(cshim_file_write_state(link, "evil", 4, 0600, &err), -ELOOP);
  cshim_error_release(&err);
  assert_int_equal(cshim_file_read_small(path, 64, &text, &len, &err), 0);
  assert_string_equal(text, "unix:///x");
  free(text);
}

static void
test_write_refuses_a_symlinked_target(void **state)
{
  struct fixture *f = *state;
  cshim_autofree char *path = NULL, *victim = NULL, *want = NULL, *tmp = NULL;
  cshim_error_t err = NULL;
  char *text = NULL;
  char target[4096];
  ssize_t n;

  cshim_xasprintf(&victim, "%s/victim", f->dir);
  cshim_xasprintf(&path, "%s/options.json", f->dir);
  cshim_xasprintf(&tmp, "%s/.options.json.tmp", f->dir);
  assert_int_equal(cshim_file_write_atomic(victim, "precious", 8, 0600, &err), 0);
  assert_int_equal(symlink(victim, path), 0);

  assert_int_equal(cshim_file_write_atomic(path, "evil", 4, 0600, &err), -ELOOP);
  cshim_xasprintf(&want, "write `%s`: it is a symbolic link; refusing to replace it", path);
  assert_string_equal(err->msg, want);
  cshim_error_release(&err);
  /* Nothing changed: the link, its target, no temp file left. */
  n = readlink(path, target, sizeof target - 1);
  assert_true(n > 0);
  target[n] = '\0';
  assert_string_equal(target, victim);
  assert_int_equal(cshim_file_read_small(victim, 64, &text, NULL, &err), 0);
  assert_string_equal(text, "precious");
  free(text);
  assert_int_equal(access(tmp, F_OK), -1);
}

static void
test_write_refuses_a_symlinked_temp_file(void **state)
{
  struct fixture *f = *state;
  cshim_autofree char *path = NULL, *victim = NULL, *want = NULL, *tmp = NULL;
  cshim_error_t err = NULL;
  char *text = NULL;

  cshim_xasprintf(&victim, "%s/victim", f->dir);
  cshim_xasprintf(&path, "%s/options.json", f->dir);
  cshim_xasprintf(&tmp, "%s/.options.json.tmp", f->dir);
  assert_int_equal(cshim_file_write_atomic(victim, "precious", 8, 0600, &err), 0);
  /* Dangling or not, a planted temp link is never followed. */
  assert_int_equal(symlink(victim, tmp), 0);
  assert_int_equal(cshim_file_write_atomic(path, "evil", 4, 0600, &err), -ELOOP);
  cshim_xasprintf(&want, "create `%s`: it is a symbolic link; refusing to write through it", tmp);
  assert_string_equal(err->msg, want);
  cshim_error_release(&err);
  assert_int_equal(unlink(tmp), 0);
  assert_int_equal(symlink("/nonexistent/cshim-test", tmp), 0);
  assert_int_equal(cshim_file_write_atomic(path, "evil", 4, 0600, &err), -ELOOP);
  cshim_error_release(&err);
  assert_int_equal(access("/nonexistent/cshim-test", F_OK), -1);

  assert_int_equal(cshim_file_read_small(victim, 64, &text, NULL, &err), 0);
  assert_string_equal(text, "precious");
  free(text);
  assert_int_equal(access(path, F_OK), -1);
}

static void
test_write_replaces_a_stale_temp_file(void **state)
{
  struct fixture *f = *state;
  cshim_autofree char *path = NULL, *tmp = NULL;
  cshim_error_t err = NULL;
  char *text = NULL;
  int fd;

  cshim_xasprintf(&path, "%s/runtime", f->dir);
  cshim_xasprintf(&tmp, "%s/.runtime.tmp", f->dir);
  fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  assert_true(fd >= 0);
  assert_int_equal(write(fd, "half a wri", 10), 10);
  close(fd);
  assert_int_equal(cshim_file_write_atomic(path, "runc", 4, 0600, &err), 0);
  assert_int_equal(cshim_file_read_small(path, 64, &text, NULL, &err), 0);
  assert_string_equal(text, "runc");
  free(text);
  assert_int_equal(access(tmp, F_OK), -1);
}

static void
test_write_at_a_directory_fd(void **state)
{
  struct fixture *f = *state;
  cshim_autofree char *path = NULL, *want = NULL;
  cshim_error_t err = NULL;
  char *text = NULL;
  int dirfd = open(f->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

  assert_true(dirfd >= 0);
  assert_int_equal(cshim_file_write_atomic_at(dirfd, f->dir, "address", "unix:///x", 9, 0644, &err),
                   0);
  cshim_xasprintf(&path, "%s/address", f->dir);
  assert_int_equal(cshim_file_read_small(path, 64, &text, NULL, &err), 0);
  assert_string_equal(text, "unix:///x");
  free(text);
  assert_int_equal(cshim_file_write_atomic_at(dirfd, f->dir, "../escape", "x", 1, 0644, &err),
                   -EINVAL);
  cshim_xasprintf(&want, "write `%s/../escape`: not a file name", f->dir);
  assert_string_equal(err->msg, want);
  cshim_error_release(&err);
  close(dirfd);
}

int
main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_write_then_read_round_trips, setup, teardown),
      cmocka_unit_test_setup_teardown(test_write_refuses_a_symlinked_target, setup, teardown),
      cmocka_unit_test_setup_teardown(test_write_refuses_a_symlinked_temp_file, setup, teardown),
      cmocka_unit_test_setup_teardown(test_write_replaces_a_stale_temp_file, setup, teardown),
      cmocka_unit_test_setup_teardown(test_write_at_a_directory_fd, setup, teardown),
      cmocka_unit_test_setup_teardown(test_read_missing_is_enoent, setup, teardown),
      cmocka_unit_test_setup_teardown(test_read_larger_than_max_is_efbig, setup, teardown),
      cmocka_unit_test(test_read_fd_reads_a_pipe_to_its_end),
      cmocka_unit_test(test_write_fd_writes_everything),
      cmocka_unit_test(test_hexval),
      cmocka_unit_test_setup_teardown(test_write_state_replaces_and_refuses_a_symlink, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_write_into_missing_dir_fails_and_names_the_temp_file,
                                      setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
