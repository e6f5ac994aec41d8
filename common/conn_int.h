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

#endif /* CHAT_CONN_INT_H */
