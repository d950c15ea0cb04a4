/*
 * sqlite_backend.c - the storage engine of backend.h on one SQLite
 * database file in WAL mode.
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
 *       needs the state before a change, and compaction finds superseded
 *       events through it. created is the commit time (unix seconds), for
 *       time-based retention.
 *       Index: (resource, id), for "did anything change after rv", watch
 *       replay and lists at an older rv (what changed after it). No index by
 *       key: it made every write touch one more page at random.
 *
 *   counts(resource, namespace, n)   PRIMARY KEY (resource, namespace)
 *       How many objects each (resource, namespace) holds: kept with every
 *       ADDED and DELETED change, so that counting (capacity, the derived
 *       counts of a LanguageCluster) costs one row, not a scan. A batch sums
 *       its changes per (resource, namespace) and writes each sum once,
 *       before its commit (see count_delta_t).
 *
 *   meta(k, v)   'schema_version' = 1, 'compacted_rv' = the compaction horizon,
 *                'compacted_through' = how far compaction has removed events,
 *                'counts_ready' = 1 once counts was built from objects (a
 *                database from before counts is counted once at open).
 *
 * Invariants:
 *  1. The current rv is sqlite_sequence.seq of 'events' (0 when absent). It
 *     only grows, even when compaction deletes the newest events, so an rv is
 *     never reused across restarts.
 *  2. For every objects row there is an events row with id = objects.rv, type
 *     ADDED or MODIFIED, and the same body; counts.n (plus, inside a batch,
 *     the batch's sum not written yet) is the number of objects rows of its
 *     (resource, namespace).
 *  3. Only the writer connection writes, one batch transaction at a time;
 *     inside it the rv counter (store_txn.seq) assigns ids with no gaps, and
 *     a rolled-back batch's next begin reads the counter again.
 *  4. The state at rv N (N > compacted_rv) is, per key, the latest event with
 *     id <= N unless that event is DELETED. Compaction to horizon H raises
 *     compacted_rv to H first, and only then deletes events superseded by a
 *     newer event of the same key with id <= H (exactly those a later event
 *     names as prev_rv) and DELETED events with id <= H, in steps that
 *     advance compacted_through.
 *  5. events.type is one of its three names. The table's CHECK says so, but
 *     the writer connection does not run it (ignore_check_constraints, set
 *     before its statements are prepared): SQLite 3.40 builds a temporary
 *     index of the IN list on every insert, which was half the cost of
 *     logging a change. backend_write_change() refuses any other type.
 *
 * The object cache: decoding JSON is the dearest part of a read, and some
 * objects are read by nearly every write (a namespace's LanguageCluster,
 * for admission; every model of a namespace, for the derived status of
 * a model's write). Committed content at an rv never changes, so a small
 * direct-mapped cache keyed by (resource, namespace, name) and checked
 * against the rv the row holds is always right; it only takes entries
 * that are committed (never the writer's own uncommitted rows, whose rv a
 * rollback may give to other content), and only small ones, so that its
 * memory is bounded whatever the objects. Objects from store_get and
 * store_txn_get are therefore shared and read-only.
 *
 * Connections: the writer connection (writer thread only; its WAL is never
 * checkpointed on commit: wal_autocheckpoint=0), one read connection per
 * reading thread, created lazily and kept in a pthread key, and one
 * checkpoint connection. WAL gives each read transaction a snapshot, so
 * reads never wait for the writer. Memory does not grow with the number of
 * objects: the page caches and the object cache are bounded.
 */
#include "backend.h"
#include "walbatch.h"

#include "langop/storage/store.h" /* the store_txn_* reads are implemented here */
#include "langop/core/codec.h"

#include <assert.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sqlite3.h>

#define STORE_SCHEMA_VERSION 1
/*
 * Decoded objects kept (a power of two). The commit rules list a
 * namespace's objects on writes (derived status), so a namespace's worth
 * must fit without two of them fighting over a slot: at 2048 slots, 300
 * objects share slots about 7% of the time (512 slots: about 25%, and each
 * such pair is decoded again on every list).
 */
#define OBJECT_CACHE_SLOTS 2048
#define OBJECT_CACHE_MAX_BYTES 8192 /* bigger objects are not kept: the cache stays within ~50 MiB */
#define OBJECT_CACHE_MAX_BYTES_SQL "8192" /* the same, for ST_TXN_DIGEST */
#define STORE_BUSY_TIMEOUT_MS 5000
#define JOURNAL_SIZE_LIMIT "67108864" /* a reset WAL is truncated to this */

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
    "DROP INDEX IF EXISTS events_key;"
    "CREATE INDEX IF NOT EXISTS events_res_rv ON events(resource, id);"
    "CREATE TABLE IF NOT EXISTS counts ("
    "  resource TEXT NOT NULL, namespace TEXT NOT NULL, n INTEGER NOT NULL,"
    "  PRIMARY KEY (resource, namespace));"
    "INSERT OR IGNORE INTO meta(k, v) VALUES ('schema_version', 1), ('compacted_rv', 0),"
    " ('compacted_through', 0);"
    "INSERT INTO counts(resource, namespace, n) SELECT resource, namespace, COUNT(*) FROM objects"
    " WHERE NOT EXISTS (SELECT 1 FROM meta WHERE k = 'counts_ready') GROUP BY resource, namespace;"
    "INSERT OR IGNORE INTO meta(k, v) VALUES ('counts_ready', 1);";

/*
 * Prepared statements. Each connection prepares the ones of its role once and
 * keeps them for its life. The four LIST_* statements are the variants of a
 * list of objects: bit 0 = one namespace, bit 1 = continue after a key.
 */
enum stmt_id {
    ST_BEGIN, ST_COMMIT, ST_ROLLBACK,
    ST_GET, ST_KEY_RV, ST_SEQ, ST_COUNT, ST_TXN_LIST, ST_TXN_NAMES, ST_TXN_DIGEST,
    ST_EVENT_INSERT, ST_UPSERT, ST_DELETE, ST_COMPACTED,
    ST_NEWER, ST_EVENT_BY_ID, ST_EVENTS_AFTER, ST_EVENTS_AFTER_NS, ST_CHANGED, ST_CHANGED_NS,
    ST_COUNT_ADD, ST_RAISE, ST_DROP_SUPERSEDED, ST_DROP_TOMBSTONES, ST_THROUGH, ST_GET_THROUGH, ST_BY_TIME,
    ST_LIST, /* ... ST_LIST + 3 */
    ST_COUNT_ALL = ST_LIST + 4,
};

#define ROLE_W 1
#define ROLE_R 2

#define LIST_NS 1
#define LIST_AFTER 2

