// SPDX-License-Identifier: Apache-2.0
// A vendor module built against a future SDK: its descriptor claims ABI version 999, which the
// host must refuse by name before calling anything in it.
#include <stdlib.h>

#include <cshim/plugin.h>

static int
bad_abi_init(const cshim_init_ctx_t *ctx, void **instance, cshim_error_t *err)
{
  abort(); /* never reached: the loader rejects the module first */
}

static void
bad_abi_close(void *instance)
{
}

__attribute__((visibility("default"))) const cshim_plugin_t *cshim_plugin_entry(void);

__attribute__((visibility("default"))) const cshim_plugin_t *
cshim_plugin_entry(void)
{
  static const cshim_plugin_t desc = {
      .abi_version = 999,
      .struct_size = sizeof(cshim_plugin_t),
      .type = CSHIM_TYPE_TTRPC,
      .id = "task",
      .init = bad_abi_init,
      .close = bad_abi_close,
  };

  return &desc;
}
