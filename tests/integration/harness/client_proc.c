/* client_proc.c -- a chat-client process driven through its stdin and read
 * through its --json events. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client_proc.h"

#define MAX_EVENTS 100000

struct th_cli {
  th_proc_t *proc;
  char user[64];
  json_t **events;
  char *taken;
  size_t n, cap;
};

th_cli_t *th_cli_start(int port, const char *user, const char *const extra[]) {
  return th_cli_start_env(port, user, extra, NULL);
}

th_cli_t *th_cli_start_env(int port, const char *user,
                           const char *const extra[],
                           const char *const more_env[]) {
  char server[64];
  snprintf(server, sizeof(server), "127.0.0.1:%d", port);
  return th_cli_start_at(server, user, extra, more_env);
}

th_cli_t *th_cli_start_at(const char *server, const char *user,
                          const char *const extra[],
                          const char *const more_env[]) {
  const char *argv[32];
  char bin[4096];
  const char *env[16] = {"CHAT_PASSWORD=" TH_CLI_PASSWORD};
  size_t n = 0, ne = 1;
  th_cli_t *c = calloc(1, sizeof(*c));

  assert_non_null(c);
  snprintf(bin, sizeof(bin), "%s/chat-client", CHAT_BIN_DIR);
  snprintf(c->user, sizeof(c->user), "%s", user);
  argv[n++] = bin;
  argv[n++] = "--json";
  argv[n++] = "--server";
  argv[n++] = server;
  argv[n++] = "--user";
  argv[n++] = user;
  argv[n++] = "--register";
  argv[n++] = "--log-level";
  argv[n++] = "info";
  for (size_t i = 0; extra && extra[i] && n < 31; i++)
    argv[n++] = extra[i];
  argv[n] = NULL;
  for (size_t i = 0; more_env && more_env[i] && ne < 15; i++)
    env[ne++] = more_env[i];
  env[ne] = NULL;
  c->proc = th_proc_spawn(argv, env);
  return c;
}

th_cli_t *th_cli_ready(int port, const char *user, const char *const extra[]) {
  th_cli_t *c = th_cli_start(port, user, extra);
  th_cli_wait(c, TH_DEADLINE_MS, "ready", "user", user, NULL);
  return c;
}

th_proc_t *th_cli_proc(th_cli_t *c) { return c->proc; }

void th_cli_dump(th_cli_t *c) {
  fprintf(stderr, "---- chat-client %s stdout ----\n%s", c->user,
          th_proc_output(c->proc, TH_STDOUT));
  fprintf(stderr, "---- chat-client %s stderr ----\n%s---- end %s ----\n",
          c->user, th_proc_output(c->proc, TH_STDERR), c->user);
}

static void fail_dump(th_cli_t *c, const char *what) {
  th_cli_dump(c);
  th__server_dump_all();
  fail_msg("chat-client %s: %s", c->user, what);
}

void th_cli_cmd(th_cli_t *c, const char *fmt, ...) {
  char line[20000];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(line, sizeof(line), fmt, ap);
  va_end(ap);
  if (th_proc_write(c->proc, line) < 0)
    fail_dump(c, "cannot write a command: the client is gone");
}

/* Reads one more line within timeout; 1 when an event was added. */
static int read_event(th_cli_t *c, int timeout_ms) {
  const char *line = th_proc_read_line(c->proc, TH_STDOUT, timeout_ms);
  json_error_t jerr;
  json_t *ev;
  if (!line)
    return 0;
  ev = json_loads(line, JSON_ALLOW_NUL, &jerr);
  if (!ev || !json_is_object(ev) ||
      !json_is_string(json_object_get(ev, "event"))) {
    char what[512];
    snprintf(what, sizeof(what), "stdout line is not a JSON event: %.300s",
             line);
    json_decref(ev);
    fail_dump(c, what);
  }
  if (c->n == c->cap) {
    c->cap = c->cap ? c->cap * 2 : 64;
    assert_true(c->cap <= MAX_EVENTS);
    c->events = realloc(c->events, c->cap * sizeof(*c->events));
    c->taken = realloc(c->taken, c->cap);
    assert_non_null(c->events);
    assert_non_null(c->taken);
  }
  c->events[c->n] = ev;
  c->taken[c->n++] = 0;
  return 1;
}

