/* client.h -- chat-client's core: the session with the server
 * (session.c), direct links (peer.c), what the user typed (commands.c), and
 * the lifecycle and the outbox's actions (client.c). The decisions live in
 * socket-free modules: outbox, roster, dedup, tickets, requests, conv, cmd,
 * backoff, servers.
 *
 * The core holds no libuv handle, reads no clock and opens no file: it
 * reaches sockets, stdin, stdout, history and time only through a
 * chat_client_env_t. The real program (client_uv.h: sockets, terminal,
 * timers) and the tests and fuzz target (their own env, a fake clock) drive
 * it the same way, through its entry points: chat__session_connected /
 * _on_frame / _closed for the server connection, chat__peer_accepted /
 * _on_frame / _closed for links, chat__cmd_run for typed lines, and
 * chat__client_tick when time has passed (at chat_client_next_deadline).
 * After them a driver calls chat_client_settle, the one place where the
 * consequences of events are taken up (a drain that is complete ends the
 * client), and reads what the core asks of it (prompt_dirty, wait_ms,
 * reconnect_asked, finished).
 */
#ifndef CHAT_CLIENT_H
#define CHAT_CLIENT_H

#include <jansson.h>
#include <stdint.h>
#include <uv.h> /* uv_loop_t in chat_client_init_core's signature only */

#include "chat_addr.h"
#include "chat_protocol.h"
#include "conv.h"
#include "dedup.h"
#include "outbox.h"
#include "requests.h"
#include "roster.h"
#include "servers.h"
#include "tickets.h"

#define CHAT_CLIENT_DRAIN_MS 10000   /* end of input: wait for the outbox */
/* The exit code when messages are still unconfirmed after the drain. */
#define CHAT_CLIENT_EXIT_UNCONFIRMED 3
#define CHAT_CLIENT_LOGOUT_MS 2000   /* wait for the logout reply */
#define CHAT_CLIENT_HELLO_MS 10000   /* an accepted link must say hello */
#define CHAT_CLIENT_MAX_INBOUND 64   /* links accepted, not yet through hello */
#define CHAT_CLIENT_MAX_LINE (CHAT_MAX_BODY + 256) /* a command line */
/* From the start of a connect to the login's reply: a server that accepts
 * and says nothing is given up on after this, with the reason. */
#define CHAT_CLIENT_CONNECT_MS 5000
/* The longest line read from the server. Frames longer than the server's
 * max_frame (and shorter than this) are reported and skipped; the
 * connection stays. Only a line longer than this cuts it. */
#define CHAT_CLIENT_MAX_READ (8u << 20)

typedef struct chat_client_opts {
  chat_servers_t servers;         /* --server: one address or a cluster's */
  int tls;                        /* --tls: the server link speaks TLS */
  const char *tls_ca;             /* --tls-ca FILE, or NULL: system CAs */
  char user[CHAT_MAX_NAME + 1];
  char password[CHAT_MAX_PASSWORD + 1];
  int do_register;
  int p2p_port;                   /* 0: any free port */
  int no_p2p;
  char p2p_host[CHAT_HOST_MAX];   /* "" unless --p2p-host */
  int json;
  int no_bell;                    /* --no-bell */
  int listen_only;                /* --listen-only: no stdin, until a signal */
  const char *to;                 /* --to USER (one-shot, with message) */
  const char *message;            /* --message TEXT */
} chat_client_opts_t;

typedef enum chat_net_state {
  CHAT_NET_DOWN = 0,   /* waiting for the reconnect timer */
  CHAT_NET_CONNECTING, /* TCP connect in progress */
  CHAT_NET_WELCOME,    /* connected, welcome not read yet */
  CHAT_NET_REGISTER,   /* register sent */
  CHAT_NET_LOGIN,      /* login sent */
  CHAT_NET_CONTACTS,   /* logged in, contacts asked */
  CHAT_NET_READY,      /* usable */
  CHAT_NET_LOGOUT      /* logout sent, closing */
} chat_net_state_t;

typedef struct chat_peer chat_peer_t; /* peer.c */
typedef struct chat_race chat_race_t; /* peer_race.c: one attempt across NATs */

