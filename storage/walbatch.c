/*
 * walbatch.c - the VFS of walbatch.h: the default VFS, with the writes of a
 * WAL file gathered until its transaction's commit frame is written.
 *
 * A file of this VFS is the default VFS's file (real, right after ours)
 * with a buffer in front of it when it is a WAL. Every call goes to the
 * real file; the WAL's calls other than a write that follows the gathered
 * bytes write those bytes first (wb_flush). A database file knows its WAL
 * (opened after it, by name) so that its shared-memory calls flush it too.
 */
#include "walbatch.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "langop/core/common.h"

#define WB_NAME "langop-walbatch"
#define WB_FRAME_HEADER 24            /* a WAL frame's header; bytes 4..7: the database size in a commit frame */
#define WB_MAX 0x1ffff                /* gathered bytes written at once, commit or not: the default VFS
                                         writes at most this much per call (more is cut to its low bits) */

typedef struct wb_file {
    sqlite3_file base;                /* pMethods: &wb_methods, or NULL when the real file is not open */
    sqlite3_file *real;               /* the default VFS's file, after this struct */
    const char *name;                 /* as opened (SQLite keeps it until the close) */
    int is_wal, is_db;
    struct wb_file *wal;              /* a database: its open WAL, or NULL */
    struct wb_file *db;               /* a WAL: its database, or NULL */
    struct wb_file *next;             /* the open databases */
    char *buf;                        /* a WAL: the gathered bytes, buf[0] at offset at */
    size_t len, cap;
    sqlite3_int64 at;
    int commit_next;                  /* a commit frame's header was the last write: its page ends the transaction */
    pthread_t opener;                 /* a connection opens its database and its WAL on one thread */
} wb_file;

static sqlite3_vfs wb_vfs;
static sqlite3_vfs *real_vfs;
static pthread_once_t wb_once = PTHREAD_ONCE_INIT;
static int wb_registered;
static pthread_mutex_t wb_mu = PTHREAD_MUTEX_INITIALIZER; /* guards the list of open databases and the links */
static wb_file *wb_dbs;

#define WB_ALIGN(n) (((n) + 7u) & ~(size_t)7u)

/* Writes the gathered bytes. They go either way: a failed write was reported, and SQLite writes them again. */
static int wb_flush(wb_file *f)
{
    if (f->len == 0)
        return SQLITE_OK;
    int rc = f->real->pMethods->xWrite(f->real, f->buf, (int)f->len, f->at);
    f->len = 0;
    f->commit_next = 0;
    return rc;
}

/* Flushes the WAL of database file f, if it has one open. */
static int wb_flush_wal_of(wb_file *f)
{
    return f->is_db && f->wal ? wb_flush(f->wal) : SQLITE_OK;
}

static int wb_close(sqlite3_file *file)
{
    wb_file *f = (wb_file *)file;
    int rc = f->is_wal ? wb_flush(f) : SQLITE_OK;
    pthread_mutex_lock(&wb_mu);
    if (f->is_db) {
        for (wb_file **p = &wb_dbs; *p; p = &(*p)->next)
            if (*p == f) {
                *p = f->next;
                break;
            }
        if (f->wal)
            f->wal->db = NULL;
    }
    if (f->is_wal && f->db)
        f->db->wal = NULL;
    pthread_mutex_unlock(&wb_mu);
    free(f->buf);
    f->buf = NULL;
    int rc2 = f->real->pMethods->xClose(f->real);
    return rc != SQLITE_OK ? rc : rc2;
}

static int wb_read(sqlite3_file *file, void *out, int n, sqlite3_int64 off)
{
    wb_file *f = (wb_file *)file;
    int rc = wb_flush(f);
    return rc != SQLITE_OK ? rc : f->real->pMethods->xRead(f->real, out, n, off);
}

/* 1 if the n bytes at p are a WAL frame's header for a commit frame. */
static int is_commit_header(const void *p, int n)
{
    const unsigned char *h = p;
    return n == WB_FRAME_HEADER && (h[4] | h[5] | h[6] | h[7]) != 0;
}

static int wb_write(sqlite3_file *file, const void *p, int n, sqlite3_int64 off)
{
    wb_file *f = (wb_file *)file;
    if (!f->is_wal || n <= 0)
        return f->real->pMethods->xWrite(f->real, p, n, off);
    if (f->len > 0 && (f->at + (sqlite3_int64)f->len != off || f->len + (size_t)n > WB_MAX)) {
        int rc = wb_flush(f);
        if (rc != SQLITE_OK)
            return rc;
    }
    if ((size_t)n > WB_MAX)
        return f->real->pMethods->xWrite(f->real, p, n, off);
    if (f->len == 0)
        f->at = off;
    if (f->len + (size_t)n > f->cap) {
        size_t cap = WB_MAX;
        f->buf = lo_realloc(f->buf, cap);
        f->cap = cap;
    }
    memcpy(f->buf + f->len, p, (size_t)n);
    f->len += (size_t)n;
    if (f->commit_next)
        return wb_flush(f); /* the transaction's last page: its result is the commit's */
    f->commit_next = is_commit_header(p, n);
    return SQLITE_OK;
}

