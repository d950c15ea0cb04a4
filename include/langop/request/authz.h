/*
 * authz.h - authorization of requests, and impersonation.
 *
 * A request's attributes (who, which verb on what) get a decision from the
 * configured mode:
 *   AlwaysAllow  every authenticated request is allowed (standalone default);
 *   Webhook      a SubjectAccessReview (authorization.k8s.io/v1) is POSTed to
 *                kube-apiserver through the kube client; its answers, allow
 *                and deny, are cached per attribute set for a TTL each.
 * The group system:masters is always allowed, without a review, as kube's
 * privileged-group authorizer does. A review that fails (no answer, a non-2xx
 * answer, no status) is never an allow: the request is refused (403 saying
 * the check failed) and nothing is cached, so the next request asks again.
 *
 * Verbs follow kube's mapping (reqinfo.h): get list watch create update patch
 * delete deletecollection on resources; the lower-case HTTP method on
 * non-resource paths; impersonate for impersonation.
 *
 * Threads: authz_check() may be called from any number of worker threads at
 * once (the cache has its own lock). A webhook check blocks its worker for
 * the review's round trip on a cache miss.
 */
#ifndef LANGOP_AUTHZ_H
#define LANGOP_AUTHZ_H

#include <stdint.h>
#include "langop/core/common.h"
#include "langop/kube/kubeclient.h"
#include "langop/request/message.h"
#include "langop/request/reqinfo.h"

typedef enum authz_mode { AUTHZ_ALWAYS_ALLOW, AUTHZ_WEBHOOK } authz_mode_t;

/** What a decision is about. Every pointer is borrowed; NULL and "" are alike. */
typedef struct authz_attrs {
    const api_user_t *user;
    const char *verb;
    int is_resource;
    const char *group, *version, *resource, *subresource, *ns, *name; /* resource requests */
    const char *path;                                                 /* non-resource requests */
} authz_attrs_t;

typedef struct authz_options {
    authz_mode_t mode;
    kube_client_t *client;      /* Webhook: taken (freed by authz_free, also on failure) */
    int64_t allowed_ttl_ms;     /* how long an allow is cached; 0: not cached */
    int64_t denied_ttl_ms;      /* how long a deny is cached; 0: not cached */
} authz_options_t;

typedef struct authz authz_t;

/** NULL and err when the options do not fit (Webhook without a client). */
authz_t *authz_new(const authz_options_t *opts, lo_err_t *err);
void authz_free(authz_t *a);

/** Parses "AlwaysAllow" / "Webhook"; -1 for anything else. */
int authz_mode_parse(const char *text, authz_mode_t *out);

/** The attributes of a parsed request on behalf of user (all borrowed from info and user). */
authz_attrs_t authz_attrs_of(const reqinfo_t *info, const api_user_t *user);

#define AUTHZ_ALLOW 1
#define AUTHZ_DENY 0
#define AUTHZ_ERROR (-1)

/**
 * Decides. Returns AUTHZ_ALLOW, AUTHZ_DENY (with *reason: the reviewer's
 * reason, a new string or NULL; the caller frees it) or AUTHZ_ERROR (err
 * says why; never an allow). reason may be NULL.
 */
int authz_check(authz_t *a, const authz_attrs_t *attrs, char **reason, lo_err_t *err);

/**
 * Fills err with kube's 403 Forbidden Status for attrs: the message names
 * user, verb and target (and appends ": <reason>" when reason is given),
 * details {name, group, kind: resource}.
 */
void authz_forbidden(const authz_attrs_t *attrs, const char *reason, lo_err_t *err);

/**
 * Impersonation from the Impersonate-User, -Group (repeatable), -Uid and
 * -Extra-<key> headers of req, checked for req->user. Returns 0 when the
 * request impersonates no one; 1 with *as filled (the caller frees it with
 * api_user_free) when every impersonation is allowed; -1 with err (403,
 * or 400 for headers that do not fit together) otherwise.
 */
int authz_impersonate(authz_t *a, const api_request_t *req, api_user_t *as, lo_err_t *err);

/** Reviews made to kube-apiserver so far (cache misses): for tests and logs. */
uint64_t authz_review_count(const authz_t *a);

#endif
