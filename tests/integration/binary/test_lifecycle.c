// SPDX-License-Identifier: Apache-2.0
// The real shim binary's lifecycle: SIGTERM/SIGINT stop it promptly with status 0 and remove
// its socket even with calls in flight; SIGUSR1 dumps its state and it keeps serving; a daemon
// that cannot bind leaves the live socket it found alone.
#define _GNU_SOURCE
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cshim/error.h>

#include "echo.pb-c.h"
#include "harness.h"

/* Last: cmocka defines fail(), a name <cshim/ttrpc.h> uses. */
#include <cmocka.h>

#define SERVICE "cshim.fixture.v1.Echo"

static void
start_shim(harness_t *h)
{
  harness_init(h, "modules:\n"
                  "  - " CSHIM_TEST_ECHO_SO "\n"
#ifdef CSHIM_TEST_SHUTDOWN_SO
                  "  - " CSHIM_TEST_SHUTDOWN_SO "\n"
#endif
  );
  harness_start(h);
  if (!harness_wait_ready(h, 10000)) {
    char *log = harness_read_log(h);
    fprintf(stderr, "shim did not start:\n%s\n", log);
    free(log);
    harness_fini(h);
    fail();
  }
}

static int
teardown(void **state)
{
  harness_fini(*state);
  free(*state);
  return 0;
}

static int
setup(void **state)
{
  *state = calloc(1, sizeof(harness_t));
  return *state ? 0 : -1;
}

static void
stop_with(harness_t *h, int signum)
{
  Cshim__Fixture__V1__SleepRequest req = CSHIM__FIXTURE__V1__SLEEP_REQUEST__INIT;
  Ttrpc__Response *resp;
  char *log;
  int fd;

  start_shim(h);
  /* A call that would take a minute must not hold the exit up. */
  fd = raw_connect(h->sock);
  assert_true(fd >= 0);
  req.delay_ms = 60000;
  assert_int_equal(raw_send_request(fd, 1, SERVICE, "Sleep", &req.base, NULL), 0);
  usleep(100 * 1000);

  assert_int_equal(kill(h->pid, signum), 0);
  /* Well under the daemon's own 10 s shutdown deadline, which would exit 1. */
  assert_true(harness_wait_exit(h, 8000));
  log = harness_read_log(h);
  if (!WIFEXITED(h->status) || WEXITSTATUS(h->status) != 0)
    fprintf(stderr, "shim log:\n%s\n", log);
  assert_true(WIFEXITED(h->status));
  assert_int_equal(WEXITSTATUS(h->status), 0);
  assert_int_not_equal(access(h->sock, F_OK), 0);
  assert_non_null(strstr(log, "shim exited"));
  free(log);

  /* The pending call gets an answer or the connection ends; either way the read returns. */
  resp = raw_recv_response(fd, NULL);
  if (resp) {
    assert_int_not_equal(raw_response_code(resp), 0);
    ttrpc__response__free_unpacked(resp, NULL);
  }
  close(fd);
}

static void
test_lifecycle_sigterm_exits_zero_and_removes_socket(void **state)
{
  stop_with(*state, SIGTERM);
}

static void
test_lifecycle_sigint_exits_zero_and_removes_socket(void **state)
{
  stop_with(*state, SIGINT);
}

static void
test_lifecycle_sigusr1_dumps_state_and_keeps_serving(void **state)
{
  Cshim__Fixture__V1__EchoRequest req = CSHIM__FIXTURE__V1__ECHO_REQUEST__INIT;
  harness_t *h = *state;
  Ttrpc__Response *resp;
  char *log = NULL;
  int fd;

  start_shim(h);
  assert_int_equal(kill(h->pid, SIGUSR1), 0);
  for (int i = 0; i < 100; i++) {
    free(log);
    log = harness_read_log(h);
    if (strstr(log, "ttrpc: ") && strstr(log, "calls in flight"))
      break;
    usleep(20 * 1000);
  }
  assert_non_null(strstr(log, "state dump"));
  assert_non_null(strstr(log, "plugin `io.containerd.ttrpc.v1.echo`"));
  free(log);

  fd = raw_connect(h->sock);
  assert_true(fd >= 0);
  req.text = "still here";
  assert_int_equal(raw_send_request(fd, 1, SERVICE, "Echo", &req.base, NULL), 0);
  resp = raw_recv_response(fd, NULL);
  assert_non_null(resp);
  assert_int_equal(raw_response_code(resp), 0);
  ttrpc__response__free_unpacked(resp, NULL);
  close(fd);
}

static void
test_lifecycle_second_daemon_on_a_live_socket_leaves_it_alone(void **state)
{
  Cshim__Fixture__V1__EchoRequest req = CSHIM__FIXTURE__V1__ECHO_REQUEST__INIT;
  harness_t *h = *state, other;
  Ttrpc__Response *resp;
  char *log;
  int fd;

  start_shim(h);
  harness_init(&other, "modules: [" CSHIM_TEST_ECHO_SO "]\n");
  snprintf(other.sock, sizeof(other.sock), "%s", h->sock);
  assert_true(harness_run_to_failure(&other) > 0);
  log = harness_read_log(&other);
  assert_non_null(strstr(log, "is in use"));
  free(log);
  harness_fini(&other);

  assert_int_equal(access(h->sock, F_OK), 0);
  fd = raw_connect(h->sock);
  assert_true(fd >= 0);
  req.text = "first daemon";
  assert_int_equal(raw_send_request(fd, 1, SERVICE, "Echo", &req.base, NULL), 0);
  resp = raw_recv_response(fd, NULL);
  assert_non_null(resp);
  assert_int_equal(raw_response_code(resp), 0);
  ttrpc__response__free_unpacked(resp, NULL);
  close(fd);
}

int
main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_lifecycle_sigterm_exits_zero_and_removes_socket, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_lifecycle_sigint_exits_zero_and_removes_socket, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_lifecycle_sigusr1_dumps_state_and_keeps_serving, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_lifecycle_second_daemon_on_a_live_socket_leaves_it_alone,
                                      setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
