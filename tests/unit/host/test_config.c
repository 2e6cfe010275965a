// SPDX-License-Identifier: Apache-2.0
// Tests host/config.c: YAML parsing, every rejection message, and the config resolution order.
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cshim/log.h>
#include <cshim/util.h>

#include "config.h"

#define SRC "test.yaml"
#define PLUGIN_DIR "/opt/shim/lib/cshim/plugins"
#define KNOWN_KEYS                                                                                 \
  "(known keys: version, plugin_dir, modules, disabled_plugins, log_level, plugins, ttrpc)"

static host_config_t *
parse_ok(const char *text)
{
  host_config_t *c = NULL;
  cshim_error_t err = NULL;
  int ret = host_config_parse(text, strlen(text), SRC, PLUGIN_DIR, &c, &err);

  if (ret < 0)
    fail_msg("unexpected error: %s", err->msg);
  assert_non_null(c);
  return c;
}

/* Parses text, expects EINVAL with exactly msg. */
static void
parse_fails(const char *text, size_t len, const char *msg)
{
  host_config_t *c = NULL;
  cshim_error_t err = NULL;
  int ret = host_config_parse(text, len, SRC, PLUGIN_DIR, &c, &err);

  if (ret == 0)
    fail_msg("parsed without error: %s", text);
  assert_int_equal(ret, -EINVAL);
  assert_null(c);
  assert_non_null(err);
  assert_int_equal(err->status, -EINVAL);
  assert_string_equal(err->msg, msg);
  cshim_error_release(&err);
}

#define PARSE_FAILS(text, msg) parse_fails((text), sizeof(text) - 1, (msg))

static void
assert_default_modules(const host_config_t *c)
{
  assert_int_equal(c->n_modules, 5);
  assert_string_equal(c->modules[0], "shutdown.so");
  assert_string_equal(c->modules[1], "publisher.so");
  assert_string_equal(c->modules[2], "task.so");
  assert_string_equal(c->modules[3], "debug.so");
  assert_string_equal(c->modules[4], "tracing.so");
  assert_null(c->modules[5]);
}

static void
assert_defaults(const host_config_t *c)
{
  assert_string_equal(c->plugin_dir, PLUGIN_DIR);
  assert_default_modules(c);
  assert_int_equal(c->n_disabled, 0);
  assert_int_equal(c->log_level, CSHIM_LOG_INFO);
  assert_false(c->log_level_set);
  assert_null(c->plugins);
}

static void
test_config_empty_documents_give_defaults(void **state)
{
  static const char *const texts[] = {
      "",           "\n",  "# only a comment\n", "---\n",
      "---\n...\n", "~\n", "version: 1\n",       "plugins:\nmodules:\nlog_level: ~\n"};

  for (size_t i = 0; i < CSHIM_N_ELEMENTS(texts); i++) {
    host_config_t *c = parse_ok(texts[i]);

    assert_string_equal(c->source, SRC);
    assert_defaults(c);
    host_config_free(c);
  }
}

static void
test_config_embedded_default_parses(void **state)
{
  host_config_t *c = NULL;
  cshim_error_t err = NULL;

  assert_int_equal(strlen(host_default_config), host_default_config_len);
  assert_int_equal(host_config_parse(host_default_config, host_default_config_len,
                                     HOST_CONFIG_EMBEDDED, PLUGIN_DIR, &c, &err),
                   0);
  assert_string_equal(c->source, "<embedded>");
  assert_default_modules(c);
  assert_string_equal(c->plugin_dir, PLUGIN_DIR);
  assert_false(c->log_level_set);
  /* The task section exists but holds only comments, so the plugin gets no section at all. */
  assert_non_null(c->plugins);
  assert_non_null(cshim_config_get(c->plugins, "io.containerd.ttrpc.v1.task"));
  assert_null(host_config_plugin_section(c, "io.containerd.ttrpc.v1.task"));
  host_config_free(c);
}

