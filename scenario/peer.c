/* peer.c -- the participants' processes: starting the server and clients
 * with the right command lines, watching their output and exits, and
 * stopping every one of them at the end. */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "free_port.h"
#include "run_int.h"

extern char **environ;

void peer_free(peer_t *peer) {
  free(peer->user);
  free(peer->password);
  for (size_t i = 0; i < peer->argc; i++)
    free(peer->argv[i]);
  free(peer->argv);
  chat_scenario_queue_clear(&peer->out);
  chat_scenario_queue_clear(&peer->err);
}

const char *peer_exit_text(const peer_t *peer, char *buf, size_t len) {
  if (!peer->exited)
    snprintf(buf, len, "still running");
  else if (peer->signum != 0)
    snprintf(buf, len, "killed by signal %d (%s)", peer->signum,
             strsignal(peer->signum));
  else
    snprintf(buf, len, "exit status %lld", (long long)peer->status);
  return buf;
}

/* ---- watching processes ---------------------------------------------- */

static int is_sanitizer_report(const char *line) {
  return (strstr(line, "ERROR: ") != NULL && strstr(line, "Sanitizer") != NULL)
      || strstr(line, "runtime error: ") != NULL;
}

static void on_line(chat_scenario_proc_t *p, int fd, const char *line,
                    size_t len, int cut) {
  peer_t *peer = chat_scenario_proc_data(p);
  run_t *r = peer->run;
  int current = peer->proc == p;
  char who[CHAT_SCENARIO_NAME_MAX];
  snprintf(who, sizeof(who), "%s%s", peer->name, current ? "" : "(old)");
  run_note(r, who, fd == 1 ? CHAT_SCENARIO_T_STDOUT : CHAT_SCENARIO_T_STDERR,
           "%s%s", line, cut ? " [cut: line too long]" : "");
  if (fd == 2 && is_sanitizer_report(line))
    run_fail(r, "%s: sanitizer report on stderr: %s", peer->name, line);
  if (!current)
    return;
  chat_scenario_queue_t *q = fd == 1 ? &peer->out : &peer->err;
  int client_out = fd == 1 && peer->index != CHAT_SCENARIO_SERVER;
  if (chat_scenario_queue_push(q, line, len, run_now(r), client_out) == 0 &&
      client_out && q->items[q->n - 1].obj == NULL) {
    peer->not_json++;
    run_note(r, peer->name, CHAT_SCENARIO_T_NOTE,
             "that stdout line is not a JSON object (--json promises one "
             "object per line and nothing else)");
  }
  run_poke(r, peer);
}

static void on_exit_cb(chat_scenario_proc_t *p, int64_t status, int signum) {
  peer_t *peer = chat_scenario_proc_data(p);
  run_t *r = peer->run;
  if (peer->proc != p)
    return;
  peer->exited = 1;
  peer->status = status;
  peer->signum = signum;
  peer->stopped = 0;
  char how[96];
  run_note(r, peer->name, CHAT_SCENARIO_T_NOTE, "exited: %s",
           peer_exit_text(peer, how, sizeof(how)));
  if (peer->teardown && (status != 0 || signum != 0)) {
    run_fail(r, "%s did not stop cleanly on SIGTERM: %s", peer->name, how);
  } else if (signum != 0 && signum != peer->sent_signal) {
    run_fail(r, "%s crashed: %s", peer->name, how);
  } else if (peer->index == CHAT_SCENARIO_SERVER && peer->sent_signal == 0 &&
             !r->tearing_down &&
             !(r->wait == RUN_W_EXIT &&
               node_targets(&r->s->steps[r->pc], peer))) {
    run_fail(r, "%s exited on its own: %s", node_label(r, peer), how);
  }
  run_poke(r, peer);
}

static void drop_proc(run_t *r, chat_scenario_proc_t *p) {
  for (size_t i = 0; i < r->nprocs; i++)
    if (r->procs[i] == p) {
      r->procs[i] = r->procs[--r->nprocs];
      return;
    }
}

