/* main.c -- chat-scenario: runs conversation scripts (.chat files) against
 * chat-server and chat-client. Exit 0 when all pass, 1 when one fails, 2 on
 * a usage or parse error. */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "run.h"
#include "scenario.h"

static void usage(FILE *f) {
  fprintf(f,
          "usage: chat-scenario [--bin-dir DIR] [--keep] [--verbose] "
          "[--max-time S] [--wrap CMD] [--slow F] [--tls] [--redis]\n"
          "                     [--nodes N [--place NAME=NODE]... "
          "[--failover]] [--check] FILE...\n"
          "Runs conversation scripts against chat-server and chat-client.\n"
          "  --bin-dir DIR  where chat-server and chat-client are "
          "(default: next to chat-scenario)\n"
          "  --keep         keep each scenario's temporary directory\n"
          "  --verbose      print the transcript while it happens\n"
          "  --max-time S   fail a scenario that takes longer (default 240)\n"
          "  --wrap CMD     run every program under CMD, split on spaces\n"
          "                 (e.g. --wrap 'valgrind -q --error-exitcode=99')\n"
          "  --slow F       multiply every expectation's deadline by F\n"
          "  --tls          clients talk to the server over TLS (throwaway\n"
          "                 certificates in the scenario's directory)\n"
          "  --redis        the server keeps its store in a redis-server of\n"
          "                 the scenario's own (exit 77 when there is none)\n"
          "  --nodes N      N chat-server nodes (1-8, n1..nN) on one such\n"
          "                 redis-server; clients spread over them in turn\n"
          "  --place NAME=NODE  start client NAME on NODE (e.g. bob=n2), over\n"
          "                 the script's node=\n"
          "  --failover     every client's --server lists every node, its own\n"
          "                 first (as a client line's `failover` asks)\n"
          "  --check        only parse the files, and check that every event and\n"
          "                 field expected is one chat-client prints\n"
          "Exit status: 0 all passed, 1 a scenario failed, 2 usage or "
          "parse error.\nThe script format: docs/SCENARIOS.md\n");
}

