// SPDX-License-Identifier: Apache-2.0
// The debug plugin's live-upgrade hooks: its listening socket and the connections still waiting
// for their request cross the exec, so the path never refuses a connection and a client that
// connected just before never sees it closed (docs/live-upgrade.md).
#define _GNU_SOURCE
#include "debug.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include <cshim/state.h>
#include <cshim/util.h>

enum
{
  UP_LISTENER = 1, /* fd */
  UP_SOCKET_PATH = 2,
  UP_UNLINK = 3,
  UP_REQUESTS = 4,
  UP_REJECTED = 5,
  UP_PROFILES = 6,
  UP_CONN = 7, /* list: a connection whose request is not complete yet */
  CONN_FD = 1,
  CONN_READ = 2, /* the bytes of the request read so far */
};

const char *
debug_upgrade_busy(void *instance)
{
  debug_t *d = instance;
  /* A profile would be cut short; an answer being written is waited for (short). Connections
     still waiting for their request are handed over. */
  if (d->profile)
    return "a CPU profile is being taken";
  return debug_http_busy(d);
}

static void
save_conn(void *data, int fd, const char *raw, size_t len)
{
  cshim_state_writer_t *w = data;
  cshim_state_begin(w, UP_CONN);
  cshim_state_put_fd(w, CONN_FD, fd);
  if (len)
    cshim_state_put_bytes(w, CONN_READ, raw, len);
  cshim_state_end(w);
}

static int
restore_conn(debug_t *d, const cshim_state_item_t *list, cshim_error_t *err)
{
  cshim_state_reader_t r;
  cshim_state_item_t it;
  const char *raw = NULL;
  size_t len = 0;
  int fd = -1, ret = cshim_state_item_list(list, &r, err);

  while (ret >= 0 && (ret = cshim_state_next(&r, &it, err)) > 0) {
    if (it.tag == CONN_FD)
      ret = cshim_state_item_fd(&it, &fd, err);
    else if (it.tag == CONN_READ) {
      raw = (const char *)it.value;
      len = it.len;
    }
  }
  if (ret < 0)
    return ret;
  if (fd < 0)
    return cshim_error_make(err, EBADMSG, "state: debug connection without a descriptor");
  return debug_http_adopt(d, fd, raw, len, err);
}

int
debug_upgrade_save(void *instance, cshim_state_writer_t *w, cshim_error_t *err)
{
  debug_t *d = instance;
  uv_os_fd_t fd;

  if (d->listening) {
    if (uv_fileno((uv_handle_t *)&d->listener, &fd) < 0)
      return cshim_error_make(err, EBADF, "debug listener has no descriptor");
    cshim_state_put_fd(w, UP_LISTENER, fd);
  }
  cshim_state_put_str(w, UP_SOCKET_PATH, d->socket_path);
  cshim_state_put_bool(w, UP_UNLINK, d->unlink_socket);
  cshim_state_put_u64(w, UP_REQUESTS, d->http_requests);
  cshim_state_put_u64(w, UP_REJECTED, d->http_rejected);
  cshim_state_put_u64(w, UP_PROFILES, d->profiles);
  /* A crash snapshot of a half-read request may be stale by the crash: there the connection is
     closed (the client sees it end before any answer and asks again). */
  if (!cshim_state_writer_is_crash(w))
    debug_http_foreach_idle(d, save_conn, w);
  return 0;
}

int
debug_upgrade_restore(void *instance, const cshim_state_reader_t *state, cshim_error_t *err)
{
  debug_t *d = instance;
  cshim_state_reader_t r;
  cshim_state_item_t it;
  int listener = -1, ret;

  if (state == NULL) {
    cshim_error_t ignored = NULL;
    if (debug_listen(d, &ignored) < 0)
      cshim_error_release(&ignored);
    return 0;
  }
  r = *state;
  while ((ret = cshim_state_next(&r, &it, err)) > 0) {
    switch (it.tag) {
    case UP_LISTENER:
      ret = cshim_state_item_fd(&it, &listener, err);
      break;
    case UP_SOCKET_PATH:
      free(d->socket_path);
      d->socket_path = NULL;
      ret = cshim_state_item_str(&it, &d->socket_path, err);
      break;
    case UP_UNLINK:
      ret = cshim_state_item_bool(&it, &d->unlink_socket, err);
      break;
    case UP_REQUESTS:
      ret = cshim_state_item_u64(&it, &d->http_requests, err);
      break;
    case UP_REJECTED:
      ret = cshim_state_item_u64(&it, &d->http_rejected, err);
      break;
    case UP_PROFILES:
      ret = cshim_state_item_u64(&it, &d->profiles, err);
      break;
    case UP_CONN:
      ret = restore_conn(d, &it, err);
      break;
    default:
      break;
    }
    if (ret < 0)
      return ret;
  }
  if (ret < 0)
    return ret;
  if (listener < 0)
    return 0;
  return debug_http_listen_fd(d, listener, err);
}
