// SPDX-License-Identifier: Apache-2.0
// The ttrpc Request envelope, and call inputs made only of strings, decoded without protobuf-c's
// generic unpacker (ttrpc_request.h).
//
// The rules are protobuf-c 1.4's, so that both accept and refuse the same bytes:
//  - a tag is a varint of at most 5 bytes, and its first byte must carry field-number bits;
//  - a varint value has at most 10 bytes; a length prefix at most 5 and must fit the input;
//  - wire types 3 and 4 (groups), 6 and 7 are refused wherever they appear;
//  - a known field with another wire type than its own is refused; an unknown one is skipped;
//  - a string, bytes or scalar field that appears twice keeps the last value; each metadata
//    entry is one more element.
#include "ttrpc_request.h"

#include <limits.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

enum
{
  WIRE_VARINT = 0,
  WIRE_64BIT = 1,
  WIRE_LEN = 2,
  WIRE_32BIT = 5,
};

/* One field as it lies in the input. */
struct field
{
  uint32_t number;
  unsigned wire;
  uint64_t varint;     /* WIRE_VARINT: the value */
  const uint8_t *data; /* WIRE_LEN: the bytes after the length prefix */
  size_t len;
};

static void *
alloc_(ProtobufCAllocator *a, size_t n)
{
  return a ? a->alloc(a->allocator_data, n) : malloc(n);
}

static void
free_(ProtobufCAllocator *a, void *p)
{
  if (a)
    a->free(a->allocator_data, p);
  else
    free(p);
}

/* The value of a field whose tag took the first n of the rem bytes at p. Returns the field's
   size, 0 when it is malformed. */
static size_t
read_value(const uint8_t *p, size_t rem, size_t n, struct field *f)
{
  size_t max, i;
  unsigned shift;

  p += n;
  rem -= n;
  switch (f->wire) {
  case WIRE_VARINT:
    max = rem < 10 ? rem : 10;
    f->varint = 0;
    for (i = 0, shift = 0; i < max; i++, shift += 7) {
      f->varint |= (uint64_t)(p[i] & 0x7f) << shift;
      if ((p[i] & 0x80) == 0)
        return n + i + 1;
    }
    return 0;
  case WIRE_64BIT:
    return rem < 8 ? 0 : n + 8;
  case WIRE_32BIT:
    return rem < 4 ? 0 : n + 4;
  case WIRE_LEN: {
    size_t val = 0;
    max = rem < 5 ? rem : 5;
    for (i = 0, shift = 0; i < max; i++, shift += 7) {
      val |= (size_t)(p[i] & 0x7f) << shift;
      if ((p[i] & 0x80) == 0)
        break;
    }
    if (i == max || val > INT_MAX || val > rem - (i + 1))
      return 0;
    f->data = p + i + 1;
    f->len = val;
    return n + i + 1 + val;
  }
  default:
    return 0;
  }
}

/* Read the field at p (rem > 0 bytes left). Returns its size, 0 when it is malformed. */
static inline size_t
read_field(const uint8_t *p, size_t rem, struct field *f)
{
  size_t n = 1, max;
  unsigned shift;

  if ((p[0] & 0xf8) == 0) /* field number 0 */
    return 0;
  f->wire = p[0] & 7;
  f->number = (p[0] & 0x7fu) >> 3;
  if ((p[0] & 0x80) == 0) {
    /* What every field of a Request is: a one-byte tag, and a string under 128 bytes. */
    if (f->wire == WIRE_LEN && rem >= 2 && p[1] < 0x80) {
      if (p[1] > rem - 2)
        return 0;
      f->data = p + 2;
      f->len = p[1];
      return 2 + (size_t)p[1];
    }
    return read_value(p, rem, 1, f);
  }
  max = rem < 5 ? rem : 5;
  for (shift = 4;; shift += 7) {
    if (n == max)
      return 0;
    f->number |= (uint32_t)(p[n] & 0x7f) << shift;
    if ((p[n++] & 0x80) == 0)
      break;
  }
  return read_value(p, rem, n, f);
}

/* A string field: replaces what *s held (protobuf-c frees the earlier value). */
static bool
set_string(ProtobufCAllocator *a, char **s, const struct field *f)
{
  char *v;

  if (f->wire != WIRE_LEN)
    return false;
  v = alloc_(a, f->len + 1);
  if (!v)
    return false;
  memcpy(v, f->data, f->len);
  v[f->len] = '\0';
  if (*s && *s != protobuf_c_empty_string)
    free_(a, *s);
  *s = v;
  return true;
}

static Ttrpc__KeyValue *
decode_key_value(ProtobufCAllocator *a, const uint8_t *p, size_t len)
{
  static const Ttrpc__KeyValue init = TTRPC__KEY_VALUE__INIT;
  Ttrpc__KeyValue *kv = alloc_(a, sizeof(*kv));
  struct field f;
  size_t n;

  if (!kv)
    return NULL;
  *kv = init;
  for (; len > 0; p += n, len -= n) {
    n = read_field(p, len, &f);
    if (n == 0 || (f.number == 1 && !set_string(a, &kv->key, &f)) ||
        (f.number == 2 && !set_string(a, &kv->value, &f))) {
      ttrpc__key_value__free_unpacked(kv, a);
      return NULL;
    }
  }
  return kv;
}

