// SPDX-License-Identifier: Apache-2.0
// The -info mode: describe the shim and its OCI runtime to containerd 2.x as a RuntimeInfo.
#ifndef HOST_INFO_H
#define HOST_INFO_H

#include <cshim/error.h>

#include "flags.h"

/* The runtime name reported when the binary is not called containerd-shim-<name>-v2. */
#define HOST_INFO_DEFAULT_NAME "io.containerd.cshim.v2"

/* Type URL of the OCI runtime features document (JSON) in RuntimeInfo.features. */
#define HOST_INFO_FEATURES_TYPE                                                                    \
  "types.containerd.io/opencontainers/runtime-spec/1/features/Features"

/* The runtime when neither the options nor the config's task section name one. */
#define HOST_INFO_DEFAULT_RUNTIME "runc"

/* RuntimeInfo.annotations: the OCI runtime described, and (only when features are left out) why
   the runtime gave none. */
#define HOST_INFO_RUNTIME_ANNOTATION "io.cshim.runtime"
#define HOST_INFO_FEATURES_ANNOTATION "io.cshim.runtime.features"

/* The source revision (git describe at build time, else the version); generated. */
extern const char host_revision[];

/* -info, §4.8 of the protocol notes: reads the options Any on stdin_fd to EOF (may be empty),
   reads the config as `start` does (the options' ConfigPath or inline CshimConfig,
   $CSHIM_CONFIG, $CSHIM_ETC_DIR or /etc/cshim/<name>.yaml, the embedded default; a config that
   cannot be read is an error), runs `<runtime> [runtime_args] features` where runtime is the
   options' BinaryName, else the task section's `runtime`, else runc, and prints a
   containerd.types.RuntimeInfo on stdout_fd: name "io.containerd.<name>.v2" from the binary name
   containerd-shim-<name>-v2 (HOST_INFO_DEFAULT_NAME otherwise), version {CSHIM_VERSION,
   host_revision}, options = the stdin Any echoed as received (an empty containerd.runc.v1.Options,
   the defaults in effect, when stdin is empty), annotations naming the runtime,
   features = the runtime's JSON when it printed a JSON object and exited 0 (left out otherwise,
   as the runc shim does for runtimes without `features`, with an annotation saying why). Input
   that is not an Any fails with EINVAL. Blocking: run in the short-lived -info process. */
int host_info_run(const host_flags_t *flags, int stdin_fd, int stdout_fd, cshim_error_t *err);

#endif
