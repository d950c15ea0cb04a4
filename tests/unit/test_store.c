/*
 * test_store.c - the object store (storage/store.c over
 * storage/sqlite_backend.c) against its contract in langop/store.h, on a
 * throw-away database under /tmp: writes as compare-and-swap ops answered
 * by one writer with group commit, the change feed, reads, snapshots,
 * lists, the event log, compaction and durability.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "sanitizer.h"
#include <sqlite3.h>
#include <valgrind/valgrind.h>

#include "langop/storage/feed.h"
#include "langop/storage/store.h"

#define RES "languagemodels"
#define RC_UNANSWERED 12345   /* an op's rc before the writer answered it: no store code */

/* ---- fixture: a fresh directory and an open store ---- */

typedef struct fx {
    char dir[64];
    char path[96];
    store_t *s;
} fx_t;

static store_t *open_store_opts(const char *path, size_t queue_max)
{
    lo_err_t err = {0};
    store_options_t opts = {.path = path, .sync_full = 0, .queue_max = queue_max};
    store_t *s = store_open(&opts, &err);
    if (s == NULL)
        fail_msg("store_open(%s): %s", path, err.message);
    return s;
}

static store_t *open_store(const char *path)
{
    return open_store_opts(path, 0);
}

static int setup(void **state)
{
    fx_t *f = calloc(1, sizeof(*f));
    snprintf(f->dir, sizeof(f->dir), "/tmp/test_store.XXXXXX");
    if (mkdtemp(f->dir) == NULL)
        return -1;
    snprintf(f->path, sizeof(f->path), "%s/store.db", f->dir);
    f->s = open_store(f->path);
    *state = f;
    return 0;
}

static void release_held_gate(void);

static int teardown(void **state)
{
    fx_t *f = *state;
    static const char *suffixes[] = {"", "-wal", "-shm", "-journal"};
    release_held_gate(); /* a test that failed while holding the writer must not hang store_close */
    store_close(f->s);
    for (size_t i = 0; i < sizeof(suffixes) / sizeof(*suffixes); i++) {
        char p[128];
        snprintf(p, sizeof(p), "%s%s", f->path, suffixes[i]);
        unlink(p);
    }
    rmdir(f->dir);
    free(f);
    return 0;
}

/* ---- objects ---- */

static json_t *mk_obj(const char *ns, const char *name, int v)
{
    return json_pack("{s:s, s:{s:s, s:s}, s:{s:i}}", "kind", "LanguageModel", "metadata", "name", name,
                     "namespace", ns, "spec", "v", v);
}

static int64_t obj_rv(const json_t *obj)
{
    const char *s = json_string_value(json_object_get(json_object_get(obj, "metadata"), "resourceVersion"));
    return s ? strtoll(s, NULL, 10) : -1;
}

static int obj_v(const json_t *obj)
{
    return (int)json_integer_value(json_object_get(json_object_get(obj, "spec"), "v"));
}

static const char *obj_name(const json_t *obj)
{
    return json_string_value(json_object_get(json_object_get(obj, "metadata"), "name"));
}

/* ---- ops ---- */

/* A PUT of obj (borrowed; the writer completes it in place) to RES ns/name, prepared against expect_rv. */
static store_op_t put_op(const char *ns, const char *name, json_t *obj, int64_t expect_rv)
{
    return (store_op_t){.resource = RES, .ns = ns, .name = name, .kind = STORE_WRITE_PUT, .object = obj,
                        .expect_rv = expect_rv, .rc = RC_UNANSWERED};
}

static store_op_t del_op(const char *ns, const char *name, int64_t expect_rv)
{
    return (store_op_t){.resource = RES, .ns = ns, .name = name, .kind = STORE_WRITE_DELETE,
                        .expect_rv = expect_rv, .rc = RC_UNANSWERED};
}

/* The stored bytes an answer carries are the result, as compact JSON. */
static void assert_result_json(const store_op_t *op)
{
    assert_non_null(op->result_json);
    assert_int_equal(op->result_json_len, strlen(op->result_json));
    json_t *parsed = json_loads(op->result_json, 0, NULL);
    assert_non_null(parsed);
    assert_true(json_equal(parsed, op->result));
    json_decref(parsed);
}

/* Creates or replaces ns/name (spec.v = v) prepared against expect_rv; returns the new rv. */
static int64_t put_at(store_t *s, const char *ns, const char *name, int v, int64_t expect_rv)
{
    json_t *obj = mk_obj(ns, name, v);
    store_op_t op = put_op(ns, name, obj, expect_rv);
    if (store_write(s, &op, 1) != STORE_OK)
        fail_msg("put %s/%s: rc %d: %s", ns, name, op.rc, op.err.message);
    assert_int_equal(op.done_kind, STORE_WRITE_PUT);
    int64_t rv = op.rv;
    assert_true(rv > 0);
    assert_int_equal(obj_rv(op.result), rv);
    assert_int_equal(obj_rv(obj), rv); /* completed in place */
    assert_result_json(&op);
    store_op_clear(&op);
    json_decref(obj);
    return rv;
}

static int64_t put(store_t *s, const char *ns, const char *name, int v)
{
    return put_at(s, ns, name, v, STORE_RV_ANY);
}

static int64_t del(store_t *s, const char *ns, const char *name)
{
    store_op_t op = del_op(ns, name, STORE_RV_ANY);
    assert_int_equal(store_write(s, &op, 1), STORE_OK);
    assert_int_equal(op.done_kind, STORE_WRITE_DELETE);
    int64_t rv = op.rv;
    store_op_clear(&op);
    return rv;
}

static int64_t current_rv(store_t *s)
{
    int64_t rv = -1;
    assert_int_equal(store_current_rv(s, &rv, NULL), STORE_OK);
    return rv;
}

/* The stored object's spec.v and rv; -1 when absent. */
static int stored_v(store_t *s, const char *ns, const char *name, int64_t *rv)
{
    json_t *got = NULL;
    int64_t at = -1;
    int rc = store_get(s, RES, ns, name, &got, &at, NULL);
    if (rv)
        *rv = rc == STORE_OK ? at : -1;
    if (rc == STORE_NOT_FOUND)
        return -1;
    assert_int_equal(rc, STORE_OK);
    int v = obj_v(got);
    json_decref(got);
    return v;
}

/* Counts through a snapshot. */
static int64_t count_of(store_t *s, const char *resource, const char *ns)
{
    lo_err_t err = {0};
    store_txn_t *snap = store_snapshot(s, &err);
    assert_non_null(snap);
    int64_t n = -1;
    assert_int_equal(store_txn_count(snap, resource, ns, &n, &err), STORE_OK);
    store_snapshot_end(snap);
    return n;
}

/* ---- the feed, as a subscriber sees it ---- */

/*
 * Records every event the feed delivers, and checks on the way (on the
 * writer thread, where cmocka cannot assert) what the feed promises: rvs
 * follow each other without gaps, each object carries its rv, and body is
 * the object's stored bytes.
 */
typedef struct rec {
    pthread_mutex_t mu;
    store_t *s;
    int id;
    size_t cap, n;          /* events recorded (at most cap; the rest are counted in n) */
    size_t batches, max_batch, multi;  /* batches; the largest; batches of more than one event */
    int64_t last;           /* rv of the last event seen */
    int gaps, bad;
    int64_t *rv;
    store_event_type_t *type;
    int *v, *prev_v;        /* spec.v of object and prev (-1 without prev) */
    char (*name)[32];
    size_t *batch;          /* which batch each event came in */
} rec_t;

static void rec_fn(void *ctx, feed_batch_t *b)
{
    rec_t *r = ctx;
    pthread_mutex_lock(&r->mu);
    r->batches++;
    if (b->n > r->max_batch)
        r->max_batch = b->n;
    if (b->n > 1)
        r->multi++;
    for (size_t i = 0; i < b->n; i++) {
        const feed_event_t *e = &b->events[i];
        json_t *parsed = json_loads(e->body, 0, NULL);
        if (e->rv != r->last + 1)
            r->gaps++;
        if (parsed == NULL || !json_equal(parsed, e->object) || e->body_len != strlen(e->body) ||
            obj_rv(e->object) != e->rv)
            r->bad++;
        json_decref(parsed);
        r->last = e->rv;
        if (r->n < r->cap) {
            r->rv[r->n] = e->rv;
            r->type[r->n] = e->type;
            r->v[r->n] = obj_v(e->object);
            r->prev_v[r->n] = e->prev ? obj_v(e->prev) : -1;
            snprintf(r->name[r->n], sizeof(r->name[0]), "%s", e->name);
            r->batch[r->n] = r->batches - 1;
        }
        r->n++;
    }
    pthread_mutex_unlock(&r->mu);
}

static rec_t *rec_start(store_t *s, size_t cap)
{
    rec_t *r = calloc(1, sizeof(*r));
    pthread_mutex_init(&r->mu, NULL);
    r->s = s;
    r->cap = cap;
    r->rv = calloc(cap, sizeof(*r->rv));
    r->type = calloc(cap, sizeof(*r->type));
    r->v = calloc(cap, sizeof(*r->v));
    r->prev_v = calloc(cap, sizeof(*r->prev_v));
    r->name = calloc(cap, sizeof(*r->name));
    r->batch = calloc(cap, sizeof(*r->batch));
    r->last = feed_last_rv(store_feed(s)); /* nothing is written while the test subscribes */
    r->id = feed_subscribe(store_feed(s), rec_fn, r);
    return r;
}

/* Unsubscribes: from then on r is the test's alone. */
static void rec_stop(rec_t *r)
{
    feed_unsubscribe(store_feed(r->s), r->id);
}

static void rec_free(rec_t *r)
{
    pthread_mutex_destroy(&r->mu);
    free(r->rv);
    free(r->type);
    free(r->v);
    free(r->prev_v);
    free(r->name);
    free(r->batch);
    free(r);
}

/* ---- asynchronous submissions and holding the writer ---- */

/* Counts done() calls; waiters wait (bounded) for a number of them. */
typedef struct pending {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int done;
} pending_t;

#define PENDING_INIT {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0}

static void pending_done(void *ctx)
{
    pending_t *p = ctx;
    pthread_mutex_lock(&p->mu);
    p->done++;
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
}

static void deadline_in(struct timespec *ts, int seconds)
{
    clock_gettime(CLOCK_REALTIME, ts);
    ts->tv_sec += seconds;
}

/* Waits until n submissions were answered; fails after 30 s (a writer that hangs). */
static void pending_wait(pending_t *p, int n)
{
    struct timespec until;
    deadline_in(&until, 30);
    pthread_mutex_lock(&p->mu);
    while (p->done < n)
        if (pthread_cond_timedwait(&p->cv, &p->mu, &until) == ETIMEDOUT)
            break;
    int done = p->done;
    pthread_mutex_unlock(&p->mu);
    if (done < n)
        fail_msg("only %d of %d submissions answered", done, n);
}

static int pending_count(pending_t *p)
{
    pthread_mutex_lock(&p->mu);
    int n = p->done;
    pthread_mutex_unlock(&p->mu);
    return n;
}

/*
 * A gate: the check callback of an op that holds the writer (inside its
 * batch) until the test opens it, so that whatever the test submits
 * meanwhile is queued, deterministically. Tests keep gates static: if an
 * assertion fails while one is held, teardown opens it (held_gate) after
 * the test's stack is gone.
 */
typedef struct gate {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int entered, open;
} gate_t;

#define GATE_INIT {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0}

static gate_t *held_gate;

static int gate_check(store_txn_t *txn, const json_t *obj, void *ctx, lo_err_t *err)
{
    gate_t *g = ctx;
    (void)txn, (void)obj, (void)err;
    pthread_mutex_lock(&g->mu);
    g->entered = 1;
    pthread_cond_broadcast(&g->cv);
    while (!g->open)
        pthread_cond_wait(&g->cv, &g->mu);
    pthread_mutex_unlock(&g->mu);
    return 0;
}

static void gate_wait_entered(gate_t *g)
{
    struct timespec until;
    deadline_in(&until, 30);
    pthread_mutex_lock(&g->mu);
    while (!g->entered)
        if (pthread_cond_timedwait(&g->cv, &g->mu, &until) == ETIMEDOUT)
            break;
    int entered = g->entered;
    pthread_mutex_unlock(&g->mu);
    if (!entered)
        fail_msg("the writer never reached the gate");
}

static void gate_open(gate_t *g)
{
    pthread_mutex_lock(&g->mu);
    g->open = 1;
    pthread_cond_broadcast(&g->cv);
    pthread_mutex_unlock(&g->mu);
    held_gate = NULL;
}

static void release_held_gate(void)
{
    if (held_gate)
        gate_open(held_gate);
}

/* Submits a PUT of gate/gate held at g (static) and returns once the writer holds it. obj and op must outlive it. */
static void submit_gated(store_t *s, gate_t *g, store_op_t *op, json_t *obj, pending_t *p)
{
    *op = put_op("gate", "gate", obj, STORE_RV_ANY);
    op->check = gate_check;
    op->check_ctx = g;
    *g = (gate_t)GATE_INIT;
    held_gate = g;
    assert_int_equal(store_submit(s, op, 1, pending_done, p), STORE_OK);
    gate_wait_entered(g);
}

/* A check callback that refuses. ctx (optional): an int that receives spec.v of the object it saw. */
static int refuse_check(store_txn_t *txn, const json_t *obj, void *ctx, lo_err_t *err)
{
    (void)txn;
    if (ctx)
        *(int *)ctx = obj_v(obj);
    lo_err_set(err, 409, "Conflict", "refused %s", obj_name(obj));
    return -1;
}

/* ==================================================================== */
/* single writes                                                         */
/* ==================================================================== */

static void test_crud(void **state)
{
    fx_t *f = *state;
    rec_t *h = rec_start(f->s, 16);
    assert_int_equal(current_rv(f->s), 0);

    /* A client-supplied resourceVersion on create is replaced by the store's. */
    json_t *obj = mk_obj("ns1", "a", 1);
    json_object_set_new(json_object_get(obj, "metadata"), "resourceVersion", json_string("999"));
    store_op_t op = put_op("ns1", "a", obj, STORE_RV_ABSENT);
    assert_int_equal(store_write(f->s, &op, 1), STORE_OK);
    assert_int_equal(op.rc, STORE_OK);
    assert_int_equal(op.done_kind, STORE_WRITE_PUT);
    int64_t rv1 = op.rv;
    assert_true(rv1 > 0);
    assert_int_equal(obj_rv(op.result), rv1);
    assert_int_equal(obj_rv(obj), rv1); /* the PUT object is completed in place */
    assert_result_json(&op);
    store_op_clear(&op);
    json_decref(obj);

    json_t *got = NULL;
    int64_t got_rv = 0;
    assert_int_equal(store_get(f->s, RES, "ns1", "a", &got, &got_rv, NULL), STORE_OK);
    assert_int_equal(got_rv, rv1);
    assert_int_equal(obj_rv(got), rv1);
    assert_int_equal(obj_v(got), 1);
    json_decref(got);
    assert_int_equal(current_rv(f->s), rv1);

    int64_t rv2 = put_at(f->s, "ns1", "a", 2, rv1); /* an update prepared against what was read */
    assert_true(rv2 > rv1);
    assert_int_equal(stored_v(f->s, "ns1", "a", &got_rv), 2);
    assert_int_equal(got_rv, rv2);

    op = del_op("ns1", "a", rv2);
    assert_int_equal(store_write(f->s, &op, 1), STORE_OK);
    int64_t rv3 = op.rv;
    assert_true(rv3 > rv2);
    assert_int_equal(op.done_kind, STORE_WRITE_DELETE);
    assert_int_equal(obj_v(op.result), 2);       /* last state */
    assert_int_equal(obj_rv(op.result), rv3);    /* carrying the deletion rv */
    assert_result_json(&op);
    store_op_clear(&op);

    /* Gone: the store answers with its code (the API words the 404). */
    got = (json_t *)1;
    assert_int_equal(store_get(f->s, RES, "ns1", "a", &got, NULL, NULL), STORE_NOT_FOUND);
    assert_null(got);
    op = del_op("ns1", "a", STORE_RV_ANY);
    assert_int_equal(store_write(f->s, &op, 1), STORE_NOT_FOUND);
    assert_null(op.result);
    assert_int_equal(op.rv, 0);
    assert_true(op.err.message[0] != '\0');
    store_op_clear(&op);
    assert_int_equal(current_rv(f->s), rv3);

    /* Same name, other namespace / resource: distinct keys. */
    put(f->s, "ns2", "a", 7);
    assert_int_equal(store_get(f->s, "languageagents", "ns2", "a", &got, NULL, NULL), STORE_NOT_FOUND);

    assert_int_equal(h->n, 4);
    assert_int_equal(h->type[0], STORE_EVENT_ADDED);
    assert_int_equal(h->type[1], STORE_EVENT_MODIFIED);
    assert_int_equal(h->type[2], STORE_EVENT_DELETED);
    assert_int_equal(h->type[3], STORE_EVENT_ADDED);
    assert_int_equal(h->rv[0], rv1);
    assert_int_equal(h->rv[1], rv2);
    assert_int_equal(h->rv[2], rv3);
    assert_int_equal(h->prev_v[1], 1);  /* MODIFIED and DELETED carry the state before */
    assert_int_equal(h->prev_v[2], 2);
    assert_int_equal(h->prev_v[0], -1);
    assert_int_equal(h->gaps, 0);
    assert_int_equal(h->bad, 0);
    assert_int_equal(feed_last_rv(store_feed(f->s)), current_rv(f->s));

    int64_t compacted = -1;
    assert_int_equal(store_compacted_rv(f->s, &compacted, NULL), STORE_OK);
    assert_int_equal(compacted, 0);
    rec_stop(h);
    rec_free(h);
}

