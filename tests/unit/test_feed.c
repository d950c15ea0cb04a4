/*
 * test_feed.c - the change feed (storage/feed.c) against langop/feed.h,
 * alone: batches are built by hand here, as the store's writer builds them.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "langop/storage/feed.h"

/* ---- batches ---- */

/* A batch of n MODIFIED events with rvs first, first+1, ...; each object and body names its rv. */
static feed_batch_t *mk_batch(int64_t first, size_t n)
{
    feed_batch_t *b = feed_batch_new(n);
    for (size_t i = 0; i < n; i++) {
        feed_event_t *e = &b->events[i];
        char rv[24];
        e->rv = first + (int64_t)i;
        e->type = STORE_EVENT_MODIFIED;
        snprintf(rv, sizeof(rv), "%lld", (long long)e->rv);
        e->resource = strdup("languagemodels");
        e->ns = strdup("ns");
        e->name = strdup("a");
        e->object = json_pack("{s:{s:s}}", "metadata", "resourceVersion", rv);
        e->body = json_dumps(e->object, JSON_COMPACT);
        e->body_len = strlen(e->body);
    }
    return b;
}

static int refs_of(const feed_batch_t *b)
{
    return __atomic_load_n(&b->refs, __ATOMIC_ACQUIRE);
}

/* ---- subscribers ---- */

#define LOG_MAX 64

/* What subscribers saw, in call order: which subscriber, which batch. One log shared by several. */
typedef struct call_log {
    pthread_mutex_t mu;
    size_t n;
    int who[LOG_MAX];
    feed_batch_t *batch[LOG_MAX];
    int64_t first_rv[LOG_MAX];
} call_log_t;

typedef struct sub {
    call_log_t *log;
    int who;
    int keep;                 /* take a reference to each batch (released by the test) */
    feed_batch_t *kept[LOG_MAX];
    size_t n_kept;
} sub_t;

static void record(void *ctx, feed_batch_t *b)
{
    sub_t *s = ctx;
    call_log_t *l = s->log;
    pthread_mutex_lock(&l->mu);
    if (l->n < LOG_MAX) {
        l->who[l->n] = s->who;
        l->batch[l->n] = b;
        l->first_rv[l->n] = b->n ? b->events[0].rv : -1;
        l->n++;
    }
    pthread_mutex_unlock(&l->mu);
    if (s->keep && s->n_kept < LOG_MAX)
        s->kept[s->n_kept++] = feed_batch_ref(b);
}

static void release_kept(sub_t *s)
{
    for (size_t i = 0; i < s->n_kept; i++)
        feed_batch_release(s->kept[i]);
    s->n_kept = 0;
}

#define LOG_INIT {.mu = PTHREAD_MUTEX_INITIALIZER}

/* ---- tests ---- */

static void test_new_and_last_rv(void **state)
{
    (void)state;
    feed_t *f = feed_new();
    assert_non_null(f);
    assert_int_equal(feed_last_rv(f), 0);
    feed_start_at(f, 41); /* the store's rv at open */
    assert_int_equal(feed_last_rv(f), 41);

    /* Publishing without subscribers still moves last_rv: it is what was committed. */
    feed_publish(f, mk_batch(42, 3));
    assert_int_equal(feed_last_rv(f), 44);
    /* An empty batch says nothing about rvs. */
    feed_publish(f, feed_batch_new(0));
    assert_int_equal(feed_last_rv(f), 44);
    feed_free(f);
    feed_free(NULL);
}

static void test_subscribers_in_order(void **state)
{
    (void)state;
    feed_t *f = feed_new();
    call_log_t log = LOG_INIT;
    sub_t s[3] = {{&log, 0, 0, {0}, 0}, {&log, 1, 0, {0}, 0}, {&log, 2, 0, {0}, 0}};
    int ids[3];
    for (int i = 0; i < 3; i++) {
        ids[i] = feed_subscribe(f, record, &s[i]);
        assert_true(ids[i] > 0);
        for (int j = 0; j < i; j++)
            assert_int_not_equal(ids[i], ids[j]);
    }
    feed_publish(f, mk_batch(1, 2));
    feed_publish(f, mk_batch(3, 1));
    /* each batch to every subscriber, in order of subscription, batches in publish order */
    assert_int_equal(log.n, 6);
    for (size_t i = 0; i < 6; i++) {
        assert_int_equal(log.who[i], (int)(i % 3));
        assert_int_equal(log.first_rv[i], i < 3 ? 1 : 3);
        assert_ptr_equal(log.batch[i], log.batch[i - i % 3]); /* the same immutable batch for all */
    }
    assert_int_equal(feed_last_rv(f), 3);
    for (int i = 0; i < 3; i++)
        feed_unsubscribe(f, ids[i]);
    feed_free(f);
}

