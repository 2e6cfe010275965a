// SPDX-License-Identifier: Apache-2.0
// runc-style runtime options: decoding containerd.runc.v1.Options and the bundle files
// (options.json, runtime) that let `delete` find a container's runtime again.
#ifndef CSHIM_RUNC_OPTIONS_H
#define CSHIM_RUNC_OPTIONS_H

#include <stdbool.h>
#include <stdint.h>

#include <google/protobuf/any.pb-c.h>

#include <cshim/error.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The type URL of containerd.runc.v1.Options, bare (as containerd sends it). */
#define CSHIM_RUNC_OPTIONS_TYPE "containerd.runc.v1.Options"

/* The type URL of runtimeoptions.v1.Options, the wrapper containerd's CRI plugin sends to a
   runtime type other than runc's: config_path, or (1.7+) config_body, the RuntimeClass's
   `options` table as a TOML document. */
#define CSHIM_RUNTIMEOPTIONS_TYPE "runtimeoptions.v1.Options"

/* Names of the files kept in a bundle. */
#define CSHIM_RUNC_OPTIONS_FILE "options.json"
#define CSHIM_RUNC_RUNTIME_FILE "runtime"

/* The subset of containerd.runc.v1.Options cshim uses. Strings are owned by the struct (NULL =
   unset) and released by cshim_runc_options_clear. A zeroed struct is "no options". */
typedef struct cshim_runc_options_s
{
  bool no_pivot_root;
  bool no_new_keyring;
  bool systemd_cgroup;
  uint32_t io_uid;
  uint32_t io_gid;
  char *binary_name;     /* runtime binary; NULL = caller's default */
  char *root;            /* runtime state root WITHOUT the namespace; NULL = caller's default */
  char *shim_cgroup;     /* cgroup the shim daemon moves into at start */
  char *criu_image_path; /* checkpoint image path */
  char *criu_work_path;  /* checkpoint work path */
  char *criu_path;       /* criu binary for checkpoint/restore (runtime --criu); 1.6/1.7 only */
} cshim_runc_options_t;

/* Release the strings and zero the struct. NULL-safe. */
void cshim_runc_options_clear(cshim_runc_options_t *opts);

/* Deep copy src into dst (dst is overwritten, not cleared first). */
void cshim_runc_options_copy(cshim_runc_options_t *dst, const cshim_runc_options_t *src);

/* Whether type_url names containerd.runc.v1.Options, bare ("containerd.runc.v1.Options") or
   prefixed ("type.googleapis.com/containerd.runc.v1.Options": the part after the last '/'). */
bool cshim_runc_options_is_type(const char *type_url);

/* Decode an options Any (borrowed). Returns 1 and fills *out (zeroed first) when it is a
   containerd.runc.v1.Options, or a runtimeoptions.v1.Options (its config_body read with
   cshim_runc_options_from_toml; ConfigPath and CshimConfig there are `start`'s and dropped
   here); 0 and leaves *out zeroed when any is NULL, has an empty type_url, or is another type;
   -EINVAL when it does not decode or its config_body is refused (the message says why). */
int cshim_runc_options_decode(const Google__Protobuf__Any *any, cshim_runc_options_t *out,
                              cshim_error_t *err);

/* Read a runtimeoptions.v1.Options config_body (len bytes of TOML; see cshim/toml.h) into *out
   (zeroed first). Top-level keys, matched without regard to case as containerd matches runc's:
     BinaryName, Root, ShimCgroup, CriuImagePath, CriuWorkPath, CriuPath (strings),
     SystemdCgroup, NoPivotRoot, NoNewKeyring (booleans), IoUid, IoGid (0..4294967295),
     ConfigPath (string: the cshim YAML config to use, *config_path),
     CshimConfig (string: a whole cshim YAML config inline, *cshim_config).
   config_path and cshim_config may be NULL (then those keys are accepted and dropped); when not
   NULL they are set to NULL or a malloc'ed string. An empty string leaves its option unset. Any
   other key, a table, a value of the wrong type or out of range, or TOML the reader does not
   understand fails with EINVAL and "config_body:<line>:<col>: ..." (nothing is filled). */
int cshim_runc_options_from_toml(const char *body, size_t len, cshim_runc_options_t *out,
                                 char **config_path, char **cshim_config, cshim_error_t *err);

/* Write opts as <bundle>/options.json (JSON object with the protobuf field names, zero values
   left out, as containerd's runc shim writes it), replacing the file atomically (0600). */
int cshim_runc_options_write(const char *bundle, const cshim_runc_options_t *opts,
                             cshim_error_t *err);

/* Read <bundle>/options.json into *out (zeroed first; unknown keys are ignored). Returns 1 when
   the file was read, 0 when it does not exist (*out stays zeroed), negative errno on failure
   (unreadable or malformed file). Small local file: read synchronously. */
int cshim_runc_options_read(const char *bundle, cshim_runc_options_t *out, cshim_error_t *err);

/* Write the runtime binary name as <bundle>/runtime (no newline), atomically (0600). */
int cshim_runc_runtime_write(const char *bundle, const char *binary, cshim_error_t *err);

/* Read <bundle>/runtime. Returns 1 and sets *binary (caller frees; surrounding whitespace
   trimmed) when the file exists and is not empty, 0 when it does not exist or is empty
   (*binary = NULL), negative errno on failure. */
int cshim_runc_runtime_read(const char *bundle, char **binary, cshim_error_t *err);

/* The runtime's --root for a container: "<root>/<namespace>" with root = opts->root when set,
   else default_root. opts may be NULL. Caller frees. */
char *cshim_runc_options_runtime_root(const cshim_runc_options_t *opts, const char *default_root,
                                      const char *namespace_);

#ifdef __cplusplus
}
#endif
#endif
