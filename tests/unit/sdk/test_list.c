// SPDX-License-Identifier: Apache-2.0
// Tests of <cshim/list.h>: a zeroed head is an empty list; order, removal, safe iteration.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <cshim/list.h>

struct item
{
  int value;
  cshim_list_t link;
};

/* The values in order, as one number (1, 2, 3 -> 123). */
static int
values(const cshim_list_t *head)
{
  cshim_list_t *l;
  int n = 0;
  CSHIM_LIST_FOREACH (l, head)
    n = n * 10 + cshim_list_entry(l, struct item, link)->value;
  return n;
}

static void
test_list_zeroed_head_is_empty(void **state)
{
  cshim_list_t head = {0};
  struct item a = {.value = 1};
  cshim_list_t *l;
  int visits = 0;
  (void)state;
  assert_true(cshim_list_empty(&head));
  assert_null(cshim_list_first(&head));
  assert_null(cshim_list_last(&head));
  assert_int_equal(cshim_list_length(&head), 0);
  CSHIM_LIST_FOREACH (l, &head)
    visits++;
  assert_int_equal(visits, 0);
  /* an element in no list: removing it is harmless */
  cshim_list_remove(&a.link);
  assert_true(cshim_list_empty(&a.link));
}

static void
test_list_push_front_back_and_remove_keep_order(void **state)
{
  cshim_list_t head = {0};
  struct item a = {.value = 1}, b = {.value = 2}, c = {.value = 3}, d = {.value = 4};
  (void)state;
  cshim_list_push_back(&head, &b.link);
  cshim_list_push_back(&head, &c.link);
  cshim_list_push_front(&head, &a.link);
  cshim_list_insert_after(&c.link, &d.link);
  assert_int_equal(values(&head), 1234);
  assert_int_equal(cshim_list_length(&head), 4);
  assert_ptr_equal(cshim_list_first(&head), &a.link);
  assert_ptr_equal(cshim_list_last(&head), &d.link);
  cshim_list_remove(&b.link);
  assert_int_equal(values(&head), 134);
  assert_true(cshim_list_empty(&b.link));
  cshim_list_remove(&a.link);
  cshim_list_remove(&d.link);
  assert_int_equal(values(&head), 3);
  cshim_list_remove(&c.link);
  assert_true(cshim_list_empty(&head));
  /* a head emptied by removals takes elements again */
  cshim_list_push_back(&head, &b.link);
  assert_int_equal(values(&head), 2);
}

static void
test_list_safe_iteration_may_remove_each_element(void **state)
{
  cshim_list_t head = {0}, *l, *tmp;
  struct item items[5];
  int seen = 0;
  (void)state;
  for (int i = 0; i < 5; i++) {
    items[i] = (struct item){.value = i + 1};
    cshim_list_push_back(&head, &items[i].link);
  }
  CSHIM_LIST_FOREACH_SAFE (l, tmp, &head) {
    struct item *it = cshim_list_entry(l, struct item, link);
    seen = seen * 10 + it->value;
    if (it->value % 2)
      cshim_list_remove(l);
  }
  assert_int_equal(seen, 12345);
  assert_int_equal(values(&head), 24);
  CSHIM_LIST_FOREACH_SAFE (l, tmp, &head)
    cshim_list_remove(l);
  assert_true(cshim_list_empty(&head));
}

static void
test_list_move_takes_every_element_in_order(void **state)
{
  cshim_list_t src = {0}, dst = {0};
  struct item a = {.value = 1}, b = {.value = 2};
  (void)state;
  cshim_list_move(&dst, &src);
  assert_true(cshim_list_empty(&dst));
  cshim_list_push_back(&src, &a.link);
  cshim_list_push_back(&src, &b.link);
  cshim_list_move(&dst, &src);
  assert_true(cshim_list_empty(&src));
  assert_int_equal(values(&dst), 12);
  /* the emptied source takes elements again, apart from dst */
  cshim_list_remove(&b.link);
  cshim_list_push_back(&src, &b.link);
  assert_int_equal(values(&src), 2);
  assert_int_equal(values(&dst), 1);
}

int
main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_list_zeroed_head_is_empty),
      cmocka_unit_test(test_list_push_front_back_and_remove_keep_order),
      cmocka_unit_test(test_list_safe_iteration_may_remove_each_element),
      cmocka_unit_test(test_list_move_takes_every_element_in_order),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
