// SPDX-License-Identifier: Apache-2.0
// cshim_spawn: start a program with clean signal state and fds, reaped by the host. The child
// shares the shim's memory until it execs (clone with CLONE_VM | CLONE_VFORK, as posix_spawn
// does): no page tables are copied and no page is copied on write afterwards.
#define _GNU_SOURCE
#include <cshim/spawn.h>
#include <cshim/util.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

/* What the child reports through the error pipe when it cannot reach exec. */
enum child_stage
{
  STAGE_FDS = 1,
  STAGE_SETPGID,
  STAGE_PDEATHSIG,
  STAGE_CHDIR,
  STAGE_EXEC,
};

struct child_failure
{
  int32_t stage;
  int32_t errnum;
};

/* Everything the child needs, prepared by the parent: between clone and exec the child only
   makes async-signal-safe calls, so nothing there may allocate. It runs in the parent's memory
   while the parent is suspended (CLONE_VFORK): what it writes (errno, tmp_fds) the parent sees,
   which is harmless, and it must not return or unwind into the parent's frames. */
struct child_args
{
  char *const *candidates; /* executable paths to try, in PATH order */
  char *const *argv;
  char *const *envp;
  const char *cwd;
  int *src_fds; /* n_fds sources: the child's 0, 1, 2, 3... */
  int *tmp_fds; /* scratch space of n_fds ints */
  int n_fds;
  int err_fd;
  bool new_process_group;
  int parent_death_signal;
  pid_t parent;
};

/* What runs in the child, on a stack inside the parent's frame and with the parent's memory:
   not instrumented by AddressSanitizer, whose redzones and stack bookkeeping would be written
   into the parent's shadow memory for frames that never return. */
#if defined(__SANITIZE_ADDRESS__)
#define CHILD_CODE __attribute__((no_sanitize_address))
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define CHILD_CODE __attribute__((no_sanitize_address))
#endif
#endif
#ifndef CHILD_CODE
#define CHILD_CODE
#endif

CHILD_CODE static void __attribute__((noreturn)) child_fail(int err_fd, int stage, int errnum)
{
  struct child_failure f = {.stage = stage, .errnum = errnum};

  /* If the report cannot be written the parent sees exit status 127 instead. */
  (void)CSHIM_RETRY_EINTR(write(err_fd, &f, sizeof f));
  _exit(127);
}

CHILD_CODE static int
close_range_sys(unsigned first, unsigned last)
{
#ifdef SYS_close_range
  return (int)syscall(SYS_close_range, first, last, 0);
#else
  errno = ENOSYS;
  return -1;
#endif
}

struct linux_dirent64
{
  uint64_t d_ino;
  int64_t d_off;
  unsigned short d_reclen;
  unsigned char d_type;
  char d_name[];
};

/* Parse a non-negative decimal fd number without libc helpers that might not be
   async-signal-safe. */
CHILD_CODE static int
parse_fd_name(const char *s)
{
  int v = 0;
  if (*s == '\0')
    return -1;
  for (; *s; s++) {
    if (*s < '0' || *s > '9' || v > (INT32_MAX - 9) / 10)
      return -1;
    v = v * 10 + (*s - '0');
  }
  return v;
}

/* close_range is missing before Linux 5.9: walk /proc/self/fd with raw getdents64 (opendir
   allocates), rescanning until a pass closes nothing; without /proc, close every fd below the
   limit. */
CHILD_CODE static void
close_fds_fallback(int first, int keep)
{
  char buf[1024] __attribute__((aligned(8)));
  int dfd = open("/proc/self/fd", O_RDONLY | O_DIRECTORY | O_CLOEXEC);

  if (dfd >= 0) {
    bool closed_any;
    do {
      long n;
      closed_any = false;
      if (lseek(dfd, 0, SEEK_SET) < 0)
        break;
      while ((n = syscall(SYS_getdents64, dfd, buf, sizeof buf)) > 0)
        for (long off = 0; off < n;) {
          struct linux_dirent64 *d = (struct linux_dirent64 *)(buf + off);
          int fd = parse_fd_name(d->d_name);
          off += d->d_reclen;
          if (fd >= first && fd != keep && fd != dfd) {
            close(fd);
            closed_any = true;
          }
        }
    } while (closed_any);
    close(dfd);
    return;
  }
  {
    struct rlimit rl;
    int max = 65536;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY &&
        rl.rlim_cur < (rlim_t)INT32_MAX)
      max = (int)rl.rlim_cur;
    for (int fd = first; fd < max; fd++)
      if (fd != keep)
        close(fd);
  }
}

