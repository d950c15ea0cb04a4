/*
 * stream.c - watch streams over h2o (see langop/stream.h for the threads
 * and the watcher state machine).
 *
 * Ownership: a hub_event is copied from the store's commit on the writer
 * thread and from then on belongs to the loop; it is reference-counted by
 * the watchers that hold it (loop thread only, so plain ints). Encoded
 * lines are chunks, also reference-counted: a JSON line of an event is
 * encoded once and the same bytes go to every watcher that sees it. A
 * watcher lives until its request's memory pool is cleared (the slot's
 * dispose callback), or, if a replay is still being read for it, until
 * that replay comes back.
 */
#include "langop/stream.h"

#include <stdlib.h>
#include <string.h>

#define STREAM_TICK_MS 1000
#define STREAM_MAX_IOVECS 64   /* chunks handed to h2o in one send (plus HTTP/1.1 framing) */

/* ---- chunks ---- */

typedef struct chunk {
    int refs;
    size_t len;
    char *data;
} chunk_t;

static chunk_t *chunk_new(char *data /* stolen */, size_t len)
{
    chunk_t *c = lo_malloc(sizeof(*c));
    c->refs = 1;
    c->len = len;
    c->data = data;
    return c;
}

static void chunk_release(chunk_t *c)
{
    if (c && --c->refs == 0) {
        free(c->data);
        free(c);
    }
}

/* ---- events ---- */

typedef struct hub_event {
    h2o_multithread_message_t message; /* must stay first */
    int refs;
    store_event_t ev;                  /* points into the fields below */
    char *resource, *ns, *name;
    json_t *object, *prev;
    chunk_t *json_line[4];             /* JSON line per event type, encoded on first use */
} hub_event_t;

static void event_release(hub_event_t *e)
{
    if (e == NULL || --e->refs > 0)
        return;
    for (int i = 0; i < 4; i++)
        chunk_release(e->json_line[i]);
    json_decref(e->object);
    json_decref(e->prev);
    free(e->resource);
    free(e->ns);
    free(e->name);
    free(e);
}

/* ---- watchers ---- */

enum watcher_state { W_REPLAYING, W_LIVE, W_CLOSING, W_DONE };

typedef struct watcher watcher_t;

typedef struct watcher_slot {
    watcher_t *w;
} watcher_slot_t;

struct watcher {
    h2o_generator_t gen;          /* must stay first */
    stream_hub_t *hub;
    h2o_req_t *req;               /* NULL once the request is gone */
    watch_spec_t *spec;
    enum watcher_state state;
    int64_t last_rv;              /* every change up to here was seen (sent or filtered out) */
    int columns_sent;
    int64_t deadline_ms, next_bookmark_ms;
    int replay_pending, orphan;
    watch_replay_t replay;        /* written by the worker while replay_pending */
    hub_event_t **held;           /* live events that arrived during the replay */
    size_t held_n, held_cap;
    chunk_t **queue;              /* waiting to be sent, in order */
    size_t q_n, q_cap, queued_bytes;
    chunk_t *inflight[STREAM_MAX_IOVECS]; /* handed to h2o, released on proceed */
    size_t inflight_n;
    int sending;
    int chunked;                  /* HTTP/1.1: we frame the chunks ourselves (see stream_watch_start) */
    char chunk_head[24];          /* the framing of the send in flight */
    watcher_t *prev, *next;       /* the hub's list (linked while not DONE) */
    int linked;
};

struct stream_hub {
    h2o_loop_t *loop;
    store_t *store;
    h2o_multithread_queue_t *queue;
    h2o_multithread_receiver_t receiver;
    stream_offload_fn offload;
    void *offload_ctx;
    stream_derive_fn derive;
    void *derive_ctx;
    watcher_t *watchers;
    size_t count;
    int64_t last_rv;              /* the newest change the hub has published */
    int64_t bookmark_interval_ms; /* an idle watch with bookmarks gets one this often */
    h2o_timeout_t tick;
    h2o_timeout_entry_t tick_entry;
};

static void hub_link(stream_hub_t *hub, watcher_t *w)
{
    w->prev = NULL;
    w->next = hub->watchers;
    if (hub->watchers)
        hub->watchers->prev = w;
    hub->watchers = w;
    w->linked = 1;
    hub->count++;
}

static void hub_unlink(watcher_t *w)
{
    if (!w->linked)
        return;
    stream_hub_t *hub = w->hub;
    if (w->prev)
        w->prev->next = w->next;
    else
        hub->watchers = w->next;
    if (w->next)
        w->next->prev = w->prev;
    w->linked = 0;
    hub->count--;
}

