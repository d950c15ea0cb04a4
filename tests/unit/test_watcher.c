/*
 * test_watcher.c - one watch's state machine (apiserver/watcher.c), state
 * by state and transition by transition, with no store and no h2o: pages
 * are built by hand (as watch_read_page would return them), live events
 * are store_event_t values, and lines come from a small watcher_line_fn
 * that writes "TYPE name rv\n".
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "fixtures.h"
#include "langop/registry/watch.h"
#include "langop/registry/watcher.h"
#include "langop/request/reqinfo.h"
#include "langop/schema/schema.h"

#define T0 1000000             /* "now" at the start of every watch, in ms */
#define TIMEOUT_MS 10000       /* timeoutSeconds=10 */
#define INTERVAL_MS 1000       /* the idle bookmark interval of the tests */

#define NS_PATH "/apis/langop.io/v1alpha1/namespaces/team/languagemodels"
#define TABLE_ACCEPT "application/json;as=Table;v=v1;g=meta.k8s.io"


/* A page comes back and the transport holds no recent events (tail_from = feed_rv + 1). */
static int page_done_no_tail(watcher_t *w, watch_page_t *p, int64_t feed_rv)
{
    return watcher_page_done(w, p, feed_rv, feed_rv + 1);
}

static const schema_kind_t *models;

static int setup(void **state)
{
    if (fx_registry_setup(state) != 0)
        return -1;
    models = schema_kind_by_resource("languagemodels");
    return models ? 0 : -1;
}

/* A watch spec for target (parsed as the API does); fails the test on a bad request. */
static void parse(const char *target, const char *accept, watch_spec_t *spec)
{
    reqinfo_t info;
    lo_err_t err = {0};
    memset(&info, 0, sizeof(info));
    assert_int_equal(reqinfo_parse("GET", target, strlen(target), &info, &err), 0);
    options_t opts;
    if (options_decode(&info, accept, &opts, &err) != 0 || watch_spec_parse(models, &info, &opts, spec, &err) != 0)
        fail_msg("%s: %d %s", target, err.code, err.message);
    options_free(&opts);
    reqinfo_free(&info);
    lo_err_clear(&err);
}

/* The usual spec: the namespace team, current state first, 10 s; bookmarks as asked. */
static void spec_plain(watch_spec_t *spec, int bookmarks)
{
    parse(bookmarks ? NS_PATH "?watch=1&timeoutSeconds=10&allowWatchBookmarks=true" : NS_PATH "?watch=1&timeoutSeconds=10",
          NULL, spec);
    assert_int_equal(spec->timeout_ms, TIMEOUT_MS);
}

/* ---- pages, events and lines by hand ---- */

/* A page as watch_read_page returns one; text NULL: an empty page. */
static watch_page_t mk_page(const char *text, int64_t seen, int caught_up, int failed)
{
    watch_page_t p = {.seen = seen, .caught_up = caught_up, .failed = failed};
    if (text) {
        p.data = lo_strdup(text);
        p.len = strlen(text);
    }
    return p;
}

/* A page of n bytes of filler lines. */
static watch_page_t mk_page_bytes(size_t n, int64_t seen, int caught_up)
{
    watch_page_t p = {.seen = seen, .caught_up = caught_up};
    p.data = lo_malloc(n + 1);
    memset(p.data, 'p', n);
    p.data[n - 1] = '\n';
    p.data[n] = '\0';
    p.len = n;
    return p;
}

typedef struct test_event {
    store_event_t ev;
    json_t *obj, *prev;
} test_event_t;

static json_t *model(const char *ns, const char *name, const char *tier, int64_t rv)
{
    char text[24];
    snprintf(text, sizeof(text), "%lld", (long long)rv);
    return json_pack("{s:s, s:s, s:{s:s, s:s, s:s, s:{s:s}}}", "apiVersion", "langop.io/v1alpha1", "kind",
                     "LanguageModel", "metadata", "name", name, "namespace", ns, "resourceVersion", text, "labels",
                     "tier", tier);
}

/* A live event of languagemodels ns/name labelled tier=<tier>, at rv (free with ev_free). */
static test_event_t mk_ev(store_event_type_t type, int64_t rv, const char *ns, const char *name, const char *tier)
{
    test_event_t e = {.obj = model(ns, name, tier, rv)};
    e.ev = (store_event_t){.rv = rv, .type = type, .resource = "languagemodels", .ns = ns, .name = name,
                           .object = e.obj};
    return e;
}

static void ev_free(test_event_t *e)
{
    json_decref(e->obj);
    json_decref(e->prev);
}

/* The line function's record of its calls; it writes "TYPE name rv[ columns]\n", or pad bytes when pad is set. */
typedef struct lines {
    int calls;
    int with_columns[16];
    store_event_type_t types[16];
    size_t pad;                 /* > 0: every line is this long */
    watch_chunk_t *shared;      /* set: every line is a reference to it (an event's cached bytes) */
} lines_t;

static watch_chunk_t *line_fn(void *ctx, const watch_spec_t *spec, store_event_type_t type, const json_t *object,
                              int with_columns)
{
    lines_t *l = ctx;
    assert_non_null(spec);
    if (l->calls < 16) {
        l->types[l->calls] = type;
        l->with_columns[l->calls] = with_columns;
    }
    l->calls++;
    if (l->shared)
        return watch_chunk_ref(l->shared);
    const json_t *meta = json_object_get(object, "metadata");
    char *text = lo_sprintf("%s %s %s%s\n", store_event_type_name(type),
                            json_string_value(json_object_get(meta, "name")),
                            json_string_value(json_object_get(meta, "resourceVersion")),
                            with_columns ? " columns" : "");
    size_t len = strlen(text);
    if (l->pad > len) {
        text = lo_realloc(text, l->pad);
        memset(text + len, ' ', l->pad - len);
        len = l->pad;
    }
    return watch_chunk_new(text, len);
}

