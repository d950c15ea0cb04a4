/*
 * writes.c - create, update (main resource and status) and patch (JSON,
 * merge, strategic-as-merge, server-side apply), and the driver every write
 * verb shares (handlers_write_run).
 *
 * A write is prepared on the request's worker: the body decoded, the
 * object as stored read, the patch or the apply merged, defaults, schema,
 * admission (against a read snapshot) and field ownership computed. The
 * store's writer then commits it as a compare-and-swap on the rv that was
 * read, re-running only what must be atomic (the membership and capacity
 * rules, store_op_t.check). If the object moved meanwhile, the writer
 * answers STORE_CONFLICT and the driver prepares again from a fresh read,
 * up to WRITE_ATTEMPTS times, as kube-apiserver's GuaranteedUpdate does; a
 * resourceVersion the client sent is checked at each preparation, so a
 * client's own precondition still fails with 409.
 */
#include "langop/registry/writes.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "langop/core/codec.h"
#include "langop/core/status.h"
#include "langop/core/text.h"
#include "langop/derive/derive.h"
#include "langop/registry/managedfields.h"
#include "langop/registry/patch.h"
#include "langop/request/decode.h"
#include "langop/request/encode.h"
#include "langop/request/negotiate.h"
#include "langop/schema/admission.h"
#include "langop/schema/objmeta.h"
#include "langop/schema/validate.h"

#define GENERATE_NAME_ATTEMPTS 8

/* ---- what creates, updates and patches share ---- */

/* The query parameters every write shares. */
typedef struct write_params {
    int dry_run;
    field_validation_t field_validation;
    char *manager;
} write_params_t;

/* The field manager: ?fieldManager= (checked), else the client's product name (User-Agent up to '/'), as kube does. */
static char *field_manager(const handler_request_t *hr)
{
    const char *m = hr->opts->write.field_manager;
    if (m)
        return lo_strdup(m);
    const char *ua = hr->req->user_agent;
    if (ua == NULL || ua[0] == '\0')
        return lo_strdup("unknown");
    size_t n = strcspn(ua, "/ ");
    /* a header is any bytes: the manager stored in managedFields is valid, printable UTF-8 */
    char *product = lo_strndup(ua, n > 128 ? 128 : n);
    char *manager = text_header_value(product);
    free(product);
    return manager;
}

static void parse_write_params(const handler_request_t *hr, write_params_t *p)
{
    memset(p, 0, sizeof(*p));
    p->dry_run = hr->opts->write.dry_run;
    p->field_validation = hr->opts->write.field_validation;
    p->manager = field_manager(hr);
}

/*
 * One create, update or patch in progress. w stays first: the driver's
 * callbacks get &job->w.
 */
typedef struct object_job {
    handlers_write_t w;
    write_params_t params;
    json_t *warnings;            /* unknown or duplicate fields, for the Warning header */
    json_t *body;                /* the decoded, defaulted object (create, update) or the patch */
    int status_subresource;      /* update or patch of /status */
    int generate;                /* create: metadata.generateName picks the name */
    /* patch */
    int patch_type;
    int force;
    int applying;                /* server-side apply: field ownership is already settled */
    int created;                 /* an apply created the object */
} object_job_t;

static void object_job_release(handlers_write_t *w)
{
    object_job_t *j = (object_job_t *)w;
    json_decref(j->warnings);
    json_decref(j->body);
    free(j->params.manager);
    free(j);
}

/* The shared first step: the job, with the parameters the options decoded. */
static object_job_t *object_job_new(const handler_request_t *hr)
{
    object_job_t *j = lo_calloc(1, sizeof(*j));
    j->w.hr = hr;
    j->w.name = hr->info->name;
    j->w.retry = handlers_retry_on_conflict;
    j->w.release = object_job_release;
    j->warnings = json_array();
    parse_write_params(hr, &j->params);
    return j;
}

/*
 * Runs j with its verb's steps when ok (its first steps went through), or
 * answers err and releases what j holds (j may be NULL: it failed itself).
 */
static void object_job_start(object_job_t *j, api_response_t *resp, int ok, lo_err_t *err,
                             int (*prepare)(handlers_write_t *, lo_err_t *), int (*retry)(const handlers_write_t *),
                             void (*answer)(handlers_write_t *, api_response_t *))
{
    if (ok) {
        j->w.prepare = prepare;
        j->w.retry = retry;
        j->w.answer = answer;
        handlers_write_run(&j->w, resp);
        return;
    }
    if (j)
        object_job_release(&j->w);
    handlers_respond_error(resp, err);
}

