/*
 * test_negotiate.c - Accept and Content-Type parsing with the headers that
 * kubectl and other clients really send (kube-api-protocol.md §1), and the
 * first-acceptable-entry rule that content negotiation builds on.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "langop/request/negotiate.h"

#define KUBECTL_TABLE_ACCEPT                                                                                      \
    "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,"           \
    "application/json"
#define KUBECTL_132_DISCOVERY_ACCEPT                                                                              \
    "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,"                                      \
    "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,application/json"

typedef struct want_type {
    const char *type, *subtype, *as, *v, *g;
} want_type_t;

static void assert_media_type(const media_type_t *got, const want_type_t *want)
{
    assert_string_equal(got->type, want->type);
    assert_string_equal(got->subtype, want->subtype);
    assert_string_equal(got->as, want->as);
    assert_string_equal(got->v, want->v);
    assert_string_equal(got->g, want->g);
}

/* Index of the first entry that serves plain application/<subtype>, or -1: the caller's rule. */
static int first_plain(const media_type_t *types, size_t n, const char *subtype)
{
    for (size_t i = 0; i < n; i++)
        if (negotiate_plain(&types[i], subtype))
            return (int)i;
    return -1;
}

static void test_parse_accept(void **state)
{
    (void)state;
    static const struct {
        const char *accept;
        size_t n;
        want_type_t want[4];
    } cases[] = {
        { "application/json", 1, { { "application", "json", "", "", "" } } },
        { "application/json, */*", 2,
          { { "application", "json", "", "", "" }, { "*", "*", "", "", "" } } },
        { KUBECTL_TABLE_ACCEPT, 3,
          { { "application", "json", "Table", "v1", "meta.k8s.io" },
            { "application", "json", "Table", "v1beta1", "meta.k8s.io" },
            { "application", "json", "", "", "" } } },
        { KUBECTL_132_DISCOVERY_ACCEPT, 3,
          { { "application", "json", "APIGroupDiscoveryList", "v2", "apidiscovery.k8s.io" },
            { "application", "json", "APIGroupDiscoveryList", "v2beta1", "apidiscovery.k8s.io" },
            { "application", "json", "", "", "" } } },
        /* optional whitespace around separators */
        { "  application/json ; as=Table ;v=v1;  g=meta.k8s.io ,  application/yaml  ", 2,
          { { "application", "json", "Table", "v1", "meta.k8s.io" }, { "application", "yaml", "", "", "" } } },
        /* type, subtype and parameter names are case-insensitive; values are not */
        { "Application/JSON;AS=Table;V=v1;G=meta.k8s.io", 1,
          { { "application", "json", "Table", "v1", "meta.k8s.io" } } },
        /* other parameters (q, charset, stream) are ignored; order is kept, q does not sort */
        { "application/yaml;q=0.5, application/json;q=1.0;charset=utf-8", 2,
          { { "application", "yaml", "", "", "" }, { "application", "json", "", "", "" } } },
        { "application/vnd.kubernetes.protobuf, application/json", 2,
          { { "application", "vnd.kubernetes.protobuf", "", "", "" }, { "application", "json", "", "", "" } } },
        /* entries that are not type/subtype are skipped */
        { "text, application/json,, /json, application/", 1, { { "application", "json", "", "", "" } } },
        { "application/*", 1, { { "application", "*", "", "", "" } } },
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        media_type_t types[NEGOTIATE_MAX_TYPES];
        size_t n = negotiate_parse_accept(cases[i].accept, types, NEGOTIATE_MAX_TYPES);
        if (n != cases[i].n)
            fail_msg("Accept \"%s\": %zu entries, want %zu", cases[i].accept, n, cases[i].n);
        for (size_t k = 0; k < n; k++)
            assert_media_type(&types[k], &cases[i].want[k]);
    }
}

static void test_empty_accept_means_anything(void **state)
{
    (void)state;
    static const char *const accepts[] = { NULL, "" };
    for (size_t i = 0; i < 2; i++) {
        media_type_t types[NEGOTIATE_MAX_TYPES];
        memset(types, 0x55, sizeof(types));
        size_t n = negotiate_parse_accept(accepts[i], types, NEGOTIATE_MAX_TYPES);
        assert_int_equal(n, 1);
        assert_media_type(&types[0], &(want_type_t){ "*", "*", "", "", "" });
        assert_true(negotiate_plain(&types[0], "json"));
        assert_true(negotiate_plain(&types[0], "yaml"));
    }
}

static void test_at_most_max_entries(void **state)
{
    (void)state;
    char accept[1024] = "";
    for (int i = 0; i < 20; i++)
        strcat(accept, i ? ",application/yaml" : "application/yaml");
    media_type_t types[NEGOTIATE_MAX_TYPES + 1];
    memset(&types[3], 0x55, sizeof(types[3]));
    assert_int_equal(negotiate_parse_accept(accept, types, 3), 3);
    /* the entry past max is left alone */
    assert_int_equal((unsigned char)types[3].type[0], 0x55);
    assert_int_equal(negotiate_parse_accept(accept, types, NEGOTIATE_MAX_TYPES), NEGOTIATE_MAX_TYPES);
}