/* Sends ev to w (LIVE or not) with the test line function. */
static void send(watcher_t *w, test_event_t *e, lines_t *l, int64_t now)
{
    watcher_event(w, &e->ev, line_fn, l, now);
}

/* Takes every queued chunk, checks the byte count, releases them; returns their text concatenated (free it). */
static char *take_all(watcher_t *w, size_t *chunks)
{
    watch_chunk_t *out[64];
    size_t total = w->queued_bytes, n = watcher_take(w, out, 64), len = 0;
    char *text = lo_malloc(total + 1);
    for (size_t i = 0; i < n; i++) {
        assert_true(len + out[i]->len <= total);
        memcpy(text + len, out[i]->data, out[i]->len);
        len += out[i]->len;
        watch_chunk_release(out[i]);
    }
    text[len] = '\0';
    assert_int_equal(len, total);
    assert_int_equal(w->q_n, 0);
    assert_int_equal(w->queued_bytes, 0);
    if (chunks)
        *chunks = n;
    return text;
}

/* Asserts the queue holds exactly text (in chunks chunks, unless chunks is 0), and empties it. */
static void assert_queue(watcher_t *w, const char *want, size_t chunks)
{
    size_t n;
    char *text = take_all(w, &n);
    assert_string_equal(text, want);
    if (chunks)
        assert_int_equal(n, chunks);
    free(text);
}

/* A watcher brought LIVE at rv by one empty caught-up page. */
static void go_live(watcher_t *w, int64_t rv)
{
    assert_true(watcher_wants_page(w));
    watcher_page_begin(w);
    watch_page_t p = mk_page(NULL, rv, 1, 0);
    page_done_no_tail(w, &p, rv);
    assert_int_equal(w->state, WATCHER_LIVE);
    assert_int_equal(w->last_rv, rv);
}

/* ---- chunks ---- */

static void test_chunks(void **state)
{
    (void)state;
    watch_chunk_t *c = watch_chunk_new(lo_strdup("x\n"), 2);
    assert_int_equal(c->refs, 1);
    assert_int_equal(c->len, 2);
    assert_ptr_equal(watch_chunk_ref(c), c);
    assert_int_equal(c->refs, 2);
    watch_chunk_release(c);
    assert_int_equal(c->refs, 1);
    watch_chunk_release(c);
    watch_chunk_release(NULL);
}

/* ---- REPLAYING ---- */

static void test_init(void **state)
{
    (void)state;
    watch_spec_t spec;
    spec_plain(&spec, 0);
    watcher_t w;
    watcher_init(&w, &spec, T0, INTERVAL_MS);
    assert_int_equal(w.state, WATCHER_REPLAYING);
    assert_ptr_equal(w.spec, &spec);
    assert_int_equal(w.deadline_ms, T0 + TIMEOUT_MS);
    assert_int_equal(w.bookmark_interval_ms, INTERVAL_MS);
    assert_int_equal(w.next_bookmark_ms, T0 + INTERVAL_MS);
    assert_int_equal(w.cursor.phase, WATCH_PHASE_STATE);
    assert_int_equal(w.q_n, 0);
    assert_int_equal(w.queued_bytes, 0);
    assert_false(w.page_pending);
    assert_false(w.dropped);
    assert_false(watcher_finished(&w));
    watcher_free(&w);

    /* no interval: kube's default */
    watcher_init(&w, &spec, T0, 0);
    assert_int_equal(w.bookmark_interval_ms, WATCH_BOOKMARK_INTERVAL_MS);
    watcher_free(&w);
    watch_spec_free(&spec);

    /* from a resourceVersion: the replay starts in the log, after it */
    parse(NS_PATH "?watch=1&resourceVersion=42&timeoutSeconds=10", NULL, &spec);
    watcher_init(&w, &spec, T0, INTERVAL_MS);
    assert_int_equal(w.cursor.phase, WATCH_PHASE_EVENTS);
    assert_int_equal(w.cursor.after_rv, 42);
    watcher_free(&w);
    watch_spec_free(&spec);

    /* a spec filled by hand (no request) does as well */
    watch_spec_t hand = {.kind = models, .ns = "team", .with_state = 1, .timeout_ms = 5000};
    watcher_init(&w, &hand, T0, INTERVAL_MS);
    assert_int_equal(w.deadline_ms, T0 + 5000);
    go_live(&w, 3);
    watcher_free(&w);
}

/* A page is asked for only when none is in flight and less than WATCHER_REPLAY_LOW_WATER bytes wait. */
static void test_wants_page(void **state)
{
    (void)state;
    watch_spec_t spec;
    spec_plain(&spec, 0);
    watcher_t w;
    watcher_init(&w, &spec, T0, INTERVAL_MS);
    assert_true(watcher_wants_page(&w));
    watcher_page_begin(&w);
    assert_true(w.page_pending);
    assert_false(watcher_wants_page(&w)); /* one in flight */

    /* a page just under the low water mark: the next one is asked for at once */
    watch_page_t p = mk_page_bytes(WATCHER_REPLAY_LOW_WATER - 1, 0, 0);
    page_done_no_tail(&w, &p, 0);
    assert_false(w.page_pending);
    assert_int_equal(w.state, WATCHER_REPLAYING);
    assert_int_equal(w.queued_bytes, WATCHER_REPLAY_LOW_WATER - 1);
    assert_true(watcher_wants_page(&w));

    /* one more byte reaches it: no page until the client takes some */
    watcher_page_begin(&w);
    p = mk_page("\n", 0, 0, 0);
    page_done_no_tail(&w, &p, 0);
    assert_int_equal(w.queued_bytes, WATCHER_REPLAY_LOW_WATER);
    assert_false(watcher_wants_page(&w));
    watch_chunk_t *c;
    assert_int_equal(watcher_take(&w, &c, 1), 1);
    assert_int_equal(c->len, WATCHER_REPLAY_LOW_WATER - 1);
    watch_chunk_release(c);
    assert_int_equal(w.queued_bytes, 1);
    assert_true(watcher_wants_page(&w));

    /* never outside REPLAYING */
    go_live(&w, 5);
    assert_false(watcher_wants_page(&w));
    watcher_free(&w);
    watch_spec_free(&spec);
}

