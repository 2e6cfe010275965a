// SPDX-License-Identifier: Apache-2.0
// The shim's plugin set: load modules, order them, init, register ttrpc services, close, unload.
#include "plugins.h"

#include <dlfcn.h>

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cshim/util.h>

#include "loader.h"
#include "registry.h"

struct plugin
{
  host_plugins_t *set;
  host_module_t *module;
  host_plugin_info_t info;
  bool allow_all; /* requires is { "*" } */
  char *state_dir;
  char *fields;
  char *type_copy, *id_copy; /* info.type/id once a skipped module is unmapped */
  cshim_logger_t log;
  cshim_init_ctx_t ctx;
  void *instance;
};

/* What plugins see as the ttrpc server during registration: forwards everything to the real
   server and remembers which plugin added what. */
struct server_proxy
{
  cshim_ttrpc_server_t base; /* must stay first: handed to plugins */
  cshim_ttrpc_server_t *real;
  struct plugin *current;
};

enum phase
{
  PHASE_LOADED,
  PHASE_INITIALISED,
  PHASE_REGISTERED,
  PHASE_CLOSED,
};

struct host_plugins_s
{
  struct plugin *plugins; /* load order; never reallocated: contexts point into it */
  size_t n;
  size_t *order; /* init order, indices into plugins */
  size_t n_order;
  size_t *listing; /* init order, then the disabled plugins in load order */
  size_t n_listing;
  char **properties; /* key, value, ..., NULL */
  char *base_fields; /* the host logger's fields, which every plugin's line carries too */
  const cshim_config_node_t *plugins_map;
  cshim_logger_t log;
  uv_loop_t *loop;
  cshim_reaper_t *reaper;
  cshim_host_t *host;
  const char *(*lazy_property)(void *data, const char *key);
  void *lazy_data;
  struct server_proxy proxy;
  size_t n_services;
  enum phase phase;
};

static const char *
find_property(const host_plugins_t *set, const char *key)
{
  for (char **p = set->properties; p[0] && p[1]; p += 2)
    if (strcmp(p[0], key) == 0)
      return p[1];
  return NULL;
}

static char **
copy_properties(const char *const *props)
{
  size_t n = 0;
  char **copy;

  if (props)
    while (props[n] && props[n + 1])
      n += 2;
  copy = cshim_xmalloc((n + 1) * sizeof(*copy));
  for (size_t i = 0; i < n; i++)
    copy[i] = cshim_xstrdup(props[i]);
  copy[n] = NULL;
  return copy;
}

static bool
is_null_node(const cshim_config_node_t *node)
{
  return node->kind == CSHIM_CONFIG_SCALAR && !node->quoted &&
         (node->value == NULL || strcmp(node->value, "") == 0 || strcmp(node->value, "~") == 0 ||
          strcmp(node->value, "null") == 0 || strcmp(node->value, "Null") == 0 ||
          strcmp(node->value, "NULL") == 0);
}

static bool
listed(const char *const *list, const char *s)
{
  if (list)
    for (; *list; list++)
      if (strcmp(*list, s) == 0)
        return true;
  return false;
}

static struct plugin *
find_plugin(const host_plugins_t *set, const char *type, const char *id)
{
  for (size_t i = 0; i < set->n; i++) {
    const host_plugin_info_t *info = &set->plugins[i].info;
    if (strcmp(info->type, type) == 0 && strcmp(info->id, id) == 0)
      return &set->plugins[i];
  }
  return NULL;
}

static bool
may_look_up(const struct plugin *p, const char *type)
{
  const char *const *req = p->module->desc->requires;

  if (p->allow_all)
    return true;
  for (size_t i = 0; i < p->module->n_requires; i++)
    if (strcmp(req[i], type) == 0)
      return true;
  return false;
}

static const char *
property_cb(const cshim_init_ctx_t *ctx, const char *key)
{
  struct plugin *p = ctx->host_private;
  const char *value;

  if (key == NULL)
    return NULL;
  if (strcmp(key, CSHIM_PROP_STATE_DIR) == 0)
    return p->state_dir;
  value = find_property(p->set, key);
  if (value == NULL && p->set->lazy_property)
    value = p->set->lazy_property(p->set->lazy_data, key);
  return value;
}

