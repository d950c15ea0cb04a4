/*
 * api.c - the API's front door: from a request to a response, without
 * knowing the transport. Routes non-resource paths (health, version,
 * discovery) and hands resource requests to handlers.c after checking that
 * the path fits the kind (scope, subresource, verb).
 */
#include "langop/api/api.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <pthread.h>
#include <string.h>

#include "langop/api/discovery.h"
#include "langop/api/openapi.h"
#include "langop/api/selfreview.h"
#include "langop/core/codec.h"
#include "langop/core/status.h"
#include "langop/core/text.h"
#include "langop/derive/derive.h"
#include "langop/registry/dispatch.h"
#include "langop/registry/watch.h"
#include "langop/request/auth.h"
#include "langop/request/authz.h"
#include "langop/request/options.h"
#include "langop/request/reqinfo.h"
#include "langop/schema/objmeta.h"
#include "langop/schema/schema.h"

struct api {
    store_t *store;          /* borrowed */
    discovery_t *discovery;
    openapi_t *openapi;
    char *cluster_domain;
    authz_t *authz;          /* borrowed; NULL: every request allowed */
    atomic_int ready;
};

/*
 * One request in progress, from api_handle() to its answer: what handlers
 * point into (the parsed request) lives here, so a handler can wait on the
 * store and go on later on another worker.
 */
struct api_call {
    api_t *api;
    reqinfo_t info;
    api_request_t as_req;    /* the request as the impersonated user (a shallow copy), when impersonating */
    api_user_t as_user;      /* owned: the impersonated user */
    options_t opts;
    handler_request_t hr;
    api_wake_fn wake;
    void *wake_ctx;
    api_resume_fn resume;    /* the handler's continuation while pending */
    int (*light)(void *ctx); /* may be NULL: api_resume_light() */
    void *ctx;
};

static void call_free(api_call_t *call) /* api_response_t.call_free */
{
    if (call == NULL)
        return;
    reqinfo_free(&call->info);
    api_user_free(&call->as_user);
    options_free(&call->opts);
    free(call);
}

/* ---- the api ---- */

/* The store's commit rules: derived status is computed where it is stored. */
static int rule_prepare(void *ctx, store_txn_t *txn, const char *resource, const json_t *current, json_t *obj,
                        lo_err_t *err)
{
    api_t *api = ctx;
    const schema_kind_t *k = schema_kind_by_resource(resource);
    return k ? derive_object(txn, k, current, obj, api->cluster_domain, err) : 0;
}

static int rule_settle(void *ctx, store_txn_t *txn, const store_change_t *changes, size_t n, lo_err_t *err)
{
    api_t *api = ctx;
    return derive_settle(txn, changes, n, api->cluster_domain, err);
}

