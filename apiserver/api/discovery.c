/*
 * discovery.c - discovery documents built from the schema registry.
 *
 * Each document is rendered once to bytes with its ETag; serving is a
 * lookup plus content negotiation, cheap enough for the aggregator's
 * availability probe (GET /apis/langop.io/v1alpha1 every few seconds).
 */
#include "langop/api/discovery.h"

#include <stdlib.h>
#include <string.h>

#include "langop/core/codec.h"
#include "langop/core/status.h"
#include "langop/derive/derive.h"
#include "langop/request/negotiate.h"
#include "langop/schema/schema.h"

/* The verbs served on every main resource, and on its status subresource. */
const char *const discovery_resource_verbs[] = {"create", "delete", "deletecollection", "get", "list", "patch", "update", "watch",
                                                NULL};
static const char *const status_verbs[] = {"get", "patch", "update", NULL};
static const char *const derived_verbs[] = {"get", NULL};

enum doc_form { FORM_LEGACY, FORM_V2, FORM_V2BETA1, FORM_COUNT };

typedef struct doc {
    char *body;
    size_t len;
    char etag[68];
} doc_t;

struct discovery {
    doc_t api[FORM_COUNT];
    doc_t apis[FORM_COUNT];
    doc_t core_v1;
    doc_t group;
    doc_t group_version;
};

static const char *const form_content_types[FORM_COUNT] = {
    "application/json",
    "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList",
    "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList",
};

static void doc_set(doc_t *doc, json_t *value /* stolen */)
{
    doc->body = json_dumps(value, JSON_COMPACT);
    if (doc->body == NULL)
        lo_fatal("cannot encode discovery document");
    doc->len = strlen(doc->body);
    char hash[65];
    lo_sha256_hex(doc->body, doc->len, hash);
    snprintf(doc->etag, sizeof(doc->etag), "\"%.32s\"", hash);
    json_decref(value);
}

static json_t *string_array(const char *const *list)
{
    json_t *a = json_array();
    for (size_t i = 0; list && list[i]; i++)
        json_array_append_new(a, json_string(list[i]));
    return a;
}

static json_t *group_version_ref(void)
{
    return json_pack("{s:s, s:s}", "groupVersion", SCHEMA_GROUP_VERSION, "version", SCHEMA_VERSION);
}

/* ---- legacy documents ---- */

static json_t *legacy_subresource(const schema_kind_t *k, const char *sub, const char *kind,
                                  const char *const *verbs)
{
    char *name = lo_sprintf("%s/%s", k->plural, sub);
    json_t *r = json_pack("{s:s, s:s, s:b, s:s, s:o}", "name", name, "singularName", "", "namespaced", k->namespaced,
                          "kind", kind, "verbs", string_array(verbs));
    free(name);
    return r;
}

static json_t *legacy_resource_list(void)
{
    json_t *resources = json_array();
    for (size_t i = 0; i < schema_kind_count(); i++) {
        const schema_kind_t *k = schema_kind_at(i);
        json_t *r = json_pack("{s:s, s:s, s:b, s:s, s:o}", "name", k->plural, "singularName", k->singular,
                              "namespaced", k->namespaced, "kind", k->kind, "verbs",
                              string_array(discovery_resource_verbs));
        if (k->short_names && k->short_names[0])
            json_object_set_new(r, "shortNames", string_array(k->short_names));
        if (k->categories && k->categories[0])
            json_object_set_new(r, "categories", string_array(k->categories));
        json_array_append_new(resources, r);
        if (k->has_status)
            json_array_append_new(resources, legacy_subresource(k, "status", k->kind, status_verbs));
        for (const derive_subresource_t *d = derive_subresources; d->name; d++) {
            if (strcmp(d->kind, k->kind) == 0)
                json_array_append_new(resources, legacy_subresource(k, d->name, d->response_kind, derived_verbs));
        }
    }
    return json_pack("{s:s, s:s, s:s, s:o}", "kind", "APIResourceList", "apiVersion", "v1", "groupVersion",
                     SCHEMA_GROUP_VERSION, "resources", resources);
}