static void
test_config_reads_every_key(void **state)
{
  host_config_t *c = parse_ok("version: 1\n"
                              "plugin_dir: /usr/lib/acme/plugins/\n"
                              "modules: [shutdown.so, /opt/acme/task.so, sub/x.so]\n"
                              "disabled_plugins:\n"
                              "  - io.containerd.http.v1.debug\n"
                              "  - \"io.containerd.event.v1.publisher\"\n"
                              "log_level: Warning\n"
                              "plugins:\n"
                              "  io.containerd.ttrpc.v1.task:\n"
                              "    runtime: /usr/bin/crun\n"
                              "    systemd_cgroup: \"true\"\n");
  const cshim_config_node_t *task;
  cshim_autofree char *p0 = NULL;
  cshim_autofree char *p1 = NULL;
  cshim_autofree char *p2 = NULL;
  cshim_error_t err = NULL;
  const char *runtime = NULL;
  bool b = false;

  assert_string_equal(c->plugin_dir, "/usr/lib/acme/plugins/");
  assert_int_equal(c->n_modules, 3);
  assert_null(c->modules[3]);
  p0 = host_config_module_path(c, 0);
  p1 = host_config_module_path(c, 1);
  p2 = host_config_module_path(c, 2);
  assert_string_equal(p0, "/usr/lib/acme/plugins/shutdown.so");
  assert_string_equal(p1, "/opt/acme/task.so");
  assert_string_equal(p2, "/usr/lib/acme/plugins/sub/x.so");
  assert_null(host_config_module_path(c, 3));

  assert_int_equal(c->n_disabled, 2);
  assert_true(host_config_is_disabled(c, "io.containerd.http.v1.debug"));
  assert_true(host_config_is_disabled(c, "io.containerd.event.v1.publisher"));
  assert_false(host_config_is_disabled(c, "io.containerd.ttrpc.v1.task"));

  assert_int_equal(c->log_level, CSHIM_LOG_WARN);
  assert_true(c->log_level_set);

  task = host_config_plugin_section(c, "io.containerd.ttrpc.v1.task");
  assert_non_null(task);
  assert_null(host_config_plugin_section(c, "io.containerd.ttrpc.v1.other"));
  assert_int_equal(cshim_config_get_string(task, "runtime", &runtime, &err), 0);
  assert_string_equal(runtime, "/usr/bin/crun");
  /* Node locations come from the real parser, 1-based; a quoted "true" is not a bool. */
  assert_int_equal(cshim_config_get_bool(task, "systemd_cgroup", &b, &err), -EINVAL);
  assert_string_equal(err->msg, SRC ":11:21: `systemd_cgroup` must be a boolean (true or false, "
                                    "unquoted)");
  cshim_error_release(&err);
  host_config_free(c);
}

static void
test_config_reads_ttrpc_limits(void **state)
{
  host_config_t *c = parse_ok("ttrpc:\n  max_calls_in_flight: 8\n  buffer_budget_mib: 64\n"
                              "  stalled_frame_timeout: 2s\n");

  assert_int_equal(c->ttrpc_max_calls_in_flight, 8);
  assert_int_equal(c->ttrpc_buffer_budget, (size_t)64 << 20);
  assert_int_equal(c->ttrpc_stalled_frame_timeout_ms, 2000);
  host_config_free(c);
  c = parse_ok("ttrpc:\n  max_calls_in_flight: 2\n");
  assert_int_equal(c->ttrpc_max_calls_in_flight, 2);
  assert_int_equal(c->ttrpc_buffer_budget, 0); /* the server's default */
  host_config_free(c);
  c = parse_ok("ttrpc: ~\n");
  assert_int_equal(c->ttrpc_max_calls_in_flight, 0);
  host_config_free(c);
}

static void
test_config_rejects_bad_ttrpc_limits(void **state)
{
  PARSE_FAILS("ttrpc: 3\n", SRC ":1:8: `ttrpc` must be a map of settings");
  PARSE_FAILS("ttrpc:\n  max_calls_in_flight: 0\n",
              SRC ":2:24: `ttrpc.max_calls_in_flight` must be between 1 and 65536 (found 0)");
  PARSE_FAILS("ttrpc:\n  buffer_budget_mib: 4\n",
              SRC ":2:22: `ttrpc.buffer_budget_mib` must be between 5 and 65536 (found 4)");
  PARSE_FAILS("ttrpc:\n  stalled_frame_timeout: 50ms\n", SRC
              ":2:26: `ttrpc.stalled_frame_timeout` must be between 100ms and 1h (found 50 ms)");
  PARSE_FAILS("ttrpc:\n  max_calls_in_flight: lots\n",
              SRC ":2:24: `max_calls_in_flight` must be a non-negative integer");
  PARSE_FAILS("ttrpc:\n  budget: 4\n", SRC ":2:11: unknown key `budget` in ttrpc");
}

