// SPDX-License-Identifier: Apache-2.0
// Checks that a real containerd accepts the publisher's Forward: a private containerd, a
// `ctr events` subscriber, and a TaskOOM sent through plugins/publisher.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <setjmp.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
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
#include <uv.h>

#include <cshim/plugin.h>
#include <cshim/publisher.h>
#include <cshim/unix_socket.h>
#include <cshim/util.h>

#include "containerd/events/task.pb-c.h"

#include "mock_host.h"

/* Last: cmocka defines a `fail` macro that would clash with cshim_ttrpc_call_ops_t.fail. */
#include <cmocka.h>

#define CONTAINERD "/usr/bin/containerd"
#define CTR "/usr/bin/ctr"
#define CONTAINER_ID "cshim-publisher-it"

extern char **environ;
const cshim_plugin_t *cshim_plugin_entry(void);

static const char *const requires_internal[] = {CSHIM_TYPE_INTERNAL, NULL};

typedef struct fixture_s
{
  char dir[64];
  char sock[128];
  char ttrpc_sock[160];
  char events_out[128];
  char containerd_log[128];
  pid_t containerd;
  pid_t ctr;
  mock_host_t host;
  bool host_ready;
  void *instance;
  cshim_publisher_t *pub;
  uv_timer_t tick;
  bool tick_open;
  unsigned published;
} fixture_t;

static void
write_file(const char *path, const char *content)
{
  FILE *f = fopen(path, "w");

  assert_non_null(f);
  fputs(content, f);
  assert_int_equal(fclose(f), 0);
}

/* Start argv[0] with stdout and stderr to `out` (no shell). */
static pid_t
spawn(char *const argv[], const char *out)
{
  posix_spawn_file_actions_t fa;
  pid_t pid;

  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&fa, 1, out, O_WRONLY | O_CREAT | O_APPEND, 0600);
  posix_spawn_file_actions_adddup2(&fa, 1, 2);
  assert_int_equal(posix_spawn(&pid, argv[0], &fa, NULL, argv, environ), 0);
  posix_spawn_file_actions_destroy(&fa);
  return pid;
}

/* SIGTERM, wait up to 5 s, then SIGKILL; always reaps. */
static void
stop_child(pid_t *pid)
{
  struct timespec ts = {0, 20 * 1000 * 1000};
  int status;

  if (*pid <= 0)
    return;
  kill(*pid, SIGTERM);
  for (int i = 0; i < 250; i++) {
    if (waitpid(*pid, &status, WNOHANG) == *pid) {
      *pid = 0;
      return;
    }
    nanosleep(&ts, NULL);
  }
  kill(*pid, SIGKILL);
  waitpid(*pid, &status, 0);
  *pid = 0;
}

static bool
file_contains(const char *path, const char *needle)
{
  char buf[65536];
  FILE *f = fopen(path, "r");
  size_t n;

  if (f == NULL)
    return false;
  n = fread(buf, 1, sizeof buf - 1, f);
  fclose(f);
  buf[n] = '\0';
  return strstr(buf, needle) != NULL;
}

static void
dump_file(const char *what, const char *path)
{
  char buf[8192];
  FILE *f = fopen(path, "r");
  size_t n;

  if (f == NULL)
    return;
  n = fread(buf, 1, sizeof buf - 1, f);
  fclose(f);
  buf[n] = '\0';
  fprintf(stderr, "---- %s (%s)\n%s\n", what, path, buf);
}

static int
remove_cb(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
  remove(path);
  return 0;
}

/* Unmount anything left under dir (nothing is expected), then delete the tree. */
static void
remove_tree(const char *dir)
{
  char line[4096];
  FILE *mi = fopen("/proc/self/mountinfo", "r");
  size_t len = strlen(dir);

  while (mi && fgets(line, sizeof line, mi)) {
    char mnt[4096];

    if (sscanf(line, "%*s %*s %*s %*s %4095s", mnt) == 1 && strncmp(mnt, dir, len) == 0)
      umount2(mnt, MNT_DETACH);
  }
  if (mi)
    fclose(mi);
  nftw(dir, remove_cb, 16, FTW_DEPTH | FTW_PHYS);
}

/* The socket accepts connections (its file exists from bind(), before containerd listens: a
   Forward sent then is refused and retried). */
static bool
sock_exists(void *data)
{
  struct sockaddr_un sa;
  socklen_t len;
  cshim_error_t err = NULL;
  int fd, ok;

  if (cshim_unix_sockaddr(data, false, &sa, &len, &err) < 0) {
    cshim_error_release(&err);
    return false;
  }
  fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return false;
  ok = connect(fd, (struct sockaddr *)&sa, len) == 0;
  close(fd);
  return ok;
}

