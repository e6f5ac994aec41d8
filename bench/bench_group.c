/* bench_group.c -- --mode group: one owner's group of --group-size members,
 * all online; the owner sends --messages group messages one at a time and
 * each is timed from its group_send to the deliver of its LAST member.
 *
 * Set-up (phase CONTACTS): every member asks the owner (contact_add), the
 * owner's own contact_add of each member then accepts it; the owner creates
 * the group and adds every member (adding needs them to be contacts).
 * Messages (phase MESSAGES): window 1. Each member checks every delivery
 * (group, sender, msg_id, whole body, order) and acks it; the owner's ok
 * must report relayed = group size - 1 and stored 0. The next message goes
 * once the ok and all deliveries of the last one are in.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"

int bench_group_init(bench_t *b) {
  bench_group_t *g = &b->group;
  const bench_opts_t *o = &b->opts;
  g->n = o->group_size;
  g->users = calloc((size_t)g->n, sizeof(*g->users));
  g->line_cap = o->size + 512;
  g->line = malloc(g->line_cap);
  if (!g->users || !g->line)
    return -ENOMEM;
  snprintf(g->name, sizeof(g->name), "%sg", o->prefix);
  for (int i = 0; i < g->n; i++) {
    bench_user_t *u = &g->users[i];
    u->b = b;
    u->role = i == 0 ? BENCH_G_OWNER : BENCH_G_MEMBER;
    snprintf(u->name, sizeof(u->name), "%sm%d", o->prefix, i);
  }
  return 0;
}

void bench_group_free(bench_t *b) {
  free(b->group.users);
  free(b->group.line);
  b->group.users = NULL;
  b->group.line = NULL;
}

static bench_user_t *owner(bench_t *b) { return &b->group.users[0]; }

void bench_group_start_setup(bench_t *b) {
  bench_group_t *g = &b->group;
  b->phase_pending = 1;
  g->contacts = g->added = 0;
  for (int i = 1; i < g->n && !b->stopping; i++)
    bench_session_send_fmt(
        &g->users[i],
        "{\"type\":\"contact_add\",\"id\":\"contact\",\"user\":\"%s\"}\n",
        owner(b)->name);
  if (g->n == 1)
    bench_session_send_fmt(owner(b),
                           "{\"type\":\"group_create\",\"id\":\"gcreate\","
                           "\"group\":\"%s\"}\n",
                           g->name);
}

static void send_next(bench_t *b) {
  bench_group_t *g = &b->group;
  long seq = g->seq;
  uint64_t now = bench_now_ns();
  int n = snprintf(g->line, g->line_cap,
                   "{\"type\":\"group_send\",\"id\":%ld,\"group\":\"%s\","
                   "\"msg_id\":\"%s-%ld\",\"body\":\"",
                   seq, g->name, b->run_tag, seq);
  size_t len = (size_t)n;
  bench_traffic_put_body(b, g->line + len, seq, now - b->t0_ns);
  len += b->opts.size;
  memcpy(g->line + len, "\"}\n", 3);
  len += 3;
  g->sent_ns = now;
  g->got = 0;
  g->ok_in = 0;
  b->sent++;
  bench_session_send_line(owner(b), g->line, len);
}

void bench_group_start_messages(bench_t *b) {
  b->phase_pending = 1;
  b->msgs.start_ns = bench_now_ns();
  b->group.seq = 0;
  send_next(b);
}

/* The current message is through when its ok and every delivery are in. */
static void maybe_next(bench_t *b) {
  bench_group_t *g = &b->group;
  if (!g->ok_in || g->got < g->n - 1 || b->stopping)
    return;
  uint64_t now = bench_now_ns();
  bench_hist_record(&b->lat, now - g->sent_ns);
  b->last_deliver_ns = now;
  b->progress++;
  if (++g->seq < b->opts.messages)
    send_next(b);
  else
    bench_phase_step_done(b);
}

