// SPDX-License-Identifier: Apache-2.0
// Tests of host/ttrpc_request.c: the server's Request decoder, and its decoder of call inputs
// made only of strings, accept and refuse what protobuf-c's unpacker does and decode to the same
// fields, allocate only through the allocator they are given, and leave nothing behind when they
// refuse.
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "google/rpc/status.pb-c.h"
#include "ttrpc_request.h"

/* ---- building wire bytes ---- */

struct buf
{
  uint8_t b[4096];
  size_t n;
};

static void
put(struct buf *b, const void *p, size_t n)
{
  assert_true(b->n + n <= sizeof b->b);
  memcpy(b->b + b->n, p, n);
  b->n += n;
}

static void
put_varint(struct buf *b, uint64_t v)
{
  do {
    uint8_t c = (uint8_t)(v & 0x7f);
    v >>= 7;
    if (v)
      c |= 0x80;
    put(b, &c, 1);
  } while (v);
}

static void
put_len(struct buf *b, uint32_t field, const void *p, size_t n)
{
  put_varint(b, (uint64_t)field << 3 | 2);
  put_varint(b, n);
  put(b, p, n);
}

static void
put_str(struct buf *b, uint32_t field, const char *s)
{
  put_len(b, field, s, strlen(s));
}

static void
put_kv(struct buf *b, const char *k, const char *v)
{
  struct buf kv = {.n = 0};
  put_str(&kv, 1, k);
  put_str(&kv, 2, v);
  put_len(b, 5, kv.b, kv.n);
}

/* ---- a counting allocator: every block is given back ---- */

static long live_blocks;

static void *
count_alloc(void *data, size_t n)
{
  (void)data;
  live_blocks++;
  return malloc(n);
}

static void
count_free(void *data, void *p)
{
  (void)data;
  if (p)
    live_blocks--;
  free(p);
}

static ProtobufCAllocator counting = {.alloc = count_alloc, .free = count_free};

/* Both decoders on the same bytes: the same verdict and fields. Returns ours (or NULL). */
static Ttrpc__Request *
check_same(const uint8_t *p, size_t n)
{
  Ttrpc__Request *want = ttrpc__request__unpack(NULL, n, p);
  Ttrpc__Request *got = host_ttrpc_request_decode(&counting, n, p);

  assert_int_equal(want == NULL, got == NULL);
  if (!want)
    return NULL;
  assert_string_equal(want->service, got->service);
  assert_string_equal(want->method, got->method);
  assert_int_equal(want->payload.len, got->payload.len);
  assert_int_equal(want->payload.data == NULL, got->payload.data == NULL);
  if (want->payload.len)
    assert_memory_equal(want->payload.data, got->payload.data, want->payload.len);
  assert_int_equal(want->timeout_nano, got->timeout_nano);
  assert_int_equal(want->n_metadata, got->n_metadata);
  for (size_t i = 0; i < want->n_metadata; i++) {
    assert_string_equal(want->metadata[i]->key, got->metadata[i]->key);
    assert_string_equal(want->metadata[i]->value, got->metadata[i]->value);
  }
  ttrpc__request__free_unpacked(want, NULL);
  return got;
}

static void
release(Ttrpc__Request *r)
{
  if (r)
    ttrpc__request__free_unpacked(r, &counting);
  assert_int_equal(live_blocks, 0);
}

static void
test_state_call(void **state)
{
  struct buf b = {.n = 0}, in = {.n = 0};
  Ttrpc__Request *r;
  (void)state;

  put_str(&in, 1, "c1");
  put_str(&b, 1, "containerd.task.v2.Task");
  put_str(&b, 2, "State");
  put_len(&b, 3, in.b, in.n);
  put_varint(&b, 4 << 3);
  put_varint(&b, 5000000000u);
  put_kv(&b, "containerd-namespace-ttrpc", "k8s.io");
  put_kv(&b, "traceparent", "00-01-02-01");
  r = check_same(b.b, b.n);
  assert_non_null(r);
  assert_string_equal(r->service, "containerd.task.v2.Task");
  assert_string_equal(r->method, "State");
  assert_int_equal(r->timeout_nano, 5000000000);
  assert_int_equal(r->n_metadata, 2);
  assert_string_equal(r->metadata[1]->value, "00-01-02-01");
  release(r);
}