/* Over-long pieces are cut to the fields' sizes, never written past them. */
static void test_long_values_are_cut(void **state)
{
    (void)state;
    char accept[600];
    char longval[300];
    memset(longval, 'x', sizeof(longval) - 1);
    longval[sizeof(longval) - 1] = '\0';
    snprintf(accept, sizeof(accept), "application/json;as=%.200s;v=%.100s;g=%.200s;%.40s=1", longval, longval,
             longval, longval);
    media_type_t types[2];
    assert_int_equal(negotiate_parse_accept(accept, types, 2), 1);
    assert_string_equal(types[0].subtype, "json");
    assert_true(strlen(types[0].as) < sizeof(types[0].as));
    assert_true(strlen(types[0].v) < sizeof(types[0].v));
    assert_true(strlen(types[0].g) < sizeof(types[0].g));
    assert_true(strlen(types[0].as) > 0);

    media_type_t one;
    char ct[400];
    snprintf(ct, sizeof(ct), "application/%.300s", longval);
    assert_int_equal(negotiate_parse_one(ct, &one), 0);
    assert_true(strlen(one.subtype) < sizeof(one.subtype));
}

static void test_parse_one(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        int rc;
        want_type_t want;
    } cases[] = {
        { "application/json", 0, { "application", "json", "", "", "" } },
        { "application/json; charset=utf-8", 0, { "application", "json", "", "", "" } },
        { "application/merge-patch+json", 0, { "application", "merge-patch+json", "", "", "" } },
        { "application/apply-patch+yaml", 0, { "application", "apply-patch+yaml", "", "", "" } },
        { "Application/Strategic-Merge-Patch+JSON", 0, { "application", "strategic-merge-patch+json", "", "", "" } },
        { " application/yaml ", 0, { "application", "yaml", "", "", "" } },
        { "application/json;as=Table;v=v1;g=meta.k8s.io", 0, { "application", "json", "Table", "v1", "meta.k8s.io" } },
        { "json", -1, { "", "", "", "", "" } },
        { "", -1, { "", "", "", "", "" } },
        { "/json", -1, { "", "", "", "", "" } },
        { "application/", -1, { "", "", "", "", "" } },
        { "application;charset=/x", -1, { "", "", "", "", "" } },
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        media_type_t mt;
        int rc = negotiate_parse_one(cases[i].text, &mt);
        if (rc != cases[i].rc)
            fail_msg("negotiate_parse_one(\"%s\") = %d, want %d", cases[i].text, rc, cases[i].rc);
        if (rc == 0)
            assert_media_type(&mt, &cases[i].want);
    }
}

static void test_plain(void **state)
{
    (void)state;
    static const struct {
        const char *range, *subtype;
        int want;
    } cases[] = {
        { "application/json", "json", 1 },
        { "application/*", "json", 1 },
        { "*/*", "json", 1 },
        { "*/*", "yaml", 1 },
        { "application/yaml", "yaml", 1 },
        { "application/json;charset=utf-8", "json", 1 },
        { "application/json;v=v1;g=meta.k8s.io", "json", 1 }, /* no as=: still plain */
        { "application/yaml", "json", 0 },
        { "application/vnd.kubernetes.protobuf", "json", 0 },
        { "text/plain", "json", 0 },
        { "text/*", "json", 0 },
        { "text/json", "json", 0 },
        { "application/json;as=Table;v=v1;g=meta.k8s.io", "json", 0 },
        { "application/json;as=APIGroupDiscoveryList;v=v2;g=apidiscovery.k8s.io", "json", 0 },
        { "*/*;as=Table", "json", 0 },
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        media_type_t mt;
        assert_int_equal(negotiate_parse_one(cases[i].range, &mt), 0);
        if (negotiate_plain(&mt, cases[i].subtype) != cases[i].want)
            fail_msg("negotiate_plain(\"%s\", %s) != %d", cases[i].range, cases[i].subtype, cases[i].want);
    }
}

/* The entry a server picks is the first one it can serve, whatever comes after it. */
static void test_first_acceptable_entry(void **state)
{
    (void)state;
    static const struct {
        const char *accept, *subtype;
        int want;
    } cases[] = {
        { KUBECTL_TABLE_ACCEPT, "json", 2 },
        { KUBECTL_132_DISCOVERY_ACCEPT, "json", 2 },
        { "application/json, */*", "json", 0 },
        { "application/yaml, application/json", "json", 1 },
        { "application/yaml, application/json", "yaml", 0 },
        { "application/json;q=0.1, application/yaml;q=1", "yaml", 1 },
        { "application/vnd.kubernetes.protobuf", "json", -1 },
        { "application/vnd.kubernetes.protobuf,*/*", "json", 1 },
        { "application/json;as=Table;v=v1;g=meta.k8s.io", "json", -1 },
        { NULL, "json", 0 },
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        media_type_t types[NEGOTIATE_MAX_TYPES];
        size_t n = negotiate_parse_accept(cases[i].accept, types, NEGOTIATE_MAX_TYPES);
        int got = first_plain(types, n, cases[i].subtype);
        if (got != cases[i].want)
            fail_msg("Accept \"%s\": first plain %s at %d, want %d", cases[i].accept ? cases[i].accept : "(none)",
                     cases[i].subtype, got, cases[i].want);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_accept),
        cmocka_unit_test(test_empty_accept_means_anything),
        cmocka_unit_test(test_at_most_max_entries),
        cmocka_unit_test(test_long_values_are_cut),
        cmocka_unit_test(test_parse_one),
        cmocka_unit_test(test_plain),
        cmocka_unit_test(test_first_acceptable_entry),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
