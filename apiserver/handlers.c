/*
 * handlers.c - the resource verbs over the store, for every kind: the
 * dispatch, the reads (get, list, watch, derived subresources) and what the
 * verb modules share (answers, dry run, selectors). Writes are in writes.c,
 * deletes in deletes.c.
 */
#include "langop/handlers.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "langop/continuetoken.h"
#include "langop/derive.h"
#include "langop/encode.h"
#include "langop/objmeta.h"
#include "langop/status.h"
#include "langop/table.h"
#include "langop/watch.h"

const char *handlers_url_ns(const handler_request_t *hr)
{
    return hr->info->ns ? hr->info->ns : "";
}

/* ---- encoding the answer ---- */

void handlers_respond_error(api_response_t *resp, lo_err_t *err)
{
    api_response_set_error(resp, err);
}

void handlers_defer(api_response_t *resp, store_op_t *ops, size_t n, api_resume_fn resume, void *ctx)
{
    resp->deferred = (api_deferred_t){.ops = ops, .n = n, .resume = resume, .ctx = ctx};
}

/* How long a client told 429 waits before it tries again (kube's max-in-flight filter says 1). */
#define RETRY_AFTER_SECONDS 1

void handlers_op_error(const handler_request_t *hr, api_response_t *resp, store_op_t *op, const char *name,
                       lo_err_t *err)
{
    const char *plural = hr->kind->plural;
    switch (op->rc) {
    case STORE_NOT_FOUND:
        status_not_found(err, plural, SCHEMA_GROUP, name);
        break;
    case STORE_EXISTS:
        status_already_exists(err, plural, SCHEMA_GROUP, name);
        break;
    case STORE_CONFLICT:
        status_conflict(err, plural, SCHEMA_GROUP, name,
                        "the object has been modified; please apply your changes to the latest version and try "
                        "again");
        break;
    case STORE_ABORTED: /* the check's own Status */
        lo_err_clear(err);
        *err = op->err;
        memset(&op->err, 0, sizeof(op->err));
        break;
    case STORE_BUSY:
        lo_err_set(err, 429, "TooManyRequests", "Too many requests, please try again later.");
        lo_err_set_details(err, json_pack("{s:i}", "retryAfterSeconds", RETRY_AFTER_SECONDS));
        api_response_add_header(resp, "retry-after", "1");
        break;
    default:
        status_internal(err, "storing %s \"%s\": %s", plural, name, op->err.message);
        break;
    }
}

int handlers_read_current(const handler_request_t *hr, const char *name, json_t **current, int64_t *rv,
                          lo_err_t *err)
{
    lo_err_t e = {0};
    const char *ns = hr->kind->namespaced ? handlers_url_ns(hr) : "";
    int rc = store_get(hr->store, hr->kind->plural, ns, name, current, rv, &e);
    if (rc == STORE_NOT_FOUND)
        status_not_found(err, hr->kind->plural, SCHEMA_GROUP, name);
    else if (rc != STORE_OK)
        status_internal(err, "reading %s \"%s\": %s", hr->kind->plural, name, e.message);
    lo_err_clear(&e);
    return rc;
}

int handlers_check_output(const handler_request_t *hr, lo_err_t *err)
{
    encode_format_t format;
    table_include_t include;
    if (encode_choose(hr->req->accept, 1, &format, err) != 0)
        return -1;
    if (format == ENCODE_TABLE && table_parse_include(reqinfo_query_get(hr->info, "includeObject"), &include, err) != 0)
        return -1;
    return 0;
}

/*
 * The answer to a write: the object (with its derived status) as JSON,
 * YAML or a one-row Table. A Status or a List passes through as JSON, as
 * kube's transformation does. The caller checked the Accept header with
 * handlers_check_output() before writing.
 */
