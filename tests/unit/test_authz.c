/*
 * test_authz.c - the attributes of a request (kube's verb mapping), the
 * wording of a denial, AlwaysAllow, system:masters, a webhook that cannot
 * be reached (fails closed, never allows), and impersonation's identity.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "langop/request/authz.h"

static const api_user_t alice = {.name = "alice", .groups = {"devs", "system:authenticated", NULL}};
static const api_user_t master = {.name = "root", .groups = {"system:masters", NULL}};

typedef struct verb_case {
    const char *method, *target;
    const char *verb;
    int is_resource;
    const char *resource, *subresource, *ns, *name;
} verb_case_t;

static void test_verb_mapping(void **state)
{
    (void)state;
    static const verb_case_t cases[] = {
        {"GET", "/apis/langop.io/v1alpha1/namespaces/a/languagemodels/m", "get", 1, "languagemodels", NULL, "a", "m"},
        {"GET", "/apis/langop.io/v1alpha1/namespaces/a/languagemodels", "list", 1, "languagemodels", NULL, "a", NULL},
        {"GET", "/apis/langop.io/v1alpha1/languagemodels", "list", 1, "languagemodels", NULL, NULL, NULL},
        {"GET", "/apis/langop.io/v1alpha1/namespaces/a/languagemodels?watch=true", "watch", 1, "languagemodels",
         NULL, "a", NULL},
        {"POST", "/apis/langop.io/v1alpha1/namespaces/a/languagemodels", "create", 1, "languagemodels", NULL, "a",
         NULL},
        {"PUT", "/apis/langop.io/v1alpha1/namespaces/a/languagemodels/m/status", "update", 1, "languagemodels",
         "status", "a", "m"},
        {"PATCH", "/apis/langop.io/v1alpha1/languageclusters/c", "patch", 1, "languageclusters", NULL, NULL, "c"},
        {"DELETE", "/apis/langop.io/v1alpha1/languageclusters/c", "delete", 1, "languageclusters", NULL, NULL, "c"},
        {"DELETE", "/apis/langop.io/v1alpha1/namespaces/a/languagemodels", "deletecollection", 1, "languagemodels",
         NULL, "a", NULL},
        {"GET", "/apis", "get", 0, NULL, NULL, NULL, NULL},
        {"GET", "/openapi/v2", "get", 0, NULL, NULL, NULL, NULL},
        {"POST", "/version", "post", 0, NULL, NULL, NULL, NULL},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const verb_case_t *c = &cases[i];
        reqinfo_t info;
        lo_err_t err = {0};
        assert_int_equal(reqinfo_parse(c->method, c->target, strlen(c->target), &info, &err), 0);
        authz_attrs_t at = authz_attrs_of(&info, &alice);
        assert_string_equal(at.verb, c->verb);
        assert_int_equal(at.is_resource, c->is_resource);
        assert_ptr_equal(at.user, &alice);
        if (c->is_resource) {
            assert_string_equal(at.group, "langop.io");
            assert_string_equal(at.version, "v1alpha1");
            assert_string_equal(at.resource, c->resource);
        } else {
            assert_null(at.resource);
        }
        if (c->subresource)
            assert_string_equal(at.subresource, c->subresource);
        else
            assert_null(at.subresource);
        if (c->ns)
            assert_string_equal(at.ns, c->ns);
        else
            assert_null(at.ns);
        if (c->name)
            assert_string_equal(at.name, c->name);
        else
            assert_null(at.name);
        reqinfo_free(&info);
    }
}

static void expect_forbidden(const authz_attrs_t *at, const char *reason, const char *message)
{
    lo_err_t err = {0};
    authz_forbidden(at, reason, &err);
    assert_int_equal(err.code, 403);
    assert_string_equal(err.reason, "Forbidden");
    assert_string_equal(err.message, message);
    lo_err_clear(&err);
}

static void test_forbidden_wording(void **state)
{
    (void)state;
    authz_attrs_t at = {.user = &alice, .verb = "get", .is_resource = 1, .group = "langop.io",
                        .resource = "languagemodels", .ns = "a", .name = "m"};
    expect_forbidden(&at, NULL,
                     "languagemodels.langop.io \"m\" is forbidden: User \"alice\" cannot get resource "
                     "\"languagemodels\" in API group \"langop.io\" in the namespace \"a\"");
    expect_forbidden(&at, "RBAC: no role",
                     "languagemodels.langop.io \"m\" is forbidden: User \"alice\" cannot get resource "
                     "\"languagemodels\" in API group \"langop.io\" in the namespace \"a\": RBAC: no role");
    at = (authz_attrs_t){.user = &alice, .verb = "update", .is_resource = 1, .group = "langop.io",
                         .resource = "languageclusters", .subresource = "status", .name = "c"};
    expect_forbidden(&at, "",
                     "languageclusters.langop.io \"c\" is forbidden: User \"alice\" cannot update resource "
                     "\"languageclusters/status\" in API group \"langop.io\" at the cluster scope");
    at = (authz_attrs_t){.user = &alice, .verb = "list", .is_resource = 1, .group = "langop.io",
                         .resource = "languagemodels", .ns = "a"};
    expect_forbidden(&at, NULL,
                     "languagemodels.langop.io is forbidden: User \"alice\" cannot list resource "
                     "\"languagemodels\" in API group \"langop.io\" in the namespace \"a\"");
    at = (authz_attrs_t){.user = &alice, .verb = "impersonate", .is_resource = 1, .group = "",
                         .resource = "users", .name = "bob"};
    expect_forbidden(&at, NULL,
                     "users \"bob\" is forbidden: User \"alice\" cannot impersonate resource \"users\" in API "
                     "group \"\" at the cluster scope");
    at = (authz_attrs_t){.user = &alice, .verb = "get", .path = "/openapi/v2"};
    expect_forbidden(&at, NULL, "forbidden: User \"alice\" cannot get path \"/openapi/v2\"");
}

static void test_forbidden_details(void **state)
{
    (void)state;
    authz_attrs_t at = {.user = &alice, .verb = "delete", .is_resource = 1, .group = "langop.io",
                        .resource = "languagemodels", .ns = "a", .name = "m"};
    lo_err_t err = {0};
    authz_forbidden(&at, NULL, &err);
    json_t *want = json_pack("{s:s, s:s, s:s}", "name", "m", "group", "langop.io", "kind", "languagemodels");
    assert_true(json_equal(err.details, want));
    json_decref(want);
    lo_err_clear(&err);
}

static authz_t *always_allow(void)
{
    authz_options_t o = {.mode = AUTHZ_ALWAYS_ALLOW};
    lo_err_t err = {0};
    authz_t *a = authz_new(&o, &err);
    assert_non_null(a);
    return a;
}

static void test_modes(void **state)
{
    (void)state;
    authz_mode_t m;
    assert_int_equal(authz_mode_parse("AlwaysAllow", &m), 0);
    assert_int_equal(m, AUTHZ_ALWAYS_ALLOW);
    assert_int_equal(authz_mode_parse("Webhook", &m), 0);
    assert_int_equal(m, AUTHZ_WEBHOOK);
    assert_int_equal(authz_mode_parse("RBAC", &m), -1);
    authz_options_t o = {.mode = AUTHZ_WEBHOOK}; /* no client */
    lo_err_t err = {0};
    assert_null(authz_new(&o, &err));
    authz_t *a = always_allow();
    authz_attrs_t at = {.user = &alice, .verb = "delete", .is_resource = 1, .resource = "languageclusters"};
    char *reason = (char *)"unset";
    assert_int_equal(authz_check(a, &at, &reason, &err), AUTHZ_ALLOW);
    assert_null(reason);
    authz_free(a);
}

