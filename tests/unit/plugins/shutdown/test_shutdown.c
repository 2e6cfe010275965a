// SPDX-License-Identifier: Apache-2.0
// Tests of plugins/shutdown/shutdown.c through a mock init context.
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include <cshim/plugin.h>
#include <cshim/shutdown.h>
#include <cshim/util.h>

#include "mock_host.h"

/* Last: cmocka defines a `fail` macro that would clash with cshim_ttrpc_call_ops_t.fail. */
#include <cmocka.h>

const cshim_plugin_t *cshim_plugin_entry(void);

typedef struct cb_state_s
{
  int runs;
  cshim_shutdown_done_t *done;
  int started_before_me; /* how many callbacks had started when this one ran */
  const char *fail_with; /* complete at once with this error */
  bool complete_now;     /* complete at once without error */
} cb_state_t;

typedef struct fixture_s
{
  mock_host_t host;
  cshim_shutdown_t *sd;
  void *instance;
  int done_calls;
  bool in_shutdown_call; /* set while the test is inside shutdown() */
  bool done_during_call;
  int started;
} fixture_t;

static fixture_t *current;

static void
test_cb(void *data, cshim_shutdown_done_t *done)
{
  cb_state_t *st = data;

  st->runs++;
  st->started_before_me = current->started++;
  st->done = done;
  if (st->fail_with) {
    cshim_error_t err = NULL;
    cshim_error_make(&err, EIO, "%s", st->fail_with);
    st->done = NULL;
    done->complete(done, &err);
    assert_null(err);
  } else if (st->complete_now) {
    st->done = NULL;
    done->complete(done, NULL);
  }
}

static void
finish_cb(cb_state_t *st, const char *error)
{
  cshim_shutdown_done_t *done = cshim_steal_pointer(&st->done);
  cshim_error_t err = NULL;

  assert_non_null(done);
  if (error)
    cshim_error_make(&err, EIO, "%s", error);
  done->complete(done, error ? &err : NULL);
  cshim_error_release(&err);
}

static void
done_cb(void *data)
{
  fixture_t *f = data;

  f->done_calls++;
  if (f->in_shutdown_call)
    f->done_during_call = true;
}

static bool
is_done(void *data)
{
  return ((fixture_t *)data)->done_calls > 0;
}

static int
init_plugin(fixture_t *f, cshim_error_t *err)
{
  const cshim_plugin_t *desc = cshim_plugin_entry();
  int ret = desc->init(&f->host.ctx, &f->instance, err);

  if (ret == 0)
    f->sd = f->instance;
  return ret;
}

static int
setup(void **state)
{
  fixture_t *f = cshim_xmalloc0(sizeof *f);

  mock_host_init(&f->host, "io.containerd.internal.v1.shutdown", NULL);
  current = f;
  *state = f;
  return 0;
}

static int
setup_started(void **state)
{
  fixture_t *f;
  cshim_error_t err = NULL;

  setup(state);
  f = *state;
  assert_int_equal(init_plugin(f, &err), 0);
  assert_int_equal(f->sd->on_done(f->sd, done_cb, f, &err), 0);
  return 0;
}

static int
teardown(void **state)
{
  fixture_t *f = *state;

  if (f->instance)
    cshim_plugin_entry()->close(f->instance);
  mock_host_fini(&f->host);
  free(f);
  return 0;
}

static void
do_shutdown(fixture_t *f)
{
  f->in_shutdown_call = true;
  f->sd->shutdown(f->sd);
  f->in_shutdown_call = false;
}

static void
test_shutdown_descriptor_is_internal_shutdown(void **state)
{
  const cshim_plugin_t *desc = cshim_plugin_entry();

  assert_int_equal(desc->abi_version, CSHIM_PLUGIN_ABI_VERSION);
  assert_string_equal(desc->type, CSHIM_TYPE_INTERNAL);
  assert_string_equal(desc->id, "shutdown");
  assert_null(desc->requires);
  assert_null(desc->register_ttrpc);
  assert_non_null(desc->init);
  assert_non_null(desc->close);
}

static void
test_shutdown_with_no_callbacks_tells_waiters_from_the_loop(void **state)
{
  fixture_t *f = *state;

  assert_false(f->sd->is_shutting_down(f->sd));
  do_shutdown(f);
  assert_true(f->sd->is_shutting_down(f->sd));
  assert_int_equal(f->done_calls, 0);
  assert_true(mock_host_run_until(&f->host, is_done, f, 1000));
  assert_int_equal(f->done_calls, 1);
  assert_false(f->done_during_call);
  assert_int_equal(mock_host_count_lines(&f->host, CSHIM_LOG_INFO, "shutdown complete", NULL), 1);
}

