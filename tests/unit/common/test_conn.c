/* test_conn.c -- chat_conn over real loopback TCP: frames in and out,
 * framing across reads, bad input, EOF, connect errors, write batching. */
#include "conn_fixture.h"

static void test_exchange(void **state) {
  fx_t *fx = *state;
  struct sockaddr_in sa;
  char host[64];
  int port = 0;
  json_t *f;

  fx_loopback(fx, &sa);
  assert_int_equal(fx_conn_init(fx, &fx->cli, NULL), 0);
  assert_int_equal(
      chat_conn_connect(&fx->cli.conn, (struct sockaddr *)&sa, fx_on_connect),
      0);
  assert_int_equal(fx->cli.connected, 0); /* never from inside connect */
  /* Sent while connecting: written once connected. */
  assert_int_equal(fx_send(&fx->cli.conn, 1, 0), 0);
  FX_WAIT(fx, json_array_size(fx->srv.frames) == 1);
  assert_int_equal(fx->cli.connected, 1);
  assert_int_equal(fx->cli.connect_status, 0);
  f = json_array_get(fx->srv.frames, 0);
  assert_string_equal(json_string_value(json_object_get(f, "type")), "t");

  assert_int_equal(fx_send(&fx->srv.conn, 2, 10), 0);
  FX_WAIT(fx, json_array_size(fx->cli.frames) == 1);
  assert_int_equal(fx_n(&fx->cli, 0), 2);

  assert_int_equal(chat_conn_peer(&fx->srv.conn, host, sizeof(host), &port), 0);
  assert_string_equal(host, "127.0.0.1");
  assert_true(port > 0);
  assert_int_equal(chat_conn_peer(&fx->cli.conn, host, sizeof(host), &port), 0);
  assert_int_equal(port, fx->port);

  /* An idle open connection holds no buffers. */
  assert_null(fx->srv.conn.out);
  assert_null(fx->srv.conn.inflight);
  assert_null(fx->srv.conn.dec.part);
  assert_int_equal(chat_conn_output_len(&fx->srv.conn), 0);
  assert_true(sizeof(chat_conn_t) <= 1024);

  chat_conn_close(&fx->cli.conn);
  chat_conn_close(&fx->cli.conn); /* idempotent */
  assert_int_equal(fx_send(&fx->cli.conn, 3, 0), -EPIPE);
  FX_WAIT(fx, fx->cli.closed && fx->srv.closed);
  assert_int_equal(fx->cli.close_status, 0);
  assert_int_equal(fx->srv.close_status, UV_EOF);
}

static void test_many_frames_one_write(void **state) {
  fx_t *fx = *state;
  size_t cap = 64 * 1024, len = 0;
  char *buf = malloc(cap);

  fx_raw(fx);
  for (int i = 1; i <= 500; i++) {
    /* CRLF, blank lines and space-only lines are framing, not frames. */
    len += (size_t)snprintf(buf + len, cap - len, "{\"type\":\"t\",\"n\":%d}%s",
                            i, i % 3 == 0 ? "\r\n" : i % 7 == 0 ? "\n\n \t\n"
                                                                : "\n");
  }
  fx_raw_write(fx, buf, len);
  free(buf);
  FX_WAIT(fx, json_array_size(fx->srv.frames) == 500);
  fx_assert_sequence(&fx->srv, 1, 500);
  assert_int_equal(fx->srv.bad_json, 0);
}

static void test_frame_split_across_writes(void **state) {
  fx_t *fx = *state;
  static const char *const parts[] = {"{\"type\":\"t\",", "\"n\":4", "2",
                                      "}\r", "\n{\"type\":\"t\",\"n\":43}\n"};
  size_t sent = 0;

  fx_raw(fx);
  for (size_t i = 0; i < sizeof(parts) / sizeof(parts[0]); i++) {
    fx_raw_writes(fx, parts[i]);
    sent += strlen(parts[i]);
    /* Wait until the server has read it, so each part is its own read. */
    FX_WAIT(fx, fx_stats(fx).bytes_read >= sent);
    if (i < 3)
      assert_int_equal(json_array_size(fx->srv.frames), 0);
  }
  FX_WAIT(fx, json_array_size(fx->srv.frames) == 2);
  fx_assert_sequence(&fx->srv, 42, 2);
  assert_true(fx_stats(fx).reads >= 5);
}

