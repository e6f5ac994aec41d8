/* srv.h -- the server's decision core: sessions, the cache of users and
 * groups (registry.h), the in-memory mailboxes, and the handlers that turn
 * requests into replies, events and engine operations.
 *
 * The engine (engine.h) is the authority on everything that outlives a
 * session; the core holds what is live and loads the rest when a request
 * needs it (resident.c), so a node's memory follows its sessions, not its
 * store.
 *
 * No sockets here. A session talks to its connection through a chat__sink_t
 * (net.c backs it with a chat_conn_t; unit tests capture the frames), so the
 * whole protocol logic runs in tests with a real loop and engine but
 * without a socket.
 *
 * Lifetime: the transport creates a session with chat__srv_session_new()
 * (holding one reference), feeds it frames, and calls chat__srv_session_end()
 * when the connection goes away, then chat__session_unref(). Asynchronous work
 * (password hashing, commits) holds its own reference and checks
 * session->ended before touching the connection; the sink's release() runs
 * when the last reference goes.
 */
#ifndef CHAT_SRV_H
#define CHAT_SRV_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "chat_protocol.h"
#include "bus.h"
#include "engine.h"
#include "hash.h"
#include "mailbox.h"
#include "ratelimit.h"
#include "server.h"
#include "registry.h"

#define CHAT_SRV_NAME "chat-server/" CHAT_VERSION
#define CHAT_HEARTBEAT_DEFAULT 30
#define CHAT_MAX_CLIENTS_DEFAULT 10000
#define CHAT_RATE_LIMIT_DEFAULT 1000
#define CHAT_MAX_OUTPUT_DEFAULT (1u << 20) /* bytes queued per connection */
/* rate_limited answers in a row after which the connection is closed. */
#define CHAT_MAX_RATE_LIMITED_RUN 100
#define CHAT_OBSERVED_HOST_MAX 64
/* Messages pushed to one recipient and not yet acked: at most this many,
 * and at most max_output / CHAT_WINDOW_DIV bytes of deliver lines as sent,
 * escapes included (at least one message),
 * so a recipient that does not ack cannot make the server queue without
 * bound; the rest waits (written to the store) until acks come. */
#define CHAT_WINDOW_MSGS 1024
#define CHAT_WINDOW_DIV 4
/* Messages held for one recipient (stored, waiting or pushed and unacked):
 * beyond this a send to it is refused with rate_limited and
 * "reason":"offline_quota", so one silent account cannot fill memory and
 * disk. 0 turns the quota off. */
#define CHAT_OFFLINE_QUOTA_DEFAULT 10000
/* Seconds a connection may take to log in before it is told
 * not_authenticated and closed (long enough to type JSON into nc). */
#define CHAT_LOGIN_TIMEOUT_DEFAULT 60
/* A relayed message not acked within this is written to the store in the
 * background, so a crash of the server loses nothing older (PROTOCOL.md
 * section 3); acks that come in time keep the hot path off the disk. */
#define CHAT_RELAY_WRITE_MS 1000
/* Most held messages read from the store in one page. */
#define CHAT_PAGE_MAX 256
/* A session token stays valid this long after its last use. */
#define CHAT_TOKEN_TTL_MS (30LL * 24 * 3600 * 1000)


/* How a session reaches its connection. Every function gets the sink's ctx. */
typedef struct chat__sink {
  /* Queue one frame / one encoded line (ending in LF). 0, -ENOBUFS when the
   * output cap was hit (the transport then ends the session), -EPIPE. */
  int (*send)(void *ctx, const json_t *obj);
  int (*send_line)(void *ctx, const char *line, size_t len);
  void (*close)(void *ctx);   /* flush what is queued, then close */
  void (*pause)(void *ctx);   /* hold further frames back */
  void (*resume)(void *ctx);
  void (*release)(void *ctx); /* the session's last reference is gone */
  /* Optional (NULL: unknown): the connection's smoothed round trip in ms as
   * the kernel measured it (TCP_INFO), or < 0. Times a hole punch. */
  int (*rtt_ms)(void *ctx);
} chat__sink_t;

typedef struct chat__srv chat__srv_t;

