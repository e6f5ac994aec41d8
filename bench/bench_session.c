/* bench_session.c -- one bench user's connection to the server.
 *
 * A connection lives for one setup step: connect, welcome, then either
 * register (and close) or login (and stay for the run). Control requests use
 * string ids ("reg", "login", "contact", "connect"); sends use the message's
 * sequence number as an integer id, so an error reply names the message.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "bench.h"

static void on_frame(chat_conn_t *c, json_t *obj, const char *line,
                     size_t len);
static void on_bad_frame(chat_conn_t *c, const chat_error_t *err);
static int on_line(chat_conn_t *c, const char *line, size_t len);
static void on_overflow(chat_conn_t *c);
static void on_close(chat_conn_t *c, int status);

static const chat_conn_cbs_t session_cbs = {on_frame, on_bad_frame,
                                            on_overflow, on_close};

int bench_session_send_line(bench_user_t *u, const char *line, size_t len) {
  int rc = chat_conn_send_line(&u->conn, line, len);
  if (rc < 0 && !u->b->stopping) {
    bench_note_error(u->b, BENCH_E_DISCONNECTED, 1);
    char why[96];
    snprintf(why, sizeof(why), "%s: send failed: %s", u->name,
             chat_strerror(rc));
    bench_stop(u->b, why);
  }
  return rc;
}

void bench_session_send_fmt(bench_user_t *u, const char *fmt, ...) {
  char line[1024];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(line, sizeof(line), fmt, ap);
  va_end(ap);
  if (n < 0 || (size_t)n >= sizeof(line))
    return; /* names and passwords are bounded well below this */
  bench_session_send_line(u, line, (size_t)n);
}

/* --server-b takes the receivers of pairs; everyone else uses --server. */
static int on_server_b(const bench_user_t *u) {
  return u->b->opts.port_b != 0 && u->role == BENCH_RECEIVER;
}

static void on_connect(chat_conn_t *c, int status) {
  bench_user_t *u = c->data;
  if (status < 0 && !u->b->stopping) {
    const bench_opts_t *o = &u->b->opts;
    int on_b = on_server_b(u);
    bench_note_error(u->b, BENCH_E_CONNECT, 1);
    char why[512];
    const char *tls = chat_conn_tls_error(c);
    snprintf(why, sizeof(why), "%s: cannot connect to %s:%d: %s%s%s",
             u->name, on_b ? o->host_b : o->host, on_b ? o->port_b : o->port,
             uv_strerror(status), tls ? ": " : "", tls ? tls : "");
    bench_stop(u->b, why);
  }
  /* on_close follows a failure; the welcome follows a success. */
}

int bench_session_open(bench_user_t *u, int login) {
  bench_t *b = u->b;
  memset(&u->conn, 0, sizeof(u->conn));
  /* A sender's window of bodies plus headroom; receivers queue only acks. */
  chat_conn_opts_t opts = {0, 0};
  size_t want = (size_t)b->opts.window * (b->opts.size + 256) + (1u << 20);
  opts.max_output = want;
  int rc = chat_conn_init(b->io, &u->conn, &session_cbs, &opts);
  if (rc < 0)
    return rc;
  u->conn.data = u;
  chat_conn_set_on_line(&u->conn, on_line);
  u->conn_live = 1;
  b->live_conns++;
  u->want_login = login;
  u->state = BENCH_U_CONNECTING;
  int on_b = on_server_b(u);
  if (b->tls_ctx &&
      (rc = chat_conn_tls(&u->conn, b->tls_ctx,
                          on_b ? b->opts.host_b : b->opts.host)) < 0) {
    bench_note_error(b, BENCH_E_CONNECT, 1);
    chat_conn_abort(&u->conn);
    return rc;
  }
  rc = chat_conn_connect(&u->conn,
                         (const struct sockaddr *)(on_b ? &b->server_addr_b
                                                        : &b->server_addr),
                         on_connect);
  if (rc < 0) {
    /* Nothing was started; closing the initialised handle ends it through
     * on_close like any other failure. */
    bench_note_error(b, BENCH_E_CONNECT, 1);
    chat_conn_abort(&u->conn);
    return rc;
  }
  return 0;
}

void bench_session_close(bench_user_t *u) {
  if (u->conn_live && u->state != BENCH_U_CLOSED)
    chat_conn_close(&u->conn);
}

