// SPDX-License-Identifier: Apache-2.0
// Unit tests of sdk/src/state.c: round trips, the recorded version-1 document, corrupt input.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include <cshim/error.h>
#include <cshim/state.h>
#include <cshim/util.h>

static void
finish(cshim_state_writer_t *w, uint8_t **buf, size_t *len)
{
  cshim_error_t err = NULL;
  assert_int_equal(cshim_state_writer_finish(w, buf, len, &err), 0);
  assert_null(err);
}

static void
open_ok(const uint8_t *buf, size_t len, cshim_state_reader_t *r)
{
  cshim_error_t err = NULL;
  uint32_t v = 0;
  assert_int_equal(
      cshim_state_open(buf, len, CSHIM_STATE_FORMAT_MIN, CSHIM_STATE_FORMAT_VERSION, &v, r, &err),
      0);
  assert_int_equal(v, CSHIM_STATE_FORMAT_VERSION);
}

static void
expect_open_fails(const uint8_t *buf, size_t len, int status, const char *words)
{
  cshim_state_reader_t r;
  cshim_error_t err = NULL;
  assert_int_equal(cshim_state_open(buf, len, CSHIM_STATE_FORMAT_MIN, CSHIM_STATE_FORMAT_VERSION,
                                    NULL, &r, &err),
                   -status);
  assert_non_null(err);
  assert_non_null(strstr(err->msg, words));
  cshim_error_release(&err);
}

static void
test_state_get_decodes_a_tag_and_leaves_absent_ones(void **state)
{
  cshim_state_writer_t w;
  cshim_state_reader_t r;
  cshim_error_t err = NULL;
  cshim_autofree uint8_t *buf = NULL;
  cshim_autofree char *s = NULL;
  char stale[] = "stale", *none = stale;
  size_t len;
  uint32_t u32 = 7;
  uint64_t u64 = 0;
  int64_t i64 = 0;
  bool b = false;
  (void)state;

  cshim_state_writer_init(&w);
  cshim_state_put_u64(&w, 2, 42);
  cshim_state_put_i64(&w, 3, -5);
  cshim_state_put_bool(&w, 4, true);
  cshim_state_put_str(&w, 5, "id");
  finish(&w, &buf, &len);
  open_ok(buf, len, &r);

  assert_int_equal(cshim_state_get_u32(&r, 1, &u32, &err), 0); /* absent: unchanged */
  assert_int_equal(u32, 7);
  assert_int_equal(cshim_state_get_u64(&r, 2, &u64, &err), 0);
  assert_int_equal(u64, 42);
  assert_int_equal(cshim_state_get_i64(&r, 3, &i64, &err), 0);
  assert_int_equal(i64, -5);
  assert_int_equal(cshim_state_get_bool(&r, 4, &b, &err), 0);
  assert_true(b);
  assert_int_equal(cshim_state_get_str(&r, 5, &s, &err), 0);
  assert_string_equal(s, "id");
  assert_int_equal(cshim_state_get_str(&r, 6, &none, &err), 0); /* absent: NULL */
  assert_null(none);
  /* A record of another size than asked for is corrupt. */
  assert_int_equal(cshim_state_get_u32(&r, 2, &u32, &err), -EBADMSG);
  assert_non_null(err);
  cshim_error_release(&err);
}

