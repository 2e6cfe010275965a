// SPDX-License-Identifier: Apache-2.0
// Host introspection for plugins: the plugin set, the config in effect, server and log
// counters, and a registry of named state sources (what the debug plugin and SIGUSR1 show).
#ifndef CSHIM_HOST_H
#define CSHIM_HOST_H

#include <stddef.h>
#include <stdint.h>
#include <unistd.h>
#include <uv.h>

#include <cshim/error.h>
#include <cshim/struct_size.h>
#include <cshim/ttrpc.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct cshim_host_s cshim_host_t;

/* One plugin of the shim, as the host sees it. Strings are borrowed from the host until the
   asking plugin's close returns. The caller sets struct_size; plugin_info fills what fits. */
typedef struct cshim_host_plugin_info_s
{
  uint32_t struct_size;
  const char *uri;  /* "<type>.<id>" */
  const char *type; /* e.g. CSHIM_TYPE_TTRPC */
  const char *id;
  const char *path;      /* the module file */
  const char *state;     /* "loaded", "disabled", "initialised", "skipped", "failed", "closed" */
  size_t n_services;     /* ttrpc services it registered */
  size_t n_interceptors; /* ttrpc interceptors it added */
} cshim_host_plugin_info_t;

/* Counters of the host's log sink. The caller sets struct_size; log_stats fills what fits. */
typedef struct cshim_host_log_stats_s
{
  uint32_t struct_size;
  uint64_t lines;   /* lines written */
  uint64_t dropped; /* lines lost because nobody was reading (never blocking instead) */
} cshim_host_log_stats_t;

/* How many processes of one kind the shim has started (forked) since it began. Strings are
   borrowed until the next call on the loop. */
typedef struct cshim_host_process_starts_s
{
  const char *kind;    /* "runtime", "logger", "other" */
  const char *command; /* the runtime's subcommand ("create", "state"...), or "" */
  uint64_t count;
} cshim_host_process_starts_t;

/* A state source: returns a malloc'ed, NUL-terminated JSON text describing some live state of
   a plugin (caller frees), or NULL when it has nothing to say. Called on the loop thread, at any
   time between registration and removal; must not block. A source whose JSON is an array of
   objects with a string member "status" is also counted in metrics, per status value. */
typedef char *(*cshim_state_dump_fn)(void *data);

/* What the host lets plugins see of itself. Owned by the host; valid until the plugin's close
   returns. Every function runs on the loop thread only. The struct only grows at its end:
   check struct_size before using a field added later. */
struct cshim_host_s
{
  uint32_t struct_size;    /* sizeof (cshim_host_t) in the host */
  const char *version;     /* cshim version, static */
  uv_loop_t *loop;         /* the host's one loop (for uv_metrics_idle_time and friends) */
  uint64_t started_ns;     /* cshim_now_ns () when the daemon started */
  int64_t started_unix_ns; /* wall-clock time the daemon started, ns since the Unix epoch */

  /* Plugins: first those in init order, then the disabled ones. plugin_info fails with
     ERANGE past the end, EINVAL for an out->struct_size below the 1.0 size. */
  size_t (*plugin_count)(cshim_host_t *host);
  int (*plugin_info)(cshim_host_t *host, size_t i, cshim_host_plugin_info_t *out,
                     cshim_error_t *err);

  /* Path of the YAML file in effect, or "<embedded>"; borrowed. */
  const char *(*config_source)(cshim_host_t *host);
  /* The whole config in effect as a JSON object (maps as objects, sequences as arrays,
     scalars as strings, null as null); caller frees. */
  char *(*config_json)(cshim_host_t *host);

  /* Counters of the shim's ttrpc server; the last values once it has closed, zero before it
     exists. */
  void (*ttrpc_stats)(cshim_host_t *host, cshim_ttrpc_stats_t *out);
  /* Counters of the log sink. */
  void (*log_stats)(cshim_host_t *host, cshim_host_log_stats_t *out);

