/* chaos.h -- fail the Nth allocation through jansson's allocator (which the
 * protocol library uses too), and count what is still live, as jansson's
 * test_chaos.c does. Header-only: each test executable includes it once. */
#ifndef CHAT_TEST_CHAOS_H
#define CHAT_TEST_CHAOS_H

#include <jansson.h>
#include <stdlib.h>

static int chaos_countdown = -1; /* allocations left before one fails */
static long chaos_live;          /* allocated minus freed */

static void *chaos_malloc(size_t size) {
  void *p;

  if (chaos_countdown == 0)
    return NULL;
  if (chaos_countdown > 0)
    chaos_countdown--;
  p = malloc(size);
  if (p != NULL)
    chaos_live++;
  return p;
}

static void chaos_free(void *p) {
  if (p != NULL)
    chaos_live--;
  free(p);
}

/* After this, the nth allocation from now (0 = the next) fails, and so does
 * every one after it; n < 0 turns failing off. */
static void chaos_arm(int n) {
  chaos_countdown = n;
  json_set_alloc_funcs(chaos_malloc, chaos_free);
}

static void chaos_disarm(void) {
  chaos_countdown = -1;
}

#endif /* CHAT_TEST_CHAOS_H */
