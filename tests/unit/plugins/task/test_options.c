// SPDX-License-Identifier: Apache-2.0
// Tests of options.c: the YAML section and the options a container runs with.
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <cshim/util.h>

#include "containerd/runc/options/oci.pb-c.h"
#include "mock_ctx.h"
#include "task.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

static void
test_options_config_defaults(void **state)
{
  task_config_t cfg;
  cshim_error_t err = NULL;

  assert_int_equal(task_config_parse(NULL, &cfg, &err), 0);
  assert_string_equal(cfg.runtime, "runc");
  assert_string_equal(cfg.runtime_root, "/run/containerd/runc");
  assert_false(cfg.systemd_cgroup);
  assert_false(cfg.no_pivot_root);
  assert_false(cfg.no_new_keyring);
  assert_int_equal(cfg.command_timeout_ms, 60000);
  assert_int_equal(cfg.max_runtime_processes, task_default_max_runtime_processes());
  assert_true(cfg.max_runtime_processes >= 8);
  task_config_clear(&cfg);
}

static void
test_options_config_values(void **state)
{
  mock_ctx_t m;
  task_config_t cfg;
  cshim_error_t err = NULL;

  mock_ctx_init(&m);
  mock_ctx_set_config(&m, "runtime", "/usr/bin/crun");
  mock_ctx_set_config(&m, "runtime_root", "/run/crun");
  mock_ctx_set_config(&m, "systemd_cgroup", "true");
  mock_ctx_set_config(&m, "no_pivot_root", "true");
  mock_ctx_set_config(&m, "no_new_keyring", "true");
  mock_ctx_set_config(&m, "command_timeout", "2m");
  mock_ctx_set_config(&m, "max_runtime_processes", "3");
  if (task_config_parse(&m.config, &cfg, &err) < 0)
    fail_msg("%s", err->msg);
  assert_string_equal(cfg.runtime, "/usr/bin/crun");
  assert_string_equal(cfg.runtime_root, "/run/crun");
  assert_true(cfg.systemd_cgroup && cfg.no_pivot_root && cfg.no_new_keyring);
  assert_int_equal(cfg.command_timeout_ms, 120000);
  assert_int_equal(cfg.max_runtime_processes, 3);
  task_config_clear(&cfg);
  mock_ctx_fini(&m);
}

static void
expect_config_error(const char *key, const char *value, const char *needle)
{
  mock_ctx_t m;
  task_config_t cfg;
  cshim_error_t err = NULL;

  mock_ctx_init(&m);
  mock_ctx_set_config(&m, key, value);
  assert_true(task_config_parse(&m.config, &cfg, &err) < 0);
  assert_non_null(err);
  if (strstr(err->msg, needle) == NULL)
    fail_msg("`%s` does not mention `%s`", err->msg, needle);
  cshim_error_release(&err);
  mock_ctx_fini(&m);
}

static void
test_options_config_rejects_unknown_keys_and_bad_values(void **state)
{
  expect_config_error("runtim", "runc", "runtim");
  expect_config_error("systemd_cgroup", "maybe", "systemd_cgroup");
  expect_config_error("command_timeout", "soon", "command_timeout");
  expect_config_error("runtime_root", "relative/root", "not absolute");
  expect_config_error("max_runtime_processes", "0", "`max_runtime_processes` must be from 1 to");
  expect_config_error("max_runtime_processes", "100000", "(found 100000)");
  expect_config_error("max_runtime_processes", "many", "max_runtime_processes");
}

static void
test_options_resolve_overrides_config(void **state)
{
  task_config_t cfg;
  cshim_runc_options_t out;
  cshim_error_t err = NULL;
  Containerd__Runc__V1__Options o = CONTAINERD__RUNC__V1__OPTIONS__INIT;
  Google__Protobuf__Any any = GOOGLE__PROTOBUF__ANY__INIT;
  uint8_t buf[256];

  assert_int_equal(task_config_parse(NULL, &cfg, &err), 0);
  cfg.no_new_keyring = true;

  /* No options: the config. */
  assert_int_equal(task_options_resolve(&cfg, NULL, &out, &err), 0);
  assert_string_equal(out.binary_name, "runc");
  assert_string_equal(out.root, "/run/containerd/runc");
  assert_true(out.no_new_keyring);
  assert_false(out.systemd_cgroup);
  cshim_runc_options_clear(&out);

  /* Another options type (runtimeoptions, handled by the host): the config. */
  any.type_url = "runtimeoptions.v1.Options";
  assert_int_equal(task_options_resolve(&cfg, &any, &out, &err), 0);
  assert_string_equal(out.binary_name, "runc");
  cshim_runc_options_clear(&out);

  o.binary_name = "crun";
  o.systemd_cgroup = 1;
  o.io_uid = 7;
  any.type_url = "containerd.runc.v1.Options";
  any.value.len = containerd__runc__v1__options__pack(&o, buf);
  any.value.data = buf;
  assert_int_equal(task_options_resolve(&cfg, &any, &out, &err), 0);
  assert_string_equal(out.binary_name, "crun");
  assert_string_equal(out.root, "/run/containerd/runc");
  assert_true(out.systemd_cgroup);
  assert_true(out.no_new_keyring);
  assert_int_equal(out.io_uid, 7);
  cshim_runc_options_clear(&out);

  any.value.data = (uint8_t *)"\xff\xff";
  any.value.len = 2;
  assert_int_equal(task_options_resolve(&cfg, &any, &out, &err), -EINVAL);
  cshim_error_release(&err);
  task_config_clear(&cfg);
}

int
main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_options_config_defaults),
      cmocka_unit_test(test_options_config_values),
      cmocka_unit_test(test_options_config_rejects_unknown_keys_and_bad_values),
      cmocka_unit_test(test_options_resolve_overrides_config),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
