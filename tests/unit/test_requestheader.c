/*
 * test_requestheader.c - the front-proxy identity headers: list flags and
 * their defaults, allowed names, extra keys (lower-cased, %-unescaped, kept
 * when malformed), the identity read from headers, and stripping.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "langop/request/requestheader.h"

/* A request with these (name, value) pairs; names lower-cased as h2o hands them over. */
static void request_with(api_request_t *req, const char *const pairs[][2], size_t n)
{
    memset(req, 0, sizeof(*req));
    req->headers = calloc(n ? n : 1, sizeof(*req->headers));
    req->header_count = n;
    for (size_t i = 0; i < n; i++) {
        req->headers[i].name = strdup(pairs[i][0]);
        req->headers[i].value = strdup(pairs[i][1]);
    }
}

static void test_extra_key(void **state)
{
    (void)state;
    static const struct { const char *in, *want; } cases[] = {
        {"Scopes", "scopes"},
        {"authentication.kubernetes.io%2fpod-Name", "authentication.kubernetes.io/pod-name"},
        {"a%2Fb", "a/b"},          /* upper-case hex: lower-cased first, still valid */
        {"bad%zzkey", "bad%zzkey"}, /* malformed escape: kept as sent (lower-cased) */
        {"cut%2", "cut%2"},
        {"end%", "end%"},
        {"", ""},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *got = requestheader_extra_key(cases[i].in, strlen(cases[i].in));
        if (strcmp(got, cases[i].want) != 0)
            fail_msg("extra key \"%s\" -> \"%s\", want \"%s\"", cases[i].in, got, cases[i].want);
        free(got);
    }
    /* lower-casing comes before unescaping, so an escaped capital stays a capital */
    char *a = requestheader_extra_key("%41", 3);
    assert_string_equal(a, "A");
    free(a);
}

static void test_allowed_names(void **state)
{
    (void)state;
    requestheader_config_t *any = requestheader_config_new(NULL, NULL, NULL, NULL, NULL);
    assert_true(requestheader_name_allowed(any, "whoever"));
    requestheader_config_free(any);
    requestheader_config_t *cfg = requestheader_config_new(NULL, NULL, NULL, NULL, " front-proxy-client, aggregator ,");
    assert_true(requestheader_name_allowed(cfg, "front-proxy-client"));
    assert_true(requestheader_name_allowed(cfg, "aggregator"));
    assert_false(requestheader_name_allowed(cfg, "Front-Proxy-Client")); /* CNs compare exactly */
    assert_false(requestheader_name_allowed(cfg, "front-proxy"));
    assert_false(requestheader_name_allowed(cfg, ""));
    assert_false(requestheader_name_allowed(cfg, NULL)); /* a certificate without CN */
    requestheader_config_free(cfg);
}

static const char *const front_proxy_headers[][2] = {
    {"accept", "application/json"},
    {"x-remote-user", ""},                 /* empty: the next username header counts */
    {"x-remote-group", "g1"},
    {"x-remote-extra-scopes", "read"},
    {"x-remote-uid", "u-1"},
    {"x-remote-group", "g2"},
    {"x-remote-extra-scopes", "write"},
    {"x-remote-extra-authentication.kubernetes.io%2fpod-name", "pod-1"},
    {"x-remote-group", ""},                /* empty group: dropped */
    {"x-user", "bob"},
    {"x-remote-extra-", "no key"},         /* the bare prefix is no extra */
    {"user-agent", "kubectl"},
};
#define N_HEADERS (sizeof(front_proxy_headers) / sizeof(front_proxy_headers[0]))

static void test_user_from_headers(void **state)
{
    (void)state;
    requestheader_config_t *cfg = requestheader_config_new("X-Remote-User,X-User", NULL, NULL, NULL, NULL);
    api_request_t req;
    request_with(&req, front_proxy_headers, N_HEADERS);
    api_user_t user;
    assert_int_equal(requestheader_user(cfg, &req, &user), 0);
    assert_string_equal(user.name, "bob");
    assert_string_equal(user.uid, "u-1");
    assert_string_equal(user.groups[0], "g1");
    assert_string_equal(user.groups[1], "g2");
    assert_null(user.groups[2]);
    json_t *want = json_pack("{s:[s,s],s:[s]}", "scopes", "read", "write", "authentication.kubernetes.io/pod-name",
                             "pod-1");
    assert_true(json_equal(user.extra, want));
    json_decref(want);
    api_user_free(&user);
    api_request_free(&req);
    requestheader_config_free(cfg);
}

