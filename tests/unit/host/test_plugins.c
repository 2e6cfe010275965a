// SPDX-License-Identifier: Apache-2.0
// Tests of host/plugins.c: order, init contexts, lookups, skip/fail/close semantics, registration.
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Before cmocka.h: its fail() macro would rewrite the ttrpc call ops' fail member. */
#include <cshim/util.h>

#include "plugins.h"

#include <cmocka.h>

#ifndef CSHIM_FIXTURE_PLUGIN_DIR
#error CSHIM_FIXTURE_PLUGIN_DIR must name the directory of the fixture modules
#endif

#define SHUTDOWN "io.containerd.internal.v1.shutdown"
#define PUBLISHER "io.containerd.event.v1.publisher"
#define TASK "io.containerd.ttrpc.v1.task"
#define DEBUG "io.containerd.http.v1.debug"
#define PROBER "probe.prober"

/* ---- what the plugins log ---- */

#define MAX_LINES 512

struct journal
{
  char *lines[MAX_LINES];
  int levels[MAX_LINES];
  size_t n;
};

static struct journal journal;

static void
journal_write_cb(void *data, int level, const char *line, size_t len)
{
  struct journal *j = data;

  assert_true(j->n < MAX_LINES);
  j->levels[j->n] = level;
  j->lines[j->n++] = cshim_xstrndup(line, len);
}

static const cshim_logger_t journal_log = {
    .struct_size = sizeof(cshim_logger_t),
    .write = journal_write_cb,
    .data = &journal,
    .level = CSHIM_LOG_TRACE,
    .fields = "id=t1 namespace=ns",
};

static void
journal_reset(void)
{
  for (size_t i = 0; i < journal.n; i++)
    free(journal.lines[i]);
  journal.n = 0;
}

/* The messages fixtures logged ("fixture: ..."), in order, without the prefix. */
static size_t
fixture_events(char **out, size_t max)
{
  static const char marker[] = "msg=\"fixture: ";
  size_t n = 0;

  for (size_t i = 0; i < journal.n && n < max; i++) {
    const char *start = strstr(journal.lines[i], marker);
    const char *end;

    if (start == NULL)
      continue;
    start += strlen(marker);
    for (end = start; *end && !(*end == '"' && end[-1] != '\\'); end++)
      ;
    out[n++] = cshim_xstrndup(start, (size_t)(end - start));
  }
  return n;
}

static void
assert_events(const char *const *expected, size_t n_expected)
{
  char *events[MAX_LINES];
  size_t n = fixture_events(events, MAX_LINES);

  for (size_t i = 0; i < n || i < n_expected; i++) {
    if (i >= n)
      fail_msg("missing event %zu: %s", i, expected[i]);
    if (i >= n_expected)
      fail_msg("unexpected event %zu: %s", i, events[i]);
    if (strcmp(events[i], expected[i]) != 0)
      fail_msg("event %zu: expected `%s`, got `%s`", i, expected[i], events[i]);
  }
  for (size_t i = 0; i < n; i++)
    free(events[i]);
}

/* Index of the first line containing every one of the NULL-terminated needles, or -1. */
static long
journal_find(const char *needle, ...)
{
  for (size_t i = 0; i < journal.n; i++) {
    bool all = true;
    va_list ap;

    va_start(ap, needle);
    for (const char *s = needle; s; s = va_arg(ap, const char *))
      if (strstr(journal.lines[i], s) == NULL)
        all = false;
    va_end(ap);
    if (all)
      return (long)i;
  }
  return -1;
}

/* ---- a ttrpc server that records what plugins register ---- */

struct fake_server
{
  cshim_ttrpc_server_t base;
  char names[16][128];
  size_t n_services;
  size_t n_interceptors;
  bool stats_called;
};

static int
fake_register_service_cb(cshim_ttrpc_server_t *server, const cshim_ttrpc_service_t *service,
                         cshim_error_t *err)
{
  struct fake_server *fake = (struct fake_server *)server;

  for (size_t i = 0; i < fake->n_services; i++)
    if (strcmp(fake->names[i], service->name) == 0)
      return cshim_error_make(err, EEXIST, "service `%s` already registered", service->name);
  assert_true(fake->n_services < 16);
  snprintf(fake->names[fake->n_services++], sizeof fake->names[0], "%s", service->name);
  return 0;
}

static int
fake_add_interceptor_cb(cshim_ttrpc_server_t *server, const cshim_ttrpc_interceptor_t *interceptor,
                        cshim_error_t *err)
{
  (void)interceptor;
  (void)err;
  ((struct fake_server *)server)->n_interceptors++;
  return 0;
}

static void
fake_get_stats_cb(cshim_ttrpc_server_t *server, cshim_ttrpc_stats_t *out)
{
  ((struct fake_server *)server)->stats_called = true;
  memset(out, 0, sizeof(*out));
}

static const cshim_ttrpc_server_ops_t fake_ops = {
    .struct_size = sizeof(cshim_ttrpc_server_ops_t),
    .register_service = fake_register_service_cb,
    .add_interceptor = fake_add_interceptor_cb,
    .get_stats = fake_get_stats_cb,
};

