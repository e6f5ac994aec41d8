/* run.c -- running a script step by step on a libuv loop: each step either
 * finishes at once or waits (for an event, a log line, an exit, a pause)
 * under a deadline; the first failure stops the script and the transcript
 * tells what everyone said and saw. */
#define _XOPEN_SOURCE 700
#include <errno.h>
#include <ftw.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "run_int.h"

#define RUN_TRANSCRIPT_MAX (8 * 1024 * 1024)

static void advance(run_t *r);

uint64_t run_now(const run_t *r) { return (uv_hrtime() - r->t0) / 1000000; }

void run_note(run_t *r, const char *who, chat_scenario_tkind_t kind,
              const char *fmt, ...) {
  char buf[4096], *text = buf;
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(buf, sizeof(buf), fmt, ap);
  va_end(ap);
  if (n >= (int)sizeof(buf) && (text = malloc((size_t)n + 1)) != NULL) {
    va_start(ap, fmt);
    vsnprintf(text, (size_t)n + 1, fmt, ap);
    va_end(ap);
  }
  chat_scenario_transcript_add(&r->t, run_now(r), who, kind, text ? text : buf);
  if (text != buf)
    free(text);
}

void run_fail(run_t *r, const char *fmt, ...) {
  char msg[sizeof(r->fail_msg)];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof(msg), fmt, ap);
  va_end(ap);
  run_note(r, "runner", CHAT_SCENARIO_T_NOTE, "%s%s",
           r->failed ? "also: " : "FAIL: ", msg);
  if (r->failed)
    return;
  r->failed = 1;
  memcpy(r->fail_msg, msg, sizeof(msg));
  r->fail_line = r->pc < r->s->nsteps && !r->tearing_down
                     ? r->s->steps[r->pc].line : 0;
  run_teardown(r);
}

/* ---- the current step's expanded values ------------------------------- */

static void step_clear(run_t *r) {
  for (size_t i = 0; i < r->nconds; i++)
    free(r->conds[i].value);
  free(r->conds);
  r->conds = NULL;
  r->nconds = 0;
  free(r->text);
  r->text = NULL;
}

static int expand(run_t *r, const char *in, char **out) {
  char bad[64];
  int rc = chat_scenario_vars_expand(&r->vars, in, out, bad, sizeof(bad));
  if (rc == -ENOENT)
    run_fail(r, "$%s has no value yet", bad);
  else if (rc != 0)
    run_fail(r, "cannot expand '%s': %s", in, strerror(-rc));
  return rc;
}

static int step_expand(run_t *r, const chat_scenario_step_t *st) {
  if (st->text != NULL && expand(r, st->text, &r->text) != 0)
    return -1;
  if (st->nconds == 0)
    return 0;
  if ((r->conds = calloc(st->nconds, sizeof(*r->conds))) == NULL) {
    run_fail(r, "out of memory");
    return -1;
  }
  for (size_t i = 0; i < st->nconds; i++) {
    r->conds[i] = st->conds[i];
    r->conds[i].value = NULL;
    r->nconds++;
    const char *v = st->conds[i].value;
    if (st->conds[i].op == CHAT_SCENARIO_OP_CAPTURE)
      r->conds[i].value = strdup(v);
    else if (expand(r, v, &r->conds[i].value) != 0)
      return -1;
  }
  return 0;
}

/* ---- waiting ----------------------------------------------------------- */

static int take_event(run_t *r, peer_t *peer, const char *event, int next) {
  ssize_t i = chat_scenario_queue_find(&peer->out, event, r->conds, r->nconds);
  if (next) {
    /* The first unconsumed event of that name decides: ordering checks. */
    ssize_t first = chat_scenario_queue_find(&peer->out, event, NULL, 0);
    if (first >= 0 && first != i) {
      char why[512];
      chat_scenario_explain(peer->out.items[first].obj, event, r->conds,
                            r->nconds, why, sizeof(why));
      run_fail(r, "%s's next %s event does not match: %s\n    [%7llu ms] %s",
               peer->name, event, why,
               (unsigned long long)peer->out.items[first].ms,
               peer->out.items[first].line);
      return 0;
    }
  }
  if (i < 0)
    return 0;
  chat_scenario_item_t *it = &peer->out.items[i];
  it->consumed = 1;
  for (size_t k = 0; k < r->nconds; k++) {
    if (r->conds[k].op != CHAT_SCENARIO_OP_CAPTURE)
      continue;
    char *v = chat_scenario_value_text(json_object_get(it->obj,
                                                       r->conds[k].field));
    int rc = v ? chat_scenario_vars_set(&r->vars, r->conds[k].value, v)
               : -ENOMEM;
    free(v);
    if (rc != 0) {
      run_fail(r, "out of memory");
      return 0;
    }
    run_note(r, "runner", CHAT_SCENARIO_T_NOTE, "$%s = %s", r->conds[k].value,
             chat_scenario_vars_get(&r->vars, r->conds[k].value));
  }
  return 1;
}

