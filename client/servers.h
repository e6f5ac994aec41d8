/* servers.h -- the --server list: one address or the nodes of one cluster,
 * and which of them to connect to next. No sockets, no clock, no random
 * numbers of its own: the caller says what happened and passes the
 * randomness for the jitter, so every decision can be tested alone.
 *
 * The rotation, in rounds (each address once per round):
 * - At the start the addresses are tried in the order given; a try that
 *   fails moves to the next one at once. When a whole round fails before
 *   any login, the caller gives up (chat_servers_round_over).
 * - A connection that had logged in and is lost starts a new round at the
 *   address after the lost one (the node that just died is tried last),
 *   after a jittered delay, so that the users of a dead node do not all
 *   land on the others at the same moment.
 * - Between rounds the delay grows (backoff.h: 1 s doubling to 30 s, equal
 *   jitter); a login resets it.
 * With one address this is exactly the single-server reconnect: every try
 * is a round of its own. */
#ifndef CHAT_SERVERS_H
#define CHAT_SERVERS_H

#include <stddef.h>
#include <stdint.h>

#include "chat_addr.h"

/* More nodes than a person types; bounds the command line's cost. */
#define CHAT_SERVERS_MAX 16
/* "[HOST]:PORT" with the NUL. */
#define CHAT_SERVERS_NAME_MAX (CHAT_HOST_MAX + 8)

typedef struct chat_server_addr {
  char host[CHAT_HOST_MAX]; /* without brackets */
  int port;                 /* 1..65535 */
} chat_server_addr_t;

typedef struct chat_servers {
  chat_server_addr_t addr[CHAT_SERVERS_MAX];
  int n;           /* 1..CHAT_SERVERS_MAX after a successful parse */
  int cur;         /* the address being tried, or in use */
  int tried;       /* addresses tried in this round, cur included */
  unsigned rounds; /* delays given since the last login: the backoff step */
} chat_servers_t;

/* Parses "HOST:PORT[,HOST:PORT...]" (IPv4, [IPv6]:PORT or a name; blanks
 * around an entry are ignored) into s, ready to try the first address.
 * Returns 0, or on error a negative code with why (a sentence naming the
 * bad entry, for a usage error) filled when not NULL:
 *   -EINVAL  an entry that is not HOST:PORT, an empty entry, port 0
 *   -E2BIG   more than CHAT_SERVERS_MAX entries
 *   -EEXIST  the same entry twice (a typo, or a node tried twice a round)
 * s is left with n == 0 on error. */
int chat_servers_parse(chat_servers_t *s, const char *list, char *why,
                       size_t why_len);

/* Leaves address i out (one that does not resolve), before the first try:
 * the others keep their order. The last one is never removed. */
void chat_servers_remove(chat_servers_t *s, int i);

/* The address to connect to now. */
const chat_server_addr_t *chat_servers_current(const chat_servers_t *s);

/* "HOST:PORT" of a, "[HOST]:PORT" when HOST is an IPv6 address, in buf
 * (truncated to len). Returns buf. */
const char *chat_servers_name(const chat_server_addr_t *a, char *buf,
                              size_t len);

/* Nonzero when every address has been tried in this round without a
 * login: before the first login the caller stops there (exit 1). */
int chat_servers_round_over(const chat_servers_t *s);

/* The connection to the current address ended. lost: it had logged in.
 * Moves to the next address and returns the delay in ms before connecting
 * to it: 0 within a round after a failed try, else a jittered backoff
 * chosen by rnd (any 32-bit random number) that grows by round. */
int64_t chat_servers_next(chat_servers_t *s, int lost, uint32_t rnd);

/* A login succeeded at the current address: the next loss starts the
 * backoff from its shortest step, unless keep_backoff (a node that cuts us
 * for a reason that will come back, e.g. an oversized line, is not
 * hurried back to). */
void chat_servers_up(chat_servers_t *s, int keep_backoff);

/* The next delay is the shortest step again (/reconnect). */
void chat_servers_reset_backoff(chat_servers_t *s);

#endif /* CHAT_SERVERS_H */