static json_t *legacy_group(void)
{
    return json_pack("{s:s, s:s, s:s, s:[o], s:o}", "kind", "APIGroup", "apiVersion", "v1", "name", SCHEMA_GROUP,
                     "versions", group_version_ref(), "preferredVersion", group_version_ref());
}

/* ---- aggregated documents (apidiscovery.k8s.io) ---- */

static json_t *response_kind(const char *kind)
{
    return json_pack("{s:s, s:s, s:s}", "group", SCHEMA_GROUP, "version", SCHEMA_VERSION, "kind", kind);
}

static json_t *aggregated_resources(void)
{
    json_t *resources = json_array();
    for (size_t i = 0; i < schema_kind_count(); i++) {
        const schema_kind_t *k = schema_kind_at(i);
        json_t *r = json_pack("{s:s, s:o, s:s, s:s, s:o}", "resource", k->plural, "responseKind",
                              response_kind(k->kind), "scope", k->namespaced ? "Namespaced" : "Cluster",
                              "singularResource", k->singular, "verbs", string_array(discovery_resource_verbs));
        if (k->short_names && k->short_names[0])
            json_object_set_new(r, "shortNames", string_array(k->short_names));
        if (k->categories && k->categories[0])
            json_object_set_new(r, "categories", string_array(k->categories));
        json_t *subs = json_array();
        if (k->has_status)
            json_array_append_new(subs, json_pack("{s:s, s:o, s:o}", "subresource", "status", "responseKind",
                                                  response_kind(k->kind), "verbs", string_array(status_verbs)));
        for (const derive_subresource_t *d = derive_subresources; d->name; d++) {
            if (strcmp(d->kind, k->kind) == 0)
                json_array_append_new(subs, json_pack("{s:s, s:o, s:o}", "subresource", d->name, "responseKind",
                                                      response_kind(d->response_kind), "verbs",
                                                      string_array(derived_verbs)));
        }
        if (json_array_size(subs) > 0)
            json_object_set_new(r, "subresources", subs);
        else
            json_decref(subs);
        json_array_append_new(resources, r);
    }
    return resources;
}

static json_t *aggregated_list(const char *api_version, json_t *items /* stolen */)
{
    return json_pack("{s:s, s:s, s:{}, s:o}", "kind", "APIGroupDiscoveryList", "apiVersion", api_version,
                     "metadata", "items", items);
}

static json_t *aggregated_apis(const char *api_version)
{
    json_t *version = json_pack("{s:s, s:o, s:s}", "version", SCHEMA_VERSION, "resources", aggregated_resources(),
                                "freshness", "Current");
    json_t *group = json_pack("{s:{s:s, s:n}, s:[o]}", "metadata", "name", SCHEMA_GROUP, "creationTimestamp",
                              "versions", version);
    return aggregated_list(api_version, json_pack("[o]", group));
}

static json_t *aggregated_api(const char *api_version)
{
    /* the core group: we serve no core resources, but clients expect v1 to exist */
    json_t *version = json_pack("{s:s, s:[], s:s}", "version", "v1", "resources", "freshness", "Current");
    json_t *group = json_pack("{s:{s:n}, s:[o]}", "metadata", "creationTimestamp", "versions", version);
    return aggregated_list(api_version, json_pack("[o]", group));
}

