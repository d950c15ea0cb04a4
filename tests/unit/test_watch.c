/*
 * test_watch.c - watch semantics without the transport (apiserver/watch.c):
 * parsing a watch request, what a watcher sees of each change, the
 * encoded lines, and the replay read from a real store page by page
 * (watch_read_page: the state at one rv, then the event log).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "fixtures.h"
#include "langop/registry/watch.h"
#include "langop/request/reqinfo.h"
#include "langop/schema/schema.h"
#include "langop/storage/store.h"

static const schema_kind_t *models;

static int setup(void **state)
{
    (void)state;
    lo_err_t err = {0};
    if (schema_registry_load(&err) != 0)
        return -1;
    models = schema_kind_by_resource("languagemodels");
    return models ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    schema_registry_free();
    return 0;
}

/* Parses a watch of target; returns 0 or the HTTP code of the error. */
static int parse(const char *target, const char *accept, watch_spec_t *spec)
{
    reqinfo_t info;
    lo_err_t err = {0};
    memset(&info, 0, sizeof(info));
    assert_int_equal(reqinfo_parse("GET", target, strlen(target), &info, &err), 0);
    options_t opts;
    /* as the API does: the options first (they refuse bad values), then the spec */
    int rc = options_decode(&info, accept, &opts, &err) == 0 ? watch_spec_parse(models, &info, &opts, spec, &err) : -1;
    int code = rc == 0 ? 0 : err.code;
    options_free(&opts);
    reqinfo_free(&info);
    lo_err_clear(&err);
    return code;
}

#define NS_PATH "/apis/langop.io/v1alpha1/namespaces/team/languagemodels"

static void test_defaults(void **state)
{
    (void)state;
    for (int i = 0; i < 20; i++) { /* the default length is random: 1 to 2 times the minimum request timeout */
        watch_spec_t spec;
        assert_int_equal(parse(NS_PATH "?watch=true", NULL, &spec), 0);
        assert_true(spec.with_state);            /* no resourceVersion: current objects first */
        assert_false(spec.bookmarks);
        assert_false(spec.selecting);
        assert_int_equal(spec.format, ENCODE_JSON);
        assert_string_equal(spec.ns, "team");
        assert_true(spec.timeout_ms >= WATCH_MIN_REQUEST_TIMEOUT_S * 1000);
        assert_true(spec.timeout_ms < 2 * WATCH_MIN_REQUEST_TIMEOUT_S * 1000);
        watch_spec_free(&spec);
    }
}

static void test_parameters(void **state)
{
    (void)state;
    watch_spec_t spec;
    assert_int_equal(parse(NS_PATH "?watch=1&resourceVersion=42&timeoutSeconds=7&allowWatchBookmarks=true"
                                   "&labelSelector=tier%3Dgold",
                           "application/json;as=Table;v=v1;g=meta.k8s.io,application/json", &spec),
                     0);
    assert_false(spec.with_state);
    assert_int_equal(spec.rv, 42);
    assert_int_equal(spec.timeout_ms, 7000);
    assert_true(spec.bookmarks);
    assert_true(spec.selecting);
    assert_int_equal(spec.format, ENCODE_TABLE);
    watch_spec_free(&spec);

    assert_int_equal(parse(NS_PATH "?watch=1&resourceVersion=0", NULL, &spec), 0);
    assert_true(spec.with_state); /* "0" is "any": the current state, as unset */
    watch_spec_free(&spec);

    /* python3-kubernetes sends watch.stream(..., allow_watch_bookmarks=True) as "True" */
    assert_int_equal(parse(NS_PATH "?watch=True&allowWatchBookmarks=True", NULL, &spec), 0);
    assert_true(spec.bookmarks);
    watch_spec_free(&spec);
}

static void test_bad_parameters(void **state)
{
    (void)state;
    static const char *const bad[] = {
        NS_PATH "?watch=1&resourceVersion=abc",
        NS_PATH "?watch=1&resourceVersion=-1",
        NS_PATH "?watch=1&timeoutSeconds=soon",
        NS_PATH "?watch=1&allowWatchBookmarks=maybe",
        NS_PATH "?watch=1&labelSelector=a+in+(b",
        NS_PATH "?watch=1&fieldSelector=spec.provider%3Dopenai",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        watch_spec_t spec;
        int code = parse(bad[i], NULL, &spec);
        if (code != 400)
            fail_msg("%s: got %d, want 400", bad[i], code);
    }
    /* these convert, but kube's ValidateListOptions refuses them: 422 */
    static const char *const invalid[] = {
        NS_PATH "?watch=1&sendInitialEvents=true",
        NS_PATH "?watch=1&resourceVersion=5&resourceVersionMatch=Exact",
    };
    for (size_t i = 0; i < sizeof(invalid) / sizeof(invalid[0]); i++) {
        watch_spec_t spec;
        int code = parse(invalid[i], NULL, &spec);
        if (code != 422)
            fail_msg("%s: got %d, want 422", invalid[i], code);
    }
    watch_spec_t spec;
    assert_int_equal(parse(NS_PATH "?watch=1", "application/yaml", &spec), 406);
}

static json_t *obj(const char *name, const char *tier, const char *rv)
{
    return json_pack("{s:s, s:s, s:{s:s, s:s, s:s, s:{s:s}}}", "apiVersion", "langop.io/v1alpha1", "kind",
                     "LanguageModel", "metadata", "name", name, "namespace", "team", "resourceVersion", rv,
                     "labels", "tier", tier);
}

