/* bench_peer.c -- direct mode: one shared peer listener for every receiver,
 * and one dialled link per sender, speaking PROTOCOL.md section 4 over TLS
 * with pinned keys, as chat-client does (section 7, docs/DIRECT.md): the
 * dialer checks the listener's key against the connect reply's before its
 * peer_hello, the listener the dialer's against the expect's.
 *
 * The listener honours tickets as a client must: a peer_hello is welcomed
 * only when the named receiver holds an unused expect with that from and
 * ticket; an unknown ticket waits up to 5 s for its expect (the server's
 * expect and the dialer's hello race), a used one is refused at once.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "chat_addr.h"

#define PEER_WAIT_NS (5ull * 1000000000ull)

typedef struct bench_peer {
  chat_conn_t conn;
  bench_t *b;
  int dialer;              /* 1: the sender's end */
  bench_pair_t *pair;      /* dialer: from the start; listener: once welcomed */
  int welcomed;
  int waiting;             /* a hello waits for its expect */
  uint64_t wait_until;
  bench_user_t *rcv;       /* listener: the receiver the hello named */
  char from[BENCH_NAME_MAX];
  char ticket[CHAT_TICKET_LEN + 1];
  char want_key[CHAT_TLS_KEY_HEX]; /* dialer: the listener's, vouched */
  struct bench_peer *next, *prev;
} bench_peer_t;

static void on_frame(chat_conn_t *c, json_t *obj, const char *line,
                     size_t len);
static void on_bad_frame(chat_conn_t *c, const chat_error_t *err);
static void on_overflow(chat_conn_t *c);
static void on_close(chat_conn_t *c, int status);

static const chat_conn_cbs_t peer_cbs = {on_frame, on_bad_frame, on_overflow,
                                         on_close};

static bench_peer_t *peer_new(bench_t *b) {
  bench_peer_t *p = calloc(1, sizeof(*p));
  if (!p)
    return NULL;
  chat_conn_opts_t opts = {0, 0};
  opts.max_output =
      (size_t)b->opts.window * (b->opts.size + 256) + (1u << 20);
  if (chat_conn_init(b->io, &p->conn, &peer_cbs, &opts) < 0) {
    free(p);
    return NULL;
  }
  p->conn.data = p;
  p->b = b;
  p->next = b->peers;
  if (b->peers)
    b->peers->prev = p;
  b->peers = p;
  b->live_conns++;
  if (chat_conn_tls(&p->conn, b->peer_tls, NULL) < 0) {
    chat_conn_abort(&p->conn); /* on_close unlinks and frees p */
    return NULL;
  }
  return p;
}

int bench_peer_send_line(bench_peer_t *p, const char *line, size_t len) {
  int rc = chat_conn_send_line(&p->conn, line, len);
  if (rc < 0 && !p->b->stopping) {
    bench_note_error(p->b, BENCH_E_DISCONNECTED, 1);
    bench_stop(p->b, "a peer link refused a frame");
  }
  return rc;
}

static void refuse(bench_peer_t *p, const char *why) {
  static const char line[] =
      "{\"type\":\"error\",\"code\":\"bad_ticket\",\"message\":\"unknown, "
      "used or expired ticket\"}\n";
  bench_note_error(p->b, BENCH_E_CONNECT, 1);
  chat_conn_send_line(&p->conn, line, sizeof(line) - 1);
  chat_conn_close(&p->conn);
  if (!p->b->stopping)
    bench_stop(p->b, why);
}

static void welcome(bench_peer_t *p, bench_user_t *rcv) {
  char line[96];
  int n = snprintf(line, sizeof(line),
                   "{\"type\":\"peer_welcome\",\"user\":\"%s\"}\n", rcv->name);
  p->waiting = 0;
  if (rcv->waiting == p)
    rcv->waiting = NULL;
  p->welcomed = 1;
  p->pair = rcv->pair;
  bench_peer_send_line(p, line, (size_t)n);
}