static const struct {
    const char *sql;
    int roles;
} stmt_defs[ST_LIST] = {
    /* the writer's BEGIN takes the write lock at once, so a batch never upgrades from read to write */
    [ST_BEGIN] = {NULL, ROLE_W | ROLE_R},
    [ST_COMMIT] = {"COMMIT", ROLE_W},
    [ST_ROLLBACK] = {"ROLLBACK", ROLE_W | ROLE_R},
    [ST_GET] = {"SELECT rv, body FROM objects WHERE resource = ?1 AND namespace = ?2 AND name = ?3",
                ROLE_W | ROLE_R},
    [ST_KEY_RV] = {"SELECT rv FROM objects WHERE resource = ?1 AND namespace = ?2 AND name = ?3", ROLE_W},
    [ST_SEQ] = {"SELECT seq FROM sqlite_sequence WHERE name = 'events'", ROLE_W | ROLE_R},
    [ST_COUNT] = {"SELECT n FROM counts WHERE resource = ?1 AND namespace = ?2", ROLE_W | ROLE_R},
    [ST_COUNT_ADD] = {"INSERT INTO counts(resource, namespace, n) VALUES (?1, ?2, ?3)"
                      " ON CONFLICT (resource, namespace) DO UPDATE SET n = n + excluded.n",
                      ROLE_W},
    [ST_TXN_LIST] = {"SELECT name, body, rv FROM objects WHERE resource = ?1 AND namespace = ?2 ORDER BY name",
                     ROLE_W | ROLE_R},
    [ST_TXN_NAMES] = {"SELECT name FROM objects WHERE resource = ?1 AND namespace = ?2 ORDER BY name",
                      ROLE_W | ROLE_R},
    /* small objects whole (the object cache has them), big ones as their digest, made by SQLite */
    [ST_TXN_DIGEST] = {"SELECT name, CASE WHEN length(body) <= " OBJECT_CACHE_MAX_BYTES_SQL " THEN body END, rv,"
                       " CASE WHEN length(body) > " OBJECT_CACHE_MAX_BYTES_SQL " THEN json_object("
                       "'metadata', json_object('name', name, 'namespace', namespace,"
                       " 'generation', json_extract(body, '$.metadata.generation')),"
                       " 'spec', json_extract(body, '$.spec'), 'status', json_extract(body, '$.status')) END"
                       " FROM objects WHERE resource = ?1 AND namespace = ?2 ORDER BY name",
                       ROLE_W | ROLE_R},
    [ST_EVENT_INSERT] = {"INSERT INTO events(id, resource, namespace, name, type, body, prev_rv, created)"
                         " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                         ROLE_W},
    [ST_UPSERT] = {"INSERT INTO objects(resource, namespace, name, rv, body) VALUES (?1, ?2, ?3, ?4, ?5)"
                   " ON CONFLICT (resource, namespace, name) DO UPDATE SET rv = excluded.rv, body = excluded.body",
                   ROLE_W},
    [ST_DELETE] = {"DELETE FROM objects WHERE resource = ?1 AND namespace = ?2 AND name = ?3", ROLE_W},
    [ST_COMPACTED] = {"SELECT v FROM meta WHERE k = 'compacted_rv'", ROLE_W | ROLE_R},
    [ST_NEWER] = {"SELECT 1 FROM events WHERE resource = ?1 AND id > ?2 LIMIT 1", ROLE_R},
    [ST_EVENT_BY_ID] = {"SELECT type, body FROM events WHERE id = ?1", ROLE_R},
    [ST_EVENTS_AFTER] = {"SELECT id, namespace, name, type, body, prev_rv FROM events"
                         " WHERE resource = ?1 AND id > ?2 AND id <= ?3 ORDER BY id",
                         ROLE_R},
    [ST_EVENTS_AFTER_NS] = {"SELECT id, namespace, name, type, body, prev_rv FROM events"
                            " WHERE resource = ?1 AND id > ?2 AND id <= ?3 AND namespace = ?4 ORDER BY id",
                            ROLE_R},
    /* per key changed after ?2: the event that held its state at ?2 (the prev of its first later event) */
    [ST_CHANGED] = {"SELECT c.namespace, c.name, f.prev_rv FROM (SELECT namespace, name, MIN(id) AS first"
                    " FROM events WHERE resource = ?1 AND id > ?2 GROUP BY namespace, name) c"
                    " JOIN events f ON f.id = c.first ORDER BY c.namespace, c.name",
                    ROLE_R},
    [ST_CHANGED_NS] = {"SELECT c.namespace, c.name, f.prev_rv FROM (SELECT namespace, name, MIN(id) AS first"
                       " FROM events WHERE resource = ?1 AND id > ?2 AND namespace = ?3 GROUP BY namespace, name) c"
                       " JOIN events f ON f.id = c.first ORDER BY c.namespace, c.name",
                       ROLE_R},
    [ST_RAISE] = {"UPDATE meta SET v = ?1 WHERE k = 'compacted_rv' AND v < ?1", ROLE_W},
    /* superseded: a later event at or below the horizon names it as its prev_rv */
    [ST_DROP_SUPERSEDED] = {"DELETE FROM events WHERE id IN"
                            " (SELECT prev_rv FROM events WHERE id > ?1 AND id <= ?2 AND prev_rv > 0)",
                            ROLE_W},
    [ST_DROP_TOMBSTONES] = {"DELETE FROM events WHERE id > ?1 AND id <= ?2 AND type = 'DELETED'", ROLE_W},
    [ST_THROUGH] = {"UPDATE meta SET v = ?1 WHERE k = 'compacted_through'", ROLE_W},
    [ST_GET_THROUGH] = {"SELECT v FROM meta WHERE k = 'compacted_through'", ROLE_R},
    /* commit times grow with the ids: read back from the newest, only what is younger than the cut-off */
    [ST_BY_TIME] = {"SELECT id FROM events WHERE created <= ?1 ORDER BY id DESC LIMIT 1", ROLE_R},
};

/* One connection and its statements; used by one thread at a time. */
typedef struct conn {
    sqlite3 *db;
    sqlite3_stmt *st[ST_COUNT_ALL];
} conn_t;

typedef struct reader reader_t;

/* A transaction: the writer's batch, or a reader's snapshot. */
struct store_txn {
    backend_t *b;
    conn_t *conn;
    int writer;
    int depth;           /* reader: nesting of snapshot use (BEGIN at 0 -> 1) */
    int64_t begin_seq;   /* writer: the rv committed when the batch began: rows at or below are committed */
    int64_t seq;         /* writer: rv of the newest change made, or current at begin */
};

/* A reading thread's connection, linked into its backend's list of readers. */
struct reader {
    conn_t conn;
    store_txn_t txn;
    backend_t *b;
    reader_t *prev, *next;
};

typedef struct cache_slot {
    char *key;                   /* resource \0 namespace \0 name, as one malloc'd string */
    size_t key_len;
    int64_t rv;
    json_t *obj;                 /* read-only, shared */
} cache_slot_t;

/*
 * What the writer read in the batch in progress, by key. A batch of creates
 * in one namespace reads its LanguageCluster for every create (membership,
 * capacity), each time a query; through the memo, once per batch. A key is
 * forgotten when the batch writes it and every key when the batch ends
 * (commit or rollback), so a read through the memo returns what the query
 * would have.
 */
#define WRITER_MEMO_SLOTS 8

typedef struct memo_slot {
    char *key;                   /* as cache_key() makes it; NULL: free */
    size_t key_len;
    int64_t rv;
    json_t *obj;                 /* read-only, shared */
} memo_slot_t;

/*
 * The batch's changes to the counts table, one per (resource, namespace),
 * written just before its commit: one upsert per namespace and batch where
 * each create and delete made one. store_txn_count() in the writer adds
 * them to what the table holds, so the count it gives is the batch's own.
 */
typedef struct count_delta {
    char *resource, *ns;
    int64_t n;
} count_delta_t;

struct backend {
    char *path;
    int sync_full;
    store_t *owner;

    conn_t writer;
    store_txn_t wtxn;
    int wal_frames;              /* atomic: frames in the WAL after the writer's last commit */

    pthread_mutex_t ckpt_mu;     /* guards ckpt */
    conn_t ckpt;

    pthread_mutex_t cache_mu;    /* guards cache */
    cache_slot_t cache[OBJECT_CACHE_SLOTS];

    memo_slot_t memo[WRITER_MEMO_SLOTS]; /* writer thread only */
    size_t memo_next;            /* the slot the next entry takes */
    count_delta_t *deltas;       /* writer thread only: the batch's changes to counts, not written yet */
    size_t n_deltas, cap_deltas;

    pthread_key_t reader_key;    /* this thread's reader_t, created lazily */
    pthread_mutex_t readers_mu;  /* guards the readers list */
    reader_t *readers;
};

/* ---- errors ---- */

/* Copies the connection's error into err (before the connection is used again). */
static int db_error(lo_err_t *err, sqlite3 *db, const char *doing)
{
    const char *msg = sqlite3_errmsg(db);
    lo_log(LO_INFO, "store: %s: %s", doing, msg);
    lo_err_set(err, 0, "", "%s", msg);
    return STORE_IO;
}

static int corrupt_error(lo_err_t *err, const char *resource, const char *ns, const char *name)
{
    lo_log(LO_INFO, "store: corrupt stored object %s/%s/%s", resource, ns, name);
    lo_err_set(err, 0, "", "corrupt stored object %s %s/%s", resource, ns, name);
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
        if (i != ST_BEGIN && (stmt_defs[i].roles & role) && conn_prepare(c, i, stmt_defs[i].sql, err) != STORE_OK)
            return STORE_IO;
    }
    if (conn_prepare(c, ST_BEGIN, role == ROLE_W ? "BEGIN IMMEDIATE" : "BEGIN", err) != STORE_OK)
        return STORE_IO;
    if (role == ROLE_W)
        return STORE_OK;
    for (int v = 0; v < 4; v++) {
        char *sql = list_sql(v);
        int rc = conn_prepare(c, ST_LIST + v, sql, err);
        free(sql);
        if (rc != STORE_OK)
            return STORE_IO;
    }
    return STORE_OK;
}

