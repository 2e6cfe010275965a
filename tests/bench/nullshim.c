// SPDX-License-Identifier: Apache-2.0
// The benchmark's floor: a ttrpc server that does no work. It answers every request frame at
// once with the same Response, whose payload is a StateResponse the size of a real one (id,
// bundle, pid, status, stdout and stderr paths: ~200 bytes, so the client decodes as much as it
// does from a shim), the answers to the frames of one read gathered into one write, as cshim
// does. Measuring taskbench against it
// shows what containerd's Go client and the kernel cost on this machine at this moment, so the
// shims' figures can be read against it. One connection at a time, one thread; not installed.
// With -e it waits for each read in epoll_wait (with a timeout, as an event loop with timers
// does) instead of blocking in read: the floor of a single-threaded event-loop server.
//
//   nullshim [-e] SOCKET_PATH     (serves until killed)
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define HEADER 10u
#define BUF (64u * 1024u)

/* ttrpc.Response{payload: StateResponse{...}}, built by make_response */
static uint8_t response[512];
static size_t response_len;

static size_t
put_string(uint8_t *p, uint8_t tag, const char *s)
{
  size_t n = strlen(s); /* < 128: one length byte */
  p[0] = tag;
  p[1] = (uint8_t)n;
  memcpy(p + 2, s, n);
  return 2 + n;
}

static void
make_response(void)
{
  uint8_t state[400];
  size_t n = 0;

  n += put_string(state + n, 0x0a, "m1"); /* id */
  n += put_string(state + n, 0x12, "/run/containerd/io.containerd.runtime.v2.task/bench/m1");
  state[n++] = 0x18; /* pid 12345 */
  state[n++] = 0xb9;
  state[n++] = 0x60;
  state[n++] = 0x20; /* status RUNNING */
  state[n++] = 2;
  n += put_string(state + n, 0x32,
                  "/run/containerd/fifo/1234567890/m1-stdout-0123456789abcdef0123456789ab");
  n += put_string(state + n, 0x3a,
                  "/run/containerd/fifo/1234567890/m1-stderr-0123456789abcdef0123456789ab");
  response[0] = 0x12; /* Response.payload, length as a two-byte varint */
  response[1] = (uint8_t)(0x80 | (n & 0x7f));
  response[2] = (uint8_t)(n >> 7);
  memcpy(response + 3, state, n);
  response_len = 3 + n;
}

static int
write_all(int fd, const uint8_t *p, size_t n)
{
  while (n > 0) {
    ssize_t w = write(fd, p, n);
    if (w < 0 && errno == EINTR)
      continue;
    if (w <= 0)
      return -1;
    p += w;
    n -= (size_t)w;
  }
  return 0;
}

/* Serve connection c until it ends; with ep >= 0 (an epoll set holding c), wait in epoll_wait. */
static void
serve(int c, int ep)
{
  static uint8_t in[BUF], out[BUF];
  size_t have = 0;
  struct epoll_event ev;

  for (;;) {
    size_t off = 0, o = 0;
    ssize_t n;
    if (ep >= 0 && epoll_wait(ep, &ev, 1, 1000) <= 0)
      continue; /* a timeout or EINTR: wait again */
    n = read(c, in + have, sizeof in - have);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      return;
    have += (size_t)n;
    while (have - off >= HEADER) {
      const uint8_t *h = in + off;
      uint32_t len = (uint32_t)h[0] << 24 | (uint32_t)h[1] << 16 | (uint32_t)h[2] << 8 | h[3];
      if (len > BUF - HEADER) /* larger than any request taskbench sends */
        return;
      if (have - off < HEADER + len)
        break;
      if (o + HEADER + response_len > sizeof out) {
        if (write_all(c, out, o) < 0)
          return;
        o = 0;
      }
      out[o] = 0, out[o + 1] = 0, out[o + 2] = 0, out[o + 3] = (uint8_t)response_len;
      memcpy(out + o + 4, h + 4, 4); /* stream id */
      out[o + 8] = 2;                /* response */
      out[o + 9] = 0;
      memcpy(out + o + HEADER, response, response_len);
      o += HEADER + response_len;
      off += HEADER + len;
    }
    memmove(in, in + off, have - off);
    have -= off;
    if (o > 0 && write_all(c, out, o) < 0)
      return;
  }
}

int
main(int argc, char **argv)
{
  struct sockaddr_un a = {.sun_family = AF_UNIX};
  int ls, use_epoll = argc == 3 && strcmp(argv[1], "-e") == 0;

  if (argc != 2 + use_epoll || strlen(argv[argc - 1]) >= sizeof a.sun_path) {
    fprintf(stderr, "usage: nullshim [-e] SOCKET_PATH\n");
    return 2;
  }
  strcpy(a.sun_path, argv[argc - 1]);
  make_response();
  ls = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (ls < 0 || bind(ls, (struct sockaddr *)&a, sizeof a) < 0 || listen(ls, 4) < 0) {
    perror("nullshim");
    return 1;
  }
  for (;;) {
    int c = accept(ls, NULL, NULL);
    if (c < 0) {
      if (errno == EINTR)
        continue;
      perror("nullshim: accept");
      return 1;
    }
    if (use_epoll) {
      struct epoll_event ev = {.events = EPOLLIN};
      int ep = epoll_create1(EPOLL_CLOEXEC);
      if (ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, c, &ev) < 0)
        perror("nullshim: epoll");
      else
        serve(c, ep);
      if (ep >= 0)
        close(ep);
    } else
      serve(c, -1);
    close(c);
  }
}
