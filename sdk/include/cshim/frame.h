// SPDX-License-Identifier: Apache-2.0
// The ttrpc frame codec: the 10-byte header and an incremental reader, shared by servers and
// clients.
#ifndef CSHIM_FRAME_H
#define CSHIM_FRAME_H

#include <stddef.h>
#include <stdint.h>
#include <protobuf-c/protobuf-c.h>

#include <cshim/error.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Bytes in a frame header: length (4), stream id (4), type (1), flags (1), big-endian. */
#define CSHIM_FRAME_HEADER_SIZE 10u

/* Largest data length ttrpc accepts (a frame of exactly this length is allowed). */
#define CSHIM_FRAME_MAX_DATA (4u << 20)

/* Message types. */
enum cshim_frame_type
{
  CSHIM_FRAME_REQUEST = 0x01,  /* client -> server, data = ttrpc.Request */
  CSHIM_FRAME_RESPONSE = 0x02, /* server -> client, data = ttrpc.Response */
  CSHIM_FRAME_DATA = 0x03,     /* stream payload (ttrpc >= 1.2) */
};

/* Flags. */
enum cshim_frame_flag
{
  CSHIM_FRAME_FLAG_REMOTE_CLOSED = 0x01,
  CSHIM_FRAME_FLAG_REMOTE_OPEN = 0x02,
  CSHIM_FRAME_FLAG_NO_DATA = 0x04,
};

/* A decoded frame header. */
typedef struct cshim_frame_header_s
{
  uint32_t length; /* bytes of data after the header */
  uint32_t stream_id;
  uint8_t type;  /* enum cshim_frame_type; unknown values are legal on the wire */
  uint8_t flags; /* enum cshim_frame_flag */
} cshim_frame_header_t;

/* Write the 10 wire bytes of `header` to `out`. */
void cshim_frame_header_encode(const cshim_frame_header_t *header,
                               uint8_t out[CSHIM_FRAME_HEADER_SIZE]);

/* Read a header from its 10 wire bytes. Every byte pattern decodes. */
void cshim_frame_header_decode(const uint8_t in[CSHIM_FRAME_HEADER_SIZE],
                               cshim_frame_header_t *out);

/* Serialize `msg` (NULL = empty data) as one complete frame: header (with length filled in)
   followed by the packed message. `header->length` is ignored. On success *out is a malloc'ed
   buffer the caller owns (free with free()) and *out_len its size. Fails with -EMSGSIZE when
   the packed message is longer than max_data, with the message ttrpc uses
   ("message length N exceed maximum message size of M"); *out is then untouched. */
int cshim_frame_pack(const cshim_frame_header_t *header, const ProtobufCMessage *msg,
                     uint32_t max_data, uint8_t **out, size_t *out_len, cshim_error_t *err);

/* Result of cshim_frame_reader_next. */
enum cshim_frame_result
{
  CSHIM_FRAME_NEED_MORE = 0, /* every input byte was consumed; no complete frame yet */
  CSHIM_FRAME_COMPLETE = 1,  /* a frame is in *out; more input may remain */
  CSHIM_FRAME_OVERSIZED = 2, /* a frame longer than max_data was read and its data discarded;
                                *out has its header (length = the announced length) and no
                                data. The stream stays in sync; answer ResourceExhausted. */
};

/* An incremental frame reader: feed it the bytes of a stream in chunks of any size (as they
   come from read callbacks) and it yields whole frames. Embed it in its owner; one per
   connection. Not thread-safe; it never blocks. */
typedef struct cshim_frame_reader_s
{
  /* All fields are private. */
  uint32_t max_data;
  uint8_t header_buf[CSHIM_FRAME_HEADER_SIZE];
  size_t header_len; /* header bytes collected so far */
  cshim_frame_header_t header;
  uint8_t *data;   /* owned; `header.length` bytes, allocated when the header is complete */
  size_t data_len; /* data bytes collected (or discarded) so far */
  int discarding;  /* the current frame is oversized */
} cshim_frame_reader_t;

/* A frame yielded by the reader. */
typedef struct cshim_frame_s
{
  cshim_frame_header_t header;
  uint8_t *data; /* caller owns (free()); NULL when header.length is 0 or the frame was
                    oversized */
} cshim_frame_t;

/* Prepare a reader that accepts data lengths up to max_data (0 = CSHIM_FRAME_MAX_DATA). */
void cshim_frame_reader_init(cshim_frame_reader_t *reader, uint32_t max_data);

/* Release what the reader holds (a partial frame). The reader may be initialised again. */
void cshim_frame_reader_fini(cshim_frame_reader_t *reader);

/* Consume input from *buf / *len, advancing both, until a frame is complete (or oversized
   and discarded) or the input is exhausted. Call it again while it returns something other
   than CSHIM_FRAME_NEED_MORE: one chunk may hold many frames. The input is borrowed for the
   call only; partial frames are copied into the reader. */
enum cshim_frame_result cshim_frame_reader_next(cshim_frame_reader_t *reader, const uint8_t **buf,
                                                size_t *len, cshim_frame_t *out);

/* Change the largest data length accepted for frames whose header is not complete yet (0 =
   CSHIM_FRAME_MAX_DATA); a frame already announced keeps the limit it was read under. A server
   lowers it to what its memory budget can still hold: a longer frame then comes out as
   CSHIM_FRAME_OVERSIZED, its data discarded. */
void cshim_frame_reader_set_limit(cshim_frame_reader_t *reader, uint32_t max_data);

/* Bytes the reader holds for the frame being received: its whole announced data length once
   the header is complete (that is what it allocated), 0 between frames or while discarding. */
size_t cshim_frame_reader_held(const cshim_frame_reader_t *reader);

/* Live upgrade: the frame a reader is in the middle of, to carry it into a reader in another
   process image. *out is a malloc'ed copy (caller frees) of the header and data bytes received
   so far, NULL with *len 0 when no frame is pending; *discarded counts the data bytes of an
   oversized frame already dropped (its header is in *out). */
void cshim_frame_reader_pending(const cshim_frame_reader_t *reader, uint8_t **out, size_t *len,
                                uint32_t *discarded);
/* Give a freshly initialised reader the pending frame cshim_frame_reader_pending described.
   EBADMSG when the bytes hold a whole frame or do not match discarded. */
int cshim_frame_reader_resume(cshim_frame_reader_t *reader, const uint8_t *bytes, size_t len,
                              uint32_t discarded, cshim_error_t *err);

#ifdef __cplusplus
}
#endif
#endif
