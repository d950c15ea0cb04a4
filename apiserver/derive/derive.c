/*
 * derive.c - derived status, set by the store's writer, and the
 * GatewayConfig / AgentConfig subresources, computed on read (contract:
 * include/langop/derive.h).
 *
 * Every derived value comes from the renderers (render.h) applied to what a
 * store transaction sees: the writer's own (derive_object, derive_settle),
 * or a read snapshot (the subresources), so the inputs of one derivation are
 * always one consistent state.
 *
 * Per kind, one row of kind_rules says what it reads (ns_needs_t), which
 * changes in its namespace it follows, how it overlays its fields, and which
 * fields are derived. derive_settle() groups a batch's changes by namespace
 * and, for each kind that follows what changed there, derives its objects
 * once more from one read of the namespace (ns_load: at most one get of the
 * LanguageCluster and one read per related kind), storing those that
 * changed. Agents are re-derived only when a model, tool or persona they
 * name changed, or their cluster did.
 *
 * Choices the header leaves open:
 *  - A derived field with nothing to derive from (gatewayEndpoint or
 *    modelEndpoint when the namespace has no LanguageCluster) is removed, so
 *    a value a client wrote through the status subresource never shows.
 *  - status.models (cluster and agent) holds LanguageModel metadata.names:
 *    the gateway's model_name, which is what agents request (issue 5).
 *  - ReferencesResolved: when several kinds are missing, the reason names
 *    the first of Model, Tool, Persona (an agent without its model cannot
 *    work at all; a missing persona only changes its voice); the message
 *    names every missing reference. observedGeneration is
 *    metadata.generation (of every derived condition).
 *  - lastTransitionTime (every derived condition) is the writer's clock
 *    when the condition's status changed, carried over from the state the
 *    write replaces while it does not: a rewrite that changes nothing stays
 *    a no-op, and the time moves when, and only when, the status does.
 *  - The models and the cluster read one render of the namespace's gateway
 *    (ns_gateway), the same function the gatewayconfig subresource calls,
 *    so what the status says the gateway serves is what it serves. Cost:
 *    a model write reads and renders every model of its namespace (the
 *    gateway's clash and fallback rules are namespace-wide); a settle for
 *    changes that are not models keeps the cluster's model fields as they
 *    are (keep_gateway) and reads no model.
 *  - The subresource objects carry metadata.resourceVersion = the rv of the
 *    snapshot they were rendered from: two reads with the same rv render
 *    the same config.
 */
#include <stdlib.h>
#include <string.h>
#include <inttypes.h>

#include "langop/core/status.h"
#include "langop/derive/derive.h"
#include "langop/derive/render.h"
#include "langop/schema/objmeta.h"

#define COND_REFERENCES_RESOLVED "ReferencesResolved"
#define COND_READY "Ready"

/* ---- what one namespace holds ---- */

enum related_kind { REL_MODELS, REL_TOOLS, REL_PERSONAS, REL_AGENTS, REL_COUNT };

static const char *const related_resource[REL_COUNT] = {
    [REL_MODELS] = "languagemodels",
    [REL_TOOLS] = "languagetools",
    [REL_PERSONAS] = "languagepersonas",
    [REL_AGENTS] = "languageagents",
};

#define FOLLOWS_CLUSTER (1u << REL_COUNT)   /* a bit beside the REL_* bits */

typedef enum read_mode { READ_NONE = 0, READ_COUNT, READ_NAMES, READ_ALL } read_mode_t;

/* The related objects of one namespace, read once and shared by all its objects. */
typedef struct ns_ctx {
    const char *ns;              /* borrowed */
    const char *domain;          /* borrowed */
    json_t *cluster;             /* new ref: the LanguageCluster named ns, or NULL */
    json_t *items[REL_COUNT];    /* new refs: objects (READ_ALL) or names (READ_NAMES), or NULL */
    int64_t count[REL_COUNT];    /* READ_COUNT, READ_NAMES and READ_ALL */
    int keep_gateway;            /* settle: the gateway's verdict did not move, so what depends on it stays */
    const json_t *carry_from;    /* prepare of a model whose change leaves the verdict as it was: its state before */
    int settle_fast;             /* settle, the cluster unchanged: a Served model the verdict does not name stays */
    int gw_state;                /* the namespace's gateway render: 0 not yet, 1 done, -1 failed */
    render_result_t gw;          /* when gw_state is 1 */
    lo_err_t gw_err;             /* when gw_state is -1 */
} ns_ctx_t;

typedef struct ns_needs {
    int cluster;                 /* read the LanguageCluster of the namespace */
    read_mode_t reads[REL_COUNT];
} ns_needs_t;

static void ns_ctx_release(ns_ctx_t *ctx)
{
    json_decref(ctx->cluster);
    ctx->cluster = NULL;
    render_result_free(&ctx->gw);
    lo_err_clear(&ctx->gw_err);
    ctx->gw_state = 0;
    for (int i = 0; i < REL_COUNT; i++) {
        json_decref(ctx->items[i]);
        ctx->items[i] = NULL;
    }
}

static int ns_read_related(store_txn_t *txn, ns_ctx_t *ctx, int rel, read_mode_t mode, lo_err_t *err)
{
    const char *res = related_resource[rel];
    int rc;
    if (mode == READ_COUNT)
        return store_txn_count(txn, res, ctx->ns, &ctx->count[rel], err) == STORE_OK ? 0 : -1;
    if (mode == READ_NAMES)
        rc = store_txn_names(txn, res, ctx->ns, &ctx->items[rel], err);
    else /* digests: derivations read others' spec and status, not their annotations */
        rc = store_txn_list_digests(txn, res, ctx->ns, &ctx->items[rel], err);
    if (rc != STORE_OK)
        return -1;
    ctx->count[rel] = (int64_t)json_array_size(ctx->items[rel]);
    return 0;
}

/* The LanguageCluster named ctx->ns (absent is not an error). */
static int ns_read_cluster(store_txn_t *txn, ns_ctx_t *ctx, lo_err_t *err)
{
    int rc = store_txn_get(txn, "languageclusters", "", ctx->ns, &ctx->cluster, NULL, err);
    if (rc == STORE_NOT_FOUND)
        ctx->cluster = NULL;
    return rc == STORE_OK || rc == STORE_NOT_FOUND ? 0 : -1;
}