/*
 * Waits on a lock in steps of BUSY_STEP_US up to the connection's budget
 * (ms, in arg): SQLite's own handler sleeps 1, 2, 5, 10 ... ms, which made
 * the writer sleep whole milliseconds each time the checkpoint held the
 * lock for a fraction of one.
 */
#define BUSY_STEP_US 50

static int busy_wait(void *arg, int count)
{
    int64_t budget_us = (int64_t)(intptr_t)arg * 1000;
    if ((int64_t)count * BUSY_STEP_US >= budget_us)
        return 0;
    struct timespec ts = {0, BUSY_STEP_US * 1000};
    nanosleep(&ts, NULL);
    return 1;
}

static void set_busy_budget(sqlite3 *db, int ms)
{
    sqlite3_busy_handler(db, busy_wait, (void *)(intptr_t)ms);
}

/* The writer never checkpoints on commit: that I/O is the checkpoint connection's. */
static int wal_hook(void *arg, sqlite3 *db, const char *name, int frames)
{
    (void)db, (void)name;
    __atomic_store_n(&((backend_t *)arg)->wal_frames, frames, __ATOMIC_RELAXED);
    return SQLITE_OK;
}

/*
 * Opens a connection for role (ROLE_W or ROLE_R), without statements. On
 * failure c is left closed.
 */
static int conn_open(conn_t *c, const char *path, int role, int sync_full, lo_err_t *err)
{
    int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX | (role == ROLE_W ? SQLITE_OPEN_CREATE : 0);
    memset(c, 0, sizeof(*c));
    /* the writer writes a commit's WAL frames in one go (walbatch.h) */
    if (sqlite3_open_v2(path, &c->db, flags, role == ROLE_W ? walbatch_vfs() : NULL) != SQLITE_OK) {
        if (c->db == NULL) {
            lo_err_set(err, 0, "", "cannot open %s: out of memory", path);
            return STORE_IO;
        }
        db_error(err, c->db, "open");
        goto Fail;
    }
    set_busy_budget(c->db, STORE_BUSY_TIMEOUT_MS);
    if (role == ROLE_W) {
        if (conn_exec(c, sync_full ? "PRAGMA synchronous=FULL" : "PRAGMA synchronous=NORMAL", err) != STORE_OK ||
            conn_exec(c, "PRAGMA temp_store=MEMORY", err) != STORE_OK ||
            conn_exec(c, "PRAGMA journal_size_limit=" JOURNAL_SIZE_LIMIT, err) != STORE_OK)
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

/* Runs statement id with two integer bounds. */
static int stmt_run2(conn_t *c, int id, int64_t a, int64_t b, lo_err_t *err)
{
    sqlite3_stmt *st = c->st[id];
    sqlite3_bind_int64(st, 1, a);
    if (sqlite3_bind_parameter_count(st) >= 2)
        sqlite3_bind_int64(st, 2, b);
    int rc = stmt_run(c, id, err);
    sqlite3_clear_bindings(st);
    return rc;
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
    json_t *obj = NULL;
    if (text != NULL && (obj = codec_decode_json_fast(text, (size_t)len, NULL)) == NULL)
        obj = json_loadb(text, (size_t)len, 0, NULL);
    if (!json_is_object(obj)) {
        json_decref(obj);
        return -1;
    }
    *out = obj;
    return 0;
}

/* ---- the object cache ---- */

/* resource \0 namespace \0 name into buf; its length, or 0 when it does not fit. */
static size_t cache_key(char *buf, size_t size, const char *resource, const char *ns, const char *name)
{
    size_t r = strlen(resource), n = strlen(ns), m = strlen(name);
    if (r + n + m + 3 > size)
        return 0;
    memcpy(buf, resource, r + 1);
    memcpy(buf + r + 1, ns, n + 1);
    memcpy(buf + r + n + 2, name, m + 1);
    return r + n + m + 2;
}

static cache_slot_t *cache_slot(backend_t *b, const char *key, size_t len)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (size_t i = 0; i < len; i++)
        h = (h ^ (unsigned char)key[i]) * 1099511628211ull;
    return &b->cache[h & (OBJECT_CACHE_SLOTS - 1)];
}

/* The cached object of key at rv (new reference), or NULL. */
static json_t *cache_get(backend_t *b, const char *key, size_t len, int64_t rv)
{
    json_t *obj = NULL;
    pthread_mutex_lock(&b->cache_mu);
    cache_slot_t *slot = cache_slot(b, key, len);
    if (slot->obj && slot->rv == rv && slot->key_len == len && memcmp(slot->key, key, len) == 0)
        obj = json_incref(slot->obj);
    pthread_mutex_unlock(&b->cache_mu);
    return obj;
}

static void cache_put(backend_t *b, const char *key, size_t len, int64_t rv, json_t *obj)
{
    pthread_mutex_lock(&b->cache_mu);
    cache_slot_t *slot = cache_slot(b, key, len);
    json_t *old = slot->obj;
    char *old_key = slot->key;
    slot->key = lo_malloc(len);
    memcpy(slot->key, key, len);
    slot->key_len = len;
    slot->rv = rv;
    slot->obj = json_incref(obj);
    pthread_mutex_unlock(&b->cache_mu);
    json_decref(old);
    free(old_key);
}

/* ---- the writer's memo ---- */

static memo_slot_t *memo_find(backend_t *b, const char *key, size_t len)
{
    for (size_t i = 0; i < WRITER_MEMO_SLOTS; i++) {
        memo_slot_t *m = &b->memo[i];
        if (m->key && m->key_len == len && memcmp(m->key, key, len) == 0)
            return m;
    }
    return NULL;
}

static void memo_drop(memo_slot_t *m)
{
    json_decref(m->obj);
    free(m->key);
    *m = (memo_slot_t){0};
}

static void memo_put(backend_t *b, const char *key, size_t len, int64_t rv, json_t *obj)
{
    memo_slot_t *m = &b->memo[b->memo_next];
    b->memo_next = (b->memo_next + 1) % WRITER_MEMO_SLOTS;
    memo_drop(m);
    m->key = lo_malloc(len);
    memcpy(m->key, key, len);
    *m = (memo_slot_t){.key = m->key, .key_len = len, .rv = rv, .obj = json_incref(obj)};
}

/* The batch wrote the key: its next read is a query. */
static void memo_forget(backend_t *b, const char *resource, const char *ns, const char *name)
{
    char key[3 * 256 + 8];
    size_t len = cache_key(key, sizeof(key), resource, ns, name);
    memo_slot_t *m = len ? memo_find(b, key, len) : NULL;
    if (m)
        memo_drop(m);
}

static void memo_clear(backend_t *b)
{
    for (size_t i = 0; i < WRITER_MEMO_SLOTS; i++)
        memo_drop(&b->memo[i]);
}

/* ---- the batch's counts ---- */

static count_delta_t *delta_find(backend_t *b, const char *resource, const char *ns)
{
    for (size_t i = 0; i < b->n_deltas; i++)
        if (strcmp(b->deltas[i].resource, resource) == 0 && strcmp(b->deltas[i].ns, ns) == 0)
            return &b->deltas[i];
    return NULL;
}

static void delta_add(backend_t *b, const char *resource, const char *ns, int64_t n)
{
    count_delta_t *d = delta_find(b, resource, ns);
    if (d == NULL) {
        if (b->n_deltas == b->cap_deltas) {
            b->cap_deltas = b->cap_deltas ? 2 * b->cap_deltas : 8;
            b->deltas = lo_realloc(b->deltas, b->cap_deltas * sizeof(*b->deltas));
        }
        d = &b->deltas[b->n_deltas++];
        *d = (count_delta_t){lo_strdup(resource), lo_strdup(ns), 0};
    }
    d->n += n;
}

static void deltas_clear(backend_t *b)
{
    for (size_t i = 0; i < b->n_deltas; i++) {
        free(b->deltas[i].resource);
        free(b->deltas[i].ns);
    }
    b->n_deltas = 0;
}

/* Writes the batch's counts (before its commit). */
static int deltas_write(backend_t *b, conn_t *c, lo_err_t *err)
{
    sqlite3_stmt *st = c->st[ST_COUNT_ADD];
    int rc = STORE_OK;
    for (size_t i = 0; i < b->n_deltas && rc == STORE_OK; i++) {
        if (b->deltas[i].n == 0)
            continue;
        sqlite3_bind_text(st, 1, b->deltas[i].resource, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, b->deltas[i].ns, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 3, b->deltas[i].n);
        rc = stmt_run(c, ST_COUNT_ADD, err);
        sqlite3_clear_bindings(st);
    }
    deltas_clear(b);
    return rc;
}

static void cache_clear(backend_t *b)
{
    for (size_t i = 0; i < OBJECT_CACHE_SLOTS; i++) {
        json_decref(b->cache[i].obj);
        free(b->cache[i].key);
    }
    memset(b->cache, 0, sizeof(b->cache));
}

/*
 * Reads one object through ST_GET of the transaction's connection. *out is
 * new (shared: read-only); *rv (optional) its rv. Returns STORE_OK,
 * STORE_NOT_FOUND (without touching err) or STORE_IO.
 */
static int conn_get(store_txn_t *txn, const char *resource, const char *ns, const char *name, json_t **out,
                    int64_t *rv, lo_err_t *err)
{
    conn_t *c = txn->conn;
    char key[3 * 256 + 8];
    size_t key_len = cache_key(key, sizeof(key), resource, ns, name);
    memo_slot_t *m = txn->writer && key_len ? memo_find(txn->b, key, key_len) : NULL;
    if (m != NULL) {
        *out = json_incref(m->obj);
        if (rv)
            *rv = m->rv;
        return STORE_OK;
    }
    sqlite3_stmt *st = c->st[ST_GET];
    int ret = STORE_OK;
    bind_key(st, 1, resource, ns, name);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_DONE) {
        ret = STORE_NOT_FOUND;
    } else if (rc != SQLITE_ROW) {
        ret = db_error(err, c->db, "get");
    } else {
        int64_t at = sqlite3_column_int64(st, 0);
        int bytes = sqlite3_column_bytes(st, 1);
        size_t len = bytes <= OBJECT_CACHE_MAX_BYTES ? key_len : 0;
        json_t *obj = len ? cache_get(txn->b, key, len, at) : NULL;
        if (obj != NULL)
            ; /* a hit */
        else if (decode_body(sqlite3_column_blob(st, 1), bytes, &obj) != 0)
            ret = corrupt_error(err, resource, ns, name);
        else if (len && (!txn->writer || at <= txn->begin_seq))
            cache_put(txn->b, key, len, at, obj);
        if (ret == STORE_OK) {
            *out = obj;
            if (rv)
                *rv = at;
            if (txn->writer && key_len)
                memo_put(txn->b, key, key_len, at, obj);
        }
    }
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return ret;
}

