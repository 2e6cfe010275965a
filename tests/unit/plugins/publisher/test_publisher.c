// SPDX-License-Identifier: Apache-2.0
// Tests of plugins/publisher/publisher.c against a fake containerd Events service.
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <uv.h>

#include <cshim/plugin.h>
#include <cshim/publisher.h>
#include <cshim/util.h>

#include "containerd/events/task.pb-c.h"
#include "google/protobuf/timestamp.pb-c.h"

#include "mock_host.h"

/* Last: cmocka defines a `fail` macro that would clash with cshim_ttrpc_call_ops_t.fail. */
#include <cmocka.h>

const cshim_plugin_t *cshim_plugin_entry(void);

static const char *const requires_internal[] = {CSHIM_TYPE_INTERNAL, NULL};

typedef struct fixture_s
{
  mock_host_t host;
  mock_events_server_t srv;
  void *instance;
  cshim_publisher_t *pub;
  size_t want;
} fixture_t;

static int
setup(void **state)
{
  fixture_t *f = cshim_xmalloc0(sizeof *f);

  mock_host_init(&f->host, "io.containerd.event.v1.publisher", requires_internal);
  mock_events_server_init(&f->srv, &f->host.loop);
  mock_host_set_property(&f->host, CSHIM_PROP_NAMESPACE, "default");
  mock_host_set_property(&f->host, CSHIM_PROP_TTRPC_ADDRESS, f->srv.path);
  mock_host_set_config(&f->host, "retry_base", "10ms");
  mock_host_set_config(&f->host, "retry_max", "40ms");
  mock_host_set_config(&f->host, "timeout", "300ms");
  *state = f;
  return 0;
}

static int
teardown(void **state)
{
  fixture_t *f = *state;

  if (f->instance)
    cshim_plugin_entry()->close(f->instance);
  mock_events_server_fini(&f->srv);
  mock_host_fini(&f->host);
  free(f);
  return 0;
}

static int
init_plugin(fixture_t *f, cshim_error_t *err)
{
  int ret = cshim_plugin_entry()->init(&f->host.ctx, &f->instance, err);

  if (ret == 0)
    f->pub = f->instance;
  return ret;
}

static void
start(fixture_t *f)
{
  cshim_error_t err = NULL;

  assert_int_equal(init_plugin(f, &err), 0);
  assert_null(err);
}

/* ---- events ---- */

static int
pub_create(fixture_t *f, const char *cid)
{
  Containerd__Events__TaskCreate ev = CONTAINERD__EVENTS__TASK_CREATE__INIT;
  cshim_error_t err = NULL;
  int ret;

  ev.container_id = (char *)cid;
  ev.bundle = (char *)"/run/bundle";
  ev.pid = 42;
  ret = cshim_publish(f->pub, CSHIM_TOPIC_TASK_CREATE, &ev.base, &err);
  cshim_error_release(&err);
  return ret;
}

static int
pub_start(fixture_t *f, const char *cid)
{
  Containerd__Events__TaskStart ev = CONTAINERD__EVENTS__TASK_START__INIT;
  cshim_error_t err = NULL;
  int ret;

  ev.container_id = (char *)cid;
  ev.pid = 42;
  ret = cshim_publish(f->pub, CSHIM_TOPIC_TASK_START, &ev.base, &err);
  cshim_error_release(&err);
  return ret;
}

static int
pub_exit(fixture_t *f, const char *cid)
{
  Containerd__Events__TaskExit ev = CONTAINERD__EVENTS__TASK_EXIT__INIT;
  Google__Protobuf__Timestamp at = GOOGLE__PROTOBUF__TIMESTAMP__INIT;
  cshim_error_t err = NULL;
  int ret;

  at.seconds = 1700000000;
  at.nanos = 5;
  ev.container_id = (char *)cid;
  ev.id = (char *)cid;
  ev.pid = 42;
  ev.exit_status = 137;
  ev.exited_at = &at;
  ret = cshim_publish(f->pub, CSHIM_TOPIC_TASK_EXIT, &ev.base, &err);
  cshim_error_release(&err);
  return ret;
}

