/* harness.h -- the integration-test library: child processes, a chat-server
 * under test, and a raw protocol client over a blocking socket.
 *
 * Everything here is for cmocka tests: a failure of the harness itself is a
 * failed test (fail_msg), not a return code, unless the function says it
 * returns one. Every child process is killed and reaped at exit, including
 * after a failed assertion, an abort or a ctest timeout (SIGTERM), and every
 * child gets PR_SET_PDEATHSIG so it cannot outlive a crashed test.
 *
 * Deadlines are in milliseconds. TH_DEADLINE_MS (10 s) is generous on purpose:
 * a busy 2-core machine running ASan builds is slow, and a test only waits
 * that long when it is about to fail anyway.
 */
#ifndef TH_HARNESS_H
#define TH_HARNESS_H

#include <jansson.h>
#include <stddef.h>
#include <sys/types.h>

#define TH_DEADLINE_MS 10000
#define TH_LINE_MAX (1 << 20) /* longest line read from a process or socket */

/* ---- Processes ---------------------------------------------------------- */

typedef struct th_proc th_proc_t;

typedef enum th_stream { TH_STDOUT = 1, TH_STDERR = 2 } th_stream_t;

/* Starts argv[0] (a path) with argv, the environment plus env (NULL or a
 * NULL-terminated list of "NAME=VALUE", which override), and pipes to its
 * stdin, stdout and stderr. A background thread drains both output pipes into
 * buffers, so a chatty child never blocks on a full pipe. Fails the test when
 * the process cannot be started. */
th_proc_t *th_proc_spawn(const char *const argv[], const char *const env[]);
pid_t th_proc_pid(const th_proc_t *p);
/* Writes line to the child's stdin, adding LF when missing. Returns 0 or
 * -errno (e.g. -EPIPE once the child is gone). */
int th_proc_write(th_proc_t *p, const char *line);
void th_proc_close_stdin(th_proc_t *p);
/* The next complete line (LF stripped) of stream, or NULL when none arrived
 * within timeout_ms or the stream ended. The string is owned by p and valid
 * until the next read of that stream. */
const char *th_proc_read_line(th_proc_t *p, th_stream_t s, int timeout_ms);
/* Reads lines of stream until one contains needle; returns it (as above) or
 * NULL at the deadline / end of stream. */
const char *th_proc_wait_line(th_proc_t *p, th_stream_t s, const char *needle,
                              int timeout_ms);
/* Everything the stream produced so far (at most its last 256 KiB), NUL
 * terminated, owned by p; for failure messages. */
const char *th_proc_output(th_proc_t *p, th_stream_t s);
int th_proc_signal(th_proc_t *p, int sig);
/* Waits for the child to end, and then (within the same deadline) for its
 * output pipes to be read to their end, so th_proc_output() has everything
 * it wrote. Returns 0 and sets *status (waitpid's) when it ended,
 * -ETIMEDOUT otherwise. Safe to call again after it ended. */
int th_proc_wait(th_proc_t *p, int timeout_ms, int *status);
/* Exit code when it exited, 128 + signal when killed, -1 while running. */
int th_proc_exit_code(const th_proc_t *p);
/* SIGKILLs (if still running), reaps, closes the pipes and frees p. */
void th_proc_free(th_proc_t *p);
/* Kills and reaps every child still running (also called at exit). */
void th_proc_kill_all(void);

/* ---- chat-server under test --------------------------------------------- */

typedef struct th_server th_server_t;

/* Starts CHAT_BIN_DIR/chat-server --listen 127.0.0.1:0 --db <fresh temp
 * dir>/chat.db --hash-cost min, then the NULL-terminated extra args (may be
 * NULL), and waits up to 20 s for its "listening on HOST:PORT" line. Fails the
 * test when it does not come. */
th_server_t *th_server_start(const char *const extra[]);
int th_server_port(const th_server_t *s);
th_proc_t *th_server_proc(th_server_t *s);
const char *th_server_db(const th_server_t *s);
/* Stops the running process with sig (SIGTERM, SIGINT or SIGKILL), waits for
 * it, and returns its exit code as th_proc_exit_code() does. */
