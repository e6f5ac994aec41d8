/* prompt.h -- input.c's way to the interactive prompt (prompt.c). */
#ifndef CHAT_PROMPT_H
#define CHAT_PROMPT_H

#include "client_uv.h"

/* Line editing on the terminal from now on. 0 or -ENOMEM. */
int chat__prompt_start(chat_client_uv_t *u);
/* Gives the terminal back. Idempotent. */
void chat__prompt_stop(void);

#endif /* CHAT_PROMPT_H */
