// SPDX-License-Identifier: Apache-2.0
// Asynchronous wrapper of an OCI runtime CLI (runc, crun, runsc, youki: runc-compatible).
#ifndef CSHIM_RUNTIME_H
#define CSHIM_RUNTIME_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <uv.h>

#include <cshim/error.h>
#include <cshim/log.h>
#include <cshim/reaper.h>
#include <cshim/trace.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct cshim_runtime_s cshim_runtime_t;

/* A bound on runtime processes running at once, shared by any number of runtimes (a shim has one
   runtime per container): a command submitted while every slot is taken waits in a queue and
   starts when a slot comes free; nothing fails for having waited. The queue is FIFO per owner
   (see owner_of) and served round-robin between owners: a freed slot goes to the next owner
   that waits, so an owner with many commands holds at most its share of the slots while others
   wait. A queued command still
   honours its deadline (see deadline_of) and is dropped by cshim_runtime_free. Loop thread only. */
typedef struct cshim_runtime_limit_s cshim_runtime_limit_t;

/* max_running: slots (0 counts as 1). Caller owns the result (cshim_runtime_limit_free). */
cshim_runtime_limit_t *cshim_runtime_limit_new(unsigned max_running);
/* Nothing starts from the queue any more; the memory goes once no runtime uses the limit. Call
   it before freeing the runtimes that use it, so that freeing them starts nothing. NULL-safe. */
void cshim_runtime_limit_free(cshim_runtime_limit_t *limit);

typedef struct cshim_runtime_limit_stats_s
{
  unsigned max;     /* slots */
  unsigned running; /* runtime processes holding a slot */
  size_t queued;    /* commands waiting for a slot */
  uint64_t waited;  /* commands that had to wait, since the limit was made */
} cshim_runtime_limit_stats_t;

void cshim_runtime_limit_get_stats(const cshim_runtime_limit_t *limit,
                                   cshim_runtime_limit_stats_t *out);

/* How to run the runtime. Strings are copied by cshim_runtime_new. */
typedef struct cshim_runtime_config_s
{
  uv_loop_t *loop;
  cshim_reaper_t *reaper;
  const cshim_logger_t *log; /* may be NULL */
  const char *binary;        /* "runc" (PATH lookup) or an absolute path */
  const char *root;          /* --root; NULL = runtime default */
  bool systemd_cgroup;       /* --systemd-cgroup */
  bool debug;                /* --debug */
  uint64_t timeout_ms;       /* per command, from its start; 0 = none. On expiry the runtime and
                                everything it started are killed, error ETIMEDOUT */
  const char *criu; /* --criu <path> (runc: criu binary for checkpoint/restore); NULL = none */
  cshim_runtime_limit_t *limit; /* shared bound on running processes (borrowed until
                                   cshim_runtime_free); NULL = none */
  /* Optional: the monotonic time (cshim_now_ns) by which the command started with callback data
     `data` must have finished, e.g. the deadline of the ttrpc call it serves; 0 = none. Asked
     once per command, when it is submitted. A command past its deadline fails with ETIMEDOUT
     (DeadlineExceeded), whether it is still queued or running (then it is killed like a timed-out
     one). */
  uint64_t (*deadline_of)(void *data);
  /* Appended in SDK 1.x: global flags given after cshim's own ones and before the subcommand on
     every command (e.g. runsc's `--network=none`), NULL-terminated; NULL = none. Copied. */
  const char *const *global_args;
  /* Appended in SDK 1.x: a span per command ("<binary> <subcommand>", attribute container.id,
     error status when it fails) as a child of span_of(data), the span of the work the command
     serves (e.g. cshim_tracer_call_span of its ttrpc call); a command for which span_of returns
     NULL is not traced. tracer is borrowed until cshim_runtime_free; NULL (or span_of NULL) =
     no spans. */
  cshim_tracer_t *tracer;
  cshim_span_t *(*span_of)(void *data);
  /* Appended in SDK 1.x. Optional: who a command with callback data `data` is for, e.g. the
     ttrpc connection of the call it serves (cshim_ttrpc_call_connection); 0 = the shim itself.
     Asked once per command, when it is submitted. The limit's queue is served round-robin
     between owners (FIFO within one), so one owner cannot take every slot while others wait. */
  uint64_t (*owner_of)(void *data);
  /* Appended in SDK 1.x. Added to the niceness of the commands that start no container
     process (kill, delete, state, ps, update, pause, resume, events, features, checkpoint):
     under CPU pressure they yield to the shim's loop and to the containers. Never applied to
     create, exec, start and restore, whose niceness a container would inherit. 0 = none. */
  int nice;
} cshim_runtime_config_t;