static void
test_state_round_trips_scalars_strings_and_lists(void **state)
{
  cshim_state_writer_t w;
  cshim_state_reader_t r, inner;
  cshim_state_item_t it;
  cshim_error_t err = NULL;
  cshim_autofree uint8_t *buf = NULL;
  cshim_autofree char *s = NULL, *empty = NULL;
  size_t len;
  uint32_t u32;
  uint64_t u64;
  int64_t i64;
  bool b;
  (void)state;

  cshim_state_writer_init(&w);
  cshim_state_put_u32(&w, 1, 0xdeadbeefu);
  cshim_state_put_u64(&w, 2, 0x0123456789abcdefull);
  cshim_state_put_i64(&w, 3, -62135596800LL);
  cshim_state_put_bool(&w, 4, true);
  cshim_state_put_str(&w, 5, "container-1");
  cshim_state_put_str(&w, 6, "");
  cshim_state_put_str(&w, 7, NULL);
  cshim_state_begin(&w, 8);
  cshim_state_put_u32(&w, 1, 7);
  cshim_state_begin(&w, 2);
  cshim_state_end(&w);
  cshim_state_end(&w);
  cshim_state_put_u32(&w, 9, 42);
  finish(&w, &buf, &len);
  cshim_state_writer_fini(&w);

  open_ok(buf, len, &r);
  assert_int_equal(cshim_state_next(&r, &it, &err), 1);
  assert_int_equal(it.tag, 1);
  assert_int_equal(cshim_state_item_u32(&it, &u32, &err), 0);
  assert_int_equal(u32, 0xdeadbeefu);
  assert_int_equal(cshim_state_next(&r, &it, &err), 1);
  assert_int_equal(cshim_state_item_u64(&it, &u64, &err), 0);
  assert_true(u64 == 0x0123456789abcdefull);
  assert_int_equal(cshim_state_next(&r, &it, &err), 1);
  assert_int_equal(cshim_state_item_i64(&it, &i64, &err), 0);
  assert_true(i64 == -62135596800LL);
  assert_int_equal(cshim_state_next(&r, &it, &err), 1);
  assert_int_equal(cshim_state_item_bool(&it, &b, &err), 0);
  assert_true(b);
  assert_int_equal(cshim_state_next(&r, &it, &err), 1);
  assert_int_equal(cshim_state_item_str(&it, &s, &err), 0);
  assert_string_equal(s, "container-1");
  assert_int_equal(cshim_state_next(&r, &it, &err), 1);
  assert_int_equal(it.tag, 6);
  assert_int_equal(cshim_state_item_str(&it, &empty, &err), 0);
  assert_string_equal(empty, "");
  /* NULL wrote nothing: the list comes next */
  assert_int_equal(cshim_state_next(&r, &it, &err), 1);
  assert_int_equal(it.tag, 8);
  assert_int_equal(cshim_state_item_list(&it, &inner, &err), 0);
  assert_int_equal(cshim_state_next(&inner, &it, &err), 1);
  assert_int_equal(it.tag, 1);
  assert_int_equal(cshim_state_next(&inner, &it, &err), 1);
  assert_int_equal(it.tag, 2);
  assert_int_equal(it.len, 0);
  assert_int_equal(cshim_state_next(&inner, &it, &err), 0);
  assert_int_equal(cshim_state_find(&r, 9, &it, &err), 1);
  assert_int_equal(cshim_state_item_u32(&it, &u32, &err), 0);
  assert_int_equal(u32, 42);
  assert_int_equal(cshim_state_find(&r, 77, &it, &err), 0);
  assert_int_equal(cshim_state_next(&r, &it, &err), 1);
  assert_int_equal(cshim_state_next(&r, &it, &err), 0);
  assert_null(err);
}

/* The version-1 document as docs/live-upgrade.md describes it, byte for byte: every later build
   must go on reading it (the "previous release's format"). */
static const uint8_t v1_document[] = {
    'C', 'S', 'H', 'I', 'M', 'S', 'T', '1', /* magic */
    1, 0, 0, 0,                             /* format version 1 */
    0, 0, 0, 0,                             /* flags */
    30, 0, 0, 0,                            /* body length */
    0, 0, 0, 0,                             /* CRC-32, filled in by the test */
    /* tag 3, 4 bytes: u32 5 */
    3, 0, 4, 0, 0, 0, 5, 0, 0, 0,
    /* tag 4, a list of 14 bytes holding tag 1 = "ab" and tag 2 = "" */
    4, 0, 14, 0, 0, 0, 1, 0, 2, 0, 0, 0, 'a', 'b', 2, 0, 0, 0, 0, 0};