/* The NAT ways a connect reply or an expect offers (docs/NAT.md), beside
 * the plain dial. Borrowed for one call. */
typedef struct chat_dial_plan {
  const json_t *lan;      /* ok: the listener's LAN addresses, or NULL */
  int reverse;            /* ok: the target dials back / expect: dial back */
  const char *punch_host; /* the other side's server-connection address */
  int punch_port;
  int64_t punch_ms;       /* the first punch try, ms from now; -1: none */
} chat_dial_plan_t;

/* peer_dial flags */
#define CHAT_DIAL_PUNCH 1      /* leave from the server connection's port */
#define CHAT_DIAL_TLS_ACCEPT 2 /* take the TLS server's part (a punch of the
                                * target: the asker is the TLS client) */

/* How the core reaches the world; every function gets the env's ctx.
 * Closing is asynchronous: after server_abort or peer_close the transport
 * reports the end later (chat__session_closed / chat__peer_closed), never
 * from inside the call, which may come from deep inside the core. */
typedef struct chat_client_env {
  uint64_t (*now)(void *ctx); /* monotonic ms: deadlines */
  /* One frame to the server (borrowed). 0 or a negative error. Only called
   * between chat__session_connected and chat__session_closed. */
  int (*server_send)(void *ctx, const json_t *obj);
  /* Cut the server connection now; chat__session_closed follows. */
  void (*server_abort)(void *ctx);
  /* Open a link for p to host:port (the outbox's dial) and store the
   * transport's handle for it in *link. 0, or a negative error when no link
   * exists (the outbox's handshake timeout then takes the message to the
   * relay); a link that cannot connect is reported through
   * chat__peer_closed. */
  int (*peer_dial)(void *ctx, chat_peer_t *p, const char *host, int port,
                   int flags, void **link);
  int (*peer_send)(void *ctx, void *link, const json_t *obj); /* borrowed */
  /* graceful: after the output queued so far is flushed; else at once. */
  void (*peer_close)(void *ctx, void *link, int graceful);
  /* Stop / restart handing frames of this link to the core. */
  void (*peer_pause)(void *ctx, void *link);
  void (*peer_resume)(void *ctx, void *link);
  void (*event)(void *ctx, const json_t *ev); /* {"event":...}, borrowed */
  /* The first login succeeded: start reading commands. 0 or < 0 (exit 1). */
  int (*input_start)(void *ctx);
  /* Optional (NULL: the monotonic clock stands in): ms since the epoch,
   * the ts of messages sent. */
  int64_t (*wall)(void *ctx);
  /* Optional (NULL: nothing is kept): one message shown or sent in the
   * conversation with conv (a user, or a group when is_group)... */
  void (*hist_add)(void *ctx, const char *conv, int is_group,
                   const char *from, const char *body, size_t body_len,
                   int64_t ts);
  /* ...and the last n of them, oldest first, as a new JSON array of
   * {"ts","from","body"} (NULL: none). */
  json_t *(*hist_read)(void *ctx, const char *conv, int is_group, int n);
  /* The key the other end of link proved in its TLS handshake (PROTOCOL.md
   * 7), as CHAT_KEY_LEN lowercase hex digits. 0, or < 0 when it proved
   * none (no handshake yet, or no TLS). NULL: no link ever proves a key,
   * so every direct link is refused (bad_key / bad_ticket). */
  int (*peer_key)(void *ctx, void *link, char hex[CHAT_KEY_LEN + 1]);
} chat_client_env_t;

