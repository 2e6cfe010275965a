// SPDX-License-Identifier: Apache-2.0
// Tests of the OCI runtime wrapper: argv, errors, timeouts and teardown against a fake runtime,
// then a container lifecycle against the real runc and crun (as root).
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <jansson.h>
#include <limits.h>
#include <sched.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <sys/wait.h>
#include <unistd.h>
#include <uv.h>

#include <cmocka.h>

#include <cshim/runtime.h>
#include <cshim/spawn.h>
#include <cshim/util.h>

#include "reaper.h"

#ifndef FAKE_RUNTIME
#error FAKE_RUNTIME must name the fake runtime binary
#endif

struct fixture
{
  uv_loop_t loop;
  host_reaper_t *reaper;
  char dir[64];
  /* real runtime tests */
  const char *runtime;
  bool available;
  cshim_runtime_t *rt;
  char id[64];
  char root[128], bundle[128], log[192], pid_file[192];
};

struct rec
{
  int calls;
  int wait_status;
  cshim_error_t error;
  char *out;
};

static void
result_cb(void *data, cshim_runtime_result_t *result)
{
  struct rec *r = data;
  r->calls++;
  r->wait_status = result->wait_status;
  r->error = cshim_steal_pointer(&result->error);
  free(r->out);
  r->out = cshim_xstrndup(result->out, result->out_len);
}

static void
rec_reset(struct rec *r)
{
  cshim_error_release(&r->error);
  free(r->out);
  memset(r, 0, sizeof *r);
}

static void
tick_cb(uv_timer_t *t)
{
  (void)t;
}

static void
noop_close_cb(uv_handle_t *h)
{
  (void)h;
}

/* Run the loop until *counter reaches target (or ms pass); returns whether it did. */
static bool
run_until(struct fixture *f, const int *counter, int target, uint64_t ms)
{
  /* A repeating tick bounds every UV_RUN_ONCE: a one-shot guard could fire at the top of an
     iteration and leave the poll below it waiting forever. */
  uint64_t deadline = cshim_now_ns() + ms * 1000000ull;
  uv_timer_t tick;
  uv_timer_init(&f->loop, &tick);
  uv_timer_start(&tick, tick_cb, 10, 10);
  while (cshim_now_ns() < deadline && (counter == NULL || *counter < target))
    uv_run(&f->loop, UV_RUN_ONCE);
  uv_close((uv_handle_t *)&tick, noop_close_cb);
  uv_run(&f->loop, UV_RUN_NOWAIT);
  return counter && *counter >= target;
}

static void
await(struct fixture *f, struct rec *r)
{
  assert_int_equal(r->calls, 0); /* never from inside the call */
  assert_true(run_until(f, &r->calls, 1, 60000));
  assert_int_equal(r->calls, 1);
}

static char *
read_file(const char *path)
{
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  size_t len = 0, cap = 4096;
  char *buf;
  if (fd < 0)
    return NULL;
  buf = cshim_xmalloc(cap);
  for (;;) {
    ssize_t n;
    if (len + 1 >= cap)
      buf = cshim_xrealloc(buf, cap *= 2);
    n = read(fd, buf + len, cap - len - 1);
    if (n <= 0)
      break;
    len += (size_t)n;
  }
  buf[len] = '\0';
  close(fd);
  return buf;
}

static void
write_file(const char *path, const char *text)
{
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  assert_true(fd >= 0);
  assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
  close(fd);
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
  nftw(dir, rm_cb, 32, FTW_DEPTH | FTW_PHYS | FTW_MOUNT);
}

static const char *const fake_env[] = {"FAKE_RUNTIME_MODE", "FAKE_RUNTIME_ARGV_FILE",
                                       "FAKE_RUNTIME_PID_FILE", "FAKE_RUNTIME_STDOUT",
                                       "FAKE_RUNTIME_MSG"};

static int
setup(void **state)
{
  struct fixture *f = cshim_xmalloc0(sizeof *f);
  cshim_error_t err = NULL;
  assert_int_equal(uv_loop_init(&f->loop), 0);
  assert_int_equal(host_reaper_new(&f->loop, NULL, &f->reaper, &err), 0);
  snprintf(f->dir, sizeof f->dir, "/tmp/cshim-runtime-XXXXXX");
  assert_non_null(mkdtemp(f->dir));
  *state = f;
  return 0;
}

static int
teardown(void **state)
{
  struct fixture *f = *state;
  for (size_t i = 0; i < CSHIM_N_ELEMENTS(fake_env); i++)
    unsetenv(fake_env[i]);
  cshim_runtime_free(f->rt);
  run_until(f, NULL, 0, 50);
  host_reaper_close(f->reaper);
  uv_run(&f->loop, UV_RUN_DEFAULT);
  assert_int_equal(uv_loop_close(&f->loop), 0);
  rm_rf(f->dir);
  free(f);
  return 0;
}

static cshim_runtime_t *
fake_runtime(struct fixture *f, const char *root, uint64_t timeout_ms)
{
  cshim_runtime_config_t cfg = {.loop = &f->loop,
                                .reaper = host_reaper_api(f->reaper),
                                .binary = FAKE_RUNTIME,
                                .root = root,
                                .timeout_ms = timeout_ms};
  cshim_runtime_t *rt = NULL;
  cshim_error_t err = NULL;
  assert_int_equal(cshim_runtime_new(&cfg, &rt, &err), 0);
  return rt;
}

static char *
path_in(struct fixture *f, const char *name)
{
  char *p;
  cshim_xasprintf(&p, "%s/%s", f->dir, name);
  return p;
}

/* The pids the fake runtime wrote to FAKE_RUNTIME_PID_FILE, waiting for the first one. */
static pid_t
fake_pid(struct fixture *f, const char *pid_file, int index)
{
  for (int i = 0; i < 500; i++) {
    char *text = read_file(pid_file);
    if (text) {
      char *p = text;
      for (int k = 0; k < index && p; k++) {
        p = strchr(p, '\n');
        if (p)
          p++;
      }
      if (p && *p) {
        pid_t pid = (pid_t)atoi(p);
        free(text);
        return pid;
      }
      free(text);
    }
    run_until(f, NULL, 0, 10);
  }
  fail_msg("fake runtime never wrote its pid");
  return 0;
}

static void
assert_gone(struct fixture *f, pid_t pid)
{
  for (int i = 0; i < 300 && kill(pid, 0) == 0; i++)
    run_until(f, NULL, 0, 10);
  assert_int_equal(kill(pid, 0), -1);
  assert_int_equal(errno, ESRCH);
}

/* ---- tracing: a span per command, child of span_of(data) ---- */

struct cshim_span_s
{
  char name[64];
  char container[64];
  int ended, error;
  char message[256];
  const struct cshim_span_s *parent;
};

static struct cshim_span_s fake_spans[8];
static int n_fake_spans;

static cshim_span_t *
fake_span_start(cshim_tracer_t *tracer, const cshim_span_t *parent, const char *name)
{
  cshim_span_t *s;
  (void)tracer;
  if (parent == NULL || n_fake_spans == (int)CSHIM_N_ELEMENTS(fake_spans))
    return NULL;
  s = &fake_spans[n_fake_spans++];
  memset(s, 0, sizeof *s);
  snprintf(s->name, sizeof s->name, "%s", name);
  s->parent = parent;
  return s;
}

static void
fake_span_set_attr(cshim_span_t *span, const char *key, const char *value)
{
  if (strcmp(key, "container.id") == 0)
    snprintf(span->container, sizeof span->container, "%s", value);
}

static void
fake_span_end(cshim_span_t *span, int error, const char *message)
{
  span->ended++;
  span->error = error;
  snprintf(span->message, sizeof span->message, "%s", message ? message : "");
}

static int
fake_span_traceparent(const cshim_span_t *span, char *buf, size_t len)
{
  snprintf(buf, len, "00-4bf92f3577b34da6a3ce929d0e0e4736-00000000000000%02x-01",
           (unsigned)(span - fake_spans) + 1);
  return 0;
}

static cshim_tracer_t fake_tracer = {.struct_size = sizeof(cshim_tracer_t),
                                     .start = fake_span_start,
                                     .set_attr = fake_span_set_attr,
                                     .end = fake_span_end,
                                     .traceparent = fake_span_traceparent};

/* The parent span of a command: the test's rec carries it in `calls`' neighbour. */
static struct cshim_span_s parent_span;
static struct rec *traced_rec;

static cshim_span_t *
span_of_rec(void *data)
{
  return data == traced_rec ? &parent_span : NULL;
}

static void
test_runtime_commands_are_child_spans_of_their_work(void **state)
{
  struct fixture *f = *state;
  cshim_runtime_config_t cfg = {.loop = &f->loop,
                                .reaper = host_reaper_api(f->reaper),
                                .binary = FAKE_RUNTIME,
                                .tracer = &fake_tracer,
                                .span_of = span_of_rec};
  cshim_error_t err = NULL;
  struct rec r = {0}, untraced = {0};

  cshim_autofree char *trace_file = path_in(f, "trace");
  cshim_autofree char *seen = NULL;

  n_fake_spans = 0;
  traced_rec = &r;
  /* A TRACEPARENT of the shim's own is replaced for traced commands, inherited by the others. */
  setenv("TRACEPARENT", "inherited", 1);
  setenv("FAKE_RUNTIME_TRACE_FILE", trace_file, 1);
  assert_int_equal(cshim_runtime_new(&cfg, &f->rt, &err), 0);
  assert_int_equal(cshim_runtime_start(f->rt, "c1", NULL, result_cb, &r, &err), 0);
  assert_int_equal(n_fake_spans, 1); /* opened when submitted */
  assert_int_equal(fake_spans[0].ended, 0);
  await(f, &r);
  assert_null(r.error);
  assert_string_equal(fake_spans[0].name, "fake-runtime start");
  assert_string_equal(fake_spans[0].container, "c1");
  assert_ptr_equal(fake_spans[0].parent, &parent_span);
  assert_int_equal(fake_spans[0].ended, 1);
  assert_int_equal(fake_spans[0].error, 0);

  rec_reset(&r);
  setenv("FAKE_RUNTIME_MODE", "stderr", 1);
  setenv("FAKE_RUNTIME_MSG", "container not running", 1);
  assert_int_equal(cshim_runtime_kill(f->rt, "c1", 9, false, NULL, result_cb, &r, &err), 0);
  await(f, &r);
  assert_non_null(r.error);
  assert_int_equal(n_fake_spans, 2);
  assert_int_equal(fake_spans[1].ended, 1);
  assert_int_not_equal(fake_spans[1].error, 0);
  assert_non_null(strstr(fake_spans[1].message, "container not running"));

  /* Work span_of knows nothing about is not traced. */
  unsetenv("FAKE_RUNTIME_MODE");
  assert_int_equal(cshim_runtime_state(f->rt, "c1", result_cb, &untraced, &err), 0);
  await(f, &untraced);
  assert_int_equal(n_fake_spans, 2);
  seen = read_file(trace_file);
  assert_string_equal(seen, "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000001-01\n"
                            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000002-01\n"
                            "inherited\n");
  unsetenv("TRACEPARENT");
  unsetenv("FAKE_RUNTIME_TRACE_FILE");
  rec_reset(&r);
  rec_reset(&untraced);
}

