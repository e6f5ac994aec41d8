/* prompt.c -- the interactive prompt on a terminal: libedit line editing
 * in UTF-8, history (kept by hist.c), completion of commands and names, a
 * half-typed line that survives incoming events (wiped and redrawn around
 * them, every row of it), and Ctrl-Z / fg. input.c starts it when stdin and
 * stdout are a terminal. */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>
#include <wchar.h>

#include <histedit.h>

#include "chat_log.h"
#include "input.h"
#include "prompt.h"

/* The terminal exists once per process, and so does this. */
typedef struct prompt {
  chat_client_uv_t *u;
  chat_client_t *c;
  int started, stopped, hidden;
  int tty_gone;          /* tty_getc saw the terminal end */
  uv_poll_t poll;
  uv_signal_t tstp;      /* Ctrl-Z */
  uv_signal_t winch;     /* the terminal was resized */
  char prompt[2 * CHAT_MAX_NAME + 40];
  EditLine *el;
  History *hist;
} prompt_t;

static prompt_t g_pr;

/* libedit's native API in unbuffered mode: el_gets() hands back the line so
 * far after every key, so the half-typed line is always at hand (el_line)
 * and EL_REFRESH redraws it below whatever was printed. (The readline
 * compatibility layer's callback mode does not keep its display in step
 * with the buffer, which is why it is not used here.)
 *
 * In unbuffered mode libedit answers "no line" (NULL, count -1) both for a
 * key that leaves the line empty and for a terminal that is gone, so the two
 * are told apart here: our own read function (tty_getc) records a real end
 * of the terminal, and Ctrl-D on an empty line comes back as a line holding
 * just ^D (libedit's CC_EOF in unbuffered mode). Nothing else ends input. */

static char *el_prompt(EditLine *el) {
  (void)el;
  return g_pr.prompt;
}

static const char *const commands[] = {
    "/msg ", "/add ", "/accept ", "/decline ", "/remove ", "/contacts",
    "/status ", "/group ", "/groups", "/gmsg ", "/query ", "/history ",
    "/reconnect", "/wait ", "/quit", "/help", NULL};

/* Which kind of name belongs at the word being typed, from the words before
 * it: a group after /gmsg, /group (its second word), /query #; else a
 * contact. */
static int wants_group(const char *line, const char *word) {
  size_t n = (size_t)(word - line);
  if (n >= 6 && strncmp(line, "/gmsg ", 6) == 0)
    return 1;
  if (n >= 7 && strncmp(line, "/group ", 7) == 0) {
    const char *sub = line + 7;
    while (*sub == ' ')
      sub++;
    /* "/group add GROUP USER": the user after the group is a contact. */
    if (strncmp(sub, "add ", 4) == 0) {
      const char *g = sub + 4;
      while (*g == ' ')
        g++;
      return word <= g;
    }
    return sub < word;
  }
  return 0;
}

/* Tab: completes a command at the start of the line, and a contact name (or
 * a group name where one belongs) after it, when the prefix typed has
 * exactly one completion; a completed name gets its space. */
