/* handle_connect.c -- connect: hands both peers a ticket for a direct link.
 * The caller gets where to dial, the target gets expect; peers check the
 * ticket themselves. Each side also gets the other's direct-link key, as its
 * login announced it (PROTOCOL.md 7): the server vouches for it, the peers
 * pin it in their TLS handshake. A side that announced none gets no key
 * field, and its peer refuses the link (the message takes the relay).
 *
 * Behind NATs (docs/DIRECT.md, docs/NAT.md) the server, which sees both
 * sides' public addresses, also says how else to try: two sides seen at the
 * same address are behind one NAT (or on one host) and get the target's LAN
 * addresses to dial; two sides seen at different addresses get a reverse
 * dial (the target dials the asker's listener) and a hole punch (both dial
 * each other's server-connection address at one moment, which the server
 * sets from the kernel's RTT of both connections). */
#include <string.h>

#include "cluster.h"
#include "handlers.h"
#include "tickets.h"

/* The punch starts this long after both sides have the message: the plain
 * and reverse dials, which need no open hole, get a head start. */
#define CHAT_PUNCH_LEAD_MS 100
#define CHAT_PUNCH_MAX_OW_MS 1000 /* one-way delays beyond are capped */

static int one_way_ms(chat__session_t *s) {
  int rtt = s->sink && s->sink->rtt_ms ? s->sink->rtt_ms(s->ctx) : -1;
  if (rtt < 0)
    rtt = 0;
  rtt /= 2;
  return rtt > CHAT_PUNCH_MAX_OW_MS ? CHAT_PUNCH_MAX_OW_MS : rtt;
}

static void add_punch(json_t *o, const chat__session_t *other, int ms) {
  json_object_set_new(o, "punch_host", json_string(other->host));
  json_object_set_new(o, "punch_port", json_integer(other->obs_port));
  json_object_set_new(o, "punch_ms", json_integer(ms));
}

int chat__handle_connect(chat__srv_t *srv, chat__session_t *s,
                         const chat_msg_t *m, chat_error_t *err) {
  chat__user_t *to = chat__registry_find(&srv->reg, m->to);
  if (to == NULL)
    return -CHAT_E_NO_SUCH_USER;
  if (to == s->user || !chat__contact_is(s->user, to))
    return -CHAT_E_NOT_CONTACT;
  chat__session_t *ts = to->session;
  if ((ts == NULL || ts->ended) && srv->bus != NULL)
    return chat__cluster_connect(srv, s, m, to); /* on another node? */
  if (ts == NULL || ts->ended)
    return -CHAT_E_OFFLINE;
  if (ts->p2p_port == 0)
    return -CHAT_E_NO_P2P;
  char ticket[33];
  chat__ticket_new(ticket);
  /* One address for both: behind one NAT (the LAN is the way) or on one
   * host. Unknown addresses count as the same: nothing to traverse. */
  int same = strcmp(s->host, ts->host) == 0 || !s->host[0] || !ts->host[0];
  int punch = !same && s->obs_port && ts->obs_port && s->key[0] && ts->key[0];
  int reverse = !same && s->p2p_port && s->key[0] && ts->key[0];
  int ow_s = 0, ow_t = 0, at = 0;
  if (punch) {
    ow_s = one_way_ms(s);
    ow_t = one_way_ms(ts);
    at = (ow_s > ow_t ? ow_s : ow_t) + CHAT_PUNCH_LEAD_MS;
  }

  json_t *ok = chat_reply_ok(m->id);
  json_object_set_new(ok, "to", json_string(to->name));
  json_object_set_new(ok, "host",
                      json_string(ts->p2p_host ? ts->p2p_host : ts->host));
  json_object_set_new(ok, "port", json_integer(ts->p2p_port));
  json_object_set_new(ok, "ticket", json_string(ticket));
  if (ts->key[0])
    json_object_set_new(ok, "key", json_string(ts->key));
  if (same && ts->n_lan) {
    json_t *lan = json_array();
    for (unsigned i = 0; i < ts->n_lan; i++)
      json_array_append_new(lan, json_string(ts->lan[i]));
    json_object_set_new(ok, "lan", lan);
  }
  if (reverse)
    json_object_set_new(ok, "reverse", json_true());
  if (punch)
    add_punch(ok, ts, at - ow_s);
  chat__session_send_new(s, ok);

  json_t *ex = chat_ev_expect(s->user->name, ticket);
  if (ex && s->key[0])
    json_object_set_new(ex, "key", json_string(s->key));
  if (ex && reverse) {
    json_object_set_new(ex, "host",
                        json_string(s->p2p_host ? s->p2p_host : s->host));
    json_object_set_new(ex, "port", json_integer(s->p2p_port));
  }
  if (ex && punch)
    add_punch(ex, s, at - ow_t);
  chat__session_send_new(ts, ex);
  return 0;
}
