// SPDX-License-Identifier: Apache-2.0
// TaskOOM: the v1 eventfd watch (driven through a fake cgroup whose cgroup.event_control is a
// plain file, so the test plays the kernel on the registered eventfd), the v2 memory.events
// watch (inotify on a plain file), and TaskOOM before TaskExit when init dies of it.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cshim/util.h>

#include "containerd/events/task.pb-c.h"
#include "fixture.h"
#include "cgroups.h"
#include "container.h"
#include "model.h"
#include "oom.h"
#include "process.h"
#include "service.h"
#include "containerd/task/v2/shim.pb-c.h"

#include <cmocka.h>

#define TIMEOUT_MS 5000

struct fixture
{
  task_mock_t m;
  task_service_t svc;
  task_container_t *c;
  char dir[64]; /* the fake memory cgroup */
};

static void
write_text(const char *dir, const char *name, const char *text)
{
  char path[256];
  int fd;
  snprintf(path, sizeof path, "%s/%s", dir, name);
  fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  assert_true(fd >= 0);
  assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
  close(fd);
}

static void
remove_text(const char *dir, const char *name)
{
  char path[256];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  unlink(path);
}

static int
setup(void **state)
{
  struct fixture *f = cshim_xmalloc0(sizeof *f);
  Containerd__Task__V2__CreateTaskRequest req = CONTAINERD__TASK__V2__CREATE_TASK_REQUEST__INIT;
  cshim_error_t err = NULL;

  task_mock_init(&f->m);
  if (task_service_init(&f->svc, &f->m.host.loop, &f->m.host.logger, f->m.reaper, &f->m.publisher,
                        &f->m.host.shutdown.base, "testns", NULL, &err) < 0)
    fail_msg("init: %s", err->msg);
  snprintf(f->dir, sizeof f->dir, "/tmp/cshim-oom-XXXXXX");
  assert_non_null(mkdtemp(f->dir));
  req.id = "oomy";
  req.bundle = f->dir;
  f->c = task_container_new(&f->svc, &f->svc.env, &req);
  f->c->creating = false;
  f->c->init->state = TASK_PROC_RUNNING;
  f->c->init->pid = 4242; /* never signalled: kill_all_on_exit is off and there is no runtime */
  f->c->cgroup = cshim_xmalloc0(sizeof *f->c->cgroup);
  *state = f;
  return 0;
}

static int
teardown(void **state)
{
  struct fixture *f = *state;
  const char *names[] = {"memory.events", "memory.oom_control", "cgroup.event_control"};

  task_container_free(f->c);
  task_service_close(&f->svc, NULL);
  mock_host_run_for(&f->m.host, 20);
  task_mock_fini(&f->m);
  for (size_t i = 0; i < CSHIM_N_ELEMENTS(names); i++)
    remove_text(f->dir, names[i]);
  rmdir(f->dir);
  free(f);
  return 0;
}

static void
use_v1(struct fixture *f, const char *oom_control)
{
  f->c->cgroup->v1[TASK_CGROUP_MEMORY] = cshim_xstrdup(f->dir);
  write_text(f->dir, "memory.oom_control", oom_control);
  write_text(f->dir, "cgroup.event_control", "");
}

static void
use_v2(struct fixture *f, const char *events)
{
  f->c->cgroup->unified = true;
  f->c->cgroup->dir = cshim_xstrdup(f->dir);
  write_text(f->dir, "memory.events", events);
}

/* The eventfd the watch registered, taken from the fake cgroup.event_control ("<efd> <fd>"). */
static int
registered_eventfd(struct fixture *f)
{
  char path[256], line[64] = "";
  FILE *fp;
  int efd = -1, ofd = -1;

  snprintf(path, sizeof path, "%s/cgroup.event_control", f->dir);
  fp = fopen(path, "r");
  assert_non_null(fp);
  assert_non_null(fgets(line, sizeof line, fp));
  fclose(fp);
  assert_int_equal(sscanf(line, "%d %d", &efd, &ofd), 2);
  assert_true(efd >= 0 && ofd >= 0 && efd != ofd);
  return efd;
}