void handlers_respond_object(const handler_request_t *hr, api_response_t *resp, int status, json_t *obj)
{
    lo_err_t err = {0};
    encode_format_t format = ENCODE_JSON;
    table_include_t include = TABLE_INCLUDE_METADATA;
    encode_choose(hr->req->accept, 1, &format, &err);
    int own_kind = json_is_object(obj) && json_object_get(obj, "spec") != NULL;
    if (format == ENCODE_TABLE && own_kind) {
        table_parse_include(reqinfo_query_get(hr->info, "includeObject"), &include, &err);
        json_t *table = table_render_object(hr->kind, obj, include, 1, (int64_t)time(NULL));
        encode_object(resp, status, ENCODE_TABLE, table);
        json_decref(table);
    } else {
        encode_object(resp, status, format == ENCODE_TABLE ? ENCODE_JSON : format, obj);
    }
    lo_err_clear(&err);
}

void handlers_respond_stored(const handler_request_t *hr, api_response_t *resp, int status, store_op_t *op)
{
    lo_err_t err = {0};
    encode_format_t format = ENCODE_JSON;
    encode_choose(hr->req->accept, 1, &format, &err);
    lo_err_clear(&err);
    if (format == ENCODE_JSON && op->result_json) {
        api_response_set_json_text(resp, status, "application/json", op->result_json, op->result_json_len);
        op->result_json = NULL;
        return;
    }
    handlers_respond_object(hr, resp, status, op->result);
}

/* ---- decoding the request ---- */

/* dryRun=All or nothing; anything else is a 400, as in kube. Returns 1 for a dry run, 0, or -1. */
int handlers_parse_dry_run(const char *value, lo_err_t *err)
{
    if (value == NULL || value[0] == '\0')
        return 0;
    if (strcmp(value, "All") == 0)
        return 1;
    status_bad_request(err, "Invalid dryRun value: \"%s\": supported values: \"All\"", value);
    return -1;
}

int handlers_query_dry_run(const handler_request_t *hr, lo_err_t *err)
{
    return handlers_parse_dry_run(reqinfo_query_get(hr->info, "dryRun"), err);
}

int handlers_check_list_options(const handler_request_t *hr, lo_err_t *err)
{
    static const char *const bools[] = {"allowWatchBookmarks", "watch"};
    static const char *const counts[] = {"limit", "timeoutSeconds", "resourceVersion"};
    int b;
    int64_t n;
    for (size_t i = 0; i < sizeof(bools) / sizeof(bools[0]); i++) {
        if (reqinfo_query_bool(hr->info, bools[i], 0, &b, err) != 0)
            return -1;
    }
    for (size_t i = 0; i < sizeof(counts) / sizeof(counts[0]); i++) {
        if (reqinfo_query_count(hr->info, counts[i], &n, err) != 0)
            return -1;
    }
    const char *initial = reqinfo_query_get(hr->info, "sendInitialEvents");
    if (initial && initial[0]) {
        status_bad_request(err, "sendInitialEvents: Forbidden: sendInitialEvents is forbidden for list");
        return -1;
    }
    const char *match = reqinfo_query_get(hr->info, "resourceVersionMatch");
    if (match && match[0] && strcmp(match, "Exact") != 0 && strcmp(match, "NotOlderThan") != 0) {
        status_bad_request(err, "resourceVersionMatch: Unsupported value: \"%.100s\": supported values: \"Exact\", "
                                "\"NotOlderThan\"", match);
        return -1;
    }
    const char *cont = reqinfo_query_get(hr->info, "continue");
    if (cont && cont[0]) {
        int64_t rv;
        char *ns = NULL, *name = NULL;
        int rc = continue_token_decode(cont, &rv, &ns, &name, err);
        free(ns);
        free(name);
        if (rc != 0)
            return -1;
    }
    return 0;
}

/* ---- selectors ---- */

int handlers_filter_keep(const json_t *obj, void *ctx)
{
    const handlers_filter_t *f = ctx;
    const json_t *labels = json_object_get(json_object_get(obj, "metadata"), "labels");
    return label_selector_matches(f->labels, labels) && field_selector_matches(f->fields, obj);
}

