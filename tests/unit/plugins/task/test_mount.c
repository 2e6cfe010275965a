// SPDX-License-Identifier: Apache-2.0
// Tests of mount.c: option words to flags/data as containerd parses them, and real mounts.
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <cshim/util.h>

#include "task.h"

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
