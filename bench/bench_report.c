/* bench_report.c -- the result, for people or as one JSON object. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "bench.h"

static const char *const mode_names[] = {"relay", "direct", "offline",
                                         "group"};

long bench_errors_total(const bench_t *b) {
  long n = 0;
  for (int k = 0; k < BENCH_E__COUNT; k++)
    n += b->errors[k];
  return n;
}

static double span_s(const bench_t *b, const bench_span_t *s) {
  if (!s->start_ns)
    return 0;
  uint64_t end = s->end_ns ? s->end_ns : b->end_ns;
  /* A run that stopped inside the message window (a stall, a loss, the
   * deadline) is measured up to its last delivery, not to the give-up. */
  if (!s->end_ns && s == &b->msgs && b->last_deliver_ns > s->start_ns)
    end = b->last_deliver_ns;
  return end > s->start_ns ? (double)(end - s->start_ns) / 1e9 : 0;
}

static double rate(double n, double secs) { return secs > 0 ? n / secs : 0; }

static double us(uint64_t ns) { return (double)ns / 1000.0; }

/* The measured window and the messages that count in it. */
static void measured(const bench_t *b, double *secs, double *per_sec) {
  *secs = span_s(b, &b->msgs);
  double n = b->opts.mode == BENCH_OFFLINE ? (double)b->accepted
                                           : (double)b->delivered;
  *per_sec = rate(n, *secs);
}

static long rss_per_session(const bench_t *b) {
  if (b->rss_before_kb <= 0 || b->rss_after_kb <= 0 || b->opts.idle <= 0)
    return -1;
  return (b->rss_after_kb - b->rss_before_kb) * 1024 / b->opts.idle;
}

void bench_report_plain(const bench_t *b, FILE *out) {
  const bench_opts_t *o = &b->opts;
  double secs, per_sec;
  measured(b, &secs, &per_sec);
  if (o->handshakes > 0) {
    double hs = span_s(b, &b->hs_span);
    fprintf(out, "chat-bench handshakes: %ld TLS connections, %d at a time\n",
            o->handshakes, o->concurrency);
    fprintf(out, "  handshakes %ld in %.3f s (%.0f/s)\n", b->hs_done, hs,
            rate((double)b->hs_done, hs));
    if (b->hs_server_cpu_ns >= 0 && b->hs_done > 0)
      fprintf(out, "  server CPU %.0f us per handshake\n",
              (double)b->hs_server_cpu_ns / 1000.0 / (double)b->hs_done);
    if (b->hs_done > 0)
      fprintf(out, "  bench CPU  %.0f us per handshake\n",
              (double)b->hs_bench_cpu_ns / 1000.0 / (double)b->hs_done);
  } else if (o->mode == BENCH_GROUP)
    fprintf(out, "chat-bench group: %d members (all online) x %ld messages "
                 "of %zu B, one at a time (users %s*)\n",
            o->group_size, o->messages, o->size, o->prefix);
  else if (o->pairs > 0)
    fprintf(out, "chat-bench %s: %d pairs x %ld messages of %zu B, window %d"
                 " (users %s*)\n",
            mode_names[o->mode], o->pairs, o->messages, o->size, o->window,
            o->prefix);
  else
    fprintf(out, "chat-bench: %d idle sessions (users %s*)\n", o->idle,
            o->prefix);
  if (o->handshakes == 0 && o->pairs > 0 && o->port_b)
    fprintf(out, "  nodes      senders on %s:%d, receivers on %s:%d\n",
            o->host, o->port, o->host_b, o->port_b);
  double rs = span_s(b, &b->reg), ls = span_s(b, &b->login);
  if (b->reg.count)
    fprintf(out, "  register   %ld users in %.2f s (%.0f/s)\n", b->reg.count,
            rs, rate((double)b->reg.count, rs));
  if (b->login.count)
    fprintf(out, "  login      %ld sessions in %.2f s (%.0f/s)\n",
            b->login.count, ls, rate((double)b->login.count, ls));
  if (o->idle > 0) {
    double is = span_s(b, &b->idle_login);
    fprintf(out, "  idle       %d sessions logged in in %.2f s (%.0f/s)\n",
            o->idle, is, rate(o->idle, is));
    long per = rss_per_session(b);
    if (per >= 0)
      fprintf(out, "  server RSS %ld KiB -> %ld KiB: %ld B per idle session\n",
              b->rss_before_kb, b->rss_after_kb, per);
    else
      fprintf(out, "  server RSS not measured (needs --server-pid of a "
                   "local server)\n");
  }
  if (o->mode == BENCH_GROUP && o->messages > 0) {
    fprintf(out, "  messages   sent %ld, accepted %ld, deliveries %ld "
                 "(relayed in the last ok: %lld)\n",
            b->sent, b->accepted, b->delivered,
            (long long)b->group.relayed);
    fprintf(out, "  fan-out    group_send to the last member's deliver: "
                 "p50 %.1f us, p99 %.1f us, max %.1f us\n",
            us(bench_hist_quantile(&b->lat, 0.50)),
            us(bench_hist_quantile(&b->lat, 0.99)), us(b->lat.max));
    fprintf(out, "  throughput %.0f deliveries/s over %.3f s\n", per_sec,
            secs);
  }
  if (o->pairs > 0 && o->messages > 0) {
    fprintf(out, "  messages   sent %ld, accepted %ld, delivered %ld, "
                 "receipts %ld",
            b->sent, b->accepted, b->delivered, b->receipts);
    if (b->not_sent)
      fprintf(out, " (%ld never sent: the run ended first)", b->not_sent);
    fputc('\n', out);
    if (o->mode == BENCH_OFFLINE) {
      double fs = span_s(b, &b->flush);
      fprintf(out, "  stored     %.0f msgs/s over %.3f s\n", per_sec, secs);
      fprintf(out, "  flush      %ld delivered %.3f s after the logins "
                   "(%.0f msgs/s)\n",
              b->delivered, fs, rate((double)b->delivered, fs));
    } else {
      fprintf(out, "  throughput %.0f msgs/s over %.3f s\n", per_sec, secs);
    }
    fprintf(out, "  latency    p50 %.1f us, p99 %.1f us, max %.1f us%s\n",
            us(bench_hist_quantile(&b->lat, 0.50)),
            us(bench_hist_quantile(&b->lat, 0.99)), us(b->lat.max),
            o->mode == BENCH_OFFLINE ? " (from the receiver's login)" : "");
  }
  long total = bench_errors_total(b);
  fprintf(out, "  errors     %ld", total);
  for (int k = 0; k < BENCH_E__COUNT; k++)
    if (b->errors[k] && k != BENCH_E_REPLY)
      fprintf(out, ", %s %ld", bench_err_name(k), b->errors[k]);
  for (int c = CHAT_E_BAD_JSON; c < CHAT_E__END; c++)
    if (b->reply_codes[c - CHAT_E_BAD_JSON])
      fprintf(out, ", reply %s %ld", chat_code_name(c),
              b->reply_codes[c - CHAT_E_BAD_JSON]);
  if (b->reply_other)
    fprintf(out, ", reply ? %ld", b->reply_other);
  fputc('\n', out);
  if (b->stop_reason[0])
    fprintf(out, "  stopped:   %s\n", b->stop_reason);
}

