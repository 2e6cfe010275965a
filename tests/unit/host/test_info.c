// SPDX-License-Identifier: Apache-2.0
// Unit tests of host/info.c: the RuntimeInfo that -info prints.
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cshim/util.h>

#include "containerd/runc/options/oci.pb-c.h"
#include "containerd/types/introspection.pb-c.h"
#include "google/protobuf/any.pb-c.h"
#include "runtimeoptions/v1/api.pb-c.h"

#include "info.h"
#include "options.h"

static const char *annotation(const Containerd__Types__RuntimeInfo *info, const char *key);

#define FAKE_FEATURES "{\"ociVersionMin\":\"1.0.0\",\"hooks\":[\"prestart\"]}"

static int
tmpfile_fd(const uint8_t *data, size_t len)
{
  char tmpl[] = "/tmp/cshim-test-info-XXXXXX";
  int fd = mkstemp(tmpl);

  assert_true(fd >= 0);
  unlink(tmpl);
  if (len)
    assert_int_equal(write(fd, data, len), (ssize_t)len);
  lseek(fd, 0, SEEK_SET);
  return fd;
}

static Containerd__Types__RuntimeInfo *
run_info(const uint8_t *in, size_t in_len, int *ret)
{
  host_flags_t fl = {0};
  cshim_error_t err = NULL;
  int in_fd = tmpfile_fd(in, in_len), out_fd = tmpfile_fd(NULL, 0);
  uint8_t *out = NULL;
  size_t len = 0;
  Containerd__Types__RuntimeInfo *info = NULL;

  fl.info = true;
  *ret = host_info_run(&fl, in_fd, out_fd, &err);
  if (*ret == 0) {
    lseek(out_fd, 0, SEEK_SET);
    assert_int_equal(host_options_read_all(out_fd, &out, &len, &err), 0);
    info = containerd__types__runtime_info__unpack(NULL, len, out);
    assert_non_null(info);
  } else
    cshim_error_release(&err);
  free(out);
  close(in_fd);
  close(out_fd);
  return info;
}

static uint8_t *
pack_runc_any(const char *type_url, const char *binary, size_t *len)
{
  Containerd__Runc__V1__Options o = CONTAINERD__RUNC__V1__OPTIONS__INIT;
  Google__Protobuf__Any any = GOOGLE__PROTOBUF__ANY__INIT;
  uint8_t *val, *out;

  o.binary_name = (char *)binary;
  any.type_url = (char *)type_url;
  any.value.len = containerd__runc__v1__options__get_packed_size(&o);
  val = cshim_xmalloc(any.value.len);
  containerd__runc__v1__options__pack(&o, val);
  any.value.data = val;
  *len = google__protobuf__any__get_packed_size(&any);
  out = cshim_xmalloc(*len);
  google__protobuf__any__pack(&any, out);
  free(val);
  return out;
}

static void
test_info_without_options_names_the_shim(void **state)
{
  Containerd__Types__RuntimeInfo *info;
  int ret;
  (void)state;

  info = run_info(NULL, 0, &ret);
  assert_int_equal(ret, 0);
  /* this binary is not called containerd-shim-<name>-v2 */
  assert_string_equal(info->name, HOST_INFO_DEFAULT_NAME);
  assert_non_null(info->version);
  assert_string_equal(info->version->version, CSHIM_VERSION);
  /* no options in: the defaults in effect, an empty runc Options (`{}`, as runc-v2 echoes) */
  assert_non_null(info->options);
  assert_string_equal(info->options->type_url, "containerd.runc.v1.Options");
  assert_int_equal(info->options->value.len, 0);
  assert_string_equal(info->version->revision, host_revision);
  assert_true(host_revision[0] != '\0');
  /* the default runtime is runc; when installed, its features are embedded */
  assert_string_equal(annotation(info, HOST_INFO_RUNTIME_ANNOTATION), "runc");
  if (info->features) {
    assert_string_equal(info->features->type_url, HOST_INFO_FEATURES_TYPE);
    assert_true(info->features->value.len > 2);
    assert_int_equal(info->features->value.data[0], '{');
  }
  containerd__types__runtime_info__free_unpacked(info, NULL);
}

