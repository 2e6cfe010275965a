// SPDX-License-Identifier: Apache-2.0
// Tests of mount.c: option words to flags/data as containerd parses them, and real mounts.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <cshim/util.h>

#include "mount.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#define TMPFS_MAGIC_ 0x01021994

static void
parse(const char *const *opts, size_t n, unsigned long *flags, unsigned long *prop, char **data)
{
  cshim_error_t err = NULL;
  if (task_mount_parse_options((char *const *)opts, n, flags, prop, data, &err) < 0)
    fail_msg("parse: %s", err->msg);
}

static void
test_mount_options_become_flags_and_data(void **state)
{
  const char *opts[] = {"ro",       "nosuid",   "nodev",
                        "noexec",   "relatime", "rbind",
                        "size=1m",  "mode=755", "x-systemd.automount",
                        "defaults", ""};
  unsigned long flags, prop;
  char *data;

  parse(opts, CSHIM_N_ELEMENTS(opts), &flags, &prop, &data);
  assert_int_equal(flags,
                   MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_RELATIME | MS_BIND | MS_REC);
  assert_int_equal(prop, 0);
  assert_string_equal(data, "size=1m,mode=755");
  free(data);
}

static void
test_mount_options_later_words_clear_earlier_flags(void **state)
{
  const char *opts[] = {"ro", "nosuid", "rw", "suid", "noatime", "atime", "dev", "exec"};
  unsigned long flags, prop;
  char *data;

  parse(opts, CSHIM_N_ELEMENTS(opts), &flags, &prop, &data);
  assert_int_equal(flags, 0);
  assert_null(data);
}

static void
test_mount_options_overlay_dirs_are_data(void **state)
{
  const char *opts[] = {"index=off", "workdir=/w", "upperdir=/u", "lowerdir=/l1:/l2"};
  unsigned long flags, prop;
  char *data;

  parse(opts, CSHIM_N_ELEMENTS(opts), &flags, &prop, &data);
  assert_int_equal(flags, 0);
  assert_string_equal(data, "index=off,workdir=/w,upperdir=/u,lowerdir=/l1:/l2");
  free(data);
}

static void
test_mount_options_propagation_is_separate(void **state)
{
  const char *opts[] = {"bind", "rslave"};
  unsigned long flags, prop;
  char *data;

  parse(opts, CSHIM_N_ELEMENTS(opts), &flags, &prop, &data);
  assert_int_equal(flags, MS_BIND);
  assert_int_equal(prop, MS_SLAVE | MS_REC);
  assert_null(data);
}

static void
test_mount_options_reject_loop_and_oversized_data(void **state)
{
  const char *loop[] = {"loop"};
  char *big = cshim_xmalloc(5000);
  const char *bigopts[1] = {big};
  unsigned long flags, prop;
  cshim_error_t err = NULL;
  char *data = NULL;

  assert_int_equal(task_mount_parse_options((char *const *)loop, 1, &flags, &prop, &data, &err),
                   -ENOTSUP);
  cshim_error_release(&err);
  memset(big, 'a', 4999);
  big[4999] = '\0';
  assert_int_equal(task_mount_parse_options((char *const *)bigopts, 1, &flags, &prop, &data, &err),
                   -EINVAL);
  cshim_error_release(&err);
  free(big);
}

