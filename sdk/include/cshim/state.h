// SPDX-License-Identifier: Apache-2.0
// The live-upgrade state format: a versioned, checksummed document of tagged records that the
// host and each plugin write before an upgrade and read back in the new image
// (docs/live-upgrade.md, "The state format").
#ifndef CSHIM_STATE_H
#define CSHIM_STATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cshim/error.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The document starts with these 8 bytes. */
#define CSHIM_STATE_MAGIC "CSHIMST1"
/* The format this build writes, and the oldest it reads. A reader refuses anything outside
   [CSHIM_STATE_FORMAT_MIN, CSHIM_STATE_FORMAT_VERSION] before it looks at the body. */
#define CSHIM_STATE_FORMAT_VERSION 1u
#define CSHIM_STATE_FORMAT_MIN 1u
/* magic (8) | format version u32 | flags u32 | body length u32 | CRC-32 of the body u32 */
#define CSHIM_STATE_HEADER_SIZE 24u
/* Bounds the reader enforces. */
#define CSHIM_STATE_MAX_DEPTH 16u
#define CSHIM_STATE_MAX_SIZE (256u << 20)
#define CSHIM_STATE_MAX_FDS 65536u

/* Builds a document in memory. Embed or declare it on the stack; every field is private. One
   thread; functions never fail except cshim_state_writer_finish (out-of-memory aborts).
   The writer, reader and item structs are built by SDK code on both sides of the plugin
   boundary (the host makes the writer, a plugin's own copy of the SDK fills it): like
   struct cshim_error_s their layout is fixed for the whole ABI version
   (CSHIM_PLUGIN_ABI_VERSION); anything new comes through new functions, never new members. */
typedef struct cshim_state_writer_s
{
  uint8_t *buf; /* owned; the header's room first, then the body */
  size_t len, cap;
  size_t open[CSHIM_STATE_MAX_DEPTH]; /* offsets of the length fields of open lists */
  size_t depth;
  bool overflow; /* begin nested deeper than CSHIM_STATE_MAX_DEPTH: finish fails */
  int *fds;      /* owned; every descriptor put with cshim_state_put_fd, in order */
  size_t n_fds, cap_fds;
  bool crash; /* see cshim_state_writer_is_crash */
} cshim_state_writer_t;

void cshim_state_writer_init(cshim_state_writer_t *w);
/* Release what the writer holds (the document too, unless finish stole it). NULL-safe. */
void cshim_state_writer_fini(cshim_state_writer_t *w);

/* Whether the document is a crash snapshot rather than an upgrade hand-over: it is kept for a
   restart after a fatal signal, taken while the old image goes on running. Data that may still
   change before a crash without a new snapshot being taken (bytes waiting in a user-space
   buffer) must not be saved in it: the new image would repeat them. Set by the host. */
static inline bool
cshim_state_writer_is_crash(const cshim_state_writer_t *w)
{
  return w->crash;
}

/* Scalar records: tag, then the value little-endian. */
void cshim_state_put_u32(cshim_state_writer_t *w, uint16_t tag, uint32_t v);
void cshim_state_put_u64(cshim_state_writer_t *w, uint16_t tag, uint64_t v);
void cshim_state_put_i64(cshim_state_writer_t *w, uint16_t tag, int64_t v);
/* A u32 record holding 0 or 1. */
void cshim_state_put_bool(cshim_state_writer_t *w, uint16_t tag, bool v);
/* The bytes of s without its NUL; nothing is written when s is NULL (the reader then finds no
   record, which is how "unset" is told from ""). */
void cshim_state_put_str(cshim_state_writer_t *w, uint16_t tag, const char *s);
/* len bytes (borrowed for the call). */
void cshim_state_put_bytes(cshim_state_writer_t *w, uint16_t tag, const void *data, size_t len);
/* A descriptor the new image must receive: a 20-byte record (fd u32, st_dev u64, st_ino u64),
   and fd is added to the writer's fd table (the caller of the hand-over clears close-on-exec on
   every fd in it). The writer does not own fd. fd < 0 writes nothing. */
void cshim_state_put_fd(cshim_state_writer_t *w, uint16_t tag, int fd);
/* cshim_state_put_fd for a descriptor the caller knows is not in the fd table yet (each of many
   connections): the table is not searched, so n descriptors cost n, not n squared. A number
   put twice this way is listed twice (harmless, but wasteful). */
