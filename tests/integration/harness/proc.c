/* proc.c -- child processes for integration tests: spawn with pipes, read
 * their output line by line with deadlines, and never leave one behind.
 *
 * One background thread drains every child's stdout and stderr into buffers
 * (under one mutex, with a condition variable for readers), so a child that
 * logs a lot never blocks on a full pipe while the test talks to it over a
 * socket. A registry of live children is killed and reaped at exit, from
 * fatal signal handlers, and each child also dies with its parent
 * (PR_SET_PDEATHSIG).
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "harness.h"

#define MAX_PROCS 256
#define LOG_KEEP (256 * 1024)     /* bytes of output kept for display */
#define PENDING_MAX (16 << 20)    /* unread output kept for line readers */

extern char **environ;

typedef struct stream {
  int fd;          /* -1 once at end */
  char *pend;      /* unread bytes */
  size_t pend_len, pend_cap;
  char *log;       /* the last bytes, for display */
  size_t log_len, log_cap;
  char *line;      /* the line last returned to the test */
} stream_t;

struct th_proc {
  pid_t pid;
  int in_fd;
  int status;
  int reaped;
  stream_t out, err;
};

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static th_proc_t *procs[MAX_PROCS];
/* Read by signal handlers without the lock: pids only, 0 for a free slot. */
static volatile pid_t pids[MAX_PROCS];
static int wake_pipe[2] = {-1, -1};
static int started;

long long th_now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void buf_append(char **buf, size_t *len, size_t *cap, const char *d,
                       size_t n) {
  if (*len + n + 1 > *cap) {
    size_t ncap = *cap ? *cap : 4096;
    while (*len + n + 1 > ncap)
      ncap *= 2;
    char *nb = realloc(*buf, ncap);
    if (nb == NULL)
      abort();
    *buf = nb;
    *cap = ncap;
  }
  memcpy(*buf + *len, d, n);
  *len += n;
  (*buf)[*len] = '\0';
}

static void stream_add(stream_t *s, const char *d, size_t n) {
  buf_append(&s->pend, &s->pend_len, &s->pend_cap, d, n);
  if (s->pend_len > PENDING_MAX) { /* nobody reads it: keep the newest half */
    size_t drop = s->pend_len - PENDING_MAX / 2;
    memmove(s->pend, s->pend + drop, s->pend_len - drop + 1);
    s->pend_len -= drop;
  }
  buf_append(&s->log, &s->log_len, &s->log_cap, d, n);
  if (s->log_len > 2 * LOG_KEEP) {
    size_t drop = s->log_len - LOG_KEEP;
    memmove(s->log, s->log + drop, s->log_len - drop + 1);
    s->log_len -= drop;
  }
}

static stream_t *stream_by_fd(int fd) {
  for (int i = 0; i < MAX_PROCS; i++) {
    if (procs[i] == NULL)
      continue;
    if (procs[i]->out.fd == fd)
      return &procs[i]->out;
    if (procs[i]->err.fd == fd)
      return &procs[i]->err;
  }
  return NULL;
}

static void *drain_main(void *arg) {
  struct pollfd pfd[2 * MAX_PROCS + 1];
  char chunk[65536];
  for (;;) {
    nfds_t n = 0;
    pfd[n].fd = wake_pipe[0];
    pfd[n++].events = POLLIN;
    pthread_mutex_lock(&mu);
    for (int i = 0; i < MAX_PROCS; i++) {
      if (procs[i] == NULL)
        continue;
      if (procs[i]->out.fd >= 0) {
        pfd[n].fd = procs[i]->out.fd;
        pfd[n++].events = POLLIN;
      }
      if (procs[i]->err.fd >= 0) {
        pfd[n].fd = procs[i]->err.fd;
        pfd[n++].events = POLLIN;
      }
    }
    pthread_mutex_unlock(&mu);
    if (poll(pfd, n, -1) < 0) {
      if (errno == EINTR)
        continue;
      abort();
    }
    if (pfd[0].revents) {
      while (read(wake_pipe[0], chunk, sizeof(chunk)) > 0) {
      }
    }
    pthread_mutex_lock(&mu);
    for (nfds_t i = 1; i < n; i++) {
      if (pfd[i].revents == 0)
        continue;
      /* Looked up again: the proc may have been freed (and the fd number
       * reused by a newer child, which then owns the data) meanwhile. */
      stream_t *s = stream_by_fd(pfd[i].fd);
      if (s == NULL)
        continue;
      ssize_t r = read(s->fd, chunk, sizeof(chunk));
      if (r > 0) {
        stream_add(s, chunk, (size_t)r);
      } else if (r == 0 || (errno != EAGAIN && errno != EINTR)) {
        close(s->fd);
        s->fd = -1;
      }
    }
    pthread_cond_broadcast(&cv);
    pthread_mutex_unlock(&mu);
  }
  return NULL;
}

