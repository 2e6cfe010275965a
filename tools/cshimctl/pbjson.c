// SPDX-License-Identifier: Apache-2.0
// Protobuf <-> JSON through protobuf-c descriptors (proto3 JSON mapping, see pbjson.h).
#define _GNU_SOURCE
#include "pbjson.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cshim/util.h>

#include "google/protobuf/any.pb-c.h"
#include "google/protobuf/timestamp.pb-c.h"

#define MEMBER(type, msg, offset) (*(type *)((char *)(msg) + (offset)))

/* ---- shared ---------------------------------------------------------------------------------- */

static size_t
element_size(ProtobufCType type)
{
  switch (type) {
  case PROTOBUF_C_TYPE_INT32:
  case PROTOBUF_C_TYPE_SINT32:
  case PROTOBUF_C_TYPE_SFIXED32:
  case PROTOBUF_C_TYPE_UINT32:
  case PROTOBUF_C_TYPE_FIXED32:
  case PROTOBUF_C_TYPE_ENUM:
    return sizeof(uint32_t);
  case PROTOBUF_C_TYPE_INT64:
  case PROTOBUF_C_TYPE_SINT64:
  case PROTOBUF_C_TYPE_SFIXED64:
  case PROTOBUF_C_TYPE_UINT64:
  case PROTOBUF_C_TYPE_FIXED64:
    return sizeof(uint64_t);
  case PROTOBUF_C_TYPE_FLOAT:
    return sizeof(float);
  case PROTOBUF_C_TYPE_DOUBLE:
    return sizeof(double);
  case PROTOBUF_C_TYPE_BOOL:
    return sizeof(protobuf_c_boolean);
  case PROTOBUF_C_TYPE_STRING:
    return sizeof(char *);
  case PROTOBUF_C_TYPE_BYTES:
    return sizeof(ProtobufCBinaryData);
  case PROTOBUF_C_TYPE_MESSAGE:
    return sizeof(ProtobufCMessage *);
  }
  return 0;
}

static bool
is_pointer_type(ProtobufCType type)
{
  return type == PROTOBUF_C_TYPE_STRING || type == PROTOBUF_C_TYPE_MESSAGE;
}

static const char *
field_name(const ProtobufCMessageDescriptor *desc, size_t i, const pbjson_names_t *names, char *buf,
           size_t size)
{
  if (desc->fields[i].name)
    return desc->fields[i].name;
  for (const pbjson_names_t *n = names; n && n->desc; n++)
    if (n->desc == desc && i < n->n_names)
      return n->names[i];
  snprintf(buf, size, "%u", desc->fields[i].id);
  return buf;
}

char *
pbjson_base64(const unsigned char *in, size_t len)
{
  static const char tbl[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  char *out = cshim_xmalloc(4 * ((len + 2) / 3) + 1);
  size_t n = 0;

  for (size_t i = 0; i < len; i += 3) {
    uint32_t v = (uint32_t)in[i] << 16 | (i + 1 < len ? (uint32_t)in[i + 1] << 8 : 0) |
                 (i + 2 < len ? in[i + 2] : 0);
    out[n++] = tbl[(v >> 18) & 63];
    out[n++] = tbl[(v >> 12) & 63];
    out[n++] = i + 1 < len ? tbl[(v >> 6) & 63] : '=';
    out[n++] = i + 2 < len ? tbl[v & 63] : '=';
  }
  out[n] = '\0';
  return out;
}

/* Standard or URL-safe base64, padding optional; -1 on a bad character. */
static int
base64_value(int c)
{
  if (c >= 'A' && c <= 'Z')
    return c - 'A';
  if (c >= 'a' && c <= 'z')
    return c - 'a' + 26;
  if (c >= '0' && c <= '9')
    return c - '0' + 52;
  if (c == '+' || c == '-')
    return 62;
  if (c == '/' || c == '_')
    return 63;
  return -1;
}

static int
base64_decode(const char *in, ProtobufCBinaryData *out)
{
  size_t len = strlen(in), n = 0;
  uint32_t acc = 0;
  int bits = 0;

  while (len > 0 && in[len - 1] == '=')
    len--;
  out->data = cshim_xmalloc(len * 3 / 4 + 1);
  for (size_t i = 0; i < len; i++) {
    int v = base64_value((unsigned char)in[i]);
    if (v < 0) {
      free(out->data);
      out->data = NULL;
      return -1;
    }
    acc = acc << 6 | (uint32_t)v;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out->data[n++] = (uint8_t)(acc >> bits);
    }
  }
  out->len = n;
  return 0;
}

