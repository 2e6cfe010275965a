// SPDX-License-Identifier: Apache-2.0
// Support for the debug and cshimctl integration tests: a temporary tree, busybox bundles, child
// processes run to completion or in the background, and cleanup of everything, even on failure.
#define _GNU_SOURCE
#include "itest.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include <cshim/util.h>

#include <cmocka.h>

extern char **environ;

static uint64_t
now_ms(void)
{
  return cshim_now_ns() / 1000000u;
}

bool
itest_can_run_containers(void)
{
  return geteuid() == 0 && access("/usr/bin/runc", X_OK) == 0 && access("/bin/busybox", X_OK) == 0;
}

void
itest_init(itest_t *t, const char *tag)
{
  memset(t, 0, sizeof(*t));
  snprintf(t->dir, sizeof(t->dir), "/tmp/cshim-it-%s.XXXXXX", tag);
  assert_non_null(mkdtemp(t->dir));
  chmod(t->dir, 0755);
  snprintf(t->ns, sizeof(t->ns), "it-%s-%d", tag, (int)getpid());
  snprintf(t->runc_root, sizeof(t->runc_root), "/run/containerd/runc/%s", t->ns);
}

/* Field 22 of /proc/<pid>/stat: when the process started (0 if it is gone). */
static unsigned long long
start_time(pid_t pid)
{
  char path[64], *text, *p;
  unsigned long long start = 0;

  snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
  text = itest_read_file(path);
  if (text == NULL)
    return 0;
  p = strrchr(text, ')');
  for (int field = 2; p && field < 22; field++)
    p = strchr(p + 1, ' ');
  if (p)
    start = strtoull(p + 1, NULL, 10);
  free(text);
  return start;
}

void
itest_track_pid(itest_t *t, pid_t pid)
{
  if (pid > 0 && t->n_pids < ITEST_MAX) {
    t->starts[t->n_pids] = start_time(pid);
    t->pids[t->n_pids++] = pid;
  }
}

void
itest_track_path(itest_t *t, const char *path)
{
  if (path && t->n_paths < ITEST_MAX)
    t->paths[t->n_paths++] = cshim_xstrdup(path);
}

static void
remove_tree(const char *path)
{
  struct stat st;
  DIR *d;
  struct dirent *e;

  if (lstat(path, &st) < 0)
    return;
  if (!S_ISDIR(st.st_mode)) {
    unlink(path);
    return;
  }
  d = opendir(path);
  while (d && (e = readdir(d))) {
    char *child;
    if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
      continue;
    cshim_xasprintf(&child, "%s/%s", path, e->d_name);
    remove_tree(child);
    free(child);
  }
  if (d)
    closedir(d);
  rmdir(path);
}

/* Mount points under dir, deepest first. */
static void
unmount_under(const char *dir)
{
  char *mounts = itest_read_file("/proc/self/mounts");
  char *targets[256];
  size_t n = 0, len = strlen(dir);
  char *save = NULL;

  if (mounts == NULL)
    return;
  for (char *line = strtok_r(mounts, "\n", &save); line && n < 256;
       line = strtok_r(NULL, "\n", &save)) {
    char src[512], target[512];
    if (sscanf(line, "%511s %511s", src, target) == 2 && strncmp(target, dir, len) == 0 &&
        (target[len] == '/' || target[len] == '\0'))
      targets[n++] = cshim_xstrdup(target);
  }
  while (n-- > 0) {
    umount2(targets[n], MNT_DETACH);
    free(targets[n]);
  }
  free(mounts);
}

void
itest_fini(itest_t *t)
{
  for (size_t i = 0; i < t->n_pids; i++) {
    if (t->starts[i] == 0 || start_time(t->pids[i]) != t->starts[i])
      continue;
    kill(t->pids[i], SIGKILL);
    itest_wait_gone(t->pids[i], 2000);
  }
  if (access(t->runc_root, F_OK) == 0) {
    char *const list[] = {"/usr/bin/runc", "--root", t->runc_root, "list", "-q", NULL};
    itest_result_t r;
    char *save = NULL;

    itest_run(list, NULL, NULL, 10000, &r);
    for (char *id = strtok_r(r.out, "\n", &save); id; id = strtok_r(NULL, "\n", &save)) {
      char *const del[] = {"/usr/bin/runc", "--root", t->runc_root, "delete", "-f", id, NULL};
      itest_result_t d;
      itest_run(del, NULL, NULL, 10000, &d);
      itest_result_free(&d);
    }
    itest_result_free(&r);
    rmdir(t->runc_root);
  }
  unmount_under(t->dir);
  remove_tree(t->dir);
  for (size_t i = 0; i < t->n_paths; i++) {
    unlink(t->paths[i]);
    free(t->paths[i]);
  }
  t->n_paths = 0;
  t->n_pids = 0;
}

static void
write_file(const char *path, const char *text)
{
  FILE *f = fopen(path, "w");
  assert_non_null(f);
  fputs(text, f);
  fclose(f);
}

