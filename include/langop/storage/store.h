/*
 * store.h - the object store: Kubernetes objects with a global, monotonic
 * resourceVersion, one writer with group commit, and a change feed.
 * Backend-neutral: nothing here names SQLite, so another backend (etcd)
 * can sit behind the same contract.
 *
 * Promises:
 *  - Every committed change gets its own resourceVersion (rv), a 64-bit
 *    counter that only grows, across restarts, without gaps. An object's
 *    metadata.resourceVersion is the decimal string of the rv of the last
 *    change to it; the store writes it, callers never do.
 *  - Writes are submitted to one writer (store_submit). The writer commits
 *    whatever is queued in one transaction (group commit); each write is
 *    isolated, so one that fails fails alone (a write is refused before it
 *    touches the database; if the database fails under one, the batch is
 *    run again without it; after four such failures in one batch, or when
 *    the commit itself fails, the rest of the batch fails with it). A write is answered (its done
 *    callback runs) only once its transaction is durable at the configured
 *    level (store_options_t.sync_full).
 *  - A write is a compare-and-swap on the key: expect_rv says which state
 *    the caller prepared it against (STORE_RV_ABSENT, or the rv it read);
 *    if the key moved on, the write answers STORE_CONFLICT and the caller
 *    reads again and retries (kube-apiserver's GuaranteedUpdate). The heavy
 *    work (decoding, validation, patching) therefore runs on the caller's
 *    thread; the writer runs only what must be atomic: the compare, the
 *    write's check callback (cross-object rules) and after rule, the commit
 *    rules and the SQL.
 *  - A no-op (a PUT equal to the current object once the commit rules ran)
 *    commits nothing, keeps the rv and emits no event.
 *  - Commit rules (store_set_rules) run in the writer: prepare completes
 *    each object before it is stored (derived status), settle adds, in the
 *    same commit, the follow-up changes the batch's changes call for (the
 *    derived status of dependent objects). So what a read returns at an rv
 *    is always the same bytes.
 *  - A write may carry its own rule (store_op_t.after): the changes it
 *    makes right after the write belong to the write, atomically (the
 *    objects a delete takes with it). Settle sees them as the batch's own.
 *  - After every commit, the batch's changes are published, in rv order,
 *    to the feed's subscribers (feed.h); nothing of the feed runs under the
 *    writer's transaction.
 *  - The event log holds one entry per change (ADDED, MODIFIED, DELETED)
 *    keyed by rv, retained back to the compaction horizon; lists can be
 *    read at any retained rv (consistent pagination).
 *  - Reads never wait for the writer; every function may be called from
 *    any thread, except the store_txn_put family (writer only, inside
 *    rules).
 *
 * Keys: (resource, namespace, name); namespace is "" for cluster-scoped
 * resources. Lists are ordered by (namespace, name), byte-wise.
 *
 * Return codes are store codes (enum store_rc); err carries a message for
 * the log or for the caller to word its own answer. The API maps codes to
 * Kubernetes Status (404, 409, 410, 429 ...), the store does not.
 *
 * Ownership: json_t results are new references (caller decrefs); json_t
 * parameters are borrowed unless marked stolen.
 */
#ifndef LANGOP_STORE_H
#define LANGOP_STORE_H

#include <stddef.h>
#include <stdint.h>
#include <jansson.h>
#include "langop/core/common.h"
#include "langop/storage/records.h"

typedef struct feed feed_t;

#define STORE_WRITE_QUEUE_MAX 4096  /* default bound on queued writes */
#define STORE_BATCH_MAX 512         /* writes committed in one transaction at most */

typedef struct store_options {
    const char *path;      /* database file; ":memory:" is not supported (readers need a file) */
    int sync_full;         /* 1: sync every commit (survives power loss); 0: survives process crash */
    size_t queue_max;      /* writes queued at most (0: STORE_WRITE_QUEUE_MAX); beyond, STORE_BUSY */
    size_t max_object_bytes; /* an object stored bigger than this fails its write with STORE_IO (0: no bound
                                but the engine's); the API refuses such bodies before they get here */
} store_options_t;

