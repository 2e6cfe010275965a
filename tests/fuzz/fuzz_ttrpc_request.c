// SPDX-License-Identifier: Apache-2.0
// libFuzzer harness, differential: the server's own ttrpc Request decoder
// (host/ttrpc_request.c) against protobuf-c's generated unpacker on the same bytes. Both must
// refuse the same inputs and decode the others to the same fields; both results are freed
// through protobuf-c's free_unpacked (the sanitizers check the layout is protobuf-c's).
#include <assert.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ttrpc_request.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
same_string(const char *what, const char *a, const char *b)
{
  if (strcmp(a, b) != 0) {
    fprintf(stderr, "%s differs: protobuf-c \"%s\", ours \"%s\"\n", what, a, b);
    abort();
  }
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  Ttrpc__Request *want = ttrpc__request__unpack(NULL, size, data);
  Ttrpc__Request *got = host_ttrpc_request_decode(NULL, size, data);

  if ((want == NULL) != (got == NULL)) {
    fprintf(stderr, "protobuf-c %s, ours %s\n", want ? "decodes" : "refuses",
            got ? "decodes" : "refuses");
    abort();
  }
  if (!want)
    return 0;
  same_string("service", want->service, got->service);
  same_string("method", want->method, got->method);
  if (want->payload.len != got->payload.len ||
      (want->payload.data == NULL) != (got->payload.data == NULL) ||
      (want->payload.len &&
       memcmp(want->payload.data, got->payload.data, want->payload.len) != 0)) {
    fprintf(stderr, "payload differs\n");
    abort();
  }
  if (want->timeout_nano != got->timeout_nano || want->n_metadata != got->n_metadata) {
    fprintf(stderr, "timeout or metadata count differs\n");
    abort();
  }
  for (size_t i = 0; i < want->n_metadata; i++) {
    same_string("metadata key", want->metadata[i]->key, got->metadata[i]->key);
    same_string("metadata value", want->metadata[i]->value, got->metadata[i]->value);
  }
  ttrpc__request__free_unpacked(want, NULL);
  ttrpc__request__free_unpacked(got, NULL);
  return 0;
}
