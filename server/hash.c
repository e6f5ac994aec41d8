/* hash.c -- argon2id via libsodium, off the loop thread. */
#include "hash.h"

#include <errno.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct hash_work {
  uv_work_t req;
  chat_hash_cb cb;
  void *arg;
  int verify;
  chat_hash_cost_t cost;
  int status;
  char *password; /* owned, wiped before free */
  char hash[crypto_pwhash_STRBYTES];
} hash_work_t;

int chat_hash_cost_parse(const char *name, chat_hash_cost_t *cost) {
  if (strcmp(name, "min") == 0)
    *cost = CHAT_HASH_MIN;
  else if (strcmp(name, "interactive") == 0)
    *cost = CHAT_HASH_INTERACTIVE;
  else if (strcmp(name, "moderate") == 0)
    *cost = CHAT_HASH_MODERATE;
  else
    return -EINVAL;
  return 0;
}

static void limits(chat_hash_cost_t cost, unsigned long long *ops,
                   size_t *mem) {
  switch (cost) {
  case CHAT_HASH_MIN:
    *ops = crypto_pwhash_OPSLIMIT_MIN;
    *mem = crypto_pwhash_MEMLIMIT_MIN;
    break;
  case CHAT_HASH_MODERATE:
    *ops = crypto_pwhash_OPSLIMIT_MODERATE;
    *mem = crypto_pwhash_MEMLIMIT_MODERATE;
    break;
  default:
    *ops = crypto_pwhash_OPSLIMIT_INTERACTIVE;
    *mem = crypto_pwhash_MEMLIMIT_INTERACTIVE;
    break;
  }
}

int chat_hash_make_sync(chat_hash_cost_t cost, const char *password,
                        char *out, size_t outlen) {
  unsigned long long ops;
  size_t mem;
  if (outlen < crypto_pwhash_STRBYTES)
    return -EINVAL;
  limits(cost, &ops, &mem);
  if (crypto_pwhash_str_alg(out, password, strlen(password), ops, mem,
                            crypto_pwhash_ALG_ARGON2ID13) != 0)
    return -ENOMEM; /* libsodium fails only when it cannot get the memory */
  return 0;
}

static void work_cb(uv_work_t *req) {
  hash_work_t *w = req->data;
  if (w->verify)
    w->status = crypto_pwhash_str_verify(w->hash, w->password,
                                         strlen(w->password)) == 0
                    ? 0
                    : -EACCES;
  else
    w->status = chat_hash_make_sync(w->cost, w->password, w->hash,
                                    sizeof(w->hash));
}

static void after_cb(uv_work_t *req, int status) {
  hash_work_t *w = req->data;
  if (status < 0) /* cancelled */
    w->status = status;
  sodium_memzero(w->password, strlen(w->password));
  free(w->password);
  w->cb(w->arg, w->status, w->verify || w->status < 0 ? NULL : w->hash);
  free(w);
}

static int submit(uv_loop_t *loop, int verify, chat_hash_cost_t cost,
                  const char *hash, const char *password, chat_hash_cb cb,
                  void *arg) {
  hash_work_t *w = calloc(1, sizeof(*w));
  if (w == NULL)
    return -ENOMEM;
  w->password = strdup(password);
  if (w->password == NULL) {
    free(w);
    return -ENOMEM;
  }
  if (hash)
    snprintf(w->hash, sizeof(w->hash), "%s", hash);
  w->verify = verify;
  w->cost = cost;
  w->cb = cb;
  w->arg = arg;
  w->req.data = w;
  int r = uv_queue_work(loop, &w->req, work_cb, after_cb);
  if (r < 0) {
    free(w->password);
    free(w);
  }
  return r;
}

int chat_hash_make(uv_loop_t *loop, chat_hash_cost_t cost,
                   const char *password, chat_hash_cb cb, void *arg) {
  return submit(loop, 0, cost, NULL, password, cb, arg);
}

int chat_hash_verify(uv_loop_t *loop, const char *hash, const char *password,
                     chat_hash_cb cb, void *arg) {
  return submit(loop, 1, 0, hash, password, cb, arg);
}