static void
test_config_log_levels(void **state)
{
  static const struct
  {
    const char *text;
    int level;
  } cases[] = {{"log_level: trace", CSHIM_LOG_TRACE},  {"log_level: debug", CSHIM_LOG_DEBUG},
               {"log_level: info", CSHIM_LOG_INFO},    {"log_level: warn", CSHIM_LOG_WARN},
               {"log_level: warning", CSHIM_LOG_WARN}, {"log_level: error", CSHIM_LOG_ERROR},
               {"log_level: DEBUG", CSHIM_LOG_DEBUG},  {"log_level: \"error\"", CSHIM_LOG_ERROR}};

  for (size_t i = 0; i < CSHIM_N_ELEMENTS(cases); i++) {
    host_config_t *c = parse_ok(cases[i].text);

    assert_int_equal(c->log_level, cases[i].level);
    assert_true(c->log_level_set);
    host_config_free(c);
  }
}

static void
test_config_plugin_options_only_keep_default_modules(void **state)
{
  host_config_t *c = parse_ok("plugins:\n"
                              "  io.containerd.ttrpc.v1.task:\n"
                              "    runtime: /usr/bin/crun\n");
  const char *runtime = NULL;
  cshim_error_t err = NULL;

  assert_default_modules(c);
  assert_string_equal(c->plugin_dir, PLUGIN_DIR);
  assert_int_equal(
      cshim_config_get_string(host_config_plugin_section(c, "io.containerd.ttrpc.v1.task"),
                              "runtime", &runtime, &err),
      0);
  assert_string_equal(runtime, "/usr/bin/crun");
  host_config_free(c);
}

static void
test_config_module_path_joins_plugin_dir(void **state)
{
  host_config_t *c = parse_ok("plugin_dir: /\nmodules: [a.so]\n");
  cshim_autofree char *p = host_config_module_path(c, 0);

  assert_string_equal(p, "/a.so");
  host_config_free(c);
}

static void
test_config_rejects_yaml_syntax_errors(void **state)
{
  PARSE_FAILS("plugins: a: b\n",
              SRC ":1:11: invalid YAML: mapping values are not allowed in this context");
  PARSE_FAILS("log_level: \"info\n",
              SRC ":2:1: invalid YAML: found unexpected end of stream (while scanning a quoted "
                  "scalar at 1:12)");
  PARSE_FAILS("modules: [a.so, b.so\nlog_level: info\n",
              SRC ":2:10: invalid YAML: did not find expected ',' or ']' (while parsing a flow "
                  "sequence at 1:10)");
  PARSE_FAILS("version: 1\n\tlog_level: info\n",
              SRC ":2:1: invalid YAML: found a tab character that violates indentation (while "
                  "scanning a plain scalar at 1:10)");
  PARSE_FAILS("version: 1\nlog_level: \xff\n",
              SRC ":2:12: invalid YAML: invalid leading UTF-8 octet");
}

static void
test_config_rejects_unknown_top_level_keys(void **state)
{
  PARSE_FAILS("version: 1\nplugin-dir: /x\n", SRC ":2:1: unknown key `plugin-dir` " KNOWN_KEYS);
  /* Even with a null value, which would otherwise mean "keep the default". */
  PARSE_FAILS("version: 1\n  # c\nruntime:\n", SRC ":3:1: unknown key `runtime` " KNOWN_KEYS);
  PARSE_FAILS("{version: 1, \"task\": {}}", SRC ":1:14: unknown key `task` " KNOWN_KEYS);
}