/* ---- argv ---- */

static void
test_runtime_builds_go_runc_argv(void **state)
{
  struct fixture *f = *state;
  cshim_autofree char *argv_file = path_in(f, "argv");
  const char *global[] = {"--network=none", "--platform=ptrace", NULL};
  cshim_runtime_config_t full_cfg = {.loop = &f->loop,
                                     .reaper = host_reaper_api(f->reaper),
                                     .binary = FAKE_RUNTIME,
                                     .root = "/run/r",
                                     .systemd_cgroup = true,
                                     .debug = true,
                                     .global_args = global};
  cshim_runtime_t *full = NULL;
  cshim_error_t err = NULL;
  struct rec r = {0};
  const char *empty_ns[] = {"network", "uts", NULL};
  char *got;
  int i = 0;
  static const char *const expected[] = {
      "--root /run/r --debug --log /b/log.json --log-format json --systemd-cgroup --network=none "
      "--platform=ptrace create --bundle "
      "/b --pid-file /b/init.pid --console-socket /s.sock --no-pivot --no-new-keyring c1",
      "--root /run/r create --bundle /b c1",
      "--root /run/r --log /b/log.json --log-format json start c1",
      "--root /run/r --log /b/log.json --log-format json exec --process /p.json --console-socket "
      "/s.sock --detach --pid-file /e.pid c1",
      "--root /run/r exec --process /p.json c1",
      "--root /run/r --log /b/log.json --log-format json kill --all c1 9",
      "--root /run/r kill c1 15",
      "--root /run/r --log /b/log.json --log-format json delete --force c1",
      "--root /run/r delete c1",
      "--root /run/r state c1",
      "--root /run/r ps --format json c1",
      "--root /run/r pause c1",
      "--root /run/r resume c1",
      "--root /run/r update --resources /res.json c1",
      "--root /run/r --log /b/log.json --log-format json checkpoint --image-path /img --work-path "
      "/work --parent-path /parent --tcp-established --ext-unix-sk --shell-job --file-locks "
      "--manage-cgroups-mode soft --empty-ns network --empty-ns uts --leave-running c1",
      "--root /run/r checkpoint --image-path /img c1",
      "--root /run/r --log /b/log.json --log-format json restore --image-path /img --work-path "
      "/work --detach --pid-file /b/init.pid --console-socket /s.sock --no-pivot --bundle /b c1",
      "--root /run/r features",
      "--root /run/r events --stats c1",
      "state c1",
      "--root /run/r --debug --systemd-cgroup --network=none --platform=ptrace delete --force c1",
  };

  setenv("FAKE_RUNTIME_ARGV_FILE", argv_file, 1);
  f->rt = fake_runtime(f, "/run/r", 0);
  assert_int_equal(cshim_runtime_new(&full_cfg, &full, &err), 0);

#define RUN(call)                                                                                  \
  do {                                                                                             \
    rec_reset(&r);                                                                                 \
    assert_int_equal((call), 0);                                                                   \
    await(f, &r);                                                                                  \
    assert_null(r.error);                                                                          \
  } while (0)

  {
    cshim_runtime_create_opts_t o = {.bundle = "/b",
                                     .pid_file = "/b/init.pid",
                                     .console_socket = "/s.sock",
                                     .log_path = "/b/log.json",
                                     .no_pivot = true,
                                     .no_new_keyring = true,
                                     .detach = true,
                                     .io = {-1, -1, -1}};
    RUN(cshim_runtime_create(full, "c1", &o, result_cb, &r, &err));
  }
  {
    cshim_runtime_create_opts_t o = {.bundle = "/b", .io = {-1, -1, -1}};
    RUN(cshim_runtime_create(f->rt, "c1", &o, result_cb, &r, &err));
  }
  RUN(cshim_runtime_start(f->rt, "c1", "/b/log.json", result_cb, &r, &err));
  {
    cshim_runtime_exec_opts_t o = {.process_json = "/p.json",
                                   .pid_file = "/e.pid",
                                   .console_socket = "/s.sock",
                                   .log_path = "/b/log.json",
                                   .detach = true,
                                   .io = {-1, -1, -1}};
    RUN(cshim_runtime_exec(f->rt, "c1", &o, result_cb, &r, &err));
  }
  {
    cshim_runtime_exec_opts_t o = {.process_json = "/p.json", .io = {-1, -1, -1}};
    RUN(cshim_runtime_exec(f->rt, "c1", &o, result_cb, &r, &err));
  }
  RUN(cshim_runtime_kill(f->rt, "c1", 9, true, "/b/log.json", result_cb, &r, &err));
  RUN(cshim_runtime_kill(f->rt, "c1", 15, false, NULL, result_cb, &r, &err));
  RUN(cshim_runtime_delete(f->rt, "c1", true, "/b/log.json", result_cb, &r, &err));
  RUN(cshim_runtime_delete(f->rt, "c1", false, NULL, result_cb, &r, &err));
  RUN(cshim_runtime_state(f->rt, "c1", result_cb, &r, &err));
  RUN(cshim_runtime_ps(f->rt, "c1", result_cb, &r, &err));
  RUN(cshim_runtime_pause(f->rt, "c1", result_cb, &r, &err));
  RUN(cshim_runtime_resume(f->rt, "c1", result_cb, &r, &err));
  RUN(cshim_runtime_update(f->rt, "c1", "/res.json", result_cb, &r, &err));
  {
    cshim_runtime_checkpoint_opts_t o = {.image_path = "/img",
                                         .work_path = "/work",
                                         .parent_path = "/parent",
                                         .leave_running = true,
                                         .tcp_established = true,
                                         .ext_unix_sk = true,
                                         .shell_job = true,
                                         .file_locks = true,
                                         .empty_ns = empty_ns,
                                         .cgroups_mode = "soft",
                                         .log_path = "/b/log.json"};
    RUN(cshim_runtime_checkpoint(f->rt, "c1", &o, result_cb, &r, &err));
  }
  {
    cshim_runtime_checkpoint_opts_t o = {.image_path = "/img"};
    RUN(cshim_runtime_checkpoint(f->rt, "c1", &o, result_cb, &r, &err));
  }
  {
    cshim_runtime_create_opts_t o = {.bundle = "/b",
                                     .pid_file = "/b/init.pid",
                                     .console_socket = "/s.sock",
                                     .log_path = "/b/log.json",
                                     .no_pivot = true,
                                     .io = {-1, -1, -1},
                                     .criu_image_path = "/img",
                                     .criu_work_path = "/work"};
    RUN(cshim_runtime_restore(f->rt, "c1", &o, result_cb, &r, &err));
  }
  RUN(cshim_runtime_features(f->rt, result_cb, &r, &err));
  RUN(cshim_runtime_stats(f->rt, "c1", result_cb, &r, &err));
  cshim_runtime_free(f->rt);
  f->rt = fake_runtime(f, NULL, 0);
  RUN(cshim_runtime_state(f->rt, "c1", result_cb, &r, &err));
  /* The global flags were copied: the caller's array may go. */
  global[0] = global[1] = "--changed";
  RUN(cshim_runtime_delete(full, "c1", true, NULL, result_cb, &r, &err));
#undef RUN

  got = read_file(argv_file);
  assert_non_null(got);
  for (char *save = NULL, *line = strtok_r(got, "\n", &save); line;
       line = strtok_r(NULL, "\n", &save), i++) {
    assert_true((size_t)i < CSHIM_N_ELEMENTS(expected));
    assert_string_equal(line, expected[i]);
  }
  assert_int_equal(i, CSHIM_N_ELEMENTS(expected));
  free(got);
  rec_reset(&r);
  cshim_runtime_free(full);
}

/* ---- errors ---- */

static void
test_runtime_error_comes_from_the_last_log_error(void **state)
{
  struct fixture *f = *state;
  cshim_autofree char *log = path_in(f, "log.json");
  cshim_runtime_create_opts_t o = {.bundle = "/b", .log_path = log, .io = {-1, -1, -1}};
  cshim_error_t err = NULL;
  struct rec r = {0};

  /* A line from an earlier command must not be picked up. */
  write_file(log, "{\"level\":\"error\",\"msg\":\"stale\",\"time\":\"2024-01-01T00:00:00Z\"}\n");
  f->rt = fake_runtime(f, NULL, 0);
  setenv("FAKE_RUNTIME_MODE", "log-error", 1);
  setenv("FAKE_RUNTIME_MSG", "runc create failed: container with given ID already exists", 1);
  assert_int_equal(cshim_runtime_create(f->rt, "c1", &o, result_cb, &r, &err), 0);
  await(f, &r);
  assert_non_null(r.error);
  assert_string_equal(r.error->msg,
                      "fake-runtime create: runc create failed: container with given ID already "
                      "exists");
  assert_int_equal(r.error->status, -EEXIST);
  assert_true(WIFEXITED(r.wait_status) && WEXITSTATUS(r.wait_status) == 1);
  rec_reset(&r);

  setenv("FAKE_RUNTIME_MSG", "container does not exist", 1);
  assert_int_equal(cshim_runtime_kill(f->rt, "c1", 9, false, log, result_cb, &r, &err), 0);
  await(f, &r);
  assert_string_equal(r.error->msg, "fake-runtime kill: container does not exist");
  assert_int_equal(r.error->status, -ENOENT);
  rec_reset(&r);

  /* The same message is no conflict outside create. */
  setenv("FAKE_RUNTIME_MSG", "mount: target already exists", 1);
  assert_int_equal(cshim_runtime_start(f->rt, "c1", log, result_cb, &r, &err), 0);
  await(f, &r);
  assert_string_equal(r.error->msg, "fake-runtime start: mount: target already exists");
  assert_int_equal(r.error->status, -EIO);
  rec_reset(&r);
}

static void
test_runtime_error_falls_back_to_stderr(void **state)
{
  struct fixture *f = *state;
  cshim_autofree char *log = path_in(f, "log.json");
  cshim_error_t err = NULL;
  struct rec r = {0};

  write_file(log, "{\"level\":\"error\",\"msg\":\"stale\",\"time\":\"2024-01-01T00:00:00Z\"}\n");
  f->rt = fake_runtime(f, NULL, 0);
  setenv("FAKE_RUNTIME_MODE", "stderr", 1);
  setenv("FAKE_RUNTIME_MSG", "container not running", 1);
  assert_int_equal(cshim_runtime_kill(f->rt, "c1", 15, false, log, result_cb, &r, &err), 0);
  await(f, &r);
  assert_string_equal(r.error->msg, "fake-runtime kill: container not running");
  assert_int_equal(r.error->status, -ESRCH);
  rec_reset(&r);

  assert_int_equal(cshim_runtime_pause(f->rt, "c1", result_cb, &r, &err), 0);
  await(f, &r);
  assert_string_equal(r.error->msg, "fake-runtime pause: container not running");
  assert_int_equal(r.error->status, -EBUSY);
  rec_reset(&r);

  setenv("FAKE_RUNTIME_MODE", "logrus", 1);
  setenv("FAKE_RUNTIME_MSG", "container \\\"c1\\\" is stuck", 1);
  assert_int_equal(cshim_runtime_update(f->rt, "c1", "/res.json", result_cb, &r, &err), 0);
  await(f, &r);
  assert_string_equal(r.error->msg, "fake-runtime update: container \"c1\" is stuck");
  assert_int_equal(r.error->status, -EIO);
  rec_reset(&r);
}

