/*
 * stream.c - watch streams over h2o (see langop/stream.h): the hub that
 * follows the store's feed on the loop thread, and the glue between each
 * watch's state machine (watcher.h) and its h2o request.
 *
 * Threads: the feed calls on_feed on the store's writer thread; it only
 * takes a reference to the batch and posts it to the loop through an h2o
 * multithread queue, in commit order. Everything else runs on the loop,
 * except replay pages, which a worker reads (the offload function) into the
 * stream's page while page_pending; the loop does not touch the cursor then.
 *
 * Encoding once: each feed event gets a hub_event with a cache of its lines
 * per event type and wire format (JSON lines straight from the stored
 * bytes; Table rows rendered once per include option), so every watcher
 * that sees an event sends the same bytes.
 *
 * Life of a stream: it lives until its request's memory pool is cleared
 * (the slot's dispose callback), or, if a page is still being read for it,
 * until that page comes back.
 *
 * A LIST's answer (liststream.h) is a stream too: the same pages, flow
 * control and framing, its pages read by liststream_next instead of a
 * watch replay. It is not one of the hub's watches: it gets no events and
 * no ticks, and ends after its last page (or is cut off if a page breaks).
 */
#include "langop/http/stream.h"

#include <malloc.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "langop/registry/liststream.h"
#include "langop/registry/watcher.h"
#include "langop/storage/feed.h"

#define STREAM_TICK_MS 1000
/* the recent feed events the hub keeps, for replays that end just behind it: bounded in number and in
 * the bytes they hold, their bodies and decoded trees (a small object's trees are ten times its body:
 * counting the bodies alone let 4096 small events take 35 MB) */
#define STREAM_TAIL_EVENTS 4096
#define STREAM_TAIL_BYTES (8u * 1024u * 1024u)
#define STREAM_MAX_IOVECS 64   /* chunks handed to h2o in one send (plus HTTP/1.1 framing) */
#define TABLE_INCLUDES 3       /* table_include_t values */

/* ---- events, with their lines encoded once ---- */

typedef struct hub_event {
    store_event_t ev;                               /* points into the feed event */
    const feed_event_t *fe;
    watch_chunk_t *json[4];                         /* per type, for the event's own object */
    watch_chunk_t *table[4][TABLE_INCLUDES];        /* per type and include, without column definitions */
} hub_event_t;

/* A feed batch on its way to the loop. */
typedef struct hub_message {
    h2o_multithread_message_t message;  /* must stay first */
    feed_batch_t *batch;
} hub_message_t;

static void hub_event_clear(hub_event_t *e)
{
    for (int t = 0; t < 4; t++) {
        watch_chunk_release(e->json[t]);
        for (int i = 0; i < TABLE_INCLUDES; i++)
            watch_chunk_release(e->table[t][i]);
    }
}

/* watcher_line_fn: the event's line as spec sees it, from the cache when it can be shared. */
static watch_chunk_t *event_line(void *ctx, const watch_spec_t *spec, store_event_type_t type, const json_t *object,
                                 int with_columns)
{
    hub_event_t *e = ctx;
    size_t len;
    int own = object == e->ev.object;
    watch_chunk_t **slot = NULL;
    if (own && spec->format == ENCODE_JSON)
        slot = &e->json[type];
    else if (own && spec->format == ENCODE_TABLE && !with_columns && spec->include < TABLE_INCLUDES)
        slot = &e->table[type][spec->include];
    if (slot && *slot)
        return watch_chunk_ref(*slot);
    char *line = own && spec->format == ENCODE_JSON
                     ? watch_encode_body(type, e->fe->body, e->fe->body_len, &len)
                     : watch_encode(spec, type, object, e->ev.rv, with_columns, &len);
    watch_chunk_t *c = watch_chunk_new(line, len);
    if (slot)
        *slot = watch_chunk_ref(c);
    return c;
}

/* ---- streams ---- */

typedef struct stream stream_t;

/* A recent batch the hub keeps. */
typedef struct tail_entry {
    feed_batch_t *batch;          /* a ref */
    size_t bytes;                 /* what it holds (batch_bytes) */
} tail_entry_t;

typedef struct stream_slot {
    stream_t *s;
} stream_slot_t;