/* One field of the Request other than metadata into req. */
static bool
set_request_field(ProtobufCAllocator *a, Ttrpc__Request *req, const struct field *f)
{
  switch (f->number) {
  case 1:
    return set_string(a, &req->service, f);
  case 2:
    return set_string(a, &req->method, f);
  case 3:
    if (f->wire != WIRE_LEN)
      return false;
    if (req->payload.data)
      free_(a, req->payload.data);
    req->payload.data = NULL;
    req->payload.len = f->len;
    if (f->len > 0) {
      req->payload.data = alloc_(a, f->len);
      if (!req->payload.data)
        return false;
      memcpy(req->payload.data, f->data, f->len);
    }
    return true;
  case 4:
    if (f->wire != WIRE_VARINT)
      return false;
    req->timeout_nano = (int64_t)f->varint;
    return true;
  default:
    return true; /* unknown: skipped */
  }
}

/* The next metadata entry (its array has room). */
static bool
add_metadata(ProtobufCAllocator *a, Ttrpc__Request *req, const uint8_t *p, size_t len)
{
  Ttrpc__KeyValue *kv = decode_key_value(a, p, len);

  if (!kv)
    return false;
  req->metadata[req->n_metadata++] = kv;
  return true;
}

/* Metadata entries remembered in one pass over the input; a Request with more is read twice
   (the second pass to find the others). containerd sends one to three. */
#define METADATA_SEEN_MAX 8

Ttrpc__Request *
host_ttrpc_request_decode(ProtobufCAllocator *allocator, size_t len, const uint8_t *data)
{
  static const Ttrpc__Request init = TTRPC__REQUEST__INIT;
  struct
  {
    const uint8_t *data;
    size_t len;
  } seen[METADATA_SEEN_MAX];
  Ttrpc__Request *req;
  struct field f;
  size_t n, i, n_metadata = 0;

  req = alloc_(allocator, sizeof(*req));
  if (!req)
    return NULL;
  *req = init;
  for (i = 0; i < len; i += n) {
    n = read_field(data + i, len - i, &f);
    if (n == 0)
      goto fail;
    if (f.number == 5) {
      if (f.wire != WIRE_LEN)
        goto fail;
      if (n_metadata < METADATA_SEEN_MAX) {
        seen[n_metadata].data = f.data;
        seen[n_metadata].len = f.len;
      }
      n_metadata++;
    } else if (!set_request_field(allocator, req, &f))
      goto fail;
  }
  if (n_metadata == 0)
    return req;
  req->metadata = alloc_(allocator, n_metadata * sizeof(*req->metadata));
  if (!req->metadata)
    goto fail;
  for (i = 0; i < n_metadata && i < METADATA_SEEN_MAX; i++)
    if (!add_metadata(allocator, req, seen[i].data, seen[i].len))
      goto fail;
  if (n_metadata > METADATA_SEEN_MAX) {
    size_t skip = METADATA_SEEN_MAX;
    for (i = 0; i < len; i += n) {
      n = read_field(data + i, len - i, &f); /* the first pass read it: it cannot fail */
      if (f.number != 5)
        continue;
      if (skip > 0)
        skip--;
      else if (!add_metadata(allocator, req, f.data, f.len))
        goto fail;
    }
  }
  return req;

fail:
  ttrpc__request__free_unpacked(req, allocator);
  return NULL;
}

/* Messages with more string fields than this go to protobuf-c (the field lookup is linear). */
#define STRINGS_MAX_FIELDS 8

bool
host_ttrpc_strings_only(const ProtobufCMessageDescriptor *desc)
{
  if (desc->n_fields == 0 || desc->n_fields > STRINGS_MAX_FIELDS)
    return false;
  for (unsigned i = 0; i < desc->n_fields; i++) {
    const ProtobufCFieldDescriptor *f = &desc->fields[i];
    if (f->type != PROTOBUF_C_TYPE_STRING || f->label != PROTOBUF_C_LABEL_NONE ||
        (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) ||
        (f->default_value != NULL && f->default_value != &protobuf_c_empty_string))
      return false;
  }
  return true;
}

ProtobufCMessage *
host_ttrpc_unpack_strings(const ProtobufCMessageDescriptor *desc, ProtobufCAllocator *allocator,
                          size_t len, const uint8_t *data)
{
  ProtobufCMessage *msg = alloc_(allocator, desc->sizeof_message);
  struct field f;
  size_t n, i;

  if (!msg)
    return NULL;
  protobuf_c_message_init(desc, msg);
  for (i = 0; i < len; i += n) {
    unsigned k;

    n = read_field(data + i, len - i, &f);
    if (n == 0)
      goto fail;
    for (k = 0; k < desc->n_fields && desc->fields[k].id != f.number; k++)
      ;
    if (k < desc->n_fields &&
        !set_string(allocator, (char **)((uint8_t *)msg + desc->fields[k].offset), &f))
      goto fail;
  }
  return msg;

fail:
  protobuf_c_message_free_unpacked(msg, allocator);
  return NULL;
}
