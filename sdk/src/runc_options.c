// SPDX-License-Identifier: Apache-2.0
// containerd.runc.v1.Options decoding and the options.json / runtime files kept in a bundle.
#include <cshim/runc_options.h>

#include <ctype.h>
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <containerd/runc/options/oci.pb-c.h>
#include <jansson.h>
#include <runtimeoptions/v1/api.pb-c.h>

#include <cshim/file.h>
#include <cshim/toml.h>
#include <cshim/util.h>

#define MAX_FILE_SIZE (64 * 1024)

void
cshim_runc_options_clear(cshim_runc_options_t *opts)
{
  if (opts == NULL)
    return;
  free(opts->binary_name);
  free(opts->root);
  free(opts->shim_cgroup);
  free(opts->criu_image_path);
  free(opts->criu_work_path);
  free(opts->criu_path);
  memset(opts, 0, sizeof *opts);
}

void
cshim_runc_options_copy(cshim_runc_options_t *dst, const cshim_runc_options_t *src)
{
  *dst = *src;
  dst->binary_name = cshim_xstrdup(src->binary_name);
  dst->root = cshim_xstrdup(src->root);
  dst->shim_cgroup = cshim_xstrdup(src->shim_cgroup);
  dst->criu_image_path = cshim_xstrdup(src->criu_image_path);
  dst->criu_work_path = cshim_xstrdup(src->criu_work_path);
  dst->criu_path = cshim_xstrdup(src->criu_path);
}

bool
cshim_runc_options_is_type(const char *type_url)
{
  const char *slash;
  if (type_url == NULL)
    return false;
  slash = strrchr(type_url, '/');
  if (slash)
    type_url = slash + 1;
  return strcmp(type_url, CSHIM_RUNC_OPTIONS_TYPE) == 0;
}

static char *
dup_nonempty(const char *s)
{
  return s && *s ? cshim_xstrdup(s) : NULL;
}

static bool
is_runtimeoptions_type(const char *type_url)
{
  const char *slash = strrchr(type_url, '/');
  return strcmp(slash ? slash + 1 : type_url, CSHIM_RUNTIMEOPTIONS_TYPE) == 0;
}

static int
decode_runtimeoptions(const Google__Protobuf__Any *any, cshim_runc_options_t *out,
                      cshim_error_t *err)
{
  Runtimeoptions__V1__Options *o;
  int ret;

  o = runtimeoptions__v1__options__unpack(NULL, any->value.len, any->value.data);
  if (o == NULL)
    return cshim_error_make(err, EINVAL, "decode `%s`: malformed protobuf", any->type_url);
  ret = cshim_runc_options_from_toml((const char *)o->config_body.data, o->config_body.len, out,
                                     NULL, NULL, err);
  runtimeoptions__v1__options__free_unpacked(o, NULL);
  return ret < 0 ? ret : 1;
}

int
cshim_runc_options_decode(const Google__Protobuf__Any *any, cshim_runc_options_t *out,
                          cshim_error_t *err)
{
  Containerd__Runc__V1__Options *o;

  memset(out, 0, sizeof *out);
  if (any == NULL || any->type_url == NULL || *any->type_url == '\0')
    return 0;
  if (is_runtimeoptions_type(any->type_url))
    return decode_runtimeoptions(any, out, err);
  if (!cshim_runc_options_is_type(any->type_url))
    return 0;

  o = containerd__runc__v1__options__unpack(NULL, any->value.len, any->value.data);
  if (o == NULL)
    return cshim_error_make(err, EINVAL, "decode `%s`: malformed protobuf", any->type_url);

  out->no_pivot_root = o->no_pivot_root;
  out->no_new_keyring = o->no_new_keyring;
  out->systemd_cgroup = o->systemd_cgroup;
  out->io_uid = o->io_uid;
  out->io_gid = o->io_gid;
  out->binary_name = dup_nonempty(o->binary_name);
  out->root = dup_nonempty(o->root);
  out->shim_cgroup = dup_nonempty(o->shim_cgroup);
  out->criu_image_path = dup_nonempty(o->criu_image_path);
  out->criu_work_path = dup_nonempty(o->criu_work_path);
  out->criu_path = dup_nonempty(o->criu_path);
  containerd__runc__v1__options__free_unpacked(o, NULL);
  return 1;
}

enum body_kind
{
  B_STRING,
  B_BOOL,
  B_UINT32,
  B_CONFIG_PATH,
  B_CSHIM_CONFIG,
};

