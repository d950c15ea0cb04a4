/*
 * test_workqueue.c - the reconcile queue (apiserver/reconcile/workqueue.c)
 * against langop/reconcile/workqueue.h: coalescing, one worker per key,
 * FIFO, delays, backoff, forget, shutdown, and a stress run.
 *
 * Tests of time use a clock moved by hand (fake_clock_t) and poll with
 * timeout 0, so that minutes of backoff take no time; the few that need a
 * blocked thread to wake use the real clock with short delays.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "langop/core/common.h"
#include "langop/reconcile/workqueue.h"

/* ---- helpers ---- */

typedef struct fake_clock {
    _Atomic int64_t now;
} fake_clock_t;

static int64_t fake_now(void *ctx)
{
    return atomic_load(&((fake_clock_t *)ctx)->now);
}

static void set_now(fake_clock_t *c, int64_t t)
{
    atomic_store(&c->now, t);
}

static workqueue_t *fake_queue(fake_clock_t *c)
{
    workqueue_options_t o = {.seed = 42, .now_ms = fake_now, .now_ctx = c};
    return workqueue_new(&o);
}

/* get with timeout 0 must give want; the key is done at once. */
static void expect_key(workqueue_t *q, const char *want)
{
    char *key = NULL;
    assert_int_equal(workqueue_get(q, &key, 0), WORKQUEUE_OK);
    assert_non_null(key);
    assert_string_equal(key, want);
    assert_int_equal(workqueue_done(q, key), WORKQUEUE_OK);
    free(key);
}

static void expect_nothing(workqueue_t *q)
{
    char *key = (char *)"untouched";
    assert_int_equal(workqueue_get(q, &key, 0), WORKQUEUE_TIMEOUT);
    assert_null(key);
}

/* ---- coalescing, FIFO, one worker per key ---- */

static void test_coalescing(void **state)
{
    (void)state;
    workqueue_t *q = workqueue_new(NULL);
    workqueue_add(q, "LanguageCluster/c1");
    workqueue_add(q, "LanguageCluster/c1");
    workqueue_add(q, "LanguageAgent/ns/a");
    workqueue_add(q, "LanguageCluster/c1");
    assert_int_equal(workqueue_len(q), 2);
    expect_key(q, "LanguageCluster/c1");
    expect_key(q, "LanguageAgent/ns/a");
    expect_nothing(q);
    assert_int_equal(workqueue_len(q), 0);
    workqueue_free(q);
}

/* The queue keeps its own copy: the caller's buffer may change at once. */
static void test_key_is_copied(void **state)
{
    (void)state;
    workqueue_t *q = workqueue_new(NULL);
    char buf[32];
    strcpy(buf, "LanguageModel/ns/m");
    workqueue_add(q, buf);
    strcpy(buf, "overwritten");
    expect_key(q, "LanguageModel/ns/m");
    workqueue_free(q);
}

static void test_fifo_order(void **state)
{
    (void)state;
    workqueue_t *q = workqueue_new(NULL);
    char name[16];
    for (int i = 0; i < 10; i++) {
        snprintf(name, sizeof(name), "k%d", i);
        workqueue_add(q, name);
    }
    workqueue_add(q, "k3"); /* coalesced: keeps its place */
    workqueue_add(q, "k0");
    assert_int_equal(workqueue_len(q), 10);
    for (int i = 0; i < 10; i++) {
        snprintf(name, sizeof(name), "k%d", i);
        expect_key(q, name);
    }
    expect_nothing(q);
    workqueue_free(q);
}

