/* bench.h -- chat-bench internals: the run, its users, pairs and peer links.
 *
 * One process, one libuv loop. A run goes through phases (bench_phase.c):
 * register every user, optionally open idle sessions and weigh the server,
 * log the pairs in, make them contacts (direct mode), then let each sender
 * push M messages to its receiver with at most W outstanding, and wait for
 * the receipts. Each user has one server connection (bench_session.c);
 * direct mode adds peer links (bench_peer.c). The hot path -- building a
 * message, checking a delivery -- is in bench_traffic.c.
 *
 * Messages flow one way: sender i -> receiver i. A body is
 * "<seq>:<send ns>:" followed by filler that depends on seq, so a delivery
 * can be checked completely and its latency measured without keeping any
 * per-message state on the sending side.
 */
#ifndef CHAT_BENCH_H
#define CHAT_BENCH_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <uv.h>

#include "bench_hist.h"
#include "chat_conn.h"
#include "chat_protocol.h"
#include "chat_tls.h"

#define BENCH_NAME_MAX 33       /* a user name and its NUL */
#define BENCH_PREFIX_MAX 20     /* leaves room for "s123456" in a name */
#define BENCH_MIN_SIZE 32       /* "<seq>:<ns>:" must fit in a body */
#define BENCH_EXPECTS 4         /* tickets a receiver remembers */
#define BENCH_STALL_S 10        /* no progress this long ends the run */
#define BENCH_RECEIPT_WAIT_S 5  /* after the last delivery */

typedef enum bench_mode {
  BENCH_RELAY = 0, BENCH_DIRECT, BENCH_OFFLINE, BENCH_GROUP
} bench_mode_t;

typedef struct bench_opts {
  char host[256];
  int port;
  char host_b[256];        /* --server-b: the receivers' server, "" for none */
  int port_b;
  int pairs;
  long messages;
  size_t size;
  bench_mode_t mode;
  int window;
  int json;
  int idle;                /* idle sessions to open, 0 for none */
  int server_pid;          /* for VmRSS, 0 when unknown */
  int concurrency;         /* registers/logins in flight */
  double timeout_s;
  char password[CHAT_MAX_PASSWORD + 1];
  char prefix[BENCH_PREFIX_MAX + 1];
  int pairs_given;         /* --pairs was on the command line */
  int group_size;          /* group mode: members, the owner included */
  int tls;                 /* server connections speak TLS */
  char tls_ca[4096];       /* --tls-ca, "" for the system's CAs */
  long handshakes;         /* --handshakes N: only open N TLS connections */
} bench_opts_t;

/* Error kinds, counted separately and reported by name. */
typedef enum bench_err {
  BENCH_E_LOST = 0,        /* accepted by the server, never delivered */
  BENCH_E_DUPLICATE,       /* a (sender, seq) delivered twice */
  BENCH_E_REORDERED,       /* delivered out of per-pair sequence */
  BENCH_E_BAD_BODY,        /* wrong length, content or msg_id */
  BENCH_E_BAD_FRAME,       /* undecodable or unexpected frame */
  BENCH_E_BAD_STATUS,      /* ok with the wrong status for the mode */
  BENCH_E_UNANSWERED,      /* sent, neither accepted nor refused */
  BENCH_E_MISSING_RECEIPT, /* acked but no receipt reached the sender */
  BENCH_E_DISCONNECTED,    /* a connection ended before the run did */
  BENCH_E_CONNECT,         /* could not connect or set up a session */
  BENCH_E_TIMEOUT,         /* --timeout or a stall ended the run */
  BENCH_E_INTERRUPTED,     /* SIGINT or SIGTERM ended the run */
  BENCH_E_REPLY,           /* an error reply; also counted per code */
  BENCH_E__COUNT
} bench_err_t;

typedef enum bench_role {
  BENCH_SENDER = 0, BENCH_RECEIVER, BENCH_IDLE,
  BENCH_G_OWNER, BENCH_G_MEMBER /* group mode (bench_group.c) */
} bench_role_t;

