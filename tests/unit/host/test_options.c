// SPDX-License-Identifier: Apache-2.0
// Unit tests of host/options.c: every form of runtime options containerd writes on stdin.
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cshim/util.h>

#include "containerd/runc/options/oci.pb-c.h"
#include "containerd/runtime/bootstrap/v1/bootstrap.pb-c.h"
#include "google/protobuf/any.pb-c.h"
#include "runtimeoptions/v1/api.pb-c.h"

#include "options.h"

struct bytes
{
  uint8_t *data;
  size_t len;
};

static struct bytes
pack_runc(const char *binary, const char *root, const char *cgroup)
{
  Containerd__Runc__V1__Options o = CONTAINERD__RUNC__V1__OPTIONS__INIT;
  struct bytes b;

  o.binary_name = (char *)binary;
  o.root = (char *)root;
  o.shim_cgroup = (char *)cgroup;
  o.systemd_cgroup = 1;
  b.len = containerd__runc__v1__options__get_packed_size(&o);
  b.data = cshim_xmalloc(b.len);
  containerd__runc__v1__options__pack(&o, b.data);
  return b;
}

static struct bytes
pack_runtimeoptions(const char *config_path)
{
  Runtimeoptions__V1__Options o = RUNTIMEOPTIONS__V1__OPTIONS__INIT;
  struct bytes b;

  o.type_url = (char *)"io.containerd.cshim.v1.Whatever";
  o.config_path = (char *)config_path;
  b.len = runtimeoptions__v1__options__get_packed_size(&o);
  b.data = cshim_xmalloc(b.len);
  runtimeoptions__v1__options__pack(&o, b.data);
  return b;
}

/* value is consumed */
static struct bytes
pack_any(const char *type_url, struct bytes value)
{
  Google__Protobuf__Any a = GOOGLE__PROTOBUF__ANY__INIT;
  struct bytes b;

  a.type_url = (char *)type_url;
  a.value.data = value.data;
  a.value.len = value.len;
  b.len = google__protobuf__any__get_packed_size(&a);
  b.data = cshim_xmalloc(b.len);
  google__protobuf__any__pack(&a, b.data);
  free(value.data);
  return b;
}

/* value is consumed; type_url NULL = no extension */
static struct bytes
pack_bootstrap(const char *id, const char *ns, const char *socket_dir, const char *type_url,
               struct bytes value)
{
  Containerd__Runtime__Bootstrap__V1__BootstrapParams p =
      CONTAINERD__RUNTIME__BOOTSTRAP__V1__BOOTSTRAP_PARAMS__INIT;
  Containerd__Runtime__Bootstrap__V1__Extension ext =
      CONTAINERD__RUNTIME__BOOTSTRAP__V1__EXTENSION__INIT;
  Containerd__Runtime__Bootstrap__V1__Extension *exts[] = {&ext};
  Google__Protobuf__Any a = GOOGLE__PROTOBUF__ANY__INIT;
  struct bytes b;

  p.instance_id = (char *)id;
  p.namespace_ = (char *)ns;
  p.containerd_version = (char *)"2.3.0";
  p.containerd_grpc_address = (char *)"/run/containerd/containerd.sock";
  p.containerd_ttrpc_address = (char *)"/run/containerd/containerd.sock.ttrpc";
  if (socket_dir) {
    p._socket_dir_case =
        CONTAINERD__RUNTIME__BOOTSTRAP__V1__BOOTSTRAP_PARAMS___SOCKET_DIR_SOCKET_DIR;
    p.socket_dir = (char *)socket_dir;
  }
  if (type_url) {
    a.type_url = (char *)type_url;
    a.value.data = value.data;
    a.value.len = value.len;
    ext.value = &a;
    p.n_extensions = 1;
    p.extensions = exts;
  }
  b.len = containerd__runtime__bootstrap__v1__bootstrap_params__get_packed_size(&p);
  b.data = cshim_xmalloc(b.len);
  containerd__runtime__bootstrap__v1__bootstrap_params__pack(&p, b.data);
  free(value.data);
  return b;
}

static void
test_options_empty_input_means_no_options(void **state)
{
  host_start_options_t o;
  cshim_error_t err = NULL;
  (void)state;

  assert_int_equal(host_options_decode((const uint8_t *)"", 0, "id", "ns", &o, &err), 0);
  assert_false(o.has_bootstrap);
  assert_int_equal(o.kind, HOST_OPTIONS_NONE);
  assert_null(o.type_url);
  assert_null(o.value);
  host_options_clear(&o);
}

