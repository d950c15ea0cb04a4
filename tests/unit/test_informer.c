/*
 * test_informer.c - the list + watch cache of one collection
 * (langop/reconcile/informer.h) against the kube-apiserver stand-in,
 * tests/standin/kube_standin.py, run as a process for the group.
 *
 * Each test works in namespaces of its own, so that no informer sees
 * another test's objects. The test writes through a control client of its
 * own User-Agent; it injects faults, compacts the history and reads the
 * request log through the stand-in's /standin/ endpoints. Events are
 * recorded by the informers' callback and compared as text
 * ("ADDED a, MODIFIED a").
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "langop/kube/kubeconfig.h"
#include "langop/reconcile/informer.h"
#include "standin_process.h"

#define CONTROL_AGENT "test-control"
#define PAGE 500 /* the informer's page size */

static struct {
    char dir[64];       /* certificates and the kubeconfig */
    standin_t st;
    kube_client_t *kube; /* the informers' */
    kube_client_t *ctl;  /* the test's writes, and /standin/ */
    struct {
        informer_t *inf;
        struct recorder *rec;
    } retired[32]; /* see retire() */
    int n_retired;
} sx;

static void recorder_free(struct recorder *rec);

/* ---- clients and the stand-in ---- */

static kube_client_t *client(const kube_client_options_t *opts)
{
    char *path = lo_sprintf("%s/kubeconfig", sx.dir);
    lo_err_t err = {0};
    kube_config_t *cfg = kubeconfig_load_file(path, NULL, &err);
    free(path);
    if (cfg == NULL) {
        fprintf(stderr, "kubeconfig: %s\n", err.message);
        return NULL;
    }
    kube_client_t *c = kube_client_new(cfg, opts, &err);
    if (c == NULL)
        fprintf(stderr, "kube client: %s\n", err.message);
    return c;
}

static int stop_all(void **state)
{
    (void)state;
    standin_signal(&sx.st); /* its end also ends the watches of the retired informers */
    for (int i = 0; i < sx.n_retired; i++) {
        informer_free(sx.retired[i].inf);
        recorder_free(sx.retired[i].rec);
    }
    kube_client_free(sx.kube);
    kube_client_free(sx.ctl);
    sx.kube = sx.ctl = NULL;
    standin_reap(&sx.st);
    char *cmd = lo_sprintf("rm -rf '%s'", sx.dir);
    int rc = system(cmd);
    free(cmd);
    return rc == 0 ? 0 : -1;
}

static int start_all(void **state)
{
    if (!standin_env_ok())
        return -1;
    snprintf(sx.dir, sizeof(sx.dir), "/tmp/test_informer.XXXXXX");
    if (mkdtemp(sx.dir) == NULL)
        return -1;
    char *kubeconfig = lo_sprintf("%s/kubeconfig", sx.dir);
    int rc = standin_python_in(STANDIN_PY_PRELUDE "k.make_serving_certs(d)\n", sx.dir);
    if (rc == 0)
        rc = standin_start(&sx.st, sx.dir, "127.0.0.1", kubeconfig);
    free(kubeconfig);
    /* fast retries, so that faults cost the tests little time */
    static const kube_client_options_t fast = {
        .connect_timeout_ms = 2000, .timeout_ms = 5000, .max_retries = 3,
        .backoff_base_ms = 10, .backoff_max_ms = 50,
    };
    static const kube_client_options_t control = {
        .timeout_ms = 10000, .max_retries = -1, .user_agent = CONTROL_AGENT,
    };
    if (rc == 0) {
        sx.kube = client(&fast);
        sx.ctl = client(&control);
    }
    if (sx.kube == NULL || sx.ctl == NULL) {
        stop_all(state);
        return -1;
    }
    return 0;
}

/* Before each test: no fault left over (from a test that failed half-way, too). */
static int no_faults(void **state)
{
    (void)state;
    kube_response_t r;
    lo_err_t err = {0};
    int rc = kube_request(sx.ctl, "DELETE", "/standin/faults", NULL, NULL, &r, &err);
    json_decref(r.body);
    lo_err_clear(&err);
    return rc == KUBE_OK ? 0 : -1;
}

/* A request of the control client (a PATCH is a merge patch); its answer (new reference). body is stolen. */
static json_t *ctl(const char *method, const char *path, json_t *body)
{
    kube_response_t r;
    lo_err_t err = {0};
    const char *ctype = strcmp(method, "PATCH") == 0 ? "application/merge-patch+json" : NULL;
    if (kube_request(sx.ctl, method, path, ctype, body, &r, &err) != KUBE_OK)
        fail_msg("control %s %s: %s", method, path, err.message);
    json_decref(body);
    return r.body;
}

static const char *str_at(const json_t *obj, const char *key)
{
    const json_t *v = json_object_get(obj, key);
    return json_is_string(v) ? json_string_value(v) : "(none)";
}

