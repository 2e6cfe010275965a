// SPDX-License-Identifier: Apache-2.0
// A container's cgroup: where it lives (from /proc/<pid>/cgroup and mountinfo) and its resource
// usage read from the cgroup filesystem as io.containerd.cgroups.v1/v2 Metrics.
//
// Every file read here is a procfs or cgroupfs pseudo-file: the kernel formats it from in-memory
// counters when it is read, so a read never waits for a device or another process and costs
// about as much as the syscall itself (less than forking `runc events --stats`). That is why they
// are read synchronously on the loop.
#define _GNU_SOURCE
#include "cgroups.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <linux/magic.h>

#include <cshim/file.h>
#include <cshim/util.h>

#include "containerd/cgroups/v1/metrics.pb-c.h"
#include "containerd/cgroups/v2/metrics.pb-c.h"

#define CGROUP_ROOT "/sys/fs/cgroup"
/* Far above any cgroup file (a memory.stat is ~2 KiB, a blkio file a few KiB per device). */
#define MAX_FILE_SIZE (1024 * 1024)

/* ---- small readers ---- */

int
task_cgroup_read_file(const char *path, char **out, cshim_error_t *err)
{
  return cshim_file_read_small(path, MAX_FILE_SIZE, out, NULL, err);
}

/* The file's text, or NULL when it cannot be read (absent in this kernel or configuration). */
static char *
read_at(const char *dir, const char *name)
{
  cshim_autofree char *path = NULL;
  char *text = NULL;
  cshim_error_t err = NULL;

  if (dir == NULL)
    return NULL;
  cshim_xasprintf(&path, "%s/%s", dir, name);
  if (task_cgroup_read_file(path, &text, &err) < 0) {
    cshim_error_release(&err);
    return NULL;
  }
  return text;
}

static bool
parse_u64(const char *s, uint64_t *out)
{
  char *end;
  unsigned long long v;

  while (*s == ' ' || *s == '\t')
    s++;
  if (*s < '0' || *s > '9')
    return false;
  errno = 0;
  v = strtoull(s, &end, 10);
  if (errno != 0)
    return false;
  while (*end == ' ' || *end == '\t' || *end == '\n')
    end++;
  if (*end != '\0')
    return false;
  *out = (uint64_t)v;
  return true;
}

int
task_cgroup_kv(const char *text, const char *key, uint64_t *out)
{
  size_t klen = strlen(key);
  const char *line = text;

  while (line && *line) {
    const char *eol = strchr(line, '\n');
    size_t len = eol ? (size_t)(eol - line) : strlen(line);
    if (len > klen && strncmp(line, key, klen) == 0 && (line[klen] == ' ' || line[klen] == '\t')) {
      char num[32];
      size_t n = len - klen;
      if (n >= sizeof num)
        return -ERANGE;
      memcpy(num, line + klen, n);
      num[n] = '\0';
      return parse_u64(num, out) ? 0 : -EINVAL;
    }
    line = eol ? eol + 1 : NULL;
  }
  return -ENOENT;
}

/* Fill uint64 fields of msg from "key value" lines. The key is an array, not a pointer: the
   tables then need no relocation and stay in shared read-only pages (docs/benchmarks.md). */
struct kv_field
{
  char key[28];
  size_t offset;
};

static void
fill_kv(const char *text, void *msg, const struct kv_field *fields, size_t n)
{
  if (text == NULL)
    return;
  for (size_t i = 0; i < n; i++) {
    uint64_t v;
    if (task_cgroup_kv(text, fields[i].key, &v) == 0)
      *(uint64_t *)((char *)msg + fields[i].offset) = v;
  }
}

/* ---- where the cgroup is ---- */

/* mountinfo escapes space, tab, newline and backslash as \ooo. */
static char *
unescape_mount_path(const char *s, size_t n)
{
  char *out = cshim_xmalloc(n + 1), *o = out;
  for (size_t i = 0; i < n; i++) {
    if (s[i] == '\\' && i + 3 < n && s[i + 1] >= '0' && s[i + 1] <= '7' && s[i + 2] >= '0' &&
        s[i + 2] <= '7' && s[i + 3] >= '0' && s[i + 3] <= '7') {
      *o++ = (char)(((s[i + 1] - '0') << 6) | ((s[i + 2] - '0') << 3) | (s[i + 3] - '0'));
      i += 3;
    } else
      *o++ = s[i];
  }
  *o = '\0';
  return out;
}

struct mount_entry
{
  char *root;
  char *point;
  char *fstype;
  char *super_opts;
};

static void
mount_entry_clear(struct mount_entry *m)
{
  free(m->root);
  free(m->point);
  free(m->fstype);
  free(m->super_opts);
  memset(m, 0, sizeof *m);
}

/* One mountinfo line: "id parent maj:min root point options [optional...] - type source super". */
static bool
parse_mount_line(const char *line, size_t len, struct mount_entry *m)
{
  cshim_autofree char *copy = cshim_xstrndup(line, len);
  char *f[64];
  size_t n = 0, sep = 0;

  memset(m, 0, sizeof *m);
  for (char *save = NULL, *tok = strtok_r(copy, " ", &save); tok && n < CSHIM_N_ELEMENTS(f);
       tok = strtok_r(NULL, " ", &save))
    f[n++] = tok;
  for (size_t i = 6; i < n; i++)
    if (strcmp(f[i], "-") == 0) {
      sep = i;
      break;
    }
  if (sep == 0 || sep + 3 >= n)
    return false;
  m->root = unescape_mount_path(f[3], strlen(f[3]));
  m->point = unescape_mount_path(f[4], strlen(f[4]));
  m->fstype = cshim_xstrdup(f[sep + 1]);
  m->super_opts = cshim_xstrdup(f[sep + 3]);
  return true;
}

static bool
list_has(const char *list, const char *item)
{
  size_t n = strlen(item);
  const char *p = list;
  while (p && *p) {
    const char *comma = strchr(p, ',');
    size_t len = comma ? (size_t)(comma - p) : strlen(p);
    if (len == n && strncmp(p, item, n) == 0)
      return true;
    p = comma ? comma + 1 : NULL;
  }
  return false;
}

/* The first mount of fstype ("cgroup" with controller, or "cgroup2" with controller NULL). */
static bool
find_mount(const char *mountinfo, const char *fstype, const char *controller,
           struct mount_entry *out)
{
  const char *line = mountinfo;
  while (line && *line) {
    const char *eol = strchr(line, '\n');
    size_t len = eol ? (size_t)(eol - line) : strlen(line);
    struct mount_entry m;
    if (parse_mount_line(line, len, &m)) {
      if (strcmp(m.fstype, fstype) == 0 &&
          (controller == NULL || list_has(m.super_opts, controller))) {
        *out = m;
        return true;
      }
      mount_entry_clear(&m);
    }
    line = eol ? eol + 1 : NULL;
  }
  return false;
}

