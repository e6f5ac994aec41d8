/* addr.c -- HOST:PORT strings to socket addresses and back. */
#include "chat_addr.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <uv.h>

/* Port: 1 to 5 decimal digits, 0..65535. */
int chat_addr_parse_port(const char *s, int *port) {
  long v = 0;
  size_t n = 0;
  for (; s[n] != '\0'; n++) {
    if (s[n] < '0' || s[n] > '9' || n >= 5)
      return -EINVAL;
    v = v * 10 + (s[n] - '0');
  }
  if (n == 0 || v > 65535)
    return -EINVAL;
  *port = (int)v;
  return 0;
}

/* A host is printable ASCII or UTF-8 without spaces or brackets; what it
 * names is for resolve to decide. */
static int host_char_ok(unsigned char ch) {
  return ch > 0x20 && ch != 0x7f && ch != '[' && ch != ']';
}

int chat_addr_split(const char *s, char host[CHAT_HOST_MAX], int *port) {
  const char *h, *end, *colon;
  size_t hlen;
  int p;

  if (s == NULL || host == NULL || port == NULL)
    return -EINVAL;
  if (s[0] == '[') {
    h = s + 1;
    end = strchr(h, ']');
    if (end == NULL || end[1] != ':')
      return -EINVAL;
    colon = end + 1;
  } else {
    h = s;
    colon = strchr(s, ':');
    if (colon == NULL || strchr(colon + 1, ':') != NULL)
      return -EINVAL; /* no port, or a bare IPv6 address */
    end = colon;
  }
  hlen = (size_t)(end - h);
  if (hlen == 0 || hlen >= CHAT_HOST_MAX)
    return -EINVAL;
  for (size_t i = 0; i < hlen; i++) {
    if (!host_char_ok((unsigned char)h[i]))
      return -EINVAL;
  }
  if (chat_addr_parse_port(colon + 1, &p) < 0)
    return -EINVAL;
  memcpy(host, h, hlen);
  host[hlen] = '\0';
  *port = p;
  return 0;
}

int chat_addr_resolve_numeric(const char *host, int port,
                              struct sockaddr_storage *out) {
  if (host == NULL || out == NULL || host[0] == '\0' || port < 0 ||
      port > 65535)
    return -EINVAL;
  memset(out, 0, sizeof(*out));
  if (uv_ip4_addr(host, port, (struct sockaddr_in *)out) == 0)
    return 0;
  /* uv_ip6_addr also takes a "%zone" suffix for link-local addresses. */
  if (strchr(host, ':') != NULL &&
      uv_ip6_addr(host, port, (struct sockaddr_in6 *)out) == 0)
    return 0;
  return -EINVAL;
}

int chat_addr_resolve(const char *host, int port,
                      struct sockaddr_storage *out) {
  struct addrinfo hints, *res = NULL;
  char service[8];

  if (chat_addr_resolve_numeric(host, port, out) == 0)
    return 0;
  /* A colon can only be a malformed IPv6 address, never a name. */
  if (host == NULL || out == NULL || host[0] == '\0' || port < 0 ||
      port > 65535 || strchr(host, ':') != NULL)
    return -EINVAL;

  memset(&hints, 0, sizeof(hints));
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV;
  snprintf(service, sizeof(service), "%d", port);
  if (getaddrinfo(host, service, &hints, &res) != 0 || res == NULL)
    return -EHOSTUNREACH;
  if (res->ai_addrlen > sizeof(*out)) {
    freeaddrinfo(res);
    return -EHOSTUNREACH;
  }
  memcpy(out, res->ai_addr, res->ai_addrlen);
  freeaddrinfo(res);
  return 0;
}

int chat_addr_host(const struct sockaddr *addr, char *host, size_t len,
                   int *port) {
  char buf[INET6_ADDRSTRLEN];
  int p;

  if (addr == NULL || host == NULL)
    return -EINVAL;
  if (addr->sa_family == AF_INET) {
    const struct sockaddr_in *a4 = (const struct sockaddr_in *)addr;
    if (inet_ntop(AF_INET, &a4->sin_addr, buf, sizeof(buf)) == NULL)
      return -EINVAL;
    p = ntohs(a4->sin_port);
  } else if (addr->sa_family == AF_INET6) {
    const struct sockaddr_in6 *a6 = (const struct sockaddr_in6 *)addr;
    if (inet_ntop(AF_INET6, &a6->sin6_addr, buf, sizeof(buf)) == NULL)
      return -EINVAL;
    p = ntohs(a6->sin6_port);
  } else {
    return -EINVAL;
  }
  if (strlen(buf) + 1 > len)
    return -ENOSPC;
  strcpy(host, buf);
  if (port != NULL)
    *port = p;
  return 0;
}

int chat_addr_format(const struct sockaddr *addr, char *buf, size_t len) {
  char host[INET6_ADDRSTRLEN];
  int port, rc, n;

  if (buf == NULL)
    return -EINVAL;
  rc = chat_addr_host(addr, host, sizeof(host), &port);
  if (rc < 0)
    return rc;
  if (addr->sa_family == AF_INET6)
    n = snprintf(buf, len, "[%s]:%d", host, port);
  else
    n = snprintf(buf, len, "%s:%d", host, port);
  if (n < 0 || (size_t)n >= len)
    return -ENOSPC;
  return 0;
}
