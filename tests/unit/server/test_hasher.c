/* test_hasher.c -- hashes in a helper process: it is another process, its
 * answers are right, a helper that dies makes calls fail at once (and the
 * pool then hashes in-process, so logins still work), and freeing reaps
 * it. */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <sodium.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "hash.h"
#include "hasher.h"

/* Waits, without reaping, until pid has exited. */
static void wait_dead(pid_t pid) {
  siginfo_t si;
  memset(&si, 0, sizeof(si));
  assert_int_equal(waitid(P_PID, (id_t)pid, &si, WEXITED | WNOWAIT), 0);
}

static void assert_reaped(pid_t pid) {
  errno = 0;
  assert_int_equal(waitpid(pid, NULL, WNOHANG), -1);
  assert_int_equal(errno, ECHILD);
}

static void test_make_and_verify_in_helper(void **state) {
  (void)state;
  chat__hasher_t *h;
  char hash[crypto_pwhash_STRBYTES];

  assert_int_equal(chat__hasher_start(2, &h), 0);
  pid_t pid = chat__hasher_pid(h);
  assert_true(pid > 0);
  assert_int_not_equal(pid, getpid());

  assert_int_equal(chat__hasher_call(h, 0, CHAT_HASH_MIN, "correct horse",
                                     hash, sizeof(hash)),
                   0);
  assert_non_null(strstr(hash, "$argon2id$"));
  /* Checked here, in-process, not by the helper that made it. */
  assert_int_equal(crypto_pwhash_str_verify(hash, "correct horse", 13), 0);
  assert_int_equal(
      chat__hasher_call(h, 1, 0, "correct horse", hash, sizeof(hash)), 0);
  assert_int_equal(
      chat__hasher_call(h, 1, 0, "wrong horse", hash, sizeof(hash)),
      -EACCES);

  char longpw[400];
  memset(longpw, 'x', sizeof(longpw) - 1);
  longpw[sizeof(longpw) - 1] = '\0';
  assert_int_equal(
      chat__hasher_call(h, 0, CHAT_HASH_MIN, longpw, hash, sizeof(hash)),
      -E2BIG);

  chat__hasher_free(h);
  assert_reaped(pid);
}

static void test_dead_helper_fails_fast(void **state) {
  (void)state;
  chat__hasher_t *h;
  char hash[crypto_pwhash_STRBYTES];

  assert_int_equal(chat__hasher_start(1, &h), 0);
  pid_t pid = chat__hasher_pid(h);
  assert_int_equal(kill(pid, SIGKILL), 0);
  wait_dead(pid);
  assert_int_equal(
      chat__hasher_call(h, 0, CHAT_HASH_MIN, "pw-123456", hash, sizeof(hash)),
      -EPIPE);
  assert_int_equal(
      chat__hasher_call(h, 1, 0, "pw-123456", hash, sizeof(hash)), -EPIPE);
  chat__hasher_free(h);
  assert_reaped(pid);
}

typedef struct result {
  int calls;
  int status;
  char hash[crypto_pwhash_STRBYTES];
} result_t;

static void on_hash(void *arg, int status, const char *hash) {
  result_t *r = arg;
  r->calls++;
  r->status = status;
  if (hash != NULL)
    strcpy(r->hash, hash);
}

static void pool_make_verify(chat__hash_pool_t *pool, uv_loop_t *loop,
                             const char *pw) {
  result_t made = {0}, ok = {0}, bad = {0};

  assert_int_equal(chat__hash_make(pool, loop, CHAT_HASH_MIN, pw, on_hash,
                                   &made, NULL),
                   0);
  uv_run(loop, UV_RUN_DEFAULT);
  assert_int_equal(made.calls, 1);
  assert_int_equal(made.status, 0);
  assert_int_equal(crypto_pwhash_str_verify(made.hash, pw, strlen(pw)), 0);
  assert_int_equal(
      chat__hash_verify(pool, loop, made.hash, pw, on_hash, &ok, NULL), 0);
  assert_int_equal(chat__hash_verify(pool, loop, made.hash, "not-it", on_hash,
                                     &bad, NULL),
                   0);
  uv_run(loop, UV_RUN_DEFAULT);
  assert_int_equal(ok.calls, 1);
  assert_int_equal(ok.status, 0);
  assert_int_equal(bad.calls, 1);
  assert_int_equal(bad.status, -EACCES);
}

/* The pool hashes through its helper; when the helper dies it hashes
 * itself, and the answers stay right. Freeing the pool reaps the helper. */
static void test_pool_survives_helper_death(void **state) {
  (void)state;
  uv_loop_t loop;
  chat__hasher_t *h;
  chat__hash_pool_t *pool;

  assert_int_equal(uv_loop_init(&loop), 0);
  assert_int_equal(chat__hasher_start(2, &h), 0);
  pid_t pid = chat__hasher_pid(h);
  assert_int_equal(chat__hash_pool_new(&loop, 2, 0, h, &pool), 0);

  chat__hash_stats_t st;
  pool_make_verify(pool, &loop, "before-death");
  chat__hash_pool_stats(pool, &st);
  assert_int_equal(st.computed, 3);
  assert_int_equal(st.in_helper, 3);

  assert_int_equal(kill(pid, SIGKILL), 0);
  wait_dead(pid);
  pool_make_verify(pool, &loop, "after-death");
  chat__hash_pool_stats(pool, &st);
  assert_int_equal(st.computed, 6);
  assert_int_equal(st.in_helper, 3);
  chat__hash_pool_free(pool);
  uv_run(&loop, UV_RUN_DEFAULT);
  assert_int_equal(uv_loop_close(&loop), 0);
  assert_reaped(pid);
}

int main(void) {
  if (sodium_init() < 0)
    return 1;
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_make_and_verify_in_helper),
      cmocka_unit_test(test_dead_helper_fails_fast),
      cmocka_unit_test(test_pool_survives_helper_death),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
