// SPDX-License-Identifier: Apache-2.0
// Tests of host/introspect.c: state sources, config as JSON, plugin listing, server and log
// counters, and the SIGUSR1 dump written to a logger.
#define _GNU_SOURCE
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include <cshim/plugin.h>
#include <cshim/util.h>

#include "config.h"
#include "introspect.h"
#include "plugins.h"
#include "reaper.h"
#include "ttrpc_server.h"

/* Last: cmocka defines a `fail` macro that would clash with cshim_ttrpc_call_ops_t.fail. */
#include <cmocka.h>

#ifndef CSHIM_TEST_ECHO_SO
#error "CSHIM_TEST_ECHO_SO must name the echo fixture plugin"
#endif

struct captured
{
  char text[65536];
  size_t len;
  int lines;
};

static void
capture_write(void *data, int level, const char *line, size_t len)
{
  struct captured *c = data;

  (void)level;
  if (c->len + len < sizeof(c->text)) {
    memcpy(c->text + c->len, line, len);
    c->len += len;
    c->text[c->len] = '\0';
  }
  c->lines++;
}

static char *
dump_fixed_cb(void *data)
{
  return cshim_xstrdup(data);
}

static char *
dump_nothing_cb(void *data)
{
  (void)data;
  return NULL;
}

static void
test_introspect_state_sources_register_dump_and_remove(void **state)
{
  host_introspect_t *intro = host_introspect_new(uv_default_loop(), "9.9.9");
  cshim_host_t *host = host_introspect_api(intro);
  cshim_error_t err = NULL;
  const char *name = NULL;
  char *text;
  (void)state;

  assert_true(host->struct_size >= sizeof(cshim_host_t));
  assert_string_equal(host->version, "9.9.9");
  assert_ptr_equal(host->loop, uv_default_loop());
  assert_true(host->started_ns > 0 && host->started_unix_ns > 0);

  assert_int_equal(cshim_host_add_state_source(host, "tasks", dump_fixed_cb, "[1,2]", &err), 0);
  assert_int_equal(cshim_host_add_state_source(host, "other.src-1", dump_nothing_cb, NULL, &err),
                   0);
  assert_int_equal(host->state_source_count(host), 2);

  text = host->state_source_dump(host, 0, &name);
  assert_string_equal(name, "tasks");
  assert_string_equal(text, "[1,2]");
  free(text);
  assert_null(host->state_source_dump(host, 1, &name));
  assert_string_equal(name, "other.src-1");
  assert_null(host->state_source_dump(host, 2, &name));
  assert_null(name);

  /* Wrong data: not removed. */
  cshim_host_remove_state_source(host, "tasks", NULL);
  assert_int_equal(host->state_source_count(host), 2);
  cshim_host_remove_state_source(host, "tasks", "[1,2]");
  assert_int_equal(host->state_source_count(host), 1);
  cshim_host_remove_state_source(host, "nope", NULL);
  assert_int_equal(host->state_source_count(host), 1);
  cshim_host_remove_state_source(host, "other.src-1", NULL);
  assert_int_equal(host->state_source_count(host), 0);
  host_introspect_free(intro);
}

static void
test_introspect_rejects_bad_and_duplicate_source_names(void **state)
{
  host_introspect_t *intro = host_introspect_new(uv_default_loop(), "1");
  cshim_host_t *host = host_introspect_api(intro);
  cshim_error_t err = NULL;
  char long_name[80];
  (void)state;

  assert_int_equal(cshim_host_add_state_source(host, "", dump_nothing_cb, NULL, &err), -EINVAL);
  assert_non_null(strstr(err->msg, "invalid state source name"));
  cshim_error_release(&err);
  assert_int_equal(cshim_host_add_state_source(host, "a b", dump_nothing_cb, NULL, &err), -EINVAL);
  cshim_error_release(&err);
  memset(long_name, 'x', sizeof(long_name) - 1);
  long_name[sizeof(long_name) - 1] = '\0';
  assert_int_equal(cshim_host_add_state_source(host, long_name, dump_nothing_cb, NULL, &err),
                   -EINVAL);
  cshim_error_release(&err);
  assert_int_equal(cshim_host_add_state_source(host, "x", NULL, NULL, &err), -EINVAL);
  cshim_error_release(&err);
  assert_int_equal(cshim_host_add_state_source(host, "x", dump_nothing_cb, NULL, &err), 0);
  assert_int_equal(cshim_host_add_state_source(host, "x", dump_nothing_cb, NULL, &err), -EEXIST);
  assert_non_null(strstr(err->msg, "already registered"));
  cshim_error_release(&err);
  cshim_host_remove_state_source(host, "x", NULL);
  host_introspect_free(intro);
}

