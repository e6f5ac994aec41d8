/* client.c -- a raw protocol client for tests: a blocking TCP socket, frames
 * built with json_pack, and waits with deadlines (poll), so a test states
 * exactly what it sends and what it expects back.
 *
 * Frames received but not yet asked for sit in a queue: th_client_expect()
 * looks there first, then reads on, queueing what does not match, and
 * th_client_recv() returns the queue's head before reading. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/ssl.h>

#include "harness.h"

struct th_client {
  int fd;
  SSL *ssl;     /* NULL: plain TCP; else every byte goes through it (tls.c) */
  int eof;
  char *buf;
  size_t len, cap;
  json_t *welcome;
  long long next_id;
  json_t *queue; /* array of frames received and not yet returned */
};

static json_t *take_frame(th_client_t *c);
static int fill(th_client_t *c, long long deadline);
static void dump_queue(th_client_t *c);

th_client_t *th_client_connect_raw(int port) {
  th_client_t *c = calloc(1, sizeof(*c));
  if (c == NULL)
    abort();
  c->queue = json_array();
  c->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (c->fd < 0)
    fail_msg("socket: %s", strerror(errno));
  struct sockaddr_in a;
  memset(&a, 0, sizeof(a));
  a.sin_family = AF_INET;
  a.sin_port = htons((uint16_t)port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(c->fd, (struct sockaddr *)&a, sizeof(a)) != 0)
    fail_msg("connect 127.0.0.1:%d: %s", port, strerror(errno));
  int one = 1;
  setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  return c;
}

th_client_t *th_client_connect(int port) {
  th_client_t *c = th_client_connect_raw(port);
  c->welcome = th_client_recv(c, TH_DEADLINE_MS);
  if (c->welcome == NULL) {
    th__server_dump_all();
    fail_msg("no welcome from 127.0.0.1:%d", port);
  }
  th_assert_type(c->welcome, "welcome", NULL);
  return c;
}

const json_t *th_client_welcome(const th_client_t *c) { return c->welcome; }
int th_client_fd(const th_client_t *c) { return c->fd; }
int th_client_closed(const th_client_t *c) { return c->eof; }

th_client_t *th__client_wrap(int fd, struct ssl_st *ssl) {
  th_client_t *c = calloc(1, sizeof(*c));
  if (c == NULL)
    abort();
  c->queue = json_array();
  c->fd = fd;
  c->ssl = ssl;
  return c;
}

struct ssl_st *th__client_ssl(const th_client_t *c) { return c->ssl; }

int th_client_send_raw(th_client_t *c, const void *data, size_t len) {
  const char *p = data;
  if (c->ssl != NULL) {
    /* Blocking socket, no partial writes: all of it, or an error. */
    if (len == 0)
      return 0;
    return SSL_write(c->ssl, data, (int)len) > 0 ? 0 : -EPIPE;
  }
  while (len > 0) {
    ssize_t r = send(c->fd, p, len, MSG_NOSIGNAL);
    if (r < 0) {
      if (errno == EINTR)
        continue;
      return -errno;
    }
    p += r;
    len -= (size_t)r;
  }
  return 0;
}

static int send_obj(th_client_t *c, json_t *obj) {
  char *s = json_dumps(obj, JSON_COMPACT);
  json_decref(obj);
  if (s == NULL)
    abort();
  size_t n = strlen(s);
  char *line = malloc(n + 2);
  if (line == NULL)
    abort();
  memcpy(line, s, n);
  line[n] = '\n';
  free(s);
  int r = th_client_send_raw(c, line, n + 1);
  free(line);
  return r;
}

int th_client_send(th_client_t *c, const char *fmt, ...) {
  json_error_t jerr;
  va_list ap;
  va_start(ap, fmt);
  json_t *obj = json_vpack_ex(&jerr, 0, fmt, ap);
  va_end(ap);
  if (obj == NULL)
    fail_msg("json_pack(%s): %s", fmt, jerr.text);
  return send_obj(c, obj);
}

