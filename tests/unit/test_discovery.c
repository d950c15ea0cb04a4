/*
 * test_discovery.c - the discovery documents as kubectl (1.27 to 1.33) and
 * the aggregator ask for them: which form each Accept gets, with which
 * Content-Type, what the documents say about the five kinds, ETag and 304,
 * 406 when nothing acceptable is offered.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "langop/api/api.h"
#include "langop/api/discovery.h"
#include "langop/derive/derive.h"
#include "langop/schema/schema.h"

#define CT_LEGACY "application/json"
#define CT_V2 "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
#define CT_V2BETA1 "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList"
#define ACCEPT_KUBECTL_132 CT_V2 "," CT_V2BETA1 ",application/json"
#define ACCEPT_KUBECTL_127 CT_V2BETA1 ",application/json"
#define ACCEPT_GV "application/json, */*"
#define SERVER_ADDRESS "127.0.0.1:6443"

/* Built once by the group setup and only read by the tests. */
static discovery_t *disc;

static int setup(void **state)
{
    (void)state;
    lo_err_t err = { 0 };
    if (schema_registry_load(&err) < 0) {
        print_error("schema_registry_load: %s\n", err.message);
        lo_err_clear(&err);
        return -1;
    }
    disc = discovery_new(SERVER_ADDRESS);
    return disc ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    discovery_free(disc);
    schema_registry_free();
    return 0;
}

static const char *header(const api_response_t *resp, const char *name)
{
    for (size_t i = 0; i < resp->header_count; i++)
        if (strcmp(resp->header_names[i], name) == 0)
            return resp->header_values[i];
    return NULL;
}

/* Serves path; the body parsed as JSON (new reference) or NULL when there is none. */
static json_t *get(const char *path, const char *accept, const char *if_none_match, api_response_t *resp)
{
    memset(resp, 0, sizeof(*resp));
    if (discovery_handle(disc, path, accept, if_none_match, resp) != 1)
        fail_msg("%s is not served", path);
    if (resp->body == NULL)
        return NULL;
    json_error_t jerr;
    json_t *body = json_loadb(resp->body, resp->body_len, 0, &jerr);
    if (body == NULL)
        fail_msg("%s: body is not JSON: %s", path, jerr.text);
    return body;
}

static const char *str(const json_t *obj, const char *key)
{
    return json_string_value(json_object_get(obj, key));
}

/* ---- which form for which Accept ---- */

enum form { LEGACY, V2, V2BETA1, NOT_ACCEPTABLE };

static void assert_form(const char *path, const char *accept, enum form want)
{
    api_response_t resp;
    json_t *body = get(path, accept, NULL, &resp);
    const char *what = accept ? accept : "(no Accept)";
    assert_non_null(body);
    if (want == NOT_ACCEPTABLE) {
        if (resp.status != 406)
            fail_msg("%s with %s: status %d, want 406", path, what, resp.status);
        assert_string_equal(resp.content_type, "application/json");
        assert_string_equal(str(body, "kind"), "Status");
        assert_string_equal(str(body, "status"), "Failure");
        assert_string_equal(str(body, "reason"), "NotAcceptable");
        assert_int_equal(json_integer_value(json_object_get(body, "code")), 406);
        const char *prefix = "only the following media types are accepted: application/json";
        if (strncmp(str(body, "message"), prefix, strlen(prefix)) != 0)
            fail_msg("406 message \"%s\"", str(body, "message"));
    } else {
        static const char *const types[] = { CT_LEGACY, CT_V2, CT_V2BETA1 };
        static const char *const aggregated_versions[] = { NULL, "apidiscovery.k8s.io/v2",
                                                           "apidiscovery.k8s.io/v2beta1" };
        if (resp.status != 200 || resp.content_type == NULL || strcmp(resp.content_type, types[want]) != 0)
            fail_msg("%s with %s: %d %s, want 200 %s", path, what, resp.status,
                     resp.content_type ? resp.content_type : "(none)", types[want]);
        if (want == LEGACY) {
            const char *kind = str(body, "kind");
            assert_true(strcmp(kind, "APIGroupList") == 0 || strcmp(kind, "APIVersions") == 0 ||
                        strcmp(kind, "APIGroup") == 0 || strcmp(kind, "APIResourceList") == 0);
        } else {
            assert_string_equal(str(body, "kind"), "APIGroupDiscoveryList");
            assert_string_equal(str(body, "apiVersion"), aggregated_versions[want]);
        }
    }
    json_decref(body);
    api_response_free(&resp);
}

