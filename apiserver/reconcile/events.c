/*
 * events.c - core/v1 Events about langop objects (see
 * langop/reconcile/events.h).
 *
 * One mutex guards three caches, the three of client-go's EventCorrelator,
 * each a least-recently-used map of at most cache_size keys:
 *
 *   aggregates  source + involved object + type + reason -> the distinct
 *               messages seen (hashes, fewer than AGGREGATE_MAX) and when
 *               the last one came;
 *   series      what was recorded: the event key (the same + message), or
 *               the aggregate key for a combined Event -> the Event's name,
 *               count and firstTimestamp, when it was last seen, and
 *               whether a request for it is under way (busy);
 *   buckets     source + involved object -> the spam filter's token bucket.
 *
 * One call (event_record):
 *
 *   correlate  [locked]    aggregate, observe the series (waiting while it
 *                          is busy), take a token; mark the series busy
 *   send       [unlocked]  PATCH the Event, or POST it (also after a 404)
 *   settle     [locked]    what kube-apiserver answered goes back into the
 *                          series; it is no longer busy; waiters wake
 *
 * Invariants:
 *   (1) A busy series is never evicted: the thread that sends it looks it
 *       up again to settle it. A caller has at most one busy series, so a
 *       cache exceeds cache_size by at most the number of callers.
 *   (2) At most one request per series at a time: a caller that finds its
 *       series busy waits on `settled` and looks again, so the second of
 *       two simultaneous calls patches what the first created.
 *   (3) Event names are unique per recorder: the nanosecond stamp is the
 *       clock's, or one more than the last given, whichever is later.
 *   (4) No request is made with the lock held.
 */
#include "langop/reconcile/events.h"

#include <assert.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "langop/core/text.h"

#define NS_PER_S INT64_C(1000000000)
#define DEFAULT_COMPONENT "langop-apiserver"
#define DEFAULT_CACHE_SIZE 4096

#define AGGREGATE_MAX 10                        /* distinct messages before combining */
#define AGGREGATE_WINDOW_NS (600 * NS_PER_S)    /* since the last similar event */
#define SERIES_WINDOW_NS (600 * NS_PER_S)       /* since the same event was last seen */
#define SPAM_BURST 25
#define SPAM_INTERVAL_NS (300 * NS_PER_S)       /* one token every 5 minutes */
#define COMBINED_PREFIX "(combined from similar events): "

/* ---- a least-recently-used map of string keys ---- */

/* Embedded first in each cache's record: a node is its record. */
typedef struct lru_node {
    struct lru_node *prev, *next; /* recency list; head.next is the most recent */
    struct lru_node *chain;       /* next in the same bucket */
    uint64_t hash;
    char *key;
} lru_node_t;

typedef struct lru {
    lru_node_t head;                   /* sentinel of the recency list */
    lru_node_t **buckets;
    size_t mask;                       /* number of buckets - 1, a power of two */
    size_t len, cap;
    void (*free_record)(lru_node_t *); /* frees the record around the node (not the key) */
    int (*pinned)(const lru_node_t *); /* may not be evicted now; NULL: none is */
} lru_t;

static uint64_t hash_text(const char *s)
{
    uint64_t h = UINT64_C(14695981039346656037); /* FNV-1a */
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * UINT64_C(1099511628211);
    return h;
}

static void lru_init(lru_t *l, size_t cap, void (*free_record)(lru_node_t *),
                     int (*pinned)(const lru_node_t *))
{
    size_t n = 16;
    while (n < 2 * cap)
        n *= 2;
    *l = (lru_t){.buckets = lo_calloc(n, sizeof(lru_node_t *)), .mask = n - 1, .cap = cap,
                 .free_record = free_record, .pinned = pinned};
    l->head.prev = l->head.next = &l->head;
}

static void list_unlink(lru_node_t *n)
{
    n->prev->next = n->next;
    n->next->prev = n->prev;
}