static void test_bad_json_continues(void **state) {
  fx_t *fx = *state;

  fx_raw(fx);
  fx_raw_read_start(fx);
  fx->srv.reply_bad = 1;
  fx_raw_writes(fx, "{\"type\":\"t\",\"n\":1}\nnot json\n[1,2]\n"
                    "{\"a\":1,\"a\":2}\n{\"type\":\"t\",\"n\":2}\n");
  FX_WAIT(fx, json_array_size(fx->srv.frames) == 2);
  fx_assert_sequence(&fx->srv, 1, 2);
  assert_int_equal(fx->srv.bad_json, 3);
  assert_int_equal(fx->srv.closed, 0);
  /* The replies queued in the callback went out. */
  FX_WAIT(fx, fx->raw_len > 0 && fx->raw_buf[fx->raw_len - 1] == '\n' &&
                  strstr(fx->raw_buf, "bad_json") != NULL &&
                  strstr(strstr(fx->raw_buf, "bad_json") + 1, "bad_json") &&
                  fx_stats(fx).bytes_written == fx->raw_len);
  assert_int_equal(fx->srv.conn.state, CHAT_CONN_OPEN);
}

static void test_frame_too_large(void **state) {
  fx_t *fx = *state;
  size_t big = 8 * 1024 * 1024; /* more than socket buffers hold */
  char *line = malloc(big + 64);

  fx->srv_opts.max_frame = 64;
  fx_raw(fx);
  fx_raw_read_start(fx);
  fx->raw_half_close_ok = 1;
  fx->srv.reply_bad = 1;
  /* A good frame, then a huge line and more after it: most of the huge line
   * is still to come when the server has replied. */
  memset(line, 'x', big);
  memcpy(line, "{\"type\":\"t\",\"n\":1}\n{\"p\":\"", 24);
  memcpy(line + big - 3, "\"}\n", 3);
  fx_raw_write(fx, line, big);
  free(line);
  fx_raw_writes(fx, "{\"type\":\"t\",\"n\":2}\n");
  /* The server shuts its side after the reply, but reads on: all our data
   * goes in. Had it closed, the rest would be answered with a reset, and
   * our write would fail. */
  FX_WAIT(fx, fx->raw_eof != 0 && fx->raw_writes_done == 2);
  assert_int_equal(fx->raw_eof, 1);
  assert_int_equal(fx->raw_write_error, 0);
  assert_non_null(strstr(fx->raw_buf, "\"code\":\"frame_too_large\""));
  assert_int_equal(fx->srv.closed, 0);
  fx_close_raw(fx);
  FX_WAIT(fx, fx->srv.closed);
  assert_int_equal(fx->srv.too_large, 1);
  fx_assert_sequence(&fx->srv, 1, 1);
  assert_int_equal(fx->srv.close_status, -CHAT_E_FRAME_TOO_LARGE);
}

/* The usual server: reply and close inside the callback. The reply still
 * arrives, followed by a clean EOF, though the huge line was still coming. */
static void test_frame_too_large_callee_closes(void **state) {
  fx_t *fx = *state;
  size_t big = 200 * 1024;
  char *line = malloc(big);

  fx->srv_opts.max_frame = 1000;
  fx_raw(fx);
  fx_raw_read_start(fx);
  fx->srv.reply_bad = 1;
  fx->srv.close_on_bad = 1;
  memset(line, ' ', big);
  line[big - 1] = '\n';
  fx_raw_write(fx, line, big);
  free(line);
  FX_WAIT(fx, fx->srv.closed && fx->raw_eof);
  assert_int_equal(fx->raw_eof, 1);
  assert_int_equal(fx->raw_write_error, 0);
  assert_non_null(strstr(fx->raw_buf, "\"code\":\"frame_too_large\""));
  assert_int_equal(fx->srv.too_large, 1);
  assert_int_equal(fx->srv.close_status, 0); /* the callee's close came first */
}

static void test_peer_eof(void **state) {
  fx_t *fx = *state;
  uv_shutdown_t req;

  fx_raw(fx);
  fx_raw_read_start(fx);
  /* Half-close after a frame and an unterminated line: the frame counts, the
   * tail does not, and output queued on the way still reaches the peer. */
  fx_raw_writes(fx, "{\"type\":\"t\",\"n\":1}\n{\"type\":\"t\",\"n\":2}");
  assert_int_equal(uv_shutdown(&req, (uv_stream_t *)&fx->raw, NULL), 0);
  FX_WAIT(fx, json_array_size(fx->srv.frames) == 1);
  assert_int_equal(fx_send(&fx->srv.conn, 7, 0), 0);
  FX_WAIT(fx, fx->srv.closed && fx->raw_eof);
  assert_int_equal(fx->srv.close_status, UV_EOF);
  fx_assert_sequence(&fx->srv, 1, 1);
  assert_non_null(strstr(fx->raw_buf, "\"n\":7"));
  assert_int_equal(fx->raw_eof, 1);
}