typedef enum bench_ustate {
  BENCH_U_NONE = 0,
  BENCH_U_CONNECTING,  /* waiting for connect and welcome */
  BENCH_U_REGISTERING,
  BENCH_U_REGISTERED,  /* connection closing or closed */
  BENCH_U_LOGGING_IN,
  BENCH_U_READY,
  BENCH_U_CLOSED
} bench_ustate_t;

typedef enum bench_phase {
  BENCH_P_START = 0,
  BENCH_P_REGISTER,
  BENCH_P_IDLE_LOGIN,
  BENCH_P_IDLE_SETTLE,
  BENCH_P_LOGIN,
  BENCH_P_CONTACTS,
  BENCH_P_LINKS,
  BENCH_P_MESSAGES,
  BENCH_P_FLUSH,
  BENCH_P_RECEIPTS,
  BENCH_P_DONE
} bench_phase_t;

struct bench;
struct bench_pair;
struct bench_peer;

typedef struct bench_expect {
  char from[BENCH_NAME_MAX];
  char ticket[CHAT_TICKET_LEN + 1];
  char key[CHAT_TLS_KEY_HEX]; /* the dialer's, as the server vouched */
  int used;
} bench_expect_t;

typedef struct bench_user {
  chat_conn_t conn;         /* the server connection, reused per phase */
  struct bench *b;
  struct bench_pair *pair;  /* NULL for idle users */
  bench_role_t role;
  bench_ustate_t state;
  int conn_live;            /* conn is initialised and not yet closed */
  int want_login;           /* the connection is for a login, else register */
  char name[BENCH_NAME_MAX];
  uint64_t login_ns;        /* when its login was sent */
  bench_expect_t expects[BENCH_EXPECTS];
  int next_expect;
  struct bench_peer *waiting; /* a peer_hello waiting for our expect */
  long group_next;          /* group member: next seq it expects */
  struct bench_user *next_queued;
} bench_user_t;

/* Across nodes (--server-b) a contact_add answered on one node reaches the
 * other through the cluster a little later, so each step of making a pair
 * contacts waits for the event that shows the other side has it. */
enum {
  BENCH_CS_SND_OK = 1,      /* the sender's contact_add was answered */
  BENCH_CS_REQUEST = 2,     /* the receiver saw the sender's request */
  BENCH_CS_RCV_OK = 4,      /* the receiver's contact_add was answered */
  BENCH_CS_ADDED = 8        /* the sender saw contact_added (receiver) */
};

typedef struct bench_pair {
  bench_user_t snd, rcv;
  /* sender side */
  long next_seq;            /* next message to send */
  long accepted;            /* ok'ed by the server (or acked by the peer) */
  long inflight;            /* sent, not yet ok'ed or acked */
  long refused;             /* answered with an error */
  long receipts;
  long answered_next;       /* seq the next ok/ack must be for */
  int contact_step;         /* direct: 0 none, 1 sender added, 2 both */
  int contact_seen;         /* --server-b: BENCH_CS_* replies and events */
  struct bench_peer *link;  /* direct: the sender's dialled link */
  char *line;               /* scratch for one outgoing frame, owned */
  size_t line_cap;
  /* receiver side */
  long delivered;           /* first, correct deliveries */
  long arrived;             /* distinct seqs that arrived, good or bad */
  long expect_seq;          /* next seq in order */
  uint8_t *seen;            /* bitmap of delivered seqs, owned */
  bench_phase_t done_in;    /* the phase this pair last finished */
} bench_pair_t;


/* Group mode: users[0] owns the group and sends; the rest receive. */
typedef struct bench_group {
  bench_user_t *users;      /* n of them, owned */
  int n;
  char name[BENCH_NAME_MAX];
  int contacts, added;      /* set-up steps done */
  long seq;                 /* the message in flight */
  uint64_t sent_ns;         /* when its group_send went out */
  int got;                  /* its deliveries so far */
  int ok_in;                /* its ok arrived */
  int64_t relayed;          /* "relayed" of the last ok */
  char *line;               /* scratch for the group_send, owned */
  size_t line_cap;
} bench_group_t;