CHILD_CODE static void
close_fds_from(int first, int keep)
{
  int ret = 0;
  if (keep > first)
    ret = close_range_sys((unsigned)first, (unsigned)keep - 1);
  if (ret == 0)
    ret = close_range_sys((unsigned)keep + 1, ~0U);
  if (ret < 0)
    close_fds_fallback(first, keep);
}

CHILD_CODE static void __attribute__((noreturn)) run_child(const struct child_args *a)
{
  struct sigaction sa;
  sigset_t empty;
  int err_fd = a->err_fd;
  int exec_errno = ENOENT;
  bool saw_eacces = false;

  memset(&sa, 0, sizeof sa);
  sa.sa_handler = SIG_DFL;
  sigemptyset(&sa.sa_mask);
  for (int sig = 1; sig < NSIG; sig++)
    if (sig != SIGKILL && sig != SIGSTOP)
      sigaction(sig, &sa, NULL); /* glibc's internal signals fail with EINVAL: fine */
  sigemptyset(&empty);
  sigprocmask(SIG_SETMASK, &empty, NULL);

  if (a->new_process_group && setpgid(0, 0) < 0)
    child_fail(err_fd, STAGE_SETPGID, errno);
  if (a->parent_death_signal) {
    if (prctl(PR_SET_PDEATHSIG, (unsigned long)a->parent_death_signal, 0, 0, 0) < 0)
      child_fail(err_fd, STAGE_PDEATHSIG, errno);
    if (getppid() != a->parent) /* the parent died before prctl took effect */
    {
      kill(getpid(), a->parent_death_signal);
      _exit(127);
    }
  }

  /* Sources may sit anywhere, including on each other's targets: first move the error pipe and
     every source above the target range, then dup each into place. */
  if (err_fd < a->n_fds) {
    int moved = fcntl(err_fd, F_DUPFD_CLOEXEC, a->n_fds);
    if (moved < 0)
      child_fail(err_fd, STAGE_FDS, errno);
    err_fd = moved;
  }
  for (int i = 0; i < a->n_fds; i++) {
    a->tmp_fds[i] = fcntl(a->src_fds[i], F_DUPFD_CLOEXEC, a->n_fds);
    if (a->tmp_fds[i] < 0)
      child_fail(err_fd, STAGE_FDS, errno);
  }
  for (int i = 0; i < a->n_fds; i++)
    if (dup2(a->tmp_fds[i], i) < 0)
      child_fail(err_fd, STAGE_FDS, errno);
  /* Everything from n_fds up goes, the scratch copies included; the error pipe is CLOEXEC. */
  close_fds_from(a->n_fds, err_fd);

  if (a->cwd && chdir(a->cwd) < 0)
    child_fail(err_fd, STAGE_CHDIR, errno);

  /* The PATH walk of execvp, without its shell fallback for ENOEXEC. */
  for (char *const *c = a->candidates; *c; c++) {
    execve(*c, a->argv, a->envp);
    exec_errno = errno;
    if (exec_errno == EACCES)
      saw_eacces = true;
    else if (exec_errno != ENOENT && exec_errno != ENOTDIR && exec_errno != ESTALE &&
             exec_errno != ENODEV && exec_errno != ETIMEDOUT)
      break;
  }
  if (saw_eacces && (exec_errno == ENOENT || exec_errno == ENOTDIR || exec_errno == ESTALE ||
                     exec_errno == ENODEV || exec_errno == ETIMEDOUT))
    exec_errno = EACCES;
  child_fail(err_fd, STAGE_EXEC, exec_errno);
}

/* The child's stack, in the parent's frame (the parent is suspended while the child runs on
   it): run_child's frames, the largest of which is close_fds_fallback's 1 KiB buffer, and what
   the libc wrappers it calls need. */
#define CHILD_STACK_SIZE (32u * 1024u)

CHILD_CODE static int
child_main(void *arg)
{
  run_child(arg);
}

