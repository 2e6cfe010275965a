// SPDX-License-Identifier: Apache-2.0
// Finds, parses (libyaml events) and validates the shim's YAML config into a located node tree.
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* vasprintf */
#endif
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include <yaml.h>

#include <cshim/log.h>
#include <cshim/file.h>
#include <cshim/util.h>

/* Deeper documents are certainly not configs; the limit keeps the recursion off the stack edge. */
#define MAX_DEPTH 64
/* A config is a few KiB; the cap stops a mistaken path such as /dev/zero. */
#define MAX_FILE_SIZE (4u << 20)

const char *const host_config_default_modules[] = {"shutdown.so", "publisher.so", "task.so",
                                                   "debug.so",    "tracing.so",   NULL};

struct location
{
  unsigned line, column;
};

/* Key positions are not part of the public node; they are kept here, per map. */
struct map_locations
{
  const cshim_config_node_t *items;
  size_t n;
  struct location *keys;
};

struct host_config_tree_s
{
  void **blocks; /* every allocation the nodes point into */
  size_t n_blocks, cap_blocks;
  struct map_locations *maps;
  size_t n_maps, cap_maps;
  char *file;
  uint64_t probes; /* slots visited by name lookups, see host_config_parse_work */
};

/* Names (map keys, list entries, anchors) to an index, by open addressing: duplicate checks and
   alias lookups cost O(1) each, so a document parses in time linear in its size. */
struct name_slot
{
  const char *name; /* borrowed; NULL = free slot */
  uint64_t hash;
  size_t value;
};

struct name_index
{
  struct name_slot *slots;
  size_t cap; /* 0 or a power of two */
  size_t n;
  uint64_t *probes; /* counts every slot visited */
};

struct anchor
{
  char *name; /* owned by the tree */
  cshim_config_node_t node;
};

struct builder
{
  yaml_parser_t parser;
  struct host_config_tree_s *tree;
  const char *text;
  size_t len;
  struct anchor *anchors;
  size_t n_anchors, cap_anchors;
  struct name_index anchor_index; /* name -> latest index in anchors */
};

static void *
grow(void *array, size_t *cap, size_t need, size_t elem)
{
  if (need <= *cap)
    return array;
  *cap = *cap ? *cap * 2 : 8;
  if (*cap < need)
    *cap = need;
  return cshim_xrealloc(array, *cap * elem);
}

static uint64_t
hash_name(const char *s)
{
  uint64_t h = 0xcbf29ce484222325ull; /* FNV-1a */
  for (; *s; s++) {
    h ^= (unsigned char)*s;
    h *= 0x100000001b3ull;
  }
  return h;
}

static struct name_slot *
name_index_slot(struct name_index *ix, const char *name, uint64_t hash)
{
  size_t mask = ix->cap - 1;
  for (size_t i = (size_t)hash & mask;; i = (i + 1) & mask) {
    struct name_slot *s = &ix->slots[i];
    (*ix->probes)++;
    if (s->name == NULL || (s->hash == hash && strcmp(s->name, name) == 0))
      return s;
  }
}

/* The value stored for name, or false. */
static bool
name_index_find(struct name_index *ix, const char *name, size_t *value)
{
  struct name_slot *s;
  if (ix->n == 0)
    return false;
  s = name_index_slot(ix, name, hash_name(name));
  if (s->name == NULL)
    return false;
  *value = s->value;
  return true;
}

/* Store value for name (borrowed until the index is freed), replacing an earlier one. */
static void
name_index_put(struct name_index *ix, const char *name, size_t value)
{
  uint64_t hash = hash_name(name);
  struct name_slot *s;

  if ((ix->n + 1) * 2 > ix->cap) {
    struct name_index bigger = {.cap = ix->cap ? ix->cap * 2 : 16, .probes = ix->probes};
    bigger.slots = cshim_xmalloc0(bigger.cap * sizeof *bigger.slots);
    for (size_t i = 0; i < ix->cap; i++)
      if (ix->slots[i].name) {
        size_t mask = bigger.cap - 1, j = (size_t)ix->slots[i].hash & mask;
        while (bigger.slots[j].name)
          j = (j + 1) & mask;
        bigger.slots[j] = ix->slots[i];
      }
    bigger.n = ix->n;
    free(ix->slots);
    *ix = bigger;
  }
  s = name_index_slot(ix, name, hash);
  if (s->name == NULL) {
    ix->n++;
    s->name = name;
    s->hash = hash;
  }
  s->value = value;
}

