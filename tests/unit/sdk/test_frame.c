// SPDX-License-Identifier: Apache-2.0
// Tests of sdk/src/frame.c: header bytes, incremental reading in any chunking, the size limit.
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <cshim/frame.h>
#include <cshim/util.h>

#include "ttrpc/request.pb-c.h"

/* A growable byte string to build wire streams. */
struct bytes
{
  uint8_t *p;
  size_t len;
};

static void
append(struct bytes *b, const void *data, size_t len)
{
  b->p = cshim_xrealloc(b->p, b->len + len + 1);
  if (len)
    memcpy(b->p + b->len, data, len);
  b->len += len;
}

static void
append_frame(struct bytes *b, uint32_t stream_id, uint8_t type, uint8_t flags, const void *data,
             uint32_t len)
{
  cshim_frame_header_t h = {.length = len, .stream_id = stream_id, .type = type, .flags = flags};
  uint8_t hdr[CSHIM_FRAME_HEADER_SIZE];

  cshim_frame_header_encode(&h, hdr);
  append(b, hdr, sizeof(hdr));
  append(b, data, len);
}

static void
test_frame_header_encodes_protocol_example(void **state)
{
  const uint8_t expected[] = {0x00, 0x00, 0x00, 0x2a, 0x00, 0x00, 0x00, 0x01, 0x01, 0x00};
  cshim_frame_header_t h = {.length = 42, .stream_id = 1, .type = CSHIM_FRAME_REQUEST};
  cshim_frame_header_t back;
  uint8_t out[CSHIM_FRAME_HEADER_SIZE];

  cshim_frame_header_encode(&h, out);
  assert_memory_equal(out, expected, sizeof(expected));

  cshim_frame_header_decode(expected, &back);
  assert_int_equal(back.length, 42);
  assert_int_equal(back.stream_id, 1);
  assert_int_equal(back.type, CSHIM_FRAME_REQUEST);
  assert_int_equal(back.flags, 0);
}

static void
test_frame_header_round_trips_every_field(void **state)
{
  const cshim_frame_header_t cases[] = {
      {0, 0, 0, 0},
      {0xffffffffu, 0xffffffffu, 0xff, 0xff},
      {0x01020304u, 0x0a0b0c0du, CSHIM_FRAME_DATA,
       CSHIM_FRAME_FLAG_REMOTE_CLOSED | CSHIM_FRAME_FLAG_NO_DATA},
      {CSHIM_FRAME_MAX_DATA, 7, CSHIM_FRAME_RESPONSE, 0},
  };
  size_t i;

  for (i = 0; i < CSHIM_N_ELEMENTS(cases); i++) {
    uint8_t out[CSHIM_FRAME_HEADER_SIZE];
    cshim_frame_header_t back;

    cshim_frame_header_encode(&cases[i], out);
    assert_int_equal(out[0], cases[i].length >> 24);
    assert_int_equal(out[7], cases[i].stream_id & 0xff);
    cshim_frame_header_decode(out, &back);
    assert_int_equal(back.length, cases[i].length);
    assert_int_equal(back.stream_id, cases[i].stream_id);
    assert_int_equal(back.type, cases[i].type);
    assert_int_equal(back.flags, cases[i].flags);
  }
}