static int
get_by_id_cb(const cshim_init_ctx_t *ctx, const char *type, const char *id, void **instance,
             cshim_error_t *err)
{
  struct plugin *self = ctx->host_private;
  struct plugin *found;

  *instance = NULL;
  if (type == NULL || id == NULL)
    return cshim_error_make(err, EINVAL, "plugin `%s`: lookup without a type or id",
                            self->info.uri);
  if (!may_look_up(self, type))
    return cshim_error_make(err, EPERM,
                            "plugin `%s` may not look up type `%s`: it is not in its requires",
                            self->info.uri, type);
  found = find_plugin(self->set, type, id);
  /* Skipped, disabled and failed plugins are as good as absent (plugin.h). */
  if (found == NULL || found->info.state != HOST_PLUGIN_INITIALISED)
    return cshim_error_make(err, ENOENT, "plugin `%s.%s` not found", type, id);
  *instance = found->instance;
  return 0;
}

static int
get_by_type_cb(const cshim_init_ctx_t *ctx, const char *type, cshim_plugin_ref_t **out,
               size_t *n_out, cshim_error_t *err)
{
  struct plugin *self = ctx->host_private;
  host_plugins_t *set = self->set;
  cshim_plugin_ref_t *refs;
  size_t n = 0;

  *out = NULL;
  *n_out = 0;
  if (type == NULL)
    return cshim_error_make(err, EINVAL, "plugin `%s`: lookup without a type", self->info.uri);
  if (!may_look_up(self, type))
    return cshim_error_make(err, EPERM,
                            "plugin `%s` may not look up type `%s`: it is not in its requires",
                            self->info.uri, type);

  refs = cshim_xmalloc((set->n_order + 1) * sizeof(*refs));
  for (size_t k = 0; k < set->n_order; k++) {
    struct plugin *p = &set->plugins[set->order[k]];
    if (p->info.state == HOST_PLUGIN_INITIALISED && strcmp(p->info.type, type) == 0)
      refs[n++] =
          (cshim_plugin_ref_t){.type = p->info.type, .id = p->info.id, .instance = p->instance};
  }
  if (n == 0) {
    free(refs);
    return cshim_error_make(err, ENOENT, "no plugin of type `%s`", type);
  }
  *out = refs;
  *n_out = n;
  return 0;
}

static int
proxy_register_service_cb(cshim_ttrpc_server_t *server, const cshim_ttrpc_service_t *service,
                          cshim_error_t *err)
{
  struct server_proxy *proxy = (struct server_proxy *)server;
  host_plugins_t *set = CSHIM_CONTAINER_OF(proxy, host_plugins_t, proxy);
  int ret;

  /* The one door from plugins to the server: a service from a plugin is checked here. */
  ret = cshim_struct_size_check("ttrpc service", service->struct_size, CSHIM_TTRPC_SERVICE_SIZE_1_0,
                                err);
  if (ret < 0)
    return ret;
  ret = proxy->real->ops->register_service(proxy->real, service, err);
  if (ret < 0)
    return ret;
  set->n_services++;
  if (proxy->current) {
    proxy->current->info.n_services++;
    cshim_log_debug(&proxy->current->log, "registered ttrpc service %s",
                    service->name         ? service->name
                    : service->descriptor ? service->descriptor->name
                                          : "(unnamed)");
  }
  return 0;
}

static int
proxy_add_interceptor_cb(cshim_ttrpc_server_t *server, const cshim_ttrpc_interceptor_t *interceptor,
                         cshim_error_t *err)
{
  struct server_proxy *proxy = (struct server_proxy *)server;
  int ret;

  ret = cshim_struct_size_check("ttrpc interceptor", interceptor->struct_size,
                                CSHIM_TTRPC_INTERCEPTOR_SIZE_1_0, err);
  if (ret < 0)
    return ret;
  ret = proxy->real->ops->add_interceptor(proxy->real, interceptor, err);
  if (ret < 0)
    return ret;
  if (proxy->current)
    proxy->current->info.n_interceptors++;
  return 0;
}

static void
proxy_get_stats_cb(cshim_ttrpc_server_t *server, cshim_ttrpc_stats_t *out)
{
  struct server_proxy *proxy = (struct server_proxy *)server;
  cshim_ttrpc_stats_t full = {.struct_size = sizeof full};

  /* out is the plugin's, maybe from an older SDK: fill only what it has room for. */
  proxy->real->ops->get_stats(proxy->real, &full);
  cshim_struct_size_copy_out(out, &full, sizeof full);
}

static const cshim_ttrpc_server_ops_t proxy_ops = {
    .struct_size = sizeof(cshim_ttrpc_server_ops_t),
    .register_service = proxy_register_service_cb,
    .add_interceptor = proxy_add_interceptor_cb,
    .get_stats = proxy_get_stats_cb,
};

static void
unload_setp(host_plugins_t **set)
{
  host_plugins_unload(*set);
}

