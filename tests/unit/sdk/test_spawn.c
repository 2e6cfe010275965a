// SPDX-License-Identifier: Apache-2.0
// Tests of cshim_spawn: exit delivery, exec failures, clean signal state and fd placement.
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <uv.h>

#include <cmocka.h>

#include <cshim/spawn.h>
#include <cshim/util.h>

#include "reaper.h"

/* ---- the child side: this binary re-executed with --child ---- */

static void
print_status_line(const char *key)
{
  char line[256];
  FILE *f = fopen("/proc/self/status", "re");
  if (f == NULL)
    return;
  while (fgets(line, sizeof line, f))
    if (strncmp(line, key, strlen(key)) == 0)
      fputs(line, stdout);
  fclose(f);
}

static int
child_describe(void)
{
  char cwd[PATH_MAX], target[PATH_MAX], path[64];
  DIR *d = opendir("/proc/self/fd");
  struct dirent *e;
  int sig = 0;

  print_status_line("SigIgn:");
  print_status_line("SigBlk:");
  if (getcwd(cwd, sizeof cwd))
    printf("cwd %s\n", cwd);
  printf("pgrp %s\n", getpgrp() == getpid() ? "own" : "inherited");
  prctl(PR_GET_PDEATHSIG, &sig);
  printf("pdeathsig %d\n", sig);
  while (d && (e = readdir(d))) {
    int fd;
    ssize_t n;
    if (e->d_name[0] == '.')
      continue;
    fd = atoi(e->d_name);
    if (fd == dirfd(d))
      continue;
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    n = readlink(path, target, sizeof target - 1);
    target[n < 0 ? 0 : n] = '\0';
    printf("fd %d %s\n", fd, target);
  }
  if (d)
    closedir(d);
  return 0;
}

/* A child in this process group and a session leader with a child of its own, all waiting
   forever; their three pids go to stdout, one line, once the session exists. */
static int
child_tree(void)
{
  int ready[2];
  pid_t member, leader;
  char buf[32];
  ssize_t n;

  if (pipe(ready) < 0)
    return 20;
  member = fork();
  if (member == 0)
    for (;;)
      pause();
  leader = fork();
  if (leader == 0) {
    pid_t grandchild;
    setsid();
    grandchild = fork();
    if (grandchild == 0)
      for (;;)
        pause();
    n = snprintf(buf, sizeof buf, "%d", (int)grandchild);
    if (write(ready[1], buf, (size_t)n) != n)
      _exit(21);
    for (;;)
      pause();
  }
  close(ready[1]);
  n = read(ready[0], buf, sizeof buf - 1);
  if (n <= 0 || member < 0 || leader < 0)
    return 22;
  buf[n] = '\0';
  printf("%d %d %s\n", (int)member, (int)leader, buf);
  fflush(stdout);
  for (;;)
    pause();
}

static int
child_main(int argc, char **argv)
{
  if (argc >= 3 && strcmp(argv[2], "tree") == 0)
    return child_tree();
  if (argc >= 3 && strcmp(argv[2], "describe") == 0)
    return child_describe();
  if (argc >= 4 && strcmp(argv[2], "exit") == 0)
    return atoi(argv[3]);
  if (argc >= 3 && strcmp(argv[2], "mark") == 0) {
    for (int i = 3; i < argc; i++) {
      char line[16];
      int fd = atoi(argv[i]);
      int len = snprintf(line, sizeof line, "%d\n", fd);
      if (write(fd, line, (size_t)len) != len)
        return fprintf(stderr, "mark %d: %m\n", fd), 10 + fd;
    }
    return 0;
  }
  return 100;
}

/* ---- the parent side ---- */

static char self_exe[PATH_MAX];

struct fixture
{
  uv_loop_t loop;
  host_reaper_t *reaper;
  int exits;
  pid_t exit_pid;
  int exit_status;
};

static int
setup(void **state)
{
  struct fixture *f = cshim_xmalloc0(sizeof *f);
  cshim_error_t err = NULL;
  assert_int_equal(uv_loop_init(&f->loop), 0);
  assert_int_equal(host_reaper_new(&f->loop, NULL, &f->reaper, &err), 0);
  *state = f;
  return 0;
}

static int
teardown(void **state)
{
  struct fixture *f = *state;
  host_reaper_close(f->reaper);
  uv_run(&f->loop, UV_RUN_DEFAULT);
  assert_int_equal(uv_loop_close(&f->loop), 0);
  free(f);
  return 0;
}

