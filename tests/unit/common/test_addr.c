/* test_addr.c -- HOST:PORT splitting, resolving and formatting. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <cmocka.h>

#include "chat_addr.h"

static void test_split_valid(void **state) {
  static const struct {
    const char *in, *host;
    int port;
  } cases[] = {
      {"127.0.0.1:7700", "127.0.0.1", 7700},
      {"0.0.0.0:0", "0.0.0.0", 0},
      {"localhost:65535", "localhost", 65535},
      {"example.org:80", "example.org", 80},
      {"[::1]:7700", "::1", 7700},
      {"[::]:1", "::", 1},
      {"[fe80::1%eth0]:22", "fe80::1%eth0", 22},
      {"[2001:db8::1]:443", "2001:db8::1", 443},
      {"h:00080", "h", 80},
  };
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    char host[CHAT_HOST_MAX];
    int port = -1;
    int rc = chat_addr_split(cases[i].in, host, &port);
    if (rc != 0)
      fail_msg("\"%s\" rejected: %d", cases[i].in, rc);
    assert_string_equal(host, cases[i].host);
    assert_int_equal(port, cases[i].port);
  }
}

static void test_split_invalid(void **state) {
  static const char *const cases[] = {
      "",            "127.0.0.1",   "127.0.0.1:",    ":7700",
      "[]:7700",     "::1:7700",    "[::1]",         "[::1]7700",
      "[::1:7700",   "host:-1",     "host:65536",    "host:99999",
      "host:123456", "host:+80",    "host:80 ",      "host: 80",
      " host:80",    "ho st:80",    "host:8a",       "host:0x10",
      "a:b:80",      "[::1]:80:1",  "[[::1]]:80",    "host]:80",
      "host:80\n",   "\t:80",
  };
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    char host[CHAT_HOST_MAX];
    int port = 4242;
    int rc = chat_addr_split(cases[i], host, &port);
    if (rc != -EINVAL)
      fail_msg("\"%s\" gave %d, expected -EINVAL", cases[i], rc);
    assert_int_equal(port, 4242);
  }
  assert_int_equal(chat_addr_split(NULL, NULL, NULL), -EINVAL);
}

static void test_split_host_length(void **state) {
  char in[CHAT_HOST_MAX + 16], host[CHAT_HOST_MAX];
  int port;
  /* CHAT_HOST_MAX - 1 bytes fit, one more does not. */
  memset(in, 'a', CHAT_HOST_MAX - 1);
  strcpy(in + CHAT_HOST_MAX - 1, ":1");
  assert_int_equal(chat_addr_split(in, host, &port), 0);
  assert_int_equal(strlen(host), CHAT_HOST_MAX - 1);
  memset(in, 'a', CHAT_HOST_MAX);
  strcpy(in + CHAT_HOST_MAX, ":1");
  assert_int_equal(chat_addr_split(in, host, &port), -EINVAL);
}

static void test_resolve_numeric(void **state) {
  struct sockaddr_storage ss;
  const struct sockaddr_in *a4 = (const struct sockaddr_in *)&ss;
  const struct sockaddr_in6 *a6 = (const struct sockaddr_in6 *)&ss;
  struct in6_addr loop6 = IN6ADDR_LOOPBACK_INIT;

  assert_int_equal(chat_addr_resolve("127.0.0.1", 7700, &ss), 0);
  assert_int_equal(ss.ss_family, AF_INET);
  assert_int_equal(ntohs(a4->sin_port), 7700);
  assert_int_equal(ntohl(a4->sin_addr.s_addr), INADDR_LOOPBACK);

  assert_int_equal(chat_addr_resolve("::1", 0, &ss), 0);
  assert_int_equal(ss.ss_family, AF_INET6);
  assert_int_equal(ntohs(a6->sin6_port), 0);
  assert_memory_equal(&a6->sin6_addr, &loop6, sizeof(loop6));

  assert_int_equal(chat_addr_resolve("", 1, &ss), -EINVAL);
  assert_int_equal(chat_addr_resolve("127.0.0.1", 65536, &ss), -EINVAL);
  assert_int_equal(chat_addr_resolve("127.0.0.1", -1, &ss), -EINVAL);
  assert_int_equal(chat_addr_resolve("1::2::3", 1, &ss), -EINVAL);
}