static void list_push_front(lru_t *l, lru_node_t *n)
{
    n->prev = &l->head;
    n->next = l->head.next;
    l->head.next->prev = n;
    l->head.next = n;
}

/** The record of key, made the most recent; NULL when there is none. */
static lru_node_t *lru_find(lru_t *l, const char *key)
{
    uint64_t h = hash_text(key);
    for (lru_node_t *n = l->buckets[h & l->mask]; n; n = n->chain) {
        if (n->hash == h && strcmp(n->key, key) == 0) {
            list_unlink(n);
            list_push_front(l, n);
            return n;
        }
    }
    return NULL;
}

static void lru_remove(lru_t *l, lru_node_t *n)
{
    lru_node_t **p = &l->buckets[n->hash & l->mask];
    while (*p != n)
        p = &(*p)->chain;
    *p = n->chain;
    list_unlink(n);
    l->len--;
    free(n->key);
    l->free_record(n);
}

/* Forgets the least recent records that are not pinned until one more fits. */
static void lru_make_room(lru_t *l)
{
    lru_node_t *n = l->head.prev;
    while (l->len >= l->cap && n != &l->head) {
        lru_node_t *newer = n->prev;
        if (l->pinned == NULL || !l->pinned(n))
            lru_remove(l, n);
        n = newer;
    }
}

/** Adds n (a new record, not in the map) under key (copied), as the most recent. */
static void lru_insert(lru_t *l, lru_node_t *n, const char *key)
{
    lru_make_room(l); /* before linking: the new record is never the one evicted */
    n->key = lo_strdup(key);
    n->hash = hash_text(key);
    lru_node_t **b = &l->buckets[n->hash & l->mask];
    n->chain = *b;
    *b = n;
    list_push_front(l, n);
    l->len++;
}

static void lru_clear(lru_t *l)
{
    while (l->head.next != &l->head)
        lru_remove(l, l->head.next);
    free(l->buckets);
}

/* ---- the records ---- */

typedef struct aggregate {
    lru_node_t node;
    int64_t last_ns;                   /* when the last similar event came */
    int n;                             /* < AGGREGATE_MAX between calls */
    uint64_t messages[AGGREGATE_MAX];  /* hashes of the distinct messages, oldest first */
} aggregate_t;

typedef struct series {
    lru_node_t node;
    char *name;      /* of the Event in kube-apiserver (NULL while count is 0) */
    char first[24];  /* its firstTimestamp */
    int64_t count;   /* occurrences so far; 0: none, the next one creates */
    int64_t last_ns; /* when it was last seen */
    int busy;        /* a request for it is under way: invariants (1), (2) */
} series_t;

typedef struct bucket {
    lru_node_t node;
    /* It holds (now - empty_at) / SPAM_INTERVAL_NS tokens, at most
     * SPAM_BURST: integers, so refills never lose a token to rounding. */
    int64_t empty_at;
} bucket_t;

static void free_plain(lru_node_t *n)
{
    free(n);
}

static void free_series(lru_node_t *n)
{
    free(((series_t *)n)->name);
    free(n);
}

static int series_busy(const lru_node_t *n)
{
    return ((const series_t *)n)->busy;
}

/* ---- the recorder ---- */

struct event_recorder {
    kube_client_t *kube;
    char *component;
    char *host; /* "" for none */
    int64_t (*now_ns)(void *ctx);
    void *now_ctx;

    pthread_mutex_t lock;
    pthread_cond_t settled; /* broadcast whenever a series stops being busy */
    lru_t aggregates, series, buckets;
    int64_t last_stamp;     /* of the last Event name given: invariant (3) */
};

static int64_t realtime_ns(void *ctx)
{
    (void)ctx;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * NS_PER_S + ts.tv_nsec;
}

