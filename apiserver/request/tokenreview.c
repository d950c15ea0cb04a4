/*
 * tokenreview.c - bearer tokens checked by kube-apiserver, cached (see
 * langop/request/tokenreview.h).
 *
 * The cache is direct-mapped: the first bytes of a token's SHA-256 pick its
 * slot, and a new answer replaces whatever was there. That bounds memory
 * whatever the number of tokens, and a token that loses its slot only
 * costs one more review.
 */
#include "langop/request/tokenreview.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

#define CACHE_SLOTS 1024
#define TOKENREVIEW_PATH "/apis/authentication.k8s.io/v1/tokenreviews"

typedef struct cache_slot {
    unsigned char digest[32];
    int64_t expires_ms;     /* 0: empty */
    int authenticated;
    api_user_t user;        /* owned; set when authenticated */
} cache_slot_t;

struct tokenreview {
    kube_client_t *kube;
    json_t *audiences;      /* array of strings, empty when none */
    int64_t ttl_ms;
    pthread_mutex_t lock;   /* cache */
    cache_slot_t cache[CACHE_SLOTS];
    uint64_t calls;         /* atomic */
};

tokenreview_t *tokenreview_new(kube_client_t *kube, const char *audiences, int64_t ttl_ms)
{
    tokenreview_t *tr = lo_calloc(1, sizeof(*tr));
    tr->kube = kube;
    tr->ttl_ms = ttl_ms;
    tr->audiences = json_array();
    for (const char *p = audiences ? audiences : ""; *p;) {
        size_t len = strcspn(p, ",");
        if (len)
            json_array_append_new(tr->audiences, json_stringn(p, len));
        p += len + (p[len] == ',');
    }
    pthread_mutex_init(&tr->lock, NULL);
    return tr;
}

void tokenreview_free(tokenreview_t *tr)
{
    if (tr == NULL)
        return;
    for (size_t i = 0; i < CACHE_SLOTS; i++)
        api_user_free(&tr->cache[i].user);
    json_decref(tr->audiences);
    kube_client_free(tr->kube);
    pthread_mutex_destroy(&tr->lock);
    free(tr);
}

uint64_t tokenreview_calls(const tokenreview_t *tr)
{
    return __atomic_load_n(&tr->calls, __ATOMIC_RELAXED);
}

static cache_slot_t *slot_for(tokenreview_t *tr, const unsigned char digest[32])
{
    size_t i = ((size_t)digest[0] << 8 | digest[1]) % CACHE_SLOTS;
    return &tr->cache[i];
}

/* -1: miss; else the cached answer (user filled when authenticated). */
static int cache_get(tokenreview_t *tr, const unsigned char digest[32], api_user_t *user)
{
    int rc = -1;
    pthread_mutex_lock(&tr->lock);
    cache_slot_t *s = slot_for(tr, digest);
    if (s->expires_ms > lo_now_ms() && CRYPTO_memcmp(s->digest, digest, 32) == 0) {
        rc = s->authenticated ? TOKENREVIEW_AUTHENTICATED : TOKENREVIEW_REJECTED;
        if (s->authenticated)
            api_user_copy(user, &s->user);
    }
    pthread_mutex_unlock(&tr->lock);
    return rc;
}

static void cache_put(tokenreview_t *tr, const unsigned char digest[32], int authenticated, const api_user_t *user)
{
    if (tr->ttl_ms <= 0)
        return;
    pthread_mutex_lock(&tr->lock);
    cache_slot_t *s = slot_for(tr, digest);
    api_user_free(&s->user);
    memcpy(s->digest, digest, 32);
    s->authenticated = authenticated;
    if (authenticated)
        api_user_copy(&s->user, user);
    s->expires_ms = lo_now_ms() + tr->ttl_ms;
    pthread_mutex_unlock(&tr->lock);
}

/* 1 when no audiences were asked for, or the answer grants one of them. */
static int audiences_granted(const tokenreview_t *tr, const json_t *status)
{
    if (json_array_size(tr->audiences) == 0)
        return 1;
    size_t i, j;
    json_t *want, *got;
    json_array_foreach(tr->audiences, i, want)
        json_array_foreach(json_object_get(status, "audiences"), j, got)
            if (json_equal(want, got))
                return 1;
    return 0;
}

/* status.user of an authenticated review into user; -1 when it names no user. */
static int user_from_review(const json_t *ruser, api_user_t *user)
{
    const char *name = json_string_value(json_object_get(ruser, "username"));
    if (name == NULL || name[0] == '\0')
        return -1;
    memset(user, 0, sizeof(*user));
    user->name = lo_strdup(name);
    const char *uid = json_string_value(json_object_get(ruser, "uid"));
    if (uid && uid[0])
        user->uid = lo_strdup(uid);
    size_t i, g = 0;
    json_t *v;
    json_array_foreach(json_object_get(ruser, "groups"), i, v)
        if (json_is_string(v) && g < API_MAX_GROUPS - 2)
            user->groups[g++] = lo_strdup(json_string_value(v));
    json_t *extra = json_object_get(ruser, "extra");
    if (json_is_object(extra) && json_object_size(extra))
        user->extra = json_deep_copy(extra);
    return 0;
}

/* One review sent to kube-apiserver. */
static int review(tokenreview_t *tr, const char *token, api_user_t *user)
{
    json_t *spec = json_pack("{s:s}", "token", token);
    if (json_array_size(tr->audiences))
        json_object_set(spec, "audiences", tr->audiences);
    json_t *body = json_pack("{s:s,s:s,s:o}", "apiVersion", "authentication.k8s.io/v1", "kind", "TokenReview",
                             "spec", spec);
    kube_response_t resp = {0};
    lo_err_t err = {0};
    __atomic_add_fetch(&tr->calls, 1, __ATOMIC_RELAXED);
    int rc = kube_request(tr->kube, "POST", TOKENREVIEW_PATH, NULL, body, &resp, &err);
    /* the token is in the request body: scrub it before it goes back to the allocator */
    json_t *sent = json_object_get(spec, "token");
    OPENSSL_cleanse((char *)json_string_value(sent), json_string_length(sent));
    json_decref(body);
    int result = TOKENREVIEW_ERROR;
    const json_t *status = json_object_get(resp.body, "status");
    if (rc != KUBE_OK) {
        lo_log(LO_INFO, "TokenReview failed: %s", err.message[0] ? err.message : "no answer");
    } else if (!json_is_object(status)) {
        lo_log(LO_INFO, "TokenReview answer has no status");
    } else if (json_is_true(json_object_get(status, "authenticated")) && audiences_granted(tr, status) &&
               user_from_review(json_object_get(status, "user"), user) == 0) {
        result = TOKENREVIEW_AUTHENTICATED;
    } else {
        result = TOKENREVIEW_REJECTED;
    }
    json_decref(resp.body);
    lo_err_clear(&err);
    return result;
}

int tokenreview_check(tokenreview_t *tr, const char *token, api_user_t *user)
{
    unsigned char digest[32];
    unsigned int dlen = 0;
    EVP_Digest(token, strlen(token), digest, &dlen, EVP_sha256(), NULL);
    int rc = cache_get(tr, digest, user);
    if (rc >= 0)
        return rc;
    api_user_t got = {0};
    rc = review(tr, token, &got);
    if (rc == TOKENREVIEW_ERROR)
        return rc; /* not cached: the next request asks again */
    cache_put(tr, digest, rc == TOKENREVIEW_AUTHENTICATED, &got);
    if (rc == TOKENREVIEW_AUTHENTICATED)
        *user = got;
    return rc;
}