static void
test_runtime_error_without_output_names_the_exit(void **state)
{
  struct fixture *f = *state;
  cshim_error_t err = NULL;
  struct rec r = {0};

  f->rt = fake_runtime(f, NULL, 0);
  setenv("FAKE_RUNTIME_MODE", "exit:3", 1);
  assert_int_equal(cshim_runtime_resume(f->rt, "c1", result_cb, &r, &err), 0);
  await(f, &r);
  assert_string_equal(r.error->msg, "fake-runtime resume: exit status 3");
  assert_int_equal(r.error->status, -EIO);
  assert_int_equal(cshim_exit_status(r.wait_status), 3);
  rec_reset(&r);

  setenv("FAKE_RUNTIME_MODE", "signal:10", 1);
  assert_int_equal(cshim_runtime_state(f->rt, "c1", result_cb, &r, &err), 0);
  await(f, &r);
  assert_string_equal(r.error->msg, "fake-runtime state: killed by signal 10");
  assert_true(WIFSIGNALED(r.wait_status) && WTERMSIG(r.wait_status) == 10);
  rec_reset(&r);
}

static void
test_runtime_success_captures_stdout(void **state)
{
  struct fixture *f = *state;
  cshim_error_t err = NULL;
  struct rec r = {0};

  f->rt = fake_runtime(f, NULL, 0);
  setenv("FAKE_RUNTIME_STDOUT", "{\"status\":\"running\",\"pid\":42}", 1);
  assert_int_equal(cshim_runtime_state(f->rt, "c1", result_cb, &r, &err), 0);
  await(f, &r);
  assert_null(r.error);
  assert_int_equal(r.wait_status, 0);
  assert_string_equal(r.out, "{\"status\":\"running\",\"pid\":42}");
  rec_reset(&r);
}

static void
test_runtime_timeout_kills_the_runtime(void **state)
{
  struct fixture *f = *state;
  cshim_autofree char *pid_file = path_in(f, "pids");
  cshim_error_t err = NULL;
  struct rec r = {0};
  uint64_t start = cshim_now_ns();
  pid_t pid;

  f->rt = fake_runtime(f, NULL, 200);
  setenv("FAKE_RUNTIME_MODE", "hang", 1);
  setenv("FAKE_RUNTIME_PID_FILE", pid_file, 1);
  assert_int_equal(cshim_runtime_state(f->rt, "c1", result_cb, &r, &err), 0);
  pid = fake_pid(f, pid_file, 0);
  await(f, &r);
  assert_true(cshim_now_ns() - start < 5000000000ull);
  assert_non_null(r.error);
  assert_string_equal(r.error->msg, "fake-runtime state: timed out after 200ms");
  assert_int_equal(r.error->status, -ETIMEDOUT);
  assert_true(WIFSIGNALED(r.wait_status) && WTERMSIG(r.wait_status) == SIGKILL);
  assert_gone(f, pid);
  rec_reset(&r);
}

static void
test_runtime_free_kills_running_commands_without_calling_back(void **state)
{
  struct fixture *f = *state;
  cshim_autofree char *pid_file = path_in(f, "pids");
  cshim_error_t err = NULL;
  struct rec r1 = {0}, r2 = {0};
  pid_t pid1, pid2;

  f->rt = fake_runtime(f, NULL, 0);
  setenv("FAKE_RUNTIME_MODE", "hang", 1);
  setenv("FAKE_RUNTIME_PID_FILE", pid_file, 1);
  assert_int_equal(cshim_runtime_state(f->rt, "c1", result_cb, &r1, &err), 0);
  pid1 = fake_pid(f, pid_file, 0);
  assert_int_equal(cshim_runtime_ps(f->rt, "c1", result_cb, &r2, &err), 0);
  pid2 = fake_pid(f, pid_file, 1);
  cshim_runtime_free(f->rt);
  f->rt = NULL;
  /* The reaper reports both exits later, into no-op watchers. */
  assert_gone(f, pid1);
  assert_gone(f, pid2);
  run_until(f, NULL, 0, 100);
  assert_int_equal(r1.calls, 0);
  assert_int_equal(r2.calls, 0);
}

struct free_in_cb
{
  cshim_runtime_t *rt;
  int calls;
};

static void
free_runtime_cb(void *data, cshim_runtime_result_t *result)
{
  struct free_in_cb *x = data;
  (void)result;
  x->calls++;
  cshim_runtime_free(x->rt);
}

static void
test_runtime_callback_may_free_the_runtime(void **state)
{
  struct fixture *f = *state;
  cshim_autofree char *pid_file = path_in(f, "pids");
  cshim_runtime_t *rt = fake_runtime(f, NULL, 0);
  struct free_in_cb x = {.rt = rt};
  cshim_error_t err = NULL;
  struct rec hanging = {0};
  pid_t pid;

  setenv("FAKE_RUNTIME_MODE", "hang", 1);
  setenv("FAKE_RUNTIME_PID_FILE", pid_file, 1);
  assert_int_equal(cshim_runtime_state(rt, "c1", result_cb, &hanging, &err), 0);
  pid = fake_pid(f, pid_file, 0);
  setenv("FAKE_RUNTIME_MODE", "ok", 1);
  unsetenv("FAKE_RUNTIME_PID_FILE");
  assert_int_equal(cshim_runtime_start(rt, "c1", NULL, free_runtime_cb, &x, &err), 0);
  assert_true(run_until(f, &x.calls, 1, 10000));
  assert_gone(f, pid);
  run_until(f, NULL, 0, 100);
  assert_int_equal(x.calls, 1);
  assert_int_equal(hanging.calls, 0);
}

static void
test_runtime_does_not_wait_for_a_grandchild_holding_its_output(void **state)
{
  struct fixture *f = *state;
  cshim_autofree char *pid_file = path_in(f, "pids");
  cshim_error_t err = NULL;
  struct rec r = {0};
  uint64_t start = cshim_now_ns();
  pid_t grandchild;

  f->rt = fake_runtime(f, NULL, 0);
  setenv("FAKE_RUNTIME_MODE", "grandchild", 1);
  setenv("FAKE_RUNTIME_PID_FILE", pid_file, 1);
  setenv("FAKE_RUNTIME_STDOUT", "[1,2]", 1);
  assert_int_equal(cshim_runtime_ps(f->rt, "c1", result_cb, &r, &err), 0);
  await(f, &r);
  grandchild = fake_pid(f, pid_file, 1);
  kill(grandchild, SIGKILL);
  assert_true(cshim_now_ns() - start < 3000000000ull);
  assert_null(r.error);
  assert_string_equal(r.out, "[1,2]");
  assert_gone(f, grandchild);
  rec_reset(&r);
}

static void
test_runtime_output_is_capped(void **state)
{
  struct fixture *f = *state;
  cshim_error_t err = NULL;
  struct rec r = {0};

  f->rt = fake_runtime(f, NULL, 0);
  setenv("FAKE_RUNTIME_MODE", "big-stdout", 1);
  assert_int_equal(cshim_runtime_stats(f->rt, "c1", result_cb, &r, &err), 0);
  await(f, &r);
  assert_non_null(r.error);
  assert_string_equal(r.error->msg, "fake-runtime events: output larger than 1048576 bytes");
  assert_int_equal(r.error->status, -EMSGSIZE);
  rec_reset(&r);
}

static void
test_runtime_gives_the_container_stdio_to_the_runtime(void **state)
{
  struct fixture *f = *state;
  int in[2], out[2], errp[2];
  cshim_runtime_create_opts_t o = {.bundle = "/b"};
  cshim_error_t err = NULL;
  struct rec r = {0};
  char buf[64];
  ssize_t n;

  assert_int_equal(pipe2(in, O_CLOEXEC), 0);
  assert_int_equal(pipe2(out, O_CLOEXEC), 0);
  assert_int_equal(pipe2(errp, O_CLOEXEC), 0);
  assert_int_equal(write(in[1], "hello", 5), 5);
  close(in[1]);
  o.io = (cshim_runtime_io_t){in[0], out[1], errp[1]};
  f->rt = fake_runtime(f, NULL, 0);
  setenv("FAKE_RUNTIME_MODE", "stdio", 1);
  assert_int_equal(cshim_runtime_create(f->rt, "c1", &o, result_cb, &r, &err), 0);
  close(in[0]);
  close(out[1]);
  close(errp[1]);
  await(f, &r);
  assert_null(r.error);
  assert_string_equal(r.out, "");
  n = read(out[0], buf, sizeof buf - 1);
  assert_int_equal(n, 5);
  buf[n] = '\0';
  assert_string_equal(buf, "hello");
  n = read(errp[0], buf, sizeof buf - 1);
  assert_int_equal(n, 11);
  buf[n] = '\0';
  assert_string_equal(buf, "stderr-mark");
  close(out[0]);
  close(errp[0]);
  rec_reset(&r);
}

static void
test_runtime_missing_binary_fails_at_once(void **state)
{
  struct fixture *f = *state;
  cshim_runtime_config_t cfg = {
      .loop = &f->loop, .reaper = host_reaper_api(f->reaper), .binary = "/cshim/no/such/runc"};
  cshim_error_t err = NULL;
  struct rec r = {0};

  assert_int_equal(cshim_runtime_new(&cfg, &f->rt, &err), 0);
  assert_int_equal(cshim_runtime_state(f->rt, "c1", result_cb, &r, &err), -ENOENT);
  assert_string_equal(err->msg,
                      "runc state: exec `/cshim/no/such/runc`: No such file or directory");
  cshim_error_release(&err);
  run_until(f, NULL, 0, 200);
  assert_int_equal(r.calls, 0);
}

static void
test_runtime_rejects_invalid_arguments(void **state)
{
  struct fixture *f = *state;
  cshim_runtime_create_opts_t o = {.io = {-1, -1, -1}};
  cshim_error_t err = NULL;
  struct rec r = {0};

  f->rt = fake_runtime(f, NULL, 0);
  assert_int_equal(cshim_runtime_state(f->rt, "", result_cb, &r, &err), -EINVAL);
  cshim_error_release(&err);
  assert_int_equal(cshim_runtime_state(f->rt, NULL, result_cb, &r, &err), -EINVAL);
  cshim_error_release(&err);
  assert_int_equal(cshim_runtime_start(f->rt, "c1", NULL, NULL, &r, &err), -EINVAL);
  cshim_error_release(&err);
  assert_int_equal(cshim_runtime_create(f->rt, "c1", &o, result_cb, &r, &err), -EINVAL);
  assert_string_equal(err->msg, "fake-runtime create: no bundle");
  cshim_error_release(&err);
  assert_int_equal(cshim_runtime_kill(f->rt, "c1", 0, false, NULL, result_cb, &r, &err), -EINVAL);
  cshim_error_release(&err);
  run_until(f, NULL, 0, 50);
  assert_int_equal(r.calls, 0);
}