static int
open_modules(host_plugins_t *set, const char *const *paths, size_t n_paths, cshim_error_t *err)
{
  set->plugins = cshim_xmalloc0((n_paths + 1) * sizeof(*set->plugins));
  for (size_t i = 0; i < n_paths; i++) {
    struct plugin *p = &set->plugins[i];
    int ret;

    ret = host_loader_open(paths[i], &p->module, err);
    if (ret < 0)
      return ret;
    set->n++;
    p->set = set;
    p->info = (host_plugin_info_t){.uri = p->module->uri,
                                   .type = p->module->desc->type,
                                   .id = p->module->desc->id,
                                   .path = p->module->path,
                                   .state = HOST_PLUGIN_LOADED};
    p->allow_all = p->module->n_requires == 1 && strcmp(p->module->desc->requires[0], "*") == 0;

    for (size_t j = 0; j < i; j++)
      if (strcmp(set->plugins[j].info.uri, p->info.uri) == 0)
        return cshim_error_make(err, EEXIST, "plugin `%s` is provided by both `%s` and `%s`",
                                p->info.uri, set->plugins[j].info.path, p->info.path);
  }
  return 0;
}

static void
apply_disabled(host_plugins_t *set, const char *const *disabled)
{
  if (disabled == NULL)
    return;
  for (const char *const *uri = disabled; *uri; uri++) {
    bool found = false;
    for (size_t i = 0; i < set->n; i++)
      if (strcmp(set->plugins[i].info.uri, *uri) == 0) {
        set->plugins[i].info.state = HOST_PLUGIN_DISABLED;
        found = true;
      }
    if (!found)
      cshim_log_warn(&set->log, "disabled plugin `%s` is not provided by any module", *uri);
  }
}

static const cshim_config_node_t *
config_section(const cshim_config_node_t *map, const char *uri)
{
  if (map == NULL || map->kind != CSHIM_CONFIG_MAP)
    return NULL;
  for (size_t i = 0; i < map->n; i++)
    if (strcmp(map->keys[i], uri) == 0)
      return &map->items[i];
  return NULL;
}

/* A misspelt plugin name in the config must not pass silently. */
static int
check_config(host_plugins_t *set, const char *const *disabled, cshim_error_t *err)
{
  const cshim_config_node_t *map = set->plugins_map;

  if (map == NULL || is_null_node(map))
    return 0;
  if (map->kind != CSHIM_CONFIG_MAP)
    return cshim_error_make(err, EINVAL,
                            "%s:%u:%u: plugins: expected a map of plugin uri to section",
                            map->file ? map->file : "<config>", map->line, map->column);
  for (size_t i = 0; i < map->n; i++) {
    const cshim_config_node_t *item = &map->items[i];
    bool known = false;

    for (size_t j = 0; j < set->n && !known; j++)
      known = strcmp(set->plugins[j].info.uri, map->keys[i]) == 0;
    if (!known && !listed(disabled, map->keys[i]))
      return cshim_error_make(err, EINVAL, "%s:%u:%u: config for unknown plugin `%s`",
                              item->file ? item->file : "<config>", item->line, item->column,
                              map->keys[i]);
  }
  return 0;
}

static int
order_plugins(host_plugins_t *set, cshim_error_t *err)
{
  cshim_autofree host_registry_entry_t *entries = cshim_xmalloc0((set->n + 1) * sizeof(*entries));
  cshim_autofree bool *disabled = cshim_xmalloc0((set->n + 1) * sizeof(*disabled));
  int ret;

  for (size_t i = 0; i < set->n; i++) {
    const cshim_plugin_t *d = set->plugins[i].module->desc;
    entries[i] = (host_registry_entry_t){.type = d->type, .id = d->id, .requires = d->requires};
    disabled[i] = set->plugins[i].info.state == HOST_PLUGIN_DISABLED;
  }
  set->order = cshim_xmalloc((set->n + 1) * sizeof(*set->order));
  ret = host_registry_sort(entries, set->n, disabled, set->order, &set->n_order, err);
  if (ret < 0)
    return cshim_error_wrap(err, "ordering plugins");

  set->listing = cshim_xmalloc((set->n + 1) * sizeof(*set->listing));
  memcpy(set->listing, set->order, set->n_order * sizeof(*set->order));
  set->n_listing = set->n_order;
  for (size_t i = 0; i < set->n; i++)
    if (disabled[i])
      set->listing[set->n_listing++] = i;
  return 0;
}