/* Start the child. It shares the parent's memory and the parent is suspended until the child
   has called exec or exited (CLONE_VFORK, as posix_spawn does), so starting it copies no page
   tables and the parent's later writes cost no copy-on-write faults: under a flood of runtime
   commands, fork and its faults took about two thirds of the shim's CPU per command (335 us
   per command with fork, ~110 us now). The price is that the loop waits until the child has
   been scheduled and reached exec. The niceness is set here, once the child has left our
   memory: a child reniced before exec would keep the suspended parent waiting behind every
   other task on the machine. */
static pid_t
start_child(const struct child_args *args, int nice)
{
  char stack[CHILD_STACK_SIZE] __attribute__((aligned(16)));
  pid_t child;

  child = clone(child_main, stack + sizeof stack, CLONE_VM | CLONE_VFORK | SIGCHLD, (void *)args);
  if (child > 0 && nice)
    (void)setpriority(PRIO_PROCESS, (id_t)child, getpriority(PRIO_PROCESS, 0) + nice);
  return child;
}

/* 0 if execve could run one of the candidates as far as access(2) can tell, else the errno the
   PATH walk in run_child would end with (EACCES wins over ENOENT). */
static int
first_executable(char *const *candidates)
{
  bool saw_eacces = false;
  int last = ENOENT;

  for (char *const *c = candidates; *c; c++) {
    struct stat st;
    if (access(*c, X_OK) == 0 && stat(*c, &st) == 0 && S_ISREG(st.st_mode))
      return 0;
    last = errno;
    if (access(*c, F_OK) == 0)
      last = EACCES; /* there, but not an executable file */
    if (last == EACCES)
      saw_eacces = true;
  }
  return saw_eacces ? EACCES : last;
}

/* NULL-terminated list of paths to try for `path`, searched in the shim's PATH like execvp. */
static char **
exec_candidates(const char *path)
{
  const char *search;
  char **list;
  size_t n = 1, i = 0;

  if (strchr(path, '/')) {
    list = cshim_xmalloc0(2 * sizeof *list);
    list[0] = cshim_xstrdup(path);
    return list;
  }
  search = getenv("PATH");
  if (search == NULL)
    search = "/bin:/usr/bin";
  for (const char *p = search; *p; p++)
    if (*p == ':')
      n++;
  list = cshim_xmalloc0((n + 1) * sizeof *list);
  for (const char *p = search;; p++) {
    const char *end = strchrnul(p, ':');
    if (end == p) /* an empty element means the current directory */
      cshim_xasprintf(&list[i++], "%s", path);
    else
      cshim_xasprintf(&list[i++], "%.*s/%s", (int)(end - p), p, path);
    if (*end == '\0')
      break;
    p = end;
  }
  return list;
}

static void
free_strv(char **v)
{
  if (v == NULL)
    return;
  for (char **p = v; *p; p++)
    free(*p);
  free(v);
}

static void
discard_exit_cb(void *data, pid_t pid, int wait_status)
{
  (void)data;
  (void)pid;
  (void)wait_status;
}

static int
failure_to_error(const struct child_failure *f, const cshim_spawn_opts_t *opts, cshim_error_t *err)
{
  switch (f->stage) {
  case STAGE_FDS:
    return cshim_error_sys(err, f->errnum, "spawn `%s`: set up fds", opts->path);
  case STAGE_SETPGID:
    return cshim_error_sys(err, f->errnum, "spawn `%s`: setpgid", opts->path);
  case STAGE_PDEATHSIG:
    return cshim_error_sys(err, f->errnum, "spawn `%s`: set parent death signal", opts->path);
  case STAGE_CHDIR:
    return cshim_error_sys(err, f->errnum, "spawn `%s`: chdir `%s`", opts->path, opts->cwd);
  default:
    return cshim_error_sys(err, f->errnum, "exec `%s`", opts->path);
  }
}

