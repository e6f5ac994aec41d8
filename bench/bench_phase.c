/* bench_phase.c -- the run's phases, its clock, its end.
 *
 * Phases run in order, each skipped when it does not apply:
 *   REGISTER     every user connects, registers and disconnects
 *                (at most --concurrency at a time: argon2id is slow)
 *   IDLE_LOGIN   the idle users log in and stay (server RSS read before,
 *                after one second without traffic)
 *   IDLE_SETTLE  one second, then the server's RSS is read again
 *   LOGIN        senders and receivers log in (receivers wait in offline)
 *   CONTACTS     direct: sender adds receiver, receiver adds sender;
 *                group: members and owner become contacts, the owner
 *                creates the group and adds them (bench_group.c)
 *   LINKS        direct: connect, dial, peer_hello, peer_welcome
 *   MESSAGES     the measured window (offline: until every send is stored;
 *                group: one message at a time, bench_group.c)
 *   FLUSH        offline: receivers log in; until every message arrived
 *   RECEIPTS     relay, offline: until a receipt came for each delivery
 * A phase counts down phase_pending (users or pairs) and advances at zero.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench.h"
#include "chat_addr.h"

#define TICK_MS 250

static const char *const err_names[BENCH_E__COUNT] = {
    "lost",        "duplicate",      "reordered",       "bad_body",
    "bad_frame",   "bad_status",     "unanswered",      "missing_receipt",
    "disconnected", "connect",       "timeout",         "interrupted",
    "error_reply"};

static const char *const phase_names[] = {
    "start",    "register", "idle-login", "idle-settle", "login", "contacts",
    "links",    "messages", "flush",      "receipts",    "done"};

_Static_assert(sizeof(err_names) / sizeof(err_names[0]) == BENCH_E__COUNT,
               "one name per error kind");
_Static_assert(sizeof(phase_names) / sizeof(phase_names[0]) ==
                   BENCH_P_DONE + 1,
               "one name per phase");

const char *bench_err_name(bench_err_t kind) { return err_names[kind]; }
static const char *bench_phase_name(bench_phase_t ph) {
  return phase_names[ph];
}

uint64_t bench_now_ns(void) { return uv_hrtime(); }

void bench_note_error(bench_t *b, bench_err_t kind, long n) {
  b->errors[kind] += n;
}

void bench_note_reply(bench_t *b, const char *code) {
  int c = code ? chat_code_from_name(code) : 0;
  b->errors[BENCH_E_REPLY]++;
  if (c >= CHAT_E_BAD_JSON && c < CHAT_E__END)
    b->reply_codes[c - CHAT_E_BAD_JSON]++;
  else
    b->reply_other++;
}

static void advance(bench_t *b);

/* ---- Setup slots: registers and logins in flight ------------------------ */

static void enqueue(bench_t *b, bench_user_t *u, int login) {
  u->want_login = login;
  u->next_queued = NULL;
  if (b->queue_tail)
    b->queue_tail->next_queued = u;
  else
    b->queue_head = u;
  b->queue_tail = u;
}

static void pump_queue(bench_t *b) {
  while (!b->stopping && b->queue_head &&
         b->slots_used < b->opts.concurrency) {
    bench_user_t *u = b->queue_head;
    b->queue_head = u->next_queued;
    if (!b->queue_head)
      b->queue_tail = NULL;
    b->slots_used++;
    int rc = bench_session_open(u, u->want_login);
    if (rc < 0 && !b->stopping) {
      char why[128];
      snprintf(why, sizeof(why), "cannot open a connection: %s",
               chat_strerror(rc));
      bench_stop(b, why);
    }
  }
}

static void span_end(bench_span_t *s, long count) {
  s->end_ns = bench_now_ns();
  s->count = count;
}

void bench_phase_user_done(bench_t *b, bench_user_t *u) {
  if (b->stopping)
    return;
  if (b->phase != BENCH_P_REGISTER && b->phase != BENCH_P_IDLE_LOGIN &&
      b->phase != BENCH_P_LOGIN)
    return; /* e.g. a receiver's login during FLUSH */
  b->slots_used--;
  b->progress++;
  if (--b->phase_pending > 0) {
    pump_queue(b);
    return;
  }
  if (b->phase == BENCH_P_REGISTER)
    span_end(&b->reg, b->users_total);
  else if (b->phase == BENCH_P_IDLE_LOGIN)
    span_end(&b->idle_login, b->opts.idle);
  else
    span_end(&b->login, b->login_users);
  advance(b);
}