static int field_matches(const json_t *v, const char *want) {
  char buf[64];
  if (json_is_string(v))
    return strcmp(json_string_value(v), want) == 0;
  if (json_is_integer(v)) {
    snprintf(buf, sizeof(buf), "%lld", (long long)json_integer_value(v));
    return strcmp(buf, want) == 0;
  }
  if (json_is_boolean(v))
    return strcmp(json_is_true(v) ? "true" : "false", want) == 0;
  return 0;
}

static int matches(const json_t *ev, const char *event, va_list ap) {
  const char *k, *v;
  va_list aq;
  int ok = field_matches(json_object_get(ev, "event"), event);
  va_copy(aq, ap);
  while (ok && (k = va_arg(aq, const char *)) != NULL) {
    v = va_arg(aq, const char *);
    ok = field_matches(json_object_get(ev, k), v);
  }
  va_end(aq);
  return ok;
}

static json_t *vwait(th_cli_t *c, int timeout_ms, const char *event,
                     va_list ap) {
  long long deadline = th_now_ms() + timeout_ms;
  size_t i = 0;
  for (;;) {
    for (; i < c->n; i++)
      if (!c->taken[i] && matches(c->events[i], event, ap)) {
        c->taken[i] = 1;
        return c->events[i];
      }
    long long left = deadline - th_now_ms();
    /* Nothing by the deadline, or the stream ended: no more will come. */
    if (left <= 0 || !read_event(c, (int)left))
      return NULL;
  }
}

json_t *th_cli_wait(th_cli_t *c, int timeout_ms, const char *event, ...) {
  va_list ap;
  json_t *ev;
  char what[512];
  size_t len;
  const char *k;
  va_start(ap, event);
  ev = vwait(c, timeout_ms, event, ap);
  va_end(ap);
  if (ev)
    return ev;
  len = (size_t)snprintf(what, sizeof(what), "no event %s", event);
  va_start(ap, event);
  while ((k = va_arg(ap, const char *)) != NULL && len < sizeof(what) - 100)
    len += (size_t)snprintf(what + len, sizeof(what) - len, " %s=%s", k,
                            va_arg(ap, const char *));
  va_end(ap);
  snprintf(what + len, sizeof(what) - len, " within %d ms", timeout_ms);
  fail_dump(c, what);
  return NULL;
}

int th_cli_count(th_cli_t *c, const char *event, ...) {
  va_list ap;
  int n = 0;
  va_start(ap, event);
  for (size_t i = 0; i < c->n; i++)
    n += matches(c->events[i], event, ap);
  va_end(ap);
  return n;
}

void th_cli_make_contacts(th_cli_t *a, const char *an, th_cli_t *b,
                          const char *bn) {
  th_cli_cmd(a, "/add %s", bn);
  th_cli_wait(b, TH_DEADLINE_MS, "contact_request", "from", an, NULL);
  th_cli_cmd(b, "/accept %s", an);
  th_cli_wait(a, TH_DEADLINE_MS, "contact_added", "user", bn, NULL);
  th_cli_wait(b, TH_DEADLINE_MS, "contact_added", "user", an, NULL);
}

int th_cli_finish(th_cli_t *c, int timeout_ms) {
  int status;
  th_proc_close_stdin(c->proc);
  if (th_proc_wait(c->proc, timeout_ms, &status) < 0)
    fail_dump(c, "did not exit after the end of its input");
  while (read_event(c, 0))
    ;
  return th_proc_exit_code(c->proc);
}

void th_cli_free(th_cli_t *c) {
  if (!c)
    return;
  th_proc_free(c->proc);
  for (size_t i = 0; i < c->n; i++)
    json_decref(c->events[i]);
  free(c->events);
  free(c->taken);
  free(c);
}