/* ---- output joined with the exit, however late the exit is reaped ---- */

struct late_reap
{
  struct fixture *f;
  pid_t *pids;
  int n;
  bool done;
};

/* Runs after the loop's poll: everything below happens within one loop iteration, as when a
   busy iteration reaps runtimes whose output arrived after its poll returned. */
static void
late_reap_check_cb(uv_check_t *h)
{
  struct late_reap *x = h->data;
  struct timespec pause = {0, 150 * 1000000};

  if (x->done)
    return;
  x->done = true;
  for (int i = 0; i < x->n; i++)
    kill(x->pids[i], SIGUSR1);
  for (int i = 0; i < x->n; i++) {
    siginfo_t info;
    /* Until it has exited, without reaping it. */
    while (waitid(P_PID, (id_t)x->pids[i], &info, WEXITED | WNOWAIT) < 0 && errno == EINTR)
      ;
  }
  /* The loop's clock is now well behind the real one. */
  nanosleep(&pause, NULL);
  host_reaper_reap(x->f->reaper);
}

static void
test_runtime_reads_output_to_the_end_when_many_exits_are_reaped_at_once(void **state)
{
  enum
  {
    N = 48
  };
  struct fixture *f = *state;
  cshim_autofree char *pid_file = path_in(f, "pids");
  cshim_autofree char *expected = NULL;
  pid_t pids[N];
  struct rec r[N];
  struct late_reap x = {.f = f, .pids = pids, .n = N};
  cshim_error_t err = NULL;
  uv_check_t check;
  int calls = 0;

  /* A state answer of a realistic size. */
  cshim_xasprintf(&expected,
                  "{\"ociVersion\":\"1.0.2\",\"id\":\"c1\",\"pid\":4242,"
                  "\"status\":\"running\",\"bundle\":\"/run/containerd/io.containerd."
                  "runtime.v2.task/k8s.io/%0200d\"}",
                  0);
  memset(r, 0, sizeof r);
  f->rt = fake_runtime(f, NULL, 0);
  setenv("FAKE_RUNTIME_MODE", "on-usr1", 1);
  setenv("FAKE_RUNTIME_PID_FILE", pid_file, 1);
  setenv("FAKE_RUNTIME_STDOUT", expected, 1);
  for (int i = 0; i < N; i++)
    assert_int_equal(cshim_runtime_state(f->rt, "c1", result_cb, &r[i], &err), 0);
  /* Every runtime is waiting for its signal. */
  for (int tries = 0;; tries++) {
    cshim_autofree char *text = read_file(pid_file);
    int n = 0;
    for (char *p = text; p && (p = strstr(p, "ready ")); p += 6)
      pids[n++] = (pid_t)atoi(p + 6);
    if (n == N)
      break;
    assert_true(tries < 3000);
    run_until(f, NULL, 0, 10);
  }
  for (int i = 0; i < N; i++)
    assert_int_equal(r[i].calls, 0);

  uv_check_init(&f->loop, &check);
  check.data = &x;
  uv_check_start(&check, late_reap_check_cb);
  for (int i = 0; i < N; i++) {
    int before = r[i].calls;
    assert_true(run_until(f, &r[i].calls, 1, 30000));
    (void)before;
  }
  uv_close((uv_handle_t *)&check, noop_close_cb);
  assert_true(x.done);
  for (int i = 0; i < N; i++) {
    calls += r[i].calls;
    assert_null(r[i].error);
    assert_string_equal(r[i].out, expected);
    rec_reset(&r[i]);
  }
  assert_int_equal(calls, N);
}

/* ---- killing what a runtime started ---- */

static void
test_runtime_timeout_kills_everything_the_runtime_started(void **state)
{
  struct fixture *f = *state;
  cshim_autofree char *pid_file = path_in(f, "pids");
  cshim_error_t err = NULL;
  struct rec r = {0};
  pid_t pids[4];

  /* Like the shim: orphans come back to us and the reaper reaps them. */
  assert_int_equal(prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0), 0);
  f->rt = fake_runtime(f, NULL, 3000);
  setenv("FAKE_RUNTIME_MODE", "hang-tree", 1);
  setenv("FAKE_RUNTIME_PID_FILE", pid_file, 1);
  assert_int_equal(cshim_runtime_state(f->rt, "c1", result_cb, &r, &err), 0);
  for (int i = 0; i < 4; i++)
    pids[i] = fake_pid(f, pid_file, i);
  /* The session leader and its child really left the runtime's process group. */
  assert_int_equal(getpgid(pids[2]), pids[2]);
  assert_int_equal(getpgid(pids[3]), pids[2]);
  assert_int_equal(getpgid(pids[1]), pids[0]);
  assert_true(run_until(f, &r.calls, 1, 60000));
  assert_non_null(r.error);
  assert_string_equal(r.error->msg, "fake-runtime state: timed out after 3000ms");
  assert_int_equal(r.error->status, -ETIMEDOUT);
  for (int i = 0; i < 4; i++)
    assert_gone(f, pids[i]);
  rec_reset(&r);
}

static void
test_runtime_free_kills_everything_the_runtime_started(void **state)
{
  struct fixture *f = *state;
  cshim_autofree char *pid_file = path_in(f, "pids");
  cshim_error_t err = NULL;
  struct rec r = {0};
  pid_t pids[4];

  assert_int_equal(prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0), 0);
  f->rt = fake_runtime(f, NULL, 0);
  setenv("FAKE_RUNTIME_MODE", "hang-tree", 1);
  setenv("FAKE_RUNTIME_PID_FILE", pid_file, 1);
  assert_int_equal(cshim_runtime_kill(f->rt, "c1", 9, true, NULL, result_cb, &r, &err), 0);
  for (int i = 0; i < 4; i++)
    pids[i] = fake_pid(f, pid_file, i);
  cshim_runtime_free(f->rt);
  f->rt = NULL;
  for (int i = 0; i < 4; i++)
    assert_gone(f, pids[i]);
  run_until(f, NULL, 0, 50);
  assert_int_equal(r.calls, 0);
}

/* ---- the limit on running runtimes ---- */

static cshim_runtime_t *
limited_runtime(struct fixture *f, cshim_runtime_limit_t *limit,
                uint64_t (*deadline_of)(void *data), uint64_t timeout_ms)
{
  cshim_runtime_config_t cfg = {.loop = &f->loop,
                                .reaper = host_reaper_api(f->reaper),
                                .binary = FAKE_RUNTIME,
                                .timeout_ms = timeout_ms,
                                .limit = limit,
                                .deadline_of = deadline_of};
  cshim_runtime_t *rt = NULL;
  cshim_error_t err = NULL;
  assert_int_equal(cshim_runtime_new(&cfg, &rt, &err), 0);
  return rt;
}

/* The pid of the fake runtime running for container id (the last argument), among those in
   pid_file: commands that run at once write their pids in any order. */
static pid_t
pid_for_id(struct fixture *f, const char *pid_file, const char *id)
{
  for (int tries = 0; tries < 500; tries++) {
    cshim_autofree char *text = read_file(pid_file);
    for (char *p = text; p && *p;) {
      pid_t pid = (pid_t)atoi(p);
      char path[64], cmdline[4096];
      int fd;
      ssize_t n;

      snprintf(path, sizeof path, "/proc/%d/cmdline", (int)pid);
      fd = open(path, O_RDONLY | O_CLOEXEC);
      n = fd >= 0 ? read(fd, cmdline, sizeof cmdline - 1) : -1;
      if (fd >= 0)
        close(fd);
      if (n > 1) {
        cmdline[n - 1] = '\0';
        const char *last = memrchr(cmdline, '\0', (size_t)n - 1);
        if (strcmp(last ? last + 1 : cmdline, id) == 0)
          return pid;
      }
      p = strchr(p, '\n');
      if (p)
        p++;
    }
    run_until(f, NULL, 0, 10);
  }
  fail_msg("no fake runtime runs for `%s`", id);
  return 0;
}

static int
count_lines(const char *path)
{
  cshim_autofree char *text = read_file(path);
  int n = 0;
  for (const char *p = text; p && *p; p++)
    n += *p == '\n';
  return n;
}

static void
test_runtime_limit_queues_commands_in_order(void **state)
{
  struct fixture *f = *state;
  cshim_autofree char *pid_file = path_in(f, "pids");
  cshim_autofree char *argv_file = path_in(f, "argv");
  cshim_runtime_limit_t *limit = cshim_runtime_limit_new(2);
  cshim_runtime_limit_stats_t st;
  cshim_runtime_t *other;
  cshim_error_t err = NULL;
  struct rec r[5];
  pid_t c3, c4;
  char *argv;

  memset(r, 0, sizeof r);
  f->rt = limited_runtime(f, limit, NULL, 0);
  other = limited_runtime(f, limit, NULL, 0); /* one limit for every container's runtime */
  setenv("FAKE_RUNTIME_MODE", "hang", 1);
  setenv("FAKE_RUNTIME_PID_FILE", pid_file, 1);
  setenv("FAKE_RUNTIME_ARGV_FILE", argv_file, 1);
  assert_int_equal(cshim_runtime_state(f->rt, "c1", result_cb, &r[0], &err), 0);
  assert_int_equal(cshim_runtime_state(other, "c2", result_cb, &r[1], &err), 0);
  assert_int_equal(cshim_runtime_state(f->rt, "c3", result_cb, &r[2], &err), 0);
  assert_int_equal(cshim_runtime_state(other, "c4", result_cb, &r[3], &err), 0);
  assert_int_equal(cshim_runtime_state(f->rt, "c5", result_cb, &r[4], &err), 0);
  cshim_runtime_limit_get_stats(limit, &st);
  assert_int_equal(st.max, 2);
  assert_int_equal(st.running, 2);
  assert_int_equal(st.queued, 3);
  assert_int_equal(st.waited, 3);
  (void)fake_pid(f, pid_file, 1);
  run_until(f, NULL, 0, 200);
  assert_int_equal(count_lines(pid_file), 2);

  /* One finishes: the oldest waiting command starts, and only that one. */
  kill(pid_for_id(f, pid_file, "c1"), SIGKILL);
  await(f, &r[0]);
  assert_string_equal(r[0].error->msg, "fake-runtime state: killed by signal 9");
  (void)pid_for_id(f, pid_file, "c3");
  run_until(f, NULL, 0, 100);
  assert_int_equal(count_lines(pid_file), 3);
  cshim_runtime_limit_get_stats(limit, &st);
  assert_int_equal(st.running, 2);
  assert_int_equal(st.queued, 2);

  kill(pid_for_id(f, pid_file, "c2"), SIGKILL);
  await(f, &r[1]);
  (void)pid_for_id(f, pid_file, "c4");
  argv = read_file(argv_file);
  /* c1 and c2 started together (either may have written first); then c3, then c4. */
  assert_true(strcmp(argv, "state c1\nstate c2\nstate c3\nstate c4\n") == 0 ||
              strcmp(argv, "state c2\nstate c1\nstate c3\nstate c4\n") == 0);
  free(argv);

  /* Freeing a runtime drops its queued command (c5) and kills its running one (c3); the slot
     that frees goes to nobody else, as nothing else waits. */
  c3 = pid_for_id(f, pid_file, "c3");
  c4 = pid_for_id(f, pid_file, "c4");
  cshim_runtime_free(f->rt);
  f->rt = NULL;
  cshim_runtime_limit_get_stats(limit, &st);
  assert_int_equal(st.running, 1);
  assert_int_equal(st.queued, 0);
  assert_gone(f, c3);
  cshim_runtime_limit_free(limit); /* memory goes with `other` */
  cshim_runtime_free(other);
  assert_gone(f, c4);
  run_until(f, NULL, 0, 50);
  for (int i = 2; i < 5; i++)
    assert_int_equal(r[i].calls, 0);
  rec_reset(&r[0]);
  rec_reset(&r[1]);
}

