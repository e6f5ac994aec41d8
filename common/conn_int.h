/* conn_int.h -- private to io.c and conn.c: the per-loop state and the list
 * of connections that have work for the next check phase. */
#ifndef CHAT_CONN_INT_H
#define CHAT_CONN_INT_H

#include "chat_conn.h"

#define CHAT__IO_READ_BUF (64 * 1024)
#define CHAT__CONN_CLOSE_TIMEOUT_MS 5000

struct chat_io {
  uv_loop_t *loop;
  /* Runs after every poll: writes the output queued this turn, hands out
   * frames of resumed connections. Always active, unref'd. */
  uv_check_t check;
  /* Active (and so ref'd) only while the pending list is non-empty: it keeps
   * the poll phase from blocking, and the loop alive, while output queued
   * after this turn's check (e.g. from a close or timer callback) waits. */
  uv_idle_t idle;
  chat_conn_t *pending;   /* connections to visit in the next check */
  char *rbuf;             /* the read buffer every connection shares */
  unsigned close_timeout_ms;
  int handles_open;       /* check and idle, until chat_io_free completes */
  chat_io_stats_t stats;
};

/* Puts c on io's pending list (once) and makes sure the loop visits it. */
void chat__io_schedule(chat_io_t *io, chat_conn_t *c);
/* Takes c off the list, e.g. before its handle is closed. */
void chat__io_unschedule(chat_io_t *io, chat_conn_t *c);
/* The check phase's work for one connection (conn.c). */
void chat__conn_run(chat_conn_t *c);

/* Between conn.c (reading, closing, lifetime) and conn_write.c (output). */
/* Ends the handle now; on_close follows from its close callback. */
void chat__conn_close_now(chat_conn_t *c, int status);
/* A closing connection whose output is written finishes closing. */
void chat__conn_try_finish(chat_conn_t *c);
/* Nonzero when chat__conn_start_write has something to hand the socket. */
int chat__conn_has_output(const chat_conn_t *c);
/* Hands everything queued to one uv_write (encrypted first on TLS). */
void chat__conn_start_write(chat_conn_t *c);

/* TLS under the connection (tls.c); only called when c->tls is set. */
/* Enters the client (dialing) or server role; a client's ClientHello then
 * waits in the output BIO. */
void chat__tls_start(chat_conn_t *c, int dialing);
/* Ciphertext read from the socket. Returns 1 when this finished the
 * handshake, 0, or UV_EPROTO / UV_ENOMEM. */
int chat__tls_input(chat_conn_t *c, const char *data, size_t n);
/* Plaintext out: > 0 bytes, 0 when more input is needed, UV_EOF after the
 * peer's close_notify, UV_EPROTO. */
ssize_t chat__tls_read(chat_conn_t *c, char *buf, size_t cap);
/* Nonzero once the handshake is done and frames may be encrypted. */
int chat__tls_ready(const chat_conn_t *c);
/* Encrypts n bytes of frames into the output BIO: 0 or UV_EPROTO. */
int chat__tls_encrypt(chat_conn_t *c, const char *data, size_t n);
/* Ciphertext waiting to be written (0 without TLS). */
size_t chat__tls_pending(const chat_conn_t *c);
/* Moves that ciphertext into a new malloc'd buffer for uv_write. */
int chat__tls_take(chat_conn_t *c, char **buf, size_t *len);
/* Gives back the memory BIOs' grown buffers once they are empty. */
void chat__tls_trim(chat_conn_t *c);
/* Queues the close_notify alert once, after the last frame. */
void chat__tls_close_notify(chat_conn_t *c);
/* Frees an SSL object and its buffers; NULL is ignored. Takes the pointer,
 * not the connection, whose memory on_close may have freed. */
void chat__tls_free(chat__tls_t *t);

#endif /* CHAT_CONN_INT_H */
