/* conv.h -- conversations: where a line without a leading '/' goes, how many
 * messages wait unread in the other conversations, and the group names seen
 * (for completion). Socket-free and clock-free.
 *
 * The current conversation is the one chosen with /query; until the user
 * chooses one it follows what CLI.md calls "the last conversation": the
 * last one the user sent to, or the first one that wrote. */
#ifndef CHAT_CONV_H
#define CHAT_CONV_H

#include <stddef.h>

#include "chat_protocol.h"

typedef struct chat_conv {
  char name[CHAT_MAX_NAME + 1];
  int is_group;
  unsigned unread;
} chat_conv_t;

typedef struct chat_convs {
  char cur[CHAT_MAX_NAME + 1]; /* "" when there is none yet */
  int cur_is_group;
  int pinned;                  /* chosen with /query */
  chat_conv_t *v;              /* every conversation seen, in first-seen order */
  size_t n, cap;
  char (*groups)[CHAT_MAX_NAME + 1]; /* group names known */
  size_t ngroups, groups_cap;
} chat_convs_t;

void chat_convs_init(chat_convs_t *cv);
void chat_convs_free(chat_convs_t *cv);
/* /query: name becomes the current conversation and its unread count 0.
 * Returns 0 or -ENOMEM. */
int chat_convs_query(chat_convs_t *cv, const char *name, int is_group);
/* The user sent to name: it is the current conversation unless one was
 * chosen with /query. */
void chat_convs_sent(chat_convs_t *cv, const char *name, int is_group);
/* A message arrived in name's conversation. Returns 1 when it counts as
 * unread (it is not the current conversation), else 0. */
int chat_convs_received(chat_convs_t *cv, const char *name, int is_group);
/* Unread messages in every conversation. */
unsigned chat_convs_unread(const chat_convs_t *cv);
/* A group we belong to (known from /groups, an invitation, a message). */
void chat_convs_group_add(chat_convs_t *cv, const char *group);
void chat_convs_group_remove(chat_convs_t *cv, const char *group);

#endif /* CHAT_CONV_H */
