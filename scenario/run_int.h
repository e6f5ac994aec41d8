/* run_int.h -- private state shared by run.c (steps and waits) and peer.c
 * (starting, watching and stopping the participants' processes). */
#ifndef CHAT_SCENARIO_RUN_INT_H
#define CHAT_SCENARIO_RUN_INT_H

#include <errno.h>
#include <limits.h>
#include <uv.h>

#include "proc.h"
#include "run.h"
#include "scenario.h"

/* How long teardown waits after SIGTERM, then after SIGKILL. */
#define RUN_TERM_GRACE_MS 15000
#define RUN_KILL_GRACE_MS 5000

typedef enum run_wait {
  RUN_W_NONE,
  RUN_W_LISTEN,  /* the server's "listening on" line */
  RUN_W_READY,   /* a client's ready event */
  RUN_W_EVENT,   /* sees */
  RUN_W_NEVER,   /* never: the quiet period */
  RUN_W_LOGS,    /* logs */
  RUN_W_EXIT,    /* exits, or a terminating signal sent by kill */
  RUN_W_RESTART, /* server restart: the old server to exit */
  RUN_W_PAUSE    /* wait */
} run_wait_t;

typedef struct run run_t;

typedef struct peer {
  run_t *run;
  int index;
  const char *name;
  char *user, *password; /* owned */
  char **argv;           /* the script's flags, expanded, owned */
  size_t argc;
  chat_scenario_proc_t *proc; /* the current process, until it is done */
  int started;  /* a process was ever started */
  int exited;   /* the current process exited: status, signum */
  int64_t status;
  int signum;
  int drained;     /* ... and all its output was read */
  int sent_signal; /* the last terminating signal sent to it, else 0 */
  int stopped;     /* SIGSTOP sent and no SIGCONT since */
  int stdin_closed;
  int teardown;    /* stopped by teardown: must exit 0 */
  size_t not_json; /* stdout lines that were not JSON objects */
  chat_scenario_queue_t out, err;
} peer_t;

struct run {
  uv_loop_t loop;
  const chat_scenario_script_t *s;
  const chat_scenario_opts_t *o;
  peer_t *peers;
  size_t npeers;
  size_t pc; /* the step being run */
  run_wait_t wait;
  uv_timer_t timer;    /* the current step's deadline */
  uv_timer_t watchdog; /* max_time for the whole scenario */
  uv_signal_t sigs[2];
  uint64_t t0; /* uv_hrtime() at the start */
  char dir[PATH_MAX];
  char server_addr[300]; /* HOST:PORT from the server's log: the TLS
                            listener's with --tls, where clients go */
  struct rp *redis;      /* with --redis: its redis-server (redis.c) */
  char **server_flags;   /* the script's server flags, expanded, owned */
  size_t nserver_flags;
  chat_scenario_vars_t vars;
  chat_scenario_transcript_t t;
  chat_scenario_cond_t *conds; /* the current step's, expanded */
  size_t nconds;
  char *text; /* the current step's text, expanded */
  int failed, interrupted;
  int fail_line;
  char fail_msg[1024];
  char *fail_detail; /* further lines for the report, owned */
  int tearing_down, teardown_phase, finished;
  chat_scenario_proc_t **procs; /* every live process, current or not */
  size_t nprocs;
};

uint64_t run_now(const run_t *r);
void run_note(run_t *r, const char *who, chat_scenario_tkind_t kind,
              const char *fmt, ...) __attribute__((format(printf, 4, 5)));
/* Records the failure (the first one wins; later ones become notes) and
 * starts the teardown. */
void run_fail(run_t *r, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Something changed for peer: re-check the step waiting on it. */
void run_poke(run_t *r, peer_t *peer);

/* peer.c */
int peer_start_server(run_t *r);
/* With --tls: ca.pem, server.pem and server.key in r->dir. 0 or -EIO. */
int peer_make_certs(run_t *r);
/* redis.c: with --redis, a redis-server for the scenario (0, or -1 with
 * the reason on stderr), and its end (stopped, reaped, removed). */
int run_redis_start(run_t *r);
void run_redis_stop(run_t *r);
const char *run_redis_url(const run_t *r);
int peer_start_client(run_t *r, peer_t *peer,
                      const chat_scenario_step_t *st);
int peer_signal(run_t *r, peer_t *peer, int signum);
/* 0 for the signals a script sends to a process that goes on running
 * (STOP, CONT, USR1, USR2); 1 for those it waits to see end it. */
int peer_signal_terminates(int signum);
void peer_free(peer_t *peer);
void run_teardown(run_t *r);
const char *peer_exit_text(const peer_t *peer, char *buf, size_t len);

#endif /* CHAT_SCENARIO_RUN_INT_H */
