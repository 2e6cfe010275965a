// SPDX-License-Identifier: Apache-2.0
// Tests of host/registry.c: containerd/plugin's own Graph and Register test vectors, ported.
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <cshim/util.h>

#include "registry.h"

/* Plugin types as containerd's tests name them (containerd/plugin plugin_test.go constants,
   containerd 1.6 plugin/plugin.go). */
#define INTERNAL "io.containerd.internal.v1"
#define RUNTIME "io.containerd.runtime.v1"
#define RUNTIME_V2 "io.containerd.runtime.v2"
#define SERVICE "io.containerd.service.v1"
#define GRPC "io.containerd.grpc.v1"
#define SNAPSHOT "io.containerd.snapshotter.v1"
#define MONITOR "io.containerd.monitor.v1"
#define DIFF "io.containerd.differ.v1"
#define METADATA "io.containerd.metadata.v1"
#define CONTENT "io.containerd.content.v1"
#define GC "io.containerd.gc.v1"
#define LEASE "io.containerd.lease.v1"
#define TRACING_PROCESSOR "io.containerd.tracing.processor.v1"

#define REQ(...) ((const char *const[]){__VA_ARGS__, NULL})

static void
assert_order(const host_registry_entry_t *entries, size_t n, const bool *disabled,
             const char *const *expected_uris, size_t n_expected)
{
  cshim_autofree size_t *order = cshim_xmalloc((n + 1) * sizeof(*order));
  cshim_error_t err = NULL;
  size_t n_order = 12345;
  int ret;

  ret = host_registry_sort(entries, n, disabled, order, &n_order, &err);
  if (ret < 0)
    fail_msg("sort failed: %s", err->msg);
  assert_int_equal(n_order, n_expected);
  for (size_t i = 0; i < n_order; i++) {
    char uri[256];
    snprintf(uri, sizeof uri, "%s.%s", entries[order[i]].type, entries[order[i]].id);
    if (strcmp(uri, expected_uris[i]) != 0)
      fail_msg("position %zu: expected %s, got %s", i, expected_uris[i], uri);
  }
}

static void
assert_sort_fails(const host_registry_entry_t *entries, size_t n, int expected_errno,
                  const char *expected_msg)
{
  size_t order[64];
  size_t n_order = 0;
  cshim_error_t err = NULL;
  int ret;

  assert_true(n <= CSHIM_N_ELEMENTS(order));
  ret = host_registry_sort(entries, n, NULL, order, &n_order, &err);
  assert_int_equal(ret, -expected_errno);
  assert_non_null(err);
  assert_string_equal(err->msg, expected_msg);
  cshim_error_release(&err);
}

/* containerd/plugin (main) plugin_test.go: testRegistry() and TestContainerdPlugin. */
static const host_registry_entry_t containerd_registry[] = {
    {MONITOR, "cgroups", NULL},
    {SERVICE, "tasks-service", REQ(RUNTIME, RUNTIME_V2, METADATA, MONITOR)},
    {SERVICE, "introspection-service", NULL},
    {SERVICE, "namespaces-service", REQ(METADATA)},
    {GRPC, "namespaces", REQ(SERVICE)},
    {GRPC, "content", REQ(SERVICE)},
    {GRPC, "containers", REQ(SERVICE)},
    {SERVICE, "containers-service", REQ(METADATA)},
    {GRPC, "events", NULL},
    {GRPC, "leases", REQ(LEASE)},
    {LEASE, "manager", REQ(METADATA)},
    {GRPC, "diff", REQ(SERVICE)},
    {SERVICE, "diff-service", REQ(DIFF)},
    {SERVICE, "snapshots-service", REQ(METADATA)},
    {GRPC, "snapshots", REQ(SERVICE)},
    {GRPC, "version", NULL},
    {GRPC, "images", REQ(SERVICE)},
    {GC, "scheduler", REQ(METADATA)},
    {RUNTIME_V2, "task", REQ(METADATA)},
    {GRPC, "tasks", REQ(SERVICE)},
    {GRPC, "introspection", REQ("*")},
    {SERVICE, "content-service", REQ(METADATA)},
    {GRPC, "healthcheck", NULL},
    {INTERNAL, "opt", NULL},
    {GRPC, "cri", REQ(SERVICE)},
    {RUNTIME, "linux", REQ(METADATA)},
    {INTERNAL, "restart", REQ(SERVICE)},
    {DIFF, "walking", REQ(METADATA)},
    {SNAPSHOT, "native", NULL},
    {SNAPSHOT, "overlayfs", NULL},
    {CONTENT, "content", NULL},
    {METADATA, "bolt", REQ(CONTENT, SNAPSHOT)},
    {TRACING_PROCESSOR, "otlp", NULL},
    {INTERNAL, "tracing", REQ(TRACING_PROCESSOR)},
};