static json_t *errors_json(const bench_t *b) {
  json_t *e = json_object();
  json_t *replies = json_object();
  json_object_set_new(e, "total", json_integer(bench_errors_total(b)));
  for (int k = 0; k < BENCH_E__COUNT; k++)
    json_object_set_new(e, bench_err_name(k), json_integer(b->errors[k]));
  for (int c = CHAT_E_BAD_JSON; c < CHAT_E__END; c++)
    if (b->reply_codes[c - CHAT_E_BAD_JSON])
      json_object_set_new(replies, chat_code_name(c),
                          json_integer(b->reply_codes[c - CHAT_E_BAD_JSON]));
  if (b->reply_other)
    json_object_set_new(replies, "other", json_integer(b->reply_other));
  json_object_set_new(e, "replies", replies);
  return e;
}

static json_t *num(double v) {
  /* Three decimals are plenty and keep the output readable. */
  return json_real((double)(long long)(v * 1000.0 + 0.5) / 1000.0);
}

void bench_report_json(const bench_t *b, FILE *out) {
  const bench_opts_t *o = &b->opts;
  double secs, per_sec;
  measured(b, &secs, &per_sec);
  json_t *r = json_object();
  json_object_set_new(r, "mode", json_string(o->handshakes > 0
                                                 ? "handshakes"
                                                 : mode_names[o->mode]));
  json_object_set_new(r, "tls", json_boolean(o->tls));
  json_object_set_new(r, "cross_node", json_boolean(o->port_b != 0));
  json_object_set_new(r, "pairs", json_integer(o->pairs));
  json_object_set_new(r, "messages", json_integer(o->messages));
  json_object_set_new(r, "size", json_integer((json_int_t)o->size));
  json_object_set_new(r, "window", json_integer(o->window));
  json_object_set_new(r, "sent", json_integer(b->sent));
  json_object_set_new(r, "accepted", json_integer(b->accepted));
  json_object_set_new(r, "delivered", json_integer(b->delivered));
  json_object_set_new(r, "receipts", json_integer(b->receipts));
  json_object_set_new(r, "not_sent", json_integer(b->not_sent));
  json_object_set_new(r, "errors", errors_json(b));
  json_object_set_new(r, "msgs_per_sec", num(per_sec));
  json_t *lat = json_object();
  json_object_set_new(lat, "p50", num(us(bench_hist_quantile(&b->lat, 0.5))));
  json_object_set_new(lat, "p99", num(us(bench_hist_quantile(&b->lat, 0.99))));
  json_object_set_new(lat, "max", num(us(b->lat.max)));
  json_object_set_new(lat, "mean",
                      num(b->lat.count ? b->lat.sum / (double)b->lat.count
                                             / 1000.0
                                       : 0));
  json_object_set_new(r, "latency_us", lat);
  json_object_set_new(r, "elapsed_s", num(secs));
  json_object_set_new(r, "total_s",
                      num(b->end_ns > b->start_ns
                              ? (double)(b->end_ns - b->start_ns) / 1e9
                              : 0));
  double rs = span_s(b, &b->reg), ls = span_s(b, &b->login);
  json_t *setup = json_object();
  json_object_set_new(setup, "registered", json_integer(b->reg.count));
  json_object_set_new(setup, "register_per_sec",
                      num(rate((double)b->reg.count, rs)));
  json_object_set_new(setup, "logins", json_integer(b->login.count));
  json_object_set_new(setup, "login_s", num(ls));
  json_object_set_new(setup, "login_per_sec",
                      num(rate((double)b->login.count, ls)));
  json_object_set_new(r, "setup", setup);
  if (o->mode == BENCH_OFFLINE) {
    double fs = span_s(b, &b->flush);
    json_object_set_new(r, "store_msgs_per_sec", num(per_sec));
    json_object_set_new(r, "flush_s", num(fs));
    json_object_set_new(r, "flush_msgs_per_sec",
                        num(rate((double)b->delivered, fs)));
  }
  if (o->idle > 0) {
    double is = span_s(b, &b->idle_login);
    json_t *idle = json_object();
    json_object_set_new(idle, "sessions", json_integer(o->idle));
    json_object_set_new(idle, "login_per_sec", num(rate(o->idle, is)));
    if (rss_per_session(b) >= 0) {
      json_object_set_new(idle, "rss_before_kb",
                          json_integer(b->rss_before_kb));
      json_object_set_new(idle, "rss_after_kb", json_integer(b->rss_after_kb));
      json_object_set_new(idle, "rss_per_session_bytes",
                          json_integer(rss_per_session(b)));
    }
    json_object_set_new(r, "idle", idle);
  }
  if (o->mode == BENCH_GROUP) {
    json_t *g = json_object();
    json_object_set_new(g, "size", json_integer(o->group_size));
    json_object_set_new(g, "relayed", json_integer(b->group.relayed));
    json_object_set_new(r, "group", g);
  }
  if (o->handshakes > 0) {
    double hs = span_s(b, &b->hs_span);
    json_t *h = json_object();
    json_object_set_new(h, "wanted", json_integer(o->handshakes));
    json_object_set_new(h, "done", json_integer(b->hs_done));
    json_object_set_new(h, "concurrency", json_integer(o->concurrency));
    json_object_set_new(h, "elapsed_s", num(hs));
    json_object_set_new(h, "per_sec", num(rate((double)b->hs_done, hs)));
    if (b->hs_server_cpu_ns >= 0 && b->hs_done > 0)
      json_object_set_new(h, "server_cpu_us_per_handshake",
                          num((double)b->hs_server_cpu_ns / 1000.0 /
                              (double)b->hs_done));
    if (b->hs_done > 0)
      json_object_set_new(h, "bench_cpu_us_per_handshake",
                          num((double)b->hs_bench_cpu_ns / 1000.0 /
                              (double)b->hs_done));
    json_object_set_new(r, "handshakes", h);
  }
  json_object_set_new(r, "prefix", json_string(o->prefix));
  if (b->stop_reason[0])
    json_object_set_new(r, "stop_reason", json_string(b->stop_reason));
  char *s = json_dumps(r, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(15));
  if (s) {
    fprintf(out, "%s\n", s);
    free(s);
  }
  json_decref(r);
}
