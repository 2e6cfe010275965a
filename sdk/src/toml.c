// SPDX-License-Identifier: Apache-2.0
// A strict reader for the TOML subset containerd's encoders write: key = scalar lines, tables.
#include <cshim/toml.h>

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cshim/util.h>

struct text
{
  char *p;
  size_t len, cap;
};

static void
text_add(struct text *t, const char *s, size_t n)
{
  if (t->len + n + 1 > t->cap) {
    t->cap = (t->len + n + 1) * 2;
    t->p = cshim_xrealloc(t->p, t->cap);
  }
  memcpy(t->p + t->len, s, n);
  t->len += n;
  t->p[t->len] = '\0';
}

struct parser
{
  const char *s;
  size_t len, pos;
  unsigned line;
  size_t line_start;
  const char *source;
  cshim_toml_t *doc;
  size_t *header_depth; /* per entry: depth of the [table] it was written under */
  char *table;          /* current [table] key, "" at the top */
  size_t table_depth;
};

static int __attribute__((format(printf, 4, 5)))
fail_at(struct parser *ps, size_t pos, cshim_error_t *err, const char *fmt, ...)
{
  char msg[256];
  va_list ap;
  unsigned col = (unsigned)(pos - ps->line_start) + 1;

  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  return cshim_error_make(err, EINVAL, "%s:%u:%u: %s", ps->source, ps->line, col, msg);
}

static int
peek(const struct parser *ps, size_t ahead)
{
  return ps->pos + ahead < ps->len ? (unsigned char)ps->s[ps->pos + ahead] : -1;
}

static void
skip_blanks(struct parser *ps)
{
  while (peek(ps, 0) == ' ' || peek(ps, 0) == '\t')
    ps->pos++;
}

static bool
is_bare(int c)
{
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' ||
         c == '-';
}

