/* test_validate.c -- chat_msg_decode against the message corpus
 * (messages/<case>, see messages/README), plus the rules and API details. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chat_protocol.h"
#include "corpus.h"

#define CORPUS "messages"

/* ---- printing a decoded message's members ------------------------------ */

struct member {
  const char *name;
  enum { M_STR, M_I64, M_JSON } kind;
  size_t off;
};

#define S(m) {#m, M_STR, offsetof(chat_msg_t, m)}
#define N(m) {#m, M_I64, offsetof(chat_msg_t, m)}
#define J(m) {#m, M_JSON, offsetof(chat_msg_t, m)}
static const struct member members[] = {
  J(id), S(user), S(password), S(to), S(from), S(by), S(msg_id), S(body),
  S(group), S(ticket), S(host), S(p2p_host), S(reason), S(code), S(message),
  S(state), S(server), S(key), N(p2p_port), N(port), N(proto), N(ts),
  N(heartbeat), N(max_frame), N(relayed), N(stored), J(contacts), J(members),
  J(groups),
};

/* Prints member name of msg into buf; returns 0, or -1 for an unknown name. */
static int print_member(const chat_msg_t *msg, const char *name, char *buf,
                        size_t size) {
  const char *v;

  if (strcmp(name, "type") == 0) {
    v = chat_type_name(msg->type);
    snprintf(buf, size, "%s", v ? v : "-");
    return 0;
  }
  if (strcmp(name, "status") == 0) {
    v = chat_status_name(msg->status);
    snprintf(buf, size, "%s", v ? v : "-");
    return 0;
  }
  if (strcmp(name, "body_len") == 0) {
    snprintf(buf, size, "%zu", msg->body_len);
    return 0;
  }
  if (strcmp(name, "offline") == 0) {
    snprintf(buf, size, "%d", msg->offline);
    return 0;
  }
  for (size_t i = 0; i < sizeof(members) / sizeof(members[0]); i++) {
    const struct member *m = &members[i];
    const char *base = (const char *)msg + m->off;
    if (strcmp(m->name, name) != 0)
      continue;
    if (m->kind == M_I64) {
      snprintf(buf, size, "%lld", (long long)*(const int64_t *)(const void *)base);
    } else if (m->kind == M_JSON) {
      const json_t *j = *(const json_t *const *)(const void *)base;
      char *s = j ? json_dumps(j, JSON_ENCODE_ANY | JSON_COMPACT) : NULL;
      snprintf(buf, size, "%s", s ? s : "-");
      free(s);
    } else {
      const char *s = *(const char *const *)(const void *)base;
      size_t n = 0;
      if (s == NULL) {
        snprintf(buf, size, "-");
        return 0;
      }
      for (; *s != '\0' && n + 3 < size; s++) {
        if (*s == '\\' || *s == '\n') {
          buf[n++] = '\\';
          buf[n++] = *s == '\n' ? 'n' : '\\';
        } else {
          buf[n++] = *s;
        }
      }
      buf[n] = '\0';
    }
    return 0;
  }
  return -1;
}

/* ---- the corpus -------------------------------------------------------- */

static char *slurp(const char *dir, const char *file) {
  char path[512];

  snprintf(path, sizeof(path), CORPUS "/%s/%s", dir, file);
  return corpus_read(path, NULL);
}

#define VALBUF 40000