static const char *meta_str(const json_t *obj, const char *key)
{
    return str_at(json_object_get(obj, "metadata"), key);
}

static char *cms_of(const char *ns)
{
    return lo_sprintf("/api/v1/namespaces/%s/configmaps", ns);
}

/* A ConfigMap ns/name with labels (stolen; NULL: none) and data {"v": value}. */
static json_t *configmap(const char *ns, const char *name, json_t *labels, const char *value)
{
    json_t *md = json_pack("{s:s,s:s}", "name", name, "namespace", ns);
    if (labels)
        json_object_set_new(md, "labels", labels);
    return json_pack("{s:s,s:s,s:o,s:{s:s}}", "apiVersion", "v1", "kind", "ConfigMap", "metadata", md, "data",
                     "v", value);
}

static json_t *label(const char *key, const char *value)
{
    return json_pack("{s:s}", key, value);
}

/* Puts objects (an array, stolen) straight into the stand-in's store: one request for many. */
static void seed(json_t *objects)
{
    json_decref(ctl("PUT", "/standin/state", json_pack("{s:o}", "objects", objects)));
}

static void make_namespace(const char *ns)
{
    seed(json_pack("[{s:s,s:s,s:{s:s}}]", "apiVersion", "v1", "kind", "Namespace", "metadata", "name", ns));
}

/* Creates a configmap through the API; its resourceVersion (caller frees). */
static char *create_cm(const char *ns, const char *name, json_t *labels, const char *value)
{
    char *path = cms_of(ns);
    json_t *got = ctl("POST", path, configmap(ns, name, labels, value));
    char *rv = lo_strdup(meta_str(got, "resourceVersion"));
    json_decref(got);
    free(path);
    return rv;
}

/* Merge-patches ns/name with patch (stolen); the new resourceVersion (caller frees). */
static char *patch_cm(const char *ns, const char *name, json_t *patch)
{
    char *path = lo_sprintf("/api/v1/namespaces/%s/configmaps/%s", ns, name);
    json_t *got = ctl("PATCH", path, patch);
    char *rv = lo_strdup(meta_str(got, "resourceVersion"));
    json_decref(got);
    free(path);
    return rv;
}

static void delete_cm(const char *ns, const char *name)
{
    char *path = lo_sprintf("/api/v1/namespaces/%s/configmaps/%s", ns, name);
    json_decref(ctl("DELETE", path, NULL));
    free(path);
}

static void add_fault(json_t *fault)
{
    json_decref(ctl("POST", "/standin/faults", fault));
}

/* How many requests to path whose query has want (and not unwanted, when given) the stand-in logged. */
static int requests_to(const char *path, const char *want, const char *unwanted)
{
    json_t *log = ctl("GET", "/standin/log", NULL);
    size_t i;
    json_t *e;
    int n = 0;
    json_array_foreach(json_object_get(log, "requests"), i, e) {
        const char *q = str_at(e, "query");
        if (strcmp(str_at(e, "userAgent"), CONTROL_AGENT) != 0 && strcmp(str_at(e, "path"), path) == 0 &&
            strstr(q, want) && (unwanted == NULL || strstr(q, unwanted) == NULL))
            n++;
    }
    json_decref(log);
    return n;
}

/* Waits (up to 5 s) until requests_to(path, want, unwanted) reaches n. */
static void wait_requests(const char *path, const char *want, const char *unwanted, int n)
{
    int64_t deadline = lo_now_ms() + 5000;
    while (requests_to(path, want, unwanted) < n) {
        if (lo_now_ms() > deadline)
            fail_msg("no %d requests to %s with %s", n, path, want);
        usleep(10 * 1000);
    }
}

/* ---- what the informer passes on ---- */

typedef struct recorder {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    json_t *events;      /* [{"type", "name", "obj", "old"}], in order */
    informer_t *inf;
    const char *upsert_on; /* when an ADDED of this name comes, the callback upserts phantom */
    json_t *phantom;
} recorder_t;

static void on_event(void *ctx, const char *type, const json_t *obj, const json_t *old)
{
    recorder_t *rec = ctx;
    /* the objects are borrowed: keep copies */
    json_t *e = json_pack("{s:s,s:s,s:o,s:o}", "type", type, "name", meta_str(obj, "name"), "obj",
                          json_deep_copy(obj), "old", old ? json_deep_copy(old) : json_null());
    pthread_mutex_lock(&rec->lock);
    json_array_append_new(rec->events, e);
    pthread_cond_broadcast(&rec->cond);
    pthread_mutex_unlock(&rec->lock);
    if (rec->upsert_on && strcmp(type, "ADDED") == 0 && strcmp(meta_str(obj, "name"), rec->upsert_on) == 0)
        informer_upsert(rec->inf, rec->phantom); /* callbacks run outside the informer's lock */
}

