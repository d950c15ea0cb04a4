/* test_continuetoken.c - the continue token of paginated lists (langop/continuetoken.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "langop/core/continuetoken.h"

static void test_roundtrip(void **state)
{
    (void)state;
    static const struct {
        int64_t rv;
        const char *ns, *name;
    } cases[] = {
        {1, "default", "m1"},
        {42, "", "cluster-a"},
        {INT64_MAX, "team-b", "agent.with.dots"},
        {1000000, "x", "y"},
        {7, "ns", "name-with-base64-specials-?>~"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *tok = continue_token_encode(cases[i].rv, cases[i].ns, cases[i].name);
        /* safe in a query string without escaping */
        assert_null(strpbrk(tok, "+/=&?# "));
        int64_t rv = 0;
        char *ns = NULL, *name = NULL;
        lo_err_t err = {0};
        if (continue_token_decode(tok, &rv, &ns, &name, &err) != 0)
            fail_msg("%s: %s", tok, err.message);
        assert_int_equal(rv, cases[i].rv);
        assert_string_equal(ns, cases[i].ns);
        assert_string_equal(name, cases[i].name);
        free(ns);
        free(name);
        free(tok);
    }
    /* a NULL namespace is the cluster scope */
    char *tok = continue_token_encode(5, NULL, "c");
    int64_t rv;
    char *ns, *name;
    assert_int_equal(continue_token_decode(tok, &rv, &ns, &name, NULL), 0);
    assert_string_equal(ns, "");
    assert_string_equal(name, "c");
    free(ns);
    free(name);
    free(tok);
}

static void test_format(void **state)
{
    (void)state;
    /* the token is base64 of kube's JSON shape */
    char *tok = continue_token_encode(12, "default", "m");
    size_t len = 0;
    unsigned char *raw = lo_base64_decode(tok, &len);
    assert_non_null(raw);
    json_t *doc = json_loadb((const char *)raw, len, 0, NULL);
    assert_non_null(doc);
    assert_string_equal(json_string_value(json_object_get(doc, "v")), "meta.k8s.io/v1");
    assert_int_equal(json_integer_value(json_object_get(doc, "rv")), 12);
    assert_string_equal(json_string_value(json_object_get(doc, "start")), "default/m");
    json_decref(doc);
    free(raw);
    free(tok);

    /* padded standard base64 of the same document is accepted too */
    const char *text = "{\"v\":\"meta.k8s.io/v1\",\"rv\":9,\"start\":\"a/b\",\"extra\":true}";
    char *std = lo_base64_encode(text, strlen(text));
    int64_t rv;
    char *ns, *name;
    assert_int_equal(continue_token_decode(std, &rv, &ns, &name, NULL), 0);
    assert_int_equal(rv, 9);
    assert_string_equal(ns, "a");
    assert_string_equal(name, "b");
    free(ns);
    free(name);
    free(std);
}

/* Asserts that the token made from json text is refused with 400 naming why. */
static void assert_bad_json(const char *text, const char *want)
{
    char *tok = lo_base64_encode(text, strlen(text));
    int64_t rv = -99;
    char *ns = (char *)"untouched", *name = (char *)"untouched";
    lo_err_t err = {0};
    if (continue_token_decode(tok, &rv, &ns, &name, &err) != -1)
        fail_msg("%s: expected an error", text);
    assert_int_equal(err.code, 400);
    assert_string_equal(err.reason, "BadRequest");
    assert_non_null(strstr(err.message, "continue key is not valid: "));
    if (strstr(err.message, want) == NULL)
        fail_msg("%s: message \"%s\" lacks \"%s\"", text, err.message, want);
    /* out-params untouched on failure */
    assert_int_equal(rv, -99);
    assert_string_equal(ns, "untouched");
    assert_string_equal(name, "untouched");
    lo_err_clear(&err);
    free(tok);
}