static void
exit_cb(void *data, pid_t pid, int status)
{
  struct fixture *f = data;
  f->exits++;
  f->exit_pid = pid;
  f->exit_status = status;
}

static void
tick_cb(uv_timer_t *t)
{
  (void)t;
}

static void
guard_closed_cb(uv_handle_t *h)
{
  (void)h;
}

/* Run the loop until *done or ms have passed; returns whether *done. */
static bool
run_until(struct fixture *f, const int *counter, int target, uint64_t ms)
{
  /* A repeating tick bounds every UV_RUN_ONCE: a one-shot guard could fire at the top of an
     iteration and leave the poll below it waiting forever. */
  uint64_t deadline = cshim_now_ns() + ms * 1000000ull;
  uv_timer_t tick;
  uv_timer_init(&f->loop, &tick);
  uv_timer_start(&tick, tick_cb, 10, 10);
  while (cshim_now_ns() < deadline && (counter == NULL || *counter < target))
    uv_run(&f->loop, UV_RUN_ONCE);
  uv_close((uv_handle_t *)&tick, guard_closed_cb);
  uv_run(&f->loop, UV_RUN_NOWAIT);
  return counter && *counter >= target;
}

static void
assert_no_zombie(void)
{
  siginfo_t si;
  memset(&si, 0, sizeof si);
  /* WNOWAIT: look without reaping (only the reaper reaps). */
  int r = waitid(P_ALL, 0, &si, WEXITED | WNOHANG | WNOWAIT);
  assert_true((r < 0 && errno == ECHILD) || (r == 0 && si.si_pid == 0));
}

static char *
read_all(int fd)
{
  size_t len = 0, cap = 4096;
  char *buf = cshim_xmalloc(cap);
  for (;;) {
    ssize_t n;
    if (len + 1 >= cap)
      buf = cshim_xrealloc(buf, cap *= 2);
    n = read(fd, buf + len, cap - len - 1);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      break;
    len += (size_t)n;
  }
  buf[len] = '\0';
  return buf;
}

/* Spawn `self --child describe` and return what it printed. */
static char *
describe_child(struct fixture *f, cshim_spawn_opts_t *opts)
{
  char *argv[] = {self_exe, "--child", "describe", NULL};
  cshim_error_t err = NULL;
  int out[2];
  pid_t pid;
  char *text;

  assert_int_equal(pipe2(out, O_CLOEXEC), 0);
  opts->path = self_exe;
  opts->argv = argv;
  opts->stdout_fd = out[1];
  f->exits = 0;
  assert_int_equal(cshim_spawn(host_reaper_api(f->reaper), opts, exit_cb, f, &pid, &err), 0);
  assert_null(err);
  close(out[1]);
  assert_true(run_until(f, &f->exits, 1, 10000));
  assert_int_equal(f->exit_pid, pid);
  assert_true(WIFEXITED(f->exit_status) && WEXITSTATUS(f->exit_status) == 0);
  text = read_all(out[0]);
  close(out[0]);
  return text;
}

static void
test_spawn_reports_exit_status_through_reaper(void **state)
{
  struct fixture *f = *state;
  char *argv[] = {self_exe, "--child", "exit", "7", NULL};
  cshim_spawn_opts_t opts = {.path = self_exe, .argv = argv};
  cshim_error_t err = NULL;
  pid_t pid = 0;

  opts.stdin_fd = opts.stdout_fd = opts.stderr_fd = -1;
  assert_int_equal(cshim_spawn(host_reaper_api(f->reaper), &opts, exit_cb, f, &pid, &err), 0);
  assert_true(pid > 0);
  assert_int_equal(f->exits, 0); /* never from inside the call */
  assert_true(run_until(f, &f->exits, 1, 10000));
  assert_int_equal(f->exit_pid, pid);
  assert_true(WIFEXITED(f->exit_status));
  assert_int_equal(WEXITSTATUS(f->exit_status), 7);
  assert_int_equal(cshim_exit_status(f->exit_status), 7);
  run_until(f, NULL, 0, 50);
  assert_int_equal(f->exits, 1);
}

static uint64_t
started(struct fixture *f, const char *kind, const char *command)
{
  const host_reaper_started_t *e = NULL;
  size_t n = host_reaper_started(f->reaper, &e);
  for (size_t i = 0; i < n; i++)
    if (strcmp(e[i].kind, kind) == 0 && strcmp(e[i].command, command) == 0)
      return e[i].count;
  return 0;
}