static int
pub_delete(fixture_t *f, const char *cid)
{
  Containerd__Events__TaskDelete ev = CONTAINERD__EVENTS__TASK_DELETE__INIT;
  cshim_error_t err = NULL;
  int ret;

  ev.container_id = (char *)cid;
  ev.pid = 42;
  ev.exit_status = 137;
  ret = cshim_publish(f->pub, CSHIM_TOPIC_TASK_DELETE, &ev.base, &err);
  cshim_error_release(&err);
  return ret;
}

static int
pub_oom(fixture_t *f, const char *cid)
{
  Containerd__Events__TaskOOM ev = CONTAINERD__EVENTS__TASK_OOM__INIT;
  cshim_error_t err = NULL;
  int ret;

  ev.container_id = (char *)cid;
  ret = cshim_publish(f->pub, CSHIM_TOPIC_TASK_OOM, &ev.base, &err);
  cshim_error_release(&err);
  return ret;
}

static bool
enough_ok(void *data)
{
  fixture_t *f = data;
  return f->srv.n_ok >= f->want;
}

static void
wait_ok(fixture_t *f, size_t n)
{
  f->want = n;
  if (!mock_host_run_until(&f->host, enough_ok, f, 5000)) {
    mock_host_dump_lines(&f->host);
    fail_msg("only %zu of %zu events delivered", f->srv.n_ok, n);
  }
}

static void
assert_ok_topics(fixture_t *f, const char *const *topics, size_t n)
{
  assert_int_equal(f->srv.n_ok, n);
  for (size_t i = 0; i < n; i++)
    assert_string_equal(mock_events_server_ok_envelope(&f->srv, i)->topic, topics[i]);
}

static cshim_publisher_stats_t
stats(fixture_t *f)
{
  cshim_publisher_stats_t st = {.struct_size = sizeof st};

  assert_non_null(f->pub->get_stats);
  f->pub->get_stats(f->pub, &st);
  return st;
}

/* ---- tests ---- */

static void
test_publisher_descriptor_requires_internal(void **state)
{
  const cshim_plugin_t *desc = cshim_plugin_entry();

  assert_int_equal(desc->abi_version, CSHIM_PLUGIN_ABI_VERSION);
  assert_string_equal(desc->type, CSHIM_TYPE_EVENT);
  assert_string_equal(desc->id, "publisher");
  assert_non_null(desc->requires);
  assert_string_equal(desc->requires[0], CSHIM_TYPE_INTERNAL);
  assert_null(desc->requires[1]);
}

static void
test_publisher_events_arrive_in_order_with_envelope_fields(void **state)
{
  fixture_t *f = *state;
  static const char *const topics[] = {"/tasks/create", "/tasks/start", "/tasks/exit",
                                       "/tasks/delete"};
  static const char *const types[] = {"containerd.events.TaskCreate", "containerd.events.TaskStart",
                                      "containerd.events.TaskExit", "containerd.events.TaskDelete"};
  const Containerd__Services__Events__Ttrpc__V1__Envelope *env;
  Containerd__Events__TaskExit *exit_ev;
  cshim_publisher_stats_t st = {.struct_size = sizeof st};
  time_t now = time(NULL);

  mock_events_server_start(&f->srv);
  start(f);
  assert_int_equal(pub_create(f, "c1"), 0);
  assert_int_equal(pub_start(f, "c1"), 0);
  assert_int_equal(pub_exit(f, "c1"), 0);
  assert_int_equal(pub_delete(f, "c1"), 0);
  wait_ok(f, 4);

  assert_ok_topics(f, topics, 4);
  assert_int_equal(f->srv.n_received, 4);
  assert_int_equal(f->srv.n_connections, 1);
  for (size_t i = 0; i < 4; i++) {
    env = mock_events_server_ok_envelope(&f->srv, i);
    assert_string_equal(env->namespace_, "default");
    assert_non_null(env->timestamp);
    assert_true(env->timestamp->seconds >= now - 5 && env->timestamp->seconds <= now + 5);
    assert_non_null(env->event);
    assert_string_equal(env->event->type_url, types[i]);
    assert_string_equal(f->srv.received[i].namespace_md, "default");
    assert_int_equal(f->srv.received[i].timeout_nano, 300ll * 1000000ll);
    assert_int_equal(f->srv.received[i].stream_id, 2 * i + 1);
  }
  env = mock_events_server_ok_envelope(&f->srv, 2);
  exit_ev =
      containerd__events__task_exit__unpack(NULL, env->event->value.len, env->event->value.data);
  assert_non_null(exit_ev);
  assert_string_equal(exit_ev->container_id, "c1");
  assert_string_equal(exit_ev->id, "c1");
  assert_int_equal(exit_ev->pid, 42);
  assert_int_equal(exit_ev->exit_status, 137);
  assert_int_equal(exit_ev->exited_at->seconds, 1700000000);
  containerd__events__task_exit__free_unpacked(exit_ev, NULL);

  st = stats(f);
  assert_int_equal(st.accepted, 4);
  assert_int_equal(st.published, 4);
  assert_int_equal(st.retried, 0);
  assert_int_equal(st.dropped, 0);
  assert_int_equal(st.pending, 0);
}

