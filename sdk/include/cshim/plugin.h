// SPDX-License-Identifier: Apache-2.0
// The plugin ABI: the descriptor a module exports and the context the host hands to init.
#ifndef CSHIM_PLUGIN_H
#define CSHIM_PLUGIN_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include <cshim/config.h>
#include <cshim/error.h>
#include <cshim/host.h>
#include <cshim/log.h>
#include <cshim/reaper.h>
#include <cshim/state.h>
#include <cshim/struct_size.h>
#include <cshim/ttrpc.h>
#include <cshim/version.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The host accepts a module only if its abi_version equals the host's. Bump on any
   incompatible change to this header or to the structs it reaches (together with
   CSHIM_SDK_VERSION_MAJOR); appending members to sized structs is compatible (see
   <cshim/struct_size.h>). 2 = SDK 1.x. */
#define CSHIM_PLUGIN_ABI_VERSION 2u

/* init() return value: "not for this configuration" (containerd's ErrSkipPlugin). The plugin
   is logged as skipped and is invisible to lookups; its close is not called. */
#define CSHIM_PLUGIN_SKIP 1

/* Name of the one function every module exports (written by CSHIM_PLUGIN_DEFINE). */
#define CSHIM_PLUGIN_ENTRY_SYMBOL "cshim_plugin_entry"

/* Plugin types, as containerd names them. */
#define CSHIM_TYPE_TTRPC "io.containerd.ttrpc.v1"
#define CSHIM_TYPE_EVENT "io.containerd.event.v1"
#define CSHIM_TYPE_INTERNAL "io.containerd.internal.v1"
#define CSHIM_TYPE_HTTP "io.containerd.http.v1"

/* Properties (same keys as containerd's InitContext.Properties) and cshim's own. */
#define CSHIM_PROP_STATE_DIR "io.containerd.plugin.state"             /* <bundle>/<uri> */
#define CSHIM_PROP_GRPC_ADDRESS "io.containerd.plugin.grpc.address"   /* -address */
#define CSHIM_PROP_TTRPC_ADDRESS "io.containerd.plugin.ttrpc.address" /* TTRPC_ADDRESS */
#define CSHIM_PROP_NAMESPACE "io.cshim.namespace"                     /* -namespace */
#define CSHIM_PROP_ID "io.cshim.id"                                   /* -id */
#define CSHIM_PROP_BUNDLE "io.cshim.bundle"                           /* the bundle (cwd) */
#define CSHIM_PROP_DEBUG "io.cshim.debug"                             /* "true" with -debug */
#define CSHIM_PROP_DEBUG_SOCKET "io.cshim.debug.socket"               /* -debug-socket, if any */
#define CSHIM_PROP_SOCKET "io.cshim.socket"                           /* own ttrpc address */
#define CSHIM_PROP_BINARY "io.cshim.binary"           /* absolute path of the shim */
#define CSHIM_PROP_CONFIG_PATH "io.cshim.config.path" /* YAML in effect, or <embedded> */
/* The debug socket path the host computed next to its ttrpc socket (named like the ttrpc
   socket, from the hash of its address with "/debug" appended), for when containerd passes
   none (1.6). Set whenever the host knows its socket directory; computed when first asked for
   (it hashes a path), so ask only when it will be used. */
#define CSHIM_PROP_DEBUG_ADDRESS "io.cshim.debug.address"
/* "4" when the daemon inherited a listening Unix socket as fd 4 (containerd 2.x's debug
   socket); unset otherwise. The plugin that serves it takes the fd. */
#define CSHIM_PROP_DEBUG_FD "io.cshim.debug.fd"
/* "true" while the daemon starts from a state handed over by a live upgrade (or a rollback):
   init must not claim shared resources (bind sockets, remove files) that its upgrade_restore gets
   back from the previous image. Unset otherwise. See docs/live-upgrade.md. */
#define CSHIM_PROP_RESTORING "io.cshim.restoring"

typedef struct cshim_plugin_s cshim_plugin_t;
typedef struct cshim_init_ctx_s cshim_init_ctx_t;

