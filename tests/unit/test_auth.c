/*
 * test_auth.c - static token authentication from a --token-auth-file CSV
 * written to a temporary directory, and the health paths that need no
 * credentials.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "langop/request/auth.h"

typedef struct fixture {
    char dir[64];
    char path[128];
    auth_t *auth;
} fixture_t;

/* Comments, blank lines, quoted groups, an empty uid, CRLF endings. */
static const char token_file[] =
    "# tokens for the standalone server\n"
    "token-admin,admin,uid-1,\"system:masters,devs\"\n"
    "\n"
    "token-bob,bob,,\n"
    "token-carol,carol,uid-3,viewers\r\n"
    "\r\n"
    "token-dave,dave,uid-4\n"
    "token-erin,erin,uid-5,\"system:authenticated,ops\"\n";
#define TOKEN_FILE_ENTRIES 5

static void write_file(const char *path, const char *text)
{
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    assert_int_equal(fputs(text, fp) >= 0, 1);
    assert_int_equal(fclose(fp), 0);
}

static int setup(void **state)
{
    fixture_t *fx = calloc(1, sizeof(*fx));
    if (fx == NULL)
        return -1;
    snprintf(fx->dir, sizeof(fx->dir), "/tmp/langop-test-auth.XXXXXX");
    if (mkdtemp(fx->dir) == NULL) {
        free(fx);
        return -1;
    }
    snprintf(fx->path, sizeof(fx->path), "%s/tokens.csv", fx->dir);
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    fixture_t *fx = *state;
    auth_free(fx->auth);
    unlink(fx->path);
    rmdir(fx->dir);
    free(fx);
    return 0;
}

/* Loads text as the token file; fails the test on a load error. */
static auth_t *load(fixture_t *fx, const char *text)
{
    write_file(fx->path, text);
    lo_err_t err = { 0 };
    auth_t *auth = auth_new(&(auth_options_t){.token_file = fx->path}, &err);
    if (auth == NULL)
        fail_msg("auth_new: %s", err.message);
    lo_err_clear(&err);
    return auth;
}

static size_t group_count(const api_user_t *u, const char *group)
{
    size_t n = 0;
    for (size_t i = 0; i < API_MAX_GROUPS && u->groups[i]; i++)
        if (strcmp(u->groups[i], group) == 0)
            n++;
    return n;
}

static size_t groups_len(const api_user_t *u)
{
    size_t n = 0;
    while (n < API_MAX_GROUPS && u->groups[n])
        n++;
    return n;
}

static void test_load_counts_entries(void **state)
{
    fixture_t *fx = *state;
    fx->auth = load(fx, token_file);
    assert_int_equal(auth_token_count(fx->auth), TOKEN_FILE_ENTRIES);
}

static void test_good_tokens(void **state)
{
    fixture_t *fx = *state;
    fx->auth = load(fx, token_file);
    static const struct {
        const char *authorization, *user, *uid;
        const char *groups[4]; /* in order, system:authenticated last */
    } cases[] = {
        { "Bearer token-admin", "admin", "uid-1", { "system:masters", "devs", "system:authenticated" } },
        { "Bearer token-bob", "bob", NULL, { "system:authenticated" } },
        { "Bearer token-carol", "carol", "uid-3", { "viewers", "system:authenticated" } },
        { "Bearer token-dave", "dave", "uid-4", { "system:authenticated" } },
        /* the scheme is case-insensitive */
        { "bearer token-admin", "admin", "uid-1", { "system:masters", "devs", "system:authenticated" } },
        { "BEARER token-carol", "carol", "uid-3", { "viewers", "system:authenticated" } },
        { "BeArEr token-dave", "dave", "uid-4", { "system:authenticated" } },
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        api_user_t user;
        memset(&user, 0, sizeof(user));
        if (auth_authenticate(fx->auth, cases[i].authorization, &user) != 0)
            fail_msg("\"%s\" was refused", cases[i].authorization);
        assert_string_equal(user.name, cases[i].user);
        if (cases[i].uid)
            assert_string_equal(user.uid, cases[i].uid);
        else
            assert_true(user.uid == NULL || user.uid[0] == '\0');
        size_t n = 0;
        while (n < 4 && cases[i].groups[n])
            n++;
        assert_int_equal(groups_len(&user), n);
        for (size_t g = 0; g < n; g++)
            assert_string_equal(user.groups[g], cases[i].groups[g]);
        api_user_free(&user);
    }
}