static void
test_mount_all_mounts_in_order_and_unmounts_in_reverse(void **state)
{
  char dir[] = "/tmp/cshim-task-mount-XXXXXX";
  char src[64], target[64], marker[96];
  Containerd__Types__Mount tmpfs = CONTAINERD__TYPES__MOUNT__INIT;
  Containerd__Types__Mount bind = CONTAINERD__TYPES__MOUNT__INIT;
  Containerd__Types__Mount *mounts[2] = {&tmpfs, &bind};
  char *tmpfs_opts[] = {"nodev", "size=1m"};
  char *bind_opts[] = {"rbind", "ro"};
  cshim_error_t err = NULL;
  struct statfs sfs;
  char **mounted = NULL;
  size_t n = 0;
  FILE *f;

  if (geteuid() != 0)
    skip();
  assert_non_null(mkdtemp(dir));
  snprintf(src, sizeof src, "%s/src", dir);
  snprintf(target, sizeof target, "%s/target", dir);
  snprintf(marker, sizeof marker, "%s/marker", src);
  assert_int_equal(mkdir(src, 0755), 0);
  assert_int_equal(mkdir(target, 0755), 0);
  f = fopen(marker, "w");
  assert_non_null(f);
  fclose(f);

  tmpfs.type = "tmpfs";
  tmpfs.source = "tmpfs";
  tmpfs.n_options = 2;
  tmpfs.options = tmpfs_opts;
  bind.type = "bind";
  bind.source = src;
  bind.n_options = 2;
  bind.options = bind_opts;
  if (task_mount_all(mounts, 2, target, &mounted, &n, &err) < 0)
    fail_msg("mount: %s", err->msg);
  assert_int_equal(n, 2);
  /* The bind (read-only) is on top of the tmpfs. */
  snprintf(marker, sizeof marker, "%s/marker", target);
  assert_int_equal(access(marker, F_OK), 0);
  assert_int_equal(statfs(target, &sfs), 0);
  assert_true(sfs.f_flags & ST_RDONLY);
  task_mount_unmount_all(mounted, n, NULL);
  assert_int_equal(statfs(target, &sfs), 0);
  assert_int_not_equal(sfs.f_type, TMPFS_MAGIC_);
  assert_int_not_equal(access(marker, F_OK), 0);

  unlink(marker);
  snprintf(marker, sizeof marker, "%s/marker", src);
  unlink(marker);
  rmdir(src);
  rmdir(target);
  rmdir(dir);
}

static void
test_mount_all_undoes_earlier_mounts_when_one_fails(void **state)
{
  char dir[] = "/tmp/cshim-task-mount-XXXXXX";
  Containerd__Types__Mount ok = CONTAINERD__TYPES__MOUNT__INIT;
  Containerd__Types__Mount bad = CONTAINERD__TYPES__MOUNT__INIT;
  Containerd__Types__Mount *mounts[2] = {&ok, &bad};
  cshim_error_t err = NULL;
  struct statfs sfs;
  char **mounted = NULL;
  size_t n = 0;

  if (geteuid() != 0)
    skip();
  assert_non_null(mkdtemp(dir));
  ok.type = "tmpfs";
  ok.source = "tmpfs";
  bad.type = "no-such-fs-type";
  bad.source = "x";
  assert_true(task_mount_all(mounts, 2, dir, &mounted, &n, &err) < 0);
  assert_non_null(strstr(err->msg, "no-such-fs-type"));
  cshim_error_release(&err);
  assert_null(mounted);
  assert_int_equal(statfs(dir, &sfs), 0);
  assert_int_not_equal(sfs.f_type, TMPFS_MAGIC_);

  bad.type = "tmpfs";
  bad.target = "../escape";
  assert_int_equal(task_mount_all(mounts, 2, dir, &mounted, &n, &err), -EINVAL);
  cshim_error_release(&err);
  assert_int_equal(statfs(dir, &sfs), 0);
  assert_int_not_equal(sfs.f_type, TMPFS_MAGIC_);
  rmdir(dir);
}

static void
test_mount_split_lowerdir_as_overlayfs_reads_it(void **state)
{
  cshim_error_t err = NULL;
  char **layers = NULL;
  size_t n = 0, n_data = 0;

  assert_int_equal(task_mount_split_lowerdir("/a:/b\\:c:/d::/e:/f", &layers, &n, &n_data, &err), 0);
  assert_int_equal(n, 5);
  assert_int_equal(n_data, 2);
  assert_string_equal(layers[0], "/a");
  assert_string_equal(layers[1], "/b:c");
  assert_string_equal(layers[2], "/d");
  assert_string_equal(layers[3], "/e");
  assert_string_equal(layers[4], "/f");
  assert_null(layers[5]);
  for (size_t i = 0; i < n; i++)
    free(layers[i]);
  free(layers);

  assert_int_equal(task_mount_split_lowerdir("/only", &layers, &n, &n_data, &err), 0);
  assert_int_equal(n, 1);
  assert_int_equal(n_data, 0);
  free(layers[0]);
  free(layers);

  assert_int_equal(task_mount_split_lowerdir("/a:", &layers, &n, &n_data, &err), -EINVAL);
  assert_non_null(strstr(err->msg, "empty layer"));
  cshim_error_release(&err);
  assert_int_equal(task_mount_split_lowerdir("", &layers, &n, &n_data, &err), -EINVAL);
  cshim_error_release(&err);
}