static void test_close_inside_callback(void **state) {
  fx_t *fx = *state;

  fx_raw(fx);
  fx_raw_read_start(fx);
  fx->srv.close_at = 2;
  fx_raw_writes(fx, "{\"type\":\"t\",\"n\":1}\n{\"type\":\"t\",\"n\":2}\n"
                    "{\"type\":\"t\",\"n\":3}\n");
  FX_WAIT(fx, fx->srv.closed && fx->raw_eof);
  fx_assert_sequence(&fx->srv, 1, 2); /* nothing after the close */
  assert_true(fx->srv.line_ok);
  assert_int_equal(fx->srv.close_status, 0);
}

static void test_abort_inside_callback(void **state) {
  fx_t *fx = *state;

  fx_raw(fx);
  fx->srv.abort_at = 1;
  fx_raw_writes(fx, "{\"type\":\"t\",\"n\":1}\n{\"type\":\"t\",\"n\":2}\n");
  FX_WAIT(fx, fx->srv.closed);
  fx_assert_sequence(&fx->srv, 1, 1);
  assert_true(fx->srv.line_ok); /* still readable after abort (ASan) */
  assert_int_equal(fx->srv.close_status, 0);
  assert_int_equal(fx_send(&fx->srv.conn, 1, 0), -EPIPE);
}

static void test_connect_refused(void **state) {
  fx_t *fx = *state;
  struct sockaddr_in sa;
  uv_tcp_t tmp;
  struct sockaddr_storage ss;
  int n = sizeof(ss), port;

  /* A port that was just free: bound, then closed. */
  uv_tcp_init(&fx->loop, &tmp);
  uv_ip4_addr("127.0.0.1", 0, &sa);
  assert_int_equal(uv_tcp_bind(&tmp, (struct sockaddr *)&sa, 0), 0);
  uv_tcp_getsockname(&tmp, (struct sockaddr *)&ss, &n);
  port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
  uv_close((uv_handle_t *)&tmp, NULL);
  fx_turns(fx, 1);

  uv_ip4_addr("127.0.0.1", port, &sa);
  assert_int_equal(fx_conn_init(fx, &fx->cli, NULL), 0);
  assert_int_equal(
      chat_conn_connect(&fx->cli.conn, (struct sockaddr *)&sa, fx_on_connect),
      0);
  assert_int_equal(fx_send(&fx->cli.conn, 1, 0), 0); /* queued meanwhile */
  FX_WAIT(fx, fx->cli.closed);
  assert_int_equal(fx->cli.connected, 1);
  assert_int_equal(fx->cli.connect_status, UV_ECONNREFUSED);
  assert_int_equal(fx->cli.close_status, UV_ECONNREFUSED);
  assert_true(fx->cli.connect_seq < fx->cli.close_seq);
  /* A connect on a used conn is refused without a callback. */
  assert_int_equal(
      chat_conn_connect(&fx->cli.conn, (struct sockaddr *)&sa, fx_on_connect),
      UV_EINVAL);
}

static void test_connect_fails_at_once(void **state) {
  fx_t *fx = *state;
  struct sockaddr_in6 sa6;

  /* An address libuv rejects before connecting: still reported through the
   * callback, then on_close, and never from inside the call. */
  memset(&sa6, 0, sizeof(sa6));
  sa6.sin6_family = AF_INET6 + 100;
  assert_int_equal(fx_conn_init(fx, &fx->cli, NULL), 0);
  assert_int_equal(
      chat_conn_connect(&fx->cli.conn, (struct sockaddr *)&sa6, fx_on_connect),
      0);
  assert_int_equal(fx->cli.connected, 0);
  FX_WAIT(fx, fx->cli.closed);
  assert_int_equal(fx->cli.connected, 1);
  assert_true(fx->cli.connect_status < 0);
  assert_int_equal(fx->cli.close_status, fx->cli.connect_status);
  assert_true(fx->cli.connect_seq < fx->cli.close_seq);
}