static void kill_pids_signal_safe(void) {
  for (int i = 0; i < MAX_PROCS; i++)
    if (pids[i] > 0)
      kill(-pids[i], SIGKILL);
}

static void on_fatal_signal(int sig) {
  kill_pids_signal_safe();
  signal(sig, SIG_DFL);
  raise(sig);
}

static void at_exit(void) { th_proc_kill_all(); }

static void start_once(void) {
  if (started)
    return;
  started = 1;
  if (pipe(wake_pipe) != 0)
    abort();
  fcntl(wake_pipe[0], F_SETFL, O_NONBLOCK);
  fcntl(wake_pipe[1], F_SETFL, O_NONBLOCK);
  fcntl(wake_pipe[0], F_SETFD, FD_CLOEXEC);
  fcntl(wake_pipe[1], F_SETFD, FD_CLOEXEC);
  signal(SIGPIPE, SIG_IGN); /* a dead child's stdin or socket: an -EPIPE */
  signal(SIGABRT, on_fatal_signal);
  signal(SIGTERM, on_fatal_signal);
  signal(SIGINT, on_fatal_signal);
  signal(SIGHUP, on_fatal_signal);
  atexit(at_exit);
  pthread_t t;
  if (pthread_create(&t, NULL, drain_main, NULL) != 0)
    abort();
  pthread_detach(t);
}

static void wake(void) {
  char b = 1;
  ssize_t r = write(wake_pipe[1], &b, 1);
  (void)r;
}

/* Builds environ + overrides; the strings are borrowed. */
static char **make_env(const char *const env[]) {
  size_t n = 0, m = 0;
  while (environ[n])
    n++;
  while (env && env[m])
    m++;
  char **e = calloc(n + m + 1, sizeof(*e));
  if (e == NULL)
    abort();
  size_t k = 0;
  for (size_t i = 0; i < n; i++) {
    const char *eq = strchr(environ[i], '=');
    size_t nl = eq ? (size_t)(eq - environ[i]) : strlen(environ[i]);
    int overridden = 0;
    for (size_t j = 0; j < m; j++)
      if (strncmp(env[j], environ[i], nl) == 0 && env[j][nl] == '=')
        overridden = 1;
    if (!overridden)
      e[k++] = environ[i];
  }
  for (size_t j = 0; j < m; j++)
    e[k++] = (char *)env[j];
  return e;
}

