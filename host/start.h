// SPDX-License-Identifier: Apache-2.0
// The `start` action: pick the group socket, spawn the daemon (or reuse a running one), print the
// address.
#ifndef HOST_START_H
#define HOST_START_H

#include <stdbool.h>
#include <sys/types.h>

#include <cshim/error.h>

#include "flags.h"

/* File in the bundle naming the config `start` chose: the absolute or relative path of a YAML
   file, or HOST_CONFIG_EMBEDDED ("<embedded>"), no newline. The config can be named by the
   runtime options, which only `start` (and Create) receive, so `start` resolves it once and the
   daemon and `delete` read the choice back with host_start_read_config_choice. */
#define HOST_START_CONFIG_FILE "cshim-config"

/* The runtime options' inline CshimConfig, as kept in the bundle (0600) for the daemon, and the
   name messages give it while start checks it. */
#define HOST_START_INLINE_CONFIG_FILE "cshim-config.yaml"
#define HOST_START_INLINE_SOURCE "CshimConfig"

/* The daemon start spawns reports on this fd (named by $HOST_START_READY_ENV) whether it came up:
   HOST_START_READY once its plugins are initialised and it serves, or the text of the error it
   exits with; then it closes the fd. start answers containerd only after that report, so a
   mistake found while plugins initialise (an unknown key in a plugin's section) fails start with
   its message, which ctr and kubelet show. */
#define HOST_START_READY_ENV "CSHIM_READY_FD"
/* What GLIBC_TUNABLES was before start added its malloc tunable for the daemon: "=" followed by
   the value, or "-" when it was not set. The daemon puts it back, so that what it starts (the
   runtime, logging binaries) sees the environment containerd gave the shim. */
#define HOST_START_TUNABLES_ENV "CSHIM_GLIBC_TUNABLES"
#define HOST_START_READY_FD 5
#define HOST_START_READY "ready"
/* How long start waits for that report; past it, start answers as before (a slow plugin is not
   a failed one). */
#define HOST_START_READY_TIMEOUT_MS 10000

/* Where the installed tree keeps per-shim configs (<etc>/<name>.yaml). */
#define HOST_START_ETC_DIR "/etc/cshim"

/* Knobs of host_start_run_params; every NULL/0 field takes the default in brackets. */
typedef struct host_start_params_s
{
  const char *bundle;     /* [current directory] where config.json, address, cshim-config live */
  const char *socket_dir; /* [BootstrapParams.socket_dir, else HOST_ADDRESS_SOCKET_DIR] */
  const char *exe;        /* [readlink /proc/self/exe] the daemon binary */
  const char *argv0;      /* [program_invocation_name] daemon argv[0] and the config name */
  const char *etc_dir;    /* [$CSHIM_ETC_DIR, else HOST_START_ETC_DIR] */
  const char *plugin_dir; /* [host_shim_default_plugin_dir (exe)] only to validate the config */
  pid_t *daemon_pid;      /* [not reported] out: pid of the spawned daemon, 0 when reused */
  /* [ask -publish-binary, cached in HOST_BOOTSTRAP_CACHE_DIR] containerd's major version,
     which decides the task API version announced (host_bootstrap_version); < 0: unknown */
  int containerd_major;
  const char *version_cache_dir; /* [HOST_BOOTSTRAP_CACHE_DIR] */
} host_start_params_t;

/* The `start` action, §4.11 of the protocol notes: reads stdin (options Any or BootstrapParams)
   to EOF, resolves and parses the cshim config (an inline CshimConfig from config_body is
   written to <bundle>/cshim-config.yaml; a syntax error fails here); computes the group socket;
   checks the config with its module set (host_check_config), so a mistake fails start with its
   file:line:col message and nothing left running or bound: if a shim of the group already
   listens, checks, writes <bundle>/address and prints its address; otherwise creates the
   socket, writes `address` and `cshim-config`, spawns this binary without an action (new
   session, cwd = bundle, fds 0-2 on /dev/null, the listener as fd 3, env inherited), moves it
   into the runc options' shim_cgroup, sets its oom_score_adj to containerd's + 1, checks (while
   the daemon starts: a refused config kills it), waits for its report and prints
   the address on stdout_fd: exactly "unix://<dir>/<sha256>" to containerd 1.x, version-3 JSON
   (or, to 2.3+, a BootstrapResult) to containerd 2.x unless the group's existing shim does not
   serve task API v3 (host_bootstrap_version). On a failure after the spawn, the daemon is
   killed and the socket removed. Blocking: runs in the short-lived start process, never on a
   loop. Returns 0 or a negative errno with err set (the caller prints it on stderr and exits
   non-zero). */
int host_start_run(const host_flags_t *flags, int stdin_fd, int stdout_fd, cshim_error_t *err);

/* host_start_run with explicit knobs (tests, or a caller that knows its install layout).
   params may be NULL. */
int host_start_run_params(const host_flags_t *flags, const host_start_params_t *params,
                          int stdin_fd, int stdout_fd, cshim_error_t *err);

/* Read <bundle>/cshim-config. *source is the recorded path or HOST_CONFIG_EMBEDDED (caller
   owns), or NULL when the file does not exist (a bundle from before start ran, or a shim started
   by hand): then resolve the config the usual way. */
int host_start_read_config_choice(const char *bundle, char **source, cshim_error_t *err);

#endif