/* Nothing set: protobuf-c's defaults (the shared empty string, no payload, no metadata). */
static void
test_empty(void **state)
{
  Ttrpc__Request *r = check_same((const uint8_t *)"", 0);
  (void)state;

  assert_non_null(r);
  assert_ptr_equal(r->service, protobuf_c_empty_string);
  assert_null(r->payload.data);
  assert_null(r->metadata);
  release(r);
}

/* Later values win; unknown fields of every wire type are skipped, also inside metadata. */
static void
test_last_wins_and_unknown(void **state)
{
  struct buf b = {.n = 0}, kv = {.n = 0};
  Ttrpc__Request *r;
  (void)state;

  put_str(&b, 1, "first");
  put_str(&b, 1, "second");
  put_str(&b, 3, "payload");
  put_str(&b, 3, ""); /* an empty payload replaces it: no data */
  put_varint(&b, 9 << 3 | 1);
  put(&b, "12345678", 8);
  put_varint(&b, 10 << 3 | 5);
  put(&b, "1234", 4);
  put_varint(&b, 11 << 3);
  put_varint(&b, UINT64_MAX);
  put_varint(&b, (uint64_t)1000000 << 3 | 2); /* a large field number */
  put_varint(&b, 1);
  put(&b, "x", 1);
  put_str(&kv, 1, "k");
  put_varint(&kv, 7 << 3);
  put_varint(&kv, 1);
  put_len(&b, 5, kv.b, kv.n);
  put_varint(&b, 4 << 3);
  put_varint(&b, UINT64_MAX - 1); /* -2 */
  r = check_same(b.b, b.n);
  assert_non_null(r);
  assert_string_equal(r->service, "second");
  assert_int_equal(r->payload.len, 0);
  assert_null(r->payload.data);
  assert_int_equal(r->timeout_nano, -2);
  assert_string_equal(r->metadata[0]->key, "k");
  assert_ptr_equal(r->metadata[0]->value, protobuf_c_empty_string);
  release(r);
}

/* Every way the envelope is malformed is refused by both, with nothing left allocated. */
static void
test_refused(void **state)
{
  static const struct
  {
    const char *what;
    uint8_t bytes[16];
    size_t n;
  } cases[] = {
      {"field number 0", {0x02, 0x00}, 2},
      {"start group", {0x0b}, 1},
      {"end group", {0x0c}, 1},
      {"wire type 6", {0x0e, 0x00}, 2},
      {"wire type 7", {0x0f, 0x00}, 2},
      {"tag of 6 bytes", {0x88, 0x80, 0x80, 0x80, 0x80, 0x00}, 6},
      {"unterminated tag", {0x88}, 1},
      {"varint of 11 bytes",
       {0x20, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00},
       12},
      {"unterminated varint", {0x20, 0x80}, 2},
      {"length past the end", {0x0a, 0x05, 'a'}, 3},
      {"length prefix of 6 bytes", {0x0a, 0x81, 0x80, 0x80, 0x80, 0x80, 0x00}, 7},
      {"short 64-bit field", {0x49, 1, 2, 3}, 4},
      {"short 32-bit field", {0x55, 1, 2}, 3},
      {"service as a varint", {0x08, 0x01}, 2},
      {"method as 32 bits", {0x15, 1, 2, 3, 4}, 5},
      {"payload as a varint", {0x18, 0x01}, 2},
      {"timeout as bytes", {0x22, 0x00}, 2},
      {"metadata as a varint", {0x28, 0x01}, 2},
      {"metadata key as a varint", {0x2a, 0x02, 0x08, 0x01}, 4},
      {"metadata with a group", {0x2a, 0x01, 0x0b}, 3},
  };
  (void)state;

  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    Ttrpc__Request *want = ttrpc__request__unpack(NULL, cases[i].n, cases[i].bytes);
    Ttrpc__Request *got = host_ttrpc_request_decode(&counting, cases[i].n, cases[i].bytes);
    if (want || got)
      fail_msg("%s: protobuf-c %s, ours %s", cases[i].what, want ? "decodes" : "refuses",
               got ? "decodes" : "refuses");
    assert_int_equal(live_blocks, 0);
  }
}

