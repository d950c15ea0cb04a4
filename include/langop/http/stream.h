/*
 * stream.h - watch streams over h2o: the hub that follows the store's feed
 * (feed.h) and fans each change out to every open watch, and the glue
 * between a watch's state machine (watcher.h) and its request; the same
 * glue sends a LIST's answer page by page (liststream.h).
 *
 * Threads: everything here runs on the event-loop thread, except the
 * feed's callback, which only posts each committed batch to the loop
 * through an h2o multithread queue (in rv order), and the replay pages,
 * which the server's workers read (the offload function).
 *
 * A slow watcher never blocks writers or other watchers: see watcher.h for
 * the states, the replay's flow control and the slow-client cut-off.
 */
#ifndef LANGOP_STREAM_H
#define LANGOP_STREAM_H

#include <h2o.h>
#include "langop/registry/liststream.h"
#include "langop/registry/watch.h"
#include "langop/storage/store.h"

typedef struct stream_hub stream_hub_t;

/** Runs work(arg) on a worker thread, then done(arg) on the loop thread. */
typedef void (*stream_offload_fn)(void *ctx, void (*work)(void *arg), void (*done)(void *arg), void *arg);

/**
 * Creates the hub on the loop's thread and subscribes it to the store's
 * feed. bookmark_interval_ms: how often an idle watch with bookmarks gets
 * one (0: WATCH_BOOKMARK_INTERVAL_MS). store is borrowed and must outlive
 * the hub.
 */
stream_hub_t *stream_hub_new(h2o_loop_t *loop, store_t *store, int64_t bookmark_interval_ms, stream_offload_fn offload,
                             void *offload_ctx);
/**
 * At shutdown, once the last write is answered: ends every watch as its
 * deadline would (what is queued, a last BOOKMARK if asked for, then the
 * end of the stream); stream_watch_count() falls to 0 as the ends are sent.
 */
void stream_hub_end_watches(stream_hub_t *hub);
/** Stops following the feed (at shutdown, before the store stops). */
void stream_hub_stop(stream_hub_t *hub);
/** Stops and frees the hub; open watches are ended first by the caller's shutdown. */
void stream_hub_free(stream_hub_t *hub);

/**
 * Starts streaming a watch of spec (stolen) as the answer to req: sends
 * the 200 headers at once, then the replay, page by page, then live events.
 */
void stream_watch_start(stream_hub_t *hub, h2o_req_t *req, watch_spec_t *spec, const char *content_type);

/**
 * Sends list (stolen), a LIST's answer read in pages (liststream.h), as
 * the body of req, whose status and headers the caller has set: page by
 * page as the client takes them, with the flow control of a replay. A
 * HEAD gets the headers alone. Not counted as a watch.
 */
void stream_list_start(stream_hub_t *hub, h2o_req_t *req, list_stream_t *list);

/** Number of open watches (for health and tests). */
size_t stream_watch_count(const stream_hub_t *hub);

#endif
