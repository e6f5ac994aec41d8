/* words.c -- splitting a script line into words (quotes, escapes, trailing
 * comments), and naming signals and nodes. */
#include <ctype.h>
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "scenario.h"

void chat_scenario_words_free(char **words) {
  if (words == NULL)
    return;
  for (char **w = words; *w != NULL; w++)
    free(*w);
  free(words);
}

int chat_scenario_split_words(const char *line, char ***words) {
  size_t n = 0, cap = 8;
  char **out = calloc(cap, sizeof(*out));
  char *word = malloc(strlen(line) + 1);
  int rc = 0;
  if (out == NULL || word == NULL) {
    rc = -ENOMEM;
    goto fail;
  }
  const char *s = line;
  for (;;) {
    while (isspace((unsigned char)*s))
      s++;
    if (*s == '\0' || *s == '#')
      break;
    size_t len = 0;
    while (*s != '\0' && !isspace((unsigned char)*s)) {
      if (*s == '"') {
        for (s++; *s != '"'; s++) {
          if (*s == '\0') {
            rc = -EINVAL;
            goto fail;
          }
          if (*s == '\\' && s[1] != '\0') {
            s++;
            word[len++] = *s == 'n' ? '\n' : *s == 't' ? '\t' : *s;
          } else {
            word[len++] = *s;
          }
        }
        s++;
      } else if (*s == '\'') {
        const char *end = strchr(s + 1, '\'');
        if (end == NULL) {
          rc = -EINVAL;
          goto fail;
        }
        memcpy(word + len, s + 1, (size_t)(end - s - 1));
        len += (size_t)(end - s - 1);
        s = end + 1;
      } else {
        word[len++] = *s++;
      }
    }
    if (n + 1 >= cap) {
      char **grown = realloc(out, cap * 2 * sizeof(*out));
      if (grown == NULL) {
        rc = -ENOMEM;
        goto fail;
      }
      out = grown;
      cap *= 2;
    }
    out[n] = malloc(len + 1);
    if (out[n] == NULL) {
      rc = -ENOMEM;
      goto fail;
    }
    memcpy(out[n], word, len);
    out[n][len] = '\0';
    out[++n] = NULL;
  }
  free(word);
  *words = out;
  return (int)n;
fail:
  free(word);
  chat_scenario_words_free(out);
  return rc;
}

static const struct {
  const char *name;
  int num;
} signals[] = {
    {"HUP", SIGHUP},   {"INT", SIGINT},   {"QUIT", SIGQUIT},
    {"ABRT", SIGABRT}, {"KILL", SIGKILL}, {"SEGV", SIGSEGV},
    {"TERM", SIGTERM}, {"STOP", SIGSTOP}, {"CONT", SIGCONT},
    {"USR1", SIGUSR1}, {"USR2", SIGUSR2},
};

int chat_scenario_signal_parse(const char *name) {
  if (isdigit((unsigned char)name[0])) {
    char *end;
    long n = strtol(name, &end, 10);
    return *end == '\0' && n > 0 && n < 65 ? (int)n : -EINVAL;
  }
  if (strncasecmp(name, "SIG", 3) == 0)
    name += 3;
  for (size_t i = 0; i < sizeof(signals) / sizeof(signals[0]); i++)
    if (strcasecmp(name, signals[i].name) == 0)
      return signals[i].num;
  return -EINVAL;
}

int chat_scenario_node_parse(const char *name) {
  /* One form only, the one chat-server's --node gets and the transcript
   * shows: no "N2", no "n02", no bare "2". */
  if (name[0] != 'n' || name[1] < '1' || name[1] > '9' || name[2] != '\0')
    return -EINVAL;
  int k = name[1] - '0';
  return k <= CHAT_SCENARIO_MAX_NODES ? k : -EINVAL;
}
