// SPDX-License-Identifier: Apache-2.0
// The `start` action of the shim binary: socket per group, daemon spawn, address on stdout.
#define _GNU_SOURCE
#include "start.h"
#include "address.h"
#include "bootstrap.h"
#include "check.h"
#include "config.h"
#include "options.h"
#include "shim.h"

#include <cshim/file.h>
#include <cshim/util.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef PR_SCHED_CORE
#define PR_SCHED_CORE 62
#endif
#ifndef PR_SCHED_CORE_CREATE
#define PR_SCHED_CORE_CREATE 1
#endif
#define SCHED_CORE_PIDTYPE_PGID 2

#ifndef CGROUP2_SUPER_MAGIC
#define CGROUP2_SUPER_MAGIC 0x63677270
#endif

#define CGROUP_ROOT "/sys/fs/cgroup"

/* Everything a start run allocates, released in one place. */
struct start_state
{
  host_start_options_t opts;
  char *bundle;
  char *exe;
  char *plugin_dir;
  char *group;
  char *address;
  int listen_fd;
  int ready_fd; /* read end of the daemon's readiness pipe, or -1 */
  pid_t daemon;
  host_config_t *config; /* the chosen config, parsed; checked with its modules before answering */
};

static void
state_release(struct start_state *s)
{
  host_options_clear(&s->opts);
  free(s->bundle);
  free(s->exe);
  free(s->plugin_dir);
  free(s->group);
  free(s->address);
  if (s->listen_fd >= 0)
    close(s->listen_fd);
  if (s->ready_fd >= 0)
    close(s->ready_fd);
  host_config_free(s->config);
}

/* Write dir/name through dir/.name and a rename, so readers never see half a file. */
static int
write_file_atomic(const char *dir, const char *name, const char *content, cshim_error_t *err)
{
  cshim_autofree char *path = NULL;

  cshim_xasprintf(&path, "%s/%s", dir, name);
  return cshim_file_write_state(path, content, strlen(content), 0644, err);
}

int
host_start_read_config_choice(const char *bundle, char **source, cshim_error_t *err)
{
  int ret;

  *source = NULL;
  ret = host_options_read_line(bundle, HOST_START_CONFIG_FILE, source, err);
  if (ret == -ENOENT) {
    cshim_error_release(err);
    return 0;
  }
  return ret;
}

static char *
self_exe(cshim_error_t *err)
{
  char buf[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);

  if (n < 0) {
    cshim_error_sys(err, errno, "readlink `/proc/self/exe`");
    return NULL;
  }
  buf[n] = '\0';
  return cshim_xstrdup(buf);
}

/* The runtime options' CshimConfig: checked under that name (so messages point into the text
   the user wrote), then kept in the bundle for the daemon and `delete`, which read configs from
   files. */
static int
take_inline_config(struct start_state *s, host_config_t **config, char **path, cshim_error_t *err)
{
  const char *text = s->opts.inline_config;
  int ret;

  ret = host_config_parse(text, strlen(text), HOST_START_INLINE_SOURCE, s->plugin_dir, config, err);
  if (ret < 0)
    return ret;
  cshim_xasprintf(path, "%s/%s", s->bundle, HOST_START_INLINE_CONFIG_FILE);
  ret = cshim_file_write_state(*path, text, strlen(text), 0600, err);
  if (ret < 0)
    return cshim_error_wrap(err, "keep the inline CshimConfig");
  return 0;
}

/* The config start answers with: parsed here (a syntax error fails at once); checked with its
   module set by check_config, which a new daemon's start-up overlaps. */
static int
resolve_config(struct start_state *s, const host_start_params_t *p, char **source,
               cshim_error_t *err)
{
  cshim_autofree char *inline_path = NULL;
  const char *argv0 = p->argv0 ? p->argv0 : program_invocation_name;
  const char *etc_dir = p->etc_dir ? p->etc_dir : getenv("CSHIM_ETC_DIR");
  int ret;

  if (s->opts.inline_config)
    ret = take_inline_config(s, &s->config, &inline_path, err);
  else
    ret =
        host_config_resolve(s->opts.config_path, getenv("CSHIM_CONFIG"), argv0,
                            etc_dir ? etc_dir : HOST_START_ETC_DIR, s->plugin_dir, &s->config, err);
  if (ret < 0)
    return ret;
  *source = inline_path ? cshim_steal_pointer(&inline_path) : cshim_xstrdup(s->config->source);
  return 0;
}

