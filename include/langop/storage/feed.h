/*
 * feed.h - the store's change feed: every committed change, in rv order, to
 * every subscriber (the watch hub; the reconcile thread next).
 *
 * The writer publishes one feed_batch_t per commit, after the commit is
 * durable and outside its transaction. A batch is immutable and
 * reference-counted (atomically): a subscriber that keeps it past its
 * callback takes a reference (feed_batch_ref) and drops it on whichever
 * thread it likes (feed_batch_release). Events of one batch, and batches of
 * successive commits, arrive in rv order; an rv is never skipped.
 *
 * A subscriber's callback runs on the writer thread: it must only hand the
 * batch to its own thread (a queue, a pipe) and return, never block.
 *
 * Each event carries the stored bytes of its object (body: compact JSON with
 * metadata.resourceVersion = rv), so a consumer that sends JSON needs no
 * encoding, and the decoded tree (object) for those that select or render.
 */
#ifndef LANGOP_FEED_H
#define LANGOP_FEED_H

#include <stddef.h>
#include <stdint.h>
#include <jansson.h>
#include "langop/storage/records.h"

typedef struct feed feed_t; /* also named by store.h, which hands it out */

typedef struct feed_event {
    int64_t rv;
    store_event_type_t type;
    char *resource, *ns, *name;
    json_t *object;        /* state at rv (DELETED: the last state, with the deletion rv); read-only */
    json_t *prev;          /* MODIFIED/DELETED: the state before, or NULL; read-only */
    char *body;            /* object as stored: compact JSON, NUL-terminated */
    size_t body_len;
} feed_event_t;

typedef struct feed_batch {
    int refs;              /* atomic */
    size_t n;
    feed_event_t *events;  /* n events, rv ascending */
} feed_batch_t;

feed_batch_t *feed_batch_ref(feed_batch_t *b);
void feed_batch_release(feed_batch_t *b);

/** Called on the writer thread for each committed batch; ref the batch to keep it. */
typedef void (*feed_fn)(void *ctx, feed_batch_t *batch);

feed_t *feed_new(void);
void feed_free(feed_t *feed);

/** Adds a subscriber; it receives every batch published after this returns. Returns an id (> 0). */
int feed_subscribe(feed_t *feed, feed_fn fn, void *ctx);
/** Removes a subscriber; once this returns its callback is never called again. */
void feed_unsubscribe(feed_t *feed, int id);

/** The newest rv published (0 before the first batch). */
int64_t feed_last_rv(feed_t *feed);

/* ---- for the writer ---- */

/** Sets the rv the feed starts after (the store's rv at open). */
void feed_start_at(feed_t *feed, int64_t rv);
/** Hands b (stolen) to every subscriber, in order of subscription. */
void feed_publish(feed_t *feed, feed_batch_t *b);
/** A new batch of n zeroed events, one reference. */
feed_batch_t *feed_batch_new(size_t n);

#endif