static void
test_state_reads_the_recorded_version_1_document(void **state)
{
  uint8_t doc[sizeof v1_document];
  cshim_state_reader_t r, inner;
  cshim_state_item_t it;
  cshim_error_t err = NULL;
  cshim_autofree char *s = NULL;
  uint32_t crc, v;
  (void)state;

  memcpy(doc, v1_document, sizeof doc);
  crc = cshim_state_crc32(0, doc + CSHIM_STATE_HEADER_SIZE, sizeof doc - CSHIM_STATE_HEADER_SIZE);
  for (int i = 0; i < 4; i++)
    doc[20 + i] = (uint8_t)(crc >> (8 * i));
  assert_int_equal(cshim_state_open(doc, sizeof doc, 1, CSHIM_STATE_FORMAT_VERSION, NULL, &r, &err),
                   0);
  assert_int_equal(cshim_state_find(&r, 3, &it, &err), 1);
  assert_int_equal(cshim_state_item_u32(&it, &v, &err), 0);
  assert_int_equal(v, 5);
  assert_int_equal(cshim_state_find(&r, 4, &it, &err), 1);
  assert_int_equal(cshim_state_item_list(&it, &inner, &err), 0);
  assert_int_equal(cshim_state_find(&inner, 1, &it, &err), 1);
  assert_int_equal(cshim_state_item_str(&it, &s, &err), 0);
  assert_string_equal(s, "ab");
  assert_null(err);
}

static void
test_state_writer_output_matches_the_recorded_layout(void **state)
{
  cshim_state_writer_t w;
  cshim_autofree uint8_t *buf = NULL;
  size_t len;
  (void)state;

  cshim_state_writer_init(&w);
  cshim_state_put_u32(&w, 3, 5);
  cshim_state_begin(&w, 4);
  cshim_state_put_str(&w, 1, "ab");
  cshim_state_put_str(&w, 2, "");
  cshim_state_end(&w);
  finish(&w, &buf, &len);
  cshim_state_writer_fini(&w);
  assert_int_equal(len, sizeof v1_document);
  assert_memory_equal(buf, v1_document, 20);
  assert_memory_equal(buf + 24, v1_document + 24, len - 24);
}

static void
test_state_refuses_other_versions_before_the_body(void **state)
{
  cshim_state_writer_t w;
  cshim_autofree uint8_t *buf = NULL;
  size_t len;
  (void)state;

  cshim_state_writer_init(&w);
  cshim_state_put_u32(&w, 1, 1);
  finish(&w, &buf, &len);
  cshim_state_writer_fini(&w);
  buf[8] = (uint8_t)(CSHIM_STATE_FORMAT_VERSION + 1);
  expect_open_fails(buf, len, EPROTONOSUPPORT, "format version 2 is not supported");
  buf[8] = 0;
  expect_open_fails(buf, len, EPROTONOSUPPORT, "format version 0");
}

static void
test_state_refuses_corrupt_and_truncated_documents(void **state)
{
  cshim_state_writer_t w;
  cshim_autofree uint8_t *buf = NULL;
  size_t len;
  (void)state;

  cshim_state_writer_init(&w);
  cshim_state_put_str(&w, 1, "hello");
  finish(&w, &buf, &len);
  cshim_state_writer_fini(&w);

  expect_open_fails(buf, 10, EBADMSG, "not a cshim state document");
  expect_open_fails(NULL, 0, EBADMSG, "not a cshim state document");
  expect_open_fails(buf, len - 1, EBADMSG, "announced");
  buf[len - 1] ^= 0x20;
  expect_open_fails(buf, len, EBADMSG, "checksum mismatch");
  buf[len - 1] ^= 0x20;
  buf[0] = 'X';
  expect_open_fails(buf, len, EBADMSG, "not a cshim state document");
}

/* Bodies whose checksum is right but whose records lie. */
static void
test_state_reader_checks_every_length(void **state)
{
  /* tag 1 claims 100 bytes, 2 present */
  static const uint8_t overrun[] = {1, 0, 100, 0, 0, 0, 'a', 'b'};
  static const uint8_t short_header[] = {1, 0, 0};
  static const uint8_t nul_string[] = {1, 0, 3, 0, 0, 0, 'a', 0, 'b'};
  static const uint8_t short_u32[] = {1, 0, 3, 0, 0, 0, 1, 2, 3};
  static const uint8_t bad_bool[] = {1, 0, 4, 0, 0, 0, 2, 0, 0, 0};
  cshim_state_reader_t r;
  cshim_state_item_t it;
  cshim_error_t err = NULL;
  char *s = NULL;
  uint32_t v;
  bool b;
  (void)state;

  r = (cshim_state_reader_t){.data = overrun, .len = sizeof overrun};
  assert_int_equal(cshim_state_next(&r, &it, &err), -EBADMSG);
  assert_non_null(strstr(err->msg, "claims 100 bytes"));
  cshim_error_release(&err);
  assert_int_equal(cshim_state_find(&r, 1, &it, &err), -EBADMSG);
  cshim_error_release(&err);

  r = (cshim_state_reader_t){.data = short_header, .len = sizeof short_header};
  assert_int_equal(cshim_state_next(&r, &it, &err), -EBADMSG);
  assert_non_null(strstr(err->msg, "truncated"));
  cshim_error_release(&err);

  r = (cshim_state_reader_t){.data = nul_string, .len = sizeof nul_string};
  assert_int_equal(cshim_state_next(&r, &it, &err), 1);
  assert_int_equal(cshim_state_item_str(&it, &s, &err), -EBADMSG);
  assert_null(s);
  cshim_error_release(&err);

  r = (cshim_state_reader_t){.data = short_u32, .len = sizeof short_u32};
  assert_int_equal(cshim_state_next(&r, &it, &err), 1);
  assert_int_equal(cshim_state_item_u32(&it, &v, &err), -EBADMSG);
  cshim_error_release(&err);

  r = (cshim_state_reader_t){.data = bad_bool, .len = sizeof bad_bool};
  assert_int_equal(cshim_state_next(&r, &it, &err), 1);
  assert_int_equal(cshim_state_item_bool(&it, &b, &err), -EBADMSG);
  cshim_error_release(&err);
}