static void
test_spawn_counts_every_fork_by_kind(void **state)
{
  struct fixture *f = *state;
  char *argv[] = {self_exe, "--child", "exit", "0", NULL};
  cshim_spawn_opts_t opts = {.path = self_exe, .argv = argv, .kind = "runtime", .command = "state"};
  cshim_error_t err = NULL;
  pid_t pid;

  opts.stdin_fd = opts.stdout_fd = opts.stderr_fd = -1;
  assert_int_equal(started(f, "runtime", "state"), 0);
  for (int i = 0; i < 2; i++)
    assert_int_equal(cshim_spawn(host_reaper_api(f->reaper), &opts, exit_cb, f, &pid, &err), 0);
  assert_true(run_until(f, &f->exits, 2, 10000));
  assert_int_equal(started(f, "runtime", "state"), 2);
  /* a fork whose exec fails was still a process started */
  opts.path = "/nonexistent/runc";
  opts.command = "create";
  assert_int_equal(cshim_spawn(host_reaper_api(f->reaper), &opts, exit_cb, f, &pid, &err), -ENOENT);
  cshim_error_release(&err);
  assert_int_equal(started(f, "runtime", "create"), 1);
  /* no kind: "other", no command */
  opts.path = self_exe;
  opts.kind = opts.command = NULL;
  assert_int_equal(cshim_spawn(host_reaper_api(f->reaper), &opts, exit_cb, f, &pid, &err), 0);
  assert_true(run_until(f, &f->exits, 3, 10000));
  assert_int_equal(started(f, "other", ""), 1);
  assert_int_equal(started(f, "runtime", "state"), 2);
}

static void
test_spawn_searches_path_for_bare_names(void **state)
{
  struct fixture *f = *state;
  char *argv[] = {"true", NULL};
  cshim_spawn_opts_t opts = {.path = "true", .argv = argv};
  cshim_error_t err = NULL;
  pid_t pid;

  opts.stdin_fd = opts.stdout_fd = opts.stderr_fd = -1;
  assert_int_equal(cshim_spawn(host_reaper_api(f->reaper), &opts, exit_cb, f, &pid, &err), 0);
  assert_true(run_until(f, &f->exits, 1, 10000));
  assert_true(WIFEXITED(f->exit_status) && WEXITSTATUS(f->exit_status) == 0);
}

static void
test_spawn_exec_failure_is_an_error_and_never_calls_back(void **state)
{
  struct fixture *f = *state;
  char *argv[] = {"cshim-no-such-binary", "x", NULL};
  cshim_spawn_opts_t opts = {.path = "cshim-no-such-binary", .argv = argv};
  cshim_error_t err = NULL;
  pid_t pid = 0;

  opts.stdin_fd = opts.stdout_fd = opts.stderr_fd = -1;
  assert_int_equal(cshim_spawn(host_reaper_api(f->reaper), &opts, exit_cb, f, &pid, &err), -ENOENT);
  assert_non_null(err);
  assert_string_equal(err->msg, "exec `cshim-no-such-binary`: No such file or directory");
  cshim_error_release(&err);
  assert_int_equal(pid, 0);

  /* The failed child is reaped quietly. */
  run_until(f, NULL, 0, 300);
  assert_int_equal(f->exits, 0);
  assert_no_zombie();
}

static void
test_spawn_exec_of_non_executable_is_permission_denied(void **state)
{
  struct fixture *f = *state;
  char path[] = "/tmp/cshim-spawn-noexec-XXXXXX";
  int fd = mkstemp(path);
  char *argv[] = {path, NULL};
  cshim_spawn_opts_t opts = {.path = path, .argv = argv};
  cshim_error_t err = NULL;
  char *expected;
  pid_t pid;

  assert_true(fd >= 0);
  assert_int_equal(write(fd, "#!/bin/sh\n", 10), 10);
  close(fd);
  assert_int_equal(chmod(path, 0644), 0);
  opts.stdin_fd = opts.stdout_fd = opts.stderr_fd = -1;
  assert_int_equal(cshim_spawn(host_reaper_api(f->reaper), &opts, exit_cb, f, &pid, &err), -EACCES);
  cshim_xasprintf(&expected, "exec `%s`: Permission denied", path);
  assert_string_equal(err->msg, expected);
  free(expected);
  cshim_error_release(&err);
  unlink(path);
  run_until(f, NULL, 0, 200);
  assert_int_equal(f->exits, 0);
  assert_no_zombie();
}