/* protobuf-c's C name of a full name: "acme.greeter.v1.Greeter" ->
   "acme__greeter__v1__greeter__descriptor" (each part's CamelCase as lower_case). */
char *
pbjson_descriptor_symbol(const char *full_name)
{
  char *out = cshim_xmalloc(3 * strlen(full_name) + sizeof("__descriptor"));
  size_t n = 0;
  bool was_upper = true;

  for (const char *p = full_name; *p; p++) {
    if (*p == '.') {
      out[n++] = '_';
      out[n++] = '_';
      was_upper = true;
    } else if (isupper((unsigned char)*p)) {
      if (!was_upper)
        out[n++] = '_';
      out[n++] = (char)tolower((unsigned char)*p);
      was_upper = true;
    } else {
      out[n++] = *p;
      was_upper = false;
    }
  }
  strcpy(out + n, "__descriptor");
  return out;
}

/* ---- message -> JSON ------------------------------------------------------------------------- */

static json_t *message_json(const ProtobufCMessage *msg, const pbjson_names_t *names,
                            unsigned flags);

static json_t *
u64_json(uint64_t v, unsigned flags)
{
  char text[24];

  if ((flags & PBJSON_INT64_AS_NUMBER) && v <= INT64_MAX)
    return json_integer((json_int_t)v);
  snprintf(text, sizeof(text), "%" PRIu64, v);
  return json_string(text);
}

static json_t *
i64_json(int64_t v, unsigned flags)
{
  char text[24];

  if (flags & PBJSON_INT64_AS_NUMBER)
    return json_integer((json_int_t)v);
  snprintf(text, sizeof(text), "%" PRId64, v);
  return json_string(text);
}

static json_t *
timestamp_json(const Google__Protobuf__Timestamp *ts)
{
  char text[64], frac[16] = "";
  struct tm tm;
  time_t secs = (time_t)ts->seconds;

  if (gmtime_r(&secs, &tm) == NULL)
    return json_null();
  if (ts->nanos > 0)
    snprintf(frac, sizeof(frac), ".%09d", ts->nanos);
  snprintf(text, sizeof(text), "%04d-%02d-%02dT%02d:%02d:%02d%sZ", tm.tm_year + 1900, tm.tm_mon + 1,
           tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, frac);
  return json_string(text);
}