static recorder_t *recorder_new(void)
{
    recorder_t *rec = lo_calloc(1, sizeof(*rec));
    pthread_mutex_init(&rec->lock, NULL);
    pthread_cond_init(&rec->cond, NULL);
    rec->events = json_array();
    return rec;
}

static void recorder_free(recorder_t *rec)
{
    json_decref(rec->events);
    json_decref(rec->phantom);
    pthread_mutex_destroy(&rec->lock);
    pthread_cond_destroy(&rec->cond);
    free(rec);
}

/*
 * The end of a test's informer: asked to stop now, joined and freed (with
 * its recorder) when the group ends. A watch takes up to a second to see
 * the stop; this way the tests do not wait for each one in turn.
 */
static void retire(informer_t *inf, recorder_t *rec)
{
    informer_signal_stop(inf);
    if (sx.n_retired == sizeof(sx.retired) / sizeof(sx.retired[0]))
        fail_msg("too many informers: make sx.retired larger");
    sx.retired[sx.n_retired].inf = inf;
    sx.retired[sx.n_retired++].rec = rec;
}

/* Waits up to timeout_ms for n events; how many came. */
static size_t wait_events(recorder_t *rec, size_t n, long timeout_ms)
{
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += timeout_ms / 1000;
    until.tv_nsec += (timeout_ms % 1000) * 1000000L;
    if (until.tv_nsec >= 1000000000L)
        until.tv_sec++, until.tv_nsec -= 1000000000L;
    pthread_mutex_lock(&rec->lock);
    while (json_array_size(rec->events) < n && pthread_cond_timedwait(&rec->cond, &rec->lock, &until) == 0)
        ;
    size_t got = json_array_size(rec->events);
    pthread_mutex_unlock(&rec->lock);
    return got;
}

static size_t event_count(recorder_t *rec)
{
    pthread_mutex_lock(&rec->lock);
    size_t n = json_array_size(rec->events);
    pthread_mutex_unlock(&rec->lock);
    return n;
}