static const char *const containerd_expected[] = {
    "io.containerd.monitor.v1.cgroups",
    "io.containerd.content.v1.content",
    "io.containerd.snapshotter.v1.native",
    "io.containerd.snapshotter.v1.overlayfs",
    "io.containerd.metadata.v1.bolt",
    "io.containerd.runtime.v1.linux",
    "io.containerd.runtime.v2.task",
    "io.containerd.service.v1.tasks-service",
    "io.containerd.service.v1.introspection-service",
    "io.containerd.service.v1.namespaces-service",
    "io.containerd.service.v1.containers-service",
    "io.containerd.differ.v1.walking",
    "io.containerd.service.v1.diff-service",
    "io.containerd.service.v1.snapshots-service",
    "io.containerd.service.v1.content-service",
    "io.containerd.grpc.v1.namespaces",
    "io.containerd.grpc.v1.content",
    "io.containerd.grpc.v1.containers",
    "io.containerd.grpc.v1.events",
    "io.containerd.lease.v1.manager",
    "io.containerd.grpc.v1.leases",
    "io.containerd.grpc.v1.diff",
    "io.containerd.grpc.v1.snapshots",
    "io.containerd.grpc.v1.version",
    "io.containerd.grpc.v1.images",
    "io.containerd.gc.v1.scheduler",
    "io.containerd.grpc.v1.tasks",
    "io.containerd.grpc.v1.healthcheck",
    "io.containerd.internal.v1.opt",
    "io.containerd.grpc.v1.cri",
    "io.containerd.internal.v1.restart",
    "io.containerd.tracing.processor.v1.otlp",
    "io.containerd.internal.v1.tracing",
    "io.containerd.grpc.v1.introspection",
};

static void
test_registry_orders_containerd_plugins_like_graph(void **state)
{
  (void)state;
  assert_order(containerd_registry, CSHIM_N_ELEMENTS(containerd_registry), NULL,
               containerd_expected, CSHIM_N_ELEMENTS(containerd_expected));
}

/* containerd 1.6 plugin/plugin_test.go: TestContainerdPlugin (leases requires the service type
   there, and there is no lease manager or tracing plugin). */
static const host_registry_entry_t containerd16_registry[] = {
    {MONITOR, "cgroups", NULL},
    {SERVICE, "tasks-service", REQ(RUNTIME, RUNTIME_V2, METADATA, MONITOR)},
    {SERVICE, "introspection-service", NULL},
    {SERVICE, "namespaces-service", REQ(METADATA)},
    {GRPC, "namespaces", REQ(SERVICE)},
    {GRPC, "content", REQ(SERVICE)},
    {GRPC, "containers", REQ(SERVICE)},
    {SERVICE, "containers-service", REQ(METADATA)},
    {GRPC, "events", NULL},
    {GRPC, "leases", REQ(SERVICE)},
    {SERVICE, "leases-service", REQ(METADATA)},
    {GRPC, "diff", REQ(SERVICE)},
    {SERVICE, "diff-service", REQ(DIFF)},
    {SERVICE, "snapshots-service", REQ(METADATA)},
    {GRPC, "snapshots", REQ(SERVICE)},
    {GRPC, "version", NULL},
    {GRPC, "images", REQ(SERVICE)},
    {GC, "scheduler", REQ(METADATA)},
    {RUNTIME_V2, "task", REQ(METADATA)},
    {GRPC, "tasks", REQ(SERVICE)},
    {GRPC, "introspection", REQ("*")},
    {SERVICE, "content-service", REQ(METADATA)},
    {GRPC, "healthcheck", NULL},
    {INTERNAL, "opt", NULL},
    {GRPC, "cri", REQ(SERVICE)},
    {RUNTIME, "linux", REQ(METADATA)},
    {INTERNAL, "restart", REQ(SERVICE)},
    {DIFF, "walking", REQ(METADATA)},
    {SNAPSHOT, "native", NULL},
    {SNAPSHOT, "overlayfs", NULL},
    {CONTENT, "content", NULL},
    {METADATA, "bolt", REQ(CONTENT, SNAPSHOT)},
};

