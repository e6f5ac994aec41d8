/* run_int.h -- private state shared by run.c (steps and waits), peer.c
 * (starting, watching and stopping the participants' processes) and
 * nodes.c (the server's nodes, and which node a client goes to). */
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
  RUN_W_LISTEN,  /* every node's "listening on" line */
  RUN_W_READY,   /* a client's ready event */
  RUN_W_EVENT,   /* sees */
  RUN_W_NEVER,   /* never: the quiet period */
  RUN_W_LOGS,    /* logs */
  RUN_W_EXIT,    /* exits, or a terminating signal sent by kill */
  RUN_W_RESTART, /* server restart: the old nodes to exit, then listen */
  RUN_W_PAUSE    /* wait */
} run_wait_t;

typedef struct run run_t;

/* A participant: a client, or one node of the server (every node has index
 * CHAT_SCENARIO_SERVER, and its node number). */
typedef struct peer {
  run_t *run;
  int index;
  const char *name; /* a node: "server" with one node as always, else nK */
  int node;         /* a node: its number; a client: where it is placed,
                       0 before its first start */
  int failover;     /* a client: --server lists every node (sticks) */
  char addr[300];   /* a node: HOST:PORT from its log (the TLS listener's
                       with --tls, where clients go), kept for restarts */
  int listening;    /* a node: its current process said where it listens */
  int restarting;   /* a node: `server restart` starts it once it exited */
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
  peer_t *peers;   /* the script's participants (peers[0] is node 1), then
                      nodes 2..N */
  size_t npeers;   /* the script's participants */
  peer_t **nodes;  /* node K is nodes[K - 1] */
  size_t nnodes;
  size_t pc; /* the step being run */
  run_wait_t wait;
  uv_timer_t timer;    /* the current step's deadline */
  uv_timer_t watchdog; /* max_time for the whole scenario */
  uv_signal_t sigs[2];
  uint64_t t0; /* uv_hrtime() at the start */
  char dir[PATH_MAX];
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
/* 1 when peer's process ended as an `exits` step st says. */
int run_exit_matches(const peer_t *peer, const chat_scenario_step_t *st);

/* peer.c */
/* Starts one node (its address again on a restart). 0 or a libuv error,
 * the failure recorded. */
int peer_start_server(run_t *r, peer_t *node);
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

/* nodes.c */
/* Makes the node peers (r->peers has room for them). 0 or -ENOMEM. */
int node_init(run_t *r);
/* 1 when step st is about peer: a client by index; a node when st is a
 * server step naming it or no node at all ("server" is every node). */
int node_targets(const chat_scenario_step_t *st, const peer_t *peer);
/* "the server" with one node as always, else the node's name: what
 * failures call it. */
const char *node_label(const run_t *r, const peer_t *node);
int node_start_all(run_t *r);
/* `server [NODE] restart`: marks the nodes, SIGTERMs those running. */
void node_restart(run_t *r, const chat_scenario_step_t *st);
/* kill/stop/cont server [NODE]: every node that runs, or the one named.
 * 0, or -ESRCH (with the failure recorded) when none of them runs. */
int node_signal(run_t *r, const chat_scenario_step_t *st);
/* A server step's wait (listen, restart, logs, exit) over its nodes: 1
 * when it is over; a failure is recorded (and 0 returned). */
int node_poll(run_t *r, const chat_scenario_step_t *st);
/* Why a server step timed out, recorded as the failure. */
void node_deadline(run_t *r, const chat_scenario_step_t *st);
/* Before a client starts: picks its node (--place, else the step's node=,
 * else the one it had, else round robin in the order clients first start)
 * and writes its --server value: its node's address, followed by the
 * others' when it fails over. 0 or -ENOSPC. */
int node_place(run_t *r, peer_t *client, const chat_scenario_step_t *st,
               char *server, size_t len);

#endif /* CHAT_SCENARIO_RUN_INT_H */