/* A window of time and how many things happened in it. */
typedef struct bench_span {
  uint64_t start_ns, end_ns;
  long count;
} bench_span_t;

typedef struct bench {
  bench_opts_t opts;
  uv_loop_t *loop;
  chat_io_t *io;
  struct sockaddr_storage server_addr;
  struct sockaddr_storage server_addr_b; /* --server-b, when given */
  chat_tls_ctx_t *tls_ctx;  /* --tls: a client context, else NULL */
  /* direct mode: the peer context every bench user's links use (one key
   * for all, announced at every login), as chat-client's direct links */
  chat_tls_ctx_t *peer_tls;
  char peer_key[CHAT_TLS_KEY_HEX];
  char run_tag[9];          /* random hex in every msg_id of this run */
  uint64_t t0_ns;           /* bodies carry send times relative to this */

  bench_pair_t *pairs;
  bench_user_t *idle;       /* opts.idle of them */
  bench_group_t group;      /* group mode */
  long users_total;         /* pair users + idle users */
  long login_users;         /* logged in during LOGIN */
  long live_conns;          /* connections not yet through on_close */

  bench_phase_t phase;
  long phase_pending;       /* users or pairs still to finish the phase */
  bench_user_t *queue_head, *queue_tail; /* waiting for a setup slot */
  int slots_used;

  /* direct mode */
  uv_tcp_t listener;
  int listener_live;
  int listener_port;
  struct bench_peer *peers; /* every live peer link */

  uv_timer_t tick;          /* progress, stalls and the deadline */
  uv_timer_t settle;
  uv_timer_t reap;          /* frees chat_io once all conns closed */
  uv_signal_t sigint, sigterm;
  uint64_t start_ns, end_ns;
  uint64_t deadline_ns;
  uint64_t receipt_deadline_ns;
  uint64_t last_shown_ns;
  uint64_t last_deliver_ns;
  int tty;                  /* stderr is a terminal */
  uint64_t last_progress_ns;
  uint64_t progress;        /* bumps on any useful event */
  uint64_t last_progress_seen;
  int progress_shown;       /* a progress line is on the terminal */
  int stopping;
  int interrupted;

  /* results */
  bench_span_t reg, login, idle_login, msgs, flush;
  long sent;                /* messages handed to the connection */
  long accepted, refused, arrived; /* totals, set at the end */
  long not_sent;            /* never sent: the run ended first */
  long delivered;
  long receipts;
  long errors[BENCH_E__COUNT];
  long reply_codes[CHAT_E__END - CHAT_E_BAD_JSON]; /* by error code */
  long reply_other;
  bench_hist_t lat;
  long rss_before_kb, rss_after_kb;
  /* --handshakes (bench_handshake.c) */
  struct bench_hs *hs;      /* opts.concurrency connection slots, owned */
  long hs_started, hs_done;
  bench_span_t hs_span;
  long long hs_server_cpu_ns; /* over hs_span, -1 without --server-pid */
  long long hs_bench_cpu_ns;
  char stop_reason[512];
} bench_t;

/* bench_opts.c */
/* Returns 0 to run, 1 when --help/--version printed (exit 0), -EINVAL on a
 * usage error (printed to stderr, exit 2). */
int bench_opts_parse(bench_opts_t *o, int argc, char **argv);

/* bench_phase.c */
int bench_run(bench_t *b);                  /* runs the loop to the end */
void bench_free(bench_t *b);                /* after the report */
void bench_phase_check_pair(bench_t *b, bench_pair_t *p);
void bench_phase_contact_ok(bench_t *b, bench_user_t *u);
/* A contact_request (from) or contact_added (user) event reached u. */
void bench_phase_contact_event(bench_t *b, bench_user_t *u, int added,
                               const char *name);
