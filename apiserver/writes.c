/*
 * writes.c - create, update (main resource and status) and patch (JSON,
 * merge, strategic-as-merge, server-side apply).
 *
 * Each write is one store_write(): the mutate callbacks below see the
 * current object inside the write transaction, so the resourceVersion
 * precondition, admission (capacity counts) and "delete once the
 * finalizers are gone" are atomic with the write that follows them.
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
#include "langop/negotiate.h"
#include "langop/objmeta.h"
#include "langop/patch.h"
#include "langop/status.h"
#include "langop/validate.h"

#define GENERATE_NAME_ATTEMPTS 8

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
        .ns = hr->kind->namespaced ? handlers_url_ns(hr) : "",
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
    p->dry_run = handlers_query_dry_run(hr, err);
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

/* What a create or an update carries from its request to its answer. */
typedef struct object_write {
    lo_err_t err;
    write_params_t params;
    json_t *warnings;                 /* unknown or duplicate fields, for the Warning header */
    json_t *body;                     /* the decoded, defaulted object */
    store_write_result_t res;
} object_write_t;

/* The shared first steps: the answer can be given, the parameters and the body are read. */
static int object_write_begin(const handler_request_t *hr, object_write_t *ow)
{
    memset(ow, 0, sizeof(*ow));
    ow->warnings = json_array();
    if (handlers_check_output(hr, &ow->err) != 0 || parse_write_params(hr, &ow->params, &ow->err) != 0)
        return -1;
    ow->body = decode_object(hr->kind, hr->req, ow->params.field_validation, ow->warnings, &ow->err);
    return ow->body ? 0 : -1;
}

/* Answers (the stored object with status, or the error) and releases ow. */
static void object_write_end(const handler_request_t *hr, api_response_t *resp, object_write_t *ow, int ok,
                             int status)
{
    if (ok) {
        handlers_respond_object(hr, resp, status, ow->res.object);
        decode_add_warnings(resp, ow->warnings);
    } else {
        handlers_respond_error(resp, &ow->err);
    }
    store_write_result_free(&ow->res);
    json_decref(ow->body);
    json_decref(ow->warnings);
    free(ow->params.manager);
    lo_err_clear(&ow->err);
}

void handlers_create(const handler_request_t *hr, api_response_t *resp)
{
    object_write_t ow;
    int ok = object_write_begin(hr, &ow) == 0 &&
             objmeta_prepare_create(hr->kind, handlers_url_ns(hr), ow.body, &ow.err) == 0 &&
             validate_object(hr->kind, ow.body, &ow.err) == 0 &&
             create_with_name(hr, ow.body, &ow.params, &ow.res, &ow.err) == STORE_OK;
    object_write_end(hr, resp, &ow, ok, 201);
}

void handlers_update(const handler_request_t *hr, api_response_t *resp, int status_subresource)
{
    object_write_t ow;
    int ok = object_write_begin(hr, &ow) == 0 &&
             objmeta_check_target(hr->kind, handlers_url_ns(hr), hr->info->name, ow.body, &ow.err) == 0;
    if (ok) {
        write_ctx_t w = {.hr = hr, .body = ow.body, .name = hr->info->name, .manager = ow.params.manager};
        ok = run_write(hr, status_subresource ? mutate_status : mutate_update, &w, ow.params.dry_run, &ow.res,
                       &ow.err) == STORE_OK;
    }
    /* answered with the object also when the update removed the last finalizer and it is gone */
    object_write_end(hr, resp, &ow, ok, 200);
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
    return objmeta_check_target(hr->kind, handlers_url_ns(hr), hr->info->name, doc, err);
}

/* Server-side apply of an object that does not exist yet: a create. */
static int apply_create(store_txn_t *txn, patch_ctx_t *p, json_t **next, lo_err_t *err)
{
    const schema_kind_t *k = p->w.hr->kind;
    json_t *doc = patched_document(p, NULL, err);
    if (doc == NULL || normalize_patched(p, doc, err) != 0)
        goto fail;
    json_t *owners = json_incref(json_object_get(objmeta_metadata(doc), "managedFields"));
    int rc = objmeta_prepare_create(k, handlers_url_ns(p->w.hr), doc, err);
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
    if (decode_check_size(req, err) != 0)
        return NULL;
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

/* fieldManager is required for apply; force only means something there. */
static int check_apply_params(const handler_request_t *hr, patch_ctx_t *p, lo_err_t *err)
{
    const char *force = reqinfo_query_get(hr->info, "force");
    if (reqinfo_query_bool(hr->info, "force", 0, &p->force, err) != 0)
        return -1;
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

void handlers_patch(const handler_request_t *hr, api_response_t *resp, const char *subresource)
{
    lo_err_t err = {0};
    store_write_result_t res = {0};
    write_params_t params = {0};
    json_t *warnings = json_array();
    json_t *patch = NULL;
    patch_ctx_t p = {.w = {.hr = hr, .name = hr->info->name}, .subresource = subresource, .warnings = warnings};
    if (handlers_check_output(hr, &err) != 0 || parse_write_params(hr, &params, &err) != 0 ||
        parse_patch_type(hr->req->content_type, &p.type, &err) != 0 ||
        check_apply_params(hr, &p, &err) != 0)
        goto fail;
    p.w.manager = params.manager;
    p.w.applying = p.type == PATCH_APPLY;
    p.fv = params.field_validation;
    if ((p.patch = patch = decode_patch(hr, &p, &err)) == NULL ||
        run_write(hr, mutate_patch, &p.w, params.dry_run, &res, &err) != STORE_OK)
        goto fail;
    handlers_respond_object(hr, resp, p.created ? 201 : 200, res.object);
    decode_add_warnings(resp, warnings);
    goto exit;
fail:
    handlers_respond_error(resp, &err);
exit:
    store_write_result_free(&res);
    json_decref(patch);
    json_decref(warnings);
    free(params.manager);
    lo_err_clear(&err);
}

