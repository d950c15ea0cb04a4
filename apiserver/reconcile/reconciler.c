/*
 * reconciler.c - the reconcile thread (reconciler.h): triggers into one
 * work queue, workers that converge one LanguageCluster at a time.
 */
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "langop/derive/render.h"
#include "langop/reconcile/conditions.h"
#include "langop/reconcile/desired.h"
#include "langop/reconcile/events.h"
#include "langop/reconcile/informer.h"
#include "langop/reconcile/ratelimit.h"
#include "langop/reconcile/reconciler.h"
#include "langop/reconcile/workqueue.h"
#include "langop/storage/feed.h"

#define API_BASE "/apis/langop.io/v1alpha1"

/* What the reconciler manages in the cluster, one informer each. */
typedef struct owned_kind {
    const char *kind;
    const char *collection; /* every namespace */
    const char *in_ns;      /* printf format of a namespace's collection (NULL: cluster-scoped) */
} owned_kind_t;

static const owned_kind_t owned_kinds[] = {
    {"Namespace", "/api/v1/namespaces", NULL},
    {"ConfigMap", "/api/v1/configmaps", "/api/v1/namespaces/%s/configmaps"},
    {"Service", "/api/v1/services", "/api/v1/namespaces/%s/services"},
    {"Deployment", "/apis/apps/v1/deployments", "/apis/apps/v1/namespaces/%s/deployments"},
    {"CronJob", "/apis/batch/v1/cronjobs", "/apis/batch/v1/namespaces/%s/cronjobs"},
    {"Job", "/apis/batch/v1/jobs", "/apis/batch/v1/namespaces/%s/jobs"},
};
#define N_OWNED (sizeof(owned_kinds) / sizeof(owned_kinds[0]))

struct reconciler {
    reconciler_options_t o;
    workqueue_t *queue;
    ratelimit_t *writes;
    event_recorder_t *events;
    informer_t *secrets;
    informer_t *owned[N_OWNED];
    int feed_id;
    pthread_t *workers;
    int n_workers;
    pthread_t resync;
    int resync_started;
    pthread_mutex_t lock; /* stop, for the resync thread's sleep; normalized */
    pthread_cond_t cond;
    int stop;
    json_t *normalized;   /* see normalized() */
};

static const char *str_of(const json_t *obj, const char *key)
{
    const json_t *v = json_object_get(obj, key);
    return json_is_string(v) ? json_string_value(v) : NULL;
}

static const json_t *meta_of(const json_t *obj)
{
    return json_object_get(obj, "metadata");
}

/* ---- calls into our own API, as the server itself (system:masters, never reviewed) ---- */

/* The answer's body (new reference, or NULL) and *status. */
static json_t *api_json(reconciler_t *r, const char *method, const char *path, const char *ctype,
                        const json_t *body, int *status)
{
    api_request_t req = {.method = lo_strdup(method), .target = lo_strdup(path),
                         .accept = lo_strdup("application/json"), .user_agent = lo_strdup(DESIRED_MANAGER)};
    if (body) {
        req.content_type = lo_strdup(ctype ? ctype : "application/json");
        req.body = json_dumps(body, JSON_COMPACT);
        req.body_len = strlen(req.body);
    }
    req.user.name = lo_strdup("system:apiserver");
    req.user.groups[0] = lo_strdup("system:masters");
    req.user.groups[1] = lo_strdup("system:authenticated");
    api_response_t resp = {0};
    api_call(r->o.api, &req, &resp);
    *status = resp.status;
    json_t *out = resp.body ? json_loadb(resp.body, resp.body_len, 0, NULL) : NULL;
    api_response_free(&resp);
    api_request_free(&req);
    return out;
}

/* The items of a list of our API (new reference; an empty array when it fails, with -1). */
static int api_items(reconciler_t *r, const char *path, json_t **items, lo_err_t *err)
{
    int status;
    json_t *list = api_json(r, "GET", path, NULL, NULL, &status);
    *items = json_incref(json_object_get(list, "items"));
    json_decref(list);
    if (status != 200 || !json_is_array(*items)) {
        json_decref(*items);
        *items = json_array();
        lo_err_set(err, status, "InternalError", "reading %s: HTTP %d", path, status);
        return -1;
    }
    return 0;
}

/* ---- triggers ---- */

static void enqueue_key(reconciler_t *r, const char *cluster, int forget)
{
    if (cluster && cluster[0]) {
        if (forget)
            workqueue_forget(r->queue, cluster);
        workqueue_add(r->queue, cluster);
    }
}

static void enqueue(reconciler_t *r, const char *cluster)
{
    enqueue_key(r, cluster, 0);
}

/* On the store's writer thread: names the clusters of a commit, never blocks. */
static void on_feed(void *ctx, feed_batch_t *batch)
{
    reconciler_t *r = ctx;
    for (size_t i = 0; i < batch->n; i++) {
        const feed_event_t *e = &batch->events[i];
        enqueue(r, strcmp(e->resource, "languageclusters") == 0 ? e->name : e->ns);
    }
}