/* Refused after the service, the payload and two metadata entries were allocated. */
static void
test_refused_late_frees_all(void **state)
{
  struct buf b = {.n = 0};
  (void)state;

  put_str(&b, 1, "svc");
  put_str(&b, 3, "payload");
  put_kv(&b, "a", "1");
  put_kv(&b, "b", "2");
  put_len(&b, 5, "\x08\x01", 2); /* a key that is a varint */
  assert_null(check_same(b.b, b.n));
  assert_int_equal(live_blocks, 0);
}

/* More metadata entries than one pass remembers: the rest are found by a second walk, in order;
   a bad one among them is refused with everything freed. */
static void
test_many_metadata(void **state)
{
  struct buf b = {.n = 0};
  Ttrpc__Request *r;
  char key[16];
  (void)state;

  put_str(&b, 2, "State");
  for (int i = 0; i < 20; i++) {
    snprintf(key, sizeof key, "k%d", i);
    put_kv(&b, key, i % 2 ? "odd" : "even");
    if (i == 10)
      put_str(&b, 1, "svc"); /* other fields between them */
  }
  r = check_same(b.b, b.n);
  assert_non_null(r);
  assert_int_equal(r->n_metadata, 20);
  assert_string_equal(r->metadata[8]->key, "k8");
  assert_string_equal(r->metadata[19]->key, "k19");
  release(r);
  put_len(&b, 5, "\x0b", 1); /* a 21st entry holding a group */
  put_kv(&b, "last", "x");
  assert_null(check_same(b.b, b.n));
  assert_int_equal(live_blocks, 0);
}

/* ---- random messages, for the differential tests ---- */

static uint64_t
next_seed(uint64_t seed)
{
  return seed * 6364136223846793005u + 1442695040888963407u;
}

/* The value of a field of wire type `wire` whose tag is already in b; a length-delimited one is
   the first (seed >> 8) % 24 bytes of filler (at least 24 bytes). */
static void
put_random_value(struct buf *b, unsigned wire, uint64_t seed, const char *filler)
{
  if (wire == 0)
    put_varint(b, seed >> (seed % 64));
  else if (wire == 1)
    put(b, "abcdefgh", 8);
  else if (wire == 5)
    put(b, "abcd", 4);
  else if (wire == 2) {
    size_t n = (seed >> 8) % 24;
    put_varint(b, n);
    put(b, filler, n);
  }
}

/* Sometimes truncate b, sometimes flip one of its bits, by the seed's top bits. */
static void
damage(struct buf *b, uint64_t seed)
{
  if (b->n > 0 && (seed >> 61) == 0)
    b->n -= 1 + (seed >> 3) % b->n; /* truncated */
  if (b->n > 0 && (seed >> 61) == 1)
    b->b[(seed >> 7) % b->n] ^= (uint8_t)(1u << ((seed >> 13) % 8)); /* a bit flipped */
}

/* Random envelopes of valid and broken fields, some truncated or with a byte flipped. */
static void
test_random_against_protobuf_c(void **state)
{
  uint64_t seed = 0x9e3779b97f4a7c15u;
  int decoded = 0, refused = 0;
  (void)state;

  for (int iter = 0; iter < 20000; iter++) {
    struct buf b = {.n = 0};
    Ttrpc__Request *r;
    int fields;

    seed = next_seed(seed);
    fields = (int)((seed >> 35) % 7);

    for (int f = 0; f < fields; f++) {
      seed = next_seed(seed);
      uint32_t num = (uint32_t)(seed >> 40) % 8;
      unsigned wire = (unsigned)(seed >> 20) % 8;
      if ((seed >> 33) % 4 != 0)
        wire = num == 4 ? 0 : 2; /* mostly the right wire type */
      if (num == 5 && wire == 2 && (seed >> 50) % 2) {
        put_kv(&b, "containerd-namespace-ttrpc", (seed >> 51) % 2 ? "default" : "");
        continue;
      }
      put_varint(&b, (uint64_t)num << 3 | wire);
      put_random_value(&b, wire, seed,
                       "\x0a\x01x\x12\x02yz\x08\x01\x2a\x00\x0b\x80\x01\x00zzzzzzzzzzzzzz");
    }
    damage(&b, seed);
    r = check_same(b.b, b.n);
    if (r)
      decoded++;
    else
      refused++;
    release(r);
  }
  /* Both verdicts were exercised many times. */
  assert_true(decoded > 2000);
  assert_true(refused > 2000);
}

