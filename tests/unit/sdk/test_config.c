// SPDX-License-Identifier: Apache-2.0
// Tests the config accessors plugins use: YAML 1.1 bools, strings, integers, durations, key checks.
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include <errno.h>

#include <cshim/config.h>
#include <cshim/error.h>

#define FILE_NAME "/etc/cshim/acme.yaml"

/* A one-entry map { key: value } whose value sits at 4:12 of FILE_NAME. */
struct one_entry
{
  const char *keys[1];
  cshim_config_node_t items[1];
  cshim_config_node_t map;
};

static cshim_config_node_t
scalar(const char *value, bool quoted)
{
  return (cshim_config_node_t){.kind = CSHIM_CONFIG_SCALAR,
                               .value = value,
                               .quoted = quoted,
                               .file = FILE_NAME,
                               .line = 4,
                               .column = 12};
}

static const cshim_config_node_t *
one(struct one_entry *e, const char *key, cshim_config_node_t value)
{
  e->keys[0] = key;
  e->items[0] = value;
  e->map = (cshim_config_node_t){.kind = CSHIM_CONFIG_MAP,
                                 .n = 1,
                                 .keys = e->keys,
                                 .items = e->items,
                                 .file = FILE_NAME,
                                 .line = 3,
                                 .column = 3};
  return &e->map;
}

static const cshim_config_node_t *
plain(struct one_entry *e, const char *key, const char *value)
{
  return one(e, key, scalar(value, false));
}

static const cshim_config_node_t *
quoted(struct one_entry *e, const char *key, const char *value)
{
  return one(e, key, scalar(value, true));
}

static void
assert_error(cshim_error_t *err, int ret, const char *msg)
{
  assert_int_equal(ret, -EINVAL);
  assert_non_null(*err);
  assert_int_equal((*err)->status, -EINVAL);
  assert_string_equal((*err)->msg, msg);
  cshim_error_release(err);
}

static void
test_config_get_finds_keys_only_in_maps(void **state)
{
  struct one_entry e;
  const cshim_config_node_t *map = plain(&e, "runtime", "crun");
  cshim_config_node_t s = scalar("x", false);

  assert_ptr_equal(cshim_config_get(map, "runtime"), &e.items[0]);
  assert_null(cshim_config_get(map, "other"));
  assert_null(cshim_config_get(NULL, "runtime"));
  assert_null(cshim_config_get(&s, "runtime"));
}

static void
test_config_get_string_reads_plain_and_quoted(void **state)
{
  struct one_entry e;
  cshim_error_t err = NULL;
  const char *out = NULL;

  assert_int_equal(
      cshim_config_get_string(plain(&e, "runtime", "/usr/bin/crun"), "runtime", &out, &err), 0);
  assert_string_equal(out, "/usr/bin/crun");
  /* A quoted "true" is a string like any other. */
  assert_int_equal(cshim_config_get_string(quoted(&e, "runtime", "true"), "runtime", &out, &err),
                   0);
  assert_string_equal(out, "true");
  assert_null(err);
}

static void
test_config_get_string_rejects_collections(void **state)
{
  struct one_entry e;
  cshim_error_t err = NULL;
  const char *out = "unchanged";
  cshim_config_node_t seq = {.kind = CSHIM_CONFIG_SEQ, .file = FILE_NAME, .line = 4, .column = 12};

  assert_error(&err, cshim_config_get_string(one(&e, "runtime", seq), "runtime", &out, &err),
               FILE_NAME ":4:12: `runtime` must be a string");
  assert_string_equal(out, "unchanged");
}

static void
test_config_absent_or_null_leaves_output_unchanged(void **state)
{
  static const char *const nulls[] = {"", "~", "null", "Null", "NULL"};
  struct one_entry e;
  cshim_error_t err = NULL;
  const char *s = "keep";
  bool b = true;
  uint64_t u = 7, d = 9;

  for (size_t i = 0; i < sizeof(nulls) / sizeof(nulls[0]); i++) {
    const cshim_config_node_t *map = plain(&e, "k", nulls[i]);

    assert_int_equal(cshim_config_get_string(map, "k", &s, &err), 0);
    assert_int_equal(cshim_config_get_bool(map, "k", &b, &err), 0);
    assert_int_equal(cshim_config_get_uint(map, "k", &u, &err), 0);
    assert_int_equal(cshim_config_get_duration_ms(map, "k", &d, &err), 0);
    assert_int_equal(cshim_config_get_string(map, "absent", &s, &err), 0);
    assert_int_equal(cshim_config_get_bool(NULL, "k", &b, &err), 0);
  }
  assert_null(err);
  assert_string_equal(s, "keep");
  assert_true(b);
  assert_int_equal(u, 7);
  assert_int_equal(d, 9);
}

