/*
 * store.h - the object store: Kubernetes objects with a global, monotonic
 * resourceVersion. Backend-neutral: nothing here names SQLite, so another
 * backend (etcd) can sit behind the same contract.
 *
 * Promises:
 *  - Every committed change gets its own resourceVersion (rv), a 64-bit
 *    counter that only grows, across restarts. An object's
 *    metadata.resourceVersion is the decimal string of the rv of the last
 *    change to it; the store writes it, callers never do.
 *  - store_write() is one atomic read-modify-write: the mutate callback sees
 *    the current object and decides the new one inside the same write
 *    transaction. When store_write() returns STORE_OK the change is durable
 *    (it survives the process being killed; see store_options_t.sync_full
 *    for power loss).
 *  - A no-op (mutate returns STORE_WRITE_NOOP, or returns an object equal to
 *    the current one) commits nothing, keeps the rv and emits no event.
 *  - The event log holds one entry per change (ADDED, MODIFIED, DELETED) keyed
 *    by rv, retained back to the compaction horizon; lists can be read at
 *    any retained rv (consistent pagination).
 *  - Thread safety: every function may be called from any thread. Writes are
 *    serialised by the store; reads run concurrently with writes.
 *
 * Keys: (resource, namespace, name); namespace is "" for cluster-scoped
 * resources. Lists are ordered by (namespace, name), byte-wise.
 *
 * Ownership: json_t results are new references (caller decrefs); json_t
 * parameters are borrowed unless marked stolen.
 */
#ifndef LANGOP_STORE_H
#define LANGOP_STORE_H

#include <stdint.h>
#include <jansson.h>
#include "langop/common.h"

typedef struct store store_t;
typedef struct store_txn store_txn_t;

/* Return codes (negative) of store functions. */
enum store_rc {
    STORE_OK = 0,
    STORE_NOT_FOUND = -1,   /* no such object */
    STORE_EXPIRED = -2,     /* requested rv is older than the compaction horizon */
    STORE_FUTURE_RV = -3,   /* requested rv is newer than any committed change */
    STORE_ABORTED = -4,     /* the mutate callback refused; err was filled by it */
    STORE_IO = -5,          /* the backend failed; err->message says how */
};

typedef enum store_event_type {
    STORE_EVENT_ADDED = 1,
    STORE_EVENT_MODIFIED = 2,
    STORE_EVENT_DELETED = 3,
} store_event_type_t;

/** "ADDED", "MODIFIED", "DELETED". */
const char *store_event_type_name(store_event_type_t type);

typedef struct store_options {
    const char *path;      /* database file; ":memory:" is not supported (readers need a file) */
    int sync_full;         /* 1: fsync every commit (survives power loss); 0: survives process crash */
} store_options_t;

/** Opens (creating if needed) the store. Returns NULL and fills err on failure. */
store_t *store_open(const store_options_t *opts, lo_err_t *err);
/** Closes the store. No other call may be in progress. */
void store_close(store_t *store);

/** The rv of the newest committed change (0 for an empty store). */
int store_current_rv(store_t *store, int64_t *rv, lo_err_t *err);
/** The compaction horizon: rvs <= this are no longer in the event log. */
int store_compacted_rv(store_t *store, int64_t *rv, lo_err_t *err);

/**
 * Reads one object. *out is a new reference.
 * Returns STORE_OK, STORE_NOT_FOUND or STORE_IO.
 */
int store_get(store_t *store, const char *resource, const char *ns, const char *name, json_t **out,
              lo_err_t *err);

/* ---- writes ---- */

typedef enum store_write_kind {
    STORE_WRITE_NOOP = 0,    /* change nothing */
    STORE_WRITE_PUT = 1,     /* create or replace with *next */
    STORE_WRITE_DELETE = 2,  /* remove the object; *next (optional) is its last state */
} store_write_kind_t;

/**
 * Decides the new state of one object, inside the write transaction.
 * @param txn      for reading other objects in the same transaction
 * @param current  the stored object (borrowed, read-only) or NULL if absent
 * @param next     OUT: new reference to the object to store (PUT) or the last
 *                 state to report (DELETE, optional); NULL for NOOP
 * @return a store_write_kind_t, or -1 to abort with err filled
 * The store overwrites metadata.resourceVersion of *next.
 */
typedef int (*store_mutate_fn)(store_txn_t *txn, const json_t *current, json_t **next, void *ctx,
                               lo_err_t *err);

typedef struct store_write {
    const char *resource;
    const char *ns;
    const char *name;
    store_mutate_fn mutate;
    void *ctx;
    int dry_run;           /* run everything, commit nothing, emit nothing */
} store_write_t;

