// SPDX-License-Identifier: Apache-2.0
// Entry point of containerd-shim-cshim-v2: -v, -info, start, delete, or the daemon.
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "delete.h"
#include "flags.h"
#include "info.h"
#include "shim.h"
#include "start.h"

static int
fail(const char *what, cshim_error_t *err)
{
  fprintf(stderr, "%s: %s\n", what, (*err)->msg);
  cshim_error_release(err);
  return 1;
}

int
main(int argc, char **argv)
{
  cshim_error_t err = NULL;
  host_flags_t flags;
  const char *argv0 = argc > 0 ? argv[0] : "containerd-shim-cshim-v2";

  if (host_flags_parse(argc, argv, &flags, &err) < 0) {
    /* Go's flag package: message, usage, exit status 2. */
    fprintf(stderr, "%s\n", err->msg);
    host_flags_usage(argv0, 2);
    cshim_error_release(&err);
    return 2;
  }
  if (flags.help) {
    host_flags_usage(argv0, 2);
    return 0;
  }
  if (flags.version) {
    const char *base = strrchr(argv0, '/');
    printf("%s:\n  Version:  %s\n  Revision: %s\n", base ? base + 1 : argv0, CSHIM_VERSION,
           host_revision);
    return 0;
  }
  if (flags.info) {
    if (host_info_run(&flags, STDIN_FILENO, STDOUT_FILENO, &err) < 0)
      return fail("info", &err);
    return 0;
  }
  if (flags.namespace_ == NULL || flags.namespace_[0] == '\0') {
    fprintf(stderr, "shim namespace cannot be empty\n");
    return 1;
  }
  if (flags.action == NULL) {
    if (host_shim_serve(&flags, argc, argv, &err) < 0) {
      /* Already logged by the daemon: containerd copies the log FIFO, once is enough. */
      cshim_error_release(&err);
      return 1;
    }
    return 0;
  }
  if (strcmp(flags.action, "start") == 0) {
    if (host_start_run(&flags, STDIN_FILENO, STDOUT_FILENO, &err) < 0)
      return fail("start", &err);
    return 0;
  }
  if (strcmp(flags.action, "delete") == 0) {
    if (host_delete_run(&flags, STDOUT_FILENO, &err) < 0)
      return fail("delete", &err);
    return 0;
  }
  fprintf(stderr, "unknown action `%s`\n", flags.action);
  return 1;
}
