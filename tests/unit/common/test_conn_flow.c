/* test_conn_flow.c -- chat_conn flow control over real loopback TCP: pause
 * and resume, the output bound, flushing on close, the close deadline and
 * aborting with a write in flight. */
#include "conn_fixture.h"

static void raw_frames(fx_t *fx, int first, int last) {
  char buf[4096];
  size_t len = 0;
  for (int i = first; i <= last; i++)
    len += (size_t)snprintf(buf + len, sizeof(buf) - len,
                            "{\"type\":\"t\",\"n\":%d}\n", i);
  fx_raw_write(fx, buf, len);
}

static void test_pause_resume(void **state) {
  fx_t *fx = *state;

  fx_raw(fx);
  fx->srv.pause_at = 2;
  fx->srv.blip_at = 4; /* pause and resume inside one callback */
  raw_frames(fx, 1, 5);
  FX_WAIT(fx, json_array_size(fx->srv.frames) == 2);
  /* The rest of the read waits in the connection, however long we turn. */
  fx_turns(fx, 20);
  assert_int_equal(json_array_size(fx->srv.frames), 2);
  assert_false(fx->srv.conn.reading);
  /* More arrives meanwhile; it must come after the waiting frames. */
  raw_frames(fx, 6, 7);
  FX_WAIT(fx, fx->raw_writes_done == 2);
  fx_turns(fx, 20);
  assert_int_equal(json_array_size(fx->srv.frames), 2);

  chat_conn_resume(&fx->srv.conn);
  /* Never re-entrantly: frames come on a later loop turn. */
  assert_int_equal(json_array_size(fx->srv.frames), 2);
  FX_WAIT(fx, json_array_size(fx->srv.frames) == 7);
  fx_assert_sequence(&fx->srv, 1, 7);
  assert_true(fx->srv.conn.reading);
  assert_null(fx->srv.conn.dec.part);
}

static void test_eof_after_waiting_frames(void **state) {
  fx_t *fx = *state;
  uv_shutdown_t req;

  fx_raw(fx);
  fx->srv.pause_at = 1;
  raw_frames(fx, 1, 4);
  assert_int_equal(uv_shutdown(&req, (uv_stream_t *)&fx->raw, NULL), 0);
  FX_WAIT(fx, json_array_size(fx->srv.frames) == 1);
  fx_turns(fx, 10);
  assert_int_equal(fx->srv.closed, 0);
  chat_conn_resume(&fx->srv.conn);
  FX_WAIT(fx, fx->srv.closed);
  /* Every frame before the EOF was handed out first. */
  fx_assert_sequence(&fx->srv, 1, 4);
  assert_int_equal(fx->srv.frames_at_close, 4);
  assert_int_equal(fx->srv.close_status, UV_EOF);
}

static void test_overflow_in_one_turn(void **state) {
  fx_t *fx = *state;
  chat_conn_opts_t o = {0, 4096};

  fx_pair(fx, &o);
  /* Each is about 1040 bytes: three fit in 4096, the fourth does not. */
  assert_int_equal(fx_send(&fx->cli.conn, 1, 1000), 0);
  assert_int_equal(fx_send(&fx->cli.conn, 2, 1000), 0);
  assert_int_equal(fx_send(&fx->cli.conn, 3, 1000), 0);
  assert_int_equal(fx->cli.overflows, 0);
  size_t before = chat_conn_output_len(&fx->cli.conn);
  assert_int_equal(fx_send(&fx->cli.conn, 4, 1000), -ENOBUFS);
  assert_int_equal(fx->cli.overflows, 1);
  /* The refused frame left nothing behind. */
  assert_int_equal(chat_conn_output_len(&fx->cli.conn), before);
  assert_true(before + 13 <= 4096);
  assert_int_equal(chat_conn_send_line(&fx->cli.conn, "{\"type\":\"t\"}\n", 13),
                   0);
  assert_int_equal(fx_send(&fx->cli.conn, 5, 2000), -ENOBUFS);
  assert_int_equal(fx->cli.overflows, 1); /* once per connection */
  assert_true(fx->cli.conn.out_cap <= 4096);
  /* What fitted went out in order; a later frame that fits is taken again
   * (the owner decides whether the gap is fatal; most close). */
  FX_WAIT(fx, json_array_size(fx->srv.frames) == 4);
  for (int i = 0; i < 3; i++)
    assert_int_equal(fx_n(&fx->srv, (size_t)i), i + 1);
  assert_null(json_object_get(json_array_get(fx->srv.frames, 3), "n"));
}

/* Sends until the output bound is hit, checking it on every step; true when
 * a send was refused. */
static int pump(fx_t *fx, size_t max_output) {
  static int n;
  for (int k = 0; k < 8; k++) {
    int rc = fx_send(&fx->srv.conn, ++n, 1000);
    assert_true(chat_conn_output_len(&fx->srv.conn) <= max_output);
    assert_true(fx->srv.conn.out_cap <= max_output);
    if (rc == -ENOBUFS)
      return 1;
    assert_int_equal(rc, 0);
  }
  return 0;
}

