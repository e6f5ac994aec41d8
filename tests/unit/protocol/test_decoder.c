/* test_decoder.c -- chat_decoder's API promises: zero copy, bounded memory,
 * nothing held when idle, save(), death, linear time, ENOMEM. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "chat_protocol.h"
#include "chaos.h"

static int in_range(const char *p, const char *base, size_t len) {
  return p >= base && p < base + len;
}

static void test_zero_copy_in_chunk(void **state) {
  const char chunk[] = "{\"a\":1}\n{\"b\":2}\r\n";
  chat_decoder_t d;
  const char *line;
  size_t len;

  chat_decoder_init(&d, 64);
  chat_decoder_feed(&d, chunk, sizeof(chunk) - 1);
  assert_int_equal(chat_decoder_next(&d, &line, &len), 1);
  assert_ptr_equal(line, chunk);
  assert_int_equal(len, 7);
  assert_int_equal(chat_decoder_next(&d, &line, &len), 1);
  assert_ptr_equal(line, chunk + 8);
  assert_int_equal(len, 7); /* CR stripped */
  assert_int_equal(chat_decoder_next(&d, &line, &len), 0);
  assert_null(d.part); /* nothing was ever copied */
  assert_int_equal(chat_decoder_pending(&d), 0);
  chat_decoder_free(&d);
}

static void test_spanning_line_copied_then_freed(void **state) {
  char a[] = "{\"a\":", b[] = "1}\n{\"c\":3}\n";
  chat_decoder_t d;
  const char *line;
  size_t len;

  chat_decoder_init(&d, 64);
  chat_decoder_feed(&d, a, strlen(a));
  assert_int_equal(chat_decoder_next(&d, &line, &len), 0);
  assert_int_equal(chat_decoder_pending(&d), 5);
  memset(a, 'X', strlen(a)); /* the chunk is the caller's again */
  chat_decoder_feed(&d, b, strlen(b));
  assert_int_equal(chat_decoder_next(&d, &line, &len), 1);
  assert_false(in_range(line, b, sizeof(b)));
  assert_int_equal(len, 7);
  assert_memory_equal(line, "{\"a\":1}", 7);
  assert_int_equal(chat_decoder_next(&d, &line, &len), 1);
  assert_ptr_equal(line, b + 3); /* back to zero copy */
  assert_null(d.part);           /* the held line was freed once drained */
  assert_int_equal(chat_decoder_next(&d, &line, &len), 0);
  assert_null(d.part);
  chat_decoder_free(&d);
}

static void test_save_lets_caller_reuse_chunk(void **state) {
  char buf[] = "{\"a\":1}\n{\"b\":2}\n{\"c\"";
  chat_decoder_t d;
  const char *line;
  size_t len;

  chat_decoder_init(&d, 64);
  chat_decoder_feed(&d, buf, strlen(buf));
  assert_int_equal(chat_decoder_next(&d, &line, &len), 1);
  assert_int_equal(chat_decoder_save(&d), 0);
  memset(buf, 'Z', sizeof(buf) - 1);
  assert_int_equal(chat_decoder_pending(&d), strlen("{\"b\":2}\n{\"c\""));
  assert_int_equal(chat_decoder_next(&d, &line, &len), 1);
  assert_int_equal(len, 7);
  assert_memory_equal(line, "{\"b\":2}", 7);
  assert_int_equal(chat_decoder_next(&d, &line, &len), 0);
  assert_int_equal(chat_decoder_pending(&d), 4);
  chat_decoder_feed(&d, ":3}\n", 4);
  assert_int_equal(chat_decoder_next(&d, &line, &len), 1);
  assert_memory_equal(line, "{\"c\":3}", 7);
  assert_int_equal(chat_decoder_next(&d, &line, &len), 0);
  assert_null(d.part);
  chat_decoder_free(&d);
}

static void test_feed_before_used_up_loses_nothing(void **state) {
  chat_decoder_t d;
  const char *line;
  size_t len;

  chat_decoder_init(&d, 64);
  chat_decoder_feed(&d, "{}\n{\"x\":1}\n", 11);
  assert_int_equal(chat_decoder_next(&d, &line, &len), 1);
  chat_decoder_feed(&d, "{\"y\":2}\n", 8);
  assert_int_equal(chat_decoder_next(&d, &line, &len), 1);
  assert_memory_equal(line, "{\"x\":1}", 7);
  assert_int_equal(chat_decoder_next(&d, &line, &len), 1);
  assert_memory_equal(line, "{\"y\":2}", 7);
  assert_int_equal(chat_decoder_next(&d, &line, &len), 0);
  chat_decoder_free(&d);
}

