/* fuzz_tls.c -- libFuzzer target: JSON Lines framing after TLS decryption.
 *
 * The receiving side is a real chat_conn_t over TLS (common/conn.c, tls.c)
 * accepted from a loopback listener with a server context; the certificates
 * are made once at start-up (tests/support/test_certs.h) in a temporary
 * directory. Per input, a client SSL object with memory BIOs here does the
 * handshake over a plain non-blocking socket, encrypts a plaintext stream in
 * records of sizes the input picks, and writes the ciphertext in socket
 * writes of sizes the input picks; the loop runs after each write until the
 * connection has read it, so every write is one read on the other side.
 *
 * Input layout:
 *   byte 0   max_frame: low 2 bits the mode, v = the other 6 bits:
 *            0 default (65536), 1 16+v, 2 64+16v, 3 4096
 *   byte 1   bit 0 TLS 1.2 (else 1.3); bit 1 close_notify at the end (else
 *            only FIN); bit 2 an on_line hook (takes lines starting 'x');
 *            bit 3 pause in every on_frame, resume after that loop turn;
 *            bit 4 answer every frame with a line (the write direction);
 *            bit 5 a KeyUpdate after the first record (TLS 1.3); bit 6
 *            TLS 1.3 record padding; bit 7 flip one ciphertext byte
 *   byte 2   low nibble: k record-size bytes follow, high nibble: j
 *            socket-write-size bytes follow (0: one SSL_write / as much as
 *            the socket takes)
 *   byte 3   corruption offset (bit 7 of byte 1), scaled by the length
 *   k bytes  record sizes, in turn: b < 200 is b+1 bytes, else (b-199)*512
 *            (after MAX_RECORDS, the rest in one SSL_write)
 *   j bytes  socket write sizes, in turn: b < 200 is b+1, else (b-199)*256
 *            (after MAX_WRITES, the rest in one write)
 *   rest     the plaintext; 0xff + op expands: 'F' n a frame of about
 *            n*max_frame/64 bytes (n = the next byte), 'L' n a line of
 *            max_frame - 2 + (n % 6) bytes (straddles the limit), 'B' bad
 *            JSON, 'E' a blank line, 'C' CRLF; 0xff 0xff is one 0xff byte
 *
 * Oracle: the same plaintext through a chat_decoder_t and chat_frame_parse
 * directly, with the hook's and on_frame's rules of conn.c. The connection's
 * callbacks (frames with their bytes, bad frames with code and text, hooked
 * lines, frame_too_large) must be exactly that sequence, and on_close must
 * say UV_EOF, or -CHAT_E_FRAME_TOO_LARGE after that error. With a flipped
 * byte, only a prefix of it, and UV_EPROTO (bad MAC) or UV_EOF (a length
 * field that now runs past the FIN) may end it. The answers the
 * connection writes must reach the client as valid TLS, one per frame, when
 * the client reads to a clean end. Nothing may leak.
 */
#include "chat_conn.h"
#include "chat_protocol.h"
#include "chat_tls.h"
#include "fuzz_common.h"

#include "test_certs.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#define MAX_PLAIN (128 * 1024) /* expanded plaintext per input */
/* Records and socket writes cut as the input says; past these, the rest
 * goes in one piece, so an input stays within milliseconds. */
#define MAX_RECORDS 256
#define MAX_WRITES 256
#define SPIN_MAX 200000        /* loop turns before a wait counts as a hang */
#define ANSWER "{\"type\":\"echo\"}\n"

/* A growing byte buffer: plaintext, ciphertext, event records. */
struct buf {
  char *p;
  size_t len, cap;
};

static void buf_put(struct buf *b, const void *data, size_t n) {
  if (b->cap - b->len < n) {
    size_t cap = b->cap ? b->cap : 256;
    while (cap - b->len < n)
      cap *= 2;
    b->p = realloc(b->p, cap);
    if (b->p == NULL)
      abort();
    b->cap = cap;
  }
  if (n > 0)
    memcpy(b->p + b->len, data, n);
  b->len += n;
}

static void buf_byte(struct buf *b, char c) { buf_put(b, &c, 1); }

static void buf_free(struct buf *b) {
  free(b->p);
  memset(b, 0, sizeof(*b));
}