static void on_secret(void *ctx, const char *type, const json_t *obj, const json_t *old)
{
    (void)type, (void)old;
    enqueue(ctx, str_of(meta_of(obj), "namespace"));
}

static void on_owned(void *ctx, const char *type, const json_t *obj, const json_t *old)
{
    (void)type, (void)old;
    enqueue(ctx, str_of(json_object_get(meta_of(obj), "labels"), DESIRED_LABEL_CLUSTER));
}

/* The Secret informer keeps names, versions and key names: never a value. */
static json_t *secret_summary(const json_t *secret)
{
    const json_t *md = meta_of(secret);
    json_t *keys = json_array();
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)json_object_get(secret, "data"), k, v)
        json_array_append_new(keys, json_string(k));
    return json_pack("{s:{s:s?, s:s?, s:s?}, s:o}", "metadata", "name", str_of(md, "name"), "namespace",
                     str_of(md, "namespace"), "resourceVersion", str_of(md, "resourceVersion"), "keys", keys);
}

/* name -> {resourceVersion, keys} of the Secrets of ns (new reference). */
static json_t *secrets_of(reconciler_t *r, const char *ns)
{
    json_t *list = informer_list(r->secrets, ns, NULL, NULL), *out = json_object();
    size_t i;
    json_t *s;
    json_array_foreach(list, i, s) {
        const json_t *md = meta_of(s);
        json_object_set_new(out, str_of(md, "name"),
                            json_pack("{s:s?, s:O}", "resourceVersion", str_of(md, "resourceVersion"), "keys",
                                      json_object_get(s, "keys")));
    }
    json_decref(list);
    return out;
}

/* ---- writes to kube-apiserver ---- */

static const owned_kind_t *owned_kind_of(const char *kind, size_t *index)
{
    for (size_t i = 0; i < N_OWNED; i++) {
        if (strcmp(owned_kinds[i].kind, kind) == 0) {
            *index = i;
            return &owned_kinds[i];
        }
    }
    return NULL;
}

static char *object_path(const owned_kind_t *k, const char *ns, const char *name)
{
    if (k->in_ns == NULL)
        return lo_sprintf("%s/%s", k->collection, name);
    char *coll = lo_sprintf(k->in_ns, ns);
    char *path = lo_sprintf("%s/%s", coll, name);
    free(coll);
    return path;
}

static int take_write_token(reconciler_t *r, lo_err_t *err)
{
    if (ratelimit_take(r->writes, 30000) == RATELIMIT_OK)
        return 0;
    lo_err_set(err, 429, "TooManyRequests", "%s", "write rate limit: no token within 30 s");
    return -1;
}

/*
 * Objects kube-apiserver holds in another spelling than we applied (a
 * quantity "0.5" kept as "500m", say): drifted by desired_drifted's
 * measure right after our own apply. key -> the resourceVersion our apply
 * got; while the object is still at it, nobody has changed it since and it
 * is not applied again (which would be a write on every reconcile).
 */
static int normalized(reconciler_t *r, const char *key, const char *rv)
{
    pthread_mutex_lock(&r->lock);
    const char *at = json_string_value(json_object_get(r->normalized, key));
    int same = at && rv && strcmp(at, rv) == 0;
    pthread_mutex_unlock(&r->lock);
    return same;
}

static void remember_normalized(reconciler_t *r, const char *key, const json_t *desired, const json_t *applied)
{
    const char *rv = str_of(meta_of(applied), "resourceVersion");
    pthread_mutex_lock(&r->lock);
    if (rv && desired_drifted(desired, applied))
        json_object_set_new(r->normalized, key, json_string(rv));
    else
        json_object_del(r->normalized, key);
    pthread_mutex_unlock(&r->lock);
}

/* ---- events ---- */

/* An Event about involved (a langop object as read from our API, of kind), logged when it cannot be sent. */
static void record(reconciler_t *r, const json_t *involved, const char *kind, const char *type, const char *reason,
                   const char *fmt, ...) __attribute__((format(printf, 6, 7)));

static void record(reconciler_t *r, const json_t *involved, const char *kind, const char *type, const char *reason,
                   const char *fmt, ...)
{
    if (involved == NULL || r->events == NULL)
        return;
    json_t *o = json_pack("{s:s, s:s, s:O}", "apiVersion", "langop.io/v1alpha1", "kind", kind, "metadata",
                          json_object_get(involved, "metadata"));
    va_list ap;
    va_start(ap, fmt);
    char message[EVENT_MESSAGE_MAX];
    vsnprintf(message, sizeof(message), fmt, ap);
    va_end(ap);
    lo_err_t err = {0};
    if (event_record(r->events, o, type, reason, message, &err) < 0)
        lo_log(LO_DEBUG, "event %s about %s %s not recorded: %s", reason, kind,
               str_of(json_object_get(involved, "metadata"), "name"), err.message);
    lo_err_clear(&err);
    json_decref(o);
}

