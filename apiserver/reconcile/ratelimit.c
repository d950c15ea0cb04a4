/*
 * ratelimit.c - the token bucket (see langop/reconcile/ratelimit.h).
 *
 * The bucket is kept as one instant, empty_at: the time at which it holds
 * (or held) no token. At time now it holds (now - empty_at) / interval
 * tokens, at most burst; so a full bucket has empty_at = now - burst *
 * interval, and taking a token moves empty_at one interval later. When that
 * puts empty_at after now, the token is a reservation, ours at empty_at;
 * a later take reserves after it, which gives the order of arrival.
 * Microseconds in integers, not a float count of tokens: a bucket refilled
 * a millisecond at a time must give exactly qps a second, not one token
 * less for the rounding of 0.01 added a hundred times.
 */
#include "langop/reconcile/ratelimit.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <time.h>

#include "langop/core/common.h"

struct ratelimit {
    pthread_mutex_t lock;
    pthread_cond_t wake;   /* broadcast by ratelimit_stop() only */
    int64_t interval_us;   /* per token; 0: no limit */
    int64_t full_us;       /* burst * interval_us: how far empty_at may trail now */
    int64_t empty_at;      /* microseconds on the clock; after now while tokens are reserved */
    int burst;
    int64_t (*now_ms)(void *ctx);
    void *now_ctx;
    int stopped;
};

static int64_t default_now(void *ctx)
{
    (void)ctx;
    return lo_now_ms();
}

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

static int64_t now_us(ratelimit_t *rl)
{
    return rl->now_ms(rl->now_ctx) * 1000;
}

/*
 * Microseconds per token: at least 1 (the clock cannot tell a million qps
 * from more), at most a day (slower limits nothing a reconciler needs).
 */
static int64_t interval_of(double qps)
{
    double us = 1e6 / qps;
    if (us < 1)
        return 1;
    if (us > 86400e6)
        return (int64_t)86400e6;
    return (int64_t)(us + 0.5);
}

ratelimit_t *ratelimit_new(const ratelimit_options_t *opts)
{
    ratelimit_t *rl = lo_calloc(1, sizeof(*rl));
    rl->burst = opts->burst < 1 ? 1 : opts->burst;
    if (opts->qps > 0) {
        rl->interval_us = interval_of(opts->qps);
        if (__builtin_mul_overflow(rl->interval_us, (int64_t)rl->burst, &rl->full_us))
            rl->full_us = INT64_MAX / 4; /* room left for now - full_us */
    }
    rl->now_ms = opts->now_ms ? opts->now_ms : default_now;
    rl->now_ctx = opts->now_ctx;
    rl->empty_at = now_us(rl) - rl->full_us;
    pthread_mutex_init(&rl->lock, NULL);
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&rl->wake, &attr);
    pthread_condattr_destroy(&attr);
    return rl;
}

void ratelimit_free(ratelimit_t *rl)
{
    if (!rl)
        return;
    pthread_cond_destroy(&rl->wake);
    pthread_mutex_destroy(&rl->lock);
    free(rl);
}

/*
 * Reserves a token (under the lock): the milliseconds until it is ours
 * (0: now), or -1, reserving nothing, when that is beyond timeout_ms.
 */
static int64_t reserve(ratelimit_t *rl, int64_t timeout_ms)
{
    if (rl->interval_us == 0)
        return 0;
    int64_t now = now_us(rl);
    int64_t full = now - rl->full_us; /* tokens beyond burst are not kept */
    int64_t empty = (rl->empty_at > full ? rl->empty_at : full) + rl->interval_us;
    int64_t wait_us = empty > now ? empty - now : 0;
    if (timeout_ms >= 0 && timeout_ms < INT64_MAX / 1000 && wait_us > timeout_ms * 1000)
        return -1;
    rl->empty_at = empty;
    return (wait_us + 999) / 1000; /* round up: never hand a token out early */
}

int ratelimit_take(ratelimit_t *rl, int64_t timeout_ms)
{
    int rc = RATELIMIT_OK;
    pthread_mutex_lock(&rl->lock);
    int64_t wait_ms = rl->stopped ? 0 : reserve(rl, timeout_ms);
    if (wait_ms > 0) {
        struct timespec until;
        mono_after(&until, wait_ms);
        while (!rl->stopped && pthread_cond_timedwait(&rl->wake, &rl->lock, &until) != ETIMEDOUT)
            ;
    }
    if (rl->stopped)
        rc = RATELIMIT_STOPPED;
    else if (wait_ms < 0)
        rc = RATELIMIT_TIMEOUT;
    pthread_mutex_unlock(&rl->lock);
    return rc;
}

void ratelimit_stop(ratelimit_t *rl)
{
    pthread_mutex_lock(&rl->lock);
    rl->stopped = 1;
    pthread_cond_broadcast(&rl->wake);
    pthread_mutex_unlock(&rl->lock);
}

double ratelimit_tokens(ratelimit_t *rl)
{
    pthread_mutex_lock(&rl->lock);
    double t = rl->burst;
    if (rl->interval_us > 0) {
        t = (double)(now_us(rl) - rl->empty_at) / (double)rl->interval_us;
        if (t > rl->burst)
            t = rl->burst;
    }
    pthread_mutex_unlock(&rl->lock);
    return t;
}
