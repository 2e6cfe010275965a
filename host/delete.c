// SPDX-License-Identifier: Apache-2.0
// The `delete` action of the shim binary: force-delete, unmount, report the task as killed.
#define _GNU_SOURCE
#include "delete.h"
#include "address.h"
#include "check.h"
#include "config.h"
#include "options.h"
#include "start.h"

#include <cshim/log.h>
#include <cshim/runc_options.h>
#include <cshim/util.h>

#include "containerd/task/v2/shim.pb-c.h"
#include "google/protobuf/timestamp.pb-c.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* Output of a runtime command is only read for messages: keep at most this much. */
#define OUTPUT_CAP (4u << 20)

struct warn_sink
{
  int fd;
  const char *fields;
};

static void __attribute__((format(printf, 2, 3)))
warn(const struct warn_sink *w, const char *fmt, ...)
{
  char msg[2048], line[4096];
  va_list ap;
  size_t n;
  ssize_t r;

  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  n = cshim_log_format(line, sizeof line, CSHIM_LOG_WARN, msg, w->fields);
  r = write(w->fd, line, n);
  (void)r;
}

static void
warn_error(const struct warn_sink *w, cshim_error_t *err)
{
  warn(w, "%s", (*err)->msg);
  cshim_error_release(err);
}

struct capture
{
  int fd;
  char *buf;
  size_t len;
};

static void
capture_read(struct capture *c)
{
  char tmp[4096];
  ssize_t r = read(c->fd, tmp, sizeof tmp);

  if (r < 0 && (errno == EINTR || errno == EAGAIN))
    return;
  if (r <= 0) {
    close(c->fd);
    c->fd = -1;
    return;
  }
  if (c->len + (size_t)r > OUTPUT_CAP)
    r = (ssize_t)(OUTPUT_CAP - c->len);
  c->buf = cshim_xrealloc(c->buf, c->len + (size_t)r + 1);
  memcpy(c->buf + c->len, tmp, (size_t)r);
  c->len += (size_t)r;
  c->buf[c->len] = '\0';
}

static void __attribute__((noreturn))
exec_child(char *const *argv, int out_w, int err_w, int status_w)
{
  sigset_t none;
  int null = open("/dev/null", O_RDWR);
  int e;
  ssize_t r;

  for (int sig = 1; sig < NSIG; sig++)
    if (sig != SIGKILL && sig != SIGSTOP)
      signal(sig, SIG_DFL);
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, NULL);
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (null >= 0)
    dup2(null, 0);
  dup2(out_w >= 0 ? out_w : null, 1);
  dup2(err_w >= 0 ? err_w : null, 2);
  execvp(argv[0], argv);
  e = errno;
  r = write(status_w, &e, sizeof e);
  (void)r;
  _exit(127);
}

/* Run argv to completion (argv[0] searched in PATH), stdin on /dev/null, stdout captured into
   *out when out is not NULL, stderr captured into *errout. Blocking. An exec failure is an error
   (its errno); otherwise *status is the wait status. */
static int
run_command(char *const *argv, char **out, size_t *out_len, char **errout, int *status,
            cshim_error_t *err)
{
  int out_p[2] = {-1, -1}, err_p[2] = {-1, -1}, st_p[2] = {-1, -1};
  struct capture cs[2] = {{-1, NULL, 0}, {-1, NULL, 0}};
  int exec_errno = 0;
  ssize_t r;
  pid_t pid;

  if ((out && pipe2(out_p, O_CLOEXEC) < 0) || pipe2(err_p, O_CLOEXEC) < 0 ||
      pipe2(st_p, O_CLOEXEC) < 0) {
    int e = errno;
    for (int i = 0; i < 2; i++) {
      if (out_p[i] >= 0)
        close(out_p[i]);
      if (err_p[i] >= 0)
        close(err_p[i]);
    }
    return cshim_error_sys(err, e, "create pipes for `%s`", argv[0]);
  }
  pid = fork();
  if (pid < 0) {
    int e = errno;
    for (int i = 0; i < 2; i++) {
      if (out_p[i] >= 0)
        close(out_p[i]);
      close(err_p[i]);
      close(st_p[i]);
    }
    return cshim_error_sys(err, e, "fork `%s`", argv[0]);
  }
  if (pid == 0)
    exec_child(argv, out_p[1], err_p[1], st_p[1]);

  if (out_p[1] >= 0)
    close(out_p[1]);
  close(err_p[1]);
  close(st_p[1]);
  cs[0].fd = out_p[0];
  cs[1].fd = err_p[0];
  while (cs[0].fd >= 0 || cs[1].fd >= 0) {
    struct pollfd p[2];
    nfds_t n = 0;
    int idx[2];

    for (int i = 0; i < 2; i++)
      if (cs[i].fd >= 0) {
        p[n] = (struct pollfd){.fd = cs[i].fd, .events = POLLIN};
        idx[n++] = i;
      }
    if (poll(p, n, -1) < 0) {
      if (errno == EINTR)
        continue;
      break;
    }
    for (nfds_t i = 0; i < n; i++)
      if (p[i].revents)
        capture_read(&cs[idx[i]]);
  }
  for (int i = 0; i < 2; i++)
    if (cs[i].fd >= 0)
      close(cs[i].fd);

  r = CSHIM_RETRY_EINTR(read(st_p[0], &exec_errno, sizeof exec_errno));
  close(st_p[0]);
  CSHIM_RETRY_EINTR(waitpid(pid, status, 0));
  if (r == (ssize_t)sizeof exec_errno) {
    free(cs[0].buf);
    free(cs[1].buf);
    return cshim_error_sys(err, exec_errno, "exec `%s`", argv[0]);
  }
  if (out) {
    *out = cs[0].buf ? cs[0].buf : cshim_xstrdup("");
    *out_len = cs[0].len;
  }
  *errout = cs[1].buf ? cs[1].buf : cshim_xstrdup("");
  return 0;
}