static void
test_config_rejects_wrong_types(void **state)
{
  PARSE_FAILS("version: 2\n", SRC ":1:10: `version` must be 1");
  PARSE_FAILS("version: \"1\"\n", SRC ":1:10: `version` must be 1");
  PARSE_FAILS("version: [1]\n", SRC ":1:10: `version` must be 1");
  PARSE_FAILS("plugin_dir: [/x]\n", SRC ":1:13: `plugin_dir` must be a string");
  PARSE_FAILS("plugin_dir: lib/plugins\n",
              SRC ":1:13: `plugin_dir` must be an absolute path (found `lib/plugins`)");
  PARSE_FAILS("plugin_dir: \"\"\n", SRC ":1:13: `plugin_dir` must be an absolute path (found ``)");
  PARSE_FAILS("modules: task.so\n", SRC ":1:10: `modules` must be a list of module file names");
  PARSE_FAILS("modules: {task.so: 1}\n",
              SRC ":1:10: `modules` must be a list of module file names");
  PARSE_FAILS("modules: []\n", SRC ":1:10: `modules` must name at least one module");
  PARSE_FAILS("modules:\n  - a.so\n  - [b.so]\n",
              SRC ":3:5: each entry of `modules` must be a module file name");
  PARSE_FAILS("modules:\n  - a.so\n  -\n", SRC ":3:4: each entry of `modules` must be a module "
                                               "file name");
  PARSE_FAILS("modules: [a.so, \"\"]\n", SRC ":1:17: each entry of `modules` must be a module "
                                             "file name");
  PARSE_FAILS("modules: [a.so, b.so, a.so]\n",
              SRC ":1:23: `modules` lists `a.so` twice (first at 1:11)");
  PARSE_FAILS("disabled_plugins: io.containerd.http.v1.debug\n",
              SRC ":1:19: `disabled_plugins` must be a list of plugin URIs");
  PARSE_FAILS("disabled_plugins: [{a: b}]\n",
              SRC ":1:20: each entry of `disabled_plugins` must be a plugin URI");
  PARSE_FAILS("disabled_plugins: [x, x]\n",
              SRC ":1:23: `disabled_plugins` lists `x` twice (first at 1:20)");
  PARSE_FAILS("log_level: loud\n", SRC ":1:12: `log_level` must be one of trace, debug, info, "
                                       "warn, warning, error (found `loud`)");
  PARSE_FAILS("log_level: [info]\n",
              SRC ":1:12: `log_level` must be one of trace, debug, info, warn, warning, error");
  PARSE_FAILS("plugins: [io.containerd.ttrpc.v1.task]\n",
              SRC ":1:10: `plugins` must be a map from plugin URI to its settings");
  PARSE_FAILS("plugins: task\n", SRC ":1:10: `plugins` must be a map from plugin URI to its "
                                     "settings");
}

static void
test_config_rejects_duplicate_keys(void **state)
{
  PARSE_FAILS("version: 1\nlog_level: info\nversion: 1\n",
              SRC ":3:1: duplicate key `version` (first at 1:1)");
  PARSE_FAILS("plugins:\n"
              "  io.containerd.ttrpc.v1.task:\n"
              "    runtime: runc\n"
              "    runtime: crun\n",
              SRC ":4:5: duplicate key `runtime` (first at 3:5)");
  PARSE_FAILS("plugins: {a: 1, b: 2, a: 3}\n", SRC ":1:23: duplicate key `a` (first at 1:11)");
}

static void
test_config_rejects_documents_that_are_not_maps(void **state)
{
  PARSE_FAILS("- shutdown.so\n- task.so\n",
              SRC ":1:1: the top level of a config must be a map of settings, not a list");
  PARSE_FAILS("hello\n", SRC ":1:1: the top level of a config must be a map of settings, not a "
                             "scalar");
  PARSE_FAILS("--- \"\"\n", SRC ":1:5: the top level of a config must be a map of settings, not "
                                "a scalar");
}

static void
test_config_rejects_multiple_documents(void **state)
{
  PARSE_FAILS("version: 1\n---\nlog_level: info\n",
              SRC ":2:1: a second YAML document starts here; a config is a single document");
  PARSE_FAILS("---\nversion: 1\n...\n---\n",
              SRC ":4:1: a second YAML document starts here; a config is a single document");
}

static void
test_config_rejects_odd_yaml(void **state)
{
  static const char nul[] = "plugins:\n  x:\n    y: \"a\\0b\"\n";
  char deep[200];

  PARSE_FAILS("? [a]\n: b\n", SRC ":1:3: map keys must be strings, not lists or maps");
  PARSE_FAILS("plugins:\n  x: *nowhere\n", SRC ":2:6: unknown alias `*nowhere`");
  parse_fails(nul, sizeof(nul) - 1, SRC ":3:8: NUL characters are not allowed in config values");
  memset(deep, 0, sizeof(deep));
  strcpy(deep, "plugins: ");
  for (size_t i = 0; i < 70; i++)
    strcat(deep, "[");
  parse_fails(deep, strlen(deep), SRC ":1:74: nesting deeper than 64 levels");
}

static void
test_config_follows_aliases_and_str_tags(void **state)
{
  host_config_t *c = parse_ok("plugins:\n"
                              "  a.b.v1.one: &common\n"
                              "    debug: !!str true\n"
                              "  a.b.v1.two: *common\n");
  const cshim_config_node_t *one = host_config_plugin_section(c, "a.b.v1.one");
  const cshim_config_node_t *two = host_config_plugin_section(c, "a.b.v1.two");
  cshim_error_t err = NULL;
  const char *s = NULL;
  bool b;

  assert_non_null(one);
  assert_non_null(two);
  assert_ptr_equal(one->items, two->items);
  assert_int_equal(cshim_config_get_string(two, "debug", &s, &err), 0);
  assert_string_equal(s, "true");
  assert_true(cshim_config_get(two, "debug")->quoted);
  assert_int_equal(cshim_config_get_bool(two, "debug", &b, &err), -EINVAL);
  cshim_error_release(&err);
  host_config_free(c);
}