static void test_readd_while_processing(void **state)
{
    (void)state;
    workqueue_t *q = workqueue_new(NULL);
    char *key = NULL;
    workqueue_add(q, "a");
    workqueue_add(q, "b");
    assert_int_equal(workqueue_get(q, &key, 0), WORKQUEUE_OK);
    assert_string_equal(key, "a");
    workqueue_add(q, "a");
    workqueue_add(q, "a");
    workqueue_add(q, "a");
    assert_int_equal(workqueue_len(q), 1); /* b only: a is not handed to a second worker */
    expect_key(q, "b");
    expect_nothing(q);
    assert_int_equal(workqueue_done(q, key), WORKQUEUE_OK);
    free(key);
    assert_int_equal(workqueue_len(q), 1); /* queued once, however many adds */
    expect_key(q, "a");
    expect_nothing(q);
    assert_int_equal(workqueue_done(q, "a"), WORKQUEUE_EINVAL);     /* not processing */
    assert_int_equal(workqueue_done(q, "never"), WORKQUEUE_EINVAL); /* unknown */
    assert_int_equal(workqueue_len(q), 0);
    workqueue_free(q);
}

/* A re-added key goes to the back, behind keys added while it was processing. */
static void test_requeue_goes_to_back(void **state)
{
    (void)state;
    workqueue_t *q = workqueue_new(NULL);
    char *key = NULL;
    workqueue_add(q, "a");
    assert_int_equal(workqueue_get(q, &key, 0), WORKQUEUE_OK);
    workqueue_add(q, "a");
    workqueue_add(q, "b");
    assert_int_equal(workqueue_done(q, key), WORKQUEUE_OK);
    free(key);
    workqueue_add(q, "c");
    expect_key(q, "b");
    expect_key(q, "a");
    expect_key(q, "c");
    workqueue_free(q);
}

/*
 * Four workers, a producer re-adding the same few keys as fast as it can.
 * Each key counts the workers inside it: never more than one. Each add
 * stamps a version before it; a worker records the version it saw when it
 * started: once all is quiet every key's last processing saw the last
 * version, so no add was lost.
 */
#define NKEYS 4
#define NWORKERS 4
#define NADDS 4000

typedef struct concurrency {
    workqueue_t *q;
    _Atomic int active[NKEYS];
    _Atomic int max_active;
    _Atomic int64_t want[NKEYS];
    _Atomic int64_t seen[NKEYS];
    _Atomic int processed;
    _Atomic int errors;    /* counted, not asserted: cmocka asserts only on its own thread */
} concurrency_t;

static void *concurrency_worker(void *arg)
{
    concurrency_t *c = arg;
    char *key;
    while (workqueue_get(c->q, &key, -1) == WORKQUEUE_OK) {
        int k = key[1] - '0';
        int inside = atomic_fetch_add(&c->active[k], 1) + 1;
        int max = atomic_load(&c->max_active);
        while (inside > max && !atomic_compare_exchange_weak(&c->max_active, &max, inside))
            ;
        atomic_store(&c->seen[k], atomic_load(&c->want[k]));
        usleep(50);
        atomic_fetch_sub(&c->active[k], 1);
        atomic_fetch_add(&c->processed, 1);
        if (workqueue_done(c->q, key) != WORKQUEUE_OK)
            atomic_fetch_add(&c->errors, 1);
        free(key);
    }
    return NULL;
}

static int all_seen(concurrency_t *c, int n)
{
    for (int k = 0; k < n; k++)
        if (atomic_load(&c->seen[k]) != atomic_load(&c->want[k]))
            return 0;
    return 1;
}

static void test_never_two_workers_on_a_key(void **state)
{
    (void)state;
    static concurrency_t c;
    memset(&c, 0, sizeof(c));
    c.q = workqueue_new(NULL);
    pthread_t workers[NWORKERS];
    for (int i = 0; i < NWORKERS; i++)
        assert_int_equal(pthread_create(&workers[i], NULL, concurrency_worker, &c), 0);
    char key[4];
    for (int i = 0; i < NADDS; i++) {
        int k = i % NKEYS;
        snprintf(key, sizeof(key), "k%d", k);
        atomic_store(&c.want[k], i + 1);
        workqueue_add(c.q, key);
        if (i % 64 == 0)
            usleep(100);
    }
    for (int i = 0; i < 5000 && !all_seen(&c, NKEYS); i++)
        usleep(1000);
    workqueue_shutdown(c.q);
    for (int i = 0; i < NWORKERS; i++)
        pthread_join(workers[i], NULL);
    assert_true(all_seen(&c, NKEYS));
    assert_int_equal(atomic_load(&c.max_active), 1);
    assert_int_equal(atomic_load(&c.errors), 0);
    assert_true(atomic_load(&c.processed) >= NKEYS);
    workqueue_free(c.q);
}