static void run_case(const char *name) {
  char *role_s = slurp(name, "role"), *input = slurp(name, "input");
  char *expected = slurp(name, "expected"), *line, *save = NULL;
  char *val = malloc(VALBUF);
  char listed[64][32];
  size_t nlisted = 0, in_len;
  chat_role_t role = CHAT_ROLE_SERVER;
  chat_msg_t msg;
  chat_error_t err;
  json_t *obj;
  int rc, want_ok;

  if (role_s == NULL || input == NULL || expected == NULL || val == NULL) {
    print_error("%s: needs role, input and expected\n", name);
    fail();
  }
  if (strncmp(role_s, "server", 6) == 0)
    role = CHAT_ROLE_SERVER;
  else if (strncmp(role_s, "client", 6) == 0)
    role = CHAT_ROLE_CLIENT;
  else if (strncmp(role_s, "peer", 4) == 0)
    role = CHAT_ROLE_PEER;
  else {
    print_error("%s: bad role '%s'\n", name, role_s);
    fail();
  }
  in_len = strlen(input);
  if (in_len > 0 && input[in_len - 1] == '\n')
    in_len--;
  rc = chat_frame_parse(input, in_len, &obj, &err);
  if (rc != 0) {
    print_error("%s: input does not parse: %s\n", name, err.message);
    fail();
  }
  rc = chat_msg_decode(obj, role, &msg, &err);

  line = strtok_r(expected, "\n", &save);
  assert_non_null(line);
  want_ok = strcmp(line, "ok") == 0;
  if (want_ok) {
    if (rc != 0) {
      print_error("%s: want ok, got %d (%s: %s)\n", name, rc, err.field,
                  err.message);
      fail();
    }
    assert_int_equal(err.code, 0);
  } else {
    char code[40], field[40];
    if (sscanf(line, "error %39s %39s", code, field) != 2) {
      print_error("%s: bad first line '%s'\n", name, line);
      fail();
    }
    if (rc != -chat_code_from_name(code) || rc >= 0 ||
        strcmp(err.field, strcmp(field, "-") == 0 ? "" : field) != 0) {
      print_error("%s: want %s on '%s', got %d on '%s' (%s)\n", name, code,
                  field, rc, err.field, err.message);
      fail();
    }
    assert_int_equal(err.code, -rc);
    assert_true(err.message[0] != '\0');
  }

  while ((line = strtok_r(NULL, "\n", &save)) != NULL) {
    char *sp = strchr(line, ' ');
    const char *want = sp ? sp + 1 : "";
    if (sp != NULL)
      *sp = '\0';
    if (strcmp(line, "says") == 0) {
      if (strstr(err.message, want) == NULL) {
        print_error("%s: message '%s' lacks '%s'\n", name, err.message, want);
        fail();
      }
      continue;
    }
    if (print_member(&msg, line, val, VALBUF) < 0) {
      print_error("%s: unknown member '%s'\n", name, line);
      fail();
    }
    if (strcmp(val, want) != 0) {
      print_error("%s: %s is '%.200s', want '%.200s'\n", name, line, val, want);
      fail();
    }
    assert_true(nlisted < 64);
    snprintf(listed[nlisted++], sizeof(listed[0]), "%s", line);
  }

  /* For ok, whatever is not listed must be absent. */
  if (want_ok) {
    static const char *const others[] = {"status", "body_len", "offline"};
    for (size_t i = 0; i < sizeof(members) / sizeof(members[0]) + 3; i++) {
      const char *m = i < sizeof(members) / sizeof(members[0])
                          ? members[i].name
                          : others[i - sizeof(members) / sizeof(members[0])];
      int is_listed = 0;
      for (size_t k = 0; k < nlisted; k++)
        is_listed |= strcmp(listed[k], m) == 0;
      if (is_listed)
        continue;
      assert_int_equal(print_member(&msg, m, val, VALBUF), 0);
      if (strcmp(val, "-") != 0 && strcmp(val, "-1") != 0 &&
          !(strcmp(m, "body_len") == 0 && strcmp(val, "0") == 0)) {
        print_error("%s: %s is '%.200s' but not listed\n", name, m, val);
        fail();
      }
    }
  }
  json_decref(obj);
  free(role_s);
  free(input);
  free(expected);
  free(val);
}

static void test_corpus(void **state) {
  size_t n;
  char **names = corpus_cases(CORPUS, &n);

  assert_true(n >= 100);
  for (size_t i = 0; i < n; i++)
    run_case(names[i]);
  print_message("%zu message cases\n", n);
  corpus_cases_free(names, n);
}

/* ---- API details the corpus cannot show -------------------------------- */