/* A page's bytes are queued as one chunk: its own buffer, stolen; an empty page queues nothing. */
static void test_page_is_one_chunk(void **state)
{
    (void)state;
    watch_spec_t spec;
    spec_plain(&spec, 0);
    watcher_t w;
    watcher_init(&w, &spec, T0, INTERVAL_MS);
    watcher_page_begin(&w);
    watch_page_t p = mk_page("{\"type\":\"ADDED\"}\n{\"type\":\"ADDED\"}\n", 0, 0, 0);
    char *data = p.data;
    size_t len = p.len;
    page_done_no_tail(&w, &p, 0);
    assert_null(p.data); /* stolen */
    assert_int_equal(p.len, 0);
    assert_int_equal(w.q_n, 1);
    assert_int_equal(w.queued_bytes, len);
    assert_ptr_equal(w.queue[0]->data, data);
    assert_int_equal(w.queue[0]->len, len);

    watcher_page_begin(&w);
    p = mk_page(NULL, 0, 0, 0);
    page_done_no_tail(&w, &p, 0);
    assert_int_equal(w.q_n, 1);
    assert_queue(&w, "{\"type\":\"ADDED\"}\n{\"type\":\"ADDED\"}\n", 1);
    watcher_free(&w);
    watch_spec_free(&spec);
}

/* caught_up && seen >= feed_rv: LIVE at seen. */
static void test_goes_live(void **state)
{
    (void)state;
    watch_spec_t spec;
    spec_plain(&spec, 0);
    for (int64_t seen = 10; seen <= 12; seen += 2) { /* the page at the feed, or ahead of it */
        watcher_t w;
        watcher_init(&w, &spec, T0, INTERVAL_MS);
        watcher_page_begin(&w);
        watch_page_t p = mk_page("{\"type\":\"ADDED\"}\n", seen, 1, 0);
        page_done_no_tail(&w, &p, 10);
        assert_int_equal(w.state, WATCHER_LIVE);
        assert_int_equal(w.last_rv, seen);
        assert_false(w.page_pending);
        assert_false(watcher_wants_page(&w));
        assert_int_equal(w.q_n, 1); /* the page's lines go first */
        watcher_free(&w);
    }
    watch_spec_free(&spec);
}

/*
 * Caught up short of the feed, but the transport still holds every event
 * after the page (tail_from <= seen + 1): LIVE at seen, and the answer says
 * to hand the tail over; one event short of the tail: no.
 */
static void test_goes_live_from_the_tail(void **state)
{
    (void)state;
    watch_spec_t spec;
    spec_plain(&spec, 0);
    watcher_t w;
    watcher_init(&w, &spec, T0, INTERVAL_MS);
    watcher_page_begin(&w);
    watch_page_t p = mk_page(NULL, 7, 1, 0);
    assert_int_equal(watcher_page_done(&w, &p, 12, 8), 1);     /* the tail holds 8..12 */
    assert_int_equal(w.state, WATCHER_LIVE);
    assert_int_equal(w.last_rv, 7);
    watcher_free(&w);

    watcher_init(&w, &spec, T0, INTERVAL_MS);
    watcher_page_begin(&w);
    p = mk_page(NULL, 7, 1, 0);
    assert_int_equal(watcher_page_done(&w, &p, 12, 9), 0);     /* 8 is no longer held */
    assert_int_equal(w.state, WATCHER_REPLAYING);
    assert_true(watcher_wants_page(&w));
    watcher_free(&w);

    watcher_init(&w, &spec, T0, INTERVAL_MS);
    watcher_page_begin(&w);
    p = mk_page(NULL, 12, 1, 0);
    assert_int_equal(watcher_page_done(&w, &p, 12, 8), 0);     /* at the feed: nothing to hand over */
    assert_int_equal(w.state, WATCHER_LIVE);
    watcher_free(&w);
    watch_spec_free(&spec);
}

/* Not caught up, or caught up short of what the feed delivered: still REPLAYING, and it asks for another page. */
static void test_stays_replaying(void **state)
{
    (void)state;
    watch_spec_t spec;
    spec_plain(&spec, 0);
    watcher_t w;
    watcher_init(&w, &spec, T0, INTERVAL_MS);

    /* a page of the state (not caught up), even with seen past the feed */
    watcher_page_begin(&w);
    watch_page_t p = mk_page("{\"type\":\"ADDED\"}\n", 20, 0, 0);
    page_done_no_tail(&w, &p, 10);
    assert_int_equal(w.state, WATCHER_REPLAYING);
    assert_true(watcher_wants_page(&w));

    /* caught up with the log at 8, but the feed has delivered 10 */
    watcher_page_begin(&w);
    p = mk_page(NULL, 8, 1, 0);
    page_done_no_tail(&w, &p, 10);
    assert_int_equal(w.state, WATCHER_REPLAYING);
    assert_int_equal(w.last_rv, 0);
    assert_true(watcher_wants_page(&w));

    /* the next page covers 10: LIVE */
    watcher_page_begin(&w);
    p = mk_page(NULL, 10, 1, 0);
    page_done_no_tail(&w, &p, 10);
    assert_int_equal(w.state, WATCHER_LIVE);
    assert_int_equal(w.last_rv, 10);
    watcher_free(&w);
    watch_spec_free(&spec);
}

/* Live events while REPLAYING are not kept (the pages read them from the log). */
static void test_events_ignored_while_replaying(void **state)
{
    (void)state;
    watch_spec_t spec;
    spec_plain(&spec, 0);
    watcher_t w;
    watcher_init(&w, &spec, T0, INTERVAL_MS);
    lines_t l = {0};
    test_event_t e = mk_ev(STORE_EVENT_ADDED, 7, "team", "a", "gold");
    send(&w, &e, &l, T0);
    watcher_page_begin(&w);
    send(&w, &e, &l, T0); /* with a page in flight as well */
    assert_int_equal(l.calls, 0);
    assert_int_equal(w.q_n, 0);
    assert_int_equal(w.last_rv, 0);
    assert_int_equal(w.state, WATCHER_REPLAYING);
    ev_free(&e);
    watcher_free(&w);
    watch_spec_free(&spec);
}