  /* Register a state source under a unique name ([A-Za-z0-9_.-], 1-64 chars; EINVAL
     otherwise, EEXIST when taken). name is copied; dump_json and data are borrowed until
     remove_state_source (at the latest in the registering plugin's close). */
  int (*add_state_source)(cshim_host_t *host, const char *name, cshim_state_dump_fn dump_json,
                          void *data, cshim_error_t *err);
  /* Remove the source registered under name with this data; unknown: no-op. */
  void (*remove_state_source)(cshim_host_t *host, const char *name, void *data);
  /* Sources in registration order. state_source_dump runs the i-th source: its JSON (caller
     frees; NULL when the source returned NULL or i is out of range) and, when name is not NULL,
     its name (borrowed until that source is removed). */
  size_t (*state_source_count)(cshim_host_t *host);
  char *(*state_source_dump)(cshim_host_t *host, size_t i, const char **name);

  /* The host's own SDK version, as cshim_sdk_version () returns it in the host. Members
     appended after this one are read only when CSHIM_HAS_MEMBER says the host has them. */
  uint32_t sdk_version;

  /* Appended after 1.0: the processes the shim started, by kind and command, in first-seen
     order. Returns how many (kind, command) pairs there are and, when i is below that, fills
     *out with the i-th. Read it through cshim_host_process_starts. */
  size_t (*process_starts)(cshim_host_t *host, size_t i, cshim_host_process_starts_t *out);

  /* Appended after 1.0: close fd, a descriptor the plugin put in a state document
     (cshim_state_put_fd). While the host keeps a crash snapshot, that snapshot may still name
     fd: the host then keeps it open (its number is not reused) until a snapshot that no longer
     names it has been taken, which it makes due at once (within the current loop turn or the
     next one); otherwise it closes fd now. The plugin gives fd up either way. Read it through
     cshim_host_close_fd. See docs/live-upgrade.md, "Crash survival". */
  void (*close_fd)(cshim_host_t *host, int fd);
};

/* Sizes in SDK 1.0: smaller struct_size values are refused. */
#define CSHIM_HOST_SIZE_1_0 CSHIM_SIZE_THROUGH(cshim_host_t, sdk_version)
#define CSHIM_HOST_PLUGIN_INFO_SIZE_1_0 CSHIM_SIZE_THROUGH(cshim_host_plugin_info_t, n_interceptors)
#define CSHIM_HOST_LOG_STATS_SIZE_1_0 CSHIM_SIZE_THROUGH(cshim_host_log_stats_t, dropped)

/* host->process_starts, or 0 (nothing counted) when the host is too old to offer it. */
static inline size_t
cshim_host_process_starts(cshim_host_t *host, size_t i, cshim_host_process_starts_t *out)
{
  if (host == NULL || !CSHIM_HAS_MEMBER(host, cshim_host_t, process_starts) ||
      host->process_starts == NULL)
    return 0;
  return host->process_starts(host, i, out);
}

/* host->close_fd, or close (fd) when the host is too old to offer it (or is NULL). fd < 0 is
   ignored. */
static inline void
cshim_host_close_fd(cshim_host_t *host, int fd)
{
  if (fd < 0)
    return;
  if (host == NULL || !CSHIM_HAS_MEMBER(host, cshim_host_t, close_fd) || host->close_fd == NULL) {
    close(fd);
    return;
  }
  host->close_fd(host, fd);
}

static inline int
cshim_host_add_state_source(cshim_host_t *host, const char *name, cshim_state_dump_fn dump_json,
                            void *data, cshim_error_t *err)
{
  return host->add_state_source(host, name, dump_json, data, err);
}

static inline void
cshim_host_remove_state_source(cshim_host_t *host, const char *name, void *data)
{
  host->remove_state_source(host, name, data);
}

#ifdef __cplusplus
}
#endif
#endif
