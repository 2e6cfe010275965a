// SPDX-License-Identifier: Apache-2.0
// The asynchronous unary ttrpc client: connection, stream ids, deadlines, response dispatch.
#define _GNU_SOURCE
#include <cshim/ttrpc_client.h>

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>

#include <cshim/frame.h>
#include <cshim/list.h>
#include <cshim/unix_socket.h>
#include <cshim/util.h>

#include "google/rpc/status.pb-c.h"
#include "ttrpc/request.pb-c.h"

#define READ_BUF_SIZE (64u * 1024u)

enum conn_state
{
  CONN_CONNECTING,
  CONN_CONNECTED,
  CONN_BROKEN, /* the pipe is closing or closed; pending calls fail with the break error */
};

typedef struct client_call_s client_call_t;
struct client_call_s
{
  cshim_ttrpc_client_t *client;
  cshim_list_t link; /* in client->calls */
  uv_timer_t timer;  /* the deadline; the call is freed in its close callback */
  uint32_t stream_id;
  const ProtobufCMessageDescriptor *response_desc;
  cshim_ttrpc_client_cb cb;             /* decoded answer; or */
  cshim_ttrpc_client_bytes_cb bytes_cb; /* undecoded answer (cshim_ttrpc_client_call_bytes) */
  void *data;
  uint8_t *payload; /* owned; the undecoded answer until bytes_cb takes it */
  size_t payload_len;
  uint8_t *frame; /* owned until written; NULL once handed to a write request */
  size_t frame_len;
};

typedef struct write_req_s
{
  uv_write_t req;
  uint8_t *frame; /* owned */
} write_req_t;

struct cshim_ttrpc_client_s
{
  uv_loop_t *loop;
  const cshim_logger_t *log;
  char *path;
  uv_pipe_t pipe;
  uv_connect_t connect_req;
  enum conn_state state;
  bool pipe_closed;
  bool closing; /* cshim_ttrpc_client_close was called */
  /* Never started: closing it defers the end of close to the loop even when the pipe is
     already closed. */
  uv_timer_t close_timer;
  unsigned open_timers;
  void (*done_cb)(void *data);
  void *done_data;

  cshim_frame_reader_t reader;
  /* Mapped at the first read: a client that reads little (the publisher's) keeps one page of
     it resident instead of 64 kB inside a zeroed struct. */
  uint8_t *read_buf;
  uint64_t next_stream_id;

  cshim_list_t calls; /* pending calls (client_call_t.link), in stream id order */
  size_t n_pending;
  int break_code;  /* gRPC code pending calls fail with once broken */
  char *break_msg; /* owned */

  cshim_ttrpc_client_kv_t *metadata; /* owned keys and values */
  size_t n_metadata;
};

static void
maybe_free(cshim_ttrpc_client_t *client)
{
  void (*done_cb)(void *) = client->done_cb;
  void *done_data = client->done_data;

  if (!client->closing || !client->pipe_closed || client->open_timers > 0)
    return;
  cshim_frame_reader_fini(&client->reader);
  for (size_t i = 0; i < client->n_metadata; i++) {
    free((char *)client->metadata[i].key);
    free((char *)client->metadata[i].value);
  }
  free(client->metadata);
  free(client->break_msg);
  free(client->path);
  cshim_xunmap(client->read_buf, READ_BUF_SIZE);
  free(client);
  if (done_cb)
    done_cb(done_data);
}

static void
update_ref(cshim_ttrpc_client_t *client)
{
  if (client->pipe_closed || uv_is_closing((uv_handle_t *)&client->pipe))
    return;
  if (client->n_pending > 0)
    uv_ref((uv_handle_t *)&client->pipe);
  else
    uv_unref((uv_handle_t *)&client->pipe);
}

static void
unlink_call(cshim_ttrpc_client_t *client, client_call_t *call)
{
  cshim_list_remove(&call->link);
  client->n_pending--;
}

