/* hist.h -- history kept across restarts in the user's state directory
 * (hist.c; the files are described in docs/CLIENT.md). Every function
 * accepts a NULL history and then does nothing (returns nothing kept). */
#ifndef CHAT_HIST_H
#define CHAT_HIST_H

#include <histedit.h>
#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

typedef struct chat_hist chat_hist_t;

/* Opens (creating it 0700) $XDG_STATE_HOME/chat-client/USER/ or
 * ~/.local/state/chat-client/USER/. 0, -ENOENT (no home), -ENOMEM or the
 * mkdir error (said on stderr); *out is NULL then. */
int chat_hist_open(const char *user, chat_hist_t **out);
void chat_hist_close(chat_hist_t *h);
/* One message shown or sent in conversation conv (a user or a group). */
void chat_hist_message(chat_hist_t *h, const char *conv, int is_group,
                       const char *from, const char *body, size_t body_len,
                       int64_t ts);
/* The last n messages of conv, oldest first, as a new JSON array of
 * {"ts","from","body"}; empty when there are none. */
json_t *chat_hist_read(chat_hist_t *h, const char *conv, int is_group, int n);
/* A line typed at the prompt; the kept ones into libedit's history. */
void chat_hist_input_add(chat_hist_t *h, const char *line);
void chat_hist_input_load(chat_hist_t *h, History *hist);

#endif /* CHAT_HIST_H */
