/*
 * workqueue.c - the reconcile queue (see langop/reconcile/workqueue.h).
 *
 * One entry per key the queue knows, in a hash table, so that every
 * operation on a key finds its whole state in one place:
 *
 *   dirty       the key wants processing;
 *   processing  a worker holds it (between get and done);
 *   heap_at     its slot in the delay heap, or NOT_DELAYED;
 *   failures    add_rate_limited calls since forget.
 *
 * Invariants (under q->lock):
 *   (1) an entry is in the FIFO exactly when dirty && !processing, and at
 *       most once; so a key is never handed to two workers;
 *   (2) an entry is in the heap at most once, at heap[heap_at];
 *   (3) an entry that is neither dirty, processing, delayed nor failed is
 *       freed at once (release_if_idle), so memory follows the keys that
 *       matter, not every key ever added;
 *   (4) after shutdown the FIFO and the heap are empty.
 */
#include "langop/reconcile/workqueue.h"

#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "langop/core/common.h"

#define NOT_DELAYED SIZE_MAX

typedef struct entry {
    char *key;
    uint64_t hash;
    struct entry *chain;   /* next in the same hash bucket */
    struct entry *next;    /* next in the FIFO */
    int failures;
    int dirty, processing;
    size_t heap_at;
    int64_t due;           /* when delayed: the queue's clock */
    uint64_t seq;          /* when delayed: arrival order, breaks ties of due */
} entry_t;

struct workqueue {
    pthread_mutex_t lock;
    pthread_cond_t wake;   /* a key was queued, the earliest due time moved, or shutdown */
    int64_t (*now_ms)(void *ctx);
    void *now_ctx;
    int64_t base_ms, max_ms;
    uint64_t rng;          /* splitmix64 state of the jitter */

    entry_t **buckets;     /* nbuckets, a power of two */
    size_t nbuckets, nkeys;

    entry_t *head, *tail;  /* the FIFO of due keys */
    size_t nready;

    entry_t **heap;        /* min-heap on (due, seq) */
    size_t nheap, heap_cap;
    uint64_t next_seq;

    int shutting_down;
};

/* ---- time ---- */

static int64_t default_now(void *ctx)
{
    (void)ctx;
    return lo_now_ms();
}

static int64_t clock_now(workqueue_t *q)
{
    return q->now_ms(q->now_ctx);
}

/* now + delay without overflow: a huge delay means "never", not the past. */
static int64_t due_after(int64_t now, int64_t delay_ms)
{
    return delay_ms > INT64_MAX - now ? INT64_MAX : now + delay_ms;
}

/* The CLOCK_MONOTONIC instant ms from now, as the condition variable waits on it. */
static void mono_after(struct timespec *ts, int64_t ms)
{
    clock_gettime(CLOCK_MONOTONIC, ts);
    ts->tv_sec += ms / 1000;
    ts->tv_nsec += (ms % 1000) * 1000000;
    if (ts->tv_nsec >= 1000000000) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000;
    }
}

static int mono_before(const struct timespec *a, const struct timespec *b)
{
    return a->tv_sec < b->tv_sec || (a->tv_sec == b->tv_sec && a->tv_nsec < b->tv_nsec);
}

static int mono_reached(const struct timespec *limit)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return !mono_before(&now, limit);
}

/* ---- jitter ---- */