/** Opens (creating if needed) the store and starts its writer. Returns NULL and fills err on failure. */
store_t *store_open(const store_options_t *opts, lo_err_t *err);
/** Stops the writer (after the queued writes) and closes the store. No other call may be in progress. */
void store_close(store_t *store);

/** The feed of committed changes (feed.h): borrowed, lives as long as the store. */
feed_t *store_feed(store_t *store);

/** The rv of the newest committed change (0 for an empty store). */
int store_current_rv(store_t *store, int64_t *rv, lo_err_t *err);
/** The compaction horizon: rvs <= this are no longer in the event log. */
int store_compacted_rv(store_t *store, int64_t *rv, lo_err_t *err);

/**
 * Reads one object. *out is a new reference to a shared, read-only tree
 * (the store may hand the same one to other readers: copy before changing
 * it); *rv (may be NULL) its rv. Returns STORE_OK, STORE_NOT_FOUND or
 * STORE_IO.
 */
int store_get(store_t *store, const char *resource, const char *ns, const char *name, json_t **out, int64_t *rv,
              lo_err_t *err);

/* ---- writes ---- */

typedef enum store_write_kind {
    STORE_WRITE_NOOP = 0,    /* nothing changed */
    STORE_WRITE_PUT = 1,     /* create or replace */
    STORE_WRITE_DELETE = 2,  /* remove */
} store_write_kind_t;

#define STORE_RV_ANY ((int64_t)-1)  /* expect_rv: write whatever the key holds (tests, maintenance) */
#define STORE_RV_ABSENT ((int64_t)0) /* expect_rv: the key must not exist (a create) */

typedef struct store_op store_op_t;

/**
 * Runs in the writer, inside the write's isolation, after the compare:
 * rules that read other objects and must be atomic with the write (a
 * capacity count). obj is the object about to be stored (PUT) or the last
 * state (DELETE); borrowed, read-only. Return 0, or -1 with err filled to
 * refuse the write (STORE_ABORTED).
 */
typedef int (*store_check_fn)(store_txn_t *txn, const json_t *obj, void *ctx, lo_err_t *err);

/**
 * Runs in the writer right after op went through (its out fields set:
 * done_kind PUT, DELETE or NOOP, result, rv), also after a no-op and in a
 * dry run, never after a refusal. What it writes with store_txn_put and
 * store_txn_delete belongs to op: the next rvs, in the same commit, gone
 * with op if the database fails under either. It cannot refuse op (that is
 * check's job, before anything is written): -1 with err means the store
 * failed under it, and op fails with STORE_IO (the batch runs again
 * without it). In a dry run nothing of op was written, and after must only
 * read (a write through txn fails). It may run more than once for one op
 * (a batch that runs again): each run starts from the state before op.
 */
typedef int (*store_after_fn)(store_txn_t *txn, const store_op_t *op, void *ctx, lo_err_t *err);

/** One write: filled by the caller (in), answered by the writer (out). */
struct store_op {
    /* in: borrowed, and must stay valid until the op is answered */
    const char *resource;
    const char *ns;              /* "" or NULL for cluster-scoped */
    const char *name;
    store_write_kind_t kind;     /* PUT or DELETE */
    json_t *object;              /* PUT: the next state (required); DELETE: the last state to report, or NULL */
    const json_t *current;       /* the state the caller read at expect_rv (NULL: the writer reads it if needed) */
    int64_t expect_rv;           /* STORE_RV_ABSENT, STORE_RV_ANY, or the rv the caller read */
    store_check_fn check;        /* optional */
    void *check_ctx;
    store_after_fn after;        /* optional */
    void *after_ctx;
    int dry_run;                 /* run everything, commit nothing, emit nothing */
    /* out */
    int rc;                      /* STORE_OK, STORE_NOT_FOUND (DELETE of nothing), STORE_CONFLICT, STORE_EXISTS,
                                    STORE_ABORTED, STORE_IO */
    lo_err_t err;                /* filled when rc != STORE_OK (caller clears) */
    store_write_kind_t done_kind;  /* what happened: PUT, DELETE or NOOP */
    json_t *result;              /* new ref: stored object (PUT), last state (DELETE), current (NOOP) */
    char *result_json;           /* malloc'd: result as stored (compact JSON), when a change was stored; else NULL */
    size_t result_json_len;
    int64_t rv;                  /* rv of the change; NOOP: the object's rv; dry run: 0 */
};