typedef struct chat_client {
  const chat_client_env_t *env;
  void *env_ctx;
  chat_client_opts_t opts;
  int color;       /* human output with ANSI colours */
  int interactive; /* stdin and stdout are a terminal: the prompt */

  /* server session (session.c) */
  chat_net_state_t net;      /* DOWN exactly when there is no connection */
  int heartbeat_ms;          /* the welcome's */
  size_t max_frame;          /* the welcome's, for frames read */
  chat_servers_t servers;    /* the --server list and which one is tried
                              * (the transport connects to its current) */
  int64_t reconnect_ms;      /* chat__session_closed's choice of delay */
  char start_why[512];       /* before the first login: why each address
                              * failed, for the exit's one line */
  int ever_ready;            /* a login has succeeded once */
  int registered;            /* --register done */
  int oversize_cut;          /* the last connection ended over a long line */
  char disconnect_reason[192]; /* room for OpenSSL's reason */
  char key[CHAT_KEY_LEN + 1]; /* our direct-link key, announced at every
                              * login; "" (none) until the driver sets it
                              * before the first connect */
  char token[65];            /* the session token the server issued, or "":
                              * reconnects log in with it, not the password
                              * (no argon2 run per reconnect) */
  chat_reqs_t reqs;          /* requests awaiting their reply */

  /* decisions */
  chat_roster_t roster;
  chat_outbox_t *ob;
  chat_dedup_t *dedup;
  chat_tickets_t *tickets;

  /* direct links (peer.c) */
  int p2p_port;              /* the bound port, 0 with --no-p2p */
  chat_peer_t *peers;        /* every link, any state (peer.c) */
  int n_inbound;             /* accepted, before the hello is decided */
  chat_race_t *races;        /* attempts across NATs under way (peer_race.c) */
  const chat_dial_plan_t *dial_plan; /* during chat_outbox_connect_ok */
  char lan[CHAT_MAX_LAN][CHAT_IP_MAX]; /* announced at login (the driver
                              * fills them: the machine's addresses) */
  int n_lan;

  /* conversations: where lines without a leading '/' go, unread counts */
  chat_convs_t convs;
  int prompt_dirty;          /* the prompt should show a change */
  int64_t wait_ms;           /* /wait: the script reader pauses this long */
  int reconnect_asked;       /* /reconnect, for the transport */

  /* lifecycle */
  int64_t stop_at;           /* drain or logout deadline, -1: none */
  int input_done;            /* end of input or /quit: drain, then stop */
  int stopping;              /* logging out / closing everything */
  int finished;              /* stopped with no connection: nothing more */
  int kicked;
  int exit_code;
  unsigned failed_sends;     /* messages the outbox gave up on */
} chat_client_t;

/* client.c */
/* The core: everything goes through env (ctx); no socket, terminal, signal,
 * timer or clock of its own. loop is not used (it is kept for the drivers
 * written when the core had timers). Free with chat_client_free. */
int chat_client_init_core(chat_client_t *c, uv_loop_t *loop,
                          const chat_client_opts_t *opts,
                          const chat_client_env_t *env, void *ctx);
void chat_client_free(chat_client_t *c);
/* When chat__client_tick is next due (env clock, ms), or -1. */
int64_t chat_client_next_deadline(chat_client_t *c);
/* After every event: ends a drain that is complete. */
void chat_client_settle(chat_client_t *c);
uint64_t chat__client_now(chat_client_t *c);
/* The env's wall clock (ms since the epoch). */
int64_t chat__client_wall(chat_client_t *c);
/* A message for the env's history (env->hist_add), if it keeps one. */
void chat__client_record(chat_client_t *c, const char *conv, int is_group,
                         const char *from, const char *body, size_t len,
                         int64_t ts);
/* Runs every deadline due at now (and settles). */
void chat__client_tick(chat_client_t *c);
/* End of input or /quit (drain = wait for the outbox first). */
void chat__client_finish(chat_client_t *c, int drain);
/* Stops: log out if possible, close every link; exit with code. The core
 * is finished once the server connection is gone too. */
