/* peer.c -- direct links: the listener that peers dial, the links we dial,
 * the peer_hello / peer_welcome handshake, and msg / ack on open links. The
 * decisions are elsewhere: tickets.c says which hellos pass, outbox.c what
 * to send on which link. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chat_log.h"
#include "client.h"

typedef enum peer_state {
  P_HELLO_SENT,  /* we dialed and said hello; waiting for peer_welcome */
  P_AWAIT_HELLO, /* a peer dialed us; waiting for its peer_hello */
  P_WAIT_TICKET, /* its hello waits for the server's expect */
  P_OPEN,
  P_CLOSING
} peer_state_t;

struct chat_peer {
  chat_conn_t conn;          /* conn.data points to this */
  chat_client_t *c;
  chat_peer_t *next, **pprev;
  uint64_t link;             /* the outbox's id; 0 until it knows the link */
  int inbound;               /* counted in c->n_inbound until decided */
  peer_state_t state;
  uint64_t since;            /* accepted at (inbound) */
  char name[CHAT_MAX_NAME + 1];
};

static void on_frame(chat_conn_t *conn, json_t *obj, const char *line,
                     size_t len);
static void on_bad_frame(chat_conn_t *conn, const chat_error_t *err);
static void on_overflow(chat_conn_t *conn);
static void on_close(chat_conn_t *conn, int status);

static const chat_conn_cbs_t peer_cbs = {on_frame, on_bad_frame, on_overflow,
                                         on_close};

static chat_peer_t *peer_new(chat_client_t *c) {
  chat_peer_t *p = calloc(1, sizeof(*p));
  if (!p)
    return NULL;
  p->c = c;
  p->conn.data = p;
  if (chat_conn_init(c->io, &p->conn, &peer_cbs, NULL) < 0) {
    free(p);
    return NULL;
  }
  p->next = c->peers;
  if (c->peers)
    c->peers->pprev = &p->next;
  p->pprev = &c->peers;
  c->peers = p;
  return p;
}

static chat_peer_t *peer_by_link(chat_client_t *c, uint64_t link) {
  for (chat_peer_t *p = c->peers; p; p = p->next)
    if (p->link == link && link)
      return p;
  return NULL;
}

static void send_obj(chat_peer_t *p, json_t *obj) {
  if (obj)
    chat_conn_send(&p->conn, obj);
  json_decref(obj);
}

static void inbound_decided(chat_peer_t *p) {
  if (p->inbound) {
    p->inbound = 0;
    p->c->n_inbound--;
  }
}

static void refuse(chat_peer_t *p, const char *why) {
  chat_client_t *c = p->c;
  CHAT_INFO("refusing a direct link: %s", why);
  if (c->tickets)
    chat_tickets_forget(c->tickets, p);
  inbound_decided(p);
  send_obj(p, chat_reply_error(NULL, CHAT_E_BAD_TICKET, why));
  p->state = P_CLOSING;
  chat_conn_close(&p->conn);
}

static void accept_link(chat_peer_t *p, const char *from) {
  chat_client_t *c = p->c;
  inbound_decided(p);
  snprintf(p->name, sizeof(p->name), "%s", from);
  p->link = chat_outbox_link_accepted(c->ob, from, chat__client_now(c));
  if (!p->link) {
    p->state = P_CLOSING;
    chat_conn_abort(&p->conn);
    return;
  }
  p->state = P_OPEN;
  send_obj(p, json_pack("{s:s,s:s}", "type", "peer_welcome", "user",
                        c->opts.user));
  chat__client_rearm(c);
}

void chat__peer_on_ticket(void *ctx, void *waiter, int accepted) {
  chat_peer_t *p = waiter;
  if (p->state != P_WAIT_TICKET)
    return;
  if (accepted) {
    accept_link(p, p->name);
    chat_conn_resume(&p->conn);
  } else {
    refuse(p, "ticket unknown, expired, used, or for another user");
  }
}

static void on_hello(chat_peer_t *p, const chat_msg_t *m) {
  chat_client_t *c = p->c;
  chat_ticket_verdict_t v;
  if (m->type != CHAT_T_PEER_HELLO || m->proto != CHAT_PROTO_VERSION) {
    refuse(p, "expected peer_hello, proto 1");
    return;
  }
  snprintf(p->name, sizeof(p->name), "%s", m->from);
  v = chat_tickets_hello(c->tickets, p, m->from, m->to, m->ticket,
                         chat__client_now(c));
  if (v == CHAT_TICKET_ACCEPT) {
    accept_link(p, m->from);
  } else if (v == CHAT_TICKET_WAIT) {
    /* Nothing more is read until the expect decides. */
    p->state = P_WAIT_TICKET;
    chat_conn_pause(&p->conn);
    chat__client_rearm(c);
  } else {
    refuse(p, "ticket unknown, expired, used, or for another user");
  }
}