int handlers_has_selectors(const handler_request_t *hr)
{
    const char *labels = reqinfo_query_get(hr->info, "labelSelector");
    const char *fields = reqinfo_query_get(hr->info, "fieldSelector");
    return (labels && labels[0]) || (fields && fields[0]);
}

void handlers_filter_free(handlers_filter_t *f)
{
    label_selector_free(f->labels);
    field_selector_free(f->fields);
}

int handlers_filter_parse(const handler_request_t *hr, handlers_filter_t *f, lo_err_t *err)
{
    memset(f, 0, sizeof(*f));
    f->labels = label_selector_parse(reqinfo_query_get(hr->info, "labelSelector"), err);
    if (f->labels == NULL)
        return -1;
    f->fields = field_selector_parse(reqinfo_query_get(hr->info, "fieldSelector"), objmeta_field_labels, err);
    if (f->fields == NULL)
        return -1;
    return 0;
}

/*
 * The answer to a read: JSON, YAML, or a Table when the client asks for
 * one. objects is the list's items (or the one object of a get, as a
 * one-element array); list is what JSON/YAML clients get.
 */
static void respond_read(const handler_request_t *hr, api_response_t *resp, const json_t *list, const json_t *objects,
                         const json_t *table_meta)
{
    lo_err_t err = {0};
    encode_format_t format;
    table_include_t include;
    if (encode_choose(hr->req->accept, 1, &format, &err) != 0) {
        handlers_respond_error(resp, &err);
    } else if (format != ENCODE_TABLE) {
        encode_object(resp, 200, format, list);
    } else if (table_parse_include(reqinfo_query_get(hr->info, "includeObject"), &include, &err) != 0) {
        handlers_respond_error(resp, &err);
    } else {
        json_t *table = table_render(hr->kind, objects, table_meta, include, 1, (int64_t)time(NULL));
        if (table)
            encode_object(resp, 200, ENCODE_TABLE, table);
        else /* a client that accepts a Table also accepts the plain list (kubectl prints it) */
            encode_object(resp, 200, ENCODE_JSON, list);
        json_decref(table);
    }
    lo_err_clear(&err);
}

/* ---- get ---- */

static void serve_get(const handler_request_t *hr, api_response_t *resp)
{
    lo_err_t err = {0};
    json_t *obj = NULL;
    if (handlers_read_current(hr, hr->info->name, &obj, NULL, &err) != STORE_OK) {
        handlers_respond_error(resp, &err);
    } else {
        json_t *one = json_pack("[O]", obj);
        json_t *meta = json_pack("{s:O*}", "resourceVersion",
                                 json_object_get(json_object_get(obj, "metadata"), "resourceVersion"));
        respond_read(hr, resp, obj, one, meta);
        json_decref(one);
        json_decref(meta);
        json_decref(obj);
    }
    lo_err_clear(&err);
}

/* ---- list ---- */

/*
 * Resolves limit, continue and resourceVersion(+Match) into store options.
 * Each was checked on its own by handlers_check_list_options(); here they
 * are combined.
 */
