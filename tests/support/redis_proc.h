/* redis_proc.h -- a redis-server of the test's own: a fresh temporary
 * directory, a free loopback port, durable settings (appendonly yes,
 * appendfsync always, no RDB snapshots), stopped and reaped by the test.
 * Header-only, static functions, no hiredis (a raw socket speaks inline
 * commands), so unit and integration tests alike can include it.
 *
 * Never a system service: the server runs in the foreground as the test's
 * child, with PR_SET_PDEATHSIG so it dies with a test that crashes, and
 * every one still running is killed and reaped at exit.
 *
 *   rp_t r;
 *   const char *why = rp_missing();      // NULL, or why there is none
 *   if (rp_start(&r, NULL) != 0) ...     // r.url is redis://127.0.0.1:P
 *   rp_stop(&r, SIGKILL); rp_restart(&r); // same directory and port
 *   rp_free(&r);                         // stops, removes the directory
 */
#ifndef TEST_REDIS_PROC_H
#define TEST_REDIS_PROC_H

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "free_port.h"

#define RP_DEADLINE_MS 15000
#define RP_MAX_EXTRA 16
#define RP_MAX_LIVE 8

typedef struct rp {
  pid_t pid;         /* 0 when not running */
  int port;
  char dir[256];     /* its working directory (data and log) */
  char url[64];      /* redis://127.0.0.1:PORT */
  char *extra[RP_MAX_EXTRA + 1];
} rp_t;

static pid_t rp__live[RP_MAX_LIVE];

static inline long long rp__now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static inline void rp__kill_all(void) {
  for (int i = 0; i < RP_MAX_LIVE; i++)
    if (rp__live[i] > 0) {
      kill(rp__live[i], SIGKILL);
      waitpid(rp__live[i], NULL, 0);
      rp__live[i] = 0;
    }
}

static inline void rp__track(pid_t pid, pid_t gone) {
  static int registered;
  if (!registered) {
    registered = 1;
    atexit(rp__kill_all);
  }
  for (int i = 0; i < RP_MAX_LIVE; i++)
    if (rp__live[i] == gone) {
      rp__live[i] = pid;
      return;
    }
}

/* The redis-server to run ($CHAT_REDIS_SERVER, else the first on PATH or
 * in /usr/sbin), or NULL. */
static inline const char *rp_binary(void) {
  static char found[512];
  const char *env = getenv("CHAT_REDIS_SERVER");
  if (env != NULL && *env != '\0')
    return access(env, X_OK) == 0 ? env : NULL;
  const char *path = getenv("PATH");
  char dirs[4096];
  snprintf(dirs, sizeof(dirs), "%s:/usr/sbin:/usr/local/sbin",
           path != NULL ? path : "/usr/bin:/bin");
  for (char *save = NULL, *d = strtok_r(dirs, ":", &save); d != NULL;
       d = strtok_r(NULL, ":", &save)) {
    snprintf(found, sizeof(found), "%s/redis-server", d);
    if (access(found, X_OK) == 0)
      return found;
  }
  return NULL;
}

/* NULL when a redis-server can be run, else the reason (for a skip). */
static inline const char *rp_missing(void) {
  return rp_binary() != NULL
             ? NULL
             : "redis-server not found (apt-get install redis-server, or "
               "set CHAT_REDIS_SERVER)";
}

/* Sends one inline command and reads the first line of the reply into
 * out (CRLF stripped). 0, or -1 (no connection, no reply in time). */
static inline int rp_cmd(const rp_t *r, const char *cmd, char *out,
                         size_t outlen) {
  struct sockaddr_in sa;
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), ret = -1;
  size_t got = 0;
  memset(&sa, 0, sizeof(sa));
  sa.sin_family = AF_INET;
  sa.sin_port = htons((uint16_t)r->port);
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (outlen > 0)
    out[0] = '\0';
  if (fd < 0)
    return -1;
  if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0)
    goto out;
  char line[1024];
  int n = snprintf(line, sizeof(line), "%s\r\n", cmd);
  if (n <= 0 || write(fd, line, (size_t)n) != n)
    goto out;
  long long deadline = rp__now_ms() + RP_DEADLINE_MS;
  while (got + 1 < outlen) {
    struct pollfd p = {fd, POLLIN, 0};
    long long left = deadline - rp__now_ms();
    if (left <= 0 || poll(&p, 1, (int)left) <= 0)
      goto out;
    ssize_t k = read(fd, out + got, 1);
    if (k <= 0)
      goto out;
    if (out[got] == '\n') {
      out[got > 0 && out[got - 1] == '\r' ? got - 1 : got] = '\0';
      ret = 0;
      goto out;
    }
    got++;
  }
out:
  close(fd);
  return ret;
}

static inline void rp__launch(rp_t *r) {
  char port[16], logf[320];
  const char *argv[32 + RP_MAX_EXTRA];
  int n = 0;
  snprintf(port, sizeof(port), "%d", r->port);
  snprintf(logf, sizeof(logf), "%s/redis.log", r->dir);
  argv[n++] = rp_binary();
  argv[n++] = "--port";
  argv[n++] = port;
  argv[n++] = "--bind";
  argv[n++] = "127.0.0.1";
  argv[n++] = "--dir";
  argv[n++] = r->dir;
  argv[n++] = "--appendonly";
  argv[n++] = "yes";
  argv[n++] = "--appendfsync";
  argv[n++] = "always";
  argv[n++] = "--save";
  argv[n++] = "";
  argv[n++] = "--daemonize";
  argv[n++] = "no";
  for (int i = 0; r->extra[i] != NULL; i++)
    argv[n++] = r->extra[i];
  argv[n] = NULL;
  pid_t parent = getpid();
  pid_t pid = fork();
  if (pid == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent)
      _exit(127);
    int fd = open(logf, O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (fd >= 0) {
      dup2(fd, 1);
      dup2(fd, 2);
      close(fd);
    }
    int null = open("/dev/null", O_RDONLY);
    if (null >= 0)
      dup2(null, 0);
    execv(argv[0], (char *const *)argv);
    _exit(127);
  }
  r->pid = pid > 0 ? pid : 0;
  if (pid > 0)
    rp__track(pid, 0);
}

