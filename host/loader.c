// SPDX-License-Identifier: Apache-2.0
// Opening one plugin module: dlopen, entry point, and every descriptor check before use.
#include "loader.h"

#include <dlfcn.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cshim/util.h>

/* What this host reads of a descriptor: everything up to and including close. */
#define KNOWN_DESCRIPTOR_SIZE                                                                      \
  (offsetof(cshim_plugin_t, close) + sizeof(((cshim_plugin_t *)0)->close))

static void
close_handle(void **handle)
{
  if (*handle)
    dlclose(*handle);
}

/* Messages must stay readable whatever bytes a broken module hands us. */
static char *
escape(const char *s, size_t max)
{
  size_t len = strnlen(s, max);
  char *out = cshim_xmalloc(len * 4 + 1);
  char *p = out;

  for (size_t i = 0; i < len; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c < 0x20 || c >= 0x7f || c == '`' || c == '\\')
      p += sprintf(p, "\\x%02x", c);
    else
      *p++ = (char)c;
  }
  *p = '\0';
  return out;
}

/* A type, id or required type: what goes into a URI, a directory name and a log field. */
static int
check_name(const char *path, const char *what, const char *s, cshim_error_t *err)
{
  size_t len = strnlen(s, HOST_LOADER_MAX_NAME + 1);

  if (len > HOST_LOADER_MAX_NAME)
    return cshim_error_make(err, EINVAL, "plugin `%s`: %s longer than %d bytes", path, what,
                            HOST_LOADER_MAX_NAME);
  for (size_t i = 0; i < len; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c <= 0x20 || c >= 0x7f || c == '/') {
      cshim_autofree char *shown = escape(s, len);
      return cshim_error_make(err, EINVAL,
                              "plugin `%s`: invalid %s `%s`: byte 0x%02x at offset %zu is not "
                              "allowed (no '/', whitespace or control characters)",
                              path, what, shown, c, i);
    }
  }
  return 0;
}

static int
check_requires(const char *path, const cshim_plugin_t *desc, size_t *n_out, cshim_error_t *err)
{
  const char *const *req = desc->requires;
  size_t n = 0;
  int ret;

  *n_out = 0;
  if (req == NULL)
    return 0;
  while (req[n]) {
    if (n == HOST_LOADER_MAX_REQUIRES)
      return cshim_error_make(err, EINVAL, "plugin `%s`: requires more than %d types", path,
                              HOST_LOADER_MAX_REQUIRES);
    n++;
  }

  for (size_t i = 0; i < n; i++) {
    if (req[i][0] == '\0')
      return cshim_error_make(err, EINVAL, "plugin `%s`: requires: empty type at index %zu", path,
                              i);
    ret = check_name(path, "required type", req[i], err);
    if (ret < 0)
      return ret;
    if (strcmp(req[i], "*") == 0 && n != 1)
      return cshim_error_make(err, EINVAL, "plugin `%s`: requires: `*` combined with other types",
                              path);
    if (strcmp(req[i], desc->type) == 0)
      return cshim_error_make(err, EINVAL, "plugin `%s`: requires its own type `%s`", path,
                              desc->type);
    for (size_t j = 0; j < i; j++)
      if (strcmp(req[i], req[j]) == 0)
        return cshim_error_make(err, EINVAL, "plugin `%s`: requires: type `%s` listed twice", path,
                                req[i]);
  }
  *n_out = n;
  return 0;
}

static int
check_descriptor(const char *path, const cshim_plugin_t *desc, size_t *n_requires,
                 cshim_error_t *err)
{
  int ret;

  if (desc == NULL)
    return cshim_error_make(err, EINVAL, "plugin `%s`: entry point returned no descriptor", path);
  if (desc->abi_version != CSHIM_PLUGIN_ABI_VERSION)
    return cshim_error_make(err, EINVAL, "plugin `%s`: ABI version %u, host supports %u", path,
                            desc->abi_version, CSHIM_PLUGIN_ABI_VERSION);
  /* Fields past struct_size are not the module's: stop before reading any of them. */
  if (desc->struct_size < KNOWN_DESCRIPTOR_SIZE)
    return cshim_error_make(err, EINVAL, "plugin `%s`: descriptor size %u, host needs at least %zu",
                            path, desc->struct_size, KNOWN_DESCRIPTOR_SIZE);
  if (desc->type == NULL || desc->type[0] == '\0')
    return cshim_error_make(err, EINVAL, "plugin `%s`: no type", path);
  ret = check_name(path, "type", desc->type, err);
  if (ret < 0)
    return ret;
  if (desc->id == NULL || desc->id[0] == '\0')
    return cshim_error_make(err, EINVAL, "plugin `%s`: no id", path);
  ret = check_name(path, "id", desc->id, err);
  if (ret < 0)
    return ret;
  if (desc->init == NULL)
    return cshim_error_make(err, EINVAL, "plugin `%s`: no init function", path);
  if (desc->close == NULL)
    return cshim_error_make(err, EINVAL, "plugin `%s`: no close function", path);
  return check_requires(path, desc, n_requires, err);
}

int
host_loader_open(const char *path, host_module_t **out, cshim_error_t *err)
{
  __attribute__((cleanup(close_handle))) void *handle = NULL;
  host_module_t *module;
  cshim_plugin_entry_fn entry;
  const cshim_plugin_t *desc;
  size_t n_requires = 0;
  void *sym;
  int ret;

  if (path == NULL || path[0] != '/')
    return cshim_error_make(err, EINVAL, "plugin `%s`: path is not absolute", path ? path : "");

  dlerror();
  handle = dlopen(path, RTLD_NOW | RTLD_LOCAL);
  if (handle == NULL) {
    const char *why = dlerror();
    return cshim_error_make(err, ENOEXEC, "plugin `%s`: cannot load: %s", path,
                            why ? why : "unknown dlopen error");
  }

  dlerror();
  sym = dlsym(handle, CSHIM_PLUGIN_ENTRY_SYMBOL);
  if (sym == NULL)
    return cshim_error_make(err, ENOEXEC, "plugin `%s`: no entry point `%s`", path,
                            CSHIM_PLUGIN_ENTRY_SYMBOL);

  /* POSIX guarantees a function's address survives the trip through void *. */
  entry = (cshim_plugin_entry_fn)sym;
  desc = entry();
  ret = check_descriptor(path, desc, &n_requires, err);
  if (ret < 0)
    return ret;

  module = cshim_xmalloc0(sizeof(*module));
  module->path = cshim_xstrdup(path);
  cshim_xasprintf(&module->uri, "%s.%s", desc->type, desc->id);
  module->desc = desc;
  module->n_requires = n_requires;
  module->handle = cshim_steal_pointer(&handle);
  *out = module;
  return 0;
}

void
host_loader_close(host_module_t *module)
{
  if (module == NULL)
    return;
  if (module->handle)
    dlclose(module->handle);
  free(module->uri);
  free(module->path);
  free(module);
}
