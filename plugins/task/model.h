// SPDX-License-Identifier: Apache-2.0
// The task plugin's data model: the records of containers and processes (behaviour in container.c,
// process.c).
#ifndef TASK_MODEL_H
#define TASK_MODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>
#include <uv.h>

#include <cshim/list.h>
#include <cshim/log.h>
#include <cshim/reaper.h>
#include <cshim/runc_options.h>
#include <cshim/runtime.h>
#include <cshim/ttrpc.h>

#include "containerd/types/mount.pb-c.h"

#include "events.h"
#include "types.h"

/* Go's zero time (0001-01-01T00:00:00Z) in Unix seconds: "has not exited". */
#define TASK_GO_ZERO_TIME_SECONDS (-62135596800LL)

/* ---- one process (init or exec) ---- */

typedef enum
{
  TASK_PROC_CREATED = 1,
  TASK_PROC_RUNNING,
  TASK_PROC_STOPPED,
} task_proc_state_t;

typedef struct task_waiter_s
{
  cshim_list_t link; /* in the process's waiters, oldest first */
  cshim_ttrpc_call_t *call;
} task_waiter_t;

struct task_process_s
{
  task_container_t *container;
  cshim_list_t link; /* in the container's execs (not the init process) */
  char *exec_id;     /* NULL for the init process */
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
  cshim_list_t waiters; /* Wait calls pending on the exit (task_waiter_t.link) */
  task_io_t *io;
  char *stdin_, *stdout_, *stderr_;
  bool terminal;
  char *spec_json;   /* exec: the OCI process (JSON, terminal set from the request) */
  bool stdin_closed; /* CloseIO{stdin} came (maybe before the IO existed) */
  /* State's last answer, packed (queries.c), valid while what may change in it (the status and
     the fields below) is as when it was packed; the rest (ids, paths) is fixed at creation. */
  uint8_t *state_packed;
  size_t state_packed_len;
  struct
  {
    int status;
    pid_t pid;
    uint32_t exit_status;
    bool exited;
    struct timespec exited_at;
  } state_key;
};

/* ---- one container ---- */

struct task_container_s
{
  task_service_t *svc; /* opaque here: for the handlers, never for the data model */
  /* what the container and its processes run with (the service's, borrowed); loop, log, reaper
     and events are env's, copied for brevity */
  const task_env_t *env;
  uv_loop_t *loop;
  const cshim_logger_t *log;
  cshim_reaper_t *reaper;
  const task_events_t *events;
  cshim_list_t link; /* in the service's containers, or its removed ones */
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
  cshim_list_t execs; /* task_process_t.link, in the order they were added */
  cshim_list_t ops;   /* in-flight operations that refer to this container (task_op_t.link) */
  /* control.c, stats.c, oom.c, checkpoint.c */
  task_cgroup_t *cgroup; /* init's cgroup, found once it exists; NULL = unknown */
  /* The freezer as last read, at freezer_ms of svc->now_ms; not kept (freezer_kept false) when
     unread, unreadable, or the shim paused or resumed since: State reads it at most once per
     millisecond, not once per call. */
  uint64_t freezer_ms;
  bool freezer_kept;
  int freezer_seen;        /* task_freezer_t */
  task_oom_t *oom;         /* OOM watch on that cgroup; NULL = none */
  bool pausing;            /* Pause is running: State says PAUSING */
  bool paused;             /* paused by Pause, until Resume */
  char *checkpoint;        /* CreateTaskRequest.checkpoint: Start restores from it; NULL = none */
  char *parent_checkpoint; /* CreateTaskRequest.parent_checkpoint (informational) */
};

#endif