/* ---- delays ---- */

static void test_delayed_by_due_time(void **state)
{
    (void)state;
    fake_clock_t clock = {1000};
    workqueue_t *q = fake_queue(&clock);
    workqueue_add_after(q, "c", 300);
    workqueue_add_after(q, "a", 100);
    workqueue_add_after(q, "b", 200);
    workqueue_add_after(q, "a", 250); /* later: a keeps 100 */
    workqueue_add_after(q, "b", 50);  /* earlier: b moves to 50 */
    assert_int_equal(workqueue_delayed(q), 3);
    assert_int_equal(workqueue_len(q), 0);
    expect_nothing(q);
    set_now(&clock, 1049);
    expect_nothing(q);
    set_now(&clock, 1050);
    expect_key(q, "b");
    expect_nothing(q);
    set_now(&clock, 1100);
    expect_key(q, "a");
    set_now(&clock, 1299);
    expect_nothing(q);
    assert_int_equal(workqueue_delayed(q), 1);
    set_now(&clock, 1300);
    expect_key(q, "c");
    expect_nothing(q);
    assert_int_equal(workqueue_delayed(q), 0);
    workqueue_add_after(q, "now", 0); /* <= 0: at once */
    workqueue_add_after(q, "past", -5);
    expect_key(q, "now");
    expect_key(q, "past");
    workqueue_free(q);
}

/*
 * Keys that came due together are handed out by due time, ties in order of
 * arrival; a plain add after they came due goes behind them.
 */
static void test_due_keys_in_due_order(void **state)
{
    (void)state;
    fake_clock_t clock = {0};
    workqueue_t *q = fake_queue(&clock);
    workqueue_add_after(q, "d1", 30);
    workqueue_add_after(q, "d2", 10);
    workqueue_add_after(q, "d3", 20);
    workqueue_add_after(q, "d4", 20);
    set_now(&clock, 1000);
    workqueue_add(q, "x");
    assert_int_equal(workqueue_len(q), 5);
    expect_key(q, "d2");
    expect_key(q, "d3");
    expect_key(q, "d4");
    expect_key(q, "d1");
    expect_key(q, "x");
    workqueue_free(q);
}

/* A delayed key that is already waiting is not queued twice when it comes due. */
static void test_delayed_key_already_waiting(void **state)
{
    (void)state;
    fake_clock_t clock = {0};
    workqueue_t *q = fake_queue(&clock);
    workqueue_add(q, "a");
    workqueue_add_after(q, "a", 10);
    set_now(&clock, 10);
    assert_int_equal(workqueue_len(q), 1);
    expect_key(q, "a");
    expect_nothing(q);
    workqueue_free(q);
}

/* A delayed key that comes due while it is processing is queued at done(). */
static void test_delayed_key_due_while_processing(void **state)
{
    (void)state;
    fake_clock_t clock = {0};
    workqueue_t *q = fake_queue(&clock);
    char *key = NULL;
    workqueue_add(q, "a");
    assert_int_equal(workqueue_get(q, &key, 0), WORKQUEUE_OK);
    workqueue_add_after(q, "a", 10);
    set_now(&clock, 10);
    expect_nothing(q);
    assert_int_equal(workqueue_delayed(q), 0);
    assert_int_equal(workqueue_done(q, key), WORKQUEUE_OK);
    free(key);
    expect_key(q, "a");
    workqueue_free(q);
}

typedef struct getter {
    workqueue_t *q;
    int64_t timeout_ms;
    int rc;
    char *key;
    int64_t waited_ms;
} getter_t;