static void on_done(chat_scenario_proc_t *p) {
  peer_t *peer = chat_scenario_proc_data(p);
  run_t *r = peer->run;
  drop_proc(r, p);
  if (peer->proc == p) {
    peer->proc = NULL;
    peer->drained = 1;
    if (!peer->exited) { /* abandoned before its exit was seen */
      peer->exited = 1;
      peer->signum = SIGKILL;
    }
    run_poke(r, peer);
  }
  if (r->tearing_down)
    run_teardown(r);
}

static const chat_scenario_proc_cbs_t proc_cbs = {on_line, on_exit_cb,
                                                  on_done};

/* ---- starting processes ---------------------------------------------- */

static int spawn_one(run_t *r, peer_t *peer, const char *prog,
                     const char *path, char **argv, char **env) {
  /* The command line as a person would type it, for the transcript. */
  size_t len = 0;
  for (char **a = argv; *a != NULL; a++)
    len += strlen(*a) + 3;
  char *line = malloc(len + 1);
  if (line == NULL)
    return -ENOMEM;
  line[0] = '\0';
  for (char **a = argv; *a != NULL; a++) {
    int quote = strpbrk(*a, " \t\"'$") != NULL || **a == '\0';
    strcat(line, a == argv ? "" : " ");
    strcat(line, quote ? "'" : "");
    strcat(line, a == argv && r->o->wrap == NULL ? prog : *a);
    strcat(line, quote ? "'" : "");
  }
  run_note(r, peer->name, CHAT_SCENARIO_T_SPAWN, "%s", line);
  free(line);

  chat_scenario_proc_t **procs =
      realloc(r->procs, (r->nprocs + 1) * sizeof(*procs));
  if (procs == NULL)
    return -ENOMEM;
  r->procs = procs;
  chat_scenario_queue_clear(&peer->out);
  chat_scenario_queue_clear(&peer->err);
  peer->exited = peer->drained = peer->stopped = peer->stdin_closed = 0;
  peer->listening = 0;
  peer->sent_signal = peer->signum = 0;
  peer->status = 0;
  peer->not_json = 0;
  peer->started = 1;
  int rc = chat_scenario_proc_spawn(&r->loop, path, argv, env, r->dir,
                                    &proc_cbs, peer, &peer->proc);
  if (rc != 0) {
    peer->proc = NULL;
    peer->exited = peer->drained = 1;
    peer->status = 127;
    run_fail(r, "cannot start %s: %s (is --bin-dir right?)", path,
             uv_strerror(rc));
    return rc;
  }
  r->procs[r->nprocs++] = peer->proc;
  run_note(r, peer->name, CHAT_SCENARIO_T_NOTE, "pid %d",
           chat_scenario_proc_pid(peer->proc));
  return 0;
}

/* --wrap: the program runs as an argument of the wrapper command
 * (e.g. valgrind), which the system finds on PATH. */
static int spawn_wrapped(run_t *r, peer_t *peer, const char *prog,
                         char **argv, char **env) {
  size_t nw = 0, na = 0;
  char **all;
  int rc;

  while (r->o->wrap[nw] != NULL)
    nw++;
  while (argv[na] != NULL)
    na++;
  all = calloc(nw + na + 1, sizeof(*all));
  if (all == NULL)
    return -ENOMEM;
  memcpy(all, r->o->wrap, nw * sizeof(*all));
  memcpy(all + nw, argv, na * sizeof(*all));
  rc = spawn_one(r, peer, prog, all[0], all, env);
  free(all);
  return rc;
}

static int spawn(run_t *r, peer_t *peer, const char *prog, char **argv,
                 char **env) {
  char path[PATH_MAX + 64];
  snprintf(path, sizeof(path), "%s/%s", r->o->bin_dir, prog);
  argv[0] = path;
  if (r->o->wrap != NULL)
    return spawn_wrapped(r, peer, prog, argv, env);
  return spawn_one(r, peer, prog, path, argv, env);
}

static int has_flag(char **flags, size_t n, const char *flag) {
  for (size_t i = 0; i < n; i++)
    if (strcmp(flags[i], flag) == 0)
      return 1;
  return 0;
}

