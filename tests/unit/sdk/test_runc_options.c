// SPDX-License-Identifier: Apache-2.0
// Tests of runc_options.c: Any decoding, options.json and runtime files, runtime root.
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include <cshim/runc_options.h>
#include <cshim/util.h>

#include "containerd/runc/options/oci.pb-c.h"
#include "runtimeoptions/v1/api.pb-c.h"

static char dir[64];

static int
setup(void **state)
{
  snprintf(dir, sizeof dir, "/tmp/cshim-runc-opts-XXXXXX");
  assert_non_null(mkdtemp(dir));
  return 0;
}

static int
teardown(void **state)
{
  char path[128];
  const char *names[] = {"options.json", "runtime", ".options.json.tmp", ".runtime.tmp"};
  for (size_t i = 0; i < 4; i++) {
    snprintf(path, sizeof path, "%s/%s", dir, names[i]);
    unlink(path);
  }
  rmdir(dir);
  return 0;
}

static void
write_text(const char *name, const char *text)
{
  char path[128];
  FILE *f;
  snprintf(path, sizeof path, "%s/%s", dir, name);
  f = fopen(path, "w");
  assert_non_null(f);
  fputs(text, f);
  fclose(f);
}

static void
test_runc_options_decode_accepts_bare_and_prefixed_type_urls(void **state)
{
  Containerd__Runc__V1__Options o = CONTAINERD__RUNC__V1__OPTIONS__INIT;
  Google__Protobuf__Any any = GOOGLE__PROTOBUF__ANY__INIT;
  cshim_runc_options_t out;
  cshim_error_t err = NULL;
  uint8_t buf[256];
  const char *urls[] = {"containerd.runc.v1.Options",
                        "type.googleapis.com/containerd.runc.v1.Options"};

  o.binary_name = "crun";
  o.root = "/run/x";
  o.systemd_cgroup = 1;
  o.io_uid = 1000;
  o.io_gid = 1001;
  o.no_pivot_root = 1;
  o.shim_cgroup = "/shim";
  any.value.len = containerd__runc__v1__options__pack(&o, buf);
  any.value.data = buf;
  for (size_t i = 0; i < 2; i++) {
    any.type_url = (char *)urls[i];
    assert_int_equal(cshim_runc_options_decode(&any, &out, &err), 1);
    assert_string_equal(out.binary_name, "crun");
    assert_string_equal(out.root, "/run/x");
    assert_string_equal(out.shim_cgroup, "/shim");
    assert_true(out.systemd_cgroup);
    assert_true(out.no_pivot_root);
    assert_false(out.no_new_keyring);
    assert_int_equal(out.io_uid, 1000);
    assert_int_equal(out.io_gid, 1001);
    assert_null(out.criu_work_path);
    cshim_runc_options_clear(&out);
  }
}

static void
test_runc_options_decode_ignores_other_types_and_rejects_garbage(void **state)
{
  Google__Protobuf__Any any = GOOGLE__PROTOBUF__ANY__INIT;
  cshim_runc_options_t out;
  cshim_error_t err = NULL;
  uint8_t junk[] = {0xff, 0xff, 0xff};

  assert_int_equal(cshim_runc_options_decode(NULL, &out, &err), 0);
  any.type_url = "";
  assert_int_equal(cshim_runc_options_decode(&any, &out, &err), 0);
  any.type_url = "example.com/vendor.v1.Options";
  assert_int_equal(cshim_runc_options_decode(&any, &out, &err), 0);
  assert_null(out.binary_name);
  /* CRI's wrapper without a config_body: runtime options, all defaults */
  any.type_url = "runtimeoptions.v1.Options";
  assert_int_equal(cshim_runc_options_decode(&any, &out, &err), 1);
  assert_null(out.binary_name);
  any.type_url = "containerd.runc.v1.Options";
  any.value.data = junk;
  any.value.len = sizeof junk;
  assert_int_equal(cshim_runc_options_decode(&any, &out, &err), -EINVAL);
  assert_non_null(err);
  cshim_error_release(&err);
  assert_false(cshim_runc_options_is_type("containerd.runc.v1.OptionsX"));
  assert_true(cshim_runc_options_is_type("a/b/containerd.runc.v1.Options"));
}