static void
test_state_bounds_nesting(void **state)
{
  cshim_state_writer_t w;
  cshim_state_reader_t r;
  cshim_state_item_t it;
  cshim_error_t err = NULL;
  uint8_t *buf = NULL;
  size_t len;
  /* CSHIM_STATE_MAX_DEPTH nested empty lists, written by hand */
  uint8_t deep[6 * CSHIM_STATE_MAX_DEPTH];
  (void)state;

  cshim_state_writer_init(&w);
  for (unsigned i = 0; i <= CSHIM_STATE_MAX_DEPTH; i++)
    cshim_state_begin(&w, 1);
  for (unsigned i = 0; i <= CSHIM_STATE_MAX_DEPTH; i++)
    cshim_state_end(&w);
  assert_int_equal(cshim_state_writer_finish(&w, &buf, &len, &err), -EINVAL);
  cshim_error_release(&err);
  cshim_state_writer_fini(&w);

  cshim_state_writer_init(&w);
  cshim_state_begin(&w, 1);
  assert_int_equal(cshim_state_writer_finish(&w, &buf, &len, &err), -EINVAL);
  cshim_error_release(&err);
  cshim_state_writer_fini(&w);

  for (unsigned i = 0; i < CSHIM_STATE_MAX_DEPTH; i++) {
    uint32_t inner = (uint32_t)(6 * (CSHIM_STATE_MAX_DEPTH - 1 - i));
    uint8_t *p = deep + 6 * i;
    p[0] = 1;
    p[1] = 0;
    p[2] = (uint8_t)inner;
    p[3] = p[4] = p[5] = 0;
  }
  r = (cshim_state_reader_t){.data = deep, .len = sizeof deep};
  for (;;) {
    assert_int_equal(cshim_state_next(&r, &it, &err), 1);
    if (cshim_state_item_list(&it, &r, &err) < 0)
      break;
  }
  assert_non_null(strstr(err->msg, "nested deeper"));
  cshim_error_release(&err);
}

