/* hasher.c -- the hashing helper process: fork, the child's slots, calls.
 *
 * A call takes a free connection, sends one request datagram and waits for
 * the one answer; SOCK_SEQPACKET keeps the boundaries, so neither side
 * parses a stream. Passwords cross in fixed-size records that both sides
 * wipe after use. */
#include "hasher.h"

#include "hash.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <sodium.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "chat_protocol.h" /* CHAT_MAX_PASSWORD */

typedef struct hasher_req {
  uint8_t verify;
  uint8_t cost;
  uint16_t pwlen;
  char hash[crypto_pwhash_STRBYTES];
  char password[CHAT_MAX_PASSWORD + 1];
} hasher_req_t;

typedef struct hasher_resp {
  int32_t status;
  char hash[crypto_pwhash_STRBYTES];
} hasher_resp_t;

struct chat__hasher {
  pid_t pid;
  unsigned nslots;
  int *fds;           /* the parent's ends, all of them */
  pthread_mutex_t mu; /* guards idle */
  int *idle;          /* ends no call is using */
  unsigned nidle;
  atomic_int dead;    /* a call saw the helper gone */
};

/* ---- the child ----------------------------------------------------------- */

static void serve(hasher_req_t *rq, hasher_resp_t *rs) {
  memset(rs, 0, sizeof(*rs));
  rq->hash[sizeof(rq->hash) - 1] = '\0';
  if (rq->pwlen > CHAT_MAX_PASSWORD) {
    rs->status = -E2BIG;
    return;
  }
  rq->password[rq->pwlen] = '\0';
  if (rq->verify)
    rs->status =
        crypto_pwhash_str_verify(rq->hash, rq->password, rq->pwlen) == 0
            ? 0
            : -EACCES;
  else
    rs->status = chat__hash_make_sync((chat_server_hash_cost_t)rq->cost,
                                      rq->password, rs->hash,
                                      sizeof(rs->hash));
}

/* One per connection. The parent closing its end (shutdown, or its death)
 * ends the whole helper. */
static void *slot_main(void *arg) {
  int fd = (int)(intptr_t)arg;
  hasher_req_t rq;
  hasher_resp_t rs;
  ssize_t n;

  for (;;) {
    n = recv(fd, &rq, sizeof(rq), 0);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      _exit(0);
    if ((size_t)n != sizeof(rq)) {
      memset(&rs, 0, sizeof(rs));
      rs.status = -EPROTO;
    } else {
      serve(&rq, &rs);
    }
    sodium_memzero(&rq, sizeof(rq));
    do
      n = send(fd, &rs, sizeof(rs), MSG_NOSIGNAL);
    while (n < 0 && errno == EINTR);
    sodium_memzero(&rs, sizeof(rs));
    if (n < 0)
      _exit(0);
  }
  return NULL;
}

static void __attribute__((noreturn))
child_main(pid_t parent, const int *fds, unsigned n) {
  struct sched_param sp = {0};
  pthread_t t;
  unsigned i;

  (void)prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (getppid() != parent) /* it died before the line above */
    _exit(0);
  (void)prctl(PR_SET_NAME, "chat-hasher");
  /* The terminal's ^C reaches the whole process group; the parent's own
   * shutdown ends the helper when its running hashes are done. */
  signal(SIGINT, SIG_IGN);
  signal(SIGTERM, SIG_IGN);
  signal(SIGHUP, SIG_IGN);
  signal(SIGPIPE, SIG_IGN);
  /* Idle class for the whole helper, inherited by its threads: hashes run
   * only on a core the server and its clients leave free. */
  (void)setpriority(PRIO_PROCESS, 0, 10);
  (void)sched_setscheduler(0, SCHED_IDLE, &sp);
  if (sodium_init() < 0)
    _exit(1);
  for (i = 1; i < n; i++)
    if (pthread_create(&t, NULL, slot_main, (void *)(intptr_t)fds[i]) != 0)
      _exit(1); /* the parent sees EPIPE and hashes in-process */
  slot_main((void *)(intptr_t)fds[0]);
  _exit(0);
}

/* ---- the parent ---------------------------------------------------------- */