event_recorder_t *event_recorder_new(kube_client_t *kube, const char *component, const char *host,
                                     const event_recorder_options_t *opts)
{
    event_recorder_t *r = lo_calloc(1, sizeof(*r));
    r->kube = kube;
    r->component = lo_strdup(component && *component ? component : DEFAULT_COMPONENT);
    r->host = lo_strdup(host ? host : "");
    r->now_ns = opts && opts->now_ns ? opts->now_ns : realtime_ns;
    r->now_ctx = opts ? opts->now_ctx : NULL;
    size_t cap = opts && opts->cache_size > 0 ? (size_t)opts->cache_size : DEFAULT_CACHE_SIZE;
    pthread_mutex_init(&r->lock, NULL);
    pthread_cond_init(&r->settled, NULL);
    lru_init(&r->aggregates, cap, free_plain, NULL);
    lru_init(&r->series, cap, free_series, series_busy);
    lru_init(&r->buckets, cap, free_plain, NULL);
    return r;
}

void event_recorder_free(event_recorder_t *r)
{
    if (r == NULL)
        return;
    lru_clear(&r->aggregates);
    lru_clear(&r->series);
    lru_clear(&r->buckets);
    pthread_cond_destroy(&r->settled);
    pthread_mutex_destroy(&r->lock);
    free(r->component);
    free(r->host);
    free(r);
}

/* ---- the involved object and the text ---- */

/* The involved object's reference; strings borrowed from it, "" when absent. */
typedef struct ref {
    const char *api_version, *kind, *name, *ns, *uid, *rv;
} ref_t;

static const char *str_or_empty(const json_t *obj, const char *key)
{
    const char *s = json_string_value(json_object_get(obj, key));
    return s ? s : "";
}

/* Safe as one segment of a URL path without escaping. */
static int path_segment_ok(const char *s)
{
    if (*s == '\0' || strcmp(s, ".") == 0 || strcmp(s, "..") == 0)
        return 0;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if (*p <= 0x20 || *p >= 0x7F || strchr("/?#%", *p))
            return 0;
    return 1;
}

static int ref_of(const json_t *involved, ref_t *ref, lo_err_t *err)
{
    const json_t *meta = json_object_get(involved, "metadata");
    *ref = (ref_t){.api_version = str_or_empty(involved, "apiVersion"),
                   .kind = str_or_empty(involved, "kind"),
                   .name = str_or_empty(meta, "name"),
                   .ns = str_or_empty(meta, "namespace"),
                   .uid = str_or_empty(meta, "uid"),
                   .rv = str_or_empty(meta, "resourceVersion")};
    if (!*ref->api_version || !*ref->kind || !*ref->name) {
        lo_err_set(err, 0, "BadRequest", "event: the involved object needs apiVersion, kind and metadata.name");
        return -1;
    }
    if (!path_segment_ok(ref->name) || (*ref->ns && !path_segment_ok(ref->ns))) {
        lo_err_set(err, 0, "BadRequest", "event: the involved object's name or namespace is no path segment");
        return -1;
    }
    return 0;
}

/* Cuts s to at most max bytes, never inside a UTF-8 character. */
static void cut_utf8(char *s, size_t max)
{
    if (strlen(s) <= max)
        return;
    size_t n = max;
    while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80) /* s[n] continues a character */
        n--;
    s[n] = '\0';
}

/* The message as sent: valid UTF-8, at most EVENT_MESSAGE_MAX bytes. Caller frees. */
static char *message_text(const char *message)
{
    if (message == NULL)
        message = "";
    char *s = text_utf8_repair(message, strlen(message));
    cut_utf8(s, EVENT_MESSAGE_MAX);
    return s;
}