struct stream {
    h2o_generator_t gen;          /* must stay first */
    stream_hub_t *hub;
    h2o_req_t *req;               /* NULL once the request is gone */
    watch_spec_t *spec;           /* owned, or borrowed from list */
    list_stream_t *list;          /* a LIST's answer (owned): its pages are read from it */
    watcher_t w;
    watch_page_t page;            /* written by the worker while w.page_pending */
    int page_columns;             /* the page being read must carry the Table columns */
    int orphan;                   /* the request is gone while a page is read: free on its return */
    watch_chunk_t *inflight[STREAM_MAX_IOVECS]; /* handed to h2o, released on proceed */
    size_t inflight_n;
    int sending;
    int chunked;                  /* HTTP/1.1: we frame the chunks ourselves (see stream_begin) */
    char chunk_head[24];          /* the framing of the send in flight */
    stream_t *prev, *next;        /* the hub's list (linked while the request lives) */
    int linked;
};

struct stream_hub {
    h2o_loop_t *loop;
    store_t *store;
    int feed_id;
    h2o_multithread_queue_t *queue;
    h2o_multithread_receiver_t receiver;
    stream_offload_fn offload;
    void *offload_ctx;
    stream_t *streams;
    size_t count;
    int64_t feed_rv;              /* the newest rv the feed has delivered to the loop */
    tail_entry_t *tail;           /* the recent batches, oldest first, within the STREAM_TAIL_* bounds */
    size_t tail_n, tail_cap, tail_events, tail_bytes;
    int64_t bookmark_interval_ms; /* an idle watch with bookmarks gets one this often */
    h2o_timeout_t tick;
    h2o_timeout_entry_t tick_entry;
};

static void hub_link(stream_hub_t *hub, stream_t *s)
{
    s->prev = NULL;
    s->next = hub->streams;
    if (hub->streams)
        hub->streams->prev = s;
    hub->streams = s;
    s->linked = 1;
    hub->count++;
}

static void hub_unlink(stream_t *s)
{
    if (!s->linked)
        return;
    stream_hub_t *hub = s->hub;
    if (s->prev)
        s->prev->next = s->next;
    else
        hub->streams = s->next;
    if (s->next)
        s->next->prev = s->prev;
    s->linked = 0;
    hub->count--;
}

static void release_inflight(stream_t *s)
{
    for (size_t i = 0; i < s->inflight_n; i++)
        watch_chunk_release(s->inflight[i]);
    s->inflight_n = 0;
}

/*
 * glibc keeps what a thread freed in that thread's arena: the pages a long
 * list's reading and encoding went through would stay with the workers
 * that read it. Once a list is sent they are handed back, on a worker (the
 * trim locks each arena in turn; the loop does not wait for it).
 */
static void trim_work(void *arg)
{
    (void)arg;
    malloc_trim(0);
}

static void trim_done(void *arg)
{
    (void)arg;
}

static void stream_free(stream_t *s)
{
    if (s->list)
        s->hub->offload(s->hub->offload_ctx, trim_work, trim_done, NULL);
    release_inflight(s);
    watch_page_free(&s->page);
    watcher_free(&s->w);
    if (s->list) {
        liststream_free(s->list);
    } else {
        watch_spec_free(s->spec);
        free(s->spec);
    }
    free(s);
}

/* The request is gone (client closed, or h2o finished with it): never touch req again. */
static void stream_detach(stream_t *s)
{
    s->req = NULL;
    watcher_gone(&s->w);
    hub_unlink(s);
}

static void page_work(void *arg);
static void page_done(void *arg);

/* Hands what the watcher queued to h2o, or ends the response; asks for the next replay page. */
static void stream_pump(stream_t *s)
{
    if (s->req == NULL || s->w.state == WATCHER_DONE)
        return;
    if (watcher_wants_page(&s->w)) {
        watcher_page_begin(&s->w);
        s->page_columns = s->spec->format == ENCODE_TABLE && !s->w.columns_sent;
        s->hub->offload(s->hub->offload_ctx, page_work, page_done, s);
    }
    if (s->sending)
        return;
    int final = 0;
    size_t n = watcher_take(&s->w, s->inflight, STREAM_MAX_IOVECS);
    if (n == 0 && !(final = watcher_finished(&s->w)))
        return;
    final = final || (n > 0 && watcher_finished(&s->w));
    h2o_iovec_t vecs[STREAM_MAX_IOVECS + 3];
    size_t nvecs = 0, bytes = 0;
    if (s->chunked && n > 0)
        nvecs++; /* room for the chunk head */
    for (size_t i = 0; i < n; i++) {
        bytes += s->inflight[i]->len;
        vecs[nvecs++] = h2o_iovec_init(s->inflight[i]->data, s->inflight[i]->len);
    }
    s->inflight_n = n;
    /* a broken answer is cut off: no last chunk, and h2o resets the stream (HTTP/2) or closes the connection */
    int cut = final && s->w.broken;
    if (s->chunked) {
        if (n > 0) {
            snprintf(s->chunk_head, sizeof(s->chunk_head), "%zx\r\n", bytes);
            vecs[0] = h2o_iovec_init(s->chunk_head, strlen(s->chunk_head));
            vecs[nvecs++] = h2o_iovec_init(H2O_STRLIT("\r\n"));
        }
        if (final && !cut)
            vecs[nvecs++] = h2o_iovec_init(H2O_STRLIT("0\r\n\r\n"));
    }
    s->sending = 1;
    h2o_req_t *req = s->req;
    if (final) {
        /* h2o calls neither proceed nor stop after the final send; the pool's dispose frees us */
        watcher_gone(&s->w);
        hub_unlink(s);
    }
    h2o_send(req, vecs, nvecs, cut ? H2O_SEND_STATE_ERROR : final ? H2O_SEND_STATE_FINAL : H2O_SEND_STATE_IN_PROGRESS);
}