/* mount point + the cgroup path below the mount's root. */
static char *
join_mount(const struct mount_entry *m, const char *path)
{
  size_t rlen = strlen(m->root);
  const char *rel = path;
  char *out;

  if (strcmp(m->root, "/") != 0 && strncmp(path, m->root, rlen) == 0 &&
      (path[rlen] == '/' || path[rlen] == '\0'))
    rel = path + rlen;
  if (strcmp(rel, "/") == 0 || *rel == '\0')
    return cshim_xstrdup(m->point);
  cshim_xasprintf(&out, "%s%s%s", m->point, rel[0] == '/' ? "" : "/", rel);
  return out;
}

static const char *const v1_controllers[TASK_CGROUP_V1_COUNT] = {
    [TASK_CGROUP_MEMORY] = "memory",   [TASK_CGROUP_CPU] = "cpu",
    [TASK_CGROUP_CPUACCT] = "cpuacct", [TASK_CGROUP_PIDS] = "pids",
    [TASK_CGROUP_BLKIO] = "blkio",     [TASK_CGROUP_HUGETLB] = "hugetlb",
    [TASK_CGROUP_FREEZER] = "freezer",
};

int
task_cgroup_parse(const char *proc_cgroup, const char *mountinfo, bool unified, task_cgroup_t **out,
                  cshim_error_t *err)
{
  task_cgroup_t *cg = cshim_xmalloc0(sizeof *cg);
  const char *line = proc_cgroup;
  size_t found = 0;

  cg->unified = unified;
  cg->partitions = cshim_xstrdup("/proc/partitions");
  while (line && *line) {
    const char *eol = strchr(line, '\n');
    size_t len = eol ? (size_t)(eol - line) : strlen(line);
    cshim_autofree char *copy = cshim_xstrndup(line, len);
    char *c1 = strchr(copy, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
    line = eol ? eol + 1 : NULL;
    if (c2 == NULL)
      continue;
    *c1 = *c2 = '\0';
    const char *controllers = c1 + 1, *path = c2 + 1;
    if (unified) {
      struct mount_entry m;
      if (strcmp(copy, "0") != 0 || *controllers != '\0')
        continue;
      if (!find_mount(mountinfo, "cgroup2", NULL, &m))
        break;
      cg->dir = join_mount(&m, path);
      mount_entry_clear(&m);
      found++;
      break;
    }
    for (int i = 0; i < TASK_CGROUP_V1_COUNT; i++) {
      struct mount_entry m;
      if (cg->v1[i] || !list_has(controllers, v1_controllers[i]))
        continue;
      if (!find_mount(mountinfo, "cgroup", v1_controllers[i], &m))
        continue;
      cg->v1[i] = join_mount(&m, path);
      mount_entry_clear(&m);
      found++;
    }
  }
  if (found == 0) {
    task_cgroup_free(cg);
    return cshim_error_make(err, ENOENT, "no %s cgroup found", unified ? "v2" : "v1");
  }
  *out = cg;
  return 0;
}

int
task_cgroup_load(pid_t pid, task_cgroup_t **out, cshim_error_t *err)
{
  cshim_autofree char *path = NULL;
  cshim_autofree char *proc_cgroup = NULL;
  cshim_autofree char *mountinfo = NULL;
  struct statfs sfs;
  int ret;

  cshim_xasprintf(&path, "/proc/%d/cgroup", (int)pid);
  ret = task_cgroup_read_file(path, &proc_cgroup, err);
  if (ret < 0)
    return ret;
  ret = task_cgroup_read_file("/proc/self/mountinfo", &mountinfo, err);
  if (ret < 0)
    return ret;
  if (statfs(CGROUP_ROOT, &sfs) < 0)
    return cshim_error_sys(err, errno, "statfs `%s`", CGROUP_ROOT);
  /* Hybrid hosts (tmpfs with v1 hierarchies plus a controller-less cgroup2) count as v1: the
     controllers, memory included, live in the v1 hierarchies. */
  return task_cgroup_parse(proc_cgroup, mountinfo, sfs.f_type == CGROUP2_SUPER_MAGIC, out, err);
}

void
task_cgroup_free(task_cgroup_t *cg)
{
  if (cg == NULL)
    return;
  free(cg->dir);
  for (int i = 0; i < TASK_CGROUP_V1_COUNT; i++)
    free(cg->v1[i]);
  free(cg->partitions);
  if (cg->freezer_fd_open)
    close(cg->freezer_fd);
  task_cgroup_close_files(cg);
  free(cg->files);
  for (size_t i = 0; i < cg->n_hugetlb_sizes; i++)
    free(cg->hugetlb_sizes[i]);
  free(cg->hugetlb_sizes);
  free(cg);
}

const char *
task_cgroup_memory_dir(const task_cgroup_t *cg)
{
  return cg->unified ? cg->dir : cg->v1[TASK_CGROUP_MEMORY];
}

/* ---- freezer and processes ---- */

/* The first word of the freezer file `dir`/`name`, into buf: the file stays open in cg and is
   read again from offset 0 (cgroupfs renders it anew on every read from the start). */
static int
read_freezer_word(task_cgroup_t *cg, const char *dir, const char *name, char *buf, size_t cap,
                  cshim_error_t *err)
{
  struct statfs sfs;
  ssize_t n;

  if (!cg->freezer_fd_open) {
    cshim_autofree char *path = NULL;
    cshim_xasprintf(&path, "%s/%s", dir, name);
    cg->freezer_fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (cg->freezer_fd < 0)
      return cshim_error_sys(err, errno, "open `%s`", path);
    cg->freezer_fd_open = true;
    cg->freezer_on_cgroupfs =
        fstatfs(cg->freezer_fd, &sfs) == 0 &&
        (sfs.f_type == CGROUP_SUPER_MAGIC || sfs.f_type == CGROUP2_SUPER_MAGIC);
  }
  /* A removed cgroup's open files fail with ENODEV (kernfs): one pread tells (their st_nlink
     stays 1). Elsewhere (a copy of the files, as the unit tests use) a removed file still
     reads: fstat tells. */
  n = CSHIM_RETRY_EINTR(pread(cg->freezer_fd, buf, cap - 1, 0));
  if (n >= 0 && !cg->freezer_on_cgroupfs) {
    struct stat st;
    if (fstat(cg->freezer_fd, &st) < 0 || st.st_nlink == 0) {
      n = -1;
      errno = ENOENT;
    }
  }
  if (n < 0) {
    int e = errno;
    /* Gone, or broken: open it again next time. */
    close(cg->freezer_fd);
    cg->freezer_fd_open = false;
    return cshim_error_sys(err, e, "read `%s/%s`", dir, name);
  }
  buf[n] = '\0';
  buf[strcspn(buf, " \t\n")] = '\0';
  return 0;
}

int
task_cgroup_freezer_state(task_cgroup_t *cg, task_freezer_t *out, cshim_error_t *err)
{
  char state[64];

  if (cg->unified) {
    cshim_autofree char *events = NULL;
    uint64_t frozen = 0;

    if (cg->dir == NULL)
      return cshim_error_make(err, ENOENT, "no cgroup v2 directory");
    /* cgroup.freeze is absent before Linux 5.2: no freezer, the container cannot be paused. */
    if (read_freezer_word(cg, cg->dir, "cgroup.freeze", state, sizeof state, err) < 0)
      return (*err)->status;
    if (strcmp(state, "1") != 0) {
      *out = TASK_FREEZER_THAWED;
      return 0;
    }
    events = read_at(cg->dir, "cgroup.events");
    *out = events && task_cgroup_kv(events, "frozen", &frozen) == 0 && frozen == 1
               ? TASK_FREEZER_FROZEN
               : TASK_FREEZER_FREEZING;
    return 0;
  }
  if (cg->v1[TASK_CGROUP_FREEZER] == NULL)
    return cshim_error_make(err, ENOENT, "no v1 freezer hierarchy");
  if (read_freezer_word(cg, cg->v1[TASK_CGROUP_FREEZER], "freezer.state", state, sizeof state,
                        err) < 0)
    return (*err)->status;
  if (strcmp(state, "FROZEN") == 0)
    *out = TASK_FREEZER_FROZEN;
  else if (strcmp(state, "FREEZING") == 0)
    *out = TASK_FREEZER_FREEZING;
  else if (strcmp(state, "THAWED") == 0)
    *out = TASK_FREEZER_THAWED;
  else
    return cshim_error_make(err, EIO, "`%s/freezer.state` says `%s`", cg->v1[TASK_CGROUP_FREEZER],
                            state);
  return 0;
}

/* Deeper cgroups than this are not listed (a container nests a few levels at most). */
#define PIDS_MAX_DEPTH 32

struct pid_list
{
  pid_t *v;
  size_t n, cap;
};

static int
collect_pids(const char *dir, int depth, struct pid_list *l, cshim_error_t *err)
{
  cshim_autofree char *procs = NULL;
  DIR *d;
  struct dirent *e;
  int ret = 0;

  procs = read_at(dir, "cgroup.procs");
  if (procs == NULL) {
    /* Gone at the top: the container's cgroup no longer exists. Below it: a child cgroup
       removed while we walked, nothing to list. */
    if (depth == 0)
      return cshim_error_make(err, ENOENT, "cgroup `%s` does not exist: not found", dir);
    return 0;
  }
  for (char *line = procs, *next; *line; line = next) {
    char *end;
    long v;
    next = line + strcspn(line, "\n");
    if (*next)
      *next++ = '\0';
    v = strtol(line, &end, 10);
    if (end == line || *end != '\0' || v <= 0 || v > INT32_MAX)
      continue;
    if (l->n == l->cap) {
      l->cap = l->cap ? l->cap * 2 : 16;
      l->v = cshim_xrealloc(l->v, l->cap * sizeof *l->v);
    }
    l->v[l->n++] = (pid_t)v;
  }
  if (depth >= PIDS_MAX_DEPTH)
    return 0;
  d = opendir(dir);
  if (d == NULL)
    return 0;
  while (ret == 0 && (e = readdir(d)) != NULL) {
    cshim_autofree char *sub = NULL;
    if (e->d_type != DT_DIR || e->d_name[0] == '.')
      continue;
    cshim_xasprintf(&sub, "%s/%s", dir, e->d_name);
    ret = collect_pids(sub, depth + 1, l, err);
  }
  closedir(d);
  return ret;
}

int
task_cgroup_pids(const task_cgroup_t *cg, pid_t **pids, size_t *n, cshim_error_t *err)
{
  /* In v1 every hierarchy holds the same processes: take the first the container has. */
  static const int order[] = {TASK_CGROUP_PIDS,    TASK_CGROUP_MEMORY, TASK_CGROUP_FREEZER,
                              TASK_CGROUP_CPUACCT, TASK_CGROUP_CPU,    TASK_CGROUP_BLKIO,
                              TASK_CGROUP_HUGETLB};
  struct pid_list l = {0};
  const char *dir = NULL;
  int ret;

  if (cg->unified)
    dir = cg->dir;
  else
    for (size_t i = 0; dir == NULL && i < CSHIM_N_ELEMENTS(order); i++)
      dir = cg->v1[order[i]];
  if (dir == NULL)
    return cshim_error_make(err, ENOENT, "no cgroup to list processes from");
  ret = collect_pids(dir, 0, &l, err);
  if (ret < 0) {
    free(l.v);
    return ret;
  }
  *pids = l.v;
  *n = l.n;
  return 0;
}

/* ---- building the metrics: everything comes from one arena, freed at once ---- */

struct arena
{
  void **ptrs;
  size_t n, cap;
  task_cgroup_t *cg; /* whose files are kept open (cg->files) */
  bool gone;         /* a kept file said ENODEV: the cgroup was removed */
};

static void *
arena_take(struct arena *a, void *p)
{
  if (a->n == a->cap) {
    a->cap = a->cap ? a->cap * 2 : 64;
    a->ptrs = cshim_xrealloc(a->ptrs, a->cap * sizeof *a->ptrs);
  }
  a->ptrs[a->n++] = p;
  return p;
}

static void *
arena_alloc(struct arena *a, size_t size)
{
  return arena_take(a, cshim_xmalloc0(size));
}

static char *
arena_strdup(struct arena *a, const char *s)
{
  return arena_take(a, cshim_xstrdup(s));
}

static void
arena_free(struct arena *a)
{
  for (size_t i = 0; i < a->n; i++)
    free(a->ptrs[i]);
  free(a->ptrs);
  memset(a, 0, sizeof *a);
}

/* ---- the cgroup's files, kept open between Stats calls ----

   Stats reads ~15 (v2) to ~30 (v1) files. Each is opened once, at the first Stats that reads
   it, and read again from offset 0 with one pread (cgroupfs and procfs render the text anew on
   every read from the start): one system call per file instead of a path walk, open, read, read
   and close. A file the kernel does not have (no swap accounting, no CFQ, no rdma) is
   remembered as absent and looked for again after TASK_CGROUP_ABSENT_RETRY_S. When the cgroup is
   removed its open files fail with ENODEV: all are closed, and the call answers NotFound as
   before. Bounded: at most TASK_CGROUP_MAX_FILES per cgroup and kept_budget() in the whole shim
   (then the file is opened, read and closed as before); all close with the container, and none
   survives an exec (O_CLOEXEC: a live upgrade or crash restart opens them again at the next
   Stats). */

/* How many descriptors the kept files of all containers may hold: a quarter of the soft
   RLIMIT_NOFILE, at most 1024 (a v1 container keeps ~30, a v2 one ~15). */
static size_t kept_open;
static size_t
kept_budget(void)
{
  static size_t budget;
  if (budget == 0) {
    struct rlimit rl;
    budget = 1024;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY &&
        rl.rlim_cur / 4 < budget)
      budget = rl.rlim_cur / 4 > 0 ? (size_t)(rl.rlim_cur / 4) : 1;
  }
  return budget;
}

