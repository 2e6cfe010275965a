// SPDX-License-Identifier: Apache-2.0
// The live-upgrade state format: a bounds-checked writer and reader of tagged records.
#define _GNU_SOURCE
#include <cshim/state.h>

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cshim/util.h>

#define RECORD_HEADER 6u /* tag u16 | length u32 */

static void
le16(uint8_t *p, uint16_t v)
{
  p[0] = (uint8_t)v;
  p[1] = (uint8_t)(v >> 8);
}

static void
le32(uint8_t *p, uint32_t v)
{
  for (int i = 0; i < 4; i++)
    p[i] = (uint8_t)(v >> (8 * i));
}

static void
le64(uint8_t *p, uint64_t v)
{
  for (int i = 0; i < 8; i++)
    p[i] = (uint8_t)(v >> (8 * i));
}

static uint16_t
get16(const uint8_t *p)
{
  return (uint16_t)(p[0] | (p[1] << 8));
}

static uint32_t
get32(const uint8_t *p)
{
  return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

static uint64_t
get64(const uint8_t *p)
{
  return (uint64_t)get32(p) | ((uint64_t)get32(p + 4) << 32);
}

/* CRC-32 (IEEE 802.3, reflected polynomial 0xEDB88320) of every byte value: a constant, so it
   lives in shared read-only pages instead of a table each process fills (a dirty page per shim). */
static const uint32_t crc32_table[256] = {
    0x00000000u, 0x77073096u, 0xee0e612cu, 0x990951bau, 0x076dc419u, 0x706af48fu, 0xe963a535u,
    0x9e6495a3u, 0x0edb8832u, 0x79dcb8a4u, 0xe0d5e91eu, 0x97d2d988u, 0x09b64c2bu, 0x7eb17cbdu,
    0xe7b82d07u, 0x90bf1d91u, 0x1db71064u, 0x6ab020f2u, 0xf3b97148u, 0x84be41deu, 0x1adad47du,
    0x6ddde4ebu, 0xf4d4b551u, 0x83d385c7u, 0x136c9856u, 0x646ba8c0u, 0xfd62f97au, 0x8a65c9ecu,
    0x14015c4fu, 0x63066cd9u, 0xfa0f3d63u, 0x8d080df5u, 0x3b6e20c8u, 0x4c69105eu, 0xd56041e4u,
    0xa2677172u, 0x3c03e4d1u, 0x4b04d447u, 0xd20d85fdu, 0xa50ab56bu, 0x35b5a8fau, 0x42b2986cu,
    0xdbbbc9d6u, 0xacbcf940u, 0x32d86ce3u, 0x45df5c75u, 0xdcd60dcfu, 0xabd13d59u, 0x26d930acu,
    0x51de003au, 0xc8d75180u, 0xbfd06116u, 0x21b4f4b5u, 0x56b3c423u, 0xcfba9599u, 0xb8bda50fu,
    0x2802b89eu, 0x5f058808u, 0xc60cd9b2u, 0xb10be924u, 0x2f6f7c87u, 0x58684c11u, 0xc1611dabu,
    0xb6662d3du, 0x76dc4190u, 0x01db7106u, 0x98d220bcu, 0xefd5102au, 0x71b18589u, 0x06b6b51fu,
    0x9fbfe4a5u, 0xe8b8d433u, 0x7807c9a2u, 0x0f00f934u, 0x9609a88eu, 0xe10e9818u, 0x7f6a0dbbu,
    0x086d3d2du, 0x91646c97u, 0xe6635c01u, 0x6b6b51f4u, 0x1c6c6162u, 0x856530d8u, 0xf262004eu,
    0x6c0695edu, 0x1b01a57bu, 0x8208f4c1u, 0xf50fc457u, 0x65b0d9c6u, 0x12b7e950u, 0x8bbeb8eau,
    0xfcb9887cu, 0x62dd1ddfu, 0x15da2d49u, 0x8cd37cf3u, 0xfbd44c65u, 0x4db26158u, 0x3ab551ceu,
    0xa3bc0074u, 0xd4bb30e2u, 0x4adfa541u, 0x3dd895d7u, 0xa4d1c46du, 0xd3d6f4fbu, 0x4369e96au,
    0x346ed9fcu, 0xad678846u, 0xda60b8d0u, 0x44042d73u, 0x33031de5u, 0xaa0a4c5fu, 0xdd0d7cc9u,
    0x5005713cu, 0x270241aau, 0xbe0b1010u, 0xc90c2086u, 0x5768b525u, 0x206f85b3u, 0xb966d409u,
    0xce61e49fu, 0x5edef90eu, 0x29d9c998u, 0xb0d09822u, 0xc7d7a8b4u, 0x59b33d17u, 0x2eb40d81u,
    0xb7bd5c3bu, 0xc0ba6cadu, 0xedb88320u, 0x9abfb3b6u, 0x03b6e20cu, 0x74b1d29au, 0xead54739u,
    0x9dd277afu, 0x04db2615u, 0x73dc1683u, 0xe3630b12u, 0x94643b84u, 0x0d6d6a3eu, 0x7a6a5aa8u,
    0xe40ecf0bu, 0x9309ff9du, 0x0a00ae27u, 0x7d079eb1u, 0xf00f9344u, 0x8708a3d2u, 0x1e01f268u,
    0x6906c2feu, 0xf762575du, 0x806567cbu, 0x196c3671u, 0x6e6b06e7u, 0xfed41b76u, 0x89d32be0u,
    0x10da7a5au, 0x67dd4accu, 0xf9b9df6fu, 0x8ebeeff9u, 0x17b7be43u, 0x60b08ed5u, 0xd6d6a3e8u,
    0xa1d1937eu, 0x38d8c2c4u, 0x4fdff252u, 0xd1bb67f1u, 0xa6bc5767u, 0x3fb506ddu, 0x48b2364bu,
    0xd80d2bdau, 0xaf0a1b4cu, 0x36034af6u, 0x41047a60u, 0xdf60efc3u, 0xa867df55u, 0x316e8eefu,
    0x4669be79u, 0xcb61b38cu, 0xbc66831au, 0x256fd2a0u, 0x5268e236u, 0xcc0c7795u, 0xbb0b4703u,
    0x220216b9u, 0x5505262fu, 0xc5ba3bbeu, 0xb2bd0b28u, 0x2bb45a92u, 0x5cb36a04u, 0xc2d7ffa7u,
    0xb5d0cf31u, 0x2cd99e8bu, 0x5bdeae1du, 0x9b64c2b0u, 0xec63f226u, 0x756aa39cu, 0x026d930au,
    0x9c0906a9u, 0xeb0e363fu, 0x72076785u, 0x05005713u, 0x95bf4a82u, 0xe2b87a14u, 0x7bb12baeu,
    0x0cb61b38u, 0x92d28e9bu, 0xe5d5be0du, 0x7cdcefb7u, 0x0bdbdf21u, 0x86d3d2d4u, 0xf1d4e242u,
    0x68ddb3f8u, 0x1fda836eu, 0x81be16cdu, 0xf6b9265bu, 0x6fb077e1u, 0x18b74777u, 0x88085ae6u,
    0xff0f6a70u, 0x66063bcau, 0x11010b5cu, 0x8f659effu, 0xf862ae69u, 0x616bffd3u, 0x166ccf45u,
    0xa00ae278u, 0xd70dd2eeu, 0x4e048354u, 0x3903b3c2u, 0xa7672661u, 0xd06016f7u, 0x4969474du,
    0x3e6e77dbu, 0xaed16a4au, 0xd9d65adcu, 0x40df0b66u, 0x37d83bf0u, 0xa9bcae53u, 0xdebb9ec5u,
    0x47b2cf7fu, 0x30b5ffe9u, 0xbdbdf21cu, 0xcabac28au, 0x53b39330u, 0x24b4a3a6u, 0xbad03605u,
    0xcdd70693u, 0x54de5729u, 0x23d967bfu, 0xb3667a2eu, 0xc4614ab8u, 0x5d681b02u, 0x2a6f2b94u,
    0xb40bbe37u, 0xc30c8ea1u, 0x5a05df1bu, 0x2d02ef8du,
};

uint32_t
cshim_state_crc32(uint32_t crc, const void *data, size_t len)
{
  const uint8_t *p = data;

  crc = ~crc;
  while (len--)
    crc = crc32_table[(crc ^ *p++) & 0xFF] ^ (crc >> 8);
  return ~crc;
}

/* ---- writer ---- */

static uint8_t *
reserve(cshim_state_writer_t *w, size_t n)
{
  if (w->len + n > w->cap) {
    size_t cap = w->cap ? w->cap : 4096;
    while (cap < w->len + n)
      cap *= 2;
    w->buf = cshim_xrealloc(w->buf, cap);
    w->cap = cap;
  }
  w->len += n;
  return w->buf + w->len - n;
}

void
cshim_state_writer_init(cshim_state_writer_t *w)
{
  memset(w, 0, sizeof *w);
  memset(reserve(w, CSHIM_STATE_HEADER_SIZE), 0, CSHIM_STATE_HEADER_SIZE);
}

void
cshim_state_writer_fini(cshim_state_writer_t *w)
{
  if (w == NULL)
    return;
  free(w->buf);
  free(w->fds);
  memset(w, 0, sizeof *w);
}

void
cshim_state_put_bytes(cshim_state_writer_t *w, uint16_t tag, const void *data, size_t len)
{
  uint8_t *p = reserve(w, RECORD_HEADER + len);
  le16(p, tag);
  le32(p + 2, (uint32_t)len);
  if (len)
    memcpy(p + RECORD_HEADER, data, len);
}

void
cshim_state_put_u32(cshim_state_writer_t *w, uint16_t tag, uint32_t v)
{
  uint8_t b[4];
  le32(b, v);
  cshim_state_put_bytes(w, tag, b, sizeof b);
}

void
cshim_state_put_u64(cshim_state_writer_t *w, uint16_t tag, uint64_t v)
{
  uint8_t b[8];
  le64(b, v);
  cshim_state_put_bytes(w, tag, b, sizeof b);
}

void
cshim_state_put_i64(cshim_state_writer_t *w, uint16_t tag, int64_t v)
{
  cshim_state_put_u64(w, tag, (uint64_t)v);
}

void
cshim_state_put_bool(cshim_state_writer_t *w, uint16_t tag, bool v)
{
  cshim_state_put_u32(w, tag, v ? 1u : 0u);
}

void
cshim_state_put_str(cshim_state_writer_t *w, uint16_t tag, const char *s)
{
  if (s != NULL)
    cshim_state_put_bytes(w, tag, s, strlen(s));
}

static void
put_fd(cshim_state_writer_t *w, uint16_t tag, int fd, bool search)
{
  uint8_t b[20] = {0};
  struct stat st;

  if (fd < 0)
    return;
  /* The file's identity goes with the number: a new image that finds another file under it
     (the number was closed and reused since) refuses it. */
  le32(b, (uint32_t)fd);
  if (fstat(fd, &st) == 0) {
    le64(b + 4, (uint64_t)st.st_dev);
    le64(b + 12, (uint64_t)st.st_ino);
  }
  cshim_state_put_bytes(w, tag, b, sizeof b);
  for (size_t i = 0; search && i < w->n_fds; i++)
    if (w->fds[i] == fd)
      return;
  if (w->n_fds == w->cap_fds) {
    w->cap_fds = w->cap_fds ? 2 * w->cap_fds : 16;
    w->fds = cshim_xrealloc(w->fds, w->cap_fds * sizeof *w->fds);
  }
  w->fds[w->n_fds++] = fd;
}

void
cshim_state_put_fd(cshim_state_writer_t *w, uint16_t tag, int fd)
{
  put_fd(w, tag, fd, true);
}

void
cshim_state_put_fd_new(cshim_state_writer_t *w, uint16_t tag, int fd)
{
  put_fd(w, tag, fd, false);
}

void
cshim_state_begin(cshim_state_writer_t *w, uint16_t tag)
{
  uint8_t *p;
  if (w->depth >= CSHIM_STATE_MAX_DEPTH) {
    w->overflow = true;
    w->depth++;
    return;
  }
  p = reserve(w, RECORD_HEADER);
  le16(p, tag);
  le32(p + 2, 0);
  w->open[w->depth++] = (size_t)(p + 2 - w->buf);
}

void
cshim_state_end(cshim_state_writer_t *w)
{
  size_t at;
  if (w->depth == 0) {
    w->overflow = true;
    return;
  }
  w->depth--;
  if (w->depth >= CSHIM_STATE_MAX_DEPTH)
    return;
  at = w->open[w->depth];
  le32(w->buf + at, (uint32_t)(w->len - at - 4));
}

int
cshim_state_writer_finish(cshim_state_writer_t *w, uint8_t **out, size_t *len, cshim_error_t *err)
{
  size_t body = w->len - CSHIM_STATE_HEADER_SIZE;
  if (w->depth != 0 || w->overflow)
    return cshim_error_make(err, EINVAL, "state: unbalanced or too deeply nested lists");
  if (w->len > CSHIM_STATE_MAX_SIZE)
    return cshim_error_make(err, EFBIG, "state: %zu bytes is over the limit of %u", w->len,
                            CSHIM_STATE_MAX_SIZE);
  memcpy(w->buf, CSHIM_STATE_MAGIC, 8);
  le32(w->buf + 8, CSHIM_STATE_FORMAT_VERSION);
  le32(w->buf + 12, 0);
  le32(w->buf + 16, (uint32_t)body);
  le32(w->buf + 20, cshim_state_crc32(0, w->buf + CSHIM_STATE_HEADER_SIZE, body));
  *out = w->buf;
  *len = w->len;
  w->buf = NULL;
  w->len = w->cap = 0;
  return 0;
}

const int *
cshim_state_writer_fds(const cshim_state_writer_t *w, size_t *n)
{
  *n = w->n_fds;
  return w->fds;
}

/* ---- reader ---- */

int
cshim_state_open(const uint8_t *buf, size_t len, uint32_t min, uint32_t max, uint32_t *version,
                 cshim_state_reader_t *body, cshim_error_t *err)
{
  uint32_t v, body_len;

  if (buf == NULL || len < CSHIM_STATE_HEADER_SIZE || memcmp(buf, CSHIM_STATE_MAGIC, 8) != 0)
    return cshim_error_make(err, EBADMSG, "state: not a cshim state document");
  v = get32(buf + 8);
  if (v < min || v > max)
    return cshim_error_make(err, EPROTONOSUPPORT,
                            "state: format version %u is not supported (this build reads %u to %u)",
                            v, min, max);
  body_len = get32(buf + 16);
  if (body_len != len - CSHIM_STATE_HEADER_SIZE)
    return cshim_error_make(err, EBADMSG, "state: body of %u bytes announced, %zu present",
                            body_len, len - CSHIM_STATE_HEADER_SIZE);
  if (cshim_state_crc32(0, buf + CSHIM_STATE_HEADER_SIZE, body_len) != get32(buf + 20))
    return cshim_error_make(err, EBADMSG, "state: checksum mismatch");
  if (version)
    *version = v;
  body->data = buf + CSHIM_STATE_HEADER_SIZE;
  body->len = body_len;
  body->off = 0;
  body->depth = 0;
  return 0;
}

int
cshim_state_next(cshim_state_reader_t *r, cshim_state_item_t *item, cshim_error_t *err)
{
  size_t left = r->len - r->off;
  uint32_t n;

  if (left == 0)
    return 0;
  if (left < RECORD_HEADER)
    return cshim_error_make(err, EBADMSG, "state: truncated record at offset %zu", r->off);
  n = get32(r->data + r->off + 2);
  if (n > left - RECORD_HEADER)
    return cshim_error_make(err, EBADMSG, "state: record at offset %zu claims %u bytes, %zu left",
                            r->off, n, left - RECORD_HEADER);
  item->tag = get16(r->data + r->off);
  item->value = r->data + r->off + RECORD_HEADER;
  item->len = n;
  item->depth = r->depth;
  r->off += RECORD_HEADER + n;
  return 1;
}

int
cshim_state_find(const cshim_state_reader_t *r, uint16_t tag, cshim_state_item_t *item,
                 cshim_error_t *err)
{
  cshim_state_reader_t copy = *r;
  int ret;
  while ((ret = cshim_state_next(&copy, item, err)) > 0)
    if (item->tag == tag)
      return 1;
  return ret;
}

static int
want_size(const cshim_state_item_t *item, uint32_t n, const char *what, cshim_error_t *err)
{
  if (item->len != n)
    return cshim_error_make(err, EBADMSG, "state: record %u: %u bytes, a %s has %u", item->tag,
                            item->len, what, n);
  return 0;
}

int
cshim_state_item_u32(const cshim_state_item_t *item, uint32_t *out, cshim_error_t *err)
{
  int ret = want_size(item, 4, "u32", err);
  if (ret < 0)
    return ret;
  *out = get32(item->value);
  return 0;
}

int
cshim_state_item_u64(const cshim_state_item_t *item, uint64_t *out, cshim_error_t *err)
{
  int ret = want_size(item, 8, "u64", err);
  if (ret < 0)
    return ret;
  *out = get64(item->value);
  return 0;
}

int
cshim_state_item_i64(const cshim_state_item_t *item, int64_t *out, cshim_error_t *err)
{
  uint64_t v;
  int ret = cshim_state_item_u64(item, &v, err);
  if (ret < 0)
    return ret;
  *out = (int64_t)v;
  return 0;
}

int
cshim_state_item_bool(const cshim_state_item_t *item, bool *out, cshim_error_t *err)
{
  uint32_t v;
  int ret = cshim_state_item_u32(item, &v, err);
  if (ret < 0)
    return ret;
  if (v > 1)
    return cshim_error_make(err, EBADMSG, "state: record %u: %u is not a boolean", item->tag, v);
  *out = v == 1;
  return 0;
}

int
cshim_state_item_str(const cshim_state_item_t *item, char **out, cshim_error_t *err)
{
  if (item->len > 0 && memchr(item->value, '\0', item->len) != NULL)
    return cshim_error_make(err, EBADMSG, "state: record %u: a string with a NUL byte", item->tag);
  *out = cshim_xstrndup((const char *)item->value, item->len);
  return 0;
}

int
cshim_state_item_list(const cshim_state_item_t *item, cshim_state_reader_t *out, cshim_error_t *err)
{
  if (item->depth + 1 >= CSHIM_STATE_MAX_DEPTH)
    return cshim_error_make(err, EBADMSG, "state: lists nested deeper than %u",
                            CSHIM_STATE_MAX_DEPTH);
  out->data = item->value;
  out->len = item->len;
  out->off = 0;
  out->depth = item->depth + 1;
  return 0;
}

int
cshim_state_item_fd(const cshim_state_item_t *item, int *out, cshim_error_t *err)
{
  struct stat st;
  uint32_t v;
  int flags;
  int ret = want_size(item, 20, "descriptor", err);
  if (ret < 0)
    return ret;
  v = get32(item->value);
  if (v > (uint32_t)INT32_MAX || (flags = fcntl((int)v, F_GETFD)) < 0)
    return cshim_error_make(err, EBADF, "state: record %u: fd %u was not handed over", item->tag,
                            v);
  if (fstat((int)v, &st) < 0 || (uint64_t)st.st_dev != get64(item->value + 4) ||
      (uint64_t)st.st_ino != get64(item->value + 12))
    return cshim_error_make(err, EBADF, "state: record %u: fd %u is not the file handed over",
                            item->tag, v);
  if (fcntl((int)v, F_SETFD, flags | FD_CLOEXEC) < 0)
    return cshim_error_sys(err, errno, "state: fd %u: set close-on-exec", v);
  *out = (int)v;
  return 0;
}

#define STATE_GETTER(name, type)                                                                   \
  int cshim_state_get_##name(const cshim_state_reader_t *r, uint16_t tag, type *out,               \
                             cshim_error_t *err)                                                   \
  {                                                                                                \
    cshim_state_item_t it;                                                                         \
    int ret = cshim_state_find(r, tag, &it, err);                                                  \
    if (ret <= 0)                                                                                  \
      return ret;                                                                                  \
    return cshim_state_item_##name(&it, out, err);                                                 \
  }

STATE_GETTER(u32, uint32_t)
STATE_GETTER(u64, uint64_t)
STATE_GETTER(i64, int64_t)
STATE_GETTER(bool, bool)

int
cshim_state_get_str(const cshim_state_reader_t *r, uint16_t tag, char **out, cshim_error_t *err)
{
  cshim_state_item_t it;
  int ret = cshim_state_find(r, tag, &it, err);
  *out = NULL;
  if (ret <= 0)
    return ret;
  return cshim_state_item_str(&it, out, err);
}
