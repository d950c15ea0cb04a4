/*
 * handlers.c - the resource verbs over the store, for every kind.
 *
 * Each write is one store_write(): the mutate callbacks below see the
 * current object inside the write transaction, so checks such as the
 * resourceVersion precondition and "delete once the finalizers are gone"
 * are atomic with the write that follows them.
 */
#include "langop/handlers.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "langop/admission.h"
#include "langop/codec.h"
#include "langop/decode.h"
#include "langop/derive.h"
#include "langop/encode.h"
#include "langop/managedfields.h"
#include "langop/patch.h"
#include "langop/continuetoken.h"
#include "langop/negotiate.h"
#include "langop/objmeta.h"
#include "langop/selector.h"
#include "langop/status.h"
#include "langop/table.h"
#include "langop/validate.h"
#include "langop/watch.h"

#define GENERATE_NAME_ATTEMPTS 8

static const char *url_ns(const handler_request_t *hr)
{
    return hr->info->ns ? hr->info->ns : "";
}

/* ---- encoding the answer ---- */

static void respond_error(api_response_t *resp, lo_err_t *err)
{
    api_response_set_error(resp, err);
}

/* Overlays the computed status (derive.h) on objects (an array, modified in place). */
static void derive_objects(const handler_request_t *hr, json_t *objects)
{
    lo_err_t err = {0};
    if (derive_status(hr->store, hr->kind, objects, hr->cluster_domain, &err) != 0)
        lo_log(LO_INFO, "cannot derive the status of %s: %s", hr->kind->plural, err.message);
    lo_err_clear(&err);
}

