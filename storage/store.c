/*
 * store.c - the store of langop/store.h: one writer thread with group
 * commit over a storage engine (backend.h), the commit rules, the change
 * feed, and the background checkpoint.
 *
 * The writer's loop:
 *   1. take queued ops one at a time (so that ops arriving meanwhile join
 *      the batch) until the queue is empty or the batch is full
 *      (STORE_BATCH_MAX ops or BATCH_MAX_BYTES of bodies);
 *   2. run each: compare, check, prepare, no-op test, then SQL, then its
 *      after rule; a write that is refused is refused before it touches
 *      the database, so it fails alone; if the database fails under a
 *      write (or its after rule), the batch is rolled back and run again
 *      without that write;
 *   3. settle (follow-up changes), commit: one sync for the whole batch;
 *   4. publish the batch's changes to the feed, answer the ops (their done
 *      callbacks), then run one compaction step if one is pending.
 * Invariants: ops are applied in queue order, so rvs follow the order of
 * submission; an op's results are written only by the writer and read by
 * its submitter only after done() - the done call is the hand-over.
 */
#include "langop/storage/store.h"

#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "langop/core/codec.h"
#include "langop/storage/feed.h"
#include "backend.h"

#define BATCH_MAX_BYTES (8u * 1024u * 1024u)
#define COMPACTION_WINDOW 500       /* events examined by one compaction step */
#define CHECKPOINT_FRAMES 4096      /* WAL frames (16 MiB) after which the checkpointer copies them back */
#define CHECKPOINT_IDLE_MS 1000

typedef struct submission {
    store_op_t *ops;
    size_t n, next;               /* next: the first op not yet taken by the writer */
    store_done_fn done;
    void *ctx;
    struct submission *link;
} submission_t;

/* One change of the batch in progress: what settle sees and what the feed gets. */
typedef struct change {
    int64_t rv;
    store_event_type_t type;
    char *resource, *ns, *name;
    json_t *object, *prev;        /* refs */
    char *body;                   /* the stored bytes */
    size_t body_len;
} change_t;

typedef struct change_list {
    change_t *v;
    size_t n, cap;
} change_list_t;

/* A compaction asked for by store_compact(), run by the writer between batches. */
typedef struct compaction {
    int64_t horizon, through;
    int raised, finished, rc;
    lo_err_t err;
} compaction_t;

struct store {
    backend_t *b;
    feed_t *feed;
    store_rules_t rules;

    pthread_mutex_t mu;           /* guards the queue, compaction and stopping */
    pthread_cond_t wake;          /* the writer waits on it */
    pthread_cond_t compacted;     /* store_compact waits on it */
    submission_t *head, *tail;
    size_t queued, queue_max;     /* ops queued and not yet taken */
    compaction_t *compaction;
    int stopping;
    pthread_t writer;

    /* the batch in progress: writer thread only */
    change_list_t primary, followups;
    change_list_t *recording;     /* where store_txn_put/delete record: an op's after rule (primary), settle
                                     (followups), NULL anywhere else (a write there is refused) */
    size_t batch_bytes;

    pthread_mutex_t ckpt_mu;
    pthread_cond_t ckpt_wake;
    int ckpt_wanted, ckpt_stopping;
    pthread_t checkpointer;
};

/* ---- small helpers ---- */