static unsigned char el_complete(EditLine *el, int ch) {
  const LineInfo *li = el_line(el);
  const char *w = li->cursor, *found = NULL;
  size_t n, matches = 0;
  chat_client_t *c = g_pr.c;
  int hash = 0, spaced;
  (void)ch;
  while (w > li->buffer && w[-1] != ' ')
    w--;
  if (w < li->cursor && *w == '#' && w - li->buffer >= 7 &&
      strncmp(li->buffer, "/query ", 7) == 0) {
    w++; /* "/query #dev": the group after the # */
    hash = 1;
  }
  n = (size_t)(li->cursor - w);
  if (w == li->buffer && n > 0 && w[0] == '/') {
    for (size_t i = 0; commands[i]; i++)
      if (strncmp(commands[i], w, n) == 0) {
        found = commands[i];
        matches++;
      }
    if (matches == 1) {
      el_insertstr(el, found + n);
      return CC_REFRESH;
    }
    return CC_REFRESH_BEEP;
  }
  if (hash || wants_group(li->buffer, w)) {
    for (size_t i = 0; i < c->convs.ngroups; i++)
      if (strncmp(c->convs.groups[i], w, n) == 0) {
        found = c->convs.groups[i];
        matches++;
      }
  } else {
    for (size_t i = 0; i < c->roster.n; i++)
      if (strncmp(c->roster.v[i].user, w, n) == 0) {
        found = c->roster.v[i].user;
        matches++;
      }
  }
  if (matches != 1)
    return CC_REFRESH_BEEP;
  /* Read before inserting; past lastchar the buffer holds stale text. */
  spaced = li->cursor < li->lastchar && *li->cursor == ' ';
  el_insertstr(el, found + n);
  if (!spaced)
    el_insertstr(el, " ");
  return CC_REFRESH;
}

/* Waits up to ms for stdin to be readable. */
static int readable_within(int ms) {
  struct pollfd pfd = {0, POLLIN, 0};
  return poll(&pfd, 1, ms) > 0;
}

/* libedit's read function: one character from the terminal, decoded from
 * the locale's multibyte form (UTF-8, see main.c). 1 with *wc, 0 at the end
 * of the terminal, -1 with errno when nothing is there now. stdin is
 * non-blocking (uv_poll), so a key sequence cut between two reads (an arrow
 * key's ESC [ A, a UTF-8 character's bytes) is given a moment to complete
 * rather than block the loop. */
static int tty_getc(EditLine *el, wchar_t *wc) {
  mbstate_t st;
  size_t pending = 0;
  (void)el;
  memset(&st, 0, sizeof(st));
  for (;;) {
    char b;
    ssize_t r = read(0, &b, 1);
    if (r == 1) {
      size_t k = mbrtowc(wc, &b, 1, &st);
      if (k == (size_t)-2) { /* the middle of a character */
        pending++;
        continue;
      }
      if (k == (size_t)-1) { /* not the locale's encoding: dropped */
        memset(&st, 0, sizeof(st));
        pending = 0;
        continue;
      }
      return 1;
    }
    if (r == 0) {
      g_pr.tty_gone = 1;
      return 0;
    }
    if (errno == EINTR)
      continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
      if (readable_within(pending ? 200 : 50))
        continue;
      errno = EAGAIN;
      return -1;
    }
    g_pr.tty_gone = 1; /* EIO: the terminal hung up */
    return -1;
  }
}

static void on_poll(uv_poll_t *p, int status, int events) {
  prompt_t *in = p->data;
  const char *s;
  char *line;
  int n = 0;
  HistEvent ev;
  (void)events;

  if (in->stopped)
    return;
  in->tty_gone = 0;
  s = el_gets(in->el, &n);
  if (status < 0 || in->tty_gone || (s && n == 1 && s[0] == 4)) {
    /* Ctrl-D on an empty line, or the terminal is gone */
    fputc('\n', stdout);
    chat__client_finish(in->c, 1);
    return;
  }
  if (!s || n <= 0)
    return; /* a key that left the line empty: still typing */
  if (s[n - 1] != '\n' && s[n - 1] != '\r')
    return; /* still typing */
  line = strndup(s, (size_t)n - 1);
  /* Leaving and re-entering unbuffered mode starts a fresh line. */
  el_set(in->el, EL_UNBUFFERED, 0);
  el_set(in->el, EL_UNBUFFERED, 1);
  if (!line)
    return;
  if (*line) {
    history(in->hist, &ev, H_ENTER, line);
    chat_hist_input_add(in->u->hist, line);
  }
  chat__cmd_run(in->c, line);
  in->c->wait_ms = 0;
  free(line);
}

/* The display width of the prompt and the typed line up to the cursor (or
 * to its end), in terminal columns. */