/* ---- helpers ---- */

struct paths
{
  char *p[32];
  size_t n;
};

static void
paths_set(struct paths *paths, const char *const *files, size_t n)
{
  assert_true(n <= 32);
  paths->n = n;
  for (size_t i = 0; i < n; i++)
    cshim_xasprintf(&paths->p[i], "%s/%s", CSHIM_FIXTURE_PLUGIN_DIR, files[i]);
}

static void
paths_free(struct paths *paths)
{
  for (size_t i = 0; i < paths->n; i++)
    free(paths->p[i]);
  paths->n = 0;
}

static host_plugins_t *
load_ok(const char *const *files, size_t n, const host_plugins_options_t *opts)
{
  struct paths paths;
  host_plugins_t *set = NULL;
  cshim_error_t err = NULL;
  int ret;

  paths_set(&paths, files, n);
  ret = host_plugins_load((const char *const *)paths.p, paths.n, opts, &set, &err);
  paths_free(&paths);
  if (ret < 0)
    fail_msg("load failed: %s", err->msg);
  assert_non_null(set);
  return set;
}

static void
assert_load_fails(const char *const *files, size_t n, const host_plugins_options_t *opts,
                  int expected_errno, const char *expected_msg)
{
  struct paths paths;
  host_plugins_t *set = NULL;
  cshim_error_t err = NULL;
  int ret;

  paths_set(&paths, files, n);
  ret = host_plugins_load((const char *const *)paths.p, paths.n, opts, &set, &err);
  paths_free(&paths);
  assert_int_equal(ret, -expected_errno);
  assert_null(set);
  assert_non_null(err);
  assert_string_equal(err->msg, expected_msg);
  cshim_error_release(&err);
}

static const host_plugin_info_t *
info_of(const host_plugins_t *set, const char *uri)
{
  for (size_t i = 0; i < host_plugins_count(set); i++)
    if (strcmp(host_plugins_get(set, i)->uri, uri) == 0)
      return host_plugins_get(set, i);
  fail_msg("no plugin %s in the set", uri);
  return NULL;
}

static int
setup(void **state)
{
  (void)state;
  journal_reset();
  return 0;
}

static int
teardown(void **state)
{
  (void)state;
  journal_reset();
  return 0;
}

#define N(a) CSHIM_N_ELEMENTS(a)

/* ---- tests ---- */

/* The Go shim's own plugins, loaded in an unhelpful order: containerd's Graph puts shutdown,
   publisher and task first and the "*" plugin last. */
static void
test_plugins_init_register_close_in_graph_order(void **state)
{
  const char *const files[] = {"fx_task.so", "fx_debug.so", "fx_publisher.so", "fx_shutdown.so"};
  const char *const props[] = {"test.service." TASK, "containerd.task.v2.Task", NULL};
  const host_plugins_options_t opts = {.log = &journal_log, .properties = props};
  struct fake_server server = {.base.ops = &fake_ops};
  cshim_error_t err = NULL;
  host_plugins_t *set;
  (void)state;

  set = load_ok(files, N(files), &opts);
  assert_int_equal(host_plugins_count(set), 4);
  for (size_t i = 0; i < 4; i++)
    assert_int_equal(host_plugins_get(set, i)->state, HOST_PLUGIN_LOADED);
  assert_string_equal(host_plugins_get(set, 0)->uri, SHUTDOWN);
  assert_string_equal(host_plugins_get(set, 1)->uri, PUBLISHER);
  assert_string_equal(host_plugins_get(set, 2)->uri, TASK);
  assert_string_equal(host_plugins_get(set, 3)->uri, DEBUG);
  assert_null(host_plugins_get(set, 4));
  assert_null(host_plugins_find(set, "io.containerd.ttrpc.v1", "task"));

  assert_int_equal(host_plugins_init(set, &err), 0);
  assert_null(err);
  for (size_t i = 0; i < 4; i++)
    assert_int_equal(host_plugins_get(set, i)->state, HOST_PLUGIN_INITIALISED);
  assert_non_null(host_plugins_find(set, "io.containerd.ttrpc.v1", "task"));
  assert_null(host_plugins_find(set, "io.containerd.ttrpc.v1", "nope"));

  assert_int_equal(host_plugins_register(set, &server.base, &err), 0);
  assert_int_equal(server.n_services, 1);
  assert_string_equal(server.names[0], "containerd.task.v2.Task");
  assert_int_equal(info_of(set, TASK)->n_services, 1);
  assert_int_equal(info_of(set, DEBUG)->n_services, 0);

  host_plugins_close(set);
  for (size_t i = 0; i < 4; i++)
    assert_int_equal(host_plugins_get(set, i)->state, HOST_PLUGIN_CLOSED);
  assert_null(host_plugins_find(set, "io.containerd.ttrpc.v1", "task"));
  host_plugins_close(set); /* idempotent */

  {
    const char *const expected[] = {
        "init " SHUTDOWN,     "init " PUBLISHER,     "init " TASK,       "init " DEBUG,
        "register " SHUTDOWN, "register " PUBLISHER, "register " TASK,   "register " DEBUG,
        "close " DEBUG,       "close " TASK,         "close " PUBLISHER, "close " SHUTDOWN,
    };
    assert_events(expected, N(expected));
  }
  host_plugins_unload(set);
}