/* Answers the stored object (200, or 201 for a create) with the warnings the body brought. */
static void answer_object(object_job_t *j, api_response_t *resp, int status)
{
    handlers_respond_stored(j->w.hr, resp, status, &j->w.op);
    decode_add_warnings(resp, j->warnings);
}

/*
 * Admission on the worker. The writer runs the policy rules atomically
 * anyway, so a valid object is done here; when a field rule fails, every
 * rule runs against a snapshot for the right answer (membership first).
 */
static int admit(const handler_request_t *hr, admission_operation_t op, const json_t *old, const json_t *obj,
                 lo_err_t *err)
{
    if (admission_check_fields(hr->kind, op, old, obj, NULL) == 0)
        return 0;
    lo_err_t e = {0};
    store_txn_t *snap = store_snapshot(hr->store, &e);
    if (snap == NULL) {
        status_internal(err, "cannot read the store: %s", e.message);
        lo_err_clear(&e);
        return -1;
    }
    int rc = admission_check(snap, hr->kind, op, old, obj, err);
    store_snapshot_end(snap);
    return rc;
}

/* store_op_t.check of a create: the writer's rules, atomically with the write. */
static int check_create(store_txn_t *txn, const json_t *obj, void *ctx, lo_err_t *err)
{
    return admission_check_writer(txn, ctx, ADMISSION_CREATE, NULL, obj, err);
}

/* store_op_t.check of an update: the cross-object rules, atomically with the write. */
static int check_update(store_txn_t *txn, const json_t *obj, void *ctx, lo_err_t *err)
{
    return admission_check_writer(txn, ctx, ADMISSION_UPDATE, NULL, obj, err);
}

/* Fills op as a create of next (stolen into w->next). */
static void op_create(object_job_t *j, json_t *next, const char *name)
{
    const handler_request_t *hr = j->w.hr;
    j->w.next = next;
    j->w.name = name;
    j->w.op = (store_op_t){.resource = hr->kind->plural, .ns = hr->kind->namespaced ? handlers_url_ns(hr) : "",
                           .name = name, .kind = STORE_WRITE_PUT, .object = next, .expect_rv = STORE_RV_ABSENT,
                           .check = check_create, .check_ctx = (void *)hr->kind, .dry_run = j->params.dry_run};
}

/* After an update, an object being deleted whose finalizers are all gone is deleted. */
static store_write_kind_t put_or_finish_delete(const json_t *next)
{
    if (objmeta_is_deleting(next) && !objmeta_has_finalizers(next))
        return STORE_WRITE_DELETE;
    return STORE_WRITE_PUT;
}

/* Fills op as an update of the object read (w->current, at rv) to next (stolen into w->next). */
static void op_update(object_job_t *j, json_t *next, int64_t rv)
{
    const handler_request_t *hr = j->w.hr;
    j->w.next = next;
    j->w.op = (store_op_t){.resource = hr->kind->plural, .ns = hr->kind->namespaced ? handlers_url_ns(hr) : "",
                           .name = hr->info->name, .object = next, .current = j->w.current, .expect_rv = rv,
                           .dry_run = j->params.dry_run};
    /* the main resource may end a pending deletion; /status never does */
    j->w.op.kind = j->status_subresource ? STORE_WRITE_PUT : put_or_finish_delete(next);
    if (j->w.op.kind == STORE_WRITE_DELETE)
        j->w.op.object = NULL; /* what goes is the object as stored (kube's DELETED carries its last state) */
    /* a change of spec meets the cross-object rules again; ending a deletion or a status write does not */
    if (j->w.op.kind == STORE_WRITE_PUT && !j->status_subresource &&
        admission_has_writer_rules(hr->kind, ADMISSION_UPDATE)) {
        j->w.op.check = check_update;
        j->w.op.check_ctx = (void *)hr->kind;
    }
}

/*
 * The object an update of current to body stores (new reference, or NULL
 * with err): server-owned fields kept, the main resource or only status
 * changed, then schema, admission and field ownership.
 */
