/* committer_int.h -- internals of committer.c that tests reach into. */
#ifndef CHAT_COMMITTER_INT_H
#define CHAT_COMMITTER_INT_H

#include "committer.h"
#include "worker.h"

/* The committer's store thread. Jobs submitted here run in order with the
 * commits (one thread, FIFO); a test holds a commit back with a job that
 * blocks ahead of it. (A later change may run store reads here too.) */
chat__worker_t *chat__committer_worker(chat__committer_t *c);

#endif /* CHAT_COMMITTER_INT_H */
