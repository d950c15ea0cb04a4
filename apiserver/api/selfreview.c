/*
 * selfreview.c - SelfSubjectReview and SelfSubjectAccessReview (contract in
 * selfreview.h). Neither is stored: the answer is computed and returned.
 */
#include "langop/api/selfreview.h"

#include <stdlib.h>
#include <string.h>

#include "langop/core/status.h"

#define AUTHN_GROUP "authentication.k8s.io"
#define AUTHZ_GROUP "authorization.k8s.io"

static int is_review(const reqinfo_t *info, const char *group, const char *resource)
{
    return info->group && strcmp(info->group, group) == 0 && info->version && strcmp(info->version, "v1") == 0 &&
           info->resource && strcmp(info->resource, resource) == 0 && info->ns == NULL && info->name == NULL &&
           info->subresource == NULL;
}

static void answer_error(api_response_t *resp, int code, const char *reason, const char *message)
{
    lo_err_t err = {0};
    lo_err_set(&err, code, reason, "%s", message);
    api_response_set_error(resp, &err);
    lo_err_clear(&err);
}

/* The user as kube's UserInfo (new reference). */
static json_t *user_info(const api_user_t *u)
{
    json_t *groups = json_array();
    for (size_t i = 0; i < API_MAX_GROUPS && u->groups[i]; i++)
        json_array_append_new(groups, lo_json_text(u->groups[i]));
    json_t *info = json_pack("{s:o, s:o}", "username", lo_json_text(u->name ? u->name : ""), "groups", groups);
    if (u->uid && u->uid[0])
        json_object_set_new(info, "uid", lo_json_text(u->uid));
    if (u->extra && json_object_size(u->extra) > 0)
        json_object_set(info, "extra", u->extra);
    return info;
}

static json_t *review_object(const char *api_version, const char *kind)
{
    char now[32];
    lo_time_rfc3339(now, sizeof(now));
    return json_pack("{s:s, s:s, s:{s:s}}", "kind", kind, "apiVersion", api_version, "metadata",
                     "creationTimestamp", now);
}

static void whoami(const api_request_t *req, api_response_t *resp)
{
    json_t *review = review_object(AUTHN_GROUP "/v1", "SelfSubjectReview");
    json_object_set_new(review, "status", json_pack("{s:o}", "userInfo", user_info(&req->user)));
    api_response_set_json(resp, 201, "application/json", review);
    json_decref(review);
}

static const char *field(const json_t *obj, const char *key)
{
    const char *s = json_string_value(json_object_get(obj, key));
    return s ? s : "";
}

/* The attributes the review asks about; borrowed from spec. -1 when it names none. */
static int spec_attrs(const json_t *spec, const api_user_t *user, authz_attrs_t *at)
{
    const json_t *ra = json_object_get(spec, "resourceAttributes");
    const json_t *nra = json_object_get(spec, "nonResourceAttributes");
    *at = (authz_attrs_t){.user = user};
    if (json_is_object(ra)) {
        *at = (authz_attrs_t){.user = user, .is_resource = 1, .verb = field(ra, "verb"), .group = field(ra, "group"),
                              .version = field(ra, "version"), .resource = field(ra, "resource"),
                              .subresource = field(ra, "subresource"), .ns = field(ra, "namespace"),
                              .name = field(ra, "name")};
        return 0;
    }
    if (json_is_object(nra)) {
        *at = (authz_attrs_t){.user = user, .verb = field(nra, "verb"), .path = field(nra, "path")};
        return 0;
    }
    return -1;
}

/* The review's status: the authorizer's decision; a failed check is "not allowed" with the error. */
static json_t *decide(authz_t *authz, const authz_attrs_t *at)
{
    if (authz == NULL)
        return json_pack("{s:b}", "allowed", 1);
    char *reason = NULL;
    lo_err_t err = {0};
    int rc = authz_check(authz, at, &reason, &err);
    json_t *status = json_pack("{s:b}", "allowed", rc == AUTHZ_ALLOW);
    if (reason)
        json_object_set_new(status, "reason", lo_json_text(reason));
    if (rc == AUTHZ_ERROR)
        json_object_set_new(status, "evaluationError", lo_json_text(err.message));
    free(reason);
    lo_err_clear(&err);
    return status;
}

static void can_i(authz_t *authz, const api_request_t *req, api_response_t *resp)
{
    json_t *body = req->body ? json_loadb(req->body, req->body_len, 0, NULL) : NULL;
    json_t *spec = json_object_get(body, "spec");
    authz_attrs_t at;
    if (!json_is_object(spec) || spec_attrs(spec, &req->user, &at) != 0) {
        answer_error(resp, 400, "BadRequest",
                     "a SelfSubjectAccessReview needs spec.resourceAttributes or spec.nonResourceAttributes");
        json_decref(body);
        return;
    }
    json_t *review = review_object(AUTHZ_GROUP "/v1", "SelfSubjectAccessReview");
    json_object_set(review, "spec", spec);
    json_object_set_new(review, "status", decide(authz, &at));
    api_response_set_json(resp, 201, "application/json", review);
    json_decref(review);
    json_decref(body);
}

int selfreview_handle(authz_t *authz, const api_request_t *req, const reqinfo_t *info, api_response_t *resp)
{
    int who = is_review(info, AUTHN_GROUP, "selfsubjectreviews");
    int may = is_review(info, AUTHZ_GROUP, "selfsubjectaccessreviews");
    if (!who && !may)
        return 0;
    if (strcmp(req->method, "POST") != 0) {
        answer_error(resp, 405, "MethodNotAllowed", "the server does not allow this method on the requested resource");
        return 1;
    }
    if (who)
        whoami(req, resp);
    else
        can_i(authz, req, resp);
    return 1;
}