static void
test_config_get_bool_accepts_yaml11_words(void **state)
{
  static const char *const yes[] = {"true", "True", "TRUE", "yes", "Yes", "YES", "on", "On", "ON"};
  static const char *const no[] = {"false", "False", "FALSE", "no", "No",
                                   "NO",    "off",   "Off",   "OFF"};
  struct one_entry e;
  cshim_error_t err = NULL;

  for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
    bool b = false;

    assert_int_equal(cshim_config_get_bool(plain(&e, "k", yes[i]), "k", &b, &err), 0);
    assert_true(b);
  }
  for (size_t i = 0; i < sizeof(no) / sizeof(no[0]); i++) {
    bool b = true;

    assert_int_equal(cshim_config_get_bool(plain(&e, "k", no[i]), "k", &b, &err), 0);
    assert_false(b);
  }
  assert_null(err);
}

static void
test_config_get_bool_rejects_quoted_and_other_words(void **state)
{
  static const char *const bad[] = {"1", "0", "y", "n", "tRuE", "enabled"};
  struct one_entry e;
  cshim_error_t err = NULL;
  bool b = true;

  assert_error(
      &err, cshim_config_get_bool(quoted(&e, "systemd_cgroup", "true"), "systemd_cgroup", &b, &err),
      FILE_NAME ":4:12: `systemd_cgroup` must be a boolean (true or false, unquoted)");
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
    assert_error(&err, cshim_config_get_bool(plain(&e, "k", bad[i]), "k", &b, &err),
                 FILE_NAME ":4:12: `k` must be a boolean (true or false, unquoted)");
  assert_true(b);
}

static void
test_config_get_uint_reads_up_to_max(void **state)
{
  struct one_entry e;
  cshim_error_t err = NULL;
  uint64_t u = 1;

  assert_int_equal(cshim_config_get_uint(plain(&e, "k", "0"), "k", &u, &err), 0);
  assert_int_equal(u, 0);
  assert_int_equal(cshim_config_get_uint(plain(&e, "k", "4096"), "k", &u, &err), 0);
  assert_int_equal(u, 4096);
  assert_int_equal(cshim_config_get_uint(plain(&e, "k", "18446744073709551615"), "k", &u, &err), 0);
  assert_true(u == UINT64_MAX);
  assert_null(err);
}

static void
test_config_get_uint_rejects_overflow(void **state)
{
  struct one_entry e;
  cshim_error_t err = NULL;
  uint64_t u = 3;

  assert_error(&err, cshim_config_get_uint(plain(&e, "k", "18446744073709551616"), "k", &u, &err),
               FILE_NAME ":4:12: `k` is too large: `18446744073709551616` (at most "
                         "18446744073709551615)");
  assert_error(&err,
               cshim_config_get_uint(plain(&e, "k", "99999999999999999999999"), "k", &u, &err),
               FILE_NAME ":4:12: `k` is too large: `99999999999999999999999` (at most "
                         "18446744073709551615)");
  assert_int_equal(u, 3);
}

static void
test_config_get_uint_rejects_non_integers(void **state)
{
  static const char *const bad[] = {"-1", "+1", "1.5", "0x10", "12abc", " 1", "true"};
  struct one_entry e;
  cshim_error_t err = NULL;
  uint64_t u = 3;

  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
    assert_error(&err, cshim_config_get_uint(plain(&e, "k", bad[i]), "k", &u, &err),
                 FILE_NAME ":4:12: `k` must be a non-negative integer");
  assert_error(&err, cshim_config_get_uint(quoted(&e, "k", "5"), "k", &u, &err),
               FILE_NAME ":4:12: `k` must be a non-negative integer");
  assert_int_equal(u, 3);
}