static json_t *vcall(th_client_t *c, const char *fmt, va_list ap) {
  json_error_t jerr;
  json_t *obj = json_vpack_ex(&jerr, 0, fmt, ap);
  if (obj == NULL)
    fail_msg("json_pack(%s): %s", fmt, jerr.text);
  long long id = 1000000 + ++c->next_id;
  json_object_set_new(obj, "id", json_integer(id));
  send_obj(c, obj);
  long long deadline = th_now_ms() + TH_DEADLINE_MS;
  for (;;) {
    for (size_t i = 0; i < json_array_size(c->queue); i++) {
      json_t *f = json_array_get(c->queue, i);
      if (th_int(f, "id") == id) {
        json_incref(f);
        json_array_remove(c->queue, i);
        return f;
      }
    }
    json_t *f = take_frame(c);
    if (f) {
      json_array_append_new(c->queue, f);
      continue;
    }
    if (fill(c, deadline) <= 0) {
      dump_queue(c);
      th__server_dump_all();
      fail_msg("no reply to request %s within %d ms%s", fmt, TH_DEADLINE_MS,
               c->eof ? " (connection closed)" : "");
    }
  }
}

json_t *th_client_call(th_client_t *c, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  json_t *r = vcall(c, fmt, ap);
  va_end(ap);
  return r;
}

json_t *th_client_call_ok(th_client_t *c, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  json_t *r = vcall(c, fmt, ap);
  va_end(ap);
  th_assert_type(r, "ok", NULL);
  return r;
}

void th_client_call_error(th_client_t *c, const char *code, const char *fmt,
                          ...) {
  va_list ap;
  va_start(ap, fmt);
  json_t *r = vcall(c, fmt, ap);
  va_end(ap);
  th_assert_type(r, "error", code);
  json_decref(r);
}

void th_make_contacts(th_client_t *a, const char *an, th_client_t *b,
                      const char *bn) {
  json_decref(th_client_call_ok(a, "{s:s,s:s}", "type", "contact_add", "user",
                                bn));
  json_t *rq = th_client_expect(b, "contact_request", TH_DEADLINE_MS);
  json_decref(rq);
  json_decref(th_client_call_ok(b, "{s:s,s:s}", "type", "contact_accept",
                                "user", an));
  json_decref(th_client_expect(a, "contact_added", TH_DEADLINE_MS));
  json_decref(th_client_expect(b, "contact_added", TH_DEADLINE_MS));
}

/* A complete line from the buffer as a frame, or NULL when none is buffered.
 * Blank lines are skipped; a line that is not JSON fails the test. */
static json_t *take_frame(th_client_t *c) {
  for (;;) {
    char *nl = c->len ? memchr(c->buf, '\n', c->len) : NULL;
    if (nl == NULL)
      return NULL;
    size_t n = (size_t)(nl - c->buf);
    json_error_t jerr;
    json_t *obj = NULL;
    int blank = 1;
    for (size_t i = 0; i < n; i++)
      if (c->buf[i] != ' ' && c->buf[i] != '\t' && c->buf[i] != '\r')
        blank = 0;
    if (!blank) {
      obj = json_loadb(c->buf, n, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &jerr);
      if (obj == NULL || !json_is_object(obj))
        fail_msg("server sent a line that is not a JSON object: %.*s",
                 (int)n, c->buf);
    }
    memmove(c->buf, nl + 1, c->len - n - 1);
    c->len -= n + 1;
    if (obj)
      return obj;
  }
}

/* Reads more bytes, waiting until the deadline. 1 when something arrived, 0
 * at the deadline, -1 at end of stream. */