size_t
task_cgroup_kept_files(void)
{
  return kept_open;
}

static int64_t
monotonic_s(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec;
}

void
task_cgroup_close_files(task_cgroup_t *cg)
{
  for (size_t i = 0; i < cg->n_files; i++) {
    if (cg->files[i].fd >= 0) {
      close(cg->files[i].fd);
      kept_open--;
    }
    free(cg->files[i].name);
  }
  cg->n_files = 0;
}

/* The whole text behind fd (from offset 0), malloc'ed; NULL with errno on failure. A read that
   leaves more than a line's room free in the buffer was the end (cgroupfs and procfs hand out
   whole records), so a small file takes one pread. */
static char *
pread_all(int fd)
{
  size_t off = 0, cap = 4096;
  char *buf = cshim_xmalloc(cap);

  for (;;) {
    ssize_t n = CSHIM_RETRY_EINTR(pread(fd, buf + off, cap - off - 1, (off_t)off));
    if (n < 0) {
      int e = errno;
      free(buf);
      errno = e;
      return NULL;
    }
    off += (size_t)n;
    if (n == 0 || cap - off - 1 > 256)
      break;
    if (cap >= MAX_FILE_SIZE) {
      free(buf);
      errno = EFBIG;
      return NULL;
    }
    cap *= 2;
    buf = cshim_xrealloc(buf, cap);
  }
  buf[off] = '\0';
  return buf;
}