static void
kernel_signals(int efd)
{
  uint64_t one = 1;
  assert_int_equal(write(efd, &one, sizeof one), (ssize_t)sizeof one);
}

struct count_pred
{
  task_mock_t *m;
  size_t n;
};

static bool
has_events(void *data)
{
  struct count_pred *p = data;
  return p->m->n_events >= p->n;
}

static void
expect_oom_event(struct fixture *f, size_t i)
{
  Containerd__Events__TaskOOM *ev;
  assert_true(i < f->m.n_events);
  assert_string_equal(f->m.events[i].topic, CSHIM_TOPIC_TASK_OOM);
  ev = (void *)task_mock_unpack_event(&f->m, i);
  assert_string_equal(ev->container_id, "oomy");
  protobuf_c_message_free_unpacked(&ev->base, NULL);
}

static void
exit_init(struct fixture *f)
{
  struct timespec now;
  clock_gettime(CLOCK_REALTIME, &now);
  task_process_set_exited(f->c->init, SIGKILL, &now);
}

static void
test_oom_v1_eventfd_notification_publishes_task_oom(void **state)
{
  struct fixture *f = *state;
  struct count_pred one = {&f->m, 1};
  cshim_error_t err = NULL;
  int efd;

  use_v1(f, "oom_kill_disable 0\nunder_oom 0\noom_kill 0\n");
  if (task_oom_watch(f->c, &err) < 0)
    fail_msg("%s", err->msg);
  efd = registered_eventfd(f);
  write_text(f->dir, "memory.oom_control", "oom_kill_disable 0\nunder_oom 0\noom_kill 1\n");
  kernel_signals(efd);
  assert_true(mock_host_run_until(&f->m.host, has_events, &one, TIMEOUT_MS));
  expect_oom_event(f, 0);
  /* the exit that follows finds nothing new: one TaskOOM, then TaskExit */
  exit_init(f);
  assert_int_equal(f->m.n_events, 2);
  assert_string_equal(f->m.events[1].topic, CSHIM_TOPIC_TASK_EXIT);
  assert_null(f->c->oom);
}

static void
test_oom_v1_is_published_before_exit_when_the_loop_has_not_seen_it(void **state)
{
  struct fixture *f = *state;
  cshim_error_t err = NULL;
  int efd;

  use_v1(f, "oom_kill_disable 0\nunder_oom 0\noom_kill 0\n");
  assert_int_equal(task_oom_watch(f->c, &err), 0);
  efd = registered_eventfd(f);
  /* the kernel signals and kills; the reaper's exit is handled before the poll callback */
  kernel_signals(efd);
  write_text(f->dir, "memory.oom_control", "oom_kill_disable 0\nunder_oom 0\noom_kill 1\n");
  exit_init(f);
  assert_int_equal(f->m.n_events, 2);
  expect_oom_event(f, 0);
  assert_string_equal(f->m.events[1].topic, CSHIM_TOPIC_TASK_EXIT);
  /* and the notification the loop still holds produces no second TaskOOM */
  mock_host_run_for(&f->m.host, 100);
  assert_int_equal(f->m.n_events, 2);
}

static void
test_oom_v1_notification_then_counted_kill_is_one_task_oom(void **state)
{
  struct fixture *f = *state;
  struct count_pred one = {&f->m, 1};
  cshim_error_t err = NULL;
  int efd;

  /* the real order: the notification when the cgroup enters OOM, the kill counted after */
  use_v1(f, "oom_kill_disable 0\nunder_oom 0\noom_kill 0\n");
  assert_int_equal(task_oom_watch(f->c, &err), 0);
  efd = registered_eventfd(f);
  kernel_signals(efd);
  assert_true(mock_host_run_until(&f->m.host, has_events, &one, TIMEOUT_MS));
  write_text(f->dir, "memory.oom_control", "oom_kill_disable 0\nunder_oom 0\noom_kill 1\n");
  exit_init(f);
  assert_int_equal(f->m.n_events, 2);
  expect_oom_event(f, 0);
  assert_string_equal(f->m.events[1].topic, CSHIM_TOPIC_TASK_EXIT);
}

