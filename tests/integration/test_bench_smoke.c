/* test_bench_smoke.c -- chat-bench against a real chat-server: every mode
 * moves a few hundred messages with no error, and the bench's own verdict
 * (exit status, error count) is honest when things go wrong.
 *
 * The only benchmark in CI, so it is small: 4 pairs x 50 messages per mode.
 * --tls runs against a second server with --tls-listen and the harness's
 * throwaway CA (harness/tls.h).
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "harness.h"
#include "tls.h"

#define BENCH CHAT_BIN_DIR "/chat-bench"
#define BENCH_DEADLINE_MS 90000

static th_server_t *server;

static int setup(void **state) {
  server = th_server_start(NULL);
  return 0;
}

static int teardown(void **state) {
  th_server_free(server);
  server = NULL;
  return 0;
}

/* Runs chat-bench with args (NULL-terminated, --json added), checks its exit
 * code, and returns its report (new reference). */
static json_t *run_bench(const char *const args[], int want_exit) {
  const char *argv[40];
  int n = 0;
  argv[n++] = BENCH;
  for (int i = 0; args[i] && n < 36; i++)
    argv[n++] = args[i];
  argv[n++] = "--json";
  argv[n] = NULL;
  th_proc_t *p = th_proc_spawn(argv, NULL);
  const char *line = th_proc_read_line(p, TH_STDOUT, BENCH_DEADLINE_MS);
  if (line == NULL) {
    fprintf(stderr, "chat-bench stderr:\n%s\n", th_proc_output(p, TH_STDERR));
    if (server)
      th_server_dump(server);
    th_proc_free(p);
    fail_msg("chat-bench printed no report within %d ms", BENCH_DEADLINE_MS);
  }
  json_error_t jerr;
  json_t *report = json_loads(line, 0, &jerr);
  if (report == NULL) {
    th_proc_free(p);
    fail_msg("chat-bench report is not JSON (%s): %s", jerr.text, line);
  }
  int status;
  if (th_proc_wait(p, TH_DEADLINE_MS, &status) < 0) {
    th_proc_free(p);
    fail_msg("chat-bench did not exit after its report");
  }
  int code = th_proc_exit_code(p);
  if (code != want_exit) {
    fprintf(stderr, "report: %s\nstderr:\n%s\n", line,
            th_proc_output(p, TH_STDERR));
    if (server)
      th_server_dump(server);
  }
  assert_int_equal(code, want_exit);
  th_proc_free(p);
  return report;
}

static long long errors_total(const json_t *report) {
  const json_t *e = json_object_get(report, "errors");
  assert_non_null(e);
  return th_int(e, "total");
}

static void run_mode(const char *mode) {
  char addr[64];
  snprintf(addr, sizeof(addr), "127.0.0.1:%d", th_server_port(server));
  const char *args[] = {"--server", addr, "--mode", mode, "--pairs", "4",
                        "--messages", "50", "--window", "8", "--timeout",
                        "60", NULL};
  json_t *r = run_bench(args, 0);
  char *dump = json_dumps(r, JSON_COMPACT | JSON_REAL_PRECISION(12));
  print_message("%s\n", dump);
  free(dump);
  assert_string_equal(th_str(r, "mode"), mode);
  assert_int_equal(errors_total(r), 0);
  assert_int_equal(th_int(r, "sent"), 200);
  assert_int_equal(th_int(r, "accepted"), 200);
  assert_int_equal(th_int(r, "delivered"), 200);
  if (strcmp(mode, "direct") != 0)
    assert_int_equal(th_int(r, "receipts"), 200);
  assert_true(json_real_value(json_object_get(r, "msgs_per_sec")) > 0);
  const json_t *lat = json_object_get(r, "latency_us");
  assert_non_null(lat);
  double p50 = json_real_value(json_object_get(lat, "p50"));
  double p99 = json_real_value(json_object_get(lat, "p99"));
  double max = json_real_value(json_object_get(lat, "max"));
  assert_true(p50 > 0 && p50 <= p99 && p99 <= max);
  const json_t *setup = json_object_get(r, "setup");
  assert_int_equal(th_int(setup, "registered"), 8);
  if (!strcmp(mode, "offline")) {
    /* Only the senders log in before the flush. */
    assert_int_equal(th_int(setup, "logins"), 4);
    assert_true(json_real_value(json_object_get(r, "flush_s")) > 0);
  } else {
    assert_int_equal(th_int(setup, "logins"), 8);
  }
  json_decref(r);
}