static void
test_options_any_with_empty_type_url_means_no_options(void **state)
{
  struct bytes b = pack_any("", (struct bytes){cshim_xmemdup("x", 1), 1});
  host_start_options_t o;
  cshim_error_t err = NULL;
  (void)state;

  assert_true(b.len > 0);
  assert_int_equal(host_options_decode(b.data, b.len, "id", "ns", &o, &err), 0);
  assert_int_equal(o.kind, HOST_OPTIONS_NONE);
  host_options_clear(&o);
  free(b.data);
}

static void
test_options_runc_any_bare_and_prefixed(void **state)
{
  const char *urls[] = {"containerd.runc.v1.Options",
                        "type.googleapis.com/containerd.runc.v1.Options",
                        "example.com/x/y/containerd.runc.v1.Options"};
  (void)state;

  for (size_t i = 0; i < CSHIM_N_ELEMENTS(urls); i++) {
    struct bytes value = pack_runc("crun", "/run/crun", "/cshim/shim");
    size_t value_len = value.len;
    uint8_t *value_copy = cshim_xmemdup(value.data, value.len);
    struct bytes b = pack_any(urls[i], value);
    host_start_options_t o;
    cshim_error_t err = NULL;

    assert_int_equal(host_options_decode(b.data, b.len, "id", "ns", &o, &err), 0);
    assert_false(o.has_bootstrap);
    assert_int_equal(o.kind, HOST_OPTIONS_RUNC);
    assert_string_equal(o.type_url, urls[i]);
    assert_string_equal(o.binary_name, "crun");
    assert_string_equal(o.root, "/run/crun");
    assert_string_equal(o.shim_cgroup, "/cshim/shim");
    assert_null(o.config_path);
    assert_int_equal(o.value_len, value_len);
    assert_memory_equal(o.value, value_copy, value_len);
    host_options_clear(&o);
    free(value_copy);
    free(b.data);
  }
}

static void
test_options_runtimeoptions_selects_config_path(void **state)
{
  struct bytes b = pack_any("runtimeoptions.v1.Options", pack_runtimeoptions("/etc/acme.yaml"));
  struct bytes b2 =
      pack_any("type.googleapis.com/runtimeoptions.v1.Options", pack_runtimeoptions(""));
  host_start_options_t o;
  cshim_error_t err = NULL;
  (void)state;

  assert_int_equal(host_options_decode(b.data, b.len, "id", "ns", &o, &err), 0);
  assert_int_equal(o.kind, HOST_OPTIONS_RUNTIMEOPTIONS);
  assert_string_equal(o.config_path, "/etc/acme.yaml");
  assert_null(o.binary_name);
  host_options_clear(&o);

  assert_int_equal(host_options_decode(b2.data, b2.len, "id", "ns", &o, &err), 0);
  assert_int_equal(o.kind, HOST_OPTIONS_RUNTIMEOPTIONS);
  assert_null(o.config_path);
  host_options_clear(&o);
  free(b.data);
  free(b2.data);
}

static struct bytes
pack_config_body(const char *config_path, const char *body)
{
  Runtimeoptions__V1__Options o = RUNTIMEOPTIONS__V1__OPTIONS__INIT;
  struct bytes b;

  o.config_path = (char *)config_path;
  o.config_body.data = (uint8_t *)body;
  o.config_body.len = strlen(body);
  b.len = runtimeoptions__v1__options__get_packed_size(&o);
  b.data = cshim_xmalloc(b.len + 1);
  runtimeoptions__v1__options__pack(&o, b.data);
  return b;
}