typedef struct chat__session {
  struct chat__session *next, *prev; /* srv->sessions */
  chat__srv_t *srv;
  const chat__sink_t *sink;
  void *ctx;
  chat__user_t *user;       /* once logged in; stays set after the end */
  char *p2p_host;          /* owned; NULL: use host */
  uint64_t last_read_ms;   /* uv_now() of the last line read (blank too) */
  uint64_t opened_ms;      /* uv_now() when the connection was accepted */
  chat__ratelimit_t rl;
  chat__hash_req_t *hash_req; /* the register/login hash it waits for, if
                              * any: cancelled when the session ends or
                              * closes, so an abandoned one is never run */
  int refs;
  uint16_t p2p_port;
  uint16_t limited_run;    /* rate_limited answers in a row */
  uint8_t status;          /* chat_status_t while logged in */
  uint8_t failed_logins;
  uint8_t proto_errors;
  unsigned busy : 1;       /* a register/login waits for the pool */
  unsigned ended : 1;      /* no more frames in or out */
  unsigned closing : 1;    /* close requested */
  unsigned dup_stored : 1; /* the request being run repeats a msg_id the
                            * store holds from this sender (resident.c) */
  char token[CHAT_TOKEN_HASH_HEX + 1]; /* hash of the token that opened or
                            * was issued to this session, or "" */
  char epoch[CHAT_BUS_EPOCH_LEN + 1]; /* cluster mode: this session's id
                            * in the directory (cluster.c), or "" */
  unsigned moved : 1;      /* a login on another node ended it */
  char key[CHAT_KEY_LEN + 1]; /* the direct-link key the login announced
                            * (PROTOCOL.md 7), or "": handed to peers with
                            * tickets, never checked by the server */
  char host[CHAT_OBSERVED_HOST_MAX]; /* observed peer address */
  uint16_t obs_port;       /* and port: where a hole punch aims (0: none) */
  uint8_t n_lan;           /* login's lan: the addresses a peer behind the
                            * same NAT dials (docs/DIRECT.md) */
  char lan[CHAT_MAX_LAN][CHAT_IP_MAX];
} chat__session_t;

struct chat__srv {
  uv_loop_t *loop;
  chat_server_config_t cfg;
  chat__registry_t reg;
  chat__mailbox_t mb;
  chat__engine_t *engine;        /* borrowed */
  struct chat__bus *bus;         /* borrowed; NULL on a single node */
  /* cluster: the inbox entries that carried messages here, oldest first,
   * until each is settled (cluster_send.c); the inbox is trimmed up to the
   * first unsettled one */
  struct chat__carry *carry_head, *carry_tail;
  char inbox_last[48];           /* the last entry read whole */
  char inbox_trimmed[48];        /* the last trim asked */
  chat__hash_pool_t *hashes;     /* borrowed, set after chat__srv_init; NULL:
                                 * hash on libuv's pool */
  chat__hmap_t loads;            /* name -> loads in flight (resident.c) */
  chat__hmap_t awaited;          /* seq (8 bytes, in the waiter) -> waiter:
                                 * PUTs whose request decides their fate
                                 * when the commit fails (store_retry.c) */
  chat__held_t *wr_head, *wr_tail; /* pushed, unwritten: oldest push first */
  uint64_t next_seq;             /* chat__srv_take_seq */
  int seq_slot;                  /* cluster: the bus slot next_seq is in */
  chat__session_t sessions;      /* list head (a sentinel) */
  size_t nsessions;
  size_t nlogged_in;
  char dummy_hash[128];         /* verified against for unknown users */
  char *line;                   /* scratch: one outgoing line (owned) */
  size_t line_cap;
  char *body;                   /* scratch: a fast-path body, unescaped;
                                 * CHAT_MAX_BODY bytes once used (owned) */
};

/* The seq of a new message: the next of the store's on one node; in
 * cluster mode a time-ordered seq in this node's bus slot (srv.c). */
uint64_t chat__srv_take_seq(chat__srv_t *srv);
/* Cluster mode: every seq taken from now on is above seq (a user who
 * moved here may have messages held with seqs of another node's clock). */
void chat__srv_seq_above(chat__srv_t *srv, uint64_t seq);

/* Sets up the core on loop with cfg over engine (borrowed): reads nothing
 * but the next seq. Returns 0, -EIO or -ENOMEM. */
int chat__srv_init(chat__srv_t *srv, uv_loop_t *loop,
                   const chat_server_config_t *cfg, chat__engine_t *engine);
/* The engine's fail hook (store_retry.c), set by chat__srv_init: adds
 * again the failed changes that memory still holds. */
void chat__srv_commit_failed(void *arg, const chat__store_op_t *ops, size_t n,
                             int status);
/* Frees the in-memory state; every session must have ended. */
void chat__srv_free(chat__srv_t *srv);

/* A new connection from host. Sends welcome. NULL on -ENOMEM. */
chat__session_t *chat__srv_session_new(chat__srv_t *srv,
                                       const chat__sink_t *sink, void *ctx,
                                       const char *host);
