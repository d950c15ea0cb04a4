/*
 * handlers.h - the resource verbs: get, list, create, update, delete,
 * deletecollection, and the status subresource, for any kind of the
 * schema registry (no kind has code of its own here).
 *
 * The caller (api.c) has already resolved the kind and checked that the
 * path shape fits the verb; handlers decode the body, apply the Kubernetes
 * semantics (objmeta.h), run one store transaction and encode the answer.
 */
#ifndef LANGOP_HANDLERS_H
#define LANGOP_HANDLERS_H

#include "langop/api.h"
#include "langop/reqinfo.h"
#include "langop/schema.h"
#include "langop/selector.h"
#include "langop/store.h"

typedef struct handler_request {
    store_t *store;
    const schema_kind_t *kind;
    const reqinfo_t *info;       /* verb, namespace ("" when absent for cluster-scoped), name, query */
    const api_request_t *req;    /* headers and body */
    const char *cluster_domain;  /* for derived status and config */
} handler_request_t;

void handlers_serve(const handler_request_t *hr, api_response_t *resp);

/* ---- shared by the verb modules (handlers.c, writes.c, deletes.c) ---- */

/** The namespace of the URL, "" when there is none. */
const char *handlers_url_ns(const handler_request_t *hr);
/** Answers the Status of err. */
void handlers_respond_error(api_response_t *resp, lo_err_t *err);
/**
 * Checks, before a write, that its answer can be given as the client
 * accepts (406 otherwise): a write that cannot be answered is not made.
 */
int handlers_check_output(const handler_request_t *hr, lo_err_t *err);
/** Answers obj (its computed status overlaid) as JSON, YAML or a Table per Accept. */
void handlers_respond_object(const handler_request_t *hr, api_response_t *resp, int status, json_t *obj);
/** dryRun: "All" -> 1, unset -> 0, anything else -> -1 with 400. */
int handlers_parse_dry_run(const char *value, lo_err_t *err);
int handlers_query_dry_run(const handler_request_t *hr, lo_err_t *err);

/** The label and field selectors of a list, watch or deletecollection. */
typedef struct handlers_filter {
    label_selector_t *labels;
    field_selector_t *fields;
} handlers_filter_t;

int handlers_filter_parse(const handler_request_t *hr, handlers_filter_t *f, lo_err_t *err);
/** store_filter_fn over a handlers_filter_t. */
int handlers_filter_keep(const json_t *obj, void *ctx);
void handlers_filter_free(handlers_filter_t *f);
/**
 * Checks the list options of a list or deletecollection (limit,
 * continue, resourceVersion(Match), timeoutSeconds, the booleans,
 * sendInitialEvents, which only a watch takes). 400 on the first bad one.
 */
int handlers_check_list_options(const handler_request_t *hr, lo_err_t *err);
/** 1 if the request has a labelSelector or fieldSelector. */
int handlers_has_selectors(const handler_request_t *hr);

/* The verbs of writes.c and deletes.c. */
void handlers_create(const handler_request_t *hr, api_response_t *resp);
void handlers_update(const handler_request_t *hr, api_response_t *resp, int status_subresource);
void handlers_patch(const handler_request_t *hr, api_response_t *resp, const char *subresource);
void handlers_delete(const handler_request_t *hr, api_response_t *resp);
void handlers_deletecollection(const handler_request_t *hr, api_response_t *resp);

#endif
