// SPDX-License-Identifier: Apache-2.0
// Tests of sdk/src/error.c: construction, wrapping, and the errno -> gRPC code mapping.
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>
#include <cmocka.h>

#include <cshim/error.h>

static void
test_error_make_sets_class_and_message(void **state)
{
  cshim_error_t err = NULL;
  (void)state;
  assert_int_equal(cshim_error_make(&err, ENOENT, "container `%s` not found", "c1"), -ENOENT);
  assert_non_null(err);
  assert_int_equal(err->status, -ENOENT);
  assert_string_equal(err->msg, "container `c1` not found");
  assert_int_equal(cshim_error_grpc_code(err), CSHIM_GRPC_NOT_FOUND);
  cshim_error_release(&err);
  assert_null(err);
}

static void
test_error_wrap_reads_outer_to_inner(void **state)
{
  cshim_error_t err = NULL;
  (void)state;
  cshim_error_sys(&err, EACCES, "open `%s`", "/x");
  assert_int_equal(cshim_error_wrap(&err, "load config"), -EACCES);
  assert_string_equal(err->msg, "load config: open `/x`: Permission denied");
  cshim_error_release(&err);
}

static void
test_error_from_uv_appends_uv_text(void **state)
{
  cshim_error_t err = NULL;
  (void)state;
  cshim_error_from_uv(&err, -EADDRINUSE, "bind `%s`", "/s");
  assert_string_equal(err->msg, "bind `/s`: address already in use");
  assert_int_equal(err->status, -EADDRINUSE);
  cshim_error_release(&err);
}

static void
test_error_make_code_keeps_exact_code(void **state)
{
  cshim_error_t err = NULL;
  (void)state;
  cshim_error_make_code(&err, CSHIM_GRPC_DATA_LOSS, "lost");
  assert_int_equal(cshim_error_grpc_code(err), CSHIM_GRPC_DATA_LOSS);
  cshim_error_release(&err);
  cshim_error_make_code(&err, CSHIM_GRPC_FAILED_PRECONDITION, "not started");
  assert_int_equal(err->status, -EBUSY);
  assert_int_equal(cshim_error_grpc_code(err), CSHIM_GRPC_FAILED_PRECONDITION);
  cshim_error_release(&err);
}

static void
test_error_make_replaces_previous_error(void **state)
{
  cshim_error_t err = NULL;
  (void)state;
  cshim_error_make(&err, EINVAL, "first");
  cshim_error_make(&err, EEXIST, "second");
  assert_string_equal(err->msg, "second");
  cshim_error_release(&err);
  cshim_error_release(&err); /* NULL-safe */
  cshim_error_release(NULL);
}

static void
test_error_wrap_without_error_makes_one(void **state)
{
  cshim_error_t err = NULL;
  (void)state;
  assert_int_equal(cshim_error_wrap(&err, "context"), -EIO);
  assert_string_equal(err->msg, "context");
  cshim_error_release(&err);
}

static void
test_errno_to_grpc_matches_containerd_errdefs(void **state)
{
  static const struct
  {
    int e, code;
  } v[] = {
      {0, CSHIM_GRPC_OK},
      {ENOENT, CSHIM_GRPC_NOT_FOUND},
      {-ENOENT, CSHIM_GRPC_NOT_FOUND},
      {ESRCH, CSHIM_GRPC_NOT_FOUND},
      {EEXIST, CSHIM_GRPC_ALREADY_EXISTS},
      {EINVAL, CSHIM_GRPC_INVALID_ARGUMENT},
      {ENOTSUP, CSHIM_GRPC_UNIMPLEMENTED},
      {ENOSYS, CSHIM_GRPC_UNIMPLEMENTED},
      {EBUSY, CSHIM_GRPC_FAILED_PRECONDITION},
      {ETIMEDOUT, CSHIM_GRPC_DEADLINE_EXCEEDED},
      {EPERM, CSHIM_GRPC_PERMISSION_DENIED},
      {EACCES, CSHIM_GRPC_PERMISSION_DENIED},
      {ECANCELED, CSHIM_GRPC_CANCELED},
      {EMSGSIZE, CSHIM_GRPC_RESOURCE_EXHAUSTED},
      {ECONNREFUSED, CSHIM_GRPC_UNAVAILABLE},
      {ERANGE, CSHIM_GRPC_OUT_OF_RANGE},
      {EIO, CSHIM_GRPC_UNKNOWN},
      {EXDEV, CSHIM_GRPC_UNKNOWN},
  };
  (void)state;
  for (size_t i = 0; i < sizeof v / sizeof v[0]; i++)
    assert_int_equal(cshim_errno_to_grpc(v[i].e), v[i].code);
}

static void
test_grpc_code_names(void **state)
{
  (void)state;
  assert_string_equal(cshim_grpc_code_name(5), "NotFound");
  assert_string_equal(cshim_grpc_code_name(12), "Unimplemented");
  assert_string_equal(cshim_grpc_code_name(16), "Unauthenticated");
  assert_string_equal(cshim_grpc_code_name(99), "Unknown");
  assert_string_equal(cshim_grpc_code_name(-1), "Unknown");
}

int
main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_error_make_sets_class_and_message),
      cmocka_unit_test(test_error_wrap_reads_outer_to_inner),
      cmocka_unit_test(test_error_from_uv_appends_uv_text),
      cmocka_unit_test(test_error_make_code_keeps_exact_code),
      cmocka_unit_test(test_error_make_replaces_previous_error),
      cmocka_unit_test(test_error_wrap_without_error_makes_one),
      cmocka_unit_test(test_errno_to_grpc_matches_containerd_errdefs),
      cmocka_unit_test(test_grpc_code_names),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