char *
itest_make_bundle(itest_t *t, const char *name, const char *const *args)
{
  static const char *const dirs[] = {"rootfs",     "rootfs/bin", "rootfs/proc", "rootfs/dev",
                                     "rootfs/sys", "rootfs/tmp", NULL};
  static const char *const applets[] = {"sh", "sleep", "echo", "cat", "true", NULL};
  char *bundle, *path, *text;
  itest_result_t r;
  json_t *spec, *argv;

  cshim_xasprintf(&bundle, "%s/%s", t->dir, name);
  assert_int_equal(mkdir(bundle, 0755), 0);
  for (const char *const *d = dirs; *d; d++) {
    cshim_xasprintf(&path, "%s/%s", bundle, *d);
    assert_int_equal(mkdir(path, 0755), 0);
    free(path);
  }
  {
    char *const cp[] = {"/bin/cp", "/bin/busybox", "rootfs/bin/busybox", NULL};
    itest_run(cp, NULL, bundle, 10000, &r);
    assert_true(itest_exited(&r, 0));
    itest_result_free(&r);
  }
  for (const char *const *a = applets; *a; a++) {
    cshim_xasprintf(&path, "%s/rootfs/bin/%s", bundle, *a);
    assert_int_equal(symlink("busybox", path), 0);
    free(path);
  }
  {
    char *const gen[] = {"/usr/bin/runc", "spec", NULL};
    itest_run(gen, NULL, bundle, 10000, &r);
    assert_true(itest_exited(&r, 0));
    itest_result_free(&r);
  }
  cshim_xasprintf(&path, "%s/config.json", bundle);
  spec = json_load_file(path, 0, NULL);
  assert_non_null(spec);
  argv = json_array();
  for (const char *const *a = args; *a; a++)
    json_array_append_new(argv, json_string(*a));
  json_object_set_new(json_object_get(spec, "process"), "args", argv);
  json_object_set_new(json_object_get(spec, "process"), "terminal", json_false());
  json_object_set_new(json_object_get(spec, "root"), "readonly", json_false());
  text = json_dumps(spec, JSON_INDENT(1));
  write_file(path, text);
  free(text);
  free(path);
  json_decref(spec);
  return bundle;
}

static char **
make_env(char *const extra[])
{
  size_t n = 0, k = 0, m = 0;
  char **env;

  while (environ[n])
    n++;
  while (extra && extra[m])
    m++;
  env = cshim_xmalloc0((n + m + 1) * sizeof(char *));
  for (size_t i = 0; i < n; i++) {
    bool overridden = false;
    for (size_t j = 0; j < m && !overridden; j++) {
      size_t klen = strcspn(extra[j], "=");
      overridden = strncmp(environ[i], extra[j], klen + 1) == 0;
    }
    if (!overridden)
      env[k++] = environ[i];
  }
  for (size_t j = 0; j < m; j++)
    env[k++] = extra[j];
  env[k] = NULL;
  return env;
}

static void
append(char **buf, size_t *len, const char *data, size_t n)
{
  *buf = cshim_xrealloc(*buf, *len + n + 1);
  memcpy(*buf + *len, data, n);
  *len += n;
  (*buf)[*len] = '\0';
}

void
itest_run(char *const argv[], char *const env[], const char *cwd, int timeout_ms, itest_result_t *r)
{
  int out[2], err[2];
  size_t out_len = 0, err_len = 0;
  bool out_open = true, err_open = true;
  uint64_t deadline = now_ms() + (uint64_t)timeout_ms;
  char **envp = make_env(env);
  pid_t pid;

  memset(r, 0, sizeof(*r));
  r->out = cshim_xstrdup("");
  r->err = cshim_xstrdup("");
  assert_int_equal(pipe2(out, O_CLOEXEC), 0);
  assert_int_equal(pipe2(err, O_CLOEXEC), 0);
  pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    int null = open("/dev/null", O_RDONLY);
    dup2(null, 0);
    dup2(out[1], 1);
    dup2(err[1], 2);
    setpgid(0, 0);
    if (cwd && chdir(cwd) < 0)
      _exit(126);
    execve(argv[0], argv, envp);
    dprintf(2, "exec %s: %s\n", argv[0], strerror(errno));
    _exit(127);
  }
  free(envp);
  close(out[1]);
  close(err[1]);
  while ((out_open || err_open) && now_ms() < deadline) {
    struct pollfd p[2] = {{.fd = out_open ? out[0] : -1, .events = POLLIN},
                          {.fd = err_open ? err[0] : -1, .events = POLLIN}};
    char chunk[8192];

    if (poll(p, 2, (int)(deadline - now_ms())) <= 0)
      continue;
    for (int i = 0; i < 2; i++) {
      ssize_t n;
      if (p[i].fd < 0 || !(p[i].revents & (POLLIN | POLLHUP | POLLERR)))
        continue;
      n = read(p[i].fd, chunk, sizeof(chunk));
      if (n > 0)
        append(i == 0 ? &r->out : &r->err, i == 0 ? &out_len : &err_len, chunk, (size_t)n);
      else if (n == 0 || errno != EINTR) {
        if (i == 0)
          out_open = false;
        else
          err_open = false;
      }
    }
  }
  close(out[0]);
  close(err[0]);
  if (out_open || err_open) {
    kill(-pid, SIGKILL);
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    r->status = -1;
    return;
  }
  while (waitpid(pid, &r->status, 0) < 0 && errno == EINTR)
    ;
}