/* One event: a kind byte, a length and the bytes. */
static void event(struct buf *b, char kind, const char *data, size_t n) {
  uint32_t len = (uint32_t)n;
  buf_byte(b, kind);
  buf_put(b, &len, sizeof(len));
  buf_put(b, data, n);
}

static void event_bad(struct buf *b, const chat_error_t *err) {
  char text[200];
  int n = snprintf(text, sizeof(text), "%d %s", err->code, err->message);
  event(b, 'B', text, (size_t)n);
}

/* ---- the loop and the listener, set up once ----------------------------- */

static struct {
  uv_loop_t loop;
  chat_io_t *io;
  uv_tcp_t listener;
  int port;
  chat_tls_ctx_t *srv_ctx;
  SSL_CTX *cli12, *cli13;
  char dir[64];
} world;

/* ---- this input's state ------------------------------------------------- */

static struct {
  chat_conn_t *conn;   /* the accepted connection, freed in on_close */
  size_t max_frame;
  int hook, pause, answer;
  int accepted, closed, close_status;
  int want_resume;
  long frames, answers;
  struct buf events;
} g;

static int on_line(chat_conn_t *c, const char *line, size_t len) {
  event(&g.events, 'L', line, len);
  return len > 0 && line[0] == 'x';
}

static void on_frame(chat_conn_t *c, json_t *obj, const char *line,
                     size_t len) {
  FUZZ_CHECK(json_is_object(obj));
  event(&g.events, 'F', line, len);
  g.frames++;
  if (g.answer &&
      chat_conn_send_line(c, ANSWER, sizeof(ANSWER) - 1) == 0)
    g.answers++;
  if (g.pause) {
    chat_conn_pause(c);
    g.want_resume = 1;
  }
}

static void on_bad_frame(chat_conn_t *c, const chat_error_t *err) {
  if (err->code == CHAT_E_FRAME_TOO_LARGE)
    event(&g.events, 'T', NULL, 0);
  else
    event_bad(&g.events, err);
}

static void on_close(chat_conn_t *c, int status) {
  FUZZ_CHECK(c == g.conn);
  g.closed = 1;
  g.close_status = status;
  free(c);
  g.conn = NULL;
}

static const chat_conn_cbs_t cbs = {on_frame, on_bad_frame, NULL, on_close};

static void on_connection(uv_stream_t *server, int status) {
  chat_conn_opts_t opts = {g.max_frame, 0};
  chat_conn_t *c;

  FUZZ_CHECK(status == 0 && !g.accepted && g.conn == NULL);
  c = calloc(1, sizeof(*c));
  FUZZ_CHECK(c != NULL);
  FUZZ_CHECK(chat_conn_init(world.io, c, &cbs, &opts) == 0);
  g.conn = c;
  g.accepted = 1;
  if (g.hook)
    chat_conn_set_on_line(c, on_line);
  FUZZ_CHECK(chat_conn_tls(c, world.srv_ctx, NULL) == 0);
  FUZZ_CHECK(chat_conn_accept(c, server) == 0);
}

/* One loop turn without blocking, then the resume a pause asked for. */
static void turn(void) {
  uv_run(&world.loop, UV_RUN_NOWAIT);
  if (g.want_resume && g.conn != NULL) {
    g.want_resume = 0;
    chat_conn_resume(g.conn);
  }
}

/* ---- the client --------------------------------------------------------- */

struct client {
  int fd;
  SSL *ssl;
  BIO *rbio, *wbio;   /* owned by ssl */
  int eof, reset, tls_end, done;
  struct buf answers; /* plaintext the connection sent back */
};

/* Reads what the socket has into the SSL object, and the plaintext out. */
static void client_drain(struct client *cl) {
  char tmp[16384];
  ssize_t n;
  size_t got;

  while (!cl->eof && !cl->reset) {
    n = read(cl->fd, tmp, sizeof(tmp));
    if (n > 0)
      FUZZ_CHECK(BIO_write(cl->rbio, tmp, (int)n) == (int)n);
    else if (n == 0)
      cl->eof = 1;
    else if (errno == EAGAIN || errno == EWOULDBLOCK)
      break;
    else if (errno != EINTR)
      cl->reset = 1;
  }
  if (!cl->done || cl->tls_end)
    return;
  for (;;) {
    int r = SSL_read_ex(cl->ssl, tmp, sizeof(tmp), &got);
    if (r == 1) {
      buf_put(&cl->answers, tmp, got);
      continue;
    }
    int e = SSL_get_error(cl->ssl, r);
    if (e == SSL_ERROR_ZERO_RETURN)
      cl->tls_end = 1;
    else if (e != SSL_ERROR_WANT_READ)
      cl->tls_end = 2; /* broken: only allowed after a flipped byte */
    ERR_clear_error();
    return;
  }
}

