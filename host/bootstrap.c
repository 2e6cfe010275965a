// SPDX-License-Identifier: Apache-2.0
// What `start` answers: the task API version for this containerd and group, and its wire form.
#define _GNU_SOURCE
#include "bootstrap.h"

#include <cshim/file.h>
#include <cshim/ttrpc_client.h>
#include <cshim/util.h>

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "containerd/runtime/bootstrap/v1/bootstrap.pb-c.h"
#include "containerd/task/v2/shim.pb-c.h"

#define VERSION_OUTPUT_MAX 4096
#define VERSION_EXEC_TIMEOUT_MS 5000

int
host_bootstrap_parse_version(const char *text)
{
  const char *p = text;
  long major;
  char *end;

  /* "containerd <module path> <version> [<revision>]": skip two fields */
  for (int field = 0; field < 2; field++) {
    while (*p == ' ' || *p == '\t')
      p++;
    if (*p == '\0' || *p == '\n')
      return -1;
    while (*p && !isspace((unsigned char)*p))
      p++;
  }
  while (*p == ' ' || *p == '\t')
    p++;
  if (*p == 'v')
    p++;
  if (!isdigit((unsigned char)*p))
    return -1;
  errno = 0;
  major = strtol(p, &end, 10);
  if (errno || major > 1000 || *end != '.')
    return -1;
  return (int)major;
}

static int64_t
now_ms(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Between fork and exec: only async-signal-safe calls. out_fd is above 2. */
static void __attribute__((noreturn)) exec_version(const char *binary, int out_fd)
{
  sigset_t none;
  int null;

  for (int sig = 1; sig < NSIG; sig++)
    if (sig != SIGKILL && sig != SIGSTOP)
      signal(sig, SIG_DFL);
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, NULL);
  null = open("/dev/null", O_RDWR);
  if (null < 0 || dup2(null, 0) < 0 || dup2(out_fd, 1) < 0 || dup2(null, 2) < 0)
    _exit(127);
#ifdef SYS_close_range
  syscall(SYS_close_range, 3u, ~0u, 0u);
#else
  for (int fd = 3; fd < 1024; fd++)
    close(fd);
#endif
  execl(binary, binary, "--version", (char *)NULL);
  _exit(127);
}

/* Run `binary --version`; *out is its stdout (at most VERSION_OUTPUT_MAX bytes). */
static int
run_version(const char *binary, char **out, cshim_error_t *err)
{
  char buf[VERSION_OUTPUT_MAX + 1];
  size_t got = 0;
  int pipefd[2], status = 0;
  int64_t deadline;
  pid_t pid;

  if (pipe2(pipefd, O_CLOEXEC) < 0)
    return cshim_error_sys(err, errno, "create pipe");
  pid = fork();
  if (pid < 0) {
    int e = errno;
    close(pipefd[0]);
    close(pipefd[1]);
    return cshim_error_sys(err, e, "fork `%s --version`", binary);
  }
  if (pid == 0)
    exec_version(binary, pipefd[1] > 2 ? pipefd[1] : fcntl(pipefd[1], F_DUPFD, 3));
  close(pipefd[1]);

  deadline = now_ms() + VERSION_EXEC_TIMEOUT_MS;
  for (;;) {
    struct pollfd p = {.fd = pipefd[0], .events = POLLIN};
    int64_t left = deadline - now_ms();
    ssize_t n;

    if (left <= 0 || poll(&p, 1, (int)left) == 0) {
      kill(pid, SIGKILL);
      break;
    }
    n = read(pipefd[0], buf + got, sizeof buf - 1 - got);
    if (n < 0 && (errno == EINTR || errno == EAGAIN))
      continue;
    if (n <= 0)
      break;
    got += (size_t)n;
    if (got == sizeof buf - 1)
      break;
  }
  close(pipefd[0]);
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
    ;
  buf[got] = '\0';
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
    return cshim_error_make(err, EIO, "`%s --version` failed (status %d): %s", binary, status, buf);
  *out = cshim_xstrdup(buf);
  return 0;
}

static int
mkdir_p(const char *path, mode_t mode)
{
  cshim_autofree char *copy = cshim_xstrdup(path);

  for (char *p = copy + 1; *p; p++) {
    if (*p != '/')
      continue;
    *p = '\0';
    if (mkdir(copy, mode) < 0 && errno != EEXIST)
      return -errno;
    *p = '/';
  }
  if (mkdir(copy, mode) < 0 && errno != EEXIST)
    return -errno;
  return 0;
}

