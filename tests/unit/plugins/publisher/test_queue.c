// SPDX-License-Identifier: Apache-2.0
// Tests of plugins/publisher/queue.c: FIFO order, the bound, forced pushes, clearing.
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cshim/util.h>

#include "queue.h"

#include <cmocka.h>

static publisher_item_t *
item(const char *topic)
{
  uint8_t *payload = cshim_xmemdup(topic, strlen(topic));

  return publisher_item_new(topic, "c1", false, payload, strlen(topic));
}

static void
test_queue_keeps_fifo_order(void **state)
{
  publisher_queue_t q;
  const char *topics[] = {"/tasks/create", "/tasks/start", "/tasks/exit", "/tasks/delete"};

  publisher_queue_init(&q, 8);
  assert_null(publisher_queue_peek(&q));
  assert_null(publisher_queue_pop(&q));
  for (size_t i = 0; i < 4; i++)
    assert_int_equal(publisher_queue_push(&q, item(topics[i]), false), 0);
  assert_int_equal(q.len, 4);
  assert_string_equal(publisher_queue_peek(&q)->topic, "/tasks/create");
  for (size_t i = 0; i < 4; i++) {
    publisher_item_t *it = publisher_queue_pop(&q);
    assert_string_equal(it->topic, topics[i]);
    assert_int_equal(it->seq, i);
    assert_string_equal(it->container_id, "c1");
    assert_int_equal(it->payload_len, strlen(topics[i]));
    assert_memory_equal(it->payload, topics[i], it->payload_len);
    assert_true(cshim_list_empty(&it->link)); /* out of the queue */
    publisher_item_free(it);
  }
  assert_int_equal(q.len, 0);
  assert_null(publisher_queue_peek(&q));
  assert_true(cshim_list_empty(&q.items));
}

static void
test_queue_refuses_push_at_bound_unless_forced(void **state)
{
  publisher_queue_t q;
  publisher_item_t *extra = item("/tasks/oom");

  publisher_queue_init(&q, 2);
  assert_int_equal(publisher_queue_push(&q, item("/a"), false), 0);
  assert_false(publisher_queue_is_full(&q));
  assert_int_equal(publisher_queue_push(&q, item("/b"), false), 0);
  assert_true(publisher_queue_is_full(&q));
  assert_int_equal(publisher_queue_push(&q, extra, false), -ENOSPC);
  assert_int_equal(q.len, 2);
  /* Forced, the queue grows past its bound and keeps the order. */
  assert_int_equal(publisher_queue_push(&q, extra, true), 0);
  assert_int_equal(q.len, 3);
  publisher_item_free(publisher_queue_pop(&q));
  publisher_item_free(publisher_queue_pop(&q));
  assert_ptr_equal(publisher_queue_peek(&q), extra);
  assert_int_equal(extra->seq, 2);
  publisher_queue_clear(&q);
}

static void
test_queue_interleaved_push_pop_keeps_order(void **state)
{
  publisher_queue_t q;
  char topic[16];
  uint64_t want = 0;

  publisher_queue_init(&q, 4);
  for (int round = 0; round < 10; round++) {
    for (int k = 0; k < 3; k++) {
      snprintf(topic, sizeof topic, "/t/%d", round * 3 + k);
      assert_int_equal(publisher_queue_push(&q, item(topic), false), 0);
    }
    for (int k = 0; k < 3; k++) {
      publisher_item_t *it = publisher_queue_pop(&q);
      assert_int_equal(it->seq, want++);
      publisher_item_free(it);
    }
  }
  assert_int_equal(q.len, 0);
}

static void
test_queue_clear_frees_everything(void **state)
{
  publisher_queue_t q;

  publisher_queue_init(&q, 100);
  for (int i = 0; i < 50; i++)
    assert_int_equal(publisher_queue_push(&q, item("/tasks/exit"), false), 0);
  publisher_queue_clear(&q);
  assert_int_equal(q.len, 0);
  assert_null(publisher_queue_peek(&q));
  publisher_item_free(NULL);
}

static void
test_queue_item_without_container_id(void **state)
{
  publisher_item_t *it = publisher_item_new("/x", NULL, true, NULL, 0);

  assert_null(it->container_id);
  assert_true(it->is_exit);
  assert_int_equal(it->failures, 0);
  publisher_item_free(it);
}

int
main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_queue_keeps_fifo_order),
      cmocka_unit_test(test_queue_refuses_push_at_bound_unless_forced),
      cmocka_unit_test(test_queue_interleaved_push_pop_keeps_order),
      cmocka_unit_test(test_queue_clear_frees_everything),
      cmocka_unit_test(test_queue_item_without_container_id),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
