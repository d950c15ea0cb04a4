/*
 * test_events.c - Events about langop objects (langop/reconcile/events.h)
 * recorded in the kube-apiserver stand-in, tests/standin/kube_standin.py,
 * run as a process for the group (as test_kubeclient runs it).
 *
 * Every test records about objects of its own names, then reads back what
 * the stand-in holds through the API, with the field selector kubectl
 * describe uses (involvedObject.name, ...), and what reached it from
 * /standin/calls. Time is a clock of the test's (event_recorder_options_t
 * now_ns), moved by hand: ten minutes pass in no time.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <unistd.h>
#include <cmocka.h>

#include "standin_process.h"

#include "langop/core/text.h"
#include "langop/reconcile/events.h"

#define NS_PER_S INT64_C(1000000000)
#define START_NS (INT64_C(1767323045) * NS_PER_S + 123456789) /* 2026-01-02T03:04:05.123456789Z */
#define START_TEXT "2026-01-02T03:04:05Z"

static struct {
    char dir[64];
    standin_t standin;
    kube_client_t *kube; /* what the recorders write with, and the tests read with */
} sx;

static _Atomic int64_t clock_ns = START_NS;

static int64_t test_now(void *ctx)
{
    (void)ctx;
    return atomic_load(&clock_ns);
}

static void advance(int64_t seconds)
{
    atomic_fetch_add(&clock_ns, seconds * NS_PER_S);
}

/* ---- the stand-in's process (standin_process.h) ---- */

static kube_client_t *client(void)
{
    char *path = lo_sprintf("%s/kubeconfig", sx.dir);
    FILE *f = fopen(path, "w");
    if (f == NULL)
        return NULL;
    fprintf(f, "current-context: t\n"
               "contexts: [{name: t, context: {cluster: c, user: u}}]\n"
               "clusters: [{name: c, cluster: {server: '%s', certificate-authority: ca.crt}}]\n"
               "users: [{name: u, user: {token: t0k}}]\n", sx.standin.url);
    fclose(f);
    lo_err_t err = {0};
    kube_config_t *cfg = kubeconfig_load_file(path, NULL, &err);
    free(path);
    if (cfg == NULL) {
        fprintf(stderr, "kubeconfig: %s\n", err.message);
        return NULL;
    }
    kube_client_options_t opts = {.timeout_ms = 10000, .max_retries = 2, .backoff_base_ms = 10,
                                  .backoff_max_ms = 50};
    return kube_client_new(cfg, &opts, &err);
}

static json_t *ctl(const char *method, const char *path, json_t *body);

static int stop_all(void **state)
{
    (void)state;
    kube_client_free(sx.kube);
    sx.kube = NULL;
    standin_stop(&sx.standin);
    char *cmd = lo_sprintf("rm -rf '%s'", sx.dir);
    int rc = system(cmd);
    free(cmd);
    return rc == 0 ? 0 : -1;
}

static int start_all(void **state)
{
    if (!standin_env_ok())
        return -1;
    snprintf(sx.dir, sizeof(sx.dir), "/tmp/test_events.XXXXXX");
    if (mkdtemp(sx.dir) == NULL)
        return -1;
    if (standin_python_in(STANDIN_PY_PRELUDE "k.make_serving_certs(d)\n", sx.dir) < 0 ||
        standin_start(&sx.standin, sx.dir, "127.0.0.1", NULL) < 0 || (sx.kube = client()) == NULL) {
        stop_all(state);
        return -1;
    }
    json_decref(ctl("POST", "/api/v1/namespaces",
                    json_pack("{s:s,s:s,s:{s:s}}", "apiVersion", "v1", "kind", "Namespace",
                              "metadata", "name", "team-a")));
    return 0;
}

/* Before each test: no faults, counters at zero. */
static int fresh(void **state)
{
    (void)state;
    json_decref(ctl("DELETE", "/standin/faults", NULL));
    json_decref(ctl("DELETE", "/standin/calls", NULL));
    return 0;
}

/* ---- reading back ---- */