/* 100k map keys, 100k list entries and 100k aliases of 100k anchors: every duplicate check and
   alias lookup must cost O(1) slots (the old pairwise checks did ~n*n/2 comparisons per map,
   list and alias chain: 15 * 10^9 here). */
static void
test_config_parses_in_linear_work(void **state)
{
  enum
  {
    N = 100000
  };
  size_t cap = (size_t)N * 64, len = 0;
  char *text = cshim_xmalloc(cap);
  const cshim_config_node_t *anchors, *aliases;
  host_config_t *c;

  (void)state;
#define APPEND(...) len += (size_t)snprintf(text + len, cap - len, __VA_ARGS__)
  APPEND("disabled_plugins:\n");
  for (int i = 0; i < N; i++)
    APPEND("  - x.y.v1.p%d\n", i);
  APPEND("plugins:\n  a.b.v1.big:\n");
  for (int i = 0; i < N; i++)
    APPEND("    key%d: &a%d v%d\n", i, i, i);
  APPEND("  a.b.v1.refs:\n");
  for (int i = 0; i < N; i++)
    APPEND("    - *a%d\n", N - 1 - i);
#undef APPEND
  assert_true(len < cap);

  c = parse_ok(text);
  assert_int_equal(c->n_disabled, N);
  assert_string_equal(c->disabled[N - 1], "x.y.v1.p99999");
  anchors = host_config_plugin_section(c, "a.b.v1.big");
  aliases = host_config_plugin_section(c, "a.b.v1.refs");
  assert_non_null(anchors);
  assert_non_null(aliases);
  assert_int_equal(anchors->n, N);
  assert_int_equal(aliases->n, N);
  assert_string_equal(aliases->items[0].value, "v99999");
  assert_string_equal(aliases->items[N - 1].value, "v0");
  /* 4 * N lookups or inserts (keys, list entries, anchors, aliases) at a load factor of at most
     one half; 8 slots per lookup on average is far above what open addressing visits. */
  assert_true(host_config_parse_work(c) < 8u * 4u * N);
  assert_true(host_config_parse_work(c) >= 4u * N);
  host_config_free(c);
  free(text);
}

static void
test_config_reports_key_locations(void **state)
{
  host_config_t *c = parse_ok("version: 1\n"
                              "plugins:\n"
                              "  io.containerd.ttrpc.v1.task:\n"
                              "      runtime: crun\n");
  const cshim_config_node_t *task = host_config_plugin_section(c, "io.containerd.ttrpc.v1.task");
  unsigned line = 0, column = 0;

  assert_true(host_config_key_location(c, c->root, 1, &line, &column));
  assert_int_equal(line, 2);
  assert_int_equal(column, 1);
  assert_true(host_config_key_location(c, c->plugins, 0, &line, &column));
  assert_int_equal(line, 3);
  assert_int_equal(column, 3);
  assert_true(host_config_key_location(c, task, 0, &line, &column));
  assert_int_equal(line, 4);
  assert_int_equal(column, 7);
  assert_int_equal(task->items[0].line, 4);
  assert_int_equal(task->items[0].column, 16);
  assert_string_equal(task->items[0].file, SRC);
  assert_false(host_config_key_location(c, task, 1, &line, &column));
  assert_false(host_config_key_location(c, &task->items[0], 0, &line, &column));
  host_config_free(c);
}

static void
test_config_shim_name_from_binary(void **state)
{
  static const struct
  {
    const char *argv0;
    const char *name;
  } cases[] = {
      {"containerd-shim-acme-v2", "acme"},
      {"/usr/local/bin/containerd-shim-acme-v2", "acme"},
      {"containerd-shim-runc-v2", "runc"},
      {"containerd-shim-my-shim-v2", "my-shim"},
      {"./containerd-shim-x-v2", "x"},
      {"containerd-shim--v2", NULL},
      {"containerd-shim-acme-v1", NULL},
      {"containerd-shim-acme", NULL},
      {"containerd-shim-v2", NULL},
      {"cshim", NULL},
      {"/usr/bin/containerd-shim-acme-v2/", NULL},
      {"", NULL},
  };

  for (size_t i = 0; i < CSHIM_N_ELEMENTS(cases); i++) {
    cshim_autofree char *name = host_shim_name_from_binary(cases[i].argv0);

    if (cases[i].name == NULL) {
      if (name != NULL)
        fail_msg("`%s` gave `%s`", cases[i].argv0, name);
    } else {
      assert_non_null(name);
      assert_string_equal(name, cases[i].name);
    }
  }
  assert_null(host_shim_name_from_binary(NULL));
}