int th_server_stop(th_server_t *s, int sig);
/* Starts it again on the same database with the same extra args (stopping it
 * first with sig when it still runs); the port changes. */
void th_server_restart(th_server_t *s, int sig);
/* Prints the server's stderr (its log) to stderr, for a failing test. */
void th_server_dump(th_server_t *s);
/* Kills it if running, removes the temp dir, frees s. NULL is fine. */
void th_server_free(th_server_t *s);
/* Internal: dumps the log of every live server (used on failures). */
void th__server_dump_all(void);

/* ---- cmocka fixtures: one fresh server per test ------------------------- */

/* The password th_fixture_user registers with. */
#define TH_FIXTURE_PW "password1"

/* Setup: *state = th_server_start(NULL). Returns 0 (a start that fails has
 * failed the test already). */
int th_fixture_server_up(void **state);
/* The same with the NULL-terminated extra args; for a setup function of a
 * test that needs server flags:
 *   static int up_rate(void **state) {
 *     const char *const extra[] = {"--rate-limit", "2", NULL};
 *     return th_fixture_server_up_with(state, extra);
 *   }
 * extra need only live until it returns. */
int th_fixture_server_up_with(void **state, const char *const extra[]);
/* Teardown: stops the server in *state with SIGTERM and frees it; returns -1
 * (failing the test) unless it exited 0, so every test also checks a clean
 * shutdown -- and, under ASan, that the server leaked nothing. */
int th_fixture_server_down(void **state);

/* ---- Raw protocol client ------------------------------------------------ */

typedef struct th_client th_client_t;

/* Connects to 127.0.0.1:port and reads the welcome frame, which it keeps
 * (th_client_welcome). Fails the test when either fails. */
th_client_t *th_client_connect(int port);
/* Connects without reading anything (for server_busy and the like). */
th_client_t *th_client_connect_raw(int port);
const json_t *th_client_welcome(const th_client_t *c);
/* Sends json_pack(fmt, ...) as one line. Fails the test on a pack error;
 * returns 0 or -errno from the socket (a closed peer is not a failure). */
int th_client_send(th_client_t *c, const char *fmt, ...);
/* Sends raw bytes as they are. Returns 0 or -errno. */
int th_client_send_raw(th_client_t *c, const void *data, size_t len);
/* The next frame, a new reference, or NULL at the deadline or end of stream
 * (th_client_closed tells which). Fails the test on a line that is not JSON. */
json_t *th_client_recv(th_client_t *c, int timeout_ms);
/* Receives until a frame of type arrives and returns it (new reference).
 * Frames of other types are kept, in order, for th_client_take_other().
 * Fails the test (printing what came instead and the server logs) when none
 * arrives within timeout_ms. */
json_t *th_client_expect(th_client_t *c, const char *type, int timeout_ms);
/* Like th_client_expect, but returns NULL instead of failing. */
json_t *th_client_try_expect(th_client_t *c, const char *type, int timeout_ms);
/* Expects an error reply with code; returns the frame (new reference). */
json_t *th_client_expect_error(th_client_t *c, const char *code,
                               int timeout_ms);
/* The oldest frame skipped by expect, or from a queue of frames received but
 * not yet returned (new reference), or NULL. */
json_t *th_client_take_other(th_client_t *c);
/* Asserts that no frame arrives within ms (nothing pending either). */
void th_client_expect_silence(th_client_t *c, int ms);
/* Waits until the server closes the connection (frames before it are
 * discarded). Returns 1 when closed, 0 at the deadline. */
int th_client_wait_closed(th_client_t *c, int timeout_ms);
int th_client_closed(const th_client_t *c);
int th_client_fd(const th_client_t *c);
/* register (ok or user_exists both fine) then login; fails the test when the
 * login is not ok. p2p_port 0 means none. */
void th_client_register(th_client_t *c, const char *user, const char *password);
void th_client_login(th_client_t *c, const char *user, const char *password,
                     int p2p_port);
