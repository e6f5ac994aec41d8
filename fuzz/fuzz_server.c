/* fuzz_server.c -- libFuzzer target: the server's request handling, in
 * process, without sockets.
 *
 * The server core talks to connections only through chat__sink_t (srv.h), so
 * this target gives it four fake sessions whose sinks capture what it sends,
 * with the real registry, mailbox, committer, SQLite (":memory:") and
 * argon2id (libsodium's minimum cost) underneath.
 *
 * Input: byte 0 sets max_output (bit 0: 4 KiB instead of 1 MiB) and whether
 * the loop runs after every line (bit 1 clear) or only when a line asks
 * (so frames can arrive while a login is still hashing). Then lines; the
 * first byte of each says what to do, the rest is the frame:
 *   '0'..'3'  the rest of the line is a frame read by session 0..3
 *   'e'+N     session N's connection goes away ('e0'..'e3')
 *   'n'+N     session N gets a new connection if it has none
 *   's'       the heartbeat sweep runs as if 3 x heartbeat had passed
 *   'r'       run the loop until it is idle
 * A session that the server paused (a login waiting for its hash) gets its
 * frames queued, as a real connection would, until resumed.
 *
 * Aborts when: a frame the server sends is not one line that a client
 * accepts (chat_msg_decode as CLIENT); a deliver names a sender/msg_id pair
 * that no logged-in session sent; a request with an id on a session that
 * stayed open got no reply with that id, or more than one; anything leaks
 * (LeakSanitizer) or the loop does not close.
 */
#include "chat_log.h"
#include "chat_protocol.h"
#include "engine.h"
#include "fuzz_common.h"
#include "srv.h"
#include "store.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NSESS 4
#define QMAX 16
#define SENT_MAX 256

struct fake {
  chat__session_t *s;  /* NULL when there is no connection */
  int closed, paused;
  size_t out_bytes, max_output;
  json_t *queue[QMAX];
  unsigned nqueue;
  char user[CHAT_MAX_NAME + 1]; /* from the login ok */
  long asked, answered;         /* requests with an id, replies with one */
};

static struct {
  uv_loop_t loop;
  chat__srv_t srv;
  struct fake f[NSESS];
  struct { char from[CHAT_MAX_NAME + 1], msg_id[CHAT_MAX_MSG_ID + 1]; }
      sent[SENT_MAX];
  unsigned nsent;
  int sent_overflow;
} w;

static void note_sent(const char *from, const char *msg_id) {
  if (w.nsent == SENT_MAX) {
    w.sent_overflow = 1;
    return;
  }
  snprintf(w.sent[w.nsent].from, sizeof(w.sent[0].from), "%s", from);
  snprintf(w.sent[w.nsent].msg_id, sizeof(w.sent[0].msg_id), "%s", msg_id);
  w.nsent++;
}

static int was_sent(const char *from, const char *msg_id) {
  for (unsigned i = 0; i < w.nsent; i++)
    if (strcmp(w.sent[i].from, from) == 0 &&
        strcmp(w.sent[i].msg_id, msg_id) == 0)
      return 1;
  return w.sent_overflow;
}

/* ---- The capturing sink ---------------------------------------------------
 */

static int sink_send(void *ctx, const json_t *obj) {
  struct fake *f = ctx;
  char *line;
  size_t n;
  json_t *back;
  chat_msg_t m;
  chat_error_t err;

  if (f->closed)
    return -EPIPE;
  FUZZ_CHECK(chat_frame_encode(obj, &line, &n) == 0);
  FUZZ_CHECK(memchr(line, '\n', n - 1) == NULL && line[n - 1] == '\n');
  FUZZ_CHECK(chat_frame_parse(line, n - 1, &back, &err) == 0);
  free(line);
  if (chat_msg_decode(back, CHAT_ROLE_CLIENT, &m, &err) != 0) {
    fprintf(stderr, "server sent a frame no client accepts: %s\n",
            err.message);
    FUZZ_CHECK(0);
  }
  if (m.id != NULL && (m.type == CHAT_T_OK || m.type == CHAT_T_ERROR ||
                       m.type == CHAT_T_PONG))
    f->answered++;
  if (getenv("FUZZ_DEBUG")) {
    char *t = json_dumps(obj, JSON_COMPACT);
    fprintf(stderr, "-> %d %s\n", (int)(f - w.f), t);
    free(t);
  }
  if (m.type == CHAT_T_OK && m.user != NULL && m.host != NULL)
    snprintf(f->user, sizeof(f->user), "%s", m.user); /* login ok */
  if (m.type == CHAT_T_DELIVER)
    FUZZ_CHECK(was_sent(m.from, m.msg_id));
  json_decref(back);
  /* Like chat_conn: over max_output the session ends (net.c on_overflow). */
  f->out_bytes += n;
  if (f->out_bytes > f->max_output) {
    f->closed = 1;
    chat__srv_session_end(&w.srv, f->s, "output over the cap");
    return -ENOBUFS;
  }
  return 0;
}