int run_exit_matches(const peer_t *peer, const chat_scenario_step_t *st) {
  if (st->exit_signal != 0)
    return peer->signum == st->exit_signal;
  return peer->signum == 0 && peer->status == st->exit_code;
}

/* 1 when the step's wait is over (and what it waited for is consumed). */
static int poll_wait(run_t *r) {
  const chat_scenario_step_t *st = &r->s->steps[r->pc];
  peer_t *peer = &r->peers[st->who];
  char how[96];
  if (r->wait == RUN_W_NONE || r->wait == RUN_W_PAUSE)
    return 0; /* a pause ends by its timer (and is the server's, who 0) */
  if (st->who == CHAT_SCENARIO_SERVER)
    return node_poll(r, st); /* one node or all of them */
  switch (r->wait) {
  case RUN_W_NONE:
  case RUN_W_PAUSE:
  case RUN_W_LISTEN:
  case RUN_W_RESTART:
    return 0; /* not a client's */
  case RUN_W_READY:
    /* Consumed, so that a later `sees ready` waits for a new login (after
     * a reconnect); `client NAME nowait` leaves it to the script. */
    if (take_event(r, peer, "ready", 0))
      return 1;
    break;
  case RUN_W_EVENT:
    if (take_event(r, peer, r->text, st->next))
      return 1;
    break;
  case RUN_W_NEVER:
    if (chat_scenario_queue_find(&peer->out, r->text, r->conds, r->nconds) >= 0)
      run_fail(r, "%s saw what it should never see", peer->name);
    return 0;
  case RUN_W_LOGS: {
    ssize_t i = chat_scenario_queue_find_text(&peer->err, r->text);
    if (i >= 0) {
      peer->err.items[i].consumed = 1;
      return 1;
    }
    break;
  }
  case RUN_W_EXIT:
    if (!peer->exited)
      return 0;
    if (st->kind == CHAT_SCENARIO_SIGNAL || run_exit_matches(peer, st))
      return 1;
    run_fail(r, "%s ended with %s", peer->name,
             peer_exit_text(peer, how, sizeof(how)));
    return 0;
  }
  /* Nothing more can come from a process that is gone and fully read. */
  if (peer->drained && !r->failed)
    run_fail(r, "%s is gone (%s) and printed nothing that matches",
             peer->name, peer_exit_text(peer, how, sizeof(how)));
  return 0;
}

static void complete(run_t *r) {
  r->wait = RUN_W_NONE;
  uv_timer_stop(&r->timer);
  step_clear(r);
  r->pc++;
  advance(r);
}

void run_poke(run_t *r, peer_t *peer) {
  if (r->tearing_down || r->wait == RUN_W_NONE ||
      r->s->steps[r->pc].who != peer->index)
    return;
  if (poll_wait(r) && !r->tearing_down)
    complete(r);
}

/* Lists the unconsumed events and why each one did not match. */
static void explain_unmatched(run_t *r, peer_t *peer, const char *event) {
  size_t len = 0, cap = 4096;
  char *d = malloc(cap);
  if (d == NULL)
    return;
  d[0] = '\0';
  for (size_t i = 0; i < peer->out.n; i++) {
    chat_scenario_item_t *it = &peer->out.items[i];
    if (it->consumed)
      continue;
    char why[512];
    chat_scenario_explain(it->obj, event, r->conds, r->nconds, why,
                          sizeof(why));
    if (strcmp(why, "another event") == 0)
      why[0] = '\0'; /* obvious from the line itself */
    size_t need = strlen(it->line) + strlen(why) + 64;
    if (len + need >= cap) {
      char *grown = realloc(d, cap = (len + need) * 2);
      if (grown == NULL)
        break;
      d = grown;
    }
    len += (size_t)snprintf(d + len, cap - len, "    [%7llu ms] %s\n%s%s%s",
                            (unsigned long long)it->ms, it->line,
                            why[0] ? "                 ^ " : "", why,
                            why[0] ? "\n" : "");
  }
  if (len == 0)
    snprintf(d, cap, "    (none: every event it printed was already "
                     "consumed by earlier steps)\n");
  free(r->fail_detail);
  r->fail_detail = d;
}