static void
test_spawn_chdir_failure_names_the_directory(void **state)
{
  struct fixture *f = *state;
  char *argv[] = {self_exe, "--child", "exit", "0", NULL};
  cshim_spawn_opts_t opts = {.path = self_exe, .argv = argv, .cwd = "/cshim-no-such-dir"};
  cshim_error_t err = NULL;
  char *expected;
  pid_t pid;

  opts.stdin_fd = opts.stdout_fd = opts.stderr_fd = -1;
  assert_int_equal(cshim_spawn(host_reaper_api(f->reaper), &opts, exit_cb, f, &pid, &err), -ENOENT);
  cshim_xasprintf(&expected, "spawn `%s`: chdir `/cshim-no-such-dir`: No such file or directory",
                  self_exe);
  assert_string_equal(err->msg, expected);
  free(expected);
  cshim_error_release(&err);
  run_until(f, NULL, 0, 200);
  assert_int_equal(f->exits, 0);
}

static void
test_spawn_resets_ignored_signals_and_mask(void **state)
{
  struct fixture *f = *state;
  cshim_spawn_opts_t opts = {0};
  struct sigaction ign = {.sa_handler = SIG_IGN}, old_pipe, old_hup;
  sigset_t block, old_mask;
  char *text;

  sigaction(SIGPIPE, &ign, &old_pipe);
  sigaction(SIGHUP, &ign, &old_hup);
  sigemptyset(&block);
  sigaddset(&block, SIGUSR1);
  sigaddset(&block, SIGTERM);
  sigprocmask(SIG_BLOCK, &block, &old_mask);

  opts.stdin_fd = opts.stderr_fd = -1;
  text = describe_child(f, &opts);

  sigprocmask(SIG_SETMASK, &old_mask, NULL);
  sigaction(SIGPIPE, &old_pipe, NULL);
  sigaction(SIGHUP, &old_hup, NULL);

  assert_non_null(strstr(text, "SigIgn:\t0000000000000000\n"));
  assert_non_null(strstr(text, "SigBlk:\t0000000000000000\n"));
  free(text);
}

static void
test_spawn_child_has_only_stdio_and_extra_fds(void **state)
{
  struct fixture *f = *state;
  cshim_spawn_opts_t opts = {0};
  int leak = open("/dev/null", O_RDONLY); /* no CLOEXEC: must not reach the child anyway */
  int high = fcntl(leak, F_DUPFD, 200);
  int extra[2];
  char expected[128], link[64];
  struct stat st;
  char *text;
  int n_fd_lines = 0;

  assert_true(leak >= 0 && high >= 200);
  assert_int_equal(pipe(extra), 0);
  assert_int_equal(fstat(extra[0], &st), 0);
  opts.stdin_fd = -1;
  opts.stderr_fd = -1;
  opts.extra_fds = &extra[0];
  opts.n_extra_fds = 1;
  opts.cwd = "/tmp";
  opts.new_process_group = true;
  opts.parent_death_signal = SIGKILL;
  text = describe_child(f, &opts);
  close(leak);
  close(high);
  close(extra[0]);
  close(extra[1]);

  for (const char *p = text; (p = strstr(p, "\nfd ")); p++)
    n_fd_lines++;
  assert_int_equal(n_fd_lines, 4);
  assert_non_null(strstr(text, "\nfd 0 /dev/null\n"));
  assert_non_null(strstr(text, "\nfd 1 pipe:["));
  assert_non_null(strstr(text, "\nfd 2 /dev/null\n"));
  snprintf(link, sizeof link, "pipe:[%lu]", (unsigned long)st.st_ino);
  snprintf(expected, sizeof expected, "\nfd 3 %s\n", link);
  assert_non_null(strstr(text, expected));
  assert_non_null(strstr(text, "cwd /tmp\n"));
  assert_non_null(strstr(text, "pgrp own\n"));
  snprintf(expected, sizeof expected, "pdeathsig %d\n", SIGKILL);
  assert_non_null(strstr(text, expected));
  free(text);
}