/* Reads what needs asks for in namespace ns: the only store reads of a derivation. */
static int ns_load(store_txn_t *txn, const char *ns, const char *domain, const ns_needs_t *needs, ns_ctx_t *ctx,
                   lo_err_t *err)
{
    memset(ctx, 0, sizeof(*ctx));
    ctx->ns = ns;
    ctx->domain = domain;
    if (needs->cluster && ns_read_cluster(txn, ctx, err) != 0)
        goto Fail;
    for (int i = 0; i < REL_COUNT; i++)
        if (needs->reads[i] != READ_NONE && ns_read_related(txn, ctx, i, needs->reads[i], err) != 0)
            goto Fail;
    return 0;
Fail:
    ns_ctx_release(ctx);
    return -1;
}

/*
 * The gateway of the namespace as the renderer makes it from ctx's cluster
 * and models (which must be READ_ALL), rendered once per ctx: every model
 * and the cluster of one settle share it. NULL when the render failed
 * (ctx->gw_err says why).
 */
static const render_result_t *ns_gateway(ns_ctx_t *ctx)
{
    if (ctx->gw_state == 0) {
        json_t *empty = json_array();
        const json_t *models = ctx->items[REL_MODELS] ? ctx->items[REL_MODELS] : empty;
        ctx->gw_state = render_gateway_verdict(ctx->ns, models, &ctx->gw, &ctx->gw_err) == 0 ? 1 : -1;
        json_decref(empty);
    }
    return ctx->gw_state == 1 ? &ctx->gw : NULL;
}

/* Puts obj (borrowed) in place of the stored state of its key in ctx's list of kind rel: the state being written. */
static void ns_substitute(ns_ctx_t *ctx, int rel, json_t *obj)
{
    const char *name = json_string_value(json_object_get(json_object_get(obj, "metadata"), "name"));
    json_t *next = json_array();
    size_t i;
    json_t *item;
    json_array_foreach(ctx->items[rel], i, item) {
        const char *n = json_string_value(json_object_get(json_object_get(item, "metadata"), "name"));
        if (n == NULL || name == NULL || strcmp(n, name) != 0)
            json_array_append(next, item);
    }
    json_array_append(next, obj);
    json_decref(ctx->items[rel]);
    ctx->items[rel] = next;
    ctx->count[rel] = (int64_t)json_array_size(next);
    render_result_free(&ctx->gw);
    ctx->gw_state = 0;
}

/* An empty array for a kind that was not read, so renderers always get a list. */
static const json_t *ns_items(const ns_ctx_t *ctx, int rel, json_t *empty)
{
    return ctx->items[rel] ? ctx->items[rel] : empty;
}

/* ---- small json helpers ---- */

static const char *meta_str(const json_t *obj, const char *key)
{
    return json_string_value(json_object_get(json_object_get(obj, "metadata"), key));
}

/* obj.status (borrowed), created as {} when absent or not an object. */
static json_t *status_of(json_t *obj)
{
    json_t *status = json_object_get(obj, "status");
    if (!json_is_object(status)) {
        status = json_object();
        json_object_set_new(obj, "status", status);
    }
    return status;
}

/* Sets status[key] to the string s (stolen, malloc'd), or removes the key when s is NULL. */
static void status_set_string(json_t *status, const char *key, char *s)
{
    if (s)
        json_object_set_new(status, key, json_string(s));
    else
        json_object_del(status, key);
    free(s);
}

/* ---- conditions ---- */

/* A new derived condition; lastTransitionTime is set by carry_transitions. */
static json_t *condition_new(const json_t *obj, const char *type, const char *status, const char *reason,
                             const char *message)
{
    json_t *cond = json_pack("{s:s, s:s, s:s, s:s}", "type", type, "status", status, "reason", reason, "message",
                             message);
    json_t *gen = json_object_get(json_object_get(obj, "metadata"), "generation");
    if (json_is_integer(gen))
        json_object_set(cond, "observedGeneration", gen);
    return cond;
}

/* Replaces the condition of the same type in status.conditions (keeping its place), or appends. cond is stolen. */
static void conditions_merge(json_t *status, json_t *cond)
{
    json_t *conds = json_object_get(status, "conditions");
    if (!json_is_array(conds)) {
        conds = json_array();
        json_object_set_new(status, "conditions", conds);
    }
    const char *type = json_string_value(json_object_get(cond, "type"));
    size_t i;
    json_t *c;
    json_array_foreach(conds, i, c) {
        const char *t = json_string_value(json_object_get(c, "type"));
        if (t && strcmp(t, type) == 0) {
            json_array_set_new(conds, i, cond);
            return;
        }
    }
    json_array_append_new(conds, cond);
}

/* The condition of type in obj.status.conditions (borrowed), or NULL. */
static json_t *condition_find(const json_t *obj, const char *type)
{
    size_t i;
    json_t *c;
    json_array_foreach(json_object_get(json_object_get(obj, "status"), "conditions"), i, c) {
        const char *t = json_string_value(json_object_get(c, "type"));
        if (t && strcmp(t, type) == 0)
            return c;
    }
    return NULL;
}

/* ---- LanguageTool ---- */

/* The URL agents use for a tool (render.h: the same rule the agent config uses). malloc'd or NULL. */
static char *tool_endpoint(const json_t *tool, const char *domain)
{
    const char *ns = meta_str(tool, "namespace");
    return ns ? render_tool_endpoint(tool, ns, domain) : NULL;
}

static void set_phase(json_t *status, const char *phase)
{
    json_object_set_new(status, "phase", json_string(phase));
}

/*
 * The phase of a workload from what whoever runs it reports through the
 * status subresource: its Ready condition (not derived for agents and
 * tools) True is Running, False is Degraded; nothing reported is Pending.
 */
static const char *workload_phase(const json_t *obj)
{
    const char *ready = json_string_value(json_object_get(condition_find(obj, COND_READY), "status"));
    if (ready && strcmp(ready, "True") == 0)
        return "Running";
    if (ready && strcmp(ready, "False") == 0)
        return "Degraded";
    return "Pending";
}

