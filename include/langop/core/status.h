/*
 * status.h - Kubernetes Status objects and the standard API errors.
 *
 * The fill functions write the code, reason, message and details that
 * kube-apiserver uses for the same condition (reference: apimachinery
 * pkg/api/errors), so kubectl prints its usual one-line messages, e.g.
 *   Error from server (NotFound): languagemodels.langop.io "x" not found
 */
#ifndef LANGOP_STATUS_H
#define LANGOP_STATUS_H

#include <jansson.h>
#include "langop/core/common.h"

/** New Status object (kind Status, apiVersion v1, status Failure) for err. A code of 0 reads as 500. */
json_t *status_from_err(const lo_err_t *err);

/** New Status object for a successful delete: status Success, details {name, group, kind, uid}. */
json_t *status_success(const char *name, const char *group, const char *resource, const char *uid);

/* Fill err with a standard error about <resource>.<group> "name". */
void status_not_found(lo_err_t *err, const char *resource, const char *group, const char *name);
void status_already_exists(lo_err_t *err, const char *resource, const char *group, const char *name);
void status_conflict(lo_err_t *err, const char *resource, const char *group, const char *name, const char *why);
/** 422 Invalid: message `<Kind>.<group> "name" is invalid: <causes joined>`; causes already in err->details. */
void status_invalid(lo_err_t *err, const char *kind, const char *group, const char *name);
void status_bad_request(lo_err_t *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void status_internal(lo_err_t *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