/** Releases what the writer put into op (result, err). */
void store_op_clear(store_op_t *op);

/** Called on the writer thread once every op of a submission is answered. Must not block. */
typedef void (*store_done_fn)(void *ctx);

/**
 * Queues ops[0..n-1] for the writer; done(ctx) runs once all are answered
 * (they may span transactions when n > STORE_BATCH_MAX). ops must stay
 * valid until then. Returns STORE_OK, or STORE_BUSY (queue full; nothing
 * queued, done is not called).
 */
int store_submit(store_t *store, store_op_t *ops, size_t n, store_done_fn done, void *ctx);

/** store_submit() that waits: returns ops[0].rc for n == 1, else STORE_OK once all are answered (or STORE_BUSY). */
int store_write(store_t *store, store_op_t *ops, size_t n);

/* ---- transactions: the snapshot of a read, or the writer's, inside commit rules ---- */

/** A read snapshot: every read through it sees one committed state. End it on the same thread. */
store_txn_t *store_snapshot(store_t *store, lo_err_t *err);
void store_snapshot_end(store_txn_t *txn);

/** The newest rv the transaction sees (the writer's: including the changes made so far). */
int64_t store_txn_rv(store_txn_t *txn);
/** Reads one object (new ref, shared and read-only as store_get's) and its rv (may be NULL). */
int store_txn_get(store_txn_t *txn, const char *resource, const char *ns, const char *name, json_t **out,
                  int64_t *rv, lo_err_t *err);
/** Returns 1 to keep obj (borrowed) in a list, 0 to skip it. */
/**
 * Every object of resource in ns ("" = cluster-scoped) that filter keeps
 * (NULL: all), by name. *items is a new array; its objects are shared and
 * read-only, as store_get's (they come through the object cache).
 */
int store_txn_list(store_txn_t *txn, const char *resource, const char *ns, store_filter_fn filter, void *filter_ctx,
                   json_t **items, lo_err_t *err);
/**
 * The objects of resource in ns, by name, as what the commit rules read of
 * their neighbours: an object may come whole, or as its digest, which
 * holds only metadata.name, metadata.namespace, metadata.generation, spec
 * and status (a big object's annotations and managed fields are not read,
 * let alone decoded). Shared and read-only, as store_txn_list's; to write
 * one, read it whole with store_txn_get.
 */
int store_txn_list_digests(store_txn_t *txn, const char *resource, const char *ns, json_t **items, lo_err_t *err);

/** The names of the objects of resource in ns, in order: a new array of strings. */
int store_txn_names(store_txn_t *txn, const char *resource, const char *ns, json_t **names, lo_err_t *err);
/** Counts the objects of resource in ns ("" = cluster-scoped). */
int store_txn_count(store_txn_t *txn, const char *resource, const char *ns, int64_t *count, lo_err_t *err);

/**
 * Inside settle or a write's after rule only (the writer's txn): stores obj
 * (borrowed; its resourceVersion is set) as the new state of the key, a
 * MODIFIED change with its own rv, unless it equals the stored object. The
 * key must exist; the commit rules' prepare does not run. Returns STORE_OK
 * (also for "equal: nothing written"), STORE_NOT_FOUND or STORE_IO
 * (anywhere else: a snapshot, a dry run's after).
 */