/* A failed page (one ERROR line): CLOSING once its line is queued, even if it says caught up. */
static void test_failed_page(void **state)
{
    (void)state;
    static const char error[] = "{\"type\":\"ERROR\",\"object\":{\"kind\":\"Status\",\"code\":410}}\n";
    watch_spec_t spec;
    spec_plain(&spec, 0);
    for (int caught_up = 0; caught_up <= 1; caught_up++) {
        watcher_t w;
        watcher_init(&w, &spec, T0, INTERVAL_MS);
        watcher_page_begin(&w);
        watch_page_t p = mk_page(error, 10, caught_up, 1);
        page_done_no_tail(&w, &p, 10);
        assert_int_equal(w.state, WATCHER_CLOSING);
        assert_false(w.dropped);
        assert_false(watcher_wants_page(&w));
        assert_false(watcher_finished(&w)); /* the ERROR line is still to be sent */
        assert_queue(&w, error, 1);
        assert_true(watcher_finished(&w));
        watcher_free(&w);
    }
    watch_spec_free(&spec);
}

/* The deadline while REPLAYING: CLOSING, without a bookmark; a page in flight keeps it from finishing. */
static void test_deadline_replaying(void **state)
{
    (void)state;
    watch_spec_t spec;
    spec_plain(&spec, 1);
    watcher_t w;
    watcher_init(&w, &spec, T0, INTERVAL_MS);
    watcher_page_begin(&w);
    watcher_tick(&w, T0 + TIMEOUT_MS - 1, 5);
    assert_int_equal(w.state, WATCHER_REPLAYING);
    assert_int_equal(w.q_n, 0); /* no idle bookmark while replaying either */
    watcher_tick(&w, T0 + TIMEOUT_MS, 5);
    assert_int_equal(w.state, WATCHER_CLOSING);
    assert_int_equal(w.q_n, 0);
    assert_false(watcher_finished(&w)); /* the page reader still holds the cursor */
    assert_false(watcher_wants_page(&w));

    /* the page that comes back after the close is discarded */
    watch_page_t p = mk_page("{\"type\":\"ADDED\"}\n", 5, 1, 0);
    page_done_no_tail(&w, &p, 5);
    assert_null(p.data);
    assert_int_equal(w.state, WATCHER_CLOSING);
    assert_int_equal(w.q_n, 0);
    assert_false(w.page_pending);
    assert_true(watcher_finished(&w));
    watcher_free(&w);
    watch_spec_free(&spec);
}

/* ---- LIVE ---- */

/* Each live event with rv > last_rv is queued exactly once, in order; older ones are skipped. */
static void test_live_events(void **state)
{
    (void)state;
    watch_spec_t spec;
    spec_plain(&spec, 0);
    watcher_t w;
    watcher_init(&w, &spec, T0, INTERVAL_MS);
    go_live(&w, 10);
    lines_t l = {0};
    test_event_t old = mk_ev(STORE_EVENT_ADDED, 9, "team", "old", "gold");
    test_event_t at = mk_ev(STORE_EVENT_ADDED, 10, "team", "at", "gold");
    test_event_t a = mk_ev(STORE_EVENT_ADDED, 11, "team", "a", "gold");
    test_event_t b = mk_ev(STORE_EVENT_MODIFIED, 12, "team", "a", "gold");
    test_event_t c = mk_ev(STORE_EVENT_DELETED, 14, "team", "a", "gold");
    send(&w, &old, &l, T0);
    send(&w, &at, &l, T0); /* the page covered 10 already */
    assert_int_equal(l.calls, 0);
    assert_int_equal(w.q_n, 0);
    assert_int_equal(w.last_rv, 10);
    send(&w, &a, &l, T0);
    assert_int_equal(w.last_rv, 11);
    send(&w, &a, &l, T0); /* delivered twice: sent once */
    send(&w, &b, &l, T0);
    send(&w, &old, &l, T0);
    send(&w, &c, &l, T0);
    assert_int_equal(l.calls, 3);
    assert_int_equal(l.types[0], STORE_EVENT_ADDED);
    assert_int_equal(l.types[1], STORE_EVENT_MODIFIED);
    assert_int_equal(l.types[2], STORE_EVENT_DELETED);
    assert_int_equal(w.last_rv, 14);
    assert_int_equal(w.q_n, 3);
    assert_int_equal(w.queued_bytes, strlen("ADDED a 11\nMODIFIED a 12\nDELETED a 14\n"));
    assert_queue(&w, "ADDED a 11\nMODIFIED a 12\nDELETED a 14\n", 3);
    assert_int_equal(w.state, WATCHER_LIVE);
    assert_false(watcher_finished(&w)); /* LIVE with nothing queued is not the end */
    ev_free(&old);
    ev_free(&at);
    ev_free(&a);
    ev_free(&b);
    ev_free(&c);
    watcher_free(&w);
    watch_spec_free(&spec);
}

