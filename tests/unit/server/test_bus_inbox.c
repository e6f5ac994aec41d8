/* test_bus_inbox.c -- bus_inbox.c's reading of an XREAD reply into events
 * (chat__bus_inbox_events): a batch entry's items are read in place, each
 * field NUL-terminated without spoiling the next, malformed items are
 * skipped, entries keep their order, a message's deliver length is read
 * when it is there, and the reply lives until the last
 * event pointing into it is freed (ASan sees any early free or leak).
 * Replies are parsed from RESP text by hiredis's own reader, as the
 * reader thread gets them. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "bus_redis_int.h"

/* ---- RESP text, built up -------------------------------------------------- */

typedef struct {
  char p[8192];
  size_t len;
} resp_t;

static void put(resp_t *r, const char *s, size_t n) {
  assert_true(r->len + n < sizeof(r->p));
  memcpy(r->p + r->len, s, n);
  r->len += n;
}

static void arr(resp_t *r, int n) {
  char h[32];
  put(r, h, (size_t)snprintf(h, sizeof(h), "*%d\r\n", n));
}

static void bulk(resp_t *r, const char *s, size_t n) {
  char h[32];
  put(r, h, (size_t)snprintf(h, sizeof(h), "$%zu\r\n", n));
  put(r, s, n);
  put(r, "\r\n", 2);
}

static void str(resp_t *r, const char *s) { bulk(r, s, strlen(s)); }

/* A netstring of n bytes of s at the end of buf. */
static void ns(resp_t *buf, const char *s, size_t n) {
  char h[32];
  put(buf, h, (size_t)snprintf(h, sizeof(h), "%zu:", n));
  put(buf, s, n);
}

/* One batch item (kind, user, a, b, seq, ts, body, and wire unless it is
 * NULL) as a netstring. */
static void item_w(resp_t *x, const char *kind, const char *user,
                   const char *a, const char *b, const char *seq,
                   const char *ts, const char *body, size_t body_len,
                   const char *wire) {
  resp_t in = {.len = 0};
  ns(&in, kind, strlen(kind));
  ns(&in, user, strlen(user));
  ns(&in, a, strlen(a));
  ns(&in, b, strlen(b));
  ns(&in, seq, strlen(seq));
  ns(&in, ts, strlen(ts));
  ns(&in, body, body_len);
  if (wire != NULL)
    ns(&in, wire, strlen(wire));
  ns(x, in.p, in.len);
}

static void item(resp_t *x, const char *kind, const char *user, const char *a,
                 const char *b, const char *seq, const char *ts,
                 const char *body, size_t body_len) {
  item_w(x, kind, user, a, b, seq, ts, body, body_len, NULL);
}

static redisReply *parse(const resp_t *r) {
  redisReader *rd = redisReaderCreate();
  void *reply = NULL;
  assert_non_null(rd);
  assert_int_equal(redisReaderFeed(rd, r->p, r->len), REDIS_OK);
  assert_int_equal(redisReaderGetReply(rd, &reply), REDIS_OK);
  assert_non_null(reply);
  redisReaderFree(rd);
  return reply;
}

/* XREAD's reply for one stream: *1 [*2 [name, *n entries]]; the entries
 * follow. */
static void xread_head(resp_t *r, int n) {
  arr(r, 1);
  arr(r, 2);
  str(r, "{node:n2}:inbox");
  arr(r, n);
}

static void batch_entry(resp_t *r, const char *id, const resp_t *x) {
  arr(r, 2);
  str(r, id);
  arr(r, 4);
  str(r, "t");
  str(r, "B");
  str(r, "x");
  bulk(r, x->p, x->len);
}

static int count(ev_node_t *n) {
  int k = 0;
  for (; n != NULL; n = n->next)
    k++;
  return k;
}

/* ---- the cases ------------------------------------------------------------ */