/* A request that must succeed; its answer (new reference). body is stolen. */
static json_t *ctl(const char *method, const char *path, json_t *body)
{
    kube_response_t r;
    lo_err_t err = {0};
    if (kube_request(sx.kube, method, path, NULL, body, &r, &err) != KUBE_OK)
        fail_msg("%s %s: %s", method, path, err.message);
    json_decref(body);
    return r.body;
}

static const char *str_at(const json_t *obj, const char *key)
{
    const json_t *v = json_object_get(obj, key);
    return json_is_string(v) ? json_string_value(v) : "(none)";
}

static json_int_t count_of(const json_t *ev)
{
    return json_integer_value(json_object_get(ev, "count"));
}

/* The Events about the object called name in namespace ns (NULL: all), as
 * kubectl describe finds them; extra is more of the field selector. New reference. */
static json_t *events_about(const char *ns, const char *name, const char *extra)
{
    char *path = ns ? lo_sprintf("/api/v1/namespaces/%s/events?fieldSelector=involvedObject.name%%3D%s%s",
                                 ns, name, extra ? extra : "")
                    : lo_sprintf("/api/v1/events?fieldSelector=involvedObject.name%%3D%s%s", name,
                                 extra ? extra : "");
    json_t *list = ctl("GET", path, NULL);
    free(path);
    json_t *items = json_incref(json_object_get(list, "items"));
    json_decref(list);
    assert_true(json_is_array(items));
    return items;
}

/* The one Event about name in ns (new reference); fails unless there is exactly one. */
static json_t *the_event(const char *ns, const char *name)
{
    json_t *items = events_about(ns, name, NULL);
    if (json_array_size(items) != 1)
        fail_msg("%zu events about %s/%s, not 1", json_array_size(items), ns, name);
    json_t *ev = json_incref(json_array_get(items, 0));
    json_decref(items);
    return ev;
}

/* How many METHOD path requests reached the stand-in since fresh(). */
static long calls_of(const char *method, const char *path)
{
    json_t *got = ctl("GET", "/standin/calls", NULL);
    char *key = lo_sprintf("%s %s", method, path);
    long n = (long)json_integer_value(json_object_get(json_object_get(got, "calls"), key));
    free(key);
    json_decref(got);
    return n;
}

/* An involved langop object (new reference); ns NULL for a cluster-scoped one. */
static json_t *object(const char *kind, const char *ns, const char *name)
{
    char *uid = lo_sprintf("uid-%s", name);
    json_t *meta = json_pack("{s:s,s:s,s:s}", "name", name, "uid", uid, "resourceVersion", "42");
    free(uid);
    if (ns)
        json_object_set_new(meta, "namespace", json_string(ns));
    return json_pack("{s:s,s:s,s:o}", "apiVersion", "langop.io/v1alpha1", "kind", kind, "metadata", meta);
}

static event_recorder_t *recorder(int cache_size)
{
    event_recorder_options_t opts = {.now_ns = test_now, .cache_size = cache_size};
    return event_recorder_new(sx.kube, NULL, "langop-apiserver-0", &opts);
}

/* event_record that must give want. */
static void record(event_recorder_t *r, const json_t *o, const char *type, const char *reason,
                   const char *message, int want)
{
    lo_err_t err = {0};
    int rc = event_record(r, o, type, reason, message, &err);
    if (rc != want)
        fail_msg("event_record %s: %d, not %d: %s", reason, rc, want, err.message);
    lo_err_clear(&err);
}

#define EVENTS_OF(ns) "/api/v1/namespaces/" ns "/events"

/* ---- the Event ---- */