/* Length of the UTF-8 sequence at s (at most n bytes), 0 when it is not well-formed. */
static size_t
utf8_length(const unsigned char *s, size_t n)
{
  unsigned cp;
  size_t need;

  if (s[0] < 0x80)
    return 1;
  if (s[0] >= 0xc2 && s[0] <= 0xdf)
    need = 2, cp = s[0] & 0x1f;
  else if (s[0] >= 0xe0 && s[0] <= 0xef)
    need = 3, cp = s[0] & 0x0f;
  else if (s[0] >= 0xf0 && s[0] <= 0xf4)
    need = 4, cp = s[0] & 0x07;
  else
    return 0;
  if (n < need)
    return 0;
  for (size_t i = 1; i < need; i++) {
    if ((s[i] & 0xc0) != 0x80)
      return 0;
    cp = (cp << 6) | (s[i] & 0x3f);
  }
  if ((need == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
      (need == 4 && (cp < 0x10000 || cp > 0x10ffff)))
    return 0;
  return need;
}

static void
put_utf8(struct text *t, unsigned cp)
{
  char u[4];
  size_t n;

  if (cp < 0x80)
    u[0] = (char)cp, n = 1;
  else if (cp < 0x800) {
    u[0] = (char)(0xc0 | (cp >> 6));
    u[1] = (char)(0x80 | (cp & 0x3f));
    n = 2;
  } else if (cp < 0x10000) {
    u[0] = (char)(0xe0 | (cp >> 12));
    u[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
    u[2] = (char)(0x80 | (cp & 0x3f));
    n = 3;
  } else {
    u[0] = (char)(0xf0 | (cp >> 18));
    u[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
    u[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
    u[3] = (char)(0x80 | (cp & 0x3f));
    n = 4;
  }
  text_add(t, u, n);
}

/* Control characters TOML forbids in strings and comments. go-toml v1 writes U+001F and U+007F
   unescaped (its escaper stops below 0x1f), so those two are read as they come. */
static bool
forbidden_control(int c)
{
  return c >= 0 && c < 0x1f && c != '\t';
}

/* One UTF-8 character of a string or comment at ps->pos, copied to t when t is not NULL. */
static int
take_char(struct parser *ps, struct text *t, const char *what, cshim_error_t *err)
{
  int c = peek(ps, 0);
  size_t n;

  if (forbidden_control(c))
    return fail_at(ps, ps->pos, err, "control character 0x%02x in %s", (unsigned)c, what);
  n = utf8_length((const unsigned char *)ps->s + ps->pos, ps->len - ps->pos);
  if (n == 0)
    return fail_at(ps, ps->pos, err, "invalid UTF-8 in %s", what);
  if (t)
    text_add(t, ps->s + ps->pos, n);
  ps->pos += n;
  return 0;
}

static int
read_hex(struct parser *ps, size_t digits, unsigned *out, cshim_error_t *err)
{
  unsigned v = 0;

  for (size_t i = 0; i < digits; i++) {
    int c = peek(ps, 0);
    int d = cshim_hexval(c);
    if (d < 0)
      return fail_at(ps, ps->pos, err, "expected %zu hex digits in a \\u escape", digits);
    v = (v << 4) | (unsigned)d;
    ps->pos++;
  }
  *out = v;
  return 0;
}

/* A one-line string at ps->pos (on its opening quote); *out is malloc'ed. */
static int
read_string(struct parser *ps, char **out, cshim_error_t *err)
{
  struct text t = {0};
  char quote = ps->s[ps->pos];
  size_t start = ps->pos;

  text_add(&t, "", 0);
  if (peek(ps, 1) == quote && peek(ps, 2) == quote) {
    free(t.p);
    return fail_at(ps, start, err, "multi-line strings are not supported");
  }
  ps->pos++;
  for (;;) {
    int c = peek(ps, 0);

    if (c < 0 || c == '\n' || c == '\r') {
      free(t.p);
      return fail_at(ps, start, err, "unterminated string");
    }
    if (c == quote) {
      ps->pos++;
      break;
    }
    if (c == '\\' && quote == '"') {
      unsigned cp = 0;
      int e = peek(ps, 1);
      static const char from[] = "btnfr\"\\", to[] = "\b\t\n\f\r\"\\";
      const char *hit = e > 0 ? strchr(from, e) : NULL;

      if (hit) {
        text_add(&t, &to[hit - from], 1);
        ps->pos += 2;
        continue;
      }
      if (e != 'u' && e != 'U') {
        free(t.p);
        return fail_at(ps, ps->pos, err, "unknown escape sequence in a string");
      }
      ps->pos += 2;
      if (read_hex(ps, e == 'u' ? 4 : 8, &cp, err) < 0) {
        free(t.p);
        return -EINVAL;
      }
      if (cp == 0 || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) {
        free(t.p);
        return fail_at(ps, ps->pos, err, "escape names U+%04X, which a string here may not hold",
                       cp);
      }
      put_utf8(&t, cp);
      continue;
    }
    if (take_char(ps, &t, "a string", err) < 0) {
      free(t.p);
      return -EINVAL;
    }
  }
  *out = t.p;
  return 0;
}

/* Append one key part to k in canonical form (bare when it may be, else "..."). */
static void
add_key_part(struct text *k, const char *part)
{
  bool bare = part[0] != '\0';

  for (const char *c = part; *c && bare; c++)
    bare = is_bare((unsigned char)*c);
  if (k->len)
    text_add(k, ".", 1);
  if (bare) {
    text_add(k, part, strlen(part));
    return;
  }
  text_add(k, "\"", 1);
  for (const unsigned char *c = (const unsigned char *)part; *c; c++) {
    char esc[8];
    if (*c == '"' || *c == '\\') {
      esc[0] = '\\';
      esc[1] = (char)*c;
      text_add(k, esc, 2);
    } else if (*c < 0x20 || *c == 0x7f) {
      snprintf(esc, sizeof esc, "\\u%04X", *c);
      text_add(k, esc, 6);
    } else
      text_add(k, (const char *)c, 1);
  }
  text_add(k, "\"", 1);
}

/* A dotted key at ps->pos into k (appended to what k holds); *depth counts its parts. */
static int
read_key(struct parser *ps, struct text *k, size_t *depth, cshim_error_t *err)
{
  for (;;) {
    cshim_autofree char *part = NULL;
    int c;

    skip_blanks(ps);
    c = peek(ps, 0);
    if (c == '"' || c == '\'') {
      if (read_string(ps, &part, err) < 0)
        return -EINVAL;
    } else if (is_bare(c)) {
      size_t start = ps->pos;
      while (is_bare(peek(ps, 0)))
        ps->pos++;
      part = cshim_xstrndup(ps->s + start, ps->pos - start);
    } else
      return fail_at(ps, ps->pos, err, "expected a key");
    if (++*depth > CSHIM_TOML_MAX_DEPTH)
      return fail_at(ps, ps->pos, err, "keys nest deeper than %d", CSHIM_TOML_MAX_DEPTH);
    add_key_part(k, part);
    skip_blanks(ps);
    if (peek(ps, 0) != '.')
      return 0;
    ps->pos++;
  }
}

/* After a value or header: blanks, an optional comment, then the end of the line or text. */
static int
end_line(struct parser *ps, cshim_error_t *err)
{
  skip_blanks(ps);
  if (peek(ps, 0) == '#') {
    ps->pos++;
    while (peek(ps, 0) >= 0 && peek(ps, 0) != '\n' && peek(ps, 0) != '\r')
      if (take_char(ps, NULL, "a comment", err) < 0)
        return -EINVAL;
  }
  if (peek(ps, 0) == '\r' && peek(ps, 1) == '\n')
    ps->pos++;
  if (peek(ps, 0) == '\n') {
    ps->pos++;
    ps->line++;
    ps->line_start = ps->pos;
    return 0;
  }
  if (peek(ps, 0) < 0)
    return 0;
  return fail_at(ps, ps->pos, err, "expected the end of the line");
}

static bool
is_prefix(const char *prefix, const char *key)
{
  size_t n = strlen(prefix);
  return strncmp(prefix, key, n) == 0 && key[n] == '.';
}

/* TOML's rules on redefinition: a key once, a [table] once, a value never used as a table, and
   a table made by dotted keys not opened again by a header. */
static int
check_new_key(struct parser *ps, const char *key, size_t depth, bool header, size_t at,
              cshim_error_t *err)
{
  for (size_t i = 0; i < ps->doc->n; i++) {
    const cshim_toml_entry_t *e = &ps->doc->entries[i];
    bool value = e->kind != CSHIM_TOML_TABLE;

    if (strcmp(e->key, key) == 0)
      return fail_at(ps, at, err, "`%s` is defined twice (first on line %u)", key, e->line);
    if (value && is_prefix(e->key, key))
      return fail_at(ps, at, err, "`%s` is a value (line %u), not a table", e->key, e->line);
    if (!header && is_prefix(key, e->key))
      return fail_at(ps, at, err, "`%s` is already a table (line %u)", key, e->line);
    if (header && value && is_prefix(key, e->key) && ps->header_depth[i] < depth)
      return fail_at(ps, at, err, "table `%s` was already made by dotted keys (line %u)", key,
                     e->line);
  }
  return 0;
}

static cshim_toml_entry_t *
add_entry(struct parser *ps, char *key, size_t depth, cshim_toml_kind_t kind, unsigned line,
          unsigned column)
{
  cshim_toml_entry_t *e;

  ps->doc->entries = cshim_xrealloc(ps->doc->entries, (ps->doc->n + 1) * sizeof *e);
  ps->header_depth = cshim_xrealloc(ps->header_depth, (ps->doc->n + 1) * sizeof(size_t));
  ps->header_depth[ps->doc->n] = ps->table_depth;
  e = &ps->doc->entries[ps->doc->n++];
  memset(e, 0, sizeof *e);
  e->key = key;
  e->depth = depth;
  e->kind = kind;
  e->line = line;
  e->column = column;
  return e;
}

static bool
word_at(const struct parser *ps, const char *w)
{
  size_t n = strlen(w);
  return ps->len - ps->pos >= n && memcmp(ps->s + ps->pos, w, n) == 0 && !is_bare(peek(ps, n));
}

static int
read_integer(struct parser *ps, int64_t *out, cshim_error_t *err)
{
  size_t start = ps->pos;
  bool negative = false;
  uint64_t v = 0, limit;
  size_t digits = 0;

  if (peek(ps, 0) == '+' || peek(ps, 0) == '-')
    negative = ps->s[ps->pos++] == '-';
  limit = negative ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
  if (peek(ps, 0) == '0' && (peek(ps, 1) == 'x' || peek(ps, 1) == 'o' || peek(ps, 1) == 'b'))
    return fail_at(ps, start, err, "hexadecimal, octal and binary integers are not supported");
  if (word_at(ps, "inf") || word_at(ps, "nan"))
    return fail_at(ps, start, err, "floating-point values are not supported");
  for (;;) {
    int c = peek(ps, 0);
    if (c >= '0' && c <= '9') {
      if (digits == 1 && v == 0)
        return fail_at(ps, start, err, "integer with a leading zero");
      if (v > (limit - (uint64_t)(c - '0')) / 10)
        return fail_at(ps, start, err, "integer out of the 64-bit range");
      v = v * 10 + (uint64_t)(c - '0');
      digits++;
      ps->pos++;
    } else if (c == '_' && digits > 0 && peek(ps, 1) >= '0' && peek(ps, 1) <= '9')
      ps->pos++;
    else
      break;
  }
  if (digits == 0)
    return fail_at(ps, start, err, "expected a value");
  if (peek(ps, 0) == '.' || peek(ps, 0) == 'e' || peek(ps, 0) == 'E')
    return fail_at(ps, start, err, "floating-point values are not supported");
  if (peek(ps, 0) == '-' || peek(ps, 0) == ':')
    return fail_at(ps, start, err, "dates and times are not supported");
  if (is_bare(peek(ps, 0)))
    return fail_at(ps, start, err, "malformed value");
  *out = negative ? (int64_t)(0 - v) : (int64_t)v;
  return 0;
}

static int
read_value(struct parser *ps, cshim_toml_entry_t *e, cshim_error_t *err)
{
  int c = peek(ps, 0);

  if (c == '"' || c == '\'') {
    e->kind = CSHIM_TOML_STRING;
    return read_string(ps, &e->string, err);
  }
  if (word_at(ps, "true") || word_at(ps, "false")) {
    e->kind = CSHIM_TOML_BOOL;
    e->boolean = c == 't';
    ps->pos += e->boolean ? 4 : 5;
    return 0;
  }
  if (c == '[')
    return fail_at(ps, ps->pos, err, "arrays are not supported");
  if (c == '{')
    return fail_at(ps, ps->pos, err, "inline tables are not supported");
  if ((c >= '0' && c <= '9') || c == '+' || c == '-' || c == 'i' || c == 'n') {
    e->kind = CSHIM_TOML_INT;
    return read_integer(ps, &e->integer, err);
  }
  return fail_at(ps, ps->pos, err, "expected a value");
}

static int
read_header(struct parser *ps, cshim_error_t *err)
{
  struct text k = {0};
  size_t depth = 0, at = ps->pos;
  unsigned line = ps->line, col = (unsigned)(ps->pos - ps->line_start) + 1;

  if (peek(ps, 1) == '[')
    return fail_at(ps, at, err, "arrays of tables are not supported");
  ps->pos++;
  text_add(&k, "", 0);
  if (read_key(ps, &k, &depth, err) < 0 || check_new_key(ps, k.p, depth, true, at, err) < 0) {
    free(k.p);
    return -EINVAL;
  }
  if (peek(ps, 0) != ']') {
    free(k.p);
    return fail_at(ps, ps->pos, err, "expected `]`");
  }
  ps->pos++;
  free(ps->table);
  ps->table = cshim_xstrdup(k.p);
  ps->table_depth = depth;
  add_entry(ps, k.p, depth, CSHIM_TOML_TABLE, line, col);
  return end_line(ps, err);
}

static int
read_key_value(struct parser *ps, cshim_error_t *err)
{
  struct text k = {0};
  size_t depth = ps->table_depth, at = ps->pos;
  unsigned line = ps->line, col = (unsigned)(ps->pos - ps->line_start) + 1;
  cshim_toml_entry_t *e;

  text_add(&k, ps->table, strlen(ps->table));
  if (read_key(ps, &k, &depth, err) < 0 || check_new_key(ps, k.p, depth, false, at, err) < 0) {
    free(k.p);
    return -EINVAL;
  }
  if (peek(ps, 0) != '=') {
    free(k.p);
    return fail_at(ps, ps->pos, err, "expected `=` after the key");
  }
  ps->pos++;
  skip_blanks(ps);
  e = add_entry(ps, k.p, depth, CSHIM_TOML_STRING, line, col);
  if (read_value(ps, e, err) < 0)
    return -EINVAL;
  return end_line(ps, err);
}

static int
parse(struct parser *ps, cshim_error_t *err)
{
  while (ps->pos < ps->len) {
    int c;

    skip_blanks(ps);
    c = peek(ps, 0);
    if (c < 0)
      break;
    if (c == '#' || c == '\n' || c == '\r') {
      if (end_line(ps, err) < 0)
        return -EINVAL;
      continue;
    }
    if (ps->doc->n >= CSHIM_TOML_MAX_ENTRIES)
      return fail_at(ps, ps->pos, err, "more than %d keys", CSHIM_TOML_MAX_ENTRIES);
    if ((c == '[' ? read_header(ps, err) : read_key_value(ps, err)) < 0)
      return -EINVAL;
  }
  return 0;
}

int
cshim_toml_parse(const char *text, size_t len, const char *source, cshim_toml_t *out,
                 cshim_error_t *err)
{
  struct parser ps = {
      .s = text,
      .len = len,
      .line = 1,
      .source = source ? source : "<toml>",
      .doc = out,
      .table = cshim_xstrdup(""),
  };
  int ret;

  memset(out, 0, sizeof *out);
  ret = parse(&ps, err);
  free(ps.table);
  free(ps.header_depth);
  if (ret < 0)
    cshim_toml_clear(out);
  return ret;
}

void
cshim_toml_clear(cshim_toml_t *doc)
{
  if (doc == NULL)
    return;
  for (size_t i = 0; i < doc->n; i++) {
    free(doc->entries[i].key);
    free(doc->entries[i].string);
  }
  free(doc->entries);
  memset(doc, 0, sizeof *doc);
}

const char *
cshim_toml_kind_name(cshim_toml_kind_t kind)
{
  switch (kind) {
  case CSHIM_TOML_STRING:
    return "string";
  case CSHIM_TOML_INT:
    return "integer";
  case CSHIM_TOML_BOOL:
    return "boolean";
  case CSHIM_TOML_TABLE:
    return "table";
  }
  return "unknown";
}