static void test_dead_stays_dead(void **state) {
  chat_decoder_t d;
  const char *line;
  size_t len;

  chat_decoder_init(&d, 8);
  chat_decoder_feed(&d, "0123456", 7);
  assert_int_equal(chat_decoder_next(&d, &line, &len), 0);
  chat_decoder_feed(&d, "89", 2); /* 9 bytes, the last no CR: too large */
  assert_int_equal(chat_decoder_next(&d, &line, &len), -CHAT_E_FRAME_TOO_LARGE);
  assert_null(d.part);
  assert_int_equal(chat_decoder_pending(&d), 0);
  chat_decoder_feed(&d, "\n{}\n", 4);
  assert_int_equal(chat_decoder_next(&d, &line, &len), -CHAT_E_FRAME_TOO_LARGE);
  assert_int_equal(chat_decoder_save(&d), 0);
  assert_int_equal(chat_decoder_pending(&d), 0);
  chat_decoder_free(&d);
}

static void test_default_limit_and_free_twice(void **state) {
  chat_decoder_t d;

  chat_decoder_init(&d, 0);
  assert_int_equal(d.max_frame, CHAT_MAX_FRAME_DEFAULT);
  chat_decoder_free(&d);
  chat_decoder_free(&d);
}

/* Quadratic rescans would take minutes here; linear work takes milliseconds
 * (the bound is generous for a busy machine under ASan). */
static void test_linear_time(void **state) {
  const size_t n = 4u << 20;
  char *big = malloc(n + 1);
  chat_decoder_t d;
  const char *line;
  size_t len, lines = 0;
  clock_t t0 = clock();

  assert_non_null(big);
  memset(big, 'a', n);
  big[n] = '\n';
  chat_decoder_init(&d, n);
  for (size_t i = 0; i <= n; i++) {
    int rc;
    chat_decoder_feed(&d, big + i, 1);
    while ((rc = chat_decoder_next(&d, &line, &len)) == 1) {
      assert_int_equal(len, n);
      lines++;
    }
    assert_int_equal(rc, 0);
  }
  assert_int_equal(lines, 1);
  /* Many short lines in one big chunk. */
  for (size_t i = 0; i < n; i += 8)
    memcpy(big + i, "{\"a\":1}\n", 8);
  chat_decoder_feed(&d, big, n);
  lines = 0;
  while (chat_decoder_next(&d, &line, &len) == 1)
    lines++;
  assert_int_equal(lines, n / 8);
  assert_true((double)(clock() - t0) / CLOCKS_PER_SEC < 30.0);
  chat_decoder_free(&d);
  free(big);
}

/* Fail each allocation in turn: next says -ENOMEM, consumes nothing, and a
 * retry once memory is back gives the same lines. */
static void test_enomem(void **state) {
  const char *parts[] = {"{\"a\":", "1}\n{\"b\"", ":2}\n"};
  int saw_enomem = 0;

  for (int n = 0; n < 8; n++) {
    chat_decoder_t d;
    const char *line;
    size_t len;
    int got = 0;

    chaos_live = 0;
    chat_decoder_init(&d, 64);
    chaos_arm(n);
    for (int i = 0; i < 3; i++) {
      int rc;
      chat_decoder_feed(&d, parts[i], strlen(parts[i]));
      for (;;) {
        rc = chat_decoder_next(&d, &line, &len);
        if (rc == -ENOMEM) {
          saw_enomem = 1;
          chaos_disarm();
          continue; /* retry with memory back */
        }
        if (rc != 1)
          break;
        assert_int_equal(len, 7);
        assert_memory_equal(line, got == 0 ? "{\"a\":1}" : "{\"b\":2}", 7);
        got++;
      }
      assert_int_equal(rc, 0);
    }
    assert_int_equal(got, 2);
    chat_decoder_free(&d);
    chaos_disarm();
    assert_int_equal(chaos_live, 0);
  }
  assert_true(saw_enomem);
}

int main(void) {
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_zero_copy_in_chunk),
    cmocka_unit_test(test_spanning_line_copied_then_freed),
    cmocka_unit_test(test_save_lets_caller_reuse_chunk),
    cmocka_unit_test(test_feed_before_used_up_loses_nothing),
    cmocka_unit_test(test_dead_stays_dead),
    cmocka_unit_test(test_default_limit_and_free_twice),
    cmocka_unit_test(test_linear_time),
    cmocka_unit_test(test_enomem),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