void bench_phase_link_ready(bench_t *b, bench_pair_t *p);
void bench_phase_user_done(bench_t *b, bench_user_t *u); /* setup step done */
void bench_phase_step_done(bench_t *b);     /* one of phase_pending done */
void bench_phase_check(bench_t *b);         /* re-evaluates the phase end */
void bench_stop(bench_t *b, const char *why);
void bench_note_error(bench_t *b, bench_err_t kind, long n);
void bench_note_reply(bench_t *b, const char *code);
const char *bench_err_name(bench_err_t kind);

/* bench_session.c: a user's server connection */
int bench_session_open(bench_user_t *u, int login);
void bench_session_close(bench_user_t *u);
int bench_session_send_line(bench_user_t *u, const char *line, size_t len);
/* A set-up frame from a printf format (names and passwords are bounded well
 * below its 1 KiB; a longer one is not sent). */
void bench_session_send_fmt(bench_user_t *u, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* bench_traffic.c: messages */
int bench_traffic_pair_init(bench_t *b, bench_pair_t *p);
void bench_traffic_pair_free(bench_pair_t *p);
/* Sends as many messages as the window allows, over the relay or the link. */
void bench_traffic_pump(bench_t *b, bench_pair_t *p);
/* The sender got an ok / error for message seq (relay and offline). */
void bench_traffic_on_ok(bench_t *b, bench_pair_t *p, long seq,
                         const char *msg_id, const char *status);
void bench_traffic_on_send_error(bench_t *b, bench_pair_t *p,
                                 const chat_msg_t *m);
/* A delivery reached the receiver (relay deliver or direct msg). */
void bench_traffic_on_deliver(bench_t *b, bench_pair_t *p, const char *msg_id,
                              const char *body, size_t body_len, int offline,
                              int direct);
void bench_traffic_on_peer_ack(bench_t *b, bench_pair_t *p,
                               const char *msg_id);
int bench_pair_done(const bench_t *b, const bench_pair_t *p);
/* The body of message seq, exactly opts.size bytes, at dst. */
void bench_traffic_put_body(const bench_t *b, char *dst, long seq,
                            uint64_t rel_ns);
/* The send time (ns since t0) in a body of message seq, or -1 when the body
 * is not exactly what was sent. */
int64_t bench_traffic_check_body(const bench_t *b, long seq, const char *body,
                                 size_t len);
/* The seq in a msg_id "<run tag>-<seq>" of this run, or -1. */
long bench_traffic_seq(const bench_t *b, const char *msg_id);

/* bench_group.c: --mode group */
int bench_group_init(bench_t *b);
void bench_group_free(bench_t *b);
void bench_group_start_setup(bench_t *b);    /* phase CONTACTS */
void bench_group_start_messages(bench_t *b); /* phase MESSAGES */
void bench_group_on_ok(bench_user_t *u, const chat_msg_t *m);
void bench_group_on_deliver(bench_user_t *u, const chat_msg_t *m);
int bench_group_setup_id(const char *id);
void bench_group_tally(bench_t *b);

/* bench_peer.c: direct links */
int bench_peer_listen(bench_t *b);
int bench_peer_dial(bench_t *b, bench_pair_t *p, const chat_msg_t *ok);
void bench_peer_on_expect(bench_user_t *rcv, const chat_msg_t *m);
int bench_peer_send_line(struct bench_peer *peer, const char *line,
                         size_t len);
void bench_peer_close_all(bench_t *b);
void bench_peer_expire(bench_t *b, uint64_t now);

/* bench_report.c */
void bench_report_plain(const bench_t *b, FILE *out);
void bench_report_json(const bench_t *b, FILE *out);
long bench_errors_total(const bench_t *b);
/* bench_rss.c: VmRSS of pid in KiB, or a negative errno. */
long bench_rss_kb(int pid);
/* User + system CPU time of pid in ns, or a negative errno. */
long long bench_cpu_ns(int pid);

/* bench_handshake.c: --handshakes N, opts.concurrency TLS connections at a
 * time, each closed as soon as its handshake is done. */
int bench_handshake_start(bench_t *b);
void bench_handshake_close_all(bench_t *b);
void bench_handshake_free(bench_t *b);

uint64_t bench_now_ns(void);

#endif /* CHAT_BENCH_H */
