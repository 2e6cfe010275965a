// SPDX-License-Identifier: Apache-2.0
// Tests of plugins/tracing/span.c: W3C traceparent, ids, the bounded queue and its drop
// counter, the OTLP encoding (decoded back with the generated code), the endpoint rules.
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tracing.h"

#include "opentelemetry/proto/collector/trace/v1/trace_service.pb-c.h"

#include <cmocka.h>

static const char valid[] = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

static void
test_traceparent_parses_a_valid_header(void **state)
{
  uint8_t t[16], s[8], f = 0;
  static const uint8_t want_t[16] = {0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6,
                                     0xa3, 0xce, 0x92, 0x9d, 0x0e, 0x0e, 0x47, 0x36};
  static const uint8_t want_s[8] = {0x00, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7};
  (void)state;

  assert_int_equal(tracing_traceparent_parse(valid, t, s, &f), 0);
  assert_memory_equal(t, want_t, 16);
  assert_memory_equal(s, want_s, 8);
  assert_int_equal(f, 1);
  assert_int_equal(tracing_traceparent_parse(
                       "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00", t, s, &f),
                   0);
  assert_int_equal(f, 0);
}

static void
test_traceparent_refuses_malformed_headers(void **state)
{
  static const char *const bad[] = {
      "",
      "00",
      "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0",   /* short */
      "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-011", /* v00 is exactly 55 */
      "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7_01",  /* separator */
      "00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
      "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01", /* upper case */
      "00-4bf92f3577b34da6a3ce929d0e0e473g-00f067aa0ba902b7-01", /* not hex */
      "0x-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
      "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",  /* version ff */
      "00-00000000000000000000000000000000-00f067aa0ba902b7-01",  /* zero trace id */
      "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",  /* zero span id */
      "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01x", /* more, without '-' */
  };
  uint8_t t[16], s[8], f = 7;
  (void)state;

  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    if (tracing_traceparent_parse(bad[i], t, s, &f) != -EINVAL)
      fail_msg("accepted `%s`", bad[i]);
  }
  assert_int_equal(tracing_traceparent_parse(NULL, t, s, &f), -EINVAL);
  assert_int_equal(f, 7); /* untouched on failure */
}

static void
test_traceparent_accepts_a_later_version_with_more_fields(void **state)
{
  uint8_t t[16], s[8], f;
  (void)state;

  assert_int_equal(
      tracing_traceparent_parse("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-what-ever",
                                t, s, &f),
      0);
  assert_int_equal(tracing_traceparent_parse(
                       "cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", t, s, &f),
                   0);
}

static void
test_traceparent_format_round_trips(void **state)
{
  uint8_t t[16], s[8], f;
  char buf[CSHIM_TRACEPARENT_LEN + 1];
  (void)state;

  assert_int_equal(tracing_traceparent_parse(valid, t, s, &f), 0);
  tracing_traceparent_format(t, s, f, buf);
  assert_string_equal(buf, valid);
}

static void
test_random_ids_are_never_zero_and_differ(void **state)
{
  uint8_t a[16], b[16], zero[16] = {0};
  (void)state;

  tracing_random_id(a, sizeof a);
  tracing_random_id(b, sizeof b);
  assert_memory_not_equal(a, zero, 16);
  assert_memory_not_equal(a, b, 16);
}

static void
test_queue_drops_past_its_bound_and_counts(void **state)
{
  tracing_queue_t q = {.max = 3};
  cshim_list_t list = {0}, none = {0};
  size_t n;
  (void)state;

  for (int i = 0; i < 5; i++) {
    char name[8];
    snprintf(name, sizeof name, "s%d", i);
    (void)tracing_queue_push(&q, tracing_span_new(name, TRACING_KIND_INTERNAL));
  }
  assert_int_equal(q.n, 3);
  assert_int_equal(q.accepted, 3);
  assert_int_equal(q.dropped, 2);

  tracing_queue_take(&q, 2, &list, &n);
  assert_int_equal(n, 2);
  assert_int_equal(cshim_list_length(&list), 2);
  assert_string_equal(cshim_list_entry(cshim_list_first(&list), tracing_span_t, link)->name,
                      "s0"); /* oldest first */
  assert_string_equal(cshim_list_entry(cshim_list_last(&list), tracing_span_t, link)->name, "s1");
  assert_int_equal(q.n, 1);
  assert_int_equal(cshim_list_length(&q.spans), 1);
  tracing_span_list_free(&list);
  assert_true(cshim_list_empty(&list));

  assert_true(tracing_queue_push(&q, tracing_span_new("s5", TRACING_KIND_INTERNAL)));
  tracing_queue_clear(&q); /* what is left counts as dropped */
  assert_int_equal(q.n, 0);
  assert_int_equal(q.dropped, 4);
  tracing_queue_take(&q, 10, &none, &n);
  assert_true(cshim_list_empty(&none));
  assert_int_equal(n, 0);
}

