/*
 * deletes.h - delete (DeleteOptions: preconditions, propagation, grace, dry
 * run; finalizers make it a mark) and deletecollection (page by page).
 */
#ifndef LANGOP_DELETES_H
#define LANGOP_DELETES_H

#include "langop/registry/handlers.h"

void deletes_one(const handler_request_t *hr, api_response_t *resp);
void deletes_collection(const handler_request_t *hr, api_response_t *resp);

#endif