/* An ok to the owner or a member, by id. */
void bench_group_on_ok(bench_user_t *u, const chat_msg_t *m) {
  bench_t *b = u->b;
  bench_group_t *g = &b->group;
  const char *id = m->id && json_is_string(m->id) ? json_string_value(m->id)
                                                  : NULL;
  if (u->role == BENCH_G_MEMBER && id && !strcmp(id, "contact")) {
    bench_session_send_fmt(
        owner(b),
        "{\"type\":\"contact_add\",\"id\":\"gcontact\",\"user\":\"%s\"}\n",
        u->name);
  } else if (u->role == BENCH_G_OWNER && id && !strcmp(id, "gcontact")) {
    if (++g->contacts == g->n - 1)
      bench_session_send_fmt(u,
                             "{\"type\":\"group_create\",\"id\":\"gcreate\","
                             "\"group\":\"%s\"}\n",
                             g->name);
  } else if (u->role == BENCH_G_OWNER && id && !strcmp(id, "gcreate")) {
    for (int i = 1; i < g->n && !b->stopping; i++)
      bench_session_send_fmt(u,
                             "{\"type\":\"group_add\",\"id\":\"gadd\","
                             "\"group\":\"%s\",\"user\":\"%s\"}\n",
                             g->name, g->users[i].name);
    if (g->n == 1)
      bench_phase_step_done(b);
  } else if (u->role == BENCH_G_OWNER && id && !strcmp(id, "gadd")) {
    if (++g->added == g->n - 1)
      bench_phase_step_done(b);
  } else if (u->role == BENCH_G_OWNER && m->id && json_is_integer(m->id) &&
             json_integer_value(m->id) == g->seq && !g->ok_in &&
             b->phase == BENCH_P_MESSAGES) {
    g->ok_in = 1;
    b->accepted++;
    if (m->relayed != g->n - 1 || m->stored != 0)
      bench_note_error(b, BENCH_E_BAD_STATUS, 1);
    g->relayed = m->relayed;
    maybe_next(b);
  } else {
    bench_note_error(b, BENCH_E_BAD_FRAME, 1);
  }
}

/* Nonzero when an error reply with this id is a failed set-up step. */
int bench_group_setup_id(const char *id) {
  return !strcmp(id, "gcontact") || !strcmp(id, "gcreate") ||
         !strcmp(id, "gadd");
}

void bench_group_on_deliver(bench_user_t *u, const chat_msg_t *m) {
  bench_t *b = u->b;
  bench_group_t *g = &b->group;
  long seq = bench_traffic_seq(b, m->msg_id);
  if (u->role != BENCH_G_MEMBER || !m->group || strcmp(m->group, g->name) ||
      strcmp(m->from, owner(b)->name) || seq < 0 || m->offline) {
    bench_note_error(b, BENCH_E_BAD_BODY, 1);
    return;
  }
  if (seq < u->group_next) {
    bench_note_error(b, BENCH_E_DUPLICATE, 1);
    return;
  }
  if (seq != g->seq) {
    bench_note_error(b, BENCH_E_REORDERED, 1);
    return;
  }
  u->group_next = seq + 1;
  if (bench_traffic_check_body(b, seq, m->body, m->body_len) < 0) {
    bench_note_error(b, BENCH_E_BAD_BODY, 1);
    return;
  }
  b->delivered++;
  b->progress++;
  g->got++;
  maybe_next(b);
}

void bench_group_tally(bench_t *b) {
  bench_group_t *g = &b->group;
  long members = g->n - 1;
  b->not_sent += b->opts.messages - b->sent;
  if (b->sent > b->accepted)
    b->errors[BENCH_E_UNANSWERED] += b->sent - b->accepted;
  if (b->accepted * members > b->delivered)
    b->errors[BENCH_E_LOST] += b->accepted * members - b->delivered;
  b->arrived = b->delivered;
}
