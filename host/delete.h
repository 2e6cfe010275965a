// SPDX-License-Identifier: Apache-2.0
// The `delete` action: idempotent cleanup of a task after its shim connection closed.
#ifndef HOST_DELETE_H
#define HOST_DELETE_H

#include <stddef.h>

#include <cshim/error.h>

#include "flags.h"

/* The runtime and state root used when the bundle records none (runc shim defaults). */
#define HOST_DELETE_DEFAULT_RUNTIME "runc"
#define HOST_DELETE_DEFAULT_ROOT "/run/containerd/runc"

/* The exit status `delete` reports: the task is presumed killed (128 + SIGKILL). */
#define HOST_DELETE_EXIT_STATUS 137

/* Knobs of host_delete_run_params; every NULL/negative field takes the default in brackets. */
typedef struct host_delete_params_s
{
  const char *bundle;          /* [-bundle, else the current directory] */
  const char *default_runtime; /* [HOST_DELETE_DEFAULT_RUNTIME] when <bundle>/runtime is absent */
  const char *default_root;    /* [HOST_DELETE_DEFAULT_ROOT] when options.json names no root */
  int stderr_fd;               /* [2] where warnings go (0 means 2 as well) */
} host_delete_params_t;

/* The `delete` action, §4.7/§4.13 of the protocol notes. Reads <bundle>/runtime and
   <bundle>/options.json (as written by the task plugin at Create) for the runtime binary and
   root, runs `<runtime> --root <root>/<ns> [--log <bundle>/log.json --log-format json]
   [--systemd-cgroup] delete --force <id>` (not for runc or crun when <root>/<ns>/<id> does
   not exist: the runtime has no record of the container), unmounts <bundle>/rootfs (lazily when
   busy), removes the socket named in <bundle>/address and the debug socket beside it (as the
   debug plugin names it by default) when nothing answers on them any more (a grouped shim still
   serving other tasks keeps its sockets), and prints a containerd.task.v2.DeleteResponse
   {pid from <bundle>/init.pid or 0, exit_status 137, exited_at now} on stdout_fd.
   Idempotent: a container, bundle file or the whole bundle that is already gone is not an error;
   problems along the way are logged to stderr as warnings (containerd logs them) and do not fail
   the action. Only a failure to print the response fails. Blocking (fork/exec + waitpid): run it
   in the short-lived delete process before any SIGCHLD reaper is installed. */
int host_delete_run(const host_flags_t *flags, int stdout_fd, cshim_error_t *err);

/* host_delete_run with explicit knobs (tests). params may be NULL. */
int host_delete_run_params(const host_flags_t *flags, const host_delete_params_t *params,
                           int stdout_fd, cshim_error_t *err);

/* Run argv to completion, blocking (argv[0] is searched in PATH; clean signal state, stdin on
   /dev/null, parent-death signal SIGKILL). stdout is captured into *out and *out_len when out is
   not NULL (else discarded); stderr is captured into *errout; each keeps at most 4 MiB; both are
   NUL-terminated and owned by the caller. *status is the waitpid status. Fails only when the
   command cannot be started (e.g. ENOENT for a missing binary). For the short-lived start,
   delete and -info processes only; shared with -info. */
int host_delete_exec(char *const *argv, char **out, size_t *out_len, char **errout, int *status,
                     cshim_error_t *err);

#endif
