/* fuzz_client.c -- libFuzzer target: chat-client's core (every client/ file
 * but main.c), in process, without sockets, stdin or stdout.
 *
 * The core reaches the world only through a chat_client_env_t (client.h):
 * here it is a fake whose server connection and peer links record what the
 * client sends, whose clock moves only when the input says so, and whose
 * closes are reported back later ("settled"), as a real loop would. The
 * client is "alice"; libsodium's random bytes are a counter, so the msg_ids
 * of typed messages are predictable.
 *
 * Input: byte 0 is flags: bit 0 --no-p2p, bit 1 --register, bit 2 log in
 * first (welcome, login ok, contacts bob online / carol offline / dave away),
 * bit 3 settle only on 'z' (else after every line), bit 4 every dial fails,
 * bit 5 --json, bit 6 the TLS handshake of every dialed link fails. Every
 * link proves the key FUZZ_KEY (PROTOCOL.md 7): expects and connect replies
 * that vouch for it let links through, others must not. Then lines; the
 * first byte says what to do:
 *   'S' + frame   a frame from the server
 *   'P' + K + frame  a frame from link K ('0'..'9', 'a'..'z': the K-th link
 *                 made, by 'A' or by the client dialing; a dialed link
 *                 reads nothing before its handshake is reported)
 *   'A'           a peer dials us (a new inbound link)
 *   'X' + K       link K goes away (the peer closed it)
 *   'D'           the server connection drops;  'N' it comes back
 *   'L'           the login exchange of bit 2, now
 *   'T' + text    the user types text (a command or a message)
 *   't' + digits  the clock moves that many ms (at most 10 min), timers run
 *   'W'           the clock moves to the next deadline, timers run
 *   'z'           settle: report closes, resume paused links, report the
 *                 handshakes of dialed links
 * In frames, "$D" (D a digit) becomes the id of the D-th most recent request
 * the client sent to the server, and "#D" the msg_id of the D-th most recent
 * message typed, so replies and acks can match.
 *
 * Aborts when: a message typed gets two outcomes (sent / error with its
 * msg_id), or none while the outbox no longer holds it, or an outcome names
 * a msg_id never typed; a message is shown twice for one (from, msg_id); a
 * peer_welcome goes out for a hello without a matching, unused, unexpired
 * expect for alice, or twice on a link, or does not go out when the expect
 * a waiting hello waited for arrives (and vouches for FUZZ_KEY); a
 * peer_hello goes out before the link's handshake, or without a connect
 * reply that vouched for FUZZ_KEY; a frame the client sends is not
 * valid for its receiver (chat_msg_decode as SERVER / PEER), is sent on a
 * link that is gone, to a server that is not connected, or is a msg / ack
 * on a link that is not open; the outbox, ticket waiters or half-open links
 * go past their limits; anything leaks (LeakSanitizer) or the loop does not
 * close.
 */
#include "chat_log.h"
#include "chat_protocol.h"
#include "client.h"
#include "fuzz_common.h"

#include <errno.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SELF "alice"
#define MAX_LINKS 36
#define MAX_REQ 10
#define MAX_TYPED 2048
#define MAX_SHOWN 2048
#define MAX_EXPECTS 256
#define QMAX 8
#define MAX_STEP_MS 600000
#define FUZZ_KEY                                                             \
  "f00d0123456789abcdef0123456789abcdef0123456789abcdef0123456789ab"

enum { L_FREE = 0, L_OPEN, L_CLOSING, L_GONE };

struct link {
  int state;
  int inbound, paused;
  chat_peer_t *p;           /* NULL for an inbound link refused at once */
  unsigned frames_in;       /* parsed frames handed to the core */
  int hello_ok;             /* its first frame was a peer_hello, proto 1 */
  char from[CHAT_MAX_NAME + 1], to[CHAT_MAX_NAME + 1];
  char ticket[CHAT_TICKET_LEN + 1];
  int welcomed;             /* inbound: we said peer_welcome */
  int welcome_fed;          /* dialed: the peer said peer_welcome */
  int hello_sent;           /* dialed: we said peer_hello */
  int handshaken;           /* dialed: its handshake was reported */
  json_t *queue[QMAX];      /* frames read while paused */
  unsigned nq;
};