static void
test_plugins_log_lines_carry_plugin_uri(void **state)
{
  const char *const files[] = {"fx_shutdown.so"};
  const host_plugins_options_t opts = {.log = &journal_log};
  cshim_error_t err = NULL;
  host_plugins_t *set;
  (void)state;

  set = load_ok(files, N(files), &opts);
  assert_int_equal(host_plugins_init(set, &err), 0);
  /* The host's own fields (id, namespace) come first, as logrus sorts them. */
  assert_true(journal_find("level=info", "msg=\"fixture: init " SHUTDOWN "\"",
                           " id=t1 namespace=ns plugin=" SHUTDOWN "\n", NULL) >= 0);
  host_plugins_close(set);
  host_plugins_unload(set);
}

static void
test_plugins_skip_is_logged_invisible_and_never_closed(void **state)
{
  const char *const files[] = {"fx_shutdown.so", "fx_publisher.so", "fx_task.so"};
  const char *const props[] = {"test.mode." PUBLISHER, "skip", "test.probe." TASK,
                               "id:io.containerd.event.v1:publisher", NULL};
  const host_plugins_options_t opts = {.log = &journal_log, .properties = props};
  cshim_error_t err = NULL;
  host_plugins_t *set;
  long line;
  (void)state;

  set = load_ok(files, N(files), &opts);
  assert_int_equal(host_plugins_init(set, &err), 0);
  assert_int_equal(info_of(set, PUBLISHER)->state, HOST_PLUGIN_SKIPPED);
  assert_int_equal(info_of(set, TASK)->state, HOST_PLUGIN_INITIALISED);
  assert_null(host_plugins_find(set, "io.containerd.event.v1", "publisher"));
  line = journal_find("msg=\"skip loading plugin\"", "plugin=" PUBLISHER, NULL);
  assert_true(line >= 0);
  assert_int_equal(journal.levels[line], CSHIM_LOG_INFO);

  host_plugins_close(set);
  {
    const char *const expected[] = {
        "init " SHUTDOWN,
        "init " PUBLISHER,
        "init " TASK,
        TASK " probe id:io.containerd.event.v1:publisher = -2 plugin "
             "`io.containerd.event.v1.publisher` not found",
        "close " TASK,
        "close " SHUTDOWN,
    };
    assert_events(expected, N(expected));
  }
  host_plugins_unload(set);
}

static void
test_plugins_skip_reason_is_logged(void **state)
{
  const char *const files[] = {"fx_shutdown.so"};
  const char *const props[] = {"test.mode." SHUTDOWN, "skip-reason", NULL};
  const host_plugins_options_t opts = {.log = &journal_log, .properties = props};
  cshim_error_t err = NULL;
  host_plugins_t *set;
  (void)state;

  set = load_ok(files, N(files), &opts);
  assert_int_equal(host_plugins_init(set, &err), 0);
  assert_int_equal(info_of(set, SHUTDOWN)->state, HOST_PLUGIN_SKIPPED);
  assert_true(journal_find("msg=\"skip loading plugin: not for this configuration\"",
                           "plugin=" SHUTDOWN, NULL) >= 0);
  host_plugins_close(set);
  host_plugins_unload(set);
}

static void
test_plugins_failed_init_closes_started_plugins_in_reverse(void **state)
{
  const char *const files[] = {"fx_debug.so", "fx_task.so", "fx_publisher.so", "fx_shutdown.so"};
  const char *const props[] = {"test.mode." TASK, "fail", NULL};
  const host_plugins_options_t opts = {.log = &journal_log, .properties = props};
  cshim_error_t err = NULL;
  host_plugins_t *set;
  (void)state;

  set = load_ok(files, N(files), &opts);
  assert_int_equal(host_plugins_init(set, &err), -EIO);
  assert_string_equal(err->msg, "failed to load plugin `" TASK "`: fixture refuses to start");
  cshim_error_release(&err);

  assert_int_equal(info_of(set, SHUTDOWN)->state, HOST_PLUGIN_CLOSED);
  assert_int_equal(info_of(set, PUBLISHER)->state, HOST_PLUGIN_CLOSED);
  assert_int_equal(info_of(set, TASK)->state, HOST_PLUGIN_FAILED);
  assert_int_equal(info_of(set, DEBUG)->state, HOST_PLUGIN_LOADED);
  {
    const char *const expected[] = {
        "init " SHUTDOWN, "init " PUBLISHER, "init " TASK, "close " PUBLISHER, "close " SHUTDOWN,
    };
    assert_events(expected, N(expected));
  }

  /* Nothing left to close, and no second attempt. */
  host_plugins_close(set);
  assert_int_equal(host_plugins_init(set, &err), -EBUSY);
  assert_string_equal(err->msg, "plugins already initialised");
  cshim_error_release(&err);
  host_plugins_unload(set);
}

