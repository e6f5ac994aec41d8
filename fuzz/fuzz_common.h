/* fuzz_common.h -- what every fuzz target shares: invariant checks that abort
 * (so libFuzzer records the input), and a jansson allocator that can fail one
 * chosen allocation so out-of-memory paths get explored too. */
#ifndef CHAT_FUZZ_COMMON_H
#define CHAT_FUZZ_COMMON_H

#include <stddef.h>
#include <stdint.h>

/* An invariant of the code under test is broken: say which, then abort(), so
 * libFuzzer saves the input as a crash. */
#define FUZZ_CHECK(cond)                                                      \
  do {                                                                        \
    if (!(cond))                                                              \
      chat__fuzz_fail(__FILE__, __LINE__, #cond);                             \
  } while (0)

void chat__fuzz_fail(const char *file, int line, const char *what)
    __attribute__((noreturn));

/* Installs the counting allocator with json_set_alloc_funcs() (once). */
void chat__fuzz_alloc_install(void);
/* Fails allocation number n (1-based) counted from now, once; 0 disarms. */
void chat__fuzz_alloc_fail_at(unsigned n);
/* How many injected failures have happened so far: a call that reports
 * out-of-memory without this moving has invented it. */
unsigned chat__fuzz_alloc_failures(void);
/* While suspended, allocations neither count nor fail: for oracle code,
 * which must see the truth. Nests. */
void chat__fuzz_alloc_suspend(void);
void chat__fuzz_alloc_resume(void);

/* Nonzero when CHAT_FUZZ_KNOWN_BUGS=1: then the checks for open, reported
 * bugs (fuzz/README.md) abort too, so their regression inputs reproduce. By
 * default they are stepped around, so fuzzing can find new ones. */
int chat__fuzz_known_bugs(void);

/* Reads the input's header bytes: *p advances, and past the end reads 0. */
uint8_t chat__fuzz_byte(const uint8_t **p, const uint8_t *end);

#endif /* CHAT_FUZZ_COMMON_H */
