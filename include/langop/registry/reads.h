/*
 * reads.h - the reads of any kind: get, list (paginated, at a resourceVersion,
 * with selectors), watch (a spec the transport streams), and GET of a
 * derived subresource (computed now, never stored).
 */
#ifndef LANGOP_READS_H
#define LANGOP_READS_H

#include "langop/derive/derive.h"
#include "langop/registry/handlers.h"

void reads_get(const handler_request_t *hr, api_response_t *resp);
void reads_list(const handler_request_t *hr, api_response_t *resp);
/** Validates the watch and hands its spec to the transport (api_response_t.watch), which streams it. */
void reads_watch(const handler_request_t *hr, api_response_t *resp);
void reads_derived(const handler_request_t *hr, api_response_t *resp, const derive_subresource_t *sub);

#endif
