// SPDX-License-Identifier: Apache-2.0
// A container process: its exit, the Wait calls pending on it, and the events it reports.
#ifndef TASK_PROCESS_H
#define TASK_PROCESS_H

#include <stdbool.h>
#include <sys/types.h>
#include <time.h>

#include <cshim/error.h>
#include <cshim/ttrpc.h>

#include "containerd/types/task.pb-c.h"
#include "google/protobuf/timestamp.pb-c.h"

#include "model.h"

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
/* p (its pid set) has started: CREATED becomes RUNNING and TaskStart (init) or TaskExecStarted
   (exec) is published. */
void task_process_started(task_process_t *p);
/* Answer Wait now (stopped) or later. Takes the call. */
void task_process_add_waiter(task_process_t *p, cshim_ttrpc_call_t *call);
/* Fail every pending Wait on p with grpc_code and why. */
void task_process_fail_waiters(task_process_t *p, int grpc_code, const char *why);
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

#endif
