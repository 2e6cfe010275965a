// SPDX-License-Identifier: Apache-2.0
// The shim's plugin set: load modules, order them, init, register ttrpc services, close, unload.
#ifndef HOST_PLUGINS_H
#define HOST_PLUGINS_H

#include <stddef.h>
#include <uv.h>

#include <cshim/config.h>
#include <cshim/error.h>
#include <cshim/host.h>
#include <cshim/log.h>
#include <cshim/plugin.h>
#include <cshim/reaper.h>
#include <cshim/ttrpc.h>

typedef struct host_plugins_s host_plugins_t;

typedef enum host_plugin_state_e
{
  HOST_PLUGIN_LOADED = 0,  /* opened, checked and ordered; init not run (yet) */
  HOST_PLUGIN_DISABLED,    /* disabled by configuration: never initialised, invisible */
  HOST_PLUGIN_INITIALISED, /* init returned 0: visible to lookups */
  HOST_PLUGIN_SKIPPED,     /* init returned CSHIM_PLUGIN_SKIP: invisible, never closed */
  HOST_PLUGIN_FAILED,      /* init failed */
  HOST_PLUGIN_CLOSED,      /* was initialised, close has run */
} host_plugin_state_t;

/* What the debug plugin (or a log line) shows of one plugin. Borrowed from the set until
   host_plugins_unload. */
typedef struct host_plugin_info_s
{
  const char *uri;  /* "<type>.<id>" */
  const char *type; /* from the module's descriptor */
  const char *id;
  const char *path; /* the module file */
  host_plugin_state_t state;
  size_t n_services;     /* ttrpc services it registered */
  size_t n_interceptors; /* ttrpc interceptors it added */
} host_plugin_info_t;

typedef struct host_plugins_options_s
{
  uv_loop_t *loop; /* the one loop; handed to every plugin */
  /* NULL-terminated key, value, key, value, ... list of properties every plugin sees (CSHIM_PROP_*
     and any other key). Copied. CSHIM_PROP_STATE_DIR is computed per plugin instead:
     "<CSHIM_PROP_BUNDLE>/<uri>", or the bare uri (relative to the cwd, which is the bundle) when
     CSHIM_PROP_BUNDLE is not given; the directory is not created. May be NULL. */
  const char *const *properties;
  /* The config's `plugins` map: uri -> that plugin's section, handed to it as ctx->config. A key
     naming no loaded plugin is an error (unless that uri is disabled); NULL or a null scalar =
     no sections. Borrowed until host_plugins_unload. */
  const cshim_config_node_t *plugins_map;
  /* NULL-terminated uris not to initialise at all. A uri no module provides is logged as a
     warning. Read during host_plugins_load only. May be NULL. */
  const char *const *disabled;
  /* Where the host's and the plugins' lines go. Copied; write and data must stay valid until
     host_plugins_unload. Each plugin gets a logger with the same sink and level whose fields are
     this logger's fields followed by `plugin=<uri>`. NULL = no logging. */
  const cshim_logger_t *log;
  cshim_reaper_t *reaper; /* handed to every plugin; borrowed until host_plugins_unload */
  cshim_host_t *host;     /* introspection handed to every plugin (ctx->host); may be NULL */
  /* Properties worth computing only when a plugin asks (e.g. CSHIM_PROP_DEBUG_ADDRESS, which
     hashes a path): asked for keys not in `properties`; returns a value borrowed until
     host_plugins_unload, or NULL. May be NULL. */
  const char *(*lazy_property)(void *data, const char *key);
  void *lazy_data;
} host_plugins_options_t;

/* Open the modules at paths (absolute; see host_loader_open for every check), reject two modules
   providing the same uri (EEXIST, naming both files) and config sections for unknown plugins
   (EINVAL "config for unknown plugin `<uri>`"), and compute the init order with the registry
   (containerd's Graph; disabled plugins are left out). Nothing but the modules' entry points has
   run when this returns. On success *out is owned by the caller (host_plugins_unload).
   opts may be NULL (no properties, config, logger, loop or reaper).
   Returns 0 or a negative errno with err set; on failure every module is closed again. */
int host_plugins_load(const char *const *paths, size_t n_paths, const host_plugins_options_t *opts,
                      host_plugins_t **out, cshim_error_t *err);

/* Initialise the plugins in order (containerd's shim loader loop). Each gets its init context
   (valid until its close returns): properties, its config section, lookups limited to the types
   it requires (EPERM otherwise, "*" allows all; skipped, disabled, failed and not yet initialised
   plugins are ENOENT), a logger with `plugin=<uri>`, the loop and the reaper.
   CSHIM_PLUGIN_SKIP is logged ("skip loading plugin") and loading goes on. Any failure closes the
   plugins initialised so far, in reverse order, and returns the error wrapped as
   "failed to load plugin `<uri>`: ..."; the caller then drains the loop and unloads.
   Callable once (EBUSY otherwise). Loop thread only. */
int host_plugins_init(host_plugins_t *set, cshim_error_t *err);

/* Call register_ttrpc of every initialised plugin, in init order. Plugins get a server that
   forwards to `server` (so services and interceptors are attributed to the plugin that added
   them; that forwarding server stays valid until host_plugins_unload). If no plugin registered
   any service, fails with ENOENT "required that ttrpc service", as containerd's shim does.
   A plugin's failure is returned wrapped with its uri; the caller then closes the set.
   Callable once, after a successful host_plugins_init (EBUSY / EINVAL otherwise). */
int host_plugins_register(host_plugins_t *set, cshim_ttrpc_server_t *server, cshim_error_t *err);

/* Close every initialised plugin in reverse init order. Idempotent. Handles the plugins closed
   may still be closing: run the loop until they are gone before host_plugins_unload. */
void host_plugins_close(host_plugins_t *set);

/* dlclose every module and free the set. Plugins still initialised are closed first, as a last
   resort (the loop can not be drained in between then). NULL-safe. */
void host_plugins_unload(host_plugins_t *set);

/* Instance of the initialised plugin type.id, or NULL (unknown, disabled, skipped, failed, closed).
   Borrowed: owned by the plugin until its close. */
void *host_plugins_find(const host_plugins_t *set, const char *type, const char *id);

/* Number of plugins in the set, and the i-th (0 <= i < count): first those in init order, then
   the disabled ones in load order. */
size_t host_plugins_count(const host_plugins_t *set);
const host_plugin_info_t *host_plugins_get(const host_plugins_t *set, size_t i);

/* "loaded", "disabled", "initialised", "skipped", "failed", "closed"; static. */
const char *host_plugins_state_name(host_plugin_state_t state);

/* ---- live upgrade ---- */
/* The i-th plugin in init order (i < host_plugins_n_ordered): its uri (borrowed), descriptor
   (NULL once unloaded) and instance (NULL unless it is initialised). */
size_t host_plugins_n_ordered(const host_plugins_t *set);
void host_plugins_ordered(const host_plugins_t *set, size_t i, const char **uri,
                          const cshim_plugin_t **desc, void **instance);

#endif