struct typed {
  char msg_id[33];
  int decided;              /* the command that made it has returned */
  int accepted;             /* the outbox took it */
  int outcomes;
};

static struct {
  uv_loop_t loop;
  chat_client_t c;
  uint64_t now;
  int srv_up, srv_abort, want_reconnect;
  int settle_each, dial_fails, input_started, tls_fails;
  int vouched;              /* a connect reply vouched for FUZZ_KEY */
  char req[MAX_REQ][96];    /* ring of request ids, req[nreq % MAX_REQ] next */
  unsigned nreq;
  struct link links[MAX_LINKS];
  unsigned nlinks;
  struct typed typed[MAX_TYPED];
  unsigned ntyped;
  int typed_overflow;
  struct { char from[CHAT_MAX_NAME + 1], msg_id[CHAT_MAX_MSG_ID + 1]; }
      shown[MAX_SHOWN];
  unsigned nshown;
  struct {
    char from[CHAT_MAX_NAME + 1], ticket[CHAT_TICKET_LEN + 1];
    uint64_t at;
    int used;
    int key_ok;             /* it vouched for FUZZ_KEY */
  } expects[MAX_EXPECTS];
  unsigned nexpects;
  int expects_overflow;
  uint64_t rnd;
} w;

/* ---- libsodium's random bytes: a counter -------------------------------- */

static const char *rb_name(void) { return "fuzz-counter"; }
static uint32_t rb_random(void) { return 0x9e3779b9u; }
static void rb_stir(void) {}
static int rb_close(void) { return 0; }

/* Only chat__client_new_msg_id asks for bytes: each call is a typed
 * message's msg_id, recorded as undecided until its command returns. */
static void rb_buf(void *const buf, const size_t n) {
  unsigned char *b = buf;
  uint64_t v = ++w.rnd;
  memset(b, 0, n);
  for (size_t i = 0; i < 8 && i < n; i++)
    b[n - 1 - i] = (unsigned char)(v >> (8 * i));
  if (n != 16)
    return;
  if (w.ntyped == MAX_TYPED) {
    w.typed_overflow = 1;
    return;
  }
  struct typed *t = &w.typed[w.ntyped++];
  memset(t, 0, sizeof(*t));
  sodium_bin2hex(t->msg_id, sizeof(t->msg_id), b, n);
}

static randombytes_implementation rb_impl = {rb_name, rb_random, rb_stir,
                                             NULL,    rb_buf,    rb_close};

/* ---- bookkeeping ----------------------------------------------------- */

static struct typed *typed_find(const char *msg_id) {
  for (unsigned i = 0; i < w.ntyped; i++)
    if (strcmp(w.typed[i].msg_id, msg_id) == 0)
      return &w.typed[i];
  return NULL;
}

/* The d-th most recent accepted message's msg_id, or NULL. */
static const char *typed_recent(unsigned d) {
  for (unsigned i = w.ntyped; i-- > 0;)
    if (w.typed[i].accepted && d-- == 0)
      return w.typed[i].msg_id;
  return NULL;
}

static void note_request(const json_t *obj) {
  const char *id = json_string_value(json_object_get(obj, "id"));
  if (id)
    snprintf(w.req[w.nreq++ % MAX_REQ], sizeof(w.req[0]), "%s", id);
}

static const char *req_recent(unsigned d) {
  if (d >= MAX_REQ || d >= w.nreq)
    return NULL;
  return w.req[(w.nreq - 1 - d) % MAX_REQ];
}

