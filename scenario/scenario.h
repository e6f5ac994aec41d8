/* scenario.h -- conversation scripts: the parsed form of a .chat file and the
 * socket-free helpers chat-scenario is built from (parsing, variables, event
 * matching, event queues, line splitting, the transcript). Nothing declared
 * here starts a process or touches the loop; see proc.h and run.h for that.
 *
 * Errors: functions return 0 (or a count / an index) or a negative errno
 * code (-ENOMEM, -EINVAL, -ENOENT, -ENOSPC); each says which. */
#ifndef CHAT_SCENARIO_H
#define CHAT_SCENARIO_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

/* Participant 0 of every script is the server; clients follow in the order
 * in which the script first names them. */
#define CHAT_SCENARIO_SERVER 0
/* Default deadline of a step that waits, in seconds (see `timeout`). */
#define CHAT_SCENARIO_DEFAULT_WITHIN 15.0
/* Default quiet period of a `never` check without `within`. */
#define CHAT_SCENARIO_DEFAULT_NEVER 2.0
/* Longest deadline or pause a script may ask for, in seconds. */
#define CHAT_SCENARIO_MAX_SECONDS 3600.0
#define CHAT_SCENARIO_NAME_MAX 64
/* Most chat-server nodes one scenario runs (chat-scenario --nodes N); a
 * script names them n1 .. n8, as chat-server's --node does. */
#define CHAT_SCENARIO_MAX_NODES 8

/* ---- Variables ($server, $port, captures) ------------------------------ */

typedef struct chat_scenario_vars {
  size_t n, cap;
  char **names;  /* owned */
  char **values; /* owned */
} chat_scenario_vars_t;

void chat_scenario_vars_init(chat_scenario_vars_t *v);
void chat_scenario_vars_free(chat_scenario_vars_t *v);
/* Sets (copies) name = value, replacing an older value. 0 or -ENOMEM. */
int chat_scenario_vars_set(chat_scenario_vars_t *v, const char *name,
                           const char *value);
/* The value, borrowed until the next set/free, or NULL. */
const char *chat_scenario_vars_get(const chat_scenario_vars_t *v,
                                   const char *name);
/* Expands $name, ${name} and $$ (a literal $) in text into a new string
 * (*out, caller frees). A $ not followed by a letter, _ or { is literal.
 * Returns 0, -ENOENT for an undefined name (copied into bad, if given),
 * -EINVAL for an unterminated ${, or -ENOMEM. */
int chat_scenario_vars_expand(const chat_scenario_vars_t *v, const char *text,
                              char **out, char *bad, size_t badlen);

/* ---- The parsed script ------------------------------------------------- */

typedef enum chat_scenario_op {
  CHAT_SCENARIO_OP_EQ,       /* field=value  */
  CHAT_SCENARIO_OP_NE,       /* field!=value (also true when field is absent) */
  CHAT_SCENARIO_OP_CONTAINS, /* field~text   (string fields only) */
  CHAT_SCENARIO_OP_CAPTURE   /* field=>var   (present; value saved as $var) */
} chat_scenario_op_t;

typedef struct chat_scenario_cond {
  char *field;
  chat_scenario_op_t op;
  char *value; /* may hold $vars; for CAPTURE the variable name */
} chat_scenario_cond_t;

typedef enum chat_scenario_kind {
  CHAT_SCENARIO_SERVER_START,   /* argv: extra chat-server flags; every node */
  CHAT_SCENARIO_SERVER_RESTART, /* TERM (if running), start on the same port;
                                   every node, or the one in node */
  CHAT_SCENARIO_CLIENT,         /* start a client; argc 0 reuses the last flags */
  CHAT_SCENARIO_SAY,            /* text: one line for the client's stdin */
  CHAT_SCENARIO_EOF,            /* close the client's stdin */
  CHAT_SCENARIO_SEES,           /* event + conds, within */
  CHAT_SCENARIO_NEVER,          /* event + conds must not appear within */
  CHAT_SCENARIO_LOGS,           /* text: substring of a stderr line, within */
  CHAT_SCENARIO_EXITS,          /* exit_code or exit_signal, within */
  CHAT_SCENARIO_SIGNAL,         /* signum; TERM/KILL/INT then wait for exit */
  CHAT_SCENARIO_WAIT,           /* within: the pause */
} chat_scenario_kind_t;