/* Resolution tests run in a private temporary directory. */
struct fixture
{
  char dir[64];
  char etc[96];
  char explicit_path[160];
  char env_path[160];
  char etc_path[160];
};

static void
write_text(const char *path, const char *text)
{
  FILE *f = fopen(path, "w");

  assert_non_null(f);
  assert_int_equal(fputs(text, f) >= 0, 1);
  assert_int_equal(fclose(f), 0);
}

static int
setup_dir(void **state)
{
  struct fixture *f = calloc(1, sizeof(*f));

  strcpy(f->dir, "/tmp/cshim-config-test-XXXXXX");
  if (mkdtemp(f->dir) == NULL)
    return -1;
  snprintf(f->etc, sizeof(f->etc), "%s/etc", f->dir);
  snprintf(f->explicit_path, sizeof(f->explicit_path), "%s/explicit.yaml", f->dir);
  snprintf(f->env_path, sizeof(f->env_path), "%s/env.yaml", f->dir);
  snprintf(f->etc_path, sizeof(f->etc_path), "%s/acme.yaml", f->etc);
  if (mkdir(f->etc, 0700) < 0)
    return -1;
  *state = f;
  return 0;
}

static int
teardown_dir(void **state)
{
  struct fixture *f = *state;

  unlink(f->explicit_path);
  unlink(f->env_path);
  unlink(f->etc_path);
  rmdir(f->etc);
  unlink(f->etc); /* some tests replace the directory with a file */
  rmdir(f->dir);
  free(f);
  return 0;
}

static void
write_all_three(struct fixture *f)
{
  write_text(f->explicit_path, "log_level: trace\n");
  write_text(f->env_path, "log_level: debug\n");
  write_text(f->etc_path, "log_level: error\n");
}

static host_config_t *
resolve_ok(struct fixture *f, const char *explicit_path, const char *env_value, const char *binary)
{
  host_config_t *c = NULL;
  cshim_error_t err = NULL;

  if (host_config_resolve(explicit_path, env_value, binary, f->etc, PLUGIN_DIR, &c, &err) < 0)
    fail_msg("unexpected error: %s", err->msg);
  return c;
}

static void
test_config_resolve_prefers_explicit_path(void **state)
{
  struct fixture *f = *state;
  host_config_t *c;

  write_all_three(f);
  c = resolve_ok(f, f->explicit_path, f->env_path, "/usr/bin/containerd-shim-acme-v2");
  assert_string_equal(c->source, f->explicit_path);
  assert_int_equal(c->log_level, CSHIM_LOG_TRACE);
  host_config_free(c);
}

static void
test_config_resolve_uses_env_without_explicit_path(void **state)
{
  struct fixture *f = *state;
  host_config_t *c;

  write_all_three(f);
  c = resolve_ok(f, NULL, f->env_path, "containerd-shim-acme-v2");
  assert_string_equal(c->source, f->env_path);
  assert_int_equal(c->log_level, CSHIM_LOG_DEBUG);
  host_config_free(c);
  /* An empty value means "not given". */
  c = resolve_ok(f, "", f->env_path, "containerd-shim-acme-v2");
  assert_string_equal(c->source, f->env_path);
  host_config_free(c);
}

static void
test_config_resolve_uses_etc_file_named_after_binary(void **state)
{
  struct fixture *f = *state;
  host_config_t *c;

  write_all_three(f);
  c = resolve_ok(f, NULL, NULL, "/usr/local/bin/containerd-shim-acme-v2");
  assert_string_equal(c->source, f->etc_path);
  assert_int_equal(c->log_level, CSHIM_LOG_ERROR);
  host_config_free(c);
  c = resolve_ok(f, "", "", "containerd-shim-acme-v2");
  assert_string_equal(c->source, f->etc_path);
  host_config_free(c);
}