/* chat-server --listen 127.0.0.1:PORT --db DIR/server.db --hash-cost min
 * FLAGS... (each default only when FLAGS do not name it); PORT is one no
 * port 0 bind or outgoing connect can take while the node is down
 * (free_port.h), and a restart listens on the address the node first
 * reported, so clients come back.
 * With --nodes each node also gets --node nK, and they all get the one
 * Redis (without it, a file each). */
int peer_start_server(run_t *r, peer_t *peer) {
  char listen[sizeof(peer->addr)], db[PATH_MAX + 16];
  char cert[PATH_MAX + 16], key[PATH_MAX + 16];
  if (peer->addr[0]) {
    snprintf(listen, sizeof(listen), "%s", peer->addr);
  } else {
    int port = fp_free_port(); /* -1: none; with 0 the server picks */
    snprintf(listen, sizeof(listen), "127.0.0.1:%d", port > 0 ? port : 0);
  }
  if (r->o->nodes > 0)
    snprintf(db, sizeof(db), "%s/server-%s.db", r->dir, peer->name);
  else
    snprintf(db, sizeof(db), "%s/server.db", r->dir);
  char **argv = calloc(r->nserver_flags + 18, sizeof(char *));
  if (argv == NULL)
    return -ENOMEM;
  size_t n = 1;
  if (r->o->tls) {
    /* Clients come back to the TLS address; the plain one nobody uses. */
    snprintf(cert, sizeof(cert), "%s/server.pem", r->dir);
    snprintf(key, sizeof(key), "%s/server.key", r->dir);
    argv[n++] = "--tls-listen";
    argv[n++] = listen;
    argv[n++] = "--tls-cert";
    argv[n++] = cert;
    argv[n++] = "--tls-key";
    argv[n++] = key;
    if (!has_flag(r->server_flags, r->nserver_flags, "--listen")) {
      argv[n++] = "--listen";
      argv[n++] = "127.0.0.1:0";
    }
  }
  if (!r->o->tls && !has_flag(r->server_flags, r->nserver_flags, "--listen")) {
    argv[n++] = "--listen";
    argv[n++] = listen;
  }
  if (!has_flag(r->server_flags, r->nserver_flags, "--db")) {
    argv[n++] = "--db";
    argv[n++] = r->redis != NULL ? (char *)run_redis_url(r) : db;
  }
  /* Scripts register many accounts: the slow hash would dominate them. */
  if (!has_flag(r->server_flags, r->nserver_flags, "--hash-cost")) {
    argv[n++] = "--hash-cost";
    argv[n++] = "min";
  }
  if (r->o->nodes > 0 && !has_flag(r->server_flags, r->nserver_flags,
                                   "--node")) {
    argv[n++] = "--node";
    argv[n++] = (char *)peer->name;
  }
  for (size_t i = 0; i < r->nserver_flags; i++) {
    argv[n++] = r->server_flags[i];
    if (peer->addr[0] && !r->o->tls &&
        strcmp(r->server_flags[i], "--listen") == 0 && i + 1 < r->nserver_flags)
      argv[n++] = listen, i++;
  }
  int rc = spawn(r, peer, "chat-server", argv, NULL);
  free(argv);
  return rc;
}

/* The environment with CHAT_PASSWORD set to password. */
static char **client_env(const char *password) {
  size_t n = 0;
  while (environ[n] != NULL)
    n++;
  char **env = calloc(n + 2, sizeof(char *));
  if (env == NULL)
    return NULL;
  size_t k = 0;
  for (size_t i = 0; i < n; i++)
    if (strncmp(environ[i], "CHAT_PASSWORD=", 14) != 0)
      env[k++] = environ[i];
  size_t len = strlen(password) + 16;
  if ((env[k] = malloc(len)) == NULL) {
    free(env);
    return NULL;
  }
  snprintf(env[k], len, "CHAT_PASSWORD=%s", password);
  return env;
}