/* obj as the receiver would see it: one line, parsed, decoded as role. */
static void check_frame(const json_t *obj, chat_role_t role, chat_msg_t *m,
                        json_t **back) {
  char *line;
  size_t n;
  chat_error_t err;

  FUZZ_CHECK(chat_frame_encode(obj, &line, &n) == 0);
  FUZZ_CHECK(n > 0 && line[n - 1] == '\n' && !memchr(line, '\n', n - 1));
  FUZZ_CHECK(chat_frame_parse(line, n - 1, back, &err) == 0);
  if (getenv("FUZZ_DEBUG"))
    fprintf(stderr, "   -> %s %.*s\n", role == CHAT_ROLE_SERVER ? "S" : "P",
            (int)n - 1, line);
  free(line);
  if (chat_msg_decode(*back, role, m, &err) != 0) {
    fprintf(stderr, "client sent a frame its receiver refuses: %s\n",
            err.message);
    FUZZ_CHECK(0);
  }
}

/* ---- the env --------------------------------------------------------- */

static uint64_t env_now(void *ctx) { return w.now; }

static int env_server_send(void *ctx, const json_t *obj) {
  chat_msg_t m;
  json_t *back;

  FUZZ_CHECK(w.srv_up);
  if (w.srv_abort)
    return -EPIPE;
  check_frame(obj, CHAT_ROLE_SERVER, &m, &back);
  if (m.type == CHAT_T_SEND || m.type == CHAT_T_GROUP_SEND)
    FUZZ_CHECK(typed_find(m.msg_id) != NULL);
  note_request(obj);
  json_decref(back);
  return 0;
}

static void env_server_abort(void *ctx) {
  FUZZ_CHECK(w.srv_up);
  w.srv_abort = 1;
}

static int env_peer_dial(void *ctx, chat_peer_t *p, const char *host,
                         int port, int flags, void **link) {
  struct link *l;
  if (w.dial_fails || w.nlinks == MAX_LINKS)
    return -ENOMEM;
  l = &w.links[w.nlinks++];
  memset(l, 0, sizeof(*l));
  l->state = L_OPEN;
  l->p = p;
  *link = l;
  return 0;
}

/* An expect that makes this hello acceptable now; used up by it. */
static int expect_consume(const struct link *l) {
  for (unsigned i = 0; i < w.nexpects; i++) {
    if (w.expects[i].used || !w.expects[i].key_ok ||
        strcmp(w.expects[i].ticket, l->ticket) != 0 ||
        strcmp(w.expects[i].from, l->from) != 0 ||
        w.now >= w.expects[i].at + CHAT_TICKET_TTL_MS)
      continue;
    w.expects[i].used = 1;
    return 1;
  }
  return w.expects_overflow;
}

static int env_peer_send(void *ctx, void *link, const json_t *obj) {
  struct link *l = link;
  chat_msg_t m;
  json_t *back;

  FUZZ_CHECK(l->state == L_OPEN || l->state == L_CLOSING);
  if (l->state == L_CLOSING)
    return -EPIPE;
  check_frame(obj, CHAT_ROLE_PEER, &m, &back);
  switch (m.type) {
  case CHAT_T_PEER_HELLO:
    FUZZ_CHECK(!l->inbound && !l->hello_sent && l->frames_in == 0);
    FUZZ_CHECK(l->handshaken && !w.tls_fails && w.vouched);
    FUZZ_CHECK(strcmp(m.from, SELF) == 0);
    l->hello_sent = 1;
    break;
  case CHAT_T_PEER_WELCOME:
    FUZZ_CHECK(l->inbound && l->hello_ok && !l->welcomed);
    FUZZ_CHECK(strcmp(m.user, SELF) == 0 && strcmp(l->to, SELF) == 0);
    FUZZ_CHECK(expect_consume(l));
    l->welcomed = 1;
    break;
  case CHAT_T_MSG:
    FUZZ_CHECK(typed_find(m.msg_id) != NULL);
    /* fall through */
  case CHAT_T_ACK:
  case CHAT_T_PONG:
    FUZZ_CHECK(l->inbound ? l->welcomed : l->welcome_fed);
    break;
  default:
    break;
  }
  json_decref(back);
  return 0;
}

