// SPDX-License-Identifier: Apache-2.0
// Unit tests of tools/cshimctl/pbjson.c: JSON request bodies into protobuf-c messages and
// messages back into JSON, after proto3's JSON mapping.
#define _GNU_SOURCE
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

#include "containerd/task/v2/shim.pb-c.h"
#include "cshim/upgrade/v1/upgrade.pb-c.h"
#include "pbjson.h"

static ProtobufCMessage *
from_text(const ProtobufCMessageDescriptor *desc, const char *text, cshim_error_t *err)
{
  json_t *j = json_loads(text, 0, NULL);
  ProtobufCMessage *m = NULL;

  assert_non_null(j);
  if (pbjson_to_message(desc, j, &m, err) < 0)
    assert_null(m);
  json_decref(j);
  return m;
}

/* The error pbjson_to_message gives for text; its message must contain want. */
static void
assert_refused(const ProtobufCMessageDescriptor *desc, const char *text, const char *want)
{
  cshim_error_t err = NULL;

  assert_null(from_text(desc, text, &err));
  assert_non_null(err);
  assert_int_equal(err->status, -EINVAL);
  if (strstr(err->msg, want) == NULL)
    fail_msg("`%s`: error `%s` lacks `%s`", text, err->msg, want);
  cshim_error_release(&err);
}

static void
test_create_request(void **state)
{
  cshim_error_t err = NULL;
  Containerd__Task__V2__CreateTaskRequest *r;
  ProtobufCMessage *m;
  cshim_autofree uint8_t *packed = NULL;
  size_t len;

  (void)state;
  m = from_text(&containerd__task__v2__create_task_request__descriptor,
                "{\"id\": \"c1\", \"bundle\": \"/run/b\", \"terminal\": true,"
                " \"rootfs\": [{\"type\": \"overlay\", \"source\": \"overlay\","
                "              \"options\": [\"lowerdir=/l\", \"ro\"]}],"
                " \"options\": {\"@type\": \"containerd.runc.v1.Options\", \"value\": \"CgE=\"}}",
                &err);
  assert_non_null(m);
  r = (Containerd__Task__V2__CreateTaskRequest *)m;
  assert_string_equal(r->id, "c1");
  assert_string_equal(r->bundle, "/run/b");
  assert_string_equal(r->stdout, "");
  assert_true(r->terminal);
  assert_int_equal(r->n_rootfs, 1);
  assert_string_equal(r->rootfs[0]->type, "overlay");
  assert_int_equal(r->rootfs[0]->n_options, 2);
  assert_string_equal(r->rootfs[0]->options[1], "ro");
  assert_string_equal(r->options->type_url, "containerd.runc.v1.Options");
  assert_int_equal(r->options->value.len, 2);
  assert_int_equal(r->options->value.data[0], 0x0a);
  assert_int_equal(r->options->value.data[1], 0x01);

  /* It packs, and unpacks to the same JSON. */
  packed = cshim_xmalloc(protobuf_c_message_get_packed_size(m));
  len = protobuf_c_message_pack(m, packed);
  protobuf_c_message_free_unpacked(m, NULL);
  m = protobuf_c_message_unpack(&containerd__task__v2__create_task_request__descriptor, NULL, len,
                                packed);
  assert_non_null(m);
  {
    json_t *j = pbjson_from_message(m, NULL, 0);
    char *text = json_dumps(j, JSON_COMPACT);
    assert_string_equal(
        text,
        "{\"id\":\"c1\",\"bundle\":\"/run/b\",\"rootfs\":[{\"type\":\"overlay\",\"source\":"
        "\"overlay\",\"target\":\"\",\"options\":[\"lowerdir=/l\",\"ro\"]}],\"terminal\":true,"
        "\"stdin\":\"\",\"stdout\":\"\",\"stderr\":\"\",\"checkpoint\":\"\","
        "\"parent_checkpoint\":\"\",\"options\":{\"@type\":\"containerd.runc.v1.Options\","
        "\"value\":\"CgE=\"}}");
    free(text);
    json_decref(j);
  }
  protobuf_c_message_free_unpacked(m, NULL);
}