/* Feed `b` in chunks of `chunk` bytes and check the three frames built by build_three. */
static void
read_three(const struct bytes *b, size_t chunk)
{
  cshim_frame_reader_t r;
  size_t off = 0;
  int n_frames = 0;

  cshim_frame_reader_init(&r, 0);
  while (off < b->len) {
    const uint8_t *p = b->p + off;
    size_t len = b->len - off < chunk ? b->len - off : chunk;
    size_t given = len;
    enum cshim_frame_result res;
    cshim_frame_t f;

    while ((res = cshim_frame_reader_next(&r, &p, &len, &f)) != CSHIM_FRAME_NEED_MORE) {
      assert_int_equal(res, CSHIM_FRAME_COMPLETE);
      switch (n_frames++) {
      case 0:
        assert_int_equal(f.header.stream_id, 1);
        assert_int_equal(f.header.type, CSHIM_FRAME_REQUEST);
        assert_int_equal(f.header.length, 0);
        assert_null(f.data);
        break;
      case 1:
        assert_int_equal(f.header.stream_id, 3);
        assert_int_equal(f.header.flags, CSHIM_FRAME_FLAG_REMOTE_CLOSED);
        assert_int_equal(f.header.length, 5);
        assert_memory_equal(f.data, "hello", 5);
        break;
      case 2:
        assert_int_equal(f.header.stream_id, 0x01000001);
        assert_int_equal(f.header.type, 0x7f);
        assert_int_equal(f.header.length, 300);
        for (int i = 0; i < 300; i++)
          assert_int_equal(f.data[i], (uint8_t)i);
        break;
      default:
        fail_msg("unexpected frame");
      }
      free(f.data);
    }
    assert_int_equal(len, 0);
    off += given;
  }
  assert_int_equal(n_frames, 3);
  cshim_frame_reader_fini(&r);
}

static void
build_three(struct bytes *b)
{
  uint8_t big[300];

  for (int i = 0; i < 300; i++)
    big[i] = (uint8_t)i;
  append_frame(b, 1, CSHIM_FRAME_REQUEST, 0, NULL, 0);
  append_frame(b, 3, CSHIM_FRAME_DATA, CSHIM_FRAME_FLAG_REMOTE_CLOSED, "hello", 5);
  append_frame(b, 0x01000001, 0x7f, 0, big, sizeof(big));
}

static void
test_frame_reader_yields_frames_fed_byte_by_byte(void **state)
{
  struct bytes b = {0};

  build_three(&b);
  read_three(&b, 1);
  free(b.p);
}

static void
test_frame_reader_yields_frames_in_any_chunking(void **state)
{
  struct bytes b = {0};
  const size_t chunks[] = {2, 3, 7, 9, 10, 11, 64, 4096};

  build_three(&b);
  for (size_t i = 0; i < CSHIM_N_ELEMENTS(chunks); i++)
    read_three(&b, chunks[i]);
  free(b.p);
}

static void
test_frame_reader_needs_more_on_empty_input(void **state)
{
  cshim_frame_reader_t r;
  const uint8_t *p = (const uint8_t *)"";
  size_t len = 0;
  cshim_frame_t f;

  cshim_frame_reader_init(&r, 0);
  assert_int_equal(cshim_frame_reader_next(&r, &p, &len, &f), CSHIM_FRAME_NEED_MORE);
  cshim_frame_reader_fini(&r);
}

static void
test_frame_reader_discards_oversized_frame_and_stays_in_sync(void **state)
{
  const uint32_t big = CSHIM_FRAME_MAX_DATA + 1;
  uint8_t *junk = cshim_xmalloc0(big);
  struct bytes b = {0};
  cshim_frame_reader_t r;
  const size_t chunk = 65536;
  size_t off = 0;
  int seen_oversized = 0, seen_ok = 0;

  append_frame(&b, 9, CSHIM_FRAME_REQUEST, 0, junk, big);
  append_frame(&b, 11, CSHIM_FRAME_REQUEST, 0, "ok", 2);
  free(junk);

  cshim_frame_reader_init(&r, 0);
  while (off < b.len) {
    const uint8_t *p = b.p + off;
    size_t len = b.len - off < chunk ? b.len - off : chunk;
    enum cshim_frame_result res;
    cshim_frame_t f;

    off += len;
    while ((res = cshim_frame_reader_next(&r, &p, &len, &f)) != CSHIM_FRAME_NEED_MORE) {
      if (res == CSHIM_FRAME_OVERSIZED) {
        assert_int_equal(seen_ok, 0);
        assert_int_equal(f.header.stream_id, 9);
        assert_int_equal(f.header.length, big);
        assert_int_equal(f.header.type, CSHIM_FRAME_REQUEST);
        assert_null(f.data);
        /* Reported only once the data is gone: the next frame starts right after. */
        assert_int_equal(off - len, CSHIM_FRAME_HEADER_SIZE + (size_t)big);
        seen_oversized++;
      } else {
        assert_int_equal(f.header.stream_id, 11);
        assert_memory_equal(f.data, "ok", 2);
        free(f.data);
        seen_ok++;
      }
    }
  }
  assert_int_equal(seen_oversized, 1);
  assert_int_equal(seen_ok, 1);
  cshim_frame_reader_fini(&r);
  free(b.p);
}