static json_t *
value_json(const ProtobufCFieldDescriptor *f, const void *p, const pbjson_names_t *names,
           unsigned flags)
{
  switch (f->type) {
  case PROTOBUF_C_TYPE_INT32:
  case PROTOBUF_C_TYPE_SINT32:
  case PROTOBUF_C_TYPE_SFIXED32:
    return json_integer(*(const int32_t *)p);
  case PROTOBUF_C_TYPE_UINT32:
  case PROTOBUF_C_TYPE_FIXED32:
    return json_integer(*(const uint32_t *)p);
  case PROTOBUF_C_TYPE_INT64:
  case PROTOBUF_C_TYPE_SINT64:
  case PROTOBUF_C_TYPE_SFIXED64:
    return i64_json(*(const int64_t *)p, flags);
  case PROTOBUF_C_TYPE_UINT64:
  case PROTOBUF_C_TYPE_FIXED64:
    return u64_json(*(const uint64_t *)p, flags);
  case PROTOBUF_C_TYPE_FLOAT:
    return json_real(*(const float *)p);
  case PROTOBUF_C_TYPE_DOUBLE:
    return json_real(*(const double *)p);
  case PROTOBUF_C_TYPE_BOOL:
    return json_boolean(*(const protobuf_c_boolean *)p);
  case PROTOBUF_C_TYPE_ENUM: {
    int v = *(const int *)p;
    const ProtobufCEnumValue *ev =
        protobuf_c_enum_descriptor_get_value((const ProtobufCEnumDescriptor *)f->descriptor, v);
    return ev && ev->name ? json_string(ev->name) : json_integer(v);
  }
  case PROTOBUF_C_TYPE_STRING: {
    const char *s = *(char *const *)p;
    return s ? json_string(s) : json_null();
  }
  case PROTOBUF_C_TYPE_BYTES: {
    const ProtobufCBinaryData *b = p;
    char *text = pbjson_base64(b->data, b->len);
    json_t *j = json_string(text);
    free(text);
    return j;
  }
  case PROTOBUF_C_TYPE_MESSAGE: {
    const ProtobufCMessage *m = *(ProtobufCMessage *const *)p;
    if (m == NULL)
      return json_null();
    if (m->descriptor == &google__protobuf__timestamp__descriptor)
      return timestamp_json((const Google__Protobuf__Timestamp *)m);
    if (m->descriptor == &google__protobuf__any__descriptor) {
      const Google__Protobuf__Any *any = (const Google__Protobuf__Any *)m;
      char *text = pbjson_base64(any->value.data, any->value.len);
      json_t *j =
          json_pack("{s:s, s:s}", "@type", any->type_url ? any->type_url : "", "value", text);
      free(text);
      return j;
    }
    return message_json(m, names, flags);
  }
  }
  return json_null();
}

static json_t *
message_json(const ProtobufCMessage *msg, const pbjson_names_t *names, unsigned flags)
{
  const ProtobufCMessageDescriptor *desc = msg->descriptor;
  json_t *obj = json_object();

  for (size_t i = 0; i < desc->n_fields; i++) {
    const ProtobufCFieldDescriptor *f = &desc->fields[i];
    const void *p = (const char *)msg + f->offset;
    char buf[16];
    const char *name = field_name(desc, i, names, buf, sizeof(buf));

    if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
      if (MEMBER(uint32_t, msg, f->quantifier_offset) != f->id)
        continue;
    } else if (f->label == PROTOBUF_C_LABEL_OPTIONAL && !is_pointer_type(f->type)) {
      if (!MEMBER(protobuf_c_boolean, msg, f->quantifier_offset))
        continue;
    }
    if (f->label == PROTOBUF_C_LABEL_REPEATED) {
      size_t n = MEMBER(size_t, msg, f->quantifier_offset);
      const char *arr = *(char *const *)p;
      json_t *list = json_array();
      for (size_t k = 0; k < n; k++)
        json_array_append_new(list, value_json(f, arr + k * element_size(f->type), names, flags));
      json_object_set_new(obj, name, list);
    } else {
      json_object_set_new(obj, name, value_json(f, p, names, flags));
    }
  }
  return obj;
}

json_t *
pbjson_from_message(const ProtobufCMessage *msg, const pbjson_names_t *names, unsigned flags)
{
  return message_json(msg, names, flags);
}

/* ---- JSON -> message ------------------------------------------------------------------------- */

/* "exec_id" matches "exec_id" and "execId". */
static bool
name_matches(const char *proto_name, const char *key)
{
  const char *p = proto_name;

  if (strcmp(proto_name, key) == 0)
    return true;
  while (*p && *key) {
    if (*p == '_' && p[1] && islower((unsigned char)p[1])) {
      if (*key != toupper((unsigned char)p[1]))
        return false;
      p += 2;
    } else {
      if (*p != *key)
        return false;
      p++;
    }
    key++;
  }
  return *p == '\0' && *key == '\0';
}

static const ProtobufCFieldDescriptor *
find_field(const ProtobufCMessageDescriptor *desc, const char *key)
{
  for (size_t i = 0; i < desc->n_fields; i++)
    if (desc->fields[i].name && name_matches(desc->fields[i].name, key))
      return &desc->fields[i];
  return NULL;
}

