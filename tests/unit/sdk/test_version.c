// SPDX-License-Identifier: Apache-2.0
// Tests of sdk/src/version.c: the version query and the checks of sized structs, and of the
// checks the SDK's headers and functions make with them (publisher, shutdown, reaper, ttrpc
// server, logger).
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <cshim/log.h>
#include <cshim/publisher.h>
#include <cshim/reaper.h>
#include <cshim/shutdown.h>
#include <cshim/spawn.h>
#include <cshim/struct_size.h>
#include <cshim/version.h>
#include <cshim/ttrpc.h>
/* Last: cmocka defines a `fail` macro that would clash with cshim_ttrpc_call_ops_t.fail. */
#include <cmocka.h>

static void
test_version_macros_and_query_agree(void **state)
{
  char text[32];
  (void)state;

  assert_int_equal(CSHIM_SDK_VERSION_MAJOR, 1);
  assert_int_equal(cshim_sdk_version(), CSHIM_SDK_VERSION_HEX);
  assert_int_equal(cshim_sdk_version() >> 16, CSHIM_SDK_VERSION_MAJOR);
  snprintf(text, sizeof text, "%d.%d.%d", CSHIM_SDK_VERSION_MAJOR, CSHIM_SDK_VERSION_MINOR,
           CSHIM_SDK_VERSION_PATCH);
  assert_string_equal(cshim_sdk_version_string(), text);
  assert_string_equal(CSHIM_SDK_VERSION_STRING, text);
}

static void
test_struct_size_check_refuses_zero_and_too_small(void **state)
{
  cshim_error_t err = NULL;
  (void)state;

  assert_int_equal(cshim_struct_size_check("thing", 0, 24, &err), -EINVAL);
  assert_string_equal(err->msg, "thing: struct_size is 0 (not set: fill it with designated "
                                "initialisers and .struct_size = sizeof the struct)");
  cshim_error_release(&err);

  assert_int_equal(cshim_struct_size_check("thing", 16, 24, &err), -EINVAL);
  assert_string_equal(err->msg, "thing: struct_size 16 is smaller than 24, its size in cshim "
                                "SDK 1.0");
  cshim_error_release(&err);

  assert_int_equal(cshim_struct_size_check("thing", 24, 24, &err), 0);
  assert_int_equal(cshim_struct_size_check("thing", 4096, 24, &err), 0);
  assert_null(err);
}

/* Version 1 of a struct, and version 2 that appended a member. */
typedef struct v1_s
{
  uint32_t struct_size;
  uint64_t a;
} v1_t;

typedef struct v2_s
{
  uint32_t struct_size;
  uint64_t a;
  uint64_t b;
} v2_t;

static void
test_copy_out_fills_only_what_the_caller_has(void **state)
{
  v2_t full = {.struct_size = sizeof full, .a = 1, .b = 2};
  struct
  {
    v1_t old;
    uint64_t guard;
  } small = {.old = {.struct_size = sizeof(v1_t)}, .guard = 0xdeadbeef};
  v2_t big = {.struct_size = sizeof big};
  v2_t unset = {.a = 99};
  (void)state;

  cshim_struct_size_copy_out(&small.old, &full, sizeof full);
  assert_int_equal(small.old.struct_size, sizeof(v1_t));
  assert_int_equal(small.old.a, 1);
  assert_int_equal(small.guard, 0xdeadbeef);

  cshim_struct_size_copy_out(&big, &full, sizeof full);
  assert_int_equal(big.a, 1);
  assert_int_equal(big.b, 2);

  cshim_struct_size_copy_out(&unset, &full, sizeof full);
  assert_int_equal(unset.struct_size, 0);
  assert_int_equal(unset.a, 99);
}

static void
test_has_member_follows_struct_size(void **state)
{
  v2_t from_v1 = {.struct_size = sizeof(v1_t)};
  v2_t from_v2 = {.struct_size = sizeof(v2_t)};
  (void)state;

  assert_true(CSHIM_HAS_MEMBER(&from_v1, v2_t, a));
  assert_false(CSHIM_HAS_MEMBER(&from_v1, v2_t, b));
  assert_true(CSHIM_HAS_MEMBER(&from_v2, v2_t, b));
}