/* The compare of the compare-and-swap, and failed writes consume no rv. */
static void test_compare_and_swap(void **state)
{
    fx_t *f = *state;
    int64_t rv1 = put_at(f->s, "n", "a", 1, STORE_RV_ABSENT);

    json_t *obj = mk_obj("n", "a", 2);
    store_op_t op = put_op("n", "a", obj, STORE_RV_ABSENT);
    assert_int_equal(store_write(f->s, &op, 1), STORE_EXISTS);   /* a create of what exists */
    assert_null(op.result);
    assert_int_equal(op.rv, 0);
    store_op_clear(&op);
    op = put_op("n", "a", obj, rv1 + 100);
    assert_int_equal(store_write(f->s, &op, 1), STORE_CONFLICT); /* not the rv it holds */
    store_op_clear(&op);
    assert_int_equal(stored_v(f->s, "n", "a", NULL), 1);

    int64_t rv2 = put_at(f->s, "n", "a", 2, rv1);
    op = put_op("n", "a", obj, rv1);                              /* prepared against a stale read */
    assert_int_equal(store_write(f->s, &op, 1), STORE_CONFLICT);
    assert_true(op.err.message[0] != '\0');
    store_op_clear(&op);
    op = del_op("n", "a", rv1);
    assert_int_equal(store_write(f->s, &op, 1), STORE_CONFLICT);
    store_op_clear(&op);
    assert_int_equal(stored_v(f->s, "n", "a", NULL), 2);

    /* An update of a key that is gone conflicts: it is not created. */
    op = put_op("n", "ghost", obj, rv2);
    assert_int_equal(store_write(f->s, &op, 1), STORE_CONFLICT);
    store_op_clear(&op);
    assert_int_equal(stored_v(f->s, "n", "ghost", NULL), -1);
    op = del_op("n", "ghost", STORE_RV_ABSENT);
    assert_int_equal(store_write(f->s, &op, 1), STORE_NOT_FOUND);
    store_op_clear(&op);

    op = del_op("n", "a", rv2);
    assert_int_equal(store_write(f->s, &op, 1), STORE_OK);
    int64_t rv3 = op.rv;
    store_op_clear(&op);
    int64_t rv4 = put(f->s, "n", "ghost", 4); /* STORE_RV_ANY creates */
    /* Five refused writes in between, and still no gap. */
    assert_int_equal(rv2, rv1 + 1);
    assert_int_equal(rv3, rv2 + 1);
    assert_int_equal(rv4, rv3 + 1);
    json_decref(obj);
}

/* Counts DELETED events that carry their rv and a deletionTimestamp. */
static int count_deleted_with_timestamp(void *ctx, const store_event_t *ev)
{
    int *saw = ctx;
    if (ev->type == STORE_EVENT_DELETED && obj_rv(ev->object) == ev->rv &&
        json_object_get(json_object_get(ev->object, "metadata"), "deletionTimestamp"))
        (*saw)++;
    return 0;
}

/* A DELETE given the last state to report stores and reports that state. */
static void test_delete_last_state(void **state)
{
    fx_t *f = *state;
    int64_t rv = put(f->s, "ns", "a", 1);
    json_t *current = NULL;
    assert_int_equal(store_get(f->s, RES, "ns", "a", &current, NULL, NULL), STORE_OK);
    json_t *last = json_deep_copy(current); /* the read is shared and read-only: change a copy */
    json_object_set_new(json_object_get(last, "metadata"), "deletionTimestamp", json_string("now"));
    store_op_t op = del_op("ns", "a", rv);
    op.object = last;
    op.current = current;
    assert_int_equal(store_write(f->s, &op, 1), STORE_OK);
    assert_string_equal(json_string_value(json_object_get(json_object_get(op.result, "metadata"),
                                                          "deletionTimestamp")),
                        "now");
    assert_int_equal(obj_rv(op.result), op.rv);
    assert_result_json(&op);
    int64_t del_rv = op.rv;
    store_op_clear(&op);
    json_decref(last);
    /* the tree read is untouched */
    assert_null(json_object_get(json_object_get(current, "metadata"), "deletionTimestamp"));
    assert_int_equal(obj_rv(current), rv);
    json_decref(current);

    /* and the event log keeps that last state, at the deletion rv */
    int64_t up_to = 0;
    store_events_opts_t o = {.resource = RES, .after_rv = rv};
    int saw = 0;
    assert_int_equal(store_events(f->s, &o, count_deleted_with_timestamp, &saw, &up_to, NULL, NULL), STORE_OK);
    assert_int_equal(saw, 1);
    assert_int_equal(up_to, del_rv);
}

/* A PUT equal to the stored object (rv aside) commits nothing. */
static void test_noop(void **state)
{
    fx_t *f = *state;
    int64_t rv = put(f->s, "ns", "a", 1);
    put(f->s, "ns", "b", 1);
    int64_t cur = current_rv(f->s);
    rec_t *h = rec_start(f->s, 16);

    /* Equal content with another resourceVersion is still a no-op. */
    json_t *same = mk_obj("ns", "a", 1);
    json_object_set_new(json_object_get(same, "metadata"), "resourceVersion", json_string("12345"));
    store_op_t op = put_op("ns", "a", same, STORE_RV_ANY);
    assert_int_equal(store_write(f->s, &op, 1), STORE_OK);
    assert_int_equal(op.done_kind, STORE_WRITE_NOOP);
    assert_int_equal(op.rv, rv);
    assert_int_equal(obj_rv(op.result), rv);
    assert_int_equal(obj_v(op.result), 1);
    assert_null(op.result_json); /* nothing was stored */
    store_op_clear(&op);

    /* Prepared against the rv read, with the tree read: the same. */
    json_t *current = NULL;
    assert_int_equal(store_get(f->s, RES, "ns", "a", &current, NULL, NULL), STORE_OK);
    op = put_op("ns", "a", same, rv);
    op.current = current;
    assert_int_equal(store_write(f->s, &op, 1), STORE_OK);
    assert_int_equal(op.done_kind, STORE_WRITE_NOOP);
    assert_int_equal(op.rv, rv);
    store_op_clear(&op);
    json_decref(current);

    /* The compare comes first: an equal PUT against a stale rv conflicts. */
    op = put_op("ns", "a", same, rv + 7);
    assert_int_equal(store_write(f->s, &op, 1), STORE_CONFLICT);
    store_op_clear(&op);

    /* A batch of no-ops publishes nothing at all. */
    json_t *same_b = mk_obj("ns", "b", 1);
    store_op_t two[2] = {put_op("ns", "a", same, STORE_RV_ANY), put_op("ns", "b", same_b, STORE_RV_ANY)};
    assert_int_equal(store_write(f->s, two, 2), STORE_OK);
    assert_int_equal(two[0].done_kind, STORE_WRITE_NOOP);
    assert_int_equal(two[1].done_kind, STORE_WRITE_NOOP);
    store_op_clear(&two[0]);
    store_op_clear(&two[1]);

    assert_int_equal(current_rv(f->s), cur);
    assert_int_equal(h->batches, 0);
    assert_int_equal(h->n, 0);
    rec_stop(h);
    rec_free(h);
    json_decref(same);
    json_decref(same_b);
}

static void test_dry_run(void **state)
{
    fx_t *f = *state;
    rec_t *h = rec_start(f->s, 16);
    json_t *obj = mk_obj("ns", "a", 1);

    store_op_t op = put_op("ns", "a", obj, STORE_RV_ABSENT);
    op.dry_run = 1;
    assert_int_equal(store_write(f->s, &op, 1), STORE_OK);
    assert_int_equal(op.done_kind, STORE_WRITE_PUT);
    assert_int_equal(op.rv, 0);
    assert_int_equal(obj_v(op.result), 1);
    assert_int_equal(obj_rv(op.result), -1); /* no resourceVersion on a dry create */
    assert_null(op.result_json);
    store_op_clear(&op);
    assert_int_equal(stored_v(f->s, "ns", "a", NULL), -1);
    assert_int_equal(current_rv(f->s), 0);

    int64_t rv = put(f->s, "ns", "a", 1);
    json_t *changed = mk_obj("ns", "a", 2);
    op = put_op("ns", "a", changed, rv);
    op.dry_run = 1;
    assert_int_equal(store_write(f->s, &op, 1), STORE_OK);
    assert_int_equal(op.done_kind, STORE_WRITE_PUT);
    assert_int_equal(op.rv, 0);
    assert_int_equal(obj_v(op.result), 2);
    store_op_clear(&op);

    op = del_op("ns", "a", rv);
    op.dry_run = 1;
    assert_int_equal(store_write(f->s, &op, 1), STORE_OK);
    assert_int_equal(op.done_kind, STORE_WRITE_DELETE);
    assert_int_equal(op.rv, 0);
    assert_non_null(op.result);
    assert_int_equal(obj_v(op.result), 1);
    store_op_clear(&op);

    /* "Run everything": a dry run still runs the check, which may refuse. */
    op = put_op("ns", "a", changed, rv);
    op.dry_run = 1;
    op.check = refuse_check;
    assert_int_equal(store_write(f->s, &op, 1), STORE_ABORTED);
    store_op_clear(&op);

    int64_t at = 0;
    assert_int_equal(stored_v(f->s, "ns", "a", &at), 1);
    assert_int_equal(at, rv);
    assert_int_equal(current_rv(f->s), rv);
    assert_int_equal(count_of(f->s, RES, "ns"), 1);
    assert_int_equal(h->n, 1); /* only the real create */
    rec_stop(h);
    rec_free(h);
    json_decref(obj);
    json_decref(changed);
}

/*
 * A dry-run DELETE answers the object read, with its rv: that tree is the
 * store's shared cache entry, which nobody may change (store.h: shared,
 * read-only) - not even to set the rv it already holds, as other threads
 * may be reading it at that moment.
 */
static void test_dry_run_delete_leaves_shared_tree_alone(void **state)
{
    fx_t *f = *state;
    int64_t rv = put(f->s, "ns", "a", 1);
    json_t *shared = NULL;
    assert_int_equal(store_get(f->s, RES, "ns", "a", &shared, NULL, NULL), STORE_OK);
    const json_t *rv_value = json_object_get(json_object_get(shared, "metadata"), "resourceVersion");
    assert_non_null(rv_value);
    store_op_t op = del_op("ns", "a", rv);
    op.dry_run = 1;
    assert_int_equal(store_write(f->s, &op, 1), STORE_OK);
    store_op_clear(&op);
    /* the same value node: the tree was not written to (a replaced node is freed under readers' feet) */
    assert_ptr_equal(json_object_get(json_object_get(shared, "metadata"), "resourceVersion"), rv_value);
    json_decref(shared);
}

static void test_abort(void **state)
{
    fx_t *f = *state;
    int64_t rv = put(f->s, "ns", "a", 1);
    json_t *next = mk_obj("ns", "a", 2);
    int seen_v = -1;
    store_op_t op = put_op("ns", "a", next, rv);
    op.check = refuse_check;
    op.check_ctx = &seen_v;
    assert_int_equal(store_write(f->s, &op, 1), STORE_ABORTED);
    assert_int_equal(seen_v, 2);           /* a PUT's check sees the object about to be stored */
    assert_string_equal(op.err.message, "refused a");
    assert_null(op.result);
    assert_null(op.result_json);
    assert_int_equal(op.rv, 0);
    store_op_clear(&op);

    op = del_op("ns", "a", rv);
    op.check = refuse_check;
    op.check_ctx = &seen_v;
    assert_int_equal(store_write(f->s, &op, 1), STORE_ABORTED);
    assert_int_equal(seen_v, 1);           /* a DELETE's check sees the last state */
    store_op_clear(&op);

    int64_t at = 0;
    assert_int_equal(stored_v(f->s, "ns", "a", &at), 1);
    assert_int_equal(at, rv);
    assert_int_equal(current_rv(f->s), rv);
    /* The writer is usable afterwards, and the refusals took no rv. */
    assert_int_equal(put(f->s, "ns", "a", 2), rv + 1);
    json_decref(next);
}

/* ==================================================================== */
/* transactions: check callbacks and snapshots                           */
/* ==================================================================== */

/* What a check callback read through the writer's transaction. */
typedef struct txn_probe {
    int get_rc, missing_rc;
    int v_of_a, v_of_obj;
    int64_t rv_of_a, txn_rv;
    int64_t n_ns1, n_ns2, n_cluster;
    char names[64];   /* store_txn_names of ns1, comma-joined */
    size_t listed;    /* store_txn_list of ns1 with the even filter */
    int filter_calls;
} txn_probe_t;

static int even_v(const json_t *obj, void *ctx)
{
    (*(int *)ctx)++;
    return obj_v(obj) % 2 == 0;
}

/* Reads through txn into p; ns1 and ns2 as the tests set them up. */
static int probe_txn(store_txn_t *txn, txn_probe_t *p, const char *a_name, lo_err_t *err)
{
    json_t *a = NULL, *missing = NULL, *names = NULL, *items = NULL;
    p->get_rc = store_txn_get(txn, RES, "ns1", a_name, &a, &p->rv_of_a, err);
    p->v_of_a = a ? obj_v(a) : -1;
    json_decref(a);
    p->missing_rc = store_txn_get(txn, RES, "ns1", "nope", &missing, NULL, err);
    p->txn_rv = store_txn_rv(txn);
    if (store_txn_count(txn, RES, "ns1", &p->n_ns1, err) != STORE_OK ||
        store_txn_count(txn, RES, "ns2", &p->n_ns2, err) != STORE_OK ||
        store_txn_count(txn, RES, "", &p->n_cluster, err) != STORE_OK ||
        store_txn_names(txn, RES, "ns1", &names, err) != STORE_OK ||
        store_txn_list(txn, RES, "ns1", even_v, &p->filter_calls, &items, err) != STORE_OK)
        return -1;
    size_t i;
    json_t *n;
    p->names[0] = '\0';
    json_array_foreach(names, i, n) {
        size_t len = strlen(p->names);
        snprintf(p->names + len, sizeof(p->names) - len, "%s%s", i ? "," : "", json_string_value(n));
    }
    p->listed = json_array_size(items);
    json_decref(names);
    json_decref(items);
    return 0;
}

static int probe_check(store_txn_t *txn, const json_t *obj, void *ctx, lo_err_t *err)
{
    txn_probe_t *p = ctx;
    p->v_of_obj = obj_v(obj);
    return probe_txn(txn, p, "a", err);
}

static void test_txn_reads(void **state)
{
    fx_t *f = *state;
    put(f->s, "ns1", "a", 5);
    put(f->s, "ns1", "b", 6);
    int64_t rv_c = put(f->s, "ns2", "c", 7);
    int64_t rv_a = 1;

    /* In the writer, the check of a create of ns1/d reads the other objects. */
    txn_probe_t p = {0};
    json_t *d = mk_obj("ns1", "d", 8);
    store_op_t op = put_op("ns1", "d", d, STORE_RV_ABSENT);
    op.check = probe_check;
    op.check_ctx = &p;
    assert_int_equal(store_write(f->s, &op, 1), STORE_OK);
    store_op_clear(&op);
    assert_int_equal(p.v_of_obj, 8);
    assert_int_equal(p.get_rc, STORE_OK);
    assert_int_equal(p.v_of_a, 5);
    assert_int_equal(p.rv_of_a, rv_a);
    assert_int_equal(p.missing_rc, STORE_NOT_FOUND);
    assert_int_equal(p.txn_rv, rv_c); /* the check runs before its own change */
    assert_int_equal(p.n_ns1, 2);
    assert_int_equal(p.n_ns2, 1);
    assert_int_equal(p.n_cluster, 0);
    assert_string_equal(p.names, "a,b");
    assert_int_equal(p.listed, 1);    /* b (6) is even, a (5) is not */
    assert_int_equal(p.filter_calls, 2);

    /* A snapshot reads the same way, and sees d now. */
    lo_err_t err = {0};
    txn_probe_t q = {0};
    store_txn_t *snap = store_snapshot(f->s, &err);
    assert_non_null(snap);
    assert_int_equal(probe_txn(snap, &q, "a", &err), 0);
    store_snapshot_end(snap);
    assert_int_equal(q.v_of_a, 5);
    assert_int_equal(q.missing_rc, STORE_NOT_FOUND);
    assert_int_equal(q.n_ns1, 3);
    assert_string_equal(q.names, "a,b,d");
    assert_int_equal(q.listed, 2);
    assert_int_equal(q.txn_rv, current_rv(f->s));
    json_decref(d);
}

/* Inside one batch, a check sees what the ops before it did. */
static int probe_e_check(store_txn_t *txn, const json_t *obj, void *ctx, lo_err_t *err)
{
    (void)obj;
    return probe_txn(txn, ctx, "e", err);
}