static void test_batch_items_in_place(void **state) {
  static const char bin[] = {'h', 'i', '\0', '9', ':', 'x'}; /* any bytes */
  resp_t r = {.len = 0}, x = {.len = 0};
  char last[64] = "0-0";
  ev_node_t *first = NULL, **tail = &first, *n;
  (void)state;
  item(&x, "M", "bob", "alice", "m1", "5", "1700000000000", "hello", 5);
  item(&x, "M", "bob", "carol", "m-2", "6", "1700000000001", bin, sizeof(bin));
  item(&x, "r", "alice", "m1", "bob", "0", "0", "", 0);
  xread_head(&r, 1);
  batch_entry(&r, "1700-3", &x);

  assert_int_equal(chat__bus_inbox_events(parse(&r), last, sizeof(last),
                                          &tail), 0);
  assert_string_equal(last, "1700-3");
  assert_int_equal(count(first), 3);
  assert_ptr_equal(tail, &first->next->next->next);

  n = first;
  assert_int_equal(n->ev.kind, 'M');
  assert_string_equal(n->ev.user, "bob");
  assert_string_equal(n->ev.a, "alice");
  assert_string_equal(n->ev.b, "m1");
  assert_int_equal(n->ev.seq, 5);
  assert_int_equal(n->ev.ts, 1700000000000LL);
  assert_int_equal(n->ev.body_len, 5);
  assert_string_equal(n->ev.body, "hello"); /* its NUL is the next's digit */
  assert_string_equal(n->ev.id, "1700-3");
  assert_int_equal(n->ev.entry_end, 0);

  n = n->next;
  assert_string_equal(n->ev.a, "carol");
  assert_string_equal(n->ev.b, "m-2");
  assert_int_equal(n->ev.seq, 6);
  assert_int_equal(n->ev.body_len, sizeof(bin));
  assert_memory_equal(n->ev.body, bin, sizeof(bin));
  assert_int_equal(n->ev.body[sizeof(bin)], '\0');
  assert_int_equal(n->ev.entry_end, 0);

  n = n->next;
  assert_int_equal(n->ev.kind, 'r');
  assert_string_equal(n->ev.user, "alice");
  assert_string_equal(n->ev.b, "bob");
  assert_int_equal(n->ev.body_len, 0);
  assert_string_equal(n->ev.body, "");
  assert_int_equal(n->ev.entry_end, 1);

  /* any order of freeing: the reply goes with the last */
  chat__bus_ev_free(first->next);
  chat__bus_ev_free(first->next->next);
  chat__bus_ev_free(first);
}

/* Bytes that are not items are skipped, and what follows them is read. */
static void test_malformed_items_skipped(void **state) {
  resp_t r = {.len = 0}, x = {.len = 0}, bad = {.len = 0};
  char last[64] = "0-0";
  ev_node_t *first = NULL, **tail = &first, *next;
  (void)state;
  ns(&bad, "1:M3:bob", 8); /* an item of two fields, not seven */
  put(&x, bad.p, bad.len);
  item(&x, "M", "bob", "alice", "m1", "7", "1", "ok", 2);
  ns(&x, "", 0);           /* an empty netstring: no kind */
  item(&x, "M", "bob", "alice", "m2", "8", "2", "fine", 4);
  put(&x, "99:short", 8);  /* a length past the end: the reading stops */
  xread_head(&r, 1);
  batch_entry(&r, "5-0", &x);

  assert_int_equal(chat__bus_inbox_events(parse(&r), last, sizeof(last),
                                          &tail), 0);
  assert_int_equal(count(first), 2);
  assert_string_equal(first->ev.b, "m1");
  assert_string_equal(first->ev.body, "ok");
  assert_string_equal(first->next->ev.b, "m2");
  assert_string_equal(first->next->ev.body, "fine");
  assert_int_equal(first->next->ev.entry_end, 1);
  for (ev_node_t *n = first; n != NULL; n = next) {
    next = n->next;
    chat__bus_ev_free(n);
  }
}

/* Plain entries (copied) and batches (in place) keep the stream's order,
 * each entry's last event marked. */
