/* test_options.c - the query options of a request, decoded once and checked as kube checks them (langop/request/options.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "langop/request/options.h"
#include "langop/schema/schema.h"

#define NS "/apis/langop.io/v1alpha1/namespaces/team/languagemodels"

/* The request info of the last decode: out's borrowed texts point into it until the next one. */
static reqinfo_t info;

static int setup(void **state)
{
    (void)state;
    lo_err_t err = {0};
    return schema_registry_load(&err) == 0 ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    reqinfo_free(&info);
    schema_registry_free();
    return 0;
}

/* Decodes method target; returns 0 or the HTTP code of the error. out may be NULL (freed here). */
static int decode(const char *method, const char *target, const char *accept, options_t *out)
{
    reqinfo_free(&info);
    lo_err_t err = {0};
    options_t local;
    options_t *o = out ? out : &local;
    memset(&info, 0, sizeof(info));
    assert_int_equal(reqinfo_parse(method, target, strlen(target), &info, &err), 0);
    int rc = options_decode(&info, accept, o, &err);
    int code = rc == 0 ? 0 : err.code;
    if (rc != 0)
        assert_true(code == 400 || code == 406 || code == 422);
    if (out == NULL || rc != 0)
        options_free(o);
    lo_err_clear(&err);
    return code;
}

static void test_value_parsers(void **state)
{
    (void)state;
    static const struct {
        const char *value;
        int ok, want;
    } bools[] = {
        {"true", 1, 1}, {"True", 1, 1}, {"TRUE", 1, 1}, {"t", 1, 1}, {"T", 1, 1}, {"1", 1, 1},
        {"false", 1, 0}, {"False", 1, 0}, {"FALSE", 1, 0}, {"f", 1, 0}, {"F", 1, 0}, {"0", 1, 0},
        {"yes", 0, 0}, {"tRuE", 0, 0}, {"2", 0, 0}, {"true ", 0, 0}, {"", 0, 0},
    };
    for (size_t i = 0; i < sizeof(bools) / sizeof(bools[0]); i++) {
        int b = -1;
        int rc = options_parse_bool(bools[i].value, &b);
        if ((rc == 0) != bools[i].ok || (rc == 0 && b != bools[i].want))
            fail_msg("bool \"%s\": rc %d, value %d", bools[i].value, rc, b);
    }
    static const struct {
        const char *value;
        int ok;
        int64_t want;
    } ints[] = {
        {"0", 1, 0}, {"42", 1, 42}, {"-7", 1, -7}, {"+7", 1, 7},
        {"9223372036854775807", 1, INT64_MAX}, {"-9223372036854775808", 1, INT64_MIN},
        {"9223372036854775808", 0, 0}, {"99999999999999999999", 0, 0}, {"abc", 0, 0}, {"1.5", 0, 0},
        {"1e3", 0, 0}, {" 1", 0, 0}, {"1 ", 0, 0}, {"0x10", 0, 0}, {"", 0, 0}, {"-", 0, 0}, {"\xff", 0, 0},
    };
    for (size_t i = 0; i < sizeof(ints) / sizeof(ints[0]); i++) {
        int64_t n = 0;
        int rc = options_parse_int64(ints[i].value, &n);
        if ((rc == 0) != ints[i].ok || (rc == 0 && n != ints[i].want))
            fail_msg("int \"%s\": rc %d, value %lld", ints[i].value, rc, (long long)n);
    }
}

