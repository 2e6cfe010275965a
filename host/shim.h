// SPDX-License-Identifier: Apache-2.0
// The shim daemon: config, plugins, one ttrpc server, the loop, orderly shutdown.
#ifndef HOST_SHIM_H
#define HOST_SHIM_H

#include <cshim/error.h>

#include "flags.h"

/* Run the daemon until the shutdown service fires (or SIGTERM/SIGINT without one). cwd is the
   bundle. Serves on -socket when given, else on the listening socket inherited as fd 3. Every
   log line carries id=<-id> namespace=<-namespace>. A failure is logged here, once (stderr is
   the bundle's log FIFO): the caller releases err without printing it again. */
int host_shim_serve(const host_flags_t *flags, int argc, char **argv, cshim_error_t *err);

/* The config the daemon and `delete` use: the one recorded in the bundle by `start`, else the
   normal resolution (explicit none, $CSHIM_CONFIG, /etc/cshim/<name>.yaml, embedded). */
struct host_config_s;
int host_shim_load_config(const char *argv0, const char *default_plugin_dir,
                          struct host_config_s **out, cshim_error_t *err);

/* The plugin directory next to a binary: <dir of binary>/../lib/cshim/plugins. Caller frees. */
char *host_shim_default_plugin_dir(const char *binary_path);

#endif