/* ---- per-thread readers ---- */

static void reader_unlink(backend_t *b, reader_t *r)
{
    if (r->prev)
        r->prev->next = r->next;
    else
        b->readers = r->next;
    if (r->next)
        r->next->prev = r->prev;
}

/* pthread key destructor: a reading thread exits. */
static void reader_destroy(void *arg)
{
    reader_t *r = arg;
    backend_t *b = r->b;
    pthread_mutex_lock(&b->readers_mu);
    reader_unlink(b, r);
    pthread_mutex_unlock(&b->readers_mu);
    conn_close(&r->conn);
    free(r);
}

/* This thread's read connection, opened on first use. NULL with err filled on failure. */
static reader_t *reader_get(backend_t *b, lo_err_t *err)
{
    reader_t *r = pthread_getspecific(b->reader_key);
    if (r)
        return r;
    r = lo_calloc(1, sizeof(*r));
    if (conn_open(&r->conn, b->path, ROLE_R, 0, err) != STORE_OK) {
        free(r);
        return NULL;
    }
    if (conn_prepare_all(&r->conn, ROLE_R, err) != STORE_OK) {
        conn_close(&r->conn);
        free(r);
        return NULL;
    }
    r->b = b;
    r->txn = (store_txn_t){.b = b, .conn = &r->conn};
    pthread_mutex_lock(&b->readers_mu);
    r->next = b->readers;
    if (r->next)
        r->next->prev = r;
    b->readers = r;
    pthread_mutex_unlock(&b->readers_mu);
    pthread_setspecific(b->reader_key, r);
    return r;
}

/*
 * Enters this thread's read snapshot: BEGIN on first entry, so that a read
 * made inside an open snapshot (store_snapshot) joins it. NULL on failure.
 */
static store_txn_t *read_enter(backend_t *b, lo_err_t *err)
{
    reader_t *r = reader_get(b, err);
    if (r == NULL)
        return NULL;
    if (r->txn.depth == 0 && stmt_run(&r->conn, ST_BEGIN, err) != STORE_OK)
        return NULL;
    r->txn.depth++;
    return &r->txn;
}

static void read_leave(store_txn_t *txn)
{
    if (--txn->depth == 0)
        conn_rollback(txn->conn);
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
        lo_err_set(err, 0, "", "database schema version %" PRId64 " is not %d", version, STORE_SCHEMA_VERSION);
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
        lo_err_set(err, 0, "", "cannot put the database in WAL mode (mode is %s)", sqlite3_column_text(st, 0));
    } else {
        ret = STORE_OK;
    }
    sqlite3_finalize(st);
    return ret;
}

static int open_writer(backend_t *b, lo_err_t *err)
{
    conn_t *w = &b->writer;
    if (conn_open(w, b->path, ROLE_W, b->sync_full, err) != STORE_OK)
        return STORE_IO;
    if (enable_wal(w, err) != STORE_OK || schema_init(w, err) != STORE_OK ||
        conn_exec(w, "PRAGMA wal_autocheckpoint=0", err) != STORE_OK ||
        conn_exec(w, "PRAGMA ignore_check_constraints=ON", err) != STORE_OK || /* see invariant 5 */
        conn_prepare_all(w, ROLE_W, err) != STORE_OK) {
        conn_close(w);
        return STORE_IO;
    }
    sqlite3_wal_hook(w->db, wal_hook, b);
    b->wtxn = (store_txn_t){.b = b, .conn = w, .writer = 1};
    return STORE_OK;
}

void backend_limit_object_bytes(backend_t *b, size_t max)
{
    if (max > 0 && max < INT32_MAX)
        sqlite3_limit(b->writer.db, SQLITE_LIMIT_LENGTH, (int)max); /* the database itself refuses bigger rows */
}

backend_t *backend_open(const char *path, int sync_full, lo_err_t *err)
{
    if (path == NULL || path[0] == '\0' || strcmp(path, ":memory:") == 0) {
        lo_err_set(err, 0, "", "the store needs a database file");
        return NULL;
    }
    backend_t *b = lo_calloc(1, sizeof(*b));
    b->path = lo_strdup(path);
    b->sync_full = sync_full;
    pthread_mutex_init(&b->readers_mu, NULL);
    pthread_mutex_init(&b->ckpt_mu, NULL);
    pthread_mutex_init(&b->cache_mu, NULL);
    if (pthread_key_create(&b->reader_key, reader_destroy) != 0) {
        lo_err_set(err, 0, "", "out of thread keys");
        goto Fail_key;
    }
    if (open_writer(b, err) != STORE_OK)
        goto Fail;
    /* a checkpoint writes the database file: this connection is not query_only; and it must have read the
     * database once, or it is not in WAL mode and every checkpoint would quietly do nothing */
    if (conn_open(&b->ckpt, b->path, ROLE_R, 0, err) != STORE_OK ||
        conn_exec(&b->ckpt, "PRAGMA query_only=OFF", err) != STORE_OK ||
        conn_exec(&b->ckpt, "SELECT COUNT(*) FROM meta", err) != STORE_OK) {
        conn_close(&b->ckpt);
        conn_close(&b->writer);
        goto Fail;
    }
    return b;
Fail:
    pthread_key_delete(b->reader_key);
Fail_key:
    pthread_mutex_destroy(&b->cache_mu);
    pthread_mutex_destroy(&b->ckpt_mu);
    pthread_mutex_destroy(&b->readers_mu);
    free(b->path);
    free(b);
    return NULL;
}

/*
 * Closes every reader (also those of other, still running threads: no call
 * may be in progress) and then the writer. A thread that used the store must
 * not be exiting concurrently, as its key destructor would race.
 */
