/*
 * auth.c - authentication in kube's order (see langop/request/auth.h):
 * front proxy, client certificate, bearer token (static file, then
 * TokenReview), then system:authenticated or anonymous.
 *
 * Files are read once at startup; the authenticator is immutable
 * afterwards and read from any thread.
 */
#include "langop/request/auth.h"

#include "langop/request/certauth.h"
#include "langop/request/requestheader.h"
#include "langop/request/tokenreview.h"

#include <openssl/crypto.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

typedef struct auth_token {
    char *token;
    api_user_t user;
} auth_token_t;

/*
 * What certificates and front-proxy headers are checked against. Replaced
 * whole by auth_reload_trust() (the cluster's CAs rotate) while requests
 * may be using the old one: each request holds a reference, and the last
 * one to let go frees it.
 */
typedef struct trust {
    int refs;                             /* under auth->lock */
    certauth_ca_t *client_ca;             /* NULL: client certificates are not accepted */
    certauth_ca_t *requestheader_ca;      /* NULL: no front proxy */
    requestheader_config_t *requestheader; /* always set: its headers are stripped from every request */
} trust_t;

struct auth {
    auth_token_t *tokens;
    size_t count;
    tokenreview_t *tokenreview;           /* NULL: no TokenReview */
    int anonymous;
    int trust_reloads;
    pthread_mutex_t lock;                 /* trust: the pointer and the counts */
    trust_t *trust;                       /* holds one reference */
};

#define CSV_MAX_FIELDS 4

/* Splits one CSV line into at most CSV_MAX_FIELDS fields (RFC 4180 quoting). Returns the field count. */
static size_t csv_split(const char *line, char *fields[CSV_MAX_FIELDS])
{
    size_t n = 0, len = strlen(line);
    size_t i = 0;
    while (n < CSV_MAX_FIELDS) {
        char *out = lo_malloc(len + 1);
        size_t o = 0;
        if (line[i] == '"') {
            i++;
            while (i < len) {
                if (line[i] == '"' && line[i + 1] == '"') {
                    out[o++] = '"';
                    i += 2;
                } else if (line[i] == '"') {
                    i++;
                    break;
                } else {
                    out[o++] = line[i++];
                }
            }
        }
        while (i < len && line[i] != ',')
            out[o++] = line[i++];
        out[o] = '\0';
        fields[n++] = out;
        if (i >= len)
            break;
        i++; /* skip ',' */
    }
    return n;
}

static void parse_groups(const char *text, api_user_t *user)
{
    size_t g = 0;
    const char *p = text;
    while (*p && g < API_MAX_GROUPS - 2) { /* leave room for system:authenticated and NULL */
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        while (len && *p == ' ')
            p++, len--;
        while (len && p[len - 1] == ' ')
            len--;
        if (len)
            user->groups[g++] = lo_strndup(p, len);
        if (!end)
            break;
        p = end + 1;
    }
    int listed = 0;
    for (size_t i = 0; i < g; i++)
        listed |= strcmp(user->groups[i], "system:authenticated") == 0;
    if (!listed) /* kube adds it only when it is missing */
        user->groups[g++] = lo_strdup("system:authenticated");
    user->groups[g] = NULL;
}

static int add_line(auth_t *auth, const char *line, size_t lineno, lo_err_t *err)
{
    char *f[CSV_MAX_FIELDS] = {0};
    size_t n = csv_split(line, f);
    int ret = -1;
    if (n < 2 || f[0][0] == '\0' || f[1][0] == '\0') {
        lo_err_set(err, 0, "", "token file line %zu: need at least token,user", lineno);
        goto exit;
    }
    auth->tokens = lo_realloc(auth->tokens, (auth->count + 1) * sizeof(*auth->tokens));
    auth_token_t *t = &auth->tokens[auth->count++];
    memset(t, 0, sizeof(*t));
    t->token = f[0], f[0] = NULL;
    t->user.name = f[1], f[1] = NULL;
    if (n > 2 && f[2][0])
        t->user.uid = f[2], f[2] = NULL;
    parse_groups(n > 3 ? f[3] : "", &t->user);
    ret = 0;
exit:
    for (size_t i = 0; i < CSV_MAX_FIELDS; i++)
        free(f[i]);
    return ret;
}

static int load_tokens(auth_t *auth, const char *token_file, lo_err_t *err)
{
    FILE *fp = fopen(token_file, "r");
    if (fp == NULL) {
        lo_err_set(err, 0, "", "cannot open token file %s", token_file);
        return -1;
    }
    char *line = NULL;
    size_t cap = 0, lineno = 0;
    ssize_t got;
    int rc = 0;
    while (rc == 0 && (got = getline(&line, &cap, fp)) >= 0) {
        lineno++;
        while (got > 0 && (line[got - 1] == '\n' || line[got - 1] == '\r'))
            line[--got] = '\0';
        if (got == 0 || line[0] == '#')
            continue;
        rc = add_line(auth, line, lineno, err);
    }
    free(line);
    fclose(fp);
    return rc;
}

