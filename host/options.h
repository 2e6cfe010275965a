// SPDX-License-Identifier: Apache-2.0
// Decoding what `start` and `-info` read on stdin: containerd 2.3+ BootstrapParams or an options
// Any.
#ifndef HOST_OPTIONS_H
#define HOST_OPTIONS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cshim/error.h>

/* What the runtime options Any held. */
enum host_options_kind
{
  HOST_OPTIONS_NONE = 0,       /* no options: empty input, empty type_url, no extensions */
  HOST_OPTIONS_RUNC,           /* containerd.runc.v1.Options */
  HOST_OPTIONS_RUNTIMEOPTIONS, /* runtimeoptions.v1.Options (CRI's wrapper for non-runc shims) */
  HOST_OPTIONS_UNKNOWN,        /* another type (e.g. a vendor plugin's): kept raw, not read */
};

#define HOST_OPTIONS_RUNC_TYPE "containerd.runc.v1.Options"
#define HOST_OPTIONS_RUNTIMEOPTIONS_TYPE "runtimeoptions.v1.Options"

/* The decoded input. Every pointer is owned by the struct (host_options_clear frees them);
   strings that were absent or empty on the wire are NULL. */
typedef struct host_start_options_s
{
  bool has_bootstrap;  /* the input was a BootstrapParams for this -id and -namespace */
  char *socket_dir;    /* BootstrapParams.socket_dir */
  char *grpc_address;  /* BootstrapParams.containerd_grpc_address */
  char *ttrpc_address; /* BootstrapParams.containerd_ttrpc_address */

  int kind;       /* enum host_options_kind */
  char *type_url; /* the options Any's type_url exactly as received */
  uint8_t *value; /* the options Any's raw value (for the daemon and for the -info echo) */
  size_t value_len;

  /* runc option fields start and -info act on: from containerd.runc.v1.Options, or from the
     config_body of runtimeoptions.v1.Options (CRI, containerd 1.7+) */
  char *binary_name;
  char *root;
  char *shim_cgroup;

  /* runtimeoptions.v1.Options.config_path, else config_body's ConfigPath (kind ==
     HOST_OPTIONS_RUNTIMEOPTIONS): the cshim YAML config to use */
  char *config_path;
  /* config_body's CshimConfig: a whole cshim YAML config given inline (never with config_path) */
  char *inline_config;
} host_start_options_t;

/* Decode stdin of `start` (or of `-info`, with id and ns NULL). Empty input -> no options.
   The input is read as BootstrapParams only when it decodes as one AND its instance_id equals id
   and its namespace equals ns (an options Any also decodes as BootstrapParams, so the ids are
   what tell them apart); the options then come from the first extension. Otherwise the input is
   a google.protobuf.Any. The type URL is matched on the part after its last '/', so bare and
   "type.googleapis.com/"-prefixed names are both accepted. Bytes that decode as neither, a
   known type whose value does not decode, or a config_body cshim_runc_options_from_toml refuses
   (or one with both ConfigPath and CshimConfig) fail with EINVAL. *out is overwritten (call
   host_options_clear afterwards, also after a failure). */
int host_options_decode(const uint8_t *data, size_t len, const char *id, const char *ns,
                        host_start_options_t *out, cshim_error_t *err);

/* Free everything o owns and zero it. */
void host_options_clear(host_start_options_t *o);

/* The message name of a type URL: the part after the last '/' (borrowed from type_url). */
const char *host_options_type_name(const char *type_url);

/* Read fd to EOF (blocking; for the short-lived start/delete/-info processes only). *data is
   NUL-terminated (not counted in *len), caller owns. */
int host_options_read_all(int fd, uint8_t **data, size_t *len, cshim_error_t *err);

/* Read a whole file of at most 64 MiB (blocking, as above; cshim_file_read_small). Fails with
   the open/read errno, e.g. ENOENT, or EFBIG. *text is NUL-terminated, caller owns. */
int host_options_read_file(const char *path, char **text, size_t *len, cshim_error_t *err);
/* The one-line file dir/name (a bundle's `address`, `cshim-config`) without trailing white
   space, in *out (caller frees). -ENOENT when absent; -ENODATA "`PATH` is empty" when nothing is
   left. */
int host_options_read_line(const char *dir, const char *name, char **out, cshim_error_t *err);

#endif
