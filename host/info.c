// SPDX-License-Identifier: Apache-2.0
// The -info mode of the shim binary: name, version, echoed options and OCI runtime features.
#define _GNU_SOURCE
#include "info.h"
#include "config.h"
#include "delete.h"
#include "options.h"

#include <cshim/util.h>

#include "containerd/types/introspection.pb-c.h"
#include "google/protobuf/any.pb-c.h"

#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef CSHIM_REVISION
#define CSHIM_REVISION ""
#endif

static char *
runtime_name(void)
{
  cshim_autofree char *name = host_shim_name_from_binary(program_invocation_name);
  char *out;

  if (name == NULL)
    return cshim_xstrdup(HOST_INFO_DEFAULT_NAME);
  cshim_xasprintf(&out, "io.containerd.%s.v2", name);
  return out;
}

/* `<runtime> features` output when it is a JSON object; NULL otherwise (not an error: runtimes
   without the command are common). */
static char *
runtime_features(const char *runtime, size_t *len)
{
  const char *argv[] = {runtime, "features", NULL};
  cshim_autofree char *out = NULL;
  cshim_autofree char *errout = NULL;
  cshim_error_t err = NULL;
  json_error_t jerr;
  json_t *doc;
  int status = 0;
  bool ok;

  if (host_delete_exec((char *const *)argv, &out, len, &errout, &status, &err) < 0) {
    cshim_error_release(&err);
    return NULL;
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
    return NULL;
  doc = json_loadb(out, *len, 0, &jerr);
  ok = json_is_object(doc);
  json_decref(doc);
  return ok ? cshim_steal_pointer(&out) : NULL;
}

static int
write_all(int fd, const uint8_t *buf, size_t len, cshim_error_t *err)
{
  size_t done = 0;

  while (done < len) {
    ssize_t r = CSHIM_RETRY_EINTR(write(fd, buf + done, len - done));
    if (r < 0)
      return cshim_error_sys(err, errno, "write the runtime info");
    done += (size_t)r;
  }
  return 0;
}

int
host_info_run(const host_flags_t *flags, int stdin_fd, int stdout_fd, cshim_error_t *err)
{
  Containerd__Types__RuntimeInfo info = CONTAINERD__TYPES__RUNTIME_INFO__INIT;
  Containerd__Types__RuntimeVersion version = CONTAINERD__TYPES__RUNTIME_VERSION__INIT;
  Google__Protobuf__Any options = GOOGLE__PROTOBUF__ANY__INIT;
  Google__Protobuf__Any features = GOOGLE__PROTOBUF__ANY__INIT;
  host_start_options_t opts;
  cshim_autofree uint8_t *input = NULL;
  cshim_autofree char *name = NULL;
  cshim_autofree char *features_json = NULL;
  cshim_autofree uint8_t *buf = NULL;
  size_t input_len = 0, features_len = 0, len;
  int ret;

  ret = host_options_read_all(stdin_fd, &input, &input_len, err);
  if (ret < 0)
    return cshim_error_wrap(err, "read runtime options from stdin");
  ret = host_options_decode(input, input_len, NULL, NULL, &opts, err);
  if (ret < 0) {
    host_options_clear(&opts);
    return cshim_error_wrap(err, "failed to read runtime options");
  }

  name = runtime_name();
  info.name = name;
  version.version = (char *)CSHIM_VERSION;
  version.revision = (char *)CSHIM_REVISION;
  info.version = &version;
  if (opts.type_url) {
    options.type_url = opts.type_url;
    options.value.data = opts.value;
    options.value.len = opts.value_len;
    info.options = &options;
  }

  features_json = runtime_features(
      opts.kind == HOST_OPTIONS_RUNC && opts.binary_name ? opts.binary_name : "runc",
      &features_len);
  if (features_json) {
    features.type_url = (char *)HOST_INFO_FEATURES_TYPE;
    features.value.data = (uint8_t *)features_json;
    features.value.len = features_len;
    info.features = &features;
  }

  len = containerd__types__runtime_info__get_packed_size(&info);
  buf = cshim_xmalloc(len);
  containerd__types__runtime_info__pack(&info, buf);
  host_options_clear(&opts);
  return write_all(stdout_fd, buf, len, err);
}
