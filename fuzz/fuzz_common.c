/* fuzz_common.c -- abort on broken invariants; an allocator that fails once. */
#include "fuzz_common.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct {
  int installed;
  unsigned countdown;  /* 0: nothing armed */
  unsigned failures;
  int suspended;
} alloc;

void chat__fuzz_fail(const char *file, int line, const char *what) {
  fprintf(stderr, "FUZZ INVARIANT BROKEN at %s:%d: %s\n", file, line, what);
  fflush(stderr);
  abort();
}

static void *fuzz_malloc(size_t size) {
  if (alloc.countdown > 0 && alloc.suspended == 0 && --alloc.countdown == 0) {
    alloc.failures++;
    return NULL;
  }
  return malloc(size);
}

static void fuzz_free(void *ptr) {
  free(ptr);
}

void chat__fuzz_alloc_install(void) {
  if (alloc.installed)
    return;
  json_set_alloc_funcs(fuzz_malloc, fuzz_free);
  alloc.installed = 1;
}

void chat__fuzz_alloc_fail_at(unsigned n) {
  alloc.countdown = n;
}

unsigned chat__fuzz_alloc_failures(void) {
  return alloc.failures;
}

void chat__fuzz_alloc_suspend(void) {
  alloc.suspended++;
}

void chat__fuzz_alloc_resume(void) {
  alloc.suspended--;
}

uint8_t chat__fuzz_byte(const uint8_t **p, const uint8_t *end) {
  if (*p >= end)
    return 0;
  return *(*p)++;
}

int chat__fuzz_known_bugs(void) {
  static int cached = -1;

  if (cached < 0) {
    const char *v = getenv("CHAT_FUZZ_KNOWN_BUGS");
    cached = v != NULL && strcmp(v, "1") == 0;
  }
  return cached;
}
