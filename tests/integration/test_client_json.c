/* test_client_json.c -- chat-client for scripts (--json): every successful
 * command answers an ok event naming it, every error names the command it
 * answers, messages typed while offline are queued and then sent, sends
 * still unconfirmed at the end of input exit 3, --listen-only and one-shot
 * --to/--message, history kept across restarts, a frame longer than
 * max_frame from the server skipped without dropping the connection, and a
 * server that never answers given up after the connect timeout. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "client_proc.h"
#include "harness.h"

#define D TH_DEADLINE_MS

static int port_of(void **state) { return th_server_port(*state); }

static void test_ok_events(void **state) {
  int port = port_of(state);
  th_cli_t *a = th_cli_ready(port, "alice", NULL);
  th_cli_t *b = th_cli_ready(port, "bob", NULL);
  th_cli_t *c = th_cli_ready(port, "carol", NULL);

  th_cli_cmd(a, "/add bob");
  th_cli_wait(a, D, "ok", "command", "add", "user", "bob", NULL);
  th_cli_wait(b, D, "contact_request", "from", "alice", NULL);
  th_cli_cmd(b, "/accept alice");
  th_cli_wait(b, D, "ok", "command", "accept", "user", "alice", NULL);
  th_cli_wait(a, D, "contact_added", "user", "bob", NULL);
  th_cli_cmd(a, "/status away");
  th_cli_wait(a, D, "ok", "command", "status", "status", "away", NULL);
  th_cli_cmd(a, "/group create dev");
  th_cli_wait(a, D, "ok", "command", "group_create", "group", "dev", NULL);
  th_cli_cmd(a, "/group add dev bob");
  th_cli_wait(a, D, "ok", "command", "group_add", "group", "dev", "user",
              "bob", NULL);
  th_cli_cmd(c, "/add alice");
  th_cli_wait(a, D, "contact_request", "from", "carol", NULL);
  th_cli_cmd(a, "/decline carol");
  th_cli_wait(a, D, "ok", "command", "decline", "user", "carol", NULL);
  th_cli_cmd(a, "/group leave dev");
  th_cli_wait(a, D, "ok", "command", "group_leave", "group", "dev", NULL);
  th_cli_cmd(a, "/remove bob");
  th_cli_wait(a, D, "ok", "command", "remove", "user", "bob", NULL);
  th_cli_cmd(a, "/query carol");
  th_cli_wait(a, D, "ok", "command", "query", "user", "carol", NULL);
  th_cli_cmd(a, "/query #dev");
  th_cli_wait(a, D, "ok", "command", "query", "group", "dev", NULL);
  /* The CLI.md events are as they were: contacts has no ok of its own. */
  th_cli_cmd(a, "/contacts");
  th_cli_wait(a, D, "contacts", NULL);
  assert_int_equal(th_cli_count(a, "ok", "command", "contacts", NULL), 0);

  assert_int_equal(th_cli_finish(a, D), 0);
  assert_int_equal(th_cli_finish(b, D), 0);
  assert_int_equal(th_cli_finish(c, D), 0);
  th_cli_free(a);
  th_cli_free(b);
  th_cli_free(c);
}

static void test_errors_name_their_command(void **state) {
  int port = port_of(state);
  th_cli_t *a = th_cli_ready(port, "alice", NULL);
  th_cli_cmd(a, "no conversation yet");
  th_cli_wait(a, D, "error", "code", "bad_command", "command", "msg", NULL);
  th_cli_cmd(a, "/add nobody");
  th_cli_wait(a, D, "error", "code", "no_such_user", "command", "add", "user",
              "nobody", NULL);
  th_cli_cmd(a, "/remove nobody");
  th_cli_wait(a, D, "error", "command", "remove", "user", "nobody", NULL);
  th_cli_cmd(a, "/msg nobody hello?");
  th_cli_wait(a, D, "error", "code", "no_such_user", "command", "msg", "to",
              "nobody", NULL);
  th_cli_cmd(a, "/frob");
  th_cli_wait(a, D, "error", "code", "bad_command", "command", "frob", NULL);
  /* A command name that is not UTF-8 still gets its error (cut there). */
  th_cli_cmd(a, "/fr\xffob");
  th_cli_wait(a, D, "error", "code", "bad_command", "command", "fr", NULL);
  th_cli_cmd(a, "/group members nogroup");
  th_cli_wait(a, D, "error", "command", "group_members", "group", "nogroup",
              NULL);
  assert_int_equal(th_cli_finish(a, D), 0);
  th_cli_free(a);
}