void cshim_state_put_fd_new(cshim_state_writer_t *w, uint16_t tag, int fd);
/* Open a list record; the records put until the matching end are its value. */
void cshim_state_begin(cshim_state_writer_t *w, uint16_t tag);
void cshim_state_end(cshim_state_writer_t *w);

/* Finish the document: header, length and checksum. On success *out (caller owns, free()) and
   *len hold it; the writer keeps its fd table (cshim_state_writer_fds) until fini. Fails with
   EINVAL when begin and end do not pair up or nesting went too deep. */
int cshim_state_writer_finish(cshim_state_writer_t *w, uint8_t **out, size_t *len,
                              cshim_error_t *err);
/* The fd table (borrowed until fini). */
const int *cshim_state_writer_fds(const cshim_state_writer_t *w, size_t *n);

/* A cursor over the records of one list (the body, or a nested list). Plain data: copy it
   freely; it borrows the document, which must outlive it. */
typedef struct cshim_state_reader_s
{
  const uint8_t *data;
  size_t len, off;
  unsigned depth;
} cshim_state_reader_t;

/* One record (borrowed from the document). */
typedef struct cshim_state_item_s
{
  uint16_t tag;
  const uint8_t *value;
  uint32_t len;
  unsigned depth; /* of the list holding it */
} cshim_state_item_t;

/* Check the header of buf/len (borrowed) and open its body: magic, a version in [min, max]
   (EPROTONOSUPPORT otherwise, naming both), a body length that fits, the checksum (EBADMSG).
   *version (may be NULL) is the document's format version. */
int cshim_state_open(const uint8_t *buf, size_t len, uint32_t min, uint32_t max, uint32_t *version,
                     cshim_state_reader_t *body, cshim_error_t *err);

/* The next record: 1 and *item, 0 at the end of the list, -EBADMSG when a length runs past the
   list. */
int cshim_state_next(cshim_state_reader_t *r, cshim_state_item_t *item, cshim_error_t *err);
/* The first record with this tag in r (r itself is not advanced): 1, 0 = none, <0 corrupt. */
int cshim_state_find(const cshim_state_reader_t *r, uint16_t tag, cshim_state_item_t *item,
                     cshim_error_t *err);

/* Decode an item; each fails with EBADMSG when the size does not match its type. */
int cshim_state_item_u32(const cshim_state_item_t *item, uint32_t *out, cshim_error_t *err);
int cshim_state_item_u64(const cshim_state_item_t *item, uint64_t *out, cshim_error_t *err);
int cshim_state_item_i64(const cshim_state_item_t *item, int64_t *out, cshim_error_t *err);
int cshim_state_item_bool(const cshim_state_item_t *item, bool *out, cshim_error_t *err);
/* A malloc'ed, NUL-terminated copy (caller frees); EBADMSG when the bytes contain a NUL. */
int cshim_state_item_str(const cshim_state_item_t *item, char **out, cshim_error_t *err);
/* The records inside a list item; EBADMSG past CSHIM_STATE_MAX_DEPTH. */
int cshim_state_item_list(const cshim_state_item_t *item, cshim_state_reader_t *out,
                          cshim_error_t *err);
/* The first record with this tag in r, decoded: 0 when found or absent (a scalar is then left
   as it was; a string is NULL), <0 when the record is corrupt or of the wrong size. */
int cshim_state_get_u32(const cshim_state_reader_t *r, uint16_t tag, uint32_t *out,
                        cshim_error_t *err);
int cshim_state_get_u64(const cshim_state_reader_t *r, uint16_t tag, uint64_t *out,
                        cshim_error_t *err);
int cshim_state_get_i64(const cshim_state_reader_t *r, uint16_t tag, int64_t *out,
                        cshim_error_t *err);
int cshim_state_get_bool(const cshim_state_reader_t *r, uint16_t tag, bool *out,
                         cshim_error_t *err);
int cshim_state_get_str(const cshim_state_reader_t *r, uint16_t tag, char **out,
                        cshim_error_t *err);
/* A descriptor handed over by the old image: EBADF when it is not open here or is another file
   than the one saved (same device and inode). Close-on-exec is set again (children must not
   inherit it); the caller owns it from now on. */
int cshim_state_item_fd(const cshim_state_item_t *item, int *out, cshim_error_t *err);

/* CRC-32 (IEEE 802.3, the one zlib computes) of len bytes, continuing from crc (0 to start). */
uint32_t cshim_state_crc32(uint32_t crc, const void *data, size_t len);

#ifdef __cplusplus
}
#endif
#endif