/* 1: welcomed, 0: not yet known, -1: known but used. */
static int try_ticket(bench_peer_t *p, bench_user_t *rcv) {
  for (int i = 0; i < BENCH_EXPECTS; i++) {
    bench_expect_t *e = &rcv->expects[i];
    char key[CHAT_TLS_KEY_HEX];
    if (!e->ticket[0] || strcmp(e->ticket, p->ticket) != 0 ||
        strcmp(e->from, p->from) != 0)
      continue;
    if (e->used)
      return -1;
    if (chat_conn_tls_peer_key(&p->conn, key) < 0 ||
        strcmp(key, e->key) != 0) {
      e->used = 1; /* a ticket shown with the wrong key is burnt */
      return -1;
    }
    e->used = 1;
    welcome(p, rcv);
    return 1;
  }
  return 0;
}

void bench_peer_on_expect(bench_user_t *rcv, const chat_msg_t *m) {
  if (!m->from || !m->ticket || !chat_ticket_valid(m->ticket) ||
      strlen(m->from) >= BENCH_NAME_MAX || !m->key || !chat_key_valid(m->key)) {
    bench_note_error(rcv->b, BENCH_E_BAD_FRAME, 1);
    return;
  }
  bench_expect_t *e = &rcv->expects[rcv->next_expect];
  rcv->next_expect = (rcv->next_expect + 1) % BENCH_EXPECTS;
  snprintf(e->from, sizeof(e->from), "%s", m->from);
  snprintf(e->ticket, sizeof(e->ticket), "%s", m->ticket);
  snprintf(e->key, sizeof(e->key), "%s", m->key);
  e->used = 0;
  if (rcv->waiting)
    try_ticket(rcv->waiting, rcv);
}

/* The receiver named "<prefix>r<index>", or NULL. */
static bench_user_t *find_receiver(bench_t *b, const char *name) {
  size_t pl = strlen(b->opts.prefix);
  if (strncmp(name, b->opts.prefix, pl) != 0 || name[pl] != 'r')
    return NULL;
  const char *s = name + pl + 1;
  if (*s < '0' || *s > '9')
    return NULL;
  char *end;
  long i = strtol(s, &end, 10);
  if (*end || i < 0 || i >= b->opts.pairs)
    return NULL;
  bench_user_t *u = &b->pairs[i].rcv;
  return strcmp(u->name, name) == 0 ? u : NULL;
}

static void on_hello(bench_peer_t *p, const chat_msg_t *m) {
  if (p->dialer || p->welcomed || p->waiting) {
    bench_note_error(p->b, BENCH_E_BAD_FRAME, 1);
    return;
  }
  bench_user_t *rcv = m->to ? find_receiver(p->b, m->to) : NULL;
  if (m->proto != CHAT_PROTO_VERSION || !rcv || !m->from || !m->ticket ||
      strlen(m->from) >= sizeof(p->from) ||
      strlen(m->ticket) >= sizeof(p->ticket)) {
    refuse(p, "a peer_hello named no bench receiver");
    return;
  }
  snprintf(p->from, sizeof(p->from), "%s", m->from);
  snprintf(p->ticket, sizeof(p->ticket), "%s", m->ticket);
  p->rcv = rcv;
  int r = try_ticket(p, rcv);
  if (r < 0) {
    refuse(p, "a peer_hello reused a ticket or proved another key");
  } else if (r == 0) {
    if (rcv->waiting) {
      refuse(p, "two peer_hellos wait for one receiver");
      return;
    }
    p->waiting = 1;
    p->wait_until = bench_now_ns() + PEER_WAIT_NS;
    rcv->waiting = p;
  }
}