static void
test_span_attributes_are_bounded(void **state)
{
  tracing_span_t *s = tracing_span_new("x", TRACING_KIND_INTERNAL);
  char key[16];
  (void)state;

  for (unsigned i = 0; i < TRACING_MAX_ATTRS + 3; i++) {
    snprintf(key, sizeof key, "k%u", i);
    tracing_span_set_attr(s, key, "v");
  }
  tracing_span_set_attr(s, "k0", "again"); /* an existing key is replaced, not added */
  assert_int_equal(s->n_attrs, TRACING_MAX_ATTRS);
  assert_int_equal(s->dropped_attrs, 3);
  assert_string_equal(s->attrs[0].value, "again");
  tracing_span_free(s);
}

static void
test_encode_round_trips_through_the_otlp_messages(void **state)
{
  tracing_span_t *a = tracing_span_new("containerd.task.v2.Task/Create", TRACING_KIND_SERVER);
  tracing_span_t *b = tracing_span_new("runc create", TRACING_KIND_INTERNAL);
  Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceRequest *m;
  const Opentelemetry__Proto__Trace__V1__Span *sa, *sb;
  uint8_t *buf;
  size_t len;
  cshim_list_t list = {0};
  (void)state;

  tracing_random_id(a->trace_id, 16);
  memcpy(b->trace_id, a->trace_id, 16);
  memcpy(b->parent_id, a->span_id, 8);
  b->has_parent = true;
  tracing_span_set_attr(a, "container.id", "c1");
  tracing_span_set_int(a, "rpc.grpc.status_code", 5);
  a->error = true;
  a->status_message = strdup("not found");
  a->end_unix_ns = a->start_unix_ns + 1000;
  b->end_unix_ns = b->start_unix_ns + 10;
  cshim_list_push_back(&list, &a->link);
  cshim_list_push_back(&list, &b->link);

  buf = tracing_encode("containerd-shim-cshim-v2", "ns/c1", &list, 2, &len);
  m = opentelemetry__proto__collector__trace__v1__export_trace_service_request__unpack(NULL, len,
                                                                                       buf);
  assert_non_null(m);
  assert_int_equal(m->n_resource_spans, 1);
  assert_int_equal(m->resource_spans[0]->resource->n_attributes, 2);
  assert_string_equal(m->resource_spans[0]->resource->attributes[0]->key, "service.name");
  assert_string_equal(m->resource_spans[0]->resource->attributes[0]->value->string_value,
                      "containerd-shim-cshim-v2");
  assert_string_equal(m->resource_spans[0]->resource->attributes[1]->value->string_value, "ns/c1");
  assert_int_equal(m->resource_spans[0]->n_scope_spans, 1);
  assert_string_equal(m->resource_spans[0]->scope_spans[0]->scope->name, "cshim");
  assert_int_equal(m->resource_spans[0]->scope_spans[0]->n_spans, 2);
  sa = m->resource_spans[0]->scope_spans[0]->spans[0];
  sb = m->resource_spans[0]->scope_spans[0]->spans[1];
  assert_string_equal(sa->name, "containerd.task.v2.Task/Create");
  assert_int_equal(sa->kind, OPENTELEMETRY__PROTO__TRACE__V1__SPAN__SPAN_KIND__SPAN_KIND_SERVER);
  assert_int_equal(sa->trace_id.len, 16);
  assert_memory_equal(sa->trace_id.data, a->trace_id, 16);
  assert_memory_equal(sa->span_id.data, a->span_id, 8);
  assert_int_equal(sa->parent_span_id.len, 0); /* a root */
  assert_true(sa->start_time_unix_nano == a->start_unix_ns);
  assert_true(sa->end_time_unix_nano == a->start_unix_ns + 1000);
  assert_int_equal(sa->n_attributes, 2);
  assert_string_equal(sa->attributes[0]->key, "container.id");
  assert_string_equal(sa->attributes[0]->value->string_value, "c1");
  assert_int_equal(sa->attributes[1]->value->value_case,
                   OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE);
  assert_int_equal(sa->attributes[1]->value->int_value, 5);
  assert_int_equal(sa->status->code,
                   OPENTELEMETRY__PROTO__TRACE__V1__STATUS__STATUS_CODE__STATUS_CODE_ERROR);
  assert_string_equal(sa->status->message, "not found");
  assert_string_equal(sb->name, "runc create");
  assert_int_equal(sb->parent_span_id.len, 8);
  assert_memory_equal(sb->parent_span_id.data, a->span_id, 8);
  assert_memory_equal(sb->trace_id.data, a->trace_id, 16);
  assert_int_equal(sb->status->code,
                   OPENTELEMETRY__PROTO__TRACE__V1__STATUS__STATUS_CODE__STATUS_CODE_UNSET);
  opentelemetry__proto__collector__trace__v1__export_trace_service_request__free_unpacked(m, NULL);
  free(buf);
  tracing_span_list_free(&list);
}