static void
test_config_resolve_falls_back_to_embedded_default(void **state)
{
  struct fixture *f = *state;
  host_config_t *c;

  /* No acme.yaml in etc. */
  c = resolve_ok(f, NULL, NULL, "containerd-shim-acme-v2");
  assert_string_equal(c->source, "<embedded>");
  assert_default_modules(c);
  host_config_free(c);

  /* A binary that is not named containerd-shim-<name>-v2 never reads etc. */
  write_all_three(f);
  c = resolve_ok(f, NULL, NULL, "cshim");
  assert_string_equal(c->source, "<embedded>");
  host_config_free(c);

  /* No etc directory at all. */
  c = NULL;
  {
    cshim_error_t err = NULL;

    assert_int_equal(
        host_config_resolve(NULL, NULL, "containerd-shim-acme-v2", NULL, PLUGIN_DIR, &c, &err), 0);
  }
  assert_string_equal(c->source, "<embedded>");
  host_config_free(c);
}

static void
test_config_resolve_falls_through_when_etc_is_not_a_directory(void **state)
{
  struct fixture *f = *state;
  host_config_t *c;

  assert_int_equal(rmdir(f->etc), 0);
  write_text(f->etc, "not a directory\n");
  c = resolve_ok(f, NULL, NULL, "containerd-shim-acme-v2");
  assert_string_equal(c->source, "<embedded>");
  host_config_free(c);
}

static void
test_config_resolve_rejects_missing_explicit_path(void **state)
{
  struct fixture *f = *state;
  host_config_t *c = NULL;
  cshim_error_t err = NULL;
  cshim_autofree char *expected = NULL;

  write_text(f->env_path, "log_level: debug\n");
  write_text(f->etc_path, "log_level: error\n");
  cshim_xasprintf(
      &expected,
      "config named by the runtime options (ConfigPath): open config file `%s/missing.yaml`: "
      "No such file or directory",
      f->dir);
  {
    cshim_autofree char *missing = NULL;

    cshim_xasprintf(&missing, "%s/missing.yaml", f->dir);
    assert_int_equal(host_config_resolve(missing, f->env_path, "containerd-shim-acme-v2", f->etc,
                                         PLUGIN_DIR, &c, &err),
                     -ENOENT);
  }
  assert_null(c);
  assert_string_equal(err->msg, expected);
  assert_int_equal(err->status, -ENOENT);
  cshim_error_release(&err);
}

static void
test_config_resolve_rejects_missing_env_path(void **state)
{
  struct fixture *f = *state;
  host_config_t *c = NULL;
  cshim_error_t err = NULL;
  cshim_autofree char *missing = NULL;
  cshim_autofree char *expected = NULL;

  write_text(f->etc_path, "log_level: error\n");
  cshim_xasprintf(&missing, "%s/nope.yaml", f->dir);
  cshim_xasprintf(&expected,
                  "config named by CSHIM_CONFIG: open config file `%s`: No such file or directory",
                  missing);
  assert_int_equal(
      host_config_resolve(NULL, missing, "containerd-shim-acme-v2", f->etc, PLUGIN_DIR, &c, &err),
      -ENOENT);
  assert_null(c);
  assert_string_equal(err->msg, expected);
  cshim_error_release(&err);
}

static void
test_config_resolve_reports_bad_etc_file(void **state)
{
  struct fixture *f = *state;
  host_config_t *c = NULL;
  cshim_error_t err = NULL;
  cshim_autofree char *expected = NULL;

  /* A broken file found at step 3 is an error, never a silent fall-back to the default. */
  write_text(f->etc_path, "version: 1\nruntime: crun\n");
  cshim_xasprintf(&expected, "%s:2:1: unknown key `runtime` " KNOWN_KEYS, f->etc_path);
  assert_int_equal(
      host_config_resolve(NULL, NULL, "containerd-shim-acme-v2", f->etc, PLUGIN_DIR, &c, &err),
      -EINVAL);
  assert_null(c);
  assert_string_equal(err->msg, expected);
  cshim_error_release(&err);
}

static void
test_config_resolve_reports_unreadable_paths(void **state)
{
  struct fixture *f = *state;
  host_config_t *c = NULL;
  cshim_error_t err = NULL;
  cshim_autofree char *expected = NULL;

  /* acme.yaml is a directory: not "missing", so it does not fall through. */
  assert_int_equal(mkdir(f->etc_path, 0700), 0);
  cshim_xasprintf(&expected, "read config file `%s`: Is a directory", f->etc_path);
  assert_int_equal(
      host_config_resolve(NULL, NULL, "containerd-shim-acme-v2", f->etc, PLUGIN_DIR, &c, &err),
      -EISDIR);
  assert_string_equal(err->msg, expected);
  cshim_error_release(&err);

  free(expected);
  cshim_xasprintf(&expected, "config named by CSHIM_CONFIG: read config file `%s`: Is a directory",
                  f->dir);
  assert_int_equal(host_config_resolve(NULL, f->dir, "cshim", f->etc, PLUGIN_DIR, &c, &err),
                   -EISDIR);
  assert_string_equal(err->msg, expected);
  cshim_error_release(&err);
  assert_null(c);
  rmdir(f->etc_path);
}