static void
test_info_echoes_options_and_runs_their_runtime(void **state)
{
  char exe[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
  Containerd__Types__RuntimeInfo *info;
  uint8_t *in;
  size_t in_len;
  int ret;
  (void)state;

  assert_true(n > 0);
  exe[n] = '\0';
  in = pack_runc_any("type.googleapis.com/containerd.runc.v1.Options", exe, &in_len);
  info = run_info(in, in_len, &ret);
  assert_int_equal(ret, 0);
  assert_non_null(info->options);
  assert_string_equal(info->options->type_url, "type.googleapis.com/containerd.runc.v1.Options");
  assert_non_null(info->features);
  assert_int_equal(info->features->value.len, strlen(FAKE_FEATURES));
  assert_memory_equal(info->features->value.data, FAKE_FEATURES, strlen(FAKE_FEATURES));
  containerd__types__runtime_info__free_unpacked(info, NULL);
  free(in);
}

static void
test_info_leaves_features_out_when_the_runtime_has_none(void **state)
{
  Containerd__Types__RuntimeInfo *info;
  uint8_t *in;
  size_t in_len;
  int ret;
  (void)state;

  in = pack_runc_any("containerd.runc.v1.Options", "/nonexistent/runtime", &in_len);
  info = run_info(in, in_len, &ret);
  assert_int_equal(ret, 0);
  assert_null(info->features);
  assert_string_equal(info->options->type_url, "containerd.runc.v1.Options");
  containerd__types__runtime_info__free_unpacked(info, NULL);
  free(in);

  /* a runtime that answers with something that is not JSON */
  in = pack_runc_any("containerd.runc.v1.Options", "/bin/true", &in_len);
  info = run_info(in, in_len, &ret);
  assert_int_equal(ret, 0);
  assert_null(info->features);
  containerd__types__runtime_info__free_unpacked(info, NULL);
  free(in);
}

static void
test_info_rejects_garbage(void **state)
{
  static const uint8_t garbage[] = {0xff, 0xff, 0xff};
  int ret;
  (void)state;

  assert_null(run_info(garbage, sizeof garbage, &ret));
  assert_int_equal(ret, -EINVAL);
}

static const char *
annotation(const Containerd__Types__RuntimeInfo *info, const char *key)
{
  for (size_t i = 0; i < info->n_annotations; i++)
    if (strcmp(info->annotations[i]->key, key) == 0)
      return info->annotations[i]->value;
  return NULL;
}

static char *
self_exe(void)
{
  char exe[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);

  assert_true(n > 0);
  exe[n] = '\0';
  return cshim_xstrdup(exe);
}

/* A config file whose task section names a runtime; returns its path (caller frees). */
static char *
write_config(const char *yaml)
{
  char tmpl[] = "/tmp/cshim-test-info-XXXXXX.yaml";
  int fd = mkstemps(tmpl, 5);

  assert_true(fd >= 0);
  assert_int_equal(write(fd, yaml, strlen(yaml)), (ssize_t)strlen(yaml));
  close(fd);
  return cshim_xstrdup(tmpl);
}

static uint8_t *
pack_config_body(const char *body, size_t *len)
{
  Runtimeoptions__V1__Options o = RUNTIMEOPTIONS__V1__OPTIONS__INIT;
  Google__Protobuf__Any any = GOOGLE__PROTOBUF__ANY__INIT;
  uint8_t *val, *out;

  o.config_body.data = (uint8_t *)body;
  o.config_body.len = strlen(body);
  any.type_url = (char *)"runtimeoptions.v1.Options";
  any.value.len = runtimeoptions__v1__options__get_packed_size(&o);
  val = cshim_xmalloc(any.value.len + 1);
  runtimeoptions__v1__options__pack(&o, val);
  any.value.data = val;
  *len = google__protobuf__any__get_packed_size(&any);
  out = cshim_xmalloc(*len);
  google__protobuf__any__pack(&any, out);
  free(val);
  return out;
}

static void
test_info_reports_the_runtime_the_config_selects(void **state)
{
  char *exe = self_exe(), *yaml, *path;
  Containerd__Types__RuntimeInfo *info;
  uint8_t *in;
  size_t in_len;
  int ret;
  (void)state;

  cshim_xasprintf(&yaml, "version: 1\nplugins:\n  io.containerd.ttrpc.v1.task:\n    runtime: %s\n",
                  exe);
  path = write_config(yaml);

  /* $CSHIM_CONFIG, as start reads it */
  setenv("CSHIM_CONFIG", path, 1);
  info = run_info(NULL, 0, &ret);
  assert_int_equal(ret, 0);
  assert_string_equal(annotation(info, HOST_INFO_RUNTIME_ANNOTATION), exe);
  assert_non_null(info->features);
  assert_memory_equal(info->features->value.data, FAKE_FEATURES, strlen(FAKE_FEATURES));
  containerd__types__runtime_info__free_unpacked(info, NULL);

  /* the options' BinaryName wins over the config, as it does for Create */
  in = pack_runc_any("containerd.runc.v1.Options", "/nonexistent/crun", &in_len);
  info = run_info(in, in_len, &ret);
  assert_int_equal(ret, 0);
  assert_string_equal(annotation(info, HOST_INFO_RUNTIME_ANNOTATION), "/nonexistent/crun");
  assert_null(info->features);
  assert_non_null(strstr(annotation(info, HOST_INFO_FEATURES_ANNOTATION), "/nonexistent/crun"));
  containerd__types__runtime_info__free_unpacked(info, NULL);
  free(in);
  unsetenv("CSHIM_CONFIG");

  /* ConfigPath in a CRI config_body names the config */
  {
    char *body;
    cshim_xasprintf(&body, "ConfigPath = \"%s\"\n", path);
    in = pack_config_body(body, &in_len);
    info = run_info(in, in_len, &ret);
    assert_int_equal(ret, 0);
    assert_string_equal(annotation(info, HOST_INFO_RUNTIME_ANNOTATION), exe);
    assert_non_null(info->options);
    assert_string_equal(info->options->type_url, "runtimeoptions.v1.Options");
    containerd__types__runtime_info__free_unpacked(info, NULL);
    free(in);
    free(body);
  }

  unlink(path);
  free(path);
  free(yaml);
  free(exe);
}

static void
test_info_fails_on_a_config_it_cannot_read(void **state)
{
  char *path =
      write_config("version: 1\nplugins:\n  io.containerd.ttrpc.v1.task:\n    runtime: [a]\n");
  uint8_t *in;
  size_t in_len;
  int ret;
  (void)state;

  setenv("CSHIM_CONFIG", path, 1);
  assert_null(run_info(NULL, 0, &ret));
  assert_int_equal(ret, -EINVAL);
  unsetenv("CSHIM_CONFIG");
  in = pack_config_body("CshimConfig = \"modules: 3\"\n", &in_len);
  assert_null(run_info(in, in_len, &ret));
  assert_int_equal(ret, -EINVAL);
  free(in);
  unlink(path);
  free(path);
}

int
main(int argc, char **argv)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_info_without_options_names_the_shim),
      cmocka_unit_test(test_info_echoes_options_and_runs_their_runtime),
      cmocka_unit_test(test_info_leaves_features_out_when_the_runtime_has_none),
      cmocka_unit_test(test_info_rejects_garbage),
      cmocka_unit_test(test_info_reports_the_runtime_the_config_selects),
      cmocka_unit_test(test_info_fails_on_a_config_it_cannot_read),
  };

  if (argc == 2 && strcmp(argv[1], "features") == 0) {
    fputs(FAKE_FEATURES, stdout);
    return 0;
  }
  return cmocka_run_group_tests(tests, NULL, NULL);
}