/* dir/name's text (dir itself when name is ""), or NULL when it cannot be read. */
static char *
stat_read(struct arena *a, const char *dir, const char *name)
{
  task_cgroup_t *cg = a->cg;
  struct task_cgroup_file *f = NULL;
  cshim_autofree char *path = NULL;
  char *text;
  int64_t now;

  if (dir == NULL || a->gone)
    return NULL;
  for (size_t i = 0; i < cg->n_files; i++)
    if (cg->files[i].dir == dir && strcmp(cg->files[i].name, name) == 0) {
      f = &cg->files[i];
      break;
    }
  if (f && f->fd < 0) {
    now = monotonic_s();
    if (now - f->absent_since_s < TASK_CGROUP_ABSENT_RETRY_S)
      return NULL;
    f->absent_since_s = now; /* look again, once */
  }
  if (f && f->fd >= 0) {
    text = pread_all(f->fd);
    if (text == NULL && errno == ENODEV)
      a->gone = true;
    return text;
  }
  if (*name)
    cshim_xasprintf(&path, "%s/%s", dir, name);
  else
    path = cshim_xstrdup(dir);
  if (f == NULL && cg->n_files < TASK_CGROUP_MAX_FILES && kept_open < kept_budget()) {
    if (cg->n_files == cg->cap_files) {
      /* grown as files are met: ~30 on v1, ~15 on v2 (24 bytes each) */
      cg->cap_files = cg->cap_files ? cg->cap_files * 2 : 16;
      if (cg->cap_files > TASK_CGROUP_MAX_FILES)
        cg->cap_files = TASK_CGROUP_MAX_FILES;
      cg->files = cshim_xrealloc(cg->files, cg->cap_files * sizeof *cg->files);
    }
    f = &cg->files[cg->n_files++];
    f->dir = dir;
    f->name = cshim_xstrdup(name);
    f->fd = -1;
    f->absent_since_s = monotonic_s();
  }
  if (f == NULL) {
    /* over the bounds: read it the old way */
    cshim_error_t err = NULL;
    text = NULL;
    if (task_cgroup_read_file(path, &text, &err) < 0)
      cshim_error_release(&err);
    return text;
  }
  f->fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (f->fd < 0)
    return NULL;
  kept_open++;
  return pread_all(f->fd);
}

/* A single-value file; "max" reads as max_value. Absent or unparsable: false, *out untouched. */
static bool
stat_u64(struct arena *a, const char *dir, const char *name, uint64_t max_value, uint64_t *out)
{
  cshim_autofree char *text = stat_read(a, dir, name);
  char *p;

  if (text == NULL)
    return false;
  p = text + strspn(text, " \t");
  if (strncmp(p, "max", 3) == 0 && (p[3] == '\0' || p[3] == '\n' || p[3] == ' ')) {
    *out = max_value;
    return true;
  }
  return parse_u64(p, out);
}

/* Append p to a repeated field (array of pointers grown in the arena). */
static void
append_ptr(struct arena *a, void ***arr, size_t *n, void *p)
{
  void **grown = arena_alloc(a, (*n + 1) * sizeof *grown);
  if (*n)
    memcpy(grown, *arr, *n * sizeof *grown);
  grown[(*n)++] = p;
  *arr = grown;
}

/* ---- cgroup v1 ---- */

typedef Io__Containerd__Cgroups__V1__BlkIOEntry v1_blkio_entry_t;
typedef Io__Containerd__Cgroups__V1__BlkIOStat v1_blkio_stat_t;
typedef Io__Containerd__Cgroups__V1__CPUStat v1_cpu_stat_t;
typedef Io__Containerd__Cgroups__V1__HugetlbStat v1_hugetlb_stat_t;
typedef Io__Containerd__Cgroups__V1__MemoryEntry v1_memory_entry_t;
typedef Io__Containerd__Cgroups__V1__MemoryOomControl v1_oom_control_t;
typedef Io__Containerd__Cgroups__V1__MemoryStat v1_memory_stat_t;
typedef Io__Containerd__Cgroups__V1__Metrics v1_metrics_t;
typedef Io__Containerd__Cgroups__V1__PidsStat v1_pids_stat_t;

