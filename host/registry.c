// SPDX-License-Identifier: Apache-2.0
// Plugin registration checks and init ordering, exactly as containerd/plugin's Register and Graph.
#include "registry.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cshim/util.h>

struct graph
{
  const host_registry_entry_t *entries;
  size_t n;
  bool *handled;
  size_t *stack; /* the current depth-first path, outermost first */
  size_t depth;
  size_t *order;
  size_t n_order;
};

int
host_registry_validate(const host_registry_entry_t *entries, size_t n, cshim_error_t *err)
{
  for (size_t i = 0; i < n; i++) {
    const host_registry_entry_t *e = &entries[i];
    size_t n_requires = 0;

    if (e->type == NULL || e->type[0] == '\0')
      return cshim_error_make(err, EINVAL, "plugin: no type (id `%s`)", e->id ? e->id : "");
    if (e->id == NULL || e->id[0] == '\0')
      return cshim_error_make(err, EINVAL, "plugin: no id (type `%s`)", e->type);

    /* Like Register, the check runs against what was registered before, so the message names
       the second registration of a pair. */
    for (size_t j = 0; j < i; j++)
      if (strcmp(entries[j].type, e->type) == 0 && strcmp(entries[j].id, e->id) == 0)
        return cshim_error_make(err, EEXIST, "plugin `%s.%s`: id already registered", e->type,
                                e->id);

    if (e->requires)
      while (e->requires[n_requires])
        n_requires++;
    for (size_t k = 0; k < n_requires; k++) {
      const char *r = e->requires[k];
      if (r[0] == '\0')
        return cshim_error_make(err, EINVAL, "plugin `%s.%s`: invalid requires: empty type",
                                e->type, e->id);
      if (strcmp(r, HOST_REGISTRY_ALL) == 0 && n_requires != 1)
        return cshim_error_make(err, EINVAL,
                                "plugin `%s.%s`: invalid requires: `*` combined with other "
                                "types",
                                e->type, e->id);
      if (strcmp(r, e->type) == 0)
        return cshim_error_make(
            err, EINVAL, "plugin `%s.%s`: invalid requires: requires its own type", e->type, e->id);
    }
  }
  return 0;
}

static int
make_loop_error(const struct graph *g, size_t from, size_t again, cshim_error_t *err)
{
  cshim_autofree char *path = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&path, &len);

  if (f == NULL)
    abort();
  for (size_t k = from; k < g->depth; k++)
    fprintf(f, "%s.%s -> ", g->entries[g->stack[k]].type, g->entries[g->stack[k]].id);
  fprintf(f, "%s.%s", g->entries[again].type, g->entries[again].id);
  if (fclose(f) != 0)
    abort();
  return cshim_error_make(err, ELOOP, "plugin dependency loop detected: %s", path);
}

static bool
matches(const host_registry_entry_t *candidate, const char *required)
{
  return strcmp(required, HOST_REGISTRY_ALL) == 0 || strcmp(candidate->type, required) == 0;
}

/* Expand the requirements of the registration on top of the stack. */
static int
visit_children(struct graph *g, cshim_error_t *err)
{
  size_t self = g->stack[g->depth - 1];
  const host_registry_entry_t *reg = &g->entries[self];

  if (reg->requires == NULL)
    return 0;
  for (const char *const *t = reg->requires; *t; t++)
    for (size_t i = 0; i < g->n; i++) {
      int ret;

      if (i == self || g->handled[i] || !matches(&g->entries[i], *t))
        continue;
      for (size_t k = 0; k < g->depth; k++)
        if (g->stack[k] == i)
          return make_loop_error(g, k, i, err);

      g->stack[g->depth++] = i;
      ret = visit_children(g, err);
      g->depth--;
      if (ret < 0)
        return ret;
      g->handled[i] = true;
      g->order[g->n_order++] = i;
    }
  return 0;
}

int
host_registry_sort(const host_registry_entry_t *entries, size_t n, const bool *disabled,
                   size_t *order_out, size_t *n_out, cshim_error_t *err)
{
  cshim_autofree bool *handled = NULL;
  cshim_autofree size_t *stack = NULL;
  struct graph g;
  int ret;

  ret = host_registry_validate(entries, n, err);
  if (ret < 0)
    return ret;

  /* Disabled registrations start out handled: never appended, never expanded. */
  handled = cshim_xmalloc0(n * sizeof(*handled) + 1);
  stack = cshim_xmalloc((n + 1) * sizeof(*stack));
  for (size_t i = 0; i < n; i++)
    handled[i] = disabled != NULL && disabled[i];

  g = (struct graph){.entries = entries,
                     .n = n,
                     .handled = handled,
                     .stack = stack,
                     .depth = 0,
                     .order = order_out,
                     .n_order = 0};
  for (size_t i = 0; i < n; i++) {
    if (handled[i])
      continue;
    g.stack[0] = i;
    g.depth = 1;
    ret = visit_children(&g, err);
    if (ret < 0)
      return ret;
    handled[i] = true;
    order_out[g.n_order++] = i;
  }
  *n_out = g.n_order;
  return 0;
}
