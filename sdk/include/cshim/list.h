// SPDX-License-Identifier: Apache-2.0
// Intrusive doubly linked lists, header only: each element embeds a cshim_list_t, and so does
// the owner of the list (its head).
#ifndef CSHIM_LIST_H
#define CSHIM_LIST_H

#include <stdbool.h>
#include <stddef.h>

#include <cshim/util.h>

#ifdef __cplusplus
extern "C" {
#endif

/* A head, or the link an element is listed by. Circular once used; all zero (as from
   cshim_xmalloc0 or `= {0}`) is an empty head and an element in no list, so records that embed
   one need no initialisation. The list never owns its elements: whoever frees one removes it
   first. Not thread-safe (the loop thread's, like everything else). */
typedef struct cshim_list_s
{
  struct cshim_list_s *next, *prev;
} cshim_list_t;

/* The element that embeds link as its member `member`. */
#define cshim_list_entry(link, type, member) CSHIM_CONTAINER_OF(link, type, member)

static inline void
cshim_list_init(cshim_list_t *l)
{
  l->next = l->prev = l;
}

/* True when the head has no element (or the link is in no list). */
static inline bool
cshim_list_empty(const cshim_list_t *l)
{
  return l->next == NULL || l->next == l;
}

/* Link item (in no list) right after pos (a head or a listed link). */
static inline void
cshim_list_insert_after(cshim_list_t *pos, cshim_list_t *item)
{
  if (pos->next == NULL)
    cshim_list_init(pos);
  item->prev = pos;
  item->next = pos->next;
  pos->next->prev = item;
  pos->next = item;
}

/* Insert item (in no list) first or last. */
static inline void
cshim_list_push_front(cshim_list_t *head, cshim_list_t *item)
{
  cshim_list_insert_after(head, item);
}

static inline void
cshim_list_push_back(cshim_list_t *head, cshim_list_t *item)
{
  if (head->next == NULL)
    cshim_list_init(head);
  cshim_list_insert_after(head->prev, item);
}

/* Take item out of its list (it is then in no list); harmless for an item in no list. */
static inline void
cshim_list_remove(cshim_list_t *item)
{
  if (!cshim_list_empty(item)) {
    item->prev->next = item->next;
    item->next->prev = item->prev;
  }
  item->next = item->prev = NULL;
}

/* Move every element of src, in order, to dst (an empty head); src is empty after. */
static inline void
cshim_list_move(cshim_list_t *dst, cshim_list_t *src)
{
  if (cshim_list_empty(src)) {
    dst->next = dst->prev = NULL;
    return;
  }
  dst->next = src->next;
  dst->prev = src->prev;
  dst->next->prev = dst;
  dst->prev->next = dst;
  src->next = src->prev = NULL;
}

/* The first or last link, NULL when the list is empty. */
static inline cshim_list_t *
cshim_list_first(const cshim_list_t *head)
{
  return cshim_list_empty(head) ? NULL : head->next;
}

static inline cshim_list_t *
cshim_list_last(const cshim_list_t *head)
{
  return cshim_list_empty(head) ? NULL : head->prev;
}

/* The number of elements (walks the list). */
static inline size_t
cshim_list_length(const cshim_list_t *head)
{
  size_t n = 0;
  if (!cshim_list_empty(head))
    for (const cshim_list_t *l = head->next; l != head; l = l->next)
      n++;
  return n;
}

/* Iterate over the links of head in order: `cshim_list_t *l; CSHIM_LIST_FOREACH (l, &c->ops)`.
   The body must not remove l (see CSHIM_LIST_FOREACH_SAFE). */
#define CSHIM_LIST_FOREACH(l, head)                                                                \
  for ((l) = cshim_list_first(head); (l) != NULL && (l) != (head); (l) = (l)->next)

/* The same, and the body may remove l (tmp holds the next link). */
#define CSHIM_LIST_FOREACH_SAFE(l, tmp, head)                                                      \
  for ((l) = cshim_list_first(head), (tmp) = (l) ? (l)->next : NULL; (l) != NULL && (l) != (head); \
       (l) = (tmp), (tmp) = (l)->next)

#ifdef __cplusplus
}
#endif
#endif