static void send_login(bench_user_t *u) {
  bench_t *b = u->b;
  u->state = BENCH_U_LOGGING_IN;
  u->login_ns = bench_now_ns();
  if (u->role == BENCH_RECEIVER && b->opts.mode == BENCH_DIRECT)
    bench_session_send_fmt(
        u,
        "{\"type\":\"login\",\"id\":\"login\",\"user\":\"%s\","
        "\"password\":\"%s\",\"p2p_port\":%d,\"key\":\"%s\"}\n",
        u->name, b->opts.password, b->listener_port, b->peer_key);
  else if (b->opts.mode == BENCH_DIRECT)
    bench_session_send_fmt(
        u,
        "{\"type\":\"login\",\"id\":\"login\",\"user\":\"%s\","
        "\"password\":\"%s\",\"key\":\"%s\"}\n",
        u->name, b->opts.password, b->peer_key);
  else
    bench_session_send_fmt(
        u,
        "{\"type\":\"login\",\"id\":\"login\",\"user\":\"%s\","
        "\"password\":\"%s\"}\n",
        u->name, b->opts.password);
}

static void on_welcome(bench_user_t *u) {
  if (u->state != BENCH_U_CONNECTING) {
    bench_note_error(u->b, BENCH_E_BAD_FRAME, 1);
    return;
  }
  if (u->want_login) {
    send_login(u);
  } else {
    u->state = BENCH_U_REGISTERING;
    bench_session_send_fmt(
        u,
        "{\"type\":\"register\",\"id\":\"reg\",\"user\":\"%s\","
        "\"password\":\"%s\"}\n",
        u->name, u->b->opts.password);
  }
}

static void registered(bench_user_t *u) {
  /* The phase step ends in on_close, once the memory may be reused. */
  u->state = BENCH_U_REGISTERED;
  chat_conn_close(&u->conn);
}

static int id_is(const chat_msg_t *m, const char *s) {
  return m->id && json_is_string(m->id) && !strcmp(json_string_value(m->id), s);
}

static void setup_failed(bench_user_t *u, const char *what,
                         const chat_msg_t *m) {
  char why[192];
  snprintf(why, sizeof(why), "%s of %s failed: %s %s", what, u->name,
           m->code ? m->code : "?", m->message ? m->message : "");
  bench_stop(u->b, why); /* the reply itself was counted */
}

static void on_ok(bench_user_t *u, const chat_msg_t *m) {
  bench_t *b = u->b;
  if ((u->role == BENCH_G_OWNER || u->role == BENCH_G_MEMBER) &&
      !id_is(m, "reg") && !id_is(m, "login")) {
    bench_group_on_ok(u, m);
    return;
  }
  if (m->id && json_is_integer(m->id)) {
    if (u->role == BENCH_SENDER && u->pair)
      bench_traffic_on_ok(b, u->pair, (long)json_integer_value(m->id),
                          m->msg_id, m->state);
    else
      bench_note_error(b, BENCH_E_BAD_FRAME, 1);
    return;
  }
  if (id_is(m, "reg") && u->state == BENCH_U_REGISTERING) {
    registered(u);
  } else if (id_is(m, "login") && u->state == BENCH_U_LOGGING_IN) {
    u->state = BENCH_U_READY;
    bench_phase_user_done(b, u);
  } else if (id_is(m, "contact") && u->pair) {
    bench_phase_contact_ok(b, u);
  } else if (id_is(m, "connect") && u->pair && u->role == BENCH_SENDER) {
    if (bench_peer_dial(b, u->pair, m) < 0 && !b->stopping) {
      bench_note_error(b, BENCH_E_CONNECT, 1);
      bench_stop(b, "cannot dial a peer link");
    }
  } else {
    bench_note_error(b, BENCH_E_BAD_FRAME, 1);
  }
}

static void on_error(bench_user_t *u, const chat_msg_t *m) {
  bench_t *b = u->b;
  if (id_is(m, "reg") && m->code && !strcmp(m->code, "user_exists")) {
    /* A rerun with the same --prefix: the login will tell whether the
     * password is the same. */
    registered(u);
    return;
  }
  bench_note_reply(b, m->code);
  if (!m->id && m->code && !strcmp(m->code, "rate_limited")) {
    /* The server dropped a frame without saying which: the window would
     * never close again, and the figures would measure the limiter. */
    bench_stop(b, "the server rate-limited the bench: run it with "
                  "--rate-limit 0");
    return;
  }
  if (m->id && json_is_integer(m->id) && u->role == BENCH_SENDER && u->pair) {
    bench_traffic_on_send_error(b, u->pair, m);
  } else if (id_is(m, "reg")) {
    setup_failed(u, "register", m);
  } else if (id_is(m, "login")) {
    setup_failed(u, "login", m);
  } else if (id_is(m, "contact")) {
    setup_failed(u, "contact_add", m);
  } else if (id_is(m, "connect")) {
    setup_failed(u, "connect", m);
  } else if (u->role == BENCH_G_OWNER && m->id) {
    /* A failed group set-up step or group_send: window 1 would stall. */
    setup_failed(u, json_is_string(m->id) &&
                            bench_group_setup_id(json_string_value(m->id))
                        ? json_string_value(m->id)
                        : "group_send",
                 m);
  }
  /* Other errors (no id, e.g. server_busy or bad_json) are counted above;
   * a server that closes after one ends the run in on_close. */
}