static void
test_publisher_sends_one_forward_at_a_time_and_retries_after_deadline(void **state)
{
  fixture_t *f = *state;
  static const char *const topics[] = {"/tasks/create", "/tasks/start", "/tasks/exit"};

  mock_events_server_start(&f->srv);
  f->srv.hold = 1;
  start(f);
  assert_int_equal(pub_create(f, "c1"), 0);
  assert_int_equal(pub_start(f, "c1"), 0);
  assert_int_equal(pub_exit(f, "c1"), 0);
  mock_host_run_for(&f->host, 100);
  assert_int_equal(f->srv.n_received, 1); /* the others wait behind the unanswered one */

  /* The held Forward hits its 300 ms deadline and is sent again, still first. */
  wait_ok(f, 3);
  assert_ok_topics(f, topics, 3);
  assert_int_equal(f->srv.n_received, 4);
  assert_string_equal(f->srv.received[1].req->envelope->topic, "/tasks/create");
  assert_int_equal(stats(f).retried, 1);
  assert_int_equal(
      mock_host_count_lines(&f->host, CSHIM_LOG_WARN, "/tasks/create", "deadline", NULL), 1);
}

static void
test_publisher_delivers_in_order_once_containerd_comes_up(void **state)
{
  fixture_t *f = *state;
  static const char *const topics[] = {"/tasks/create", "/tasks/start", "/tasks/exit",
                                       "/tasks/delete"};

  start(f);
  assert_int_equal(pub_create(f, "c1"), 0);
  assert_int_equal(pub_start(f, "c1"), 0);
  assert_int_equal(pub_exit(f, "c1"), 0);
  mock_host_run_for(&f->host, 60);
  assert_int_equal(f->srv.n_received, 0);
  assert_true(stats(f).retried >= 1);
  assert_int_equal(stats(f).pending, 3);
  assert_true(mock_host_count_lines(&f->host, CSHIM_LOG_WARN, "/tasks/create", "c1", "retrying",
                                    f->srv.path, NULL) >= 1);

  mock_events_server_start(&f->srv);
  assert_int_equal(pub_delete(f, "c1"), 0);
  wait_ok(f, 4);
  assert_ok_topics(f, topics, 4);
  assert_int_equal(stats(f).dropped, 0);
}

static void
test_publisher_retries_forwards_containerd_rejects(void **state)
{
  fixture_t *f = *state;
  static const char *const topics[] = {"/tasks/create", "/tasks/start"};

  mock_events_server_start(&f->srv);
  f->srv.fail_next = 2;
  f->srv.fail_code = CSHIM_GRPC_INTERNAL;
  start(f);
  assert_int_equal(pub_create(f, "c1"), 0);
  assert_int_equal(pub_start(f, "c1"), 0);
  wait_ok(f, 2);
  assert_ok_topics(f, topics, 2);
  assert_int_equal(f->srv.n_received, 4);
  /* The failed item stayed at the head: nothing overtook it. */
  for (size_t i = 0; i < 3; i++)
    assert_string_equal(f->srv.received[i].req->envelope->topic, "/tasks/create");
  assert_int_equal(stats(f).retried, 2);
  assert_int_equal(f->srv.n_connections, 1); /* an error status does not drop the connection */
  assert_int_equal(mock_host_count_lines(&f->host, CSHIM_LOG_WARN, "mock failure", NULL), 2);
}