typedef struct chat_scenario_step {
  chat_scenario_kind_t kind;
  int line;      /* 1-based line in the file */
  char *source;  /* the line as written, trimmed (for transcripts) */
  int who;       /* participant index */
  int node;      /* 1..CHAT_SCENARIO_MAX_NODES, else 0. A server step: the
                    node it is about (`server n2 ...`, `kill server n2`),
                    0 for every node. CLIENT: the node it starts on
                    (`node=n2`), 0 for the runner to choose */
  double within; /* seconds: deadline, quiet period or pause */
  char **argv;   /* program flags (SERVER_START, CLIENT), owned */
  size_t argc;
  char *user;     /* CLIENT: user=NAME, or NULL to keep (default: the name) */
  char *password; /* CLIENT: password=..., or NULL to keep */
  int nowait;     /* CLIENT: do not wait for the ready event */
  int failover;   /* CLIENT: --server lists every node, its own first */
  int next;       /* SEES: the first unconsumed event of that name must
                     match (`sees next`), instead of any later one */
  char *text;     /* SAY line, LOGS substring, SEES/NEVER event name */
  chat_scenario_cond_t *conds;
  size_t nconds;
  int exit_code;   /* EXITS: code, or -1 when exit_signal is set */
  int exit_signal; /* EXITS: signal number, or 0 */
  int signum;      /* SIGNAL */
} chat_scenario_step_t;

typedef struct chat_scenario_script {
  char *path;
  char **names; /* names[0] is "server" */
  size_t nnames;
  chat_scenario_step_t *steps;
  size_t nsteps;
  int max_node; /* the highest node any step names, or 0 */
} chat_scenario_script_t;

typedef struct chat_scenario_error {
  int line; /* 0 when the error belongs to no line */
  char text[256];
} chat_scenario_error_t;

/* Parses a script held in memory (text need not be NUL-terminated). path is
 * only used in messages. On success *out is a new script (free it with
 * chat_scenario_script_free). Returns 0, -EINVAL with err filled (line and a
 * message saying what is wrong), or -ENOMEM. err may be NULL. */
int chat_scenario_parse(const char *text, size_t len, const char *path,
                        chat_scenario_script_t **out,
                        chat_scenario_error_t *err);
/* Reads and parses a file (at most 1 MiB). Returns as chat_scenario_parse,
 * or -errno when the file cannot be read (err->line 0). */
int chat_scenario_parse_file(const char *path, chat_scenario_script_t **out,
                             chat_scenario_error_t *err);
void chat_scenario_script_free(chat_scenario_script_t *s);

/* Splits one line into words: whitespace separates, "..." quotes with \\, \"
 * and \n escapes, '...' quotes literally, quotes may sit inside a word
 * (body="a b"). Stops at a # that starts a word. *words is a NULL-terminated
 * array (free with chat_scenario_words_free). Returns the word count,
 * -EINVAL for an unterminated quote, or -ENOMEM. */
int chat_scenario_split_words(const char *line, char ***words);
void chat_scenario_words_free(char **words);

/* Signal names as scripts write them: "TERM", "SIGTERM", "9". Returns the
 * number or -EINVAL. */
int chat_scenario_signal_parse(const char *name);

/* Node names as scripts write them: "n1" .. "n8" (CHAT_SCENARIO_MAX_NODES).
 * Returns the number, or -EINVAL. */
int chat_scenario_node_parse(const char *name);

/* ---- Matching one event ------------------------------------------------ */

/* 1 when JSON value v equals the expectation text: a string byte for byte, a
 * number by value, true/false/null by name, an array or object by json_equal
 * with text parsed as JSON. 0 otherwise (also for v NULL). */
int chat_scenario_value_matches(const json_t *v, const char *text);
/* 1 when obj is an object whose "event" is event (or event is "*") and that
 * satisfies every condition. Values must already be expanded. */
int chat_scenario_event_matches(const json_t *obj, const char *event,
                                const chat_scenario_cond_t *conds,
                                size_t nconds);
/* Writes into buf why obj does not match (e.g. `body is "hi", not "ho"`),
 * or "" when it does. */
void chat_scenario_explain(const json_t *obj, const char *event,
                           const chat_scenario_cond_t *conds, size_t nconds,
                           char *buf, size_t len);
/* A field value as a variable: strings as they are, anything else as
 * compact JSON. New string (caller frees) or NULL. */
char *chat_scenario_value_text(const json_t *v);

/* ---- Per-participant queues of lines ---------------------------------- */

typedef struct chat_scenario_item {
  char *line;
  json_t *obj; /* the parsed object, or NULL when the line is not one */
  uint64_t ms; /* when it arrived, relative to the scenario start */
  int consumed;
} chat_scenario_item_t;

#define CHAT_SCENARIO_QUEUE_MAX 100000

typedef struct chat_scenario_queue {
  chat_scenario_item_t *items;
  size_t n, cap;
  size_t dropped; /* lines not kept because the queue was full */
} chat_scenario_queue_t;