/* Event i (new reference; an event is never changed once recorded). */
static json_t *event_at(recorder_t *rec, size_t i)
{
    pthread_mutex_lock(&rec->lock);
    json_t *e = json_incref(json_array_get(rec->events, i));
    pthread_mutex_unlock(&rec->lock);
    if (e == NULL)
        fail_msg("no event %zu", i);
    return e;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Events from..end as "TYPE name, ...", sorted when sorted is set (caller frees). */
static char *events_text(recorder_t *rec, size_t from, int sorted)
{
    pthread_mutex_lock(&rec->lock);
    size_t n = json_array_size(rec->events), k = 0;
    char **items = lo_calloc(n + 1, sizeof(*items));
    for (size_t i = from; i < n; i++) {
        json_t *e = json_array_get(rec->events, i);
        items[k++] = lo_sprintf("%s %s", str_at(e, "type"), str_at(e, "name"));
    }
    pthread_mutex_unlock(&rec->lock);
    if (sorted)
        qsort(items, k, sizeof(*items), cmp_str);
    lo_buf_t out = {0};
    lo_buf_put(&out, "", 0);
    for (size_t i = 0; i < k; i++) {
        lo_buf_printf(&out, "%s%s", i ? ", " : "", items[i]);
        free(items[i]);
    }
    free(items);
    return out.data;
}

static void assert_events(recorder_t *rec, size_t from, int sorted, const char *want)
{
    char *got = events_text(rec, from, sorted);
    if (strcmp(got, want) != 0)
        fail_msg("events: got [%s], want [%s]", got, want);
    free(got);
}

/* An informer of path (selector and transform may be NULL) into rec, started. */
static informer_t *start_informer(recorder_t *rec, const char *path, const char *selector,
                                  json_t *(*transform)(const json_t *), long watch_timeout_ms)
{
    informer_options_t o = {.path = path, .label_selector = selector, .transform = transform,
                            .on_event = on_event, .ctx = rec, .watch_timeout_ms = watch_timeout_ms,
                            .backoff_max_ms = 200};
    informer_t *inf = informer_new(sx.kube, &o);
    rec->inf = inf;
    lo_err_t err = {0};
    if (informer_start(inf, &err) != 0)
        fail_msg("informer_start: %s", err.message);
    return inf;
}

static void assert_synced(informer_t *inf)
{
    if (!informer_wait_synced(inf, 10000))
        fail_msg("the informer did not sync");
}

/* The sorted names of informer_list(ns, key, value), as "a b c" (caller frees). */
static char *listed(informer_t *inf, const char *ns, const char *key, const char *value)
{
    json_t *list = informer_list(inf, ns, key, value);
    size_t n = json_array_size(list), i;
    char **names = lo_calloc(n + 1, sizeof(*names));
    json_t *o;
    json_array_foreach(list, i, o)
        names[i] = lo_sprintf("%s/%s", meta_str(o, "namespace"), meta_str(o, "name"));
    qsort(names, n, sizeof(*names), cmp_str);
    lo_buf_t out = {0};
    lo_buf_put(&out, "", 0);
    for (i = 0; i < n; i++) {
        lo_buf_printf(&out, "%s%s", i ? " " : "", names[i]);
        free(names[i]);
    }
    free(names);
    json_decref(list);
    return out.data;
}

static void assert_listed(informer_t *inf, const char *ns, const char *key, const char *value, const char *want)
{
    char *got = listed(inf, ns, key, value);
    if (strcmp(got, want) != 0)
        fail_msg("informer_list(%s, %s=%s): got [%s], want [%s]", ns ? ns : "NULL", key ? key : "NULL",
                 value ? value : "NULL", got, want);
    free(got);
}

/* The cached ns/name's data.v, or NULL when it is not cached. */
static char *cached_value(informer_t *inf, const char *ns, const char *name)
{
    json_t *o = informer_get(inf, ns, name);
    char *v = o ? lo_strdup(str_at(json_object_get(o, "data"), "v")) : NULL;
    json_decref(o);
    return v;
}

static void assert_cached(informer_t *inf, const char *ns, const char *name, const char *value)
{
    char *v = cached_value(inf, ns, name);
    if (value == NULL && v != NULL)
        fail_msg("%s/%s is cached (v=%s), should not be", ns, name, v);
    if (value && (v == NULL || strcmp(v, value) != 0))
        fail_msg("%s/%s: cached v=%s, want %s", ns, name, v ? v : "(not cached)", value);
    free(v);
}

/* ---- tests ---- */

static void test_first_list_fills_the_cache(void **state)
{
    (void)state;
    const char *ns = "i-first";
    make_namespace(ns);
    seed(json_pack("[o,o,o]", configmap(ns, "a", NULL, "1"), configmap(ns, "b", NULL, "2"),
                   configmap(ns, "c", NULL, "3")));
    char *path = cms_of(ns);
    recorder_t *rec = recorder_new();
    informer_options_t o = {.path = path, .on_event = on_event, .ctx = rec};
    informer_t *idle = informer_new(sx.kube, &o);
    assert_int_equal(informer_synced(idle), 0);
    assert_int_equal(informer_wait_synced(idle, 100), 0); /* never started: never synced */
    informer_free(idle);

    informer_t *inf = start_informer(rec, path, NULL, NULL, 0);
    assert_int_equal(informer_wait_synced(inf, 10000), 1);
    assert_int_equal(informer_synced(inf), 1);
    assert_listed(inf, NULL, NULL, NULL, "i-first/a i-first/b i-first/c");
    assert_cached(inf, ns, "b", "2");
    assert_cached(inf, ns, "zz", NULL);
    assert_cached(inf, "other", "a", NULL);
    /* objects from a list look like those of a watch: kind and apiVersion too */
    json_t *a = informer_get(inf, ns, "a");
    assert_string_equal(str_at(a, "kind"), "ConfigMap");
    assert_string_equal(str_at(a, "apiVersion"), "v1");
    json_decref(a);
    /* the first list is passed on as ADDED events */
    assert_int_equal(wait_events(rec, 3, 5000), 3);
    assert_events(rec, 0, 0, "ADDED a, ADDED b, ADDED c");
    json_t *e = event_at(rec, 0);
    assert_true(json_is_null(json_object_get(e, "old")));
    json_decref(e);
    /* in pages, with the informer's limit */
    assert_int_equal(requests_to(path, "limit=500", "watch=1"), 1);
    retire(inf, rec);
    free(path);
}

static void test_changes_arrive_as_events_in_order(void **state)
{
    (void)state;
    const char *ns = "i-events";
    make_namespace(ns);
    char *path = cms_of(ns);
    recorder_t *rec = recorder_new();
    informer_t *inf = start_informer(rec, path, NULL, NULL, 0);
    assert_synced(inf);
    assert_listed(inf, NULL, NULL, NULL, "");
    char *rv_a1 = create_cm(ns, "a", NULL, "1");
    free(create_cm(ns, "b", NULL, "2"));
    char *rv_a2 = patch_cm(ns, "a", json_pack("{s:{s:s}}", "data", "v", "1b"));
    delete_cm(ns, "b");
    assert_int_equal(wait_events(rec, 4, 5000), 4);
    assert_events(rec, 0, 0, "ADDED a, ADDED b, MODIFIED a, DELETED b");
    json_t *mod = event_at(rec, 2);
    assert_string_equal(meta_str(json_object_get(mod, "obj"), "resourceVersion"), rv_a2);
    assert_string_equal(meta_str(json_object_get(mod, "old"), "resourceVersion"), rv_a1);
    assert_string_equal(str_at(json_object_get(json_object_get(mod, "old"), "data"), "v"), "1");
    json_decref(mod);
    json_t *del = event_at(rec, 3);
    assert_string_equal(str_at(json_object_get(json_object_get(del, "obj"), "data"), "v"), "2");
    json_decref(del);
    assert_cached(inf, ns, "a", "1b");
    assert_cached(inf, ns, "b", NULL);
    assert_listed(inf, ns, NULL, NULL, "i-events/a");
    json_t *a = informer_get(inf, ns, "a");
    assert_string_equal(meta_str(a, "resourceVersion"), rv_a2);
    json_decref(a);
    retire(inf, rec);
    free(rv_a1), free(rv_a2), free(path);
}

static void test_label_selector_keeps_others_out(void **state)
{
    (void)state;
    const char *ns = "i-sel";
    make_namespace(ns);
    seed(json_pack("[o,o]", configmap(ns, "in1", label("app", "in"), "1"),
                   configmap(ns, "out1", label("app", "out"), "2")));
    char *path = cms_of(ns);
    recorder_t *rec = recorder_new();
    /* spaces, parentheses and a comma: the informer escapes them for the query */
    informer_t *inf = start_informer(rec, path, "app in (in, also)", NULL, 0);
    assert_synced(inf);
    assert_listed(inf, NULL, NULL, NULL, "i-sel/in1");
    free(create_cm(ns, "out2", label("app", "out"), "3"));
    free(create_cm(ns, "in2", label("app", "in"), "4"));
    free(patch_cm(ns, "out1", json_pack("{s:{s:{s:s}}}", "metadata", "labels", "app", "also"))); /* comes in */
    free(patch_cm(ns, "in1", json_pack("{s:{s:{s:s}}}", "metadata", "labels", "app", "out")));   /* leaves */
    free(patch_cm(ns, "out2", json_pack("{s:{s:s}}", "data", "v", "3b")));                       /* unseen */
    free(create_cm(ns, "in3", label("app", "in"), "5")); /* the last: nothing unseen comes after it */
    assert_int_equal(wait_events(rec, 5, 5000), 5);
    assert_events(rec, 0, 0, "ADDED in1, ADDED in2, ADDED out1, DELETED in1, ADDED in3");
    assert_listed(inf, NULL, NULL, NULL, "i-sel/in2 i-sel/in3 i-sel/out1");
    assert_cached(inf, ns, "out2", NULL);
    assert_cached(inf, ns, "in1", NULL);
    retire(inf, rec);
    free(path);
}

/* What a Secret informer keeps: name, namespace, version, and the data's key names only. */
static json_t *key_names(const json_t *obj)
{
    const json_t *md = json_object_get(obj, "metadata");
    json_t *keys = json_array();
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)json_object_get(obj, "data"), k, v)
        json_array_append_new(keys, json_string(k));
    return json_pack("{s:{s:s,s:s,s:s},s:o}", "metadata", "name", str_at(md, "name"), "namespace",
                     str_at(md, "namespace"), "resourceVersion", str_at(md, "resourceVersion"), "keys", keys);
}

