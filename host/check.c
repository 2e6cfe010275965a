// SPDX-License-Identifier: Apache-2.0
// What `start` checks of a config before it answers containerd (so a mistake reaches ctr).
#include "check.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <cshim/util.h>

#include "plugins.h"

/* Where the config lists a plugin as disabled, for the message; 0:0 when it cannot tell. */
static void
disabled_location(const host_config_t *c, const char *uri, unsigned *line, unsigned *column)
{
  const cshim_config_node_t *root = c->root;

  *line = *column = 0;
  if (root == NULL || root->kind != CSHIM_CONFIG_MAP)
    return;
  for (size_t i = 0; i < root->n; i++) {
    const cshim_config_node_t *list = &root->items[i];
    if (strcmp(root->keys[i], "disabled_plugins") != 0 || list->kind != CSHIM_CONFIG_SEQ)
      continue;
    for (size_t j = 0; j < list->n; j++)
      if (list->items[j].kind == CSHIM_CONFIG_SCALAR && list->items[j].value &&
          strcmp(list->items[j].value, uri) == 0) {
        *line = list->items[j].line;
        *column = list->items[j].column;
        return;
      }
  }
}

static int
check_task_plugin(const host_config_t *c, host_plugins_t *set, cshim_error_t *err)
{
  unsigned line, column;

  for (size_t i = 0; i < host_plugins_count(set); i++) {
    const host_plugin_info_t *p = host_plugins_get(set, i);
    if (strcmp(p->uri, HOST_CHECK_TASK_URI) != 0)
      continue;
    if (p->state != HOST_PLUGIN_DISABLED)
      return 0;
    disabled_location(c, HOST_CHECK_TASK_URI, &line, &column);
    if (line)
      return cshim_error_make(err, EINVAL,
                              "%s:%u:%u: plugin `%s` is disabled: this shim would serve no task "
                              "API",
                              c->source, line, column, HOST_CHECK_TASK_URI);
    return cshim_error_make(err, EINVAL,
                            "%s: plugin `%s` is disabled: this shim would serve no task API",
                            c->source, HOST_CHECK_TASK_URI);
  }
  return cshim_error_make(err, ENOENT,
                          "%s: no module provides `%s` (the task API containerd calls): add "
                          "task.so, or a vendor's task module, to `modules`",
                          c->source, HOST_CHECK_TASK_URI);
}

int
host_check_config(const host_config_t *config, cshim_error_t *err)
{
  cshim_autofree char **paths = cshim_xmalloc0((config->n_modules + 1) * sizeof *paths);
  cshim_autofree const char **disabled =
      cshim_xmalloc0((config->n_disabled + 1) * sizeof *disabled);
  host_plugins_options_t opts = {0};
  host_plugins_t *set = NULL;
  int ret = 0;

  for (size_t i = 0; i < config->n_modules && ret == 0; i++) {
    paths[i] = host_config_module_path(config, i);
    if (paths[i] == NULL)
      ret = cshim_error_make(err, EINVAL,
                             "%s: module `%s` is not an absolute path and there is no plugin_dir",
                             config->source, config->modules[i]);
  }
  for (size_t i = 0; i < config->n_disabled; i++)
    disabled[i] = config->disabled[i];

  if (ret == 0) {
    opts.plugins_map = config->plugins;
    opts.disabled = disabled;
    ret = host_plugins_load((const char *const *)paths, config->n_modules, &opts, &set, err);
    /* Section errors already start with the file; module errors name only the module. */
    if (ret < 0 && strncmp((*err)->msg, config->source, strlen(config->source)) != 0)
      cshim_error_wrap(err, "config `%s`", config->source);
  }
  if (ret == 0)
    ret = check_task_plugin(config, set, err);
  host_plugins_unload(set);
  for (size_t i = 0; i < config->n_modules; i++)
    free(paths[i]);
  return ret;
}
