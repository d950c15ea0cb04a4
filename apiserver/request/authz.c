/*
 * authz.c - authorization (AlwaysAllow, Webhook with a decision cache) and
 * impersonation checks; the contract is in authz.h.
 *
 * The cache key is the SubjectAccessReview spec itself, encoded with sorted
 * keys: two requests share a decision exactly when kube-apiserver would be
 * asked the same question. The cache is bounded; when full it is emptied
 * (a miss costs one review, never a wrong answer).
 */
#include "langop/request/authz.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define CACHE_BUCKETS 1024
#define CACHE_MAX 8192
#define SAR_PATH "/apis/authorization.k8s.io/v1/subjectaccessreviews"

typedef struct cache_entry {
    struct cache_entry *next;
    char *key;
    int allowed;
    char *reason;       /* may be NULL */
    int64_t expires_ms; /* monotonic */
} cache_entry_t;

struct authz {
    authz_mode_t mode;
    kube_client_t *client;
    int64_t allowed_ttl_ms, denied_ttl_ms;
    pthread_mutex_t lock; /* guards the cache */
    cache_entry_t *buckets[CACHE_BUCKETS];
    size_t cached;
    uint64_t reviews;     /* atomic */
};

static int empty(const char *s)
{
    return s == NULL || s[0] == '\0';
}

static const char *or_empty(const char *s)
{
    return s ? s : "";
}

int authz_mode_parse(const char *text, authz_mode_t *out)
{
    if (strcmp(text, "AlwaysAllow") == 0)
        *out = AUTHZ_ALWAYS_ALLOW;
    else if (strcmp(text, "Webhook") == 0)
        *out = AUTHZ_WEBHOOK;
    else
        return -1;
    return 0;
}

authz_t *authz_new(const authz_options_t *opts, lo_err_t *err)
{
    if (opts->mode == AUTHZ_WEBHOOK && opts->client == NULL) {
        lo_err_set(err, 0, "", "authorization mode Webhook needs a kube-apiserver to ask");
        return NULL;
    }
    authz_t *a = lo_calloc(1, sizeof(*a));
    a->mode = opts->mode;
    a->client = opts->client;
    a->allowed_ttl_ms = opts->allowed_ttl_ms;
    a->denied_ttl_ms = opts->denied_ttl_ms;
    pthread_mutex_init(&a->lock, NULL);
    return a;
}

static void entry_free(cache_entry_t *e)
{
    free(e->key);
    free(e->reason);
    free(e);
}

static void cache_clear(authz_t *a) /* under lock */
{
    for (size_t i = 0; i < CACHE_BUCKETS; i++) {
        while (a->buckets[i]) {
            cache_entry_t *e = a->buckets[i];
            a->buckets[i] = e->next;
            entry_free(e);
        }
    }
    a->cached = 0;
}

void authz_free(authz_t *a)
{
    if (a == NULL)
        return;
    cache_clear(a);
    pthread_mutex_destroy(&a->lock);
    kube_client_free(a->client);
    free(a);
}

uint64_t authz_review_count(const authz_t *a)
{
    return __atomic_load_n(&a->reviews, __ATOMIC_RELAXED);
}

authz_attrs_t authz_attrs_of(const reqinfo_t *info, const api_user_t *user)
{
    authz_attrs_t at = {.user = user, .verb = info->verb, .is_resource = info->is_resource, .path = info->path};
    if (info->is_resource) {
        at.group = info->group;
        at.version = info->version;
        at.resource = info->resource;
        at.subresource = info->subresource;
        at.ns = info->ns;
        at.name = info->name;
    }
    return at;
}

static int user_in_group(const api_user_t *user, const char *group)
{
    for (size_t i = 0; i < API_MAX_GROUPS && user->groups[i]; i++)
        if (strcmp(user->groups[i], group) == 0)
            return 1;
    return 0;
}

/* ---- the review ---- */

static void set_if(json_t *obj, const char *key, const char *value)
{
    if (!empty(value))
        json_object_set_new(obj, key, lo_json_text(value));
}