static int
check_opts(cshim_reaper_t *reaper, const cshim_spawn_opts_t *opts, cshim_exit_cb cb, pid_t *pid,
           cshim_error_t *err)
{
  int ret;

  if (reaper == NULL || opts == NULL || opts->path == NULL || opts->path[0] == '\0' ||
      opts->argv == NULL || opts->argv[0] == NULL || cb == NULL || pid == NULL)
    return cshim_error_make(err, EINVAL, "spawn: invalid arguments");
  ret = cshim_reaper_check(reaper, err);
  if (ret < 0)
    return cshim_error_wrap(err, "spawn `%s`", opts->path);
  if (opts->n_extra_fds > 0 && opts->extra_fds == NULL)
    return cshim_error_make(err, EINVAL, "spawn `%s`: extra fds missing", opts->path);
  if (opts->n_extra_fds > 4096)
    return cshim_error_make(err, EINVAL, "spawn `%s`: too many extra fds", opts->path);
  return 0;
}

/* The descriptors the child gets as 0..n_fds-1 into src_fds (n_fds of them): missing ones are
   /dev/null, opened once into *devnull (the caller closes it). */
static int
child_fds(const cshim_spawn_opts_t *opts, int *src_fds, int n_fds, int *devnull, cshim_error_t *err)
{
  src_fds[0] = opts->stdin_fd;
  src_fds[1] = opts->stdout_fd;
  src_fds[2] = opts->stderr_fd;
  for (size_t i = 0; i < opts->n_extra_fds; i++) {
    if (opts->extra_fds[i] < 0)
      return cshim_error_make(err, EBADF, "spawn `%s`: extra fd %zu is invalid", opts->path, i);
    src_fds[3 + i] = opts->extra_fds[i];
  }
  for (int i = 0; i < n_fds; i++) {
    if (src_fds[i] < 0) {
      if (*devnull < 0) {
        *devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
        if (*devnull < 0)
          return cshim_error_sys(err, errno, "spawn `%s`: open `/dev/null`", opts->path);
      }
      src_fds[i] = *devnull;
    } else if (fcntl(src_fds[i], F_GETFD) < 0)
      return cshim_error_sys(err, errno, "spawn `%s`: fd %d for the child's fd %d", opts->path,
                             src_fds[i], i);
  }
  return 0;
}

/* Start the child that runs args, niced by `nice` once it has exec'd; -1 with errno set when
   the clone fails. */
static pid_t
start_blocked(const struct child_args *args, int nice)
{
  sigset_t all, old;
  pid_t child;
  int saved;

  /* With every signal blocked across the clone, no handler of ours (libuv's writes into the
     loop's signal pipe) can run in the child before its dispositions are reset. */
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  child = start_child(args, nice);
  saved = errno;
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  errno = saved;
  return child;
}

/* The parent's side once the child exists: its group, the reaper's count and watch. */
static int
adopt_child(cshim_reaper_t *reaper, const cshim_spawn_opts_t *opts, pid_t child, cshim_exit_cb cb,
            void *data, cshim_error_t *err)
{
  /* The child has made its own process group (new_process_group) before it exec'd: this runs
     only once it has left our memory (CLONE_VFORK), so a kill of the group cannot miss it. */
  if (CSHIM_HAS_MEMBER(reaper->ops, cshim_reaper_ops_t, started) && reaper->ops->started)
    reaper->ops->started(reaper, child, opts->kind, opts->command);
  /* Watch before anything else: the reaper reaps only on the loop, so the exit cannot be
     dispatched before this. */
  if (reaper->ops->watch(reaper, child, cb, data, err) < 0) {
    kill(child, SIGKILL);
    return cshim_error_wrap(err, "spawn `%s`: watch pid %d", opts->path, (int)child);
  }
  return 0;
}

/* Wait for the child's exec on err_fd (closed here): 0 once it ran the program. */
static int
await_exec(cshim_reaper_t *reaper, const cshim_spawn_opts_t *opts, pid_t child, cshim_exit_cb cb,
           void *data, int err_fd, cshim_error_t *err)
{
  struct child_failure failure;
  ssize_t n;
  int ret;

  n = CSHIM_RETRY_EINTR(read(err_fd, &failure, sizeof failure));
  ret = errno;
  close(err_fd);
  if (n == 0)
    return 0;

  /* The child never ran the program: its exit belongs to nobody. */
  reaper->ops->unwatch(reaper, child, cb, data);
  if (reaper->ops->watch(reaper, child, discard_exit_cb, NULL, NULL) < 0)
    kill(child, SIGKILL);
  if (n != (ssize_t)sizeof failure) {
    kill(child, SIGKILL);
    if (n < 0)
      return cshim_error_sys(err, ret, "spawn `%s`: read exec status", opts->path);
    return cshim_error_make(err, EIO, "spawn `%s`: short exec status", opts->path);
  }
  return failure_to_error(&failure, opts, err);
}

