/* test_client_tty.c -- chat-client on a real terminal (a tmux pane): the
 * prompt is drawn once; a message that arrives while a line is half typed is
 * printed above it, the typed text stays on the prompt, and Enter sends all
 * of it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "client_proc.h"
#include "harness.h"

#define D TH_DEADLINE_MS

static char sock[64];

static int tmux(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int tmux(const char *fmt, ...) {
  char args[2048], cmd[2200];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(args, sizeof(args), fmt, ap);
  va_end(ap);
  snprintf(cmd, sizeof(cmd), "tmux -L %s %s >/dev/null 2>&1", sock, args);
  return system(cmd);
}

/* The pane's text, or NULL. Caller frees. */
static char *capture(void) {
  char cmd[256], *buf = calloc(1, 65536);
  size_t n = 0;
  FILE *f;
  snprintf(cmd, sizeof(cmd), "tmux -L %s capture-pane -p -t chat", sock);
  if (!buf || !(f = popen(cmd, "r")))
    return buf;
  n = fread(buf, 1, 65535, f);
  buf[n] = '\0';
  pclose(f);
  return buf;
}

/* Polls the pane until it shows needle; returns the capture (freed by the
 * caller) or fails with the last one. */
static char *wait_pane(const char *needle, int timeout_ms) {
  long long deadline = th_now_ms() + timeout_ms;
  char *text = NULL;
  for (;;) {
    free(text);
    text = capture();
    if (text && strstr(text, needle))
      return text;
    if (th_now_ms() >= deadline)
      break;
    usleep(50 * 1000);
  }
  fprintf(stderr, "---- pane ----\n%s---- end pane ----\n", text ? text : "");
  th__server_dump_all();
  free(text);
  fail_msg("the terminal never showed '%s'", needle);
  return NULL;
}

/* The text of the pane's last non-empty line. */
static const char *last_line(char *text) {
  char *end = text + strlen(text);
  while (end > text && (end[-1] == '\n' || end[-1] == ' '))
    *--end = '\0';
  char *nl = strrchr(text, '\n');
  return nl ? nl + 1 : text;
}

/* The first line of text containing needle, trailing spaces cut (in text,
 * which is modified), or "" when there is none. */
static const char *line_with(char *text, const char *needle) {
  char *hit = strstr(text, needle), *start, *end;
  if (!hit)
    return "";
  start = hit;
  while (start > text && start[-1] != '\n')
    start--;
  end = strchr(hit, '\n');
  if (end)
    *end = '\0';
  end = start + strlen(start);
  while (end > start && end[-1] == ' ')
    *--end = '\0';
  return start;
}

static void test_half_typed_line_survives(void **state) {
  th_server_t *s = th_server_start(NULL);
  int port = th_server_port(s);
  char *pane;
  th_cli_t *bob;

  if (system("tmux -V >/dev/null 2>&1") != 0)
    skip();
  snprintf(sock, sizeof(sock), "chat-test-%d", (int)getpid());
  assert_int_equal(
      tmux("new-session -d -s chat -x 120 -y 30 "
           "'CHAT_PASSWORD=%s %s/chat-client --server 127.0.0.1:%d "
           "--user alice --register 2>/dev/null; sleep 60'",
           TH_CLI_PASSWORD, CHAT_BIN_DIR, port),
      0);
  free(wait_pane("logged in as alice", D));
  bob = th_cli_ready(port, "bob", NULL);
  tmux("send-keys -t chat '/add bob' Enter");
  th_cli_wait(bob, D, "contact_request", "from", "alice", NULL);
  th_cli_cmd(bob, "/accept alice");
  pane = wait_pane("bob is now a contact", D);
  /* The first line typed shows its prompt once (it used to be drawn twice
   * when the prompt first appeared: "alice> alice> /add bob"). */
  assert_string_equal(line_with(pane, "/add bob"), "alice> /add bob");
  assert_null(strstr(pane, "alice> alice>"));
  free(pane);

  tmux("send-keys -t chat 'hello bob, half of this'");
  free(wait_pane("alice> hello bob, half of this", D));
  th_cli_cmd(bob, "/msg alice interrupting you");
  pane = wait_pane("<bob> interrupting you", D);
  /* The message is above, the half-typed line is still the prompt line. */
  assert_string_equal(last_line(pane), "alice> hello bob, half of this");
  assert_true(strstr(pane, "<bob> interrupting you") <
              strstr(pane, "alice> hello bob, half of this"));
  free(pane);

  tmux("send-keys -t chat ' is typed' Enter");
  th_cli_wait(bob, D, "message", "from", "alice", "body",
              "hello bob, half of this is typed", NULL);
  free(wait_pane("delivered directly", D));

  tmux("send-keys -t chat '/quit' Enter");
  tmux("kill-server");
  assert_int_equal(th_cli_finish(bob, D), 0);
  th_cli_free(bob);
  th_server_free(s);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_half_typed_line_survives),
  };
  int rc = cmocka_run_group_tests(tests, NULL, NULL);
  tmux("kill-server"); /* also after a failure */
  return rc;
}