/* What converge_object did. */
enum { APPLY_NONE, APPLY_CREATED, APPLY_CHANGED, APPLY_REPAIRED };

/* The langop object that owns obj (a desired object) among the cluster and its namespace's objects. */
static const json_t *owner_of(const json_t *obj, const json_t *cluster, const json_t *agents, const json_t *tools,
                              const char **kind)
{
    const json_t *labels = json_object_get(meta_of(obj), "labels");
    const char *agent = str_of(labels, DESIRED_LABEL_OWNER_AGENT), *tool = str_of(labels, DESIRED_LABEL_OWNER_TOOL);
    const json_t *list = agent ? agents : tool ? tools : NULL;
    *kind = agent ? "LanguageAgent" : tool ? "LanguageTool" : "LanguageCluster";
    if (list == NULL)
        return cluster;
    size_t i;
    const json_t *o;
    json_array_foreach(list, i, o) {
        if (strcmp(str_of(meta_of(o), "name"), agent ? agent : tool) == 0)
            return o;
    }
    return NULL;
}

/* Events for the workloads: created, rolled out (their pods change), put back after someone changed them. */
static void note_applied(reconciler_t *r, const json_t *obj, int what, const json_t *cluster, const json_t *agents,
                         const json_t *tools)
{
    const char *kind = str_of(obj, "kind"), *name = str_of(meta_of(obj), "name"), *owner_kind;
    int workload = strcmp(kind, "Deployment") == 0 || strcmp(kind, "CronJob") == 0 || strcmp(kind, "Job") == 0;
    if (what == APPLY_NONE || (!workload && what != APPLY_REPAIRED))
        return;
    const json_t *owner = owner_of(obj, cluster, agents, tools, &owner_kind);
    if (what == APPLY_REPAIRED)
        record(r, owner, owner_kind, "Normal", "DriftRepaired", "%s %s was changed in the cluster: applied again",
               kind, name);
    else if (what == APPLY_CREATED)
        record(r, owner, owner_kind, "Normal", "Created", "created %s %s", kind, name);
    else if (strcmp(name, "gateway") == 0 && strcmp(owner_kind, "LanguageCluster") == 0)
        record(r, owner, owner_kind, "Normal", "GatewayRollout",
               "rolling out the gateway: its models or their Secrets changed");
    else
        record(r, owner, owner_kind, "Normal", "Updated", "updated %s %s: its configuration changed", kind, name);
}

/* Server-side apply of one desired object, unless the cluster holds it already; *what: what was done. */
static int converge_object(reconciler_t *r, const json_t *obj, int *what, lo_err_t *err)
{
    *what = APPLY_NONE;
    const json_t *md = meta_of(obj);
    const char *ns = str_of(md, "namespace"), *name = str_of(md, "name");
    size_t idx;
    const owned_kind_t *k = owned_kind_of(str_of(obj, "kind"), &idx);
    if (k == NULL)
        return 0;
    json_t *live = informer_get(r->owned[idx], ns, name);
    char *key = lo_sprintf("%s/%s/%s", k->kind, ns ? ns : "", name);
    const char *have = live ? desired_applied_hash(live) : NULL;
    int same_hash = have && strcmp(have, desired_applied_hash(obj)) == 0;
    int same = same_hash &&
               (!desired_drifted(obj, live) || normalized(r, key, str_of(meta_of(live), "resourceVersion")));
    int existed = live != NULL;
    json_decref(live);
    if (same || take_write_token(r, err) != 0) {
        free(key);
        return same ? 0 : -1;
    }
    char *path = object_path(k, ns, name);
    char *full = lo_sprintf("%s?fieldManager=%s&force=true", path, DESIRED_MANAGER);
    kube_response_t resp = {0};
    int rc = kube_request(r->o.kube, "PATCH", full, "application/apply-patch+yaml", obj, &resp, err);
    if (rc == KUBE_OK) {
        informer_upsert(r->owned[idx], resp.body);
        remember_normalized(r, key, obj, resp.body);
        *what = !existed ? APPLY_CREATED : same_hash ? APPLY_REPAIRED : APPLY_CHANGED;
    }
    json_decref(resp.body);
    free(key);
    free(full);
    free(path);
    return rc == KUBE_OK ? 0 : -1;
}

static int desired_has(const json_t *objects, const char *kind, const char *ns, const char *name)
{
    size_t i;
    json_t *o;
    json_array_foreach(objects, i, o) {
        const json_t *md = meta_of(o);
        const char *ons = str_of(md, "namespace");
        if (strcmp(str_of(o, "kind"), kind) == 0 && strcmp(str_of(md, "name"), name) == 0 &&
            strcmp(ons ? ons : "", ns ? ns : "") == 0)
            return 1;
    }
    return 0;
}

