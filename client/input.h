/* input.h -- commands from stdin (input.c): a script (pipe or file: lines
 * as they come, /wait pauses, end of input drains and exits) or, on a
 * terminal, the interactive prompt (libedit). Part of the real client
 * (client_uv.h); the core never calls it. */
#ifndef CHAT_INPUT_H
#define CHAT_INPUT_H

#include <stddef.h>

#include "client_uv.h"

/* Starts reading commands (or, with --listen-only, nothing; with --to, runs
 * the one message). 0 or a negative error. */
int chat__input_start(chat_client_uv_t *u);
/* Stops reading and gives the terminal back. Idempotent. */
void chat__input_stop(chat_client_uv_t *u);
/* Around any output while the prompt is shown (interactive only). */
void chat__input_hide(void);
void chat__input_show(void);
/* The prompt shows the current conversation and unread count: redraw it. */
void chat__input_prompt_changed(chat_client_t *c);
/* Asks for the password on the terminal without echo. 0 or -errno. */
int chat__input_password(char *buf, size_t len);

#endif /* CHAT_INPUT_H */
