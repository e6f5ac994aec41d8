/* chat_addr.h -- HOST:PORT strings: IPv4, [IPv6]:port and names. */
#ifndef CHAT_ADDR_H
#define CHAT_ADDR_H

#include <stddef.h>
#include <sys/socket.h>

#define CHAT_HOST_MAX 256

/* Splits "HOST:PORT", "[V6]:PORT" into host (without brackets) and port
 * (0..65535). Returns 0 or -EINVAL for anything else (no port, junk, port out
 * of range, empty host, host longer than CHAT_HOST_MAX - 1). */
int chat_addr_split(const char *s, char host[CHAT_HOST_MAX], int *port);

/* Parses a port: 1 to 5 decimal digits, 0..65535, nothing else. Returns 0 or
 * -EINVAL. */
int chat_addr_parse_port(const char *s, int *port);

/* Resolves a numeric IPv4 or IPv6 host (no lookup, so safe on the loop).
 * Returns 0, or -EINVAL for a name or anything else. */
int chat_addr_resolve_numeric(const char *host, int port,
                              struct sockaddr_storage *out);

/* Resolves host and port into *out (numeric hosts need no lookup; names use
 * getaddrinfo, so call this only at start-up or off the loop). Returns 0,
 * -EINVAL, or -EHOSTUNREACH when the name does not resolve. */
int chat_addr_resolve(const char *host, int port,
                      struct sockaddr_storage *out);

/* Formats addr as "HOST:PORT" ("[V6]:PORT" for IPv6) into buf. Returns 0 or
 * -EINVAL / -ENOSPC. */
int chat_addr_format(const struct sockaddr *addr, char *buf, size_t len);
/* Only the host part, without brackets, and the port. */
int chat_addr_host(const struct sockaddr *addr, char *host, size_t len,
                   int *port);

#endif /* CHAT_ADDR_H */