static const char *const containerd16_expected[] = {
    "io.containerd.monitor.v1.cgroups",
    "io.containerd.content.v1.content",
    "io.containerd.snapshotter.v1.native",
    "io.containerd.snapshotter.v1.overlayfs",
    "io.containerd.metadata.v1.bolt",
    "io.containerd.runtime.v1.linux",
    "io.containerd.runtime.v2.task",
    "io.containerd.service.v1.tasks-service",
    "io.containerd.service.v1.introspection-service",
    "io.containerd.service.v1.namespaces-service",
    "io.containerd.service.v1.containers-service",
    "io.containerd.service.v1.leases-service",
    "io.containerd.differ.v1.walking",
    "io.containerd.service.v1.diff-service",
    "io.containerd.service.v1.snapshots-service",
    "io.containerd.service.v1.content-service",
    "io.containerd.grpc.v1.namespaces",
    "io.containerd.grpc.v1.content",
    "io.containerd.grpc.v1.containers",
    "io.containerd.grpc.v1.events",
    "io.containerd.grpc.v1.leases",
    "io.containerd.grpc.v1.diff",
    "io.containerd.grpc.v1.snapshots",
    "io.containerd.grpc.v1.version",
    "io.containerd.grpc.v1.images",
    "io.containerd.gc.v1.scheduler",
    "io.containerd.grpc.v1.tasks",
    "io.containerd.grpc.v1.healthcheck",
    "io.containerd.internal.v1.opt",
    "io.containerd.grpc.v1.cri",
    "io.containerd.internal.v1.restart",
    "io.containerd.grpc.v1.introspection",
};

static void
test_registry_orders_containerd16_plugins_like_graph(void **state)
{
  (void)state;
  assert_order(containerd16_registry, CSHIM_N_ELEMENTS(containerd16_registry), NULL,
               containerd16_expected, CSHIM_N_ELEMENTS(containerd16_expected));
}

/* TestPluginGraph (containerd/plugin main and containerd 1.6), case "test requires *". */
static void
test_registry_puts_requires_all_after_others(void **state)
{
  const host_registry_entry_t entries[] = {
      {"grpc", "introspection", REQ("*")},
      {"service", "container", NULL},
  };
  static const char *const expected[] = {"service.container", "grpc.introspection"};
  (void)state;
  assert_order(entries, 2, NULL, expected, 2);
}

/* TestPluginGraph, case "test requires". */
static void
test_registry_orders_required_types_first(void **state)
{
  const host_registry_entry_t entries[] = {
      {"service", "container", REQ("metadata")},
      {"metadata", "bolt", NULL},
  };
  static const char *const expected[] = {"metadata.bolt", "service.container"};
  (void)state;
  assert_order(entries, 2, NULL, expected, 2);
}

/* TestPluginGraph, the case after "test requires": requirements in their listed order. */
static void
test_registry_orders_requirements_in_listed_order(void **state)
{
  const host_registry_entry_t entries[] = {
      {"metadata", "bolt", REQ("content", "snapshotter")},
      {"snapshotter", "overlayfs", NULL},
      {"content", "content", NULL},
  };
  static const char *const expected[] = {"content.content", "snapshotter.overlayfs",
                                         "metadata.bolt"};
  (void)state;
  assert_order(entries, 3, NULL, expected, 3);
}

/* TestPluginGraph, case "test disable" (a filter in main, Registration.Disable in 1.6). */
static void
test_registry_leaves_out_disabled_plugins(void **state)
{
  const host_registry_entry_t entries[] = {
      {"content", "content", NULL},
      {"disable", "disable", NULL},
  };
  static const bool disabled[] = {false, true};
  static const char *const expected[] = {"content.content"};
  (void)state;
  assert_order(entries, 2, disabled, expected, 1);
}