static int delete_object(reconciler_t *r, size_t idx, const char *ns, const char *name, lo_err_t *err)
{
    if (take_write_token(r, err) != 0)
        return -1;
    char *key = lo_sprintf("%s/%s/%s", owned_kinds[idx].kind, ns ? ns : "", name);
    pthread_mutex_lock(&r->lock);
    json_object_del(r->normalized, key);
    pthread_mutex_unlock(&r->lock);
    free(key);
    char *path = object_path(&owned_kinds[idx], ns, name);
    json_t *opts = json_pack("{s:s, s:s, s:s}", "kind", "DeleteOptions", "apiVersion", "v1", "propagationPolicy",
                             "Background");
    kube_response_t resp = {0};
    int rc = kube_request(r->o.kube, "DELETE", path, NULL, opts, &resp, err);
    if (rc == KUBE_EHTTP && resp.status == 404)
        rc = KUBE_OK, lo_err_clear(err);
    json_decref(resp.body);
    json_decref(opts);
    free(path);
    return rc == KUBE_OK ? 0 : -1;
}

/*
 * Deletes what cluster manages and no longer desires (a Namespace is
 * adopted, never deleted). *left: how many managed objects remain.
 */
static int prune(reconciler_t *r, const char *cluster, const json_t *cluster_obj, const json_t *desired,
                 size_t *left, lo_err_t *err)
{
    *left = 0;
    for (size_t k = 1; k < N_OWNED; k++) { /* 0 is Namespace */
        json_t *list = informer_list(r->owned[k], NULL, DESIRED_LABEL_CLUSTER, cluster);
        size_t i;
        json_t *o;
        json_array_foreach(list, i, o) {
            const json_t *md = meta_of(o);
            const char *ns = str_of(md, "namespace"), *name = str_of(md, "name");
            if (desired_has(desired, owned_kinds[k].kind, ns, name))
                continue;
            (*left)++;
            if (delete_object(r, k, ns, name, err) != 0) {
                json_decref(list);
                return -1;
            }
            record(r, cluster_obj, "LanguageCluster", "Normal", "Deleted", "deleted %s %s/%s: no longer desired",
                   owned_kinds[k].kind, ns ? ns : "", name);
        }
        json_decref(list);
    }
    return 0;
}

/* ---- the cluster object: finalizer and status ---- */

static int has_string(const json_t *list, const char *s)
{
    size_t i;
    json_t *v;
    json_array_foreach(list, i, v) {
        if (json_is_string(v) && strcmp(json_string_value(v), s) == 0)
            return 1;
    }
    return 0;
}

/*
 * Adds (add=1) or removes our finalizer with a merge patch bound to the
 * resourceVersion read; *cluster becomes the patched object (so the status
 * write that follows is bound to the new resourceVersion).
 */
static int set_finalizer(reconciler_t *r, json_t **cluster, int add, lo_err_t *err)
{
    const json_t *md = meta_of(*cluster);
    const json_t *fins = json_object_get(md, "finalizers");
    if (has_string(fins, RECONCILE_FINALIZER) == add)
        return 0;
    json_t *next = json_array();
    size_t i;
    json_t *v;
    json_array_foreach(fins, i, v) {
        if (!(json_is_string(v) && strcmp(json_string_value(v), RECONCILE_FINALIZER) == 0))
            json_array_append(next, v);
    }
    if (add)
        json_array_append_new(next, json_string(RECONCILE_FINALIZER));
    json_t *patch = json_pack("{s:{s:s, s:o}}", "metadata", "resourceVersion", str_of(md, "resourceVersion"),
                              "finalizers", next);
    char *path = lo_sprintf(API_BASE "/languageclusters/%s", str_of(md, "name"));
    int status;
    json_t *updated = api_json(r, "PATCH", path, "application/merge-patch+json", patch, &status);
    free(path);
    json_decref(patch);
    if (status == 200) {
        json_decref(*cluster);
        *cluster = updated;
        return 0;
    }
    json_decref(updated);
    if (status == 404)
        return 0;
    lo_err_set(err, status, "Conflict", "updating the finalizers of LanguageCluster %s: HTTP %d",
               str_of(meta_of(*cluster), "name"), status);
    return -1;
}

static json_t *condition(const char *type, int ok, const char *reason, const char *message, json_int_t gen)
{
    return json_pack("{s:s, s:s, s:s, s:s, s:I}", "type", type, "status", ok ? "True" : "False", "reason", reason,
                     "message", message, "observedGeneration", gen);
}

/* A condition list with lastTransitionTime carried from old where the status did not change. */
static void stamp_conditions(json_t *conds, const json_t *old)
{
    char now[40];
    lo_time_rfc3339(now, sizeof(now));
    size_t i, j;
    json_t *c, *o;
    json_array_foreach(conds, i, c) {
        const char *ts = NULL;
        json_array_foreach(old, j, o) {
            if (strcmp(str_of(o, "type") ? str_of(o, "type") : "", str_of(c, "type")) == 0 &&
                strcmp(str_of(o, "status") ? str_of(o, "status") : "", str_of(c, "status")) == 0)
                ts = str_of(o, "lastTransitionTime");
        }
        json_object_set_new(c, "lastTransitionTime", json_string(ts ? ts : now));
    }
}