static void test_txn_sees_batch_so_far(void **state)
{
    fx_t *f = *state;
    put(f->s, "ns1", "a", 1);
    json_t *e = mk_obj("ns1", "e", 2), *g = mk_obj("ns1", "g", 3);
    txn_probe_t p = {0};
    store_op_t ops[2] = {put_op("ns1", "e", e, STORE_RV_ABSENT), put_op("ns1", "g", g, STORE_RV_ABSENT)};
    ops[1].check = probe_e_check;
    ops[1].check_ctx = &p;
    assert_int_equal(store_write(f->s, ops, 2), STORE_OK);  /* one submission: one batch */
    assert_int_equal(ops[0].rc, STORE_OK);
    assert_int_equal(ops[1].rc, STORE_OK);
    assert_int_equal(p.get_rc, STORE_OK);
    assert_int_equal(p.v_of_a, 2);
    assert_int_equal(p.rv_of_a, ops[0].rv);
    assert_int_equal(p.txn_rv, ops[0].rv);
    assert_int_equal(p.n_ns1, 2);
    assert_string_equal(p.names, "a,e");
    store_op_clear(&ops[0]);
    store_op_clear(&ops[1]);
    json_decref(e);
    json_decref(g);
}

/* What a check saw of ns1/a and of the count of ns1. */
typedef struct seen {
    int v_of_a;
    int64_t n_ns1;
} seen_t;

static int seen_check(store_txn_t *txn, const json_t *obj, void *ctx, lo_err_t *err)
{
    (void)obj;
    seen_t *s = ctx;
    for (int i = 0; i < 2; i++) { /* twice: the second read is the writer's memory of the first */
        json_t *a = NULL;
        if (store_txn_get(txn, RES, "ns1", "a", &a, NULL, err) != STORE_OK)
            return -1;
        int v = obj_v(a);
        json_decref(a);
        if (i == 1 && v != s->v_of_a)
            return -1;
        s->v_of_a = v;
    }
    return store_txn_count(txn, RES, "ns1", &s->n_ns1, err) == STORE_OK ? 0 : -1;
}

/*
 * Inside one batch, a key read again (the writer remembers what it read)
 * gives what the batch wrote since, and counts give the batch's creates and
 * deletes before they are written.
 */
static void test_batch_reads_follow_its_writes(void **state)
{
    fx_t *f = *state;
    put(f->s, "ns1", "a", 1);
    json_t *x = mk_obj("ns1", "x", 10), *a2 = mk_obj("ns1", "a", 2), *y = mk_obj("ns1", "y", 11);
    seen_t seen[4] = {0};
    store_op_t ops[4] = {put_op("ns1", "x", x, STORE_RV_ABSENT), put_op("ns1", "a", a2, STORE_RV_ANY),
                         put_op("ns1", "y", y, STORE_RV_ABSENT), del_op("ns1", "x", STORE_RV_ANY)};
    for (int i = 0; i < 4; i++) {
        ops[i].check = seen_check;
        ops[i].check_ctx = &seen[i];
    }
    assert_int_equal(store_write(f->s, ops, 4), STORE_OK); /* one submission: one batch */
    for (int i = 0; i < 4; i++) {
        assert_int_equal(ops[i].rc, STORE_OK);
        store_op_clear(&ops[i]);
    }
    assert_int_equal(seen[0].v_of_a, 1);
    assert_int_equal(seen[0].n_ns1, 1);
    assert_int_equal(seen[1].v_of_a, 1); /* its own change comes after its check */
    assert_int_equal(seen[1].n_ns1, 2);
    assert_int_equal(seen[2].v_of_a, 2);
    assert_int_equal(seen[2].n_ns1, 2);
    assert_int_equal(seen[3].v_of_a, 2);
    assert_int_equal(seen[3].n_ns1, 3);
    assert_int_equal(count_of(f->s, RES, "ns1"), 2); /* a, y */

    /* the next batch reads what this one committed */
    json_t *z = mk_obj("ns1", "z", 12);
    seen_t after = {0};
    store_op_t op = put_op("ns1", "z", z, STORE_RV_ABSENT);
    op.check = seen_check;
    op.check_ctx = &after;
    assert_int_equal(store_write(f->s, &op, 1), STORE_OK);
    store_op_clear(&op);
    assert_int_equal(after.v_of_a, 2);
    assert_int_equal(after.n_ns1, 2);
    assert_int_equal(count_of(f->s, RES, "ns1"), 3);
    json_decref(x);
    json_decref(a2);
    json_decref(y);
    json_decref(z);
}

/* A snapshot sees one committed state, whatever is committed after it. */
static void test_snapshot(void **state)
{
    fx_t *f = *state;
    int64_t rv1 = put(f->s, "ns1", "a", 1);
    lo_err_t err = {0};
    store_txn_t *snap = store_snapshot(f->s, &err);
    assert_non_null(snap);
    assert_int_equal(store_txn_rv(snap), rv1);

    put(f->s, "ns1", "a", 2);
    put(f->s, "ns1", "b", 3);
    json_t *a = NULL, *b = NULL;
    int64_t rv = 0;
    assert_int_equal(store_txn_get(snap, RES, "ns1", "a", &a, &rv, &err), STORE_OK);
    assert_int_equal(obj_v(a), 1);
    assert_int_equal(rv, rv1);
    assert_int_equal(store_txn_get(snap, RES, "ns1", "b", &b, NULL, &err), STORE_NOT_FOUND);
    assert_null(b);
    int64_t n = 0;
    assert_int_equal(store_txn_count(snap, RES, "ns1", &n, &err), STORE_OK);
    assert_int_equal(n, 1);
    assert_int_equal(store_txn_rv(snap), rv1);
    store_snapshot_end(snap);
    json_decref(a);

    assert_int_equal(count_of(f->s, RES, "ns1"), 2);
    assert_int_equal(stored_v(f->s, "ns1", "a", NULL), 2);
}

/* Counts follow every create and delete, and nothing else. */
static void test_counts(void **state)
{
    fx_t *f = *state;
    put(f->s, "a", "x", 1);
    put(f->s, "a", "y", 1);
    put(f->s, "a", "z", 1);
    put(f->s, "b", "x", 1);
    put(f->s, "", "cluster-scoped", 1);
    assert_int_equal(count_of(f->s, RES, "a"), 3);
    assert_int_equal(count_of(f->s, RES, "b"), 1);
    assert_int_equal(count_of(f->s, RES, ""), 1);
    assert_int_equal(count_of(f->s, RES, "none"), 0);
    assert_int_equal(count_of(f->s, "languageagents", "a"), 0);

    put(f->s, "a", "x", 2);                                /* an update */
    del(f->s, "a", "y");
    json_t *obj = mk_obj("a", "w", 1);
    store_op_t op = put_op("a", "w", obj, STORE_RV_ABSENT); /* a dry create */
    op.dry_run = 1;
    assert_int_equal(store_write(f->s, &op, 1), STORE_OK);
    store_op_clear(&op);
    op = put_op("a", "w", obj, STORE_RV_ABSENT);            /* a refused create */
    op.check = refuse_check;
    assert_int_equal(store_write(f->s, &op, 1), STORE_ABORTED);
    store_op_clear(&op);
    assert_int_equal(count_of(f->s, RES, "a"), 2);
    put(f->s, "a", "y", 3);                                /* created again */
    assert_int_equal(count_of(f->s, RES, "a"), 3);
    json_decref(obj);

    /* A database from before the counts table is counted once, at open. */
    store_close(f->s);
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "DROP TABLE counts; DELETE FROM meta WHERE k = 'counts_ready'", NULL, NULL,
                                  NULL),
                     SQLITE_OK);
    sqlite3_close(db);
    f->s = open_store(f->path);
    assert_int_equal(count_of(f->s, RES, "a"), 3);
    assert_int_equal(count_of(f->s, RES, "b"), 1);
    assert_int_equal(count_of(f->s, RES, ""), 1);
    del(f->s, "b", "x");
    assert_int_equal(count_of(f->s, RES, "b"), 0);
    /* and only once: a reopen does not count again on top */
    store_close(f->s);
    f->s = open_store(f->path);
    assert_int_equal(count_of(f->s, RES, "a"), 3);
}

/* ==================================================================== */
/* lists                                                                 */
/* ==================================================================== */

static int list(store_t *s, const store_list_opts_t *o, store_list_result_t *out)
{
    lo_err_t err = {0};
    int rc = store_list(s, o, out, &err);
    lo_err_clear(&err);
    return rc;
}

static const char *item_key(const json_t *items, size_t i, const char *field)
{
    return json_string_value(json_object_get(json_object_get(json_array_get(items, i), "metadata"), field));
}

static int key_cmp(const void *a, const void *b)
{
    const char *const *x = a, *const *y = b;
    int c = strcmp(x[0], y[0]);
    return c ? c : strcmp(x[1], y[1]);
}

static void test_list_order(void **state)
{
    fx_t *f = *state;
    /* Byte-wise traps: upper case before lower, '-' before digits, "" first. */
    const char *keys[][2] = {{"b", "x"}, {"a", "a1"}, {"a", "B"}, {"", "zz"}, {"a", "a-1"},
                             {"B", "q"}, {"a", "a"},  {"b", "a"}, {"", "c"}};
    size_t n = sizeof(keys) / sizeof(*keys);
    for (size_t i = 0; i < n; i++)
        put(f->s, keys[i][0], keys[i][1], (int)i);
    put(f->s, "a", "other-resource-is-not-listed", 0);
    {
        /* an object of another resource, same namespace */
        json_t *o = mk_obj("a", "x", 0);
        store_op_t op = put_op("a", "x", o, STORE_RV_ANY);
        op.resource = "languageagents";
        assert_int_equal(store_write(f->s, &op, 1), STORE_OK);
        store_op_clear(&op);
        json_decref(o);
    }
    del(f->s, "a", "other-resource-is-not-listed");
    qsort(keys, n, sizeof(*keys), key_cmp);

    store_list_opts_t o = {.resource = RES};
    store_list_result_t r;
    assert_int_equal(list(f->s, &o, &r), STORE_OK);
    assert_int_equal(json_array_size(r.items), n);
    for (size_t i = 0; i < n; i++) {
        assert_string_equal(item_key(r.items, i, "namespace"), keys[i][0]);
        assert_string_equal(item_key(r.items, i, "name"), keys[i][1]);
        assert_true(obj_rv(json_array_get(r.items, i)) > 0);
    }
    assert_int_equal(r.rv, current_rv(f->s));
    assert_int_equal(r.more, 0);
    assert_null(r.last_ns);
    store_list_result_free(&r);

    o.ns = "a";
    assert_int_equal(list(f->s, &o, &r), STORE_OK);
    assert_int_equal(json_array_size(r.items), 4);
    assert_string_equal(item_key(r.items, 0, "name"), "B");
    assert_string_equal(item_key(r.items, 1, "name"), "a");
    assert_string_equal(item_key(r.items, 2, "name"), "a-1");
    assert_string_equal(item_key(r.items, 3, "name"), "a1");
    store_list_result_free(&r);

    o.ns = "none";
    assert_int_equal(list(f->s, &o, &r), STORE_OK);
    assert_int_equal(json_array_size(r.items), 0);
    store_list_result_free(&r);
}

static int even_filter(const json_t *obj, void *ctx)
{
    int *calls = ctx;
    (*calls)++;
    return obj_v(obj) % 2 == 0;
}

/*
 * Pages through the list with limit and continue keys, at the rv of the
 * first page, and checks every matching object comes exactly once and in
 * order. Between pages, mutate() changes the store.
 */
static void page_all(store_t *s, const char *ns, size_t limit, int use_filter, const char *const *want,
                     size_t n_want, void (*mutate)(store_t *, int page))
{
    int calls = 0;
    store_list_opts_t o = {.resource = RES, .ns = ns, .limit = limit};
    if (use_filter) {
        o.filter = even_filter;
        o.filter_ctx = &calls;
    }
    size_t seen = 0;
    char *after_ns = NULL, *after_name = NULL;
    for (int page = 0;; page++) {
        store_list_result_t r;
        assert_int_equal(list(s, &o, &r), STORE_OK);
        if (page == 0)
            o.at_rv = r.rv;
        assert_int_equal(r.rv, o.at_rv);
        size_t got = json_array_size(r.items);
        assert_true(got <= limit);
        for (size_t i = 0; i < got; i++) {
            char key[80];
            snprintf(key, sizeof(key), "%s/%s", item_key(r.items, i, "namespace"), item_key(r.items, i, "name"));
            assert_true(seen < n_want);
            assert_string_equal(key, want[seen]);
            if (use_filter)
                assert_int_equal(obj_v(json_array_get(r.items, i)) % 2, 0);
            seen++;
        }
        free(after_ns);
        free(after_name);
        after_ns = after_name = NULL;
        if (!r.more) {
            assert_int_equal(r.remaining, 0);
            store_list_result_free(&r);
            break;
        }
        assert_int_equal(got, limit);
        assert_int_equal(r.remaining, (int64_t)(n_want - seen));
        assert_string_equal(r.last_ns, item_key(r.items, got - 1, "namespace"));
        assert_string_equal(r.last_name, item_key(r.items, got - 1, "name"));
        after_ns = r.last_ns;
        after_name = r.last_name;
        r.last_ns = r.last_name = NULL;
        o.after_ns = after_ns;
        o.after_name = after_name;
        store_list_result_free(&r);
        if (mutate)
            mutate(s, page);
    }
    assert_int_equal(seen, n_want);
    if (use_filter)
        assert_true(calls > 0);
}

/* Changes made between pages: none of them may show in later pages. */
static void churn(store_t *s, int page)
{
    char name[32];
    snprintf(name, sizeof(name), "zz-new-%d", page);
    put(s, "n1", name, 2);           /* a new matching object after the cursor */
    put(s, "n2", "o00", 2 * (page + 1)); /* a new object before the cursor, then changed */
    if (page == 0) {
        del(s, "n2", "o10");         /* not yet listed */
        put(s, "n2", "o12", 3);      /* no longer matching */
        put(s, "n2", "o14", 4);      /* modified, still matching */
    }
}

static void test_list_paging(void **state)
{
    fx_t *f = *state;
    const char *nss[] = {"n0", "n1", "n2"};
    char want_buf[64][24];
    const char *want[64], *want_all[64];
    size_t n_even = 0, n_all = 0;
    for (int i = 0; i < 3; i++) {
        for (int j = 0; j < 15; j++) {
            char name[16];
            snprintf(name, sizeof(name), "o%02d", 15 - j); /* created out of order */
            put(f->s, nss[i], name, 15 - j);
        }
    }
    for (int i = 0; i < 3; i++) {
        for (int j = 1; j <= 15; j++) {
            snprintf(want_buf[n_all], sizeof(want_buf[0]), "%s/o%02d", nss[i], j);
            want_all[n_all] = want_buf[n_all];
            if (j % 2 == 0)
                want[n_even++] = want_buf[n_all];
            n_all++;
        }
    }
    for (size_t limit = 1; limit <= 8; limit += 3) {
        page_all(f->s, NULL, limit, 0, want_all, n_all, NULL);
        page_all(f->s, NULL, limit, 1, want, n_even, NULL);
    }
    page_all(f->s, "n1", 4, 0, want_all + 15, 15, NULL);
    page_all(f->s, "n1", 2, 1, want + 7, 7, NULL);
    /* Changes between pages do not show: pages are read at the first page's rv. */
    page_all(f->s, NULL, 5, 1, want, n_even, churn);
    /* And afterwards a fresh list shows the changes: n2/o10 gone, n2/o00 added. */
    const char *want_n2[15] = {"n2/o00"};
    size_t n_n2 = 1;
    for (size_t i = 30; i < 45; i++)
        if (strcmp(want_all[i], "n2/o10") != 0)
            want_n2[n_n2++] = want_all[i];
    page_all(f->s, "n2", 3, 0, want_n2, n_n2, NULL);
}

static void test_list_continue_keys(void **state)
{
    fx_t *f = *state;
    put(f->s, "a", "x", 0);
    put(f->s, "b", "x", 0);
    put(f->s, "b", "y", 0);
    put(f->s, "c", "x", 0);
    store_list_result_t r;
    /* A continue key in an earlier namespace than ns: the whole namespace follows. */
    store_list_opts_t o = {.resource = RES, .ns = "b", .after_ns = "a", .after_name = "zzz"};
    assert_int_equal(list(f->s, &o, &r), STORE_OK);
    assert_int_equal(json_array_size(r.items), 2);
    store_list_result_free(&r);
    /* In a later namespace: nothing follows. */
    o.after_ns = "c";
    o.after_name = "";
    assert_int_equal(list(f->s, &o, &r), STORE_OK);
    assert_int_equal(json_array_size(r.items), 0);
    assert_int_equal(r.more, 0);
    store_list_result_free(&r);
    /* Strictly after the key. */
    o.ns = NULL;
    o.after_ns = "b";
    o.after_name = "x";
    assert_int_equal(list(f->s, &o, &r), STORE_OK);
    assert_int_equal(json_array_size(r.items), 2);
    assert_string_equal(item_key(r.items, 0, "name"), "y");
    assert_string_equal(item_key(r.items, 1, "namespace"), "c");
    store_list_result_free(&r);
}