/* An image of `depth` layers under dir/l/<i>, layer i holding file f<i> and file `top` saying
   i; returns the lowerdir option (top layer first, as containerd orders them). */
static char *
make_layers(const char *dir, size_t depth, const char *long_layer)
{
  size_t cap = 64 + depth * 64 + (long_layer ? strlen(long_layer) + 1 : 0), len = 0;
  char *opt = cshim_xmalloc(cap), path[512];

  len += (size_t)snprintf(opt, cap, "lowerdir=");
  if (long_layer)
    len += (size_t)snprintf(opt + len, cap - len, "%s:", long_layer);
  snprintf(path, sizeof path, "%s/l", dir);
  assert_int_equal(mkdir(path, 0755), 0);
  for (size_t i = depth; i-- > 0;) {
    FILE *f;
    snprintf(path, sizeof path, "%s/l/%zu", dir, i);
    assert_int_equal(mkdir(path, 0755), 0);
    snprintf(path, sizeof path, "%s/l/%zu/f%zu", dir, i, i);
    f = fopen(path, "w");
    assert_non_null(f);
    fclose(f);
    snprintf(path, sizeof path, "%s/l/%zu/top", dir, i);
    f = fopen(path, "w");
    assert_non_null(f);
    fprintf(f, "%zu", i);
    fclose(f);
    len += (size_t)snprintf(opt + len, cap - len, "%s%s/l/%zu", i + 1 < depth ? ":" : "", dir, i);
  }
  return opt;
}

static char *
read_small(const char *path)
{
  static char buf[64];
  FILE *f = fopen(path, "r");
  size_t n;

  if (f == NULL)
    return NULL;
  n = fread(buf, 1, sizeof buf - 1, f);
  buf[n] = '\0';
  fclose(f);
  return buf;
}

static int
rm_cb(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
  (void)st;
  (void)flag;
  (void)ftw;
  return remove(path);
}

static int
rm_tree(const char *path)
{
  return nftw(path, rm_cb, 16, FTW_DEPTH | FTW_PHYS | FTW_MOUNT);
}

