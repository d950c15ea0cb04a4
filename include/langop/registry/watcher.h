/*
 * watcher.h - one watch's state machine, without the transport: what to
 * send next, when to read the next replay page, when to go live, when to
 * close. stream.c feeds it (pages, live events, ticks, "sent") and carries
 * out what it says over h2o; nothing here knows h2o, so every state and
 * transition is unit-tested alone (tests/unit/test_watcher.c).
 *
 * States:
 *   REPLAYING  reading the replay page by page (watch.h): a page is asked
 *              for only when none is in flight and less than
 *              WATCHER_REPLAY_LOW_WATER bytes wait to be sent, so a replay
 *              of any size flows as fast as the client takes it and never
 *              sits in memory whole. Live events are not kept meanwhile:
 *              the pages read them from the store's log.
 *     -> LIVE     when a page has caught up with the event log and covers
 *                 every rv the feed has delivered (watcher_page_done's
 *                 feed_rv), or when what it lacks is still in the hub's
 *                 recent tail (tail_from: the oldest rv the transport can
 *                 hand over from memory; it then hands over those events,
 *                 rv > seen, as live ones): from then on events come from
 *                 the feed, each with rv > last_rv exactly once. Without the
 *                 tail, a replay under a steady stream of writes could keep
 *                 reading pages and never go live.
 *     -> CLOSING  the page failed (an ERROR line), the deadline passed or
 *                 the server stops (watcher_end).
 *   LIVE       -> CLOSING when the deadline passes or the server stops
 *                 (watcher_end; a last BOOKMARK if
 *                 asked for), or when a live event would take the queue
 *                 over WATCHER_MAX_QUEUE_BYTES: a client that does not
 *                 read is dropped (its queue discarded) and resumes from
 *                 the last rv it saw; it never slows writers or others.
 *   CLOSING    -> DONE once the queue is empty and no page is in flight
 *                 (watcher_finished: the transport sends the end).
 *
 * The same machine streams a LIST's answer (liststream.h): its pages are
 * the list's, read with the same flow control, it is never LIVE (no page
 * is caught up with the event log), and its last page (final) closes it
 * once sent. A page that says the answer is broken drops what is queued
 * and closes it as broken: the transport cuts the response off instead of
 * ending it, so the client sees it incomplete.
 *   any        -> DONE when the client goes away (watcher_gone).
 * CLOSING and DONE are final: nothing revives a closed watcher.
 *
 * Chunks are reference-counted byte strings (one event line, or a page),
 * so the same bytes of an event go to every watcher that sees it.
 */
#ifndef LANGOP_WATCHER_H
#define LANGOP_WATCHER_H

#include <stddef.h>
#include <stdint.h>
#include "langop/registry/watch.h"
#include "langop/storage/store.h"

#define WATCHER_MAX_QUEUE_BYTES (8u * 1024u * 1024u)
#define WATCHER_REPLAY_LOW_WATER (1024u * 1024u)

typedef struct watch_chunk {
    int refs;              /* one thread: the loop's */
    size_t len;
    char *data;
} watch_chunk_t;

/** A chunk holding data (stolen, malloc'd), one reference. */
watch_chunk_t *watch_chunk_new(char *data, size_t len);
watch_chunk_t *watch_chunk_ref(watch_chunk_t *c);
void watch_chunk_release(watch_chunk_t *c);

typedef enum watcher_state {
    WATCHER_REPLAYING,
    WATCHER_LIVE,
    WATCHER_CLOSING,
    WATCHER_DONE,
} watcher_state_t;

typedef struct watcher {
    watcher_state_t state;
    const watch_spec_t *spec;      /* borrowed */
    watch_cursor_t cursor;         /* the replay's position; the page reader's while a page is in flight */
    int page_pending;
    int64_t last_rv;               /* LIVE: every change up to here was seen (sent or filtered out) */
    int columns_sent;              /* a Table watch sent its column definitions */
    int64_t deadline_ms;
    int64_t next_bookmark_ms;
    int64_t bookmark_interval_ms;
    int dropped;                   /* closed because the client did not keep up */
    int broken;                    /* closed by a broken page: cut the response off, do not end it */
    size_t low_water;              /* read the next page when less than this waits to be sent */
    watch_chunk_t **queue;         /* waiting to be sent, in order */
    size_t q_n, q_cap;
    size_t queued_bytes;
} watcher_t;

/** A watcher in REPLAYING, with low_water WATCHER_REPLAY_LOW_WATER (the transport may lower it). */
void watcher_init(watcher_t *w, const watch_spec_t *spec, int64_t now_ms, int64_t bookmark_interval_ms);
/** Releases the queue and the cursor (in any state). */
void watcher_free(watcher_t *w);

/** Whether the transport should read the next replay page now (then it calls watcher_page_begin). */
int watcher_wants_page(const watcher_t *w);
void watcher_page_begin(watcher_t *w);
/**
 * A page came back (its data stolen). feed_rv is the newest rv the feed has
 * delivered to this watcher's thread; tail_from the oldest rv of the recent
 * events the transport still holds (feed_rv + 1 when it holds none). The
 * page goes live when it covers feed_rv, or when the events after it are
 * all in the tail: then it returns 1, and the transport hands over, with
 * watcher_event, every tail event with rv > the page's seen, in order.
 * Returns 0 otherwise.
 */
int watcher_page_done(watcher_t *w, watch_page_t *page, int64_t feed_rv, int64_t tail_from);

/** Gives the line of a live event as spec sees it: a new reference. */
typedef watch_chunk_t *(*watcher_line_fn)(void *ctx, const watch_spec_t *spec, store_event_type_t type,
                                          const json_t *object, int with_columns);

/**
 * A live event from the feed. REPLAYING: ignored (the replay reads it from
 * the log). LIVE: sent once if rv > last_rv and the spec sees it (line()
 * makes its bytes); a queue overflow closes the watcher.
 */
void watcher_event(watcher_t *w, const store_event_t *ev, watcher_line_fn line, void *ctx, int64_t now_ms);

/**
 * The request ends now (its deadline, or the server stops): REPLAYING or
 * LIVE -> CLOSING; a LIVE watch with bookmarks gets a last BOOKMARK at
 * max(last_rv, feed_rv), where its client resumes.
 */
void watcher_end(watcher_t *w, int64_t feed_rv);

/** Once in a while: the deadline (watcher_end), and idle bookmarks at feed_rv. */
void watcher_tick(watcher_t *w, int64_t now_ms, int64_t feed_rv);

/** Takes up to max queued chunks, in order, into out (the caller releases them once sent). */
size_t watcher_take(watcher_t *w, watch_chunk_t **out, size_t max);

/** CLOSING with nothing left to send or read: the transport ends the response and marks it DONE. */
int watcher_finished(const watcher_t *w);

/** The client went away, or the end was sent: DONE, the queue released. */
void watcher_gone(watcher_t *w);

#endif