/* What a watcher with labelSelector tier=gold sees of each change. */
static void test_selector_transitions(void **state)
{
    (void)state;
    watch_spec_t spec;
    assert_int_equal(parse(NS_PATH "?watch=1&labelSelector=tier%3Dgold", NULL, &spec), 0);
    json_t *gold = obj("m", "gold", "5"), *silver = obj("m", "silver", "6");
    const json_t *shown;
    store_event_t ev = {.rv = 6, .type = STORE_EVENT_MODIFIED, .resource = "languagemodels", .ns = "team",
                        .name = "m", .object = silver, .prev = gold};
    /* leaving the selection: DELETED, with the state the watcher last saw */
    assert_int_equal(watch_event_type(&spec, &ev, &shown), STORE_EVENT_DELETED);
    assert_ptr_equal(shown, gold);
    /* entering it: ADDED */
    ev.object = gold;
    ev.prev = silver;
    assert_int_equal(watch_event_type(&spec, &ev, &shown), STORE_EVENT_ADDED);
    assert_ptr_equal(shown, gold);
    /* staying in: MODIFIED; staying out: nothing */
    ev.prev = gold;
    assert_int_equal(watch_event_type(&spec, &ev, &shown), STORE_EVENT_MODIFIED);
    ev.object = ev.prev = silver;
    assert_int_equal(watch_event_type(&spec, &ev, &shown), 0);
    /* another namespace or another resource: nothing */
    ev.object = gold;
    ev.ns = "other";
    assert_int_equal(watch_event_type(&spec, &ev, &shown), 0);
    ev.ns = "team";
    ev.resource = "languagetools";
    assert_int_equal(watch_event_type(&spec, &ev, &shown), 0);
    json_decref(gold);
    json_decref(silver);
    watch_spec_free(&spec);
}

static void test_item_path_watches_by_name(void **state)
{
    (void)state;
    watch_spec_t spec;
    assert_int_equal(parse(NS_PATH "/gpt?watch=true", NULL, &spec), 0);
    assert_true(spec.selecting);
    json_t *gpt = obj("gpt", "gold", "3"), *other = obj("claude", "gold", "4");
    const json_t *shown;
    store_event_t ev = {.rv = 3, .type = STORE_EVENT_ADDED, .resource = "languagemodels", .ns = "team",
                        .name = "gpt", .object = gpt};
    assert_int_equal(watch_event_type(&spec, &ev, &shown), STORE_EVENT_ADDED);
    ev.object = other;
    assert_int_equal(watch_event_type(&spec, &ev, &shown), 0);
    json_decref(gpt);
    json_decref(other);
    watch_spec_free(&spec);
}

static void test_encoding(void **state)
{
    (void)state;
    watch_spec_t spec;
    assert_int_equal(parse(NS_PATH "?watch=1", NULL, &spec), 0);
    json_t *gpt = obj("gpt", "gold", "3");
    size_t len;
    /* the DELETED of a state seen earlier carries the deletion's resourceVersion */
    char *line = watch_encode(&spec, STORE_EVENT_DELETED, gpt, 9, 0, &len);
    assert_int_equal(line[len - 1], '\n');
    json_t *ev = json_loads(line, 0, NULL);
    assert_string_equal(json_string_value(json_object_get(ev, "type")), "DELETED");
    assert_string_equal(json_string_value(json_object_get(json_object_get(json_object_get(ev, "object"), "metadata"),
                                                          "resourceVersion")),
                        "9");
    json_decref(ev);
    free(line);

    line = watch_encode_bookmark(&spec, 12, &len);
    assert_string_equal(line, "{\"type\":\"BOOKMARK\",\"object\":{\"kind\":\"LanguageModel\",\"apiVersion\":"
                              "\"langop.io/v1alpha1\",\"metadata\":{\"resourceVersion\":\"12\"}}}\n");
    free(line);

    lo_err_t err = {0};
    lo_err_set(&err, 410, "Expired", "too old resource version: 1 (5)");
    line = watch_encode_error(&err, &len);
    ev = json_loads(line, 0, NULL);
    assert_string_equal(json_string_value(json_object_get(ev, "type")), "ERROR");
    assert_int_equal(json_integer_value(json_object_get(json_object_get(ev, "object"), "code")), 410);
    assert_string_equal(json_string_value(json_object_get(json_object_get(ev, "object"), "reason")), "Expired");
    json_decref(ev);
    free(line);
    lo_err_clear(&err);
    json_decref(gpt);
    watch_spec_free(&spec);
}

/* ---- watch_encode_body: the live path's line, straight from the stored bytes ---- */

static void test_encode_body(void **state)
{
    (void)state;
    static const char body[] = "{\"metadata\":{\"name\":\"a\",\"resourceVersion\":\"7\"},\"spec\":{\"x\":1}}";
    static const char want[] = "{\"type\":\"ADDED\",\"object\":"
                               "{\"metadata\":{\"name\":\"a\",\"resourceVersion\":\"7\"},\"spec\":{\"x\":1}}}\n";
    size_t len = 0;
    char *line = watch_encode_body(STORE_EVENT_ADDED, body, strlen(body), &len);
    assert_int_equal(len, strlen(want));
    assert_string_equal(line, want);
    free(line);

    /* only body_len bytes of body are used: the stored bytes need not be NUL-terminated */
    static const char longer[] = "{\"a\":1}GARBAGE";
    line = watch_encode_body(STORE_EVENT_DELETED, longer, 7, &len);
    assert_string_equal(line, "{\"type\":\"DELETED\",\"object\":{\"a\":1}}\n");
    assert_int_equal(len, strlen(line));
    free(line);

    /* the same bytes as watch_encode of the object (a replay page and the live feed agree) */
    watch_spec_t spec;
    assert_int_equal(parse(NS_PATH "?watch=1", NULL, &spec), 0);
    json_t *o = obj("gpt", "gold", "3");
    char *compact = json_dumps(o, JSON_COMPACT);
    size_t elen = 0;
    char *encoded = watch_encode(&spec, STORE_EVENT_MODIFIED, o, 3, 0, &elen);
    line = watch_encode_body(STORE_EVENT_MODIFIED, compact, strlen(compact), &len);
    assert_int_equal(len, elen);
    assert_string_equal(line, encoded);
    free(line);
    free(encoded);
    free(compact);
    json_decref(o);
    watch_spec_free(&spec);
}

