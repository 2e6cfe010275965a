// SPDX-License-Identifier: Apache-2.0
// libFuzzer harness: arbitrary bytes as a W3C traceparent through the tracing plugin's parser
// (it reads containerd's ttrpc metadata), checking what it promises about what it accepts.
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tracing.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  static const uint8_t zero[16];
  uint8_t t[16], s[8], f, t2[16], s2[8], f2;
  char *text = malloc(size + 1);
  char again[CSHIM_TRACEPARENT_LEN + 1];

  memcpy(text, data, size);
  text[size] = '\0';
  if (tracing_traceparent_parse(text, t, s, &f) == 0) {
    /* Never zero ids, never version ff; what it accepted formats and parses back the same. */
    if (memcmp(t, zero, 16) == 0 || memcmp(s, zero, 8) == 0 || strncmp(text, "ff", 2) == 0)
      abort();
    tracing_traceparent_format(t, s, f, again);
    if (tracing_traceparent_parse(again, t2, s2, &f2) != 0 || memcmp(t, t2, 16) != 0 ||
        memcmp(s, s2, 8) != 0 || f != f2)
      abort();
    /* Version 00 has one spelling. */
    if (strncmp(text, "00-", 3) == 0 && strcmp(text, again) != 0)
      abort();
  }
  free(text);
  return 0;
}