void chat__client_stop(chat_client_t *c, int code);
/* A fresh 128-bit msg_id in hex (33 bytes with the NUL). */
void chat__client_new_msg_id(char out[33]);
/* An event for the env (steals ev: {"event":...}). */
void chat__out_event(chat_client_t *c, json_t *ev);
/* A line for people only (ignored with --json). */
void chat__out_info(chat_client_t *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void chat__out_error(chat_client_t *c, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* session.c: the server conversation, whatever carries it. */
/* Sends obj (borrowed) to the server. Returns 0 or -ENOTCONN etc. */
int chat__session_send(chat_client_t *c, const json_t *obj);
/* A request (steals obj): recorded in c->reqs as kind with its subject
 * (arg, arg2 may be NULL), given its id, and sent. 0 or a negative error
 * (then it is forgotten: no reply can come). */
int chat__session_request(chat_client_t *c, json_t *obj, chat_req_kind_t kind,
                          const char *arg, const char *arg2);
/* The transport connected: the welcome comes next. */
void chat__session_connected(chat_client_t *c);
/* One frame the server sent (borrowed), in any state. */
void chat__session_on_frame(chat_client_t *c, const json_t *obj);
/* The connection is gone (status: 0, UV_EOF, -CHAT_E_FRAME_TOO_LARGE or an
 * error). Returns 1 when the caller should connect again, to the servers'
 * new current address after chat__session_backoff ms; 0 when the client
 * stops (asked to, or no address answered before the first login). */
int chat__session_closed(chat_client_t *c, int status);
/* The delay before that connect: 0 to the next address of a round at once,
 * else a jittered backoff (with the reconnecting event). */
int64_t chat__session_backoff(chat_client_t *c);
/* Why the connection ends, for the disconnected event (the first wins). */
void chat__session_reason(chat_client_t *c, const char *reason);
/* Drops the session (reason for the disconnected event) and reconnects. */
void chat__session_drop(chat_client_t *c, const char *reason);
void chat__session_logout(chat_client_t *c);
/* A received message (relay or direct): dedup, show, remember. Returns 1
 * when it was new. */
int chat__session_show_message(chat_client_t *c, const char *from,
                               const char *group, const char *msg_id,
                               const char *body, size_t body_len, int64_t ts,
                               const char *via, const char *path,
                               int offline);

/* peer.c: the direct-link protocol over links the env provides. */
/* A peer dialed us (link: the transport's handle). Returns the core's peer,
 * or NULL when the link must be cut (too many half-open links, stopping,
 * out of memory); then chat__peer_closed is not called for it. */
chat_peer_t *chat__peer_accepted(chat_client_t *c, void *link);
/* One frame read on p's link (borrowed). */
void chat__peer_on_frame(chat_peer_t *p, const json_t *obj);
/* A line on p's link that was not a frame. */
void chat__peer_on_bad_frame(chat_peer_t *p, const chat_error_t *err);
/* p's link is closed (exactly once); p is freed. */
void chat__peer_closed(chat_peer_t *p);
const char *chat__peer_name(const chat_peer_t *p);
/* Cuts inbound links that did not say hello within CHAT_CLIENT_HELLO_MS. */
void chat__peer_sweep(chat_client_t *c);
/* When the next such link is due to be cut, or -1. */
int64_t chat__peer_next_deadline(chat_client_t *c);
/* Dials for the outbox; peer_hello waits for chat__peer_dialed. */
void chat__peer_dial(chat_client_t *c, uint64_t link, const char *to,
                     const char *host, int port, const char *ticket,
                     const char *key, const chat_dial_plan_t *plan);
/* p's dialed link connected and its TLS handshake is done (status 0), the
 * handshake failed (UV_EPROTO: the listener proved no key; its messages
 * fall back with bad_key), or the connect failed (another error; then
 * chat__peer_closed tells the outbox: refused). Called once per dial,
 * before chat__peer_closed. With status 0 the listener's key is checked
 * against the one the server vouched for before the ticket is shown. */
void chat__peer_dialed(chat_peer_t *p, int status);
/* p's dialed link has its TCP connection and its TLS handshake runs: a
 * punch try's window no longer cuts it off (docs/NAT.md). */
void chat__peer_tcp_up(chat_peer_t *p);
int chat__peer_send(chat_client_t *c, uint64_t link, const json_t *obj);
void chat__peer_close_link(chat_client_t *c, uint64_t link);
/* The server's expect; host:port (NULL: none) is where to dial back. */
void chat__peer_on_expect(chat_client_t *c, const char *from,
                          const char *ticket, const char *key,
                          const char *host, int port,
                          const chat_dial_plan_t *plan);
void chat__peer_close_all(chat_client_t *c);
void chat__peer_on_ticket(void *ctx, void *waiter,
                          chat_ticket_verdict_t verdict);

/* commands.c: one line the user typed. */
void chat__cmd_run(chat_client_t *c, char *line);
/* Sends text (len bytes) to user to or group group through the outbox. */
void chat__cmd_send(chat_client_t *c, const char *to, const char *group,
                    const char *text, size_t len);

#endif /* CHAT_CLIENT_H */
