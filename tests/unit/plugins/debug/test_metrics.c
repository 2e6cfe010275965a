// SPDX-License-Identifier: Apache-2.0
// Tests of plugins/debug/metrics.c on its own: histogram buckets at their bounds, code
// clamping, ordering, label escaping, and a plugin without host or publisher.
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cshim/util.h>

#include "debug.h"

/* Last: cmocka defines a `fail` macro that would clash with cshim_ttrpc_call_ops_t.fail. */
#include <cmocka.h>

/* The i-th method record (the list is sorted). */
static debug_method_t *
nth(debug_metrics_t *m, size_t i)
{
  cshim_list_t *l = cshim_list_first(&m->methods);
  assert_non_null(l);
  while (i-- > 0) {
    l = l->next;
    assert_true(l != &m->methods);
  }
  return cshim_list_entry(l, debug_method_t, link);
}

static void
test_metrics_buckets_include_their_upper_bound(void **state)
{
  debug_metrics_t m = {0};
  (void)state;

  debug_metrics_observe(&m, "s", "m", 0, 1000000);      /* exactly 1 ms: the 0.001 bucket */
  debug_metrics_observe(&m, "s", "m", 0, 1000001);      /* just above: 0.0025 */
  debug_metrics_observe(&m, "s", "m", 0, 0);            /* 0: the first bucket */
  debug_metrics_observe(&m, "s", "m", 0, 31000000000u); /* 31 s: above every bound */
  assert_int_equal(m.n_methods, 1);
  assert_int_equal(nth(&m, 0)->buckets[0], 1);
  assert_int_equal(nth(&m, 0)->buckets[1], 1);
  assert_int_equal(nth(&m, 0)->buckets[2], 1);
  assert_int_equal(nth(&m, 0)->buckets[DEBUG_N_BUCKETS], 1);
  assert_int_equal(nth(&m, 0)->count, 4);
  assert_int_equal(nth(&m, 0)->sum_ns, 31000000000u + 2000001);
  debug_metrics_clear(&m);
  assert_true(cshim_list_empty(&m.methods));
  assert_int_equal(m.n_methods, 0);
}

static void
test_metrics_codes_out_of_range_count_as_unknown(void **state)
{
  debug_metrics_t m = {0};
  (void)state;

  debug_metrics_observe(&m, "s", "m", -3, 1);
  debug_metrics_observe(&m, "s", "m", 99, 1);
  debug_metrics_observe(&m, "s", "m", CSHIM_GRPC_NOT_FOUND, 1);
  assert_int_equal(nth(&m, 0)->by_code[CSHIM_GRPC_UNKNOWN], 2);
  assert_int_equal(nth(&m, 0)->by_code[CSHIM_GRPC_NOT_FOUND], 1);
  debug_metrics_clear(&m);
}

static void
test_metrics_methods_are_sorted(void **state)
{
  debug_metrics_t m = {0};
  (void)state;

  debug_metrics_observe(&m, "b", "Z", 0, 1);
  debug_metrics_observe(&m, "a", "Y", 0, 1);
  debug_metrics_observe(&m, "b", "A", 0, 1);
  debug_metrics_observe(&m, "a", "Y", 0, 1);
  assert_int_equal(m.n_methods, 3);
  assert_string_equal(nth(&m, 0)->service, "a");
  assert_int_equal(nth(&m, 0)->count, 2);
  assert_string_equal(nth(&m, 1)->method, "A");
  assert_string_equal(nth(&m, 2)->method, "Z");
  debug_metrics_clear(&m);
}

static void
test_metrics_escape_label_values(void **state)
{
  debug_t d;
  uv_loop_t loop;
  char *text;
  size_t len;
  (void)state;

  memset(&d, 0, sizeof(d));
  uv_loop_init(&loop);
  d.loop = &loop;
  debug_metrics_observe(&d.metrics, "we\"ird\\svc", "new\nline", 0, 1);
  text = debug_render_metrics(&d, &len);
  assert_int_equal(strlen(text), len);
  assert_non_null(strstr(text, "cshim_ttrpc_calls_total{service=\"we\\\"ird\\\\svc\","
                               "method=\"new\\nline\",code=\"OK\"} 1\n"));
  /* Without host or publisher: no event families, standard process states at 0. */
  assert_null(strstr(text, "cshim_events_published_total"));
  assert_non_null(strstr(text, "cshim_processes{state=\"running\"} 0\n"));
  assert_non_null(strstr(text, "cshim_info{version=\"unknown\"} 1\n"));
  free(text);
  debug_metrics_clear(&d.metrics);
  uv_loop_close(&loop);
}

static void
test_metrics_process_figures_are_real(void **state)
{
  debug_proc_stats_t ps;
  (void)state;

  debug_proc_stats(&ps);
  assert_true(ps.rss_bytes > 0);
  assert_true(ps.open_fds >= 3);
  assert_true(ps.threads >= 1);
}

int
main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_metrics_buckets_include_their_upper_bound),
      cmocka_unit_test(test_metrics_codes_out_of_range_count_as_unknown),
      cmocka_unit_test(test_metrics_methods_are_sorted),
      cmocka_unit_test(test_metrics_escape_label_values),
      cmocka_unit_test(test_metrics_process_figures_are_real),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