/* A record whose owner the runtime asks for (the rec first, so result_cb takes it). */
struct orec
{
  struct rec r;
  uint64_t owner;
};

static uint64_t
orec_owner(void *data)
{
  return ((struct orec *)data)->owner;
}

/* Kill the fake runtime of id and wait for its command to finish. */
static void
finish_id(struct fixture *f, const char *pid_file, const char *id, struct orec *o)
{
  kill(pid_for_id(f, pid_file, id), SIGKILL);
  await(f, &o->r);
}

/* Two owners share two slots: owner 1 floods, owner 2 comes later with two commands. Each slot
   that frees goes to the waiting owner holding fewer slots (round-robin between owners), FIFO
   within an owner; alone, an owner may use every slot. */
static void
test_runtime_limit_shares_slots_between_owners(void **state)
{
  static const char *const ids[] = {"a1", "a2", "a3", "a4", "a5", "b1", "b2"};
  enum
  {
    N = 7
  };
  struct fixture *f = *state;
  cshim_autofree char *pid_file = path_in(f, "pids");
  cshim_autofree char *argv_file = path_in(f, "argv");
  cshim_runtime_limit_t *limit = cshim_runtime_limit_new(2);
  cshim_runtime_config_t cfg = {.loop = &f->loop,
                                .reaper = host_reaper_api(f->reaper),
                                .binary = FAKE_RUNTIME,
                                .limit = limit,
                                .owner_of = orec_owner};
  cshim_runtime_limit_stats_t st;
  cshim_error_t err = NULL;
  struct orec o[N];
  char *argv;

  memset(o, 0, sizeof o);
  assert_int_equal(cshim_runtime_new(&cfg, &f->rt, &err), 0);
  setenv("FAKE_RUNTIME_MODE", "hang", 1);
  setenv("FAKE_RUNTIME_PID_FILE", pid_file, 1);
  setenv("FAKE_RUNTIME_ARGV_FILE", argv_file, 1);
  for (int i = 0; i < N; i++) {
    o[i].owner = ids[i][0] == 'a' ? 1 : 2;
    assert_int_equal(cshim_runtime_state(f->rt, ids[i], result_cb, &o[i], &err), 0);
  }
  cshim_runtime_limit_get_stats(limit, &st);
  assert_int_equal(st.running, 2); /* a1 and a2: owner 1 alone had both slots */
  assert_int_equal(st.queued, 5);
  (void)pid_for_id(f, pid_file, "a1");
  (void)pid_for_id(f, pid_file, "a2");

  /* a1 ends: owner 2 holds nothing, owner 1 one slot: b1 goes first though a3 came earlier. */
  finish_id(f, pid_file, "a1", &o[0]);
  (void)pid_for_id(f, pid_file, "b1");
  /* a2 ends: now owner 1 holds none, owner 2 one: a3. */
  finish_id(f, pid_file, "a2", &o[1]);
  (void)pid_for_id(f, pid_file, "a3");
  /* b1 ends: owner 2 holds none: b2 (not a4). */
  finish_id(f, pid_file, "b1", &o[5]);
  (void)pid_for_id(f, pid_file, "b2");
  /* b2 ends with nothing of owner 2 left: owner 1 takes both slots again, in its order. */
  finish_id(f, pid_file, "b2", &o[6]);
  (void)pid_for_id(f, pid_file, "a4");
  finish_id(f, pid_file, "a3", &o[2]);
  (void)pid_for_id(f, pid_file, "a5");
  run_until(f, NULL, 0, 50);
  argv = read_file(argv_file);
  assert_true(strcmp(argv, "state a1\nstate a2\nstate b1\nstate a3\nstate b2\nstate a4\nstate "
                           "a5\n") == 0 ||
              strcmp(argv, "state a2\nstate a1\nstate b1\nstate a3\nstate b2\nstate a4\nstate "
                           "a5\n") == 0);
  free(argv);
  cshim_runtime_limit_get_stats(limit, &st);
  assert_int_equal(st.running, 2);
  assert_int_equal(st.queued, 0);
  assert_int_equal(st.waited, 5);

  finish_id(f, pid_file, "a4", &o[3]);
  finish_id(f, pid_file, "a5", &o[4]);
  for (int i = 0; i < N; i++) {
    assert_int_equal(o[i].r.calls, 1);
    assert_non_null(o[i].r.error); /* killed */
    rec_reset(&o[i].r);
  }
  cshim_runtime_limit_free(limit);
}

/* Many owners, one slot: the queue is served round-robin, one command per owner in turn, and
   each owner's commands in the order they came. */
static void
test_runtime_limit_round_robin_keeps_each_owners_order(void **state)
{
  enum
  {
    OWNERS = 3,
    EACH = 4,
    N = OWNERS * EACH
  };
  struct fixture *f = *state;
  cshim_autofree char *argv_file = path_in(f, "argv");
  cshim_runtime_limit_t *limit = cshim_runtime_limit_new(1);
  cshim_runtime_config_t cfg = {.loop = &f->loop,
                                .reaper = host_reaper_api(f->reaper),
                                .binary = FAKE_RUNTIME,
                                .limit = limit,
                                .owner_of = orec_owner};
  cshim_error_t err = NULL;
  struct orec o[N];
  int done = 0;
  char id[16];
  cshim_autofree char *want = NULL;
  char *argv;

  memset(o, 0, sizeof o);
  assert_int_equal(cshim_runtime_new(&cfg, &f->rt, &err), 0);
  setenv("FAKE_RUNTIME_ARGV_FILE", argv_file, 1);
  /* Owner k submits all of its commands before owner k+1 does. */
  for (int k = 0; k < OWNERS; k++)
    for (int j = 0; j < EACH; j++) {
      struct orec *x = &o[k * EACH + j];
      x->owner = 100 + (uint64_t)k;
      snprintf(id, sizeof id, "o%d-%d", k, j);
      assert_int_equal(cshim_runtime_state(f->rt, id, result_cb, x, &err), 0);
    }
  for (int t = 0; t < 2000 && done < N; t++) {
    run_until(f, NULL, 0, 10);
    done = 0;
    for (int i = 0; i < N; i++)
      done += o[i].r.calls;
  }
  assert_int_equal(done, N);
  /* The first command of owner 0 started at once; then turns: owners 1 and 2 (never served),
     then 0, 1, 2, 0, ... each in its own order. */
  want = cshim_xstrdup("");
  for (int j = 0; j < EACH; j++)
    for (int k = 0; k < OWNERS; k++) {
      char *next;
      cshim_xasprintf(&next, "%sstate o%d-%d\n", want, k, j);
      free(want);
      want = next;
    }
  argv = read_file(argv_file);
  assert_string_equal(argv, want);
  free(argv);
  for (int i = 0; i < N; i++) {
    assert_null(o[i].r.error);
    rec_reset(&o[i].r);
  }
  cshim_runtime_limit_free(limit);
}

/* runtime nice: added to the commands that start no container process, never to create, exec,
   start or restore (a container would inherit it). */
static void
test_runtime_nice_only_for_commands_that_start_no_container(void **state)
{
  struct fixture *f = *state;
  cshim_runtime_config_t cfg = {
      .loop = &f->loop, .reaper = host_reaper_api(f->reaper), .binary = FAKE_RUNTIME, .nice = 5};
  cshim_error_t err = NULL;
  struct rec r = {0};
  char want[16];
  int base;

  errno = 0;
  base = getpriority(PRIO_PROCESS, 0);
  assert_int_equal(errno, 0);
  assert_int_equal(cshim_runtime_new(&cfg, &f->rt, &err), 0);
  setenv("FAKE_RUNTIME_MODE", "nice", 1);
  /* The shim renices the runtime as it execs: the fake waits for the value it should get (and
     prints what it has after 5 s if that never comes). */
  snprintf(want, sizeof want, "%d", base + 5 > 19 ? 19 : base + 5);
  setenv("FAKE_RUNTIME_NICE_WANT", want, 1);
  assert_int_equal(cshim_runtime_state(f->rt, "c1", result_cb, &r, &err), 0);
  await(f, &r);
  assert_null(r.error);
  assert_string_equal(r.out, want);
  rec_reset(&r);
  snprintf(want, sizeof want, "%d", base);
  setenv("FAKE_RUNTIME_NICE_WANT", want, 1);
  assert_int_equal(cshim_runtime_start(f->rt, "c1", NULL, result_cb, &r, &err), 0);
  await(f, &r);
  assert_null(r.error);
  assert_string_equal(r.out, want);
  rec_reset(&r);
  unsetenv("FAKE_RUNTIME_NICE_WANT");
}

/* The loop does not wait for the runtime's exec: a binary the kernel will not run (no format it
   knows) is reported through the command's callback, with the reason, as an error. */
static void
test_runtime_exec_failure_comes_with_the_result(void **state)
{
  struct fixture *f = *state;
  cshim_autofree char *bad = path_in(f, "not-a-program");
  cshim_autofree char *want = NULL;
  cshim_runtime_config_t cfg = {
      .loop = &f->loop, .reaper = host_reaper_api(f->reaper), .binary = bad};
  cshim_error_t err = NULL;
  struct rec r = {0};
  int fd = open(bad, O_WRONLY | O_CREAT | O_CLOEXEC, 0755);

  assert_true(fd >= 0);
  assert_int_equal(write(fd, "\x01\x02\x03\x04garbage", 11), 11);
  close(fd);
  assert_int_equal(cshim_runtime_new(&cfg, &f->rt, &err), 0);
  assert_int_equal(cshim_runtime_state(f->rt, "c1", result_cb, &r, &err), 0);
  await(f, &r);
  assert_non_null(r.error);
  assert_int_equal(r.error->status, -ENOEXEC);
  cshim_xasprintf(&want, "not-a-program state: exec `%s`: Exec format error", bad);
  assert_string_equal(r.error->msg, want);
  rec_reset(&r);
}