static int sink_send_line(void *ctx, const char *line, size_t len) {
  json_t *obj;
  int r;

  FUZZ_CHECK(len > 0 && line[len - 1] == '\n');
  FUZZ_CHECK(chat_frame_parse(line, len - 1, &obj, NULL) == 0);
  r = sink_send(ctx, obj);
  json_decref(obj);
  return r;
}

static void sink_close(void *ctx) {
  struct fake *f = ctx;
  f->closed = 1;
}

static void sink_pause(void *ctx) {
  struct fake *f = ctx;
  f->paused = 1;
}

static void sink_resume(void *ctx) {
  struct fake *f = ctx;
  f->paused = 0;
}

static void sink_release(void *ctx) {
  (void)ctx; /* struct fake is static */
}

static const chat__sink_t sink = {sink_send,  sink_send_line, sink_close,
                                  sink_pause, sink_resume,    sink_release,
                                  NULL};

/* ---- Sessions
 * ---------------------------------------------------------------- */

static void drop_queue(struct fake *f) {
  for (unsigned i = 0; i < f->nqueue; i++)
    json_decref(f->queue[i]);
  f->nqueue = 0;
}

/* The connection goes away: what net.c's on_close does. */
static void disconnect(struct fake *f) {
  if (f->s == NULL)
    return;
  chat__srv_session_end(&w.srv, f->s, "closed");
  chat__session_unref(f->s);
  f->s = NULL;
  drop_queue(f);
}

static void connect_fake(struct fake *f, size_t max_output) {
  if (f->s != NULL)
    return;
  memset(f, 0, sizeof(*f));
  f->max_output = max_output;
  f->s = chat__srv_session_new(&w.srv, &sink, f, "127.0.0.1");
  FUZZ_CHECK(f->s != NULL);
}

/* One frame read from f's connection. */
static void read_frame(struct fake *f, json_t *obj) {
  chat_msg_t m;
  int r = chat_msg_decode(obj, CHAT_ROLE_SERVER, &m, NULL);

  if (f->closed || f->s == NULL)
    return;
  /* Every request with a valid id is answered once, except a well-formed
   * ack of a logged-in session and a well-formed pong in any state (no
   * reply, PROTOCOL.md section 2). */
  if (m.id != NULL && !(r == 0 && m.type == CHAT_T_ACK && f->s->user) &&
      !(r == 0 && m.type == CHAT_T_PONG))
    f->asked++;
  if (getenv("FUZZ_DEBUG")) {
    char *t = json_dumps(obj, JSON_COMPACT);
    fprintf(stderr, "<- %d %s\n", (int)(f - w.f), t);
    free(t);
  }
  if (r == 0 && f->user[0] != '\0' &&
      (m.type == CHAT_T_SEND || m.type == CHAT_T_GROUP_SEND))
    note_sent(f->user, m.msg_id);
  chat__srv_on_frame(&w.srv, f->s, obj);
}

/* Frames a paused session held back go in once it is resumed; a connection
 * the server closed goes away (as net.c's on_close does). */
static void deliver_queued(void) {
  for (int progress = 1; progress;) {
    progress = 0;
    for (int i = 0; i < NSESS; i++) {
      struct fake *f = &w.f[i];
      if (f->s != NULL && f->closed) {
        disconnect(f);
        continue;
      }
      while (f->s != NULL && !f->paused && f->nqueue > 0) {
        json_t *obj = f->queue[0];
        memmove(f->queue, f->queue + 1, --f->nqueue * sizeof(json_t *));
        read_frame(f, obj);
        json_decref(obj);
        progress = 1;
      }
    }
  }
}

