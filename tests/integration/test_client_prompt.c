/* test_client_prompt.c -- the interactive prompt on a real terminal (tmux):
 * keys that leave the line empty do not end the client, only Ctrl-D on an
 * empty prompt does; UTF-8 typed reaches the peer byte for byte; Ctrl-Z and
 * fg give the prompt back with the half-typed line; /query chooses where
 * plain lines go and the prompt shows it; a line wider than the terminal is
 * redrawn whole when a message arrives; Tab completes the right kind of
 * name. Each test waits on what the screen
 * or the peer shows, with a deadline. */
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
#include "tty.h"

#define D TH_DEADLINE_MS
/* What the window shows when the client has exited (see alice_cmd). */
#define EXITED "CLIENT-EXITED-"
/* The prompt once alice has written to bob: the conversation is bob's. */
#define TO_BOB "alice\xe2\x86\x92" "bob>"

typedef struct fx {
  th_server_t *s;
  th_cli_t *bob;
  th_tty_t *t;
  char state[64];
} fx_t;

static int setup(void **state) {
  fx_t *f = calloc(1, sizeof(*f));
  if (!th_tty_available())
    skip();
  assert_non_null(f);
  f->s = th_server_start(NULL);
  f->bob = th_cli_ready(th_server_port(f->s), "bob", NULL);
  snprintf(f->state, sizeof(f->state), "/tmp/chat-prompt-%d", (int)getpid());
  *state = f;
  return 0;
}

static int teardown(void **state) {
  fx_t *f = *state;
  char cmd[128];
  th_tty_free(f->t);
  th_cli_free(f->bob);
  th_server_free(f->s);
  snprintf(cmd, sizeof(cmd), "rm -rf %s", f->state);
  if (system(cmd) != 0)
    fprintf(stderr, "could not remove %s\n", f->state);
  free(f);
  return 0;
}

/* The command line that runs alice's client, and says when it ended. */
static void alice_cmd(fx_t *f, char *buf, size_t len, const char *flags) {
  snprintf(buf, len,
           "CHAT_PASSWORD=%s XDG_STATE_HOME=%s %s/chat-client --server "
           "127.0.0.1:%d --user alice --register %s 2>/dev/null; "
           "echo " EXITED "$?",
           TH_CLI_PASSWORD, f->state, CHAT_BIN_DIR, th_server_port(f->s),
           flags);
}

/* alice's client alone in a cols-wide window (it stays open after the
 * client exits: "sleep"). */
static void start_alice(fx_t *f, int cols) {
  char cmd[1024], line[1200];
  alice_cmd(f, cmd, sizeof(cmd), "");
  snprintf(line, sizeof(line), "%s; sleep 600", cmd);
  f->t = th_tty_start(cols, 30, line);
  free(th_tty_wait(f->t, "logged in as alice", D));
  th_tty_wait_last(f->t, "alice>", D);
}

static void assert_running(fx_t *f) {
  char *screen = th_tty_screen(f->t);
  if (strstr(screen, EXITED)) {
    fprintf(stderr, "---- screen ----\n%s---- end ----\n", screen);
    free(screen);
    fail_msg("the client exited");
  }
  free(screen);
}

/* Every key that edits, moves or does nothing on an empty line leaves the
 * client running (it used to log out and exit 0 on the first key that left
 * the line empty); Enter on an empty line is nothing; Ctrl-D on an empty
 * prompt ends the input: exit 0. */
static void test_empty_line_keeps_running(void **state) {
  fx_t *f = *state;
  start_alice(f, 120);
  th_tty_type(f->t, "abc");
  th_tty_wait_last(f->t, "alice> abc", D);
  th_tty_keys(f->t, "BSpace", "BSpace", "BSpace", NULL);
  th_tty_wait_last(f->t, "alice>", D);
  th_tty_keys(f->t, "Left", "Right", "Home", "End", "C-a", "C-e", "C-u",
              "C-k", "C-w", "Tab", "C-u", "Escape", "C-u", "C-l", "Enter",
              "Enter", NULL);
  /* The client reads keys in order: this line proves it read all of the
   * above and is still there. */
  th_tty_type(f->t, "/msg bob still here");
  th_tty_keys(f->t, "Enter", NULL);
  th_cli_wait(f->bob, D, "message", "from", "alice", "body", "still here",
              NULL);
  assert_running(f);
  /* Ctrl-D with text on the line deletes, it does not end the input. */
  th_tty_type(f->t, "xy");
  th_tty_keys(f->t, "Home", "C-d", NULL);
  th_tty_wait_last(f->t, TO_BOB " y", D);
  th_tty_keys(f->t, "C-u", NULL);
  th_tty_wait_last(f->t, TO_BOB, D);
  assert_running(f);
  th_tty_keys(f->t, "C-d", NULL);
  free(th_tty_wait(f->t, EXITED "0", D));
}