void store_op_clear(store_op_t *op)
{
    if (op == NULL)
        return;
    json_decref(op->result);
    op->result = NULL;
    free(op->result_json);
    op->result_json = NULL;
    lo_err_clear(&op->err);
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

static void change_list_add(change_list_t *l, const change_t *c)
{
    if (l->n == l->cap) {
        l->cap = l->cap ? 2 * l->cap : 64;
        l->v = lo_realloc(l->v, l->cap * sizeof(*l->v));
    }
    l->v[l->n++] = *c;
}

static void change_free(change_t *c)
{
    free(c->resource);
    free(c->ns);
    free(c->name);
    free(c->body);
    json_decref(c->object);
    json_decref(c->prev);
}

static void change_list_clear(change_list_t *l)
{
    for (size_t i = 0; i < l->n; i++)
        change_free(&l->v[i]);
    l->n = 0;
}

/* Drops the changes made since mark (the op that made them failed). */
static void change_list_truncate(change_list_t *l, size_t mark)
{
    while (l->n > mark)
        change_free(&l->v[--l->n]);
}

/*
 * Logs and applies one change of obj (its rv set here to the next rv), and
 * records it for settle and the feed. obj and prev are borrowed (refs taken).
 */
static int record_change(store_t *s, change_list_t *into, store_event_type_t type, const char *resource,
                         const char *ns, const char *name, json_t *obj, const json_t *prev, int64_t prev_rv,
                         int64_t *rv, lo_err_t *err)
{
    store_txn_t *txn = backend_writer_txn(s->b);
    set_rv(obj, backend_next_rv(txn));
    size_t len;
    char *body = codec_encode_json_len(obj, &len);
    if (backend_write_change(txn, type, resource, ns, name, body, prev_rv, rv, err) != STORE_OK) {
        free(body);
        return STORE_IO;
    }
    change_t c = {.rv = *rv, .type = type, .resource = lo_strdup(resource), .ns = lo_strdup(ns),
                  .name = lo_strdup(name), .object = json_incref(obj), .prev = json_incref((json_t *)prev),
                  .body = body, .body_len = len};
    s->batch_bytes += c.body_len;
    change_list_add(into, &c);
    return STORE_OK;
}

/* ---- one op inside the batch ---- */

/* What one op works on, in the writer. */
typedef struct op_state {
    store_t *s;
    store_op_t *op;
    const char *ns;
    int exists;
    int64_t cur_rv;
    json_t *current;        /* ref: the stored state, or NULL */
} op_state_t;

/* The compare: is the key where the submitter prepared the op against? */
static int op_compare(op_state_t *st)
{
    store_op_t *op = st->op;
    store_txn_t *txn = backend_writer_txn(st->s->b);
    int rc = backend_key_rv(txn, op->resource, st->ns, op->name, &st->cur_rv, &op->err);
    if (rc == STORE_IO)
        return rc;
    st->exists = rc == STORE_OK;
    if (op->expect_rv == STORE_RV_ABSENT && st->exists) {
        lo_err_set(&op->err, 0, "", "%s %s/%s already exists", op->resource, st->ns, op->name);
        return STORE_EXISTS;
    }
    if (op->expect_rv > 0 && (!st->exists || st->cur_rv != op->expect_rv)) {
        lo_err_set(&op->err, 0, "", "%s %s/%s changed since it was read", op->resource, st->ns, op->name);
        return STORE_CONFLICT;
    }
    if (op->kind == STORE_WRITE_DELETE && !st->exists) {
        lo_err_set(&op->err, 0, "", "%s %s/%s not found", op->resource, st->ns, op->name);
        return STORE_NOT_FOUND;
    }
    if (!st->exists)
        return STORE_OK;
    if (op->current && op->expect_rv > 0) {
        st->current = json_incref((json_t *)op->current);
        return STORE_OK;
    }
    return store_txn_get(txn, op->resource, st->ns, op->name, &st->current, NULL, &op->err) == STORE_OK ? STORE_OK
                                                                                                  : STORE_IO;
}

static int op_check(op_state_t *st, const json_t *obj)
{
    store_op_t *op = st->op;
    if (op->check && op->check(backend_writer_txn(st->s->b), obj, op->check_ctx, &op->err) != 0)
        return STORE_ABORTED;
    return STORE_OK;
}

static void op_answer(store_op_t *op, store_write_kind_t kind, json_t *obj /* ref taken */, int64_t rv)
{
    op->done_kind = kind;
    op->result = json_incref(obj);
    op->rv = rv;
}

/* op_answer for a change just recorded: the answer carries its stored bytes too. */
static void op_answer_stored(store_t *s, store_op_t *op, store_write_kind_t kind, json_t *obj, int64_t rv)
{
    const change_t *c = &s->primary.v[s->primary.n - 1];
    op_answer(op, kind, obj, rv);
    op->result_json = lo_malloc(c->body_len + 1);
    memcpy(op->result_json, c->body, c->body_len + 1);
    op->result_json_len = c->body_len;
}

static int op_put(op_state_t *st)
{
    store_t *s = st->s;
    store_op_t *op = st->op;
    json_t *obj = op->object;
    store_txn_t *txn = backend_writer_txn(s->b);
    if (!json_is_object(obj)) {
        lo_err_set(&op->err, 0, "", "a PUT of %s %s/%s without an object", op->resource, st->ns, op->name);
        return STORE_IO;
    }
    int rc = op_check(st, obj);
    if (rc != STORE_OK)
        return rc;
    if (s->rules.prepare && s->rules.prepare(s->rules.ctx, txn, op->resource, st->current, obj, &op->err) != 0)
        return STORE_IO;
    /* compare as if obj kept the current rv: a change of rv alone is no change */
    set_rv(obj, st->exists ? st->cur_rv : 0);
    if (st->exists && json_equal(obj, st->current)) {
        op_answer(op, STORE_WRITE_NOOP, st->current, st->cur_rv);
        return STORE_OK;
    }
    if (op->dry_run) {
        op_answer(op, STORE_WRITE_PUT, obj, 0);
        return STORE_OK;
    }
    int64_t rv;
    store_event_type_t type = st->exists ? STORE_EVENT_MODIFIED : STORE_EVENT_ADDED;
    if (record_change(s, &s->primary, type, op->resource, st->ns, op->name, obj, st->current,
                      st->exists ? st->cur_rv : 0, &rv, &op->err) != STORE_OK)
        return STORE_IO;
    op_answer_stored(s, op, STORE_WRITE_PUT, obj, rv);
    return STORE_OK;
}

static int op_delete(op_state_t *st)
{
    store_t *s = st->s;
    store_op_t *op = st->op;
    json_t *last = json_is_object(op->object) ? op->object : st->current;
    int rc = op_check(st, last);
    if (rc != STORE_OK)
        return rc;
    if (op->dry_run) {
        /* the stored tree is shared (the object cache, the submitter): it carries cur_rv already */
        if (last != st->current)
            set_rv(last, st->cur_rv);
        op_answer(op, STORE_WRITE_DELETE, last, 0);
        return STORE_OK;
    }
    int64_t rv;
    if (last == st->current) { /* the stored tree is shared with the submitter: record a copy */
        json_t *copy = json_deep_copy(last);
        rc = record_change(s, &s->primary, STORE_EVENT_DELETED, op->resource, st->ns, op->name, copy, st->current,
                           st->cur_rv, &rv, &op->err);
        if (rc == STORE_OK)
            op_answer_stored(s, op, STORE_WRITE_DELETE, copy, rv);
        json_decref(copy);
        return rc;
    }
    if (record_change(s, &s->primary, STORE_EVENT_DELETED, op->resource, st->ns, op->name, last, st->current,
                      st->cur_rv, &rv, &op->err) != STORE_OK)
        return STORE_IO;
    op_answer_stored(s, op, STORE_WRITE_DELETE, last, rv);
    return STORE_OK;
}

/* The op's own rule, after it went through: its changes are the op's (primary, dropped with it). */
static int op_after(store_t *s, store_op_t *op)
{
    s->recording = op->dry_run ? NULL : &s->primary;
    int rc = op->after(backend_writer_txn(s->b), op, op->after_ctx, &op->err);
    s->recording = NULL;
    if (rc == 0)
        return STORE_OK;
    if (op->err.message[0] == '\0')
        lo_err_set(&op->err, 0, "", "the after rule of %s %s/%s failed", op->resource, op->ns ? op->ns : "",
                   op->name);
    return STORE_IO;
}

/*
 * Runs op in the batch; its rc says how it went. Everything that can refuse
 * a write (the compare, the check, the rules, the no-op test) runs before
 * the write touches the database, so a refused write leaves nothing behind
 * and needs no savepoint (which would copy every page the write touches).
 * Returns 1 when the database failed under it (STORE_IO): the transaction
 * holds part of it, and the batch must be rolled back and run again without it.
 */
static int run_op(store_t *s, store_op_t *op, int again)
{
    op_state_t st = {.s = s, .op = op, .ns = op->ns ? op->ns : ""};
    size_t mark = s->primary.n;
    if (again) /* a replayed batch: the answers of the pass that was rolled back go */
        store_op_clear(op);
    memset(&op->err, 0, sizeof(op->err));
    op->result = NULL;
    op->result_json = NULL;
    op->rv = 0;
    op->done_kind = STORE_WRITE_NOOP;
    int rc = op_compare(&st);
    if (rc == STORE_OK)
        rc = op->kind == STORE_WRITE_DELETE ? op_delete(&st) : op_put(&st);
    if (rc == STORE_OK && op->after)
        rc = op_after(s, op);
    if (rc != STORE_OK) {
        change_list_truncate(&s->primary, mark);
        json_decref(op->result);
        free(op->result_json);
        op->result = NULL;
        op->result_json = NULL;
    }
    json_decref(st.current);
    op->rc = rc;
    return rc == STORE_IO;
}

/* ---- changes inside rules: an op's after rule, and settle ---- */

/* The store whose writer may record a change through txn now, or NULL (with err) if none may. */
static store_t *recording_store(store_txn_t *txn, const char *resource, const char *ns, const char *name,
                                lo_err_t *err)
{
    store_t *s = backend_txn_owner(txn);
    if (s == NULL || s->recording == NULL) {
        lo_err_set(err, 0, "", "%s %s/%s: no write may be made here (a snapshot, or a dry run)", resource, ns,
                   name);
        return NULL;
    }
    return s;
}

int store_txn_put(store_txn_t *txn, const char *resource, const char *ns, const char *name, json_t *obj,
                  lo_err_t *err)
{
    int64_t cur_rv, rv;
    json_t *current = NULL;
    ns = ns ? ns : "";
    store_t *s = recording_store(txn, resource, ns, name, err);
    if (s == NULL)
        return STORE_IO;
    int rc = store_txn_get(txn, resource, ns, name, &current, &cur_rv, err);
    if (rc != STORE_OK)
        return rc;
    set_rv(obj, cur_rv);
    if (json_equal(obj, current)) {
        json_decref(current);
        return STORE_OK;
    }
    rc = record_change(s, s->recording, STORE_EVENT_MODIFIED, resource, ns, name, obj, current, cur_rv, &rv, err);
    json_decref(current);
    return rc;
}

int store_txn_delete(store_txn_t *txn, const char *resource, const char *ns, const char *name, lo_err_t *err)
{
    int64_t cur_rv, rv;
    json_t *current = NULL;
    ns = ns ? ns : "";
    store_t *s = recording_store(txn, resource, ns, name, err);
    if (s == NULL)
        return STORE_IO;
    int rc = store_txn_get(txn, resource, ns, name, &current, &cur_rv, err);
    if (rc != STORE_OK)
        return rc;
    json_t *last = json_deep_copy(current); /* the stored tree is shared: the DELETED change gets its own rv */
    rc = record_change(s, s->recording, STORE_EVENT_DELETED, resource, ns, name, last, current, cur_rv, &rv, err);
    json_decref(last);
    json_decref(current);
    return rc;
}

static int settle(store_t *s, lo_err_t *err)
{
    if (s->rules.settle == NULL || s->primary.n == 0)
        return STORE_OK;
    store_change_t *v = lo_calloc(s->primary.n, sizeof(*v));
    for (size_t i = 0; i < s->primary.n; i++) {
        const change_t *c = &s->primary.v[i];
        v[i] = (store_change_t){.rv = c->rv, .type = c->type, .resource = c->resource, .ns = c->ns,
                                .name = c->name, .object = c->object, .prev = c->prev};
    }
    s->recording = &s->followups;
    int rc = s->rules.settle(s->rules.ctx, backend_writer_txn(s->b), v, s->primary.n, err);
    s->recording = NULL;
    free(v);
    return rc == 0 ? STORE_OK : STORE_IO;
}

/* ---- the batch ---- */

/* A taken op and the submission it belongs to. */
typedef struct taken {
    submission_t *sub;
    size_t index;
    int dropped;          /* the database failed under it: left out when the batch runs again */
    int ran;              /* it ran in a pass: a replay drops that answer first */
} taken_t;

typedef struct batch {
    taken_t *v;
    size_t n, cap;
} batch_t;

/* Takes the next queued op into b; 0 when the queue is empty. Called with s->mu held. */
static int take_op(store_t *s, batch_t *b)
{
    submission_t *sub = s->head;
    if (sub == NULL)
        return 0;
    if (b->n == b->cap) {
        b->cap = b->cap ? 2 * b->cap : 64;
        b->v = lo_realloc(b->v, b->cap * sizeof(*b->v));
    }
    b->v[b->n++] = (taken_t){sub, sub->next++, 0, 0};
    s->queued--;
    if (sub->next == sub->n) { /* fully taken: off the queue, still owed its done() */
        s->head = sub->link;
        if (s->head == NULL)
            s->tail = NULL;
    }
    return 1;
}

static void feed_move(feed_event_t *e, change_t *c)
{
    *e = (feed_event_t){.rv = c->rv, .type = c->type, .resource = c->resource, .ns = c->ns, .name = c->name,
                        .object = c->object, .prev = c->prev, .body = c->body, .body_len = c->body_len};
    memset(c, 0, sizeof(*c));
}

/* Hands the committed changes, in rv order, to the feed. */
static void publish(store_t *s)
{
    size_t n = s->primary.n + s->followups.n;
    if (n == 0)
        return;
    feed_batch_t *fb = feed_batch_new(n);
    for (size_t i = 0; i < s->primary.n; i++)
        feed_move(&fb->events[i], &s->primary.v[i]);
    for (size_t i = 0; i < s->followups.n; i++)
        feed_move(&fb->events[s->primary.n + i], &s->followups.v[i]);
    s->primary.n = s->followups.n = 0;
    feed_publish(s->feed, fb);
}

/* Calls done() of each submission whose last op is in b (its ops are all answered now). */
static void answer(batch_t *b)
{
    for (size_t i = 0; i < b->n; i++) {
        submission_t *sub = b->v[i].sub;
        if (b->v[i].index == sub->n - 1) {
            sub->done(sub->ctx);
            free(sub);
        }
    }
}

#define BATCH_REPLAYS 3   /* database failures in one batch before the rest fails with it */

static store_op_t *taken_op(const batch_t *b, size_t i)
{
    return &b->v[i].sub->ops[b->v[i].index];
}

/* Every op of b not dropped yet fails with err (the database cannot take the batch). */
static void fail_rest(batch_t *b, const lo_err_t *err)
{
    for (size_t i = 0; i < b->n; i++) {
        store_op_t *op = taken_op(b, i);
        if (b->v[i].dropped)
            continue;
        store_op_clear(op);
        op->rc = STORE_IO;
        lo_err_set(&op->err, 0, "", "%s", err->message);
    }
}

/*
 * One pass over the batch in a new transaction, taking more queued ops while
 * it goes. Returns -1 when every op ran (then settle and commit follow), the
 * index of the op the database failed under (the transaction is rolled
 * back), or -2 when the transaction cannot begin.
 */
static long batch_pass(store_t *s, batch_t *b, lo_err_t *err)
{
    store_txn_t *txn = backend_writer_txn(s->b);
    s->batch_bytes = 0;
    if (backend_batch_begin(txn, err) != STORE_OK)
        return -2;
    for (size_t i = 0; i < b->n; i++) {
        if (!b->v[i].dropped) {
            int again = b->v[i].ran;
            b->v[i].ran = 1;
            if (run_op(s, taken_op(b, i), again)) {
                backend_batch_rollback(txn);
                change_list_clear(&s->primary);
                change_list_clear(&s->followups);
                return (long)i;
            }
        }
        if (i + 1 == b->n && b->n < STORE_BATCH_MAX && s->batch_bytes < BATCH_MAX_BYTES) {
            pthread_mutex_lock(&s->mu);
            take_op(s, b);
            pthread_mutex_unlock(&s->mu);
        }
    }
    return -1;
}

/* Runs one batch, taking ops from the queue as it goes. Returns 0 if the queue was empty. */
static int run_batch(store_t *s, batch_t *b)
{
    store_txn_t *txn = backend_writer_txn(s->b);
    lo_err_t err = {0};
    b->n = 0;
    pthread_mutex_lock(&s->mu);
    int any = take_op(s, b);
    pthread_mutex_unlock(&s->mu);
    if (!any)
        return 0;
    int rc = STORE_IO;
    for (int pass = 0; pass <= BATCH_REPLAYS; pass++) {
        long broke = batch_pass(s, b, &err);
        if (broke == -2)
            break;                        /* cannot even begin: all fail */
        if (broke >= 0) {                 /* that op fails alone; the others run again */
            b->v[broke].dropped = 1;
            lo_log(LO_INFO, "store: %s", taken_op(b, (size_t)broke)->err.message);
            continue;
        }
        rc = settle(s, &err);
        if (rc == STORE_OK)
            rc = backend_batch_commit(txn, &err);
        else
            backend_batch_rollback(txn);
        break;
    }
    if (rc == STORE_OK) {
        publish(s);
    } else {
        if (err.message[0] == '\0')
            lo_err_set(&err, 0, "", "the database failed under %d writes of one batch", BATCH_REPLAYS + 1);
        fail_rest(b, &err);
        change_list_clear(&s->primary);
    }
    change_list_clear(&s->followups);
    lo_err_clear(&err);
    answer(b);
    return 1;
}

/* ---- compaction steps, between batches ---- */

static void wake_checkpointer(store_t *s)
{
    pthread_mutex_lock(&s->ckpt_mu);
    s->ckpt_wanted = 1;
    pthread_cond_signal(&s->ckpt_wake);
    pthread_mutex_unlock(&s->ckpt_mu);
}

/* One step of the pending compaction (the raise first). Called without s->mu. */
static void compaction_step(store_t *s, compaction_t *c)
{
    store_txn_t *txn = backend_writer_txn(s->b);
    int rc;
    if (!c->raised) {
        rc = backend_compaction_raise(txn, c->horizon, &c->err);
        c->raised = 1;
    } else {
        rc = backend_compaction_step(txn, c->horizon, COMPACTION_WINDOW, &c->through, &c->err);
    }
    if (rc != STORE_OK || c->through >= c->horizon) {
        c->rc = rc;
        pthread_mutex_lock(&s->mu);
        c->finished = 1;
        s->compaction = NULL;
        pthread_cond_broadcast(&s->compacted);
        pthread_mutex_unlock(&s->mu);
        wake_checkpointer(s);
    }
}

static void *writer_main(void *arg)
{
    store_t *s = arg;
    batch_t b = {0};
    for (;;) {
        int wrote = run_batch(s, &b);
        if (wrote && backend_wal_frames(s->b) >= CHECKPOINT_FRAMES)
            wake_checkpointer(s);
        pthread_mutex_lock(&s->mu);
        compaction_t *c = s->compaction;
        if (c == NULL && s->head == NULL) {
            if (s->stopping) {
                pthread_mutex_unlock(&s->mu);
                break;
            }
            pthread_cond_wait(&s->wake, &s->mu);
        }
        pthread_mutex_unlock(&s->mu);
        if (c)
            compaction_step(s, c);
    }
    free(b.v);
    return NULL;
}

static void *checkpointer_main(void *arg)
{
    store_t *s = arg;
    int copied_at = -1; /* the WAL's frames when a checkpoint last copied all of it */
    pthread_mutex_lock(&s->ckpt_mu);
    while (!s->ckpt_stopping) {
        if (!s->ckpt_wanted) {
            struct timespec until;
            clock_gettime(CLOCK_MONOTONIC, &until);
            until.tv_sec += CHECKPOINT_IDLE_MS / 1000;
            pthread_cond_timedwait(&s->ckpt_wake, &s->ckpt_mu, &until);
        }
        int frames = backend_wal_frames(s->b);
        int wanted = s->ckpt_wanted || (frames > 0 && frames != copied_at); /* when idle, copy what is left */
        s->ckpt_wanted = 0;
        if (s->ckpt_stopping || !wanted)
            continue;
        pthread_mutex_unlock(&s->ckpt_mu);
        copied_at = backend_checkpoint(s->b) ? frames : -1;
        pthread_mutex_lock(&s->ckpt_mu);
    }
    pthread_mutex_unlock(&s->ckpt_mu);
    return NULL;
}

/* ---- open / close ---- */

store_t *store_open(const store_options_t *opts, lo_err_t *err)
{
    assert(opts);
    backend_t *b = backend_open(opts->path, opts->sync_full, err);
    if (b == NULL)
        return NULL;
    backend_limit_object_bytes(b, opts->max_object_bytes);
    int64_t rv = 0;
    if (backend_current_rv(b, &rv, err) != STORE_OK) {
        backend_close(b);
        return NULL;
    }
    store_t *s = lo_calloc(1, sizeof(*s));
    s->b = b;
    backend_set_owner(b, s);
    s->feed = feed_new();
    feed_start_at(s->feed, rv);
    s->queue_max = opts->queue_max ? opts->queue_max : STORE_WRITE_QUEUE_MAX;
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->wake, NULL);
    pthread_cond_init(&s->compacted, NULL);
    pthread_mutex_init(&s->ckpt_mu, NULL);
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&s->ckpt_wake, &attr);
    pthread_condattr_destroy(&attr);
    if (pthread_create(&s->writer, NULL, writer_main, s) != 0 ||
        pthread_create(&s->checkpointer, NULL, checkpointer_main, s) != 0)
        lo_fatal("store: cannot start its threads");
    pthread_setname_np(s->writer, "store-writer"); /* what top -H and perf show */
    pthread_setname_np(s->checkpointer, "store-ckpt");
    return s;
}