/* Result of one command, borrowed by the callback for its duration only. */
typedef struct cshim_runtime_result_s
{
  int wait_status;     /* raw wait status of the runtime process */
  cshim_error_t error; /* NULL on success (exit 0); otherwise a clear message built from the
                          runtime's --log JSON / stderr, e.g. "runc create: <msg>"; the callback
                          may steal it (set to NULL) */
  const char *out;     /* captured stdout (NUL-terminated), for state/ps/features/events */
  size_t out_len;
} cshim_runtime_result_t;

typedef void (*cshim_runtime_cb)(void *data, cshim_runtime_result_t *result);

/* Stdio given to the container process (create/exec/restore); -1 = /dev/null. */
typedef struct cshim_runtime_io_s
{
  int stdin_fd, stdout_fd, stderr_fd;
} cshim_runtime_io_t;

int cshim_runtime_new(const cshim_runtime_config_t *cfg, cshim_runtime_t **out, cshim_error_t *err);
/* Commands still running are killed (with everything they started), queued ones are dropped;
   their callbacks are not called. */
void cshim_runtime_free(cshim_runtime_t *rt);

/* Each command below starts the runtime (or queues it behind the limit) and returns 0 at once; cb
   is called exactly once when it finishes (never from inside the call). On a non-zero return cb
   is never called. The runtime runs in its own process group; a command that times out or is
   abandoned is killed with its group and every process it started (see cshim_spawn_kill_tree).
   Captured output is read to its end once the runtime has exited; more than 1 MiB of stdout fails
   the command with EMSGSIZE.
   `log_path` (the runtime's --log, JSON format) is used to build clear error messages; NULL =
   stderr only. */

typedef struct cshim_runtime_create_opts_s
{
  const char *bundle;
  const char *pid_file;
  const char *console_socket; /* NULL = no terminal */
  const char *log_path;
  bool no_pivot;
  bool no_new_keyring;
  bool detach;
  cshim_runtime_io_t io;
  const char *criu_image_path; /* restore only */
  const char *criu_work_path;  /* restore only */
} cshim_runtime_create_opts_t;

int cshim_runtime_create(cshim_runtime_t *rt, const char *id,
                         const cshim_runtime_create_opts_t *opts, cshim_runtime_cb cb, void *data,
                         cshim_error_t *err);
int cshim_runtime_start(cshim_runtime_t *rt, const char *id, const char *log_path,
                        cshim_runtime_cb cb, void *data, cshim_error_t *err);

typedef struct cshim_runtime_exec_opts_s
{
  const char *process_json; /* path of the OCI process JSON (--process) */
  const char *pid_file;
  const char *console_socket;
  const char *log_path;
  bool detach;
  cshim_runtime_io_t io;
} cshim_runtime_exec_opts_t;

int cshim_runtime_exec(cshim_runtime_t *rt, const char *id, const cshim_runtime_exec_opts_t *opts,
                       cshim_runtime_cb cb, void *data, cshim_error_t *err);
int cshim_runtime_kill(cshim_runtime_t *rt, const char *id, int signal, bool all,
                       const char *log_path, cshim_runtime_cb cb, void *data, cshim_error_t *err);