/* ---- the replay, read from a store page by page (watch_read_page) ---- */

#define RES "languagemodels"
#define TABLE_ACCEPT "application/json;as=Table;v=v1;g=meta.k8s.io"

static int store_setup(void **state)
{
    fx_store_t *f = fx_store_open("test_watch");
    if (f == NULL)
        return -1;
    *state = f;
    return 0;
}

static int store_teardown(void **state)
{
    fx_store_close(*state);
    return 0;
}

static store_t *store_of(void **state)
{
    return ((fx_store_t *)*state)->s;
}

/* An object ns/name labelled tier=<tier>, with an annotation of pad bytes when pad > 0. No resourceVersion. */
static json_t *model(const char *ns, const char *name, const char *tier, size_t pad)
{
    json_t *o = json_pack("{s:s, s:s, s:{s:s, s:s, s:{s:s}}, s:{s:s}}", "apiVersion", "langop.io/v1alpha1", "kind",
                          "LanguageModel", "metadata", "name", name, "namespace", ns, "labels", "tier", tier, "spec",
                          "provider", "openai");
    if (pad > 0) {
        char *text = lo_malloc(pad + 1);
        memset(text, 'x', pad);
        text[pad] = '\0';
        json_object_set_new(json_object_get(o, "metadata"), "annotations", json_pack("{s:s}", "pad", text));
        free(text);
    }
    return o;
}

/* A PUT of model(ns, name, tier, pad) into resource (the object is the op's: free it with op_free). */
static store_op_t put_op(const char *resource, const char *ns, const char *name, const char *tier, size_t pad)
{
    return (store_op_t){.resource = resource, .ns = ns, .name = lo_strdup(name), .kind = STORE_WRITE_PUT,
                        .object = model(ns, name, tier, pad), .expect_rv = STORE_RV_ANY};
}

static void op_free(store_op_t *op)
{
    store_op_clear(op);
    json_decref(op->object);
    free((char *)op->name);
}

/* Writes ops[0..n-1] (each must succeed and change something); frees them; rvs[i] (may be NULL) gets each rv. */
static void submit(store_t *s, store_op_t *ops, size_t n, int64_t *rvs)
{
    assert_int_equal(store_write(s, ops, n), STORE_OK);
    for (size_t i = 0; i < n; i++) {
        if (ops[i].rc != STORE_OK)
            fail_msg("write %zu (%s): rc %d: %s", i, ops[i].name, ops[i].rc, ops[i].err.message);
        assert_int_not_equal(ops[i].done_kind, STORE_WRITE_NOOP);
        if (rvs)
            rvs[i] = ops[i].rv;
        op_free(&ops[i]);
    }
}

static int64_t put_res(store_t *s, const char *resource, const char *ns, const char *name, const char *tier,
                       size_t pad)
{
    store_op_t op = put_op(resource, ns, name, tier, pad);
    int64_t rv = 0;
    submit(s, &op, 1, &rv);
    assert_true(rv > 0);
    return rv;
}

static int64_t put(store_t *s, const char *ns, const char *name, const char *tier, size_t pad)
{
    return put_res(s, RES, ns, name, tier, pad);
}

static int64_t del(store_t *s, const char *ns, const char *name)
{
    store_op_t op = {.resource = RES, .ns = ns, .name = name, .kind = STORE_WRITE_DELETE, .expect_rv = STORE_RV_ANY};
    assert_int_equal(store_write(s, &op, 1), STORE_OK);
    assert_int_equal(op.done_kind, STORE_WRITE_DELETE);
    int64_t rv = op.rv;
    store_op_clear(&op);
    assert_true(rv > 0);
    return rv;
}

static int64_t current_rv(store_t *s)
{
    int64_t rv = -1;
    assert_int_equal(store_current_rv(s, &rv, NULL), STORE_OK);
    return rv;
}

/* The lines of a page, parsed (a new array of events), after checking its framing: "\n"-terminated JSON lines. */
static json_t *lines_of(const watch_page_t *p)
{
    json_t *events = json_array();
    if (p->len == 0)
        return events;
    assert_non_null(p->data);
    assert_int_equal(strlen(p->data), p->len);
    assert_int_equal(p->data[p->len - 1], '\n');
    for (const char *line = p->data; *line;) {
        const char *end = strchr(line, '\n');
        json_error_t jerr;
        json_t *ev = json_loadb(line, (size_t)(end - line), 0, &jerr);
        if (ev == NULL)
            fail_msg("bad line in page: %s: %.*s", jerr.text, (int)(end - line), line);
        assert_int_equal(json_object_size(ev), 2);
        json_array_append_new(events, ev);
        line = end + 1;
    }
    return events;
}

static const char *ev_type(const json_t *events, size_t i)
{
    const char *t = json_string_value(json_object_get(json_array_get(events, i), "type"));
    assert_non_null(t);
    return t;
}

static const json_t *ev_object(const json_t *events, size_t i)
{
    const json_t *o = json_object_get(json_array_get(events, i), "object");
    assert_non_null(o);
    return o;
}

static const char *ev_meta(const json_t *events, size_t i, const char *field)
{
    return json_string_value(json_object_get(json_object_get(ev_object(events, i), "metadata"), field));
}