/* containerd/plugin main: TestRequiresAll. */
static void
test_registry_requires_all_waits_for_later_registrations(void **state)
{
  const host_registry_entry_t entries[] = {
      {INTERNAL, "system", NULL},
      {SERVICE, "introspection", REQ("*")},
      {SERVICE, "task", REQ(INTERNAL)},
      {SERVICE, "version", NULL},
  };
  static const char *const expected[] = {
      "io.containerd.internal.v1.system",
      "io.containerd.service.v1.task",
      "io.containerd.service.v1.version",
      "io.containerd.service.v1.introspection",
  };
  (void)state;
  assert_order(entries, 4, NULL, expected, 4);
}

/* TestRegisterErrors "duplicate". */
static void
test_registry_rejects_duplicate_registration(void **state)
{
  const host_registry_entry_t entries[] = {
      {MONITOR, "cgroups", NULL},
      {MONITOR, "cgroups", NULL},
  };
  (void)state;
  assert_sort_fails(entries, 2, EEXIST,
                    "plugin `io.containerd.monitor.v1.cgroups`: id already registered");
}

/* TestRegisterErrors "circular". */
static void
test_registry_rejects_dependency_loop(void **state)
{
  const host_registry_entry_t entries[] = {
      {INTERNAL, "p1", REQ(RUNTIME)},
      {RUNTIME, "p2", REQ(INTERNAL)},
      {INTERNAL, "p3", NULL},
  };
  (void)state;
  assert_sort_fails(entries, 3, ELOOP,
                    "plugin dependency loop detected: io.containerd.internal.v1.p1 -> "
                    "io.containerd.runtime.v1.p2 -> io.containerd.internal.v1.p1");
}

/* TestRegisterErrors "self" (2.x rejects what 1.6 accepted). */
static void
test_registry_rejects_requiring_own_type(void **state)
{
  const host_registry_entry_t entries[] = {
      {INTERNAL, "p1", REQ(INTERNAL)},
  };
  (void)state;
  assert_sort_fails(entries, 1, EINVAL,
                    "plugin `io.containerd.internal.v1.p1`: invalid requires: requires its own "
                    "type");
}

/* TestRegisterErrors "no-type". */
static void
test_registry_rejects_empty_type(void **state)
{
  const host_registry_entry_t entries[] = {
      {"", "p1", NULL},
  };
  (void)state;
  assert_sort_fails(entries, 1, EINVAL, "plugin: no type (id `p1`)");
}

/* TestRegisterErrors "no-ID". */
static void
test_registry_rejects_empty_id(void **state)
{
  const host_registry_entry_t entries[] = {
      {INTERNAL, "", NULL},
  };
  (void)state;
  assert_sort_fails(entries, 1, EINVAL, "plugin: no id (type `io.containerd.internal.v1`)");
}

/* TestRegisterErrors "bad-requires-all". */
static void
test_registry_rejects_requires_all_combined(void **state)
{
  const host_registry_entry_t entries[] = {
      {INTERNAL, "p1", REQ("*", INTERNAL)},
  };
  (void)state;
  assert_sort_fails(entries, 1, EINVAL,
                    "plugin `io.containerd.internal.v1.p1`: invalid requires: `*` combined with "
                    "other types");
}

static void
test_registry_rejects_empty_requirement(void **state)
{
  const host_registry_entry_t entries[] = {
      {"a", "x", REQ("b", "")},
  };
  (void)state;
  assert_sort_fails(entries, 1, EINVAL, "plugin `a.x`: invalid requires: empty type");
}

static void
test_registry_validate_accepts_well_formed_entries(void **state)
{
  cshim_error_t err = NULL;
  (void)state;
  assert_int_equal(
      host_registry_validate(containerd_registry, CSHIM_N_ELEMENTS(containerd_registry), &err), 0);
  assert_null(err);
}

/* 2.x Graph: a requirement nobody registered is the InitFn's problem, not the graph's. */
static void
test_registry_accepts_requirement_nobody_provides(void **state)
{
  const host_registry_entry_t entries[] = {
      {"a", "x", REQ("missing")},
      {"b", "y", NULL},
  };
  static const char *const expected[] = {"a.x", "b.y"};
  (void)state;
  assert_order(entries, 2, NULL, expected, 2);
}