static int list_window(const handler_request_t *hr, store_list_opts_t *opts, char **after_ns, char **after_name,
                       lo_err_t *err)
{
    const char *cont = reqinfo_query_get(hr->info, "continue");
    const char *rv = reqinfo_query_get(hr->info, "resourceVersion");
    const char *match = reqinfo_query_get(hr->info, "resourceVersionMatch");
    int64_t n = 0;
    if (reqinfo_query_count(hr->info, "limit", &n, err) != 0)
        return -1;
    opts->limit = (size_t)n;
    if (match && match[0] && (rv == NULL || rv[0] == '\0')) {
        status_bad_request(err, "resourceVersionMatch is forbidden unless resourceVersion is provided");
        return -1;
    }
    if (cont && cont[0]) {
        if (rv && rv[0] && strcmp(rv, "0") != 0) {
            status_bad_request(err, "specifying resource version is not allowed when using continue");
            return -1;
        }
        if (continue_token_decode(cont, &opts->at_rv, after_ns, after_name, err) != 0)
            return -1;
        opts->after_ns = *after_ns;
        opts->after_name = *after_name;
        return 0;
    }
    if (rv && rv[0]) {
        if (reqinfo_query_count(hr->info, "resourceVersion", &n, err) != 0)
            return -1;
        if (match && strcmp(match, "Exact") == 0) {
            if (n == 0) {
                status_bad_request(err, "resourceVersionMatch \"Exact\" is forbidden for resourceVersion \"0\"");
                return -1;
            }
            opts->at_rv = n;
        } else if (n > 0) {
            /* NotOlderThan: the newest state qualifies if it is at least n */
            int64_t current = 0;
            if (store_current_rv(hr->store, &current, err) != STORE_OK)
                return -1;
            if (n > current) {
                lo_err_set(err, 504, "Timeout", "Too large resource version: %lld, current: %lld", (long long)n,
                           (long long)current);
                lo_err_add_cause(err, "ResourceVersionTooLarge", "Too large resource version", NULL);
                return -1;
            }
        }
    }
    return 0;
}

static void list_store_error(const handler_request_t *hr, int rc, lo_err_t *err)
{
    if (rc == STORE_EXPIRED) {
        if (reqinfo_query_get(hr->info, "continue"))
            lo_err_set(err, 410, "Expired",
                       "The provided continue parameter is too old to display a consistent list result. You can "
                       "start a new list without the continue parameter.");
        else
            lo_err_set(err, 410, "Expired", "too old resource version");
    } else if (rc == STORE_FUTURE_RV) {
        lo_err_set(err, 504, "Timeout", "Too large resource version");
        lo_err_add_cause(err, "ResourceVersionTooLarge", "Too large resource version", NULL);
    }
}

static json_t *list_envelope(const schema_kind_t *k, store_list_result_t *res /* items stolen */)
{
    json_t *meta = json_object();
    char rv[32];
    snprintf(rv, sizeof(rv), "%lld", (long long)res->rv);
    json_object_set_new(meta, "resourceVersion", json_string(rv));
    if (res->more) {
        char *token = continue_token_encode(res->rv, res->last_ns, res->last_name);
        json_object_set_new(meta, "continue", json_string(token));
        free(token);
        if (res->remaining >= 0)
            json_object_set_new(meta, "remainingItemCount", json_integer(res->remaining));
    }
    json_t *list = json_pack("{s:s, s:s, s:o, s:o}", "apiVersion", SCHEMA_GROUP_VERSION, "kind", k->list_kind,
                             "metadata", meta, "items", res->items);
    res->items = NULL;
    return list;
}

static void serve_list(const handler_request_t *hr, api_response_t *resp)
{
    lo_err_t err = {0};
    handlers_filter_t filter = {0};
    store_list_opts_t opts = {0};
    store_list_result_t res = {0};
    char *after_ns = NULL, *after_name = NULL;
    if (handlers_check_list_options(hr, &err) != 0 || handlers_filter_parse(hr, &filter, &err) != 0 ||
        list_window(hr, &opts, &after_ns, &after_name, &err) != 0) {
        handlers_respond_error(resp, &err);
        goto exit;
    }
    opts.resource = hr->kind->plural;
    opts.ns = hr->info->ns;   /* NULL: every namespace */
    if (!hr->kind->namespaced)
        opts.ns = "";
    int selecting = handlers_has_selectors(hr);
    if (selecting) {
        opts.filter = handlers_filter_keep;
        opts.filter_ctx = &filter;
    }
    int rc = store_list(hr->store, &opts, &res, &err);
    if (rc != STORE_OK) {
        list_store_error(hr, rc, &err);
        handlers_respond_error(resp, &err);
        goto exit;
    }
    if (selecting)
        res.remaining = -1; /* as kube: no remainingItemCount when selectors filter the list */
    json_t *list = list_envelope(hr->kind, &res);
    respond_read(hr, resp, list, json_object_get(list, "items"), json_object_get(list, "metadata"));
    json_decref(list);
exit:
    store_list_result_free(&res);
    handlers_filter_free(&filter);
    free(after_ns);
    free(after_name);
    lo_err_clear(&err);
}

