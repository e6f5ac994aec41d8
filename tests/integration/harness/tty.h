/* tty.h -- a program on a real terminal: a tmux server of its own (one
 * socket per th_tty_t) with one window of a fixed size, keys sent to it and
 * the screen read back. For the interactive chat-client: line editing,
 * redraws, job control.
 *
 * tmux runs with a UTF-8 locale (C.UTF-8) so that what is typed and shown
 * is UTF-8 whatever the test's environment says. A failed wait fails the
 * test and prints the screen. */
#ifndef TH_TTY_H
#define TH_TTY_H

typedef struct th_tty th_tty_t;

/* 1 when tmux can be run here (tests skip otherwise). */
int th_tty_available(void);
/* Starts `sh -c command` in a cols x rows window. Fails the test when tmux
 * does not start. */
th_tty_t *th_tty_start(int cols, int rows, const char *command);
/* Sends tmux key names (NULL-terminated list): "Enter", "BSpace", "C-a",
 * "Left", "Escape", ... */
void th_tty_keys(th_tty_t *t, ...);
/* Types text literally (UTF-8 as it is). */
void th_tty_type(th_tty_t *t, const char *text);
/* The screen's text (caller frees), trailing blanks of each line kept. */
char *th_tty_screen(th_tty_t *t);
/* Polls the screen until it contains needle; returns it (caller frees) or
 * fails the test at the deadline. */
char *th_tty_wait(th_tty_t *t, const char *needle, int timeout_ms);
/* Polls until the last non-blank line of the screen, trailing blanks cut,
 * is exactly line; fails the test at the deadline. */
void th_tty_wait_last(th_tty_t *t, const char *line, int timeout_ms);
/* The last non-blank line of text, trailing blanks cut (text is modified). */
const char *th_tty_last_line(char *text);
/* The first line of text containing needle, trailing blanks cut (text is
 * modified), or "" when there is none. */
const char *th_tty_line_with(char *text, const char *needle);
/* Kills the tmux server (and so what runs in it) and frees t. NULL is
 * fine. */
void th_tty_free(th_tty_t *t);

#endif /* TH_TTY_H */