/* Waits for PONG (not LOADING) within the deadline, or for the child to
 * end. 0 or -1. */
static inline int rp__wait_ready(rp_t *r) {
  long long deadline = rp__now_ms() + RP_DEADLINE_MS;
  char reply[256];
  while (rp__now_ms() < deadline) {
    int st;
    if (waitpid(r->pid, &st, WNOHANG) == r->pid) {
      rp__track(0, r->pid);
      r->pid = 0;
      return -1;
    }
    if (rp_cmd(r, "PING", reply, sizeof(reply)) == 0 &&
        strcmp(reply, "+PONG") == 0)
      return 0;
    struct timespec ts = {0, 5 * 1000000}; /* the next look, not a guess */
    nanosleep(&ts, NULL);
  }
  return -1;
}

/* Prints the end of its log to stderr, for a failing test. */
static inline void rp_dump(const rp_t *r) {
  char path[320], buf[4096];
  snprintf(path, sizeof(path), "%s/redis.log", r->dir);
  FILE *f = fopen(path, "r");
  if (f == NULL)
    return;
  fseek(f, 0, SEEK_END);
  long size = ftell(f);
  fseek(f, size > (long)sizeof(buf) - 1 ? size - (long)sizeof(buf) + 1 : 0,
        SEEK_SET);
  size_t n = fread(buf, 1, sizeof(buf) - 1, f);
  buf[n] = '\0';
  fclose(f);
  fprintf(stderr, "---- redis-server log (%s) ----\n%s---- end ----\n",
          r->dir, buf);
}

/* Stops it with sig and reaps it (SIGKILL after the deadline). 0. */
static inline int rp_stop(rp_t *r, int sig) {
  if (r->pid <= 0)
    return 0;
  kill(r->pid, sig);
  long long deadline = rp__now_ms() + RP_DEADLINE_MS;
  for (;;) {
    if (waitpid(r->pid, NULL, WNOHANG) == r->pid)
      break;
    if (rp__now_ms() >= deadline) {
      kill(r->pid, SIGKILL);
      waitpid(r->pid, NULL, 0);
      break;
    }
    struct timespec ts = {0, 2 * 1000000};
    nanosleep(&ts, NULL);
  }
  rp__track(0, r->pid);
  r->pid = 0;
  return 0;
}

/* Starts it again on the same directory and port. 0 or -1. */
static inline int rp_restart(rp_t *r) {
  rp_stop(r, SIGKILL);
  rp__launch(r);
  if (r->pid <= 0 || rp__wait_ready(r) != 0) {
    rp_dump(r);
    return -1;
  }
  return 0;
}

static inline int rp__rm(const char *path, const struct stat *st, int flag,
                  struct FTW *ftw) {
  (void)st;
  (void)flag;
  (void)ftw;
  remove(path);
  return 0;
}

/* Stops it and removes its directory. */
static inline void rp_free(rp_t *r) {
  rp_stop(r, SIGKILL);
  if (r->dir[0] != '\0')
    nftw(r->dir, rp__rm, 16, FTW_DEPTH | FTW_PHYS);
  for (int i = 0; r->extra[i] != NULL; i++)
    free(r->extra[i]);
  memset(r, 0, sizeof(*r));
}

/* A fresh redis-server with the NULL-terminated extra arguments (which
 * come last, so "--appendonly", "no" overrides). 0, or -1 with the
 * reason on stderr. */
static inline int rp_start(rp_t *r, const char *const extra[]) {
  memset(r, 0, sizeof(*r));
  if (rp_binary() == NULL) {
    fprintf(stderr, "%s\n", rp_missing());
    return -1;
  }
  for (int i = 0; extra != NULL && extra[i] != NULL && i < RP_MAX_EXTRA; i++)
    r->extra[i] = strdup(extra[i]);
  const char *tmp = getenv("TMPDIR");
  snprintf(r->dir, sizeof(r->dir), "%s/chat-redis-XXXXXX",
           tmp != NULL && *tmp != '\0' ? tmp : "/tmp");
  if (mkdtemp(r->dir) == NULL) {
    fprintf(stderr, "mkdtemp %s: %s\n", r->dir, strerror(errno));
    r->dir[0] = '\0';
    return -1;
  }
  /* A port free a moment ago may be taken by then (other tests run in
   * parallel): a few tries with a new one. */
  for (int attempt = 0; attempt < 3; attempt++) {
    if ((r->port = fp_free_port()) <= 0)
      continue;
    snprintf(r->url, sizeof(r->url), "redis://127.0.0.1:%d", r->port);
    rp__launch(r);
    if (r->pid > 0 && rp__wait_ready(r) == 0)
      return 0;
    rp_stop(r, SIGKILL);
  }
  rp_dump(r);
  fprintf(stderr, "redis-server did not start (log above)\n");
  return -1;
}

#endif /* TEST_REDIS_PROC_H */
