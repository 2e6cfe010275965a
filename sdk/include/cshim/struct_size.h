// SPDX-License-Identifier: Apache-2.0
// Sized structs: how the structs that cross the plugin boundary grow without breaking modules
// built against an older SDK.
#ifndef CSHIM_STRUCT_SIZE_H
#define CSHIM_STRUCT_SIZE_H

#include <stddef.h>
#include <stdint.h>

#include <cshim/error.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The rules, for every struct one side of the plugin boundary fills and the other reads (the
   plugin descriptor, the init context, the host, logger, reaper, publisher and shutdown
   interfaces, ttrpc server, call, service and interceptor tables, the stats and info structs):

   - Its first member is `uint32_t struct_size`, set by whoever fills it to sizeof the struct
     in the SDK it was built with. Fill these structs with designated initialisers, e.g.
       static const cshim_ttrpc_service_t svc = {.struct_size = sizeof(svc), .descriptor = ...};
   - It grows only by appending members; no member is ever removed, moved or retyped within an
     ABI version (CSHIM_PLUGIN_ABI_VERSION).
   - The side that reads it refuses a struct_size of 0 (not set) or one smaller than the struct
     had in SDK 1.0 (CSHIM_<NAME>_SIZE_1_0 next to each struct), with a clear reason, and reads
     a member appended later only when CSHIM_HAS_MEMBER says the struct carries it.
   - Structs the caller provides for the callee to fill (stats, plugin info) are filled up to
     the caller's struct_size only.

   A few structs have a layout fixed for the whole ABI version instead, because they are laid
   out in arrays or built by SDK code on both sides: cshim_ttrpc_method_t (the method table),
   cshim_plugin_ref_t (the get_by_type array), cshim_config_node_t (the config tree) and
   struct cshim_error_s (made and released only by the SDK's cshim_error_* functions). New
   information about them comes through new functions, never new members. */

/* Bytes of `type` up to and including `member`: the smallest struct_size that carries it. */
#define CSHIM_SIZE_THROUGH(type, member) (offsetof(type, member) + sizeof(((type *)0)->member))

/* Whether the sized struct at ptr (not NULL) carries member, i.e. was built by an SDK that
   has it. */
#define CSHIM_HAS_MEMBER(ptr, type, member)                                                        \
  ((size_t)(ptr)->struct_size >= CSHIM_SIZE_THROUGH(type, member))

/* Check a sized struct's struct_size against the size its type had in SDK 1.0 (min_size).
   Returns 0, or -EINVAL with err naming `what` and the reason:
     "<what>: struct_size is 0 (not set: fill it with designated initialisers and
      .struct_size = sizeof the struct)"
     "<what>: struct_size N is smaller than M, its size in cshim SDK 1.0" */
int cshim_struct_size_check(const char *what, uint32_t struct_size, size_t min_size,
                            cshim_error_t *err);

/* Fill a caller-provided sized struct `out` from a complete one (`full`, full_size bytes, same
   type): copies the members that fit in out->struct_size and leaves out->struct_size as it is.
   Copies nothing when out->struct_size is smaller than a struct_size member. */
void cshim_struct_size_copy_out(void *out, const void *full, size_t full_size);

#ifdef __cplusplus
}
#endif
#endif
