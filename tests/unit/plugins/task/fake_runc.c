// SPDX-License-Identifier: Apache-2.0
// A tiny runc look-alike for the task tests: create forks a "container" process that waits on
// an exec FIFO and then runs config.json's process.args; start, kill, delete, state and ps act
// on it. State lives under --root/<id>. Test knobs (environment):
//   FAKE_RUNC_START_DELAY_MS  start sleeps this long after releasing the process
//   FAKE_RUNC_FAIL            command name that fails with "injected failure"
//   FAKE_RUNC_ARGV_LOG        append each invocation's argv (one line) to this file
//   FAKE_RUNC_CONSOLE=hangup  connect to --console-socket and hang up without sending a pty
//   FAKE_RUNC_EXEC_DELAY_MS   exec --detach waits this long before exiting (the process may be
//                             gone by then: its exit reaches the shim before the pid file is read)
//   FAKE_RUNC_HANG            command name that never returns; a hung create has already started
//                             its container process (in a session of its own, as runc init is)
//   FAKE_RUNC_GATE=<cmd>:<path>  <cmd> waits until <path> exists (at most 10 s) before it acts
// With --console-socket, create and exec open a pty, send its master there as runc does (name +
// SCM_RIGHTS) and give the process the slave as controlling terminal and stdio. exec runs
// --process's args (detached: its pid goes to --pid-file and <state>/exec.pids).
// pause/resume stop and continue the process (state says "paused"), update keeps a copy of the
// resources file as <state>/resources.json, checkpoint writes <image>/fake-checkpoint (and with
// FAKE_RUNC_CRIU_FAIL fails after writing <work>/dump.log, as criu does), restore = create+start.
// events --stats prints runsc 2022-12's stats event: memory usage 1048576 + the pid, 1 task, and
// a CPU total of 987654321000 ns (runsc's host-cgroup figure, which a shim must not pass on).
#define _GNU_SOURCE
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

static const char *log_path;
static char state_dir[4096];
static const char *console_socket;

static void __attribute__((noreturn, format(printf, 1, 2))) die(const char *fmt, ...)
{
  char msg[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  if (log_path) {
    FILE *f = fopen(log_path, "a");
    if (f) {
      json_t *o = json_pack("{s:s, s:s}", "level", "error", "msg", msg);
      char *s = json_dumps(o, JSON_COMPACT);
      fprintf(f, "%s\n", s);
      free(s);
      json_decref(o);
      fclose(f);
    }
  }
  fprintf(stderr, "%s\n", msg);
  exit(1);
}

static void
msleep(long ms)
{
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
  while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
    ;
}

static void
write_file(const char *name, const char *text)
{
  char path[4200];
  FILE *f;
  snprintf(path, sizeof path, "%s/%s", state_dir, name);
  f = fopen(path, "w");
  if (f == NULL)
    die("write %s: %s", path, strerror(errno));
  fputs(text, f);
  fclose(f);
}

static pid_t
read_pid(void)
{
  char path[4200];
  FILE *f;
  int pid = 0;
  snprintf(path, sizeof path, "%s/pid", state_dir);
  f = fopen(path, "r");
  if (f == NULL)
    return 0;
  if (fscanf(f, "%d", &pid) != 1)
    pid = 0;
  fclose(f);
  return pid;
}

static bool
alive(pid_t pid)
{
  char path[64], buf[512];
  FILE *f;
  char *p;
  if (pid <= 0 || kill(pid, 0) < 0)
    return false;
  /* A zombie is not running. */
  snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
  f = fopen(path, "r");
  if (f == NULL)
    return false;
  p = fgets(buf, sizeof buf, f);
  fclose(f);
  if (p == NULL || (p = strrchr(buf, ')')) == NULL)
    return false;
  return p[2] != 'Z';
}

static bool
exists(const char *name)
{
  char path[4200];
  snprintf(path, sizeof path, "%s/%s", state_dir, name);
  return access(path, F_OK) == 0;
}

static void
remove_state(void)
{
  char path[4200];
  const char *names[] = {"pid",    "bundle",         "exec.fifo", "started",
                         "paused", "resources.json", "exec.pids"};
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
    snprintf(path, sizeof path, "%s/%s", state_dir, names[i]);
    unlink(path);
  }
  rmdir(state_dir);
}

