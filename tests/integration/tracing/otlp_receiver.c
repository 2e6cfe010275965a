// SPDX-License-Identifier: Apache-2.0
// A local OTLP/HTTP trace receiver for the tracing test: accepts POST /v1/traces bodies
// (application/x-protobuf ExportTraceServiceRequest) on 127.0.0.1, decodes them and appends one
// line per span to a file; answers 200. A test fixture: one connection at a time, blocking.
//
// usage: otlp_receiver <port file> <spans file>   (writes the port it listens on, then serves)
// An X-Cshim-Probe request header is recorded as "header x-cshim-probe=<value>".
// Span lines: trace=<hex> span=<hex> parent=<hex or -> service=<name> kind=<n> status=<n>
//             name=<name> attrs=<k=v;...>
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <http_parser.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "opentelemetry/proto/collector/trace/v1/trace_service.pb-c.h"

struct req
{
  char url[256];
  char field[64];  /* the header being read */
  char probe[128]; /* value of X-Cshim-Probe, if sent */
  int in_probe;
  char *body;
  size_t len, cap;
  int done;
};

static int
on_url(http_parser *p, const char *at, size_t n)
{
  struct req *r = p->data;
  size_t have = strlen(r->url);
  if (have + n < sizeof r->url) {
    memcpy(r->url + have, at, n);
    r->url[have + n] = '\0';
  }
  return 0;
}

static int
on_header_field(http_parser *p, const char *at, size_t n)
{
  struct req *r = p->data;
  snprintf(r->field, sizeof r->field, "%.*s", (int)n, at);
  r->in_probe = strcasecmp(r->field, "X-Cshim-Probe") == 0;
  return 0;
}

static int
on_header_value(http_parser *p, const char *at, size_t n)
{
  struct req *r = p->data;
  if (r->in_probe)
    snprintf(r->probe, sizeof r->probe, "%.*s", (int)n, at);
  return 0;
}

static int
on_body(http_parser *p, const char *at, size_t n)
{
  struct req *r = p->data;
  if (r->len + n > r->cap) {
    r->cap = (r->len + n) * 2;
    r->body = realloc(r->body, r->cap);
  }
  memcpy(r->body + r->len, at, n);
  r->len += n;
  return 0;
}

static int
on_done(http_parser *p)
{
  ((struct req *)p->data)->done = 1;
  return 0;
}

static void
hex(FILE *f, ProtobufCBinaryData b)
{
  if (b.len == 0)
    fputc('-', f);
  for (size_t i = 0; i < b.len; i++)
    fprintf(f, "%02x", b.data[i]);
}

static void
record(FILE *f, const Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceRequest *m)
{
  for (size_t i = 0; i < m->n_resource_spans; i++) {
    const Opentelemetry__Proto__Trace__V1__ResourceSpans *rs = m->resource_spans[i];
    const char *service = "?";
    for (size_t a = 0; rs->resource && a < rs->resource->n_attributes; a++)
      if (strcmp(rs->resource->attributes[a]->key, "service.name") == 0 &&
          rs->resource->attributes[a]->value &&
          rs->resource->attributes[a]->value->value_case ==
              OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE)
        service = rs->resource->attributes[a]->value->string_value;
    for (size_t s = 0; s < rs->n_scope_spans; s++)
      for (size_t k = 0; k < rs->scope_spans[s]->n_spans; k++) {
        const Opentelemetry__Proto__Trace__V1__Span *sp = rs->scope_spans[s]->spans[k];
        fputs("trace=", f);
        hex(f, sp->trace_id);
        fputs(" span=", f);
        hex(f, sp->span_id);
        fputs(" parent=", f);
        hex(f, sp->parent_span_id);
        fprintf(f, " service=%s kind=%d status=%d name=%s attrs=", service, sp->kind,
                sp->status ? sp->status->code : 0, sp->name);
        for (size_t a = 0; a < sp->n_attributes; a++) {
          const Opentelemetry__Proto__Common__V1__AnyValue *v = sp->attributes[a]->value;
          fprintf(f, "%s=", sp->attributes[a]->key);
          if (v && v->value_case == OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE)
            fputs(v->string_value, f);
          else if (v &&
                   v->value_case == OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE)
            fprintf(f, "%lld", (long long)v->int_value);
          fputc(';', f);
        }
        fputc('\n', f);
      }
  }
  fflush(f);
}

static void
serve(int fd, FILE *out)
{
  http_parser_settings settings = {.on_url = on_url,
                                   .on_header_field = on_header_field,
                                   .on_header_value = on_header_value,
                                   .on_body = on_body,
                                   .on_message_complete = on_done};
  http_parser parser;
  struct req r = {0};
  char buf[65536];

  http_parser_init(&parser, HTTP_REQUEST);
  parser.data = &r;
  while (!r.done) {
    ssize_t n = read(fd, buf, sizeof buf);
    if (n <= 0)
      break;
    if (http_parser_execute(&parser, &settings, buf, (size_t)n) != (size_t)n)
      break;
  }
  if (r.done) {
    Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceRequest *m =
        opentelemetry__proto__collector__trace__v1__export_trace_service_request__unpack(
            NULL, r.len, (const uint8_t *)r.body);
    const char *status = "200 OK";
    if (strcmp(r.url, "/v1/traces") != 0 || m == NULL) {
      status = "400 Bad Request";
      fprintf(out, "bad request url=%s decoded=%d\n", r.url, m != NULL);
      fflush(out);
    } else {
      if (r.probe[0])
        fprintf(out, "header x-cshim-probe=%s\n", r.probe);
      record(out, m);
    }
    if (m)
      opentelemetry__proto__collector__trace__v1__export_trace_service_request__free_unpacked(m,
                                                                                              NULL);
    dprintf(fd,
            "HTTP/1.1 %s\r\nContent-Type: application/x-protobuf\r\nContent-Length: 0\r\n"
            "Connection: close\r\n\r\n",
            status);
  }
  free(r.body);
  close(fd);
}

int
main(int argc, char **argv)
{
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t alen = sizeof a;
  FILE *out, *pf;
  int l;

  if (argc != 3) {
    fprintf(stderr, "usage: %s <port file> <spans file>\n", argv[0]);
    return 2;
  }
  signal(SIGPIPE, SIG_IGN);
  out = fopen(argv[2], "a");
  l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (out == NULL || l < 0 || bind(l, (struct sockaddr *)&a, sizeof a) < 0 || listen(l, 16) < 0 ||
      getsockname(l, (struct sockaddr *)&a, &alen) < 0) {
    perror("otlp_receiver");
    return 1;
  }
  pf = fopen(argv[1], "w");
  if (pf == NULL)
    return 1;
  fprintf(pf, "%d\n", ntohs(a.sin_port));
  fclose(pf);
  for (;;) {
    int fd = accept4(l, NULL, NULL, SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR)
        continue;
      return 1;
    }
    serve(fd, out);
  }
}