static void
test_mount_overlay_of_any_depth(void **state)
{
  char dir[] = "/tmp/cshim-task-mount-XXXXXX";
  char target[128], upper[128], work[128], up_opt[160], work_opt[160], path[640];
  char long_layer[400], *lower;
  Containerd__Types__Mount ov = CONTAINERD__TYPES__MOUNT__INIT;
  Containerd__Types__Mount *mounts[1] = {&ov};
  char *opts[4];
  cshim_error_t err = NULL;
  struct statfs sfs;
  char **mounted = NULL;
  size_t n = 0;
  FILE *f;

  if (geteuid() != 0)
    skip();
  assert_non_null(mkdtemp(dir));
  /* one layer path longer than fsconfig takes as a string (256 bytes) */
  snprintf(long_layer, sizeof long_layer, "%s/%0150d", dir, 0);
  assert_int_equal(mkdir(long_layer, 0755), 0);
  snprintf(long_layer + strlen(long_layer), sizeof long_layer - strlen(long_layer), "/%0150d", 1);
  assert_int_equal(mkdir(long_layer, 0755), 0);
  snprintf(path, sizeof path, "%s/from-long", long_layer);
  f = fopen(path, "w");
  assert_non_null(f);
  fclose(f);

  lower = make_layers(dir, 200, long_layer);
  assert_true(strlen(lower) > 4095);
  snprintf(target, sizeof target, "%s/rootfs", dir);
  snprintf(upper, sizeof upper, "%s/upper", dir);
  snprintf(work, sizeof work, "%s/work", dir);
  assert_int_equal(mkdir(target, 0755), 0);
  assert_int_equal(mkdir(upper, 0755), 0);
  assert_int_equal(mkdir(work, 0755), 0);
  snprintf(up_opt, sizeof up_opt, "upperdir=%s", upper);
  snprintf(work_opt, sizeof work_opt, "workdir=%s", work);
  opts[0] = "index=off";
  opts[1] = up_opt;
  opts[2] = work_opt;
  opts[3] = lower;
  ov.type = "overlay";
  ov.source = "overlay";
  ov.n_options = 4;
  ov.options = opts;

  if (task_mount_all(mounts, 1, target, &mounted, &n, &err) < 0)
    fail_msg("mount: %s", err->msg);
  assert_int_equal(n, 1);
  assert_int_equal(statfs(target, &sfs), 0);
  assert_int_equal(sfs.f_type, 0x794c7630); /* OVERLAYFS_SUPER_MAGIC */
  /* every layer is there, the first listed on top */
  snprintf(path, sizeof path, "%s/f0", target);
  assert_int_equal(access(path, F_OK), 0);
  snprintf(path, sizeof path, "%s/f199", target);
  assert_int_equal(access(path, F_OK), 0);
  snprintf(path, sizeof path, "%s/from-long", target);
  assert_int_equal(access(path, F_OK), 0);
  snprintf(path, sizeof path, "%s/top", target);
  assert_string_equal(read_small(path), "199");
  /* writes go to the upper dir */
  snprintf(path, sizeof path, "%s/new", target);
  f = fopen(path, "w");
  assert_non_null(f);
  fclose(f);
  snprintf(path, sizeof path, "%s/new", upper);
  assert_int_equal(access(path, F_OK), 0);
  task_mount_unmount_all(mounted, n, NULL);
  assert_int_equal(statfs(target, &sfs), 0);
  assert_int_not_equal(sfs.f_type, 0x794c7630);

  /* read-only, lower layers only */
  {
    const char *ro_opts[] = {"ro", lower};
    ov.n_options = 2;
    ov.options = (char **)ro_opts;
    if (task_mount_all(mounts, 1, target, &mounted, &n, &err) < 0)
      fail_msg("mount ro: %s", err->msg);
    assert_int_equal(statfs(target, &sfs), 0);
    assert_true(sfs.f_flags & ST_RDONLY);
    snprintf(path, sizeof path, "%s/f100", target);
    assert_int_equal(access(path, F_OK), 0);
    task_mount_unmount_all(mounted, n, NULL);
  }

  /* a mistake in one option is the kernel's message, and nothing stays mounted */
  {
    const char *bad_opts[] = {"redirect_dir=sideways", lower};
    ov.options = (char **)bad_opts;
    assert_true(task_mount_all(mounts, 1, target, &mounted, &n, &err) < 0);
    assert_non_null(strstr(err->msg, "redirect_dir"));
    cshim_error_release(&err);
    assert_int_equal(statfs(target, &sfs), 0);
    assert_int_not_equal(sfs.f_type, 0x794c7630);
  }

  free(lower);
  assert_int_equal(rm_tree(dir), 0);
}

static size_t
count_fds(void)
{
  size_t n = 0;
  for (int fd = 0; fd < 4096; fd++)
    if (fcntl(fd, F_GETFD) >= 0)
      n++;
  return n;
}

