/* cluster_fixture.h -- what the cluster integration tests share
 * (test_cluster.c, test_cluster_faults.c, test_cluster_groups.c,
 * test_cluster_routes.c): one
 * redis-server of the test's own and up to MAX_NODES chat-server nodes on
 * it per case (cf_setup / cf_teardown, which kills and reaps whatever a
 * failed case left), raw protocol clients tracked so that a failed case
 * leaks none, waits with a deadline that ping as they wait, and soft
 * contract checks (cf_problem) that fail the case at its end.
 *
 * The nodes run with --heartbeat 2, so a dead node is found within 6 s;
 * a client that waits longer than that pings as it waits (cf_await()),
 * since the server drops a connection it has read nothing from for 3 x
 * heartbeat. */
#ifndef TEST_CLUSTER_FIXTURE_H
#define TEST_CLUSTER_FIXTURE_H

#include <jansson.h>

#include "harness.h"
#include "../support/redis_proc.h"

#define HB_S 2
#define HB_ARG "2"
#define HB_MS (HB_S * 1000)
/* The allowance on top of 3 x heartbeat for a busy 2-core machine (ASan
 * builds, other tests in parallel). */
#define DEATH_MARGIN_MS 1500
#define PING_EVERY_MS 1000
#define QUIET_MS 500
#define PW TH_FIXTURE_PW
#define MAX_NODES 4

typedef struct cluster {
  rp_t r;
  th_server_t *n[MAX_NODES];
} cluster_t;

/* ---- one cluster per case ------------------------------------------------ */

/* cmocka's setup and teardown: *state is the case's cluster_t. The
 * teardown runs after a failed case too. */
int cf_setup(void **state);
int cf_teardown(void **state);
/* Starts the case's Redis, or skips the case when there is no
 * redis-server. */
void cf_need_redis(cluster_t *c);
/* Node i, named name, on the case's Redis; on port (0: any free one). */
th_server_t *cf_node_up(cluster_t *c, int i, const char *name, int port);
int cf_port_of(cluster_t *c, int i);
/* cf_need_redis, then nodes n1 .. n<nodes> as nodes 0 .. nodes-1, each on
 * any free port. */
void cf_up(cluster_t *c, int nodes);
/* Stops every node with SIGTERM (each must exit 0: a clean stop, and no
 * leak under ASan), then Redis. */
void cf_down(cluster_t *c);

/* ---- clients -------------------------------------------------------------- */

/* c, closed by the teardown if the case fails before cf_close. */
th_client_t *cf_track(th_client_t *c);
void cf_close(th_client_t *c);
/* A tracked client of a new user (registered and logged in, with the
 * fixture's password) on the node at port. */
th_client_t *cf_user_at(int port, const char *user);
/* A tracked client logged in as an existing user on the node at port. */
th_client_t *cf_login_at(int port, const char *user);
/* Logs out (ok, then the server closes) and frees c. */
void cf_logout(th_client_t *c);
void cf_ping(th_client_t *c);

/* ---- waits and checks ----------------------------------------------------- */

/* Whether frame f's k is v (a NULL k matches anything). */
int cf_field_is(const json_t *f, const char *k, const char *v);
void cf_dump_frames(const char *what, const json_t *frames);
/* The next frame of type whose k1 is v1 and k2 is v2 (a NULL key matches
 * anything), within timeout_ms, pinging every PING_EVERY_MS while it
 * waits. Frames of type that do not match are dropped, after being
 * appended to seen when it is not NULL (the match is appended too);
 * frames of other types stay queued. Fails the case at the deadline. */
json_t *cf_await(th_client_t *c, int timeout_ms, json_t *seen,
                 const char *type, const char *k1, const char *v1,
                 const char *k2, const char *v2);
void cf_await_presence(th_client_t *c, const char *user, const char *status,
                       int timeout_ms, json_t *seen);
/* Every frame of type the server sent c before it answered a ping (so
 * everything sent before this call), appended to out. */
void cf_collect(th_client_t *c, const char *type, json_t *out);
void cf_assert_no_presence(const json_t *frames, const char *user,
                           const char *status, const char *who);
/* A delivered receipt of msg_id for to on c. */
void cf_expect_receipt(th_client_t *c, const char *to, const char *msg_id);
/* The entry of user in a contacts ok, or NULL. */
const json_t *cf_contact_in(const json_t *ok, const char *user);
/* c's contacts list shows user with status. */
void cf_assert_contact_status(th_client_t *c, const char *user,
                              const char *status);
/* Contract breaches that do not stop a case: each is noted, the case goes
 * on to check everything else, and fails at its end naming them all
 * (cf_problems_check). */
void cf_problem(const char *fmt, ...);
void cf_problems_check(void);
/* A deliver of from's msg_id with body on c; its offline flag is compared
 * with offline softly (cf_problem()). */
void cf_expect_deliver_soft(th_client_t *c, const char *from,
                            const char *msg_id, const char *body,
                            const char *group, int offline, const char *why);

#endif /* TEST_CLUSTER_FIXTURE_H */