/* The server dies: a message typed then is queued, and at the end of input
 * it is still unconfirmed after the drain: exit 3, and stderr says why. */
static void test_unconfirmed_exit_3(void **state) {
  th_server_t *s = th_server_start(NULL);
  th_cli_t *a = th_cli_ready(th_server_port(s), "alice", NULL);
  th_cli_t *b = th_cli_ready(th_server_port(s), "bob", NULL);
  json_t *q;
  (void)state;
  th_server_stop(s, SIGKILL);
  th_cli_wait(a, D, "disconnected", NULL);
  th_cli_cmd(a, "/msg bob are you there");
  q = th_cli_wait(a, D, "queued", "to", "bob", NULL);
  assert_non_null(json_string_value(json_object_get(q, "msg_id")));
  /* 10 s of drain, then the exit. */
  assert_int_equal(th_cli_finish(a, 3 * D), 3);
  assert_non_null(strstr(th_proc_output(th_cli_proc(a), TH_STDERR),
                         "not confirmed"));
  th_cli_free(a);
  th_cli_free(b);
  th_server_free(s);
}

/* Frozen server: the message typed meanwhile is queued, and sent (same
 * msg_id) once the client is logged in again. */
static void test_queued_then_sent(void **state) {
  const char *const extra[] = {"--heartbeat", "1", NULL};
  const char *const no_p2p[] = {"--no-p2p", NULL};
  th_server_t *s = th_server_start(extra);
  th_cli_t *a = th_cli_ready(th_server_port(s), "alice", NULL);
  th_cli_t *b = th_cli_ready(th_server_port(s), "bob", no_p2p);
  const char *id;
  json_t *q;
  (void)state;
  th_proc_signal(th_server_proc(s), SIGSTOP);
  th_cli_wait(a, 3 * D, "disconnected", NULL);
  th_cli_wait(a, D, "reconnecting", NULL);
  th_cli_cmd(a, "/msg bob typed while offline");
  q = th_cli_wait(a, D, "queued", "to", "bob", NULL);
  id = json_string_value(json_object_get(q, "msg_id"));
  assert_non_null(id);
  th_proc_signal(th_server_proc(s), SIGCONT);
  th_cli_wait(a, 6 * D, "sent", "to", "bob", "msg_id", id, NULL);
  th_cli_wait(b, 6 * D, "message", "from", "alice", "body",
              "typed while offline", NULL);
  assert_int_equal(th_cli_finish(a, D), 0);
  assert_int_equal(th_cli_finish(b, D), 0);
  th_cli_free(a);
  th_cli_free(b);
  th_server_free(s);
}

/* --listen-only reads no commands: the end of stdin does not end it; it
 * shows what arrives until SIGTERM, then exits 0. */
static void test_listen_only(void **state) {
  int port = port_of(state);
  const char *const listen[] = {"--listen-only", NULL};
  th_cli_t *a = th_cli_ready(port, "alice", listen);
  th_cli_t *b = th_cli_ready(port, "bob", NULL);
  int status;
  th_proc_close_stdin(th_cli_proc(a));
  th_cli_cmd(b, "/msg alice are you listening");
  th_cli_wait(a, D, "message", "from", "bob", "body", "are you listening",
              NULL);
  th_cli_wait(b, D, "sent", "to", "alice", NULL);
  th_proc_signal(th_cli_proc(a), SIGTERM);
  assert_int_equal(th_proc_wait(th_cli_proc(a), D, &status), 0);
  assert_int_equal(th_proc_exit_code(th_cli_proc(a)), 0);
  assert_int_equal(th_cli_finish(b, D), 0);
  th_cli_free(a);
  th_cli_free(b);
}