static void
test_config_get_duration_ms_reads_units(void **state)
{
  static const struct
  {
    const char *text;
    bool quoted;
    uint64_t ms;
  } cases[] = {
      {"500ms", false, 500},  {"5s", false, 5000},     {"2m", false, 120000},
      {"1h", false, 3600000}, {"1m30s", false, 90000}, {"1h2m3s4ms", false, 3723004},
      {"250", false, 250},    {"0", false, 0},         {"5s", true, 5000},
      {"0s", false, 0},       {"30s", true, 30000},
  };
  struct one_entry e;
  cshim_error_t err = NULL;

  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    uint64_t d = 12345;

    assert_int_equal(cshim_config_get_duration_ms(
                         one(&e, "command_timeout", scalar(cases[i].text, cases[i].quoted)),
                         "command_timeout", &d, &err),
                     0);
    assert_true(d == cases[i].ms);
  }
  assert_null(err);
}

static void
test_config_get_duration_ms_rejects_bad_units(void **state)
{
  struct one_entry e;
  cshim_error_t err = NULL;
  uint64_t d = 1;

  assert_error(&err, cshim_config_get_duration_ms(plain(&e, "t", "5x"), "t", &d, &err),
               FILE_NAME ":4:12: `t`: unknown unit `x` in duration `5x` (use ms, s, m or h)");
  assert_error(&err, cshim_config_get_duration_ms(plain(&e, "t", "5sec"), "t", &d, &err),
               FILE_NAME ":4:12: `t`: unknown unit `sec` in duration `5sec` (use ms, s, m or h)");
  assert_error(&err, cshim_config_get_duration_ms(plain(&e, "t", "3us"), "t", &d, &err),
               FILE_NAME ":4:12: `t`: unknown unit `us` in duration `3us` (use ms, s, m or h)");
  assert_error(&err, cshim_config_get_duration_ms(plain(&e, "t", "5 s"), "t", &d, &err),
               FILE_NAME ":4:12: `t`: unknown unit ` s` in duration `5 s` (use ms, s, m or h)");
  assert_error(&err, cshim_config_get_duration_ms(quoted(&e, "t", "500"), "t", &d, &err),
               FILE_NAME ":4:12: `t`: missing unit in duration `500` (use ms, s, m or h)");
  assert_error(&err, cshim_config_get_duration_ms(plain(&e, "t", "1m30"), "t", &d, &err),
               FILE_NAME ":4:12: `t`: missing unit in duration `1m30` (use ms, s, m or h)");
  assert_error(&err, cshim_config_get_duration_ms(plain(&e, "t", "1.5s"), "t", &d, &err),
               FILE_NAME ":4:12: `t`: duration `1.5s` must use whole numbers, such as 1500ms");
  assert_int_equal(d, 1);
}

static void
test_config_get_duration_ms_rejects_non_durations(void **state)
{
  static const char *const bad[] = {"s", "-5s", "ms5", "true"};
  struct one_entry e;
  cshim_error_t err = NULL;
  cshim_config_node_t map = {.kind = CSHIM_CONFIG_MAP, .file = FILE_NAME, .line = 4, .column = 12};
  uint64_t d = 1;

  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
    assert_error(&err, cshim_config_get_duration_ms(plain(&e, "t", bad[i]), "t", &d, &err),
                 FILE_NAME ":4:12: `t` must be a duration such as 500ms, 5s or 2m");
  assert_error(&err, cshim_config_get_duration_ms(quoted(&e, "t", ""), "t", &d, &err),
               FILE_NAME ":4:12: `t` must be a duration such as 500ms, 5s or 2m");
  assert_error(&err, cshim_config_get_duration_ms(one(&e, "t", map), "t", &d, &err),
               FILE_NAME ":4:12: `t` must be a duration such as 500ms, 5s or 2m");
  assert_int_equal(d, 1);
}

static void
test_config_get_duration_ms_rejects_overflow(void **state)
{
  struct one_entry e;
  cshim_error_t err = NULL;
  uint64_t d = 1;

  assert_error(&err,
               cshim_config_get_duration_ms(plain(&e, "t", "99999999999999999999"), "t", &d, &err),
               FILE_NAME ":4:12: `t`: duration `99999999999999999999` is too large");
  assert_error(&err,
               cshim_config_get_duration_ms(plain(&e, "t", "18446744073709551615h"), "t", &d, &err),
               FILE_NAME ":4:12: `t`: duration `18446744073709551615h` is too large");
  assert_error(
      &err, cshim_config_get_duration_ms(plain(&e, "t", "18446744073709551s1000ms"), "t", &d, &err),
      FILE_NAME ":4:12: `t`: duration `18446744073709551s1000ms` is too large");
  assert_int_equal(d, 1);
}