th_proc_t *th_proc_spawn(const char *const argv[], const char *const env[]) {
  int in[2], out[2], err[2];
  pthread_mutex_lock(&mu);
  start_once();
  pthread_mutex_unlock(&mu);
  if (pipe2(in, O_CLOEXEC) || pipe2(out, O_CLOEXEC) || pipe2(err, O_CLOEXEC))
    fail_msg("pipe: %s", strerror(errno));
  char **envp = make_env(env);
  pid_t parent = getpid();
  pid_t pid = fork();
  if (pid < 0)
    fail_msg("fork: %s", strerror(errno));
  if (pid > 0)
    setpgid(pid, pid); /* also here: no race with a kill of the group */
  if (pid == 0) {
    setpgid(0, 0); /* its own group, so its children die with it */
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent)
      _exit(127);
    signal(SIGPIPE, SIG_DFL);
    signal(SIGABRT, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
    signal(SIGINT, SIG_DFL);
    signal(SIGHUP, SIG_DFL);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    dup2(in[0], 0);
    dup2(out[1], 1);
    dup2(err[1], 2);
    execve(argv[0], (char *const *)argv, envp);
    dprintf(2, "exec %s: %s\n", argv[0], strerror(errno));
    _exit(127);
  }
  free(envp);
  close(in[0]);
  close(out[1]);
  close(err[1]);
  fcntl(out[0], F_SETFL, O_NONBLOCK);
  fcntl(err[0], F_SETFL, O_NONBLOCK);
  th_proc_t *p = calloc(1, sizeof(*p));
  if (p == NULL)
    abort();
  p->pid = pid;
  p->in_fd = in[1];
  p->out.fd = out[0];
  p->err.fd = err[0];
  pthread_mutex_lock(&mu);
  int slot = -1;
  for (int i = 0; i < MAX_PROCS && slot < 0; i++)
    if (procs[i] == NULL)
      slot = i;
  if (slot < 0) {
    pthread_mutex_unlock(&mu);
    kill(pid, SIGKILL);
    fail_msg("more than %d child processes", MAX_PROCS);
  }
  procs[slot] = p;
  pids[slot] = pid;
  pthread_mutex_unlock(&mu);
  wake();
  return p;
}

pid_t th_proc_pid(const th_proc_t *p) { return p->pid; }

int th_proc_write(th_proc_t *p, const char *line) {
  size_t n = strlen(line);
  int add_lf = n == 0 || line[n - 1] != '\n';
  if (p->in_fd < 0)
    return -EPIPE;
  while (n > 0) {
    ssize_t r = write(p->in_fd, line, n);
    if (r < 0) {
      if (errno == EINTR)
        continue;
      return -errno;
    }
    line += r;
    n -= (size_t)r;
  }
  if (add_lf && write(p->in_fd, "\n", 1) != 1)
    return -errno;
  return 0;
}

void th_proc_close_stdin(th_proc_t *p) {
  if (p->in_fd >= 0)
    close(p->in_fd);
  p->in_fd = -1;
}

static stream_t *stream_of(th_proc_t *p, th_stream_t s) {
  return s == TH_STDERR ? &p->err : &p->out;
}

/* Under mu: takes one complete line out of s, or returns 0. */
static int take_line(stream_t *s) {
  char *nl = s->pend_len ? memchr(s->pend, '\n', s->pend_len) : NULL;
  if (nl == NULL)
    return 0;
  size_t n = (size_t)(nl - s->pend);
  free(s->line);
  s->line = malloc(n + 1);
  if (s->line == NULL)
    abort();
  memcpy(s->line, s->pend, n);
  s->line[n] = '\0';
  memmove(s->pend, nl + 1, s->pend_len - n - 1 + 1);
  s->pend_len -= n + 1;
  return 1;
}

static void deadline_ts(long long deadline_ms, struct timespec *ts) {
  /* cv uses CLOCK_REALTIME; convert the remaining monotonic time. */
  long long left = deadline_ms - th_now_ms();
  if (left < 0)
    left = 0;
  clock_gettime(CLOCK_REALTIME, ts);
  ts->tv_sec += left / 1000;
  ts->tv_nsec += (left % 1000) * 1000000;
  if (ts->tv_nsec >= 1000000000) {
    ts->tv_sec++;
    ts->tv_nsec -= 1000000000;
  }
}

const char *th_proc_read_line(th_proc_t *p, th_stream_t which, int timeout_ms) {
  stream_t *s = stream_of(p, which);
  long long deadline = th_now_ms() + timeout_ms;
  const char *res = NULL;
  pthread_mutex_lock(&mu);
  for (;;) {
    if (take_line(s)) {
      res = s->line;
      break;
    }
    if (s->fd < 0 || th_now_ms() >= deadline)
      break;
    struct timespec ts;
    deadline_ts(deadline, &ts);
    pthread_cond_timedwait(&cv, &mu, &ts);
  }
  pthread_mutex_unlock(&mu);
  return res;
}