static void test_form_by_first_acceptable_entry(void **state)
{
    (void)state;
    static const struct {
        const char *accept;
        enum form want;
    } cases[] = {
        { ACCEPT_KUBECTL_132, V2 },
        { ACCEPT_KUBECTL_127, V2BETA1 },
        { CT_V2BETA1 "," CT_V2 ",application/json", V2BETA1 },
        { "application/json," CT_V2, LEGACY },
        { "application/json", LEGACY },
        { ACCEPT_GV, LEGACY },
        { "*/*", LEGACY },
        { "application/*", LEGACY },
        { NULL, LEGACY },
        { "", LEGACY },
        /* spacing and case as other clients write them */
        { " application/json ; g=apidiscovery.k8s.io ; v=v2 ; as=APIGroupDiscoveryList , application/json", V2 },
        { "Application/JSON;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList", V2BETA1 },
        /* forms we do not serve are passed over */
        { "application/json;g=apidiscovery.k8s.io;v=v3;as=APIGroupDiscoveryList,application/json", LEGACY },
        { "application/vnd.kubernetes.protobuf;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,"
          "application/json",
          LEGACY },
        { "application/json;as=Table;v=v1;g=meta.k8s.io," CT_V2, V2 },
        /* nothing acceptable */
        { "application/yaml", NOT_ACCEPTABLE },
        { "application/vnd.kubernetes.protobuf", NOT_ACCEPTABLE },
        { "application/json;as=Table;v=v1;g=meta.k8s.io", NOT_ACCEPTABLE },
        { "application/json;g=example.com;v=v2;as=APIGroupDiscoveryList", NOT_ACCEPTABLE },
        { "text/html", NOT_ACCEPTABLE },
    };
    static const char *const paths[] = { "/apis", "/api" };
    for (size_t p = 0; p < 2; p++)
        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
            assert_form(paths[p], cases[i].accept, cases[i].want);
}

/* The per-group documents exist only in the legacy form. */
static void test_group_documents_are_legacy_only(void **state)
{
    (void)state;
    static const char *const paths[] = { "/api/v1", "/apis/langop.io", "/apis/langop.io/v1alpha1" };
    for (size_t p = 0; p < 3; p++) {
        assert_form(paths[p], ACCEPT_GV, LEGACY);
        assert_form(paths[p], "application/json", LEGACY);
        assert_form(paths[p], NULL, LEGACY);
        assert_form(paths[p], ACCEPT_KUBECTL_132, LEGACY); /* the plain entry at the end */
        assert_form(paths[p], CT_V2, NOT_ACCEPTABLE);
        assert_form(paths[p], "application/yaml", NOT_ACCEPTABLE);
    }
}

static void test_unknown_paths_are_not_discovery(void **state)
{
    (void)state;
    static const char *const paths[] = {
        "/", "/apisx", "/apix", "/api/v2", "/apis/langop.io/v1", "/apis/apps", "/apis/apps/v1",
        "/apis/langop.io/v1alpha1/languagemodels", "/apis/langop.io/v1alpha1/namespaces/default/languagemodels",
        "/version", "/healthz", "/openapi/v2", "",
    };
    for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
        api_response_t resp;
        memset(&resp, 0, sizeof(resp));
        if (discovery_handle(disc, paths[i], ACCEPT_GV, NULL, &resp) != 0)
            fail_msg("\"%s\" was answered as discovery", paths[i]);
        assert_int_equal(resp.status, 0);
        assert_null(resp.body);
        assert_int_equal(resp.header_count, 0);
    }
}

/* ---- the documents ---- */