static void
close_timer_close_cb(uv_handle_t *handle)
{
  cshim_ttrpc_client_t *client = CSHIM_CONTAINER_OF(handle, cshim_ttrpc_client_t, close_timer);

  client->open_timers--;
  maybe_free(client);
}

static void
call_timer_close_cb(uv_handle_t *handle)
{
  client_call_t *call = CSHIM_CONTAINER_OF(handle, client_call_t, timer);
  cshim_ttrpc_client_t *client = call->client;

  free(call->frame);
  free(call->payload);
  free(call);
  client->open_timers--;
  maybe_free(client);
}

/* Take the call out of the client, run its callback once, and free it. `err` is taken. */
static void
complete_call(client_call_t *call, ProtobufCMessage *response, cshim_error_t err)
{
  cshim_ttrpc_client_t *client = call->client;

  unlink_call(client, call);
  update_ref(client);
  uv_timer_stop(&call->timer);
  if (call->bytes_cb)
    call->bytes_cb(call->data, cshim_steal_pointer(&call->payload), call->payload_len, &err);
  else
    call->cb(call->data, response, &err);
  cshim_error_release(&err);
  uv_close((uv_handle_t *)&call->timer, call_timer_close_cb);
}

static void
fail_call(client_call_t *call, int grpc_code, const char *msg)
{
  cshim_error_t err = NULL;

  cshim_error_make_code(&err, grpc_code, "%s", msg);
  complete_call(call, NULL, err);
}

/* Fail every pending call. The list is detached first so callbacks may close the client. */
static void
fail_all(cshim_ttrpc_client_t *client, int grpc_code, const char *msg)
{
  cshim_list_t *l;
  while ((l = cshim_list_first(&client->calls)) != NULL)
    fail_call(cshim_list_entry(l, client_call_t, link), grpc_code, msg);
}

static void
pipe_close_cb(uv_handle_t *handle)
{
  cshim_ttrpc_client_t *client = CSHIM_CONTAINER_OF(handle, cshim_ttrpc_client_t, pipe);

  client->pipe_closed = true;
  fail_all(client, client->break_code,
           client->break_msg ? client->break_msg : "ttrpc: connection closed");
  maybe_free(client);
}

/* The connection is gone: refuse new calls, close the pipe, and fail pending calls from its
   close callback (so never from inside a caller's own function). */
