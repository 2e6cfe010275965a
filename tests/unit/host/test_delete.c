// SPDX-License-Identifier: Apache-2.0
// Unit tests of host/delete.c: idempotent cleanup and the DeleteResponse it prints.
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cshim/runc_options.h>
#include <cshim/util.h>

#include "containerd/task/v2/shim.pb-c.h"

#include "address.h"
#include "delete.h"
#include "options.h"

#define FAKE_RUNTIME_ENV "CSHIM_TEST_FAKE_RUNTIME_OUT"

/* This binary re-executed as the runtime: record the arguments in the file named by the env. */
static int
fake_runtime(int argc, char **argv)
{
  FILE *out = fopen(getenv(FAKE_RUNTIME_ENV), "w");

  if (out == NULL)
    return 1;
  for (int i = 1; i < argc; i++)
    fprintf(out, "%s%s", i > 1 ? " " : "", argv[i]);
  fputc('\n', out);
  return fclose(out) == 0 ? 0 : 1;
}

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
  nftw(dir, rm_cb, 16, FTW_DEPTH | FTW_PHYS | FTW_MOUNT);
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
  char *root;
  char *bundle;
  char *runtime_root;
  char *rootfs;
  bool mounted;
  int out_fd, err_fd;
};

static int
setup(void **state)
{
  struct fixture *f = cshim_xmalloc0(sizeof *f);
  char tmpl[] = "/tmp/cshim-test-delete-XXXXXX";
  char *p;

  assert_non_null(mkdtemp(tmpl));
  f->root = cshim_xstrdup(tmpl);
  cshim_xasprintf(&f->bundle, "%s/bundle", f->root);
  cshim_xasprintf(&f->runtime_root, "%s/runc-root", f->root);
  cshim_xasprintf(&f->rootfs, "%s/rootfs", f->bundle);
  cshim_xasprintf(&p, "%s/out", f->root);
  f->out_fd = open(p, O_RDWR | O_CREAT | O_TRUNC, 0600);
  free(p);
  cshim_xasprintf(&p, "%s/err", f->root);
  f->err_fd = open(p, O_RDWR | O_CREAT | O_TRUNC, 0600);
  free(p);
  assert_true(f->out_fd >= 0 && f->err_fd >= 0);
  *state = f;
  return 0;
}

static int
teardown(void **state)
{
  struct fixture *f = *state;

  if (f->mounted)
    umount2(f->rootfs, MNT_DETACH);
  close(f->out_fd);
  close(f->err_fd);
  rm_rf(f->root);
  free(f->root);
  free(f->bundle);
  free(f->runtime_root);
  free(f->rootfs);
  free(f);
  return 0;
}

static char *
slurp(int fd, size_t *len)
{
  uint8_t *data = NULL;
  cshim_error_t err = NULL;

  lseek(fd, 0, SEEK_SET);
  assert_int_equal(host_options_read_all(fd, &data, len, &err), 0);
  return (char *)data;
}

static Containerd__Task__V2__DeleteResponse *
run_delete(struct fixture *f, const char *bundle_flag, const char *default_runtime, int *ret)
{
  host_flags_t fl = {0};
  host_delete_params_t p = {
      .default_runtime = default_runtime,
      .default_root = f->runtime_root,
      .stderr_fd = f->err_fd,
  };
  cshim_error_t err = NULL;
  Containerd__Task__V2__DeleteResponse *resp;
  char *out;
  size_t len;

  fl.namespace_ = "cshim-test";
  fl.id = "demo";
  fl.address = "/run/containerd/containerd.sock";
  fl.bundle = bundle_flag;
  fl.action = "delete";
  *ret = host_delete_run_params(&fl, &p, f->out_fd, &err);
  if (*ret < 0) {
    print_error("%s\n", err->msg);
    cshim_error_release(&err);
    return NULL;
  }
  out = slurp(f->out_fd, &len);
  resp = containerd__task__v2__delete_response__unpack(NULL, len, (uint8_t *)out);
  free(out);
  assert_non_null(resp);
  return resp;
}

static void
assert_killed_now(const Containerd__Task__V2__DeleteResponse *r, uint32_t pid)
{
  time_t now = time(NULL);

  assert_int_equal(r->pid, pid);
  assert_int_equal(r->exit_status, 137);
  assert_non_null(r->exited_at);
  assert_true(r->exited_at->seconds >= now - 60 && r->exited_at->seconds <= now + 1);
}

static void
test_delete_absent_bundle_still_prints_a_response(void **state)
{
  struct fixture *f = *state;
  Containerd__Task__V2__DeleteResponse *r;
  int ret;

  /* no bundle at all; the runtime (real runc, empty root) finds no container */
  r = run_delete(f, f->bundle, NULL, &ret);
  assert_int_equal(ret, 0);
  assert_killed_now(r, 0);
  containerd__task__v2__delete_response__free_unpacked(r, NULL);
}