static void assert_kept_form(const json_t *obj, const char *keys)
{
    assert_non_null(obj);
    assert_null(json_object_get(obj, "data"));
    char *got = json_dumps(json_object_get(obj, "keys"), JSON_COMPACT);
    assert_string_equal(got, keys);
    free(got);
}

static void test_transform_is_kept_and_passed_on(void **state)
{
    (void)state;
    const char *ns = "i-xform";
    make_namespace(ns);
    json_t *s1 = configmap(ns, "s1", NULL, "secret");
    json_object_set_new(json_object_get(s1, "data"), "k2", json_string("x"));
    seed(json_pack("[o]", s1));
    char *path = cms_of(ns);
    recorder_t *rec = recorder_new();
    informer_t *inf = start_informer(rec, path, NULL, key_names, 0);
    assert_synced(inf);
    json_t *got = informer_get(inf, ns, "s1");
    assert_kept_form(got, "[\"v\",\"k2\"]");
    json_decref(got);
    free(patch_cm(ns, "s1", json_pack("{s:{s:s}}", "data", "k3", "y")));
    free(create_cm(ns, "s2", NULL, "other"));
    delete_cm(ns, "s2");
    assert_int_equal(wait_events(rec, 4, 5000), 4);
    assert_events(rec, 0, 0, "ADDED s1, MODIFIED s1, ADDED s2, DELETED s2");
    json_t *e = event_at(rec, 0);
    assert_kept_form(json_object_get(e, "obj"), "[\"v\",\"k2\"]");
    json_decref(e);
    e = event_at(rec, 1);
    assert_kept_form(json_object_get(e, "obj"), "[\"v\",\"k2\",\"k3\"]");
    assert_kept_form(json_object_get(e, "old"), "[\"v\",\"k2\"]");
    json_decref(e);
    e = event_at(rec, 3);
    assert_kept_form(json_object_get(e, "obj"), "[\"v\"]");
    json_decref(e);
    got = informer_get(inf, ns, "s1");
    assert_kept_form(got, "[\"v\",\"k2\",\"k3\"]");
    json_decref(got);
    /* what is upserted is transformed too */
    json_t *mine = configmap(ns, "s1", NULL, "mine");
    json_object_set_new(json_object_get(mine, "metadata"), "resourceVersion", json_string("99999999"));
    informer_upsert(inf, mine);
    json_decref(mine);
    got = informer_get(inf, ns, "s1");
    assert_kept_form(got, "[\"v\"]");
    assert_string_equal(meta_str(got, "resourceVersion"), "99999999");
    json_decref(got);
    retire(inf, rec);
    free(path);
}

