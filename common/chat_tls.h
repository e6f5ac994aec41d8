/* chat_tls.h -- TLS under a chat_conn_t, on OpenSSL 3 with memory BIOs.
 *
 * The connection reads ciphertext from its socket into the SSL object and
 * plaintext out of it into the JSON Lines decoder; frames queued with
 * chat_conn_send are encrypted when the loop turn's batch is written. The
 * owner sees the same callbacks as on plain TCP; only the connect callback
 * waits for the end of the handshake.
 *
 * Three kinds of context:
 *   server  a certificate chain and key from PEM files (--tls-listen);
 *   client  verifies the server's chain and host name against the system's
 *           CAs or one PEM file (--tls, --tls-ca);
 *   peer    direct links between clients (PROTOCOL.md section 7): each side
 *           has a fresh Ed25519 key in a self-signed certificate, both sides
 *           present theirs, and each pins the other's public key to the one
 *           the server vouched for (chat_conn_tls_peer_key). TLS 1.3 only.
 *
 * Contexts are reference counted by OpenSSL; a connection keeps its own
 * reference, so a context may be freed while connections made from it live.
 */
#ifndef CHAT_TLS_H
#define CHAT_TLS_H

#include <stddef.h>

#include "chat_conn.h"

/* Hex of an Ed25519 public key: 64 digits and the NUL. */
#define CHAT_TLS_KEY_HEX 65

typedef struct chat_tls_ctx chat_tls_ctx_t;

/* Each returns 0, or a negative errno-style code with a one-line reason in
 * err (e.g. "cert.pem: No such file or directory"). */
int chat_tls_server_ctx(const char *cert_file, const char *key_file,
                        chat_tls_ctx_t **out, char *err, size_t errlen);
/* ca_file NULL: the system's default trust store. */
int chat_tls_client_ctx(const char *ca_file, chat_tls_ctx_t **out, char *err,
                        size_t errlen);
int chat_tls_peer_ctx(chat_tls_ctx_t **out, char *err, size_t errlen);
/* The peer context's own public key, as CHAT_TLS_KEY_HEX - 1 hex digits.
 * Returns 0, or -EINVAL for another kind of context. */
int chat_tls_ctx_key(const chat_tls_ctx_t *ctx, char hex[CHAT_TLS_KEY_HEX]);
void chat_tls_ctx_free(chat_tls_ctx_t *ctx);

/* Makes c speak TLS with ctx: call after chat_conn_init and before
 * chat_conn_accept (a server or accepting peer context) or
 * chat_conn_connect (client or dialing peer). host: the name or address the
 * client context verifies the certificate against and sends as SNI; ignored
 * by the other kinds. Returns 0, -EINVAL (c not fresh), or -ENOMEM.
 *
 * A handshake that fails closes the connection with UV_EPROTO (the connect
 * callback gets it when dialing); chat_conn_tls_error then says why. */
int chat_conn_tls(chat_conn_t *c, chat_tls_ctx_t *ctx, const char *host);

/* Nonzero when c speaks TLS (whether or not the handshake is done). */
int chat_conn_is_tls(const chat_conn_t *c);
/* Why the handshake failed, e.g. "certificate verify failed: self-signed
 * certificate in certificate chain"; NULL when it did not. Valid until c's
 * on_close returns. */
const char *chat_conn_tls_error(const chat_conn_t *c);
/* The other end's Ed25519 public key, after the handshake of a peer-context
 * connection. Returns 0, or -ENOENT (no handshake yet or another kind). */
int chat_conn_tls_peer_key(const chat_conn_t *c, char hex[CHAT_TLS_KEY_HEX]);
/* "TLSv1.3" and the like once the handshake is done, else NULL. */
const char *chat_conn_tls_version(const chat_conn_t *c);

#endif /* CHAT_TLS_H */