static void test_every_type_some_role(void **state) {
  /* Each type is known to exactly the roles that receive it. */
  for (int t = CHAT_T_NONE + 1; t < CHAT_T__COUNT; t++) {
    json_t *o = chat_msg_new((chat_type_t)t);
    chat_msg_t msg;
    int known = 0;
    assert_non_null(o);
    for (int r = CHAT_ROLE_SERVER; r <= CHAT_ROLE_PEER; r++)
      if (chat_msg_decode(o, (chat_role_t)r, &msg, NULL) !=
          -CHAT_E_UNKNOWN_TYPE)
        known++;
    assert_true(known >= 1);
    json_decref(o);
  }
}

static void test_pointers_borrow(void **state) {
  json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:i}", "type", "send", "to",
                        "bob", "msg_id", "m1", "body", "hello", "id", 42);
  chat_msg_t msg;

  assert_int_equal(chat_msg_decode(o, CHAT_ROLE_SERVER, &msg, NULL), 0);
  assert_ptr_equal(msg.to, json_string_value(json_object_get(o, "to")));
  assert_ptr_equal(msg.body, json_string_value(json_object_get(o, "body")));
  assert_ptr_equal(msg.id, json_object_get(o, "id"));
  assert_int_equal(msg.body_len, 5);
  json_decref(o);
}

static void test_built_strings_with_nul(void **state) {
  /* Only a json_t made in code can hold a NUL; it must not slip through as
   * a shorter C string. */
  json_t *o = json_pack("{s:s, s:s, s:s, s:s%}", "type", "send", "to", "bob",
                        "msg_id", "m1", "body", "a\0b", (size_t)3);
  chat_msg_t msg;
  chat_error_t err;

  assert_non_null(o);
  assert_int_equal(chat_msg_decode(o, CHAT_ROLE_SERVER, &msg, &err),
                   -CHAT_E_BAD_REQUEST);
  assert_string_equal(err.field, "body");
  json_object_set_new(o, "body", json_string("ok"));
  json_object_set_new(o, "to", json_stringn("bob\0x", 5));
  assert_int_equal(chat_msg_decode(o, CHAT_ROLE_SERVER, &msg, &err),
                   -CHAT_E_BAD_REQUEST);
  assert_string_equal(err.field, "to");
  json_decref(o);
  o = json_pack("{s:s%}", "type", "ping\0x", (size_t)6);
  assert_int_equal(chat_msg_decode(o, CHAT_ROLE_SERVER, &msg, &err),
                   -CHAT_E_UNKNOWN_TYPE);
  json_decref(o);
}

static void test_err_cleared_and_optional(void **state) {
  json_t *o = json_pack("{s:s}", "type", "logout");
  chat_msg_t msg;
  chat_error_t err;

  chat_error_set(&err, CHAT_E_INTERNAL, "x", "stale");
  assert_int_equal(chat_msg_decode(o, CHAT_ROLE_SERVER, &msg, &err), 0);
  assert_int_equal(err.code, 0);
  assert_int_equal(chat_msg_decode(o, CHAT_ROLE_CLIENT, &msg, NULL),
                   -CHAT_E_UNKNOWN_TYPE);
  json_decref(o);
  o = json_array();
  assert_int_equal(chat_msg_decode(o, CHAT_ROLE_SERVER, &msg, &err),
                   -CHAT_E_BAD_REQUEST);
  json_decref(o);
}