static void
test_oom_v1_two_episodes_are_two_task_ooms(void **state)
{
  struct fixture *f = *state;
  struct count_pred one = {&f->m, 1}, two = {&f->m, 2};
  cshim_error_t err = NULL;
  int efd;

  use_v1(f, "oom_kill_disable 0\nunder_oom 0\noom_kill 0\n");
  assert_int_equal(task_oom_watch(f->c, &err), 0);
  efd = registered_eventfd(f);
  kernel_signals(efd);
  assert_true(mock_host_run_until(&f->m.host, has_events, &one, TIMEOUT_MS));
  write_text(f->dir, "memory.oom_control", "oom_kill_disable 0\nunder_oom 0\noom_kill 1\n");
  kernel_signals(efd);
  assert_true(mock_host_run_until(&f->m.host, has_events, &two, TIMEOUT_MS));
  write_text(f->dir, "memory.oom_control", "oom_kill_disable 0\nunder_oom 0\noom_kill 2\n");
  exit_init(f);
  assert_int_equal(f->m.n_events, 3);
  expect_oom_event(f, 0);
  expect_oom_event(f, 1);
  assert_string_equal(f->m.events[2].topic, CSHIM_TOPIC_TASK_EXIT);
}

static void
test_oom_v1_counter_alone_is_enough_at_exit(void **state)
{
  struct fixture *f = *state;
  cshim_error_t err = NULL;

  /* an OOM kill counted but whose notification was lost (e.g. watch set up late) */
  use_v1(f, "oom_kill_disable 0\nunder_oom 0\noom_kill 3\n");
  assert_int_equal(task_oom_watch(f->c, &err), 0);
  write_text(f->dir, "memory.oom_control", "oom_kill_disable 0\nunder_oom 0\noom_kill 4\n");
  exit_init(f);
  assert_int_equal(f->m.n_events, 2);
  expect_oom_event(f, 0);
  assert_string_equal(f->m.events[1].topic, CSHIM_TOPIC_TASK_EXIT);
}

static void
test_oom_v1_cgroup_removal_is_no_oom(void **state)
{
  struct fixture *f = *state;
  cshim_error_t err = NULL;
  int efd;

  use_v1(f, "oom_kill_disable 0\nunder_oom 0\noom_kill 0\n");
  assert_int_equal(task_oom_watch(f->c, &err), 0);
  efd = registered_eventfd(f);
  /* rmdir of a v1 memory cgroup also signals every registered eventfd */
  remove_text(f->dir, "memory.oom_control");
  kernel_signals(efd);
  mock_host_run_for(&f->m.host, 100);
  assert_int_equal(f->m.n_events, 0);
  assert_null(f->c->oom);
}

static void
test_oom_exit_without_oom_publishes_only_exit(void **state)
{
  struct fixture *f = *state;
  cshim_error_t err = NULL;

  use_v1(f, "oom_kill_disable 0\nunder_oom 0\noom_kill 0\n");
  assert_int_equal(task_oom_watch(f->c, &err), 0);
  exit_init(f);
  assert_int_equal(f->m.n_events, 1);
  assert_string_equal(f->m.events[0].topic, CSHIM_TOPIC_TASK_EXIT);
}

static void
test_oom_v2_memory_events_change_publishes_task_oom(void **state)
{
  struct fixture *f = *state;
  struct count_pred one = {&f->m, 1};
  cshim_error_t err = NULL;

  use_v2(f, "low 0\nhigh 0\nmax 0\noom 0\noom_kill 0\n");
  if (task_oom_watch(f->c, &err) < 0)
    fail_msg("%s", err->msg);
  /* "max" events and an "oom" without a kill are no TaskOOM */
  write_text(f->dir, "memory.events", "low 0\nhigh 0\nmax 3\noom 1\noom_kill 0\n");
  mock_host_run_for(&f->m.host, 100);
  assert_int_equal(f->m.n_events, 0);
  write_text(f->dir, "memory.events", "low 0\nhigh 0\nmax 4\noom 2\noom_kill 1\n");
  assert_true(mock_host_run_until(&f->m.host, has_events, &one, TIMEOUT_MS));
  expect_oom_event(f, 0);
  /* rewritten with the same counter: nothing new */
  write_text(f->dir, "memory.events", "low 0\nhigh 0\nmax 5\noom 2\noom_kill 1\n");
  mock_host_run_for(&f->m.host, 100);
  assert_int_equal(f->m.n_events, 1);
}