static const struct kind_want {
    const char *kind, *plural, *singular, *short_name;
    int namespaced;
} kinds[] = {
    { "LanguageCluster", "languageclusters", "languagecluster", "lcluster", 0 },
    { "LanguageModel", "languagemodels", "languagemodel", "lmodel", 1 },
    { "LanguageAgent", "languageagents", "languageagent", "lagent", 1 },
    { "LanguageTool", "languagetools", "languagetool", "ltool", 1 },
    { "LanguagePersona", "languagepersonas", "languagepersona", "lpersona", 1 },
};
#define KIND_COUNT (sizeof(kinds) / sizeof(kinds[0]))

static int array_has(const json_t *array, const char *s)
{
    size_t i;
    json_t *v;
    json_array_foreach(array, i, v) {
        if (json_is_string(v) && strcmp(json_string_value(v), s) == 0)
            return 1;
    }
    return 0;
}

/* What kubectl needs to get, list, create, edit and delete; status takes get and update. */
static void assert_main_verbs(const json_t *verbs, const char *who)
{
    static const char *const needed[] = { "get", "list", "create", "update", "delete", "deletecollection" };
    for (size_t i = 0; i < sizeof(needed) / sizeof(needed[0]); i++)
        if (!array_has(verbs, needed[i]))
            fail_msg("%s lacks verb %s", who, needed[i]);
    /* the list is the one the module publishes */
    size_t n = 0;
    while (discovery_resource_verbs[n]) {
        if (!array_has(verbs, discovery_resource_verbs[n]))
            fail_msg("%s lacks published verb %s", who, discovery_resource_verbs[n]);
        n++;
    }
    assert_int_equal(json_array_size(verbs), n);
}

static void assert_status_verbs(const json_t *verbs, const char *who)
{
    if (!array_has(verbs, "get") || !array_has(verbs, "update"))
        fail_msg("%s lacks get or update", who);
    if (array_has(verbs, "list") || array_has(verbs, "create") || array_has(verbs, "delete"))
        fail_msg("%s offers a collection verb", who);
}

static const json_t *find_by(const json_t *array, const char *key, const char *value)
{
    size_t i;
    json_t *v;
    json_array_foreach(array, i, v) {
        if (str(v, key) && strcmp(str(v, key), value) == 0)
            return v;
    }
    return NULL;
}

static void test_group_version_resource_list(void **state)
{
    (void)state;
    api_response_t resp;
    json_t *body = get("/apis/langop.io/v1alpha1", ACCEPT_GV, NULL, &resp);
    assert_int_equal(resp.status, 200);
    assert_string_equal(str(body, "kind"), "APIResourceList");
    assert_string_equal(str(body, "apiVersion"), "v1");
    assert_string_equal(str(body, "groupVersion"), "langop.io/v1alpha1");
    const json_t *resources = json_object_get(body, "resources");
    size_t derived = 0;
    for (const derive_subresource_t *d = derive_subresources; d->name; d++)
        derived++;
    assert_int_equal(json_array_size(resources), 2 * KIND_COUNT + derived);
    for (const derive_subresource_t *d = derive_subresources; d->name; d++) {
        const schema_kind_t *k = schema_kind_by_kind(d->kind);
        char *name = lo_sprintf("%s/%s", k->plural, d->name);
        const json_t *r = find_by(resources, "name", name);
        if (r == NULL)
            fail_msg("%s missing", name);
        assert_string_equal(str(r, "kind"), d->response_kind);
        assert_int_equal(json_array_size(json_object_get(r, "verbs")), 1);
        assert_string_equal(json_string_value(json_array_get(json_object_get(r, "verbs"), 0)), "get");
        free(name);
    }
    for (size_t i = 0; i < KIND_COUNT; i++) {
        const json_t *r = find_by(resources, "name", kinds[i].plural);
        if (r == NULL)
            fail_msg("%s missing", kinds[i].plural);
        assert_string_equal(str(r, "kind"), kinds[i].kind);
        assert_string_equal(str(r, "singularName"), kinds[i].singular);
        assert_true(json_is_boolean(json_object_get(r, "namespaced")));
        if (json_is_true(json_object_get(r, "namespaced")) != kinds[i].namespaced)
            fail_msg("%s: namespaced should be %d", kinds[i].plural, kinds[i].namespaced);
        assert_main_verbs(json_object_get(r, "verbs"), kinds[i].plural);
        const json_t *short_names = json_object_get(r, "shortNames");
        assert_int_equal(json_array_size(short_names), 1);
        assert_string_equal(json_string_value(json_array_get(short_names, 0)), kinds[i].short_name);
        if (!array_has(json_object_get(r, "categories"), "langop"))
            fail_msg("%s is not in category langop", kinds[i].plural);

        char status_name[64];
        snprintf(status_name, sizeof(status_name), "%s/status", kinds[i].plural);
        const json_t *s = find_by(resources, "name", status_name);
        if (s == NULL)
            fail_msg("%s missing", status_name);
        assert_string_equal(str(s, "kind"), kinds[i].kind);
        assert_string_equal(str(s, "singularName"), "");
        if (json_is_true(json_object_get(s, "namespaced")) != kinds[i].namespaced)
            fail_msg("%s: namespaced should be %d", status_name, kinds[i].namespaced);
        assert_status_verbs(json_object_get(s, "verbs"), status_name);
        /* a subresource has no short name and is in no category: kubectl get all must not list it */
        assert_null(json_object_get(s, "shortNames"));
        assert_null(json_object_get(s, "categories"));
    }
    json_decref(body);
    api_response_free(&resp);
}

