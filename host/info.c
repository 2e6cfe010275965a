// SPDX-License-Identifier: Apache-2.0
// The -info mode of the shim binary: name, version, echoed options and OCI runtime features.
#define _GNU_SOURCE
#include "info.h"
#include "check.h"
#include "config.h"
#include "delete.h"
#include "options.h"
#include "start.h"

#include <cshim/file.h>
#include <cshim/util.h>

#include "containerd/types/introspection.pb-c.h"
#include "google/protobuf/any.pb-c.h"

#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

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

/* The OCI runtime a shim started with these options would run, and the arguments it puts
   before every subcommand: the runtime options' BinaryName, else the task section's `runtime`
   (and `runtime_args`) of the config `start` would pick, else runc. */
struct runtime_choice
{
  char *binary;
  char **args; /* NULL-terminated */
  size_t n_args;
};

static void
runtime_choice_clear(struct runtime_choice *r)
{
  free(r->binary);
  for (size_t i = 0; i < r->n_args; i++)
    free(r->args[i]);
  free(r->args);
  memset(r, 0, sizeof *r);
}

static int
load_config(const host_start_options_t *opts, host_config_t **config, cshim_error_t *err)
{
  const char *etc_dir = getenv("CSHIM_ETC_DIR");

  if (opts->inline_config)
    return host_config_parse(opts->inline_config, strlen(opts->inline_config),
                             HOST_START_INLINE_SOURCE, NULL, config, err);
  return host_config_resolve(opts->config_path, getenv("CSHIM_CONFIG"), program_invocation_name,
                             etc_dir ? etc_dir : HOST_START_ETC_DIR, NULL, config, err);
}

static int
choose_runtime(const host_start_options_t *opts, struct runtime_choice *out, cshim_error_t *err)
{
  host_config_t *config = NULL;
  const cshim_config_node_t *task, *args;
  const char *runtime = HOST_INFO_DEFAULT_RUNTIME;
  int ret;

  memset(out, 0, sizeof *out);
  ret = load_config(opts, &config, err);
  if (ret < 0)
    return cshim_error_wrap(err, "read the shim config");
  task = host_config_plugin_section(config, HOST_CHECK_TASK_URI);
  ret = cshim_config_get_string(task, "runtime", &runtime, err);
  if (ret < 0) {
    host_config_free(config);
    return ret;
  }
  args = cshim_config_get(task, "runtime_args");
  if (args && args->kind == CSHIM_CONFIG_SEQ) {
    out->args = cshim_xmalloc0((args->n + 1) * sizeof *out->args);
    for (size_t i = 0; i < args->n; i++)
      if (args->items[i].kind == CSHIM_CONFIG_SCALAR && args->items[i].value)
        out->args[out->n_args++] = cshim_xstrdup(args->items[i].value);
  }
  out->binary = cshim_xstrdup(opts->binary_name ? opts->binary_name : runtime);
  host_config_free(config);
  return 0;
}

/* `<runtime> [runtime_args] features` output when it is a JSON object; NULL otherwise, with
 *why saying what happened (not an error: runtimes without the command are common). */
