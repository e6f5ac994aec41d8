/* match.c -- does one JSON event satisfy an expectation, and if not, why. */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "scenario.h"

int chat_scenario_value_matches(const json_t *v, const char *text) {
  if (v == NULL)
    return 0;
  switch (json_typeof(v)) {
  case JSON_STRING:
    return strlen(text) == json_string_length(v) &&
           memcmp(json_string_value(v), text, json_string_length(v)) == 0;
  case JSON_INTEGER:
  case JSON_REAL: {
    char *end;
    double want = strtod(text, &end);
    if (end == text || *end != '\0')
      return 0;
    if (json_is_integer(v)) {
      /* Compare integers exactly where the text is an integer. */
      long long iw = strtoll(text, &end, 10);
      if (*end == '\0')
        return iw == json_integer_value(v);
      return want == (double)json_integer_value(v);
    }
    return want == json_real_value(v) ||
           fabs(want - json_real_value(v)) <= 1e-9 * fabs(want);
  }
  case JSON_TRUE:
    return strcmp(text, "true") == 0;
  case JSON_FALSE:
    return strcmp(text, "false") == 0;
  case JSON_NULL:
    return strcmp(text, "null") == 0;
  case JSON_OBJECT:
  case JSON_ARRAY: {
    json_t *want = json_loads(text, JSON_DECODE_ANY, NULL);
    int eq = want != NULL && json_equal(want, (json_t *)v);
    json_decref(want);
    return eq;
  }
  }
  return 0;
}

static int cond_holds(const json_t *obj, const chat_scenario_cond_t *c) {
  const json_t *v = json_object_get(obj, c->field);
  switch (c->op) {
  case CHAT_SCENARIO_OP_EQ:
    return chat_scenario_value_matches(v, c->value);
  case CHAT_SCENARIO_OP_NE:
    return !chat_scenario_value_matches(v, c->value);
  case CHAT_SCENARIO_OP_CONTAINS:
    return json_is_string(v) && strstr(json_string_value(v), c->value) != NULL;
  case CHAT_SCENARIO_OP_CAPTURE:
    return v != NULL;
  }
  return 0;
}

static int event_name_matches(const json_t *obj, const char *event) {
  if (strcmp(event, "*") == 0)
    return 1;
  return chat_scenario_value_matches(json_object_get(obj, "event"), event);
}

int chat_scenario_event_matches(const json_t *obj, const char *event,
                                const chat_scenario_cond_t *conds,
                                size_t nconds) {
  if (!json_is_object(obj) || !event_name_matches(obj, event))
    return 0;
  for (size_t i = 0; i < nconds; i++)
    if (!cond_holds(obj, &conds[i]))
      return 0;
  return 1;
}

char *chat_scenario_value_text(const json_t *v) {
  if (v == NULL)
    return NULL;
  if (json_is_string(v))
    return strndup(json_string_value(v), json_string_length(v));
  return json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
}

/* The wanted value as a script would write it: quoted when it has to be. */
static const char *quoted(const char *v, char *buf, size_t len) {
  if (*v != '\0' && strpbrk(v, " \t\"'#") == NULL)
    return v;
  snprintf(buf, len, "\"%s\"", v);
  return buf;
}

void chat_scenario_explain(const json_t *obj, const char *event,
                           const chat_scenario_cond_t *conds, size_t nconds,
                           char *buf, size_t len) {
  static const char *const ops[] = {"=", "!=", "~", "=>"};
  if (len == 0)
    return;
  buf[0] = '\0';
  if (!json_is_object(obj)) {
    snprintf(buf, len, "not a JSON object");
    return;
  }
  if (!event_name_matches(obj, event)) {
    snprintf(buf, len, "another event");
    return;
  }
  for (size_t i = 0; i < nconds; i++) {
    const chat_scenario_cond_t *c = &conds[i];
    if (cond_holds(obj, c))
      continue;
    const json_t *v = json_object_get(obj, c->field);
    char q[256];
    if (v == NULL) {
      snprintf(buf, len, "no field %s (wanted %s%s%s)", c->field, c->field,
               ops[c->op], quoted(c->value, q, sizeof(q)));
      return;
    }
    char *have = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
    snprintf(buf, len, "%s is %s (wanted %s%s%s)", c->field,
             have ? have : "?", c->field, ops[c->op],
             quoted(c->value, q, sizeof(q)));
    free(have);
    return;
  }
}
