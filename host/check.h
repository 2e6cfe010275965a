// SPDX-License-Identifier: Apache-2.0
// What `start` checks of a config before it answers: every module loads, every plugin section
// names a loaded plugin, and a task service is there to serve containerd.
#ifndef HOST_CHECK_H
#define HOST_CHECK_H

#include <cshim/error.h>

#include "config.h"

/* The URI of the plugin that serves containerd's task API (cshim's task.so or a vendor's). */
#define HOST_CHECK_TASK_URI "io.containerd.ttrpc.v1.task"

/* Open and check every module of config (host_plugins_load: file, entry point, ABI, names,
   duplicates, requires and their order), refuse sections in `plugins` for plugins no module
   provides, and require HOST_CHECK_TASK_URI to be provided and not disabled. Nothing is
   initialised; every module is closed again before this returns. Errors name the config file
   and, where the config says it, line and column. Blocking (dlopen): for the short-lived start
   process only. */
int host_check_config(const host_config_t *config, cshim_error_t *err);

#endif
