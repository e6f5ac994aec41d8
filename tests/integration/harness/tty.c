/* tty.c -- programs on a tmux terminal (see tty.h). tmux is run without a
 * shell in between (posix_spawnp), so typed text needs no quoting, and
 * every tmux client process is reaped before the call returns. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "tty.h"

extern char **environ;

struct th_tty {
  char sock[64];
};

/* Live tmux servers, killed at exit also after a failed assertion (which
 * leaves the test function without its th_tty_free). */
#define MAX_LIVE 16
static char live[MAX_LIVE][64];

static int tmux_run(const char *sock, const char *const args[], char **out);

static void kill_live(void) {
  const char *const args[] = {"kill-server", NULL};
  for (int i = 0; i < MAX_LIVE; i++)
    if (live[i][0]) {
      tmux_run(live[i], args, NULL);
      live[i][0] = '\0';
    }
}

static void track(const char *sock, int add) {
  static int registered;
  if (!registered) {
    atexit(kill_live);
    registered = 1;
  }
  for (int i = 0; i < MAX_LIVE; i++) {
    if (add && !live[i][0]) {
      snprintf(live[i], sizeof(live[i]), "%s", sock);
      return;
    }
    if (!add && strcmp(live[i], sock) == 0) {
      live[i][0] = '\0';
      return;
    }
  }
}

/* Runs tmux -L sock ARGS...; out (may be NULL) gets its stdout (caller
 * frees). Returns the exit status or -1. */
static int tmux_run(const char *sock, const char *const args[], char **out) {
  const char *argv[64];
  size_t n = 0;
  int pipefd[2] = {-1, -1}, status = -1;
  posix_spawn_file_actions_t fa;
  pid_t pid;

  argv[n++] = "tmux";
  argv[n++] = "-u";
  if (sock) {
    argv[n++] = "-L";
    argv[n++] = sock;
  }
  for (size_t i = 0; args[i] && n < 63; i++)
    argv[n++] = args[i];
  argv[n] = NULL;
  posix_spawn_file_actions_init(&fa);
  if (out) {
    if (pipe(pipefd) < 0)
      return -1;
    posix_spawn_file_actions_adddup2(&fa, pipefd[1], 1);
    posix_spawn_file_actions_addclose(&fa, pipefd[0]);
  } else {
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", 1, 0);
  }
  posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", 1, 0);
  if (posix_spawnp(&pid, "tmux", &fa, NULL, (char *const *)argv, environ) !=
      0) {
    posix_spawn_file_actions_destroy(&fa);
    if (out) {
      close(pipefd[0]);
      close(pipefd[1]);
    }
    return -1;
  }
  posix_spawn_file_actions_destroy(&fa);
  if (out) {
    size_t len = 0, cap = 65536;
    char *buf = malloc(cap);
    ssize_t r;
    close(pipefd[1]);
    while (buf && (r = read(pipefd[0], buf + len, cap - len - 1)) != 0) {
      if (r < 0) {
        if (errno == EINTR)
          continue;
        break;
      }
      len += (size_t)r;
      if (len + 1 == cap) {
        char *b = realloc(buf, cap *= 2);
        if (!b)
          break;
        buf = b;
      }
    }
    close(pipefd[0]);
    if (buf)
      buf[len] = '\0';
    *out = buf;
  }
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
    ;
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

int th_tty_available(void) {
  const char *const args[] = {"-V", NULL};
  return tmux_run(NULL, args, NULL) == 0;
}

th_tty_t *th_tty_start(int cols, int rows, const char *command) {
  static int seq;
  th_tty_t *t = calloc(1, sizeof(*t));
  char x[16], y[16];
  assert_non_null(t);
  /* Everything tmux starts, and how it reads and shows text, is UTF-8. */
  setenv("LC_ALL", "C.UTF-8", 1);
  snprintf(t->sock, sizeof(t->sock), "chat-test-%d-%d", (int)getpid(), ++seq);
  snprintf(x, sizeof(x), "%d", cols);
  snprintf(y, sizeof(y), "%d", rows);
  {
    const char *const args[] = {"new-session", "-d", "-s", "chat", "-x", x,
                                "-y", y, command, NULL};
    if (tmux_run(t->sock, args, NULL) != 0) {
      free(t);
      fail_msg("tmux would not start");
    }
  }
  track(t->sock, 1);
  return t;
}

void th_tty_keys(th_tty_t *t, ...) {
  const char *args[60] = {"send-keys", "-t", "chat"};
  size_t n = 3;
  const char *k;
  va_list ap;
  va_start(ap, t);
  while ((k = va_arg(ap, const char *)) != NULL && n < 59)
    args[n++] = k;
  va_end(ap);
  args[n] = NULL;
  assert_int_equal(tmux_run(t->sock, args, NULL), 0);
}

void th_tty_type(th_tty_t *t, const char *text) {
  const char *const args[] = {"send-keys", "-t", "chat", "-l", text, NULL};
  assert_int_equal(tmux_run(t->sock, args, NULL), 0);
}

char *th_tty_screen(th_tty_t *t) {
  const char *const args[] = {"capture-pane", "-p", "-t", "chat", NULL};
  char *out = NULL;
  tmux_run(t->sock, args, &out);
  return out ? out : calloc(1, 1);
}

static void fail_screen(char *text, const char *what, const char *arg) {
  fprintf(stderr, "---- screen ----\n%s---- end screen ----\n",
          text ? text : "");
  free(text);
  th__server_dump_all();
  fail_msg("the terminal never %s '%s'", what, arg);
}

char *th_tty_wait(th_tty_t *t, const char *needle, int timeout_ms) {
  long long deadline = th_now_ms() + timeout_ms;
  char *text = NULL;
  for (;;) {
    free(text);
    text = th_tty_screen(t);
    if (strstr(text, needle))
      return text;
    if (th_now_ms() >= deadline)
      break;
    usleep(50 * 1000);
  }
  fail_screen(text, "showed", needle);
  return NULL;
}

void th_tty_wait_last(th_tty_t *t, const char *line, int timeout_ms) {
  long long deadline = th_now_ms() + timeout_ms;
  char *text = NULL, *copy;
  for (;;) {
    free(text);
    text = th_tty_screen(t);
    copy = strdup(text);
    assert_non_null(copy);
    if (strcmp(th_tty_last_line(copy), line) == 0) {
      free(copy);
      free(text);
      return;
    }
    free(copy);
    if (th_now_ms() >= deadline)
      break;
    usleep(50 * 1000);
  }
  fail_screen(text, "ended with the line", line);
}

const char *th_tty_last_line(char *text) {
  char *end = text + strlen(text), *nl;
  while (end > text && (end[-1] == '\n' || end[-1] == ' '))
    *--end = '\0';
  nl = strrchr(text, '\n');
  return nl ? nl + 1 : text;
}

const char *th_tty_line_with(char *text, const char *needle) {
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

void th_tty_free(th_tty_t *t) {
  const char *const args[] = {"kill-server", NULL};
  if (!t)
    return;
  tmux_run(t->sock, args, NULL);
  track(t->sock, 0);
  free(t);
}
