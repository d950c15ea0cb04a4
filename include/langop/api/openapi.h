/*
 * openapi.h - the OpenAPI documents of the API, generated once at start-up
 * from the schema registry: /openapi/v3 (index), /openapi/v3/apis/langop.io/v1alpha1
 * (OpenAPI 3.0) and /openapi/v2 (Swagger 2.0, as JSON and as gnostic's
 * protobuf Document, langop/api/openapiproto.h).
 *
 * What clients depend on (reference kube-api-protocol.md §1.4, §2): every
 * verb's path and operation with x-kubernetes-action and an object-valued
 * x-kubernetes-group-version-kind; operation-level dryRun, fieldManager,
 * fieldValidation (and force on PATCH) parameters, which kubectl checks
 * before it uses server-side validation; `allOf: [$ref]` wrapping so that
 * descriptions show in `kubectl explain`; self-contained documents with the
 * meta.k8s.io schemas they reference. Each document has an ETag (content
 * hash); If-None-Match gives 304.
 */
#ifndef LANGOP_OPENAPI_H
#define LANGOP_OPENAPI_H

#include "langop/request/message.h"
#include "langop/request/reqinfo.h"

typedef struct openapi openapi_t;

/** Builds the documents from the schema registry (loaded before). */
openapi_t *openapi_new(void);
void openapi_free(openapi_t *o);

/**
 * Answers GET /openapi/v2, /openapi/v3 and /openapi/v3/apis/langop.io/v1alpha1
 * (with ?hash=: 200 immutable when it matches, 301 to the current URL when
 * not). Returns 1 if it handled the path, 0 otherwise. Content negotiation:
 * the first entry of Accept that names a form we have (a wildcard means
 * JSON); /openapi/v2 also has protobuf, with its own ETag; nothing
 * acceptable gets 406.
 */
int openapi_handle(const openapi_t *o, const reqinfo_t *info, const char *accept, const char *if_none_match,
                   api_response_t *resp);

#endif
