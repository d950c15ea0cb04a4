/*
 * discovery.h - the discovery documents: /api, /api/v1, /apis,
 * /apis/langop.io and /apis/langop.io/v1alpha1, in the legacy form and the
 * aggregated forms (apidiscovery.k8s.io v2 and v2beta1).
 *
 * The documents are built once from the schema registry and are immutable:
 * each has its ETag (a content hash) and If-None-Match gives 304. For /api
 * and /apis the form is chosen by the first acceptable Accept entry, and
 * Content-Type names it (kubectl 1.27-1.29 understand only v2beta1, newer
 * ones v2: answering a client in a form it did not ask for breaks it).
 */
#ifndef LANGOP_DISCOVERY_H
#define LANGOP_DISCOVERY_H

#include "langop/request/message.h"

typedef struct discovery discovery_t;

/** Builds every document. server_address is advertised in /api (host:port). */
discovery_t *discovery_new(const char *server_address);
void discovery_free(discovery_t *d);

/**
 * Answers path if it is a discovery path: fills resp and returns 1;
 * returns 0 for any other path.
 */
int discovery_handle(const discovery_t *d, const char *path, const char *accept, const char *if_none_match,
                     api_response_t *resp);

/** The verbs served on a main resource (a NULL-terminated static list). */
extern const char *const discovery_resource_verbs[];

#endif
