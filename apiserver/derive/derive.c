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
 *    names every missing reference. lastTransitionTime is the object's
 *    metadata.creationTimestamp: deterministic, and never later than the
 *    real transition. observedGeneration is metadata.generation.
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

#define COND_REFERENCES_RESOLVED "ReferencesResolved"

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
} ns_ctx_t;

typedef struct ns_needs {
    int cluster;                 /* read the LanguageCluster of the namespace */
    read_mode_t reads[REL_COUNT];
} ns_needs_t;

static void ns_ctx_release(ns_ctx_t *ctx)
{
    json_decref(ctx->cluster);
    ctx->cluster = NULL;
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
    else
        rc = store_txn_list(txn, res, ctx->ns, NULL, NULL, &ctx->items[rel], err);
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

/* ---- LanguageTool ---- */

/* The URL agents use for a tool (render.h: the same rule the agent config uses). malloc'd or NULL. */
static char *tool_endpoint(const json_t *tool, const char *domain)
{
    const char *ns = meta_str(tool, "namespace");
    return ns ? render_tool_endpoint(tool, ns, domain) : NULL;
}

static void overlay_tool(const ns_ctx_t *ctx, json_t *obj)
{
    status_set_string(status_of(obj), "endpoint", tool_endpoint(obj, ctx->domain));
}

/* ---- LanguageModel ---- */

static char *gateway_endpoint_if_cluster(const ns_ctx_t *ctx)
{
    return ctx->cluster ? render_gateway_endpoint(ctx->ns, ctx->domain) : NULL;
}

static void overlay_model(const ns_ctx_t *ctx, json_t *obj)
{
    status_set_string(status_of(obj), "gatewayEndpoint", gateway_endpoint_if_cluster(ctx));
}

/* ---- LanguageCluster (ctx->ns is the cluster's own name) ---- */

static void overlay_cluster(const ns_ctx_t *ctx, json_t *obj)
{
    json_t *status = status_of(obj);
    status_set_string(status, "gatewayEndpoint", render_gateway_endpoint(ctx->ns, ctx->domain));
    /* names come in byte-wise order, and are unique in a namespace */
    json_object_set_new(status, "models", json_copy(ctx->items[REL_MODELS]));
    json_object_set_new(status, "agentCount", json_integer(ctx->count[REL_AGENTS]));
    json_object_set_new(status, "modelCount", json_integer(ctx->count[REL_MODELS]));
    json_object_set_new(status, "toolCount", json_integer(ctx->count[REL_TOOLS]));
    json_object_set_new(status, "personaCount", json_integer(ctx->count[REL_PERSONAS]));
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
    size_t i;
    const json_t *u;
    json_array_foreach(unresolved, i, u) {
        const char *r = json_string_value(json_object_get(u, "reason"));
        const char *n = json_string_value(json_object_get(u, "name"));
        if (r && n && strcmp(r, reason) == 0 && strcmp(n, name) == 0)
            return 1;
    }
    return 0;
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
    char *text = NULL;
    size_t i;
    const json_t *u;
    json_array_foreach(unresolved, i, u) {
        const char *r = json_string_value(json_object_get(u, "reason"));
        const char *n = json_string_value(json_object_get(u, "name"));
        if (r == NULL || n == NULL || strcmp(r, mk->reason) != 0)
            continue;
        char *next = text ? lo_sprintf("%s, %s", text, n) : lo_sprintf("%s %s", mk->kind, n);
        free(text);
        text = next;
    }
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
    json_t *cond = json_pack("{s:s, s:s, s:s, s:s}", "type", COND_REFERENCES_RESOLVED, "status",
                             missing ? "False" : "True", "reason", reason, "message", message);
    const char *created = meta_str(agent, "creationTimestamp");
    if (created)
        json_object_set_new(cond, "lastTransitionTime", json_string(created));
    json_t *gen = json_object_get(json_object_get(agent, "metadata"), "generation");
    if (json_is_integer(gen))
        json_object_set(cond, "observedGeneration", gen);
    free(missing);
    free(message);
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

/* A stored agent the renderer refuses: the condition says so rather than failing the whole read. */
static json_t *render_failed_condition(const json_t *agent, const lo_err_t *rerr)
{
    json_t *cond = json_pack("{s:s, s:s, s:s, s:s}", "type", COND_REFERENCES_RESOLVED, "status", "Unknown",
                             "reason", "RenderFailed", "message", rerr->message);
    const char *created = meta_str(agent, "creationTimestamp");
    if (created)
        json_object_set_new(cond, "lastTransitionTime", json_string(created));
    return cond;
}

static void overlay_agent(const ns_ctx_t *ctx, json_t *obj)
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
        conditions_merge(status, render_failed_condition(obj, &rerr));
    } else {
        json_object_set_new(status, "models", resolved_models(obj, r.unresolved));
        conditions_merge(status, references_condition(obj, r.unresolved));
    }
    render_result_free(&r);
    lo_err_clear(&rerr);
    json_decref(empty);
}

/* ---- the rules, by kind ---- */

/* Overlays the derived fields on obj (an object of the rule's kind in ctx->ns). */
typedef void (*overlay_fn)(const ns_ctx_t *ctx, json_t *obj);