static void test_aggregated_document(void **state)
{
    (void)state;
    static const struct {
        const char *accept, *api_version;
    } forms[] = {
        { ACCEPT_KUBECTL_132, "apidiscovery.k8s.io/v2" },
        { ACCEPT_KUBECTL_127, "apidiscovery.k8s.io/v2beta1" },
    };
    for (size_t f = 0; f < 2; f++) {
        api_response_t resp;
        json_t *body = get("/apis", forms[f].accept, NULL, &resp);
        assert_int_equal(resp.status, 200);
        assert_string_equal(str(body, "apiVersion"), forms[f].api_version);
        assert_true(json_is_object(json_object_get(body, "metadata")));
        const json_t *items = json_object_get(body, "items");
        assert_int_equal(json_array_size(items), 1);
        const json_t *group = json_array_get(items, 0);
        assert_string_equal(str(json_object_get(group, "metadata"), "name"), "langop.io");
        const json_t *versions = json_object_get(group, "versions");
        assert_int_equal(json_array_size(versions), 1);
        const json_t *version = json_array_get(versions, 0);
        assert_string_equal(str(version, "version"), "v1alpha1");
        assert_string_equal(str(version, "freshness"), "Current");
        const json_t *resources = json_object_get(version, "resources");
        assert_int_equal(json_array_size(resources), KIND_COUNT);
        for (size_t i = 0; i < KIND_COUNT; i++) {
            const json_t *r = find_by(resources, "resource", kinds[i].plural);
            if (r == NULL)
                fail_msg("%s: %s missing", forms[f].api_version, kinds[i].plural);
            const json_t *rk = json_object_get(r, "responseKind");
            assert_string_equal(str(rk, "group"), "langop.io");
            assert_string_equal(str(rk, "version"), "v1alpha1");
            assert_string_equal(str(rk, "kind"), kinds[i].kind);
            assert_string_equal(str(r, "scope"), kinds[i].namespaced ? "Namespaced" : "Cluster");
            assert_string_equal(str(r, "singularResource"), kinds[i].singular);
            assert_main_verbs(json_object_get(r, "verbs"), kinds[i].plural);
            assert_string_equal(json_string_value(json_array_get(json_object_get(r, "shortNames"), 0)),
                                kinds[i].short_name);
            if (!array_has(json_object_get(r, "categories"), "langop"))
                fail_msg("%s is not in category langop", kinds[i].plural);
            const json_t *subs = json_object_get(r, "subresources");
            size_t want = 1;
            for (const derive_subresource_t *d = derive_subresources; d->name; d++) {
                if (strcmp(d->kind, kinds[i].kind) == 0) {
                    const json_t *ds = json_array_get(subs, want++);
                    assert_string_equal(str(ds, "subresource"), d->name);
                    assert_string_equal(str(json_object_get(ds, "responseKind"), "kind"), d->response_kind);
                }
            }
            assert_int_equal(json_array_size(subs), want);
            const json_t *sub = json_array_get(subs, 0);
            assert_string_equal(str(sub, "subresource"), "status");
            assert_string_equal(str(json_object_get(sub, "responseKind"), "kind"), kinds[i].kind);
            assert_status_verbs(json_object_get(sub, "verbs"), "status");
        }
        json_decref(body);
        api_response_free(&resp);
    }
}