static bool
already_gone(const char *msg)
{
  return strstr(msg, "does not exist") || strstr(msg, "not found") ||
         strstr(msg, "No such file or directory");
}

static char *
trim(char *s)
{
  size_t n = strlen(s);
  while (n > 0 && (s[n - 1] == '\n' || s[n - 1] == ' ' || s[n - 1] == '\r'))
    s[--n] = '\0';
  return s;
}

/* runc and crun keep a container's state in <root>/<id>. When that is gone the runtime has no
   record of the container (the daemon deleted it, or it was never created): `delete --force`
   would only say so. Other runtimes (runsc) keep their own layout and are always asked. */
static bool
runtime_has_no_record(const char *runtime, const char *root, const char *id)
{
  const char *slash = strrchr(runtime, '/');
  const char *base = slash ? slash + 1 : runtime;
  cshim_autofree char *dir = NULL;
  struct stat st;

  if (strcmp(base, "runc") != 0 && strcmp(base, "crun") != 0)
    return false;
  if (root == NULL || root[0] == '\0' || strchr(id, '/') || strcmp(id, ".") == 0 ||
      strcmp(id, "..") == 0)
    return false;
  cshim_xasprintf(&dir, "%s/%s", root, id);
  return lstat(dir, &st) < 0 && errno == ENOENT;
}

/* The task plugin's `runtime_args` from the config the shim of this bundle ran with (the choice
   `start` recorded in <bundle>/cshim-config, else the usual resolution), so that the runtime is
   run as the daemon ran it. NULL-terminated, caller frees with free_args; NULL when none or when
   the config cannot be read (a warning says why). */
static char **
configured_runtime_args(const char *bundle, bool bundle_exists, const struct warn_sink *w)
{
  cshim_autofree char *recorded = NULL;
  host_config_t *config = NULL;
  const cshim_config_node_t *task, *seq;
  cshim_error_t err = NULL;
  char **args = NULL;
  int ret;

  if (bundle_exists && host_start_read_config_choice(bundle, &recorded, &err) < 0)
    warn_error(w, &err);
  if (recorded && strcmp(recorded, HOST_CONFIG_EMBEDDED) == 0)
    ret = host_config_parse(host_default_config, host_default_config_len, HOST_CONFIG_EMBEDDED,
                            NULL, &config, &err);
  else
    ret = host_config_resolve(recorded, getenv("CSHIM_CONFIG"), program_invocation_name,
                              getenv("CSHIM_ETC_DIR") ? getenv("CSHIM_ETC_DIR") : "/etc/cshim",
                              NULL, &config, &err);
  if (ret < 0) {
    cshim_error_wrap(&err, "read the shim config for `runtime_args`");
    warn_error(w, &err);
    return NULL;
  }
  task = host_config_plugin_section(config, HOST_CHECK_TASK_URI);
  seq = cshim_config_get(task, "runtime_args");
  /* The daemon refused anything but a list of non-empty strings: it ran with no other. */
  if (seq && seq->kind == CSHIM_CONFIG_SEQ && seq->n > 0) {
    size_t n = 0;
    args = cshim_xmalloc0((seq->n + 1) * sizeof *args);
    for (size_t i = 0; i < seq->n; i++)
      if (seq->items[i].kind == CSHIM_CONFIG_SCALAR && seq->items[i].value &&
          seq->items[i].value[0])
        args[n++] = cshim_xstrdup(seq->items[i].value);
  }
  host_config_free(config);
  return args;
}

static void
free_args(char **args)
{
  for (char **a = args; a && *a; a++)
    free(*a);
  free(args);
}