/* ---- h2o callbacks ---- */

static void on_proceed(h2o_generator_t *gen, h2o_req_t *req)
{
    (void)req;
    stream_t *s = (stream_t *)gen;
    s->sending = 0;
    release_inflight(s);
    stream_pump(s);
}

static void on_stop(h2o_generator_t *gen, h2o_req_t *req)
{
    (void)req;
    stream_detach((stream_t *)gen);
}

static void on_slot_dispose(void *p)
{
    stream_slot_t *slot = p;
    stream_t *s = slot->s;
    stream_detach(s);
    release_inflight(s);
    if (s->w.page_pending)
        s->orphan = 1; /* freed when the page comes back */
    else
        stream_free(s);
}

/* ---- replay pages ---- */

static void page_work(void *arg)
{
    stream_t *s = arg;
    if (s->list)
        liststream_next(s->list, s->hub->store, &s->page);
    else
        watch_read_page(s->hub->store, s->spec, &s->w.cursor, s->page_columns, &s->page);
}

static void publish_to(stream_t *s, const feed_event_t *fe, int64_t now);

/* The oldest rv the hub can hand over from its tail (feed_rv + 1 when it holds nothing). */
static int64_t tail_from(const stream_hub_t *hub)
{
    return hub->tail_n > 0 ? hub->tail[0].batch->events[0].rv : hub->feed_rv + 1;
}

static void page_done(void *arg)
{
    stream_t *s = arg;
    stream_hub_t *hub = s->hub;
    if (s->orphan) {
        s->w.page_pending = 0;
        stream_free(s);
        return;
    }
    if (watcher_page_done(&s->w, &s->page, hub->feed_rv, tail_from(hub))) {
        int64_t now = lo_now_ms();
        for (size_t b = 0; b < hub->tail_n; b++)
            for (size_t i = 0; i < hub->tail[b].batch->n; i++)
                publish_to(s, &hub->tail[b].batch->events[i], now); /* the watcher skips rv <= what it has seen */
    }
    stream_pump(s);
}

/* A stream for req that the request's pool frees (the slot); spec is the stream's from now on. */
static stream_t *stream_new(stream_hub_t *hub, h2o_req_t *req, watch_spec_t *spec)
{
    stream_t *s = lo_calloc(1, sizeof(*s));
    s->hub = hub;
    s->req = req;
    s->spec = spec;
    watcher_init(&s->w, spec, lo_now_ms(), hub->bookmark_interval_ms);
    s->gen.proceed = on_proceed;
    s->gen.stop = on_stop;
    stream_slot_t *slot = h2o_mem_alloc_shared(&req->pool, sizeof(*slot), on_slot_dispose);
    slot->s = s;
    return s;
}

/* Starts the response (its status and headers set), sending the headers now; then the first page is asked for. */
static void stream_begin(stream_t *s)
{
    h2o_req_t *req = s->req;
    if (req->version == 0x101) {
        /*
         * h2o's own chunked encoder holds back a send without data, and with
         * it the headers, until the first event: a quiet watch would look
         * stalled. Framing the chunks here bypasses it, so the headers go now.
         */
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_TRANSFER_ENCODING, NULL, H2O_STRLIT("chunked"));
        s->chunked = 1;
    }
    h2o_start_response(req, &s->gen);
    s->sending = 1;
    h2o_send(req, NULL, 0, H2O_SEND_STATE_IN_PROGRESS); /* the headers, now: the client sees the answer start */
    stream_pump(s); /* asks for the first page; the rest waits for proceed */
}

