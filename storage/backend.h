/*
 * backend.h - what the store's writer (store.c) needs from a storage
 * engine, below the public contract of langop/storage/store.h (both share
 * langop/storage/records.h). Private to
 * storage/. One engine today (sqlite_backend.c); an etcd engine gives the
 * same functions, and this becomes a table of them.
 *
 * Threads: the read functions run on any thread (each thread reads through
 * its own connection and snapshot); the batch functions run only on the
 * writer thread, one batch at a time.
 *
 * A batch is one transaction; a rollback also rolls back the rv counter,
 * so rvs stay gap-free.
 */
#ifndef LANGOP_STORAGE_BACKEND_H
#define LANGOP_STORAGE_BACKEND_H

#include "langop/storage/records.h"

typedef struct backend backend_t;

backend_t *backend_open(const char *path, int sync_full, lo_err_t *err);
void backend_close(backend_t *b);
/** Refuses (STORE_IO) a stored value larger than max bytes: 0 keeps the engine's own limit. */
void backend_limit_object_bytes(backend_t *b, size_t max);

/* ---- reads (any thread) ---- */

int backend_current_rv(backend_t *b, int64_t *rv, lo_err_t *err);
int backend_compacted_rv(backend_t *b, int64_t *rv, lo_err_t *err);
int backend_get(backend_t *b, const char *resource, const char *ns, const char *name, json_t **out, int64_t *rv,
                lo_err_t *err);
int backend_list(backend_t *b, const store_list_opts_t *opts, store_list_result_t *out, lo_err_t *err);
int backend_events(backend_t *b, const store_events_opts_t *o, store_event_fn fn, void *ctx, int64_t *up_to,
                   int64_t *last, lo_err_t *err);
store_txn_t *backend_snapshot(backend_t *b, lo_err_t *err);
void backend_snapshot_end(store_txn_t *txn);

/* ---- the writer's batch (writer thread only) ---- */

/** The writer's transaction object (one per backend, reused by every batch). */
store_txn_t *backend_writer_txn(backend_t *b);
/** The store whose writer owns txn, or NULL for a read snapshot. */
store_t *backend_txn_owner(store_txn_t *txn);
void backend_set_owner(backend_t *b, store_t *owner);

int backend_batch_begin(store_txn_t *txn, lo_err_t *err);
/**
 * Commits; durable at the configured level when it returns STORE_OK. On
 * STORE_IO the batch is rolled back, and nothing of it comes back after a
 * crash either, unless err's message says that it may.
 */
int backend_batch_commit(store_txn_t *txn, lo_err_t *err);
void backend_batch_rollback(store_txn_t *txn);

/** The rv of the key's current state: STORE_OK with *rv, or STORE_NOT_FOUND. */
int backend_key_rv(store_txn_t *txn, const char *resource, const char *ns, const char *name, int64_t *rv,
                   lo_err_t *err);

/**
 * Logs one change with the next rv (*rv) and applies it to the current
 * state: body is the object's JSON with metadata.resourceVersion already
 * equal to that next rv (backend_next_rv). prev_rv is the key's rv before
 * (0 for ADDED).
 */
int backend_write_change(store_txn_t *txn, store_event_type_t type, const char *resource, const char *ns,
                         const char *name, const char *body, int64_t prev_rv, int64_t *rv, lo_err_t *err);
/** The rv the next backend_write_change() will assign. */
int64_t backend_next_rv(store_txn_t *txn);

/* ---- compaction: the target is read anywhere, the steps run on the writer between batches ---- */

/**
 * The horizon the retention rules allow now (*target), the one in force
 * (*horizon) and how far deletions have got (*through <= *horizon).
 */
int backend_compaction_plan(backend_t *b, int64_t keep_revisions, int64_t keep_seconds, int64_t *target,
                            int64_t *horizon, int64_t *through, lo_err_t *err);
/** In its own transaction: raises the horizon to target (never lowers it). */
int backend_compaction_raise(store_txn_t *txn, int64_t target, lo_err_t *err);
/**
 * In its own transaction: removes what the horizon made unreachable among
 * events in (*through, min(*through + window, horizon)], and advances
 * *through (stored, so an interrupted compaction resumes).
 */
int backend_compaction_step(store_txn_t *txn, int64_t horizon, int64_t window, int64_t *through, lo_err_t *err);

/** Copies the WAL back into the database (its own connection); 1 when all of it is copied. */
int backend_checkpoint(backend_t *b);
/** Frames in the WAL after the last commit (the writer's view). */
int backend_wal_frames(backend_t *b);

#endif
