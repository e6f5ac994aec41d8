/* outbox.h -- every message the user sends, from the moment it is typed until
 * the peer acked it (direct) or the server accepted it (relayed / stored):
 * direct first, the relay otherwise, nothing lost.
 *
 * Socket-free and clock-free: the caller feeds it events (a message typed, a
 * server reply, a link that came up or died) with the current time in
 * milliseconds, and it answers with actions through one callback (send this
 * to the server, dial that peer, tell the user). The caller arms one timer
 * for chat_outbox_next_deadline() and calls chat_outbox_tick() when it fires.
 *
 * The path of a 1:1 message to USER:
 *   - an open direct link to USER exists: `msg` on it, ack within 5 s;
 *   - a link to USER is being set up: wait for it;
 *   - USER is not a contact / offline / known to refuse direct links:
 *     relay at once (fallback not_contact / offline / no_p2p);
 *   - else `connect {to}` (reply within 5 s, else fallback timeout), then
 *     dial with the ticket; peer_welcome within 3 s of the connect reply
 *     (else fallback timeout; a dial that fails is fallback refused).
 *   - the link is pinned (PROTOCOL.md 7): the connect reply vouches for the
 *     listener's key, and the dialer says its hello (shows the ticket) only
 *     once the TLS handshake proved that key (chat_outbox_link_secured). No
 *     key vouched, another key proven, or a handshake that failed: fallback
 *     bad_key.
 *   - a connect error falls back with the server's code; a `msg` not acked in
 *     5 s (or on a link that dies first) falls back with no_ack.
 * A relayed message keeps its msg_id, so the server and the peer can drop
 * duplicates. Group messages always take the relay. A 1:1 message the
 * server answered "relayed" is kept until its receipt and sent again after
 * a reconnect (chat_outbox_awaiting_receipt).
 *
 * Links are named by ids the outbox hands out (chat_outbox_link_accepted for
 * links a peer opened to us, CHAT_OB_DIAL for ours). A link idle for 5
 * minutes is closed.
 */
#ifndef CHAT_OUTBOX_H
#define CHAT_OUTBOX_H

#include <stddef.h>
#include <stdint.h>

#include "roster.h"

#define CHAT_OB_CONNECT_TIMEOUT_MS 5000  /* server's reply to connect */
#define CHAT_OB_WELCOME_TIMEOUT_MS 3000  /* peer_welcome after connect reply */
#define CHAT_OB_ACK_TIMEOUT_MS 5000      /* ack of a direct msg */
#define CHAT_OB_IDLE_MS (5 * 60 * 1000)  /* an idle link is closed */
#define CHAT_OB_RETRY_MS 1000            /* relay retry after rate_limited */
#define CHAT_OB_MAX_MESSAGES 10000       /* more is refused: -ENOBUFS */

typedef enum chat_ob_act_kind {
  CHAT_OB_RELAY_SEND,  /* server: send {to,msg_id,body} or group_send */
  CHAT_OB_CONNECT,     /* server: connect {to} */
  CHAT_OB_DIAL,        /* open link `link` to host:port, peer_hello(ticket) */
  CHAT_OB_DIRECT_SEND, /* link: msg {msg_id, body, ts} */
  CHAT_OB_CLOSE_LINK,  /* close link `link` (the outbox forgot it already) */
  CHAT_OB_SENT,        /* user: the message is delivered/relayed/stored */
  CHAT_OB_FAILED       /* user: the server refused the message for good */
} chat_ob_act_kind_t;

/* Every pointer is borrowed for the duration of the callback only. */
typedef struct chat_ob_action {
  chat_ob_act_kind_t kind;
  uint64_t link;           /* DIAL, DIRECT_SEND, CLOSE_LINK */
  const char *to;          /* the peer (NULL for a group message) */
  const char *group;       /* a group message (NULL for 1:1) */
  const char *msg_id;
  const char *body;
  size_t body_len;
  int64_t ts;              /* when it was typed, ms since the epoch */
  const char *host;        /* DIAL */
  int port;                /* DIAL */
  const char *ticket;      /* DIAL */
  const char *key;         /* DIAL: the key the listener must prove */
  const char *via;         /* SENT: "direct" or "relay" */
  const char *status;      /* SENT: "delivered", "relayed" or "stored" */
  const char *fallback;    /* SENT/FAILED: why not direct; NULL if direct */
  const char *path;        /* SENT direct: how the link was made, or NULL */
  int64_t relayed, stored; /* SENT for a group message */
  const char *code;        /* FAILED: the server's error code */
  const char *message;     /* FAILED: its text */
} chat_ob_action_t;

/* The callback must not call back into the outbox. */
typedef void (*chat_ob_sink_t)(void *ctx, const chat_ob_action_t *act);

typedef struct chat_outbox chat_outbox_t;

/* roster is borrowed and must outlive the outbox. Returns 0 or -ENOMEM. */
int chat_outbox_new(chat_roster_t *roster, chat_ob_sink_t sink, void *ctx,
                    chat_outbox_t **out);
void chat_outbox_free(chat_outbox_t *ob);