void backend_close(backend_t *b)
{
    if (b == NULL)
        return;
    pthread_key_delete(b->reader_key);
    pthread_mutex_lock(&b->readers_mu);
    reader_t *r = b->readers;
    while (r) {
        reader_t *next = r->next;
        conn_close(&r->conn);
        free(r);
        r = next;
    }
    b->readers = NULL;
    pthread_mutex_unlock(&b->readers_mu);
    conn_close(&b->ckpt);
    conn_close(&b->writer);
    memo_clear(b);
    deltas_clear(b);
    free(b->deltas);
    cache_clear(b);
    pthread_mutex_destroy(&b->cache_mu);
    pthread_mutex_destroy(&b->ckpt_mu);
    pthread_mutex_destroy(&b->readers_mu);
    free(b->path);
    free(b);
}

void backend_set_owner(backend_t *b, store_t *owner)
{
    b->owner = owner;
}

store_txn_t *backend_writer_txn(backend_t *b)
{
    return &b->wtxn;
}

store_t *backend_txn_owner(store_txn_t *txn)
{
    return txn->writer ? txn->b->owner : NULL;
}

/* ---- simple reads ---- */

int backend_current_rv(backend_t *b, int64_t *rv, lo_err_t *err)
{
    reader_t *r = reader_get(b, err);
    if (r == NULL)
        return STORE_IO;
    return stmt_int(&r->conn, ST_SEQ, 0, rv, err);
}

int backend_compacted_rv(backend_t *b, int64_t *rv, lo_err_t *err)
{
    reader_t *r = reader_get(b, err);
    if (r == NULL)
        return STORE_IO;
    return stmt_int(&r->conn, ST_COMPACTED, 0, rv, err);
}

int backend_get(backend_t *b, const char *resource, const char *ns, const char *name, json_t **out, int64_t *rv,
                lo_err_t *err)
{
    reader_t *r = reader_get(b, err);
    if (r == NULL)
        return STORE_IO;
    return conn_get(&r->txn, resource, ns ? ns : "", name, out, rv, err);
}

/* ---- transactions: reads through a snapshot or the writer's batch ---- */

store_txn_t *backend_snapshot(backend_t *b, lo_err_t *err)
{
    return read_enter(b, err);
}

void backend_snapshot_end(store_txn_t *txn)
{
    if (txn)
        read_leave(txn);
}

int64_t store_txn_rv(store_txn_t *txn)
{
    if (txn->writer)
        return txn->seq;
    int64_t rv = 0;
    stmt_int(txn->conn, ST_SEQ, 0, &rv, NULL);
    return rv;
}

int store_txn_get(store_txn_t *txn, const char *resource, const char *ns, const char *name, json_t **out,
                  int64_t *rv, lo_err_t *err)
{
    *out = NULL;
    return conn_get(txn, resource, ns ? ns : "", name, out, rv, err);
}

int store_txn_count(store_txn_t *txn, const char *resource, const char *ns, int64_t *count, lo_err_t *err)
{
    conn_t *c = txn->conn;
    sqlite3_stmt *st = c->st[ST_COUNT];
    sqlite3_bind_text(st, 1, resource, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, ns ? ns : "", -1, SQLITE_STATIC);
    int rc = stmt_int(c, ST_COUNT, 0, count, err);
    sqlite3_clear_bindings(st);
    const count_delta_t *d = txn->writer && rc == STORE_OK ? delta_find(txn->b, resource, ns ? ns : "") : NULL;
    if (d)
        *count += d->n;
    return rc;
}

/*
 * The object of the row st is on (name, body, rv), through the object
 * cache as conn_get reads one: the commit rules list the same objects again
 * and again (every model of a namespace, on each model write), and decoding
 * them is what such a list costs. New reference (shared: read-only), or
 * NULL when the body does not decode.
 */
static json_t *scan_object(store_txn_t *txn, sqlite3_stmt *st, const char *resource, const char *ns)
{
    const char *name = (const char *)sqlite3_column_text(st, 0);
    int bytes = sqlite3_column_bytes(st, 1);
    int64_t at = sqlite3_column_int64(st, 2);
    char key[3 * 256 + 8];
    size_t len = bytes <= OBJECT_CACHE_MAX_BYTES && name ? cache_key(key, sizeof(key), resource, ns, name) : 0;
    json_t *obj = len ? cache_get(txn->b, key, len, at) : NULL;
    if (obj != NULL)
        return obj;
    if (decode_body(sqlite3_column_blob(st, 1), bytes, &obj) != 0)
        return NULL;
    if (len && (!txn->writer || at <= txn->begin_seq))
        cache_put(txn->b, key, len, at, obj);
    return obj;
}

/* The digest of the row ST_TXN_DIGEST is on: the whole object when small, else what SQLite made of it. */
static json_t *scan_digest(store_txn_t *txn, sqlite3_stmt *st, const char *resource, const char *ns)
{
    if (sqlite3_column_type(st, 1) != SQLITE_NULL)
        return scan_object(txn, st, resource, ns);
    json_t *obj = NULL;
    if (decode_body(sqlite3_column_blob(st, 3), sqlite3_column_bytes(st, 3), &obj) != 0)
        return NULL;
    const char *keys[] = {"spec", "status"};
    for (size_t i = 0; i < 2; i++) /* absent in the object: absent in its digest */
        if (json_is_null(json_object_get(obj, keys[i])))
            json_object_del(obj, keys[i]);
    json_t *meta = json_object_get(obj, "metadata");
    if (json_is_null(json_object_get(meta, "generation")))
        json_object_del(meta, "generation");
    return obj;
}

/* Walks ST_TXN_LIST, ST_TXN_DIGEST or ST_TXN_NAMES of (resource, ns), appending to *out: objects or names. */
static int txn_scan(store_txn_t *txn, int id, const char *resource, const char *ns, store_filter_fn filter,
                    void *filter_ctx, json_t **out, lo_err_t *err)
{
    conn_t *c = txn->conn;
    sqlite3_stmt *st = c->st[id];
    int rc, ret = STORE_OK;
    *out = json_array();
    sqlite3_bind_text(st, 1, resource, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, ns ? ns : "", -1, SQLITE_STATIC);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (id == ST_TXN_NAMES) {
            json_array_append_new(*out, json_string((const char *)sqlite3_column_text(st, 0)));
            continue;
        }
        json_t *obj = id == ST_TXN_DIGEST ? scan_digest(txn, st, resource, ns ? ns : "")
                                          : scan_object(txn, st, resource, ns ? ns : "");
        if (obj == NULL) {
            ret = corrupt_error(err, resource, ns ? ns : "", (const char *)sqlite3_column_text(st, 0));
            break;
        }
        if (filter && !filter(obj, filter_ctx))
            json_decref(obj);
        else
            json_array_append_new(*out, obj);
    }
    if (ret == STORE_OK && rc != SQLITE_DONE)
        ret = db_error(err, c->db, "list");
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    if (ret != STORE_OK) {
        json_decref(*out);
        *out = NULL;
    }
    return ret;
}

int store_txn_list(store_txn_t *txn, const char *resource, const char *ns, store_filter_fn filter, void *filter_ctx,
                   json_t **items, lo_err_t *err)
{
    return txn_scan(txn, ST_TXN_LIST, resource, ns, filter, filter_ctx, items, err);
}

int store_txn_list_digests(store_txn_t *txn, const char *resource, const char *ns, json_t **items, lo_err_t *err)
{
    return txn_scan(txn, ST_TXN_DIGEST, resource, ns, NULL, NULL, items, err);
}

int store_txn_names(store_txn_t *txn, const char *resource, const char *ns, json_t **names, lo_err_t *err)
{
    return txn_scan(txn, ST_TXN_NAMES, resource, ns, NULL, NULL, names, err);
}

/* ---- the writer's batch ---- */

int backend_batch_begin(store_txn_t *txn, lo_err_t *err)
{
    assert(txn->writer);
    memo_clear(txn->b);
    deltas_clear(txn->b);
    if (stmt_run(txn->conn, ST_BEGIN, err) != STORE_OK)
        return STORE_IO;
    if (stmt_int(txn->conn, ST_SEQ, 0, &txn->seq, err) != STORE_OK) {
        conn_rollback(txn->conn);
        return STORE_IO;
    }
    txn->begin_seq = txn->seq;
    return STORE_OK;
}

/*
 * A COMMIT that fails after its frames reached the WAL (its sync failed, or
 * the wal-index could not grow) leaves a transaction in doubt: complete in
 * the WAL file, yet never in the wal-index, so this process does not see
 * it - but the recovery that follows a crash would replay it, and writes
 * answered with an error would come back. The next transaction that writes
 * frames starts at the same offset, and overwriting the first of them
 * breaks the checksum chain that recovery follows, so void_in_doubt()
 * writes one at once, before the batch is answered: page 1 as it is
 * (user_version set to its own value), harmless if it is what a recovery
 * replays. A COMMIT that failed writing (SQLITE_FULL, SQLITE_IOERR_WRITE)
 * never wrote its commit frame, the last one, and leaves nothing behind.
 */