static void
test_spawn_inherits_process_group_and_no_death_signal_by_default(void **state)
{
  struct fixture *f = *state;
  cshim_spawn_opts_t opts = {0};
  char *text;

  opts.stdin_fd = opts.stderr_fd = -1;
  text = describe_child(f, &opts);
  assert_non_null(strstr(text, "pgrp inherited\n"));
  assert_non_null(strstr(text, "pdeathsig 0\n"));
  free(text);
}

/* A reaper that records what cshim_spawn asks of it; the test itself waits for the child. */
struct stub_reaper
{
  cshim_reaper_t base;
  int n_calls;
  struct
  {
    char op;
    pid_t pid;
    cshim_exit_cb cb;
    void *data;
  } calls[8];
};

static int
stub_watch(cshim_reaper_t *r, pid_t pid, cshim_exit_cb cb, void *data, cshim_error_t *err)
{
  struct stub_reaper *s = (struct stub_reaper *)r;
  (void)err;
  s->calls[s->n_calls].op = 'w';
  s->calls[s->n_calls].pid = pid;
  s->calls[s->n_calls].cb = cb;
  s->calls[s->n_calls++].data = data;
  return 0;
}

static void
stub_unwatch(cshim_reaper_t *r, pid_t pid, cshim_exit_cb cb, void *data)
{
  struct stub_reaper *s = (struct stub_reaper *)r;
  s->calls[s->n_calls].op = 'u';
  s->calls[s->n_calls].pid = pid;
  s->calls[s->n_calls].cb = cb;
  s->calls[s->n_calls++].data = data;
}

static const cshim_reaper_ops_t stub_ops = {
    .struct_size = sizeof(cshim_reaper_ops_t), .watch = stub_watch, .unwatch = stub_unwatch};

static void
test_spawn_places_fds_that_overlap_their_targets(void **state)
{
  struct stub_reaper reaper = {.base = {&stub_ops}};
  int pipes[3][2], status, extra[3], saved[3], saved_flags[3];
  char *argv[] = {self_exe, "--child", "mark", "1", "3", "4", "5", NULL};
  cshim_spawn_opts_t opts = {.path = self_exe, .argv = argv};
  cshim_error_t err = NULL;
  char *a, *b, *c;
  pid_t pid;
  (void)state;

  /* This test needs fds 3-5 to itself: park whatever holds them (libuv keeps a process-wide
     pipe once signals were used) and put it back afterwards. */
  for (int fd = 3; fd <= 5; fd++) {
    saved_flags[fd - 3] = fcntl(fd, F_GETFD);
    saved[fd - 3] = saved_flags[fd - 3] >= 0 ? fcntl(fd, F_DUPFD_CLOEXEC, 300) : -1;
  }
  for (int i = 0; i < 3; i++) {
    int p[2];
    assert_int_equal(pipe2(p, O_CLOEXEC), 0);
    pipes[i][0] = fcntl(p[0], F_DUPFD_CLOEXEC, 100);
    pipes[i][1] = fcntl(p[1], F_DUPFD_CLOEXEC, 100);
    close(p[0]);
    close(p[1]);
  }
  /* A rotation: the child's 3 comes from our 4, its 4 from 5 and its 5 from 3; our 3 is also
     the child's stdout. */
  assert_int_equal(dup2(pipes[0][1], 4), 4);
  assert_int_equal(dup2(pipes[1][1], 5), 5);
  assert_int_equal(dup2(pipes[2][1], 3), 3);
  for (int i = 0; i < 3; i++)
    close(pipes[i][1]);
  extra[0] = 4;
  extra[1] = 5;
  extra[2] = 3;
  opts.extra_fds = extra;
  opts.n_extra_fds = 3;
  opts.stdin_fd = -1;
  opts.stdout_fd = 3;
  opts.stderr_fd = -1;

  assert_int_equal(cshim_spawn(&reaper.base, &opts, exit_cb, NULL, &pid, &err), 0);
  assert_int_equal(reaper.n_calls, 1);
  assert_int_equal(reaper.calls[0].op, 'w');
  assert_int_equal(reaper.calls[0].pid, pid);
  assert_int_equal(waitpid(pid, &status, 0), pid); /* the stub owns this child */
  assert_true(WIFEXITED(status));
  assert_int_equal(WEXITSTATUS(status), 0);
  for (int fd = 3; fd <= 5; fd++) {
    close(fd);
    if (saved[fd - 3] >= 0) {
      assert_int_equal(dup3(saved[fd - 3], fd, saved_flags[fd - 3] ? O_CLOEXEC : 0), fd);
      close(saved[fd - 3]);
    }
  }

  a = read_all(pipes[0][0]);
  b = read_all(pipes[1][0]);
  c = read_all(pipes[2][0]);
  assert_string_equal(a, "3\n");
  assert_string_equal(b, "4\n");
  assert_string_equal(c, "1\n5\n");
  free(a);
  free(b);
  free(c);
  for (int i = 0; i < 3; i++)
    close(pipes[i][0]);
}