static int fill(th_client_t *c, long long deadline) {
  if (c->eof)
    return -1;
  long long left = deadline - th_now_ms();
  if (left < 0)
    left = 0;
  struct pollfd pfd = {.fd = c->fd, .events = POLLIN};
  /* Plaintext that TLS already decrypted is not in the socket any more. */
  int r = c->ssl != NULL && SSL_pending(c->ssl) > 0
              ? 1
              : poll(&pfd, 1, (int)left);
  if (r < 0 && errno != EINTR)
    fail_msg("poll: %s", strerror(errno));
  if (r <= 0)
    return 0;
  if (c->cap - c->len < 65536) {
    size_t ncap = c->cap ? c->cap * 2 : 131072;
    if (ncap > 4 * (size_t)TH_LINE_MAX)
      fail_msg("server line longer than %d bytes", TH_LINE_MAX);
    c->buf = realloc(c->buf, ncap);
    if (c->buf == NULL)
      abort();
    c->cap = ncap;
  }
  if (c->ssl != NULL) {
    size_t cap = c->cap - c->len > 1 << 30 ? 1 << 30 : c->cap - c->len;
    int n = SSL_read(c->ssl, c->buf + c->len, (int)cap);
    if (n <= 0) {
      int e = SSL_get_error(c->ssl, n);
      if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
        return 1;
      c->eof = 1; /* close_notify, a reset or a TLS error */
      return -1;
    }
    c->len += (size_t)n;
    return 1;
  }
  ssize_t n = recv(c->fd, c->buf + c->len, c->cap - c->len, 0);
  if (n < 0 && (errno == EINTR || errno == EAGAIN))
    return 1;
  if (n <= 0) { /* ECONNRESET counts as closed too */
    c->eof = 1;
    return -1;
  }
  c->len += (size_t)n;
  return 1;
}

json_t *th_client_recv(th_client_t *c, int timeout_ms) {
  if (json_array_size(c->queue) > 0)
    return th_client_take_other(c);
  long long deadline = th_now_ms() + timeout_ms;
  for (;;) {
    json_t *f = take_frame(c);
    if (f)
      return f;
    if (fill(c, deadline) <= 0)
      return NULL;
  }
}

json_t *th_client_take_other(th_client_t *c) {
  if (json_array_size(c->queue) == 0)
    return NULL;
  json_t *f = json_incref(json_array_get(c->queue, 0));
  json_array_remove(c->queue, 0);
  return f;
}

static int is_type(const json_t *f, const char *type) {
  const char *t = th_str(f, "type");
  return t && strcmp(t, type) == 0;
}

json_t *th_client_try_expect(th_client_t *c, const char *type, int timeout_ms) {
  for (size_t i = 0; i < json_array_size(c->queue); i++) {
    json_t *f = json_array_get(c->queue, i);
    if (is_type(f, type)) {
      json_incref(f);
      json_array_remove(c->queue, i);
      return f;
    }
  }
  long long deadline = th_now_ms() + timeout_ms;
  for (;;) {
    json_t *f = take_frame(c);
    if (f) {
      if (is_type(f, type))
        return f;
      json_array_append_new(c->queue, f);
      continue;
    }
    if (fill(c, deadline) <= 0)
      return NULL;
  }
}

static void dump_queue(th_client_t *c) {
  for (size_t i = 0; i < json_array_size(c->queue); i++) {
    char *s = json_dumps(json_array_get(c->queue, i), JSON_COMPACT);
    fprintf(stderr, "  received instead: %s\n", s ? s : "?");
    free(s);
  }
}

json_t *th_client_expect(th_client_t *c, const char *type, int timeout_ms) {
  json_t *f = th_client_try_expect(c, type, timeout_ms);
  if (f == NULL) {
    dump_queue(c);
    th__server_dump_all();
    fail_msg("expected a '%s' frame within %d ms%s", type, timeout_ms,
             c->eof ? " (the server closed the connection)" : "");
  }
  return f;
}

