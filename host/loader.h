// SPDX-License-Identifier: Apache-2.0
// Opening one plugin module: dlopen, entry point, and every descriptor check before use.
#ifndef HOST_LOADER_H
#define HOST_LOADER_H

#include <stddef.h>

#include <cshim/error.h>
#include <cshim/plugin.h>

/* Most types a module may list in requires. */
#define HOST_LOADER_MAX_REQUIRES 64
/* Longest type, id or required type accepted, in bytes. */
#define HOST_LOADER_MAX_NAME 255

/* An opened, checked module. Fields are read-only for callers. */
typedef struct host_module_s
{
  char *path;                 /* owned: the absolute path it was opened from */
  char *uri;                  /* owned: "<type>.<id>" */
  void *handle;               /* dlopen handle */
  const cshim_plugin_t *desc; /* static in the module: valid until host_loader_close */
  size_t n_requires;          /* entries in desc->requires (0 when NULL) */
} host_module_t;

/* Open the module at path (absolute) with dlopen(RTLD_NOW | RTLD_LOCAL), call its entry point
   (CSHIM_PLUGIN_ENTRY_SYMBOL) and check the descriptor before anything else of it is called:
   ABI version equal to CSHIM_PLUGIN_ABI_VERSION, struct_size covering every field this host
   reads, non-empty printable type and id (no '/', whitespace or control bytes, at most
   HOST_LOADER_MAX_NAME bytes), init and close present, requires well-formed (printable non-empty
   types, "*" alone, no duplicates, not the plugin's own type, at most HOST_LOADER_MAX_REQUIRES).
   Every rejection names the file, e.g. "plugin `/x/bad.so`: ABI version 7, host supports 1".
   On success *out is owned by the caller (release with host_loader_close). Returns 0 or a
   negative errno with err set: EINVAL for a bad path or descriptor, ENOEXEC when the file can
   not be loaded or has no entry point. */
int host_loader_open(const char *path, host_module_t **out, cshim_error_t *err);

/* dlclose the module and free it. Nothing the module provided (descriptor, strings, code) may
   be used afterwards, so every handle the plugin owned must be closed first. NULL-safe. */
void host_loader_close(host_module_t *module);

#endif