static void test_bad_tokens(void **state)
{
    fixture_t *fx = *state;
    fx->auth = load(fx, token_file);
    static const char *const cases[] = {
        NULL,
        "",
        "Bearer",
        "Bearer ",
        "Bearer wrong",
        "Bearer token-admi",   /* a prefix of a token */
        "Bearer token-adminx", /* a token as a prefix */
        "Bearer TOKEN-ADMIN",  /* tokens are case-sensitive */
        "Basic dG9rZW4tYWRtaW46",
        "token-admin",
        "Bearertoken-admin",
        "Bearer admin",        /* a user name is not a token */
        "Bearer uid-1",
        "Bearer # tokens for the standalone server",
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        api_user_t user;
        memset(&user, 0, sizeof(user));
        if (auth_authenticate(fx->auth, cases[i], &user) == 0) {
            char got[128];
            snprintf(got, sizeof(got), "%s", user.name ? user.name : "");
            api_user_free(&user);
            fail_msg("\"%s\" authenticated as %s", cases[i] ? cases[i] : "(none)", got);
        }
    }
}

/* Every user is in system:authenticated once, even when the file lists it (kube's group adder). */
static void test_authenticated_group_once(void **state)
{
    fixture_t *fx = *state;
    fx->auth = load(fx, token_file);
    api_user_t user;
    memset(&user, 0, sizeof(user));
    assert_int_equal(auth_authenticate(fx->auth, "Bearer token-erin", &user), 0);
    size_t authenticated = group_count(&user, "system:authenticated");
    size_t ops = group_count(&user, "ops");
    api_user_free(&user);
    assert_int_equal(ops, 1);
    if (authenticated != 1)
        fail_msg("groups \"system:authenticated,ops\" in the file: system:authenticated appears %zu times, want 1",
                 authenticated);
}

/* The user handed out is a copy: it outlives the table (valgrind checks the reads). */
static void test_user_is_a_copy(void **state)
{
    fixture_t *fx = *state;
    auth_t *auth = load(fx, token_file);
    api_user_t user;
    memset(&user, 0, sizeof(user));
    assert_int_equal(auth_authenticate(auth, "Bearer token-admin", &user), 0);
    auth_free(auth);
    assert_string_equal(user.name, "admin");
    assert_string_equal(user.groups[0], "system:masters");
    api_user_free(&user);
    assert_null(user.name);
}

static void test_no_token_file(void **state)
{
    (void)state;
    lo_err_t err = { 0 };
    auth_t *auth = auth_new(NULL, &err);
    assert_non_null(auth);
    assert_int_equal(auth_token_count(auth), 0);
    api_user_t user;
    memset(&user, 0, sizeof(user));
    assert_int_equal(auth_authenticate(auth, "Bearer anything", &user), -1);
    assert_int_equal(auth_authenticate(NULL, "Bearer anything", &user), -1);
    auth_free(auth);
    auth_free(NULL);
    lo_err_clear(&err);
}