static void
test_runc_options_round_trip_through_options_json(void **state)
{
  cshim_runc_options_t in = {0}, out;
  cshim_error_t err = NULL;

  in.binary_name = "/usr/bin/cr\"un\\";
  in.root = "/run/root\n";
  in.systemd_cgroup = true;
  in.no_new_keyring = true;
  in.io_uid = 4294967295u;
  in.criu_image_path = "/img";
  assert_int_equal(cshim_runc_options_write(dir, &in, &err), 0);
  assert_int_equal(cshim_runc_options_read(dir, &out, &err), 1);
  assert_string_equal(out.binary_name, in.binary_name);
  assert_string_equal(out.root, in.root);
  assert_string_equal(out.criu_image_path, "/img");
  assert_true(out.systemd_cgroup);
  assert_true(out.no_new_keyring);
  assert_false(out.no_pivot_root);
  assert_int_equal(out.io_uid, 4294967295u);
  assert_int_equal(out.io_gid, 0);
  cshim_runc_options_clear(&out);
}

static void
test_runc_options_reads_go_written_json_and_ignores_unknown_keys(void **state)
{
  cshim_runc_options_t out;
  cshim_error_t err = NULL;

  write_text("options.json",
             " {\"binary_name\":\"runc\",\"root\":\"/run/containerd/runc\",\"systemdCgroup\":true,"
             "\"task_api_version\":2,\"extra\":{\"a\":[1,2,{\"b\":null}]},"
             "\"shim_cgroup\":\"\\u002fsys\",\"criu_path\":null} \n");
  assert_int_equal(cshim_runc_options_read(dir, &out, &err), 1);
  assert_string_equal(out.binary_name, "runc");
  assert_string_equal(out.root, "/run/containerd/runc");
  assert_string_equal(out.shim_cgroup, "/sys");
  assert_true(out.systemd_cgroup);
  cshim_runc_options_clear(&out);

  write_text("options.json", "{}");
  assert_int_equal(cshim_runc_options_read(dir, &out, &err), 1);
  assert_null(out.binary_name);
}

static void
test_runc_options_missing_file_is_defaults_and_malformed_is_an_error(void **state)
{
  cshim_runc_options_t out;
  cshim_error_t err = NULL;
  const char *bad[] = {"",
                       "{",
                       "{\"root\":1}",
                       "{\"io_uid\":-1}",
                       "{\"root\":\"x\"} x",
                       "[\"root\"]",
                       "{\"root\" \"x\"}",
                       "{\"systemd_cgroup\":\"yes\"}"};

  assert_int_equal(cshim_runc_options_read(dir, &out, &err), 0);
  assert_null(err);
  assert_null(out.root);
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    write_text("options.json", bad[i]);
    assert_int_equal(cshim_runc_options_read(dir, &out, &err), -EINVAL);
    assert_non_null(err);
    cshim_error_release(&err);
    assert_null(out.root);
  }
}

static void
test_runc_options_json_is_compact_in_field_order_and_errors_name_the_key(void **state)
{
  cshim_runc_options_t in = {0}, out;
  cshim_error_t err = NULL;
  char path[128], text[256] = "";
  FILE *f;

  in.root = "/r";
  in.no_pivot_root = true;
  in.io_gid = 7;
  assert_int_equal(cshim_runc_options_write(dir, &in, &err), 0);
  snprintf(path, sizeof path, "%s/options.json", dir);
  f = fopen(path, "r");
  assert_non_null(f);
  assert_non_null(fgets(text, sizeof text, f));
  fclose(f);
  /* Zero values left out, protobuf field names, field order, as containerd's runc shim. */
  assert_string_equal(text, "{\"no_pivot_root\":true,\"io_gid\":7,\"root\":\"/r\"}");

  in.root = "/bad\xff";
  assert_int_equal(cshim_runc_options_write(dir, &in, &err), -EINVAL);
  assert_string_equal(err->msg, "write `options.json`: `root` is not valid UTF-8");
  cshim_error_release(&err);

  write_text("options.json", "{\"root\":\"/x\",\"ioUid\":1.5}");
  assert_int_equal(cshim_runc_options_read(dir, &out, &err), -EINVAL);
  assert_non_null(strstr(err->msg, "`ioUid`: expected an integer from 0 to 4294967295"));
  assert_null(out.root);
  cshim_error_release(&err);

  write_text("options.json", "{\"root\":\"a\\u0000b\"}");
  assert_int_equal(cshim_runc_options_read(dir, &out, &err), -EINVAL);
  assert_non_null(strstr(err->msg, "malformed JSON at offset"));
  cshim_error_release(&err);
}