/* A page bounded by bytes, and a page that does not count what follows. */
static void test_list_max_bytes(void **state)
{
    fx_t *f = *state;
    size_t upto[11] = {0}; /* upto[k]: the bytes of the first k items as stored */
    for (int i = 0; i < 10; i++) {
        char name[8];
        snprintf(name, sizeof(name), "o%d", i);
        json_t *obj = mk_obj("n", name, i);
        store_op_t op = put_op("n", name, obj, STORE_RV_ABSENT);
        assert_int_equal(store_write(f->s, &op, 1), STORE_OK);
        upto[i + 1] = upto[i] + op.result_json_len;
        store_op_clear(&op);
        json_decref(obj);
    }
    store_list_opts_t o = {.resource = RES, .ns = "n", .max_bytes = 1};
    store_list_result_t r;
    assert_int_equal(list(f->s, &o, &r), STORE_OK);
    assert_int_equal(json_array_size(r.items), 1);   /* at least one item, however small the bound */
    assert_int_equal(r.more, 1);
    assert_int_equal(r.remaining, 9);
    assert_string_equal(r.last_name, "o0");
    store_list_result_free(&r);

    o.max_bytes = upto[2];                            /* full once the items hold that many bytes */
    assert_int_equal(list(f->s, &o, &r), STORE_OK);
    assert_int_equal(json_array_size(r.items), 2);
    store_list_result_free(&r);
    o.max_bytes = upto[2] + 1;
    assert_int_equal(list(f->s, &o, &r), STORE_OK);
    assert_int_equal(json_array_size(r.items), 3);
    assert_int_equal(r.remaining, 7);
    store_list_result_free(&r);
    o.max_bytes = upto[10] + 1;                         /* everything fits */
    assert_int_equal(list(f->s, &o, &r), STORE_OK);
    assert_int_equal(json_array_size(r.items), 10);
    assert_int_equal(r.more, 0);
    store_list_result_free(&r);

    /* limit and max_bytes together: whichever comes first */
    o.max_bytes = upto[5];
    o.limit = 2;
    assert_int_equal(list(f->s, &o, &r), STORE_OK);
    assert_int_equal(json_array_size(r.items), 2);
    store_list_result_free(&r);

    /* skip_remaining: the page and "more" as before, the count unknown */
    o.max_bytes = 0;
    o.limit = 3;
    o.skip_remaining = 1;
    assert_int_equal(list(f->s, &o, &r), STORE_OK);
    assert_int_equal(json_array_size(r.items), 3);
    assert_int_equal(r.more, 1);
    assert_int_equal(r.remaining, -1);
    assert_string_equal(r.last_name, "o2");
    store_list_result_free(&r);
    o.limit = 10;                                     /* exactly everything: no more */
    assert_int_equal(list(f->s, &o, &r), STORE_OK);
    assert_int_equal(json_array_size(r.items), 10);
    assert_int_equal(r.more, 0);
    store_list_result_free(&r);
}

static void test_list_at_old_rv(void **state)
{
    fx_t *f = *state;
    put(f->s, "n", "a", 1);
    put(f->s, "n", "b", 2);
    put(f->s, "m", "c", 3);
    int64_t old_rv = current_rv(f->s);
    store_list_opts_t o = {.resource = RES};
    store_list_result_t r;
    assert_int_equal(list(f->s, &o, &r), STORE_OK);
    json_t *old_items = json_incref(r.items);
    store_list_result_free(&r);
    o.ns = "n";
    assert_int_equal(list(f->s, &o, &r), STORE_OK);
    json_t *old_n = json_incref(r.items);
    store_list_result_free(&r);

    put(f->s, "n", "a", 10);
    del(f->s, "n", "b");
    put(f->s, "n", "d", 4);
    del(f->s, "m", "c");
    put(f->s, "m", "c", 30); /* deleted and created again */
    put(f->s, "m", "b", 5);
    int64_t mid_rv = put(f->s, "n", "b", 20); /* and created again */
    del(f->s, "n", "d");

    o.ns = NULL;
    o.at_rv = old_rv;
    assert_int_equal(list(f->s, &o, &r), STORE_OK);
    assert_int_equal(r.rv, old_rv);
    assert_true(json_equal(r.items, old_items));
    store_list_result_free(&r);
    o.ns = "n";
    assert_int_equal(list(f->s, &o, &r), STORE_OK);
    assert_true(json_equal(r.items, old_n));
    store_list_result_free(&r);

    /* At mid_rv: m/b, m/c(30), n/a(10), n/b(20), n/d(4). */
    o.ns = NULL;
    o.at_rv = mid_rv;
    assert_int_equal(list(f->s, &o, &r), STORE_OK);
    assert_int_equal(json_array_size(r.items), 5);
    const char *names[] = {"b", "c", "a", "b", "d"};
    int vs[] = {5, 30, 10, 20, 4};
    for (size_t i = 0; i < 5; i++) {
        assert_string_equal(item_key(r.items, i, "name"), names[i]);
        assert_int_equal(obj_v(json_array_get(r.items, i)), vs[i]);
        assert_true(obj_rv(json_array_get(r.items, i)) <= mid_rv);
    }
    store_list_result_free(&r);

    /* at_rv = current equals a plain list. */
    o.at_rv = 0;
    assert_int_equal(list(f->s, &o, &r), STORE_OK);
    json_t *now = json_incref(r.items);
    int64_t now_rv = r.rv;
    store_list_result_free(&r);
    o.at_rv = now_rv;
    assert_int_equal(list(f->s, &o, &r), STORE_OK);
    assert_true(json_equal(r.items, now));
    assert_int_equal(json_array_size(now), 4);
    store_list_result_free(&r);

    json_decref(old_items);
    json_decref(old_n);
    json_decref(now);
}

/*
 * Lists at older rvs against a record: 600 random creates, updates and
 * deletes over 3 namespaces and 12 names; the whole state is recorded at
 * each rv; then lists at 200 random past rvs, for every namespace or one,
 * in pages of random sizes (continue keys) must give exactly the recorded
 * state, item for item.
 */
#define HIST_OPS 600
#define HIST_KEYS 36

static void test_list_at_old_rv_matches_a_record(void **state)
{
    fx_t *f = *state;
    static const char *const nss[] = {"a", "b", "c"};
    static const char *const names[] = {"k00", "k01", "k02", "k03", "k04", "k05",
                                        "k06", "k07", "k08", "k09", "k10", "k11"};
    static int vals[HIST_OPS + 1][HIST_KEYS];   /* value of each key at each op (-1: absent) */
    static int64_t rvs[HIST_OPS + 1];
    unsigned int rnd = 4242;
    for (int k = 0; k < HIST_KEYS; k++)
        vals[0][k] = -1;
    rvs[0] = current_rv(f->s);
    for (int i = 1; i <= HIST_OPS; i++) {
        memcpy(vals[i], vals[i - 1], sizeof(vals[i]));
        rnd = rnd * 1103515245u + 12345u;
        int k = (int)((rnd >> 8) % HIST_KEYS);
        const char *ns = nss[k / 12], *name = names[k % 12];
        if (vals[i][k] >= 0 && (rnd >> 20) % 3 == 0) {
            rvs[i] = del(f->s, ns, name);
            vals[i][k] = -1;
        } else {
            rvs[i] = put(f->s, ns, name, i);
            vals[i][k] = i;
        }
    }
    for (int t = 0; t < 200; t++) {
        rnd = rnd * 1103515245u + 12345u;
        int i = 1 + (int)((rnd >> 8) % HIST_OPS);
        int one_ns = (rnd >> 4) & 1;
        const char *ns = one_ns ? nss[(rnd >> 12) % 3] : NULL;
        size_t page = 1 + (rnd >> 16) % 7;
        json_t *got = json_array();
        store_list_opts_t o = {.resource = RES, .ns = ns, .at_rv = rvs[i], .limit = page};
        char *after_ns = NULL, *after_name = NULL;
        for (;;) {
            store_list_result_t r;
            o.after_ns = after_ns;
            o.after_name = after_name;
            assert_int_equal(list(f->s, &o, &r), STORE_OK);
            assert_int_equal(r.rv, rvs[i]);
            json_array_extend(got, r.items);
            free(after_ns);
            free(after_name);
            after_ns = r.last_ns;
            after_name = r.last_name;
            r.last_ns = r.last_name = NULL;
            int more = r.more;
            store_list_result_free(&r);
            if (!more)
                break;
        }
        size_t at = 0;
        for (int k = 0; k < HIST_KEYS; k++) {
            if (vals[i][k] < 0 || (ns && strcmp(ns, nss[k / 12]) != 0))
                continue;
            const json_t *item = json_array_get(got, at++);
            if (item == NULL || strcmp(obj_name(item), names[k % 12]) != 0 || obj_v(item) != vals[i][k])
                fail_msg("list at rv %lld (op %d, ns %s, pages of %zu): item %zu is %s=%d, want %s/%s=%d",
                         (long long)rvs[i], i, ns ? ns : "*", page, at - 1, item ? obj_name(item) : "(none)",
                         item ? obj_v(item) : -1, nss[k / 12], names[k % 12], vals[i][k]);
        }
        assert_int_equal(json_array_size(got), at);
        free(after_ns);
        free(after_name);
        json_decref(got);
    }
}

static void test_future_and_expired(void **state)
{
    fx_t *f = *state;
    for (int i = 0; i < 5; i++)
        put(f->s, "n", "a", i);
    int64_t cur = current_rv(f->s);
    store_list_opts_t o = {.resource = RES, .at_rv = cur + 1};
    store_list_result_t r;
    lo_err_t err = {0};
    assert_int_equal(store_list(f->s, &o, &r, &err), STORE_FUTURE_RV);
    assert_null(r.items);
    o.at_rv = cur;
    assert_int_equal(list(f->s, &o, &r), STORE_OK);
    store_list_result_free(&r);

    /* Raise the horizon behind the store's back, as compaction will. */
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
    sqlite3_busy_timeout(db, 5000);
    assert_int_equal(sqlite3_exec(db, "UPDATE meta SET v = 3 WHERE k = 'compacted_rv'", NULL, NULL, NULL),
                     SQLITE_OK);
    sqlite3_close(db);
    int64_t compacted = 0;
    assert_int_equal(store_compacted_rv(f->s, &compacted, NULL), STORE_OK);
    assert_int_equal(compacted, 3);
    o.at_rv = 3;
    memset(&err, 0, sizeof(err));
    assert_int_equal(store_list(f->s, &o, &r, &err), STORE_EXPIRED);
    assert_true(err.message[0] != '\0'); /* the message is for the log; the API words the 410 */
    o.at_rv = 1;
    assert_int_equal(store_list(f->s, &o, &r, &err), STORE_EXPIRED);
    o.at_rv = 4;
    assert_int_equal(list(f->s, &o, &r), STORE_OK);
    assert_int_equal(json_array_size(r.items), 1);
    assert_int_equal(obj_v(json_array_get(r.items, 0)), 3);
    store_list_result_free(&r);
    o.at_rv = 0;
    assert_int_equal(list(f->s, &o, &r), STORE_OK);
    store_list_result_free(&r);
    lo_err_clear(&err);
}

static void test_corrupt_body(void **state)
{
    fx_t *f = *state;
    put(f->s, "n", "a", 1);
    put(f->s, "n", "b", 1);
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
    sqlite3_busy_timeout(db, 5000);
    assert_int_equal(sqlite3_exec(db, "UPDATE objects SET body = '{\"trunc' WHERE name = 'a';"
                                      "UPDATE objects SET body = '[1]' WHERE name = 'b'",
                                  NULL, NULL, NULL),
                     SQLITE_OK);
    sqlite3_close(db);

    json_t *got = NULL;
    lo_err_t err = {0};
    assert_int_equal(store_get(f->s, RES, "n", "a", &got, NULL, &err), STORE_IO);
    assert_null(got);
    assert_non_null(strstr(err.message, "corrupt"));
    assert_int_equal(store_get(f->s, RES, "n", "b", &got, NULL, &err), STORE_IO);
    store_list_opts_t o = {.resource = RES};
    store_list_result_t r;
    assert_int_equal(store_list(f->s, &o, &r, &err), STORE_IO);
    assert_null(r.items);
    /* Writes of a corrupt object fail cleanly, and the writer still works. */
    store_op_t op = del_op("n", "a", STORE_RV_ANY);
    assert_int_equal(store_write(f->s, &op, 1), STORE_IO);
    store_op_clear(&op);
    json_t *obj = mk_obj("n", "b", 2);
    op = put_op("n", "b", obj, STORE_RV_ANY);
    assert_int_equal(store_write(f->s, &op, 1), STORE_IO);
    store_op_clear(&op);
    json_decref(obj);
    put(f->s, "n", "c", 1);
    lo_err_clear(&err);
}

/* ==================================================================== */
/* the event log                                                         */
/* ==================================================================== */

#define EV_MAX 16

typedef struct ev_log {
    size_t n;
    int stop_after;   /* 0: never stop; k: ask to stop after the k-th event */
    int64_t rv[EV_MAX];
    store_event_type_t type[EV_MAX];
    char name[EV_MAX][8];
    int v[EV_MAX];
    int prev_v[EV_MAX];   /* -1 without prev */
} ev_log_t;

static int record_event(void *ctx, const store_event_t *ev)
{
    ev_log_t *l = ctx;
    if (l->n >= EV_MAX)
        return 1;
    l->rv[l->n] = ev->rv;
    l->type[l->n] = ev->type;
    snprintf(l->name[l->n], sizeof(l->name[0]), "%s", ev->name);
    l->v[l->n] = obj_v(ev->object);
    l->prev_v[l->n] = ev->prev ? obj_v(ev->prev) : -1;
    assert_int_equal(obj_rv(ev->object), ev->rv);
    l->n++;
    return l->stop_after > 0 && (int)l->n >= l->stop_after;
}

static int events(store_t *s, const char *ns, int64_t after_rv, size_t limit, int with_prev, ev_log_t *l,
                  int64_t *up_to, int64_t *last)
{
    lo_err_t err = {0};
    store_events_opts_t o = {.resource = RES, .ns = ns, .after_rv = after_rv, .limit = limit,
                             .with_prev = with_prev};
    int rc = store_events(s, &o, record_event, l, up_to, last, &err);
    lo_err_clear(&err);
    return rc;
}

static void test_events_log(void **state)
{
    fx_t *f = *state;
    int64_t r1 = put(f->s, "n", "a", 0);
    int64_t r2 = put(f->s, "m", "b", 7);
    int64_t r3 = put(f->s, "n", "a", 1);
    int64_t r4 = del(f->s, "m", "b");
    ev_log_t l = {0};
    int64_t up_to = 0, last = 0;
    assert_int_equal(events(f->s, NULL, 0, 0, 1, &l, &up_to, &last), STORE_OK);
    assert_int_equal(up_to, r4);
    assert_int_equal(last, r4);
    assert_int_equal(l.n, 4);
    int64_t want_rv[] = {r1, r2, r3, r4};
    store_event_type_t want_type[] = {STORE_EVENT_ADDED, STORE_EVENT_ADDED, STORE_EVENT_MODIFIED, STORE_EVENT_DELETED};
    for (size_t i = 0; i < 4; i++) {
        assert_int_equal(l.rv[i], want_rv[i]);
        assert_int_equal(l.type[i], want_type[i]);
    }
    assert_int_equal(l.prev_v[2], 0); /* the MODIFIED event carries the state before it */
    assert_int_equal(l.v[2], 1);
    assert_int_equal(l.v[3], 7);      /* DELETED carries the last state */

    memset(&l, 0, sizeof(l));
    assert_int_equal(events(f->s, "n", r1, 0, 0, &l, &up_to, NULL), STORE_OK);
    assert_int_equal(l.n, 1);         /* only after r1, only namespace n, no prev asked */
    assert_int_equal(l.rv[0], r3);
    assert_int_equal(l.prev_v[0], -1);

    assert_int_equal(events(f->s, NULL, r4 + 1, 0, 0, &l, &up_to, NULL), STORE_FUTURE_RV);
}

/* Reading the log in pages: limit, the callback's stop, and how far the caller has seen. */
static void test_events_paging(void **state)
{
    fx_t *f = *state;
    int64_t rv[6];
    for (int i = 0; i < 6; i++)
        rv[i] = put(f->s, i % 2 ? "odd" : "even", "a", i);
    put(f->s, "even", "b", 100); /* the newest */

    /* Pages of two: each ends at the rv of its last event; the last page ran to the end. */
    int64_t after = 0, up_to = 0, last = 0;
    size_t total = 0;
    int pages = 0;
    for (;;) {
        ev_log_t l = {0};
        assert_int_equal(events(f->s, NULL, after, 2, 0, &l, &up_to, &last), STORE_OK);
        assert_int_equal(up_to, current_rv(f->s));
        total += l.n;
        pages++;
        if (l.n > 0)
            assert_int_equal(l.rv[0], after + 1);
        if (l.n < 2) {
            assert_int_equal(last, up_to);
            break;
        }
        assert_int_equal(last, l.rv[1]);
        after = last;
        if (last == up_to)
            break;
    }
    assert_int_equal(total, 7);
    assert_int_equal(pages, 4);

    /* The limit counts matching events only; last says how far the caller has seen. */
    ev_log_t l = {0};
    assert_int_equal(events(f->s, "odd", 0, 2, 0, &l, &up_to, &last), STORE_OK);
    assert_int_equal(l.n, 2);
    assert_int_equal(l.rv[0], rv[1]);
    assert_int_equal(l.rv[1], rv[3]);
    assert_int_equal(last, rv[3]);
    memset(&l, 0, sizeof(l));
    assert_int_equal(events(f->s, "odd", rv[3], 2, 0, &l, &up_to, &last), STORE_OK);
    assert_int_equal(l.n, 1);
    assert_int_equal(l.rv[0], rv[5]);
    assert_int_equal(last, up_to); /* ran to the end: nothing in "odd" up to up_to was left out */

    /* The callback stops the read after the event it was given. */
    memset(&l, 0, sizeof(l));
    l.stop_after = 1;
    assert_int_equal(events(f->s, NULL, rv[1], 0, 0, &l, &up_to, &last), STORE_OK);
    assert_int_equal(l.n, 1);
    assert_int_equal(last, rv[2]);

    /* Nothing after: an empty read that ran to the end. */
    memset(&l, 0, sizeof(l));
    assert_int_equal(events(f->s, NULL, up_to, 5, 0, &l, &up_to, &last), STORE_OK);
    assert_int_equal(l.n, 0);
    assert_int_equal(last, up_to);
}

