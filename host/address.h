// SPDX-License-Identifier: Apache-2.0
// The shim socket address: grouping, Go path cleaning, hashing, listening and the `address` file.
#ifndef HOST_ADDRESS_H
#define HOST_ADDRESS_H

#include <stdbool.h>
#include <stddef.h>

#include <cshim/error.h>

/* Where every containerd before 2.3 expects shim sockets (2.3+ may send another one). */
#define HOST_ADDRESS_SOCKET_DIR "/run/containerd/s"

/* The name of the file, in the bundle, that records the address (written by `start`). */
#define HOST_ADDRESS_FILE "address"

/* How long `start` waits for an existing socket to accept a connection before calling it stale. */
#define HOST_ADDRESS_CONNECT_TIMEOUT_MS 100

/* Go's path.Clean: the shortest equivalent path (repeated '/' collapsed, "." dropped, ".."
   resolved lexically, no trailing '/'; "" -> "."). Caller owns the result. */
char *host_address_path_clean(const char *path);

/* Go's path.Join: the non-empty elements joined with '/' and cleaned; "" when every element is
   empty. Caller owns the result. */
char *host_address_path_join(const char *const *elems, size_t n);

/* The group id of a task: the annotation `io.containerd.runc.v2.group`, else
   `io.kubernetes.cri.sandbox-id`, in <bundle>/config.json, else id. A missing config.json
   counts as "no annotations"; an unreadable or malformed one fails (EINVAL for bad JSON).
   On success *out is a new string (caller owns). */
int host_address_group(const char *bundle, const char *id, char **out, cshim_error_t *err);

/* Returns NULL (and says why on stderr) only when libnettle cannot be loaded.
   The socket address of a group: "unix://" socket_dir "/" sha256hex(path.Join (grpc_address,
   ns, group)), with "/debug" appended to the hashed string for the debug socket. socket_dir NULL
   or "" means HOST_ADDRESS_SOCKET_DIR. Caller owns the result. */
char *host_address_socket(const char *socket_dir, const char *grpc_address, const char *ns,
                          const char *group, bool debug);

/* The socket path in address ("unix:///a/b" -> "/a/b"); an address without "unix://" is
   returned whole (it names an abstract socket, as containerd's dialer reads it). Borrowed from
   address. */
const char *host_address_path(const char *address);

/* Whether a socket at address accepts a connection within timeout_ms. */
bool host_address_can_connect(const char *address, int timeout_ms);

/* Create the listening socket for address: mkdir -p its directory (0700), bind, listen,
   chmod 0600. If the address is in use and something accepts a connection within
   HOST_ADDRESS_CONNECT_TIMEOUT_MS, that is a running shim of the same group: *fd = -1,
   *existing = true and 0 is returned. If nothing answers, the stale socket is removed and bound
   again. Otherwise *fd is the listening socket (close-on-exec, caller owns), *existing = false.
   A path longer than sun_path fails with ENAMETOOLONG. */
int host_address_listen(const char *address, int *fd, bool *existing, cshim_error_t *err);

/* Remove the socket file of address; an absent file or an abstract address is not an error. */
int host_address_remove_socket(const char *address, cshim_error_t *err);

/* Atomically write address (no newline) to <dir>/address (cshim_file_write_atomic: temp
   file, fsync, rename). */
int host_address_write_file(const char *dir, const char *address, cshim_error_t *err);

/* Read <dir>/address. *out is the content without trailing whitespace (caller owns). A missing
   file fails with ENOENT, an empty one with ENODATA. */
int host_address_read_file(const char *dir, char **out, cshim_error_t *err);

#endif
