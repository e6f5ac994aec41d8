/* handle_connect.c -- connect: hands both peers a ticket for a direct link.
 * The caller gets where to dial, the target gets expect; peers check the
 * ticket themselves. Each side also gets the other's direct-link key, as its
 * login announced it (PROTOCOL.md 7): the server vouches for it, the peers
 * pin it in their TLS handshake. A side that announced none gets no key
 * field, and its peer refuses the link (the message takes the relay). */
#include "handlers.h"
#include "tickets.h"

int chat_handle_connect(chat_srv_t *srv, chat_session_t *s,
                        const chat_msg_t *m, chat_error_t *err) {
  chat_user_t *to = chat_registry_find(&srv->reg, m->to);
  if (to == NULL)
    return -CHAT_E_NO_SUCH_USER;
  if (to == s->user || !chat_contact_is(s->user, to))
    return -CHAT_E_NOT_CONTACT;
  chat_session_t *ts = to->session;
  if (ts == NULL || ts->ended)
    return -CHAT_E_OFFLINE;
  if (ts->p2p_port == 0)
    return -CHAT_E_NO_P2P;
  char ticket[33];
  chat_ticket_new(ticket);
  json_t *ok = chat_reply_ok(m->id);
  json_object_set_new(ok, "to", json_string(to->name));
  json_object_set_new(ok, "host",
                      json_string(ts->p2p_host ? ts->p2p_host : ts->host));
  json_object_set_new(ok, "port", json_integer(ts->p2p_port));
  json_object_set_new(ok, "ticket", json_string(ticket));
  if (ts->key[0])
    json_object_set_new(ok, "key", json_string(ts->key));
  chat_session_send_new(s, ok);
  json_t *ex = chat_ev_expect(s->user->name, ticket);
  if (ex && s->key[0])
    json_object_set_new(ex, "key", json_string(s->key));
  chat_session_send_new(ts, ex);
  return 0;
}