static void test_garbage(void **state)
{
    (void)state;
    static const struct {
        const char *json;
        const char *want;
    } cases[] = {
        {"hello", "not a JSON object"},
        {"[1,2]", "not a JSON object"},
        {"\"str\"", "not a JSON object"},
        {"{}", "resourceVersion"},
        {"{\"v\":\"meta.k8s.io/v1\",\"start\":\"a/b\"}", "resourceVersion"},
        {"{\"v\":\"v2\",\"rv\":1,\"start\":\"a/b\"}", "resourceVersion"},
        {"{\"v\":1,\"rv\":1,\"start\":\"a/b\"}", "resourceVersion"},
        {"{\"v\":\"meta.k8s.io/v1\",\"rv\":-5,\"start\":\"a/b\"}", "resourceVersion"},
        {"{\"v\":\"meta.k8s.io/v1\",\"rv\":0,\"start\":\"a/b\"}", "resourceVersion"},
        {"{\"v\":\"meta.k8s.io/v1\",\"rv\":\"5\",\"start\":\"a/b\"}", "resourceVersion"},
        {"{\"v\":\"meta.k8s.io/v1\",\"rv\":5.5,\"start\":\"a/b\"}", "resourceVersion"},
        {"{\"v\":\"meta.k8s.io/v1\",\"rv\":5}", "start key must not be empty"},
        {"{\"v\":\"meta.k8s.io/v1\",\"rv\":5,\"start\":\"\"}", "start key must not be empty"},
        {"{\"v\":\"meta.k8s.io/v1\",\"rv\":5,\"start\":7}", "start key must not be empty"},
        {"{\"v\":\"meta.k8s.io/v1\",\"rv\":5,\"start\":\"noslash\"}", "malformed start key"},
        {"{\"v\":\"meta.k8s.io/v1\",\"rv\":5,\"start\":\"ns/\"}", "malformed start key"},
        {"{\"v\":\"meta.k8s.io/v1\",\"rv\":5,\"start\":\"a/b/c\"}", "malformed start key"},
        {"{\"v\":\"meta.k8s.io/v1\",\"rv\":5,\"start\":\"../../x\"}", "malformed start key"},
        {"{\"v\":\"meta.k8s.io/v1\",\"rv\":5,\"start\":\"a/b\"} trailing", "not a JSON object"},
        {"{\"v\":\"meta.k8s.io/v1\",\"rv\":99999999999999999999,\"start\":\"a/b\"}", "not a JSON object"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        assert_bad_json(cases[i].json, cases[i].want);

    static const char *const not_base64[] = {"", "!!!!", "abc$", "a", "ab cd", "Zm9v\n", "%41%41"};
    for (size_t i = 0; i < sizeof(not_base64) / sizeof(not_base64[0]); i++) {
        int64_t rv;
        char *ns, *name;
        lo_err_t err = {0};
        if (continue_token_decode(not_base64[i], &rv, &ns, &name, &err) != -1)
            fail_msg("\"%s\": expected an error", not_base64[i]);
        assert_int_equal(err.code, 400);
        assert_non_null(strstr(err.message, "continue key is not valid"));
        lo_err_clear(&err);
    }
    int64_t rv;
    char *ns, *name;
    assert_int_equal(continue_token_decode(NULL, &rv, &ns, &name, NULL), -1);
}

static void test_fuzz(void **state)
{
    (void)state;
    char *good = continue_token_encode(123, "default", "model");
    size_t len = strlen(good);
    unsigned int rnd = 777;
    static const char alphabet[] = "ABCDEFabcdef0123456789-_+/=!\xff";
    for (int round = 0; round < 3000; round++) {
        char *tok = lo_strdup(good);
        for (int e = 0; e <= round % 4; e++) {
            rnd = rnd * 1103515245u + 12345u;
            tok[(rnd >> 8) % len] = alphabet[(rnd >> 20) % (sizeof(alphabet) - 1)];
        }
        rnd = rnd * 1103515245u + 12345u;
        if (round & 1)
            tok[(rnd >> 8) % (len + 1)] = '\0';
        int64_t rv;
        char *ns = NULL, *name = NULL;
        lo_err_t err = {0};
        if (continue_token_decode(tok, &rv, &ns, &name, &err) == 0) {
            assert_true(rv > 0);
            assert_null(strchr(name, '/'));
            free(ns);
            free(name);
        } else {
            assert_int_equal(err.code, 400);
        }
        lo_err_clear(&err);
        free(tok);
    }
    free(good);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip),
        cmocka_unit_test(test_format),
        cmocka_unit_test(test_garbage),
        cmocka_unit_test(test_fuzz),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
