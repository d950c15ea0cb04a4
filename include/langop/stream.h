/*
 * stream.h - watch streams over h2o: the hub that follows the store's
 * changes and fans them out to every open watch, each with a bounded
 * queue, bookmarks and a deadline.
 *
 * Threads: everything here runs on the event-loop thread, except the
 * store's commit hook, which copies each change and posts it to the loop
 * through an h2o multithread queue (in rv order: the store calls its hook
 * under its writer lock). A watch's replay (the current state, or the
 * changes since its resourceVersion) is read off the loop by the server's
 * workers (the offload function).
 *
 * A watcher's states:
 *   REPLAYING -> LIVE      replay delivered; held live events with rv > replay.up_to follow
 *   REPLAYING -> CLOSING   the replay failed (ERROR event sent) or the deadline passed
 *   LIVE      -> CLOSING   deadline (timeoutSeconds), or its queue overflowed (slow client)
 *   CLOSING   -> DONE      the last bytes are handed to h2o with the final flag
 *   any       -> DONE      the client went away
 * A slow watcher never blocks writers or other watchers: when its queue
 * exceeds STREAM_MAX_QUEUE_BYTES it is closed, and the client resumes from
 * the last resourceVersion it saw.
 */
#ifndef LANGOP_STREAM_H
#define LANGOP_STREAM_H

#include <h2o.h>
#include "langop/store.h"
#include "langop/watch.h"

#define STREAM_MAX_QUEUE_BYTES (8u * 1024u * 1024u)

typedef struct stream_hub stream_hub_t;

/** Runs work(arg) on a worker thread, then done(arg) on the loop thread. */
typedef void (*stream_offload_fn)(void *ctx, void (*work)(void *arg), void (*done)(void *arg), void *arg);

/**
 * Overlays computed status on a change's objects (array of the object and,
 * if any, its previous state), on the writer thread, before they are sent:
 * watch events show what every read shows.
 */
typedef void (*stream_derive_fn)(void *ctx, const char *resource, json_t *objects);

/**
 * Creates the hub on the loop's thread and installs the store's commit hook.
 * bookmark_interval_ms: how often an idle watch with bookmarks gets one
 * (0: WATCH_BOOKMARK_INTERVAL_MS).
 * store (and derive_ctx) are borrowed and must outlive the hub.
 */
stream_hub_t *stream_hub_new(h2o_loop_t *loop, store_t *store, int64_t bookmark_interval_ms, stream_offload_fn offload,
                             void *offload_ctx, stream_derive_fn derive, void *derive_ctx);
/** Removes the commit hook and frees the hub; open watches are ended first by the caller's shutdown. */
void stream_hub_free(stream_hub_t *hub);

/**
 * Starts streaming a watch of spec (stolen) as the answer to req: sends
 * the 200 headers at once, then the replay, then live events.
 */
void stream_watch_start(stream_hub_t *hub, h2o_req_t *req, watch_spec_t *spec, const char *content_type);

/** Number of open watches (for health and tests). */
size_t stream_watch_count(const stream_hub_t *hub);

#endif
