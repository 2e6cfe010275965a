// SPDX-License-Identifier: Apache-2.0
// Tests of io.c: scheme classification and the stdio copies on a real loop (FIFOs with
// back-pressure, stdin with its keeper, file:// output, the drain timeout).
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cshim/util.h>

#include "io.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

struct fx
{
  uv_loop_t loop;
  char dir[64];
  char path[3][128];
  int waited;
  task_io_t *io; /* closed by teardown when a test failed before closing it */
};

static int
setup(void **state)
{
  struct fx *f = cshim_xmalloc0(sizeof *f);
  assert_int_equal(uv_loop_init(&f->loop), 0);
  snprintf(f->dir, sizeof f->dir, "/tmp/cshim-task-io-XXXXXX");
  assert_non_null(mkdtemp(f->dir));
  for (int i = 0; i < 3; i++)
    snprintf(f->path[i], sizeof f->path[i], "%s/fifo%d", f->dir, i);
  *state = f;
  return 0;
}

static int
rm_cb(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
  return flag == FTW_DP ? rmdir(path) : unlink(path);
}

static int
teardown(void **state)
{
  struct fx *f = *state;
  task_io_close(f->io);
  uv_run(&f->loop, UV_RUN_DEFAULT);
  assert_int_equal(uv_loop_close(&f->loop), 0);
  assert_int_equal(nftw(f->dir, rm_cb, 16, FTW_DEPTH | FTW_PHYS), 0);
  free(f);
  return 0;
}

static void
test_io_kind_follows_the_stdout_scheme(void **state)
{
  task_io_kind_t k;
  cshim_error_t err = NULL;

  assert_int_equal(task_io_kind("", "", "", &k, &err), 0);
  assert_int_equal(k, TASK_IO_NULL);
  assert_int_equal(task_io_kind(NULL, NULL, NULL, &k, &err), 0);
  assert_int_equal(k, TASK_IO_NULL);
  assert_int_equal(task_io_kind("/in", "", "", &k, &err), 0);
  assert_int_equal(k, TASK_IO_FIFO);
  assert_int_equal(task_io_kind("", "/run/containerd/fifo/1/x-stdout", "", &k, &err), 0);
  assert_int_equal(k, TASK_IO_FIFO);
  assert_int_equal(task_io_kind("", "fifo:///x", "", &k, &err), 0);
  assert_int_equal(k, TASK_IO_FIFO);
  assert_int_equal(task_io_kind("", "file:///var/log/x", "file:///var/log/x", &k, &err), 0);
  assert_int_equal(k, TASK_IO_FILE);
  assert_int_equal(task_io_kind("", "binary:///bin/logger?a=b", "", &k, &err), 0);
  assert_int_equal(k, TASK_IO_BINARY);
  assert_int_equal(task_io_kind("", "binary-v2:///bin/logger", "", &k, &err), 0);
  assert_int_equal(k, TASK_IO_BINARY);
  assert_int_equal(task_io_kind("", "http://x", "", &k, &err), -EINVAL);
  assert_non_null(strstr(err->msg, "unknown STDIO scheme"));
  cshim_error_release(&err);
}

static void
waited_cb(void *data)
{
  struct fx *f = data;
  f->waited++;
}

static void
run_once(struct fx *f)
{
  uv_run(&f->loop, UV_RUN_NOWAIT);
}