static void test_first_event_has_kube_fields(void **state)
{
    (void)state;
    atomic_store(&clock_ns, START_NS);
    event_recorder_t *r = recorder(0);
    json_t *o = object("LanguageAgent", "team-a", "a1");
    record(r, o, "Normal", "RolloutStarted", "rolling out a1", EVENT_RECORDED);

    json_t *ev = the_event("team-a", "a1");
    json_t *meta = json_object_get(ev, "metadata");
    char want_name[64];
    snprintf(want_name, sizeof(want_name), "a1.%" PRIx64, (uint64_t)START_NS);
    assert_int_equal(strlen(want_name), 3 + 16);
    assert_string_equal(str_at(meta, "name"), want_name);
    assert_string_equal(str_at(meta, "namespace"), "team-a");
    json_t *want_ref = json_pack("{s:s,s:s,s:s,s:s,s:s,s:s}", "apiVersion", "langop.io/v1alpha1",
                                 "kind", "LanguageAgent", "name", "a1", "namespace", "team-a",
                                 "uid", "uid-a1", "resourceVersion", "42");
    assert_true(json_equal(json_object_get(ev, "involvedObject"), want_ref));
    json_decref(want_ref);
    assert_string_equal(str_at(ev, "type"), "Normal");
    assert_string_equal(str_at(ev, "reason"), "RolloutStarted");
    assert_string_equal(str_at(ev, "message"), "rolling out a1");
    json_t *want_source = json_pack("{s:s,s:s}", "component", "langop-apiserver", "host", "langop-apiserver-0");
    assert_true(json_equal(json_object_get(ev, "source"), want_source));
    json_decref(want_source);
    assert_string_equal(str_at(ev, "reportingComponent"), "langop-apiserver");
    assert_string_equal(str_at(ev, "reportingInstance"), "langop-apiserver-0");
    assert_string_equal(str_at(ev, "firstTimestamp"), START_TEXT);
    assert_string_equal(str_at(ev, "lastTimestamp"), START_TEXT);
    assert_int_equal(count_of(ev), 1);
    assert_true(json_is_null(json_object_get(ev, "eventTime")));
    assert_int_equal(calls_of("POST", EVENTS_OF("team-a")), 1);
    json_decref(ev);
    json_decref(o);
    event_recorder_free(r);
}

static void test_same_event_again_is_counted(void **state)
{
    (void)state;
    atomic_store(&clock_ns, START_NS);
    event_recorder_t *r = recorder(0);
    json_t *o = object("LanguageAgent", "team-a", "a2");
    record(r, o, "Warning", "RolloutFailed", "image not found", EVENT_RECORDED);
    json_t *first = the_event("team-a", "a2");
    advance(90);
    json_object_set_new(json_object_get(o, "metadata"), "resourceVersion", json_string("43"));
    record(r, o, "Warning", "RolloutFailed", "image not found", EVENT_RECORDED);

    json_t *ev = the_event("team-a", "a2");
    assert_string_equal(str_at(json_object_get(ev, "metadata"), "name"),
                        str_at(json_object_get(first, "metadata"), "name"));
    assert_int_equal(count_of(ev), 2);
    assert_string_equal(str_at(ev, "firstTimestamp"), START_TEXT);
    assert_string_equal(str_at(ev, "lastTimestamp"), "2026-01-02T03:05:35Z");
    assert_string_equal(str_at(ev, "message"), "image not found");
    /* the reference stays the first one's, as client-go's patch leaves it */
    assert_string_equal(str_at(json_object_get(ev, "involvedObject"), "resourceVersion"), "42");
    char *path = lo_sprintf(EVENTS_OF("team-a") "/%s", str_at(json_object_get(ev, "metadata"), "name"));
    assert_int_equal(calls_of("POST", EVENTS_OF("team-a")), 1);
    assert_int_equal(calls_of("PATCH", path), 1);
    free(path);
    json_decref(first);
    json_decref(ev);
    json_decref(o);
    event_recorder_free(r);
}

static void test_another_message_is_another_event(void **state)
{
    (void)state;
    atomic_store(&clock_ns, START_NS);
    event_recorder_t *r = recorder(0);
    json_t *o = object("LanguageTool", "team-a", "t1");
    record(r, o, "Warning", "Failed", "first failure", EVENT_RECORDED);
    record(r, o, "Warning", "Failed", "second failure", EVENT_RECORDED);
    record(r, o, "Normal", "Failed", "first failure", EVENT_RECORDED); /* another type */
    json_t *items = events_about("team-a", "t1", NULL);
    assert_int_equal(json_array_size(items), 3);
    size_t i;
    json_t *ev;
    json_array_foreach(items, i, ev) assert_int_equal(count_of(ev), 1);
    const char *n0 = str_at(json_object_get(json_array_get(items, 0), "metadata"), "name");
    const char *n1 = str_at(json_object_get(json_array_get(items, 1), "metadata"), "name");
    assert_string_not_equal(n0, n1); /* the same clock reading, yet two names */
    json_decref(items);
    json_decref(o);
    event_recorder_free(r);
}

