/* store_vfs.c -- write-combining for WAL files (store_vfs.h).
 *
 * A wal_file_t is the sqlite3_file SQLite allocates for us (szOsFile), with
 * the default VFS's own file right behind it. Files that are not WAL files
 * are opened by the default VFS in place, so they carry its methods and
 * never pass through here.
 */
#include "store_vfs.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

/* Below the default unix VFS's cap of one write call (128 KiB less one:
 * seekAndWrite masks the count), and 16 frames of 4 KiB pages. */
#define WAL_BUF_BYTES (64u << 10)

typedef struct wal_file {
  sqlite3_file base;
  sqlite3_file *real; /* the default VFS's file, right after this struct */
  char *buf;          /* WAL_BUF_BYTES, allocated on the first write */
  size_t len;         /* buffered bytes, for the file's [off, off + len) */
  sqlite3_int64 off;
} wal_file_t;

static sqlite3_vfs *real_vfs;
static sqlite3_vfs wal_vfs;
static sqlite3_io_methods wal_methods;
/* Counters for tests: relaxed, as nothing is ordered by them. */
static atomic_uint_fast64_t n_writes, n_flushes;

#define REAL(p) (((wal_file_t *)(p))->real)

static int flush(wal_file_t *f) {
  int rc = SQLITE_OK;

  if (f->len > 0) {
    rc = f->real->pMethods->xWrite(f->real, f->buf, (int)f->len, f->off);
    f->len = 0;
    atomic_fetch_add_explicit(&n_flushes, 1, memory_order_relaxed);
  }
  return rc;
}

static int wal_write(sqlite3_file *p, const void *data, int n,
                     sqlite3_int64 off) {
  wal_file_t *f = (wal_file_t *)p;
  int rc;

  atomic_fetch_add_explicit(&n_writes, 1, memory_order_relaxed);
  if (f->buf == NULL && (f->buf = malloc(WAL_BUF_BYTES)) == NULL)
    return f->real->pMethods->xWrite(f->real, data, n, off);
  if (f->len > 0 && (off != f->off + (sqlite3_int64)f->len ||
                     f->len + (size_t)n > WAL_BUF_BYTES)) {
    if ((rc = flush(f)) != SQLITE_OK)
      return rc;
  }
  if ((size_t)n > WAL_BUF_BYTES) {
    atomic_fetch_add_explicit(&n_flushes, 1, memory_order_relaxed);
    return f->real->pMethods->xWrite(f->real, data, n, off);
  }
  if (f->len == 0)
    f->off = off;
  memcpy(f->buf + f->len, data, (size_t)n);
  f->len += (size_t)n;
  return SQLITE_OK;
}

static int wal_close(sqlite3_file *p) {
  wal_file_t *f = (wal_file_t *)p;
  int rc = flush(f);
  int rc2 = f->real->pMethods->xClose(f->real);

  free(f->buf);
  f->buf = NULL;
  return rc != SQLITE_OK ? rc : rc2;
}

static int wal_read(sqlite3_file *p, void *data, int n, sqlite3_int64 off) {
  int rc = flush((wal_file_t *)p);
  return rc != SQLITE_OK ? rc : REAL(p)->pMethods->xRead(REAL(p), data, n, off);
}

static int wal_truncate(sqlite3_file *p, sqlite3_int64 size) {
  int rc = flush((wal_file_t *)p);
  return rc != SQLITE_OK ? rc : REAL(p)->pMethods->xTruncate(REAL(p), size);
}

static int wal_sync(sqlite3_file *p, int flags) {
  int rc = flush((wal_file_t *)p);
  return rc != SQLITE_OK ? rc : REAL(p)->pMethods->xSync(REAL(p), flags);
}

static int wal_size(sqlite3_file *p, sqlite3_int64 *size) {
  int rc = flush((wal_file_t *)p);
  return rc != SQLITE_OK ? rc : REAL(p)->pMethods->xFileSize(REAL(p), size);
}

static int wal_fcntl(sqlite3_file *p, int op, void *arg) {
  int rc = flush((wal_file_t *)p);
  return rc != SQLITE_OK ? rc
                         : REAL(p)->pMethods->xFileControl(REAL(p), op, arg);
}

/* Locks and geometry: the data is not involved. */
static int wal_lock(sqlite3_file *p, int l) {
  return REAL(p)->pMethods->xLock(REAL(p), l);
}
static int wal_unlock(sqlite3_file *p, int l) {
  return REAL(p)->pMethods->xUnlock(REAL(p), l);
}
static int wal_reserved(sqlite3_file *p, int *out) {
  return REAL(p)->pMethods->xCheckReservedLock(REAL(p), out);
}
static int wal_sector(sqlite3_file *p) {
  return REAL(p)->pMethods->xSectorSize(REAL(p));
}
static int wal_dev(sqlite3_file *p) {
  return REAL(p)->pMethods->xDeviceCharacteristics(REAL(p));
}