static int message_from_json(const ProtobufCMessageDescriptor *desc, const json_t *json,
                             ProtobufCMessage **out, const char *path, cshim_error_t *err);

/* An integer from a JSON number or a decimal string (proto3 writes 64-bit ones as strings). */
static int
json_int_value(const json_t *j, bool is_signed, uint64_t *u, int64_t *s)
{
  if (json_is_integer(j)) {
    json_int_t v = json_integer_value(j);
    if (!is_signed && v < 0)
      return -1;
    *s = v;
    *u = (uint64_t)v;
    return 0;
  }
  if (json_is_real(j)) {
    double d = json_real_value(j);
    if (!(d > -9223372036854775808.0 && d < 9223372036854775808.0) || (double)(int64_t)d != d ||
        (!is_signed && d < 0))
      return -1;
    *s = (int64_t)d;
    *u = (uint64_t)*s;
    return 0;
  }
  if (json_is_string(j)) {
    const char *text = json_string_value(j);
    char *end;
    errno = 0;
    if (text[0] == '\0' || isspace((unsigned char)text[0]))
      return -1;
    if (is_signed) {
      *s = strtoll(text, &end, 10);
      *u = (uint64_t)*s;
    } else {
      if (text[0] == '-')
        return -1;
      *u = strtoull(text, &end, 10);
      *s = (int64_t)*u;
    }
    return errno || *end ? -1 : 0;
  }
  return -1;
}

/* RFC 3339 UTC text ("2026-12-02T13:00:00[.123456789]Z") to a Timestamp. */
static int
timestamp_from_text(const char *text, Google__Protobuf__Timestamp *ts)
{
  struct tm tm = {0};
  int consumed = 0, nanos = 0, digits = 0;
  const char *p;

  if (sscanf(text, "%4d-%2d-%2dT%2d:%2d:%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour,
             &tm.tm_min, &tm.tm_sec, &consumed) != 6 ||
      consumed == 0)
    return -1;
  p = text + consumed;
  if (*p == '.') {
    for (p++; isdigit((unsigned char)*p); p++, digits++)
      if (digits < 9)
        nanos = nanos * 10 + (*p - '0');
    if (digits == 0)
      return -1;
    for (; digits < 9; digits++)
      nanos *= 10;
  }
  if (strcmp(p, "Z") != 0)
    return -1;
  tm.tm_year -= 1900;
  tm.tm_mon -= 1;
  ts->seconds = (int64_t)timegm(&tm);
  ts->nanos = nanos;
  return 0;
}

static int
bad_value(const char *path, const char *what, cshim_error_t *err)
{
  return cshim_error_make(err, EINVAL, "`%s`: expected %s", path, what);
}

/* An integer of field f's type at p; 1 when f is not an integer field. */
static int
integer_from_json(const ProtobufCFieldDescriptor *f, const json_t *j, void *p, const char *path,
                  cshim_error_t *err)
{
  uint64_t u;
  int64_t s;

  switch (f->type) {
  case PROTOBUF_C_TYPE_INT32:
  case PROTOBUF_C_TYPE_SINT32:
  case PROTOBUF_C_TYPE_SFIXED32:
    if (json_int_value(j, true, &u, &s) < 0 || s < INT32_MIN || s > INT32_MAX)
      return bad_value(path, "a 32-bit integer", err);
    *(int32_t *)p = (int32_t)s;
    return 0;
  case PROTOBUF_C_TYPE_UINT32:
  case PROTOBUF_C_TYPE_FIXED32:
    if (json_int_value(j, false, &u, &s) < 0 || u > UINT32_MAX)
      return bad_value(path, "an unsigned 32-bit integer", err);
    *(uint32_t *)p = (uint32_t)u;
    return 0;
  case PROTOBUF_C_TYPE_INT64:
  case PROTOBUF_C_TYPE_SINT64:
  case PROTOBUF_C_TYPE_SFIXED64:
    if (json_int_value(j, true, &u, &s) < 0)
      return bad_value(path, "a 64-bit integer (number or decimal string)", err);
    *(int64_t *)p = s;
    return 0;
  case PROTOBUF_C_TYPE_UINT64:
  case PROTOBUF_C_TYPE_FIXED64:
    if (json_int_value(j, false, &u, &s) < 0)
      return bad_value(path, "an unsigned 64-bit integer (number or decimal string)", err);
    *(uint64_t *)p = u;
    return 0;
  default:
    return 1;
  }
}