static uint64_t splitmix64(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* Jitter needs spread, not secrecy; the time is a good enough fallback. */
static uint64_t random_seed(void)
{
    uint64_t seed = 0;
    if (getrandom(&seed, sizeof(seed), GRND_NONBLOCK) != (ssize_t)sizeof(seed) || seed == 0)
        seed = (uint64_t)lo_now_ms() | 1;
    return seed;
}

int64_t workqueue_backoff_ms(int64_t base_ms, int64_t max_ms, int failures, uint64_t random)
{
    if (max_ms < 1)
        max_ms = 1;
    int64_t d = base_ms < 1 ? 1 : base_ms > max_ms ? max_ms : base_ms;
    /* Doubling stops at the cap, so it cannot overflow however many failures. */
    for (int i = 0; i < failures && d < max_ms; i++)
        d = d > max_ms / 2 ? max_ms : d * 2;
    int64_t low = d / 2;
    return low + (int64_t)(random % (uint64_t)(d - low + 1));
}

/* ---- the table of keys ---- */

static uint64_t hash_key(const char *key)
{
    uint64_t h = 0xcbf29ce484222325ULL; /* FNV-1a */
    for (const unsigned char *p = (const unsigned char *)key; *p; p++)
        h = (h ^ *p) * 0x100000001b3ULL;
    return h;
}

static entry_t **bucket_of(workqueue_t *q, uint64_t hash)
{
    return &q->buckets[hash & (q->nbuckets - 1)];
}

static entry_t *table_find(workqueue_t *q, const char *key)
{
    uint64_t h = hash_key(key);
    for (entry_t *e = *bucket_of(q, h); e; e = e->chain)
        if (e->hash == h && strcmp(e->key, key) == 0)
            return e;
    return NULL;
}

static void table_grow(workqueue_t *q)
{
    entry_t **old = q->buckets;
    size_t n = q->nbuckets;
    q->nbuckets *= 2;
    q->buckets = lo_calloc(q->nbuckets, sizeof(*q->buckets));
    for (size_t i = 0; i < n; i++) {
        for (entry_t *e = old[i], *next; e; e = next) {
            next = e->chain;
            entry_t **b = bucket_of(q, e->hash);
            e->chain = *b;
            *b = e;
        }
    }
    free(old);
}

/* The entry of key, made (idle) when the queue does not know it yet. */
static entry_t *table_get(workqueue_t *q, const char *key)
{
    entry_t *e = table_find(q, key);
    if (e)
        return e;
    if (q->nkeys >= q->nbuckets)
        table_grow(q);
    e = lo_calloc(1, sizeof(*e));
    e->key = lo_strdup(key);
    e->hash = hash_key(key);
    e->heap_at = NOT_DELAYED;
    entry_t **b = bucket_of(q, e->hash);
    e->chain = *b;
    *b = e;
    q->nkeys++;
    return e;
}

static void release_if_idle(workqueue_t *q, entry_t *e)
{
    if (e->dirty || e->processing || e->heap_at != NOT_DELAYED || e->failures)
        return;
    entry_t **p = bucket_of(q, e->hash);
    while (*p != e)
        p = &(*p)->chain;
    *p = e->chain;
    q->nkeys--;
    free(e->key);
    free(e);
}

/* ---- the FIFO of due keys ---- */

static void fifo_push(workqueue_t *q, entry_t *e)
{
    e->next = NULL;
    if (q->tail)
        q->tail->next = e;
    else
        q->head = e;
    q->tail = e;
    q->nready++;
    pthread_cond_signal(&q->wake); /* one key, one worker */
}

static entry_t *fifo_pop(workqueue_t *q)
{
    entry_t *e = q->head;
    q->head = e->next;
    if (!q->head)
        q->tail = NULL;
    q->nready--;
    e->next = NULL;
    return e;
}

/* add() on an entry: invariant (1). */
static void mark_dirty(workqueue_t *q, entry_t *e)
{
    if (e->dirty)
        return;
    e->dirty = 1;
    if (!e->processing)
        fifo_push(q, e);
}

/* ---- the delay heap ---- */

static int heap_less(const entry_t *a, const entry_t *b)
{
    return a->due < b->due || (a->due == b->due && a->seq < b->seq);
}

static void heap_set(workqueue_t *q, size_t i, entry_t *e)
{
    q->heap[i] = e;
    e->heap_at = i;
}

static void heap_up(workqueue_t *q, size_t i)
{
    entry_t *e = q->heap[i];
    while (i > 0 && heap_less(e, q->heap[(i - 1) / 2])) {
        heap_set(q, i, q->heap[(i - 1) / 2]);
        i = (i - 1) / 2;
    }
    heap_set(q, i, e);
}

static void heap_down(workqueue_t *q, size_t i)
{
    entry_t *e = q->heap[i];
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= q->nheap)
            break;
        if (c + 1 < q->nheap && heap_less(q->heap[c + 1], q->heap[c]))
            c++;
        if (!heap_less(q->heap[c], e))
            break;
        heap_set(q, i, q->heap[c]);
        i = c;
    }
    heap_set(q, i, e);
}