static const char *ev_name(const json_t *events, size_t i)
{
    const char *n = ev_meta(events, i, "name");
    assert_non_null(n);
    return n;
}

static int64_t ev_rv(const json_t *events, size_t i)
{
    const char *rv = ev_meta(events, i, "resourceVersion");
    assert_non_null(rv);
    return strtoll(rv, NULL, 10);
}

static const char *ev_tier(const json_t *events, size_t i)
{
    return json_string_value(
        json_object_get(json_object_get(json_object_get(ev_object(events, i), "metadata"), "labels"), "tier"));
}

/* Asserts event i: type, name and resourceVersion. */
static void assert_event(const json_t *events, size_t i, const char *type, const char *name, int64_t rv)
{
    if (strcmp(ev_type(events, i), type) != 0 || strcmp(ev_name(events, i), name) != 0 || ev_rv(events, i) != rv)
        fail_msg("event %zu: got %s %s rv %lld, want %s %s rv %lld", i, ev_type(events, i), ev_name(events, i),
                 (long long)ev_rv(events, i), type, name, (long long)rv);
}

static void parse_at(const char *path, int64_t rv, const char *accept, watch_spec_t *spec)
{
    char *target = lo_sprintf("%s?watch=1&resourceVersion=%lld", path, (long long)rv);
    assert_int_equal(parse(target, accept, spec), 0);
    free(target);
}

/*
 * The state phase: every object at one rv, page after page at that rv;
 * the last page moves the cursor to the event log after that rv.
 */
static void test_state_pages_at_one_rv(void **state)
{
    store_t *s = store_of(state);
    size_t n = WATCH_PAGE_ITEMS + 3;
    store_op_t *ops = lo_calloc(n + 1, sizeof(*ops));
    char name[32];
    for (size_t i = 0; i < n; i++) {
        snprintf(name, sizeof(name), "m%04zu", i);
        ops[i] = put_op(RES, "team", name, "gold", 0);
    }
    ops[n] = put_op(RES, "other", "elsewhere", "gold", 0); /* another namespace: not in this watch */
    int64_t *rvs = lo_calloc(n + 1, sizeof(*rvs));
    submit(s, ops, n + 1, rvs);
    int64_t snapshot = current_rv(s);

    watch_spec_t spec;
    assert_int_equal(parse(NS_PATH "?watch=1", NULL, &spec), 0);
    watch_cursor_t cur;
    watch_cursor_init(&cur, &spec);
    assert_int_equal(cur.phase, WATCH_PHASE_STATE);
    assert_int_equal(cur.at_rv, 0);
    assert_null(cur.after_ns);

    /* page 1: WATCH_PAGE_ITEMS objects, as ADDED with their own rvs; the snapshot's rv is pinned */
    watch_page_t page;
    watch_read_page(s, &spec, &cur, 0, &page);
    assert_false(page.failed);
    assert_false(page.caught_up);
    json_t *events = lines_of(&page);
    assert_int_equal(json_array_size(events), WATCH_PAGE_ITEMS);
    for (size_t i = 0; i < WATCH_PAGE_ITEMS; i++) {
        snprintf(name, sizeof(name), "m%04zu", i);
        assert_event(events, i, "ADDED", name, rvs[i]);
    }
    json_decref(events);
    watch_page_free(&page);
    assert_int_equal(cur.phase, WATCH_PHASE_STATE);
    assert_int_equal(cur.at_rv, snapshot);
    assert_non_null(cur.after_name);

    /* changes after the first page do not show in the later pages of the state */
    int64_t added = put(s, "team", "zz-late", "gold", 0); /* sorts after every m: would be on page 2 */
    int64_t modified = put(s, "team", "m0501", "silver", 0);
    int64_t deleted = del(s, "team", "m0502");
    watch_read_page(s, &spec, &cur, 0, &page);
    assert_false(page.failed);
    events = lines_of(&page);
    assert_int_equal(json_array_size(events), 3);
    assert_event(events, 0, "ADDED", "m0500", rvs[500]);
    assert_event(events, 1, "ADDED", "m0501", rvs[501]);
    assert_string_equal(ev_tier(events, 1), "gold"); /* the state at the snapshot */
    assert_event(events, 2, "ADDED", "m0502", rvs[502]);
    json_decref(events);
    /* the last page of the state: caught up at the snapshot; the log follows after it */
    assert_true(page.caught_up);
    assert_int_equal(page.seen, snapshot);
    watch_page_free(&page);
    assert_int_equal(cur.phase, WATCH_PHASE_EVENTS);
    assert_int_equal(cur.after_rv, snapshot);
    assert_null(cur.after_ns);
    assert_null(cur.after_name);

    /* the log after the snapshot: exactly the changes made since, in order */
    watch_read_page(s, &spec, &cur, 0, &page);
    assert_false(page.failed);
    events = lines_of(&page);
    assert_int_equal(json_array_size(events), 3);
    assert_event(events, 0, "ADDED", "zz-late", added);
    assert_event(events, 1, "MODIFIED", "m0501", modified);
    assert_string_equal(ev_tier(events, 1), "silver");
    assert_event(events, 2, "DELETED", "m0502", deleted);
    json_decref(events);
    assert_true(page.caught_up);
    assert_int_equal(page.seen, deleted);
    assert_int_equal(cur.after_rv, deleted);
    watch_page_free(&page);

    watch_cursor_free(&cur);
    watch_spec_free(&spec);
    free(rvs);
    free(ops);
}