static void test_bad_files(void **state)
{
    fixture_t *fx = *state;
    static const struct {
        const char *text; /* NULL: the file does not exist */
        const char *message_has;
    } cases[] = {
        { NULL, "tokens.csv" },
        { "token-a,alice,uid-1\nonlytoken\n", "line 2" },
        { "token-a,alice,uid-1\n\n# c\n,bob,uid-2\n", "line 4" },
        { "token-a,,uid-1\n", "line 1" },
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        if (cases[i].text)
            write_file(fx->path, cases[i].text);
        else
            unlink(fx->path);
        lo_err_t err = { 0 };
        auth_t *auth = auth_new(&(auth_options_t){.token_file = fx->path}, &err);
        char message[LO_ERR_MESSAGE_MAX];
        snprintf(message, sizeof(message), "%s", err.message);
        lo_err_clear(&err);
        if (auth != NULL) {
            auth_free(auth);
            fail_msg("case %zu: a bad token file was accepted", i);
        }
        if (strstr(message, cases[i].message_has) == NULL)
            fail_msg("case %zu: message \"%s\" lacks \"%s\"", i, message, cases[i].message_has);
    }
}

/* A token with more groups than fit is still served, in system:authenticated. */
static void test_many_groups(void **state)
{
    fixture_t *fx = *state;
    char text[2048] = "token-many,many,uid-9,\"";
    for (int i = 0; i < 40; i++) {
        char g[16];
        snprintf(g, sizeof(g), "%sg%d", i ? "," : "", i);
        strcat(text, g);
    }
    strcat(text, "\"\n");
    fx->auth = load(fx, text);
    api_user_t user;
    memset(&user, 0, sizeof(user));
    assert_int_equal(auth_authenticate(fx->auth, "Bearer token-many", &user), 0);
    size_t n = groups_len(&user);
    size_t authenticated = group_count(&user, "system:authenticated");
    char first[16];
    snprintf(first, sizeof(first), "%s", user.groups[0] ? user.groups[0] : "");
    api_user_free(&user);
    assert_true(n < API_MAX_GROUPS);
    assert_int_equal(authenticated, 1);
    assert_string_equal(first, "g0");
}

static void test_always_allowed_paths(void **state)
{
    (void)state;
    static const struct {
        const char *path;
        int want;
    } cases[] = {
        { "/healthz", 1 },
        { "/livez", 1 },
        { "/readyz", 1 },
        { "/healthz/ping", 1 },
        { "/livez/ping", 1 },
        { "/readyz/store", 1 },
        { "/readyz?verbose", 1 },
        { "/livez?exclude=store", 1 },
        { "/healthzz", 0 },
        { "/livezz", 0 },
        { "/readyzx/ping", 0 },
        { "/healthz.json", 0 },
        { "/version", 0 },
        { "/", 0 },
        { "", 0 },
        { "/apis", 0 },
        { "/api/v1/healthz", 0 },
        { "/apis/langop.io/v1alpha1/namespaces/healthz", 0 },
        { "/openapi/v2", 0 },
        { "/metrics", 0 },
        { "healthz", 0 },
        { "/HEALTHZ", 0 },
    };
    int mismatches = 0;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int got = auth_path_always_allowed(cases[i].path);
        if (got != cases[i].want) {
            print_error("auth_path_always_allowed(\"%s\") = %d, want %d\n", cases[i].path, got, cases[i].want);
            mismatches++;
        }
    }
    assert_int_equal(mismatches, 0);
}

/* A request with an Authorization header (may be NULL) and front-proxy claims. */
static void claiming_request(api_request_t *req, const char *authorization)
{
    static const char *const h[][2] = {{"x-remote-user", "root"}, {"x-remote-group", "system:masters"},
                                       {"accept", "*/*"}, {"x-remote-extra-scopes", "all"}};
    memset(req, 0, sizeof(*req));
    req->headers = calloc(5, sizeof(*req->headers));
    for (size_t i = 0; i < 4; i++) {
        req->headers[i].name = strdup(h[i][0]);
        req->headers[i].value = strdup(h[i][1]);
    }
    req->header_count = 4;
    if (authorization) {
        req->headers[4].name = strdup("authorization");
        req->headers[4].value = strdup(authorization);
        req->header_count = 5;
    }
}