static void release_pending(watcher_t *w)
{
    for (size_t i = 0; i < w->held_n; i++)
        event_release(w->held[i]);
    w->held_n = 0;
    for (size_t i = 0; i < w->q_n; i++)
        chunk_release(w->queue[i]);
    w->q_n = 0;
    w->queued_bytes = 0;
}

static void release_inflight(watcher_t *w)
{
    for (size_t i = 0; i < w->inflight_n; i++)
        chunk_release(w->inflight[i]);
    w->inflight_n = 0;
}

static void watcher_free(watcher_t *w)
{
    release_pending(w);
    release_inflight(w);
    watch_replay_free(&w->replay);
    watch_spec_free(w->spec);
    free(w->spec);
    free(w->held);
    free(w->queue);
    free(w);
}

/* The request is gone (client closed, or h2o finished with it): never touch req again. */
static void watcher_detach(watcher_t *w)
{
    w->req = NULL;
    w->state = W_DONE;
    hub_unlink(w);
    release_pending(w);
}

/* Hands queued chunks to h2o; ends the response when closing and everything is out. */
static void watcher_flush(watcher_t *w)
{
    if (w->req == NULL || w->sending || w->state == W_DONE)
        return;
    if (w->q_n == 0 && w->state != W_CLOSING)
        return;
    h2o_iovec_t vecs[STREAM_MAX_IOVECS + 3];
    size_t n = w->q_n < STREAM_MAX_IOVECS ? w->q_n : STREAM_MAX_IOVECS;
    size_t nvecs = 0, bytes = 0;
    if (w->chunked && n > 0)
        nvecs++; /* room for the chunk head */
    for (size_t i = 0; i < n; i++) {
        w->inflight[i] = w->queue[i];
        w->queued_bytes -= w->queue[i]->len;
        bytes += w->queue[i]->len;
        vecs[nvecs++] = h2o_iovec_init(w->queue[i]->data, w->queue[i]->len);
    }
    w->inflight_n = n;
    if (n > 0)
        memmove(w->queue, w->queue + n, (w->q_n - n) * sizeof(*w->queue));
    w->q_n -= n;
    int final = w->state == W_CLOSING && w->q_n == 0;
    if (w->chunked) {
        if (n > 0) {
            snprintf(w->chunk_head, sizeof(w->chunk_head), "%zx\r\n", bytes);
            vecs[0] = h2o_iovec_init(w->chunk_head, strlen(w->chunk_head));
            vecs[nvecs++] = h2o_iovec_init(H2O_STRLIT("\r\n"));
        }
        if (final)
            vecs[nvecs++] = h2o_iovec_init(H2O_STRLIT("0\r\n\r\n"));
    }
    w->sending = 1;
    h2o_req_t *req = w->req;
    if (final) {
        /* h2o calls neither proceed nor stop after the final send; the pool's dispose frees us */
        w->state = W_DONE;
        hub_unlink(w);
    }
    h2o_send(req, vecs, nvecs, final ? H2O_SEND_STATE_FINAL : H2O_SEND_STATE_IN_PROGRESS);
}

static void watcher_close(watcher_t *w)
{
    if (w->state != W_DONE)
        w->state = W_CLOSING;
}

static void enqueue(watcher_t *w, chunk_t *c /* stolen */)
{
    if (w->state == W_DONE || w->req == NULL) {
        chunk_release(c);
        return;
    }
    if (w->queued_bytes + c->len > STREAM_MAX_QUEUE_BYTES) {
        /* a slow client: drop what it has not taken and end its watch; it resumes from its last rv */
        lo_log(LO_INFO, "watch of %s closed: the client does not keep up (%zu bytes queued)",
               w->spec->kind->plural, w->queued_bytes);
        chunk_release(c);
        for (size_t i = 0; i < w->q_n; i++)
            chunk_release(w->queue[i]);
        w->q_n = 0;
        w->queued_bytes = 0;
        watcher_close(w);
        return;
    }
    if (w->q_n == w->q_cap) {
        w->q_cap = w->q_cap ? 2 * w->q_cap : 16;
        w->queue = lo_realloc(w->queue, w->q_cap * sizeof(*w->queue));
    }
    w->queue[w->q_n++] = c;
    w->queued_bytes += c->len;
}

static void enqueue_bookmark(watcher_t *w, int64_t rv)
{
    size_t len;
    char *line = watch_encode_bookmark(w->spec, rv, &len);
    enqueue(w, chunk_new(line, len));
}

/* The line for event e as w sees it (new chunk reference), or NULL if w does not see it. */
static chunk_t *line_for(watcher_t *w, hub_event_t *e)
{
    const json_t *obj;
    int type = watch_event_type(w->spec, &e->ev, &obj);
    if (type == 0)
        return NULL;
    size_t len;
    int shared = w->spec->format == ENCODE_JSON && obj == e->object;
    if (shared && e->json_line[type]) {
        e->json_line[type]->refs++;
        return e->json_line[type];
    }
    int columns = w->spec->format == ENCODE_TABLE && !w->columns_sent;
    char *line = watch_encode(w->spec, (store_event_type_t)type, obj, e->ev.rv, columns, &len);
    w->columns_sent |= columns;
    chunk_t *c = chunk_new(line, len);
    if (shared) {
        e->json_line[type] = c;
        c->refs++;
    }
    return c;
}