/* One frame read from the session's connection (obj borrowed). */
void chat__srv_on_frame(chat__srv_t *srv, chat__session_t *s,
                        const json_t *obj);
/* A line read from the session's connection, before it is parsed: the
 * hot requests (send, ack, group_send) go straight to their handlers when
 * chat_fast_request takes the line. Returns 1 when it was handled, 0 when
 * the line must be parsed and given to chat__srv_on_frame as usual. */
int chat__srv_on_fast_line(chat__srv_t *srv, chat__session_t *s,
                           const char *line, size_t len);
/* A complete line (blank lines too) was read at now_ms: the peer is alive.
 * An unfinished line must not be reported, or a peer trickling bytes would
 * never time out. Later times only. */
void chat__srv_on_line(chat__srv_t *srv, chat__session_t *s, uint64_t now_ms);
/* A line that was not a frame (bad_json or frame_too_large). */
void chat__srv_on_bad_frame(chat__srv_t *srv, chat__session_t *s,
                            const chat_error_t *err);
/* The session is over (closed, timed out, overflowed, shutting down): the
 * user goes offline, its pushed messages are written. Idempotent. Also asks
 * the sink to close. */
void chat__srv_session_end(chat__srv_t *srv, chat__session_t *s,
                           const char *why);
/* Ends every session whose last read is older than 3 x heartbeat, closes
 * (with not_authenticated) every connection not logged in within
 * login_timeout, writes relayed messages unacked for CHAT_RELAY_WRITE_MS,
 * and drops from the cache what no live session needs. */
void chat__srv_sweep(chat__srv_t *srv, uint64_t now_ms);
/* Writes every pushed message unacked since before now_ms - delay_ms. */
void chat__srv_write_relayed(chat__srv_t *srv, uint64_t now_ms,
                             uint64_t delay_ms);
/* Ends every session (shutdown). */
void chat__srv_end_all(chat__srv_t *srv);

void chat__session_ref(chat__session_t *s);
void chat__session_unref(chat__session_t *s);

/* ---- For the handlers ---------------------------------------------------- */

/* Sends obj (borrowed) / sends and drops obj (stolen); nothing once ended. */
int chat__session_send(chat__session_t *s, const json_t *obj);
int chat__session_send_new(chat__session_t *s, json_t *obj);
/* error reply for code (positive chat_code_t) with text (NULL: default),
 * counting protocol errors; the 10th closes. */
void chat__session_error(chat__session_t *s, const json_t *id, int code,
                         const char *text);
/* Sends one encoded line (ending in LF), as chat__session_send does a frame. */
int chat__session_send_line(chat__session_t *s, const char *line, size_t len);
/* The server's scratch buffer for writing one line with chat_line_*, at
 * least chat_line_max(body_len) bytes (*cap says how many); valid until the
 * next call. NULL when out of memory. */
char *chat__srv_line_buf(chat__srv_t *srv, size_t body_len, size_t *cap);
/* [{"user":name,"status":status}, ...] for users[0..n), in that order.
 * NULL when out of memory. */
json_t *chat__srv_user_list(chat__user_t *const *users, uint32_t n);
/* Replies ok with list (stolen) as field key. 0, or -ENOMEM (list NULL or
 * no reply could be made; nothing sent). */
int chat__srv_reply_list(chat__session_t *s, const json_t *id, const char *key,
                         json_t *list);
/* The ok to a send: {msg_id, status} ("relayed" or "stored"). */
void chat__srv_send_ok(chat__session_t *s, const json_t *id,
                       const char *msg_id, const char *status);
/* A stored 1:1 send's commit failed: nothing was accepted, so its counts
 * go back (to held, from sent_held) and the answer is internal. */
void chat__srv_store_failed(chat__session_t *s, const json_t *id,
                            chat__user_t *to, chat__user_t *from,
                            const char *msg_id, int status);
/* Closes after what is queued; the session ends when the connection does. */
void chat__session_close(chat__session_t *s);

/* A stored message's request waits for its PUT and decides what a failed
 * commit means: store_retry.c leaves that PUT alone. *seq must live until
 * chat__srv_unawait. */
void chat__srv_await(chat__srv_t *srv, const uint64_t *seq, void *waiter);
void chat__srv_unawait(chat__srv_t *srv, const uint64_t *seq);
/* Adds a store operation to the engine; a failure is logged. */
void chat__srv_log_op(chat__srv_t *srv, const chat__store_op_t *op);
void chat__srv_op2(chat__srv_t *srv, chat__store_op_kind_t kind, const char *a,
                   const char *b);
