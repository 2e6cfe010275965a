// SPDX-License-Identifier: Apache-2.0
// Mounting a container's rootfs mounts into <bundle>/rootfs and taking them down again.
#define _GNU_SOURCE
#include "mount.h"

#include <errno.h>
#include <stdbool.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cshim/util.h>

/* name is an array: the tables need no relocation (shared read-only pages, not private ones) */
struct flag_opt
{
  char name[16];
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

/* ---- overlays whose options do not fit in a page: the new mount API, one layer at a time ---- */

/* Whether an option word is file-system data rather than a flag (as task_mount_parse_options
   splits them). */
static bool
is_data_word(const char *o)
{
  return o && *o && !find_opt(flag_opts, CSHIM_N_ELEMENTS(flag_opts), o) &&
         !find_opt(propagation_opts, CSHIM_N_ELEMENTS(propagation_opts), o) &&
         strncmp(o, "x-", 2) != 0;
}

/* The total length of the comma-joined fs data words (what mount(2) would be given). */
static size_t
data_length(char *const *options, size_t n)
{
  size_t len = 0;

  for (size_t i = 0; i < n; i++)
    if (is_data_word(options[i]))
      len += strlen(options[i]) + (len ? 1 : 0);
  return len;
}

/* The flags and propagation of options, leaving the data words out. */
static int
parse_flags(char *const *options, size_t n, unsigned long *flags, unsigned long *propagation,
            cshim_error_t *err)
{
  cshim_autofree char **words = cshim_xmalloc0((n + 1) * sizeof *words);
  cshim_autofree char *data = NULL;
  size_t k = 0;

  for (size_t i = 0; i < n; i++)
    if (options[i] && !is_data_word(options[i]))
      words[k++] = options[i];
  return task_mount_parse_options(words, k, flags, propagation, &data, err);
}

int
task_mount_split_lowerdir(const char *value, char ***layers, size_t *n_layers, size_t *n_data,
                          cshim_error_t *err)
{
  size_t cap = 8, n = 0, data_from = SIZE_MAX;
  char **out = cshim_xmalloc0(cap * sizeof *out);
  const char *p = value;

  for (;;) {
    char *layer = cshim_xmalloc(strlen(p) + 1);
    size_t len = 0;

    /* A backslash keeps the next character (a ':' in a path) as overlayfs reads it. */
    while (*p && *p != ':') {
      if (*p == '\\' && p[1])
        p++;
      layer[len++] = *p++;
    }
    layer[len] = '\0';
    if (len == 0) {
      free(layer);
      for (size_t i = 0; i < n; i++)
        free(out[i]);
      free(out);
      return cshim_error_make(err, EINVAL, "overlay `lowerdir` `%s` has an empty layer", value);
    }
    if (n + 1 >= cap) {
      cap *= 2;
      out = cshim_xrealloc(out, cap * sizeof *out);
    }
    out[n++] = layer;
    if (*p == '\0')
      break;
    p++;
    /* "::" starts the data-only layers (overlayfs `datadir+`). */
    if (*p == ':' && data_from == SIZE_MAX) {
      data_from = n;
      p++;
    }
  }
  out[n] = NULL;
  *layers = out;
  *n_layers = n;
  *n_data = data_from == SIZE_MAX ? 0 : n - data_from;
  return 0;
}

/* The kernel's own words for a failed fsconfig (read from the fs context), or strerror. */
static void
context_message(int fsfd, int e, char *buf, size_t size)
{
  char line[512];
  ssize_t r;

  snprintf(buf, size, "%s", strerror(e));
  while ((r = read(fsfd, line, sizeof line - 1)) > 0) {
    line[r] = '\0';
    /* "e overlay: ..." (error), "w ..." (warning), "i ..." (info): keep the last error */
    if (line[0] == 'e' && line[1] == ' ')
      snprintf(buf, size, "%s (%s)", line + 2, strerror(e));
  }
}

static int
set_param(int fsfd, const char *key, const char *value, const char *target, cshim_error_t *err)
{
  char why[600];

  int e;

  if (fsconfig(fsfd, value ? FSCONFIG_SET_STRING : FSCONFIG_SET_FLAG, key, value, 0) == 0)
    return 0;
  e = errno;
  context_message(fsfd, e, why, sizeof why);
  return cshim_error_make(err, e, "mount overlay on `%s`: option `%s%s%s`: %s", target, key,
                          value ? "=" : "", value ? value : "", why);
}

/* One overlay layer: paths of 256 bytes and more (fsconfig's limit) go through an O_PATH fd. */
static int
add_layer(int fsfd, const char *key, const char *layer, const char *target, cshim_error_t *err)
{
  cshim_autoclose int fd = -1;
  char proc[64];

  if (strlen(layer) < 256)
    return set_param(fsfd, key, layer, target, err);
  fd = open(layer, O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0)
    return cshim_error_sys(err, errno, "mount overlay on `%s`: open layer `%s`", target, layer);
  snprintf(proc, sizeof proc, "/proc/self/fd/%d", fd);
  return set_param(fsfd, key, proc, target, err);
}

static unsigned
mount_attrs(unsigned long flags)
{
  unsigned attrs = 0;

  if (flags & MS_RDONLY)
    attrs |= MOUNT_ATTR_RDONLY;
  if (flags & MS_NOSUID)
    attrs |= MOUNT_ATTR_NOSUID;
  if (flags & MS_NODEV)
    attrs |= MOUNT_ATTR_NODEV;
  if (flags & MS_NOEXEC)
    attrs |= MOUNT_ATTR_NOEXEC;
  if (flags & MS_NODIRATIME)
    attrs |= MOUNT_ATTR_NODIRATIME;
  if (flags & MS_NOATIME)
    attrs |= MOUNT_ATTR_NOATIME;
  else if (flags & MS_STRICTATIME)
    attrs |= MOUNT_ATTR_STRICTATIME;
  return attrs;
}

static int
configure_overlay(int fsfd, const Containerd__Types__Mount *m, unsigned long flags,
                  const char *target, cshim_error_t *err)
{
  static const struct
  {
    unsigned long flag;
    const char *name;
  } sb_flags[] = {
      {MS_RDONLY, "ro"}, {MS_SYNCHRONOUS, "sync"}, {MS_DIRSYNC, "dirsync"}, {MS_MANDLOCK, "mand"}};
  int ret;

  if (flags & (MS_BIND | MS_REMOUNT))
    return cshim_error_make(err, EINVAL, "mount overlay on `%s`: `bind` and `remount` do not apply",
                            target);
  if (set_param(fsfd, "source", m->source && *m->source ? m->source : "overlay", target, err) < 0)
    return -EINVAL;
  for (size_t i = 0; i < CSHIM_N_ELEMENTS(sb_flags); i++)
    if ((flags & sb_flags[i].flag) && set_param(fsfd, sb_flags[i].name, NULL, target, err) < 0)
      return (*err)->status;

  for (size_t i = 0; i < m->n_options; i++) {
    const char *o = m->options[i];
    cshim_autofree char *key = NULL;
    const char *eq;

    if (!is_data_word(o))
      continue;
    eq = strchr(o, '=');
    key = eq ? cshim_xstrndup(o, (size_t)(eq - o)) : cshim_xstrdup(o);
    if (strcmp(key, "lowerdir") == 0) {
      char **layers = NULL;
      size_t n = 0, n_data = 0;

      ret = task_mount_split_lowerdir(eq + 1, &layers, &n, &n_data, err);
      for (size_t j = 0; ret == 0 && j < n; j++)
        ret = add_layer(fsfd, j < n - n_data ? "lowerdir+" : "datadir+", layers[j], target, err);
      for (size_t j = 0; j < n; j++)
        free(layers[j]);
      free(layers);
    } else
      ret = set_param(fsfd, key, eq ? eq + 1 : NULL, target, err);
    if (ret < 0)
      return ret;
  }
  return 0;
}

/* overlayfs with more lower layers than fit in mount(2)'s page of data. containerd shortens the
   list by changing directory to the layers' common parent; the shim's cwd is process-wide, so
   instead every layer is handed to the kernel on its own (fsconfig `lowerdir+`, Linux 6.8+). */
static int
mount_overlay_layers(const Containerd__Types__Mount *m, unsigned long flags, const char *target,
                     cshim_error_t *err)
{
  cshim_autoclose int fsfd = -1;
  cshim_autoclose int mfd = -1;
  char why[600];
  int ret;

  fsfd = fsopen("overlay", FSOPEN_CLOEXEC);
  if (fsfd < 0)
    return cshim_error_sys(err, errno, "mount overlay on `%s`: fsopen", target);
  ret = configure_overlay(fsfd, m, flags, target, err);
  if (ret < 0)
    return ret;
  if (fsconfig(fsfd, FSCONFIG_CMD_CREATE, NULL, NULL, 0) < 0) {
    int e = errno;
    context_message(fsfd, e, why, sizeof why);
    return cshim_error_make(err, e, "mount overlay on `%s`: %s", target, why);
  }
  mfd = fsmount(fsfd, FSMOUNT_CLOEXEC, mount_attrs(flags));
  if (mfd < 0)
    return cshim_error_sys(err, errno, "mount overlay on `%s`: fsmount", target);
  if (move_mount(mfd, "", AT_FDCWD, target, MOVE_MOUNT_F_EMPTY_PATH) < 0)
    return cshim_error_sys(err, errno, "mount overlay on `%s`: move_mount", target);
  return 0;
}

/* Whether overlayfs takes layers one by one (`lowerdir+`, Linux 6.8+). Asked of the kernel once:
   a file system still on the legacy mount API accepts any parameter into its text buffer, so an
   unknown flag being refused tells the native parser, which then must know `lowerdir+`. */
static bool
overlay_has_lowerdir_plus(void)
{
  static int known = -1;
  int fd;

  if (known >= 0)
    return known;
  known = 0;
  fd = fsopen("overlay", FSOPEN_CLOEXEC);
  if (fd < 0)
    return known;
  if (fsconfig(fd, FSCONFIG_SET_FLAG, "cshim-probe-unknown", NULL, 0) < 0 &&
      fsconfig(fd, FSCONFIG_SET_STRING, "lowerdir+", "/", 0) == 0)
    known = 1;
  close(fd);
  return known;
}

/* overlayfs stacks at most this many layers (OVL_MAX_STACK); also bounds the fds held below. */
#define MAX_OVERLAY_LAYERS 500

static void
close_fds(int *fds, size_t n)
{
  for (size_t i = 0; i < n; i++)
    if (fds[i] >= 0)
      close(fds[i]);
  free(fds);
}

int
task_mount_overlay_by_fd(const Containerd__Types__Mount *m, const char *target, cshim_error_t *err)
{
  cshim_autofree char **words = cshim_xmalloc0((m->n_options + 1) * sizeof *words);
  cshim_autofree char *lower = NULL;
  cshim_autofree char *data = NULL;
  unsigned long flags, propagation;
  char **layers = NULL;
  size_t n = 0, n_data = 0, len = 0;
  int *fds = NULL;
  int ret = 0;

  for (size_t i = 0; i < m->n_options; i++) {
    words[i] = m->options[i];
    if (words[i] == NULL || strncmp(words[i], "lowerdir=", 9) != 0 || lower)
      continue;
    ret = task_mount_split_lowerdir(words[i] + 9, &layers, &n, &n_data, err);
    if (ret < 0)
      return ret;
    if (n > MAX_OVERLAY_LAYERS) {
      ret = cshim_error_make(err, EINVAL,
                             "mount overlay on `%s`: %zu layers, overlayfs stacks at most %d",
                             target, n, MAX_OVERLAY_LAYERS);
      break;
    }
    fds = cshim_xmalloc(n * sizeof *fds);
    for (size_t j = 0; j < n; j++)
      fds[j] = -1;
    /* "lowerdir=" + n * ("/proc/self/fd/" + 10 digits + "::") */
    lower = cshim_xmalloc(16 + n * 28);
    len = (size_t)sprintf(lower, "lowerdir=");
    for (size_t j = 0; j < n && ret == 0; j++) {
      fds[j] = open(layers[j], O_PATH | O_DIRECTORY | O_CLOEXEC);
      if (fds[j] < 0)
        ret = cshim_error_sys(err, errno, "mount overlay on `%s`: open layer `%s`", target,
                              layers[j]);
      else
        len += (size_t)sprintf(lower + len, "%s/proc/self/fd/%d",
                               j == 0                      ? ""
                               : n_data && j == n - n_data ? "::"
                                                           : ":",
                               fds[j]);
    }
    words[i] = lower;
  }
  for (size_t j = 0; j < n; j++)
    free(layers[j]);
  free(layers);

  if (ret == 0)
    ret = task_mount_parse_options(words, m->n_options, &flags, &propagation, &data, err);
  if (ret == 0 && mount(m->source && *m->source ? m->source : "overlay", target, "overlay",
                        flags & ~(MS_SHARED | MS_PRIVATE | MS_SLAVE | MS_UNBINDABLE), data) < 0)
    ret = cshim_error_sys(err, errno, "mount overlay on `%s`", target);
  close_fds(fds, fds ? n : 0);
  return ret;
}

static int
mount_one(const Containerd__Types__Mount *m, const char *target, cshim_error_t *err)
{
  cshim_autofree char *data = NULL;
  unsigned long flags, propagation;
  const char *type = m->type && *m->type ? m->type : NULL;
  const char *source = m->source && *m->source ? m->source : "none";

  if (type && strcmp(type, "overlay") == 0 &&
      data_length(m->options, m->n_options) > MAX_MOUNT_DATA) {
    /* The flags, as for any mount; the data is handed over word by word. */
    if (parse_flags(m->options, m->n_options, &flags, &propagation, err) < 0)
      return cshim_error_wrap(err, "mount `%s` on `%s`", source, target);
    /* Before Linux 6.8 (no `lowerdir+`): each layer as a short /proc/self/fd path, which fits
       about 200 layers in a page. */
    if ((overlay_has_lowerdir_plus() ? mount_overlay_layers(m, flags, target, err)
                                     : task_mount_overlay_by_fd(m, target, err)) < 0)
      return (*err)->status;
    goto propagate;
  }

  if (task_mount_parse_options(m->options, m->n_options, &flags, &propagation, &data, err) < 0)
    return cshim_error_wrap(err, "mount `%s` on `%s`", source, target);

  /* A remount without new data only changes flags, which the read-only step below does. */
  if (!(flags & MS_REMOUNT) || data) {
    if (mount(source, target, type, flags & ~(MS_SHARED | MS_PRIVATE | MS_SLAVE | MS_UNBINDABLE),
              data) < 0)
      return cshim_error_sys(err, errno, "mount `%s` (type `%s`) on `%s`", source, type ? type : "",
                             target);
  }
propagate:
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