static void *getter_main(void *arg)
{
    getter_t *g = arg;
    int64_t t0 = lo_now_ms();
    g->rc = workqueue_get(g->q, &g->key, g->timeout_ms);
    g->waited_ms = lo_now_ms() - t0;
    return NULL;
}

/*
 * A getter blocked until a far due time wakes for a nearer one added
 * meanwhile; one blocked with a timeout returns when it passes.
 */
static void test_blocked_get_wakes_for_due_time(void **state)
{
    (void)state;
    workqueue_t *q = workqueue_new(NULL);
    workqueue_add_after(q, "late", 60000);
    getter_t g = {.q = q, .timeout_ms = 3000}; /* a bound, so that a missed wake fails, not hangs */
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, getter_main, &g), 0);
    usleep(20000);
    int64_t added = lo_now_ms();
    workqueue_add_after(q, "soon", 60);
    pthread_join(t, NULL);
    int64_t after_add = lo_now_ms() - added;
    assert_int_equal(g.rc, WORKQUEUE_OK);
    assert_string_equal(g.key, "soon");
    assert_in_range(after_add, 60, 2000);
    assert_int_equal(workqueue_done(q, g.key), WORKQUEUE_OK);
    free(g.key);

    getter_t g2 = {.q = q, .timeout_ms = 80};
    getter_main(&g2);
    assert_int_equal(g2.rc, WORKQUEUE_TIMEOUT);
    assert_null(g2.key);
    assert_in_range(g2.waited_ms, 79, 2000);
    assert_int_equal(workqueue_delayed(q), 1);
    workqueue_free(q);
}

/* ---- backoff ---- */

static void test_backoff_function(void **state)
{
    (void)state;
    const int64_t base = 500, max = 300000;
    /* d = 500 * 2^n up to the cap; the delay is d/2 + random % (d - d/2 + 1). */
    assert_int_equal(workqueue_backoff_ms(base, max, 0, 0), 250);
    assert_int_equal(workqueue_backoff_ms(base, max, 0, 250), 500);
    assert_int_equal(workqueue_backoff_ms(base, max, 0, 251), 250);
    assert_int_equal(workqueue_backoff_ms(base, max, 0, 100), 350);
    assert_int_equal(workqueue_backoff_ms(base, max, 1, 0), 500);
    assert_int_equal(workqueue_backoff_ms(base, max, 1, 500), 1000);
    assert_int_equal(workqueue_backoff_ms(base, max, 2, 1000), 2000);
    assert_int_equal(workqueue_backoff_ms(base, max, 9, 128000), 256000);
    assert_int_equal(workqueue_backoff_ms(base, max, 10, 0), 150000); /* 512 s, capped */
    assert_int_equal(workqueue_backoff_ms(base, max, 10, 150000), 300000);
    assert_int_equal(workqueue_backoff_ms(base, max, 62, 150000), 300000);
    assert_int_equal(workqueue_backoff_ms(base, max, 1 << 30, 150000), 300000);
    assert_int_equal(workqueue_backoff_ms(base, max, 1 << 30, UINT64_MAX), 150000 + (int64_t)(UINT64_MAX % 150001));
    assert_int_equal(workqueue_backoff_ms(3, 1000, 0, 0), 1);
    assert_int_equal(workqueue_backoff_ms(3, 1000, 0, 2), 3);
    assert_int_equal(workqueue_backoff_ms(1, 1, 5, 1), 1);
    assert_int_equal(workqueue_backoff_ms(800, 600, 0, 300), 600); /* base above the cap: the cap */
}

