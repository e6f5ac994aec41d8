/* nodes.c -- the server as one or more chat-server nodes (--nodes N): which
 * nodes a server step is about, starting, restarting and signalling them
 * together or one at a time, their "listening on" lines, and which node
 * each client goes to with what --server. Without --nodes there is one
 * node, called "server", and everything reads as it always did. */
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "run_int.h"

static const char *const node_names[CHAT_SCENARIO_MAX_NODES] = {
    "n1", "n2", "n3", "n4", "n5", "n6", "n7", "n8"};

int node_init(run_t *r) {
  size_t n = r->o->nodes > 0 ? (size_t)r->o->nodes : 1;
  if ((r->nodes = calloc(n, sizeof(*r->nodes))) == NULL)
    return -ENOMEM;
  r->nnodes = n;
  for (size_t k = 0; k < n; k++) {
    /* Node 1 keeps the server's participant slot, so that a script's
     * steps about participant 0 find it; the others follow the clients. */
    peer_t *node = k == 0 ? &r->peers[0] : &r->peers[r->npeers + k - 1];
    node->run = r;
    node->index = CHAT_SCENARIO_SERVER;
    node->node = (int)k + 1;
    node->name = r->o->nodes > 0 ? node_names[k] : r->s->names[0];
    r->nodes[k] = node;
  }
  return 0;
}

int node_targets(const chat_scenario_step_t *st, const peer_t *peer) {
  if (peer->index != st->who)
    return 0;
  return st->who != CHAT_SCENARIO_SERVER || st->node == 0 ||
         st->node == peer->node;
}

const char *node_label(const run_t *r, const peer_t *node) {
  return r->o->nodes > 0 ? node->name : "the server";
}

/* The "listening on HOST:PORT" line gives the address clients use; with
 * --tls the one that ends "(tls)". Node 1's is also $server, $host and
 * $port. 1 when it was there. */
static int take_listen_line(run_t *r, peer_t *node) {
  ssize_t i = chat_scenario_queue_find_text(
      &node->err, r->o->tls ? " (tls)" : "listening on ");
  if (i < 0 || strstr(node->err.items[i].line, "listening on ") == NULL)
    return 0;
  node->err.items[i].consumed = 1;
  const char *a = strstr(node->err.items[i].line, "listening on ") + 13;
  size_t len = strcspn(a, " \t,;");
  const char *colon = memrchr(a, ':', len);
  if (len == 0 || len >= sizeof(node->addr) || colon == NULL ||
      atoi(colon + 1) <= 0) {
    run_fail(r, "cannot read an address in: %s", node->err.items[i].line);
    return 0;
  }
  memcpy(node->addr, a, len);
  node->addr[len] = '\0';
  node->listening = 1;
  if (node->node != 1)
    return 1;
  char host[sizeof(node->addr)];
  size_t hlen = (size_t)(colon - a);
  if (hlen >= 2 && a[0] == '[')
    memcpy(host, a + 1, hlen -= 2);
  else
    memcpy(host, a, hlen);
  host[hlen] = '\0';
  if (chat_scenario_vars_set(&r->vars, "server", node->addr) != 0 ||
      chat_scenario_vars_set(&r->vars, "host", host) != 0 ||
      chat_scenario_vars_set(&r->vars, "port", colon + 1) != 0) {
    run_fail(r, "out of memory");
    return 0;
  }
  return 1;
}

int node_start_all(run_t *r) {
  /* All at once: they share nothing but Redis, and each says by itself
   * when it listens. */
  for (size_t k = 0; k < r->nnodes; k++) {
    int rc = peer_start_server(r, r->nodes[k]);
    if (rc != 0)
      return rc;
  }
  return 0;
}

void node_restart(run_t *r, const chat_scenario_step_t *st) {
  for (size_t k = 0; k < r->nnodes; k++) {
    peer_t *node = r->nodes[k];
    if (!node_targets(st, node))
      continue;
    node->restarting = 1;
    if (node->proc != NULL && !node->exited)
      peer_signal(r, node, SIGTERM);
  }
}

int node_signal(run_t *r, const chat_scenario_step_t *st) {
  size_t sent = 0, named = 0;
  peer_t *last = NULL;
  char how[96];
  for (size_t k = 0; k < r->nnodes; k++) {
    peer_t *node = r->nodes[k];
    if (!node_targets(st, node))
      continue;
    named++;
    last = node;
    sent += peer_signal(r, node, st->signum) == 0;
  }
  if (sent > 0)
    return 0;
  /* Nodes already down are skipped; a step with none left to signal is
   * as wrong as signalling a client that exited. */
  if (named == 1)
    run_fail(r, "%s is not running (%s)", last->name,
             peer_exit_text(last, how, sizeof(how)));
  else
    run_fail(r, "no node is running");
  return -ESRCH;
}

