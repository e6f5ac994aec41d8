/* redis.c -- chat-scenario --redis (and --nodes): a redis-server for one
 * scenario (tests/support/redis_proc.h: a temporary directory, a free port,
 * appendonly yes, appendfsync always), whose URL every node gets as --db,
 * so a restarted node finds the same data and nodes share it. */
#include <stdlib.h>

#include "redis_proc.h"
#include "run_int.h"

const char *chat_scenario_redis_missing(void) { return rp_missing(); }

int run_redis_start(run_t *r) {
  rp_t *p = calloc(1, sizeof(*p));
  if (p == NULL)
    return -1;
  if (rp_start(p, NULL) != 0) {
    rp_free(p);
    free(p);
    return -1;
  }
  r->redis = p;
  run_note(r, "runner", CHAT_SCENARIO_T_NOTE, "redis-server at %s", p->url);
  return 0;
}

const char *run_redis_url(const run_t *r) { return r->redis->url; }

void run_redis_stop(run_t *r) {
  if (r->redis == NULL)
    return;
  rp_free(r->redis);
  free(r->redis);
  r->redis = NULL;
}