static void test_entries_in_order(void **state) {
  resp_t r = {.len = 0}, x1 = {.len = 0}, x2 = {.len = 0};
  char last[64] = "0-0";
  ev_node_t *first = NULL, **tail = &first, *n, *next;
  const char *want[] = {"p", "M1", "M2", "k", "M3"};
  (void)state;
  item(&x1, "M", "bob", "alice", "m1", "1", "1", "a", 1);
  item(&x1, "M", "bob", "alice", "m2", "2", "1", "b", 1);
  item(&x2, "M", "bob", "alice", "m3", "3", "1", "c", 1);
  xread_head(&r, 4);
  arr(&r, 2);
  str(&r, "9-1");
  arr(&r, 6);
  str(&r, "t"), str(&r, "p"), str(&r, "u"), str(&r, "alice");
  str(&r, "a"), str(&r, "online");
  batch_entry(&r, "9-2", &x1);
  arr(&r, 2);
  str(&r, "9-3");
  arr(&r, 4);
  str(&r, "t"), str(&r, "k"), str(&r, "u"), str(&r, "carol");
  batch_entry(&r, "9-4", &x2);

  assert_int_equal(chat__bus_inbox_events(parse(&r), last, sizeof(last),
                                          &tail), 0);
  assert_string_equal(last, "9-4");
  assert_int_equal(count(first), 5);
  n = first;
  for (int i = 0; i < 5; i++, n = n->next) {
    assert_int_equal(n->ev.kind, want[i][0]);
    if (want[i][0] == 'M')
      assert_int_equal(n->ev.seq, (uint64_t)(want[i][1] - '0'));
    assert_int_equal(n->ev.entry_end, i != 1);
  }
  assert_string_equal(first->ev.user, "alice");
  assert_string_equal(first->ev.a, "online");
  assert_string_equal(first->ev.id, "9-1");
  assert_string_equal(first->next->next->next->ev.user, "carol");
  for (n = first; n != NULL; n = next) {
    next = n->next;
    chat__bus_ev_free(n);
  }
}

/* A message item may carry its deliver line's length as an eighth field;
 * fields after it are ignored. */
static void test_wire_field(void **state) {
  resp_t r = {.len = 0}, x = {.len = 0}, in = {.len = 0};
  char last[64] = "0-0";
  ev_node_t *first = NULL, **tail = &first, *n, *next;
  (void)state;
  item_w(&x, "M", "bob", "alice", "m1", "1", "2", "body", 4, "117");
  item(&x, "M", "bob", "alice", "m2", "3", "4", "old", 3);
  /* nine fields: the ninth is not read */
  for (int k = 0; k < 9; k++)
    ns(&in, k == 0 ? "M" : k == 7 ? "90" : "zz", k == 0 ? 1 : 2);
  ns(&x, in.p, in.len);
  xread_head(&r, 1);
  batch_entry(&r, "7-0", &x);

  assert_int_equal(chat__bus_inbox_events(parse(&r), last, sizeof(last),
                                          &tail), 0);
  assert_int_equal(count(first), 3);
  n = first;
  assert_string_equal(n->ev.body, "body");
  assert_int_equal(n->ev.body_len, 4);
  assert_int_equal(n->ev.wire, 117);
  n = n->next;
  assert_string_equal(n->ev.body, "old");
  assert_int_equal(n->ev.wire, 0);
  n = n->next;
  assert_string_equal(n->ev.body, "zz");
  assert_int_equal(n->ev.wire, 90);
  for (n = first; n != NULL; n = next) {
    next = n->next;
    chat__bus_ev_free(n);
  }
}

/* Nothing within the block time (nil), or a stream of no entries:
 * nothing appended, last_id kept. */
static void test_nothing_read(void **state) {
  resp_t nil = {.len = 0}, empty = {.len = 0};
  char last[64] = "3-3";
  ev_node_t *first = NULL, **tail = &first;
  (void)state;
  put(&nil, "*-1\r\n", 5);
  assert_int_equal(chat__bus_inbox_events(parse(&nil), last, sizeof(last),
                                          &tail), 0);
  xread_head(&empty, 0);
  assert_int_equal(chat__bus_inbox_events(parse(&empty), last, sizeof(last),
                                          &tail), 0);
  assert_null(first);
  assert_ptr_equal(tail, &first);
  assert_string_equal(last, "3-3");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_batch_items_in_place),
      cmocka_unit_test(test_malformed_items_skipped),
      cmocka_unit_test(test_entries_in_order),
      cmocka_unit_test(test_wire_field),
      cmocka_unit_test(test_nothing_read),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
