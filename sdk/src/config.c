// SPDX-License-Identifier: Apache-2.0
// Typed, location-aware accessors over the read-only YAML tree a plugin receives as its section.
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include <cshim/config.h>
#include <cshim/error.h>

/* Hand-built trees (tests, mocks) may leave file unset; messages must still read well. */
static const char *
file_of(const cshim_config_node_t *node)
{
  return node->file ? node->file : "<config>";
}

static int
fail_type(const cshim_config_node_t *node, const char *key, const char *expected,
          cshim_error_t *err)
{
  return cshim_error_make(err, EINVAL, "%s:%u:%u: `%s` must be %s", file_of(node), node->line,
                          node->column, key, expected);
}

static bool
is_plain(const cshim_config_node_t *node)
{
  return node->kind == CSHIM_CONFIG_SCALAR && !node->quoted && node->value != NULL;
}

static bool
word_is_any(const char *s, const char *const *words)
{
  for (size_t i = 0; words[i]; i++)
    if (strcmp(s, words[i]) == 0)
      return true;
  return false;
}

bool
cshim_config_is_null(const cshim_config_node_t *node)
{
  static const char *const nulls[] = {"", "~", "null", "Null", "NULL", NULL};

  if (node == NULL)
    return true;
  return is_plain(node) && word_is_any(node->value, nulls);
}

const cshim_config_node_t *
cshim_config_get(const cshim_config_node_t *map, const char *key)
{
  if (map == NULL || map->kind != CSHIM_CONFIG_MAP || key == NULL)
    return NULL;
  for (size_t i = 0; i < map->n; i++)
    if (map->keys[i] && strcmp(map->keys[i], key) == 0)
      return &map->items[i];
  return NULL;
}

/* The value to convert, or NULL when the key is absent or null and the output stays as is. */
static const cshim_config_node_t *
lookup_value(const cshim_config_node_t *map, const char *key)
{
  const cshim_config_node_t *node = cshim_config_get(map, key);

  if (node == NULL || cshim_config_is_null(node))
    return NULL;
  return node;
}

int
cshim_config_get_string(const cshim_config_node_t *map, const char *key, const char **out,
                        cshim_error_t *err)
{
  const cshim_config_node_t *node = lookup_value(map, key);

  if (node == NULL)
    return 0;
  if (node->kind != CSHIM_CONFIG_SCALAR || node->value == NULL)
    return fail_type(node, key, "a string", err);
  *out = node->value;
  return 0;
}

int
cshim_config_get_bool(const cshim_config_node_t *map, const char *key, bool *out,
                      cshim_error_t *err)
{
  /* YAML 1.1 spellings, limited to the unambiguous words (no y/n). */
  static const char *const yes[] = {"true", "True", "TRUE", "yes", "Yes",
                                    "YES",  "on",   "On",   "ON",  NULL};
  static const char *const no[] = {"false", "False", "FALSE", "no",  "No",
                                   "NO",    "off",   "Off",   "OFF", NULL};
  const cshim_config_node_t *node = lookup_value(map, key);

  if (node == NULL)
    return 0;
  if (is_plain(node) && word_is_any(node->value, yes))
    *out = true;
  else if (is_plain(node) && word_is_any(node->value, no))
    *out = false;
  else
    return fail_type(node, key, "a boolean (true or false, unquoted)", err);
  return 0;
}

/* Decimal digits into *out; -ERANGE on overflow, -EINVAL when s is not all digits. */
static int
parse_decimal(const char *s, size_t len, uint64_t *out)
{
  uint64_t v = 0;

  if (len == 0)
    return -EINVAL;
  for (size_t i = 0; i < len; i++) {
    unsigned d;

    if (s[i] < '0' || s[i] > '9')
      return -EINVAL;
    d = (unsigned)(s[i] - '0');
    if (v > (UINT64_MAX - d) / 10)
      return -ERANGE;
    v = v * 10 + d;
  }
  *out = v;
  return 0;
}

int
cshim_config_get_uint(const cshim_config_node_t *map, const char *key, uint64_t *out,
                      cshim_error_t *err)
{
  const cshim_config_node_t *node = lookup_value(map, key);
  uint64_t v;
  int ret;

  if (node == NULL)
    return 0;
  if (!is_plain(node))
    return fail_type(node, key, "a non-negative integer", err);
  ret = parse_decimal(node->value, strlen(node->value), &v);
  if (ret == -ERANGE)
    return cshim_error_make(err, EINVAL, "%s:%u:%u: `%s` is too large: `%s` (at most %" PRIu64 ")",
                            file_of(node), node->line, node->column, key, node->value, UINT64_MAX);
  if (ret < 0)
    return fail_type(node, key, "a non-negative integer", err);
  *out = v;
  return 0;
}

