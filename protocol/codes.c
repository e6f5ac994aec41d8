/* codes.c -- error codes: wire names, texts for people, structured errors. */
#include "chat_protocol.h"
#include "protocol_int.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* Indexed by code - CHAT_E_BAD_JSON, in the order of PROTOCOL.md section 2. */
static const struct {
  const char *name;
  const char *text;
} codes[CHAT_E__END - CHAT_E_BAD_JSON] = {
  {"bad_json", "the line is not a JSON object"},
  {"frame_too_large", "frame over max_frame"},
  {"bad_request", "a field is missing, has the wrong type, or is out of range"},
  {"unknown_type", "type is not known"},
  {"not_authenticated", "the request needs a logged-in session"},
  {"already_authenticated", "already logged in"},
  {"auth_failed", "wrong user or password"},
  {"user_exists", "user name taken"},
  {"no_such_user", "no such user"},
  {"no_such_group", "no such group"},
  {"not_contact", "the users are not contacts"},
  {"offline", "the user is not logged in"},
  {"no_p2p", "the user accepts no direct connections"},
  {"group_exists", "group name taken"},
  {"not_member", "not a member of the group"},
  {"bad_ticket", "bad peer ticket"},
  {"rate_limited", "too many requests; slow down"},
  {"server_busy", "connection limit reached"},
  {"internal", "the server failed"},
};

static int code_index(int code) {
  if (code < 0)
    code = -code;
  if (code < CHAT_E_BAD_JSON || code >= CHAT_E__END)
    return -1;
  return code - CHAT_E_BAD_JSON;
}

const char *chat_code_name(int code) {
  int i = code_index(code);
  return i < 0 ? NULL : codes[i].name;
}

int chat_code_from_name(const char *name) {
  if (name == NULL)
    return 0;
  for (int i = 0; i < CHAT_E__END - CHAT_E_BAD_JSON; i++)
    if (strcmp(codes[i].name, name) == 0)
      return CHAT_E_BAD_JSON + i;
  return 0;
}

const char *chat_strerror(int err) {
  int i;

  if (err == 0)
    return "success";
  i = code_index(err);
  if (i >= 0)
    return codes[i].text;
  if (err < 0 && -err < CHAT_E_BAD_JSON)
    return strerror(-err); /* glibc: a static string for every known errno */
  return "unknown error";
}

int chat_code_is_protocol_error(int code) {
  if (code < 0)
    code = -code;
  return code == CHAT_E_BAD_JSON || code == CHAT_E_BAD_REQUEST ||
         code == CHAT_E_UNKNOWN_TYPE || code == CHAT_E_NOT_AUTHENTICATED ||
         code == CHAT_E_ALREADY_AUTHENTICATED;
}

int chat_error_set(chat_error_t *err, int code, const char *field,
                   const char *fmt, ...) {
  va_list ap;

  if (code < 0)
    code = -code;
  if (err == NULL || err->code != 0)
    return -code;
  err->code = code;
  snprintf(err->field, sizeof(err->field), "%s", field ? field : "");
  if (fmt != NULL) {
    va_start(ap, fmt);
    vsnprintf(err->message, sizeof(err->message), fmt, ap);
    va_end(ap);
    /* A message cut short by the buffer must not end mid-sequence: it goes
     * into a JSON string, which must be valid UTF-8. */
    err->message[chat__utf8_prefix(err->message, strlen(err->message),
                                   sizeof(err->message) - 1)] = '\0';
  } else {
    snprintf(err->message, sizeof(err->message), "%s", chat_strerror(code));
  }
  return -code;
}