static void overlay_tool(ns_ctx_t *ctx, json_t *obj)
{
    json_t *status = status_of(obj);
    status_set_string(status, "endpoint", tool_endpoint(obj, ctx->domain));
    set_phase(status, workload_phase(obj));
}

/* ---- LanguagePersona ---- */

static void overlay_persona(ns_ctx_t *ctx, json_t *obj)
{
    (void)ctx;
    set_phase(status_of(obj), "Ready"); /* a persona is configuration: once stored, agents may use it */
}

/* ---- LanguageModel ---- */

static char *gateway_endpoint_if_cluster(const ns_ctx_t *ctx)
{
    return ctx->cluster ? render_gateway_endpoint(ctx->ns, ctx->domain) : NULL;
}

/* What the gateway render says of one model. */
typedef struct model_verdict {
    const char *status;   /* of the Ready condition */
    const char *reason;
    char *message;        /* malloc'd */
    const char *phase;
} model_verdict_t;

/* The entries of unresolved with reason (and, when field is set, whose field is name): their `name`s joined by ", " (malloc'd), or NULL. */
static char *unresolved_names(const json_t *unresolved, const char *reason, const char *field, const char *name)
{
    char *text = NULL;
    size_t i;
    const json_t *u;
    json_array_foreach(unresolved, i, u) {
        const char *r = json_string_value(json_object_get(u, "reason"));
        const char *f = field ? json_string_value(json_object_get(u, field)) : NULL;
        const char *n = json_string_value(json_object_get(u, "name"));
        if (!r || !n || strcmp(r, reason) != 0 || (field && (!f || strcmp(f, name) != 0)))
            continue;
        char *next = text ? lo_sprintf("%s, %s", text, n) : lo_strdup(n);
        free(text);
        text = next;
    }
    return text;
}

/* The first entry of a renderer's unresolved list with reason about name (borrowed), or NULL. */
static const json_t *unresolved_find(const json_t *unresolved, const char *reason, const char *name)
{
    size_t i;
    const json_t *u;
    json_array_foreach(unresolved, i, u) {
        const char *r = json_string_value(json_object_get(u, "reason"));
        const char *n = json_string_value(json_object_get(u, "name"));
        if (r && n && strcmp(r, reason) == 0 && strcmp(n, name) == 0)
            return u;
    }
    return NULL;
}

/* The message of the first unresolved entry with reason about name (borrowed), or NULL. */
static const char *unresolved_message(const json_t *unresolved, const char *reason, const char *name)
{
    return json_string_value(json_object_get(unresolved_find(unresolved, reason, name), "message"));
}

/*
 * Ready, in order of precedence: no LanguageCluster (Pending: nothing
 * serves it), the cluster terminating (Pending), the render failing
 * (Failed), the model left out because the reconcile thread found a Secret
 * it reads missing (Pending), left out for a variable clash (Failed: its name must
 * change), a fallback naming itself (Failed), fallbacks the gateway does not
 * serve (Pending: they may yet be created); else True, Served.
 */
static model_verdict_t model_verdict(ns_ctx_t *ctx, const json_t *obj)
{
    const char *name = meta_str(obj, "name");
    if (ctx->cluster == NULL)
        return (model_verdict_t){"False", "ClusterNotFound",
                                 lo_sprintf("namespace %s has no LanguageCluster %s, so no gateway serves this model",
                                            ctx->ns, ctx->ns),
                                 "Pending"};
    if (objmeta_is_deleting(ctx->cluster))
        return (model_verdict_t){"False", "ClusterTerminating",
                                 lo_sprintf("LanguageCluster %s is being deleted, and its models with it", ctx->ns),
                                 "Pending"};
    const render_result_t *gw = ns_gateway(ctx);
    if (gw == NULL)
        return (model_verdict_t){"Unknown", "RenderFailed", lo_strdup(ctx->gw_err.message), "Failed"};
    const char *no_secret = unresolved_message(gw->unresolved, "SecretNotFound", name);
    if (no_secret) /* Pending: it comes back by itself when the Secret appears */
        return (model_verdict_t){"False", "SecretNotFound", lo_strdup(no_secret), "Pending"};
    const char *clash = unresolved_message(gw->unresolved, "EnvNameClash", name);
    if (clash)
        return (model_verdict_t){"False", "EnvNameClash", lo_strdup(clash), "Failed"};
    char *missing = unresolved_names(gw->unresolved, "InvalidFallback", "referencedBy", name);
    if (missing) {
        free(missing);
        return (model_verdict_t){"False", "InvalidFallback", lo_sprintf("the model lists itself in spec.fallbacks"),
                                 "Failed"};
    }
    missing = unresolved_names(gw->unresolved, "FallbackNotFound", "referencedBy", name);
    if (missing) {
        model_verdict_t v = {"False", "FallbackNotFound",
                             lo_sprintf("served without the fallbacks that the gateway of namespace %s does not "
                                        "serve: %s",
                                        ctx->ns, missing),
                             "Pending"};
        free(missing);
        return v;
    }
    size_t deployments = 1 + json_array_size(json_object_get(json_object_get(obj, "spec"), "upstreams"));
    return (model_verdict_t){"True", "Served",
                             lo_sprintf("served by the gateway of LanguageCluster %s as model %s (%zu deployment%s)",
                                        ctx->ns, name, deployments, deployments == 1 ? "" : "s"),
                             "Ready"};
}

static int str_is(const json_t *v, const char *s)
{
    const char *t = json_string_value(v);
    return t != NULL && s != NULL && strcmp(t, s) == 0;
}

/*
 * Whether overlay_model would leave the stored model as it is: one model's
 * change re-derives every model of its namespace, and most stay as they
 * were; this answers that without building a copy of each.
 */
/* Whether the verdict names the model at all: left out, or one of its fallbacks (name or referencedBy). */
static int verdict_mentions(const render_result_t *gw, const char *name)
{
    size_t i;
    const json_t *u;
    json_array_foreach(gw->unresolved, i, u) {
        const char *n = json_string_value(json_object_get(u, "name"));
        const char *by = json_string_value(json_object_get(u, "referencedBy"));
        if ((n && strcmp(n, name) == 0) || (by && strcmp(by, name) == 0))
            return 1;
    }
    return 0;
}

