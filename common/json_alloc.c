/* json_alloc.c -- jansson allocators that abort on out-of-memory (see
 * chat_json_alloc.h for why). */
#include "chat_json_alloc.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

extern char *program_invocation_short_name; /* glibc */

static void *malloc_or_abort(size_t size) {
  /* malloc(0) may return NULL, which is no failure; jansson never needs 0. */
  void *p = malloc(size ? size : 1);
  if (p == NULL) {
    char line[160];
    int n = snprintf(line, sizeof(line),
                     "%s: out of memory: jansson could not allocate %zu "
                     "bytes; aborting\n",
                     program_invocation_short_name, size);
    ssize_t w;
    if (n < 0)
      n = 0;
    else if ((size_t)n >= sizeof(line))
      n = (int)sizeof(line) - 1;
    /* write(2), not stdio: nothing here may allocate. */
    w = write(2, line, (size_t)n);
    (void)w;
    abort();
  }
  return p;
}

void chat_json_alloc_abort_on_oom(void) {
  json_set_alloc_funcs(malloc_or_abort, free);
}