/* An event the watch does not see still moves last_rv, but queues nothing; selector transitions are applied. */
static void test_unseen_events_advance(void **state)
{
    (void)state;
    watch_spec_t spec;
    parse(NS_PATH "?watch=1&timeoutSeconds=10&labelSelector=tier%3Dgold", NULL, &spec);
    watcher_t w;
    watcher_init(&w, &spec, T0, INTERVAL_MS);
    go_live(&w, 10);
    lines_t l = {0};
    test_event_t silver = mk_ev(STORE_EVENT_ADDED, 11, "team", "s", "silver");
    test_event_t other_ns = mk_ev(STORE_EVENT_ADDED, 12, "other", "o", "gold");
    test_event_t other_res = mk_ev(STORE_EVENT_ADDED, 13, "team", "t", "gold");
    other_res.ev.resource = "languagetools";
    send(&w, &silver, &l, T0);
    assert_int_equal(w.last_rv, 11);
    send(&w, &other_ns, &l, T0);
    assert_int_equal(w.last_rv, 12);
    send(&w, &other_res, &l, T0);
    assert_int_equal(w.last_rv, 13);
    assert_int_equal(l.calls, 0);
    assert_int_equal(w.q_n, 0);
    send(&w, &silver, &l, T0); /* and an unseen event is not "sent" later either */
    assert_int_equal(l.calls, 0);

    /* leaving the selector: DELETED with the previous state */
    test_event_t leaves = mk_ev(STORE_EVENT_MODIFIED, 15, "team", "g", "silver");
    leaves.prev = model("team", "g", "gold", 14);
    leaves.ev.prev = leaves.prev;
    send(&w, &leaves, &l, T0);
    assert_int_equal(l.calls, 1);
    assert_int_equal(l.types[0], STORE_EVENT_DELETED);
    assert_int_equal(w.last_rv, 15);
    assert_queue(&w, "DELETED g 14\n", 1); /* the line function got the previous object */
    ev_free(&silver);
    ev_free(&other_ns);
    ev_free(&other_res);
    ev_free(&leaves);
    watcher_free(&w);
    watch_spec_free(&spec);
}

/* A client that does not read: the event that would take the queue over the bound closes the watch. */
static void test_overflow_closes(void **state)
{
    (void)state;
    watch_spec_t spec;
    spec_plain(&spec, 1);
    watcher_t w;
    watcher_init(&w, &spec, T0, INTERVAL_MS);
    go_live(&w, 10);
    lines_t l = {.pad = WATCHER_MAX_QUEUE_BYTES / 8};
    int64_t rv = 11;
    for (int i = 0; i < 8; i++, rv++) { /* exactly the bound: still open */
        test_event_t e = mk_ev(STORE_EVENT_MODIFIED, rv, "team", "a", "gold");
        send(&w, &e, &l, T0);
        ev_free(&e);
    }
    assert_int_equal(w.state, WATCHER_LIVE);
    assert_int_equal(w.queued_bytes, WATCHER_MAX_QUEUE_BYTES);
    assert_int_equal(w.q_n, 8);
    test_event_t over = mk_ev(STORE_EVENT_MODIFIED, rv++, "team", "a", "gold");
    send(&w, &over, &l, T0);
    assert_int_equal(w.state, WATCHER_CLOSING);
    assert_true(w.dropped);
    assert_int_equal(w.q_n, 0); /* what it had not taken is dropped */
    assert_int_equal(w.queued_bytes, 0);
    assert_true(watcher_finished(&w));
    int calls = l.calls;

    /* nothing revives it: later events, a page, ticks */
    l.pad = 0;
    test_event_t later = mk_ev(STORE_EVENT_MODIFIED, rv++, "team", "a", "gold");
    send(&w, &later, &l, T0);
    assert_int_equal(l.calls, calls);
    watch_page_t p = mk_page("{\"type\":\"ADDED\"}\n", rv + 10, 1, 0);
    page_done_no_tail(&w, &p, rv);
    watcher_tick(&w, T0 + INTERVAL_MS, rv);   /* no idle bookmark */
    watcher_tick(&w, T0 + TIMEOUT_MS, rv);    /* no final bookmark */
    assert_int_equal(w.state, WATCHER_CLOSING);
    assert_int_equal(w.q_n, 0);
    assert_false(watcher_wants_page(&w));
    assert_true(watcher_finished(&w));
    ev_free(&over);
    ev_free(&later);
    watcher_free(&w);
    watch_spec_free(&spec);
}

/* The deadline while LIVE: a last BOOKMARK where to resume (when asked for), then CLOSING. */
static void test_deadline_live(void **state)
{
    (void)state;
    for (int bookmarks = 0; bookmarks <= 1; bookmarks++) {
        watch_spec_t spec;
        spec_plain(&spec, bookmarks);
        watcher_t w;
        watcher_init(&w, &spec, T0, TIMEOUT_MS * 10); /* no idle bookmark in the way */
        go_live(&w, 10);
        watcher_tick(&w, T0 + TIMEOUT_MS - 1, 12);
        assert_int_equal(w.state, WATCHER_LIVE);
        assert_int_equal(w.q_n, 0);
        watcher_tick(&w, T0 + TIMEOUT_MS, 12);
        assert_int_equal(w.state, WATCHER_CLOSING);
        assert_false(w.dropped);
        if (bookmarks) {
            size_t len;
            char *want = watch_encode_bookmark(&spec, 12, &len); /* at the feed's rv */
            assert_false(watcher_finished(&w));
            assert_queue(&w, want, 1);
            free(want);
        }
        assert_int_equal(w.q_n, 0);
        assert_true(watcher_finished(&w));
        watcher_tick(&w, T0 + TIMEOUT_MS + INTERVAL_MS, 12);
        assert_int_equal(w.q_n, 0); /* one end only */
        watcher_free(&w);
        watch_spec_free(&spec);
    }
}