static void
test_oom_v2_is_published_before_exit_when_the_loop_has_not_seen_it(void **state)
{
  struct fixture *f = *state;
  cshim_error_t err = NULL;

  use_v2(f, "low 0\nhigh 0\nmax 0\noom 0\noom_kill 2\n"); /* earlier kills are not ours */
  assert_int_equal(task_oom_watch(f->c, &err), 0);
  write_text(f->dir, "memory.events", "low 0\nhigh 0\nmax 1\noom 1\noom_kill 3\n");
  exit_init(f);
  assert_int_equal(f->m.n_events, 2);
  expect_oom_event(f, 0);
  assert_string_equal(f->m.events[1].topic, CSHIM_TOPIC_TASK_EXIT);
  mock_host_run_for(&f->m.host, 100);
  assert_int_equal(f->m.n_events, 2);
}

static void
test_oom_watch_without_memory_cgroup_fails_cleanly(void **state)
{
  struct fixture *f = *state;
  cshim_error_t err = NULL;

  assert_int_equal(task_oom_watch(f->c, &err), -ENOENT);
  cshim_error_release(&err);
  f->c->cgroup->v1[TASK_CGROUP_MEMORY] = cshim_xstrdup("/nonexistent/memory");
  assert_true(task_oom_watch(f->c, &err) < 0);
  cshim_error_release(&err);
  assert_null(f->c->oom);
  exit_init(f);
  assert_int_equal(f->m.n_events, 1);
}

static void
test_oom_watch_registers_on_a_real_memory_cgroup(void **state)
{
  struct fixture *f = *state;
  task_cgroup_t *cg = NULL;
  cshim_error_t err = NULL;

  /* the kernel must accept the registration (v1) or the inotify watch (v2) of this process's
     own memory cgroup */
  if (task_cgroup_load(getpid(), &cg, &err) < 0 || task_cgroup_memory_dir(cg) == NULL) {
    cshim_error_release(&err);
    task_cgroup_free(cg);
    skip();
  }
  task_cgroup_free(f->c->cgroup);
  f->c->cgroup = cg;
  if (task_oom_watch(f->c, &err) < 0)
    fail_msg("%s", err->msg);
  mock_host_run_for(&f->m.host, 20);
  assert_int_equal(f->m.n_events, 0);
  task_oom_stop(f->c);
}

/* Live upgrade, cgroup v1: the eventfd is handed over as it is (task_oom_eventfd, then
   task_oom_adopt in the next image): nothing is registered again, a notification the old image
   had not read yet is published by the new one, and kills counted in between (the saved
   progress) are reported once. */
