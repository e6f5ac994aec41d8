/* bench_traffic.c -- the hot path: building messages and checking deliveries.
 *
 * Frames are written with snprintf and memset into a per-pair buffer and
 * queued with chat_conn_send_line: no JSON library work per message on the
 * sending side. A message is
 *   msg_id "<run tag>-<seq>"
 *   body   "<seq>:<ns since the bench started>:" then filler up to --size,
 *          the filler letter being 'a' + seq % 26,
 * so the receiver checks the whole body and measures latency from the body
 * alone, and the sender keeps no per-message state.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench.h"

int bench_traffic_pair_init(bench_t *b, bench_pair_t *p) {
  long m = b->opts.messages;
  p->seen = calloc((size_t)m / 8 + 1, 1);
  p->line_cap = b->opts.size + 512;
  p->line = malloc(p->line_cap);
  if (!p->seen || !p->line)
    return -ENOMEM;
  return 0;
}

void bench_traffic_pair_free(bench_pair_t *p) {
  free(p->seen);
  free(p->line);
  p->seen = NULL;
  p->line = NULL;
}

static int64_t wall_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void bench_traffic_put_body(const bench_t *b, char *dst, long seq,
                            uint64_t rel_ns) {
  size_t size = b->opts.size;
  char head[48];
  int n = snprintf(head, sizeof(head), "%ld:%" PRIu64 ":", seq, rel_ns);
  size_t h = (size_t)n < size ? (size_t)n : size;
  memcpy(dst, head, h);
  memset(dst + h, 'a' + (int)(seq % 26), size - h);
}

static int send_one(bench_t *b, bench_pair_t *p, long seq) {
  uint64_t rel = bench_now_ns() - b->t0_ns;
  char *l = p->line;
  size_t cap = p->line_cap;
  int n;
  if (b->opts.mode == BENCH_DIRECT)
    n = snprintf(l, cap, "{\"type\":\"msg\",\"msg_id\":\"%s-%ld\",\"body\":\"",
                 b->run_tag, seq);
  else
    n = snprintf(l, cap,
                 "{\"type\":\"send\",\"id\":%ld,\"to\":\"%s\",\"msg_id\":"
                 "\"%s-%ld\",\"body\":\"",
                 seq, p->rcv.name, b->run_tag, seq);
  size_t len = (size_t)n;
  bench_traffic_put_body(b, l + len, seq, rel);
  len += b->opts.size;
  if (b->opts.mode == BENCH_DIRECT)
    n = snprintf(l + len, cap - len, "\",\"ts\":%" PRId64 "}\n", wall_ms());
  else
    n = snprintf(l + len, cap - len, "\"}\n");
  len += (size_t)n;
  if (b->opts.mode == BENCH_DIRECT)
    return bench_peer_send_line(p->link, l, len);
  return bench_session_send_line(&p->snd, l, len);
}

void bench_traffic_pump(bench_t *b, bench_pair_t *p) {
  while (!b->stopping && p->next_seq < b->opts.messages &&
         p->inflight < b->opts.window) {
    if (send_one(b, p, p->next_seq) < 0)
      return; /* the send path stopped the run */
    p->next_seq++;
    p->inflight++;
    b->sent++;
  }
}

long bench_traffic_seq(const bench_t *b, const char *msg_id) {
  size_t tl = strlen(b->run_tag);
  if (strncmp(msg_id, b->run_tag, tl) != 0 || msg_id[tl] != '-')
    return -1;
  const char *s = msg_id + tl + 1;
  if (*s < '0' || *s > '9')
    return -1;
  char *end;
  errno = 0;
  long seq = strtol(s, &end, 10);
  if (errno || *end || seq < 0 || seq >= b->opts.messages)
    return -1;
  return seq;
}

/* An ok or ack for seq: they arrive in send order on one connection. */
static void answered(bench_t *b, bench_pair_t *p, long seq, int accepted) {
  if (p->inflight <= 0 || seq != p->answered_next) {
    bench_note_error(b, BENCH_E_BAD_FRAME, 1);
    if (seq < p->answered_next || p->inflight <= 0)
      return; /* a repeat: counting it would open the window too far */
  }
  p->answered_next = seq + 1;
  p->inflight--;
  if (accepted)
    p->accepted++;
  else
    p->refused++;
  b->progress++;
  bench_traffic_pump(b, p);
  bench_phase_check_pair(b, p);
}

