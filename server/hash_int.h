/* hash_int.h -- internals of hash.c that tests reach into. */
#ifndef CHAT_HASH_INT_H
#define CHAT_HASH_INT_H

#include "hash.h"
#include "worker.h"

/* The pool's worker, so a test can occupy its threads with jobs of its own
 * (gates) and so decide exactly when hashes may run. */
chat__worker_t *chat__hash_pool_worker(chat__hash_pool_t *p);

#endif /* CHAT_HASH_INT_H */
