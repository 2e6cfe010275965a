// SPDX-License-Identifier: Apache-2.0
// A plugin's YAML configuration section, as a read-only tree with typed accessors.
#ifndef CSHIM_CONFIG_H
#define CSHIM_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cshim/error.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum
{
  CSHIM_CONFIG_SCALAR = 1,
  CSHIM_CONFIG_MAP,
  CSHIM_CONFIG_SEQ,
} cshim_config_kind_t;

/* One YAML node. The host owns the whole tree; a plugin's section is borrowed until the
   plugin's close returns. Locations are 1-based, as editors show them. */
typedef struct cshim_config_node_s cshim_config_node_t;
struct cshim_config_node_s
{
  cshim_config_kind_t kind;
  const char *value;                /* SCALAR: the text; NULL otherwise */
  bool quoted;                      /* SCALAR: written in quotes (so never a bool/number/null) */
  size_t n;                         /* MAP/SEQ: number of entries */
  const char *const *keys;          /* MAP: n keys, in file order */
  const cshim_config_node_t *items; /* MAP/SEQ: n values, in file order */
  const char *file;                 /* path of the YAML file, or "<embedded>" */
  unsigned line, column;
};

/* The value under key in a MAP node; NULL if map is NULL, not a map, or has no such key. */
const cshim_config_node_t *cshim_config_get(const cshim_config_node_t *map, const char *key);

/* Typed lookups of map[key]. An absent key (or a null value) leaves *out unchanged and
   returns 0; a value of the wrong type fails with EINVAL and a message naming file, line,
   column and key. Strings are borrowed from the tree. */
int cshim_config_get_string(const cshim_config_node_t *map, const char *key, const char **out,
                            cshim_error_t *err);
int cshim_config_get_bool(const cshim_config_node_t *map, const char *key, bool *out,
                          cshim_error_t *err);
int cshim_config_get_uint(const cshim_config_node_t *map, const char *key, uint64_t *out,
                          cshim_error_t *err);
/* Durations: an integer number of milliseconds or a string with a unit: "500ms", "5s", "2m". */
int cshim_config_get_duration_ms(const cshim_config_node_t *map, const char *key, uint64_t *out,
                                 cshim_error_t *err);

/* Fail with EINVAL naming the first key of map that is not in allowed (NULL-terminated). A NULL
   map passes; a node that is not a map fails. `what` names the section in the message. */
int cshim_config_check_keys(const cshim_config_node_t *map, const char *const *allowed,
                            const char *what, cshim_error_t *err);

/* Whether a plain scalar is YAML null (~, null, empty). */
bool cshim_config_is_null(const cshim_config_node_t *node);

#ifdef __cplusplus
}
#endif
#endif
