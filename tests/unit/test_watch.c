/*
 * test_watch.c - watch semantics without the transport (apiserver/watch.c):
 * parsing a watch request, what a watcher sees of each change, and the
 * encoded lines.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "langop/reqinfo.h"
#include "langop/schema.h"
#include "langop/watch.h"

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
    int rc = watch_spec_parse(models, &info, accept, spec, &err);
    int code = rc == 0 ? 0 : err.code;
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
        NS_PATH "?watch=1&sendInitialEvents=true",
        NS_PATH "?watch=1&resourceVersion=5&resourceVersionMatch=Exact",
        NS_PATH "?watch=1&labelSelector=a+in+(b",
        NS_PATH "?watch=1&fieldSelector=spec.provider%3Dopenai",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        watch_spec_t spec;
        int code = parse(bad[i], NULL, &spec);
        if (code != 400)
            fail_msg("%s: got %d, want 400", bad[i], code);
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_parameters),
        cmocka_unit_test(test_bad_parameters),
        cmocka_unit_test(test_selector_transitions),
        cmocka_unit_test(test_item_path_watches_by_name),
        cmocka_unit_test(test_encoding),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
