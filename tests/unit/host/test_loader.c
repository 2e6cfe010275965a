// SPDX-License-Identifier: Apache-2.0
// Tests of host/loader.c: every rejection reason has a fixture module and an exact message.
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Before cmocka.h: its fail() macro would rewrite the ttrpc call ops' fail member. */
#include <cshim/util.h>

#include "loader.h"

#include <cmocka.h>

#ifndef CSHIM_FIXTURE_PLUGIN_DIR
#error CSHIM_FIXTURE_PLUGIN_DIR must name the directory of the fixture modules
#endif

static char *
fixture_path(const char *file)
{
  char *path;
  cshim_xasprintf(&path, "%s/%s", CSHIM_FIXTURE_PLUGIN_DIR, file);
  return path;
}

/* Open `file` from the fixture directory, expect failure with errno and exactly
   "plugin `<path>`: <reason>". */
static void
assert_rejected(const char *file, int expected_errno, const char *reason)
{
  cshim_autofree char *path = fixture_path(file);
  cshim_autofree char *expected = NULL;
  host_module_t *module = NULL;
  cshim_error_t err = NULL;
  int ret;

  cshim_xasprintf(&expected, "plugin `%s`: %s", path, reason);
  ret = host_loader_open(path, &module, &err);
  assert_int_equal(ret, -expected_errno);
  assert_null(module);
  assert_non_null(err);
  assert_int_equal(err->status, -expected_errno);
  assert_string_equal(err->msg, expected);
  cshim_error_release(&err);
}

static void
test_loader_opens_good_module(void **state)
{
  cshim_autofree char *path = fixture_path("fx_task.so");
  host_module_t *module = NULL;
  cshim_error_t err = NULL;
  (void)state;

  assert_int_equal(host_loader_open(path, &module, &err), 0);
  assert_null(err);
  assert_non_null(module);
  assert_string_equal(module->path, path);
  assert_string_equal(module->uri, "io.containerd.ttrpc.v1.task");
  assert_string_equal(module->desc->type, "io.containerd.ttrpc.v1");
  assert_string_equal(module->desc->id, "task");
  assert_int_equal(module->desc->abi_version, CSHIM_PLUGIN_ABI_VERSION);
  assert_int_equal(module->n_requires, 2);
  assert_string_equal(module->desc->requires[0], "io.containerd.event.v1");
  assert_string_equal(module->desc->requires[1], "io.containerd.internal.v1");
  assert_non_null(module->desc->init);
  assert_non_null(module->desc->close);
  host_loader_close(module);
}

static void
test_loader_accepts_module_without_requires(void **state)
{
  cshim_autofree char *path = fixture_path("fx_shutdown.so");
  host_module_t *module = NULL;
  cshim_error_t err = NULL;
  (void)state;

  assert_int_equal(host_loader_open(path, &module, &err), 0);
  assert_int_equal(module->n_requires, 0);
  assert_null(module->desc->requires);
  host_loader_close(module);
}

static void
test_loader_accepts_requires_all(void **state)
{
  cshim_autofree char *path = fixture_path("fx_debug.so");
  host_module_t *module = NULL;
  cshim_error_t err = NULL;
  (void)state;

  assert_int_equal(host_loader_open(path, &module, &err), 0);
  assert_int_equal(module->n_requires, 1);
  assert_string_equal(module->desc->requires[0], "*");
  host_loader_close(module);
}

static void
test_loader_close_accepts_null(void **state)
{
  (void)state;
  host_loader_close(NULL);
}

static void
test_loader_rejects_relative_path(void **state)
{
  host_module_t *module = NULL;
  cshim_error_t err = NULL;
  (void)state;

  assert_int_equal(host_loader_open("fx_task.so", &module, &err), -EINVAL);
  assert_string_equal(err->msg, "plugin `fx_task.so`: path is not absolute");
  cshim_error_release(&err);
  assert_int_equal(host_loader_open("./plugins/fx_task.so", &module, &err), -EINVAL);
  assert_string_equal(err->msg, "plugin `./plugins/fx_task.so`: path is not absolute");
  cshim_error_release(&err);
  assert_null(module);
}

static void
test_loader_rejects_missing_file_with_dlerror(void **state)
{
  host_module_t *module = NULL;
  cshim_error_t err = NULL;
  const char *prefix = "plugin `/nonexistent/cshim/x.so`: cannot load: ";
  (void)state;

  assert_int_equal(host_loader_open("/nonexistent/cshim/x.so", &module, &err), -ENOEXEC);
  assert_null(module);
  assert_true(strncmp(err->msg, prefix, strlen(prefix)) == 0);
  assert_non_null(strstr(err->msg + strlen(prefix), "No such file or directory"));
  cshim_error_release(&err);
}

static void
test_loader_rejects_garbage_file_with_dlerror(void **state)
{
  cshim_autofree char *path = fixture_path("garbage.so");
  cshim_autofree char *prefix = NULL;
  host_module_t *module = NULL;
  cshim_error_t err = NULL;
  (void)state;

  cshim_xasprintf(&prefix, "plugin `%s`: cannot load: ", path);
  assert_int_equal(host_loader_open(path, &module, &err), -ENOEXEC);
  assert_null(module);
  assert_true(strncmp(err->msg, prefix, strlen(prefix)) == 0);
  /* glibc's own words for a file that is not ELF. */
  assert_non_null(strstr(err->msg + strlen(prefix), "invalid ELF header"));
  cshim_error_release(&err);
}

