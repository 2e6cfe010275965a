// SPDX-License-Identifier: Apache-2.0
// Tests of toml.c: what containerd's encoders write is read exactly; everything else is refused.
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <cshim/toml.h>

static void
parse_ok(const char *text, cshim_toml_t *doc)
{
  cshim_error_t err = NULL;

  if (cshim_toml_parse(text, strlen(text), "t", doc, &err) < 0)
    fail_msg("`%s`: %s", text, err->msg);
}

static void
expect_error(const char *text, size_t len, const char *message)
{
  cshim_toml_t doc = {0};
  cshim_error_t err = NULL;

  if (cshim_toml_parse(text, len, "t", &doc, &err) != -EINVAL)
    fail_msg("`%s` was accepted", text);
  if (strstr(err->msg, message) == NULL)
    fail_msg("`%s`: message `%s` does not contain `%s`", text, err->msg, message);
  assert_int_equal(doc.n, 0);
  assert_null(doc.entries);
  cshim_error_release(&err);
}

/* go-toml v1 (containerd 1.7): simple values sorted first, then indented sub-tables. */
static void
test_toml_reads_go_toml_v1_output(void **state)
{
  static const char text[] = "BinaryName = \"/usr/bin/crun\"\n"
                             "IoUid = 1000\n"
                             "Neg = -9223372036854775808\n"
                             "SystemdCgroup = true\n"
                             "Tabs = \"a\\tb\\\"c\\\\d\\u001Fe\\n\"\n"
                             "\n"
                             "[Sub]\n"
                             "  Inner = false\n"
                             "  \"odd key\" = \"\\u00e9\\U0001F600\"\n";
  cshim_toml_t doc = {0};

  parse_ok(text, &doc);
  assert_int_equal(doc.n, 8);
  assert_string_equal(doc.entries[0].key, "BinaryName");
  assert_int_equal(doc.entries[0].kind, CSHIM_TOML_STRING);
  assert_string_equal(doc.entries[0].string, "/usr/bin/crun");
  assert_int_equal(doc.entries[0].depth, 1);
  assert_int_equal(doc.entries[1].kind, CSHIM_TOML_INT);
  assert_int_equal(doc.entries[1].integer, 1000);
  assert_true(doc.entries[2].integer == INT64_MIN);
  assert_int_equal(doc.entries[3].kind, CSHIM_TOML_BOOL);
  assert_true(doc.entries[3].boolean);
  assert_string_equal(doc.entries[4].string, "a\tb\"c\\d\x1f"
                                             "e\n");
  assert_int_equal(doc.entries[5].kind, CSHIM_TOML_TABLE);
  assert_string_equal(doc.entries[5].key, "Sub");
  assert_int_equal(doc.entries[5].line, 7);
  assert_string_equal(doc.entries[6].key, "Sub.Inner");
  assert_int_equal(doc.entries[6].depth, 2);
  assert_int_equal(doc.entries[6].line, 8);
  assert_int_equal(doc.entries[6].column, 3);
  assert_false(doc.entries[6].boolean);
  assert_string_equal(doc.entries[7].key, "Sub.\"odd key\"");
  assert_string_equal(doc.entries[7].string, "\xc3\xa9\xf0\x9f\x98\x80");
  cshim_toml_clear(&doc);
  assert_int_equal(doc.n, 0);
}

/* go-toml v2 (containerd 2.x): literal strings, dotted table headers, CRLF and comments. */
static void
test_toml_reads_go_toml_v2_output_and_comments(void **state)
{
  static const char text[] = "# written by hand\r\n"
                             "BinaryName = '/usr/bin/runc' # trailing\r\n"
                             "Big = 1_000_000\r\n"
                             "'quoted.key' = +7\r\n"
                             "[a.'b'.\"c\"]\r\n"
                             "d . e = 'x\"y'";
  cshim_toml_t doc = {0};

  parse_ok(text, &doc);
  assert_int_equal(doc.n, 5);
  assert_string_equal(doc.entries[0].string, "/usr/bin/runc");
  assert_int_equal(doc.entries[0].line, 2);
  assert_int_equal(doc.entries[1].integer, 1000000);
  assert_string_equal(doc.entries[2].key, "\"quoted.key\"");
  assert_int_equal(doc.entries[2].integer, 7);
  assert_string_equal(doc.entries[3].key, "a.b.c");
  assert_int_equal(doc.entries[3].depth, 3);
  assert_string_equal(doc.entries[4].key, "a.b.c.d.e");
  assert_int_equal(doc.entries[4].depth, 5);
  assert_string_equal(doc.entries[4].string, "x\"y");
  cshim_toml_clear(&doc);

  parse_ok("", &doc);
  assert_int_equal(doc.n, 0);
  parse_ok("\n  # only a comment\n\n", &doc);
  assert_int_equal(doc.n, 0);
  cshim_toml_clear(&doc);
}

