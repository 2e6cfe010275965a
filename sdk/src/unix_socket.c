// SPDX-License-Identifier: Apache-2.0
// Unix socket addresses: the one place a path goes into a sockaddr_un.
#include <cshim/unix_socket.h>

#include <errno.h>
#include <stddef.h>
#include <string.h>

#include <cshim/util.h>

int
cshim_unix_sockaddr(const char *path, bool abstract, struct sockaddr_un *addr, socklen_t *len,
                    cshim_error_t *err)
{
  size_t n = path ? strlen(path) : 0;
  size_t off = abstract ? 1 : 0;

  memset(addr, 0, sizeof *addr);
  addr->sun_family = AF_UNIX;
  /* A path needs room for its NUL; an abstract name for its leading NUL. */
  if (n == 0 || off + n >= sizeof addr->sun_path)
    return cshim_error_make(err, ENAMETOOLONG, "socket path `%s` is empty or longer than %zu bytes",
                            path ? path : "", sizeof addr->sun_path - 1 - off);
  memcpy(addr->sun_path + off, path, n);
  *len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + off + n + (abstract ? 0 : 1));
  return 0;
}

char *
cshim_unix_socket_path(int fd)
{
  struct sockaddr_un addr;
  socklen_t len = sizeof addr;

  memset(&addr, 0, sizeof addr);
  if (getsockname(fd, (struct sockaddr *)&addr, &len) < 0 || addr.sun_family != AF_UNIX ||
      len <= offsetof(struct sockaddr_un, sun_path) || addr.sun_path[0] == '\0')
    return NULL;
  /* The kernel may count the NUL or not: stop at it. */
  return cshim_xstrndup(addr.sun_path, len - offsetof(struct sockaddr_un, sun_path));
}
