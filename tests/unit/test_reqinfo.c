/* test_reqinfo.c - request info from method, path and query (langop/reqinfo.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "langop/request/reqinfo.h"

#define G "/apis/langop.io/v1alpha1"

static void assert_field(const char *target, const char *what, const char *got, const char *want)
{
    if (want == NULL && got == NULL)
        return;
    if (want == NULL || got == NULL || strcmp(want, got) != 0)
        fail_msg("%s: %s is \"%s\", want \"%s\"", target, what, got ? got : "(null)", want ? want : "(null)");
}

static void test_resource_table(void **state)
{
    (void)state;
    static const struct {
        const char *method, *target;
        int is_resource;
        const char *verb, *ns, *resource, *name, *sub;
    } cases[] = {
        {"GET", G "/languageclusters", 1, "list", NULL, "languageclusters", NULL, NULL},
        {"GET", G "/languageclusters/", 1, "list", NULL, "languageclusters", NULL, NULL},
        {"GET", G "/languageclusters/c1", 1, "get", NULL, "languageclusters", "c1", NULL},
        {"GET", G "/languageclusters/c1/status", 1, "get", NULL, "languageclusters", "c1", "status"},
        {"PUT", G "/languageclusters/c1/status", 1, "update", NULL, "languageclusters", "c1", "status"},
        {"GET", G "/languagemodels", 1, "list", NULL, "languagemodels", NULL, NULL},
        {"GET", G "/namespaces/default/languagemodels", 1, "list", "default", "languagemodels", NULL, NULL},
        {"GET", G "/namespaces/default/languagemodels/", 1, "list", "default", "languagemodels", NULL, NULL},
        {"GET", G "/namespaces/default/languagemodels/m1", 1, "get", "default", "languagemodels", "m1", NULL},
        {"GET", G "/namespaces/default/languagemodels/m1//", 1, "get", "default", "languagemodels", "m1", NULL},
        {"HEAD", G "/namespaces/default/languagemodels/m1", 1, "get", "default", "languagemodels", "m1", NULL},
        {"POST", G "/namespaces/default/languagemodels", 1, "create", "default", "languagemodels", NULL, NULL},
        {"PUT", G "/namespaces/default/languagemodels/m1", 1, "update", "default", "languagemodels", "m1", NULL},
        {"PATCH", G "/namespaces/default/languagemodels/m1", 1, "patch", "default", "languagemodels", "m1", NULL},
        {"PATCH", G "/namespaces/ns/languageagents/a/status", 1, "patch", "ns", "languageagents", "a", "status"},
        {"DELETE", G "/namespaces/default/languagemodels/m1", 1, "delete", "default", "languagemodels", "m1", NULL},
        {"DELETE", G "/namespaces/default/languagemodels", 1, "deletecollection", "default", "languagemodels", NULL,
         NULL},
        {"DELETE", G "/languageclusters", 1, "deletecollection", NULL, "languageclusters", NULL, NULL},
        {"GET", G "/namespaces/default/languagemodels?watch=true", 1, "watch", "default", "languagemodels", NULL,
         NULL},
        {"GET", G "/namespaces/default/languagemodels?watch=1&resourceVersion=5", 1, "watch", "default",
         "languagemodels", NULL, NULL},
        {"GET", G "/namespaces/default/languagemodels?watch=TRUE", 1, "watch", "default", "languagemodels", NULL,
         NULL},
        {"GET", G "/namespaces/default/languagemodels?watch=false", 1, "list", "default", "languagemodels", NULL,
         NULL},
        {"GET", G "/namespaces/default/languagemodels?watch=0", 1, "list", "default", "languagemodels", NULL, NULL},
        {"GET", G "/namespaces/default/languagemodels/m1?watch=true", 1, "watch", "default", "languagemodels", "m1",
         NULL},
        {"POST", G "/namespaces/default/languagemodels?watch=true", 1, "create", "default", "languagemodels", NULL,
         NULL},
        {"GET", G "/languagemodels?watch=true", 1, "watch", NULL, "languagemodels", NULL, NULL},
        {"GET", G "/watch/namespaces/default/languagemodels", 1, "watch", "default", "languagemodels", NULL, NULL},
        {"GET", G "/watch/languageclusters/c1", 1, "watch", NULL, "languageclusters", "c1", NULL},
        {"GET", G "/namespaces", 1, "list", NULL, "namespaces", NULL, NULL},
        {"GET", G "/namespaces/team-a", 1, "get", "team-a", "namespaces", "team-a", NULL},
        {"GET", G "/namespaces/team-a/status", 1, "get", "team-a", "namespaces", "team-a", "status"},
        {"PUT", G "/namespaces/team-a/finalize", 1, "update", "team-a", "namespaces", "team-a", "finalize"},
        {"GET", G "/namespaces/d%65fault/languagemodels/m%2D1", 1, "get", "default", "languagemodels", "m-1", NULL},
        {"GET", G "/namespaces/default/languagemodels/a%2Fstatus", 1, "get", "default", "languagemodels", "a",
         "status"},
        {"OPTIONS", G "/languagemodels", 1, "options", NULL, "languagemodels", NULL, NULL},
        {"get", G "/languagemodels", 1, "get", NULL, "languagemodels", NULL, NULL},
        /* non-resource paths */
        {"GET", "/", 0, "get", NULL, NULL, NULL, NULL},
        {"GET", "/apis", 0, "get", NULL, NULL, NULL, NULL},
        {"GET", "/apis/", 0, "get", NULL, NULL, NULL, NULL},
        {"GET", "/apis/langop.io", 0, "get", NULL, NULL, NULL, NULL},
        {"GET", G, 0, "get", NULL, NULL, NULL, NULL},
        {"GET", G "/", 0, "get", NULL, NULL, NULL, NULL},
        {"GET", G "/watch", 0, "get", NULL, NULL, NULL, NULL},
        {"GET", "/api", 0, "get", NULL, NULL, NULL, NULL},
        {"GET", "/api/v1", 0, "get", NULL, NULL, NULL, NULL},
        {"GET", "/api/v1/namespaces/default/pods", 0, "get", NULL, NULL, NULL, NULL},
        {"GET", "/version?timeout=32s", 0, "get", NULL, NULL, NULL, NULL},
        {"GET", "/healthz", 0, "get", NULL, NULL, NULL, NULL},
        {"GET", "/openapi/v2", 0, "get", NULL, NULL, NULL, NULL},
        {"GET", "/openapi/v3/apis/langop.io/v1alpha1", 0, "get", NULL, NULL, NULL, NULL},
        {"POST", "/healthz", 0, "post", NULL, NULL, NULL, NULL},
        {"DELETE", "/version", 0, "delete", NULL, NULL, NULL, NULL},
        {"GET", G "/namespaces/ns/languagemodels/m/status/extra", 0, "get", NULL, NULL, NULL, NULL},
        {"GET", "*", 0, "get", NULL, NULL, NULL, NULL},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const char *t = cases[i].target;
        reqinfo_t info;
        lo_err_t err = {0};
        if (reqinfo_parse(cases[i].method, t, strlen(t), &info, &err) != 0)
            fail_msg("%s %s: unexpected error %s", cases[i].method, t, err.message);
        if (info.is_resource != cases[i].is_resource)
            fail_msg("%s %s: is_resource %d", cases[i].method, t, info.is_resource);
        assert_field(t, "verb", info.verb, cases[i].verb);
        assert_field(t, "namespace", info.ns, cases[i].ns);
        assert_field(t, "resource", info.resource, cases[i].resource);
        assert_field(t, "name", info.name, cases[i].name);
        assert_field(t, "subresource", info.subresource, cases[i].sub);
        if (info.is_resource) {
            assert_field(t, "group", info.group, "langop.io");
            assert_field(t, "version", info.version, "v1alpha1");
        } else {
            assert_null(info.group);
            assert_null(info.resource);
        }
        reqinfo_free(&info);
    }
}