static void test_legacy_root_documents(void **state)
{
    (void)state;
    api_response_t resp;

    json_t *body = get("/apis", "application/json", NULL, &resp);
    assert_string_equal(str(body, "kind"), "APIGroupList");
    assert_string_equal(str(body, "apiVersion"), "v1");
    const json_t *groups = json_object_get(body, "groups");
    assert_int_equal(json_array_size(groups), 1);
    const json_t *g = json_array_get(groups, 0);
    assert_string_equal(str(g, "name"), "langop.io");
    assert_string_equal(str(json_array_get(json_object_get(g, "versions"), 0), "groupVersion"), "langop.io/v1alpha1");
    assert_string_equal(str(json_array_get(json_object_get(g, "versions"), 0), "version"), "v1alpha1");
    assert_string_equal(str(json_object_get(g, "preferredVersion"), "groupVersion"), "langop.io/v1alpha1");
    json_decref(body);
    api_response_free(&resp);

    body = get("/apis/langop.io", "application/json", NULL, &resp);
    assert_string_equal(str(body, "kind"), "APIGroup");
    assert_string_equal(str(body, "name"), "langop.io");
    assert_string_equal(str(json_object_get(body, "preferredVersion"), "version"), "v1alpha1");
    json_decref(body);
    api_response_free(&resp);

    body = get("/api", "application/json", NULL, &resp);
    assert_string_equal(str(body, "kind"), "APIVersions");
    assert_string_equal(json_string_value(json_array_get(json_object_get(body, "versions"), 0)), "v1");
    const json_t *cidr = json_array_get(json_object_get(body, "serverAddressByClientCIDRs"), 0);
    assert_string_equal(str(cidr, "clientCIDR"), "0.0.0.0/0");
    assert_string_equal(str(cidr, "serverAddress"), SERVER_ADDRESS);
    json_decref(body);
    api_response_free(&resp);

    body = get("/api/v1", "application/json", NULL, &resp);
    assert_string_equal(str(body, "kind"), "APIResourceList");
    assert_string_equal(str(body, "groupVersion"), "v1");
    assert_true(json_is_array(json_object_get(body, "resources")));
    json_decref(body);
    api_response_free(&resp);

    /* /api in aggregated form: one group without a name (the core group) */
    body = get("/api", ACCEPT_KUBECTL_132, NULL, &resp);
    const json_t *item = json_array_get(json_object_get(body, "items"), 0);
    assert_non_null(item);
    assert_null(json_object_get(json_object_get(item, "metadata"), "name"));
    assert_string_equal(str(json_array_get(json_object_get(item, "versions"), 0), "version"), "v1");
    json_decref(body);
    api_response_free(&resp);
}

/* ---- ETag and If-None-Match ---- */

/* The ETag of path as served for accept; caller frees. */
static char *etag_of(const char *path, const char *accept)
{
    api_response_t resp;
    json_t *body = get(path, accept, NULL, &resp);
    json_decref(body);
    const char *etag = header(&resp, "etag");
    char *copy = etag ? strdup(etag) : NULL;
    api_response_free(&resp);
    assert_non_null(copy);
    return copy;
}