static void on_deliver(bench_user_t *u, const chat_msg_t *m) {
  bench_t *b = u->b;
  if (!m->msg_id || !m->from || !chat_msg_id_valid(m->msg_id) ||
      !chat_name_valid(m->from)) {
    bench_note_error(b, BENCH_E_BAD_FRAME, 1);
    return; /* nothing we could safely echo in an ack */
  }
  char line[160];
  int n = snprintf(line, sizeof(line),
                   "{\"type\":\"ack\",\"msg_id\":\"%s\",\"from\":\"%s\"}\n",
                   m->msg_id, m->from);
  if (u->role == BENCH_G_MEMBER || u->role == BENCH_G_OWNER) {
    bench_group_on_deliver(u, m);
  } else if (u->role != BENCH_RECEIVER || !u->pair ||
             strcmp(m->from, u->pair->snd.name) != 0 || m->group) {
    bench_note_error(b, BENCH_E_BAD_BODY, 1);
  } else {
    bench_traffic_on_deliver(b, u->pair, m->msg_id, m->body, m->body_len,
                             m->offline, 0);
  }
  /* Acked whatever it was, so the server can drop it. */
  if (!b->stopping)
    bench_session_send_line(u, line, (size_t)n);
}

static void on_receipt(bench_user_t *u) {
  if (u->role == BENCH_SENDER && u->pair) {
    u->pair->receipts++;
    u->b->receipts++;
    bench_phase_check(u->b);
  }
}

/* A plain (unescaped) string field copied with its NUL into dst. */
static int fast_str(const chat_fast_field_t *f, char *dst, size_t size) {
  if (f == NULL || f->kind != CHAT_FAST_STRING || f->escaped ||
      f->raw_len >= size)
    return -1;
  memcpy(dst, f->raw, f->raw_len);
  dst[f->raw_len] = '\0';
  return 0;
}

static int key_is(const chat_fast_field_t *f, const char *key, size_t n) {
  return f->key_len == n && memcmp(f->key, key, n) == 0;
}
#define KEY_IS(f, lit) key_is((f), (lit), sizeof(lit) - 1)

/* The hot frames -- deliver, the ok of a send, receipt -- read with the
 * protocol's flat scanner, not a jansson tree: parsing every frame was
 * two thirds of the bench's CPU. Anything else, and anything unusual (an
 * escaped string, a missing field), returns 0 and takes on_frame's way. */
