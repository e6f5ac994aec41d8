/* client_proc.h -- a chat-client under test: started with --json and
 * CHAT_PASSWORD, fed command lines on stdin, and read as a list of JSON
 * events (every line of its stdout must be one). Waits have deadlines; a
 * failed wait fails the test and prints the client's transcript (stdout and
 * stderr) and the server logs. */
#ifndef TH_CLIENT_PROC_H
#define TH_CLIENT_PROC_H

#include <jansson.h>

#include "harness.h"

#define TH_CLI_PASSWORD "password-1"

typedef struct th_cli th_cli_t;

/* Starts CHAT_BIN_DIR/chat-client --json --server 127.0.0.1:PORT --user USER
 * --register, plus the NULL-terminated extra args (may be NULL). Does not
 * wait for anything. */
th_cli_t *th_cli_start(int port, const char *user, const char *const extra[]);
/* The same with more environment ("NAME=VALUE", NULL-terminated; may be
 * NULL), e.g. its own XDG_STATE_HOME. */
th_cli_t *th_cli_start_env(int port, const char *user,
                           const char *const extra[],
                           const char *const more_env[]);
/* The same with --server servers as given (a HOST:PORT list). */
th_cli_t *th_cli_start_at(const char *servers, const char *user,
                          const char *const extra[],
                          const char *const more_env[]);
/* The same, waiting for its ready event (returns the client). */
th_cli_t *th_cli_ready(int port, const char *user, const char *const extra[]);
th_proc_t *th_cli_proc(th_cli_t *c);
/* Writes one command line. Fails the test when the client is gone. */
void th_cli_cmd(th_cli_t *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Waits for an event named event whose fields match the NULL-terminated
 * KEY, VALUE string pairs (a value matches a string field exactly, or the
 * decimal form of a number, or "true"/"false"). Events are searched in the
 * order they came, skipping those an earlier wait returned. Returns it
 * (borrowed, lives as long as c) or fails the test at the deadline. */
json_t *th_cli_wait(th_cli_t *c, int timeout_ms, const char *event, ...);
/* How many events received so far match (whether returned or not). */
int th_cli_count(th_cli_t *c, const char *event, ...);

/* Makes the logged-in clients a (named an) and b (bn) contacts: a asks, b
 * accepts, and both see contact_added (waits of TH_DEADLINE_MS each). */
void th_cli_make_contacts(th_cli_t *a, const char *an, th_cli_t *b,
                          const char *bn);

/* Closes stdin and waits for the exit; returns the exit code. */
int th_cli_finish(th_cli_t *c, int timeout_ms);
/* Prints the transcript to stderr. */
void th_cli_dump(th_cli_t *c);
/* Kills (if running) and frees. NULL is fine. */
void th_cli_free(th_cli_t *c);

#endif /* TH_CLIENT_PROC_H */