/* The runc option names as containerd's config spells them (runc's Options field names). */
static const struct
{
  char name[16]; /* an array: the table needs no relocation (shared read-only pages) */
  enum body_kind kind;
  size_t offset;
} body_keys[] = {
    {"BinaryName", B_STRING, offsetof(cshim_runc_options_t, binary_name)},
    {"Root", B_STRING, offsetof(cshim_runc_options_t, root)},
    {"ShimCgroup", B_STRING, offsetof(cshim_runc_options_t, shim_cgroup)},
    {"CriuImagePath", B_STRING, offsetof(cshim_runc_options_t, criu_image_path)},
    {"CriuWorkPath", B_STRING, offsetof(cshim_runc_options_t, criu_work_path)},
    {"CriuPath", B_STRING, offsetof(cshim_runc_options_t, criu_path)},
    {"SystemdCgroup", B_BOOL, offsetof(cshim_runc_options_t, systemd_cgroup)},
    {"NoPivotRoot", B_BOOL, offsetof(cshim_runc_options_t, no_pivot_root)},
    {"NoNewKeyring", B_BOOL, offsetof(cshim_runc_options_t, no_new_keyring)},
    {"IoUid", B_UINT32, offsetof(cshim_runc_options_t, io_uid)},
    {"IoGid", B_UINT32, offsetof(cshim_runc_options_t, io_gid)},
    {"ConfigPath", B_CONFIG_PATH, 0},
    {"CshimConfig", B_CSHIM_CONFIG, 0},
};

#define BODY_SOURCE "config_body"

static int
apply_body_entry(const cshim_toml_entry_t *e, cshim_runc_options_t *out, char **config_path,
                 char **cshim_config, cshim_error_t *err)
{
  char *base = (char *)out;
  size_t i;
  char **text = NULL;

  for (i = 0; i < CSHIM_N_ELEMENTS(body_keys); i++)
    if (e->depth == 1 && strcasecmp(e->key, body_keys[i].name) == 0)
      break;
  if (i == CSHIM_N_ELEMENTS(body_keys))
    return cshim_error_make(
        err, EINVAL,
        "%s:%u:%u: unknown runtime option `%s` (cshim reads BinaryName, Root, SystemdCgroup, "
        "NoPivotRoot, NoNewKeyring, ShimCgroup, IoUid, IoGid, CriuImagePath, CriuWorkPath, "
        "CriuPath, ConfigPath and CshimConfig)",
        BODY_SOURCE, e->line, e->column, e->key);

  switch (body_keys[i].kind) {
  case B_STRING:
    text = (char **)(base + body_keys[i].offset);
    break;
  case B_CONFIG_PATH:
    text = config_path;
    break;
  case B_CSHIM_CONFIG:
    text = cshim_config;
    break;
  case B_BOOL:
    if (e->kind != CSHIM_TOML_BOOL)
      goto wrong_type;
    *(bool *)(base + body_keys[i].offset) = e->boolean;
    return 0;
  case B_UINT32:
    if (e->kind != CSHIM_TOML_INT)
      goto wrong_type;
    if (e->integer < 0 || e->integer > (int64_t)UINT32_MAX)
      return cshim_error_make(err, EINVAL, "%s:%u:%u: `%s` = %lld is out of range 0..%u",
                              BODY_SOURCE, e->line, e->column, e->key, (long long)e->integer,
                              UINT32_MAX);
    *(uint32_t *)(base + body_keys[i].offset) = (uint32_t)e->integer;
    return 0;
  }
  if (e->kind != CSHIM_TOML_STRING)
    goto wrong_type;
  if (text) {
    free(*text);
    *text = e->string[0] ? cshim_xstrdup(e->string) : NULL;
  }
  return 0;

wrong_type:
  return cshim_error_make(err, EINVAL, "%s:%u:%u: `%s` must be %s, not %s %s", BODY_SOURCE, e->line,
                          e->column, e->key,
                          body_keys[i].kind == B_BOOL     ? "a boolean"
                          : body_keys[i].kind == B_UINT32 ? "an integer"
                                                          : "a string",
                          e->kind == CSHIM_TOML_INT ? "an" : "a", cshim_toml_kind_name(e->kind));
}

int
cshim_runc_options_from_toml(const char *body, size_t len, cshim_runc_options_t *out,
                             char **config_path, char **cshim_config, cshim_error_t *err)
{
  cshim_toml_t doc = {0};
  cshim_autofree char *path = NULL;
  cshim_autofree char *inline_config = NULL;
  int ret;

  memset(out, 0, sizeof *out);
  if (config_path)
    *config_path = NULL;
  if (cshim_config)
    *cshim_config = NULL;
  ret = cshim_toml_parse(body ? body : "", body ? len : 0, BODY_SOURCE, &doc, err);
  if (ret < 0)
    return ret;
  for (size_t i = 0; i < doc.n; i++) {
    ret = apply_body_entry(&doc.entries[i], out, &path, &inline_config, err);
    if (ret < 0) {
      cshim_toml_clear(&doc);
      cshim_runc_options_clear(out);
      return ret;
    }
  }
  cshim_toml_clear(&doc);
  if (config_path)
    *config_path = cshim_steal_pointer(&path);
  if (cshim_config)
    *cshim_config = cshim_steal_pointer(&inline_config);
  return 0;
}

