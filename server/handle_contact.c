/* handle_contact.c -- contact_add, contact_accept, contact_decline,
 * contact_remove, contacts: contacts need consent on both sides. */
#include <errno.h>

#include "cluster.h"
#include "handlers.h"

static chat__session_t *online(const chat__user_t *u) {
  return u->session && !u->session->ended ? u->session : NULL;
}

/* ev (stolen) to u: its session here, or in cluster mode the node it is
 * on, which applies it to its copy of u's lists too (cluster.c). */
static void tell(chat__srv_t *srv, const chat__user_t *u, json_t *ev) {
  chat__session_t *us = online(u);
  if (us != NULL) {
    chat__session_send_new(us, ev);
    return;
  }
  if (ev != NULL)
    chat__cluster_tell(srv, u->name, ev);
  json_decref(ev);
}

/* me accepts from's request (which the caller checked exists). */
static int accept_request(chat__srv_t *srv, chat__session_t *s,
                          chat__user_t *me, chat__user_t *from,
                          const chat_msg_t *m) {
  if (chat__contact_add(me, from) < 0)
    return -ENOMEM;
  chat__request_del(from, me);
  chat__srv_op2(srv, CHAT_STORE_DEL_REQUEST, from->name, me->name);
  if (chat__request_has(me, from)) {
    chat__request_del(me, from);
    chat__srv_op2(srv, CHAT_STORE_DEL_REQUEST, me->name, from->name);
  }
  chat__srv_op2(srv, CHAT_STORE_ADD_CONTACT, me->name, from->name);
  chat__session_send_new(s, chat_reply_ok(m->id));
  chat__session_send_new(
      s, chat_ev_contact_added(from->name, chat__srv_status_of(from)));
  tell(srv, from, chat_ev_contact_added(me->name, chat__srv_status_of(me)));
  return 0;
}

/* The target of a contact request: an existing user other than the caller. */
static int target(chat__srv_t *srv, chat__session_t *s, const chat_msg_t *m,
                  chat_error_t *err, chat__user_t **out) {
  chat__user_t *t = chat__registry_find(&srv->reg, m->user);
  if (t == NULL)
    return -CHAT_E_NO_SUCH_USER;
  if (t == s->user)
    return chat_error_set(err, CHAT_E_BAD_REQUEST, "user",
                          "field 'user' must name another user");
  *out = t;
  return 0;
}

int chat__handle_contact_add(chat__srv_t *srv, chat__session_t *s,
                             const chat_msg_t *m, chat_error_t *err) {
  chat__user_t *me = s->user, *t = NULL;
  int r = target(srv, s, m, err, &t);
  if (r < 0)
    return r;
  if (chat__contact_is(me, t) || chat__request_has(me, t)) {
    chat__session_send_new(s, chat_reply_ok(m->id));
    return 0;
  }
  if (chat__request_has(t, me))
    return accept_request(srv, s, me, t, m);
  if (chat__request_add(me, t) < 0)
    return -ENOMEM;
  chat__srv_op2(srv, CHAT_STORE_ADD_REQUEST, me->name, t->name);
  chat__session_send_new(s, chat_reply_ok(m->id));
  tell(srv, t, chat_ev_contact_request(me->name));
  return 0;
}

int chat__handle_contact_accept(chat__srv_t *srv, chat__session_t *s,
                                const chat_msg_t *m, chat_error_t *err) {
  chat__user_t *t = chat__registry_find(&srv->reg, m->user);
  if (t == NULL)
    return -CHAT_E_NO_SUCH_USER;
  if (!chat__request_has(t, s->user))
    return chat_error_set(err, CHAT_E_BAD_REQUEST, "user",
                          "no pending contact request from '%s'", t->name);
  return accept_request(srv, s, s->user, t, m);
}

int chat__handle_contact_decline(chat__srv_t *srv, chat__session_t *s,
                                 const chat_msg_t *m, chat_error_t *err) {
  chat__user_t *t = chat__registry_find(&srv->reg, m->user);
  if (t == NULL)
    return -CHAT_E_NO_SUCH_USER;
  /* Declining what is not pending (e.g. twice) is harmless: ok. */
  if (chat__request_has(t, s->user)) {
    chat__request_del(t, s->user);
    chat__srv_op2(srv, CHAT_STORE_DEL_REQUEST, t->name, s->user->name);
  }
  chat__session_send_new(s, chat_reply_ok(m->id));
  return 0;
}

int chat__handle_contact_remove(chat__srv_t *srv, chat__session_t *s,
                                const chat_msg_t *m, chat_error_t *err) {
  chat__user_t *t = chat__registry_find(&srv->reg, m->user);
  if (t == NULL)
    return -CHAT_E_NO_SUCH_USER;
  if (!chat__contact_is(s->user, t))
    return -CHAT_E_NOT_CONTACT;
  chat__contact_del(s->user, t);
  chat__srv_op2(srv, CHAT_STORE_DEL_CONTACT, s->user->name, t->name);
  chat__session_send_new(s, chat_reply_ok(m->id));
  tell(srv, t, chat_ev_contact_removed(s->user->name));
  return 0;
}

int chat__handle_contacts(chat__srv_t *srv, chat__session_t *s,
                          const chat_msg_t *m, chat_error_t *err) {
  chat__user_t *me = s->user; /* contacts kept sorted by name */
  if (srv->bus != NULL && me->ncontacts > 0)
    return chat__cluster_contacts(srv, s, m); /* statuses read afresh */
  return chat__srv_reply_list(s, m->id, "contacts",
                              chat__srv_user_list(me->contacts, me->ncontacts));
}