static void
test_runc_runtime_file_round_trip(void **state)
{
  cshim_error_t err = NULL;
  char *bin = NULL;

  assert_int_equal(cshim_runc_runtime_read(dir, &bin, &err), 0);
  assert_null(bin);
  assert_int_equal(cshim_runc_runtime_write(dir, "/usr/local/bin/crun", &err), 0);
  assert_int_equal(cshim_runc_runtime_read(dir, &bin, &err), 1);
  assert_string_equal(bin, "/usr/local/bin/crun");
  free(bin);
  write_text("runtime", "  runc\n");
  assert_int_equal(cshim_runc_runtime_read(dir, &bin, &err), 1);
  assert_string_equal(bin, "runc");
  free(bin);
  write_text("runtime", "\n");
  assert_int_equal(cshim_runc_runtime_read(dir, &bin, &err), 0);
}

static void
test_runc_options_runtime_root_appends_namespace(void **state)
{
  cshim_runc_options_t o = {0};
  char *r;

  r = cshim_runc_options_runtime_root(NULL, "/run/containerd/runc", "default");
  assert_string_equal(r, "/run/containerd/runc/default");
  free(r);
  o.root = "/custom/";
  r = cshim_runc_options_runtime_root(&o, "/run/containerd/runc", "k8s.io");
  assert_string_equal(r, "/custom/k8s.io");
  free(r);
}

/* A runtimeoptions.v1.Options whose config_body is body (what CRI sends a non-runc runtime). */
static void
pack_runtimeoptions(const char *body, Google__Protobuf__Any *any)
{
  Runtimeoptions__V1__Options o = RUNTIMEOPTIONS__V1__OPTIONS__INIT;

  o.config_body.data = (uint8_t *)body;
  o.config_body.len = strlen(body);
  any->type_url = "type.googleapis.com/runtimeoptions.v1.Options";
  any->value.len = runtimeoptions__v1__options__get_packed_size(&o);
  any->value.data = cshim_xmalloc(any->value.len + 1);
  runtimeoptions__v1__options__pack(&o, any->value.data);
}

/* Exactly what containerd 1.7 (go-toml v1 Tree.Marshal) writes for a RuntimeClass options table:
   sorted keys, basic strings. */
static void
test_runc_options_decode_reads_config_body_as_containerd_writes_it(void **state)
{
  Google__Protobuf__Any any = GOOGLE__PROTOBUF__ANY__INIT;
  cshim_runc_options_t out;
  cshim_error_t err = NULL;

  pack_runtimeoptions("BinaryName = \"/usr/bin/crun\"\nCriuImagePath = \"/ck\"\n"
                      "CriuWorkPath = \"/w\"\nIoGid = 4294967295\nIoUid = 1000\n"
                      "NoNewKeyring = true\nNoPivotRoot = true\nRoot = \"/run/r\"\n"
                      "ShimCgroup = \"/shim\"\nSystemdCgroup = true\n"
                      "CshimConfig = \"version: 1\\n\"\n",
                      &any);
  assert_int_equal(cshim_runc_options_decode(&any, &out, &err), 1);
  assert_string_equal(out.binary_name, "/usr/bin/crun");
  assert_string_equal(out.criu_image_path, "/ck");
  assert_string_equal(out.criu_work_path, "/w");
  assert_string_equal(out.root, "/run/r");
  assert_string_equal(out.shim_cgroup, "/shim");
  assert_int_equal(out.io_uid, 1000);
  assert_int_equal(out.io_gid, 4294967295u);
  assert_true(out.no_new_keyring && out.no_pivot_root && out.systemd_cgroup);
  cshim_runc_options_clear(&out);
  free(any.value.data);

  /* go-toml v2 (containerd 2.x) writes literal strings; names match without regard to case */
  pack_runtimeoptions("binaryname = '/usr/bin/runc'\nsystemdCgroup = false\n", &any);
  assert_int_equal(cshim_runc_options_decode(&any, &out, &err), 1);
  assert_string_equal(out.binary_name, "/usr/bin/runc");
  assert_false(out.systemd_cgroup);
  cshim_runc_options_clear(&out);
  free(any.value.data);
}

