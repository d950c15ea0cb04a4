/*
 * sqlite_store.c - the object store of store.h on one SQLite database file.
 *
 * Tables (schema_version 1):
 *
 *   objects(resource, namespace, name, rv, body)   PRIMARY KEY (resource, namespace, name)
 *       The current state: one row per live object. body is the object as
 *       compact JSON with metadata.resourceVersion = rv.
 *
 *   events(id INTEGER PRIMARY KEY AUTOINCREMENT, resource, namespace, name, type, body,
 *          prev_rv, created)
 *       The change log. id IS the resourceVersion of the change. type is
 *       ADDED, MODIFIED or DELETED; body is the object at that rv (for
 *       DELETED, its last state carrying the deletion rv). prev_rv is the id
 *       of the key's previous event (0 for ADDED): a watch with selectors
 *       needs the state before a change. created is the commit time (unix
 *       seconds), for time-based retention.
 *       Indexes: (resource, namespace, name, id) for lists at an older rv,
 *                (resource, id) for "did anything change after rv" and watch replay.
 *
 *   meta(k, v)   'schema_version' = 1, 'compacted_rv' = the compaction horizon.
 *
 * Invariants:
 *  1. The current rv is sqlite_sequence.seq of 'events' (0 when absent). It
 *     only grows, even when compaction deletes the newest events, so an rv is
 *     never reused across restarts.
 *  2. For every objects row there is an events row with id = objects.rv, type
 *     ADDED or MODIFIED, and the same body.
 *  3. Every change is one BEGIN IMMEDIATE transaction on the single writer
 *     connection: it inserts the event with id = current rv + 1, writes
 *     objects, commits. There is one writer at a time, so ids have no gaps.
 *  4. The state at rv N (N > compacted_rv) is, per key, the latest event with
 *     id <= N unless that event is DELETED. Compaction to horizon H may
 *     therefore delete only events superseded by a newer event of the same
 *     key with id <= H, and DELETED events with id <= H; it then raises
 *     meta.compacted_rv to H (store_compact). A superseded event is exactly
 *     one that a later event names as its prev_rv.
 *
 * Connections: one writer connection guarded by write_mu (its statements are
 * used only with write_mu held), and one read connection per reading thread,
 * created lazily and kept in a pthread key; WAL gives each read transaction a
 * snapshot, so reads never wait for the writer. The store keeps no cache:
 * memory does not grow with the number of objects.
 */
#include "langop/store.h"

#include <assert.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sqlite3.h>

#define STORE_SCHEMA_VERSION 1
#define STORE_BUSY_TIMEOUT_MS 5000

static const char schema_sql[] =
    "CREATE TABLE IF NOT EXISTS meta ("
    "  k TEXT PRIMARY KEY, v INTEGER NOT NULL);"
    "CREATE TABLE IF NOT EXISTS objects ("
    "  resource TEXT NOT NULL, namespace TEXT NOT NULL, name TEXT NOT NULL,"
    "  rv INTEGER NOT NULL, body TEXT NOT NULL,"
    "  PRIMARY KEY (resource, namespace, name));"
    "CREATE TABLE IF NOT EXISTS events ("
    "  id INTEGER PRIMARY KEY AUTOINCREMENT,"
    "  resource TEXT NOT NULL, namespace TEXT NOT NULL, name TEXT NOT NULL,"
    "  type TEXT NOT NULL CHECK (type IN ('ADDED','MODIFIED','DELETED')),"
    "  body TEXT NOT NULL, prev_rv INTEGER NOT NULL DEFAULT 0, created INTEGER NOT NULL DEFAULT 0);"
    "CREATE INDEX IF NOT EXISTS events_key ON events(resource, namespace, name, id);"
    "CREATE INDEX IF NOT EXISTS events_res_rv ON events(resource, id);"
    "INSERT OR IGNORE INTO meta(k, v) VALUES ('schema_version', 1), ('compacted_rv', 0);";

/*
 * Prepared statements. Each connection prepares the ones of its role once and
 * keeps them for its life. The eight LIST_* statements are the variants of a
 * list: bit 0 = read history (events) instead of objects, bit 1 = one
 * namespace, bit 2 = continue after a key.
 */
enum stmt_id {
    ST_BEGIN, ST_ROLLBACK, ST_GET, ST_SEQ,                      /* both roles */
    ST_COMMIT, ST_COUNT, ST_EVENT_INSERT, ST_UPSERT, ST_DELETE, /* writer */
    ST_COMPACTED, ST_NEWER, ST_EVENT_BY_ID, ST_EVENTS_AFTER,    /* reader */
    ST_LIST, /* ... ST_LIST + 7 */
    ST_COUNT_ALL = ST_LIST + 8,
};

#define ROLE_W 1
#define ROLE_R 2

#define LIST_HISTORY 1
#define LIST_NS 2
#define LIST_AFTER 4

