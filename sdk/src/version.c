// SPDX-License-Identifier: Apache-2.0
// The SDK's run-time version query and the checks of sized structs.
#include <cshim/struct_size.h>
#include <cshim/version.h>

#include <errno.h>
#include <string.h>

unsigned
cshim_sdk_version(void)
{
  return CSHIM_SDK_VERSION_HEX;
}

const char *
cshim_sdk_version_string(void)
{
  return CSHIM_SDK_VERSION_STRING;
}

int
cshim_struct_size_check(const char *what, uint32_t struct_size, size_t min_size, cshim_error_t *err)
{
  if (struct_size == 0)
    return cshim_error_make(err, EINVAL,
                            "%s: struct_size is 0 (not set: fill it with designated initialisers "
                            "and .struct_size = sizeof the struct)",
                            what);
  if (struct_size < min_size)
    return cshim_error_make(err, EINVAL,
                            "%s: struct_size %u is smaller than %zu, its size in cshim SDK 1.0",
                            what, struct_size, min_size);
  return 0;
}

void
cshim_struct_size_copy_out(void *out, const void *full, size_t full_size)
{
  uint32_t out_size;
  size_t n;

  memcpy(&out_size, out, sizeof out_size);
  n = out_size < full_size ? out_size : full_size;
  if (n <= sizeof out_size)
    return;
  memcpy((char *)out + sizeof out_size, (const char *)full + sizeof out_size, n - sizeof out_size);
}