/* The module set loaded (and unloaded) with the config's sections: a module that cannot be
   loaded, a section for no plugin, no task service fail start with their file:line:col. */
static int
check_config(struct start_state *s, cshim_error_t *err)
{
  int ret = host_check_config(s->config, err);

  host_config_free(s->config);
  s->config = NULL;
  return ret;
}

static void
reset_signals(void)
{
  sigset_t none;

  for (int sig = 1; sig < NSIG; sig++)
    if (sig != SIGKILL && sig != SIGSTOP)
      signal(sig, SIG_DFL);
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, NULL);
}

static void
close_from(int lowfd, int except)
{
  long max = sysconf(_SC_OPEN_MAX);

#ifdef SYS_close_range
  if (except > lowfd)
    syscall(SYS_close_range, (unsigned)lowfd, (unsigned)except - 1, 0u);
  if (syscall(SYS_close_range, (unsigned)(except >= lowfd ? except + 1 : lowfd), ~0u, 0u) == 0)
    return;
#endif
  if (max < 0 || max > 65536)
    max = 65536;
  for (int fd = lowfd; fd < max; fd++)
    if (fd != except)
      close(fd);
}

static void __attribute__((noreturn)) child_fail(int errfd, const char *what)
{
  int e = errno;
  char msg[256];
  int n = snprintf(msg, sizeof msg, "%d %s", e, what);
  ssize_t w = write(errfd, msg, (size_t)n);
  (void)w;
  _exit(127);
}

/* The daemon child, between fork and exec: only async-signal-safe calls. listen_fd, ready_fd and
   errfd were moved above fd 9 by the parent so the dup2s below cannot clobber them. */
static void __attribute__((noreturn))
exec_daemon(const char *exe, char *const *argv, char *const *envp, const char *bundle,
            int listen_fd, int ready_fd, int errfd)
{
  int null;

  reset_signals();
  if (setsid() < 0)
    child_fail(errfd, "setsid");
  if (chdir(bundle) < 0)
    child_fail(errfd, "chdir to the bundle");
  null = open("/dev/null", O_RDWR);
  if (null < 0)
    child_fail(errfd, "open /dev/null");
  if (dup2(null, 0) < 0 || dup2(null, 1) < 0 || dup2(null, 2) < 0)
    child_fail(errfd, "dup2 /dev/null");
  if (dup2(listen_fd, 3) < 0)
    child_fail(errfd, "dup2 the listening socket to fd 3");
  if (dup2(ready_fd, HOST_START_READY_FD) < 0)
    child_fail(errfd, "dup2 the readiness pipe");
  close(4);
  close_from(HOST_START_READY_FD + 1, errfd);
  execve(exe, argv, envp);
  child_fail(errfd, "exec");
}

/* glibc's per-thread cache keeps up to 7 freed chunks of every size, and malloc_trim cannot
   give back a page one of them sits on: in a shim they pinned heap pages that crept up after
   each burst of calls (heap 56 -> 60 -> 64 kB over two State and two Stats bursts; flat at 52
   with one chunk per size). One per size keeps the fast path of a call's malloc/free
   (callgrind: +0.3 % instructions per State; none at all: +9.6 %). A tcache_count the
   environment already sets is kept. */
#define DAEMON_MALLOC_TUNABLE "glibc.malloc.tcache_count=1"

/* The daemon's environment: ours, naming the readiness fd, with DAEMON_MALLOC_TUNABLE. Built
   before fork (the child may only make async-signal-safe calls). Caller frees it with
   free_environment. */