/* ---- compaction ---- */

static int64_t sql_int(const char *path, const char *sql)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    int64_t n = -1;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    sqlite3_busy_timeout(db, 5000);
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
    if (sqlite3_step(st) == SQLITE_ROW)
        n = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return n;
}

static int64_t count_events(const char *path)
{
    return sql_int(path, "SELECT COUNT(*) FROM events");
}

static void test_compaction(void **state)
{
    fx_t *f = *state;
    for (int i = 0; i < 10; i++)
        put(f->s, "n", "a", i);
    put(f->s, "n", "b", 100);
    int64_t b_gone = del(f->s, "n", "b");
    int64_t keep_tail = put(f->s, "n", "c", 5);
    put(f->s, "n", "a", 10);
    int64_t cur = current_rv(f->s);
    assert_int_equal(count_events(f->path), 14);

    lo_err_t err = {0};
    int64_t horizon = 0;
    /* time keeps everything younger than an hour: nothing may go */
    assert_int_equal(store_compact(f->s, 2, 3600, &horizon, &err), STORE_OK);
    assert_int_equal(horizon, 0);
    assert_int_equal(count_events(f->path), 14);

    put(f->s, "n", "a", 11);
    cur = current_rv(f->s);
    assert_int_equal(store_compact(f->s, 2, 0, &horizon, &err), STORE_OK);
    assert_int_equal(horizon, cur - 2);
    int64_t compacted = 0;
    assert_int_equal(store_compacted_rv(f->s, &compacted, NULL), STORE_OK);
    assert_int_equal(compacted, horizon);
    assert_true(b_gone < horizon);
    assert_int_equal(keep_tail, horizon);
    /* kept: a's last event before the horizon (rv 10, superseded only after it), c, a's two newest */
    assert_int_equal(count_events(f->path), 4);
    /* once more changes nothing: the horizon stays, nothing else goes */
    int64_t again = 0;
    assert_int_equal(store_compact(f->s, 2, 0, &again, &err), STORE_OK);
    assert_int_equal(again, horizon);
    assert_int_equal(count_events(f->path), 4);

    /* lists and watches from before the horizon are expired; at and after it they are whole */
    store_list_opts_t o = {.resource = RES, .at_rv = horizon - 1};
    store_list_result_t r;
    assert_int_equal(store_list(f->s, &o, &r, &err), STORE_EXPIRED);
    ev_log_t l = {0};
    int64_t up_to;
    assert_int_equal(events(f->s, NULL, horizon - 1, 0, 0, &l, &up_to, NULL), STORE_EXPIRED);
    assert_int_equal(l.n, 0);
    assert_int_equal(events(f->s, NULL, horizon, 0, 0, &l, &up_to, NULL), STORE_OK);
    assert_int_equal(l.n, 2);   /* a's two newest writes: everything after the horizon */
    o.at_rv = horizon + 1;
    assert_int_equal(list(f->s, &o, &r), STORE_OK);
    assert_int_equal(json_array_size(r.items), 2);   /* a (v10, as of that rv) and c; b is gone */
    assert_int_equal(obj_v(json_array_get(r.items, 0)), 10);
    store_list_result_free(&r);
    /* the current state is untouched, and rvs keep growing */
    o.at_rv = 0;
    assert_int_equal(list(f->s, &o, &r), STORE_OK);
    assert_int_equal(json_array_size(r.items), 2);
    assert_int_equal(obj_v(json_array_get(r.items, 0)), 11);
    store_list_result_free(&r);
    assert_int_equal(put(f->s, "n", "d", 1), cur + 1);
    lo_err_clear(&err);
}

/* ==================================================================== */
/* restarts and options                                                  */
/* ==================================================================== */

static void test_reopen(void **state)
{
    fx_t *f = *state;
    put(f->s, "n", "a", 1);
    put(f->s, "n", "b", 2);
    int64_t rv_c = put(f->s, "n", "c", 3);
    int64_t rv_del = del(f->s, "n", "c"); /* the newest object goes */
    assert_true(rv_del > rv_c);
    store_close(f->s);

    f->s = open_store(f->path);
    assert_int_equal(current_rv(f->s), rv_del);
    assert_int_equal(feed_last_rv(store_feed(f->s)), rv_del); /* the feed starts after what is stored */
    assert_int_equal(stored_v(f->s, "n", "b", NULL), 2);
    assert_int_equal(stored_v(f->s, "n", "c", NULL), -1);
    int64_t rv = put(f->s, "n", "d", 4);
    assert_int_equal(rv, rv_del + 1);

    /* Even with the newest event gone (as compaction may do), rvs are not reused. */
    store_close(f->s);
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
    char sql[96];
    snprintf(sql, sizeof(sql), "DELETE FROM events WHERE id >= %" PRId64, rv_c);
    assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    f->s = open_store(f->path);
    assert_int_equal(current_rv(f->s), rv);
    assert_true(put(f->s, "n", "e", 5) > rv);
}

static void test_open_options(void **state)
{
    fx_t *f = *state;
    lo_err_t err = {0};
    store_options_t mem = {.path = ":memory:"};
    assert_null(store_open(&mem, &err));
    assert_true(err.message[0] != '\0');
    memset(&err, 0, sizeof(err));
    store_options_t bad = {.path = "/nonexistent-dir/x/store.db"};
    assert_null(store_open(&bad, &err));
    assert_true(err.message[0] != '\0');

    int64_t rv = put(f->s, "n", "a", 1);
    store_close(f->s);
    store_options_t full = {.path = f->path, .sync_full = 1};
    f->s = store_open(&full, &err);
    assert_non_null(f->s);
    assert_true(put(f->s, "n", "b", 1) > rv);
    assert_string_equal(store_event_type_name(STORE_EVENT_MODIFIED), "MODIFIED");
    lo_err_clear(&err);
}

/* ==================================================================== */
/* the writer: group commit, isolation, order, back-pressure             */
/* ==================================================================== */

/*
 * (a) Ops queued while the writer is busy are committed together: one
 * transaction, one feed batch, for many ops, each answered.
 */
#define BATCHED 100

static void test_batching(void **state)
{
    fx_t *f = *state;
    rec_t *h = rec_start(f->s, 4 * BATCHED);
    static gate_t g;
    pending_t p = PENDING_INIT;
    store_op_t gate_op, ops[BATCHED];
    json_t *gate_obj = mk_obj("gate", "gate", 0), *objs[BATCHED];
    submit_gated(f->s, &g, &gate_op, gate_obj, &p);
    for (int i = 0; i < BATCHED; i++) { /* one submission each, as concurrent requests make */
        char name[16];
        snprintf(name, sizeof(name), "o%03d", i);
        objs[i] = mk_obj("n", name, i);
        ops[i] = put_op("n", json_string_value(json_object_get(json_object_get(objs[i], "metadata"), "name")),
                        objs[i], STORE_RV_ABSENT);
        assert_int_equal(store_submit(f->s, &ops[i], 1, pending_done, &p), STORE_OK);
    }
    gate_open(&g);
    pending_wait(&p, BATCHED + 1);
    assert_int_equal(gate_op.rc, STORE_OK);
    for (int i = 0; i < BATCHED; i++) {
        assert_int_equal(ops[i].rc, STORE_OK);
        assert_int_equal(ops[i].done_kind, STORE_WRITE_PUT);
        assert_int_equal(ops[i].rv, gate_op.rv + 1 + i); /* in submission order, gap-free */
        store_op_clear(&ops[i]);
        json_decref(objs[i]);
    }
    store_op_clear(&gate_op);
    json_decref(gate_obj);
    /* everything queued behind the gate joined its transaction */
    assert_int_equal(h->batches, 1);
    assert_int_equal(h->max_batch, BATCHED + 1);
    assert_int_equal(h->n, BATCHED + 1);

    /* Without a gate: submissions in a burst still share transactions. */
    size_t before = h->batches;
    pending_t q = PENDING_INIT;
    for (int i = 0; i < BATCHED; i++) {
        objs[i] = mk_obj("n", "burst", i);
        ops[i] = put_op("n", "burst", objs[i], STORE_RV_ANY);
        assert_int_equal(store_submit(f->s, &ops[i], 1, pending_done, &q), STORE_OK);
    }
    pending_wait(&q, BATCHED);
    for (int i = 0; i < BATCHED; i++) {
        assert_int_equal(ops[i].rc, STORE_OK);
        if (i > 0)
            assert_int_equal(ops[i].rv, ops[i - 1].rv + 1);
        store_op_clear(&ops[i]);
        json_decref(objs[i]);
    }
    print_message("a burst of %d submissions: %zu transactions\n", BATCHED, h->batches - before);
    assert_true(h->batches - before < BATCHED);
    assert_true(h->multi >= 2);
    assert_int_equal(h->gaps, 0);
    assert_int_equal(h->bad, 0);
    assert_int_equal(stored_v(f->s, "n", "burst", NULL), BATCHED - 1);
    rec_stop(h);
    rec_free(h);
}

/* A submission larger than a batch spans transactions; done runs once, after every op is answered. */
typedef struct big {
    store_op_t *ops;
    size_t n;
    int calls;          /* done() calls */
    size_t unanswered;  /* ops without an answer when done() ran */
    pending_t p;
} big_t;

static void big_done(void *ctx)
{
    big_t *b = ctx;
    b->calls++;
    for (size_t i = 0; i < b->n; i++)
        if (b->ops[i].rc == RC_UNANSWERED)
            b->unanswered++;
    pending_done(&b->p);
}

static void test_large_submission(void **state)
{
    fx_t *f = *state;
    enum { N = 2 * STORE_BATCH_MAX + 100 };
    rec_t *h = rec_start(f->s, N);
    big_t b = {.n = N, .p = PENDING_INIT};
    b.ops = calloc(N, sizeof(*b.ops));
    json_t **objs = calloc(N, sizeof(*objs));
    char (*names)[16] = calloc(N, sizeof(*names));
    for (size_t i = 0; i < N; i++) {
        snprintf(names[i], sizeof(names[0]), "o%04zu", i);
        objs[i] = mk_obj("n", names[i], (int)i);
        b.ops[i] = put_op("n", names[i], objs[i], STORE_RV_ABSENT);
    }
    assert_int_equal(store_submit(f->s, b.ops, N, big_done, &b), STORE_OK);
    pending_wait(&b.p, 1);
    put(f->s, "n", "after", 0); /* a later answer: done() is not called again meanwhile */
    assert_int_equal(b.calls, 1);
    assert_int_equal(b.unanswered, 0);
    for (size_t i = 0; i < N; i++) {
        assert_int_equal(b.ops[i].rc, STORE_OK);
        if (i > 0)
            assert_int_equal(b.ops[i].rv, b.ops[i - 1].rv + 1);
        store_op_clear(&b.ops[i]);
        json_decref(objs[i]);
    }
    assert_int_equal(h->n, N + 1);
    assert_true(h->batches >= 4);      /* ceil(N / STORE_BATCH_MAX) + the later put */
    assert_true(h->max_batch <= STORE_BATCH_MAX);
    assert_int_equal(h->gaps, 0);
    assert_int_equal(count_of(f->s, RES, "n"), N + 1);
    rec_stop(h);
    rec_free(h);
    free(names);
    free(objs);
    free(b.ops);
}

/*
 * (b) One failing op between two good ones, in one transaction: the good
 * ones are stored with consecutive rvs, the bad one leaves no trace.
 */
static void test_savepoint_isolation(void **state)
{
    fx_t *f = *state;
    int64_t rv_x = put(f->s, "n", "x", 0);
    rec_t *h = rec_start(f->s, 16);
    json_t *a = mk_obj("n", "a", 1), *b = mk_obj("n", "b", 2), *c = mk_obj("n", "c", 3);

    /* a check that refuses */
    store_op_t ops[3] = {put_op("n", "a", a, STORE_RV_ABSENT), put_op("n", "b", b, STORE_RV_ABSENT),
                         put_op("n", "c", c, STORE_RV_ABSENT)};
    ops[1].check = refuse_check;
    assert_int_equal(store_write(f->s, ops, 3), STORE_OK);
    assert_int_equal(ops[0].rc, STORE_OK);
    assert_int_equal(ops[1].rc, STORE_ABORTED);
    assert_string_equal(ops[1].err.message, "refused b");
    assert_null(ops[1].result);
    assert_int_equal(ops[2].rc, STORE_OK);
    assert_int_equal(ops[0].rv, rv_x + 1);
    assert_int_equal(ops[2].rv, ops[0].rv + 1);  /* gap-free around the failure */
    int64_t rv_a = ops[0].rv;
    for (int i = 0; i < 3; i++)
        store_op_clear(&ops[i]);
    assert_int_equal(stored_v(f->s, "n", "b", NULL), -1);
    assert_int_equal(count_of(f->s, RES, "n"), 3);
    assert_int_equal(h->batches, 1);               /* one transaction ... */
    assert_int_equal(h->n, 2);                     /* ... with the good ones only */
    assert_string_equal(h->name[0], "a");
    assert_string_equal(h->name[1], "c");

    /* a compare that fails: against a change made earlier in the same batch */
    json_t *a2 = mk_obj("n", "a", 10), *a3 = mk_obj("n", "a", 11), *x2 = mk_obj("n", "x", 12);
    store_op_t more[4] = {put_op("n", "a", a2, rv_a), put_op("n", "a", a3, rv_a),
                          put_op("n", "c", c, STORE_RV_ABSENT), put_op("n", "x", x2, rv_x)};
    assert_int_equal(store_write(f->s, more, 4), STORE_OK);
    assert_int_equal(more[0].rc, STORE_OK);
    assert_int_equal(more[1].rc, STORE_CONFLICT);  /* a moved on at more[0] */
    assert_int_equal(more[2].rc, STORE_EXISTS);
    assert_int_equal(more[3].rc, STORE_OK);
    assert_int_equal(more[3].rv, more[0].rv + 1);
    int64_t at = 0;
    assert_int_equal(stored_v(f->s, "n", "a", &at), 10);
    assert_int_equal(at, more[0].rv);
    assert_int_equal(stored_v(f->s, "n", "c", NULL), 3);
    for (int i = 0; i < 4; i++)
        store_op_clear(&more[i]);
    assert_int_equal(h->batches, 2);
    assert_int_equal(h->n, 4);
    assert_int_equal(h->gaps, 0);

    /* the event log has no trace of the failed ops either */
    ev_log_t l = {0};
    int64_t up_to = 0;
    assert_int_equal(events(f->s, NULL, rv_x, 0, 0, &l, &up_to, NULL), STORE_OK);
    assert_int_equal(l.n, 4);
    assert_string_equal(l.name[0], "a");
    assert_string_equal(l.name[1], "c");
    assert_int_equal(l.v[2], 10);
    assert_int_equal(l.v[3], 12);
    rec_stop(h);
    rec_free(h);
    json_decref(a);
    json_decref(b);
    json_decref(c);
    json_decref(a2);
    json_decref(a3);
    json_decref(x2);
}

/*
 * The database failing under one write (a row over the store's size bound:
 * SQLite itself refuses it, in the middle of the batch) fails that write
 * alone: the batch runs again without it, the others are stored with
 * consecutive rvs, and the log holds no trace of the failed one.
 */