/* A page of the state also ends once it holds about WATCH_PAGE_BYTES. */
static void test_state_pages_bounded_by_bytes(void **state)
{
    store_t *s = store_of(state);
    size_t pad = WATCH_PAGE_BYTES / 3 + 1024; /* three objects pass the bound, two do not */
    int64_t rv[4];
    char name[8];
    for (int i = 0; i < 4; i++) {
        snprintf(name, sizeof(name), "b%d", i);
        rv[i] = put(s, "team", name, "gold", pad);
    }
    watch_spec_t spec;
    assert_int_equal(parse(NS_PATH "?watch=1", NULL, &spec), 0);
    watch_cursor_t cur;
    watch_cursor_init(&cur, &spec);
    watch_page_t page;
    watch_read_page(s, &spec, &cur, 0, &page);
    assert_false(page.failed);
    assert_false(page.caught_up);
    assert_true(page.len >= WATCH_PAGE_BYTES);
    assert_true(page.len < 2 * WATCH_PAGE_BYTES);
    json_t *events = lines_of(&page);
    assert_int_equal(json_array_size(events), 3);
    assert_event(events, 0, "ADDED", "b0", rv[0]);
    assert_event(events, 2, "ADDED", "b2", rv[2]);
    json_decref(events);
    watch_page_free(&page);

    watch_read_page(s, &spec, &cur, 0, &page);
    events = lines_of(&page);
    assert_int_equal(json_array_size(events), 1);
    assert_event(events, 0, "ADDED", "b3", rv[3]);
    assert_true(page.caught_up);
    assert_int_equal(page.seen, rv[3]);
    json_decref(events);
    watch_page_free(&page);
    watch_cursor_free(&cur);
    watch_spec_free(&spec);
}

/*
 * The state of every namespace (a cluster-wide watch), in (namespace, name)
 * order, paged across namespaces; a namespaced watch sees its own only.
 */
static void test_state_namespaces(void **state)
{
    store_t *s = store_of(state);
    /* in list order: aaa/x000..x299, other/b, other/y000..y299, team/a */
    size_t n = 0, total = 300 + 1 + 300 + 1;
    store_op_t *ops = lo_calloc(total, sizeof(*ops));
    char (*names)[8] = lo_calloc(total, sizeof(*names));
    for (size_t i = 0; i < 300; i++) {
        snprintf(names[n], sizeof(names[n]), "x%03zu", i);
        ops[n] = put_op(RES, "aaa", names[n], "gold", 0);
        n++;
    }
    snprintf(names[n], sizeof(names[n]), "b");
    ops[n++] = put_op(RES, "other", "b", "gold", 0);
    for (size_t i = 0; i < 300; i++) {
        snprintf(names[n], sizeof(names[n]), "y%03zu", i);
        ops[n] = put_op(RES, "other", names[n], "gold", 0);
        n++;
    }
    snprintf(names[n], sizeof(names[n]), "a");
    ops[n++] = put_op(RES, "team", "a", "gold", 0);
    assert_int_equal(n, total);
    int64_t *rvs = lo_calloc(total, sizeof(*rvs));
    submit(s, ops, total, rvs);
    int64_t newest = current_rv(s);

    watch_spec_t spec;
    assert_int_equal(parse("/apis/langop.io/v1alpha1/languagemodels?watch=1", NULL, &spec), 0);
    assert_null(spec.ns);
    watch_cursor_t cur;
    watch_cursor_init(&cur, &spec);
    size_t seen = 0;
    for (int pages = 0; seen < total; pages++) {
        assert_true(pages < 2);
        watch_page_t page;
        watch_read_page(s, &spec, &cur, 0, &page);
        assert_false(page.failed);
        json_t *events = lines_of(&page);
        size_t got = json_array_size(events);
        assert_int_equal(got, pages == 0 ? WATCH_PAGE_ITEMS : total - WATCH_PAGE_ITEMS);
        for (size_t i = 0; i < got; i++, seen++) {
            assert_event(events, i, "ADDED", names[seen], rvs[seen]);
            const char *ns = ev_meta(events, i, "namespace");
            assert_string_equal(ns, seen < 300 ? "aaa" : seen < 601 ? "other" : "team");
        }
        assert_int_equal(page.caught_up, pages == 1);
        if (page.caught_up)
            assert_int_equal(page.seen, newest);
        json_decref(events);
        watch_page_free(&page);
    }
    assert_int_equal(cur.phase, WATCH_PHASE_EVENTS);
    watch_cursor_free(&cur);
    watch_spec_free(&spec);

    assert_int_equal(parse(NS_PATH "?watch=1", NULL, &spec), 0);
    watch_cursor_init(&cur, &spec);
    watch_page_t page;
    watch_read_page(s, &spec, &cur, 0, &page);
    json_t *events = lines_of(&page);
    assert_int_equal(json_array_size(events), 1);
    assert_event(events, 0, "ADDED", "a", rvs[total - 1]);
    assert_true(page.caught_up);
    assert_int_equal(page.seen, newest);
    json_decref(events);
    watch_page_free(&page);
    watch_cursor_free(&cur);
    watch_spec_free(&spec);
    free(rvs);
    free(names);
    free(ops);
}

/*
 * The events phase: the changes after an rv, in order, WATCH_PAGE_ITEMS at
 * most per page; a page cut by the limit is not caught up and has seen its
 * last event; the next one continues after it with no gap and no duplicate.
 */