/* Writes all of data (the socket is non-blocking: turns the loop while it
 * is full). Returns 0, or -1 once the connection is gone. */
static int client_write(struct client *cl, const char *data, size_t n) {
  long spins = 0;

  while (n > 0) {
    ssize_t w = send(cl->fd, data, n, MSG_NOSIGNAL);
    if (w > 0) {
      data += w;
      n -= (size_t)w;
      continue;
    }
    if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
      return -1;
    turn();
    client_drain(cl);
    FUZZ_CHECK(++spins < SPIN_MAX);
  }
  return 0;
}

/* Turns the loop until the connection has read through byte `target` of
 * io's input, or is gone. */
static void wait_read(struct client *cl, unsigned long long target) {
  chat_io_stats_t st;
  long spins = 0;

  for (;;) {
    chat_io_get_stats(world.io, &st);
    if (st.bytes_read >= target || g.closed)
      break;
    turn();
    client_drain(cl);
    FUZZ_CHECK(++spins < SPIN_MAX);
  }
  /* And once more, for the check phase's writes and a pending resume. */
  turn();
  turn();
  client_drain(cl);
}

static void wbio_take(struct client *cl, struct buf *out) {
  char tmp[16384];
  int n;

  while ((n = BIO_read(cl->wbio, tmp, sizeof(tmp))) > 0)
    buf_put(out, tmp, (size_t)n);
}

/* The handshake, until the client is done; the client's last flight (its
 * Finished in TLS 1.3) is left in `first` to travel with the data. */
static void client_handshake(struct client *cl, struct buf *first) {
  struct buf out = {0};
  long spins = 0;

  for (;;) {
    int r = SSL_do_handshake(cl->ssl);
    if (r == 1)
      break;
    FUZZ_CHECK(SSL_get_error(cl->ssl, r) == SSL_ERROR_WANT_READ);
    out.len = 0;
    wbio_take(cl, &out);
    if (out.len > 0)
      FUZZ_CHECK(client_write(cl, out.p, out.len) == 0);
    turn();
    client_drain(cl);
    FUZZ_CHECK(!cl->eof && !cl->reset && !g.closed);
    FUZZ_CHECK(++spins < SPIN_MAX);
  }
  cl->done = 1;
  buf_free(&out);
  wbio_take(cl, first);
}

/* ---- the input ---------------------------------------------------------- */

static size_t size_of(uint8_t b, size_t big) {
  return b < 200 ? (size_t)b + 1 : (size_t)(b - 199) * big;
}

static size_t max_frame_of(uint8_t b) {
  size_t v = b >> 2;
  switch (b & 3) {
  case 0: return CHAT_MAX_FRAME_DEFAULT;
  case 1: return 16 + v;
  case 2: return 64 + 16 * v;
  default: return 4096;
  }
}

/* A frame of about n bytes: {"type":"f","i":N,"p":"aaa..."} */
static void gen_frame(struct buf *pl, size_t n, unsigned i) {
  char head[64];
  int h = snprintf(head, sizeof(head), "{\"type\":\"f\",\"i\":%u,\"p\":\"", i);
  buf_put(pl, head, (size_t)h);
  for (size_t k = (size_t)h + 3; k < n; k++)
    buf_byte(pl, (char)('a' + k % 26));
  buf_put(pl, "\"}\n", 3);
}

static void expand(struct buf *pl, const uint8_t *p, const uint8_t *end,
                   size_t max_frame) {
  unsigned i = 0;
  int crlf = 0;

  while (p < end && pl->len < MAX_PLAIN) {
    uint8_t b = *p++;
    if (b != 0xff || p == end) {
      buf_byte(pl, (char)b);
      continue;
    }
    uint8_t op = *p++;
    uint8_t n = p < end ? *p : 0;
    switch (op) {
    case 'F':
      p += p < end;
      gen_frame(pl, 24 + n * max_frame / 64, i++);
      if (crlf) { /* make it end in CR LF */
        pl->p[pl->len - 1] = '\r';
        buf_byte(pl, '\n');
        crlf = 0;
      }
      break;
    case 'L':
      p += p < end;
      gen_frame(pl, max_frame - 2 + n % 6, i++);
      break;
    case 'B':
      buf_put(pl, "{\"type\":\n", 9);
      break;
    case 'E':
      buf_put(pl, crlf ? "\r\n" : "\n", crlf ? 2 : 1);
      crlf = 0;
      break;
    case 'C':
      crlf = 1;
      break;
    default:
      buf_byte(pl, (char)op); /* 0xff 0xff and the rest: literal */
      break;
    }
  }
  if (pl->len > MAX_PLAIN)
    pl->len = MAX_PLAIN;
}