static void
test_oom_v1_eventfd_is_handed_over_with_an_unread_notification(void **state)
{
  struct fixture *f = *state;
  struct count_pred one = {&f->m, 1}, two = {&f->m, 2};
  uint64_t reported = 0, credit = 0;
  cshim_error_t err = NULL;
  char before[64] = "", after[64] = "", path[256];
  FILE *fp;
  int efd, kept;

  use_v1(f, "oom_kill_disable 0\nunder_oom 0\noom_kill 0\n");
  assert_int_equal(task_oom_watch(f->c, &err), 0);
  efd = registered_eventfd(f);
  assert_int_equal(task_oom_eventfd(f->c), efd);
  assert_true(task_oom_progress(f->c, &reported, &credit));
  snprintf(path, sizeof path, "%s/cgroup.event_control", f->dir);
  fp = fopen(path, "r");
  assert_non_null(fp);
  assert_non_null(fgets(before, sizeof before, fp));
  fclose(fp);

  /* the exec keeps the descriptor; here the old watch goes and a copy stays */
  kept = dup(efd);
  assert_true(kept >= 0);
  kernel_signals(kept); /* the kernel signals during the hand-over */
  task_oom_stop(f->c);
  mock_host_run_for(&f->m.host, 20);
  assert_int_equal(f->m.n_events, 0);

  assert_int_equal(task_oom_adopt(f->c, kept, reported, credit, &err), 0);
  assert_int_equal(task_oom_eventfd(f->c), kept);
  assert_true(mock_host_run_until(&f->m.host, has_events, &one, TIMEOUT_MS));
  expect_oom_event(f, 0);
  fp = fopen(path, "r");
  assert_non_null(fp);
  assert_non_null(fgets(after, sizeof after, fp));
  fclose(fp);
  assert_string_equal(after, before); /* not registered again */

  /* the kill behind that notification is counted now: it was already reported (the credit) */
  write_text(f->dir, "memory.oom_control", "oom_kill_disable 0\nunder_oom 0\noom_kill 1\n");
  kernel_signals(kept);
  assert_true(mock_host_run_until(&f->m.host, has_events, &two, TIMEOUT_MS));
  expect_oom_event(f, 1);
  mock_host_run_for(&f->m.host, 100);
  assert_int_equal(f->m.n_events, 2);
}

/* A kill counted while no image watched (the old saved its progress, the new one starts from
   the counter as it is then) is reported by the new image. */
static void
test_oom_v1_kill_counted_during_the_hand_over_is_reported(void **state)
{
  struct fixture *f = *state;
  struct count_pred one = {&f->m, 1};
  uint64_t reported = 0, credit = 0;
  cshim_error_t err = NULL;
  int kept;

  use_v1(f, "oom_kill_disable 0\nunder_oom 0\noom_kill 2\n");
  assert_int_equal(task_oom_watch(f->c, &err), 0);
  assert_true(task_oom_progress(f->c, &reported, &credit));
  assert_int_equal(reported, 2);
  kept = dup(task_oom_eventfd(f->c));
  task_oom_stop(f->c);
  write_text(f->dir, "memory.oom_control", "oom_kill_disable 0\nunder_oom 0\noom_kill 3\n");
  assert_int_equal(task_oom_adopt(f->c, kept, reported, credit, &err), 0);
  assert_true(mock_host_run_until(&f->m.host, has_events, &one, TIMEOUT_MS));
  expect_oom_event(f, 0);
  mock_host_run_for(&f->m.host, 100);
  assert_int_equal(f->m.n_events, 1);
}

int
main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_oom_v1_eventfd_notification_publishes_task_oom, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(
          test_oom_v1_is_published_before_exit_when_the_loop_has_not_seen_it, setup, teardown),
      cmocka_unit_test_setup_teardown(test_oom_v1_notification_then_counted_kill_is_one_task_oom,
                                      setup, teardown),
      cmocka_unit_test_setup_teardown(test_oom_v1_two_episodes_are_two_task_ooms, setup, teardown),
      cmocka_unit_test_setup_teardown(test_oom_v1_counter_alone_is_enough_at_exit, setup, teardown),
      cmocka_unit_test_setup_teardown(test_oom_v1_cgroup_removal_is_no_oom, setup, teardown),
      cmocka_unit_test_setup_teardown(
          test_oom_v1_eventfd_is_handed_over_with_an_unread_notification, setup, teardown),
      cmocka_unit_test_setup_teardown(test_oom_v1_kill_counted_during_the_hand_over_is_reported,
                                      setup, teardown),
      cmocka_unit_test_setup_teardown(test_oom_exit_without_oom_publishes_only_exit, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_oom_v2_memory_events_change_publishes_task_oom, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(
          test_oom_v2_is_published_before_exit_when_the_loop_has_not_seen_it, setup, teardown),
      cmocka_unit_test_setup_teardown(test_oom_watch_without_memory_cgroup_fails_cleanly, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_oom_watch_registers_on_a_real_memory_cgroup, setup,
                                      teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
