/* server.c -- a chat-server under test: fresh temp database, port 0, the port
 * learnt from its "listening on" log line, restart on the same database. */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "harness.h"
#include "../../support/free_port.h"

#define START_DEADLINE_MS 20000
#define STOP_DEADLINE_MS 20000
#define MAX_EXTRA 32

struct th_server {
  th_proc_t *proc;
  int port;
  char dir[256];
  char db[300];
  char *extra[MAX_EXTRA + 1];
};

/* Live servers, so a failing client expectation can show their logs. */
#define MAX_SERVERS 16
static th_server_t *servers[MAX_SERVERS];

void th__server_dump_all(void) {
  for (int i = 0; i < MAX_SERVERS; i++)
    if (servers[i])
      th_server_dump(servers[i]);
}

static void launch(th_server_t *s) {
  const char *argv[16 + MAX_EXTRA];
  int n = 0;
  argv[n++] = CHAT_BIN_DIR "/chat-server";
  argv[n++] = "--listen";
  argv[n++] = "127.0.0.1:0";
  argv[n++] = "--db";
  argv[n++] = s->db;
  argv[n++] = "--hash-cost";
  argv[n++] = "min";
  for (int i = 0; s->extra[i]; i++)
    argv[n++] = s->extra[i];
  argv[n] = NULL;
  s->proc = th_proc_spawn(argv, NULL);
  const char *l =
      th_proc_wait_line(s->proc, TH_STDERR, "listening on ", START_DEADLINE_MS);
  if (l == NULL) {
    th_server_dump(s);
    fail_msg("chat-server did not log 'listening on' within %d ms",
             START_DEADLINE_MS);
  }
  const char *a = strstr(l, "listening on ") + strlen("listening on ");
  const char *end = a + strcspn(a, " \t");
  const char *colon = NULL;
  for (const char *q = a; q < end; q++)
    if (*q == ':')
      colon = q;
  s->port = colon ? atoi(colon + 1) : 0;
  if (s->port <= 0 || s->port > 65535)
    fail_msg("cannot read the port from: %s", l);
}

th_server_t *th_server_start(const char *const extra[]) {
  th_server_t *s = calloc(1, sizeof(*s));
  if (s == NULL)
    abort();
  const char *tmp = getenv("TMPDIR");
  snprintf(s->dir, sizeof(s->dir), "%s/chat-it-XXXXXX",
           tmp && *tmp ? tmp : "/tmp");
  if (mkdtemp(s->dir) == NULL)
    fail_msg("mkdtemp %s: %s", s->dir, strerror(errno));
  snprintf(s->db, sizeof(s->db), "%s/chat.db", s->dir);
  for (int i = 0; extra && extra[i]; i++) {
    if (i == MAX_EXTRA)
      fail_msg("too many server args");
    s->extra[i] = strdup(extra[i]);
  }
  for (int i = 0; i < MAX_SERVERS; i++)
    if (servers[i] == NULL) {
      servers[i] = s;
      break;
    }
  launch(s);
  return s;
}

int th_server_port(const th_server_t *s) { return s->port; }
th_proc_t *th_server_proc(th_server_t *s) { return s->proc; }
const char *th_server_db(const th_server_t *s) { return s->db; }

int th_server_stop(th_server_t *s, int sig) {
  if (s->proc == NULL)
    return -1;
  th_proc_signal(s->proc, sig);
  if (th_proc_wait(s->proc, STOP_DEADLINE_MS, NULL) != 0) {
    th_server_dump(s);
    fail_msg("chat-server did not exit within %d ms of signal %d",
             STOP_DEADLINE_MS, sig);
  }
  int code = th_proc_exit_code(s->proc);
  if (getenv("TH_SHOW_LOGS"))
    th_server_dump(s);
  else if (sig != SIGKILL && code != 0)
    th_server_dump(s); /* e.g. a leak report from an ASan build */
  return code;
}

void th_server_restart(th_server_t *s, int sig) {
  if (s->proc && th_proc_exit_code(s->proc) < 0)
    th_server_stop(s, sig);
  th_proc_free(s->proc);
  s->proc = NULL;
  launch(s);
}

void th_server_dump(th_server_t *s) {
  if (s == NULL || s->proc == NULL)
    return;
  fprintf(stderr, "---- chat-server log (pid %d) ----\n%s---- end ----\n",
          (int)th_proc_pid(s->proc), th_proc_output(s->proc, TH_STDERR));
}

static void rm_dir(const char *dir) {
  DIR *d = opendir(dir);
  if (d == NULL)
    return;
  struct dirent *e;
  char path[512];
  while ((e = readdir(d)) != NULL) {
    if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
      continue;
    snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
    unlink(path);
  }
  closedir(d);
  rmdir(dir);
}

void th_server_free(th_server_t *s) {
  if (s == NULL)
    return;
  if (s->proc && getenv("TH_SHOW_LOGS"))
    th_server_dump(s);
  for (int i = 0; i < MAX_SERVERS; i++)
    if (servers[i] == s)
      servers[i] = NULL;
  th_proc_free(s->proc);
  rm_dir(s->dir);
  for (int i = 0; s->extra[i]; i++)
    free(s->extra[i]);
  free(s);
}

int th_free_port(void) {
  int port = fp_free_port();
  if (port < 0)
    fail_msg("no free loopback port");
  return port;
}

