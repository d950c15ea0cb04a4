/*
 * faultfs.c - a test shim loaded with LD_PRELOAD under the server: it makes
 * writes, syncs and truncations of the database's files fail on demand, as
 * a full or failing disk would, while everything else goes through.
 *
 * Environment (read once, at load):
 *   FAULTFS_PREFIX   files whose path starts with this are watched (the
 *                    database path: its -wal, -shm and -journal follow it)
 *   FAULTFS_CONTROL  a file the test rewrites (atomically, by rename) to
 *                    switch faults; re-read at most every 2 ms
 *   FAULTFS_LOG      optional: one line per injected failure is appended
 *
 * The control file holds one line of words, e.g.
 *   mode=enospc ops=write,sync files=wal,db every=1
 *   mode=off
 * mode: off, enospc or eio (the errno given); ops: write (write, pwrite,
 * pwritev ...), sync (fsync, fdatasync), truncate (ftruncate), any mix;
 * files: db, wal, shm, journal, any mix (default all); every: fail one in
 * N of the calls that qualify (default 1: all). A missing or unreadable
 * control file means off.
 *
 * The fds of watched files are tracked from open/openat to close. The shim
 * only fails calls, it never half-does one: a failed call changed nothing.
 */
#undef _FILE_OFFSET_BITS /* open and open64 (and the rest) are defined apart, not one renamed */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#define MAX_FDS 65536
#define CONTROL_REREAD_NS 2000000L

enum { OP_WRITE = 1, OP_SYNC = 2, OP_TRUNCATE = 4 };
enum { F_DB = 1, F_WAL = 2, F_SHM = 4, F_JOURNAL = 8, F_ALL = 15 };

typedef struct control {
    int err;           /* 0: off */
    int ops, files;
    long every;
} control_t;

/* fd -> which watched file it is (F_*), 0: not watched. Written by open/close, read by the calls. */
static unsigned char fd_file[MAX_FDS];
static const char *prefix;
static size_t prefix_len;
static const char *control_path;
static const char *log_path;

static pthread_mutex_t control_mu = PTHREAD_MUTEX_INITIALIZER;
static control_t control;
static struct timespec control_read_at;
static unsigned long qualifying_calls;

/* the real functions */
static int (*real_open)(const char *, int, ...);
static int (*real_open64)(const char *, int, ...);
static int (*real_openat)(int, const char *, int, ...);
static int (*real_openat64)(int, const char *, int, ...);
static int (*real_close)(int);
static ssize_t (*real_write)(int, const void *, size_t);
static ssize_t (*real_pwrite)(int, const void *, size_t, off_t);
static ssize_t (*real_pwrite64)(int, const void *, size_t, off64_t);
static ssize_t (*real_writev)(int, const struct iovec *, int);
static ssize_t (*real_pwritev)(int, const struct iovec *, int, off_t);
static int (*real_fsync)(int);
static int (*real_fdatasync)(int);
static int (*real_ftruncate)(int, off_t);
static int (*real_ftruncate64)(int, off64_t);

static void *next_symbol(const char *name)
{
    void *f = dlsym(RTLD_NEXT, name);
    if (f == NULL) {
        fprintf(stderr, "faultfs: no %s below the shim\n", name);
        abort();
    }
    return f;
}

__attribute__((constructor)) static void faultfs_init(void)
{
    real_open = next_symbol("open");
    real_open64 = next_symbol("open64");
    real_openat = next_symbol("openat");
    real_openat64 = next_symbol("openat64");
    real_close = next_symbol("close");
    real_write = next_symbol("write");
    real_pwrite = next_symbol("pwrite");
    real_pwrite64 = next_symbol("pwrite64");
    real_writev = next_symbol("writev");
    real_pwritev = next_symbol("pwritev");
    real_fsync = next_symbol("fsync");
    real_fdatasync = next_symbol("fdatasync");
    real_ftruncate = next_symbol("ftruncate");
    real_ftruncate64 = next_symbol("ftruncate64");
    prefix = getenv("FAULTFS_PREFIX");
    prefix_len = prefix ? strlen(prefix) : 0;
    control_path = getenv("FAULTFS_CONTROL");
    log_path = getenv("FAULTFS_LOG");
}