/* The answer to a write: the object (with its computed status), as JSON or YAML. */
static void respond_object(const handler_request_t *hr, api_response_t *resp, int status, json_t *obj)
{
    lo_err_t err = {0};
    encode_format_t format;
    if (encode_choose(hr->req->accept, 0, &format, &err) != 0) {
        respond_error(resp, &err);
    } else {
        if (json_is_object(obj) && json_object_get(obj, "spec")) {
            json_t *one = json_pack("[O]", obj);
            derive_objects(hr, one);
            json_decref(one);
        }
        encode_object(resp, status, format, obj);
    }
    lo_err_clear(&err);
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
        respond_error(resp, &err);
    } else if (format != ENCODE_TABLE) {
        encode_object(resp, 200, format, list);
    } else if (table_parse_include(reqinfo_query_get(hr->info, "includeObject"), &include, &err) != 0) {
        respond_error(resp, &err);
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

/* ---- decoding the request ---- */

/* dryRun=All or nothing; anything else is a 400, as in kube. Returns 1 for a dry run, 0, or -1. */
static int parse_dry_run_value(const char *value, lo_err_t *err)
{
    if (value == NULL || value[0] == '\0')
        return 0;
    if (strcmp(value, "All") == 0)
        return 1;
    status_bad_request(err, "Invalid dryRun value: \"%s\": supported values: \"All\"", value);
    return -1;
}

static int query_dry_run(const handler_request_t *hr, lo_err_t *err)
{
    return parse_dry_run_value(reqinfo_query_get(hr->info, "dryRun"), err);
}

/* ---- get ---- */

static void serve_get(const handler_request_t *hr, api_response_t *resp)
{
    lo_err_t err = {0};
    json_t *obj = NULL;
    int rc = store_get(hr->store, hr->kind->plural, url_ns(hr), hr->info->name, &obj, &err);
    if (rc == STORE_NOT_FOUND)
        status_not_found(&err, hr->kind->plural, SCHEMA_GROUP, hr->info->name);
    if (rc != STORE_OK) {
        respond_error(resp, &err);
    } else {
        json_t *one = json_pack("[O]", obj);
        derive_objects(hr, one);
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

typedef struct list_filter {
    label_selector_t *labels;
    field_selector_t *fields;
} list_filter_t;

static int list_filter_keep(const json_t *obj, void *ctx)
{
    const list_filter_t *f = ctx;
    const json_t *labels = json_object_get(json_object_get(obj, "metadata"), "labels");
    return label_selector_matches(f->labels, labels) && field_selector_matches(f->fields, obj);
}

static int has_selectors(const handler_request_t *hr)
{
    const char *labels = reqinfo_query_get(hr->info, "labelSelector");
    const char *fields = reqinfo_query_get(hr->info, "fieldSelector");
    return (labels && labels[0]) || (fields && fields[0]);
}

static void list_filter_free(list_filter_t *f)
{
    label_selector_free(f->labels);
    field_selector_free(f->fields);
}

static int list_filter_parse(const handler_request_t *hr, list_filter_t *f, lo_err_t *err)
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

static int parse_int64(const char *text, int64_t *out)
{
    if (text == NULL || text[0] == '\0')
        return -1;
    char *end;
    errno = 0;
    long long v = strtoll(text, &end, 10);
    if (errno || *end != '\0' || v < 0)
        return -1;
    *out = v;
    return 0;
}

/* Resolves limit, continue and resourceVersion(+Match) into store options. */
static int list_window(const handler_request_t *hr, store_list_opts_t *opts, char **after_ns, char **after_name,
                       lo_err_t *err)
{
    const char *limit = reqinfo_query_get(hr->info, "limit");
    const char *cont = reqinfo_query_get(hr->info, "continue");
    const char *rv = reqinfo_query_get(hr->info, "resourceVersion");
    const char *match = reqinfo_query_get(hr->info, "resourceVersionMatch");
    int64_t n;
    if (limit && limit[0]) {
        if (parse_int64(limit, &n) != 0) {
            status_bad_request(err, "limit must be a non-negative integer: \"%s\"", limit);
            return -1;
        }
        opts->limit = (size_t)n;
    }
    if (match && match[0] && strcmp(match, "Exact") != 0 && strcmp(match, "NotOlderThan") != 0) {
        status_bad_request(err, "resourceVersionMatch: Unsupported value: \"%s\": supported values: \"Exact\", "
                                "\"NotOlderThan\"", match);
        return -1;
    }
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
        if (parse_int64(rv, &n) != 0) {
            status_bad_request(err, "resourceVersion: Invalid value: \"%s\": must be a non-negative integer", rv);
            return -1;
        }
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
    list_filter_t filter;
    store_list_opts_t opts = {0};
    store_list_result_t res = {0};
    char *after_ns = NULL, *after_name = NULL;
    if (list_filter_parse(hr, &filter, &err) != 0 || list_window(hr, &opts, &after_ns, &after_name, &err) != 0) {
        respond_error(resp, &err);
        goto exit;
    }
    opts.resource = hr->kind->plural;
    opts.ns = hr->info->ns;   /* NULL: every namespace */
    if (!hr->kind->namespaced)
        opts.ns = "";
    int selecting = has_selectors(hr);
    if (selecting) {
        opts.filter = list_filter_keep;
        opts.filter_ctx = &filter;
    }
    int rc = store_list(hr->store, &opts, &res, &err);
    if (rc != STORE_OK) {
        list_store_error(hr, rc, &err);
        respond_error(resp, &err);
        goto exit;
    }
    if (selecting)
        res.remaining = -1; /* as kube: no remainingItemCount when selectors filter the list */
    json_t *list = list_envelope(hr->kind, &res);
    derive_objects(hr, json_object_get(list, "items"));
    respond_read(hr, resp, list, json_object_get(list, "items"), json_object_get(list, "metadata"));
    json_decref(list);
exit:
    store_list_result_free(&res);
    list_filter_free(&filter);
    free(after_ns);
    free(after_name);
    lo_err_clear(&err);
}

/* ---- writes ---- */

typedef struct write_ctx {
    const handler_request_t *hr;
    json_t *body;        /* borrowed: the prepared request object */
    const char *name;
    const char *manager; /* the field manager of the write */
    int applying;        /* server-side apply: field ownership is already settled */
} write_ctx_t;

/* The field manager: ?fieldManager=, else the client's product name (User-Agent up to '/'), as kube does. */
static char *field_manager(const handler_request_t *hr, lo_err_t *err)
{
    const char *m = reqinfo_query_get(hr->info, "fieldManager");
    if (m && m[0]) {
        if (strlen(m) > 128) {
            lo_err_add_cause(err, "FieldValueTooLong", "Too long: must have at most 128 bytes", "fieldManager");
            status_invalid(err, "PatchOptions", "meta.k8s.io", "");
            return NULL;
        }
        return lo_strdup(m);
    }
    const char *ua = hr->req->user_agent;
    if (ua == NULL || ua[0] == '\0')
        return lo_strdup("unknown");
    size_t n = strcspn(ua, "/ ");
    return lo_strndup(ua, n > 128 ? 128 : n);
}

static int mutate_create(store_txn_t *txn, const json_t *current, json_t **next, void *ctx, lo_err_t *err)
{
    write_ctx_t *w = ctx;
    if (current != NULL) {
        status_already_exists(err, w->hr->kind->plural, SCHEMA_GROUP, w->name);
        return -1;
    }
    if (admission_check(txn, w->hr->kind, ADMISSION_CREATE, NULL, w->body, err) != 0)
        return -1;
    *next = json_deep_copy(w->body);
    managedfields_record_update(w->hr->kind, NULL, *next, w->manager, NULL);
    return STORE_WRITE_PUT;
}

/* After an update, an object being deleted whose finalizers are all gone is deleted. */
static int put_or_finish_delete(json_t *next)
{
    if (objmeta_is_deleting(next) && !objmeta_has_finalizers(next))
        return STORE_WRITE_DELETE;
    return STORE_WRITE_PUT;
}

/* What every update checks first inside the transaction: the object exists. */
static int check_update_target(const write_ctx_t *w, const json_t *current, lo_err_t *err)
{
    if (current == NULL) {
        status_not_found(err, w->hr->kind->plural, SCHEMA_GROUP, w->name);
        return -1;
    }
    return 0;
}

/* Schema and admission checks of the object an update is about to store (stolen; NULL on failure). */
static json_t *admit_update(store_txn_t *txn, const write_ctx_t *w, const json_t *current, json_t *next,
                            lo_err_t *err)
{
    if (validate_object(w->hr->kind, next, err) != 0 ||
        admission_check(txn, w->hr->kind, ADMISSION_UPDATE, current, next, err) != 0) {
        json_decref(next);
        return NULL;
    }
    return next;
}

/*
 * The object an update of current to body stores (new reference, or NULL
 * with err): server-owned fields kept, the main resource or only status
 * changed, then schema, admission and field ownership.
 */
static json_t *updated_object(store_txn_t *txn, const write_ctx_t *w, const json_t *current, const json_t *body,
                              const char *subresource, lo_err_t *err)
{
    const schema_kind_t *k = w->hr->kind;
    if (objmeta_check_preconditions(k, current, body, err) != 0)
        return NULL;
    json_t *merged = subresource ? objmeta_merge_status(current, body) : objmeta_merge_update(k, current, body, err);
    if (merged == NULL)
        return NULL;
    derive_strip(k, merged); /* computed on read, never stored */
    if (w->applying) /* the apply computed the new ownership; the merge kept the old one */
        json_object_set(objmeta_metadata(merged), "managedFields",
                        json_object_get(json_object_get(body, "metadata"), "managedFields"));
    json_t *next = admit_update(txn, w, current, merged, err);
    if (next && !w->applying)
        managedfields_record_update(k, current, next, w->manager, subresource);
    return next;
}

static int mutate_update(store_txn_t *txn, const json_t *current, json_t **next, void *ctx, lo_err_t *err)
{
    write_ctx_t *w = ctx;
    if (check_update_target(w, current, err) != 0)
        return -1;
    if ((*next = updated_object(txn, w, current, w->body, NULL, err)) == NULL)
        return -1;
    return put_or_finish_delete(*next);
}

static int mutate_status(store_txn_t *txn, const json_t *current, json_t **next, void *ctx, lo_err_t *err)
{
    write_ctx_t *w = ctx;
    if (check_update_target(w, current, err) != 0)
        return -1;
    *next = updated_object(txn, w, current, w->body, "status", err);
    return *next ? STORE_WRITE_PUT : -1;
}

static int run_write(const handler_request_t *hr, store_mutate_fn fn, write_ctx_t *w, int dry_run,
                     store_write_result_t *res, lo_err_t *err)
{
    store_write_t op = {
        .resource = hr->kind->plural,
        .ns = hr->kind->namespaced ? url_ns(hr) : "",
        .name = w->name,
        .mutate = fn,
        .ctx = w,
        .dry_run = dry_run,
    };
    int rc = store_write(hr->store, &op, res, err);
    if (rc == STORE_NOT_FOUND)
        status_not_found(err, hr->kind->plural, SCHEMA_GROUP, w->name);
    return rc;
}

/* The query parameters every write shares. */
typedef struct write_params {
    int dry_run;
    field_validation_t field_validation;
    char *manager;
} write_params_t;

static int parse_write_params(const handler_request_t *hr, write_params_t *p, lo_err_t *err)
{
    memset(p, 0, sizeof(*p));
    p->dry_run = query_dry_run(hr, err);
    if (p->dry_run < 0 ||
        decode_field_validation(reqinfo_query_get(hr->info, "fieldValidation"), &p->field_validation, err) != 0)
        return -1;
    p->manager = field_manager(hr, err);
    return p->manager ? 0 : -1;
}

/* Creates body (prepared), picking a generated name, retried on a collision as kube does. */
static int create_with_name(const handler_request_t *hr, json_t *body, const write_params_t *params,
                            store_write_result_t *res, lo_err_t *err)
{
    int generate = objmeta_needs_generated_name(body);
    int rc = STORE_ABORTED;
    for (int attempt = 0; attempt < (generate ? GENERATE_NAME_ATTEMPTS : 1); attempt++) {
        if (generate && objmeta_generate_name(hr->kind, body, err) != 0)
            break;
        write_ctx_t w = {.hr = hr, .body = body, .name = objmeta_get_string(body, "name"), .manager = params->manager};
        lo_err_clear(err);
        rc = run_write(hr, mutate_create, &w, params->dry_run, res, err);
        if (rc == STORE_OK || !generate || err->code != 409)
            break;
    }
    return rc;
}

static void serve_create(const handler_request_t *hr, api_response_t *resp)
{
    lo_err_t err = {0};
    store_write_result_t res = {0};
    write_params_t params = {0};
    json_t *warnings = json_array();
    json_t *body = NULL;
    if (parse_write_params(hr, &params, &err) != 0 ||
        (body = decode_object(hr->kind, hr->req, params.field_validation, warnings, &err)) == NULL ||
        objmeta_prepare_create(hr->kind, url_ns(hr), body, &err) != 0 ||
        validate_object(hr->kind, body, &err) != 0 ||
        create_with_name(hr, body, &params, &res, &err) != STORE_OK) {
        respond_error(resp, &err);
        goto exit;
    }
    respond_object(hr, resp, 201, res.object);
    decode_add_warnings(resp, warnings);
exit:
    store_write_result_free(&res);
    json_decref(body);
    json_decref(warnings);
    free(params.manager);
    lo_err_clear(&err);
}

static void serve_update(const handler_request_t *hr, api_response_t *resp, int status_subresource)
{
    lo_err_t err = {0};
    store_write_result_t res = {0};
    write_params_t params = {0};
    json_t *warnings = json_array();
    json_t *body = NULL;
    if (parse_write_params(hr, &params, &err) != 0 ||
        (body = decode_object(hr->kind, hr->req, params.field_validation, warnings, &err)) == NULL ||
        objmeta_check_target(hr->kind, url_ns(hr), hr->info->name, body, &err) != 0) {
        respond_error(resp, &err);
        goto exit;
    }
    write_ctx_t w = {.hr = hr, .body = body, .name = hr->info->name, .manager = params.manager};
    if (run_write(hr, status_subresource ? mutate_status : mutate_update, &w, params.dry_run, &res, &err) != 0) {
        respond_error(resp, &err);
        goto exit;
    }
    /* also when the update removed the last finalizer of an object being deleted, and it is gone */
    respond_object(hr, resp, 200, res.object);
    decode_add_warnings(resp, warnings);
exit:
    store_write_result_free(&res);
    json_decref(body);
    json_decref(warnings);
    free(params.manager);
    lo_err_clear(&err);
}

/* ---- patch ---- */

typedef enum patch_type { PATCH_JSON, PATCH_MERGE, PATCH_STRATEGIC, PATCH_APPLY } patch_type_t;

static const struct {
    const char *subtype;
    patch_type_t type;
} patch_types[] = {
    {"json-patch+json", PATCH_JSON},
    {"merge-patch+json", PATCH_MERGE},
    {"strategic-merge-patch+json", PATCH_STRATEGIC},
    {"apply-patch+yaml", PATCH_APPLY},
};

static int parse_patch_type(const char *content_type, patch_type_t *out, lo_err_t *err)
{
    media_type_t ct;
    if (content_type && negotiate_parse_one(content_type, &ct) == 0 && strcmp(ct.type, "application") == 0) {
        for (size_t i = 0; i < sizeof(patch_types) / sizeof(patch_types[0]); i++) {
            if (strcmp(ct.subtype, patch_types[i].subtype) == 0) {
                *out = patch_types[i].type;
                return 0;
            }
        }
    }
    lo_err_set(err, 415, "UnsupportedMediaType",
               "the body of the request was in an unknown format - accepted media types include: "
               "application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml, "
               "application/strategic-merge-patch+json");
    return -1;
}

/* A patch_ctx_t is passed where a write_ctx_t is expected: w must stay first. */
typedef struct patch_ctx {
    write_ctx_t w;               /* hr, name, manager; w.body unused */
    patch_type_t type;
    const json_t *patch;         /* borrowed: the decoded request body */
    int force;
    field_validation_t fv;
    json_t *warnings;            /* borrowed: unknown fields the patch brought, for Warn */
    const char *subresource;     /* NULL or "status" */
    int created;                 /* an apply created the object */
} patch_ctx_t;

/* current with the patch applied (new reference), or NULL with err. */
static json_t *patched_document(const patch_ctx_t *p, const json_t *current, lo_err_t *err)
{
    json_t *doc = NULL;
    switch (p->type) {
    case PATCH_JSON:
        return patch_json(current, p->patch, err);
    case PATCH_MERGE:
    case PATCH_STRATEGIC: /* our lists declare no merge keys: a strategic merge patch is a merge patch */
        return patch_merge(current, p->patch);
    case PATCH_APPLY:
        if (managedfields_apply(p->w.hr->kind, current, p->patch, p->w.manager, p->force, p->subresource, &doc,
                                err) != 0)
            return NULL;
        return doc;
    }
    return NULL;
}

/* The envelope, unknown fields (per fieldValidation), defaults and URL target of a patched document. */
static int normalize_patched(const patch_ctx_t *p, json_t *doc, lo_err_t *err)
{
    const handler_request_t *hr = p->w.hr;
    if (objmeta_check_envelope(hr->kind, doc, err) != 0)
        return -1;
    if (p->type != PATCH_APPLY) { /* an applied config was pruned before it was merged */
        json_t *unknown = json_array();
        validate_prune(hr->kind, doc, unknown);
        int refused = decode_unknown_fields(hr->kind, unknown, NULL, p->fv, p->warnings, err);
        json_decref(unknown);
        if (refused)
            return -1;
    }
    validate_default(hr->kind, doc);
    return objmeta_check_target(hr->kind, url_ns(hr), hr->info->name, doc, err);
}

/* Server-side apply of an object that does not exist yet: a create. */
static int apply_create(store_txn_t *txn, patch_ctx_t *p, json_t **next, lo_err_t *err)
{
    const schema_kind_t *k = p->w.hr->kind;
    json_t *doc = patched_document(p, NULL, err);
    if (doc == NULL || normalize_patched(p, doc, err) != 0)
        goto fail;
    json_t *owners = json_incref(json_object_get(objmeta_metadata(doc), "managedFields"));
    int rc = objmeta_prepare_create(k, url_ns(p->w.hr), doc, err);
    if (owners)
        json_object_set_new(objmeta_metadata(doc), "managedFields", owners);
    if (rc != 0 || validate_object(k, doc, err) != 0 || admission_check(txn, k, ADMISSION_CREATE, NULL, doc, err) != 0)
        goto fail;
    p->created = 1;
    *next = doc;
    return STORE_WRITE_PUT;
fail:
    json_decref(doc);
    return -1;
}

static int mutate_patch(store_txn_t *txn, const json_t *current, json_t **next, void *ctx, lo_err_t *err)
{
    patch_ctx_t *p = ctx;
    if (current == NULL && p->type == PATCH_APPLY && p->subresource == NULL)
        return apply_create(txn, p, next, err);
    if (check_update_target(&p->w, current, err) != 0)
        return -1;
    json_t *doc = patched_document(p, current, err);
    if (doc == NULL || normalize_patched(p, doc, err) != 0) {
        json_decref(doc);
        return -1;
    }
    *next = updated_object(txn, &p->w, current, doc, p->subresource, err);
    json_decref(doc);
    if (*next == NULL)
        return -1;
    return p->subresource ? STORE_WRITE_PUT : put_or_finish_delete(*next);
}

/* Decodes and checks the patch body for its type. New reference or NULL with err. */
static json_t *decode_patch(const handler_request_t *hr, patch_ctx_t *p, lo_err_t *err)
{
    const api_request_t *req = hr->req;
    if (req->body_len > API_MAX_BODY) {
        lo_err_set(err, 413, "RequestEntityTooLarge", "Request entity too large: limit is %u", API_MAX_BODY);
        return NULL;
    }
    if (req->body == NULL || req->body_len == 0) {
        status_bad_request(err, "the request body is empty: a patch is required");
        return NULL;
    }
    json_t *patch = p->type == PATCH_APPLY ? codec_decode_yaml(req->body, req->body_len, err)
                                           : codec_decode_json(req->body, req->body_len, err);
    if (patch == NULL)
        return NULL;
    int ok = 1;
    if (p->type == PATCH_STRATEGIC)
        ok = patch_check_strategic(patch, err) == 0;
    else if (p->type == PATCH_APPLY) {
        json_t *unknown = json_array();
        ok = objmeta_check_envelope(hr->kind, patch, err) == 0;
        if (ok) {
            validate_prune(hr->kind, patch, unknown);
            ok = !decode_unknown_fields(hr->kind, unknown, NULL, p->fv, p->warnings, err);
        }
        json_decref(unknown);
    }
    if (!ok) {
        json_decref(patch);
        return NULL;
    }
    return patch;
}

/* A boolean query parameter as Go's strconv.ParseBool reads it (python sends "True"). */
static int parse_go_bool(const char *text, int *out)
{
    static const char *const truths[] = {"1", "t", "T", "TRUE", "true", "True"};
    static const char *const lies[] = {"0", "f", "F", "FALSE", "false", "False"};
    for (size_t i = 0; i < 6; i++) {
        if (strcmp(text, truths[i]) == 0 || strcmp(text, lies[i]) == 0) {
            *out = strcmp(text, truths[i]) == 0;
            return 0;
        }
    }
    return -1;
}

/* fieldManager is required for apply; force only means something there. */
static int check_apply_params(const handler_request_t *hr, patch_ctx_t *p, lo_err_t *err)
{
    const char *force = reqinfo_query_get(hr->info, "force");
    p->force = 0;
    if (force && force[0] && parse_go_bool(force, &p->force) != 0) {
        status_bad_request(err, "force: Invalid value: \"%s\": must be a boolean", force);
        return -1;
    }
    if (p->type == PATCH_APPLY) {
        const char *m = reqinfo_query_get(hr->info, "fieldManager");
        if (m == NULL || m[0] == '\0') {
            lo_err_add_cause(err, "FieldValueRequired", "Required value: is required for apply patch", "fieldManager");
            status_invalid(err, "PatchOptions", "meta.k8s.io", "");
            return -1;
        }
    } else if (force && force[0]) {
        lo_err_add_cause(err, "FieldValueForbidden", "Forbidden: may not be specified for non-apply patch", "force");
        status_invalid(err, "PatchOptions", "meta.k8s.io", "");
        return -1;
    }
    return 0;
}

static void serve_patch(const handler_request_t *hr, api_response_t *resp, const char *subresource)
{
    lo_err_t err = {0};
    store_write_result_t res = {0};
    write_params_t params = {0};
    json_t *warnings = json_array();
    json_t *patch = NULL;
    patch_ctx_t p = {.w = {.hr = hr, .name = hr->info->name}, .subresource = subresource, .warnings = warnings};
    if (parse_write_params(hr, &params, &err) != 0 || parse_patch_type(hr->req->content_type, &p.type, &err) != 0 ||
        check_apply_params(hr, &p, &err) != 0)
        goto fail;
    p.w.manager = params.manager;
    p.w.applying = p.type == PATCH_APPLY;
    p.fv = params.field_validation;
    if ((p.patch = patch = decode_patch(hr, &p, &err)) == NULL ||
        run_write(hr, mutate_patch, &p.w, params.dry_run, &res, &err) != STORE_OK)
        goto fail;
    respond_object(hr, resp, p.created ? 201 : 200, res.object);
    decode_add_warnings(resp, warnings);
    goto exit;
fail:
    respond_error(resp, &err);
exit:
    store_write_result_free(&res);
    json_decref(patch);
    json_decref(warnings);
    free(params.manager);
    lo_err_clear(&err);
}

/* ---- delete ---- */

typedef struct delete_options {
    int dry_run;
    char *precondition_uid;
    char *precondition_rv;
} delete_options_t;

static void delete_options_free(delete_options_t *o)
{
    free(o->precondition_uid);
    free(o->precondition_rv);
}

static int parse_propagation(const json_t *value, lo_err_t *err)
{
    if (value == NULL || json_is_null(value))
        return 0;
    const char *p = json_string_value(value);
    /* no owner references are followed here: every policy deletes the object alone */
    if (p && (strcmp(p, "Orphan") == 0 || strcmp(p, "Background") == 0 || strcmp(p, "Foreground") == 0))
        return 0;
    status_bad_request(err, "propagationPolicy: Unsupported value: \"%s\": supported values: \"Foreground\", "
                            "\"Background\", \"Orphan\"",
                       p ? p : "");
    return -1;
}

static int parse_body_dry_run(const json_t *value, lo_err_t *err)
{
    if (value == NULL || json_is_null(value))
        return 0;
    if (!json_is_array(value)) {
        status_bad_request(err, "dryRun must be a list of strings");
        return -1;
    }
    int dry = 0;
    size_t i;
    json_t *v;
    json_array_foreach(value, i, v) {
        int r = parse_dry_run_value(json_string_value(v) ? json_string_value(v) : "?", err);
        if (r < 0)
            return -1;
        dry |= r;
    }
    return dry;
}

/* DeleteOptions come from the body (kubectl) and the query (dryRun). */
static int parse_delete_options(const handler_request_t *hr, delete_options_t *o, lo_err_t *err)
{
    memset(o, 0, sizeof(*o));
    o->dry_run = query_dry_run(hr, err);
    if (o->dry_run < 0)
        return -1;
    const api_request_t *req = hr->req;
    if (req->body == NULL || req->body_len == 0)
        return 0;
    if (req->body_len > API_MAX_BODY) {
        lo_err_set(err, 413, "RequestEntityTooLarge", "Request entity too large: limit is %u", API_MAX_BODY);
        return -1;
    }
    json_t *opts = codec_decode_auto(req->body, req->body_len, err);
    if (opts == NULL)
        return -1;
    int ret = -1;
    if (!json_is_object(opts)) {
        status_bad_request(err, "the body of a delete must be a DeleteOptions object");
        goto exit;
    }
    if (parse_propagation(json_object_get(opts, "propagationPolicy"), err) != 0)
        goto exit;
    int dry = parse_body_dry_run(json_object_get(opts, "dryRun"), err);
    if (dry < 0)
        goto exit;
    o->dry_run |= dry;
    json_t *pre = json_object_get(opts, "preconditions");
    const char *uid = json_string_value(json_object_get(pre, "uid"));
    const char *rv = json_string_value(json_object_get(pre, "resourceVersion"));
    if (uid && uid[0])
        o->precondition_uid = lo_strdup(uid);
    if (rv && rv[0])
        o->precondition_rv = lo_strdup(rv);
    ret = 0;
exit:
    json_decref(opts);
    return ret;
}

typedef struct delete_ctx {
    const handler_request_t *hr;
    const delete_options_t *opts;
    const char *name;
} delete_ctx_t;

static int check_delete_preconditions(const delete_ctx_t *d, const json_t *current, lo_err_t *err)
{
    const char *uid = objmeta_get_string(current, "uid");
    const char *rv = objmeta_get_string(current, "resourceVersion");
    char why[256];
    if (d->opts->precondition_uid && (uid == NULL || strcmp(uid, d->opts->precondition_uid) != 0)) {
        snprintf(why, sizeof(why), "Precondition failed: UID in precondition: %s, UID in object meta: %s",
                 d->opts->precondition_uid, uid ? uid : "");
        status_conflict(err, d->hr->kind->plural, SCHEMA_GROUP, d->name, why);
        return -1;
    }
    if (d->opts->precondition_rv && (rv == NULL || strcmp(rv, d->opts->precondition_rv) != 0)) {
        snprintf(why, sizeof(why),
                 "Precondition failed: ResourceVersion in precondition: %s, ResourceVersion in object meta: %s",
                 d->opts->precondition_rv, rv ? rv : "");
        status_conflict(err, d->hr->kind->plural, SCHEMA_GROUP, d->name, why);
        return -1;
    }
    return 0;
}

static int mutate_delete(store_txn_t *txn, const json_t *current, json_t **next, void *ctx, lo_err_t *err)
{
    (void)txn;
    delete_ctx_t *d = ctx;
    if (current == NULL) {
        status_not_found(err, d->hr->kind->plural, SCHEMA_GROUP, d->name);
        return -1;
    }
    if (check_delete_preconditions(d, current, err) != 0)
        return -1;
    if (!objmeta_has_finalizers(current))
        return STORE_WRITE_DELETE;
    /* finalizers pending: mark it; it goes when an update empties them */
    if (objmeta_is_deleting(current))
        return STORE_WRITE_NOOP;
    *next = json_deep_copy(current);
    objmeta_mark_deleting(*next);
    return STORE_WRITE_PUT;
}

/* Deletes one object; on success *result is the object (new ref) and *gone says whether it was removed. */
static int delete_one(const handler_request_t *hr, const delete_options_t *opts, const char *ns, const char *name,
                      json_t **result, int *gone, lo_err_t *err)
{
    delete_ctx_t d = {.hr = hr, .opts = opts, .name = name};
    store_write_t op = {.resource = hr->kind->plural, .ns = ns, .name = name, .mutate = mutate_delete, .ctx = &d,
                        .dry_run = opts->dry_run};
    store_write_result_t res = {0};
    int rc = store_write(hr->store, &op, &res, err);
    if (rc == STORE_NOT_FOUND)
        status_not_found(err, hr->kind->plural, SCHEMA_GROUP, name);
    if (rc != STORE_OK)
        return rc;
    *gone = res.kind == STORE_WRITE_DELETE;
    *result = res.object;
    res.object = NULL;
    store_write_result_free(&res);
    return STORE_OK;
}

static void serve_delete(const handler_request_t *hr, api_response_t *resp)
{
    lo_err_t err = {0};
    delete_options_t opts;
    json_t *obj = NULL;
    int gone = 0;
    if (parse_delete_options(hr, &opts, &err) != 0 ||
        delete_one(hr, &opts, hr->kind->namespaced ? url_ns(hr) : "", hr->info->name, &obj, &gone, &err) != 0) {
        respond_error(resp, &err);
        goto exit;
    }
    if (gone) {
        json_t *st = status_success(hr->info->name, SCHEMA_GROUP, hr->kind->plural, objmeta_get_string(obj, "uid"));
        respond_object(hr, resp, 200, st);
        json_decref(st);
    } else {
        respond_object(hr, resp, 200, obj); /* still there, with deletionTimestamp */
    }
exit:
    json_decref(obj);
    delete_options_free(&opts);
    lo_err_clear(&err);
}

static void serve_deletecollection(const handler_request_t *hr, api_response_t *resp)
{
    lo_err_t err = {0};
    delete_options_t opts;
    list_filter_t filter;
    store_list_result_t res = {0};
    json_t *deleted = json_array();
    memset(&filter, 0, sizeof(filter));
    if (parse_delete_options(hr, &opts, &err) != 0 || list_filter_parse(hr, &filter, &err) != 0) {
        respond_error(resp, &err);
        goto exit;
    }
    store_list_opts_t lo = {.resource = hr->kind->plural, .ns = hr->kind->namespaced ? hr->info->ns : "",
                            .filter = list_filter_keep, .filter_ctx = &filter};
    if (store_list(hr->store, &lo, &res, &err) != STORE_OK) {
        respond_error(resp, &err);
        goto exit;
    }
    size_t i;
    json_t *item;
    json_array_foreach(res.items, i, item) {
        json_t *obj = NULL;
        int gone = 0;
        lo_err_t one = {0};
        /* an item deleted meanwhile by someone else is simply skipped, as kube does */
        if (delete_one(hr, &opts, objmeta_get_string(item, "namespace") ? objmeta_get_string(item, "namespace") : "",
                       objmeta_get_string(item, "name"), &obj, &gone, &one) == STORE_OK)
            json_array_append_new(deleted, obj);
        lo_err_clear(&one);
    }
    json_t *list = json_pack("{s:s, s:s, s:{}, s:O}", "apiVersion", SCHEMA_GROUP_VERSION, "kind",
                             hr->kind->list_kind, "metadata", "items", deleted);
    respond_object(hr, resp, 200, list);
    json_decref(list);
exit:
    json_decref(deleted);
    store_list_result_free(&res);
    list_filter_free(&filter);
    delete_options_free(&opts);
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
        respond_error(resp, &err);
    } else {
        resp->status = 200;
        resp->content_type = lo_strdup(spec->format == ENCODE_TABLE ? ENCODE_TABLE_CONTENT_TYPE : "application/json");
        spec->cluster_domain = hr->cluster_domain;
        resp->watch = spec;
    }
    lo_err_clear(&err);
}

/* ---- dispatch ---- */

static void method_not_allowed(api_response_t *resp)
{
    lo_err_t err = {0};
    lo_err_set(&err, 405, "MethodNotAllowed", "the server does not allow this method on the requested resource");
    respond_error(resp, &err);
    lo_err_clear(&err);
}

/* GET of a derived subresource (gatewayconfig, agentconfig): computed now, never stored. */
static void serve_derived(const handler_request_t *hr, api_response_t *resp, const derive_subresource_t *sub)
{
    lo_err_t err = {0};
    json_t *obj = NULL;
    if (sub->get(hr->store, url_ns(hr), hr->info->name, hr->cluster_domain, &obj, &err) != 0) {
        respond_error(resp, &err);
    } else {
        lo_err_clear(&err);
        encode_format_t format;
        if (encode_choose(hr->req->accept, 0, &format, &err) != 0)
            respond_error(resp, &err);
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
            serve_update(hr, resp, 1);
        else if (strcmp(verb, "patch") == 0)
            serve_patch(hr, resp, "status");
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
        serve_create(hr, resp);
    else if (strcmp(verb, "update") == 0)
        serve_update(hr, resp, 0);
    else if (strcmp(verb, "patch") == 0)
        serve_patch(hr, resp, NULL);
    else if (strcmp(verb, "delete") == 0)
        serve_delete(hr, resp);
    else if (strcmp(verb, "deletecollection") == 0)
        serve_deletecollection(hr, resp);
    else
        method_not_allowed(resp);
}
