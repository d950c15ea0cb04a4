/*
 * test_walbatch.c - the WAL-gathering VFS (storage/walbatch.h): what a
 * commit wrote is in the file when another connection can see it, for
 * transactions of one page and of many times the largest write, across WAL
 * restarts, and a copy of the files taken between commits (as a crash would
 * leave them) recovers every committed transaction.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include <sqlite3.h>

#include "../../storage/walbatch.h"

static char dir[] = "/tmp/test_walbatch.XXXXXX";

static sqlite3 *open_db(const char *path, const char *vfs)
{
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, vfs), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"
                                      "PRAGMA wal_autocheckpoint=0", NULL, NULL, NULL), SQLITE_OK);
    return db;
}

static void exec(sqlite3 *db, const char *sql)
{
    char *msg = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK)
        fail_msg("%s: %s", sql, msg);
}

/* rows and total body bytes of t, as db sees them */
static void totals(sqlite3 *db, int64_t *rows, int64_t *bytes)
{
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_prepare_v2(db, "SELECT count(*), coalesce(sum(length(body)), 0) FROM t", -1, &st, NULL),
                     SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    *rows = sqlite3_column_int64(st, 0);
    *bytes = sqlite3_column_int64(st, 1);
    sqlite3_finalize(st);
}

/* One transaction of n rows of size bytes each. */
static void commit_rows(sqlite3 *db, int n, int size)
{
    sqlite3_stmt *st = NULL;
    exec(db, "BEGIN IMMEDIATE");
    assert_int_equal(sqlite3_prepare_v2(db, "INSERT INTO t(body) VALUES (randomblob(?1))", -1, &st, NULL),
                     SQLITE_OK);
    for (int i = 0; i < n; i++) {
        sqlite3_bind_int(st, 1, size);
        assert_int_equal(sqlite3_step(st), SQLITE_DONE);
        sqlite3_reset(st);
    }
    sqlite3_finalize(st);
    exec(db, "COMMIT");
}

static void copy_file(const char *from, const char *to)
{
    FILE *in = fopen(from, "rb"), *out = fopen(to, "wb");
    assert_non_null(in);
    assert_non_null(out);
    char buf[65536];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, in)) > 0)
        assert_int_equal(fwrite(buf, 1, n, out), n);
    fclose(in);
    fclose(out);
}

static void test_commits_are_whole_when_seen(void **state)
{
    (void)state;
    const char *vfs = walbatch_vfs();
    assert_non_null(vfs);
    char path[64], copy[64], wal[80], copy_wal[80];
    snprintf(path, sizeof path, "%s/db", dir);
    snprintf(copy, sizeof copy, "%s/copy", dir);
    snprintf(wal, sizeof wal, "%s-wal", path);
    snprintf(copy_wal, sizeof copy_wal, "%s-wal", copy);
    sqlite3 *w = open_db(path, vfs), *r = open_db(path, NULL);
    exec(w, "CREATE TABLE t(id INTEGER PRIMARY KEY, body BLOB NOT NULL)");
    int64_t rows = 0, bytes = 0;
    for (int i = 0; i < 120; i++) {
        /* one small row; or about 600 kB, many times the largest write of the default VFS */
        int n = i % 10 == 9 ? 150 : 1, size = i % 10 == 9 ? 4000 : 1 + i * 7;
        commit_rows(w, n, size);
        rows += n;
        bytes += (int64_t)n * size;
        int64_t seen_rows, seen_bytes;
        totals(r, &seen_rows, &seen_bytes); /* another connection: only through the file and the wal-index */
        assert_int_equal(seen_rows, rows);
        assert_int_equal(seen_bytes, bytes);
        if (i == 60) /* a checkpoint that starts the WAL over: the next frames go to its beginning */
            exec(r, "PRAGMA wal_checkpoint(RESTART)");
    }
    /* the files as a crash between commits leaves them: a fresh open recovers every commit */
    copy_file(path, copy);
    copy_file(wal, copy_wal);
    sqlite3 *c = open_db(copy, NULL);
    int64_t copy_rows, copy_bytes;
    totals(c, &copy_rows, &copy_bytes);
    assert_int_equal(copy_rows, rows);
    assert_int_equal(copy_bytes, bytes);
    assert_int_equal(sqlite3_close(c), SQLITE_OK);
    assert_int_equal(sqlite3_close(r), SQLITE_OK);
    assert_int_equal(sqlite3_close(w), SQLITE_OK);
}

/* A rolled back transaction that spilled frames leaves nothing a reader or a recovery would take. */
static void test_rollback_leaves_nothing(void **state)
{
    (void)state;
    char path[64];
    snprintf(path, sizeof path, "%s/rollback", dir);
    sqlite3 *w = open_db(path, walbatch_vfs()), *r = open_db(path, NULL);
    exec(w, "PRAGMA cache_size=10"); /* a small cache: the big transaction spills pages into the WAL */
    exec(w, "CREATE TABLE t(id INTEGER PRIMARY KEY, body BLOB NOT NULL)");
    commit_rows(w, 3, 100);
    exec(w, "BEGIN IMMEDIATE; INSERT INTO t(body) SELECT randomblob(3000) FROM t, t AS a, t AS b, t AS c;");
    exec(w, "ROLLBACK");
    commit_rows(w, 2, 50);
    int64_t rows, bytes;
    totals(r, &rows, &bytes);
    assert_int_equal(rows, 5);
    assert_int_equal(bytes, 400);
    assert_int_equal(sqlite3_close(r), SQLITE_OK);
    assert_int_equal(sqlite3_close(w), SQLITE_OK);
}

static int setup(void **state)
{
    (void)state;
    return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    return system(cmd) == 0 ? 0 : -1;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_commits_are_whole_when_seen),
        cmocka_unit_test(test_rollback_leaves_nothing),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