/* ---- watch ---- */

/* Validates the watch and hands its spec to the transport, which streams it. */
static void serve_watch(const handler_request_t *hr, api_response_t *resp)
{
    lo_err_t err = {0};
    watch_spec_t *spec = lo_calloc(1, sizeof(*spec));
    if (watch_spec_parse(hr->kind, hr->info, hr->req->accept, spec, &err) != 0) {
        free(spec);
        handlers_respond_error(resp, &err);
    } else {
        resp->status = 200;
        resp->content_type = lo_strdup(spec->format == ENCODE_TABLE ? ENCODE_TABLE_CONTENT_TYPE : "application/json");
        resp->watch = spec;
    }
    lo_err_clear(&err);
}

/* ---- dispatch ---- */

static void method_not_allowed(api_response_t *resp)
{
    lo_err_t err = {0};
    lo_err_set(&err, 405, "MethodNotAllowed", "the server does not allow this method on the requested resource");
    handlers_respond_error(resp, &err);
    lo_err_clear(&err);
}

/* GET of a derived subresource (gatewayconfig, agentconfig): computed now, never stored. */
static void serve_derived(const handler_request_t *hr, api_response_t *resp, const derive_subresource_t *sub)
{
    lo_err_t err = {0};
    json_t *obj = NULL;
    if (sub->get(hr->store, handlers_url_ns(hr), hr->info->name, hr->cluster_domain, &obj, &err) != 0) {
        handlers_respond_error(resp, &err);
    } else {
        lo_err_clear(&err);
        encode_format_t format;
        if (encode_choose(hr->req->accept, 0, &format, &err) != 0)
            handlers_respond_error(resp, &err);
        else
            encode_object(resp, 200, format, obj);
    }
    json_decref(obj);
    lo_err_clear(&err);
}

void handlers_serve(const handler_request_t *hr, api_response_t *resp)
{
    const char *verb = hr->info->verb;
    const derive_subresource_t *derived =
        hr->info->subresource ? derive_subresource_find(hr->kind->kind, hr->info->subresource) : NULL;
    if (derived) {
        serve_derived(hr, resp, derived);
        return;
    }
    int status = hr->info->subresource != NULL;
    if (status) {
        if (strcmp(verb, "get") == 0)
            serve_get(hr, resp);
        else if (strcmp(verb, "update") == 0)
            handlers_update(hr, resp, 1);
        else if (strcmp(verb, "patch") == 0)
            handlers_patch(hr, resp, "status");
        else
            method_not_allowed(resp);
        return;
    }
    if (strcmp(verb, "get") == 0)
        serve_get(hr, resp);
    else if (strcmp(verb, "list") == 0)
        serve_list(hr, resp);
    else if (strcmp(verb, "watch") == 0)
        serve_watch(hr, resp);
    else if (strcmp(verb, "create") == 0)
        handlers_create(hr, resp);
    else if (strcmp(verb, "update") == 0)
        handlers_update(hr, resp, 0);
    else if (strcmp(verb, "patch") == 0)
        handlers_patch(hr, resp, NULL);
    else if (strcmp(verb, "delete") == 0)
        handlers_delete(hr, resp);
    else if (strcmp(verb, "deletecollection") == 0)
        handlers_deletecollection(hr, resp);
    else
        method_not_allowed(resp);
}