static void
test_config_load_file_reads_and_names_the_file(void **state)
{
  struct fixture *f = *state;
  host_config_t *c = NULL;
  cshim_error_t err = NULL;
  cshim_autofree char *expected = NULL;

  write_text(f->explicit_path, "modules: [task.so]\nlog_level: nope\n");
  cshim_xasprintf(&expected,
                  "%s:2:12: `log_level` must be one of trace, debug, info, warn, warning, error "
                  "(found `nope`)",
                  f->explicit_path);
  assert_int_equal(host_config_load_file(f->explicit_path, PLUGIN_DIR, &c, &err), -EINVAL);
  assert_string_equal(err->msg, expected);
  cshim_error_release(&err);

  assert_int_equal(host_config_load_file("/nonexistent/cshim.yaml", PLUGIN_DIR, &c, &err), -ENOENT);
  assert_string_equal(err->msg,
                      "open config file `/nonexistent/cshim.yaml`: No such file or directory");
  cshim_error_release(&err);
  assert_null(c);

  write_text(f->explicit_path, "modules: [task.so]\n");
  assert_int_equal(host_config_load_file(f->explicit_path, PLUGIN_DIR, &c, &err), 0);
  assert_string_equal(c->source, f->explicit_path);
  assert_int_equal(c->n_modules, 1);
  host_config_free(c);
}

int
main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_config_empty_documents_give_defaults),
      cmocka_unit_test(test_config_embedded_default_parses),
      cmocka_unit_test(test_config_reads_every_key),
      cmocka_unit_test(test_config_log_levels),
      cmocka_unit_test(test_config_reads_ttrpc_limits),
      cmocka_unit_test(test_config_rejects_bad_ttrpc_limits),
      cmocka_unit_test(test_config_plugin_options_only_keep_default_modules),
      cmocka_unit_test(test_config_module_path_joins_plugin_dir),
      cmocka_unit_test(test_config_rejects_yaml_syntax_errors),
      cmocka_unit_test(test_config_rejects_unknown_top_level_keys),
      cmocka_unit_test(test_config_rejects_wrong_types),
      cmocka_unit_test(test_config_rejects_duplicate_keys),
      cmocka_unit_test(test_config_rejects_documents_that_are_not_maps),
      cmocka_unit_test(test_config_rejects_multiple_documents),
      cmocka_unit_test(test_config_rejects_odd_yaml),
      cmocka_unit_test(test_config_follows_aliases_and_str_tags),
      cmocka_unit_test(test_config_parses_in_linear_work),
      cmocka_unit_test(test_config_reports_key_locations),
      cmocka_unit_test(test_config_shim_name_from_binary),
      cmocka_unit_test_setup_teardown(test_config_resolve_prefers_explicit_path, setup_dir,
                                      teardown_dir),
      cmocka_unit_test_setup_teardown(test_config_resolve_uses_env_without_explicit_path, setup_dir,
                                      teardown_dir),
      cmocka_unit_test_setup_teardown(test_config_resolve_uses_etc_file_named_after_binary,
                                      setup_dir, teardown_dir),
      cmocka_unit_test_setup_teardown(test_config_resolve_falls_back_to_embedded_default, setup_dir,
                                      teardown_dir),
      cmocka_unit_test_setup_teardown(test_config_resolve_falls_through_when_etc_is_not_a_directory,
                                      setup_dir, teardown_dir),
      cmocka_unit_test_setup_teardown(test_config_resolve_rejects_missing_explicit_path, setup_dir,
                                      teardown_dir),
      cmocka_unit_test_setup_teardown(test_config_resolve_rejects_missing_env_path, setup_dir,
                                      teardown_dir),
      cmocka_unit_test_setup_teardown(test_config_resolve_reports_bad_etc_file, setup_dir,
                                      teardown_dir),
      cmocka_unit_test_setup_teardown(test_config_resolve_reports_unreadable_paths, setup_dir,
                                      teardown_dir),
      cmocka_unit_test_setup_teardown(test_config_load_file_reads_and_names_the_file, setup_dir,
                                      teardown_dir),
  };

  return cmocka_run_group_tests(tests, NULL, NULL);
}