/* options.json holds one flat object; these are its members (protobuf field names, as Go's
   encoder writes them), in the order written. */
enum field_kind
{
  F_BOOL,
  F_UINT,
  F_STRING
};

struct field
{
  char name[16]; /* an array: the table needs no relocation (shared read-only pages) */
  enum field_kind kind;
  size_t offset;
};

static const struct field fields[] = {
    {"no_pivot_root", F_BOOL, offsetof(cshim_runc_options_t, no_pivot_root)},
    {"no_new_keyring", F_BOOL, offsetof(cshim_runc_options_t, no_new_keyring)},
    {"shim_cgroup", F_STRING, offsetof(cshim_runc_options_t, shim_cgroup)},
    {"io_uid", F_UINT, offsetof(cshim_runc_options_t, io_uid)},
    {"io_gid", F_UINT, offsetof(cshim_runc_options_t, io_gid)},
    {"binary_name", F_STRING, offsetof(cshim_runc_options_t, binary_name)},
    {"root", F_STRING, offsetof(cshim_runc_options_t, root)},
    {"criu_path", F_STRING, offsetof(cshim_runc_options_t, criu_path)},
    {"systemd_cgroup", F_BOOL, offsetof(cshim_runc_options_t, systemd_cgroup)},
    {"criu_image_path", F_STRING, offsetof(cshim_runc_options_t, criu_image_path)},
    {"criu_work_path", F_STRING, offsetof(cshim_runc_options_t, criu_work_path)},
};

static void
decref_json(json_t **j)
{
  json_decref(*j);
}

/* The member of opts a field names, as JSON; NULL for a zero value (left out, as Go does) or
   a string that is not UTF-8 (*bad set). */
static json_t *
field_to_json(const struct field *f, const cshim_runc_options_t *opts, bool *bad)
{
  const char *base = (const char *)opts + f->offset;
  const char *str;
  json_t *v;

  switch (f->kind) {
  case F_BOOL:
    return *(const bool *)base ? json_true() : NULL;
  case F_UINT:
    return *(const uint32_t *)base ? json_integer(*(const uint32_t *)base) : NULL;
  case F_STRING:
    str = *(char *const *)base;
    if (str == NULL || *str == '\0')
      return NULL;
    v = json_string(str);
    if (v == NULL) /* not UTF-8, which a protobuf string never is */
      *bad = true;
    return v;
  }
  return NULL;
}

static int
write_file_atomic(const char *bundle, const char *name, const char *data, size_t len,
                  cshim_error_t *err)
{
  cshim_autofree char *path = NULL;

  cshim_xasprintf(&path, "%s/%s", bundle, name);
  return cshim_file_write_state(path, data, len, 0600, err);
}

int
cshim_runc_options_write(const char *bundle, const cshim_runc_options_t *opts, cshim_error_t *err)
{
  __attribute__((cleanup(decref_json))) json_t *obj = json_object();
  cshim_autofree char *text = NULL;

  for (size_t i = 0; i < CSHIM_N_ELEMENTS(fields); i++) {
    bool bad = false;
    json_t *v = field_to_json(&fields[i], opts, &bad);

    if (bad)
      return cshim_error_make(err, EINVAL, "write `%s`: `%s` is not valid UTF-8",
                              CSHIM_RUNC_OPTIONS_FILE, fields[i].name);
    if (v)
      json_object_set_new(obj, fields[i].name, v);
  }
  /* Members keep their insertion order (jansson >= 2.8): the field order above. */
  text = json_dumps(obj, JSON_COMPACT);
  if (text == NULL)
    return cshim_error_make(err, ENOMEM, "write `%s`: cannot encode JSON", CSHIM_RUNC_OPTIONS_FILE);
  return write_file_atomic(bundle, CSHIM_RUNC_OPTIONS_FILE, text, strlen(text), err);
}

int
cshim_runc_runtime_write(const char *bundle, const char *binary, cshim_error_t *err)
{
  return write_file_atomic(bundle, CSHIM_RUNC_RUNTIME_FILE, binary, strlen(binary), err);
}

/* Read a small file. 1 = read (NUL-terminated), 0 = absent, <0 = error. */
static int
read_small_file(const char *path, char **out, size_t *len, cshim_error_t *err)
{
  int ret = cshim_file_read_small(path, MAX_FILE_SIZE, out, len, err);

  if (ret == -ENOENT) {
    cshim_error_release(err);
    return 0;
  }
  return ret < 0 ? ret : 1;
}