static void test_events_pages(void **state)
{
    store_t *s = store_of(state);
    int64_t start = put(s, "team", "seed", "gold", 0);
    size_t n = WATCH_PAGE_ITEMS + 10, k = 0;
    store_op_t *ops = lo_calloc(n + 16, sizeof(*ops));
    size_t *mine = lo_calloc(n + 16, sizeof(*mine)); /* index of the i-th watched write in ops */
    char name[32];
    for (size_t i = 0; i < n; i++) {
        snprintf(name, sizeof(name), "e%04zu", i);
        mine[i] = k;
        ops[k++] = put_op(RES, "team", name, "gold", 0);
        if (i % 100 == 50) { /* changes the watch does not see, interleaved */
            ops[k++] = put_op(RES, "other", name, "gold", 0);
            ops[k++] = put_op("languagetools", "team", name, "gold", 0);
        }
    }
    ops[k++] = put_op(RES, "other", "last", "gold", 0); /* the newest rv is not the watch's */
    int64_t *rvs = lo_calloc(k, sizeof(*rvs));
    submit(s, ops, k, rvs);
    int64_t newest = current_rv(s);
    assert_int_equal(newest, rvs[k - 1]);

    watch_spec_t spec;
    parse_at(NS_PATH, start, NULL, &spec);
    watch_cursor_t cur;
    watch_cursor_init(&cur, &spec);
    assert_int_equal(cur.phase, WATCH_PHASE_EVENTS);
    assert_int_equal(cur.after_rv, start);

    watch_page_t page;
    watch_read_page(s, &spec, &cur, 0, &page);
    assert_false(page.failed);
    json_t *events = lines_of(&page);
    assert_int_equal(json_array_size(events), WATCH_PAGE_ITEMS);
    for (size_t i = 0; i < WATCH_PAGE_ITEMS; i++) {
        snprintf(name, sizeof(name), "e%04zu", i);
        assert_event(events, i, "ADDED", name, rvs[mine[i]]);
    }
    json_decref(events);
    assert_false(page.caught_up);
    assert_int_equal(page.seen, rvs[mine[WATCH_PAGE_ITEMS - 1]]);
    assert_int_equal(cur.after_rv, page.seen);
    watch_page_free(&page);

    watch_read_page(s, &spec, &cur, 0, &page);
    assert_false(page.failed);
    events = lines_of(&page);
    assert_int_equal(json_array_size(events), n - WATCH_PAGE_ITEMS);
    for (size_t i = WATCH_PAGE_ITEMS; i < n; i++) {
        snprintf(name, sizeof(name), "e%04zu", i);
        assert_event(events, i - WATCH_PAGE_ITEMS, "ADDED", name, rvs[mine[i]]);
    }
    json_decref(events);
    assert_true(page.caught_up);
    assert_int_equal(page.seen, newest); /* the whole log was read: up to its newest rv */
    watch_page_free(&page);

    /* nothing new: an empty page, still caught up */
    watch_read_page(s, &spec, &cur, 0, &page);
    assert_false(page.failed);
    assert_int_equal(page.len, 0);
    assert_true(page.caught_up);
    assert_int_equal(page.seen, newest);
    watch_page_free(&page);

    /* a later change comes on the next page */
    int64_t later = put(s, "team", "e0000", "silver", 0);
    watch_read_page(s, &spec, &cur, 0, &page);
    events = lines_of(&page);
    assert_int_equal(json_array_size(events), 1);
    assert_event(events, 0, "MODIFIED", "e0000", later);
    assert_true(page.caught_up);
    assert_int_equal(page.seen, later);
    json_decref(events);
    watch_page_free(&page);

    watch_cursor_free(&cur);
    watch_spec_free(&spec);
    free(rvs);
    free(mine);
    free(ops);
}

/* A page of events also ends once it holds about WATCH_PAGE_BYTES. */
static void test_events_pages_bounded_by_bytes(void **state)
{
    store_t *s = store_of(state);
    int64_t start = put(s, "team", "seed", "gold", 0);
    size_t pad = WATCH_PAGE_BYTES / 3 + 1024;
    int64_t rv[4];
    char name[8];
    for (int i = 0; i < 4; i++) {
        snprintf(name, sizeof(name), "b%d", i);
        rv[i] = put(s, "team", name, "gold", pad);
    }
    watch_spec_t spec;
    parse_at(NS_PATH, start, NULL, &spec);
    watch_cursor_t cur;
    watch_cursor_init(&cur, &spec);
    watch_page_t page;
    watch_read_page(s, &spec, &cur, 0, &page);
    json_t *events = lines_of(&page);
    assert_int_equal(json_array_size(events), 3);
    assert_event(events, 2, "ADDED", "b2", rv[2]);
    assert_false(page.caught_up);
    assert_int_equal(page.seen, rv[2]);
    json_decref(events);
    watch_page_free(&page);
    watch_read_page(s, &spec, &cur, 0, &page);
    events = lines_of(&page);
    assert_int_equal(json_array_size(events), 1);
    assert_event(events, 0, "ADDED", "b3", rv[3]);
    assert_true(page.caught_up);
    assert_int_equal(page.seen, rv[3]);
    json_decref(events);
    watch_page_free(&page);
    watch_cursor_free(&cur);
    watch_spec_free(&spec);
}

