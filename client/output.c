/* output.c -- events, for scripts (--json: one object per line on stdout,
 * nothing else) or for people (a timestamped line, colours on a terminal). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "client_uv.h"
#include "input.h"
#include "output.h"
#include "stamp.h"

#define C_RESET "\033[0m"
#define C_DIM "\033[2m"
#define C_BOLD "\033[1m"
#define C_RED "\033[31m"
#define C_GREEN "\033[32m"
#define C_YELLOW "\033[33m"
#define C_CYAN "\033[36m"

static const char *col(const chat_client_t *c, const char *code) {
  return c->color ? code : "";
}

static const char *str(const json_t *ev, const char *key) {
  const char *s = json_string_value(json_object_get(ev, key));
  return s ? s : "";
}

static long long num(const json_t *ev, const char *key) {
  return (long long)json_integer_value(json_object_get(ev, key));
}

/* "[12:34:56]" for local time now, or for ts (ms since the epoch). */
static void stamp(char *buf, size_t len, long long ts_ms) {
  time_t now = time(NULL);
  chat_stamp_format(buf, len, ts_ms > 0 ? ts_ms : (long long)now * 1000,
                    (long long)now * 1000);
}

static const char *short_id(const char *msg_id) {
  static char buf[9];
  snprintf(buf, sizeof(buf), "%.8s", msg_id);
  return buf;
}

static void human_sent(chat_client_t *c, const json_t *ev, FILE *f) {
  const char *fb = str(ev, "fallback");
  if (*str(ev, "group")) {
    fprintf(f, "%s-> #%s [%s] relayed to %lld, stored for %lld\n",
            col(c, C_DIM), str(ev, "group"), short_id(str(ev, "msg_id")),
            num(ev, "relayed"), num(ev, "stored"));
    fputs(col(c, C_RESET), f);
    return;
  }
  fprintf(f, "%s-> %s [%s] ", col(c, C_DIM), str(ev, "to"),
          short_id(str(ev, "msg_id")));
  if (strcmp(str(ev, "via"), "direct") == 0 && *str(ev, "path") &&
      strcmp(str(ev, "path"), "dialed") != 0)
    fprintf(f, "%sdelivered directly (%s), encrypted%s", col(c, C_GREEN),
            strcmp(str(ev, "path"), "punched") == 0
                ? "through the NAT: hole punched"
                : "the peer dialed back",
            col(c, C_RESET));
  else if (strcmp(str(ev, "via"), "direct") == 0)
    fprintf(f, "%sdelivered directly, encrypted%s", col(c, C_GREEN),
            col(c, C_RESET));
  else if (strcmp(str(ev, "status"), "stored") == 0)
    fprintf(f, "stored by the server until %s logs in", str(ev, "to"));
  else
    fprintf(f, "relayed by the server");
  if (*fb)
    fprintf(f, "%s (not direct: %s)", col(c, C_YELLOW), fb);
  fprintf(f, "%s\n", col(c, C_RESET));
}

static void human_list(chat_client_t *c, const json_t *list, FILE *f) {
  size_t i;
  json_t *e;
  if (json_array_size(list) == 0)
    fprintf(f, " (none)");
  json_array_foreach(list, i, e) {
    const char *status = json_is_string(e) ? NULL : str(e, "status");
    fprintf(f, "%s %s%s%s", i ? "," : "",
            col(c, C_BOLD), json_is_string(e) ? json_string_value(e)
                                              : str(e, "user"),
            col(c, C_RESET));
    if (status)
      fprintf(f, " (%s)", status);
  }
  fputc('\n', f);
}

/* The confirmation of a command, for people. */
static void human_ok(chat_client_t *c, const json_t *ev, FILE *f) {
  const char *cmd = str(ev, "command"), *user = str(ev, "user");
  const char *group = str(ev, "group");
  if (strcmp(cmd, "add") == 0)
    fprintf(f, "contact request sent to %s\n", user);
  else if (strcmp(cmd, "accept") == 0)
    fprintf(f, "accepted %s\n", user);
  else if (strcmp(cmd, "decline") == 0)
    fprintf(f, "declined %s\n", user);
  else if (strcmp(cmd, "remove") == 0)
    fprintf(f, "removed %s\n", user);
  else if (strcmp(cmd, "status") == 0)
    fprintf(f, "status is now %s\n", str(ev, "status"));
  else if (strcmp(cmd, "group_create") == 0)
    fprintf(f, "created #%s\n", group);
  else if (strcmp(cmd, "group_leave") == 0)
    fprintf(f, "left #%s\n", group);
  else if (strcmp(cmd, "group_add") == 0)
    fprintf(f, "added %s to #%s\n", user, group);
  else if (strcmp(cmd, "query") == 0)
    fprintf(f, "talking to %s%s%s%s: lines without a / go there\n",
            col(c, C_BOLD), *group ? "#" : "", *group ? group : user,
            col(c, C_RESET));
  else if (strcmp(cmd, "reconnect") == 0)
    fprintf(f, "reconnecting now\n");
  else
    fprintf(f, "%s: done\n", cmd);
}

