// SPDX-License-Identifier: Apache-2.0
// Test harness for the real shim binary: temporary tree, daemon child process, raw ttrpc client.
#define _GNU_SOURCE
#include "harness.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cshim/frame.h>
#include <cshim/ttrpc.h>

/* Last: cmocka defines fail(), a name <cshim/ttrpc.h> uses. */
#include <cmocka.h>

#ifndef CSHIM_TEST_SHIM_BINARY
#error CSHIM_TEST_SHIM_BINARY must name the shim binary
#endif

#define READ_TIMEOUT_S 10

static void
sleep_ms(int ms)
{
  struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
  while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
    ;
}

static void
write_file(const char *path, const char *text)
{
  FILE *f = fopen(path, "w");
  assert_non_null(f);
  assert_int_equal(fputs(text, f) >= 0, 1);
  assert_int_equal(fclose(f), 0);
}

void
harness_init(harness_t *h, const char *yaml)
{
  size_t cap = strlen(yaml) * 2 + 256, n = 0;
  char *text = malloc(cap);
  const char *p;

  memset(h, 0, sizeof(*h));
  snprintf(h->dir, sizeof(h->dir), "/tmp/cshim-bin.XXXXXX");
  assert_non_null(mkdtemp(h->dir));
  snprintf(h->bundle, sizeof(h->bundle), "%s/bundle", h->dir);
  snprintf(h->config, sizeof(h->config), "%s/cshim.yaml", h->dir);
  snprintf(h->sock, sizeof(h->sock), "%s/shim.sock", h->dir);
  snprintf(h->log, sizeof(h->log), "%s/shim.log", h->dir);
  assert_int_equal(mkdir(h->bundle, 0700), 0);

  assert_non_null(text);
  for (p = yaml; *p;) {
    if (strncmp(p, "%DIR%", 5) == 0) {
      size_t l = strlen(h->dir);
      if (n + l + 1 > cap)
        text = realloc(text, cap = (n + l + 1) * 2);
      memcpy(text + n, h->dir, l);
      n += l;
      p += 5;
      continue;
    }
    if (n + 2 > cap)
      text = realloc(text, cap *= 2);
    text[n++] = *p++;
  }
  text[n] = '\0';
  write_file(h->config, text);
  free(text);
}

void
harness_start(harness_t *h)
{
  char address[160];
  pid_t pid;

  snprintf(address, sizeof(address), "%s/containerd.sock", h->dir);
  pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    char *argv[] = {(char *)CSHIM_TEST_SHIM_BINARY,
                    "-namespace",
                    "integration",
                    "-id",
                    "binary",
                    "-address",
                    address,
                    "-socket",
                    h->sock,
                    NULL};
    int fd;

    /* A test that crashes must not leave a daemon behind. */
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    fd = open("/dev/null", O_RDWR);
    if (fd >= 0) {
      dup2(fd, STDIN_FILENO);
      dup2(fd, STDOUT_FILENO);
    }
    fd = open(h->log, O_WRONLY | O_CREAT | O_APPEND, 0600);
    if (fd >= 0)
      dup2(fd, STDERR_FILENO);
    if (chdir(h->bundle) < 0)
      _exit(126);
    setenv("CSHIM_CONFIG", h->config, 1);
    unsetenv("TTRPC_ADDRESS");
    execv(argv[0], argv);
    _exit(127);
  }
  h->pid = pid;
}

static bool
reap(harness_t *h)
{
  int status;
  pid_t r;

  if (h->pid == 0)
    return true;
  r = waitpid(h->pid, &status, WNOHANG);
  if (r == h->pid) {
    h->status = status;
    h->pid = 0;
    return true;
  }
  return false;
}

bool
harness_wait_ready(harness_t *h, int timeout_ms)
{
  for (int waited = 0; waited <= timeout_ms; waited += 20) {
    int fd;

    if (reap(h))
      return false;
    fd = raw_connect(h->sock);
    if (fd >= 0) {
      close(fd);
      return true;
    }
    sleep_ms(20);
  }
  return false;
}

bool
harness_wait_exit(harness_t *h, int timeout_ms)
{
  for (int waited = 0; waited <= timeout_ms; waited += 20) {
    if (reap(h))
      return true;
    sleep_ms(20);
  }
  return false;
}

int
harness_run_to_failure(harness_t *h)
{
  harness_start(h);
  if (!harness_wait_exit(h, 10000)) {
    kill(h->pid, SIGKILL);
    waitpid(h->pid, NULL, 0);
    h->pid = 0;
    return -1;
  }
  return WIFEXITED(h->status) ? WEXITSTATUS(h->status) : -1;
}

char *
harness_read_log(const harness_t *h)
{
  FILE *f = fopen(h->log, "r");
  size_t n = 0, cap = 4096;
  char *buf = malloc(cap);

  assert_non_null(buf);
  if (f) {
    size_t r;
    while ((r = fread(buf + n, 1, cap - n - 1, f)) > 0) {
      n += r;
      if (cap - n - 1 == 0)
        buf = realloc(buf, cap *= 2);
    }
    fclose(f);
  }
  buf[n] = '\0';
  return buf;
}

static int
remove_cb(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
  (void)st;
  (void)flag;
  (void)ftw;
  remove(path);
  return 0;
}