/* With a selector: the state holds the matching objects; an object that leaves is DELETED with its previous state. */
static void test_selector_pages(void **state)
{
    store_t *s = store_of(state);
    int64_t a = put(s, "team", "a", "gold", 0);
    put(s, "team", "b", "silver", 0);
    int64_t c = put(s, "team", "c", "gold", 0);
    watch_spec_t spec;
    assert_int_equal(parse(NS_PATH "?watch=1&labelSelector=tier%3Dgold", NULL, &spec), 0);
    watch_cursor_t cur;
    watch_cursor_init(&cur, &spec);
    watch_page_t page;
    watch_read_page(s, &spec, &cur, 0, &page);
    json_t *events = lines_of(&page);
    assert_int_equal(json_array_size(events), 2);
    assert_event(events, 0, "ADDED", "a", a);
    assert_event(events, 1, "ADDED", "c", c);
    assert_true(page.caught_up);
    assert_int_equal(page.seen, c);
    json_decref(events);
    watch_page_free(&page);

    int64_t a_leaves = put(s, "team", "a", "silver", 0);
    int64_t b_enters = put(s, "team", "b", "gold", 0);
    int64_t c_changes = put(s, "team", "c", "gold", 16);
    del(s, "team", "a"); /* a was out already: nothing */
    int64_t c_goes = del(s, "team", "c");
    put(s, "team", "d", "silver", 0); /* never in: nothing */
    watch_read_page(s, &spec, &cur, 0, &page);
    assert_false(page.failed);
    events = lines_of(&page);
    assert_int_equal(json_array_size(events), 4);
    assert_event(events, 0, "DELETED", "a", a_leaves);
    assert_string_equal(ev_tier(events, 0), "gold"); /* the state the watcher last saw, at the change's rv */
    assert_event(events, 1, "ADDED", "b", b_enters);
    assert_string_equal(ev_tier(events, 1), "gold");
    assert_event(events, 2, "MODIFIED", "c", c_changes);
    assert_event(events, 3, "DELETED", "c", c_goes);
    json_decref(events);
    assert_true(page.caught_up);
    assert_int_equal(page.seen, current_rv(s));
    watch_page_free(&page);
    watch_cursor_free(&cur);
    watch_spec_free(&spec);
}

/* A Table watch: the first line of the replay carries the column definitions, and only when asked. */
static void test_table_pages(void **state)
{
    store_t *s = store_of(state);
    int64_t a = put(s, "team", "a", "gold", 0);
    put(s, "team", "b", "gold", 0);
    watch_spec_t spec;
    assert_int_equal(parse(NS_PATH "?watch=1", TABLE_ACCEPT, &spec), 0);
    assert_int_equal(spec.format, ENCODE_TABLE);
    for (int with_columns = 1; with_columns >= 0; with_columns--) {
        watch_cursor_t cur;
        watch_cursor_init(&cur, &spec);
        watch_page_t page;
        watch_read_page(s, &spec, &cur, with_columns, &page);
        json_t *events = lines_of(&page);
        assert_int_equal(json_array_size(events), 2);
        for (size_t i = 0; i < 2; i++) {
            assert_string_equal(ev_type(events, i), "ADDED");
            assert_string_equal(json_string_value(json_object_get(ev_object(events, i), "kind")), "Table");
            int has = json_object_get(ev_object(events, i), "columnDefinitions") != NULL;
            assert_int_equal(has, with_columns && i == 0);
        }
        assert_int_equal(page.columns_sent, with_columns);
        json_decref(events);
        watch_page_free(&page);
        watch_cursor_free(&cur);
    }
    watch_spec_free(&spec);

    /* from the log, too */
    parse_at(NS_PATH, a, TABLE_ACCEPT, &spec);
    int64_t c = put(s, "team", "c", "gold", 0);
    watch_cursor_t cur;
    watch_cursor_init(&cur, &spec);
    watch_page_t page;
    watch_read_page(s, &spec, &cur, 1, &page);
    json_t *events = lines_of(&page);
    assert_int_equal(json_array_size(events), 2);
    assert_non_null(json_object_get(ev_object(events, 0), "columnDefinitions"));
    assert_null(json_object_get(ev_object(events, 1), "columnDefinitions"));
    assert_true(page.columns_sent);
    assert_true(page.caught_up);
    assert_int_equal(page.seen, c);
    json_decref(events);
    watch_page_free(&page);
    watch_cursor_free(&cur);
    watch_spec_free(&spec);
}

/* Asserts that page is one ERROR line with a Status of code and reason; returns nothing. */
static void assert_error_page(const watch_page_t *page, int code, const char *reason, const char *message_part)
{
    assert_true(page->failed);
    assert_false(page->caught_up);
    json_t *events = lines_of(page);
    assert_int_equal(json_array_size(events), 1);
    assert_string_equal(ev_type(events, 0), "ERROR");
    const json_t *st = ev_object(events, 0);
    assert_string_equal(json_string_value(json_object_get(st, "kind")), "Status");
    assert_string_equal(json_string_value(json_object_get(st, "status")), "Failure");
    assert_int_equal(json_integer_value(json_object_get(st, "code")), code);
    assert_string_equal(json_string_value(json_object_get(st, "reason")), reason);
    const char *message = json_string_value(json_object_get(st, "message"));
    assert_non_null(message);
    if (strstr(message, message_part) == NULL)
        fail_msg("message \"%s\" does not say \"%s\"", message, message_part);
    json_decref(events);
}

/* A resourceVersion older than the compaction horizon: one ERROR line with a 410 Expired Status. */
static void test_expired(void **state)
{
    store_t *s = store_of(state);
    int64_t first = put(s, "team", "a", "gold", 0);
    for (size_t i = 1; i <= 4; i++)
        put(s, "team", "a", "gold", i);
    int64_t horizon = 0;
    lo_err_t err = {0};
    assert_int_equal(store_compact(s, 1, 0, &horizon, &err), STORE_OK);
    assert_true(horizon > first);

    watch_spec_t spec;
    parse_at(NS_PATH, first, NULL, &spec);
    watch_cursor_t cur;
    watch_cursor_init(&cur, &spec);
    watch_page_t page;
    watch_read_page(s, &spec, &cur, 0, &page);
    assert_error_page(&page, 410, "Expired", "too old resource version");
    watch_page_free(&page);
    watch_cursor_free(&cur);
    watch_spec_free(&spec);

    /* at the horizon itself the log is still whole */
    parse_at(NS_PATH, horizon, NULL, &spec);
    watch_cursor_init(&cur, &spec);
    watch_read_page(s, &spec, &cur, 0, &page);
    assert_false(page.failed);
    assert_true(page.caught_up);
    assert_int_equal(page.seen, current_rv(s));
    watch_page_free(&page);
    watch_cursor_free(&cur);
    watch_spec_free(&spec);

    /* a resourceVersion newer than any change: an ERROR line too (504, as kube's "Too large resource version") */
    parse_at(NS_PATH, current_rv(s) + 100, NULL, &spec);
    watch_cursor_init(&cur, &spec);
    watch_read_page(s, &spec, &cur, 0, &page);
    assert_error_page(&page, 504, "Timeout", "Too large resource version");
    watch_page_free(&page);
    watch_cursor_free(&cur);
    watch_spec_free(&spec);
}