static void on_open_frame(chat_peer_t *p, const chat_msg_t *m) {
  chat_client_t *c = p->c;
  uint64_t now = chat__client_now(c);

  chat_outbox_link_activity(c->ob, p->link, now);
  switch (m->type) {
  case CHAT_T_MSG:
    /* The sender is the peer proven in the handshake, never a field. */
    chat__session_show_message(c, p->name, NULL, m->msg_id, m->body,
                               m->body_len, m->ts, "direct", 0);
    send_obj(p, json_pack("{s:s,s:s}", "type", "ack", "msg_id", m->msg_id));
    break;
  case CHAT_T_ACK:
    chat_outbox_direct_ack(c->ob, p->link, m->msg_id, now);
    break;
  case CHAT_T_PING:
    send_obj(p, chat_msg_new(CHAT_T_PONG));
    break;
  case CHAT_T_ERROR:
    CHAT_WARN("peer %s: error %s", p->name, m->code);
    break;
  default:
    break;
  }
  chat__client_rearm(c);
}

static void on_frame(chat_conn_t *conn, json_t *obj, const char *line,
                     size_t len) {
  chat_peer_t *p = conn->data;
  chat_client_t *c = p->c;
  chat_msg_t m;
  chat_error_t err = {0};
  int rc = chat_msg_decode(obj, CHAT_ROLE_PEER, &m, &err);

  if (p->state == P_CLOSING)
    return;
  if (rc < 0) {
    if (p->state == P_AWAIT_HELLO) {
      refuse(p, err.message);
      return;
    }
    send_obj(p, chat_reply_from_error(m.id, &err));
    return;
  }
  switch (p->state) {
  case P_AWAIT_HELLO:
    on_hello(p, &m);
    break;
  case P_HELLO_SENT:
    if (m.type == CHAT_T_PEER_WELCOME && strcmp(m.user, p->name) == 0) {
      p->state = P_OPEN;
      chat_outbox_link_up(c->ob, p->link, chat__client_now(c));
      chat__client_rearm(c);
    } else {
      CHAT_INFO("direct link to %s refused (%s)", p->name,
                m.type == CHAT_T_ERROR ? m.code : "no welcome");
      p->state = P_CLOSING;
      chat_conn_abort(conn); /* on_close tells the outbox */
    }
    break;
  case P_OPEN:
    on_open_frame(p, &m);
    break;
  default:
    break;
  }
}

static void on_bad_frame(chat_conn_t *conn, const chat_error_t *err) {
  chat_peer_t *p = conn->data;
  send_obj(p, chat_reply_from_error(NULL, err));
}

static void on_overflow(chat_conn_t *conn) { chat_conn_abort(conn); }

static void on_close(chat_conn_t *conn, int status) {
  chat_peer_t *p = conn->data;
  chat_client_t *c = p->c;

  if (c->tickets)
    chat_tickets_forget(c->tickets, p);
  inbound_decided(p);
  if (p->link && !c->handles_closed) {
    chat_outbox_link_down(c->ob, p->link, chat__client_now(c));
    chat__client_rearm(c);
  }
  *p->pprev = p->next;
  if (p->next)
    p->next->pprev = p->pprev;
  free(p);
}

/* ---- dialing ------------------------------------------------------------ */

static void on_dialed(chat_conn_t *conn, int status) {
  chat_peer_t *p = conn->data;
  if (status < 0)
    CHAT_INFO("dialing %s failed: %s", p->name, uv_strerror(status));
}

void chat__peer_dial(chat_client_t *c, uint64_t link, const char *to,
                     const char *host, int port, const char *ticket) {
  struct sockaddr_storage ss;
  chat_peer_t *p = peer_new(c);

  if (!p) {
    CHAT_ERROR("out of memory dialing %s", to);
    return; /* the outbox's handshake timeout takes it to the relay */
  }
  p->link = link;
  p->state = P_HELLO_SENT;
  snprintf(p->name, sizeof(p->name), "%s", to);
  /* Hosts come from the server: numeric, unless a peer set --p2p-host to a
   * name, which is not resolved here (that would block the loop). */
  if (uv_ip4_addr(host, port, (struct sockaddr_in *)&ss) != 0 &&
      uv_ip6_addr(host, port, (struct sockaddr_in6 *)&ss) != 0) {
    CHAT_WARN("cannot dial %s at '%s': not a numeric address", to, host);
    chat_conn_abort(&p->conn); /* on_close, on a later turn, says refused */
    return;
  }
  chat_conn_connect(&p->conn, (struct sockaddr *)&ss, on_dialed);
  send_obj(p, json_pack("{s:s,s:i,s:s,s:s,s:s}", "type", "peer_hello",
                        "proto", CHAT_PROTO_VERSION, "from", c->opts.user,
                        "to", to, "ticket", ticket));
}