static void line_extent(prompt_t *in, size_t *to_cursor, size_t *total) {
  const LineInfoW *li = el_wline(in->el);
  wchar_t wp[sizeof(in->prompt)];
  size_t np = mbstowcs(wp, in->prompt, sizeof(in->prompt) - 1);
  int w;
  *to_cursor = 0;
  if (np != (size_t)-1)
    for (size_t i = 0; i < np; i++)
      *to_cursor += (w = wcwidth(wp[i])) > 0 ? (size_t)w : 0;
  *total = *to_cursor;
  for (const wchar_t *q = li->buffer; q < li->lastchar; q++) {
    w = wcwidth(*q);
    w = w > 0 ? w : (*q < 32 ? 2 : 0); /* libedit shows controls as ^X */
    if (q < li->cursor)
      *to_cursor += (size_t)w;
    *total += (size_t)w;
  }
}

static int term_cols(void) {
  struct winsize ws;
  if (ioctl(1, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0)
    return ws.ws_col;
  return 80;
}

/* Wipes the prompt and the typed line from the screen, every row of it when
 * it is wider than the terminal; libedit still holds the text and cursor. */
static void wipe_line(prompt_t *in) {
  size_t at, total, cols = (size_t)term_cols();
  size_t up;
  line_extent(in, &at, &total);
  up = at / cols;
  fputc('\r', stdout);
  if (up > 0)
    fprintf(stdout, "\033[%zuA", up);
  fputs("\033[J", stdout);
}

/* Ctrl-Z: the terminal goes back to how the shell left it before we stop,
 * and when the shell continues us ("fg") it is ours again with the prompt
 * and the half-typed line redrawn. (libedit's own signal handling is off:
 * SIGINT and SIGTERM are the loop's.) */
/* libedit's signal handling is off, so it learns a new width here and
 * uses it from the next key on. (Redrawing now would start wherever the
 * terminal's reflow left the cursor.) */
static void on_winch(uv_signal_t *h, int signum) {
  prompt_t *in = h->data;
  (void)signum;
  if (!in->stopped)
    el_resize(in->el);
}

static void on_tstp(uv_signal_t *h, int signum) {
  prompt_t *in = h->data;
  (void)signum;
  if (in->stopped)
    return;
  wipe_line(in);
  fflush(stdout);
  el_set(in->el, EL_PREP_TERM, 0);
  raise(SIGSTOP); /* returns once continued */
  el_set(in->el, EL_PREP_TERM, 1);
  el_set(in->el, EL_REFRESH);
  fflush(stdout);
}

/* "alice> ", or "alice→bob> " in a conversation, with "[+N]" when N
 * messages wait unread in the others. */
static void set_prompt(chat_client_t *c, prompt_t *in) {
  unsigned unread = chat_convs_unread(&c->convs);
  char more[24] = "";
  if (unread)
    snprintf(more, sizeof(more), " [+%u]", unread);
  if (c->convs.cur[0])
    snprintf(in->prompt, sizeof(in->prompt), "%s\xe2\x86\x92%s%s%s> ",
             c->opts.user, c->convs.cur_is_group ? "#" : "", c->convs.cur,
             more);
  else
    snprintf(in->prompt, sizeof(in->prompt), "%s%s> ", c->opts.user, more);
}

int chat__prompt_start(chat_client_uv_t *u) {
  prompt_t *in = &g_pr;
  chat_client_t *c = &u->c;
  HistEvent ev;
  memset(in, 0, sizeof(*in));
  in->u = u;
  in->c = c;
  in->started = 1;
  set_prompt(c, in);
  in->el = el_init("chat-client", stdin, stdout, stderr);
  in->hist = history_init();
  if (!in->el || !in->hist)
    return -ENOMEM;
  history(in->hist, &ev, H_SETSIZE, 1000);
  chat_hist_input_load(u->hist, in->hist);
  el_set(in->el, EL_HIST, history, in->hist);
  el_set(in->el, EL_PROMPT, el_prompt);
  el_set(in->el, EL_EDITOR, "emacs");
  el_set(in->el, EL_SIGNAL, 0); /* SIGINT/SIGTERM are the loop's */
  el_set(in->el, EL_GETCFN, tty_getc);
  el_set(in->el, EL_ADDFN, "chat-complete", "complete a name", el_complete);
  el_set(in->el, EL_BIND, "^I", "chat-complete", NULL);
  el_source(in->el, NULL); /* the user's ~/.editrc, if any */
  /* Entering unbuffered mode prepares the line: raw mode now (or keys typed
   * before the first el_gets would be echoed by the terminal itself) and the
   * prompt drawn. Drawing it again here (EL_REFRESH) forgets the first one
   * and showed "alice> alice> ". */
  el_set(in->el, EL_UNBUFFERED, 1);
  el_set(in->el, EL_PREP_TERM, 1); /* raw mode, should ~/.editrc delay it */
  fflush(stdout);
  uv_poll_init(u->loop, &in->poll, 0);
  in->poll.data = in;
  uv_poll_start(&in->poll, UV_READABLE, on_poll);
  uv_signal_init(u->loop, &in->tstp);
  in->tstp.data = in;
  uv_signal_start(&in->tstp, on_tstp, SIGTSTP);
  uv_signal_init(u->loop, &in->winch);
  in->winch.data = in;
  uv_signal_start(&in->winch, on_winch, SIGWINCH);
  return 0;
}

void chat__input_prompt_changed(chat_client_t *c) {
  prompt_t *in = &g_pr;
  if (!in->started || in->stopped)
    return;
  if (!in->hidden)
    wipe_line(in); /* as wide as the old prompt */
  set_prompt(c, in);
  if (!in->hidden) {
    el_set(in->el, EL_REFRESH);
    fflush(stdout);
  }
}

void chat__input_hide(void) {
  prompt_t *in = &g_pr;
  if (!in->started || in->stopped || in->hidden)
    return;
  in->hidden = 1;
  wipe_line(in); /* not flushed: see chat__input_show */
}

void chat__input_show(void) {
  prompt_t *in = &g_pr;
  if (!in->started || in->stopped || !in->hidden)
    return;
  in->hidden = 0;
  /* stdout is fully buffered on a terminal (main.c): the wipe, the event
   * and the redrawn line leave in one write, so the screen never shows
   * the line missing. */
  el_set(in->el, EL_REFRESH); /* prompt, half-typed line, cursor */
  fflush(stdout);
}

void chat__prompt_stop(void) {
  prompt_t *in = &g_pr;
  if (!in->started || in->stopped)
    return;
  in->stopped = 1;
  uv_close((uv_handle_t *)&in->poll, NULL);
  uv_close((uv_handle_t *)&in->tstp, NULL);
  uv_close((uv_handle_t *)&in->winch, NULL);
  wipe_line(in);
  el_end(in->el); /* gives the terminal back */
  history_end(in->hist);
  in->el = NULL;
  in->hist = NULL;
}

int chat__input_password(char *buf, size_t len) {
  struct termios old, quiet;
  size_t n = 0;
  char ch;
  int rc = 0;

  if (tcgetattr(0, &old) < 0)
    return -errno;
  quiet = old;
  quiet.c_lflag &= ~(tcflag_t)ECHO;
  quiet.c_lflag |= ECHONL;
  fputs("password: ", stderr);
  fflush(stderr);
  tcsetattr(0, TCSAFLUSH, &quiet);
  /* Byte by byte: nothing after the newline may be swallowed by a buffer. */
  for (;;) {
    ssize_t r = read(0, &ch, 1);
    if (r < 0 && errno == EINTR)
      continue;
    if (r <= 0) {
      rc = -EIO;
      break;
    }
    if (ch == '\n' || ch == '\r')
      break;
    if (n + 1 < len)
      buf[n++] = ch;
  }
  buf[n] = '\0';
  tcsetattr(0, TCSAFLUSH, &old);
  return rc;
}
