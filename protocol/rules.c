/* rules.c -- the value rules of PROTOCOL.md section 2. */
#include "chat_protocol.h"
#include "protocol_int.h"

#include <arpa/inet.h>
#include <string.h>

int chat__name_validn(const char *s, size_t len) {
  if (len < 1 || len > CHAT_MAX_NAME)
    return 0;
  if (!((s[0] >= 'a' && s[0] <= 'z') || (s[0] >= '0' && s[0] <= '9')))
    return 0;
  for (size_t i = 1; i < len; i++) {
    char c = s[i];
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' ||
          c == '.' || c == '-'))
      return 0;
  }
  return 1;
}

int chat__msg_id_validn(const char *s, size_t len) {
  if (len < 1 || len > CHAT_MAX_MSG_ID)
    return 0;
  for (size_t i = 0; i < len; i++) {
    char c = s[i];
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
          (c >= '0' && c <= '9') || c == '_' || c == '-'))
      return 0;
  }
  return 1;
}

static int lower_hex(const char *s, size_t len) {
  for (size_t i = 0; i < len; i++)
    if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
      return 0;
  return 1;
}

int chat__ticket_validn(const char *s, size_t len) {
  return len == CHAT_TICKET_LEN && lower_hex(s, len);
}

/* A direct link's key (PROTOCOL.md 7): the raw 32-byte Ed25519 public key
 * of the client's TLS certificate, in lowercase hex. */
int chat__key_validn(const char *s, size_t len) {
  return len == CHAT_KEY_LEN && lower_hex(s, len);
}

/* Any bytes but NUL: a password is hashed, never shown. */
int chat__password_validn(const char *s, size_t len) {
  return len >= CHAT_MIN_PASSWORD && len <= CHAT_MAX_PASSWORD &&
         memchr(s, '\0', len) == NULL;
}

/* The NUL-terminated forms stop at the first NUL, so strnlen bounds the work
 * to one byte past the longest valid value. */
int chat_name_valid(const char *name) {
  return name != NULL &&
         chat__name_validn(name, strnlen(name, CHAT_MAX_NAME + 1));
}

int chat_password_valid(const char *password) {
  return password != NULL &&
         chat__password_validn(password,
                               strnlen(password, CHAT_MAX_PASSWORD + 1));
}

int chat_msg_id_valid(const char *msg_id) {
  return msg_id != NULL &&
         chat__msg_id_validn(msg_id, strnlen(msg_id, CHAT_MAX_MSG_ID + 1));
}

int chat_ticket_valid(const char *ticket) {
  return ticket != NULL &&
         chat__ticket_validn(ticket, strnlen(ticket, CHAT_TICKET_LEN + 1));
}

int chat_key_valid(const char *key) {
  return key != NULL &&
         chat__key_validn(key, strnlen(key, CHAT_KEY_LEN + 1));
}

/* Full check, UTF-8 included: for text that did not come through jansson
 * (e.g. a line a person typed). */
int chat_body_valid(const char *body, size_t len) {
  return body != NULL && len >= 1 && len <= CHAT_MAX_BODY &&
         memchr(body, '\0', len) == NULL && chat__utf8_valid(body, len);
}

int chat_ip_valid(const char *ip) {
  unsigned char buf[sizeof(struct in6_addr)];
  if (ip == NULL || strnlen(ip, CHAT_IP_MAX) >= CHAT_IP_MAX)
    return 0;
  return inet_pton(AF_INET, ip, buf) == 1 || inet_pton(AF_INET6, ip, buf) == 1;
}
