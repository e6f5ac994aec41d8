/* conv.c -- conversations: the current one, unread counts, group names. */
#include "conv.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void chat_convs_init(chat_convs_t *cv) { memset(cv, 0, sizeof(*cv)); }

void chat_convs_free(chat_convs_t *cv) {
  free(cv->v);
  free(cv->groups);
  memset(cv, 0, sizeof(*cv));
}

static chat_conv_t *find(chat_convs_t *cv, const char *name, int is_group,
                         int create) {
  for (size_t i = 0; i < cv->n; i++)
    if (cv->v[i].is_group == is_group && strcmp(cv->v[i].name, name) == 0)
      return &cv->v[i];
  if (!create)
    return NULL;
  if (cv->n == cv->cap) {
    size_t cap = cv->cap ? 2 * cv->cap : 8;
    chat_conv_t *v = realloc(cv->v, cap * sizeof(*v));
    if (!v)
      return NULL;
    cv->v = v;
    cv->cap = cap;
  }
  memset(&cv->v[cv->n], 0, sizeof(cv->v[0]));
  snprintf(cv->v[cv->n].name, sizeof(cv->v[0].name), "%s", name);
  cv->v[cv->n].is_group = is_group;
  return &cv->v[cv->n++];
}

static void set_cur(chat_convs_t *cv, const char *name, int is_group) {
  /* name may be cv->cur itself (a plain line names the current
   * conversation): snprintf onto its own source is undefined, and glibc's
   * left it empty. */
  if (name != cv->cur)
    snprintf(cv->cur, sizeof(cv->cur), "%s", name);
  cv->cur_is_group = is_group;
}

static int is_cur(const chat_convs_t *cv, const char *name, int is_group) {
  return cv->cur[0] && cv->cur_is_group == is_group &&
         strcmp(cv->cur, name) == 0;
}

int chat_convs_query(chat_convs_t *cv, const char *name, int is_group) {
  chat_conv_t *e = find(cv, name, is_group, 1);
  if (!e)
    return -ENOMEM;
  e->unread = 0;
  set_cur(cv, name, is_group);
  cv->pinned = 1;
  if (is_group)
    chat_convs_group_add(cv, name);
  return 0;
}

void chat_convs_sent(chat_convs_t *cv, const char *name, int is_group) {
  chat_conv_t *e = find(cv, name, is_group, 1);
  if (!cv->pinned) {
    set_cur(cv, name, is_group);
    if (e)
      e->unread = 0;
  }
}

int chat_convs_received(chat_convs_t *cv, const char *name, int is_group) {
  chat_conv_t *e = find(cv, name, is_group, 1);
  if (is_group)
    chat_convs_group_add(cv, name);
  if (!cv->cur[0])
    set_cur(cv, name, is_group);
  if (is_cur(cv, name, is_group) || !e)
    return 0;
  e->unread++;
  return 1;
}

unsigned chat_convs_unread(const chat_convs_t *cv) {
  unsigned n = 0;
  for (size_t i = 0; i < cv->n; i++)
    n += cv->v[i].unread;
  return n;
}

void chat_convs_group_add(chat_convs_t *cv, const char *group) {
  for (size_t i = 0; i < cv->ngroups; i++)
    if (strcmp(cv->groups[i], group) == 0)
      return;
  if (cv->ngroups == cv->groups_cap) {
    size_t cap = cv->groups_cap ? 2 * cv->groups_cap : 8;
    char(*g)[CHAT_MAX_NAME + 1] = realloc(cv->groups, cap * sizeof(*g));
    if (!g)
      return; /* only completion misses it */
    cv->groups = g;
    cv->groups_cap = cap;
  }
  snprintf(cv->groups[cv->ngroups++], sizeof(cv->groups[0]), "%s", group);
}

void chat_convs_group_remove(chat_convs_t *cv, const char *group) {
  for (size_t i = 0; i < cv->ngroups; i++)
    if (strcmp(cv->groups[i], group) == 0) {
      memmove(cv->groups[i], cv->groups[i + 1],
              (cv->ngroups - i - 1) * sizeof(cv->groups[0]));
      cv->ngroups--;
      return;
    }
}