/* auth_request: the token's user, never the headers' claims, which are gone afterwards. */
static void test_request_ignores_and_strips_claims(void **state)
{
    fixture_t *fx = *state;
    fx->auth = load(fx, token_file);
    api_request_t req;
    claiming_request(&req, "Bearer token-bob");
    assert_int_equal(auth_request(fx->auth, &req), AUTH_AUTHENTICATED);
    assert_string_equal(req.user.name, "bob");
    assert_string_equal(req.user.groups[0], "system:authenticated");
    assert_null(req.user.groups[1]);
    assert_null(req.user.extra);
    assert_null(api_request_header(&req, "x-remote-user"));
    assert_null(api_request_header(&req, "x-remote-group"));
    assert_null(api_request_header(&req, "x-remote-extra-scopes"));
    assert_non_null(api_request_header(&req, "accept"));
    api_request_free(&req);

    claiming_request(&req, NULL); /* no credentials, anonymous off: 401, claims stripped all the same */
    assert_int_equal(auth_request(fx->auth, &req), AUTH_UNAUTHORIZED);
    assert_null(req.user.name);
    assert_int_equal(req.header_count, 1);
    api_request_free(&req);
}

static void test_request_anonymous(void **state)
{
    fixture_t *fx = *state;
    write_file(fx->path, token_file);
    lo_err_t err = {0};
    auth_t *auth = auth_new(&(auth_options_t){.token_file = fx->path, .anonymous = 1}, &err);
    assert_non_null(auth);
    api_request_t req;
    claiming_request(&req, NULL);
    assert_int_equal(auth_request(auth, &req), AUTH_ANONYMOUS);
    assert_string_equal(req.user.name, "system:anonymous");
    assert_string_equal(req.user.groups[0], "system:unauthenticated");
    assert_null(req.user.groups[1]);
    api_request_free(&req);
    /* a credential that was presented and rejected is 401 even with anonymous access on */
    static const struct { const char *authorization; int want; } cases[] = {
        {"Bearer wrong", AUTH_UNAUTHORIZED},
        {"bearer token-bob", AUTH_AUTHENTICATED},
        {"Basic YWxpY2U6eA==", AUTH_ANONYMOUS}, /* not a bearer token: no credential, as kube reads it */
        {"Bearer ", AUTH_ANONYMOUS},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        claiming_request(&req, cases[i].authorization);
        int got = auth_request(auth, &req);
        if (got != cases[i].want)
            fail_msg("\"%s\": %d, want %d", cases[i].authorization, got, cases[i].want);
        api_request_free(&req);
    }
    auth_free(auth);
}

static void test_no_client_certs_without_a_ca(void **state)
{
    fixture_t *fx = *state;
    fx->auth = load(fx, token_file);
    assert_false(auth_wants_client_certs(fx->auth));
    lo_err_t err = {0};
    assert_null(auth_new(&(auth_options_t){.client_ca_file = "/nonexistent/ca.crt"}, &err));
    assert_non_null(strstr(err.message, "/nonexistent/ca.crt"));
    lo_err_clear(&err);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_load_counts_entries, setup, teardown),
        cmocka_unit_test_setup_teardown(test_good_tokens, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_tokens, setup, teardown),
        cmocka_unit_test_setup_teardown(test_authenticated_group_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_user_is_a_copy, setup, teardown),
        cmocka_unit_test(test_no_token_file),
        cmocka_unit_test_setup_teardown(test_bad_files, setup, teardown),
        cmocka_unit_test_setup_teardown(test_many_groups, setup, teardown),
        cmocka_unit_test(test_always_allowed_paths),
        cmocka_unit_test_setup_teardown(test_request_ignores_and_strips_claims, setup, teardown),
        cmocka_unit_test_setup_teardown(test_request_anonymous, setup, teardown),
        cmocka_unit_test_setup_teardown(test_no_client_certs_without_a_ca, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