#define VOID_ATTEMPTS 3
#define VOID_PAUSE_MS 5

static int commit_in_doubt(int code)
{
    return code != SQLITE_FULL && code != SQLITE_IOERR_WRITE && code != SQLITE_NOMEM && (code & 0xff) != SQLITE_BUSY;
}

/* 1 when a transaction of the writer wrote its frames over the doubtful ones. */
static int void_in_doubt(conn_t *c)
{
    for (int i = 0; i < VOID_ATTEMPTS; i++) {
        if (i > 0)
            nanosleep(&(struct timespec){0, VOID_PAUSE_MS * 1000000L}, NULL);
        sqlite3_stmt *st = NULL;
        int64_t version = -1;
        if (sqlite3_prepare_v2(c->db, "PRAGMA user_version", -1, &st, NULL) == SQLITE_OK &&
            sqlite3_step(st) == SQLITE_ROW)
            version = sqlite3_column_int64(st, 0);
        sqlite3_finalize(st);
        if (version < 0)
            continue;
        char sql[64];
        snprintf(sql, sizeof(sql), "PRAGMA user_version = %" PRId64, version);
        int rc = sqlite3_exec(c->db, sql, NULL, NULL, NULL);
        if (rc == SQLITE_OK || commit_in_doubt(sqlite3_extended_errcode(c->db)))
            return 1;
    }
    return 0;
}

int backend_batch_commit(store_txn_t *txn, lo_err_t *err)
{
    memo_clear(txn->b);
    if (deltas_write(txn->b, txn->conn, err) != STORE_OK) {
        conn_rollback(txn->conn);
        return STORE_IO;
    }
    if (stmt_run(txn->conn, ST_COMMIT, err) != STORE_OK) {
        int code = sqlite3_extended_errcode(txn->conn->db);
        conn_rollback(txn->conn);
        if (commit_in_doubt(code) && !void_in_doubt(txn->conn)) {
            lo_log(LO_INFO, "store: a failed commit may still be whole in the WAL: a crash before the next commit "
                            "would keep it");
            if (err) {
                char cause[sizeof(err->message)];
                snprintf(cause, sizeof(cause), "%s", err->message);
                lo_err_set(err, 0, "", "%s (the write may have been stored all the same)", cause);
            }
        }
        return STORE_IO;
    }
    return STORE_OK;
}

void backend_batch_rollback(store_txn_t *txn)
{
    memo_clear(txn->b);
    deltas_clear(txn->b);
    conn_rollback(txn->conn);
}

int backend_key_rv(store_txn_t *txn, const char *resource, const char *ns, const char *name, int64_t *rv,
                   lo_err_t *err)
{
    conn_t *c = txn->conn;
    sqlite3_stmt *st = c->st[ST_KEY_RV];
    bind_key(st, 1, resource, ns ? ns : "", name);
    int64_t v = -1;
    int rc = stmt_int(c, ST_KEY_RV, -1, &v, err);
    sqlite3_clear_bindings(st);
    if (rc != STORE_OK)
        return rc;
    if (v < 0)
        return STORE_NOT_FOUND;
    *rv = v;
    return STORE_OK;
}

int64_t backend_next_rv(store_txn_t *txn)
{
    return txn->seq + 1;
}

int backend_write_change(store_txn_t *txn, store_event_type_t type, const char *resource, const char *ns,
                         const char *name, const char *body, int64_t prev_rv, int64_t *rv, lo_err_t *err)
{
    conn_t *c = txn->conn;
    int64_t id = txn->seq + 1;
    ns = ns ? ns : "";
    if (type != STORE_EVENT_ADDED && type != STORE_EVENT_MODIFIED && type != STORE_EVENT_DELETED) {
        lo_err_set(err, 0, "", "%s %s/%s: an event of no known type (%d)", resource, ns, name, (int)type);
        return STORE_IO;
    }
    memo_forget(txn->b, resource, ns, name);

    sqlite3_stmt *ev = c->st[ST_EVENT_INSERT];
    sqlite3_bind_int64(ev, 1, id);
    bind_key(ev, 2, resource, ns, name);
    sqlite3_bind_text(ev, 5, store_event_type_name(type), -1, SQLITE_STATIC);
    if (sqlite3_bind_text(ev, 6, body, -1, SQLITE_STATIC) == SQLITE_TOOBIG) {
        sqlite3_clear_bindings(ev);
        lo_err_set(err, 0, "", "%s %s/%s is too large for the store (%zu bytes)", resource, ns, name, strlen(body));
        return STORE_IO;
    }
    sqlite3_bind_int64(ev, 7, prev_rv);
    sqlite3_bind_int64(ev, 8, (int64_t)time(NULL));
    int rc = stmt_run(c, ST_EVENT_INSERT, err);
    sqlite3_clear_bindings(ev);
    if (rc != STORE_OK)
        return rc;

    if (type == STORE_EVENT_DELETED) {
        sqlite3_stmt *del = c->st[ST_DELETE];
        bind_key(del, 1, resource, ns, name);
        rc = stmt_run(c, ST_DELETE, err);
        sqlite3_clear_bindings(del);
    } else {
        sqlite3_stmt *up = c->st[ST_UPSERT];
        bind_key(up, 1, resource, ns, name);
        sqlite3_bind_int64(up, 4, id);
        sqlite3_bind_text(up, 5, body, -1, SQLITE_STATIC);
        rc = stmt_run(c, ST_UPSERT, err);
        sqlite3_clear_bindings(up);
    }
    if (rc != STORE_OK)
        return rc;
    if (type != STORE_EVENT_MODIFIED)
        delta_add(txn->b, resource, ns, type == STORE_EVENT_ADDED ? 1 : -1);
    txn->seq = id;
    *rv = id;
    return STORE_OK;
}

/* ---- lists ---- */

/*
 * A list at an older rv R is the current objects with the keys that changed
 * after R put back as they were at R. For each key changed after R, its
 * first event after R names (prev_rv) the event that holds its state at R;
 * prev_rv 0 (an ADDED after R) means the key did not exist at R. These
 * overrides come from the events after R, in key order (the log's
 * (resource, id) index finds them; their number is what changed since R,
 * not the size of the list), and are merged with the objects cursor.
 */
typedef struct override {
    char *ns, *name;
    int64_t state_id;    /* the event holding the state at R, or 0: absent at R */
} override_t;

typedef struct list_cursor {
    conn_t *c;
    sqlite3_stmt *st;        /* the objects of the list, in key order */
    int obj_pending;         /* st holds a row not yet returned */
    int obj_done;
    override_t *ov;          /* keys changed after R, in key order */
    size_t ov_n, ov_next;
} list_cursor_t;

/* One row of a list scan; pointers valid until the next list_next(). */
typedef struct list_row {
    const char *ns, *name;
    const void *body;
    int len;
} list_row_t;

static int key_cmp(const char *ns1, const char *n1, const char *ns2, const char *n2)
{
    int c = strcmp(ns1, ns2);
    return c != 0 ? c : strcmp(n1, n2);
}

static void cursor_free(list_cursor_t *lc)
{
    for (size_t i = 0; i < lc->ov_n; i++) {
        free(lc->ov[i].ns);
        free(lc->ov[i].name);
    }
    free(lc->ov);
    lc->ov = NULL;
    lc->ov_n = 0;
}

/* Reads the overrides of o's list at o->at_rv: the keys of resource (and ns) changed since, after the continue key. */
static int overrides_load(list_cursor_t *lc, const store_list_opts_t *o, lo_err_t *err)
{
    conn_t *c = lc->c;
    sqlite3_stmt *st = c->st[o->ns ? ST_CHANGED_NS : ST_CHANGED];
    size_t cap = 0;
    int rc;
    const char *after_ns = o->after_ns ? o->after_ns : "", *after_name = o->after_name ? o->after_name : "";
    int has_after = o->after_ns || o->after_name;
    sqlite3_bind_text(st, 1, o->resource, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, o->at_rv);
    if (o->ns)
        sqlite3_bind_text(st, 3, o->ns, -1, SQLITE_STATIC);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *ns = (const char *)sqlite3_column_text(st, 0), *name = (const char *)sqlite3_column_text(st, 1);
        if (has_after && key_cmp(ns, name, after_ns, after_name) <= 0)
            continue;
        if (lc->ov_n == cap) {
            cap = cap ? 2 * cap : 32;
            lc->ov = lo_realloc(lc->ov, cap * sizeof(*lc->ov));
        }
        lc->ov[lc->ov_n++] = (override_t){lo_strdup(ns), lo_strdup(name), sqlite3_column_int64(st, 2)};
    }
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return rc == SQLITE_DONE ? STORE_OK : db_error(err, c->db, "list changes");
}

