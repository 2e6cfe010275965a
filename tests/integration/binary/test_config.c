// SPDX-License-Identifier: Apache-2.0
// Config rejections at the binary level: each one makes the daemon exit non-zero before it
// serves, with a message naming the cause, and leaves no socket behind.
#define _GNU_SOURCE
#include <ctype.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"

/* Last: cmocka defines fail(), a name <cshim/ttrpc.h> uses. */
#include <cmocka.h>

static int
setup(void **state)
{
  *state = calloc(1, sizeof(harness_t));
  return *state ? 0 : -1;
}

static int
teardown(void **state)
{
  harness_fini(*state);
  free(*state);
  return 0;
}

/* Run the daemon with yaml, expect a failure whose log contains every needle (NULL-terminated;
   "%DIR%" is replaced by the temporary directory). Returns the log (caller frees). */
static char *
expect_rejection(harness_t *h, const char *yaml, ...)
{
  va_list ap;
  const char *needle;
  char *log;
  int status;

  harness_init(h, yaml);
  status = harness_run_to_failure(h);
  log = harness_read_log(h);
  if (status <= 0)
    fprintf(stderr, "exit status %d, log:\n%s\n", status, log);
  assert_true(status > 0);
  assert_int_not_equal(access(h->sock, F_OK), 0);

  va_start(ap, yaml);
  while ((needle = va_arg(ap, const char *)) != NULL) {
    char expanded[512];
    const char *at = strstr(needle, "%DIR%");
    if (at)
      snprintf(expanded, sizeof(expanded), "%.*s%s%s", (int)(at - needle), needle, h->dir, at + 5);
    else
      snprintf(expanded, sizeof(expanded), "%s", needle);
    if (strstr(log, expanded) == NULL)
      fprintf(stderr, "`%s` is not in the log:\n%s\n", expanded, log);
    assert_non_null(strstr(log, expanded));
  }
  va_end(ap);
  return log;
}

/* Whether log has "<path>:<line>:<column>: " somewhere. */
static bool
has_location(const char *log, const char *path)
{
  size_t n = strlen(path);
  for (const char *p = strstr(log, path); p; p = strstr(p + 1, path)) {
    const char *q = p + n;
    if (*q++ != ':' || !isdigit((unsigned char)*q))
      continue;
    while (isdigit((unsigned char)*q))
      q++;
    if (*q++ != ':' || !isdigit((unsigned char)*q))
      continue;
    while (isdigit((unsigned char)*q))
      q++;
    if (*q == ':')
      return true;
  }
  return false;
}

static void
test_config_bad_yaml_names_file_line_and_column(void **state)
{
  harness_t *h = *state;
  char *log = expect_rejection(h, "modules:\n  - [unclosed\nplugins: {\n", NULL);
  assert_true(has_location(log, h->config));
  free(log);
}

static void
test_config_unknown_top_level_key_is_rejected(void **state)
{
  harness_t *h = *state;
  char *log =
      expect_rejection(h, "modules: [" CSHIM_TEST_ECHO_SO "]\nmodlues: []\n", "modlues", NULL);
  assert_true(has_location(log, h->config));
  free(log);
}

static void
test_config_missing_module_names_the_file(void **state)
{
  free(expect_rejection(*state, "modules:\n  - %DIR%/no-such-plugin.so\n",
                        "%DIR%/no-such-plugin.so", NULL));
}

static void
test_config_module_that_is_not_a_plugin_names_the_file(void **state)
{
  harness_t *h = *state;
  char path[192];
  FILE *f;

  harness_init(h, "modules:\n  - %DIR%/junk.so\n");
  snprintf(path, sizeof(path), "%s/junk.so", h->dir);
  f = fopen(path, "w");
  assert_non_null(f);
  fputs("not an ELF file\n", f);
  fclose(f);
  assert_true(harness_run_to_failure(h) > 0);
  {
    char *log = harness_read_log(h);
    assert_non_null(strstr(log, path));
    free(log);
  }
  assert_int_not_equal(access(h->sock, F_OK), 0);
}