/* ---- call inputs made only of strings ---- */

/* Both decoders on the same bytes as a KeyValue (two proto3 strings, as StateRequest's id and
   exec_id): the same verdict and strings; ours freed through the counting allocator. */
static bool
check_same_strings(const uint8_t *p, size_t n)
{
  ProtobufCMessage *want = protobuf_c_message_unpack(&ttrpc__key_value__descriptor, NULL, n, p);
  ProtobufCMessage *got = host_ttrpc_unpack_strings(&ttrpc__key_value__descriptor, &counting, n, p);

  assert_int_equal(want == NULL, got == NULL);
  if (want) {
    assert_string_equal(((Ttrpc__KeyValue *)want)->key, ((Ttrpc__KeyValue *)got)->key);
    assert_string_equal(((Ttrpc__KeyValue *)want)->value, ((Ttrpc__KeyValue *)got)->value);
    protobuf_c_message_free_unpacked(want, NULL);
    protobuf_c_message_free_unpacked(got, &counting);
  }
  assert_int_equal(live_blocks, 0);
  return want != NULL;
}

static void
test_strings_only(void **state)
{
  (void)state;
  assert_true(host_ttrpc_strings_only(&ttrpc__key_value__descriptor));
  /* bytes, an int64 and a repeated message among its fields */
  assert_false(host_ttrpc_strings_only(&ttrpc__request__descriptor));
  /* an int32 */
  assert_false(host_ttrpc_strings_only(&google__rpc__status__descriptor));
}

static void
test_strings_cases(void **state)
{
  struct buf b = {.n = 0};
  (void)state;

  assert_true(check_same_strings(b.b, 0)); /* empty: both strings "" */
  put_str(&b, 1, "c1");
  put_str(&b, 2, "");
  put_str(&b, 9, "unknown");
  put_str(&b, 1, "last wins");
  assert_true(check_same_strings(b.b, b.n));
  b.n = 0;
  put_varint(&b, 1 << 3 | 0); /* id as a varint */
  put_varint(&b, 7);
  assert_false(check_same_strings(b.b, b.n));
  b.n = 0;
  put_str(&b, 2, "x");
  put(&b, "\x0b", 1); /* a group */
  assert_false(check_same_strings(b.b, b.n));
  b.n = 0;
  put_str(&b, 1, "truncated");
  assert_false(check_same_strings(b.b, b.n - 1));
}

/* Random messages of valid and broken fields, some truncated or with a byte flipped. */
static void
test_strings_random_against_protobuf_c(void **state)
{
  uint64_t seed = 0x2545f4914f6cdd1du;
  int decoded = 0, refused = 0;
  (void)state;

  for (int iter = 0; iter < 20000; iter++) {
    struct buf b = {.n = 0};
    int fields;

    seed = next_seed(seed);
    fields = (int)((seed >> 35) % 6);
    for (int f = 0; f < fields; f++) {
      seed = next_seed(seed);
      uint32_t num = (uint32_t)(seed >> 40) % 5;
      unsigned wire = (unsigned)(seed >> 20) % 8;
      if ((seed >> 33) % 4 != 0)
        wire = 2;
      put_varint(&b, (uint64_t)num << 3 | wire);
      put_random_value(&b, wire, seed,
                       "\x0a\x01x\x12\x02yz\x00\x2a\x00\x0b\x80\x01\x00zzzzzzzzzzzzzz");
    }
    damage(&b, seed);
    if (check_same_strings(b.b, b.n))
      decoded++;
    else
      refused++;
  }
  assert_true(decoded > 2000);
  assert_true(refused > 2000);
}

int
main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_state_call),
      cmocka_unit_test(test_empty),
      cmocka_unit_test(test_last_wins_and_unknown),
      cmocka_unit_test(test_refused),
      cmocka_unit_test(test_refused_late_frees_all),
      cmocka_unit_test(test_many_metadata),
      cmocka_unit_test(test_random_against_protobuf_c),
      cmocka_unit_test(test_strings_only),
      cmocka_unit_test(test_strings_cases),
      cmocka_unit_test(test_strings_random_against_protobuf_c),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
