/*
 * api.c - the API's front door: from a request to a response, without
 * knowing the transport. Routes non-resource paths (health, version,
 * discovery) and hands resource requests to handlers.c after checking that
 * the path fits the kind (scope, subresource, verb).
 */
#include "langop/api.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "langop/derive.h"
#include "langop/discovery.h"
#include "langop/handlers.h"
#include "langop/objmeta.h"
#include "langop/openapi.h"
#include "langop/reqinfo.h"
#include "langop/schema.h"
#include "langop/status.h"
#include "langop/watch.h"

struct api {
    store_t *store;          /* borrowed */
    discovery_t *discovery;
    openapi_t *openapi;
    char *cluster_domain;
    atomic_int ready;
};

/* ---- requests, responses, users ---- */

void api_user_copy(api_user_t *dst, const api_user_t *src)
{
    memset(dst, 0, sizeof(*dst));
    dst->name = src->name ? lo_strdup(src->name) : NULL;
    dst->uid = src->uid ? lo_strdup(src->uid) : NULL;
    for (size_t i = 0; i < API_MAX_GROUPS - 1 && src->groups[i]; i++)
        dst->groups[i] = lo_strdup(src->groups[i]);
}

void api_user_free(api_user_t *user)
{
    free(user->name);
    free(user->uid);
    for (size_t i = 0; i < API_MAX_GROUPS && user->groups[i]; i++)
        free(user->groups[i]);
    memset(user, 0, sizeof(*user));
}

void api_request_free(api_request_t *req)
{
    free(req->method);
    free(req->target);
    free(req->accept);
    free(req->content_type);
    free(req->if_none_match);
    free(req->user_agent);
    free(req->body);
    api_user_free(&req->user);
    memset(req, 0, sizeof(*req));
}

void api_response_free(api_response_t *resp)
{
    if (resp->watch) {
        watch_spec_free(resp->watch);
        free(resp->watch);
    }
    free(resp->content_type);
    free(resp->body);
    for (size_t i = 0; i < resp->header_count; i++) {
        free(resp->header_names[i]);
        free(resp->header_values[i]);
    }
    memset(resp, 0, sizeof(*resp));
}

void api_response_add_header(api_response_t *resp, const char *name, const char *value)
{
    if (resp->header_count >= API_MAX_HEADERS)
        return;
    resp->header_names[resp->header_count] = lo_strdup(name);
    resp->header_values[resp->header_count] = lo_strdup(value);
    resp->header_count++;
}

static void set_body(api_response_t *resp, int status, const char *content_type, char *body /* stolen */)
{
    free(resp->content_type);
    free(resp->body);
    resp->status = status;
    resp->content_type = lo_strdup(content_type);
    resp->body = body;
    resp->body_len = strlen(body);
}

void api_response_set_json(api_response_t *resp, int status, const char *content_type, const json_t *value)
{
    char *text = json_dumps(value, JSON_COMPACT);
    if (text == NULL)
        lo_fatal("cannot encode a response");
    set_body(resp, status, content_type, text);
}

void api_response_set_text(api_response_t *resp, int status, const char *text)
{
    set_body(resp, status, "text/plain; charset=utf-8", lo_strdup(text));
}

void api_response_set_error(api_response_t *resp, const lo_err_t *err)
{
    json_t *st = status_from_err(err);
    api_response_set_json(resp, (int)json_integer_value(json_object_get(st, "code")), "application/json", st);
    json_decref(st);
}

/* ---- the api ---- */

api_t *api_new(store_t *store, const api_options_t *opts)
{
    api_t *api = lo_calloc(1, sizeof(*api));
    api->store = store;
    api->discovery = discovery_new(opts && opts->server_address ? opts->server_address : "127.0.0.1:6443");
    api->openapi = openapi_new();
    api->cluster_domain = lo_strdup(opts && opts->cluster_domain ? opts->cluster_domain : "cluster.local");
    atomic_init(&api->ready, 0);
    return api;
}

