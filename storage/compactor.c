/*
 * compactor.c - periodic compaction of the event log (see langop/compactor.h).
 */
#include "langop/storage/compactor.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <time.h>

struct compactor {
    store_t *store;
    int64_t interval_ms, min_revisions, min_age_seconds;
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    int stopping;
    int running;
};

static void deadline_after(struct timespec *ts, int64_t ms)
{
    clock_gettime(CLOCK_MONOTONIC, ts);
    ts->tv_sec += ms / 1000;
    ts->tv_nsec += (ms % 1000) * 1000000;
    if (ts->tv_nsec >= 1000000000) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000;
    }
}

static void *compactor_main(void *arg)
{
    compactor_t *c = arg;
    pthread_mutex_lock(&c->lock);
    while (!c->stopping) {
        struct timespec until;
        deadline_after(&until, c->interval_ms);
        while (!c->stopping && pthread_cond_timedwait(&c->wake, &c->lock, &until) != ETIMEDOUT)
            ;
        if (c->stopping)
            break;
        pthread_mutex_unlock(&c->lock);
        lo_err_t err = {0};
        int64_t horizon = 0;
        if (store_compact(c->store, c->min_revisions, c->min_age_seconds, &horizon, &err) != STORE_OK)
            lo_log(LO_INFO, "compaction failed: %s", err.message);
        else
            lo_log(LO_DEBUG, "compacted the event log up to revision %lld", (long long)horizon);
        lo_err_clear(&err);
        pthread_mutex_lock(&c->lock);
    }
    pthread_mutex_unlock(&c->lock);
    return NULL;
}

compactor_t *compactor_start(store_t *store, int64_t interval_ms, int64_t min_revisions, int64_t min_age_seconds)
{
    compactor_t *c = lo_calloc(1, sizeof(*c));
    c->store = store;
    c->interval_ms = interval_ms;
    c->min_revisions = min_revisions;
    c->min_age_seconds = min_age_seconds;
    pthread_mutex_init(&c->lock, NULL);
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&c->wake, &attr);
    pthread_condattr_destroy(&attr);
    if (interval_ms > 0 && pthread_create(&c->thread, NULL, compactor_main, c) == 0)
        c->running = 1;
    return c;
}

void compactor_stop(compactor_t *c)
{
    if (c == NULL)
        return;
    pthread_mutex_lock(&c->lock);
    c->stopping = 1;
    pthread_cond_signal(&c->wake);
    pthread_mutex_unlock(&c->lock);
    if (c->running)
        pthread_join(c->thread, NULL);
    pthread_cond_destroy(&c->wake);
    pthread_mutex_destroy(&c->lock);
    free(c);
}