/* The server stops (watcher_end): a LIVE watch ends as at its deadline, before it; a closed one stays closed. */
static void test_end(void **state)
{
    (void)state;
    for (int bookmarks = 0; bookmarks <= 1; bookmarks++) {
        watch_spec_t spec;
        spec_plain(&spec, bookmarks);
        watcher_t w;
        watcher_init(&w, &spec, T0, TIMEOUT_MS * 10);
        go_live(&w, 10);
        watcher_end(&w, 12);
        assert_int_equal(w.state, WATCHER_CLOSING);
        if (bookmarks) {
            size_t len;
            char *want = watch_encode_bookmark(&spec, 12, &len); /* where the client resumes */
            assert_false(watcher_finished(&w));
            assert_queue(&w, want, 1);
            free(want);
        }
        assert_true(watcher_finished(&w));
        watcher_end(&w, 13);
        assert_int_equal(w.q_n, 0); /* one end only */
        assert_int_equal(w.state, WATCHER_CLOSING);
        watcher_free(&w);
        watch_spec_free(&spec);
    }

    /* replaying, a page in flight: no bookmark (no rv reached yet), finished once the page is back */
    watch_spec_t spec;
    spec_plain(&spec, 1);
    watcher_t w;
    watcher_init(&w, &spec, T0, INTERVAL_MS);
    watcher_page_begin(&w);
    watcher_end(&w, 5);
    assert_int_equal(w.state, WATCHER_CLOSING);
    assert_int_equal(w.q_n, 0);
    assert_false(watcher_finished(&w));
    watch_page_t p = mk_page("{\"type\":\"ADDED\"}\n", 5, 1, 0);
    page_done_no_tail(&w, &p, 5);
    assert_true(watcher_finished(&w));
    watcher_free(&w);
    watch_spec_free(&spec);

    /* gone first: ending it is a no-op */
    spec_plain(&spec, 1);
    watcher_init(&w, &spec, T0, INTERVAL_MS);
    go_live(&w, 3);
    watcher_gone(&w);
    watcher_end(&w, 4);
    assert_int_equal(w.state, WATCHER_DONE);
    assert_int_equal(w.q_n, 0);
    watcher_free(&w);
    watch_spec_free(&spec);
}

/* An idle LIVE watch with bookmarks gets one every interval, at the newest rv; each event sent restarts the wait. */
static void test_idle_bookmarks(void **state)
{
    (void)state;
    watch_spec_t spec;
    spec_plain(&spec, 1);
    watcher_t w;
    watcher_init(&w, &spec, T0, INTERVAL_MS);
    go_live(&w, 10);
    size_t len;
    char *at12 = watch_encode_bookmark(&spec, 12, &len);
    char *at20 = watch_encode_bookmark(&spec, 20, &len);

    watcher_tick(&w, T0 + INTERVAL_MS - 1, 12);
    assert_int_equal(w.q_n, 0);
    watcher_tick(&w, T0 + INTERVAL_MS, 12);
    assert_queue(&w, at12, 1);
    watcher_tick(&w, T0 + 2 * INTERVAL_MS - 1, 12);
    assert_int_equal(w.q_n, 0);
    watcher_tick(&w, T0 + 2 * INTERVAL_MS, 12);
    assert_queue(&w, at12, 1);

    /* the rv is last_rv when the watcher is ahead of the feed it was told of */
    lines_t l = {0};
    test_event_t e = mk_ev(STORE_EVENT_ADDED, 20, "team", "a", "gold");
    send(&w, &e, &l, T0 + 2 * INTERVAL_MS + 500); /* sent: the next bookmark is an interval after it */
    assert_queue(&w, "ADDED a 20\n", 1);
    watcher_tick(&w, T0 + 3 * INTERVAL_MS, 12);
    assert_int_equal(w.q_n, 0);
    watcher_tick(&w, T0 + 3 * INTERVAL_MS + 500, 12);
    assert_queue(&w, at20, 1);
    assert_int_equal(w.state, WATCHER_LIVE);
    ev_free(&e);
    free(at12);
    free(at20);
    watcher_free(&w);
    watch_spec_free(&spec);

    /* without allowWatchBookmarks: never */
    spec_plain(&spec, 0);
    watcher_init(&w, &spec, T0, INTERVAL_MS);
    go_live(&w, 10);
    for (int i = 1; i < 5; i++)
        watcher_tick(&w, T0 + i * INTERVAL_MS, 12);
    assert_int_equal(w.q_n, 0);
    watcher_free(&w);
    watch_spec_free(&spec);
}

/* ---- the queue, the end, the client going away ---- */

/* watcher_take hands out chunks in order, at most max, and keeps queued_bytes right. */
static void test_take(void **state)
{
    (void)state;
    watch_spec_t spec;
    spec_plain(&spec, 0);
    watcher_t w;
    watcher_init(&w, &spec, T0, INTERVAL_MS);
    watcher_page_begin(&w);
    watch_page_t p = mk_page("page\n", 10, 1, 0);
    page_done_no_tail(&w, &p, 10);
    lines_t l = {0};
    for (int64_t rv = 11; rv <= 40; rv++) { /* more than the queue's first allocation */
        test_event_t e = mk_ev(STORE_EVENT_MODIFIED, rv, "team", "a", "gold");
        send(&w, &e, &l, T0);
        ev_free(&e);
    }
    assert_int_equal(w.q_n, 31);
    size_t total = w.queued_bytes;
    watch_chunk_t *out[8];
    assert_int_equal(watcher_take(&w, out, 0), 0);
    assert_int_equal(watcher_take(&w, out, 2), 2);
    assert_memory_equal(out[0]->data, "page\n", 5);
    assert_memory_equal(out[1]->data, "MODIFIED a 11\n", out[1]->len);
    assert_int_equal(w.queued_bytes, total - out[0]->len - out[1]->len);
    assert_int_equal(w.q_n, 29);
    watch_chunk_release(out[0]);
    watch_chunk_release(out[1]);
    assert_int_equal(watcher_take(&w, out, 1), 1);
    assert_memory_equal(out[0]->data, "MODIFIED a 12\n", out[0]->len);
    watch_chunk_release(out[0]);
    char want[64 * 30] = "";
    for (int64_t rv = 13; rv <= 40; rv++)
        snprintf(want + strlen(want), sizeof(want) - strlen(want), "MODIFIED a %lld\n", (long long)rv);
    assert_queue(&w, want, 28);
    assert_int_equal(watcher_take(&w, out, 8), 0);
    watcher_free(&w);
    watch_spec_free(&spec);
}