static void
test_spawn_exec_failure_hands_the_exit_to_nobody(void **state)
{
  struct stub_reaper reaper = {.base = {&stub_ops}};
  char *argv[] = {"/cshim/no/such/file", NULL};
  cshim_spawn_opts_t opts = {.path = "/cshim/no/such/file", .argv = argv};
  cshim_error_t err = NULL;
  int marker, status;
  pid_t pid = 0, child;
  (void)state;

  opts.stdin_fd = opts.stdout_fd = opts.stderr_fd = -1;
  assert_int_equal(cshim_spawn(&reaper.base, &opts, exit_cb, &marker, &pid, &err), -ENOENT);
  assert_string_equal(err->msg, "exec `/cshim/no/such/file`: No such file or directory");
  cshim_error_release(&err);
  assert_int_equal(reaper.n_calls, 3);
  child = reaper.calls[0].pid;
  assert_true(child > 0);
  assert_int_equal(reaper.calls[0].op, 'w');
  assert_ptr_equal(reaper.calls[0].cb, exit_cb);
  assert_ptr_equal(reaper.calls[0].data, &marker);
  assert_int_equal(reaper.calls[1].op, 'u');
  assert_int_equal(reaper.calls[1].pid, child);
  assert_ptr_equal(reaper.calls[1].cb, exit_cb);
  assert_ptr_equal(reaper.calls[1].data, &marker);
  /* ... and a no-op watcher takes the exit so it is not kept as unclaimed */
  assert_int_equal(reaper.calls[2].op, 'w');
  assert_int_equal(reaper.calls[2].pid, child);
  assert_ptr_not_equal(reaper.calls[2].cb, exit_cb);
  assert_null(reaper.calls[2].data);
  assert_int_equal(waitpid(child, &status, 0), child);
  assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 127);
}

static void
test_spawn_rejects_bad_arguments(void **state)
{
  struct fixture *f = *state;
  char *argv[] = {"true", NULL};
  int bad = 1000;
  cshim_spawn_opts_t opts = {.path = "true", .argv = argv, .extra_fds = &bad, .n_extra_fds = 1};
  cshim_error_t err = NULL;
  pid_t pid;

  opts.stdin_fd = opts.stdout_fd = opts.stderr_fd = -1;
  assert_int_equal(cshim_spawn(host_reaper_api(f->reaper), &opts, exit_cb, f, &pid, &err), -EBADF);
  assert_non_null(strstr(err->msg, "fd 1000"));
  cshim_error_release(&err);
  assert_int_equal(cshim_spawn(host_reaper_api(f->reaper), &opts, NULL, f, &pid, &err), -EINVAL);
  cshim_error_release(&err);
}

static void
test_spawn_kill_tree_reaches_processes_that_left_the_group(void **state)
{
  struct fixture *f = *state;
  char *argv[] = {self_exe, "--child", "tree", NULL};
  cshim_spawn_opts_t opts = {
      .path = self_exe, .argv = argv, .stdin_fd = -1, .stderr_fd = -1, .new_process_group = true};
  cshim_error_t err = NULL;
  int out[2], member, leader, grandchild;
  char line[128];
  pid_t pid;
  FILE *fp;

  /* Like the shim: orphans come back to us and the reaper reaps them. */
  assert_int_equal(prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0), 0);
  assert_int_equal(pipe2(out, O_CLOEXEC), 0);
  opts.stdout_fd = out[1];
  f->exits = 0;
  assert_int_equal(cshim_spawn(host_reaper_api(f->reaper), &opts, exit_cb, f, &pid, &err), 0);
  close(out[1]);
  fp = fdopen(out[0], "r");
  assert_non_null(fp);
  assert_non_null(fgets(line, sizeof line, fp));
  fclose(fp);
  assert_int_equal(sscanf(line, "%d %d %d", &member, &leader, &grandchild), 3);
  assert_int_equal(getpgid(member), pid);
  assert_int_equal(getpgid(leader), leader);
  assert_int_equal(getpgid(grandchild), leader);

  cshim_spawn_kill_tree(pid);
  assert_true(run_until(f, &f->exits, 1, 10000));
  assert_true(WIFSIGNALED(f->exit_status) && WTERMSIG(f->exit_status) == SIGKILL);
  for (int i = 0;
       i < 300 && (kill(member, 0) == 0 || kill(leader, 0) == 0 || kill(grandchild, 0) == 0); i++)
    run_until(f, NULL, 0, 10);
  assert_int_equal(kill(member, 0), -1);
  assert_int_equal(kill(leader, 0), -1);
  assert_int_equal(kill(grandchild, 0), -1);
}

