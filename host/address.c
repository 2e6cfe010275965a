// SPDX-License-Identifier: Apache-2.0
// Shim socket naming (containerd's grouping and hashing rules), creation and the `address` file.
#include "address.h"
#include "options.h"

#include <cshim/file.h>
#include <cshim/unix_socket.h>
#include <cshim/util.h>

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <dlfcn.h>
#include <nettle/sha2.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

static const char *const group_annotations[] = {
    "io.containerd.runc.v2.group",
    "io.kubernetes.cri.sandbox-id",
};

char *
host_address_path_clean(const char *path)
{
  size_t n = strlen(path), r = 0, w = 0, dotdot = 0;
  bool rooted;
  char *out;

  if (n == 0)
    return cshim_xstrdup(".");
  rooted = path[0] == '/';
  out = cshim_xmalloc(n + 2);
  if (rooted) {
    out[w++] = '/';
    r = 1;
    dotdot = 1;
  }
  while (r < n) {
    if (path[r] == '/')
      r++;
    else if (path[r] == '.' && (r + 1 == n || path[r + 1] == '/'))
      r++;
    else if (path[r] == '.' && path[r + 1] == '.' && (r + 2 == n || path[r + 2] == '/')) {
      r += 2;
      if (w > dotdot) {
        w--;
        while (w > dotdot && out[w] != '/')
          w--;
      } else if (!rooted) {
        if (w > 0)
          out[w++] = '/';
        out[w++] = '.';
        out[w++] = '.';
        dotdot = w;
      }
    } else {
      if ((rooted && w != 1) || (!rooted && w != 0))
        out[w++] = '/';
      while (r < n && path[r] != '/')
        out[w++] = path[r++];
    }
  }
  if (w == 0)
    out[w++] = '.';
  out[w] = '\0';
  return out;
}

char *
host_address_path_join(const char *const *elems, size_t n)
{
  cshim_autofree char *joined = NULL;
  size_t i, len = 0, first;

  for (first = 0; first < n; first++)
    if (elems[first] != NULL && elems[first][0] != '\0')
      break;
  if (first == n)
    return cshim_xstrdup("");
  for (i = first; i < n; i++)
    len += (elems[i] ? strlen(elems[i]) : 0) + 1;
  joined = cshim_xmalloc(len + 1);
  joined[0] = '\0';
  for (i = first; i < n; i++) {
    if (i > first)
      strcat(joined, "/");
    if (elems[i])
      strcat(joined, elems[i]);
  }
  return host_address_path_clean(joined);
}

int
host_address_group(const char *bundle, const char *id, char **out, cshim_error_t *err)
{
  cshim_autofree char *path = NULL;
  cshim_autofree char *text = NULL;
  size_t len = 0;
  json_t *root, *annotations;
  json_error_t jerr;
  int ret;

  cshim_xasprintf(&path, "%s/config.json", bundle);
  ret = host_options_read_file(path, &text, &len, err);
  if (ret == -ENOENT) {
    cshim_error_release(err);
    *out = cshim_xstrdup(id);
    return 0;
  }
  if (ret < 0)
    return ret;

  root = json_loadb(text, len, 0, &jerr);
  if (root == NULL)
    return cshim_error_make(err, EINVAL, "parse `%s`: line %d: %s", path, jerr.line, jerr.text);
  annotations = json_object_get(root, "annotations");
  if (json_is_object(annotations))
    for (size_t i = 0; i < CSHIM_N_ELEMENTS(group_annotations); i++) {
      json_t *v = json_object_get(annotations, group_annotations[i]);
      if (json_is_string(v)) {
        *out = cshim_xstrdup(json_string_value(v));
        json_decref(root);
        return 0;
      }
    }
  json_decref(root);
  *out = cshim_xstrdup(id);
  return 0;
}

/* nettle is opened only for the hash and closed again: a long-running daemon keeps none of its
   pages (the hash is needed once, at start-up). Only the types and constants of its header are
   used at build time. */