static void test_overflow_peer_not_reading(void **state) {
  fx_t *fx = *state;
  int small = 4096;
  chat_io_stats_t st;

  fx->srv_opts.max_output = 32 * 1024;
  fx_raw(fx);
  /* Small kernel buffers so the peer's refusal to read shows quickly. */
  uv_send_buffer_size((uv_handle_t *)&fx->srv.conn.tcp, &small);
  small = 4096;
  uv_recv_buffer_size((uv_handle_t *)&fx->raw, &small);
  /* Not FX_WAIT: with the write stuck, a blocking turn would wait for ever
   * (correctly: the connection has nothing to do). */
  uint64_t t0 = uv_hrtime();
  while (!pump(fx, 32 * 1024)) {
    if (uv_hrtime() - t0 > (uint64_t)FX_DEADLINE_MS * 1000000)
      fail_msg("the output bound was never reached");
    fx_turns(fx, 1);
  }
  assert_int_equal(fx->srv.overflows, 1);
  assert_true(fx->srv.conn.writing); /* stuck in the kernel, not lost */
  assert_int_equal(fx_send(&fx->srv.conn, 0, 1000), -ENOBUFS);
  assert_int_equal(fx->srv.overflows, 1);
  st = fx_stats(fx);
  assert_true(st.writes >= 1);

  /* A close cannot drain to a peer that never reads: cut off at the
   * deadline, and on_close says so. */
  chat_io_set_close_timeout(fx->io, 300);
  chat_conn_close(&fx->srv.conn);
  assert_int_equal(fx_send(&fx->srv.conn, 0, 0), -EPIPE);
  FX_WAIT(fx, fx->srv.closed);
  assert_int_equal(fx->srv.close_status, UV_ETIMEDOUT);
}

static void test_close_flushes(void **state) {
  fx_t *fx = *state;

  fx_pair(fx, NULL);
  for (int i = 1; i <= 1500; i++)
    assert_int_equal(fx_send(&fx->srv.conn, i, 500), 0);
  assert_true(chat_conn_output_len(&fx->srv.conn) > 700 * 1000);
  chat_conn_close(&fx->srv.conn);
  assert_int_equal(fx->srv.closed, 0); /* on_close only from the loop */
  FX_WAIT(fx, fx->srv.closed && fx->cli.closed);
  assert_int_equal(fx->srv.close_status, 0);
  assert_int_equal(fx->cli.close_status, UV_EOF);
  assert_int_equal(fx->cli.frames_at_close, 1500);
  fx_assert_sequence(&fx->cli, 1, 1500);
}

static void test_abort_with_write_in_flight(void **state) {
  fx_t *fx = *state;
  int small = 4096;

  fx_raw(fx);
  uv_send_buffer_size((uv_handle_t *)&fx->srv.conn.tcp, &small);
  small = 4096;
  uv_recv_buffer_size((uv_handle_t *)&fx->raw, &small);
  for (int i = 1; i <= 200; i++)
    assert_int_equal(fx_send(&fx->srv.conn, i, 1000), 0);
  FX_WAIT(fx, fx->srv.conn.writing);
  fx_turns(fx, 5);
  assert_true(fx->srv.conn.writing);
  assert_int_equal(fx_send(&fx->srv.conn, 201, 10), 0); /* queued behind it */
  assert_true(fx->srv.conn.out_len > 0);
  chat_conn_abort(&fx->srv.conn);
  chat_conn_close(&fx->srv.conn); /* no effect after abort */
  FX_WAIT(fx, fx->srv.closed);
  assert_int_equal(fx->srv.close_status, 0);
  /* Teardown runs the loop dry: ASan reports the buffers if they leaked. */
}

static void test_resume_after_close_is_harmless(void **state) {
  fx_t *fx = *state;

  fx_raw(fx);
  fx_raw_read_start(fx);
  fx->srv.pause_at = 1;
  raw_frames(fx, 1, 3);
  FX_WAIT(fx, json_array_size(fx->srv.frames) == 1);
  assert_int_equal(fx_send(&fx->srv.conn, 50, 0), 0);
  chat_conn_resume(&fx->srv.conn);
  chat_conn_close(&fx->srv.conn); /* before the resume's turn comes */
  chat_conn_pause(&fx->srv.conn);
  chat_conn_resume(&fx->srv.conn);
  FX_WAIT(fx, fx->srv.closed && fx->raw_eof);
  fx_assert_sequence(&fx->srv, 1, 1);
  assert_non_null(strstr(fx->raw_buf, "\"n\":50"));
  assert_int_equal(fx->raw_eof, 1);
}

#define T(f) cmocka_unit_test_setup_teardown(f, fx_setup, fx_teardown)

int main(void) {
  const struct CMUnitTest tests[] = {
      T(test_pause_resume),
      T(test_eof_after_waiting_frames),
      T(test_overflow_in_one_turn),
      T(test_overflow_peer_not_reading),
      T(test_close_flushes),
      T(test_abort_with_write_in_flight),
      T(test_resume_after_close_is_harmless),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
