// SPDX-License-Identifier: Apache-2.0
// libFuzzer harness: arbitrary bytes as a cshim YAML config (host_config_parse and the lookups
// the shim makes on a parsed config).
#include <stdint.h>
#include <stdlib.h>

#include <cshim/config.h>

#include "config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  host_config_t *c = NULL;
  cshim_error_t err = NULL;

  if (host_config_parse((const char *)data, size, "fuzz.yaml", "/opt/cshim/plugins", &c, &err) <
      0) {
    /* Every failure explains itself. */
    if (!err || !err->msg || !err->msg[0])
      abort();
    cshim_error_release(&err);
    return 0;
  }
  for (size_t i = 0; i < c->n_modules; i++)
    free(host_config_module_path(c, i));
  host_config_is_disabled(c, "io.containerd.ttrpc.v1.task");
  if (c->plugins) {
    const cshim_config_node_t *task = host_config_plugin_section(c, "io.containerd.ttrpc.v1.task");
    const char *s = NULL;
    uint64_t u = 0;
    bool b = false;

    /* The typed getters plugins use on their section. */
    cshim_config_get_string(task, "runtime", &s, &err);
    cshim_error_release(&err);
    cshim_config_get_bool(task, "systemd_cgroup", &b, &err);
    cshim_error_release(&err);
    cshim_config_get_duration_ms(task, "command_timeout", &u, &err);
    cshim_error_release(&err);
    cshim_config_get_uint(task, "max", &u, &err);
    cshim_error_release(&err);
    for (size_t i = 0; i < c->plugins->n; i++) {
      unsigned line, column;
      host_config_key_location(c, c->plugins, i, &line, &column);
    }
  }
  host_config_free(c);
  return 0;
}