static int env_peer_key(void *ctx, void *link, char hex[CHAT_KEY_LEN + 1]) {
  struct link *l = link;
  if (!l->inbound && !l->handshaken)
    return -ENOENT;
  snprintf(hex, CHAT_KEY_LEN + 1, "%s", FUZZ_KEY);
  return 0;
}

static void env_peer_close(void *ctx, void *link, int graceful) {
  struct link *l = link;
  FUZZ_CHECK(l->state == L_OPEN || l->state == L_CLOSING);
  l->state = L_CLOSING;
}

static void env_peer_pause(void *ctx, void *link) {
  struct link *l = link;
  FUZZ_CHECK(l->state == L_OPEN || l->state == L_CLOSING);
  l->paused = 1;
}

static void env_peer_resume(void *ctx, void *link) {
  struct link *l = link;
  FUZZ_CHECK(l->state == L_OPEN || l->state == L_CLOSING);
  l->paused = 0;
}

static void env_event(void *ctx, const json_t *ev) {
  const char *kind = json_string_value(json_object_get(ev, "event"));
  const char *msg_id = json_string_value(json_object_get(ev, "msg_id"));

  FUZZ_CHECK(kind != NULL);
  if (getenv("FUZZ_DEBUG")) {
    char *t = json_dumps(ev, JSON_COMPACT);
    fprintf(stderr, "   ev %s\n", t);
    free(t);
  }
  if (msg_id && (strcmp(kind, "sent") == 0 || strcmp(kind, "error") == 0)) {
    struct typed *t = typed_find(msg_id);
    FUZZ_CHECK(t != NULL || w.typed_overflow);
    if (t) {
      FUZZ_CHECK(!t->decided || t->accepted);
      FUZZ_CHECK(++t->outcomes == 1);
    }
  } else if (strcmp(kind, "message") == 0) {
    const char *from = json_string_value(json_object_get(ev, "from"));
    FUZZ_CHECK(from != NULL && msg_id != NULL);
    for (unsigned i = 0; i < w.nshown; i++)
      FUZZ_CHECK(strcmp(w.shown[i].from, from) != 0 ||
                 strcmp(w.shown[i].msg_id, msg_id) != 0);
    /* Past the dedup's memory a repeat may legitimately show again. */
    if (w.nshown < MAX_SHOWN && w.nshown < CHAT_DEDUP_DEFAULT) {
      snprintf(w.shown[w.nshown].from, sizeof(w.shown[0].from), "%s", from);
      snprintf(w.shown[w.nshown].msg_id, sizeof(w.shown[0].msg_id), "%s",
               msg_id);
      w.nshown++;
    }
  }
}

static int env_input_start(void *ctx) {
  FUZZ_CHECK(!w.input_started);
  w.input_started = 1;
  return 0;
}

static const chat_client_env_t env = {
    env_now,        env_server_send, env_server_abort, env_peer_dial,
    env_peer_send,  env_peer_close,  env_peer_pause,   env_peer_resume,
    env_event,      env_input_start, NULL,             NULL,
    NULL,           env_peer_key};

/* ---- driving --------------------------------------------------------- */

static void check_bounds(void) {
  chat_client_t *c = &w.c;
  size_t open_typed = 0;

  FUZZ_CHECK(chat_outbox_pending(c->ob) <= CHAT_OB_MAX_MESSAGES);
  FUZZ_CHECK(c->n_inbound >= 0 && c->n_inbound <= CHAT_CLIENT_MAX_INBOUND);
  if (c->tickets)
    FUZZ_CHECK(chat_tickets_waiting(c->tickets) <= CHAT_TICKET_WAITERS_MAX);
  if (w.typed_overflow)
    return;
  /* Every message typed is pending until its one outcome (a relayed one
   * may stay after it, kept for its receipt). */
  for (unsigned i = 0; i < w.ntyped; i++) {
    struct typed *t = &w.typed[i];
    if (!t->accepted)
      continue;
    FUZZ_CHECK(t->outcomes <= 1);
    if (t->outcomes == 0)
      FUZZ_CHECK(chat_outbox_has(c->ob, t->msg_id));
    open_typed += t->outcomes == 0;
  }
  FUZZ_CHECK(chat_outbox_pending(c->ob) == open_typed);
}