static void
test_publisher_full_queue_is_refused_and_counted(void **state)
{
  fixture_t *f = *state;
  static const char *const topics[] = {"/tasks/create", "/tasks/start", "/tasks/exit"};
  Containerd__Events__TaskOOM ev = CONTAINERD__EVENTS__TASK_OOM__INIT;
  cshim_error_t err = NULL;
  cshim_publisher_stats_t st = {.struct_size = sizeof st};

  mock_host_set_config(&f->host, "queue_size", "2");
  start(f);
  assert_int_equal(pub_create(f, "c1"), 0);
  assert_int_equal(pub_start(f, "c1"), 0);
  ev.container_id = (char *)"c1";
  assert_int_equal(cshim_publish(f->pub, CSHIM_TOPIC_TASK_OOM, &ev.base, &err), -ENOSPC);
  assert_non_null(err);
  assert_string_equal(err->msg, "publish /tasks/oom for container c1: event queue full (2 events)");
  cshim_error_release(&err);
  /* Reported once, by the error the caller gets: the publisher does not log it as well. */
  assert_int_equal(mock_host_count_lines(&f->host, CSHIM_LOG_ERROR, "/tasks/oom", NULL), 0);

  /* A TaskExit is never refused: it goes past the bound, loudly. */
  assert_int_equal(pub_exit(f, "c1"), 0);
  assert_int_equal(mock_host_count_lines(&f->host, CSHIM_LOG_ERROR, "event queue full",
                                         "/tasks/exit", "c1", "past the bound", NULL),
                   1);
  st = stats(f);
  assert_int_equal(st.queue_full, 2);
  assert_int_equal(st.dropped, 1);
  assert_int_equal(st.accepted, 3);
  assert_int_equal(st.pending, 3);

  mock_events_server_start(&f->srv);
  wait_ok(f, 3);
  assert_ok_topics(f, topics, 3);
}

static void
test_publisher_drops_an_event_after_max_retries(void **state)
{
  fixture_t *f = *state;
  static const char *const topics[] = {"/tasks/start"};
  cshim_publisher_stats_t st = {.struct_size = sizeof st};

  mock_host_set_config(&f->host, "max_retries", "2");
  mock_events_server_start(&f->srv);
  f->srv.fail_next = 3;
  f->srv.fail_code = CSHIM_GRPC_INTERNAL;
  start(f);
  assert_int_equal(pub_oom(f, "c9"), 0);
  assert_int_equal(pub_start(f, "c9"), 0);
  wait_ok(f, 1);
  assert_ok_topics(f, topics, 1);
  assert_int_equal(f->srv.n_received, 4); /* 1 + 2 retries of the OOM, then the start */
  assert_int_equal(mock_host_count_lines(&f->host, CSHIM_LOG_ERROR, "dropping event", "/tasks/oom",
                                         "c9", "3 failed attempts", NULL),
                   1);
  st = stats(f);
  assert_int_equal(st.dropped, 1);
  assert_int_equal(st.retried, 2);
  assert_int_equal(st.published, 1);
}

static void
test_publisher_never_drops_task_exit(void **state)
{
  fixture_t *f = *state;
  static const char *const topics[] = {"/tasks/exit", "/tasks/delete"};

  mock_host_set_config(&f->host, "max_retries", "1");
  mock_events_server_start(&f->srv);
  f->srv.fail_next = 6;
  f->srv.fail_code = CSHIM_GRPC_INTERNAL;
  start(f);
  assert_int_equal(pub_exit(f, "c1"), 0);
  assert_int_equal(pub_delete(f, "c1"), 0);
  wait_ok(f, 2);
  assert_ok_topics(f, topics, 2);
  assert_int_equal(f->srv.n_received, 8);
  /* Each failure of a TaskExit is an error, and none was given up. */
  assert_int_equal(mock_host_count_lines(&f->host, CSHIM_LOG_ERROR, "forwarding /tasks/exit", "c1",
                                         "failed", NULL),
                   6);
  assert_int_equal(mock_host_count_lines(&f->host, CSHIM_LOG_ERROR, "dropping", NULL), 0);
  assert_int_equal(stats(f).dropped, 0);
}