static int model_unchanged(ns_ctx_t *ctx, const json_t *obj)
{
    const json_t *status = json_object_get(obj, "status");
    const json_t *cond = condition_find(obj, COND_READY);
    /*
     * Settled before as Served, not changed in this batch (or its change was
     * derived in prepare), the cluster where it was, and nothing in the
     * verdict about it: Served again, with the same message (its
     * deployments did not change). The common case, checked without
     * building the verdict's text.
     */
    const render_result_t *gw = ctx->settle_fast && ctx->cluster ? ns_gateway(ctx) : NULL;
    if (gw && str_is(json_object_get(cond, "reason"), "Served") &&
        !verdict_mentions(gw, meta_str(obj, "name")) &&
        json_equal(json_object_get(cond, "observedGeneration"),
                   json_object_get(json_object_get(obj, "metadata"), "generation")))
        return 1;
    char *endpoint = gateway_endpoint_if_cluster(ctx);
    const json_t *stored = json_object_get(status, "gatewayEndpoint");
    int same = endpoint ? str_is(stored, endpoint) : stored == NULL;
    free(endpoint);
    if (!same || cond == NULL)
        return 0;
    model_verdict_t v = model_verdict(ctx, obj);
    same = str_is(json_object_get(status, "phase"), v.phase) && str_is(json_object_get(cond, "status"), v.status) &&
           str_is(json_object_get(cond, "reason"), v.reason) && str_is(json_object_get(cond, "message"), v.message) &&
           json_equal(json_object_get(cond, "observedGeneration"),
                      json_object_get(json_object_get(obj, "metadata"), "generation"));
    free(v.message);
    return same;
}

/* The verdict of a model from its state before (ctx->carry_from), which nothing since has moved. */
static model_verdict_t model_verdict_carried(const ns_ctx_t *ctx)
{
    const json_t *cond = condition_find(ctx->carry_from, COND_READY);
    const char *phase = json_string_value(json_object_get(json_object_get(ctx->carry_from, "status"), "phase"));
    return (model_verdict_t){json_string_value(json_object_get(cond, "status")),
                             json_string_value(json_object_get(cond, "reason")),
                             lo_strdup(json_string_value(json_object_get(cond, "message"))), phase};
}

static void overlay_model(ns_ctx_t *ctx, json_t *obj)
{
    json_t *status = status_of(obj);
    status_set_string(status, "gatewayEndpoint", gateway_endpoint_if_cluster(ctx));
    model_verdict_t v = ctx->carry_from ? model_verdict_carried(ctx) : model_verdict(ctx, obj);
    conditions_merge(status, condition_new(obj, COND_READY, v.status, v.reason, v.message));
    set_phase(status, v.phase);
    free(v.message);
}

/* ---- LanguageCluster (ctx->ns is the cluster's own name) ---- */

/* The models the gateway leaves out, as [{name, reason, message}] (new), or NULL when none. */
static json_t *unserved_models(const json_t *unresolved)
{
    json_t *out = NULL;
    size_t i;
    const json_t *u;
    json_array_foreach(unresolved, i, u) {
        const char *r = json_string_value(json_object_get(u, "reason"));
        if (r == NULL || (strcmp(r, "EnvNameClash") != 0 && strcmp(r, "SecretNotFound") != 0))
            continue;
        if (out == NULL)
            out = json_array();
        json_array_append_new(out, json_pack("{s:O, s:O, s:O}", "name", json_object_get(u, "name"), "reason",
                                             json_object_get(u, "reason"), "message", json_object_get(u, "message")));
    }
    return out;
}

/* Terminating while deleted; Ready once the reconcile thread reports its gateway ready; Pending until then. */
static const char *cluster_phase(const json_t *obj)
{
    if (objmeta_is_deleting(obj))
        return "Terminating";
    return json_is_true(json_object_get(json_object_get(obj, "status"), "gatewayReady")) ? "Ready" : "Pending";
}

/* status.models, modelCount and unservedModels from the namespace's gateway. */
static void overlay_cluster_models(ns_ctx_t *ctx, json_t *status)
{
    const render_result_t *gw = ns_gateway(ctx);
    json_t *served = gw ? json_incref(gw->served) : json_array();
    json_t *unserved = gw ? unserved_models(gw->unresolved) : NULL;
    json_object_set_new(status, "models", served); /* sorted byte-wise, each once */
    json_object_set_new(status, "modelCount", json_integer((json_int_t)json_array_size(served)));
    if (unserved)
        json_object_set_new(status, "unservedModels", unserved);
    else
        json_object_del(status, "unservedModels");
}

static void overlay_cluster(ns_ctx_t *ctx, json_t *obj)
{
    json_t *status = status_of(obj);
    status_set_string(status, "gatewayEndpoint", render_gateway_endpoint(ctx->ns, ctx->domain));
    if (!ctx->keep_gateway) /* models, modelCount and unservedModels stay as the target has them */
        overlay_cluster_models(ctx, status);
    json_object_set_new(status, "agentCount", json_integer(ctx->count[REL_AGENTS]));
    json_object_set_new(status, "toolCount", json_integer(ctx->count[REL_TOOLS]));
    json_object_set_new(status, "personaCount", json_integer(ctx->count[REL_PERSONAS]));
    set_phase(status, cluster_phase(obj));
}

/* ---- LanguageAgent ---- */

/* The missing references of an agent, by kind, in the precedence of the condition's reason. */
static const struct missing_kind {
    const char *reason;   /* as render.h reports it in unresolved[].reason */
    const char *kind;
} missing_kinds[] = {
    {"ModelNotFound", "LanguageModel"},
    {"ToolNotFound", "LanguageTool"},
    {"PersonaNotFound", "LanguagePersona"},
};
#define MISSING_KINDS (sizeof(missing_kinds) / sizeof(*missing_kinds))

static int unresolved_has(const json_t *unresolved, const char *reason, const char *name)
{
    return unresolved_find(unresolved, reason, name) != NULL;
}

/* spec.models[].name in order, without the ones the renderer could not resolve. New array. */
static json_t *resolved_models(const json_t *agent, const json_t *unresolved)
{
    json_t *names = json_array();
    size_t i;
    const json_t *m;
    json_array_foreach(json_object_get(json_object_get(agent, "spec"), "models"), i, m) {
        const char *name = json_string_value(json_object_get(m, "name"));
        if (name && !unresolved_has(unresolved, "ModelNotFound", name))
            json_array_append_new(names, json_string(name));
    }
    return names;
}