static json_t *updated_object(object_job_t *j, const json_t *current, const json_t *body, lo_err_t *err)
{
    const handler_request_t *hr = j->w.hr;
    const schema_kind_t *k = hr->kind;
    const char *subresource = j->status_subresource ? "status" : NULL;
    if (objmeta_check_preconditions(k, current, body, err) != 0)
        return NULL;
    json_t *merged = subresource ? objmeta_merge_status(current, body) : objmeta_merge_update(k, current, body, err);
    if (merged == NULL)
        return NULL;
    if (j->applying) /* the apply computed the new ownership; the merge kept the old one */
        json_object_set(objmeta_metadata(merged), "managedFields",
                        json_object_get(json_object_get(body, "metadata"), "managedFields"));
    /* a derived field is validated as sent (a bad value is the client's error), then left to the writer */
    if (validate_object(k, merged, err) != 0 || admit(hr, ADMISSION_UPDATE, current, merged, err) != 0) {
        json_decref(merged);
        return NULL;
    }
    derive_strip(k, merged); /* the writer derives them again */
    if (!j->applying)
        managedfields_record_update(k, current, merged, j->params.manager, subresource);
    return merged;
}

/* ---- create ---- */

static int create_prepare(handlers_write_t *w, lo_err_t *err)
{
    object_job_t *j = (object_job_t *)w;
    const handler_request_t *hr = w->hr;
    if (j->generate && objmeta_generate_name(hr->kind, j->body, err) != 0)
        return -1;
    const char *name = objmeta_get_string(j->body, "name");
    if (admit(hr, ADMISSION_CREATE, NULL, j->body, err) != 0)
        return -1;
    /* the writer completes the object in place only once the create goes through: no copy for retries */
    json_t *next = json_incref(j->body);
    if (w->attempts == 0)
        managedfields_record_update(hr->kind, NULL, next, j->params.manager, NULL);
    op_create(j, next, name);
    return 0;
}

/* A generated name that collided is generated again, as kube does. */
static int create_retry(const handlers_write_t *w)
{
    const object_job_t *j = (const object_job_t *)w;
    return j->generate && w->op.rc == STORE_EXISTS && w->attempts + 1 < GENERATE_NAME_ATTEMPTS;
}

static void create_answer(handlers_write_t *w, api_response_t *resp)
{
    answer_object((object_job_t *)w, resp, 201);
}

void writes_create(const handler_request_t *hr, api_response_t *resp)
{
    lo_err_t err = {0};
    object_job_t *j = object_job_new(hr);
    int ok = j && (j->body = decode_object(hr->kind, hr->req, j->params.field_validation, j->warnings, &err)) != NULL &&
             objmeta_prepare_create(hr->kind, handlers_url_ns(hr), j->body, &err) == 0 &&
             validate_object(hr->kind, j->body, &err) == 0;
    if (ok)
        j->generate = objmeta_needs_generated_name(j->body);
    object_job_start(j, resp, ok, &err, create_prepare, create_retry, create_answer);
    lo_err_clear(&err);
}

/* ---- update ---- */

static int update_prepare(handlers_write_t *w, lo_err_t *err)
{
    object_job_t *j = (object_job_t *)w;
    int64_t rv = 0;
    if (handlers_read_current(w->hr, w->hr->info->name, &w->current, &rv, err) != STORE_OK)
        return -1;
    json_t *next = updated_object(j, w->current, j->body, err);
    if (next == NULL)
        return -1;
    op_update(j, next, rv);
    return 0;
}

/* Answered with the object also when the update removed the last finalizer and it is gone. */
static void update_answer(handlers_write_t *w, api_response_t *resp)
{
    answer_object((object_job_t *)w, resp, 200);
}