/* ---- Pair steps --------------------------------------------------------- */

static long sum_accepted(const bench_t *b) {
  long n = 0;
  for (int i = 0; i < b->opts.pairs; i++)
    n += b->pairs[i].accepted;
  return n;
}

static long sum_arrived(const bench_t *b) {
  long n = 0;
  for (int i = 0; i < b->opts.pairs; i++)
    n += b->pairs[i].arrived;
  return n;
}

void bench_phase_step_done(bench_t *b) {
  b->progress++;
  if (--b->phase_pending > 0)
    return;
  if (b->phase == BENCH_P_MESSAGES)
    span_end(&b->msgs, b->opts.mode == BENCH_OFFLINE ? sum_accepted(b)
                                                     : b->delivered);
  else if (b->phase == BENCH_P_FLUSH)
    span_end(&b->flush, b->delivered);
  advance(b);
}

void bench_phase_check_pair(bench_t *b, bench_pair_t *p) {
  if (b->stopping || p->done_in == b->phase)
    return;
  if (b->phase != BENCH_P_MESSAGES && b->phase != BENCH_P_FLUSH)
    return;
  if (!bench_pair_done(b, p))
    return;
  p->done_in = b->phase;
  bench_phase_step_done(b);
}

static void send_contact_add(bench_user_t *from, const bench_user_t *to) {
  bench_session_send_fmt(from,
                         "{\"type\":\"contact_add\",\"id\":\"contact\","
                         "\"user\":\"%s\"}\n",
                         to->name);
}

/* Across nodes: the receiver adds back once its node has the sender's
 * request (else its contact_add would be a request of its own), and the
 * pair is done once the sender's node has the contact (else the connect
 * that follows could be refused not_contact). Users of a rerun with the
 * same --prefix are contacts already, see no events, and stall. */
static void contact_cross_step(bench_t *b, bench_pair_t *p) {
  int seen = p->contact_seen;
  if (p->contact_step == 0 && (seen & BENCH_CS_SND_OK) &&
      (seen & BENCH_CS_REQUEST)) {
    p->contact_step = 1;
    send_contact_add(&p->rcv, &p->snd);
  } else if (p->contact_step == 1 && (seen & BENCH_CS_RCV_OK) &&
             (seen & BENCH_CS_ADDED)) {
    p->contact_step = 2;
    bench_phase_step_done(b);
  }
}

void bench_phase_contact_event(bench_t *b, bench_user_t *u, int added,
                               const char *name) {
  bench_pair_t *p = u->pair;
  if (b->stopping || b->phase != BENCH_P_CONTACTS || !b->opts.port_b ||
      p == NULL || name == NULL)
    return;
  if (!added && u->role == BENCH_RECEIVER && !strcmp(name, p->snd.name))
    p->contact_seen |= BENCH_CS_REQUEST;
  else if (added && u->role == BENCH_SENDER && !strcmp(name, p->rcv.name))
    p->contact_seen |= BENCH_CS_ADDED;
  else
    return;
  b->progress++;
  contact_cross_step(b, p);
}

/* The sender's request is in; the receiver's own contact_add accepts it (or
 * is a no-op when a rerun with the same prefix already made them contacts),
 * so on one server no contact_request event needs to be waited for. */
void bench_phase_contact_ok(bench_t *b, bench_user_t *u) {
  bench_pair_t *p = u->pair;
  if (b->phase != BENCH_P_CONTACTS) {
    bench_note_error(b, BENCH_E_BAD_FRAME, 1);
    return;
  }
  if (b->opts.port_b) {
    int bit = u->role == BENCH_SENDER ? BENCH_CS_SND_OK : BENCH_CS_RCV_OK;
    if ((u->role == BENCH_SENDER && p->contact_step != 0) ||
        (u->role == BENCH_RECEIVER && p->contact_step != 1) ||
        (p->contact_seen & bit)) {
      bench_note_error(b, BENCH_E_BAD_FRAME, 1);
      return;
    }
    p->contact_seen |= bit;
    contact_cross_step(b, p);
    return;
  }
  if (u->role == BENCH_SENDER && p->contact_step == 0) {
    p->contact_step = 1;
    send_contact_add(&p->rcv, &p->snd);
  } else if (u->role == BENCH_RECEIVER && p->contact_step == 1) {
    p->contact_step = 2;
    bench_phase_step_done(b);
  } else {
    bench_note_error(b, BENCH_E_BAD_FRAME, 1);
  }
}