/* "LanguageModel a, b": the unresolved entries of one kind, or NULL if none. malloc'd. */
static char *missing_of_kind(const json_t *unresolved, const struct missing_kind *mk)
{
    char *names = unresolved_names(unresolved, mk->reason, NULL, NULL);
    char *text = names ? lo_sprintf("%s %s", mk->kind, names) : NULL;
    free(names);
    return text;
}

/* New ReferencesResolved condition for agent from the renderer's unresolved list. */
static json_t *references_condition(const json_t *agent, const json_t *unresolved)
{
    const char *reason = "AllReferencesResolved";
    char *missing = NULL; /* "LanguageModel a, b; LanguageTool c" */
    for (size_t i = 0; i < MISSING_KINDS; i++) {
        char *part = missing_of_kind(unresolved, &missing_kinds[i]);
        if (part == NULL)
            continue;
        if (missing == NULL) {
            reason = missing_kinds[i].reason;
            missing = part;
        } else {
            char *joined = lo_sprintf("%s; %s", missing, part);
            free(missing);
            free(part);
            missing = joined;
        }
    }
    char *message = missing ? lo_sprintf("not found in namespace %s: %s", meta_str(agent, "namespace"), missing)
                            : lo_strdup("every model, tool and persona the agent references exists");
    json_t *cond = condition_new(agent, COND_REFERENCES_RESOLVED, missing ? "False" : "True", reason, message);
    free(missing);
    free(message);
    return cond;
}

/* Failed when its config cannot be rendered; Suspended when the spec suspends it; else as its workload reports. */
static const char *agent_phase(const json_t *agent, int rendered)
{
    const json_t *exec = json_object_get(json_object_get(agent, "spec"), "execution");
    if (!rendered)
        return "Failed";
    if (json_is_true(json_object_get(exec, "suspend")))
        return "Suspended";
    return workload_phase(agent);
}

static void overlay_agent(ns_ctx_t *ctx, json_t *obj)
{
    json_t *empty = json_array();
    render_result_t r = {0};
    lo_err_t rerr = {0};
    json_t *status;
    int rc = render_agent_config(obj, ctx->cluster, ctx->domain, ns_items(ctx, REL_MODELS, empty),
                                 ns_items(ctx, REL_TOOLS, empty), ns_items(ctx, REL_PERSONAS, empty), &r, &rerr);
    status = status_of(obj);
    status_set_string(status, "modelEndpoint", gateway_endpoint_if_cluster(ctx));
    if (rc != 0) {
        json_object_del(status, "models");
        conditions_merge(status, condition_new(obj, COND_REFERENCES_RESOLVED, "Unknown", "RenderFailed",
                                               rerr.message));
    } else {
        json_object_set_new(status, "models", resolved_models(obj, r.unresolved));
        conditions_merge(status, references_condition(obj, r.unresolved));
    }
    set_phase(status, agent_phase(obj, rc == 0));
    render_result_free(&r);
    lo_err_clear(&rerr);
    json_decref(empty);
}

/* ---- the rules, by kind ---- */

/* Overlays the derived fields on obj (an object of the rule's kind in ctx->ns). */
typedef void (*overlay_fn)(ns_ctx_t *ctx, json_t *obj);

typedef struct kind_rule {
    const char *kind;
    const char *resource;
    ns_needs_t needs;
    unsigned follows;               /* REL_* bits and FOLLOWS_CLUSTER: changes in its namespace that move it */
    int by_reference;               /* follows only the related objects it names (and its cluster) */
    int self_rel;                   /* the REL_* list its own objects are in (prepare sees the new state), or -1 */
    overlay_fn overlay;
    const char *const *fields;      /* the status fields it derives (NULL-terminated) */
    const char *const *conditions;  /* the condition types it derives (NULL-terminated) */
    int keeps_gateway;              /* its gateway fields follow the models alone (see ns_ctx_t.keep_gateway) */
    int via_gateway;                /* it follows the models only through the gateway's verdict */
    int (*unchanged)(ns_ctx_t *ctx, const json_t *obj); /* optional: 1 when overlay would change nothing */
} kind_rule_t;

static const char *const cluster_fields[] = {"gatewayEndpoint", "models", "agentCount", "modelCount", "toolCount",
                                             "personaCount", "unservedModels", "phase", NULL};
static const char *const model_fields[] = {"gatewayEndpoint", "phase", NULL};
static const char *const agent_fields[] = {"modelEndpoint", "models", "phase", NULL};
static const char *const tool_fields[] = {"endpoint", "phase", NULL};
static const char *const persona_fields[] = {"phase", NULL};
static const char *const model_conditions[] = {COND_READY, NULL};
static const char *const agent_conditions[] = {COND_REFERENCES_RESOLVED, NULL};
static const char *const no_conditions[] = {NULL};

#define BIT(rel) (1u << (rel))

static const kind_rule_t kind_rules[] = {
    {"LanguageCluster", "languageclusters",
     {1, {[REL_MODELS] = READ_ALL, [REL_TOOLS] = READ_COUNT, [REL_PERSONAS] = READ_COUNT,
          [REL_AGENTS] = READ_COUNT}},
     BIT(REL_MODELS) | BIT(REL_TOOLS) | BIT(REL_PERSONAS) | BIT(REL_AGENTS), 0, -1, overlay_cluster, cluster_fields,
     no_conditions, 1, 1, NULL},
    {"LanguageModel", "languagemodels", {1, {[REL_MODELS] = READ_ALL}}, FOLLOWS_CLUSTER | BIT(REL_MODELS), 0,
     REL_MODELS, overlay_model, model_fields, model_conditions, 0, 1, model_unchanged},
    {"LanguageAgent", "languageagents",
     {1, {[REL_MODELS] = READ_ALL, [REL_TOOLS] = READ_ALL, [REL_PERSONAS] = READ_ALL}},
     FOLLOWS_CLUSTER | BIT(REL_MODELS) | BIT(REL_TOOLS) | BIT(REL_PERSONAS), 1, -1, overlay_agent, agent_fields,
     agent_conditions, 0, 0, NULL},
    {"LanguageTool", "languagetools", {0, {READ_NONE}}, 0, 0, -1, overlay_tool, tool_fields, no_conditions, 0, 0, NULL},
    {"LanguagePersona", "languagepersonas", {0, {READ_NONE}}, 0, 0, -1, overlay_persona, persona_fields,
     no_conditions, 0, 0, NULL},
};
#define KIND_RULES (sizeof(kind_rules) / sizeof(*kind_rules))

