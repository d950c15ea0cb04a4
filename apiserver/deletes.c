/*
 * deletes.c - delete and deletecollection, with DeleteOptions (body and
 * query), preconditions, dry run and finalizers: an object with finalizers
 * is marked (deletionTimestamp) and goes when an update empties them.
 */
#include "langop/handlers.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "langop/codec.h"
#include "langop/decode.h"
#include "langop/objmeta.h"
#include "langop/status.h"

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
    /* kube answers an invalid DeleteOptions with 422, naming the field */
    char msg[256];
    snprintf(msg, sizeof(msg), "Unsupported value: \"%.100s\": supported values: \"Foreground\", \"Background\", "
             "\"Orphan\"", p ? p : "");
    lo_err_add_cause(err, "FieldValueNotSupported", msg, "propagationPolicy");
    status_invalid(err, "DeleteOptions", "meta.k8s.io", "");
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
        int r = handlers_parse_dry_run(json_string_value(v) ? json_string_value(v) : "?", err);
        if (r < 0)
            return -1;
        dry |= r;
    }
    return dry;
}

/* DeleteOptions come from the body (kubectl) and the query (dryRun, propagationPolicy: other clients). */
static int parse_delete_options(const handler_request_t *hr, delete_options_t *o, lo_err_t *err)
{
    memset(o, 0, sizeof(*o));
    o->dry_run = handlers_query_dry_run(hr, err);
    if (o->dry_run < 0)
        return -1;
    const char *policy = reqinfo_query_get(hr->info, "propagationPolicy");
    if (policy && policy[0]) {
        json_t *value = json_string(policy);
        int rc = parse_propagation(value, err);
        json_decref(value);
        if (rc != 0)
            return -1;
    }
    const api_request_t *req = hr->req;
    if (req->body == NULL || req->body_len == 0)
        return 0;
    if (decode_check_size(req, err) != 0)
        return -1;
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

void handlers_delete(const handler_request_t *hr, api_response_t *resp)
{
    lo_err_t err = {0};
    delete_options_t opts = {0};
    json_t *obj = NULL;
    int gone = 0;
    if (handlers_check_output(hr, &err) != 0 || parse_delete_options(hr, &opts, &err) != 0 ||
        delete_one(hr, &opts, hr->kind->namespaced ? handlers_url_ns(hr) : "", hr->info->name, &obj, &gone, &err) != 0) {
        handlers_respond_error(resp, &err);
        goto exit;
    }
    if (gone) {
        json_t *st = status_success(hr->info->name, SCHEMA_GROUP, hr->kind->plural, objmeta_get_string(obj, "uid"));
        handlers_respond_object(hr, resp, 200, st);
        json_decref(st);
    } else {
        handlers_respond_object(hr, resp, 200, obj); /* still there, with deletionTimestamp */
    }
exit:
    json_decref(obj);
    delete_options_free(&opts);
    lo_err_clear(&err);
}

void handlers_deletecollection(const handler_request_t *hr, api_response_t *resp)
{
    lo_err_t err = {0};
    delete_options_t opts = {0};
    handlers_filter_t filter = {0};
    store_list_result_t res = {0};
    json_t *deleted = json_array();
    /* a collection delete lists first, with the same options a list takes: refused as a list refuses them */
    if (handlers_check_output(hr, &err) != 0 || handlers_check_list_options(hr, &err) != 0 ||
        parse_delete_options(hr, &opts, &err) != 0 ||
        handlers_filter_parse(hr, &filter, &err) != 0) {
        handlers_respond_error(resp, &err);
        goto exit;
    }
    store_list_opts_t lo = {.resource = hr->kind->plural, .ns = hr->kind->namespaced ? hr->info->ns : "",
                            .filter = handlers_filter_keep, .filter_ctx = &filter};
    if (store_list(hr->store, &lo, &res, &err) != STORE_OK) {
        handlers_respond_error(resp, &err);
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
    handlers_respond_object(hr, resp, 200, list);
    json_decref(list);
exit:
    json_decref(deleted);
    store_list_result_free(&res);
    handlers_filter_free(&filter);
    delete_options_free(&opts);
    lo_err_clear(&err);
}