/* What conn.c's dispatch must do with the stream, done directly. Returns
 * the close status it must end with. */
static int reference(const struct buf *pl, size_t max_frame, int hook,
                     struct buf *ev) {
  chat_decoder_t d;
  const char *line;
  size_t len;
  int status = UV_EOF;

  chat_decoder_init(&d, max_frame);
  chat_decoder_feed(&d, pl->p != NULL ? pl->p : "", pl->len);
  for (;;) {
    int rc = chat_decoder_next(&d, &line, &len);
    if (rc == 0)
      break;
    if (rc == -CHAT_E_FRAME_TOO_LARGE) {
      event(ev, 'T', NULL, 0);
      status = -CHAT_E_FRAME_TOO_LARGE;
      break;
    }
    FUZZ_CHECK(rc == 1);
    if (hook) {
      event(ev, 'L', line, len);
      if (len > 0 && line[0] == 'x')
        continue;
    }
    json_t *obj = NULL;
    chat_error_t err;
    memset(&err, 0, sizeof(err));
    rc = chat_frame_parse(line, len, &obj, &err);
    if (rc == 0) {
      event(ev, 'F', line, len);
      json_decref(obj);
    } else if (rc == -CHAT_E_BAD_JSON) {
      event_bad(ev, &err);
    } else {
      FUZZ_CHECK(rc == 1); /* blank */
    }
  }
  chat_decoder_free(&d);
  return status;
}

/* Non-blocking from the start: libFuzzer's -timeout alarm (SIGALRM, no
 * SA_RESTART) can interrupt a blocking connect() with EINTR, and on a busy
 * machine the loopback handshake is not always done within the call. The
 * caller turns the loop until the server accepts; connected() says when the
 * client's side is done too. */
static int client_connect(void) {
  struct sockaddr_in sa;
  int one = 1, rc, fd = socket(AF_INET, SOCK_STREAM, 0);

  FUZZ_CHECK(fd >= 0);
  FUZZ_CHECK(fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) == 0);
  memset(&sa, 0, sizeof(sa));
  sa.sin_family = AF_INET;
  sa.sin_port = htons((uint16_t)world.port);
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  do
    rc = connect(fd, (struct sockaddr *)&sa, sizeof(sa));
  while (rc < 0 && errno == EINTR);
  if (rc < 0 && errno != EINPROGRESS) {
    fprintf(stderr, "fuzz_tls: connect: %s\n", strerror(errno));
    FUZZ_CHECK(!"connect to the loopback listener");
  }
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  return fd;
}

/* 1 once the client's connect has finished, 0 while it is under way. */
static int connected(int fd) {
  struct pollfd pfd = {.fd = fd, .events = POLLOUT};
  int err = 0;
  socklen_t n = sizeof(err);

  if (poll(&pfd, 1, 0) <= 0)
    return 0;
  FUZZ_CHECK(getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &n) == 0 && err == 0);
  return 1;
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int rm_cb(const char *p, const struct stat *st, int flag,
                 struct FTW *ftw) {
  (void)st, (void)flag, (void)ftw;
  return remove(p);
}