static const kind_rule_t *rule_for(const char *kind)
{
    for (size_t i = 0; i < KIND_RULES; i++)
        if (strcmp(kind_rules[i].kind, kind) == 0)
            return &kind_rules[i];
    return NULL;
}

int derive_has_status(const schema_kind_t *k)
{
    return rule_for(k->kind) != NULL;
}

void derive_strip(const schema_kind_t *k, json_t *obj)
{
    const kind_rule_t *rule = rule_for(k->kind);
    json_t *status = json_object_get(obj, "status");
    if (rule == NULL || !json_is_object(status))
        return;
    for (const char *const *f = rule->fields; *f; f++)
        json_object_del(status, *f);
    json_t *conditions = json_object_get(status, "conditions");
    for (size_t i = json_array_size(conditions); i-- > 0;) {
        const char *type = json_string_value(json_object_get(json_array_get(conditions, i), "type"));
        for (const char *const *c = rule->conditions; type && *c; c++)
            if (strcmp(type, *c) == 0) {
                json_array_remove(conditions, i);
                break;
            }
    }
}

/* The namespace an object's related objects live in: a cluster's is its own name. */
static const char *object_ns(const schema_kind_t *k, const json_t *obj)
{
    return meta_str(obj, k->namespaced ? "namespace" : "name");
}

/*
 * A derived condition keeps its lastTransitionTime while its status stays
 * what it was in prev (the state before this write); one that is new or
 * whose status changed gets the time of this commit.
 */
static void carry_transitions(const kind_rule_t *rule, const json_t *prev, json_t *obj)
{
    char now[40] = "";
    for (const char *const *type = rule->conditions; *type; type++) {
        json_t *cond = condition_find(obj, *type);
        if (cond == NULL)
            continue;
        const json_t *was = condition_find(prev, *type);
        const json_t *when = json_object_get(was, "lastTransitionTime");
        if (was && json_is_string(when) &&
            json_equal(json_object_get(was, "status"), json_object_get(cond, "status"))) {
            json_object_set(cond, "lastTransitionTime", (json_t *)when);
            continue;
        }
        if (now[0] == '\0')
            lo_time_rfc3339(now, sizeof(now));
        json_object_set_new(cond, "lastTransitionTime", json_string(now));
    }
}

/* Overlays obj's derived fields from ctx, prev being the state it follows (NULL when new). */
static void derive_apply(const kind_rule_t *rule, ns_ctx_t *ctx, const json_t *prev, json_t *obj)
{
    rule->overlay(ctx, obj);
    carry_transitions(rule, prev, obj);
}

int derive_object(store_txn_t *txn, const schema_kind_t *k, const json_t *current, json_t *obj,
                  const char *cluster_domain, lo_err_t *err)
{
    const kind_rule_t *rule = k ? rule_for(k->kind) : NULL;
    const char *ns = json_is_object(obj) ? object_ns(k, obj) : NULL;
    ns_ctx_t ctx;
    if (rule == NULL || ns == NULL)
        return 0;
    ns_needs_t needs = rule->needs;
    /* a model changed in what the verdict does not read: its verdict stays, nothing else need be read */
    int carry = rule->self_rel == REL_MODELS && current && condition_find(current, COND_READY) &&
                render_gateway_same(current, obj);
    if (carry)
        needs.reads[REL_MODELS] = READ_NONE;
    if (ns_load(txn, ns, cluster_domain, &needs, &ctx, err) != 0)
        return -1;
    if (carry)
        ctx.carry_from = current;
    /* the derivation sees the state being written, not the one it replaces */
    if (!k->namespaced && rule->needs.cluster) {
        json_decref(ctx.cluster);
        ctx.cluster = json_incref(obj);
    }
    if (rule->self_rel >= 0 && !carry)
        ns_substitute(&ctx, rule->self_rel, obj);
    derive_apply(rule, &ctx, current, obj);
    ns_ctx_release(&ctx);
    return 0;
}

/* ---- derive_settle: what a batch's changes move, namespace by namespace ---- */

/* What changed in one namespace: the related kinds (and the cluster), and the names per kind. */
typedef struct ns_changes {
    const char *ns;              /* borrowed from the changes */
    unsigned kinds;
    int gateway_moved;           /* a model change that may move the gateway's verdict (render_gateway_same) */
    json_t *names[REL_COUNT];    /* new: object of changed names -> true, or NULL */
} ns_changes_t;

static int related_of(const char *resource)
{
    for (int i = 0; i < REL_COUNT; i++)
        if (strcmp(related_resource[i], resource) == 0)
            return i;
    return -1;
}

static ns_changes_t *ns_changes_for(ns_changes_t **v, size_t *n, const char *ns)
{
    for (size_t i = 0; i < *n; i++)
        if (strcmp((*v)[i].ns, ns) == 0)
            return &(*v)[i];
    *v = lo_realloc(*v, (*n + 1) * sizeof(**v));
    ns_changes_t *c = &(*v)[(*n)++];
    memset(c, 0, sizeof(*c));
    c->ns = ns;
    return c;
}

/* Groups changes by the namespace they are in (a LanguageCluster's: the one of its name). */
static ns_changes_t *group_changes(const store_change_t *changes, size_t n, size_t *count)
{
    ns_changes_t *v = NULL;
    *count = 0;
    for (size_t i = 0; i < n; i++) {
        const store_change_t *c = &changes[i];
        int cluster = strcmp(c->resource, "languageclusters") == 0;
        int rel = related_of(c->resource);
        if (!cluster && rel < 0)
            continue;
        ns_changes_t *g = ns_changes_for(&v, count, cluster ? c->name : c->ns);
        if (cluster) {
            g->kinds |= FOLLOWS_CLUSTER;
            continue;
        }
        g->kinds |= BIT(rel);
        if (rel == REL_MODELS && !(c->type == STORE_EVENT_MODIFIED && c->prev && render_gateway_same(c->prev, c->object)))
            g->gateway_moved = 1;
        if (g->names[rel] == NULL)
            g->names[rel] = json_object();
        json_object_set_new(g->names[rel], c->name, json_true());
    }
    return v;
}