/* Each add_rate_limited is due within [d/2, d] of its call, d doubling to the 5 min cap. */
static void test_backoff_doubles_to_cap(void **state)
{
    (void)state;
    fake_clock_t clock = {0};
    workqueue_t *q = fake_queue(&clock);
    int64_t t0 = 0;
    for (int n = 0; n < 13; n++) {
        int64_t d = (int64_t)500 << n;
        if (d > 300000)
            d = 300000;
        workqueue_add_rate_limited(q, "LanguageCluster/c1");
        assert_int_equal(workqueue_num_requeues(q, "LanguageCluster/c1"), n + 1);
        assert_int_equal(workqueue_delayed(q), 1);
        set_now(&clock, t0 + d / 2 - 1);
        expect_nothing(q);
        set_now(&clock, t0 + d);
        expect_key(q, "LanguageCluster/c1");
        t0 = t0 + d;
    }
    workqueue_free(q);
}

/*
 * The jitter: 200 keys failing together come back spread over [250, 500]
 * ms, each within it, found to the millisecond by stepping the clock.
 */
static void test_backoff_jitter_within_bounds(void **state)
{
    (void)state;
    enum { N = 200 };
    fake_clock_t clock = {0};
    workqueue_t *q = fake_queue(&clock);
    char name[16];
    for (int i = 0; i < N; i++) {
        snprintf(name, sizeof(name), "k%d", i);
        workqueue_add_rate_limited(q, name);
    }
    int64_t lo = INT64_MAX, hi = 0, got = 0;
    int buckets[5] = {0}; /* of 50 ms each */
    for (int64_t t = 0; t <= 600; t++) {
        set_now(&clock, t);
        char *key;
        while (workqueue_get(q, &key, 0) == WORKQUEUE_OK) {
            assert_in_range(t, 250, 500);
            lo = t < lo ? t : lo;
            hi = t > hi ? t : hi;
            buckets[t == 500 ? 4 : (t - 250) / 50]++;
            got++;
            workqueue_done(q, key);
            free(key);
        }
    }
    assert_int_equal(got, N);
    assert_true(lo < 275);
    assert_true(hi > 475);
    for (int b = 0; b < 5; b++)
        assert_true(buckets[b] >= 10); /* 40 expected each */
    workqueue_free(q);
}

static void test_forget_resets_backoff(void **state)
{
    (void)state;
    fake_clock_t clock = {0};
    workqueue_t *q = fake_queue(&clock);
    for (int i = 0; i < 5; i++)
        workqueue_add_rate_limited(q, "k");
    assert_int_equal(workqueue_num_requeues(q, "k"), 5);
    set_now(&clock, 10000); /* past the first delay, [250, 500]: the earliest wins */
    expect_key(q, "k");
    assert_int_equal(workqueue_num_requeues(q, "k"), 5); /* kept until forget */
    workqueue_add_rate_limited(q, "k");                  /* the 6th: d = 16 s */
    set_now(&clock, 10000 + 8000 - 1);
    expect_nothing(q);
    set_now(&clock, 10000 + 16000);
    expect_key(q, "k");
    workqueue_forget(q, "k");
    assert_int_equal(workqueue_num_requeues(q, "k"), 0);
    assert_int_equal(workqueue_num_requeues(q, "unknown"), 0);
    workqueue_add_rate_limited(q, "k");
    assert_int_equal(workqueue_num_requeues(q, "k"), 1);
    set_now(&clock, 26000 + 249);
    expect_nothing(q);
    set_now(&clock, 26000 + 500);
    expect_key(q, "k");
    workqueue_forget(q, "unknown"); /* harmless */
    workqueue_free(q);
}

/* ---- shutdown ---- */

static void test_shutdown_wakes_getters(void **state)
{
    (void)state;
    enum { N = 4 };
    workqueue_t *q = workqueue_new(NULL);
    workqueue_add_after(q, "far", 60000);
    getter_t g[N];
    pthread_t t[N];
    for (int i = 0; i < N; i++) {
        g[i] = (getter_t){.q = q, .timeout_ms = i == 0 ? 60000 : -1};
        assert_int_equal(pthread_create(&t[i], NULL, getter_main, &g[i]), 0);
    }
    usleep(30000);
    assert_int_equal(workqueue_shutting_down(q), 0);
    workqueue_shutdown(q);
    for (int i = 0; i < N; i++) {
        pthread_join(t[i], NULL);
        assert_int_equal(g[i].rc, WORKQUEUE_SHUTDOWN);
        assert_null(g[i].key);
        assert_true(g[i].waited_ms < 5000);
    }
    assert_int_equal(workqueue_shutting_down(q), 1);
    workqueue_free(q);
}