static void on_deadline(uv_timer_t *t) {
  run_t *r = t->data;
  const chat_scenario_step_t *st = &r->s->steps[r->pc];
  peer_t *peer = &r->peers[st->who];
  if (st->who == CHAT_SCENARIO_SERVER && r->wait != RUN_W_PAUSE) {
    node_deadline(r, st);
    return;
  }
  switch (r->wait) {
  case RUN_W_PAUSE:
  case RUN_W_NEVER:
    complete(r);
    return;
  case RUN_W_EVENT:
  case RUN_W_READY:
    explain_unmatched(r, peer, r->wait == RUN_W_READY ? "ready" : r->text);
    run_fail(r, "timed out after %.1f s; %s's unconsumed events:",
             st->within, peer->name);
    return;
  case RUN_W_EXIT:
    run_fail(r, "timed out after %.1f s waiting for %s to exit", st->within,
             peer->name);
    return;
  default:
    run_fail(r, "timed out after %.1f s", st->within);
  }
}

/* ---- steps --------------------------------------------------------------- */

/* Runs the step at pc. Returns 1 when it waits, 0 when it is done. */
static int exec(run_t *r, const chat_scenario_step_t *st) {
  peer_t *peer = &r->peers[st->who];
  char how[96];
  if (step_expand(r, st) != 0)
    return 0;
  switch (st->kind) {
  case CHAT_SCENARIO_SERVER_START:
    if ((r->server_flags = calloc(st->argc + 1, sizeof(char *))) == NULL)
      return run_fail(r, "out of memory"), 0;
    for (size_t i = 0; i < st->argc; i++, r->nserver_flags++)
      if (expand(r, st->argv[i], &r->server_flags[i]) != 0)
        return 0;
    if (node_start_all(r) != 0) {
      run_fail(r, "cannot start the server");
      return 0;
    }
    r->wait = RUN_W_LISTEN;
    break;
  case CHAT_SCENARIO_SERVER_RESTART:
    r->wait = RUN_W_RESTART;
    node_restart(r, st);
    break;
  case CHAT_SCENARIO_CLIENT:
    if (peer->proc != NULL && !peer->exited)
      return run_fail(r, "%s is still running (stop it, or let it exit and "
                         "say `%s exits CODE`, first)", peer->name, peer->name),
             0;
    if (peer_start_client(r, peer, st) != 0) {
      run_fail(r, "cannot start %s", peer->name);
      return 0;
    }
    if (st->nowait)
      return 0;
    r->wait = RUN_W_READY;
    break;
  case CHAT_SCENARIO_SAY:
  case CHAT_SCENARIO_EOF:
    if (peer->proc == NULL || peer->exited)
      return run_fail(r, "%s is not running (%s)", peer->name,
                      peer_exit_text(peer, how, sizeof(how))), 0;
    if (peer->stdin_closed)
      return run_fail(r, "%s's stdin is already closed", peer->name), 0;
    if (st->kind == CHAT_SCENARIO_EOF) {
      peer->stdin_closed = 1;
      chat_scenario_proc_close_stdin(peer->proc);
      run_note(r, peer->name, CHAT_SCENARIO_T_STDIN, "(end of input)");
      return 0;
    }
    run_note(r, peer->name, CHAT_SCENARIO_T_STDIN, "%s", r->text);
    size_t len = strlen(r->text);
    r->text[len] = '\n'; /* the terminating NUL becomes the line's LF */
    int rc = chat_scenario_proc_write(peer->proc, r->text, len + 1);
    r->text[len] = '\0';
    if (rc != 0)
      return run_fail(r, "cannot write to %s: %s", peer->name,
                      uv_strerror(rc)), 0;
    return 0;
  case CHAT_SCENARIO_SEES:
    r->wait = RUN_W_EVENT;
    break;
  case CHAT_SCENARIO_NEVER:
    r->wait = RUN_W_NEVER;
    break;
  case CHAT_SCENARIO_LOGS:
    r->wait = RUN_W_LOGS;
    break;
  case CHAT_SCENARIO_EXITS:
    if (!peer->started)
      return run_fail(r, "%s was never started", peer->name), 0;
    r->wait = RUN_W_EXIT;
    break;
  case CHAT_SCENARIO_SIGNAL:
    if (st->who == CHAT_SCENARIO_SERVER) {
      if (node_signal(r, st) != 0)
        return 0;
    } else if (peer_signal(r, peer, st->signum) != 0)
      return run_fail(r, "%s is not running (%s)", peer->name,
                      peer_exit_text(peer, how, sizeof(how))), 0;
    if (!peer_signal_terminates(st->signum))
      return 0;
    r->wait = RUN_W_EXIT;
    break;
  case CHAT_SCENARIO_WAIT:
    r->wait = RUN_W_PAUSE;
    break;
  }
  /* A pause is a pause; everything awaited may take longer when the
   * programs run under a slow wrapper (--slow). */
  uv_timer_start(&r->timer, on_deadline,
                 (uint64_t)(st->within * 1000 *
                            (r->wait == RUN_W_PAUSE || r->o->slow < 1 ? 1.0
                                                             : r->o->slow)),
                 0);
  if (poll_wait(r))
    return 0;
  return 1;
}