static void test_cluster_scoped_object_in_default(void **state)
{
    (void)state;
    atomic_store(&clock_ns, START_NS);
    event_recorder_t *r = recorder(0);
    json_t *o = object("LanguageCluster", NULL, "c1");
    record(r, o, "Normal", "GatewayReady", "gateway of c1 is ready", EVENT_RECORDED);
    /* what kubectl describe languagecluster c1 asks for */
    json_t *items = events_about(NULL, "c1",
                                 ",involvedObject.namespace%3D,involvedObject.kind%3DLanguageCluster"
                                 ",involvedObject.uid%3Duid-c1");
    assert_int_equal(json_array_size(items), 1);
    json_t *ev = json_array_get(items, 0);
    assert_string_equal(str_at(json_object_get(ev, "metadata"), "namespace"), "default");
    assert_null(json_object_get(json_object_get(ev, "involvedObject"), "namespace"));
    assert_int_equal(calls_of("POST", EVENTS_OF("default")), 1);
    json_decref(items);
    json_decref(o);
    event_recorder_free(r);
}

/* ---- correlation ---- */

static void test_spam_filter_stops_after_the_burst(void **state)
{
    (void)state;
    atomic_store(&clock_ns, START_NS);
    event_recorder_t *r = recorder(0);
    json_t *o = object("LanguageModel", "team-a", "m1");
    char reason[32];
    for (int i = 0; i < 30; i++) {
        snprintf(reason, sizeof(reason), "Reason%d", i);
        record(r, o, "Warning", reason, "a failing loop", i < 25 ? EVENT_RECORDED : EVENT_DROPPED);
    }
    json_t *items = events_about("team-a", "m1", NULL);
    assert_int_equal(json_array_size(items), 25);
    json_decref(items);
    assert_int_equal(calls_of("POST", EVENTS_OF("team-a")), 25);
    /* a repeat takes a token too */
    record(r, o, "Warning", "Reason0", "a failing loop", EVENT_DROPPED);
    /* one token every five minutes */
    advance(299);
    record(r, o, "Warning", "Reason30", "a failing loop", EVENT_DROPPED);
    advance(1);
    record(r, o, "Warning", "Reason31", "a failing loop", EVENT_RECORDED);
    record(r, o, "Warning", "Reason32", "a failing loop", EVENT_DROPPED);
    /* another object has its own bucket */
    json_t *other = object("LanguageModel", "team-a", "m2");
    record(r, other, "Warning", "Reason0", "a failing loop", EVENT_RECORDED);
    items = events_about("team-a", "m1", NULL);
    assert_int_equal(json_array_size(items), 26);
    json_decref(items);
    json_decref(other);
    json_decref(o);
    event_recorder_free(r);
}

static void test_dropped_repeats_still_counted(void **state)
{
    (void)state;
    atomic_store(&clock_ns, START_NS);
    event_recorder_t *r = recorder(0);
    json_t *o = object("LanguageModel", "team-a", "m3");
    char reason[32];
    for (int i = 0; i < 25; i++) { /* the burst, spent */
        snprintf(reason, sizeof(reason), "Reason%d", i);
        record(r, o, "Normal", reason, "x", EVENT_RECORDED);
    }
    record(r, o, "Normal", "Reason0", "x", EVENT_DROPPED);
    record(r, o, "Normal", "Reason0", "x", EVENT_DROPPED);
    advance(300);
    record(r, o, "Normal", "Reason0", "x", EVENT_RECORDED);
    json_t *items = events_about("team-a", "m3", ",reason%3DReason0");
    assert_int_equal(json_array_size(items), 1);
    assert_int_equal(count_of(json_array_get(items, 0)), 4); /* as client-go counts: every occurrence */
    json_decref(items);
    json_decref(o);
    event_recorder_free(r);
}