/* --to USER --message TEXT: sends, waits for the confirmation, exits 0;
 * a refused message exits 1. */
static void test_one_shot(void **state) {
  int port = port_of(state);
  const char *const one[] = {"--to", "bob", "--message", "one shot", NULL};
  const char *const bad[] = {"--to", "nobody", "--message", "lost", NULL};
  th_cli_t *b = th_cli_ready(port, "bob", NULL);
  th_cli_t *a = th_cli_start(port, "alice", one), *x;
  int status;
  th_cli_wait(a, D, "sent", "to", "bob", NULL);
  assert_int_equal(th_proc_wait(th_cli_proc(a), D, &status), 0);
  assert_int_equal(th_proc_exit_code(th_cli_proc(a)), 0);
  th_cli_wait(b, D, "message", "from", "alice", "body", "one shot", NULL);
  x = th_cli_start(port, "alice", bad);
  th_cli_wait(x, D, "error", "code", "no_such_user", "to", "nobody", NULL);
  assert_int_equal(th_proc_wait(th_cli_proc(x), D, &status), 0);
  assert_int_equal(th_proc_exit_code(th_cli_proc(x)), 1);
  th_cli_free(x);
  /* Refused before it is sent (to oneself): also 1. */
  {
    const char *const self[] = {"--to", "alice", "--message", "me", NULL};
    x = th_cli_start(port, "alice", self);
    th_cli_wait(x, D, "error", "code", "bad_command", "command", "msg", NULL);
    assert_int_equal(th_proc_wait(th_cli_proc(x), D, &status), 0);
    assert_int_equal(th_proc_exit_code(th_cli_proc(x)), 1);
  }
  assert_int_equal(th_cli_finish(b, D), 0);
  th_cli_free(a);
  th_cli_free(x);
  th_cli_free(b);
}

/* Messages both ways are in alice's history after a restart, oldest first,
 * in private files. */
static void test_history_across_restarts(void **state) {
  int port = port_of(state);
  char dir[64], env_state[96], path[256], cmd[128];
  const char *env[2] = {env_state, NULL};
  th_cli_t *a, *b;
  json_t *h, *msgs;
  struct stat st;

  snprintf(dir, sizeof(dir), "/tmp/chat-hist-%d", (int)getpid());
  snprintf(env_state, sizeof(env_state), "XDG_STATE_HOME=%s", dir);
  a = th_cli_start_env(port, "alice", NULL, env);
  th_cli_wait(a, D, "ready", NULL);
  b = th_cli_ready(port, "bob", NULL);
  th_cli_cmd(b, "/msg alice first from bob");
  th_cli_wait(a, D, "message", "from", "bob", "body", "first from bob", NULL);
  th_cli_cmd(a, "/msg bob reply from alice");
  th_cli_wait(a, D, "sent", "to", "bob", NULL);
  assert_int_equal(th_cli_finish(a, D), 0);
  th_cli_free(a);

  a = th_cli_start_env(port, "alice", NULL, env);
  th_cli_wait(a, D, "ready", NULL);
  th_cli_cmd(a, "/history bob");
  h = th_cli_wait(a, D, "history", "user", "bob", NULL);
  msgs = json_object_get(h, "messages");
  assert_int_equal(json_array_size(msgs), 2);
  assert_string_equal(th_str(json_array_get(msgs, 0), "from"), "bob");
  assert_string_equal(th_str(json_array_get(msgs, 0), "body"),
                      "first from bob");
  assert_string_equal(th_str(json_array_get(msgs, 1), "from"), "alice");
  assert_string_equal(th_str(json_array_get(msgs, 1), "body"),
                      "reply from alice");
  assert_true(th_int(json_array_get(msgs, 1), "ts") >=
              th_int(json_array_get(msgs, 0), "ts"));
  th_cli_cmd(a, "/history bob 1");
  h = th_cli_wait(a, D, "history", "user", "bob", NULL);
  assert_int_equal(json_array_size(json_object_get(h, "messages")), 1);
  assert_int_equal(th_cli_finish(a, D), 0);
  th_cli_free(a);

  snprintf(path, sizeof(path), "%s/chat-client/alice/conv/u-bob.jsonl", dir);
  assert_int_equal(stat(path, &st), 0);
  assert_int_equal(st.st_mode & 0777, 0600);
  snprintf(path, sizeof(path), "%s/chat-client/alice", dir);
  assert_int_equal(stat(path, &st), 0);
  assert_int_equal(st.st_mode & 0777, 0700);
  assert_int_equal(th_cli_finish(b, D), 0);
  th_cli_free(b);
  snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
  assert_int_equal(system(cmd), 0);
}