static void human_conversations(chat_client_t *c, const json_t *list,
                                FILE *f) {
  size_t i;
  json_t *e;
  fprintf(f, "conversations:");
  if (json_array_size(list) == 0)
    fprintf(f, " (none yet)");
  json_array_foreach(list, i, e) {
    const char *g = str(e, "group");
    fprintf(f, "%s %s%s%s%s", i ? "," : "", col(c, C_BOLD), *g ? "#" : "",
            *g ? g : str(e, "user"), col(c, C_RESET));
    if (json_is_true(json_object_get(e, "current")))
      fprintf(f, " (current)");
    else if (num(e, "unread") > 0)
      fprintf(f, " (%lld unread)", num(e, "unread"));
  }
  fputc('\n', f);
}

static void human_history(chat_client_t *c, const json_t *ev, FILE *f) {
  const json_t *list = json_object_get(ev, "messages");
  const char *g = str(ev, "group");
  size_t i;
  json_t *e;
  char ts[32];
  fprintf(f, "history of %s%s (%zu message%s):\n", *g ? "#" : "",
          *g ? g : str(ev, "user"), json_array_size(list),
          json_array_size(list) == 1 ? "" : "s");
  json_array_foreach(list, i, e) {
    stamp(ts, sizeof(ts), num(e, "ts"));
    fprintf(f, "  %s%s%s %s<%s>%s %s\n", col(c, C_DIM), ts, col(c, C_RESET),
            col(c, C_CYAN), str(e, "from"), col(c, C_RESET), str(e, "body"));
  }
}