static void cleanup(void) {
  nftw(world.dir, rm_cb, 8, FTW_DEPTH | FTW_PHYS);
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  char cert[128], key[128], err[256];
  struct sockaddr_in sa;
  int n = sizeof(sa);

  snprintf(world.dir, sizeof(world.dir), "%s/chat-fuzz-tls-XXXXXX",
           getenv("TMPDIR") != NULL ? getenv("TMPDIR") : "/tmp");
  if (mkdtemp(world.dir) == NULL || tc_make(world.dir) != 0)
    abort();
  atexit(cleanup);
  snprintf(cert, sizeof(cert), "%s/server.pem", world.dir);
  snprintf(key, sizeof(key), "%s/server.key", world.dir);
  if (chat_tls_server_ctx(cert, key, &world.srv_ctx, err, sizeof(err)) != 0) {
    fprintf(stderr, "fuzz_tls: %s\n", err);
    abort();
  }
  /* The client verifies nothing: the code under test is the receiver. */
  world.cli12 = SSL_CTX_new(TLS_client_method());
  world.cli13 = SSL_CTX_new(TLS_client_method());
  if (world.cli12 == NULL || world.cli13 == NULL)
    abort();
  SSL_CTX_set_max_proto_version(world.cli12, TLS1_2_VERSION);
  SSL_CTX_set_min_proto_version(world.cli13, TLS1_3_VERSION);
  SSL_CTX_set_session_cache_mode(world.cli12, SSL_SESS_CACHE_OFF);
  SSL_CTX_set_session_cache_mode(world.cli13, SSL_SESS_CACHE_OFF);

  if (uv_loop_init(&world.loop) != 0 ||
      chat_io_new(&world.loop, &world.io) != 0 ||
      uv_tcp_init(&world.loop, &world.listener) != 0)
    abort();
  chat_io_set_close_timeout(world.io, 2000);
  memset(&sa, 0, sizeof(sa));
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (uv_tcp_bind(&world.listener, (struct sockaddr *)&sa, 0) != 0 ||
      uv_listen((uv_stream_t *)&world.listener, 16, on_connection) != 0 ||
      uv_tcp_getsockname(&world.listener, (struct sockaddr *)&sa, &n) != 0)
    abort();
  world.port = ntohs(sa.sin_port);
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const uint8_t *p = data, *end = data + size;
  uint8_t mf = chat__fuzz_byte(&p, end);
  uint8_t flags = chat__fuzz_byte(&p, end);
  uint8_t counts = chat__fuzz_byte(&p, end);
  uint8_t flip_at = chat__fuzz_byte(&p, end);
  uint8_t rec[15], wr[15];
  size_t nrec = counts & 15, nwr = counts >> 4;
  struct buf plain = {0}, cipher = {0}, want = {0};
  struct client cl;
  chat_io_stats_t st;
  int tls12 = flags & 1, flip = (flags & 128) != 0, want_status;

  if (size > 64 * 1024)
    return -1; /* bounded: keep each input in milliseconds */
  for (size_t i = 0; i < nrec; i++)
    rec[i] = chat__fuzz_byte(&p, end);
  for (size_t i = 0; i < nwr; i++)
    wr[i] = chat__fuzz_byte(&p, end);

  memset(&g, 0, sizeof(g));
  g.max_frame = max_frame_of(mf);
  g.hook = (flags & 4) != 0;
  g.pause = (flags & 8) != 0;
  g.answer = (flags & 16) != 0;
  expand(&plain, p, end, g.max_frame);
  want_status = reference(&plain, g.max_frame, g.hook, &want);

  /* Connect, and the handshake. */
  memset(&cl, 0, sizeof(cl));
  cl.fd = client_connect();
  for (long spins = 0; !g.accepted || !connected(cl.fd); spins++) {
    FUZZ_CHECK(spins < SPIN_MAX);
    turn();
  }
  cl.ssl = SSL_new(tls12 ? world.cli12 : world.cli13);
  cl.rbio = BIO_new(BIO_s_mem());
  cl.wbio = BIO_new(BIO_s_mem());
  FUZZ_CHECK(cl.ssl != NULL && cl.rbio != NULL && cl.wbio != NULL);
  BIO_set_mem_eof_return(cl.rbio, -1);
  SSL_set_bio(cl.ssl, cl.rbio, cl.wbio);
  SSL_set_connect_state(cl.ssl);
  if (!tls12 && (flags & 64))
    SSL_set_block_padding(cl.ssl, 256);
  client_handshake(&cl, &cipher);
  size_t hs_len = cipher.len; /* the client's last flight leads */

  /* The plaintext, in records of the input's sizes. */
  for (size_t off = 0, i = 0; off < plain.len; i++) {
    size_t n = nrec > 0 && i < MAX_RECORDS ? size_of(rec[i % nrec], 512)
                                           : plain.len - off;
    size_t put = 0;
    if (n > plain.len - off)
      n = plain.len - off;
    FUZZ_CHECK(SSL_write_ex(cl.ssl, plain.p + off, n, &put) == 1 && put == n);
    off += n;
    if (i == 0 && !tls12 && (flags & 32))
      FUZZ_CHECK(SSL_key_update(cl.ssl, SSL_KEY_UPDATE_REQUESTED) == 1);
    wbio_take(&cl, &cipher);
  }
  if (flags & 2) {
    (void)SSL_shutdown(cl.ssl); /* close_notify */
    wbio_take(&cl, &cipher);
  }
  if (flip && cipher.len > 0) /* anywhere, the client's Finished included */
    cipher.p[(size_t)flip_at * cipher.len / 256] ^= 0x20;
  (void)hs_len;

  /* The ciphertext, in socket writes of the input's sizes; each is read by
   * the connection before the next is written. */
  chat_io_get_stats(world.io, &st);
  unsigned long long base = st.bytes_read;
  size_t off = 0;
  for (size_t i = 0; off < cipher.len && !g.closed; i++) {
    size_t n = nwr > 0 && i < MAX_WRITES ? size_of(wr[i % nwr], 256)
                                         : cipher.len - off;
    if (n > cipher.len - off)
      n = cipher.len - off;
    if (client_write(&cl, cipher.p + off, n) < 0)
      break;
    off += n;
    wait_read(&cl, base + off);
  }

  /* The end of the stream: FIN, then the connection closes. */
  shutdown(cl.fd, SHUT_WR);
  for (long spins = 0; !g.closed || (!cl.eof && !cl.reset); spins++) {
    FUZZ_CHECK(spins < SPIN_MAX);
    turn();
    client_drain(&cl);
  }
  client_drain(&cl);

  /* The verdict. */
  if (getenv("FUZZ_DEBUG") != NULL)
    fprintf(stderr, "fuzz_tls: TLS 1.%d, max_frame %zu, %zu plaintext bytes "
                    "in %zu ciphertext, events %zu/%zu bytes, %ld frames, "
                    "%ld answers (%zu bytes back), status %d (want %d)%s\n",
            tls12 ? 2 : 3, g.max_frame, plain.len, cipher.len, g.events.len,
            want.len, g.frames, g.answers, cl.answers.len, g.close_status,
            want_status, cl.reset ? ", reset" : "");
  if (flip) {
    /* A bad record MAC ends it with UV_EPROTO; a flipped length field
     * leaves a record unfinished at the FIN: UV_EOF. Either way nothing
     * but a prefix of the stream came out. */
    FUZZ_CHECK(g.close_status == UV_EPROTO || g.close_status == UV_EOF ||
               g.close_status == want_status);
    FUZZ_CHECK(g.events.len <= want.len);
    FUZZ_CHECK(g.events.len == 0 ||
               memcmp(g.events.p, want.p, g.events.len) == 0);
  } else {
    if (g.events.len != want.len ||
        (want.len > 0 && memcmp(g.events.p, want.p, want.len) != 0) ||
        g.close_status != want_status)
      fprintf(stderr, "fuzz_tls: events %zu bytes, want %zu; status %d, "
                      "want %d\n", g.events.len, want.len, g.close_status,
              want_status);
    FUZZ_CHECK(g.events.len == want.len);
    FUZZ_CHECK(want.len == 0 || memcmp(g.events.p, want.p, want.len) == 0);
    FUZZ_CHECK(g.close_status == want_status);
  }
  /* The answers: valid TLS, one per frame, when the client read to the end
   * without a reset. */
  if (!flip) {
    FUZZ_CHECK(cl.tls_end != 2);
    if (cl.eof && !cl.reset) {
      FUZZ_CHECK(cl.answers.len ==
                 (size_t)g.answers * (sizeof(ANSWER) - 1));
      for (size_t k = 0; k < cl.answers.len; k += sizeof(ANSWER) - 1)
        FUZZ_CHECK(memcmp(cl.answers.p + k, ANSWER, sizeof(ANSWER) - 1) == 0);
    }
  }

  close(cl.fd);
  SSL_free(cl.ssl);
  ERR_clear_error();
  buf_free(&cl.answers);
  buf_free(&plain);
  buf_free(&cipher);
  buf_free(&want);
  buf_free(&g.events);
  FUZZ_CHECK(g.conn == NULL);
  return 0;
}
