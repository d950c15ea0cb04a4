/*
 * informer.c - list + watch of one collection into a local cache
 * (informer.h).
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "langop/reconcile/informer.h"

#define PAGE_SIZE 500
#define BACKOFF_BASE_MS 500

struct informer {
    kube_client_t *kube;
    char *path;
    char *label_selector; /* escaped for a query, or NULL */
    json_t *(*transform)(const json_t *);
    informer_event_fn on_event;
    void (*on_recovered)(void *);
    void *ctx;
    long watch_timeout_ms;
    long backoff_max_ms;

    pthread_t thread;
    int started;
    atomic_int stop;

    pthread_mutex_t lock; /* cache, synced; cond: synced and stop */
    pthread_cond_t cond;
    json_t *cache;        /* "ns/name" -> object */
    int synced;
};

/* ---- helpers ---- */

static const char *str_of(const json_t *obj, const char *key)
{
    const json_t *v = json_object_get(obj, key);
    return json_is_string(v) ? json_string_value(v) : NULL;
}

static const json_t *meta_of(const json_t *obj)
{
    return json_object_get(obj, "metadata");
}

/* "ns/name" of obj (caller frees), or NULL when it has no name. */
static char *key_of(const json_t *obj)
{
    const char *ns = str_of(meta_of(obj), "namespace"), *name = str_of(meta_of(obj), "name");
    return name ? lo_sprintf("%s/%s", ns ? ns : "", name) : NULL;
}

