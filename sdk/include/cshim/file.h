// SPDX-License-Identifier: Apache-2.0
// Small-file helpers: read a small file whole, replace a file atomically (temp file + rename).
#ifndef CSHIM_FILE_H
#define CSHIM_FILE_H

#include <stddef.h>
#include <sys/types.h>

#include <cshim/error.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Read the file at path whole. On success *out is malloc'ed and NUL-terminated (the caller
   frees it) and *len (len may be NULL) is its length without the NUL; on failure *out is NULL.
   Errors (negative errno, *err set): "open `PATH`" (-ENOENT when absent), "read `PATH`", and
   -EFBIG "read `PATH`: larger than MAX bytes" when the file holds more than max bytes. Blocks:
   only for small local files and pseudo-files (bundle files, /proc, cgroupfs). */
int cshim_file_read_small(const char *path, size_t max, char **out, size_t *len,
                          cshim_error_t *err);

/* Read fd (borrowed; a pipe, a file, stdin) to its end, as cshim_file_read_small does with a
   path: *out malloc'ed and NUL-terminated, *len (may be NULL) its length. what names the source
   in messages: "read WHAT" (errno), -EFBIG "read WHAT: larger than MAX bytes"; NULL gives
   "read". max of SIZE_MAX means no limit. Blocks until end of file. */
int cshim_file_read_fd(int fd, const char *what, size_t max, char **out, size_t *len,
                       cshim_error_t *err);

/* Write len bytes of data (borrowed) to fd (borrowed) whole, however many writes it takes.
   Errors: "write WHAT" with the errno ("write" when what is NULL); a write that takes nothing
   is -EIO. Blocks: for pipes and files of short-lived commands, not on a loop. */
int cshim_file_write_fd(int fd, const void *data, size_t len, const char *what, cshim_error_t *err);

/* Replace path with len bytes of data (borrowed), atomically: written to `<dir>/.<name>.tmp`
   with mode, synced, closed, then renamed over path, all relative to an fd of the directory.
   Nothing is written through a symbolic link: the temp file is created with O_EXCL|O_NOFOLLOW
   (a stale regular temp file from an interrupted write is replaced), and a path or temp file
   that is a symbolic link is refused with ELOOP ("write `PATH`: it is a symbolic link; refusing
   to replace it"). On failure the temp file is removed and path is untouched. Other errors:
   "create `TMP`", "write `TMP`", "sync `TMP`", "close `TMP`", "rename `TMP` to `PATH`". */
int cshim_file_write_atomic(const char *path, const void *data, size_t len, mode_t mode,
                            cshim_error_t *err);

/* The same relative to dirfd (borrowed; e.g. the bundle's), for name, a single path component.
   dir names the directory in messages only (NULL = name alone). */
int cshim_file_write_atomic_at(int dirfd, const char *dir, const char *name, const void *data,
                               size_t len, mode_t mode, cshim_error_t *err);

/* As cshim_file_write_atomic, without the sync: for runtime state that does not outlive the
   machine (files in a bundle or under /run). Readers still never see half a file, and a crash
   of the writing process loses nothing written (the kernel holds it); only a crash of the
   machine may, which ends the containers the file describes anyway. The sync is what costs:
   milliseconds on a disk-backed directory. Same errors, without "sync `TMP`". */
int cshim_file_write_state(const char *path, const void *data, size_t len, mode_t mode,
                           cshim_error_t *err);

#ifdef __cplusplus
}
#endif

#endif