static void break_connection(cshim_ttrpc_client_t *client, int grpc_code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
break_connection(cshim_ttrpc_client_t *client, int grpc_code, const char *fmt, ...)
{
  va_list ap;

  if (client->state == CONN_BROKEN)
    return;
  client->state = CONN_BROKEN;
  client->break_code = grpc_code;
  va_start(ap, fmt);
  if (vasprintf(&client->break_msg, fmt, ap) < 0)
    abort();
  va_end(ap);
  cshim_log_debug(client->log, "ttrpc client `%s`: %s", client->path, client->break_msg);
  uv_close((uv_handle_t *)&client->pipe, pipe_close_cb);
}

static void
write_cb(uv_write_t *req, int status)
{
  write_req_t *w = CSHIM_CONTAINER_OF(req, write_req_t, req);
  cshim_ttrpc_client_t *client = req->handle->data;

  free(w->frame);
  free(w);
  if (status < 0 && status != UV_ECANCELED)
    break_connection(client, CSHIM_GRPC_UNAVAILABLE, "ttrpc: write to `%s`: %s", client->path,
                     uv_strerror(status));
}

static int
send_frame(cshim_ttrpc_client_t *client, client_call_t *call)
{
  write_req_t *w = cshim_xmalloc0(sizeof *w);
  uv_buf_t buf = uv_buf_init((char *)call->frame, (unsigned)call->frame_len);
  int r;

  w->frame = cshim_steal_pointer(&call->frame);
  r = uv_write(&w->req, (uv_stream_t *)&client->pipe, &buf, 1, write_cb);
  if (r < 0) {
    call->frame = cshim_steal_pointer(&w->frame);
    free(w);
  }
  return r;
}

static void
dispatch_response(cshim_ttrpc_client_t *client, const cshim_frame_t *frame, bool oversized)
{
  client_call_t *call = NULL;
  Ttrpc__Response *resp;
  ProtobufCMessage *msg = NULL;
  cshim_error_t err = NULL;
  cshim_list_t *l;

  CSHIM_LIST_FOREACH (l, &client->calls) {
    if (cshim_list_entry(l, client_call_t, link)->stream_id == frame->header.stream_id) {
      call = cshim_list_entry(l, client_call_t, link);
      break;
    }
  }
  if (call == NULL) {
    cshim_log_debug(client->log, "ttrpc client `%s`: dropping response for stream %u", client->path,
                    frame->header.stream_id);
    return;
  }

  if (oversized) {
    cshim_error_make_code(&err, CSHIM_GRPC_RESOURCE_EXHAUSTED,
                          "message length %u exceed maximum message size of %u",
                          frame->header.length, CSHIM_FRAME_MAX_DATA);
    complete_call(call, NULL, err);
    return;
  }

  resp = ttrpc__response__unpack(NULL, frame->header.length, frame->data);
  if (resp == NULL) {
    fail_call(call, CSHIM_GRPC_INTERNAL, "ttrpc: cannot decode response");
    return;
  }
  if (resp->status && resp->status->code != CSHIM_GRPC_OK) {
    cshim_error_make_code(&err, resp->status->code, "%s",
                          resp->status->message ? resp->status->message : "");
  } else if (call->bytes_cb) {
    call->payload = cshim_xmemdup(resp->payload.data, resp->payload.len);
    call->payload_len = resp->payload.len;
  } else if (call->response_desc) {
    msg =
        protobuf_c_message_unpack(call->response_desc, NULL, resp->payload.len, resp->payload.data);
    if (msg == NULL)
      cshim_error_make_code(&err, CSHIM_GRPC_INTERNAL, "ttrpc: cannot decode `%s` response",
                            call->response_desc->name);
  }
  ttrpc__response__free_unpacked(resp, NULL);
  complete_call(call, msg, err);
}

static void
alloc_cb(uv_handle_t *handle, size_t suggested, uv_buf_t *buf)
{
  cshim_ttrpc_client_t *client = CSHIM_CONTAINER_OF(handle, cshim_ttrpc_client_t, pipe);

  if (!client->read_buf)
    client->read_buf = cshim_xmap(READ_BUF_SIZE);
  *buf = uv_buf_init((char *)client->read_buf, READ_BUF_SIZE);
}

static void
read_cb(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
  cshim_ttrpc_client_t *client = CSHIM_CONTAINER_OF(stream, cshim_ttrpc_client_t, pipe);
  const uint8_t *p = (const uint8_t *)buf->base;
  size_t len = nread > 0 ? (size_t)nread : 0;

  if (nread < 0) {
    if (nread == UV_EOF)
      break_connection(client, CSHIM_GRPC_UNAVAILABLE, "ttrpc: connection closed");
    else
      break_connection(client, CSHIM_GRPC_UNAVAILABLE, "ttrpc: read from `%s`: %s", client->path,
                       uv_strerror((int)nread));
    return;
  }

  /* A callback may close the client: stop at once when it does. */
  while (len > 0 && client->state == CONN_CONNECTED) {
    cshim_frame_t frame = {0};
    enum cshim_frame_result r = cshim_frame_reader_next(&client->reader, &p, &len, &frame);

    if (r == CSHIM_FRAME_NEED_MORE)
      break;
    if (frame.header.type == CSHIM_FRAME_RESPONSE)
      dispatch_response(client, &frame, r == CSHIM_FRAME_OVERSIZED);
    else
      cshim_log_debug(client->log, "ttrpc client `%s`: ignoring frame type %u on stream %u",
                      client->path, frame.header.type, frame.header.stream_id);
    free(frame.data);
  }
}

static void
connect_cb(uv_connect_t *req, int status)
{
  cshim_ttrpc_client_t *client = CSHIM_CONTAINER_OF(req, cshim_ttrpc_client_t, connect_req);
  cshim_list_t *l;
  int r;

  if (client->state != CONN_CONNECTING)
    return;
  if (status < 0) {
    break_connection(client, CSHIM_GRPC_UNAVAILABLE, "ttrpc: connect to `%s`: %s", client->path,
                     uv_strerror(status));
    return;
  }
  client->state = CONN_CONNECTED;
  update_ref(client);
  r = uv_read_start((uv_stream_t *)&client->pipe, alloc_cb, read_cb);
  if (r < 0) {
    break_connection(client, CSHIM_GRPC_UNAVAILABLE, "ttrpc: read from `%s`: %s", client->path,
                     uv_strerror(r));
    return;
  }
  CSHIM_LIST_FOREACH (l, &client->calls) {
    client_call_t *call = cshim_list_entry(l, client_call_t, link);
    if (call->frame == NULL)
      continue;
    r = send_frame(client, call);
    if (r < 0) {
      break_connection(client, CSHIM_GRPC_UNAVAILABLE, "ttrpc: write to `%s`: %s", client->path,
                       uv_strerror(r));
      return;
    }
  }
}

int
cshim_ttrpc_client_new(uv_loop_t *loop, const char *address, const cshim_logger_t *log,
                       cshim_ttrpc_client_t **out, cshim_error_t *err)
{
  cshim_ttrpc_client_t *client;
  const char *path = address;
  struct sockaddr_un addr;
  socklen_t addr_len;
  int r;

  if (path && strncmp(path, "unix://", 7) == 0)
    path += 7;
  if (path == NULL || path[0] == '\0')
    return cshim_error_make(err, EINVAL, "empty ttrpc address");
  if (cshim_unix_sockaddr(path, false, &addr, &addr_len, err) < 0) /* libuv fills its own */
    return cshim_error_wrap(err, "ttrpc address");

  client = cshim_xmalloc0(sizeof *client);
  client->loop = loop;
  client->log = log;
  client->path = cshim_xstrdup(path);
  client->next_stream_id = 1;
  client->state = CONN_CONNECTING;
  client->break_code = CSHIM_GRPC_UNAVAILABLE;
  cshim_frame_reader_init(&client->reader, CSHIM_FRAME_MAX_DATA);
  r = uv_pipe_init(loop, &client->pipe, 0);
  if (r < 0) {
    cshim_frame_reader_fini(&client->reader);
    free(client->path);
    free(client);
    return cshim_error_from_uv(err, r, "ttrpc client for `%s`", path);
  }
  client->pipe.data = client;
  uv_timer_init(loop, &client->close_timer);
  client->open_timers++;
  uv_pipe_connect(&client->connect_req, &client->pipe, client->path, connect_cb);
  update_ref(client);
  *out = client;
  return 0;
}

void
cshim_ttrpc_client_add_metadata(cshim_ttrpc_client_t *client, const char *key, const char *value)
{
  char *k = cshim_xstrdup(key);

  for (char *c = k; *c; c++)
    *c = (char)tolower((unsigned char)*c);
  client->metadata =
      cshim_xrealloc(client->metadata, (client->n_metadata + 1) * sizeof(*client->metadata));
  client->metadata[client->n_metadata].key = k;
  client->metadata[client->n_metadata].value = cshim_xstrdup(value ? value : "");
  client->n_metadata++;
}

static void
deadline_cb(uv_timer_t *timer)
{
  client_call_t *call = CSHIM_CONTAINER_OF(timer, client_call_t, timer);

  fail_call(call, CSHIM_GRPC_DEADLINE_EXCEEDED, "context deadline exceeded");
}

static Ttrpc__KeyValue *
make_kv(Ttrpc__KeyValue *slot, const char *key, const char *value)
{
  ttrpc__key_value__init(slot);
  slot->key = (char *)key;
  slot->value = (char *)value;
  return slot;
}

/* The Request frame of a call on the client's next stream: the client's metadata, then the
   call's (keys lower-cased), and the timeout. */
static int
pack_request(cshim_ttrpc_client_t *client, const char *service, const char *method,
             const uint8_t *payload, size_t payload_len, const cshim_ttrpc_client_opts_t *opts,
             cshim_frame_header_t *header, uint8_t **frame, size_t *frame_len, cshim_error_t *err)
{
  Ttrpc__Request req = TTRPC__REQUEST__INIT;
  size_t n_md = client->n_metadata + opts->n_metadata;
  cshim_autofree Ttrpc__KeyValue *kvs = NULL;
  cshim_autofree Ttrpc__KeyValue **kv_ptrs = NULL;
  cshim_autofree char **lower_keys = NULL;
  int r;

  kvs = cshim_xmalloc0((n_md ? n_md : 1) * sizeof(*kvs));
  kv_ptrs = cshim_xmalloc0((n_md ? n_md : 1) * sizeof(*kv_ptrs));
  lower_keys = cshim_xmalloc0((opts->n_metadata ? opts->n_metadata : 1) * sizeof(*lower_keys));
  for (size_t i = 0; i < client->n_metadata; i++)
    kv_ptrs[i] = make_kv(&kvs[i], client->metadata[i].key, client->metadata[i].value);
  for (size_t i = 0; i < opts->n_metadata; i++) {
    size_t j = client->n_metadata + i;

    lower_keys[i] = cshim_xstrdup(opts->metadata[i].key ? opts->metadata[i].key : "");
    for (char *c = lower_keys[i]; *c; c++)
      *c = (char)tolower((unsigned char)*c);
    kv_ptrs[j] =
        make_kv(&kvs[j], lower_keys[i], opts->metadata[i].value ? opts->metadata[i].value : "");
  }

  req.service = (char *)service;
  req.method = (char *)method;
  req.payload.data = (uint8_t *)payload;
  req.payload.len = payload_len;
  req.timeout_nano = (int64_t)(opts->timeout_ms * 1000000u);
  req.n_metadata = n_md;
  req.metadata = kv_ptrs;
  header->stream_id = (uint32_t)client->next_stream_id;
  r = cshim_frame_pack(header, &req.base, CSHIM_FRAME_MAX_DATA, frame, frame_len, err);
  for (size_t i = 0; i < opts->n_metadata; i++)
    free(lower_keys[i]);
  return r;
}

/* The one way a call starts: with cb (decoded answer) or bytes_cb (undecoded answer). */
static int
start_call(cshim_ttrpc_client_t *client, const char *service, const char *method,
           const uint8_t *payload, size_t payload_len,
           const ProtobufCMessageDescriptor *response_desc, const cshim_ttrpc_client_opts_t *opts,
           cshim_ttrpc_client_cb cb, cshim_ttrpc_client_bytes_cb bytes_cb, void *data,
           cshim_error_t *err)
{
  static const cshim_ttrpc_client_opts_t no_opts = {0};
  cshim_frame_header_t header = {.type = CSHIM_FRAME_REQUEST};
  cshim_autofree uint8_t *frame = NULL;
  size_t frame_len = 0;
  client_call_t *call;
  int r;

  if (opts == NULL)
    opts = &no_opts;
  if (client->closing || client->state == CONN_BROKEN)
    return cshim_error_make(err, ENOTCONN, "ttrpc: call %s/%s: %s", service, method,
                            client->break_msg ? client->break_msg : "client closed");
  if (client->next_stream_id > UINT32_MAX)
    return cshim_error_make(err, ERANGE, "ttrpc: call %s/%s: stream ids exhausted", service,
                            method);
  r = pack_request(client, service, method, payload, payload_len, opts, &header, &frame, &frame_len,
                   err);
  if (r < 0)
    return cshim_error_wrap(err, "ttrpc: call %s/%s", service, method);

  call = cshim_xmalloc0(sizeof *call);
  call->client = client;
  call->stream_id = header.stream_id;
  call->response_desc = response_desc;
  call->cb = cb;
  call->bytes_cb = bytes_cb;
  call->data = data;
  call->frame = cshim_steal_pointer(&frame);
  call->frame_len = frame_len;

  if (client->state == CONN_CONNECTED) {
    r = send_frame(client, call);
    if (r < 0) {
      free(call->frame);
      free(call);
      break_connection(client, CSHIM_GRPC_UNAVAILABLE, "ttrpc: write to `%s`: %s", client->path,
                       uv_strerror(r));
      return cshim_error_from_uv(err, r, "ttrpc: call %s/%s: write", service, method);
    }
  }

  uv_timer_init(client->loop, &call->timer);
  client->open_timers++;
  if (opts->timeout_ms > 0) {
    /* The deadline counts from now, not from the start of this loop iteration. */
    uv_update_time(client->loop);
    uv_timer_start(&call->timer, deadline_cb, opts->timeout_ms, 0);
  }

  client->next_stream_id += 2;
  cshim_list_push_back(&client->calls, &call->link);
  client->n_pending++;
  update_ref(client);
  return 0;
}

int
cshim_ttrpc_client_call_raw(cshim_ttrpc_client_t *client, const char *service, const char *method,
                            const uint8_t *payload, size_t payload_len,
                            const ProtobufCMessageDescriptor *response_desc,
                            const cshim_ttrpc_client_opts_t *opts, cshim_ttrpc_client_cb cb,
                            void *data, cshim_error_t *err)
{
  return start_call(client, service, method, payload, payload_len, response_desc, opts, cb, NULL,
                    data, err);
}

int
cshim_ttrpc_client_call_bytes(cshim_ttrpc_client_t *client, const char *service, const char *method,
                              const uint8_t *payload, size_t payload_len,
                              const cshim_ttrpc_client_opts_t *opts, cshim_ttrpc_client_bytes_cb cb,
                              void *data, cshim_error_t *err)
{
  return start_call(client, service, method, payload, payload_len, NULL, opts, NULL, cb, data, err);
}

int
cshim_ttrpc_client_call(cshim_ttrpc_client_t *client, const char *service, const char *method,
                        const ProtobufCMessage *request,
                        const ProtobufCMessageDescriptor *response_desc,
                        const cshim_ttrpc_client_opts_t *opts, cshim_ttrpc_client_cb cb, void *data,
                        cshim_error_t *err)
{
  cshim_autofree uint8_t *payload = NULL;
  size_t len = request ? protobuf_c_message_get_packed_size(request) : 0;

  if (len > CSHIM_FRAME_MAX_DATA)
    return cshim_error_make(err, EMSGSIZE,
                            "ttrpc: call %s/%s: message length %zu exceed maximum message size "
                            "of %u",
                            service, method, len, CSHIM_FRAME_MAX_DATA);
  payload = cshim_xmalloc(len);
  if (len > 0)
    protobuf_c_message_pack(request, payload);
  return cshim_ttrpc_client_call_raw(client, service, method, payload, len, response_desc, opts, cb,
                                     data, err);
}

bool
cshim_ttrpc_client_is_connected(const cshim_ttrpc_client_t *client)
{
  return !client->closing && client->state == CONN_CONNECTED;
}

bool
cshim_ttrpc_client_is_broken(const cshim_ttrpc_client_t *client)
{
  return client->closing || client->state == CONN_BROKEN;
}

size_t
cshim_ttrpc_client_n_pending(const cshim_ttrpc_client_t *client)
{
  return client->n_pending;
}

void
cshim_ttrpc_client_close(cshim_ttrpc_client_t *client, void (*done_cb)(void *data), void *data)
{
  client->closing = true;
  client->done_cb = done_cb;
  client->done_data = data;
  uv_close((uv_handle_t *)&client->close_timer, close_timer_close_cb);
  if (client->state != CONN_BROKEN) {
    client->state = CONN_BROKEN;
    uv_close((uv_handle_t *)&client->pipe, pipe_close_cb);
  }
  fail_all(client, CSHIM_GRPC_CANCELED, "ttrpc: client closed");
}