void store_close(store_t *store)
{
    if (store == NULL)
        return;
    pthread_mutex_lock(&store->mu);
    store->stopping = 1;
    pthread_cond_signal(&store->wake);
    pthread_mutex_unlock(&store->mu);
    pthread_join(store->writer, NULL);
    pthread_mutex_lock(&store->ckpt_mu);
    store->ckpt_stopping = 1;
    pthread_cond_signal(&store->ckpt_wake);
    pthread_mutex_unlock(&store->ckpt_mu);
    pthread_join(store->checkpointer, NULL);
    backend_close(store->b);
    feed_free(store->feed);
    free(store->primary.v);
    free(store->followups.v);
    pthread_cond_destroy(&store->ckpt_wake);
    pthread_mutex_destroy(&store->ckpt_mu);
    pthread_cond_destroy(&store->compacted);
    pthread_cond_destroy(&store->wake);
    pthread_mutex_destroy(&store->mu);
    free(store);
}

feed_t *store_feed(store_t *store)
{
    return store->feed;
}

void store_set_rules(store_t *store, const store_rules_t *rules)
{
    pthread_mutex_lock(&store->mu);
    store->rules = rules ? *rules : (store_rules_t){0};
    pthread_mutex_unlock(&store->mu);
}

/* ---- writes ---- */