static char **
daemon_environment(void)
{
  size_t n = 0, k = 0, len = strlen(HOST_START_READY_ENV);
  const char *tunables = getenv("GLIBC_TUNABLES");
  char **env;

  while (environ[n])
    n++;
  env = cshim_xmalloc((n + 4) * sizeof *env);
  for (size_t i = 0; i < n; i++)
    if ((strncmp(environ[i], HOST_START_READY_ENV, len) != 0 || environ[i][len] != '=') &&
        strncmp(environ[i], HOST_START_TUNABLES_ENV "=", strlen(HOST_START_TUNABLES_ENV) + 1) &&
        strncmp(environ[i], "GLIBC_TUNABLES=", 15) != 0)
      env[k++] = environ[i];
  cshim_xasprintf(&env[k++], "%s=%s%s", HOST_START_TUNABLES_ENV, tunables ? "=" : "-",
                  tunables ? tunables : "");
  if (tunables && strstr(tunables, "glibc.malloc.tcache_count=") != NULL)
    cshim_xasprintf(&env[k++], "GLIBC_TUNABLES=%s", tunables);
  else
    cshim_xasprintf(&env[k++], "GLIBC_TUNABLES=%s%s" DAEMON_MALLOC_TUNABLE,
                    tunables ? tunables : "", tunables && *tunables ? ":" : "");
  cshim_xasprintf(&env[k++], "%s=%d", HOST_START_READY_ENV, HOST_START_READY_FD);
  env[k] = NULL;
  return env;
}

/* Frees what daemon_environment made: the array and its last three entries (borrowed: the
   rest). */
static void
free_environment(char **env)
{
  size_t n = 0;

  while (env[n])
    n++;
  free(env[n - 1]);
  free(env[n - 2]);
  free(env[n - 3]);
  free(env);
}

static int
spawn_daemon(struct start_state *s, const host_flags_t *flags, const char *argv0,
             const char *grpc_address, cshim_error_t *err)
{
  const char *argv[10];
  size_t n = 0;
  cshim_autoclose int listen_hi = -1;
  cshim_autoclose int err_r = -1;
  cshim_autoclose int err_w = -1;
  cshim_autoclose int ready_w = -1;
  char **envp;
  int pipefd[2];
  char msg[256];
  ssize_t got;
  pid_t pid;

  argv[n++] = argv0;
  argv[n++] = "-namespace";
  argv[n++] = flags->namespace_;
  argv[n++] = "-id";
  argv[n++] = flags->id;
  argv[n++] = "-address";
  argv[n++] = grpc_address ? grpc_address : "";
  if (flags->debug)
    argv[n++] = "-debug";
  argv[n] = NULL;

  if (pipe2(pipefd, O_CLOEXEC) < 0)
    return cshim_error_sys(err, errno, "create pipe");
  err_r = pipefd[0];
  err_w = fcntl(pipefd[1], F_DUPFD_CLOEXEC, 10);
  close(pipefd[1]);
  if (err_w < 0)
    return cshim_error_sys(err, errno, "dup pipe");
  listen_hi = fcntl(s->listen_fd, F_DUPFD_CLOEXEC, 10);
  if (listen_hi < 0)
    return cshim_error_sys(err, errno, "dup listening socket");
  if (pipe2(pipefd, O_CLOEXEC) < 0)
    return cshim_error_sys(err, errno, "create pipe");
  s->ready_fd = pipefd[0];
  ready_w = fcntl(pipefd[1], F_DUPFD_CLOEXEC, 10);
  close(pipefd[1]);
  if (ready_w < 0)
    return cshim_error_sys(err, errno, "dup pipe");

  envp = daemon_environment();
  pid = fork();
  if (pid < 0) {
    free_environment(envp);
    return cshim_error_sys(err, errno, "fork the shim daemon");
  }
  if (pid == 0)
    exec_daemon(s->exe, (char *const *)argv, envp, s->bundle, listen_hi, ready_w, err_w);
  free_environment(envp);

  close(cshim_steal_fd(&err_w));
  close(cshim_steal_fd(&ready_w));
  got = CSHIM_RETRY_EINTR(read(err_r, msg, sizeof msg - 1));
  if (got > 0) {
    int e = 0;
    char *what = NULL;

    msg[got] = '\0';
    e = (int)strtol(msg, &what, 10);
    while (what && *what == ' ')
      what++;
    waitpid(pid, NULL, 0);
    return cshim_error_sys(err, e ? e : EIO, "start the shim daemon `%s`: %s", s->exe,
                           what ? what : "");
  }
  s->daemon = pid;
  return 0;
}