/* Whether an agent names one of the changed models, tools or its persona. */
static int agent_names_changed(const json_t *agent, const ns_changes_t *g)
{
    const json_t *spec = json_object_get(agent, "spec");
    static const struct {
        int rel;
        const char *list;
    } refs[] = {{REL_MODELS, "models"}, {REL_TOOLS, "tools"}};
    for (size_t r = 0; r < sizeof(refs) / sizeof(*refs); r++) {
        const json_t *changed = g->names[refs[r].rel];
        size_t i;
        const json_t *ref;
        if (changed == NULL)
            continue;
        json_array_foreach(json_object_get(spec, refs[r].list), i, ref) {
            const char *name = json_string_value(json_object_get(ref, "name"));
            if (name && json_object_get(changed, name))
                return 1;
        }
    }
    const char *persona = json_string_value(json_object_get(spec, "persona"));
    return persona && g->names[REL_PERSONAS] && json_object_get(g->names[REL_PERSONAS], persona);
}

/*
 * A copy of a stored object (shared and read-only) that an overlay may
 * change: the object, its status and its conditions array are copied, the
 * rest is shared. Most targets of a settle do not move, and a deep copy of
 * each would cost more than deriving it.
 */
static json_t *overlay_copy(const json_t *target)
{
    json_t *next = json_copy((json_t *)target);
    json_t *status = json_object_get(next, "status");
    if (json_is_object(status)) {
        status = json_copy(status);
        json_object_set_new(next, "status", status);
        json_t *conds = json_object_get(status, "conditions");
        if (json_is_array(conds))
            json_object_set_new(status, "conditions", json_copy(conds));
    }
    return next;
}

/* Derives target (borrowed) anew and stores it if its derived fields moved. */
static int rederive(store_txn_t *txn, const kind_rule_t *rule, ns_ctx_t *ctx, const json_t *target,
                    lo_err_t *err)
{
    if (rule->unchanged && rule->unchanged(ctx, target))
        return 0;
    json_t *next = overlay_copy(target);
    derive_apply(rule, ctx, target, next);
    int rc = STORE_OK;
    if (!json_equal(next, target)) {
        /* it moves: derived again on the whole stored object (target may be a digest), which the store takes */
        const char *ns = meta_str(target, "namespace"), *name = meta_str(target, "name");
        json_t *whole = NULL;
        rc = store_txn_get(txn, rule->resource, ns ? ns : "", name, &whole, NULL, err);
        if (rc == STORE_OK) {
            json_t *owned = json_deep_copy(whole); /* the store sets its resourceVersion: nothing of it is shared */
            derive_apply(rule, ctx, whole, owned);
            rc = store_txn_put(txn, rule->resource, ns, name, owned, err);
            json_decref(owned);
        }
        json_decref(whole);
    }
    json_decref(next);
    return rc == STORE_OK ? 0 : -1;
}

/* The objects of rule's kind in g's namespace that its changes may move. New array, or NULL on failure. */
static json_t *settle_targets(store_txn_t *txn, const kind_rule_t *rule, const ns_changes_t *g, lo_err_t *err)
{
    json_t *items = NULL;
    if (strcmp(rule->kind, "LanguageCluster") == 0) {
        json_t *cluster = NULL;
        int rc = store_txn_get(txn, rule->resource, "", g->ns, &cluster, NULL, err);
        if (rc != STORE_OK && rc != STORE_NOT_FOUND)
            return NULL;
        items = json_array();
        if (cluster)
            json_array_append_new(items, cluster);
        return items;
    }
    if (store_txn_list(txn, rule->resource, g->ns, NULL, NULL, &items, err) != STORE_OK)
        return NULL;
    if (rule->by_reference && !(g->kinds & FOLLOWS_CLUSTER)) {
        for (size_t i = json_array_size(items); i-- > 0;)
            if (!agent_names_changed(json_array_get(items, i), g))
                json_array_remove(items, i);
    }
    return items;
}

/* Whether g's changes may move the derived status of rule's kind. */
static int rule_follows(const kind_rule_t *rule, const ns_changes_t *g)
{
    unsigned kinds = g->kinds;
    if (rule->via_gateway && !g->gateway_moved)
        kinds &= ~BIT(REL_MODELS);
    return (rule->follows & kinds) != 0;
}

/* Adds what rule reads to needs (a read mode covers the ones below it). */
static void needs_add(ns_needs_t *needs, const kind_rule_t *rule, int keep_gateway)
{
    needs->cluster |= rule->needs.cluster;
    for (int i = 0; i < REL_COUNT; i++) {
        read_mode_t m = rule->needs.reads[i];
        if (i == REL_MODELS && rule->keeps_gateway && keep_gateway)
            m = READ_NONE;
        if (m > needs->reads[i])
            needs->reads[i] = m;
    }
}

/*
 * Every rule following g's changes, from one read of the namespace: the
 * derived status of an object reads the others' specs, never their derived
 * fields, so what a rule stores does not change what the next one reads.
 * The targets are found first, so nothing is read for rules without any.
 * A rule whose own kind is read whole takes its targets from that read.
 */