void bench_phase_link_ready(bench_t *b, bench_pair_t *p) {
  if (b->phase != BENCH_P_LINKS) {
    bench_note_error(b, BENCH_E_BAD_FRAME, 1);
    return;
  }
  bench_phase_step_done(b);
}

/* ---- Phases ------------------------------------------------------------- */

static void on_settled(uv_timer_t *t) {
  bench_t *b = t->data;
  if (b->opts.server_pid)
    b->rss_after_kb = bench_rss_kb(b->opts.server_pid);
  advance(b);
}

static void start_idle_logins(bench_t *b, uint64_t now) {
  for (int i = 0; i < b->opts.idle; i++)
    enqueue(b, &b->idle[i], 1);
  b->phase_pending = b->opts.idle;
  b->idle_login.start_ns = now;
  pump_queue(b);
}

static void on_idle_ready(uv_timer_t *t) {
  bench_t *b = t->data;
  b->rss_before_kb = bench_rss_kb(b->opts.server_pid);
  start_idle_logins(b, bench_now_ns());
}

/* Starts b->phase. Returns 1 when it has work to wait for, 0 when it does
 * not apply or is already complete. */
static int start_phase(bench_t *b) {
  const bench_opts_t *o = &b->opts;
  int direct = o->mode == BENCH_DIRECT;
  int has_msgs = o->pairs > 0 && o->messages > 0;
  uint64_t now = bench_now_ns();
  switch (b->phase) {
  case BENCH_P_REGISTER:
    if (b->users_total == 0)
      return 0;
    for (int i = 0; i < o->idle; i++)
      enqueue(b, &b->idle[i], 0);
    for (int i = 0; i < o->pairs; i++) {
      enqueue(b, &b->pairs[i].snd, 0);
      enqueue(b, &b->pairs[i].rcv, 0);
    }
    for (int i = 0; i < b->group.n; i++)
      enqueue(b, &b->group.users[i], 0);
    b->phase_pending = b->users_total;
    b->reg.start_ns = now;
    pump_queue(b);
    return 1;
  case BENCH_P_IDLE_LOGIN:
    if (o->idle == 0)
      return 0;
    if (o->server_pid) {
      /* The server gives its store's page cache back after half a second
       * without commits; read its RSS after that, as IDLE_SETTLE does, so
       * the registrations' cache is in neither reading. */
      uv_timer_start(&b->settle, on_idle_ready, 1000, 0);
      return 1;
    }
    start_idle_logins(b, now);
    return 1;
  case BENCH_P_IDLE_SETTLE:
    if (o->idle == 0)
      return 0;
    /* Let the server finish writing the login replies and free their
     * buffers before its RSS is read. */
    uv_timer_start(&b->settle, on_settled, 1000, 0);
    return 1;
  case BENCH_P_LOGIN: {
    if (o->pairs == 0 && b->group.n == 0)
      return 0;
    if (direct) {
      int rc = bench_peer_listen(b);
      if (rc < 0) {
        char why[128];
        snprintf(why, sizeof(why), "cannot open the peer listener: %s",
                 uv_strerror(rc));
        bench_note_error(b, BENCH_E_CONNECT, 1);
        bench_stop(b, why);
        return 1;
      }
    }
    b->login_users = 0;
    for (int i = 0; i < o->pairs; i++) {
      enqueue(b, &b->pairs[i].snd, 1);
      b->login_users++;
      if (o->mode != BENCH_OFFLINE) {
        enqueue(b, &b->pairs[i].rcv, 1);
        b->login_users++;
      }
    }
    for (int i = 0; i < b->group.n; i++) {
      enqueue(b, &b->group.users[i], 1);
      b->login_users++;
    }
    b->phase_pending = b->login_users;
    b->login.start_ns = now;
    pump_queue(b);
    return 1;
  }
  case BENCH_P_CONTACTS:
    if (o->mode == BENCH_GROUP) {
      bench_group_start_setup(b);
      return 1;
    }
    if (!direct || !has_msgs)
      return 0;
    b->phase_pending = o->pairs;
    for (int i = 0; i < o->pairs && !b->stopping; i++)
      send_contact_add(&b->pairs[i].snd, &b->pairs[i].rcv);
    return 1;
  case BENCH_P_LINKS:
    if (!direct || !has_msgs)
      return 0;
    b->phase_pending = o->pairs;
    for (int i = 0; i < o->pairs && !b->stopping; i++)
      bench_session_send_fmt(&b->pairs[i].snd,
                             "{\"type\":\"connect\",\"id\":\"connect\","
                             "\"to\":\"%s\"}\n",
                             b->pairs[i].rcv.name);
    return 1;
  case BENCH_P_MESSAGES:
    if (o->mode == BENCH_GROUP && o->messages > 0) {
      bench_group_start_messages(b);
      return 1;
    }
    if (!has_msgs)
      return 0;
    b->phase_pending = o->pairs;
    b->msgs.start_ns = now;
    for (int i = 0; i < o->pairs && !b->stopping; i++)
      bench_traffic_pump(b, &b->pairs[i]);
    return 1;
  case BENCH_P_FLUSH:
    if (o->mode != BENCH_OFFLINE || !has_msgs)
      return 0;
    b->phase_pending = o->pairs;
    b->flush.start_ns = now;
    /* All at once, not through the slots: the flush is what is measured. */
    for (int i = 0; i < o->pairs && !b->stopping; i++) {
      int rc = bench_session_open(&b->pairs[i].rcv, 1);
      if (rc < 0 && !b->stopping) {
        bench_stop(b, "cannot open a receiver's connection");
        return 1;
      }
    }
    for (int i = 0; i < o->pairs && !b->stopping; i++)
      bench_phase_check_pair(b, &b->pairs[i]);
    return 1;
  case BENCH_P_RECEIPTS:
    if (o->mode == BENCH_DIRECT || !has_msgs)
      return 0;
    b->receipt_deadline_ns =
        now + (uint64_t)BENCH_RECEIPT_WAIT_S * 1000000000ull;
    return b->receipts < sum_arrived(b);
  default:
    return 0;
  }
}