static void test_etag(void **state)
{
    (void)state;
    static const struct {
        const char *path, *accept;
    } docs[] = {
        { "/apis", "application/json" },
        { "/apis", ACCEPT_KUBECTL_132 },
        { "/apis", ACCEPT_KUBECTL_127 },
        { "/api", "application/json" },
        { "/api", ACCEPT_KUBECTL_132 },
        { "/api/v1", ACCEPT_GV },
        { "/apis/langop.io", ACCEPT_GV },
        { "/apis/langop.io/v1alpha1", ACCEPT_GV },
    };
    enum { N = sizeof(docs) / sizeof(docs[0]) };
    char *etags[N];
    for (size_t i = 0; i < N; i++) {
        etags[i] = etag_of(docs[i].path, docs[i].accept);
        size_t len = strlen(etags[i]);
        /* a quoted entity tag, stable from one request to the next */
        assert_true(len > 2 && etags[i][0] == '"' && etags[i][len - 1] == '"');
        char *again = etag_of(docs[i].path, docs[i].accept);
        assert_string_equal(again, etags[i]);
        free(again);
    }
    /* each representation has its own tag: a cached v2 body must not be revalidated for a legacy client */
    for (size_t i = 0; i < N; i++)
        for (size_t j = i + 1; j < N; j++)
            if (strcmp(etags[i], etags[j]) == 0)
                fail_msg("%s (%s) and %s (%s) share ETag %s", docs[i].path, docs[i].accept, docs[j].path,
                         docs[j].accept, etags[i]);

    for (size_t i = 0; i < N; i++) {
        api_response_t resp;
        /* matching tag: 304 without a body, still with the ETag */
        json_t *body = get(docs[i].path, docs[i].accept, etags[i], &resp);
        assert_null(body);
        assert_int_equal(resp.status, 304);
        assert_null(resp.body);
        assert_int_equal(resp.body_len, 0);
        assert_null(resp.content_type);
        assert_string_equal(header(&resp, "etag"), etags[i]);
        api_response_free(&resp);

        /* one of several tags */
        char list[256];
        snprintf(list, sizeof(list), "\"0000\", %s", etags[i]);
        body = get(docs[i].path, docs[i].accept, list, &resp);
        assert_int_equal(resp.status, 304);
        json_decref(body);
        api_response_free(&resp);

        /* a stale tag, or another representation's: the full document */
        body = get(docs[i].path, docs[i].accept, "\"0000\"", &resp);
        assert_int_equal(resp.status, 200);
        assert_non_null(body);
        json_decref(body);
        api_response_free(&resp);
        body = get(docs[i].path, docs[i].accept, etags[(i + 1) % N], &resp);
        assert_int_equal(resp.status, 200);
        assert_non_null(body);
        json_decref(body);
        api_response_free(&resp);
    }

    /* the body varies with Accept: caches must know */
    api_response_t resp;
    json_t *body = get("/apis", ACCEPT_KUBECTL_132, NULL, &resp);
    const char *vary = header(&resp, "vary");
    assert_non_null(vary);
    assert_non_null(strstr(vary, "Accept"));
    json_decref(body);
    api_response_free(&resp);

    for (size_t i = 0; i < N; i++)
        free(etags[i]);
}

/* A rebuilt server with the same schemas serves the same tags (clients keep them across restarts). */
static void test_etag_stable_across_builds(void **state)
{
    (void)state;
    char *before = etag_of("/apis", ACCEPT_KUBECTL_132);
    discovery_t *saved = disc;
    disc = discovery_new(SERVER_ADDRESS);
    char *after = etag_of("/apis", ACCEPT_KUBECTL_132);
    discovery_free(disc);
    disc = saved;
    int same = strcmp(before, after) == 0;
    free(before);
    free(after);
    assert_true(same);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_form_by_first_acceptable_entry),
        cmocka_unit_test(test_group_documents_are_legacy_only),
        cmocka_unit_test(test_unknown_paths_are_not_discovery),
        cmocka_unit_test(test_group_version_resource_list),
        cmocka_unit_test(test_aggregated_document),
        cmocka_unit_test(test_legacy_root_documents),
        cmocka_unit_test(test_etag),
        cmocka_unit_test(test_etag_stable_across_builds),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