static void test_relay(void **state) { run_mode("relay"); }
static void test_offline(void **state) { run_mode("offline"); }
static void test_direct(void **state) { run_mode("direct"); }

/* A group of 20, all online: every message reaches the 19 others, the ok
 * says relayed 19, and the fan-out latency is measured per message. */
static void test_group(void **state) {
  char addr[64];
  snprintf(addr, sizeof(addr), "127.0.0.1:%d", th_server_port(server));
  const char *args[] = {"--server", addr, "--mode", "group", "--group-size",
                        "20", "--messages", "5", "--timeout", "60", NULL};
  json_t *r = run_bench(args, 0);
  assert_string_equal(th_str(r, "mode"), "group");
  assert_int_equal(errors_total(r), 0);
  assert_int_equal(th_int(r, "sent"), 5);
  assert_int_equal(th_int(r, "accepted"), 5);
  assert_int_equal(th_int(r, "delivered"), 5 * 19);
  const json_t *g = json_object_get(r, "group");
  assert_non_null(g);
  assert_int_equal(th_int(g, "size"), 20);
  assert_int_equal(th_int(g, "relayed"), 19);
  const json_t *lat = json_object_get(r, "latency_us");
  double p50 = json_real_value(json_object_get(lat, "p50"));
  double max = json_real_value(json_object_get(lat, "max"));
  assert_true(p50 > 0 && p50 <= max);
  const json_t *setup = json_object_get(r, "setup");
  assert_int_equal(th_int(setup, "registered"), 20);
  assert_int_equal(th_int(setup, "logins"), 20);
  json_decref(r);
}

/* Idle sessions: the server's RSS is read before and after. */
static void test_idle(void **state) {
  char addr[64], pid[32];
  snprintf(addr, sizeof(addr), "127.0.0.1:%d", th_server_port(server));
  snprintf(pid, sizeof(pid), "%d", (int)th_proc_pid(th_server_proc(server)));
  const char *args[] = {"--server", addr, "--idle", "40", "--server-pid",
                        pid, "--timeout", "60", NULL};
  json_t *r = run_bench(args, 0);
  assert_int_equal(errors_total(r), 0);
  const json_t *idle = json_object_get(r, "idle");
  assert_non_null(idle);
  assert_int_equal(th_int(idle, "sessions"), 40);
  assert_true(th_int(idle, "rss_before_kb") > 0);
  assert_true(th_int(idle, "rss_after_kb") > 0);
  assert_non_null(json_object_get(idle, "rss_per_session_bytes"));
  json_decref(r);
}

/* Nothing listening: the bench says so and fails, rather than report 0. */
static void test_refused_is_an_error(void **state) {
  th_server_t *gone = th_server_start(NULL);
  int port = th_server_port(gone);
  th_server_stop(gone, SIGTERM);
  char addr[64];
  snprintf(addr, sizeof(addr), "127.0.0.1:%d", port);
  const char *args[] = {"--server", addr, "--pairs", "2", "--messages", "5",
                        "--timeout", "30", NULL};
  json_t *r = run_bench(args, 1);
  assert_true(errors_total(r) > 0);
  assert_true(th_int(json_object_get(r, "errors"), "connect") >= 1);
  assert_int_equal(th_int(r, "delivered"), 0);
  json_decref(r);
  th_server_free(gone);
}