/* The SubjectAccessReview spec for attrs (new reference). */
static json_t *review_spec(const authz_attrs_t *at)
{
    json_t *spec = json_object();
    const api_user_t *u = at->user;
    set_if(spec, "user", u->name);
    set_if(spec, "uid", u->uid);
    json_t *groups = json_array();
    for (size_t i = 0; i < API_MAX_GROUPS && u->groups[i]; i++)
        json_array_append_new(groups, lo_json_text(u->groups[i]));
    json_object_set_new(spec, "groups", groups);
    if (u->extra && json_object_size(u->extra) > 0)
        json_object_set(spec, "extra", u->extra);
    json_t *attrs = json_object();
    set_if(attrs, "verb", at->verb);
    if (at->is_resource) {
        set_if(attrs, "namespace", at->ns);
        set_if(attrs, "group", at->group);
        set_if(attrs, "version", at->version);
        set_if(attrs, "resource", at->resource);
        set_if(attrs, "subresource", at->subresource);
        set_if(attrs, "name", at->name);
        json_object_set_new(spec, "resourceAttributes", attrs);
    } else {
        set_if(attrs, "path", at->path);
        json_object_set_new(spec, "nonResourceAttributes", attrs);
    }
    return spec;
}

static size_t key_bucket(const char *key)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (const unsigned char *p = (const unsigned char *)key; *p; p++)
        h = (h ^ *p) * 1099511628211ull;
    return (size_t)(h % CACHE_BUCKETS);
}

/* 1 and the cached decision when key is cached and fresh; 0 otherwise. */
static int cache_get(authz_t *a, const char *key, int *allowed, char **reason)
{
    int found = 0;
    int64_t now = lo_now_ms();
    pthread_mutex_lock(&a->lock);
    for (cache_entry_t *e = a->buckets[key_bucket(key)]; e; e = e->next) {
        if (strcmp(e->key, key) == 0 && e->expires_ms > now) {
            *allowed = e->allowed;
            if (reason)
                *reason = e->reason ? lo_strdup(e->reason) : NULL;
            found = 1;
            break;
        }
    }
    pthread_mutex_unlock(&a->lock);
    return found;
}

static void cache_put(authz_t *a, const char *key, int allowed, const char *reason)
{
    int64_t ttl = allowed ? a->allowed_ttl_ms : a->denied_ttl_ms;
    if (ttl <= 0)
        return;
    pthread_mutex_lock(&a->lock);
    size_t b = key_bucket(key);
    for (cache_entry_t **p = &a->buckets[b]; *p; p = &(*p)->next) {
        if (strcmp((*p)->key, key) == 0) { /* stale: replaced below */
            cache_entry_t *old = *p;
            *p = old->next;
            entry_free(old);
            a->cached--;
            break;
        }
    }
    if (a->cached >= CACHE_MAX)
        cache_clear(a);
    cache_entry_t *e = lo_calloc(1, sizeof(*e));
    e->key = lo_strdup(key);
    e->allowed = allowed;
    e->reason = reason ? lo_strdup(reason) : NULL;
    e->expires_ms = lo_now_ms() + ttl;
    e->next = a->buckets[b];
    a->buckets[b] = e;
    a->cached++;
    pthread_mutex_unlock(&a->lock);
}

/* POSTs the review of spec (borrowed). AUTHZ_ALLOW / AUTHZ_DENY (+ reason) or AUTHZ_ERROR. */
static int review(authz_t *a, const json_t *spec, char **reason, lo_err_t *err)
{
    json_t *body = json_pack("{s:s, s:s, s:O}", "apiVersion", "authorization.k8s.io/v1", "kind",
                             "SubjectAccessReview", "spec", spec);
    kube_response_t resp = {0};
    lo_err_t kerr = {0};
    __atomic_add_fetch(&a->reviews, 1, __ATOMIC_RELAXED);
    int rc = kube_request(a->client, "POST", SAR_PATH, NULL, body, &resp, &kerr);
    json_decref(body);
    json_t *status = json_object_get(resp.body, "status");
    json_t *allowed = json_object_get(status, "allowed");
    int ret = AUTHZ_ERROR;
    if (rc != KUBE_OK)
        lo_err_set(err, 0, "", "SubjectAccessReview failed: %s", kerr.message[0] ? kerr.message : "no answer");
    else if (!json_is_boolean(allowed))
        lo_err_set(err, 0, "", "SubjectAccessReview answer has no status.allowed");
    else {
        ret = json_is_true(allowed) ? AUTHZ_ALLOW : AUTHZ_DENY;
        const char *why = json_string_value(json_object_get(status, "reason"));
        if (reason)
            *reason = empty(why) ? NULL : lo_strdup(why);
    }
    json_decref(resp.body);
    lo_err_clear(&kerr);
    return ret;
}