/* Shutdown drops what waits, ignores later adds, and requeues nothing at done(). */
static void test_shutdown_drops_waiting(void **state)
{
    (void)state;
    workqueue_t *q = workqueue_new(NULL);
    char *key = NULL;
    workqueue_add(q, "busy");
    assert_int_equal(workqueue_get(q, &key, 0), WORKQUEUE_OK);
    workqueue_add(q, "busy"); /* would be requeued at done */
    workqueue_add(q, "a");
    workqueue_add(q, "b");
    workqueue_add_after(q, "c", 60000);
    workqueue_shutdown(q);
    assert_int_equal(workqueue_len(q), 0);
    assert_int_equal(workqueue_delayed(q), 0);
    workqueue_add(q, "d");
    workqueue_add_after(q, "e", 10);
    workqueue_add_rate_limited(q, "f");
    assert_int_equal(workqueue_len(q), 0);
    assert_int_equal(workqueue_delayed(q), 0);
    assert_int_equal(workqueue_num_requeues(q, "f"), 0);
    assert_int_equal(workqueue_done(q, key), WORKQUEUE_OK);
    free(key);
    assert_int_equal(workqueue_len(q), 0);
    char *none = NULL;
    assert_int_equal(workqueue_get(q, &none, -1), WORKQUEUE_SHUTDOWN); /* at once */
    assert_null(none);
    workqueue_shutdown(q); /* twice is fine */
    workqueue_free(q);
}

/* ---- stress ---- */

/*
 * Four producers add 500 keys each, some twice, some after a short delay;
 * four consumers process them, failing every fifth key once (requeued with
 * a short backoff, then forgotten). Every key is processed after its last
 * add, no key by two consumers at once, and the queue ends empty.
 */
#define SP 4
#define SC 4
#define SK 500

typedef struct stress {
    workqueue_t *q;
    _Atomic int64_t want[SP * SK];
    _Atomic int64_t seen[SP * SK];
    _Atomic int active[SP * SK];
    _Atomic int runs[SP * SK];
    _Atomic int overlap;
    _Atomic int errors;    /* counted, not asserted: cmocka asserts only on its own thread */
} stress_t;

typedef struct producer {
    stress_t *s;
    int p;
} producer_t;

static void key_name(char *buf, size_t size, int p, int k)
{
    snprintf(buf, size, "LanguageAgent/ns%d/a%d", p, k);
}

/* The index of a key, or -1 when it is none of the producers'. */
static int key_index(const char *key)
{
    int p, k;
    if (sscanf(key, "LanguageAgent/ns%d/a%d", &p, &k) != 2 || p < 0 || p >= SP || k < 0 || k >= SK)
        return -1;
    return p * SK + k;
}

static void *stress_producer(void *arg)
{
    producer_t *pr = arg;
    char name[64];
    for (int round = 0; round < 2; round++) {
        for (int k = 0; k < SK; k++) {
            if (round == 1 && k % 2)
                continue;
            int i = pr->p * SK + k;
            key_name(name, sizeof(name), pr->p, k);
            atomic_fetch_add(&pr->s->want[i], 1);
            if (k % 3 == 0)
                workqueue_add_after(pr->s->q, name, 1 + k % 5);
            else
                workqueue_add(pr->s->q, name);
        }
    }
    return NULL;
}

