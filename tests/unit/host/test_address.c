// SPDX-License-Identifier: Apache-2.0
// Unit tests of host/address.c: Go path cleaning, group ids, socket names, listening, address file.
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <errno.h>
#include <ftw.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cshim/util.h>

#include "address.h"

static char *
make_tmpdir(void)
{
  char tmpl[] = "/tmp/cshim-test-address-XXXXXX";
  char *d = mkdtemp(tmpl);
  assert_non_null(d);
  return cshim_xstrdup(d);
}

static int
rm_cb(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
  (void)st;
  (void)flag;
  (void)ftw;
  remove(path);
  return 0;
}

static void
rm_rf(const char *dir)
{
  nftw(dir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
}

static void
write_text(const char *dir, const char *name, const char *text)
{
  char *path;
  FILE *f;
  cshim_xasprintf(&path, "%s/%s", dir, name);
  f = fopen(path, "w");
  assert_non_null(f);
  fputs(text, f);
  fclose(f);
  free(path);
}

/* Vectors from Go's path.Clean documentation and tests. */
static void
test_address_path_clean_matches_go(void **state)
{
  static const char *const cases[][2] = {
      {"", "."},
      {"abc", "abc"},
      {"abc/def", "abc/def"},
      {"a/b/c", "a/b/c"},
      {".", "."},
      {"..", ".."},
      {"../..", "../.."},
      {"../../abc", "../../abc"},
      {"/abc", "/abc"},
      {"/", "/"},
      {"abc/", "abc"},
      {"abc/def/", "abc/def"},
      {"a/b/c/", "a/b/c"},
      {"./", "."},
      {"../", ".."},
      {"../../", "../.."},
      {"/abc/", "/abc"},
      {"abc//def//ghi", "abc/def/ghi"},
      {"//abc", "/abc"},
      {"///abc", "/abc"},
      {"//abc//", "/abc"},
      {"abc//", "abc"},
      {"abc/./def", "abc/def"},
      {"/./abc/def", "/abc/def"},
      {"abc/.", "abc"},
      {"abc/def/ghi/../jkl", "abc/def/jkl"},
      {"abc/def/../ghi/../jkl", "abc/jkl"},
      {"abc/def/..", "abc"},
      {"abc/def/../..", "."},
      {"/abc/def/../..", "/"},
      {"abc/def/../../..", ".."},
      {"/abc/def/../../..", "/"},
      {"abc/def/../../../ghi/jkl/../../../mno", "../../mno"},
      {"abc/./../def", "def"},
      {"abc//./../def", "def"},
      {"abc/../../././../def", "../../def"},
      {"/..", "/"},
      {"/../abc", "/abc"},
      {"a/..b/c", "a/..b/c"},
      {".a/b.", ".a/b."},
      {"...", "..."},
  };
  (void)state;
  for (size_t i = 0; i < CSHIM_N_ELEMENTS(cases); i++) {
    char *got = host_address_path_clean(cases[i][0]);
    if (strcmp(got, cases[i][1]) != 0)
      fail_msg("Clean(%s) = %s, want %s", cases[i][0], got, cases[i][1]);
    free(got);
  }
}

static void
test_address_path_join_matches_go(void **state)
{
  struct
  {
    const char *elems[4];
    size_t n;
    const char *want;
  } cases[] = {
      {{"a", "b", "c"}, 3, "a/b/c"},
      {{"a", "b/c"}, 2, "a/b/c"},
      {{"a/b", "c"}, 2, "a/b/c"},
      {{"", ""}, 2, ""},
      {{"a", ""}, 2, "a"},
      {{"", "b"}, 2, "b"},
      {{"/", "a"}, 2, "/a"},
      {{"/", ""}, 2, "/"},
      {{"a/", "b"}, 2, "a/b"},
      {{"a/", ""}, 2, "a"},
      {{"", "", "c"}, 3, "c"},
      {{"/run/containerd/containerd.sock", "default", "redis"},
       3,
       "/run/containerd/containerd.sock/default/redis"},
      {{"/tmp//x/./y/", "ns", "../g"}, 3, "/tmp/x/y/g"},
      {{NULL}, 0, ""},
  };
  (void)state;
  for (size_t i = 0; i < CSHIM_N_ELEMENTS(cases); i++) {
    char *got = host_address_path_join(cases[i].elems, cases[i].n);
    if (strcmp(got, cases[i].want) != 0)
      fail_msg("case %zu: Join = %s, want %s", i, got, cases[i].want);
    free(got);
  }
}

/* The example of §4.10 of the protocol notes. */
static void
test_address_socket_matches_containerd_example(void **state)
{
  char *a, *d, *custom;
  (void)state;

  a = host_address_socket(NULL, "/run/containerd/containerd.sock", "default", "redis", false);
  assert_string_equal(
      a,
      "unix:///run/containerd/s/f6b99128c07bdbd0902363ba979c22f8ef053e683a7ce24dd016a1ab17092c33");
  d = host_address_socket("", "/run/containerd/containerd.sock", "default", "redis", true);
  assert_string_equal(
      d,
      "unix:///run/containerd/s/85cbbbc9c96db79a9641bc82285af17595410e5a369bb0c244c9ca49fda8de87");
  /* The hashed string is cleaned first: these spell the same path. */
  custom = host_address_socket("/tmp/sock", "/run/containerd//containerd.sock/", "default",
                               "./redis", false);
  assert_string_equal(
      custom, "unix:///tmp/sock/f6b99128c07bdbd0902363ba979c22f8ef053e683a7ce24dd016a1ab17092c33");
  assert_string_equal(host_address_path(a),
                      "/run/containerd/s/"
                      "f6b99128c07bdbd0902363ba979c22f8ef053e683a7ce24dd016a1ab17092c33");
  assert_string_equal(host_address_path("abstract"), "abstract");
  free(a);
  free(d);
  free(custom);
}

static void
test_address_group_prefers_runc_group_then_sandbox_then_id(void **state)
{
  char *dir = make_tmpdir();
  char *g = NULL;
  cshim_error_t err = NULL;
  (void)state;

  /* no config.json: the id */
  assert_int_equal(host_address_group(dir, "task1", &g, &err), 0);
  assert_string_equal(g, "task1");
  free(g);

  write_text(dir, "config.json", "{\"ociVersion\":\"1.0.2\",\"process\":{\"args\":[\"sh\"]}}");
  assert_int_equal(host_address_group(dir, "task1", &g, &err), 0);
  assert_string_equal(g, "task1");
  free(g);

  write_text(dir, "config.json",
             "{\"annotations\":{\"io.kubernetes.cri.sandbox-id\":\"sb1\",\"x\":\"y\"}}");
  assert_int_equal(host_address_group(dir, "task1", &g, &err), 0);
  assert_string_equal(g, "sb1");
  free(g);

  write_text(dir, "config.json",
             "{\"annotations\":{\"io.kubernetes.cri.sandbox-id\":\"sb1\","
             "\"io.containerd.runc.v2.group\":\"grp\"}}");
  assert_int_equal(host_address_group(dir, "task1", &g, &err), 0);
  assert_string_equal(g, "grp");
  free(g);

  write_text(dir, "config.json", "{\"annotations\": ");
  assert_int_equal(host_address_group(dir, "task1", &g, &err), -EINVAL);
  assert_non_null(err);
  assert_non_null(strstr(err->msg, "config.json"));
  cshim_error_release(&err);

  rm_rf(dir);
  free(dir);
}

static void
test_address_listen_binds_reuses_live_and_replaces_stale(void **state)
{
  char *dir = make_tmpdir();
  char *sockdir, *address;
  int fd = -1, fd2 = -1;
  bool existing = true;
  cshim_error_t err = NULL;
  struct stat st;
  (void)state;

  cshim_xasprintf(&sockdir, "%s/a/s", dir);
  address = host_address_socket(sockdir, "/grpc.sock", "ns", "grp", false);

  assert_false(host_address_can_connect(address, 50));
  assert_int_equal(host_address_listen(address, &fd, &existing, &err), 0);
  assert_true(fd >= 0);
  assert_false(existing);
  assert_int_equal(stat(sockdir, &st), 0);
  assert_int_equal(st.st_mode & 0777, 0700);
  assert_int_equal(stat(host_address_path(address), &st), 0);
  assert_true(S_ISSOCK(st.st_mode));
  assert_int_equal(st.st_mode & 0777, 0600);
  assert_true(fcntl(fd, F_GETFD) & FD_CLOEXEC);
  assert_true(host_address_can_connect(address, 100));

  /* live: another start of the same group reuses it */
  assert_int_equal(host_address_listen(address, &fd2, &existing, &err), 0);
  assert_int_equal(fd2, -1);
  assert_true(existing);

  /* stale: the owner is gone but the file stays */
  close(fd);
  assert_false(host_address_can_connect(address, 50));
  assert_int_equal(host_address_listen(address, &fd2, &existing, &err), 0);
  assert_true(fd2 >= 0);
  assert_false(existing);
  assert_true(host_address_can_connect(address, 100));
  close(fd2);

  assert_int_equal(host_address_remove_socket(address, &err), 0);
  assert_int_equal(stat(host_address_path(address), &st), -1);
  assert_int_equal(host_address_remove_socket(address, &err), 0);
  assert_int_equal(host_address_remove_socket("abstract-name", &err), 0);

  rm_rf(dir);
  free(address);
  free(sockdir);
  free(dir);
}

static void
test_address_listen_rejects_too_long_path(void **state)
{
  char longdir[200];
  char *address;
  int fd = -1;
  bool existing = false;
  cshim_error_t err = NULL;
  (void)state;

  memset(longdir, 'x', sizeof longdir - 1);
  longdir[0] = '/';
  longdir[sizeof longdir - 1] = '\0';
  address = host_address_socket(longdir, "/grpc.sock", "ns", "grp", false);
  assert_int_equal(host_address_listen(address, &fd, &existing, &err), -ENAMETOOLONG);
  assert_int_equal(fd, -1);
  cshim_error_release(&err);
  free(address);
}

static void
test_address_file_is_written_atomically_without_newline(void **state)
{
  char *dir = make_tmpdir();
  char *path, *tmp, *got = NULL;
  char buf[256];
  cshim_error_t err = NULL;
  ssize_t n;
  int fd;
  (void)state;

  assert_int_equal(host_address_read_file(dir, &got, &err), -ENOENT);
  cshim_error_release(&err);

  assert_int_equal(host_address_write_file(dir, "unix:///run/containerd/s/abc", &err), 0);
  cshim_xasprintf(&path, "%s/address", dir);
  cshim_xasprintf(&tmp, "%s/.address", dir);
  fd = open(path, O_RDONLY);
  assert_true(fd >= 0);
  n = read(fd, buf, sizeof buf);
  close(fd);
  assert_int_equal(n, strlen("unix:///run/containerd/s/abc"));
  assert_memory_equal(buf, "unix:///run/containerd/s/abc", (size_t)n);
  assert_int_equal(access(tmp, F_OK), -1);

  /* a rewrite replaces the content entirely */
  assert_int_equal(host_address_write_file(dir, "unix:///x", &err), 0);
  assert_int_equal(host_address_read_file(dir, &got, &err), 0);
  assert_string_equal(got, "unix:///x");
  free(got);

  write_text(dir, "address", "");
  assert_int_equal(host_address_read_file(dir, &got, &err), -ENODATA);
  cshim_error_release(&err);

  rm_rf(dir);
  free(path);
  free(tmp);
  free(dir);
}

int
main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_address_path_clean_matches_go),
      cmocka_unit_test(test_address_path_join_matches_go),
      cmocka_unit_test(test_address_socket_matches_containerd_example),
      cmocka_unit_test(test_address_group_prefers_runc_group_then_sandbox_then_id),
      cmocka_unit_test(test_address_listen_binds_reuses_live_and_replaces_stale),
      cmocka_unit_test(test_address_listen_rejects_too_long_path),
      cmocka_unit_test(test_address_file_is_written_atomically_without_newline),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