static void format_time(int64_t ns, char out[24])
{
    time_t secs = (time_t)(ns / NS_PER_S);
    struct tm tm;
    gmtime_r(&secs, &tm);
    strftime(out, 24, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/*
 * A cache key: a tag, then each field as "<length>:<bytes>", so that no two
 * lists of fields make the same key (client-go joins them with nothing).
 * Caller frees.
 */
static char *make_key(char tag, const char *const *fields)
{
    lo_buf_t b = {0};
    lo_buf_char(&b, tag);
    for (; *fields; fields++)
        lo_buf_printf(&b, "%zu:%s", strlen(*fields), *fields);
    return b.data;
}

/* ---- correlate: under the lock ---- */

/* What one call sends. */
typedef struct plan {
    char *series_key; /* owned */
    char *name;       /* owned: of the Event */
    char *message;    /* owned: as sent (combined, when aggregated) */
    char first[24], last[24];
    int64_t count;
    int patch;        /* 1: PATCH the Event; 0: create it */
} plan_t;

static void plan_clear(plan_t *p)
{
    free(p->series_key);
    free(p->name);
    free(p->message);
}

/*
 * Step 1: notes message among the similar events of key; 1 when the event is
 * to be combined (the AGGREGATE_MAX-th distinct message in the window).
 */
static int aggregate(event_recorder_t *r, const char *key, const char *message, int64_t now)
{
    aggregate_t *a = (aggregate_t *)lru_find(&r->aggregates, key);
    if (a == NULL) {
        a = lo_calloc(1, sizeof(*a));
        lru_insert(&r->aggregates, &a->node, key);
    } else if (now - a->last_ns > AGGREGATE_WINDOW_NS) {
        a->n = 0;
    }
    a->last_ns = now;
    uint64_t h = hash_text(message);
    int seen = 0;
    for (int i = 0; i < a->n && !seen; i++)
        seen = a->messages[i] == h;
    if (!seen)
        a->messages[a->n++] = h;
    if (a->n < AGGREGATE_MAX)
        return 0;
    /* as client-go, the set is kept below the maximum: the oldest goes */
    memmove(a->messages, a->messages + 1, (AGGREGATE_MAX - 1) * sizeof(a->messages[0]));
    a->n--;
    return 1;
}

/* A new Event name for an object called name: invariant (3). Caller frees. */
static char *new_name(event_recorder_t *r, const char *name, int64_t now)
{
    int64_t stamp = now > r->last_stamp ? now : r->last_stamp + 1;
    r->last_stamp = stamp;
    return lo_sprintf("%s.%" PRIx64, name, (uint64_t)stamp);
}

/*
 * Step 2: the series of p->series_key, seen once more at now (created, or
 * started over when last seen outside the window). Waits while another call
 * sends it: invariant (2). Fills p's name, timestamps, count and patch.
 */
static series_t *observe(event_recorder_t *r, const char *obj_name, int64_t now, plan_t *p)
{
    series_t *s;
    while ((s = (series_t *)lru_find(&r->series, p->series_key)) != NULL && s->busy)
        pthread_cond_wait(&r->settled, &r->lock);
    if (s == NULL) {
        s = lo_calloc(1, sizeof(*s));
        lru_insert(&r->series, &s->node, p->series_key);
    } else if (now - s->last_ns > SERIES_WINDOW_NS) {
        s->count = 0;
    }
    if (s->count == 0) {
        free(s->name);
        s->name = new_name(r, obj_name, now);
        format_time(now, s->first);
    }
    s->count++;
    s->last_ns = now;
    p->patch = s->count > 1;
    p->count = s->count;
    p->name = lo_strdup(s->name);
    memcpy(p->first, s->first, sizeof(p->first));
    format_time(now, p->last);
    return s;
}

/* Step 3: a token of the bucket of key; 1 when there was one. */
static int spam_take(event_recorder_t *r, const char *key, int64_t now)
{
    const int64_t full = SPAM_BURST * SPAM_INTERVAL_NS;
    bucket_t *b = (bucket_t *)lru_find(&r->buckets, key);
    if (b == NULL) {
        b = lo_calloc(1, sizeof(*b));
        b->empty_at = now - full;
        lru_insert(&r->buckets, &b->node, key);
    }
    if (b->empty_at < now - full)
        b->empty_at = now - full; /* no more than a burst saved up */
    if (now - b->empty_at < SPAM_INTERVAL_NS)
        return 0;
    b->empty_at += SPAM_INTERVAL_NS;
    return 1;
}

/* Steps 1 to 3 for one event; 0 (p filled, its series busy) or EVENT_DROPPED. */
static int correlate(event_recorder_t *r, const ref_t *o, const char *type, const char *reason,
                     const char *message, plan_t *p)
{
    const char *c = r->component, *h = r->host;
    int64_t now = r->now_ns(r->now_ctx);
    const char *similar[] = {c, h, o->kind, o->ns, o->name, o->uid, o->api_version, type, reason, NULL};
    const char *same[] = {c, h, o->kind, o->ns, o->name, "", o->uid, o->api_version, type, reason,
                          message, NULL}; /* "": the field path, as client-go's key has it */
    const char *object[] = {c, h, o->kind, o->ns, o->name, o->uid, o->api_version, NULL};

    char *similar_key = make_key('A', similar);
    if (aggregate(r, similar_key, message, now)) {
        p->message = lo_sprintf(COMBINED_PREFIX "%s", message);
        cut_utf8(p->message, EVENT_MESSAGE_MAX);
        similar_key[0] = 'C'; /* the combined Event's series */
        p->series_key = similar_key;
    } else {
        p->message = lo_strdup(message);
        p->series_key = make_key('E', same);
        free(similar_key);
    }
    series_t *s = observe(r, o->name, now, p);
    char *object_key = make_key('S', object);
    int token = spam_take(r, object_key, now);
    free(object_key);
    if (!token)
        return EVENT_DROPPED;
    s->busy = 1;
    return 0;
}

/* ---- send: without the lock ---- */

static void set_text(json_t *obj, const char *key, const char *value)
{
    json_object_set_new(obj, key, lo_json_text(value));
}

static void set_if(json_t *obj, const char *key, const char *value)
{
    if (*value)
        set_text(obj, key, value);
}

/* The Event to create (new reference), in client-go's shape. */
static json_t *event_body(const event_recorder_t *r, const ref_t *o, const char *type,
                          const char *reason, const plan_t *p)
{
    json_t *meta = json_object(), *involved = json_object(), *source = json_object();
    set_text(meta, "name", p->name);
    set_text(meta, "namespace", *o->ns ? o->ns : "default");
    set_text(involved, "kind", o->kind);
    set_if(involved, "namespace", o->ns);
    set_text(involved, "name", o->name);
    set_if(involved, "uid", o->uid);
    set_text(involved, "apiVersion", o->api_version);
    set_if(involved, "resourceVersion", o->rv);
    set_text(source, "component", r->component);
    set_if(source, "host", r->host);

    json_t *ev = json_object();
    set_text(ev, "apiVersion", "v1");
    set_text(ev, "kind", "Event");
    json_object_set_new(ev, "metadata", meta);
    json_object_set_new(ev, "involvedObject", involved);
    set_text(ev, "reason", reason);
    set_text(ev, "message", p->message);
    json_object_set_new(ev, "source", source);
    set_text(ev, "firstTimestamp", p->first);
    set_text(ev, "lastTimestamp", p->last);
    json_object_set_new(ev, "count", json_integer(p->count));
    set_text(ev, "type", type);
    json_object_set_new(ev, "eventTime", json_null());
    set_text(ev, "reportingComponent", r->component);
    set_text(ev, "reportingInstance", r->host);
    return ev;
}

/*
 * The request of p: a PATCH of what changes for a series seen before (what
 * client-go's two-way strategic merge patch holds), else, or when the Event
 * is gone, a POST. The answer's body in *answer (new reference) on success.
 */
static int send_plan(event_recorder_t *r, const ref_t *o, const char *type, const char *reason,
                     const plan_t *p, json_t **answer, lo_err_t *err)
{
    char *events = lo_sprintf("/api/v1/namespaces/%s/events", *o->ns ? o->ns : "default");
    kube_response_t resp = {0};
    int rc = KUBE_EHTTP, gone = 0;
    if (p->patch) {
        char *path = lo_sprintf("%s/%s", events, p->name);
        json_t *patch = json_object();
        json_object_set_new(patch, "count", json_integer(p->count));
        set_text(patch, "lastTimestamp", p->last);
        set_text(patch, "message", p->message);
        rc = kube_request(r->kube, "PATCH", path, "application/strategic-merge-patch+json", patch,
                          &resp, err);
        json_decref(patch);
        free(path);
        gone = rc == KUBE_EHTTP && resp.status == 404; /* deleted, or expired: create it again */
        if (gone) {
            json_decref(resp.body);
            resp.body = NULL;
            lo_err_clear(err);
        }
    }
    if (!p->patch || gone) {
        json_t *ev = event_body(r, o, type, reason, p);
        rc = kube_request(r->kube, "POST", events, NULL, ev, &resp, err);
        json_decref(ev);
    }
    free(events);
    if (rc == KUBE_OK)
        *answer = resp.body;
    else
        json_decref(resp.body);
    return rc;
}

/* ---- settle: under the lock ---- */

/* The series of p, no longer busy, holds what kube-apiserver answered (may be NULL). */
static void settle(event_recorder_t *r, const plan_t *p, const json_t *answer)
{
    series_t *s = (series_t *)lru_find(&r->series, p->series_key);
    assert(s != NULL && s->busy); /* invariant (1) */
    const char *name = json_string_value(json_object_get(json_object_get(answer, "metadata"), "name"));
    const char *first = json_string_value(json_object_get(answer, "firstTimestamp"));
    const json_t *count = json_object_get(answer, "count");
    if (name) {
        free(s->name);
        s->name = lo_strdup(name);
    }
    if (first && strlen(first) < sizeof(s->first))
        memcpy(s->first, first, strlen(first) + 1);
    if (json_is_integer(count) && json_integer_value(count) > 0)
        s->count = json_integer_value(count);
    s->busy = 0;
    pthread_cond_broadcast(&r->settled);
}

/* ---- recording ---- */

int event_record(event_recorder_t *r, const json_t *involved, const char *type, const char *reason,
                 const char *message, lo_err_t *err)
{
    ref_t o;
    if (ref_of(involved, &o, err) < 0)
        return KUBE_EINVAL;
    if (type == NULL || (strcmp(type, "Normal") != 0 && strcmp(type, "Warning") != 0)) {
        lo_err_set(err, 0, "BadRequest", "event: type must be Normal or Warning, not \"%s\"",
                   type ? type : "");
        return KUBE_EINVAL;
    }
    if (reason == NULL || *reason == '\0') {
        lo_err_set(err, 0, "BadRequest", "event: a reason is needed");
        return KUBE_EINVAL;
    }
    char *text = message_text(message);
    plan_t p = {0};
    pthread_mutex_lock(&r->lock);
    int rc = correlate(r, &o, type, reason, text, &p);
    pthread_mutex_unlock(&r->lock);
    free(text);
    if (rc == EVENT_DROPPED) {
        lo_log(LO_DEBUG, "event %s %s%s%s %s: dropped by the spam filter", o.kind, o.ns, *o.ns ? "/" : "",
               o.name, reason);
        plan_clear(&p);
        return EVENT_DROPPED;
    }
    json_t *answer = NULL;
    rc = send_plan(r, &o, type, reason, &p, &answer, err);
    pthread_mutex_lock(&r->lock);
    settle(r, &p, answer);
    pthread_mutex_unlock(&r->lock);
    json_decref(answer);
    plan_clear(&p);
    return rc == KUBE_OK ? EVENT_RECORDED : rc;
}

int event_recordf(event_recorder_t *r, const json_t *involved, const char *type, const char *reason,
                  lo_err_t *err, const char *fmt, ...)
{
    va_list ap;
    char *message = NULL;
    va_start(ap, fmt);
    int n = vasprintf(&message, fmt, ap);
    va_end(ap);
    if (n < 0)
        lo_fatal("out of memory (event_recordf)");
    int rc = event_record(r, involved, type, reason, message, err);
    free(message);
    return rc;
}