/* A webhook whose kube-apiserver refuses connections (port 1). */
static authz_t *unreachable_webhook(void)
{
    char dir[] = "/tmp/test-authz-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[64];
    snprintf(path, sizeof(path), "%s/kubeconfig", dir);
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    fputs("apiVersion: v1\nkind: Config\ncurrent-context: c\n"
          "clusters: [{name: k, cluster: {server: \"https://127.0.0.1:1\"}}]\n"
          "users: [{name: u, user: {token: t}}]\n"
          "contexts: [{name: c, context: {cluster: k, user: u}}]\n",
          fp);
    fclose(fp);
    lo_err_t err = {0};
    kube_config_t *cfg = kubeconfig_load_file(path, NULL, &err);
    assert_non_null(cfg);
    unlink(path);
    rmdir(dir);
    kube_client_options_t ko = {.connect_timeout_ms = 500, .timeout_ms = 1000, .max_retries = -1};
    authz_options_t o = {.mode = AUTHZ_WEBHOOK, .client = kube_client_new(cfg, &ko, &err),
                         .allowed_ttl_ms = 10000, .denied_ttl_ms = 10000};
    assert_non_null(o.client);
    authz_t *a = authz_new(&o, &err);
    assert_non_null(a);
    return a;
}

static void test_webhook_error_fails_closed(void **state)
{
    (void)state;
    authz_t *a = unreachable_webhook();
    authz_attrs_t at = {.user = &alice, .verb = "get", .is_resource = 1, .resource = "languagemodels"};
    lo_err_t err = {0};
    char *reason = NULL;
    assert_int_equal(authz_check(a, &at, &reason, &err), AUTHZ_ERROR);
    assert_non_null(strstr(err.message, "SubjectAccessReview failed"));
    lo_err_clear(&err);
    /* errors are not cached: asked again */
    assert_int_equal(authz_check(a, &at, &reason, &err), AUTHZ_ERROR);
    assert_int_equal(authz_review_count(a), 2);
    lo_err_clear(&err);
    /* system:masters is never reviewed */
    at.user = &master;
    assert_int_equal(authz_check(a, &at, &reason, &err), AUTHZ_ALLOW);
    assert_int_equal(authz_review_count(a), 2);
    authz_free(a);
}