static int
lookup_unit(const char *unit, size_t len, uint64_t *ms)
{
  static const struct
  {
    const char *name;
    uint64_t ms;
  } units[] = {{"ms", 1}, {"s", 1000}, {"m", 60 * 1000}, {"h", 60 * 60 * 1000}};

  for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++)
    if (strlen(units[i].name) == len && memcmp(units[i].name, unit, len) == 0) {
      *ms = units[i].ms;
      return 0;
    }
  return -EINVAL;
}

/* A sequence of <digits><unit> parts, as Go writes durations: "1m30s", "500ms". */
static int
parse_duration(const cshim_config_node_t *node, const char *key, uint64_t *out, cshim_error_t *err)
{
  const char *s = node->value;
  uint64_t total = 0;

  if (*s == '\0')
    return fail_type(node, key, "a duration such as 500ms, 5s or 2m", err);
  while (*s) {
    size_t ndigits = strspn(s, "0123456789");
    size_t nunit = strcspn(s + ndigits, "0123456789");
    uint64_t n, scale;
    int ret;

    if (ndigits == 0)
      return fail_type(node, key, "a duration such as 500ms, 5s or 2m", err);
    if (s[ndigits] == '.')
      return cshim_error_make(
          err, EINVAL, "%s:%u:%u: `%s`: duration `%s` must use whole numbers, such as 1500ms",
          file_of(node), node->line, node->column, key, node->value);
    if (nunit == 0)
      return cshim_error_make(err, EINVAL,
                              "%s:%u:%u: `%s`: missing unit in duration `%s` (use ms, s, m or h)",
                              file_of(node), node->line, node->column, key, node->value);
    if (lookup_unit(s + ndigits, nunit, &scale) < 0)
      return cshim_error_make(
          err, EINVAL, "%s:%u:%u: `%s`: unknown unit `%.*s` in duration `%s` (use ms, s, m or h)",
          file_of(node), node->line, node->column, key, (int)nunit, s + ndigits, node->value);
    ret = parse_decimal(s, ndigits, &n);
    if (ret == 0 && n > UINT64_MAX / scale)
      ret = -ERANGE;
    if (ret == 0 && total > UINT64_MAX - n * scale)
      ret = -ERANGE;
    if (ret < 0)
      return cshim_error_make(err, EINVAL, "%s:%u:%u: `%s`: duration `%s` is too large",
                              file_of(node), node->line, node->column, key, node->value);
    total += n * scale;
    s += ndigits + nunit;
  }
  *out = total;
  return 0;
}

int
cshim_config_get_duration_ms(const cshim_config_node_t *map, const char *key, uint64_t *out,
                             cshim_error_t *err)
{
  const cshim_config_node_t *node = lookup_value(map, key);
  uint64_t v;
  int ret;

  if (node == NULL)
    return 0;
  if (node->kind != CSHIM_CONFIG_SCALAR || node->value == NULL)
    return fail_type(node, key, "a duration such as 500ms, 5s or 2m", err);

  /* An unquoted bare integer counts milliseconds; in any other form the unit is mandatory. */
  if (!node->quoted && node->value[0] != '\0' &&
      node->value[strspn(node->value, "0123456789")] == '\0') {
    ret = parse_decimal(node->value, strlen(node->value), &v);
    if (ret < 0)
      return cshim_error_make(err, EINVAL, "%s:%u:%u: `%s`: duration `%s` is too large",
                              file_of(node), node->line, node->column, key, node->value);
    *out = v;
    return 0;
  }
  return parse_duration(node, key, out, err);
}

int
cshim_config_check_keys(const cshim_config_node_t *map, const char *const *allowed,
                        const char *what, cshim_error_t *err)
{
  if (cshim_config_is_null(map))
    return 0;
  if (map->kind != CSHIM_CONFIG_MAP)
    return cshim_error_make(err, EINVAL, "%s:%u:%u: %s must be a map", file_of(map), map->line,
                            map->column, what);
  for (size_t i = 0; i < map->n; i++) {
    const char *key = map->keys[i] ? map->keys[i] : "";

    if (allowed == NULL || !word_is_any(key, allowed))
      return cshim_error_make(err, EINVAL, "%s:%u:%u: unknown key `%s` in %s",
                              file_of(&map->items[i]), map->items[i].line, map->items[i].column,
                              key, what);
  }
  return 0;
}