static const struct kv_field v1_memory_stat[] = {
    {"cache", offsetof(v1_memory_stat_t, cache)},
    {"rss", offsetof(v1_memory_stat_t, rss)},
    {"rss_huge", offsetof(v1_memory_stat_t, rss_huge)},
    {"mapped_file", offsetof(v1_memory_stat_t, mapped_file)},
    {"dirty", offsetof(v1_memory_stat_t, dirty)},
    {"writeback", offsetof(v1_memory_stat_t, writeback)},
    {"pgpgin", offsetof(v1_memory_stat_t, pg_pg_in)},
    {"pgpgout", offsetof(v1_memory_stat_t, pg_pg_out)},
    {"pgfault", offsetof(v1_memory_stat_t, pg_fault)},
    {"pgmajfault", offsetof(v1_memory_stat_t, pg_maj_fault)},
    {"inactive_anon", offsetof(v1_memory_stat_t, inactive_anon)},
    {"active_anon", offsetof(v1_memory_stat_t, active_anon)},
    {"inactive_file", offsetof(v1_memory_stat_t, inactive_file)},
    {"active_file", offsetof(v1_memory_stat_t, active_file)},
    {"unevictable", offsetof(v1_memory_stat_t, unevictable)},
    {"hierarchical_memory_limit", offsetof(v1_memory_stat_t, hierarchical_memory_limit)},
    {"hierarchical_memsw_limit", offsetof(v1_memory_stat_t, hierarchical_swap_limit)},
    {"total_cache", offsetof(v1_memory_stat_t, total_cache)},
    {"total_rss", offsetof(v1_memory_stat_t, total_rss)},
    {"total_rss_huge", offsetof(v1_memory_stat_t, total_rss_huge)},
    {"total_mapped_file", offsetof(v1_memory_stat_t, total_mapped_file)},
    {"total_dirty", offsetof(v1_memory_stat_t, total_dirty)},
    {"total_writeback", offsetof(v1_memory_stat_t, total_writeback)},
    {"total_pgpgin", offsetof(v1_memory_stat_t, total_pg_pg_in)},
    {"total_pgpgout", offsetof(v1_memory_stat_t, total_pg_pg_out)},
    {"total_pgfault", offsetof(v1_memory_stat_t, total_pg_fault)},
    {"total_pgmajfault", offsetof(v1_memory_stat_t, total_pg_maj_fault)},
    {"total_inactive_anon", offsetof(v1_memory_stat_t, total_inactive_anon)},
    {"total_active_anon", offsetof(v1_memory_stat_t, total_active_anon)},
    {"total_inactive_file", offsetof(v1_memory_stat_t, total_inactive_file)},
    {"total_active_file", offsetof(v1_memory_stat_t, total_active_file)},
    {"total_unevictable", offsetof(v1_memory_stat_t, total_unevictable)},
};

static v1_memory_entry_t *
read_memory_entry(struct arena *a, const char *dir, const char *prefix)
{
  v1_memory_entry_t *e = arena_alloc(a, sizeof *e);
  char name[64];

  io__containerd__cgroups__v1__memory_entry__init(e);
  snprintf(name, sizeof name, "%susage_in_bytes", prefix);
  stat_u64(a, dir, name, UINT64_MAX, &e->usage);
  snprintf(name, sizeof name, "%smax_usage_in_bytes", prefix);
  stat_u64(a, dir, name, UINT64_MAX, &e->max);
  snprintf(name, sizeof name, "%sfailcnt", prefix);
  stat_u64(a, dir, name, UINT64_MAX, &e->failcnt);
  snprintf(name, sizeof name, "%slimit_in_bytes", prefix);
  stat_u64(a, dir, name, UINT64_MAX, &e->limit);
  return e;
}

static void
v1_memory(struct arena *a, const char *dir, v1_metrics_t *m)
{
  cshim_autofree char *stat = stat_read(a, dir, "memory.stat");
  cshim_autofree char *oom = NULL;
  v1_memory_stat_t *mem;

  if (stat == NULL)
    return;
  mem = arena_alloc(a, sizeof *mem);
  io__containerd__cgroups__v1__memory_stat__init(mem);
  fill_kv(stat, mem, v1_memory_stat, CSHIM_N_ELEMENTS(v1_memory_stat));
  /* ctr and other clients dereference these four: always present. */
  mem->usage = read_memory_entry(a, dir, "memory.");
  mem->swap = read_memory_entry(a, dir, "memory.memsw.");
  mem->kernel = read_memory_entry(a, dir, "memory.kmem.");
  mem->kernel_tcp = read_memory_entry(a, dir, "memory.kmem.tcp.");
  m->memory = mem;

  oom = stat_read(a, dir, "memory.oom_control");
  if (oom) {
    v1_oom_control_t *o = arena_alloc(a, sizeof *o);
    io__containerd__cgroups__v1__memory_oom_control__init(o);
    task_cgroup_kv(oom, "oom_kill_disable", &o->oom_kill_disable);
    task_cgroup_kv(oom, "under_oom", &o->under_oom);
    task_cgroup_kv(oom, "oom_kill", &o->oom_kill);
    m->memory_oom_control = o;
  }
}

static void
v1_cpu(struct arena *a, const char *cpuacct, const char *cpu, v1_metrics_t *m)
{
  cshim_autofree char *percpu = stat_read(a, cpuacct, "cpuacct.usage_percpu");
  cshim_autofree char *stat = stat_read(a, cpuacct, "cpuacct.stat");
  cshim_autofree char *throttle = stat_read(a, cpu, "cpu.stat");
  v1_cpu_stat_t *c;
  long ticks = sysconf(_SC_CLK_TCK);

  if (cpuacct == NULL && cpu == NULL)
    return;
  if (ticks <= 0)
    ticks = 100;
  c = arena_alloc(a, sizeof *c);
  io__containerd__cgroups__v1__cpustat__init(c);
  c->usage = arena_alloc(a, sizeof *c->usage);
  io__containerd__cgroups__v1__cpuusage__init(c->usage);
  c->throttling = arena_alloc(a, sizeof *c->throttling);
  io__containerd__cgroups__v1__throttle__init(c->throttling);

  stat_u64(a, cpuacct, "cpuacct.usage", UINT64_MAX, &c->usage->total);
  if (stat) {
    uint64_t user = 0, system = 0;
    task_cgroup_kv(stat, "user", &user);
    task_cgroup_kv(stat, "system", &system);
    /* cpuacct.stat counts USER_HZ ticks; the message wants nanoseconds */
    c->usage->user = user * (1000000000ull / (uint64_t)ticks);
    c->usage->kernel = system * (1000000000ull / (uint64_t)ticks);
  }
  if (percpu) {
    size_t n = 0, cap = 0;
    for (char *save = NULL, *tok = strtok_r(percpu, " \t\n", &save); tok;
         tok = strtok_r(NULL, " \t\n", &save)) {
      uint64_t v;
      if (!parse_u64(tok, &v))
        continue;
      if (n == cap) {
        uint64_t *grown = arena_alloc(a, (cap = cap ? cap * 2 : 16) * sizeof *grown);
        if (n)
          memcpy(grown, c->usage->per_cpu, n * sizeof *grown);
        c->usage->per_cpu = grown;
      }
      c->usage->per_cpu[n++] = v;
    }
    c->usage->n_per_cpu = n;
  }
  if (throttle) {
    task_cgroup_kv(throttle, "nr_periods", &c->throttling->periods);
    task_cgroup_kv(throttle, "nr_throttled", &c->throttling->throttled_periods);
    task_cgroup_kv(throttle, "throttled_time", &c->throttling->throttled_time);
  }
  m->cpu = c;
}

static void
v1_pids(struct arena *a, const char *dir, v1_metrics_t *m)
{
  v1_pids_stat_t *p;
  uint64_t current;

  if (!stat_u64(a, dir, "pids.current", UINT64_MAX, &current))
    return;
  p = arena_alloc(a, sizeof *p);
  io__containerd__cgroups__v1__pids_stat__init(p);
  p->current = current;
  stat_u64(a, dir, "pids.max", 0, &p->limit); /* v1 reports "max" as no limit: 0 */
  m->pids = p;
}

