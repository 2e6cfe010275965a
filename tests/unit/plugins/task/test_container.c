// SPDX-License-Identifier: Apache-2.0
// Tests of container.c's pure parts: identifiers, the pid-namespace rule, status names.
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cshim/util.h>

#include "container.h"
#include "process.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

static void
test_container_id_rule_matches_containerd(void **state)
{
  const char *good[] = {
      "a",
      "A9",
      "foo.bar",
      "foo_bar-baz.1",
      "0",
      "x.y.z",
      "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"};
  const char *bad[] = {
      "",     ".a",
      "a.",   "a..b",
      "a._b", "-a",
      "a-",   "a b",
      "a/b",  "../x",
      "ä",    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"};
  cshim_error_t err = NULL;

  assert_int_equal(strlen(good[6]), 76);
  assert_int_equal(strlen(bad[11]), 77);
  for (size_t i = 0; i < CSHIM_N_ELEMENTS(good); i++)
    if (task_validate_id(good[i], &err) != 0)
      fail_msg("`%s` rejected: %s", good[i], err->msg);
  for (size_t i = 0; i < CSHIM_N_ELEMENTS(bad); i++) {
    if (task_validate_id(bad[i], &err) != -EINVAL)
      fail_msg("`%s` accepted", bad[i]);
    assert_int_equal(cshim_error_grpc_code(err), CSHIM_GRPC_INVALID_ARGUMENT);
    cshim_error_release(&err);
  }
  assert_int_equal(task_validate_id(NULL, &err), -EINVAL);
  cshim_error_release(&err);
}

static void
spec_case(const char *json, bool want)
{
  char dir[] = "/tmp/cshim-task-spec-XXXXXX";
  char path[64];
  FILE *f;
  assert_non_null(mkdtemp(dir));
  snprintf(path, sizeof path, "%s/config.json", dir);
  if (json) {
    f = fopen(path, "w");
    assert_non_null(f);
    fputs(json, f);
    fclose(f);
  }
  assert_int_equal(task_spec_kill_all_on_exit(dir), want);
  unlink(path);
  rmdir(dir);
}

static void
test_container_kills_all_without_private_pid_namespace(void **state)
{
  spec_case("{\"linux\":{\"namespaces\":[{\"type\":\"mount\"},{\"type\":\"pid\"}]}}", false);
  spec_case("{\"linux\":{\"namespaces\":[{\"type\":\"pid\",\"path\":\"\"}]}}", false);
  spec_case("{\"linux\":{\"namespaces\":[{\"type\":\"pid\",\"path\":\"/proc/1/ns/pid\"}]}}", true);
  spec_case("{\"linux\":{\"namespaces\":[{\"type\":\"mount\"}]}}", true);
  spec_case("{}", true);
  spec_case("not json", true);
  spec_case(NULL, true);
}

static void
test_container_status_names_map_to_containerd(void **state)
{
  assert_int_equal(task_status_from_string("created"), CONTAINERD__V1__TYPES__STATUS__CREATED);
  assert_int_equal(task_status_from_string("running"), CONTAINERD__V1__TYPES__STATUS__RUNNING);
  assert_int_equal(task_status_from_string("stopped"), CONTAINERD__V1__TYPES__STATUS__STOPPED);
  assert_int_equal(task_status_from_string("paused"), CONTAINERD__V1__TYPES__STATUS__PAUSED);
  assert_int_equal(task_status_from_string("pausing"), CONTAINERD__V1__TYPES__STATUS__PAUSING);
  assert_int_equal(task_status_from_string("creating"), CONTAINERD__V1__TYPES__STATUS__UNKNOWN);
  assert_int_equal(task_status_from_string(NULL), CONTAINERD__V1__TYPES__STATUS__UNKNOWN);
}

int
main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_container_id_rule_matches_containerd),
      cmocka_unit_test(test_container_kills_all_without_private_pid_namespace),
      cmocka_unit_test(test_container_status_names_map_to_containerd),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