static const struct {
    const char *sql;
    int roles;
} stmt_defs[ST_LIST] = {
    [ST_BEGIN] = {"BEGIN", ROLE_R},
    [ST_COMMIT] = {"COMMIT", ROLE_W},
    [ST_ROLLBACK] = {"ROLLBACK", ROLE_W | ROLE_R},
    [ST_GET] = {"SELECT rv, body FROM objects WHERE resource = ?1 AND namespace = ?2 AND name = ?3",
                ROLE_W | ROLE_R},
    [ST_SEQ] = {"SELECT seq FROM sqlite_sequence WHERE name = 'events'", ROLE_W | ROLE_R},
    [ST_COUNT] = {"SELECT COUNT(*) FROM objects WHERE resource = ?1 AND namespace = ?2", ROLE_W},
    [ST_EVENT_INSERT] = {"INSERT INTO events(id, resource, namespace, name, type, body, prev_rv, created)"
                         " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                         ROLE_W},
    [ST_UPSERT] = {"INSERT INTO objects(resource, namespace, name, rv, body) VALUES (?1, ?2, ?3, ?4, ?5)"
                   " ON CONFLICT (resource, namespace, name) DO UPDATE SET rv = excluded.rv, body = excluded.body",
                   ROLE_W},
    [ST_DELETE] = {"DELETE FROM objects WHERE resource = ?1 AND namespace = ?2 AND name = ?3", ROLE_W},
    [ST_COMPACTED] = {"SELECT v FROM meta WHERE k = 'compacted_rv'", ROLE_R},
    [ST_NEWER] = {"SELECT 1 FROM events WHERE resource = ?1 AND id > ?2 LIMIT 1", ROLE_R},
    [ST_EVENT_BY_ID] = {"SELECT type, body FROM events WHERE id = ?1", ROLE_R},
    [ST_EVENTS_AFTER] = {"SELECT id, namespace, name, type, body, prev_rv FROM events"
                         " WHERE resource = ?1 AND id > ?2 AND id <= ?3 ORDER BY id",
                         ROLE_R},
};

/* The writer's BEGIN takes the write lock at once, so a transaction never
 * has to upgrade from read to write (and fail with SQLITE_BUSY). */
static const char writer_begin_sql[] = "BEGIN IMMEDIATE";

/* One connection and its statements; used by one thread at a time. */
typedef struct conn {
    sqlite3 *db;
    sqlite3_stmt *st[ST_COUNT_ALL];
} conn_t;

/* A reading thread's connection, linked into its store's list of readers. */
typedef struct reader {
    conn_t conn;
    store_t *store;
    struct reader *prev, *next;
} reader_t;

struct store {
    char *path;
    int sync_full;

    pthread_mutex_t write_mu; /* guards writer, hook and hook_ctx */
    conn_t writer;
    store_commit_fn hook;
    void *hook_ctx;

    pthread_key_t reader_key; /* this thread's reader_t, created lazily */
    pthread_mutex_t readers_mu; /* guards the readers list */
    reader_t *readers;
};

/* The view of the write transaction given to a mutate callback. */
struct store_txn {
    store_t *store;
};

/* ---- errors ---- */

/* Copies the connection's error into err (before the connection is used again). */
static int db_error(lo_err_t *err, sqlite3 *db, const char *doing)
{
    const char *msg = sqlite3_errmsg(db);
    lo_log(LO_INFO, "store: %s: %s", doing, msg);
    lo_err_set(err, 500, "InternalError", "%s", msg);
    return STORE_IO;
}

static int corrupt_error(lo_err_t *err, const char *resource, const char *ns, const char *name)
{
    lo_log(LO_INFO, "store: corrupt stored object %s/%s/%s", resource, ns, name);
    lo_err_set(err, 500, "InternalError", "corrupt stored object %s %s/%s", resource, ns, name);
    return STORE_IO;
}

/* ---- connections ---- */

static int conn_exec(conn_t *c, const char *sql, lo_err_t *err)
{
    if (sqlite3_exec(c->db, sql, NULL, NULL, NULL) != SQLITE_OK)
        return db_error(err, c->db, sql);
    return STORE_OK;
}

static char *list_sql(int variant)
{
    const char *ns = (variant & LIST_NS) ? " AND namespace = ?2" : "";
    /* Within one namespace the key order is the name order; a row-value
     * bound would cost the index its ordering (a temp b-tree sort). */
    const char *after = !(variant & LIST_AFTER) ? ""
                        : (variant & LIST_NS)   ? " AND name > ?4"
                                                : " AND (namespace, name) > (?3, ?4)";
    if (variant & LIST_HISTORY)
        return lo_sprintf("SELECT namespace, name, MAX(id) FROM events WHERE resource = ?1 AND id <= ?5%s%s"
                          " GROUP BY namespace, name ORDER BY namespace, name",
                          ns, after);
    return lo_sprintf("SELECT namespace, name, body FROM objects WHERE resource = ?1%s%s"
                      " ORDER BY namespace, name",
                      ns, after);
}

static void conn_close(conn_t *c)
{
    for (int i = 0; i < ST_COUNT_ALL; i++)
        sqlite3_finalize(c->st[i]);
    sqlite3_close(c->db);
    memset(c, 0, sizeof(*c));
}

static int conn_prepare(conn_t *c, int id, const char *sql, lo_err_t *err)
{
    if (sqlite3_prepare_v3(c->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &c->st[id], NULL) != SQLITE_OK)
        return db_error(err, c->db, "prepare");
    return STORE_OK;
}

/* Prepares the statements of role; the schema must exist. */
static int conn_prepare_all(conn_t *c, int role, lo_err_t *err)
{
    for (int i = 0; i < ST_LIST; i++) {
        if ((stmt_defs[i].roles & role) && conn_prepare(c, i, stmt_defs[i].sql, err) != STORE_OK)
            return STORE_IO;
    }
    if (role == ROLE_W)
        return conn_prepare(c, ST_BEGIN, writer_begin_sql, err);
    for (int v = 0; v < 8; v++) {
        char *sql = list_sql(v);
        int rc = conn_prepare(c, ST_LIST + v, sql, err);
        free(sql);
        if (rc != STORE_OK)
            return STORE_IO;
    }
    return STORE_OK;
}

/*
 * Opens a connection for role (ROLE_W or ROLE_R), without statements. On
 * failure c is left closed.
 */
static int conn_open(conn_t *c, const char *path, int role, int sync_full, lo_err_t *err)
{
    int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX | (role == ROLE_W ? SQLITE_OPEN_CREATE : 0);
    memset(c, 0, sizeof(*c));
    if (sqlite3_open_v2(path, &c->db, flags, NULL) != SQLITE_OK) {
        if (c->db == NULL) {
            lo_err_set(err, 500, "InternalError", "cannot open %s: out of memory", path);
            return STORE_IO;
        }
        db_error(err, c->db, "open");
        goto Fail;
    }
    sqlite3_busy_timeout(c->db, STORE_BUSY_TIMEOUT_MS);
    if (role == ROLE_W) {
        if (conn_exec(c, sync_full ? "PRAGMA synchronous=FULL" : "PRAGMA synchronous=NORMAL", err) != STORE_OK)
            goto Fail;
    } else if (conn_exec(c, "PRAGMA query_only=ON", err) != STORE_OK) {
        goto Fail;
    }
    return STORE_OK;
Fail:
    conn_close(c);
    return STORE_IO;
}

/* Steps a statement that returns no row, and resets it. */
static int stmt_run(conn_t *c, int id, lo_err_t *err)
{
    sqlite3_stmt *st = c->st[id];
    int rc = sqlite3_step(st);
    if (rc != SQLITE_DONE && rc != SQLITE_ROW) {
        db_error(err, c->db, sqlite3_sql(st));
        sqlite3_reset(st);
        return STORE_IO;
    }
    sqlite3_reset(st);
    return STORE_OK;
}

/* Reads the integer of a one-value query; *v = dflt when it returns no row. */
static int stmt_int(conn_t *c, int id, int64_t dflt, int64_t *v, lo_err_t *err)
{
    sqlite3_stmt *st = c->st[id];
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        *v = sqlite3_column_int64(st, 0);
    } else if (rc == SQLITE_DONE) {
        *v = dflt;
    } else {
        db_error(err, c->db, sqlite3_sql(st));
        sqlite3_reset(st);
        return STORE_IO;
    }
    sqlite3_reset(st);
    return STORE_OK;
}