/* major:minor -> "/dev/<name>" from /proc/partitions (two header lines, then
   "major minor #blocks name"). */
static const char *
device_name(struct arena *a, const char *partitions, uint64_t major, uint64_t minor)
{
  const char *line = partitions;
  while (line && *line) {
    const char *eol = strchr(line, '\n');
    unsigned long long ma, mi, blocks;
    char name[256];
    if (sscanf(line, "%llu %llu %llu %255s", &ma, &mi, &blocks, name) == 4 && ma == major &&
        mi == minor) {
      char *dev;
      cshim_xasprintf(&dev, "/dev/%s", name);
      return arena_take(a, dev);
    }
    line = eol ? eol + 1 : NULL;
  }
  return NULL;
}

/* Lines "major:minor [op] value"; "Total n" lines are skipped. Returns the number of entries. */
static size_t
v1_blkio_entries(struct arena *a, const char *dir, const char *name, const char *partitions,
                 v1_blkio_entry_t ***arr, size_t *n)
{
  cshim_autofree char *text = stat_read(a, dir, name);
  size_t added = 0;

  if (text == NULL)
    return 0;
  for (char *save = NULL, *line = strtok_r(text, "\n", &save); line;
       line = strtok_r(NULL, "\n", &save)) {
    char f[4][64];
    unsigned long long major, minor;
    uint64_t v;
    int nf = sscanf(line, "%63s %63s %63s", f[0], f[1], f[2]);
    v1_blkio_entry_t *e;
    const char *op = "", *value;
    const char *dev;

    if (nf < 2 || sscanf(f[0], "%llu:%llu", &major, &minor) != 2)
      continue;
    if (nf == 3) {
      op = f[1];
      value = f[2];
    } else
      value = f[1];
    if (!parse_u64(value, &v))
      continue;
    e = arena_alloc(a, sizeof *e);
    io__containerd__cgroups__v1__blk_ioentry__init(e);
    e->op = arena_strdup(a, op);
    dev = device_name(a, partitions, major, minor);
    e->device = dev ? (char *)dev : arena_strdup(a, "");
    e->major = major;
    e->minor = minor;
    e->value = v;
    append_ptr(a, (void ***)arr, n, e);
    added++;
  }
  return added;
}

static void
v1_blkio(struct arena *a, const char *dir, const char *partitions_path, v1_metrics_t *m)
{
  cshim_autofree char *partitions = NULL;
  v1_blkio_stat_t *b;
  size_t total = 0;
  cshim_autofree char *probe = NULL;

  if (dir == NULL)
    return;
  partitions = stat_read(a, partitions_path, "");
  b = arena_alloc(a, sizeof *b);
  io__containerd__cgroups__v1__blk_iostat__init(b);
  m->blkio = b;

  /* The CFQ/BFQ files first; when they are missing or empty, the throttle counters. */
  probe = stat_read(a, dir, "blkio.io_serviced_recursive");
  if (probe) {
    struct
    {
      const char *file;
      v1_blkio_entry_t ***arr;
      size_t *n;
    } files[] = {
        {"blkio.sectors_recursive", &b->sectors_recursive, &b->n_sectors_recursive},
        {"blkio.io_service_bytes_recursive", &b->io_service_bytes_recursive,
         &b->n_io_service_bytes_recursive},
        {"blkio.io_serviced_recursive", &b->io_serviced_recursive, &b->n_io_serviced_recursive},
        {"blkio.io_queued_recursive", &b->io_queued_recursive, &b->n_io_queued_recursive},
        {"blkio.io_service_time_recursive", &b->io_service_time_recursive,
         &b->n_io_service_time_recursive},
        {"blkio.io_wait_time_recursive", &b->io_wait_time_recursive, &b->n_io_wait_time_recursive},
        {"blkio.io_merged_recursive", &b->io_merged_recursive, &b->n_io_merged_recursive},
        {"blkio.time_recursive", &b->io_time_recursive, &b->n_io_time_recursive},
    };
    for (size_t i = 0; i < CSHIM_N_ELEMENTS(files); i++)
      total += v1_blkio_entries(a, dir, files[i].file, partitions, files[i].arr, files[i].n);
  }
  if (total > 0)
    return;
  v1_blkio_entries(a, dir, "blkio.throttle.io_serviced", partitions, &b->io_serviced_recursive,
                   &b->n_io_serviced_recursive);
  v1_blkio_entries(a, dir, "blkio.throttle.io_service_bytes", partitions,
                   &b->io_service_bytes_recursive, &b->n_io_service_bytes_recursive);
}

/* Page sizes that have a hugetlb.<size>.<suffix> file in dir, in directory order: listed at
   the first Stats and kept in cg (the kernel's huge page sizes do not change while it runs). */
static size_t
hugetlb_sizes(struct arena *a, const char *dir, const char *suffix, char ***out)
{
  task_cgroup_t *cg = a->cg;
  DIR *d;
  struct dirent *de;
  size_t n = 0, slen = strlen(suffix);
  char **sizes = NULL;

  *out = cg->hugetlb_sizes;
  if (cg->hugetlb_listed || dir == NULL)
    return cg->n_hugetlb_sizes;
  if ((d = opendir(dir)) == NULL)
    return 0;
  while ((de = readdir(d)) != NULL) {
    const char *name = de->d_name, *dot;
    size_t len = strlen(name);
    if (strncmp(name, "hugetlb.", 8) != 0 || len <= 8 + slen + 1 ||
        strcmp(name + len - slen, suffix) != 0 || name[len - slen - 1] != '.')
      continue;
    dot = name + 8;
    sizes = cshim_xrealloc(sizes, (n + 1) * sizeof *sizes);
    sizes[n++] = cshim_xstrndup(dot, len - 8 - slen - 1);
  }
  closedir(d);
  cg->hugetlb_sizes = sizes;
  cg->n_hugetlb_sizes = n;
  cg->hugetlb_listed = true;
  *out = sizes;
  return n;
}

static void
v1_hugetlb(struct arena *a, const char *dir, v1_metrics_t *m)
{
  char **sizes;
  size_t n = hugetlb_sizes(a, dir, "usage_in_bytes", &sizes);

  for (size_t i = 0; i < n; i++) {
    v1_hugetlb_stat_t *h = arena_alloc(a, sizeof *h);
    char name[128];
    io__containerd__cgroups__v1__hugetlb_stat__init(h);
    h->pagesize = arena_strdup(a, sizes[i]);
    snprintf(name, sizeof name, "hugetlb.%s.usage_in_bytes", sizes[i]);
    stat_u64(a, dir, name, UINT64_MAX, &h->usage);
    snprintf(name, sizeof name, "hugetlb.%s.max_usage_in_bytes", sizes[i]);
    stat_u64(a, dir, name, UINT64_MAX, &h->max);
    snprintf(name, sizeof name, "hugetlb.%s.failcnt", sizes[i]);
    stat_u64(a, dir, name, UINT64_MAX, &h->failcnt);
    append_ptr(a, (void ***)&m->hugetlb, &m->n_hugetlb, h);
  }
}