void writes_update(const handler_request_t *hr, api_response_t *resp, int status_subresource)
{
    lo_err_t err = {0};
    object_job_t *j = object_job_new(hr);
    int ok = j && (j->body = decode_object(hr->kind, hr->req, j->params.field_validation, j->warnings, &err)) != NULL &&
             objmeta_check_target(hr->kind, handlers_url_ns(hr), hr->info->name, j->body, &err) == 0;
    if (ok)
        j->status_subresource = status_subresource;
    object_job_start(j, resp, ok, &err, update_prepare, handlers_retry_on_conflict, update_answer);
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

static int parse_patch_type(const char *content_type, int *out, lo_err_t *err)
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

/* current with the patch applied (new reference), or NULL with err. */
static json_t *patched_document(const object_job_t *j, const json_t *current, lo_err_t *err)
{
    json_t *doc = NULL;
    switch (j->patch_type) {
    case PATCH_JSON:
        return patch_json(current, j->body, err);
    case PATCH_MERGE:
    case PATCH_STRATEGIC: /* our lists declare no merge keys: a strategic merge patch is a merge patch */
        return patch_merge(current, j->body);
    case PATCH_APPLY:
        if (managedfields_apply(j->w.hr->kind, current, j->body, j->params.manager, j->force,
                                j->status_subresource ? "status" : NULL, &doc, err) != 0)
            return NULL;
        return doc;
    }
    return NULL;
}

/*
 * kube's answer to a JSON or merge patch whose result or text fails strict
 * decoding (patch.go): 422 Invalid with the cause on the field "patch".
 */
static void invalid_patch(lo_err_t *err, const char *detail)
{
    char cause[LO_ERR_MESSAGE_MAX / 2];
    snprintf(cause, sizeof(cause), "Invalid value: \"...\": %.300s", detail);
    lo_err_clear(err);
    lo_err_add_cause(err, "FieldValueInvalid", cause, "patch");
    lo_err_set(err, 422, "Invalid", "\"\" is invalid: patch: %s", cause);
}

/* The envelope, unknown fields (per fieldValidation), defaults and URL target of a patched document. */
static int normalize_patched(const object_job_t *j, json_t *doc, lo_err_t *err)
{
    const handler_request_t *hr = j->w.hr;
    if (objmeta_check_envelope(hr->kind, doc, err) != 0)
        return -1;
    if (j->patch_type != PATCH_APPLY) { /* an applied config was pruned before it was merged */
        json_t *unknown = json_array();
        validate_prune(hr->kind, doc, unknown);
        int refused = decode_unknown_fields(hr->kind, unknown, NULL, j->params.field_validation, j->warnings, err);
        json_decref(unknown);
        if (refused) {
            const char *strict = strstr(err->message, "strict decoding error");
            char detail[LO_ERR_MESSAGE_MAX];
            snprintf(detail, sizeof(detail), "%s", strict ? strict : err->message);
            invalid_patch(err, detail);
            return -1;
        }
    }
    validate_default(hr->kind, doc);
    return objmeta_check_target(hr->kind, handlers_url_ns(hr), hr->info->name, doc, err);
}

/* Server-side apply of an object that does not exist yet: a create. */
static int apply_create(object_job_t *j, lo_err_t *err)
{
    const handler_request_t *hr = j->w.hr;
    const schema_kind_t *k = hr->kind;
    json_t *doc = patched_document(j, NULL, err);
    if (doc == NULL || normalize_patched(j, doc, err) != 0)
        goto fail;
    json_t *owners = json_incref(json_object_get(objmeta_metadata(doc), "managedFields"));
    int rc = objmeta_prepare_create(k, handlers_url_ns(hr), doc, err);
    if (owners)
        json_object_set_new(objmeta_metadata(doc), "managedFields", owners);
    if (rc != 0 || validate_object(k, doc, err) != 0 || admit(hr, ADMISSION_CREATE, NULL, doc, err) != 0)
        goto fail;
    j->created = 1;
    op_create(j, doc, hr->info->name);
    return 0;
fail:
    json_decref(doc);
    return -1;
}

static int patch_prepare(handlers_write_t *w, lo_err_t *err)
{
    object_job_t *j = (object_job_t *)w;
    const handler_request_t *hr = w->hr;
    int64_t rv = 0;
    lo_err_t missing = {0};
    j->created = 0;
    int rc = handlers_read_current(hr, hr->info->name, &w->current, &rv, &missing);
    if (rc == STORE_NOT_FOUND && j->patch_type == PATCH_APPLY && !j->status_subresource) {
        lo_err_clear(&missing);
        return apply_create(j, err);
    }
    if (rc != STORE_OK) {
        lo_err_clear(err);
        *err = missing;
        return -1;
    }
    json_t *doc = patched_document(j, w->current, err);
    if (doc == NULL || normalize_patched(j, doc, err) != 0) {
        json_decref(doc);
        return -1;
    }
    json_t *next = updated_object(j, w->current, doc, err);
    json_decref(doc);
    if (next == NULL)
        return -1;
    op_update(j, next, rv);
    return 0;
}

/* A conflict, or an apply's create that lost to another create: read again and merge again. */
static int patch_retry(const handlers_write_t *w)
{
    return w->op.rc == STORE_CONFLICT || (((const object_job_t *)w)->created && w->op.rc == STORE_EXISTS);
}

static void patch_answer(handlers_write_t *w, api_response_t *resp)
{
    object_job_t *j = (object_job_t *)w;
    answer_object(j, resp, j->created ? 201 : 200);
}

/*
 * A key the patch has twice, as kube's patch handler treats it per
 * fieldValidation: Strict refuses an apply patch as undecodable (400) and a
 * JSON or merge patch as an invalid "patch" (422); Warn warns of the JSON
 * and merge ones. Returns 0, or -1 with err.
 */
static int patch_duplicates(object_job_t *j, const json_t *dups, lo_err_t *err)
{
    if (json_array_size(dups) == 0 || j->params.field_validation == FIELD_VALIDATION_IGNORE)
        return 0;
    const char *first = json_string_value(json_array_get(dups, 0));
    if (j->params.field_validation == FIELD_VALIDATION_WARN) {
        size_t i;
        json_t *d;
        json_array_foreach(dups, i, d) {
            if (j->patch_type != PATCH_APPLY) {
                char *w = lo_sprintf("%sduplicate field \"%s\"", j->patch_type == PATCH_JSON ? "json patch " : "",
                                     json_string_value(d));
                json_array_append_new(j->warnings, lo_json_text(w));
                free(w);
            }
        }
        return 0;
    }
    if (j->patch_type == PATCH_APPLY) {
        status_bad_request(err, "error strict decoding patch: duplicate field \"%s\"", first);
        return -1;
    }
    char detail[LO_ERR_MESSAGE_MAX / 2];
    snprintf(detail, sizeof(detail), "strict decoding error: duplicate field \"%.200s\"", first);
    invalid_patch(err, detail);
    return -1;
}

/* Decodes and checks the patch body for its type. New reference or NULL with err. */
static json_t *decode_patch(object_job_t *j, lo_err_t *err)
{
    const handler_request_t *hr = j->w.hr;
    const api_request_t *req = hr->req;
    if (decode_check_size(req, err) != 0)
        return NULL;
    if (req->body == NULL || req->body_len == 0) {
        status_bad_request(err, "the request body is empty: a patch is required");
        return NULL;
    }
    json_t *dups = NULL;
    json_t *patch = j->patch_type == PATCH_APPLY ? codec_decode_yaml_checked(req->body, req->body_len, &dups, err)
                                                 : codec_decode_json_checked(req->body, req->body_len, &dups, err);
    if (patch == NULL)
        return NULL;
    int ok = patch_duplicates(j, dups, err) == 0;
    json_decref(dups);
    if (!ok) {
        json_decref(patch);
        return NULL;
    }
    if (j->patch_type == PATCH_STRATEGIC)
        ok = patch_check_strategic(patch, err) == 0;
    else if (j->patch_type == PATCH_APPLY) {
        json_t *unknown = json_array();
        ok = objmeta_check_envelope(hr->kind, patch, err) == 0;
        if (ok) {
            validate_prune(hr->kind, patch, unknown);
            ok = !decode_unknown_fields(hr->kind, unknown, NULL, j->params.field_validation, j->warnings, err);
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
static int check_apply_params(object_job_t *j, lo_err_t *err)
{
    const handler_request_t *hr = j->w.hr;
    j->force = hr->opts->write.force;
    if (j->patch_type == PATCH_APPLY) {
        if (hr->opts->write.field_manager == NULL) {
            lo_err_add_cause(err, "FieldValueRequired", "Required value: is required for apply patch", "fieldManager");
            status_invalid(err, "PatchOptions", "meta.k8s.io", "");
            return -1;
        }
    } else if (hr->opts->write.has_force) {
        lo_err_add_cause(err, "FieldValueForbidden", "Forbidden: may not be specified for non-apply patch", "force");
        status_invalid(err, "PatchOptions", "meta.k8s.io", "");
        return -1;
    }
    return 0;
}

void writes_patch(const handler_request_t *hr, api_response_t *resp, const char *subresource)
{
    lo_err_t err = {0};
    object_job_t *j = object_job_new(hr);
    int ok = j && parse_patch_type(hr->req->content_type, &j->patch_type, &err) == 0 &&
             check_apply_params(j, &err) == 0 && (j->body = decode_patch(j, &err)) != NULL;
    if (ok) {
        j->status_subresource = subresource != NULL;
        j->applying = j->patch_type == PATCH_APPLY;
    }
    object_job_start(j, resp, ok, &err, patch_prepare, patch_retry, patch_answer);
    lo_err_clear(&err);
}
