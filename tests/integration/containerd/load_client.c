// SPDX-License-Identifier: Apache-2.0
// A hostile or merely busy ttrpc client for a running shim (checks-load.sh): pipelined calls,
// a client that never reads its answers, clients that hold almost complete 4 MiB frames, and one
// that sends half a frame and stalls.
// It reads the shim's fds, children and RSS from /proc, prints what it measured, and exits 1
// when a count or bound it was given is not met. Calls that start a process are Kill with
// SIGWINCH (`runc kill <id> 28`, harmless to the container's init); State is the call whose
// latency is reported.
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <linux/sockios.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <cshim/frame.h>
#include <cshim/util.h>

#include "containerd/task/v2/shim.pb-c.h"
#include "google/rpc/status.pb-c.h"
#include "ttrpc/request.pb-c.h"

#define TASK "containerd.task.v2.Task"

static const char *sock_path, *ns, *cid;
static pid_t shim_pid;

static void
die(const char *fmt, ...)
{
  va_list ap;

  va_start(ap, fmt);
  fputs("load-client: ", stderr);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
  exit(2);
}

static uint64_t
now_ns(void)
{
  struct timespec ts;

  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int
dial(bool nonblock)
{
  struct sockaddr_un addr = {.sun_family = AF_UNIX};
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

  snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", sock_path);
  if (fd < 0 || connect(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0)
    die("connect %s: %s", sock_path, strerror(errno));
  if (nonblock)
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
  return fd;
}

/* One Request frame for method with payload msg; caller frees. */
static uint8_t *
request_frame(uint32_t id, const char *method, const ProtobufCMessage *msg, size_t *len)
{
  Ttrpc__Request req = TTRPC__REQUEST__INIT;
  Ttrpc__KeyValue kv = TTRPC__KEY_VALUE__INIT;
  Ttrpc__KeyValue *kvp = &kv;
  cshim_frame_header_t h = {.stream_id = id, .type = CSHIM_FRAME_REQUEST};
  cshim_autofree uint8_t *payload = NULL;
  cshim_error_t err = NULL;
  uint8_t *out = NULL;

  req.service = TASK;
  req.method = (char *)method;
  req.payload.len = protobuf_c_message_get_packed_size(msg);
  payload = cshim_xmalloc(req.payload.len + 1);
  protobuf_c_message_pack(msg, payload);
  req.payload.data = payload;
  kv.key = "containerd-namespace-ttrpc";
  kv.value = (char *)ns;
  req.metadata = &kvp;
  req.n_metadata = 1;
  if (cshim_frame_pack(&h, &req.base, CSHIM_FRAME_MAX_DATA, &out, len, &err) < 0)
    die("pack: %s", err->msg);
  return out;
}

static uint8_t *
kill_frame(uint32_t id, size_t *len)
{
  Containerd__Task__V2__KillRequest k = CONTAINERD__TASK__V2__KILL_REQUEST__INIT;

  k.id = (char *)cid;
  k.signal = 28; /* SIGWINCH */
  return request_frame(id, "Kill", &k.base, len);
}

static uint8_t *
wait_frame(uint32_t id, size_t *len)
{
  Containerd__Task__V2__WaitRequest w = CONTAINERD__TASK__V2__WAIT_REQUEST__INIT;

  w.id = (char *)cid;
  return request_frame(id, "Wait", &w.base, len);
}

static uint8_t *
state_frame(uint32_t id, size_t *len)
{
  Containerd__Task__V2__StateRequest s = CONTAINERD__TASK__V2__STATE_REQUEST__INIT;

  s.id = (char *)cid;
  return request_frame(id, "State", &s.base, len);
}

/* Read one whole Response (blocking fd); returns its status code, -1 on EOF. */
static int
read_response(int fd, cshim_frame_reader_t *r, uint8_t *buf, size_t *off, size_t *have,
              uint32_t *id, char *msg, size_t msg_len)
{
  for (;;) {
    cshim_frame_t f;
    const uint8_t *p = buf + *off;
    size_t len = *have;
    enum cshim_frame_result res = CSHIM_FRAME_NEED_MORE;

    if (len > 0) {
      res = cshim_frame_reader_next(r, &p, &len, &f);
      *off += *have - len;
      *have = len;
    }
    if (res == CSHIM_FRAME_COMPLETE) {
      Ttrpc__Response *resp = ttrpc__response__unpack(NULL, f.header.length, f.data);
      int code;
      free(f.data);
      if (!resp)
        die("undecodable response");
      code = resp->status ? resp->status->code : 0;
      if (msg)
        snprintf(msg, msg_len, "%s",
                 resp->status && resp->status->message ? resp->status->message : "");
      *id = f.header.stream_id;
      ttrpc__response__free_unpacked(resp, NULL);
      return code;
    }
    if (res == CSHIM_FRAME_OVERSIZED)
      die("oversized response");
    ssize_t n = read(fd, buf, 65536);
    if (n == 0)
      return -1;
    if (n < 0) {
      if (errno == EINTR)
        continue;
      if (errno == EAGAIN) {
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        poll(&pfd, 1, 1000);
        continue;
      }
      die("read: %s", strerror(errno));
    }
    *off = 0;
    *have = (size_t)n;
  }
}

/* ---- /proc ---------------------------------------------------------------------------------- */

static int
count_fds(pid_t pid)
{
  char path[64];
  struct dirent *e;
  int n = 0;
  DIR *d;

  snprintf(path, sizeof(path), "/proc/%d/fd", (int)pid);
  d = opendir(path);
  if (!d)
    return -1;
  while ((e = readdir(d)))
    if (e->d_name[0] != '.')
      n++;
  closedir(d);
  return n;
}

/* The shim's children. From /proc/<pid>/task/<pid>/children (the shim has one thread) where the
   kernel has it: a walk of every /proc/<n>/stat instead would make a dentry for each short-lived
   runc, which the shim then pays to invalidate when it reaps it (~10% of its CPU under the
   flood, seen with perf). */
static int
count_children(pid_t pid)
{
  struct dirent *e;
  int n = 0;
  DIR *d;
  char children[64];
  FILE *cf;

  snprintf(children, sizeof(children), "/proc/%d/task/%d/children", (int)pid, (int)pid);
  cf = fopen(children, "re");
  if (cf) {
    int c;
    bool in_number = false;
    while ((c = fgetc(cf)) != EOF) {
      if (c >= '0' && c <= '9') {
        if (!in_number)
          n++;
        in_number = true;
      } else
        in_number = false;
    }
    fclose(cf);
    return n;
  }
  d = opendir("/proc");

  while (d && (e = readdir(d))) {
    char path[300], buf[512], *rp;
    int ppid = 0;
    FILE *f;

    if (e->d_name[0] < '0' || e->d_name[0] > '9')
      continue;
    snprintf(path, sizeof(path), "/proc/%s/stat", e->d_name);
    f = fopen(path, "re");
    if (!f)
      continue;
    if (fgets(buf, sizeof(buf), f) && (rp = strrchr(buf, ')')) &&
        sscanf(rp + 2, "%*c %d", &ppid) == 1 && ppid == pid)
      n++;
    fclose(f);
  }
  if (d)
    closedir(d);
  return n;
}

/* One figure of /proc/<pid>/status in KiB ("VmRSS", "RssAnon", "RssFile"), or -1. */
static long
status_kib(pid_t pid, const char *key)
{
  char path[64], line[256];
  size_t klen = strlen(key);
  long kib = -1;
  FILE *f;

  snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
  f = fopen(path, "re");
  if (!f)
    return -1;
  while (fgets(line, sizeof(line), f))
    if (strncmp(line, key, klen) == 0 && line[klen] == ':' &&
        sscanf(line + klen + 1, "%ld kB", &kib) == 1)
      break;
  fclose(f);
  return kib;
}

static long
rss_kib(pid_t pid)
{
  return status_kib(pid, "VmRSS");
}

/* RSS in its parts: anonymous memory (what the shim allocates) and pages of files (its binary,
   modules and libraries, shared with every other process that maps them). */
struct rss
{
  long total, anon, file;
};

static struct rss
rss_now(void)
{
  struct rss r = {rss_kib(shim_pid), status_kib(shim_pid, "RssAnon"),
                  status_kib(shim_pid, "RssFile")};
  return r;
}

/* CPU time the process has used (user + system), in ms. */
static double
cpu_ms(pid_t pid)
{
  char path[64], buf[1024], *rp;
  unsigned long ut = 0, st = 0;
  FILE *f;

  snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
  f = fopen(path, "re");
  if (!f)
    return -1;
  if (!fgets(buf, sizeof(buf), f) || !(rp = strrchr(buf, ')')) ||
      sscanf(rp + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) != 2)
    ut = st = 0;
  fclose(f);
  return (double)(ut + st) * 1000.0 / (double)sysconf(_SC_CLK_TCK);
}

static double
load_average(void)
{
  double l = -1;
  FILE *f = fopen("/proc/loadavg", "re");

  if (f) {
    if (fscanf(f, "%lf", &l) != 1)
      l = -1;
    fclose(f);
  }
  return l;
}

/* ---- modes ---------------------------------------------------------------------------------- */

/* n Kill(SIGWINCH) calls written back to back on one connection while answers are read. */
static int
run_pipelined(int n)
{
  int fd = dial(true);
  cshim_frame_reader_t r;
  uint8_t *out = NULL, *buf = cshim_xmalloc(65536);
  size_t out_len = 0, out_off = 0, off = 0, have = 0;
  int answered = 0, ok = 0, other = 0;
  char first_err[512] = "";

  cshim_frame_reader_init(&r, 0);
  for (int i = 0; i < n; i++) {
    size_t len;
    uint8_t *f = kill_frame(2 * (uint32_t)i + 1, &len);
    out = cshim_xrealloc(out, out_len + len);
    memcpy(out + out_len, f, len);
    out_len += len;
    free(f);
  }
  while (answered < n) {
    struct pollfd pfd = {.fd = fd, .events = POLLIN | (out_off < out_len ? POLLOUT : 0)};
    uint32_t id;
    char msg[256];
    int code;

    if (poll(&pfd, 1, 60000) <= 0)
      die("pipelined: no progress for 60 s (%d of %d answered)", answered, n);
    if (pfd.revents & POLLOUT) {
      ssize_t w = send(fd, out + out_off, out_len - out_off, MSG_NOSIGNAL);
      if (w > 0)
        out_off += (size_t)w;
    }
    if (!(pfd.revents & (POLLIN | POLLHUP)))
      continue;
    do {
      code = read_response(fd, &r, buf, &off, &have, &id, msg, sizeof(msg));
      if (code < 0)
        die("pipelined: connection closed after %d answers", answered);
      answered++;
      if (code == 0)
        ok++;
      else {
        other++;
        if (!first_err[0])
          snprintf(first_err, sizeof(first_err), "code %d: %s", code, msg);
      }
    } while (have > 0 && answered < n);
  }
  printf("pipelined: %d calls, %d answered, %d OK, %d failed%s%s\n", n, answered, ok, other,
         other ? " - first: " : "", first_err);
  close(fd);
  free(out);
  free(buf);
  cshim_frame_reader_fini(&r);
  return ok == n ? 0 : 1;
}

static int
cmp_u64(const void *a, const void *b)
{
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return x < y ? -1 : x > y;
}

/* m State calls one at a time on a new connection, without any other client: the latency the
   machine itself allows right now (other load on it included), to read the figures with the
   hog against. Prints p50 and p99; returns the number of failed calls. */
static int
state_baseline(int m)
{
  int fd = dial(false), failed = 0;
  uint8_t *buf = cshim_xmalloc(65536);
  size_t off = 0, have = 0;
  uint64_t *lat = cshim_xmalloc(sizeof(uint64_t) * (size_t)m);
  cshim_frame_reader_t r;

  cshim_frame_reader_init(&r, 0);
  for (int i = 0; i < m; i++) {
    size_t len;
    uint8_t *f = state_frame(2 * (uint32_t)i + 1, &len);
    uint64_t t0 = now_ns();
    uint32_t id;

    if (send(fd, f, len, MSG_NOSIGNAL) != (ssize_t)len)
      die("baseline: send: %s", strerror(errno));
    if (read_response(fd, &r, buf, &off, &have, &id, NULL, 0) != 0)
      failed++;
    lat[i] = now_ns() - t0;
    free(f);
  }
  qsort(lat, (size_t)m, sizeof(*lat), cmp_u64);
  printf("never-reading: before the hog, State alone: %d calls, %d failed, p50 %.2f ms, p99 %.2f "
         "ms, max %.2f ms\n",
         m, failed, lat[m / 2] / 1e6, lat[(m * 99) / 100] / 1e6, lat[m - 1] / 1e6);
  close(fd);
  free(buf);
  free(lat);
  cshim_frame_reader_fini(&r);
  return failed;
}

/* One client sends n Kill(SIGWINCH) calls and never reads; another makes m State calls one at a
   time. The shim's fds and children are sampled throughout. */
static int
run_never_reading(int n, int m, int max_children, int max_fds)
{
  int base_fds = count_fds(shim_pid), base_children = count_children(shim_pid);
  int hog = dial(true), fd = dial(false);
  int peak_fds = base_fds, peak_children = base_children, failed = 0, limit_failed = 0;
  uint8_t *out = NULL, *buf = cshim_xmalloc(65536);
  size_t out_len = 0, out_off = 0, off = 0, have = 0;
  uint64_t *lat = cshim_xmalloc(sizeof(uint64_t) * (size_t)m);
  cshim_frame_reader_t r;
  int bad = state_baseline(m) ? 1 : 0;

  cshim_frame_reader_init(&r, 0);
  for (int i = 0; i < n; i++) {
    size_t len;
    uint8_t *f = kill_frame(2 * (uint32_t)i + 1, &len);
    out = cshim_xrealloc(out, out_len + len);
    memcpy(out + out_len, f, len);
    out_len += len;
    free(f);
  }
  /* The phase is a measurement, bounded in time as well (a sanitizer build is many times
     slower); what is asserted are counts. */
  uint64_t phase_end = now_ns() + 90ull * 1000000000ull, phase_start = now_ns();
  double cpu0 = cpu_ms(shim_pid);
  size_t frame_len;
  free(kill_frame(1, &frame_len));
  for (int i = 0; i < m; i++) {
    size_t len;
    uint8_t *f;

    if (i >= 20 && now_ns() > phase_end) {
      printf("never-reading: stopped after %d State calls (90 s)\n", i);
      m = i;
      break;
    }
    f = state_frame(2 * (uint32_t)i + 1, &len);
    uint64_t t0;
    uint32_t id;
    char msg[256];
    int code, c;

    /* Keep the hog's pipe full: it is read only as fast as its calls complete. */
    ssize_t w = out_off < out_len ? send(hog, out + out_off, out_len - out_off, MSG_NOSIGNAL) : 0;
    if (w > 0)
      out_off += (size_t)w;
    t0 = now_ns();
    if (send(fd, f, len, MSG_NOSIGNAL) != (ssize_t)len)
      die("never-reading: State call %d: send: %s", i, strerror(errno));
    code = read_response(fd, &r, buf, &off, &have, &id, msg, sizeof(msg));
    if (code < 0)
      die("never-reading: the shim closed the State client's connection at call %d", i);
    lat[i] = now_ns() - t0;
    free(f);
    if (code != 0) {
      if (failed++ == 0)
        printf("never-reading: first failed State (call %d): code %d: %s\n", i, code, msg);
      /* The codes the server's own limits would answer with: a correct call must never get
         them because of another client. */
      if (code == 8 || code == 14)
        limit_failed++;
    }
    c = count_fds(shim_pid);
    peak_fds = c > peak_fds ? c : peak_fds;
    c = count_children(shim_pid);
    peak_children = c > peak_children ? c : peak_children;
  }
  /* Then calls that need a runtime slot too, while the hog keeps its 8: with the slots shared
     between connections, each waits for one slot to come free, not behind the hog's queue. */
  enum
  {
    KILLS = 50
  };
  uint64_t klat[KILLS];
  int kfailed = 0;
  for (int i = 0; i < KILLS; i++) {
    size_t len;
    uint8_t *f = kill_frame(2 * (uint32_t)(m + i) + 1, &len);
    uint32_t id;
    char msg[256];
    int code;
    ssize_t w = out_off < out_len ? send(hog, out + out_off, out_len - out_off, MSG_NOSIGNAL) : 0;
    uint64_t t0;

    if (w > 0)
      out_off += (size_t)w;
    t0 = now_ns();
    if (send(fd, f, len, MSG_NOSIGNAL) != (ssize_t)len)
      die("never-reading: Kill call %d: send: %s", i, strerror(errno));
    code = read_response(fd, &r, buf, &off, &have, &id, msg, sizeof(msg));
    if (code < 0)
      die("never-reading: the shim closed the other client's connection at Kill %d", i);
    klat[i] = now_ns() - t0;
    free(f);
    if (code != 0 && kfailed++ == 0)
      printf("never-reading: first failed Kill (call %d): code %d: %s\n", i, code, msg);
  }
  qsort(klat, KILLS, sizeof(*klat), cmp_u64);
  printf("never-reading: other client's Kill beside the hog (a runtime slot each): %d calls, %d "
         "failed, p50 %.2f ms, p99 %.2f ms, max %.2f ms\n",
         KILLS, kfailed, klat[KILLS / 2] / 1e6, klat[(KILLS * 99) / 100] / 1e6,
         klat[KILLS - 1] / 1e6);
  if (kfailed)
    bad = 1;
  qsort(lat, (size_t)m, sizeof(*lat), cmp_u64);
  printf("never-reading: %zu of %zu bytes of Kill(SIGWINCH) calls taken by the shim from the hog; "
         "other "
         "client's State: %d calls, %d failed, p50 %.2f ms, p99 %.2f ms, max %.2f ms\n",
         out_off, out_len, m, failed, lat[m / 2] / 1e6, lat[(m * 99) / 100] / 1e6,
         lat[m - 1] / 1e6);
  printf("never-reading: shim fds %d -> peak %d (bound %d), children %d -> peak %d (bound %d)\n",
         base_fds, peak_fds, max_fds, base_children, peak_children, max_children);
  /* The shim's own CPU for the hog's runtime commands (its children's not included): less
     dependent on the machine's load than the latencies. */
  {
    double cpu = cpu_ms(shim_pid) - cpu0, secs = (now_ns() - phase_start) / 1e9;
    size_t taken = out_off / frame_len + KILLS;
    printf("never-reading: shim CPU %.0f ms in %.1f s for ~%zu runtime commands (%.0f us each); "
           "load average %.2f\n",
           cpu, secs, taken, taken ? cpu * 1000.0 / (double)taken : 0.0, load_average());
  }
  if (limit_failed)
    fprintf(stderr, "%d State calls were refused by the server's limits\n", limit_failed);
  if (failed)
    bad = 1;
  if (peak_fds > max_fds || peak_children > max_children)
    bad = 1;
  close(hog);
  close(fd);
  free(out);
  free(buf);
  free(lat);
  cshim_frame_reader_fini(&r);
  return bad;
}

/* conns clients each send a 4 MiB Request frame but the last KiB. The shim charges what it
   holds for its clients to its buffer budget, its own structures for them included, so its
   memory grows by at most the budget: the anonymous part by design; the whole RSS as well, the
   file pages included (code the shim dropped when it last went quiet, mapped again as it runs:
   shared, reclaimable, well under the room a refused frame leaves). */
static int
run_partial_frames(int conns, long budget_mib)
{
  struct rss before = rss_now(), idle, during;
  long after = -1;
  int *fds = cshim_xmalloc(sizeof(int) * (size_t)conns);
  size_t *sent = cshim_xmalloc0(sizeof(size_t) * (size_t)conns);
  const size_t total = CSHIM_FRAME_HEADER_SIZE + CSHIM_FRAME_MAX_DATA - 1024;
  uint8_t *frame = cshim_xmalloc0(total);
  cshim_frame_header_t h = {
      .length = CSHIM_FRAME_MAX_DATA, .stream_id = 1, .type = CSHIM_FRAME_REQUEST};
  uint64_t deadline = now_ns() + 120ull * 1000000000ull;
  size_t done = 0;
  int bad = 0;

  cshim_frame_header_encode(&h, frame);
  for (int i = 0; i < conns; i++)
    fds[i] = dial(true);
  usleep(200000); /* accepted (a figure only) */
  idle = rss_now();
  while (done < (size_t)conns) {
    done = 0;
    for (int i = 0; i < conns; i++) {
      if (sent[i] < total) {
        ssize_t w = send(fds[i], frame + sent[i], total - sent[i], MSG_NOSIGNAL);
        if (w > 0)
          sent[i] += (size_t)w;
        else if (w < 0 && errno != EAGAIN)
          die("partial frames: send: %s", strerror(errno));
      }
      done += sent[i] == total;
    }
    if (now_ns() > deadline)
      die("partial frames: the shim stopped reading (%zu of %d clients sent all)", done, conns);
  }
  /* Wait until the shim has read every byte (nothing left in our sockets). */
  for (;;) {
    int queued = 0, q;
    for (int i = 0; i < conns; i++)
      if (ioctl(fds[i], SIOCOUTQ, &q) == 0)
        queued += q;
    if (queued == 0)
      break;
    if (now_ns() > deadline)
      die("partial frames: %d bytes still unread by the shim", queued);
    usleep(10000);
  }
  during = rss_now();
  printf("partial frames: %d clients connected: shim RSS +%ld KiB (anon +%ld, file +%ld)\n", conns,
         idle.total - before.total, idle.anon - before.anon, idle.file - before.file);
  printf("partial frames: %d clients x %zu bytes sent; shim RSS %ld KiB -> %ld KiB (+%ld KiB: "
         "anon +%ld KiB, file +%ld KiB; budget %ld MiB = %ld KiB)\n",
         conns, total, before.total, during.total, during.total - before.total,
         during.anon - before.anon, during.file - before.file, budget_mib, budget_mib * 1024);
  /* budget 0: report only (a sanitizer's allocator keeps freed memory in quarantine and maps
     shadow pages, so RSS says nothing about the shim's buffers there). */
  if (budget_mib > 0 && during.anon - before.anon > budget_mib * 1024) {
    fprintf(stderr, "anonymous RSS grew by more than the budget\n");
    bad = 1;
  }
  if (budget_mib > 0 && during.total - before.total > budget_mib * 1024) {
    fprintf(stderr, "RSS grew by more than the budget\n");
    bad = 1;
  }
  for (int i = 0; i < conns; i++)
    close(fds[i]);
  /* Report (not assert) how memory comes back once the flood ends. */
  for (int t = 0; t <= 100; t++) {
    after = rss_kib(shim_pid);
    if (t % 20 == 0)
      printf("partial frames: %.1f s after the clients left: RSS %ld KiB\n", t / 10.0, after);
    usleep(100000);
  }
  free(fds);
  free(sent);
  free(frame);
  return bad;
}

/* n times: connect, park a Wait on the running container, go away. Parked calls of a closed
   connection are dropped, so the shim's memory and fds stay where they were. */
static int
run_park_and_leave(int n, long max_growth_kib)
{
  long before = -1, after;
  int fds_before = count_fds(shim_pid), fds_after;
  size_t len;
  uint8_t *f = wait_frame(1, &len);
  uint64_t t0 = now_ns();
  int bad = 0;

  /* The first few take the allocator's first pages: measured from after them. */
  for (int i = 0; i < n + 100; i++) {
    int fd = dial(false);
    if (i == 100) {
      usleep(300000);
      before = rss_kib(shim_pid);
    }
    if (send(fd, f, len, MSG_NOSIGNAL) != (ssize_t)len)
      die("park-and-leave: send: %s", strerror(errno));
    close(fd);
  }
  /* The shim has caught up once the connections are closed on its side too. */
  for (int t = 0; t < 600 && count_fds(shim_pid) > fds_before + 4; t++)
    usleep(100000);
  usleep(1000000); /* and memory was handed back once it went quiet */
  after = rss_kib(shim_pid);
  fds_after = count_fds(shim_pid);
  printf("park-and-leave: %d clients each parked a Wait and left in %.1f s; shim RSS %ld KiB -> "
         "%ld KiB (+%ld KiB, bound %ld KiB), fds %d -> %d\n",
         n, (now_ns() - t0) / 1e9, before, after, after - before, max_growth_kib, fds_before,
         fds_after);
  if (max_growth_kib > 0 && after - before > max_growth_kib) {
    fprintf(stderr, "RSS grew by more than the bound: parked calls of closed connections kept\n");
    bad = 1;
  }
  if (fds_after > fds_before + 4) {
    fprintf(stderr, "fds grew\n");
    bad = 1;
  }
  free(f);
  return bad;
}

/* Whether the shim has closed fd (EOF or reset), without waiting. */
static bool
closed_by_peer(int fd)
{
  uint8_t b;
  ssize_t n = recv(fd, &b, 1, MSG_DONTWAIT);

  return n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR);
}

/* One State call for `id` on a blocking connection; its status code. */
static int
state_call(int fd, cshim_frame_reader_t *r, uint8_t *buf, size_t *off, size_t *have,
           uint32_t stream, const char *id, char *msg, size_t msg_len)
{
  Containerd__Task__V2__StateRequest st = CONTAINERD__TASK__V2__STATE_REQUEST__INIT;
  size_t len;
  uint8_t *f;
  uint32_t got;
  int code;

  st.id = (char *)id;
  f = request_frame(stream, "State", &st.base, &len);
  if (send(fd, f, len, MSG_NOSIGNAL) != (ssize_t)len)
    die("stalled: send: %s", strerror(errno));
  free(f);
  code = read_response(fd, r, buf, off, have, &got, msg, msg_len);
  if (code < 0)
    die("stalled: the shim closed a client that did nothing wrong");
  return code;
}

/* A client sends the header of a 4 MiB frame and 1 MiB of it, then nothing: the shim (run with
   a 5 MiB budget and a short stalled_frame_timeout) must close that connection and give the
   half frame's share of the budget back, while another client is served throughout and an
   idle connection (no partial frame) is left alone. The budget is seen at work: a 2 MiB call
   is refused (ResourceExhausted) while the half frame is held, and taken once it is gone. */
static int
run_stalled(long timeout_ms)
{
  const size_t sent_len = CSHIM_FRAME_HEADER_SIZE + (1u << 20);
  cshim_frame_header_t h = {
      .length = CSHIM_FRAME_MAX_DATA, .stream_id = 1, .type = CSHIM_FRAME_REQUEST};
  uint8_t *half = cshim_xmalloc0(sent_len), *buf = cshim_xmalloc(65536);
  char *big_id = cshim_xmalloc(2u << 20), msg[512];
  int idle = dial(false), other = dial(false), stall = dial(false);
  size_t off = 0, have = 0, ioff = 0, ihave = 0;
  cshim_frame_reader_t r, ir;
  uint32_t stream = 1;
  uint64_t t0, closed_ns = 0, deadline;
  int calls = 0, failed = 0, code, bad = 0, q;
  long anon_before = status_kib(shim_pid, "RssAnon"), anon_held, anon_after;

  cshim_frame_reader_init(&r, 0);
  cshim_frame_reader_init(&ir, 0);
  memset(big_id, 'a', (2u << 20) - 1);
  big_id[(2u << 20) - 1] = '\0';
  cshim_frame_header_encode(&h, half);
  if (send(stall, half, sent_len, MSG_NOSIGNAL) != (ssize_t)sent_len)
    die("stalled: send the half frame: %s", strerror(errno));
  t0 = now_ns();
  deadline = t0 + 60ull * 1000000000ull;
  while (ioctl(stall, SIOCOUTQ, &q) == 0 && q > 0) {
    if (now_ns() > deadline)
      die("stalled: the shim did not read the half frame (%d bytes unread)", q);
    usleep(1000);
  }
  anon_held = status_kib(shim_pid, "RssAnon");

  /* While the half frame is held, a 2 MiB call does not fit the 5 MiB budget. */
  code = state_call(other, &r, buf, &off, &have, stream, big_id, msg, sizeof msg);
  stream += 2;
  printf("stalled: a 2 MiB call while 4 MiB are held for the half frame: code %d (%.60s)\n", code,
         msg);
  if (closed_by_peer(stall))
    printf("stalled: (the half frame's connection was already closed at that point)\n");
  else if (code != 8) {
    fprintf(stderr, "the half frame is not charged to the budget (want ResourceExhausted)\n");
    bad = 1;
  }

  /* The other client is served, one State at a time, until the stalled one is closed. */
  while (!closed_ns) {
    if (closed_by_peer(stall)) {
      closed_ns = now_ns();
      break;
    }
    if (now_ns() > deadline)
      die("stalled: the connection holding a half frame is still open after 60 s "
          "(stalled_frame_timeout %ld ms)",
          timeout_ms);
    code = state_call(other, &r, buf, &off, &have, stream, cid, msg, sizeof msg);
    stream += 2;
    calls++;
    if (code != 0 && failed++ == 0)
      printf("stalled: first failed State: code %d: %s\n", code, msg);
    usleep(20000);
  }
  usleep(200000); /* the close callback has freed the half frame */
  anon_after = status_kib(shim_pid, "RssAnon");

  /* The budget is back: the same 2 MiB call is taken now (and answered, not refused). */
  code = state_call(other, &r, buf, &off, &have, stream, big_id, msg, sizeof msg);
  stream += 2;
  printf("stalled: the same 2 MiB call after the close: code %d (%.60s)\n", code, msg);
  if (code == 8) {
    fprintf(stderr, "the half frame's budget was not given back\n");
    bad = 1;
  }
  /* The idle connection (nothing half-sent) was left open and is served. */
  if (closed_by_peer(idle) ||
      state_call(idle, &ir, buf, &ioff, &ihave, 1, cid, msg, sizeof msg) != 0) {
    fprintf(stderr, "the idle connection was not served after the stall\n");
    bad = 1;
  }
  printf("stalled: connection with 1 MiB of a 4 MiB frame closed %.2f s after its last bytes "
         "(stalled_frame_timeout %ld ms); other client: %d State calls, %d failed; idle "
         "connection kept; shim anon RSS %ld KiB -> %ld KiB held -> %ld KiB after the close\n",
         (closed_ns - t0) / 1e9, timeout_ms, calls, failed, anon_before, anon_held, anon_after);
  if (failed)
    bad = 1;
  close(stall);
  close(other);
  close(idle);
  free(half);
  free(buf);
  free(big_id);
  cshim_frame_reader_fini(&r);
  cshim_frame_reader_fini(&ir);
  return bad;
}

/* RSS now and every 2 s for 10 s (reported, not asserted: how memory comes back). */
static int
run_settle(void)
{
  for (int t = 0; t <= 10; t += 2) {
    printf("settle: %d s after the flood: shim RSS %ld KiB\n", t, rss_kib(shim_pid));
    if (t < 10)
      sleep(2);
  }
  return 0;
}

int
main(int argc, char **argv)
{
  if (argc < 6)
    die("usage: %s SOCKET NAMESPACE ID SHIM_PID pipelined N | never-reading N M MAX_CHILDREN "
        "MAX_FDS | partial-frames CONNS BUDGET_MIB | park-and-leave N MAX_GROWTH_KIB | settle | "
        "stalled TIMEOUT_MS",
        argv[0]);
  sock_path = argv[1];
  ns = argv[2];
  cid = argv[3];
  shim_pid = (pid_t)atoi(argv[4]);
  setvbuf(stdout, NULL, _IOLBF, 0);
  signal(SIGPIPE, SIG_IGN);
  if (strcmp(argv[5], "pipelined") == 0 && argc == 7) {
    uint64_t t0 = now_ns();
    int r = run_pipelined(atoi(argv[6]));
    printf("pipelined: took %.1f s\n", (now_ns() - t0) / 1e9);
    return r;
  }
  if (strcmp(argv[5], "never-reading") == 0 && argc == 10)
    return run_never_reading(atoi(argv[6]), atoi(argv[7]), atoi(argv[8]), atoi(argv[9]));
  if (strcmp(argv[5], "settle") == 0)
    return run_settle();
  if (strcmp(argv[5], "park-and-leave") == 0 && argc == 8)
    return run_park_and_leave(atoi(argv[6]), atol(argv[7]));
  if (strcmp(argv[5], "stalled") == 0 && argc == 7)
    return run_stalled(atol(argv[6]));
  if (strcmp(argv[5], "partial-frames") == 0 && argc == 8)
    return run_partial_frames(atoi(argv[6]), atol(argv[7]));
  die("unknown mode or wrong arguments");
}
