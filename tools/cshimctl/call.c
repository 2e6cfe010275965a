// SPDX-License-Identifier: Apache-2.0
// `cshimctl call SERVICE METHOD`: one unary request to any service registered on a shim socket,
// with the request body as binary protobuf (file or stdin) and the response as binary or hex,
// so a vendor can try a custom service without writing a client.
#define _GNU_SOURCE
#include "ctl.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cshim/ttrpc.h>
#include <cshim/util.h>

struct bytes_result
{
  bool done;
  uint8_t *payload; /* owned */
  size_t len;
  cshim_error_t err;
};

/* Read the whole request body from fd: at most CSHIM_TTRPC_MAX_MESSAGE bytes. */
static int
read_body(int fd, const char *what, uint8_t **out, size_t *len, cshim_error_t *err)
{
  cshim_autofree uint8_t *buf = NULL;
  size_t cap = 0, n = 0;

  for (;;) {
    ssize_t r;

    if (n == cap) {
      if (cap > CSHIM_TTRPC_MAX_MESSAGE)
        return cshim_error_make(err, EMSGSIZE, "request body `%s`: larger than %u bytes", what,
                                CSHIM_TTRPC_MAX_MESSAGE);
      cap = cap ? cap * 2 : 4096;
      buf = cshim_xrealloc(buf, cap + 1);
    }
    r = CSHIM_RETRY_EINTR(read(fd, buf + n, cap - n));
    if (r < 0)
      return cshim_error_sys(err, errno, "read request body `%s`", what);
    if (r == 0)
      break;
    n += (size_t)r;
  }
  if (n > CSHIM_TTRPC_MAX_MESSAGE)
    return cshim_error_make(err, EMSGSIZE, "request body `%s`: larger than %u bytes", what,
                            CSHIM_TTRPC_MAX_MESSAGE);
  *out = cshim_steal_pointer(&buf);
  *len = n;
  return 0;
}

/* The request body: --input FILE, --input - (stdin), or stdin when it is not a terminal;
   empty otherwise. */
static int
load_body(const ctl_opts_t *opts, uint8_t **out, size_t *len, cshim_error_t *err)
{
  cshim_autoclose int fd = -1;

  *out = NULL;
  *len = 0;
  if (opts->input == NULL || strcmp(opts->input, "-") == 0) {
    if (opts->input == NULL && isatty(STDIN_FILENO))
      return 0;
    return read_body(STDIN_FILENO, "<stdin>", out, len, err);
  }
  fd = open(opts->input, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return cshim_error_sys(err, errno, "open request body `%s`", opts->input);
  return read_body(fd, opts->input, out, len, err);
}

static void
bytes_cb(void *data, uint8_t *payload, size_t len, cshim_error_t *err)
{
  struct bytes_result *r = data;

  r->done = true;
  r->payload = payload;
  r->len = len;
  if (*err)
    r->err = cshim_steal_pointer(err);
}

static int
write_all(const uint8_t *p, size_t len, cshim_error_t *err)
{
  while (len > 0) {
    ssize_t w = CSHIM_RETRY_EINTR(write(STDOUT_FILENO, p, len));
    if (w < 0)
      return cshim_error_sys(err, errno, "write the response");
    p += w;
    len -= (size_t)w;
  }
  return 0;
}

static int
print_response(const ctl_opts_t *opts, const uint8_t *p, size_t len, cshim_error_t *err)
{
  static const char digits[] = "0123456789abcdef";
  cshim_autofree char *hex = NULL;

  if (!opts->hex)
    return write_all(p, len, err);
  hex = cshim_xmalloc(2 * len + 1);
  for (size_t i = 0; i < len; i++) {
    hex[2 * i] = digits[p[i] >> 4];
    hex[2 * i + 1] = digits[p[i] & 0xf];
  }
  hex[2 * len] = '\n';
  return write_all((const uint8_t *)hex, 2 * len + 1, err);
}

int
ctl_cmd_call(const ctl_opts_t *opts)
{
  cshim_ttrpc_client_opts_t copts = {.timeout_ms = opts->timeout_ms};
  struct bytes_result r = {0};
  cshim_autofree uint8_t *body = NULL;
  size_t body_len = 0;
  cshim_error_t err = NULL;
  ctl_client_t c;
  int ret;

  if (opts->n_args != 2)
    return ctl_usage_error("call: expected SERVICE METHOD (e.g. call acme.greeter.v1.Greeter "
                           "Hello)");
  if (load_body(opts, &body, &body_len, &err) < 0)
    return ctl_fail(&err);
  if (ctl_client_open(&c, opts, &err) < 0)
    return ctl_fail(&err);
  ret = cshim_ttrpc_client_call_bytes(c.client, opts->args[0], opts->args[1], body, body_len,
                                      &copts, bytes_cb, &r, &err);
  if (ret < 0) {
    ctl_client_close(&c);
    cshim_error_wrap(&err, "call %s/%s", opts->args[0], opts->args[1]);
    return ctl_fail(&err);
  }
  while (!r.done)
    uv_run(&c.loop, UV_RUN_ONCE);
  ctl_client_close(&c);
  if (r.err) {
    int code = cshim_error_grpc_code(r.err);

    cshim_error_make_code(&err, code, "call %s/%s: RPC failed: %s: %s", opts->args[0],
                          opts->args[1], cshim_grpc_code_name(code), r.err->msg ? r.err->msg : "");
    cshim_error_release(&r.err);
    return ctl_fail(&err);
  }
  ret = print_response(opts, r.payload, r.len, &err);
  free(r.payload);
  return ret < 0 ? ctl_fail(&err) : 0;
}