static void advance(run_t *r) {
  while (!r->tearing_down && r->pc < r->s->nsteps) {
    const chat_scenario_step_t *st = &r->s->steps[r->pc];
    run_note(r, "runner", CHAT_SCENARIO_T_STEP, "%d: %s", st->line,
             st->source);
    if (exec(r, st) == 1 || r->tearing_down)
      return;
    r->wait = RUN_W_NONE;
    uv_timer_stop(&r->timer);
    step_clear(r);
    r->pc++;
  }
  if (r->tearing_down)
    return;
  for (size_t i = 1; i < r->npeers; i++)
    if (r->peers[i].not_json > 0) {
      run_fail(r, "%s printed %zu stdout line(s) that are not JSON objects",
               r->peers[i].name, r->peers[i].not_json);
      return;
    }
  run_teardown(r);
}

/* ---- the whole run ------------------------------------------------------- */

static void on_watchdog(uv_timer_t *t) {
  run_t *r = t->data;
  run_fail(r, "the scenario took longer than %.0f s", r->o->max_time);
}

static void on_signal(uv_signal_t *h, int signum) {
  run_t *r = h->data;
  if (r->interrupted++ == 0) {
    run_fail(r, "interrupted by %s", strsignal(signum));
    return;
  }
  /* A second signal: do not wait for anyone any more. */
  for (size_t i = 0; i < r->nprocs; i++)
    chat_scenario_proc_kill(r->procs[i], SIGKILL);
}

static void close_any(uv_handle_t *h, void *arg) {
  if (!uv_is_closing(h))
    uv_close(h, NULL);
}

static int rm_entry(const char *path, const struct stat *sb, int flag,
                    struct FTW *ftw) {
  return remove(path) == 0 ? 0 : -1;
}

static void report(run_t *r, double secs) {
  FILE *out = r->o->out;
  if (!r->failed) {
    fprintf(out, "PASS %s (%zu steps, %.1f s)\n", r->s->path, r->s->nsteps,
            secs);
    return;
  }
  if (!r->o->verbose) {
    fprintf(out, "=== transcript of %s (ms since start; ## step, $ started, "
                 "< stdin, > stdout, ! stderr, -- runner) ===\n", r->s->path);
    chat_scenario_transcript_print(&r->t, out);
  }
  fprintf(out, "FAIL %s", r->s->path);
  if (r->fail_line > 0) {
    const chat_scenario_step_t *st = NULL;
    for (size_t i = 0; i < r->s->nsteps; i++)
      if (r->s->steps[i].line == r->fail_line)
        st = &r->s->steps[i];
    fprintf(out, ":%d: %s", r->fail_line, st ? st->source : "");
  }
  fprintf(out, "\n  %s\n%s", r->fail_msg, r->fail_detail ? r->fail_detail : "");
}

/* The most nodes the script and the --place pins name, which must run. */
static int nodes_named(const chat_scenario_script_t *s,
                       const chat_scenario_opts_t *o) {
  int most = s->max_node;
  for (size_t i = 0; i < o->nplace; i++)
    if (o->place[i].node > most)
      most = o->place[i].node;
  return most;
}