static void
test_plugins_failed_init_without_message_gets_one(void **state)
{
  const char *const files[] = {"fx_shutdown.so"};
  const char *const props[] = {"test.mode." SHUTDOWN, "fail-silent", NULL};
  const host_plugins_options_t opts = {.log = &journal_log, .properties = props};
  cshim_error_t err = NULL;
  host_plugins_t *set;
  (void)state;

  set = load_ok(files, N(files), &opts);
  assert_int_equal(host_plugins_init(set, &err), -EPROTO);
  assert_string_equal(err->msg,
                      "failed to load plugin `" SHUTDOWN "`: init failed: Protocol error");
  cshim_error_release(&err);
  host_plugins_unload(set);
}

/* containerd/plugin TestGetPlugins, minus its "type5" case (an init error other than skip
   aborts loading here, so such a plugin never sits in the set). Differences by design
   (plugin.h): a skipped plugin is simply not found by id, and a plugin may look up only the
   types it requires. */
static void
test_plugins_lookups_follow_get_plugins_semantics(void **state)
{
  const char *const files[] = {
      "fx_prober.so",    "fx_type1_id1.so", "fx_type1_id2.so", "fx_type2_id3.so",
      "fx_type3_id4.so", "fx_type4_id5.so", "fx_type4_id6.so",
  };
  const char *const props[] = {
      "test.mode.type1.id2",
      "skip",
      "test.mode.type2.id3",
      "skip",
      "test.probe." PROBER,
      "type:type1 type:type2 type:type3 type:type4 "
      "id:type1:id1 id:type1:id2 id:type2:id3 id:type3:id4 id:type4:id5 "
      "id:type4:id6 id:type1:nope type:type5 id:type5:id7",
      NULL,
  };
  const host_plugins_options_t opts = {.log = &journal_log, .properties = props};
  cshim_error_t err = NULL;
  host_plugins_t *set;
  (void)state;

  set = load_ok(files, N(files), &opts);
  assert_string_equal(host_plugins_get(set, 6)->uri, PROBER);
  assert_int_equal(host_plugins_init(set, &err), 0);
  {
    const char *const expected[] = {
        "init type1.id1",
        "init type1.id2",
        "init type2.id3",
        "init type3.id4",
        "init type4.id5",
        "init type4.id6",
        "init " PROBER,
        PROBER " probe type:type1 = type1.id1=type1.id1",
        PROBER " probe type:type2 = -2 no plugin of type `type2`",
        PROBER " probe type:type3 = type3.id4=type3.id4",
        PROBER " probe type:type4 = type4.id5=type4.id5,type4.id6=type4.id6",
        PROBER " probe id:type1:id1 = type1.id1",
        PROBER " probe id:type1:id2 = -2 plugin `type1.id2` not found",
        PROBER " probe id:type2:id3 = -2 plugin `type2.id3` not found",
        PROBER " probe id:type3:id4 = type3.id4",
        PROBER " probe id:type4:id5 = type4.id5",
        PROBER " probe id:type4:id6 = type4.id6",
        PROBER " probe id:type1:nope = -2 plugin `type1.nope` not found",
        PROBER " probe type:type5 = -1 plugin `" PROBER "` may not look up type `type5`: it is not "
               "in its requires",
        PROBER " probe id:type5:id7 = -1 plugin `" PROBER "` may not look up type `type5`: it is "
               "not in its requires",
    };
    assert_events(expected, N(expected));
  }
  host_plugins_close(set);
  host_plugins_unload(set);
}

