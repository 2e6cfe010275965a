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
  any.type_url = "runtimeoptions.v1.Options";
  assert_int_equal(cshim_runc_options_decode(&any, &out, &err), 0);
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
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