static void test_no_username_header(void **state)
{
    (void)state;
    requestheader_config_t *cfg = requestheader_config_new(NULL, NULL, NULL, NULL, NULL);
    api_request_t req;
    request_with(&req, front_proxy_headers, N_HEADERS); /* x-remote-user is empty, x-user is not configured */
    api_user_t user = {0};
    assert_int_equal(requestheader_user(cfg, &req, &user), -1);
    assert_null(user.name);
    api_request_free(&req);
    requestheader_config_free(cfg);
}

static void test_custom_names(void **state)
{
    (void)state;
    static const char *const h[][2] = {{"x-who", "carol"}, {"x-team", "t1"}, {"x-remote-group", "ignored"},
                                       {"x-ex-k", "v"}, {"x-remote-extra-k", "ignored"}};
    requestheader_config_t *cfg = requestheader_config_new("X-Who", "X-Team", "X-Ex-", "X-Id", NULL);
    api_request_t req;
    request_with(&req, h, 5);
    api_user_t user;
    assert_int_equal(requestheader_user(cfg, &req, &user), 0);
    assert_string_equal(user.name, "carol");
    assert_null(user.uid);
    assert_string_equal(user.groups[0], "t1");
    assert_null(user.groups[1]);
    assert_int_equal(json_object_size(user.extra), 1);
    assert_non_null(json_object_get(user.extra, "k"));
    api_user_free(&user);
    api_request_free(&req);
    requestheader_config_free(cfg);
}

static void test_strip(void **state)
{
    (void)state;
    requestheader_config_t *cfg = requestheader_config_new(NULL, NULL, NULL, NULL, NULL);
    api_request_t req;
    request_with(&req, front_proxy_headers, N_HEADERS);
    requestheader_strip(cfg, &req);
    /* what is left: accept, x-user (not configured), the bare prefix (no key: not an extra), user-agent */
    assert_int_equal(req.header_count, 4);
    assert_string_equal(req.headers[0].name, "accept");
    assert_string_equal(req.headers[1].name, "x-user");
    assert_string_equal(req.headers[2].name, "x-remote-extra-");
    assert_string_equal(req.headers[3].name, "user-agent");
    assert_null(api_request_header(&req, "x-remote-user"));
    assert_null(api_request_header(&req, "x-remote-group"));
    api_request_free(&req);
    requestheader_config_free(cfg);
}

static void test_groups_capped(void **state)
{
    (void)state;
    enum { N = 2 * API_MAX_GROUPS };
    const char *pairs[N + 1][2];
    char names[N][16];
    pairs[0][0] = "x-remote-user", pairs[0][1] = "many";
    for (int i = 0; i < N; i++) {
        snprintf(names[i], sizeof(names[i]), "g%d", i);
        pairs[i + 1][0] = "x-remote-group", pairs[i + 1][1] = names[i];
    }
    requestheader_config_t *cfg = requestheader_config_new(NULL, NULL, NULL, NULL, NULL);
    api_request_t req;
    request_with(&req, (const char *const(*)[2])pairs, N + 1);
    api_user_t user;
    assert_int_equal(requestheader_user(cfg, &req, &user), 0);
    size_t g = 0;
    while (user.groups[g])
        g++;
    assert_int_equal(g, API_MAX_GROUPS - 2); /* room left for system:authenticated and the NULL */
    api_user_free(&user);
    api_request_free(&req);
    requestheader_config_free(cfg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_extra_key),
        cmocka_unit_test(test_allowed_names),
        cmocka_unit_test(test_user_from_headers),
        cmocka_unit_test(test_no_username_header),
        cmocka_unit_test(test_custom_names),
        cmocka_unit_test(test_strip),
        cmocka_unit_test(test_groups_capped),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
