/*
 * handlers.c - what the verb modules share (reads.c, writes.c, deletes.c):
 * the answers, store errors as Status, dry run, selectors, and the driver
 * of a write (prepare, hand to the writer, retry after a conflict).
 */
#include "langop/registry/handlers.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "langop/core/continuetoken.h"
#include "langop/core/status.h"
#include "langop/registry/cascade.h"
#include "langop/request/encode.h"
#include "langop/schema/objmeta.h"
#include "langop/schema/table.h"

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
    /* every write keeps the namespace lifecycle (cascade.h): one that ends a deletion may end its cluster's */
    for (size_t i = 0; i < n; i++)
        if (ops[i].after == NULL)
            cascade_attach(&ops[i], NULL);
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

/*
 * The answer to a write: the object (with its derived status) as JSON,
 * YAML or a one-row Table. A Status or a List passes through as JSON, as
 * kube's transformation does. The format was checked with the options.
 */
void handlers_respond_object(const handler_request_t *hr, api_response_t *resp, int status, json_t *obj)
{
    encode_format_t format = hr->opts->format;
    int own_kind = json_is_object(obj) && json_object_get(obj, "spec") != NULL;
    if (format == ENCODE_TABLE && own_kind) {
        json_t *table = table_render_object(hr->kind, obj, hr->opts->include, 1, (int64_t)time(NULL));
        encode_object(resp, status, ENCODE_TABLE, table);
        json_decref(table);
    } else {
        encode_object(resp, status, format == ENCODE_TABLE ? ENCODE_JSON : format, obj);
    }
}

void handlers_respond_stored(const handler_request_t *hr, api_response_t *resp, int status, store_op_t *op)
{
    if (hr->opts->format == ENCODE_JSON && op->result_json) {
        api_response_set_json_text(resp, status, "application/json", op->result_json, op->result_json_len);
        op->result_json = NULL;
        return;
    }
    handlers_respond_object(hr, resp, status, op->result);
}

/* ---- selectors ---- */

int handlers_filter_keep(const json_t *obj, void *ctx)
{
    const options_list_t *f = ctx;
    const json_t *labels = json_object_get(json_object_get(obj, "metadata"), "labels");
    return label_selector_matches(f->labels, labels) && field_selector_matches(f->fields, obj);
}

int handlers_has_selectors(const handler_request_t *hr)
{
    return hr->opts->list.label_text[0] || hr->opts->list.field_text[0];
}

/*
 * Preparations of one write before a conflict is answered 409. A conflict
 * here is the server's own compare-and-swap losing to another write that
 * committed meanwhile (a client's resourceVersion is checked in prepare, not
 * retried), so a client without a precondition never asked for it:
 * kube-apiserver's GuaranteedUpdate retries until it succeeds. 16 was
 * reached by 32 clients patching one object at once; this bound is only
 * against a store that would answer conflicts for ever.
 */
#define WRITE_ATTEMPTS 1024

/* ---- the driver ---- */

/* Forgets the previous attempt: its op's results and the objects it was built from. */
static void attempt_reset(handlers_write_t *w)
{
    store_op_clear(&w->op);
    json_decref(w->current);
    json_decref(w->next);
    w->current = w->next = NULL;
    memset(&w->op, 0, sizeof(w->op));
}

static void write_finish(handlers_write_t *w)
{
    attempt_reset(w);
    w->release(w);
}

static void write_resumed(void *ctx, api_response_t *resp);

/* 1 if write_resumed() will try again: the op failed in a way the write's rule retries, within the bound. */
static int write_retries(const handlers_write_t *w)
{
    return w->op.rc != STORE_OK && w->op.rc != STORE_BUSY && w->retry(w) && w->attempts + 1 < WRITE_ATTEMPTS;
}

/* api_deferred_t.light: no new attempt, and an answer encoded as JSON (its bytes mostly come stored). */
static int write_light(void *ctx)
{
    const handlers_write_t *w = ctx;
    return !write_retries(w) && w->hr->opts->format == ENCODE_JSON;
}

/* One attempt: prepare and hand the op to the writer, or answer at once. */
static void write_attempt(handlers_write_t *w, api_response_t *resp)
{
    lo_err_t err = {0};
    attempt_reset(w);
    int rc = w->prepare(w, &err);
    if (rc == 0) {
        handlers_defer(resp, &w->op, 1, write_resumed, w);
        resp->deferred.light = write_light;
    } else {
        if (rc > 0)
            w->answer(w, resp);
        else
            handlers_respond_error(resp, &err);
        write_finish(w);
    }
    lo_err_clear(&err);
}

static void write_resumed(void *ctx, api_response_t *resp)
{
    handlers_write_t *w = ctx;
    if (write_retries(w)) {
        w->attempts++;
        write_attempt(w, resp);
        return;
    }
    if (w->op.rc == STORE_OK) {
        w->answer(w, resp);
    } else {
        lo_err_t err = {0};
        handlers_op_error(w->hr, resp, &w->op, w->name, &err);
        handlers_respond_error(resp, &err);
        lo_err_clear(&err);
    }
    write_finish(w);
}

int handlers_retry_on_conflict(const handlers_write_t *w)
{
    return w->op.rc == STORE_CONFLICT;
}

void handlers_write_run(handlers_write_t *w, api_response_t *resp)
{
    write_attempt(w, resp);
}
