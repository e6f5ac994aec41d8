/* fixture.h -- a server core without sockets for unit tests: a real loop,
 * store (a temp file or ":memory:"), committer, hash pool and chat__srv_t,
 * with sessions whose sink captures every frame. Header-only: each test
 * includes it. */
#ifndef TEST_SERVER_FIXTURE_H
#define TEST_SERVER_FIXTURE_H

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "chat_log.h"
#include "committer.h"
#include "srv.h"

typedef struct cap {
  json_t *frames;   /* captured, oldest first */
  chat__session_t *s;
  int closed, paused, released, gone;
  size_t limit;     /* 0: no output cap */
  size_t bytes;
} cap_t;

typedef struct fx {
  uv_loop_t loop;
  chat__store_t *store;         /* owned by engine once open */
  chat__engine_t *engine;
  chat__committer_t *committer; /* the SQLite engine's */
  chat__hash_pool_t *hashes;
  chat__srv_t srv;
  cap_t *caps[64];
  int ncaps;
  char path[64];
} fx_t;

static inline int cap_send(void *ctx, const json_t *obj) {
  cap_t *c = ctx;
  char *t = json_dumps(obj, JSON_COMPACT);
  size_t n = t ? strlen(t) : 0;
  free(t);
  if (c->limit && c->bytes + n > c->limit) {
    /* what net.c does on overflow: end the session */
    c->limit = 0;
    chat__srv_session_end(c->s->srv, c->s, "output over the cap");
    return -ENOBUFS;
  }
  c->bytes += n;
  json_array_append_new(c->frames, json_deep_copy(obj));
  return 0;
}

static inline int cap_send_line(void *ctx, const char *line, size_t len) {
  json_t *obj = json_loadb(line, len, 0, NULL);
  assert_non_null(obj);
  int r = cap_send(ctx, obj);
  json_decref(obj);
  return r;
}

static inline void cap_close(void *ctx) { ((cap_t *)ctx)->closed = 1; }
static inline void cap_pause(void *ctx) { ((cap_t *)ctx)->paused = 1; }
static inline void cap_resume(void *ctx) { ((cap_t *)ctx)->paused = 0; }
static inline void cap_release(void *ctx) { ((cap_t *)ctx)->released = 1; }

static const chat__sink_t cap_sink = {cap_send,  cap_send_line, cap_close,
                                      cap_pause, cap_resume,    cap_release,
                                      NULL};

static inline void fx_run(fx_t *f) { uv_run(&f->loop, UV_RUN_DEFAULT); }

static inline void fx_open(fx_t *f, const char *path) {
  char err[128];
  assert_int_equal(chat__store_open(path, &f->store, err, sizeof(err)), 0);
  assert_int_equal(chat__engine_sqlite_new(&f->loop, f->store, &f->engine), 0);
  f->committer = chat__engine_sqlite_committer(f->engine);
  chat_server_config_t cfg;
  chat_server_config_default(&cfg);
  cfg.hash_cost = CHAT_HASH_MIN;
  cfg.rate_limit = 0;
  assert_int_equal(chat__srv_init(&f->srv, &f->loop, &cfg, f->engine), 0);
  assert_int_equal(chat__hash_pool_new(&f->loop, 2, CHAT_HASH_QUEUE_DEFAULT,
                                       NULL, &f->hashes),
                   0);
  f->srv.hashes = f->hashes;
}

/* A fixture on a fresh temp database file (so a test can reopen it). */
static inline fx_t *fx_new(void) {
  fx_t *f = calloc(1, sizeof(*f));
  assert_non_null(f);
  chat_log_set_level(CHAT_LOG_WARN);
  assert_int_equal(uv_loop_init(&f->loop), 0);
  snprintf(f->path, sizeof(f->path), "/tmp/chat-unit-XXXXXX");
  int fd = mkstemp(f->path);
  assert_true(fd >= 0);
  close(fd);
  unlink(f->path);
  fx_open(f, f->path);
  return f;
}

/* The connection goes away: what net.c does in on_close. */
static inline void fx_disconnect(fx_t *f, cap_t *c) {
  if (c->gone)
    return;
  c->gone = 1;
  chat__srv_session_end(&f->srv, c->s, "closed");
  chat__session_unref(c->s);
  fx_run(f);
}

static inline void fx_close_store(fx_t *f) {
  for (int i = 0; i < f->ncaps; i++)
    fx_disconnect(f, f->caps[i]);
  chat__hash_pool_free(f->hashes);
  f->hashes = f->srv.hashes = NULL;
  chat__engine_flush_sync(f->engine);
  chat__engine_free(f->engine); /* closes the store */
  fx_run(f);
  chat__srv_free(&f->srv);
}

/* Simulates a restart on the same database. */
static inline void fx_restart(fx_t *f) {
  fx_close_store(f);
  fx_open(f, f->path);
}

