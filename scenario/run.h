/* run.h -- running a parsed conversation script against the real programs. */
#ifndef CHAT_SCENARIO_RUN_H
#define CHAT_SCENARIO_RUN_H

#include <stdio.h>

#include "scenario.h"

/* --place NAME=NODE: a client kept on one node for the whole script. */
typedef struct chat_scenario_place {
  const char *name;
  int node; /* 1..CHAT_SCENARIO_MAX_NODES */
} chat_scenario_place_t;

typedef struct chat_scenario_opts {
  const char *bin_dir; /* where chat-server and chat-client are */
  int keep;            /* keep the temporary directory (its path is printed) */
  int verbose;         /* print the transcript live */
  FILE *out;           /* PASS/FAIL lines and transcripts */
  double max_time;     /* seconds one scenario may take in all */
  char **wrap;         /* NULL, or a command every program runs under, e.g.
                          {"valgrind", "-q", NULL} (NULL-terminated) */
  double slow;         /* deadlines of expectations are multiplied by this
                          (>= 1; for wrapped, slower runs) */
  int tls;             /* clients reach the server over TLS: certificates
                          are made in the scenario's directory, the server
                          also gets --tls-listen, clients --tls --tls-ca */
  int redis;           /* the server keeps its store in a redis-server
                          started for the scenario (--db redis://...),
                          on the same data across server restarts */
  int nodes;           /* 0: one server, as always. 1..8: that many
                          chat-server nodes, each with --node nK, all
                          started, restarted and killed together unless a
                          step names one; clients spread over them (main
                          sets redis too: without it each node gets a
                          SQLite file of its own, for the runner's tests) */
  const chat_scenario_place_t *place; /* pins over the script's node= */
  size_t nplace;
  int failover;        /* every client gets every node's address in
                          --server, as a script's `failover` word asks */
} chat_scenario_opts_t;

/* NULL when --redis can start a redis-server, else why not. */
const char *chat_scenario_redis_missing(void);

#define CHAT_SCENARIO_PASS 0
#define CHAT_SCENARIO_FAIL 1
#define CHAT_SCENARIO_INTERRUPTED 3

/* Runs one script on a loop of its own: a fresh temporary directory, every
 * process it starts stopped and reaped before it returns, the directory
 * removed unless keep. Prints PASS, or FAIL with the transcript, on out.
 * Returns CHAT_SCENARIO_PASS, CHAT_SCENARIO_FAIL, CHAT_SCENARIO_INTERRUPTED
 * (SIGINT/SIGTERM arrived: also a failure; run no more), or a negative errno
 * when it could not even start (temporary directory, memory). */
int chat_scenario_run(const chat_scenario_script_t *s,
                      const chat_scenario_opts_t *o);

#endif /* CHAT_SCENARIO_RUN_H */