static void
test_plugins_context_offers_properties_state_dir_and_config(void **state)
{
  const char *const files[] = {"fx_shutdown.so", "fx_publisher.so", "fx_task.so", "fx_debug.so"};
  const char *const props[] = {
      CSHIM_PROP_BUNDLE,
      "/run/containerd/bundle/ns/c1",
      CSHIM_PROP_ID,
      "c1",
      "test.probe." DEBUG,
      "prop:" CSHIM_PROP_STATE_DIR " prop:" CSHIM_PROP_ID " prop:nothing.here "
      "config:level config:missing id:io.containerd.ttrpc.v1:task "
      "type:io.containerd.internal.v1",
      "test.probe." TASK,
      "prop:" CSHIM_PROP_STATE_DIR " config:level "
      "id:io.containerd.event.v1:publisher id:io.containerd.http.v1:debug",
      NULL,
  };
  const cshim_config_node_t debug_values[] = {
      {.kind = CSHIM_CONFIG_SCALAR, .value = "3", .file = "cshim.yaml", .line = 3, .column = 12},
  };
  const char *const debug_keys[] = {"level"};
  const cshim_config_node_t sections[] = {
      {.kind = CSHIM_CONFIG_MAP,
       .n = 1,
       .keys = debug_keys,
       .items = debug_values,
       .file = "cshim.yaml",
       .line = 3,
       .column = 5},
  };
  const char *const section_keys[] = {DEBUG};
  const cshim_config_node_t plugins_map = {.kind = CSHIM_CONFIG_MAP,
                                           .n = 1,
                                           .keys = section_keys,
                                           .items = sections,
                                           .file = "cshim.yaml",
                                           .line = 2,
                                           .column = 3};
  uv_loop_t *loop = (uv_loop_t *)0x1000; /* handed through, never used */
  cshim_reaper_t *reaper = (cshim_reaper_t *)0x2000;
  const host_plugins_options_t opts = {.log = &journal_log,
                                       .properties = props,
                                       .plugins_map = &plugins_map,
                                       .loop = loop,
                                       .reaper = reaper};
  cshim_error_t err = NULL;
  host_plugins_t *set;
  (void)state;

  set = load_ok(files, N(files), &opts);
  assert_int_equal(host_plugins_init(set, &err), 0);
  {
    const char *const expected[] = {
        "init " SHUTDOWN,
        "init " PUBLISHER,
        "init " TASK,
        TASK " probe prop:" CSHIM_PROP_STATE_DIR " = /run/containerd/bundle/ns/c1/" TASK,
        TASK " probe config:level = (none)",
        TASK " probe id:io.containerd.event.v1:publisher = " PUBLISHER,
        TASK " probe id:io.containerd.http.v1:debug = -1 plugin `" TASK
             "` may not look up type `io.containerd.http.v1`: it is not in its requires",
        "init " DEBUG,
        DEBUG " probe prop:" CSHIM_PROP_STATE_DIR " = /run/containerd/bundle/ns/c1/" DEBUG,
        DEBUG " probe prop:" CSHIM_PROP_ID " = c1",
        DEBUG " probe prop:nothing.here = (null)",
        DEBUG " probe config:level = 3",
        DEBUG " probe config:missing = (none)",
        DEBUG " probe id:io.containerd.ttrpc.v1:task = " TASK,
        DEBUG
        " probe type:io.containerd.internal.v1 = io.containerd.internal.v1.shutdown=" SHUTDOWN,
    };
    assert_events(expected, N(expected));
  }
  host_plugins_close(set);
  host_plugins_unload(set);
}

/* Without a bundle the state dir is the bare uri, relative to the cwd (as in the Go shim). */
static void
test_plugins_state_dir_defaults_to_uri(void **state)
{
  const char *const files[] = {"fx_shutdown.so"};
  const char *const props[] = {"test.probe." SHUTDOWN, "prop:" CSHIM_PROP_STATE_DIR, NULL};
  const host_plugins_options_t opts = {.log = &journal_log, .properties = props};
  cshim_error_t err = NULL;
  host_plugins_t *set;
  (void)state;

  set = load_ok(files, N(files), &opts);
  assert_int_equal(host_plugins_init(set, &err), 0);
  {
    const char *const expected[] = {
        "init " SHUTDOWN,
        SHUTDOWN " probe prop:" CSHIM_PROP_STATE_DIR " = " SHUTDOWN,
        "close " SHUTDOWN,
    };
    host_plugins_close(set);
    assert_events(expected, N(expected));
  }
  host_plugins_unload(set);
}

static int lazy_calls, lazy_static_asked;

static const char *
lazy_cb(void *data, const char *key)
{
  lazy_calls++;
  if (strcmp(key, CSHIM_PROP_ID) == 0)
    lazy_static_asked++;
  if (strcmp(key, "io.cshim.lazy") == 0 || strcmp(key, CSHIM_PROP_ID) == 0)
    return data;
  return NULL;
}

/* Properties worth computing only on demand come from the lazy callback, asked only for keys the
   static list lacks. */
static void
test_plugins_lazy_properties_are_computed_only_when_asked(void **state)
{
  const char *const files[] = {"fx_shutdown.so"};
  const char *const props[] = {CSHIM_PROP_ID, "c1", "test.probe." SHUTDOWN,
                               "prop:io.cshim.lazy prop:" CSHIM_PROP_ID " prop:nothing.here", NULL};
  const host_plugins_options_t opts = {
      .log = &journal_log, .properties = props, .lazy_property = lazy_cb, .lazy_data = "computed"};
  cshim_error_t err = NULL;
  host_plugins_t *set;
  (void)state;

  lazy_calls = lazy_static_asked = 0;
  set = load_ok(files, N(files), &opts);
  assert_int_equal(lazy_calls, 0);
  assert_int_equal(host_plugins_init(set, &err), 0);
  {
    const char *const expected[] = {
        "init " SHUTDOWN,
        SHUTDOWN " probe prop:io.cshim.lazy = computed",
        SHUTDOWN " probe prop:" CSHIM_PROP_ID " = c1",
        SHUTDOWN " probe prop:nothing.here = (null)",
        "close " SHUTDOWN,
    };
    host_plugins_close(set);
    assert_events(expected, N(expected));
  }
  assert_true(lazy_calls >= 2);           /* io.cshim.lazy and nothing.here at least */
  assert_int_equal(lazy_static_asked, 0); /* a static property never reaches the callback */
  host_plugins_unload(set);
}

