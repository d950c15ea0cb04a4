/*
 * decode.h - from the body of a write request to the object the API works
 * on: size limit, media type, JSON or YAML, the envelope of the kind, then
 * the structural schema: unknown and duplicate fields handled as the
 * fieldValidation parameter says, and defaults applied.
 *
 * fieldValidation (kube's semantics):
 *   Strict -> an unknown or duplicate field is a 400 BadRequest:
 *     <Kind> in version "v1alpha1" cannot be handled as a <Kind>: strict
 *     decoding error: unknown field "spec.foo", duplicate field "spec.bar"
 *   Warn (the default) -> the field is dropped and a warning returned,
 *     which the client shows (Warning: 299 - "unknown field \"spec.foo\"")
 *   Ignore -> dropped silently.
 */
#ifndef LANGOP_DECODE_H
#define LANGOP_DECODE_H

#include <jansson.h>
#include "langop/core/common.h"
#include "langop/request/message.h"
#include "langop/schema/schema.h"

typedef enum field_validation {
    FIELD_VALIDATION_WARN = 0,
    FIELD_VALIDATION_IGNORE = 1,
    FIELD_VALIDATION_STRICT = 2,
} field_validation_t;

/** Parses the fieldValidation query value (NULL or "" = Warn); anything else is 422 Invalid of options_kind
 * (CreateOptions, UpdateOptions, PatchOptions). */
int decode_field_validation(const char *value, const char *options_kind, field_validation_t *out, lo_err_t *err);

/** 413 RequestEntityTooLarge (and -1) when the body is over API_MAX_BODY; 0 otherwise. */
int decode_check_size(const api_request_t *req, lo_err_t *err);

/**
 * Decodes a body as JSON or YAML by its Content-Type (413 above
 * API_MAX_BODY, 415 for other types, 400 for malformed text or an empty
 * body). *duplicates (may be NULL) receives a new array of duplicate field
 * paths found in JSON. New reference or NULL with err.
 */
json_t *decode_body(const api_request_t *req, json_t **duplicates, lo_err_t *err);

/**
 * decode_body + envelope check for kind k + pruning per fv + defaulting.
 * Warning texts are appended to warnings (borrowed array of strings).
 * New reference or NULL with err.
 */
json_t *decode_object(const schema_kind_t *k, const api_request_t *req, field_validation_t fv, json_t *warnings,
                      lo_err_t *err);

/**
 * Applies fieldValidation to the unknown and duplicate field paths of a
 * body (borrowed arrays, either may be NULL): Strict -> -1 with the 400;
 * Warn -> their warning texts appended to warnings; Ignore -> nothing.
 */
int decode_unknown_fields(const schema_kind_t *k, const json_t *unknown, const json_t *duplicates,
                          field_validation_t fv, json_t *warnings, lo_err_t *err);

/** Appends kube's Warning header value for each text in warnings to resp (299 - "..."). */
void decode_add_warnings(api_response_t *resp, const json_t *warnings);

#endif
