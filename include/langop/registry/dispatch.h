/*
 * dispatch.h - a resource request to the verb that serves it. The caller (api.c)
 * has resolved the kind and checked that the path fits the verb.
 */
#ifndef LANGOP_DISPATCH_H
#define LANGOP_DISPATCH_H

#include "langop/registry/handlers.h"

/** Serves hr with its verb (get, list, watch, create, update, patch, delete, deletecollection, subresources). */
void dispatch_resource(const handler_request_t *hr, api_response_t *resp);

#endif
