/* output.h -- the real client's events on stdout (output.c): one JSON
 * object per line with --json, else a line for people (timestamped, with
 * colours on a terminal), printed above the prompt. */
#ifndef CHAT_OUTPUT_H
#define CHAT_OUTPUT_H

#include <jansson.h>

/* The env's event: ctx is the chat_client_uv_t, ev is borrowed. */
void chat__out_print(void *ctx, const json_t *ev);

#endif /* CHAT_OUTPUT_H */
