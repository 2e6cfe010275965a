// SPDX-License-Identifier: Apache-2.0
// Logging binaries (binary://, binary-v2://): started, watched, stopped, handed over.
#ifndef TASK_LOGGER_H
#define TASK_LOGGER_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include <cshim/error.h>
#include <cshim/log.h>
#include <cshim/reaper.h>
#include <cshim/state.h>

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

/* Live upgrade (upgrade.c). */
/* A helper that is starting or stopping cannot be handed over. */
bool task_logger_busy(const task_logger_t *l);
void task_logger_save(const task_logger_t *l, cshim_state_writer_t *w);
/* Take over the helper task_logger_save described: ready, its exit watched again. */
int task_logger_restore(uv_loop_t *loop, const cshim_logger_t *log, cshim_reaper_t *reaper,
                        const cshim_state_reader_t *state, task_logger_t **out, cshim_error_t *err);

#endif
