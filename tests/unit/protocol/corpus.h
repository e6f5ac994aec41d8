/* corpus.h -- the case folders of frames/ and messages/ (see their READMEs):
 * the sorted case names, and a file's bytes. Header-only, like chaos.h;
 * include it after cmocka.h. The tests run in tests/unit/protocol/. */
#ifndef CHAT_TEST_CORPUS_H
#define CHAT_TEST_CORPUS_H

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The whole file with a NUL after it (not counted in *len; len may be
 * NULL), or NULL when it cannot be opened. The caller frees it. */
static char *corpus_read(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  char *buf = NULL;
  size_t cap = 0, n = 0, r;

  if (f == NULL)
    return NULL;
  do {
    if (cap - n < 4096) {
      cap = cap ? cap * 2 : 8192;
      buf = realloc(buf, cap);
      assert_non_null(buf);
    }
    r = fread(buf + n, 1, cap - n - 1, f);
    n += r;
  } while (r > 0);
  fclose(f);
  buf[n] = '\0';
  if (len != NULL)
    *len = n;
  return buf;
}

static int corpus_cmp(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The case names in dir: every entry but dot files and README, sorted.
 * *n counts them; free them with corpus_cases_free(). */
static char **corpus_cases(const char *dir, size_t *n) {
  DIR *dp = opendir(dir);
  struct dirent *e;
  char **names = NULL;
  size_t cap = 0;

  assert_non_null(dp);
  *n = 0;
  while ((e = readdir(dp)) != NULL) {
    if (e->d_name[0] == '.' || strcmp(e->d_name, "README") == 0)
      continue;
    if (*n == cap) {
      cap = cap ? cap * 2 : 256;
      names = realloc(names, cap * sizeof(*names));
      assert_non_null(names);
    }
    names[(*n)++] = strdup(e->d_name);
  }
  closedir(dp);
  qsort(names, *n, sizeof(*names), corpus_cmp);
  return names;
}

static void corpus_cases_free(char **names, size_t n) {
  for (size_t i = 0; i < n; i++)
    free(names[i]);
  free(names);
}

#endif /* CHAT_TEST_CORPUS_H */