/* A plugin instance found by lookup. Fixed layout (an array element). */
typedef struct cshim_plugin_ref_s
{
  const char *type; /* borrowed from the descriptor */
  const char *id;   /* borrowed from the descriptor */
  void *instance;   /* borrowed: owned by that plugin until its close */
} cshim_plugin_ref_t;

/* What the host hands to init. Owned by the host, valid until this plugin's close returns.
   Everything is used on the loop thread only. */
struct cshim_init_ctx_s
{
  uint32_t struct_size; /* sizeof (cshim_init_ctx_t) in the host; fields are only appended */
  const char *uri;      /* "<type>.<id>" */
  uv_loop_t *loop;      /* the host's one loop */

  /* Property by key (CSHIM_PROP_*), or NULL when unset. Borrowed. */
  const char *(*property)(const cshim_init_ctx_t *ctx, const char *key);

  /* This plugin's section of the YAML config (plugins.<uri>), or NULL when there is none. */
  const cshim_config_node_t *config;

  /* Instance of an already initialised plugin. Only types listed in this plugin's requires may
     be looked up (EPERM otherwise); a skipped or unknown plugin is ENOENT. */
  int (*get_by_id)(const cshim_init_ctx_t *ctx, const char *type, const char *id, void **instance,
                   cshim_error_t *err);
  /* Every initialised, non-skipped plugin of a type, in init order. *out is a malloc'ed array
     the caller frees; ENOENT when there is none; EPERM if type is not required. */
  int (*get_by_type)(const cshim_init_ctx_t *ctx, const char *type, cshim_plugin_ref_t **out,
                     size_t *n_out, cshim_error_t *err);

  const cshim_logger_t *log; /* lines carry plugin=<uri> */
  cshim_reaper_t *reaper;    /* the process's SIGCHLD owner */

  void *host_private; /* not for plugins */

  /* Host introspection (appended; NULL when the host offers none). Read it through
     cshim_init_ctx_host, which checks struct_size. */
  cshim_host_t *host;
};

/* The module descriptor. Static storage in the module. */
struct cshim_plugin_s
{
  uint32_t abi_version; /* CSHIM_PLUGIN_ABI_VERSION at build time */
  uint32_t struct_size; /* sizeof (cshim_plugin_t) at build time; lets the struct grow */
  const char *type;     /* e.g. CSHIM_TYPE_TTRPC */
  const char *id;       /* e.g. "task"; uri = type "." id, unique in a shim */
  /* NULL-terminated list of TYPES initialised before this plugin; { "*", NULL } = after every
     other plugin ("*" may not be combined with other types). NULL = none. */
  const char *const *requires;
  /* Create the instance. Return 0 (and set *instance), CSHIM_PLUGIN_SKIP, or a negative errno
     with err set; on failure the plugin has released everything it took. */
  int (*init)(const cshim_init_ctx_t *ctx, void **instance, cshim_error_t *err);
  /* Optional: register services / interceptors on the shim's one ttrpc server. */
  int (*register_ttrpc)(void *instance, cshim_ttrpc_server_t *server, cshim_error_t *err);
  /* Release the instance. Called in reverse init order; handles it closed may still be closing:
     the host runs the loop until they are gone, then dlcloses the module. */
  void (*close)(void *instance);

  /* ---- Live upgrade (appended; optional as a set). A plugin without upgrade_save and
     upgrade_restore makes every upgrade refuse, naming it (never a silent loss). Read these only
     through cshim_plugin_upgrade_hooks, which checks struct_size. The sequence, on the loop
     thread (docs/live-upgrade.md):
       old image: upgrade_busy (polled until every plugin returns NULL) -> upgrade_save -> execve
       new image: init (CSHIM_PROP_RESTORING set) -> upgrade_restore -> register_ttrpc -> loop */

