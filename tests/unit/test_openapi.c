/*
 * test_openapi.c - the OpenAPI documents as kubectl, the aggregator and
 * python clients read them: the /openapi/v3 index and the hashed URL it
 * points to (301 on a stale hash, 304 on a matching ETag, 406 for v3 as
 * protobuf; v2 as protobuf is test_openapiproto's), one path and operation per served verb with the GVK object and
 * the parameters kubectl looks for, schemas that resolve and carry
 * descriptions, and /openapi/v2 saying the same thing in Swagger 2.0.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "langop/api/api.h"
#include "langop/api/openapi.h"
#include "langop/derive/derive.h"
#include "langop/request/reqinfo.h"
#include "langop/schema/schema.h"

#define GV_PATH "/openapi/v3/apis/langop.io/v1alpha1"
#define META "io.k8s.apimachinery.pkg.apis.meta.v1."
#define ACCEPT_KUBECTL_INDEX "application/json, */*"
#define ACCEPT_V2_PROTOBUF "application/com.github.proto-openapi.spec.v2@v1.0+protobuf"
#define ACCEPT_V3_PROTOBUF "application/com.github.proto-openapi.spec.v3@v1.0+protobuf"

/* Built once by the group setup and only read by the tests. */
static openapi_t *oa;
static json_t *v3;   /* the group-version document */
static json_t *v2;

static const char *header(const api_response_t *resp, const char *name)
{
    for (size_t i = 0; i < resp->header_count; i++)
        if (strcmp(resp->header_names[i], name) == 0)
            return resp->header_values[i];
    return NULL;
}

/* GETs target; returns whether it was handled; the body as JSON (new) in *body when there is one. */
static int get_raw(const char *target, const char *accept, const char *if_none_match, api_response_t *resp,
                   json_t **body)
{
    reqinfo_t info;
    lo_err_t err = {0};
    memset(resp, 0, sizeof(*resp));
    if (body)
        *body = NULL;
    if (reqinfo_parse("GET", target, strlen(target), &info, &err) < 0)
        fail_msg("%s: %s", target, err.message);
    int handled = openapi_handle(oa, &info, accept, if_none_match, resp);
    reqinfo_free(&info);
    if (handled && body && resp->body) {
        json_error_t jerr;
        *body = json_loadb(resp->body, resp->body_len, 0, &jerr);
        if (*body == NULL)
            fail_msg("%s: body is not JSON: %s", target, jerr.text);
    }
    return handled;
}

static json_t *get(const char *target, const char *accept, const char *if_none_match, api_response_t *resp)
{
    json_t *body;
    if (!get_raw(target, accept, if_none_match, resp, &body))
        fail_msg("%s is not served", target);
    return body;
}

static const char *str(const json_t *obj, const char *key)
{
    return json_string_value(json_object_get(obj, key));
}

static const char *index_url(void)
{
    static char url[256];
    api_response_t resp;
    json_t *index = get("/openapi/v3", ACCEPT_KUBECTL_INDEX, NULL, &resp);
    const char *u = str(json_object_get(json_object_get(index, "paths"), "apis/langop.io/v1alpha1"),
                        "serverRelativeURL");
    assert_non_null(u);
    snprintf(url, sizeof(url), "%s", u);
    json_decref(index);
    api_response_free(&resp);
    return url;
}

static int setup(void **state)
{
    (void)state;
    lo_err_t err = {0};
    if (schema_registry_load(&err) < 0) {
        print_error("schema_registry_load: %s\n", err.message);
        lo_err_clear(&err);
        return -1;
    }
    oa = openapi_new();
    if (oa == NULL)
        return -1;
    api_response_t resp;
    v3 = get(GV_PATH, "application/json", NULL, &resp);
    api_response_free(&resp);
    v2 = get("/openapi/v2", "application/json", NULL, &resp);
    api_response_free(&resp);
    return v3 && v2 ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    json_decref(v3);
    json_decref(v2);
    openapi_free(oa);
    schema_registry_free();
    return 0;
}