discovery_t *discovery_new(const char *server_address)
{
    discovery_t *d = lo_calloc(1, sizeof(*d));
    doc_set(&d->api[FORM_LEGACY],
            json_pack("{s:s, s:[s], s:[{s:s, s:s}]}", "kind", "APIVersions", "versions", "v1",
                      "serverAddressByClientCIDRs", "clientCIDR", "0.0.0.0/0", "serverAddress", server_address));
    doc_set(&d->api[FORM_V2], aggregated_api("apidiscovery.k8s.io/v2"));
    doc_set(&d->api[FORM_V2BETA1], aggregated_api("apidiscovery.k8s.io/v2beta1"));
    doc_set(&d->apis[FORM_LEGACY], json_pack("{s:s, s:s, s:[o]}", "kind", "APIGroupList", "apiVersion", "v1",
                                             "groups", legacy_group()));
    doc_set(&d->apis[FORM_V2], aggregated_apis("apidiscovery.k8s.io/v2"));
    doc_set(&d->apis[FORM_V2BETA1], aggregated_apis("apidiscovery.k8s.io/v2beta1"));
    doc_set(&d->core_v1, json_pack("{s:s, s:s, s:s, s:[]}", "kind", "APIResourceList", "apiVersion", "v1",
                                   "groupVersion", "v1", "resources"));
    doc_set(&d->group, legacy_group());
    doc_set(&d->group_version, legacy_resource_list());
    return d;
}

void discovery_free(discovery_t *d)
{
    if (d == NULL)
        return;
    for (int f = 0; f < FORM_COUNT; f++) {
        free(d->api[f].body);
        free(d->apis[f].body);
    }
    free(d->core_v1.body);
    free(d->group.body);
    free(d->group_version.body);
    free(d);
}

/* The first Accept entry we can serve; -1 if none. aggregated: whether v2 forms may be chosen. */
static int choose_form(const char *accept, int aggregated)
{
    media_type_t types[NEGOTIATE_MAX_TYPES];
    size_t n = negotiate_parse_accept(accept, types, NEGOTIATE_MAX_TYPES);
    for (size_t i = 0; i < n; i++) {
        const media_type_t *mt = &types[i];
        if (negotiate_plain(mt, "json"))
            return FORM_LEGACY;
        if (aggregated && strcmp(mt->subtype, "json") == 0 && strcmp(mt->as, "APIGroupDiscoveryList") == 0 &&
            strcmp(mt->g, "apidiscovery.k8s.io") == 0) {
            if (strcmp(mt->v, "v2") == 0)
                return FORM_V2;
            if (strcmp(mt->v, "v2beta1") == 0)
                return FORM_V2BETA1;
        }
    }
    return -1;
}

static void serve(const doc_t *doc, const char *content_type, const char *if_none_match, api_response_t *resp)
{
    api_response_add_header(resp, "etag", doc->etag);
    api_response_add_header(resp, "vary", "Accept");
    if (if_none_match && strstr(if_none_match, doc->etag) != NULL) {
        resp->status = 304;
        return;
    }
    resp->status = 200;
    resp->content_type = lo_strdup(content_type);
    resp->body = lo_strndup(doc->body, doc->len);
    resp->body_len = doc->len;
}

static void not_acceptable(api_response_t *resp, int aggregated)
{
    lo_err_t err = {0};
    lo_err_set(&err, 406, "NotAcceptable", "only the following media types are accepted: application/json%s",
               aggregated ? ", application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList, "
                            "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList"
                          : "");
    api_response_set_error(resp, &err);
    lo_err_clear(&err);
}

int discovery_handle(const discovery_t *d, const char *path, const char *accept, const char *if_none_match,
                     api_response_t *resp)
{
    const doc_t *forms = NULL;
    const doc_t *single = NULL;
    if (strcmp(path, "/api") == 0 || strcmp(path, "/api/") == 0)
        forms = d->api;
    else if (strcmp(path, "/apis") == 0 || strcmp(path, "/apis/") == 0)
        forms = d->apis;
    else if (strcmp(path, "/api/v1") == 0)
        single = &d->core_v1;
    else if (strcmp(path, "/apis/" SCHEMA_GROUP) == 0)
        single = &d->group;
    else if (strcmp(path, "/apis/" SCHEMA_GROUP_VERSION) == 0)
        single = &d->group_version;
    else
        return 0;
    int form = choose_form(accept, forms != NULL);
    if (form < 0) {
        not_acceptable(resp, forms != NULL);
        return 1;
    }
    if (forms)
        serve(&forms[form], form_content_types[form], if_none_match, resp);
    else
        serve(single, form_content_types[FORM_LEGACY], if_none_match, resp);
    return 1;
}