static void test_send_errors(void **state) {
  fx_t *fx = *state;
  json_t *arr = json_array();

  fx_pair(fx, NULL);
  assert_int_equal(chat_conn_send_line(&fx->srv.conn, "{}", 2), -EINVAL);
  assert_int_equal(chat_conn_send_line(&fx->srv.conn, "{}\n{}\n", 6), -EINVAL);
  assert_int_equal(chat_conn_send_line(&fx->srv.conn, "", 0), -EINVAL);
  assert_int_equal(chat_conn_send(&fx->srv.conn, arr), -EINVAL);
  assert_int_equal(chat_conn_output_len(&fx->srv.conn), 0);
  json_decref(arr);
  assert_int_equal(
      chat_conn_send_line(&fx->srv.conn, "{\"type\":\"t\",\"n\":5}\n", 19), 0);
  assert_int_equal(chat_conn_output_len(&fx->srv.conn), 19);
  FX_WAIT(fx, json_array_size(fx->cli.frames) == 1);
  assert_int_equal(fx_n(&fx->cli, 0), 5);
  chat_conn_abort(&fx->srv.conn);
  chat_conn_abort(&fx->srv.conn);
  assert_int_equal(chat_conn_send_line(&fx->srv.conn, "{}\n", 3), -EPIPE);
  FX_WAIT(fx, fx->srv.closed && fx->cli.closed);
  assert_int_equal(fx->cli.close_status, UV_EOF);
}

static void test_never_connected_close(void **state) {
  fx_t *fx = *state;
  assert_int_equal(fx_conn_init(fx, &fx->cli, NULL), 0);
  /* Not connected: nothing can be sent. */
  assert_int_equal(chat_conn_send_line(&fx->cli.conn, "{}\n", 3), -EPIPE);
  assert_int_equal(fx_send(&fx->cli.conn, 1, 0), -EPIPE);
  chat_conn_close(&fx->cli.conn);
  FX_WAIT(fx, fx->cli.closed);
  assert_int_equal(fx->cli.close_status, 0);
  assert_int_equal(fx->cli.connected, 0);
}

static void test_one_write_per_turn(void **state) {
  fx_t *fx = *state;
  chat_io_stats_t before, after;

  fx_pair(fx, NULL);
  fx_turns(fx, 3);
  before = fx_stats(fx);
  for (int i = 1; i <= 50; i++)
    assert_int_equal(fx_send(&fx->cli.conn, i, 20), 0);
  /* Nothing is written until the check phase of the loop turn. */
  assert_int_equal(fx_stats(fx).writes, before.writes);
  fx_turns(fx, 1);
  after = fx_stats(fx);
  assert_int_equal(after.writes, before.writes + 1);
  FX_WAIT(fx, json_array_size(fx->srv.frames) == 50);
  fx_assert_sequence(&fx->srv, 1, 50);
  assert_int_equal(fx_stats(fx).writes, before.writes + 1);
  assert_int_equal(fx_stats(fx).bytes_written - before.bytes_written,
                   fx_stats(fx).bytes_read - before.bytes_read);
}

/* Output queued from a callback that runs after the check phase (a timer)
 * still goes out without any other event to wake the loop. */
static void late_send_cb(uv_timer_t *t) {
  fx_t *fx = t->data;
  fx_send(&fx->cli.conn, 9, 0);
  uv_close((uv_handle_t *)t, (uv_close_cb)free);
}

static void test_send_from_timer(void **state) {
  fx_t *fx = *state;
  uv_timer_t *t = malloc(sizeof(*t));

  fx_pair(fx, NULL);
  uv_timer_init(&fx->loop, t);
  t->data = fx;
  uv_timer_start(t, late_send_cb, 10, 0);
  FX_WAIT(fx, json_array_size(fx->srv.frames) == 1);
  assert_int_equal(fx_n(&fx->srv, 0), 9);
}

#define T(f) cmocka_unit_test_setup_teardown(f, fx_setup, fx_teardown)

int main(void) {
  const struct CMUnitTest tests[] = {
      T(test_exchange),
      T(test_many_frames_one_write),
      T(test_frame_split_across_writes),
      T(test_bad_json_continues),
      T(test_frame_too_large),
      T(test_frame_too_large_callee_closes),
      T(test_peer_eof),
      T(test_close_inside_callback),
      T(test_abort_inside_callback),
      T(test_connect_refused),
      T(test_connect_fails_at_once),
      T(test_send_errors),
      T(test_never_connected_close),
      T(test_one_write_per_turn),
      T(test_send_from_timer),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
