// SPDX-License-Identifier: Apache-2.0
// Tests of host/flags.c: Go flag-package parsing as containerd builds the shim's command line.
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>
#include <cmocka.h>

#include "flags.h"

#define ARGV(...)                                                                                  \
  (char *[])                                                                                       \
  {                                                                                                \
    "shim", __VA_ARGS__, NULL                                                                      \
  }
#define ARGC(...) ((int)(sizeof((char *[]){"shim", __VA_ARGS__}) / sizeof(char *)))
#define PARSE(flags, err, ...) host_flags_parse(ARGC(__VA_ARGS__), ARGV(__VA_ARGS__), flags, err)

static void
test_flags_parses_containerd_start_command_line(void **state)
{
  host_flags_t f;
  cshim_error_t err = NULL;
  (void)state;
  assert_int_equal(PARSE(&f, &err, "-namespace", "k8s.io", "-address",
                         "/run/containerd/containerd.sock", "-publish-binary",
                         "/usr/bin/containerd", "-id", "abc", "-debug", "start"),
                   0);
  assert_string_equal(f.namespace_, "k8s.io");
  assert_string_equal(f.address, "/run/containerd/containerd.sock");
  assert_string_equal(f.publish_binary, "/usr/bin/containerd");
  assert_string_equal(f.id, "abc");
  assert_true(f.debug);
  assert_string_equal(f.action, "start");
}

static void
test_flags_accepts_equals_and_double_dash_forms(void **state)
{
  host_flags_t f;
  cshim_error_t err = NULL;
  (void)state;
  assert_int_equal(
      PARSE(&f, &err, "--namespace=ns", "-id=x", "--bundle", "/b", "-debug=false", "delete"), 0);
  assert_string_equal(f.namespace_, "ns");
  assert_string_equal(f.id, "x");
  assert_string_equal(f.bundle, "/b");
  assert_false(f.debug);
  assert_string_equal(f.action, "delete");
}

static void
test_flags_daemon_mode_has_no_action(void **state)
{
  host_flags_t f;
  cshim_error_t err = NULL;
  (void)state;
  assert_int_equal(PARSE(&f, &err, "-namespace", "ns", "-id", "x", "-socket", "/s"), 0);
  assert_null(f.action);
  assert_string_equal(f.socket, "/s");
}

static void
test_flags_value_may_start_with_dash(void **state)
{
  host_flags_t f;
  cshim_error_t err = NULL;
  (void)state;
  assert_int_equal(PARSE(&f, &err, "-id", "-weird"), 0);
  assert_string_equal(f.id, "-weird");
}

static void
test_flags_stop_at_first_non_flag_and_double_dash(void **state)
{
  host_flags_t f;
  cshim_error_t err = NULL;
  (void)state;
  assert_int_equal(PARSE(&f, &err, "-debug", "start", "-id", "late"), 0);
  assert_string_equal(f.action, "start");
  assert_null(f.id);
  assert_int_equal(PARSE(&f, &err, "--", "-id"), 0);
  assert_string_equal(f.action, "-id");
}

static void
test_flags_version_and_info(void **state)
{
  host_flags_t f;
  cshim_error_t err = NULL;
  (void)state;
  assert_int_equal(PARSE(&f, &err, "-v"), 0);
  assert_true(f.version);
  assert_int_equal(PARSE(&f, &err, "-version"), 0);
  assert_true(f.version);
  assert_int_equal(PARSE(&f, &err, "-info"), 0);
  assert_true(f.info);
  assert_int_equal(PARSE(&f, &err, "-h"), 0);
  assert_true(f.help);
}

static void
test_flags_rejects_like_go(void **state)
{
  host_flags_t f;
  cshim_error_t err = NULL;
  (void)state;
  assert_int_equal(PARSE(&f, &err, "-nope"), -EINVAL);
  assert_string_equal(err->msg, "flag provided but not defined: -nope");
  cshim_error_release(&err);
  assert_int_equal(PARSE(&f, &err, "-id"), -EINVAL);
  assert_string_equal(err->msg, "flag needs an argument: -id");
  cshim_error_release(&err);
  assert_int_equal(PARSE(&f, &err, "-debug=maybe"), -EINVAL);
  assert_string_equal(err->msg, "invalid boolean value \"maybe\" for -debug: parse error");
  cshim_error_release(&err);
  assert_int_equal(PARSE(&f, &err, "---id"), -EINVAL);
  assert_string_equal(err->msg, "bad flag syntax: ---id");
  cshim_error_release(&err);
  assert_int_equal(PARSE(&f, &err, "-=x"), -EINVAL);
  cshim_error_release(&err);
}

static void
test_flags_go_bool_spellings(void **state)
{
  static const char *const yes[] = {"-debug=1",    "-debug=t",    "-debug=T",
                                    "-debug=TRUE", "-debug=true", "-debug=True"};
  static const char *const no[] = {"-debug=0",     "-debug=f",     "-debug=F",
                                   "-debug=FALSE", "-debug=false", "-debug=False"};
  host_flags_t f;
  cshim_error_t err = NULL;
  (void)state;
  for (size_t i = 0; i < 6; i++) {
    char *argv[] = {"shim", (char *)yes[i], NULL};
    assert_int_equal(host_flags_parse(2, argv, &f, &err), 0);
    assert_true(f.debug);
    argv[1] = (char *)no[i];
    assert_int_equal(host_flags_parse(2, argv, &f, &err), 0);
    assert_false(f.debug);
  }
}

int
main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_flags_parses_containerd_start_command_line),
      cmocka_unit_test(test_flags_accepts_equals_and_double_dash_forms),
      cmocka_unit_test(test_flags_daemon_mode_has_no_action),
      cmocka_unit_test(test_flags_value_may_start_with_dash),
      cmocka_unit_test(test_flags_stop_at_first_non_flag_and_double_dash),
      cmocka_unit_test(test_flags_version_and_info),
      cmocka_unit_test(test_flags_rejects_like_go),
      cmocka_unit_test(test_flags_go_bool_spellings),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