/* Open a pty and send its master to --console-socket; returns the slave, -1 without a socket. */
static int
send_console(void)
{
  struct sockaddr_un addr = {.sun_family = AF_UNIX};
  union
  {
    char buf[CMSG_SPACE(sizeof(int))];
    struct cmsghdr align;
  } control;
  struct msghdr msg = {0};
  struct iovec iov;
  struct cmsghdr *cm;
  const char *name;
  int s, master, slave;

  if (console_socket == NULL)
    return -1;
  s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  snprintf(addr.sun_path, sizeof addr.sun_path, "%s", console_socket);
  if (s < 0 || connect(s, (struct sockaddr *)&addr, sizeof addr) < 0)
    die("connect to console socket %s: %s", console_socket, strerror(errno));
  if (getenv("FAKE_RUNC_CONSOLE") && strcmp(getenv("FAKE_RUNC_CONSOLE"), "hangup") == 0) {
    close(s);
    return -1;
  }
  master = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (master < 0 || grantpt(master) < 0 || unlockpt(master) < 0 || (name = ptsname(master)) == NULL)
    die("pty: %s", strerror(errno));
  slave = open(name, O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (slave < 0)
    die("open %s: %s", name, strerror(errno));
  iov.iov_base = (void *)name;
  iov.iov_len = strlen(name);
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control.buf;
  msg.msg_controllen = sizeof control.buf;
  cm = CMSG_FIRSTHDR(&msg);
  cm->cmsg_level = SOL_SOCKET;
  cm->cmsg_type = SCM_RIGHTS;
  cm->cmsg_len = CMSG_LEN(sizeof(int));
  memcpy(CMSG_DATA(cm), &master, sizeof master);
  if (sendmsg(s, &msg, 0) < 0)
    die("send the console: %s", strerror(errno));
  close(master);
  close(s);
  return slave;
}

/* In the child: the pty slave becomes the session's controlling terminal and the stdio. */
static void
use_console(int slave)
{
  if (slave < 0)
    return;
  ioctl(slave, TIOCSCTTY, 0);
  dup2(slave, 0);
  dup2(slave, 1);
  dup2(slave, 2);
}

static void
do_create(const char *bundle, const char *pid_file)
{
  char path[4200], fifo[4200];
  json_t *spec, *args;
  json_error_t jerr;
  char **argv;
  size_t n;
  pid_t pid;
  int slave;

  if (mkdir(state_dir, 0700) < 0)
    die(errno == EEXIST ? "container with given ID already exists" : "mkdir state: %s",
        strerror(errno));
  snprintf(path, sizeof path, "%s/config.json", bundle);
  spec = json_load_file(path, 0, &jerr);
  if (spec == NULL) {
    rmdir(state_dir);
    die("load %s: %s", path, jerr.text);
  }
  args = json_object_get(json_object_get(spec, "process"), "args");
  n = json_array_size(args);
  if (n == 0) {
    rmdir(state_dir);
    die("process.args is empty");
  }
  argv = calloc(n + 1, sizeof *argv);
  for (size_t i = 0; i < n; i++)
    argv[i] = strdup(json_string_value(json_array_get(args, i)));
  snprintf(fifo, sizeof fifo, "%s/exec.fifo", state_dir);
  if (mkfifo(fifo, 0600) < 0)
    die("mkfifo: %s", strerror(errno));
  write_file("bundle", bundle);
  slave = send_console();

  pid = fork();
  if (pid < 0)
    die("fork: %s", strerror(errno));
  if (pid == 0) {
    char c;
    int fd;
    setsid();
    use_console(slave);
    fd = open(fifo, O_RDONLY | O_CLOEXEC);
    if (fd < 0 || read(fd, &c, 1) != 1)
      _exit(120);
    close(fd);
    execvp(argv[0], argv);
    _exit(127);
  }
  if (slave >= 0)
    close(slave);
  snprintf(path, sizeof path, "%d", (int)pid);
  write_file("pid", path);
  if (pid_file) {
    FILE *f = fopen(pid_file, "w");
    if (f == NULL)
      die("pid file %s: %s", pid_file, strerror(errno));
    fprintf(f, "%d", (int)pid);
    fclose(f);
  }
  json_decref(spec);
}

static void
do_exec(const char *process, const char *pid_file, bool detach)
{
  json_t *spec, *args;
  json_error_t jerr;
  char **argv, line[32];
  size_t n;
  pid_t pid;
  int slave, status;
  FILE *f;

  if (!exists("pid"))
    die("container does not exist");
  if (!alive(read_pid()))
    die("cannot exec in a stopped container");
  if (process == NULL)
    die("exec: --process missing");
  spec = json_load_file(process, 0, &jerr);
  if (spec == NULL)
    die("load %s: %s", process, jerr.text);
  args = json_object_get(spec, "args");
  n = json_array_size(args);
  if (n == 0)
    die("args must not be empty");
  argv = calloc(n + 1, sizeof *argv);
  for (size_t i = 0; i < n; i++)
    argv[i] = strdup(json_string_value(json_array_get(args, i)));
  if (json_is_true(json_object_get(spec, "terminal")) != (console_socket != NULL))
    die("terminal is %s but the console socket is %s",
        json_is_true(json_object_get(spec, "terminal")) ? "true" : "false",
        console_socket ? "set" : "missing");
  slave = send_console();
  pid = fork();
  if (pid < 0)
    die("fork: %s", strerror(errno));
  if (pid == 0) {
    setsid();
    use_console(slave);
    execvp(argv[0], argv);
    _exit(127);
  }
  if (slave >= 0)
    close(slave);
  if (pid_file) {
    f = fopen(pid_file, "w");
    if (f == NULL)
      die("pid file %s: %s", pid_file, strerror(errno));
    fprintf(f, "%d", (int)pid);
    fclose(f);
  }
  snprintf(line, sizeof line, "%d\n", (int)pid);
  {
    char path[4200];
    snprintf(path, sizeof path, "%s/exec.pids", state_dir);
    f = fopen(path, "a");
    if (f) {
      fputs(line, f);
      fclose(f);
    }
  }
  json_decref(spec);
  if (detach) {
    if (getenv("FAKE_RUNC_EXEC_DELAY_MS"))
      msleep(atol(getenv("FAKE_RUNC_EXEC_DELAY_MS")));
    return;
  }
  if (waitpid(pid, &status, 0) < 0)
    die("wait: %s", strerror(errno));
  exit(WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
}

static void
do_start(void)
{
  char fifo[4200];
  const char *delay = getenv("FAKE_RUNC_START_DELAY_MS");
  pid_t pid = read_pid();
  int fd = -1;

  if (!exists("pid"))
    die("container does not exist");
  if (exists("started"))
    die("cannot start an already running container");
  snprintf(fifo, sizeof fifo, "%s/exec.fifo", state_dir);
  for (int i = 0; i < 2000 && fd < 0; i++) {
    if (!alive(pid))
      die("cannot start a container that has stopped");
    fd = open(fifo, O_WRONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0)
      msleep(1);
  }
  if (fd < 0)
    die("open exec fifo: %s", strerror(errno));
  if (write(fd, "0", 1) != 1)
    die("write exec fifo: %s", strerror(errno));
  close(fd);
  unlink(fifo);
  write_file("started", "1");
  if (delay)
    msleep(atol(delay));
}

static void
do_kill(int sig, bool all)
{
  pid_t pid = read_pid();
  if (!exists("pid"))
    die("container does not exist");
  if (all) {
    /* like runc: every process of the container, whether init is still there or not */
    char path[4200];
    FILE *f;
    int epid;
    kill(-pid, sig);
    snprintf(path, sizeof path, "%s/exec.pids", state_dir);
    f = fopen(path, "r");
    while (f && fscanf(f, "%d", &epid) == 1)
      if (alive(epid))
        kill(-epid, sig);
    if (f)
      fclose(f);
    return;
  }
  if (!alive(pid))
    die("container not running");
  if (kill(pid, sig) < 0)
    die("container not running");
}

static void
do_delete(bool force)
{
  pid_t pid = read_pid();
  if (!exists("pid"))
    die("container does not exist");
  if (alive(pid)) {
    if (!force && exists("started"))
      die("cannot delete container %d that is not stopped: running", (int)pid);
    kill(pid, SIGKILL);
    for (int i = 0; i < 5000 && alive(pid); i++)
      msleep(1);
  }
  remove_state();
}

static void
do_events_stats(const char *id)
{
  pid_t pid = read_pid();

  if (!exists("pid") || !alive(pid))
    die("loading container: container does not exist");
  printf("{\"type\":\"stats\",\"id\":\"%s\",\"data\":{\"cpu\":{\"usage\":{\"total\":"
         "987654321000}},\"memory\":{\"usage\":{\"limit\":0,\"usage\":%ld,\"failcnt\":0},"
         "\"swap\":{\"limit\":0,\"failcnt\":0},\"kernel\":{\"limit\":0,\"failcnt\":0},"
         "\"kernelTCP\":{\"limit\":0,\"failcnt\":0}},\"pids\":{\"current\":1}}}",
         id, 1048576L + (long)pid);
}

static void
do_state(const char *id)
{
  pid_t pid = read_pid();
  char bundle[4096] = "";
  char path[4200];
  FILE *f;
  const char *status;
  json_t *o;
  char *s;

  if (!exists("pid"))
    die("container does not exist");
  snprintf(path, sizeof path, "%s/bundle", state_dir);
  f = fopen(path, "r");
  if (f) {
    if (fgets(bundle, sizeof bundle, f) == NULL)
      bundle[0] = '\0';
    fclose(f);
  }
  status = !alive(pid)         ? "stopped"
           : exists("paused")  ? "paused"
           : exists("started") ? "running"
                               : "created";
  o = json_pack("{s:s, s:s, s:i, s:s, s:s}", "ociVersion", "1.0.2", "id", id, "pid", (int)pid,
                "status", status, "bundle", bundle);
  s = json_dumps(o, JSON_INDENT(2));
  printf("%s\n", s);
  free(s);
  json_decref(o);
}

static void
do_ps(void)
{
  pid_t pid = read_pid();
  char path[4200];
  const char *sep = "";
  FILE *f;
  int epid;

  if (!exists("pid"))
    die("container does not exist");
  printf("[");
  if (alive(pid)) {
    printf("%d", (int)pid);
    sep = ",";
  }
  snprintf(path, sizeof path, "%s/exec.pids", state_dir);
  f = fopen(path, "r");
  while (f && fscanf(f, "%d", &epid) == 1)
    if (alive(epid)) {
      printf("%s%d", sep, epid);
      sep = ",";
    }
  if (f)
    fclose(f);
  printf("]\n");
}

static void
do_pause(bool pause)
{
  pid_t pid = read_pid();
  if (!exists("pid"))
    die("container does not exist");
  if (!alive(pid))
    die("container not running");
  if (pause) {
    if (exists("paused"))
      die("container already paused");
    kill(pid, SIGSTOP);
    write_file("paused", "1");
  } else {
    char path[4200];
    if (!exists("paused"))
      die("container not paused");
    kill(pid, SIGCONT);
    snprintf(path, sizeof path, "%s/paused", state_dir);
    unlink(path);
  }
}

static void
do_update(const char *resources)
{
  json_error_t jerr;
  json_t *r;
  char *text;
  if (!exists("pid"))
    die("container does not exist");
  if (resources == NULL)
    die("update: --resources missing");
  r = json_load_file(resources, 0, &jerr);
  if (r == NULL || !json_is_object(r))
    die("update: bad resources file %s: %s", resources, r ? "not an object" : jerr.text);
  text = json_dumps(r, JSON_COMPACT | JSON_SORT_KEYS);
  write_file("resources.json", text);
  free(text);
  json_decref(r);
}

static void
mkdir_p(const char *dir)
{
  char tmp[4096];
  snprintf(tmp, sizeof tmp, "%s", dir);
  for (char *p = tmp + 1; *p; p++)
    if (*p == '/') {
      *p = '\0';
      mkdir(tmp, 0700);
      *p = '/';
    }
  mkdir(tmp, 0700);
}

static void
do_checkpoint(const char *image, const char *work, bool leave_running)
{
  char path[4200];
  pid_t pid = read_pid();
  FILE *f;
  if (!exists("pid"))
    die("container does not exist");
  if (!alive(pid))
    die("container not running");
  if (image == NULL)
    die("checkpoint: --image-path missing");
  if (getenv("FAKE_RUNC_CRIU_FAIL")) {
    if (work) {
      mkdir_p(work);
      snprintf(path, sizeof path, "%s/dump.log", work);
      f = fopen(path, "w");
      if (f) {
        fputs("Error (criu/cr-dump.c:1): fake dump failure\n", f);
        fclose(f);
      }
    }
    die("criu failed: type NOTIFY errno 0");
  }
  mkdir_p(image);
  snprintf(path, sizeof path, "%s/fake-checkpoint", image);
  f = fopen(path, "w");
  if (f == NULL)
    die("checkpoint: write %s: %s", path, strerror(errno));
  fprintf(f, "%d\n", (int)pid);
  fclose(f);
  if (!leave_running) {
    kill(pid, SIGKILL);
    for (int i = 0; i < 5000 && alive(pid); i++)
      msleep(1);
  }
}

static void
do_restore(const char *bundle, const char *pid_file, const char *image)
{
  char path[4200];
  if (image == NULL)
    die("restore: --image-path missing");
  snprintf(path, sizeof path, "%s/fake-checkpoint", image);
  if (access(path, F_OK) < 0)
    die("restore: %s is not a checkpoint image", image);
  do_create(bundle, pid_file);
  do_start();
}

int
main(int argc, char **argv)
{
  const char *root = "/run/fake-runc";
  const char *cmd = NULL;
  const char *bundle = NULL, *pid_file = NULL, *fail = getenv("FAKE_RUNC_FAIL");
  const char *argv_log = getenv("FAKE_RUNC_ARGV_LOG");
  const char *positional[4] = {NULL, NULL, NULL, NULL};
  size_t n_pos = 0;
  const char *resources = NULL, *image = NULL, *work = NULL;
  bool force = false, all = false, leave_running = false, detach = false;
  const char *process = NULL;
  int i;

  if (argv_log) {
    FILE *f = fopen(argv_log, "a");
    if (f) {
      for (i = 1; i < argc; i++)
        fprintf(f, "%s%s", i > 1 ? " " : "", argv[i]);
      fprintf(f, "\n");
      fclose(f);
    }
  }
  for (i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (strcmp(a, "--root") == 0 && i + 1 < argc)
      root = argv[++i];
    else if (strcmp(a, "--log") == 0 && i + 1 < argc)
      log_path = argv[++i];
    else if (strcmp(a, "--log-format") == 0 && i + 1 < argc)
      i++;
    else if (strcmp(a, "--bundle") == 0 && i + 1 < argc)
      bundle = argv[++i];
    else if (strcmp(a, "--pid-file") == 0 && i + 1 < argc)
      pid_file = argv[++i];
    else if (strcmp(a, "--format") == 0 && i + 1 < argc)
      i++;
    else if (strcmp(a, "--resources") == 0 && i + 1 < argc)
      resources = argv[++i];
    else if (strcmp(a, "--image-path") == 0 && i + 1 < argc)
      image = argv[++i];
    else if (strcmp(a, "--work-path") == 0 && i + 1 < argc)
      work = argv[++i];
    else if ((strcmp(a, "--criu") == 0 || strcmp(a, "--parent-path") == 0 ||
              strcmp(a, "--manage-cgroups-mode") == 0 || strcmp(a, "--empty-ns") == 0) &&
             i + 1 < argc)
      i++;
    else if (strcmp(a, "--console-socket") == 0 && i + 1 < argc)
      console_socket = argv[++i];
    else if (strcmp(a, "--process") == 0 && i + 1 < argc)
      process = argv[++i];
    else if (strcmp(a, "--detach") == 0 || strcmp(a, "-d") == 0)
      detach = true;
    else if (strcmp(a, "--leave-running") == 0)
      leave_running = true;
    else if (strcmp(a, "--force") == 0)
      force = true;
    else if (strcmp(a, "--all") == 0 || strcmp(a, "-a") == 0)
      all = true;
    else if (a[0] == '-')
      continue; /* --systemd-cgroup, --no-pivot, --debug, ... */
    else if (cmd == NULL)
      cmd = a;
    else if (n_pos < 4)
      positional[n_pos++] = a;
  }
  if (cmd == NULL || n_pos == 0)
    die("usage: fake-runc [global options] command [options] id");
  {
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s", root);
    for (char *p = tmp + 1; *p; p++)
      if (*p == '/') {
        *p = '\0';
        mkdir(tmp, 0700);
        *p = '/';
      }
    mkdir(tmp, 0700);
  }
  snprintf(state_dir, sizeof state_dir, "%s/%s", root, positional[0]);
  if (fail && strcmp(fail, cmd) == 0)
    die("injected failure");
  {
    const char *gate = getenv("FAKE_RUNC_GATE");
    size_t n = strlen(cmd);
    if (gate && strncmp(gate, cmd, n) == 0 && gate[n] == ':')
      for (int t = 0; t < 10000 && access(gate + n + 1, F_OK) < 0; t++)
        msleep(1);
  }

  if (strcmp(cmd, "create") == 0)
    do_create(bundle ? bundle : ".", pid_file);
  else if (strcmp(cmd, "start") == 0)
    do_start();
  else if (strcmp(cmd, "kill") == 0)
    do_kill(n_pos > 1 ? atoi(positional[1]) : SIGTERM, all);
  else if (strcmp(cmd, "delete") == 0)
    do_delete(force);
  else if (strcmp(cmd, "state") == 0)
    do_state(positional[0]);
  else if (strcmp(cmd, "events") == 0)
    do_events_stats(positional[0]);
  else if (strcmp(cmd, "ps") == 0)
    do_ps();
  else if (strcmp(cmd, "exec") == 0)
    do_exec(process, pid_file, detach);
  else if (strcmp(cmd, "pause") == 0 || strcmp(cmd, "resume") == 0)
    do_pause(strcmp(cmd, "pause") == 0);
  else if (strcmp(cmd, "update") == 0)
    do_update(resources);
  else if (strcmp(cmd, "checkpoint") == 0)
    do_checkpoint(image, work, leave_running);
  else if (strcmp(cmd, "restore") == 0)
    do_restore(bundle ? bundle : ".", pid_file, image);
  else
    die("unknown command %s", cmd);
  if (getenv("FAKE_RUNC_HANG") && strcmp(getenv("FAKE_RUNC_HANG"), cmd) == 0)
    for (;;)
      pause();
  return 0;
}
