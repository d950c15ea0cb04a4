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
#include "langop/store.h"

typedef struct handler_request {
    store_t *store;
    const schema_kind_t *kind;
    const reqinfo_t *info;       /* verb, namespace ("" when absent for cluster-scoped), name, query */
    const api_request_t *req;    /* headers and body */
    const char *cluster_domain;  /* for derived status and config */
} handler_request_t;

void handlers_serve(const handler_request_t *hr, api_response_t *resp);

#endif