static void test_database_failure_fails_alone(void **state)
{
    fx_t *f = *state;
    store_close(f->s);
    lo_err_t err = {0};
    store_options_t opts = {.path = f->path, .max_object_bytes = 4096};
    f->s = store_open(&opts, &err);
    assert_non_null(f->s);
    int64_t before = put(f->s, "n", "first", 0);
    rec_t *h = rec_start(f->s, 16);
    json_t *a = mk_obj("n", "a", 1), *big = mk_obj("n", "big", 2), *c = mk_obj("n", "c", 3);
    char *blob = calloc(1, 8192);
    memset(blob, 'x', 8191);
    json_object_set_new(json_object_get(big, "spec"), "blob", json_string(blob));
    free(blob);
    store_op_t ops[3] = {put_op("n", "a", a, STORE_RV_ABSENT), put_op("n", "big", big, STORE_RV_ABSENT),
                         put_op("n", "c", c, STORE_RV_ABSENT)};
    assert_int_equal(store_write(f->s, ops, 3), STORE_OK);
    assert_int_equal(ops[0].rc, STORE_OK);
    assert_int_equal(ops[1].rc, STORE_IO);
    assert_true(ops[1].err.message[0] != '\0');
    assert_null(ops[1].result);
    assert_int_equal(ops[2].rc, STORE_OK);
    assert_int_equal(ops[0].rv, before + 1);
    assert_int_equal(ops[2].rv, before + 2);
    assert_int_equal(stored_v(f->s, "n", "a", NULL), 1);
    assert_int_equal(stored_v(f->s, "n", "big", NULL), -1);
    assert_int_equal(stored_v(f->s, "n", "c", NULL), 3);
    assert_int_equal(count_of(f->s, RES, "n"), 3);
    assert_int_equal(h->batches, 1);
    assert_int_equal(h->n, 2);
    assert_int_equal(h->gaps, 0);
    for (int i = 0; i < 3; i++)
        store_op_clear(&ops[i]);
    rec_stop(h);
    rec_free(h);
    json_decref(a);
    json_decref(big);
    json_decref(c);
}

static long file_size(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? (long)st.st_size : -1;
}

/* Puts n objects (spec.v = i) under names "p<i>" in submissions of 500. */
static void put_many(store_t *s, const char *ns, int n)
{
    enum { CHUNK = 500 };
    static store_op_t ops[CHUNK];
    json_t *objs[CHUNK];
    char names[CHUNK][24];
    for (int done = 0; done < n; done += CHUNK) {
        int k = n - done < CHUNK ? n - done : CHUNK;
        for (int i = 0; i < k; i++) {
            snprintf(names[i], sizeof(names[i]), "p%08d", (int)((unsigned)(done + i) * 2654435761u % 100000000u));
            objs[i] = mk_obj(ns, names[i], done + i);
            ops[i] = put_op(ns, names[i], objs[i], STORE_RV_ANY);
        }
        assert_int_equal(store_write(s, ops, (size_t)k), STORE_OK);
        for (int i = 0; i < k; i++) {
            assert_int_equal(ops[i].rc, STORE_OK);
            store_op_clear(&ops[i]);
            json_decref(objs[i]);
        }
    }
}

/*
 * The checkpointer copies the WAL back into the database file: once the
 * writes stop, the objects are in the database itself, not only in the WAL.
 */
static void test_checkpoint_reaches_the_database(void **state)
{
    fx_t *f = *state;
    long before = file_size(f->path);
    put_many(f->s, "ck", 3000);
    long db = 0;
    for (int i = 0; i < 50 && (db = file_size(f->path)) < before + 1024 * 1024; i++)
        usleep(100 * 1000);
    assert_true(db >= before + 1024 * 1024); /* 3000 objects and their events: megabytes */
}

/*
 * Under a steady stream of writes the WAL stays bounded: the checkpointer
 * makes it start over although the writer never pauses (a WAL that only
 * starts over when the writer finds it fully copied grows for as long as the
 * writes and reads go on). Submissions are kept in flight so that the
 * writer always has work, and two threads read in short snapshots, as a busy
 * server's workers do.
 */
#define STEADY_SUBS 300
#define STEADY_OPS 500
#define STEADY_IN_FLIGHT 8

typedef struct steady {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int done;
    store_t *s;
    volatile int stop;
} steady_t;

/* A reader that keeps reading in short snapshots, as request workers do: each pins the WAL while it reads. */
static void *steady_reader(void *arg)
{
    steady_t *st = arg;
    while (!st->stop) {
        store_txn_t *txn = store_snapshot(st->s, NULL);
        json_t *obj = NULL;
        if (txn) {
            store_txn_get(txn, RES, "wal", "p00000000", &obj, NULL, NULL);
            store_snapshot_end(txn);
        }
        json_decref(obj);
    }
    return NULL;
}

static void steady_done(void *ctx)
{
    steady_t *st = ctx;
    pthread_mutex_lock(&st->mu);
    st->done++;
    pthread_cond_signal(&st->cv);
    pthread_mutex_unlock(&st->mu);
}

/* Releases what slot held (a submission that is answered). */
static void steady_clear(store_op_t *ops, json_t **objs)
{
    for (int i = 0; i < STEADY_OPS; i++) {
        assert_int_equal(ops[i].rc, STORE_OK);
        store_op_clear(&ops[i]);
        json_decref(objs[i]);
        objs[i] = NULL;
    }
}

static void test_wal_bounded_under_steady_writes(void **state)
{
    fx_t *f = *state;
    char wal[128];
    snprintf(wal, sizeof(wal), "%s-wal", f->path);
    static store_op_t ops[STEADY_IN_FLIGHT][STEADY_OPS];
    static json_t *objs[STEADY_IN_FLIGHT][STEADY_OPS];
    static char names[STEADY_IN_FLIGHT][STEADY_OPS][16];
    steady_t st = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, f->s, 0};
    pthread_t readers[2];
    for (int r = 0; r < 2; r++)
        assert_int_equal(pthread_create(&readers[r], NULL, steady_reader, &st), 0);
    long largest = 0;
    for (int sub = 0; sub < STEADY_SUBS; sub++) {
        int slot = sub % STEADY_IN_FLIGHT;
        pthread_mutex_lock(&st.mu);
        while (sub - st.done >= STEADY_IN_FLIGHT) /* answered in order: the slot's last use is done */
            pthread_cond_wait(&st.cv, &st.mu);
        pthread_mutex_unlock(&st.mu);
        if (sub >= STEADY_IN_FLIGHT)
            steady_clear(ops[slot], objs[slot]);
        for (int i = 0; i < STEADY_OPS; i++) {
            unsigned n = (unsigned)(sub * STEADY_OPS + i) * 2654435761u % 100000000u;
            snprintf(names[slot][i], sizeof(names[slot][i]), "p%08u", n);
            objs[slot][i] = mk_obj("wal", names[slot][i], sub);
            ops[slot][i] = put_op("wal", names[slot][i], objs[slot][i], STORE_RV_ANY);
        }
        assert_int_equal(store_submit(f->s, ops[slot], STEADY_OPS, steady_done, &st), STORE_OK);
        long now = file_size(wal);
        if (now > largest)
            largest = now;
    }
    pthread_mutex_lock(&st.mu);
    while (st.done < STEADY_SUBS)
        pthread_cond_wait(&st.cv, &st.mu);
    pthread_mutex_unlock(&st.mu);
    st.stop = 1;
    for (int r = 0; r < 2; r++)
        pthread_join(readers[r], NULL);
    for (int slot = 0; slot < STEADY_IN_FLIGHT; slot++)
        steady_clear(ops[slot], objs[slot]);
    /* 150 000 writes at random keys put over a GiB through the WAL; it must not keep it. Under a
     * sanitizer the readers' snapshots last long enough to starve the checkpoints now and then (seen in
     * two of five runs), which says nothing of the real build: there the figure is only reported. */
    if (UNDER_SANITIZER)
        print_message("under a sanitizer: the WAL grew to %ld bytes\n", largest);
    else if (largest > 160L * 1024 * 1024)
        fail_msg("the WAL grew to %ld bytes", largest);
}

/*
 * (c) Ops are applied in submission order across submissions and
 * batches; the feed delivers them in rv order, gap-free.
 */
#define ORDER_SUBS 200

static void test_order(void **state)
{
    fx_t *f = *state;
    rec_t *h = rec_start(f->s, 2 * ORDER_SUBS);
    pending_t p = PENDING_INIT;
    store_op_t (*ops)[2] = calloc(ORDER_SUBS, sizeof(*ops));
    json_t *(*objs)[2] = calloc(ORDER_SUBS, sizeof(*objs));
    for (int i = 0; i < ORDER_SUBS; i++) {
        objs[i][0] = mk_obj("n", "k", 2 * i);
        objs[i][1] = mk_obj("n", "j", 2 * i + 1);
        ops[i][0] = put_op("n", "k", objs[i][0], STORE_RV_ANY);
        ops[i][1] = put_op("n", "j", objs[i][1], STORE_RV_ANY);
        assert_int_equal(store_submit(f->s, ops[i], 2, pending_done, &p), STORE_OK);
        if (i == ORDER_SUBS / 2) /* let the writer catch up once: the rest come in later batches */
            pending_wait(&p, i + 1);
    }
    pending_wait(&p, ORDER_SUBS);
    int64_t prev = 0;
    for (int i = 0; i < ORDER_SUBS; i++) {
        for (int k = 0; k < 2; k++) {
            assert_int_equal(ops[i][k].rc, STORE_OK);
            assert_true(ops[i][k].rv > prev);
            prev = ops[i][k].rv;
            store_op_clear(&ops[i][k]);
            json_decref(objs[i][k]);
        }
    }
    assert_int_equal(stored_v(f->s, "n", "k", NULL), 2 * ORDER_SUBS - 2); /* the last one submitted won */
    assert_int_equal(stored_v(f->s, "n", "j", NULL), 2 * ORDER_SUBS - 1);
    assert_int_equal(h->n, 2 * ORDER_SUBS);
    assert_true(h->batches >= 2);
    for (size_t i = 0; i < h->n; i++) {
        assert_int_equal(h->v[i], (int)i); /* submission order is rv order is feed order */
        if (i > 0) {
            assert_int_equal(h->rv[i], h->rv[i - 1] + 1);
            assert_true(h->batch[i] >= h->batch[i - 1]);
        }
    }
    assert_int_equal(h->gaps, 0);
    rec_stop(h);
    rec_free(h);
    free(ops);
    free(objs);
}

/* (d) A full queue refuses a submission whole, at once, and queues nothing of it. */
static void test_queue_full(void **state)
{
    fx_t *f = *state;
    store_close(f->s);
    f->s = open_store_opts(f->path, 2);
    rec_t *h = rec_start(f->s, 16);
    static gate_t g, g2;
    pending_t p = PENDING_INIT;
    store_op_t gate_op;
    json_t *gate_obj = mk_obj("gate", "gate", 0);
    submit_gated(f->s, &g, &gate_op, gate_obj, &p); /* taken by the writer: the queue is empty */

    json_t *a = mk_obj("n", "a", 1), *b = mk_obj("n", "b", 2), *c = mk_obj("n", "c", 3), *d = mk_obj("n", "d", 4);
    store_op_t two[2] = {put_op("n", "a", a, STORE_RV_ABSENT), put_op("n", "b", b, STORE_RV_ABSENT)};
    store_op_t one = put_op("n", "c", c, STORE_RV_ABSENT);
    store_op_t pair[2] = {put_op("n", "c", c, STORE_RV_ABSENT), put_op("n", "d", d, STORE_RV_ABSENT)};
    assert_int_equal(store_submit(f->s, two, 2, pending_done, &p), STORE_OK); /* the queue is full now */
    assert_int_equal(store_submit(f->s, &one, 1, pending_done, &p), STORE_BUSY);
    assert_int_equal(store_submit(f->s, pair, 2, pending_done, &p), STORE_BUSY);
    assert_int_equal(store_write(f->s, &one, 1), STORE_BUSY); /* answered at once, not waited for */
    assert_int_equal(one.rc, RC_UNANSWERED);                  /* never seen by the writer */
    assert_int_equal(pair[0].rc, RC_UNANSWERED);
    assert_int_equal(pair[1].rc, RC_UNANSWERED);

    gate_open(&g);
    pending_wait(&p, 2);
    assert_int_equal(gate_op.rc, STORE_OK);
    assert_int_equal(two[0].rc, STORE_OK);
    assert_int_equal(two[1].rc, STORE_OK);
    assert_int_equal(two[1].rv, two[0].rv + 1);
    store_op_clear(&gate_op);
    store_op_clear(&two[0]);
    store_op_clear(&two[1]);
    put(f->s, "n", "sync", 0); /* every done() that could come has come */
    assert_int_equal(pending_count(&p), 2); /* no done() for the refused ones */
    assert_int_equal(stored_v(f->s, "n", "c", NULL), -1);
    assert_int_equal(stored_v(f->s, "n", "d", NULL), -1);
    assert_int_equal(h->n, 4);
    assert_int_equal(h->gaps, 0);

    /* A submission larger than the whole bound is taken when the queue is empty, and blocks others. */
    pending_t p2 = PENDING_INIT;
    json_t *gate_obj2 = mk_obj("gate", "gate", 1);
    submit_gated(f->s, &g2, &gate_op, gate_obj2, &p2);
    json_t *e = mk_obj("n", "e", 5);
    store_op_t three[3] = {put_op("n", "c", c, STORE_RV_ABSENT), put_op("n", "d", d, STORE_RV_ABSENT),
                           put_op("n", "e", e, STORE_RV_ABSENT)};
    one = put_op("n", "late", c, STORE_RV_ABSENT);
    assert_int_equal(store_submit(f->s, three, 3, pending_done, &p2), STORE_OK);
    assert_int_equal(store_submit(f->s, &one, 1, pending_done, &p2), STORE_BUSY);
    gate_open(&g2);
    pending_wait(&p2, 2);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(three[i].rc, STORE_OK);
        store_op_clear(&three[i]);
    }
    store_op_clear(&gate_op);
    assert_int_equal(count_of(f->s, RES, "n"), 6);
    assert_int_equal(stored_v(f->s, "n", "late", NULL), -1);
    /* and the queue takes writes again once drained */
    assert_true(put(f->s, "n", "late", 1) > 0);
    rec_stop(h);
    rec_free(h);
    json_decref(gate_obj);
    json_decref(gate_obj2);
    json_decref(a);
    json_decref(b);
    json_decref(c);
    json_decref(d);
    json_decref(e);
}

/* ==================================================================== */
/* commit rules                                                          */
/* ==================================================================== */

/*
 * The rules of the rules tests, over RES in namespace "n":
 *  - prepare sets status.double = 2 * spec.v and status.seen = how many
 *    objects namespace "p" holds as the batch left it so far; spec.v == 13
 *    fails;
 *  - settle keeps summaries/""/"all" at spec.v = the count of RES in "n"
 *    (a follow-up change), and fails the batch when a change names
 *    "fail-settle".
 */
typedef struct rules_log {
    int settles;                  /* settle calls */
    size_t last_n;                /* changes the last call saw */
    int64_t first_rv, last_rv;    /* their rvs */
    int64_t txn_rv;               /* store_txn_rv in the last call */
    int missing_rc;               /* store_txn_put of a key that does not exist */
    int deleted_prev_v;           /* prev of the last DELETED change seen, -1 if none */
} rules_log_t;

static int prepare_rule(void *ctx, store_txn_t *txn, const char *resource, const json_t *current, json_t *obj,
                        lo_err_t *err)
{
    (void)ctx;
    (void)current;
    if (strcmp(resource, RES) != 0)
        return 0;
    int v = obj_v(obj);
    if (v == 13) {
        lo_err_set(err, 0, "", "unlucky");
        return -1;
    }
    int64_t n = 0;
    if (store_txn_count(txn, RES, "p", &n, err) != STORE_OK)
        return -1;
    json_object_set_new(obj, "status", json_pack("{s:i, s:I}", "double", 2 * v, "seen", (json_int_t)n));
    return 0;
}

static int settle_rule(void *ctx, store_txn_t *txn, const store_change_t *changes, size_t n, lo_err_t *err)
{
    rules_log_t *l = ctx;
    int ours = 0;
    l->settles++;
    l->last_n = n;
    l->first_rv = n ? changes[0].rv : 0;
    l->last_rv = n ? changes[n - 1].rv : 0;
    l->txn_rv = store_txn_rv(txn);
    for (size_t i = 0; i < n; i++) {
        if (strcmp(changes[i].resource, RES) != 0)
            continue;
        ours = 1;
        if (strcmp(changes[i].name, "fail-settle") == 0) {
            lo_err_set(err, 0, "", "settle refuses %s", changes[i].name);
            return -1;
        }
        if (changes[i].type == STORE_EVENT_DELETED)
            l->deleted_prev_v = changes[i].prev ? obj_v(changes[i].prev) : -2;
    }
    if (!ours)
        return 0;
    int64_t count = 0;
    if (store_txn_count(txn, RES, "n", &count, err) != STORE_OK)
        return -1;
    json_t *summary = json_pack("{s:s, s:{s:s}, s:{s:I}}", "kind", "Summary", "metadata", "name", "all", "spec",
                                "v", (json_int_t)count);
    int rc = store_txn_put(txn, "summaries", "", "all", summary, err);
    json_decref(summary);
    lo_err_t ignored = {0};
    json_t *ghost = json_object();
    l->missing_rc = store_txn_put(txn, "summaries", "", "ghost", ghost, &ignored);
    json_decref(ghost);
    return rc == STORE_OK ? 0 : -1;
}

static json_t *status_of(const json_t *obj, const char *key)
{
    return json_object_get(json_object_get(obj, "status"), key);
}

