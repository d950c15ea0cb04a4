/*
 * dispatch.c - a resource request to the verb that serves it (see
 * langop/registry/dispatch.h).
 */
#include "langop/registry/dispatch.h"

#include <string.h>

#include "langop/derive/derive.h"
#include "langop/registry/deletes.h"
#include "langop/registry/reads.h"
#include "langop/registry/writes.h"

/* ---- dispatch ---- */

static void method_not_allowed(api_response_t *resp)
{
    lo_err_t err = {0};
    lo_err_set(&err, 405, "MethodNotAllowed", "the server does not allow this method on the requested resource");
    handlers_respond_error(resp, &err);
    lo_err_clear(&err);
}

void dispatch_resource(const handler_request_t *hr, api_response_t *resp)
{
    const char *verb = hr->info->verb;
    const derive_subresource_t *derived =
        hr->info->subresource ? derive_subresource_find(hr->kind->kind, hr->info->subresource) : NULL;
    if (derived) {
        reads_derived(hr, resp, derived);
        return;
    }
    int status = hr->info->subresource != NULL;
    if (status) {
        if (strcmp(verb, "get") == 0)
            reads_get(hr, resp);
        else if (strcmp(verb, "update") == 0)
            writes_update(hr, resp, 1);
        else if (strcmp(verb, "patch") == 0)
            writes_patch(hr, resp, "status");
        else
            method_not_allowed(resp);
        return;
    }
    if (strcmp(verb, "get") == 0)
        reads_get(hr, resp);
    else if (strcmp(verb, "list") == 0)
        reads_list(hr, resp);
    else if (strcmp(verb, "watch") == 0)
        reads_watch(hr, resp);
    else if (strcmp(verb, "create") == 0)
        writes_create(hr, resp);
    else if (strcmp(verb, "update") == 0)
        writes_update(hr, resp, 0);
    else if (strcmp(verb, "patch") == 0)
        writes_patch(hr, resp, NULL);
    else if (strcmp(verb, "delete") == 0)
        deletes_one(hr, resp);
    else if (strcmp(verb, "deletecollection") == 0)
        deletes_collection(hr, resp);
    else
        method_not_allowed(resp);
}