int store_txn_put(store_txn_t *txn, const char *resource, const char *ns, const char *name, json_t *obj,
                  lo_err_t *err);
/**
 * Where store_txn_put may be called: deletes the key, a DELETED change with
 * its own rv that carries the last stored state. Returns STORE_OK,
 * STORE_NOT_FOUND or STORE_IO.
 */
int store_txn_delete(store_txn_t *txn, const char *resource, const char *ns, const char *name, lo_err_t *err);

/* ---- commit rules ---- */

/** One change of a batch, as settle sees it. Pointers borrowed for the call. */
typedef struct store_change {
    int64_t rv;
    store_event_type_t type;
    const char *resource;
    const char *ns;
    const char *name;
    const json_t *object;   /* state at rv (DELETED: the last state) */
    const json_t *prev;     /* MODIFIED and DELETED: the state before; ADDED: NULL */
} store_change_t;

typedef struct store_rules {
    /**
     * Completes obj (PUT; modifiable) before it is compared and stored: it
     * sees the transaction as the batch left it so far; current is the
     * stored state of the key (NULL when absent), so what carries over from
     * one state to the next (a condition's lastTransitionTime) can. 0, or -1
     * with err (the write fails with STORE_IO).
     */
    int (*prepare)(void *ctx, store_txn_t *txn, const char *resource, const json_t *current, json_t *obj,
                   lo_err_t *err);
    /**
     * After the batch's writes, before its commit: changes[0..n-1] are its
     * changes so far (the primary ones); settle adds follow-ups with
     * store_txn_put. 0, or -1 with err: the whole batch fails (STORE_IO).
     */
    int (*settle)(void *ctx, store_txn_t *txn, const store_change_t *changes, size_t n, lo_err_t *err);
    void *ctx;
} store_rules_t;

/** Installs the commit rules (copied); call before the first write. */
void store_set_rules(store_t *store, const store_rules_t *rules);

/* ---- lists ---- */

/**
 * Lists objects in (namespace, name) order. Returns STORE_OK, STORE_EXPIRED
 * (at_rv was compacted), STORE_FUTURE_RV or STORE_IO.
 */
int store_list(store_t *store, const store_list_opts_t *opts, store_list_result_t *out, lo_err_t *err);
void store_list_result_free(store_list_result_t *res);

/* ---- the event log and compaction ---- */

/**
 * Reads, in one snapshot, the events of o->resource (and o->ns) with
 * after_rv < rv <= the snapshot's newest rv, in rv order, and sets *up_to
 * to that newest rv. The read stops after o->limit events or when fn says
 * so; *last (may be NULL) is then the rv of the last event read, and up to
 * *last the caller has seen every matching event; when the scan ran to the
 * end, *last = *up_to. Returns STORE_OK, STORE_EXPIRED (after_rv is older
 * than the compaction horizon: events after it are gone), STORE_FUTURE_RV
 * or STORE_IO.
 */
int store_events(store_t *store, const store_events_opts_t *o, store_event_fn fn, void *ctx, int64_t *up_to,
                 int64_t *last, lo_err_t *err);

/**
 * Compacts the event log: the horizon H is the newest rv that leaves at
 * least keep_revisions newer revisions and at least keep_seconds of history.
 * The horizon is raised first (from then on lists at an rv at or below H,
 * and event reads after an rv below H, answer STORE_EXPIRED); then events
 * superseded at or before H, and DELETED events at or before H, are
 * removed by the writer in bounded steps between its batches, so writers
 * never wait long; then the WAL is copied back by the checkpointer (see
 * storage/sqlite_backend.c: passive, except a restart of a few
 * milliseconds once the WAL is large). Blocks until done.
 * *compacted (may be NULL) receives the horizon in force afterwards.
 */
int store_compact(store_t *store, int64_t keep_revisions, int64_t keep_seconds, int64_t *compacted, lo_err_t *err);

#endif
