// SPDX-License-Identifier: Apache-2.0
// cshimctl launch / teardown: the client half of the shim binary contract (what containerd does
// around `start` and `delete`), so that any shim runs without containerd.
#define _GNU_SOURCE
#include "ctl.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include <cshim/file.h>
#include <cshim/util.h>

#include "address.h"
#include "containerd/task/v2/shim.pb-c.h"

extern char **environ;

#define DEFAULT_GRPC_ADDRESS "/run/containerd/containerd.sock"
#define ACTION_TIMEOUT_MS 30000

typedef struct buf_s
{
  char *data;
  size_t len;
} buf_t;

static void
buf_free(buf_t *b)
{
  free(b->data);
  b->data = NULL;
  b->len = 0;
}

/* The directory of cshimctl's own executable (symlinks resolved), or NULL. Caller frees. */
static char *
self_dir_path(void)
{
  char *self = realpath("/proc/self/exe", NULL);
  char *slash = self ? strrchr(self, '/') : NULL;

  if (slash == NULL) {
    free(self);
    return NULL;
  }
  *slash = '\0';
  return self;
}

/* The binary for a runtime name, as containerd finds it: "io.containerd.cshim.v2" ->
   containerd-shim-cshim-v2 on PATH, else next to cshimctl; a name with a '/' is a path already. */
static char *
find_binary(const char *runtime, cshim_error_t *err)
{
  cshim_autofree char *copy = NULL;
  cshim_autofree char *name = NULL;
  cshim_autofree char *dirs = NULL;
  cshim_autofree char *self_dir = NULL;
  const char *path_env = getenv("PATH");
  char *version, *shim, *save = NULL;

  if (strchr(runtime, '/'))
    return cshim_xstrdup(runtime);
  copy = cshim_xstrdup(runtime);
  version = strrchr(copy, '.');
  if (version == NULL || version == copy) {
    cshim_error_make(err, EINVAL,
                     "runtime `%s`: expected a name like io.containerd.<name>.<version>", runtime);
    return NULL;
  }
  *version++ = '\0';
  shim = strrchr(copy, '.');
  shim = shim ? shim + 1 : copy;
  cshim_xasprintf(&name, "containerd-shim-%s-%s", shim, version);

  dirs = cshim_xstrdup(path_env ? path_env : "/usr/local/bin:/usr/bin:/bin");
  for (char *dir = strtok_r(dirs, ":", &save); dir; dir = strtok_r(NULL, ":", &save)) {
    char *candidate;
    cshim_xasprintf(&candidate, "%s/%s", dir[0] ? dir : ".", name);
    if (access(candidate, X_OK) == 0)
      return candidate;
    free(candidate);
  }
  /* cshimctl is installed next to the shim (bin/ of an install tree, /usr/bin of the package):
     a shim that is not on PATH is still found there. */
  self_dir = self_dir_path();
  if (self_dir) {
    char *candidate;
    cshim_xasprintf(&candidate, "%s/%s", self_dir, name);
    if (access(candidate, X_OK) == 0)
      return candidate;
    free(candidate);
  }
  cshim_error_make(err, ENOENT, "runtime `%s`: binary `%s` not found in PATH or in `%s`", runtime,
                   name, self_dir ? self_dir : "cshimctl's directory");
  return NULL;
}

static char *
find_publish_binary(const ctl_opts_t *o)
{
  cshim_autofree char *copy = NULL;
  const char *path_env = getenv("PATH");
  char *save = NULL;

  if (o->publish_binary)
    return cshim_xstrdup(o->publish_binary);
  copy = cshim_xstrdup(path_env ? path_env : "/usr/bin");
  for (char *dir = strtok_r(copy, ":", &save); dir; dir = strtok_r(NULL, ":", &save)) {
    char *candidate;
    cshim_xasprintf(&candidate, "%s/containerd", dir);
    if (access(candidate, X_OK) == 0)
      return candidate;
    free(candidate);
  }
  return cshim_xstrdup("/usr/bin/containerd");
}

/* Write content to <dir>/<name> atomically: a temporary file, fsync, rename. */
static int
write_atomic(const char *dir, const char *name, const char *content, cshim_error_t *err)
{
  cshim_autofree char *path = NULL;

  cshim_xasprintf(&path, "%s/%s", dir, name);
  return cshim_file_write_atomic(path, content, strlen(content), 0644, err);
}