static void
test_names_numbers_enums_and_times(void **state)
{
  Containerd__Task__V2__StateResponse s = CONTAINERD__TASK__V2__STATE_RESPONSE__INIT;
  Google__Protobuf__Timestamp ts = GOOGLE__PROTOBUF__TIMESTAMP__INIT;
  Containerd__Task__V2__KillRequest *k;
  Containerd__Task__V2__WaitResponse *w;
  Cshim__Upgrade__V1__UpgradeRequest *u;
  cshim_error_t err = NULL;
  json_t *j;

  (void)state;
  /* lowerCamelCase names, as proto3 JSON writes them. */
  k = (Containerd__Task__V2__KillRequest *)from_text(
      &containerd__task__v2__kill_request__descriptor,
      "{\"id\": \"c1\", \"execId\": \"e1\", \"signal\": 9, \"all\": true}", &err);
  assert_non_null(k);
  assert_string_equal(k->exec_id, "e1");
  assert_int_equal(k->signal, 9);
  assert_true(k->all);
  protobuf_c_message_free_unpacked(&k->base, NULL);

  /* 64-bit integers as decimal strings or numbers. */
  u = (Cshim__Upgrade__V1__UpgradeRequest *)from_text(
      &cshim__upgrade__v1__upgrade_request__descriptor,
      "{\"timeout_ms\": \"18446744073709551615\"}", &err);
  assert_non_null(u);
  assert_true(u->timeout_ms == UINT64_MAX);
  protobuf_c_message_free_unpacked(&u->base, NULL);
  u = (Cshim__Upgrade__V1__UpgradeRequest *)from_text(
      &cshim__upgrade__v1__upgrade_request__descriptor, "{\"timeoutMs\": 2500}", &err);
  assert_non_null(u);
  assert_int_equal(u->timeout_ms, 2500);
  j = pbjson_from_message(&u->base, NULL, 0);
  assert_string_equal(json_string_value(json_object_get(j, "timeout_ms")), "2500");
  json_decref(j);
  j = pbjson_from_message(&u->base, NULL, PBJSON_INT64_AS_NUMBER);
  assert_int_equal(json_integer_value(json_object_get(j, "timeout_ms")), 2500);
  json_decref(j);
  protobuf_c_message_free_unpacked(&u->base, NULL);

  /* Timestamps as RFC 3339 text, both ways. */
  w = (Containerd__Task__V2__WaitResponse *)from_text(
      &containerd__task__v2__wait_response__descriptor,
      "{\"exit_status\": 137, \"exited_at\": \"2026-12-02T13:00:01.5Z\"}", &err);
  assert_non_null(w);
  assert_int_equal(w->exit_status, 137);
  assert_int_equal(w->exited_at->seconds, 1796216401);
  assert_int_equal(w->exited_at->nanos, 500000000);
  protobuf_c_message_free_unpacked(&w->base, NULL);

  /* Enums by name. */
  s.id = "c1";
  s.status = CONTAINERD__V1__TYPES__STATUS__RUNNING;
  ts.seconds = 1796216401;
  s.exited_at = &ts;
  j = pbjson_from_message(&s.base, NULL, 0);
  assert_string_equal(json_string_value(json_object_get(j, "status")), "RUNNING");
  assert_string_equal(json_string_value(json_object_get(j, "exited_at")), "2026-12-02T13:00:01Z");
  assert_int_equal(json_integer_value(json_object_get(j, "pid")), 0);
  json_decref(j);
  {
    Containerd__Task__V2__StateResponse *back = (Containerd__Task__V2__StateResponse *)from_text(
        &containerd__task__v2__state_response__descriptor, "{\"status\": \"PAUSED\"}", &err);
    assert_non_null(back);
    assert_int_equal(back->status, CONTAINERD__V1__TYPES__STATUS__PAUSED);
    protobuf_c_message_free_unpacked(&back->base, NULL);
  }
}

static void
test_refusals(void **state)
{
  const ProtobufCMessageDescriptor *create = &containerd__task__v2__create_task_request__descriptor;
  const ProtobufCMessageDescriptor *kill = &containerd__task__v2__kill_request__descriptor;

  (void)state;
  assert_refused(kill, "[1]", "expected a JSON object");
  assert_refused(kill, "{\"nope\": 1}", "`nope`: no such field in containerd.task.v2.KillRequest");
  assert_refused(kill, "{\"signal\": -1}", "`signal`: expected an unsigned 32-bit integer");
  assert_refused(kill, "{\"signal\": 4294967296}", "`signal`");
  assert_refused(kill, "{\"signal\": 1.5}", "`signal`");
  assert_refused(kill, "{\"id\": 7}", "`id`: expected a string");
  assert_refused(kill, "{\"all\": 1}", "`all`: expected true or false");
  assert_refused(kill, "{\"exec_id\": \"a\", \"execId\": \"b\"}", "field given twice");
  assert_refused(&containerd__task__v2__state_response__descriptor, "{\"status\": \"NOPE\"}",
                 "`status`: expected a value of the enum");
  assert_refused(&containerd__task__v2__wait_response__descriptor, "{\"exited_at\": \"yesterday\"}",
                 "`exited_at`: expected RFC 3339");
  assert_refused(&cshim__upgrade__v1__upgrade_request__descriptor, "{\"timeout_ms\": \"12x\"}",
                 "`timeout_ms`");
  /* Failing deep inside a list after earlier elements were built: nothing leaks (asan). */
  assert_refused(create,
                 "{\"id\": \"c1\", \"rootfs\": [{\"type\": \"bind\"}, {\"type\": \"bind\","
                 " \"options\": [\"ro\", 5]}]}",
                 "`rootfs[1].options[1]`: expected a string");
  assert_refused(create, "{\"options\": {\"@type\": \"x\", \"value\": \"!!\"}}",
                 "`options`: expected base64");
  assert_refused(create, "{\"rootfs\": {}}", "`rootfs`: expected a list");
}

static void
test_descriptor_symbol(void **state)
{
  static const char *const cases[][2] = {
      {"acme.greeter.v1.Greeter", "acme__greeter__v1__greeter__descriptor"},
      {"containerd.task.v2.Task", "containerd__task__v2__task__descriptor"},
      {"containerd.services.events.ttrpc.v1.Events",
       "containerd__services__events__ttrpc__v1__events__descriptor"},
      {"io.containerd.cgroups.v2.HugeTlbStat",
       "io__containerd__cgroups__v2__huge_tlb_stat__descriptor"},
      {"io.containerd.cgroups.v1.CPUStat", "io__containerd__cgroups__v1__cpustat__descriptor"},
      {"a.V2Thing", "a__v2_thing__descriptor"},
  };

  (void)state;
  for (size_t i = 0; i < CSHIM_N_ELEMENTS(cases); i++) {
    cshim_autofree char *symbol = pbjson_descriptor_symbol(cases[i][0]);
    assert_string_equal(symbol, cases[i][1]);
  }
}

int
main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_create_request),
      cmocka_unit_test(test_names_numbers_enums_and_times),
      cmocka_unit_test(test_refusals),
      cmocka_unit_test(test_descriptor_symbol),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