/* Chinese, an emoji and an accented letter typed at the prompt reach the
 * peer byte for byte (they used to be dropped: no setlocale). */
static void test_utf8_reaches_peer(void **state) {
  fx_t *f = *state;
  static const char text[] = "\xe4\xbd\xa0\xe5\xa5\xbd \xf0\x9f\x98\x80 "
                             "\xc3\xa9"; /* 你好 😀 é */
  char typed[128];
  json_t *ev;
  start_alice(f, 120);
  snprintf(typed, sizeof(typed), "/msg bob %s bob", text);
  th_tty_type(f->t, typed);
  free(th_tty_wait(f->t, text, D));
  th_tty_keys(f->t, "Enter", NULL);
  snprintf(typed, sizeof(typed), "%s bob", text);
  ev = th_cli_wait(f->bob, D, "message", "from", "alice", NULL);
  assert_string_equal(json_string_value(json_object_get(ev, "body")), typed);
  /* Editing counts characters, not bytes: one BSpace takes the é. */
  th_tty_type(f->t, "/msg bob \xc3\xa9\xc3\xa9");
  th_tty_keys(f->t, "BSpace", "Enter", NULL);
  th_cli_wait(f->bob, D, "message", "from", "alice", "body", "\xc3\xa9",
              NULL);
  assert_running(f);
}

/* Ctrl-Z stops the client with the terminal given back to the shell; fg
 * brings back the prompt with the half-typed line, and typing goes on. */
static void test_ctrl_z_and_fg(void **state) {
  fx_t *f = *state;
  char cmd[1024];
  f->t = th_tty_start(120, 30, "PS1='$ ' exec bash --norc --noprofile -i");
  th_tty_wait_last(f->t, "$", D);
  alice_cmd(f, cmd, sizeof(cmd), "");
  th_tty_type(f->t, cmd);
  th_tty_keys(f->t, "Enter", NULL);
  free(th_tty_wait(f->t, "logged in as alice", D));
  th_tty_type(f->t, "/msg bob before");
  th_tty_wait_last(f->t, "alice> /msg bob before", D);
  th_tty_keys(f->t, "C-z", NULL);
  free(th_tty_wait(f->t, "Stopped", D));
  th_tty_wait_last(f->t, "$", D); /* the shell has the terminal */
  th_tty_type(f->t, "fg");
  th_tty_keys(f->t, "Enter", NULL);
  th_tty_wait_last(f->t, "alice> /msg bob before", D);
  th_tty_type(f->t, " after");
  th_tty_keys(f->t, "Enter", NULL);
  th_cli_wait(f->bob, D, "message", "from", "alice", "body", "before after",
              NULL);
  th_tty_wait_last(f->t, TO_BOB, D);
  /* Ctrl-D ends it; the shell's prompt comes back. (The shell already
   * printed EXITED when the job stopped.) */
  th_tty_keys(f->t, "C-d", NULL);
  th_tty_wait_last(f->t, "$", D);
}

/* /query chooses the conversation: the prompt shows it, plain lines go
 * there even after a message from someone else, whose unread count shows. */
static void test_query_routes_plain_lines(void **state) {
  fx_t *f = *state;
  th_cli_t *carol = th_cli_ready(th_server_port(f->s), "carol", NULL);
  start_alice(f, 120);
  th_tty_type(f->t, "/query bob");
  th_tty_keys(f->t, "Enter", NULL);
  th_tty_wait_last(f->t, "alice\xe2\x86\x92" "bob>", D);
  th_cli_cmd(carol, "/msg alice hello from carol");
  free(th_tty_wait(f->t, "<carol> hello from carol", D));
  th_tty_wait_last(f->t, "alice\xe2\x86\x92" "bob [+1]>", D);
  th_tty_type(f->t, "a plain line");
  th_tty_keys(f->t, "Enter", NULL);
  th_cli_wait(f->bob, D, "message", "from", "alice", "body", "a plain line",
              NULL);
  th_tty_type(f->t, "/query carol");
  th_tty_keys(f->t, "Enter", NULL);
  th_tty_wait_last(f->t, "alice\xe2\x86\x92" "carol>", D);
  th_tty_type(f->t, "and one for carol");
  th_tty_keys(f->t, "Enter", NULL);
  th_cli_wait(carol, D, "message", "from", "alice", "body",
              "and one for carol", NULL);
  assert_int_equal(th_cli_count(f->bob, "message", "body",
                                "and one for carol", NULL), 0);
  assert_int_equal(th_cli_finish(carol, D), 0);
  th_cli_free(carol);
}