/* Ends the transaction of c without reporting (used on error paths). */
static void conn_rollback(conn_t *c)
{
    if (!sqlite3_get_autocommit(c->db))
        stmt_run(c, ST_ROLLBACK, NULL);
}

static void bind_key(sqlite3_stmt *st, int first, const char *resource, const char *ns, const char *name)
{
    sqlite3_bind_text(st, first, resource, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, first + 1, ns, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, first + 2, name, -1, SQLITE_STATIC);
}

/* Decodes a stored body. *out is new. Anything but a JSON object is corrupt. */
static int decode_body(const void *text, int len, json_t **out)
{
    json_t *obj = text ? json_loadb(text, (size_t)len, 0, NULL) : NULL;
    if (!json_is_object(obj)) {
        json_decref(obj);
        return -1;
    }
    *out = obj;
    return 0;
}

/*
 * Reads one object through ST_GET of c. *out is new; *rv (optional) its rv.
 * Returns STORE_OK, STORE_NOT_FOUND (without touching err) or STORE_IO.
 */
static int conn_get(conn_t *c, const char *resource, const char *ns, const char *name, json_t **out,
                    int64_t *rv, lo_err_t *err)
{
    sqlite3_stmt *st = c->st[ST_GET];
    int ret;
    bind_key(st, 1, resource, ns, name);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_DONE) {
        ret = STORE_NOT_FOUND;
    } else if (rc != SQLITE_ROW) {
        ret = db_error(err, c->db, "get");
    } else if (decode_body(sqlite3_column_blob(st, 1), sqlite3_column_bytes(st, 1), out) != 0) {
        ret = corrupt_error(err, resource, ns, name);
    } else {
        if (rv)
            *rv = sqlite3_column_int64(st, 0);
        ret = STORE_OK;
    }
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return ret;
}

static void not_found(lo_err_t *err, const char *resource, const char *name)
{
    lo_err_set(err, 404, "NotFound", "%s \"%s\" not found", resource, name);
}

/* ---- per-thread readers ---- */

static void reader_unlink(store_t *s, reader_t *r)
{
    if (r->prev)
        r->prev->next = r->next;
    else
        s->readers = r->next;
    if (r->next)
        r->next->prev = r->prev;
}

/* pthread key destructor: a reading thread exits. */
static void reader_destroy(void *arg)
{
    reader_t *r = arg;
    store_t *s = r->store;
    pthread_mutex_lock(&s->readers_mu);
    reader_unlink(s, r);
    pthread_mutex_unlock(&s->readers_mu);
    conn_close(&r->conn);
    free(r);
}

/* This thread's read connection, opened on first use. NULL with err filled on failure. */
static reader_t *reader_get(store_t *s, lo_err_t *err)
{
    reader_t *r = pthread_getspecific(s->reader_key);
    if (r)
        return r;
    r = lo_calloc(1, sizeof(*r));
    if (conn_open(&r->conn, s->path, ROLE_R, 0, err) != STORE_OK) {
        free(r);
        return NULL;
    }
    if (conn_prepare_all(&r->conn, ROLE_R, err) != STORE_OK) {
        conn_close(&r->conn);
        free(r);
        return NULL;
    }
    r->store = s;
    pthread_mutex_lock(&s->readers_mu);
    r->next = s->readers;
    if (r->next)
        r->next->prev = r;
    s->readers = r;
    pthread_mutex_unlock(&s->readers_mu);
    pthread_setspecific(s->reader_key, r);
    return r;
}

/* ---- open / close ---- */

static int schema_init(conn_t *w, lo_err_t *err)
{
    sqlite3_stmt *st = NULL;
    int ret = STORE_IO;
    int64_t version = 0;

    if (conn_exec(w, "BEGIN IMMEDIATE", err) != STORE_OK)
        return STORE_IO;
    if (conn_exec(w, schema_sql, err) != STORE_OK)
        goto Exit;
    if (sqlite3_prepare_v2(w->db, "SELECT v FROM meta WHERE k = 'schema_version'", -1, &st, NULL) != SQLITE_OK ||
        sqlite3_step(st) != SQLITE_ROW) {
        db_error(err, w->db, "schema_version");
        goto Exit;
    }
    version = sqlite3_column_int64(st, 0);
    if (version != STORE_SCHEMA_VERSION) {
        lo_err_set(err, 500, "InternalError", "database schema version %" PRId64 " is not %d", version,
                   STORE_SCHEMA_VERSION);
        goto Exit;
    }
    ret = conn_exec(w, "COMMIT", err);
Exit:
    sqlite3_finalize(st);
    if (ret != STORE_OK)
        conn_rollback(w);
    return ret;
}

