// SPDX-License-Identifier: Apache-2.0
// Small-file helpers: read a small file whole, replace a file atomically (temp file + rename).
#define _GNU_SOURCE
#include <cshim/file.h>

#include <errno.h>
#include <stdbool.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cshim/util.h>

int
cshim_file_read_fd(int fd, const char *what, size_t max, char **out, size_t *len,
                   cshim_error_t *err)
{
  cshim_autofree char *buf = NULL;
  bool bounded = max < SIZE_MAX / 2;
  size_t off = 0, cap = 4096;

  *out = NULL;
  if (bounded && cap > max + 1)
    cap = max + 1;
  buf = cshim_xmalloc(cap + 1);
  for (;;) {
    ssize_t n;
    if (off == cap) {
      cap = bounded && cap > (max + 1) / 2 ? max + 1 : cap * 2;
      buf = cshim_xrealloc(buf, cap + 1);
    }
    n = CSHIM_RETRY_EINTR(read(fd, buf + off, cap - off));
    if (n < 0)
      return what ? cshim_error_sys(err, errno, "read %s", what)
                  : cshim_error_sys(err, errno, "read");
    if (n == 0)
      break;
    off += (size_t)n;
    if (off > max)
      return cshim_error_make(err, EFBIG, "read%s%s: larger than %zu bytes", what ? " " : "",
                              what ? what : "", max);
  }
  buf[off] = '\0';
  if (len)
    *len = off;
  *out = cshim_steal_pointer(&buf);
  return 0;
}

int
cshim_file_write_fd(int fd, const void *data, size_t len, const char *what, cshim_error_t *err)
{
  const char *p = data;

  while (len > 0) {
    ssize_t n = CSHIM_RETRY_EINTR(write(fd, p, len));
    if (n <= 0) {
      int e = n < 0 ? errno : EIO;
      return what ? cshim_error_sys(err, e, "write %s", what) : cshim_error_sys(err, e, "write");
    }
    p += n;
    len -= (size_t)n;
  }
  return 0;
}

int
cshim_file_read_small(const char *path, size_t max, char **out, size_t *len, cshim_error_t *err)
{
  cshim_autoclose int fd = -1;
  cshim_autofree char *what = NULL;

  *out = NULL;
  fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return cshim_error_sys(err, errno, "open `%s`", path);
  cshim_xasprintf(&what, "`%s`", path);
  return cshim_file_read_fd(fd, what, max, out, len, err);
}

/* dir/name for messages: the path as the caller knows it. */
static char *
join(const char *dir, const char *name)
{
  char *path;
  if (dir == NULL || dir[0] == '\0')
    return cshim_xstrdup(name);
  cshim_xasprintf(&path, "%s%s%s", dir, dir[strlen(dir) - 1] == '/' ? "" : "/", name);
  return path;
}

static bool
is_symlink_at(int dirfd, const char *name)
{
  struct stat st;
  return fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(st.st_mode);
}

static int
write_atomic_at(int dirfd, const char *dir, const char *name, const void *data, size_t len,
                mode_t mode, bool sync, cshim_error_t *err)
{
  cshim_autofree char *tmp_name = NULL;
  cshim_autofree char *path = join(dir, name);
  cshim_autofree char *tmp = NULL;
  cshim_autoclose int fd = -1;
  size_t off = 0;
  int e;

  if (name[0] == '\0' || strchr(name, '/') || strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
    return cshim_error_make(err, EINVAL, "write `%s`: not a file name", path);
  cshim_xasprintf(&tmp_name, ".%s.tmp", name);
  tmp = join(dir, tmp_name);
  /* rename would replace a symlink rather than write through it; still, a symlink where a file
     of ours belongs is somebody's mistake or attack: say so rather than paper over it. */
  if (is_symlink_at(dirfd, name))
    return cshim_error_make(err, ELOOP, "write `%s`: it is a symbolic link; refusing to replace it",
                            path);
  for (int attempt = 0;; attempt++) {
    fd = openat(dirfd, tmp_name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
    if (fd >= 0)
      break;
    e = errno;
    if (e != EEXIST || attempt > 0)
      return cshim_error_sys(err, e, "create `%s`", tmp);
    if (is_symlink_at(dirfd, tmp_name))
      return cshim_error_make(
          err, ELOOP, "create `%s`: it is a symbolic link; refusing to write through it", tmp);
    /* Left by a write that was interrupted: ours to replace. */
    if (unlinkat(dirfd, tmp_name, 0) < 0 && errno != ENOENT)
      return cshim_error_sys(err, errno, "remove stale `%s`", tmp);
  }
  while (off < len) {
    ssize_t n = CSHIM_RETRY_EINTR(write(fd, (const char *)data + off, len - off));
    if (n < 0) {
      e = errno;
      unlinkat(dirfd, tmp_name, 0);
      return cshim_error_sys(err, e, "write `%s`", tmp);
    }
    off += (size_t)n;
  }
  if (sync && fsync(fd) < 0) {
    e = errno;
    unlinkat(dirfd, tmp_name, 0);
    return cshim_error_sys(err, e, "sync `%s`", tmp);
  }
  if (close(cshim_steal_fd(&fd)) < 0) {
    e = errno;
    unlinkat(dirfd, tmp_name, 0);
    return cshim_error_sys(err, e, "close `%s`", tmp);
  }
  if (renameat(dirfd, tmp_name, dirfd, name) < 0) {
    e = errno;
    unlinkat(dirfd, tmp_name, 0);
    return cshim_error_sys(err, e, "rename `%s` to `%s`", tmp, path);
  }
  return 0;
}

int
cshim_file_write_atomic_at(int dirfd, const char *dir, const char *name, const void *data,
                           size_t len, mode_t mode, cshim_error_t *err)
{
  return write_atomic_at(dirfd, dir, name, data, len, mode, true, err);
}

static int
write_atomic(const char *path, const void *data, size_t len, mode_t mode, bool sync,
             cshim_error_t *err)
{
  cshim_autofree char *dir = cshim_xstrdup(path);
  cshim_autoclose int dirfd = -1;
  char *slash = strrchr(dir, '/');
  const char *name = path;

  if (slash) {
    name = path + (slash - dir) + 1;
    *slash = '\0';
  }
  dirfd = open(slash ? (slash == dir ? "/" : dir) : ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dirfd < 0) {
    cshim_autofree char *tmp = NULL;
    int e = errno;
    if (slash)
      cshim_xasprintf(&tmp, "%s/.%s.tmp", slash == dir ? "" : dir, name);
    else
      cshim_xasprintf(&tmp, ".%s.tmp", name);
    return cshim_error_sys(err, e, "create `%s`", tmp);
  }
  return write_atomic_at(dirfd, slash ? (slash == dir ? "/" : dir) : NULL, name, data, len, mode,
                         sync, err);
}

int
cshim_file_write_atomic(const char *path, const void *data, size_t len, mode_t mode,
                        cshim_error_t *err)
{
  return write_atomic(path, data, len, mode, true, err);
}

int
cshim_file_write_state(const char *path, const void *data, size_t len, mode_t mode,
                       cshim_error_t *err)
{
  return write_atomic(path, data, len, mode, false, err);
}