/* ---- cgroup v2 ---- */

typedef Io__Containerd__Cgroups__V2__CPUStat v2_cpu_stat_t;
typedef Io__Containerd__Cgroups__V2__HugeTlbStat v2_hugetlb_stat_t;
typedef Io__Containerd__Cgroups__V2__IOEntry v2_io_entry_t;
typedef Io__Containerd__Cgroups__V2__IOStat v2_io_stat_t;
typedef Io__Containerd__Cgroups__V2__MemoryEvents v2_memory_events_t;
typedef Io__Containerd__Cgroups__V2__MemoryStat v2_memory_stat_t;
typedef Io__Containerd__Cgroups__V2__Metrics v2_metrics_t;
typedef Io__Containerd__Cgroups__V2__RdmaEntry v2_rdma_entry_t;

static const struct kv_field v2_cpu_stat[] = {
    {"usage_usec", offsetof(v2_cpu_stat_t, usage_usec)},
    {"user_usec", offsetof(v2_cpu_stat_t, user_usec)},
    {"system_usec", offsetof(v2_cpu_stat_t, system_usec)},
    {"nr_periods", offsetof(v2_cpu_stat_t, nr_periods)},
    {"nr_throttled", offsetof(v2_cpu_stat_t, nr_throttled)},
    {"throttled_usec", offsetof(v2_cpu_stat_t, throttled_usec)},
};

static const struct kv_field v2_memory_stat[] = {
    {"anon", offsetof(v2_memory_stat_t, anon)},
    {"file", offsetof(v2_memory_stat_t, file)},
    {"kernel_stack", offsetof(v2_memory_stat_t, kernel_stack)},
    {"slab", offsetof(v2_memory_stat_t, slab)},
    {"sock", offsetof(v2_memory_stat_t, sock)},
    {"shmem", offsetof(v2_memory_stat_t, shmem)},
    {"file_mapped", offsetof(v2_memory_stat_t, file_mapped)},
    {"file_dirty", offsetof(v2_memory_stat_t, file_dirty)},
    {"file_writeback", offsetof(v2_memory_stat_t, file_writeback)},
    {"anon_thp", offsetof(v2_memory_stat_t, anon_thp)},
    {"inactive_anon", offsetof(v2_memory_stat_t, inactive_anon)},
    {"active_anon", offsetof(v2_memory_stat_t, active_anon)},
    {"inactive_file", offsetof(v2_memory_stat_t, inactive_file)},
    {"active_file", offsetof(v2_memory_stat_t, active_file)},
    {"unevictable", offsetof(v2_memory_stat_t, unevictable)},
    {"slab_reclaimable", offsetof(v2_memory_stat_t, slab_reclaimable)},
    {"slab_unreclaimable", offsetof(v2_memory_stat_t, slab_unreclaimable)},
    {"pgfault", offsetof(v2_memory_stat_t, pgfault)},
    {"pgmajfault", offsetof(v2_memory_stat_t, pgmajfault)},
    {"workingset_refault", offsetof(v2_memory_stat_t, workingset_refault)},
    {"workingset_activate", offsetof(v2_memory_stat_t, workingset_activate)},
    {"workingset_nodereclaim", offsetof(v2_memory_stat_t, workingset_nodereclaim)},
    {"pgrefill", offsetof(v2_memory_stat_t, pgrefill)},
    {"pgscan", offsetof(v2_memory_stat_t, pgscan)},
    {"pgsteal", offsetof(v2_memory_stat_t, pgsteal)},
    {"pgactivate", offsetof(v2_memory_stat_t, pgactivate)},
    {"pgdeactivate", offsetof(v2_memory_stat_t, pgdeactivate)},
    {"pglazyfree", offsetof(v2_memory_stat_t, pglazyfree)},
    {"pglazyfreed", offsetof(v2_memory_stat_t, pglazyfreed)},
    {"thp_fault_alloc", offsetof(v2_memory_stat_t, thp_fault_alloc)},
    {"thp_collapse_alloc", offsetof(v2_memory_stat_t, thp_collapse_alloc)},
};

static const struct kv_field v2_memory_events[] = {
    {"low", offsetof(v2_memory_events_t, low)},
    {"high", offsetof(v2_memory_events_t, high)},
    {"max", offsetof(v2_memory_events_t, max)},
    {"oom", offsetof(v2_memory_events_t, oom)},
    {"oom_kill", offsetof(v2_memory_events_t, oom_kill)},
};

/* io.stat: "major:minor rbytes=N wbytes=N rios=N wios=N dbytes=N dios=N" per device. */
static void
v2_io(struct arena *a, const char *dir, v2_metrics_t *m)
{
  cshim_autofree char *text = stat_read(a, dir, "io.stat");
  v2_io_stat_t *io = arena_alloc(a, sizeof *io);

  io__containerd__cgroups__v2__iostat__init(io);
  m->io = io;
  if (text == NULL)
    return;
  for (char *save = NULL, *line = strtok_r(text, "\n", &save); line;
       line = strtok_r(NULL, "\n", &save)) {
    unsigned long long major, minor;
    v2_io_entry_t *e;
    char *save2 = NULL, *tok = strtok_r(line, " ", &save2);
    if (tok == NULL || sscanf(tok, "%llu:%llu", &major, &minor) != 2)
      continue;
    e = arena_alloc(a, sizeof *e);
    io__containerd__cgroups__v2__ioentry__init(e);
    e->major = major;
    e->minor = minor;
    while ((tok = strtok_r(NULL, " ", &save2)) != NULL) {
      char *eq = strchr(tok, '=');
      uint64_t v;
      if (eq == NULL || !parse_u64(eq + 1, &v))
        continue;
      *eq = '\0';
      if (strcmp(tok, "rbytes") == 0)
        e->rbytes = v;
      else if (strcmp(tok, "wbytes") == 0)
        e->wbytes = v;
      else if (strcmp(tok, "rios") == 0)
        e->rios = v;
      else if (strcmp(tok, "wios") == 0)
        e->wios = v;
    }
    append_ptr(a, (void ***)&io->usage, &io->n_usage, e);
  }
}