/* A message typed by the user. Exactly one of to / group is non-NULL. The
 * strings are copied. ts: ms since the epoch (for the peer); now: the
 * outbox clock. Returns 0, -EINVAL (bad name, msg_id or body), -EEXIST
 * (msg_id pending), -ENOBUFS (outbox full) or -ENOMEM. */
int chat_outbox_submit(chat_outbox_t *ob, const char *to, const char *group,
                       const char *msg_id, const char *body, size_t body_len,
                       int64_t ts, int64_t now);

/* The server session is usable (logged in, contacts known): messages that
 * waited for it are routed or resent with their msg_ids. */
void chat_outbox_server_up(chat_outbox_t *ob, int64_t now);
/* The session ended: replies in flight are lost; those messages wait. */
void chat_outbox_server_down(chat_outbox_t *ob, int64_t now);

/* Replies to CHAT_OB_CONNECT. code is the error code's name. key: the
 * listener's key the reply vouched for; NULL or malformed (none vouched)
 * falls back with bad_key at once, without dialing. */
void chat_outbox_connect_ok(chat_outbox_t *ob, const char *to,
                            const char *host, int port, const char *ticket,
                            const char *key, int64_t now);
void chat_outbox_connect_failed(chat_outbox_t *ob, const char *to,
                                const char *code, int64_t now);

/* Replies to CHAT_OB_RELAY_SEND. status: "relayed" or "stored" (1:1), and
 * relayed/stored counts for a group message. Unknown msg_ids are ignored. */
void chat_outbox_relay_ok(chat_outbox_t *ob, const char *msg_id,
                          const char *status, int64_t relayed, int64_t stored,
                          int64_t now);
void chat_outbox_relay_failed(chat_outbox_t *ob, const char *msg_id,
                              const char *code, const char *message,
                              int64_t now);

/* Our dialed link's TLS handshake is done and the listener proved key (NULL:
 * it proved none). Returns 0 when that is the key the connect reply vouched
 * for: the caller now says peer_hello. Otherwise the link fails (its
 * messages fall back with bad_key, CHAT_OB_CLOSE_LINK is emitted) and
 * -EPERM is returned; -ENOENT for a link that is not dialing. */
int chat_outbox_link_secured(chat_outbox_t *ob, uint64_t link,
                             const char *key, int64_t now);
/* Our dialed link's handshake failed (the listener could not prove a key):
 * as link_down, but its messages fall back with reason (e.g. "bad_key"). */
void chat_outbox_link_failed(chat_outbox_t *ob, uint64_t link,
                             const char *reason, int64_t now);
/* Our dialed link got its peer_welcome. */
void chat_outbox_link_up(chat_outbox_t *ob, uint64_t link, int64_t now);
/* A peer opened a link to us and proved to be `peer`: returns its id (> 0),
 * or 0 when out of memory (the caller then closes it). */
uint64_t chat_outbox_link_accepted(chat_outbox_t *ob, const char *peer,
                                   int64_t now);
/* Something arrived on the link (keeps it from idling out). */
void chat_outbox_link_activity(chat_outbox_t *ob, uint64_t link, int64_t now);
/* The link failed or closed: before the welcome its messages fall back with
 * "refused", after it the unacked ones with "no_ack". Unknown ids are
 * ignored (e.g. links the outbox closed itself). */
void chat_outbox_link_down(chat_outbox_t *ob, uint64_t link, int64_t now);
/* How link was made ("dialed", "reverse", "punched"): direct sends on it
 * say so (CLI.md's path). Unknown ids are ignored. */
void chat_outbox_link_path(chat_outbox_t *ob, uint64_t link,
                           const char *path);
/* The peer acked msg_id on link. */
void chat_outbox_direct_ack(chat_outbox_t *ob, uint64_t link,
                            const char *msg_id, int64_t now);

/* Runs every deadline that is due at now. */
void chat_outbox_tick(chat_outbox_t *ob, int64_t now);
/* The earliest deadline (outbox clock), or -1 when there is none. */
int64_t chat_outbox_next_deadline(const chat_outbox_t *ob);

/* A receipt for msg_id came: a relayed message kept for it is let go. */
void chat_outbox_receipt(chat_outbox_t *ob, const char *msg_id);

/* Messages not yet delivered, relayed or stored. */
size_t chat_outbox_pending(const chat_outbox_t *ob);
/* Relayed 1:1 messages kept until their receipt (PROTOCOL.md section 3: a
 * server that dies may lose what it relayed less than a second ago); after
 * a reconnect they are sent again with the same msg_id, and the reply is
 * not shown to the user a second time. */
size_t chat_outbox_awaiting_receipt(const chat_outbox_t *ob);
/* Nonzero while msg_id is one of them. */
int chat_outbox_has(const chat_outbox_t *ob, const char *msg_id);
/* Links known (dialing or open), for tests and diagnostics. */
size_t chat_outbox_links(const chat_outbox_t *ob);
/* The peer of an open link, or NULL. */
const char *chat_outbox_link_peer(const chat_outbox_t *ob, uint64_t link);

#endif /* CHAT_OUTBOX_H */
