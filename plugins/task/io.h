// SPDX-License-Identifier: Apache-2.0
// A process's stdio: FIFOs, files, logging binaries and terminals, copied on the loop.
#ifndef TASK_IO_H
#define TASK_IO_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <uv.h>

#include <cshim/error.h>
#include <cshim/log.h>
#include <cshim/reaper.h>
#include <cshim/runtime.h>
#include <cshim/state.h>

#include "types.h"

#define TASK_IO_DRAIN_TIMEOUT_MS 5000u
#define TASK_IO_BUFFER_SIZE (32u * 1024u)

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
   flushed), or when a copy is stuck: for a whole timeout_ms nothing came from a source that is
   not at EOF, or its FIFO's reader took nothing for many periods in a row (io.c). Output that
   moves is never cut; an output FIFO nobody reads is dropped. One waiter at a time;
   task_io_close cancels it. */
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

/* Live upgrade (upgrade.c). */
/* NULL when io can be handed over as it is, else why not (static). NULL-safe. */
const char *task_io_busy(const task_io_t *io);
/* Like task_io_busy, but what a crash snapshot can still describe (a drain waiting after an exit
   belongs to the operation the recovery redoes) is not busy. */
const char *task_io_crash_busy(const task_io_t *io);
/* Bytes read from a source and not yet written out, over io's copies (what a crash would lose;
   docs/live-upgrade.md). NULL-safe. */
size_t task_io_held(const task_io_t *io);
/* io's descriptors, flags and unwritten bytes as records of w. */
void task_io_save(const task_io_t *io, cshim_state_writer_t *w);
/* The io task_io_save described; copies resume once the loop runs. On failure *out may hold a
   partly restored io (the shim rolls back, nothing is freed; or the process is kept without
   it: task_io_close (*out), then task_io_drop_restored). */
int task_io_restore(uv_loop_t *loop, const cshim_logger_t *log, cshim_reaper_t *reaper,
                    const cshim_state_reader_t *state, task_io_t **out, cshim_error_t *err);
/* A record task_io_restore could not use, after a crash: every descriptor it names that is
   still the file saved is given up (task_fd_close; the host closes a number given up twice
   once), so that no pipe or FIFO stays open with nobody copying it. */
void task_io_drop_restored(const cshim_state_reader_t *state);

#endif