/* ---- serving ---- */

static void test_index_round_trip(void **state)
{
    (void)state;
    api_response_t resp;
    json_t *index = get("/openapi/v3", ACCEPT_KUBECTL_INDEX, NULL, &resp);
    assert_int_equal(resp.status, 200);
    assert_string_equal(resp.content_type, "application/json");
    assert_non_null(header(&resp, "etag"));
    assert_int_equal(json_object_size(json_object_get(index, "paths")), 1);
    json_decref(index);
    api_response_free(&resp);

    const char *url = index_url();
    const char *hash = strstr(url, "?hash=");
    assert_non_null(hash);
    assert_memory_equal(url, GV_PATH "?", strlen(GV_PATH) + 1);
    hash += strlen("?hash=");
    assert_true(strlen(hash) >= 32);

    json_t *doc = get(url, "application/json", NULL, &resp);
    assert_int_equal(resp.status, 200);
    assert_string_equal(str(doc, "openapi"), "3.0.0");
    assert_string_equal(header(&resp, "cache-control"), "public, immutable");
    const char *expires = header(&resp, "expires");
    assert_non_null(expires);
    assert_non_null(strstr(expires, " GMT"));
    assert_string_equal(header(&resp, "vary"), "Accept");
    /* The ETag is the hash the index advertised, quoted. */
    char quoted[200];
    snprintf(quoted, sizeof(quoted), "\"%s\"", hash);
    assert_string_equal(header(&resp, "etag"), quoted);
    /* The same document as without a hash. */
    assert_true(json_equal(doc, v3));
    json_decref(doc);
    api_response_free(&resp);
}

static void test_no_hash_is_not_immutable(void **state)
{
    (void)state;
    api_response_t resp;
    json_t *doc = get(GV_PATH, NULL, NULL, &resp);
    assert_int_equal(resp.status, 200);
    assert_non_null(header(&resp, "etag"));
    assert_null(header(&resp, "cache-control"));
    assert_null(header(&resp, "expires"));
    json_decref(doc);
    api_response_free(&resp);
}

static void test_stale_hash_redirects(void **state)
{
    (void)state;
    api_response_t resp;
    assert_true(get_raw(GV_PATH "?hash=0123456789ABCDEF&timeout=32s", "application/json", NULL, &resp, NULL));
    assert_int_equal(resp.status, 301);
    assert_string_equal(header(&resp, "location"), index_url());
    assert_null(header(&resp, "cache-control"));
    api_response_free(&resp);
}

static void test_not_modified(void **state)
{
    (void)state;
    static const char *const targets[] = {"/openapi/v3", GV_PATH, "/openapi/v2", NULL};
    for (size_t i = 0; targets[i]; i++) {
        api_response_t resp;
        json_t *doc = get(targets[i], "application/json", NULL, &resp);
        char *etag = strdup(header(&resp, "etag"));
        json_decref(doc);
        api_response_free(&resp);

        doc = get(targets[i], "application/json", etag, &resp);
        assert_int_equal(resp.status, 304);
        assert_null(resp.body);
        assert_null(doc);
        assert_string_equal(header(&resp, "etag"), etag);
        api_response_free(&resp);

        /* A list with a weak form of the tag matches too; another tag does not. */
        char list[300];
        snprintf(list, sizeof(list), "\"other\", W/%s", etag);
        doc = get(targets[i], "application/json", list, &resp);
        assert_int_equal(resp.status, 304);
        api_response_free(&resp);
        doc = get(targets[i], "application/json", "\"other\"", &resp);
        assert_int_equal(resp.status, 200);
        json_decref(doc);
        api_response_free(&resp);
        free(etag);
    }
}