/* ---- a fake server that breaks the frame limit ------------------------- */

typedef struct fake {
  int lfd, fd;
  char buf[1 << 16];
  size_t len;
} fake_t;

static int fake_listen(fake_t *f) {
  struct sockaddr_in sa = {0};
  socklen_t sl = sizeof(sa);
  memset(f, 0, sizeof(*f));
  f->fd = -1;
  f->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  assert_true(f->lfd >= 0);
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  assert_int_equal(bind(f->lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
  assert_int_equal(listen(f->lfd, 8), 0);
  assert_int_equal(getsockname(f->lfd, (struct sockaddr *)&sa, &sl), 0);
  return ntohs(sa.sin_port);
}

static int readable(int fd, int ms) {
  struct pollfd p = {fd, POLLIN, 0};
  return poll(&p, 1, ms) > 0;
}

static void fake_send(fake_t *f, const char *line) {
  size_t n = strlen(line);
  assert_int_equal(send(f->fd, line, n, MSG_NOSIGNAL), (ssize_t)n);
  assert_int_equal(send(f->fd, "\n", 1, MSG_NOSIGNAL), 1);
}

/* The next frame from the client (new reference); fails at the deadline. */
static json_t *fake_recv(fake_t *f) {
  long long deadline = th_now_ms() + D;
  for (;;) {
    char *nl = memchr(f->buf, '\n', f->len);
    ssize_t r;
    if (nl) {
      json_t *obj = json_loadb(f->buf, (size_t)(nl - f->buf), 0, NULL);
      f->len -= (size_t)(nl + 1 - f->buf);
      memmove(f->buf, nl + 1, f->len);
      assert_non_null(obj);
      return obj;
    }
    if (th_now_ms() >= deadline ||
        !readable(f->fd, (int)(deadline - th_now_ms())))
      fail_msg("the fake server got no frame");
    r = recv(f->fd, f->buf + f->len, sizeof(f->buf) - f->len, 0);
    if (r <= 0)
      fail_msg("the client closed the connection");
    f->len += (size_t)r;
  }
}

/* Reads the client's next request, asserts its type, answers ok. */
static void fake_answer(fake_t *f, const char *type, const char *fields) {
  json_t *req = fake_recv(f);
  char line[512];
  th_assert_type(req, type, NULL);
  snprintf(line, sizeof(line), "{\"type\":\"ok\",\"id\":\"%s\"%s}",
           th_str(req, "id"), fields);
  json_decref(req);
  fake_send(f, line);
}

static void test_frame_too_large_skipped(void **state) {
  fake_t f;
  int port = fake_listen(&f);
  th_cli_t *a = th_cli_start(port, "alice", NULL);
  size_t big = 70000;
  char *line = malloc(big + 200);
  json_t *ack;
  (void)state;
  assert_true(readable(f.lfd, D));
  f.fd = accept(f.lfd, NULL, NULL);
  assert_true(f.fd >= 0);
  fake_send(&f, "{\"type\":\"welcome\",\"proto\":1,\"server\":\"fake\","
                "\"heartbeat\":30,\"max_frame\":65536}");
  fake_answer(&f, "register", "");
  fake_answer(&f, "login", ",\"user\":\"alice\"");
  fake_answer(&f, "contacts", ",\"contacts\":[]");
  th_cli_wait(a, D, "ready", NULL);
  /* One deliver over max_frame, then one within it. */
  assert_non_null(line);
  snprintf(line, big + 200,
           "{\"type\":\"deliver\",\"from\":\"bob\",\"msg_id\":\"m1\",\"ts\":1,"
           "\"offline\":false,\"body\":\"%0*d\"}", (int)big, 0);
  fake_send(&f, line);
  free(line);
  fake_send(&f, "{\"type\":\"deliver\",\"from\":\"bob\",\"msg_id\":\"m2\","
                "\"ts\":1,\"offline\":false,\"body\":\"small\"}");
  th_cli_wait(a, D, "error", "code", "frame_too_large", NULL);
  th_cli_wait(a, D, "message", "from", "bob", "body", "small", NULL);
  ack = fake_recv(&f); /* on the same connection */
  th_assert_type(ack, "ack", NULL);
  assert_string_equal(th_str(ack, "msg_id"), "m2");
  json_decref(ack);
  assert_int_equal(th_cli_count(a, "disconnected", NULL), 0);
  /* It logs out and exits at the end of input; nobody connected again. */
  th_proc_close_stdin(th_cli_proc(a));
  fake_answer(&f, "logout", "");
  close(f.fd);
  assert_int_equal(th_cli_finish(a, D), 0);
  assert_false(readable(f.lfd, 0));
  close(f.lfd);
  th_cli_free(a);
}

/* A server that accepts and says nothing: the client gives up after the
 * connect timeout (5 s), not 3 heartbeats (90 s), and says why. */
static void test_silent_server_times_out(void **state) {
  fake_t f;
  int port = fake_listen(&f), status;
  th_cli_t *a = th_cli_start(port, "alice", NULL);
  long long t0 = th_now_ms();
  (void)state;
  assert_true(readable(f.lfd, D));
  f.fd = accept(f.lfd, NULL, NULL);
  assert_true(f.fd >= 0);
  assert_int_equal(th_proc_wait(th_cli_proc(a), 2 * D, &status), 0);
  assert_int_equal(th_proc_exit_code(th_cli_proc(a)), 1);
  assert_true(th_now_ms() - t0 >= 4000);
  assert_non_null(strstr(th_proc_output(th_cli_proc(a), TH_STDERR),
                         "no welcome from the server"));
  close(f.fd);
  close(f.lfd);
  th_cli_free(a);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_ok_events, th_fixture_server_up,
                                      th_fixture_server_down),
      cmocka_unit_test_setup_teardown(test_errors_name_their_command,
                                      th_fixture_server_up,
                                      th_fixture_server_down),
      cmocka_unit_test(test_unconfirmed_exit_3),
      cmocka_unit_test(test_queued_then_sent),
      cmocka_unit_test_setup_teardown(test_listen_only, th_fixture_server_up,
                                      th_fixture_server_down),
      cmocka_unit_test_setup_teardown(test_one_shot, th_fixture_server_up,
                                      th_fixture_server_down),
      cmocka_unit_test_setup_teardown(test_history_across_restarts,
                                      th_fixture_server_up,
                                      th_fixture_server_down),
      cmocka_unit_test(test_frame_too_large_skipped),
      cmocka_unit_test(test_silent_server_times_out),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
