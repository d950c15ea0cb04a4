/*
 * deletes.c - delete and deletecollection, with DeleteOptions (body and
 * query), preconditions, dry run and finalizers: an object with finalizers
 * is marked (deletionTimestamp) and goes when an update empties them.
 * Both are compare-and-swap writes on the rv read (writes.c's driver): a
 * delete that meets a newer version reads it again and decides again.
 * A LanguageCluster is always marked (cascade.h): the writer takes its
 * namespace's objects with it, and the cluster itself once they are gone.
 */
#include "langop/registry/deletes.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "langop/core/codec.h"
#include "langop/core/status.h"
#include "langop/registry/cascade.h"
#include "langop/request/decode.h"
#include "langop/schema/objmeta.h"

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

/* The body's propagationPolicy: a string of the enumeration, or null. */
static int body_propagation(const json_t *value, propagation_t *out, lo_err_t *err)
{
    if (value == NULL || json_is_null(value))
        return 0;
    if (!json_is_string(value)) {
        status_bad_request(err, "DeleteOptions.propagationPolicy must be a string");
        return -1;
    }
    /* no owner references are followed here: every policy deletes the object alone, and a LanguageCluster
     * its namespace's objects whatever the policy (cascade.h) */
    return options_parse_propagation(json_string_value(value), out, err);
}

static int body_dry_run(const json_t *value, lo_err_t *err)
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
        if (!json_is_string(v)) {
            status_bad_request(err, "dryRun must be a list of strings");
            return -1;
        }
        int r = options_parse_dry_run(json_string_value(v), "DeleteOptions", err);
        if (r < 0)
            return -1;
        dry |= r;
    }
    return dry;
}

/* The body's scalar fields must have their types, as Go's decoder of DeleteOptions insists (400). */
static int body_types(const json_t *opts, lo_err_t *err)
{
    const json_t *grace = json_object_get(opts, "gracePeriodSeconds");
    const json_t *orphan = json_object_get(opts, "orphanDependents");
    if (grace && !json_is_null(grace) && !json_is_integer(grace)) {
        status_bad_request(err, "DeleteOptions.gracePeriodSeconds must be an integer (int64)");
        return -1;
    }
    if (orphan && !json_is_null(orphan) && !json_is_boolean(orphan)) {
        status_bad_request(err, "DeleteOptions.orphanDependents must be a boolean");
        return -1;
    }
    return 0;
}

/* The body's kind, when it has one, is DeleteOptions: kube decodes no other object there (400). */
static int body_kind_ok(const json_t *kind)
{
    if (kind == NULL || json_is_null(kind))
        return 1;
    const char *k = json_string_value(kind);
    return k != NULL && (k[0] == '\0' || strcmp(k, "DeleteOptions") == 0);
}

/*
 * DeleteOptions come from the query (decoded with the request's options)
 * and from the body (kubectl sends them there); the body's are checked here.
 */
