/* events.c -- the events chat-client --json prints and the fields each one
 * may carry (CLI.md, plus the client's own additions: docs/CLIENT.md), so
 * that `chat-scenario --check` rejects a script expecting an event or a
 * field that can never come, instead of it failing after a timeout. */
#include <stdio.h>
#include <string.h>

#include "scenario.h"

typedef struct known {
  const char *event;
  const char *const fields[14];
} known_t;

static const known_t known[] = {
    {"ready", {"user", "p2p_port"}},
    {"message",
     {"group", "from", "body", "msg_id", "ts", "via", "offline", "path"}},
    {"sent",
     {"to", "group", "msg_id", "via", "status", "fallback", "path", "relayed",
      "stored", "over_quota"}},
    {"receipt", {"to", "msg_id", "state"}},
    {"presence", {"user", "status"}},
    {"contact_request", {"from"}},
    {"contact_added", {"user", "status"}},
    {"contact_removed", {"user"}},
    {"contacts", {"contacts"}},
    {"group_added", {"group", "by"}},
    {"group_members", {"group", "members"}},
    {"groups", {"groups"}},
    {"kicked", {"reason"}},
    {"error",
     {"code", "message", "command", "user", "to", "group", "status", "msg_id",
      "bytes"}},
    {"disconnected", {"reason"}},
    {"ok", {"command", "user", "group", "status"}},
    {"queued", {"to", "group", "msg_id"}},
    {"reconnecting", {"in_ms"}},
    {"conversations", {"conversations"}},
    {"history", {"user", "group", "messages"}},
};

#define NKNOWN (sizeof(known) / sizeof(known[0]))

static int has_field(const known_t *k, const char *field) {
  for (size_t i = 0; i < 14 && k->fields[i]; i++)
    if (strcmp(k->fields[i], field) == 0)
      return 1;
  return 0;
}

int chat_scenario_event_check(const char *event, const char *field, char *why,
                              size_t len) {
  const known_t *k = NULL;
  size_t n = 0;
  for (size_t i = 0; i < NKNOWN; i++)
    if (strcmp(known[i].event, event) == 0)
      k = &known[i];
  if (strcmp(event, "*") == 0) { /* any event: any field one of them has */
    for (size_t i = 0; field && i < NKNOWN; i++)
      if (has_field(&known[i], field) || strcmp(field, "event") == 0)
        return 0;
    if (!field)
      return 0;
    snprintf(why, len, "no event has a field '%s'", field);
    return -1;
  }
  if (!k) {
    n = (size_t)snprintf(why, len, "unknown event '%s' (chat-client prints:",
                         event);
    for (size_t i = 0; i < NKNOWN && n < len; i++)
      n += (size_t)snprintf(why + n, len - n, " %s", known[i].event);
    if (n < len)
      snprintf(why + n, len - n, ")");
    return -1;
  }
  if (!field || has_field(k, field) || strcmp(field, "event") == 0)
    return 0;
  n = (size_t)snprintf(why, len, "event '%s' has no field '%s' (its fields:",
                       event, field);
  for (size_t i = 0; i < 14 && k->fields[i] && n < len; i++)
    n += (size_t)snprintf(why + n, len - n, " %s", k->fields[i]);
  if (n < len)
    snprintf(why + n, len - n, ")");
  return -1;
}