api_t *api_new(store_t *store, const api_options_t *opts)
{
    api_t *api = lo_calloc(1, sizeof(*api));
    api->store = store;
    api->discovery = discovery_new(opts && opts->server_address ? opts->server_address : "127.0.0.1:6443");
    api->openapi = openapi_new();
    api->cluster_domain = lo_strdup(opts && opts->cluster_domain ? opts->cluster_domain : "cluster.local");
    api->authz = opts ? opts->authz : NULL;
    atomic_init(&api->ready, 0);
    store_rules_t rules = {.prepare = rule_prepare, .settle = rule_settle, .ctx = api};
    store_set_rules(store, &rules);
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

#define REFRESH_PAGE 256

/* Rewrites one page of stored objects through the writer: prepare derives them, the no-op test drops the equal. */
static int refresh_page(api_t *api, const schema_kind_t *k, const json_t *items, lo_err_t *err)
{
    size_t n = json_array_size(items);
    if (n == 0)
        return 0;
    store_op_t *ops = lo_calloc(n, sizeof(*ops));
    json_t *copies = json_array();
    for (size_t i = 0; i < n; i++) {
        const json_t *obj = json_array_get(items, i);
        const char *rv = objmeta_get_string(obj, "resourceVersion");
        json_t *copy = json_deep_copy(obj);
        json_array_append_new(copies, copy);
        derive_strip(k, copy);
        ops[i] = (store_op_t){.resource = k->plural, .ns = objmeta_get_string(obj, "namespace"),
                              .name = objmeta_get_string(obj, "name"), .kind = STORE_WRITE_PUT, .object = copy,
                              .current = obj, .expect_rv = rv ? strtoll(rv, NULL, 10) : STORE_RV_ANY};
    }
    int ret = store_write(api->store, ops, n) == STORE_OK ? 0 : -1;
    for (size_t i = 0; i < n; i++) {
        /* a conflict means someone wrote it meanwhile, and that write derived it */
        if (ret == 0 && ops[i].rc != STORE_OK && ops[i].rc != STORE_CONFLICT && ops[i].rc != STORE_NOT_FOUND) {
            lo_err_set(err, 500, "InternalError", "%s", ops[i].err.message);
            ret = -1;
        }
        store_op_clear(&ops[i]);
    }
    free(ops);
    json_decref(copies);
    return ret;
}

int api_refresh_derived(api_t *api, lo_err_t *err)
{
    for (size_t i = 0; i < schema_kind_count(); i++) {
        const schema_kind_t *k = schema_kind_at(i);
        if (!derive_has_status(k))
            continue;
        char *after_ns = NULL, *after_name = NULL;
        int more = 1, ret = 0;
        while (more && ret == 0) {
            store_list_opts_t o = {.resource = k->plural, .after_ns = after_ns, .after_name = after_name,
                                   .limit = REFRESH_PAGE, .skip_remaining = 1};
            store_list_result_t res;
            if (store_list(api->store, &o, &res, err) != STORE_OK)
                return -1;
            ret = refresh_page(api, k, res.items, err);
            more = res.more;
            free(after_ns);
            free(after_name);
            after_ns = res.last_ns;
            after_name = res.last_name;
            res.last_ns = res.last_name = NULL;
            store_list_result_free(&res);
        }
        free(after_ns);
        free(after_name);
        if (ret != 0)
            return -1;
    }
    return 0;
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
        api_response_set_text(resp, failed ? 500 : 200, body);
        free(body);
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
    int rc = store_get(api->store, "languageclusters", "", name, &cluster, NULL, &err);
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
            lo_err_set_details(&err, json_pack("{s:o, s:s}", "name", lo_json_text(name), "kind", "namespaces"));
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
    if (selfreview_discovery(req->method, info->path, resp))
        return;
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

static void serve_resource(api_call_t *call, const api_request_t *req, api_response_t *resp)
{
    api_t *api = call->api;
    const reqinfo_t *info = &call->info;
    if (selfreview_handle(api->authz, req, info, resp))
        return;
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
    lo_err_t err = {0};
    if (options_decode(info, req->accept, &call->opts, &err) != 0) {
        api_response_set_error(resp, &err); /* before the store is read: nothing changes */
        lo_err_clear(&err);
        return;
    }
    call->hr = (handler_request_t){.store = api->store, .kind = k, .info = info, .req = req, .opts = &call->opts,
                                   .cluster_domain = api->cluster_domain};
    dispatch_resource(&call->hr, resp);
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

/* ---- authorization ---- */

/* Answers 403 for a denial, or for a check that failed (never an allow). */
static void forbid(const authz_attrs_t *at, int rc, const char *reason, const lo_err_t *cerr, api_response_t *resp)
{
    lo_err_t err = {0};
    if (rc == AUTHZ_ERROR) {
        lo_log(LO_INFO, "authorization check failed for user \"%s\": %s", at->user->name, cerr->message);
        char *why = lo_sprintf("the authorization check failed: %s", cerr->message);
        authz_forbidden(at, why, &err);
        free(why);
    } else {
        authz_forbidden(at, reason, &err);
    }
    api_response_set_error(resp, &err);
    lo_err_clear(&err);
}

/*
 * The one place where a request is authorized, after authentication put
 * its user in req->user: impersonation first (the request then runs as the
 * impersonated user: *req points at a copy that carries it), then the
 * request itself. The health endpoints are never checked. 0 to go on, or
 * -1 with resp set to the refusal.
 */
static int authorize(api_call_t *call, const api_request_t **req, api_response_t *resp)
{
    authz_t *a = call->api->authz;
    if (a == NULL || auth_path_always_allowed(call->info.path))
        return 0;
    lo_err_t err = {0};
    int rc = authz_impersonate(a, *req, &call->as_user, &err);
    if (rc < 0) {
        api_response_set_error(resp, &err);
        lo_err_clear(&err);
        return -1;
    }
    if (rc == 1) {
        call->as_req = **req;
        call->as_req.user = call->as_user; /* borrowed: as_user is freed with the call */
        *req = &call->as_req;
        free(resp->impersonated_user);
        resp->impersonated_user = lo_strdup(call->as_user.name ? call->as_user.name : "");
    }
    authz_attrs_t at = authz_attrs_of(&call->info, &(*req)->user);
    char *reason = NULL;
    rc = authz_check(a, &at, &reason, &err);
    if (rc != AUTHZ_ALLOW)
        forbid(&at, rc, reason, &err, resp);
    free(reason);
    lo_err_clear(&err);
    return rc == AUTHZ_ALLOW ? 0 : -1;
}

/*
 * After a handler ran: done, or its deferred ops are queued and the call
 * waits (1). A full queue answers the ops STORE_BUSY at once and the
 * handler goes on with that.
 */
static int settle_response(api_call_t *call, api_response_t *resp)
{
    while (resp->deferred.ops != NULL) {
        api_deferred_t d = resp->deferred;
        memset(&resp->deferred, 0, sizeof(resp->deferred));
        call->resume = d.resume;
        call->light = d.light;
        call->ctx = d.ctx;
        resp->call = call;
        resp->call_free = call_free;
        if (store_submit(call->api->store, d.ops, d.n, (store_done_fn)call->wake, call->wake_ctx) == STORE_OK)
            return 1;
        resp->call = NULL;
        for (size_t i = 0; i < d.n; i++) {
            d.ops[i].rc = STORE_BUSY;
            lo_err_set(&d.ops[i].err, 0, "", "the store's write queue is full");
        }
        call->resume(call->ctx, resp);
    }
    call_free(call);
    return 0;
}

int api_handle(api_t *api, const api_request_t *req, api_response_t *resp, api_wake_fn wake, void *wake_ctx)
{
    api_call_t *call = lo_calloc(1, sizeof(*call));
    lo_err_t err = {0};
    call->api = api;
    call->wake = wake;
    call->wake_ctx = wake_ctx;
    reqinfo_t *info = &call->info;
    if (reqinfo_parse(req->method, req->target, strlen(req->target), info, &err) != 0) {
        if (err.code == 0)
            status_bad_request(&err, "malformed request path");
        api_response_set_error(resp, &err);
        snprintf(resp->verb, sizeof(resp->verb), "%s", req->method);
    } else {
        log_verb(info, req, resp);
        if (authorize(call, &req, resp) != 0)
            ; /* refused: resp is the 403 */
        else if (info->is_resource)
            serve_resource(call, req, resp);
        else
            serve_non_resource(api, req, info, resp);
    }
    lo_err_clear(&err);
    return settle_response(call, resp);
}

int api_resume(api_t *api, api_response_t *resp)
{
    (void)api;
    api_call_t *call = resp->call;
    resp->call = NULL;
    call->resume(call->ctx, resp);
    return settle_response(call, resp);
}

int api_resume_light(const api_response_t *resp)
{
    const api_call_t *call = resp->call;
    return call != NULL && call->light != NULL && call->light(call->ctx);
}

/* api_call's wait for the writer: wake runs on the writer thread and only signals. */
typedef struct call_wait {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int woken;
} call_wait_t;

static void call_wake(void *ctx)
{
    call_wait_t *w = ctx;
    pthread_mutex_lock(&w->lock);
    w->woken = 1;
    pthread_cond_signal(&w->cond);
    pthread_mutex_unlock(&w->lock);
}

void api_call(api_t *api, const api_request_t *req, api_response_t *resp)
{
    call_wait_t w = {.woken = 0};
    pthread_mutex_init(&w.lock, NULL);
    pthread_cond_init(&w.cond, NULL);
    int pending = api_handle(api, req, resp, call_wake, &w);
    while (pending) {
        pthread_mutex_lock(&w.lock);
        while (!w.woken)
            pthread_cond_wait(&w.cond, &w.lock);
        w.woken = 0;
        pthread_mutex_unlock(&w.lock);
        pending = api_resume(api, resp);
    }
    pthread_mutex_destroy(&w.lock);
    pthread_cond_destroy(&w.cond);
}