/* exec_status_fd: cshim_spawn returns once forked. A program that runs reads as 0 after its exit;
   one the kernel refuses (no known format) exits 127 with its reason in the fd; a missing or
   non-executable one is still refused at once, calling nothing back. The group is made before
   the return, whether or not the child has run. */
static void
test_spawn_without_waiting_for_the_exec(void **state)
{
  struct fixture *f = *state;
  char bad[] = "/tmp/cshim-spawn-noformat-XXXXXX";
  char *argv[] = {self_exe, "--child", "exit", "0", NULL};
  char *bad_argv[] = {bad, NULL};
  char *missing_argv[] = {"/cshim/no/such/program", NULL};
  cshim_spawn_opts_t opts = {.path = self_exe, .argv = argv, .new_process_group = true};
  cshim_error_t err = NULL;
  char *expected;
  int status_fd = -1, fd;
  pid_t pid = 0;

  opts.stdin_fd = opts.stdout_fd = opts.stderr_fd = -1;
  opts.exec_status_fd = &status_fd;
  assert_int_equal(cshim_spawn(host_reaper_api(f->reaper), &opts, exit_cb, f, &pid, &err), 0);
  assert_true(status_fd >= 0);
  assert_int_equal(getpgid(pid), pid);
  assert_true(run_until(f, &f->exits, 1, 10000));
  assert_int_equal(WEXITSTATUS(f->exit_status), 0);
  assert_int_equal(cshim_spawn_exec_status(status_fd, opts.path, &err), 0);
  assert_int_equal(fcntl(status_fd, F_GETFD), -1); /* closed */

  fd = mkstemp(bad);
  assert_true(fd >= 0);
  assert_int_equal(write(fd, "\x01\x02\x03\x04garbage", 11), 11);
  close(fd);
  assert_int_equal(chmod(bad, 0755), 0);
  opts.path = bad;
  opts.argv = bad_argv;
  status_fd = -1;
  assert_int_equal(cshim_spawn(host_reaper_api(f->reaper), &opts, exit_cb, f, &pid, &err), 0);
  assert_true(run_until(f, &f->exits, 2, 10000));
  assert_int_equal(WEXITSTATUS(f->exit_status), 127);
  assert_int_equal(cshim_spawn_exec_status(status_fd, opts.path, &err), -ENOEXEC);
  cshim_xasprintf(&expected, "exec `%s`: Exec format error", bad);
  assert_string_equal(err->msg, expected);
  free(expected);
  cshim_error_release(&err);
  unlink(bad);

  opts.path = missing_argv[0];
  opts.argv = missing_argv;
  status_fd = -1;
  assert_int_equal(cshim_spawn(host_reaper_api(f->reaper), &opts, exit_cb, f, &pid, &err), -ENOENT);
  assert_string_equal(err->msg, "exec `/cshim/no/such/program`: No such file or directory");
  cshim_error_release(&err);
  assert_int_equal(status_fd, -1);
  run_until(f, NULL, 0, 100);
  assert_int_equal(f->exits, 2);
  assert_no_zombie();
}

/* nice: the child runs with that much added to its niceness. */
static void
test_spawn_adds_nice(void **state)
{
  struct fixture *f = *state;
  char *argv[] = {"/bin/sleep", "60", NULL};
  cshim_spawn_opts_t opts = {.path = "/bin/sleep", .argv = argv, .nice = 7};
  cshim_error_t err = NULL;
  pid_t pid;
  int base, got;

  errno = 0;
  base = getpriority(PRIO_PROCESS, 0);
  assert_int_equal(errno, 0);
  opts.stdin_fd = opts.stdout_fd = opts.stderr_fd = -1;
  assert_int_equal(cshim_spawn(host_reaper_api(f->reaper), &opts, exit_cb, f, &pid, &err), 0);
  /* Set by the parent once the child has exec'd, before cshim_spawn returns. */
  errno = 0;
  got = getpriority(PRIO_PROCESS, (id_t)pid);
  assert_int_equal(errno, 0);
  assert_int_equal(got, base + 7 > 19 ? 19 : base + 7);
  kill(pid, SIGKILL);
  assert_true(run_until(f, &f->exits, 1, 10000));
}