/* n configmaps p-0000... of ns, seeded in one request. */
static void seed_many(const char *ns, int n)
{
    json_t *objs = json_array();
    for (int i = 0; i < n; i++) {
        char name[16], value[16];
        snprintf(name, sizeof(name), "p-%04d", i);
        snprintf(value, sizeof(value), "%d", i);
        json_array_append_new(objs, configmap(ns, name, NULL, value));
    }
    seed(objs);
}

static void test_more_than_a_page(void **state)
{
    (void)state;
    const char *ns = "i-pages";
    const int n = 2 * PAGE + 203;
    make_namespace(ns);
    seed_many(ns, n);
    char *path = cms_of(ns);
    recorder_t *rec = recorder_new();
    informer_t *inf = start_informer(rec, path, NULL, NULL, 0);
    assert_synced(inf);
    json_t *all = informer_list(inf, ns, NULL, NULL);
    assert_int_equal(json_array_size(all), n);
    json_decref(all);
    assert_cached(inf, ns, "p-0000", "0");
    assert_cached(inf, ns, "p-0500", "500");
    assert_cached(inf, ns, "p-1202", "1202");
    assert_int_equal(wait_events(rec, (size_t)n, 5000), n);
    /* three pages: the first, then two with the continue token */
    assert_int_equal(requests_to(path, "limit=500", "watch=1"), 3);
    assert_int_equal(requests_to(path, "continue=", "watch=1"), 2);
    retire(inf, rec);
    free(path);
}

static void test_list_expired_between_pages(void **state)
{
    (void)state;
    const char *ns = "i-expired";
    const int n = PAGE + 10;
    make_namespace(ns);
    seed_many(ns, n);
    char *path = cms_of(ns);
    /* the pages come slowly: the history is compacted while the second is on its way */
    add_fault(json_pack("{s:s,s:s,s:s,s:i,s:f}", "action", "delay", "path", path, "method", "GET", "count", 2,
                        "delay", 0.35));
    recorder_t *rec = recorder_new();
    informer_t *inf = start_informer(rec, path, NULL, NULL, 0);
    wait_requests(path, "continue=", NULL, 1);
    free(create_cm(ns, "late", NULL, "new"));
    json_decref(ctl("POST", "/standin/compact", NULL));
    /* the second page answers 410 Expired: the informer lists again, and the new object is there */
    assert_synced(inf);
    assert_cached(inf, ns, "late", "new");
    json_t *all = informer_list(inf, ns, NULL, NULL);
    assert_int_equal(json_array_size(all), n + 1);
    json_decref(all);
    assert_int_equal(wait_events(rec, (size_t)n + 1, 5000), n + 1);
    for (size_t i = 0; i < (size_t)n + 1; i++) {
        json_t *e = event_at(rec, i);
        assert_string_equal(str_at(e, "type"), "ADDED");
        json_decref(e);
    }
    assert_true(requests_to(path, "limit=500", "continue=") >= 2); /* a first page again */
    retire(inf, rec);
    free(path);
}

static void test_stop_between_pages_leaves_it_unsynced(void **state)
{
    (void)state;
    const char *ns = "i-halfway";
    make_namespace(ns);
    seed_many(ns, 2 * PAGE + 1);
    char *path = cms_of(ns);
    add_fault(json_pack("{s:s,s:s,s:s,s:i,s:f}", "action", "delay", "path", path, "method", "GET", "count", 3,
                        "delay", 0.35));
    recorder_t *rec = recorder_new();
    informer_t *inf = start_informer(rec, path, NULL, NULL, 0);
    wait_requests(path, "continue=", NULL, 1); /* the second of three pages is on its way */
    informer_stop(inf);
    /* a list cut short is no list: nothing cached, nothing passed on */
    assert_int_equal(informer_synced(inf), 0);
    assert_listed(inf, NULL, NULL, NULL, "");
    assert_int_equal(event_count(rec), 0);
    retire(inf, rec);
    free(path);
}

/* The count of the first fault the stand-in still holds, or 0. */
static long fault_left(void)
{
    json_t *f = ctl("GET", "/standin/faults", NULL);
    long n = (long)json_integer_value(json_object_get(json_array_get(json_object_get(f, "faults"), 0), "count"));
    json_decref(f);
    return n;
}