const char *th_proc_wait_line(th_proc_t *p, th_stream_t s, const char *needle,
                              int timeout_ms) {
  long long deadline = th_now_ms() + timeout_ms;
  for (;;) {
    long long left = deadline - th_now_ms();
    const char *l = th_proc_read_line(p, s, left > 0 ? (int)left : 0);
    if (l == NULL)
      return NULL;
    if (strstr(l, needle))
      return l;
  }
}

const char *th_proc_output(th_proc_t *p, th_stream_t which) {
  stream_t *s = stream_of(p, which);
  pthread_mutex_lock(&mu);
  const char *r = s->log ? s->log : "";
  if (s->log_len > LOG_KEEP)
    r = s->log + s->log_len - LOG_KEEP;
  pthread_mutex_unlock(&mu);
  return r;
}

int th_proc_signal(th_proc_t *p, int sig) {
  if (p->reaped)
    return -ESRCH;
  return kill(p->pid, sig) == 0 ? 0 : -errno;
}

static void forget_pid(th_proc_t *p) {
  pthread_mutex_lock(&mu);
  for (int i = 0; i < MAX_PROCS; i++)
    if (procs[i] == p)
      pids[i] = 0;
  pthread_mutex_unlock(&mu);
}

int th_proc_wait(th_proc_t *p, int timeout_ms, int *status) {
  long long deadline = th_now_ms() + timeout_ms;
  while (!p->reaped) {
    pid_t r = waitpid(p->pid, &p->status, WNOHANG);
    if (r == p->pid || (r < 0 && errno == ECHILD)) {
      p->reaped = 1;
      forget_pid(p);
      break;
    }
    if (th_now_ms() >= deadline)
      return -ETIMEDOUT;
    struct timespec ts = {0, 2 * 1000000};
    nanosleep(&ts, NULL);
  }
  /* What it wrote before it exited may still be in the pipes: wait until
   * the reader thread has seen both end (within the deadline; a process it
   * left behind holding them only costs the wait), so that
   * th_proc_output() after th_proc_wait() has all of it. */
  pthread_mutex_lock(&mu);
  while ((p->out.fd >= 0 || p->err.fd >= 0) && th_now_ms() < deadline) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_nsec += 10 * 1000000;
    if (ts.tv_nsec >= 1000000000) {
      ts.tv_sec++;
      ts.tv_nsec -= 1000000000;
    }
    pthread_cond_timedwait(&cv, &mu, &ts);
  }
  pthread_mutex_unlock(&mu);
  if (status)
    *status = p->status;
  return 0;
}

int th_proc_exit_code(const th_proc_t *p) {
  if (!p->reaped)
    return -1;
  if (WIFEXITED(p->status))
    return WEXITSTATUS(p->status);
  if (WIFSIGNALED(p->status))
    return 128 + WTERMSIG(p->status);
  return -1;
}

void th_proc_free(th_proc_t *p) {
  if (p == NULL)
    return;
  if (!p->reaped)
    kill(p->pid, SIGKILL);
  kill(-p->pid, SIGKILL); /* whatever it started, too */
  th_proc_wait(p, 60000, NULL);
  th_proc_close_stdin(p);
  pthread_mutex_lock(&mu);
  for (int i = 0; i < MAX_PROCS; i++)
    if (procs[i] == p) {
      procs[i] = NULL;
      pids[i] = 0;
    }
  if (p->out.fd >= 0)
    close(p->out.fd);
  if (p->err.fd >= 0)
    close(p->err.fd);
  pthread_mutex_unlock(&mu);
  wake();
  free(p->out.pend);
  free(p->out.log);
  free(p->out.line);
  free(p->err.pend);
  free(p->err.log);
  free(p->err.line);
  free(p);
}

void th_proc_kill_all(void) {
  th_proc_t *live[MAX_PROCS];
  int n = 0;
  pthread_mutex_lock(&mu);
  for (int i = 0; i < MAX_PROCS; i++)
    if (procs[i])
      live[n++] = procs[i];
  pthread_mutex_unlock(&mu);
  for (int i = 0; i < n; i++)
    th_proc_free(live[i]);
}
