// SPDX-License-Identifier: Apache-2.0
// The shim's YAML configuration: where it is found, what it may say, and the parsed result.
#ifndef HOST_CONFIG_H
#define HOST_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cshim/config.h>
#include <cshim/error.h>

/* conf/cshim.yaml, compiled in by host/embed.cmake (NUL-terminated; len excludes the NUL). */
extern const char host_default_config[];
extern const size_t host_default_config_len;

/* The source name of the embedded default in messages and in host_config_t.source. */
#define HOST_CONFIG_EMBEDDED "<embedded>"

/* The modules used when the config has no `modules` key (NULL-terminated, static). */
extern const char *const host_config_default_modules[];

struct host_config_tree_s;

/* A parsed config. Everything is owned by the config and freed by host_config_free; node
   pointers (root, plugins, sections) stay valid until then. */
typedef struct host_config_s
{
  char *source;     /* path of the file, or HOST_CONFIG_EMBEDDED */
  char *plugin_dir; /* `plugin_dir`, or the default the caller passed */
  char **modules;   /* `modules` as written (file names or absolute paths), or the defaults */
  size_t n_modules;
  char **disabled; /* `disabled_plugins`: plugin URIs not to init */
  size_t n_disabled;
  int log_level;                      /* CSHIM_LOG_*; CSHIM_LOG_INFO when not set */
  bool log_level_set;                 /* whether the file set `log_level` */
  const cshim_config_node_t *root;    /* the whole document (a map), or NULL when empty */
  const cshim_config_node_t *plugins; /* `plugins` (a map), or NULL when absent or null */
  /* `ttrpc`: limits of the ttrpc server; 0 = the server's default. */
  size_t ttrpc_max_calls_in_flight;        /* ttrpc.max_calls_in_flight */
  size_t ttrpc_buffer_budget;              /* ttrpc.buffer_budget_mib, in bytes */
  uint64_t ttrpc_stalled_frame_timeout_ms; /* ttrpc.stalled_frame_timeout; 0 = default */

  struct host_config_tree_s *tree; /* private: storage of every node */
} host_config_t;

/* Parse a YAML document of len bytes. source_name names it in messages ("path:line:col: ...")
   and becomes c->source. default_plugin_dir is used when the text has no `plugin_dir`.
   On success *out is a new config (caller owns, host_config_free). Any syntax error, unknown
   key, wrong type or duplicate key fails with EINVAL and a message naming file, line, column. */
int host_config_parse(const char *text, size_t len, const char *source_name,
                      const char *default_plugin_dir, host_config_t **out, cshim_error_t *err);

/* Read and parse the file at path. A file that cannot be opened or read fails with its errno
   ("open config file `path`: No such file or directory"). */
int host_config_load_file(const char *path, const char *default_plugin_dir, host_config_t **out,
                          cshim_error_t *err);

/* Find and load the config, first match wins:
   1. explicit_path (the runtime options' ConfigPath), when non-NULL and non-empty;
   2. env_value (the value of CSHIM_CONFIG), when non-NULL and non-empty;
   3. <etc_dir>/<name>.yaml where binary_name (argv[0]; any directory part is ignored) is
      `containerd-shim-<name>-v2`; a missing file falls through;
   4. the embedded default.
   A missing file at step 1 or 2 is an error (ENOENT). Runs before the loop starts: blocking
   file reads are fine here. */
int host_config_resolve(const char *explicit_path, const char *env_value, const char *binary_name,
                        const char *etc_dir, const char *default_plugin_dir, host_config_t **out,
                        cshim_error_t *err);

/* plugins.<uri>, or NULL when there is no such section or it is null. Borrowed from c. */
const cshim_config_node_t *host_config_plugin_section(const host_config_t *c, const char *uri);

/* Whether uri is listed in `disabled_plugins`. */
bool host_config_is_disabled(const host_config_t *c, const char *uri);

/* Absolute path of module i: the entry itself when absolute, else <plugin_dir>/<entry>.
   Caller owns the result; NULL when i is out of range, or the entry is relative and there is
   no plugin_dir (default_plugin_dir was NULL and the config set none). */
char *host_config_module_path(const host_config_t *c, size_t i);

/* Location of the i-th key of map (a MAP node of c's tree), for messages about keys rather
   than values. Returns false when map is not one of c's maps or i is out of range. */
bool host_config_key_location(const host_config_t *c, const cshim_config_node_t *map, size_t i,
                              unsigned *line, unsigned *column);

/* The work done by c's duplicate-key, duplicate-entry and alias lookups, in hash slots visited
   while parsing: each lookup visits O(1) slots, so this stays linear in the number of keys,
   list entries and aliases (tests assert it). */
uint64_t host_config_parse_work(const host_config_t *c);

/* Free c and everything it owns. NULL-safe. */
void host_config_free(host_config_t *c);

/* "containerd-shim-acme-v2" (any directory part is ignored) -> "acme"; NULL when the name does
   not have that shape. Caller owns the result. */
char *host_shim_name_from_binary(const char *argv0);

#endif
