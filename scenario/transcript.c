/* transcript.c -- everything each participant said and saw, with times, kept
 * so that a failing scenario can be read like a chat log. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "scenario.h"

void chat_scenario_transcript_init(chat_scenario_transcript_t *t,
                                   size_t max_bytes) {
  memset(t, 0, sizeof(*t));
  t->max_bytes = max_bytes;
}

void chat_scenario_transcript_free(chat_scenario_transcript_t *t) {
  for (size_t i = 0; i < t->n; i++)
    free(t->entries[i].text);
  free(t->entries);
  t->entries = NULL;
  t->n = t->cap = t->bytes = 0;
}

static const char *const marks[] = {"##", "$", "<", ">", "!", "--"};

void chat_scenario_entry_print(const chat_scenario_entry_t *e, FILE *f) {
  fprintf(f, "[%7llu ms] %-8s %-2s %s\n", (unsigned long long)e->ms, e->who,
          marks[e->kind], e->text);
}

int chat_scenario_transcript_add(chat_scenario_transcript_t *t, uint64_t ms,
                                 const char *who, chat_scenario_tkind_t kind,
                                 const char *text) {
  size_t len = strlen(text);
  if (len > 0 && text[len - 1] == '\n')
    len--;
  chat_scenario_entry_t e;
  memset(&e, 0, sizeof(e));
  e.ms = ms;
  e.kind = kind;
  snprintf(e.who, sizeof(e.who), "%s", who);
  if ((e.text = strndup(text, len)) == NULL)
    return -ENOMEM;
  if (t->live != NULL) {
    chat_scenario_entry_print(&e, t->live);
    fflush(t->live);
  }
  if (t->bytes + len > t->max_bytes) {
    t->dropped++;
    free(e.text);
    return -ENOSPC;
  }
  if (t->n == t->cap) {
    size_t cap = t->cap ? t->cap * 2 : 128;
    chat_scenario_entry_t *entries = realloc(t->entries, cap * sizeof(*entries));
    if (entries == NULL) {
      free(e.text);
      return -ENOMEM;
    }
    t->entries = entries;
    t->cap = cap;
  }
  t->entries[t->n++] = e;
  t->bytes += len;
  return 0;
}

void chat_scenario_transcript_print(const chat_scenario_transcript_t *t,
                                    FILE *f) {
  for (size_t i = 0; i < t->n; i++)
    chat_scenario_entry_print(&t->entries[i], f);
  if (t->dropped > 0)
    fprintf(f, "(%zu later lines not kept: transcript over %zu bytes)\n",
            t->dropped, t->max_bytes);
}