static int
setup(void **state)
{
  fixture_t *f;
  char config[1024];

  if (geteuid() != 0 || access(CONTAINERD, X_OK) != 0 || access(CTR, X_OK) != 0) {
    fprintf(stderr, "needs root and %s, %s: skipped\n", CONTAINERD, CTR);
    *state = NULL;
    return 0;
  }
  f = cshim_xmalloc0(sizeof *f);
  *state = f;
  snprintf(f->dir, sizeof f->dir, "/tmp/cshim-pubit-XXXXXX");
  assert_non_null(mkdtemp(f->dir));
  snprintf(f->sock, sizeof f->sock, "%s/c.sock", f->dir);
  snprintf(f->ttrpc_sock, sizeof f->ttrpc_sock, "%s.ttrpc", f->sock);
  snprintf(f->events_out, sizeof f->events_out, "%s/events.out", f->dir);
  snprintf(config, sizeof config,
           "version = 2\n"
           "root = \"%s/root\"\n"
           "state = \"%s/state\"\n"
           "disabled_plugins = [\"io.containerd.grpc.v1.cri\"]\n"
           "[grpc]\n  address = \"%s\"\n"
           "[plugins.\"io.containerd.internal.v1.opt\"]\n  path = \"%s/opt\"\n",
           f->dir, f->dir, f->sock, f->dir);
  {
    char path[128];
    snprintf(path, sizeof path, "%s/config.toml", f->dir);
    write_file(path, config);
    snprintf(f->containerd_log, sizeof f->containerd_log, "%s/containerd.log", f->dir);
    char *const argv[] = {
        (char *)CONTAINERD, (char *)"--config", path, (char *)"--address", f->sock, NULL};
    f->containerd = spawn(argv, f->containerd_log);
  }

  mock_host_init(&f->host, "io.containerd.event.v1.publisher", requires_internal);
  f->host_ready = true;
  return 0;
}

static int
teardown(void **state)
{
  fixture_t *f = *state;

  if (f == NULL)
    return 0;
  if (f->instance)
    cshim_plugin_entry()->close(f->instance);
  if (f->tick_open && !uv_is_closing((uv_handle_t *)&f->tick))
    uv_close((uv_handle_t *)&f->tick, NULL);
  stop_child(&f->ctr);
  stop_child(&f->containerd);
  remove_tree(f->dir);
  if (f->host_ready)
    mock_host_fini(&f->host);
  free(f);
  return 0;
}

static void
publish_tick_cb(uv_timer_t *t)
{
  fixture_t *f = t->data;
  Containerd__Events__TaskOOM ev = CONTAINERD__EVENTS__TASK_OOM__INIT;
  cshim_error_t err = NULL;

  ev.container_id = (char *)CONTAINER_ID;
  /* `ctr events` may not be subscribed yet: keep publishing until it prints one. */
  if (cshim_publish(f->pub, CSHIM_TOPIC_TASK_OOM, &ev.base, &err) == 0)
    f->published++;
  cshim_error_release(&err);
}

static bool
ctr_saw_oom(void *data)
{
  fixture_t *f = data;
  return file_contains(f->events_out, CSHIM_TOPIC_TASK_OOM) &&
         file_contains(f->events_out, CONTAINER_ID);
}

static void
test_publisher_forward_is_accepted_by_containerd(void **state)
{
  fixture_t *f = *state;
  cshim_error_t err = NULL;
  cshim_publisher_stats_t st = {.struct_size = sizeof st};
  char unix_address[200];

  if (f == NULL)
    skip();
  if (!mock_host_run_until(&f->host, sock_exists, f->ttrpc_sock, 20000)) {
    dump_file("containerd log", f->containerd_log);
    fail_msg("containerd did not create `%s`", f->ttrpc_sock);
  }
  {
    char *const argv[] = {(char *)CTR, (char *)"--address", f->sock, (char *)"events", NULL};
    f->ctr = spawn(argv, f->events_out);
  }

  snprintf(unix_address, sizeof unix_address, "unix://%s", f->ttrpc_sock);
  mock_host_set_property(&f->host, CSHIM_PROP_NAMESPACE, "cshim-it");
  mock_host_set_property(&f->host, CSHIM_PROP_TTRPC_ADDRESS, unix_address);
  mock_host_set_config(&f->host, "retry_base", "50ms");
  assert_int_equal(cshim_plugin_entry()->init(&f->host.ctx, &f->instance, &err), 0);
  f->pub = f->instance;

  uv_timer_init(&f->host.loop, &f->tick);
  f->tick_open = true;
  f->tick.data = f;
  uv_timer_start(&f->tick, publish_tick_cb, 0, 200);
  if (!mock_host_run_until(&f->host, ctr_saw_oom, f, 20000)) {
    mock_host_dump_lines(&f->host);
    dump_file("ctr events", f->events_out);
    fail_msg("ctr events never printed %s for %s", CSHIM_TOPIC_TASK_OOM, CONTAINER_ID);
  }
  uv_close((uv_handle_t *)&f->tick, NULL);

  /* containerd answered OK: nothing was rejected (e.g. InvalidArgument on the envelope). */
  f->pub->get_stats(f->pub, &st);
  assert_true(st.published >= 1);
  assert_int_equal(st.dropped, 0);
  assert_int_equal(st.retried, 0);
  assert_true(file_contains(f->events_out, "cshim-it")); /* the namespace */
}

int
main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_publisher_forward_is_accepted_by_containerd, setup,
                                      teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
