// SPDX-License-Identifier: Apache-2.0
// Protobuf messages to and from JSON through protobuf-c's descriptors, after proto3's JSON
// mapping: fields by name (the proto name or its lowerCamelCase form on input), 64-bit integers
// as decimal strings (numbers accepted on input), bytes as base64, enums by name,
// google.protobuf.Timestamp as RFC 3339 text, google.protobuf.Any as {"@type", "value"} with the
// value's bytes in base64. Used by `cshimctl call --json` and `cshimctl stats`.
#ifndef CSHIMCTL_PBJSON_H
#define CSHIMCTL_PBJSON_H

#include <stdbool.h>
#include <stddef.h>
#include <jansson.h>
#include <protobuf-c/protobuf-c.h>

#include <cshim/error.h>

/* Field names for descriptors generated without them (optimize_for = CODE_SIZE): names[i] is
   the name of desc->fields[i]. A table ends with a NULL desc. */
typedef struct pbjson_names_s
{
  const ProtobufCMessageDescriptor *desc;
  const char *const *names;
  size_t n_names;
} pbjson_names_t;

enum
{
  /* Print 64-bit integers as JSON numbers where they fit a signed 64-bit integer (decimal
     strings past it), as Go's encoding/json does, instead of proto3's strings. */
  PBJSON_INT64_AS_NUMBER = 1 << 0,
};

/* The JSON object of msg; every field is present (defaults included, unset messages as null).
   names may be NULL. Caller owns the result. */
json_t *pbjson_from_message(const ProtobufCMessage *msg, const pbjson_names_t *names,
                            unsigned flags);

/* A message of type desc from a JSON object. Unknown fields, wrong types and out-of-range
   numbers are errors naming the field's path. *out is freed with
   protobuf_c_message_free_unpacked (out, NULL). */
int pbjson_to_message(const ProtobufCMessageDescriptor *desc, const json_t *json,
                      ProtobufCMessage **out, cshim_error_t *err);

/* Base64 (RFC 4648, padded) of len bytes; caller frees. */
char *pbjson_base64(const unsigned char *in, size_t len);

/* protobuf-c's symbol for the descriptor of a message or service by its full name:
   "acme.greeter.v1.Greeter" -> "acme__greeter__v1__greeter__descriptor" (each part's CamelCase as
   lower_case, as protoc-c writes it). Caller frees. */
char *pbjson_descriptor_symbol(const char *full_name);

#endif
