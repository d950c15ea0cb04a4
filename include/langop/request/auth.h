/*
 * auth.h - authentication of requests.
 *
 * Today: static bearer tokens from a file in kube-apiserver's
 * --token-auth-file format (CSV: token,user,uid,"group1,group2"), for
 * standalone use. Every authenticated user gets the group
 * system:authenticated, as kube does. Authorization is AlwaysAllow for
 * authenticated users; delegated authentication (front-proxy headers,
 * client certificates, TokenReview) and authorization (SubjectAccessReview)
 * plug in behind these same calls.
 *
 * The health endpoints (/healthz, /livez, /readyz and their sub-paths) are
 * always allowed, without credentials, as in kube's AlwaysAllowPaths.
 */
#ifndef LANGOP_AUTH_H
#define LANGOP_AUTH_H

#include "langop/core/common.h"
#include "langop/request/message.h"

typedef struct auth auth_t;

/** Loads the token file (NULL = no tokens: every request but health is 401). NULL + err on a bad file. */
auth_t *auth_new(const char *token_file, lo_err_t *err);
void auth_free(auth_t *auth);

/** Number of tokens loaded. */
size_t auth_token_count(const auth_t *auth);

/**
 * Authenticates from the Authorization header value (may be NULL).
 * Returns 0 and fills user (caller frees with api_user_free), or -1.
 * Token comparison is constant-time.
 */
int auth_authenticate(const auth_t *auth, const char *authorization, api_user_t *user);

/** 1 if path (without query) needs no credentials. */
int auth_path_always_allowed(const char *path);

#endif