void stream_watch_start(stream_hub_t *hub, h2o_req_t *req, watch_spec_t *spec, const char *content_type)
{
    stream_t *s = stream_new(hub, req, spec);
    hub_link(hub, s);
    req->res.status = 200;
    req->res.reason = "OK";
    /* h2o keeps the pointer: the value must live in the request's pool */
    h2o_iovec_t ct = h2o_strdup(&req->pool, content_type, strlen(content_type));
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL, ct.base, ct.len);
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CACHE_CONTROL, NULL, H2O_STRLIT("no-cache, private"));
    stream_begin(s);
}

void stream_list_start(stream_hub_t *hub, h2o_req_t *req, list_stream_t *list)
{
    if (h2o_memis(req->input.method.base, req->input.method.len, H2O_STRLIT("HEAD"))) {
        static h2o_generator_t headers_only = {NULL, NULL};
        liststream_free(list);
        h2o_start_response(req, &headers_only);
        h2o_send(req, NULL, 0, H2O_SEND_STATE_FINAL);
        return;
    }
    stream_t *s = stream_new(hub, req, (watch_spec_t *)liststream_spec(list));
    s->list = list;
    s->w.low_water = LISTSTREAM_LOW_WATER; /* a page in flight, the next one read meanwhile: no more */
    stream_begin(s);
}

/* ---- the hub ---- */

static hub_event_t hub_event_of(const feed_event_t *fe)
{
    return (hub_event_t){.fe = fe,
                         .ev = {.rv = fe->rv, .type = fe->type, .resource = fe->resource, .ns = fe->ns,
                                .name = fe->name, .object = fe->object, .prev = fe->prev}};
}

/* One event to one stream (a tail hand-over: no line shared with others). */
static void publish_to(stream_t *s, const feed_event_t *fe, int64_t now)
{
    hub_event_t e = hub_event_of(fe);
    watcher_event(&s->w, &e.ev, event_line, &e, now);
    hub_event_clear(&e);
}

static void publish(stream_hub_t *hub, const feed_event_t *fe)
{
    hub_event_t e = hub_event_of(fe);
    hub->feed_rv = fe->rv;
    int64_t now = lo_now_ms();
    for (stream_t *s = hub->streams, *next; s; s = next) {
        next = s->next;
        watcher_event(&s->w, &e.ev, event_line, &e, now);
        stream_pump(s);
    }
    hub_event_clear(&e);
}

/*
 * About the bytes jansson holds for the tree v, from the sizes of its
 * allocations (an object, its hash table and one entry per member; a
 * string and its text; an array and its table): 5.3 kB estimated for a
 * small LanguagePersona whose decoding was measured at 5.2 kB.
 */
static size_t tree_bytes(const json_t *v)
{
    size_t n = 0;
    switch (json_typeof(v)) {
    case JSON_OBJECT: {
        const char *key;
        json_t *member;
        n = 224;
        json_object_foreach((json_t *)v, key, member) n += 80 + strlen(key) + tree_bytes(member);
        return n;
    }
    case JSON_ARRAY: {
        size_t i;
        json_t *item;
        n = 64 + 8 * (json_array_size(v) > 8 ? json_array_size(v) : 8);
        json_array_foreach(v, i, item) n += tree_bytes(item);
        return n;
    }
    case JSON_STRING:
        return 72 + json_string_length(v);
    case JSON_INTEGER:
    case JSON_REAL:
        return 32;
    default: /* true, false and null are shared */
        return 0;
    }
}

/* What a batch holds: its bodies and the trees of its objects (a tree shared by two events counts twice). */
static size_t batch_bytes(const feed_batch_t *b)
{
    size_t n = 0;
    for (size_t i = 0; i < b->n; i++) {
        const feed_event_t *e = &b->events[i];
        n += e->body_len + (e->object ? tree_bytes(e->object) : 0) + (e->prev ? tree_bytes(e->prev) : 0);
    }
    return n;
}

