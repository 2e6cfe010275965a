// SPDX-License-Identifier: Apache-2.0
// The SDK's version, at build time (macros) and at run time (the SDK linked into a module).
#ifndef CSHIM_VERSION_H
#define CSHIM_VERSION_H

#ifdef __cplusplus
extern "C" {
#endif

/* Semantic version of the plugin SDK. MAJOR changes only with CSHIM_PLUGIN_ABI_VERSION; a MINOR
   release only adds (functions, constants, members appended to sized structs); a PATCH release
   changes no declaration. */
#define CSHIM_SDK_VERSION_MAJOR 1
#define CSHIM_SDK_VERSION_MINOR 0
#define CSHIM_SDK_VERSION_PATCH 0

/* The version as one number, 0xMMmmpp (1.0.0 = 0x010000), for #if comparisons. */
#define CSHIM_SDK_VERSION_HEX                                                                      \
  ((CSHIM_SDK_VERSION_MAJOR << 16) | (CSHIM_SDK_VERSION_MINOR << 8) | CSHIM_SDK_VERSION_PATCH)

#define CSHIM_SDK_STRINGIFY_(x) #x
#define CSHIM_SDK_STRINGIFY(x) CSHIM_SDK_STRINGIFY_(x)
/* "1.0.0" */
#define CSHIM_SDK_VERSION_STRING                                                                   \
  CSHIM_SDK_STRINGIFY(CSHIM_SDK_VERSION_MAJOR)                                                     \
  "." CSHIM_SDK_STRINGIFY(CSHIM_SDK_VERSION_MINOR) "." CSHIM_SDK_STRINGIFY(CSHIM_SDK_VERSION_PATCH)

/* The version of the SDK library this code was linked with, as CSHIM_SDK_VERSION_HEX and as
   text. The SDK is a static library, so in a plugin these name the SDK the plugin was built
   with; the host's own is in cshim_host_t.sdk_version. */
unsigned cshim_sdk_version(void);
const char *cshim_sdk_version_string(void);

#ifdef __cplusplus
}
#endif
#endif