/* prepare completes each object before it is compared and stored. */
static void test_rules_prepare(void **state)
{
    fx_t *f = *state;
    rules_log_t log = {.deleted_prev_v = -1};
    store_set_rules(f->s, &(store_rules_t){prepare_rule, NULL, &log});
    json_t *a = mk_obj("n", "a", 3);
    store_op_t op = put_op("n", "a", a, STORE_RV_ABSENT);
    assert_int_equal(store_write(f->s, &op, 1), STORE_OK);
    int64_t rv = op.rv;
    assert_int_equal(json_integer_value(status_of(op.result, "double")), 6);
    assert_result_json(&op); /* stored as completed */
    store_op_clear(&op);
    json_t *got = NULL;
    assert_int_equal(store_get(f->s, RES, "n", "a", &got, NULL, NULL), STORE_OK);
    assert_int_equal(json_integer_value(status_of(got, "double")), 6);
    json_decref(got);

    /* The no-op test comes after the rules: the same spec without the derived part changes nothing. */
    json_t *same = mk_obj("n", "a", 3);
    op = put_op("n", "a", same, rv);
    assert_int_equal(store_write(f->s, &op, 1), STORE_OK);
    assert_int_equal(op.done_kind, STORE_WRITE_NOOP);
    assert_int_equal(op.rv, rv);
    store_op_clear(&op);

    /* A failing prepare fails its op alone (STORE_IO); prepare sees the batch so far. */
    json_t *x = mk_obj("p", "x", 1), *y = mk_obj("p", "y", 13), *z = mk_obj("p", "z", 2);
    store_op_t ops[3] = {put_op("p", "x", x, STORE_RV_ABSENT), put_op("p", "y", y, STORE_RV_ABSENT),
                         put_op("p", "z", z, STORE_RV_ABSENT)};
    assert_int_equal(store_write(f->s, ops, 3), STORE_OK);
    assert_int_equal(ops[0].rc, STORE_OK);
    assert_int_equal(ops[1].rc, STORE_IO);
    assert_string_equal(ops[1].err.message, "unlucky");
    assert_int_equal(ops[2].rc, STORE_OK);
    assert_int_equal(ops[2].rv, ops[0].rv + 1);
    assert_int_equal(json_integer_value(status_of(ops[0].result, "seen")), 0);
    assert_int_equal(json_integer_value(status_of(ops[2].result, "seen")), 1); /* x, and not the failed y */
    for (int i = 0; i < 3; i++)
        store_op_clear(&ops[i]);
    assert_int_equal(stored_v(f->s, "p", "y", NULL), -1);
    json_decref(a);
    json_decref(same);
    json_decref(x);
    json_decref(y);
    json_decref(z);
}

/*
 * (e) settle's follow-ups: their own rv in the same commit, the same feed
 * batch after the changes that called for them; an equal one writes
 * nothing; a failing settle fails the whole batch.
 */
static void test_rules_settle(void **state)
{
    fx_t *f = *state;
    rules_log_t log = {.deleted_prev_v = -1};
    store_set_rules(f->s, &(store_rules_t){NULL, settle_rule, &log});
    {   /* the summary the follow-ups keep: a primary change of another resource, ignored by settle */
        json_t *s0 = json_pack("{s:s, s:{s:s}, s:{s:i}}", "kind", "Summary", "metadata", "name", "all", "spec", "v",
                               0);
        store_op_t op = {.resource = "summaries", .ns = "", .name = "all", .kind = STORE_WRITE_PUT, .object = s0,
                         .expect_rv = STORE_RV_ABSENT};
        assert_int_equal(store_write(f->s, &op, 1), STORE_OK);
        store_op_clear(&op);
        json_decref(s0);
    }
    assert_int_equal(log.settles, 1);
    rec_t *h = rec_start(f->s, 32);

    int64_t rv_a = put(f->s, "n", "a", 1);
    assert_int_equal(log.last_n, 1);
    assert_int_equal(log.last_rv, rv_a);
    assert_int_equal(log.txn_rv, rv_a);              /* settle sees the batch's writes */
    assert_int_equal(log.missing_rc, STORE_NOT_FOUND);
    json_t *summary = NULL;
    int64_t at = 0;
    lo_err_t err = {0};
    assert_int_equal(store_get(f->s, "summaries", "", "all", &summary, &at, &err), STORE_OK);
    assert_int_equal(obj_v(summary), 1);
    assert_int_equal(at, rv_a + 1);                  /* its own rv, right after */
    assert_int_equal(obj_rv(summary), at);
    json_decref(summary);
    assert_int_equal(current_rv(f->s), rv_a + 1);
    assert_int_equal(h->batches, 1);                 /* one commit, one feed batch */
    assert_int_equal(h->n, 2);
    assert_string_equal(h->name[1], "all");
    assert_int_equal(h->type[1], STORE_EVENT_MODIFIED);
    assert_int_equal(h->prev_v[1], 0);

    /* An update that leaves the count alone: the follow-up equals what is stored, nothing is written. */
    int64_t rv_a2 = put(f->s, "n", "a", 2);
    assert_int_equal(current_rv(f->s), rv_a2);
    assert_int_equal(store_get(f->s, "summaries", "", "all", &summary, &at, &err), STORE_OK);
    assert_int_equal(at, rv_a + 1);
    json_decref(summary);
    assert_int_equal(h->batches, 2);
    assert_int_equal(h->n, 3);

    /* Three changes in one batch: settle runs once for them, one follow-up after them. */
    json_t *b = mk_obj("n", "b", 1), *c = mk_obj("n", "c", 1), *d = mk_obj("n", "d", 1);
    store_op_t ops[3] = {put_op("n", "b", b, STORE_RV_ABSENT), put_op("n", "c", c, STORE_RV_ABSENT),
                         put_op("n", "d", d, STORE_RV_ABSENT)};
    int settles = log.settles;
    assert_int_equal(store_write(f->s, ops, 3), STORE_OK);
    assert_int_equal(log.settles, settles + 1);
    assert_int_equal(log.last_n, 3);
    assert_int_equal(log.first_rv, ops[0].rv);
    assert_int_equal(log.last_rv, ops[2].rv);
    assert_int_equal(store_get(f->s, "summaries", "", "all", &summary, &at, &err), STORE_OK);
    assert_int_equal(obj_v(summary), 4);
    assert_int_equal(at, ops[2].rv + 1);
    json_decref(summary);
    assert_int_equal(h->batches, 3);
    assert_int_equal(h->n, 7);
    assert_int_equal(h->batch[6], 2);
    assert_string_equal(h->name[6], "all");
    for (int i = 0; i < 3; i++)
        store_op_clear(&ops[i]);

    /* A delete: settle sees it with its last state; the count drops. */
    del(f->s, "n", "b");
    assert_int_equal(log.deleted_prev_v, 1);
    assert_int_equal(store_get(f->s, "summaries", "", "all", &summary, NULL, &err), STORE_OK);
    assert_int_equal(obj_v(summary), 3);
    json_decref(summary);

    /* A failing settle fails the whole batch: nothing stored, nothing published, no rv taken. */
    int64_t cur = current_rv(f->s);
    size_t published = h->n;
    json_t *e = mk_obj("n", "e", 1), *bad = mk_obj("n", "fail-settle", 1);
    store_op_t fail[2] = {put_op("n", "e", e, STORE_RV_ABSENT), put_op("n", "fail-settle", bad, STORE_RV_ABSENT)};
    assert_int_equal(store_write(f->s, fail, 2), STORE_OK);
    assert_int_equal(fail[0].rc, STORE_IO);
    assert_int_equal(fail[1].rc, STORE_IO);
    assert_non_null(strstr(fail[0].err.message, "settle refuses fail-settle"));
    assert_null(fail[0].result);
    store_op_clear(&fail[0]);
    store_op_clear(&fail[1]);
    assert_int_equal(current_rv(f->s), cur);
    assert_int_equal(stored_v(f->s, "n", "e", NULL), -1);
    assert_int_equal(count_of(f->s, RES, "n"), 3);
    assert_int_equal(h->n, published);
    assert_int_equal(put(f->s, "n", "e", 1), cur + 1); /* and the next write goes on from there */
    assert_int_equal(h->gaps, 0);
    assert_int_equal(h->bad, 0);
    rec_stop(h);
    rec_free(h);
    json_decref(b);
    json_decref(c);
    json_decref(d);
    json_decref(e);
    json_decref(bad);
}

/* ==================================================================== */
/* (e') a write's own rule: store_op_t.after                            */
/* ==================================================================== */

/*
 * The after rule of these tests, for a write of RES n/<name>: deletes every
 * object of RES in namespace "<name>-kids" (what a delete takes with it)
 * and sets spec.v = -7 on those in "<name>-held"; logs what it saw. fail
 * makes it fail; big makes it write an object the store refuses (the
 * database fails under it).
 */
typedef struct after_log {
    int runs;
    store_write_kind_t kind;      /* op->done_kind it saw */
    int64_t op_rv, txn_rv;        /* op->rv, and store_txn_rv: the op's change is in the txn */
    int dry_put_rc, dry_del_rc;   /* what writes answered in a dry run */
    int fail, big;
} after_log_t;

static int after_children(store_txn_t *txn, const char *ns, int mark, lo_err_t *err)
{
    json_t *items = NULL;
    if (store_txn_list(txn, RES, ns, NULL, NULL, &items, err) != STORE_OK)
        return -1;
    int rc = STORE_OK;
    for (size_t i = 0; i < json_array_size(items) && rc == STORE_OK; i++) {
        const char *name = obj_name(json_array_get(items, i));
        if (mark) {
            json_t *next = mk_obj(ns, name, -7);
            rc = store_txn_put(txn, RES, ns, name, next, err);
            json_decref(next);
        } else {
            rc = store_txn_delete(txn, RES, ns, name, err);
        }
    }
    json_decref(items);
    return rc == STORE_OK ? 0 : -1;
}

static int after_rule(store_txn_t *txn, const store_op_t *op, void *ctx, lo_err_t *err)
{
    after_log_t *l = ctx;
    char kids[64], held[64];
    l->runs++;
    l->kind = op->done_kind;
    l->op_rv = op->rv;
    l->txn_rv = store_txn_rv(txn);
    if (l->fail) {
        lo_err_set(err, 0, "", "after refuses %s", op->name);
        return -1;
    }
    if (op->dry_run) {
        lo_err_t ignored = {0};
        json_t *x = mk_obj("n", op->name, 99);
        l->dry_put_rc = store_txn_put(txn, RES, "n", op->name, x, &ignored);
        l->dry_del_rc = store_txn_delete(txn, RES, "n", op->name, &ignored);
        json_decref(x);
        lo_err_clear(&ignored);
        return 0;
    }
    if (l->big) {
        json_t *x = mk_obj("n", op->name, 7);
        char *blob = calloc(1, 8192);
        memset(blob, 'x', 8191);
        json_object_set_new(json_object_get(x, "spec"), "blob", json_string(blob));
        free(blob);
        int rc = store_txn_put(txn, RES, "n", op->name, x, err);
        json_decref(x);
        return rc == STORE_OK ? 0 : -1;
    }
    snprintf(kids, sizeof(kids), "%s-kids", op->name);
    snprintf(held, sizeof(held), "%s-held", op->name);
    return after_children(txn, kids, 0, err) == 0 && after_children(txn, held, 1, err) == 0 ? 0 : -1;
}

/* The changes of a write's after rule are the write's: the next rvs, the same commit and feed batch, in order. */
static void test_after_rule_changes_belong_to_the_write(void **state)
{
    fx_t *f = *state;
    after_log_t log = {0};
    rules_log_t rules = {.deleted_prev_v = -1};
    json_t *s0 = json_pack("{s:s, s:{s:s}, s:{s:i}}", "kind", "Summary", "metadata", "name", "all", "spec", "v", 9);
    store_op_t sop = {.resource = "summaries", .ns = "", .name = "all", .kind = STORE_WRITE_PUT, .object = s0,
                      .expect_rv = STORE_RV_ABSENT};
    assert_int_equal(store_write(f->s, &sop, 1), STORE_OK);
    store_op_clear(&sop);
    json_decref(s0);
    store_set_rules(f->s, &(store_rules_t){NULL, settle_rule, &rules}); /* keeps summaries/all at RES's count in n */
    put(f->s, "n", "a", 1);
    put(f->s, "a-kids", "k1", 11);
    put(f->s, "a-kids", "k2", 12);
    int64_t held_rv = put(f->s, "a-held", "h1", 21);
    put(f->s, "b-kids", "other", 31);
    rec_t *h = rec_start(f->s, 16);
    int settles = rules.settles;

    store_op_t op = del_op("n", "a", STORE_RV_ANY);
    op.after = after_rule;
    op.after_ctx = &log;
    assert_int_equal(store_write(f->s, &op, 1), STORE_OK);
    assert_int_equal(log.runs, 1);
    assert_int_equal(log.kind, STORE_WRITE_DELETE);
    assert_int_equal(log.op_rv, op.rv);
    assert_int_equal(log.txn_rv, op.rv);                 /* it runs after the op's own change */
    assert_int_equal(op.done_kind, STORE_WRITE_DELETE); /* the op's answer is its own */
    assert_int_equal(stored_v(f->s, "a-kids", "k1", NULL), -1);
    assert_int_equal(stored_v(f->s, "a-kids", "k2", NULL), -1);
    assert_int_equal(count_of(f->s, RES, "a-kids"), 0);
    int64_t at = 0;
    assert_int_equal(stored_v(f->s, "a-held", "h1", &at), -7);
    assert_int_equal(at, op.rv + 3);
    assert_true(at > held_rv);
    assert_int_equal(stored_v(f->s, "b-kids", "other", NULL), 31);

    /* one commit, one feed batch: the op, its rule's changes (DELETED with their last state), then settle's */
    assert_int_equal(h->batches, 1);
    assert_int_equal(h->gaps, 0);
    assert_int_equal(h->bad, 0);
    assert_int_equal(h->n, 5);
    const char *names[] = {"a", "k1", "k2", "h1", "all"};
    const store_event_type_t types[] = {STORE_EVENT_DELETED, STORE_EVENT_DELETED, STORE_EVENT_DELETED,
                                        STORE_EVENT_MODIFIED, STORE_EVENT_MODIFIED};
    const int vs[] = {1, 11, 12, -7, 0};
    for (int i = 0; i < 5; i++) {
        assert_string_equal(h->name[i], names[i]);
        assert_int_equal(h->type[i], types[i]);
        assert_int_equal(h->rv[i], op.rv + i);
        assert_int_equal(h->v[i], vs[i]);
    }
    assert_int_equal(h->prev_v[3], 21);
    /* settle ran once and saw the rule's changes as the batch's own */
    assert_int_equal(rules.settles, settles + 1);
    assert_int_equal(rules.last_n, 4);
    assert_int_equal(rules.last_rv, op.rv + 3);
    store_op_clear(&op);
    rec_stop(h);
    rec_free(h);
}

/* It runs after a no-op too, and in a dry run, where nothing it writes is written. */
static void test_after_rule_after_a_noop_and_in_a_dry_run(void **state)
{
    fx_t *f = *state;
    after_log_t log = {0};
    int64_t rv_a = put(f->s, "n", "a", 1);
    put(f->s, "a-kids", "k1", 11);
    int64_t before = current_rv(f->s);

    json_t *dry = mk_obj("n", "a", 2);
    store_op_t op = put_op("n", "a", dry, rv_a);
    op.dry_run = 1;
    op.after = after_rule;
    op.after_ctx = &log;
    assert_int_equal(store_write(f->s, &op, 1), STORE_OK);
    assert_int_equal(log.runs, 1);
    assert_int_equal(log.kind, STORE_WRITE_PUT);
    assert_int_equal(log.dry_put_rc, STORE_IO);
    assert_int_equal(log.dry_del_rc, STORE_IO);
    assert_int_equal(current_rv(f->s), before);
    assert_int_equal(stored_v(f->s, "n", "a", NULL), 1);
    store_op_clear(&op);

    json_t *same = mk_obj("n", "a", 1);
    op = put_op("n", "a", same, rv_a);
    op.after = after_rule;
    op.after_ctx = &log;
    assert_int_equal(store_write(f->s, &op, 1), STORE_OK);
    assert_int_equal(op.done_kind, STORE_WRITE_NOOP);
    assert_int_equal(log.runs, 2);
    assert_int_equal(log.kind, STORE_WRITE_NOOP);
    assert_int_equal(log.op_rv, rv_a);
    assert_int_equal(stored_v(f->s, "a-kids", "k1", NULL), -1); /* gone: what it found to do, it did */
    assert_int_equal(current_rv(f->s), before + 1);
    store_op_clear(&op);

    /* A refused write runs no rule. */
    json_t *late = mk_obj("n", "a", 3);
    op = put_op("n", "a", late, rv_a + 1);
    op.after = after_rule;
    op.after_ctx = &log;
    assert_int_equal(store_write(f->s, &op, 1), STORE_CONFLICT);
    assert_int_equal(log.runs, 2);
    store_op_clear(&op);

    /* Outside a rule (a snapshot) nothing can be written. */
    lo_err_t err = {0};
    store_txn_t *snap = store_snapshot(f->s, &err);
    assert_non_null(snap);
    json_t *x = mk_obj("n", "a", 9);
    assert_int_equal(store_txn_put(snap, RES, "n", "a", x, &err), STORE_IO);
    assert_int_equal(store_txn_delete(snap, RES, "n", "a", &err), STORE_IO);
    store_snapshot_end(snap);
    lo_err_clear(&err);
    assert_int_equal(stored_v(f->s, "n", "a", NULL), 1);
    json_decref(x);
    json_decref(dry);
    json_decref(same);
    json_decref(late);
}