static void test_parse_port(void **state) {
  int port = -1;

  (void)state;
  assert_int_equal(chat_addr_parse_port("0", &port), 0);
  assert_int_equal(port, 0);
  assert_int_equal(chat_addr_parse_port("65535", &port), 0);
  assert_int_equal(port, 65535);
  assert_int_equal(chat_addr_parse_port("00080", &port), 0);
  assert_int_equal(port, 80);
  assert_int_equal(chat_addr_parse_port("65536", &port), -EINVAL);
  assert_int_equal(chat_addr_parse_port("", &port), -EINVAL);
  assert_int_equal(chat_addr_parse_port("+1", &port), -EINVAL);
  assert_int_equal(chat_addr_parse_port(" 1", &port), -EINVAL);
  assert_int_equal(chat_addr_parse_port("123456", &port), -EINVAL);
  assert_int_equal(chat_addr_parse_port("12a", &port), -EINVAL);
}

static void test_resolve_numeric_only(void **state) {
  struct sockaddr_storage ss;

  (void)state;
  assert_int_equal(chat_addr_resolve_numeric("127.0.0.1", 1, &ss), 0);
  assert_int_equal(ss.ss_family, AF_INET);
  assert_int_equal(chat_addr_resolve_numeric("::1", 1, &ss), 0);
  assert_int_equal(ss.ss_family, AF_INET6);
  /* A name is never looked up here, not even localhost. */
  assert_int_equal(chat_addr_resolve_numeric("localhost", 1, &ss), -EINVAL);
  assert_int_equal(chat_addr_resolve_numeric("1::2::3", 1, &ss), -EINVAL);
  assert_int_equal(chat_addr_resolve_numeric("127.0.0.1", 70000, &ss),
                   -EINVAL);
}

static void test_resolve_name(void **state) {
  struct sockaddr_storage ss;
  /* localhost is in /etc/hosts everywhere this builds. */
  assert_int_equal(chat_addr_resolve("localhost", 80, &ss), 0);
  assert_true(ss.ss_family == AF_INET || ss.ss_family == AF_INET6);
  assert_int_equal(chat_addr_resolve("no-such-host.invalid", 80, &ss),
                   -EHOSTUNREACH);
}

static void test_format_roundtrip(void **state) {
  static const char *const cases[] = {"127.0.0.1:7700", "0.0.0.0:0",
                                      "[::1]:65535", "[2001:db8::1]:443",
                                      "[::ffff:10.0.0.1]:9"};
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    char host[CHAT_HOST_MAX], buf[64], h2[64];
    struct sockaddr_storage ss;
    int port, p2;
    assert_int_equal(chat_addr_split(cases[i], host, &port), 0);
    assert_int_equal(chat_addr_resolve(host, port, &ss), 0);
    assert_int_equal(chat_addr_format((struct sockaddr *)&ss, buf, sizeof(buf)),
                     0);
    assert_string_equal(buf, cases[i]);
    assert_int_equal(
        chat_addr_host((struct sockaddr *)&ss, h2, sizeof(h2), &p2), 0);
    assert_string_equal(h2, host);
    assert_int_equal(p2, port);
  }
}

static void test_format_errors(void **state) {
  struct sockaddr_storage ss;
  char buf[64];
  int port;
  assert_int_equal(chat_addr_resolve("127.0.0.1", 7700, &ss), 0);
  /* "127.0.0.1:7700" is 14 bytes plus the NUL. */
  assert_int_equal(chat_addr_format((struct sockaddr *)&ss, buf, 15), 0);
  assert_int_equal(chat_addr_format((struct sockaddr *)&ss, buf, 14), -ENOSPC);
  assert_int_equal(chat_addr_host((struct sockaddr *)&ss, buf, 9, &port),
                   -ENOSPC);
  assert_int_equal(chat_addr_host((struct sockaddr *)&ss, buf, 10, NULL), 0);
  assert_string_equal(buf, "127.0.0.1");
  memset(&ss, 0, sizeof(ss));
  ss.ss_family = AF_UNIX;
  assert_int_equal(chat_addr_format((struct sockaddr *)&ss, buf, sizeof(buf)),
                   -EINVAL);
  assert_int_equal(chat_addr_format(NULL, buf, sizeof(buf)), -EINVAL);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_split_valid),
      cmocka_unit_test(test_split_invalid),
      cmocka_unit_test(test_split_host_length),
      cmocka_unit_test(test_resolve_numeric),
      cmocka_unit_test(test_parse_port),
      cmocka_unit_test(test_resolve_numeric_only),
      cmocka_unit_test(test_resolve_name),
      cmocka_unit_test(test_format_roundtrip),
      cmocka_unit_test(test_format_errors),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
