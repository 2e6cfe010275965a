// SPDX-License-Identifier: Apache-2.0
// The task plugin's YAML section and the runtime options each container runs with.
#include "task.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cshim/util.h>

static const char *const config_keys[] = {
    "runtime",        "runtime_root",    "systemd_cgroup",        "no_pivot_root",
    "no_new_keyring", "command_timeout", "max_runtime_processes", NULL,
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
  memset(cfg, 0, sizeof *cfg);
}

int
task_config_parse(const cshim_config_node_t *node, task_config_t *out, cshim_error_t *err)
{
  const char *runtime = TASK_DEFAULT_RUNTIME;
  const char *root = TASK_DEFAULT_RUNTIME_ROOT;
  uint64_t timeout = TASK_DEFAULT_COMMAND_TIMEOUT_MS;
  uint64_t max_processes = task_default_max_runtime_processes();
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
      cshim_config_get_uint(node, "max_runtime_processes", &max_processes, err) < 0)
    return cshim_error_wrap(err, "task config");
  if (max_processes == 0 || max_processes > TASK_MAX_RUNTIME_PROCESSES)
    return cshim_error_make(
        err, EINVAL,
        "task config: `max_runtime_processes` must be from 1 to %u (found %" PRIu64 ")",
        TASK_MAX_RUNTIME_PROCESSES, max_processes);
  if (*runtime == '\0')
    return cshim_error_make(err, EINVAL, "task config: `runtime` is empty");
  if (root[0] != '/')
    return cshim_error_make(err, EINVAL, "task config: `runtime_root` `%s` is not absolute", root);

  out->runtime = cshim_xstrdup(runtime);
  out->runtime_root = cshim_xstrdup(root);
  out->systemd_cgroup = systemd;
  out->no_pivot_root = no_pivot;
  out->no_new_keyring = no_keyring;
  out->command_timeout_ms = timeout;
  out->max_runtime_processes = (unsigned)max_processes;
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