static void on_msg(bench_peer_t *p, const chat_msg_t *m) {
  if (p->dialer || !p->welcomed || !m->msg_id ||
      !chat_msg_id_valid(m->msg_id)) {
    bench_note_error(p->b, BENCH_E_BAD_FRAME, 1);
    return;
  }
  bench_traffic_on_deliver(p->b, p->pair, m->msg_id, m->body, m->body_len, -1,
                           1);
  char line[128];
  int n = snprintf(line, sizeof(line), "{\"type\":\"ack\",\"msg_id\":\"%s\"}\n",
                   m->msg_id);
  if (!p->b->stopping)
    bench_peer_send_line(p, line, (size_t)n);
}

static void on_frame(chat_conn_t *c, json_t *obj, const char *line,
                     size_t len) {
  bench_peer_t *p = c->data;
  bench_t *b = p->b;
  chat_msg_t m;
  chat_error_t err;
  memset(&err, 0, sizeof(err));
  if (chat_msg_decode(obj, CHAT_ROLE_PEER, &m, &err) < 0) {
    bench_note_error(b, BENCH_E_BAD_FRAME, 1);
    return;
  }
  b->progress++;
  switch (m.type) {
  case CHAT_T_PEER_HELLO:
    on_hello(p, &m);
    break;
  case CHAT_T_PEER_WELCOME:
    if (!p->dialer || p->welcomed || !m.user ||
        strcmp(m.user, p->pair->rcv.name) != 0) {
      bench_note_error(b, BENCH_E_BAD_FRAME, 1);
      break;
    }
    p->welcomed = 1;
    bench_phase_link_ready(b, p->pair);
    break;
  case CHAT_T_MSG:
    on_msg(p, &m);
    break;
  case CHAT_T_ACK:
    if (!p->dialer || !p->welcomed)
      bench_note_error(b, BENCH_E_BAD_FRAME, 1);
    else
      bench_traffic_on_peer_ack(b, p->pair, m.msg_id);
    break;
  case CHAT_T_PING: {
    static const char pong[] = "{\"type\":\"pong\"}\n";
    bench_peer_send_line(p, pong, sizeof(pong) - 1);
    break;
  }
  case CHAT_T_ERROR:
    bench_note_reply(b, m.code);
    if (!b->stopping)
      bench_stop(b, "a peer link answered with an error");
    break;
  default:
    break;
  }
}

static void on_bad_frame(chat_conn_t *c, const chat_error_t *err) {
  bench_peer_t *p = c->data;
  bench_note_error(p->b, BENCH_E_BAD_FRAME, 1);
}

static void on_overflow(chat_conn_t *c) {
  bench_peer_t *p = c->data;
  bench_note_error(p->b, BENCH_E_DISCONNECTED, 1);
  bench_stop(p->b, "peer link output overflow");
}

static void on_close(chat_conn_t *c, int status) {
  bench_peer_t *p = c->data;
  bench_t *b = p->b;
  if (p->rcv && p->rcv->waiting == p)
    p->rcv->waiting = NULL;
  if (p->pair && p->pair->link == p)
    p->pair->link = NULL;
  if (p->prev)
    p->prev->next = p->next;
  else
    b->peers = p->next;
  if (p->next)
    p->next->prev = p->prev;
  b->live_conns--;
  /* A link ends early only on failure: the run closes them at the end. */
  if (!b->stopping && (p->dialer || p->welcomed)) {
    bench_note_error(b, BENCH_E_DISCONNECTED, 1);
    bench_stop(b, "a peer link ended");
  }
  free(p);
  bench_phase_check(b);
}

static void on_dialled(chat_conn_t *c, int status) {
  bench_peer_t *p = c->data;
  bench_t *b = p->b;
  if (status < 0) {
    if (!b->stopping) {
      bench_note_error(b, BENCH_E_CONNECT, 1);
      bench_stop(b, "cannot dial a receiver's peer listener");
    }
    return; /* on_close follows */
  }
  char key[CHAT_TLS_KEY_HEX];
  if (chat_conn_tls_peer_key(c, key) < 0 || strcmp(key, p->want_key) != 0) {
    /* never show the ticket to a listener that is not the vouched one */
    bench_note_error(b, BENCH_E_BAD_FRAME, 1);
    bench_stop(b, "a receiver's listener proved another key");
    chat_conn_abort(c);
    return;
  }
  char line[256];
  int n = snprintf(line, sizeof(line),
                   "{\"type\":\"peer_hello\",\"proto\":1,\"from\":\"%s\","
                   "\"to\":\"%s\",\"ticket\":\"%s\"}\n",
                   p->pair->snd.name, p->pair->rcv.name, p->ticket);
  bench_peer_send_line(p, line, (size_t)n);
}