/* rdma.current / rdma.max: "device hca_handle=N hca_object=N" ("max" = 2^32-1). */
static void
v2_rdma_entries(struct arena *a, const char *dir, const char *name, v2_rdma_entry_t ***arr,
                size_t *n)
{
  cshim_autofree char *text = stat_read(a, dir, name);
  if (text == NULL)
    return;
  for (char *save = NULL, *line = strtok_r(text, "\n", &save); line;
       line = strtok_r(NULL, "\n", &save)) {
    char *save2 = NULL, *tok = strtok_r(line, " ", &save2);
    v2_rdma_entry_t *e;
    if (tok == NULL)
      continue;
    e = arena_alloc(a, sizeof *e);
    io__containerd__cgroups__v2__rdma_entry__init(e);
    e->device = arena_strdup(a, tok);
    while ((tok = strtok_r(NULL, " ", &save2)) != NULL) {
      char *eq = strchr(tok, '=');
      uint64_t v = 0;
      if (eq == NULL)
        continue;
      *eq = '\0';
      if (strcmp(eq + 1, "max") == 0)
        v = UINT32_MAX;
      else if (!parse_u64(eq + 1, &v) || v > UINT32_MAX)
        continue;
      if (strcmp(tok, "hca_handle") == 0)
        e->hca_handles = (uint32_t)v;
      else if (strcmp(tok, "hca_object") == 0)
        e->hca_objects = (uint32_t)v;
    }
    append_ptr(a, (void ***)arr, n, e);
  }
}

static void
v2_hugetlb(struct arena *a, const char *dir, v2_metrics_t *m)
{
  char **sizes;
  size_t n = hugetlb_sizes(a, dir, "current", &sizes);

  for (size_t i = 0; i < n; i++) {
    v2_hugetlb_stat_t *h = arena_alloc(a, sizeof *h);
    char name[128];
    io__containerd__cgroups__v2__huge_tlb_stat__init(h);
    h->pagesize = arena_strdup(a, sizes[i]);
    snprintf(name, sizeof name, "hugetlb.%s.current", sizes[i]);
    stat_u64(a, dir, name, UINT64_MAX, &h->current);
    snprintf(name, sizeof name, "hugetlb.%s.max", sizes[i]);
    stat_u64(a, dir, name, UINT64_MAX, &h->max);
    append_ptr(a, (void ***)&m->hugetlb, &m->n_hugetlb, h);
  }
}

static void
v2_metrics(struct arena *a, const char *dir, v2_metrics_t *m)
{
  cshim_autofree char *cpu = stat_read(a, dir, "cpu.stat");
  cshim_autofree char *mem = stat_read(a, dir, "memory.stat");
  cshim_autofree char *events = stat_read(a, dir, "memory.events");

  m->pids = arena_alloc(a, sizeof *m->pids);
  io__containerd__cgroups__v2__pids_stat__init(m->pids);
  stat_u64(a, dir, "pids.current", UINT64_MAX, &m->pids->current);
  stat_u64(a, dir, "pids.max", UINT64_MAX, &m->pids->limit);

  m->cpu = arena_alloc(a, sizeof *m->cpu);
  io__containerd__cgroups__v2__cpustat__init(m->cpu);
  fill_kv(cpu, m->cpu, v2_cpu_stat, CSHIM_N_ELEMENTS(v2_cpu_stat));

  m->memory = arena_alloc(a, sizeof *m->memory);
  io__containerd__cgroups__v2__memory_stat__init(m->memory);
  fill_kv(mem, m->memory, v2_memory_stat, CSHIM_N_ELEMENTS(v2_memory_stat));
  stat_u64(a, dir, "memory.current", UINT64_MAX, &m->memory->usage);
  stat_u64(a, dir, "memory.max", UINT64_MAX, &m->memory->usage_limit);
  stat_u64(a, dir, "memory.swap.current", UINT64_MAX, &m->memory->swap_usage);
  stat_u64(a, dir, "memory.swap.max", UINT64_MAX, &m->memory->swap_limit);

  if (events) {
    m->memory_events = arena_alloc(a, sizeof *m->memory_events);
    io__containerd__cgroups__v2__memory_events__init(m->memory_events);
    fill_kv(events, m->memory_events, v2_memory_events, CSHIM_N_ELEMENTS(v2_memory_events));
  }

  v2_io(a, dir, m);
  m->rdma = arena_alloc(a, sizeof *m->rdma);
  io__containerd__cgroups__v2__rdma_stat__init(m->rdma);
  v2_rdma_entries(a, dir, "rdma.current", &m->rdma->current, &m->rdma->n_current);
  v2_rdma_entries(a, dir, "rdma.max", &m->rdma->limit, &m->rdma->n_limit);
  v2_hugetlb(a, dir, m);
}

/* ---- the Any ---- */

int
task_cgroup_stats(task_cgroup_t *cg, Google__Protobuf__Any *out, cshim_error_t *err)
{
  struct arena a = {.cg = cg};
  ProtobufCMessage *msg;
  struct stat st;

  google__protobuf__any__init(out);
  /* With files kept open, a removed cgroup shows as ENODEV on them (a.gone): they are closed
     and the answer is worked out once more from the paths, as at the first call. */
  for (int attempt = 0;; attempt++) {
    bool check_paths = cg->n_files == 0;
    if (cg->unified) {
      v2_metrics_t *m = arena_alloc(&a, sizeof *m);
      if (cg->dir == NULL || (check_paths && stat(cg->dir, &st) < 0)) {
        arena_free(&a);
        return cshim_error_make(err, ENOENT, "cgroup `%s` does not exist: not found",
                                cg->dir ? cg->dir : "");
      }
      io__containerd__cgroups__v2__metrics__init(m);
      v2_metrics(&a, cg->dir, m);
      out->type_url = TASK_CGROUPS_V2_METRICS_TYPE;
      msg = &m->base;
    } else {
      v1_metrics_t *m = arena_alloc(&a, sizeof *m);
      const char *memory = cg->v1[TASK_CGROUP_MEMORY];
      bool any = !check_paths;
      for (int i = 0; !any && i < TASK_CGROUP_V1_COUNT; i++)
        if (cg->v1[i] && stat(cg->v1[i], &st) == 0)
          any = true;
      if (!any) {
        arena_free(&a);
        return cshim_error_make(err, ENOENT, "cgroup `%s` does not exist: not found",
                                memory ? memory : "");
      }
      io__containerd__cgroups__v1__metrics__init(m);
      v1_hugetlb(&a, cg->v1[TASK_CGROUP_HUGETLB], m);
      v1_pids(&a, cg->v1[TASK_CGROUP_PIDS], m);
      v1_cpu(&a, cg->v1[TASK_CGROUP_CPUACCT], cg->v1[TASK_CGROUP_CPU], m);
      v1_memory(&a, memory, m);
      v1_blkio(&a, cg->v1[TASK_CGROUP_BLKIO], cg->partitions, m);
      out->type_url = TASK_CGROUPS_V1_METRICS_TYPE;
      msg = &m->base;
    }
    if (!a.gone)
      break;
    arena_free(&a);
    a.cg = cg;
    a.gone = false;
    task_cgroup_close_files(cg);
    if (attempt > 0)
      return cshim_error_make(err, ENOENT, "cgroup `%s` does not exist: not found",
                              cg->unified ? cg->dir : cg->v1[TASK_CGROUP_MEMORY]);
  }
  out->value.len = protobuf_c_message_get_packed_size(msg);
  out->value.data = cshim_xmalloc(out->value.len + 1);
  protobuf_c_message_pack(msg, out->value.data);
  arena_free(&a);
  return 0;
}