/* ---- --tls ------------------------------------------------------------- */

typedef struct tls_srv {
  th_certs_t *certs;
  th_server_t *s;
  int port; /* the TLS listener's */
} tls_srv_t;

/* The harness's throwaway CA and certificate for localhost / 127.0.0.1,
 * and a server with --tls-listen on them. */
static void tls_start(tls_srv_t *t) {
  t->certs = th_certs_make();
  t->s = th_tls_server_start(t->certs->cert, t->certs->key, NULL, &t->port);
}

static void tls_stop(tls_srv_t *t) {
  th_server_free(t->s);
  th_certs_free(t->certs);
}

/* Relay over TLS, the certificate and 127.0.0.1 verified against the CA;
 * then the handshake count; then the system's CAs, which must refuse the
 * throwaway one. */
static void test_tls(void **state) {
  tls_srv_t t;
  char addr[64], pid[32];
  tls_start(&t);
  snprintf(addr, sizeof(addr), "127.0.0.1:%d", t.port);
  const char *ca = t.certs->ca;
  snprintf(pid, sizeof(pid), "%d", (int)th_proc_pid(th_server_proc(t.s)));

  const char *relay[] = {"--server", addr, "--tls-ca", ca, "--pairs", "4",
                         "--messages", "50", "--window", "8", "--timeout",
                         "60", NULL};
  json_t *r = run_bench(relay, 0);
  assert_true(json_is_true(json_object_get(r, "tls")));
  assert_int_equal(errors_total(r), 0);
  assert_int_equal(th_int(r, "delivered"), 200);
  assert_int_equal(th_int(r, "receipts"), 200);
  json_decref(r);

  const char *hs[] = {"--server", addr, "--tls-ca", ca, "--handshakes", "40",
                      "--concurrency", "8", "--server-pid", pid, "--timeout",
                      "60", NULL};
  r = run_bench(hs, 0);
  assert_string_equal(th_str(r, "mode"), "handshakes");
  assert_int_equal(errors_total(r), 0);
  const json_t *h = json_object_get(r, "handshakes");
  assert_non_null(h);
  assert_int_equal(th_int(h, "done"), 40);
  assert_true(json_real_value(json_object_get(h, "per_sec")) > 0);
  assert_non_null(json_object_get(h, "server_cpu_us_per_handshake"));
  json_decref(r);

  const char *untrusted[] = {"--server", addr, "--tls", "--pairs", "1",
                             "--messages", "1", "--timeout", "30", NULL};
  r = run_bench(untrusted, 1);
  assert_true(th_int(json_object_get(r, "errors"), "connect") >= 1);
  assert_non_null(strstr(th_str(r, "stop_reason"), "certificate verify"));
  json_decref(r);
  tls_stop(&t);
}

static void test_usage(void **state) {
  const char *bad[] = {BENCH, "--mode", "carrier-pigeon", NULL};
  th_proc_t *p = th_proc_spawn(bad, NULL);
  int status;
  assert_int_equal(th_proc_wait(p, TH_DEADLINE_MS, &status), 0);
  assert_int_equal(th_proc_exit_code(p), 2);
  th_proc_free(p);

  const char *help[] = {BENCH, "--help", NULL};
  p = th_proc_spawn(help, NULL);
  assert_non_null(th_proc_wait_line(p, TH_STDOUT, "--mode", TH_DEADLINE_MS));
  assert_int_equal(th_proc_wait(p, TH_DEADLINE_MS, &status), 0);
  assert_int_equal(th_proc_exit_code(p), 0);
  th_proc_free(p);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_relay),
      cmocka_unit_test(test_offline),
      cmocka_unit_test(test_direct),
    cmocka_unit_test(test_group),
      cmocka_unit_test(test_idle),
      cmocka_unit_test(test_refused_is_an_error),
      cmocka_unit_test(test_tls),
      cmocka_unit_test(test_usage),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