static void test_not_acceptable(void **state)
{
    (void)state;
    static const struct {
        const char *target;
        const char *accept;
        int status;
    } cases[] = {
        {GV_PATH, ACCEPT_V3_PROTOBUF, 406},
        {"/openapi/v3", "application/vnd.kubernetes.protobuf", 406},
        {"/openapi/v2", "application/vnd.kubernetes.protobuf", 406},
        {"/openapi/v2", "application/json, " ACCEPT_V2_PROTOBUF, 200},
        {"/openapi/v2", "*/*", 200},
        {GV_PATH, "application/*", 200},
        {GV_PATH, NULL, 200},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        api_response_t resp;
        json_t *body = get(cases[i].target, cases[i].accept, NULL, &resp);
        assert_int_equal(resp.status, cases[i].status);
        if (cases[i].status == 406) {
            assert_string_equal(str(body, "kind"), "Status");
            assert_string_equal(str(body, "reason"), "NotAcceptable");
        }
        json_decref(body);
        api_response_free(&resp);
    }
}

static void test_other_paths(void **state)
{
    (void)state;
    api_response_t resp;
    json_t *body;
    assert_false(get_raw("/apis/langop.io/v1alpha1", "application/json", NULL, &resp, &body));
    api_response_free(&resp);
    assert_false(get_raw("/openapi/v2x", "application/json", NULL, &resp, &body));
    api_response_free(&resp);
    assert_true(get_raw("/openapi/v3/apis/apps/v1", "application/json", NULL, &resp, &body));
    assert_int_equal(resp.status, 404);
    assert_string_equal(str(body, "reason"), "NotFound");
    json_decref(body);
    api_response_free(&resp);

    reqinfo_t info;
    lo_err_t err = {0};
    assert_int_equal(reqinfo_parse("POST", "/openapi/v2", 11, &info, &err), 0);
    memset(&resp, 0, sizeof(resp));
    assert_int_equal(openapi_handle(oa, &info, NULL, NULL, &resp), 0);
    reqinfo_free(&info);
    api_response_free(&resp);
}

static void test_documents_are_stable(void **state)
{
    (void)state;
    const char *before = index_url();
    char url[256];
    snprintf(url, sizeof(url), "%s", before);
    openapi_t *again = openapi_new();
    openapi_t *first = oa;
    oa = again;
    assert_string_equal(index_url(), url);
    oa = first;
    openapi_free(again);
}

/* ---- paths and operations ---- */

static const json_t *path_item(const json_t *doc, const char *fmt, const char *plural)
{
    char path[256];
    snprintf(path, sizeof(path), fmt, plural);
    return json_object_get(json_object_get(doc, "paths"), path);
}

static int has_param(const json_t *params, const char *name, const char *in)
{
    size_t i;
    json_t *p;
    json_array_foreach(params, i, p)
        if (strcmp(str(p, "name"), name) == 0 && strcmp(str(p, "in"), in) == 0)
            return 1;
    return 0;
}

static void check_op(const schema_kind_t *k, const json_t *item, const char *method, const char *action)
{
    const json_t *op = json_object_get(item, method);
    if (op == NULL)
        fail_msg("%s: no %s operation", k->kind, method);
    assert_string_equal(str(op, "x-kubernetes-action"), action);
    const json_t *g = json_object_get(op, "x-kubernetes-group-version-kind");
    assert_true(json_is_object(g));
    assert_string_equal(str(g, "group"), "langop.io");
    assert_string_equal(str(g, "version"), "v1alpha1");
    assert_string_equal(str(g, "kind"), k->kind);
    assert_non_null(str(op, "operationId"));
    assert_non_null(json_object_get(json_object_get(op, "responses"), "200"));

    const json_t *params = json_object_get(op, "parameters");
    if (strcmp(action, "list") == 0) {
        static const char *const list[] = {"labelSelector", "fieldSelector", "limit", "continue",
                                           "resourceVersion", "resourceVersionMatch", "timeoutSeconds", "watch",
                                           "allowWatchBookmarks", "sendInitialEvents", NULL};
        for (size_t i = 0; list[i]; i++)
            if (!has_param(params, list[i], "query"))
                fail_msg("%s list: no %s", k->kind, list[i]);
    }
    if (!strcmp(action, "post") || !strcmp(action, "put") || !strcmp(action, "patch")) {
        assert_true(has_param(params, "dryRun", "query"));
        assert_true(has_param(params, "fieldManager", "query"));
        assert_true(has_param(params, "fieldValidation", "query"));
    }
    if (!strcmp(action, "delete") || !strcmp(action, "deletecollection")) {
        const json_t *body = json_object_get(json_object_get(json_object_get(op, "requestBody"), "content"),
                                             "application/json");
        assert_string_equal(str(json_object_get(body, "schema"), "$ref"),
                            "#/components/schemas/" META "DeleteOptions");
    }
}

