/*
 * workqueue.h - the reconcile thread's queue of keys to reconcile, with
 * client-go's workqueue semantics (a rate-limited, delaying queue).
 *
 * A key names an object ("LanguageCluster/c1", "LanguageAgent/ns/a"); the
 * queue holds its own copies. What it promises:
 *
 *   - Coalescing. A key waiting to be handed out is not added twice: add()
 *     of a waiting key keeps its place.
 *   - One worker per key. A key handed out by get() is "processing" until
 *     done(). Added again meanwhile, it is not handed out, but queued once,
 *     at the back, when done() is called. An add is never lost: a key added
 *     after a worker took it is handed out again after that worker is done.
 *   - FIFO. Keys are handed out in the order they became due.
 *   - Delays. add_after() queues a key once its due time has come; a key
 *     that is already waiting for one keeps the earlier of the two.
 *   - Backoff. add_rate_limited() is add_after() with a per-key
 *     exponential delay: the n-th call since forget() (n = 0, 1, ...) draws
 *     its delay from [d/2, d], d = base * 2^n capped at max (0.5 s doubling
 *     to 5 min by default; see workqueue_backoff_ms). The half-width jitter
 *     is the one the kube client retries with (kubeclient.h): keys that
 *     failed together do not all come back in the same millisecond, and no
 *     delay exceeds the cap. forget() resets the count; call it when a key
 *     reconciled, or it keeps growing (and keeps its memory).
 *
 * Shutdown. workqueue_shutdown() wakes every get(), which returns
 * WORKQUEUE_SHUTDOWN from then on; the keys waiting (due or delayed) are
 * dropped and later adds ignored; keys being processed stay so until
 * done(), which queues nothing any more. Unlike client-go, the queue does
 * not drain: a replica that lost the leader lease must stop writing at
 * once, and reconcile is level-triggered (whoever reconciles next lists
 * everything again), so no waiting key is worth finishing.
 *
 * Delays without a thread. Delayed keys sit in a min-heap on due time (ties
 * in order of arrival). There is no timer thread: a get() with nothing due
 * waits on the condition variable until the earliest due time (or its
 * timeout), and any call that finds keys due moves them to the FIFO first.
 * A new earliest due time wakes the waiters to wait less. One thread fewer
 * to start, stop and reason about; the cost is that several idle workers
 * wake together at a due time and all but one wait again.
 *
 * Clocks. Due times are read from options.now_ms (lo_now_ms by default), so
 * a test can move time by hand. get()'s timeout is real time: it bounds how
 * long the calling thread blocks, whatever the clock says. A wait for a due
 * time lasts (due - now_ms()) of real time; with a clock moved by hand,
 * tests poll with timeout 0.
 *
 * Threads: every function may be called from any thread at once (one mutex,
 * one condition variable), except workqueue_free(), once nobody else calls.
 */
#ifndef LANGOP_RECONCILE_WORKQUEUE_H
#define LANGOP_RECONCILE_WORKQUEUE_H

#include <stddef.h>
#include <stdint.h>

/* Return codes of workqueue_get() and workqueue_done(). */
#define WORKQUEUE_OK 0
#define WORKQUEUE_TIMEOUT (-1)  /* nothing came due within the timeout */
#define WORKQUEUE_SHUTDOWN (-2) /* workqueue_shutdown() was called */
#define WORKQUEUE_EINVAL (-3)   /* done() of a key that is not processing */

#define WORKQUEUE_BACKOFF_BASE_MS 500
#define WORKQUEUE_BACKOFF_MAX_MS (5 * 60 * 1000)

typedef struct workqueue_options {
    int64_t backoff_base_ms;      /* d of the first failure; 0: WORKQUEUE_BACKOFF_BASE_MS */
    int64_t backoff_max_ms;       /* cap on d; 0: WORKQUEUE_BACKOFF_MAX_MS */
    uint64_t seed;                /* of the jitter's generator; 0: a random one */
    int64_t (*now_ms)(void *ctx); /* monotonic milliseconds; NULL: lo_now_ms */
    void *now_ctx;                /* passed to now_ms */
} workqueue_options_t;

typedef struct workqueue workqueue_t;

/** A new, empty queue. opts may be NULL (all defaults). */
workqueue_t *workqueue_new(const workqueue_options_t *opts);
/** Frees the queue and every key in it. No call may be running or follow. */
void workqueue_free(workqueue_t *q);

/** Queues key (copied) unless it is already waiting; see "One worker per key". */
void workqueue_add(workqueue_t *q, const char *key);
/** Queues key once delay_ms have passed (<= 0: now); the earliest due time of a key wins. */
void workqueue_add_after(workqueue_t *q, const char *key, int64_t delay_ms);
/** add_after with the key's next backoff delay; counts one more requeue of key. */
void workqueue_add_rate_limited(workqueue_t *q, const char *key);
/** Resets key's requeue count (the next add_rate_limited waits about base again). */
void workqueue_forget(workqueue_t *q, const char *key);
/** How many add_rate_limited calls since the last forget(key). */
int workqueue_num_requeues(workqueue_t *q, const char *key);

/**
 * Takes the first due key: *key receives a copy the caller frees, and the
 * key is processing until workqueue_done(). Blocks until a key is due, the
 * queue shuts down or timeout_ms (real time) pass: 0 only looks, < 0 waits
 * without bound. Returns WORKQUEUE_OK, WORKQUEUE_TIMEOUT or
 * WORKQUEUE_SHUTDOWN (*key NULL for both).
 */
int workqueue_get(workqueue_t *q, char **key, int64_t timeout_ms);
/**
 * Ends the processing of key (the caller still frees its copy); a key added
 * while it was processing is queued now. WORKQUEUE_EINVAL (and nothing
 * done) when key is not processing.
 */
int workqueue_done(workqueue_t *q, const char *key);

/** Stops the queue for good: see "Shutdown". */
void workqueue_shutdown(workqueue_t *q);
/** 1 once workqueue_shutdown() was called. */
int workqueue_shutting_down(workqueue_t *q);

/** Keys due and waiting to be handed out (not those processing or delayed). */
size_t workqueue_len(workqueue_t *q);
/** Keys waiting for a due time (add_after, add_rate_limited). */
size_t workqueue_delayed(workqueue_t *q);

/**
 * The backoff delay of a key's n-th requeue (failures = n, from 0):
 * d = min(base_ms * 2^failures, max_ms), then d/2 + random % (d - d/2 + 1),
 * so within [d/2, d]. Pure; what add_rate_limited uses with its generator.
 */
int64_t workqueue_backoff_ms(int64_t base_ms, int64_t max_ms, int failures, uint64_t random);

#endif
