// SPDX-License-Identifier: Apache-2.0
// containerd.runc.v1.Options decoding and the options.json / runtime files kept in a bundle.
#include <cshim/runc_options.h>

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <containerd/runc/options/oci.pb-c.h>
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
  const char *name;
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

/* A growable string for the JSON writer. */
struct buf
{
  char *data;
  size_t len, cap;
};

static void
buf_add(struct buf *b, const char *s, size_t n)
{
  if (b->len + n + 1 > b->cap) {
    b->cap = (b->len + n + 1) * 2;
    b->data = cshim_xrealloc(b->data, b->cap);
  }
  memcpy(b->data + b->len, s, n);
  b->len += n;
  b->data[b->len] = '\0';
}

static void
buf_adds(struct buf *b, const char *s)
{
  buf_add(b, s, strlen(s));
}

static void
add_key(struct buf *b, const char *key)
{
  buf_adds(b, b->len > 1 ? ",\"" : "\"");
  buf_adds(b, key);
  buf_adds(b, "\":");
}

static void
add_string(struct buf *b, const char *key, const char *value)
{
  const unsigned char *p;
  if (value == NULL || *value == '\0')
    return;
  add_key(b, key);
  buf_adds(b, "\"");
  for (p = (const unsigned char *)value; *p; p++) {
    char esc[8];
    if (*p == '"' || *p == '\\') {
      esc[0] = '\\';
      esc[1] = (char)*p;
      buf_add(b, esc, 2);
    } else if (*p < 0x20) {
      snprintf(esc, sizeof esc, "\\u%04x", *p);
      buf_adds(b, esc);
    } else
      buf_add(b, (const char *)p, 1);
  }
  buf_adds(b, "\"");
}

static void
add_bool(struct buf *b, const char *key, bool value)
{
  if (!value)
    return;
  add_key(b, key);
  buf_adds(b, "true");
}

static void
add_uint(struct buf *b, const char *key, uint32_t value)
{
  char num[16];
  if (value == 0)
    return;
  add_key(b, key);
  snprintf(num, sizeof num, "%u", value);
  buf_adds(b, num);
}

static int
write_file_atomic(const char *bundle, const char *name, const char *data, size_t len,
                  cshim_error_t *err)
{
  cshim_autofree char *path = NULL;

  cshim_xasprintf(&path, "%s/%s", bundle, name);
  return cshim_file_write_atomic(path, data, len, 0600, err);
}

