/* test_registry.c -- users, reservations, contacts, requests, groups. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "registry.h"

static void test_users_and_reservations(void **state) {
  chat__registry_t r;
  chat__registry_init(&r);
  chat__user_t *a, *z;
  assert_int_equal(chat__registry_add(&r, "alice", "h1", &a), 0);
  assert_int_equal(chat__registry_add(&r, "alice", "h2", NULL), -EEXIST);
  assert_ptr_equal(chat__registry_find(&r, "alice"), a);
  assert_string_equal(a->pwhash, "h1");
  assert_int_equal(chat__registry_reserve(&r, "alice", &z), -EEXIST);
  assert_int_equal(chat__registry_reserve(&r, "zed", &z), 0);
  assert_null(chat__registry_find(&r, "zed")); /* invisible while reserved */
  chat__user_t *z2;
  assert_int_equal(chat__registry_reserve(&r, "zed", &z2), -EEXIST);
  chat__registry_unreserve(&r, z);
  assert_int_equal(chat__registry_reserve(&r, "zed", &z), 0);
  assert_int_equal(chat__registry_confirm(z, "hz"), 0);
  assert_ptr_equal(chat__registry_find(&r, "zed"), z);
  chat__registry_free(&r);
}

static void test_contacts_sorted_symmetric(void **state) {
  chat__registry_t r;
  chat__registry_init(&r);
  chat__user_t *u[4];
  const char *names[] = {"dan", "bea", "cat", "abe"};
  for (int i = 0; i < 4; i++)
    assert_int_equal(chat__registry_add(&r, names[i], "h", &u[i]), 0);
  for (int i = 1; i < 4; i++)
    assert_int_equal(chat__contact_add(u[0], u[i]), 0);
  assert_int_equal(chat__contact_add(u[0], u[1]), 0); /* again: no dup */
  assert_int_equal(u[0]->ncontacts, 3);
  assert_string_equal(u[0]->contacts[0]->name, "abe");
  assert_string_equal(u[0]->contacts[1]->name, "bea");
  assert_string_equal(u[0]->contacts[2]->name, "cat");
  assert_true(chat__contact_is(u[2], u[0]));
  chat__contact_del(u[2], u[0]);
  assert_false(chat__contact_is(u[0], u[2]));
  assert_int_equal(u[0]->ncontacts, 2);
  chat__registry_free(&r);
}

static void test_requests_in_order(void **state) {
  chat__registry_t r;
  chat__registry_init(&r);
  chat__user_t *a, *b, *c;
  chat__registry_add(&r, "a", "h", &a);
  chat__registry_add(&r, "b", "h", &b);
  chat__registry_add(&r, "c", "h", &c);
  chat__request_add(c, a);
  chat__request_add(b, a);
  chat__request_add(c, a);
  assert_int_equal(a->nrequests, 2);
  assert_ptr_equal(a->requests[0], c);
  assert_ptr_equal(a->requests[1], b);
  assert_true(chat__request_has(b, a));
  assert_false(chat__request_has(a, b));
  chat__request_del(c, a);
  assert_int_equal(a->nrequests, 1);
  assert_ptr_equal(a->requests[0], b);
  chat__registry_free(&r);
}

static void test_groups(void **state) {
  chat__registry_t r;
  chat__registry_init(&r);
  chat__user_t *a, *b;
  chat__registry_add(&r, "a", "h", &a);
  chat__registry_add(&r, "b", "h", &b);
  chat__group_t *g, *g2;
  assert_int_equal(chat__group_new(&r, "dev", &g), 0);
  assert_int_equal(chat__group_new(&r, "dev", &g2), -EEXIST);
  assert_int_equal(chat__group_new(&r, "art", &g2), 0);
  chat__group_add(g, a);
  chat__group_add(g, b);
  chat__group_add(g, a);
  chat__group_add(g2, a);
  assert_int_equal(g->nmembers, 2);
  assert_int_equal(a->ngroups, 2);
  assert_string_equal(a->groups[0], "art"); /* sorted */
  assert_int_equal(chat__group_remove(&r, g, a), 0);
  assert_false(chat__group_is_member(g, a));
  assert_int_equal(chat__group_remove(&r, g, b), 1); /* last one: ended */
  assert_null(chat__registry_group(&r, "dev"));
  chat__registry_free(&r);
}

/* The sweep keeps what live users reach (their lists, pinned users) and
 * frees the rest, however the hash map reorders itself as it deletes
 * (a first version cleared marks in a walk that restarted after each
 * deletion, and freed a logged-in user). */
static void test_sweep_keeps_what_is_reachable(void **state) {
  chat__registry_t r;
  chat__registry_init(&r);
  chat__user_t *live;
  char *contacts[40];
  char names[40][8];
  for (int i = 0; i < 40; i++) {
    snprintf(names[i], sizeof(names[i]), "c%02d", i);
    contacts[i] = names[i];
  }
  assert_non_null(chat__registry_stub(&r, "live"));
  live = chat__registry_find(&r, "live");
  assert_int_equal(
      chat__registry_fill(&r, live, contacts, 20, NULL, 0, NULL, 0), 0);
  live->logins = 1; /* logging in: its lists are wanted */
  /* 20 stubs nobody reaches, interleaved in the map with the contacts */
  for (int i = 20; i < 40; i++)
    assert_non_null(chat__registry_stub(&r, names[i]));
  chat__user_t *pinned = chat__registry_stub(&r, "pinned");
  pinned->pins = 1;
  for (int round = 0; round < 2; round++) {
    size_t freed = chat__registry_sweep(&r);
    assert_int_equal(freed, round == 0 ? 20 : 0);
    assert_ptr_equal(chat__registry_find(&r, "live"), live);
    assert_ptr_equal(chat__registry_find(&r, "pinned"), pinned);
    for (int i = 0; i < 20; i++)
      assert_non_null(chat__registry_find(&r, names[i]));
    for (int i = 20; i < 40; i++)
      assert_null(chat__registry_find(&r, names[i]));
  }
  /* the login failed: nobody wants its lists, so the sweep makes it a stub
   * and lets it go with its contacts */
  live->logins = 0;
  pinned->pins = 0;
  assert_int_equal(chat__registry_sweep(&r), 22);
  assert_null(chat__registry_find(&r, "live"));
  chat__registry_free(&r);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_sweep_keeps_what_is_reachable),
      cmocka_unit_test(test_users_and_reservations),
      cmocka_unit_test(test_contacts_sorted_symmetric),
      cmocka_unit_test(test_requests_in_order),
      cmocka_unit_test(test_groups),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