static void
test_options_config_body_gives_runc_options_and_config(void **state)
{
  struct bytes b =
      pack_any("runtimeoptions.v1.Options",
               pack_config_body("", "BinaryName = \"/usr/bin/crun\"\nRoot = \"/r\"\n"
                                    "ShimCgroup = \"/s\"\nConfigPath = \"/c.yaml\"\n"));
  struct bytes inline_b = pack_any("runtimeoptions.v1.Options",
                                   pack_config_body("", "CshimConfig = \"version: 1\\n\"\n"));
  struct bytes both = pack_any("runtimeoptions.v1.Options",
                               pack_config_body("/p.yaml", "CshimConfig = \"version: 1\"\n"));
  struct bytes bad = pack_any("runtimeoptions.v1.Options", pack_config_body("", "Foo = 1\n"));
  host_start_options_t o;
  cshim_error_t err = NULL;
  (void)state;

  assert_int_equal(host_options_decode(b.data, b.len, "id", "ns", &o, &err), 0);
  assert_string_equal(o.binary_name, "/usr/bin/crun");
  assert_string_equal(o.root, "/r");
  assert_string_equal(o.shim_cgroup, "/s");
  assert_string_equal(o.config_path, "/c.yaml");
  assert_null(o.inline_config);
  host_options_clear(&o);

  assert_int_equal(host_options_decode(inline_b.data, inline_b.len, "id", "ns", &o, &err), 0);
  assert_string_equal(o.inline_config, "version: 1\n");
  assert_null(o.config_path);
  host_options_clear(&o);

  assert_int_equal(host_options_decode(both.data, both.len, "id", "ns", &o, &err), -EINVAL);
  assert_non_null(strstr(err->msg, "not both"));
  cshim_error_release(&err);
  host_options_clear(&o);

  assert_int_equal(host_options_decode(bad.data, bad.len, "id", "ns", &o, &err), -EINVAL);
  assert_non_null(strstr(err->msg, "config_body:1:1: unknown runtime option `Foo`"));
  cshim_error_release(&err);
  host_options_clear(&o);
  free(b.data);
  free(inline_b.data);
  free(both.data);
  free(bad.data);
}

static void
test_options_unknown_type_is_kept_raw(void **state)
{
  struct bytes v = {cshim_xmemdup("\x0a\x03"
                                  "abc",
                                  5),
                    5};
  struct bytes b = pack_any("acme.v1.Options", v);
  host_start_options_t o;
  cshim_error_t err = NULL;
  (void)state;

  assert_int_equal(host_options_decode(b.data, b.len, "id", "ns", &o, &err), 0);
  assert_int_equal(o.kind, HOST_OPTIONS_UNKNOWN);
  assert_string_equal(o.type_url, "acme.v1.Options");
  assert_int_equal(o.value_len, 5);
  assert_memory_equal(o.value,
                      "\x0a\x03"
                      "abc",
                      5);
  host_options_clear(&o);
  free(b.data);
}

static void
test_options_malformed_input_fails(void **state)
{
  static const uint8_t garbage[] = {0xff, 0xff, 0xff, 0x07};
  struct bytes bad_runc =
      pack_any("containerd.runc.v1.Options", (struct bytes){cshim_xmemdup("\x32\x09"
                                                                          "ab",
                                                                          4),
                                                            4});
  host_start_options_t o;
  cshim_error_t err = NULL;
  (void)state;

  assert_int_equal(host_options_decode(garbage, sizeof garbage, "id", "ns", &o, &err), -EINVAL);
  assert_non_null(err);
  cshim_error_release(&err);
  host_options_clear(&o);

  /* right type, value truncated */
  assert_int_equal(host_options_decode(bad_runc.data, bad_runc.len, "id", "ns", &o, &err), -EINVAL);
  assert_non_null(strstr(err->msg, "containerd.runc.v1.Options"));
  cshim_error_release(&err);
  host_options_clear(&o);
  free(bad_runc.data);
}

static void
test_options_bootstrap_for_this_task_is_used(void **state)
{
  struct bytes b = pack_bootstrap("task1", "k8s.io", "/run/c/s",
                                  "type.googleapis.com/containerd.runc.v1.Options",
                                  pack_runc("runc", NULL, NULL));
  host_start_options_t o;
  cshim_error_t err = NULL;
  (void)state;

  assert_int_equal(host_options_decode(b.data, b.len, "task1", "k8s.io", &o, &err), 0);
  assert_true(o.has_bootstrap);
  assert_string_equal(o.socket_dir, "/run/c/s");
  assert_string_equal(o.grpc_address, "/run/containerd/containerd.sock");
  assert_string_equal(o.ttrpc_address, "/run/containerd/containerd.sock.ttrpc");
  assert_int_equal(o.kind, HOST_OPTIONS_RUNC);
  assert_string_equal(o.binary_name, "runc");
  assert_null(o.root);
  host_options_clear(&o);
  free(b.data);
}

static void
test_options_bootstrap_without_extensions_or_socket_dir(void **state)
{
  struct bytes b = pack_bootstrap("task1", "default", NULL, NULL, (struct bytes){NULL, 0});
  host_start_options_t o;
  cshim_error_t err = NULL;
  (void)state;

  assert_int_equal(host_options_decode(b.data, b.len, "task1", "default", &o, &err), 0);
  assert_true(o.has_bootstrap);
  assert_null(o.socket_dir);
  assert_int_equal(o.kind, HOST_OPTIONS_NONE);
  host_options_clear(&o);
  free(b.data);
}