static void test_similar_events_are_combined(void **state)
{
    (void)state;
    atomic_store(&clock_ns, START_NS);
    event_recorder_t *r = recorder(0);
    json_t *o = object("LanguageAgent", "team-a", "g1");
    char msg[32];
    for (int i = 0; i < 11; i++) {
        snprintf(msg, sizeof(msg), "attempt %d failed", i);
        record(r, o, "Warning", "BackOff", msg, EVENT_RECORDED);
        advance(1);
    }
    json_t *items = events_about("team-a", "g1", NULL);
    assert_int_equal(json_array_size(items), 10); /* 9 as they came, then one combined */
    json_t *combined = NULL;
    size_t i;
    json_t *ev;
    json_array_foreach(items, i, ev) {
        if (strncmp(str_at(ev, "message"), "(combined", 9) == 0) {
            assert_null(combined);
            combined = ev;
        }
    }
    assert_non_null(combined);
    assert_string_equal(str_at(combined, "message"), "(combined from similar events): attempt 10 failed");
    assert_int_equal(count_of(combined), 2);
    assert_string_equal(str_at(combined, "firstTimestamp"), "2026-01-02T03:04:14Z");
    assert_string_equal(str_at(combined, "lastTimestamp"), "2026-01-02T03:04:15Z");
    json_decref(items);
    /* ten quiet minutes later, messages are told apart again */
    advance(601);
    record(r, o, "Warning", "BackOff", "attempt 11 failed", EVENT_RECORDED);
    items = events_about("team-a", "g1", NULL);
    assert_int_equal(json_array_size(items), 11);
    json_decref(items);
    json_decref(o);
    event_recorder_free(r);
}

static void test_event_after_ten_minutes_is_new(void **state)
{
    (void)state;
    atomic_store(&clock_ns, START_NS);
    event_recorder_t *r = recorder(0);
    json_t *o = object("LanguageAgent", "team-a", "w1");
    record(r, o, "Warning", "Unhealthy", "probe failed", EVENT_RECORDED);
    advance(600);
    record(r, o, "Warning", "Unhealthy", "probe failed", EVENT_RECORDED); /* within: counted */
    advance(601);
    record(r, o, "Warning", "Unhealthy", "probe failed", EVENT_RECORDED); /* after: new */
    json_t *items = events_about("team-a", "w1", NULL);
    assert_int_equal(json_array_size(items), 2);
    json_int_t counts = count_of(json_array_get(items, 0)) * 10 + count_of(json_array_get(items, 1));
    assert_true(counts == 21 || counts == 12);
    json_decref(items);
    json_decref(o);
    event_recorder_free(r);
}

static void test_deleted_event_is_created_again(void **state)
{
    (void)state;
    atomic_store(&clock_ns, START_NS);
    event_recorder_t *r = recorder(0);
    json_t *o = object("LanguageAgent", "team-a", "d1");
    record(r, o, "Normal", "Synced", "in sync", EVENT_RECORDED);
    json_t *ev = the_event("team-a", "d1");
    char *path = lo_sprintf(EVENTS_OF("team-a") "/%s", str_at(json_object_get(ev, "metadata"), "name"));
    json_decref(ev);
    json_decref(ctl("DELETE", path, NULL));
    json_t *none = events_about("team-a", "d1", NULL);
    assert_int_equal(json_array_size(none), 0);
    json_decref(none);

    advance(5);
    record(r, o, "Normal", "Synced", "in sync", EVENT_RECORDED);
    ev = the_event("team-a", "d1");
    assert_string_equal(str_at(json_object_get(ev, "metadata"), "name"), strrchr(path, '/') + 1);
    assert_int_equal(count_of(ev), 2);
    assert_string_equal(str_at(ev, "firstTimestamp"), START_TEXT);
    assert_string_equal(str_at(ev, "lastTimestamp"), "2026-01-02T03:04:10Z");
    assert_int_equal(calls_of("PATCH", path), 1);
    assert_int_equal(calls_of("POST", EVENTS_OF("team-a")), 2);
    /* and it is patched from then on */
    record(r, o, "Normal", "Synced", "in sync", EVENT_RECORDED);
    json_decref(ev);
    ev = the_event("team-a", "d1");
    assert_int_equal(count_of(ev), 3);
    assert_int_equal(calls_of("PATCH", path), 2);
    json_decref(ev);
    free(path);
    json_decref(o);
    event_recorder_free(r);
}