static void
test_delete_empty_bundle_prints_a_response_without_warnings(void **state)
{
  struct fixture *f = *state;
  Containerd__Task__V2__DeleteResponse *r;
  char *errs;
  size_t len;
  int ret;

  assert_int_equal(mkdir(f->bundle, 0700), 0);
  r = run_delete(f, f->bundle, NULL, &ret);
  assert_int_equal(ret, 0);
  assert_killed_now(r, 0);
  containerd__task__v2__delete_response__free_unpacked(r, NULL);
  errs = slurp(f->err_fd, &len);
  if (access("/usr/sbin/runc", X_OK) == 0 || access("/usr/bin/runc", X_OK) == 0)
    assert_string_equal(errs, ""); /* "container does not exist" is expected, not a warning */
  free(errs);
}

static void
test_delete_reads_pid_runtime_and_unmounts_rootfs(void **state)
{
  struct fixture *f = *state;
  Containerd__Task__V2__DeleteResponse *r;
  cshim_runc_options_t opts = {0};
  cshim_error_t err = NULL;
  char *marker, *args, *cwd_args;
  size_t len;
  int ret, fd;

  assert_int_equal(mkdir(f->bundle, 0700), 0);
  assert_int_equal(mkdir(f->rootfs, 0700), 0);
  write_text(f->bundle, "init.pid", "4242");
  /* The recorded runtime: this test binary, which writes down the arguments it got. */
  cshim_xasprintf(&marker, "%s/args", f->root);
  setenv(FAKE_RUNTIME_ENV, marker, 1);
  {
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    assert_true(n > 0);
    exe[n] = '\0';
    assert_int_equal(cshim_runc_runtime_write(f->bundle, exe, &err), 0);
  }
  opts.root = cshim_xstrdup("/run/custom-root");
  opts.systemd_cgroup = true;
  assert_int_equal(cshim_runc_options_write(f->bundle, &opts, &err), 0);
  cshim_runc_options_clear(&opts);

  /* two stacked mounts on rootfs: both must go */
  if (mount("tmpfs", f->rootfs, "tmpfs", 0, NULL) == 0 &&
      mount("tmpfs", f->rootfs, "tmpfs", 0, NULL) == 0)
    f->mounted = true;

  r = run_delete(f, f->bundle, NULL, &ret);
  assert_int_equal(ret, 0);
  assert_killed_now(r, 4242);
  containerd__task__v2__delete_response__free_unpacked(r, NULL);

  unsetenv(FAKE_RUNTIME_ENV);
  fd = open(marker, O_RDONLY);
  assert_true(fd >= 0);
  args = slurp(fd, &len);
  close(fd);
  cshim_xasprintf(&cwd_args,
                  "--root /run/custom-root/cshim-test --log %s/log.json --log-format json "
                  "--systemd-cgroup delete --force demo\n",
                  f->bundle);
  assert_string_equal(args, cwd_args);

  if (f->mounted) {
    struct stat a, b;
    assert_int_equal(stat(f->rootfs, &a), 0);
    assert_int_equal(stat(f->bundle, &b), 0);
    assert_int_equal(a.st_dev, b.st_dev); /* nothing mounted any more */
    f->mounted = false;
  }
  free(args);
  free(cwd_args);
  free(marker);
}

/* The task section's runtime_args of the config start recorded reach the runtime, before `delete`.
 */
static void
test_delete_passes_the_configured_runtime_args(void **state)
{
  struct fixture *f = *state;
  Containerd__Task__V2__DeleteResponse *r;
  cshim_error_t err = NULL;
  char *marker, *args, *expected, *config, *yaml;
  size_t len;
  int ret, fd;

  assert_int_equal(mkdir(f->bundle, 0700), 0);
  cshim_xasprintf(&marker, "%s/args", f->root);
  setenv(FAKE_RUNTIME_ENV, marker, 1);
  {
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    assert_true(n > 0);
    exe[n] = '\0';
    assert_int_equal(cshim_runc_runtime_write(f->bundle, exe, &err), 0);
  }
  cshim_xasprintf(&config, "%s/runsc.yaml", f->root);
  cshim_xasprintf(&yaml, "version: 1\nplugins:\n  io.containerd.ttrpc.v1.task:\n"
                         "    runtime_args: [--network=none, \"--platform=ptrace\"]\n");
  write_text(f->root, "runsc.yaml", yaml);
  write_text(f->bundle, "cshim-config", config);

  r = run_delete(f, f->bundle, NULL, &ret);
  assert_int_equal(ret, 0);
  containerd__task__v2__delete_response__free_unpacked(r, NULL);
  unsetenv(FAKE_RUNTIME_ENV);
  fd = open(marker, O_RDONLY);
  assert_true(fd >= 0);
  args = slurp(fd, &len);
  close(fd);
  cshim_xasprintf(&expected,
                  "--root %s/cshim-test --log %s/log.json --log-format json "
                  "--network=none --platform=ptrace delete --force demo\n",
                  f->runtime_root, f->bundle);
  assert_string_equal(args, expected);
  free(args);
  free(expected);
  free(config);
  free(yaml);
  free(marker);
}