static int
sha256_hex(const char *input, char hex[2 * SHA256_DIGEST_SIZE + 1])
{
  void (*init)(struct sha256_ctx *);
  void (*update)(struct sha256_ctx *, size_t, const uint8_t *);
  void (*digest_fn)(struct sha256_ctx *, size_t, uint8_t *);
  uint8_t digest[SHA256_DIGEST_SIZE];
  struct sha256_ctx ctx;
  void *h = dlopen(CSHIM_NETTLE_SONAME, RTLD_NOW | RTLD_LOCAL);

  if (h == NULL) {
    fprintf(stderr, "cshim: load %s: %s\n", CSHIM_NETTLE_SONAME, dlerror());
    return -ENOENT;
  }
  *(void **)&init = dlsym(h, "nettle_sha256_init");
  *(void **)&update = dlsym(h, "nettle_sha256_update");
  *(void **)&digest_fn = dlsym(h, "nettle_sha256_digest");
  if (init == NULL || update == NULL || digest_fn == NULL) {
    fprintf(stderr, "cshim: %s lacks sha256\n", CSHIM_NETTLE_SONAME);
    dlclose(h);
    return -ENOENT;
  }
  init(&ctx);
  update(&ctx, strlen(input), (const uint8_t *)input);
  digest_fn(&ctx, sizeof digest, digest);
  dlclose(h);
  for (size_t i = 0; i < sizeof digest; i++)
    snprintf(hex + 2 * i, 3, "%02x", digest[i]);
  return 0;
}

char *
host_address_socket(const char *socket_dir, const char *grpc_address, const char *ns,
                    const char *group, bool debug)
{
  const char *elems[] = {grpc_address, ns, group, debug ? "debug" : NULL};
  cshim_autofree char *input = host_address_path_join(elems, debug ? 4 : 3);
  char hex[2 * SHA256_DIGEST_SIZE + 1];
  char *address;

  /* Go hashes join(address, ns, group) and, for the debug socket, appends "/debug" to that
     already-cleaned string; joining "debug" as a fourth element gives the same bytes. */
  if (sha256_hex(input, hex) < 0)
    return NULL;
  if (socket_dir == NULL || socket_dir[0] == '\0')
    socket_dir = HOST_ADDRESS_SOCKET_DIR;
  cshim_xasprintf(&address, "unix://%s/%s", socket_dir, hex);
  return address;
}

const char *
host_address_path(const char *address)
{
  if (strncmp(address, "unix://", 7) == 0)
    return address + 7;
  return address;
}

static bool
is_abstract(const char *address)
{
  return strncmp(address, "unix://", 7) != 0;
}

static int
make_sockaddr(const char *address, struct sockaddr_un *sun, socklen_t *len, cshim_error_t *err)
{
  return cshim_unix_sockaddr(host_address_path(address), is_abstract(address), sun, len, err);
}

static int64_t
now_ms(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

bool
host_address_can_connect(const char *address, int timeout_ms)
{
  struct sockaddr_un sun;
  socklen_t len;
  cshim_error_t err = NULL;
  int64_t deadline = now_ms() + timeout_ms;

  if (make_sockaddr(address, &sun, &len, &err) < 0) {
    cshim_error_release(&err);
    return false;
  }
  for (;;) {
    cshim_autoclose int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    int64_t left;
    int e;

    if (fd < 0)
      return false;
    if (connect(fd, (struct sockaddr *)&sun, len) == 0)
      return true;
    e = errno;
    left = deadline - now_ms();
    if (e == EINPROGRESS && left > 0) {
      struct pollfd p = {.fd = fd, .events = POLLOUT};
      int soerr = 0;
      socklen_t sl = sizeof soerr;

      if (poll(&p, 1, (int)left) <= 0)
        return false;
      if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) < 0)
        return false;
      return soerr == 0;
    }
    /* A Unix socket with a full backlog refuses non-blocking connects with EAGAIN even
       though a live shim owns it: retry until the deadline rather than calling it stale. */
    if ((e == EAGAIN || e == EINTR) && left > 0) {
      struct timespec ts = {0, 5 * 1000 * 1000};
      nanosleep(&ts, NULL);
      continue;
    }
    return false;
  }
}