int cshim_runtime_delete(cshim_runtime_t *rt, const char *id, bool force, const char *log_path,
                         cshim_runtime_cb cb, void *data, cshim_error_t *err);
/* result->out holds the state JSON; see cshim_runtime_parse_state. */
int cshim_runtime_state(cshim_runtime_t *rt, const char *id, cshim_runtime_cb cb, void *data,
                        cshim_error_t *err);
/* `ps --format json`: result->out is a JSON array of pids; see cshim_runtime_parse_ps. */
int cshim_runtime_ps(cshim_runtime_t *rt, const char *id, cshim_runtime_cb cb, void *data,
                     cshim_error_t *err);
int cshim_runtime_pause(cshim_runtime_t *rt, const char *id, cshim_runtime_cb cb, void *data,
                        cshim_error_t *err);
int cshim_runtime_resume(cshim_runtime_t *rt, const char *id, cshim_runtime_cb cb, void *data,
                         cshim_error_t *err);
/* resources_json: path of a LinuxResources JSON file (`update --resources`). */
int cshim_runtime_update(cshim_runtime_t *rt, const char *id, const char *resources_json,
                         cshim_runtime_cb cb, void *data, cshim_error_t *err);

typedef struct cshim_runtime_checkpoint_opts_s
{
  const char *image_path;
  const char *work_path;
  const char *parent_path;
  bool leave_running; /* !exit */
  bool tcp_established;
  bool ext_unix_sk;
  bool shell_job;
  bool file_locks;
  const char *const *empty_ns; /* NULL-terminated */
  const char *cgroups_mode;    /* NULL = default */
  const char *log_path;
} cshim_runtime_checkpoint_opts_t;

int cshim_runtime_checkpoint(cshim_runtime_t *rt, const char *id,
                             const cshim_runtime_checkpoint_opts_t *opts, cshim_runtime_cb cb,
                             void *data, cshim_error_t *err);
/* `restore --detach --bundle ... --image-path ...` (opts->criu_image_path). */
int cshim_runtime_restore(cshim_runtime_t *rt, const char *id,
                          const cshim_runtime_create_opts_t *opts, cshim_runtime_cb cb, void *data,
                          cshim_error_t *err);
/* `features`: result->out holds the features JSON. */
int cshim_runtime_features(cshim_runtime_t *rt, cshim_runtime_cb cb, void *data,
                           cshim_error_t *err);
/* `events --stats <id>`: result->out holds one stats JSON object. */
int cshim_runtime_stats(cshim_runtime_t *rt, const char *id, cshim_runtime_cb cb, void *data,
                        cshim_error_t *err);

/* The process of the unfinished command submitted with callback data `data` (live upgrade: a
   crash snapshot records it so the next image can wait for it). Returns 1 when it has been
   started (*pid set; *exited and *wait_status tell whether it was reaped and how), 0 when there
   is no such command or it is still queued (nothing ran). Appended after 1.0. */
int cshim_runtime_command_process(const cshim_runtime_t *rt, const void *data, pid_t *pid,
                                  bool *exited, int *wait_status);

/* Parsers for the outputs above. */
typedef struct cshim_runtime_state_s
{
  char status[16]; /* "created", "running", "stopped", "paused", "pausing", ... */
  pid_t pid;
  char bundle[4096];
} cshim_runtime_state_t;

int cshim_runtime_parse_state(const char *json, cshim_runtime_state_t *out, cshim_error_t *err);
/* *pids is malloc'ed; caller frees. */
int cshim_runtime_parse_ps(const char *json, pid_t **pids, size_t *n, cshim_error_t *err);

/* Read a pid file written by the runtime (decimal, maybe without newline). Small regular
   file on local disk: read synchronously. */
int cshim_read_pid_file(const char *path, pid_t *pid, cshim_error_t *err);

#ifdef __cplusplus
}
#endif
#endif