/* The child runs in the parent's memory until it execs (CLONE_VM | CLONE_VFORK): nothing of the
   parent is copied, so writing the parent's memory after a spawn costs no fault. With fork(2)
   every page written afterwards would fault once per spawn (copy-on-write, or at least the
   write protection lifted): 256 faults per spawn for this 1 MiB. */
static void
test_spawn_copies_nothing_of_the_parent(void **state)
{
  struct fixture *f = *state;
  char *argv[] = {"/bin/true", NULL};
  cshim_spawn_opts_t opts = {.path = "/bin/true", .argv = argv};
  const size_t len = 1u << 20;
  cshim_autofree char *buf = cshim_xmalloc(len);
  cshim_error_t err = NULL;
  struct rusage before, after;
  enum
  {
    SPAWNS = 10
  };
  pid_t pid;

  opts.stdin_fd = opts.stdout_fd = opts.stderr_fd = -1;
  memset(buf, 1, len);
  /* The first spawn's own first-time faults (code and stack pages) are not counted. */
  assert_int_equal(cshim_spawn(host_reaper_api(f->reaper), &opts, exit_cb, f, &pid, &err), 0);
  memset(buf, 2, len);
  getrusage(RUSAGE_SELF, &before);
  for (int i = 0; i < SPAWNS; i++) {
    assert_int_equal(cshim_spawn(host_reaper_api(f->reaper), &opts, exit_cb, f, &pid, &err), 0);
    memset(buf, 3 + i, len);
  }
  getrusage(RUSAGE_SELF, &after);
  print_message("%ld minor faults for %d spawns, each followed by a write of 1 MiB\n",
                after.ru_minflt - before.ru_minflt, SPAWNS);
  assert_true(after.ru_minflt - before.ru_minflt < (long)(len / 4096));
  assert_true(run_until(f, &f->exits, SPAWNS + 1, 10000));
}

int
main(int argc, char **argv)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_spawn_reports_exit_status_through_reaper, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_spawn_searches_path_for_bare_names, setup, teardown),
      cmocka_unit_test_setup_teardown(test_spawn_counts_every_fork_by_kind, setup, teardown),
      cmocka_unit_test_setup_teardown(test_spawn_exec_failure_is_an_error_and_never_calls_back,
                                      setup, teardown),
      cmocka_unit_test_setup_teardown(test_spawn_exec_of_non_executable_is_permission_denied, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_spawn_chdir_failure_names_the_directory, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_spawn_resets_ignored_signals_and_mask, setup, teardown),
      cmocka_unit_test_setup_teardown(test_spawn_child_has_only_stdio_and_extra_fds, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(
          test_spawn_inherits_process_group_and_no_death_signal_by_default, setup, teardown),
      cmocka_unit_test(test_spawn_places_fds_that_overlap_their_targets),
      cmocka_unit_test(test_spawn_exec_failure_hands_the_exit_to_nobody),
      cmocka_unit_test_setup_teardown(test_spawn_rejects_bad_arguments, setup, teardown),
      cmocka_unit_test_setup_teardown(test_spawn_without_waiting_for_the_exec, setup, teardown),
      cmocka_unit_test_setup_teardown(test_spawn_adds_nice, setup, teardown),
      cmocka_unit_test_setup_teardown(test_spawn_copies_nothing_of_the_parent, setup, teardown),
      cmocka_unit_test_setup_teardown(test_spawn_kill_tree_reaches_processes_that_left_the_group,
                                      setup, teardown),
  };
  ssize_t n;

  if (argc >= 2 && strcmp(argv[1], "--child") == 0)
    return child_main(argc, argv);
  n = readlink("/proc/self/exe", self_exe, sizeof self_exe - 1);
  if (n <= 0)
    return 1;
  self_exe[n] = '\0';
  return cmocka_run_group_tests(tests, NULL, NULL);
}