static void
test_publisher_redials_at_once_when_a_working_connection_is_lost(void **state)
{
  fixture_t *f = *state;
  static const char *const topics[] = {"/tasks/create", "/tasks/start"};

  mock_events_server_start(&f->srv);
  start(f);
  assert_int_equal(pub_create(f, "c1"), 0);
  wait_ok(f, 1);
  f->srv.close_next = 1;
  assert_int_equal(pub_start(f, "c1"), 0);
  wait_ok(f, 2);
  assert_ok_topics(f, topics, 2);
  assert_int_equal(f->srv.n_connections, 2);
  assert_int_equal(f->srv.n_received, 3);
  assert_int_equal(stats(f).retried, 0);
  assert_int_equal(mock_host_count_lines(&f->host, CSHIM_LOG_INFO, "redialing", NULL), 1);
}

static void
test_publisher_survives_containerd_restart(void **state)
{
  fixture_t *f = *state;
  static const char *const topics[] = {"/tasks/create", "/tasks/start", "/tasks/exit"};

  mock_events_server_start(&f->srv);
  start(f);
  assert_int_equal(pub_create(f, "c1"), 0);
  wait_ok(f, 1);
  mock_events_server_stop(&f->srv);
  mock_host_run_for(&f->host, 10);
  assert_int_equal(pub_start(f, "c1"), 0);
  assert_int_equal(pub_exit(f, "c1"), 0);
  mock_host_run_for(&f->host, 50);
  assert_int_equal(f->srv.n_ok, 1);
  mock_events_server_start(&f->srv);
  wait_ok(f, 3);
  assert_ok_topics(f, topics, 3);
}

static bool
flush_completed(void *data)
{
  fixture_t *f = data;
  return f->host.shutdown.n == 1 && f->host.shutdown.dones[0].completed;
}

static void
test_publisher_flushes_the_queue_at_shutdown(void **state)
{
  fixture_t *f = *state;

  start(f);
  assert_int_equal(f->host.shutdown.n, 1); /* registered its flush at init */
  assert_int_equal(pub_start(f, "c1"), 0);
  assert_int_equal(pub_exit(f, "c1"), 0);
  mock_host_run_for(&f->host, 20);
  mock_shutdown_trigger(&f->host.shutdown);
  assert_false(f->host.shutdown.dones[0].completed);
  assert_int_equal(mock_host_count_lines(&f->host, CSHIM_LOG_INFO, "flushing 2", NULL), 1);

  mock_events_server_start(&f->srv);
  assert_true(mock_host_run_until(&f->host, flush_completed, f, 5000));
  assert_int_equal(f->srv.n_ok, 2);
  assert_int_equal(f->host.shutdown.dones[0].status, 0);
  assert_int_equal(f->host.shutdown.dones[0].completions, 1);
}

static void
test_publisher_flush_of_an_empty_queue_completes_at_once(void **state)
{
  fixture_t *f = *state;

  start(f);
  mock_shutdown_trigger(&f->host.shutdown);
  assert_true(f->host.shutdown.dones[0].completed);
  assert_int_equal(f->host.shutdown.dones[0].status, 0);
}

static void
test_publisher_close_reports_undelivered_events(void **state)
{
  fixture_t *f = *state;

  start(f);
  assert_int_equal(pub_exit(f, "c7"), 0);
  mock_shutdown_trigger(&f->host.shutdown);
  mock_host_run_for(&f->host, 20);
  cshim_plugin_entry()->close(f->instance);
  f->instance = NULL;
  assert_true(f->host.shutdown.dones[0].completed);
  assert_int_equal(f->host.shutdown.dones[0].status, -ECANCELED);
  assert_int_equal(mock_host_count_lines(&f->host, CSHIM_LOG_ERROR, "/tasks/exit", "c7",
                                         "never delivered", NULL),
                   1);
}