/* connect + register + login in one go. */
th_client_t *th_client_user(int port, const char *user, const char *password);
void th_client_close(th_client_t *c); /* NULL is fine */
/* th_client_user on the server in *state, with TH_FIXTURE_PW. */
th_client_t *th_fixture_user(void **state, const char *name);

/* Sends json_pack(fmt, ...) with a fresh integer "id" added and returns the
 * reply carrying that id (ok, error or pong; new reference). Other frames
 * that arrive meanwhile are queued. Fails the test when no reply comes
 * within TH_DEADLINE_MS. */
json_t *th_client_call(th_client_t *c, const char *fmt, ...);
/* th_client_call that must answer ok (else the test fails); the reply is
 * returned. */
json_t *th_client_call_ok(th_client_t *c, const char *fmt, ...);
/* th_client_call that must answer an error with code (any code when code is
 * NULL), else the test fails; the reply is dropped. */
void th_client_call_error(th_client_t *c, const char *code, const char *fmt,
                          ...);
/* Makes a and b contacts: a asks, b accepts; consumes the contact_request
 * and both contact_added events. */
void th_make_contacts(th_client_t *a, const char *an, th_client_t *b,
                      const char *bn);

/* ---- Messages through the relay (relay.c) ------------------------------ */

/* th_client_call of a send; fails the test unless the reply is ok with the
 * same msg_id and the given status ("relayed" or "stored"). */
void th_client_send_msg(th_client_t *c, const char *to, const char *msg_id,
                        const char *body, const char *status);
/* Expects a deliver within TH_DEADLINE_MS and fails the test unless it has
 * these from, msg_id, body and offline (0 or 1), a plausible ts and no id.
 * Returns it (new reference). */
json_t *th_client_expect_deliver(th_client_t *c, const char *from,
                                 const char *msg_id, const char *body,
                                 int offline);
/* Sends the ack of from's msg_id (it gets no reply). */
void th_client_ack(th_client_t *c, const char *from, const char *msg_id);

/* Helpers for asserting on frames. */
const char *th_str(const json_t *obj, const char *key); /* NULL if absent */
long long th_int(const json_t *obj, const char *key);   /* -1 if absent */
/* Fails unless obj has "type":"type" (and, when code, "code":code). */
void th_assert_type(const json_t *obj, const char *type, const char *code);

/* Monotonic milliseconds. */
long long th_now_ms(void);
/* A loopback port that was free a moment ago (for a server that must come
 * back on the same port after a restart). Fails the test when none. */
int th_free_port(void);

/* ---- TLS direct links (PROTOCOL.md 7), tls.c ------------------------------
 * A raw peer that speaks TLS 1.3 the way chat-client's direct links do: a
 * fresh Ed25519 key in a self-signed certificate, both ends present one,
 * any certificate passes the handshake and the keys are compared after it.
 * The th_client_t functions above work on such a connection as on plain
 * TCP. */

typedef struct th_peer_tls th_peer_tls_t;
th_peer_tls_t *th_peer_tls_new(void); /* fails the test when it cannot */
/* Its public key as chat-client announces one: 64 lowercase hex digits. */
const char *th_peer_tls_key(const th_peer_tls_t *k);
void th_peer_tls_free(th_peer_tls_t *k); /* NULL is fine */
/* Dials 127.0.0.1:port and runs the client side of the handshake with k.
 * NULL when the handshake fails (within TH_DEADLINE_MS). */
th_client_t *th_client_dial_tls(int port, th_peer_tls_t *k);
/* A listening socket on 127.0.0.1 at a free port (*port). */
int th_listen(int *port);
/* Accepts one connection on lfd within timeout_ms and runs the server side
 * of the handshake with k. NULL on timeout or a failed handshake. */
th_client_t *th_accept_tls(int lfd, th_peer_tls_t *k, int timeout_ms);
/* The key the other end proved. 0, or -1. */
int th_client_tls_peer_key(const th_client_t *c, char hex[65]);

/* For tls.c: a th_client_t over fd (and ssl, or NULL); and its ssl. */
struct ssl_st;
th_client_t *th__client_wrap(int fd, struct ssl_st *ssl);
struct ssl_st *th__client_ssl(const th_client_t *c);

#endif /* TH_HARNESS_H */
