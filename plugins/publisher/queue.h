// SPDX-License-Identifier: Apache-2.0
// The publisher's in-order event queue: a bounded FIFO of packed Forward requests.
#ifndef PUBLISHER_QUEUE_H
#define PUBLISHER_QUEUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cshim/list.h>

/* One event waiting to be forwarded. */
typedef struct publisher_item_s publisher_item_t;
struct publisher_item_s
{
  cshim_list_t link;  /* in the queue */
  char *topic;        /* owned */
  char *container_id; /* owned; NULL when the event has none */
  bool is_exit;       /* a TaskExit: never given up while the shim lives */
  uint8_t *payload;   /* owned: the packed ForwardRequest */
  size_t payload_len;
  unsigned failures; /* failed Forward attempts so far */
  uint64_t seq;      /* order of arrival, set by the queue */
};

/* A FIFO with a bound. Not thread-safe (loop thread only). */
typedef struct publisher_queue_s
{
  cshim_list_t items; /* publisher_item_t.link, oldest first */
  size_t len;
  size_t bound;
  uint64_t next_seq;
} publisher_queue_t;

/* Make an item; topic and container_id are copied (container_id may be NULL), payload is taken
   (the caller's pointer is left alone; it must come from malloc). */
publisher_item_t *publisher_item_new(const char *topic, const char *container_id, bool is_exit,
                                     uint8_t *payload, size_t payload_len);
void publisher_item_free(publisher_item_t *item);

void publisher_queue_init(publisher_queue_t *q, size_t bound);

/* Append item at the tail, taking it. At the bound it fails with -ENOSPC and leaves the item
   with the caller, unless force is set (the queue then grows past its bound). */
int publisher_queue_push(publisher_queue_t *q, publisher_item_t *item, bool force);

/* The head (borrowed), or NULL when empty. */
publisher_item_t *publisher_queue_peek(const publisher_queue_t *q);

/* Remove the head and hand it to the caller, or NULL when empty. */
publisher_item_t *publisher_queue_pop(publisher_queue_t *q);

bool publisher_queue_is_full(const publisher_queue_t *q);

/* The item after it (borrowed), or NULL at the tail. */
publisher_item_t *publisher_queue_next(const publisher_queue_t *q, const publisher_item_t *it);

/* Free every item. */
void publisher_queue_clear(publisher_queue_t *q);

#endif
