/* store_vfs.h -- an SQLite VFS that combines the writer's WAL writes
 * (private to store_sqlite*.c).
 *
 * SQLite appends each WAL frame with two pwrite calls, its 24-byte header
 * and then its page, so frames straddle the OS's pages: a commit of 300
 * pages made 600 calls, each touching one or two page-cache pages. This
 * VFS wraps the default one and, for WAL files only, gathers contiguous
 * writes in a 64 KiB buffer that goes out in one pwrite before anything
 * else touches the file: a read, a sync, a size or truncate, a file
 * control, a write elsewhere, or close. Nothing is durable before a sync
 * in any case, and SQLite publishes frames to readers (the wal-index) only
 * after the commit's sync (synchronous=FULL), so what a crash or another
 * connection can see is unchanged. Every other file is the default VFS's
 * own, untouched.
 */
#ifndef CHAT_STORE_VFS_H
#define CHAT_STORE_VFS_H

#include <stdint.h>

/* Registers the VFS (once, thread-safe) and returns its name for
 * sqlite3_open_v2, or NULL when SQLite has no default VFS to wrap. */
const char *chat__store_vfs(void);

typedef struct chat__store_vfs_stats {
  uint64_t writes;  /* xWrite calls on WAL files */
  uint64_t flushes; /* pwrite calls they became */
} chat__store_vfs_stats_t;

/* Process-wide counters, for tests. */
void chat__store_vfs_stats(chat__store_vfs_stats_t *out);

#endif /* CHAT_STORE_VFS_H */
