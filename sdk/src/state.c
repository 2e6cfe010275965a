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

uint32_t
cshim_state_crc32(uint32_t crc, const void *data, size_t len)
{
  static uint32_t table[256];
  static bool ready;
  const uint8_t *p = data;

  if (!ready) {
    for (uint32_t i = 0; i < 256; i++) {
      uint32_t c = i;
      for (int k = 0; k < 8; k++)
        c = c & 1 ? 0xEDB88320u ^ (c >> 1) : c >> 1;
      table[i] = c;
    }
    ready = true;
  }
  crc = ~crc;
  while (len--)
    crc = table[(crc ^ *p++) & 0xFF] ^ (crc >> 8);
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
