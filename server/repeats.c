/* repeats.c -- the list of repeats waiting for an original's outcome. */
#include "repeats.h"

#include <errno.h>
#include <stdlib.h>

int chat__repeats_add(chat__repeats_t *r, chat__session_t *s,
                      const json_t *id) {
  if (r->n >= CHAT_MAX_REPEATS)
    return -ENOBUFS;
  /* Rare (a client's retry within a commit): grown one at a time. */
  chat__repeat_t *v = realloc(r->v, (r->n + 1) * sizeof(*v));
  if (v == NULL)
    return -ENOMEM;
  r->v = v;
  v[r->n].s = s;
  v[r->n].id = json_incref((json_t *)id);
  chat__session_ref(s);
  r->n++;
  return 0;
}

void chat__repeats_refuse(chat__session_t *s, const json_t *id) {
  chat__session_error(s, id, CHAT_E_RATE_LIMITED,
                      "this message is already waiting to be stored; "
                      "repeat it later");
}

void chat__repeats_free(chat__repeats_t *r) {
  for (uint32_t i = 0; i < r->n; i++) {
    chat__session_unref(r->v[i].s);
    json_decref(r->v[i].id);
  }
  free(r->v);
  r->v = NULL;
  r->n = 0;
}