int
cshim_spawn(cshim_reaper_t *reaper, const cshim_spawn_opts_t *opts, cshim_exit_cb cb, void *data,
            pid_t *pid, cshim_error_t *err)
{
  struct child_args args;
  char **candidates = NULL;
  cshim_autofree int *src_fds = NULL;
  cshim_autofree int *tmp_fds = NULL;
  cshim_autoclose int devnull = -1;
  int err_pipe[2];
  pid_t child;
  int ret;

  ret = check_opts(reaper, opts, cb, pid, err);
  if (ret < 0)
    return ret;
  args.n_fds = 3 + (int)opts->n_extra_fds;
  src_fds = cshim_xmalloc((size_t)args.n_fds * sizeof *src_fds);
  tmp_fds = cshim_xmalloc((size_t)args.n_fds * sizeof *tmp_fds);
  ret = child_fds(opts, src_fds, args.n_fds, &devnull, err);
  if (ret < 0)
    return ret;

  if (pipe2(err_pipe, O_CLOEXEC) < 0)
    return cshim_error_sys(err, errno, "spawn `%s`: pipe", opts->path);

  candidates = exec_candidates(opts->path);
  if (opts->exec_status_fd) {
    /* The child's exec is not waited for: what the kernel would refuse for every candidate is
       refused here, at once (a missing or non-executable program). */
    ret = first_executable(candidates);
    if (ret != 0) {
      free_strv(candidates);
      close(err_pipe[0]);
      close(err_pipe[1]);
      return cshim_error_sys(err, ret, "exec `%s`", opts->path);
    }
  }
  args.candidates = candidates;
  args.argv = opts->argv;
  args.envp = opts->envp ? opts->envp : environ;
  args.cwd = opts->cwd;
  args.src_fds = src_fds;
  args.tmp_fds = tmp_fds;
  args.err_fd = err_pipe[1];
  args.new_process_group = opts->new_process_group;
  args.parent_death_signal = opts->parent_death_signal;
  args.parent = getpid();

  child = start_blocked(&args, opts->nice);
  ret = errno;
  close(err_pipe[1]);
  free_strv(candidates);

  if (child < 0) {
    close(err_pipe[0]);
    return cshim_error_sys(err, ret, "spawn `%s`: clone", opts->path);
  }
  ret = adopt_child(reaper, opts, child, cb, data, err);
  if (ret < 0) {
    close(err_pipe[0]);
    return ret;
  }
  if (opts->exec_status_fd) {
    *opts->exec_status_fd = err_pipe[0];
    *pid = child;
    return 0;
  }
  ret = await_exec(reaper, opts, child, cb, data, err_pipe[0], err);
  if (ret == 0)
    *pid = child;
  return ret;
}

int
cshim_spawn_exec_status(int fd, const char *path, cshim_error_t *err)
{
  struct child_failure failure;
  cshim_spawn_opts_t opts = {.path = path ? path : "?"};
  ssize_t n;

  if (fd < 0)
    return 0;
  /* The child is dead: it wrote its failure before exiting, or the exec closed the pipe. */
  fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
  n = CSHIM_RETRY_EINTR(read(fd, &failure, sizeof failure));
  close(fd);
  if (n == (ssize_t)sizeof failure)
    return failure_to_error(&failure, &opts, err);
  return 0;
}

/* ---- killing what a child started ---- */

/* At most this many processes are tracked in one walk; a runtime starts a handful. */
#define KILL_TREE_MAX 4096
/* How long to wait, in all, for processes to stop before reading their children: a process in
   uninterruptible sleep stops only when it leaves it. */
#define KILL_TREE_STOP_WAIT_NS (100ull * 1000000ull)

/* The state letter of /proc/<pid>/stat ('T' stopped, 'Z' zombie...), or 0 when unreadable. */
static char
proc_state(pid_t pid)
{
  char path[64], buf[512];
  cshim_autoclose int fd = -1;
  ssize_t n;
  char *paren;

  snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
  fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return 0;
  n = read(fd, buf, sizeof buf - 1);
  if (n <= 0)
    return 0;
  buf[n] = '\0';
  paren = strrchr(buf, ')'); /* the command name may hold spaces and parentheses */
  return paren && paren[1] == ' ' ? paren[2] : 0;
}

