// SPDX-License-Identifier: Apache-2.0
// Spans, W3C trace context, the bounded export queue and the OTLP encoding: the parts of the
// tracing plugin that touch neither the loop nor the network.
#include "tracing.h"

#include <cshim/util.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "opentelemetry/proto/collector/trace/v1/trace_service.pb-c.h"

/* W3C trace context is lower-case hex only. */
static int
hex_digit(char c)
{
  return c >= 'A' && c <= 'F' ? -1 : cshim_hexval(c);
}

static int
parse_hex(const char *s, uint8_t *out, size_t n)
{
  for (size_t i = 0; i < n; i++) {
    int hi = hex_digit(s[2 * i]), lo = hex_digit(s[2 * i + 1]);
    if (hi < 0 || lo < 0)
      return -EINVAL;
    out[i] = (uint8_t)(hi << 4 | lo);
  }
  return 0;
}

static bool
all_zero(const uint8_t *p, size_t n)
{
  for (size_t i = 0; i < n; i++)
    if (p[i])
      return false;
  return true;
}

int
tracing_traceparent_parse(const char *s, uint8_t trace_id[16], uint8_t span_id[8], uint8_t *flags)
{
  uint8_t version, t[16], sp[8], f;
  size_t len;

  if (s == NULL)
    return -EINVAL;
  len = strlen(s);
  if (len < CSHIM_TRACEPARENT_LEN || s[2] != '-' || s[35] != '-' || s[52] != '-')
    return -EINVAL;
  if (parse_hex(s, &version, 1) < 0 || version == 0xff)
    return -EINVAL;
  /* Version 00 is exactly 55 characters; a later version may append "-<more>". */
  if (len > CSHIM_TRACEPARENT_LEN && (version == 0 || s[CSHIM_TRACEPARENT_LEN] != '-'))
    return -EINVAL;
  if (parse_hex(s + 3, t, 16) < 0 || parse_hex(s + 36, sp, 8) < 0 || parse_hex(s + 53, &f, 1) < 0)
    return -EINVAL;
  if (all_zero(t, 16) || all_zero(sp, 8))
    return -EINVAL;
  memcpy(trace_id, t, 16);
  memcpy(span_id, sp, 8);
  *flags = f;
  return 0;
}

static void
put_hex(char *out, const uint8_t *p, size_t n)
{
  static const char digits[] = "0123456789abcdef";
  for (size_t i = 0; i < n; i++) {
    out[2 * i] = digits[p[i] >> 4];
    out[2 * i + 1] = digits[p[i] & 15];
  }
}

void
tracing_traceparent_format(const uint8_t trace_id[16], const uint8_t span_id[8], uint8_t flags,
                           char *buf)
{
  memcpy(buf, "00-", 3);
  put_hex(buf + 3, trace_id, 16);
  buf[35] = '-';
  put_hex(buf + 36, span_id, 8);
  buf[52] = '-';
  put_hex(buf + 53, &flags, 1);
  buf[CSHIM_TRACEPARENT_LEN] = '\0';
}

void
tracing_random_id(uint8_t *buf, size_t n)
{
  do {
    ssize_t got = getrandom(buf, n, GRND_NONBLOCK);
    if (got != (ssize_t)n) {
      /* Ids need to be unique, not secret: a weaker source beats no span. */
      static uint64_t counter;
      uint64_t x = cshim_now_ns() ^ ((uint64_t)getpid() << 32) ^ ++counter;
      for (size_t i = 0; i < n; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        buf[i] = (uint8_t)x;
      }
    }
  } while (all_zero(buf, n));
}

