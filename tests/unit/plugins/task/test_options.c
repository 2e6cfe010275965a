// SPDX-License-Identifier: Apache-2.0
// Tests of options.c: the YAML section and the options a container runs with.
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cshim/util.h>

#include "containerd/runc/options/oci.pb-c.h"
#include "fixture.h"
#include "model.h"
#include "options.h"
#include "service.h"

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
  assert_int_equal(cfg.runtime_nice, 10);
  task_config_clear(&cfg);
}

static void
test_options_config_values(void **state)
{
  task_mock_t m;
  task_config_t cfg;
  cshim_error_t err = NULL;

  task_mock_init(&m);
  mock_host_set_config(&m.host, "runtime", "/usr/bin/crun");
  mock_host_set_config(&m.host, "runtime_root", "/run/crun");
  mock_host_set_config(&m.host, "systemd_cgroup", "true");
  mock_host_set_config(&m.host, "no_pivot_root", "true");
  mock_host_set_config(&m.host, "no_new_keyring", "true");
  mock_host_set_config(&m.host, "command_timeout", "2m");
  mock_host_set_config(&m.host, "max_runtime_processes", "3");
  mock_host_set_config(&m.host, "runtime_nice", "0");
  if (task_config_parse(&m.host.config, &cfg, &err) < 0)
    fail_msg("%s", err->msg);
  assert_string_equal(cfg.runtime, "/usr/bin/crun");
  assert_string_equal(cfg.runtime_root, "/run/crun");
  assert_true(cfg.systemd_cgroup && cfg.no_pivot_root && cfg.no_new_keyring);
  assert_int_equal(cfg.command_timeout_ms, 120000);
  assert_int_equal(cfg.max_runtime_processes, 3);
  assert_int_equal(cfg.runtime_nice, 0);
  task_config_clear(&cfg);
  task_mock_fini(&m);
}

static void
expect_config_error(const char *key, const char *value, const char *needle)
{
  task_mock_t m;
  task_config_t cfg;
  cshim_error_t err = NULL;

  task_mock_init(&m);
  mock_host_set_config(&m.host, key, value);
  assert_true(task_config_parse(&m.host.config, &cfg, &err) < 0);
  assert_non_null(err);
  if (strstr(err->msg, needle) == NULL)
    fail_msg("`%s` does not mention `%s`", err->msg, needle);
  cshim_error_release(&err);
  task_mock_fini(&m);
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
  expect_config_error("runtime_nice", "20", "`runtime_nice` must be from 0 to 19 (found 20)");
  expect_config_error("runtime_nice", "-1", "runtime_nice");
}

/* A section { runtime_args: [items...] } built by hand (the YAML loader lives in the host). */
struct args_section
{
  cshim_config_node_t map, seq, items[TASK_MAX_RUNTIME_ARGS + 2];
  const char *keys[1];
};

static void
args_section(struct args_section *s, const char *const *values, size_t n)
{
  memset(s, 0, sizeof *s);
  for (size_t i = 0; i < n; i++) {
    s->items[i].kind = CSHIM_CONFIG_SCALAR;
    s->items[i].value = values[i];
    s->items[i].quoted = true;
    s->items[i].file = "t.yaml";
    s->items[i].line = (unsigned)i + 2;
  }
  s->seq.kind = CSHIM_CONFIG_SEQ;
  s->seq.n = n;
  s->seq.items = s->items;
  s->seq.file = "t.yaml";
  s->keys[0] = "runtime_args";
  s->map.kind = CSHIM_CONFIG_MAP;
  s->map.n = 1;
  s->map.keys = s->keys;
  s->map.items = &s->seq;
}

static void
expect_args_error(struct args_section *s, const char *needle)
{
  task_config_t cfg;
  cshim_error_t err = NULL;

  assert_true(task_config_parse(&s->map, &cfg, &err) < 0);
  assert_non_null(err);
  if (strstr(err->msg, needle) == NULL)
    fail_msg("`%s` does not mention `%s`", err->msg, needle);
  cshim_error_release(&err);
}

static void
test_options_config_runtime_args_kept_in_order(void **state)
{
  static const char *const v[] = {"--network=none", "--platform", "ptrace"};
  struct args_section s;
  task_config_t cfg;
  cshim_error_t err = NULL;

  args_section(&s, v, 3);
  if (task_config_parse(&s.map, &cfg, &err) < 0)
    fail_msg("%s", err->msg);
  assert_int_equal(cfg.n_runtime_args, 3);
  assert_string_equal(cfg.runtime_args[0], "--network=none");
  assert_string_equal(cfg.runtime_args[1], "--platform");
  assert_string_equal(cfg.runtime_args[2], "ptrace");
  assert_null(cfg.runtime_args[3]);
  task_config_clear(&cfg);

  /* Absent: none. */
  assert_int_equal(task_config_parse(NULL, &cfg, &err), 0);
  assert_int_equal(cfg.n_runtime_args, 0);
  assert_null(cfg.runtime_args);
  task_config_clear(&cfg);
}