static void link_drop_queue(struct link *l) {
  for (unsigned i = 0; i < l->nq; i++)
    json_decref(l->queue[i]);
  l->nq = 0;
}

/* One parsed frame read on l (obj borrowed). */
static void link_read(struct link *l, json_t *obj) {
  chat_msg_t m;
  int ok = chat_msg_decode(obj, CHAT_ROLE_PEER, &m, NULL) == 0;

  if (l->state != L_OPEN || !l->p)
    return; /* a closing connection reads no more */
  if (!l->inbound && !l->handshaken)
    return; /* TLS hands out nothing before its handshake is over */
  if (l->paused) {
    if (l->nq < QMAX)
      l->queue[l->nq++] = json_incref(obj);
    return;
  }
  if (l->inbound && l->frames_in == 0 && ok &&
      m.type == CHAT_T_PEER_HELLO && m.proto == CHAT_PROTO_VERSION) {
    l->hello_ok = 1;
    snprintf(l->from, sizeof(l->from), "%s", m.from);
    snprintf(l->to, sizeof(l->to), "%s", m.to);
    snprintf(l->ticket, sizeof(l->ticket), "%s", m.ticket);
  }
  /* A dialed link opens on the peer_welcome of the peer it dialed (and the
   * core may send on it before on_frame returns). */
  if (!l->inbound && ok && m.type == CHAT_T_PEER_WELCOME &&
      strcmp(m.user, chat__peer_name(l->p)) == 0)
    l->welcome_fed = 1;
  l->frames_in++;
  chat__peer_on_frame(l->p, obj);
}

/* Reports the closes the core asked for and hands paused links their
 * frames, as the next turns of a real loop would. */
static void settle(void) {
  for (int progress = 1; progress;) {
    progress = 0;
    if (w.srv_up && w.srv_abort) {
      w.srv_up = w.srv_abort = 0;
      w.want_reconnect = chat__session_closed(&w.c, 0);
      progress = 1;
    }
    for (unsigned i = 0; i < w.nlinks; i++) {
      struct link *l = &w.links[i];
      if (l->state == L_CLOSING) {
        l->state = L_GONE;
        link_drop_queue(l);
        chat__peer_closed(l->p);
        progress = 1;
      } else if (l->state == L_OPEN && !l->inbound && !l->handshaken) {
        /* The dial connected and the handshake is over (or failed: then
         * the transport closes the link). */
        l->handshaken = 1;
        if (w.tls_fails)
          l->state = L_CLOSING;
        chat__peer_dialed(l->p, w.tls_fails ? UV_EPROTO : 0);
        progress = 1;
      } else if (l->state == L_OPEN && !l->paused && l->nq > 0) {
        json_t *obj = l->queue[0];
        memmove(l->queue, l->queue + 1, --l->nq * sizeof(json_t *));
        link_read(l, obj);
        json_decref(obj);
        progress = 1;
      }
    }
  }
}

/* A frame read from the server (obj borrowed); records the expects that
 * reach the core. */
/* A hello from expect's sender for its ticket waits on some link (the core
 * paused it). Its ticket was unknown when it came, or the hello would have
 * been decided then, so this expect must decide it. */
static int hello_waits(const chat_msg_t *e) {
  for (unsigned i = 0; i < w.nlinks; i++) {
    const struct link *l = &w.links[i];
    if (l->inbound && l->state == L_OPEN && l->paused && l->hello_ok &&
        !l->welcomed && strcmp(l->ticket, e->ticket) == 0 &&
        strcmp(l->from, e->from) == 0 && strcmp(l->to, SELF) == 0)
      return 1;
  }
  return 0;
}