  /* NULL when the instance is quiet: nothing in progress that its saved state could not
     describe (no runtime command or other child being waited for, no timer that belongs to
     an operation). Otherwise a short reason, e.g. "runtime command `start` running for
     container `c1`": the host asks again after the next loop turn, and reports the last reason
     if no quiet point comes in time. The string is borrowed until the next call. While an
     upgrade waits, the host reads no new requests; calls the plugin holds unanswered must be
     ones the new image gets again by re-running them (a Wait parked on an event): the host
     re-dispatches every such call after restore. May be NULL (always quiet). */
  const char *(*upgrade_busy)(void *instance);
  /* Write the instance's state into w (borrowed for the call), in the plugin's own records
     (tags are the plugin's: the host puts them inside a list it owns). Every descriptor the new
     image needs goes through cshim_state_put_fd: it is kept open across the exec. Called at a
     quiet point; must not change the instance (if the exec fails, the old image carries on as
     if nothing happened). A failure refuses the upgrade with err. */
  int (*upgrade_save)(void *instance, cshim_state_writer_t *w, cshim_error_t *err);
  /* In the new image, after init: take over the state r describes (borrowed for the call; a
     copy of the reader may be kept only for the call), or start fresh when r is NULL (the old
     image had no state for this plugin, e.g. it was skipped there). Descriptors come back with
     cshim_state_item_fd. The loop does not run before every plugin has restored: a failure
     (err set) rolls the whole shim back to the old binary, which expects every descriptor
     untouched: do not read, write or close one before returning 0, and do not undo anything
     (close is not called on a rollback). */
  int (*upgrade_restore)(void *instance, const cshim_state_reader_t *r, cshim_error_t *err);
};

/* Sizes in SDK 1.0: the host refuses smaller descriptors; plugins may rely on this much
   context. */
#define CSHIM_PLUGIN_SIZE_1_0 CSHIM_SIZE_THROUGH(cshim_plugin_t, close)
#define CSHIM_INIT_CTX_SIZE_1_0 CSHIM_SIZE_THROUGH(cshim_init_ctx_t, host)

typedef const cshim_plugin_t *(*cshim_plugin_entry_fn)(void);

/* Define the module's entry point. Use once per module, with designated initialisers:
     CSHIM_PLUGIN_DEFINE (.type = CSHIM_TYPE_TTRPC, .id = "task", .requires = task_requires,
                          .init = task_init, .register_ttrpc = task_register, .close = task_close)
*/
#define CSHIM_PLUGIN_DEFINE(...)                                                                   \
  __attribute__((visibility("default"))) const cshim_plugin_t *cshim_plugin_entry(void);           \
  __attribute__((visibility("default"))) const cshim_plugin_t *cshim_plugin_entry(void)            \
  {                                                                                                \
    static const cshim_plugin_t desc = {.abi_version = CSHIM_PLUGIN_ABI_VERSION,                   \
                                        .struct_size = sizeof(cshim_plugin_t),                     \
                                        __VA_ARGS__};                                              \
    return &desc;                                                                                  \
  }

/* The descriptor's live-upgrade hooks, or false when the module was built before they existed
   or leaves save/restore unset. */
static inline bool
cshim_plugin_upgrade_hooks(const cshim_plugin_t *desc)
{
  return CSHIM_HAS_MEMBER(desc, cshim_plugin_t, upgrade_restore) && desc->upgrade_save != NULL &&
         desc->upgrade_restore != NULL;
}

/* upgrade_busy of a descriptor whose hooks are present (cshim_plugin_upgrade_hooks). */
static inline const char *
cshim_plugin_upgrade_busy(const cshim_plugin_t *desc, void *instance)
{
  return desc->upgrade_busy ? desc->upgrade_busy(instance) : NULL;
}

/* Convenience wrappers for the context's function pointers. */
static inline const char *
cshim_init_ctx_property(const cshim_init_ctx_t *ctx, const char *key)
{
  return ctx->property(ctx, key);
}

static inline int
cshim_init_ctx_get_by_id(const cshim_init_ctx_t *ctx, const char *type, const char *id,
                         void **instance, cshim_error_t *err)
{
  return ctx->get_by_id(ctx, type, id, instance, err);
}

/* The host introspection interface, or NULL when the host's context is too old to carry it,
   the host offers none, or its struct_size is below the 1.0 size. Borrowed like the context. */
static inline cshim_host_t *
cshim_init_ctx_host(const cshim_init_ctx_t *ctx)
{
  if (!CSHIM_HAS_MEMBER(ctx, cshim_init_ctx_t, host) || ctx->host == NULL)
    return NULL;
  if (ctx->host->struct_size < CSHIM_HOST_SIZE_1_0)
    return NULL;
  return ctx->host;
}

#ifdef __cplusplus
}
#endif
#endif