static void
test_loader_rejects_module_without_entry_point(void **state)
{
  (void)state;
  assert_rejected("reject_no_entry.so", ENOEXEC, "no entry point `cshim_plugin_entry`");
}

static void
test_loader_rejects_null_descriptor(void **state)
{
  (void)state;
  assert_rejected("reject_null_descriptor.so", EINVAL, "entry point returned no descriptor");
}

static void
test_loader_rejects_abi_mismatch_naming_both_versions(void **state)
{
  cshim_autofree char *reason = NULL;
  (void)state;

  cshim_xasprintf(&reason, "ABI version 7, host supports %u", CSHIM_PLUGIN_ABI_VERSION);
  assert_rejected("reject_abi.so", EINVAL, reason);
}

static void
test_loader_rejects_descriptor_too_small(void **state)
{
  char reason[128];
  (void)state;

  snprintf(reason, sizeof reason, "descriptor size %zu, host needs at least %zu",
           offsetof(cshim_plugin_t, close),
           offsetof(cshim_plugin_t, close) + sizeof(void (*)(void)));
  assert_rejected("reject_struct_size.so", EINVAL, reason);
}

static void
test_loader_rejects_empty_type(void **state)
{
  (void)state;
  assert_rejected("reject_empty_type.so", EINVAL, "no type");
}

static void
test_loader_rejects_type_with_slash(void **state)
{
  (void)state;
  assert_rejected("reject_bad_type.so", EINVAL,
                  "invalid type `io.containerd/ttrpc.v1`: byte 0x2f at offset 13 is not allowed "
                  "(no '/', whitespace or control characters)");
}

static void
test_loader_rejects_empty_id(void **state)
{
  (void)state;
  assert_rejected("reject_empty_id.so", EINVAL, "no id");
}

static void
test_loader_rejects_id_with_space(void **state)
{
  (void)state;
  assert_rejected("reject_bad_id.so", EINVAL,
                  "invalid id `task one`: byte 0x20 at offset 4 is not allowed (no '/', "
                  "whitespace or control characters)");
}

static void
test_loader_rejects_overlong_id(void **state)
{
  (void)state;
  assert_rejected("reject_long_id.so", EINVAL, "id longer than 255 bytes");
}

static void
test_loader_rejects_missing_init(void **state)
{
  (void)state;
  assert_rejected("reject_no_init.so", EINVAL, "no init function");
}

static void
test_loader_rejects_missing_close(void **state)
{
  (void)state;
  assert_rejected("reject_no_close.so", EINVAL, "no close function");
}

static void
test_loader_rejects_requires_all_combined(void **state)
{
  (void)state;
  assert_rejected("reject_star_combined.so", EINVAL, "requires: `*` combined with other types");
}

static void
test_loader_rejects_empty_required_type(void **state)
{
  (void)state;
  assert_rejected("reject_empty_require.so", EINVAL, "requires: empty type at index 1");
}

static void
test_loader_rejects_unprintable_required_type(void **state)
{
  (void)state;
  assert_rejected("reject_bad_require.so", EINVAL,
                  "invalid required type `io.containerd.event.v1\\x0a`: byte 0x0a at offset 22 is "
                  "not allowed (no '/', whitespace or control characters)");
}

static void
test_loader_rejects_duplicate_required_type(void **state)
{
  (void)state;
  assert_rejected("reject_dup_require.so", EINVAL,
                  "requires: type `io.containerd.event.v1` listed twice");
}

static void
test_loader_rejects_requiring_own_type(void **state)
{
  (void)state;
  assert_rejected("reject_own_type.so", EINVAL, "requires its own type `io.cshim.test.reject`");
}

static void
test_loader_rejects_too_many_required_types(void **state)
{
  (void)state;
  assert_rejected("reject_too_many_requires.so", EINVAL, "requires more than 64 types");
}

int
main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_loader_opens_good_module),
      cmocka_unit_test(test_loader_accepts_module_without_requires),
      cmocka_unit_test(test_loader_accepts_requires_all),
      cmocka_unit_test(test_loader_close_accepts_null),
      cmocka_unit_test(test_loader_rejects_relative_path),
      cmocka_unit_test(test_loader_rejects_missing_file_with_dlerror),
      cmocka_unit_test(test_loader_rejects_garbage_file_with_dlerror),
      cmocka_unit_test(test_loader_rejects_module_without_entry_point),
      cmocka_unit_test(test_loader_rejects_null_descriptor),
      cmocka_unit_test(test_loader_rejects_abi_mismatch_naming_both_versions),
      cmocka_unit_test(test_loader_rejects_descriptor_too_small),
      cmocka_unit_test(test_loader_rejects_empty_type),
      cmocka_unit_test(test_loader_rejects_type_with_slash),
      cmocka_unit_test(test_loader_rejects_empty_id),
      cmocka_unit_test(test_loader_rejects_id_with_space),
      cmocka_unit_test(test_loader_rejects_overlong_id),
      cmocka_unit_test(test_loader_rejects_missing_init),
      cmocka_unit_test(test_loader_rejects_missing_close),
      cmocka_unit_test(test_loader_rejects_requires_all_combined),
      cmocka_unit_test(test_loader_rejects_empty_required_type),
      cmocka_unit_test(test_loader_rejects_unprintable_required_type),
      cmocka_unit_test(test_loader_rejects_duplicate_required_type),
      cmocka_unit_test(test_loader_rejects_requiring_own_type),
      cmocka_unit_test(test_loader_rejects_too_many_required_types),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
