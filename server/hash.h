/* hash.h -- argon2id password hashing on the libuv thread pool.
 *
 * crypto_pwhash takes tens of milliseconds and tens of MiB by design, so it
 * never runs on the loop thread; the callback comes back on the loop. */
#ifndef CHAT_HASH_H
#define CHAT_HASH_H

#include <stddef.h>
#include <uv.h>

typedef enum chat_hash_cost {
  CHAT_HASH_MIN = 0,      /* libsodium's minimum: for tests only */
  CHAT_HASH_INTERACTIVE,  /* OPSLIMIT/MEMLIMIT_INTERACTIVE, the default */
  CHAT_HASH_MODERATE
} chat_hash_cost_t;

/* Parses "min", "interactive" or "moderate". 0 or -EINVAL. */
int chat_hash_cost_parse(const char *name, chat_hash_cost_t *cost);

/* For make: status 0 and hash (borrowed for the call) or a negative error.
 * For verify: status 0 when the password matches, -EACCES when not. */
typedef void (*chat_hash_cb)(void *arg, int status, const char *hash);

/* Hashes password on the thread pool. Returns 0 (cb will be called) or
 * -ENOMEM / a libuv error (cb will not). */
int chat_hash_make(uv_loop_t *loop, chat_hash_cost_t cost,
                   const char *password, chat_hash_cb cb, void *arg);
int chat_hash_verify(uv_loop_t *loop, const char *hash, const char *password,
                     chat_hash_cb cb, void *arg);
/* The same, synchronously (start-up's dummy hash, tests). 0 or -ENOMEM. */
int chat_hash_make_sync(chat_hash_cost_t cost, const char *password,
                        char *out, size_t outlen);

#endif /* CHAT_HASH_H */
