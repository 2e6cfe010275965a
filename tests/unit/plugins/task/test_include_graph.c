// SPDX-License-Identifier: Apache-2.0
// The task plugin's parts include each other without a circle: X.c and X.h are part X, and
// `#include "Y.h"` (Y.h in the same folder) in either makes X depend on Y.
#define _GNU_SOURCE
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include <cshim/util.h>

#define MAX_PARTS 128

typedef struct graph_s
{
  char *name[MAX_PARTS];
  bool edge[MAX_PARTS][MAX_PARTS];
  size_t n;
} graph_t;

static int
part_index(graph_t *g, const char *name, size_t len)
{
  for (size_t i = 0; i < g->n; i++)
    if (strlen(g->name[i]) == len && strncmp(g->name[i], name, len) == 0)
      return (int)i;
  assert_true(g->n < MAX_PARTS);
  g->name[g->n] = cshim_xstrndup(name, len);
  return (int)g->n++;
}

static bool
has_header(const char *dir, const char *header)
{
  char path[4096];
  struct stat st;
  snprintf(path, sizeof path, "%s/%s", dir, header);
  return stat(path, &st) == 0;
}

/* Read dir's *.c and *.h into g. */
static void
load(graph_t *g, const char *dir)
{
  DIR *d = opendir(dir);
  struct dirent *e;
  assert_non_null(d);
  while ((e = readdir(d)) != NULL) {
    size_t len = strlen(e->d_name);
    char path[4096], line[1024];
    FILE *f;
    int from;
    if (len < 3 || e->d_name[len - 2] != '.' ||
        (e->d_name[len - 1] != 'c' && e->d_name[len - 1] != 'h'))
      continue;
    from = part_index(g, e->d_name, len - 2);
    snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
    f = fopen(path, "r");
    assert_non_null(f);
    while (fgets(line, sizeof line, f)) {
      const char *p = line, *q;
      int to;
      while (*p == ' ' || *p == '\t')
        p++;
      if (strncmp(p, "#include \"", 10) != 0)
        continue;
      p += 10;
      q = strchr(p, '"');
      if (q == NULL || q - p < 3 || strncmp(q - 2, ".h", 2) != 0)
        continue;
      if (memchr(p, '/', (size_t)(q - p)) != NULL)
        continue; /* in a subfolder: generated */
      {
        cshim_autofree char *header = cshim_xstrndup(p, (size_t)(q - p));
        if (!has_header(dir, header))
          continue; /* generated or SDK header */
      }
      to = part_index(g, p, (size_t)(q - p) - 2);
      if (to != from)
        g->edge[from][to] = true;
    }
    fclose(f);
  }
  closedir(d);
}

/* Depth-first search; on a circle, *path gets "a -> b -> a". */
static bool
visit(const graph_t *g, size_t v, int *color, size_t *stack, size_t depth, char **path)
{
  color[v] = 1;
  stack[depth] = v;
  for (size_t w = 0; w < g->n; w++) {
    if (!g->edge[v][w])
      continue;
    if (color[w] == 1) {
      size_t start = 0;
      char *s = NULL;
      while (stack[start] != w)
        start++;
      for (size_t i = start; i <= depth; i++) {
        char *t;
        cshim_xasprintf(&t, "%s%s -> ", s ? s : "", g->name[stack[i]]);
        free(s);
        s = t;
      }
      cshim_xasprintf(path, "%s%s", s, g->name[w]);
      free(s);
      return true;
    }
    if (color[w] == 0 && visit(g, w, color, stack, depth + 1, path))
      return true;
  }
  color[v] = 2;
  return false;
}

/* NULL when dir's parts form no circle, else the circle (caller frees). */
static char *
find_circle(const char *dir)
{
  graph_t *g = cshim_xmalloc0(sizeof *g);
  int color[MAX_PARTS] = {0};
  size_t stack[MAX_PARTS];
  char *path = NULL;
  load(g, dir);
  for (size_t v = 0; v < g->n && path == NULL; v++)
    if (color[v] == 0)
      visit(g, v, color, stack, 0, &path);
  for (size_t i = 0; i < g->n; i++)
    free(g->name[i]);
  free(g);
  return path;
}

static void
write_file(const char *dir, const char *name, const char *text)
{
  char path[4096];
  FILE *f;
  snprintf(path, sizeof path, "%s/%s", dir, name);
  f = fopen(path, "w");
  assert_non_null(f);
  fputs(text, f);
  fclose(f);
}

static void
remove_dir(const char *dir, const char *const *names)
{
  char path[4096];
  for (size_t i = 0; names[i]; i++) {
    snprintf(path, sizeof path, "%s/%s", dir, names[i]);
    unlink(path);
  }
  rmdir(dir);
}

static void
test_include_graph_task_plugin_has_no_circle(void **state)
{
  cshim_autofree char *circle = find_circle(TASK_SOURCE_DIR);
  (void)state;
  if (circle)
    fail_msg("include circle in plugins/task: %s", circle);
}

/* The check fails on a circle through .c files, and passes on the same parts layered. */
static void
test_include_graph_finds_a_circle_through_c_files(void **state)
{
  static const char *const names[] = {"a.c", "a.h", "b.c", "b.h", "c.h", NULL};
  char dir[] = "/tmp/cshim-include-XXXXXX";
  cshim_autofree char *circle = NULL;
  cshim_autofree char *none = NULL;
  (void)state;

  assert_non_null(mkdtemp(dir));
  write_file(dir, "a.h", "#include \"c.h\"\n");
  write_file(dir, "b.h", "#include <stdio.h>\n");
  write_file(dir, "c.h", "#include \"containerd/x.pb-c.h\"\n");
  write_file(dir, "a.c", "#include \"a.h\"\n#include \"b.h\"\n");
  write_file(dir, "b.c", "#include \"b.h\"\n#include \"c.h\"\n");
  none = find_circle(dir);
  write_file(dir, "b.c", "#include \"b.h\"\n  #include \"a.h\"\n");
  circle = find_circle(dir);
  remove_dir(dir, names);

  assert_null(none);
  assert_non_null(circle);
  assert_true(strcmp(circle, "a -> b -> a") == 0 || strcmp(circle, "b -> a -> b") == 0);
}

int
main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_include_graph_task_plugin_has_no_circle),
      cmocka_unit_test(test_include_graph_finds_a_circle_through_c_files),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
