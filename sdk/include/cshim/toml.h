// SPDX-License-Identifier: Apache-2.0
// A small strict TOML reader for the documents containerd writes (runtime options config_body).
#ifndef CSHIM_TOML_H
#define CSHIM_TOML_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cshim/error.h>

#ifdef __cplusplus
extern "C" {
#endif

/* What a value is. Only what containerd's TOML encoders write for a RuntimeClass's `options`
   table with scalar values is read; anything else in a document is an error, never skipped. */
typedef enum cshim_toml_kind_e
{
  CSHIM_TOML_STRING = 0, /* basic "..." or literal '...' (one line) */
  CSHIM_TOML_INT,        /* decimal, optional sign and underscores between digits, 64-bit */
  CSHIM_TOML_BOOL,       /* true / false */
  CSHIM_TOML_TABLE,      /* a [table] header (so an empty table is seen, not dropped) */
} cshim_toml_kind_t;

/* One key = value (or one table header) of a document, in document order. */
typedef struct cshim_toml_entry_s
{
  /* The full key: table path and dotted key, each part bare when it may be ("BinaryName"),
     else in double quotes with `"` and `\` escaped ("a.\"b c\""). Owned by the document. */
  char *key;
  size_t depth; /* number of parts of key: 1 = a top-level key */
  cshim_toml_kind_t kind;
  char *string; /* CSHIM_TOML_STRING: the decoded text (UTF-8, no NUL inside); owned */
  int64_t integer;
  bool boolean;
  unsigned line, column; /* where the key starts, 1-based */
} cshim_toml_entry_t;

/* A parsed document. Zero it before the first parse; release with cshim_toml_clear. */
typedef struct cshim_toml_s
{
  cshim_toml_entry_t *entries;
  size_t n;
} cshim_toml_t;

/* At most this many entries (keys and table headers) per document: EINVAL past it. */
#define CSHIM_TOML_MAX_ENTRIES 1024
/* Keys nest at most this deep (table path plus dotted key). */
#define CSHIM_TOML_MAX_DEPTH 16

/* Parse len bytes of text (need not be NUL-terminated; any byte may appear). On success *out
   holds every entry (caller owns; cshim_toml_clear). Any syntax the reader does not support
   (arrays, inline tables, floats, dates, multi-line strings, arrays of tables), a duplicate key,
   a table defined twice or a key used both as a value and as a table fails with EINVAL and a
   message "<source>:<line>:<column>: <what>"; *out is then empty. Pure: no I/O, no globals, so
   it may be called on any buffer (fuzzing). */
int cshim_toml_parse(const char *text, size_t len, const char *source, cshim_toml_t *out,
                     cshim_error_t *err);

/* Free everything doc holds and zero it. NULL-safe. */
void cshim_toml_clear(cshim_toml_t *doc);

/* "string", "integer", "boolean", "table"; static. */
const char *cshim_toml_kind_name(cshim_toml_kind_t kind);

#ifdef __cplusplus
}
#endif
#endif
