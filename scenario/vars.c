/* vars.c -- script variables: $server and friends, and values captured from
 * events with field=>name, expanded into lines at run time. */
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "scenario.h"

void chat_scenario_vars_init(chat_scenario_vars_t *v) {
  memset(v, 0, sizeof(*v));
}

void chat_scenario_vars_free(chat_scenario_vars_t *v) {
  for (size_t i = 0; i < v->n; i++) {
    free(v->names[i]);
    free(v->values[i]);
  }
  free(v->names);
  free(v->values);
  memset(v, 0, sizeof(*v));
}

static ssize_t vars_index(const chat_scenario_vars_t *v, const char *name,
                          size_t len) {
  for (size_t i = 0; i < v->n; i++)
    if (strlen(v->names[i]) == len && memcmp(v->names[i], name, len) == 0)
      return (ssize_t)i;
  return -1;
}

int chat_scenario_vars_set(chat_scenario_vars_t *v, const char *name,
                           const char *value) {
  char *copy = strdup(value);
  if (copy == NULL)
    return -ENOMEM;
  ssize_t i = vars_index(v, name, strlen(name));
  if (i >= 0) {
    free(v->values[i]);
    v->values[i] = copy;
    return 0;
  }
  if (v->n == v->cap) {
    size_t cap = v->cap ? v->cap * 2 : 8;
    char **names = realloc(v->names, cap * sizeof(*names));
    if (names == NULL)
      goto nomem;
    v->names = names;
    char **values = realloc(v->values, cap * sizeof(*values));
    if (values == NULL)
      goto nomem;
    v->values = values;
    v->cap = cap;
  }
  v->names[v->n] = strdup(name);
  if (v->names[v->n] == NULL)
    goto nomem;
  v->values[v->n++] = copy;
  return 0;
nomem:
  free(copy);
  return -ENOMEM;
}

const char *chat_scenario_vars_get(const chat_scenario_vars_t *v,
                                   const char *name) {
  ssize_t i = vars_index(v, name, strlen(name));
  return i >= 0 ? v->values[i] : NULL;
}

static int is_name_start(int c) { return isalpha(c) || c == '_'; }
static int is_name_char(int c) { return isalnum(c) || c == '_'; }

typedef struct outbuf {
  char *p;
  size_t len, cap;
} outbuf_t;

static int out_put(outbuf_t *o, const char *s, size_t n) {
  if (o->len + n + 1 > o->cap) {
    size_t cap = o->cap ? o->cap : 64;
    while (cap < o->len + n + 1)
      cap *= 2;
    char *p = realloc(o->p, cap);
    if (p == NULL)
      return -ENOMEM;
    o->p = p;
    o->cap = cap;
  }
  memcpy(o->p + o->len, s, n);
  o->len += n;
  o->p[o->len] = '\0';
  return 0;
}

int chat_scenario_vars_expand(const chat_scenario_vars_t *v, const char *text,
                              char **out, char *bad, size_t badlen) {
  outbuf_t o = {NULL, 0, 0};
  const char *s = text;
  int rc = out_put(&o, "", 0);
  while (rc == 0 && *s != '\0') {
    const char *dollar = strchr(s, '$');
    if (dollar == NULL) {
      rc = out_put(&o, s, strlen(s));
      break;
    }
    if ((rc = out_put(&o, s, (size_t)(dollar - s))) != 0)
      break;
    const char *name = dollar + 1, *end;
    if (*name == '$') { /* $$ is a literal dollar */
      rc = out_put(&o, "$", 1);
      s = name + 1;
      continue;
    }
    if (*name == '{') {
      name++;
      end = strchr(name, '}');
      if (end == NULL || end == name) {
        rc = -EINVAL;
        break;
      }
      s = end + 1;
    } else if (is_name_start((unsigned char)*name)) {
      end = name;
      while (is_name_char((unsigned char)*end))
        end++;
      s = end;
    } else { /* "costs $5": not a variable */
      rc = out_put(&o, "$", 1);
      s = name;
      continue;
    }
    ssize_t i = vars_index(v, name, (size_t)(end - name));
    if (i < 0) {
      if (bad != NULL && badlen > 0) {
        size_t n = (size_t)(end - name) < badlen - 1 ? (size_t)(end - name)
                                                      : badlen - 1;
        memcpy(bad, name, n);
        bad[n] = '\0';
      }
      rc = -ENOENT;
      break;
    }
    rc = out_put(&o, v->values[i], strlen(v->values[i]));
  }
  if (rc != 0) {
    free(o.p);
    return rc;
  }
  *out = o.p;
  return 0;
}
