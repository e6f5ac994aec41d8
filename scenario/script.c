/* script.c -- a script's life around the parser: reading a .chat file into
 * memory for chat_scenario_parse, and freeing what it built. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "scenario.h"

#define SCRIPT_MAX_FILE (1024 * 1024)

int chat_scenario_parse_file(const char *path, chat_scenario_script_t **out,
                             chat_scenario_error_t *err) {
  FILE *f = fopen(path, "rb");
  if (f == NULL) {
    int rc = -errno;
    if (err != NULL) {
      err->line = 0;
      snprintf(err->text, sizeof(err->text), "cannot open: %s",
               strerror(errno));
    }
    return rc;
  }
  char *buf = malloc(SCRIPT_MAX_FILE + 1);
  size_t len = buf ? fread(buf, 1, SCRIPT_MAX_FILE + 1, f) : 0;
  int rc = 0;
  if (buf == NULL)
    rc = -ENOMEM;
  else if (ferror(f))
    rc = -EIO;
  else if (len > SCRIPT_MAX_FILE)
    rc = -EFBIG;
  fclose(f);
  if (rc != 0) {
    if (err != NULL) {
      err->line = 0;
      snprintf(err->text, sizeof(err->text), "cannot read: %s",
               rc == -EFBIG ? "larger than 1 MiB" : strerror(-rc));
    }
    free(buf);
    return rc;
  }
  rc = chat_scenario_parse(buf, len, path, out, err);
  free(buf);
  return rc;
}

static void step_free(chat_scenario_step_t *st) {
  free(st->source);
  for (size_t i = 0; i < st->argc; i++)
    free(st->argv[i]);
  free(st->argv);
  free(st->user);
  free(st->password);
  free(st->text);
  for (size_t i = 0; i < st->nconds; i++) {
    free(st->conds[i].field);
    free(st->conds[i].value);
  }
  free(st->conds);
}

void chat_scenario_script_free(chat_scenario_script_t *s) {
  if (s == NULL)
    return;
  for (size_t i = 0; i < s->nsteps; i++)
    step_free(&s->steps[i]);
  free(s->steps);
  for (size_t i = 0; i < s->nnames; i++)
    free(s->names[i]);
  free(s->names);
  free(s->path);
  free(s);
}