static int wb_truncate(sqlite3_file *file, sqlite3_int64 size)
{
    wb_file *f = (wb_file *)file;
    int rc = wb_flush(f);
    return rc != SQLITE_OK ? rc : f->real->pMethods->xTruncate(f->real, size);
}

static int wb_sync(sqlite3_file *file, int flags)
{
    wb_file *f = (wb_file *)file;
    int rc = wb_flush(f);
    return rc != SQLITE_OK ? rc : f->real->pMethods->xSync(f->real, flags);
}

static int wb_file_size(sqlite3_file *file, sqlite3_int64 *size)
{
    wb_file *f = (wb_file *)file;
    int rc = wb_flush(f);
    return rc != SQLITE_OK ? rc : f->real->pMethods->xFileSize(f->real, size);
}

static int wb_lock(sqlite3_file *file, int level)
{
    wb_file *f = (wb_file *)file;
    int rc = wb_flush(f);
    return rc != SQLITE_OK ? rc : f->real->pMethods->xLock(f->real, level);
}

static int wb_unlock(sqlite3_file *file, int level)
{
    wb_file *f = (wb_file *)file;
    int rc = wb_flush(f);
    return rc != SQLITE_OK ? rc : f->real->pMethods->xUnlock(f->real, level);
}

static int wb_check_reserved(sqlite3_file *file, int *out)
{
    wb_file *f = (wb_file *)file;
    return f->real->pMethods->xCheckReservedLock(f->real, out);
}

static int wb_file_control(sqlite3_file *file, int op, void *arg)
{
    wb_file *f = (wb_file *)file;
    int rc = wb_flush(f);
    if (rc == SQLITE_OK)
        rc = wb_flush_wal_of(f);
    return rc != SQLITE_OK ? rc : f->real->pMethods->xFileControl(f->real, op, arg);
}

static int wb_sector_size(sqlite3_file *file)
{
    wb_file *f = (wb_file *)file;
    return f->real->pMethods->xSectorSize(f->real);
}

static int wb_device_characteristics(sqlite3_file *file)
{
    wb_file *f = (wb_file *)file;
    return f->real->pMethods->xDeviceCharacteristics(f->real);
}

static int wb_shm_map(sqlite3_file *file, int page, int size, int extend, void volatile **out)
{
    wb_file *f = (wb_file *)file;
    int rc = wb_flush_wal_of(f);
    return rc != SQLITE_OK ? rc : f->real->pMethods->xShmMap(f->real, page, size, extend, out);
}

static int wb_shm_lock(sqlite3_file *file, int offset, int n, int flags)
{
    wb_file *f = (wb_file *)file;
    int rc = wb_flush_wal_of(f);
    return rc != SQLITE_OK ? rc : f->real->pMethods->xShmLock(f->real, offset, n, flags);
}

/* Precedes the publication of new frames: they must be in the file by then, and no error can be returned here. */
static void wb_shm_barrier(sqlite3_file *file)
{
    wb_file *f = (wb_file *)file;
    if (wb_flush_wal_of(f) != SQLITE_OK)
        lo_fatal("store: the WAL's frames could not be written before the wal-index names them");
    f->real->pMethods->xShmBarrier(f->real);
}

static int wb_shm_unmap(sqlite3_file *file, int delete_flag)
{
    wb_file *f = (wb_file *)file;
    int rc = wb_flush_wal_of(f);
    return rc != SQLITE_OK ? rc : f->real->pMethods->xShmUnmap(f->real, delete_flag);
}

static int wb_fetch(sqlite3_file *file, sqlite3_int64 off, int n, void **out)
{
    wb_file *f = (wb_file *)file;
    int rc = wb_flush(f);
    return rc != SQLITE_OK ? rc : f->real->pMethods->xFetch(f->real, off, n, out);
}

static int wb_unfetch(sqlite3_file *file, sqlite3_int64 off, void *p)
{
    wb_file *f = (wb_file *)file;
    return f->real->pMethods->xUnfetch(f->real, off, p);
}

static const sqlite3_io_methods wb_methods = {
    .iVersion = 3,
    .xClose = wb_close,
    .xRead = wb_read,
    .xWrite = wb_write,
    .xTruncate = wb_truncate,
    .xSync = wb_sync,
    .xFileSize = wb_file_size,
    .xLock = wb_lock,
    .xUnlock = wb_unlock,
    .xCheckReservedLock = wb_check_reserved,
    .xFileControl = wb_file_control,
    .xSectorSize = wb_sector_size,
    .xDeviceCharacteristics = wb_device_characteristics,
    .xShmMap = wb_shm_map,
    .xShmLock = wb_shm_lock,
    .xShmBarrier = wb_shm_barrier,
    .xShmUnmap = wb_shm_unmap,
    .xFetch = wb_fetch,
    .xUnfetch = wb_unfetch,
};