/* Which watched file path is (F_*), or 0. */
static int classify(const char *path)
{
    if (prefix_len == 0 || path == NULL || strncmp(path, prefix, prefix_len) != 0)
        return 0;
    const char *rest = path + prefix_len;
    if (*rest == '\0')
        return F_DB;
    if (strcmp(rest, "-wal") == 0)
        return F_WAL;
    if (strcmp(rest, "-shm") == 0)
        return F_SHM;
    if (strcmp(rest, "-journal") == 0)
        return F_JOURNAL;
    return 0;
}

static int parse_list(const char *v, const char *const *names, const int *bits, size_t n)
{
    int mask = 0;
    char buf[128];
    snprintf(buf, sizeof(buf), "%s", v);
    for (char *save = NULL, *w = strtok_r(buf, ",", &save); w; w = strtok_r(NULL, ",", &save))
        for (size_t i = 0; i < n; i++)
            if (strcmp(w, names[i]) == 0)
                mask |= bits[i];
    return mask;
}

static control_t parse_control(char *text)
{
    static const char *const op_names[] = {"write", "sync", "truncate"};
    static const int op_bits[] = {OP_WRITE, OP_SYNC, OP_TRUNCATE};
    static const char *const file_names[] = {"db", "wal", "shm", "journal", "all"};
    static const int file_bits[] = {F_DB, F_WAL, F_SHM, F_JOURNAL, F_ALL};
    control_t c = {.ops = OP_WRITE | OP_SYNC | OP_TRUNCATE, .files = F_ALL, .every = 1};
    for (char *save = NULL, *w = strtok_r(text, " \t\r\n", &save); w; w = strtok_r(NULL, " \t\r\n", &save)) {
        if (strncmp(w, "mode=", 5) == 0)
            c.err = strcmp(w + 5, "enospc") == 0 ? ENOSPC : strcmp(w + 5, "eio") == 0 ? EIO : 0;
        else if (strncmp(w, "ops=", 4) == 0)
            c.ops = parse_list(w + 4, op_names, op_bits, 3);
        else if (strncmp(w, "files=", 6) == 0)
            c.files = parse_list(w + 6, file_names, file_bits, 5);
        else if (strncmp(w, "every=", 6) == 0)
            c.every = strtol(w + 6, NULL, 10) > 0 ? strtol(w + 6, NULL, 10) : 1;
    }
    return c;
}

/* Re-reads the control file if it was last read more than CONTROL_REREAD_NS ago. Called with control_mu. */
static void control_refresh(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    long ns = (now.tv_sec - control_read_at.tv_sec) * 1000000000L + (now.tv_nsec - control_read_at.tv_nsec);
    if (control_read_at.tv_sec != 0 && ns < CONTROL_REREAD_NS)
        return;
    control_read_at = now;
    char text[256] = "";
    int fd = control_path ? real_open(control_path, O_RDONLY | O_CLOEXEC) : -1;
    if (fd >= 0) {
        ssize_t n = read(fd, text, sizeof(text) - 1);
        text[n > 0 ? n : 0] = '\0';
        real_close(fd);
    }
    control = parse_control(text);
}

static void log_fault(const char *call, int file, int err)
{
    if (log_path == NULL)
        return;
    int fd = real_open(log_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0)
        return;
    static const char *const names[] = {"", "db", "wal", "", "shm", "", "", "", "journal"};
    char line[96];
    int n = snprintf(line, sizeof(line), "%s %s %s\n", call, names[file], err == ENOSPC ? "ENOSPC" : "EIO");
    (void)!real_write(fd, line, (size_t)n);
    real_close(fd);
}

