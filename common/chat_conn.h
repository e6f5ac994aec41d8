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
 * flush list. One per uv_loop_t. */
typedef struct chat_io chat_io_t;
int chat_io_new(uv_loop_t *loop, chat_io_t **out); /* 0 or -ENOMEM */
/* Closes its handles; call before the loop's final uv_run and after every
 * connection is closed. The memory is freed once the handles are closed. */
void chat_io_free(chat_io_t *io);

typedef struct chat_conn chat_conn_t;

typedef struct chat_conn_cbs {
  /* One parsed frame. obj and line are borrowed for the call (incref obj to
   * keep it). The callee may send, pause or close the connection. */
  void (*on_frame)(chat_conn_t *c, json_t *obj, const char *line, size_t len);
  /* A line that was not a frame. err->code is CHAT_E_BAD_JSON (the stream
   * goes on) or CHAT_E_FRAME_TOO_LARGE (the connection is then closed after
   * flushing what the callee sends, e.g. the error reply). */
  void (*on_bad_frame)(chat_conn_t *c, const chat_error_t *err);
  /* Output would exceed max_output; the frame that did it was dropped. Called
   * once per connection. Typically closes the connection. May be NULL. */
  void (*on_overflow)(chat_conn_t *c);
  /* The handle is closed. status: 0 after chat_conn_close(), UV_EOF when the
   * peer closed, another negative code on a read or write error. */
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
  void *data;             /* for the owner */
  /* private */
  chat_io_t *io;
  const chat_conn_cbs_t *cbs;
  chat_conn_opts_t opts;
  chat_conn_state_t state;
  chat_decoder_t dec;
  char *out;              /* unwritten output being collected this turn */
  size_t out_len, out_cap;
  char *inflight;         /* output handed to uv_write, freed in its cb */
  size_t inflight_len;
  uv_write_t wreq;
  uv_connect_t creq;
  void (*connect_cb)(chat_conn_t *c, int status);
  chat_conn_t *next_dirty; /* in io's flush or resume list */
  unsigned paused : 1, dirty : 1, overflowed : 1, close_after_flush : 1,
      reading : 1, resumed : 1, in_callback : 1, writing : 1;
  int close_status;
};

/* Prepares c on io's loop. Returns 0 or a libuv error. */
int chat_conn_init(chat_io_t *io, chat_conn_t *c, const chat_conn_cbs_t *cbs,
                   const chat_conn_opts_t *opts);
/* Accepts a pending connection of server into c and starts reading. */
int chat_conn_accept(chat_conn_t *c, uv_stream_t *server);
/* Connects c to addr; cb gets 0 (reading has started) or an error (then
 * on_close follows). */
int chat_conn_connect(chat_conn_t *c, const struct sockaddr *addr,
                      void (*cb)(chat_conn_t *c, int status));

/* Queues obj (borrowed) as one line. Returns 0, -ENOBUFS past max_output
 * (on_overflow was called), -EPIPE when closing or closed, -ENOMEM. */
int chat_conn_send(chat_conn_t *c, const json_t *obj);
/* Queues an already encoded line, which must end with LF. Same returns. */
int chat_conn_send_line(chat_conn_t *c, const char *line, size_t len);
/* Bytes queued and not yet written. */
size_t chat_conn_output_len(const chat_conn_t *c);

/* Stops handing out frames (and reading) until resumed; frames already read
 * wait in the connection. Used while a request is answered asynchronously. */
void chat_conn_pause(chat_conn_t *c);
/* Hands out the waiting frames on a later loop turn, then reads again. */
void chat_conn_resume(chat_conn_t *c);

/* Writes what is queued, then closes (bounded: a peer that never reads is
 * cut off when the output cannot drain within 5 s). Idempotent. */
void chat_conn_close(chat_conn_t *c);
/* Closes at once, dropping unwritten output. */
void chat_conn_abort(chat_conn_t *c);

/* The remote address as host and port. Returns 0 or a libuv error. */
int chat_conn_peer(const chat_conn_t *c, char *host, size_t len, int *port);

#endif /* CHAT_CONN_H */