/* ... and after it, one of them is welcomed. */
static int hello_decided(const chat_msg_t *e) {
  for (unsigned i = 0; i < w.nlinks; i++) {
    const struct link *l = &w.links[i];
    if (l->inbound && l->welcomed && strcmp(l->ticket, e->ticket) == 0 &&
        strcmp(l->from, e->from) == 0)
      return 1;
  }
  return 0;
}

static void server_read(json_t *obj) {
  chat_client_t *c = &w.c;
  chat_msg_t m;
  int waiting = 0;

  if (!w.srv_up || w.srv_abort)
    return;
  if (chat_msg_decode(obj, CHAT_ROLE_CLIENT, &m, NULL) == 0 &&
      m.type == CHAT_T_OK && m.ticket && m.key && !strcmp(m.key, FUZZ_KEY))
    w.vouched = 1;
  if (chat_msg_decode(obj, CHAT_ROLE_CLIENT, &m, NULL) == 0 &&
      m.type == CHAT_T_EXPECT && !c->stopping &&
      (c->net == CHAT_NET_CONTACTS || c->net == CHAT_NET_READY)) {
    waiting = m.key && strcmp(m.key, FUZZ_KEY) == 0 && hello_waits(&m);
    if (w.nexpects == MAX_EXPECTS) {
      w.expects_overflow = 1;
    } else {
      snprintf(w.expects[w.nexpects].from, sizeof(w.expects[0].from), "%s",
               m.from);
      snprintf(w.expects[w.nexpects].ticket, sizeof(w.expects[0].ticket),
               "%s", m.ticket);
      w.expects[w.nexpects].at = w.now;
      w.expects[w.nexpects].used = 0;
      w.expects[w.nexpects].key_ok = m.key && strcmp(m.key, FUZZ_KEY) == 0;
      w.nexpects++;
    }
  }
  chat__session_on_frame(c, obj);
  if (waiting)
    FUZZ_CHECK(hello_decided(&m));
}

static void server_line(const char *line, size_t len) {
  json_t *obj;
  if (chat_frame_parse(line, len, &obj, NULL) != 0)
    return; /* net.c only logs a bad line */
  server_read(obj);
  json_decref(obj);
}

static void login_exchange(void) {
  chat_client_t *c = &w.c;
  static const char welcome[] =
      "{\"type\":\"welcome\",\"proto\":1,\"server\":\"fuzz\",\"heartbeat\":30,"
      "\"max_frame\":65536}";
  static const char reg_ok[] = "{\"type\":\"ok\",\"id\":\"register\"}";
  static const char login_ok[] =
      "{\"type\":\"ok\",\"id\":\"login\",\"user\":\"alice\",\"host\":"
      "\"127.0.0.1\"}";
  static const char contacts_ok[] =
      "{\"type\":\"ok\",\"id\":\"login-contacts\",\"contacts\":["
      "{\"user\":\"bob\",\"status\":\"online\"},"
      "{\"user\":\"carol\",\"status\":\"offline\"},"
      "{\"user\":\"dave\",\"status\":\"away\"}]}";

  if (c->net == CHAT_NET_WELCOME)
    server_line(welcome, sizeof(welcome) - 1);
  if (c->net == CHAT_NET_REGISTER)
    server_line(reg_ok, sizeof(reg_ok) - 1);
  if (c->net == CHAT_NET_LOGIN)
    server_line(login_ok, sizeof(login_ok) - 1);
  if (c->net == CHAT_NET_CONTACTS)
    server_line(contacts_ok, sizeof(contacts_ok) - 1);
}