static void
test_delete_warns_but_succeeds_when_runtime_fails(void **state)
{
  struct fixture *f = *state;
  Containerd__Task__V2__DeleteResponse *r;
  char *errs;
  size_t len;
  int ret;

  assert_int_equal(mkdir(f->bundle, 0700), 0);
  write_text(f->bundle, "init.pid", "garbage");
  r = run_delete(f, f->bundle, "/bin/false", &ret);
  assert_int_equal(ret, 0);
  assert_killed_now(r, 0);
  containerd__task__v2__delete_response__free_unpacked(r, NULL);
  errs = slurp(f->err_fd, &len);
  assert_non_null(strstr(errs, "level=warning"));
  assert_non_null(strstr(errs, "failed to remove runc container"));
  assert_non_null(strstr(errs, "init.pid"));
  free(errs);

  /* a runtime that does not exist at all: a warning too */
  r = run_delete(f, f->bundle, "/nonexistent/runtime", &ret);
  assert_int_equal(ret, 0);
  containerd__task__v2__delete_response__free_unpacked(r, NULL);
}

static void
test_delete_removes_only_a_dead_socket(void **state)
{
  struct fixture *f = *state;
  Containerd__Task__V2__DeleteResponse *r;
  cshim_error_t err = NULL;
  char *sockdir, *address;
  int fd = -1, ret;
  bool existing;
  struct stat st;

  assert_int_equal(mkdir(f->bundle, 0700), 0);
  cshim_xasprintf(&sockdir, "%s/s", f->root);
  address = host_address_socket(sockdir, "/grpc", "cshim-test", "demo", false);
  assert_int_equal(host_address_listen(address, &fd, &existing, &err), 0);
  assert_int_equal(host_address_write_file(f->bundle, address, &err), 0);

  /* a live shim (e.g. serving other tasks of the group) keeps its socket */
  r = run_delete(f, f->bundle, "/bin/true", &ret);
  containerd__task__v2__delete_response__free_unpacked(r, NULL);
  assert_int_equal(stat(host_address_path(address), &st), 0);

  close(fd);
  r = run_delete(f, f->bundle, "/bin/true", &ret);
  containerd__task__v2__delete_response__free_unpacked(r, NULL);
  assert_int_equal(stat(host_address_path(address), &st), -1);

  free(address);
  free(sockdir);
}

/* After kill -9 of a shim both its sockets stay behind: delete removes both. */
static void
test_delete_removes_the_debug_socket_of_a_killed_shim(void **state)
{
  struct fixture *f = *state;
  Containerd__Task__V2__DeleteResponse *r;
  cshim_error_t err = NULL;
  char *sockdir, *address, *debug;
  int fd = -1, dfd = -1, ret;
  bool existing;
  struct stat st;

  assert_int_equal(mkdir(f->bundle, 0700), 0);
  cshim_xasprintf(&sockdir, "%s/s", f->root);
  /* What start and the debug plugin name them, for the flags run_delete passes. */
  address =
      host_address_socket(sockdir, "/run/containerd/containerd.sock", "cshim-test", "demo", false);
  debug =
      host_address_socket(sockdir, "/run/containerd/containerd.sock", "cshim-test", "demo", true);
  assert_string_not_equal(address, debug);
  assert_int_equal(host_address_listen(address, &fd, &existing, &err), 0);
  assert_int_equal(host_address_listen(debug, &dfd, &existing, &err), 0);
  assert_int_equal(host_address_write_file(f->bundle, address, &err), 0);

  /* Alive: both stay. */
  r = run_delete(f, f->bundle, "/bin/true", &ret);
  containerd__task__v2__delete_response__free_unpacked(r, NULL);
  assert_int_equal(stat(host_address_path(address), &st), 0);
  assert_int_equal(stat(host_address_path(debug), &st), 0);

  /* Killed: nothing listens any more, the files remain until delete. */
  close(fd);
  close(dfd);
  assert_int_equal(stat(host_address_path(debug), &st), 0);
  r = run_delete(f, f->bundle, "/bin/true", &ret);
  assert_int_equal(ret, 0);
  containerd__task__v2__delete_response__free_unpacked(r, NULL);
  assert_int_equal(stat(host_address_path(address), &st), -1);
  assert_int_equal(stat(host_address_path(debug), &st), -1);

  free(debug);
  free(address);
  free(sockdir);
}