static int gateway_ready(reconciler_t *r, const char *ns)
{
    size_t idx = 0;
    owned_kind_of("Deployment", &idx);
    json_t *gw = informer_get(r->owned[idx], ns, "gateway");
    const json_t *st = json_object_get(gw, "status");
    json_int_t ready = json_integer_value(json_object_get(st, "readyReplicas"));
    json_decref(gw);
    return ready > 0;
}

static json_t *managed_resources(const json_t *desired)
{
    json_t *out = json_array();
    size_t i;
    json_t *o;
    json_array_foreach(desired, i, o) {
        const char *av = str_of(o, "apiVersion"), *slash = strchr(av, '/');
        json_t *ref = json_pack("{s:s%, s:s, s:s}", "group", av, slash ? (size_t)(slash - av) : 0, "kind",
                                str_of(o, "kind"), "name", str_of(meta_of(o), "name"));
        const char *ns = str_of(meta_of(o), "namespace");
        if (ns)
            json_object_set_new(ref, "namespace", json_string(ns));
        json_array_append_new(out, ref);
    }
    return out;
}

/* Writes the fields the reconciler owns into the cluster's status, when they differ. */
static int write_status(reconciler_t *r, const json_t *cluster, const json_t *desired, const lo_err_t *failure,
                        lo_err_t *err)
{
    const json_t *md = meta_of(cluster), *old = json_object_get(cluster, "status");
    json_int_t gen = json_integer_value(json_object_get(md, "generation"));
    int ready = gateway_ready(r, str_of(md, "name"));
    json_t *conds = json_pack("[o, o]",
                              condition("GatewayReady", ready, ready ? "GatewayReady" : "GatewayNotReady",
                                        ready ? "the gateway has ready replicas" : "the gateway has no ready replica",
                                        gen),
                              condition("Reconciled", failure == NULL, failure ? "ReconcileError" : "ReconcileSuccess",
                                        failure ? failure->message : "the cluster holds the desired objects", gen));
    stamp_conditions(conds, json_object_get(old, "conditions"));
    json_t *want = json_pack("{s:b, s:I, s:o, s:o}", "gatewayReady", ready, "observedGeneration", gen, "conditions",
                             conds, "managedResources", managed_resources(desired));
    int same = 1;
    const char *k;
    json_t *v;
    json_object_foreach(want, k, v) same &= json_equal(v, json_object_get(old, k));
    int rc = 0;
    if (!same) {
        json_t *patch = json_pack("{s:{s:s}, s:O}", "metadata", "resourceVersion", str_of(md, "resourceVersion"),
                                  "status", want);
        char *path = lo_sprintf(API_BASE "/languageclusters/%s/status", str_of(md, "name"));
        int status;
        json_decref(api_json(r, "PATCH", path, "application/merge-patch+json", patch, &status));
        if (status != 200 && status != 404) {
            lo_err_set(err, status, "Conflict", "writing the status of LanguageCluster %s: HTTP %d",
                       str_of(md, "name"), status);
            rc = -1;
        }
        free(path);
        json_decref(patch);
    }
    json_decref(want);
    return rc;
}

/* ---- one reconcile ---- */

typedef struct namespace_objects {
    json_t *models, *agents, *tools, *personas;
} namespace_objects_t;

static int read_namespace(reconciler_t *r, const char *ns, namespace_objects_t *n, lo_err_t *err)
{
    static const char *const plural[] = {"languagemodels", "languageagents", "languagetools", "languagepersonas"};
    json_t **out[] = {&n->models, &n->agents, &n->tools, &n->personas};
    int rc = 0;
    for (size_t i = 0; i < 4; i++) {
        char *path = lo_sprintf(API_BASE "/namespaces/%s/%s", ns, plural[i]);
        if (rc == 0)
            rc = api_items(r, path, out[i], err);
        else
            *out[i] = json_array();
        free(path);
    }
    return rc;
}

static void namespace_objects_free(namespace_objects_t *n)
{
    json_decref(n->models), json_decref(n->agents), json_decref(n->tools), json_decref(n->personas);
}

/* ---- conditions of the namespace's objects ---- */

/* Sets cond (stolen) on obj, a langop object of resource plural, through its status, when it changes. */
static int write_condition(reconciler_t *r, const char *plural, const json_t *obj, json_t *cond, lo_err_t *err)
{
    const json_t *md = meta_of(obj);
    int changed;
    json_t *conds = conditions_set(json_object_get(json_object_get(obj, "status"), "conditions"), cond, &changed);
    if (!changed) {
        json_decref(conds);
        return 0;
    }
    /* the derived conditions in the list are dropped by the write and derived again */
    json_t *patch = json_pack("{s:{s:s}, s:{s:o}}", "metadata", "resourceVersion", str_of(md, "resourceVersion"),
                              "status", "conditions", conds);
    char *path = lo_sprintf(API_BASE "/namespaces/%s/%s/%s/status", str_of(md, "namespace"), plural,
                            str_of(md, "name"));
    int status;
    json_decref(api_json(r, "PATCH", path, "application/merge-patch+json", patch, &status));
    free(path);
    json_decref(patch);
    if (status == 200 || status == 404)
        return 0;
    lo_err_set(err, status, "Conflict", "writing the status of %s %s/%s: HTTP %d", plural, str_of(md, "namespace"),
               str_of(md, "name"), status);
    return -1;
}