/* Percent-encodes everything but RFC 3986's unreserved characters (caller frees). */
static char *query_escape(const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    char *out = lo_calloc(strlen(s) * 3 + 1, 1), *p = out;
    for (const unsigned char *c = (const unsigned char *)s; *c; c++) {
        if ((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') || strchr("-._~", *c)) {
            *p++ = (char)*c;
        } else {
            *p++ = '%';
            *p++ = hex[*c >> 4];
            *p++ = hex[*c & 15];
        }
    }
    return out;
}

/*
 * 1 when resourceVersion a is newer than b. resourceVersions are opaque to
 * clients, but kube's are decimal integers; anything else counts as newer,
 * so the cache follows what it is given.
 */
static int rv_newer(const char *a, const char *b)
{
    if (a == NULL || b == NULL)
        return 1;
    char *ea, *eb;
    unsigned long long va = strtoull(a, &ea, 10), vb = strtoull(b, &eb, 10);
    if (*a == '\0' || *b == '\0' || *ea || *eb)
        return 1;
    return va > vb;
}

static json_t *kept_form(informer_t *inf, const json_t *obj)
{
    return inf->transform ? inf->transform(obj) : json_deep_copy(obj);
}

static void emit(informer_t *inf, const char *type, const json_t *obj, const json_t *old)
{
    if (inf->on_event)
        inf->on_event(inf->ctx, type, obj, old);
}

/* Sleeps ms, or less when stop is asked. */
static void sleep_unless_stopped(informer_t *inf, long ms)
{
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += ms / 1000;
    until.tv_nsec += (ms % 1000) * 1000000L;
    if (until.tv_nsec >= 1000000000L)
        until.tv_sec++, until.tv_nsec -= 1000000000L;
    pthread_mutex_lock(&inf->lock);
    while (!atomic_load(&inf->stop) && pthread_cond_timedwait(&inf->cond, &inf->lock, &until) == 0)
        ;
    pthread_mutex_unlock(&inf->lock);
}

static long backoff_ms(informer_t *inf, int failures)
{
    long d = BACKOFF_BASE_MS;
    for (int i = 0; i < failures && d < inf->backoff_max_ms; i++)
        d *= 2;
    if (d > inf->backoff_max_ms)
        d = inf->backoff_max_ms;
    return d / 2 + (long)(random() % (d / 2 + 1)); /* jitter: [d/2, d] */
}

/* ---- list ---- */

/*
 * kube leaves apiVersion and kind out of a list's items (they are the
 * list's, kind without "List"); the watch's objects and the answers to
 * writes carry them. Put them back, so that every cached object has them
 * and a relist does not see a difference where there is none.
 */
static void typed_items(json_t *list)
{
    const char *api_version = str_of(list, "apiVersion"), *list_kind = str_of(list, "kind");
    size_t n = list_kind ? strlen(list_kind) : 0;
    if (api_version == NULL || n <= 4 || strcmp(list_kind + n - 4, "List") != 0)
        return;
    size_t i;
    json_t *item;
    json_array_foreach(json_object_get(list, "items"), i, item) {
        if (json_object_get(item, "apiVersion") == NULL)
            json_object_set_new(item, "apiVersion", json_string(api_version));
        if (json_object_get(item, "kind") == NULL)
            json_object_set_new(item, "kind", json_stringn(list_kind, n - 4));
    }
}

/* One page: fills fresh with its items, *cont with its continue token (or NULL), *rv with its version. */
static int list_page(informer_t *inf, const char *cont_in, json_t *fresh, char **cont, char **rv, lo_err_t *err)
{
    char *cont_q = cont_in ? query_escape(cont_in) : NULL;
    char *path = lo_sprintf("%s?limit=%d%s%s%s%s", inf->path, PAGE_SIZE, inf->label_selector ? "&labelSelector=" : "",
                            inf->label_selector ? inf->label_selector : "", cont_q ? "&continue=" : "",
                            cont_q ? cont_q : "");
    json_t *list = NULL;
    int rc = kube_get(inf->kube, path, &list, err);
    free(path);
    free(cont_q);
    if (rc != KUBE_OK)
        return -1;
    typed_items(list);
    size_t i;
    json_t *item;
    json_array_foreach(json_object_get(list, "items"), i, item) {
        char *key = key_of(item);
        if (key)
            json_object_set_new(fresh, key, kept_form(inf, item));
        free(key);
    }
    const char *c = str_of(meta_of(list), "continue"), *v = str_of(meta_of(list), "resourceVersion");
    *cont = c && c[0] ? lo_strdup(c) : NULL;
    *rv = v ? lo_strdup(v) : NULL;
    json_decref(list);
    return 0;
}

/* Passes on every difference between old and fresh (both borrowed). */
static void emit_differences(informer_t *inf, json_t *old, json_t *fresh)
{
    const char *key;
    json_t *obj;
    json_object_foreach(fresh, key, obj) {
        json_t *before = json_object_get(old, key);
        if (before == NULL)
            emit(inf, "ADDED", obj, NULL);
        else if (!json_equal(before, obj))
            emit(inf, "MODIFIED", obj, before);
    }
    json_object_foreach(old, key, obj) {
        if (json_object_get(fresh, key) == NULL)
            emit(inf, "DELETED", obj, obj);
    }
}

/*
 * LIST every page, replace the cache; *rv (caller frees): where to watch
 * from. A list cut short (a failure, or stop between pages) changes
 * nothing. The differences are passed on from fresh, which stays this
 * thread's own: the cache is a copy, that other threads (and callbacks,
 * through informer_upsert) may change meanwhile.
 */
static int relist(informer_t *inf, char **rv, lo_err_t *err)
{
    json_t *fresh = json_object();
    char *cont = NULL;
    *rv = NULL;
    do {
        char *next = NULL, *page_rv = NULL;
        int rc = list_page(inf, cont, fresh, &next, &page_rv, err);
        free(cont);
        cont = next;
        if (rc != 0) {
            json_decref(fresh);
            free(*rv);
            *rv = NULL;
            return -1;
        }
        if (*rv == NULL) /* the first page's version is the list's */
            *rv = page_rv;
        else
            free(page_rv);
    } while (cont && !atomic_load(&inf->stop));
    if (cont) { /* stopped */
        free(cont);
        json_decref(fresh);
        free(*rv);
        *rv = NULL;
        return -1;
    }
    pthread_mutex_lock(&inf->lock);
    json_t *old = inf->cache;
    inf->cache = json_copy(fresh);
    inf->synced = 1;
    pthread_cond_broadcast(&inf->cond);
    pthread_mutex_unlock(&inf->lock);
    emit_differences(inf, old, fresh);
    json_decref(old);
    json_decref(fresh);
    return 0;
}

/* ---- watch ---- */

typedef struct watch_state {
    informer_t *inf;
    int events;
} watch_state_t;

static int on_watch_event(void *arg, const char *type, json_t *object)
{
    watch_state_t *ws = arg;
    informer_t *inf = ws->inf;
    ws->events++;
    if (strcmp(type, "BOOKMARK") == 0)
        return atomic_load(&inf->stop);
    char *key = key_of(object);
    if (key == NULL)
        return 0;
    json_t *kept = kept_form(inf, object);
    pthread_mutex_lock(&inf->lock);
    json_t *old = json_incref(json_object_get(inf->cache, key));
    if (strcmp(type, "DELETED") == 0)
        json_object_del(inf->cache, key);
    else
        json_object_set(inf->cache, key, kept);
    pthread_mutex_unlock(&inf->lock);
    if (strcmp(type, "DELETED") == 0)
        emit(inf, "DELETED", kept, old ? old : kept);
    else
        emit(inf, old ? "MODIFIED" : "ADDED", kept, old);
    json_decref(old);
    json_decref(kept);
    free(key);
    return atomic_load(&inf->stop);
}

static void *informer_main(void *arg)
{
    informer_t *inf = arg;
    char *watch_path = inf->label_selector ? lo_sprintf("%s?labelSelector=%s", inf->path, inf->label_selector)
                                           : lo_strdup(inf->path);
    char *rv = NULL;
    int failures = 0;
    while (!atomic_load(&inf->stop)) {
        lo_err_t err = {0};
        if (rv == NULL) {
            if (relist(inf, &rv, &err) != 0) {
                if (!atomic_load(&inf->stop))
                    lo_log(LO_INFO, "informer %s: list failed: %s", inf->path, err.message);
                lo_err_clear(&err);
                sleep_unless_stopped(inf, backoff_ms(inf, failures++));
                continue;
            }
            if (failures > 0 && inf->on_recovered)
                inf->on_recovered(inf->ctx);
        }
        watch_state_t ws = {.inf = inf};
        kube_watch_options_t wo = {.resource_version = rv, .timeout_ms = inf->watch_timeout_ms, .stop = &inf->stop};
        char *last = NULL;
        int64_t started = lo_now_ms();
        int rc = kube_watch(inf->kube, watch_path, &wo, on_watch_event, &ws, &last, &err);
        if (last) {
            free(rv);
            rv = last;
        }
        if (ws.events > 0) /* the server answered: a break now starts the backoff over */
            failures = 0;
        if (rc == KUBE_EGONE) { /* history gone: list again at once */
            free(rv);
            rv = NULL;
        } else if (rc == KUBE_OK && (ws.events > 0 || lo_now_ms() - started >= 1000)) {
            failures = 0;
        } else if (!atomic_load(&inf->stop)) { /* a failure, or a stream that ends at once */
            if (rc != KUBE_OK) {
                lo_log(LO_INFO, "informer %s: watch failed: %s", inf->path, err.message);
                free(rv); /* what happened meanwhile is known only to a new list */
                rv = NULL;
            }
            sleep_unless_stopped(inf, backoff_ms(inf, failures++));
        }
        lo_err_clear(&err);
    }
    free(rv);
    free(watch_path);
    return NULL;
}

/* ---- life ---- */

informer_t *informer_new(kube_client_t *kube, const informer_options_t *opts)
{
    informer_t *inf = lo_calloc(1, sizeof(*inf));
    inf->kube = kube;
    inf->path = lo_strdup(opts->path);
    inf->label_selector = opts->label_selector ? query_escape(opts->label_selector) : NULL;
    inf->transform = opts->transform;
    inf->on_event = opts->on_event;
    inf->on_recovered = opts->on_recovered;
    inf->ctx = opts->ctx;
    inf->watch_timeout_ms = opts->watch_timeout_ms > 0 ? opts->watch_timeout_ms : 300000;
    inf->backoff_max_ms = opts->backoff_max_ms > 0 ? opts->backoff_max_ms : 30000;
    inf->cache = json_object();
    pthread_mutex_init(&inf->lock, NULL);
    pthread_cond_init(&inf->cond, NULL);
    return inf;
}

int informer_start(informer_t *inf, lo_err_t *err)
{
    if (pthread_create(&inf->thread, NULL, informer_main, inf) != 0) {
        lo_err_set(err, 500, "InternalError", "informer %s: cannot start a thread", inf->path);
        return -1;
    }
    inf->started = 1;
    return 0;
}

void informer_signal_stop(informer_t *inf)
{
    pthread_mutex_lock(&inf->lock);
    atomic_store(&inf->stop, 1);
    pthread_cond_broadcast(&inf->cond);
    pthread_mutex_unlock(&inf->lock);
}

void informer_stop(informer_t *inf)
{
    informer_signal_stop(inf);
    if (inf->started)
        pthread_join(inf->thread, NULL);
    inf->started = 0;
}

void informer_free(informer_t *inf)
{
    if (inf == NULL)
        return;
    informer_stop(inf);
    json_decref(inf->cache);
    pthread_mutex_destroy(&inf->lock);
    pthread_cond_destroy(&inf->cond);
    free(inf->path);
    free(inf->label_selector);
    free(inf);
}

/* ---- reads ---- */

int informer_wait_synced(informer_t *inf, long timeout_ms)
{
    int64_t deadline = lo_now_ms() + timeout_ms;
    pthread_mutex_lock(&inf->lock);
    while (!inf->synced && !atomic_load(&inf->stop) && lo_now_ms() < deadline) {
        pthread_mutex_unlock(&inf->lock);
        sleep_unless_stopped(inf, 50);
        pthread_mutex_lock(&inf->lock);
    }
    int synced = inf->synced;
    pthread_mutex_unlock(&inf->lock);
    return synced;
}

int informer_synced(informer_t *inf)
{
    pthread_mutex_lock(&inf->lock);
    int synced = inf->synced;
    pthread_mutex_unlock(&inf->lock);
    return synced;
}

json_t *informer_get(informer_t *inf, const char *ns, const char *name)
{
    char *key = lo_sprintf("%s/%s", ns ? ns : "", name);
    pthread_mutex_lock(&inf->lock);
    json_t *obj = json_incref(json_object_get(inf->cache, key));
    pthread_mutex_unlock(&inf->lock);
    free(key);
    return obj;
}

static int matches(const json_t *obj, const char *ns, const char *label_key, const char *label_value)
{
    const char *ons = str_of(meta_of(obj), "namespace");
    if (ns && strcmp(ons ? ons : "", ns) != 0)
        return 0;
    if (label_key == NULL)
        return 1;
    const char *v = str_of(json_object_get(meta_of(obj), "labels"), label_key);
    return v && label_value && strcmp(v, label_value) == 0;
}

json_t *informer_list(informer_t *inf, const char *ns, const char *label_key, const char *label_value)
{
    json_t *out = json_array();
    const char *key;
    json_t *obj;
    pthread_mutex_lock(&inf->lock);
    json_object_foreach(inf->cache, key, obj) {
        if (matches(obj, ns, label_key, label_value))
            json_array_append(out, obj);
    }
    pthread_mutex_unlock(&inf->lock);
    return out;
}

void informer_upsert(informer_t *inf, const json_t *obj)
{
    char *key = key_of(obj);
    if (key == NULL)
        return;
    json_t *kept = kept_form(inf, obj);
    pthread_mutex_lock(&inf->lock);
    const json_t *have = json_object_get(inf->cache, key);
    if (have == NULL || rv_newer(str_of(meta_of(kept), "resourceVersion"), str_of(meta_of(have), "resourceVersion")))
        json_object_set(inf->cache, key, kept);
    pthread_mutex_unlock(&inf->lock);
    json_decref(kept);
    free(key);
}