struct flood
{
  cshim_runtime_limit_t *limit;
  const char *expected;
  int done, complete;
  unsigned most_running;
};

static void
flood_cb(void *data, cshim_runtime_result_t *result)
{
  struct flood *x = data;
  cshim_runtime_limit_stats_t st;

  cshim_runtime_limit_get_stats(x->limit, &st);
  if (st.running > x->most_running)
    x->most_running = st.running;
  x->done++;
  if (result->error == NULL && result->out_len == strlen(x->expected) &&
      strcmp(result->out, x->expected) == 0)
    x->complete++;
}

/* Far more commands than slots, all submitted at once: every one runs, in turn, and every output
   arrives whole. */
static void
test_runtime_limit_flood_of_commands_all_complete(void **state)
{
  enum
  {
    N = 300,
    SLOTS = 8
  };
  struct fixture *f = *state;
  struct flood x = {.limit = cshim_runtime_limit_new(SLOTS)};
  cshim_runtime_limit_stats_t st;
  cshim_autofree char *expected = NULL;
  cshim_error_t err = NULL;

  cshim_xasprintf(&expected, "{\"status\":\"running\",\"pid\":42,\"bundle\":\"/%0300d\"}", 7);
  x.expected = expected;
  f->rt = limited_runtime(f, x.limit, NULL, 0);
  setenv("FAKE_RUNTIME_STDOUT", expected, 1);
  for (int i = 0; i < N; i++)
    assert_int_equal(cshim_runtime_state(f->rt, "c1", flood_cb, &x, &err), 0);
  cshim_runtime_limit_get_stats(x.limit, &st);
  assert_int_equal(st.running, SLOTS);
  assert_int_equal(st.queued, N - SLOTS);
  assert_true(run_until(f, &x.done, N, 240000));
  assert_int_equal(x.complete, N);
  assert_true(x.most_running <= SLOTS);
  cshim_runtime_limit_get_stats(x.limit, &st);
  assert_int_equal(st.running, 0);
  assert_int_equal(st.queued, 0);
  assert_int_equal(st.waited, N - SLOTS);
  cshim_runtime_limit_free(x.limit);
}

/* A record with the deadline the runtime asks for (the rec first, so result_cb takes it). */
struct drec
{
  struct rec r;
  uint64_t deadline_ns;
};

static uint64_t
drec_deadline(void *data)
{
  return ((struct drec *)data)->deadline_ns;
}

static void
test_runtime_limit_queued_command_honours_its_deadline(void **state)
{
  struct fixture *f = *state;
  cshim_autofree char *pid_file = path_in(f, "pids");
  cshim_autofree char *argv_file = path_in(f, "argv");
  cshim_runtime_limit_t *limit = cshim_runtime_limit_new(1);
  cshim_runtime_limit_stats_t st;
  cshim_error_t err = NULL;
  struct drec running = {0}, hurried = {0}, patient = {0};
  char *argv;

  f->rt = limited_runtime(f, limit, drec_deadline, 0);
  setenv("FAKE_RUNTIME_MODE", "hang", 1);
  setenv("FAKE_RUNTIME_PID_FILE", pid_file, 1);
  setenv("FAKE_RUNTIME_ARGV_FILE", argv_file, 1);
  assert_int_equal(cshim_runtime_state(f->rt, "c1", result_cb, &running, &err), 0);
  hurried.deadline_ns = cshim_now_ns() + 200 * 1000000ull;
  assert_int_equal(cshim_runtime_state(f->rt, "c2", result_cb, &hurried, &err), 0);
  assert_int_equal(cshim_runtime_state(f->rt, "c3", result_cb, &patient, &err), 0);
  (void)fake_pid(f, pid_file, 0);

  /* The deadline passes in the queue: DeadlineExceeded, and it never starts. */
  assert_true(run_until(f, &hurried.r.calls, 1, 60000));
  assert_non_null(hurried.r.error);
  assert_int_equal(hurried.r.error->status, -ETIMEDOUT);
  assert_non_null(strstr(hurried.r.error->msg, "fake-runtime state: deadline exceeded after "));
  assert_non_null(
      strstr(hurried.r.error->msg, "ms waiting for a free runtime slot (1 of 1 in use)"));
  assert_int_equal(running.r.calls, 0);
  cshim_runtime_limit_get_stats(limit, &st);
  assert_int_equal(st.running, 1);
  assert_int_equal(st.queued, 1);

  /* Without a deadline a command waits as long as it takes; then it runs. */
  setenv("FAKE_RUNTIME_MODE", "ok", 1);
  kill(fake_pid(f, pid_file, 0), SIGKILL);
  assert_true(run_until(f, &running.r.calls, 1, 60000));
  assert_true(run_until(f, &patient.r.calls, 1, 60000));
  assert_null(patient.r.error);
  argv = read_file(argv_file);
  assert_string_equal(argv, "state c1\nstate c3\n");
  free(argv);
  rec_reset(&running.r);
  rec_reset(&hurried.r);
  rec_reset(&patient.r);
  cshim_runtime_limit_free(limit);
}

static void
test_runtime_deadline_kills_a_running_command(void **state)
{
  struct fixture *f = *state;
  cshim_autofree char *pid_file = path_in(f, "pids");
  cshim_error_t err = NULL;
  struct drec r = {0};
  pid_t pid;

  f->rt = limited_runtime(f, NULL, drec_deadline, 60000);
  setenv("FAKE_RUNTIME_MODE", "hang", 1);
  setenv("FAKE_RUNTIME_PID_FILE", pid_file, 1);
  r.deadline_ns = cshim_now_ns() + 2000 * 1000000ull;
  assert_int_equal(cshim_runtime_pause(f->rt, "c1", result_cb, &r, &err), 0);
  pid = fake_pid(f, pid_file, 0);
  assert_true(run_until(f, &r.r.calls, 1, 60000));
  assert_int_equal(r.r.error->status, -ETIMEDOUT);
  assert_non_null(strstr(r.r.error->msg, "fake-runtime pause: deadline exceeded after "));
  assert_true(WIFSIGNALED(r.r.wait_status) && WTERMSIG(r.r.wait_status) == SIGKILL);
  assert_gone(f, pid);
  rec_reset(&r.r);
}

static void
test_runtime_limit_queued_command_keeps_the_container_stdio(void **state)
{
  struct fixture *f = *state;
  cshim_autofree char *pid_file = path_in(f, "pids");
  cshim_runtime_limit_t *limit = cshim_runtime_limit_new(1);
  cshim_runtime_create_opts_t o = {.bundle = "/b"};
  cshim_error_t err = NULL;
  struct rec hanging = {0}, r = {0};
  int in[2], out[2], errp[2];
  char buf[64];
  ssize_t n;

  f->rt = limited_runtime(f, limit, NULL, 0);
  setenv("FAKE_RUNTIME_MODE", "hang", 1);
  setenv("FAKE_RUNTIME_PID_FILE", pid_file, 1);
  assert_int_equal(cshim_runtime_state(f->rt, "c0", result_cb, &hanging, &err), 0);
  (void)fake_pid(f, pid_file, 0);

  assert_int_equal(pipe2(in, O_CLOEXEC), 0);
  assert_int_equal(pipe2(out, O_CLOEXEC), 0);
  assert_int_equal(pipe2(errp, O_CLOEXEC), 0);
  assert_int_equal(write(in[1], "hello", 5), 5);
  close(in[1]);
  o.io = (cshim_runtime_io_t){in[0], out[1], errp[1]};
  setenv("FAKE_RUNTIME_MODE", "stdio", 1);
  unsetenv("FAKE_RUNTIME_PID_FILE");
  assert_int_equal(cshim_runtime_create(f->rt, "c1", &o, result_cb, &r, &err), 0);
  /* As the task plugin does once the call returns: only the runtime's copies remain. */
  close(in[0]);
  close(out[1]);
  close(errp[1]);
  run_until(f, NULL, 0, 100);
  assert_int_equal(r.calls, 0);

  kill(fake_pid(f, pid_file, 0), SIGKILL);
  assert_true(run_until(f, &r.calls, 1, 60000));
  assert_null(r.error);
  n = read(out[0], buf, sizeof buf - 1);
  assert_int_equal(n, 5);
  buf[n] = '\0';
  assert_string_equal(buf, "hello");
  n = read(errp[0], buf, sizeof buf - 1);
  assert_int_equal(n, 11);
  /* Nobody else holds the write ends: the container's streams end with it. */
  assert_int_equal(read(out[0], buf, sizeof buf), 0);
  close(out[0]);
  close(errp[0]);
  run_until(f, NULL, 0, 50);
  assert_int_equal(hanging.calls, 1);
  rec_reset(&hanging);
  rec_reset(&r);
  cshim_runtime_limit_free(limit);
}

/* ---- parsers ---- */

static void
test_runtime_parse_state_reads_runc_and_crun_output(void **state)
{
  cshim_runtime_state_t st;
  cshim_error_t err = NULL;
  (void)state;

  assert_int_equal(
      cshim_runtime_parse_state("{\n  \"ociVersion\": \"1.0.2-dev\",\n  \"id\": \"c1\",\n  "
                                "\"pid\": 15904,\n  \"status\": \"created\",\n  \"bundle\": "
                                "\"/tmp/b\",\n  \"rootfs\": \"/tmp/b/rootfs\",\n  \"created\": "
                                "\"2026-11-22T07:06:14.878073133Z\",\n  \"owner\": \"\"\n}",
                                &st, &err),
      0);
  assert_string_equal(st.status, "created");
  assert_int_equal(st.pid, 15904);
  assert_string_equal(st.bundle, "/tmp/b");

  assert_int_equal(cshim_runtime_parse_state("{\"ociVersion\": \"1.0.0\", \"id\": \"c1\", \"pid\": "
                                             "0, \"status\": \"stopped\", \"bundle\": \"/b\", "
                                             "\"rootfs\": \"rootfs\", \"systemd-scope\": \"\"}",
                                             &st, &err),
                   0);
  assert_string_equal(st.status, "stopped");
  assert_int_equal(st.pid, 0);

  /* runsc 2022-12 on a stopped container: pid -1 (no process), read as runc's 0 */
  assert_int_equal(
      cshim_runtime_parse_state("{\n  \"ociVersion\": \"1.0.2-dev\",\n  \"id\": \"g1\",\n  "
                                "\"status\": \"stopped\",\n  \"pid\": -1,\n  "
                                "\"bundle\": \"/tmp/g\"\n}",
                                &st, &err),
      0);
  assert_string_equal(st.status, "stopped");
  assert_int_equal(st.pid, 0);
  assert_int_equal(cshim_runtime_parse_state("{\"status\":\"running\",\"pid\":-2}", &st, &err),
                   -EINVAL);
  cshim_error_release(&err);

  assert_int_equal(cshim_runtime_parse_state("not json", &st, &err), -EINVAL);
  cshim_error_release(&err);
  assert_int_equal(cshim_runtime_parse_state("{\"pid\": 1}", &st, &err), -EINVAL);
  assert_string_equal(err->msg, "parse runtime state: no `status`");
  cshim_error_release(&err);
  assert_int_equal(cshim_runtime_parse_state("{\"status\":\"running\",\"pid\":\"x\"}", &st, &err),
                   -EINVAL);
  cshim_error_release(&err);
  assert_int_equal(cshim_runtime_parse_state("[]", &st, &err), -EINVAL);
  cshim_error_release(&err);
}