static int enable_wal(conn_t *w, lo_err_t *err)
{
    sqlite3_stmt *st = NULL;
    int ret = STORE_IO;
    if (sqlite3_prepare_v2(w->db, "PRAGMA journal_mode=WAL", -1, &st, NULL) != SQLITE_OK ||
        sqlite3_step(st) != SQLITE_ROW) {
        db_error(err, w->db, "journal_mode");
    } else if (strcmp((const char *)sqlite3_column_text(st, 0), "wal") != 0) {
        lo_err_set(err, 500, "InternalError", "cannot put the database in WAL mode (mode is %s)",
                   sqlite3_column_text(st, 0));
    } else {
        ret = STORE_OK;
    }
    sqlite3_finalize(st);
    return ret;
}

store_t *store_open(const store_options_t *opts, lo_err_t *err)
{
    assert(opts);
    if (opts->path == NULL || opts->path[0] == '\0' || strcmp(opts->path, ":memory:") == 0) {
        lo_err_set(err, 500, "InternalError", "the store needs a database file");
        return NULL;
    }
    store_t *s = lo_calloc(1, sizeof(*s));
    s->path = lo_strdup(opts->path);
    s->sync_full = opts->sync_full;
    pthread_mutex_init(&s->write_mu, NULL);
    pthread_mutex_init(&s->readers_mu, NULL);
    if (pthread_key_create(&s->reader_key, reader_destroy) != 0) {
        lo_err_set(err, 500, "InternalError", "out of thread keys");
        goto Fail_key;
    }
    if (conn_open(&s->writer, s->path, ROLE_W, s->sync_full, err) != STORE_OK)
        goto Fail;
    if (enable_wal(&s->writer, err) != STORE_OK || schema_init(&s->writer, err) != STORE_OK ||
        conn_prepare_all(&s->writer, ROLE_W, err) != STORE_OK) {
        conn_close(&s->writer);
        goto Fail;
    }
    return s;
Fail:
    pthread_key_delete(s->reader_key);
Fail_key:
    pthread_mutex_destroy(&s->readers_mu);
    pthread_mutex_destroy(&s->write_mu);
    free(s->path);
    free(s);
    return NULL;
}

/*
 * Closes every reader (also those of other, still running threads: no call
 * may be in progress) and then the writer. A thread that used the store must
 * not be exiting concurrently, as its key destructor would race.
 */
void store_close(store_t *store)
{
    if (store == NULL)
        return;
    pthread_key_delete(store->reader_key);
    pthread_mutex_lock(&store->readers_mu);
    reader_t *r = store->readers;
    while (r) {
        reader_t *next = r->next;
        conn_close(&r->conn);
        free(r);
        r = next;
    }
    store->readers = NULL;
    pthread_mutex_unlock(&store->readers_mu);
    conn_close(&store->writer);
    pthread_mutex_destroy(&store->readers_mu);
    pthread_mutex_destroy(&store->write_mu);
    free(store->path);
    free(store);
}

const char *store_event_type_name(store_event_type_t type)
{
    switch (type) {
    case STORE_EVENT_ADDED: return "ADDED";
    case STORE_EVENT_MODIFIED: return "MODIFIED";
    case STORE_EVENT_DELETED: return "DELETED";
    }
    return "UNKNOWN";
}

void store_set_commit_hook(store_t *store, store_commit_fn fn, void *ctx)
{
    pthread_mutex_lock(&store->write_mu);
    store->hook = fn;
    store->hook_ctx = ctx;
    pthread_mutex_unlock(&store->write_mu);
}

/* ---- simple reads ---- */

int store_current_rv(store_t *store, int64_t *rv, lo_err_t *err)
{
    reader_t *r = reader_get(store, err);
    if (r == NULL)
        return STORE_IO;
    return stmt_int(&r->conn, ST_SEQ, 0, rv, err);
}

int store_compacted_rv(store_t *store, int64_t *rv, lo_err_t *err)
{
    reader_t *r = reader_get(store, err);
    if (r == NULL)
        return STORE_IO;
    return stmt_int(&r->conn, ST_COMPACTED, 0, rv, err);
}

int store_get(store_t *store, const char *resource, const char *ns, const char *name, json_t **out,
              lo_err_t *err)
{
    assert(store && resource && name && out);
    *out = NULL;
    reader_t *r = reader_get(store, err);
    if (r == NULL)
        return STORE_IO;
    int rc = conn_get(&r->conn, resource, ns ? ns : "", name, out, NULL, err);
    if (rc == STORE_NOT_FOUND)
        not_found(err, resource, name);
    return rc;
}

/* ---- writes ---- */

int store_txn_get(store_txn_t *txn, const char *resource, const char *ns, const char *name, json_t **out,
                  lo_err_t *err)
{
    *out = NULL;
    int rc = conn_get(&txn->store->writer, resource, ns ? ns : "", name, out, NULL, err);
    if (rc == STORE_NOT_FOUND)
        not_found(err, resource, name);
    return rc;
}

int store_txn_count(store_txn_t *txn, const char *resource, const char *ns, int64_t *count, lo_err_t *err)
{
    conn_t *c = &txn->store->writer;
    sqlite3_stmt *st = c->st[ST_COUNT];
    sqlite3_bind_text(st, 1, resource, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, ns ? ns : "", -1, SQLITE_STATIC);
    int rc = stmt_int(c, ST_COUNT, 0, count, err);
    sqlite3_clear_bindings(st);
    return rc;
}

