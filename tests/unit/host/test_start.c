// SPDX-License-Identifier: Apache-2.0
// Unit tests of host/start.c: the real start sequence, with this test binary as the daemon.
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cshim/util.h>

#include "containerd/runc/options/oci.pb-c.h"
#include "containerd/runtime/bootstrap/v1/bootstrap.pb-c.h"
#include "google/protobuf/any.pb-c.h"
#include "runtimeoptions/v1/api.pb-c.h"

#include "address.h"
#include "config.h"
#include "options.h"
#include "start.h"

#define REPORT "daemon-report"

/* ---- the fake daemon: this binary re-executed by start ---- */

static int
fake_daemon(int argc, char **argv)
{
  char report[4096], cwd[PATH_MAX];
  size_t n = 0;
  int acc = 0, fd;
  socklen_t sl = sizeof acc;
  struct stat st0, stnull;

  for (int i = 1; i < argc; i++)
    n += (size_t)snprintf(report + n, sizeof report - n, "%s%s", i > 1 ? " " : "", argv[i]);
  getsockopt(3, SOL_SOCKET, SO_ACCEPTCONN, &acc, &sl);
  stat("/dev/null", &stnull);
  fstat(0, &st0);
  n += (size_t)snprintf(report + n, sizeof report - n,
                        "\nlistening=%d\nsession_leader=%d\nstdin_null=%d\nfd4_closed=%d\n"
                        "ready_fd=%s\ncwd=%s\ntunables=%s\noriginal_tunables=%s\n",
                        acc, getsid(0) == getpid(), st0.st_rdev == stnull.st_rdev,
                        fcntl(4, F_GETFD) < 0 && errno == EBADF,
                        getenv(HOST_START_READY_ENV) ? getenv(HOST_START_READY_ENV) : "none",
                        getcwd(cwd, sizeof cwd) ? cwd : "?",
                        getenv("GLIBC_TUNABLES") ? getenv("GLIBC_TUNABLES") : "none",
                        getenv(HOST_START_TUNABLES_ENV) ? getenv(HOST_START_TUNABLES_ENV) : "none");
  fd = open(REPORT ".tmp", O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd < 0 || write(fd, report, n) != (ssize_t)n)
    return 1;
  close(fd);
  rename(REPORT ".tmp", REPORT);
  /* the readiness report start waits for: CSHIM_TEST_DAEMON_FAILS makes it an error */
  if (getenv(HOST_START_READY_ENV)) {
    const char *fails = getenv("CSHIM_TEST_DAEMON_FAILS");
    int rfd = atoi(getenv(HOST_START_READY_ENV));
    const char *text = fails ? fails : HOST_START_READY;
    if (write(rfd, text, strlen(text)) < 0)
      return 1;
    close(rfd);
    if (fails)
      return 1;
  }
  for (;;) {
    int c = accept(3, NULL, NULL);
    if (c >= 0)
      close(c);
  }
}

/* ---- helpers ---- */

static int
rm_cb(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
  (void)st;
  (void)flag;
  (void)ftw;
  remove(path);
  return 0;
}