static int check_webhook(authz_t *a, const authz_attrs_t *at, char **reason, lo_err_t *err)
{
    json_t *spec = review_spec(at);
    char *key = json_dumps(spec, JSON_COMPACT | JSON_SORT_KEYS);
    int allowed;
    int ret;
    if (cache_get(a, key, &allowed, reason)) {
        ret = allowed ? AUTHZ_ALLOW : AUTHZ_DENY;
    } else {
        char *why = NULL;
        ret = review(a, spec, &why, err);
        if (ret != AUTHZ_ERROR) /* errors are not cached: the next request asks again */
            cache_put(a, key, ret == AUTHZ_ALLOW, why);
        if (reason)
            *reason = why;
        else
            free(why);
    }
    free(key);
    json_decref(spec);
    return ret;
}

int authz_check(authz_t *a, const authz_attrs_t *at, char **reason, lo_err_t *err)
{
    if (reason)
        *reason = NULL;
    if (user_in_group(at->user, "system:masters") || a->mode == AUTHZ_ALWAYS_ALLOW)
        return AUTHZ_ALLOW;
    return check_webhook(a, at, reason, err);
}

/* ---- the 403 ---- */

/* "User "u" cannot <verb> ...": what the user cannot do (new string). */
static char *cannot_message(const authz_attrs_t *at)
{
    const char *user = or_empty(at->user ? at->user->name : NULL);
    if (!at->is_resource)
        return lo_sprintf("User \"%s\" cannot %s path \"%s\"", user, or_empty(at->verb), or_empty(at->path));
    char *resource = empty(at->subresource) ? lo_strdup(or_empty(at->resource))
                                            : lo_sprintf("%s/%s", or_empty(at->resource), at->subresource);
    char *msg;
    if (!empty(at->ns))
        msg = lo_sprintf("User \"%s\" cannot %s resource \"%s\" in API group \"%s\" in the namespace \"%s\"", user,
                         or_empty(at->verb), resource, or_empty(at->group), at->ns);
    else
        msg = lo_sprintf("User \"%s\" cannot %s resource \"%s\" in API group \"%s\" at the cluster scope", user,
                         or_empty(at->verb), resource, or_empty(at->group));
    free(resource);
    return msg;
}

void authz_forbidden(const authz_attrs_t *at, const char *reason, lo_err_t *err)
{
    char *cannot = cannot_message(at);
    char *why = empty(reason) ? lo_strdup(cannot) : lo_sprintf("%s: %s", cannot, reason);
    const char *resource = at->is_resource ? or_empty(at->resource) : "";
    const char *group = at->is_resource ? or_empty(at->group) : "";
    char *qualified = empty(group) ? lo_strdup(resource) : lo_sprintf("%s.%s", resource, group);
    if (empty(resource))
        lo_err_set(err, 403, "Forbidden", "forbidden: %s", why);
    else if (empty(at->name))
        lo_err_set(err, 403, "Forbidden", "%s is forbidden: %s", qualified, why);
    else
        lo_err_set(err, 403, "Forbidden", "%s \"%s\" is forbidden: %s", qualified, at->name, why);
    json_t *details = json_object();
    set_if(details, "name", at->name);
    set_if(details, "group", group);
    set_if(details, "kind", resource);
    lo_err_set_details(err, details);
    free(qualified);
    free(why);
    free(cannot);
}

/* ---- impersonation ---- */

#define SA_PREFIX "system:serviceaccount:"
#define EXTRA_HEADER "impersonate-extra-"

/*
 * May the requester impersonate this one target? 0 yes; -1 with err 403.
 * A failed check is refused as well, with the failure in the message.
 */
static int may_impersonate(authz_t *a, const api_user_t *who, const char *group, const char *resource,
                           const char *subresource, const char *ns, const char *name, lo_err_t *err)
{
    authz_attrs_t at = {.user = who, .verb = "impersonate", .is_resource = 1, .group = group,
                        .resource = resource, .subresource = subresource, .ns = ns, .name = name};
    char *reason = NULL;
    lo_err_t cerr = {0};
    int rc = authz_check(a, &at, &reason, &cerr);
    if (rc == AUTHZ_ERROR) {
        char *why = lo_sprintf("the authorization check failed: %s", cerr.message);
        authz_forbidden(&at, why, err);
        free(why);
    } else if (rc == AUTHZ_DENY) {
        authz_forbidden(&at, reason, err);
    }
    free(reason);
    lo_err_clear(&cerr);
    return rc == AUTHZ_ALLOW ? 0 : -1;
}

