// SPDX-License-Identifier: Apache-2.0
// The host side of <cshim/host.h>: what plugins may see of the shim, and the SIGUSR1 state dump.
#ifndef HOST_INTROSPECT_H
#define HOST_INTROSPECT_H

#include <uv.h>

#include <cshim/config.h>
#include <cshim/host.h>
#include <cshim/log.h>

#include "log.h"
#include "plugins.h"
#include "reaper.h"
#include "ttrpc_server.h"

typedef struct host_introspect_s host_introspect_t;

/* A new introspection object for the daemon on `loop` (borrowed until freed); the start time is
   now. Everything else is attached later, as the daemon creates it. Caller owns the result. */
host_introspect_t *host_introspect_new(uv_loop_t *loop, const char *version);

/* The plugin-facing interface; borrowed from intro until host_introspect_free. */
cshim_host_t *host_introspect_api(host_introspect_t *intro);

/* Attach the parts of the daemon. Each is borrowed until it is detached (NULL) or intro is
   freed. set_server (NULL) keeps the server's last counters: call it before the server is
   closed. set_config takes the source name and the document root. */
void host_introspect_set_log(host_introspect_t *intro, const host_log_t *log);
void host_introspect_set_config(host_introspect_t *intro, const char *source,
                                const cshim_config_node_t *root);
void host_introspect_set_plugins(host_introspect_t *intro, const host_plugins_t *plugins);
void host_introspect_set_server(host_introspect_t *intro, host_ttrpc_server_t *server);
/* The reaper whose started-process counts plugins see (NULL: none, e.g. before it closes). */
void host_introspect_set_reaper(host_introspect_t *intro, const host_reaper_t *reaper);

/* Who closes the descriptors plugins give up through cshim_host_t.close_fd (the crash guard,
   host_upgrade_close_fd); NULL: they are closed at once. data is borrowed until detached. */
void host_introspect_set_close_fd(host_introspect_t *intro, void (*close_fd)(void *data, int fd),
                                  void *data);

/* The config tree as a JSON object text (see cshim_host_t.config_json); "null" for NULL.
   Caller frees. */
char *host_introspect_config_to_json(const cshim_config_node_t *root);

/* Write the state dump to log (SIGUSR1): pid, config, plugins, ttrpc and log counters, started
   processes, and every
   state source (an array source one line per element). Never blocks (the log sink drops). */
void host_introspect_dump(host_introspect_t *intro, const cshim_logger_t *log);

/* Free intro. State sources still registered are dropped (and logged by name if log was set).
   NULL-safe. */
void host_introspect_free(host_introspect_t *intro);

#endif