void chat_scenario_queue_init(chat_scenario_queue_t *q);
/* Forgets every item (a restarted process starts a fresh queue). */
void chat_scenario_queue_clear(chat_scenario_queue_t *q);
#define chat_scenario_queue_free chat_scenario_queue_clear
/* Appends a copy of line; parse_json 1 parses it as a JSON object (obj stays
 * NULL if it is not one). Returns 0, -ENOSPC when the queue is full (the
 * line is counted in dropped), or -ENOMEM. */
int chat_scenario_queue_push(chat_scenario_queue_t *q, const char *line,
                             size_t len, uint64_t ms, int parse_json);
/* Index of the first unconsumed item matching event + conds, or -1. */
ssize_t chat_scenario_queue_find(const chat_scenario_queue_t *q,
                                 const char *event,
                                 const chat_scenario_cond_t *conds,
                                 size_t nconds);
/* Index of the first unconsumed line containing text, or -1. */
ssize_t chat_scenario_queue_find_text(const chat_scenario_queue_t *q,
                                      const char *text);

/* ---- Splitting a byte stream into lines ------------------------------- */

typedef struct chat_scenario_linebuf {
  char *buf;
  size_t len, cap, max; /* max: longest line kept; longer ones are cut */
  int cutting;          /* inside a line that was already cut */
} chat_scenario_linebuf_t;

/* on_line gets each line without its LF (and a CR before it); cut is 1 when
 * the line was longer than max and only its first max bytes are given.
 * Returning nonzero stops the feed and is returned from it. */
typedef int (*chat_scenario_line_cb)(void *ctx, const char *line, size_t len,
                                     int cut);

void chat_scenario_linebuf_init(chat_scenario_linebuf_t *lb, size_t max);
void chat_scenario_linebuf_free(chat_scenario_linebuf_t *lb);
/* Returns 0, the callback's nonzero value, or -ENOMEM. */
int chat_scenario_linebuf_feed(chat_scenario_linebuf_t *lb, const char *data,
                               size_t n, chat_scenario_line_cb cb, void *ctx);
/* At end of stream: delivers an unterminated last line, if any. */
int chat_scenario_linebuf_finish(chat_scenario_linebuf_t *lb,
                                 chat_scenario_line_cb cb, void *ctx);

/* ---- The transcript ---------------------------------------------------- */

typedef enum chat_scenario_tkind {
  CHAT_SCENARIO_T_STEP,   /* "##" a script line being run */
  CHAT_SCENARIO_T_SPAWN,  /* "$"  a command line started */
  CHAT_SCENARIO_T_STDIN,  /* "<"  a line written to a participant */
  CHAT_SCENARIO_T_STDOUT, /* ">"  a line it printed on stdout */
  CHAT_SCENARIO_T_STDERR, /* "!"  a line it printed on stderr */
  CHAT_SCENARIO_T_NOTE    /* "--" something the runner did or saw */
} chat_scenario_tkind_t;

typedef struct chat_scenario_entry {
  uint64_t ms;
  chat_scenario_tkind_t kind;
  char who[CHAT_SCENARIO_NAME_MAX];
  char *text;
} chat_scenario_entry_t;

/* Bounded: past max_bytes of text, entries are counted but not kept. */
typedef struct chat_scenario_transcript {
  chat_scenario_entry_t *entries;
  size_t n, cap;
  size_t bytes, max_bytes, dropped;
  FILE *live; /* when set, every entry is also printed here as it comes */
} chat_scenario_transcript_t;

void chat_scenario_transcript_init(chat_scenario_transcript_t *t,
                                   size_t max_bytes);
void chat_scenario_transcript_free(chat_scenario_transcript_t *t);
/* Records one entry (text copied, a trailing newline dropped). Returns 0,
 * -ENOSPC when it was dropped for space, or -ENOMEM. */
int chat_scenario_transcript_add(chat_scenario_transcript_t *t, uint64_t ms,
                                 const char *who, chat_scenario_tkind_t kind,
                                 const char *text);
/* Formats one entry as a line: "[  1234 ms] alice   > {...}". */
void chat_scenario_entry_print(const chat_scenario_entry_t *e, FILE *f);
void chat_scenario_transcript_print(const chat_scenario_transcript_t *t,
                                    FILE *f);

/* events.c: 0 when chat-client --json prints event (or "*": any) and,
 * when field is not NULL, that event may carry field; else -1 with a
 * reason naming what is known in why (len bytes). */
int chat_scenario_event_check(const char *event, const char *field, char *why,
                              size_t len);

#endif /* CHAT_SCENARIO_H */