int node_poll(run_t *r, const chat_scenario_step_t *st) {
  int done = 1, gone = 1;
  size_t named = 0;
  peer_t *last = NULL;
  char how[96];
  for (size_t k = 0; k < r->nnodes; k++) {
    peer_t *node = r->nodes[k];
    if (!node_targets(st, node))
      continue;
    named++;
    last = node;
    switch (r->wait) {
    case RUN_W_RESTART:
      if (node->restarting) {
        if (!node->exited) {
          done = 0;
          break;
        }
        node->restarting = 0;
        if (peer_start_server(r, node) != 0)
          return 0;
      }
      /* A restarted node must say it listens again. */
      /* fall through */
    case RUN_W_LISTEN:
      if (node->listening || take_listen_line(r, node))
        break;
      if (r->failed)
        return 0;
      if (node->exited) {
        run_fail(r, "%s ended before it was listening: %s",
                 node_label(r, node), peer_exit_text(node, how, sizeof(how)));
        return 0;
      }
      done = 0;
      break;
    case RUN_W_LOGS: {
      /* Without a node named, any node's log will do. */
      ssize_t i = chat_scenario_queue_find_text(&node->err, r->text);
      if (i >= 0) {
        node->err.items[i].consumed = 1;
        return 1;
      }
      gone = gone && node->drained;
      done = 0;
      break;
    }
    case RUN_W_EXIT:
      if (!node->exited) {
        done = 0;
      } else if (st->kind == CHAT_SCENARIO_EXITS &&
                 !run_exit_matches(node, st)) {
        run_fail(r, "%s ended with %s", node->name,
                 peer_exit_text(node, how, sizeof(how)));
        return 0;
      }
      break;
    default:
      return 0;
    }
  }
  /* Nothing more can come from nodes that are gone and fully read. */
  if (r->wait == RUN_W_LOGS && gone && named > 0 && !r->failed) {
    if (named == 1)
      run_fail(r, "%s is gone (%s) and printed nothing that matches",
               last->name, peer_exit_text(last, how, sizeof(how)));
    else
      run_fail(r, "every node is gone and printed nothing that matches");
  }
  return done && !r->failed;
}

void node_deadline(run_t *r, const chat_scenario_step_t *st) {
  /* Names the first node still holding the step up. */
  for (size_t k = 0; k < r->nnodes; k++) {
    peer_t *node = r->nodes[k];
    if (!node_targets(st, node))
      continue;
    if ((r->wait == RUN_W_EXIT || r->wait == RUN_W_RESTART) &&
        (r->wait == RUN_W_EXIT ? !node->exited : node->restarting)) {
      run_fail(r, "timed out after %.1f s waiting for %s to exit",
               st->within, node->name);
      return;
    }
    if ((r->wait == RUN_W_LISTEN || r->wait == RUN_W_RESTART) &&
        !node->listening) {
      run_fail(r, "timed out after %.1f s waiting for %s's 'listening on' "
                  "line", st->within, node_label(r, node));
      return;
    }
  }
  run_fail(r, "timed out after %.1f s", st->within);
}

int node_place(run_t *r, peer_t *client, const chat_scenario_step_t *st,
               char *server, size_t len) {
  int node = 0;
  for (size_t i = 0; i < r->o->nplace; i++)
    if (strcmp(r->o->place[i].name, client->name) == 0)
      node = r->o->place[i].node;
  if (node == 0)
    node = st->node;
  if (node == 0)
    node = client->node;
  /* Participants are numbered in the order the script first starts them,
   * so this is round robin in that order; a pinned client keeps its place
   * in the count, so pinning one moves no other. */
  if (node == 0)
    node = (int)((size_t)(client->index - 1) % r->nnodes) + 1;
  client->node = node;
  if (st->failover || r->o->failover)
    client->failover = 1;
  if (r->o->nodes > 0)
    run_note(r, client->name, CHAT_SCENARIO_T_NOTE, "on %s",
             r->nodes[node - 1]->name);

  /* Its own node first. The others follow in rotation from it (n2 gets
   * n2,n3,n1), so the clients of a node that dies spread over the rest
   * instead of all moving to n1. */
  size_t used = 0;
  for (size_t j = 0; j < (client->failover ? r->nnodes : 1); j++) {
    const peer_t *n = r->nodes[((size_t)node - 1 + j) % r->nnodes];
    int w = snprintf(server + used, len - used, "%s%s", j ? "," : "",
                     n->addr);
    if (w < 0 || (size_t)w >= len - used)
      return -ENOSPC;
    used += (size_t)w;
  }
  return 0;
}
