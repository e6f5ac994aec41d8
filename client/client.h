/* client.h -- chat-client's run-time state, shared by its thin libuv layers:
 * net.c (the server session), session.c (what the server says), peer.c
 * (direct links), input.c (stdin), output.c (events for people or scripts),
 * commands.c (what the user typed) and client.c (lifecycle, the outbox's
 * actions). The decisions live in the socket-free modules: outbox, roster,
 * dedup, tickets, cmd, backoff. */
#ifndef CHAT_CLIENT_H
#define CHAT_CLIENT_H

#include <jansson.h>
#include <stdint.h>
#include <uv.h>

#include "chat_addr.h"
#include "chat_conn.h"
#include "chat_protocol.h"
#include "dedup.h"
#include "outbox.h"
#include "roster.h"
#include "tickets.h"

#define CHAT_CLIENT_DRAIN_MS 10000   /* end of input: wait for the outbox */
#define CHAT_CLIENT_LOGOUT_MS 2000   /* wait for the logout reply */
#define CHAT_CLIENT_HELLO_MS 10000   /* an accepted link must say hello */
#define CHAT_CLIENT_MAX_INBOUND 64   /* links accepted, not yet through hello */
#define CHAT_CLIENT_MAX_LINE (CHAT_MAX_BODY + 256) /* a command line */

typedef struct chat_client_opts {
  char server_host[CHAT_HOST_MAX];
  int server_port;
  char user[CHAT_MAX_NAME + 1];
  char password[CHAT_MAX_PASSWORD + 1];
  int do_register;
  int p2p_port;                   /* 0: any free port */
  int no_p2p;
  char p2p_host[CHAT_HOST_MAX];   /* "" unless --p2p-host */
  int json;
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

typedef struct chat_client {
  uv_loop_t *loop;
  chat_io_t *io;
  chat_client_opts_t opts;
  int color;       /* human output with ANSI colours */
  int interactive; /* stdin is a terminal: line editing */

  /* server session (net.c) */
  chat_conn_t *srv;          /* NULL when there is no connection */
  chat_net_state_t net;
  struct sockaddr_storage server_addr;
  int heartbeat_ms;
  uint64_t last_read, last_write;
  uv_timer_t hb_timer, reconnect_timer;
  unsigned attempt;          /* failed connects since the last login */
  int ever_ready;            /* a login has succeeded once */
  int registered;            /* --register done */
  char disconnect_reason[64];

  /* decisions */
  chat_roster_t roster;
  chat_outbox_t *ob;
  uv_timer_t ob_timer;
  chat_dedup_t *dedup;
  chat_tickets_t *tickets;
  uv_timer_t tk_timer;

  /* direct links (peer.c) */
  uv_tcp_t listener;
  int listening;
  int p2p_port;              /* the bound port, 0 with --no-p2p */
  chat_peer_t *peers;        /* every link, any state */
  int n_inbound;             /* accepted, before the hello is decided */
  uv_timer_t peer_timer;     /* sweeps inbound links slow to say hello */

  /* input (input.c) */
  void *input;               /* input.c's private state */

  /* conversation for lines without a leading '/' */
  char last_name[CHAT_MAX_NAME + 1];
  int last_is_group;

  /* lifecycle */
  uv_signal_t sigint, sigterm;
  uv_timer_t stop_timer;
  int input_done;            /* end of input or /quit: drain, then stop */
  int stopping;              /* logging out / closing everything */
  int handles_closed;
  int kicked;
  int exit_code;
} chat_client_t;

/* client.c */
int chat_client_init(chat_client_t *c, uv_loop_t *loop,
                     const chat_client_opts_t *opts);
/* Runs until the client stops; returns the exit code. */
int chat_client_run(chat_client_t *c);
void chat_client_free(chat_client_t *c);
uint64_t chat__client_now(chat_client_t *c);
/* Re-arms the outbox and ticket timers after their state changed. */
void chat__client_rearm(chat_client_t *c);
/* End of input or /quit (drain = wait for the outbox first). */
void chat__client_finish(chat_client_t *c, int drain);
/* Stops now: log out if possible, close everything, exit with code. */
void chat__client_stop(chat_client_t *c, int code);
/* The outbox's action sink. */
void chat__client_on_action(void *ctx, const chat_ob_action_t *a);
/* A fresh 128-bit msg_id in hex (33 bytes with the NUL). */
void chat__client_new_msg_id(char out[33]);

/* net.c */
int chat__net_start(chat_client_t *c);  /* first connect; exit 1 if it fails */
/* Sends obj (borrowed) to the server. Returns 0 or -ENOTCONN etc. */
int chat__net_send(chat_client_t *c, const json_t *obj);
/* Drops the session (reason for the disconnected event) and reconnects. */
void chat__net_drop(chat_client_t *c, const char *reason);
void chat__net_logout(chat_client_t *c);
void chat__net_close(chat_client_t *c);
/* A request with a string id; steals obj. */
int chat__net_request(chat_client_t *c, json_t *obj, const char *id);

/* session.c: the login succeeded (ready event; input starts). */
void chat__session_logged_in(chat_client_t *c);
/* A frame from the server, after the login. */
void chat__session_on_frame(chat_client_t *c, const chat_msg_t *m);
/* A received message (relay or direct): dedup, show, remember. Returns 1
 * when it was new. */
int chat__session_show_message(chat_client_t *c, const char *from,
                               const char *group, const char *msg_id,
                               const char *body, size_t body_len, int64_t ts,
                               const char *via, int offline);

/* peer.c */
int chat__peer_listen(chat_client_t *c);
void chat__peer_dial(chat_client_t *c, uint64_t link, const char *to,
                     const char *host, int port, const char *ticket);
int chat__peer_send(chat_client_t *c, uint64_t link, const json_t *obj);
void chat__peer_close_link(chat_client_t *c, uint64_t link);
void chat__peer_on_expect(chat_client_t *c, const char *from,
                          const char *ticket);
void chat__peer_close_all(chat_client_t *c);
void chat__peer_on_ticket(void *ctx, void *waiter, int accepted);

/* input.c */
int chat__input_start(chat_client_t *c);
void chat__input_stop(chat_client_t *c);
/* /wait: stop running commands for ms (the loop goes on). */
void chat__input_wait(chat_client_t *c, int64_t ms);
/* Around any output while the prompt is shown (interactive only). */
void chat__input_hide(chat_client_t *c);
void chat__input_show(chat_client_t *c);
/* Asks for the password on the terminal without echo. 0 or -errno. */
int chat__input_password(char *buf, size_t len);

/* commands.c: one line the user typed. */
void chat__cmd_run(chat_client_t *c, char *line);

/* output.c: steals ev ({"event":...}). */
void chat__out_event(chat_client_t *c, json_t *ev);
/* A line for people only (ignored with --json). */
void chat__out_info(chat_client_t *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void chat__out_error(chat_client_t *c, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif /* CHAT_CLIENT_H */
