// SPDX-License-Identifier: Apache-2.0
// Tests of plugins/task/debug_state.c: the process table as JSON, and its registration as the
// "tasks" state source with the host.
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include <cshim/util.h>

#include "debug_state.h"
#include "model.h"
#include "process.h"
#include "introspect.h"

/* Last: cmocka defines a `fail` macro that would clash with cshim_ttrpc_call_ops_t.fail. */
#include <cmocka.h>

static task_container_t *
add_container(task_service_t *svc, const char *id)
{
  task_container_t *c = cshim_xmalloc0(sizeof(*c));

  c->svc = svc;
  c->id = cshim_xstrdup(id);
  c->bundle = cshim_xstrdup("/run/bundle");
  c->opts.binary_name = cshim_xstrdup("runc");
  cshim_list_push_front(&svc->containers, &c->link);
  return c;
}

static void
free_containers(task_service_t *svc)
{
  cshim_list_t *cl, *pl;

  while ((cl = cshim_list_first(&svc->containers)) != NULL) {
    task_container_t *c = cshim_list_entry(cl, task_container_t, link);
    cshim_list_remove(cl);
    while ((pl = cshim_list_first(&c->execs)) != NULL) {
      cshim_list_remove(pl);
      task_process_free(cshim_list_entry(pl, task_process_t, link));
    }
    task_process_free(c->init);
    free(c->id);
    free(c->bundle);
    free(c->opts.binary_name);
    free(c);
  }
}

static void
test_debug_state_lists_init_and_exec_processes(void **state)
{
  task_service_t svc;
  task_container_t *c1, *c2;
  task_process_t *e;
  json_t *j, *p;
  char *text;
  (void)state;

  memset(&svc, 0, sizeof(svc));
  {
    static char a0[] = "--network=none", a1[] = "--ignore-cgroups";
    static char *args[] = {a0, a1, NULL};
    svc.cfg.runtime_args = args;
    svc.cfg.n_runtime_args = 2;
  }
  text = task_debug_state_json(&svc);
  assert_string_equal(text, "[]");
  free(text);

  c1 = add_container(&svc, "c1");
  c1->init = task_process_new(c1, NULL, "", "/tmp/out", "/tmp/err", false);
  c1->init->pid = 100;
  c1->init->state = TASK_PROC_RUNNING;
  e = task_process_new(c1, "e1", "", "file:///tmp/log", "", true);
  e->pid = 101;
  e->exited = true;
  e->exit_status = 3;
  e->exited_at.tv_sec = 1700000000;
  cshim_list_push_back(&c1->execs, &e->link);
  c2 = add_container(&svc, "c2");
  c2->init = task_process_new(c2, NULL, "", "", "", false);
  c2->init->pid = 200;
  /* Still being created: not shown. */
  add_container(&svc, "c3")->creating = true;

  text = task_debug_state_json(&svc);
  j = json_loads(text, 0, NULL);
  assert_non_null(j);
  assert_int_equal(json_array_size(j), 3);

  /* The table lists newest containers first, as the service keeps them. */
  p = json_array_get(j, 0);
  assert_string_equal(json_string_value(json_object_get(p, "container_id")), "c2");
  assert_string_equal(json_string_value(json_object_get(p, "status")), "created");
  assert_string_equal(json_string_value(json_object_get(p, "io")), "null");
  assert_true(json_is_null(json_object_get(p, "exit_status")));
  assert_string_equal(json_string_value(json_object_get(p, "runtime")), "runc");
  assert_int_equal(json_array_size(json_object_get(p, "runtime_args")), 2);
  assert_string_equal(json_string_value(json_array_get(json_object_get(p, "runtime_args"), 0)),
                      "--network=none");
  assert_string_equal(json_string_value(json_array_get(json_object_get(p, "runtime_args"), 1)),
                      "--ignore-cgroups");

  p = json_array_get(j, 1);
  assert_string_equal(json_string_value(json_object_get(p, "container_id")), "c1");
  assert_string_equal(json_string_value(json_object_get(p, "exec_id")), "");
  assert_int_equal(json_integer_value(json_object_get(p, "pid")), 100);
  assert_string_equal(json_string_value(json_object_get(p, "status")), "running");
  assert_string_equal(json_string_value(json_object_get(p, "io")), "fifo");
  assert_string_equal(json_string_value(json_object_get(p, "stdout")), "/tmp/out");
  assert_false(json_is_true(json_object_get(p, "terminal")));

  p = json_array_get(j, 2);
  assert_string_equal(json_string_value(json_object_get(p, "exec_id")), "e1");
  assert_string_equal(json_string_value(json_object_get(p, "status")), "stopped");
  assert_string_equal(json_string_value(json_object_get(p, "io")), "file");
  assert_true(json_is_true(json_object_get(p, "terminal")));
  assert_int_equal(json_integer_value(json_object_get(p, "exit_status")), 3);
  assert_int_equal(json_integer_value(json_object_get(p, "exited_at")), 1700000000);
  assert_null(json_object_get(p, "runtime"));
  assert_null(json_object_get(p, "runtime_args"));

  json_decref(j);
  free(text);

  c1->pausing = true;
  text = task_debug_state_json(&svc);
  j = json_loads(text, 0, NULL);
  assert_string_equal(json_string_value(json_object_get(json_array_get(j, 1), "status")),
                      "pausing");
  assert_string_equal(json_string_value(json_object_get(json_array_get(j, 2), "status")),
                      "stopped");
  json_decref(j);
  free(text);
  free_containers(&svc);
}

static void
test_debug_state_registers_once_with_the_host(void **state)
{
  host_introspect_t *intro = host_introspect_new(uv_default_loop(), "1");
  cshim_host_t *host = host_introspect_api(intro);
  task_service_t svc, other;
  const char *name = NULL;
  char *text;
  (void)state;

  memset(&svc, 0, sizeof(svc));
  memset(&other, 0, sizeof(other));
  task_debug_state_register(&svc, NULL);
  assert_int_equal(host->state_source_count(host), 0);

  task_debug_state_register(&svc, host);
  assert_int_equal(host->state_source_count(host), 1);
  text = host->state_source_dump(host, 0, &name);
  assert_string_equal(name, TASK_DEBUG_STATE_NAME);
  assert_string_equal(text, "[]");
  free(text);

  /* A second instance is not registered; removing it changes nothing. */
  task_debug_state_register(&other, host);
  assert_int_equal(host->state_source_count(host), 1);
  task_debug_state_unregister(&other);
  assert_int_equal(host->state_source_count(host), 1);

  task_debug_state_unregister(&svc);
  assert_int_equal(host->state_source_count(host), 0);
  task_debug_state_unregister(&svc);
  host_introspect_free(intro);
}

int
main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_debug_state_lists_init_and_exec_processes),
      cmocka_unit_test(test_debug_state_registers_once_with_the_host),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