/* The state at R of override ov into *row; 0 when the key did not exist then. */
static int override_row(list_cursor_t *lc, const override_t *ov, list_row_t *row, lo_err_t *err)
{
    if (ov->state_id == 0)
        return 0;
    sqlite3_stmt *ev = lc->c->st[ST_EVENT_BY_ID];
    sqlite3_reset(ev);
    sqlite3_bind_int64(ev, 1, ov->state_id);
    if (sqlite3_step(ev) != SQLITE_ROW)
        return db_error(err, lc->c->db, "list history");
    row->ns = ov->ns;
    row->name = ov->name;
    row->body = sqlite3_column_blob(ev, 1);
    row->len = sqlite3_column_bytes(ev, 1);
    return 1;
}

/*
 * Next live object of a list scan: the objects cursor merged with the
 * overrides (none for a list of the newest state). Returns 1 with *row
 * filled, 0 at the end, STORE_IO on failure.
 */
static int list_next(list_cursor_t *lc, list_row_t *row, lo_err_t *err)
{
    sqlite3_stmt *st = lc->st;
    for (;;) {
        if (!lc->obj_pending && !lc->obj_done) {
            int rc = sqlite3_step(st);
            if (rc == SQLITE_DONE)
                lc->obj_done = 1;
            else if (rc != SQLITE_ROW)
                return db_error(err, lc->c->db, "list");
            else
                lc->obj_pending = 1;
        }
        const override_t *ov = lc->ov_next < lc->ov_n ? &lc->ov[lc->ov_next] : NULL;
        if (!lc->obj_pending && ov == NULL)
            return 0;
        const char *ns = lc->obj_pending ? (const char *)sqlite3_column_text(st, 0) : NULL;
        const char *name = lc->obj_pending ? (const char *)sqlite3_column_text(st, 1) : NULL;
        int cmp = ov == NULL ? -1 : !lc->obj_pending ? 1 : key_cmp(ns, name, ov->ns, ov->name);
        if (cmp < 0) { /* unchanged since R: as it is now */
            lc->obj_pending = 0;
            *row = (list_row_t){ns, name, sqlite3_column_blob(st, 2), sqlite3_column_bytes(st, 2)};
            return 1;
        }
        if (cmp == 0)
            lc->obj_pending = 0; /* changed since R: the override says what it was */
        lc->ov_next++;
        int rc = override_row(lc, ov, row, err);
        if (rc != 0)
            return rc;
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

/* Checks at_rv against the snapshot; sets up lc (no statement when nothing can follow the continue key). */
static int list_start(list_cursor_t *lc, const store_list_opts_t *o, int64_t cur, lo_err_t *err)
{
    conn_t *c = lc->c;
    int64_t compacted;
    int variant = 0, history = 0;

    if (stmt_int(c, ST_COMPACTED, 0, &compacted, err) != STORE_OK)
        return STORE_IO;
    if (o->at_rv < 0 || (o->at_rv > 0 && o->at_rv <= compacted)) {
        lo_err_set(err, 0, "", "too old resource version: %" PRId64 " (%" PRId64 ")", o->at_rv, compacted);
        return STORE_EXPIRED;
    }
    if (o->at_rv > cur) {
        lo_err_set(err, 0, "", "Too large resource version: %" PRId64 ", current: %" PRId64, o->at_rv, cur);
        return STORE_FUTURE_RV;
    }
    if (o->at_rv != 0 && o->at_rv != cur && changed_since(c, o->resource, o->at_rv, &history, err) != STORE_OK)
        return STORE_IO;
    if (o->ns)
        variant |= LIST_NS;
    if (o->after_ns || o->after_name) {
        const char *after_ns = o->after_ns ? o->after_ns : "";
        int cmp = o->ns ? strcmp(after_ns, o->ns) : 0;
        if (cmp > 0)
            return STORE_OK; /* the namespace lies wholly before the continue key */
        if (cmp == 0) /* cmp < 0: the whole namespace follows the key */
            variant |= LIST_AFTER;
    }
    if (history && overrides_load(lc, o, err) != STORE_OK)
        return STORE_IO;

    sqlite3_stmt *st = c->st[ST_LIST + variant];
    sqlite3_bind_text(st, 1, o->resource, -1, SQLITE_STATIC);
    if (o->ns)
        sqlite3_bind_text(st, 2, o->ns, -1, SQLITE_STATIC);
    if ((variant & LIST_AFTER) && !(variant & LIST_NS))
        sqlite3_bind_text(st, 3, o->after_ns ? o->after_ns : "", -1, SQLITE_STATIC);
    if (variant & LIST_AFTER)
        sqlite3_bind_text(st, 4, o->after_name ? o->after_name : "", -1, SQLITE_STATIC);
    lc->st = st;
    return STORE_OK;
}

/* The page is full: by count, or by the bytes read (at least one item). */
static int page_full(const store_list_opts_t *o, size_t n, size_t bytes)
{
    return (o->limit > 0 && n >= o->limit) || (o->max_bytes > 0 && n > 0 && bytes >= o->max_bytes);
}

/*
 * Fills out->items up to the page bound, then (unless skip_remaining) keeps
 * scanning to count the further matches; only the page is kept in memory.
 */
static int list_scan(list_cursor_t *lc, const store_list_opts_t *o, store_list_result_t *out, lo_err_t *err)
{
    list_row_t row;
    size_t n = 0, bytes = 0;
    int64_t extra = 0;
    int full = 0, rc;

    while ((rc = list_next(lc, &row, err)) == 1) {
        json_t *obj = NULL;
        if (full && o->filter == NULL) {
            extra++;
        } else if (decode_body(row.body, row.len, &obj) != 0) {
            return corrupt_error(err, o->resource, row.ns, row.name);
        } else if (o->filter && !o->filter(obj, o->filter_ctx)) {
            json_decref(obj);
            continue;
        } else if (full) {
            extra++;
            json_decref(obj);
        } else {
            json_array_append_new(out->items, obj);
            n++;
            bytes += (size_t)row.len;
            if ((full = page_full(o, n, bytes))) {
                out->last_ns = lo_strdup(row.ns);
                out->last_name = lo_strdup(row.name);
            }
        }
        if (full && extra > 0 && o->skip_remaining)
            break;
    }
    if (rc < 0)
        return rc;
    if (extra > 0) {
        out->more = 1;
    } else {
        free(out->last_ns);
        free(out->last_name);
        out->last_ns = out->last_name = NULL;
    }
    out->remaining = o->skip_remaining ? -1 : extra;
    return STORE_OK;
}

int backend_list(backend_t *b, const store_list_opts_t *opts, store_list_result_t *out, lo_err_t *err)
{
    int64_t cur = 0;
    int ret = STORE_IO;

    assert(b && opts && opts->resource && out);
    memset(out, 0, sizeof(*out));
    out->remaining = -1;
    /* One read transaction: the rv, the horizon and the rows come from one snapshot. */
    store_txn_t *txn = read_enter(b, err);
    if (txn == NULL)
        return STORE_IO;
    conn_t *c = txn->conn;
    list_cursor_t lc = {.c = c};
    out->items = json_array();
    if (stmt_int(c, ST_SEQ, 0, &cur, err) != STORE_OK)
        goto Exit;
    ret = list_start(&lc, opts, cur, err);
    if (ret == STORE_OK && lc.st != NULL)
        ret = list_scan(&lc, opts, out, err);
    else if (ret == STORE_OK)
        out->remaining = 0;
Exit:
    if (lc.st) {
        sqlite3_reset(lc.st);
        sqlite3_clear_bindings(lc.st);
    }
    cursor_free(&lc);
    sqlite3_reset(c->st[ST_EVENT_BY_ID]);
    read_leave(txn);
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

/* ---- the event log ---- */

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

/* Walks the rows of st (bound ST_EVENTS_AFTER*), calling fn; *last is the rv of the last event read. */
static int events_scan(conn_t *c, sqlite3_stmt *st, const store_events_opts_t *o, store_event_fn fn, void *ctx,
                       int64_t *last, int *stopped, lo_err_t *err)
{
    size_t n = 0;
    int rc;
    *stopped = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        store_event_t ev = {.rv = sqlite3_column_int64(st, 0), .resource = o->resource,
                            .ns = (const char *)sqlite3_column_text(st, 1),
                            .name = (const char *)sqlite3_column_text(st, 2),
                            .type = parse_event_type((const char *)sqlite3_column_text(st, 3))};
        json_t *obj = NULL, *prev = NULL;
        if (decode_body(sqlite3_column_blob(st, 4), sqlite3_column_bytes(st, 4), &obj) != 0)
            return corrupt_error(err, o->resource, ev.ns, ev.name);
        if (o->with_prev && ev.type == STORE_EVENT_MODIFIED && sqlite3_column_int64(st, 5) > 0)
            prev = load_prev(c, sqlite3_column_int64(st, 5));
        ev.object = obj;
        ev.prev = prev;
        int stop = fn(ctx, &ev);
        json_decref(obj);
        json_decref(prev);
        *last = ev.rv;
        if (stop || (o->limit > 0 && ++n >= o->limit)) {
            *stopped = 1;
            return STORE_OK;
        }
    }
    if (rc != SQLITE_DONE)
        return db_error(err, c->db, "events");
    return STORE_OK;
}

int backend_events(backend_t *b, const store_events_opts_t *o, store_event_fn fn, void *ctx, int64_t *up_to,
                   int64_t *last, lo_err_t *err)
{
    int64_t cur = 0, compacted = 0, seen = 0;
    int ret = STORE_IO, stopped = 0;
    store_txn_t *txn = read_enter(b, err);
    if (txn == NULL)
        return STORE_IO;
    conn_t *c = txn->conn;
    sqlite3_stmt *st = c->st[o->ns ? ST_EVENTS_AFTER_NS : ST_EVENTS_AFTER];
    /* one read transaction: the horizon, the newest rv and the rows come from one snapshot */
    if (stmt_int(c, ST_SEQ, 0, &cur, err) != STORE_OK || stmt_int(c, ST_COMPACTED, 0, &compacted, err) != STORE_OK)
        goto Exit;
    if (o->after_rv < compacted) {
        lo_err_set(err, 0, "", "too old resource version: %" PRId64 " (%" PRId64 ")", o->after_rv, compacted);
        ret = STORE_EXPIRED;
        goto Exit;
    }
    if (o->after_rv > cur) {
        lo_err_set(err, 0, "", "Too large resource version: %" PRId64 ", current: %" PRId64, o->after_rv, cur);
        ret = STORE_FUTURE_RV;
        goto Exit;
    }
    sqlite3_bind_text(st, 1, o->resource, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, o->after_rv);
    sqlite3_bind_int64(st, 3, cur);
    if (o->ns)
        sqlite3_bind_text(st, 4, o->ns, -1, SQLITE_STATIC);
    ret = events_scan(c, st, o, fn, ctx, &seen, &stopped, err);
    if (ret == STORE_OK) {
        if (up_to)
            *up_to = cur;
        if (last)
            *last = stopped ? seen : cur;
    }
Exit:
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    read_leave(txn);
    return ret;
}

/* ---- compaction ---- */

int backend_compaction_plan(backend_t *b, int64_t keep_revisions, int64_t keep_seconds, int64_t *target,
                            int64_t *horizon, int64_t *through, lo_err_t *err)
{
    int64_t seq = 0, by_time = 0;
    int ret = STORE_IO;
    store_txn_t *txn = read_enter(b, err);
    if (txn == NULL)
        return STORE_IO;
    conn_t *c = txn->conn;
    sqlite3_stmt *st = c->st[ST_BY_TIME];
    sqlite3_bind_int64(st, 1, (int64_t)time(NULL) - keep_seconds);
    if (stmt_int(c, ST_SEQ, 0, &seq, err) == STORE_OK && stmt_int(c, ST_BY_TIME, 0, &by_time, err) == STORE_OK &&
        stmt_int(c, ST_COMPACTED, 0, horizon, err) == STORE_OK &&
        stmt_int(c, ST_GET_THROUGH, 0, through, err) == STORE_OK) {
        *target = seq - keep_revisions;
        if (by_time < *target)
            *target = by_time;
        if (*through > *horizon)
            *through = *horizon;
        ret = STORE_OK;
    }
    sqlite3_clear_bindings(st);
    read_leave(txn);
    return ret;
}

/* Runs fn's statements in one transaction of the writer connection. */
static int in_own_txn(store_txn_t *txn, int (*fn)(store_txn_t *, void *, lo_err_t *), void *arg, lo_err_t *err)
{
    if (stmt_run(txn->conn, ST_BEGIN, err) != STORE_OK)
        return STORE_IO;
    if (fn(txn, arg, err) != STORE_OK || stmt_run(txn->conn, ST_COMMIT, err) != STORE_OK) {
        conn_rollback(txn->conn);
        return STORE_IO;
    }
    return STORE_OK;
}

static int raise_fn(store_txn_t *txn, void *arg, lo_err_t *err)
{
    return stmt_run2(txn->conn, ST_RAISE, *(int64_t *)arg, 0, err);
}

int backend_compaction_raise(store_txn_t *txn, int64_t target, lo_err_t *err)
{
    return in_own_txn(txn, raise_fn, &target, err);
}

typedef struct step_args {
    int64_t lo, hi;
} step_args_t;

static int step_fn(store_txn_t *txn, void *arg, lo_err_t *err)
{
    step_args_t *a = arg;
    conn_t *c = txn->conn;
    if (stmt_run2(c, ST_DROP_SUPERSEDED, a->lo, a->hi, err) != STORE_OK ||
        stmt_run2(c, ST_DROP_TOMBSTONES, a->lo, a->hi, err) != STORE_OK)
        return STORE_IO;
    return stmt_run2(c, ST_THROUGH, a->hi, 0, err);
}

int backend_compaction_step(store_txn_t *txn, int64_t horizon, int64_t window, int64_t *through, lo_err_t *err)
{
    step_args_t a = {.lo = *through, .hi = *through + window < horizon ? *through + window : horizon};
    if (a.hi <= a.lo)
        return STORE_OK;
    int rc = in_own_txn(txn, step_fn, &a, err);
    if (rc == STORE_OK)
        *through = a.hi;
    return rc;
}

/*
 * PASSIVE copies what no reader still needs, and never waits for readers or
 * blocks the writer. But the WAL only starts over when a writer begins
 * with everything copied, which under a steady stream of batches never
 * happens: the file would grow for as long as the writes go on. So once
 * the WAL is past WAL_RESTART_FRAMES and a passive pass has left at most
 * WAL_RESTART_GAP frames, a RESTART copies those few and makes the next
 * batch start the WAL over (the writer waits for that short copy only);
 * it gives up after RESTART_BUSY_MS rather than wait on a reader.
 */
#define WAL_RESTART_FRAMES 16384  /* 64 MiB of 4 KiB pages */
#define WAL_RESTART_GAP 512
#define RESTART_BUSY_MS 10

int backend_checkpoint(backend_t *b)
{
    int log = 0, copied = 0;
    pthread_mutex_lock(&b->ckpt_mu);
    sqlite3 *db = b->ckpt.db;
    int rc = sqlite3_wal_checkpoint_v2(db, NULL, SQLITE_CHECKPOINT_PASSIVE, &log, &copied);
    if (rc == SQLITE_OK && log > WAL_RESTART_FRAMES && log - copied <= WAL_RESTART_GAP) {
        set_busy_budget(db, RESTART_BUSY_MS);
        rc = sqlite3_wal_checkpoint_v2(db, NULL, SQLITE_CHECKPOINT_RESTART, &log, &copied);
        set_busy_budget(db, STORE_BUSY_TIMEOUT_MS);
    }
    if (rc != SQLITE_OK && rc != SQLITE_BUSY)
        lo_log(LO_INFO, "store: checkpoint: %s", sqlite3_errmsg(db));
    pthread_mutex_unlock(&b->ckpt_mu);
    return rc == SQLITE_OK && copied == log;
}

int backend_wal_frames(backend_t *b)
{
    return __atomic_load_n(&b->wal_frames, __ATOMIC_RELAXED);
}