void bench_traffic_on_ok(bench_t *b, bench_pair_t *p, long seq,
                         const char *msg_id, const char *status) {
  if (!msg_id || bench_traffic_seq(b, msg_id) != seq) {
    bench_note_error(b, BENCH_E_BAD_FRAME, 1);
    return;
  }
  const char *want = b->opts.mode == BENCH_OFFLINE ? "stored" : "relayed";
  if (!status || strcmp(status, want) != 0)
    bench_note_error(b, BENCH_E_BAD_STATUS, 1);
  answered(b, p, seq, 1);
}

void bench_traffic_on_send_error(bench_t *b, bench_pair_t *p,
                                 const chat_msg_t *m) {
  json_int_t seq = json_integer_value(m->id);
  if (seq < 0 || seq >= b->opts.messages) {
    bench_note_error(b, BENCH_E_BAD_FRAME, 1);
    return;
  }
  answered(b, p, (long)seq, 0);
}

void bench_traffic_on_peer_ack(bench_t *b, bench_pair_t *p,
                               const char *msg_id) {
  long seq = msg_id ? bench_traffic_seq(b, msg_id) : -1;
  if (seq < 0) {
    bench_note_error(b, BENCH_E_BAD_FRAME, 1);
    return;
  }
  answered(b, p, seq, 1);
}

int64_t bench_traffic_check_body(const bench_t *b, long seq, const char *body,
                                 size_t len) {
  if (!body || len != b->opts.size)
    return -1;
  const char *s = body, *end = body + len;
  long got = 0;
  int digits = 0;
  while (s < end && *s >= '0' && *s <= '9' && digits < 19) {
    got = got * 10 + (*s++ - '0');
    digits++;
  }
  if (!digits || got != seq || s >= end || *s++ != ':')
    return -1;
  uint64_t ns = 0;
  digits = 0;
  while (s < end && *s >= '0' && *s <= '9' && digits < 19) {
    ns = ns * 10 + (uint64_t)(*s++ - '0');
    digits++;
  }
  if (!digits || s >= end || *s++ != ':')
    return -1;
  char fill = (char)('a' + seq % 26);
  for (; s < end; s++)
    if (*s != fill)
      return -1;
  return (int64_t)ns;
}

void bench_traffic_on_deliver(bench_t *b, bench_pair_t *p, const char *msg_id,
                              const char *body, size_t body_len, int offline,
                              int direct) {
  uint64_t now = bench_now_ns();
  long seq = bench_traffic_seq(b, msg_id);
  if (seq < 0) {
    bench_note_error(b, BENCH_E_BAD_BODY, 1);
    return;
  }
  uint8_t bit = (uint8_t)(1u << (seq & 7));
  if (p->seen[seq >> 3] & bit) {
    bench_note_error(b, BENCH_E_DUPLICATE, 1);
    return;
  }
  p->seen[seq >> 3] |= bit;
  p->arrived++;
  b->progress++;
  /* A gap alone is not a reorder (it is a loss, or a refused send, counted
   * as such); a message arriving after a later one is. */
  if (seq < p->expect_seq)
    bench_note_error(b, BENCH_E_REORDERED, 1);
  else
    p->expect_seq = seq + 1;

  int64_t sent_ns = bench_traffic_check_body(b, seq, body, body_len);
  if (sent_ns < 0) {
    bench_note_error(b, BENCH_E_BAD_BODY, 1);
  } else if (!direct && offline != (b->opts.mode == BENCH_OFFLINE)) {
    bench_note_error(b, BENCH_E_BAD_STATUS, 1);
  } else {
    /* Offline messages waited for the login on purpose: their latency is
     * measured from the receiver's login, the rest from the send. */
    uint64_t from = b->opts.mode == BENCH_OFFLINE
                        ? p->rcv.login_ns
                        : b->t0_ns + (uint64_t)sent_ns;
    bench_hist_record(&b->lat, now > from ? now - from : 0);
    p->delivered++;
    b->delivered++;
    b->last_deliver_ns = now;
  }
  bench_phase_check_pair(b, p);
}

int bench_pair_done(const bench_t *b, const bench_pair_t *p) {
  long m = b->opts.messages;
  int all_answered = p->next_seq == m && p->inflight == 0;
  switch (b->phase) {
  case BENCH_P_MESSAGES:
    if (b->opts.mode == BENCH_OFFLINE)
      return all_answered;
    return all_answered && p->arrived >= p->accepted;
  case BENCH_P_FLUSH:
    return p->arrived >= p->accepted;
  default:
    return 0;
  }
}