static void human(chat_client_t *c, const json_t *ev) {
  FILE *f = stdout;
  const char *e = str(ev, "event");
  char ts[32];

  if (strcmp(e, "history") == 0) { /* each line has its own time */
    human_history(c, ev, f);
    return;
  }

  stamp(ts, sizeof(ts), strcmp(e, "message") == 0 ? num(ev, "ts") : 0);
  fprintf(f, "%s%s%s ", col(c, C_DIM), ts, col(c, C_RESET));
  if (strcmp(e, "message") == 0) {
    if (*str(ev, "group"))
      fprintf(f, "%s<%s@%s>%s %s", col(c, C_CYAN), str(ev, "from"),
              str(ev, "group"), col(c, C_RESET), str(ev, "body"));
    else
      fprintf(f, "%s<%s>%s %s", col(c, C_CYAN), str(ev, "from"),
              col(c, C_RESET), str(ev, "body"));
    if (json_is_true(json_object_get(ev, "offline"))) {
      /* Held by the server: the stamp above is when it was written. */
      fprintf(f, "%s  (%s, written at that time while you were offline)%s\n",
              col(c, C_DIM), str(ev, "via"), col(c, C_RESET));
    } else {
      /* A direct link is always TLS with the key the server vouched for. */
      const char *path = str(ev, "path");
      int direct = strcmp(str(ev, "via"), "direct") == 0;
      fprintf(f, "%s  (%s%s%s)%s\n", col(c, C_DIM),
              direct ? "direct, " : str(ev, "via"),
              direct && *path && strcmp(path, "dialed") != 0 ? path : "",
              direct ? (*path && strcmp(path, "dialed") != 0 ? ", encrypted"
                                                             : "encrypted")
                     : "",
              col(c, C_RESET));
    }
    if (c->interactive && !c->opts.no_bell)
      fputc('\a', f); /* the terminal's attention: a new message */
  } else if (strcmp(e, "sent") == 0) {
    human_sent(c, ev, f);
  } else if (strcmp(e, "receipt") == 0) {
    fprintf(f, "%s-> %s [%s] %s%s\n", col(c, C_GREEN), str(ev, "to"),
            short_id(str(ev, "msg_id")), str(ev, "state"), col(c, C_RESET));
  } else if (strcmp(e, "ready") == 0) {
    static int again; /* one process, one user: after a reconnect */
    if (again++) {
      fprintf(f, "%slogged in again%s\n", col(c, C_GREEN), col(c, C_RESET));
      return;
    }
    fprintf(f, "logged in as %s%s%s", col(c, C_BOLD), str(ev, "user"),
            col(c, C_RESET));
    if (num(ev, "p2p_port"))
      fprintf(f, ", direct connections on port %lld", num(ev, "p2p_port"));
    else
      fprintf(f, ", no direct connections");
    fprintf(f, "; /help lists the commands\n");
  } else if (strcmp(e, "presence") == 0) {
    fprintf(f, "%s%s is %s%s\n", col(c, C_DIM), str(ev, "user"),
            str(ev, "status"), col(c, C_RESET));
  } else if (strcmp(e, "contact_request") == 0) {
    fprintf(f, "%s%s%s wants to be your contact: /accept %s or /decline %s\n",
            col(c, C_BOLD), str(ev, "from"), col(c, C_RESET), str(ev, "from"),
            str(ev, "from"));
  } else if (strcmp(e, "contact_added") == 0) {
    fprintf(f, "%s is now a contact (%s)\n", str(ev, "user"),
            str(ev, "status"));
  } else if (strcmp(e, "contact_removed") == 0) {
    fprintf(f, "%s is no longer a contact\n", str(ev, "user"));
  } else if (strcmp(e, "contacts") == 0) {
    fprintf(f, "contacts:");
    human_list(c, json_object_get(ev, "contacts"), f);
  } else if (strcmp(e, "group_added") == 0) {
    fprintf(f, "%s added you to #%s\n", str(ev, "by"), str(ev, "group"));
  } else if (strcmp(e, "group_members") == 0) {
    fprintf(f, "#%s:", str(ev, "group"));
    human_list(c, json_object_get(ev, "members"), f);
  } else if (strcmp(e, "groups") == 0) {
    fprintf(f, "groups:");
    human_list(c, json_object_get(ev, "groups"), f);
  } else if (strcmp(e, "kicked") == 0) {
    fprintf(f, "%slogged out: %s%s\n", col(c, C_RED), str(ev, "reason"),
            col(c, C_RESET));
  } else if (strcmp(e, "error") == 0) {
    fprintf(f, "%serror %s", col(c, C_RED), str(ev, "code"));
    if (*str(ev, "command"))
      fprintf(f, " (/%s%s%s)", str(ev, "command"),
              *str(ev, "user") || *str(ev, "to") ? " " : "",
              *str(ev, "user") ? str(ev, "user") : str(ev, "to"));
    fprintf(f, ": %s%s\n", str(ev, "message"), col(c, C_RESET));
  } else if (strcmp(e, "ok") == 0) {
    human_ok(c, ev, f);
  } else if (strcmp(e, "queued") == 0) {
    fprintf(f, "%s-> %s%s [%s] queued: not connected; it goes out when the "
               "connection is back%s\n",
            col(c, C_YELLOW), *str(ev, "group") ? "#" : "",
            *str(ev, "group") ? str(ev, "group") : str(ev, "to"),
            short_id(str(ev, "msg_id")), col(c, C_RESET));
  } else if (strcmp(e, "reconnecting") == 0) {
    fprintf(f, "%sreconnecting in %.1f s (/reconnect to try now)%s\n",
            col(c, C_YELLOW), (double)num(ev, "in_ms") / 1000,
            col(c, C_RESET));
  } else if (strcmp(e, "conversations") == 0) {
    human_conversations(c, json_object_get(ev, "conversations"), f);
  } else if (strcmp(e, "disconnected") == 0) {
    fprintf(f, "%sdisconnected from the server (%s)%s\n",
            col(c, C_YELLOW), str(ev, "reason"), col(c, C_RESET));
  } else if (strcmp(e, "info") == 0) {
    fprintf(f, "%s\n", str(ev, "text"));
  } else {
    fprintf(f, "%s\n", e);
  }
}

void chat__out_print(void *ctx, const json_t *ev) {
  chat_client_uv_t *u = ctx;
  chat_client_t *c = &u->c;
  chat__input_hide();
  if (c->opts.json) {
    char *s = json_dumps(ev, JSON_COMPACT);
    if (s) {
      fputs(s, stdout);
      fputc('\n', stdout);
      free(s);
    }
  } else {
    human(c, ev);
  }
  chat__input_show();
  /* Scripts read this through a pipe: every event goes out now. */
  fflush(stdout);
}
