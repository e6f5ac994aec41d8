/* test_conn_activity.c -- chat_conn's last_line_ms over loopback TCP: set
 * when the connection opens, moved by every complete line (frames, bad
 * lines and blank lines, which on_frame never sees), never by the bytes of
 * an unfinished line -- the clock a server's idle timeout needs against a
 * peer that trickles bytes. */
#include "conn_fixture.h"

static int delay_done;

static void delay_cb(uv_timer_t *t) { delay_done = 1; }

/* Lets the loop's clock move on by ms. */
static void pass(fx_t *fx, unsigned ms) {
  uv_timer_t t;
  uv_timer_init(&fx->loop, &t);
  delay_done = 0;
  uv_timer_start(&t, delay_cb, ms, 0);
  FX_WAIT(fx, delay_done);
  uv_close((uv_handle_t *)&t, NULL);
  fx_turns(fx, 2);
}

static void test_only_complete_lines_count(void **state) {
  fx_t *fx = *state;
  fx_raw(fx);
  uint64_t opened = fx->srv.conn.last_line_ms;
  assert_true(opened > 0);
  assert_true(opened <= uv_now(&fx->loop));

  /* bytes of a line, a few at a time: the clock stays */
  const char *part[] = {"{\"n\"", ":1", ",\"x\":\"abc"};
  for (int i = 0; i < 3; i++) {
    pass(fx, 30);
    fx_raw_writes(fx, part[i]);
    FX_WAIT(fx, fx->raw_writes_done == i + 1);
    pass(fx, 10); /* read by now */
    assert_true(fx->srv.conn.last_line_ms == opened);
  }
  /* the line completes: the clock moves to now */
  fx_raw_writes(fx, "\"}\n");
  FX_WAIT(fx, json_array_size(fx->srv.frames) == 1);
  uint64_t framed = fx->srv.conn.last_line_ms;
  assert_true(framed >= opened + 90);

  /* blank lines count although no callback sees them */
  pass(fx, 30);
  fx_raw_writes(fx, "  \t\r\n");
  FX_WAIT(fx, fx->srv.conn.last_line_ms > framed);
  assert_int_equal(json_array_size(fx->srv.frames), 1);
  uint64_t blank = fx->srv.conn.last_line_ms;

  /* and so do bad lines */
  pass(fx, 30);
  fx_raw_writes(fx, "not json\n");
  FX_WAIT(fx, fx->srv.bad_json == 1);
  assert_true(fx->srv.conn.last_line_ms > blank);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_only_complete_lines_count,
                                      fx_setup, fx_teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