/* Sets obj.metadata.resourceVersion to the decimal string of rv, or removes it when rv <= 0. */
static void set_rv(json_t *obj, int64_t rv)
{
    json_t *meta = json_object_get(obj, "metadata");
    if (!json_is_object(meta)) {
        meta = json_object();
        json_object_set_new(obj, "metadata", meta);
    }
    if (rv <= 0) {
        json_object_del(meta, "resourceVersion");
        return;
    }
    char buf[24];
    snprintf(buf, sizeof(buf), "%" PRId64, rv);
    json_object_set_new(meta, "resourceVersion", json_string(buf));
}

/* What one store_write works on, with the writer lock held. */
typedef struct write_state {
    store_t *s;
    const store_write_t *w;
    const char *ns;
    json_t *current;  /* new ref or NULL: the stored object */
    int64_t cur_rv;
    int committed;
} write_state_t;

/*
 * Logs one change of obj (whose resourceVersion becomes the new rv) and
 * applies it to objects, then commits. *rv is the new rv.
 */
static int commit_change(write_state_t *ws, store_event_type_t type, json_t *obj, int64_t *rv, lo_err_t *err)
{
    conn_t *c = &ws->s->writer;
    const store_write_t *w = ws->w;
    int64_t seq;
    int ret = STORE_IO;
    char *body = NULL;

    if (stmt_int(c, ST_SEQ, 0, &seq, err) != STORE_OK)
        return STORE_IO;
    set_rv(obj, seq + 1);
    body = json_dumps(obj, JSON_COMPACT);
    if (body == NULL) {
        lo_err_set(err, 500, "InternalError", "cannot encode %s %s/%s", w->resource, ws->ns, w->name);
        goto Exit;
    }

    sqlite3_stmt *ev = c->st[ST_EVENT_INSERT];
    sqlite3_bind_int64(ev, 1, seq + 1);
    bind_key(ev, 2, w->resource, ws->ns, w->name);
    sqlite3_bind_text(ev, 5, store_event_type_name(type), -1, SQLITE_STATIC);
    sqlite3_bind_text(ev, 6, body, -1, SQLITE_STATIC);
    sqlite3_bind_int64(ev, 7, type == STORE_EVENT_ADDED ? 0 : ws->cur_rv);
    sqlite3_bind_int64(ev, 8, (int64_t)time(NULL));
    int rc = stmt_run(c, ST_EVENT_INSERT, err);
    sqlite3_clear_bindings(ev);
    if (rc != STORE_OK)
        goto Exit;

    if (type == STORE_EVENT_DELETED) {
        sqlite3_stmt *del = c->st[ST_DELETE];
        bind_key(del, 1, w->resource, ws->ns, w->name);
        rc = stmt_run(c, ST_DELETE, err);
        sqlite3_clear_bindings(del);
    } else {
        sqlite3_stmt *up = c->st[ST_UPSERT];
        bind_key(up, 1, w->resource, ws->ns, w->name);
        sqlite3_bind_int64(up, 4, seq + 1);
        sqlite3_bind_text(up, 5, body, -1, SQLITE_STATIC);
        rc = stmt_run(c, ST_UPSERT, err);
        sqlite3_clear_bindings(up);
    }
    if (rc != STORE_OK || stmt_run(c, ST_COMMIT, err) != STORE_OK)
        goto Exit;
    ws->committed = 1;
    *rv = seq + 1;
    ret = STORE_OK;
Exit:
    free(body);
    return ret;
}

static void call_hook(write_state_t *ws, int64_t rv, store_event_type_t type, const json_t *obj,
                      const json_t *prev)
{
    if (ws->s->hook == NULL)
        return;
    store_event_t ev = {.rv = rv, .type = type, .resource = ws->w->resource, .ns = ws->ns, .name = ws->w->name,
                        .object = obj, .prev = type == STORE_EVENT_MODIFIED ? prev : NULL};
    ws->s->hook(ws->s->hook_ctx, &ev);
}

/* Fills out as a no-op: the current object (stolen from ws) and its rv. */
static int finish_noop(write_state_t *ws, store_write_result_t *out)
{
    out->kind = STORE_WRITE_NOOP;
    out->object = ws->current;
    out->rv = ws->current ? ws->cur_rv : 0;
    ws->current = NULL;
    return STORE_OK;
}

/* PUT of next (stolen). */
static int write_put(write_state_t *ws, json_t *next, store_write_result_t *out, lo_err_t *err)
{
    const store_write_t *w = ws->w;
    int64_t rv = 0;

    if (!json_is_object(next)) {
        json_decref(next);
        lo_err_set(err, 500, "InternalError", "store: mutate of %s %s/%s put a non-object", w->resource, ws->ns,
                   w->name);
        return STORE_IO;
    }
    if (ws->current) {
        /* Compare as if next kept the current rv: a change of rv alone is no change. */
        set_rv(next, ws->cur_rv);
        if (json_equal(next, ws->current)) {
            json_decref(next);
            return finish_noop(ws, out);
        }
    } else {
        set_rv(next, 0);
    }
    if (!w->dry_run) {
        store_event_type_t type = ws->current ? STORE_EVENT_MODIFIED : STORE_EVENT_ADDED;
        if (commit_change(ws, type, next, &rv, err) != STORE_OK) {
            json_decref(next);
            return STORE_IO;
        }
        call_hook(ws, rv, type, next, ws->current);
    }
    out->kind = STORE_WRITE_PUT;
    out->object = next;
    out->rv = rv;
    return STORE_OK;
}