static void
test_frame_reader_accepts_exactly_the_maximum(void **state)
{
  uint8_t *data = cshim_xmalloc(CSHIM_FRAME_MAX_DATA);
  struct bytes b = {0};
  cshim_frame_reader_t r;
  const uint8_t *p;
  size_t len;
  cshim_frame_t f;

  for (size_t i = 0; i < CSHIM_FRAME_MAX_DATA; i++)
    data[i] = (uint8_t)(i * 7);
  append_frame(&b, 1, CSHIM_FRAME_REQUEST, 0, data, CSHIM_FRAME_MAX_DATA);

  cshim_frame_reader_init(&r, 0);
  p = b.p;
  len = b.len;
  assert_int_equal(cshim_frame_reader_next(&r, &p, &len, &f), CSHIM_FRAME_COMPLETE);
  assert_int_equal(len, 0);
  assert_int_equal(f.header.length, CSHIM_FRAME_MAX_DATA);
  assert_memory_equal(f.data, data, CSHIM_FRAME_MAX_DATA);
  free(f.data);
  cshim_frame_reader_fini(&r);
  free(data);
  free(b.p);
}

static void
test_frame_reader_honours_a_smaller_limit(void **state)
{
  struct bytes b = {0};
  cshim_frame_reader_t r;
  const uint8_t *p;
  size_t len;
  cshim_frame_t f;

  append_frame(&b, 1, CSHIM_FRAME_REQUEST, 0, "12345", 5);
  append_frame(&b, 3, CSHIM_FRAME_REQUEST, 0, "1234", 4);
  cshim_frame_reader_init(&r, 4);
  p = b.p;
  len = b.len;
  assert_int_equal(cshim_frame_reader_next(&r, &p, &len, &f), CSHIM_FRAME_OVERSIZED);
  assert_int_equal(f.header.length, 5);
  assert_int_equal(cshim_frame_reader_next(&r, &p, &len, &f), CSHIM_FRAME_COMPLETE);
  assert_int_equal(f.header.length, 4);
  free(f.data);
  assert_int_equal(cshim_frame_reader_next(&r, &p, &len, &f), CSHIM_FRAME_NEED_MORE);
  cshim_frame_reader_fini(&r);
  free(b.p);
}

static void
test_frame_reader_fini_releases_a_partial_frame(void **state)
{
  struct bytes b = {0};
  cshim_frame_reader_t r;
  const uint8_t *p;
  size_t len;
  cshim_frame_t f;

  append_frame(&b, 1, CSHIM_FRAME_REQUEST, 0, "0123456789", 10);
  cshim_frame_reader_init(&r, 0);
  p = b.p;
  len = b.len - 3;
  assert_int_equal(cshim_frame_reader_next(&r, &p, &len, &f), CSHIM_FRAME_NEED_MORE);
  cshim_frame_reader_fini(&r); /* ASan reports the buffer if this leaks */
  free(b.p);
}