static void test_every_kind_has_its_paths(void **state)
{
    (void)state;
    assert_int_equal(schema_kind_count(), 5);
    size_t expected_paths = 0;
    for (size_t i = 0; i < schema_kind_count(); i++) {
        const schema_kind_t *k = schema_kind_at(i);
        const char *base = k->namespaced ? "/apis/langop.io/v1alpha1/namespaces/{namespace}/%s"
                                         : "/apis/langop.io/v1alpha1/%s";
        char fmt[200];
        const json_t *coll = path_item(v3, base, k->plural);
        assert_non_null(coll);
        check_op(k, coll, "get", "list");
        check_op(k, coll, "post", "post");
        check_op(k, coll, "delete", "deletecollection");

        snprintf(fmt, sizeof(fmt), "%s/{name}", base);
        const json_t *item = path_item(v3, fmt, k->plural);
        assert_non_null(item);
        assert_true(has_param(json_object_get(item, "parameters"), "name", "path"));
        assert_int_equal(has_param(json_object_get(item, "parameters"), "namespace", "path"), k->namespaced);
        check_op(k, item, "get", "get");
        check_op(k, item, "put", "put");
        check_op(k, item, "patch", "patch");
        check_op(k, item, "delete", "delete");
        expected_paths += 2;

        snprintf(fmt, sizeof(fmt), "%s/{name}/status", base);
        const json_t *status = path_item(v3, fmt, k->plural);
        assert_int_equal(status != NULL, k->has_status);
        if (status) {
            check_op(k, status, "get", "get");
            check_op(k, status, "put", "put");
            check_op(k, status, "patch", "patch");
            assert_null(json_object_get(status, "delete"));
            expected_paths++;
        }
        for (const derive_subresource_t *d = derive_subresources; d->name; d++) {
            if (strcmp(d->kind, k->kind) != 0)
                continue;
            snprintf(fmt, sizeof(fmt), "%s/{name}/%s", base, d->name);
            const json_t *derived = path_item(v3, fmt, k->plural);
            if (derived == NULL)
                fail_msg("%s has no %s path", k->plural, d->name);
            const json_t *get = json_object_get(derived, "get");
            assert_string_equal(json_string_value(json_object_get(get, "x-kubernetes-action")), "get");
            assert_string_equal(json_string_value(json_object_get(json_object_get(get, "x-kubernetes-group-version-kind"),
                                                                  "kind")),
                                d->response_kind);
            assert_null(json_object_get(derived, "put")); /* computed on read: read-only */
            assert_null(json_object_get(derived, "patch"));
            expected_paths++;
        }
        const json_t *all = path_item(v3, "/apis/langop.io/v1alpha1/%s", k->plural);
        assert_non_null(all);
        if (k->namespaced) {
            check_op(k, all, "get", "list");
            assert_null(json_object_get(all, "post"));
            assert_null(json_object_get(all, "parameters"));
            expected_paths++;
        }
    }
    /* No path for a kind that does not exist, and no namespaced path for the cluster-scoped kind. */
    assert_int_equal(json_object_size(json_object_get(v3, "paths")), expected_paths);
    assert_null(path_item(v3, "/apis/langop.io/v1alpha1/namespaces/{namespace}/%s", "languageclusters"));
}

