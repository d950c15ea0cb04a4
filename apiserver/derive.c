/*
 * derive.c - computed status and the GatewayConfig / AgentConfig
 * subresources, on read (contract: include/langop/derive.h).
 *
 * Every derived value comes from the renderers (render.h) applied to what
 * the store holds now; nothing here writes to the store.
 *
 * One pass per namespace: derive_status() sorts the objects by namespace
 * and, for each namespace, reads the related objects once (ns_load: at most
 * one store_get of the LanguageCluster and one store_list per related kind)
 * before overlaying every object of that namespace (kind_rule_t.overlay).
 * A LIST of N agents in one namespace therefore costs 1 get + 3 lists, not N.
 * The reads are not one snapshot: a write landing between them may show in
 * one and not in another, as with any read racing a write.
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
 *    names every missing reference. A derived condition has no history, so
 *    lastTransitionTime is the object's metadata.creationTimestamp: stable
 *    across reads, and never later than the real transition.
 *    observedGeneration is metadata.generation (it is computed from it).
 *  - The subresource objects carry metadata.resourceVersion = the newest
 *    store rv seen by the reads that fed the renderer: two reads with the
 *    same rv render the same config.
 */
#include <stdlib.h>
#include <string.h>
#include <inttypes.h>

#include "langop/derive.h"
#include "langop/render.h"
#include "langop/status.h"

#define COND_REFERENCES_RESOLVED "ReferencesResolved"

/* ---- what one namespace holds ---- */

enum related_kind { REL_MODELS, REL_TOOLS, REL_PERSONAS, REL_AGENTS, REL_COUNT };

static const char *const related_resource[REL_COUNT] = {
    [REL_MODELS] = "languagemodels",
    [REL_TOOLS] = "languagetools",
    [REL_PERSONAS] = "languagepersonas",
    [REL_AGENTS] = "languageagents",
};

typedef enum read_mode { READ_NONE = 0, READ_COUNT, READ_ALL } read_mode_t;