static void
test_plugins_disabled_are_never_initialised_and_their_config_is_ignored(void **state)
{
  const char *const files[] = {"fx_shutdown.so", "fx_publisher.so", "fx_task.so"};
  const char *const disabled[] = {PUBLISHER, "io.containerd.gone.v1.x", NULL};
  const char *const props[] = {"test.probe." TASK, "id:io.containerd.event.v1:publisher", NULL};
  const cshim_config_node_t sections[] = {
      {.kind = CSHIM_CONFIG_MAP, .file = "cshim.yaml", .line = 3, .column = 5},
      {.kind = CSHIM_CONFIG_MAP, .file = "cshim.yaml", .line = 5, .column = 5},
  };
  const char *const section_keys[] = {PUBLISHER, "io.containerd.gone.v1.x"};
  const cshim_config_node_t plugins_map = {.kind = CSHIM_CONFIG_MAP,
                                           .n = 2,
                                           .keys = section_keys,
                                           .items = sections,
                                           .file = "cshim.yaml",
                                           .line = 2,
                                           .column = 3};
  const host_plugins_options_t opts = {
      .log = &journal_log, .properties = props, .plugins_map = &plugins_map, .disabled = disabled};
  cshim_error_t err = NULL;
  host_plugins_t *set;
  long line;
  (void)state;

  set = load_ok(files, N(files), &opts);
  line =
      journal_find("disabled plugin `io.containerd.gone.v1.x` is not provided by any module", NULL);
  assert_true(line >= 0);
  assert_int_equal(journal.levels[line], CSHIM_LOG_WARN);

  /* Listed after the plugins that will be initialised. */
  assert_int_equal(host_plugins_count(set), 3);
  assert_string_equal(host_plugins_get(set, 0)->uri, SHUTDOWN);
  assert_string_equal(host_plugins_get(set, 1)->uri, TASK);
  assert_string_equal(host_plugins_get(set, 2)->uri, PUBLISHER);
  assert_int_equal(host_plugins_get(set, 2)->state, HOST_PLUGIN_DISABLED);

  assert_int_equal(host_plugins_init(set, &err), 0);
  assert_int_equal(info_of(set, PUBLISHER)->state, HOST_PLUGIN_DISABLED);
  host_plugins_close(set);
  assert_int_equal(info_of(set, PUBLISHER)->state, HOST_PLUGIN_DISABLED);
  {
    const char *const expected[] = {
        "init " SHUTDOWN,
        "init " TASK,
        TASK " probe id:io.containerd.event.v1:publisher = -2 plugin `" PUBLISHER "` not found",
        "close " TASK,
        "close " SHUTDOWN,
    };
    assert_events(expected, N(expected));
  }
  host_plugins_unload(set);
}

static void
test_plugins_reject_config_for_unknown_plugin(void **state)
{
  const char *const files[] = {"fx_shutdown.so"};
  const cshim_config_node_t sections[] = {
      {.kind = CSHIM_CONFIG_MAP, .file = "cshim.yaml", .line = 3, .column = 5},
      {.kind = CSHIM_CONFIG_MAP, .file = "cshim.yaml", .line = 6, .column = 5},
  };
  const char *const section_keys[] = {SHUTDOWN, "io.containerd.internal.v1.shutdwon"};
  const cshim_config_node_t plugins_map = {.kind = CSHIM_CONFIG_MAP,
                                           .n = 2,
                                           .keys = section_keys,
                                           .items = sections,
                                           .file = "cshim.yaml",
                                           .line = 2,
                                           .column = 3};
  const host_plugins_options_t opts = {.log = &journal_log, .plugins_map = &plugins_map};
  (void)state;

  assert_load_fails(
      files, N(files), &opts, EINVAL,
      "cshim.yaml:6:5: config for unknown plugin `io.containerd.internal.v1.shutdwon`");
}

static void
test_plugins_reject_plugins_config_that_is_not_a_map(void **state)
{
  const char *const files[] = {"fx_shutdown.so"};
  const cshim_config_node_t plugins_map = {
      .kind = CSHIM_CONFIG_SCALAR, .value = "yes", .file = "cshim.yaml", .line = 2, .column = 10};
  const host_plugins_options_t opts = {.plugins_map = &plugins_map};
  (void)state;

  assert_load_fails(files, N(files), &opts, EINVAL,
                    "cshim.yaml:2:10: plugins: expected a map of plugin uri to section");
}

static void
test_plugins_accept_null_plugins_config(void **state)
{
  const char *const files[] = {"fx_shutdown.so"};
  const cshim_config_node_t plugins_map = {
      .kind = CSHIM_CONFIG_SCALAR, .value = "~", .file = "cshim.yaml", .line = 2, .column = 10};
  const host_plugins_options_t opts = {.plugins_map = &plugins_map};
  (void)state;

  host_plugins_unload(load_ok(files, N(files), &opts));
}

static void
test_plugins_reject_two_modules_with_same_uri_naming_both(void **state)
{
  const char *const files[] = {"fx_shutdown.so", "fx_dup_a.so", "fx_dup_b.so"};
  const host_plugins_options_t opts = {.log = &journal_log};
  char expected[1024];
  (void)state;

  snprintf(expected, sizeof expected,
           "plugin `io.cshim.test.dup.same` is provided by both `%s/fx_dup_a.so` and "
           "`%s/fx_dup_b.so`",
           CSHIM_FIXTURE_PLUGIN_DIR, CSHIM_FIXTURE_PLUGIN_DIR);
  assert_load_fails(files, N(files), &opts, EEXIST, expected);
}