/* The same chunk goes to every watcher that sees the event; each holds its own reference. */
static void test_shared_chunks(void **state)
{
    (void)state;
    watch_spec_t spec;
    spec_plain(&spec, 0);
    watcher_t a, b;
    watcher_init(&a, &spec, T0, INTERVAL_MS);
    watcher_init(&b, &spec, T0, INTERVAL_MS);
    go_live(&a, 10);
    go_live(&b, 10);
    lines_t l = {.shared = watch_chunk_new(lo_strdup("shared\n"), 7)};
    test_event_t e = mk_ev(STORE_EVENT_ADDED, 11, "team", "a", "gold");
    send(&a, &e, &l, T0);
    send(&b, &e, &l, T0);
    assert_int_equal(l.shared->refs, 3);
    watch_chunk_t *c;
    assert_int_equal(watcher_take(&a, &c, 1), 1);
    assert_ptr_equal(c, l.shared);
    watch_chunk_release(c);
    assert_int_equal(l.shared->refs, 2);
    watcher_gone(&b); /* the queue released: its reference too */
    assert_int_equal(l.shared->refs, 1);
    watch_chunk_release(l.shared);
    ev_free(&e);
    watcher_free(&a);
    watcher_free(&b);
    watch_spec_free(&spec);
}

/* watcher_finished: only CLOSING, with nothing queued and no page in flight. */
static void test_finished(void **state)
{
    (void)state;
    watch_spec_t spec;
    spec_plain(&spec, 0);
    watcher_t w;
    watcher_init(&w, &spec, T0, INTERVAL_MS);
    assert_false(watcher_finished(&w)); /* REPLAYING */
    go_live(&w, 10);
    assert_false(watcher_finished(&w)); /* LIVE, empty */
    lines_t l = {0};
    test_event_t e = mk_ev(STORE_EVENT_ADDED, 11, "team", "a", "gold");
    send(&w, &e, &l, T0);
    watcher_tick(&w, T0 + TIMEOUT_MS, 11);
    assert_int_equal(w.state, WATCHER_CLOSING);
    assert_false(watcher_finished(&w)); /* CLOSING, one line left */
    assert_queue(&w, "ADDED a 11\n", 1);
    assert_true(watcher_finished(&w));
    watcher_gone(&w);
    assert_false(watcher_finished(&w)); /* DONE: the end was sent already */
    ev_free(&e);
    watcher_free(&w);
    watch_spec_free(&spec);
}

/* The client goes away: DONE from any state, the queue released; nothing brings it back. */
static void test_gone(void **state)
{
    (void)state;
    watch_spec_t spec;
    spec_plain(&spec, 1);
    for (int from = WATCHER_REPLAYING; from <= WATCHER_DONE; from++) {
        watcher_t w;
        watcher_init(&w, &spec, T0, INTERVAL_MS);
        lines_t l = {0};
        test_event_t e = mk_ev(STORE_EVENT_ADDED, 11, "team", "a", "gold");
        watcher_page_begin(&w);
        watch_page_t p = mk_page("page\n", 0, 0, 0);
        page_done_no_tail(&w, &p, 10);
        if (from >= WATCHER_LIVE) {
            p = mk_page(NULL, 10, 1, 0);
            watcher_page_begin(&w);
            page_done_no_tail(&w, &p, 10);
            send(&w, &e, &l, T0);
        }
        if (from >= WATCHER_CLOSING)
            watcher_tick(&w, T0 + TIMEOUT_MS, 11);
        if (from >= WATCHER_DONE)
            watcher_gone(&w);
        assert_int_equal(w.state, from);
        if (from != WATCHER_DONE)
            assert_true(w.q_n > 0);
        if (from == WATCHER_REPLAYING)
            watcher_page_begin(&w); /* and a page in flight */

        watcher_gone(&w);
        assert_int_equal(w.state, WATCHER_DONE);
        assert_int_equal(w.q_n, 0);
        assert_int_equal(w.queued_bytes, 0);
        assert_false(watcher_finished(&w));

        /* a page that comes back now is discarded; events and ticks change nothing */
        if (w.page_pending) {
            p = mk_page("late\n", 20, 1, 0);
            page_done_no_tail(&w, &p, 20);
            assert_null(p.data);
            assert_false(w.page_pending);
        }
        test_event_t later = mk_ev(STORE_EVENT_ADDED, 30, "team", "b", "gold");
        int calls = l.calls;
        send(&w, &later, &l, T0);
        watcher_tick(&w, T0 + INTERVAL_MS, 30);
        watcher_tick(&w, T0 + TIMEOUT_MS * 2, 30);
        assert_int_equal(l.calls, calls);
        assert_int_equal(w.state, WATCHER_DONE);
        assert_int_equal(w.q_n, 0);
        assert_false(watcher_wants_page(&w));
        assert_false(watcher_finished(&w));
        ev_free(&e);
        ev_free(&later);
        watcher_free(&w);
    }
    watch_spec_free(&spec);
}

/* ---- Table watches ---- */

