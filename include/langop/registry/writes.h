/*
 * writes.h - create, update (of the object or its status) and patch (JSON,
 * merge, strategic-merge refused, server-side apply) of any kind.
 */
#ifndef LANGOP_WRITES_H
#define LANGOP_WRITES_H

#include "langop/registry/handlers.h"

void writes_create(const handler_request_t *hr, api_response_t *resp);
void writes_update(const handler_request_t *hr, api_response_t *resp, int status_subresource);
/** subresource: NULL for the object, "status" for its status. */
void writes_patch(const handler_request_t *hr, api_response_t *resp, const char *subresource);

#endif