static void deliver(watcher_t *w, hub_event_t *e)
{
    if (e->ev.rv <= w->last_rv)
        return; /* already covered by the replay */
    w->last_rv = e->ev.rv;
    chunk_t *c = line_for(w, e);
    if (c == NULL)
        return;
    enqueue(w, c);
    w->next_bookmark_ms = lo_now_ms() + w->hub->bookmark_interval_ms;
}

/* ---- h2o callbacks ---- */

static void on_proceed(h2o_generator_t *gen, h2o_req_t *req)
{
    (void)req;
    watcher_t *w = (watcher_t *)gen;
    w->sending = 0;
    release_inflight(w);
    watcher_flush(w);
}

static void on_stop(h2o_generator_t *gen, h2o_req_t *req)
{
    (void)req;
    watcher_detach((watcher_t *)gen);
}

static void on_slot_dispose(void *p)
{
    watcher_slot_t *slot = p;
    watcher_t *w = slot->w;
    watcher_detach(w);
    release_inflight(w);
    if (w->replay_pending)
        w->orphan = 1; /* freed when the replay comes back */
    else
        watcher_free(w);
}

/* ---- replay ---- */

static void replay_work(void *arg)
{
    watcher_t *w = arg;
    watch_replay(w->hub->store, w->spec, &w->replay);
}

static void replay_done(void *arg)
{
    watcher_t *w = arg;
    w->replay_pending = 0;
    if (w->orphan) {
        watcher_free(w);
        return;
    }
    if (w->state != W_REPLAYING)
        return;
    if (w->replay.len > 0) {
        enqueue(w, chunk_new(w->replay.data, w->replay.len));
        w->replay.data = NULL;
        w->replay.len = 0;
    }
    if (w->replay.failed) {
        watcher_close(w);
    } else {
        w->columns_sent = w->replay.columns_sent;
        w->last_rv = w->replay.up_to;
        w->state = W_LIVE;
        for (size_t i = 0; i < w->held_n; i++) {
            deliver(w, w->held[i]);
            event_release(w->held[i]);
        }
        w->held_n = 0;
    }
    watcher_flush(w);
}

void stream_watch_start(stream_hub_t *hub, h2o_req_t *req, watch_spec_t *spec, const char *content_type)
{
    watcher_t *w = lo_calloc(1, sizeof(*w));
    w->hub = hub;
    w->req = req;
    w->spec = spec;
    w->state = W_REPLAYING;
    int64_t now = lo_now_ms();
    w->deadline_ms = now + spec->timeout_ms;
    w->next_bookmark_ms = now + w->hub->bookmark_interval_ms;
    w->gen.proceed = on_proceed;
    w->gen.stop = on_stop;
    watcher_slot_t *slot = h2o_mem_alloc_shared(&req->pool, sizeof(*slot), on_slot_dispose);
    slot->w = w;
    /* registered before the replay is read: every change after the replay's snapshot is held for it */
    hub_link(hub, w);
    req->res.status = 200;
    req->res.reason = "OK";
    /* h2o keeps the pointer: the value must live in the request's pool */
    h2o_iovec_t ct = h2o_strdup(&req->pool, content_type, strlen(content_type));
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL, ct.base, ct.len);
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CACHE_CONTROL, NULL, H2O_STRLIT("no-cache, private"));
    if (req->version == 0x101) {
        /*
         * h2o's own chunked encoder holds back a send without data, and with
         * it the headers, until the first event: a quiet watch would look
         * stalled. Framing the chunks here bypasses it, so the headers go now.
         */
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_TRANSFER_ENCODING, NULL, H2O_STRLIT("chunked"));
        w->chunked = 1;
    }
    h2o_start_response(req, &w->gen);
    w->sending = 1;
    h2o_send(req, NULL, 0, H2O_SEND_STATE_IN_PROGRESS); /* the headers, now: the client sees the watch start */
    w->replay_pending = 1;
    hub->offload(hub->offload_ctx, replay_work, replay_done, w);
}

/* ---- the hub ---- */

