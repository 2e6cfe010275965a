// SPDX-License-Identifier: Apache-2.0
// Unit tests of sdk/src/file.c: cshim_file_read_small and cshim_file_write_atomic.
#define _GNU_SOURCE
#include <errno.h>
#include <setjmp.h>
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
  cshim_autofree char *a = NULL, *b = NULL, *t = NULL;
  cshim_xasprintf(&a, "%s/a", f->dir);
  cshim_xasprintf(&b, "%s/big", f->dir);
  cshim_xasprintf(&t, "%s/.a.tmp", f->dir);
  unlink(a);
  unlink(b);
  unlink(t);
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

int
main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_write_then_read_round_trips, setup, teardown),
      cmocka_unit_test_setup_teardown(test_read_missing_is_enoent, setup, teardown),
      cmocka_unit_test_setup_teardown(test_read_larger_than_max_is_efbig, setup, teardown),
      cmocka_unit_test_setup_teardown(test_write_into_missing_dir_fails_and_names_the_temp_file,
                                      setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