static void
test_introspect_renders_the_config_as_json(void **state)
{
  static const char yaml[] = "version: 1\n"
                             "modules: [a.so, b.so]\n"
                             "plugins:\n"
                             "  io.containerd.ttrpc.v1.task:\n"
                             "    runtime: \"crun\"\n"
                             "    command_timeout: ~\n";
  host_introspect_t *intro = host_introspect_new(uv_default_loop(), "1");
  cshim_host_t *host = host_introspect_api(intro);
  host_config_t *cfg = NULL;
  cshim_error_t err = NULL;
  char *json;
  (void)state;

  assert_int_equal(host_config_parse(yaml, strlen(yaml), "/etc/x.yaml", "/p", &cfg, &err), 0);
  json = host->config_json(host);
  assert_string_equal(json, "null");
  free(json);
  host_introspect_set_config(intro, cfg->source, cfg->root);
  assert_string_equal(host->config_source(host), "/etc/x.yaml");
  json = host->config_json(host);
  assert_string_equal(json, "{\"version\":\"1\",\"modules\":[\"a.so\",\"b.so\"],\"plugins\":{"
                            "\"io.containerd.ttrpc.v1.task\":{\"runtime\":\"crun\","
                            "\"command_timeout\":null}}}");
  free(json);
  host_introspect_free(intro);
  host_config_free(cfg);
}

static void
test_introspect_lists_plugins_of_the_set(void **state)
{
  const char *paths[] = {CSHIM_TEST_ECHO_SO};
  host_introspect_t *intro = host_introspect_new(uv_default_loop(), "1");
  cshim_host_t *host = host_introspect_api(intro);
  host_plugins_options_t opts = {.loop = uv_default_loop(), .host = host};
  host_plugins_t *set = NULL;
  cshim_host_plugin_info_t info = {.struct_size = sizeof info};
  cshim_error_t err = NULL;
  (void)state;

  assert_int_equal(host->plugin_count(host), 0);
  assert_int_equal(host->plugin_info(host, 0, &info, &err), -ERANGE);
  cshim_error_release(&err);

  assert_int_equal(host_plugins_load(paths, 1, &opts, &set, &err), 0);
  host_introspect_set_plugins(intro, set);
  assert_int_equal(host->plugin_count(host), 1);
  assert_int_equal(host->plugin_info(host, 0, &info, &err), 0);
  assert_string_equal(info.path, CSHIM_TEST_ECHO_SO);
  assert_string_equal(info.state, "loaded");
  assert_non_null(info.uri);
  assert_non_null(strstr(info.uri, info.id));
  assert_int_equal(info.n_services, 0);
  assert_int_equal(host->plugin_info(host, 1, &info, &err), -ERANGE);
  cshim_error_release(&err);

  host_plugins_unload(set);
  host_introspect_set_plugins(intro, NULL);
  host_introspect_free(intro);
}

static void
closed_cb(void *data)
{
  *(bool *)data = true;
}

static void
test_introspect_keeps_server_counters_after_detach(void **state)
{
  host_introspect_t *intro = host_introspect_new(uv_default_loop(), "1");
  cshim_host_t *host = host_introspect_api(intro);
  host_ttrpc_server_t *srv = NULL;
  cshim_ttrpc_stats_t st = {.struct_size = sizeof st};
  cshim_host_log_stats_t ls = {.struct_size = sizeof ls};
  host_log_t log;
  cshim_error_t err = NULL;
  bool closed = false;
  (void)state;

  memset(&st, 0xff, sizeof(st));
  host->ttrpc_stats(host, &st);
  assert_int_equal(st.calls_total, 0);
  assert_int_equal(st.connections_open, 0);

  assert_int_equal(host_ttrpc_server_new(uv_default_loop(), NULL, &srv, &err), 0);
  host_introspect_set_server(intro, srv);
  host->ttrpc_stats(host, &st);
  assert_int_equal(st.connections_total, 0);
  host_introspect_set_server(intro, NULL);
  host_ttrpc_server_close(srv, closed_cb, &closed);
  uv_run(uv_default_loop(), UV_RUN_DEFAULT);
  assert_true(closed);
  host->ttrpc_stats(host, &st);
  assert_int_equal(st.calls_in_flight, 0);

  host->log_stats(host, &ls);
  assert_int_equal(ls.lines, 0);
  host_log_init(&log, -1, CSHIM_LOG_INFO, NULL);
  log.lines = 7;
  log.dropped = 3;
  host_introspect_set_log(intro, &log);
  host->log_stats(host, &ls);
  assert_int_equal(ls.lines, 7);
  assert_int_equal(ls.dropped, 3);
  host_introspect_free(intro);
}

