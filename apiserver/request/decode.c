/*
 * decode.c - request body -> object of a kind (see langop/decode.h).
 */
#include "langop/request/decode.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "langop/core/codec.h"
#include "langop/core/status.h"
#include "langop/core/text.h"
#include "langop/request/negotiate.h"
#include "langop/schema/objmeta.h"
#include "langop/schema/validate.h"

int decode_field_validation(const char *value, const char *options_kind, field_validation_t *out, lo_err_t *err)
{
    if (value == NULL || value[0] == '\0' || strcmp(value, "Warn") == 0)
        *out = FIELD_VALIDATION_WARN;
    else if (strcmp(value, "Strict") == 0)
        *out = FIELD_VALIDATION_STRICT;
    else if (strcmp(value, "Ignore") == 0)
        *out = FIELD_VALIDATION_IGNORE;
    else { /* apimachinery's ValidateFieldValidation: the Options object is invalid */
        char msg[LO_ERR_MESSAGE_MAX / 2];
        snprintf(msg, sizeof(msg), "Unsupported value: \"%.100s\": supported values: \"\", \"Ignore\", \"Strict\", "
                 "\"Warn\"", value);
        lo_err_add_cause(err, "FieldValueNotSupported", msg, "fieldValidation");
        status_invalid(err, options_kind, "meta.k8s.io", "");
        return -1;
    }
    return 0;
}

static void unsupported_media_type(lo_err_t *err)
{
    lo_err_set(err, 415, "UnsupportedMediaType",
               "the body of the request was in an unknown format - accepted media types include: "
               "application/json, application/yaml");
}

int decode_check_size(const api_request_t *req, lo_err_t *err)
{
    if (req->body_len <= API_MAX_BODY)
        return 0;
    lo_err_set(err, 413, "RequestEntityTooLarge", "Request entity too large: limit is %u", API_MAX_BODY);
    return -1;
}

json_t *decode_body(const api_request_t *req, json_t **duplicates, lo_err_t *err)
{
    if (duplicates)
        *duplicates = NULL;
    if (decode_check_size(req, err) != 0)
        return NULL;
    if (req->body == NULL || req->body_len == 0) {
        status_bad_request(err, "the request body is empty: an object is required");
        return NULL;
    }
    /* no Content-Type is the first type served, JSON, as kube's NegotiateInputSerializer takes it */
    const char *type = req->content_type && req->content_type[0] ? req->content_type : "application/json";
    media_type_t ct;
    if (negotiate_parse_one(type, &ct) != 0 || strcmp(ct.type, "application") != 0) {
        unsupported_media_type(err);
        return NULL;
    }
    if (strcmp(ct.subtype, "json") == 0)
        return codec_decode_json_checked(req->body, req->body_len, duplicates, err);
    if (strcmp(ct.subtype, "yaml") == 0)
        return codec_decode_yaml_checked(req->body, req->body_len, duplicates, err);
    unsupported_media_type(err);
    return NULL;
}

/* "unknown field \"spec.foo\"" style texts for each path of paths (borrowed). */
static void describe_fields(const char *what, const json_t *paths, json_t *texts)
{
    size_t i;
    json_t *p;
    json_array_foreach(paths, i, p) {
        char *t = lo_sprintf("%s field \"%s\"", what, json_string_value(p));
        json_array_append_new(texts, json_string(t));
        free(t);
    }
}

static void strict_error(const schema_kind_t *k, const json_t *problems, lo_err_t *err)
{
    char list[LO_ERR_MESSAGE_MAX];
    size_t used = 0;
    list[0] = '\0';
    size_t i;
    json_t *p;
    json_array_foreach(problems, i, p) {
        int w = snprintf(list + used, sizeof(list) - used, "%s%s", i ? ", " : "", json_string_value(p));
        if (w < 0 || (size_t)w >= sizeof(list) - used)
            break;
        used += (size_t)w;
    }
    status_bad_request(err, "%s in version \"%s\" cannot be handled as a %s: strict decoding error: %s", k->kind,
                       SCHEMA_VERSION, k->kind, list);
}

int decode_unknown_fields(const schema_kind_t *k, const json_t *unknown, const json_t *duplicates,
                          field_validation_t fv, json_t *warnings, lo_err_t *err)
{
    json_t *problems = json_array();
    int ret = 0;
    describe_fields("unknown", unknown, problems);
    describe_fields("duplicate", duplicates, problems);
    if (json_array_size(problems) > 0) {
        if (fv == FIELD_VALIDATION_STRICT) {
            strict_error(k, problems, err);
            ret = -1;
        } else if (fv == FIELD_VALIDATION_WARN && warnings) {
            json_array_extend(warnings, problems);
        }
    }
    json_decref(problems);
    return ret;
}

json_t *decode_object(const schema_kind_t *k, const api_request_t *req, field_validation_t fv, json_t *warnings,
                      lo_err_t *err)
{
    json_t *duplicates = NULL;
    json_t *obj = decode_body(req, &duplicates, err);
    json_t *unknown = json_array();
    if (obj == NULL || objmeta_check_envelope(k, obj, err) != 0 || objmeta_check_types(k, obj, err) != 0)
        goto fail;
    validate_prune(k, obj, unknown);
    if (decode_unknown_fields(k, unknown, duplicates, fv, warnings, err) != 0)
        goto fail;
    validate_default(k, obj);
    json_decref(duplicates);
    json_decref(unknown);
    return obj;
fail:
    json_decref(obj);
    json_decref(duplicates);
    json_decref(unknown);
    return NULL;
}

/*
 * At most this many Warning headers: a body with thousands of unknown fields
 * must not make a response no client accepts. The last one then says how
 * many more there were, so none goes missing silently.
 */
#define WARNINGS_MAX 32

static void add_warning(api_response_t *resp, const char *text)
{
    char *quoted = text_header_quoted(text); /* a quoted-string of RFC 9110's warn-text */
    char *value = lo_sprintf("299 - \"%s\"", quoted);
    api_response_add_header(resp, "warning", value);
    free(value);
    free(quoted);
}

void decode_add_warnings(api_response_t *resp, const json_t *warnings)
{
    size_t n = json_array_size(warnings);
    for (size_t i = 0; i < n; i++) {
        if (i == WARNINGS_MAX - 1 && n > WARNINGS_MAX) {
            char more[64];
            snprintf(more, sizeof(more), "%zu more warnings", n - i);
            add_warning(resp, more);
            break;
        }
        add_warning(resp, json_string_value(json_array_get(warnings, i)));
    }
}
