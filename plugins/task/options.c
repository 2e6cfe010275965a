// SPDX-License-Identifier: Apache-2.0
// The task plugin's YAML section and the runtime options each container runs with.
#define _GNU_SOURCE
#include "options.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cshim/util.h>

static const char *const config_keys[] = {
    "runtime",         "runtime_root",          "systemd_cgroup", "no_pivot_root", "no_new_keyring",
    "command_timeout", "max_runtime_processes", "runtime_args",   "runtime_nice",  NULL,
};

unsigned
task_default_max_runtime_processes(void)
{
  long cpus = sysconf(_SC_NPROCESSORS_ONLN);
  unsigned n = cpus > 0 ? 2u * (unsigned)cpus : 8u;
  if (n < 8)
    n = 8;
  return n > TASK_MAX_RUNTIME_PROCESSES ? TASK_MAX_RUNTIME_PROCESSES : n;
}

void
task_config_clear(task_config_t *cfg)
{
  free(cfg->runtime);
  free(cfg->runtime_root);
  for (size_t i = 0; i < cfg->n_runtime_args; i++)
    free(cfg->runtime_args[i]);
  free(cfg->runtime_args);
  memset(cfg, 0, sizeof *cfg);
}

/* `runtime_args`: a list of non-empty strings (flags given to the runtime before its subcommand).
 */
static int
parse_runtime_args(const cshim_config_node_t *node, task_config_t *out, cshim_error_t *err)
{
  const cshim_config_node_t *seq = cshim_config_get(node, "runtime_args");

  if (seq == NULL || cshim_config_is_null(seq))
    return 0;
  if (seq->kind != CSHIM_CONFIG_SEQ)
    return cshim_error_make(err, EINVAL,
                            "task config: %s:%u:%u: `runtime_args` must be a list of strings",
                            seq->file ? seq->file : "?", seq->line, seq->column);
  if (seq->n > TASK_MAX_RUNTIME_ARGS)
    return cshim_error_make(
        err, EINVAL, "task config: %s:%u:%u: `runtime_args` has %zu entries, at most %u",
        seq->file ? seq->file : "?", seq->line, seq->column, seq->n, TASK_MAX_RUNTIME_ARGS);
  for (size_t i = 0; i < seq->n; i++) {
    const cshim_config_node_t *it = &seq->items[i];
    const char *v = it->kind == CSHIM_CONFIG_SCALAR ? it->value : NULL;
    size_t len = v ? strlen(v) : 0; /* the YAML loader refuses a NUL inside a scalar */
    if (v == NULL || len == 0 || cshim_config_is_null(it))
      return cshim_error_make(
          err, EINVAL, "task config: %s:%u:%u: `runtime_args` entry %zu must be a non-empty string",
          it->file ? it->file : "?", it->line, it->column, i + 1);
    if (len > TASK_MAX_RUNTIME_ARG_LEN)
      return cshim_error_make(err, EINVAL,
                              "task config: %s:%u:%u: `runtime_args` entry %zu is %zu bytes long, "
                              "at most %u",
                              it->file ? it->file : "?", it->line, it->column, i + 1, len,
                              TASK_MAX_RUNTIME_ARG_LEN);
  }
  out->runtime_args = cshim_xmalloc0((seq->n + 1) * sizeof *out->runtime_args);
  for (size_t i = 0; i < seq->n; i++)
    out->runtime_args[i] = cshim_xstrdup(seq->items[i].value);
  out->n_runtime_args = seq->n;
  return 0;
}