static int check_user_target(authz_t *a, const api_user_t *who, const char *name, lo_err_t *err)
{
    if (strncmp(name, SA_PREFIX, sizeof(SA_PREFIX) - 1) == 0) {
        const char *rest = name + sizeof(SA_PREFIX) - 1;
        const char *colon = strchr(rest, ':');
        if (colon && colon != rest && colon[1] != '\0') {
            char *ns = lo_strndup(rest, (size_t)(colon - rest));
            int rc = may_impersonate(a, who, "", "serviceaccounts", NULL, ns, colon + 1, err);
            free(ns);
            return rc;
        }
    }
    return may_impersonate(a, who, "", "users", NULL, NULL, name, err);
}

static void add_group(api_user_t *as, const char *group)
{
    size_t n = 0;
    while (n < API_MAX_GROUPS && as->groups[n])
        n++;
    if (n + 1 < API_MAX_GROUPS && !user_in_group(as, group))
        as->groups[n] = lo_strdup(group);
}

/* Every Impersonate-* header but the user: checked one by one, and added to as. */
static int check_other_headers(authz_t *a, const api_request_t *req, api_user_t *as, lo_err_t *err)
{
    for (size_t i = 0; i < req->header_count; i++) {
        const api_header_t *h = &req->headers[i];
        int rc = 0;
        if (strcmp(h->name, "impersonate-group") == 0) {
            rc = may_impersonate(a, &req->user, "", "groups", NULL, NULL, h->value, err);
            if (rc == 0)
                add_group(as, h->value);
        } else if (strcmp(h->name, "impersonate-uid") == 0) {
            rc = may_impersonate(a, &req->user, "authentication.k8s.io", "uids", NULL, NULL, h->value, err);
            if (rc == 0 && as->uid == NULL)
                as->uid = lo_strdup(h->value);
        } else if (strncmp(h->name, EXTRA_HEADER, sizeof(EXTRA_HEADER) - 1) == 0) {
            char *key = reqinfo_percent_decode(h->name + sizeof(EXTRA_HEADER) - 1,
                                               strlen(h->name) - (sizeof(EXTRA_HEADER) - 1), 0);
            if (empty(key)) {
                free(key);
                lo_err_set(err, 400, "BadRequest", "%s", "invalid Impersonate-Extra- header name");
                return -1;
            }
            rc = may_impersonate(a, &req->user, "authentication.k8s.io", "userextras", key, NULL, h->value, err);
            if (rc == 0) {
                if (as->extra == NULL)
                    as->extra = json_object();
                json_t *values = json_object_get(as->extra, key);
                if (values == NULL)
                    json_object_set_new(as->extra, key, values = json_array());
                json_array_append_new(values, lo_json_text(h->value));
            }
            free(key);
        }
        if (rc != 0)
            return -1;
    }
    return 0;
}

static int has_impersonation(const api_request_t *req)
{
    for (size_t i = 0; i < req->header_count; i++)
        if (strncmp(req->headers[i].name, "impersonate-", 12) == 0)
            return 1;
    return 0;
}

/* The groups kube gives every impersonated user of this name. */
static void add_implied_groups(api_user_t *as)
{
    if (strncmp(as->name, SA_PREFIX, sizeof(SA_PREFIX) - 1) == 0) {
        const char *rest = as->name + sizeof(SA_PREFIX) - 1;
        const char *colon = strchr(rest, ':');
        add_group(as, "system:serviceaccounts");
        if (colon) {
            char *g = lo_sprintf("system:serviceaccounts:%.*s", (int)(colon - rest), rest);
            add_group(as, g);
            free(g);
        }
    }
    add_group(as, strcmp(as->name, "system:anonymous") == 0 ? "system:unauthenticated" : "system:authenticated");
}

int authz_impersonate(authz_t *a, const api_request_t *req, api_user_t *as, lo_err_t *err)
{
    memset(as, 0, sizeof(*as));
    if (!has_impersonation(req))
        return 0;
    const char *name = api_request_header(req, "impersonate-user");
    if (empty(name)) {
        lo_err_set(err, 400, "BadRequest", "%s", "impersonation of groups, uid or extra needs an Impersonate-User header");
        return -1;
    }
    if (check_user_target(a, &req->user, name, err) != 0)
        return -1;
    as->name = lo_strdup(name);
    if (check_other_headers(a, req, as, err) != 0) {
        api_user_free(as);
        return -1;
    }
    add_implied_groups(as);
    return 1;
}
