/* test_log.c -- the log line format, levels and newline folding, read back
 * from stderr redirected into a pipe. */
#include <errno.h>
#include <fcntl.h>
#include <regex.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "chat_log.h"

/* Runs logging with stderr pointing into a pipe and returns what was written
 * (a static buffer). The pipe is non-blocking so a test that writes more than
 * it holds fails instead of hanging. */
static int saved_stderr = -1;
static int pipe_rd = -1;

static void capture_begin(void) {
  int fds[2];
  assert_int_equal(pipe(fds), 0);
  fcntl(fds[0], F_SETFL, O_NONBLOCK);
  fcntl(fds[1], F_SETFL, O_NONBLOCK);
  fflush(stderr);
  saved_stderr = dup(STDERR_FILENO);
  assert_true(saved_stderr >= 0);
  assert_int_equal(dup2(fds[1], STDERR_FILENO), STDERR_FILENO);
  close(fds[1]);
  pipe_rd = fds[0];
}

static const char *capture_end(void) {
  static char buf[65536];
  size_t len = 0;
  ssize_t n;
  dup2(saved_stderr, STDERR_FILENO);
  close(saved_stderr);
  while (len < sizeof(buf) - 1 &&
         (n = read(pipe_rd, buf + len, sizeof(buf) - 1 - len)) > 0)
    len += (size_t)n;
  close(pipe_rd);
  buf[len] = '\0';
  return buf;
}

static size_t count_lines(const char *s) {
  size_t n = 0;
  for (; *s; s++)
    n += *s == '\n';
  return n;
}

static void test_format(void **state) {
  regex_t re;
  const char *out;
  chat_log_set_prefix("chat-server");
  chat_log_set_level(CHAT_LOG_INFO);
  capture_begin();
  chat_log_write(CHAT_LOG_INFO, 0, "listening on %s:%d", "127.0.0.1", 7700);
  out = capture_end();
  assert_int_equal(
      regcomp(&re,
              "^[0-9]{4}-[01][0-9]-[0-3][0-9]T[0-2][0-9]:[0-5][0-9]:[0-6][0-9]"
              "\\.[0-9]{3}Z chat-server INFO listening on 127\\.0\\.0\\.1:7700\n$",
              REG_EXTENDED),
      0);
  if (regexec(&re, out, 0, NULL, 0) != 0)
    fail_msg("bad line: %s", out);
  regfree(&re);
}

static void test_levels(void **state) {
  const char *out;
  chat_log_set_prefix("t");
  chat_log_set_level(CHAT_LOG_WARN);
  assert_int_equal(chat_log_get_level(), CHAT_LOG_WARN);
  capture_begin();
  CHAT_ERROR("e1");
  CHAT_WARN("w1");
  CHAT_INFO("i1");
  CHAT_DEBUG("d1");
  chat_log_write(CHAT_LOG_DEBUG, 1, "forced");
  out = capture_end();
  assert_int_equal(count_lines(out), 3);
  assert_non_null(strstr(out, " t ERROR e1\n"));
  assert_non_null(strstr(out, " t WARN w1\n"));
  assert_non_null(strstr(out, " t DEBUG forced\n"));
  assert_null(strstr(out, "i1"));
  assert_null(strstr(out, "d1"));

  chat_log_set_level(CHAT_LOG_DEBUG);
  capture_begin();
  CHAT_DEBUG("d2 %d", 42);
  out = capture_end();
  assert_non_null(strstr(out, " t DEBUG d2 42\n"));

  chat_log_set_level(CHAT_LOG_ERROR);
  capture_begin();
  CHAT_WARN("w3");
  out = capture_end();
  assert_string_equal(out, "");
  chat_log_set_level(CHAT_LOG_INFO);
}

static void test_newlines_folded(void **state) {
  const char *out;
  chat_log_set_prefix("p");
  chat_log_set_level(CHAT_LOG_INFO);
  capture_begin();
  CHAT_INFO("a\nb\r\nc%s", "\nd\n");
  out = capture_end();
  assert_int_equal(count_lines(out), 1);
  assert_non_null(strstr(out, " p INFO a b  c d \n"));
}

static void test_long_line_cut(void **state) {
  char *big = malloc(20000);
  const char *out;
  assert_non_null(big);
  memset(big, 'x', 19999);
  big[19999] = '\0';
  chat_log_set_prefix("p");
  capture_begin();
  CHAT_WARN("%s", big);
  out = capture_end();
  free(big);
  assert_int_equal(count_lines(out), 1);
  assert_true(strlen(out) <= 8192);
  assert_non_null(strstr(out, "...[truncated]\n"));
}

static void test_level_parse(void **state) {
  chat_log_level_t l = CHAT_LOG_INFO;
  assert_int_equal(chat_log_level_parse("error", &l), 0);
  assert_int_equal(l, CHAT_LOG_ERROR);
  assert_int_equal(chat_log_level_parse("warn", &l), 0);
  assert_int_equal(l, CHAT_LOG_WARN);
  assert_int_equal(chat_log_level_parse("info", &l), 0);
  assert_int_equal(l, CHAT_LOG_INFO);
  assert_int_equal(chat_log_level_parse("DEBUG", &l), 0);
  assert_int_equal(l, CHAT_LOG_DEBUG);
  l = CHAT_LOG_WARN;
  assert_int_equal(chat_log_level_parse("verbose", &l), -EINVAL);
  assert_int_equal(chat_log_level_parse("", &l), -EINVAL);
  assert_int_equal(chat_log_level_parse("info ", &l), -EINVAL);
  assert_int_equal(chat_log_level_parse(NULL, &l), -EINVAL);
  assert_int_equal(l, CHAT_LOG_WARN);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_format),
      cmocka_unit_test(test_levels),
      cmocka_unit_test(test_newlines_folded),
      cmocka_unit_test(test_long_line_cut),
      cmocka_unit_test(test_level_parse),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