static void
rm_rf(const char *dir)
{
  nftw(dir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
}

static char *
read_text(const char *dir, const char *name)
{
  char *path, *text = NULL;
  size_t len = 0;
  cshim_error_t err = NULL;

  cshim_xasprintf(&path, "%s/%s", dir, name);
  if (host_options_read_file(path, &text, &len, &err) < 0)
    cshim_error_release(&err);
  free(path);
  return text;
}

static char *
wait_report(const char *bundle)
{
  for (int i = 0; i < 500; i++) {
    char *r = read_text(bundle, REPORT);
    if (r)
      return r;
    usleep(10000);
  }
  fail_msg("the daemon wrote no report in `%s`", bundle);
  return NULL;
}

static void
write_text(const char *dir, const char *name, const char *text)
{
  char *path;
  FILE *f;

  cshim_xasprintf(&path, "%s/%s", dir, name);
  f = fopen(path, "w");
  assert_non_null(f);
  fputs(text, f);
  fclose(f);
  free(path);
}

struct fixture
{
  char *root;    /* temp dir */
  char *bundle;  /* root/bundle */
  char *bundle2; /* root/bundle2 */
  char *sockdir; /* root/s */
  char *plugins; /* root/plugins: the default module names, linked to fixture modules */
  char exe[PATH_MAX];
  pid_t daemons[8];
  size_t n_daemons;
  int containerd_major; /* what run_start tells start; 0: -1 (unknown, nothing is run) */
};

static int
setup(void **state)
{
  struct fixture *f = cshim_xmalloc0(sizeof *f);
  char tmpl[] = "/tmp/cshim-test-start-XXXXXX";
  ssize_t n;

  assert_non_null(mkdtemp(tmpl));
  f->root = cshim_xstrdup(tmpl);
  cshim_xasprintf(&f->bundle, "%s/bundle", f->root);
  cshim_xasprintf(&f->bundle2, "%s/bundle2", f->root);
  cshim_xasprintf(&f->sockdir, "%s/s", f->root);
  assert_int_equal(mkdir(f->bundle, 0700), 0);
  assert_int_equal(mkdir(f->bundle2, 0700), 0);
  n = readlink("/proc/self/exe", f->exe, sizeof f->exe - 1);
  assert_true(n > 0);
  f->exe[n] = '\0';
  write_text(f->bundle, "config.json", "{\"ociVersion\":\"1.0.2\"}");
  cshim_xasprintf(&f->plugins, "%s/plugins", f->root);
  assert_int_equal(mkdir(f->plugins, 0700), 0);
  for (size_t i = 0; i < 5; i++) {
    static const char *const names[] = {"shutdown", "publisher", "task", "debug", "tracing"};
    char *from, *to;
    cshim_xasprintf(&from, "%s/fx_%s.so", CSHIM_FIXTURE_PLUGIN_DIR, names[i]);
    cshim_xasprintf(&to, "%s/%s.so", f->plugins, names[i]);
    assert_int_equal(symlink(from, to), 0);
    free(from);
    free(to);
  }
  *state = f;
  return 0;
}

static void
reap(struct fixture *f, pid_t pid)
{
  kill(pid, SIGKILL);
  waitpid(pid, NULL, 0);
  for (size_t i = 0; i < f->n_daemons; i++)
    if (f->daemons[i] == pid)
      f->daemons[i] = 0;
}

static int
teardown(void **state)
{
  struct fixture *f = *state;

  for (size_t i = 0; i < f->n_daemons; i++)
    if (f->daemons[i] > 0)
      reap(f, f->daemons[i]);
  rm_rf(f->root);
  free(f->root);
  free(f->bundle);
  free(f->bundle2);
  free(f->sockdir);
  free(f->plugins);
  free(f);
  return 0;
}

/* Run start with stdin = the given bytes; returns its result, *out = what it printed. */
static int
run_start(struct fixture *f, const host_flags_t *flags, const char *bundle, const char *socket_dir,
          const char *exe, const uint8_t *in, size_t in_len, char **out, pid_t *daemon,
          cshim_error_t *err)
{
  host_start_params_t p = {
      .bundle = bundle,
      .socket_dir = socket_dir,
      .exe = exe ? exe : f->exe,
      .argv0 = "containerd-shim-cshim-v2",
      .etc_dir = f->root, /* holds no cshim.yaml: the embedded default */
      .plugin_dir = f->plugins,
      .daemon_pid = daemon,
      .containerd_major = f->containerd_major ? f->containerd_major : -1,
  };
  char inpath[PATH_MAX], outpath[PATH_MAX];
  int in_fd, out_fd, ret;
  size_t len;

  snprintf(inpath, sizeof inpath, "%s/stdin", f->root);
  snprintf(outpath, sizeof outpath, "%s/stdout", f->root);
  in_fd = open(inpath, O_RDWR | O_CREAT | O_TRUNC, 0600);
  assert_true(in_fd >= 0);
  if (in_len)
    assert_int_equal(write(in_fd, in, in_len), (ssize_t)in_len);
  lseek(in_fd, 0, SEEK_SET);
  out_fd = open(outpath, O_RDWR | O_CREAT | O_TRUNC, 0600);
  assert_true(out_fd >= 0);

  ret = host_start_run_params(flags, &p, in_fd, out_fd, err);
  if (ret < 0)
    print_message("start failed: %s\n", (*err)->msg);
  close(in_fd);
  close(out_fd);
  if (daemon && *daemon > 0)
    f->daemons[f->n_daemons++] = *daemon;
  *out = read_text(f->root, "stdout");
  (void)len;
  return ret;
}

static host_flags_t
make_flags(const char *id)
{
  host_flags_t fl = {0};
  fl.namespace_ = "cshim-ns";
  fl.id = id;
  fl.address = "/run/containerd/containerd.sock";
  fl.publish_binary = "/usr/bin/containerd";
  fl.debug = true;
  fl.action = "start";
  return fl;
}

static long
oom_score_adj(pid_t pid)
{
  char path[64];
  char *t;
  long v;

  snprintf(path, sizeof path, "/proc/%d", (int)pid);
  t = read_text(path, "oom_score_adj");
  assert_non_null(t);
  v = strtol(t, NULL, 10);
  free(t);
  return v;
}

/* ---- tests ---- */

static void
test_start_spawns_daemon_and_prints_address(void **state)
{
  struct fixture *f = *state;
  host_flags_t fl = make_flags("task1");
  cshim_error_t err = NULL;
  char *out = NULL, *want, *addr, *cfg, *report, *expect_args, *expect_cwd;
  pid_t daemon = 0;
  long want_oom;

  assert_int_equal(run_start(f, &fl, f->bundle, f->sockdir, NULL, NULL, 0, &out, &daemon, &err), 0);
  want = host_address_socket(f->sockdir, fl.address, fl.namespace_, "task1", false);
  assert_string_equal(out, want); /* exactly the address, no newline */
  assert_true(daemon > 0);

  addr = read_text(f->bundle, "address");
  assert_string_equal(addr, want);
  cfg = read_text(f->bundle, HOST_START_CONFIG_FILE);
  assert_string_equal(cfg, HOST_CONFIG_EMBEDDED);

  report = wait_report(f->bundle);
  cshim_xasprintf(
      &expect_args,
      "-namespace cshim-ns -id task1 -address /run/containerd/containerd.sock -debug\n");
  assert_memory_equal(report, expect_args, strlen(expect_args));
  assert_non_null(strstr(report, "listening=1\n"));
  assert_non_null(strstr(report, "session_leader=1\n"));
  assert_non_null(strstr(report, "stdin_null=1\n"));
  assert_non_null(strstr(report, "fd4_closed=1\n"));
  /* start named the readiness pipe, which the daemon got as that fd */
  assert_non_null(strstr(report, "ready_fd=5\n"));
  /* one freed chunk per size in glibc's cache (start.c, DAEMON_MALLOC_TUNABLE), unless the
     environment already says how many */
  if (getenv("GLIBC_TUNABLES") == NULL) {
    assert_non_null(strstr(report, "\ntunables=glibc.malloc.tcache_count=1\n"));
    /* and what to put back for the daemon's children: nothing was set */
    assert_non_null(strstr(report, "\noriginal_tunables=-\n"));
  } else {
    assert_non_null(strstr(report, "glibc.malloc.tcache_count="));
    assert_non_null(strstr(report, "\noriginal_tunables=="));
  }
  cshim_xasprintf(&expect_cwd, "cwd=%s\n", f->bundle);
  assert_non_null(strstr(report, expect_cwd));

  want_oom = oom_score_adj(getppid()) + 1;
  if (want_oom > 1000)
    want_oom = 1000;
  assert_int_equal(oom_score_adj(daemon), want_oom);
  assert_true(host_address_can_connect(want, 1000));

  free(out);
  free(want);
  free(addr);
  free(cfg);
  free(report);
  free(expect_args);
  free(expect_cwd);
}

static void
test_start_reuses_the_group_shim_and_replaces_a_stale_socket(void **state)
{
  struct fixture *f = *state;
  host_flags_t fl = make_flags("task1");
  host_flags_t fl2 = make_flags("task2");
  cshim_error_t err = NULL;
  char *out = NULL, *out2 = NULL, *out3 = NULL, *addr2;
  pid_t d1 = 0, d2 = -1, d3 = 0;

  assert_int_equal(run_start(f, &fl, f->bundle, f->sockdir, NULL, NULL, 0, &out, &d1, &err), 0);
  assert_true(d1 > 0);
  free(wait_report(f->bundle));

  /* task2 joins task1's group through the runc group annotation */
  write_text(f->bundle2, "config.json",
             "{\"annotations\":{\"io.kubernetes.cri.sandbox-id\":\"zzz\","
             "\"io.containerd.runc.v2.group\":\"task1\"}}");
  assert_int_equal(run_start(f, &fl2, f->bundle2, f->sockdir, NULL, NULL, 0, &out2, &d2, &err), 0);
  assert_int_equal(d2, 0);
  assert_string_equal(out2, out);
  addr2 = read_text(f->bundle2, "address");
  assert_string_equal(addr2, out);
  free(addr2);

  /* the daemon dies without removing its socket: the next start replaces it */
  reap(f, d1);
  assert_false(host_address_can_connect(out, 50));
  assert_int_equal(run_start(f, &fl, f->bundle, f->sockdir, NULL, NULL, 0, &out3, &d3, &err), 0);
  assert_true(d3 > 0 && d3 != d1);
  assert_string_equal(out3, out);
  assert_true(host_address_can_connect(out, 1000));

  free(out);
  free(out2);
  free(out3);
}

static uint8_t *
pack_bootstrap_runtimeoptions(const char *id, const char *ns, const char *socket_dir,
                              const char *config_path, size_t *len)
{
  Runtimeoptions__V1__Options ro = RUNTIMEOPTIONS__V1__OPTIONS__INIT;
  Google__Protobuf__Any any = GOOGLE__PROTOBUF__ANY__INIT;
  Containerd__Runtime__Bootstrap__V1__Extension ext =
      CONTAINERD__RUNTIME__BOOTSTRAP__V1__EXTENSION__INIT;
  Containerd__Runtime__Bootstrap__V1__Extension *exts[] = {&ext};
  Containerd__Runtime__Bootstrap__V1__BootstrapParams bp =
      CONTAINERD__RUNTIME__BOOTSTRAP__V1__BOOTSTRAP_PARAMS__INIT;
  uint8_t *ro_buf, *out;

  ro.config_path = (char *)config_path;
  any.value.len = runtimeoptions__v1__options__get_packed_size(&ro);
  ro_buf = cshim_xmalloc(any.value.len);
  runtimeoptions__v1__options__pack(&ro, ro_buf);
  any.value.data = ro_buf;
  any.type_url = (char *)"type.googleapis.com/runtimeoptions.v1.Options";
  ext.value = &any;
  bp.instance_id = (char *)id;
  bp.namespace_ = (char *)ns;
  bp.containerd_grpc_address = (char *)"/other/containerd.sock";
  bp._socket_dir_case =
      CONTAINERD__RUNTIME__BOOTSTRAP__V1__BOOTSTRAP_PARAMS___SOCKET_DIR_SOCKET_DIR;
  bp.socket_dir = (char *)socket_dir;
  bp.n_extensions = 1;
  bp.extensions = exts;
  *len = containerd__runtime__bootstrap__v1__bootstrap_params__get_packed_size(&bp);
  out = cshim_xmalloc(*len);
  containerd__runtime__bootstrap__v1__bootstrap_params__pack(&bp, out);
  free(ro_buf);
  return out;
}

static void
test_start_takes_socket_dir_and_config_from_bootstrap(void **state)
{
  struct fixture *f = *state;
  host_flags_t fl = make_flags("task1");
  cshim_error_t err = NULL;
  char *out = NULL, *sockdir, *yaml, *want, *cfg, *report;
  uint8_t *in;
  size_t in_len;
  pid_t d = 0;

  cshim_xasprintf(&sockdir, "%s/boot-s", f->root);
  cshim_xasprintf(&yaml, "%s/acme.yaml", f->root);
  write_text(f->root, "acme.yaml", "version: 1\nmodules: [task.so]\n");
  in = pack_bootstrap_runtimeoptions("task1", "cshim-ns", sockdir, yaml, &in_len);

  assert_int_equal(run_start(f, &fl, f->bundle, NULL, NULL, in, in_len, &out, &d, &err), 0);
  /* the hash input is the bootstrap's gRPC address, not -address; BootstrapParams come only
     from containerd 2.3+, which gets task API v3 in a BootstrapResult */
  want = host_address_socket(sockdir, "/other/containerd.sock", "cshim-ns", "task1", false);
  {
    Containerd__Runtime__Bootstrap__V1__BootstrapResult *r =
        containerd__runtime__bootstrap__v1__bootstrap_result__unpack(NULL, strlen(out),
                                                                     (const uint8_t *)out);
    assert_non_null(r);
    assert_int_equal(r->version, 3);
    assert_string_equal(r->address, want);
    assert_string_equal(r->protocol, "ttrpc");
    containerd__runtime__bootstrap__v1__bootstrap_result__free_unpacked(r, NULL);
  }
  cfg = read_text(f->bundle, HOST_START_CONFIG_FILE);
  assert_string_equal(cfg, yaml);
  report = wait_report(f->bundle);
  assert_non_null(strstr(report, "-address /other/containerd.sock"));

  free(report);
  free(cfg);
  free(want);
  free(in);
  free(out);
  free(yaml);
  free(sockdir);
}

static void
test_start_fails_cleanly_when_config_is_bad(void **state)
{
  struct fixture *f = *state;
  host_flags_t fl = make_flags("task1");
  cshim_error_t err = NULL;
  char *out = NULL, *missing, *sock;
  uint8_t *in;
  size_t in_len;
  pid_t d = 0;
  struct stat st;

  cshim_xasprintf(&missing, "%s/missing.yaml", f->root);
  in = pack_bootstrap_runtimeoptions("task1", "cshim-ns", f->sockdir, missing, &in_len);
  assert_int_equal(run_start(f, &fl, f->bundle, NULL, NULL, in, in_len, &out, &d, &err), -ENOENT);
  assert_non_null(strstr(err->msg, "missing.yaml"));
  cshim_error_release(&err);
  assert_int_equal(d, 0);
  assert_string_equal(out, "");
  sock = host_address_socket(f->sockdir, "/other/containerd.sock", "cshim-ns", "task1", false);
  assert_int_equal(stat(host_address_path(sock), &st), -1);
  assert_int_equal(access(f->bundle, F_OK), 0);

  free(sock);
  free(in);
  free(out);
  free(missing);
}

static void
test_start_kills_daemon_and_removes_socket_on_late_failure(void **state)
{
  struct fixture *f = *state;
  host_flags_t fl = make_flags("task1");
  Containerd__Runc__V1__Options ro = CONTAINERD__RUNC__V1__OPTIONS__INIT;
  Google__Protobuf__Any any = GOOGLE__PROTOBUF__ANY__INIT;
  cshim_error_t err = NULL;
  char *out = NULL, *want, *cgroup;
  uint8_t *val, *in;
  size_t in_len;
  pid_t d = 0;
  struct stat st;

  /* a shim_cgroup that does not exist: the daemon is spawned, then joining fails */
  cshim_xasprintf(&cgroup, "/cshim-test-absent-%d", (int)getpid());
  ro.shim_cgroup = cgroup;
  any.type_url = (char *)"containerd.runc.v1.Options";
  any.value.len = containerd__runc__v1__options__get_packed_size(&ro);
  val = cshim_xmalloc(any.value.len);
  containerd__runc__v1__options__pack(&ro, val);
  any.value.data = val;
  in_len = google__protobuf__any__get_packed_size(&any);
  in = cshim_xmalloc(in_len);
  google__protobuf__any__pack(&any, in);

  assert_int_equal(run_start(f, &fl, f->bundle, f->sockdir, NULL, in, in_len, &out, &d, &err) < 0,
                   1);
  assert_non_null(strstr(err->msg, cgroup));
  cshim_error_release(&err);
  assert_int_equal(d, 0);
  assert_string_equal(out, "");
  want = host_address_socket(f->sockdir, fl.address, fl.namespace_, "task1", false);
  assert_int_equal(stat(host_address_path(want), &st), -1);
  /* the daemon it spawned was killed and reaped by start: no child is left */
  assert_int_equal(waitpid(-1, NULL, WNOHANG), -1);
  assert_int_equal(errno, ECHILD);

  free(want);
  free(in);
  free(val);
  free(cgroup);
  free(out);
}

static void
test_start_reports_exec_failure(void **state)
{
  struct fixture *f = *state;
  host_flags_t fl = make_flags("task1");
  cshim_error_t err = NULL;
  char *out = NULL, *want;
  pid_t d = 0;
  struct stat st;

  assert_int_equal(
      run_start(f, &fl, f->bundle, f->sockdir, "/nonexistent/shim", NULL, 0, &out, &d, &err),
      -ENOENT);
  assert_non_null(strstr(err->msg, "/nonexistent/shim"));
  cshim_error_release(&err);
  want = host_address_socket(f->sockdir, fl.address, fl.namespace_, "task1", false);
  assert_int_equal(stat(host_address_path(want), &st), -1);
  free(want);
  free(out);
}

static void
test_start_requires_namespace_and_id(void **state)
{
  struct fixture *f = *state;
  host_flags_t fl = make_flags("task1");
  cshim_error_t err = NULL;
  char *out = NULL;

  fl.namespace_ = "";
  assert_int_equal(run_start(f, &fl, f->bundle, f->sockdir, NULL, NULL, 0, &out, NULL, &err),
                   -EINVAL);
  assert_string_equal(err->msg, "shim namespace cannot be empty");
  cshim_error_release(&err);
  free(out);
}

/* stdin = a bare runtimeoptions.v1.Options Any with this config_body (CRI on containerd 1.7+) */
static uint8_t *
pack_config_body(const char *body, size_t *len)
{
  Runtimeoptions__V1__Options ro = RUNTIMEOPTIONS__V1__OPTIONS__INIT;
  Google__Protobuf__Any any = GOOGLE__PROTOBUF__ANY__INIT;
  uint8_t *val, *in;

  ro.config_body.data = (uint8_t *)body;
  ro.config_body.len = strlen(body);
  any.type_url = (char *)"runtimeoptions.v1.Options";
  any.value.len = runtimeoptions__v1__options__get_packed_size(&ro);
  val = cshim_xmalloc(any.value.len + 1);
  runtimeoptions__v1__options__pack(&ro, val);
  any.value.data = val;
  *len = google__protobuf__any__get_packed_size(&any);
  in = cshim_xmalloc(*len);
  google__protobuf__any__pack(&any, in);
  free(val);
  return in;
}

/* start fails with `want` in its message, and leaves no socket, daemon or output behind */
static void
expect_refused(struct fixture *f, const uint8_t *in, size_t in_len, const char *want)
{
  host_flags_t fl = make_flags("task1");
  cshim_error_t err = NULL;
  char *out = NULL, *sock;
  pid_t d = 0;
  struct stat st;

  assert_true(run_start(f, &fl, f->bundle, f->sockdir, NULL, in, in_len, &out, &d, &err) < 0);
  if (strstr(err->msg, want) == NULL)
    fail_msg("message `%s` does not contain `%s`", err->msg, want);
  cshim_error_release(&err);
  assert_int_equal(d, 0);
  assert_string_equal(out, "");
  sock = host_address_socket(f->sockdir, fl.address, fl.namespace_, "task1", false);
  assert_int_equal(stat(host_address_path(sock), &st), -1);
  assert_int_equal(waitpid(-1, NULL, WNOHANG), -1);
  free(sock);
  free(out);
}

static void
test_start_checks_modules_and_sections_before_answering(void **state)
{
  struct fixture *f = *state;
  static const struct
  {
    const char *yaml;
    const char *want;
  } cases[] = {
      {"version: 1\nmodules: [shutdown.so, nosuch.so]\n", "nosuch.so"},
      {"version: 1\nmodules: [shutdown.so, publisher.so]\n",
       "no module provides `io.containerd.ttrpc.v1.task`"},
      {"version: 1\ndisabled_plugins:\n  - io.containerd.ttrpc.v1.task\n",
       "c.yaml:3:5: plugin `io.containerd.ttrpc.v1.task` is disabled"},
      {"version: 1\nplugins:\n  io.containerd.ttrpc.v1.tsak: {}\n",
       "c.yaml:3:32: config for unknown plugin `io.containerd.ttrpc.v1.tsak`"},
      {"version: 1\nmodlues: []\n", "c.yaml:2:1"},
  };

  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    char *body, *yaml;
    uint8_t *in;
    size_t in_len;

    write_text(f->root, "c.yaml", cases[i].yaml);
    cshim_xasprintf(&yaml, "%s/c.yaml", f->root);
    cshim_xasprintf(&body, "ConfigPath = \"%s\"\n", yaml);
    in = pack_config_body(body, &in_len);
    /* the module check runs while the daemon starts: a debug socket it may have made (a
       stand-in file here) goes with it */
    host_flags_t fl = make_flags("task1");
    char *debug = host_address_socket(f->sockdir, fl.address, fl.namespace_, "task1", true);
    struct stat st;
    int fd;

    assert_true(mkdir(f->sockdir, 0700) == 0 || errno == EEXIST);
    fd = open(host_address_path(debug), O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
    assert_true(fd >= 0);
    close(fd);
    expect_refused(f, in, in_len, cases[i].want);
    /* the last case is refused by the parser, before any daemon: the file is not its to remove */
    if ((stat(host_address_path(debug), &st) == 0) != (i == sizeof cases / sizeof cases[0] - 1))
      fail_msg("case %zu: debug socket stand-in %s", i, i < 4 ? "left" : "removed");
    unlink(host_address_path(debug));
    free(debug);
    free(in);
    free(body);
    free(yaml);
  }
}

static void
test_start_refuses_a_config_body_it_does_not_understand(void **state)
{
  struct fixture *f = *state;
  uint8_t *in;
  size_t in_len;

  in = pack_config_body("BinaryName = \"/usr/bin/crun\"\nSystemdCgroup = 1\n", &in_len);
  expect_refused(f, in, in_len, "config_body:2:1: `SystemdCgroup` must be a boolean");
  free(in);
  in = pack_config_body("CshimConfig = \"version: 1\\nlog_levle: debug\\n\"\n", &in_len);
  expect_refused(f, in, in_len, "CshimConfig:2:1");
  free(in);
  in = pack_config_body("ConfigPath = \"/a.yaml\"\nCshimConfig = \"version: 1\"\n", &in_len);
  expect_refused(f, in, in_len, "set ConfigPath or CshimConfig, not both");
  free(in);
}

static void
test_start_keeps_an_inline_cshim_config_in_the_bundle(void **state)
{
  struct fixture *f = *state;
  host_flags_t fl = make_flags("task1");
  cshim_error_t err = NULL;
  char *out = NULL, *choice, *kept, *want;
  uint8_t *in;
  size_t in_len;
  pid_t d = 0;
  struct stat st;

  in = pack_config_body("CshimConfig = \"version: 1\\nlog_level: debug\\n\"\n", &in_len);
  assert_int_equal(run_start(f, &fl, f->bundle, f->sockdir, NULL, in, in_len, &out, &d, &err), 0);
  assert_true(d > 0);
  choice = read_text(f->bundle, HOST_START_CONFIG_FILE);
  cshim_xasprintf(&want, "%s/%s", f->bundle, HOST_START_INLINE_CONFIG_FILE);
  assert_string_equal(choice, want);
  kept = read_text(f->bundle, HOST_START_INLINE_CONFIG_FILE);
  assert_string_equal(kept, "version: 1\nlog_level: debug\n");
  assert_int_equal(stat(want, &st), 0);
  assert_int_equal(st.st_mode & 0777, 0600);
  free(kept);
  free(want);
  free(choice);
  free(in);
  free(out);
}

/* An error the daemon meets while its plugins initialise (say, an unknown key in a plugin's
   section) is start's error, and nothing stays behind. */
static void
test_start_fails_with_the_daemon_s_own_error(void **state)
{
  struct fixture *f = *state;
  host_flags_t fl = make_flags("task1");
  cshim_error_t err = NULL;
  char *out = NULL, *sock;
  pid_t d = 0;
  struct stat st;

  setenv("CSHIM_TEST_DAEMON_FAILS",
         "failed to load plugin `io.containerd.ttrpc.v1.task`: /c.yaml:4:5: unknown key `runtiem`",
         1);
  assert_true(run_start(f, &fl, f->bundle, f->sockdir, NULL, NULL, 0, &out, &d, &err) < 0);
  unsetenv("CSHIM_TEST_DAEMON_FAILS");
  assert_string_equal(
      err->msg,
      "failed to load plugin `io.containerd.ttrpc.v1.task`: /c.yaml:4:5: unknown key `runtiem`");
  cshim_error_release(&err);
  assert_int_equal(d, 0);
  assert_string_equal(out, "");
  sock = host_address_socket(f->sockdir, fl.address, fl.namespace_, "task1", false);
  assert_int_equal(stat(host_address_path(sock), &st), -1);
  assert_int_equal(waitpid(-1, NULL, WNOHANG), -1);
  assert_int_equal(errno, ECHILD);
  free(sock);
  free(out);
}

static void
test_start_reads_back_the_config_choice(void **state)
{
  struct fixture *f = *state;
  cshim_error_t err = NULL;
  char *src = (char *)"x";

  assert_int_equal(host_start_read_config_choice(f->bundle, &src, &err), 0);
  assert_null(src);
  write_text(f->bundle, HOST_START_CONFIG_FILE, "/etc/cshim/acme.yaml");
  assert_int_equal(host_start_read_config_choice(f->bundle, &src, &err), 0);
  assert_string_equal(src, "/etc/cshim/acme.yaml");
  free(src);
}

/* containerd 2.x gets version-3 JSON; a later start of the same group asks the running shim
   whether it serves task API v3 and, when it does not (this fake daemon closes every
   connection, as a shim from before v3 would answer Unimplemented), keeps the bare address
   (containerd issue #10888). containerd 1.x gets the bare address. */
static void
test_start_answers_v3_json_to_containerd_2(void **state)
{
  struct fixture *f = *state;
  host_flags_t fl = make_flags("task1");
  host_flags_t fl2 = make_flags("task2");
  cshim_error_t err = NULL;
  char *out = NULL, *out2 = NULL, *want, *json;
  pid_t d = 0, d2 = 0;

  write_text(
      f->bundle2, "config.json",
      "{\"ociVersion\":\"1.0.2\",\"annotations\":{\"io.containerd.runc.v2.group\":\"task1\"}}");
  f->containerd_major = 2;
  assert_int_equal(run_start(f, &fl, f->bundle, f->sockdir, NULL, NULL, 0, &out, &d, &err), 0);
  want = host_address_socket(f->sockdir, fl.address, fl.namespace_, "task1", false);
  cshim_xasprintf(&json, "{\"version\":3,\"address\":\"%s\",\"protocol\":\"ttrpc\"}", want);
  assert_string_equal(out, json);
  assert_true(d > 0);

  assert_int_equal(run_start(f, &fl2, f->bundle2, f->sockdir, NULL, NULL, 0, &out2, &d2, &err), 0);
  assert_int_equal(d2, 0);
  assert_string_equal(out2, want);
  free(out2);

  /* containerd 1.7 refuses version 3 and 1.6 reads only an address */
  f->containerd_major = 1;
  assert_int_equal(run_start(f, &fl2, f->bundle2, f->sockdir, NULL, NULL, 0, &out2, &d2, &err), 0);
  assert_string_equal(out2, want);

  free(out);
  free(out2);
  free(want);
  free(json);
}

int
main(int argc, char **argv)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_start_spawns_daemon_and_prints_address, setup, teardown),
      cmocka_unit_test_setup_teardown(test_start_answers_v3_json_to_containerd_2, setup, teardown),
      cmocka_unit_test_setup_teardown(test_start_reuses_the_group_shim_and_replaces_a_stale_socket,
                                      setup, teardown),
      cmocka_unit_test_setup_teardown(test_start_takes_socket_dir_and_config_from_bootstrap, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_start_fails_cleanly_when_config_is_bad, setup, teardown),
      cmocka_unit_test_setup_teardown(test_start_kills_daemon_and_removes_socket_on_late_failure,
                                      setup, teardown),
      cmocka_unit_test_setup_teardown(test_start_reports_exec_failure, setup, teardown),
      cmocka_unit_test_setup_teardown(test_start_requires_namespace_and_id, setup, teardown),
      cmocka_unit_test_setup_teardown(test_start_reads_back_the_config_choice, setup, teardown),
      cmocka_unit_test_setup_teardown(test_start_checks_modules_and_sections_before_answering,
                                      setup, teardown),
      cmocka_unit_test_setup_teardown(test_start_refuses_a_config_body_it_does_not_understand,
                                      setup, teardown),
      cmocka_unit_test_setup_teardown(test_start_keeps_an_inline_cshim_config_in_the_bundle, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_start_fails_with_the_daemon_s_own_error, setup,
                                      teardown),
  };

  if (argc > 1 && strcmp(argv[1], "-namespace") == 0)
    return fake_daemon(argc, argv);
  return cmocka_run_group_tests(tests, NULL, NULL);
}