static void
prepare_context(host_plugins_t *set, struct plugin *p)
{
  const char *bundle = find_property(set, CSHIM_PROP_BUNDLE);

  if (bundle && bundle[0]) {
    size_t len = strlen(bundle);
    cshim_xasprintf(&p->state_dir, "%s%s%s", bundle, bundle[len - 1] == '/' ? "" : "/",
                    p->info.uri);
  } else {
    p->state_dir = cshim_xstrdup(p->info.uri);
  }
  p->fields = cshim_log_fields_append(set->base_fields, "plugin", p->info.uri);
  p->log = set->log;
  p->log.fields = p->fields;
  p->ctx = (cshim_init_ctx_t){
      .struct_size = sizeof(cshim_init_ctx_t),
      .uri = p->info.uri,
      .loop = set->loop,
      .property = property_cb,
      .config = config_section(set->plugins_map, p->info.uri),
      .get_by_id = get_by_id_cb,
      .get_by_type = get_by_type_cb,
      .log = &p->log,
      .reaper = set->reaper,
      .host_private = p,
      .host = set->host,
  };
}

int
host_plugins_load(const char *const *paths, size_t n_paths, const host_plugins_options_t *opts,
                  host_plugins_t **out, cshim_error_t *err)
{
  static const host_plugins_options_t no_options = {0};
  __attribute__((cleanup(unload_setp))) host_plugins_t *set = NULL;
  int ret;

  if (opts == NULL)
    opts = &no_options;
  set = cshim_xmalloc0(sizeof(*set));
  set->properties = copy_properties(opts->properties);
  set->plugins_map = opts->plugins_map;
  if (opts->log)
    set->log = *opts->log;
  set->base_fields = cshim_xstrdup(set->log.fields ? set->log.fields : "");
  set->log.fields = set->base_fields;
  set->loop = opts->loop;
  set->reaper = opts->reaper;
  set->host = opts->host;
  set->lazy_property = opts->lazy_property;
  set->lazy_data = opts->lazy_data;
  set->proxy.base.ops = &proxy_ops;
  set->phase = PHASE_LOADED;

  ret = open_modules(set, paths, n_paths, err);
  if (ret < 0)
    return ret;
  apply_disabled(set, opts->disabled);
  ret = check_config(set, opts->disabled, err);
  if (ret < 0)
    return ret;
  ret = order_plugins(set, err);
  if (ret < 0)
    return ret;
  for (size_t i = 0; i < set->n; i++)
    prepare_context(set, &set->plugins[i]);

  *out = cshim_steal_pointer(&set);
  return 0;
}

static void
close_plugins(host_plugins_t *set)
{
  for (size_t k = set->n_order; k-- > 0;) {
    struct plugin *p = &set->plugins[set->order[k]];

    if (p->info.state != HOST_PLUGIN_INITIALISED)
      continue;
    cshim_log_debug(&p->log, "closing plugin");
    /* Invisible to lookups from the moment its close starts. */
    p->info.state = HOST_PLUGIN_CLOSED;
    p->module->desc->close(p->instance);
    p->instance = NULL;
  }
}

/* A skipped plugin keeps nothing alive (that is the contract of CSHIM_PLUGIN_SKIP), so its
   module is unmapped at once: a plugin that only serves when enabled (debug) then costs a
   running shim no memory. Its names are kept for listings. */
static void
unmap_skipped(struct plugin *p)
{
  if (p->module->handle == NULL)
    return;
  p->type_copy = cshim_xstrdup(p->info.type);
  p->id_copy = cshim_xstrdup(p->info.id);
  p->info.type = p->type_copy;
  p->info.id = p->id_copy;
  dlclose(p->module->handle);
  p->module->handle = NULL;
  p->module->desc = NULL;
}

int
host_plugins_init(host_plugins_t *set, cshim_error_t *err)
{
  if (set->phase != PHASE_LOADED)
    return cshim_error_make(err, EBUSY, "plugins already initialised");
  set->phase = PHASE_INITIALISED;

  for (size_t k = 0; k < set->n_order; k++) {
    struct plugin *p = &set->plugins[set->order[k]];
    cshim_error_t plugin_err = NULL;
    void *instance = NULL;
    int ret;

    cshim_log_debug(&p->log, "loading plugin");
    ret = p->module->desc->init(&p->ctx, &instance, &plugin_err);
    if (ret == 0) {
      cshim_error_release(&plugin_err);
      p->instance = instance;
      p->info.state = HOST_PLUGIN_INITIALISED;
      continue;
    }
    if (ret == CSHIM_PLUGIN_SKIP) {
      p->info.state = HOST_PLUGIN_SKIPPED;
      if (plugin_err && plugin_err->msg)
        cshim_log_info(&p->log, "skip loading plugin: %s", plugin_err->msg);
      else
        cshim_log_info(&p->log, "skip loading plugin");
      cshim_error_release(&plugin_err);
      unmap_skipped(p);
      continue;
    }

    p->info.state = HOST_PLUGIN_FAILED;
    if (ret > 0)
      cshim_error_make(&plugin_err, EINVAL, "init returned unexpected value %d", ret);
    else if (plugin_err == NULL)
      cshim_error_sys(&plugin_err, ret, "init failed");
    close_plugins(set);
    set->phase = PHASE_CLOSED;
    *err = plugin_err;
    return cshim_error_wrap(err, "failed to load plugin `%s`", p->info.uri);
  }
  return 0;
}