int
cshim_runc_runtime_read(const char *bundle, char **binary, cshim_error_t *err)
{
  cshim_autofree char *path = NULL;
  cshim_autofree char *data = NULL;
  size_t len = 0, start = 0;
  int ret;

  *binary = NULL;
  cshim_xasprintf(&path, "%s/%s", bundle, CSHIM_RUNC_RUNTIME_FILE);
  ret = read_small_file(path, &data, &len, err);
  if (ret <= 0)
    return ret;
  while (start < len && isspace((unsigned char)data[start]))
    start++;
  while (len > start && isspace((unsigned char)data[len - 1]))
    len--;
  if (len == start)
    return 0;
  *binary = cshim_xstrndup(data + start, len - start);
  return 1;
}

/* Go's encoder writes the protobuf JSON names; accept the lowerCamel spelling as well. */
static const struct field *
find_field(const char *key)
{
  for (size_t i = 0; i < CSHIM_N_ELEMENTS(fields); i++) {
    const char *a = fields[i].name, *b = key;
    if (strcmp(a, b) == 0)
      return &fields[i];
    while (*a && *b) {
      if (*a == '_') {
        a++;
        if (toupper((unsigned char)*a) != *b)
          break;
      } else if (*a != *b)
        break;
      a++;
      b++;
    }
    if (*a == '\0' && *b == '\0')
      return &fields[i];
  }
  return NULL;
}

/* Store one member's value; null leaves the field as it is. -1 for a value of the wrong type. */
static int
parse_field(json_t *value, const struct field *f, cshim_runc_options_t *out)
{
  char *base = (char *)out + f->offset;

  if (json_is_null(value))
    return 0;
  switch (f->kind) {
  case F_BOOL:
    if (!json_is_boolean(value))
      return -1;
    *(bool *)base = json_is_true(value);
    return 0;
  case F_UINT: {
    /* An integer in range; Go writes integers, a whole real (1.0) is accepted as well. */
    double d = json_number_value(value);

    if (!json_is_number(value) || d < 0 || d > 4294967295.0 || d != (double)(uint32_t)d)
      return -1;
    *(uint32_t *)base = (uint32_t)d;
    return 0;
  }
  case F_STRING:
    if (!json_is_string(value))
      return -1;
    free(*(char **)base);
    *(char **)base = json_string_length(value) ? cshim_xstrdup(json_string_value(value)) : NULL;
    return 0;
  }
  return -1;
}

int
cshim_runc_options_read(const char *bundle, cshim_runc_options_t *out, cshim_error_t *err)
{
  cshim_autofree char *path = NULL;
  cshim_autofree char *data = NULL;
  __attribute__((cleanup(decref_json))) json_t *root = NULL;
  json_error_t jerr;
  const char *key;
  json_t *value;
  size_t len = 0;
  int ret;

  memset(out, 0, sizeof *out);
  cshim_xasprintf(&path, "%s/%s", bundle, CSHIM_RUNC_OPTIONS_FILE);
  ret = read_small_file(path, &data, &len, err);
  if (ret <= 0)
    return ret;
  /* \u0000 is refused (no JSON_ALLOW_NUL): a C string cannot hold it. */
  root = json_loadb(data, len, 0, &jerr);
  if (root == NULL)
    return cshim_error_make(err, EINVAL, "parse `%s`: malformed JSON at offset %d: %s", path,
                            jerr.position, jerr.text);
  if (!json_is_object(root))
    return cshim_error_make(err, EINVAL, "parse `%s`: not a JSON object", path);
  /* Unknown keys are ignored: newer containerd versions add fields. */
  json_object_foreach(root, key, value)
  {
    const struct field *f = find_field(key);

    if (f && parse_field(value, f, out) < 0) {
      cshim_runc_options_clear(out);
      return cshim_error_make(err, EINVAL, "parse `%s`: `%s`: expected %s", path, key,
                              f->kind == F_BOOL   ? "true or false"
                              : f->kind == F_UINT ? "an integer from 0 to 4294967295"
                                                  : "a string");
    }
  }
  return 1;
}

char *
cshim_runc_options_runtime_root(const cshim_runc_options_t *opts, const char *default_root,
                                const char *namespace_)
{
  const char *root = opts && opts->root ? opts->root : default_root;
  char *out = NULL;
  size_t n = strlen(root);
  while (n > 1 && root[n - 1] == '/')
    n--;
  cshim_xasprintf(&out, "%.*s/%s", (int)n, root, namespace_);
  return out;
}