static int
enum_from_json(const ProtobufCFieldDescriptor *f, const json_t *j, void *p, const char *path,
               cshim_error_t *err)
{
  const ProtobufCEnumDescriptor *ed = f->descriptor;
  const ProtobufCEnumValue *ev = NULL;

  if (json_is_string(j))
    ev = protobuf_c_enum_descriptor_get_value_by_name(ed, json_string_value(j));
  else if (json_is_integer(j))
    ev = protobuf_c_enum_descriptor_get_value(ed, (int)json_integer_value(j));
  if (ev == NULL)
    return bad_value(path, "a value of the enum", err);
  *(int *)p = ev->value;
  return 0;
}

/* A submessage at p: a Timestamp may be RFC 3339 text and an Any {"@type", "value"}. */
static int
submessage_from_json(const ProtobufCFieldDescriptor *f, const json_t *j, void *p, const char *path,
                     cshim_error_t *err)
{
  const ProtobufCMessageDescriptor *md = f->descriptor;

  if (json_is_null(j))
    return 0;
  if (md == &google__protobuf__timestamp__descriptor && json_is_string(j)) {
    Google__Protobuf__Timestamp *ts = cshim_xmalloc(sizeof(*ts));
    google__protobuf__timestamp__init(ts);
    if (timestamp_from_text(json_string_value(j), ts) < 0) {
      free(ts);
      return bad_value(path, "RFC 3339 UTC time (2006-01-02T15:04:05Z)", err);
    }
    *(ProtobufCMessage **)p = &ts->base;
    return 0;
  }
  if (md == &google__protobuf__any__descriptor && json_is_object(j) &&
      json_object_get(j, "@type")) {
    const json_t *type = json_object_get(j, "@type"), *value = json_object_get(j, "value");
    Google__Protobuf__Any *any;
    if (!json_is_string(type) || (value && !json_is_string(value)) || json_object_size(j) > 2)
      return bad_value(path, "{\"@type\": URL, \"value\": base64}", err);
    any = cshim_xmalloc(sizeof(*any));
    google__protobuf__any__init(any);
    *(ProtobufCMessage **)p = &any->base;
    any->type_url = cshim_xstrdup(json_string_value(type));
    if (value && base64_decode(json_string_value(value), &any->value) < 0)
      return bad_value(path, "base64 text in `value`", err);
    return 0;
  }
  return message_from_json(md, j, (ProtobufCMessage **)p, path, err);
}

/* Store one value of field f at p (an element or the member itself). */
static int
value_from_json(const ProtobufCFieldDescriptor *f, const json_t *j, void *p, const char *path,
                cshim_error_t *err)
{
  int ret = integer_from_json(f, j, p, path, err);

  if (ret <= 0)
    return ret;
  switch (f->type) {
  case PROTOBUF_C_TYPE_FLOAT:
  case PROTOBUF_C_TYPE_DOUBLE:
    if (!json_is_number(j))
      return bad_value(path, "a number", err);
    if (f->type == PROTOBUF_C_TYPE_FLOAT)
      *(float *)p = (float)json_number_value(j);
    else
      *(double *)p = json_number_value(j);
    return 0;
  case PROTOBUF_C_TYPE_BOOL:
    if (!json_is_boolean(j))
      return bad_value(path, "true or false", err);
    *(protobuf_c_boolean *)p = json_is_true(j);
    return 0;
  case PROTOBUF_C_TYPE_ENUM:
    return enum_from_json(f, j, p, path, err);
  case PROTOBUF_C_TYPE_STRING:
    if (!json_is_string(j))
      return bad_value(path, "a string", err);
    *(char **)p = cshim_xstrdup(json_string_value(j));
    return 0;
  case PROTOBUF_C_TYPE_BYTES:
    if (!json_is_string(j) || base64_decode(json_string_value(j), p) < 0)
      return bad_value(path, "base64 text", err);
    return 0;
  case PROTOBUF_C_TYPE_MESSAGE:
    return submessage_from_json(f, j, p, path, err);
  default:
    return bad_value(path, "a supported type", err);
  }
}

