// SPDX-License-Identifier: Apache-2.0
// The launch sequence of a process (init or exec): its IO ready, the runtime command, then the
// terminal the runtime hands back.
#include "launch.h"

#include <string.h>

#include <cshim/util.h>

#include "console.h"
#include "model.h"
#include "op.h"

void
task_process_io_opts(const task_process_t *p, task_io_opts_t *o)
{
  task_container_t *c = p->container;
  memset(o, 0, sizeof *o);
  o->stdin_ = p->stdin_;
  o->stdout_ = p->stdout_;
  o->stderr_ = p->stderr_;
  o->terminal = p->terminal;
  o->uid = c->opts.io_uid;
  o->gid = c->opts.io_gid;
  o->reaper = c->reaper;
  o->id = p->exec_id ? p->exec_id : c->id;
  o->namespace_ = c->env->namespace_;
  o->stdin_closed = p->stdin_closed;
}

static void
launch_finish(task_op_t *op, cshim_error_t *err)
{
  cshim_runtime_result_t result = {0};
  result.error = cshim_steal_pointer(err);
  task_op_run_done(op, &result);
  cshim_error_release(&result.error);
}

static void
launch_console_cb(void *data, cshim_error_t *err)
{
  launch_finish(data, err);
}

static void
launch_runtime_done(task_op_t *op, cshim_runtime_result_t *result)
{
  task_io_t *io = op->process->io;
  op->ran = true;
  if (result->error == NULL) {
    op->launched = true;
    if (task_io_await_console(io, TASK_CONSOLE_TIMEOUT_MS, launch_console_cb, op) > 0)
      return;
  }
  task_op_run_done(op, result);
}

static int
launch_runtime(task_op_t *op, cshim_error_t *err)
{
  task_io_t *io = op->process->io;
  int ret = op->launch_run(op, task_io_console_socket(io), err);
  if (ret < 0)
    return ret;
  /* The runtime holds its copies now; ours would keep the pipes from ever reaching EOF. */
  task_io_close_runtime_side(io);
  return 0;
}

static void
launch_ready_cb(void *data, cshim_error_t *err)
{
  task_op_t *op = data;
  if (*err == NULL)
    launch_runtime(op, err);
  if (*err)
    launch_finish(op, err);
}

int
task_launch(task_op_t *op,
            int (*run)(task_op_t *op, const char *console_socket, cshim_error_t *err),
            cshim_error_t *err)
{
  int ret;

  op->launch_run = run;
  task_op_step(op, launch_runtime_done);
  ret = task_io_ready(op->process->io, op->container->env->command_timeout_ms, launch_ready_cb, op,
                      err);
  if (ret < 0)
    return ret;
  if (ret > 0)
    return 0;
  return launch_runtime(op, err);
}