static int parse_delete_options(const handler_request_t *hr, delete_options_t *o, lo_err_t *err)
{
    memset(o, 0, sizeof(*o));
    o->dry_run = hr->opts->del.dry_run;
    const api_request_t *req = hr->req;
    if (req->body == NULL || req->body_len == 0)
        return 0;
    if (decode_check_size(req, err) != 0)
        return -1;
    json_t *opts = decode_body(req, NULL, err); /* by its Content-Type, as kube reads it: 415 for others */
    if (opts == NULL)
        return -1;
    int ret = -1;
    propagation_t policy = PROPAGATION_UNSET;
    if (!json_is_object(opts)) {
        status_bad_request(err, "the body of a delete must be a DeleteOptions object");
        goto exit;
    }
    if (!body_kind_ok(json_object_get(opts, "kind"))) {
        status_bad_request(err, "decoded object cannot be converted to DeleteOptions");
        goto exit;
    }
    if (body_types(opts, err) != 0 || body_propagation(json_object_get(opts, "propagationPolicy"), &policy, err) != 0)
        goto exit;
    const json_t *orphan = json_object_get(opts, "orphanDependents");
    if (policy != PROPAGATION_UNSET && orphan != NULL && !json_is_null(orphan)) { /* ValidateDeleteOptions */
        lo_err_add_cause(err, "FieldValueInvalid",
                         "Invalid value: \"null\": orphanDependents and deletionPropagation cannot be both set",
                         "propagationPolicy");
        status_invalid(err, "DeleteOptions", "meta.k8s.io", "");
        goto exit;
    }
    int dry = body_dry_run(json_object_get(opts, "dryRun"), err);
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

static int check_delete_preconditions(const handler_request_t *hr, const delete_options_t *opts, const char *name,
                                      const json_t *current, lo_err_t *err)
{
    const char *uid = objmeta_get_string(current, "uid");
    const char *rv = objmeta_get_string(current, "resourceVersion");
    char why[256];
    if (opts->precondition_uid && (uid == NULL || strcmp(uid, opts->precondition_uid) != 0)) {
        snprintf(why, sizeof(why), "Precondition failed: UID in precondition: %s, UID in object meta: %s",
                 opts->precondition_uid, uid ? uid : "");
        status_conflict(err, hr->kind->plural, SCHEMA_GROUP, name, why);
        return -1;
    }
    if (opts->precondition_rv && (rv == NULL || strcmp(rv, opts->precondition_rv) != 0)) {
        snprintf(why, sizeof(why),
                 "Precondition failed: ResourceVersion in precondition: %s, ResourceVersion in object meta: %s",
                 opts->precondition_rv, rv ? rv : "");
        status_conflict(err, hr->kind->plural, SCHEMA_GROUP, name, why);
        return -1;
    }
    return 0;
}

/*
 * The op that deletes current (read at rv), into *op: a DELETE, or - with
 * finalizers pending - a PUT of a copy marked deleting (*marked, a new ref
 * the caller keeps while op is queued). Returns 0, 1 when nothing is to be
 * written (already being deleted), -1 with err. A LanguageCluster is
 * always marked, also when it is being deleted already: that write runs
 * the cascade rule again, which settles a cluster whose namespace emptied
 * without it (cascade.h); it is a no-op otherwise.
 */
static int delete_op(const handler_request_t *hr, const delete_options_t *opts, const json_t *current, int64_t rv,
                     store_op_t *op, json_t **marked, lo_err_t *err)
{
    const char *name = objmeta_get_string(current, "name");
    const char *ns = objmeta_get_string(current, "namespace");
    if (check_delete_preconditions(hr, opts, name, current, err) != 0)
        return -1;
    *op = (store_op_t){.resource = hr->kind->plural, .ns = ns ? ns : "", .name = name, .current = current,
                       .expect_rv = rv, .dry_run = opts->dry_run, .kind = STORE_WRITE_DELETE};
    if (cascade_owns_namespace(hr->kind)) {
        *marked = json_deep_copy(current);
        cascade_mark(*marked);
        op->kind = STORE_WRITE_PUT;
        op->object = *marked;
        return 0;
    }
    if (!objmeta_has_finalizers(current))
        return 0;
    /* finalizers pending: mark it; it goes when an update empties them */
    if (objmeta_is_deleting(current))
        return 1;
    *marked = json_deep_copy(current);
    objmeta_mark_deleting(*marked);
    op->kind = STORE_WRITE_PUT;
    op->object = *marked;
    return 0;
}

static int64_t object_rv(const json_t *obj)
{
    const char *rv = objmeta_get_string(obj, "resourceVersion");
    return rv ? strtoll(rv, NULL, 10) : STORE_RV_ANY;
}

/* ---- delete ---- */

typedef struct delete_job {
    handlers_write_t w;     /* first: the driver's callbacks get &job->w */
    delete_options_t opts;
    cascade_result_t cascade;  /* what the writer's cascade rule did (a LanguageCluster) */
} delete_job_t;

static int delete_prepare(handlers_write_t *w, lo_err_t *err)
{
    delete_job_t *d = (delete_job_t *)w;
    int64_t rv = 0;
    if (handlers_read_current(w->hr, w->name, &w->current, &rv, err) != STORE_OK)
        return -1;
    int rc = delete_op(w->hr, &d->opts, w->current, rv, &w->op, &w->next, err);
    if (rc == 0)
        cascade_attach(&w->op, &d->cascade);
    return rc;
}

/* A completed delete answers a Status; one that waits for finalizers the object as it was left. */
static void delete_answer(handlers_write_t *w, api_response_t *resp)
{
    const handler_request_t *hr = w->hr;
    delete_job_t *d = (delete_job_t *)w;
    if (w->op.rc == STORE_OK && (w->op.done_kind == STORE_WRITE_DELETE || d->cascade.gone)) {
        json_t *st = status_success(w->name, SCHEMA_GROUP, hr->kind->plural, objmeta_get_string(w->op.result, "uid"));
        handlers_respond_object(hr, resp, 200, st);
        json_decref(st);
    } else if (d->cascade.cluster) { /* the cascade released its finalizer; others hold it */
        handlers_respond_object(hr, resp, 200, d->cascade.cluster);
    } else { /* still there, with deletionTimestamp */
        handlers_respond_object(hr, resp, 200, w->op.result ? w->op.result : w->current);
    }
}

static void delete_release(handlers_write_t *w)
{
    delete_job_t *d = (delete_job_t *)w;
    delete_options_free(&d->opts);
    cascade_result_clear(&d->cascade);
    free(d);
}

void deletes_one(const handler_request_t *hr, api_response_t *resp)
{
    lo_err_t err = {0};
    delete_job_t *d = lo_calloc(1, sizeof(*d));
    d->w = (handlers_write_t){.hr = hr, .name = hr->info->name, .prepare = delete_prepare,
                              .retry = handlers_retry_on_conflict, .answer = delete_answer, .release = delete_release};
    if (parse_delete_options(hr, &d->opts, &err) != 0) {
        handlers_respond_error(resp, &err);
        delete_release(&d->w);
    } else {
        handlers_write_run(&d->w, resp);
    }
    lo_err_clear(&err);
}

/* ---- deletecollection ---- */

#define COLLECTION_PAGE STORE_BATCH_MAX  /* items listed and deleted per round: one writer batch */
#define COLLECTION_ATTEMPTS 16           /* rounds an item that keeps changing is retried */

/*
 * A collection delete in rounds: list a page after the last key (at the
 * newest rv), hand its deletes to the writer in one submission (so they
 * commit in one batch), collect what went, retry what moved meanwhile from
 * a fresh read, then the next page. Memory holds one page at a time.
 */
typedef struct collection_job {
    const handler_request_t *hr;
    delete_options_t opts;
    json_t *deleted;          /* what the answer lists */
    json_t *page;             /* the objects the ops were built from (refs held for them) */
    json_t *marked;           /* the marked copies of the ops that mark */
    store_op_t *ops;
    cascade_result_t *cascades;  /* what the cascade rule did, one per op */
    size_t n;
    char *after_ns, *after_name;
    int more;                 /* pages remain after this one */
    int attempts;
} collection_job_t;

static void collection_free(collection_job_t *c)
{
    for (size_t i = 0; i < c->n; i++) {
        store_op_clear(&c->ops[i]);
        cascade_result_clear(&c->cascades[i]);
    }
    free(c->ops);
    free(c->cascades);
    json_decref(c->page);
    json_decref(c->marked);
    json_decref(c->deleted);
    free(c->after_ns);
    free(c->after_name);
    delete_options_free(&c->opts);
    free(c);
}

/* Builds the ops of c->page; items being deleted already are answered as they are. */
static void collection_ops(collection_job_t *c)
{
    size_t n = json_array_size(c->page);
    c->ops = lo_realloc(c->ops, (n ? n : 1) * sizeof(*c->ops));
    c->cascades = lo_realloc(c->cascades, (n ? n : 1) * sizeof(*c->cascades));
    memset(c->cascades, 0, (n ? n : 1) * sizeof(*c->cascades));
    c->n = 0;
    json_decref(c->marked);
    c->marked = json_array();
    for (size_t i = 0; i < n; i++) {
        const json_t *item = json_array_get(c->page, i);
        json_t *marked = NULL;
        lo_err_t err = {0};
        int rc = delete_op(c->hr, &c->opts, item, object_rv(item), &c->ops[c->n], &marked, &err);
        if (marked)
            json_array_append_new(c->marked, marked);
        if (rc == 0) {
            cascade_attach(&c->ops[c->n], &c->cascades[c->n]);
            c->n++;
        } else if (rc == 1) {
            json_array_append(c->deleted, (json_t *)item);
        }
        lo_err_clear(&err); /* a failed precondition skips the item, as kube's collection delete does */
    }
}

static void collection_resumed(void *ctx, api_response_t *resp);

/* Re-reads the items whose delete met a newer version; those still there make the next round. */
static json_t *collection_moved(collection_job_t *c)
{
    json_t *again = json_array();
    for (size_t i = 0; i < c->n; i++) {
        store_op_t *op = &c->ops[i];
        if (op->rc == STORE_OK) { /* a cluster released by the cascade: as the rule left it */
            json_array_append(c->deleted, c->cascades[i].cluster ? c->cascades[i].cluster : op->result);
        } else if (op->rc == STORE_CONFLICT) {
            json_t *fresh = NULL;
            if (store_get(c->hr->store, op->resource, op->ns, op->name, &fresh, NULL, NULL) == STORE_OK &&
                handlers_filter_keep(fresh, (void *)&c->hr->opts->list))
                json_array_append(again, fresh);
            json_decref(fresh);
        }
        /* gone meanwhile (someone else deleted it): skipped, as kube does */
        store_op_clear(op);
        cascade_result_clear(&c->cascades[i]);
    }
    c->n = 0;
    return again;
}

static void collection_answer(collection_job_t *c, api_response_t *resp)
{
    const handler_request_t *hr = c->hr;
    json_t *list = json_pack("{s:s, s:s, s:{}, s:O}", "apiVersion", SCHEMA_GROUP_VERSION, "kind",
                             hr->kind->list_kind, "metadata", "items", c->deleted);
    handlers_respond_object(hr, resp, 200, list);
    json_decref(list);
    collection_free(c);
}

/* The next round: the moved items again, or the next page, or the answer. */
static void collection_round(collection_job_t *c, api_response_t *resp, json_t *again /* stolen */)
{
    lo_err_t err = {0};
    json_decref(c->page);
    c->page = NULL;
    if (json_array_size(again) > 0 && ++c->attempts < COLLECTION_ATTEMPTS) {
        c->page = again;
    } else {
        json_decref(again);
        c->attempts = 0;
        if (!c->more) {
            collection_answer(c, resp);
            return;
        }
        const handler_request_t *hr = c->hr;
        store_list_opts_t lo = {.resource = hr->kind->plural, .ns = hr->kind->namespaced ? hr->info->ns : "",
                                .after_ns = c->after_ns, .after_name = c->after_name, .limit = COLLECTION_PAGE,
                                .skip_remaining = 1, .filter = handlers_filter_keep, .filter_ctx = (void *)&c->hr->opts->list};
        store_list_result_t res;
        if (store_list(hr->store, &lo, &res, &err) != STORE_OK) {
            char why[LO_ERR_MESSAGE_MAX / 2];
            snprintf(why, sizeof(why), "%.400s", err.message);
            status_internal(&err, "listing %s: %s", hr->kind->plural, why);
            handlers_respond_error(resp, &err);
            collection_free(c);
            lo_err_clear(&err);
            return;
        }
        c->more = res.more;
        free(c->after_ns);
        free(c->after_name);
        c->after_ns = res.last_ns;
        c->after_name = res.last_name;
        res.last_ns = res.last_name = NULL;
        c->page = json_incref(res.items);
        store_list_result_free(&res);
    }
    collection_ops(c);
    if (c->n == 0) {
        collection_round(c, resp, json_array());
        return;
    }
    handlers_defer(resp, c->ops, c->n, collection_resumed, c);
}

static void collection_resumed(void *ctx, api_response_t *resp)
{
    collection_job_t *c = ctx;
    for (size_t i = 0; i < c->n; i++) {
        if (c->ops[i].rc == STORE_BUSY || c->ops[i].rc == STORE_IO) {
            lo_err_t err = {0};
            handlers_op_error(c->hr, resp, &c->ops[i], c->ops[i].name, &err);
            handlers_respond_error(resp, &err);
            lo_err_clear(&err);
            collection_free(c);
            return;
        }
    }
    collection_round(c, resp, collection_moved(c));
}

void deletes_collection(const handler_request_t *hr, api_response_t *resp)
{
    lo_err_t err = {0};
    collection_job_t *c = lo_calloc(1, sizeof(*c));
    c->hr = hr;
    c->deleted = json_array();
    c->more = 1;
    /* a collection delete lists first, with the same options a list takes: refused as a list refuses them */
    if (parse_delete_options(hr, &c->opts, &err) != 0) {
        handlers_respond_error(resp, &err);
        collection_free(c);
    } else {
        collection_round(c, resp, json_array());
    }
    lo_err_clear(&err);
}