void api_free(api_t *api)
{
    if (api == NULL)
        return;
    discovery_free(api->discovery);
    openapi_free(api->openapi);
    free(api->cluster_domain);
    free(api);
}

store_t *api_store(api_t *api)
{
    return api->store;
}

void api_derive(api_t *api, const char *resource, json_t *objects)
{
    const schema_kind_t *k = schema_kind_by_resource(resource);
    if (k)
        derive_overlay(api->store, k, objects, api->cluster_domain);
}

void api_set_ready(api_t *api, int ready)
{
    atomic_store(&api->ready, ready);
}

/* ---- health and version ---- */

typedef struct health_check {
    const char *name;
    int (*run)(api_t *api);
} health_check_t;

static int check_ping(api_t *api)
{
    (void)api;
    return 1;
}

static int check_store(api_t *api)
{
    int64_t rv;
    return store_current_rv(api->store, &rv, NULL) == STORE_OK;
}

static int check_ready(api_t *api)
{
    return atomic_load(&api->ready);
}

static const health_check_t live_checks[] = {{"ping", check_ping}, {NULL, NULL}};
static const health_check_t ready_checks[] = {
    {"ping", check_ping}, {"store", check_store}, {"serving", check_ready}, {NULL, NULL}};

/* /healthz, /livez, /readyz and /<endpoint>/<check>, with ?verbose and ?exclude=. */
static int serve_health(api_t *api, const reqinfo_t *info, api_response_t *resp)
{
    static const char *const endpoints[] = {"healthz", "livez", "readyz"};
    const char *path = info->path + 1;
    for (size_t e = 0; e < 3; e++) {
        size_t n = strlen(endpoints[e]);
        if (strncmp(path, endpoints[e], n) != 0 || (path[n] != '\0' && path[n] != '/'))
            continue;
        const health_check_t *checks = e == 1 ? live_checks : ready_checks;
        const char *only = path[n] == '/' ? path + n + 1 : NULL;
        const char *exclude = reqinfo_query_get(info, "exclude");
        int verbose = reqinfo_query_get(info, "verbose") != NULL;
        int failed = 0, found = only == NULL;
        char *out = lo_strdup("");
        for (const health_check_t *c = checks; c->name; c++) {
            if ((only && strcmp(only, c->name) != 0) || (exclude && strcmp(exclude, c->name) == 0))
                continue;
            found = 1;
            int ok = c->run(api);
            failed |= !ok;
            char *line = lo_sprintf("%s[%c]%s %s\n", out, ok ? '+' : '-', c->name, ok ? "ok" : "failed");
            free(out);
            out = line;
        }
        if (!found) {
            free(out);
            return 0;
        }
        char *body;
        if (verbose)
            body = lo_sprintf("%s%s check %s\n", out, endpoints[e], failed ? "failed" : "passed");
        else
            body = failed ? lo_sprintf("%s%s check failed\n", out, endpoints[e]) : lo_strdup("ok");
        free(out);
        set_body(resp, failed ? 500 : 200, "text/plain; charset=utf-8", body);
        return 1;
    }
    return 0;
}

/* The Kubernetes API level this server implements (kubectl's dispatcher picks its client by it). */
static void serve_version(api_response_t *resp)
{
    json_t *v = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s}", "major", "1", "minor", "32",
                          "gitVersion", "v1.32.0-langop." LANGOP_VERSION, "gitCommit", "", "gitTreeState", "clean",
                          "buildDate", __DATE__, "goVersion", "", "compiler", "gcc", "platform", "linux/amd64");
    api_response_set_json(resp, 200, "application/json", v);
    json_decref(v);
}

static void not_found_path(api_response_t *resp)
{
    lo_err_t err = {0};
    lo_err_set(&err, 404, "NotFound", "the server could not find the requested resource");
    lo_err_set_details(&err, json_pack("{s:[{s:s, s:s}]}", "causes", "reason", "UnexpectedServerResponse",
                                       "message", "404 page not found"));
    api_response_set_error(resp, &err);
    lo_err_clear(&err);
}

