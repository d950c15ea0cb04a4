/*
 * auth.h - authentication of requests: who is asking.
 *
 * In kube's order (a delegating extension API server's), the first that
 * vouches for the request wins:
 *   1. front proxy: the TLS client certificate verifies against the
 *      requestheader CA and, when allowed names are set, its Subject CN is
 *      one of them; the identity is read from the configured headers
 *      (requestheader.h);
 *   2. client certificate: it verifies against the client CA; CN is the
 *      user, O values are the groups (certauth.h);
 *   3. bearer token: the static token file first (kube's --token-auth-file
 *      CSV: token,user,uid,"group1,group2"), then, when a kube-apiserver is
 *      configured, a TokenReview (tokenreview.h, cached).
 * Every authenticated user gets the group system:authenticated (once).
 * The front-proxy identity headers are removed from every request, whether
 * or not they were believed, so nothing after authentication reads them.
 *
 * No identity: a request that presented a credential which was rejected
 * (a certificate no CA vouches for, an unknown token, a failed review) is
 * 401, as kube does even with anonymous access on. One that presented
 * none (an Authorization header other than a non-empty Bearer token counts
 * as none, as in kube) is 401 too unless anonymous access is on (--anonymous-auth; off by
 * default here, unlike kube-apiserver, so a standalone server is not open
 * by accident); then it is system:anonymous in group system:unauthenticated.
 * The health endpoints (/healthz, /livez, /readyz and their sub-paths) are
 * served whatever the outcome (kube's AlwaysAllowPaths), as anonymous when
 * nothing vouched for the request.
 *
 * Threads: auth_request() may make a network call (a TokenReview on a
 * cache miss): the server calls it on a worker thread at the start of a
 * request's processing, never on the event loop (server.c, admit_request;
 * authorization follows it there). A review holds its worker for at most
 * the kube client's timeouts (main.c: 3 s to connect, 10 s per attempt,
 * one retry of a failed connection); while kube-apiserver is unreachable,
 * requests with tokens not in the cache are slow to fail. auth_t is immutable after auth_new()
 * but for the review cache and the trust set (auth_reload_trust), which have
 * their own locks: call from any thread.
 *
 * Where the CAs and header names come from: flags and files, else the
 * cluster's kube-system/extension-apiserver-authentication ConfigMap, read
 * at start-up and again every --authentication-config-refresh-interval
 * (authconfig.h, main.c; auth_reload_trust), so rotated CAs are followed.
 * The listener asks for client certificates whenever a CA is known or the
 * trust set follows the cluster (auth_options_t.trust_reloads): a CA that
 * appears later must find connections that carry certificates.
 */
#ifndef LANGOP_AUTH_H
#define LANGOP_AUTH_H

#include <stdint.h>
#include "langop/core/common.h"
#include "langop/kube/kubeclient.h"
#include "langop/request/message.h"

typedef struct auth auth_t;

typedef struct auth_options {
    const char *token_file;                 /* static tokens; NULL: none */
    const char *client_ca_file;             /* client certificates; NULL: not accepted */
    const char *requestheader_ca_file;      /* front-proxy certificates; NULL: no front proxy */
    const char *client_ca_pem;              /* when client_ca_file is NULL: the CA as PEM text (authconfig.h) */
    const char *requestheader_ca_pem;       /* when requestheader_ca_file is NULL: likewise */
    const char *requestheader_allowed_names;      /* comma-separated CNs; NULL: any the CA signed */
    const char *requestheader_username_headers;   /* comma-separated; NULL: X-Remote-User */
    const char *requestheader_group_headers;      /* NULL: X-Remote-Group */
    const char *requestheader_extra_prefixes;     /* NULL: X-Remote-Extra- */
    const char *requestheader_uid_headers;        /* NULL: X-Remote-Uid */
    kube_client_t *tokenreview_client;      /* taken (freed by auth_free, also on failure); NULL: no TokenReview */
    const char *api_audiences;              /* comma-separated, sent in TokenReviews; NULL: none */
    int64_t token_cache_ttl_ms;             /* how long a review's answer is cached */
    int anonymous;                          /* no credentials: system:anonymous rather than 401 */
    int trust_reloads;                      /* auth_reload_trust() will be called: CAs may come later */
} auth_options_t;

/** An authenticator from opts (NULL: no credentials accepted). NULL + err on a bad file. */
auth_t *auth_new(const auth_options_t *opts, lo_err_t *err);
void auth_free(auth_t *auth);

/**
 * Replaces what certificates and front-proxy headers are checked against
 * (the CA and requestheader fields of opts; the others are ignored) with a
 * new set, e.g. after the cluster's CAs rotated. Requests already being
 * authenticated finish with the old set. On error (a CA that does not
 * load) the old set stays and -1 is returned with err. One caller at a time.
 */
int auth_reload_trust(auth_t *auth, const auth_options_t *opts, lo_err_t *err);

/** Number of static tokens loaded. */
size_t auth_token_count(const auth_t *auth);

/**
 * 1 when client certificates can be verified now (a CA is configured) or
 * later (trust_reloads): the listener then asks for certificates. Decided
 * once, when the listener starts.
 */
int auth_wants_client_certs(const auth_t *auth);

#define AUTH_AUTHENTICATED 1
#define AUTH_ANONYMOUS 0        /* allowed in as system:anonymous */
#define AUTH_UNAUTHORIZED (-1)  /* answer 401 */

/**
 * Authenticates req (its Authorization header and peer_chain_pem), fills
 * req->user (freeing what was there) on AUTH_AUTHENTICATED and
 * AUTH_ANONYMOUS, and strips the front-proxy identity headers from req
 * whatever the outcome. May block on a TokenReview: workers only.
 */
int auth_request(const auth_t *auth, api_request_t *req);

/**
 * A static token lookup from an Authorization header value (may be NULL).
 * Returns 0 and fills user (caller frees with api_user_free), or -1.
 * Token comparison is constant-time.
 */
int auth_authenticate(const auth_t *auth, const char *authorization, api_user_t *user);

/** 1 if path (without query) needs no credentials. */
int auth_path_always_allowed(const char *path);

#endif