static void
test_io_fifo_copy_delivers_everything_with_a_slow_reader(void **state)
{
  struct fx *f = *state;
  const size_t total = 3 * 1024 * 1024 + 17;
  cshim_runtime_io_t rio;
  cshim_error_t err = NULL;
  task_io_t *io = NULL;
  unsigned char *got = cshim_xmalloc(total);
  size_t n = 0;
  int reader, status;
  pid_t child;

  assert_int_equal(mkfifo(f->path[1], 0600), 0);
  if (task_io_new(&f->loop, NULL, "", f->path[1], "", 0, 0, &io, &err) < 0)
    fail_msg("%s", err->msg);
  reader = open(f->path[1], O_RDONLY | O_NONBLOCK);
  assert_true(reader >= 0);
  assert_int_equal(task_io_start(io, &err), 0);
  task_io_runtime_fds(io, &rio);
  assert_int_equal(rio.stdin_fd, -1);
  assert_int_equal(rio.stderr_fd, -1);
  assert_true(rio.stdout_fd >= 0);

  child = fork();
  assert_true(child >= 0);
  if (child == 0) {
    unsigned char buf[8192];
    size_t off = 0;
    while (off < total) {
      size_t len = total - off < sizeof buf ? total - off : sizeof buf;
      for (size_t i = 0; i < len; i++)
        buf[i] = (unsigned char)((off + i) * 7);
      ssize_t w = write(rio.stdout_fd, buf, len);
      if (w <= 0)
        _exit(1);
      off += (size_t)w;
    }
    _exit(0);
  }
  task_io_close_runtime_side(io);

  /* A reader that takes at most 1000 bytes per loop turn: the copy must stall, not drop. */
  for (int spins = 0; spins < 2000000 && n < total; spins++) {
    ssize_t r = read(reader, got + n, total - n < 1000 ? total - n : 1000);
    if (r > 0)
      n += (size_t)r;
    run_once(f);
  }
  assert_int_equal(n, total);
  for (size_t i = 0; i < total; i++)
    if (got[i] != (unsigned char)(i * 7))
      fail_msg("byte %zu differs", i);
  assert_int_equal(waitpid(child, &status, 0), child);
  assert_int_equal(status, 0);

  task_io_wait(io, 5000, waited_cb, f);
  for (int i = 0; i < 1000 && !f->waited; i++)
    uv_run(&f->loop, UV_RUN_ONCE);
  assert_int_equal(f->waited, 1);
  /* Our writer is closed once the copy ended: the client sees EOF. */
  {
    char c;
    assert_int_equal(read(reader, &c, 1), 0);
  }
  task_io_close(io);
  close(reader);
  free(got);
}

static void
test_io_stdin_reaches_eof_only_after_close_stdin(void **state)
{
  struct fx *f = *state;
  cshim_runtime_io_t rio;
  cshim_error_t err = NULL;
  task_io_t *io = NULL;
  char buf[64];
  int writer, fl;
  ssize_t r;
  size_t n = 0;

  assert_int_equal(mkfifo(f->path[0], 0600), 0);
  if (task_io_new(&f->loop, NULL, f->path[0], "", "", 0, 0, &io, &err) < 0)
    fail_msg("%s", err->msg);
  assert_int_equal(task_io_start(io, &err), 0);
  task_io_runtime_fds(io, &rio);
  assert_true(rio.stdin_fd >= 0);
  fl = fcntl(rio.stdin_fd, F_GETFL);
  assert_int_equal(fl & O_NONBLOCK, 0); /* the process gets a blocking pipe */
  fcntl(rio.stdin_fd, F_SETFL, fl | O_NONBLOCK);

  writer = open(f->path[0], O_WRONLY | O_NONBLOCK);
  assert_true(writer >= 0);
  assert_int_equal(write(writer, "hello", 5), 5);
  close(writer); /* the client goes away: the keeper holds the FIFO open */
  for (int i = 0; i < 100000 && n < 5; i++) {
    run_once(f);
    r = read(rio.stdin_fd, buf + n, sizeof buf - n);
    if (r > 0)
      n += (size_t)r;
  }
  assert_int_equal(n, 5);
  assert_memory_equal(buf, "hello", 5);
  for (int i = 0; i < 100; i++)
    run_once(f);
  assert_int_equal(read(rio.stdin_fd, buf, sizeof buf), -1);
  assert_int_equal(errno, EAGAIN); /* no EOF yet */

  task_io_close_stdin(io);
  r = -1;
  for (int i = 0; i < 100000 && r != 0; i++) {
    run_once(f);
    r = read(rio.stdin_fd, buf, sizeof buf);
  }
  assert_int_equal(r, 0);
  task_io_close(io);
}

