/* test_conn_line.c -- the raw-line hook (chat_conn_set_on_line) over real
 * loopback TCP: handled lines skip the parse, the rest take the usual way,
 * in stream order, and the hook may pause and close like on_frame. */
#include "conn_fixture.h"

/* What the server side saw, in order: "L<line>" for a line the hook
 * handled, "F<n>" for a frame, "B" for bad JSON, "-" for a blank line the
 * hook passed on. */
static char events[4096];
static int pause_on_handled, close_on_handled;

static void log_event(const char *fmt, const char *s, size_t n) {
  size_t used = strlen(events);
  snprintf(events + used, sizeof(events) - used, fmt, (int)n, s);
}

static int on_line(chat_conn_t *c, const char *line, size_t len) {
  size_t i = 0;
  while (i < len && (line[i] == ' ' || line[i] == '\t'))
    i++;
  if (i == len) {
    log_event("-%.*s", "", 0);
    return 0;
  }
  if (len < 5 || memcmp(line, "{\"h\":", 5) != 0)
    return 0;
  log_event("L%.*s ", line, len);
  if (pause_on_handled)
    chat_conn_pause(c);
  if (close_on_handled)
    chat_conn_close(c);
  return 1;
}

static void on_frame(chat_conn_t *c, json_t *obj, const char *line,
                     size_t len) {
  char n[24];
  fx_on_frame(c, obj, line, len);
  snprintf(n, sizeof(n), "F%lld ",
           (long long)json_integer_value(json_object_get(obj, "n")));
  log_event("%.*s", n, strlen(n));
}

static void on_bad_frame(chat_conn_t *c, const chat_error_t *err) {
  fx_on_bad_frame(c, err);
  log_event("%.*sB ", "", 0);
}

static const chat_conn_cbs_t line_cbs = {on_frame, on_bad_frame,
                                         fx_on_overflow, fx_on_close};

static int setup(void **state) {
  int rc = fx_setup(state);
  fx_t *fx = *state;
  fx->srv_cbs = &line_cbs;
  fx->srv_on_line = on_line;
  events[0] = '\0';
  pause_on_handled = close_on_handled = 0;
  return rc;
}

static void test_handled_lines_skip_the_parse(void **state) {
  fx_t *fx = *state;

  fx_raw(fx);
  fx_raw_writes(fx, "{\"h\":1}\n{\"type\":\"t\",\"n\":1}\n\n \t\nnot json\n"
                    "{\"h\":2}\r\n{\"type\":\"t\",\"n\":2}\n");
  FX_WAIT(fx, json_array_size(fx->srv.frames) == 2);
  /* The CR is stripped, blank lines reach the hook (and are skipped when
   * it passes them on), order is the stream's. */
  assert_string_equal(events, "L{\"h\":1} F1 --B L{\"h\":2} F2 ");
  assert_int_equal(fx->srv.bad_json, 1);
}

/* The hook may even take a line the parser would refuse: it decides. */
static void test_hook_takes_bad_json(void **state) {
  fx_t *fx = *state;

  fx_raw(fx);
  fx_raw_writes(fx, "{\"h\": not json at all\n{\"type\":\"t\",\"n\":1}\n");
  FX_WAIT(fx, json_array_size(fx->srv.frames) == 1);
  assert_string_equal(events, "L{\"h\": not json at all F1 ");
  assert_int_equal(fx->srv.bad_json, 0);
}

static void test_pause_from_the_hook(void **state) {
  fx_t *fx = *state;

  fx_raw(fx);
  pause_on_handled = 1;
  fx_raw_writes(fx, "{\"type\":\"t\",\"n\":1}\n{\"h\":1}\n"
                    "{\"type\":\"t\",\"n\":2}\n");
  FX_WAIT(fx, strstr(events, "L") != NULL);
  fx_turns(fx, 20);
  assert_string_equal(events, "F1 L{\"h\":1} ");
  pause_on_handled = 0;
  chat_conn_resume(&fx->srv.conn);
  FX_WAIT(fx, json_array_size(fx->srv.frames) == 2);
  assert_string_equal(events, "F1 L{\"h\":1} F2 ");
}

static void test_close_from_the_hook(void **state) {
  fx_t *fx = *state;

  fx_raw(fx);
  fx_raw_read_start(fx);
  close_on_handled = 1;
  fx_raw_writes(fx, "{\"h\":1}\n{\"type\":\"t\",\"n\":1}\n");
  FX_WAIT(fx, fx->srv.closed);
  /* Nothing after the closing line was handed out. */
  assert_string_equal(events, "L{\"h\":1} ");
  assert_int_equal(json_array_size(fx->srv.frames), 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
    cmocka_unit_test_setup_teardown(test_handled_lines_skip_the_parse, setup,
                                    fx_teardown),
    cmocka_unit_test_setup_teardown(test_hook_takes_bad_json, setup,
                                    fx_teardown),
    cmocka_unit_test_setup_teardown(test_pause_from_the_hook, setup,
                                    fx_teardown),
    cmocka_unit_test_setup_teardown(test_close_from_the_hook, setup,
                                    fx_teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