/* Each verb refuses its bad values; what it does not take it ignores, as kube does. */
static void test_refusals_by_verb(void **state)
{
    (void)state;
    static const struct {
        const char *method, *target;
        int code;
    } cases[] = {
        {"GET", NS "/m?resourceVersion=abc", 400},
        {"GET", NS "/m?resourceVersion=-1", 400},
        {"GET", NS "/m?limit=abc", 0}, /* a get takes no limit */
        {"GET", NS "?limit=abc", 400},
        {"GET", NS "?limit=-1", 400},
        {"GET", NS "?limit=1e3", 400},
        {"GET", NS "?limit=99999999999999999999", 400},
        {"GET", NS "?timeoutSeconds=x", 400},
        {"GET", NS "?allowWatchBookmarks=yes", 400},
        {"GET", NS "?labelSelector=a%20notin%20()", 400},
        {"GET", NS "?labelSelector=a%20in%20()", 400},
        {"GET", NS "?labelSelector=%ff", 400},
        {"GET", NS "?fieldSelector=spec.x%3Dy", 400},
        /* options that convert but do not validate: 422, as kube's Validate*Options */
        {"GET", NS "?resourceVersionMatch=Exact", 422},
        {"GET", NS "?resourceVersion=0&resourceVersionMatch=Exact", 422},
        {"GET", NS "?resourceVersion=5&resourceVersionMatch=exact", 422},
        {"GET", NS "?resourceVersion=5&resourceVersionMatch=NotOlderThan", 0},
        {"GET", NS "?continue=garbage", 400},
        {"GET", NS "?sendInitialEvents=true", 422},
        {"GET", NS "?sendInitialEvents=maybe", 400},
        {"GET", NS "?watch=1&resourceVersionMatch=NotOlderThan&resourceVersion=1", 422},
        {"GET", NS "?watch=1&timeoutSeconds=-5", 400},
        {"GET", NS "?watch=maybe", 400},
        {"POST", NS "?dryRun=All", 0},
        {"POST", NS "?dryRun=All&dryRun=bogus", 422},
        {"POST", NS "?dryRun=bogus", 422},
        {"POST", NS "?fieldValidation=strict", 422},
        {"POST", NS "?fieldManager=%01x", 422},
        {"POST", NS "?fieldManager=a%c2%85b", 422}, /* a C1 control */
        {"POST", NS "?fieldManager=%ff", 422},
        {"POST", NS "?fieldManager=caf%c3%a9", 0},
        {"PATCH", NS "/m?force=maybe", 400},
        {"PUT", NS "/m?force=maybe", 0}, /* only a patch takes force */
        {"DELETE", NS "/m?gracePeriodSeconds=abc", 400},
        {"DELETE", NS "/m?gracePeriodSeconds=1.5", 400},
        {"DELETE", NS "/m?gracePeriodSeconds=99999999999999999999", 400},
        {"DELETE", NS "/m?gracePeriodSeconds=0", 0},
        {"DELETE", NS "/m?propagationPolicy=Bogus", 422},
        {"DELETE", NS "/m?propagationPolicy=%ff", 422},
        {"DELETE", NS "/m?propagationPolicy=Orphan&orphanDependents=true", 422},
        {"DELETE", NS "/m?orphanDependents=maybe", 400},
        {"DELETE", NS "/m?dryRun=All&dryRun=x", 422},
        {"DELETE", NS "?labelSelector=a%20in%20()", 400},
        {"DELETE", NS "?limit=x", 400},
        {"DELETE", NS "?gracePeriodSeconds=x", 400},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int code = decode(cases[i].method, cases[i].target, NULL, NULL);
        if (code != cases[i].code)
            fail_msg("%s %s: %d, want %d", cases[i].method, cases[i].target, code, cases[i].code);
    }
    char target[512];
    char manager[130];
    memset(manager, 'm', 129);
    manager[129] = '\0';
    snprintf(target, sizeof(target), NS "?fieldManager=%s", manager);
    assert_int_equal(decode("POST", target, NULL, NULL), 422); /* 129 bytes */
    manager[128] = '\0';
    snprintf(target, sizeof(target), NS "?fieldManager=%s", manager);
    assert_int_equal(decode("POST", target, NULL, NULL), 0);
}

static void test_values_decoded(void **state)
{
    (void)state;
    options_t o;
    assert_int_equal(decode("GET", NS "?limit=5&limit=9&labelSelector=app%3Dweb&resourceVersion=7&"
                                       "resourceVersionMatch=NotOlderThan&timeoutSeconds=30&allowWatchBookmarks=true",
                            NULL, &o), 0);
    assert_int_equal(o.list.limit, 5); /* the first of a repeated value, as url.Values.Get */
    assert_string_equal(o.list.label_text, "app=web");
    assert_non_null(o.list.labels);
    assert_true(o.list.has_rv);
    assert_int_equal(o.list.rv, 7);
    assert_int_equal(o.list.match, RV_MATCH_NOT_OLDER_THAN);
    assert_int_equal(o.list.timeout_seconds, 30);
    assert_true(o.list.allow_watch_bookmarks);
    assert_int_equal(o.format, ENCODE_JSON);
    options_free(&o);

    assert_int_equal(decode("PATCH", NS "/m?fieldManager=me&force=true&dryRun=All&fieldValidation=Strict",
                            "application/yaml", &o), 0);
    assert_string_equal(o.write.field_manager, "me");
    assert_true(o.write.has_force && o.write.force && o.write.dry_run);
    assert_int_equal(o.write.field_validation, FIELD_VALIDATION_STRICT);
    assert_int_equal(o.format, ENCODE_YAML);
    options_free(&o);

    assert_int_equal(decode("DELETE", NS "/m?gracePeriodSeconds=-3&propagationPolicy=Foreground", NULL, &o), 0);
    assert_true(o.del.has_grace);
    assert_int_equal(o.del.grace_seconds, -3);
    assert_int_equal(o.del.propagation, PROPAGATION_FOREGROUND);
    options_free(&o);

    /* the answer's format, once: Table with includeObject, or 406 */
    assert_int_equal(decode("GET", NS "?includeObject=Object", "application/json;as=Table;v=v1;g=meta.k8s.io", &o), 0);
    assert_int_equal(o.format, ENCODE_TABLE);
    assert_int_equal(o.include, TABLE_INCLUDE_OBJECT);
    options_free(&o);
    assert_int_equal(decode("GET", NS "?includeObject=All", "application/json;as=Table;v=v1;g=meta.k8s.io", NULL), 400);
    assert_int_equal(decode("GET", NS "?includeObject=All", NULL, NULL), 0); /* not a Table: not read */
    assert_int_equal(decode("GET", NS, "text/html", NULL), 406);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_value_parsers),
        cmocka_unit_test(test_refusals_by_verb),
        cmocka_unit_test(test_values_decoded),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