static api_request_t request_with(const api_user_t *user, api_header_t *headers, size_t n)
{
    api_request_t req = {.method = "GET", .target = "/apis", .headers = headers, .header_count = n};
    req.user = *user;
    return req;
}

static void test_impersonation_identity(void **state)
{
    (void)state;
    authz_t *a = always_allow();
    api_header_t h[] = {{"impersonate-user", "bob"},
                        {"impersonate-group", "g1"},
                        {"impersonate-group", "g2"},
                        {"impersonate-uid", "u-9"},
                        {"impersonate-extra-scopes%2Fx", "read"},
                        {"impersonate-extra-scopes%2Fx", "write"}};
    api_request_t req = request_with(&alice, h, 6);
    api_user_t as;
    lo_err_t err = {0};
    assert_int_equal(authz_impersonate(a, &req, &as, &err), 1);
    assert_string_equal(as.name, "bob");
    assert_string_equal(as.uid, "u-9");
    assert_string_equal(as.groups[0], "g1");
    assert_string_equal(as.groups[1], "g2");
    assert_string_equal(as.groups[2], "system:authenticated");
    assert_null(as.groups[3]);
    json_t *want = json_pack("{s:[s,s]}", "scopes/x", "read", "write");
    assert_true(json_equal(as.extra, want));
    json_decref(want);
    api_user_free(&as);

    api_header_t sa[] = {{"impersonate-user", "system:serviceaccount:ns1:robot"}};
    req = request_with(&alice, sa, 1);
    assert_int_equal(authz_impersonate(a, &req, &as, &err), 1);
    assert_string_equal(as.groups[0], "system:serviceaccounts");
    assert_string_equal(as.groups[1], "system:serviceaccounts:ns1");
    assert_string_equal(as.groups[2], "system:authenticated");
    api_user_free(&as);

    req = request_with(&alice, NULL, 0);
    assert_int_equal(authz_impersonate(a, &req, &as, &err), 0);
    assert_null(as.name);

    api_header_t no_user[] = {{"impersonate-group", "g1"}};
    req = request_with(&alice, no_user, 1);
    assert_int_equal(authz_impersonate(a, &req, &as, &err), -1);
    assert_int_equal(err.code, 400);
    lo_err_clear(&err);
    authz_free(a);
}

static void test_impersonation_refused_when_check_fails(void **state)
{
    (void)state;
    authz_t *a = unreachable_webhook();
    api_header_t h[] = {{"impersonate-user", "system:serviceaccount:ns1:robot"}};
    api_request_t req = request_with(&alice, h, 1);
    api_user_t as;
    lo_err_t err = {0};
    assert_int_equal(authz_impersonate(a, &req, &as, &err), -1);
    assert_int_equal(err.code, 403);
    assert_non_null(strstr(err.message, "serviceaccounts \"robot\" is forbidden: User \"alice\" cannot impersonate "
                                        "resource \"serviceaccounts\" in API group \"\" in the namespace \"ns1\": "
                                        "the authorization check failed"));
    assert_null(as.name);
    lo_err_clear(&err);
    authz_free(a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_verb_mapping),
        cmocka_unit_test(test_forbidden_wording),
        cmocka_unit_test(test_forbidden_details),
        cmocka_unit_test(test_modes),
        cmocka_unit_test(test_webhook_error_fails_closed),
        cmocka_unit_test(test_impersonation_identity),
        cmocka_unit_test(test_impersonation_refused_when_check_fails),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
