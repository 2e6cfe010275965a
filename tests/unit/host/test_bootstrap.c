// SPDX-License-Identifier: Apache-2.0
// Unit tests of host/bootstrap.c: containerd's version (asked once per binary), the announced
// task API version, and the forms of start's answer.
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include <cshim/util.h>

#include "containerd/runtime/bootstrap/v1/bootstrap.pb-c.h"

#include "bootstrap.h"

static int
rm_cb(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
  (void)st;
  (void)flag;
  (void)ftw;
  remove(path);
  return 0;
}

static int
setup(void **state)
{
  char tmpl[] = "/tmp/cshim-test-bootstrap-XXXXXX";
  assert_non_null(mkdtemp(tmpl));
  *state = cshim_xstrdup(tmpl);
  return 0;
}

static int
teardown(void **state)
{
  nftw(*state, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
  free(*state);
  return 0;
}

/* A fake containerd: prints `line` for --version and counts its runs in <dir>/runs. */
static char *
fake_containerd(const char *dir, const char *line, int status)
{
  char *path;
  FILE *f;

  cshim_xasprintf(&path, "%s/containerd", dir);
  f = fopen(path, "w");
  assert_non_null(f);
  fprintf(f,
          "#!/bin/sh\necho run >>%s/runs\n[ \"$1\" = --version ] || exit 9\necho '%s'\nexit %d\n",
          dir, line, status);
  fclose(f);
  assert_int_equal(chmod(path, 0755), 0);
  return path;
}

static int
count_runs(const char *dir)
{
  char *path, line[64];
  int n = 0;
  FILE *f;

  cshim_xasprintf(&path, "%s/runs", dir);
  f = fopen(path, "r");
  free(path);
  if (f == NULL)
    return 0;
  while (fgets(line, sizeof line, f))
    n++;
  fclose(f);
  return n;
}

static void
test_parse_version(void **state)
{
  (void)state;
  /* what Debian's builds print */
  assert_int_equal(host_bootstrap_parse_version(
                       "containerd github.com/containerd/containerd 1.6.20~ds1 1.6.20~ds1-1\n"),
                   1);
  assert_int_equal(host_bootstrap_parse_version(
                       "containerd github.com/containerd/containerd/v2 2.1.9+unknown \n"),
                   2);
  /* upstream release builds */
  assert_int_equal(host_bootstrap_parse_version(
                       "containerd containerd.io v2.3.0 0123456789abcdef0123456789abcdef01234567"),
                   2);
  assert_int_equal(host_bootstrap_parse_version("containerd x 10.0.1 r"), 10);
  assert_int_equal(host_bootstrap_parse_version("containerd"), -1);
  assert_int_equal(host_bootstrap_parse_version("containerd x"), -1);
  assert_int_equal(host_bootstrap_parse_version("containerd x dev"), -1);
  assert_int_equal(host_bootstrap_parse_version("containerd x 2"), -1);
  assert_int_equal(host_bootstrap_parse_version(""), -1);
}

static void
test_major_is_asked_once_per_binary(void **state)
{
  const char *dir = *state;
  char *bin = fake_containerd(dir, "containerd github.com/containerd/containerd/v2 2.1.9 ", 0);
  char *cache;
  cshim_error_t err = NULL;
  struct timeval tv[2] = {{1000000000, 0}, {1000000000, 0}};
  int major = 0;

  cshim_xasprintf(&cache, "%s/cache/deeper", dir);
  assert_int_equal(host_bootstrap_containerd_major(bin, cache, &major, &err), 0);
  assert_int_equal(major, 2);
  assert_int_equal(count_runs(dir), 1);
  /* the second start of the same binary reads the cache */
  major = 0;
  assert_int_equal(host_bootstrap_containerd_major(bin, cache, &major, &err), 0);
  assert_int_equal(major, 2);
  assert_int_equal(count_runs(dir), 1);

  /* an upgraded binary (another mtime) is asked again */
  free(bin);
  bin = fake_containerd(dir, "containerd github.com/containerd/containerd 1.7.24~ds1 x", 0);
  assert_int_equal(utimes(bin, tv), 0);
  assert_int_equal(host_bootstrap_containerd_major(bin, cache, &major, &err), 0);
  assert_int_equal(major, 1);
  assert_int_equal(count_runs(dir), 2);

  free(bin);
  free(cache);
}

static void
test_major_failures(void **state)
{
  const char *dir = *state;
  char *bin = fake_containerd(dir, "containerd github.com/containerd/containerd 1.7.24 x", 3);
  cshim_error_t err = NULL;
  int major = 7;

  assert_true(host_bootstrap_containerd_major(bin, dir, &major, &err) < 0);
  assert_int_equal(major, 0);
  assert_non_null(strstr(err->msg, "--version"));
  cshim_error_release(&err);
  free(bin);

  bin = fake_containerd(dir, "something else", 0);
  assert_true(host_bootstrap_containerd_major(bin, dir, &major, &err) < 0);
  assert_non_null(strstr(err->msg, "something else"));
  cshim_error_release(&err);
  free(bin);

  assert_int_equal(host_bootstrap_containerd_major("relative/containerd", dir, &major, &err),
                   -EINVAL);
  cshim_error_release(&err);
  assert_int_equal(host_bootstrap_containerd_major("/nonexistent/containerd", dir, &major, &err),
                   -ENOENT);
  cshim_error_release(&err);
}

static void
test_version_choice(void **state)
{
  (void)state;
  /* containerd 1.6/1.7, or unknown: task API v2 through the bare address */
  assert_int_equal(host_bootstrap_version(0, false, false, false), 2);
  assert_int_equal(host_bootstrap_version(1, false, false, false), 2);
  assert_int_equal(host_bootstrap_version(1, false, true, true), 2);
  /* 2.x: v3 for a new shim, and for an existing one only when it serves v3 */
  assert_int_equal(host_bootstrap_version(2, false, false, false), 3);
  assert_int_equal(host_bootstrap_version(2, false, true, true), 3);
  assert_int_equal(host_bootstrap_version(2, false, true, false), 2);
  /* BootstrapParams on stdin: containerd 2.3+ */
  assert_int_equal(host_bootstrap_version(0, true, false, false), 3);
  assert_int_equal(host_bootstrap_version(0, true, true, false), 2);
}

static void
test_answer_forms(void **state)
{
  const char *addr = "unix:///run/containerd/s/0123abcd";
  cshim_error_t err = NULL;
  uint8_t *out = NULL;
  size_t len = 0;
  json_t *j;
  json_error_t jerr;
  (void)state;

  assert_int_equal(host_bootstrap_answer(addr, 2, false, &out, &len, &err), 0);
  assert_int_equal(len, strlen(addr));
  assert_memory_equal(out, addr, len);
  free(out);
  assert_int_equal(host_bootstrap_answer(addr, 2, true, &out, &len, &err), 0);
  assert_memory_equal(out, addr, len);
  free(out);

  assert_int_equal(host_bootstrap_answer(addr, 3, false, &out, &len, &err), 0);
  j = json_loadb((const char *)out, len, 0, &jerr);
  assert_non_null(j);
  assert_int_equal(json_integer_value(json_object_get(j, "version")), 3);
  assert_string_equal(json_string_value(json_object_get(j, "address")), addr);
  assert_string_equal(json_string_value(json_object_get(j, "protocol")), "ttrpc");
  assert_int_equal(json_object_size(j), 3);
  json_decref(j);
  free(out);

  assert_int_equal(host_bootstrap_answer(addr, 3, true, &out, &len, &err), 0);
  {
    Containerd__Runtime__Bootstrap__V1__BootstrapResult *r =
        containerd__runtime__bootstrap__v1__bootstrap_result__unpack(NULL, len, out);
    assert_non_null(r);
    assert_int_equal(r->version, 3);
    assert_string_equal(r->address, addr);
    assert_string_equal(r->protocol, "ttrpc");
    containerd__runtime__bootstrap__v1__bootstrap_result__free_unpacked(r, NULL);
  }
  free(out);
}

static void
test_probe_of_nothing_is_false(void **state)
{
  char *addr;

  cshim_xasprintf(&addr, "unix://%s/none.sock", (const char *)*state);
  assert_false(host_bootstrap_probe_v3(addr, 500));
  free(addr);
}

int
main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_parse_version),
      cmocka_unit_test_setup_teardown(test_major_is_asked_once_per_binary, setup, teardown),
      cmocka_unit_test_setup_teardown(test_major_failures, setup, teardown),
      cmocka_unit_test(test_version_choice),
      cmocka_unit_test(test_answer_forms),
      cmocka_unit_test_setup_teardown(test_probe_of_nothing_is_false, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