static int settle_namespace(store_txn_t *txn, const ns_changes_t *g, const char *domain, lo_err_t *err)
{
    /* the gateway's verdict did not move: what depends on it alone stays as it is */
    int keep_gateway = !g->gateway_moved;
    json_t *targets[KIND_RULES] = {0};
    ns_needs_t needs = {0};
    int any = 0, ret = 0;
    for (size_t r = 0; r < KIND_RULES; r++) {
        const kind_rule_t *rule = &kind_rules[r];
        if (!rule_follows(rule, g))
            continue;
        if (rule->self_rel >= 0 && !rule->by_reference && rule->needs.reads[rule->self_rel] == READ_ALL) {
            needs_add(&needs, rule, keep_gateway); /* targets: the whole list it reads */
            any = 1;
            continue;
        }
        if ((targets[r] = settle_targets(txn, rule, g, err)) == NULL) {
            ret = -1;
            goto Exit;
        }
        if (json_array_size(targets[r]) > 0) {
            needs_add(&needs, rule, keep_gateway);
            any = 1;
        }
    }
    if (!any)
        goto Exit;
    ns_ctx_t ctx;
    if (ns_load(txn, g->ns, domain, &needs, &ctx, err) != 0) {
        ret = -1;
        goto Exit;
    }
    ctx.keep_gateway = keep_gateway;
    ctx.settle_fast = !(g->kinds & FOLLOWS_CLUSTER);
    for (size_t r = 0; r < KIND_RULES && ret == 0; r++) {
        const kind_rule_t *rule = &kind_rules[r];
        const json_t *list = targets[r];
        if (!rule_follows(rule, g))
            continue;
        if (list == NULL)
            list = ctx.items[rule->self_rel];
        size_t i;
        const json_t *t;
        json_array_foreach(list, i, t) {
            if (ret == 0)
                ret = rederive(txn, rule, &ctx, t, err);
        }
    }
    ns_ctx_release(&ctx);
Exit:
    for (size_t r = 0; r < KIND_RULES; r++)
        json_decref(targets[r]);
    return ret;
}

int derive_settle(store_txn_t *txn, const store_change_t *changes, size_t n, const char *cluster_domain,
                  lo_err_t *err)
{
    size_t count = 0;
    int ret = 0;
    ns_changes_t *groups = group_changes(changes, n, &count);
    for (size_t i = 0; i < count; i++) {
        if (ret == 0)
            ret = settle_namespace(txn, &groups[i], cluster_domain, err);
        for (int k = 0; k < REL_COUNT; k++)
            json_decref(groups[i].names[k]);
    }
    free(groups);
    return ret;
}

/* ---- the subresources, from one snapshot ---- */

/* New GatewayConfig / AgentConfig object holding r (its parts are copied). */
static json_t *config_object(const char *kind, const char *name, const char *ns, int64_t rv,
                             const render_result_t *r)
{
    json_t *meta = json_pack("{s:s}", "name", name);
    if (ns)
        json_object_set_new(meta, "namespace", json_string(ns));
    char rvbuf[24];
    snprintf(rvbuf, sizeof(rvbuf), "%" PRId64, rv);
    json_object_set_new(meta, "resourceVersion", json_string(rvbuf));
    return json_pack("{s:s, s:s, s:o, s:s, s:o, s:o, s:s}", "apiVersion", SCHEMA_GROUP_VERSION, "kind", kind,
                     "metadata", meta, "config", r->yaml ? r->yaml : "", "env",
                     r->env ? json_incref(r->env) : json_array(), "unresolved",
                     r->unresolved ? json_incref(r->unresolved) : json_array(), "hash", r->hash);
}

/* Turns the store's failure in err into a 500 saying what was being read. */
static void read_failed(lo_err_t *err, const char *what, const char *name)
{
    char why[LO_ERR_MESSAGE_MAX / 2];
    snprintf(why, sizeof(why), "%.400s", err->message);
    status_internal(err, "reading %s \"%s\": %s", what, name, why);
}

/* Reads one object, turning "absent" into the API's 404 for resource. */
static int get_or_404(store_txn_t *txn, const char *resource, const char *ns, const char *name, json_t **out,
                      lo_err_t *err)
{
    int rc = store_txn_get(txn, resource, ns, name, out, NULL, err);
    if (rc == STORE_NOT_FOUND)
        status_not_found(err, resource, SCHEMA_GROUP, name);
    else if (rc != STORE_OK)
        read_failed(err, resource, name);
    return rc == STORE_OK ? 0 : -1;
}

static store_txn_t *snapshot_or_500(store_t *store, lo_err_t *err)
{
    store_txn_t *txn = store_snapshot(store, err);
    if (txn == NULL)
        read_failed(err, "the store", "snapshot");
    return txn;
}

int derive_gateway_config(store_t *store, const char *cluster, const char *cluster_domain, json_t **out,
                          lo_err_t *err)
{
    static const ns_needs_t needs = {1, {[REL_MODELS] = READ_ALL}};
    json_t *obj = NULL;
    ns_ctx_t ctx;
    render_result_t r = {0};
    int ret = -1;

    *out = NULL;
    store_txn_t *txn = snapshot_or_500(store, err);
    if (txn == NULL)
        return -1;
    if (get_or_404(txn, "languageclusters", "", cluster, &obj, err) != 0)
        goto Exit;
    if (ns_load(txn, cluster, cluster_domain, &needs, &ctx, err) != 0) {
        read_failed(err, "the models of LanguageCluster", cluster);
        goto Exit;
    }
    if (render_gateway_config(cluster, cluster_domain, ctx.cluster, ctx.items[REL_MODELS], &r, err) == 0) {
        *out = config_object("GatewayConfig", cluster, NULL, store_txn_rv(txn), &r);
        ret = 0;
    }
    ns_ctx_release(&ctx);
Exit:
    store_snapshot_end(txn);
    render_result_free(&r);
    json_decref(obj);
    return ret;
}

int derive_agent_config(store_t *store, const char *ns, const char *name, const char *cluster_domain, json_t **out,
                        lo_err_t *err)
{
    const ns_needs_t *needs = &rule_for("LanguageAgent")->needs;
    json_t *agent = NULL;
    ns_ctx_t ctx;
    render_result_t r = {0};
    int ret = -1;

    *out = NULL;
    store_txn_t *txn = snapshot_or_500(store, err);
    if (txn == NULL)
        return -1;
    if (get_or_404(txn, "languageagents", ns, name, &agent, err) != 0)
        goto Exit;
    if (ns_load(txn, ns, cluster_domain, needs, &ctx, err) != 0) {
        read_failed(err, "the namespace of LanguageAgent", name);
        goto Exit;
    }
    if (render_agent_config(agent, ctx.cluster, cluster_domain, ctx.items[REL_MODELS], ctx.items[REL_TOOLS],
                            ctx.items[REL_PERSONAS], &r, err) == 0) {
        *out = config_object("AgentConfig", name, ns, store_txn_rv(txn), &r);
        ret = 0;
    }
    ns_ctx_release(&ctx);
Exit:
    store_snapshot_end(txn);
    render_result_free(&r);
    json_decref(agent);
    return ret;
}