/* DELETE; last (stolen, may be NULL) is the last state to report. */
static int write_delete(write_state_t *ws, json_t *last, store_write_result_t *out, lo_err_t *err)
{
    const store_write_t *w = ws->w;
    int64_t rv = 0;

    if (ws->current == NULL) {
        json_decref(last);
        not_found(err, w->resource, w->name);
        return STORE_NOT_FOUND;
    }
    if (last == NULL) {
        last = ws->current;
        ws->current = NULL;
    } else if (!json_is_object(last)) {
        json_decref(last);
        lo_err_set(err, 500, "InternalError", "store: mutate of %s %s/%s gave a non-object last state",
                   w->resource, ws->ns, w->name);
        return STORE_IO;
    }
    if (w->dry_run) {
        set_rv(last, ws->cur_rv);
    } else {
        if (commit_change(ws, STORE_EVENT_DELETED, last, &rv, err) != STORE_OK) {
            json_decref(last);
            return STORE_IO;
        }
        call_hook(ws, rv, STORE_EVENT_DELETED, last, NULL);
    }
    out->kind = STORE_WRITE_DELETE;
    out->object = last;
    out->rv = rv;
    return STORE_OK;
}

int store_write(store_t *store, const store_write_t *w, store_write_result_t *out, lo_err_t *err)
{
    write_state_t ws = {.s = store, .w = w, .ns = w->ns ? w->ns : ""};
    store_txn_t txn = {.store = store};
    conn_t *c = &store->writer;
    json_t *next = NULL;
    int ret = STORE_IO;

    assert(store && w && w->resource && w->name && w->mutate && out);
    memset(out, 0, sizeof(*out));
    pthread_mutex_lock(&store->write_mu);
    if (stmt_run(c, ST_BEGIN, err) != STORE_OK)
        goto Exit;
    int rc = conn_get(c, w->resource, ws.ns, w->name, &ws.current, &ws.cur_rv, err);
    if (rc == STORE_IO)
        goto Exit;

    int kind = w->mutate(&txn, ws.current, &next, w->ctx, err);
    switch (kind) {
    case STORE_WRITE_NOOP:
        json_decref(next);
        ret = finish_noop(&ws, out);
        break;
    case STORE_WRITE_PUT:
        ret = write_put(&ws, next, out, err);
        break;
    case STORE_WRITE_DELETE:
        ret = write_delete(&ws, next, out, err);
        break;
    default:
        json_decref(next);
        ret = STORE_ABORTED;
        break;
    }
Exit:
    if (!ws.committed)
        conn_rollback(c);
    pthread_mutex_unlock(&store->write_mu);
    json_decref(ws.current);
    return ret;
}

void store_write_result_free(store_write_result_t *res)
{
    if (res == NULL)
        return;
    json_decref(res->object);
    res->object = NULL;
}

/* ---- lists ---- */

/* One row of a list scan; pointers valid until the next list_next(). */
typedef struct list_row {
    const char *ns, *name;
    const void *body;
    int len;
} list_row_t;

/*
 * Next live object of a list scan: from objects directly, or from history,
 * where each group row names the latest event of a key and DELETED ones are
 * skipped. Returns 1 with *row filled, 0 at the end, STORE_IO on failure.
 */
static int list_next(conn_t *c, sqlite3_stmt *st, int history, list_row_t *row, lo_err_t *err)
{
    sqlite3_stmt *ev = c->st[ST_EVENT_BY_ID];
    for (;;) {
        int rc = sqlite3_step(st);
        if (rc == SQLITE_DONE)
            return 0;
        if (rc != SQLITE_ROW)
            return db_error(err, c->db, "list");
        row->ns = (const char *)sqlite3_column_text(st, 0);
        row->name = (const char *)sqlite3_column_text(st, 1);
        if (!history) {
            row->body = sqlite3_column_blob(st, 2);
            row->len = sqlite3_column_bytes(st, 2);
            return 1;
        }
        sqlite3_reset(ev);
        sqlite3_bind_int64(ev, 1, sqlite3_column_int64(st, 2));
        rc = sqlite3_step(ev);
        if (rc != SQLITE_ROW)
            return db_error(err, c->db, "list history");
        const char *type = (const char *)sqlite3_column_text(ev, 0);
        if (type && strcmp(type, "DELETED") == 0)
            continue;
        row->body = sqlite3_column_blob(ev, 1);
        row->len = sqlite3_column_bytes(ev, 1);
        return 1;
    }
}

/* Whether any event of resource is newer than rv (then objects is not the state at rv). */
static int changed_since(conn_t *c, const char *resource, int64_t rv, int *changed, lo_err_t *err)
{
    sqlite3_stmt *st = c->st[ST_NEWER];
    int64_t one;
    sqlite3_bind_text(st, 1, resource, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, rv);
    int rc = stmt_int(c, ST_NEWER, 0, &one, err);
    sqlite3_clear_bindings(st);
    *changed = one != 0;
    return rc;
}

