/* alloc.c -- the library allocates through jansson's allocator, so one call
 * to json_set_alloc_funcs() governs it all (tests use that to fail the Nth). */
#include "protocol_int.h"

#include <jansson.h>

void *chat__malloc(size_t size) {
  json_malloc_t m;
  json_free_t f;

  json_get_alloc_funcs(&m, &f);
  return m(size);
}

void chat__free(void *ptr) {
  json_malloc_t m;
  json_free_t f;

  if (ptr == NULL)
    return;
  json_get_alloc_funcs(&m, &f);
  f(ptr);
}