int chat__hasher_start(unsigned nslots, chat__hasher_t **out) {
  chat__hasher_t *h;
  int *theirs;
  unsigned i, made = 0;
  int r = 0, sv[2];
  pid_t pid, self = getpid();

  *out = NULL;
  if (nslots == 0)
    return -EINVAL;
  h = calloc(1, sizeof(*h));
  theirs = calloc(nslots, sizeof(*theirs));
  if (h == NULL || theirs == NULL ||
      (h->fds = calloc(nslots, sizeof(*h->fds))) == NULL ||
      (h->idle = calloc(nslots, sizeof(*h->idle))) == NULL) {
    r = -ENOMEM;
    goto fail;
  }
  for (; made < nslots; made++) {
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) {
      r = -errno;
      goto fail;
    }
    h->fds[made] = sv[0];
    theirs[made] = sv[1];
  }
  pid = fork();
  if (pid < 0) {
    r = -errno;
    goto fail;
  }
  if (pid == 0) {
    for (i = 0; i < nslots; i++)
      close(h->fds[i]);
    child_main(self, theirs, nslots);
  }
  for (i = 0; i < nslots; i++) {
    close(theirs[i]);
    h->idle[i] = h->fds[i];
  }
  free(theirs);
  h->pid = pid;
  h->nslots = h->nidle = nslots;
  pthread_mutex_init(&h->mu, NULL);
  *out = h;
  return 0;

fail:
  for (i = 0; i < made; i++) {
    close(h->fds[i]);
    close(theirs[i]);
  }
  if (h != NULL) {
    free(h->fds);
    free(h->idle);
  }
  free(theirs);
  free(h);
  return r;
}

static int exchange(int fd, const hasher_req_t *rq, hasher_resp_t *rs) {
  ssize_t n;

  do
    n = send(fd, rq, sizeof(*rq), MSG_NOSIGNAL);
  while (n < 0 && errno == EINTR);
  if (n != (ssize_t)sizeof(*rq))
    return -EPIPE;
  do
    n = recv(fd, rs, sizeof(*rs), 0);
  while (n < 0 && errno == EINTR);
  if (n != (ssize_t)sizeof(*rs))
    return -EPIPE; /* 0: the helper exited; short: it is not ours */
  return 0;
}

int chat__hasher_call(chat__hasher_t *h, int verify,
                      chat_server_hash_cost_t cost, const char *password,
                      char *hash, size_t hashlen) {
  hasher_req_t rq;
  hasher_resp_t rs;
  size_t pwlen = strlen(password);
  int fd, r;

  if (atomic_load(&h->dead))
    return -EPIPE;
  if (pwlen > CHAT_MAX_PASSWORD || hashlen < sizeof(rs.hash) ||
      (verify && strlen(hash) >= sizeof(rq.hash)))
    return -E2BIG;
  pthread_mutex_lock(&h->mu);
  fd = h->nidle > 0 ? h->idle[--h->nidle] : -1;
  pthread_mutex_unlock(&h->mu);
  if (fd < 0)
    return -EBUSY;

  memset(&rq, 0, sizeof(rq));
  rq.verify = verify != 0;
  rq.cost = (uint8_t)cost;
  rq.pwlen = (uint16_t)pwlen;
  memcpy(rq.password, password, pwlen);
  if (verify)
    memcpy(rq.hash, hash, strlen(hash));
  r = exchange(fd, &rq, &rs);
  sodium_memzero(&rq, sizeof(rq));
  if (r < 0) {
    atomic_store(&h->dead, 1); /* the connection stays out of idle */
    return r;
  }
  pthread_mutex_lock(&h->mu);
  h->idle[h->nidle++] = fd;
  pthread_mutex_unlock(&h->mu);
  r = rs.status;
  if (r == 0 && !verify)
    memcpy(hash, rs.hash, sizeof(rs.hash));
  sodium_memzero(&rs, sizeof(rs));
  return r;
}

pid_t chat__hasher_pid(const chat__hasher_t *h) { return h->pid; }

void chat__hasher_free(chat__hasher_t *h) {
  unsigned i;

  if (h == NULL)
    return;
  for (i = 0; i < h->nslots; i++)
    close(h->fds[i]);
  /* Closing alone would let it finish a hash first; nothing waits for it. */
  kill(h->pid, SIGKILL);
  while (waitpid(h->pid, NULL, 0) < 0 && errno == EINTR)
    ;
  pthread_mutex_destroy(&h->mu);
  free(h->fds);
  free(h->idle);
  free(h);
}