static void
test_runtime_parse_ps_accepts_null_and_arrays(void **state)
{
  cshim_error_t err = NULL;
  pid_t *pids = NULL;
  size_t n = 99;
  (void)state;

  assert_int_equal(cshim_runtime_parse_ps("[15904, 16000]\n", &pids, &n, &err), 0);
  assert_int_equal(n, 2);
  assert_int_equal(pids[0], 15904);
  assert_int_equal(pids[1], 16000);
  free(pids);
  assert_int_equal(cshim_runtime_parse_ps("null\n", &pids, &n, &err), 0);
  assert_int_equal(n, 0);
  free(pids);
  assert_int_equal(cshim_runtime_parse_ps("[]", &pids, &n, &err), 0);
  assert_int_equal(n, 0);
  free(pids);
  assert_int_equal(cshim_runtime_parse_ps("[1, \"x\"]", &pids, &n, &err), -EINVAL);
  cshim_error_release(&err);
  assert_int_equal(cshim_runtime_parse_ps("{}", &pids, &n, &err), -EINVAL);
  cshim_error_release(&err);
  assert_int_equal(cshim_runtime_parse_ps("", &pids, &n, &err), -EINVAL);
  cshim_error_release(&err);
}

static void
test_read_pid_file_accepts_decimal_with_or_without_newline(void **state)
{
  struct fixture *f = *state;
  cshim_autofree char *path = path_in(f, "init.pid");
  cshim_error_t err = NULL;
  pid_t pid = 0;

  write_file(path, "1234");
  assert_int_equal(cshim_read_pid_file(path, &pid, &err), 0);
  assert_int_equal(pid, 1234);
  write_file(path, "4321\n");
  assert_int_equal(cshim_read_pid_file(path, &pid, &err), 0);
  assert_int_equal(pid, 4321);
  write_file(path, "");
  assert_int_equal(cshim_read_pid_file(path, &pid, &err), -EINVAL);
  cshim_error_release(&err);
  write_file(path, "12ab");
  assert_int_equal(cshim_read_pid_file(path, &pid, &err), -EINVAL);
  cshim_error_release(&err);
  unlink(path);
  assert_int_equal(cshim_read_pid_file(path, &pid, &err), -ENOENT);
  assert_non_null(strstr(err->msg, "No such file or directory"));
  cshim_error_release(&err);
}

/* ---- the real runtimes ---- */

static bool
in_path(const char *name)
{
  const char *path = getenv("PATH");
  char buf[PATH_MAX];
  if (path == NULL)
    path = "/usr/sbin:/usr/bin:/sbin:/bin";
  for (const char *p = path; *p;) {
    const char *end = strchrnul(p, ':');
    snprintf(buf, sizeof buf, "%.*s/%s", (int)(end - p), p, name);
    if (access(buf, X_OK) == 0)
      return true;
    p = *end ? end + 1 : end;
  }
  return false;
}