static void run_loop(void) {
  do {
    uv_run(&w.loop, UV_RUN_DEFAULT);
    deliver_queued();
  } while (uv_loop_alive(&w.loop));
}

static void one_line(const char *line, size_t len, size_t max_output) {
  struct fake *f;
  json_t *obj;
  chat_error_t err;
  int r;

  if (len == 0)
    return;
  switch (line[0]) {
  case 'e':
  case 'n':
    if (len < 2 || line[1] < '0' || line[1] > '3')
      return;
    f = &w.f[line[1] - '0'];
    if (line[0] == 'e')
      disconnect(f);
    else
      connect_fake(f, max_output);
    return;
  case 's':
    chat__srv_sweep(&w.srv, uv_now(&w.loop) +
                               (uint64_t)w.srv.cfg.heartbeat * 3000);
    return;
  case 'r':
    run_loop();
    return;
  default:
    break;
  }
  if (line[0] < '0' || line[0] > '3')
    return;
  f = &w.f[line[0] - '0'];
  if (f->s == NULL || f->closed)
    return;
  r = chat_frame_parse(line + 1, len - 1, &obj, &err);
  if (r == 1)
    return;
  if (r < 0) {
    if (!f->paused)
      chat__srv_on_bad_frame(&w.srv, f->s, &err);
    return;
  }
  if (f->paused) {
    if (f->nqueue < QMAX)
      f->queue[f->nqueue++] = obj;
    else
      json_decref(obj);
    return;
  }
  read_frame(f, obj);
  json_decref(obj);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const uint8_t *p = data, *end = data + size;
  uint8_t flags = chat__fuzz_byte(&p, end);
  size_t max_output = (flags & 1) ? 4096 : CHAT_MAX_OUTPUT_DEFAULT;
  int run_each = !(flags & 2);
  chat_server_config_t cfg;
  chat__store_t *store;
  chat__engine_t *engine;
  char errbuf[128];

  chat_log_set_level(CHAT_LOG_ERROR);
  memset(&w, 0, sizeof(w));
  FUZZ_CHECK(uv_loop_init(&w.loop) == 0);
  FUZZ_CHECK(chat__store_open(":memory:", &store, errbuf, sizeof(errbuf)) == 0);
  FUZZ_CHECK(chat__engine_sqlite_new(&w.loop, store, &engine) == 0);
  chat_server_config_default(&cfg);
  cfg.hash_cost = CHAT_HASH_MIN;
  cfg.max_output = max_output;
  cfg.rate_limit = 0; /* time stands still here; see the README */
  FUZZ_CHECK(chat__srv_init(&w.srv, &w.loop, &cfg, engine) == 0);
  for (int i = 0; i < NSESS; i++)
    connect_fake(&w.f[i], max_output);

  while (p < end) {
    const uint8_t *lf = memchr(p, '\n', (size_t)(end - p));
    size_t n = lf ? (size_t)(lf - p) : (size_t)(end - p);
    one_line((const char *)p, n, max_output);
    if (run_each)
      run_loop();
    else
      deliver_queued();
    p += n + (lf != NULL);
  }
  run_loop();

  /* Every request on a session still open got exactly one reply. */
  for (int i = 0; i < NSESS; i++) {
    struct fake *f = &w.f[i];
    if (f->s != NULL && !f->closed && f->nqueue == 0)
      FUZZ_CHECK(f->asked == f->answered);
  }

  for (int i = 0; i < NSESS; i++)
    disconnect(&w.f[i]);
  chat__srv_end_all(&w.srv);
  run_loop();
  FUZZ_CHECK(chat__engine_flush_sync(engine) == 0);
  chat__engine_free(engine); /* closes the store */
  uv_run(&w.loop, UV_RUN_DEFAULT);
  chat__srv_free(&w.srv);
  FUZZ_CHECK(uv_loop_close(&w.loop) == 0);
  return 0;
}
