/* queue.c -- the lines one participant printed, in order, each consumed at
 * most once. An expectation takes the first unconsumed line that matches;
 * lines it skipped stay available to later expectations. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "scenario.h"

void chat_scenario_queue_init(chat_scenario_queue_t *q) {
  memset(q, 0, sizeof(*q));
}

void chat_scenario_queue_clear(chat_scenario_queue_t *q) {
  for (size_t i = 0; i < q->n; i++) {
    free(q->items[i].line);
    json_decref(q->items[i].obj);
  }
  free(q->items);
  memset(q, 0, sizeof(*q));
}

int chat_scenario_queue_push(chat_scenario_queue_t *q, const char *line,
                             size_t len, uint64_t ms, int parse_json) {
  if (q->n >= CHAT_SCENARIO_QUEUE_MAX) {
    q->dropped++;
    return -ENOSPC;
  }
  if (q->n == q->cap) {
    size_t cap = q->cap ? q->cap * 2 : 32;
    chat_scenario_item_t *items = realloc(q->items, cap * sizeof(*items));
    if (items == NULL)
      return -ENOMEM;
    q->items = items;
    q->cap = cap;
  }
  chat_scenario_item_t *it = &q->items[q->n];
  memset(it, 0, sizeof(*it));
  if ((it->line = strndup(line, len)) == NULL)
    return -ENOMEM;
  it->ms = ms;
  if (parse_json) {
    /* Decode only what is on the line: a client prints one object per line,
     * and anything else must be reported, not guessed at. */
    json_t *obj = json_loadb(line, len, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, NULL);
    if (json_is_object(obj))
      it->obj = obj;
    else
      json_decref(obj);
  }
  q->n++;
  return 0;
}

ssize_t chat_scenario_queue_find(const chat_scenario_queue_t *q,
                                 const char *event,
                                 const chat_scenario_cond_t *conds,
                                 size_t nconds) {
  for (size_t i = 0; i < q->n; i++) {
    const chat_scenario_item_t *it = &q->items[i];
    if (!it->consumed && it->obj != NULL &&
        chat_scenario_event_matches(it->obj, event, conds, nconds))
      return (ssize_t)i;
  }
  return -1;
}

ssize_t chat_scenario_queue_find_text(const chat_scenario_queue_t *q,
                                      const char *text) {
  for (size_t i = 0; i < q->n; i++)
    if (!q->items[i].consumed && strstr(q->items[i].line, text) != NULL)
      return (ssize_t)i;
  return -1;
}