static void
test_runc_options_config_body_refuses_what_it_does_not_understand(void **state)
{
  static const struct
  {
    const char *body;
    const char *message;
  } cases[] = {
      {"BinaryName = \"x\"\nBinaryNam = \"y\"\n",
       "config_body:2:1: unknown runtime option `BinaryNam`"},
      {"SystemdCgroup = \"true\"\n",
       "config_body:1:1: `SystemdCgroup` must be a boolean, not a string"},
      {"IoUid = -1\n", "config_body:1:1: `IoUid` = -1 is out of range 0..4294967295"},
      {"IoGid = 4294967296\n", "out of range"},
      {"Root = 5\n", "`Root` must be a string, not an integer"},
      {"\n[BinaryName]\n", "config_body:2:1: `BinaryName` must be a string, not a table"},
      {"\n[options]\n  BinaryName = \"x\"\n", "unknown runtime option `options`"},
      {"a.b = 1\n", "unknown runtime option `a.b`"},
      {"Root = [\"a\"]\n", "config_body:1:8: arrays are not supported"},
  };
  Google__Protobuf__Any any = GOOGLE__PROTOBUF__ANY__INIT;
  cshim_runc_options_t out;

  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    cshim_error_t err = NULL;
    pack_runtimeoptions(cases[i].body, &any);
    assert_int_equal(cshim_runc_options_decode(&any, &out, &err), -EINVAL);
    if (strstr(err->msg, cases[i].message) == NULL)
      fail_msg("case %zu: `%s` does not contain `%s`", i, err->msg, cases[i].message);
    assert_null(out.binary_name);
    cshim_error_release(&err);
    free(any.value.data);
  }
}

static void
test_runc_options_from_toml_returns_config_path_and_inline_config(void **state)
{
  static const char body[] = "ConfigPath = \"/etc/cshim/a.yaml\"\nCshimConfig = \"\"\n";
  cshim_runc_options_t out;
  cshim_error_t err = NULL;
  char *path = NULL, *inline_config = NULL;

  assert_int_equal(
      cshim_runc_options_from_toml(body, strlen(body), &out, &path, &inline_config, &err), 0);
  assert_string_equal(path, "/etc/cshim/a.yaml");
  assert_null(inline_config); /* empty = unset */
  free(path);
  assert_int_equal(cshim_runc_options_from_toml(NULL, 0, &out, &path, &inline_config, &err), 0);
  assert_null(path);
  assert_null(out.binary_name);
}

int
main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_runc_options_decode_accepts_bare_and_prefixed_type_urls),
      cmocka_unit_test(test_runc_options_decode_ignores_other_types_and_rejects_garbage),
      cmocka_unit_test_setup_teardown(test_runc_options_round_trip_through_options_json, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(
          test_runc_options_reads_go_written_json_and_ignores_unknown_keys, setup, teardown),
      cmocka_unit_test_setup_teardown(
          test_runc_options_missing_file_is_defaults_and_malformed_is_an_error, setup, teardown),
      cmocka_unit_test_setup_teardown(
          test_runc_options_json_is_compact_in_field_order_and_errors_name_the_key, setup,
          teardown),
      cmocka_unit_test_setup_teardown(test_runc_runtime_file_round_trip, setup, teardown),
      cmocka_unit_test(test_runc_options_runtime_root_appends_namespace),
      cmocka_unit_test(test_runc_options_decode_reads_config_body_as_containerd_writes_it),
      cmocka_unit_test(test_runc_options_config_body_refuses_what_it_does_not_understand),
      cmocka_unit_test(test_runc_options_from_toml_returns_config_path_and_inline_config),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