static void
test_state_hands_over_fds_and_marks_them_close_on_exec(void **state)
{
  cshim_state_writer_t w;
  cshim_state_reader_t r;
  cshim_state_item_t it;
  cshim_error_t err = NULL;
  cshim_autofree uint8_t *buf = NULL;
  const int *fds;
  size_t len, n;
  int p[2], fd = -1;
  (void)state;

  assert_int_equal(pipe(p), 0);
  cshim_state_writer_init(&w);
  cshim_state_put_fd(&w, 1, p[0]);
  cshim_state_put_fd(&w, 2, p[0]); /* listed once in the table */
  cshim_state_put_fd(&w, 3, -1);   /* nothing */
  {
    uint8_t bogus[20] = {0x9f, 0x86, 0x01, 0}; /* fd 99999 */
    cshim_state_put_bytes(&w, 4, bogus, sizeof bogus);
  }
  cshim_state_put_fd(&w, 5, p[1]);
  finish(&w, &buf, &len);
  fds = cshim_state_writer_fds(&w, &n);
  assert_int_equal(n, 2);
  assert_int_equal(fds[0], p[0]);
  assert_int_equal(fds[1], p[1]);
  cshim_state_writer_fini(&w);

  open_ok(buf, len, &r);
  assert_int_equal(cshim_state_next(&r, &it, &err), 1);
  assert_int_equal(fcntl(p[0], F_GETFD) & FD_CLOEXEC, 0);
  assert_int_equal(cshim_state_item_fd(&it, &fd, &err), 0);
  assert_int_equal(fd, p[0]);
  assert_int_not_equal(fcntl(p[0], F_GETFD) & FD_CLOEXEC, 0);
  assert_int_equal(cshim_state_next(&r, &it, &err), 1);
  assert_int_equal(it.tag, 2);
  assert_int_equal(cshim_state_next(&r, &it, &err), 1);
  assert_int_equal(it.tag, 4);
  assert_int_equal(cshim_state_item_fd(&it, &fd, &err), -EBADF);
  assert_non_null(strstr(err->msg, "not handed over"));
  cshim_error_release(&err);
  /* the number was closed and reused by another file since */
  assert_int_equal(cshim_state_next(&r, &it, &err), 1);
  assert_int_equal(it.tag, 5);
  {
    int q[2], saved = p[1];
    assert_int_equal(pipe(q), 0);
    close(p[1]);
    assert_int_equal(dup2(q[0], saved), saved);
    assert_int_equal(cshim_state_item_fd(&it, &fd, &err), -EBADF);
    assert_non_null(strstr(err->msg, "not the file handed over"));
    cshim_error_release(&err);
    close(q[0]);
    close(q[1]);
  }
  close(p[0]);
  close(p[1]);
}

/* put_fd_new: the record is the same as put_fd's; the table is not searched (a caller that
   knows its descriptors are new: thousands of connections no longer cost n squared). */
static void
test_state_put_fd_new_skips_the_search(void **state)
{
  cshim_state_writer_t w;
  cshim_state_reader_t r;
  cshim_state_item_t it;
  cshim_error_t err = NULL;
  cshim_autofree uint8_t *buf = NULL;
  const int *fds;
  size_t len, n;
  int p[2], fd = -1;
  (void)state;

  assert_int_equal(pipe2(p, O_CLOEXEC), 0);
  cshim_state_writer_init(&w);
  cshim_state_put_fd_new(&w, 1, p[0]);
  cshim_state_put_fd(&w, 2, p[0]); /* found: listed once */
  cshim_state_put_fd_new(&w, 3, p[1]);
  cshim_state_put_fd_new(&w, 4, -1); /* nothing */
  finish(&w, &buf, &len);
  fds = cshim_state_writer_fds(&w, &n);
  assert_int_equal(n, 2);
  assert_int_equal(fds[0], p[0]);
  assert_int_equal(fds[1], p[1]);
  cshim_state_writer_fini(&w);
  open_ok(buf, len, &r);
  assert_int_equal(cshim_state_next(&r, &it, &err), 1);
  assert_int_equal(cshim_state_item_fd(&it, &fd, &err), 0);
  assert_int_equal(fd, p[0]);
  close(p[0]);
  close(p[1]);
}

static void
test_state_crc32_matches_the_standard_check_value(void **state)
{
  (void)state;
  assert_int_equal(cshim_state_crc32(0, "123456789", 9), 0xCBF43926u);
  assert_int_equal(cshim_state_crc32(cshim_state_crc32(0, "1234", 4), "56789", 5), 0xCBF43926u);
}

int
main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_state_round_trips_scalars_strings_and_lists),
      cmocka_unit_test(test_state_put_fd_new_skips_the_search),
      cmocka_unit_test(test_state_get_decodes_a_tag_and_leaves_absent_ones),
      cmocka_unit_test(test_state_reads_the_recorded_version_1_document),
      cmocka_unit_test(test_state_writer_output_matches_the_recorded_layout),
      cmocka_unit_test(test_state_refuses_other_versions_before_the_body),
      cmocka_unit_test(test_state_refuses_corrupt_and_truncated_documents),
      cmocka_unit_test(test_state_reader_checks_every_length),
      cmocka_unit_test(test_state_bounds_nesting),
      cmocka_unit_test(test_state_hands_over_fds_and_marks_them_close_on_exec),
      cmocka_unit_test(test_state_crc32_matches_the_standard_check_value),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
