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

/*
 * kubectl sends built-in types as protobuf: the "k8s\0" magic, then a
 * runtime.Unknown whose field 2 holds the object. Only the few fields a
 * review names are read, all strings or sub-messages (wire type 2); other
 * wire types are skipped.
 */
typedef struct pb {
    const unsigned char *p, *end;
} pb_t;

static int pb_varint(pb_t *b, uint64_t *v)
{
    *v = 0;
    for (int shift = 0; shift < 64 && b->p < b->end; shift += 7) {
        unsigned char c = *b->p++;
        *v |= (uint64_t)(c & 0x7f) << shift;
        if (!(c & 0x80))
            return 0;
    }
    return -1;
}

/* The next field: 1 with its number and, for wire type 2, its bytes; 0 at the end; -1 if malformed. */
static int pb_next(pb_t *b, uint32_t *field, pb_t *bytes)
{
    uint64_t tag, v;
    while (b->p < b->end) {
        if (pb_varint(b, &tag) != 0)
            return -1;
        *field = (uint32_t)(tag >> 3);
        switch (tag & 7) {
        case 0: if (pb_varint(b, &v) != 0) return -1; break;
        case 1: if (b->end - b->p < 8) return -1; b->p += 8; break;
        case 5: if (b->end - b->p < 4) return -1; b->p += 4; break;
        case 2:
            if (pb_varint(b, &v) != 0 || v > (uint64_t)(b->end - b->p))
                return -1;
            *bytes = (pb_t){b->p, b->p + v};
            b->p += v;
            return 1;
        default: return -1;
        }
    }
    return 0;
}

/* The sub-message (or string) `field` of msg; empty when absent. */
static pb_t pb_field(pb_t msg, uint32_t field)
{
    pb_t out = {msg.p, msg.p}, bytes;
    uint32_t f;
    while (pb_next(&msg, &f, &bytes) == 1)
        if (f == field)
            out = bytes;
    return out;
}

/* Copies the string fields of msg named in keys (index = field number - 1) into obj. */
static void pb_strings(pb_t msg, const char *const *keys, size_t n, json_t *obj)
{
    pb_t bytes;
    uint32_t f;
    while (pb_next(&msg, &f, &bytes) == 1) {
        if (f >= 1 && f <= n && bytes.end > bytes.p) {
            char *s = lo_strndup((const char *)bytes.p, (size_t)(bytes.end - bytes.p));
            json_object_set_new(obj, keys[f - 1], lo_json_text(s));
            free(s);
        }
    }
}

/* {"spec": ...} from a protobuf SelfSubjectAccessReview (new reference), or NULL. */
static json_t *ssar_from_protobuf(const char *body, size_t len)
{
    static const char *const ra_keys[] = {"namespace", "verb", "group", "version", "resource", "subresource", "name"};
    static const char *const nra_keys[] = {"path", "verb"};
    if (len < 4 || memcmp(body, "k8s\0", 4) != 0)
        return NULL;
    pb_t unknown = {(const unsigned char *)body + 4, (const unsigned char *)body + len};
    pb_t spec = pb_field(pb_field(unknown, 2), 2);
    pb_t ra = pb_field(spec, 1), nra = pb_field(spec, 2);
    json_t *out = json_object();
    if (ra.end > ra.p) {
        json_t *attrs = json_object();
        pb_strings(ra, ra_keys, 7, attrs);
        json_object_set_new(out, "resourceAttributes", attrs);
    } else if (nra.end > nra.p) {
        json_t *attrs = json_object();
        pb_strings(nra, nra_keys, 2, attrs);
        json_object_set_new(out, "nonResourceAttributes", attrs);
    }
    return json_pack("{s:o}", "spec", out);
}

/* The review's body as JSON (new reference), from JSON or protobuf; NULL when it is neither. */
static json_t *review_body(const api_request_t *req)
{
    if (req->body == NULL)
        return NULL;
    if (req->content_type && strncmp(req->content_type, "application/vnd.kubernetes.protobuf", 35) == 0)
        return ssar_from_protobuf(req->body, req->body_len);
    return json_loadb(req->body, req->body_len, 0, NULL);
}

static void can_i(authz_t *authz, const api_request_t *req, api_response_t *resp)
{
    json_t *body = review_body(req);
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

/*
 * The resource list of each review's group-version, for clients that look
 * before they post (kubectl api-resources --api-group=..., a discovery
 * client asked for the group-version). The groups are not added to /apis:
 * they are kube-apiserver's, and a server behind the aggregator must not
 * claim them.
 */
static int serve_resource_list(const char *path, api_response_t *resp)
{
    static const struct {
        const char *path, *group_version, *name, *kind;
    } lists[] = {
        {"/apis/" AUTHN_GROUP "/v1", AUTHN_GROUP "/v1", "selfsubjectreviews", "SelfSubjectReview"},
        {"/apis/" AUTHZ_GROUP "/v1", AUTHZ_GROUP "/v1", "selfsubjectaccessreviews", "SelfSubjectAccessReview"},
    };
    for (size_t i = 0; i < sizeof(lists) / sizeof(lists[0]); i++) {
        if (strcmp(path, lists[i].path) != 0)
            continue;
        json_t *doc = json_pack("{s:s, s:s, s:s, s:[{s:s, s:s, s:b, s:s, s:[s]}]}", "kind", "APIResourceList",
                                "apiVersion", "v1", "groupVersion", lists[i].group_version, "resources", "name",
                                lists[i].name, "singularName", "", "namespaced", 0, "kind", lists[i].kind, "verbs",
                                "create");
        api_response_set_json(resp, 200, "application/json", doc);
        json_decref(doc);
        return 1;
    }
    return 0;
}

int selfreview_discovery(const char *method, const char *path, api_response_t *resp)
{
    return strcmp(method, "GET") == 0 && serve_resource_list(path, resp);
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
