// SPDX-License-Identifier: Apache-2.0
// Small-file helpers: read a small file whole, replace a file atomically (temp file + rename).
#define _GNU_SOURCE
#include <cshim/file.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cshim/util.h>

int
cshim_file_read_small(const char *path, size_t max, char **out, size_t *len, cshim_error_t *err)
{
  cshim_autoclose int fd = -1;
  cshim_autofree char *buf = NULL;
  size_t off = 0, cap = 4096;

  *out = NULL;
  fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return cshim_error_sys(err, errno, "open `%s`", path);
  if (cap > max + 1)
    cap = max + 1;
  buf = cshim_xmalloc(cap + 1);
  for (;;) {
    ssize_t n;
    if (off == cap) {
      cap = cap > (max + 1) / 2 ? max + 1 : cap * 2;
      buf = cshim_xrealloc(buf, cap + 1);
    }
    n = read(fd, buf + off, cap - off);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0)
      return cshim_error_sys(err, errno, "read `%s`", path);
    if (n == 0)
      break;
    off += (size_t)n;
    if (off > max)
      return cshim_error_make(err, EFBIG, "read `%s`: larger than %zu bytes", path, max);
  }
  buf[off] = '\0';
  if (len)
    *len = off;
  *out = cshim_steal_pointer(&buf);
  return 0;
}

int
cshim_file_write_atomic(const char *path, const void *data, size_t len, mode_t mode,
                        cshim_error_t *err)
{
  cshim_autofree char *dir = cshim_xstrdup(path);
  cshim_autofree char *tmp = NULL;
  cshim_autoclose int fd = -1;
  char *slash = strrchr(dir, '/');
  const char *name = path;
  size_t off = 0;
  int e;

  if (slash) {
    *slash = '\0';
    name = path + (slash - dir) + 1;
    cshim_xasprintf(&tmp, "%s/.%s.tmp", slash == dir ? "" : dir, name);
  } else
    cshim_xasprintf(&tmp, ".%s.tmp", name);
  fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
  if (fd < 0)
    return cshim_error_sys(err, errno, "create `%s`", tmp);
  while (off < len) {
    ssize_t n = write(fd, (const char *)data + off, len - off);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0) {
      e = errno;
      unlink(tmp);
      return cshim_error_sys(err, e, "write `%s`", tmp);
    }
    off += (size_t)n;
  }
  if (fsync(fd) < 0) {
    e = errno;
    unlink(tmp);
    return cshim_error_sys(err, e, "sync `%s`", tmp);
  }
  if (close(cshim_steal_fd(&fd)) < 0) {
    e = errno;
    unlink(tmp);
    return cshim_error_sys(err, e, "close `%s`", tmp);
  }
  if (rename(tmp, path) < 0) {
    e = errno;
    unlink(tmp);
    return cshim_error_sys(err, e, "rename `%s` to `%s`", tmp, path);
  }
  return 0;
}