static void
test_plugins_reject_dependency_loop_between_modules(void **state)
{
  const char *const files[] = {"fx_loop_a.so", "fx_loop_b.so"};
  const host_plugins_options_t opts = {.log = &journal_log};
  (void)state;

  assert_load_fails(files, N(files), &opts, ELOOP,
                    "ordering plugins: plugin dependency loop detected: loop.a.x -> loop.b.y -> "
                    "loop.a.x");
}

static void
test_plugins_load_returns_loader_rejection(void **state)
{
  const char *const files[] = {"fx_shutdown.so", "reject_abi.so", "fx_task.so"};
  const host_plugins_options_t opts = {.log = &journal_log};
  char expected[1024];
  (void)state;

  snprintf(expected, sizeof expected, "plugin `%s/reject_abi.so`: ABI version 7, host supports %u",
           CSHIM_FIXTURE_PLUGIN_DIR, CSHIM_PLUGIN_ABI_VERSION);
  assert_load_fails(files, N(files), &opts, EINVAL, expected);
}

static void
test_plugins_register_requires_a_ttrpc_service(void **state)
{
  const char *const files[] = {"fx_shutdown.so", "fx_publisher.so"};
  const host_plugins_options_t opts = {.log = &journal_log};
  struct fake_server server = {.base.ops = &fake_ops};
  cshim_error_t err = NULL;
  host_plugins_t *set;
  (void)state;

  set = load_ok(files, N(files), &opts);
  assert_int_equal(host_plugins_init(set, &err), 0);
  assert_int_equal(host_plugins_register(set, &server.base, &err), -ENOENT);
  assert_string_equal(err->msg, "required that ttrpc service");
  cshim_error_release(&err);
  assert_int_equal(host_plugins_register(set, &server.base, &err), -EBUSY);
  cshim_error_release(&err);
  host_plugins_close(set);
  host_plugins_unload(set);
}

static void
test_plugins_register_before_init_is_refused(void **state)
{
  const char *const files[] = {"fx_shutdown.so"};
  const host_plugins_options_t opts = {.log = &journal_log};
  struct fake_server server = {.base.ops = &fake_ops};
  cshim_error_t err = NULL;
  host_plugins_t *set;
  (void)state;

  set = load_ok(files, N(files), &opts);
  assert_int_equal(host_plugins_register(set, &server.base, &err), -EINVAL);
  assert_string_equal(err->msg, "plugins are not initialised");
  cshim_error_release(&err);
  host_plugins_unload(set);
}

static void
test_plugins_register_failure_names_plugin(void **state)
{
  const char *const files[] = {"fx_shutdown.so", "fx_publisher.so"};
  const char *const props[] = {"test.mode." PUBLISHER, "register-fail", NULL};
  const host_plugins_options_t opts = {.log = &journal_log, .properties = props};
  struct fake_server server = {.base.ops = &fake_ops};
  cshim_error_t err = NULL;
  host_plugins_t *set;
  (void)state;

  set = load_ok(files, N(files), &opts);
  assert_int_equal(host_plugins_init(set, &err), 0);
  assert_int_equal(host_plugins_register(set, &server.base, &err), -EIO);
  assert_string_equal(err->msg, "plugin `" PUBLISHER
                                "`: registering ttrpc services: fixture refuses to register");
  cshim_error_release(&err);
  host_plugins_close(set);
  host_plugins_unload(set);
}

static void
test_plugins_register_propagates_duplicate_service(void **state)
{
  const char *const files[] = {"fx_shutdown.so", "fx_task.so", "fx_publisher.so"};
  const char *const props[] = {"test.service." TASK, "containerd.task.v2.Task",
                               "test.service." PUBLISHER, "containerd.task.v2.Task", NULL};
  const host_plugins_options_t opts = {.log = &journal_log, .properties = props};
  struct fake_server server = {.base.ops = &fake_ops};
  cshim_error_t err = NULL;
  host_plugins_t *set;
  (void)state;

  set = load_ok(files, N(files), &opts);
  assert_int_equal(host_plugins_init(set, &err), 0);
  assert_int_equal(host_plugins_register(set, &server.base, &err), -EEXIST);
  assert_string_equal(err->msg, "plugin `" TASK "`: registering ttrpc services: service "
                                "`containerd.task.v2.Task` already registered");
  cshim_error_release(&err);
  assert_int_equal(info_of(set, PUBLISHER)->n_services, 1);
  assert_int_equal(info_of(set, TASK)->n_services, 0);
  host_plugins_close(set);
  host_plugins_unload(set);
}