json_t *th_client_expect_error(th_client_t *c, const char *code,
                               int timeout_ms) {
  json_t *f = th_client_expect(c, "error", timeout_ms);
  const char *got = th_str(f, "code");
  if (got == NULL || strcmp(got, code) != 0) {
    char *s = json_dumps(f, JSON_COMPACT);
    fprintf(stderr, "  got: %s\n", s ? s : "?");
    free(s);
    fail_msg("expected error '%s', got '%s'", code, got ? got : "(none)");
  }
  return f;
}

void th_client_expect_silence(th_client_t *c, int ms) {
  json_t *f = th_client_recv(c, ms);
  if (f) {
    char *s = json_dumps(f, JSON_COMPACT);
    fprintf(stderr, "  unexpected: %s\n", s ? s : "?");
    free(s);
    json_decref(f);
    fail_msg("expected no frame within %d ms", ms);
  }
}

int th_client_wait_closed(th_client_t *c, int timeout_ms) {
  long long deadline = th_now_ms() + timeout_ms;
  while (!c->eof) {
    json_t *f = take_frame(c);
    if (f) {
      json_decref(f);
      continue;
    }
    if (fill(c, deadline) == 0)
      return 0;
  }
  return 1;
}

void th_client_register(th_client_t *c, const char *user,
                        const char *password) {
  th_client_send(c, "{s:s,s:s,s:s,s:s}", "type", "register", "id", "reg",
                 "user", user, "password", password);
  json_t *f = th_client_recv(c, TH_DEADLINE_MS);
  if (f == NULL) {
    th__server_dump_all();
    fail_msg("no reply to register %s", user);
  }
  const char *t = th_str(f, "type");
  const char *code = th_str(f, "code");
  if (!(t && strcmp(t, "ok") == 0) &&
      !(code && strcmp(code, "user_exists") == 0)) {
    char *s = json_dumps(f, JSON_COMPACT);
    fail_msg("register %s: %s", user, s ? s : "?");
  }
  json_decref(f);
}

void th_client_login(th_client_t *c, const char *user, const char *password,
                     int p2p_port) {
  if (p2p_port > 0)
    th_client_send(c, "{s:s,s:s,s:s,s:s,s:i}", "type", "login", "id", "login",
                   "user", user, "password", password, "p2p_port", p2p_port);
  else
    th_client_send(c, "{s:s,s:s,s:s,s:s}", "type", "login", "id", "login",
                   "user", user, "password", password);
  json_t *f = th_client_recv(c, TH_DEADLINE_MS);
  if (f == NULL || !is_type(f, "ok")) {
    char *s = f ? json_dumps(f, JSON_COMPACT) : NULL;
    th__server_dump_all();
    fail_msg("login %s: %s", user, s ? s : "no reply");
  }
  json_decref(f);
}

th_client_t *th_client_user(int port, const char *user, const char *password) {
  th_client_t *c = th_client_connect(port);
  th_client_register(c, user, password);
  th_client_login(c, user, password, 0);
  return c;
}

void th_client_close(th_client_t *c) {
  if (c == NULL)
    return;
  SSL_free(c->ssl); /* no close_notify: the tests close like a crash */
  close(c->fd);
  json_decref(c->welcome);
  json_decref(c->queue);
  free(c->buf);
  free(c);
}

const char *th_str(const json_t *obj, const char *key) {
  return json_string_value(json_object_get(obj, key));
}

long long th_int(const json_t *obj, const char *key) {
  json_t *v = json_object_get(obj, key);
  return json_is_integer(v) ? (long long)json_integer_value(v) : -1;
}

void th_assert_type(const json_t *obj, const char *type, const char *code) {
  const char *t = th_str(obj, "type");
  const char *cd = th_str(obj, "code");
  if (t == NULL || strcmp(t, type) != 0 ||
      (code && (cd == NULL || strcmp(cd, code) != 0))) {
    char *s = json_dumps(obj, JSON_COMPACT);
    fail_msg("expected type %s%s%s, got %s", type, code ? " code " : "",
             code ? code : "", s ? s : "?");
  }
}