/* Moves on to the next phase that has work, or ends the run. */
static void advance(bench_t *b) {
  while (!b->stopping) {
    b->phase++;
    if (b->phase == BENCH_P_DONE) {
      bench_stop(b, NULL);
      return;
    }
    b->progress++;
    if (start_phase(b))
      return;
  }
}

void bench_phase_check(bench_t *b) {
  if (!b->stopping && b->phase == BENCH_P_RECEIPTS &&
      b->receipts >= sum_arrived(b))
    advance(b);
}

/* ---- The end ------------------------------------------------------------ */

/* Turns what never happened into counted errors, once. */
static void tally(bench_t *b) {
  long missing = 0;
  if (b->opts.mode == BENCH_GROUP) {
    bench_group_tally(b);
    return;
  }
  for (int i = 0; i < b->opts.pairs; i++) {
    bench_pair_t *p = &b->pairs[i];
    long unanswered = p->next_seq - p->accepted - p->refused;
    if (unanswered > 0)
      b->errors[BENCH_E_UNANSWERED] += unanswered;
    /* Not an error in itself: whatever ended the run early was counted. */
    b->not_sent += b->opts.messages - p->next_seq;
    if (p->accepted > p->arrived)
      b->errors[BENCH_E_LOST] += p->accepted - p->arrived;
    missing += p->arrived;
    b->accepted += p->accepted;
    b->refused += p->refused;
    b->arrived += p->arrived;
  }
  if (b->opts.mode != BENCH_DIRECT && missing > b->receipts)
    b->errors[BENCH_E_MISSING_RECEIPT] += missing - b->receipts;
}

static void close_handle(uv_handle_t *h) {
  if (!uv_is_closing(h))
    uv_close(h, NULL);
}

static void on_reap(uv_timer_t *t) {
  bench_t *b = t->data;
  if (b->live_conns > 0)
    return;
  if (b->io) {
    chat_io_free(b->io);
    b->io = NULL;
  }
  close_handle((uv_handle_t *)t);
}

void bench_stop(bench_t *b, const char *why) {
  if (b->stopping)
    return;
  b->stopping = 1;
  b->end_ns = bench_now_ns();
  if (why)
    snprintf(b->stop_reason, sizeof(b->stop_reason), "%s", why);
  tally(b);
  for (int i = 0; i < b->opts.idle; i++)
    bench_session_close(&b->idle[i]);
  for (int i = 0; i < b->opts.pairs; i++) {
    bench_session_close(&b->pairs[i].snd);
    bench_session_close(&b->pairs[i].rcv);
  }
  for (int i = 0; i < b->group.n; i++)
    bench_session_close(&b->group.users[i]);
  bench_peer_close_all(b);
  bench_handshake_close_all(b);
  if (b->listener_live)
    close_handle((uv_handle_t *)&b->listener);
  close_handle((uv_handle_t *)&b->tick);
  close_handle((uv_handle_t *)&b->settle);
  close_handle((uv_handle_t *)&b->sigint);
  close_handle((uv_handle_t *)&b->sigterm);
  /* chat_io is freed from a timer once every connection's on_close ran,
   * never from inside one. */
  uv_timer_start(&b->reap, on_reap, 0, 10);
}