/*
 * "In order of subscription" also after a subscriber left: one that
 * subscribes later is called after those already there.
 */
static void test_order_after_unsubscribe(void **state)
{
    (void)state;
    feed_t *f = feed_new();
    call_log_t log = LOG_INIT;
    sub_t a = {&log, 0, 0, {0}, 0}, b = {&log, 1, 0, {0}, 0}, c = {&log, 2, 0, {0}, 0};
    int ida = feed_subscribe(f, record, &a);
    int idb = feed_subscribe(f, record, &b);
    feed_unsubscribe(f, ida);
    int idc = feed_subscribe(f, record, &c);
    assert_int_not_equal(idc, ida); /* ids are not reused */
    feed_publish(f, mk_batch(1, 1));
    assert_int_equal(log.n, 2);
    assert_int_equal(log.who[0], 1);
    assert_int_equal(log.who[1], 2);
    feed_unsubscribe(f, idb);
    feed_unsubscribe(f, idc);
    feed_free(f);
}

static void test_unsubscribe(void **state)
{
    (void)state;
    feed_t *f = feed_new();
    call_log_t log = LOG_INIT;
    sub_t a = {&log, 0, 0, {0}, 0}, b = {&log, 1, 0, {0}, 0};
    int ida = feed_subscribe(f, record, &a);
    int idb = feed_subscribe(f, record, &b);
    feed_publish(f, mk_batch(1, 1));
    feed_unsubscribe(f, ida);
    feed_unsubscribe(f, ida);   /* twice: harmless */
    feed_unsubscribe(f, 9999);  /* unknown: harmless */
    feed_publish(f, mk_batch(2, 1));
    assert_int_equal(log.n, 3);
    assert_int_equal(log.who[2], 1); /* only b got the second batch */
    assert_int_equal(log.first_rv[2], 2);

    /* A subscriber receives only what is published after it subscribed. */
    sub_t late = {&log, 2, 0, {0}, 0};
    int idl = feed_subscribe(f, record, &late);
    feed_publish(f, mk_batch(3, 1));
    assert_int_equal(log.n, 5);
    for (size_t i = 0; i < log.n; i++)
        if (log.who[i] == 2)
            assert_int_equal(log.first_rv[i], 3);
    assert_true(log.who[3] == 2 || log.who[4] == 2);
    feed_unsubscribe(f, idb);
    feed_unsubscribe(f, idl);
    feed_free(f);
}

static void *release_main(void *b)
{
    feed_batch_release(b);
    return NULL;
}

static void test_batch_refcount(void **state)
{
    (void)state;
    feed_t *f = feed_new();
    call_log_t log = LOG_INIT;
    sub_t keeper1 = {&log, 0, 1, {0}, 0}, passer = {&log, 1, 0, {0}, 0}, keeper2 = {&log, 2, 1, {0}, 0};
    int id1 = feed_subscribe(f, record, &keeper1);
    int id2 = feed_subscribe(f, record, &passer);
    int id3 = feed_subscribe(f, record, &keeper2);

    feed_batch_t *b = mk_batch(7, 2);
    assert_int_equal(refs_of(b), 1);
    /* the events' trees are owned by the batch: watch one to see it freed */
    json_t *watched = json_incref(b->events[1].object);
    assert_int_equal(watched->refcount, 2);
    feed_publish(f, b); /* stolen: the publisher's reference is dropped after the calls */
    assert_int_equal(refs_of(b), 2); /* the two keepers' */
    assert_int_equal(keeper1.n_kept, 1);
    assert_int_equal(keeper2.n_kept, 1);
    assert_string_equal(keeper1.kept[0]->events[1].body, "{\"metadata\":{\"resourceVersion\":\"8\"}}");
    release_kept(&keeper1);
    assert_int_equal(refs_of(b), 1);
    assert_int_equal(watched->refcount, 2); /* still alive for keeper2 */
    assert_int_equal(keeper2.kept[0]->events[1].rv, 8);
    /* released on another thread than the one that published: refs are atomic */
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, release_main, keeper2.kept[0]), 0);
    pthread_join(th, NULL);
    keeper2.n_kept = 0;
    assert_int_equal(watched->refcount, 1); /* the batch is gone, its events with it */
    json_decref(watched);

    /* Without keepers the batch lives exactly as long as the publish. */
    feed_unsubscribe(f, id1);
    feed_unsubscribe(f, id3);
    b = mk_batch(9, 1);
    watched = json_incref(b->events[0].object);
    feed_publish(f, b);
    assert_int_equal(watched->refcount, 1);
    json_decref(watched);
    feed_batch_release(NULL); /* harmless */
    feed_unsubscribe(f, id2);
    feed_free(f);
}