/* The status of obj's condition of type (borrowed), or NULL. */
static const char *condition_status(const json_t *obj, const char *type)
{
    size_t i;
    const json_t *c;
    json_array_foreach(json_object_get(json_object_get(obj, "status"), "conditions"), i, c) {
        if (strcmp(str_of(c, "type") ? str_of(c, "type") : "", type) == 0)
            return str_of(c, "status");
    }
    return NULL;
}

static const json_t *unserved_entry(const json_t *unserved, const char *model)
{
    size_t i;
    const json_t *u;
    json_array_foreach(unserved, i, u) {
        if (strcmp(str_of(u, "name"), model) == 0)
            return u;
    }
    return NULL;
}

/* RENDER_COND_SECRETS on every model: what the gateway renders leaves out those without their Secrets. */
static int write_model_conditions(reconciler_t *r, const json_t *models, const json_t *unserved, lo_err_t *err)
{
    size_t i;
    const json_t *m;
    int rc = 0;
    json_array_foreach(models, i, m) {
        const json_t *u = unserved_entry(unserved, str_of(meta_of(m), "name"));
        json_int_t gen = json_integer_value(json_object_get(meta_of(m), "generation"));
        json_t *cond = u ? condition_new(RENDER_COND_SECRETS, "False", "SecretNotFound", str_of(u, "message"), gen)
                         : condition_new(RENDER_COND_SECRETS, "True", "SecretsFound",
                                         "every Secret the model reads is in the cluster", gen);
        const char *before = condition_status(m, RENDER_COND_SECRETS);
        rc |= write_condition(r, "languagemodels", m, cond, err);
        if (u && (before == NULL || strcmp(before, "False") != 0))
            record(r, m, "LanguageModel", "Warning", "SecretNotFound", "left out of the gateway: %s",
                   str_of(u, "message"));
        else if (!u && before && strcmp(before, "False") == 0)
            record(r, m, "LanguageModel", "Normal", "SecretFound", "%s", "its Secrets are there: served again");
    }
    return rc;
}

/* The workload desired for the object whose owner label is owner_label=name (borrowed), or NULL. */
static const json_t *desired_workload(const json_t *desired, const char *owner_label, const char *name)
{
    size_t i;
    const json_t *o;
    json_array_foreach(desired, i, o) {
        const char *kind = str_of(o, "kind"), *owner = str_of(json_object_get(meta_of(o), "labels"), owner_label);
        if (owner && strcmp(owner, name) == 0 &&
            (strcmp(kind, "Deployment") == 0 || strcmp(kind, "CronJob") == 0 || strcmp(kind, "Job") == 0))
            return o;
    }
    return NULL;
}

/* Ready of every agent or tool (plural) from its workload as the cluster holds it; none yet: nothing written. */
static int write_workload_conditions(reconciler_t *r, const char *plural, const char *owner_label,
                                     const json_t *objects, const json_t *desired, lo_err_t *err)
{
    size_t i;
    const json_t *o;
    int rc = 0;
    json_array_foreach(objects, i, o) {
        const json_t *want = desired_workload(desired, owner_label, str_of(meta_of(o), "name"));
        size_t idx = 0;
        if (want == NULL || owned_kind_of(str_of(want, "kind"), &idx) == NULL)
            continue;
        json_t *live = informer_get(r->owned[idx], str_of(meta_of(want), "namespace"), str_of(meta_of(want), "name"));
        json_t *cond = live ? workload_ready_condition(live, json_integer_value(json_object_get(meta_of(o),
                                                                                                 "generation")))
                            : NULL;
        if (cond)
            rc |= write_condition(r, plural, o, cond, err);
        json_decref(live);
    }
    return rc;
}

/* Applies what cluster (live, not being deleted) should have; *desired receives it. */
static int converge(reconciler_t *r, const json_t *cluster, json_t **desired, lo_err_t *err)
{
    const char *name = str_of(meta_of(cluster), "name");
    namespace_objects_t n = {0};
    if (read_namespace(r, name, &n, err) != 0) {
        namespace_objects_free(&n);
        return -1;
    }
    json_t *secrets = secrets_of(r, name);
    desired_input_t in = {.cluster = cluster, .models = n.models, .agents = n.agents, .tools = n.tools,
                          .personas = n.personas, .secrets = secrets};
    desired_options_t o = {.gateway_image = r->o.gateway_image, .cluster_domain = r->o.cluster_domain};
    desired_t d;
    int rc = desired_build(&in, &o, &d, err);
    json_decref(secrets);
    if (rc != 0) {
        namespace_objects_free(&n);
        return -1;
    }
    size_t i;
    json_t *obj;
    json_array_foreach(d.objects, i, obj) {
        int what;
        if ((rc = converge_object(r, obj, &what, err)) != 0)
            break;
        note_applied(r, obj, what, cluster, n.agents, n.tools);
    }
    if (rc == 0)
        rc = write_model_conditions(r, n.models, d.unserved, err) |
             write_workload_conditions(r, "languageagents", DESIRED_LABEL_OWNER_AGENT, n.agents, d.objects, err) |
             write_workload_conditions(r, "languagetools", DESIRED_LABEL_OWNER_TOOL, n.tools, d.objects, err);
    *desired = json_incref(d.objects);
    desired_free(&d);
    namespace_objects_free(&n);
    return rc;
}

