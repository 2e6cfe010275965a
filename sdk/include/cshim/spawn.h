// SPDX-License-Identifier: Apache-2.0
// Starting child processes without a shell, with clean signal state and fds, reaped by the host.
#ifndef CSHIM_SPAWN_H
#define CSHIM_SPAWN_H

#include <stdbool.h>
#include <sys/types.h>

#include <cshim/error.h>
#include <cshim/reaper.h>

#ifdef __cplusplus
extern "C" {
#endif

/* What to run. Everything is borrowed for the duration of cshim_spawn only. */
typedef struct cshim_spawn_opts_s
{
  const char *path;     /* executable; a name without '/' is searched in PATH */
  char *const *argv;    /* NULL-terminated; argv[0] included */
  char *const *envp;    /* NULL = inherit the shim's environment */
  const char *cwd;      /* NULL = inherit */
  int stdin_fd;         /* -1 = /dev/null */
  int stdout_fd;        /* -1 = /dev/null */
  int stderr_fd;        /* -1 = /dev/null */
  const int *extra_fds; /* become fds 3, 4, ... in the child (e.g. logging binaries) */
  size_t n_extra_fds;
  bool new_process_group;  /* setpgid (0, 0) */
  int parent_death_signal; /* prctl (PR_SET_PDEATHSIG); 0 = none */
  /* What the process is, for the host's count of started processes (cshim_reaper_ops_t
     started): "runtime" (command = its subcommand), "logger", ...; NULL = "other". Static or
     borrowed for the call. */
  const char *kind;
  const char *command; /* NULL = none */
  /* Appended in SDK 1.x. Added to the child's niceness as it execs (setpriority, best effort);
     0 = unchanged. For helpers that do not become container processes: a container would
     inherit it. */
  int nice;
  /* Appended in SDK 1.x. NULL: cshim_spawn waits until the child has called exec and knows
     whether it succeeded, and reports an exec failure itself. Non-NULL: it returns once the
     child has left the shim's memory (it runs in it until it calls exec, as with vfork),
     without waiting for the exec's outcome; a program that is not found or not executable is
     still reported at once, and any other exec failure becomes an exit with status 127 whose
     reason cshim_spawn_exec_status reads from *exec_status_fd (a close-on-exec fd the caller
     owns; that function closes it). */
  int *exec_status_fd;
} cshim_spawn_opts_t;

/* Start a child and exec (clone with CLONE_VM | CLONE_VFORK, as posix_spawn: the child runs in
   the shim's memory, the caller suspended, until it calls exec; no page tables are copied). In
   the child every signal disposition is reset to default, the signal mask is
   emptied, and every fd but 0-2 and the extra fds is closed. The exit is delivered through the
   host's reaper to cb (exactly once, on the loop), unless cshim_spawn fails, in which case cb
   is never called. An exec failure (ENOENT, EACCES...) is reported here as an error, not as an
   exit. Every fork is counted through the reaper's `started` op (when it has one), whether
   or not exec then succeeds. Returns 0 and sets *pid. */
int cshim_spawn(cshim_reaper_t *reaper, const cshim_spawn_opts_t *opts, cshim_exit_cb cb,
                void *data, pid_t *pid, cshim_error_t *err);

/* After the exit of a child started with exec_status_fd: 0 if it ran the program, or the
   error that kept it from doing so (the message cshim_spawn would have given, naming path).
   Closes fd (-1 is accepted and means the program ran). Does not block. */
int cshim_spawn_exec_status(int fd, const char *path, cshim_error_t *err);

/* SIGKILL a child started with new_process_group that has not been reaped yet (so pid is still
   its process group id), its whole process group, and every descendant that left the group
   (setsid, as `runc init` does). Each process is stopped before its children are read, so none
   can fork past the walk. The dead are reaped by the host's reaper: the shim is a child
   subreaper, so orphans come back to it. Reads /proc; no other blocking. */
void cshim_spawn_kill_tree(pid_t pid);

#ifdef __cplusplus
}
#endif
#endif