/* Many threads taking and dropping references to one batch: it is freed once, at the end. */
#define REF_THREADS 8
#define REF_ROUNDS 20000

static void *ref_churn(void *arg)
{
    feed_batch_t *b = arg;
    for (int i = 0; i < REF_ROUNDS; i++)
        feed_batch_release(feed_batch_ref(b));
    return NULL;
}

static void test_batch_refcount_threads(void **state)
{
    (void)state;
    feed_batch_t *b = mk_batch(1, 1);
    json_t *watched = json_incref(b->events[0].object);
    pthread_t th[REF_THREADS];
    for (int i = 0; i < REF_THREADS; i++)
        assert_int_equal(pthread_create(&th[i], NULL, ref_churn, b), 0);
    for (int i = 0; i < REF_THREADS; i++)
        pthread_join(th[i], NULL);
    assert_int_equal(refs_of(b), 1);
    assert_int_equal(watched->refcount, 2);
    feed_batch_release(b);
    assert_int_equal(watched->refcount, 1);
    json_decref(watched);
}

/* ---- unsubscribe while another thread publishes ---- */

typedef struct racer {
    int removed;      /* atomic: set once feed_unsubscribe returned */
    int calls;        /* atomic */
    int late_calls;   /* atomic: calls after removed was set */
} racer_t;

static void racer_fn(void *ctx, feed_batch_t *b)
{
    racer_t *r = ctx;
    (void)b;
    __atomic_add_fetch(&r->calls, 1, __ATOMIC_RELAXED);
    usleep(20); /* widen the window in which unsubscribe meets a call in progress */
    if (__atomic_load_n(&r->removed, __ATOMIC_ACQUIRE))
        __atomic_add_fetch(&r->late_calls, 1, __ATOMIC_RELAXED);
}

typedef struct publisher {
    feed_t *f;
    int stop;         /* atomic */
    int64_t published;
} publisher_t;

static void *publisher_main(void *arg)
{
    publisher_t *p = arg;
    int64_t rv = 1;
    while (!__atomic_load_n(&p->stop, __ATOMIC_ACQUIRE)) {
        feed_publish(p->f, mk_batch(rv, 1));
        rv++;
    }
    p->published = rv - 1;
    return NULL;
}

#define RACE_ROUNDS 300

static void test_unsubscribe_while_publishing(void **state)
{
    (void)state;
    feed_t *f = feed_new();
    publisher_t p = {.f = f};
    racer_t *rs = calloc(RACE_ROUNDS, sizeof(*rs));
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, publisher_main, &p), 0);
    int64_t total = 0;
    for (int i = 0; i < RACE_ROUNDS; i++) {
        racer_t *r = &rs[i];
        int id = feed_subscribe(f, racer_fn, r);
        /* let it be called at least once, so that unsubscribe races with live calls */
        while (__atomic_load_n(&r->calls, __ATOMIC_ACQUIRE) == 0)
            usleep(10);
        feed_unsubscribe(f, id);
        __atomic_store_n(&r->removed, 1, __ATOMIC_RELEASE);
        total += __atomic_load_n(&r->calls, __ATOMIC_RELAXED);
    }
    usleep(2000); /* a call made after unsubscribe would land here */
    __atomic_store_n(&p.stop, 1, __ATOMIC_RELEASE);
    pthread_join(th, NULL);
    for (int i = 0; i < RACE_ROUNDS; i++)
        if (rs[i].late_calls != 0)
            fail_msg("subscriber %d was called %d times after feed_unsubscribe returned", i, rs[i].late_calls);
    assert_true(total >= RACE_ROUNDS);
    assert_int_equal(feed_last_rv(f), p.published);
    free(rs);
    feed_free(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_new_and_last_rv),
        cmocka_unit_test(test_subscribers_in_order),
        cmocka_unit_test(test_order_after_unsubscribe),
        cmocka_unit_test(test_unsubscribe),
        cmocka_unit_test(test_batch_refcount),
        cmocka_unit_test(test_batch_refcount_threads),
        cmocka_unit_test(test_unsubscribe_while_publishing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