static int reconcile_cluster(reconciler_t *r, const char *name, lo_err_t *err)
{
    char *path = lo_sprintf(API_BASE "/languageclusters/%s", name);
    int status;
    json_t *cluster = api_json(r, "GET", path, NULL, NULL, &status);
    free(path);
    if (status != 200 && status != 404) {
        json_decref(cluster);
        lo_err_set(err, status, "InternalError", "reading LanguageCluster %s: HTTP %d", name, status);
        return -1;
    }
    int live = status == 200 && json_object_get(meta_of(cluster), "deletionTimestamp") == NULL;
    json_t *desired = NULL;
    int rc = 0;
    if (live)
        rc = set_finalizer(r, &cluster, 1, err) || converge(r, cluster, &desired, err);
    if (desired == NULL)
        desired = json_array();
    size_t left = 0;
    if (rc == 0)
        rc = prune(r, name, status == 200 ? cluster : NULL, desired, &left, err);
    if (live) {
        lo_err_t werr = {0};
        if (write_status(r, cluster, desired, rc ? err : NULL, &werr) != 0 && rc == 0)
            *err = werr, rc = -1;
        else
            lo_err_clear(&werr);
    } else if (status == 200 && rc == 0 && left == 0) {
        rc = set_finalizer(r, &cluster, 0, err); /* everything it managed is gone */
    } else if (status == 200 && rc == 0) {
        lo_err_set(err, 409, "Conflict", "LanguageCluster %s: %zu managed objects still being deleted", name, left);
        rc = -1;
    }
    if (rc != 0 && live && err->code != 409) /* a conflict is retried at once: no fault to report */
        record(r, cluster, "LanguageCluster", "Warning", "ReconcileFailed", "%s", err->message);
    json_decref(desired);
    json_decref(cluster);
    return rc;
}

/* ---- threads ---- */

static void *worker_main(void *arg)
{
    reconciler_t *r = arg;
    /* with caches not yet filled, every object would look missing and be applied again */
    for (size_t k = 0; k < N_OWNED; k++)
        informer_wait_synced(r->owned[k], 30000);
    informer_wait_synced(r->secrets, 30000);
    char *key;
    while (workqueue_get(r->queue, &key, -1) == WORKQUEUE_OK) {
        lo_err_t err = {0};
        if (reconcile_cluster(r, key, &err) == 0) {
            workqueue_forget(r->queue, key);
        } else {
            lo_log(LO_INFO, "reconcile LanguageCluster %s: %s (retry %d)", key, err.message,
                   workqueue_num_requeues(r->queue, key) + 1);
            workqueue_add_rate_limited(r->queue, key);
        }
        lo_err_clear(&err);
        workqueue_done(r->queue, key);
        free(key);
    }
    return NULL;
}

/*
 * Every cluster of the store, and every cluster the cluster's objects name
 * (orphans get pruned); forget: with their backoff forgotten.
 */
static void enqueue_all(reconciler_t *r, int forget)
{
    json_t *items;
    lo_err_t err = {0};
    api_items(r, API_BASE "/languageclusters", &items, &err);
    lo_err_clear(&err);
    size_t i;
    json_t *c;
    json_array_foreach(items, i, c) enqueue_key(r, str_of(meta_of(c), "name"), forget);
    json_decref(items);
    for (size_t k = 0; k < N_OWNED; k++) {
        if (r->owned[k] == NULL) /* still starting */
            continue;
        json_t *list = informer_list(r->owned[k], NULL, NULL, NULL);
        json_array_foreach(list, i, c)
            enqueue_key(r, str_of(json_object_get(meta_of(c), "labels"), DESIRED_LABEL_CLUSTER), forget);
        json_decref(list);
    }
}

/*
 * An informer is back after failures: kube-apiserver was away, and the
 * clusters whose reconciles failed meanwhile may be waiting minutes of
 * backoff with nothing else to wake them. They start over now.
 */
static void on_recovered(void *ctx)
{
    enqueue_all(ctx, 1);
}