/* The related objects of one namespace, read once and shared by all its objects. */
typedef struct ns_ctx {
    const char *ns;              /* borrowed */
    const char *domain;          /* borrowed */
    json_t *cluster;             /* new ref: the LanguageCluster named ns, or NULL */
    json_t *items[REL_COUNT];    /* new refs (READ_ALL) or NULL */
    int64_t count[REL_COUNT];    /* READ_COUNT and READ_ALL */
    int64_t rv;                  /* newest store rv reported by the lists */
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

/* A list filter that counts and keeps nothing, so counting holds no objects. */
static int count_only(const json_t *obj, void *ctx)
{
    (void)obj;
    (*(int64_t *)ctx)++;
    return 0;
}

static int ns_read_related(store_t *store, ns_ctx_t *ctx, int rel, read_mode_t mode, lo_err_t *err)
{
    int64_t counted = 0;
    store_list_opts_t opts = {.resource = related_resource[rel], .ns = ctx->ns};
    store_list_result_t res;
    if (mode == READ_COUNT) {
        opts.filter = count_only;
        opts.filter_ctx = &counted;
    }
    if (store_list(store, &opts, &res, err) != STORE_OK)
        return -1;
    if (mode == READ_ALL) {
        ctx->items[rel] = json_incref(res.items);
        counted = (int64_t)json_array_size(res.items);
    }
    ctx->count[rel] = counted;
    if (res.rv > ctx->rv)
        ctx->rv = res.rv;
    store_list_result_free(&res);
    return 0;
}

/* The LanguageCluster named ctx->ns (absent is not an error). */
static int ns_read_cluster(store_t *store, ns_ctx_t *ctx, lo_err_t *err)
{
    lo_err_t local = {0};
    int rc = store_get(store, "languageclusters", "", ctx->ns, &ctx->cluster, &local);
    if (rc == STORE_NOT_FOUND)
        ctx->cluster = NULL;
    else if (rc != STORE_OK)
        lo_err_set(err, local.code ? local.code : 500, local.reason[0] ? local.reason : "InternalError", "%s",
                   local.message);
    lo_err_clear(&local);
    return rc == STORE_OK || rc == STORE_NOT_FOUND ? 0 : -1;
}

/* Reads what needs asks for in namespace ns: the only store reads of a pass. */
static int ns_load(store_t *store, const char *ns, const char *domain, const ns_needs_t *needs, ns_ctx_t *ctx,
                   lo_err_t *err)
{
    memset(ctx, 0, sizeof(*ctx));
    ctx->ns = ns;
    ctx->domain = domain;
    if (needs->cluster && ns_read_cluster(store, ctx, err) != 0)
        goto Fail;
    for (int i = 0; i < REL_COUNT; i++)
        if (needs->reads[i] != READ_NONE && ns_read_related(store, ctx, i, needs->reads[i], err) != 0)
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

/* New array of the names of objects, in their order. */
static json_t *object_names(const json_t *objects)
{
    json_t *names = json_array();
    size_t i;
    const json_t *o;
    json_array_foreach(objects, i, o) {
        const char *name = meta_str(o, "name");
        if (name)
            json_array_append_new(names, json_string(name));
    }
    return names;
}

static void overlay_cluster(const ns_ctx_t *ctx, json_t *obj)
{
    json_t *status = status_of(obj);
    status_set_string(status, "gatewayEndpoint", render_gateway_endpoint(ctx->ns, ctx->domain));
    /* store_list returns names in byte-wise order, and names are unique in a namespace. */
    json_object_set_new(status, "models", object_names(ctx->items[REL_MODELS]));
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
    ns_needs_t needs;
    overlay_fn overlay;
    const char *const *fields;      /* the status fields it derives (NULL-terminated) */
    const char *condition;          /* the condition type it derives, or NULL */
} kind_rule_t;

static const char *const cluster_fields[] = {"gatewayEndpoint", "models", "agentCount", "modelCount",
                                             "toolCount", "personaCount", NULL};
static const char *const model_fields[] = {"gatewayEndpoint", NULL};
static const char *const agent_fields[] = {"modelEndpoint", "models", NULL};
static const char *const tool_fields[] = {"endpoint", NULL};

/* A kind not listed (LanguagePersona) has no derived status. */
static const kind_rule_t kind_rules[] = {
    {"LanguageCluster", {0, {[REL_MODELS] = READ_ALL, [REL_TOOLS] = READ_COUNT, [REL_PERSONAS] = READ_COUNT,
                             [REL_AGENTS] = READ_COUNT}}, overlay_cluster, cluster_fields, NULL},
    {"LanguageModel", {1, {READ_NONE}}, overlay_model, model_fields, NULL},
    {"LanguageAgent", {1, {[REL_MODELS] = READ_ALL, [REL_TOOLS] = READ_ALL, [REL_PERSONAS] = READ_ALL}},
     overlay_agent, agent_fields, COND_REFERENCES_RESOLVED},
    {"LanguageTool", {0, {READ_NONE}}, overlay_tool, tool_fields, NULL},
};

static const kind_rule_t *rule_for(const char *kind)
{
    for (size_t i = 0; i < sizeof(kind_rules) / sizeof(*kind_rules); i++)
        if (strcmp(kind_rules[i].kind, kind) == 0)
            return &kind_rules[i];
    return NULL;
}

void derive_overlay(store_t *store, const schema_kind_t *k, json_t *objects, const char *cluster_domain)
{
    lo_err_t err = {0};
    if (derive_status(store, k, objects, cluster_domain, &err) != 0)
        lo_log(LO_INFO, "cannot derive the status of %s: %s", k->plural, err.message);
    lo_err_clear(&err);
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

/* ---- derive_status: group by namespace, load once, overlay each ---- */

typedef struct slot {
    const char *ns;   /* borrowed from the object */
    size_t index;
} slot_t;

static int slot_cmp(const void *a, const void *b)
{
    const slot_t *x = a, *y = b;
    int c = strcmp(x->ns, y->ns);
    if (c != 0)
        return c;
    return x->index < y->index ? -1 : x->index > y->index;
}

/* The namespace an object's related objects live in: a cluster's is its own name. */
static const char *object_ns(const schema_kind_t *k, const json_t *obj)
{
    return meta_str(obj, k->namespaced ? "namespace" : "name");
}

/* Slots of the objects that have a namespace, sorted by it; *n receives their number. malloc'd. */
static slot_t *slots_by_ns(const schema_kind_t *k, const json_t *objects, size_t *n)
{
    slot_t *slots = lo_calloc(json_array_size(objects) + 1, sizeof(*slots));
    size_t i, used = 0;
    const json_t *obj;
    json_array_foreach(objects, i, obj) {
        const char *ns = object_ns(k, obj);
        if (json_is_object(obj) && ns)
            slots[used++] = (slot_t){ns, i};
    }
    qsort(slots, used, sizeof(*slots), slot_cmp);
    *n = used;
    return slots;
}

int derive_status(store_t *store, const schema_kind_t *k, json_t *objects, const char *cluster_domain,
                  lo_err_t *err)
{
    const kind_rule_t *rule = k ? rule_for(k->kind) : NULL;
    size_t n = 0;
    int ret = 0;
    if (rule == NULL || !json_is_array(objects) || json_array_size(objects) == 0)
        return 0;
    slot_t *slots = slots_by_ns(k, objects, &n);
    for (size_t start = 0, end; start < n; start = end) {
        ns_ctx_t ctx;
        if (ns_load(store, slots[start].ns, cluster_domain, &rule->needs, &ctx, err) != 0) {
            ret = -1;
            break;
        }
        /* slots[].ns point into objects that overlay modifies only under status. */
        for (end = start; end < n && strcmp(slots[end].ns, slots[start].ns) == 0; end++)
            rule->overlay(&ctx, json_array_get(objects, slots[end].index));
        ns_ctx_release(&ctx);
    }
    free(slots);
    return ret;
}

/* ---- the subresources ---- */

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

/* Reads one object, turning "absent" into the API's 404 for resource. */
static int get_or_404(store_t *store, const char *resource, const char *ns, const char *name, json_t **out,
                      lo_err_t *err)
{
    int rc = store_get(store, resource, ns, name, out, err);
    if (rc == STORE_NOT_FOUND)
        status_not_found(err, resource, SCHEMA_GROUP, name);
    return rc == STORE_OK ? 0 : -1;
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
    if (get_or_404(store, "languageclusters", "", cluster, &obj, err) != 0)
        return -1;
    if (ns_load(store, cluster, cluster_domain, &needs, &ctx, err) != 0)
        goto Exit;
    if (render_gateway_config(cluster, cluster_domain, ctx.items[REL_MODELS], &r, err) == 0) {
        *out = config_object("GatewayConfig", cluster, NULL, ctx.rv, &r);
        ret = 0;
    }
    ns_ctx_release(&ctx);
Exit:
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
    if (get_or_404(store, "languageagents", ns, name, &agent, err) != 0)
        return -1;
    if (ns_load(store, ns, cluster_domain, needs, &ctx, err) != 0)
        goto Exit;
    if (render_agent_config(agent, ctx.cluster, cluster_domain, ctx.items[REL_MODELS], ctx.items[REL_TOOLS],
                            ctx.items[REL_PERSONAS], &r, err) == 0) {
        *out = config_object("AgentConfig", name, ns, ctx.rv, &r);
        ret = 0;
    }
    ns_ctx_release(&ctx);
Exit:
    render_result_free(&r);
    json_decref(agent);
    return ret;
}