static void
name_index_clear(struct name_index *ix)
{
  free(ix->slots);
  ix->slots = NULL;
  ix->cap = ix->n = 0;
}
#define cleanup_name_index __attribute__((cleanup(name_index_clear)))

static void *
keep_block(struct host_config_tree_s *t, void *p)
{
  t->blocks = grow(t->blocks, &t->cap_blocks, t->n_blocks + 1, sizeof(void *));
  t->blocks[t->n_blocks++] = p;
  return p;
}

static void
free_tree(struct host_config_tree_s *t)
{
  if (t == NULL)
    return;
  for (size_t i = 0; i < t->n_blocks; i++)
    free(t->blocks[i]);
  for (size_t i = 0; i < t->n_maps; i++)
    free(t->maps[i].keys);
  free(t->blocks);
  free(t->maps);
  free(t->file);
  free(t);
}

static struct location
to_location(yaml_mark_t mark)
{
  return (struct location){.line = (unsigned)mark.line + 1, .column = (unsigned)mark.column + 1};
}

static int fail_at(struct builder *b, yaml_mark_t mark, cshim_error_t *err, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int
fail_at(struct builder *b, yaml_mark_t mark, cshim_error_t *err, const char *fmt, ...)
{
  cshim_autofree char *msg = NULL;
  struct location loc = to_location(mark);
  va_list ap;

  va_start(ap, fmt);
  if (vasprintf(&msg, fmt, ap) < 0)
    abort();
  va_end(ap);
  return cshim_error_make(err, EINVAL, "%s:%u:%u: %s", b->tree->file, loc.line, loc.column, msg);
}

/* Reader errors carry a byte offset instead of a mark; turn it into line and column. */
static yaml_mark_t
locate_offset(const char *text, size_t len, size_t offset)
{
  yaml_mark_t mark = {0};

  for (size_t i = 0; i < offset && i < len; i++) {
    if (text[i] == '\n') {
      mark.line++;
      mark.column = 0;
    } else if (((unsigned char)text[i] & 0xc0) != 0x80) {
      mark.column++;
    }
  }
  return mark;
}

static int
fail_parse(struct builder *b, cshim_error_t *err)
{
  yaml_parser_t *p = &b->parser;
  const char *problem = p->problem ? p->problem : "unknown error";

  switch (p->error) {
  case YAML_MEMORY_ERROR:
    abort();
  case YAML_READER_ERROR:
    return fail_at(b, locate_offset(b->text, b->len, p->problem_offset), err, "invalid YAML: %s",
                   problem);
  default:
    if (p->context) {
      struct location ctx = to_location(p->context_mark);
      return fail_at(b, p->problem_mark, err, "invalid YAML: %s (%s at %u:%u)", problem, p->context,
                     ctx.line, ctx.column);
    }
    return fail_at(b, p->problem_mark, err, "invalid YAML: %s", problem);
  }
}

static int
read_event(struct builder *b, yaml_event_t *ev, cshim_error_t *err)
{
  if (!yaml_parser_parse(&b->parser, ev))
    return fail_parse(b, err);
  return 0;
}

static void
cleanup_event(yaml_event_t *ev)
{
  yaml_event_delete(ev);
}
#define cleanup_yaml_event __attribute__((cleanup(cleanup_event)))

static void
remember_anchor(struct builder *b, const yaml_char_t *name, const cshim_config_node_t *node)
{
  if (name == NULL)
    return;
  b->anchors = grow(b->anchors, &b->cap_anchors, b->n_anchors + 1, sizeof(struct anchor));
  b->anchors[b->n_anchors].name = keep_block(b->tree, cshim_xstrdup((const char *)name));
  b->anchors[b->n_anchors].node = *node;
  /* An anchor may be redefined; an alias refers to the latest definition before it. */
  name_index_put(&b->anchor_index, b->anchors[b->n_anchors].name, b->n_anchors);
  b->n_anchors++;
}

static const cshim_config_node_t *
find_anchor(struct builder *b, const char *name)
{
  size_t i;
  return name_index_find(&b->anchor_index, name, &i) ? &b->anchors[i].node : NULL;
}

static void
init_node(struct builder *b, cshim_config_node_t *node, cshim_config_kind_t kind, yaml_mark_t mark)
{
  struct location loc = to_location(mark);

  *node = (cshim_config_node_t){
      .kind = kind, .file = b->tree->file, .line = loc.line, .column = loc.column};
}

static int build_node(struct builder *b, yaml_event_t *ev, unsigned depth, cshim_config_node_t *out,
                      cshim_error_t *err);

static int
build_scalar(struct builder *b, yaml_event_t *ev, cshim_config_node_t *out, cshim_error_t *err)
{
  const char *value = (const char *)ev->data.scalar.value;
  size_t length = ev->data.scalar.length;
  const char *tag = (const char *)ev->data.scalar.tag;

  if (memchr(value, '\0', length))
    return fail_at(b, ev->start_mark, err, "NUL characters are not allowed in config values");
  init_node(b, out, CSHIM_CONFIG_SCALAR, ev->start_mark);
  out->value = keep_block(b->tree, cshim_xstrndup(value, length));
  /* Block (| >) and quoted scalars are text, and so is anything explicitly tagged !!str. */
  out->quoted =
      ev->data.scalar.style != YAML_PLAIN_SCALAR_STYLE || (tag && strcmp(tag, YAML_STR_TAG) == 0);
  remember_anchor(b, ev->data.scalar.anchor, out);
  return 0;
}

static int
build_sequence(struct builder *b, yaml_event_t *start, unsigned depth, cshim_config_node_t *out,
               cshim_error_t *err)
{
  cshim_autofree cshim_config_node_t *items = NULL;
  size_t n = 0, cap = 0;
  int ret;

  for (;;) {
    cleanup_yaml_event yaml_event_t ev = {0};

    ret = read_event(b, &ev, err);
    if (ret < 0)
      return ret;
    if (ev.type == YAML_SEQUENCE_END_EVENT)
      break;
    items = grow(items, &cap, n + 1, sizeof(*items));
    ret = build_node(b, &ev, depth + 1, &items[n], err);
    if (ret < 0)
      return ret;
    n++;
  }
  init_node(b, out, CSHIM_CONFIG_SEQ, start->start_mark);
  out->n = n;
  out->items = n ? keep_block(b->tree, cshim_steal_pointer(&items)) : NULL;
  remember_anchor(b, start->data.sequence_start.anchor, out);
  return 0;
}

static int
build_mapping(struct builder *b, yaml_event_t *start, unsigned depth, cshim_config_node_t *out,
              cshim_error_t *err)
{
  struct host_config_tree_s *t = b->tree;
  cshim_autofree cshim_config_node_t *items = NULL;
  cshim_autofree const char **keys = NULL;
  cshim_autofree struct location *locs = NULL;
  cleanup_name_index struct name_index seen = {.probes = &t->probes};
  size_t n = 0, cap_items = 0, cap_keys = 0, cap_locs = 0, first;
  int ret;

  for (;;) {
    cleanup_yaml_event yaml_event_t kev = {0};
    cleanup_yaml_event yaml_event_t vev = {0};
    const char *key;
    size_t key_len;

    ret = read_event(b, &kev, err);
    if (ret < 0)
      return ret;
    if (kev.type == YAML_MAPPING_END_EVENT)
      break;
    if (kev.type != YAML_SCALAR_EVENT)
      return fail_at(b, kev.start_mark, err, "map keys must be strings, not lists or maps");
    key = (const char *)kev.data.scalar.value;
    key_len = kev.data.scalar.length;
    if (memchr(key, '\0', key_len))
      return fail_at(b, kev.start_mark, err, "NUL characters are not allowed in config keys");
    if (name_index_find(&seen, key, &first))
      return fail_at(b, kev.start_mark, err, "duplicate key `%s` (first at %u:%u)", key,
                     locs[first].line, locs[first].column);

    items = grow(items, &cap_items, n + 1, sizeof(*items));
    keys = grow(keys, &cap_keys, n + 1, sizeof(*keys));
    locs = grow(locs, &cap_locs, n + 1, sizeof(*locs));
    keys[n] = keep_block(t, cshim_xstrndup(key, key_len));
    locs[n] = to_location(kev.start_mark);
    name_index_put(&seen, keys[n], n);

    ret = read_event(b, &vev, err);
    if (ret < 0)
      return ret;
    ret = build_node(b, &vev, depth + 1, &items[n], err);
    if (ret < 0)
      return ret;
    n++;
  }

  init_node(b, out, CSHIM_CONFIG_MAP, start->start_mark);
  out->n = n;
  if (n) {
    out->items = keep_block(t, cshim_steal_pointer(&items));
    out->keys = keep_block(t, cshim_steal_pointer(&keys));
    t->maps = grow(t->maps, &t->cap_maps, t->n_maps + 1, sizeof(*t->maps));
    t->maps[t->n_maps++] =
        (struct map_locations){.items = out->items, .n = n, .keys = cshim_steal_pointer(&locs)};
  }
  remember_anchor(b, start->data.mapping_start.anchor, out);
  return 0;
}

static int
build_node(struct builder *b, yaml_event_t *ev, unsigned depth, cshim_config_node_t *out,
           cshim_error_t *err)
{
  const cshim_config_node_t *target;

  if (depth > MAX_DEPTH)
    return fail_at(b, ev->start_mark, err, "nesting deeper than %d levels", MAX_DEPTH);
  switch (ev->type) {
  case YAML_SCALAR_EVENT:
    return build_scalar(b, ev, out, err);
  case YAML_SEQUENCE_START_EVENT:
    return build_sequence(b, ev, depth, out, err);
  case YAML_MAPPING_START_EVENT:
    return build_mapping(b, ev, depth, out, err);
  case YAML_ALIAS_EVENT:
    target = find_anchor(b, (const char *)ev->data.alias.anchor);
    if (target == NULL)
      return fail_at(b, ev->start_mark, err, "unknown alias `*%s`", ev->data.alias.anchor);
    /* The tree is read-only, so an alias may share the anchored node's children. */
    *out = *target;
    return 0;
  default:
    return fail_at(b, ev->start_mark, err, "unexpected YAML event %d", (int)ev->type);
  }
}

/* The single document of text as a tree; *root is NULL for an empty stream. */
static int
build_document(struct builder *b, cshim_config_node_t **root, cshim_error_t *err)
{
  cshim_autofree cshim_config_node_t *node = NULL;
  bool seen_document = false;
  int ret;

  for (;;) {
    cleanup_yaml_event yaml_event_t ev = {0};

    ret = read_event(b, &ev, err);
    if (ret < 0)
      return ret;
    switch (ev.type) {
    case YAML_STREAM_START_EVENT:
    case YAML_DOCUMENT_END_EVENT:
      break;
    case YAML_STREAM_END_EVENT:
      *root = node ? keep_block(b->tree, cshim_steal_pointer(&node)) : NULL;
      return 0;
    case YAML_DOCUMENT_START_EVENT:
      if (seen_document)
        return fail_at(b, ev.start_mark, err,
                       "a second YAML document starts here; a config is a single document");
      seen_document = true;
      break;
    default:
      node = cshim_xmalloc0(sizeof(*node));
      ret = build_node(b, &ev, 0, node, err);
      if (ret < 0)
        return ret;
      break;
    }
  }
}

static const char *
describe_kind(const cshim_config_node_t *node)
{
  switch (node->kind) {
  case CSHIM_CONFIG_MAP:
    return "a map";
  case CSHIM_CONFIG_SEQ:
    return "a list";
  default:
    return "a scalar";
  }
}

static int fail_node(const cshim_config_node_t *node, cshim_error_t *err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int
fail_node(const cshim_config_node_t *node, cshim_error_t *err, const char *fmt, ...)
{
  cshim_autofree char *msg = NULL;
  va_list ap;

  va_start(ap, fmt);
  if (vasprintf(&msg, fmt, ap) < 0)
    abort();
  va_end(ap);
  return cshim_error_make(err, EINVAL, "%s:%u:%u: %s", node->file, node->line, node->column, msg);
}

static bool
is_text(const cshim_config_node_t *node)
{
  return node->kind == CSHIM_CONFIG_SCALAR && !cshim_config_is_null(node);
}

/* A list of non-empty strings, each listed once; the strings are copied into *out. */
static int
parse_string_list(host_config_t *c, const cshim_config_node_t *node, const char *key,
                  const char *entry_what, char ***out, size_t *n_out, cshim_error_t *err)
{
  cleanup_name_index struct name_index seen = {.probes = &c->tree->probes};
  char **list;
  size_t j;

  if (node->kind != CSHIM_CONFIG_SEQ)
    return fail_node(node, err, "`%s` must be a list of %ss", key, entry_what);
  for (size_t i = 0; i < node->n; i++) {
    const cshim_config_node_t *e = &node->items[i];

    if (!is_text(e) || e->value[0] == '\0')
      return fail_node(e, err, "each entry of `%s` must be a %s", key, entry_what);
    if (name_index_find(&seen, e->value, &j))
      return fail_node(e, err, "`%s` lists `%s` twice (first at %u:%u)", key, e->value,
                       node->items[j].line, node->items[j].column);
    name_index_put(&seen, e->value, i);
  }
  list = cshim_xmalloc0((node->n + 1) * sizeof(char *));
  for (size_t i = 0; i < node->n; i++)
    list[i] = cshim_xstrdup(node->items[i].value);
  *out = list;
  *n_out = node->n;
  return 0;
}

static int
parse_log_level(const cshim_config_node_t *node, int *level, cshim_error_t *err)
{
  static const struct
  {
    const char *name;
    int level;
  } levels[] = {{"trace", CSHIM_LOG_TRACE},  {"debug", CSHIM_LOG_DEBUG},
                {"info", CSHIM_LOG_INFO},    {"warn", CSHIM_LOG_WARN},
                {"warning", CSHIM_LOG_WARN}, {"error", CSHIM_LOG_ERROR}};

  if (node->kind == CSHIM_CONFIG_SCALAR) {
    for (size_t i = 0; i < CSHIM_N_ELEMENTS(levels); i++)
      if (strcasecmp(node->value, levels[i].name) == 0) {
        *level = levels[i].level;
        return 0;
      }
    return fail_node(node, err,
                     "`log_level` must be one of trace, debug, info, warn, warning, error "
                     "(found `%s`)",
                     node->value);
  }
  return fail_node(node, err,
                   "`log_level` must be one of trace, debug, info, warn, warning, error");
}

static const char *const known_keys[] = {"version",   "plugin_dir", "modules", "disabled_plugins",
                                         "log_level", "plugins",    "ttrpc",   NULL};

static int parse_ttrpc(host_config_t *c, const cshim_config_node_t *v, cshim_error_t *err);

/* Apply one top-level setting; a null value keeps the default. */
static int
apply_key(host_config_t *c, const char *key, const cshim_config_node_t *v, cshim_error_t *err)
{
  if (cshim_config_is_null(v))
    return 0;
  if (strcmp(key, "version") == 0) {
    if (!is_text(v) || v->quoted || strcmp(v->value, "1") != 0)
      return fail_node(v, err, "`version` must be 1");
    return 0;
  }
  if (strcmp(key, "plugin_dir") == 0) {
    if (!is_text(v))
      return fail_node(v, err, "`plugin_dir` must be a string");
    if (v->value[0] != '/')
      return fail_node(v, err, "`plugin_dir` must be an absolute path (found `%s`)", v->value);
    free(c->plugin_dir);
    c->plugin_dir = cshim_xstrdup(v->value);
    return 0;
  }
  if (strcmp(key, "modules") == 0) {
    char **list = NULL;
    size_t n = 0;
    int ret;

    ret = parse_string_list(c, v, "modules", "module file name", &list, &n, err);
    if (ret < 0)
      return ret;
    if (n == 0) {
      free(list);
      return fail_node(v, err, "`modules` must name at least one module");
    }
    c->modules = list;
    c->n_modules = n;
    return 0;
  }
  if (strcmp(key, "disabled_plugins") == 0)
    return parse_string_list(c, v, "disabled_plugins", "plugin URI", &c->disabled, &c->n_disabled,
                             err);
  if (strcmp(key, "log_level") == 0) {
    int ret = parse_log_level(v, &c->log_level, err);

    if (ret < 0)
      return ret;
    c->log_level_set = true;
    return 0;
  }
  if (strcmp(key, "ttrpc") == 0)
    return parse_ttrpc(c, v, err);
  if (v->kind != CSHIM_CONFIG_MAP)
    return fail_node(v, err, "`plugins` must be a map from plugin URI to its settings");
  c->plugins = v;
  return 0;
}

static bool
is_known_key(const char *key)
{
  for (size_t i = 0; known_keys[i]; i++)
    if (strcmp(key, known_keys[i]) == 0)
      return true;
  return false;
}

static void
set_default_modules(host_config_t *c)
{
  size_t n = 0;

  while (host_config_default_modules[n])
    n++;
  c->modules = cshim_xmalloc0((n + 1) * sizeof(char *));
  for (size_t i = 0; i < n; i++)
    c->modules[i] = cshim_xstrdup(host_config_default_modules[i]);
  c->n_modules = n;
}

static int
apply_document(host_config_t *c, cshim_error_t *err)
{
  const cshim_config_node_t *root = c->root;
  int ret;

  if (root->kind != CSHIM_CONFIG_MAP)
    return fail_node(root, err, "the top level of a config must be a map of settings, not %s",
                     describe_kind(root));
  for (size_t i = 0; i < root->n; i++) {
    if (!is_known_key(root->keys[i])) {
      unsigned line = root->line, column = root->column;

      host_config_key_location(c, root, i, &line, &column);
      return cshim_error_make(err, EINVAL,
                              "%s:%u:%u: unknown key `%s` (known keys: version, plugin_dir, "
                              "modules, disabled_plugins, log_level, plugins, ttrpc)",
                              c->source, line, column, root->keys[i]);
    }
    ret = apply_key(c, root->keys[i], &root->items[i], err);
    if (ret < 0)
      return ret;
  }
  return 0;
}

int
host_config_parse(const char *text, size_t len, const char *source_name,
                  const char *default_plugin_dir, host_config_t **out, cshim_error_t *err)
{
  host_config_t *c = cshim_xmalloc0(sizeof(*c));
  struct builder b = {.text = text, .len = len};
  cshim_config_node_t *root = NULL;
  int ret;

  c->tree = cshim_xmalloc0(sizeof(*c->tree));
  b.anchor_index.probes = &c->tree->probes;
  c->tree->file = cshim_xstrdup(source_name);
  c->source = cshim_xstrdup(source_name);
  c->plugin_dir = cshim_xstrdup(default_plugin_dir);
  c->log_level = CSHIM_LOG_INFO;
  b.tree = c->tree;

  if (!yaml_parser_initialize(&b.parser))
    abort();
  yaml_parser_set_input_string(&b.parser, (const unsigned char *)(text ? text : ""),
                               text ? len : 0);
  ret = build_document(&b, &root, err);
  yaml_parser_delete(&b.parser);
  free(b.anchors);
  name_index_clear(&b.anchor_index);

  if (ret == 0 && root && !cshim_config_is_null(root)) {
    c->root = root;
    ret = apply_document(c, err);
  }
  if (ret < 0) {
    host_config_free(c);
    return ret;
  }
  if (c->modules == NULL)
    set_default_modules(c);
  *out = c;
  return 0;
}

/* The whole file into a NUL-terminated buffer. */
static int
read_file(const char *path, char **out, size_t *len_out, cshim_error_t *err)
{
  cshim_autoclose int fd = open(path, O_RDONLY | O_CLOEXEC);
  cshim_autofree char *what = NULL;
  int ret;

  if (fd < 0)
    return cshim_error_sys(err, errno, "open config file `%s`", path);
  cshim_xasprintf(&what, "config file `%s`", path);
  ret = cshim_file_read_fd(fd, what, MAX_FILE_SIZE, out, len_out, err);
  if (ret == -EFBIG) {
    cshim_error_release(err);
    return cshim_error_make(err, EFBIG, "config file `%s` is larger than %u MiB", path,
                            MAX_FILE_SIZE >> 20);
  }
  return ret;
}

int
host_config_load_file(const char *path, const char *default_plugin_dir, host_config_t **out,
                      cshim_error_t *err)
{
  cshim_autofree char *text = NULL;
  size_t len;
  int ret;

  ret = read_file(path, &text, &len, err);
  if (ret < 0)
    return ret;
  return host_config_parse(text, len, path, default_plugin_dir, out, err);
}

int
host_config_resolve(const char *explicit_path, const char *env_value, const char *binary_name,
                    const char *etc_dir, const char *default_plugin_dir, host_config_t **out,
                    cshim_error_t *err)
{
  cshim_autofree char *name = NULL;
  cshim_autofree char *path = NULL;
  cshim_autofree char *text = NULL;
  size_t len;
  int ret;

  if (explicit_path && explicit_path[0]) {
    ret = read_file(explicit_path, &text, &len, err);
    if (ret < 0)
      return cshim_error_wrap(err, "config named by the runtime options (ConfigPath)");
    return host_config_parse(text, len, explicit_path, default_plugin_dir, out, err);
  }
  if (env_value && env_value[0]) {
    ret = read_file(env_value, &text, &len, err);
    if (ret < 0)
      return cshim_error_wrap(err, "config named by CSHIM_CONFIG");
    return host_config_parse(text, len, env_value, default_plugin_dir, out, err);
  }

  name = binary_name ? host_shim_name_from_binary(binary_name) : NULL;
  if (name && etc_dir) {
    cshim_xasprintf(&path, "%s/%s.yaml", etc_dir, name);
    ret = read_file(path, &text, &len, err);
    if (ret == 0)
      return host_config_parse(text, len, path, default_plugin_dir, out, err);
    if (ret != -ENOENT && ret != -ENOTDIR)
      return ret;
    cshim_error_release(err);
  }

  ret = host_config_parse(host_default_config, host_default_config_len, HOST_CONFIG_EMBEDDED,
                          default_plugin_dir, out, err);
  if (ret < 0)
    return cshim_error_wrap(err, "embedded default config");
  return 0;
}

const cshim_config_node_t *
host_config_plugin_section(const host_config_t *c, const char *uri)
{
  const cshim_config_node_t *section = cshim_config_get(c->plugins, uri);

  return cshim_config_is_null(section) ? NULL : section;
}

bool
host_config_is_disabled(const host_config_t *c, const char *uri)
{
  for (size_t i = 0; i < c->n_disabled; i++)
    if (strcmp(c->disabled[i], uri) == 0)
      return true;
  return false;
}

char *
host_config_module_path(const host_config_t *c, size_t i)
{
  char *path;
  size_t dir_len;

  if (i >= c->n_modules)
    return NULL;
  if (c->modules[i][0] == '/')
    return cshim_xstrdup(c->modules[i]);
  if (c->plugin_dir == NULL)
    return NULL;
  dir_len = strlen(c->plugin_dir);
  while (dir_len > 0 && c->plugin_dir[dir_len - 1] == '/')
    dir_len--;
  cshim_xasprintf(&path, "%.*s/%s", (int)dir_len, c->plugin_dir, c->modules[i]);
  return path;
}

bool
host_config_key_location(const host_config_t *c, const cshim_config_node_t *map, size_t i,
                         unsigned *line, unsigned *column)
{
  if (c == NULL || c->tree == NULL || map == NULL || map->kind != CSHIM_CONFIG_MAP)
    return false;
  for (size_t m = 0; m < c->tree->n_maps; m++) {
    const struct map_locations *ml = &c->tree->maps[m];

    if (ml->items == map->items && i < ml->n) {
      *line = ml->keys[i].line;
      *column = ml->keys[i].column;
      return true;
    }
  }
  return false;
}

uint64_t
host_config_parse_work(const host_config_t *c)
{
  return c && c->tree ? c->tree->probes : 0;
}

static void
free_list(char **list, size_t n)
{
  for (size_t i = 0; i < n; i++)
    free(list[i]);
  free(list);
}

void
host_config_free(host_config_t *c)
{
  if (c == NULL)
    return;
  free(c->source);
  free(c->plugin_dir);
  free_list(c->modules, c->n_modules);
  free_list(c->disabled, c->n_disabled);
  free_tree(c->tree);
  free(c);
}

char *
host_shim_name_from_binary(const char *argv0)
{
  static const char prefix[] = "containerd-shim-";
  static const char suffix[] = "-v2";
  const char *base, *slash;
  size_t len;

  if (argv0 == NULL)
    return NULL;
  slash = strrchr(argv0, '/');
  base = slash ? slash + 1 : argv0;
  len = strlen(base);
  if (len <= strlen(prefix) + strlen(suffix) || strncmp(base, prefix, strlen(prefix)) != 0 ||
      strcmp(base + len - strlen(suffix), suffix) != 0)
    return NULL;
  return cshim_xstrndup(base + strlen(prefix), len - strlen(prefix) - strlen(suffix));
}

/* The `ttrpc` section: the server's limits (see host/ttrpc_server.h for what they bound). */
static int
parse_ttrpc(host_config_t *c, const cshim_config_node_t *v, cshim_error_t *err)
{
  static const char *const keys[] = {"max_calls_in_flight", "buffer_budget_mib",
                                     "stalled_frame_timeout", NULL};
  uint64_t calls = 0, mib = 0, stall_ms = 0;
  int ret;

  if (v->kind != CSHIM_CONFIG_MAP)
    return fail_node(v, err, "`ttrpc` must be a map of settings");
  ret = cshim_config_check_keys(v, keys, "ttrpc", err);
  if (ret == 0)
    ret = cshim_config_get_uint(v, "max_calls_in_flight", &calls, err);
  if (ret == 0)
    ret = cshim_config_get_uint(v, "buffer_budget_mib", &mib, err);
  if (ret == 0)
    ret = cshim_config_get_duration_ms(v, "stalled_frame_timeout", &stall_ms, err);
  if (ret < 0)
    return ret;
  if (cshim_config_get(v, "stalled_frame_timeout") && (stall_ms < 100 || stall_ms > 3600000))
    return fail_node(cshim_config_get(v, "stalled_frame_timeout"), err,
                     "`ttrpc.stalled_frame_timeout` must be between 100ms and 1h (found %llu ms)",
                     (unsigned long long)stall_ms);
  if (cshim_config_get(v, "max_calls_in_flight") && (calls < 1 || calls > 65536))
    return fail_node(cshim_config_get(v, "max_calls_in_flight"), err,
                     "`ttrpc.max_calls_in_flight` must be between 1 and 65536 (found %llu)",
                     (unsigned long long)calls);
  if (cshim_config_get(v, "buffer_budget_mib") && (mib < 5 || mib > 65536))
    return fail_node(cshim_config_get(v, "buffer_budget_mib"), err,
                     "`ttrpc.buffer_budget_mib` must be between 5 and 65536 (found %llu)",
                     (unsigned long long)mib);
  c->ttrpc_max_calls_in_flight = (size_t)calls;
  c->ttrpc_buffer_budget = (size_t)mib << 20;
  c->ttrpc_stalled_frame_timeout_ms = stall_ms;
  return 0;
}