/* A half-typed line three rows long is wiped whole and redrawn below a
 * message that arrives: no rows of it are left behind above. */
static void test_wide_line_redraw(void **state) {
  fx_t *f = *state;
  char typed[200], *screen, *p;
  int n = 0;
  start_alice(f, 40);
  snprintf(typed, sizeof(typed), "/msg bob %s MIDDLE %s", 
           "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
           "zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz END");
  th_tty_type(f->t, typed);
  free(th_tty_wait(f->t, "END", D));
  th_cli_cmd(f->bob, "/msg alice interrupting");
  /* The message shows first, the line is redrawn after it: wait for both
   * (a screen caught in between has the line nowhere). */
  for (long long end = th_now_ms() + D;; usleep(50 * 1000)) {
    screen = th_tty_wait(f->t, "<bob> interrupting", D);
    p = strstr(screen, "<bob> interrupting");
    if (strstr(p, "END") || th_now_ms() >= end)
      break;
    free(screen);
  }
  for (p = screen; (p = strstr(p, "/msg bob")) != NULL; p++)
    n++;
  if (n != 1 || strstr(screen, "<bob> interrupting") > strstr(screen, "END"))
    fprintf(stderr, "---- screen ----\n%s---- end ----\n", screen);
  assert_int_equal(n, 1);
  assert_true(strstr(screen, "<bob> interrupting") < strstr(screen, "MIDDLE"));
  free(screen);
  th_tty_keys(f->t, "Enter", NULL);
  th_cli_wait(f->bob, D, "message", "from", "alice", "body",
              typed + strlen("/msg bob "), NULL);
}

/* Tab completes a contact where a user belongs and a group where a group
 * belongs, each followed by a space. */
static void test_tab_completion(void **state) {
  fx_t *f = *state;
  start_alice(f, 120);
  th_tty_type(f->t, "/add bob");
  th_tty_keys(f->t, "Enter", NULL);
  th_cli_wait(f->bob, D, "contact_request", "from", "alice", NULL);
  th_cli_cmd(f->bob, "/accept alice");
  free(th_tty_wait(f->t, "bob is now a contact", D));
  th_tty_type(f->t, "/group create devs");
  th_tty_keys(f->t, "Enter", NULL);
  free(th_tty_wait(f->t, "created #devs", D));
  th_tty_type(f->t, "/msg b");
  th_tty_keys(f->t, "Tab", NULL);
  th_tty_type(f->t, "x");
  th_tty_wait_last(f->t, "alice> /msg bob x", D);
  th_tty_keys(f->t, "C-u", NULL);
  th_tty_type(f->t, "/gmsg d");
  th_tty_keys(f->t, "Tab", NULL);
  th_tty_type(f->t, "x");
  th_tty_wait_last(f->t, "alice> /gmsg devs x", D);
  th_tty_keys(f->t, "C-u", NULL);
  th_tty_type(f->t, "/group add d");
  th_tty_keys(f->t, "Tab", NULL);
  th_tty_type(f->t, "b");
  th_tty_keys(f->t, "Tab", NULL);
  th_tty_wait_last(f->t, "alice> /group add devs bob", D);
  th_tty_keys(f->t, "C-u", NULL);
  th_tty_type(f->t, "/query #d");
  th_tty_keys(f->t, "Tab", "Enter", NULL);
  th_tty_wait_last(f->t, "alice\xe2\x86\x92#devs>", D);
  assert_running(f);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_empty_line_keeps_running, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_utf8_reaches_peer, setup, teardown),
      cmocka_unit_test_setup_teardown(test_ctrl_z_and_fg, setup, teardown),
      cmocka_unit_test_setup_teardown(test_query_routes_plain_lines, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_wide_line_redraw, setup, teardown),
      cmocka_unit_test_setup_teardown(test_tab_completion, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