/* The column definitions are sent once: by the replay's page if it carried them, else by the first live line. */
static void test_table_columns_once(void **state)
{
    (void)state;
    watch_spec_t spec;
    parse(NS_PATH "?watch=1&timeoutSeconds=10", TABLE_ACCEPT, &spec);
    assert_int_equal(spec.format, ENCODE_TABLE);
    test_event_t e1 = mk_ev(STORE_EVENT_ADDED, 11, "team", "a", "gold");
    test_event_t e2 = mk_ev(STORE_EVENT_MODIFIED, 12, "team", "a", "gold");
    test_event_t filtered = mk_ev(STORE_EVENT_ADDED, 11, "other", "x", "gold");

    /* the replay sent them */
    watcher_t w;
    watcher_init(&w, &spec, T0, INTERVAL_MS);
    assert_false(w.columns_sent);
    watcher_page_begin(&w);
    watch_page_t p = mk_page("row with columns\n", 10, 1, 0);
    p.columns_sent = 1;
    page_done_no_tail(&w, &p, 10);
    assert_true(w.columns_sent);
    lines_t l = {0};
    send(&w, &e1, &l, T0);
    send(&w, &e2, &l, T0);
    assert_int_equal(l.calls, 2);
    assert_false(l.with_columns[0]);
    assert_false(l.with_columns[1]);
    watcher_free(&w);

    /* an empty replay: the first live line carries them, the next does not; an unseen event does not use them up */
    watcher_init(&w, &spec, T0, INTERVAL_MS);
    go_live(&w, 10);
    assert_false(w.columns_sent);
    memset(&l, 0, sizeof(l));
    send(&w, &filtered, &l, T0);
    assert_int_equal(l.calls, 0);
    assert_false(w.columns_sent);
    send(&w, &e2, &l, T0);
    assert_true(w.columns_sent);
    test_event_t e3 = mk_ev(STORE_EVENT_DELETED, 13, "team", "a", "gold");
    send(&w, &e3, &l, T0);
    assert_int_equal(l.calls, 2);
    assert_true(l.with_columns[0]);
    assert_false(l.with_columns[1]);
    assert_queue(&w, "MODIFIED a 12 columns\nDELETED a 13\n", 2);
    watcher_free(&w);
    watch_spec_free(&spec);

    /* a JSON watch never asks for them */
    spec_plain(&spec, 0);
    watcher_init(&w, &spec, T0, INTERVAL_MS);
    go_live(&w, 10);
    memset(&l, 0, sizeof(l));
    send(&w, &e1, &l, T0);
    assert_int_equal(l.calls, 1);
    assert_false(l.with_columns[0]);
    watcher_free(&w);
    watch_spec_free(&spec);
    ev_free(&e1);
    ev_free(&e2);
    ev_free(&e3);
    ev_free(&filtered);
}

/* ---- a LIST's answer: final and broken pages ---- */

/*
 * A LIST streams through the same machine: its pages are never caught up,
 * so it stays REPLAYING however far the feed is; the final page closes it
 * once what is queued is sent, and live events in between are not its own.
 */
static void test_list_pages_end_with_the_final_one(void **state)
{
    (void)state;
    watch_spec_t spec;
    spec_plain(&spec, 0);
    watcher_t w;
    watcher_init(&w, &spec, T0, INTERVAL_MS);
    w.low_water = 100;
    watcher_page_begin(&w);
    watch_page_t p = mk_page("{\"items\":[1,", 0, 0, 0);
    assert_int_equal(watcher_page_done(&w, &p, 50, 51), 0);
    assert_int_equal(w.state, WATCHER_REPLAYING); /* not caught up: never live */
    assert_true(watcher_wants_page(&w));          /* below its low water */
    test_event_t e = mk_ev(STORE_EVENT_ADDED, 51, "team", "late", "gold");
    lines_t l = {0};
    watcher_event(&w, &e.ev, line_fn, &l, T0);
    assert_int_equal(l.calls, 0);
    ev_free(&e);

    watcher_page_begin(&w);
    p = mk_page("2]}", 0, 0, 0);
    p.final = 1;
    assert_int_equal(watcher_page_done(&w, &p, 51, 52), 0);
    assert_int_equal(w.state, WATCHER_CLOSING);
    assert_false(w.broken);
    assert_false(watcher_wants_page(&w));
    assert_false(watcher_finished(&w)); /* the pages are still queued */
    watch_chunk_t *c[4];
    assert_int_equal(watcher_take(&w, c, 4), 2);
    assert_memory_equal(c[0]->data, "{\"items\":[1,", c[0]->len);
    assert_memory_equal(c[1]->data, "2]}", c[1]->len);
    watch_chunk_release(c[0]);
    watch_chunk_release(c[1]);
    assert_true(watcher_finished(&w));
    watcher_free(&w);
    watch_spec_free(&spec);
}

/* A broken page drops what waits (an answer that cannot be completed) and closes the watcher as broken. */
static void test_list_broken_page_cuts_the_answer(void **state)
{
    (void)state;
    watch_spec_t spec;
    spec_plain(&spec, 0);
    watcher_t w;
    watcher_init(&w, &spec, T0, INTERVAL_MS);
    watcher_page_begin(&w);
    watch_page_t p = mk_page("{\"items\":[1,", 0, 0, 0);
    watcher_page_done(&w, &p, 10, 11);
    assert_int_equal(w.queued_bytes, 12);
    watcher_page_begin(&w);
    p = mk_page(NULL, 0, 0, 0);
    p.broken = 1;
    assert_int_equal(watcher_page_done(&w, &p, 10, 11), 0);
    assert_int_equal(w.state, WATCHER_CLOSING);
    assert_true(w.broken);
    assert_int_equal(w.q_n, 0);
    assert_int_equal(w.queued_bytes, 0);
    assert_true(watcher_finished(&w)); /* at once: the transport cuts the response off */
    watcher_free(&w);
    watch_spec_free(&spec);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_chunks),
        cmocka_unit_test(test_init),
        cmocka_unit_test(test_wants_page),
        cmocka_unit_test(test_page_is_one_chunk),
        cmocka_unit_test(test_goes_live),
        cmocka_unit_test(test_goes_live_from_the_tail),
        cmocka_unit_test(test_stays_replaying),
        cmocka_unit_test(test_events_ignored_while_replaying),
        cmocka_unit_test(test_failed_page),
        cmocka_unit_test(test_deadline_replaying),
        cmocka_unit_test(test_live_events),
        cmocka_unit_test(test_unseen_events_advance),
        cmocka_unit_test(test_overflow_closes),
        cmocka_unit_test(test_deadline_live),
        cmocka_unit_test(test_end),
        cmocka_unit_test(test_idle_bookmarks),
        cmocka_unit_test(test_take),
        cmocka_unit_test(test_shared_chunks),
        cmocka_unit_test(test_finished),
        cmocka_unit_test(test_gone),
        cmocka_unit_test(test_table_columns_once),
        cmocka_unit_test(test_list_pages_end_with_the_final_one),
        cmocka_unit_test(test_list_broken_page_cuts_the_answer),
    };
    return cmocka_run_group_tests(tests, setup, fx_registry_teardown);
}
