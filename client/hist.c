/* hist.c -- what is kept across restarts, in the user's state directory
 * ($XDG_STATE_HOME/chat-client/USER/, by default
 * ~/.local/state/chat-client/USER/): the lines typed at the prompt, and each
 * conversation's messages. The format is docs/client-history.md. Files are
 * private (0600, in 0700 directories) and bounded: a conversation keeps its
 * last HIST_KEEP messages, the input history its last HIST_INPUT_KEEP lines.
 *
 * Keeping history is a convenience: when the directory cannot be used, the
 * client says so once on stderr and runs without it. Part of the real
 * client (client_uv.c's env, prompt.c): the core only asks its env. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <histedit.h>

#include "chat_protocol.h"
#include "hist.h"

#define HIST_KEEP 1000        /* messages per conversation */
#define HIST_INPUT_KEEP 1000  /* typed lines */
#define HIST_PATH_MAX 4096

/* Lines per conversation file written by this process, so that a file is
 * cut back to HIST_KEEP when it reaches twice that, without counting its
 * lines at every message. */
typedef struct hist_count {
  char file[CHAT_MAX_NAME + 16];
  size_t lines;
} hist_count_t;

struct chat_hist {
  char dir[HIST_PATH_MAX];
  hist_count_t *counts;
  size_t ncounts;
};

typedef chat_hist_t hist_t;

static int mkdir_private(const char *path) {
  if (mkdir(path, 0700) == 0 || errno == EEXIST)
    return 0;
  return -errno;
}

/* mkdir -p, each new level 0700. */
static int make_dirs(char *path) {
  int rc;
  for (char *p = path + 1; *p; p++) {
    if (*p != '/')
      continue;
    *p = '\0';
    rc = mkdir_private(path);
    *p = '/';
    if (rc < 0)
      return rc;
  }
  return mkdir_private(path);
}

int chat_hist_open(const char *user, chat_hist_t **out) {
  const char *xdg = getenv("XDG_STATE_HOME"), *home = getenv("HOME");
  hist_t *h = calloc(1, sizeof(*h));
  char conv[HIST_PATH_MAX + 8];
  int rc, n;

  *out = NULL;
  if (!h)
    return -ENOMEM;
  if (xdg && xdg[0] == '/')
    n = snprintf(h->dir, sizeof(h->dir), "%s/chat-client/%s", xdg,
                 user);
  else if (home && home[0])
    n = snprintf(h->dir, sizeof(h->dir), "%s/.local/state/chat-client/%s",
                 home, user);
  else
    n = -1;
  if (n < 0 || (size_t)n >= sizeof(h->dir)) {
    free(h);
    return -ENOENT;
  }
  snprintf(conv, sizeof(conv), "%s/conv", h->dir);
  if ((rc = make_dirs(conv)) < 0) {
    fprintf(stderr, "chat-client: not keeping history: %s: %s\n", h->dir,
            strerror(-rc));
    free(h);
    return rc;
  }
  *out = h;
  return 0;
}

void chat_hist_close(chat_hist_t *h) {
  if (!h)
    return;
  free(h->counts);
  free(h);
}

/* "u-bob.jsonl" or "g-dev.jsonl": names are [a-z0-9_.-], so a prefix is
 * all it takes to keep "." and ".." out of the directory. */
static void conv_file(char *buf, size_t len, const char *conv, int is_group) {
  snprintf(buf, len, "%s-%s.jsonl", is_group ? "g" : "u", conv);
}

static void path_of(const hist_t *h, const char *file, char *buf,
                    size_t len) {
  snprintf(buf, len, "%s/conv/%s", h->dir, file);
}

static FILE *open_private(const char *path, const char *mode, int flags) {
  int fd = open(path, flags | O_CLOEXEC, 0600);
  FILE *f;
  if (fd < 0)
    return NULL;
  if ((flags & O_CREAT) && fchmod(fd, 0600) < 0) { /* an older file */
    close(fd);
    return NULL;
  }
  if (!(f = fdopen(fd, mode)))
    close(fd);
  return f;
}

/* Reads every line of path into a new array of strings, keeping only the
 * last keep. NULL when the file does not exist. */
static char **read_tail(const char *path, size_t keep, size_t *n_out,
                        size_t *total) {
  FILE *f = fopen(path, "re");
  char **ring, *line = NULL;
  size_t cap = 0, n = 0;
  ssize_t len;
  *n_out = *total = 0;
  if (!f)
    return NULL;
  if (!(ring = calloc(keep ? keep : 1, sizeof(*ring)))) {
    fclose(f);
    return NULL;
  }
  while ((len = getline(&line, &cap, f)) >= 0) {
    if (len > 0 && line[len - 1] == '\n')
      line[--len] = '\0';
    if (len == 0)
      continue;
    free(ring[n % keep]);
    ring[n % keep] = strdup(line);
    n++;
  }
  free(line);
  fclose(f);
  *total = n;
  /* oldest first */
  if (n > keep) {
    char **v = calloc(keep, sizeof(*v));
    if (!v) {
      for (size_t i = 0; i < keep; i++)
        free(ring[i]);
      free(ring);
      return NULL;
    }
    for (size_t i = 0; i < keep; i++)
      v[i] = ring[(n + i) % keep];
    free(ring);
    ring = v;
    n = keep;
  }
  *n_out = n;
  return ring;
}

