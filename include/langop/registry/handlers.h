/*
 * handlers.h - what the resource verbs share: the request they serve, the
 * answers, store errors as Status, selectors, and the driver of a
 * write. The verbs are in reads.h, writes.h and deletes.h, reached through
 * dispatch.h; no kind has code of its own here.
 *
 * The caller (api.c) has already resolved the kind and checked that the
 * path shape fits the verb; handlers decode the body, apply the Kubernetes
 * semantics (objmeta.h), and encode the answer. A write is prepared here,
 * on the request's worker, against the object as read, and handed to the
 * store's writer as a compare-and-swap (store.h); the handler goes on when
 * the writer answers (handlers_defer), and prepares again from a fresh read
 * if the object moved meanwhile, as kube-apiserver's GuaranteedUpdate does.
 * hr stays valid until the answer is complete.
 */
#ifndef LANGOP_HANDLERS_H
#define LANGOP_HANDLERS_H

#include "langop/core/selector.h"
#include "langop/request/message.h"
#include "langop/request/options.h"
#include "langop/request/reqinfo.h"
#include "langop/schema/schema.h"
#include "langop/storage/store.h"

typedef struct handler_request {
    store_t *store;
    const schema_kind_t *kind;
    const reqinfo_t *info;       /* verb, namespace ("" when absent for cluster-scoped), name, query */
    const api_request_t *req;    /* headers and body */
    const options_t *opts;       /* the query options, decoded and checked (options.h) */
    const char *cluster_domain;  /* for derived status and config */
} handler_request_t;


/* ---- shared by the verb modules (reads.c, writes.c, deletes.c) ---- */

/** The namespace of the URL, "" when there is none. */
const char *handlers_url_ns(const handler_request_t *hr);
/** Answers the Status of err. */
void handlers_respond_error(api_response_t *resp, lo_err_t *err);
/**
 * Hands ops to the store's writer; resume(ctx, resp) runs on a worker once
 * all are answered (each op's rc may also be STORE_BUSY: the queue was full).
 * An op without an after rule gets the cascade rule (cascade.h), so that no
 * write of the API leaves a LanguageCluster waiting on an empty namespace.
 * The handler returns right after this call.
 */
void handlers_defer(api_response_t *resp, store_op_t *ops, size_t n, api_resume_fn resume, void *ctx);
/**
 * The Status for a store op that failed (op->rc != STORE_OK), into err: 404,
 * 409 AlreadyExists or Conflict, 429 (with Retry-After on resp), the check's
 * own error, or 500.
 */
void handlers_op_error(const handler_request_t *hr, api_response_t *resp, store_op_t *op, const char *name,
                       lo_err_t *err);
/*
 * One write driven to its answer (handlers_write_run): prepare fills op from
 * a fresh read (0), answers at once without writing (1: answer is called),
 * or fails (-1 with err); the writer commits op; if retry says so, another
 * attempt prepares again (up to a bound, then the failure is answered);
 * answer runs after a successful op. A verb embeds this struct first in its
 * own and frees everything in release.
 */
typedef struct handlers_write handlers_write_t;
struct handlers_write {
    const handler_request_t *hr;
    const char *name;                 /* the object, for error messages */
    store_op_t op;                    /* the attempt in flight */
    json_t *current, *next;           /* refs held for op: the object as read, the one to store */
    int attempts;
    int (*prepare)(handlers_write_t *w, lo_err_t *err);
    int (*retry)(const handlers_write_t *w);
    void (*answer)(handlers_write_t *w, api_response_t *resp);
    void (*release)(handlers_write_t *w);
};

void handlers_write_run(handlers_write_t *w, api_response_t *resp);
/** A retry rule: the object moved since it was read. */
int handlers_retry_on_conflict(const handlers_write_t *w);

/** Reads the object of the URL: STORE_OK, or the Status in err (404, 500). */
int handlers_read_current(const handler_request_t *hr, const char *name, json_t **current, int64_t *rv,
                          lo_err_t *err);
/** Answers the result of a successful op: its stored bytes as they are when JSON is wanted. */
void handlers_respond_stored(const handler_request_t *hr, api_response_t *resp, int status, store_op_t *op);
/** Answers obj as JSON, YAML or a Table per Accept. */
void handlers_respond_object(const handler_request_t *hr, api_response_t *resp, int status, json_t *obj);

/** store_filter_fn over the request's selectors (ctx: its options_list_t). */
int handlers_filter_keep(const json_t *obj, void *ctx);
/** 1 if the request has a labelSelector or fieldSelector. */
int handlers_has_selectors(const handler_request_t *hr);


#endif