static void
test_shutdown_runs_callbacks_together_and_waits_for_all(void **state)
{
  fixture_t *f = *state;
  cb_state_t st[3] = {{0}};
  cshim_error_t err = NULL;

  for (int i = 0; i < 3; i++)
    assert_int_equal(f->sd->register_callback(f->sd, test_cb, &st[i], &err), 0);
  do_shutdown(f);
  /* Every callback started before any finished. */
  for (int i = 0; i < 3; i++) {
    assert_int_equal(st[i].runs, 1);
    assert_int_equal(st[i].started_before_me, i);
    assert_non_null(st[i].done);
  }
  finish_cb(&st[2], NULL);
  finish_cb(&st[0], NULL);
  mock_host_run_for(&f->host, 20);
  assert_int_equal(f->done_calls, 0);
  finish_cb(&st[1], NULL);
  assert_int_equal(f->done_calls, 0); /* never from inside complete */
  assert_true(mock_host_run_until(&f->host, is_done, f, 1000));
  assert_int_equal(f->done_calls, 1);
  assert_int_equal(mock_host_count_lines(&f->host, CSHIM_LOG_ERROR, "", NULL), 0);
}

static void
test_shutdown_is_idempotent(void **state)
{
  fixture_t *f = *state;
  cb_state_t st = {.complete_now = true};
  cshim_error_t err = NULL;

  assert_int_equal(f->sd->register_callback(f->sd, test_cb, &st, &err), 0);
  do_shutdown(f);
  do_shutdown(f);
  assert_true(mock_host_run_until(&f->host, is_done, f, 1000));
  do_shutdown(f);
  mock_host_run_for(&f->host, 10);
  assert_int_equal(st.runs, 1);
  assert_int_equal(f->done_calls, 1);
}

static void
test_shutdown_callbacks_completing_at_once_do_not_tell_waiters_reentrantly(void **state)
{
  fixture_t *f = *state;
  cb_state_t st[2] = {{.complete_now = true}, {.complete_now = true}};
  cshim_error_t err = NULL;

  for (int i = 0; i < 2; i++)
    assert_int_equal(f->sd->register_callback(f->sd, test_cb, &st[i], &err), 0);
  do_shutdown(f);
  assert_int_equal(st[0].runs, 1);
  assert_int_equal(st[1].runs, 1); /* the first completing at once did not end it early */
  assert_int_equal(f->done_calls, 0);
  assert_true(mock_host_run_until(&f->host, is_done, f, 1000));
  assert_false(f->done_during_call);
}

static void
test_shutdown_first_error_becomes_the_result_and_is_logged(void **state)
{
  fixture_t *f = *state;
  cb_state_t st[3] = {{0}, {.fail_with = "first boom"}, {0}};
  cshim_error_t err = NULL;

  for (int i = 0; i < 3; i++)
    assert_int_equal(f->sd->register_callback(f->sd, test_cb, &st[i], &err), 0);
  do_shutdown(f);
  finish_cb(&st[2], "second boom");
  finish_cb(&st[0], NULL);
  assert_true(mock_host_run_until(&f->host, is_done, f, 1000));
  assert_int_equal(mock_host_count_lines(&f->host, CSHIM_LOG_ERROR, "shutdown", "first boom", NULL),
                   1);
  assert_int_equal(mock_host_count_lines(&f->host, CSHIM_LOG_ERROR, "second boom", NULL), 0);
  assert_int_equal(mock_host_count_lines(&f->host, CSHIM_LOG_INFO, "shutdown complete", NULL), 0);
}

static void
test_shutdown_timeout_ends_shutdown_without_slow_callbacks(void **state)
{
  fixture_t *f = *state;
  cb_state_t slow = {0}, quick = {.complete_now = true};
  cshim_error_t err = NULL;
  uint64_t t0;

  mock_host_set_config(&f->host, "timeout", "50ms");
  assert_int_equal(init_plugin(f, &err), 0);
  assert_int_equal(f->sd->on_done(f->sd, done_cb, f, &err), 0);
  assert_int_equal(f->sd->register_callback(f->sd, test_cb, &slow, &err), 0);
  assert_int_equal(f->sd->register_callback(f->sd, test_cb, &quick, &err), 0);

  t0 = cshim_now_ns();
  do_shutdown(f);
  /* The timeout alone keeps the loop running: uv_run returns once waiters were told. */
  uv_run(&f->host.loop, UV_RUN_DEFAULT);
  assert_int_equal(f->done_calls, 1);
  assert_true(cshim_now_ns() - t0 >= 45ull * 1000000ull);
  assert_int_equal(mock_host_count_lines(&f->host, CSHIM_LOG_ERROR, "1 callback(s) did not finish",
                                         "50 ms", NULL),
                   1);

  /* A late completion is harmless. */
  finish_cb(&slow, "too late");
  mock_host_run_for(&f->host, 10);
  assert_int_equal(f->done_calls, 1);
}