/* Keeps batch (a new ref taken) at the end of the tail, dropping the oldest beyond the bounds. */
static void tail_push(stream_hub_t *hub, feed_batch_t *batch)
{
    if (batch->n == 0)
        return;
    if (hub->tail_n == hub->tail_cap) {
        hub->tail_cap = hub->tail_cap ? 2 * hub->tail_cap : 64;
        hub->tail = lo_realloc(hub->tail, hub->tail_cap * sizeof(*hub->tail));
    }
    tail_entry_t *t = &hub->tail[hub->tail_n++];
    *t = (tail_entry_t){.batch = feed_batch_ref(batch), .bytes = batch_bytes(batch)};
    hub->tail_events += batch->n;
    hub->tail_bytes += t->bytes;
    size_t drop = 0;
    while (drop < hub->tail_n && (hub->tail_events > STREAM_TAIL_EVENTS || hub->tail_bytes > STREAM_TAIL_BYTES)) {
        hub->tail_events -= hub->tail[drop].batch->n;
        hub->tail_bytes -= hub->tail[drop].bytes;
        feed_batch_release(hub->tail[drop++].batch);
    }
    if (drop > 0) {
        memmove(hub->tail, hub->tail + drop, (hub->tail_n - drop) * sizeof(*hub->tail));
        hub->tail_n -= drop;
    }
}

static void on_batches(h2o_multithread_receiver_t *receiver, h2o_linklist_t *messages)
{
    stream_hub_t *hub = H2O_STRUCT_FROM_MEMBER(stream_hub_t, receiver, receiver);
    while (!h2o_linklist_is_empty(messages)) {
        h2o_multithread_message_t *m = H2O_STRUCT_FROM_MEMBER(h2o_multithread_message_t, link, messages->next);
        h2o_linklist_unlink(&m->link);
        hub_message_t *hm = (hub_message_t *)m;
        for (size_t i = 0; i < hm->batch->n; i++)
            publish(hub, &hm->batch->events[i]);
        tail_push(hub, hm->batch);
        feed_batch_release(hm->batch);
        free(hm);
    }
}

/* The feed's callback, on the writer thread: hand the batch to the loop. */
static void on_feed(void *ctx, feed_batch_t *batch)
{
    stream_hub_t *hub = ctx;
    hub_message_t *hm = lo_calloc(1, sizeof(*hm));
    hm->batch = feed_batch_ref(batch);
    h2o_multithread_send_message(&hub->receiver, &hm->message);
}

/* Once a second: deadlines and bookmarks. */
static void on_tick(h2o_timeout_entry_t *entry)
{
    stream_hub_t *hub = H2O_STRUCT_FROM_MEMBER(stream_hub_t, tick_entry, entry);
    int64_t now = lo_now_ms();
    for (stream_t *s = hub->streams, *next; s; s = next) {
        next = s->next;
        watcher_tick(&s->w, now, hub->feed_rv);
        stream_pump(s);
    }
    h2o_timeout_link(hub->loop, &hub->tick, &hub->tick_entry);
}

stream_hub_t *stream_hub_new(h2o_loop_t *loop, store_t *store, int64_t bookmark_interval_ms, stream_offload_fn offload,
                             void *offload_ctx)
{
    stream_hub_t *hub = lo_calloc(1, sizeof(*hub));
    hub->bookmark_interval_ms = bookmark_interval_ms > 0 ? bookmark_interval_ms : WATCH_BOOKMARK_INTERVAL_MS;
    hub->loop = loop;
    hub->store = store;
    hub->offload = offload;
    hub->offload_ctx = offload_ctx;
    hub->queue = h2o_multithread_create_queue(loop);
    h2o_multithread_register_receiver(hub->queue, &hub->receiver, on_batches);
    h2o_timeout_init(loop, &hub->tick, STREAM_TICK_MS);
    hub->tick_entry.cb = on_tick;
    h2o_timeout_link(loop, &hub->tick, &hub->tick_entry);
    /* subscribed first, then the rv the feed stands at: a batch published in between is both counted
     * and delivered, so no rv falls between the two */
    feed_t *feed = store_feed(store);
    hub->feed_id = feed_subscribe(feed, on_feed, hub);
    hub->feed_rv = feed_last_rv(feed);
    return hub;
}

void stream_hub_end_watches(stream_hub_t *hub)
{
    for (stream_t *s = hub->streams, *next; s; s = next) {
        next = s->next; /* a final send unlinks s */
        watcher_end(&s->w, hub->feed_rv);
        stream_pump(s);
    }
}

void stream_hub_stop(stream_hub_t *hub)
{
    if (hub && hub->feed_id) {
        feed_unsubscribe(store_feed(hub->store), hub->feed_id);
        hub->feed_id = 0;
    }
}

void stream_hub_free(stream_hub_t *hub)
{
    if (hub == NULL)
        return;
    stream_hub_stop(hub);
    for (size_t i = 0; i < hub->tail_n; i++)
        feed_batch_release(hub->tail[i].batch);
    free(hub->tail);
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
