// SPDX-License-Identifier: Apache-2.0
// Plugin registration checks and init ordering, exactly as containerd/plugin's Register and Graph.
#ifndef HOST_REGISTRY_H
#define HOST_REGISTRY_H

#include <stdbool.h>
#include <stddef.h>

#include <cshim/error.h>

/* Requirement meaning "every other plugin" (containerd's "*"). */
#define HOST_REGISTRY_ALL "*"

/* One registration. All pointers are borrowed for the duration of the call. */
typedef struct host_registry_entry_s
{
  const char *type;
  const char *id;
  /* NULL-terminated list of required TYPES, or NULL for none; { "*", NULL } = after all others. */
  const char *const *requires;
} host_registry_entry_t;

/* Check the registrations as containerd's Register does, in registration order: a non-empty
   type (EINVAL "plugin: no type") and id (EINVAL "plugin: no id"), no (type, id) registered
   twice (EEXIST "plugin `<uri>`: id already registered"), "*" only alone, no empty requirement
   and no requirement of the plugin's own type (EINVAL "plugin `<uri>`: invalid requires: ...").
   Returns 0 or a negative errno with err set. */
int host_registry_validate(const host_registry_entry_t *entries, size_t n, cshim_error_t *err);

/* Compute the init order of the registrations (containerd/plugin's Registry.Graph): walk them in
   registration order, skipping disabled ones; before each unhandled registration R, depth-first
   over R's requires in order, visiting every OTHER enabled registration of that type (every other
   one for "*") in registration order, appending each after its own requirements. Dependencies
   therefore come before dependants and everything else keeps registration order. A required type
   nobody registered is not an error.

   disabled: n flags, or NULL for none. order_out: room for n indices (into entries), filled in
   init order; *n_out: how many were written (the enabled ones). The entries are validated first
   (host_registry_validate). A cycle fails with ELOOP and names it:
   "plugin dependency loop detected: a.x -> b.y -> a.x". Returns 0 or a negative errno with err
   set (order_out is then unspecified). */
int host_registry_sort(const host_registry_entry_t *entries, size_t n, const bool *disabled,
                       size_t *order_out, size_t *n_out, cshim_error_t *err);

#endif