static void test_rules(void **state) {
  char s[300];

  assert_true(chat_name_valid("a"));
  assert_true(chat_name_valid("0abc_.-"));
  memset(s, 'a', 32);
  s[32] = '\0';
  assert_true(chat_name_valid(s));
  s[32] = 'a';
  s[33] = '\0';
  assert_false(chat_name_valid(s));
  assert_false(chat_name_valid(""));
  assert_false(chat_name_valid(NULL));
  assert_false(chat_name_valid("_a"));
  assert_false(chat_name_valid(".a"));
  assert_false(chat_name_valid("A"));
  assert_false(chat_name_valid("a\xc3\xa9"));

  assert_true(chat_password_valid("12345678"));
  assert_false(chat_password_valid("1234567"));
  memset(s, 'p', 256);
  s[256] = '\0';
  assert_true(chat_password_valid(s));
  s[256] = 'p';
  s[257] = '\0';
  assert_false(chat_password_valid(s));
  assert_false(chat_password_valid(NULL));

  assert_true(chat_msg_id_valid("Az09_-"));
  assert_false(chat_msg_id_valid(""));
  assert_false(chat_msg_id_valid("a b"));
  assert_false(chat_msg_id_valid("a.b"));
  memset(s, 'M', 64);
  s[64] = '\0';
  assert_true(chat_msg_id_valid(s));
  s[64] = 'M';
  s[65] = '\0';
  assert_false(chat_msg_id_valid(s));

  assert_true(chat_ticket_valid("0123456789abcdef0123456789abcdef"));
  assert_false(chat_ticket_valid("0123456789ABCDEF0123456789abcdef"));
  assert_false(chat_ticket_valid("0123456789abcdef0123456789abcde"));
  assert_false(chat_ticket_valid("0123456789abcdef0123456789abcdef0"));
  assert_false(chat_ticket_valid(NULL));
  /* direct-link keys: 64 lowercase hex digits (PROTOCOL.md 7) */
  assert_true(chat_key_valid(
      "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"));
  assert_false(chat_key_valid(
      "0123456789ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef"));
  assert_false(chat_key_valid(
      "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcde"));
  assert_false(chat_key_valid(
      "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef0"));
  assert_false(chat_key_valid(""));
  assert_false(chat_key_valid(NULL));

  assert_true(chat_body_valid("x", 1));
  assert_true(chat_body_valid("h\xc3\xa9", 3));
  assert_false(chat_body_valid("", 0));
  assert_false(chat_body_valid("a\0b", 3));
  assert_false(chat_body_valid("\xff", 1));
  assert_false(chat_body_valid("\xc3", 1));          /* truncated */
  assert_false(chat_body_valid("\xed\xa0\x80", 3));  /* surrogate */
  assert_false(chat_body_valid("\xc0\x80", 2));      /* overlong NUL */
  assert_false(chat_body_valid(NULL, 1));
  {
    char *big = malloc(CHAT_MAX_BODY + 1);
    memset(big, 'b', CHAT_MAX_BODY + 1);
    assert_true(chat_body_valid(big, CHAT_MAX_BODY));
    assert_false(chat_body_valid(big, CHAT_MAX_BODY + 1));
    free(big);
  }
}

static void test_names(void **state) {
  for (int t = CHAT_T_NONE + 1; t < CHAT_T__COUNT; t++) {
    const char *n = chat_type_name((chat_type_t)t);
    assert_non_null(n);
    assert_int_equal(chat_type_from_name(n), t);
  }
  assert_null(chat_type_name(CHAT_T_NONE));
  assert_null(chat_type_name(CHAT_T__COUNT));
  assert_null(chat_type_name((chat_type_t)-1));
  assert_int_equal(chat_type_from_name("nope"), CHAT_T_NONE);
  assert_int_equal(chat_type_from_name(""), CHAT_T_NONE);
  assert_int_equal(chat_type_from_name(NULL), CHAT_T_NONE);
  assert_string_equal(chat_type_name(CHAT_T_GROUP_SEND), "group_send");
  assert_string_equal(chat_type_name(CHAT_T_PEER_HELLO), "peer_hello");

  for (int s = CHAT_STATUS_ONLINE; s <= CHAT_STATUS_OFFLINE; s++)
    assert_int_equal(chat_status_from_name(chat_status_name((chat_status_t)s)),
                     s);
  assert_null(chat_status_name(CHAT_STATUS_NONE));
  assert_int_equal(chat_status_from_name("Online"), CHAT_STATUS_NONE);
  assert_int_equal(chat_status_from_name(NULL), CHAT_STATUS_NONE);
}

int main(void) {
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_corpus),
    cmocka_unit_test(test_every_type_some_role),
    cmocka_unit_test(test_pointers_borrow),
    cmocka_unit_test(test_built_strings_with_nul),
    cmocka_unit_test(test_err_cleared_and_optional),
    cmocka_unit_test(test_rules),
    cmocka_unit_test(test_names),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
