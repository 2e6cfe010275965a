// SPDX-License-Identifier: Apache-2.0
// Reading the runtime options containerd passes on stdin, in every form its versions use.
#include "options.h"

#include <cshim/file.h>
#include <cshim/runc_options.h>
#include <cshim/util.h>

#include "containerd/runc/options/oci.pb-c.h"
#include "containerd/runtime/bootstrap/v1/bootstrap.pb-c.h"
#include "google/protobuf/any.pb-c.h"
#include "runtimeoptions/v1/api.pb-c.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char *
dup_nonempty(const char *s)
{
  return (s && s[0]) ? cshim_xstrdup(s) : NULL;
}

const char *
host_options_type_name(const char *type_url)
{
  const char *slash = strrchr(type_url, '/');
  return slash ? slash + 1 : type_url;
}

static int
decode_runc(host_start_options_t *o, cshim_error_t *err)
{
  Containerd__Runc__V1__Options *r;

  r = containerd__runc__v1__options__unpack(NULL, o->value_len, o->value);
  if (r == NULL)
    return cshim_error_make(err, EINVAL, "decode `%s` runtime options", o->type_url);
  o->binary_name = dup_nonempty(r->binary_name);
  o->root = dup_nonempty(r->root);
  o->shim_cgroup = dup_nonempty(r->shim_cgroup);
  containerd__runc__v1__options__free_unpacked(r, NULL);
  return 0;
}

static int
decode_runtimeoptions(host_start_options_t *o, cshim_error_t *err)
{
  Runtimeoptions__V1__Options *r;

  cshim_runc_options_t body = {0};
  cshim_autofree char *body_config_path = NULL;
  int ret;

  r = runtimeoptions__v1__options__unpack(NULL, o->value_len, o->value);
  if (r == NULL)
    return cshim_error_make(err, EINVAL, "decode `%s` runtime options", o->type_url);
  o->config_path = dup_nonempty(r->config_path);
  ret = cshim_runc_options_from_toml((const char *)r->config_body.data, r->config_body.len, &body,
                                     &body_config_path, &o->inline_config, err);
  runtimeoptions__v1__options__free_unpacked(r, NULL);
  if (ret < 0)
    return cshim_error_wrap(err, "runtime options");
  o->binary_name = cshim_steal_pointer(&body.binary_name);
  o->root = cshim_steal_pointer(&body.root);
  o->shim_cgroup = cshim_steal_pointer(&body.shim_cgroup);
  cshim_runc_options_clear(&body);
  if (o->config_path == NULL)
    o->config_path = cshim_steal_pointer(&body_config_path);
  if (o->config_path && o->inline_config)
    return cshim_error_make(err, EINVAL,
                            "runtime options: set ConfigPath or CshimConfig, not both");
  return 0;
}

/* Take the options out of an Any (borrowed) into o. */
static int
take_any(const Google__Protobuf__Any *any, host_start_options_t *o, cshim_error_t *err)
{
  const char *name;

  o->kind = HOST_OPTIONS_NONE;
  if (any == NULL || any->type_url == NULL || any->type_url[0] == '\0')
    return 0;
  o->type_url = cshim_xstrdup(any->type_url);
  o->value_len = any->value.len;
  o->value = cshim_xmemdup(any->value.len ? any->value.data : (const uint8_t *)"", any->value.len);

  name = host_options_type_name(o->type_url);
  if (strcmp(name, HOST_OPTIONS_RUNC_TYPE) == 0) {
    o->kind = HOST_OPTIONS_RUNC;
    return decode_runc(o, err);
  }
  if (strcmp(name, HOST_OPTIONS_RUNTIMEOPTIONS_TYPE) == 0) {
    o->kind = HOST_OPTIONS_RUNTIMEOPTIONS;
    return decode_runtimeoptions(o, err);
  }
  /* A vendor plugin may define its own options type; it receives them again with every Create,
     so start has nothing to read from them and must not refuse them. */
  o->kind = HOST_OPTIONS_UNKNOWN;
  return 0;
}

