/* handlers.h -- one handler per request type, called by dispatch.c once the
 * frame is decoded and the session state is right for it.
 *
 * A handler returns 0 when it replied (or will, asynchronously), or a negated
 * chat_code_t that dispatch.c turns into the error reply, using err's message
 * when the handler set one. */
#ifndef CHAT_HANDLERS_H
#define CHAT_HANDLERS_H

#include "srv.h"

typedef int (*chat_handler_fn)(chat_srv_t *srv, chat_session_t *s,
                               const chat_msg_t *m, chat_error_t *err);

/* handle_account.c */
int chat_handle_register(chat_srv_t *, chat_session_t *, const chat_msg_t *,
                         chat_error_t *);
int chat_handle_login(chat_srv_t *, chat_session_t *, const chat_msg_t *,
                      chat_error_t *);
int chat_handle_logout(chat_srv_t *, chat_session_t *, const chat_msg_t *,
                       chat_error_t *);
int chat_handle_ping(chat_srv_t *, chat_session_t *, const chat_msg_t *,
                     chat_error_t *);
int chat_handle_status(chat_srv_t *, chat_session_t *, const chat_msg_t *,
                       chat_error_t *);
/* handle_contact.c */
int chat_handle_contact_add(chat_srv_t *, chat_session_t *, const chat_msg_t *,
                            chat_error_t *);
int chat_handle_contact_accept(chat_srv_t *, chat_session_t *,
                               const chat_msg_t *, chat_error_t *);
int chat_handle_contact_decline(chat_srv_t *, chat_session_t *,
                                const chat_msg_t *, chat_error_t *);
int chat_handle_contact_remove(chat_srv_t *, chat_session_t *,
                               const chat_msg_t *, chat_error_t *);
int chat_handle_contacts(chat_srv_t *, chat_session_t *, const chat_msg_t *,
                         chat_error_t *);
/* handle_message.c */
int chat_handle_send(chat_srv_t *, chat_session_t *, const chat_msg_t *,
                     chat_error_t *);
int chat_handle_ack(chat_srv_t *, chat_session_t *, const chat_msg_t *,
                    chat_error_t *);
/* handle_connect.c */
int chat_handle_connect(chat_srv_t *, chat_session_t *, const chat_msg_t *,
                        chat_error_t *);
/* handle_group.c */
int chat_handle_group_create(chat_srv_t *, chat_session_t *,
                             const chat_msg_t *, chat_error_t *);
int chat_handle_group_add(chat_srv_t *, chat_session_t *, const chat_msg_t *,
                          chat_error_t *);
int chat_handle_group_leave(chat_srv_t *, chat_session_t *,
                            const chat_msg_t *, chat_error_t *);
int chat_handle_group_members(chat_srv_t *, chat_session_t *,
                              const chat_msg_t *, chat_error_t *);
int chat_handle_groups(chat_srv_t *, chat_session_t *, const chat_msg_t *,
                       chat_error_t *);
int chat_handle_group_send(chat_srv_t *, chat_session_t *, const chat_msg_t *,
                           chat_error_t *);

#endif /* CHAT_HANDLERS_H */