static void
test_shutdown_register_after_start_fails_with_ealready(void **state)
{
  fixture_t *f = *state;
  cb_state_t st = {0};
  cshim_error_t err = NULL;

  do_shutdown(f);
  assert_int_equal(f->sd->register_callback(f->sd, test_cb, &st, &err), -EALREADY);
  assert_non_null(err);
  cshim_error_release(&err);
  assert_true(mock_host_run_until(&f->host, is_done, f, 1000));
  assert_int_equal(st.runs, 0);
}

static void
test_shutdown_on_done_after_done_fires_on_next_iteration(void **state)
{
  fixture_t *f = *state;
  cshim_error_t err = NULL;
  fixture_t other = {0};

  do_shutdown(f);
  assert_true(mock_host_run_until(&f->host, is_done, f, 1000));
  assert_int_equal(f->sd->on_done(f->sd, done_cb, &other, &err), 0);
  assert_int_equal(other.done_calls, 0);
  uv_run(&f->host.loop, UV_RUN_DEFAULT);
  assert_int_equal(other.done_calls, 1);
  assert_int_equal(f->done_calls, 1);
}

static void
test_shutdown_idle_service_does_not_keep_loop_alive(void **state)
{
  fixture_t *f = *state;
  cb_state_t st = {0};
  cshim_error_t err = NULL;

  assert_int_equal(f->sd->register_callback(f->sd, test_cb, &st, &err), 0);
  /* Returns at once: nothing is active before shutdown. */
  assert_int_equal(uv_run(&f->host.loop, UV_RUN_DEFAULT), 0);
  assert_int_equal(st.runs, 0);
}

static void
test_shutdown_rejects_unknown_config_keys(void **state)
{
  fixture_t *f = *state;
  cshim_error_t err = NULL;

  mock_host_set_config(&f->host, "timeout", "5s");
  mock_host_set_config(&f->host, "tiemout", "5s");
  assert_int_equal(init_plugin(f, &err), -EINVAL);
  assert_non_null(err);
  assert_non_null(strstr(err->msg, "unknown key `tiemout`"));
  cshim_error_release(&err);
  assert_null(f->instance);
}

static void
test_shutdown_rejects_bad_timeouts(void **state)
{
  fixture_t *f = *state;
  cshim_error_t err = NULL;

  mock_host_set_config(&f->host, "timeout", "soon");
  assert_int_equal(init_plugin(f, &err), -EINVAL);
  assert_non_null(strstr(err->msg, "timeout"));
  cshim_error_release(&err);

  f->host.config_items[0].value = "0";
  assert_int_equal(init_plugin(f, &err), -EINVAL);
  assert_non_null(strstr(err->msg, "more than 0"));
  cshim_error_release(&err);
  assert_null(f->instance);
}

static void
test_shutdown_defaults_to_a_30s_timeout(void **state)
{
  fixture_t *f = *state;
  cb_state_t st = {0};
  cshim_error_t err = NULL;

  assert_int_equal(f->sd->register_callback(f->sd, test_cb, &st, &err), 0);
  do_shutdown(f);
  assert_int_equal(
      mock_host_count_lines(&f->host, CSHIM_LOG_INFO, "1 callback(s)", "timeout 30000 ms", NULL),
      1);
  finish_cb(&st, NULL);
  assert_true(mock_host_run_until(&f->host, is_done, f, 1000));
}

int
main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_shutdown_descriptor_is_internal_shutdown),
      cmocka_unit_test_setup_teardown(test_shutdown_with_no_callbacks_tells_waiters_from_the_loop,
                                      setup_started, teardown),
      cmocka_unit_test_setup_teardown(test_shutdown_runs_callbacks_together_and_waits_for_all,
                                      setup_started, teardown),
      cmocka_unit_test_setup_teardown(test_shutdown_is_idempotent, setup_started, teardown),
      cmocka_unit_test_setup_teardown(
          test_shutdown_callbacks_completing_at_once_do_not_tell_waiters_reentrantly, setup_started,
          teardown),
      cmocka_unit_test_setup_teardown(test_shutdown_first_error_becomes_the_result_and_is_logged,
                                      setup_started, teardown),
      cmocka_unit_test_setup_teardown(test_shutdown_timeout_ends_shutdown_without_slow_callbacks,
                                      setup, teardown),
      cmocka_unit_test_setup_teardown(test_shutdown_register_after_start_fails_with_ealready,
                                      setup_started, teardown),
      cmocka_unit_test_setup_teardown(test_shutdown_on_done_after_done_fires_on_next_iteration,
                                      setup_started, teardown),
      cmocka_unit_test_setup_teardown(test_shutdown_idle_service_does_not_keep_loop_alive,
                                      setup_started, teardown),
      cmocka_unit_test_setup_teardown(test_shutdown_rejects_unknown_config_keys, setup, teardown),
      cmocka_unit_test_setup_teardown(test_shutdown_rejects_bad_timeouts, setup, teardown),
      cmocka_unit_test_setup_teardown(test_shutdown_defaults_to_a_30s_timeout, setup_started,
                                      teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
