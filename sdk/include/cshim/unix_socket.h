// SPDX-License-Identifier: Apache-2.0
// Unix socket addresses: a path (or abstract name) into a sockaddr_un, and back from a socket.
#ifndef CSHIM_UNIX_SOCKET_H
#define CSHIM_UNIX_SOCKET_H

#include <stdbool.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <cshim/error.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Fill *addr (zeroed first) and *len for the socket `path`: a filesystem path, or with
   abstract an abstract-namespace name (sun_path[0] = '\0', the name after it, no NUL counted).
   A "unix://" prefix is not stripped. Returns 0, or -ENAMETOOLONG when path is empty or does
   not fit ("socket path `PATH` is empty or longer than N bytes"). */
int cshim_unix_sockaddr(const char *path, bool abstract, struct sockaddr_un *addr, socklen_t *len,
                        cshim_error_t *err);

/* The filesystem path the Unix socket fd is bound to (getsockname), malloc'ed (caller frees);
   NULL when fd is not a Unix socket, is unnamed or is bound to an abstract name. */
char *cshim_unix_socket_path(int fd);

#ifdef __cplusplus
}
#endif
#endif