int
host_bootstrap_containerd_major(const char *binary, const char *cache_dir, int *major,
                                cshim_error_t *err)
{
  cshim_autofree char *cache = NULL;
  cshim_autofree char *text = NULL;
  cshim_autofree char *xdg = NULL;
  struct stat st;
  int ret, m;

  *major = 0;
  if (binary == NULL || binary[0] != '/')
    return cshim_error_make(err, EINVAL, "containerd binary `%s` is not an absolute path",
                            binary ? binary : "");
  if (stat(binary, &st) < 0)
    return cshim_error_sys(err, errno, "stat `%s`", binary);
  if (cache_dir == NULL && geteuid() == 0)
    cache_dir = HOST_BOOTSTRAP_CACHE_DIR;
  else if (cache_dir == NULL && getenv("XDG_RUNTIME_DIR") && getenv("XDG_RUNTIME_DIR")[0] == '/') {
    cshim_xasprintf(&xdg, "%s/cshim/containerd-version", getenv("XDG_RUNTIME_DIR"));
    cache_dir = xdg;
  } else if (cache_dir == NULL)
    cache_dir = ""; /* no place of our own: ask every time */
  cshim_xasprintf(&cache, "%s/%llx-%llx-%llx-%lld.%09ld", cache_dir, (unsigned long long)st.st_dev,
                  (unsigned long long)st.st_ino, (unsigned long long)st.st_size,
                  (long long)st.st_mtim.tv_sec, st.st_mtim.tv_nsec);

  if (cache_dir[0]) {
    cshim_error_t ignored = NULL;
    if (cshim_file_read_small(cache, 64, &text, NULL, &ignored) == 0) {
      m = atoi(text);
      if (m > 0) {
        *major = m;
        return 0;
      }
    }
    cshim_error_release(&ignored);
    free(text);
    text = NULL;
  }

  ret = run_version(binary, &text, err);
  if (ret < 0)
    return ret;
  m = host_bootstrap_parse_version(text);
  if (m <= 0)
    return cshim_error_make(err, EINVAL, "cannot read a version in `%s --version`: %s", binary,
                            text);
  *major = m;
  if (cache_dir[0] && mkdir_p(cache_dir, 0700) == 0) {
    char num[16];
    int n = snprintf(num, sizeof num, "%d\n", m);
    cshim_error_t ignored = NULL;
    cshim_file_write_state(cache, num, (size_t)n, 0600, &ignored);
    cshim_error_release(&ignored);
  }
  return 0;
}

/* ---- the v3 probe ---- */

struct probe
{
  bool done;
  bool ok;
};

static void
probe_cb(void *data, ProtobufCMessage *response, cshim_error_t *err)
{
  struct probe *pr = data;

  pr->done = true;
  pr->ok = *err == NULL;
  if (response)
    protobuf_c_message_free_unpacked(response, NULL);
}

bool
host_bootstrap_probe_v3(const char *address, int timeout_ms)
{
  Containerd__Task__V2__ConnectRequest req = CONTAINERD__TASK__V2__CONNECT_REQUEST__INIT;
  cshim_ttrpc_client_opts_t opts = {.timeout_ms = (uint64_t)timeout_ms};
  cshim_ttrpc_client_t *client = NULL;
  cshim_error_t err = NULL;
  struct probe pr = {0};
  struct sigaction ign = {.sa_handler = SIG_IGN}, old;
  uv_loop_t loop;

  if (uv_loop_init(&loop) < 0)
    return false;
  /* a shim that closes the connection under our write must not kill start */
  sigemptyset(&ign.sa_mask);
  sigaction(SIGPIPE, &ign, &old);
  if (cshim_ttrpc_client_new(&loop, address, NULL, &client, &err) == 0) {
    req.id = "";
    if (cshim_ttrpc_client_call(client, "containerd.task.v3.Task", "Connect", &req.base,
                                &containerd__task__v2__connect_response__descriptor, &opts,
                                probe_cb, &pr, &err) == 0)
      while (!pr.done && uv_run(&loop, UV_RUN_ONCE) != 0)
        ;
    cshim_ttrpc_client_close(client, NULL, NULL);
  }
  cshim_error_release(&err);
  uv_run(&loop, UV_RUN_DEFAULT);
  uv_loop_close(&loop);
  sigaction(SIGPIPE, &old, NULL);
  return pr.ok;
}

/* ---- the answer ---- */

int
host_bootstrap_version(int containerd_major, bool bootstrap_params, bool existing, bool existing_v3)
{
  bool v3_capable = bootstrap_params || containerd_major >= 2;

  if (!v3_capable)
    return 2;
  if (existing && !existing_v3)
    return 2;
  return 3;
}

int
host_bootstrap_answer(const char *address, int version, bool as_protobuf, uint8_t **out,
                      size_t *len, cshim_error_t *err)
{
  *out = NULL;
  *len = 0;
  if (version < 3) {
    *len = strlen(address);
    *out = (uint8_t *)cshim_xstrdup(address);
    return 0;
  }
  if (as_protobuf) {
    Containerd__Runtime__Bootstrap__V1__BootstrapResult r =
        CONTAINERD__RUNTIME__BOOTSTRAP__V1__BOOTSTRAP_RESULT__INIT;
    r.version = version;
    r.address = (char *)address;
    r.protocol = "ttrpc";
    *len = protobuf_c_message_get_packed_size(&r.base);
    *out = cshim_xmalloc(*len ? *len : 1);
    protobuf_c_message_pack(&r.base, *out);
    return 0;
  }
  {
    json_t *j =
        json_pack("{s:i, s:s, s:s}", "version", version, "address", address, "protocol", "ttrpc");
    char *s;

    if (j == NULL)
      return cshim_error_make(err, EINVAL, "encode the bootstrap answer for `%s`", address);
    s = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(j);
    if (s == NULL)
      return cshim_error_make(err, ENOMEM, "encode the bootstrap answer");
    *len = strlen(s);
    *out = (uint8_t *)cshim_xstrdup(s);
    free(s);
  }
  return 0;
}