static int
field_from_json(ProtobufCMessage *msg, const ProtobufCFieldDescriptor *f, const json_t *j,
                const char *path, cshim_error_t *err)
{
  void *p = (char *)msg + f->offset;

  if (f->label == PROTOBUF_C_LABEL_REPEATED) {
    size_t n = json_is_null(j) ? 0 : json_array_size(j), size = element_size(f->type);
    char *arr;

    if (!json_is_array(j) && !json_is_null(j))
      return bad_value(path, "a list", err);
    if (n == 0)
      return 0;
    arr = cshim_xmalloc0(n * size);
    *(char **)p = arr;
    for (size_t k = 0; k < n; k++) {
      cshim_autofree char *elem_path = NULL;
      int ret;

      cshim_xasprintf(&elem_path, "%s[%zu]", path, k);
      ret = value_from_json(f, json_array_get(j, k), arr + k * size, elem_path, err);
      /* Count what is set so far: free_unpacked releases exactly those (a message element
         that failed half-way is set too). */
      if (ret == 0 || (f->type == PROTOBUF_C_TYPE_MESSAGE && ((void **)(void *)arr)[k]))
        MEMBER(size_t, msg, f->quantifier_offset) = k + 1;
      if (ret < 0)
        return ret;
    }
    return 0;
  }
  if (json_is_null(j))
    return 0;
  /* value_from_json stores only on success, so the message stays freeable. */
  if (value_from_json(f, j, p, path, err) < 0)
    return -1;
  if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF)
    MEMBER(uint32_t, msg, f->quantifier_offset) = f->id;
  else if (f->label == PROTOBUF_C_LABEL_OPTIONAL && !is_pointer_type(f->type))
    MEMBER(protobuf_c_boolean, msg, f->quantifier_offset) = 1;
  return 0;
}

static int
message_from_json(const ProtobufCMessageDescriptor *desc, const json_t *json,
                  ProtobufCMessage **out, const char *path, cshim_error_t *err)
{
  cshim_autofree bool *seen = NULL;
  ProtobufCMessage *msg;
  const char *key;
  json_t *value;

  if (!json_is_object(json))
    return bad_value(path[0] ? path : "(request)", "a JSON object", err);
  msg = cshim_xmalloc0(desc->sizeof_message);
  protobuf_c_message_init(desc, msg);
  /* Stored before the fields: on an error the caller frees what was built so far. */
  *out = msg;
  seen = cshim_xmalloc0(desc->n_fields + 1);
  json_object_foreach((json_t *)json, key, value)
  {
    const ProtobufCFieldDescriptor *f = find_field(desc, key);
    cshim_autofree char *field_path = NULL;

    cshim_xasprintf(&field_path, "%s%s%s", path, path[0] ? "." : "", key);
    if (f == NULL)
      return cshim_error_make(err, EINVAL, "`%s`: no such field in %s", field_path,
                              desc->name ? desc->name : "the message");
    /* "exec_id" and "execId" name one field: given twice is a mistake. */
    if (seen[f - desc->fields])
      return cshim_error_make(err, EINVAL, "`%s`: field given twice", field_path);
    seen[f - desc->fields] = true;
    if (field_from_json(msg, f, value, field_path, err) < 0)
      return -1;
  }
  return 0;
}

int
pbjson_to_message(const ProtobufCMessageDescriptor *desc, const json_t *json,
                  ProtobufCMessage **out, cshim_error_t *err)
{
  ProtobufCMessage *msg = NULL;

  if (message_from_json(desc, json, &msg, "", err) < 0) {
    if (msg)
      protobuf_c_message_free_unpacked(msg, NULL);
    *out = NULL;
    return -1;
  }
  *out = msg;
  return 0;
}