/* Copies line into out, replacing $D and #D (see the top). */
static size_t expand(const char *line, size_t len, char *out, size_t cap) {
  size_t o = 0;
  for (size_t i = 0; i < len && o + 1 < cap; i++) {
    const char *sub = NULL;
    if ((line[i] == '$' || line[i] == '#') && i + 1 < len &&
        line[i + 1] >= '0' && line[i + 1] <= '9') {
      unsigned d = (unsigned)(line[i + 1] - '0');
      sub = line[i] == '$' ? req_recent(d) : typed_recent(d);
    }
    if (sub) {
      size_t n = strlen(sub);
      if (o + n + 1 > cap)
        break;
      memcpy(out + o, sub, n);
      o += n;
      i++;
    } else {
      out[o++] = line[i];
    }
  }
  out[o] = '\0';
  return o;
}

static struct link *link_at(char k) {
  unsigned i;
  if (k >= '0' && k <= '9')
    i = (unsigned)(k - '0');
  else if (k >= 'a' && k <= 'z')
    i = 10 + (unsigned)(k - 'a');
  else
    return NULL;
  return i < w.nlinks ? &w.links[i] : NULL;
}

static void peer_line(struct link *l, const char *line, size_t len) {
  json_t *obj;
  chat_error_t err;
  int r;

  if (!l || l->state != L_OPEN || !l->p || (!l->inbound && !l->handshaken))
    return;
  r = chat_frame_parse(line, len, &obj, &err);
  if (r == 1)
    return;
  if (r < 0) {
    if (!l->paused)
      chat__peer_on_bad_frame(l->p, &err);
    return;
  }
  link_read(l, obj);
  json_decref(obj);
}

static void typed_line(const char *text, size_t len) {
  chat_client_t *c = &w.c;
  char *line;
  unsigned first = w.ntyped;

  /* Input runs once logged in, until the end of input or the stop. */
  if (!w.input_started || c->stopping || c->input_done)
    return;
  line = strndup(text, len);
  FUZZ_CHECK(line != NULL);
  chat__cmd_run(c, line);
  free(line);
  for (unsigned i = first; i < w.ntyped; i++) {
    struct typed *t = &w.typed[i];
    t->decided = 1;
    t->accepted = t->outcomes > 0 || chat_outbox_has(c->ob, t->msg_id);
  }
}

static void advance(uint64_t ms) {
  if (w.c.finished)
    return; /* the timers are gone */
  w.now += ms;
  chat__client_tick(&w.c);
}

static void next_deadline(void) {
  chat_client_t *c = &w.c;
  int64_t d = chat_outbox_next_deadline(c->ob), t;
  if (c->tickets && (t = chat_tickets_next_deadline(c->tickets)) >= 0 &&
      (d < 0 || t < d))
    d = t;
  if (d < 0 || (uint64_t)d <= w.now)
    advance(0);
  else
    advance((uint64_t)d - w.now);
}