/* The fallback for kernels without `lowerdir+`, run here directly (this kernel has it). */
static void
test_mount_overlay_by_fd_fits_128_layers_in_a_page(void **state)
{
  char dir[] = "/tmp/cshim-task-mount-XXXXXX";
  char target[128], upper[128], work[128], up_opt[160], work_opt[160], path[256];
  char *lower, *opts[4];
  Containerd__Types__Mount ov = CONTAINERD__TYPES__MOUNT__INIT;
  cshim_error_t err = NULL;
  struct statfs sfs;
  size_t fds_before;

  if (geteuid() != 0)
    skip();
  assert_non_null(mkdtemp(dir));
  lower = make_layers(dir, 128, NULL);
  snprintf(target, sizeof target, "%s/rootfs", dir);
  snprintf(upper, sizeof upper, "%s/upper", dir);
  snprintf(work, sizeof work, "%s/work", dir);
  assert_int_equal(mkdir(target, 0755), 0);
  assert_int_equal(mkdir(upper, 0755), 0);
  assert_int_equal(mkdir(work, 0755), 0);
  snprintf(up_opt, sizeof up_opt, "upperdir=%s", upper);
  snprintf(work_opt, sizeof work_opt, "workdir=%s", work);
  opts[0] = "index=off";
  opts[1] = up_opt;
  opts[2] = work_opt;
  opts[3] = lower;
  ov.type = "overlay";
  ov.source = "overlay";
  ov.n_options = 4;
  ov.options = opts;

  fds_before = count_fds();
  if (task_mount_overlay_by_fd(&ov, target, &err) < 0)
    fail_msg("mount: %s", err->msg);
  assert_int_equal(count_fds(), fds_before); /* the layers' descriptors are closed again */
  assert_int_equal(statfs(target, &sfs), 0);
  assert_int_equal(sfs.f_type, 0x794c7630);
  snprintf(path, sizeof path, "%s/f0", target);
  assert_int_equal(access(path, F_OK), 0);
  snprintf(path, sizeof path, "%s/f127", target);
  assert_int_equal(access(path, F_OK), 0);
  snprintf(path, sizeof path, "%s/top", target);
  assert_string_equal(read_small(path), "127");
  assert_int_equal(umount2(target, 0), 0);

  /* a layer that does not exist is named */
  {
    char *missing_opts[] = {"lowerdir=/nonexistent/layer:/tmp"};
    ov.n_options = 1;
    ov.options = missing_opts;
    assert_int_equal(task_mount_overlay_by_fd(&ov, target, &err), -ENOENT);
    assert_non_null(strstr(err->msg, "/nonexistent/layer"));
    cshim_error_release(&err);
  }
  /* more layers than overlayfs stacks: refused before anything is opened */
  {
    size_t cap = 16 + 501 * 4, len = 0;
    char *many = cshim_xmalloc(cap);
    char *many_opts[1] = {many};
    len += (size_t)snprintf(many, cap, "lowerdir=");
    for (size_t i = 0; i < 501; i++)
      len += (size_t)snprintf(many + len, cap - len, "%s/x", i ? ":" : "");
    ov.options = many_opts;
    assert_int_equal(task_mount_overlay_by_fd(&ov, target, &err), -EINVAL);
    assert_non_null(strstr(err->msg, "501 layers"));
    cshim_error_release(&err);
    free(many);
  }
  free(lower);
  assert_int_equal(rm_tree(dir), 0);
}

static void
test_mount_all_refuses_a_symlinked_rootfs(void **state)
{
  char dir[] = "/tmp/cshim-task-mount-XXXXXX";
  char elsewhere[64], rootfs[64];
  Containerd__Types__Mount tmpfs = CONTAINERD__TYPES__MOUNT__INIT;
  Containerd__Types__Mount *mounts[1] = {&tmpfs};
  cshim_error_t err = NULL;
  cshim_autofree char *want = NULL;
  struct statfs sfs;
  char **mounted = NULL;
  size_t n = 0;

  assert_non_null(mkdtemp(dir));
  snprintf(elsewhere, sizeof elsewhere, "%s/elsewhere", dir);
  snprintf(rootfs, sizeof rootfs, "%s/rootfs", dir);
  assert_int_equal(mkdir(elsewhere, 0755), 0);
  assert_int_equal(symlink(elsewhere, rootfs), 0);
  tmpfs.type = "tmpfs";
  tmpfs.source = "tmpfs";
  /* Refused before any mount is tried, so this holds without privileges too. */
  assert_int_equal(task_mount_all(mounts, 1, rootfs, &mounted, &n, &err), -ELOOP);
  cshim_xasprintf(&want, "rootfs `%s` is a symbolic link: refusing to mount on it", rootfs);
  assert_string_equal(err->msg, want);
  cshim_error_release(&err);
  assert_null(mounted);
  assert_int_equal(n, 0);
  assert_int_equal(statfs(elsewhere, &sfs), 0);
  assert_int_not_equal(sfs.f_type, TMPFS_MAGIC_);
  unlink(rootfs);
  rmdir(elsewhere);
  rmdir(dir);
}

int
main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_mount_split_lowerdir_as_overlayfs_reads_it),
      cmocka_unit_test(test_mount_overlay_of_any_depth),
      cmocka_unit_test(test_mount_overlay_by_fd_fits_128_layers_in_a_page),
      cmocka_unit_test(test_mount_options_become_flags_and_data),
      cmocka_unit_test(test_mount_options_later_words_clear_earlier_flags),
      cmocka_unit_test(test_mount_options_overlay_dirs_are_data),
      cmocka_unit_test(test_mount_options_propagation_is_separate),
      cmocka_unit_test(test_mount_options_reject_loop_and_oversized_data),
      cmocka_unit_test(test_mount_all_mounts_in_order_and_unmounts_in_reverse),
      cmocka_unit_test(test_mount_all_undoes_earlier_mounts_when_one_fails),
      cmocka_unit_test(test_mount_all_refuses_a_symlinked_rootfs),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