static void
delete_container(const host_flags_t *flags, const char *bundle, bool bundle_exists,
                 const host_delete_params_t *p, const struct warn_sink *w)
{
  cshim_runc_options_t opts = {0};
  cshim_autofree char *runtime = NULL;
  cshim_autofree char *root = NULL;
  cshim_autofree char *log = NULL;
  cshim_autofree char *errout = NULL;
  cshim_error_t err = NULL;
  char **global = NULL;
  const char **argv = NULL;
  size_t n = 0, n_global = 0;
  int status = 0;

  if (bundle_exists) {
    if (cshim_runc_runtime_read(bundle, &runtime, &err) < 0)
      warn_error(w, &err);
    if (cshim_runc_options_read(bundle, &opts, &err) < 0) {
      warn_error(w, &err);
      cshim_runc_options_clear(&opts);
    }
  }
  if (runtime == NULL)
    runtime = cshim_xstrdup(p->default_runtime);
  root = cshim_runc_options_runtime_root(&opts, p->default_root, flags->namespace_);
  if (runtime_has_no_record(runtime, root, flags->id)) {
    cshim_runc_options_clear(&opts);
    return;
  }

  global = configured_runtime_args(bundle, bundle_exists, w);
  while (global && global[n_global])
    n_global++;
  argv = cshim_xmalloc0((n_global + 16) * sizeof *argv);
  argv[n++] = runtime;
  argv[n++] = "--root";
  argv[n++] = root;
  if (bundle_exists) {
    cshim_xasprintf(&log, "%s/log.json", bundle);
    argv[n++] = "--log";
    argv[n++] = log;
    argv[n++] = "--log-format";
    argv[n++] = "json";
  }
  if (opts.systemd_cgroup)
    argv[n++] = "--systemd-cgroup";
  for (size_t i = 0; i < n_global; i++)
    argv[n++] = global[i];
  argv[n++] = "delete";
  argv[n++] = "--force";
  argv[n++] = flags->id;
  argv[n] = NULL;

  if (run_command((char *const *)argv, NULL, NULL, &errout, &status, &err) < 0) {
    cshim_error_wrap(&err, "failed to remove runc container");
    warn_error(w, &err);
  } else if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    if (!already_gone(errout))
      warn(w, "failed to remove runc container: `%s` delete --force `%s`: %s (status %d)", runtime,
           flags->id, trim(errout), WIFEXITED(status) ? WEXITSTATUS(status) : -1);
  }
  free_args(global);
  free(argv);
  cshim_runc_options_clear(&opts);
}

/* mount.UnmountAll: peel off every mount stacked on target; detach lazily when busy. */
static void
unmount_all(const char *target, const struct warn_sink *w)
{
  for (int i = 0; i < 256; i++) {
    if (umount2(target, UMOUNT_NOFOLLOW) == 0)
      continue;
    if (errno == EINVAL || errno == ENOENT)
      return;
    if (errno == EBUSY && umount2(target, MNT_DETACH | UMOUNT_NOFOLLOW) == 0)
      continue;
    warn(w, "failed to cleanup rootfs mount: unmount `%s`: %s", target, strerror(errno));
    return;
  }
}

static uint32_t
read_pid(const char *bundle, const struct warn_sink *w)
{
  cshim_autofree char *path = NULL;
  cshim_autofree char *text = NULL;
  cshim_error_t err = NULL;
  size_t len = 0;
  char *end;
  long pid;

  cshim_xasprintf(&path, "%s/init.pid", bundle);
  if (host_options_read_file(path, &text, &len, &err) < 0) {
    /* A task that never got created has no pid file: expected, not worth a warning. */
    if (err->status == -ENOENT)
      cshim_error_release(&err);
    else
      warn_error(w, &err);
    return 0;
  }
  pid = strtol(text, &end, 10);
  if (end == text || pid <= 0 || pid > INT32_MAX) {
    warn(w, "failed to read init pid file: `%s` holds no pid", path);
    return 0;
  }
  return (uint32_t)pid;
}

/* Remove the socket of address unless something still answers on it. */
static void
remove_if_dead(const char *address, const struct warn_sink *w)
{
  cshim_error_t err = NULL;

  if (strncmp(address, "unix://", 7) != 0)
    return;
  if (host_address_can_connect(address, HOST_ADDRESS_CONNECT_TIMEOUT_MS))
    return;
  if (host_address_remove_socket(address, &err) < 0)
    warn_error(w, &err);
}

/* Every socket the shim may have made: the ttrpc socket named in the address file, and the
   debug socket the debug plugin computes beside it (the same hash with "/debug" appended), which
   nobody removes when the shim was killed. A grouped shim still serving other tasks answers on
   its sockets and keeps them. */