int store_submit(store_t *store, store_op_t *ops, size_t n, store_done_fn done, void *ctx)
{
    assert(store && ops && n > 0 && done);
    submission_t *sub = lo_calloc(1, sizeof(*sub));
    *sub = (submission_t){.ops = ops, .n = n, .done = done, .ctx = ctx};
    pthread_mutex_lock(&store->mu);
    /* a submission larger than the whole bound is taken when the queue is empty (under a steady load
     * that fills the queue, it may be refused again and again: 429, and the client tries later) */
    if (store->stopping || (store->queued > 0 && store->queued + n > store->queue_max)) {
        pthread_mutex_unlock(&store->mu);
        free(sub);
        return STORE_BUSY;
    }
    if (store->tail)
        store->tail->link = sub;
    else
        store->head = sub;
    store->tail = sub;
    store->queued += n;
    pthread_cond_signal(&store->wake);
    pthread_mutex_unlock(&store->mu);
    return STORE_OK;
}

typedef struct waiter {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int done;
} waiter_t;

static void waiter_done(void *ctx)
{
    waiter_t *w = ctx;
    pthread_mutex_lock(&w->mu);
    w->done = 1;
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

int store_write(store_t *store, store_op_t *ops, size_t n)
{
    waiter_t w = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};
    if (n == 0)
        return STORE_OK;
    int rc = store_submit(store, ops, n, waiter_done, &w);
    if (rc != STORE_OK)
        return rc;
    pthread_mutex_lock(&w.mu);
    while (!w.done)
        pthread_cond_wait(&w.cv, &w.mu);
    pthread_mutex_unlock(&w.mu);
    pthread_cond_destroy(&w.cv);
    pthread_mutex_destroy(&w.mu);
    return n == 1 ? ops[0].rc : STORE_OK;
}