/* The environment containerd gives a shim: ours, with its four variables set. */
static char **
shim_env(const ctl_opts_t *o, const char *grpc, const char *ttrpc)
{
  static const char *const keys[] = {
      "TTRPC_ADDRESS=", "GRPC_ADDRESS=", "NAMESPACE=", "MAX_SHIM_VERSION=", NULL};
  size_t n = 0, k = 0;
  char **env;

  while (environ[n])
    n++;
  env = cshim_xmalloc0((n + 5) * sizeof(char *));
  for (size_t i = 0; i < n; i++) {
    bool replaced = false;
    for (const char *const *key = keys; *key; key++)
      replaced = replaced || strncmp(environ[i], *key, strlen(*key)) == 0;
    if (!replaced)
      env[k++] = cshim_xstrdup(environ[i]);
  }
  cshim_xasprintf(&env[k++], "TTRPC_ADDRESS=%s", ttrpc);
  cshim_xasprintf(&env[k++], "GRPC_ADDRESS=%s", grpc);
  cshim_xasprintf(&env[k++], "NAMESPACE=%s", o->namespace_);
  env[k++] = cshim_xstrdup("MAX_SHIM_VERSION=2");
  env[k] = NULL;
  return env;
}

static void
free_strv(char **v)
{
  for (size_t i = 0; v && v[i]; i++)
    free(v[i]);
  free(v);
}

static void
append(buf_t *b, const char *data, size_t len)
{
  b->data = cshim_xrealloc(b->data, b->len + len + 1);
  memcpy(b->data + b->len, data, len);
  b->len += len;
  b->data[b->len] = '\0';
}

/* Run binary with argv/env in cwd, stdin from stdin_fd (-1: /dev/null), and collect stdout
   (and stderr, into err_out, or into out when err_out is NULL, like Go's CombinedOutput) until
   both reach EOF. A blocking CLI helper: it waits for the child, up to ACTION_TIMEOUT_MS. */
static int
run_capture(const char *binary, char *const argv[], char *const envp[], const char *cwd,
            int stdin_fd, buf_t *out, buf_t *err_out, int *status, cshim_error_t *err)
{
  int out_pipe[2], err_pipe[2];
  struct timespec start;
  pid_t pid;
  bool out_open = true, err_open = true;

  if (pipe2(out_pipe, O_CLOEXEC) < 0)
    return cshim_error_sys(err, errno, "pipe");
  if (pipe2(err_pipe, O_CLOEXEC) < 0) {
    close(out_pipe[0]);
    close(out_pipe[1]);
    return cshim_error_sys(err, errno, "pipe");
  }
  pid = fork();
  if (pid < 0) {
    int e = errno;
    close(out_pipe[0]);
    close(out_pipe[1]);
    close(err_pipe[0]);
    close(err_pipe[1]);
    return cshim_error_sys(err, e, "fork");
  }
  if (pid == 0) {
    int in = stdin_fd >= 0 ? stdin_fd : open("/dev/null", O_RDONLY);
    if (in < 0 || dup2(in, 0) < 0 || dup2(out_pipe[1], 1) < 0 || dup2(err_pipe[1], 2) < 0)
      _exit(127);
    if (chdir(cwd) < 0) {
      dprintf(2, "chdir `%s`: %s\n", cwd, strerror(errno));
      _exit(127);
    }
    setpgid(0, 0);
    execve(binary, argv, envp);
    dprintf(2, "exec `%s`: %s\n", binary, strerror(errno));
    _exit(127);
  }
  close(out_pipe[1]);
  close(err_pipe[1]);
  clock_gettime(CLOCK_MONOTONIC, &start);
  while (out_open || err_open) {
    struct pollfd fds[2] = {{.fd = out_open ? out_pipe[0] : -1, .events = POLLIN},
                            {.fd = err_open ? err_pipe[0] : -1, .events = POLLIN}};
    struct timespec now;
    long elapsed;
    char chunk[4096];
    int r;

    clock_gettime(CLOCK_MONOTONIC, &now);
    elapsed = (now.tv_sec - start.tv_sec) * 1000 + (now.tv_nsec - start.tv_nsec) / 1000000;
    if (elapsed >= ACTION_TIMEOUT_MS) {
      kill(-pid, SIGKILL);
      kill(pid, SIGKILL);
      break;
    }
    r = poll(fds, 2, (int)(ACTION_TIMEOUT_MS - elapsed));
    if (r < 0 && errno != EINTR)
      break;
    for (int i = 0; i < 2; i++) {
      ssize_t n;
      if (fds[i].fd < 0 || !(fds[i].revents & (POLLIN | POLLHUP | POLLERR)))
        continue;
      n = read(fds[i].fd, chunk, sizeof(chunk));
      if (n > 0)
        append(i == 0 || err_out == NULL ? out : err_out, chunk, (size_t)n);
      else if (n == 0 || errno != EINTR) {
        if (i == 0)
          out_open = false;
        else
          err_open = false;
      }
    }
  }
  close(out_pipe[0]);
  close(err_pipe[0]);
  CSHIM_RETRY_EINTR(waitpid(pid, status, 0));
  if (out_open || err_open)
    return cshim_error_make(err, ETIMEDOUT, "`%s` did not finish within %d ms", binary,
                            ACTION_TIMEOUT_MS);
  return 0;
}