static bool
try_bootstrap(const uint8_t *data, size_t len, const char *id, const char *ns,
              host_start_options_t *o, int *ret, cshim_error_t *err)
{
  Containerd__Runtime__Bootstrap__V1__BootstrapParams *b;
  const Google__Protobuf__Any *any = NULL;

  if (id == NULL || ns == NULL)
    return false;
  b = containerd__runtime__bootstrap__v1__bootstrap_params__unpack(NULL, len, data);
  if (b == NULL)
    return false;
  if (strcmp(b->instance_id, id) != 0 || strcmp(b->namespace_, ns) != 0) {
    containerd__runtime__bootstrap__v1__bootstrap_params__free_unpacked(b, NULL);
    return false;
  }

  o->has_bootstrap = true;
  if (b->_socket_dir_case ==
      CONTAINERD__RUNTIME__BOOTSTRAP__V1__BOOTSTRAP_PARAMS___SOCKET_DIR_SOCKET_DIR)
    o->socket_dir = dup_nonempty(b->socket_dir);
  o->grpc_address = dup_nonempty(b->containerd_grpc_address);
  o->ttrpc_address = dup_nonempty(b->containerd_ttrpc_address);
  for (size_t i = 0; i < b->n_extensions && any == NULL; i++)
    if (b->extensions[i] && b->extensions[i]->value)
      any = b->extensions[i]->value;
  *ret = take_any(any, o, err);
  containerd__runtime__bootstrap__v1__bootstrap_params__free_unpacked(b, NULL);
  return true;
}

int
host_options_decode(const uint8_t *data, size_t len, const char *id, const char *ns,
                    host_start_options_t *out, cshim_error_t *err)
{
  Google__Protobuf__Any *any;
  int ret = 0;

  memset(out, 0, sizeof *out);
  if (len == 0)
    return 0;
  if (try_bootstrap(data, len, id, ns, out, &ret, err))
    return ret;

  any = google__protobuf__any__unpack(NULL, len, data);
  if (any == NULL)
    return cshim_error_make(err, EINVAL,
                            "decode runtime options: stdin is neither a BootstrapParams for this "
                            "task nor a google.protobuf.Any (%zu bytes)",
                            len);
  ret = take_any(any, out, err);
  google__protobuf__any__free_unpacked(any, NULL);
  return ret;
}

void
host_options_clear(host_start_options_t *o)
{
  free(o->socket_dir);
  free(o->grpc_address);
  free(o->ttrpc_address);
  free(o->type_url);
  free(o->value);
  free(o->binary_name);
  free(o->root);
  free(o->shim_cgroup);
  free(o->config_path);
  free(o->inline_config);
  memset(o, 0, sizeof *o);
}

int
host_options_read_all(int fd, uint8_t **data, size_t *len, cshim_error_t *err)
{
  char *text = NULL;
  int ret = cshim_file_read_fd(fd, NULL, SIZE_MAX, &text, len, err);

  if (ret == 0)
    *data = (uint8_t *)text;
  return ret;
}

int
host_options_read_file(const char *path, char **text, size_t *len, cshim_error_t *err)
{
  /* Bundle files (config.json, address, cshim-config) and cgroup files: far below this. */
  return cshim_file_read_small(path, 64u << 20, text, len, err);
}

int
host_options_read_line(const char *dir, const char *name, char **out, cshim_error_t *err)
{
  cshim_autofree char *path = NULL;
  cshim_autofree char *text = NULL;
  size_t len = 0;
  int ret;

  cshim_xasprintf(&path, "%s/%s", dir, name);
  ret = host_options_read_file(path, &text, &len, err);
  if (ret < 0)
    return ret;
  while (len > 0 && (text[len - 1] == '\n' || text[len - 1] == ' ' || text[len - 1] == '\t' ||
                     text[len - 1] == '\r'))
    text[--len] = '\0';
  if (len == 0)
    return cshim_error_make(err, ENODATA, "`%s` is empty", path);
  *out = cshim_steal_pointer(&text);
  return 0;
}
