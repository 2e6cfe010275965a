// SPDX-License-Identifier: Apache-2.0
// Command-line flags of the shim binary, parsed exactly as Go's flag package does.
#ifndef HOST_FLAGS_H
#define HOST_FLAGS_H

#include <stdbool.h>

#include <cshim/error.h>

typedef struct host_flags_s
{
  const char *namespace_;
  const char *id;
  const char *address;        /* containerd gRPC socket */
  const char *publish_binary; /* accepted, unused (events go to TTRPC_ADDRESS) */
  const char *bundle;         /* delete only */
  const char *socket;         /* serve on this path instead of fd 3 */
  const char *debug_socket;
  bool debug;
  bool version;
  bool info;
  const char *action; /* "start", "delete", or NULL for daemon mode; borrowed from argv */
  bool help;          /* -h / -help was given */
  /* live upgrade (docs/live-upgrade.md): the state memfd, the previous image's binary (O_PATH
     fd), and why the new image handed back (set only on a rollback) */
  const char *upgrade_state;
  const char *upgrade_exe;
  const char *upgrade_rollback;
  const char *upgrade_crash; /* "SIGNAL,RESTARTS,FIRST" after a crash restart */
} host_flags_t;

/* Parse argv[1..]. Strings are borrowed from argv. On a bad flag, fails with EINVAL and a
   message in Go's wording ("flag provided but not defined: -x"); the caller exits 2. */
int host_flags_parse(int argc, char **argv, host_flags_t *out, cshim_error_t *err);

/* Usage text, as the Go shim prints it on -h. */
void host_flags_usage(const char *argv0, int fd);

#endif