static void
test_registry_visits_every_plugin_of_a_required_type_in_registration_order(void **state)
{
  const host_registry_entry_t entries[] = {
      {"user", "u", REQ("lib")}, {"other", "o", NULL}, {"lib", "second", REQ("base")},
      {"lib", "first", NULL},    {"base", "b", NULL},
  };
  static const char *const expected[] = {"base.b", "lib.second", "lib.first", "user.u", "other.o"};
  (void)state;
  assert_order(entries, 5, NULL, expected, 5);
}

static void
test_registry_names_three_plugin_loop(void **state)
{
  const host_registry_entry_t entries[] = {
      {"free", "f", NULL},
      {"a", "x", REQ("b")},
      {"b", "y", REQ("c")},
      {"c", "z", REQ("a")},
  };
  (void)state;
  assert_sort_fails(entries, 4, ELOOP, "plugin dependency loop detected: a.x -> b.y -> c.z -> a.x");
}

/* With 2.x's loop detection a "*" plugin can not itself be required by anyone. */
static void
test_registry_rejects_requiring_a_requires_all_plugin(void **state)
{
  const host_registry_entry_t entries[] = {
      {"debug", "d", REQ("*")},
      {"task", "t", REQ("debug")},
  };
  (void)state;
  assert_sort_fails(entries, 2, ELOOP,
                    "plugin dependency loop detected: debug.d -> task.t -> debug.d");
}

static void
test_registry_rejects_two_requires_all_plugins(void **state)
{
  const host_registry_entry_t entries[] = {
      {"one", "a", REQ("*")},
      {"two", "b", REQ("*")},
  };
  (void)state;
  assert_sort_fails(entries, 2, ELOOP, "plugin dependency loop detected: one.a -> two.b -> one.a");
}

static void
test_registry_skips_disabled_requirements_and_their_loops(void **state)
{
  const host_registry_entry_t entries[] = {
      {"a", "x", REQ("b")},
      {"b", "off", REQ("a")},
      {"b", "on", NULL},
  };
  static const bool disabled[] = {false, true, false};
  static const char *const expected[] = {"b.on", "a.x"};
  (void)state;
  assert_order(entries, 3, disabled, expected, 2);
}

static void
test_registry_sorts_empty_list(void **state)
{
  size_t order[1];
  size_t n_order = 99;
  cshim_error_t err = NULL;
  (void)state;
  assert_int_equal(host_registry_sort(NULL, 0, NULL, order, &n_order, &err), 0);
  assert_int_equal(n_order, 0);
}

int
main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_registry_orders_containerd_plugins_like_graph),
      cmocka_unit_test(test_registry_orders_containerd16_plugins_like_graph),
      cmocka_unit_test(test_registry_puts_requires_all_after_others),
      cmocka_unit_test(test_registry_orders_required_types_first),
      cmocka_unit_test(test_registry_orders_requirements_in_listed_order),
      cmocka_unit_test(test_registry_leaves_out_disabled_plugins),
      cmocka_unit_test(test_registry_requires_all_waits_for_later_registrations),
      cmocka_unit_test(test_registry_rejects_duplicate_registration),
      cmocka_unit_test(test_registry_rejects_dependency_loop),
      cmocka_unit_test(test_registry_rejects_requiring_own_type),
      cmocka_unit_test(test_registry_rejects_empty_type),
      cmocka_unit_test(test_registry_rejects_empty_id),
      cmocka_unit_test(test_registry_rejects_requires_all_combined),
      cmocka_unit_test(test_registry_rejects_empty_requirement),
      cmocka_unit_test(test_registry_validate_accepts_well_formed_entries),
      cmocka_unit_test(test_registry_accepts_requirement_nobody_provides),
      cmocka_unit_test(test_registry_visits_every_plugin_of_a_required_type_in_registration_order),
      cmocka_unit_test(test_registry_names_three_plugin_loop),
      cmocka_unit_test(test_registry_rejects_requiring_a_requires_all_plugin),
      cmocka_unit_test(test_registry_rejects_two_requires_all_plugins),
      cmocka_unit_test(test_registry_skips_disabled_requirements_and_their_loops),
      cmocka_unit_test(test_registry_sorts_empty_list),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