static void
test_config_check_keys_accepts_known_keys(void **state)
{
  static const char *const allowed[] = {"runtime", "runtime_root", NULL};
  struct one_entry e;
  cshim_error_t err = NULL;
  cshim_config_node_t null_section = scalar("", false);

  assert_int_equal(
      cshim_config_check_keys(plain(&e, "runtime_root", "/run/x"), allowed, "task", &err), 0);
  assert_int_equal(cshim_config_check_keys(NULL, allowed, "task", &err), 0);
  assert_int_equal(cshim_config_check_keys(&null_section, allowed, "task", &err), 0);
  assert_null(err);
}

static void
test_config_check_keys_names_unknown_key(void **state)
{
  static const char *const allowed[] = {"runtime", NULL};
  struct one_entry e;
  cshim_error_t err = NULL;

  assert_error(&err,
               cshim_config_check_keys(plain(&e, "runtim", "crun"), allowed,
                                       "the `io.containerd.ttrpc.v1.task` section", &err),
               FILE_NAME
               ":4:12: unknown key `runtim` in the `io.containerd.ttrpc.v1.task` section");
}

static void
test_config_check_keys_rejects_non_maps(void **state)
{
  static const char *const allowed[] = {"runtime", NULL};
  cshim_error_t err = NULL;
  cshim_config_node_t s = scalar("crun", false);
  cshim_config_node_t seq = {.kind = CSHIM_CONFIG_SEQ, .file = FILE_NAME, .line = 2, .column = 5};

  assert_error(&err, cshim_config_check_keys(&s, allowed, "the task section", &err),
               FILE_NAME ":4:12: the task section must be a map");
  assert_error(&err, cshim_config_check_keys(&seq, allowed, "the task section", &err),
               FILE_NAME ":2:5: the task section must be a map");
}

static void
test_config_is_null_only_for_plain_null_words(void **state)
{
  cshim_config_node_t n;
  cshim_config_node_t map = {.kind = CSHIM_CONFIG_MAP};

  n = scalar("~", false);
  assert_true(cshim_config_is_null(&n));
  n = scalar("null", false);
  assert_true(cshim_config_is_null(&n));
  n = scalar("", false);
  assert_true(cshim_config_is_null(&n));
  n = scalar("null", true);
  assert_false(cshim_config_is_null(&n));
  n = scalar("", true);
  assert_false(cshim_config_is_null(&n));
  n = scalar("nil", false);
  assert_false(cshim_config_is_null(&n));
  assert_false(cshim_config_is_null(&map));
  assert_true(cshim_config_is_null(NULL));
}

static void
test_config_errors_without_file_name_still_read_well(void **state)
{
  struct one_entry e;
  cshim_error_t err = NULL;
  cshim_config_node_t v = {.kind = CSHIM_CONFIG_MAP, .line = 1, .column = 2};
  const char *out;

  assert_error(&err, cshim_config_get_string(one(&e, "k", v), "k", &out, &err),
               "<config>:1:2: `k` must be a string");
}

int
main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_config_get_finds_keys_only_in_maps),
      cmocka_unit_test(test_config_get_string_reads_plain_and_quoted),
      cmocka_unit_test(test_config_get_string_rejects_collections),
      cmocka_unit_test(test_config_absent_or_null_leaves_output_unchanged),
      cmocka_unit_test(test_config_get_bool_accepts_yaml11_words),
      cmocka_unit_test(test_config_get_bool_rejects_quoted_and_other_words),
      cmocka_unit_test(test_config_get_uint_reads_up_to_max),
      cmocka_unit_test(test_config_get_uint_rejects_overflow),
      cmocka_unit_test(test_config_get_uint_rejects_non_integers),
      cmocka_unit_test(test_config_get_duration_ms_reads_units),
      cmocka_unit_test(test_config_get_duration_ms_rejects_bad_units),
      cmocka_unit_test(test_config_get_duration_ms_rejects_non_durations),
      cmocka_unit_test(test_config_get_duration_ms_rejects_overflow),
      cmocka_unit_test(test_config_check_keys_accepts_known_keys),
      cmocka_unit_test(test_config_check_keys_names_unknown_key),
      cmocka_unit_test(test_config_check_keys_rejects_non_maps),
      cmocka_unit_test(test_config_is_null_only_for_plain_null_words),
      cmocka_unit_test(test_config_errors_without_file_name_still_read_well),
  };

  return cmocka_run_group_tests(tests, NULL, NULL);
}