static void
test_interface_instances_are_checked(void **state)
{
  cshim_publisher_t unset_pub = {.publish = NULL};
  cshim_publisher_t pub = {.struct_size = sizeof pub};
  cshim_shutdown_t old_sd = {.struct_size = offsetof(cshim_shutdown_t, on_done)};
  cshim_publisher_t *p = NULL;
  cshim_shutdown_t *s = NULL;
  cshim_error_t err = NULL;
  (void)state;

  assert_int_equal(cshim_publisher_from_instance(&unset_pub, &p, &err), -EINVAL);
  assert_null(p);
  assert_non_null(strstr(err->msg, "event publisher: struct_size is 0"));
  cshim_error_release(&err);
  assert_int_equal(cshim_publisher_from_instance(&pub, &p, &err), 0);
  assert_ptr_equal(p, &pub);

  assert_int_equal(cshim_shutdown_from_instance(&old_sd, &s, &err), -EINVAL);
  assert_null(s);
  assert_non_null(strstr(err->msg, "shutdown service: struct_size"));
  assert_non_null(strstr(err->msg, "its size in cshim SDK 1.0"));
  cshim_error_release(&err);
}

static int
unsized_register(cshim_ttrpc_server_t *server, const cshim_ttrpc_service_t *service,
                 cshim_error_t *err)
{
  (void)server;
  (void)service;
  (void)err;
  fail_msg("a server without struct_size must not be called");
  return 0;
}

static void
test_unsized_host_tables_are_refused(void **state)
{
  static const cshim_ttrpc_server_ops_t unsized_ops = {.register_service = unsized_register};
  static const cshim_reaper_ops_t unsized_reaper_ops = {.watch = NULL};
  cshim_ttrpc_server_t server = {.ops = &unsized_ops};
  cshim_ttrpc_service_t service = {.struct_size = sizeof service};
  cshim_reaper_t reaper = {.ops = &unsized_reaper_ops};
  char *argv[] = {"true", NULL};
  cshim_spawn_opts_t opts = {
      .path = "true", .argv = argv, .stdin_fd = -1, .stdout_fd = -1, .stderr_fd = -1};
  cshim_error_t err = NULL;
  pid_t pid = 0;
  (void)state;

  assert_int_equal(cshim_ttrpc_server_register(&server, &service, &err), -EINVAL);
  assert_non_null(strstr(err->msg, "ttrpc server: struct_size is 0"));
  cshim_error_release(&err);

  /* Refused before anything is forked. */
  assert_int_equal(cshim_spawn(&reaper, &opts, (cshim_exit_cb)1, NULL, &pid, &err), -EINVAL);
  assert_string_equal(err->msg, "spawn `true`: reaper: struct_size is 0 (not set: fill it with "
                                "designated initialisers and .struct_size = sizeof the struct)");
  assert_int_equal(pid, 0);
  cshim_error_release(&err);
}

static int n_written;

static void
count_write(void *data, int level, const char *line, size_t len)
{
  (void)data;
  (void)level;
  (void)line;
  (void)len;
  n_written++;
}

static void
test_logger_without_struct_size_writes_nothing(void **state)
{
  cshim_logger_t unsized = {.write = count_write, .level = CSHIM_LOG_INFO};
  cshim_logger_t sized = {.struct_size = sizeof sized, .write = count_write};
  (void)state;

  n_written = 0;
  cshim_log(&unsized, CSHIM_LOG_ERROR, "dropped");
  assert_int_equal(n_written, 0);
  cshim_log(&sized, CSHIM_LOG_ERROR, "written");
  assert_int_equal(n_written, 1);
}

int
main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_version_macros_and_query_agree),
      cmocka_unit_test(test_struct_size_check_refuses_zero_and_too_small),
      cmocka_unit_test(test_copy_out_fills_only_what_the_caller_has),
      cmocka_unit_test(test_has_member_follows_struct_size),
      cmocka_unit_test(test_interface_instances_are_checked),
      cmocka_unit_test(test_unsized_host_tables_are_refused),
      cmocka_unit_test(test_logger_without_struct_size_writes_nothing),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
