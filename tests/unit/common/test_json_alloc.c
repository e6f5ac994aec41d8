/* test_json_alloc.c -- chat_json_alloc_abort_on_oom: a failed jansson
 * allocation aborts with one line on stderr instead of going on.
 *
 * Each case runs in a child: this binary again (re-executed with a mode
 * argument, so that under ASan the child can get allocator_may_return_null=1
 * and see a failed malloc as NULL rather than as ASan's own report). */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "chat_json_alloc.h"

#if defined(__SANITIZE_ADDRESS__)
#define UNDER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define UNDER_ASAN 1
#endif
#endif
#ifndef UNDER_ASAN
#define UNDER_ASAN 0
#endif

static char g_self[4096];

/* ---- the children ------------------------------------------------------- */

/* The installed malloc, asked for more than can exist. */
static int child_huge(void) {
  json_malloc_t m;
  json_free_t f;
  chat_json_alloc_abort_on_oom();
  json_get_alloc_funcs(&m, &f);
  void *p = m(SIZE_MAX - 4096);
  printf("survived %p\n", p); /* not reached */
  return 0;
}

/* jansson itself runs out: a 16 MiB string copied under an address-space
 * limit that leaves about 4 MiB. */
static int child_rlimit(void) {
  size_t big = 16u << 20;
  char *buf = malloc(big);
  long pages = 0, page = sysconf(_SC_PAGESIZE);
  FILE *f = fopen("/proc/self/statm", "r");
  struct rlimit rl;

  if (!buf || !f || fscanf(f, "%ld", &pages) != 1)
    return 3;
  fclose(f);
  memset(buf, 'a', big);
  chat_json_alloc_abort_on_oom();
  rl.rlim_cur = rl.rlim_max = (rlim_t)pages * (rlim_t)page + (4u << 20);
  if (setrlimit(RLIMIT_AS, &rl) < 0)
    return 4;
  json_t *s = json_stringn(buf, big);
  printf("survived %p\n", (void *)s); /* not reached */
  return 0;
}

/* Without the allocator jansson reports the failure as NULL (the default
 * behaviour the wrapper changes). */
static int child_default(void) {
  json_malloc_t m;
  json_free_t f;
  json_get_alloc_funcs(&m, &f);
  return m(SIZE_MAX - 4096) == NULL ? 0 : 5;
}

/* ---- the parent --------------------------------------------------------- */

/* Runs this binary with mode; returns waitpid's status, stderr in err. */
static int run_child(const char *mode, char *err, size_t errlen) {
  int fds[2];
  pid_t pid;
  int status = 0;
  size_t n = 0;
  ssize_t r;

  assert_int_equal(pipe(fds), 0);
  pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    char *const argv[] = {g_self, (char *)mode, NULL};
    dup2(fds[1], 2);
    close(fds[0]);
    close(fds[1]);
    /* A failed malloc must come back as NULL under ASan too. */
    setenv("ASAN_OPTIONS", "allocator_may_return_null=1:detect_leaks=0", 1);
    execv(g_self, argv);
    _exit(127);
  }
  close(fds[1]);
  while (n + 1 < errlen && (r = read(fds[0], err + n, errlen - 1 - n)) != 0) {
    if (r < 0 && errno == EINTR)
      continue;
    if (r < 0)
      break;
    n += (size_t)r;
  }
  err[n] = '\0';
  close(fds[0]);
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
    ;
  return status;
}

static void assert_aborted_with_line(int status, const char *err) {
  const char *line = strstr(err, "out of memory: jansson could not allocate");
  if (!WIFSIGNALED(status) || WTERMSIG(status) != SIGABRT || !line)
    fail_msg("child status %#x, stderr:\n%s", status, err);
  /* One line: it starts the output or a line, and ends in "aborting\n". */
  assert_true(line - err >= 2);
  assert_non_null(strstr(line, "bytes; aborting\n"));
  assert_null(strstr(err, "survived"));
}

static void test_huge_allocation_aborts(void **state) {
  char err[8192];
  int status = run_child("huge", err, sizeof(err));
  assert_aborted_with_line(status, err);
  assert_non_null(strstr(err, "test_json_alloc: out of memory"));
}

static void test_jansson_out_of_memory_aborts(void **state) {
  char err[8192];
  int status;
  if (UNDER_ASAN)
    skip(); /* ASan's shadow memory does not fit under an RLIMIT_AS */
  status = run_child("rlimit", err, sizeof(err));
  assert_aborted_with_line(status, err);
}

static void test_default_returns_null(void **state) {
  char err[8192];
  int status = run_child("default", err, sizeof(err));
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
    fail_msg("child status %#x, stderr:\n%s", status, err);
}

int main(int argc, char **argv) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_huge_allocation_aborts),
      cmocka_unit_test(test_jansson_out_of_memory_aborts),
      cmocka_unit_test(test_default_returns_null),
  };
  ssize_t n = readlink("/proc/self/exe", g_self, sizeof(g_self) - 1);
  if (n <= 0)
    return 2;
  g_self[n] = '\0';
  if (argc == 2 && strcmp(argv[1], "huge") == 0)
    return child_huge();
  if (argc == 2 && strcmp(argv[1], "rlimit") == 0)
    return child_rlimit();
  if (argc == 2 && strcmp(argv[1], "default") == 0)
    return child_default();
  return cmocka_run_group_tests(tests, NULL, NULL);
}