static void
test_toml_refuses_unsupported_syntax_with_a_location(void **state)
{
  expect_error("A = [1, 2]\n", 11, "t:1:5: arrays are not supported");
  expect_error("A = { b = 1 }\n", 14, "t:1:5: inline tables are not supported");
  expect_error("x = 1\nA = 1.5\n", 14, "t:2:5: floating-point values are not supported");
  expect_error("A = 1e3\n", 8, "floating-point values are not supported");
  expect_error("A = inf\n", 8, "floating-point values are not supported");
  expect_error("A = -nan\n", 9, "floating-point values are not supported");
  expect_error("A = null\n", 9, "t:1:5: expected a value");
  expect_error("A = 1979-05-27\n", 15, "dates and times are not supported");
  expect_error("A = 0x10\n", 9, "hexadecimal, octal and binary integers are not supported");
  expect_error("A = \"\"\"x\"\"\"\n", 12, "multi-line strings are not supported");
  expect_error("A = '''x'''\n", 12, "multi-line strings are not supported");
  expect_error("[[a]]\n", 6, "t:1:1: arrays of tables are not supported");
}

static void
test_toml_refuses_malformed_documents(void **state)
{
  expect_error("A = \"open\n", 10, "t:1:5: unterminated string");
  expect_error("A = 'open", 9, "unterminated string");
  expect_error("A = \"\\q\"\n", 9, "unknown escape sequence");
  expect_error("A = \"\\u12\"\n", 11, "hex digits");
  expect_error("A = \"\\u0000\"\n", 13, "U+0000");
  expect_error("A = \"\\uD800\"\n", 13, "U+D800");
  expect_error("A = \"a\x01\"\n", 9, "control character 0x01 in a string");
  expect_error("A = \"\xc3\x28\"\n", 9, "invalid UTF-8 in a string");
  expect_error("A = 'x' # \x02\n", 12, "control character 0x02 in a comment");
  expect_error("A = \"a\0b\"\n", 10, "control character 0x00");
  expect_error("A = 01\n", 7, "leading zero");
  expect_error("A = 9223372036854775808\n", 24, "out of the 64-bit range");
  expect_error("A = 1__0\n", 9, "malformed value");
  expect_error("A = truex\n", 10, "expected a value");
  expect_error("A = \n", 5, "t:1:5: expected a value");
  expect_error("A 1\n", 4, "expected `=`");
  expect_error("= 1\n", 4, "t:1:1: expected a key");
  expect_error("A = 1 B = 2\n", 12, "t:1:7: expected the end of the line");
  expect_error("[a\n", 3, "expected `]`");
  expect_error("A.B.C.D.E.F.G.H.I.J.K.L.M.N.O.P.Q = 1\n", 38, "deeper than 16");
}

static void
test_toml_refuses_redefinitions(void **state)
{
  expect_error("A = 1\nA = 2\n", 12, "t:2:1: `A` is defined twice (first on line 1)");
  expect_error("A = 1\n\"A\" = 2\n", 14, "defined twice");
  expect_error("[a]\n[a]\n", 8, "t:2:1: `a` is defined twice");
  expect_error("A = 1\nA.b = 2\n", 14, "`A` is a value (line 1), not a table");
  expect_error("A = 1\n[A.b]\n", 12, "`A` is a value");
  expect_error("[t]\nx = 1\n[t.x]\n", 16, "`t.x` is defined twice");
  expect_error("a.b = 1\na = 2\n", 14, "`a` is already a table");
  expect_error("a.b = 1\n[a]\n", 12, "table `a` was already made by dotted keys");
  {
    /* a super-table opened after its sub-table is fine */
    cshim_toml_t doc = {0};
    parse_ok("[a.b]\nc = 1\n[a]\nd = 2\n", &doc);
    assert_int_equal(doc.n, 4);
    cshim_toml_clear(&doc);
  }
}

static void
test_toml_bounds_the_number_of_keys(void **state)
{
  size_t n = CSHIM_TOML_MAX_ENTRIES + 1, len = 0;
  char *text = malloc(n * 16);
  cshim_toml_t doc = {0};
  cshim_error_t err = NULL;

  for (size_t i = 0; i < n; i++)
    len += (size_t)sprintf(text + len, "k%zu = 1\n", i);
  assert_int_equal(cshim_toml_parse(text, len, "t", &doc, &err), -EINVAL);
  assert_non_null(strstr(err->msg, "more than 1024 keys"));
  cshim_error_release(&err);
  /* exactly the bound is fine */
  len = 0;
  for (size_t i = 0; i < n - 1; i++)
    len += (size_t)sprintf(text + len, "k%zu = 1\n", i);
  assert_int_equal(cshim_toml_parse(text, len, "t", &doc, &err), 0);
  assert_int_equal(doc.n, CSHIM_TOML_MAX_ENTRIES);
  cshim_toml_clear(&doc);
  free(text);
}

/* The buffer is not NUL-terminated: nothing past len is read. */
static void
test_toml_reads_only_len_bytes(void **state)
{
  static const char text[] = "A = 12345";
  cshim_toml_t doc = {0};
  cshim_error_t err = NULL;

  assert_int_equal(cshim_toml_parse(text, 6, "t", &doc, &err), 0);
  assert_int_equal(doc.entries[0].integer, 12);
  cshim_toml_clear(&doc);
  expect_error(text, 4, "expected a value");
}

int
main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_toml_reads_go_toml_v1_output),
      cmocka_unit_test(test_toml_reads_go_toml_v2_output_and_comments),
      cmocka_unit_test(test_toml_refuses_unsupported_syntax_with_a_location),
      cmocka_unit_test(test_toml_refuses_malformed_documents),
      cmocka_unit_test(test_toml_refuses_redefinitions),
      cmocka_unit_test(test_toml_bounds_the_number_of_keys),
      cmocka_unit_test(test_toml_reads_only_len_bytes),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
