// SPDX-License-Identifier: Apache-2.0
// Go flag-package compatible parsing of the shim's command line (containerd builds it that way).
#define _GNU_SOURCE
#include "flags.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

enum kind
{
  STRING,
  BOOL
};

/* Arrays, not pointers: the table needs no relocation, so it stays in the binary's shared
   read-only pages instead of its private relocated ones (docs/benchmarks.md). */
struct flag_def
{
  char name[20];
  enum kind kind;
  size_t offset;
  char usage[72];
};

#define F(n, k, field, u)                                                                          \
  {                                                                                                \
    n, k, offsetof(host_flags_t, field), u                                                         \
  }
static const struct flag_def defs[] = {
    F("namespace", STRING, namespace_, "namespace that owns the shim"),
    F("id", STRING, id, "id of the task"),
    F("address", STRING, address, "grpc address back to main containerd"),
    F("publish-binary", STRING, publish_binary, "path to publish binary (unused)"),
    F("bundle", STRING, bundle, "path to the bundle if not workdir"),
    F("socket", STRING, socket, "socket path to serve"),
    F("debug-socket", STRING, debug_socket, "debug socket path to serve"),
    F("debug", BOOL, debug, "enable debug output in logs"),
    F("v", BOOL, version, "show the shim version and exit"),
    F("version", BOOL, version, "show the shim version and exit"),
    F("info", BOOL, info, "get the option protobuf from stdin, print the shim info and exit"),
    F("upgrade-state", STRING, upgrade_state, "live upgrade: fd of the handed-over state"),
    F("upgrade-exe", STRING, upgrade_exe, "live upgrade: fd of the previous image's binary"),
    F("upgrade-rollback", STRING, upgrade_rollback, "live upgrade: why the new image handed back"),
    F("upgrade-crash", STRING, upgrade_crash, "crash restart: signal, restarts, first restart"),
};
#undef F

static const struct flag_def *
find(const char *name, size_t len)
{
  for (size_t i = 0; i < sizeof defs / sizeof defs[0]; i++)
    if (strlen(defs[i].name) == len && memcmp(defs[i].name, name, len) == 0)
      return &defs[i];
  return NULL;
}

/* strconv.ParseBool */
static int
parse_bool(const char *s, bool *out)
{
  static const char *const t[] = {"1", "t", "T", "TRUE", "true", "True"};
  static const char *const f[] = {"0", "f", "F", "FALSE", "false", "False"};
  for (size_t i = 0; i < 6; i++) {
    if (strcmp(s, t[i]) == 0)
      return *out = true, 0;
    if (strcmp(s, f[i]) == 0)
      return *out = false, 0;
  }
  return -EINVAL;
}

int
host_flags_parse(int argc, char **argv, host_flags_t *out, cshim_error_t *err)
{
  int i = 1;

  memset(out, 0, sizeof *out);
  while (i < argc) {
    const char *arg = argv[i];
    const char *name, *eq, *value = NULL;
    const struct flag_def *def;
    size_t len;

    if (arg[0] != '-' || arg[1] == '\0')
      break;
    name = arg + 1;
    if (name[0] == '-') {
      name++;
      if (name[0] == '\0') /* "--" ends the flags */
      {
        i++;
        break;
      }
    }
    if (name[0] == '-' || name[0] == '=')
      return cshim_error_make(err, EINVAL, "bad flag syntax: %s", arg);
    i++;
    eq = strchr(name, '=');
    len = eq ? (size_t)(eq - name) : strlen(name);
    if (eq)
      value = eq + 1;

    def = find(name, len);
    if (def == NULL) {
      if ((len == 1 && name[0] == 'h') || (len == 4 && memcmp(name, "help", 4) == 0)) {
        out->help = true;
        return 0;
      }
      return cshim_error_make(err, EINVAL, "flag provided but not defined: -%.*s", (int)len, name);
    }
    if (def->kind == BOOL) {
      bool b = true;
      if (value && parse_bool(value, &b) < 0)
        return cshim_error_make(err, EINVAL, "invalid boolean value \"%s\" for -%s: parse error",
                                value, def->name);
      *(bool *)((char *)out + def->offset) = b;
      continue;
    }
    if (value == NULL) {
      if (i >= argc)
        return cshim_error_make(err, EINVAL, "flag needs an argument: -%s", def->name);
      value = argv[i++];
    }
    *(const char **)((char *)out + def->offset) = value;
  }
  if (i < argc)
    out->action = argv[i];
  return 0;
}

void
host_flags_usage(const char *argv0, int fd)
{
  dprintf(fd, "Usage of %s:\n", argv0);
  for (size_t i = 0; i < sizeof defs / sizeof defs[0]; i++)
    dprintf(fd, "  -%s%s\n    \t%s\n", defs[i].name, defs[i].kind == STRING ? " string" : "",
            defs[i].usage);
}