static void test_relist_after_the_history_is_gone(void **state)
{
    (void)state;
    const char *ns = "i-relist";
    make_namespace(ns);
    seed(json_pack("[o,o,o]", configmap(ns, "a", NULL, "1"), configmap(ns, "b", NULL, "2"),
                   configmap(ns, "c", NULL, "3")));
    char *path = cms_of(ns);
    recorder_t *rec = recorder_new();
    /* watches of 1 s, so that one ends soon after the fault is in place */
    informer_t *inf = start_informer(rec, path, NULL, NULL, 1000);
    assert_synced(inf);
    free(create_cm(ns, "e", NULL, "5")); /* cached from a watch event, unchanged since */
    assert_int_equal(wait_events(rec, 4, 5000), 4);

    /* the watch goes down and stays down: every GET of the collection fails */
    const long many = 100000;
    add_fault(json_pack("{s:s,s:s,s:s,s:i}", "action", "500", "path", path, "method", "GET", "count", many));
    int64_t deadline = lo_now_ms() + 5000;
    while (fault_left() == many) {
        if (lo_now_ms() > deadline)
            fail_msg("the informer did not come back for a watch");
        usleep(20 * 1000);
    }
    delete_cm(ns, "a");
    free(patch_cm(ns, "b", json_pack("{s:{s:s}}", "data", "v", "2b")));
    free(create_cm(ns, "d", NULL, "4"));
    json_decref(ctl("POST", "/standin/compact", NULL)); /* the informer's resourceVersion is history */
    json_decref(ctl("DELETE", "/standin/faults", NULL));

    /* 410 on the watch, a new list, and what changed meanwhile as events */
    assert_int_equal(wait_events(rec, 7, 5000), 7);
    assert_events(rec, 4, 1, "ADDED d, DELETED a, MODIFIED b");
    usleep(200 * 1000);
    assert_int_equal(event_count(rec), 7);
    json_t *mod = NULL;
    for (size_t i = 4; i < 7 && mod == NULL; i++) {
        json_t *e = event_at(rec, i);
        if (strcmp(str_at(e, "type"), "MODIFIED") == 0)
            mod = json_incref(e);
        json_decref(e);
    }
    assert_string_equal(str_at(json_object_get(json_object_get(mod, "old"), "data"), "v"), "2");
    assert_string_equal(str_at(json_object_get(json_object_get(mod, "obj"), "data"), "v"), "2b");
    json_decref(mod);
    assert_listed(inf, NULL, NULL, NULL, "i-relist/b i-relist/c i-relist/d i-relist/e");
    assert_cached(inf, ns, "b", "2b");
    /* and it watches again: later changes come as events */
    free(patch_cm(ns, "c", json_pack("{s:{s:s}}", "data", "v", "3b")));
    assert_int_equal(wait_events(rec, 8, 5000), 8);
    assert_events(rec, 7, 0, "MODIFIED c");
    retire(inf, rec);
    free(path);
}

static json_t *with_rv(json_t *obj, const char *rv)
{
    json_object_set_new(json_object_get(obj, "metadata"), "resourceVersion", json_string(rv));
    return obj;
}

static void test_upsert_takes_newer_versions_only(void **state)
{
    (void)state;
    const char *ns = "i-upsert";
    make_namespace(ns);
    char *path = cms_of(ns);
    recorder_t *rec = recorder_new();
    informer_t *inf = start_informer(rec, path, NULL, NULL, 0);
    assert_synced(inf);
    char *rv = create_cm(ns, "a", NULL, "server");
    assert_int_equal(wait_events(rec, 1, 5000), 1);
    assert_cached(inf, ns, "a", "server");

    json_t *older = with_rv(configmap(ns, "a", NULL, "older"), "2");
    informer_upsert(inf, older);
    json_decref(older);
    assert_cached(inf, ns, "a", "server");

    char newer_rv[32];
    snprintf(newer_rv, sizeof(newer_rv), "%lld", atoll(rv) + 1000);
    json_t *newer = with_rv(configmap(ns, "a", NULL, "newer"), newer_rv);
    informer_upsert(inf, newer);
    json_decref(newer);
    assert_cached(inf, ns, "a", "newer");
    json_t *got = informer_get(inf, ns, "a");
    assert_string_equal(meta_str(got, "resourceVersion"), newer_rv);
    json_decref(got);

    json_t *unseen = with_rv(configmap(ns, "mine", NULL, "mine"), "3");
    informer_upsert(inf, unseen);
    json_decref(unseen);
    assert_cached(inf, ns, "mine", "mine");
    assert_int_equal(event_count(rec), 1); /* upserts are no events */
    retire(inf, rec);
    free(rv), free(path);
}

