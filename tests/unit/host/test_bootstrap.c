// SPDX-License-Identifier: Apache-2.0
// Unit tests of host/bootstrap.c: containerd's version (asked once per binary), the announced
// task API version, and the forms of start's answer.
#define _GNU_SOURCE
/* before cmocka.h, whose fail() macro would clash with the call ops' fail member */
#include <cshim/ttrpc.h>

#include "containerd/task/v2/shim.pb-c.h"
#include "ttrpc_server.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <uv.h>
#include <ftw.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include <cshim/util.h>

#include "containerd/runtime/bootstrap/v1/bootstrap.pb-c.h"

#include "bootstrap.h"

static int
rm_cb(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
  (void)st;
  (void)flag;
  (void)ftw;
  remove(path);
  return 0;
}

static int
setup(void **state)
{
  char tmpl[] = "/tmp/cshim-test-bootstrap-XXXXXX";
  assert_non_null(mkdtemp(tmpl));
  *state = cshim_xstrdup(tmpl);
  return 0;
}

static int
teardown(void **state)
{
  nftw(*state, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
  free(*state);
  return 0;
}

/* A fake containerd: prints `line` for --version and counts its runs in <dir>/runs. */
static char *
fake_containerd(const char *dir, const char *line, int status)
{
  char *path;
  FILE *f;

  cshim_xasprintf(&path, "%s/containerd", dir);
  f = fopen(path, "w");
  assert_non_null(f);
  fprintf(f,
          "#!/bin/sh\necho run >>%s/runs\n[ \"$1\" = --version ] || exit 9\necho '%s'\nexit %d\n",
          dir, line, status);
  fclose(f);
  assert_int_equal(chmod(path, 0755), 0);
  return path;
}

static int
count_runs(const char *dir)
{
  char *path, line[64];
  int n = 0;
  FILE *f;

  cshim_xasprintf(&path, "%s/runs", dir);
  f = fopen(path, "r");
  free(path);
  if (f == NULL)
    return 0;
  while (fgets(line, sizeof line, f))
    n++;
  fclose(f);
  return n;
}

static void
test_bootstrap_reads_the_major_version_of_containerd_output(void **state)
{
  (void)state;
  /* what Debian's builds print */
  assert_int_equal(host_bootstrap_parse_version(
                       "containerd github.com/containerd/containerd 1.6.20~ds1 1.6.20~ds1-1\n"),
                   1);
  assert_int_equal(host_bootstrap_parse_version(
                       "containerd github.com/containerd/containerd/v2 2.1.9+unknown \n"),
                   2);
  /* upstream release builds */
  assert_int_equal(host_bootstrap_parse_version(
                       "containerd containerd.io v2.3.0 0123456789abcdef0123456789abcdef01234567"),
                   2);
  assert_int_equal(host_bootstrap_parse_version("containerd x 10.0.1 r"), 10);
  assert_int_equal(host_bootstrap_parse_version("containerd"), -1);
  assert_int_equal(host_bootstrap_parse_version("containerd x"), -1);
  assert_int_equal(host_bootstrap_parse_version("containerd x dev"), -1);
  assert_int_equal(host_bootstrap_parse_version("containerd x 2"), -1);
  assert_int_equal(host_bootstrap_parse_version(""), -1);
}

static void
test_bootstrap_asks_each_containerd_binary_once(void **state)
{
  const char *dir = *state;
  char *bin = fake_containerd(dir, "containerd github.com/containerd/containerd/v2 2.1.9 ", 0);
  char *cache;
  cshim_error_t err = NULL;
  struct timeval tv[2] = {{1000000000, 0}, {1000000000, 0}};
  int major = 0;

  cshim_xasprintf(&cache, "%s/cache/deeper", dir);
  assert_int_equal(host_bootstrap_containerd_major(bin, cache, &major, &err), 0);
  assert_int_equal(major, 2);
  assert_int_equal(count_runs(dir), 1);
  /* the second start of the same binary reads the cache */
  major = 0;
  assert_int_equal(host_bootstrap_containerd_major(bin, cache, &major, &err), 0);
  assert_int_equal(major, 2);
  assert_int_equal(count_runs(dir), 1);

  /* an upgraded binary (another mtime) is asked again */
  free(bin);
  bin = fake_containerd(dir, "containerd github.com/containerd/containerd 1.7.24~ds1 x", 0);
  assert_int_equal(utimes(bin, tv), 0);
  assert_int_equal(host_bootstrap_containerd_major(bin, cache, &major, &err), 0);
  assert_int_equal(major, 1);
  assert_int_equal(count_runs(dir), 2);

  free(bin);
  free(cache);
}

static void
test_bootstrap_major_version_failures_name_the_binary(void **state)
{
  const char *dir = *state;
  char *bin = fake_containerd(dir, "containerd github.com/containerd/containerd 1.7.24 x", 3);
  cshim_error_t err = NULL;
  int major = 7;

  assert_true(host_bootstrap_containerd_major(bin, dir, &major, &err) < 0);
  assert_int_equal(major, 0);
  assert_non_null(strstr(err->msg, "--version"));
  cshim_error_release(&err);
  free(bin);

  bin = fake_containerd(dir, "something else", 0);
  assert_true(host_bootstrap_containerd_major(bin, dir, &major, &err) < 0);
  assert_non_null(strstr(err->msg, "something else"));
  cshim_error_release(&err);
  free(bin);

  assert_int_equal(host_bootstrap_containerd_major("relative/containerd", dir, &major, &err),
                   -EINVAL);
  cshim_error_release(&err);
  assert_int_equal(host_bootstrap_containerd_major("/nonexistent/containerd", dir, &major, &err),
                   -ENOENT);
  cshim_error_release(&err);
}

static void
test_bootstrap_announces_v3_only_to_containerd_2_and_v3_shims(void **state)
{
  (void)state;
  /* containerd 1.6/1.7, or unknown: task API v2 through the bare address */
  assert_int_equal(host_bootstrap_version(0, false, false, false), 2);
  assert_int_equal(host_bootstrap_version(1, false, false, false), 2);
  assert_int_equal(host_bootstrap_version(1, false, true, true), 2);
  /* 2.x: v3 for a new shim, and for an existing one only when it serves v3 */
  assert_int_equal(host_bootstrap_version(2, false, false, false), 3);
  assert_int_equal(host_bootstrap_version(2, false, true, true), 3);
  assert_int_equal(host_bootstrap_version(2, false, true, false), 2);
  /* BootstrapParams on stdin: containerd 2.3+ */
  assert_int_equal(host_bootstrap_version(0, true, false, false), 3);
  assert_int_equal(host_bootstrap_version(0, true, true, false), 2);
}

static void
test_bootstrap_answer_is_address_json_or_protobuf(void **state)
{
  const char *addr = "unix:///run/containerd/s/0123abcd";
  cshim_error_t err = NULL;
  uint8_t *out = NULL;
  size_t len = 0;
  json_t *j;
  json_error_t jerr;
  (void)state;

  assert_int_equal(host_bootstrap_answer(addr, 2, false, &out, &len, &err), 0);
  assert_int_equal(len, strlen(addr));
  assert_memory_equal(out, addr, len);
  free(out);
  assert_int_equal(host_bootstrap_answer(addr, 2, true, &out, &len, &err), 0);
  assert_memory_equal(out, addr, len);
  free(out);

  assert_int_equal(host_bootstrap_answer(addr, 3, false, &out, &len, &err), 0);
  j = json_loadb((const char *)out, len, 0, &jerr);
  assert_non_null(j);
  assert_int_equal(json_integer_value(json_object_get(j, "version")), 3);
  assert_string_equal(json_string_value(json_object_get(j, "address")), addr);
  assert_string_equal(json_string_value(json_object_get(j, "protocol")), "ttrpc");
  assert_int_equal(json_object_size(j), 3);
  json_decref(j);
  free(out);

  assert_int_equal(host_bootstrap_answer(addr, 3, true, &out, &len, &err), 0);
  {
    Containerd__Runtime__Bootstrap__V1__BootstrapResult *r =
        containerd__runtime__bootstrap__v1__bootstrap_result__unpack(NULL, len, out);
    assert_non_null(r);
    assert_int_equal(r->version, 3);
    assert_string_equal(r->address, addr);
    assert_string_equal(r->protocol, "ttrpc");
    containerd__runtime__bootstrap__v1__bootstrap_result__free_unpacked(r, NULL);
  }
  free(out);
}

static void
test_bootstrap_probe_of_no_shim_is_false(void **state)
{
  char *addr;

  cshim_xasprintf(&addr, "unix://%s/none.sock", (const char *)*state);
  assert_false(host_bootstrap_probe_v3(addr, 500));
  free(addr);
}

static void
connect_handler(cshim_ttrpc_call_t *call, const ProtobufCMessage *req, void *data)
{
  Containerd__Task__V2__ConnectResponse resp = CONTAINERD__TASK__V2__CONNECT_RESPONSE__INIT;
  (void)req;
  (void)data;
  resp.shim_pid = (uint32_t)getpid();
  cshim_ttrpc_call_reply(call, &resp.base);
}

static const cshim_ttrpc_method_t connect_only[] = {{"Connect", connect_handler}, {NULL, NULL}};

/* A real ttrpc server in a child serving Connect under `service`; returns its pid once it
   listens on path. */
static pid_t
serve_connect(const char *path, const char *service)
{
  int ready[2];
  char c;
  pid_t pid;

  assert_int_equal(pipe(ready), 0);
  pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    cshim_ttrpc_service_t svc = {.name = service,
                                 .descriptor = &containerd__task__v2__task__descriptor,
                                 .methods = connect_only};
    host_ttrpc_server_t *srv = NULL;
    cshim_error_t err = NULL;
    uv_loop_t loop;

    close(ready[0]);
    signal(SIGPIPE, SIG_IGN);
    uv_loop_init(&loop);
    if (host_ttrpc_server_new(&loop, NULL, &srv, &err) < 0 ||
        cshim_ttrpc_server_register(host_ttrpc_server_api(srv), &svc, &err) < 0 ||
        host_ttrpc_server_listen_path(srv, path, &err) < 0)
      _exit(1);
    if (write(ready[1], "r", 1) != 1)
      _exit(1);
    uv_run(&loop, UV_RUN_DEFAULT);
    _exit(0);
  }
  close(ready[1]);
  assert_int_equal(read(ready[0], &c, 1), 1);
  close(ready[0]);
  return pid;
}

