// SPDX-License-Identifier: Apache-2.0
// The ttrpc frame codec: header encoding and the incremental frame reader.
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <cshim/frame.h>
#include <cshim/util.h>

static void
put_be32(uint8_t *p, uint32_t v)
{
  p[0] = (uint8_t)(v >> 24);
  p[1] = (uint8_t)(v >> 16);
  p[2] = (uint8_t)(v >> 8);
  p[3] = (uint8_t)v;
}

static uint32_t
get_be32(const uint8_t *p)
{
  return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

void
cshim_frame_header_encode(const cshim_frame_header_t *header, uint8_t out[CSHIM_FRAME_HEADER_SIZE])
{
  put_be32(out, header->length);
  put_be32(out + 4, header->stream_id);
  out[8] = header->type;
  out[9] = header->flags;
}

void
cshim_frame_header_decode(const uint8_t in[CSHIM_FRAME_HEADER_SIZE], cshim_frame_header_t *out)
{
  out->length = get_be32(in);
  out->stream_id = get_be32(in + 4);
  out->type = in[8];
  out->flags = in[9];
}

int
cshim_frame_pack(const cshim_frame_header_t *header, const ProtobufCMessage *msg, uint32_t max_data,
                 uint8_t **out, size_t *out_len, cshim_error_t *err)
{
  size_t n = msg ? protobuf_c_message_get_packed_size(msg) : 0;
  cshim_frame_header_t h = *header;
  uint8_t *buf;

  if (n > max_data)
    return cshim_error_make(err, EMSGSIZE, "message length %zu exceed maximum message size of %u",
                            n, max_data);

  h.length = (uint32_t)n;
  buf = cshim_xmalloc(CSHIM_FRAME_HEADER_SIZE + n);
  cshim_frame_header_encode(&h, buf);
  if (n > 0)
    protobuf_c_message_pack(msg, buf + CSHIM_FRAME_HEADER_SIZE);
  *out = buf;
  *out_len = CSHIM_FRAME_HEADER_SIZE + n;
  return 0;
}

void
cshim_frame_reader_init(cshim_frame_reader_t *reader, uint32_t max_data)
{
  memset(reader, 0, sizeof(*reader));
  reader->max_data = max_data ? max_data : CSHIM_FRAME_MAX_DATA;
}

void
cshim_frame_reader_fini(cshim_frame_reader_t *reader)
{
  free(reader->data);
  reader->data = NULL;
  reader->header_len = 0;
  reader->data_len = 0;
  reader->discarding = 0;
}

static void
consume(const uint8_t **buf, size_t *len, size_t n)
{
  *buf += n;
  *len -= n;
}

enum cshim_frame_result
cshim_frame_reader_next(cshim_frame_reader_t *reader, const uint8_t **buf, size_t *len,
                        cshim_frame_t *out)
{
  size_t n;

  if (reader->header_len < CSHIM_FRAME_HEADER_SIZE) {
    n = CSHIM_FRAME_HEADER_SIZE - reader->header_len;
    if (n > *len)
      n = *len;
    memcpy(reader->header_buf + reader->header_len, *buf, n);
    reader->header_len += n;
    consume(buf, len, n);
    if (reader->header_len < CSHIM_FRAME_HEADER_SIZE)
      return CSHIM_FRAME_NEED_MORE;

    cshim_frame_header_decode(reader->header_buf, &reader->header);
    reader->data_len = 0;
    reader->discarding = reader->header.length > reader->max_data;
    if (!reader->discarding && reader->header.length > 0)
      reader->data = cshim_xmalloc(reader->header.length);
  }

  n = reader->header.length - reader->data_len;
  if (n > *len)
    n = *len;
  if (!reader->discarding && n > 0)
    memcpy(reader->data + reader->data_len, *buf, n);
  reader->data_len += n;
  consume(buf, len, n);
  if (reader->data_len < reader->header.length)
    return CSHIM_FRAME_NEED_MORE;

  out->header = reader->header;
  out->data = cshim_steal_pointer(&reader->data);
  reader->header_len = 0;
  reader->data_len = 0;
  if (reader->discarding) {
    reader->discarding = 0;
    return CSHIM_FRAME_OVERSIZED;
  }
  return CSHIM_FRAME_COMPLETE;
}

void
cshim_frame_reader_set_limit(cshim_frame_reader_t *reader, uint32_t max_data)
{
  reader->max_data = max_data ? max_data : CSHIM_FRAME_MAX_DATA;
}

size_t
cshim_frame_reader_held(const cshim_frame_reader_t *reader)
{
  if (reader->header_len < CSHIM_FRAME_HEADER_SIZE || reader->discarding)
    return 0;
  return reader->header.length;
}

void
cshim_frame_reader_pending(const cshim_frame_reader_t *reader, uint8_t **out, size_t *len,
                           uint32_t *discarded)
{
  size_t data = 0;
  uint8_t *buf;

  *out = NULL;
  *len = 0;
  *discarded = 0;
  if (reader->header_len == 0)
    return;
  if (reader->header_len == CSHIM_FRAME_HEADER_SIZE) {
    if (reader->discarding)
      *discarded = (uint32_t)reader->data_len;
    else
      data = reader->data_len;
  }
  buf = cshim_xmalloc(reader->header_len + data);
  memcpy(buf, reader->header_buf, reader->header_len);
  if (data)
    memcpy(buf + reader->header_len, reader->data, data);
  *out = buf;
  *len = reader->header_len + data;
}

int
cshim_frame_reader_resume(cshim_frame_reader_t *reader, const uint8_t *bytes, size_t len,
                          uint32_t discarded, cshim_error_t *err)
{
  cshim_frame_t frame;
  enum cshim_frame_result res;

  if (len == 0 && discarded == 0)
    return 0;
  res = cshim_frame_reader_next(reader, &bytes, &len, &frame);
  if (res != CSHIM_FRAME_NEED_MORE || len != 0) {
    if (res != CSHIM_FRAME_NEED_MORE)
      free(frame.data);
    return cshim_error_make(err, EBADMSG, "pending frame bytes hold a whole frame");
  }
  if (discarded > 0) {
    if (reader->header_len != CSHIM_FRAME_HEADER_SIZE || !reader->discarding ||
        discarded >= reader->header.length)
      return cshim_error_make(err, EBADMSG, "pending frame: %u discarded bytes do not fit",
                              discarded);
    reader->data_len = discarded;
  }
  return 0;
}
