// SPDX-License-Identifier: Apache-2.0
// The ABI probe: compiled with the SDK's sources into a shared library with debug info, so that
// abidw/abidiff (which cannot read a static archive) see every exported SDK function and, through
// cshim_abi_probe's parameter, every public struct, enum and function-pointer table, including
// those only reached through a plugin's descriptor or the host's interfaces. Not installed.
#include "probe.h"

__attribute__((visibility("default"))) void cshim_abi_probe(struct cshim_abi_probe_types *types);

void
cshim_abi_probe(struct cshim_abi_probe_types *types)
{
  (void)types;
}