/*
 * GET /api/v1/namespaces/<name>. Standalone, the namespaces are those that
 * LanguageClusters own (a LanguageCluster owns the namespace of its name).
 * kubectl asks for the namespace after a NotFound to word its error; behind
 * kube-apiserver this path never reaches us.
 */
static int serve_namespace(api_t *api, const api_request_t *req, const reqinfo_t *info, api_response_t *resp)
{
    static const char prefix[] = "/api/v1/namespaces/";
    if (strcmp(req->method, "GET") != 0 || strncmp(info->path, prefix, sizeof(prefix) - 1) != 0)
        return 0;
    const char *name = info->path + sizeof(prefix) - 1;
    if (name[0] == '\0' || strchr(name, '/') != NULL)
        return 0;
    lo_err_t err = {0};
    json_t *cluster = NULL;
    int rc = store_get(api->store, "languageclusters", "", name, &cluster, &err);
    if (rc == STORE_OK) {
        json_t *meta = json_object_get(cluster, "metadata");
        json_t *ns = json_pack("{s:s, s:s, s:{s:s, s:O*, s:O*}, s:{s:s}}", "kind", "Namespace", "apiVersion", "v1",
                               "metadata", "name", name, "uid", json_object_get(meta, "uid"), "creationTimestamp",
                               json_object_get(meta, "creationTimestamp"), "status", "phase",
                               objmeta_is_deleting(cluster) ? "Terminating" : "Active");
        api_response_set_json(resp, 200, "application/json", ns);
        json_decref(ns);
    } else {
        if (rc == STORE_NOT_FOUND) {
            lo_err_clear(&err);
            lo_err_set(&err, 404, "NotFound", "namespaces \"%s\" not found", name);
            lo_err_set_details(&err, json_pack("{s:s, s:s}", "name", name, "kind", "namespaces"));
        }
        api_response_set_error(resp, &err);
    }
    json_decref(cluster);
    lo_err_clear(&err);
    return 1;
}

static void serve_non_resource(api_t *api, const api_request_t *req, const reqinfo_t *info, api_response_t *resp)
{
    if (serve_health(api, info, resp))
        return;
    if (serve_namespace(api, req, info, resp))
        return;
    if (strcmp(info->path, "/version") == 0 || strcmp(info->path, "/version/") == 0) {
        serve_version(resp);
        return;
    }
    if (strcmp(req->method, "GET") == 0 &&
        (discovery_handle(api->discovery, info->path, req->accept, req->if_none_match, resp) ||
         openapi_handle(api->openapi, info, req->accept, req->if_none_match, resp)))
        return;
    not_found_path(resp);
}

/* ---- resources ---- */

static int verb_is(const reqinfo_t *info, const char *verb)
{
    return strcmp(info->verb, verb) == 0;
}

static void method_not_allowed(api_response_t *resp)
{
    lo_err_t err = {0};
    lo_err_set(&err, 405, "MethodNotAllowed", "the server does not allow this method on the requested resource");
    api_response_set_error(resp, &err);
    lo_err_clear(&err);
}

/* The verbs of a resource request: which need a name, which must not have one. */
static const struct {
    const char *verb;
    const char *method;   /* the HTTP method that carries it (HEAD reads as GET) */
    int item;             /* 1: needs a name; 0: a collection; -1: either */
} resource_verbs[] = {
    {"get", "GET", 1},      {"list", "GET", 0},    {"watch", "GET", -1},    {"create", "POST", 0},
    {"update", "PUT", 1},   {"patch", "PATCH", 1}, {"delete", "DELETE", 1}, {"deletecollection", "DELETE", 0},
};