static void
test_io_file_uri_appends_both_streams_to_one_file(void **state)
{
  struct fx *f = *state;
  char uri[256], path[192];
  cshim_runtime_io_t rio;
  cshim_error_t err = NULL;
  task_io_t *io = NULL;
  struct stat st;
  char buf[64] = "";
  FILE *fp;

  snprintf(path, sizeof path, "%s/a b/c/out.log", f->dir);
  snprintf(uri, sizeof uri, "file://%s/a%%20b/c/out.log", f->dir);
  if (task_io_new(&f->loop, NULL, "", uri, uri, 0, 0, &io, &err) < 0)
    fail_msg("%s", err->msg);
  assert_int_equal(stat(path, &st), 0);
  assert_int_equal(st.st_mode & 0777, 0644);
  assert_int_equal(task_io_start(io, &err), 0);
  task_io_runtime_fds(io, &rio);
  assert_int_equal(write(rio.stdout_fd, "out\n", 4), 4);
  task_io_close_runtime_side(io);
  task_io_wait(io, 5000, waited_cb, f);
  for (int i = 0; i < 1000 && !f->waited; i++)
    uv_run(&f->loop, UV_RUN_ONCE);
  assert_int_equal(f->waited, 1);
  task_io_close(io);
  fp = fopen(path, "r");
  assert_non_null(fp);
  assert_int_equal(fread(buf, 1, sizeof buf - 1, fp), 4);
  fclose(fp);
  assert_string_equal(buf, "out\n");
}

static void
test_io_wait_gives_up_after_the_timeout(void **state)
{
  struct fx *f = *state;
  cshim_runtime_io_t rio;
  cshim_error_t err = NULL;
  task_io_t *io = NULL;
  uint64_t t0;
  int held;

  assert_int_equal(mkfifo(f->path[2], 0600), 0);
  if (task_io_new(&f->loop, NULL, "", "", f->path[2], 0, 0, &io, &err) < 0)
    fail_msg("%s", err->msg);
  assert_int_equal(task_io_start(io, &err), 0);
  task_io_runtime_fds(io, &rio);
  held = dup(rio.stderr_fd); /* a process that never closes stderr */
  task_io_close_runtime_side(io);
  t0 = uv_hrtime();
  task_io_wait(io, 100, waited_cb, f);
  while (!f->waited)
    uv_run(&f->loop, UV_RUN_ONCE);
  assert_true(uv_hrtime() - t0 >= 90 * 1000000ull);
  task_io_close(io);
  close(held);
}

static void
test_io_wait_extends_while_output_still_moves(void **state)
{
  struct fx *f = *state;
  const int chunks = 30;
  cshim_runtime_io_t rio;
  cshim_error_t err = NULL;
  task_io_t *io = NULL;
  char got[64 * 30];
  size_t n = 0;
  int reader, status;
  pid_t child;

  assert_int_equal(mkfifo(f->path[1], 0600), 0);
  if (task_io_new(&f->loop, NULL, "", f->path[1], "", 0, 0, &io, &err) < 0)
    fail_msg("%s", err->msg);
  reader = open(f->path[1], O_RDONLY | O_NONBLOCK);
  assert_true(reader >= 0);
  assert_int_equal(task_io_start(io, &err), 0);
  task_io_runtime_fds(io, &rio);
  child = fork();
  assert_true(child >= 0);
  if (child == 0) {
    char buf[64];
    memset(buf, 'x', sizeof buf);
    /* A process whose output outlasts the drain period but never stalls for a whole one. */
    for (int i = 0; i < chunks; i++) {
      if (write(rio.stdout_fd, buf, sizeof buf) != (ssize_t)sizeof buf)
        _exit(1);
      usleep(20 * 1000);
    }
    _exit(0);
  }
  task_io_close_runtime_side(io);
  task_io_wait(io, 300, waited_cb, f);
  while (!f->waited) {
    ssize_t r = read(reader, got + n, sizeof got - n);
    if (r > 0)
      n += (size_t)r;
    uv_run(&f->loop, UV_RUN_ONCE);
  }
  for (ssize_t r; (r = read(reader, got + n, sizeof got - n)) > 0;)
    n += (size_t)r;
  assert_int_equal(n, sizeof got);
  assert_int_equal(waitpid(child, &status, 0), child);
  assert_int_equal(status, 0);
  task_io_close(io);
  close(reader);
}