/*
 * A rule that fails fails its write alone, with what the rule wrote: the
 * batch runs again without it, the others' rules run again too.
 */
static void test_after_rule_failing_fails_its_write_alone(void **state)
{
    fx_t *f = *state;
    store_close(f->s);
    lo_err_t err = {0};
    store_options_t opts = {.path = f->path, .max_object_bytes = 4096};
    f->s = store_open(&opts, &err);
    assert_non_null(f->s);
    for (int how = 0; how < 2; how++) { /* the rule fails; the database fails under what it writes */
        char b_kids[32];
        snprintf(b_kids, sizeof(b_kids), "b%d-kids", how);
        char a[8], b[8], c[8];
        snprintf(a, sizeof(a), "a%d", how);
        snprintf(b, sizeof(b), "b%d", how);
        snprintf(c, sizeof(c), "c%d", how);
        put(f->s, b_kids, "k", 1);
        int64_t before = current_rv(f->s);
        rec_t *h = rec_start(f->s, 16);
        after_log_t ok = {0}, bad = {.fail = !how, .big = how};
        json_t *oa = mk_obj("n", a, 1), *ob = mk_obj("n", b, 2), *oc = mk_obj("n", c, 3);
        store_op_t ops[3] = {put_op("n", a, oa, STORE_RV_ABSENT), put_op("n", b, ob, STORE_RV_ABSENT),
                             put_op("n", c, oc, STORE_RV_ABSENT)};
        ops[0].after = ops[1].after = ops[2].after = after_rule;
        ops[0].after_ctx = ops[2].after_ctx = &ok;
        ops[1].after_ctx = &bad;
        assert_int_equal(store_write(f->s, ops, 3), STORE_OK);
        assert_int_equal(ops[0].rc, STORE_OK);
        assert_int_equal(ops[1].rc, STORE_IO);
        assert_true(ops[1].err.message[0] != '\0');
        if (!how)
            assert_string_equal(ops[1].err.message, "after refuses b0");
        assert_null(ops[1].result);
        assert_int_equal(ops[2].rc, STORE_OK);
        assert_int_equal(ops[0].rv, before + 1);
        assert_int_equal(ops[2].rv, before + 2);
        assert_int_equal(stored_v(f->s, "n", b, NULL), -1);
        assert_int_equal(stored_v(f->s, b_kids, "k", NULL), 1);   /* unless b goes, its rule's deletes do not */
        assert_int_equal(ok.runs, 3);           /* a in the pass that failed and in the one again, c in that one */
        assert_int_equal(h->batches, 1);
        assert_int_equal(h->n, 2);
        assert_int_equal(h->gaps, 0);
        for (int i = 0; i < 3; i++)
            store_op_clear(&ops[i]);
        rec_stop(h);
        rec_free(h);
        json_decref(oa);
        json_decref(ob);
        json_decref(oc);
    }
}

/* ==================================================================== */
/* (f) compaction never stalls writers                                   */
/* ==================================================================== */

static int64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* Writes n events: PUTs in submissions of chunk ops, cycling over keys keys of namespace "c". */
static void fill(store_t *s, int n, int keys, int chunk)
{
    store_op_t *ops = calloc((size_t)chunk, sizeof(*ops));
    json_t **objs = calloc((size_t)chunk, sizeof(*objs));
    char (*names)[16] = calloc((size_t)keys, sizeof(*names));
    for (int k = 0; k < keys; k++)
        snprintf(names[k], sizeof(names[0]), "k%03d", k);
    for (int base = 0; base < n; base += chunk) {
        int m = n - base < chunk ? n - base : chunk;
        for (int i = 0; i < m; i++) {
            objs[i] = mk_obj("c", names[(base + i) % keys], base + i);
            ops[i] = put_op("c", names[(base + i) % keys], objs[i], STORE_RV_ANY);
        }
        assert_int_equal(store_write(s, ops, (size_t)m), STORE_OK);
        for (int i = 0; i < m; i++) {
            if (ops[i].rc != STORE_OK || ops[i].done_kind != STORE_WRITE_PUT)
                fail_msg("fill op %d: rc %d", base + i, ops[i].rc);
            store_op_clear(&ops[i]);
            json_decref(objs[i]);
        }
    }
    free(names);
    free(objs);
    free(ops);
}

typedef struct compactor_run {
    store_t *s;
    int64_t keep;
    int rc;
    int64_t horizon, took_us;
    int done;          /* atomic */
} compactor_run_t;

static void *compactor_main(void *arg)
{
    compactor_run_t *c = arg;
    lo_err_t err = {0};
    int64_t t0 = now_us();
    c->rc = store_compact(c->s, c->keep, 0, &c->horizon, &err);
    c->took_us = now_us() - t0;
    lo_err_clear(&err);
    __atomic_store_n(&c->done, 1, __ATOMIC_RELEASE);
    return NULL;
}

static void test_compaction_never_stalls_writers(void **state)
{
    fx_t *f = *state;
    const int valgrind = RUNNING_ON_VALGRIND;
    const int n = valgrind ? 10000 : 100000, keys = 300, keep = 1000;
    int64_t t0 = now_us();
    fill(f->s, n, keys, 2000);
    int64_t filled = current_rv(f->s);
    assert_int_equal(filled, n);
    print_message("%d events in %" PRId64 " ms\n", n, (now_us() - t0) / 1000);

    /* compaction on one thread, single writes on this one, each timed */
    compactor_run_t c = {.s = f->s, .keep = keep};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, compactor_main, &c), 0);
    int64_t worst = 0, writes = 0;
    json_t *obj = mk_obj("w", "x", 0);
    while (!__atomic_load_n(&c.done, __ATOMIC_ACQUIRE)) {
        json_object_set_new(json_object_get(obj, "spec"), "v", json_integer(writes));
        store_op_t op = put_op("w", "x", obj, STORE_RV_ANY);
        int64_t w0 = now_us();
        int rc = store_write(f->s, &op, 1);
        int64_t took = now_us() - w0;
        assert_int_equal(rc, STORE_OK);
        store_op_clear(&op);
        if (took > worst)
            worst = took;
        writes++;
    }
    pthread_join(th, NULL);
    json_decref(obj);
    print_message("compaction to %" PRId64 " in %" PRId64 " ms; %" PRId64 " writes meanwhile, the slowest %" PRId64
                  " us\n",
                  c.horizon, c.took_us / 1000, writes, worst);
    assert_int_equal(c.rc, STORE_OK);
    if (!valgrind)
        assert_true(worst < 100 * 1000);
    assert_true(writes >= 10); /* the writes really ran alongside the compaction */

    /* the horizon was planned from what was stored when it started */
    assert_true(c.horizon >= filled - keep);
    assert_true(c.horizon <= filled + writes - keep);
    int64_t compacted = 0;
    assert_int_equal(store_compacted_rv(f->s, &compacted, NULL), STORE_OK);
    assert_int_equal(compacted, c.horizon);

    /* at or before the horizon: expired for lists and watches ... */
    ev_log_t l = {0};
    int64_t up_to = 0;
    assert_int_equal(events(f->s, NULL, c.horizon - 1, 0, 0, &l, &up_to, NULL), STORE_EXPIRED);
    assert_int_equal(events(f->s, NULL, 1, 0, 0, &l, &up_to, NULL), STORE_EXPIRED);
    store_list_opts_t o = {.resource = RES, .ns = "c", .at_rv = c.horizon};
    store_list_result_t r;
    assert_int_equal(list(f->s, &o, &r), STORE_EXPIRED);
    o.at_rv = n / 2;
    assert_int_equal(list(f->s, &o, &r), STORE_EXPIRED);
    /* ... and the superseded events gone: at most one event per key at or below it */
    char sql[160];
    snprintf(sql, sizeof(sql), "SELECT COUNT(*) FROM events WHERE id <= %" PRId64, c.horizon);
    assert_true(sql_int(f->path, sql) <= keys + 1);
    snprintf(sql, sizeof(sql),
             "SELECT COUNT(*) - COUNT(DISTINCT namespace || '/' || name) FROM events WHERE id <= %" PRId64,
             c.horizon);
    assert_int_equal(sql_int(f->path, sql), 0);
    /* after it everything is kept, and a list just after it is whole */
    snprintf(sql, sizeof(sql), "SELECT COUNT(*) FROM events WHERE id > %" PRId64, c.horizon);
    assert_int_equal(sql_int(f->path, sql), current_rv(f->s) - c.horizon);
    o.at_rv = c.horizon + 1;
    assert_int_equal(list(f->s, &o, &r), STORE_OK);
    assert_int_equal(json_array_size(r.items), keys);
    store_list_result_free(&r);
    int64_t after = 0;
    assert_int_equal(events(f->s, "c", c.horizon, 1, 0, &l, &up_to, &after), STORE_OK);
    assert_int_equal(l.rv[0], c.horizon + 1);
}

/* ==================================================================== */
/* concurrency and durability                                            */
/* ==================================================================== */

#define N_THREADS 4
#define N_WRITES 500

typedef struct worker {
    store_t *s;
    int id;
    int64_t rvs[N_WRITES];
    int failures;
} worker_t;

static void *worker_main(void *arg)
{
    worker_t *w = arg;
    char ns[16];
    snprintf(ns, sizeof(ns), "t%d", w->id);
    for (int i = 0; i < N_WRITES; i++) {
        char name[16];
        snprintf(name, sizeof(name), "o%d", i % 50); /* creates, then updates */
        json_t *obj = mk_obj(ns, name, i);
        store_op_t op = put_op(ns, name, obj, STORE_RV_ANY);
        if (store_write(w->s, &op, 1) != STORE_OK || op.done_kind != STORE_WRITE_PUT)
            w->failures++;
        w->rvs[i] = op.rv;
        store_op_clear(&op);
        json_decref(obj);
        if (i % 10 == 0) { /* reads on this thread's own connection, while others write */
            json_t *got = NULL;
            if (store_get(w->s, RES, ns, name, &got, NULL, NULL) != STORE_OK || obj_v(got) != i ||
                obj_rv(got) < w->rvs[i])
                w->failures++;
            json_decref(got);
        }
    }
    return NULL;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static void test_concurrent_writes(void **state)
{
    fx_t *f = *state;
    rec_t *h = rec_start(f->s, N_THREADS * N_WRITES);
    worker_t *ws = calloc(N_THREADS, sizeof(*ws));
    pthread_t th[N_THREADS];
    for (int i = 0; i < N_THREADS; i++) {
        ws[i].s = f->s;
        ws[i].id = i;
        assert_int_equal(pthread_create(&th[i], NULL, worker_main, &ws[i]), 0);
    }
    for (int i = 0; i < N_THREADS; i++)
        pthread_join(th[i], NULL);

    int64_t *all = calloc(N_THREADS * N_WRITES, sizeof(*all));
    for (int i = 0; i < N_THREADS; i++) {
        assert_int_equal(ws[i].failures, 0);
        for (int j = 0; j < N_WRITES; j++) {
            all[i * N_WRITES + j] = ws[i].rvs[j];
            if (j > 0)
                assert_true(ws[i].rvs[j] > ws[i].rvs[j - 1]);
        }
    }
    qsort(all, N_THREADS * N_WRITES, sizeof(*all), cmp_i64);
    for (int i = 1; i < N_THREADS * N_WRITES; i++)
        assert_int_equal(all[i], all[i - 1] + 1); /* distinct, and no gaps */
    rec_stop(h);
    assert_int_equal(h->n, N_THREADS * N_WRITES);
    for (size_t i = 0; i < h->n; i++)
        assert_int_equal(h->rv[i], all[i]); /* the feed saw every rv, in order */
    assert_int_equal(h->gaps, 0);
    assert_int_equal(h->bad, 0);
    print_message("%d writes from %d threads: %zu transactions\n", N_THREADS * N_WRITES, N_THREADS, h->batches);
    assert_int_equal(current_rv(f->s), all[N_THREADS * N_WRITES - 1]);
    free(all);
    free(ws);
    rec_free(h);
}

typedef struct ack {
    int64_t index;
    int64_t rv;
} ack_t;

/* The child: writes until killed, reporting each acknowledged write. Never returns. */
static void durability_child(const char *path, int fd)
{
    lo_err_t err = {0};
    store_options_t opts = {.path = path};
    store_t *s = store_open(&opts, &err);
    if (s == NULL)
        _exit(2);
    for (int64_t i = 0; i < 1000000; i++) {
        char name[24];
        snprintf(name, sizeof(name), "k%06" PRId64, i);
        json_t *obj = mk_obj("d", name, (int)i);
        store_op_t op = put_op("d", name, obj, STORE_RV_ABSENT);
        if (store_write(s, &op, 1) != STORE_OK)
            _exit(3);
        ack_t a = {i, op.rv};
        if (write(fd, &a, sizeof(a)) != (ssize_t)sizeof(a))
            _exit(4);
        store_op_clear(&op);
        json_decref(obj);
    }
    _exit(5); /* should have been killed long before */
}

static void test_durability_after_kill(void **state)
{
    fx_t *f = *state;
    store_close(f->s); /* the child owns the database until it dies */
    f->s = NULL;
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(fds[0]);
        durability_child(f->path, fds[1]);
    }
    close(fds[1]);

    size_t cap = 1 << 16, n = 0;
    ack_t *acks = calloc(cap, sizeof(*acks));
    int killed = 0;
    for (;;) {
        ack_t a;
        ssize_t got = read(fds[0], &a, sizeof(a));
        if (got == 0)
            break;
        if (got < 0 && errno == EINTR)
            continue;
        assert_int_equal(got, sizeof(a));
        if (n < cap)
            acks[n++] = a;
        if (!killed && n == 300) {
            kill(pid, SIGKILL); /* mid-stream: more acks may still be in the pipe */
            killed = 1;
        }
    }
    close(fds[0]);
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
    assert_true(n >= 300);

    f->s = open_store(f->path);
    for (size_t i = 0; i < n; i++) {
        char name[24];
        snprintf(name, sizeof(name), "k%06" PRId64, acks[i].index);
        json_t *got = NULL;
        assert_int_equal(store_get(f->s, RES, "d", name, &got, NULL, NULL), STORE_OK);
        assert_int_equal(obj_rv(got), acks[i].rv);
        assert_int_equal(obj_v(got), (int)acks[i].index);
        json_decref(got);
    }
    assert_true(current_rv(f->s) >= acks[n - 1].rv);
    assert_true(put(f->s, "d", "after", 1) > acks[n - 1].rv);
    free(acks);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_crud, setup, teardown),
        cmocka_unit_test_setup_teardown(test_compare_and_swap, setup, teardown),
        cmocka_unit_test_setup_teardown(test_delete_last_state, setup, teardown),
        cmocka_unit_test_setup_teardown(test_noop, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dry_run, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dry_run_delete_leaves_shared_tree_alone, setup, teardown),
        cmocka_unit_test_setup_teardown(test_abort, setup, teardown),
        cmocka_unit_test_setup_teardown(test_txn_reads, setup, teardown),
        cmocka_unit_test_setup_teardown(test_txn_sees_batch_so_far, setup, teardown),
        cmocka_unit_test_setup_teardown(test_batch_reads_follow_its_writes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_snapshot, setup, teardown),
        cmocka_unit_test_setup_teardown(test_counts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_list_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_list_paging, setup, teardown),
        cmocka_unit_test_setup_teardown(test_list_continue_keys, setup, teardown),
        cmocka_unit_test_setup_teardown(test_list_max_bytes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_list_at_old_rv, setup, teardown),
        cmocka_unit_test_setup_teardown(test_list_at_old_rv_matches_a_record, setup, teardown),
        cmocka_unit_test_setup_teardown(test_future_and_expired, setup, teardown),
        cmocka_unit_test_setup_teardown(test_corrupt_body, setup, teardown),
        cmocka_unit_test_setup_teardown(test_events_log, setup, teardown),
        cmocka_unit_test_setup_teardown(test_events_paging, setup, teardown),
        cmocka_unit_test_setup_teardown(test_compaction, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reopen, setup, teardown),
        cmocka_unit_test_setup_teardown(test_open_options, setup, teardown),
        cmocka_unit_test_setup_teardown(test_batching, setup, teardown),
        cmocka_unit_test_setup_teardown(test_large_submission, setup, teardown),
        cmocka_unit_test_setup_teardown(test_savepoint_isolation, setup, teardown),
        cmocka_unit_test_setup_teardown(test_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_queue_full, setup, teardown),
        cmocka_unit_test_setup_teardown(test_database_failure_fails_alone, setup, teardown),
        cmocka_unit_test_setup_teardown(test_checkpoint_reaches_the_database, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wal_bounded_under_steady_writes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rules_prepare, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rules_settle, setup, teardown),
        cmocka_unit_test_setup_teardown(test_after_rule_changes_belong_to_the_write, setup, teardown),
        cmocka_unit_test_setup_teardown(test_after_rule_after_a_noop_and_in_a_dry_run, setup, teardown),
        cmocka_unit_test_setup_teardown(test_after_rule_failing_fails_its_write_alone, setup, teardown),
        cmocka_unit_test_setup_teardown(test_compaction_never_stalls_writers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_concurrent_writes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_durability_after_kill, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