static void
test_frame_pack_writes_header_and_message(void **state)
{
  Ttrpc__KeyValue kv = TTRPC__KEY_VALUE__INIT;
  cshim_frame_header_t h = {.length = 999, .stream_id = 5, .type = CSHIM_FRAME_RESPONSE};
  cshim_frame_header_t back;
  cshim_error_t err = NULL;
  cshim_autofree uint8_t *buf = NULL;
  Ttrpc__KeyValue *decoded;
  size_t len = 0;

  kv.key = "k";
  kv.value = "v";
  assert_int_equal(cshim_frame_pack(&h, &kv.base, CSHIM_FRAME_MAX_DATA, &buf, &len, &err), 0);
  assert_null(err);
  cshim_frame_header_decode(buf, &back);
  assert_int_equal(back.length, len - CSHIM_FRAME_HEADER_SIZE);
  assert_int_equal(back.length, 6);
  assert_int_equal(back.stream_id, 5);
  assert_int_equal(back.type, CSHIM_FRAME_RESPONSE);
  decoded = ttrpc__key_value__unpack(NULL, back.length, buf + CSHIM_FRAME_HEADER_SIZE);
  assert_non_null(decoded);
  assert_string_equal(decoded->key, "k");
  assert_string_equal(decoded->value, "v");
  ttrpc__key_value__free_unpacked(decoded, NULL);
}

static void
test_frame_pack_of_null_is_an_empty_frame(void **state)
{
  cshim_frame_header_t h = {.stream_id = 1,
                            .type = CSHIM_FRAME_DATA,
                            .flags = CSHIM_FRAME_FLAG_REMOTE_CLOSED | CSHIM_FRAME_FLAG_NO_DATA};
  const uint8_t expected[] = {0, 0, 0, 0, 0, 0, 0, 1, 3, 5};
  cshim_error_t err = NULL;
  cshim_autofree uint8_t *buf = NULL;
  size_t len = 0;

  assert_int_equal(cshim_frame_pack(&h, NULL, CSHIM_FRAME_MAX_DATA, &buf, &len, &err), 0);
  assert_int_equal(len, CSHIM_FRAME_HEADER_SIZE);
  assert_memory_equal(buf, expected, sizeof(expected));
}

static void
test_frame_pack_refuses_more_than_the_limit(void **state)
{
  Ttrpc__Response resp = TTRPC__RESPONSE__INIT;
  cshim_frame_header_t h = {.stream_id = 1, .type = CSHIM_FRAME_RESPONSE};
  cshim_error_t err = NULL;
  uint8_t *buf = NULL;
  size_t len = 0;

  /* Field 2 tag (1 byte) + length varint (4 bytes) + 4 MiB - 4 = 4 MiB + 1. */
  resp.payload.len = CSHIM_FRAME_MAX_DATA - 4;
  resp.payload.data = cshim_xmalloc0(resp.payload.len);
  assert_int_equal(cshim_frame_pack(&h, &resp.base, CSHIM_FRAME_MAX_DATA, &buf, &len, &err),
                   -EMSGSIZE);
  assert_null(buf);
  assert_non_null(err);
  assert_string_equal(err->msg, "message length 4194305 exceed maximum message size of 4194304");
  cshim_error_release(&err);

  resp.payload.len--; /* exactly 4 MiB is allowed */
  assert_int_equal(cshim_frame_pack(&h, &resp.base, CSHIM_FRAME_MAX_DATA, &buf, &len, &err), 0);
  assert_int_equal(len, CSHIM_FRAME_HEADER_SIZE + CSHIM_FRAME_MAX_DATA);
  free(buf);
  free(resp.payload.data);
}

/* A frame cut anywhere carries over into a fresh reader (live upgrade) and completes there. */
static void
test_frame_reader_pending_frame_resumes_in_another_reader(void **state)
{
  uint8_t wire[CSHIM_FRAME_HEADER_SIZE + 6];
  cshim_frame_header_t h = {.length = 6, .stream_id = 7, .type = CSHIM_FRAME_REQUEST};
  cshim_error_t err = NULL;
  (void)state;

  cshim_frame_header_encode(&h, wire);
  memcpy(wire + CSHIM_FRAME_HEADER_SIZE, "abcdef", 6);
  for (size_t cut = 0; cut < sizeof wire; cut++) {
    cshim_frame_reader_t a, b;
    const uint8_t *p = wire;
    size_t len = cut, plen;
    uint8_t *pending;
    uint32_t discarded;
    cshim_frame_t f;

    cshim_frame_reader_init(&a, 0);
    cshim_frame_reader_init(&b, 0);
    assert_int_equal(cshim_frame_reader_next(&a, &p, &len, &f), CSHIM_FRAME_NEED_MORE);
    cshim_frame_reader_pending(&a, &pending, &plen, &discarded);
    assert_int_equal(plen, cut);
    assert_int_equal(discarded, 0);
    assert_int_equal(cshim_frame_reader_resume(&b, pending, plen, discarded, &err), 0);
    p = wire + cut;
    len = sizeof wire - cut;
    assert_int_equal(cshim_frame_reader_next(&b, &p, &len, &f), CSHIM_FRAME_COMPLETE);
    assert_int_equal(f.header.stream_id, 7);
    assert_memory_equal(f.data, "abcdef", 6);
    free(f.data);
    free(pending);
    cshim_frame_reader_fini(&a);
    cshim_frame_reader_fini(&b);
  }
}