static void test_operation_ids(void **state)
{
    (void)state;
    const json_t *item = path_item(v3, "/apis/langop.io/v1alpha1/namespaces/{namespace}/%s/{name}",
                                   "languagemodels");
    assert_string_equal(str(json_object_get(item, "get"), "operationId"),
                        "readLangopIoV1alpha1NamespacedLanguageModel");
    const json_t *coll = path_item(v3, "/apis/langop.io/v1alpha1/namespaces/{namespace}/%s", "languagemodels");
    assert_string_equal(str(json_object_get(coll, "delete"), "operationId"),
                        "deleteLangopIoV1alpha1CollectionNamespacedLanguageModel");
    const json_t *all = path_item(v3, "/apis/langop.io/v1alpha1/%s", "languagemodels");
    assert_string_equal(str(json_object_get(all, "get"), "operationId"),
                        "listLangopIoV1alpha1LanguageModelForAllNamespaces");
    const json_t *status = path_item(v3, "/apis/langop.io/v1alpha1/%s/{name}/status", "languageclusters");
    assert_string_equal(str(json_object_get(status, "patch"), "operationId"),
                        "patchLangopIoV1alpha1LanguageClusterStatus");

    /* operationIds are unique across the document. */
    json_t *seen = json_object();
    const char *path;
    json_t *it;
    json_object_foreach(json_object_get(v3, "paths"), path, it) {
        const char *method;
        json_t *op;
        json_object_foreach(it, method, op) {
            const char *id = str(op, "operationId");
            if (id == NULL)
                continue;
            if (json_object_get(seen, id))
                fail_msg("operationId %s appears twice", id);
            json_object_set_new(seen, id, json_true());
        }
    }
    json_decref(seen);
}

/* kubectl's query-param verifier and patch-type choice read the PATCH operations. */
static void test_patch_operations(void **state)
{
    (void)state;
    size_t patches = 0;
    const char *path;
    json_t *it;
    json_object_foreach(json_object_get(v3, "paths"), path, it) {
        const json_t *op = json_object_get(it, "patch");
        if (op == NULL)
            continue;
        patches++;
        const json_t *params = json_object_get(op, "parameters");
        static const char *const wanted[] = {"dryRun", "fieldManager", "fieldValidation", "force", NULL};
        for (size_t i = 0; wanted[i]; i++)
            if (!has_param(params, wanted[i], "query"))
                fail_msg("PATCH %s lacks the operation-level %s parameter", path, wanted[i]);
        /* Not on the path level, where kubectl does not look. */
        assert_false(has_param(json_object_get(it, "parameters"), "fieldValidation", "query"));

        const json_t *content = json_object_get(json_object_get(op, "requestBody"), "content");
        assert_non_null(json_object_get(content, "application/json-patch+json"));
        assert_non_null(json_object_get(content, "application/merge-patch+json"));
        assert_non_null(json_object_get(content, "application/apply-patch+yaml"));
        assert_null(json_object_get(content, "application/strategic-merge-patch+json"));
        assert_int_equal(json_object_size(content), 3);
        assert_string_equal(str(json_object_get(json_object_get(content, "application/merge-patch+json"), "schema"),
                                "$ref"),
                            "#/components/schemas/" META "Patch");
    }
    /* item and status of the four kinds with status, item of any other. */
    size_t expected = 0;
    for (size_t i = 0; i < schema_kind_count(); i++)
        expected += 1 + (size_t)schema_kind_at(i)->has_status;
    assert_int_equal(patches, expected);
}

/* ---- schemas ---- */

/* Counts the $refs under v; fails on one that does not start with prefix or names no entry of target. */
static size_t check_refs(const json_t *v, const char *prefix, const json_t *target, const char *where)
{
    size_t n = 0;
    if (json_is_object(v)) {
        const char *key;
        json_t *e;
        json_object_foreach((json_t *)v, key, e) {
            if (strcmp(key, "$ref") == 0) {
                const char *ref = json_string_value(e);
                if (ref == NULL || strncmp(ref, prefix, strlen(prefix)) != 0)
                    fail_msg("%s: $ref %s does not start with %s", where, ref ? ref : "(not a string)", prefix);
                if (json_object_get(target, ref + strlen(prefix)) == NULL)
                    fail_msg("%s: $ref %s points nowhere", where, ref);
                n++;
            } else {
                n += check_refs(e, prefix, target, where);
            }
        }
    } else if (json_is_array(v)) {
        size_t i;
        json_t *e;
        json_array_foreach(v, i, e)
            n += check_refs(e, prefix, target, where);
    }
    return n;
}