static void
test_endpoint_follows_the_otlp_rules(void **state)
{
  char *u;
  (void)state;

  assert_null(tracing_endpoint_from_env(NULL, NULL));
  assert_null(tracing_endpoint_from_env("", ""));
  u = tracing_endpoint_from_env(NULL, "http://collector:4318");
  assert_string_equal(u, "http://collector:4318/v1/traces");
  free(u);
  u = tracing_endpoint_from_env(NULL, "http://collector:4318/");
  assert_string_equal(u, "http://collector:4318/v1/traces");
  free(u);
  u = tracing_endpoint_from_env("http://t:1/custom", "http://collector:4318");
  assert_string_equal(u, "http://t:1/custom"); /* as given */
  free(u);
}

static void
test_headers_parse_the_otlp_format(void **state)
{
  char **h = NULL;
  cshim_error_t err = NULL;
  (void)state;

  assert_int_equal(tracing_headers_parse(NULL, &h, &err), 0);
  assert_null(h);
  assert_int_equal(tracing_headers_parse("", &h, &err), 0);
  assert_null(h);
  assert_int_equal(tracing_headers_parse("api-key=secret, X-Scope = a%20b%2Cc ,", &h, &err), 0);
  assert_non_null(h);
  assert_string_equal(h[0], "api-key: secret");
  assert_string_equal(h[1], "X-Scope: a b,c");
  assert_null(h[2]);
  tracing_headers_free(h);
}

static void
test_headers_refuse_injection_and_junk(void **state)
{
  static const char *const bad[] = {
      "novalue", "bad key=v", "k=a%0d%0aInjected: yes", "k=a%zz", "k=a%2", "=v", "k:colon=v",
  };
  char many[32 * 8 + 16] = "";
  char **h = NULL;
  cshim_error_t err = NULL;
  (void)state;

  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    if (tracing_headers_parse(bad[i], &h, &err) != -EINVAL)
      fail_msg("accepted `%s`", bad[i]);
    assert_null(h);
    cshim_error_release(&err);
  }
  for (unsigned i = 0; i <= TRACING_MAX_HEADERS; i++)
    strcat(many, "k=v,");
  assert_int_equal(tracing_headers_parse(many, &h, &err), -E2BIG);
  assert_null(h);
  cshim_error_release(&err);
}

int
main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_traceparent_parses_a_valid_header),
      cmocka_unit_test(test_traceparent_refuses_malformed_headers),
      cmocka_unit_test(test_traceparent_accepts_a_later_version_with_more_fields),
      cmocka_unit_test(test_traceparent_format_round_trips),
      cmocka_unit_test(test_random_ids_are_never_zero_and_differ),
      cmocka_unit_test(test_queue_drops_past_its_bound_and_counts),
      cmocka_unit_test(test_span_attributes_are_bounded),
      cmocka_unit_test(test_encode_round_trips_through_the_otlp_messages),
      cmocka_unit_test(test_endpoint_follows_the_otlp_rules),
      cmocka_unit_test(test_headers_parse_the_otlp_format),
      cmocka_unit_test(test_headers_refuse_injection_and_junk),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