static void heap_push(workqueue_t *q, entry_t *e)
{
    if (q->nheap == q->heap_cap) {
        q->heap_cap = q->heap_cap ? 2 * q->heap_cap : 16;
        q->heap = lo_realloc(q->heap, q->heap_cap * sizeof(*q->heap));
    }
    heap_set(q, q->nheap++, e);
    heap_up(q, q->nheap - 1);
}

static entry_t *heap_pop_min(workqueue_t *q)
{
    entry_t *e = q->heap[0];
    e->heap_at = NOT_DELAYED;
    if (--q->nheap > 0) {
        heap_set(q, 0, q->heap[q->nheap]);
        heap_down(q, 0);
    }
    return e;
}

/* Moves every key whose due time has come to the FIFO, earliest first. */
static void promote_due(workqueue_t *q)
{
    if (q->nheap == 0)
        return;
    int64_t now = clock_now(q);
    while (q->nheap > 0 && q->heap[0]->due <= now)
        mark_dirty(q, heap_pop_min(q));
}

/* Delays e (under the lock, not shut down): the earliest due time wins. */
static void delay_entry(workqueue_t *q, entry_t *e, int64_t delay_ms)
{
    int64_t due = due_after(clock_now(q), delay_ms);
    if (e->heap_at != NOT_DELAYED) {
        if (due >= e->due)
            return;
        e->due = due;
        heap_up(q, e->heap_at);
    } else {
        e->due = due;
        e->seq = q->next_seq++;
        heap_push(q, e);
    }
    /* Waiters sleep until the old earliest time, each to its own timeout:
     * all must look again, or one that times out could leave the key late. */
    if (e->heap_at == 0)
        pthread_cond_broadcast(&q->wake);
}

/* ---- the queue ---- */

workqueue_t *workqueue_new(const workqueue_options_t *opts)
{
    workqueue_options_t o = {0};
    if (opts)
        o = *opts;
    workqueue_t *q = lo_calloc(1, sizeof(*q));
    q->now_ms = o.now_ms ? o.now_ms : default_now;
    q->now_ctx = o.now_ctx;
    q->base_ms = o.backoff_base_ms > 0 ? o.backoff_base_ms : WORKQUEUE_BACKOFF_BASE_MS;
    q->max_ms = o.backoff_max_ms > 0 ? o.backoff_max_ms : WORKQUEUE_BACKOFF_MAX_MS;
    q->rng = o.seed ? o.seed : random_seed();
    q->nbuckets = 64;
    q->buckets = lo_calloc(q->nbuckets, sizeof(*q->buckets));
    pthread_mutex_init(&q->lock, NULL);
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&q->wake, &attr);
    pthread_condattr_destroy(&attr);
    return q;
}

void workqueue_free(workqueue_t *q)
{
    if (!q)
        return;
    for (size_t i = 0; i < q->nbuckets; i++) {
        for (entry_t *e = q->buckets[i], *next; e; e = next) {
            next = e->chain;
            free(e->key);
            free(e);
        }
    }
    free(q->buckets);
    free(q->heap);
    pthread_cond_destroy(&q->wake);
    pthread_mutex_destroy(&q->lock);
    free(q);
}

void workqueue_add(workqueue_t *q, const char *key)
{
    pthread_mutex_lock(&q->lock);
    if (!q->shutting_down) {
        promote_due(q); /* keys due before this add go before it */
        mark_dirty(q, table_get(q, key));
    }
    pthread_mutex_unlock(&q->lock);
}

void workqueue_add_after(workqueue_t *q, const char *key, int64_t delay_ms)
{
    if (delay_ms <= 0) {
        workqueue_add(q, key);
        return;
    }
    pthread_mutex_lock(&q->lock);
    if (!q->shutting_down)
        delay_entry(q, table_get(q, key), delay_ms);
    pthread_mutex_unlock(&q->lock);
}

void workqueue_add_rate_limited(workqueue_t *q, const char *key)
{
    pthread_mutex_lock(&q->lock);
    if (!q->shutting_down) {
        entry_t *e = table_get(q, key);
        int64_t delay = workqueue_backoff_ms(q->base_ms, q->max_ms, e->failures,
                                             splitmix64(&q->rng));
        if (e->failures < INT_MAX)
            e->failures++;
        delay_entry(q, e, delay);
    }
    pthread_mutex_unlock(&q->lock);
}