static void publish(stream_hub_t *hub, hub_event_t *e)
{
    hub->last_rv = e->ev.rv;
    for (watcher_t *w = hub->watchers, *next; w; w = next) {
        next = w->next;
        if (w->state == W_REPLAYING) {
            if (w->held_n == w->held_cap) {
                w->held_cap = w->held_cap ? 2 * w->held_cap : 16;
                w->held = lo_realloc(w->held, w->held_cap * sizeof(*w->held));
            }
            e->refs++;
            w->held[w->held_n++] = e;
        } else if (w->state == W_LIVE) {
            deliver(w, e);
            watcher_flush(w);
        }
    }
}

static void on_events(h2o_multithread_receiver_t *receiver, h2o_linklist_t *messages)
{
    stream_hub_t *hub = H2O_STRUCT_FROM_MEMBER(stream_hub_t, receiver, receiver);
    while (!h2o_linklist_is_empty(messages)) {
        h2o_multithread_message_t *m = H2O_STRUCT_FROM_MEMBER(h2o_multithread_message_t, link, messages->next);
        h2o_linklist_unlink(&m->link);
        hub_event_t *e = (hub_event_t *)m;
        publish(hub, e);
        event_release(e);
    }
}

/* The store's commit hook: on the writer thread. Copies the change for the loop. */
static void on_commit(void *ctx, const store_event_t *ev)
{
    stream_hub_t *hub = ctx;
    hub_event_t *e = lo_calloc(1, sizeof(*e));
    e->refs = 1;
    e->resource = lo_strdup(ev->resource);
    e->ns = lo_strdup(ev->ns);
    e->name = lo_strdup(ev->name);
    e->object = json_deep_copy(ev->object);
    e->prev = ev->prev ? json_deep_copy(ev->prev) : NULL;
    if (hub->derive) {
        json_t *objects = json_pack("[O]", e->object);
        if (e->prev)
            json_array_append(objects, e->prev);
        hub->derive(hub->derive_ctx, e->resource, objects);
        json_decref(objects);
    }
    e->ev = (store_event_t){.rv = ev->rv, .type = ev->type, .resource = e->resource, .ns = e->ns, .name = e->name,
                            .object = e->object, .prev = e->prev};
    h2o_multithread_send_message(&hub->receiver, &e->message);
}

/* Once a second: deadlines and bookmarks. */
static void on_tick(h2o_timeout_entry_t *entry)
{
    stream_hub_t *hub = H2O_STRUCT_FROM_MEMBER(stream_hub_t, tick_entry, entry);
    int64_t now = lo_now_ms();
    for (watcher_t *w = hub->watchers, *next; w; w = next) {
        next = w->next;
        if (w->state != W_LIVE)
            continue;
        int64_t rv = w->last_rv > hub->last_rv ? w->last_rv : hub->last_rv;
        if (now >= w->deadline_ms) {
            if (w->spec->bookmarks)
                enqueue_bookmark(w, rv); /* where to resume, on request end */
            watcher_close(w);
            watcher_flush(w);
        } else if (w->spec->bookmarks && now >= w->next_bookmark_ms) {
            enqueue_bookmark(w, rv);
            w->next_bookmark_ms = now + w->hub->bookmark_interval_ms;
            watcher_flush(w);
        }
    }
    h2o_timeout_link(hub->loop, &hub->tick, &hub->tick_entry);
}

stream_hub_t *stream_hub_new(h2o_loop_t *loop, store_t *store, int64_t bookmark_interval_ms, stream_offload_fn offload,
                             void *offload_ctx, stream_derive_fn derive, void *derive_ctx)
{
    stream_hub_t *hub = lo_calloc(1, sizeof(*hub));
    hub->bookmark_interval_ms = bookmark_interval_ms > 0 ? bookmark_interval_ms : WATCH_BOOKMARK_INTERVAL_MS;
    hub->loop = loop;
    hub->store = store;
    hub->offload = offload;
    hub->offload_ctx = offload_ctx;
    hub->derive = derive;
    hub->derive_ctx = derive_ctx;
    store_current_rv(store, &hub->last_rv, NULL);
    hub->queue = h2o_multithread_create_queue(loop);
    h2o_multithread_register_receiver(hub->queue, &hub->receiver, on_events);
    h2o_timeout_init(loop, &hub->tick, STREAM_TICK_MS);
    hub->tick_entry.cb = on_tick;
    h2o_timeout_link(loop, &hub->tick, &hub->tick_entry);
    store_set_commit_hook(store, on_commit, hub);
    return hub;
}

void stream_hub_free(stream_hub_t *hub)
{
    if (hub == NULL)
        return;
    store_set_commit_hook(hub->store, NULL, NULL);
    h2o_timeout_unlink(&hub->tick_entry);
    h2o_timeout_dispose(hub->loop, &hub->tick);
    h2o_multithread_unregister_receiver(hub->queue, &hub->receiver);
    h2o_multithread_destroy_queue(hub->queue);
    free(hub);
}

size_t stream_watch_count(const stream_hub_t *hub)
{
    return hub->count;
}