static void
test_publisher_idle_does_not_keep_the_loop_alive(void **state)
{
  fixture_t *f = *state;

  mock_events_server_start(&f->srv);
  start(f);
  assert_int_equal(pub_oom(f, "c1"), 0);
  /* Pending work keeps the loop running; once delivered nothing does. */
  uv_run(&f->host.loop, UV_RUN_DEFAULT);
  assert_int_equal(f->srv.n_ok, 1);
}

static void
test_publisher_needs_a_namespace(void **state)
{
  fixture_t *f = *state;
  cshim_error_t err = NULL;

  mock_host_set_property(&f->host, CSHIM_PROP_NAMESPACE, NULL);
  f->host.n_props = 0;
  mock_host_set_property(&f->host, CSHIM_PROP_TTRPC_ADDRESS, f->srv.path);
  assert_int_equal(init_plugin(f, &err), -EINVAL);
  assert_non_null(strstr(err->msg, CSHIM_PROP_NAMESPACE));
  cshim_error_release(&err);
  assert_null(f->instance);
}

static void
test_publisher_rejects_unknown_and_bad_config(void **state)
{
  fixture_t *f = *state;
  cshim_error_t err = NULL;

  mock_host_set_config(&f->host, "queue_sise", "10");
  assert_int_equal(init_plugin(f, &err), -EINVAL);
  assert_non_null(strstr(err->msg, "unknown key `queue_sise`"));
  cshim_error_release(&err);

  f->host.config_keys[f->host.config.n - 1] = "queue_size";
  f->host.config_items[f->host.config.n - 1].value = "0";
  assert_int_equal(init_plugin(f, &err), -EINVAL);
  assert_non_null(strstr(err->msg, "queue_size"));
  cshim_error_release(&err);

  f->host.config_keys[f->host.config.n - 1] = "max_retries"; /* a valid key: must not fail */
  f->host.config_items[f->host.config.n - 1].value = "3";
  f->host.config_items[0].value = "1h"; /* retry_base above retry_max (40ms) */
  assert_int_equal(init_plugin(f, &err), -EINVAL);
  assert_non_null(strstr(err->msg, "retry_max"));
  cshim_error_release(&err);
  assert_null(f->instance);
}

static void
test_publisher_without_address_refuses_events_loudly(void **state)
{
  fixture_t *f = *state;
  Containerd__Events__TaskOOM ev = CONTAINERD__EVENTS__TASK_OOM__INIT;
  cshim_error_t err = NULL;

  f->host.n_props = 0;
  mock_host_set_property(&f->host, CSHIM_PROP_NAMESPACE, "default");
  start(f);
  assert_int_equal(
      mock_host_count_lines(&f->host, CSHIM_LOG_WARN, "no containerd ttrpc address", NULL), 1);
  ev.container_id = (char *)"c1";
  assert_int_equal(cshim_publish(f->pub, CSHIM_TOPIC_TASK_OOM, &ev.base, &err), -ENOTCONN);
  assert_string_equal(err->msg, "publish /tasks/oom for container c1: no containerd ttrpc address");
  cshim_error_release(&err);
  /* Reported once, by the error: not logged by the publisher as well. */
  assert_int_equal(mock_host_count_lines(&f->host, CSHIM_LOG_ERROR, "/tasks/oom", NULL), 0);
  assert_int_equal(stats(f).dropped, 1);
}

static void
test_publisher_rejects_bad_topics(void **state)
{
  fixture_t *f = *state;
  Containerd__Events__TaskOOM ev = CONTAINERD__EVENTS__TASK_OOM__INIT;
  cshim_error_t err = NULL;

  start(f);
  assert_int_equal(cshim_publish(f->pub, "tasks/oom", &ev.base, &err), -EINVAL);
  cshim_error_release(&err);
  assert_int_equal(cshim_publish(f->pub, CSHIM_TOPIC_TASK_OOM, NULL, &err), -EINVAL);
  cshim_error_release(&err);
  assert_int_equal(stats(f).accepted, 0);
}