static int
write_cgroup_procs(const char *dir, pid_t pid, cshim_error_t *err)
{
  cshim_autofree char *path = NULL;
  cshim_autoclose int fd = -1;
  char buf[32];
  int n;

  cshim_xasprintf(&path, "%s/cgroup.procs", dir);
  fd = open(path, O_WRONLY | O_CLOEXEC);
  if (fd < 0)
    return cshim_error_sys(err, errno, "open `%s`", path);
  n = snprintf(buf, sizeof buf, "%d", (int)pid);
  if (write(fd, buf, (size_t)n) < 0)
    return cshim_error_sys(err, errno, "write pid %d to `%s`", (int)pid, path);
  return 0;
}

/* shim_cgroup of the runc options: v2 has one hierarchy; v1 takes the same path in each. */
static int
join_shim_cgroup(const char *cgroup, pid_t pid, cshim_error_t *err)
{
  cshim_autofree char *rooted = NULL;
  cshim_autofree char *clean = NULL;
  struct statfs sfs;
  DIR *d;
  struct dirent *de;
  int joined = 0;

  cshim_xasprintf(&rooted, "/%s", cgroup);
  clean = host_address_path_clean(rooted);
  if (statfs(CGROUP_ROOT, &sfs) < 0)
    return cshim_error_sys(err, errno, "statfs `%s`", CGROUP_ROOT);
  if (sfs.f_type == CGROUP2_SUPER_MAGIC) {
    cshim_autofree char *dir = NULL;
    cshim_xasprintf(&dir, "%s%s", CGROUP_ROOT, clean);
    return write_cgroup_procs(dir, pid, err);
  }

  d = opendir(CGROUP_ROOT);
  if (d == NULL)
    return cshim_error_sys(err, errno, "open `%s`", CGROUP_ROOT);
  while ((de = readdir(d)) != NULL) {
    cshim_autofree char *dir = NULL;
    struct stat st;

    if (de->d_name[0] == '.' || de->d_type == DT_LNK)
      continue;
    cshim_xasprintf(&dir, "%s/%s%s", CGROUP_ROOT, de->d_name, clean);
    if (stat(dir, &st) < 0 || !S_ISDIR(st.st_mode))
      continue;
    if (write_cgroup_procs(dir, pid, err) < 0) {
      closedir(d);
      return cshim_error_wrap(err, "join cgroup `%s`", cgroup);
    }
    joined++;
  }
  closedir(d);
  if (joined == 0)
    return cshim_error_make(err, ENOENT, "cgroup `%s` exists in no hierarchy under `%s`", cgroup,
                            CGROUP_ROOT);
  return 0;
}

static int
adjust_oom_score(pid_t pid, cshim_error_t *err)
{
  cshim_autofree char *parent_path = NULL;
  cshim_autofree char *child_path = NULL;
  cshim_autofree char *text = NULL;
  cshim_autoclose int fd = -1;
  size_t len = 0;
  char buf[16];
  long score;
  int ret, n;

  cshim_xasprintf(&parent_path, "/proc/%d/oom_score_adj", (int)getppid());
  ret = host_options_read_file(parent_path, &text, &len, err);
  if (ret < 0)
    return cshim_error_wrap(err, "get parent OOM score");
  score = strtol(text, NULL, 10) + 1;
  if (score > 1000)
    score = 1000;
  if (score < -1000)
    score = -1000;

  cshim_xasprintf(&child_path, "/proc/%d/oom_score_adj", (int)pid);
  fd = open(child_path, O_WRONLY | O_CLOEXEC);
  if (fd < 0)
    return cshim_error_sys(err, errno, "set shim OOM score: open `%s`", child_path);
  n = snprintf(buf, sizeof buf, "%ld", score);
  if (write(fd, buf, (size_t)n) < 0)
    return cshim_error_sys(err, errno, "set shim OOM score: write `%s`", child_path);
  return 0;
}

