/*
 * feed.c - the change feed (see langop/feed.h).
 *
 * Subscribers are few and change rarely (a hub at start, a reconcile thread),
 * so they sit in a small array, in order of subscription (appended, and
 * closed up on unsubscribe), under a mutex that publish holds while it
 * calls them: unsubscribe therefore waits out a publish in progress, which
 * is what makes "never called again" true.
 */
#include "langop/storage/feed.h"

#include <pthread.h>
#include <stdlib.h>

#define FEED_MAX_SUBSCRIBERS 16

typedef struct subscriber {
    int id;            /* 0: free slot */
    feed_fn fn;
    void *ctx;
} subscriber_t;

struct feed {
    pthread_mutex_t lock;
    subscriber_t subs[FEED_MAX_SUBSCRIBERS];   /* subs[0..n-1], oldest first */
    int n;
    int next_id;
    int64_t last_rv;   /* under lock */
};

feed_batch_t *feed_batch_new(size_t n)
{
    feed_batch_t *b = lo_calloc(1, sizeof(*b));
    b->refs = 1;
    b->n = n;
    b->events = lo_calloc(n ? n : 1, sizeof(*b->events));
    return b;
}

feed_batch_t *feed_batch_ref(feed_batch_t *b)
{
    __atomic_add_fetch(&b->refs, 1, __ATOMIC_RELAXED);
    return b;
}

void feed_batch_release(feed_batch_t *b)
{
    if (b == NULL || __atomic_sub_fetch(&b->refs, 1, __ATOMIC_ACQ_REL) > 0)
        return;
    for (size_t i = 0; i < b->n; i++) {
        feed_event_t *e = &b->events[i];
        free(e->resource);
        free(e->ns);
        free(e->name);
        free(e->body);
        json_decref(e->object);
        json_decref(e->prev);
    }
    free(b->events);
    free(b);
}

feed_t *feed_new(void)
{
    feed_t *f = lo_calloc(1, sizeof(*f));
    pthread_mutex_init(&f->lock, NULL);
    f->next_id = 1;
    return f;
}

void feed_free(feed_t *feed)
{
    if (feed == NULL)
        return;
    pthread_mutex_destroy(&feed->lock);
    free(feed);
}

int feed_subscribe(feed_t *feed, feed_fn fn, void *ctx)
{
    int id = 0;
    pthread_mutex_lock(&feed->lock);
    if (feed->n < FEED_MAX_SUBSCRIBERS) {
        id = feed->next_id++;
        feed->subs[feed->n++] = (subscriber_t){id, fn, ctx};
    }
    pthread_mutex_unlock(&feed->lock);
    if (id == 0)
        lo_fatal("feed: more than %d subscribers", FEED_MAX_SUBSCRIBERS);
    return id;
}

void feed_unsubscribe(feed_t *feed, int id)
{
    pthread_mutex_lock(&feed->lock);
    int kept = 0;
    for (int i = 0; i < feed->n; i++)
        if (feed->subs[i].id != id)
            feed->subs[kept++] = feed->subs[i];
    feed->n = kept;
    pthread_mutex_unlock(&feed->lock);
}

int64_t feed_last_rv(feed_t *feed)
{
    pthread_mutex_lock(&feed->lock);
    int64_t rv = feed->last_rv;
    pthread_mutex_unlock(&feed->lock);
    return rv;
}

void feed_start_at(feed_t *feed, int64_t rv)
{
    pthread_mutex_lock(&feed->lock);
    feed->last_rv = rv;
    pthread_mutex_unlock(&feed->lock);
}

void feed_publish(feed_t *feed, feed_batch_t *b)
{
    pthread_mutex_lock(&feed->lock);
    if (b->n > 0)
        feed->last_rv = b->events[b->n - 1].rv;
    for (int i = 0; i < feed->n; i++)
        feed->subs[i].fn(feed->subs[i].ctx, b);
    pthread_mutex_unlock(&feed->lock);
    feed_batch_release(b);
}
