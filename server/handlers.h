/* handlers.h -- one handler per request type, called by dispatch.c once the
 * frame is decoded and the session state is right for it.
 *
 * A handler returns 0 when it replied (or will, asynchronously), or a negated
 * chat_code_t that dispatch.c turns into the error reply, using err's message
 * when the handler set one. */
#ifndef CHAT_HANDLERS_H
#define CHAT_HANDLERS_H

#include "srv.h"

typedef int (*chat__handler_fn)(chat__srv_t *srv, chat__session_t *s,
                                const chat_msg_t *m, chat_error_t *err);

/* handle_account.c */
int chat__handle_register(chat__srv_t *, chat__session_t *, const chat_msg_t *,
                          chat_error_t *);
int chat__handle_login(chat__srv_t *, chat__session_t *, const chat_msg_t *,
                       chat_error_t *);
int chat__handle_logout(chat__srv_t *, chat__session_t *, const chat_msg_t *,
                        chat_error_t *);
int chat__handle_ping(chat__srv_t *, chat__session_t *, const chat_msg_t *,
                      chat_error_t *);
int chat__handle_status(chat__srv_t *, chat__session_t *, const chat_msg_t *,
                        chat_error_t *);
/* handle_contact.c */
int chat__handle_contact_add(chat__srv_t *, chat__session_t *,
                             const chat_msg_t *, chat_error_t *);
int chat__handle_contact_accept(chat__srv_t *, chat__session_t *,
                                const chat_msg_t *, chat_error_t *);
int chat__handle_contact_decline(chat__srv_t *, chat__session_t *,
                                 const chat_msg_t *, chat_error_t *);
int chat__handle_contact_remove(chat__srv_t *, chat__session_t *,
                                const chat_msg_t *, chat_error_t *);
int chat__handle_contacts(chat__srv_t *, chat__session_t *, const chat_msg_t *,
                          chat_error_t *);
/* handle_message.c */
int chat__handle_send(chat__srv_t *, chat__session_t *, const chat_msg_t *,
                      chat_error_t *);
int chat__handle_ack(chat__srv_t *, chat__session_t *, const chat_msg_t *,
                     chat_error_t *);
/* handle_connect.c */
int chat__handle_connect(chat__srv_t *, chat__session_t *, const chat_msg_t *,
                         chat_error_t *);
/* handle_group.c */
int chat__handle_group_create(chat__srv_t *, chat__session_t *,
                              const chat_msg_t *, chat_error_t *);
int chat__handle_group_add(chat__srv_t *, chat__session_t *, const chat_msg_t *,
                           chat_error_t *);
int chat__handle_group_leave(chat__srv_t *, chat__session_t *,
                             const chat_msg_t *, chat_error_t *);
int chat__handle_group_members(chat__srv_t *, chat__session_t *,
                               const chat_msg_t *, chat_error_t *);
int chat__handle_groups(chat__srv_t *, chat__session_t *, const chat_msg_t *,
                        chat_error_t *);
int chat__handle_group_send(chat__srv_t *, chat__session_t *,
                            const chat_msg_t *, chat_error_t *);

#endif /* CHAT_HANDLERS_H */
