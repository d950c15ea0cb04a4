/*
 * status.c - Kubernetes Status objects and the standard errors, worded as
 * apimachinery's pkg/api/errors words them (kubectl prints them verbatim).
 */
#include "langop/core/status.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

json_t *status_from_err(const lo_err_t *err)
{
    int code = err && err->code ? err->code : 500;
    const char *reason = err && err->reason[0] ? err->reason : "InternalError";
    const char *message = err && err->message[0] ? err->message : "an error on the server has prevented the request from succeeding";
    /* lo_json_text: a message that escaped the error channel's repair still makes a Status */
    json_t *st = json_pack("{s:s, s:s, s:{}, s:s, s:o, s:o, s:i}", "kind", "Status", "apiVersion", "v1", "metadata",
                           "status", "Failure", "message", lo_json_text(message), "reason", lo_json_text(reason),
                           "code", code);
    if (err && err->details)
        json_object_set_new(st, "details", json_deep_copy(err->details));
    return st;
}

json_t *status_success(const char *name, const char *group, const char *resource, const char *uid)
{
    json_t *details = json_pack("{s:s, s:s, s:s}", "name", name, "group", group, "kind", resource);
    if (uid)
        json_object_set_new(details, "uid", json_string(uid));
    return json_pack("{s:s, s:s, s:{}, s:s, s:o}", "kind", "Status", "apiVersion", "v1", "metadata", "status",
                     "Success", "details", details);
}

static void set_object_details(lo_err_t *err, const char *resource, const char *group, const char *name)
{
    json_t *details = json_object();
    if (name && name[0])
        json_object_set_new(details, "name", lo_json_text(name));
    json_object_set_new(details, "group", json_string(group));
    json_object_set_new(details, "kind", json_string(resource));
    lo_err_set_details(err, details);
}

void status_not_found(lo_err_t *err, const char *resource, const char *group, const char *name)
{
    lo_err_set(err, 404, "NotFound", "%s.%s \"%s\" not found", resource, group, name);
    set_object_details(err, resource, group, name);
}

void status_already_exists(lo_err_t *err, const char *resource, const char *group, const char *name)
{
    lo_err_set(err, 409, "AlreadyExists", "%s.%s \"%s\" already exists", resource, group, name);
    set_object_details(err, resource, group, name);
}

void status_conflict(lo_err_t *err, const char *resource, const char *group, const char *name, const char *why)
{
    lo_err_set(err, 409, "Conflict", "Operation cannot be fulfilled on %s.%s \"%s\": %s", resource, group, name, why);
    set_object_details(err, resource, group, name);
}

void status_invalid(lo_err_t *err, const char *kind, const char *group, const char *name)
{
    if (err == NULL)
        return;
    json_t *causes = err->details ? json_object_get(err->details, "causes") : NULL;
    size_t n = json_array_size(causes);
    char list[LO_ERR_MESSAGE_MAX];
    size_t used = 0;
    list[0] = '\0';
    for (size_t i = 0; i < n && used < sizeof(list); i++) {
        json_t *c = json_array_get(causes, i);
        const char *field = json_string_value(json_object_get(c, "field"));
        const char *msg = json_string_value(json_object_get(c, "message"));
        int w = snprintf(list + used, sizeof(list) - used, "%s%s%s%s", i ? ", " : "", field ? field : "",
                         field ? ": " : "", msg ? msg : "");
        if (w < 0)
            break;
        used += (size_t)w;
    }
    if (n > 1)
        lo_err_set(err, 422, "Invalid", "%s.%s \"%s\" is invalid: [%s]", kind, group, name, list);
    else if (n == 1)
        lo_err_set(err, 422, "Invalid", "%s.%s \"%s\" is invalid: %s", kind, group, name, list);
    else
        lo_err_set(err, 422, "Invalid", "%s.%s \"%s\" is invalid", kind, group, name);
    if (err->details == NULL)
        err->details = json_object();
    json_object_set_new(err->details, "name", lo_json_text(name));
    json_object_set_new(err->details, "group", json_string(group));
    json_object_set_new(err->details, "kind", json_string(kind));
}

void status_bad_request(lo_err_t *err, const char *fmt, ...)
{
    if (err == NULL)
        return;
    va_list ap;
    va_start(ap, fmt);
    lo_err_setv(err, 400, "BadRequest", fmt, ap);
    va_end(ap);
}

void status_internal(lo_err_t *err, const char *fmt, ...)
{
    if (err == NULL)
        return;
    va_list ap;
    va_start(ap, fmt);
    lo_err_setv(err, 500, "InternalError", fmt, ap);
    va_end(ap);
}