static void test_upsert_from_a_callback_is_no_event(void **state)
{
    (void)state;
    const char *ns = "i-cb";
    make_namespace(ns);
    seed(json_pack("[o]", configmap(ns, "trigger", NULL, "1")));
    char *path = cms_of(ns);
    recorder_t *rec = recorder_new();
    /* while the first list is passed on, the callback puts an object of its own in the cache */
    rec->upsert_on = "trigger";
    rec->phantom = with_rv(configmap(ns, "phantom", NULL, "mine"), "3");
    informer_t *inf = start_informer(rec, path, NULL, NULL, 0);
    assert_synced(inf);
    free(create_cm(ns, "zz-last", NULL, "2")); /* its event comes after everything of the list */
    assert_int_equal(wait_events(rec, 2, 5000), 2);
    assert_events(rec, 0, 0, "ADDED trigger, ADDED zz-last");
    assert_cached(inf, ns, "phantom", "mine");
    retire(inf, rec);
    free(path);
}

static void test_stop_while_a_watch_is_open(void **state)
{
    (void)state;
    const char *ns = "i-stop";
    make_namespace(ns);
    char *path = cms_of(ns);
    recorder_t *rec = recorder_new();
    informer_t *inf = start_informer(rec, path, NULL, NULL, 0); /* watches of 5 minutes */
    assert_synced(inf);
    wait_requests(path, "watch=1", NULL, 1);
    usleep(100 * 1000); /* into the stream */
    int64_t t0 = lo_now_ms();
    informer_stop(inf);
    int64_t took = lo_now_ms() - t0;
    if (took > 2000)
        fail_msg("informer_stop took %lld ms", (long long)took);
    assert_int_equal(informer_wait_synced(inf, 1000), 1);
    retire(inf, rec);
    free(path);
}

static void test_list_by_namespace_and_label(void **state)
{
    (void)state;
    make_namespace("i-list-a");
    make_namespace("i-list-b");
    json_t *x = label("lt", "1"), *y = label("lt", "1"), *bx = label("lt", "1");
    json_object_set_new(x, "role", json_string("web"));
    json_object_set_new(y, "role", json_string("db"));
    json_object_set_new(bx, "role", json_string("web"));
    seed(json_pack("[o,o,o,o,o]", configmap("i-list-a", "x", x, "ax"), configmap("i-list-a", "y", y, "ay"),
                   configmap("i-list-b", "x", bx, "bx"), configmap("i-list-b", "z", label("lt", "1"), "bz"),
                   configmap("i-list-a", "other", label("role", "web"), "no")));
    recorder_t *rec = recorder_new();
    /* every namespace, kept to this test's objects by the selector */
    informer_t *inf = start_informer(rec, "/api/v1/configmaps", "lt=1", NULL, 0);
    assert_synced(inf);
    assert_listed(inf, NULL, NULL, NULL, "i-list-a/x i-list-a/y i-list-b/x i-list-b/z");
    assert_listed(inf, "i-list-a", NULL, NULL, "i-list-a/x i-list-a/y");
    assert_listed(inf, NULL, "role", "web", "i-list-a/x i-list-b/x");
    assert_listed(inf, "i-list-b", "role", "web", "i-list-b/x");
    assert_listed(inf, "i-list-b", "role", "db", "");
    assert_listed(inf, "i-list-c", NULL, NULL, "");
    assert_cached(inf, "i-list-a", "x", "ax");
    assert_cached(inf, "i-list-b", "x", "bx");
    retire(inf, rec);
}

static void test_cluster_scoped(void **state)
{
    (void)state;
    recorder_t *rec = recorder_new();
    informer_t *inf = start_informer(rec, "/api/v1/namespaces", NULL, NULL, 0);
    assert_synced(inf);
    json_t *d = informer_get(inf, NULL, "default"), *k = informer_get(inf, "", "kube-system");
    assert_non_null(d);
    assert_non_null(k);
    assert_string_equal(str_at(d, "kind"), "Namespace");
    json_decref(d);
    json_decref(k);
    char *all = listed(inf, NULL, NULL, NULL);
    assert_non_null(strstr(all, "(none)/kube-public"));
    free(all);
    retire(inf, rec);
}

#define TEST(f) cmocka_unit_test_setup(f, no_faults)

int main(void)
{
    const struct CMUnitTest tests[] = {
        TEST(test_first_list_fills_the_cache),
        TEST(test_changes_arrive_as_events_in_order),
        TEST(test_label_selector_keeps_others_out),
        TEST(test_transform_is_kept_and_passed_on),
        TEST(test_more_than_a_page),
        TEST(test_list_expired_between_pages),
        TEST(test_stop_between_pages_leaves_it_unsynced),
        TEST(test_relist_after_the_history_is_gone),
        TEST(test_upsert_takes_newer_versions_only),
        TEST(test_upsert_from_a_callback_is_no_event),
        TEST(test_stop_while_a_watch_is_open),
        TEST(test_list_by_namespace_and_label),
        TEST(test_cluster_scoped),
    };
    return cmocka_run_group_tests(tests, start_all, stop_all);
}