static void test_path_and_query(void **state)
{
    (void)state;
    const char *t = G "/namespaces/default/languagemodels?labelSelector=app%3Dweb%2Ctier+in+%28a%2Cb%29"
                      "&limit=10&continue=abc-_&limit=20&flag&=empty&&fieldSelector=metadata.name%3Dx";
    reqinfo_t info;
    lo_err_t err = {0};
    assert_int_equal(reqinfo_parse("GET", t, strlen(t), &info, &err), 0);
    assert_string_equal(info.path, G "/namespaces/default/languagemodels");
    assert_string_equal(reqinfo_query_get(&info, "labelSelector"), "app=web,tier in (a,b)");
    assert_string_equal(reqinfo_query_get(&info, "limit"), "10"); /* the first of repeated keys */
    assert_string_equal(reqinfo_query_get(&info, "continue"), "abc-_");
    assert_string_equal(reqinfo_query_get(&info, "flag"), "");
    assert_string_equal(reqinfo_query_get(&info, ""), "empty");
    assert_string_equal(reqinfo_query_get(&info, "fieldSelector"), "metadata.name=x");
    assert_null(reqinfo_query_get(&info, "watch"));
    assert_null(reqinfo_query_get(&info, "Limit"));
    /* repeated keys are all kept, in order */
    assert_int_equal(info.query.count, 7);
    assert_string_equal(info.query.keys[3], "limit");
    assert_string_equal(info.query.values[3], "20");
    reqinfo_free(&info);

    /* the path is decoded but '+' stays '+' there; ';' is no separator */
    t = "/apis/a+b/v1/x%20y?k=a;b&e=%e2%82%ac";
    assert_int_equal(reqinfo_parse("GET", t, strlen(t), &info, &err), 0);
    assert_string_equal(info.path, "/apis/a+b/v1/x y");
    assert_string_equal(info.group, "a+b");
    assert_string_equal(info.resource, "x y");
    assert_string_equal(reqinfo_query_get(&info, "k"), "a;b");
    assert_string_equal(reqinfo_query_get(&info, "e"), "\xe2\x82\xac");
    reqinfo_free(&info);

    /* target_len bounds the target */
    t = G "/languagemodels/m1?watch=true";
    assert_int_equal(reqinfo_parse("GET", t, strlen(G "/languagemodels"), &info, &err), 0);
    assert_string_equal(info.verb, "list");
    assert_null(info.name);
    assert_int_equal(info.query.count, 0);
    reqinfo_free(&info);

    /* exactly REQINFO_MAX_QUERY parameters are fine */
    char q[1024] = "/version?";
    for (int i = 0; i < REQINFO_MAX_QUERY; i++)
        snprintf(q + strlen(q), sizeof(q) - strlen(q), "p%d=%d&", i, i);
    assert_int_equal(reqinfo_parse("GET", q, strlen(q), &info, &err), 0);
    assert_int_equal(info.query.count, REQINFO_MAX_QUERY);
    assert_string_equal(reqinfo_query_get(&info, "p31"), "31");
    reqinfo_free(&info);
    lo_err_clear(&err);
}