void
itest_result_free(itest_result_t *r)
{
  free(r->out);
  free(r->err);
  r->out = r->err = NULL;
}

bool
itest_exited(const itest_result_t *r, int code)
{
  return r->status >= 0 && WIFEXITED(r->status) && WEXITSTATUS(r->status) == code;
}

pid_t
itest_spawn(itest_t *t, char *const argv[], char *const env[], const char *cwd,
            const char *out_path, const char *err_path, int listen_fd)
{
  char **envp = make_env(env);
  pid_t pid = fork();

  assert_true(pid >= 0);
  if (pid == 0) {
    int null = open("/dev/null", O_RDWR);
    int o = out_path ? open(out_path, O_WRONLY | O_CREAT | O_APPEND, 0644) : null;
    int e = err_path ? open(err_path, O_WRONLY | O_CREAT | O_APPEND, 0644) : null;

    dup2(null, 0);
    dup2(o, 1);
    dup2(e, 2);
    if (listen_fd >= 0) {
      dup2(listen_fd, 4);
      fcntl(4, F_SETFD, 0);
    }
    setpgid(0, 0);
    if (cwd && chdir(cwd) < 0)
      _exit(126);
    execve(argv[0], argv, envp);
    _exit(127);
  }
  free(envp);
  itest_track_pid(t, pid);
  return pid;
}

bool
itest_wait_socket(const char *path, int timeout_ms)
{
  uint64_t deadline = now_ms() + (uint64_t)timeout_ms;
  struct sockaddr_un sun = {.sun_family = AF_UNIX};

  if (strlen(path) >= sizeof(sun.sun_path))
    return false;
  memcpy(sun.sun_path, path, strlen(path) + 1);
  while (now_ms() < deadline) {
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == 0) {
      close(fd);
      return true;
    }
    close(fd);
    usleep(20000);
  }
  return false;
}

bool
itest_wait_gone(pid_t pid, int timeout_ms)
{
  uint64_t deadline = now_ms() + (uint64_t)timeout_ms;

  while (now_ms() < deadline) {
    int status;
    pid_t r = waitpid(pid, &status, WNOHANG);
    if (r == pid || (r < 0 && kill(pid, 0) < 0 && errno == ESRCH))
      return true;
    usleep(20000);
  }
  return false;
}

bool
itest_wait_file_contains(const char *path, const char *needle, int timeout_ms)
{
  uint64_t deadline = now_ms() + (uint64_t)timeout_ms;

  while (now_ms() < deadline) {
    char *text = itest_read_file(path);
    bool found = text && strstr(text, needle);
    free(text);
    if (found)
      return true;
    usleep(50000);
  }
  return false;
}

char *
itest_read_file(const char *path)
{
  FILE *f = fopen(path, "re");
  char *buf = NULL;
  size_t len = 0;
  char chunk[8192];
  size_t n;

  if (f == NULL)
    return NULL;
  buf = cshim_xstrdup("");
  while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
    append(&buf, &len, chunk, n);
  fclose(f);
  return buf;
}

int
itest_http(const char *socket_path, const char *raw, size_t len, char **response)
{
  struct sockaddr_un sun = {.sun_family = AF_UNIX};
  uint64_t deadline = now_ms() + 10000;
  char *buf = cshim_xstrdup("");
  size_t buf_len = 0;
  int fd, status = -1;

  if (strlen(socket_path) >= sizeof(sun.sun_path))
    return -1;
  memcpy(sun.sun_path, socket_path, strlen(socket_path) + 1);
  fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == 0) {
    send(fd, raw, len, MSG_NOSIGNAL);
    while (now_ms() < deadline) {
      struct pollfd p = {.fd = fd, .events = POLLIN};
      char chunk[8192];
      ssize_t n;

      if (poll(&p, 1, 100) <= 0)
        continue;
      n = read(fd, chunk, sizeof(chunk));
      if (n <= 0)
        break;
      append(&buf, &buf_len, chunk, (size_t)n);
    }
  }
  close(fd);
  if (sscanf(buf, "HTTP/1.1 %d ", &status) != 1)
    status = -1;
  if (response)
    *response = buf;
  else
    free(buf);
  return status;
}

double
itest_metric(const char *text, const char *prefix)
{
  size_t len = strlen(prefix);

  for (const char *line = text; line && *line;
       line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL)
    if (strncmp(line, prefix, len) == 0 && line[len] == ' ')
      return strtod(line + len + 1, NULL);
  return -1;
}