/* A child that writes `total` bytes of a known pattern to fd and exits 0 (1 if a write fails). */
static pid_t
spawn_writer(int fd, size_t total)
{
  pid_t child = fork();

  assert_true(child >= 0);
  if (child == 0) {
    unsigned char buf[8192];
    /* Like a process the runtime execs: none of the shim's descriptors (our FIFO reader). */
    for (int other = 3; other < 1024; other++)
      if (other != fd)
        close(other);
    for (size_t off = 0; off < total;) {
      size_t len = total - off < sizeof buf ? total - off : sizeof buf;
      ssize_t w;
      for (size_t i = 0; i < len; i++)
        buf[i] = (unsigned char)((off + i) * 13);
      w = write(fd, buf, len);
      if (w <= 0)
        _exit(1);
      off += (size_t)w;
    }
    _exit(0);
  }
  return child;
}

/* The process's stdout copied into a FIFO (a client's reader on it when reader is not NULL),
   the copy started and a child writing `total` bytes into it; the shim's side of the runtime's
   pipe closed. Returns the child. */
static pid_t
start_fifo_output(struct fx *f, size_t total, int *reader)
{
  cshim_runtime_io_t rio;
  cshim_error_t err = NULL;
  pid_t child;

  assert_int_equal(mkfifo(f->path[1], 0600), 0);
  if (task_io_new(&f->loop, NULL, "", f->path[1], "", 0, 0, &f->io, &err) < 0)
    fail_msg("%s", err->msg);
  if (reader) {
    *reader = open(f->path[1], O_RDONLY | O_NONBLOCK);
    assert_true(*reader >= 0);
  }
  assert_int_equal(task_io_start(f->io, &err), 0);
  task_io_runtime_fds(f->io, &rio);
  child = spawn_writer(rio.stdout_fd, total);
  task_io_close_runtime_side(f->io);
  return child;
}

/* The client's reader pauses for several drain periods in a row while output waits for it (ctr
   on a loaded machine): the drain waits for it, and every byte arrives. */
static void
test_io_wait_never_cuts_output_a_paused_reader_still_takes(void **state)
{
  struct fx *f = *state;
  const size_t total = 1024 * 1024;
  unsigned char *got = cshim_xmalloc(total);
  size_t n = 0;
  uint64_t pause_until;
  int reader, status;
  pid_t child = start_fifo_output(f, total, &reader);
  task_io_t *io = f->io;

  /* Delete's drain, 50 ms periods; the reader takes nothing for 6 of them (the old rule cut the
     output after one period without progress). */
  task_io_wait(io, 50, waited_cb, f);
  pause_until = uv_hrtime() + 300 * 1000000ull;
  while (uv_hrtime() < pause_until && !f->waited) {
    uv_run(&f->loop, UV_RUN_NOWAIT);
    usleep(1000);
  }
  assert_int_equal(f->waited, 0);
  while (!f->waited) {
    ssize_t r = read(reader, got + n, total - n);
    if (r > 0)
      n += (size_t)r;
    uv_run(&f->loop, UV_RUN_NOWAIT);
  }
  for (ssize_t r; n < total && (r = read(reader, got + n, total - n)) > 0;)
    n += (size_t)r;
  assert_int_equal(n, total);
  for (size_t i = 0; i < total; i++)
    if (got[i] != (unsigned char)(i * 13))
      fail_msg("byte %zu differs", i);
  assert_int_equal(waitpid(child, &status, 0), child);
  assert_int_equal(status, 0);
  f->io = NULL;
  task_io_close(io);
  close(reader);
  free(got);
}