void
harness_fini(harness_t *h)
{
  if (h->pid > 0) {
    int status = 0;

    /* a shim that ended before the test was done with it: say how, with its log, so that a
       failure seen only in CI can be read from CI's output */
    if (waitpid(h->pid, &status, WNOHANG) == h->pid) {
      char *log = harness_read_log(h);
      fprintf(stderr, "harness: the shim (pid %d) had already ended: %s %d; its log:\n%s\n",
              (int)h->pid, WIFSIGNALED(status) ? "signal" : "exit status",
              WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status), log ? log : "");
      free(log);
    } else {
      kill(h->pid, SIGKILL);
      waitpid(h->pid, NULL, 0);
    }
    h->pid = 0;
  }
  if (h->dir[0])
    nftw(h->dir, remove_cb, 16, FTW_DEPTH | FTW_PHYS);
  h->dir[0] = '\0';
}

/* ---- raw client ---------------------------------------------------------------------------- */

int
raw_connect(const char *path)
{
  struct sockaddr_un sun = {.sun_family = AF_UNIX};
  struct timeval tv = {.tv_sec = READ_TIMEOUT_S};
  int fd;

  if (strlen(path) >= sizeof(sun.sun_path))
    return -1;
  strcpy(sun.sun_path, path);
  fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return -1;
  if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0) {
    close(fd);
    return -1;
  }
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
  return fd;
}

static int
send_all(int fd, const uint8_t *p, size_t len)
{
  while (len > 0) {
    ssize_t r = send(fd, p, len, MSG_NOSIGNAL);
    if (r < 0 && errno == EINTR)
      continue;
    if (r <= 0)
      return -1;
    p += r;
    len -= (size_t)r;
  }
  return 0;
}

static int
recv_all(int fd, uint8_t *p, size_t len)
{
  while (len > 0) {
    ssize_t r = recv(fd, p, len, 0);
    if (r < 0 && errno == EINTR)
      continue;
    if (r <= 0)
      return -1;
    p += r;
    len -= (size_t)r;
  }
  return 0;
}

int
raw_send_frame(int fd, uint32_t stream_id, uint8_t type, uint8_t flags, const void *data,
               size_t len)
{
  cshim_frame_header_t hdr = {
      .length = (uint32_t)len, .stream_id = stream_id, .type = type, .flags = flags};
  uint8_t head[CSHIM_FRAME_HEADER_SIZE];

  cshim_frame_header_encode(&hdr, head);
  if (send_all(fd, head, sizeof(head)) < 0)
    return -1;
  return len ? send_all(fd, data, len) : 0;
}

int
raw_send_request_bytes(int fd, uint32_t stream_id, const char *service, const char *method,
                       const void *payload, size_t len, const char *ns)
{
  Ttrpc__Request req = TTRPC__REQUEST__INIT;
  Ttrpc__KeyValue kv = TTRPC__KEY_VALUE__INIT;
  Ttrpc__KeyValue *kvs[1] = {&kv};
  size_t n;
  uint8_t *buf;
  int r;

  req.service = (char *)service;
  req.method = (char *)method;
  req.payload.data = (uint8_t *)payload;
  req.payload.len = len;
  if (ns) {
    kv.key = (char *)CSHIM_TTRPC_NAMESPACE_KEY;
    kv.value = (char *)ns;
    req.metadata = kvs;
    req.n_metadata = 1;
  }
  n = ttrpc__request__get_packed_size(&req);
  buf = malloc(n + 1);
  assert_non_null(buf);
  ttrpc__request__pack(&req, buf);
  r = raw_send_frame(fd, stream_id, CSHIM_FRAME_REQUEST, 0, buf, n);
  free(buf);
  return r;
}

int
raw_send_request(int fd, uint32_t stream_id, const char *service, const char *method,
                 const ProtobufCMessage *msg, const char *ns)
{
  uint8_t *payload = NULL;
  size_t len = 0;
  int r;

  if (msg) {
    len = protobuf_c_message_get_packed_size(msg);
    payload = malloc(len + 1);
    assert_non_null(payload);
    protobuf_c_message_pack(msg, payload);
  }
  r = raw_send_request_bytes(fd, stream_id, service, method, payload, len, ns);
  free(payload);
  return r;
}

Ttrpc__Response *
raw_recv_response(int fd, uint32_t *stream_id)
{
  uint8_t head[CSHIM_FRAME_HEADER_SIZE];
  cshim_frame_header_t hdr;
  Ttrpc__Response *resp;
  uint8_t *data;

  if (recv_all(fd, head, sizeof(head)) < 0)
    return NULL;
  cshim_frame_header_decode(head, &hdr);
  if (hdr.type != CSHIM_FRAME_RESPONSE || hdr.length > CSHIM_FRAME_MAX_DATA)
    return NULL;
  data = malloc(hdr.length + 1);
  assert_non_null(data);
  if (recv_all(fd, data, hdr.length) < 0) {
    free(data);
    return NULL;
  }
  resp = ttrpc__response__unpack(NULL, hdr.length, data);
  free(data);
  if (stream_id)
    *stream_id = hdr.stream_id;
  return resp;
}

int
raw_response_code(const Ttrpc__Response *resp)
{
  return resp->status ? resp->status->code : 0;
}

const char *
raw_response_message(const Ttrpc__Response *resp)
{
  return resp->status && resp->status->message ? resp->status->message : "";
}