static void client_env_free(char **env) {
  size_t k = 0;
  if (env == NULL)
    return;
  while (env[k + 1] != NULL)
    k++;
  free(env[k]); /* the CHAT_PASSWORD entry is the last and the only owned */
  free(env);
}

static int replace(char **slot, const char *value) {
  char *copy = strdup(value);
  if (copy == NULL)
    return -ENOMEM;
  free(*slot);
  *slot = copy;
  return 0;
}

/* chat-client --server ADDR --user USER --json FLAGS..., password in the
 * environment; ADDR is its node's (nodes.c says which, and adds the other
 * nodes' for `failover`). A restart without flags keeps the last ones, user
 * and password included. */
int peer_start_client(run_t *r, peer_t *peer, const chat_scenario_step_t *st) {
  int rc = 0;
  if (st->user != NULL || peer->user == NULL)
    rc = replace(&peer->user, st->user ? st->user : peer->name);
  if (rc == 0 && st->password != NULL)
    rc = replace(&peer->password, st->password);
  for (size_t i = 1; rc == 0 && peer->password == NULL && i < r->npeers; i++)
    if (r->peers[i].password != NULL && r->peers[i].user != NULL &&
        strcmp(r->peers[i].user, peer->user) == 0)
      rc = replace(&peer->password, r->peers[i].password);
  if (rc == 0 && peer->password == NULL) {
    /* Derived from the user name, so two participants logged in as one
     * user agree on it; 8 bytes at least, as the protocol requires. */
    char pw[96];
    snprintf(pw, sizeof(pw), "%s-password", peer->user);
    rc = replace(&peer->password, pw);
  }
  if (rc != 0)
    return rc;
  if (st->argc > 0 || !peer->started) {
    for (size_t i = 0; i < peer->argc; i++)
      free(peer->argv[i]);
    free(peer->argv);
    peer->argc = 0;
    if ((peer->argv = calloc(st->argc + 1, sizeof(char *))) == NULL)
      return -ENOMEM;
    for (size_t i = 0; i < st->argc; i++) {
      char bad[64];
      if ((rc = chat_scenario_vars_expand(&r->vars, st->argv[i],
                                          &peer->argv[peer->argc], bad,
                                          sizeof(bad))) != 0) {
        run_fail(r, "cannot expand '%s'", st->argv[i]);
        return rc;
      }
      peer->argc++;
    }
  }
  char server[CHAT_SCENARIO_MAX_NODES * (sizeof(peer->addr) + 1)];
  if ((rc = node_place(r, peer, st, server, sizeof(server))) != 0)
    return rc;
  char **argv = calloc(peer->argc + 12, sizeof(char *));
  char **env = client_env(peer->password);
  char ca[PATH_MAX + 16];
  if (argv == NULL || env == NULL) {
    free(argv);
    client_env_free(env);
    return -ENOMEM;
  }
  size_t n = 1;
  argv[n++] = "--server";
  argv[n++] = server;
  argv[n++] = "--user";
  argv[n++] = peer->user;
  argv[n++] = "--json";
  if (r->o->tls) {
    snprintf(ca, sizeof(ca), "%s/ca.pem", r->dir);
    argv[n++] = "--tls";
    argv[n++] = "--tls-ca";
    argv[n++] = ca;
  }
  for (size_t i = 0; i < peer->argc; i++)
    argv[n++] = peer->argv[i];
  run_note(r, peer->name, CHAT_SCENARIO_T_NOTE, "CHAT_PASSWORD=%s",
           peer->password);
  rc = spawn(r, peer, "chat-client", argv, env);
  client_env_free(env);
  free(argv);
  return rc;
}

/* ---- signals and teardown -------------------------------------------- */

int peer_signal_terminates(int signum) {
  return signum != SIGSTOP && signum != SIGCONT && signum != SIGUSR1 &&
         signum != SIGUSR2;
}