static void test_refs_resolve(void **state)
{
    (void)state;
    const json_t *schemas = json_object_get(json_object_get(v3, "components"), "schemas");
    assert_true(check_refs(v3, "#/components/schemas/", schemas, "v3") > 100);
    assert_true(check_refs(v2, "#/definitions/", json_object_get(v2, "definitions"), "v2") > 100);
}

static const json_t *component(const char *name)
{
    const json_t *s = json_object_get(json_object_get(json_object_get(v3, "components"), "schemas"), name);
    if (s == NULL)
        fail_msg("no component %s", name);
    return s;
}

static void test_meta_schemas(void **state)
{
    (void)state;
    static const char *const names[] = {"ObjectMeta", "ListMeta", "ManagedFieldsEntry", "OwnerReference",
                                        "Time", "FieldsV1", "Status", "StatusDetails", "StatusCause",
                                        "DeleteOptions", "Preconditions", "Patch", NULL};
    for (size_t i = 0; names[i]; i++) {
        char name[128];
        snprintf(name, sizeof(name), META "%s", names[i]);
        const json_t *s = component(name);
        assert_non_null(str(s, "description"));
        assert_non_null(str(s, "type"));
        const char *key;
        json_t *prop;
        json_object_foreach(json_object_get(s, "properties"), key, prop)
            if (str(prop, "description") == NULL)
                fail_msg("%s.%s has no description", names[i], key);
    }
    const json_t *om = json_object_get(component(META "ObjectMeta"), "properties");
    assert_string_equal(str(json_object_get(om, "labels"), "type"), "object");
    assert_string_equal(str(json_object_get(json_object_get(om, "labels"), "additionalProperties"), "type"),
                        "string");
    const json_t *owners = json_object_get(om, "ownerReferences");
    assert_string_equal(str(owners, "x-kubernetes-list-type"), "map");
    assert_string_equal(str(json_object_get(owners, "items"), "$ref"), "#/components/schemas/" META "OwnerReference");
    assert_string_equal(str(component(META "Time"), "format"), "date-time");
    const json_t *gvks = json_object_get(component(META "Status"), "x-kubernetes-group-version-kind");
    assert_string_equal(str(json_array_get(gvks, 0), "kind"), "Status");
}

/* Fails unless every property below s (recursively, through items) has a description. */
static void check_described(const json_t *s, const char *where)
{
    const char *key;
    json_t *prop;
    json_object_foreach(json_object_get(s, "properties"), key, prop) {
        char path[512];
        snprintf(path, sizeof(path), "%s.%s", where, key);
        if (str(prop, "description") == NULL)
            fail_msg("%s has no description", path);
        check_described(prop, path);
    }
    if (json_object_get(s, "items"))
        check_described(json_object_get(s, "items"), where);
}