static int vfs_open(sqlite3_vfs *vfs, const char *name, sqlite3_file *p,
                    int flags, int *out_flags) {
  wal_file_t *f = (wal_file_t *)p;
  int rc;

  (void)vfs;
  if (!(flags & SQLITE_OPEN_WAL))
    return real_vfs->xOpen(real_vfs, name, p, flags, out_flags);
  memset(f, 0, sizeof(*f));
  f->real = (sqlite3_file *)(void *)(f + 1);
  rc = real_vfs->xOpen(real_vfs, name, f->real, flags, out_flags);
  /* On failure the file must not be closed: no methods. */
  p->pMethods = rc == SQLITE_OK ? &wal_methods : NULL;
  return rc;
}

/* The rest of the VFS is the default's. */
static int vfs_delete(sqlite3_vfs *v, const char *name, int sync) {
  (void)v;
  return real_vfs->xDelete(real_vfs, name, sync);
}
static int vfs_access(sqlite3_vfs *v, const char *name, int flags, int *out) {
  (void)v;
  return real_vfs->xAccess(real_vfs, name, flags, out);
}
static int vfs_full(sqlite3_vfs *v, const char *name, int n, char *out) {
  (void)v;
  return real_vfs->xFullPathname(real_vfs, name, n, out);
}
static void *vfs_dlopen(sqlite3_vfs *v, const char *name) {
  (void)v;
  return real_vfs->xDlOpen(real_vfs, name);
}
static void vfs_dlerror(sqlite3_vfs *v, int n, char *out) {
  (void)v;
  real_vfs->xDlError(real_vfs, n, out);
}
static void (*vfs_dlsym(sqlite3_vfs *v, void *h, const char *sym))(void) {
  (void)v;
  return real_vfs->xDlSym(real_vfs, h, sym);
}
static void vfs_dlclose(sqlite3_vfs *v, void *h) {
  (void)v;
  real_vfs->xDlClose(real_vfs, h);
}
static int vfs_random(sqlite3_vfs *v, int n, char *out) {
  (void)v;
  return real_vfs->xRandomness(real_vfs, n, out);
}
static int vfs_sleep(sqlite3_vfs *v, int us) {
  (void)v;
  return real_vfs->xSleep(real_vfs, us);
}
static int vfs_time(sqlite3_vfs *v, double *out) {
  (void)v;
  return real_vfs->xCurrentTime(real_vfs, out);
}
static int vfs_last_error(sqlite3_vfs *v, int n, char *out) {
  (void)v;
  return real_vfs->xGetLastError ? real_vfs->xGetLastError(real_vfs, n, out)
                                 : 0;
}
static int vfs_time64(sqlite3_vfs *v, sqlite3_int64 *out) {
  (void)v;
  return real_vfs->xCurrentTimeInt64(real_vfs, out);
}

static pthread_once_t once = PTHREAD_ONCE_INIT;
static int registered;

static void register_vfs(void) {
  real_vfs = sqlite3_vfs_find(NULL);
  if (real_vfs == NULL || real_vfs->iVersion < 2)
    return;
  wal_vfs = (sqlite3_vfs){
      .iVersion = 2, /* no system-call overrides */
      .szOsFile = (int)sizeof(wal_file_t) + real_vfs->szOsFile,
      .mxPathname = real_vfs->mxPathname,
      .zName = "chat-wal",
      .xOpen = vfs_open,
      .xDelete = vfs_delete,
      .xAccess = vfs_access,
      .xFullPathname = vfs_full,
      .xDlOpen = vfs_dlopen,
      .xDlError = vfs_dlerror,
      .xDlSym = vfs_dlsym,
      .xDlClose = vfs_dlclose,
      .xRandomness = vfs_random,
      .xSleep = vfs_sleep,
      .xCurrentTime = vfs_time,
      .xGetLastError = vfs_last_error,
      .xCurrentTimeInt64 = vfs_time64,
  };
  /* Version 1 methods: a WAL file needs no shared memory and is not
   * memory-mapped (mmap_size is 0). */
  wal_methods = (sqlite3_io_methods){
      .iVersion = 1,
      .xClose = wal_close,
      .xRead = wal_read,
      .xWrite = wal_write,
      .xTruncate = wal_truncate,
      .xSync = wal_sync,
      .xFileSize = wal_size,
      .xLock = wal_lock,
      .xUnlock = wal_unlock,
      .xCheckReservedLock = wal_reserved,
      .xFileControl = wal_fcntl,
      .xSectorSize = wal_sector,
      .xDeviceCharacteristics = wal_dev,
  };
  registered = sqlite3_vfs_register(&wal_vfs, 0) == SQLITE_OK;
}

const char *chat__store_vfs(void) {
  pthread_once(&once, register_vfs);
  return registered ? wal_vfs.zName : NULL;
}

void chat__store_vfs_stats(chat__store_vfs_stats_t *out) {
  out->writes = atomic_load(&n_writes);
  out->flushes = atomic_load(&n_flushes);
}