static void test_cache_is_bounded(void **state)
{
    (void)state;
    atomic_store(&clock_ns, START_NS);
    event_recorder_t *r = recorder(2);
    json_t *o = object("LanguageAgent", "team-a", "l1");
    record(r, o, "Normal", "Synced", "x1", EVENT_RECORDED);
    record(r, o, "Normal", "Synced", "x2", EVENT_RECORDED);
    record(r, o, "Normal", "Synced", "x3", EVENT_RECORDED); /* x1 forgotten */
    record(r, o, "Normal", "Synced", "x1", EVENT_RECORDED);
    record(r, o, "Normal", "Synced", "x3", EVENT_RECORDED); /* remembered: counted */
    json_t *items = events_about("team-a", "l1", NULL);
    assert_int_equal(json_array_size(items), 4);
    size_t i;
    json_t *ev;
    int x1 = 0, x3_count = 0;
    json_array_foreach(items, i, ev) {
        if (strcmp(str_at(ev, "message"), "x1") == 0)
            x1++, assert_int_equal(count_of(ev), 1);
        if (strcmp(str_at(ev, "message"), "x3") == 0)
            x3_count = (int)count_of(ev);
    }
    assert_int_equal(x1, 2);
    assert_int_equal(x3_count, 2);
    json_decref(items);
    json_decref(o);
    event_recorder_free(r);
}

/* ---- text ---- */

static void test_message_text_is_stored_safely(void **state)
{
    (void)state;
    atomic_store(&clock_ns, START_NS);
    event_recorder_t *r = recorder(0);
    json_t *o = object("LanguageAgent", "team-a", "x1");
    record(r, o, "Warning", "Failed", "say \"hi\"\nthen \\ and \t and \xff and \xc3", EVENT_RECORDED);
    json_t *ev = the_event("team-a", "x1");
    assert_string_equal(str_at(ev, "message"),
                        "say \"hi\"\nthen \\ and \t and \xef\xbf\xbd and \xef\xbf\xbd");
    json_decref(ev);

    /* 1023 bytes, then a character of three: cut before it */
    lo_buf_t long_text = {0};
    for (int i = 0; i < 1023; i++)
        lo_buf_char(&long_text, 'a');
    lo_buf_puts(&long_text, "\xe2\x82\xac\xe2\x82\xac tail");
    json_t *o2 = object("LanguageAgent", "team-a", "x2");
    record(r, o2, "Warning", "Failed", lo_buf_str(&long_text), EVENT_RECORDED);
    ev = the_event("team-a", "x2");
    const char *m = str_at(ev, "message");
    assert_int_equal(strlen(m), 1023);
    assert_true(text_utf8_valid(m, strlen(m)));
    assert_memory_equal(m, long_text.data, 1023);
    json_decref(ev);
    free(long_text.data);

    /* printf-style */
    json_t *o3 = object("LanguageAgent", "team-a", "x3");
    lo_err_t err = {0};
    assert_int_equal(event_recordf(r, o3, "Normal", "Scaled", &err, "replicas %d of %d, \"%s\"", 1, 3, "gw"),
                     EVENT_RECORDED);
    ev = the_event("team-a", "x3");
    assert_string_equal(str_at(ev, "message"), "replicas 1 of 3, \"gw\"");
    json_decref(ev);
    json_decref(o3);
    json_decref(o2);
    json_decref(o);
    event_recorder_free(r);
}

/* ---- failures ---- */