static pid_t
read_pid_file(const char *path)
{
  char buf[32] = "";
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  ssize_t n;

  if (fd < 0)
    return 0;
  n = read(fd, buf, sizeof(buf) - 1);
  close(fd);
  if (n <= 0)
    return 0;
  buf[n] = '\0';
  return (pid_t)atoi(buf);
}

static void
copy_all(int in, int out)
{
  char chunk[8192];
  ssize_t n;

  while ((n = read(in, chunk, sizeof(chunk))) > 0 || (n < 0 && errno == EINTR))
    if (n > 0 && write(out, chunk, (size_t)n) < 0)
      break;
}

/* The relay's life: copy the FIFO to the log file until the shim (named by <bundle>/shim.pid
   once launch wrote it) is gone, or launch is gone without ever naming one. */
static void
relay_loop(int fifo, int out, const char *pid_file, pid_t launcher)
{
  pid_t shim = 0;

  for (;;) {
    struct pollfd p = {.fd = fifo, .events = POLLIN};
    int r = poll(&p, 1, 500);

    if (r > 0 && (p.revents & POLLIN)) {
      copy_all(fifo, out);
      continue;
    }
    if (shim == 0)
      shim = read_pid_file(pid_file);
    if (shim > 0 ? kill(shim, 0) < 0 && errno == ESRCH : getppid() != launcher)
      break;
  }
  copy_all(fifo, out);
}

/* containerd keeps reading a shim's log FIFO for the shim's whole life (a Go shim does not even
   serve until a reader is there); without containerd, a detached relay process does it. */