/* ---- The clock ---------------------------------------------------------- */

static void show_progress(bench_t *b, uint64_t now) {
  double secs = (double)(now - b->start_ns) / 1e9;
  long total = b->opts.mode == BENCH_GROUP
                   ? (long)(b->group.n - 1) * b->opts.messages
                   : (long)b->opts.pairs * b->opts.messages;
  if (b->phase == BENCH_P_MESSAGES || b->phase == BENCH_P_FLUSH)
    fprintf(stderr, "\rchat-bench: %s  sent %ld  delivered %ld/%ld  "
                    "errors %ld  %.0f s\033[K",
            bench_phase_name(b->phase), b->sent, b->delivered, total,
            bench_errors_total(b), secs);
  else
    fprintf(stderr, "\rchat-bench: %s  %ld to go  %.0f s\033[K",
            bench_phase_name(b->phase), b->phase_pending, secs);
  b->progress_shown = 1;
}

static void on_tick(uv_timer_t *t) {
  bench_t *b = t->data;
  uint64_t now = bench_now_ns();
  if (b->stopping)
    return;
  if (b->progress != b->last_progress_seen) {
    b->last_progress_seen = b->progress;
    b->last_progress_ns = now;
  }
  if (b->opts.mode == BENCH_DIRECT)
    bench_peer_expire(b, now);
  if (b->stopping)
    return;
  if (now > b->deadline_ns) {
    char why[96];
    snprintf(why, sizeof(why), "timed out after %.0f s in phase %s",
             b->opts.timeout_s, bench_phase_name(b->phase));
    bench_note_error(b, BENCH_E_TIMEOUT, 1);
    bench_stop(b, why);
    return;
  }
  if (b->phase == BENCH_P_RECEIPTS && now > b->receipt_deadline_ns) {
    advance(b); /* tally() counts what is missing */
    return;
  }
  if (now - b->last_progress_ns > (uint64_t)BENCH_STALL_S * 1000000000ull &&
      b->phase != BENCH_P_IDLE_SETTLE) {
    char why[96];
    snprintf(why, sizeof(why), "stalled: nothing happened for %d s in "
             "phase %s", BENCH_STALL_S, bench_phase_name(b->phase));
    bench_note_error(b, BENCH_E_TIMEOUT, 1);
    bench_stop(b, why);
    return;
  }
  if (b->tty && now - b->start_ns > 2000000000ull &&
      now - b->last_shown_ns >= 500000000ull) {
    b->last_shown_ns = now;
    show_progress(b, now);
  }
}

static void on_signal(uv_signal_t *s, int signum) {
  bench_t *b = s->data;
  b->interrupted = 1;
  bench_note_error(b, BENCH_E_INTERRUPTED, 1);
  bench_stop(b, signum == SIGINT ? "interrupted (SIGINT)"
                                 : "terminated (SIGTERM)");
}

/* ---- Set-up and the loop ------------------------------------------------ */

static int make_users(bench_t *b) {
  const bench_opts_t *o = &b->opts;
  if (o->pairs) {
    b->pairs = calloc((size_t)o->pairs, sizeof(*b->pairs));
    if (!b->pairs)
      return -ENOMEM;
  }
  if (o->idle) {
    b->idle = calloc((size_t)o->idle, sizeof(*b->idle));
    if (!b->idle)
      return -ENOMEM;
  }
  for (int i = 0; i < o->pairs; i++) {
    bench_pair_t *p = &b->pairs[i];
    p->done_in = BENCH_P_START;
    bench_user_t *us[2] = {&p->snd, &p->rcv};
    for (int k = 0; k < 2; k++) {
      us[k]->b = b;
      us[k]->pair = p;
      us[k]->role = k == 0 ? BENCH_SENDER : BENCH_RECEIVER;
      snprintf(us[k]->name, sizeof(us[k]->name), "%s%c%d", o->prefix,
               k == 0 ? 's' : 'r', i);
    }
    if (o->messages > 0 && bench_traffic_pair_init(b, p) < 0)
      return -ENOMEM;
  }
  for (int i = 0; i < o->idle; i++) {
    bench_user_t *u = &b->idle[i];
    u->b = b;
    u->role = BENCH_IDLE;
    snprintf(u->name, sizeof(u->name), "%si%d", o->prefix, i);
  }
  b->users_total = 2L * o->pairs + o->idle;
  if (o->mode == BENCH_GROUP) {
    if (bench_group_init(b) < 0)
      return -ENOMEM;
    b->users_total += b->group.n;
  }
  return 0;
}