static void test_kind_schemas(void **state)
{
    (void)state;
    for (size_t i = 0; i < schema_kind_count(); i++) {
        const schema_kind_t *k = schema_kind_at(i);
        char name[128], list_name[128];
        snprintf(name, sizeof(name), "io.langop.v1alpha1.%s", k->kind);
        snprintf(list_name, sizeof(list_name), "io.langop.v1alpha1.%s", k->list_kind);
        const json_t *s = component(name);
        const json_t *gvks = json_object_get(s, "x-kubernetes-group-version-kind");
        assert_true(json_is_array(gvks));
        assert_string_equal(str(json_array_get(gvks, 0), "group"), "langop.io");
        assert_string_equal(str(json_array_get(gvks, 0), "kind"), k->kind);
        assert_non_null(str(s, "description"));

        const json_t *props = json_object_get(s, "properties");
        const json_t *meta = json_object_get(props, "metadata");
        assert_non_null(str(meta, "description"));
        assert_null(json_object_get(meta, "$ref"));
        assert_string_equal(str(json_array_get(json_object_get(meta, "allOf"), 0), "$ref"),
                            "#/components/schemas/" META "ObjectMeta");
        assert_string_equal(str(json_object_get(props, "apiVersion"), "type"), "string");
        assert_non_null(str(json_object_get(props, "kind"), "description"));
        check_described(json_object_get(props, "spec"), "spec");

        const json_t *l = component(list_name);
        gvks = json_object_get(l, "x-kubernetes-group-version-kind");
        assert_string_equal(str(json_array_get(gvks, 0), "kind"), k->list_kind);
        const json_t *items = json_object_get(json_object_get(l, "properties"), "items");
        assert_string_equal(str(items, "type"), "array");
        char ref[200];
        snprintf(ref, sizeof(ref), "#/components/schemas/%s", name);
        assert_string_equal(str(json_object_get(items, "items"), "$ref"), ref);
        assert_string_equal(
            str(json_array_get(json_object_get(json_object_get(json_object_get(l, "properties"), "metadata"),
                                               "allOf"),
                               0),
                "$ref"),
            "#/components/schemas/" META "ListMeta");
    }
}

/* What `kubectl explain lmodel.spec.provider` and friends print comes from here. */
static void test_schema_content_survives(void **state)
{
    (void)state;
    const json_t *lm = component("io.langop.v1alpha1.LanguageModel");
    const json_t *required = json_object_get(lm, "required");
    assert_string_equal(json_string_value(json_array_get(required, 0)), "spec");
    const json_t *spec = json_object_get(json_object_get(lm, "properties"), "spec");
    const json_t *provider = json_object_get(json_object_get(spec, "properties"), "provider");
    assert_non_null(strstr(str(provider, "description"), "provider"));
    const json_t *enums = json_object_get(provider, "enum");
    assert_true(json_array_size(enums) >= 5);
    assert_string_equal(json_string_value(json_array_get(enums, 0)), "openai");
    assert_string_equal(json_string_value(json_array_get(json_object_get(spec, "required"), 0)), "modelName");

    const json_t *sprops = json_object_get(spec, "properties");
    assert_string_equal(str(json_object_get(sprops, "fallbacks"), "x-kubernetes-list-type"), "set");
    assert_true(json_is_true(json_object_get(json_object_get(sprops, "params"),
                                             "x-kubernetes-preserve-unknown-fields")));
    assert_string_equal(str(json_object_get(sprops, "timeout"), "default"), "5m");
    const json_t *conditions =
        json_object_get(json_object_get(json_object_get(json_object_get(lm, "properties"), "status"), "properties"),
                        "conditions");
    assert_string_equal(str(conditions, "x-kubernetes-list-type"), "map");
    assert_string_equal(json_string_value(json_array_get(json_object_get(conditions, "x-kubernetes-list-map-keys"), 0)),
                        "type");

    /* int-or-string survives in the cluster's gateway resources. */
    const json_t *lc = component("io.langop.v1alpha1.LanguageCluster");
    char *text = json_dumps(lc, JSON_COMPACT);
    assert_non_null(strstr(text, "\"x-kubernetes-int-or-string\":true"));
    free(text);

    /* The kind schema is a copy: the registry's schema still has no allOf in metadata. */
    const schema_kind_t *k = schema_kind_by_kind("LanguageModel");
    assert_null(json_object_get(json_object_get(json_object_get(k->openapi_schema, "properties"), "metadata"),
                                "allOf"));
}

/* ---- v2 ---- */