static inline void fx_free(fx_t *f) {
  fx_close_store(f);
  for (int i = 0; i < f->ncaps; i++) {
    assert_true(f->caps[i]->released);
    json_decref(f->caps[i]->frames);
    free(f->caps[i]);
  }
  assert_int_equal(uv_loop_close(&f->loop), 0);
  char p[96];
  const char *sfx[] = {"", "-wal", "-shm"};
  for (int i = 0; i < 3; i++) {
    snprintf(p, sizeof(p), "%s%s", f->path, sfx[i]);
    unlink(p);
  }
  free(f);
}

static inline json_t *cap_next(cap_t *c) {
  if (json_array_size(c->frames) == 0)
    return NULL;
  json_t *x = json_incref(json_array_get(c->frames, 0));
  json_array_remove(c->frames, 0);
  return x;
}

/* Pops the next frame, which must be of type (and error code, if given). */
static inline json_t *cap_expect(cap_t *c, const char *type, const char *code) {
  json_t *x = cap_next(c);
  if (x == NULL)
    fail_msg("expected a %s frame, got nothing", type);
  const char *t = json_string_value(json_object_get(x, "type"));
  const char *cd = json_string_value(json_object_get(x, "code"));
  if (t == NULL || strcmp(t, type) != 0 ||
      (code && (cd == NULL || strcmp(cd, code) != 0))) {
    char *d = json_dumps(x, JSON_COMPACT);
    fail_msg("expected %s %s, got %s", type, code ? code : "", d);
  }
  return x;
}

static inline void cap_expect_drop(cap_t *c, const char *type,
                                   const char *code) {
  json_decref(cap_expect(c, type, code));
}

static inline void cap_empty(cap_t *c) {
  json_t *x = cap_next(c);
  if (x) {
    char *d = json_dumps(x, JSON_COMPACT);
    fail_msg("expected no frame, got %s", d);
  }
}

static inline const char *jstr(const json_t *o, const char *k) {
  return json_string_value(json_object_get(o, k));
}

/* A new connection; its welcome is consumed. */
static inline cap_t *fx_connect(fx_t *f) {
  cap_t *c = calloc(1, sizeof(*c));
  assert_non_null(c);
  c->frames = json_array();
  c->s = chat__srv_session_new(&f->srv, &cap_sink, c, "10.0.0.1");
  assert_non_null(c->s);
  f->caps[f->ncaps++] = c;
  cap_expect_drop(c, "welcome", NULL);
  return c;
}

/* Feeds one frame built by json_pack without running the loop, so a test
 * decides what happens before anything that waits on the loop (a commit, a
 * password hash) comes back. */
static inline void fx_vfeed(fx_t *f, cap_t *c, const char *fmt, va_list ap) {
  json_error_t jerr;
  json_t *obj = json_vpack_ex(&jerr, 0, fmt, ap);
  if (obj == NULL)
    fail_msg("pack %s: %s", fmt, jerr.text);
  chat__srv_on_frame(&f->srv, c->s, obj);
  json_decref(obj);
}

static inline void fx_feed(fx_t *f, cap_t *c, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fx_vfeed(f, c, fmt, ap);
  va_end(ap);
}

/* Feeds one frame built by json_pack and runs the loop until idle. */
static inline void fx_send(fx_t *f, cap_t *c, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fx_vfeed(f, c, fmt, ap);
  va_end(ap);
  fx_run(f);
}

/* cmocka setup and teardown: a fresh fixture in *state for each test. */
static inline int fx_setup(void **state) {
  *state = fx_new();
  return 0;
}

static inline int fx_teardown(void **state) {
  fx_free(*state);
  return 0;
}

static inline cap_t *fx_user(fx_t *f, const char *name) {
  cap_t *c = fx_connect(f);
  fx_send(f, c, "{s:s,s:s,s:s}", "type", "register", "user", name,
          "password", "password1");
  json_t *r = cap_next(c); /* ok, or user_exists for a second session */
  json_decref(r);
  fx_send(f, c, "{s:s,s:s,s:s}", "type", "login", "user", name, "password",
          "password1");
  cap_expect_drop(c, "ok", NULL);
  return c;
}

static inline void fx_contacts(fx_t *f, cap_t *a, const char *an, cap_t *b,
                        const char *bn) {
  fx_send(f, a, "{s:s,s:s}", "type", "contact_add", "user", bn);
  cap_expect_drop(a, "ok", NULL);
  cap_expect_drop(b, "contact_request", NULL);
  fx_send(f, b, "{s:s,s:s}", "type", "contact_accept", "user", an);
  cap_expect_drop(b, "ok", NULL);
  cap_expect_drop(b, "contact_added", NULL);
  cap_expect_drop(a, "contact_added", NULL);
}

#endif /* TEST_SERVER_FIXTURE_H */