static void
remove_dead_sockets(const host_flags_t *flags, const char *bundle, const struct warn_sink *w)
{
  cshim_autofree char *address = NULL;
  cshim_autofree char *group = NULL;
  cshim_autofree char *dir = NULL;
  cshim_autofree char *debug = NULL;
  cshim_error_t err = NULL;
  char *slash;

  if (host_address_read_file(bundle, &address, &err) < 0) {
    cshim_error_release(&err);
    return;
  }
  if (strncmp(address, "unix://", 7) != 0)
    return;
  if (host_address_can_connect(address, HOST_ADDRESS_CONNECT_TIMEOUT_MS))
    return;
  remove_if_dead(address, w);

  if (host_address_group(bundle, flags->id, &group, &err) < 0) {
    cshim_error_release(&err);
    return;
  }
  dir = cshim_xstrdup(host_address_path(address));
  slash = strrchr(dir, '/');
  if (slash == NULL || slash == dir)
    return;
  *slash = '\0';
  debug = host_address_socket(dir, flags->address ? flags->address : "", flags->namespace_, group,
                              true);
  if (debug)
    remove_if_dead(debug, w);
}

static int
write_response(int fd, uint32_t pid, cshim_error_t *err)
{
  Containerd__Task__V2__DeleteResponse resp = CONTAINERD__TASK__V2__DELETE_RESPONSE__INIT;
  Google__Protobuf__Timestamp ts = GOOGLE__PROTOBUF__TIMESTAMP__INIT;
  cshim_autofree uint8_t *buf = NULL;
  struct timespec now;
  size_t len, done = 0;

  clock_gettime(CLOCK_REALTIME, &now);
  ts.seconds = now.tv_sec;
  ts.nanos = (int32_t)now.tv_nsec;
  resp.pid = pid;
  resp.exit_status = HOST_DELETE_EXIT_STATUS;
  resp.exited_at = &ts;
  len = containerd__task__v2__delete_response__get_packed_size(&resp);
  buf = cshim_xmalloc(len);
  containerd__task__v2__delete_response__pack(&resp, buf);
  while (done < len) {
    ssize_t r = CSHIM_RETRY_EINTR(write(fd, buf + done, len - done));
    if (r < 0)
      return cshim_error_sys(err, errno, "write the delete response");
    done += (size_t)r;
  }
  return 0;
}

int
host_delete_run_params(const host_flags_t *flags, const host_delete_params_t *params, int stdout_fd,
                       cshim_error_t *err)
{
  host_delete_params_t p = params ? *params : (host_delete_params_t){0};
  cshim_autofree char *cwd = NULL;
  cshim_autofree char *fields = NULL;
  cshim_autofree char *rootfs = NULL;
  struct warn_sink w;
  struct stat st;
  bool bundle_exists;
  uint32_t pid = 0;

  if (flags->namespace_ == NULL || flags->namespace_[0] == '\0')
    return cshim_error_make(err, EINVAL, "shim namespace cannot be empty");
  if (flags->id == NULL || flags->id[0] == '\0')
    return cshim_error_make(err, EINVAL, "shim id cannot be empty");
  if (p.bundle == NULL && flags->bundle && flags->bundle[0])
    p.bundle = flags->bundle;
  if (p.bundle == NULL) {
    cwd = getcwd(NULL, 0);
    p.bundle = cwd ? cwd : ".";
  }
  if (p.default_runtime == NULL)
    p.default_runtime = HOST_DELETE_DEFAULT_RUNTIME;
  if (p.default_root == NULL)
    p.default_root = HOST_DELETE_DEFAULT_ROOT;
  if (p.stderr_fd <= 0)
    p.stderr_fd = 2;

  cshim_xasprintf(&fields, "namespace=%s id=%s pid=%d", flags->namespace_, flags->id,
                  (int)getpid());
  w.fd = p.stderr_fd;
  w.fields = fields;
  bundle_exists = stat(p.bundle, &st) == 0 && S_ISDIR(st.st_mode);

  delete_container(flags, p.bundle, bundle_exists, &p, &w);
  if (bundle_exists) {
    cshim_xasprintf(&rootfs, "%s/rootfs", p.bundle);
    unmount_all(rootfs, &w);
    pid = read_pid(p.bundle, &w);
    remove_dead_sockets(flags, p.bundle, &w);
  }
  return write_response(stdout_fd, pid, err);
}

int
host_delete_run(const host_flags_t *flags, int stdout_fd, cshim_error_t *err)
{
  return host_delete_run_params(flags, NULL, stdout_fd, err);
}

int
host_delete_exec(char *const *argv, char **out, size_t *out_len, char **errout, int *status,
                 cshim_error_t *err)
{
  return run_command(argv, out, out_len, errout, status, err);
}
