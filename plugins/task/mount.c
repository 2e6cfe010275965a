// SPDX-License-Identifier: Apache-2.0
// Mounting a container's rootfs mounts into <bundle>/rootfs and taking them down again.
#include "task.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cshim/util.h>

struct flag_opt
{
  const char *name;
  bool clear;
  unsigned long flag;
};

/* The option words containerd's mount package turns into flags; the rest is fs data. */
static const struct flag_opt flag_opts[] = {
    {"async", true, MS_SYNCHRONOUS},
    {"atime", true, MS_NOATIME},
    {"bind", false, MS_BIND},
    {"defaults", false, 0},
    {"dev", true, MS_NODEV},
    {"diratime", true, MS_NODIRATIME},
    {"dirsync", false, MS_DIRSYNC},
    {"exec", true, MS_NOEXEC},
    {"mand", false, MS_MANDLOCK},
    {"noatime", false, MS_NOATIME},
    {"nodev", false, MS_NODEV},
    {"nodiratime", false, MS_NODIRATIME},
    {"noexec", false, MS_NOEXEC},
    {"nomand", true, MS_MANDLOCK},
    {"norelatime", true, MS_RELATIME},
    {"nostrictatime", true, MS_STRICTATIME},
    {"nosuid", false, MS_NOSUID},
    {"rbind", false, MS_BIND | MS_REC},
    {"relatime", false, MS_RELATIME},
    {"remount", false, MS_REMOUNT},
    {"ro", false, MS_RDONLY},
    {"rw", true, MS_RDONLY},
    {"strictatime", false, MS_STRICTATIME},
    {"suid", true, MS_NOSUID},
    {"sync", false, MS_SYNCHRONOUS},
};

static const struct flag_opt propagation_opts[] = {
    {"private", false, MS_PRIVATE},       {"rprivate", false, MS_PRIVATE | MS_REC},
    {"shared", false, MS_SHARED},         {"rshared", false, MS_SHARED | MS_REC},
    {"slave", false, MS_SLAVE},           {"rslave", false, MS_SLAVE | MS_REC},
    {"unbindable", false, MS_UNBINDABLE}, {"runbindable", false, MS_UNBINDABLE | MS_REC},
};

/* mount(2) takes at most a page of data. */
#define MAX_MOUNT_DATA 4095

static const struct flag_opt *
find_opt(const struct flag_opt *table, size_t n, const char *name)
{
  for (size_t i = 0; i < n; i++)
    if (strcmp(table[i].name, name) == 0)
      return &table[i];
  return NULL;
}

int
task_mount_parse_options(char *const *options, size_t n, unsigned long *flags,
                         unsigned long *propagation, char **data, cshim_error_t *err)
{
  cshim_autofree char *buf = NULL;
  size_t len = 0;

  *flags = 0;
  *propagation = 0;
  *data = NULL;
  for (size_t i = 0; i < n; i++) {
    const char *o = options[i];
    const struct flag_opt *f;
    size_t olen;

    if (o == NULL || *o == '\0')
      continue;
    f = find_opt(flag_opts, CSHIM_N_ELEMENTS(flag_opts), o);
    if (f) {
      if (f->clear)
        *flags &= ~f->flag;
      else
        *flags |= f->flag;
      continue;
    }
    f = find_opt(propagation_opts, CSHIM_N_ELEMENTS(propagation_opts), o);
    if (f) {
      *propagation = f->flag;
      continue;
    }
    if (strncmp(o, "x-", 2) == 0)
      continue; /* userspace-only hints (x-systemd.*, ...) */
    if (strcmp(o, "loop") == 0)
      return cshim_error_make(err, ENOTSUP, "mount option `loop` is not supported");
    olen = strlen(o);
    buf = cshim_xrealloc(buf, len + olen + 2);
    if (len)
      buf[len++] = ',';
    memcpy(buf + len, o, olen + 1);
    len += olen;
  }
  if (len > MAX_MOUNT_DATA)
    return cshim_error_make(err, EINVAL, "mount data is %zu bytes, more than %d", len,
                            MAX_MOUNT_DATA);
  *data = cshim_steal_pointer(&buf);
  return 0;
}

