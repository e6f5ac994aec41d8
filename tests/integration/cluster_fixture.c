/* cluster_fixture.c -- cluster_fixture.h: a Redis and nodes per case,
 * tracked clients, waits and soft checks. */
#include "cluster_fixture.h"

#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

/* Contract breaches noted by cf_problem() in the running case. */
static char problems[4096];

/* The case's clients, closed by the teardown when a failed assertion left
 * them open (so a failing case adds no leak report under ASan). */
#define MAX_CLIENTS 16
static th_client_t *clients[MAX_CLIENTS];

th_client_t *cf_track(th_client_t *c) {
  for (int i = 0; i < MAX_CLIENTS; i++)
    if (clients[i] == NULL) {
      clients[i] = c;
      return c;
    }
  fail_msg("more than %d clients", MAX_CLIENTS);
  return c;
}

void cf_close(th_client_t *c) {
  for (int i = 0; i < MAX_CLIENTS; i++)
    if (clients[i] == c)
      clients[i] = NULL;
  th_client_close(c);
}

th_client_t *cf_user_at(int port, const char *user) {
  return cf_track(th_client_user(port, user, TH_FIXTURE_PW));
}

int cf_setup(void **state) {
  cluster_t *c = calloc(1, sizeof(*c));
  if (c == NULL)
    return -1;
  *state = c;
  problems[0] = '\0';
  return 0;
}

/* Runs after a failed test too: whatever still runs is killed and reaped,
 * and Redis's directory removed. */
int cf_teardown(void **state) {
  cluster_t *c = *state;
  for (int i = 0; i < MAX_CLIENTS; i++)
    if (clients[i] != NULL)
      cf_close(clients[i]);
  for (int i = 0; i < MAX_NODES; i++)
    th_server_free(c->n[i]);
  rp_free(&c->r);
  free(c);
  return 0;
}

void cf_need_redis(cluster_t *c) {
  const char *why = rp_missing();
  if (why != NULL) {
    print_message("%s\n", why);
    skip();
  }
  if (rp_start(&c->r, NULL) != 0)
    fail_msg("redis-server did not start");
}

/* Node i, named name, on the test's Redis; on port (0: any free one). */
th_server_t *cf_node_up(cluster_t *c, int i, const char *name, int port) {
  char listen[32];
  const char *extra[] = {"--db", c->r.url, "--node", name, "--heartbeat",
                         HB_ARG, NULL, NULL, NULL};
  if (port > 0) {
    snprintf(listen, sizeof(listen), "127.0.0.1:%d", port);
    extra[6] = "--listen";
    extra[7] = listen;
  }
  c->n[i] = th_server_start(extra);
  return c->n[i];
}

int cf_port_of(cluster_t *c, int i) { return th_server_port(c->n[i]); }

void cf_up(cluster_t *c, int nodes) {
  cf_need_redis(c);
  for (int i = 0; i < nodes; i++) {
    char name[16];
    snprintf(name, sizeof(name), "n%d", i + 1);
    cf_node_up(c, i, name, 0);
  }
}

/* Stops every node with SIGTERM (each must exit 0: a clean stop, and no
 * leak under ASan), then Redis. */
void cf_down(cluster_t *c) {
  for (int i = 0; i < MAX_NODES; i++) {
    if (c->n[i] == NULL)
      continue;
    int code = th_server_stop(c->n[i], SIGTERM);
    if (code != 0)
      fail_msg("node %d exited %d on SIGTERM", i, code);
    th_server_free(c->n[i]);
    c->n[i] = NULL;
  }
  rp_free(&c->r);
}

/* ---- waits ---------------------------------------------------------------- */

void cf_ping(th_client_t *c) {
  json_t *p = th_client_call(c, "{s:s}", "type", "ping");
  th_assert_type(p, "pong", NULL);
  json_decref(p);
}

int cf_field_is(const json_t *f, const char *k, const char *v) {
  const char *got;
  return k == NULL || ((got = th_str(f, k)) != NULL && strcmp(got, v) == 0);
}

void cf_dump_frames(const char *what, const json_t *frames) {
  for (size_t i = 0; i < json_array_size(frames); i++) {
    char *s = json_dumps(json_array_get(frames, i), JSON_COMPACT);
    fprintf(stderr, "  %s: %s\n", what, s ? s : "?");
    free(s);
  }
}

/* The next frame of type whose k1 is v1 and k2 is v2 (a NULL key matches
 * anything), within timeout_ms, pinging every PING_EVERY_MS while it
 * waits. Frames of type that do not match are dropped, after being
 * appended to seen when it is not NULL (the match is appended too);
 * frames of other types stay queued. Fails the test at the deadline. */