uint64_t
tracing_unix_ns(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static char *
bounded_strdup(const char *s)
{
  return cshim_xstrndup(s ? s : "", TRACING_MAX_STRING);
}

tracing_span_t *
tracing_span_new(const char *name, int kind)
{
  tracing_span_t *s = cshim_xmalloc0(sizeof *s);
  s->name = bounded_strdup(name);
  s->kind = kind;
  s->flags = 1;
  tracing_random_id(s->span_id, sizeof s->span_id);
  s->start_unix_ns = tracing_unix_ns();
  return s;
}

static struct tracing_attr *
attr_slot(tracing_span_t *span, const char *key)
{
  for (unsigned i = 0; i < span->n_attrs; i++)
    if (strcmp(span->attrs[i].key, key) == 0) {
      free(span->attrs[i].value);
      span->attrs[i].value = NULL;
      return &span->attrs[i];
    }
  if (span->n_attrs == TRACING_MAX_ATTRS) {
    span->dropped_attrs++;
    return NULL;
  }
  span->attrs[span->n_attrs].key = bounded_strdup(key);
  return &span->attrs[span->n_attrs++];
}

void
tracing_span_set_attr(tracing_span_t *span, const char *key, const char *value)
{
  struct tracing_attr *a;

  if (span == NULL || key == NULL || value == NULL)
    return;
  a = attr_slot(span, key);
  if (a)
    a->value = bounded_strdup(value);
}

void
tracing_span_set_int(tracing_span_t *span, const char *key, int64_t value)
{
  struct tracing_attr *a;

  if (span == NULL || key == NULL)
    return;
  a = attr_slot(span, key);
  if (a)
    a->int_value = value;
}

void
tracing_span_free(tracing_span_t *span)
{
  if (span == NULL)
    return;
  for (unsigned i = 0; i < span->n_attrs; i++) {
    free(span->attrs[i].key);
    free(span->attrs[i].value);
  }
  free(span->trace_state);
  free(span->name);
  free(span->status_message);
  free(span);
}

void
tracing_span_list_free(cshim_list_t *list)
{
  cshim_list_t *l;

  while ((l = cshim_list_first(list)) != NULL) {
    cshim_list_remove(l);
    tracing_span_free(cshim_list_entry(l, tracing_span_t, link));
  }
}

bool
tracing_queue_push(tracing_queue_t *q, tracing_span_t *span)
{
  if (q->n >= q->max) {
    q->dropped++;
    tracing_span_free(span);
    return false;
  }
  cshim_list_push_back(&q->spans, &span->link);
  q->n++;
  q->accepted++;
  return true;
}

void
tracing_queue_take(tracing_queue_t *q, size_t max, cshim_list_t *out, size_t *n)
{
  cshim_list_t *l;
  size_t k = 0;

  while (k < max && (l = cshim_list_first(&q->spans)) != NULL) {
    cshim_list_remove(l);
    cshim_list_push_back(out, l);
    k++;
  }
  q->n -= k;
  *n = k;
}

void
tracing_queue_clear(tracing_queue_t *q)
{
  q->dropped += q->n;
  tracing_span_list_free(&q->spans);
  q->n = 0;
}

/* ---- OTLP encoding: messages built on the stack and in one arena per request ---- */

typedef Opentelemetry__Proto__Common__V1__KeyValue KeyValue;
typedef Opentelemetry__Proto__Common__V1__AnyValue AnyValue;
typedef Opentelemetry__Proto__Trace__V1__Span Span;

static void
fill_kv(KeyValue *kv, AnyValue *v, const char *key, const char *str, int64_t ival)
{
  opentelemetry__proto__common__v1__key_value__init(kv);
  opentelemetry__proto__common__v1__any_value__init(v);
  kv->key = (char *)key;
  kv->value = v;
  if (str) {
    v->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE;
    v->string_value = (char *)str;
  } else {
    v->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE;
    v->int_value = ival;
  }
}

/* Span `s` as an OTLP span in sp, with its status and attributes in the caller's arrays
   (TRACING_MAX_ATTRS each of kvs, vals and kvps), which sp points into. */
static void
encode_span(tracing_span_t *s, Span *sp, Opentelemetry__Proto__Trace__V1__Status *status,
            KeyValue *kvs, AnyValue *vals, KeyValue **kvps)
{
  opentelemetry__proto__trace__v1__span__init(sp);
  opentelemetry__proto__trace__v1__status__init(status);
  sp->trace_id = (ProtobufCBinaryData){16, s->trace_id};
  sp->span_id = (ProtobufCBinaryData){8, s->span_id};
  if (s->has_parent)
    sp->parent_span_id = (ProtobufCBinaryData){8, s->parent_id};
  sp->trace_state = s->trace_state ? s->trace_state : (char *)"";
  sp->name = s->name;
  sp->kind = s->kind;
  sp->start_time_unix_nano = s->start_unix_ns;
  sp->end_time_unix_nano = s->end_unix_ns;
  sp->flags = s->flags;
  for (unsigned a = 0; a < s->n_attrs; a++) {
    fill_kv(&kvs[a], &vals[a], s->attrs[a].key, s->attrs[a].value, s->attrs[a].int_value);
    kvps[a] = &kvs[a];
  }
  sp->attributes = kvps;
  sp->n_attributes = s->n_attrs;
  sp->dropped_attributes_count = s->dropped_attrs;
  status->code = s->error ? OPENTELEMETRY__PROTO__TRACE__V1__STATUS__STATUS_CODE__STATUS_CODE_ERROR
                          : OPENTELEMETRY__PROTO__TRACE__V1__STATUS__STATUS_CODE__STATUS_CODE_UNSET;
  status->message = s->status_message ? s->status_message : (char *)"";
  sp->status = status;
}

uint8_t *
tracing_encode(const char *service, const char *service_instance, const cshim_list_t *list,
               size_t n, size_t *len)
{
  Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceRequest req =
      OPENTELEMETRY__PROTO__COLLECTOR__TRACE__V1__EXPORT_TRACE_SERVICE_REQUEST__INIT;
  Opentelemetry__Proto__Trace__V1__ResourceSpans rs =
      OPENTELEMETRY__PROTO__TRACE__V1__RESOURCE_SPANS__INIT;
  Opentelemetry__Proto__Trace__V1__ResourceSpans *rs_list[1] = {&rs};
  Opentelemetry__Proto__Resource__V1__Resource resource =
      OPENTELEMETRY__PROTO__RESOURCE__V1__RESOURCE__INIT;
  Opentelemetry__Proto__Trace__V1__ScopeSpans ss =
      OPENTELEMETRY__PROTO__TRACE__V1__SCOPE_SPANS__INIT;
  Opentelemetry__Proto__Trace__V1__ScopeSpans *ss_list[1] = {&ss};
  Opentelemetry__Proto__Common__V1__InstrumentationScope scope =
      OPENTELEMETRY__PROTO__COMMON__V1__INSTRUMENTATION_SCOPE__INIT;
  KeyValue res_kv[2];
  AnyValue res_v[2];
  KeyValue *res_kvp[2] = {&res_kv[0], &res_kv[1]};
  Span *spans = cshim_xmalloc0((n ? n : 1) * sizeof *spans);
  Span **span_ptrs = cshim_xmalloc0((n ? n : 1) * sizeof *span_ptrs);
  Opentelemetry__Proto__Trace__V1__Status *status = cshim_xmalloc0((n ? n : 1) * sizeof *status);
  KeyValue *kvs = cshim_xmalloc0((n ? n : 1) * TRACING_MAX_ATTRS * sizeof *kvs);
  AnyValue *vals = cshim_xmalloc0((n ? n : 1) * TRACING_MAX_ATTRS * sizeof *vals);
  KeyValue **kvps = cshim_xmalloc0((n ? n : 1) * TRACING_MAX_ATTRS * sizeof *kvps);
  uint8_t *out;
  size_t i = 0;
  const cshim_list_t *l;

  fill_kv(&res_kv[0], &res_v[0], "service.name", service, 0);
  fill_kv(&res_kv[1], &res_v[1], "service.instance.id", service_instance, 0);
  resource.attributes = res_kvp;
  resource.n_attributes = service_instance ? 2 : 1;
  scope.name = "cshim";
  scope.version = (char *)"";
  ss.scope = &scope;
  rs.resource = &resource;
  rs.scope_spans = ss_list;
  rs.n_scope_spans = 1;
  req.resource_spans = rs_list;
  req.n_resource_spans = 1;

  CSHIM_LIST_FOREACH (l, list) {
    tracing_span_t *s = cshim_list_entry(l, tracing_span_t, link);
    if (i == n)
      break;
    encode_span(s, &spans[i], &status[i], &kvs[i * TRACING_MAX_ATTRS], &vals[i * TRACING_MAX_ATTRS],
                &kvps[i * TRACING_MAX_ATTRS]);
    span_ptrs[i] = &spans[i];
    i++;
  }
  ss.spans = span_ptrs;
  ss.n_spans = i;

  *len = opentelemetry__proto__collector__trace__v1__export_trace_service_request__get_packed_size(
      &req);
  out = cshim_xmalloc(*len ? *len : 1);
  opentelemetry__proto__collector__trace__v1__export_trace_service_request__pack(&req, out);
  free(spans);
  free(span_ptrs);
  free(status);
  free(kvs);
  free(vals);
  free(kvps);
  return out;
}

char *
tracing_endpoint_from_env(const char *traces_endpoint, const char *endpoint)
{
  char *url;
  size_t n;

  if (traces_endpoint && traces_endpoint[0])
    return cshim_xstrdup(traces_endpoint);
  if (endpoint == NULL || endpoint[0] == '\0')
    return NULL;
  n = strlen(endpoint);
  cshim_xasprintf(&url, "%.*s/v1/traces", (int)(endpoint[n - 1] == '/' ? n - 1 : n), endpoint);
  return url;
}

static bool
is_token_char(char c)
{
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
         (c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

static char *
trim_copy(const char *s, size_t n)
{
  while (n > 0 && (*s == ' ' || *s == '\t')) {
    s++;
    n--;
  }
  while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t'))
    n--;
  return cshim_xstrndup(s, n);
}

/* Percent-decode in place; -EINVAL for a malformed escape or a decoded control character. */
static int
percent_decode(char *s)
{
  char *out = s;

  for (const char *p = s; *p; p++) {
    char c = *p;
    if (c == '%') {
      int hi = p[1] ? cshim_hexval(p[1]) : -1;
      int lo = hi >= 0 && p[2] ? cshim_hexval(p[2]) : -1;
      if (hi < 0 || lo < 0)
        return -EINVAL;
      c = (char)(hi << 4 | lo);
      p += 2;
    }
    if ((unsigned char)c < 0x20 || c == 0x7f)
      return -EINVAL;
    *out++ = c;
  }
  *out = '\0';
  return 0;
}

void
tracing_headers_free(char **headers)
{
  for (char **h = headers; h && *h; h++)
    free(*h);
  free(headers);
}

int
tracing_headers_parse(const char *s, char ***out, cshim_error_t *err)
{
  char **headers = NULL;
  size_t n = 0;
  const char *p = s;

  *out = NULL;
  while (p && *p) {
    const char *end = strchr(p, ',');
    size_t len = end ? (size_t)(end - p) : strlen(p);
    cshim_autofree char *item = trim_copy(p, len);
    char *eq = strchr(item, '=');
    cshim_autofree char *key = NULL, *value = NULL;

    p = end ? end + 1 : NULL;
    if (item[0] == '\0')
      continue;
    if (eq == NULL) {
      tracing_headers_free(headers);
      return cshim_error_make(err, EINVAL, "OTLP header `%.64s` has no `=`", item);
    }
    key = trim_copy(item, (size_t)(eq - item));
    value = trim_copy(eq + 1, strlen(eq + 1));
    for (const char *k = key; *k; k++)
      if (!is_token_char(*k)) {
        tracing_headers_free(headers);
        return cshim_error_make(err, EINVAL, "OTLP header name `%.64s` is not an HTTP token", key);
      }
    if (key[0] == '\0' || percent_decode(value) < 0) {
      tracing_headers_free(headers);
      return cshim_error_make(err, EINVAL, "OTLP header `%.64s`: %s", key,
                              key[0] ? "bad value (escapes or control characters)" : "empty name");
    }
    if (n == TRACING_MAX_HEADERS) {
      tracing_headers_free(headers);
      return cshim_error_make(err, E2BIG, "more than %u OTLP headers", TRACING_MAX_HEADERS);
    }
    headers = cshim_xrealloc(headers, (n + 2) * sizeof *headers);
    cshim_xasprintf(&headers[n++], "%s: %s", key, value);
    headers[n] = NULL;
  }
  *out = headers;
  return 0;
}