/* Nobody reads the output FIFO (the client is gone): the drain does not wait on our own reader
   of it, it drops the rest, and the process's writes all complete. */
static void
test_io_wait_drops_output_nobody_reads(void **state)
{
  struct fx *f = *state;
  int status;
  /* More than the FIFO and the pipe hold: the writer blocks until the copy drops the rest. */
  pid_t child = start_fifo_output(f, 1024 * 1024, NULL);
  task_io_t *io = f->io;

  for (int i = 0; i < 1000; i++)
    run_once(f);
  /* A period far longer than the test: the drain must end by itself, not by the timer (which
     would leave the writer blocked until task_io_close, and it would then fail). */
  task_io_wait(io, 20000, waited_cb, f);
  while (!f->waited)
    uv_run(&f->loop, UV_RUN_ONCE);
  assert_int_equal(waitpid(child, &status, 0), child);
  assert_int_equal(status, 0);
  f->io = NULL;
  task_io_close(io);
}

/* A reader that keeps the FIFO open and never reads again: the drain gives up, but only after
   many periods without progress. */
static void
test_io_wait_gives_up_on_a_reader_that_never_reads(void **state)
{
  struct fx *f = *state;
  uint64_t t0;
  int reader, status;
  pid_t child = start_fifo_output(f, 1024 * 1024, &reader);
  task_io_t *io = f->io;

  t0 = uv_hrtime();
  task_io_wait(io, 20, waited_cb, f);
  while (!f->waited)
    uv_run(&f->loop, UV_RUN_ONCE);
  /* Timers never fire early: at least 12 periods (io.c's bound) went by. */
  assert_true(uv_hrtime() - t0 >= 12 * 20 * 1000000ull);
  f->io = NULL;
  task_io_close(io);
  /* Cut: the writer's remaining writes fail. */
  assert_int_equal(waitpid(child, &status, 0), child);
  assert_int_equal(WEXITSTATUS(status), 1);
  close(reader);
}

static void
test_io_rejects_missing_fifos_and_binary_loggers(void **state)
{
  struct fx *f = *state;
  cshim_error_t err = NULL;
  task_io_t *io = NULL;

  assert_int_equal(task_io_new(&f->loop, NULL, "", f->path[1], "", 0, 0, &io, &err), -ENOENT);
  assert_null(io);
  cshim_error_release(&err);
  assert_int_equal(task_io_new(&f->loop, NULL, "", "binary:///bin/true", "", 0, 0, &io, &err),
                   -ENOTSUP);
  cshim_error_release(&err);
  assert_int_equal(task_io_new(&f->loop, NULL, "", "", "", 0, 0, &io, &err), 0);
  assert_null(io); /* null IO */
}

int
main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_io_kind_follows_the_stdout_scheme),
      cmocka_unit_test_setup_teardown(test_io_fifo_copy_delivers_everything_with_a_slow_reader,
                                      setup, teardown),
      cmocka_unit_test_setup_teardown(test_io_stdin_reaches_eof_only_after_close_stdin, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_io_file_uri_appends_both_streams_to_one_file, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_io_wait_gives_up_after_the_timeout, setup, teardown),
      cmocka_unit_test_setup_teardown(test_io_wait_extends_while_output_still_moves, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_io_wait_never_cuts_output_a_paused_reader_still_takes,
                                      setup, teardown),
      cmocka_unit_test_setup_teardown(test_io_wait_drops_output_nobody_reads, setup, teardown),
      cmocka_unit_test_setup_teardown(test_io_wait_gives_up_on_a_reader_that_never_reads, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_io_rejects_missing_fifos_and_binary_loggers, setup,
                                      teardown),
  };
  signal(SIGPIPE, SIG_IGN);
  return cmocka_run_group_tests(tests, NULL, NULL);
}
