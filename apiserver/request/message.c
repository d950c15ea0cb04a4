/*
 * message.c - the request and the response of one API call (see
 * langop/request/message.h).
 */
#include "langop/request/message.h"

#include <stdlib.h>
#include <string.h>

#include "langop/core/codec.h"
#include "langop/core/status.h"
#include "langop/core/text.h"

void api_user_copy(api_user_t *dst, const api_user_t *src)
{
    memset(dst, 0, sizeof(*dst));
    dst->name = src->name ? lo_strdup(src->name) : NULL;
    dst->uid = src->uid ? lo_strdup(src->uid) : NULL;
    for (size_t i = 0; i < API_MAX_GROUPS - 1 && src->groups[i]; i++)
        dst->groups[i] = lo_strdup(src->groups[i]);
    dst->extra = src->extra ? json_deep_copy(src->extra) : NULL;
}

void api_user_free(api_user_t *user)
{
    free(user->name);
    free(user->uid);
    for (size_t i = 0; i < API_MAX_GROUPS && user->groups[i]; i++)
        free(user->groups[i]);
    json_decref(user->extra);
    memset(user, 0, sizeof(*user));
}

void api_request_free(api_request_t *req)
{
    free(req->method);
    free(req->target);
    free(req->accept);
    free(req->content_type);
    free(req->if_none_match);
    free(req->user_agent);
    free(req->body);
    free(req->peer_chain_pem);
    api_user_free(&req->user);
    for (size_t i = 0; i < req->header_count; i++) {
        free(req->headers[i].name);
        free(req->headers[i].value);
    }
    free(req->headers);
    memset(req, 0, sizeof(*req));
}

const char *api_request_header(const api_request_t *req, const char *name)
{
    for (size_t i = 0; i < req->header_count; i++)
        if (strcmp(req->headers[i].name, name) == 0)
            return req->headers[i].value;
    return NULL;
}

void api_response_free(api_response_t *resp)
{
    if (resp->call)
        resp->call_free(resp->call);
    if (resp->watch)
        resp->watch_free(resp->watch);
    if (resp->list)
        resp->list_free(resp->list);
    free(resp->content_type);
    free(resp->body);
    free(resp->impersonated_user);
    for (size_t i = 0; i < resp->header_count; i++) {
        free(resp->header_names[i]);
        free(resp->header_values[i]);
    }
    free(resp->header_names);
    free(resp->header_values);
    memset(resp, 0, sizeof(*resp));
}

void api_response_add_header(api_response_t *resp, const char *name, const char *value)
{
    if (resp->header_count == resp->header_cap) {
        resp->header_cap = resp->header_cap ? 2 * resp->header_cap : 4;
        resp->header_names = lo_realloc(resp->header_names, resp->header_cap * sizeof(char *));
        resp->header_values = lo_realloc(resp->header_values, resp->header_cap * sizeof(char *));
    }
    resp->header_names[resp->header_count] = lo_strdup(name);
    resp->header_values[resp->header_count] = text_header_value(value);
    resp->header_count++;
}

static void set_body(api_response_t *resp, int status, const char *content_type, char *body /* stolen */)
{
    free(resp->content_type);
    free(resp->body);
    resp->status = status;
    resp->content_type = lo_strdup(content_type);
    resp->body = body;
    resp->body_len = strlen(body);
}

void api_response_set_json(api_response_t *resp, int status, const char *content_type, const json_t *value)
{
    size_t len;
    char *text = codec_encode_json_len(value, &len);
    set_body(resp, status, content_type, text);
    resp->body_len = len;
}

void api_response_set_json_text(api_response_t *resp, int status, const char *content_type, char *text, size_t len)
{
    set_body(resp, status, content_type, text);
    resp->body_len = len;
}

void api_response_set_text(api_response_t *resp, int status, const char *text)
{
    set_body(resp, status, "text/plain; charset=utf-8", lo_strdup(text));
}

void api_response_set_error(api_response_t *resp, const lo_err_t *err)
{
    json_t *st = status_from_err(err);
    api_response_set_json(resp, (int)json_integer_value(json_object_get(st, "code")), "application/json", st);
    json_decref(st);
}