int bench_peer_dial(bench_t *b, bench_pair_t *pair, const chat_msg_t *ok) {
  struct sockaddr_storage ss;
  if (!ok->host || ok->port < 1 || ok->port > 65535 || !ok->ticket ||
      !chat_ticket_valid(ok->ticket) || !ok->key || !chat_key_valid(ok->key) ||
      pair->link)
    return -EINVAL;
  /* The host is the address the server saw for our listener's side, so it
   * is numeric; a name would be resolved here, blocking, once per pair. */
  int rc = chat_addr_resolve(ok->host, (int)ok->port, &ss);
  if (rc < 0)
    return rc;
  bench_peer_t *p = peer_new(b);
  if (!p)
    return -ENOMEM;
  p->dialer = 1;
  p->pair = pair;
  pair->link = p;
  snprintf(p->ticket, sizeof(p->ticket), "%s", ok->ticket);
  snprintf(p->want_key, sizeof(p->want_key), "%s", ok->key);
  rc = chat_conn_connect(&p->conn, (const struct sockaddr *)&ss, on_dialled);
  if (rc < 0) {
    chat_conn_abort(&p->conn);
    return rc;
  }
  return 0;
}

static void on_connection(uv_stream_t *server, int status) {
  bench_t *b = server->data;
  if (status < 0 || b->stopping)
    return;
  bench_peer_t *p = peer_new(b);
  if (!p) {
    bench_note_error(b, BENCH_E_CONNECT, 1);
    bench_stop(b, "out of memory for a peer link");
    return;
  }
  if (chat_conn_accept(&p->conn, server) < 0)
    chat_conn_abort(&p->conn);
}

int bench_peer_listen(bench_t *b) {
  /* Any address of the server's family: the server advertises the address
   * it sees our connections come from, which is one of ours. */
  struct sockaddr_storage ss;
  memset(&ss, 0, sizeof(ss));
  const char *any = b->server_addr.ss_family == AF_INET6 ? "::" : "0.0.0.0";
  int rc = chat_addr_resolve(any, 0, &ss);
  if (rc < 0)
    return rc;
  if ((rc = uv_tcp_init(b->loop, &b->listener)) < 0)
    return rc;
  b->listener.data = b;
  b->listener_live = 1;
  if ((rc = uv_tcp_bind(&b->listener, (const struct sockaddr *)&ss, 0)) < 0)
    return rc;
  if ((rc = uv_listen((uv_stream_t *)&b->listener, 4096, on_connection)) < 0)
    return rc;
  struct sockaddr_storage name;
  int len = sizeof(name);
  if ((rc = uv_tcp_getsockname(&b->listener, (struct sockaddr *)&name,
                               &len)) < 0)
    return rc;
  char host[CHAT_HOST_MAX];
  return chat_addr_host((const struct sockaddr *)&name, host, sizeof(host),
                        &b->listener_port);
}

/* Called by the tick: a hello whose expect never came is refused. */
void bench_peer_expire(bench_t *b, uint64_t now) {
  for (bench_peer_t *p = b->peers; p; p = p->next)
    if (p->waiting && now > p->wait_until) {
      p->waiting = 0;
      refuse(p, "a peer_hello's ticket never arrived as an expect");
      return; /* refuse may have stopped the run and closed the list */
    }
}

void bench_peer_close_all(bench_t *b) {
  for (bench_peer_t *p = b->peers; p; p = p->next)
    chat_conn_close(&p->conn);
}