static void
test_options_config_runtime_args_rejects_bad_lists(void **state)
{
  static const char *const empty[] = {"--debug", ""};
  static const char *many[TASK_MAX_RUNTIME_ARGS + 1];
  static char long_arg[TASK_MAX_RUNTIME_ARG_LEN + 2];
  const char *const *longv;
  struct args_section *s = cshim_xmalloc0(sizeof *s);

  args_section(s, empty, 2);
  expect_args_error(s, "entry 2 must be a non-empty string");

  for (size_t i = 0; i < TASK_MAX_RUNTIME_ARGS + 1; i++)
    many[i] = "--debug";
  args_section(s, many, TASK_MAX_RUNTIME_ARGS + 1);
  expect_args_error(s, "at most 64");

  memset(long_arg, 'a', TASK_MAX_RUNTIME_ARG_LEN + 1);
  longv = (const char *const[]){long_arg};
  args_section(s, longv, 1);
  expect_args_error(s, "at most 4096");

  /* A map entry is not a string. */
  args_section(s, empty, 1);
  s->items[0].kind = CSHIM_CONFIG_MAP;
  s->items[0].value = NULL;
  expect_args_error(s, "entry 1 must be a non-empty string");

  /* A scalar instead of a list. */
  args_section(s, empty, 1);
  s->map.items = &s->items[0];
  expect_args_error(s, "must be a list of strings");
  free(s);
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

static void
test_runtime_runc_model_is_runc_or_crun_by_name(void **state)
{
  (void)state;
  assert_true(task_runtime_runc_model("runc"));
  assert_true(task_runtime_runc_model("/usr/sbin/runc"));
  assert_true(task_runtime_runc_model("crun"));
  assert_true(task_runtime_runc_model("/opt/bin/crun"));
  assert_false(task_runtime_runc_model("runsc"));
  assert_false(task_runtime_runc_model("/usr/bin/runsc"));
  assert_false(task_runtime_runc_model("/usr/bin/runc-wrapper"));
  assert_false(task_runtime_runc_model("youki"));
  assert_true(task_runtime_is_runsc("runsc"));
  assert_true(task_runtime_is_runsc("/usr/bin/runsc"));
  assert_false(task_runtime_is_runsc("/usr/bin/runsc-wrapper"));
  assert_false(task_runtime_is_runsc("runc"));
  assert_false(task_runtime_is_runsc(NULL));
}

static void
test_runtime_path_walks_path_once(void **state)
{
  task_service_t svc;
  char dir[] = "/tmp/cshim-rtpath-XXXXXX";
  char exe[128], plain[128], env[300];
  const char *path = NULL, *again = NULL;
  cshim_autofree char *old_path = getenv("PATH") ? cshim_xstrdup(getenv("PATH")) : NULL;
  cshim_error_t err = NULL;
  FILE *fp;
  (void)state;

  memset(&svc, 0, sizeof svc);
  assert_non_null(mkdtemp(dir));
  snprintf(exe, sizeof exe, "%s/myrt", dir);
  snprintf(plain, sizeof plain, "%s/notexec", dir);
  fp = fopen(exe, "w");
  fclose(fp);
  assert_int_equal(chmod(exe, 0755), 0);
  fp = fopen(plain, "w");
  fclose(fp);
  /* a PATH element without the binary is passed over, as execvp does */
  snprintf(env, sizeof env, "/nonexistent:%s", dir);
  setenv("PATH", env, 1);

  assert_int_equal(task_runtime_path(&svc.runtime_paths, "myrt", &path, &err), 0);
  assert_string_equal(path, exe);
  /* resolved once: a later PATH change does not matter, the cached path is returned */
  setenv("PATH", "/nonexistent", 1);
  assert_int_equal(task_runtime_path(&svc.runtime_paths, "myrt", &again, &err), 0);
  assert_ptr_equal(again, path);
  /* a path is taken as given */
  assert_int_equal(task_runtime_path(&svc.runtime_paths, "/some/where/runc", &path, &err), 0);
  assert_string_equal(path, "/some/where/runc");
  /* missing or not executable: the name in the error */
  setenv("PATH", dir, 1);
  assert_int_equal(task_runtime_path(&svc.runtime_paths, "notexec", &path, &err), -ENOENT);
  assert_string_equal(err->msg, "runtime `notexec` not found in PATH");
  cshim_error_release(&err);
  assert_int_equal(task_runtime_path(&svc.runtime_paths, "nosuch", &path, &err), -ENOENT);
  cshim_error_release(&err);

  task_runtime_paths_free(&svc.runtime_paths);
  assert_true(cshim_list_empty(&svc.runtime_paths));
  if (old_path)
    setenv("PATH", old_path, 1);
  unlink(exe);
  unlink(plain);
  rmdir(dir);
}

int
main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_runtime_runc_model_is_runc_or_crun_by_name),
      cmocka_unit_test(test_runtime_path_walks_path_once),
      cmocka_unit_test(test_options_config_defaults),
      cmocka_unit_test(test_options_config_values),
      cmocka_unit_test(test_options_config_rejects_unknown_keys_and_bad_values),
      cmocka_unit_test(test_options_config_runtime_args_kept_in_order),
      cmocka_unit_test(test_options_config_runtime_args_rejects_bad_lists),
      cmocka_unit_test(test_options_resolve_overrides_config),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
