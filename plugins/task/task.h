// SPDX-License-Identifier: Apache-2.0
// Private interfaces of the task plugin: service, containers, processes, IO, options, mounts.
#ifndef TASK_TASK_H
#define TASK_TASK_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>
#include <uv.h>

#include <cshim/config.h>
#include <cshim/error.h>
#include <cshim/log.h>
#include <cshim/publisher.h>
#include <cshim/reaper.h>
#include <cshim/runc_options.h>
#include <cshim/runtime.h>
#include <cshim/shutdown.h>
#include <cshim/state.h>
#include <cshim/ttrpc.h>

#include "containerd/task/v2/shim.pb-c.h"
#include "containerd/types/mount.pb-c.h"
#include "containerd/types/task.pb-c.h"

#define TASK_DEFAULT_RUNTIME "runc"
#define TASK_DEFAULT_RUNTIME_ROOT "/run/containerd/runc"
#define TASK_DEFAULT_COMMAND_TIMEOUT_MS 60000u
#define TASK_IO_DRAIN_TIMEOUT_MS 5000u
/* While output still moves, the drain bound is extended by whole periods, this many at most. */
#define TASK_IO_DRAIN_MAX_EXTENSIONS 6u
#define TASK_IO_BUFFER_SIZE (32u * 1024u)

/* Go's zero time (0001-01-01T00:00:00Z) in Unix seconds: "has not exited". */
#define TASK_GO_ZERO_TIME_SECONDS (-62135596800LL)

typedef struct task_service_s task_service_t;
typedef struct task_container_s task_container_t;
typedef struct task_process_s task_process_t;
typedef struct task_op_s task_op_t;
typedef struct task_io_s task_io_t;
typedef struct task_cgroup_s task_cgroup_t;
typedef struct task_oom_s task_oom_t;
typedef struct task_runtime_path_s task_runtime_path_t;

/* ---- options.c: the plugin's YAML section and per-container runtime options ---- */

typedef struct task_config_s
{
  char *runtime;      /* binary name or absolute path */
  char *runtime_root; /* without the namespace */
  bool systemd_cgroup;
  bool no_pivot_root;
  bool no_new_keyring;
  uint64_t command_timeout_ms;
  unsigned max_runtime_processes; /* runtime processes running at once; more wait in a queue */
  char **runtime_args;            /* `runtime_args`: global flags before every subcommand,
                                     NULL-terminated; NULL = none */
  size_t n_runtime_args;
} task_config_t;

/* Bounds of `runtime_args`: entries, and bytes of one entry. */
#define TASK_MAX_RUNTIME_ARGS 64u
#define TASK_MAX_RUNTIME_ARG_LEN 4096u