typedef struct store_write_result {
    store_write_kind_t kind;  /* what happened */
    json_t *object;           /* new ref: stored object (PUT), last state (DELETE), current (NOOP), or NULL */
    int64_t rv;               /* rv of the change; for NOOP the object's unchanged rv; 0 on dry run */
} store_write_result_t;

/**
 * Runs one read-modify-write. Returns STORE_OK, STORE_ABORTED (err filled by
 * the callback) or STORE_IO. On STORE_OK, out->object must be released with
 * store_write_result_free().
 */
int store_write(store_t *store, const store_write_t *w, store_write_result_t *out, lo_err_t *err);
void store_write_result_free(store_write_result_t *res);

/** Inside a mutate callback: reads another object (new ref) in the same transaction. */
int store_txn_get(store_txn_t *txn, const char *resource, const char *ns, const char *name, json_t **out,
                  lo_err_t *err);
/** Inside a mutate callback: counts the objects of resource in ns ("" = cluster-scoped). */
int store_txn_count(store_txn_t *txn, const char *resource, const char *ns, int64_t *count, lo_err_t *err);

/* ---- lists ---- */

/** Returns 1 to keep obj (borrowed) in a list, 0 to skip it. */
typedef int (*store_filter_fn)(const json_t *obj, void *ctx);

typedef struct store_list_opts {
    const char *resource;
    const char *ns;            /* NULL = every namespace */
    int64_t at_rv;             /* 0 = newest; otherwise the state exactly at this rv */
    const char *after_ns;      /* continue after this key (both NULL = from the start) */
    const char *after_name;
    size_t limit;              /* 0 = no limit: at most this many items */
    store_filter_fn filter;    /* NULL = keep everything; applied before limit */
    void *filter_ctx;
} store_list_opts_t;

typedef struct store_list_result {
    json_t *items;             /* new: array of objects */
    int64_t rv;                /* the rv this list reflects (at_rv, or the newest) */
    int more;                  /* 1 when items were cut by limit and more may match */
    char *last_ns;             /* key of the last item returned when more == 1 (malloc'd) */
    char *last_name;
    int64_t remaining;         /* count of matching items after this page if known, else -1 */
} store_list_result_t;

/**
 * Lists objects in (namespace, name) order. Returns STORE_OK, STORE_EXPIRED
 * (at_rv was compacted), STORE_FUTURE_RV or STORE_IO.
 */
int store_list(store_t *store, const store_list_opts_t *opts, store_list_result_t *out, lo_err_t *err);
void store_list_result_free(store_list_result_t *res);

/* ---- change feed (watch) and compaction ---- */

/** One change of the event log. Pointers are borrowed for the duration of the call. */
typedef struct store_event {
    int64_t rv;
    store_event_type_t type;
    const char *resource;
    const char *ns;
    const char *name;
    const json_t *object;   /* state at rv (for DELETED: the last state, carrying the deletion rv) */
    const json_t *prev;     /* MODIFIED: the state before, when asked for (or always, in the hook); else NULL */
} store_event_t;

/**
 * Called after every committed change, on the thread that made it, in rv
 * order, while the store still serialises writers (so calls never overlap
 * or reorder). Must not call back into store writes.
 */
typedef void (*store_commit_fn)(void *ctx, const store_event_t *ev);
/** Installs the commit hook; call before serving. */
void store_set_commit_hook(store_t *store, store_commit_fn fn, void *ctx);

/** Called for each event of store_events(); return 0 to go on, non-zero to stop. */
typedef int (*store_event_fn)(void *ctx, const store_event_t *ev);

/**
 * Reads, in one snapshot, the events of resource (ns NULL = every
 * namespace) with after_rv < rv <= the newest rv, in rv order, and sets
 * *up_to to that newest rv. with_prev: fill ev->prev for MODIFIED events.
 * Returns STORE_OK, STORE_EXPIRED (after_rv is older than the compaction
 * horizon: events after it are gone), STORE_FUTURE_RV or STORE_IO.
 */
int store_events(store_t *store, const char *resource, const char *ns, int64_t after_rv, int with_prev,
                 store_event_fn fn, void *ctx, int64_t *up_to, lo_err_t *err);

/**
 * Compacts the event log: the horizon H is the newest rv that leaves at
 * least keep_revisions newer revisions and at least keep_seconds of history;
 * events superseded at or before H, and DELETED events at or before H, are
 * removed, the horizon is recorded, and the WAL is checkpointed. Lists and
 * watches from an rv at or below H then answer STORE_EXPIRED.
 * *compacted (may be NULL) receives the horizon in force afterwards.
 */
int store_compact(store_t *store, int64_t keep_revisions, int64_t keep_seconds, int64_t *compacted, lo_err_t *err);

#endif