/* The parent pid in /proc/<name>/stat, or -1. */
static pid_t
proc_ppid(int dfd, const char *name)
{
  char path[300], buf[512];
  cshim_autoclose int fd = -1;
  ssize_t n;
  char *paren;
  int ppid;

  snprintf(path, sizeof path, "%s/stat", name);
  fd = openat(dfd, path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return -1;
  n = read(fd, buf, sizeof buf - 1);
  if (n <= 0)
    return -1;
  buf[n] = '\0';
  paren = strrchr(buf, ')');
  if (paren == NULL || sscanf(paren + 1, " %*c %d", &ppid) != 1)
    return -1;
  return (pid_t)ppid;
}

struct pid_set
{
  pid_t *v;
  size_t n;
};

static bool
pid_set_has(const struct pid_set *s, pid_t pid)
{
  for (size_t i = 0; i < s->n; i++)
    if (s->v[i] == pid)
      return true;
  return false;
}

/* Stop pid and remember it, once. */
static void
take(struct pid_set *s, pid_t pid)
{
  if (pid <= 0 || s->n == KILL_TREE_MAX || pid_set_has(s, pid))
    return;
  kill(pid, SIGSTOP);
  s->v[s->n++] = pid;
}

/* Add the children of pid to s: from /proc/<pid>/task/<tid>/children (every thread may have
   forked), or by scanning every /proc/<pid>/stat for the parent when the kernel lacks those
   files. Returns false when neither could be read. */
static bool
take_children(struct pid_set *s, pid_t pid)
{
  char path[64];
  DIR *tasks, *proc;
  struct dirent *d;
  bool any_file = false;

  snprintf(path, sizeof path, "/proc/%d/task", (int)pid);
  tasks = opendir(path);
  if (tasks) {
    while ((d = readdir(tasks)) != NULL) {
      char file[320], buf[4096];
      cshim_autoclose int fd = -1;
      ssize_t n;

      if (d->d_name[0] == '.')
        continue;
      snprintf(file, sizeof file, "/proc/%d/task/%s/children", (int)pid, d->d_name);
      fd = open(file, O_RDONLY | O_CLOEXEC);
      if (fd < 0)
        continue;
      any_file = true;
      n = read(fd, buf, sizeof buf - 1);
      if (n <= 0)
        continue;
      buf[n] = '\0';
      for (char *p = buf, *end; *p;) {
        long child = strtol(p, &end, 10);
        if (end == p)
          break;
        take(s, (pid_t)child);
        p = end;
      }
    }
    closedir(tasks);
  }
  if (any_file)
    return true;

  proc = opendir("/proc");
  if (proc == NULL)
    return false;
  while ((d = readdir(proc)) != NULL) {
    int child = parse_fd_name(d->d_name); /* a decimal name: a process */
    if (child > 0 && proc_ppid(dirfd(proc), d->d_name) == pid)
      take(s, (pid_t)child);
  }
  closedir(proc);
  return true;
}

static void
wait_stopped(pid_t pid, uint64_t deadline_ns)
{
  for (;;) {
    char st = proc_state(pid);
    struct timespec pause = {0, 200000};
    if (st == 0 || st == 'T' || st == 't' || st == 'Z' || st == 'X' ||
        cshim_now_ns() >= deadline_ns)
      return;
    nanosleep(&pause, NULL);
  }
}

void
cshim_spawn_kill_tree(pid_t pid)
{
  struct pid_set s = {.v = NULL, .n = 0};
  uint64_t deadline = cshim_now_ns() + KILL_TREE_STOP_WAIT_NS;

  if (pid <= 0)
    return;
  s.v = cshim_xmalloc(KILL_TREE_MAX * sizeof *s.v);
  take(&s, pid);
  for (size_t i = 0; i < s.n; i++) {
    wait_stopped(s.v[i], deadline);
    take_children(&s, s.v[i]);
  }
  kill(-pid, SIGKILL);
  for (size_t i = 0; i < s.n; i++)
    kill(s.v[i], SIGKILL);
  free(s.v);
}
