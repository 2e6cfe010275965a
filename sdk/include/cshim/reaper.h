// SPDX-License-Identifier: Apache-2.0
// The process's single SIGCHLD owner, offered to plugins: exits are dispatched by pid.
#ifndef CSHIM_REAPER_H
#define CSHIM_REAPER_H

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include <cshim/error.h>
#include <cshim/struct_size.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Called on the loop thread with the raw wait status (WIFEXITED/WIFSIGNALED apply). */
typedef void (*cshim_exit_cb)(void *data, pid_t pid, int wait_status);

typedef struct cshim_reaper_s cshim_reaper_t;
typedef struct cshim_reaper_ops_s cshim_reaper_ops_t;

/* The host reaps every child with wait4(-1, WNOHANG) when SIGCHLD arrives. Nobody else may wait
   for children (no waitpid, no uv_spawn: libuv's own child watcher would race with it). */
struct cshim_reaper_s
{
  const cshim_reaper_ops_t *ops;
};

struct cshim_reaper_ops_s
{
  uint32_t struct_size; /* sizeof (cshim_reaper_ops_t) in the host */
  /* Call cb once when pid exits. If pid already exited and nobody had claimed it (the
     exit-before-start race: a container's init can die before its pid file is read), cb runs
     on the next loop iteration, never from inside watch. Returns 0 or -errno. */
  int (*watch)(cshim_reaper_t *reaper, pid_t pid, cshim_exit_cb cb, void *data, cshim_error_t *err);
  /* Forget a watch that has not fired yet (same pid, cb, data). */
  void (*unwatch)(cshim_reaper_t *reaper, pid_t pid, cshim_exit_cb cb, void *data);
  /* Be told of every exit, watched or not (after the watchers), e.g. to notice processes of a
     container that reparented to the subreaper. */
  int (*subscribe)(cshim_reaper_t *reaper, cshim_exit_cb cb, void *data, cshim_error_t *err);
  void (*unsubscribe)(cshim_reaper_t *reaper, cshim_exit_cb cb, void *data);
  /* Appended after 1.0, optional (absent or NULL: nothing counted): count a process this shim
     just forked. kind: "runtime", "logger",
     ... (NULL = "other"); command: e.g. the runtime's subcommand (NULL = none). Both borrowed
     for the call. cshim_spawn calls it for every fork. */
  void (*started)(cshim_reaper_t *reaper, pid_t pid, const char *kind, const char *command);
};

/* Size in SDK 1.0: smaller struct_size values are refused. */
#define CSHIM_REAPER_OPS_SIZE_1_0 CSHIM_SIZE_THROUGH(cshim_reaper_ops_t, unsubscribe)

/* Check a reaper before first use (cshim_spawn does): 0, or -EINVAL naming the reason. */
static inline int
cshim_reaper_check(const cshim_reaper_t *reaper, cshim_error_t *err)
{
  if (reaper == NULL || reaper->ops == NULL)
    return cshim_error_make(err, EINVAL, "reaper: none given");
  return cshim_struct_size_check("reaper", reaper->ops->struct_size, CSHIM_REAPER_OPS_SIZE_1_0,
                                 err);
}

/* Exit status as containerd reports it: exit code, or 128 + signal number. */
static inline unsigned
cshim_exit_status(int wait_status)
{
  if ((wait_status & 0x7f) == 0) /* WIFEXITED */
    return (unsigned)((wait_status >> 8) & 0xff);
  return 128u + (unsigned)(wait_status & 0x7f);
}

#ifdef __cplusplus
}
#endif
#endif