static void *resync_main(void *arg)
{
    reconciler_t *r = arg;
    pthread_mutex_lock(&r->lock);
    while (!r->stop) {
        pthread_mutex_unlock(&r->lock);
        enqueue_all(r, 0);
        pthread_mutex_lock(&r->lock);
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += r->o.resync_ms / 1000;
        until.tv_nsec += (r->o.resync_ms % 1000) * 1000000L;
        if (until.tv_nsec >= 1000000000L)
            until.tv_sec++, until.tv_nsec -= 1000000000L;
        while (!r->stop && pthread_cond_timedwait(&r->cond, &r->lock, &until) == 0)
            ;
    }
    pthread_mutex_unlock(&r->lock);
    return NULL;
}

static void defaults(reconciler_options_t *o)
{
    if (o->workers <= 0)
        o->workers = 2;
    if (o->resync_ms <= 0)
        o->resync_ms = 10 * 60 * 1000;
    if (o->write_qps <= 0)
        o->write_qps = 20;
    if (o->write_burst <= 0)
        o->write_burst = 40;
}

static informer_t *start_informer(reconciler_t *r, const char *path, const char *selector,
                                  json_t *(*transform)(const json_t *), informer_event_fn fn, lo_err_t *err)
{
    informer_options_t io = {.path = path, .label_selector = selector, .transform = transform, .on_event = fn,
                             .on_recovered = on_recovered, .ctx = r};
    informer_t *inf = informer_new(r->o.kube, &io);
    if (informer_start(inf, err) != 0) {
        informer_free(inf);
        return NULL;
    }
    return inf;
}

reconciler_t *reconciler_start(const reconciler_options_t *opts, lo_err_t *err)
{
    reconciler_t *r = lo_calloc(1, sizeof(*r));
    r->o = *opts;
    defaults(&r->o);
    pthread_mutex_init(&r->lock, NULL);
    pthread_cond_init(&r->cond, NULL);
    r->normalized = json_object();
    workqueue_options_t qo = {.backoff_base_ms = r->o.backoff_base_ms, .backoff_max_ms = r->o.backoff_max_ms};
    r->queue = workqueue_new(&qo);
    ratelimit_options_t ro = {.qps = r->o.write_qps, .burst = r->o.write_burst};
    r->writes = ratelimit_new(&ro);
    r->events = event_recorder_new(r->o.kube, DESIRED_MANAGER, r->o.event_host, NULL);
    r->o.event_host = NULL; /* copied by the recorder; the caller's may go */
    r->secrets = start_informer(r, "/api/v1/secrets", NULL, secret_summary, on_secret, err);
    for (size_t k = 0; r->secrets && k < N_OWNED; k++) {
        r->owned[k] = start_informer(r, owned_kinds[k].collection, DESIRED_LABEL_MANAGED_BY "=" DESIRED_MANAGER, NULL,
                                     on_owned, err);
        if (r->owned[k] == NULL)
            break;
    }
    if (r->secrets == NULL || r->owned[N_OWNED - 1] == NULL) {
        reconciler_stop(r);
        return NULL;
    }
    r->feed_id = feed_subscribe(store_feed(api_store(r->o.api)), on_feed, r);
    r->workers = lo_calloc((size_t)r->o.workers, sizeof(pthread_t));
    for (r->n_workers = 0; r->n_workers < r->o.workers; r->n_workers++)
        pthread_create(&r->workers[r->n_workers], NULL, worker_main, r);
    r->resync_started = pthread_create(&r->resync, NULL, resync_main, r) == 0;
    lo_log(LO_INFO, "Reconciling the cluster: %d workers, resync every %llds", r->o.workers,
           (long long)(r->o.resync_ms / 1000));
    return r;
}

void reconciler_stop(reconciler_t *r)
{
    if (r == NULL)
        return;
    if (r->feed_id > 0)
        feed_unsubscribe(store_feed(api_store(r->o.api)), r->feed_id);
    pthread_mutex_lock(&r->lock);
    r->stop = 1;
    pthread_cond_broadcast(&r->cond);
    pthread_mutex_unlock(&r->lock);
    workqueue_shutdown(r->queue);
    ratelimit_stop(r->writes);
    for (size_t k = 0; k < N_OWNED; k++) /* all at once: each may be in a watch that ends within ~1 s */
        if (r->owned[k])
            informer_signal_stop(r->owned[k]);
    if (r->secrets)
        informer_signal_stop(r->secrets);
    kube_client_abort(r->o.kube); /* a LIST or a write may wait on a kube-apiserver that does not answer */
    if (r->resync_started)
        pthread_join(r->resync, NULL);
    for (int i = 0; i < r->n_workers; i++)
        pthread_join(r->workers[i], NULL);
    for (size_t k = 0; k < N_OWNED; k++) {
        if (r->owned[k]) {
            informer_free(r->owned[k]);
        }
    }
    if (r->secrets) {
        informer_free(r->secrets);
    }
    workqueue_free(r->queue);
    ratelimit_free(r->writes);
    event_recorder_free(r->events);
    free(r->workers);
    json_decref(r->normalized);
    pthread_mutex_destroy(&r->lock);
    pthread_cond_destroy(&r->cond);
    free(r);
}