typedef struct kind_rule {
    const char *kind;
    const char *resource;
    ns_needs_t needs;
    unsigned follows;               /* REL_* bits and FOLLOWS_CLUSTER: changes in its namespace that move it */
    int by_reference;               /* follows only the related objects it names (and its cluster) */
    overlay_fn overlay;
    const char *const *fields;      /* the status fields it derives (NULL-terminated) */
    const char *condition;          /* the condition type it derives, or NULL */
} kind_rule_t;

static const char *const cluster_fields[] = {"gatewayEndpoint", "models", "agentCount", "modelCount",
                                             "toolCount", "personaCount", NULL};
static const char *const model_fields[] = {"gatewayEndpoint", NULL};
static const char *const agent_fields[] = {"modelEndpoint", "models", NULL};
static const char *const tool_fields[] = {"endpoint", NULL};

#define BIT(rel) (1u << (rel))

/* A kind not listed (LanguagePersona) has no derived status. */
static const kind_rule_t kind_rules[] = {
    {"LanguageCluster", "languageclusters",
     {0, {[REL_MODELS] = READ_NAMES, [REL_TOOLS] = READ_COUNT, [REL_PERSONAS] = READ_COUNT,
          [REL_AGENTS] = READ_COUNT}},
     BIT(REL_MODELS) | BIT(REL_TOOLS) | BIT(REL_PERSONAS) | BIT(REL_AGENTS), 0, overlay_cluster, cluster_fields,
     NULL},
    {"LanguageModel", "languagemodels", {1, {READ_NONE}}, FOLLOWS_CLUSTER, 0, overlay_model, model_fields, NULL},
    {"LanguageAgent", "languageagents",
     {1, {[REL_MODELS] = READ_ALL, [REL_TOOLS] = READ_ALL, [REL_PERSONAS] = READ_ALL}},
     FOLLOWS_CLUSTER | BIT(REL_MODELS) | BIT(REL_TOOLS) | BIT(REL_PERSONAS), 1, overlay_agent, agent_fields,
     COND_REFERENCES_RESOLVED},
    {"LanguageTool", "languagetools", {0, {READ_NONE}}, 0, 0, overlay_tool, tool_fields, NULL},
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
    if (rule->condition && json_is_array(conditions)) {
        for (size_t i = json_array_size(conditions); i-- > 0;) {
            const char *type = json_string_value(json_object_get(json_array_get(conditions, i), "type"));
            if (type && strcmp(type, rule->condition) == 0)
                json_array_remove(conditions, i);
        }
    }
}

/* The namespace an object's related objects live in: a cluster's is its own name. */
static const char *object_ns(const schema_kind_t *k, const json_t *obj)
{
    return meta_str(obj, k->namespaced ? "namespace" : "name");
}

int derive_object(store_txn_t *txn, const schema_kind_t *k, json_t *obj, const char *cluster_domain, lo_err_t *err)
{
    const kind_rule_t *rule = k ? rule_for(k->kind) : NULL;
    const char *ns = json_is_object(obj) ? object_ns(k, obj) : NULL;
    ns_ctx_t ctx;
    if (rule == NULL || ns == NULL)
        return 0;
    if (ns_load(txn, ns, cluster_domain, &rule->needs, &ctx, err) != 0)
        return -1;
    rule->overlay(&ctx, obj);
    ns_ctx_release(&ctx);
    return 0;
}

/* ---- derive_settle: what a batch's changes move, namespace by namespace ---- */

/* What changed in one namespace: the related kinds (and the cluster), and the names per kind. */
typedef struct ns_changes {
    const char *ns;              /* borrowed from the changes */
    unsigned kinds;
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

/* Derives target (borrowed) anew and stores it if its derived fields moved. */
static int rederive(store_txn_t *txn, const kind_rule_t *rule, const ns_ctx_t *ctx, const json_t *target,
                    lo_err_t *err)
{
    json_t *next = json_deep_copy(target);
    rule->overlay(ctx, next);
    int rc = STORE_OK;
    if (!json_equal(next, target))
        rc = store_txn_put(txn, rule->resource, meta_str(target, "namespace"), meta_str(target, "name"), next, err);
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

static int settle_namespace(store_txn_t *txn, const ns_changes_t *g, const char *domain, lo_err_t *err)
{
    for (size_t r = 0; r < KIND_RULES; r++) {
        const kind_rule_t *rule = &kind_rules[r];
        if (!(rule->follows & g->kinds))
            continue;
        json_t *targets = settle_targets(txn, rule, g, err);
        if (targets == NULL)
            return -1;
        int ret = 0;
        if (json_array_size(targets) > 0) {
            ns_ctx_t ctx;
            if ((ret = ns_load(txn, g->ns, domain, &rule->needs, &ctx, err)) == 0) {
                size_t i;
                const json_t *t;
                json_array_foreach(targets, i, t) {
                    if (ret == 0)
                        ret = rederive(txn, rule, &ctx, t, err);
                }
                ns_ctx_release(&ctx);
            }
        }
        json_decref(targets);
        if (ret != 0)
            return -1;
    }
    return 0;
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
    static const ns_needs_t needs = {0, {[REL_MODELS] = READ_ALL}};
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
    if (render_gateway_config(cluster, cluster_domain, ctx.items[REL_MODELS], &r, err) == 0) {
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
