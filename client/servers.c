/* servers.c -- the --server list and its rotation (servers.h). */
#include "servers.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "backoff.h"

static int blank(char ch) { return ch == ' ' || ch == '\t'; }

/* Parses one entry, [p, end), into a. 0, or -EINVAL with why. */
static int parse_entry(const char *p, const char *end, chat_server_addr_t *a,
                       char *why, size_t why_len) {
  char entry[CHAT_SERVERS_NAME_MAX];
  size_t len;

  while (p < end && blank(*p))
    p++;
  while (end > p && blank(end[-1]))
    end--;
  len = (size_t)(end - p);
  if (len == 0) {
    snprintf(why, why_len, "empty entry in --server (HOST:PORT[,HOST:PORT...])");
    return -EINVAL;
  }
  /* Too long to be HOST:PORT: named by its start only. */
  if (len >= sizeof(entry)) {
    snprintf(why, why_len, "bad --server entry '%.40s...' (too long)", p);
    return -EINVAL;
  }
  memcpy(entry, p, len);
  entry[len] = '\0';
  if (chat_addr_split(entry, a->host, &a->port) < 0) {
    snprintf(why, why_len,
             "bad --server entry '%s' (HOST:PORT or [IPv6]:PORT)", entry);
    return -EINVAL;
  }
  if (a->port == 0) { /* nothing ever answers there */
    snprintf(why, why_len, "bad --server entry '%s' (port 1 to 65535)",
             entry);
    return -EINVAL;
  }
  return 0;
}

int chat_servers_parse(chat_servers_t *s, const char *list, char *why,
                       size_t why_len) {
  char scratch[8];
  const char *p = list;
  int rc = 0;

  if (why == NULL) { /* the messages are still built, into nothing */
    why = scratch;
    why_len = sizeof(scratch);
  }
  memset(s, 0, sizeof(*s));
  if (list == NULL) {
    snprintf(why, why_len, "no --server address");
    return -EINVAL;
  }
  for (int n = 0;; n++) {
    const char *comma = strchr(p, ',');
    const char *end = comma ? comma : p + strlen(p);
    if (n == CHAT_SERVERS_MAX) {
      snprintf(why, why_len, "too many --server addresses (at most %d)",
               CHAT_SERVERS_MAX);
      rc = -E2BIG;
      break;
    }
    if ((rc = parse_entry(p, end, &s->addr[n], why, why_len)) < 0)
      break;
    /* Names compare without case, as DNS does; "localhost" and
     * "127.0.0.1" are not found to be one node, and need not be. */
    for (int i = 0; i < n && rc == 0; i++)
      if (s->addr[i].port == s->addr[n].port &&
          strcasecmp(s->addr[i].host, s->addr[n].host) == 0) {
        char name[CHAT_SERVERS_NAME_MAX];
        snprintf(why, why_len, "--server names %s twice",
                 chat_servers_name(&s->addr[n], name, sizeof(name)));
        rc = -EEXIST;
      }
    if (rc < 0)
      break;
    if (comma == NULL) {
      s->n = n + 1;
      s->tried = 1;
      return 0;
    }
    p = comma + 1;
  }
  memset(s, 0, sizeof(*s));
  return rc;
}

void chat_servers_remove(chat_servers_t *s, int i) {
  if (i < 0 || i >= s->n || s->n <= 1)
    return;
  memmove(&s->addr[i], &s->addr[i + 1],
          (size_t)(s->n - i - 1) * sizeof(s->addr[0]));
  s->n--;
  if (s->cur >= s->n)
    s->cur = 0;
}

const chat_server_addr_t *chat_servers_current(const chat_servers_t *s) {
  return &s->addr[s->cur];
}

const char *chat_servers_name(const chat_server_addr_t *a, char *buf,
                              size_t len) {
  if (strchr(a->host, ':') != NULL)
    snprintf(buf, len, "[%s]:%d", a->host, a->port);
  else
    snprintf(buf, len, "%s:%d", a->host, a->port);
  return buf;
}

int chat_servers_round_over(const chat_servers_t *s) {
  return s->tried >= s->n;
}

int64_t chat_servers_next(chat_servers_t *s, int lost, uint32_t rnd) {
  if (s->n <= 0)
    return chat_backoff_delay(s->rounds++, rnd);
  s->cur = (s->cur + 1) % s->n;
  if (!lost && s->tried < s->n) {
    s->tried++;
    return 0;
  }
  /* A new round from here: after a loss the lost node comes last in it. */
  s->tried = 1;
  return chat_backoff_delay(s->rounds++, rnd);
}

void chat_servers_up(chat_servers_t *s, int keep_backoff) {
  s->tried = 1;
  if (!keep_backoff)
    s->rounds = 0;
}

void chat_servers_reset_backoff(chat_servers_t *s) { s->rounds = 0; }