int peer_signal(run_t *r, peer_t *peer, int signum) {
  if (peer->proc == NULL || peer->exited)
    return -ESRCH;
  if (peer_signal_terminates(signum))
    peer->sent_signal = signum;
  int rc = chat_scenario_proc_kill(peer->proc, signum);
  if (rc == 0 && signum == SIGSTOP)
    peer->stopped = 1;
  else if (rc == 0 && signum == SIGCONT)
    peer->stopped = 0;
  else if (rc == 0 && peer->stopped && peer_signal_terminates(signum)) {
    /* A stopped process only acts on TERM once it runs again. */
    chat_scenario_proc_kill(peer->proc, SIGCONT);
    peer->stopped = 0;
  }
  return rc;
}

static size_t live(const run_t *r, int server) {
  size_t n = 0;
  for (size_t i = 0; i < r->nprocs; i++) {
    const peer_t *peer = chat_scenario_proc_data(r->procs[i]);
    n += (peer->index == CHAT_SCENARIO_SERVER) == server;
  }
  return n;
}

static void on_teardown_timer(uv_timer_t *t);

/* Phase 1: clients get SIGTERM, so the server sees them log out; phase 2:
 * the server; phase 3: all handles closed, the loop ends. A phase that does
 * not finish in time gets SIGKILL, and then its processes are abandoned. */
static void terminate_all(run_t *r, int server) {
  for (size_t i = 0; i < r->nprocs; i++) {
    peer_t *peer = chat_scenario_proc_data(r->procs[i]);
    if ((peer->index == CHAT_SCENARIO_SERVER) != server ||
        peer->proc != r->procs[i] || peer->exited)
      continue;
    peer->teardown = 1;
    run_note(r, peer->name, CHAT_SCENARIO_T_NOTE, "teardown: SIGTERM");
    peer_signal(r, peer, SIGTERM);
  }
  uv_timer_start(&r->timer, on_teardown_timer, RUN_TERM_GRACE_MS, 0);
}

static void on_teardown_timer(uv_timer_t *t) {
  run_t *r = t->data;
  int server = r->teardown_phase == 2;
  int killed = 0;
  for (size_t i = 0; i < r->nprocs; i++) {
    chat_scenario_proc_t *p = r->procs[i];
    peer_t *peer = chat_scenario_proc_data(p);
    if ((peer->index == CHAT_SCENARIO_SERVER) != server ||
        chat_scenario_proc_exited(p))
      continue;
    killed = 1;
    run_fail(r, "%s did not exit within %d s of SIGTERM", peer->name,
             RUN_TERM_GRACE_MS / 1000);
    peer->teardown = 0;
    peer->sent_signal = SIGKILL;
    chat_scenario_proc_kill(p, SIGKILL);
  }
  if (killed) {
    uv_timer_start(&r->timer, on_teardown_timer, RUN_KILL_GRACE_MS, 0);
    return;
  }
  /* Exited, but output pipes still open (held by a grandchild?): let go. */
  for (size_t i = r->nprocs; i-- > 0;) {
    peer_t *peer = chat_scenario_proc_data(r->procs[i]);
    if ((peer->index == CHAT_SCENARIO_SERVER) == server)
      chat_scenario_proc_abandon(r->procs[i]);
  }
}

void run_teardown(run_t *r) {
  if (r->finished)
    return;
  if (!r->tearing_down) {
    r->tearing_down = 1;
    r->teardown_phase = 0;
    r->wait = RUN_W_NONE;
    uv_timer_stop(&r->timer);
    run_note(r, "runner", CHAT_SCENARIO_T_NOTE, "stopping everyone");
  }
  if (r->teardown_phase == 0) {
    r->teardown_phase = 1;
    terminate_all(r, 0);
  }
  if (r->teardown_phase == 1 && live(r, 0) == 0) {
    r->teardown_phase = 2;
    terminate_all(r, 1);
  }
  if (r->teardown_phase == 2 && r->nprocs == 0) {
    r->finished = 1;
    uv_close((uv_handle_t *)&r->timer, NULL);
    uv_close((uv_handle_t *)&r->watchdog, NULL);
    for (int i = 0; i < 2; i++)
      uv_close((uv_handle_t *)&r->sigs[i], NULL);
  }
}