/* Upper bound of `max_runtime_processes`. */
#define TASK_MAX_RUNTIME_PROCESSES 65536u

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
   PATH the first time only (cached in svc for the shim's life, so no command pays a PATH walk).
   *out is borrowed from binary or svc. ENOENT when PATH has no such executable. */
int task_runtime_path(task_service_t *svc, const char *binary, const char **out,
                      cshim_error_t *err);
void task_runtime_paths_free(task_service_t *svc);
int task_container_make_runtime(task_service_t *svc, task_container_t *c, cshim_error_t *err);

/* ---- mount.c: rootfs mounts ---- */

/* Split mount options the way containerd does: known flags into *flags, propagation flags into
 *propagation, everything else joined with ',' into *data (malloc'ed, NULL when empty). */
int task_mount_parse_options(char *const *options, size_t n, unsigned long *flags,
                             unsigned long *propagation, char **data, cshim_error_t *err);

/* Mount every entry on target (+ entry->target when set), in order. On failure, what was mounted
   is unmounted again. On success *mounted is a malloc'ed list of *n_mounted paths to hand to
   task_mount_unmount_all. */
int task_mount_all(Containerd__Types__Mount *const *mounts, size_t n, const char *target,
                   char ***mounted, size_t *n_mounted, cshim_error_t *err);

/* Split an overlay `lowerdir` value into its layers as overlayfs does: ':' separates layers, a
   backslash keeps the character after it, "::" starts the data-only layers (the last *n_data of
   *layers). *layers is NULL-terminated, caller frees each and the array. An empty layer is
   EINVAL. Overlays whose data does not fit mount(2)'s page are mounted layer by layer with
   fsconfig `lowerdir+` / `datadir+` (Linux 6.8+), before that with task_mount_overlay_by_fd. */
int task_mount_split_lowerdir(const char *value, char ***layers, size_t *n_layers, size_t *n_data,
                              cshim_error_t *err);

/* Mount overlay m on target with mount(2), every lower layer given as /proc/self/fd/<n> of an
   O_PATH descriptor held for the call (the fallback for kernels without `lowerdir+`; about 200
   layers fit in the page). More than 500 layers (overlayfs's limit) is EINVAL; data still over a
   page fails as task_mount_parse_options does. Propagation flags are left to the caller. */
int task_mount_overlay_by_fd(const Containerd__Types__Mount *m, const char *target,
                             cshim_error_t *err);

/* Unmount the paths in reverse order (lazily when busy) and free the list. */
void task_mount_unmount_all(char **mounted, size_t n, const cshim_logger_t *log);

/* ---- io.c: a process's stdio ---- */

typedef void (*task_io_done_cb)(void *data);

/* What the process's stdio strings ask for. */
typedef enum
{
  TASK_IO_NULL = 0, /* all empty */
  TASK_IO_FIFO,     /* plain paths (or fifo://): FIFOs or regular files */
  TASK_IO_FILE,     /* file://PATH: stdout and stderr appended to one file */
  TASK_IO_BINARY,   /* binary:// or binary-v2:// logging helper */
} task_io_kind_t;

/* Classify by the stdout string, as the runc shim does. Unknown schemes fail with EINVAL. */
int task_io_kind(const char *stdin_, const char *stdout_, const char *stderr_, task_io_kind_t *kind,
                 cshim_error_t *err);

/* Open the client's side and create the pipes the runtime gets (owned by uid/gid when either is
   non-zero). Nothing is copied until task_io_start. */
int task_io_new(uv_loop_t *loop, const cshim_logger_t *log, const char *stdin_, const char *stdout_,
                const char *stderr_, uid_t uid, gid_t gid, task_io_t **out, cshim_error_t *err);
/* The fds to hand to the runtime (-1 = /dev/null). Borrowed. */
void task_io_runtime_fds(const task_io_t *io, cshim_runtime_io_t *out);
/* Close the shim's copies of the runtime's fds: once the runtime runs, only it holds them. */
void task_io_close_runtime_side(task_io_t *io);
/* Begin copying on the loop. */
int task_io_start(task_io_t *io, cshim_error_t *err);
/* Call cb once, on a later loop turn, when every output copy has finished (source at EOF and
   flushed) or timeout_ms has passed. One waiter at a time; task_io_close cancels it. */
void task_io_wait(task_io_t *io, uint64_t timeout_ms, task_io_done_cb cb, void *data);
/* Close the extra stdin writer: the copy into the process ends once the client's writers have. */
void task_io_close_stdin(task_io_t *io);
/* Stop copying and close every fd; the memory goes once the handles have closed. NULL-safe. */
void task_io_close(task_io_t *io);

/* Everything task_io_open needs. Strings are borrowed for the call. */
typedef struct task_io_opts_s
{
  const char *stdin_, *stdout_, *stderr_;
  bool terminal; /* a console socket for the runtime; stdin/stdout are copied through the pty */
  uid_t uid, gid;
  /* logging binaries (binary://, binary-v2://): without a reaper they are refused (ENOTSUP) */
  cshim_reaper_t *reaper;
  const char *id;         /* the helper's CONTAINER_ID */
  const char *namespace_; /* the helper's CONTAINER_NAMESPACE */
  /* CloseIO came first: no extra writer on the stdin FIFO, so its copy ends when the client's
     first writer leaves */
  bool stdin_closed;
} task_io_opts_t;

/* task_io_new for every kind of stdio: FIFOs, file://, logging binaries (the helper is started
   here; see task_io_ready), and terminals (see task_io_console_socket). *out stays NULL for null
   IO without a terminal. */
int task_io_open(uv_loop_t *loop, const cshim_logger_t *log, const task_io_opts_t *o,
                 task_io_t **out, cshim_error_t *err);

/* Called once; *err is NULL on success, otherwise it may be stolen (released after the call). */
typedef void (*task_io_ready_cb)(void *data, cshim_error_t *err);
/* Wait until the logging binary is ready (binary://: a byte or EOF on its ready pipe;
   binary-v2://: a byte), at most timeout_ms (0 = no limit). Returns 0 when there is nothing to
   wait for (cb is not called), 1 when cb will be called, <0 on error (cb is not called). */
int task_io_ready(task_io_t *io, uint64_t timeout_ms, task_io_ready_cb cb, void *data,
                  cshim_error_t *err);
/* The console socket to give the runtime (--console-socket), or NULL. Borrowed. */
const char *task_io_console_socket(const task_io_t *io);
/* After the runtime succeeded: wait (at most timeout_ms) for the pty master it sends, then start
   the copies through it. Returns 0 without a terminal (cb is not called), 1 when cb will be. */
int task_io_await_console(task_io_t *io, uint64_t timeout_ms, task_io_ready_cb cb, void *data);
/* TIOCSWINSZ on the terminal (width = columns, height = rows); remembered until the console
   arrives; a no-op without a terminal. */
int task_io_resize(task_io_t *io, uint32_t width, uint32_t height, cshim_error_t *err);

/* ---- console.c: the console socket a runtime sends a terminal's pty master on ---- */

typedef struct task_console_s task_console_t;
/* master: the pty master (callee owns it) or -1 with *err set (may be stolen). */
typedef void (*task_console_cb)(void *data, int master, cshim_error_t *err);

#define TASK_CONSOLE_TIMEOUT_MS 10000u

/* A listening socket `<$XDG_RUNTIME_DIR|$TMPDIR|/tmp>/ptyXXXXXX/pty.sock`; one connection is
   accepted on the loop, the socket and its directory are removed as soon as it arrives. */
int task_console_new(uv_loop_t *loop, const cshim_logger_t *log, task_console_t **out,
                     cshim_error_t *err);
/* The socket's path (borrowed; NULL once closed). */
const char *task_console_path(const task_console_t *c);
/* Call cb once (never from inside this call) with the master, or with an error when the runtime
   sent something else or nothing within timeout_ms. */
void task_console_receive(task_console_t *c, uint64_t timeout_ms, task_console_cb cb, void *data);
/* Cancel (cb is not called), close what is open, remove the socket. NULL-safe. */
void task_console_close(task_console_t *c);

/* ---- logger.c: logging binaries ---- */

typedef struct task_logger_s task_logger_t;
/* *err NULL = success; otherwise it may be stolen (released after the call). */
typedef void (*task_logger_cb)(void *data, cshim_error_t *err);

#define TASK_LOGGER_GRACE_MS 12000u

/* The helper's argv from binary://PATH?k=v&... (or binary-v2://): PATH, then each query key
   and its first value, keys sorted; percent-escapes decoded. *v2 tells the scheme. The argv is
   malloc'ed (free with task_logger_free_argv). */
int task_logger_parse_uri(const char *uri, char ***argv, bool *v2, cshim_error_t *err);
void task_logger_free_argv(char **argv);
/* Percent-decode [s, end) into a malloc'ed string; in a query '+' is a space (Go's
   url.QueryUnescape). NULL for a bad escape (not %XX, or %00). */
char *task_uri_unescape(const char *s, const char *end, bool query);
/* Start the helper with only CONTAINER_ID and CONTAINER_NAMESPACE in its environment, fd 3 =
   stdout_r, fd 4 = stderr_r, fd 5 = the write end of a ready pipe (stdout_r and stderr_r stay
   the caller's). */
int task_logger_spawn(uv_loop_t *loop, const cshim_logger_t *log, cshim_reaper_t *reaper,
                      const char *uri, const char *id, const char *namespace_, int stdout_r,
                      int stderr_r, task_logger_t **out, cshim_error_t *err);
pid_t task_logger_pid(const task_logger_t *l);
/* cb once the helper is ready, or failed to be within timeout_ms (0 = no limit). */
int task_logger_wait_ready(task_logger_t *l, uint64_t timeout_ms, task_logger_cb cb, void *data,
                           cshim_error_t *err);
/* Tear down: no more ready callback; SIGTERM unless it has exited, SIGKILL after grace_ms; cb
   (may be NULL) once it has exited or been killed, then l is freed. Calling it again before then
   replaces cb. */
void task_logger_stop(task_logger_t *l, uint64_t grace_ms, task_logger_cb cb, void *data);

/* ---- process.c: one process (init or exec) and its state machine ---- */

typedef enum
{
  TASK_PROC_CREATED = 1,
  TASK_PROC_RUNNING,
  TASK_PROC_STOPPED,
} task_proc_state_t;

typedef struct task_waiter_s
{
  struct task_waiter_s *next;
  cshim_ttrpc_call_t *call;
} task_waiter_t;

struct task_process_s
{
  task_container_t *container;
  task_process_t *next; /* in the container's exec list */
  char *exec_id;        /* NULL for the init process */
  pid_t pid;
  task_proc_state_t state;
  bool starting;     /* Start is running: exits wait until TaskStart is out */
  bool deleting;     /* Delete is running: an exit it causes publishes no TaskExit */
  bool exited;       /* exit recorded (maybe not yet published, see exit_pending) */
  bool exit_pending; /* exit recorded while starting */
  bool watching;     /* a reaper watch is in place */
  int wait_status;
  uint32_t exit_status;
  struct timespec exited_at;
  task_waiter_t *waiters;
  task_io_t *io;
  char *stdin_, *stdout_, *stderr_;
  bool terminal;
  char *spec_json;   /* exec: the OCI process (JSON, terminal set from the request) */
  bool stdin_closed; /* CloseIO{stdin} came (maybe before the IO existed) */
};

task_process_t *task_process_new(task_container_t *c, const char *exec_id, const char *stdin_,
                                 const char *stdout_, const char *stderr_, bool terminal);
/* Fails pending waiters with Unavailable, closes IO, drops the watch, frees. */
void task_process_free(task_process_t *p);
/* Watch p->pid through the reaper. */
int task_process_watch(task_process_t *p, cshim_error_t *err);
/* The reaper's callback for p (data = p). */
void task_process_exit_cb(void *data, pid_t pid, int wait_status);
/* Record an exit (from the reaper, or synthesised), then publish it unless Start is running. */
void task_process_set_exited(task_process_t *p, int wait_status, const struct timespec *when);
/* Publish a recorded exit: state STOPPED, TaskExit (not while deleting), waiters answered, and
   for the init of a container without its own pid namespace, kill what is left. */
void task_process_finish_exit(task_process_t *p);
/* Answer Wait now (stopped) or later. Takes the call. */
void task_process_add_waiter(task_process_t *p, cshim_ttrpc_call_t *call);
/* Id used in events: the exec id, or the container id for init. */
const char *task_process_event_id(const task_process_t *p);
/* Fill a timestamp: exited_at, or Go's zero time when not exited. */
void task_process_exited_at(const task_process_t *p, Google__Protobuf__Timestamp *ts);
/* containerd status for a runtime state string ("created", "running", ...). */
Containerd__V1__Types__Status task_status_from_string(const char *s);
/* Wall clock now. */
void task_now(struct timespec *ts);
/* The pid a runtime wrote to path; EIO "pid file `PATH` holds no pid" when it is not positive. */
int task_read_pid(const char *path, pid_t *pid, cshim_error_t *err);

/* ---- container.c: one container ---- */

struct task_container_s
{
  task_service_t *svc;
  task_container_t *next; /* in the service's table */
  char *id;
  char *bundle;
  char *rootfs; /* <bundle>/rootfs */
  char *pid_file;
  char *log_path;
  size_t n_mounts; /* the request's rootfs mounts, copied for TaskCreate */
  Containerd__Types__Mount **mounts;
  char **mounted; /* what this shim mounted, for teardown */
  size_t n_mounted;
  cshim_runc_options_t opts; /* effective options */
  cshim_runtime_t *rt;
  bool runc_model;       /* task_runtime_runc_model: State and Pids without the runtime */
  bool kill_all_on_exit; /* no private pid namespace */
  bool creating;         /* Create in progress: invisible to other calls */
  bool removed;          /* out of the table, freed once no op refers to it */
  task_process_t *init;
  task_process_t *execs;
  task_op_t *ops; /* in-flight operations that refer to this container */
  /* control.c, stats.c, oom.c, checkpoint.c */
  task_cgroup_t *cgroup;   /* init's cgroup, found once it exists; NULL = unknown */
  task_oom_t *oom;         /* OOM watch on that cgroup; NULL = none */
  bool pausing;            /* Pause is running: State says PAUSING */
  bool paused;             /* paused by Pause, until Resume */
  char *checkpoint;        /* CreateTaskRequest.checkpoint: Start restores from it; NULL = none */
  char *parent_checkpoint; /* CreateTaskRequest.parent_checkpoint (informational) */
};

/* An in-flight asynchronous operation on a container: a runtime command and what follows it. */
typedef void (*task_op_fn)(task_op_t *op, cshim_runtime_result_t *result);
struct task_op_s
{
  task_op_t *next, *prev;
  task_container_t *container;
  task_process_t *process;
  cshim_ttrpc_call_t *call; /* NULL for internal operations */
  task_op_fn done;
  const char *what; /* for logs */
  int signal;
  bool all;
  bool force;
  void *data;                    /* the op's own state, released with it by free_data */
  void (*free_data)(void *data); /* NULL = nothing to release */
  /* task_launch (exec.c): the runtime command that makes a process, with its IO and console */
  int (*launch_run)(task_op_t *op, const char *console_socket, cshim_error_t *err);
  task_op_fn launch_done;
  bool launched;        /* the runtime command succeeded (what follows may still fail) */
  bool ran;             /* the runtime command ran, whether it succeeded or not */
  uint64_t deadline_ns; /* the call's deadline (cshim_now_ns clock); 0 = none */
};

/* containerd's identifier rule: 1-76 chars, [A-Za-z0-9]+([._-][A-Za-z0-9]+)*. */
int task_validate_id(const char *id, cshim_error_t *err);

/* Whether config.json gives the container no private pid namespace (then its processes are
   killed when init exits). Unreadable spec: true, like the runc shim. */
bool task_spec_kill_all_on_exit(const char *bundle);

task_container_t *task_container_new(task_service_t *svc,
                                     const Containerd__Task__V2__CreateTaskRequest *req);
/* The process named by exec_id (NULL/"" = init), or NULL. */
task_process_t *task_container_process(task_container_t *c, const char *exec_id);
/* Take c out of the table; memory goes once no op refers to it (on a later loop turn). */
void task_container_remove(task_container_t *c);
/* Free now (ops must be gone). */
void task_container_free(task_container_t *c);

/* Operations. */
task_op_t *task_op_new(task_container_t *c, task_process_t *p, cshim_ttrpc_call_t *call,
                       task_op_fn done, const char *what);
/* The runtime's deadline_of for ops (data = op): the deadline of the op's call. */
uint64_t task_op_deadline(void *data);
/* The runtime callback for ops (data = op): unlinks the op, runs op->done, frees the op. */
void task_op_runtime_cb(void *data, cshim_runtime_result_t *result);
/* Unlink and free (the call, if any, must have been answered). */
void task_op_free(task_op_t *op);
/* Fail the op's call with err (released) and free the op. */
void task_op_fail(task_op_t *op, cshim_error_t *err);
/* Fail the op with the runtime's error (taken from result->error) and free the op. */
void task_op_fail_result(task_op_t *op, cshim_runtime_result_t *result);
/* Answer the op's call with resp (borrowed) and free the op. */
void task_op_reply(task_op_t *op, const ProtobufCMessage *resp);
/* Answer the op's call with google.protobuf.Empty and free the op. */
void task_op_reply_empty(task_op_t *op);
/* Answer call with google.protobuf.Empty. */
void task_reply_empty(cshim_ttrpc_call_t *call);

/* Internal: SIGKILL everything left in c (runtime kill --all), errors logged. */
void task_container_kill_all(task_container_t *c);

/* ---- exec.c: exec processes, terminals (ResizePty) and the launch sequence ---- */

/* Run op's runtime command once the IO of op->process is ready: run(op, console_socket, err)
   must start it with task_op_runtime_cb; when it has succeeded (op->launched), wait for the
   terminal. op->done then runs as usual, with result->error set if any step failed (the
   runtime may have succeeded: see op->launched). Returns <0 (op->done not called) when nothing
   could be started. */
int task_launch(task_op_t *op,
                int (*run)(task_op_t *op, const char *console_socket, cshim_error_t *err),
                cshim_error_t *err);
/* The IO options of p (container id for init, exec id for execs: the runc shim's CONTAINER_ID
   for a logging binary). */
void task_process_io_opts(const task_process_t *p, task_io_opts_t *o);

void task_handle_exec(cshim_ttrpc_call_t *call, const ProtobufCMessage *msg, void *data);
void task_handle_resize_pty(cshim_ttrpc_call_t *call, const ProtobufCMessage *msg, void *data);
/* Start and Delete of an exec process (p->exec_id set), after the shared checks. */
void task_exec_start(cshim_ttrpc_call_t *call, task_container_t *c, task_process_t *p);
void task_exec_delete(cshim_ttrpc_call_t *call, task_container_t *c, task_process_t *p);

/* ---- service.c / task.c: the plugin instance ---- */

struct task_service_s
{
  uv_loop_t *loop;
  const cshim_logger_t *log;
  cshim_reaper_t *reaper;
  cshim_publisher_t *publisher;
  cshim_shutdown_t *shutdown;
  char *namespace_;
  pid_t shim_pid; /* getpid() once: Connect answers it on every call */
  bool debug;
  task_config_t cfg;
  cshim_runtime_limit_t *runtime_limit; /* shared by every container's runtime */
  task_container_t *containers;
  task_container_t *removed;          /* out of the table, waiting for their last op */
  task_runtime_path_t *runtime_paths; /* task_runtime_path's cache */
  bool closing;
  bool shutdown_requested;
  /* A Delete came through containerd.task.v3.Task: containerd 2.x announced v3 and sends no
     Shutdown for the containers of a sandbox, so the shim exits when the last one is deleted
     (as with a Shutdown that finds no container). */
  bool api_v3;
  uv_timer_t gc_timer;       /* frees removed containers on a later loop turn */
  uv_timer_t shutdown_timer; /* asks for shutdown after the Shutdown reply has gone */
  int pending_closes;
  cshim_ttrpc_service_t service_v2;
  cshim_ttrpc_service_t service_v3;
  void (*free_cb)(task_service_t *svc);
};

/* The method table shared by containerd.task.v2.Task and containerd.task.v3.Task. */
extern const cshim_ttrpc_method_t task_methods[];
/* The same under containerd.task.v3.Task, whose Delete also sets api_v3. */
extern const cshim_ttrpc_method_t task_methods_v3[];

task_container_t *task_service_find(task_service_t *svc, const char *id);
/* The container id and its process exec_id (NULL/"" = init); NotFound worded as the runc shim
   words it. */
int task_service_lookup(task_service_t *svc, const char *id, const char *exec_id,
                        task_container_t **c, task_process_t **p, cshim_error_t *err);
/* Publish an event; failures are logged. */
void task_service_publish(task_service_t *svc, const char *topic, const ProtobufCMessage *event);
/* Schedule freeing of removed containers. */
void task_service_schedule_gc(task_service_t *svc);

/* Set up and tear down the instance (task.c delegates here; unit tests call them directly). */
int task_service_init(task_service_t *svc, uv_loop_t *loop, const cshim_logger_t *log,
                      cshim_reaper_t *reaper, cshim_publisher_t *publisher,
                      cshim_shutdown_t *shutdown, const char *namespace_,
                      const cshim_config_node_t *config, cshim_error_t *err);
/* Fail pending calls, free containers, close handles; svc is freed by free_cb once they are
   closed (free_cb may be NULL when svc is not heap memory the caller wants freed). */
void task_service_close(task_service_t *svc, void (*free_cb)(task_service_t *svc));

/* ---- cgroups.c: where a container's cgroup is, and its usage as cgroups Metrics ---- */

#define TASK_CGROUPS_V1_METRICS_TYPE "io.containerd.cgroups.v1.Metrics"
#define TASK_CGROUPS_V2_METRICS_TYPE "io.containerd.cgroups.v2.Metrics"

enum
{
  TASK_CGROUP_MEMORY,
  TASK_CGROUP_CPU,
  TASK_CGROUP_CPUACCT,
  TASK_CGROUP_PIDS,
  TASK_CGROUP_BLKIO,
  TASK_CGROUP_HUGETLB,
  TASK_CGROUP_FREEZER,
  TASK_CGROUP_V1_COUNT
};

struct task_cgroup_s
{
  bool unified;                   /* cgroup v2 only (else v1 hierarchies, hybrid included) */
  char *dir;                      /* v2: the cgroup's directory */
  char *v1[TASK_CGROUP_V1_COUNT]; /* v1: one directory per controller; NULL = not mounted */
  char *partitions;               /* /proc/partitions, for blkio device names */
  /* freezer.state (v1) or cgroup.freeze (v2), opened at the first State and read again with
     pread (and fstat: still linked?): two system calls per State instead of open, read, read,
     close and a path walk */
  int freezer_fd;
  bool freezer_fd_open;
};

/* Locate the cgroup from the text of /proc/<pid>/cgroup and a mountinfo (both borrowed). */
int task_cgroup_parse(const char *proc_cgroup, const char *mountinfo, bool unified,
                      task_cgroup_t **out, cshim_error_t *err);
/* The same for a live pid (v2 when /sys/fs/cgroup is cgroup2). */
int task_cgroup_load(pid_t pid, task_cgroup_t **out, cshim_error_t *err);
void task_cgroup_free(task_cgroup_t *cg);
/* The directory with the memory controller's files (v2 dir or v1 memory), or NULL. */
const char *task_cgroup_memory_dir(const task_cgroup_t *cg);
/* Read the usage into out: type_url (static) = TASK_CGROUPS_V1/V2_METRICS_TYPE, value.data
   malloc'ed (caller frees). ENOENT when the cgroup is gone. */
int task_cgroup_stats(const task_cgroup_t *cg, Google__Protobuf__Any *out, cshim_error_t *err);
/* What the cgroup's freezer says (runc and crun pause and resume through it). */
typedef enum
{
  TASK_FREEZER_THAWED = 0,
  TASK_FREEZER_FREEZING, /* asked to freeze, not frozen yet */
  TASK_FREEZER_FROZEN,
} task_freezer_t;

/* Read the freezer: v1 freezer.state, v2 cgroup.freeze and cgroup.events' "frozen". ENOENT when
   there is no freezer (not mounted, or the cgroup is gone). Never starts a process. */
int task_cgroup_freezer_state(task_cgroup_t *cg, task_freezer_t *out, cshim_error_t *err);
/* Every pid in the cgroup and the cgroups below it (cgroup.procs: v2, or one v1 hierarchy),
   as `runc ps` lists them. *pids is malloc'ed (caller frees); ENOENT when the cgroup is gone. */
int task_cgroup_pids(const task_cgroup_t *cg, pid_t **pids, size_t *n, cshim_error_t *err);
/* Read a small pseudo-file whole (malloc'ed, NUL-terminated). */
int task_cgroup_read_file(const char *path, char **out, cshim_error_t *err);
/* The value of "key N" in a flat-keyed file's text: 0, -ENOENT (no such key) or -EINVAL. */
int task_cgroup_kv(const char *text, const char *key, uint64_t *out);

/* ---- oom.c: TaskOOM from the memory cgroup (v1 eventfd, v2 memory.events oom_kill) ---- */

/* Watch c->cgroup for OOM kills and publish TaskOOM{c->id} for each; baseline = now. */
int task_oom_watch(task_container_t *c, cshim_error_t *err);
/* Look now, synchronously, for an OOM not yet published (init exited: its TaskOOM must precede
   TaskExit), publish it, and stop watching. No-op without a watch. */
void task_oom_flush(task_container_t *c);
/* Stop watching (handles close on a later loop turn). NULL-safe on c->oom. */
void task_oom_stop(task_container_t *c);

/* ---- control.c, stats.c, checkpoint.c: the remaining task RPCs ---- */

void task_handle_pause(cshim_ttrpc_call_t *call, const ProtobufCMessage *msg, void *data);
void task_handle_resume(cshim_ttrpc_call_t *call, const ProtobufCMessage *msg, void *data);
void task_handle_update(cshim_ttrpc_call_t *call, const ProtobufCMessage *msg, void *data);
void task_handle_stats(cshim_ttrpc_call_t *call, const ProtobufCMessage *msg, void *data);
void task_handle_checkpoint(cshim_ttrpc_call_t *call, const ProtobufCMessage *msg, void *data);

/* After the runtime created (or restored) c's init: find its cgroup and watch it for OOM
   (failures are logged: Stats then answers NotFound and no TaskOOM is sent). */
void task_container_track_cgroup(task_container_t *c);
/* Start for a container created from a checkpoint: `runtime restore` instead of `start`,
   then the usual TaskStart and Start reply. Takes op (answered exactly once). */
int task_checkpoint_restore(task_op_t *op, cshim_error_t *err);

/* ---- upgrade.c (with io.c, logger.c): live upgrade (docs/live-upgrade.md) ---- */

/* The plugin's hooks (task.c puts them in its descriptor). */
const char *task_upgrade_busy(void *instance);
int task_upgrade_save(void *instance, cshim_state_writer_t *w, cshim_error_t *err);
int task_upgrade_restore(void *instance, const cshim_state_reader_t *state, cshim_error_t *err);
/* NULL when io can be handed over as it is, else why not (static). NULL-safe. */
const char *task_io_busy(const task_io_t *io);
/* io's descriptors, flags and unwritten bytes as records of w. */
void task_io_save(const task_io_t *io, cshim_state_writer_t *w);
/* The io task_io_save described; copies resume once the loop runs. On failure *out may hold a
   partly restored io (the shim rolls back, nothing is freed). */
int task_io_restore(uv_loop_t *loop, const cshim_logger_t *log, cshim_reaper_t *reaper,
                    const cshim_state_reader_t *state, task_io_t **out, cshim_error_t *err);
/* The OOM watch's progress (oom_kill count already looked at, v1 credit); false without one. */
bool task_oom_progress(const task_container_t *c, uint64_t *reported, uint64_t *credit);
/* The v1 OOM watch's eventfd (handed over as it is), or -1 (none, or cgroup v2). */
int task_oom_eventfd(const task_container_t *c);
/* Watch c->cgroup (v1) through efd, registered by the previous image (the descriptor is taken
   over; on failure it is the caller's), then task_oom_resume. */
int task_oom_adopt(task_container_t *c, int efd, uint64_t reported, uint64_t credit,
                   cshim_error_t *err);
/* After the new image watched c again (baseline = now): go back to the saved progress and report
   the kills counted in between. */
void task_oom_resume(task_container_t *c, uint64_t reported, uint64_t credit);
/* Crash recovery: an interrupted Start, run again, waits for the recovery of the start (true:
   call taken); Create's undo paths for an interrupted create. */
bool task_upgrade_attach_start(task_container_t *c, task_process_t *p, cshim_ttrpc_call_t *call);
void task_upgrade_abandon_create(task_container_t *c);
void task_upgrade_cleanup_failed(task_container_t *c);
/* Bytes read from a source and not yet written out, over io's copies (what a crash would lose;
   docs/live-upgrade.md). NULL-safe. */
size_t task_io_held(const task_io_t *io);
/* Like task_io_busy, but what a crash snapshot can still describe (a drain waiting after an exit
   belongs to the operation the recovery redoes) is not busy. */
const char *task_io_crash_busy(const task_io_t *io);
/* A helper that is starting or stopping cannot be handed over. */
bool task_logger_busy(const task_logger_t *l);
void task_logger_save(const task_logger_t *l, cshim_state_writer_t *w);
/* Take over the helper task_logger_save described: ready, its exit watched again. */
int task_logger_restore(uv_loop_t *loop, const cshim_logger_t *log, cshim_reaper_t *reaper,
                        const cshim_state_reader_t *state, task_logger_t **out, cshim_error_t *err);

#endif