static int
start_log_relay(const char *fifo_path, const char *bundle, const char *log_file, pid_t *relay,
                cshim_error_t *err)
{
  cshim_autofree char *pid_file = NULL;
  pid_t launcher = getpid(), pid;
  int fifo, out;

  fifo = open(fifo_path, O_RDWR | O_NONBLOCK | O_CLOEXEC);
  if (fifo < 0)
    return cshim_error_sys(err, errno, "open log fifo `%s`", fifo_path);
  out = open(log_file, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (out < 0) {
    int e = errno;
    close(fifo);
    return cshim_error_sys(err, e, "open log file `%s`", log_file);
  }
  cshim_xasprintf(&pid_file, "%s/shim.pid", bundle);
  pid = fork();
  if (pid < 0) {
    int e = errno;
    close(fifo);
    close(out);
    return cshim_error_sys(err, e, "fork");
  }
  if (pid == 0) {
    int null = open("/dev/null", O_RDWR);
    setsid();
    if (null >= 0) {
      dup2(null, 0);
      dup2(null, 1);
      dup2(null, 2);
    }
    /* Only the FIFO and the log file stay open: no pipe of our caller is held. */
    if (dup2(fifo, 3) < 0 || dup2(out, 4) < 0)
      _exit(1);
    for (int fd = 5; fd < 1024; fd++)
      close(fd);
    relay_loop(3, 4, pid_file, launcher);
    _exit(0);
  }
  close(fifo);
  close(out);
  *relay = pid;
  return 0;
}

static char *
trim(char *s)
{
  size_t n;

  while (*s == ' ' || *s == '\n' || *s == '\t' || *s == '\r')
    s++;
  n = strlen(s);
  while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\n' || s[n - 1] == '\t' || s[n - 1] == '\r'))
    s[--n] = '\0';
  return s;
}

static char *
exit_text(int status)
{
  char *s;

  if (WIFEXITED(status))
    cshim_xasprintf(&s, "exit status %d", WEXITSTATUS(status));
  else if (WIFSIGNALED(status))
    cshim_xasprintf(&s, "killed by signal %d", WTERMSIG(status));
  else
    cshim_xasprintf(&s, "status %d", status);
  return s;
}

static int
check_common(const ctl_opts_t *o, const char *what)
{
  if (o->runtime == NULL && o->binary == NULL)
    return ctl_usage_error("%s: --runtime NAME (or --binary PATH) is required", what);
  if (o->id == NULL || o->bundle == NULL)
    return ctl_usage_error("%s: --id ID and --bundle DIR are required", what);
  return 0;
}

/* The shim's address from start's output: a bare address, or 2.x JSON {"address": ...}. */
static char *
parse_address(char *output)
{
  char *text = trim(output);
  json_t *j;
  char *out = NULL;

  if (text[0] != '{')
    return cshim_xstrdup(text);
  j = json_loads(text, 0, NULL);
  if (json_is_string(json_object_get(j, "address")))
    out = cshim_xstrdup(json_string_value(json_object_get(j, "address")));
  json_decref(j);
  return out;
}

/* The debug socket cshim computes for itself next to its ttrpc socket (§4.10 with "/debug"), when
   it exists. */
static char *
debug_address(const ctl_opts_t *o, const char *address, const char *grpc)
{
  cshim_autofree char *group = NULL;
  cshim_autofree char *dir = NULL;
  cshim_autofree char *computed = NULL;
  cshim_error_t err = NULL;
  struct stat st;

  if (host_address_group(o->bundle, o->id, &group, &err) < 0) {
    cshim_error_release(&err);
    return NULL;
  }
  dir = cshim_xstrdup(ctl_socket_path(address));
  computed = host_address_socket(dirname(dir), grpc, o->namespace_, group, true);
  if (computed == NULL || stat(host_address_path(computed), &st) < 0 || !S_ISSOCK(st.st_mode))
    return NULL;
  return cshim_steal_pointer(&computed);
}

/* The shim's pid, asked with Connect (which also waits until the daemon serves). */
static uint32_t
shim_pid(const ctl_opts_t *o, const char *address)
{
  Containerd__Task__V2__ConnectRequest req = CONTAINERD__TASK__V2__CONNECT_REQUEST__INIT;
  Containerd__Task__V2__ConnectResponse *resp = NULL;
  ctl_opts_t copy = *o;
  ctl_client_t c;
  cshim_error_t err = NULL;
  uint32_t pid = 0;

  copy.address = address;
  copy.timeout_ms = 10000;
  if (ctl_client_open(&c, &copy, &err) < 0) {
    cshim_error_release(&err);
    return 0;
  }
  req.id = (char *)o->id;
  if (ctl_client_call(&c, "Connect", &req.base, &containerd__task__v2__connect_response__descriptor,
                      (ProtobufCMessage **)&resp, &err) == 0) {
    pid = resp->shim_pid;
    protobuf_c_message_free_unpacked(&resp->base, NULL);
  }
  cshim_error_release(&err);
  ctl_client_close(&c);
  return pid;
}

/* The shim's command line as containerd gives it: `BINARY -namespace NS -address GRPC
   -publish-binary PUBLISH -id ID [-bundle BUNDLE] [-debug] ACTION`; argv has room for 15. */
static void
shim_argv(const char **argv, const ctl_opts_t *o, const char *binary, const char *grpc,
          const char *publish, const char *bundle, const char *action)
{
  size_t n = 0;

  argv[n++] = binary;
  argv[n++] = "-namespace";
  argv[n++] = o->namespace_;
  argv[n++] = "-address";
  argv[n++] = grpc;
  argv[n++] = "-publish-binary";
  argv[n++] = publish;
  argv[n++] = "-id";
  argv[n++] = o->id;
  if (bundle) {
    argv[n++] = "-bundle";
    argv[n++] = bundle;
  }
  if (o->debug)
    argv[n++] = "-debug";
  argv[n++] = action;
  argv[n] = NULL;
}

/* The bundle's launch files: the log FIFO containerd would create (and a relay from it into
 *log_file) and shim-binary-path. */
static int
prepare_bundle(const ctl_opts_t *o, const char *binary, char **log_file, pid_t *relay,
               cshim_error_t *err)
{
  cshim_autofree char *log_path = NULL;
  struct stat st;

  if (stat(o->bundle, &st) < 0 || !S_ISDIR(st.st_mode))
    return cshim_error_sys(err, errno ? errno : ENOTDIR, "bundle `%s`", o->bundle);
  /* containerd creates the log FIFO before start; shims open it for their log. */
  cshim_xasprintf(&log_path, "%s/log", o->bundle);
  if (lstat(log_path, &st) < 0 && mkfifo(log_path, 0700) < 0)
    return cshim_error_sys(err, errno, "create log fifo `%s`", log_path);
  if (o->log_file)
    *log_file = cshim_xstrdup(o->log_file);
  else
    cshim_xasprintf(log_file, "%s/shim.log", o->bundle);
  if (start_log_relay(log_path, o->bundle, *log_file, relay, err) < 0)
    return -1;
  return write_atomic(o->bundle, "shim-binary-path", binary, err) < 0 ? -1 : 0;
}

/* Run `BINARY ... start` as containerd does; *address gets the address it printed. */
static int
run_start(const ctl_opts_t *o, const char *binary, const char *grpc, char **address,
          cshim_error_t *err)
{
  cshim_autofree char *publish = NULL;
  cshim_autofree char *ttrpc = NULL;
  buf_t out = {0};
  char **env;
  const char *argv[16];
  int stdin_fd = -1, status = 0, ret;

  if (o->options_file) {
    stdin_fd = open(o->options_file, O_RDONLY | O_CLOEXEC);
    if (stdin_fd < 0)
      return cshim_error_sys(err, errno, "open options file `%s`", o->options_file);
  }
  publish = find_publish_binary(o);
  if (o->ttrpc_address)
    ttrpc = cshim_xstrdup(o->ttrpc_address);
  else
    cshim_xasprintf(&ttrpc, "%s.ttrpc", grpc);

  shim_argv(argv, o, binary, grpc, publish, NULL, "start");
  env = shim_env(o, grpc, ttrpc);
  ret =
      run_capture(binary, (char *const *)argv, env, o->bundle, stdin_fd, &out, NULL, &status, err);
  free_strv(env);
  if (stdin_fd >= 0)
    close(stdin_fd);
  if (ret < 0) {
    buf_free(&out);
    return cshim_error_wrap(err, "start `%s`", binary);
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    cshim_autofree char *why = exit_text(status);
    ret = cshim_error_make(err, EIO, "start `%s`: %s: %s", binary, why,
                           out.data ? trim(out.data) : "");
    buf_free(&out);
    return ret;
  }
  *address = parse_address(out.data ? out.data : (char[]){""});
  buf_free(&out);
  if (*address == NULL || (*address)[0] == '\0')
    return cshim_error_make(err, EPROTO, "start `%s`: printed no address", binary);
  return 0;
}

int
ctl_cmd_launch(const ctl_opts_t *o)
{
  cshim_autofree char *binary = NULL;
  cshim_autofree char *address = NULL;
  cshim_autofree char *debug = NULL;
  cshim_autofree char *pid_text = NULL;
  cshim_autofree char *log_file = NULL;
  const char *grpc = o->address ? o->address : DEFAULT_GRPC_ADDRESS;
  cshim_error_t err = NULL;
  int ret;
  uint32_t pid;
  pid_t relay = 0;

  ret = check_common(o, "launch");
  if (ret)
    return ret;
  binary = o->binary ? cshim_xstrdup(o->binary) : find_binary(o->runtime, &err);
  if (binary == NULL)
    return ctl_fail(&err);
  if (prepare_bundle(o, binary, &log_file, &relay, &err) < 0 ||
      run_start(o, binary, grpc, &address, &err) < 0 ||
      write_atomic(o->bundle, "address", address, &err) < 0)
    return ctl_fail(&err);
  pid = shim_pid(o, address);
  if (pid) {
    cshim_xasprintf(&pid_text, "%u", pid);
    if (write_atomic(o->bundle, "shim.pid", pid_text, &err) < 0)
      return ctl_fail(&err);
  }
  debug = debug_address(o, address, grpc);

  if (o->json) {
    ctl_print_json(json_pack("{s:s, s:s?, s:I, s:s, s:s, s:I}", "address", address, "debug_address",
                             debug, "shim_pid", (json_int_t)pid, "binary", binary, "log", log_file,
                             "log_relay_pid", (json_int_t)relay));
  } else {
    printf("address: %s\n", address);
    if (debug)
      printf("debug address: %s\n", debug);
    if (pid)
      printf("shim pid: %u\n", pid);
    printf("log: %s\n", log_file);
  }
  return 0;
}

static void
remove_launch_files(const char *bundle)
{
  static const char *const names[] = {"address", "shim.pid", "shim-binary-path", NULL};
  char path[PATH_MAX];
  struct stat st;

  for (const char *const *n = names; *n; n++) {
    snprintf(path, sizeof(path), "%s/%s", bundle, *n);
    unlink(path);
  }
  snprintf(path, sizeof(path), "%s/log", bundle);
  if (lstat(path, &st) == 0 && S_ISFIFO(st.st_mode))
    unlink(path);
}

int
ctl_cmd_teardown(const ctl_opts_t *o)
{
  cshim_autofree char *binary = NULL;
  cshim_autofree char *publish = NULL;
  cshim_autofree char *ttrpc = NULL;
  const char *grpc = o->address ? o->address : DEFAULT_GRPC_ADDRESS;
  Containerd__Task__V2__DeleteResponse *resp;
  cshim_error_t err = NULL;
  buf_t out = {0}, errout = {0};
  const char *argv[16];
  char **env;
  char when[64];
  int status = 0, ret;

  ret = check_common(o, "teardown");
  if (ret)
    return ret;
  binary = o->binary ? cshim_xstrdup(o->binary) : find_binary(o->runtime, &err);
  if (binary == NULL)
    return ctl_fail(&err);
  publish = find_publish_binary(o);
  if (o->ttrpc_address)
    ttrpc = cshim_xstrdup(o->ttrpc_address);
  else
    cshim_xasprintf(&ttrpc, "%s.ttrpc", grpc);

  shim_argv(argv, o, binary, grpc, publish, o->bundle, "delete");
  env = shim_env(o, grpc, ttrpc);
  ret = run_capture(binary, (char *const *)argv, env, o->bundle, -1, &out, &errout, &status, &err);
  free_strv(env);
  if (ret < 0) {
    buf_free(&out);
    buf_free(&errout);
    cshim_error_wrap(&err, "delete `%s`", binary);
    return ctl_fail(&err);
  }
  if (errout.len)
    fprintf(stderr, "cshimctl: warning: delete: %s\n", trim(errout.data));
  buf_free(&errout);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    cshim_autofree char *why = exit_text(status);
    cshim_error_make(&err, EIO, "delete `%s`: %s", binary, why);
    buf_free(&out);
    return ctl_fail(&err);
  }
  resp = containerd__task__v2__delete_response__unpack(NULL, out.len, (uint8_t *)out.data);
  buf_free(&out);
  if (resp == NULL) {
    cshim_error_make(&err, EPROTO, "delete `%s`: output is not a DeleteResponse", binary);
    return ctl_fail(&err);
  }
  remove_launch_files(o->bundle);
  ctl_format_time(resp->exited_at, when, sizeof(when));
  if (o->json) {
    ctl_print_json(json_pack("{s:I, s:I, s:s}", "pid", (json_int_t)resp->pid, "exit_status",
                             (json_int_t)resp->exit_status, "exited_at", when));
  } else {
    printf("pid %u exit status %u at %s\n", resp->pid, resp->exit_status, when);
  }
  containerd__task__v2__delete_response__free_unpacked(resp, NULL);
  return 0;
}