static char *
runtime_features(const struct runtime_choice *rt, size_t *len, char **why)
{
  cshim_autofree const char **argv = cshim_xmalloc0((rt->n_args + 3) * sizeof *argv);
  cshim_autofree char *out = NULL;
  cshim_autofree char *errout = NULL;
  cshim_error_t err = NULL;
  json_error_t jerr;
  json_t *doc;
  size_t n = 0;
  int status = 0;
  bool ok;

  argv[n++] = rt->binary;
  for (size_t i = 0; i < rt->n_args; i++)
    argv[n++] = rt->args[i];
  argv[n++] = "features";
  if (host_delete_exec((char *const *)argv, &out, len, &errout, &status, &err) < 0) {
    cshim_xasprintf(why, "`%s features` could not run: %s", rt->binary, err->msg);
    cshim_error_release(&err);
    return NULL;
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    cshim_xasprintf(why, "`%s features` failed (%s %d): the runtime reports no features",
                    rt->binary, WIFEXITED(status) ? "exit status" : "signal",
                    WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
    return NULL;
  }
  doc = json_loadb(out, *len, 0, &jerr);
  ok = json_is_object(doc);
  json_decref(doc);
  if (!ok) {
    cshim_xasprintf(why, "`%s features` printed no JSON object", rt->binary);
    return NULL;
  }
  return cshim_steal_pointer(&out);
}

int
host_info_run(const host_flags_t *flags, int stdin_fd, int stdout_fd, cshim_error_t *err)
{
  Containerd__Types__RuntimeInfo info = CONTAINERD__TYPES__RUNTIME_INFO__INIT;
  Containerd__Types__RuntimeVersion version = CONTAINERD__TYPES__RUNTIME_VERSION__INIT;
  Containerd__Types__RuntimeInfo__AnnotationsEntry notes[2] = {
      CONTAINERD__TYPES__RUNTIME_INFO__ANNOTATIONS_ENTRY__INIT,
      CONTAINERD__TYPES__RUNTIME_INFO__ANNOTATIONS_ENTRY__INIT,
  };
  Containerd__Types__RuntimeInfo__AnnotationsEntry *note_ptrs[2] = {&notes[0], &notes[1]};
  Google__Protobuf__Any options = GOOGLE__PROTOBUF__ANY__INIT;
  Google__Protobuf__Any features = GOOGLE__PROTOBUF__ANY__INIT;
  host_start_options_t opts;
  struct runtime_choice rt;
  cshim_autofree uint8_t *input = NULL;
  cshim_autofree char *name = NULL;
  cshim_autofree char *features_json = NULL;
  cshim_autofree char *why = NULL;
  cshim_autofree uint8_t *buf = NULL;
  size_t input_len = 0, features_len = 0, len;
  int ret;
  (void)flags;

  ret = host_options_read_all(stdin_fd, &input, &input_len, err);
  if (ret < 0)
    return cshim_error_wrap(err, "read runtime options from stdin");
  ret = host_options_decode(input, input_len, NULL, NULL, &opts, err);
  if (ret < 0) {
    host_options_clear(&opts);
    return cshim_error_wrap(err, "failed to read runtime options");
  }
  ret = choose_runtime(&opts, &rt, err);
  if (ret < 0) {
    host_options_clear(&opts);
    return ret;
  }

  name = runtime_name();
  info.name = name;
  version.version = (char *)CSHIM_VERSION;
  version.revision = (char *)host_revision;
  info.version = &version;
  if (opts.type_url) {
    options.type_url = opts.type_url;
    options.value.data = opts.value;
    options.value.len = opts.value_len;
  } else {
    /* Nothing on stdin (ctr inspect-runtime sends options only to io.containerd.runc.v2): the
       options in effect are runc's defaults, which read back as `{}` as runc-v2's echo does. */
    options.type_url = (char *)HOST_OPTIONS_RUNC_TYPE;
  }
  info.options = &options;

  notes[0].key = (char *)HOST_INFO_RUNTIME_ANNOTATION;
  notes[0].value = rt.binary;
  info.annotations = note_ptrs;
  info.n_annotations = 1;
  features_json = runtime_features(&rt, &features_len, &why);
  if (features_json) {
    features.type_url = (char *)HOST_INFO_FEATURES_TYPE;
    features.value.data = (uint8_t *)features_json;
    features.value.len = features_len;
    info.features = &features;
  } else {
    notes[1].key = (char *)HOST_INFO_FEATURES_ANNOTATION;
    notes[1].value = why;
    info.n_annotations = 2;
  }

  len = containerd__types__runtime_info__get_packed_size(&info);
  buf = cshim_xmalloc(len);
  containerd__types__runtime_info__pack(&info, buf);
  runtime_choice_clear(&rt);
  host_options_clear(&opts);
  return cshim_file_write_fd(stdout_fd, buf, len, "the runtime info", err);
}