/* A CA from its file, else from PEM text; neither: none (*out NULL, success). */
static int load_ca(const char *file, const char *pem, const char *what, certauth_ca_t **out, lo_err_t *err)
{
    if (file)
        *out = certauth_ca_load(file, err);
    else if (pem)
        *out = certauth_ca_from_pem(pem, what, err);
    else
        return 0;
    return *out ? 0 : -1;
}

static void trust_free(trust_t *t)
{
    if (t == NULL)
        return;
    certauth_ca_free(t->client_ca);
    certauth_ca_free(t->requestheader_ca);
    requestheader_config_free(t->requestheader);
    free(t);
}

static trust_t *trust_new(const auth_options_t *opts, lo_err_t *err)
{
    trust_t *t = lo_calloc(1, sizeof(*t));
    t->refs = 1;
    t->requestheader = requestheader_config_new(
        opts->requestheader_username_headers, opts->requestheader_group_headers,
        opts->requestheader_extra_prefixes, opts->requestheader_uid_headers, opts->requestheader_allowed_names);
    if (load_ca(opts->client_ca_file, opts->client_ca_pem, "client-ca-file", &t->client_ca, err) != 0 ||
        load_ca(opts->requestheader_ca_file, opts->requestheader_ca_pem, "requestheader-client-ca-file",
                &t->requestheader_ca, err) != 0) {
        trust_free(t);
        return NULL;
    }
    return t;
}

/* The lock is not part of what auth promises to keep constant: taking a reference is no change. */
static trust_t *trust_acquire(const auth_t *auth)
{
    auth_t *a = (auth_t *)auth;
    pthread_mutex_lock(&a->lock);
    trust_t *t = a->trust;
    t->refs++;
    pthread_mutex_unlock(&a->lock);
    return t;
}

static void trust_release(const auth_t *auth, trust_t *t)
{
    auth_t *a = (auth_t *)auth;
    pthread_mutex_lock(&a->lock);
    int last = --t->refs == 0;
    pthread_mutex_unlock(&a->lock);
    if (last)
        trust_free(t);
}

auth_t *auth_new(const auth_options_t *opts, lo_err_t *err)
{
    static const auth_options_t none = {0};
    if (opts == NULL)
        opts = &none;
    auth_t *auth = lo_calloc(1, sizeof(*auth));
    auth->anonymous = opts->anonymous;
    auth->trust_reloads = opts->trust_reloads;
    pthread_mutex_init(&auth->lock, NULL);
    if (opts->tokenreview_client)
        auth->tokenreview = tokenreview_new(opts->tokenreview_client, opts->api_audiences, opts->token_cache_ttl_ms);
    if ((opts->token_file && load_tokens(auth, opts->token_file, err) != 0) ||
        (auth->trust = trust_new(opts, err)) == NULL) {
        auth_free(auth);
        return NULL;
    }
    return auth;
}

int auth_reload_trust(auth_t *auth, const auth_options_t *opts, lo_err_t *err)
{
    trust_t *t = trust_new(opts, err);
    if (t == NULL)
        return -1;
    trust_t *old = auth->trust;
    pthread_mutex_lock(&auth->lock);
    auth->trust = t;
    pthread_mutex_unlock(&auth->lock);
    trust_release(auth, old);
    return 0;
}

void auth_free(auth_t *auth)
{
    if (auth == NULL)
        return;
    for (size_t i = 0; i < auth->count; i++) {
        OPENSSL_cleanse(auth->tokens[i].token, strlen(auth->tokens[i].token));
        free(auth->tokens[i].token);
        api_user_free(&auth->tokens[i].user);
    }
    free(auth->tokens);
    trust_free(auth->trust);
    tokenreview_free(auth->tokenreview);
    pthread_mutex_destroy(&auth->lock);
    free(auth);
}

int auth_wants_client_certs(const auth_t *auth)
{
    if (auth == NULL)
        return 0;
    trust_t *t = trust_acquire(auth);
    int known = t->client_ca || t->requestheader_ca;
    trust_release(auth, t);
    return auth->trust_reloads || known;
}

size_t auth_token_count(const auth_t *auth)
{
    return auth ? auth->count : 0;
}

int auth_authenticate(const auth_t *auth, const char *authorization, api_user_t *user)
{
    if (auth == NULL || authorization == NULL)
        return -1;
    if (strncasecmp(authorization, "Bearer ", 7) != 0)
        return -1;
    const char *token = authorization + 7;
    while (*token == ' ')
        token++;
    size_t len = strlen(token);
    int found = -1;
    /* scan every entry so the time taken does not depend on which token matched */
    for (size_t i = 0; i < auth->count; i++) {
        const char *t = auth->tokens[i].token;
        size_t tlen = strlen(t);
        if (tlen == len && CRYPTO_memcmp(t, token, len) == 0 && found < 0)
            found = (int)i;
    }
    if (found < 0)
        return -1;
    api_user_copy(user, &auth->tokens[found].user);
    return 0;
}