static void
test_delete_uses_cwd_without_bundle_flag(void **state)
{
  struct fixture *f = *state;
  Containerd__Task__V2__DeleteResponse *r;
  char old[PATH_MAX];
  int ret;

  assert_int_equal(mkdir(f->bundle, 0700), 0);
  write_text(f->bundle, "init.pid", "77");
  assert_non_null(getcwd(old, sizeof old));
  assert_int_equal(chdir(f->bundle), 0);
  r = run_delete(f, NULL, "/bin/true", &ret);
  assert_int_equal(chdir(old), 0);
  assert_int_equal(ret, 0);
  assert_killed_now(r, 77);
  containerd__task__v2__delete_response__free_unpacked(r, NULL);
}

/* Whether `<name> delete` ran: name is a link to this test binary recorded as the runtime. */
static bool
runtime_ran(struct fixture *f, const char *name)
{
  Containerd__Task__V2__DeleteResponse *r;
  cshim_error_t err = NULL;
  char exe[PATH_MAX], *link, *marker;
  ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
  bool ran;
  int ret;

  assert_true(n > 0);
  exe[n] = '\0';
  cshim_xasprintf(&link, "%s/bin/%s", f->root, name);
  cshim_xasprintf(&marker, "%s/args-%s", f->root, name);
  unlink(marker);
  mkdir(f->bundle, 0700);
  {
    char *dir;
    cshim_xasprintf(&dir, "%s/bin", f->root);
    mkdir(dir, 0700);
    free(dir);
  }
  unlink(link);
  assert_int_equal(symlink(exe, link), 0);
  assert_int_equal(cshim_runc_runtime_write(f->bundle, link, &err), 0);
  setenv(FAKE_RUNTIME_ENV, marker, 1);
  r = run_delete(f, f->bundle, NULL, &ret);
  unsetenv(FAKE_RUNTIME_ENV);
  assert_int_equal(ret, 0);
  assert_killed_now(r, 0);
  containerd__task__v2__delete_response__free_unpacked(r, NULL);
  ran = access(marker, F_OK) == 0;
  unlink(marker);
  free(marker);
  free(link);
  return ran;
}

static void
test_delete_skips_runc_and_crun_without_a_state_dir(void **state)
{
  struct fixture *f = *state;
  char *ns_root, *state_dir;

  /* <root>/<ns>/<id> is gone (the daemon's Delete removed it): nothing to ask */
  assert_false(runtime_ran(f, "runc"));
  assert_false(runtime_ran(f, "crun"));
  /* runsc (or a wrapper) keeps another layout: always asked */
  assert_true(runtime_ran(f, "runsc"));
  assert_true(runtime_ran(f, "runc-wrapper"));
  /* the runtime still knows the container (the shim died): delete --force runs */
  cshim_xasprintf(&ns_root, "%s/cshim-test", f->runtime_root);
  cshim_xasprintf(&state_dir, "%s/demo", ns_root);
  assert_int_equal(mkdir(f->runtime_root, 0700), 0);
  assert_int_equal(mkdir(ns_root, 0700), 0);
  assert_int_equal(mkdir(state_dir, 0700), 0);
  assert_true(runtime_ran(f, "runc"));
  assert_true(runtime_ran(f, "crun"));
  free(state_dir);
  free(ns_root);
}

int
main(int argc, char **argv)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_delete_absent_bundle_still_prints_a_response, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_delete_empty_bundle_prints_a_response_without_warnings,
                                      setup, teardown),
      cmocka_unit_test_setup_teardown(test_delete_reads_pid_runtime_and_unmounts_rootfs, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_delete_passes_the_configured_runtime_args, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_delete_warns_but_succeeds_when_runtime_fails, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_delete_removes_only_a_dead_socket, setup, teardown),
      cmocka_unit_test_setup_teardown(test_delete_removes_the_debug_socket_of_a_killed_shim, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_delete_uses_cwd_without_bundle_flag, setup, teardown),
      cmocka_unit_test_setup_teardown(test_delete_skips_runc_and_crun_without_a_state_dir, setup,
                                      teardown),
  };
  if (argc > 1 && strcmp(argv[1], "--root") == 0 && getenv(FAKE_RUNTIME_ENV))
    return fake_runtime(argc, argv);
  return cmocka_run_group_tests(tests, NULL, NULL);
}