/* ---- reads ---- */

int store_current_rv(store_t *store, int64_t *rv, lo_err_t *err)
{
    return backend_current_rv(store->b, rv, err);
}

int store_compacted_rv(store_t *store, int64_t *rv, lo_err_t *err)
{
    return backend_compacted_rv(store->b, rv, err);
}

int store_get(store_t *store, const char *resource, const char *ns, const char *name, json_t **out, int64_t *rv,
              lo_err_t *err)
{
    assert(store && resource && name && out);
    *out = NULL;
    return backend_get(store->b, resource, ns, name, out, rv, err);
}

int store_list(store_t *store, const store_list_opts_t *opts, store_list_result_t *out, lo_err_t *err)
{
    return backend_list(store->b, opts, out, err);
}

int store_events(store_t *store, const store_events_opts_t *o, store_event_fn fn, void *ctx, int64_t *up_to,
                 int64_t *last, lo_err_t *err)
{
    return backend_events(store->b, o, fn, ctx, up_to, last, err);
}

store_txn_t *store_snapshot(store_t *store, lo_err_t *err)
{
    return backend_snapshot(store->b, err);
}

void store_snapshot_end(store_txn_t *txn)
{
    backend_snapshot_end(txn);
}

/* ---- compaction ---- */

int store_compact(store_t *store, int64_t keep_revisions, int64_t keep_seconds, int64_t *compacted, lo_err_t *err)
{
    int64_t target = 0, horizon = 0, through = 0;
    if (backend_compaction_plan(store->b, keep_revisions, keep_seconds, &target, &horizon, &through, err) !=
        STORE_OK)
        return STORE_IO;
    if (target <= horizon && through >= horizon) {
        if (compacted)
            *compacted = horizon;
        return STORE_OK;
    }
    compaction_t c = {.horizon = target > horizon ? target : horizon, .through = through, .raised = target <= horizon};
    pthread_mutex_lock(&store->mu);
    while (store->compaction != NULL) /* one at a time */
        pthread_cond_wait(&store->compacted, &store->mu);
    store->compaction = &c;
    pthread_cond_signal(&store->wake);
    while (!c.finished)
        pthread_cond_wait(&store->compacted, &store->mu);
    pthread_mutex_unlock(&store->mu);
    if (c.rc != STORE_OK) {
        lo_err_set(err, 0, "", "%s", c.err.message);
        lo_err_clear(&c.err);
        return STORE_IO;
    }
    if (compacted)
        *compacted = c.horizon;
    return STORE_OK;
}