static void
test_introspect_shows_the_reapers_started_processes(void **state)
{
  host_introspect_t *intro = host_introspect_new(uv_default_loop(), "1");
  cshim_host_t *host = host_introspect_api(intro);
  cshim_host_process_starts_t ps;
  host_reaper_t *r = NULL;
  cshim_reaper_t *api;
  cshim_error_t err = NULL;
  (void)state;

  assert_int_equal(cshim_host_process_starts(host, 0, &ps), 0);
  assert_int_equal(host_reaper_new(uv_default_loop(), NULL, &r, &err), 0);
  api = host_reaper_api(r);
  host_introspect_set_reaper(intro, r);
  api->ops->started(api, 10, "runtime", "delete");
  api->ops->started(api, 11, "runtime", "delete");
  api->ops->started(api, 12, "logger", NULL);
  assert_int_equal(cshim_host_process_starts(host, 0, &ps), 2);
  assert_string_equal(ps.kind, "runtime");
  assert_string_equal(ps.command, "delete");
  assert_int_equal(ps.count, 2);
  assert_int_equal(cshim_host_process_starts(host, 1, &ps), 2);
  assert_string_equal(ps.kind, "logger");
  assert_string_equal(ps.command, "");
  assert_int_equal(ps.count, 1);
  /* a host too old for the member: nothing counted, nothing read past its end */
  host->struct_size = offsetof(cshim_host_t, process_starts);
  assert_int_equal(cshim_host_process_starts(host, 0, &ps), 0);
  host->struct_size = sizeof(cshim_host_t);
  host_introspect_set_reaper(intro, NULL);
  assert_int_equal(cshim_host_process_starts(host, 0, &ps), 0);
  host_reaper_close(r);
  uv_run(uv_default_loop(), UV_RUN_DEFAULT);
  host_introspect_free(intro);
}

static void
test_introspect_dump_logs_every_source_one_line_per_element(void **state)
{
  static struct captured cap;
  cshim_logger_t logger = {
      .struct_size = sizeof logger, .write = capture_write, .data = &cap, .level = CSHIM_LOG_INFO};
  host_introspect_t *intro = host_introspect_new(uv_default_loop(), "2.0");
  cshim_host_t *host = host_introspect_api(intro);
  cshim_error_t err = NULL;
  char big[5000];
  (void)state;

  memset(&cap, 0, sizeof(cap));
  assert_int_equal(cshim_host_add_state_source(
                       host, "tasks", dump_fixed_cb,
                       "[{\"container_id\":\"c1\",\"pid\":42},{\"container_id\":\"c2\"}]", &err),
                   0);
  assert_int_equal(cshim_host_add_state_source(host, "empty", dump_fixed_cb, "[]", &err), 0);
  assert_int_equal(cshim_host_add_state_source(host, "none", dump_nothing_cb, NULL, &err), 0);
  memset(big, 'a', sizeof(big));
  big[0] = '"';
  big[sizeof(big) - 2] = '"';
  big[sizeof(big) - 1] = '\0';
  assert_int_equal(cshim_host_add_state_source(host, "big", dump_fixed_cb, big, &err), 0);

  host_introspect_dump(intro, &logger);
  assert_non_null(strstr(cap.text, "state dump: cshim 2.0, pid"));
  assert_non_null(strstr(cap.text, "state dump: 0 plugins"));
  assert_non_null(strstr(cap.text, "ttrpc: 0 connections open"));
  assert_non_null(strstr(cap.text, "state `tasks` [0]: {\\\"container_id\\\":\\\"c1\\\""));
  assert_non_null(strstr(cap.text, "state `tasks` [1]: {\\\"container_id\\\":\\\"c2\\\"}"));
  assert_non_null(strstr(cap.text, "state `empty`: []"));
  assert_non_null(strstr(cap.text, "state `none`: none"));
  assert_non_null(strstr(cap.text, "state `big` (part 1/3)"));
  assert_non_null(strstr(cap.text, "state `big` (part 3/3)"));
  assert_non_null(strstr(cap.text, "state dump: end"));
  /* Every line stayed whole: none was cut by the log's message limit. */
  for (char *line = cap.text; (line = strstr(line, "msg=")); line++)
    assert_non_null(strchr(line, '\n'));

  cshim_host_remove_state_source(host, "tasks", NULL);
  cshim_host_remove_state_source(host, "empty", NULL);
  cshim_host_remove_state_source(host, "none", NULL);
  cshim_host_remove_state_source(host, "big", NULL);
  host_introspect_free(intro);
}

static void
test_introspect_reaches_plugins_through_the_init_context(void **state)
{
  cshim_init_ctx_t ctx;
  host_introspect_t *intro = host_introspect_new(uv_default_loop(), "1");
  (void)state;

  memset(&ctx, 0, sizeof(ctx));
  ctx.struct_size = sizeof(ctx);
  ctx.host = host_introspect_api(intro);
  assert_ptr_equal(cshim_init_ctx_host(&ctx), host_introspect_api(intro));
  /* A context from a host built before the field existed: no introspection. */
  ctx.struct_size = offsetof(cshim_init_ctx_t, host);
  assert_null(cshim_init_ctx_host(&ctx));
  host_introspect_free(intro);
}

int
main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_introspect_shows_the_reapers_started_processes),
      cmocka_unit_test(test_introspect_state_sources_register_dump_and_remove),
      cmocka_unit_test(test_introspect_rejects_bad_and_duplicate_source_names),
      cmocka_unit_test(test_introspect_renders_the_config_as_json),
      cmocka_unit_test(test_introspect_lists_plugins_of_the_set),
      cmocka_unit_test(test_introspect_keeps_server_counters_after_detach),
      cmocka_unit_test(test_introspect_dump_logs_every_source_one_line_per_element),
      cmocka_unit_test(test_introspect_reaches_plugins_through_the_init_context),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