int
task_config_parse(const cshim_config_node_t *node, task_config_t *out, cshim_error_t *err)
{
  const char *runtime = TASK_DEFAULT_RUNTIME;
  const char *root = TASK_DEFAULT_RUNTIME_ROOT;
  uint64_t timeout = TASK_DEFAULT_COMMAND_TIMEOUT_MS;
  uint64_t max_processes = task_default_max_runtime_processes();
  uint64_t nice = TASK_DEFAULT_RUNTIME_NICE;
  bool systemd = false, no_pivot = false, no_keyring = false;

  memset(out, 0, sizeof *out);
  if (cshim_config_check_keys(node, config_keys, "task plugin config", err) < 0)
    return cshim_error_wrap(err, "task config");
  if (cshim_config_get_string(node, "runtime", &runtime, err) < 0 ||
      cshim_config_get_string(node, "runtime_root", &root, err) < 0 ||
      cshim_config_get_bool(node, "systemd_cgroup", &systemd, err) < 0 ||
      cshim_config_get_bool(node, "no_pivot_root", &no_pivot, err) < 0 ||
      cshim_config_get_bool(node, "no_new_keyring", &no_keyring, err) < 0 ||
      cshim_config_get_duration_ms(node, "command_timeout", &timeout, err) < 0 ||
      cshim_config_get_uint(node, "max_runtime_processes", &max_processes, err) < 0 ||
      cshim_config_get_uint(node, "runtime_nice", &nice, err) < 0)
    return cshim_error_wrap(err, "task config");
  if (nice > 19)
    return cshim_error_make(
        err, EINVAL, "task config: `runtime_nice` must be from 0 to 19 (found %" PRIu64 ")", nice);
  if (max_processes == 0 || max_processes > TASK_MAX_RUNTIME_PROCESSES)
    return cshim_error_make(
        err, EINVAL,
        "task config: `max_runtime_processes` must be from 1 to %u (found %" PRIu64 ")",
        TASK_MAX_RUNTIME_PROCESSES, max_processes);
  if (*runtime == '\0')
    return cshim_error_make(err, EINVAL, "task config: `runtime` is empty");
  if (root[0] != '/')
    return cshim_error_make(err, EINVAL, "task config: `runtime_root` `%s` is not absolute", root);

  if (parse_runtime_args(node, out, err) < 0)
    return -EINVAL;
  out->runtime = cshim_xstrdup(runtime);
  out->runtime_root = cshim_xstrdup(root);
  out->systemd_cgroup = systemd;
  out->no_pivot_root = no_pivot;
  out->no_new_keyring = no_keyring;
  out->command_timeout_ms = timeout;
  out->max_runtime_processes = (unsigned)max_processes;
  out->runtime_nice = (int)nice;
  return 0;
}

int
task_options_resolve(const task_config_t *cfg, const Google__Protobuf__Any *any,
                     cshim_runc_options_t *out, cshim_error_t *err)
{
  int ret = cshim_runc_options_decode(any, out, err);
  if (ret < 0)
    return cshim_error_wrap(err, "runtime options");
  if (out->binary_name == NULL)
    out->binary_name = cshim_xstrdup(cfg->runtime);
  if (out->root == NULL)
    out->root = cshim_xstrdup(cfg->runtime_root);
  out->systemd_cgroup = out->systemd_cgroup || cfg->systemd_cgroup;
  out->no_pivot_root = out->no_pivot_root || cfg->no_pivot_root;
  out->no_new_keyring = out->no_new_keyring || cfg->no_new_keyring;
  return 0;
}

bool
task_runtime_runc_model(const char *binary)
{
  const char *slash = binary ? strrchr(binary, '/') : NULL;
  const char *base = slash ? slash + 1 : binary;

  return base && (strcmp(base, "runc") == 0 || strcmp(base, "crun") == 0);
}

bool
task_runtime_is_runsc(const char *binary)
{
  const char *slash = binary ? strrchr(binary, '/') : NULL;
  const char *base = slash ? slash + 1 : binary;

  return base && strcmp(base, "runsc") == 0;
}

struct task_runtime_path_s
{
  cshim_list_t link; /* in the cache */
  char *name;
  char *path;
};

static bool
is_executable_file(const char *path)
{
  struct stat st;
  return stat(path, &st) == 0 && S_ISREG(st.st_mode) && access(path, X_OK) == 0;
}

int
task_runtime_path(cshim_list_t *cache, const char *binary, const char **out, cshim_error_t *err)
{
  const char *search = getenv("PATH");
  task_runtime_path_t *e;
  cshim_list_t *l;
  char *found = NULL;

  if (strchr(binary, '/')) {
    *out = binary;
    return 0;
  }
  CSHIM_LIST_FOREACH (l, cache) {
    e = cshim_list_entry(l, task_runtime_path_t, link);
    if (strcmp(e->name, binary) == 0) {
      *out = e->path;
      return 0;
    }
  }
  /* execvp's walk, done once: an empty element is the current directory. */
  if (search == NULL)
    search = "/bin:/usr/bin";
  for (const char *p = search; found == NULL; p++) {
    const char *end = strchrnul(p, ':');
    cshim_autofree char *candidate = NULL;
    if (end == p)
      candidate = cshim_xstrdup(binary);
    else
      cshim_xasprintf(&candidate, "%.*s/%s", (int)(end - p), p, binary);
    if (is_executable_file(candidate))
      found = cshim_steal_pointer(&candidate);
    if (*end == '\0')
      break;
    p = end;
  }
  if (found == NULL)
    return cshim_error_make(err, ENOENT, "runtime `%s` not found in PATH", binary);
  e = cshim_xmalloc0(sizeof *e);
  e->name = cshim_xstrdup(binary);
  e->path = found;
  cshim_list_push_front(cache, &e->link);
  *out = e->path;
  return 0;
}

void
task_runtime_paths_free(cshim_list_t *cache)
{
  cshim_list_t *l;
  while ((l = cshim_list_first(cache)) != NULL) {
    task_runtime_path_t *e = cshim_list_entry(l, task_runtime_path_t, link);
    cshim_list_remove(l);
    free(e->name);
    free(e->path);
    free(e);
  }
}