int
cshim_runc_options_write(const char *bundle, const cshim_runc_options_t *opts, cshim_error_t *err)
{
  struct buf b = {0};
  int ret;

  buf_adds(&b, "{");
  add_bool(&b, "no_pivot_root", opts->no_pivot_root);
  add_bool(&b, "no_new_keyring", opts->no_new_keyring);
  add_string(&b, "shim_cgroup", opts->shim_cgroup);
  add_uint(&b, "io_uid", opts->io_uid);
  add_uint(&b, "io_gid", opts->io_gid);
  add_string(&b, "binary_name", opts->binary_name);
  add_string(&b, "root", opts->root);
  add_string(&b, "criu_path", opts->criu_path);
  add_bool(&b, "systemd_cgroup", opts->systemd_cgroup);
  add_string(&b, "criu_image_path", opts->criu_image_path);
  add_string(&b, "criu_work_path", opts->criu_work_path);
  buf_adds(&b, "}");

  ret = write_file_atomic(bundle, CSHIM_RUNC_OPTIONS_FILE, b.data, b.len, err);
  free(b.data);
  return ret;
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

/* A tiny reader for the flat JSON object options.json holds: string, bool, number and null
   values are understood; nested values of unknown keys are skipped. */
struct json
{
  const char *p, *end;
};

static void
skip_ws(struct json *j)
{
  while (j->p < j->end && (*j->p == ' ' || *j->p == '\t' || *j->p == '\n' || *j->p == '\r'))
    j->p++;
}

static int
hexval(char c)
{
  if (c >= '0' && c <= '9')
    return c - '0';
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  if (c >= 'A' && c <= 'F')
    return c - 'A' + 10;
  return -1;
}

static void
put_utf8(struct buf *b, unsigned cp)
{
  char u[4];
  if (cp < 0x80) {
    u[0] = (char)cp;
    buf_add(b, u, 1);
  } else if (cp < 0x800) {
    u[0] = (char)(0xc0 | (cp >> 6));
    u[1] = (char)(0x80 | (cp & 0x3f));
    buf_add(b, u, 2);
  } else if (cp < 0x10000) {
    u[0] = (char)(0xe0 | (cp >> 12));
    u[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
    u[2] = (char)(0x80 | (cp & 0x3f));
    buf_add(b, u, 3);
  } else {
    u[0] = (char)(0xf0 | (cp >> 18));
    u[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
    u[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
    u[3] = (char)(0x80 | (cp & 0x3f));
    buf_add(b, u, 4);
  }
}

static int
read_hex4(struct json *j, unsigned *out)
{
  unsigned v = 0;
  if (j->end - j->p < 4)
    return -1;
  for (int i = 0; i < 4; i++) {
    int h = hexval(j->p[i]);
    if (h < 0)
      return -1;
    v = (v << 4) | (unsigned)h;
  }
  j->p += 4;
  *out = v;
  return 0;
}

/* Parse a JSON string at j->p (on the opening quote). *out malloc'ed. */
static int
parse_string(struct json *j, char **out)
{
  struct buf b = {0};
  buf_add(&b, "", 0);
  j->p++;
  while (j->p < j->end && *j->p != '"') {
    char c = *j->p++;
    unsigned cp;
    if ((unsigned char)c < 0x20)
      goto fail;
    if (c != '\\') {
      buf_add(&b, &c, 1);
      continue;
    }
    if (j->p >= j->end)
      goto fail;
    c = *j->p++;
    switch (c) {
    case '"':
    case '\\':
    case '/':
      buf_add(&b, &c, 1);
      break;
    case 'b':
      buf_adds(&b, "\b");
      break;
    case 'f':
      buf_adds(&b, "\f");
      break;
    case 'n':
      buf_adds(&b, "\n");
      break;
    case 'r':
      buf_adds(&b, "\r");
      break;
    case 't':
      buf_adds(&b, "\t");
      break;
    case 'u':
      if (read_hex4(j, &cp) < 0)
        goto fail;
      if (cp >= 0xd800 && cp < 0xdc00 && j->end - j->p >= 6 && j->p[0] == '\\' && j->p[1] == 'u') {
        unsigned lo;
        j->p += 2;
        if (read_hex4(j, &lo) < 0 || lo < 0xdc00 || lo > 0xdfff)
          goto fail;
        cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
      }
      if (cp == 0)
        goto fail;
      put_utf8(&b, cp);
      break;
    default:
      goto fail;
    }
  }
  if (j->p >= j->end)
    goto fail;
  j->p++;
  *out = b.data;
  return 0;
fail:
  free(b.data);
  return -1;
}

static int skip_value(struct json *j, int depth);

static int
skip_container(struct json *j, char close, int depth)
{
  j->p++;
  skip_ws(j);
  if (j->p < j->end && *j->p == close) {
    j->p++;
    return 0;
  }
  for (;;) {
    if (close == '}') {
      char *k = NULL;
      skip_ws(j);
      if (j->p >= j->end || *j->p != '"' || parse_string(j, &k) < 0)
        return -1;
      free(k);
      skip_ws(j);
      if (j->p >= j->end || *j->p != ':')
        return -1;
      j->p++;
    }
    if (skip_value(j, depth + 1) < 0)
      return -1;
    skip_ws(j);
    if (j->p < j->end && *j->p == ',') {
      j->p++;
      continue;
    }
    if (j->p < j->end && *j->p == close) {
      j->p++;
      return 0;
    }
    return -1;
  }
}

static int
match_word(struct json *j, const char *w)
{
  size_t n = strlen(w);
  if ((size_t)(j->end - j->p) < n || memcmp(j->p, w, n) != 0)
    return -1;
  j->p += n;
  return 0;
}

static int
parse_number(struct json *j, double *out)
{
  char tmp[64];
  size_t n = 0;
  char *endp;
  while (j->p + n < j->end && n < sizeof tmp - 1 && strchr("+-0123456789.eE", j->p[n]))
    n++;
  if (n == 0)
    return -1;
  memcpy(tmp, j->p, n);
  tmp[n] = '\0';
  *out = strtod(tmp, &endp);
  if (*endp != '\0')
    return -1;
  j->p += n;
  return 0;
}

static int
skip_value(struct json *j, int depth)
{
  double d;
  char *s = NULL;
  if (depth > 32)
    return -1;
  skip_ws(j);
  if (j->p >= j->end)
    return -1;
  switch (*j->p) {
  case '{':
    return skip_container(j, '}', depth);
  case '[':
    return skip_container(j, ']', depth);
  case '"':
    if (parse_string(j, &s) < 0)
      return -1;
    free(s);
    return 0;
  case 't':
    return match_word(j, "true");
  case 'f':
    return match_word(j, "false");
  case 'n':
    return match_word(j, "null");
  default:
    return parse_number(j, &d);
  }
}

enum field_kind
{
  F_BOOL,
  F_UINT,
  F_STRING
};

struct field
{
  const char *name;
  enum field_kind kind;
  size_t offset;
};

static const struct field fields[] = {
    {"no_pivot_root", F_BOOL, offsetof(cshim_runc_options_t, no_pivot_root)},
    {"no_new_keyring", F_BOOL, offsetof(cshim_runc_options_t, no_new_keyring)},
    {"systemd_cgroup", F_BOOL, offsetof(cshim_runc_options_t, systemd_cgroup)},
    {"io_uid", F_UINT, offsetof(cshim_runc_options_t, io_uid)},
    {"io_gid", F_UINT, offsetof(cshim_runc_options_t, io_gid)},
    {"binary_name", F_STRING, offsetof(cshim_runc_options_t, binary_name)},
    {"root", F_STRING, offsetof(cshim_runc_options_t, root)},
    {"shim_cgroup", F_STRING, offsetof(cshim_runc_options_t, shim_cgroup)},
    {"criu_image_path", F_STRING, offsetof(cshim_runc_options_t, criu_image_path)},
    {"criu_work_path", F_STRING, offsetof(cshim_runc_options_t, criu_work_path)},
    {"criu_path", F_STRING, offsetof(cshim_runc_options_t, criu_path)},
};

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

static int
parse_field(struct json *j, const struct field *f, cshim_runc_options_t *out)
{
  char *base = (char *)out + f->offset;
  skip_ws(j);
  if (j->p < j->end && *j->p == 'n')
    return match_word(j, "null");
  switch (f->kind) {
  case F_BOOL:
    if (match_word(j, "true") == 0)
      *(bool *)base = true;
    else if (match_word(j, "false") == 0)
      *(bool *)base = false;
    else
      return -1;
    return 0;
  case F_UINT: {
    double d;
    if (parse_number(j, &d) < 0 || d < 0 || d > 4294967295.0 || d != (double)(uint32_t)d)
      return -1;
    *(uint32_t *)base = (uint32_t)d;
    return 0;
  }
  case F_STRING: {
    char *s = NULL;
    if (j->p >= j->end || *j->p != '"' || parse_string(j, &s) < 0)
      return -1;
    free(*(char **)base);
    *(char **)base = NULL;
    if (*s)
      *(char **)base = s;
    else
      free(s);
    return 0;
  }
  }
  return -1;
}

static int
parse_options(struct json *j, cshim_runc_options_t *out)
{
  skip_ws(j);
  if (j->p >= j->end || *j->p != '{')
    return -1;
  j->p++;
  skip_ws(j);
  if (j->p < j->end && *j->p == '}') {
    j->p++;
    goto tail;
  }
  for (;;) {
    cshim_autofree char *key = NULL;
    const struct field *f;
    skip_ws(j);
    if (j->p >= j->end || *j->p != '"' || parse_string(j, &key) < 0)
      return -1;
    skip_ws(j);
    if (j->p >= j->end || *j->p != ':')
      return -1;
    j->p++;
    f = find_field(key);
    if ((f ? parse_field(j, f, out) : skip_value(j, 0)) < 0)
      return -1;
    skip_ws(j);
    if (j->p < j->end && *j->p == ',') {
      j->p++;
      continue;
    }
    if (j->p < j->end && *j->p == '}') {
      j->p++;
      break;
    }
    return -1;
  }
tail:
  skip_ws(j);
  return j->p == j->end ? 0 : -1;
}

int
cshim_runc_options_read(const char *bundle, cshim_runc_options_t *out, cshim_error_t *err)
{
  cshim_autofree char *path = NULL;
  cshim_autofree char *data = NULL;
  size_t len = 0;
  struct json j;
  int ret;

  memset(out, 0, sizeof *out);
  cshim_xasprintf(&path, "%s/%s", bundle, CSHIM_RUNC_OPTIONS_FILE);
  ret = read_small_file(path, &data, &len, err);
  if (ret <= 0)
    return ret;
  j.p = data;
  j.end = data + len;
  if (parse_options(&j, out) < 0) {
    cshim_runc_options_clear(out);
    return cshim_error_make(err, EINVAL, "parse `%s`: malformed JSON at offset %zu", path,
                            (size_t)(j.p - data));
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