static void one_line(const char *line, size_t len) {
  chat_client_t *c = &w.c;
  char buf[8192];
  size_t n;
  struct link *l;

  if (len == 0)
    return;
  if (getenv("FUZZ_DEBUG"))
    fprintf(stderr, "<- %.*s\n", (int)len, line);
  switch (line[0]) {
  case 'S':
    n = expand(line + 1, len - 1, buf, sizeof(buf));
    server_line(buf, n);
    break;
  case 'P':
    if (len < 2)
      return;
    n = expand(line + 2, len - 2, buf, sizeof(buf));
    peer_line(link_at(line[1]), buf, n);
    break;
  case 'A':
    if (w.nlinks == MAX_LINKS)
      return;
    l = &w.links[w.nlinks++];
    memset(l, 0, sizeof(*l));
    l->state = L_OPEN;
    l->inbound = 1;
    if (!(l->p = chat__peer_accepted(c, l)))
      l->state = L_GONE; /* cut at once, never reported */
    break;
  case 'X':
    if (len < 2 || !(l = link_at(line[1])))
      return;
    if (l->state == L_OPEN || l->state == L_CLOSING) {
      l->state = L_GONE;
      link_drop_queue(l);
      if (l->p)
        chat__peer_closed(l->p);
    }
    break;
  case 'D':
    if (w.srv_up) {
      w.srv_up = w.srv_abort = 0;
      w.want_reconnect = chat__session_closed(c, UV_EOF);
    }
    break;
  case 'N':
    if (!w.srv_up && w.want_reconnect && !c->stopping) {
      w.srv_up = 1;
      w.want_reconnect = 0;
      chat__session_connected(c);
    }
    break;
  case 'L':
    if (w.srv_up && !w.srv_abort)
      login_exchange();
    break;
  case 'T':
    typed_line(line + 1, len - 1);
    break;
  case 't': {
    uint64_t ms = 0;
    for (size_t i = 1; i < len && i < 8 && line[i] >= '0' && line[i] <= '9';
         i++)
      ms = ms * 10 + (uint64_t)(line[i] - '0');
    advance(ms > MAX_STEP_MS ? MAX_STEP_MS : ms);
    break;
  }
  case 'W':
    next_deadline();
    break;
  case 'z':
    settle();
    break;
  default:
    break;
  }
}

/* Stops the client the way the real one ends: log out, the server closes,
 * every link closes, the timers close. */
static void teardown(void) {
  chat_client_t *c = &w.c;

  chat__client_stop(c, 0);
  settle();
  if (w.srv_up) { /* logout sent: the server closes */
    w.srv_up = w.srv_abort = 0;
    chat__session_closed(c, UV_EOF);
  }
  settle();
  FUZZ_CHECK(c->finished);
  for (unsigned i = 0; i < w.nlinks; i++)
    FUZZ_CHECK(w.links[i].state == L_GONE);
  FUZZ_CHECK(c->peers == NULL && c->n_inbound == 0);
  uv_run(&w.loop, UV_RUN_DEFAULT);
  chat_client_free(c);
  FUZZ_CHECK(uv_loop_close(&w.loop) == 0);
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  randombytes_set_implementation(&rb_impl);
  if (sodium_init() < 0)
    abort();
  chat_log_set_level(getenv("FUZZ_DEBUG") ? CHAT_LOG_DEBUG : CHAT_LOG_ERROR);
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const uint8_t *p = data, *end = data + size;
  uint8_t flags = chat__fuzz_byte(&p, end);
  chat_client_opts_t opts;

  memset(&w, 0, sizeof(w));
  w.now = 1000000;
  w.settle_each = !(flags & 8);
  w.dial_fails = (flags & 16) != 0;
  w.tls_fails = (flags & 64) != 0;
  memset(&opts, 0, sizeof(opts));
  FUZZ_CHECK(chat_servers_parse(&opts.servers, "127.0.0.1:7700", NULL, 0) ==
             0);
  snprintf(opts.user, sizeof(opts.user), SELF);
  snprintf(opts.password, sizeof(opts.password), "alicepass1");
  opts.no_p2p = flags & 1;
  opts.do_register = (flags & 2) != 0;
  opts.json = (flags & 32) != 0;

  FUZZ_CHECK(uv_loop_init(&w.loop) == 0);
  FUZZ_CHECK(chat_client_init_core(&w.c, &w.loop, &opts, &env, NULL) == 0);
  w.c.p2p_port = opts.no_p2p ? 0 : 4000; /* what the listener would bind */
  w.srv_up = 1;                          /* as if the first connect worked */
  chat__session_connected(&w.c);
  if (flags & 4)
    login_exchange();

  while (p < end) {
    const uint8_t *lf = memchr(p, '\n', (size_t)(end - p));
    size_t n = lf ? (size_t)(lf - p) : (size_t)(end - p);
    one_line((const char *)p, n);
    if (w.settle_each)
      settle();
    check_bounds();
    p += n + (lf != NULL);
  }
  settle();
  check_bounds();
  teardown();
  return 0;
}
