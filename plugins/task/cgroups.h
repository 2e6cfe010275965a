// SPDX-License-Identifier: Apache-2.0
// Where a container's cgroup is, its freezer, its pids, and its usage as cgroups Metrics.
#ifndef TASK_CGROUPS_H
#define TASK_CGROUPS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <cshim/error.h>

#include "google/protobuf/any.pb-c.h"

#include "types.h"

#define TASK_CGROUPS_V1_METRICS_TYPE "io.containerd.cgroups.v1.Metrics"
#define TASK_CGROUPS_V2_METRICS_TYPE "io.containerd.cgroups.v2.Metrics"

enum
{
  TASK_CGROUP_MEMORY,
  TASK_CGROUP_CPU,
  TASK_CGROUP_CPUACCT,
  TASK_CGROUP_PIDS,
  TASK_CGROUP_BLKIO,
  TASK_CGROUP_HUGETLB,
  TASK_CGROUP_FREEZER,
  TASK_CGROUP_V1_COUNT
};

/* Files Stats keeps open per cgroup, and how long an absent one is taken as absent. */
#define TASK_CGROUP_MAX_FILES 64
#define TASK_CGROUP_ABSENT_RETRY_S 60

struct task_cgroup_file
{
  const char *dir;        /* one of the cgroup's directory strings (compared by address) */
  char *name;             /* "" = dir is the file (/proc/partitions) */
  int32_t absent_since_s; /* monotonic seconds, when fd is -1 */
  int fd;                 /* -1: absent */
};

struct task_cgroup_s
{
  bool unified;                   /* cgroup v2 only (else v1 hierarchies, hybrid included) */
  char *dir;                      /* v2: the cgroup's directory */
  char *v1[TASK_CGROUP_V1_COUNT]; /* v1: one directory per controller; NULL = not mounted */
  char *partitions;               /* /proc/partitions, for blkio device names */
  /* freezer.state (v1) or cgroup.freeze (v2), opened at the first State and read again with
     pread (ENODEV once the cgroup is removed): one system call instead of open, read, read,
     close and a path walk */
  int freezer_fd;
  bool freezer_fd_open;
  bool freezer_on_cgroupfs; /* else fstat after each read: still linked? */
  /* Stats' files, opened at first use and read again with pread (cgroups.c); closed with the
     cgroup or when it is removed */
  struct task_cgroup_file *files; /* up to TASK_CGROUP_MAX_FILES, grown at first use */
  size_t n_files, cap_files;
  char **hugetlb_sizes; /* huge page sizes, listed at the first Stats */
  size_t n_hugetlb_sizes;
  bool hugetlb_listed;
};

/* Locate the cgroup from the text of /proc/<pid>/cgroup and a mountinfo (both borrowed). */
int task_cgroup_parse(const char *proc_cgroup, const char *mountinfo, bool unified,
                      task_cgroup_t **out, cshim_error_t *err);
/* The same for a live pid (v2 when /sys/fs/cgroup is cgroup2). */
int task_cgroup_load(pid_t pid, task_cgroup_t **out, cshim_error_t *err);
void task_cgroup_free(task_cgroup_t *cg);
/* The directory with the memory controller's files (v2 dir or v1 memory), or NULL. */
const char *task_cgroup_memory_dir(const task_cgroup_t *cg);
/* Read the usage into out: type_url (static) = TASK_CGROUPS_V1/V2_METRICS_TYPE, value.data
   malloc'ed (caller frees). ENOENT when the cgroup is gone. */
int task_cgroup_stats(task_cgroup_t *cg, Google__Protobuf__Any *out, cshim_error_t *err);
/* Close the files Stats keeps open for cg (they open again at the next Stats). */
void task_cgroup_close_files(task_cgroup_t *cg);
/* Descriptors the kept files of every cgroup hold now (for the debug state and the tests). */
size_t task_cgroup_kept_files(void);
/* What the cgroup's freezer says (runc and crun pause and resume through it). */
typedef enum
{
  TASK_FREEZER_THAWED = 0,
  TASK_FREEZER_FREEZING, /* asked to freeze, not frozen yet */
  TASK_FREEZER_FROZEN,
} task_freezer_t;

/* Read the freezer: v1 freezer.state, v2 cgroup.freeze and cgroup.events' "frozen". ENOENT when
   there is no freezer (not mounted, or the cgroup is gone). Never starts a process. */
int task_cgroup_freezer_state(task_cgroup_t *cg, task_freezer_t *out, cshim_error_t *err);
/* Every pid in the cgroup and the cgroups below it (cgroup.procs: v2, or one v1 hierarchy),
   as `runc ps` lists them. *pids is malloc'ed (caller frees); ENOENT when the cgroup is gone. */
int task_cgroup_pids(const task_cgroup_t *cg, pid_t **pids, size_t *n, cshim_error_t *err);
/* Read a small pseudo-file whole (malloc'ed, NUL-terminated). */
int task_cgroup_read_file(const char *path, char **out, cshim_error_t *err);
/* The value of "key N" in a flat-keyed file's text: 0, -ENOENT (no such key) or -EINVAL. */
int task_cgroup_kv(const char *text, const char *key, uint64_t *out);

#endif