/* Checks at_rv against the snapshot; picks the statement variant and binds it. */
static int list_start(conn_t *c, const store_list_opts_t *o, int64_t cur, sqlite3_stmt **out, int *history,
                      lo_err_t *err)
{
    int64_t compacted;
    int variant = 0;

    if (stmt_int(c, ST_COMPACTED, 0, &compacted, err) != STORE_OK)
        return STORE_IO;
    if (o->at_rv < 0 || (o->at_rv > 0 && o->at_rv <= compacted)) {
        lo_err_set(err, 410, "Expired", "too old resource version: %" PRId64 " (%" PRId64 ")", o->at_rv, compacted);
        return STORE_EXPIRED;
    }
    if (o->at_rv > cur) {
        lo_err_set(err, 504, "Timeout", "Too large resource version: %" PRId64 ", current: %" PRId64, o->at_rv,
                   cur);
        return STORE_FUTURE_RV;
    }
    if (o->at_rv != 0 && o->at_rv != cur) {
        int changed;
        if (changed_since(c, o->resource, o->at_rv, &changed, err) != STORE_OK)
            return STORE_IO;
        if (changed)
            variant |= LIST_HISTORY;
    }
    if (o->ns)
        variant |= LIST_NS;
    if (o->after_ns || o->after_name) {
        const char *after_ns = o->after_ns ? o->after_ns : "";
        int cmp = o->ns ? strcmp(after_ns, o->ns) : 0;
        if (cmp > 0) {
            *out = NULL; /* the namespace lies wholly before the continue key */
            return STORE_OK;
        }
        if (cmp == 0) /* cmp < 0: the whole namespace follows the key */
            variant |= LIST_AFTER;
    }

    sqlite3_stmt *st = c->st[ST_LIST + variant];
    sqlite3_bind_text(st, 1, o->resource, -1, SQLITE_STATIC);
    if (o->ns)
        sqlite3_bind_text(st, 2, o->ns, -1, SQLITE_STATIC);
    if ((variant & LIST_AFTER) && !(variant & LIST_NS))
        sqlite3_bind_text(st, 3, o->after_ns ? o->after_ns : "", -1, SQLITE_STATIC);
    if (variant & LIST_AFTER)
        sqlite3_bind_text(st, 4, o->after_name ? o->after_name : "", -1, SQLITE_STATIC);
    if (variant & LIST_HISTORY)
        sqlite3_bind_int64(st, 5, o->at_rv);
    *out = st;
    *history = (variant & LIST_HISTORY) != 0;
    return STORE_OK;
}

/*
 * Fills out->items (up to limit), then keeps scanning to count the further
 * matches; only the page is kept in memory.
 */
static int list_scan(conn_t *c, sqlite3_stmt *st, int history, const store_list_opts_t *o,
                     store_list_result_t *out, lo_err_t *err)
{
    list_row_t row;
    size_t n = 0;
    int64_t extra = 0;
    int rc;

    while ((rc = list_next(c, st, history, &row, err)) == 1) {
        int in_page = o->limit == 0 || n < o->limit;
        json_t *obj = NULL;
        if (!in_page && o->filter == NULL) {
            extra++;
            continue;
        }
        if (decode_body(row.body, row.len, &obj) != 0)
            return corrupt_error(err, o->resource, row.ns, row.name);
        if (o->filter && !o->filter(obj, o->filter_ctx)) {
            json_decref(obj);
            continue;
        }
        if (!in_page) {
            extra++;
            json_decref(obj);
            continue;
        }
        json_array_append_new(out->items, obj);
        if (++n == o->limit) {
            out->last_ns = lo_strdup(row.ns);
            out->last_name = lo_strdup(row.name);
        }
    }
    if (rc != 0)
        return rc;
    if (extra > 0) {
        out->more = 1;
    } else {
        free(out->last_ns);
        free(out->last_name);
        out->last_ns = out->last_name = NULL;
    }
    out->remaining = extra;
    return STORE_OK;
}

int store_list(store_t *store, const store_list_opts_t *opts, store_list_result_t *out, lo_err_t *err)
{
    sqlite3_stmt *st = NULL;
    int64_t cur = 0;
    int ret = STORE_IO;

    assert(store && opts && opts->resource && out);
    memset(out, 0, sizeof(*out));
    out->remaining = -1;
    reader_t *r = reader_get(store, err);
    if (r == NULL)
        return STORE_IO;
    conn_t *c = &r->conn;
    out->items = json_array();

    /* One read transaction: the rv, the horizon and the rows come from one snapshot. */
    if (stmt_run(c, ST_BEGIN, err) != STORE_OK)
        goto Exit;
    if (stmt_int(c, ST_SEQ, 0, &cur, err) != STORE_OK)
        goto Exit;
    int history = 0;
    ret = list_start(c, opts, cur, &st, &history, err);
    if (ret == STORE_OK && st != NULL)
        ret = list_scan(c, st, history, opts, out, err);
    else if (ret == STORE_OK)
        out->remaining = 0;
Exit:
    if (st) {
        sqlite3_reset(st);
        sqlite3_clear_bindings(st);
    }
    sqlite3_reset(c->st[ST_EVENT_BY_ID]);
    conn_rollback(c);
    if (ret != STORE_OK)
        store_list_result_free(out);
    else
        out->rv = opts->at_rv ? opts->at_rv : cur;
    return ret;
}

void store_list_result_free(store_list_result_t *res)
{
    if (res == NULL)
        return;
    json_decref(res->items);
    free(res->last_ns);
    free(res->last_name);
    res->items = NULL;
    res->last_ns = res->last_name = NULL;
}

/* ---- change feed ---- */

/* Decodes the event with id prev_rv (the state before a MODIFIED event): new reference or NULL. */
static json_t *load_prev(conn_t *c, int64_t prev_rv)
{
    sqlite3_stmt *ev = c->st[ST_EVENT_BY_ID];
    json_t *prev = NULL;
    sqlite3_reset(ev);
    sqlite3_bind_int64(ev, 1, prev_rv);
    if (sqlite3_step(ev) == SQLITE_ROW)
        decode_body(sqlite3_column_blob(ev, 1), sqlite3_column_bytes(ev, 1), &prev);
    sqlite3_reset(ev);
    return prev;
}

static store_event_type_t parse_event_type(const char *t)
{
    if (t && strcmp(t, "ADDED") == 0)
        return STORE_EVENT_ADDED;
    if (t && strcmp(t, "DELETED") == 0)
        return STORE_EVENT_DELETED;
    return STORE_EVENT_MODIFIED;
}

