/* hasher.h -- argon2id in a helper process with an address space of its
 * own.
 *
 * Why a process: libsodium maps each hash's memory (64 MiB at the
 * interactive cost) with MAP_POPULATE and unmaps it afterwards, and the
 * kernel holds the address space's lock (mmap_lock) while it zeroes and
 * frees those pages. Hash threads run at SCHED_IDLE so that the loop and
 * the store thread get a core at once; preempted with that lock held, they
 * made the store thread's malloc (mprotect, growing its arena) and the
 * loop's brk wait until the scheduler let an idle thread run again: 15-60
 * ms stalls of `stored` replies during a login storm (perf sched: the
 * committer in rwsem_down_write_slowpath under mprotect). A child process
 * has its own mmap_lock, so its hashes cannot stall the server's threads.
 *
 * The child is forked by chat__hasher_start(), which must run before the
 * process starts any thread (fork copies only the calling thread). It gets
 * one SOCK_SEQPACKET connection per slot and one thread per connection,
 * all at SCHED_IDLE; a request is one datagram, its answer one datagram.
 * It dies with its parent (PR_SET_PDEATHSIG) and ignores the terminal's
 * SIGINT, so that the parent's own shutdown decides when hashing stops. */
#ifndef CHAT_HASHER_H
#define CHAT_HASHER_H

#include <stddef.h>
#include <sys/types.h>

#include "server.h" /* chat_server_hash_cost_t */

typedef struct chat__hasher chat__hasher_t;

/* Forks the helper with nslots (at least 1) connections: at most nslots
 * calls can be in progress at once. Returns 0, -EINVAL, -ENOMEM or the
 * negated errno of socketpair/fork. */
int chat__hasher_start(unsigned nslots, chat__hasher_t **out);

/* Blocking; any thread, up to nslots at once. verify 0: hashes password at
 * cost into hash (hashlen bytes, at least crypto_pwhash_STRBYTES); verify
 * 1: checks password against the string in hash. Returns 0, -EACCES (no
 * match), -ENOMEM (the helper could not get the memory), -E2BIG (password
 * or hash too long to send), -EBUSY (nslots calls already in progress) or
 * -EPIPE (the helper is gone; every later call fails at once the same way).
 * Only -EACCES and 0 come from a computed hash: on any other error the
 * caller may compute it itself. */
int chat__hasher_call(chat__hasher_t *h, int verify,
                      chat_server_hash_cost_t cost, const char *password,
                      char *hash, size_t hashlen);

/* The helper's pid (tests). */
pid_t chat__hasher_pid(const chat__hasher_t *h);

/* Kills the helper, reaps it and frees h. No call may be in progress. NULL
 * is a no-op. */
void chat__hasher_free(chat__hasher_t *h);

#endif /* CHAT_HASHER_H */