/*
 * Checks that the verb exists and fits the path. HTTP methods are
 * case-sensitive: "get" is not GET, and reqinfo, as kube's, turns an
 * unknown method into a verb of its own, which no handler serves.
 */
static int check_verb(const char *method, const reqinfo_t *info, api_response_t *resp)
{
    /* HEAD reads as GET, but a watch has no end: its headers alone would hold the connection */
    if (strcmp(method, "HEAD") == 0 && strcmp(info->verb, "watch") != 0)
        method = "GET";
    for (size_t i = 0; i < sizeof(resource_verbs) / sizeof(resource_verbs[0]); i++) {
        if (strcmp(info->verb, resource_verbs[i].verb) != 0 || strcmp(method, resource_verbs[i].method) != 0)
            continue;
        if (resource_verbs[i].item >= 0 && resource_verbs[i].item != (info->name != NULL))
            break;
        return 0;
    }
    method_not_allowed(resp);
    return -1;
}

/* Checks that the path fits the kind: scope, subresource and verb. 0 if it does. */
static int check_shape(const schema_kind_t *k, const char *method, const reqinfo_t *info, api_response_t *resp)
{
    if (check_verb(method, info, resp) != 0)
        return -1;
    int has_ns = info->ns != NULL;
    if (!k->namespaced && has_ns) {
        not_found_path(resp);
        return -1;
    }
    if (k->namespaced && !has_ns && !(verb_is(info, "list") || verb_is(info, "watch"))) {
        not_found_path(resp);
        return -1;
    }
    if (info->subresource) {
        int status = strcmp(info->subresource, "status") == 0 && k->has_status;
        const derive_subresource_t *derived = derive_subresource_find(k->kind, info->subresource);
        if (info->name == NULL || (!status && derived == NULL)) {
            not_found_path(resp);
            return -1;
        }
        if (derived && !verb_is(info, "get")) { /* computed on read: nothing to write */
            method_not_allowed(resp);
            return -1;
        }
    }
    return 0;
}

static void serve_resource(api_t *api, const api_request_t *req, const reqinfo_t *info, api_response_t *resp)
{
    const schema_kind_t *k = NULL;
    if (info->group && strcmp(info->group, SCHEMA_GROUP) == 0 && info->version &&
        strcmp(info->version, SCHEMA_VERSION) == 0 && info->resource)
        k = schema_kind_by_resource(info->resource);
    if (k == NULL) {
        not_found_path(resp);
        return;
    }
    if (check_shape(k, req->method, info, resp) != 0)
        return;
    handler_request_t hr = {.store = api->store, .kind = k, .info = info, .req = req,
                            .cluster_domain = api->cluster_domain};
    handlers_serve(&hr, resp);
}

/* The verb of the request log, as kube-apiserver's httplog writes it: LIST, WATCH, GET, POST ... */
static void log_verb(const reqinfo_t *info, const api_request_t *req, api_response_t *resp)
{
    const char *verb = req->method;
    if (info->is_resource && strcmp(info->verb, "list") == 0)
        verb = "LIST";
    else if (info->is_resource && strcmp(info->verb, "watch") == 0)
        verb = "WATCH";
    snprintf(resp->verb, sizeof(resp->verb), "%s", verb);
}

void api_handle(api_t *api, const api_request_t *req, api_response_t *resp)
{
    reqinfo_t info;
    lo_err_t err = {0};
    memset(&info, 0, sizeof(info));
    if (reqinfo_parse(req->method, req->target, strlen(req->target), &info, &err) != 0) {
        if (err.code == 0)
            status_bad_request(&err, "malformed request path");
        api_response_set_error(resp, &err);
        snprintf(resp->verb, sizeof(resp->verb), "%s", req->method);
    } else {
        log_verb(&info, req, resp);
        if (info.is_resource)
            serve_resource(api, req, &info, resp);
        else
            serve_non_resource(api, req, &info, resp);
    }
    reqinfo_free(&info);
    lo_err_clear(&err);
}