int chat__peer_send(chat_client_t *c, uint64_t link, const json_t *obj) {
  chat_peer_t *p = peer_by_link(c, link);
  if (!p || p->state != P_OPEN)
    return -ENOTCONN;
  return chat_conn_send(&p->conn, obj);
}

void chat__peer_close_link(chat_client_t *c, uint64_t link) {
  chat_peer_t *p = peer_by_link(c, link);
  if (!p)
    return;
  p->link = 0; /* the outbox has forgotten it already */
  p->state = P_CLOSING;
  chat_conn_close(&p->conn);
}

void chat__peer_close_all(chat_client_t *c) {
  for (chat_peer_t *p = c->peers; p; p = p->next) {
    p->state = P_CLOSING;
    chat_conn_close(&p->conn);
  }
}

/* ---- listening ---------------------------------------------------------- */

void chat__peer_on_expect(chat_client_t *c, const char *from,
                          const char *ticket) {
  if (!c->tickets)
    return;
  chat_tickets_expect(c->tickets, from, ticket, chat__client_now(c));
  chat__client_rearm(c);
}

static void on_connection(uv_stream_t *server, int status) {
  chat_client_t *c = server->data;
  chat_peer_t *p;

  if (status < 0 || c->stopping)
    return;
  if (!(p = peer_new(c)))
    return;
  if (chat_conn_accept(&p->conn, server) < 0) {
    chat_conn_abort(&p->conn);
    return;
  }
  if (c->n_inbound >= CHAT_CLIENT_MAX_INBOUND) {
    chat_conn_abort(&p->conn); /* too many half-open links: shed this one */
    return;
  }
  p->inbound = 1;
  c->n_inbound++;
  p->state = P_AWAIT_HELLO;
  p->since = chat__client_now(c);
}

/* Inbound links that never say hello are cut off. */
static void on_peer_timer(uv_timer_t *t) {
  chat_client_t *c = t->data;
  uint64_t now = chat__client_now(c);
  for (chat_peer_t *p = c->peers; p; p = p->next)
    if (p->state == P_AWAIT_HELLO && now - p->since >= CHAT_CLIENT_HELLO_MS) {
      inbound_decided(p);
      p->state = P_CLOSING;
      chat_conn_abort(&p->conn);
    }
}

int chat__peer_listen(chat_client_t *c) {
  struct sockaddr_storage ss;
  struct sockaddr_storage bound;
  int len = sizeof(bound), rc;
  char host[64];
  int port;

  uv_timer_init(c->loop, &c->peer_timer);
  c->peer_timer.data = c;
  uv_timer_start(&c->peer_timer, on_peer_timer, 1000, 1000);
  uv_unref((uv_handle_t *)&c->peer_timer);
  uv_tcp_init(c->loop, &c->listener);
  c->listener.data = c;
  c->listening = 1;
  /* Dual-stack where IPv6 exists, plain IPv4 otherwise. */
  uv_ip6_addr("::", c->opts.p2p_port, (struct sockaddr_in6 *)&ss);
  rc = uv_tcp_bind(&c->listener, (struct sockaddr *)&ss, 0);
  if (rc == UV_EAFNOSUPPORT || rc == UV_EADDRNOTAVAIL) {
    uv_ip4_addr("0.0.0.0", c->opts.p2p_port, (struct sockaddr_in *)&ss);
    rc = uv_tcp_bind(&c->listener, (struct sockaddr *)&ss, 0);
  }
  if (rc == 0)
    rc = uv_listen((uv_stream_t *)&c->listener, 128, on_connection);
  if (rc == 0)
    rc = uv_tcp_getsockname(&c->listener, (struct sockaddr *)&bound, &len);
  if (rc == 0)
    rc = chat_addr_host((struct sockaddr *)&bound, host, sizeof(host), &port);
  if (rc < 0) {
    fprintf(stderr, "chat-client: cannot listen for direct connections on "
                    "port %d: %s\n", c->opts.p2p_port, chat_strerror(rc));
    return rc;
  }
  c->p2p_port = port;
  return 0;
}