static void free_lines(char **v, size_t n) {
  for (size_t i = 0; i < n; i++)
    free(v[i]);
  free(v);
}

/* Rewrites path with only its last keep lines (through a temporary file
 * and rename, so that a crash leaves one or the other). */
static void trim(const char *path, size_t keep) {
  char tmp[HIST_PATH_MAX + 16];
  size_t n, total;
  char **v = read_tail(path, keep, &n, &total);
  FILE *f;
  if (!v)
    return;
  snprintf(tmp, sizeof(tmp), "%s.tmp", path);
  if ((f = open_private(tmp, "w", O_WRONLY | O_CREAT | O_TRUNC))) {
    for (size_t i = 0; i < n; i++)
      if (v[i])
        fprintf(f, "%s\n", v[i]);
    if (fclose(f) == 0)
      rename(tmp, path);
    else
      unlink(tmp);
  }
  free_lines(v, n);
}

static hist_count_t *count_of(hist_t *h, const char *file, const char *path) {
  hist_count_t *v;
  size_t n, total;
  char **lines;
  for (size_t i = 0; i < h->ncounts; i++)
    if (strcmp(h->counts[i].file, file) == 0)
      return &h->counts[i];
  if (!(v = realloc(h->counts, (h->ncounts + 1) * sizeof(*v))))
    return NULL;
  h->counts = v;
  lines = read_tail(path, 1, &n, &total);
  free_lines(lines, n);
  v = &h->counts[h->ncounts++];
  snprintf(v->file, sizeof(v->file), "%s", file);
  v->lines = total;
  return v;
}

void chat_hist_message(chat_hist_t *h, const char *conv, int is_group,
                       const char *from, const char *body, size_t body_len,
                       int64_t ts) {
  char file[CHAT_MAX_NAME + 16], path[HIST_PATH_MAX + 64], *line;
  hist_count_t *cnt;
  json_t *e;
  FILE *f;

  if (!h)
    return;
  conv_file(file, sizeof(file), conv, is_group);
  path_of(h, file, path, sizeof(path));
  e = json_pack("{s:I,s:s,s:s%}", "ts", (json_int_t)ts, "from", from, "body",
                body, body_len);
  line = e ? json_dumps(e, JSON_COMPACT) : NULL;
  json_decref(e);
  cnt = count_of(h, file, path);
  if (line && (f = open_private(path, "a", O_WRONLY | O_CREAT | O_APPEND))) {
    fprintf(f, "%s\n", line);
    if (fclose(f) == 0 && cnt && ++cnt->lines >= 2 * HIST_KEEP) {
      trim(path, HIST_KEEP);
      cnt->lines = HIST_KEEP;
    }
  }
  free(line);
}

json_t *chat_hist_read(chat_hist_t *h, const char *conv, int is_group,
                       int n) {
  char file[CHAT_MAX_NAME + 16], path[HIST_PATH_MAX + 64];
  json_t *out = json_array();
  size_t got, total;
  char **v;
  if (!h || !out || n <= 0)
    return out;
  conv_file(file, sizeof(file), conv, is_group);
  path_of(h, file, path, sizeof(path));
  if (!(v = read_tail(path, (size_t)n, &got, &total)))
    return out;
  for (size_t i = 0; i < got; i++) {
    json_t *e = v[i] ? json_loads(v[i], 0, NULL) : NULL;
    if (json_is_object(e))
      json_array_append(out, e);
    json_decref(e);
  }
  free_lines(v, got);
  return out;
}

void chat_hist_input_add(chat_hist_t *h, const char *line) {
  char path[HIST_PATH_MAX + 16];
  FILE *f;
  if (!h || !*line || strchr(line, '\n'))
    return;
  snprintf(path, sizeof(path), "%s/input", h->dir);
  if ((f = open_private(path, "a", O_WRONLY | O_CREAT | O_APPEND))) {
    fprintf(f, "%s\n", line);
    fclose(f);
  }
}

void chat_hist_input_load(chat_hist_t *h, History *hist) {
  char path[HIST_PATH_MAX + 16];
  size_t n, total;
  char **v;
  HistEvent ev;
  if (!h)
    return;
  snprintf(path, sizeof(path), "%s/input", h->dir);
  if (!(v = read_tail(path, HIST_INPUT_KEEP, &n, &total)))
    return;
  for (size_t i = 0; i < n; i++)
    if (v[i])
      history(hist, &ev, H_ENTER, v[i]);
  free_lines(v, n);
  if (total >= 2 * HIST_INPUT_KEEP)
    trim(path, HIST_INPUT_KEEP);
}
