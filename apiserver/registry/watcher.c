/*
 * watcher.c - one watch's state machine (see langop/watcher.h).
 */
#include "langop/registry/watcher.h"

#include <stdlib.h>
#include <string.h>

/* ---- chunks ---- */

watch_chunk_t *watch_chunk_new(char *data, size_t len)
{
    watch_chunk_t *c = lo_malloc(sizeof(*c));
    c->refs = 1;
    c->len = len;
    c->data = data;
    return c;
}

watch_chunk_t *watch_chunk_ref(watch_chunk_t *c)
{
    c->refs++;
    return c;
}

void watch_chunk_release(watch_chunk_t *c)
{
    if (c && --c->refs == 0) {
        free(c->data);
        free(c);
    }
}

/* ---- the queue ---- */

static void queue_drop(watcher_t *w)
{
    for (size_t i = 0; i < w->q_n; i++)
        watch_chunk_release(w->queue[i]);
    w->q_n = 0;
    w->queued_bytes = 0;
}

static void queue_push(watcher_t *w, watch_chunk_t *c /* stolen */)
{
    if (w->q_n == w->q_cap) {
        w->q_cap = w->q_cap ? 2 * w->q_cap : 16;
        w->queue = lo_realloc(w->queue, w->q_cap * sizeof(*w->queue));
    }
    w->queue[w->q_n++] = c;
    w->queued_bytes += c->len;
}

static void close_watch(watcher_t *w)
{
    if (w->state != WATCHER_DONE)
        w->state = WATCHER_CLOSING;
}

static void enqueue_bookmark(watcher_t *w, int64_t rv)
{
    size_t len;
    char *line = watch_encode_bookmark(w->spec, rv, &len);
    queue_push(w, watch_chunk_new(line, len));
}

/* ---- the machine ---- */

void watcher_init(watcher_t *w, const watch_spec_t *spec, int64_t now_ms, int64_t bookmark_interval_ms)
{
    memset(w, 0, sizeof(*w));
    w->state = WATCHER_REPLAYING;
    w->spec = spec;
    w->bookmark_interval_ms = bookmark_interval_ms > 0 ? bookmark_interval_ms : WATCH_BOOKMARK_INTERVAL_MS;
    w->low_water = WATCHER_REPLAY_LOW_WATER;
    w->deadline_ms = now_ms + spec->timeout_ms;
    w->next_bookmark_ms = now_ms + w->bookmark_interval_ms;
    watch_cursor_init(&w->cursor, spec);
}

void watcher_free(watcher_t *w)
{
    queue_drop(w);
    free(w->queue);
    w->queue = NULL;
    w->q_cap = 0;
    watch_cursor_free(&w->cursor);
}

int watcher_wants_page(const watcher_t *w)
{
    return w->state == WATCHER_REPLAYING && !w->page_pending && w->queued_bytes < w->low_water;
}

void watcher_page_begin(watcher_t *w)
{
    w->page_pending = 1;
}

int watcher_page_done(watcher_t *w, watch_page_t *page, int64_t feed_rv, int64_t tail_from)
{
    int from_tail = 0;
    w->page_pending = 0;
    if (w->state != WATCHER_REPLAYING) { /* closed meanwhile: the page has no one to go to */
        watch_page_free(page);
        return 0;
    }
    if (page->broken) { /* what is queued is part of an answer that cannot be completed */
        queue_drop(w);
        w->broken = 1;
        close_watch(w);
        watch_page_free(page);
        return 0;
    }
    if (page->len > 0) {
        queue_push(w, watch_chunk_new(page->data, page->len));
        page->data = NULL;
        page->len = 0;
    }
    w->columns_sent |= page->columns_sent;
    if (page->failed || page->final) {
        close_watch(w);
    } else if (page->caught_up && (page->seen >= feed_rv || page->seen + 1 >= tail_from)) {
        /* the feed's later events (and the tail's, handed over now) have rv > seen: each sent once */
        w->state = WATCHER_LIVE;
        w->last_rv = page->seen;
        from_tail = page->seen < feed_rv;
    }
    watch_page_free(page);
    return from_tail;
}

void watcher_event(watcher_t *w, const store_event_t *ev, watcher_line_fn line, void *ctx, int64_t now_ms)
{
    if (w->state != WATCHER_LIVE || ev->rv <= w->last_rv)
        return;
    w->last_rv = ev->rv;
    const json_t *obj;
    int type = watch_event_type(w->spec, ev, &obj);
    if (type == 0)
        return;
    int columns = w->spec->format == ENCODE_TABLE && !w->columns_sent;
    watch_chunk_t *c = line(ctx, w->spec, (store_event_type_t)type, obj, columns);
    w->columns_sent |= columns;
    if (w->queued_bytes + c->len > WATCHER_MAX_QUEUE_BYTES) {
        /* a slow client: drop what it has not taken and end its watch; it resumes from its last rv */
        lo_log(LO_INFO, "watch of %s closed: the client does not keep up (%zu bytes queued)",
               w->spec->kind->plural, w->queued_bytes);
        watch_chunk_release(c);
        queue_drop(w);
        w->dropped = 1;
        close_watch(w);
        return;
    }
    queue_push(w, c);
    w->next_bookmark_ms = now_ms + w->bookmark_interval_ms;
}

void watcher_end(watcher_t *w, int64_t feed_rv)
{
    if (w->state == WATCHER_LIVE && w->spec->bookmarks)
        enqueue_bookmark(w, w->last_rv > feed_rv ? w->last_rv : feed_rv); /* where to resume */
    close_watch(w);
}

void watcher_tick(watcher_t *w, int64_t now_ms, int64_t feed_rv)
{
    if (w->state != WATCHER_REPLAYING && w->state != WATCHER_LIVE)
        return;
    if (now_ms >= w->deadline_ms) {
        watcher_end(w, feed_rv);
    } else if (w->state == WATCHER_LIVE && w->spec->bookmarks && now_ms >= w->next_bookmark_ms) {
        enqueue_bookmark(w, w->last_rv > feed_rv ? w->last_rv : feed_rv);
        w->next_bookmark_ms = now_ms + w->bookmark_interval_ms;
    }
}

size_t watcher_take(watcher_t *w, watch_chunk_t **out, size_t max)
{
    size_t n = w->q_n < max ? w->q_n : max;
    for (size_t i = 0; i < n; i++) {
        out[i] = w->queue[i];
        w->queued_bytes -= w->queue[i]->len;
    }
    if (n > 0)
        memmove(w->queue, w->queue + n, (w->q_n - n) * sizeof(*w->queue));
    w->q_n -= n;
    return n;
}

int watcher_finished(const watcher_t *w)
{
    return w->state == WATCHER_CLOSING && w->q_n == 0 && !w->page_pending;
}

void watcher_gone(watcher_t *w)
{
    w->state = WATCHER_DONE;
    queue_drop(w);
}