int
host_plugins_register(host_plugins_t *set, cshim_ttrpc_server_t *server, cshim_error_t *err)
{
  if (set->phase == PHASE_REGISTERED)
    return cshim_error_make(err, EBUSY, "plugins already registered their services");
  if (set->phase != PHASE_INITIALISED)
    return cshim_error_make(err, EINVAL, "plugins are not initialised");
  set->phase = PHASE_REGISTERED;
  set->proxy.real = server;

  for (size_t k = 0; k < set->n_order; k++) {
    struct plugin *p = &set->plugins[set->order[k]];
    int ret;

    if (p->info.state != HOST_PLUGIN_INITIALISED || p->module->desc->register_ttrpc == NULL)
      continue;
    set->proxy.current = p;
    ret = p->module->desc->register_ttrpc(p->instance, &set->proxy.base, err);
    set->proxy.current = NULL;
    if (ret < 0)
      return cshim_error_wrap(err, "plugin `%s`: registering ttrpc services", p->info.uri);
  }
  if (set->n_services == 0)
    return cshim_error_make(err, ENOENT, "required that ttrpc service");
  return 0;
}

void
host_plugins_close(host_plugins_t *set)
{
  if (set == NULL)
    return;
  close_plugins(set);
  set->phase = PHASE_CLOSED;
}

void
host_plugins_unload(host_plugins_t *set)
{
  if (set == NULL)
    return;
  for (size_t i = 0; i < set->n; i++)
    if (set->plugins[i].info.state == HOST_PLUGIN_INITIALISED) {
      cshim_log_warn(&set->log, "unloading plugins that were not closed");
      close_plugins(set);
      break;
    }
  for (size_t i = set->n; i-- > 0;) {
    struct plugin *p = &set->plugins[i];
    host_loader_close(p->module);
    free(p->state_dir);
    free(p->fields);
    free(p->type_copy);
    free(p->id_copy);
  }
  for (char **prop = set->properties; prop && *prop; prop++)
    free(*prop);
  free(set->properties);
  free(set->base_fields);
  free(set->plugins);
  free(set->order);
  free(set->listing);
  free(set);
}

void *
host_plugins_find(const host_plugins_t *set, const char *type, const char *id)
{
  struct plugin *p = find_plugin(set, type, id);

  if (p == NULL || p->info.state != HOST_PLUGIN_INITIALISED)
    return NULL;
  return p->instance;
}

size_t
host_plugins_count(const host_plugins_t *set)
{
  return set->n_listing;
}

const host_plugin_info_t *
host_plugins_get(const host_plugins_t *set, size_t i)
{
  if (i >= set->n_listing)
    return NULL;
  return &set->plugins[set->listing[i]].info;
}

const char *
host_plugins_state_name(host_plugin_state_t state)
{
  switch (state) {
  case HOST_PLUGIN_LOADED:
    return "loaded";
  case HOST_PLUGIN_DISABLED:
    return "disabled";
  case HOST_PLUGIN_INITIALISED:
    return "initialised";
  case HOST_PLUGIN_SKIPPED:
    return "skipped";
  case HOST_PLUGIN_FAILED:
    return "failed";
  case HOST_PLUGIN_CLOSED:
    return "closed";
  }
  return "unknown";
}

/* ---- live upgrade ---- */

size_t
host_plugins_n_ordered(const host_plugins_t *set)
{
  return set ? set->n_order : 0;
}

void
host_plugins_ordered(const host_plugins_t *set, size_t i, const char **uri,
                     const cshim_plugin_t **desc, void **instance)
{
  const struct plugin *p = &set->plugins[set->order[i]];

  *uri = p->info.uri;
  *desc = p->module ? p->module->desc : NULL;
  *instance = p->info.state == HOST_PLUGIN_INITIALISED ? p->instance : NULL;
}