static void test_errors(void **state)
{
    (void)state;
    char too_many[1024] = G "/languagemodels?";
    for (int i = 0; i <= REQINFO_MAX_QUERY; i++)
        snprintf(too_many + strlen(too_many), sizeof(too_many) - strlen(too_many), "a=%d&", i);
    static const char nul_target[] = G "/languagemodels/a\0b";

    const struct {
        const char *target;
        size_t len; /* 0: strlen */
        const char *want;
    } cases[] = {
        {G "/namespaces/default/languagemodels/m%00x", 0, "invalid path"},
        {G "/namespaces/default/languagemodels/m%zz", 0, "invalid path"},
        {G "/namespaces/default/languagemodels/m%4", 0, "invalid path"},
        {G "/namespaces/default/languagemodels/m%", 0, "invalid path"},
        {nul_target, sizeof(nul_target) - 1, "invalid path"},
        {G "/namespaces/../languagemodels", 0, "'..'"},
        {G "/namespaces/default/languagemodels/..", 0, "'..'"},
        {G "/namespaces/default/languagemodels/%2e%2e", 0, "'..'"},
        {G "/namespaces/default/languagemodels/a%2F..%2Fb", 0, "'..'"},
        {"/../etc/passwd", 0, "'..'"},
        {G "/namespaces/./languagemodels", 0, "'.'"},
        {G "//languagemodels", 0, "empty"},
        {G "/namespaces//languagemodels/m1", 0, "empty"}, /* only trailing slashes are trimmed */
        {G "/languagemodels?a=%zz", 0, "invalid query"},
        {G "/languagemodels?a=b%00", 0, "invalid query"},
        {G "/languagemodels?%=b", 0, "invalid query"},
        {G "/languagemodels?labelSelector=x%2", 0, "invalid query"},
        {too_many, 0, "too many query parameters"},
        /* not an absolute path: the health check read past the end of "" (found by tests/fuzz) */
        {"", 0, "must begin with '/'"},
        {"?watch=1", 0, "must begin with '/'"},
        {"apis/langop.io/v1alpha1/languagemodels", 0, "must begin with '/'"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        reqinfo_t info;
        lo_err_t err = {0};
        size_t len = cases[i].len ? cases[i].len : strlen(cases[i].target);
        if (reqinfo_parse("GET", cases[i].target, len, &info, &err) != -1)
            fail_msg("%s: expected an error", cases[i].target);
        assert_int_equal(err.code, 400);
        assert_string_equal(err.reason, "BadRequest");
        if (strstr(err.message, cases[i].want) == NULL)
            fail_msg("%s: message \"%s\" lacks \"%s\"", cases[i].target, err.message, cases[i].want);
        reqinfo_free(&info); /* safe after a failure */
        lo_err_clear(&err);
    }
}

static void test_percent_decode(void **state)
{
    (void)state;
    static const struct {
        const char *in;
        int plus;
        const char *want; /* NULL: refused */
    } cases[] = {
        {"", 0, ""},
        {"abc", 0, "abc"},
        {"a%20b", 0, "a b"},
        {"a+b", 0, "a+b"},
        {"a+b", 1, "a b"},
        {"%2B", 1, "+"},
        {"%41%62%7e", 0, "Ab~"},
        {"%e2%82%AC", 0, "\xe2\x82\xac"},
        {"100%", 0, NULL},
        {"%4", 0, NULL},
        {"%g0", 0, NULL},
        {"%0g", 0, NULL},
        {"%00", 0, NULL},
        {"a%00b", 1, NULL},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *got = reqinfo_percent_decode(cases[i].in, strlen(cases[i].in), cases[i].plus);
        if (cases[i].want == NULL) {
            if (got != NULL)
                fail_msg("\"%s\": expected refusal, got \"%s\"", cases[i].in, got);
            continue;
        }
        if (got == NULL || strcmp(got, cases[i].want) != 0)
            fail_msg("\"%s\": got \"%s\", want \"%s\"", cases[i].in, got ? got : "(null)", cases[i].want);
        free(got);
    }
    /* len bounds the input; a raw NUL inside it is refused */
    char *got = reqinfo_percent_decode("ab%41", 2, 0);
    assert_string_equal(got, "ab");
    free(got);
    assert_null(reqinfo_percent_decode("a\0b", 3, 0));
}

/* A target in absolute form names the resource of its path (RFC 9112 3.2.2), as Go's server reads it. */
static void test_absolute_form(void **state)
{
    (void)state;
    static const char *const targets[] = {"https://127.0.0.1:6443" G "/namespaces/ns/languagemodels/m?limit=1",
                                          "HTTP://evil.example" G "/namespaces/ns/languagemodels/m?limit=1"};
    for (size_t i = 0; i < 2; i++) {
        reqinfo_t info;
        lo_err_t err = {0};
        assert_int_equal(reqinfo_parse("GET", targets[i], strlen(targets[i]), &info, &err), 0);
        assert_string_equal(info.path, G "/namespaces/ns/languagemodels/m");
        assert_string_equal(info.name, "m");
        assert_string_equal(reqinfo_query_get(&info, "limit"), "1");
        reqinfo_free(&info);
    }
    /* no path after the authority: nothing is named */
    reqinfo_t info;
    lo_err_t err = {0};
    const char *t = "https://host?x=/apis";
    assert_int_equal(reqinfo_parse("GET", t, strlen(t), &info, &err), 0);
    assert_false(info.is_resource);
    assert_string_equal(info.path, "/");
    assert_string_equal(reqinfo_query_get(&info, "x"), "/apis");
    reqinfo_free(&info);
    t = "http://host";
    assert_int_equal(reqinfo_parse("GET", t, strlen(t), &info, &err), 0);
    assert_string_equal(info.path, "/");
    reqinfo_free(&info);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_resource_table),
        cmocka_unit_test(test_path_and_query),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_percent_decode),
        cmocka_unit_test(test_absolute_form),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