static void free_users(bench_t *b) {
  for (int i = 0; i < b->opts.pairs && b->pairs; i++)
    bench_traffic_pair_free(&b->pairs[i]);
  bench_group_free(b);
  free(b->pairs);
  free(b->idle);
  b->pairs = NULL;
  b->idle = NULL;
}

int bench_run(bench_t *b) {
  int rc = chat_addr_resolve(b->opts.host, b->opts.port, &b->server_addr);
  if (rc < 0) {
    fprintf(stderr, "chat-bench: cannot resolve %s: %s\n", b->opts.host,
            chat_strerror(rc));
    return rc;
  }
  if (b->opts.port_b &&
      (rc = chat_addr_resolve(b->opts.host_b, b->opts.port_b,
                              &b->server_addr_b)) < 0) {
    fprintf(stderr, "chat-bench: cannot resolve %s: %s\n", b->opts.host_b,
            chat_strerror(rc));
    return rc;
  }
  if (b->opts.tls) {
    char err[256];
    rc = chat_tls_client_ctx(b->opts.tls_ca[0] ? b->opts.tls_ca : NULL,
                             &b->tls_ctx, err, sizeof(err));
    if (rc < 0) {
      fprintf(stderr, "chat-bench: --tls: %s\n", err);
      return rc;
    }
  }
  if (b->opts.mode == BENCH_DIRECT) {
    char err[256];
    if ((rc = chat_tls_peer_ctx(&b->peer_tls, err, sizeof(err))) < 0 ||
        (rc = chat_tls_ctx_key(b->peer_tls, b->peer_key)) < 0) {
      fprintf(stderr, "chat-bench: peer links: %s\n", err);
      return rc;
    }
  }
  if ((rc = make_users(b)) < 0) {
    fprintf(stderr, "chat-bench: out of memory for %ld users\n",
            b->users_total);
    free_users(b);
    return rc;
  }
  bench_hist_init(&b->lat);
  b->loop = uv_default_loop();
  if ((rc = chat_io_new(b->loop, &b->io)) < 0) {
    free_users(b);
    return rc;
  }
  b->tty = isatty(STDERR_FILENO);
  uv_timer_init(b->loop, &b->tick);
  uv_timer_init(b->loop, &b->settle);
  uv_timer_init(b->loop, &b->reap);
  b->tick.data = b->settle.data = b->reap.data = b;
  uv_signal_init(b->loop, &b->sigint);
  uv_signal_init(b->loop, &b->sigterm);
  b->sigint.data = b->sigterm.data = b;
  uv_signal_start(&b->sigint, on_signal, SIGINT);
  uv_signal_start(&b->sigterm, on_signal, SIGTERM);

  b->start_ns = b->t0_ns = b->last_progress_ns = bench_now_ns();
  b->deadline_ns = b->start_ns + (uint64_t)(b->opts.timeout_s * 1e9);
  uv_timer_start(&b->tick, on_tick, TICK_MS, TICK_MS);
  if (b->opts.handshakes > 0) {
    if (bench_handshake_start(b) < 0)
      bench_stop(b, "out of memory");
  } else {
    advance(b);
  }
  uv_run(b->loop, UV_RUN_DEFAULT);
  close_handle((uv_handle_t *)&b->reap);
  uv_run(b->loop, UV_RUN_DEFAULT);
  if (b->progress_shown)
    fputs("\r\033[K", stderr);
  rc = uv_loop_close(b->loop);
  return rc < 0 ? rc : 0;
}

void bench_free(bench_t *b) {
  free_users(b);
  bench_handshake_free(b);
  chat_tls_ctx_free(b->tls_ctx);
  b->tls_ctx = NULL;
  chat_tls_ctx_free(b->peer_tls);
  b->peer_tls = NULL;
}