/* Links a WAL to its database (opened before it by the same connection). */
static void wb_link(wb_file *f)
{
    f->opener = pthread_self();
    const char *db_name = f->is_wal ? sqlite3_filename_database(f->name) : NULL;
    pthread_mutex_lock(&wb_mu);
    if (f->is_db) {
        f->next = wb_dbs;
        wb_dbs = f;
    } else if (db_name) {
        for (wb_file *d = wb_dbs; d; d = d->next)
            if (d->wal == NULL && pthread_equal(d->opener, f->opener) && strcmp(d->name, db_name) == 0) {
                d->wal = f;
                f->db = d;
                break;
            }
    }
    pthread_mutex_unlock(&wb_mu);
}

static int wb_open(sqlite3_vfs *vfs, sqlite3_filename name, sqlite3_file *file, int flags, int *out_flags)
{
    (void)vfs;
    wb_file *f = (wb_file *)file;
    memset(f, 0, sizeof(*f));
    f->real = (sqlite3_file *)((char *)file + WB_ALIGN(sizeof(wb_file)));
    int rc = real_vfs->xOpen(real_vfs, name, f->real, flags, out_flags);
    if (f->real->pMethods == NULL)
        return rc;
    /* the default VFS's files have every method of version 3; another would need its own table */
    if (f->real->pMethods->iVersion < 3) {
        f->real->pMethods->xClose(f->real);
        return SQLITE_CANTOPEN;
    }
    f->base.pMethods = &wb_methods;
    f->name = name;
    f->is_wal = (flags & SQLITE_OPEN_WAL) != 0;
    f->is_db = (flags & SQLITE_OPEN_MAIN_DB) != 0;
    if (rc == SQLITE_OK && name && (f->is_wal || f->is_db))
        wb_link(f);
    return rc;
}

/* The rest is the default VFS's, called with its own sqlite3_vfs. */
static int wb_delete(sqlite3_vfs *v, const char *name, int sync_dir)
{
    (void)v;
    return real_vfs->xDelete(real_vfs, name, sync_dir);
}

static int wb_access(sqlite3_vfs *v, const char *name, int flags, int *out)
{
    (void)v;
    return real_vfs->xAccess(real_vfs, name, flags, out);
}

static int wb_full_pathname(sqlite3_vfs *v, const char *name, int n, char *out)
{
    (void)v;
    return real_vfs->xFullPathname(real_vfs, name, n, out);
}

static void *wb_dlopen(sqlite3_vfs *v, const char *name)
{
    (void)v;
    return real_vfs->xDlOpen(real_vfs, name);
}

static void wb_dlerror(sqlite3_vfs *v, int n, char *out)
{
    (void)v;
    real_vfs->xDlError(real_vfs, n, out);
}

static void (*wb_dlsym(sqlite3_vfs *v, void *h, const char *sym))(void)
{
    (void)v;
    return real_vfs->xDlSym(real_vfs, h, sym);
}

static void wb_dlclose(sqlite3_vfs *v, void *h)
{
    (void)v;
    real_vfs->xDlClose(real_vfs, h);
}

static int wb_randomness(sqlite3_vfs *v, int n, char *out)
{
    (void)v;
    return real_vfs->xRandomness(real_vfs, n, out);
}

static int wb_sleep(sqlite3_vfs *v, int us)
{
    (void)v;
    return real_vfs->xSleep(real_vfs, us);
}

static int wb_current_time(sqlite3_vfs *v, double *out)
{
    (void)v;
    return real_vfs->xCurrentTime(real_vfs, out);
}

static int wb_last_error(sqlite3_vfs *v, int n, char *out)
{
    (void)v;
    return real_vfs->xGetLastError ? real_vfs->xGetLastError(real_vfs, n, out) : 0;
}

static int wb_current_time64(sqlite3_vfs *v, sqlite3_int64 *out)
{
    (void)v;
    return real_vfs->xCurrentTimeInt64(real_vfs, out);
}

static void wb_register(void)
{
    real_vfs = sqlite3_vfs_find(NULL);
    if (real_vfs == NULL || real_vfs->iVersion < 2 || real_vfs->xCurrentTimeInt64 == NULL)
        return;
    wb_vfs = (sqlite3_vfs){
        .iVersion = 2,
        .szOsFile = (int)(WB_ALIGN(sizeof(wb_file)) + (size_t)real_vfs->szOsFile),
        .mxPathname = real_vfs->mxPathname,
        .zName = WB_NAME,
        .xOpen = wb_open,
        .xDelete = wb_delete,
        .xAccess = wb_access,
        .xFullPathname = wb_full_pathname,
        .xDlOpen = wb_dlopen,
        .xDlError = wb_dlerror,
        .xDlSym = wb_dlsym,
        .xDlClose = wb_dlclose,
        .xRandomness = wb_randomness,
        .xSleep = wb_sleep,
        .xCurrentTime = wb_current_time,
        .xGetLastError = wb_last_error,
        .xCurrentTimeInt64 = wb_current_time64,
    };
    wb_registered = sqlite3_vfs_register(&wb_vfs, 0) == SQLITE_OK;
}

const char *walbatch_vfs(void)
{
    pthread_once(&wb_once, wb_register);
    return wb_registered ? WB_NAME : NULL;
}