int chat_scenario_run(const chat_scenario_script_t *s,
                      const chat_scenario_opts_t *o) {
  /* Refused before anything starts: with fewer nodes the script would
   * mean something else (`kill server n2` killing the only server). */
  int named = nodes_named(s, o), nodes = o->nodes > 0 ? o->nodes : 1;
  if (named > nodes) {
    fprintf(o->out, "FAIL %s\n  it names node n%d, but %d node%s: "
                    "run it with --nodes %d or more\n", s->path, named,
            nodes, nodes == 1 ? " runs" : "s run", named);
    return CHAT_SCENARIO_FAIL;
  }
  run_t *r = calloc(1, sizeof(*r));
  if (r == NULL)
    return -ENOMEM;
  r->s = s;
  r->o = o;
  r->t0 = uv_hrtime();
  chat_scenario_vars_init(&r->vars);
  chat_scenario_transcript_init(&r->t, RUN_TRANSCRIPT_MAX);
  if (o->verbose)
    r->t.live = o->out;
  const char *tmp = getenv("TMPDIR");
  snprintf(r->dir, sizeof(r->dir), "%s/chat-scenario-XXXXXX",
           tmp && *tmp ? tmp : "/tmp");
  int rc = 0;
  if (mkdtemp(r->dir) == NULL) {
    rc = -errno;
    fprintf(o->out, "chat-scenario: cannot create %s: %s\n", r->dir,
            strerror(errno));
    goto out;
  }
  /* Nodes 2..N live after the script's participants (nodes.c). */
  if ((r->peers = calloc(s->nnames + (size_t)nodes - 1,
                         sizeof(*r->peers))) == NULL ||
      chat_scenario_vars_set(&r->vars, "dir", r->dir) != 0 ||
      (rc = uv_loop_init(&r->loop)) != 0) {
    rc = rc ? rc : -ENOMEM;
    goto out_dir;
  }
  r->npeers = s->nnames;
  for (size_t i = 0; i < s->nnames; i++) {
    r->peers[i].run = r;
    r->peers[i].index = (int)i;
    r->peers[i].name = s->names[i];
  }
  if (node_init(r) != 0) {
    rc = -ENOMEM;
    uv_loop_close(&r->loop);
    goto out_dir;
  }
  uv_timer_init(&r->loop, &r->timer);
  uv_timer_init(&r->loop, &r->watchdog);
  r->timer.data = r->watchdog.data = r;
  uv_timer_start(&r->watchdog, on_watchdog, (uint64_t)(o->max_time * 1000), 0);
  uv_unref((uv_handle_t *)&r->watchdog);
  int signums[2] = {SIGINT, SIGTERM};
  for (int i = 0; i < 2; i++) {
    uv_signal_init(&r->loop, &r->sigs[i]);
    r->sigs[i].data = r;
    uv_signal_start(&r->sigs[i], on_signal, signums[i]);
    uv_unref((uv_handle_t *)&r->sigs[i]);
  }
  run_note(r, "runner", CHAT_SCENARIO_T_NOTE, "directory %s", r->dir);
  if (o->tls && peer_make_certs(r) != 0)
    run_fail(r, "cannot make TLS certificates in %s", r->dir);
  else if (o->redis && run_redis_start(r) != 0)
    run_fail(r, "cannot start a redis-server for --redis");
  else
    advance(r);
  uv_run(&r->loop, UV_RUN_DEFAULT);
  if (!r->finished) { /* cannot happen, but never leave a handle open */
    uv_walk(&r->loop, close_any, NULL);
    uv_run(&r->loop, UV_RUN_DEFAULT);
  }
  uv_loop_close(&r->loop);
  run_redis_stop(r); /* after the server, which the loop's end reaped */
  report(r, (double)run_now(r) / 1000);
  rc = r->interrupted ? CHAT_SCENARIO_INTERRUPTED
                      : r->failed ? CHAT_SCENARIO_FAIL : CHAT_SCENARIO_PASS;
out_dir:
  if (o->keep)
    fprintf(o->out, "kept %s\n", r->dir);
  else
    nftw(r->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
out:
  for (size_t i = 0; r->peers != NULL && i < s->nnames + (size_t)nodes - 1;
       i++)
    peer_free(&r->peers[i]);
  free(r->peers);
  free(r->nodes);
  for (size_t i = 0; i < r->nserver_flags; i++)
    free(r->server_flags[i]);
  free(r->server_flags);
  step_clear(r);
  free(r->procs);
  free(r->fail_detail);
  chat_scenario_vars_free(&r->vars);
  chat_scenario_transcript_free(&r->t);
  free(r);
  return rc;
}