/* ---- live upgrade ---- */

static bool
publisher_quiet(void *data)
{
  fixture_t *f = data;
  return cshim_plugin_entry()->upgrade_busy(f->instance) == NULL;
}

/* The queue crosses an upgrade: a second instance restored from the first one's state sends
   what the first could not, in order; the counters carry over. */
static void
test_publisher_hands_its_queue_to_the_new_image(void **state)
{
  fixture_t *f = *state;
  const cshim_plugin_t *desc = cshim_plugin_entry();
  static const char *const topics[] = {CSHIM_TOPIC_TASK_CREATE, CSHIM_TOPIC_TASK_START,
                                       CSHIM_TOPIC_TASK_EXIT};
  cshim_state_writer_t w;
  cshim_state_reader_t r;
  cshim_error_t err = NULL;
  cshim_autofree uint8_t *doc = NULL;
  size_t len;

  assert_true(cshim_plugin_upgrade_hooks(desc));
  start(f);
  /* containerd is down: everything stays queued */
  assert_int_equal(pub_create(f, "c1"), 0);
  assert_int_equal(pub_start(f, "c1"), 0);
  assert_int_equal(pub_exit(f, "c1"), 0);
  assert_true(mock_host_run_until(&f->host, publisher_quiet, f, 5000));
  assert_int_equal(stats(f).pending, 3);

  cshim_state_writer_init(&w);
  assert_int_equal(desc->upgrade_save(f->instance, &w, &err), 0);
  assert_int_equal(cshim_state_writer_finish(&w, &doc, &len, &err), 0);
  cshim_state_writer_fini(&w);
  desc->close(f->instance);
  f->instance = NULL;
  mock_host_run_for(&f->host, 10);

  start(f);
  assert_int_equal(cshim_state_open(doc, len, CSHIM_STATE_FORMAT_MIN, CSHIM_STATE_FORMAT_VERSION,
                                    NULL, &r, &err),
                   0);
  assert_int_equal(desc->upgrade_restore(f->instance, &r, &err), 0);
  assert_null(err);
  assert_int_equal(stats(f).accepted, 3);
  mock_events_server_start(&f->srv);
  wait_ok(f, 3);
  assert_ok_topics(f, topics, 3);
  assert_int_equal(stats(f).pending, 0);
}

/* No state (the old image had no publisher): a fresh start. */
static void
test_publisher_restore_without_state_starts_empty(void **state)
{
  fixture_t *f = *state;
  cshim_error_t err = NULL;

  start(f);
  assert_int_equal(cshim_plugin_entry()->upgrade_restore(f->instance, NULL, &err), 0);
  assert_int_equal(stats(f).pending, 0);
}

#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)

int
main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_publisher_descriptor_requires_internal),
      T(test_publisher_events_arrive_in_order_with_envelope_fields),
      T(test_publisher_sends_one_forward_at_a_time_and_retries_after_deadline),
      T(test_publisher_delivers_in_order_once_containerd_comes_up),
      T(test_publisher_retries_forwards_containerd_rejects),
      T(test_publisher_full_queue_is_refused_and_counted),
      T(test_publisher_drops_an_event_after_max_retries),
      T(test_publisher_never_drops_task_exit),
      T(test_publisher_redials_at_once_when_a_working_connection_is_lost),
      T(test_publisher_survives_containerd_restart),
      T(test_publisher_flushes_the_queue_at_shutdown),
      T(test_publisher_flush_of_an_empty_queue_completes_at_once),
      T(test_publisher_close_reports_undelivered_events),
      T(test_publisher_idle_does_not_keep_the_loop_alive),
      T(test_publisher_needs_a_namespace),
      T(test_publisher_rejects_unknown_and_bad_config),
      T(test_publisher_without_address_refuses_events_loudly),
      T(test_publisher_rejects_bad_topics),
      T(test_publisher_hands_its_queue_to_the_new_image),
      T(test_publisher_restore_without_state_starts_empty),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