static void
copy_file(const char *from, const char *to, mode_t mode)
{
  char buf[65536];
  int in = open(from, O_RDONLY | O_CLOEXEC);
  int out = open(to, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
  ssize_t n;
  assert_true(in >= 0 && out >= 0);
  while ((n = read(in, buf, sizeof buf)) > 0)
    assert_int_equal(write(out, buf, (size_t)n), n);
  close(in);
  close(out);
}

struct exit_rec
{
  int calls;
  int status;
};

static void
exit_cb(void *data, pid_t pid, int status)
{
  struct exit_rec *e = data;
  (void)pid;
  e->calls++;
  e->status = status;
}

/* `<runtime> spec` in the bundle, then args and terminal set for a long sleep. */
static void
write_spec(struct fixture *f)
{
  char *argv[] = {(char *)f->runtime, "spec", NULL};
  cshim_spawn_opts_t o = {.path = f->runtime, .argv = argv, .cwd = f->bundle};
  struct exit_rec e = {0};
  cshim_error_t err = NULL;
  char config[256];
  json_t *spec, *process;
  pid_t pid;

  o.stdin_fd = o.stdout_fd = o.stderr_fd = -1;
  assert_int_equal(cshim_spawn(host_reaper_api(f->reaper), &o, exit_cb, &e, &pid, &err), 0);
  assert_true(run_until(f, &e.calls, 1, 30000));
  assert_true(WIFEXITED(e.status) && WEXITSTATUS(e.status) == 0);
  snprintf(config, sizeof config, "%s/config.json", f->bundle);
  spec = json_load_file(config, 0, NULL);
  assert_non_null(spec);
  process = json_object_get(spec, "process");
  json_object_set_new(process, "terminal", json_false());
  json_object_set_new(process, "args", json_pack("[ss]", "sleep", "1000"));
  assert_int_equal(json_dump_file(spec, config, JSON_INDENT(2)), 0);
  json_decref(spec);
}

static int
setup_real(void **state, const char *runtime)
{
  struct fixture *f;
  cshim_runtime_config_t cfg;
  cshim_error_t err = NULL;
  char path[256];

  setup(state);
  f = *state;
  f->runtime = runtime;
  f->available = geteuid() == 0 && in_path(runtime) && access("/bin/busybox", X_OK) == 0;
  if (!f->available)
    return 0;
  snprintf(f->id, sizeof f->id, "cshim-test-%d", (int)getpid());
  snprintf(f->root, sizeof f->root, "%s/state", f->dir);
  snprintf(f->bundle, sizeof f->bundle, "%s/bundle", f->dir);
  snprintf(f->log, sizeof f->log, "%s/log.json", f->bundle);
  snprintf(f->pid_file, sizeof f->pid_file, "%s/init.pid", f->bundle);
  assert_int_equal(mkdir(f->bundle, 0755), 0);
  snprintf(path, sizeof path, "%s/rootfs", f->bundle);
  assert_int_equal(mkdir(path, 0755), 0);
  snprintf(path, sizeof path, "%s/rootfs/bin", f->bundle);
  assert_int_equal(mkdir(path, 0755), 0);
  snprintf(path, sizeof path, "%s/rootfs/bin/busybox", f->bundle);
  copy_file("/bin/busybox", path, 0755);
  for (size_t i = 0; i < 4; i++) {
    static const char *const applets[] = {"sh", "sleep", "echo", "true"};
    snprintf(path, sizeof path, "%s/rootfs/bin/%s", f->bundle, applets[i]);
    assert_int_equal(symlink("busybox", path), 0);
  }
  write_spec(f);

  cfg = (cshim_runtime_config_t){.loop = &f->loop,
                                 .reaper = host_reaper_api(f->reaper),
                                 .binary = runtime,
                                 .root = f->root,
                                 .timeout_ms = 60000};
  assert_int_equal(cshim_runtime_new(&cfg, &f->rt, &err), 0);
  return 0;
}

static int
setup_runc(void **state)
{
  return setup_real(state, "runc");
}

static int
setup_crun(void **state)
{
  return setup_real(state, "crun");
}

static int
teardown_real(void **state)
{
  struct fixture *f = *state;
  if (f->available && f->rt) {
    struct rec r = {0};
    cshim_error_t err = NULL;
    /* Whatever the test left behind goes, even after a failure. */
    if (cshim_runtime_delete(f->rt, f->id, true, NULL, result_cb, &r, &err) == 0)
      run_until(f, &r.calls, 1, 30000);
    cshim_error_release(&err);
    rec_reset(&r);
  }
  return teardown(state);
}

#define RUN_OK(call)                                                                               \
  do {                                                                                             \
    rec_reset(&r);                                                                                 \
    assert_int_equal((call), 0);                                                                   \
    await(f, &r);                                                                                  \
    if (r.error)                                                                                   \
      fail_msg("%s", r.error->msg);                                                                \
  } while (0)

#define RUN_FAIL(call, errnum, message)                                                            \
  do {                                                                                             \
    rec_reset(&r);                                                                                 \
    assert_int_equal((call), 0);                                                                   \
    await(f, &r);                                                                                  \
    assert_non_null(r.error);                                                                      \
    print_message("    %s -> %s (%d)\n", #call, r.error->msg, r.error->status);                    \
    assert_string_equal(r.error->msg, (message));                                                  \
    assert_int_equal(r.error->status, -(errnum));                                                  \
  } while (0)

#define RUN_FAIL_PREFIX(call, errnum, prefix)                                                      \
  do {                                                                                             \
    rec_reset(&r);                                                                                 \
    assert_int_equal((call), 0);                                                                   \
    await(f, &r);                                                                                  \
    assert_non_null(r.error);                                                                      \
    print_message("    %s -> %s (%d)\n", #call, r.error->msg, r.error->status);                    \
    assert_true(strncmp(r.error->msg, (prefix), strlen(prefix)) == 0);                             \
    assert_int_equal(r.error->status, -(errnum));                                                  \
  } while (0)

static bool
ps_has(const char *out, pid_t pid)
{
  pid_t *pids = NULL;
  size_t n = 0;
  cshim_error_t err = NULL;
  bool found = false;
  assert_int_equal(cshim_runtime_parse_ps(out, &pids, &n, &err), 0);
  for (size_t i = 0; i < n; i++)
    found |= pids[i] == pid;
  free(pids);
  return found;
}

static void
test_real_runtime_container_lifecycle(void **state)
{
  struct fixture *f = *state;
  bool is_runc;
  cshim_runtime_create_opts_t copts = {0};
  cshim_runtime_exec_opts_t eopts = {0};
  cshim_runtime_state_t st;
  cshim_error_t err = NULL;
  struct rec r = {0};
  struct exit_rec init_exit = {0};
  char exec_pid_file[160], process_json[160], msg[512];
  pid_t pid, exec_pid;

  if (!f->available)
    skip();
  is_runc = strcmp(f->runtime, "runc") == 0;

  copts = (cshim_runtime_create_opts_t){
      .bundle = f->bundle, .pid_file = f->pid_file, .log_path = f->log, .io = {-1, -1, -1}};
  RUN_OK(cshim_runtime_create(f->rt, f->id, &copts, result_cb, &r, &err));
  assert_int_equal(cshim_read_pid_file(f->pid_file, &pid, &err), 0);
  /* We are the subreaper: the container's init is our child once the runtime exits. */
  assert_int_equal(host_reaper_api(f->reaper)->ops->watch(host_reaper_api(f->reaper), pid, exit_cb,
                                                          &init_exit, &err),
                   0);

  RUN_OK(cshim_runtime_state(f->rt, f->id, result_cb, &r, &err));
  assert_int_equal(cshim_runtime_parse_state(r.out, &st, &err), 0);
  assert_string_equal(st.status, "created");
  assert_int_equal(st.pid, pid);
  assert_string_equal(st.bundle, f->bundle);

  if (is_runc)
    snprintf(msg, sizeof msg,
             "runc create: runc create failed: container with given ID already exists");
  else
    snprintf(msg, sizeof msg, "crun create: container `%s` already exists", f->id);
  RUN_FAIL(cshim_runtime_create(f->rt, f->id, &copts, result_cb, &r, &err), EEXIST, msg);

  RUN_OK(cshim_runtime_start(f->rt, f->id, f->log, result_cb, &r, &err));
  RUN_OK(cshim_runtime_state(f->rt, f->id, result_cb, &r, &err));
  assert_int_equal(cshim_runtime_parse_state(r.out, &st, &err), 0);
  assert_string_equal(st.status, "running");
  RUN_OK(cshim_runtime_ps(f->rt, f->id, result_cb, &r, &err));
  assert_true(ps_has(r.out, pid));

  if (is_runc)
    RUN_FAIL(cshim_runtime_start(f->rt, f->id, f->log, result_cb, &r, &err), EBUSY,
             "runc start: cannot start an already running container");
  if (is_runc)
    snprintf(msg, sizeof msg,
             "runc delete: cannot delete container %s that is not stopped: running", f->id);
  else
    snprintf(msg, sizeof msg,
             "crun delete: the container `%s` is not in `created` or `stopped` state", f->id);
  RUN_FAIL(cshim_runtime_delete(f->rt, f->id, false, f->log, result_cb, &r, &err), EBUSY, msg);

  snprintf(exec_pid_file, sizeof exec_pid_file, "%s/exec.pid", f->bundle);
  snprintf(process_json, sizeof process_json, "%s/process.json", f->dir);
  write_file(process_json, "{\"args\":[\"sleep\",\"1000\"],\"cwd\":\"/\",\"env\":[\"PATH=/bin\"],"
                           "\"user\":{\"uid\":0,\"gid\":0}}");
  eopts = (cshim_runtime_exec_opts_t){.process_json = process_json,
                                      .pid_file = exec_pid_file,
                                      .log_path = f->log,
                                      .detach = true,
                                      .io = {-1, -1, -1}};
  RUN_OK(cshim_runtime_exec(f->rt, f->id, &eopts, result_cb, &r, &err));
  assert_int_equal(cshim_read_pid_file(exec_pid_file, &exec_pid, &err), 0);
  RUN_OK(cshim_runtime_ps(f->rt, f->id, result_cb, &r, &err));
  assert_true(ps_has(r.out, pid));
  assert_true(ps_has(r.out, exec_pid));

  RUN_OK(cshim_runtime_pause(f->rt, f->id, result_cb, &r, &err));
  RUN_OK(cshim_runtime_state(f->rt, f->id, result_cb, &r, &err));
  assert_int_equal(cshim_runtime_parse_state(r.out, &st, &err), 0);
  assert_string_equal(st.status, "paused");
  RUN_OK(cshim_runtime_resume(f->rt, f->id, result_cb, &r, &err));

  RUN_OK(cshim_runtime_kill(f->rt, f->id, SIGKILL, false, f->log, result_cb, &r, &err));
  assert_true(run_until(f, &init_exit.calls, 1, 30000));
  assert_true(WIFSIGNALED(init_exit.status) && WTERMSIG(init_exit.status) == SIGKILL);

  RUN_OK(cshim_runtime_state(f->rt, f->id, result_cb, &r, &err));
  assert_int_equal(cshim_runtime_parse_state(r.out, &st, &err), 0);
  assert_string_equal(st.status, "stopped");

  /* crun says "kill container: No such process" or "open pidfd: No such process" */
  rec_reset(&r);
  assert_int_equal(cshim_runtime_kill(f->rt, f->id, SIGKILL, false, f->log, result_cb, &r, &err),
                   0);
  await(f, &r);
  assert_non_null(r.error);
  print_message("    kill after exit -> %s (%d)\n", r.error->msg, r.error->status);
  if (is_runc)
    assert_string_equal(r.error->msg, "runc kill: container not running");
  else
    assert_true(strncmp(r.error->msg, "crun kill: ", 11) == 0 &&
                strstr(r.error->msg, ": No such process") != NULL);
  assert_int_equal(r.error->status, -ESRCH);
  if (is_runc)
    snprintf(msg, sizeof msg, "runc pause: container not running");
  else
    /* crun 1.8 appends ": No such process" once the init has been reaped */
    snprintf(msg, sizeof msg, "crun pause: the container `%s` is not running", f->id);
  RUN_FAIL_PREFIX(cshim_runtime_pause(f->rt, f->id, result_cb, &r, &err), EBUSY, msg);

  RUN_OK(cshim_runtime_delete(f->rt, f->id, false, f->log, result_cb, &r, &err));
  if (is_runc)
    snprintf(msg, sizeof msg, "runc state: container does not exist");
  else
    snprintf(msg, sizeof msg,
             "crun state: error opening file `%s/%s/status`: No such file or directory", f->root,
             f->id);
  RUN_FAIL(cshim_runtime_state(f->rt, f->id, result_cb, &r, &err), ENOENT, msg);
  if (is_runc)
    snprintf(msg, sizeof msg, "runc delete: container does not exist");
  else
    snprintf(msg, sizeof msg,
             "crun delete: cannot open directory '%s/%s': No such file or directory", f->root,
             f->id);
  RUN_FAIL(cshim_runtime_delete(f->rt, f->id, false, f->log, result_cb, &r, &err), ENOENT, msg);
  rec_reset(&r);
}

static void
test_real_runtime_features(void **state)
{
  struct fixture *f = *state;
  cshim_error_t err = NULL;
  struct rec r = {0};
  json_t *features;

  if (!f->available)
    skip();
  rec_reset(&r);
  assert_int_equal(cshim_runtime_features(f->rt, result_cb, &r, &err), 0);
  await(f, &r);
  if (strcmp(f->runtime, "crun") == 0 && r.error) {
    /* crun before 1.9 has no `features` */
    print_message("    crun features -> %s\n", r.error->msg);
    assert_string_equal(r.error->msg, "crun features: unknown command features");
    rec_reset(&r);
    return;
  }
  assert_null(r.error);
  features = json_loads(r.out, 0, NULL);
  assert_non_null(features);
  assert_true(json_is_object(features));
  assert_non_null(json_object_get(features, "ociVersionMin"));
  json_decref(features);
  rec_reset(&r);
}

/* crun 1.8 refuses a hybrid cgroup layout whose cgroup2 mount has controllers. Hide that mount
   from this process only: a private mount namespace that goes away with the test. */
static void
hide_hybrid_cgroup2(void)
{
  struct statfs fs;
  char *controllers;

  if (geteuid() != 0 || statfs("/sys/fs/cgroup/unified", &fs) < 0 || fs.f_type != 0x63677270)
    return;
  controllers = read_file("/sys/fs/cgroup/unified/cgroup.controllers");
  if (controllers && controllers[0] != '\0' && controllers[0] != '\n') {
    if (unshare(CLONE_NEWNS) == 0 && mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) == 0)
      umount2("/sys/fs/cgroup/unified", MNT_DETACH);
  }
  free(controllers);
}

int
main(void)
{
  const struct CMUnitTest fake[] = {
      cmocka_unit_test_setup_teardown(test_runtime_builds_go_runc_argv, setup, teardown),
      cmocka_unit_test_setup_teardown(test_runtime_commands_are_child_spans_of_their_work, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_runtime_error_comes_from_the_last_log_error, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_runtime_error_falls_back_to_stderr, setup, teardown),
      cmocka_unit_test_setup_teardown(test_runtime_error_without_output_names_the_exit, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_runtime_success_captures_stdout, setup, teardown),
      cmocka_unit_test_setup_teardown(test_runtime_timeout_kills_the_runtime, setup, teardown),
      cmocka_unit_test_setup_teardown(test_runtime_free_kills_running_commands_without_calling_back,
                                      setup, teardown),
      cmocka_unit_test_setup_teardown(test_runtime_callback_may_free_the_runtime, setup, teardown),
      cmocka_unit_test_setup_teardown(
          test_runtime_does_not_wait_for_a_grandchild_holding_its_output, setup, teardown),
      cmocka_unit_test_setup_teardown(test_runtime_output_is_capped, setup, teardown),
      cmocka_unit_test_setup_teardown(test_runtime_gives_the_container_stdio_to_the_runtime, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_runtime_missing_binary_fails_at_once, setup, teardown),
      cmocka_unit_test_setup_teardown(test_runtime_rejects_invalid_arguments, setup, teardown),
      cmocka_unit_test_setup_teardown(
          test_runtime_reads_output_to_the_end_when_many_exits_are_reaped_at_once, setup, teardown),
      cmocka_unit_test_setup_teardown(test_runtime_timeout_kills_everything_the_runtime_started,
                                      setup, teardown),
      cmocka_unit_test_setup_teardown(test_runtime_free_kills_everything_the_runtime_started, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_runtime_limit_queues_commands_in_order, setup, teardown),
      cmocka_unit_test_setup_teardown(test_runtime_limit_queued_command_honours_its_deadline, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_runtime_limit_shares_slots_between_owners, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_runtime_limit_round_robin_keeps_each_owners_order, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_runtime_nice_only_for_commands_that_start_no_container,
                                      setup, teardown),
      cmocka_unit_test_setup_teardown(test_runtime_exec_failure_comes_with_the_result, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_runtime_limit_flood_of_commands_all_complete, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_runtime_deadline_kills_a_running_command, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_runtime_limit_queued_command_keeps_the_container_stdio,
                                      setup, teardown),
      cmocka_unit_test(test_runtime_parse_state_reads_runc_and_crun_output),
      cmocka_unit_test(test_runtime_parse_ps_accepts_null_and_arrays),
      cmocka_unit_test_setup_teardown(test_read_pid_file_accepts_decimal_with_or_without_newline,
                                      setup, teardown),
  };
  const struct CMUnitTest runc[] = {
      cmocka_unit_test_setup_teardown(test_real_runtime_container_lifecycle, setup_runc,
                                      teardown_real),
      cmocka_unit_test_setup_teardown(test_real_runtime_features, setup_runc, teardown_real),
  };
  const struct CMUnitTest crun[] = {
      cmocka_unit_test_setup_teardown(test_real_runtime_container_lifecycle, setup_crun,
                                      teardown_real),
      cmocka_unit_test_setup_teardown(test_real_runtime_features, setup_crun, teardown_real),
  };
  int failed = 0;

  /* Orphans (grandchildren, container processes) come back to us and our reaper. */
  prctl(PR_SET_CHILD_SUBREAPER, 1);
  failed += cmocka_run_group_tests_name("fake runtime", fake, NULL, NULL);
  failed += cmocka_run_group_tests_name("runc", runc, NULL, NULL);
  hide_hybrid_cgroup2();
  failed += cmocka_run_group_tests_name("crun", crun, NULL, NULL);
  return failed;
}