/* Walks the rows of the bound ST_EVENTS_AFTER statement, calling fn for each event of ns (NULL = all). */
static int events_scan(conn_t *c, const char *resource, const char *ns, int with_prev, store_event_fn fn, void *ctx,
                       lo_err_t *err)
{
    sqlite3_stmt *st = c->st[ST_EVENTS_AFTER];
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *row_ns = (const char *)sqlite3_column_text(st, 1);
        if (ns && strcmp(ns, row_ns) != 0)
            continue;
        store_event_t ev = {.rv = sqlite3_column_int64(st, 0), .resource = resource, .ns = row_ns,
                            .name = (const char *)sqlite3_column_text(st, 2),
                            .type = parse_event_type((const char *)sqlite3_column_text(st, 3))};
        json_t *obj = NULL, *prev = NULL;
        if (decode_body(sqlite3_column_blob(st, 4), sqlite3_column_bytes(st, 4), &obj) != 0)
            return corrupt_error(err, resource, ev.ns, ev.name);
        if (with_prev && ev.type == STORE_EVENT_MODIFIED && sqlite3_column_int64(st, 5) > 0)
            prev = load_prev(c, sqlite3_column_int64(st, 5));
        ev.object = obj;
        ev.prev = prev;
        int stop = fn(ctx, &ev);
        json_decref(obj);
        json_decref(prev);
        if (stop)
            return STORE_OK;
    }
    if (rc != SQLITE_DONE)
        return db_error(err, c->db, "events");
    return STORE_OK;
}

int store_events(store_t *store, const char *resource, const char *ns, int64_t after_rv, int with_prev,
                 store_event_fn fn, void *ctx, int64_t *up_to, lo_err_t *err)
{
    int64_t cur = 0, compacted = 0;
    int ret = STORE_IO;
    reader_t *r = reader_get(store, err);
    if (r == NULL)
        return STORE_IO;
    conn_t *c = &r->conn;
    sqlite3_stmt *st = c->st[ST_EVENTS_AFTER];
    /* one read transaction: the horizon, the newest rv and the rows come from one snapshot */
    if (stmt_run(c, ST_BEGIN, err) != STORE_OK)
        return STORE_IO;
    if (stmt_int(c, ST_SEQ, 0, &cur, err) != STORE_OK || stmt_int(c, ST_COMPACTED, 0, &compacted, err) != STORE_OK)
        goto Exit;
    if (after_rv < compacted) {
        lo_err_set(err, 410, "Expired", "too old resource version: %" PRId64 " (%" PRId64 ")", after_rv, compacted);
        ret = STORE_EXPIRED;
        goto Exit;
    }
    if (after_rv > cur) {
        lo_err_set(err, 504, "Timeout", "Too large resource version: %" PRId64 ", current: %" PRId64, after_rv, cur);
        ret = STORE_FUTURE_RV;
        goto Exit;
    }
    sqlite3_bind_text(st, 1, resource, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, after_rv);
    sqlite3_bind_int64(st, 3, cur);
    ret = events_scan(c, resource, ns, with_prev, fn, ctx, err);
    if (ret == STORE_OK && up_to)
        *up_to = cur;
Exit:
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    conn_rollback(c);
    return ret;
}

/* ---- compaction ---- */

static int query_int(conn_t *w, const char *sql, int64_t bound, int64_t *out, lo_err_t *err)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(w->db, sql, -1, &st, NULL) != SQLITE_OK)
        return db_error(err, w->db, sql);
    if (sqlite3_bind_parameter_count(st) > 0)
        sqlite3_bind_int64(st, 1, bound);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        *out = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        return db_error(err, w->db, sql);
    return STORE_OK;
}

static int exec_bound(conn_t *w, const char *sql, int64_t bound, lo_err_t *err)
{
    int64_t unused = 0;
    return query_int(w, sql, bound, &unused, err);
}

/* The horizon the retention rules allow: >= keep_revisions newer revisions and >= keep_seconds of history. */
static int compaction_target(conn_t *w, int64_t keep_revisions, int64_t keep_seconds, int64_t *target,
                             lo_err_t *err)
{
    int64_t seq = 0, by_time = 0;
    if (stmt_int(w, ST_SEQ, 0, &seq, err) != STORE_OK ||
        query_int(w, "SELECT COALESCE(MAX(id), 0) FROM events WHERE created <= ?1", (int64_t)time(NULL) - keep_seconds,
                  &by_time, err) != STORE_OK)
        return STORE_IO;
    *target = seq - keep_revisions;
    if (by_time < *target)
        *target = by_time;
    return STORE_OK;
}

int store_compact(store_t *store, int64_t keep_revisions, int64_t keep_seconds, int64_t *compacted, lo_err_t *err)
{
    conn_t *w = &store->writer;
    int64_t target = 0, horizon = 0;
    int ret = STORE_IO;
    pthread_mutex_lock(&store->write_mu);
    if (conn_exec(w, "BEGIN IMMEDIATE", err) != STORE_OK)
        goto Unlock;
    if (compaction_target(w, keep_revisions, keep_seconds, &target, err) != STORE_OK ||
        query_int(w, "SELECT v FROM meta WHERE k = 'compacted_rv'", 0, &horizon, err) != STORE_OK)
        goto Exit;
    if (target > horizon) {
        /* superseded events (a later event inside the horizon names them as prev_rv) and tombstones */
        if (exec_bound(w,
                       "DELETE FROM events WHERE id <= ?1 AND (type = 'DELETED' OR id IN"
                       " (SELECT prev_rv FROM events WHERE id <= ?1 AND prev_rv > 0))",
                       target, err) != STORE_OK ||
            exec_bound(w, "UPDATE meta SET v = ?1 WHERE k = 'compacted_rv'", target, err) != STORE_OK)
            goto Exit;
        horizon = target;
    }
    ret = conn_exec(w, "COMMIT", err);
Exit:
    if (ret != STORE_OK)
        conn_rollback(w);
    else
        sqlite3_wal_checkpoint_v2(w->db, NULL, SQLITE_CHECKPOINT_TRUNCATE, NULL, NULL);
Unlock:
    pthread_mutex_unlock(&store->write_mu);
    if (ret == STORE_OK && compacted)
        *compacted = horizon;
    return ret;
}
