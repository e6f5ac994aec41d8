/* chat_conn.h -- a libuv TCP connection that speaks JSON Lines.
 *
 * Stream in, frames out: bytes read are split and parsed with the protocol
 * library and handed to on_frame one object at a time. Frames in, writes out:
 * chat_conn_send() appends an encoded line to the connection's output, which
 * is written once per loop turn for all frames queued in that turn (one
 * uv_write with the whole batch). Output is bounded by max_output; going over
 * calls on_overflow once and the frame is refused.
 *
 * Memory: reads land in one buffer shared by every connection of a chat_io_t;
 * a connection keeps only the unfinished tail of a line (at most max_frame)
 * and its unwritten output, so an idle connection holds no buffers.
 *
 * Lifetime: the caller owns the chat_conn_t memory. After chat_conn_close()
 * (or a fatal error) on_close is called exactly once, from the handle's close
 * callback; only then may the memory be freed, typically inside on_close.
 */
#ifndef CHAT_CONN_H
#define CHAT_CONN_H

#include <jansson.h>
#include <uv.h>

#include "chat_protocol.h"

/* Per-loop state shared by connections: the read buffer and the per-turn
 * flush list. One per uv_loop_t. chat_io_new also ignores SIGPIPE for the
 * process (libuv writes with write(2), so a reset peer would kill it). */
typedef struct chat_io chat_io_t;
int chat_io_new(uv_loop_t *loop, chat_io_t **out); /* 0 or -ENOMEM */
/* Closes its handles; call before the loop's final uv_run and after every
 * connection is closed. The memory is freed once the handles are closed. */
void chat_io_free(chat_io_t *io);

/* How long chat_conn_close() waits for output to drain (and, after a
 * frame_too_large or input still arriving, for the peer's EOF) before it
 * cuts the connection off. 5000 ms by default and when ms is 0. */
void chat_io_set_close_timeout(chat_io_t *io, unsigned ms);

/* Counters over every connection of io since chat_io_new. */
typedef struct chat_io_stats {
  unsigned long long writes;        /* uv_write calls: one per conn per turn */
  unsigned long long bytes_written; /* bytes handed to those writes */
  unsigned long long reads;         /* read callbacks with data */
  unsigned long long bytes_read;
} chat_io_stats_t;
void chat_io_get_stats(const chat_io_t *io, chat_io_stats_t *stats);

typedef struct chat_conn chat_conn_t;
typedef struct chat__tls chat__tls_t;

typedef struct chat_conn_cbs {
  /* One parsed frame. obj and line are borrowed for the call (incref obj to
   * keep it). The callee may send, pause or close the connection. Blank lines
   * never get here. on_frame and on_bad_frame may be NULL (dropped). */
  void (*on_frame)(chat_conn_t *c, json_t *obj, const char *line, size_t len);
  /* A line that was not a frame. err->code is CHAT_E_BAD_JSON (the stream
   * goes on) or CHAT_E_FRAME_TOO_LARGE (the connection is then closed after
   * flushing what the callee sends, e.g. the error reply). */
  void (*on_bad_frame)(chat_conn_t *c, const chat_error_t *err);
  /* Output would exceed max_output; the frame that did it was dropped. Called
   * once per connection. Typically closes the connection. May be NULL. */
  void (*on_overflow)(chat_conn_t *c);
  /* The handle is closed. status: 0 after chat_conn_close() or
   * chat_conn_abort(), UV_EOF when the peer closed, -CHAT_E_FRAME_TOO_LARGE
   * after that error, UV_ETIMEDOUT when a close could not drain the output,
   * another negative code on a connect, read or write error. Required. */
  void (*on_close)(chat_conn_t *c, int status);
} chat_conn_cbs_t;

typedef struct chat_conn_opts {
  size_t max_frame;   /* CHAT_MAX_FRAME_DEFAULT when 0 */
  size_t max_output;  /* bytes of unwritten output; 1 MiB when 0 */
} chat_conn_opts_t;

typedef enum chat_conn_state {
  CHAT_CONN_IDLE = 0, CHAT_CONN_CONNECTING, CHAT_CONN_OPEN, CHAT_CONN_CLOSING,
  CHAT_CONN_CLOSED
} chat_conn_state_t;

struct chat_conn {
  uv_tcp_t tcp;           /* tcp.data points back to this chat_conn_t */
  void *data;             /* for the owner; chat_conn_init keeps it */
  /* uv_now() when the last complete line was read (a frame, a bad line or a
   * blank line, which on_frame never sees), or when the connection opened.
   * An unfinished line does not move it: for idle timeouts that a peer
   * trickling bytes cannot defeat. Read-only for the owner. */
  uint64_t last_line_ms;
  /* private: */
  chat_io_t *io;
  const chat_conn_cbs_t *cbs;
  int (*on_line)(chat_conn_t *c, const char *line, size_t len); /* or NULL */
  chat_decoder_t dec;     /* the unfinished tail of a line; holds max_frame */
  char *out;              /* output being collected this turn */
  size_t out_len, out_cap;
  size_t out_hint;        /* the size a turn's buffer starts at (0: min) */
  char *inflight;         /* output handed to uv_write, freed in its cb */
  size_t inflight_len;
  size_t max_output;
  union {                 /* a connect completes before the first write */
    uv_write_t write;
    uv_connect_t connect;
  } req;
  void (*connect_cb)(chat_conn_t *c, int status); /* until it is called */
  void (*tcp_up_cb)(chat_conn_t *c); /* chat_conn_on_tcp_up */
  uv_timer_t *deadline;   /* malloc'd while a graceful close waits */
  struct chat__tls *tls;  /* NULL on plain TCP (chat_tls.h) */
  chat_conn_t *pend_next; /* io's pending list */
  chat_conn_t **pend_prev;
  int close_status;       /* for on_close: the first nonzero wins */
  chat_conn_state_t state;
  unsigned paused : 1, reading : 1, writing : 1, scheduled : 1,
      resume_pending : 1, overflowed : 1, linger : 1, eof : 1, shut : 1,
      tls_accept : 1;
};