static int
mount_one(const Containerd__Types__Mount *m, const char *target, cshim_error_t *err)
{
  cshim_autofree char *data = NULL;
  unsigned long flags, propagation;
  const char *type = m->type && *m->type ? m->type : NULL;
  const char *source = m->source && *m->source ? m->source : "none";

  if (task_mount_parse_options(m->options, m->n_options, &flags, &propagation, &data, err) < 0)
    return cshim_error_wrap(err, "mount `%s` on `%s`", source, target);

  /* A remount without new data only changes flags, which the read-only step below does. */
  if (!(flags & MS_REMOUNT) || data) {
    if (mount(source, target, type, flags & ~(MS_SHARED | MS_PRIVATE | MS_SLAVE | MS_UNBINDABLE),
              data) < 0)
      return cshim_error_sys(err, errno, "mount `%s` (type `%s`) on `%s`", source, type ? type : "",
                             target);
  }
  if (propagation && mount("", target, "", propagation, NULL) < 0) {
    int e = errno;
    umount2(target, MNT_DETACH);
    return cshim_error_sys(err, e, "set propagation of `%s`", target);
  }
  /* A bind mount ignores MS_RDONLY until it is remounted. */
  if ((flags & (MS_BIND | MS_RDONLY)) == (MS_BIND | MS_RDONLY) &&
      mount("", target, "", flags | MS_REMOUNT, NULL) < 0) {
    int e = errno;
    umount2(target, MNT_DETACH);
    return cshim_error_sys(err, e, "remount `%s` read-only", target);
  }
  return 0;
}

static bool
has_dotdot(const char *path)
{
  const char *p = path;
  while ((p = strstr(p, "..")) != NULL) {
    bool start = p == path || p[-1] == '/';
    bool end = p[2] == '\0' || p[2] == '/';
    if (start && end)
      return true;
    p += 2;
  }
  return false;
}

int
task_mount_all(Containerd__Types__Mount *const *mounts, size_t n, const char *target,
               char ***mounted, size_t *n_mounted, cshim_error_t *err)
{
  char **done;
  size_t n_done = 0;
  struct stat st;

  *mounted = NULL;
  *n_mounted = 0;
  /* mount(2) follows a symlink in its target: a rootfs link would mount the image elsewhere. */
  if (lstat(target, &st) == 0 && S_ISLNK(st.st_mode))
    return cshim_error_make(err, ELOOP, "rootfs `%s` is a symbolic link: refusing to mount on it",
                            target);
  done = cshim_xmalloc0((n + 1) * sizeof *done);
  for (size_t i = 0; i < n; i++) {
    const Containerd__Types__Mount *m = mounts[i];
    char *path = NULL;

    if (m->target && *m->target && strcmp(m->target, "/") != 0) {
      if (has_dotdot(m->target)) {
        cshim_error_make(err, EINVAL, "mount target `%s` leaves the rootfs", m->target);
        goto fail;
      }
      cshim_xasprintf(&path, "%s/%s", target, m->target + (m->target[0] == '/'));
    } else
      path = cshim_xstrdup(target);
    if (mount_one(m, path, err) < 0) {
      free(path);
      goto fail;
    }
    done[n_done++] = path;
  }
  *mounted = done;
  *n_mounted = n_done;
  return 0;

fail:
  task_mount_unmount_all(done, n_done, NULL);
  return (*err)->status;
}

void
task_mount_unmount_all(char **mounted, size_t n, const cshim_logger_t *log)
{
  if (mounted == NULL)
    return;
  for (size_t i = n; i > 0; i--) {
    const char *path = mounted[i - 1];
    if (umount2(path, 0) < 0 && errno != EINVAL && errno != ENOENT) {
      /* Still busy (a process of the container holds it): detach it instead. */
      if (umount2(path, MNT_DETACH) < 0 && errno != EINVAL)
        cshim_log_warn(log, "unmount `%s`: %s", path, strerror(errno));
    }
    free(mounted[i - 1]);
  }
  free(mounted);
}