static void test_v2_mirrors_v3(void **state)
{
    (void)state;
    assert_string_equal(str(v2, "swagger"), "2.0");
    const json_t *defs = json_object_get(v2, "definitions");
    const json_t *schemas = json_object_get(json_object_get(v3, "components"), "schemas");
    assert_int_equal(json_object_size(defs), json_object_size(schemas));
    const char *name;
    json_t *s;
    json_object_foreach((json_t *)schemas, name, s) {
        const json_t *d = json_object_get(defs, name);
        if (d == NULL)
            fail_msg("v2 lacks definition %s", name);
        static const char *const same[] = {"x-kubernetes-group-version-kind", "required", "type", "description",
                                           NULL};
        for (size_t i = 0; same[i]; i++) {
            const json_t *a = json_object_get(d, same[i]), *b = json_object_get(s, same[i]);
            if (!(a == NULL && b == NULL) && !json_equal(a, b))
                fail_msg("%s differs in %s between v2 and v3", name, same[i]);
        }
    }
    /* allOf wrapping becomes a $ref with its description beside it. */
    const json_t *meta =
        json_object_get(json_object_get(json_object_get(defs, "io.langop.v1alpha1.LanguageModel"), "properties"),
                        "metadata");
    assert_string_equal(str(meta, "$ref"), "#/definitions/" META "ObjectMeta");
    assert_non_null(str(meta, "description"));
    assert_null(json_object_get(meta, "allOf"));

    const json_t *v2_paths = json_object_get(v2, "paths");
    assert_int_equal(json_object_size(v2_paths), json_object_size(json_object_get(v3, "paths")));
    const char *path;
    json_t *item;
    json_object_foreach(json_object_get(v3, "paths"), path, item) {
        const json_t *v2_item = json_object_get(v2_paths, path);
        if (v2_item == NULL)
            fail_msg("v2 lacks path %s", path);
        assert_int_equal(json_object_size(v2_item), json_object_size(item));
        const char *method;
        json_t *op;
        json_object_foreach(item, method, op) {
            if (strcmp(method, "parameters") == 0)
                continue;
            const json_t *op2 = json_object_get(v2_item, method);
            assert_non_null(op2);
            assert_string_equal(str(op2, "operationId"), str(op, "operationId"));
            assert_true(json_equal(json_object_get(op2, "x-kubernetes-group-version-kind"),
                                   json_object_get(op, "x-kubernetes-group-version-kind")));
            assert_string_equal(str(op2, "x-kubernetes-action"), str(op, "x-kubernetes-action"));
            assert_non_null(json_object_get(op2, "produces"));
        }
    }

    const json_t *patch = json_object_get(
        json_object_get(v2_paths, "/apis/langop.io/v1alpha1/namespaces/{namespace}/languageagents/{name}"), "patch");
    const json_t *consumes = json_object_get(patch, "consumes");
    assert_int_equal(json_array_size(consumes), 3);
    const json_t *params = json_object_get(patch, "parameters");
    assert_true(has_param(params, "body", "body"));
    assert_true(has_param(params, "fieldValidation", "query"));
    const json_t *body = json_array_get(params, 0);
    assert_string_equal(str(json_object_get(body, "schema"), "$ref"), "#/definitions/" META "Patch");
    const json_t *fv = json_array_get(params, 3);
    assert_string_equal(str(fv, "name"), "fieldValidation");
    assert_string_equal(str(fv, "type"), "string");
    assert_null(json_object_get(fv, "schema"));
    assert_string_equal(str(json_object_get(json_object_get(v2, "securityDefinitions"), "BearerToken"), "in"),
                        "header");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_index_round_trip),
        cmocka_unit_test(test_no_hash_is_not_immutable),
        cmocka_unit_test(test_stale_hash_redirects),
        cmocka_unit_test(test_not_modified),
        cmocka_unit_test(test_not_acceptable),
        cmocka_unit_test(test_other_paths),
        cmocka_unit_test(test_documents_are_stable),
        cmocka_unit_test(test_every_kind_has_its_paths),
        cmocka_unit_test(test_operation_ids),
        cmocka_unit_test(test_patch_operations),
        cmocka_unit_test(test_refs_resolve),
        cmocka_unit_test(test_meta_schemas),
        cmocka_unit_test(test_kind_schemas),
        cmocka_unit_test(test_schema_content_survives),
        cmocka_unit_test(test_v2_mirrors_v3),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
