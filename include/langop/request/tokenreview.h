/*
 * tokenreview.h - bearer tokens checked by kube-apiserver (a TokenReview,
 * authentication.k8s.io/v1), with a cache.
 *
 * tokenreview_check() makes a network call on a miss: call it from a
 * worker thread, never from the event loop (auth.h). Answers, "this token
 * is user U" and "this token is not valid", are cached for the TTL
 * (kube's --authentication-token-webhook-cache-ttl, 10 s by default), so a
 * client sending the same token again within the TTL costs no call. Errors
 * (kube-apiserver unreachable, 5xx, a malformed answer) are not cached:
 * the next request asks again. Tokens are kept in the cache only as their
 * SHA-256.
 *
 * Threads: any number at once (one lock around the cache, never held
 * during the call).
 */
#ifndef LANGOP_TOKENREVIEW_H
#define LANGOP_TOKENREVIEW_H

#include <stdint.h>
#include "langop/core/common.h"
#include "langop/kube/kubeclient.h"
#include "langop/request/message.h"

typedef struct tokenreview tokenreview_t;

/**
 * Checks tokens against the kube-apiserver of kube (taken: freed by
 * tokenreview_free). audiences: comma-separated, sent as spec.audiences and
 * required in the answer's status.audiences; NULL or "": none sent (the
 * apiserver's own audiences). ttl_ms: how long an answer is cached (0: not).
 */
tokenreview_t *tokenreview_new(kube_client_t *kube, const char *audiences, int64_t ttl_ms);
void tokenreview_free(tokenreview_t *tr);

#define TOKENREVIEW_AUTHENTICATED 1
#define TOKENREVIEW_REJECTED 0
#define TOKENREVIEW_ERROR (-1)

/**
 * Who token is. TOKENREVIEW_AUTHENTICATED fills user (caller frees with
 * api_user_free) with what the review says (username, uid, groups, extra);
 * otherwise user is untouched.
 */
int tokenreview_check(tokenreview_t *tr, const char *token, api_user_t *user);

/** Reviews actually sent to kube-apiserver (cache misses), for tests and logs. */
uint64_t tokenreview_calls(const tokenreview_t *tr);

#endif