void workqueue_forget(workqueue_t *q, const char *key)
{
    pthread_mutex_lock(&q->lock);
    entry_t *e = table_find(q, key);
    if (e) {
        e->failures = 0;
        release_if_idle(q, e);
    }
    pthread_mutex_unlock(&q->lock);
}

int workqueue_num_requeues(workqueue_t *q, const char *key)
{
    pthread_mutex_lock(&q->lock);
    entry_t *e = table_find(q, key);
    int n = e ? e->failures : 0;
    pthread_mutex_unlock(&q->lock);
    return n;
}

/* Waits (under the lock) for a signal, the earliest due time, or limit (may be NULL). */
static void wait_for_work(workqueue_t *q, const struct timespec *limit)
{
    struct timespec due;
    const struct timespec *until = limit;
    if (q->nheap > 0) {
        int64_t in_ms = q->heap[0]->due - clock_now(q);
        mono_after(&due, in_ms > 0 ? in_ms : 0);
        if (!until || mono_before(&due, until))
            until = &due;
    }
    if (until)
        pthread_cond_timedwait(&q->wake, &q->lock, until);
    else
        pthread_cond_wait(&q->wake, &q->lock);
}

int workqueue_get(workqueue_t *q, char **key, int64_t timeout_ms)
{
    struct timespec limit;
    if (timeout_ms > 0)
        mono_after(&limit, timeout_ms);
    *key = NULL;
    int rc;
    pthread_mutex_lock(&q->lock);
    for (;;) {
        if (q->shutting_down) {
            rc = WORKQUEUE_SHUTDOWN;
            break;
        }
        promote_due(q);
        if (q->head) {
            entry_t *e = fifo_pop(q);
            e->processing = 1;
            e->dirty = 0;
            *key = lo_strdup(e->key);
            rc = WORKQUEUE_OK;
            break;
        }
        if (timeout_ms == 0 || (timeout_ms > 0 && mono_reached(&limit))) {
            rc = WORKQUEUE_TIMEOUT;
            break;
        }
        wait_for_work(q, timeout_ms > 0 ? &limit : NULL);
    }
    pthread_mutex_unlock(&q->lock);
    return rc;
}

int workqueue_done(workqueue_t *q, const char *key)
{
    int rc = WORKQUEUE_OK;
    pthread_mutex_lock(&q->lock);
    entry_t *e = table_find(q, key);
    if (!e || !e->processing) {
        rc = WORKQUEUE_EINVAL;
    } else {
        e->processing = 0;
        if (q->shutting_down)
            e->dirty = 0; /* invariant (4) */
        else if (e->dirty)
            fifo_push(q, e);
        release_if_idle(q, e);
    }
    pthread_mutex_unlock(&q->lock);
    return rc;
}

/* Drops every waiting key (under the lock): invariant (4). */
static void drop_waiting(workqueue_t *q)
{
    while (q->head) {
        entry_t *e = fifo_pop(q);
        e->dirty = 0;
        release_if_idle(q, e);
    }
    while (q->nheap > 0)
        release_if_idle(q, heap_pop_min(q));
}

void workqueue_shutdown(workqueue_t *q)
{
    pthread_mutex_lock(&q->lock);
    q->shutting_down = 1;
    drop_waiting(q);
    pthread_cond_broadcast(&q->wake);
    pthread_mutex_unlock(&q->lock);
}

int workqueue_shutting_down(workqueue_t *q)
{
    pthread_mutex_lock(&q->lock);
    int down = q->shutting_down;
    pthread_mutex_unlock(&q->lock);
    return down;
}

size_t workqueue_len(workqueue_t *q)
{
    pthread_mutex_lock(&q->lock);
    promote_due(q);
    size_t n = q->nready;
    pthread_mutex_unlock(&q->lock);
    return n;
}

size_t workqueue_delayed(workqueue_t *q)
{
    pthread_mutex_lock(&q->lock);
    promote_due(q);
    size_t n = q->nheap;
    pthread_mutex_unlock(&q->lock);
    return n;
}