static int
mkdir_p(const char *dir, mode_t mode, cshim_error_t *err)
{
  cshim_autofree char *p = cshim_xstrdup(dir);
  size_t n = strlen(p);

  for (size_t i = 1; i <= n; i++) {
    if (p[i] != '/' && p[i] != '\0')
      continue;
    p[i] = '\0';
    if (mkdir(p, mode) < 0 && errno != EEXIST)
      return cshim_error_sys(err, errno, "create directory `%s`", p);
    if (i < n)
      p[i] = '/';
  }
  return 0;
}

static int
bind_listen(const char *address, const struct sockaddr_un *sun, socklen_t len, int *fd,
            cshim_error_t *err)
{
  cshim_autoclose int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

  if (s < 0)
    return cshim_error_sys(err, errno, "create socket");
  if (bind(s, (const struct sockaddr *)sun, len) < 0)
    return cshim_error_sys(err, errno, "bind `%s`", address);
  if (listen(s, SOMAXCONN) < 0) {
    int e = errno;
    if (!is_abstract(address))
      unlink(host_address_path(address));
    return cshim_error_sys(err, e, "listen on `%s`", address);
  }
  if (!is_abstract(address) && chmod(host_address_path(address), 0600) < 0) {
    int e = errno;
    unlink(host_address_path(address));
    return cshim_error_sys(err, e, "chmod `%s`", address);
  }
  *fd = cshim_steal_fd(&s);
  return 0;
}

int
host_address_listen(const char *address, int *fd, bool *existing, cshim_error_t *err)
{
  struct sockaddr_un sun;
  socklen_t len;
  int ret;

  *fd = -1;
  *existing = false;
  ret = make_sockaddr(address, &sun, &len, err);
  if (ret < 0)
    return ret;
  if (!is_abstract(address)) {
    cshim_autofree char *dir = cshim_xstrdup(host_address_path(address));
    char *slash = strrchr(dir, '/');
    if (slash && slash != dir) {
      *slash = '\0';
      ret = mkdir_p(dir, 0700, err);
      if (ret < 0)
        return cshim_error_wrap(err, "create shim socket directory");
    }
  }

  ret = bind_listen(address, &sun, len, fd, err);
  if (ret != -EADDRINUSE)
    return ret;
  cshim_error_release(err);

  if (host_address_can_connect(address, HOST_ADDRESS_CONNECT_TIMEOUT_MS)) {
    *existing = true;
    return 0;
  }
  ret = host_address_remove_socket(address, err);
  if (ret < 0)
    return cshim_error_wrap(err, "remove stale shim socket");
  ret = bind_listen(address, &sun, len, fd, err);
  if (ret < 0)
    return cshim_error_wrap(err, "create shim socket after removing a stale one");
  return 0;
}

int
host_address_remove_socket(const char *address, cshim_error_t *err)
{
  if (is_abstract(address))
    return 0;
  if (unlink(host_address_path(address)) < 0 && errno != ENOENT)
    return cshim_error_sys(err, errno, "remove socket `%s`", host_address_path(address));
  return 0;
}

int
host_address_write_file(const char *dir, const char *address, cshim_error_t *err)
{
  cshim_autofree char *path = NULL;

  cshim_xasprintf(&path, "%s/%s", dir, HOST_ADDRESS_FILE);
  return cshim_file_write_state(path, address, strlen(address), 0644, err);
}

int
host_address_read_file(const char *dir, char **out, cshim_error_t *err)
{
  return host_options_read_line(dir, HOST_ADDRESS_FILE, out, err);
}