static int on_line(chat_conn_t *c, const char *line, size_t len) {
  bench_user_t *u = c->data;
  chat_fast_field_t f[CHAT_FAST_MAX_FIELDS];
  const chat_fast_field_t *type = NULL, *id = NULL, *msg_id = NULL,
                          *from = NULL, *body = NULL, *status = NULL,
                          *offline = NULL, *group = NULL, *ts = NULL;
  char msg_id_s[CHAT_MAX_MSG_ID + 1], from_s[CHAT_MAX_NAME + 1];
  char group_s[CHAT_MAX_NAME + 1], status_s[16];
  int n = chat_fast_scan(line, len, f, CHAT_FAST_MAX_FIELDS);

  for (int i = 0; i < n; i++) {
    const chat_fast_field_t *x = &f[i];
    if (KEY_IS(x, "type")) type = x;
    else if (KEY_IS(x, "id")) id = x;
    else if (KEY_IS(x, "msg_id")) msg_id = x;
    else if (KEY_IS(x, "from")) from = x;
    else if (KEY_IS(x, "body")) body = x;
    else if (KEY_IS(x, "status")) status = x;
    else if (KEY_IS(x, "offline")) offline = x;
    else if (KEY_IS(x, "group")) group = x;
    else if (KEY_IS(x, "ts")) ts = x;
  }
  if (type == NULL || type->kind != CHAT_FAST_STRING || type->escaped)
    return 0;
  if (type->raw_len == 7 && !memcmp(type->raw, "deliver", 7)) {
    chat_msg_t m;
    if (fast_str(msg_id, msg_id_s, sizeof(msg_id_s)) < 0 ||
        fast_str(from, from_s, sizeof(from_s)) < 0 || body == NULL ||
        body->kind != CHAT_FAST_STRING || body->escaped || ts == NULL ||
        ts->kind != CHAT_FAST_INT || offline == NULL ||
        offline->kind != CHAT_FAST_BOOL ||
        (group && fast_str(group, group_s, sizeof(group_s)) < 0))
      return 0;
    memset(&m, 0, sizeof(m));
    m.type = CHAT_T_DELIVER;
    m.msg_id = msg_id_s;
    m.from = from_s;
    m.group = group ? group_s : NULL;
    m.body = body->raw;
    m.body_len = body->raw_len;
    m.ts = ts->num;
    m.offline = (int)offline->num;
    u->b->progress++;
    on_deliver(u, &m);
    return 1;
  }
  if (type->raw_len == 2 && !memcmp(type->raw, "ok", 2) && id &&
      id->kind == CHAT_FAST_INT && u->role == BENCH_SENDER && u->pair) {
    if (fast_str(msg_id, msg_id_s, sizeof(msg_id_s)) < 0 ||
        (status && fast_str(status, status_s, sizeof(status_s)) < 0))
      return 0;
    u->b->progress++;
    bench_traffic_on_ok(u->b, u->pair, (long)id->num, msg_id_s,
                        status ? status_s : NULL);
    return 1;
  }
  if (type->raw_len == 7 && !memcmp(type->raw, "receipt", 7)) {
    u->b->progress++;
    on_receipt(u);
    return 1;
  }
  return 0;
}

static void on_frame(chat_conn_t *c, json_t *obj, const char *line,
                     size_t len) {
  bench_user_t *u = c->data;
  bench_t *b = u->b;
  chat_msg_t m;
  chat_error_t err;
  memset(&err, 0, sizeof(err));
  if (chat_msg_decode(obj, CHAT_ROLE_CLIENT, &m, &err) < 0) {
    bench_note_error(b, BENCH_E_BAD_FRAME, 1);
    return;
  }
  b->progress++;
  switch (m.type) {
  case CHAT_T_WELCOME:
    on_welcome(u);
    break;
  case CHAT_T_OK:
    on_ok(u, &m);
    break;
  case CHAT_T_ERROR:
    on_error(u, &m);
    break;
  case CHAT_T_DELIVER:
    on_deliver(u, &m);
    break;
  case CHAT_T_RECEIPT:
    on_receipt(u);
    break;
  case CHAT_T_EXPECT:
    if (u->role == BENCH_RECEIVER && b->opts.mode == BENCH_DIRECT)
      bench_peer_on_expect(u, &m);
    break;
  case CHAT_T_CONTACT_REQUEST:
    if (u->pair)
      bench_phase_contact_event(b, u, 0, m.from);
    break;
  case CHAT_T_CONTACT_ADDED:
    if (u->pair)
      bench_phase_contact_event(b, u, 1, m.user);
    break;
  case CHAT_T_KICKED:
    bench_note_error(b, BENCH_E_DISCONNECTED, 1);
    bench_stop(b, "a bench session was kicked (is another run using the "
                  "same --prefix?)");
    break;
  default:
    /* presence, pong: nothing to do */
    break;
  }
}

static void on_bad_frame(chat_conn_t *c, const chat_error_t *err) {
  bench_user_t *u = c->data;
  bench_note_error(u->b, BENCH_E_BAD_FRAME, 1);
}

static void on_overflow(chat_conn_t *c) {
  bench_user_t *u = c->data;
  bench_note_error(u->b, BENCH_E_DISCONNECTED, 1);
  bench_stop(u->b, "output queue overflow (the server stopped reading)");
}

static void on_close(chat_conn_t *c, int status) {
  bench_user_t *u = c->data;
  bench_t *b = u->b;
  bench_ustate_t was = u->state;
  u->conn_live = 0;
  u->state = BENCH_U_CLOSED;
  b->live_conns--;
  if (was == BENCH_U_REGISTERED && !b->stopping) {
    bench_phase_user_done(b, u);
  } else if (!b->stopping) {
    bench_note_error(b, BENCH_E_DISCONNECTED, 1);
    char why[160];
    snprintf(why, sizeof(why), "%s: server connection ended: %s", u->name,
             status < 0 ? uv_strerror(status) : "closed");
    bench_stop(b, why);
  }
  bench_phase_check(b);
}