static void
test_frame_reader_pending_oversized_frame_stays_discarded(void **state)
{
  uint8_t hdr[CSHIM_FRAME_HEADER_SIZE], junk[8] = {0};
  cshim_frame_header_t h = {.length = 12, .stream_id = 9, .type = CSHIM_FRAME_REQUEST};
  cshim_frame_reader_t a, b;
  cshim_error_t err = NULL;
  const uint8_t *p;
  size_t len, plen;
  uint8_t *pending;
  uint32_t discarded;
  cshim_frame_t f;
  (void)state;

  cshim_frame_header_encode(&h, hdr);
  cshim_frame_reader_init(&a, 4);
  cshim_frame_reader_init(&b, 4);
  p = hdr;
  len = sizeof hdr;
  assert_int_equal(cshim_frame_reader_next(&a, &p, &len, &f), CSHIM_FRAME_NEED_MORE);
  p = junk;
  len = 5;
  assert_int_equal(cshim_frame_reader_next(&a, &p, &len, &f), CSHIM_FRAME_NEED_MORE);
  cshim_frame_reader_pending(&a, &pending, &plen, &discarded);
  assert_int_equal(plen, CSHIM_FRAME_HEADER_SIZE);
  assert_int_equal(discarded, 5);
  assert_int_equal(cshim_frame_reader_resume(&b, pending, plen, discarded, &err), 0);
  p = junk;
  len = 7;
  assert_int_equal(cshim_frame_reader_next(&b, &p, &len, &f), CSHIM_FRAME_OVERSIZED);
  assert_int_equal(len, 0);
  assert_int_equal(f.header.stream_id, 9);
  /* a whole frame is not a pending one */
  assert_int_equal(cshim_frame_reader_resume(&b, pending, plen, 20, &err), -EBADMSG);
  cshim_error_release(&err);
  free(pending);
  cshim_frame_reader_fini(&a);
  cshim_frame_reader_fini(&b);
}

int
main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_frame_header_encodes_protocol_example),
      cmocka_unit_test(test_frame_header_round_trips_every_field),
      cmocka_unit_test(test_frame_reader_yields_frames_fed_byte_by_byte),
      cmocka_unit_test(test_frame_reader_yields_frames_in_any_chunking),
      cmocka_unit_test(test_frame_reader_needs_more_on_empty_input),
      cmocka_unit_test(test_frame_reader_discards_oversized_frame_and_stays_in_sync),
      cmocka_unit_test(test_frame_reader_accepts_exactly_the_maximum),
      cmocka_unit_test(test_frame_reader_honours_a_smaller_limit),
      cmocka_unit_test(test_frame_reader_fini_releases_a_partial_frame),
      cmocka_unit_test(test_frame_pack_writes_header_and_message),
      cmocka_unit_test(test_frame_pack_of_null_is_an_empty_frame),
      cmocka_unit_test(test_frame_pack_refuses_more_than_the_limit),
      cmocka_unit_test(test_frame_reader_pending_frame_resumes_in_another_reader),
      cmocka_unit_test(test_frame_reader_pending_oversized_frame_stays_discarded),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