/* 0: let the call through; else the errno it fails with (the fault is logged). */
static int fault_for(int fd, int op, const char *call)
{
    int file = fd >= 0 && fd < MAX_FDS ? __atomic_load_n(&fd_file[fd], __ATOMIC_RELAXED) : 0;
    if (file == 0)
        return 0;
    int err = 0;
    pthread_mutex_lock(&control_mu);
    control_refresh();
    if (control.err && (control.ops & op) && (control.files & file) && qualifying_calls++ % control.every == 0)
        err = control.err;
    pthread_mutex_unlock(&control_mu);
    if (err)
        log_fault(call, file, err);
    return err;
}

static int track(int fd, const char *path)
{
    if (fd >= 0 && fd < MAX_FDS)
        __atomic_store_n(&fd_file[fd], (unsigned char)classify(path), __ATOMIC_RELAXED);
    return fd;
}

/* open's mode argument is there only with O_CREAT or O_TMPFILE. */
#define OPEN_MODE(flags, ap, last) \
    mode_t mode = 0; \
    if (((flags) & O_CREAT) || ((flags) & O_TMPFILE) == O_TMPFILE) { \
        va_list ap; \
        va_start(ap, last); \
        mode = (mode_t)va_arg(ap, int); \
        va_end(ap); \
    }

int open(const char *path, int flags, ...)
{
    OPEN_MODE(flags, ap, flags);
    return track(real_open(path, flags, mode), path);
}

int open64(const char *path, int flags, ...)
{
    OPEN_MODE(flags, ap, flags);
    return track(real_open64(path, flags, mode), path);
}

int openat(int dirfd, const char *path, int flags, ...)
{
    OPEN_MODE(flags, ap, flags);
    return track(real_openat(dirfd, path, flags, mode), path);
}

int openat64(int dirfd, const char *path, int flags, ...)
{
    OPEN_MODE(flags, ap, flags);
    return track(real_openat64(dirfd, path, flags, mode), path);
}

int close(int fd)
{
    if (fd >= 0 && fd < MAX_FDS)
        __atomic_store_n(&fd_file[fd], 0, __ATOMIC_RELAXED);
    return real_close(fd);
}

#define FAIL_IF_FAULT(fd, op, call) \
    do { \
        int e_ = fault_for((fd), (op), (call)); \
        if (e_) { \
            errno = e_; \
            return -1; \
        } \
    } while (0)

ssize_t write(int fd, const void *buf, size_t n)
{
    FAIL_IF_FAULT(fd, OP_WRITE, "write");
    return real_write(fd, buf, n);
}

ssize_t pwrite(int fd, const void *buf, size_t n, off_t off)
{
    FAIL_IF_FAULT(fd, OP_WRITE, "pwrite");
    return real_pwrite(fd, buf, n, off);
}

ssize_t pwrite64(int fd, const void *buf, size_t n, off64_t off)
{
    FAIL_IF_FAULT(fd, OP_WRITE, "pwrite64");
    return real_pwrite64(fd, buf, n, off);
}

ssize_t writev(int fd, const struct iovec *iov, int n)
{
    FAIL_IF_FAULT(fd, OP_WRITE, "writev");
    return real_writev(fd, iov, n);
}

ssize_t pwritev(int fd, const struct iovec *iov, int n, off_t off)
{
    FAIL_IF_FAULT(fd, OP_WRITE, "pwritev");
    return real_pwritev(fd, iov, n, off);
}

int fsync(int fd)
{
    FAIL_IF_FAULT(fd, OP_SYNC, "fsync");
    return real_fsync(fd);
}

int fdatasync(int fd)
{
    FAIL_IF_FAULT(fd, OP_SYNC, "fdatasync");
    return real_fdatasync(fd);
}

int ftruncate(int fd, off_t len)
{
    FAIL_IF_FAULT(fd, OP_TRUNCATE, "ftruncate");
    return real_ftruncate(fd, len);
}

int ftruncate64(int fd, off64_t len)
{
    FAIL_IF_FAULT(fd, OP_TRUNCATE, "ftruncate64");
    return real_ftruncate64(fd, len);
}