static void test_bad_arguments_send_nothing(void **state)
{
    (void)state;
    event_recorder_t *r = recorder(0);
    json_t *o = object("LanguageAgent", "team-a", "b1");
    json_t *no_kind = json_pack("{s:s,s:{s:s}}", "apiVersion", "langop.io/v1alpha1", "metadata", "name", "b1");
    json_t *slash = object("LanguageAgent", "team-a", "b/1");
    json_t *dotdot = object("LanguageAgent", "..", "b1");
    struct { const json_t *o; const char *type, *reason; } bad[] = {
        {o, "Error", "Failed"}, {o, NULL, "Failed"}, {o, "Normal", ""}, {o, "Normal", NULL},
        {no_kind, "Normal", "Synced"}, {slash, "Normal", "Synced"}, {dotdot, "Normal", "Synced"},
        {NULL, "Normal", "Synced"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        lo_err_t err = {0};
        assert_int_equal(event_record(r, bad[i].o, bad[i].type, bad[i].reason, "m", &err), KUBE_EINVAL);
        assert_string_equal(err.reason, "BadRequest");
        lo_err_clear(&err);
    }
    json_t *got = ctl("GET", "/standin/calls", NULL); /* (the control paths are not counted) */
    assert_int_equal(json_object_size(json_object_get(got, "calls")), 0);
    json_decref(got);
    json_decref(dotdot);
    json_decref(slash);
    json_decref(no_kind);
    json_decref(o);
    event_recorder_free(r);
}

static void test_failed_request_is_returned_then_recovered(void **state)
{
    (void)state;
    atomic_store(&clock_ns, START_NS);
    event_recorder_t *r = recorder(0);
    json_t *o = object("LanguageAgent", "team-a", "f1");
    json_decref(ctl("POST", "/standin/faults",
                    json_pack("{s:s,s:s,s:s}", "action", "500", "method", "POST", "path", EVENTS_OF("team-a"))));
    lo_err_t err = {0};
    assert_int_equal(event_record(r, o, "Warning", "Failed", "boom", &err), KUBE_EHTTP);
    assert_int_equal(err.code, 500);
    lo_err_clear(&err);
    json_t *none = events_about("team-a", "f1", NULL);
    assert_int_equal(json_array_size(none), 0);
    json_decref(none);
    /* the next one patches an Event that is not there (404), so creates it */
    record(r, o, "Warning", "Failed", "boom", EVENT_RECORDED);
    json_t *ev = the_event("team-a", "f1");
    assert_int_equal(count_of(ev), 2);
    json_decref(ev);
    json_decref(o);
    event_recorder_free(r);
}

/* ---- threads ---- */

typedef struct worker {
    event_recorder_t *r;
    const json_t *o;
    int recorded;
} worker_t;

static void *record_many(void *arg)
{
    worker_t *w = arg;
    for (int i = 0; i < 5; i++) {
        lo_err_t err = {0};
        if (event_record(w->r, w->o, "Normal", "Synced", "in sync", &err) == EVENT_RECORDED)
            w->recorded++;
        lo_err_clear(&err);
    }
    return NULL;
}

static void test_many_threads_one_event(void **state)
{
    (void)state;
    atomic_store(&clock_ns, START_NS);
    event_recorder_t *r = recorder(0);
    json_t *o = object("LanguageAgent", "team-a", "p1");
    pthread_t t[4];
    worker_t w[4];
    for (int i = 0; i < 4; i++) {
        w[i] = (worker_t){.r = r, .o = o};
        pthread_create(&t[i], NULL, record_many, &w[i]);
    }
    int recorded = 0;
    for (int i = 0; i < 4; i++) {
        pthread_join(t[i], NULL);
        recorded += w[i].recorded;
    }
    assert_int_equal(recorded, 20);
    json_t *ev = the_event("team-a", "p1");
    assert_int_equal(count_of(ev), 20);
    assert_int_equal(calls_of("POST", EVENTS_OF("team-a")), 1);
    json_decref(ev);
    json_decref(o);
    event_recorder_free(r);
}

#define TEST(f) cmocka_unit_test_setup(f, fresh)

int main(void)
{
    const struct CMUnitTest tests[] = {
        TEST(test_first_event_has_kube_fields),
        TEST(test_same_event_again_is_counted),
        TEST(test_another_message_is_another_event),
        TEST(test_cluster_scoped_object_in_default),
        TEST(test_spam_filter_stops_after_the_burst),
        TEST(test_dropped_repeats_still_counted),
        TEST(test_similar_events_are_combined),
        TEST(test_event_after_ten_minutes_is_new),
        TEST(test_deleted_event_is_created_again),
        TEST(test_cache_is_bounded),
        TEST(test_message_text_is_stored_safely),
        TEST(test_bad_arguments_send_nothing),
        TEST(test_failed_request_is_returned_then_recovered),
        TEST(test_many_threads_one_event),
    };
    return cmocka_run_group_tests(tests, start_all, stop_all);
}