/* A raw-line hook, for owners that read their hot frames without jansson
 * (see chat_fast_scan). Once set, every complete line (LF and a CR before it
 * stripped; blank lines too) goes to on_line before it is parsed. on_line
 * returns nonzero when it handled the line: then the line is not parsed and
 * on_frame / on_bad_frame do not see it. It returns 0 to let the line take
 * the usual way. The line is borrowed for the call; the callee may send,
 * pause or close, as from on_frame. NULL (the default after
 * chat_conn_init) parses every line. A separate setter rather than a member
 * of chat_conn_cbs_t, so the callback tables of existing owners stay as
 * they are. */
typedef int (*chat_conn_line_cb)(chat_conn_t *c, const char *line,
                                 size_t len);
void chat_conn_set_on_line(chat_conn_t *c, chat_conn_line_cb on_line);

/* Prepares c on io's loop (c->data is kept). Returns 0 or a libuv error.
 * From here on the handle exists: even if accept or connect is never called
 * or fails, chat_conn_close() or chat_conn_abort() must end it (on_close then
 * follows) before c is freed. */
int chat_conn_init(chat_io_t *io, chat_conn_t *c, const chat_conn_cbs_t *cbs,
                   const chat_conn_opts_t *opts);
/* Accepts a pending connection of server into c and starts reading.
 * Returns 0 or a libuv error (then close c as said above). */
int chat_conn_accept(chat_conn_t *c, uv_stream_t *server);
/* Connects c to addr; cb gets 0 (reading has started) or an error (then
 * on_close follows with that status). cb is called exactly once, never from
 * inside this call, even when the connect fails at once. Frames may be sent
 * while connecting; they are written once connected. Returns 0, or UV_EINVAL
 * when c is not freshly initialised (then cb is never called). */
int chat_conn_connect(chat_conn_t *c, const struct sockaddr *addr,
                      void (*cb)(chat_conn_t *c, int status));

/* Gives c (fresh from chat_conn_init) a socket of local's family with
 * SO_REUSEADDR and SO_REUSEPORT set and binds it to local (port 0: any),
 * so that another such socket may bind the same address and port: the
 * server connection and the hole punches that leave from its port
 * (docs/NAT.md). Call before chat_conn_connect. Returns 0 or a libuv
 * error (then close c as usual). */
int chat_conn_bind_reuse(chat_conn_t *c, const struct sockaddr *local);
/* A dialed c (before chat_conn_connect) that speaks TLS takes the server's
 * part in the handshake: a hole punch's TCP is a simultaneous open, so
 * someone must be told which TLS side it is. The connect callback still
 * follows the handshake. */
void chat_conn_tls_accepting(chat_conn_t *c);
/* A dialed c (before chat_conn_connect) that speaks TLS: cb runs once when
 * its TCP connection is up and the handshake starts, before the connect
 * callback (which follows the handshake). A hole punch's window is for the
 * SYNs: a try past them is not cut while its handshake runs (docs/NAT.md). */
void chat_conn_on_tcp_up(chat_conn_t *c, void (*cb)(chat_conn_t *c));

/* Queues obj (borrowed) as one line. Returns 0, -ENOBUFS past max_output
 * (on_overflow was called, the first time only), -EPIPE when closing or
 * closed, -EINVAL (not an object), -ENOMEM. */
int chat_conn_send(chat_conn_t *c, const json_t *obj);
/* Queues an already encoded line, which must end with its only LF (else
 * -EINVAL). Same returns. */
int chat_conn_send_line(chat_conn_t *c, const char *line, size_t len);
/* Bytes queued and not yet written (including a write in progress). */
size_t chat_conn_output_len(const chat_conn_t *c);

/* Stops handing out frames (and reading) until resumed; frames already read
 * wait in the connection. Used while a request is answered asynchronously. */
void chat_conn_pause(chat_conn_t *c);
/* Hands out the waiting frames on a later loop turn, then reads again. */
void chat_conn_resume(chat_conn_t *c);

/* Stops handing out frames, writes what is queued, then closes (bounded: a
 * peer that never reads is cut off when the output cannot drain within 5 s,
 * and on_close gets UV_ETIMEDOUT). Input that arrives meanwhile is read and
 * dropped; if there was any (or after frame_too_large), the write side is shut
 * down and the peer's EOF awaited, within the same bound, so the kernel does
 * not answer unread input with a reset that would destroy the reply.
 * Idempotent. on_close gets 0, or the first EOF or error seen before the
 * handle closed (e.g. a write that failed while draining). */
void chat_conn_close(chat_conn_t *c);
/* Closes at once, dropping unwritten output. Idempotent. */
void chat_conn_abort(chat_conn_t *c);

/* The remote address as host and port. Returns 0 or a libuv error. */
int chat_conn_peer(const chat_conn_t *c, char *host, size_t len, int *port);

#endif /* CHAT_CONN_H */
