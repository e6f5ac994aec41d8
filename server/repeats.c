/* repeats.c -- the list of repeats waiting for an original's outcome. */
#include "repeats.h"

#include <errno.h>
#include <stdlib.h>

int chat_repeats_add(chat_repeats_t *r, chat_session_t *s, const json_t *id) {
  if (r->n >= CHAT_MAX_REPEATS)
    return -ENOBUFS;
  /* Rare (a client's retry within a commit): grown one at a time. */
  chat_repeat_t *v = realloc(r->v, (r->n + 1) * sizeof(*v));
  if (v == NULL)
    return -ENOMEM;
  r->v = v;
  v[r->n].s = s;
  v[r->n].id = json_incref((json_t *)id);
  chat_session_ref(s);
  r->n++;
  return 0;
}

void chat_repeats_refuse(chat_session_t *s, const json_t *id) {
  chat_session_error(s, id, CHAT_E_RATE_LIMITED,
                     "this message is already waiting to be stored; "
                     "repeat it later");
}

void chat_repeats_free(chat_repeats_t *r) {
  for (uint32_t i = 0; i < r->n; i++) {
    chat_session_unref(r->v[i].s);
    json_decref(r->v[i].id);
  }
  free(r->v);
  r->v = NULL;
  r->n = 0;
}