static void
test_options_bootstrap_for_another_task_is_not_used(void **state)
{
  struct bytes b = pack_bootstrap("other", "default", "/run/c/s", "containerd.runc.v1.Options",
                                  pack_runc("crun", NULL, NULL));
  struct bytes b2 = pack_bootstrap("task1", "other-ns", "/run/c/s", "containerd.runc.v1.Options",
                                   pack_runc("crun", NULL, NULL));
  host_start_options_t o;
  cshim_error_t err = NULL;
  (void)state;

  /* Not ours: read as an Any, whose fields 1/2 are not a valid type; never crashes. */
  host_options_decode(b.data, b.len, "task1", "default", &o, &err);
  assert_false(o.has_bootstrap);
  assert_null(o.socket_dir);
  cshim_error_release(&err);
  host_options_clear(&o);
  host_options_decode(b2.data, b2.len, "task1", "default", &o, &err);
  assert_false(o.has_bootstrap);
  cshim_error_release(&err);
  host_options_clear(&o);
  /* -info passes no id: never a bootstrap */
  host_options_decode(b.data, b.len, NULL, NULL, &o, &err);
  assert_false(o.has_bootstrap);
  cshim_error_release(&err);
  host_options_clear(&o);
  free(b.data);
  free(b2.data);
}

/* A legacy Any also decodes as a BootstrapParams (fields 1 and 2 are strings/bytes in both);
   the id check is what keeps it an Any. */
static void
test_options_legacy_any_is_not_mistaken_for_bootstrap(void **state)
{
  struct bytes b = pack_any("containerd.runc.v1.Options", pack_runc("crun", NULL, NULL));
  host_start_options_t o;
  cshim_error_t err = NULL;
  (void)state;

  assert_int_equal(
      host_options_decode(b.data, b.len, "containerd.runc.v1.Options", "default", &o, &err), 0);
  assert_false(o.has_bootstrap);
  assert_int_equal(o.kind, HOST_OPTIONS_RUNC);
  host_options_clear(&o);
  free(b.data);
}

static void
test_options_type_name_and_read_all(void **state)
{
  int p[2];
  uint8_t *data = NULL;
  size_t len = 0;
  cshim_error_t err = NULL;
  char big[70000];
  (void)state;

  assert_string_equal(host_options_type_name("a/b/c.D"), "c.D");
  assert_string_equal(host_options_type_name("c.D"), "c.D");

  memset(big, 'z', sizeof big);
  assert_int_equal(pipe(p), 0);
  if (fork() == 0) {
    close(p[0]);
    for (size_t off = 0; off < sizeof big;) {
      ssize_t w = write(p[1], big + off, sizeof big - off);
      if (w <= 0)
        _exit(1);
      off += (size_t)w;
    }
    _exit(0);
  }
  close(p[1]);
  assert_int_equal(host_options_read_all(p[0], &data, &len, &err), 0);
  close(p[0]);
  assert_int_equal(len, sizeof big);
  assert_memory_equal(data, big, sizeof big);
  assert_int_equal(data[len], 0);
  free(data);
  while (wait(NULL) > 0)
    ;

  assert_int_equal(host_options_read_file("/nonexistent/x", (char **)&data, &len, &err), -ENOENT);
  cshim_error_release(&err);
}

int
main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_options_empty_input_means_no_options),
      cmocka_unit_test(test_options_any_with_empty_type_url_means_no_options),
      cmocka_unit_test(test_options_runc_any_bare_and_prefixed),
      cmocka_unit_test(test_options_runtimeoptions_selects_config_path),
      cmocka_unit_test(test_options_config_body_gives_runc_options_and_config),
      cmocka_unit_test(test_options_unknown_type_is_kept_raw),
      cmocka_unit_test(test_options_malformed_input_fails),
      cmocka_unit_test(test_options_bootstrap_for_this_task_is_used),
      cmocka_unit_test(test_options_bootstrap_without_extensions_or_socket_dir),
      cmocka_unit_test(test_options_bootstrap_for_another_task_is_not_used),
      cmocka_unit_test(test_options_legacy_any_is_not_mistaken_for_bootstrap),
      cmocka_unit_test(test_options_type_name_and_read_all),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