/* A state replay whose snapshot is compacted away between two of its pages ends with a 410. */
static void test_state_expired_between_pages(void **state)
{
    store_t *s = store_of(state);
    size_t pad = WATCH_PAGE_BYTES / 3 + 1024;
    char name[8];
    for (int i = 0; i < 4; i++) {
        snprintf(name, sizeof(name), "b%d", i);
        put(s, "team", name, "gold", pad);
    }
    watch_spec_t spec;
    assert_int_equal(parse(NS_PATH "?watch=1", NULL, &spec), 0);
    watch_cursor_t cur;
    watch_cursor_init(&cur, &spec);
    watch_page_t page;
    watch_read_page(s, &spec, &cur, 0, &page);
    assert_false(page.failed);
    assert_false(page.caught_up);
    int64_t snapshot = cur.at_rv;
    watch_page_free(&page);

    put(s, "team", "b0", "silver", 0);
    put(s, "team", "b3", "silver", 0);
    int64_t horizon = 0;
    assert_int_equal(store_compact(s, 1, 0, &horizon, NULL), STORE_OK);
    assert_true(horizon >= snapshot);
    watch_read_page(s, &spec, &cur, 0, &page);
    assert_error_page(&page, 410, "Expired", "too old resource version");
    watch_page_free(&page);
    watch_cursor_free(&cur);
    watch_spec_free(&spec);
}

/*
 * The lines of a replay page are the bytes the live feed sends for the same
 * change (watch_encode_body of the stored JSON): a client cannot tell where
 * the replay ended and the feed began.
 */
static void test_replay_lines_match_live_lines(void **state)
{
    store_t *s = store_of(state);
    int64_t start = put(s, "other", "seed", "gold", 0);
    json_t *o = model("team", "a", "gold", 0);
    json_object_set_new(json_object_get(o, "spec"), "note", json_string("say \"hi\"\n\tcaf\xc3\xa9 \\ /"));
    json_object_set_new(json_object_get(o, "spec"), "temperature", json_real(0.1));
    json_object_set_new(json_object_get(o, "spec"), "topP", json_real(1.0));
    json_object_set_new(json_object_get(o, "spec"), "maxTokens", json_integer(4096));
    store_op_t op = {.resource = RES, .ns = "team", .name = "a", .kind = STORE_WRITE_PUT, .object = o,
                     .expect_rv = STORE_RV_ANY};
    assert_int_equal(store_write(s, &op, 1), STORE_OK);
    assert_non_null(op.result_json);
    size_t len;
    char *added = watch_encode_body(STORE_EVENT_ADDED, op.result_json, op.result_json_len, &len);
    store_op_clear(&op);

    json_object_set_new(json_object_get(o, "spec"), "temperature", json_real(0.7));
    assert_int_equal(store_write(s, &op, 1), STORE_OK);
    char *modified = watch_encode_body(STORE_EVENT_MODIFIED, op.result_json, op.result_json_len, &len);
    store_op_clear(&op);

    store_op_t d = {.resource = RES, .ns = "team", .name = "a", .kind = STORE_WRITE_DELETE, .expect_rv = STORE_RV_ANY};
    assert_int_equal(store_write(s, &d, 1), STORE_OK);
    assert_non_null(d.result_json);
    char *deleted = watch_encode_body(STORE_EVENT_DELETED, d.result_json, d.result_json_len, &len);
    store_op_clear(&d);

    /* the replay of the log after the seed */
    watch_spec_t spec;
    parse_at(NS_PATH, start, NULL, &spec);
    watch_cursor_t cur;
    watch_cursor_init(&cur, &spec);
    watch_page_t page;
    watch_read_page(s, &spec, &cur, 0, &page);
    assert_false(page.failed);
    assert_non_null(page.data);
    char *want = lo_sprintf("%s%s%s", added, modified, deleted);
    assert_string_equal(page.data, want);
    free(want);
    watch_page_free(&page);
    watch_cursor_free(&cur);
    watch_spec_free(&spec);
    free(added);
    free(modified);
    free(deleted);
    json_decref(o);
}

#define STORE_TEST(f) cmocka_unit_test_setup_teardown(f, store_setup, store_teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_parameters),
        cmocka_unit_test(test_bad_parameters),
        cmocka_unit_test(test_selector_transitions),
        cmocka_unit_test(test_item_path_watches_by_name),
        cmocka_unit_test(test_encoding),
        cmocka_unit_test(test_encode_body),
        STORE_TEST(test_state_pages_at_one_rv),
        STORE_TEST(test_state_pages_bounded_by_bytes),
        STORE_TEST(test_state_namespaces),
        STORE_TEST(test_events_pages),
        STORE_TEST(test_events_pages_bounded_by_bytes),
        STORE_TEST(test_selector_pages),
        STORE_TEST(test_table_pages),
        STORE_TEST(test_expired),
        STORE_TEST(test_state_expired_between_pages),
        STORE_TEST(test_replay_lines_match_live_lines),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