static void *stress_consumer(void *arg)
{
    stress_t *s = arg;
    char *key;
    while (workqueue_get(s->q, &key, -1) == WORKQUEUE_OK) {
        int i = key_index(key);
        if (i < 0) {
            atomic_fetch_add(&s->errors, 1);
            free(key);
            continue;
        }
        if (atomic_fetch_add(&s->active[i], 1) != 0)
            atomic_fetch_add(&s->overlap, 1);
        atomic_store(&s->seen[i], atomic_load(&s->want[i]));
        int run = atomic_fetch_add(&s->runs[i], 1);
        if (i % 5 == 0 && run == 0)
            workqueue_add_rate_limited(s->q, key);
        else
            workqueue_forget(s->q, key);
        atomic_fetch_sub(&s->active[i], 1);
        if (workqueue_done(s->q, key) != WORKQUEUE_OK)
            atomic_fetch_add(&s->errors, 1);
        free(key);
    }
    return NULL;
}

static int stress_finished(stress_t *s)
{
    for (int i = 0; i < SP * SK; i++) {
        if (atomic_load(&s->seen[i]) != atomic_load(&s->want[i]))
            return 0;
        if (atomic_load(&s->runs[i]) < (i % 5 == 0 ? 2 : 1))
            return 0;
    }
    return 1;
}

static void test_stress(void **state)
{
    (void)state;
    static stress_t s;
    memset(&s, 0, sizeof(s));
    workqueue_options_t o = {.backoff_base_ms = 5, .backoff_max_ms = 20};
    s.q = workqueue_new(&o);
    pthread_t consumers[SC], producers[SP];
    producer_t pr[SP];
    for (int i = 0; i < SC; i++)
        assert_int_equal(pthread_create(&consumers[i], NULL, stress_consumer, &s), 0);
    for (int p = 0; p < SP; p++) {
        pr[p] = (producer_t){&s, p};
        assert_int_equal(pthread_create(&producers[p], NULL, stress_producer, &pr[p]), 0);
    }
    for (int p = 0; p < SP; p++)
        pthread_join(producers[p], NULL);
    for (int i = 0; i < 5000 && !stress_finished(&s); i++)
        usleep(1000);
    assert_true(stress_finished(&s));
    /* Finished: nothing may wait any more, due or delayed. */
    for (int i = 0; i < 100 && (workqueue_len(s.q) || workqueue_delayed(s.q)); i++)
        usleep(1000);
    assert_int_equal(workqueue_len(s.q), 0);
    assert_int_equal(workqueue_delayed(s.q), 0);
    workqueue_shutdown(s.q);
    for (int i = 0; i < SC; i++)
        pthread_join(consumers[i], NULL);
    assert_int_equal(atomic_load(&s.overlap), 0);
    assert_int_equal(atomic_load(&s.errors), 0);
    char name[64];
    for (int i = 0; i < SP * SK; i++) { /* every failure was forgotten */
        key_name(name, sizeof(name), i / SK, i % SK);
        assert_int_equal(workqueue_num_requeues(s.q, name), 0);
    }
    workqueue_free(s.q);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_coalescing),
        cmocka_unit_test(test_key_is_copied),
        cmocka_unit_test(test_fifo_order),
        cmocka_unit_test(test_readd_while_processing),
        cmocka_unit_test(test_requeue_goes_to_back),
        cmocka_unit_test(test_never_two_workers_on_a_key),
        cmocka_unit_test(test_delayed_by_due_time),
        cmocka_unit_test(test_due_keys_in_due_order),
        cmocka_unit_test(test_delayed_key_already_waiting),
        cmocka_unit_test(test_delayed_key_due_while_processing),
        cmocka_unit_test(test_blocked_get_wakes_for_due_time),
        cmocka_unit_test(test_backoff_function),
        cmocka_unit_test(test_backoff_doubles_to_cap),
        cmocka_unit_test(test_backoff_jitter_within_bounds),
        cmocka_unit_test(test_forget_resets_backoff),
        cmocka_unit_test(test_shutdown_wakes_getters),
        cmocka_unit_test(test_shutdown_drops_waiting),
        cmocka_unit_test(test_stress),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