static void
test_config_section_for_unknown_plugin_is_rejected(void **state)
{
  harness_t *h = *state;
  char *log = expect_rejection(h,
                               "modules: [" CSHIM_TEST_ECHO_SO "]\n"
                               "plugins:\n"
                               "  io.containerd.ttrpc.v1.echo: {prefix: x}\n"
                               "  io.containerd.ttrpc.v1.ehco: {}\n",
                               "config for unknown plugin `io.containerd.ttrpc.v1.ehco`", NULL);
  assert_true(has_location(log, h->config));
  /* a fatal error is logged once, as an error line with the task's id and namespace */
  {
    const char *first = strstr(log, "config for unknown plugin");
    assert_null(strstr(first + 1, "config for unknown plugin"));
    assert_non_null(strstr(log, "level=error"));
    assert_non_null(strstr(log, " id=binary namespace=integration"));
  }
  free(log);
}

static void
test_config_plugin_rejects_unknown_key_in_its_section(void **state)
{
  harness_t *h = *state;
  char *log = expect_rejection(h,
                               "modules: [" CSHIM_TEST_ECHO_SO "]\n"
                               "plugins:\n"
                               "  io.containerd.ttrpc.v1.echo:\n"
                               "    prefx: typo\n",
                               "unknown key `prefx`", NULL);
  assert_true(has_location(log, h->config));
  free(log);
}

static void
test_config_plugin_rejects_wrong_type_in_its_section(void **state)
{
  harness_t *h = *state;
  char *log = expect_rejection(h,
                               "modules: [" CSHIM_TEST_ECHO_SO "]\n"
                               "plugins:\n"
                               "  io.containerd.ttrpc.v1.echo:\n"
                               "    prefix: [a, b]\n",
                               "prefix", NULL);
  assert_true(has_location(log, h->config));
  free(log);
}

static void
test_config_without_any_service_is_rejected(void **state)
{
#ifdef CSHIM_TEST_NO_SERVICE_SO
  free(expect_rejection(*state, "modules: [" CSHIM_TEST_NO_SERVICE_SO "]\n",
                        "required that ttrpc service", NULL));
#else
  (void)state;
  skip();
#endif
}

static void
test_config_disabled_service_plugin_leaves_no_service(void **state)
{
  free(expect_rejection(*state,
                        "modules: [" CSHIM_TEST_ECHO_SO "]\n"
                        "disabled_plugins: [io.containerd.ttrpc.v1.echo]\n",
                        "required that ttrpc service", NULL));
}

static void
test_config_lookup_of_missing_plugin_fails_init(void **state)
{
  /* needs-echo requires the ttrpc type but no echo plugin is loaded. */
  free(expect_rejection(*state, "modules: [" CSHIM_TEST_NEEDS_ECHO_SO "]\n",
                        "needs-echo: look up `io.containerd.ttrpc.v1.echo`", NULL));
}

static void
test_config_missing_config_file_is_an_error(void **state)
{
  harness_t *h = *state;
  char *log;

  harness_init(h, "modules: [" CSHIM_TEST_ECHO_SO "]\n");
  assert_int_equal(unlink(h->config), 0);
  assert_true(harness_run_to_failure(h) > 0);
  log = harness_read_log(h);
  assert_non_null(strstr(log, h->config));
  free(log);
  assert_int_not_equal(access(h->sock, F_OK), 0);
}

int
main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
  const struct CMUnitTest tests[] = {
      T(test_config_bad_yaml_names_file_line_and_column),
      T(test_config_unknown_top_level_key_is_rejected),
      T(test_config_missing_module_names_the_file),
      T(test_config_module_that_is_not_a_plugin_names_the_file),
      T(test_config_section_for_unknown_plugin_is_rejected),
      T(test_config_plugin_rejects_unknown_key_in_its_section),
      T(test_config_plugin_rejects_wrong_type_in_its_section),
      T(test_config_without_any_service_is_rejected),
      T(test_config_disabled_service_plugin_leaves_no_service),
      T(test_config_lookup_of_missing_plugin_fails_init),
      T(test_config_missing_config_file_is_an_error),
  };
#undef T
  return cmocka_run_group_tests(tests, NULL, NULL);
}