/* Wait for the daemon's report (HOST_START_READY_ENV): 0 when it serves or did not say within
   HOST_START_READY_TIMEOUT_MS, its error otherwise. Blocking: the short-lived start process. */
static int
wait_daemon_ready(struct start_state *s, cshim_error_t *err)
{
  char report[4096];
  size_t got = 0;
  struct timespec now, end;
  int status;

  clock_gettime(CLOCK_MONOTONIC, &end);
  end.tv_sec += HOST_START_READY_TIMEOUT_MS / 1000;
  for (;;) {
    struct pollfd pfd = {.fd = s->ready_fd, .events = POLLIN};
    long left;
    ssize_t r;

    clock_gettime(CLOCK_MONOTONIC, &now);
    left = (end.tv_sec - now.tv_sec) * 1000 + (end.tv_nsec - now.tv_nsec) / 1000000;
    if (left <= 0)
      return 0;
    r = poll(&pfd, 1, (int)left);
    if (r < 0 && errno == EINTR)
      continue;
    if (r < 0)
      return cshim_error_sys(err, errno, "wait for the shim daemon");
    if (r == 0)
      return 0;
    r = CSHIM_RETRY_EINTR(read(s->ready_fd, report + got, sizeof report - 1 - got));
    if (r < 0)
      return cshim_error_sys(err, errno, "read the shim daemon's report");
    got += (size_t)r;
    if (r == 0 || got == sizeof report - 1)
      break;
  }
  report[got] = '\0';
  while (got > 0 && report[got - 1] == '\n')
    report[--got] = '\0';
  if (strcmp(report, HOST_START_READY) == 0)
    return 0;
  if (got > 0)
    return cshim_error_make(err, EINVAL, "%s", report);
  if (waitpid(s->daemon, &status, WNOHANG) == s->daemon) {
    s->daemon = 0;
    return cshim_error_make(err, EIO, "the shim daemon exited (%s %d) before it served",
                            WIFEXITED(status) ? "status" : "signal",
                            WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
  }
  return cshim_error_make(err, EIO, "the shim daemon closed its report without saying it serves");
}

/* Undo a start that failed half-way: the daemon killed and reaped, the socket closed and
   removed. */
static void
stop_daemon(struct start_state *s)
{
  cshim_error_t ignored = NULL;

  if (s->daemon > 0) {
    kill(s->daemon, SIGKILL);
    waitpid(s->daemon, NULL, 0);
    s->daemon = 0;
  }
  if (s->listen_fd >= 0) {
    close(s->listen_fd);
    s->listen_fd = -1;
  }
  host_address_remove_socket(s->address, &ignored);
  cshim_error_release(&ignored);
}

/* A daemon killed by stop_daemon may have made its debug socket (a debug plugin serving starts
   before the ready report): remove it too, so a refused start leaves no socket behind. */
static void
remove_debug_socket(const struct start_state *s, const host_flags_t *flags,
                    const char *grpc_address)
{
  cshim_autofree char *dir = NULL;
  cshim_autofree char *debug = NULL;
  cshim_error_t ignored = NULL;
  char *slash;

  if (s->address == NULL || strncmp(s->address, "unix://", 7) != 0)
    return;
  dir = cshim_xstrdup(host_address_path(s->address));
  slash = strrchr(dir, '/');
  if (slash == NULL || slash == dir)
    return;
  *slash = '\0';
  debug =
      host_address_socket(dir, grpc_address ? grpc_address : "", flags->namespace_, s->group, true);
  if (debug && host_address_remove_socket(debug, &ignored) < 0)
    cshim_error_release(&ignored);
}

/* The containerd this start answers to: its major version, 0 when unknown. */
static int
containerd_major(const host_flags_t *flags, const host_start_params_t *p)
{
  cshim_error_t ignored = NULL;
  int major = 0;

  if (p->containerd_major != 0)
    return p->containerd_major > 0 ? p->containerd_major : 0;
  if (flags->publish_binary == NULL || flags->publish_binary[0] == '\0')
    return 0;
  /* Not knowing is not an error: the bare address works with every containerd. */
  if (host_bootstrap_containerd_major(flags->publish_binary, p->version_cache_dir, &major,
                                      &ignored) < 0)
    major = 0;
  cshim_error_release(&ignored);
  return major;
}

/* Print the address in the form that makes this containerd use the newest task API the group's
   shim serves (host_bootstrap_version). */
static int
print_answer(struct start_state *s, const host_flags_t *flags, const host_start_params_t *p,
             bool existing, int fd, cshim_error_t *err)
{
  cshim_autofree uint8_t *out = NULL;
  bool bootstrap = s->opts.has_bootstrap;
  int major = bootstrap ? 0 : containerd_major(flags, p);
  bool capable = bootstrap || major >= 2;
  bool existing_v3 = false;
  size_t len = 0;
  int version, ret;

  if (capable && existing)
    existing_v3 = host_bootstrap_probe_v3(s->address, HOST_BOOTSTRAP_PROBE_TIMEOUT_MS);
  version = host_bootstrap_version(major, bootstrap, existing, existing_v3);
  ret = host_bootstrap_answer(s->address, version, bootstrap, &out, &len, err);
  if (ret < 0)
    return ret;
  ret = cshim_file_write_fd(fd, out, len, NULL, err);
  if (ret < 0)
    return cshim_error_wrap(err, "print the shim address");
  return 0;
}

/* The flags checked, the runtime options from stdin decoded, and where everything is: the
   bundle, our binary, the plugin directory. */
static int
read_inputs(struct start_state *s, const host_flags_t *flags, const host_start_params_t *p,
            int stdin_fd, cshim_error_t *err)
{
  cshim_autofree uint8_t *input = NULL;
  size_t input_len = 0;
  int ret;

  if (flags->namespace_ == NULL || flags->namespace_[0] == '\0')
    return cshim_error_make(err, EINVAL, "shim namespace cannot be empty");
  if (flags->id == NULL || flags->id[0] == '\0')
    return cshim_error_make(err, EINVAL, "shim id cannot be empty");

  ret = host_options_read_all(stdin_fd, &input, &input_len, err);
  if (ret < 0)
    return cshim_error_wrap(err, "read runtime options from stdin");
  ret = host_options_decode(input, input_len, flags->id, flags->namespace_, &s->opts, err);
  if (ret < 0)
    return ret;

  if (p->bundle)
    s->bundle = cshim_xstrdup(p->bundle);
  else {
    s->bundle = getcwd(NULL, 0);
    if (s->bundle == NULL)
      return cshim_error_sys(err, errno, "get the bundle directory (cwd)");
  }
  s->exe = p->exe ? cshim_xstrdup(p->exe) : self_exe(err);
  if (s->exe == NULL)
    return -EIO;
  s->plugin_dir =
      p->plugin_dir ? cshim_xstrdup(p->plugin_dir) : host_shim_default_plugin_dir(s->exe);
  return 0;
}

/* The group's socket address (s->address), from the bundle's group and containerd's address. */
static int
group_address(struct start_state *s, const host_flags_t *flags, const host_start_params_t *p,
              const char **grpc_address, cshim_error_t *err)
{
  const char *socket_dir;
  int ret;

  ret = host_address_group(s->bundle, flags->id, &s->group, err);
  if (ret < 0)
    return cshim_error_wrap(err, "read the group of task `%s`", flags->id);
  *grpc_address = s->opts.grpc_address ? s->opts.grpc_address : flags->address;
  socket_dir = p->socket_dir ? p->socket_dir : s->opts.socket_dir;
  s->address = host_address_socket(socket_dir, *grpc_address ? *grpc_address : "",
                                   flags->namespace_, s->group, false);
  if (s->address == NULL)
    return cshim_error_make(err, ENOENT, "hash the shim socket name: %s is not available",
                            CSHIM_NETTLE_SONAME);
  return 0;
}

/* A new shim for the group: the bundle's files, the daemon on the listening socket, its cgroup
   and OOM score, and its report that it serves. On failure nothing is left running or bound. */
static int
start_daemon(struct start_state *s, const host_flags_t *flags, const char *argv0,
             const char *grpc_address, const char *config_source, cshim_error_t *err)
{
  int ret;

  ret = host_address_write_file(s->bundle, s->address, err);
  if (ret < 0)
    goto fail;
  ret = write_file_atomic(s->bundle, HOST_START_CONFIG_FILE, config_source, err);
  if (ret < 0)
    goto fail;

  if (getenv("SCHED_CORE") && getenv("SCHED_CORE")[0])
    if (prctl(PR_SCHED_CORE, PR_SCHED_CORE_CREATE, 0, SCHED_CORE_PIDTYPE_PGID, 0) < 0) {
      ret = cshim_error_sys(err, errno, "enable sched core support");
      goto fail;
    }

  ret = spawn_daemon(s, flags, argv0, grpc_address, err);
  if (ret < 0)
    goto fail;
  close(s->listen_fd);
  s->listen_fd = -1;

  if (s->opts.shim_cgroup) {
    ret = join_shim_cgroup(s->opts.shim_cgroup, s->daemon, err);
    if (ret < 0) {
      cshim_error_wrap(err, "failed to join cgroup `%s`", s->opts.shim_cgroup);
      goto fail;
    }
  }
  ret = adjust_oom_score(s->daemon, err);
  if (ret < 0)
    goto fail;
  /* While the daemon loads the same modules: on two CPUs the check costs start no time. A
     config it refuses ends the daemon before it serves anyone. */
  ret = check_config(s, err);
  if (ret < 0)
    goto fail;
  ret = wait_daemon_ready(s, err);
  if (ret < 0)
    goto fail;
  return 0;

fail:
  stop_daemon(s);
  remove_debug_socket(s, flags, grpc_address);
  return ret;
}

static int
run(struct start_state *s, const host_flags_t *flags, const host_start_params_t *p, int stdin_fd,
    int stdout_fd, cshim_error_t *err)
{
  cshim_autofree char *config_source = NULL;
  const char *grpc_address = NULL;
  const char *argv0 = p->argv0 ? p->argv0 : program_invocation_name;
  bool existing = false;
  int ret;

  ret = read_inputs(s, flags, p, stdin_fd, err);
  if (ret < 0)
    return ret;
  ret = resolve_config(s, p, &config_source, err);
  if (ret < 0)
    return ret;
  ret = group_address(s, flags, p, &grpc_address, err);
  if (ret < 0)
    return ret;

  ret = host_address_listen(s->address, &s->listen_fd, &existing, err);
  if (ret < 0)
    return cshim_error_wrap(err, "create new shim socket");
  if (existing) {
    ret = check_config(s, err);
    if (ret < 0)
      return ret;
    ret = host_address_write_file(s->bundle, s->address, err);
    if (ret < 0)
      return cshim_error_wrap(err, "write existing socket for shim");
    ret = write_file_atomic(s->bundle, HOST_START_CONFIG_FILE, config_source, err);
    if (ret < 0)
      return ret;
    return print_answer(s, flags, p, true, stdout_fd, err);
  }

  ret = start_daemon(s, flags, argv0, grpc_address, config_source, err);
  if (ret < 0)
    return ret;
  ret = print_answer(s, flags, p, false, stdout_fd, err);
  if (ret < 0) {
    stop_daemon(s);
    return ret;
  }
  if (p->daemon_pid)
    *p->daemon_pid = s->daemon;
  return 0;
}

int
host_start_run_params(const host_flags_t *flags, const host_start_params_t *params, int stdin_fd,
                      int stdout_fd, cshim_error_t *err)
{
  static const host_start_params_t none = {0};
  struct start_state s = {.listen_fd = -1, .ready_fd = -1};
  int ret;

  if (params == NULL)
    params = &none;
  if (params->daemon_pid)
    *params->daemon_pid = 0;
  ret = run(&s, flags, params, stdin_fd, stdout_fd, err);
  state_release(&s);
  return ret;
}

int
host_start_run(const host_flags_t *flags, int stdin_fd, int stdout_fd, cshim_error_t *err)
{
  return host_start_run_params(flags, NULL, stdin_fd, stdout_fd, err);
}