int auth_path_always_allowed(const char *path)
{
    static const char *const allowed[] = {"/healthz", "/livez", "/readyz"};
    for (size_t i = 0; i < sizeof(allowed) / sizeof(allowed[0]); i++) {
        size_t n = strlen(allowed[i]);
        if (strncmp(path, allowed[i], n) == 0 && (path[n] == '\0' || path[n] == '/' || path[n] == '?'))
            return 1;
    }
    return 0;
}

/* kube adds system:authenticated to every authenticated user that lacks it. */
static void add_authenticated_group(api_user_t *user)
{
    size_t g = 0;
    while (g < API_MAX_GROUPS - 1 && user->groups[g]) {
        if (strcmp(user->groups[g], "system:authenticated") == 0)
            return;
        g++;
    }
    if (g < API_MAX_GROUPS - 1)
        user->groups[g] = lo_strdup("system:authenticated");
}

/* The three authenticators, each: AUTH_AUTHENTICATED (user filled), 0 (nothing presented), AUTH_UNAUTHORIZED. */

static int by_front_proxy(const auth_t *auth, const trust_t *trust, const api_request_t *req, api_user_t *user)
{
    (void)auth;
    if (trust->requestheader_ca == NULL)
        return 0;
    api_user_t subject = {0};
    int rc = certauth_verify(trust->requestheader_ca, req->peer_chain_pem, &subject);
    if (rc == CERTAUTH_VERIFIED) {
        /* a proxy we trust that names no user is not an identity: the next authenticator may have one */
        rc = !requestheader_name_allowed(trust->requestheader, subject.name) ? AUTH_UNAUTHORIZED
             : requestheader_user(trust->requestheader, req, user) == 0   ? AUTH_AUTHENTICATED
                                                                           : 0;
    }
    api_user_free(&subject);
    return rc == CERTAUTH_NONE ? 0 : rc;
}

static int by_client_cert(const auth_t *auth, const trust_t *trust, const api_request_t *req, api_user_t *user)
{
    (void)auth;
    if (trust->client_ca == NULL)
        return 0;
    int rc = certauth_verify(trust->client_ca, req->peer_chain_pem, user);
    if (rc == CERTAUTH_VERIFIED && user->name == NULL) { /* no CN: no user */
        api_user_free(user);
        return AUTH_UNAUTHORIZED;
    }
    return rc == CERTAUTH_VERIFIED ? AUTH_AUTHENTICATED : rc == CERTAUTH_NONE ? 0 : AUTH_UNAUTHORIZED;
}

static int by_token(const auth_t *auth, const trust_t *trust, const api_request_t *req, api_user_t *user)
{
    (void)trust;
    const char *authorization = api_request_header(req, "authorization");
    /* as kube: another scheme (Basic ...) or an empty token is no bearer credential at all */
    if (authorization == NULL || strncasecmp(authorization, "Bearer ", 7) != 0)
        return 0;
    const char *token = authorization + 7;
    while (*token == ' ')
        token++;
    if (*token == '\0')
        return 0;
    if (auth_authenticate(auth, authorization, user) == 0)
        return AUTH_AUTHENTICATED;
    if (auth->tokenreview == NULL)
        return AUTH_UNAUTHORIZED;
    return tokenreview_check(auth->tokenreview, token, user) == TOKENREVIEW_AUTHENTICATED ? AUTH_AUTHENTICATED
                                                                                         : AUTH_UNAUTHORIZED;
}

int auth_request(const auth_t *auth, api_request_t *req)
{
    static int (*const chain[])(const auth_t *, const trust_t *, const api_request_t *, api_user_t *) = {
        by_front_proxy, by_client_cert, by_token};
    api_user_t user = {0};
    int outcome = 0, rejected = 0;
    trust_t *trust = auth ? trust_acquire(auth) : NULL;
    for (size_t i = 0; trust && i < sizeof(chain) / sizeof(chain[0]) && outcome != AUTH_AUTHENTICATED; i++) {
        outcome = chain[i](auth, trust, req, &user);
        rejected |= outcome == AUTH_UNAUTHORIZED;
    }
    if (trust) {
        requestheader_strip(trust->requestheader, req);
        trust_release(auth, trust);
    }
    api_user_free(&req->user);
    if (outcome == AUTH_AUTHENTICATED) {
        add_authenticated_group(&user);
        req->user = user;
        return AUTH_AUTHENTICATED;
    }
    if (rejected || auth == NULL || !auth->anonymous)
        return AUTH_UNAUTHORIZED;
    req->user.name = lo_strdup("system:anonymous");
    req->user.groups[0] = lo_strdup("system:unauthenticated");
    return AUTH_ANONYMOUS;
}
