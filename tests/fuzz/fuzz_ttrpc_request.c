// SPDX-License-Identifier: Apache-2.0
// libFuzzer harness, differential: the server's own ttrpc Request decoder, and its decoder of
// call inputs made only of strings (host/ttrpc_request.c), against protobuf-c's unpacker on the
// same bytes (as a Request, and as a KeyValue: two proto3 strings, like StateRequest). Both must
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

static void
same_verdict(const void *want, const void *got)
{
  if ((want == NULL) != (got == NULL)) {
    fprintf(stderr, "protobuf-c %s, ours %s\n", want ? "decodes" : "refuses",
            got ? "decodes" : "refuses");
    abort();
  }
}

static void
strings_input(const uint8_t *data, size_t size)
{
  const ProtobufCMessageDescriptor *d = &ttrpc__key_value__descriptor;
  Ttrpc__KeyValue *want = (Ttrpc__KeyValue *)protobuf_c_message_unpack(d, NULL, size, data);
  Ttrpc__KeyValue *got = (Ttrpc__KeyValue *)host_ttrpc_unpack_strings(d, NULL, size, data);

  same_verdict(want, got);
  if (!want)
    return;
  same_string("key", want->key, got->key);
  same_string("value", want->value, got->value);
  protobuf_c_message_free_unpacked(&want->base, NULL);
  protobuf_c_message_free_unpacked(&got->base, NULL);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  strings_input(data, size);
  Ttrpc__Request *want = ttrpc__request__unpack(NULL, size, data);
  Ttrpc__Request *got = host_ttrpc_request_decode(NULL, size, data);

  same_verdict(want, got);
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
