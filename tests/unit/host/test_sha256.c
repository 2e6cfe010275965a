// SPDX-License-Identifier: Apache-2.0
// Tests of host/sha256.c: the FIPS 180-4 examples and the lengths around the padding edges.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "sha256.h"

static void
hex_of(const char *text, size_t len, char out[2 * HOST_SHA256_SIZE + 1])
{
  host_sha256_hex(text, len, out);
}

static void
test_sha256_fips_examples(void **state)
{
  char hex[2 * HOST_SHA256_SIZE + 1];
  (void)state;

  hex_of("", 0, hex);
  assert_string_equal(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  hex_of("abc", 3, hex);
  assert_string_equal(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  /* 56 bytes: the length no longer fits the first block; the padding takes a second one. */
  hex_of("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq", 56, hex);
  assert_string_equal(hex, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  /* 112 bytes: two full blocks' worth, crossing a block boundary mid-message. */
  hex_of("abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklmnopqrl"
         "mnop"
         "qrsmnopqrstnopqrstu",
         112, hex);
  assert_string_equal(hex, "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1");
}

static void
test_sha256_million_a(void **state)
{
  static char a[1000000];
  char hex[2 * HOST_SHA256_SIZE + 1];
  (void)state;

  memset(a, 'a', sizeof a);
  hex_of(a, sizeof a, hex);
  assert_string_equal(hex, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

/* The lengths where the padding changes shape (55: it fits the last block; 56: it needs another;
   63, 64, 65: around a full block; 119, 120, 128: the same in the second block). Digests from
   Python's hashlib. */
static void
test_sha256_padding_edges(void **state)
{
  static const struct
  {
    size_t len;
    const char *hex;
  } cases[] = {
      {55, "d5e285683cd4efc02d021a5c62014694958901005d6f71e89e0989fac77e4072"},
      {56, "04c26261370ee7541549d16dee320c723e3fd14671e66a099afe0a377c16888e"},
      {63, "75220b47218278e656f2013bb8f0c455a25eaf01e86c64924e9d48d89776d6f2"},
      {64, "7ce100971f64e7001e8fe5a51973ecdfe1ced42befe7ee8d5fd6219506b5393c"},
      {65, "9537c5fdf120482f7d58d25e9ed583f52c02b4e304ea814db1633ad565aed7e9"},
      {119, "000b48d4edf0fa7bee3c6236ecd2785baa5db4eeb8bb54341b029e0d9fa5fb0c"},
      {120, "13f05a0b594787f5ecd315edc96141bd3243203d1b7d4f0836f37308b276ba98"},
      {128, "24da1b81d0b16df6428eee73c69fcb2a93c76bc6df706f0c6670fe6bfe800464"},
  };
  char buf[128], hex[2 * HOST_SHA256_SIZE + 1];
  (void)state;

  memset(buf, 'x', sizeof buf);
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    hex_of(buf, cases[i].len, hex);
    assert_string_equal(hex, cases[i].hex);
  }
}

int
main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_sha256_fips_examples),
      cmocka_unit_test(test_sha256_million_a),
      cmocka_unit_test(test_sha256_padding_edges),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
