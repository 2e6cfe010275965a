// SPDX-License-Identifier: Apache-2.0
// Rootfs mounts: option parsing, overlay layers, mount and unmount.
#ifndef TASK_MOUNT_H
#define TASK_MOUNT_H

#include <stddef.h>

#include <cshim/error.h>
#include <cshim/log.h>

#include "containerd/types/mount.pb-c.h"

/* Split mount options the way containerd does: known flags into *flags, propagation flags into
 *propagation, everything else joined with ',' into *data (malloc'ed, NULL when empty). */
int task_mount_parse_options(char *const *options, size_t n, unsigned long *flags,
                             unsigned long *propagation, char **data, cshim_error_t *err);

/* Mount every entry on target (+ entry->target when set), in order. On failure, what was mounted
   is unmounted again. On success *mounted is a malloc'ed list of *n_mounted paths to hand to
   task_mount_unmount_all. */
int task_mount_all(Containerd__Types__Mount *const *mounts, size_t n, const char *target,
                   char ***mounted, size_t *n_mounted, cshim_error_t *err);

/* Split an overlay `lowerdir` value into its layers as overlayfs does: ':' separates layers, a
   backslash keeps the character after it, "::" starts the data-only layers (the last *n_data of
   *layers). *layers is NULL-terminated, caller frees each and the array. An empty layer is
   EINVAL. Overlays whose data does not fit mount(2)'s page are mounted layer by layer with
   fsconfig `lowerdir+` / `datadir+` (Linux 6.8+), before that with task_mount_overlay_by_fd. */
int task_mount_split_lowerdir(const char *value, char ***layers, size_t *n_layers, size_t *n_data,
                              cshim_error_t *err);

/* Mount overlay m on target with mount(2), every lower layer given as /proc/self/fd/<n> of an
   O_PATH descriptor held for the call (the fallback for kernels without `lowerdir+`; about 200
   layers fit in the page). More than 500 layers (overlayfs's limit) is EINVAL; data still over a
   page fails as task_mount_parse_options does. Propagation flags are left to the caller. */
int task_mount_overlay_by_fd(const Containerd__Types__Mount *m, const char *target,
                             cshim_error_t *err);

/* Unmount the paths in reverse order (lazily when busy) and free the list. */
void task_mount_unmount_all(char **mounted, size_t n, const cshim_logger_t *log);

#endif