static void
test_plugins_register_refuses_service_without_struct_size(void **state)
{
  const char *const files[] = {"fx_shutdown.so", "fx_task.so", "fx_publisher.so"};
  const char *const props[] = {"test.service." TASK, "containerd.task.v2.Task", "test.mode." TASK,
                               "register-unsized", NULL};
  const host_plugins_options_t opts = {.log = &journal_log, .properties = props};
  struct fake_server server = {.base.ops = &fake_ops};
  cshim_error_t err = NULL;
  host_plugins_t *set;
  (void)state;

  set = load_ok(files, N(files), &opts);
  assert_int_equal(host_plugins_init(set, &err), 0);
  assert_int_equal(host_plugins_register(set, &server.base, &err), -EINVAL);
  assert_string_equal(err->msg, "plugin `" TASK "`: registering ttrpc services: ttrpc service: "
                                "struct_size is 0 (not set: fill it with designated "
                                "initialisers and .struct_size = sizeof the struct)");
  cshim_error_release(&err);
  assert_int_equal(info_of(set, TASK)->n_services, 0);
  host_plugins_close(set);
  host_plugins_unload(set);
}

static void
test_plugins_unload_closes_plugins_left_open(void **state)
{
  const char *const files[] = {"fx_shutdown.so", "fx_publisher.so"};
  const host_plugins_options_t opts = {.log = &journal_log};
  cshim_error_t err = NULL;
  host_plugins_t *set;
  (void)state;

  set = load_ok(files, N(files), &opts);
  assert_int_equal(host_plugins_init(set, &err), 0);
  host_plugins_unload(set);
  {
    const char *const expected[] = {
        "init " SHUTDOWN,
        "init " PUBLISHER,
        "close " PUBLISHER,
        "close " SHUTDOWN,
    };
    assert_events(expected, N(expected));
  }
  assert_true(journal_find("level=warning", "unloading plugins that were not closed", NULL) >= 0);
}

static void
test_plugins_run_without_options(void **state)
{
  const char *const files[] = {"fx_shutdown.so", "fx_task.so"};
  cshim_error_t err = NULL;
  host_plugins_t *set;
  (void)state;

  set = load_ok(files, N(files), NULL);
  assert_int_equal(host_plugins_init(set, &err), 0);
  host_plugins_close(set);
  host_plugins_unload(set);
  assert_int_equal(journal.n, 0);
}

static void
test_plugins_load_empty_list(void **state)
{
  const host_plugins_options_t opts = {0};
  struct fake_server server = {.base.ops = &fake_ops};
  host_plugins_t *set = NULL;
  cshim_error_t err = NULL;
  (void)state;

  assert_int_equal(host_plugins_load(NULL, 0, &opts, &set, &err), 0);
  assert_int_equal(host_plugins_count(set), 0);
  assert_int_equal(host_plugins_init(set, &err), 0);
  assert_int_equal(host_plugins_register(set, &server.base, &err), -ENOENT);
  cshim_error_release(&err);
  host_plugins_close(set);
  host_plugins_unload(set);
  host_plugins_unload(NULL);
}

static void
test_plugins_state_names(void **state)
{
  (void)state;
  assert_string_equal(host_plugins_state_name(HOST_PLUGIN_LOADED), "loaded");
  assert_string_equal(host_plugins_state_name(HOST_PLUGIN_DISABLED), "disabled");
  assert_string_equal(host_plugins_state_name(HOST_PLUGIN_INITIALISED), "initialised");
  assert_string_equal(host_plugins_state_name(HOST_PLUGIN_SKIPPED), "skipped");
  assert_string_equal(host_plugins_state_name(HOST_PLUGIN_FAILED), "failed");
  assert_string_equal(host_plugins_state_name(HOST_PLUGIN_CLOSED), "closed");
}

int
main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
  const struct CMUnitTest tests[] = {
      T(test_plugins_init_register_close_in_graph_order),
      T(test_plugins_log_lines_carry_plugin_uri),
      T(test_plugins_skip_is_logged_invisible_and_never_closed),
      T(test_plugins_skip_reason_is_logged),
      T(test_plugins_failed_init_closes_started_plugins_in_reverse),
      T(test_plugins_failed_init_without_message_gets_one),
      T(test_plugins_lookups_follow_get_plugins_semantics),
      T(test_plugins_context_offers_properties_state_dir_and_config),
      T(test_plugins_lazy_properties_are_computed_only_when_asked),
      T(test_plugins_state_dir_defaults_to_uri),
      T(test_plugins_disabled_are_never_initialised_and_their_config_is_ignored),
      T(test_plugins_reject_config_for_unknown_plugin),
      T(test_plugins_reject_plugins_config_that_is_not_a_map),
      T(test_plugins_accept_null_plugins_config),
      T(test_plugins_reject_two_modules_with_same_uri_naming_both),
      T(test_plugins_reject_dependency_loop_between_modules),
      T(test_plugins_load_returns_loader_rejection),
      T(test_plugins_register_requires_a_ttrpc_service),
      T(test_plugins_register_before_init_is_refused),
      T(test_plugins_register_failure_names_plugin),
      T(test_plugins_register_propagates_duplicate_service),
      T(test_plugins_register_refuses_service_without_struct_size),
      T(test_plugins_unload_closes_plugins_left_open),
      T(test_plugins_run_without_options),
      T(test_plugins_load_empty_list),
      T(test_plugins_state_names),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
