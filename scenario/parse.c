/* parse.c -- turning a .chat file into steps. The parser only builds the
 * script and reports the first error with its line; it runs nothing. */
#include <ctype.h>
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "chat_protocol.h"
#include "scenario.h"

typedef struct parser {
  chat_scenario_script_t *s;
  chat_scenario_error_t *err;
  int line;
  double timeout;            /* default deadline, changed by `timeout S` */
  int server_started;
  chat_scenario_vars_t defined; /* names usable as $vars at this point */
} parser_t;

/* Sets the error (first one wins) and returns -EINVAL. */
static int fail(parser_t *p, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static int fail(parser_t *p, const char *fmt, ...) {
  if (p->err != NULL) {
    va_list ap;
    va_start(ap, fmt);
    p->err->line = p->line;
    vsnprintf(p->err->text, sizeof(p->err->text), fmt, ap);
    va_end(ap);
  }
  return -EINVAL;
}

static const char *const reserved[] = {"server", "client", "kill", "stop",
                                       "cont",   "wait",   "timeout", NULL};

/* Participant names follow the protocol's user-name rule, so that the
 * default user name (the participant's name) is always a valid one. */
static int valid_name(const char *n) {
  if (!chat_name_valid(n))
    return 0;
  for (size_t i = 0; reserved[i] != NULL; i++)
    if (strcmp(n, reserved[i]) == 0)
      return 0;
  return 1;
}

static int find_name(const chat_scenario_script_t *s, const char *name) {
  for (size_t i = 0; i < s->nnames; i++)
    if (strcmp(s->names[i], name) == 0)
      return (int)i;
  return -1;
}

static int add_name(chat_scenario_script_t *s, const char *name) {
  char **names = realloc(s->names, (s->nnames + 1) * sizeof(*names));
  if (names == NULL)
    return -ENOMEM;
  s->names = names;
  if ((names[s->nnames] = strdup(name)) == NULL)
    return -ENOMEM;
  return (int)s->nnames++;
}

/* A participant named by a step that needs it to exist already. */
static int known_client(parser_t *p, const char *name) {
  int who = find_name(p->s, name);
  if (who == CHAT_SCENARIO_SERVER)
    return fail(p, "the server cannot do that");
  if (who < 0)
    return fail(p, "unknown participant '%s' (start it first with `client %s`)",
                name, name);
  return who;
}

/* A node name where the grammar allows one (n1 .. n8); remembered as the
 * script's highest, which the run checks against --nodes. */
static int node_word(parser_t *p, const char *w, int *node) {
  int k = chat_scenario_node_parse(w);
  if (k < 0)
    return fail(p, "'%s' is not a node (n1 to n%d)", w,
                CHAT_SCENARIO_MAX_NODES);
  *node = k;
  if (k > p->s->max_node)
    p->s->max_node = k;
  return 0;
}

/* A word after `server` that is meant as a node: 'n' and a digit, so that
 * n9 or n12 get told the range instead of "unknown command". */
static int looks_like_node(const char *w) {
  return w[0] == 'n' && isdigit((unsigned char)w[1]);
}

static int parse_seconds(parser_t *p, const char *w, double *out) {
  char *end;
  double v = strtod(w, &end);
  if (end != w && *end == 's')
    end++;
  if (end == w || *end != '\0' || !(v > 0) || v > CHAT_SCENARIO_MAX_SECONDS)
    return fail(p, "'%s' is not a number of seconds (0 < S <= %.0f)", w,
                CHAT_SCENARIO_MAX_SECONDS);
  *out = v;
  return 0;
}

/* Checks that every $var in text is defined at this point of the script. */
static int check_vars(parser_t *p, const char *text) {
  char bad[64], *out;
  int rc = chat_scenario_vars_expand(&p->defined, text, &out, bad, sizeof(bad));
  if (rc == 0) {
    free(out);
    return 0;
  }
  if (rc == -ENOENT)
    return fail(p, "unknown variable $%s (write $$ for a literal $)", bad);
  if (rc == -EINVAL)
    return fail(p, "unterminated ${ in '%s'", text);
  return rc;
}

/* Takes "within S" off the end of words[*n], if present. */
static int take_within(parser_t *p, char **w, int *n, double *within) {
  if (*n >= 2 && strcmp(w[*n - 2], "within") == 0) {
    int rc = parse_seconds(p, w[*n - 1], within);
    *n -= 2;
    return rc;
  }
  if (*n >= 1 && strcmp(w[*n - 1], "within") == 0)
    return fail(p, "`within` needs a number of seconds");
  return 0;
}

static int copy_argv(chat_scenario_step_t *st, char **w, int n) {
  st->argv = calloc((size_t)n + 1, sizeof(char *));
  if (st->argv == NULL)
    return -ENOMEM;
  for (int i = 0; i < n; i++)
    if ((st->argv[st->argc++] = strdup(w[i])) == NULL)
      return -ENOMEM;
  return 0;
}

static int parse_cond(parser_t *p, const char *w, chat_scenario_cond_t *c) {
  size_t f = 0;
  while (isalnum((unsigned char)w[f]) || w[f] == '_' || w[f] == '.' ||
         w[f] == '-')
    f++;
  const char *op = w + f, *value;
  if (f == 0)
    goto bad;
  if (strncmp(op, "=>", 2) == 0) {
    c->op = CHAT_SCENARIO_OP_CAPTURE;
    value = op + 2;
    if (*value == '$')
      value++;
    if (!(isalpha((unsigned char)*value) || *value == '_'))
      return fail(p, "capture '%s' needs a variable name after =>", w);
    for (const char *v = value; *v; v++)
      if (!(isalnum((unsigned char)*v) || *v == '_'))
        return fail(p, "capture '%s' needs a variable name after =>", w);
    int rc = chat_scenario_vars_set(&p->defined, value, "");
    if (rc != 0)
      return rc;
  } else if (strncmp(op, "!=", 2) == 0) {
    c->op = CHAT_SCENARIO_OP_NE;
    value = op + 2;
  } else if (*op == '=') {
    c->op = CHAT_SCENARIO_OP_EQ;
    value = op + 1;
  } else if (*op == '~') {
    c->op = CHAT_SCENARIO_OP_CONTAINS;
    value = op + 1;
  } else {
    goto bad;
  }
  if (c->op != CHAT_SCENARIO_OP_CAPTURE) {
    int rc = check_vars(p, value);
    if (rc != 0)
      return rc;
  }
  c->field = strndup(w, f);
  c->value = strdup(value);
  return c->field != NULL && c->value != NULL ? 0 : -ENOMEM;
bad:
  return fail(p, "expected field=value (or !=, ~, =>), got '%s'", w);
}

/* NAME sees [next] EVENT [field=value...] [within S], NAME never ... */
static int parse_expect(parser_t *p, chat_scenario_step_t *st, char **w,
                        int n) {
  int rc = take_within(p, w, &n, &st->within);
  if (rc != 0)
    return rc;
  int first = 2;
  if (n > 3 && st->kind == CHAT_SCENARIO_SEES && strcmp(w[2], "next") == 0) {
    st->next = 1;
    first = 3;
  }
  if (n <= first)
    return fail(p, "`%s` needs an event name (or *)", w[1]);
  if ((st->text = strdup(w[first])) == NULL)
    return -ENOMEM;
  if (n > first + 1 &&
      (st->conds = calloc((size_t)(n - first - 1), sizeof(*st->conds))) ==
          NULL)
    return -ENOMEM;
  for (int i = first + 1; i < n; i++) {
    if ((rc = parse_cond(p, w[i], &st->conds[st->nconds])) != 0)
      return rc;
    st->nconds++;
  }
  return 0;
}

/* client NAME [user=U] [password=P] [node=NODE] [nowait] [failover]
 *        [chat-client flags...] */
static int parse_client(parser_t *p, chat_scenario_step_t *st, char **w,
                        int n) {
  if (!p->server_started)
    return fail(p, "`client` before `server start`");
  if (n < 2)
    return fail(p, "`client` needs a name");
  int who = find_name(p->s, w[1]);
  if (who == CHAT_SCENARIO_SERVER || (who < 0 && !valid_name(w[1])))
    return fail(p, "'%s' is not a usable participant name (lower-case "
                   "letters, digits, _ . -; not a command word)", w[1]);
  if (who < 0 && (who = add_name(p->s, w[1])) < 0)
    return who;
  st->kind = CHAT_SCENARIO_CLIENT;
  st->who = who;
  st->within = p->timeout;
  if ((st->argv = calloc((size_t)n, sizeof(char *))) == NULL)
    return -ENOMEM;
  for (int i = 2; i < n; i++) {
    char **slot = NULL;
    if (strncmp(w[i], "user=", 5) == 0)
      slot = &st->user;
    else if (strncmp(w[i], "password=", 9) == 0)
      slot = &st->password;
    if (slot != NULL) {
      free(*slot);
      if ((*slot = strdup(strchr(w[i], '=') + 1)) == NULL)
        return -ENOMEM;
      continue;
    }
    if (strcmp(w[i], "nowait") == 0) {
      st->nowait = 1;
      continue;
    }
    if (strcmp(w[i], "failover") == 0) {
      st->failover = 1;
      continue;
    }
    if (strncmp(w[i], "node=", 5) == 0) {
      int rc = node_word(p, w[i] + 5, &st->node);
      if (rc != 0)
        return rc;
      continue;
    }
    int rc = check_vars(p, w[i]);
    if (rc != 0)
      return rc;
    if ((st->argv[st->argc++] = strdup(w[i])) == NULL)
      return -ENOMEM;
  }
  return 0;
}

static int parse_server(parser_t *p, chat_scenario_step_t *st, char **w,
                        int n) {
  st->who = CHAT_SCENARIO_SERVER;
  st->within = p->timeout;
  if (n >= 2 && strcmp(w[1], "start") == 0) {
    /* Clients are given every node's address, so all of them listen
     * before any client starts. */
    if (st->node != 0)
      return fail(p, "`server start` starts every node; name a node to "
                     "restart, kill, stop, cont or watch it");
    if (p->server_started)
      return fail(p, "the server was already started (use `server restart`)");
    for (int i = 2; i < n; i++) {
      int rc = check_vars(p, w[i]);
      if (rc != 0)
        return rc;
    }
    p->server_started = 1;
    st->kind = CHAT_SCENARIO_SERVER_START;
    const char *names[] = {"server", "host", "port"};
    for (size_t i = 0; i < 3; i++) {
      int rc = chat_scenario_vars_set(&p->defined, names[i], "");
      if (rc != 0)
        return rc;
    }
    return copy_argv(st, w + 2, n - 2);
  }
  if (!p->server_started)
    return fail(p, "`%s` before `server start`", w[0]);
  if (n == 2 && strcmp(w[1], "restart") == 0) {
    st->kind = CHAT_SCENARIO_SERVER_RESTART;
    return 0;
  }
  return fail(p, "expected `server start [FLAGS]`, `server [NODE] restart`, "
                 "`server [NODE] logs TEXT` or `server [NODE] exits CODE`");
}

static int parse_signal(parser_t *p, chat_scenario_step_t *st, char **w,
                        int n) {
  int i = 1;
  st->kind = CHAT_SCENARIO_SIGNAL;
  st->within = p->timeout;
  if (strcmp(w[0], "stop") == 0 || strcmp(w[0], "cont") == 0) {
    st->signum = w[0][0] == 's' ? SIGSTOP : SIGCONT;
  } else {
    st->signum = SIGTERM;
    if (n > 2 && w[1][0] == '-') {
      if ((st->signum = chat_scenario_signal_parse(w[1] + 1)) < 0)
        return fail(p, "unknown signal '%s'", w[1]);
      i = 2;
    }
  }
  if (n > i && strcmp(w[i], "server") == 0 && n <= i + 2) {
    if (!p->server_started)
      return fail(p, "`%s server` before `server start`", w[0]);
    st->who = CHAT_SCENARIO_SERVER;
    return n == i + 2 ? node_word(p, w[i + 1], &st->node) : 0;
  }
  if (n != i + 1)
    return fail(p, "expected `%s NAME` or `%s server [NODE]`", w[0], w[0]);
  return (st->who = known_client(p, w[i])) < 0 ? st->who : 0;
}

/* NAME VERB ... for a participant (the server only logs and exits). */
static int parse_participant(parser_t *p, chat_scenario_step_t *st, char **w,
                             int n) {
  int is_server = strcmp(w[0], "server") == 0;
  if (n < 2)
    return fail(p, "unknown command '%s'", w[0]);
  const char *verb = w[1];
  int known = strcmp(verb, "sees") == 0 || strcmp(verb, "never") == 0 ||
              strcmp(verb, "logs") == 0 || strcmp(verb, "exits") == 0 ||
              (!is_server && strcmp(verb, "eof") == 0);
  if (is_server && !known)
    return parse_server(p, st, w, n);
  if (!known)
    return fail(p, "unknown command '%s %s' (a line for a client's stdin is "
                   "written `%s: TEXT`)", w[0], verb, w[0]);
  if (is_server) {
    if (!p->server_started)
      return fail(p, "`server %s` before `server start`", verb);
    st->who = CHAT_SCENARIO_SERVER;
  } else if ((st->who = known_client(p, w[0])) < 0) {
    return st->who;
  }
  st->within = p->timeout;
  int rc;
  if (strcmp(verb, "sees") == 0 || strcmp(verb, "never") == 0) {
    if (is_server)
      return fail(p, "the server prints no events; use `server logs TEXT`");
    st->kind = verb[0] == 's' ? CHAT_SCENARIO_SEES : CHAT_SCENARIO_NEVER;
    if (st->kind == CHAT_SCENARIO_NEVER)
      st->within = CHAT_SCENARIO_DEFAULT_NEVER;
    return parse_expect(p, st, w, n);
  }
  if (strcmp(verb, "logs") == 0) {
    st->kind = CHAT_SCENARIO_LOGS;
    if ((rc = take_within(p, w, &n, &st->within)) != 0)
      return rc;
    if (n != 3)
      return fail(p, "expected `%s logs TEXT` (quote TEXT with spaces)", w[0]);
    if ((rc = check_vars(p, w[2])) != 0)
      return rc;
    return (st->text = strdup(w[2])) != NULL ? 0 : -ENOMEM;
  }
  if (strcmp(verb, "exits") == 0) {
    st->kind = CHAT_SCENARIO_EXITS;
    if ((rc = take_within(p, w, &n, &st->within)) != 0)
      return rc;
    if (n != 3)
      return fail(p, "expected `%s exits CODE|SIGNAL [within S]`", w[0]);
    char *end;
    long code = strtol(w[2], &end, 10);
    st->exit_code = -1;
    if (isdigit((unsigned char)w[2][0]) && *end == '\0' && code <= 255)
      st->exit_code = (int)code;
    else if ((st->exit_signal = chat_scenario_signal_parse(w[2])) < 0)
      return fail(p, "'%s' is neither an exit code (0-255) nor a signal",
                  w[2]);
    return 0;
  }
  st->kind = CHAT_SCENARIO_EOF; /* verb is "eof" */
  return n == 2 ? 0 : fail(p, "expected `%s eof`", w[0]);
}

/* "alice: /msg bob hi" -- everything after the colon goes to stdin as is. */
static int parse_say(parser_t *p, chat_scenario_step_t *st, const char *line,
                     const char *colon) {
  char name[CHAT_SCENARIO_NAME_MAX];
  size_t len = (size_t)(colon - line);
  if (len >= sizeof(name))
    return fail(p, "participant name too long");
  memcpy(name, line, len);
  name[len] = '\0';
  if ((st->who = known_client(p, name)) < 0)
    return st->who;
  const char *text = colon + 1;
  while (*text == ' ' || *text == '\t')
    text++;
  /* Typing the bare word would send it as a message: surely not meant. */
  if (strcmp(text, "eof") == 0)
    return fail(p, "`%s: eof` would type the word; write `%s eof` to close "
                   "stdin (or `%s: /msg USER eof` to send it)", name, name,
                name);
  int rc = check_vars(p, text);
  if (rc != 0)
    return rc;
  st->kind = CHAT_SCENARIO_SAY;
  return (st->text = strdup(text)) != NULL ? 0 : -ENOMEM;
}

static int parse_line(parser_t *p, char *line) {
  /* Trim; CR from Windows editors included. */
  while (isspace((unsigned char)*line))
    line++;
  size_t len = strlen(line);
  while (len > 0 && isspace((unsigned char)line[len - 1]))
    line[--len] = '\0';
  if (len == 0 || line[0] == '#')
    return 0;

  chat_scenario_script_t *s = p->s;
  chat_scenario_step_t *steps =
      realloc(s->steps, (s->nsteps + 1) * sizeof(*steps));
  if (steps == NULL)
    return -ENOMEM;
  s->steps = steps;
  chat_scenario_step_t *st = &steps[s->nsteps++];
  memset(st, 0, sizeof(*st));
  st->line = p->line;
  st->exit_code = -1;
  if ((st->source = strdup(line)) == NULL)
    return -ENOMEM;

  /* A first word ending in ':' makes the line something a client types. */
  const char *sp = line + strcspn(line, " \t");
  if (sp > line && sp[-1] == ':' && memchr(line, '"', (size_t)(sp - line)) ==
                                        NULL)
    return parse_say(p, st, line, sp - 1);

  char **w;
  int n = chat_scenario_split_words(line, &w), rc;
  if (n == -EINVAL)
    return fail(p, "unterminated quote");
  if (n < 0)
    return n;
  if (n == 0) {
    s->nsteps--;
    free(st->source);
    chat_scenario_words_free(w);
    return 0;
  }
  char **all = w; /* what words_free gets back */
  if (strcmp(w[0], "server") == 0 && n >= 2 && looks_like_node(w[1])) {
    /* `server NODE VERB ...` is `server VERB ...` about one node: the node
     * word is swapped to the front and skipped, so every server line
     * below reads as it does without one. */
    if ((rc = node_word(p, w[1], &st->node)) != 0) {
      chat_scenario_words_free(all);
      return rc;
    }
    char *node = w[1];
    w[1] = w[0];
    w[0] = node;
    w++;
    n--;
  }
  if (strcmp(w[0], "server") == 0 &&
      (n < 2 || strcmp(w[1], "start") == 0 || strcmp(w[1], "restart") == 0))
    rc = parse_server(p, st, w, n);
  else if (strcmp(w[0], "client") == 0)
    rc = parse_client(p, st, w, n);
  else if (strcmp(w[0], "kill") == 0 || strcmp(w[0], "stop") == 0 ||
           strcmp(w[0], "cont") == 0)
    rc = parse_signal(p, st, w, n);
  else if (strcmp(w[0], "wait") == 0 || strcmp(w[0], "timeout") == 0) {
    if (n != 2)
      rc = fail(p, "expected `%s SECONDS`", w[0]);
    else if ((rc = parse_seconds(p, w[1], &st->within)) == 0 &&
             w[0][0] == 't') {
      p->timeout = st->within; /* a setting, not a step */
      s->nsteps--;
      free(st->source);
    }
    st->kind = CHAT_SCENARIO_WAIT;
  } else
    rc = parse_participant(p, st, w, n);
  chat_scenario_words_free(all);
  return rc;
}

int chat_scenario_parse(const char *text, size_t len, const char *path,
                        chat_scenario_script_t **out,
                        chat_scenario_error_t *err) {
  parser_t p;
  memset(&p, 0, sizeof(p));
  p.err = err;
  p.timeout = CHAT_SCENARIO_DEFAULT_WITHIN;
  chat_scenario_vars_init(&p.defined);
  if (err != NULL)
    memset(err, 0, sizeof(*err));
  int rc = -ENOMEM;
  char *copy = NULL;
  if ((p.s = calloc(1, sizeof(*p.s))) == NULL)
    goto done;
  if ((p.s->path = strdup(path ? path : "-")) == NULL ||
      add_name(p.s, "server") < 0 ||
      chat_scenario_vars_set(&p.defined, "dir", "") != 0)
    goto done;
  if (memchr(text, '\0', len) != NULL) {
    rc = fail(&p, "the file holds a NUL byte");
    goto done;
  }
  if ((copy = malloc(len + 1)) == NULL)
    goto done;
  memcpy(copy, text, len);
  copy[len] = '\0';
  rc = 0;
  for (char *line = copy, *next; rc == 0 && line != NULL; line = next) {
    next = strchr(line, '\n');
    if (next != NULL)
      *next++ = '\0';
    p.line++;
    rc = parse_line(&p, line);
  }
  if (rc == 0 && p.s->nsteps == 0) {
    p.line = 0;
    rc = fail(&p, "the script has no steps");
  }
done:
  free(copy);
  chat_scenario_vars_free(&p.defined);
  if (rc != 0) {
    if (rc == -ENOMEM && err != NULL && err->text[0] == '\0')
      snprintf(err->text, sizeof(err->text), "out of memory");
    chat_scenario_script_free(p.s);
    return rc;
  }
  *out = p.s;
  return 0;
}
