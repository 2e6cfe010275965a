// SPDX-License-Identifier: Apache-2.0
// The publisher's in-order event queue: a bounded FIFO of packed Forward requests.
#include <errno.h>
#include <stdlib.h>

#include <cshim/util.h>

#include "queue.h"

publisher_item_t *
publisher_item_new(const char *topic, const char *container_id, bool is_exit, uint8_t *payload,
                   size_t payload_len)
{
  publisher_item_t *item = cshim_xmalloc0(sizeof *item);

  item->topic = cshim_xstrdup(topic);
  item->container_id = cshim_xstrdup(container_id);
  item->is_exit = is_exit;
  item->payload = payload;
  item->payload_len = payload_len;
  return item;
}

void
publisher_item_free(publisher_item_t *item)
{
  if (item == NULL)
    return;
  free(item->topic);
  free(item->container_id);
  free(item->payload);
  free(item);
}

void
publisher_queue_init(publisher_queue_t *q, size_t bound)
{
  cshim_list_init(&q->items);
  q->len = 0;
  q->bound = bound;
  q->next_seq = 0;
}

bool
publisher_queue_is_full(const publisher_queue_t *q)
{
  return q->len >= q->bound;
}

int
publisher_queue_push(publisher_queue_t *q, publisher_item_t *item, bool force)
{
  if (publisher_queue_is_full(q) && !force)
    return -ENOSPC;
  item->seq = q->next_seq++;
  cshim_list_push_back(&q->items, &item->link);
  q->len++;
  return 0;
}

publisher_item_t *
publisher_queue_peek(const publisher_queue_t *q)
{
  cshim_list_t *l = cshim_list_first(&q->items);
  return l ? cshim_list_entry(l, publisher_item_t, link) : NULL;
}

publisher_item_t *
publisher_queue_next(const publisher_queue_t *q, const publisher_item_t *it)
{
  return it->link.next == &q->items ? NULL
                                    : cshim_list_entry(it->link.next, publisher_item_t, link);
}

publisher_item_t *
publisher_queue_pop(publisher_queue_t *q)
{
  publisher_item_t *item = publisher_queue_peek(q);

  if (item == NULL)
    return NULL;
  cshim_list_remove(&item->link);
  q->len--;
  return item;
}

void
publisher_queue_clear(publisher_queue_t *q)
{
  publisher_item_t *item;

  while ((item = publisher_queue_pop(q)))
    publisher_item_free(item);
}