/* A PUT_MSG op (every string borrowed for the call). */
void chat__srv_put_msg(chat__srv_t *srv, const char *to,
                       const chat__user_t *from, const char *group,
                       const char *msg_id, const char *body, size_t body_len,
                       uint64_t seq, int64_t ts, int offline);
/* PUT_MSG for h; marks it written. */
void chat__srv_write_held(chat__srv_t *srv, chat__held_t *h);
/* PUT_MSG of a message that is not in memory (for an offline recipient, or
 * one whose window is full); counts it held. */
void chat__srv_store_msg(chat__srv_t *srv, chat__user_t *to, chat__user_t *from,
                         const char *group, const char *msg_id,
                         const char *body, size_t body_len, uint64_t seq,
                         int64_t ts);
/* Takes h (just added) onto the list of messages to write if unacked. */
void chat__srv_track_unwritten(chat__srv_t *srv, chat__held_t *h);
/* Drops h from memory (acked, or handed to the store), with its DEL_MSG
 * when acked and written. */
void chat__srv_drop_held(chat__srv_t *srv, chat__held_t *h, int acked);

/* Presence of u (its session's status or offline) to each of its contacts
 * that is logged in. */
void chat__srv_presence_to_contacts(chat__srv_t *srv, chat__user_t *u,
                                    chat_status_t status);
chat_status_t chat__srv_status_of(const chat__user_t *u);
/* Pushes h to its recipient's session as deliver; marks it pushed. Returns 0
 * or the sink's error. */
int chat__srv_push(chat__srv_t *srv, chat__held_t *h);
/* Whether a held message m read from the store for u is delivered with
 * "offline":true (PROTOCOL.md: stored while its recipient was away): when
 * it was stored so, or accepted before u's session began. In cluster mode
 * (bus != NULL) seqs are every node's clock, so its time decides. */
int chat__srv_held_offline(const chat__srv_t *srv, const chat__user_t *u,
                           const chat__stored_msg_t *m);
/* Nonzero when to may hold one more message under the offline quota. */
int chat__srv_quota_open(const chat__srv_t *srv, const chat__user_t *to);
/* The error for a send refused by the quota: rate_limited with
 * "reason":"offline_quota" (an optional field PROTOCOL.md allows). */
void chat__srv_quota_error(chat__session_t *s, const json_t *id,
                           const char *to);
/* The deliver line a message from `from` (in group, or NULL) would take, in
 * bytes as sent (chat_line_deliver_len). When its frame would exceed
 * max_frame, returns 0 and fills err (bad_request naming body): nobody may
 * be sent a frame longer than max_frame (PROTOCOL.md section 2). */
size_t chat__srv_deliver_len(const chat__srv_t *srv, const char *from,
                             const char *group, const chat_msg_t *m,
                             chat_error_t *err);
/* Nonzero when u's window has room for one more deliver line of len bytes. */
int chat__srv_window_open(const chat__srv_t *srv, const chat__user_t *u,
                          size_t len);
/* Nonzero when a new message for the logged-in u may be pushed now: nothing
 * older waits in the store and the window has room for len bytes. */
int chat__srv_can_push(const chat__srv_t *srv, const chat__user_t *u,
                       size_t len);
/* Reads u's next page of held messages from the store and pushes them, if
 * u is logged in, the store may hold more, and the window has room. */
void chat__srv_pump(chat__srv_t *srv, chat__user_t *u);

/* ---- resident.c: loading what a request needs --------------------------- */

/* Runs the request m from s now when everything it names is in the cache,
 * or loads what is missing first (the session's input waits meanwhile, so
 * requests stay in order). */
void chat__srv_run_resident(chat__srv_t *srv, chat__session_t *s,
                            const chat_msg_t *m);
/* Loads user name (full: with its lists, for a login; token_hash: also that
 * token's last use) and calls cb(arg, status, u) once it is in the cache:
 * u NULL when there is no such user. A load of a name already in flight is
 * shared. 0 or -ENOMEM. */
typedef void (*chat__srv_user_cb)(void *arg, int status, chat__user_t *u,
                                  int64_t token_used);
int chat__srv_load_user(chat__srv_t *srv, const char *name, int full,
                        const char *token_hash, chat__srv_user_cb cb,
                        void *arg);
/* Frees the loads' bookkeeping (shutdown). */
void chat__srv_loads_free(chat__srv_t *srv);
/* Internal: hands u's in-memory messages to the store (session end, kick). */
void chat__srv_unload_mailbox(chat__srv_t *srv, chat__user_t *u);
int64_t chat__srv_now_wall_ms(void);

#endif /* CHAT_SRV_H */