int main(int argc, char **argv) {
  static const struct option longopts[] = {
      {"bin-dir", required_argument, NULL, 'b'},
      {"keep", no_argument, NULL, 'k'},
      {"verbose", no_argument, NULL, 'v'},
      {"max-time", required_argument, NULL, 'm'},
      {"check", no_argument, NULL, 'c'},
      {"wrap", required_argument, NULL, 'w'},
      {"slow", required_argument, NULL, 's'},
      {"tls", no_argument, NULL, 't'},
      {"redis", no_argument, NULL, 'R'},
      {"nodes", required_argument, NULL, 'N'},
      {"place", required_argument, NULL, 'P'},
      {"failover", no_argument, NULL, 'F'},
      {"help", no_argument, NULL, 'h'},
      {"version", no_argument, NULL, 'V'},
      {NULL, 0, NULL, 0}};
  chat_scenario_opts_t o = {.out = stdout, .max_time = 240.0, .slow = 1.0};
  char *wrap_words[32];
  chat_scenario_place_t places[64];
  int check = 0, c;
  char exe_dir[PATH_MAX];
  while ((c = getopt_long(argc, argv, "b:kvm:chw:s:t", longopts, NULL)) != -1) {
    switch (c) {
    case 'b':
      o.bin_dir = optarg;
      break;
    case 'k':
      o.keep = 1;
      break;
    case 'v':
      o.verbose = 1;
      break;
    case 'm': {
      char *end;
      o.max_time = strtod(optarg, &end);
      if (end == optarg || *end != '\0' || !(o.max_time > 0)) {
        fprintf(stderr, "chat-scenario: --max-time wants seconds\n");
        return 2;
      }
      break;
    }
    case 'c':
      check = 1;
      break;
    case 'w': {
      size_t n = 0;
      char *save = NULL;

      for (char *w = strtok_r(optarg, " \t", &save); w != NULL;
           w = strtok_r(NULL, " \t", &save)) {
        if (n + 1 >= sizeof(wrap_words) / sizeof(wrap_words[0])) {
          fprintf(stderr, "chat-scenario: --wrap has too many words\n");
          return 2;
        }
        wrap_words[n++] = w;
      }
      wrap_words[n] = NULL;
      if (n == 0) {
        fprintf(stderr, "chat-scenario: --wrap wants a command\n");
        return 2;
      }
      o.wrap = wrap_words;
      break;
    }
    case 's': {
      char *end;
      o.slow = strtod(optarg, &end);
      if (end == optarg || *end != '\0' || !(o.slow >= 1)) {
        fprintf(stderr, "chat-scenario: --slow wants a factor >= 1\n");
        return 2;
      }
      break;
    }
    case 't':
      o.tls = 1;
      break;
    case 'R':
    case 'N':
      /* --nodes implies --redis: the nodes share one store, and Redis is
       * the engine that can be shared. */
      if (c == 'N') {
        char *end;
        long n = strtol(optarg, &end, 10);
        if (end == optarg || *end != '\0' || n < 1 ||
            n > CHAT_SCENARIO_MAX_NODES) {
          fprintf(stderr, "chat-scenario: --nodes wants 1 to %d\n",
                  CHAT_SCENARIO_MAX_NODES);
          return 2;
        }
        o.nodes = (int)n;
      }
      o.redis = 1;
      if (chat_scenario_redis_missing() != NULL) {
        fprintf(stderr, "chat-scenario: --%s: %s\n",
                c == 'N' ? "nodes" : "redis", chat_scenario_redis_missing());
        return 77; /* ctest's SKIP_RETURN_CODE */
      }
      break;
    case 'P': {
      char *eq = strchr(optarg, '=');
      int node = eq ? chat_scenario_node_parse(eq + 1) : -EINVAL;
      if (eq == NULL || eq == optarg || node < 0) {
        fprintf(stderr, "chat-scenario: --place wants NAME=NODE (NODE n1 "
                        "to n%d), not '%s'\n", CHAT_SCENARIO_MAX_NODES,
                optarg);
        return 2;
      }
      if (o.nplace == sizeof(places) / sizeof(places[0])) {
        fprintf(stderr, "chat-scenario: too many --place\n");
        return 2;
      }
      *eq = '\0';
      places[o.nplace].name = optarg;
      places[o.nplace++].node = node;
      o.place = places;
      break;
    }
    case 'F':
      o.failover = 1;
      break;
    case 'h':
      usage(stdout);
      return 0;
    case 'V':
      printf("chat-scenario %s\n", CHAT_VERSION);
      return 0;
    default:
      usage(stderr);
      return 2;
    }
  }
  if (optind >= argc) {
    usage(stderr);
    return 2;
  }
  /* Placing on a node only means something with nodes that exist. */
  if ((o.nplace > 0 || o.failover) && o.nodes == 0) {
    fprintf(stderr, "chat-scenario: --place and --failover go with "
                    "--nodes N\n");
    return 2;
  }
  for (size_t i = 0; i < o.nplace; i++)
    if (o.place[i].node > o.nodes) {
      fprintf(stderr, "chat-scenario: --place %s=n%d: only %d node%s\n",
              o.place[i].name, o.place[i].node, o.nodes,
              o.nodes == 1 ? "" : "s");
      return 2;
    }
  if (o.bin_dir == NULL) {
    size_t len = sizeof(exe_dir);
    if (uv_exepath(exe_dir, &len) != 0) {
      fprintf(stderr, "chat-scenario: cannot find my directory; use "
                      "--bin-dir\n");
      return 2;
    }
    char *slash = strrchr(exe_dir, '/');
    if (slash != NULL)
      *slash = '\0';
    o.bin_dir = exe_dir;
  }
  /* Children start in their own temporary directory: the path must not
   * depend on ours. */
  static char bin_abs[PATH_MAX];
  if (realpath(o.bin_dir, bin_abs) == NULL) {
    fprintf(stderr, "chat-scenario: --bin-dir %s: %s\n", o.bin_dir,
            strerror(errno));
    return 2;
  }
  o.bin_dir = bin_abs;
  /* A child that dies while we write to it must not take us with it. */
  signal(SIGPIPE, SIG_IGN);
  setvbuf(stdout, NULL, _IOLBF, 0);

  /* Parse everything first: a typo should not cost a long run. */
  int nfiles = argc - optind, bad = 0;
  chat_scenario_script_t **scripts = calloc((size_t)nfiles, sizeof(*scripts));
  if (scripts == NULL)
    return 2;
  for (int i = 0; i < nfiles; i++) {
    chat_scenario_error_t err;
    const char *path = argv[optind + i];
    if (chat_scenario_parse_file(path, &scripts[i], &err) != 0) {
      if (err.line > 0)
        fprintf(stderr, "%s:%d: %s\n", path, err.line, err.text);
      else
        fprintf(stderr, "%s: %s\n", path, err.text);
      bad = 1;
    }
  }
  /* A --place for a name no script has is a typo, not a choice. */
  for (size_t k = 0; !bad && k < o.nplace; k++) {
    int found = 0;
    for (int i = 0; !found && i < nfiles; i++)
      for (size_t j = 1; j < scripts[i]->nnames; j++)
        found = found || strcmp(scripts[i]->names[j], o.place[k].name) == 0;
    if (!found) {
      fprintf(stderr, "chat-scenario: --place %s: no script has a client "
                      "'%s'\n", o.place[k].name, o.place[k].name);
      bad = 1;
    }
  }
  /* --check also knows chat-client's events: an expectation of an event or
   * a field that can never come is a mistake in the script. */
  for (int i = 0; check && !bad && i < nfiles; i++)
    for (size_t k = 0; k < scripts[i]->nsteps; k++) {
      const chat_scenario_step_t *st = &scripts[i]->steps[k];
      char why[600];
      if (st->kind != CHAT_SCENARIO_SEES && st->kind != CHAT_SCENARIO_NEVER)
        continue;
      int rc = chat_scenario_event_check(st->text, NULL, why, sizeof(why));
      for (size_t j = 0; rc == 0 && j < st->nconds; j++)
        rc = chat_scenario_event_check(st->text, st->conds[j].field, why,
                                       sizeof(why));
      if (rc < 0) {
        fprintf(stderr, "%s:%d: %s\n", scripts[i]->path, st->line, why);
        bad = 1;
      }
    }
  int status = bad ? 2 : 0;
  for (int i = 0; !bad && !check && i < nfiles; i++) {
    int rc = chat_scenario_run(scripts[i], &o);
    if (rc < 0) {
      fprintf(stderr, "chat-scenario: %s: cannot run: %s\n", scripts[i]->path,
              strerror(-rc));
      status = 1;
    } else if (rc != CHAT_SCENARIO_PASS) {
      status = 1;
      if (rc == CHAT_SCENARIO_INTERRUPTED)
        break;
    }
  }
  for (int i = 0; i < nfiles; i++)
    chat_scenario_script_free(scripts[i]);
  free(scripts);
  return status;
}