json_t *cf_await(th_client_t *c, int timeout_ms, json_t *seen,
                     const char *type, const char *k1, const char *v1,
                     const char *k2, const char *v2) {
  long long deadline = th_now_ms() + timeout_ms;
  json_t *skipped = json_array();
  for (;;) {
    long long left = deadline - th_now_ms();
    if (left <= 0) {
      cf_dump_frames("skipped", skipped);
      json_decref(skipped);
      th__server_dump_all();
      fail_msg("no %s with %s=%s %s=%s within %d ms%s", type,
               k1 ? k1 : "", v1 ? v1 : "", k2 ? k2 : "", v2 ? v2 : "",
               timeout_ms, th_client_closed(c) ? " (connection closed)" : "");
    }
    json_t *f = th_client_try_expect(
        c, type, (int)(left < PING_EVERY_MS ? left : PING_EVERY_MS));
    if (f == NULL) {
      if (!th_client_closed(c) && deadline - th_now_ms() > 0)
        cf_ping(c);
      continue;
    }
    if (seen != NULL)
      json_array_append(seen, f);
    if (cf_field_is(f, k1, v1) && cf_field_is(f, k2, v2)) {
      json_decref(skipped);
      return f;
    }
    json_array_append_new(skipped, f);
  }
}

void cf_await_presence(th_client_t *c, const char *user,
                           const char *status, int timeout_ms, json_t *seen) {
  json_decref(cf_await(c, timeout_ms, seen, "presence", "user", user, "status",
                    status));
}

/* Every frame of type the server sent c before it answered a ping (so
 * everything sent before this call), appended to out. */
void cf_collect(th_client_t *c, const char *type, json_t *out) {
  json_t *f;
  cf_ping(c);
  while ((f = th_client_try_expect(c, type, 0)) != NULL)
    json_array_append_new(out, f);
}

void cf_assert_no_presence(const json_t *frames, const char *user,
                               const char *status, const char *who) {
  for (size_t i = 0; i < json_array_size(frames); i++) {
    const json_t *f = json_array_get(frames, i);
    if (cf_field_is(f, "user", user) && cf_field_is(f, "status", status)) {
      cf_dump_frames("presence", frames);
      fail_msg("%s saw presence %s %s", who, user, status);
    }
  }
}

th_client_t *cf_login_at(int port, const char *user) {
  th_client_t *c = cf_track(th_client_connect(port));
  th_client_login(c, user, PW, 0);
  return c;
}

void cf_expect_receipt(th_client_t *c, const char *to,
                           const char *msg_id) {
  json_t *r = cf_await(c, TH_DEADLINE_MS, NULL, "receipt", "msg_id", msg_id,
                    NULL, NULL);
  assert_string_equal(th_str(r, "to"), to);
  assert_string_equal(th_str(r, "state"), "delivered");
  json_decref(r);
}

/* Logs out (ok, then the server closes) and frees c. */
void cf_logout(th_client_t *c) {
  json_decref(th_client_call_ok(c, "{s:s}", "type", "logout"));
  assert_true(th_client_wait_closed(c, TH_DEADLINE_MS));
  cf_close(c);
}

const json_t *cf_contact_in(const json_t *ok, const char *user) {
  const json_t *list = json_object_get(ok, "contacts");
  for (size_t i = 0; i < json_array_size(list); i++)
    if (cf_field_is(json_array_get(list, i), "user", user))
      return json_array_get(list, i);
  return NULL;
}

/* c's contacts list shows user with status. */
void cf_assert_contact_status(th_client_t *c, const char *user,
                                  const char *status) {
  json_t *ok = th_client_call_ok(c, "{s:s}", "type", "contacts");
  const json_t *e = cf_contact_in(ok, user);
  if (e == NULL || !cf_field_is(e, "status", status)) {
    char *s = json_dumps(ok, JSON_COMPACT);
    fail_msg("contacts: wanted %s %s in %s", user, status, s ? s : "?");
  }
  json_decref(ok);
}

/* Contract breaches that do not stop a case: each is noted, the case goes
 * on to check everything else, and fails at its end naming them all
 * (problems_check). */
void cf_problem(const char *fmt, ...) {
  size_t len = strlen(problems);
  va_list ap;
  va_start(ap, fmt);
  if (len + 3 < sizeof(problems)) {
    vsnprintf(problems + len, sizeof(problems) - len - 2, fmt, ap);
    len = strlen(problems);
    problems[len] = '\n';
    problems[len + 1] = '\0';
  }
  va_end(ap);
}

void cf_problems_check(void) {
  if (problems[0] != '\0') {
    char copy[sizeof(problems)];
    snprintf(copy, sizeof(copy), "%s", problems);
    problems[0] = '\0';
    fail_msg("%s", copy);
  }
}

/* A deliver of from's msg_id with body on c; its offline flag is compared
 * with offline softly (cf_problem()). */
void cf_expect_deliver_soft(th_client_t *c, const char *from,
                                const char *msg_id, const char *body,
                                const char *group, int offline,
                                const char *why) {
  json_t *d = cf_await(c, TH_DEADLINE_MS, NULL, "deliver", "msg_id", msg_id,
                    NULL, NULL);
  assert_string_equal(th_str(d, "from"), from);
  assert_string_equal(th_str(d, "body"), body);
  if (group != NULL)
    assert_string_equal(th_str(d, "group"), group);
  assert_true(json_is_boolean(json_object_get(d, "offline")));
  if (json_is_true(json_object_get(d, "offline")) != offline)
    cf_problem("deliver of %s from %s: offline %s, wanted %s (%s)", msg_id, from,
            offline ? "false" : "true", offline ? "true" : "false", why);
  json_decref(d);
}
