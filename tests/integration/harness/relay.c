/* relay.c -- the send / deliver / ack steps of a message through the relay
 * (PROTOCOL.md section 3), shared by the tests that move messages, so each
 * checks a deliver the same, complete way. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "harness.h"

void th_client_send_msg(th_client_t *c, const char *to, const char *msg_id,
                        const char *body, const char *status) {
  json_t *r = th_client_call(c, "{s:s,s:s,s:s,s:s}", "type", "send", "to", to,
                             "msg_id", msg_id, "body", body);
  th_assert_type(r, "ok", NULL);
  assert_string_equal(th_str(r, "msg_id"), msg_id);
  assert_string_equal(th_str(r, "status"), status);
  json_decref(r);
}

json_t *th_client_expect_deliver(th_client_t *c, const char *from,
                                 const char *msg_id, const char *body,
                                 int offline) {
  json_t *d = th_client_expect(c, "deliver", TH_DEADLINE_MS);
  assert_string_equal(th_str(d, "from"), from);
  assert_string_equal(th_str(d, "msg_id"), msg_id);
  assert_string_equal(th_str(d, "body"), body);
  assert_true(json_is_boolean(json_object_get(d, "offline")));
  assert_int_equal(json_is_true(json_object_get(d, "offline")), offline);
  assert_true(th_int(d, "ts") > 1600000000000LL);
  assert_null(json_object_get(d, "id"));
  return d;
}

void th_client_ack(th_client_t *c, const char *from, const char *msg_id) {
  th_client_send(c, "{s:s,s:s,s:s}", "type", "ack", "msg_id", msg_id, "from",
                 from);
}
