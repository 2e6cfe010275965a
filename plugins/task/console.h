// SPDX-License-Identifier: Apache-2.0
// The console socket a runtime sends a terminal's pty master on.
#ifndef TASK_CONSOLE_H
#define TASK_CONSOLE_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include <cshim/error.h>
#include <cshim/log.h>

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

#endif
