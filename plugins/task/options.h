// SPDX-License-Identifier: Apache-2.0
// The plugin's configuration section and the options each container runs with.
#ifndef TASK_OPTIONS_H
#define TASK_OPTIONS_H

#include <stdbool.h>
#include <stdint.h>

#include <cshim/config.h>
#include <cshim/error.h>
#include <cshim/list.h>
#include <cshim/runc_options.h>

#include "google/protobuf/any.pb-c.h"

#include "types.h"

#define TASK_DEFAULT_RUNTIME "runc"
#define TASK_DEFAULT_RUNTIME_ROOT "/run/containerd/runc"
#define TASK_DEFAULT_COMMAND_TIMEOUT_MS 60000u

typedef struct task_config_s
{
  char *runtime;      /* binary name or absolute path */
  char *runtime_root; /* without the namespace */
  bool systemd_cgroup;
  bool no_pivot_root;
  bool no_new_keyring;
  uint64_t command_timeout_ms;
  unsigned max_runtime_processes; /* runtime processes running at once; more wait in a queue */
  int runtime_nice; /* `runtime_nice`: niceness added to runtime commands that start no container */
  char **runtime_args; /* `runtime_args`: global flags before every subcommand,
                          NULL-terminated; NULL = none */
  size_t n_runtime_args;
} task_config_t;

/* Bounds of `runtime_args`: entries, and bytes of one entry. */
#define TASK_MAX_RUNTIME_ARGS 64u
#define TASK_MAX_RUNTIME_ARG_LEN 4096u

/* Upper bound of `max_runtime_processes`. */
#define TASK_MAX_RUNTIME_PROCESSES 65536u

/* The default of `runtime_nice`: under CPU pressure a flood of kill/state/delete commands yields
   to the shim's loop (other clients' calls) and to the containers. */
#define TASK_DEFAULT_RUNTIME_NICE 10u

/* The default of `max_runtime_processes`: 2 per online CPU, at least 8. */
unsigned task_default_max_runtime_processes(void);

/* Parse (and check the keys of) the plugin's section; NULL node = defaults. */
int task_config_parse(const cshim_config_node_t *node, task_config_t *out, cshim_error_t *err);
void task_config_clear(task_config_t *cfg);

/* The options a container runs with: the config's values, overridden by a
   containerd.runc.v1.Options Any (bare or prefixed type URL; other types are ignored). Booleans
   are or-ed (proto3 cannot tell "false" from "unset"); strings override when non-empty. The
   result always has binary_name and root set. */
int task_options_resolve(const task_config_t *cfg, const Google__Protobuf__Any *any,
                         cshim_runc_options_t *out, cshim_error_t *err);

/* Whether the runtime (by the name of its binary) is runc or crun: their containers live in
   one cgroup each, paused through its freezer, so State and Pids are answered from the shim's
   own state and the cgroup without starting the runtime. Others (runsc) are asked. */
bool task_runtime_runc_model(const char *binary);
/* gVisor's runsc: its sandbox may run without a cgroup of its own (--ignore-cgroups). */
bool task_runtime_is_runsc(const char *binary);
/* The runtime's executable: an absolute or relative path as given, a bare name looked up in
   PATH the first time only (cached in cache, a zeroed list at first, for the shim's life, so no
   command pays a PATH walk). *out is borrowed from binary or cache. ENOENT when PATH has no such
   executable. */
int task_runtime_path(cshim_list_t *cache, const char *binary, const char **out,
                      cshim_error_t *err);
void task_runtime_paths_free(cshim_list_t *cache);

#endif