static void
test_bootstrap_probe_asks_the_running_shim(void **state)
{
  char *path, *addr;
  pid_t pid;

  cshim_xasprintf(&path, "%s/shim.sock", (const char *)*state);
  cshim_xasprintf(&addr, "unix://%s", path);

  /* a shim serving containerd.task.v3.Task answers Connect: v3 */
  pid = serve_connect(path, "containerd.task.v3.Task");
  assert_true(host_bootstrap_probe_v3(addr, 5000));
  kill(pid, SIGKILL);
  waitpid(pid, NULL, 0);
  unlink(path);

  /* one serving only v2 (a shim from before v3, e.g. containerd 1.7's runc shim) answers
     Unimplemented: not v3 */
  pid = serve_connect(path, "containerd.task.v2.Task");
  assert_false(host_bootstrap_probe_v3(addr, 5000));
  kill(pid, SIGKILL);
  waitpid(pid, NULL, 0);

  free(addr);
  free(path);
}

int
main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_bootstrap_reads_the_major_version_of_containerd_output),
      cmocka_unit_test_setup_teardown(test_bootstrap_asks_each_containerd_binary_once, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_bootstrap_major_version_failures_name_the_binary, setup,
                                      teardown),
      cmocka_unit_test(test_bootstrap_announces_v3_only_to_containerd_2_and_v3_shims),
      cmocka_unit_test(test_bootstrap_answer_is_address_json_or_protobuf),
      cmocka_unit_test_setup_teardown(test_bootstrap_probe_of_no_shim_is_false, setup, teardown),
      cmocka_unit_test_setup_teardown(test_bootstrap_probe_asks_the_running_shim, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
