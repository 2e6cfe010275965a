// SPDX-License-Identifier: Apache-2.0
// Tests of sdk/src/log.c: logrus text format, quoting, levels, truncation.
#include <errno.h>
#include <regex.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <cshim/log.h>

static char last[4096];
static int n_lines;

static void
capture(void *data, int level, const char *line, size_t len)
{
  (void)data;
  (void)level;
  memcpy(last, line, len);
  last[len] = '\0';
  n_lines++;
}

static void
assert_matches(const char *s, const char *re)
{
  regex_t r;
  assert_int_equal(regcomp(&r, re, REG_EXTENDED | REG_NOSUB), 0);
  if (regexec(&r, s, 0, NULL, 0) != 0)
    fail_msg("`%s` does not match `%s`", s, re);
  regfree(&r);
}

static void
test_log_format_is_logrus_text(void **state)
{
  char buf[512];
  (void)state;
  cshim_log_format(buf, sizeof buf, CSHIM_LOG_INFO, "hello world", "plugin=task");
  assert_matches(buf, "^time=\"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{9}Z\" "
                      "level=info msg=\"hello world\" plugin=task\n$");
}

static void
test_log_plain_message_is_not_quoted(void **state)
{
  char buf[512];
  (void)state;
  cshim_log_format(buf, sizeof buf, CSHIM_LOG_WARN, "started", NULL);
  assert_matches(buf, " level=warning msg=started\n$");
}

static void
test_log_escapes_quotes_and_control_bytes(void **state)
{
  char buf[512];
  (void)state;
  cshim_log_format(buf, sizeof buf, CSHIM_LOG_ERROR, "a \"b\"\\\n\x01", NULL);
  assert_non_null(strstr(buf, "msg=\"a \\\"b\\\"\\\\\\n\\x01\"\n"));
}

static void
test_log_truncated_line_still_ends_in_newline(void **state)
{
  char buf[64];
  size_t n;
  (void)state;
  n = cshim_log_format(buf, sizeof buf, CSHIM_LOG_INFO,
                       "a very long message that does not fit in the buffer at all", NULL);
  assert_int_equal(n, strlen(buf));
  assert_true(n < sizeof buf);
  assert_int_equal(buf[n - 1], '\n');
}

static void
test_log_filters_below_level(void **state)
{
  cshim_logger_t l = {
      .struct_size = sizeof l, .write = capture, .level = CSHIM_LOG_INFO, .fields = "plugin=x"};
  (void)state;
  n_lines = 0;
  cshim_log(&l, CSHIM_LOG_DEBUG, "hidden %d", 1);
  assert_int_equal(n_lines, 0);
  cshim_log(&l, CSHIM_LOG_ERROR, "shown %d", 2);
  assert_int_equal(n_lines, 1);
  assert_matches(last, "level=error msg=\"shown 2\" plugin=x\n$");
  cshim_log(NULL, CSHIM_LOG_ERROR, "no logger");
  assert_int_equal(n_lines, 1);
}

/* The error is logged once, with its context, and released; a NULL logger still releases it. */
static void
test_log_error_log_release_logs_context_and_message_then_releases(void **state)
{
  cshim_logger_t l = {.struct_size = sizeof l, .write = capture, .level = CSHIM_LOG_INFO};
  cshim_error_t err = NULL;
  (void)state;
  n_lines = 0;
  cshim_error_make(&err, ENOENT, "no such `%s`", "thing");
  cshim_error_log_release(&err, &l, CSHIM_LOG_WARN, "clean up `%s`", "c1");
  assert_null(err);
  assert_int_equal(n_lines, 1);
  assert_matches(last, "level=warning msg=\"clean up `c1`: no such `thing`\"\n$");
  cshim_error_log_release(&err, &l, CSHIM_LOG_ERROR, "publish %s", "/tasks/exit");
  assert_int_equal(n_lines, 2);
  assert_matches(last, "level=error msg=\"publish /tasks/exit: unknown error\"\n$");
  cshim_error_make(&err, EIO, "lost");
  cshim_error_log_release(&err, NULL, CSHIM_LOG_ERROR, "nowhere");
  assert_null(err);
  assert_int_equal(n_lines, 2);
}

static void
test_log_level_names(void **state)
{
  (void)state;
  assert_string_equal(cshim_log_level_name(CSHIM_LOG_TRACE), "trace");
  assert_string_equal(cshim_log_level_name(CSHIM_LOG_DEBUG), "debug");
  assert_string_equal(cshim_log_level_name(CSHIM_LOG_WARN), "warning");
  assert_string_equal(cshim_log_level_name(CSHIM_LOG_FATAL), "fatal");
}

static void
test_log_fields_append_quotes_as_logrus(void **state)
{
  char *a = cshim_log_fields_append(NULL, "id", "pod-1_x.y");
  char *b = cshim_log_fields_append(a, "namespace", "k8s.io");
  char *c = cshim_log_fields_append(b, "plugin", "a b\"c");
  char *d = cshim_log_fields_append("", "id", "");

  assert_string_equal(a, "id=pod-1_x.y");
  assert_string_equal(b, "id=pod-1_x.y namespace=k8s.io");
  assert_string_equal(c, "id=pod-1_x.y namespace=k8s.io plugin=\"a b\\\"c\"");
  assert_string_equal(d, "id=\"\"");
  free(a);
  free(b);
  free(c);
  free(d);
}

int
main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_log_format_is_logrus_text),
      cmocka_unit_test(test_log_plain_message_is_not_quoted),
      cmocka_unit_test(test_log_escapes_quotes_and_control_bytes),
      cmocka_unit_test(test_log_truncated_line_still_ends_in_newline),
      cmocka_unit_test(test_log_filters_below_level),
      cmocka_unit_test(test_log_error_log_release_logs_context_and_message_then_releases),
      cmocka_unit_test(test_log_level_names),
      cmocka_unit_test(test_log_fields_append_quotes_as_logrus),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
