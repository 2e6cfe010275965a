// SPDX-License-Identifier: Apache-2.0
// What `start` answers on stdout: which task API version to announce to which containerd, and
// the answer in the form that containerd parses (bare address, JSON, protobuf BootstrapResult).
#ifndef HOST_BOOTSTRAP_H
#define HOST_BOOTSTRAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cshim/error.h>

/* Where the containerd version cache lives when the caller names none (root: a tmpfs dir of
   our own; it holds one small file per containerd binary seen). */
#define HOST_BOOTSTRAP_CACHE_DIR "/run/cshim/containerd-version"

/* How long `start` waits for an existing group shim to answer the v3 probe. */
#define HOST_BOOTSTRAP_PROBE_TIMEOUT_MS 2000

/* The major version of the containerd binary at `binary` (the -publish-binary flag): read from
   `<binary> --version` ("containerd <module> <version> <revision>"), run once per binary and
   remembered in cache_dir (NULL: HOST_BOOTSTRAP_CACHE_DIR for root, else
   $XDG_RUNTIME_DIR/cshim/containerd-version, else no cache) under a name made of the binary's
   device, inode, size and mtime, so an upgraded binary is asked again. The child gets
   /dev/null as stdin and stderr, a clean signal state and no other fds; it is killed after
   5 s. A cache that cannot be written is not an error (the next start asks again). Blocking:
   for the short-lived start process only. Returns 0 with *major set, or a negative errno. */
int host_bootstrap_containerd_major(const char *binary, const char *cache_dir, int *major,
                                    cshim_error_t *err);

/* Parse the output of `containerd --version`: the third field's leading number ("1.7.24~ds1"
   -> 1, "v2.1.9" -> 2). -1 when it is not there. */
int host_bootstrap_parse_version(const char *text);

/* Whether the shim listening at address (unix://…) serves containerd.task.v3.Task: one
   Connect call with an empty id on a private loop, waiting at most timeout_ms. true only on a
   successful answer; Unimplemented, a timeout or any other failure say false. Blocking (start
   only). */
bool host_bootstrap_probe_v3(const char *address, int timeout_ms);

/* The task API version to announce. containerd_major: 0 unknown, else the major version.
   bootstrap_params: stdin was a containerd 2.3+ BootstrapParams (so containerd is 2.3+).
   existing: a shim of the group already listens; existing_v3: it answered the v3 probe.
   3 only to containerd 2.0+ (1.6 takes only a bare address, 1.7 refuses version 3), and for an
   existing shim only when that shim serves v3 (a group's shim started under an older protocol
   keeps it, containerd issue #10888); 2 otherwise. */
int host_bootstrap_version(int containerd_major, bool bootstrap_params, bool existing,
                           bool existing_v3);

/* The bytes `start` prints for address ("unix://…") and version: version 2 -> the bare
   address (every containerd accepts it); version 3 -> JSON {"version":3,"address":…,
   "protocol":"ttrpc"} (containerd 2.0+), or with as_protobuf a containerd.runtime.bootstrap.v1
   BootstrapResult (what containerd 2.3+ tries first). *out is malloc'ed (caller frees). */
int host_bootstrap_answer(const char *address, int version, bool as_protobuf, uint8_t **out,
                          size_t *len, cshim_error_t *err);

#endif
