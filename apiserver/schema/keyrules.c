/*
 * keyrules.c - API keys never reach agents (keyrules.h). Three tables say
 * what the rules know: which kinds run containers (workloads), which
 * variables the server sets (server_vars) and which variables hold a
 * provider credential (credential_vars); the code only walks objects.
 *
 * The cross rule compares Secret names. An object's references are
 * gathered into a secret_refs_t (the name borrowed from the object, the
 * field path owned); the other side is listed with a store filter that
 * keeps only the objects sharing a Secret with it, so the writer builds no
 * list in the usual case where nothing is shared.
 */
#include "langop/schema/keyrules.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define MODELS_RESOURCE "languagemodels"
/* A cause's reason text: what fits after rule_forbidden's "Forbidden: ". */
#define WHY_MAX (LO_ERR_MESSAGE_MAX - 16)

/* The kinds whose spec.deployment.env becomes a container's env. */
typedef struct workload {
    const char *kind;
    const char *resource;    /* store resource (plural) */
    const char *holders;     /* for messages: "agents never hold API keys" */
    const char *server_does; /* "set by" (the server sets them) or "reserved for" */
    int all_server_vars;     /* 1: every server_vars row; 0: only rows marked tools_too */
} workload_t;

static const workload_t workloads[] = {
    {"LanguageAgent", "languageagents", "agents", "set by", 1},
    {"LanguageTool", "languagetools", "tools", "reserved for", 0},
};
#define NWORKLOADS (sizeof(workloads) / sizeof(workloads[0]))

/*
 * The variables the server sets in an agent's container, as
 * render_agent_config writes them (apiserver/derive/render.c; a unit test
 * holds the two lists together). A user value would replace the gateway's
 * address or the agent's identity. Tools get none of them today; the two
 * that steer model traffic are reserved for them too, so that no container
 * the server runs points its model calls anywhere but the gateway.
 */
static const struct server_var {
    const char *name;
    const char *what;   /* what the server puts there, for the message */
    int tools_too;
} server_vars[] = {
    {"MODEL_ENDPOINT", "the gateway's address", 1},
    {"LLM_MODEL", "the agent's models", 1},
    {"MCP_SERVERS", "the agent's tools", 0},
    {"AGENT_NAME", "the agent's name", 0},
    {"AGENT_NAMESPACE", "the agent's namespace", 0},
    {"AGENT_UID", "the agent's uid", 0},
    {"AGENT_CLUSTER_NAME", "the LanguageCluster's name", 0},
};

/*
 * Variables whose value is a provider credential: the names LiteLLM (and
 * the provider SDKs it calls) read keys from. A literal value for one of
 * them is a key typed into the object. Sources (docs.litellm.ai):
 *  - "Setting API Keys" (docs/set_keys): OPENAI_API_KEY, ANTHROPIC_API_KEY,
 *    XAI_API_KEY, REPLICATE_API_KEY, TOGETHERAI_API_KEY;
 *  - the provider pages (docs/providers/<name>): azure (AZURE_API_KEY,
 *    AZURE_AD_TOKEN; Entra ID: AZURE_CLIENT_SECRET), bedrock
 *    (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN, and
 *    AWS_BEARER_TOKEN_BEDROCK, Bedrock API keys read by boto3: BerriAI/litellm
 *    issue 12453), vertex (VERTEXAI_CREDENTIALS; VERTEX_CREDENTIALS is the
 *    key name credentialsSecretRef matches, reference §1.2), gemini
 *    (GEMINI_API_KEY), cohere, mistral, groq, deepseek, openrouter,
 *    huggingface, fireworks_ai, perplexity (<NAME>_API_KEY as listed);
 *  - the OpenAI and Google SDKs' own names: AZURE_OPENAI_API_KEY,
 *    GOOGLE_API_KEY;
 *  - the proxy (docs/proxy/virtual_keys, docs/proxy/api_key_auth): its admin
 *    key LITELLM_MASTER_KEY, its encryption key LITELLM_SALT_KEY, and
 *    LITELLM_API_KEY, the virtual key its clients send.
 * Not here: GOOGLE_APPLICATION_CREDENTIALS, whose value is a file path, not
 * a key; names of endpoints, regions and versions (AZURE_API_BASE ...).
 */
static const char *const credential_vars[] = {
    "OPENAI_API_KEY",
    "AZURE_OPENAI_API_KEY",
    "ANTHROPIC_API_KEY",
    "AZURE_API_KEY",
    "AZURE_AD_TOKEN",
    "AZURE_CLIENT_SECRET",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_BEARER_TOKEN_BEDROCK",
    "GEMINI_API_KEY",
    "GOOGLE_API_KEY",
    "VERTEX_CREDENTIALS",
    "VERTEXAI_CREDENTIALS",
    "COHERE_API_KEY",
    "MISTRAL_API_KEY",
    "GROQ_API_KEY",
    "DEEPSEEK_API_KEY",
    "OPENROUTER_API_KEY",
    "XAI_API_KEY",
    "HUGGINGFACE_API_KEY",
    "TOGETHERAI_API_KEY",
    "REPLICATE_API_KEY",
    "FIREWORKS_AI_API_KEY",
    "PERPLEXITYAI_API_KEY",
    "LITELLM_MASTER_KEY",
    "LITELLM_SALT_KEY",
    "LITELLM_API_KEY",
    NULL,
};

static const workload_t *workload_of(const schema_kind_t *k)
{
    for (size_t i = 0; i < NWORKLOADS; i++)
        if (strcmp(workloads[i].kind, k->kind) == 0)
            return &workloads[i];
    return NULL;
}

static const json_t *deployment_of(const json_t *obj)
{
    return json_object_get(json_object_get(obj, "spec"), "deployment");
}

/* ================================================================== */
/* the container env                                                   */
/* ================================================================== */

static const struct server_var *server_var(const workload_t *w, const char *name)
{
    for (size_t i = 0; i < sizeof(server_vars) / sizeof(server_vars[0]); i++)
        if ((w->all_server_vars || server_vars[i].tools_too) && strcmp(server_vars[i].name, name) == 0)
            return &server_vars[i];
    return NULL;
}

static int is_credential_var(const char *name)
{
    for (int i = 0; credential_vars[i]; i++)
        if (strcasecmp(credential_vars[i], name) == 0)
            return 1;
    return 0;
}

/* The cause for env entry i, if any: 1 when one was added. */
static int check_env_entry(const workload_t *w, size_t i, const json_t *entry, lo_err_t *err)
{
    const char *name = json_string_value(json_object_get(entry, "name"));
    if (name == NULL)
        return 0; /* the schema validator's case */
    char field[64], why[WHY_MAX];
    const struct server_var *sv = server_var(w, name);
    if (sv != NULL) {
        snprintf(field, sizeof(field), "spec.deployment.env[%zu].name", i);
        snprintf(why, sizeof(why), "%s is %s the server (%s)", sv->name, w->server_does, sv->what);
        rule_forbidden(err, field, why);
        return 1;
    }
    const char *value = json_string_value(json_object_get(entry, "value"));
    if (value != NULL && *value != '\0' && is_credential_var(name)) {
        snprintf(field, sizeof(field), "spec.deployment.env[%zu].value", i);
        snprintf(why, sizeof(why),
                 "%.253s is a provider credential; API keys stay in the gateway (reference a Secret with a "
                 "LanguageModel's apiKeySecretRef)",
                 name);
        rule_forbidden(err, field, why);
        return 1;
    }
    return 0;
}

int keyrules_container_env(const rule_input_t *in, lo_err_t *err)
{
    const workload_t *w = workload_of(in->k);
    if (w == NULL)
        return 0;
    int causes = 0;
    size_t i;
    const json_t *entry;
    json_array_foreach(json_object_get(deployment_of(in->obj), "env"), i, entry)
        causes += check_env_entry(w, i, entry, err);
    return causes;
}

/* ================================================================== */
/* Secrets shared with a LanguageModel                                 */
/* ================================================================== */

typedef struct secret_ref {
    const char *secret; /* borrowed from the object the refs were read from */
    char *field;        /* owned: where the object names it */
} secret_ref_t;

typedef struct secret_refs {
    secret_ref_t *items;
    size_t n, cap;
} secret_refs_t;

typedef void (*collect_fn)(const json_t *obj, secret_refs_t *out);

static void refs_free(secret_refs_t *r)
{
    for (size_t i = 0; i < r->n; i++)
        free(r->items[i].field);
    free(r->items);
    memset(r, 0, sizeof(*r));
}

/* Adds ref.name (when a non-empty string) as named at the field fmt says, + ".name". */
static void refs_add(secret_refs_t *r, const json_t *ref, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void refs_add(secret_refs_t *r, const json_t *ref, const char *fmt, ...)
{
    const char *secret = json_string_value(json_object_get(ref, "name"));
    if (secret == NULL || *secret == '\0')
        return;
    char at[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(at, sizeof(at), fmt, ap);
    va_end(ap);
    if (r->n == r->cap) {
        r->cap = r->cap ? 2 * r->cap : 4;
        r->items = lo_realloc(r->items, r->cap * sizeof(*r->items));
    }
    r->items[r->n++] = (secret_ref_t){.secret = secret, .field = lo_sprintf("%s.name", at)};
}

static const secret_ref_t *refs_find(const secret_refs_t *r, const char *secret)
{
    for (size_t i = 0; i < r->n; i++)
        if (strcmp(r->items[i].secret, secret) == 0)
            return &r->items[i];
    return NULL;
}

/* The Secrets an agent's or tool's container reads (keyrules.h). */
static void collect_workload(const json_t *obj, secret_refs_t *out)
{
    const json_t *deployment = deployment_of(obj), *item;
    size_t i;
    json_array_foreach(json_object_get(deployment, "env"), i, item)
        refs_add(out, json_object_get(json_object_get(item, "valueFrom"), "secretKeyRef"),
                 "spec.deployment.env[%zu].valueFrom.secretKeyRef", i);
    json_array_foreach(json_object_get(deployment, "envFrom"), i, item)
        refs_add(out, json_object_get(item, "secretRef"), "spec.deployment.envFrom[%zu].secretRef", i);
}

/*
 * The Secrets one deployment of a model names, at prefix: the model itself
 * ("spec") or one of its upstreams ("spec.upstreams[i]"), which take the
 * same three fields.
 */
static void collect_deployment(const json_t *part, const char *prefix, secret_refs_t *out)
{
    refs_add(out, json_object_get(part, "apiKeySecretRef"), "%s.apiKeySecretRef", prefix);
    refs_add(out, json_object_get(part, "credentialsSecretRef"), "%s.credentialsSecretRef", prefix);
    const char *param;
    const json_t *value;
    json_object_foreach((json_t *)json_object_get(part, "litellmParams"), param, value)
        refs_add(out, json_object_get(value, "secretKeyRef"), "%s.litellmParams.%.200s.secretKeyRef", prefix, param);
}

/* The Secrets a LanguageModel names for the gateway (keyrules.h). */
static void collect_model(const json_t *obj, secret_refs_t *out)
{
    const json_t *spec = json_object_get(obj, "spec"), *upstream;
    collect_deployment(spec, "spec", out);
    size_t i;
    json_array_foreach(json_object_get(spec, "upstreams"), i, upstream) {
        char prefix[48];
        snprintf(prefix, sizeof(prefix), "spec.upstreams[%zu]", i);
        collect_deployment(upstream, prefix, out);
    }
}

/* store filter: keeps the objects (read with collect) that name one of mine's Secrets. */
typedef struct shares_ctx {
    collect_fn collect;
    const secret_refs_t *mine;
} shares_ctx_t;

static int shares_secret(const json_t *obj, void *ctx)
{
    const shares_ctx_t *c = ctx;
    secret_refs_t theirs = {0};
    c->collect(obj, &theirs);
    int shared = 0;
    for (size_t i = 0; i < theirs.n && !shared; i++)
        shared = refs_find(c->mine, theirs.items[i].secret) != NULL;
    refs_free(&theirs);
    return shared;
}

/* The other side of the rule: one resource and how to read its objects' Secrets. */
typedef struct side {
    const char *resource;
    const char *kind;
    const char *holders; /* whose rule it is: "agents" or "tools" */
    collect_fn collect;
    json_t *items;       /* owned: the objects sharing a Secret with mine */
} side_t;

/* Lists into s->items the objects of s sharing a Secret with mine. 0, or -1 with a fail-closed cause. */
static int side_list(const rule_input_t *in, side_t *s, const secret_refs_t *mine, lo_err_t *err)
{
    shares_ctx_t ctx = {.collect = s->collect, .mine = mine};
    lo_err_t e = {0};
    int rc = store_txn_list(in->txn, s->resource, in->ns, shares_secret, &ctx, &s->items, &e);
    if (rc == STORE_OK) {
        lo_err_clear(&e);
        return 0;
    }
    char msg[LO_ERR_MESSAGE_MAX];
    snprintf(msg, sizeof(msg), "Internal error: cannot read the %s of namespace \"%s\" to check Secrets: %.400s",
             s->resource, in->ns, e.message);
    lo_err_add_cause(err, "InternalError", msg, mine->items[0].field);
    lo_err_clear(&e);
    return -1;
}

/*
 * The first object of s->items naming secret: *holder its name, *at (owned,
 * may be NULL) where it names it. Returns 1 when found.
 */
static int side_find(const side_t *s, const char *secret, const char **holder, char **at)
{
    size_t i;
    const json_t *obj;
    json_array_foreach(s->items, i, obj) {
        secret_refs_t theirs = {0};
        s->collect(obj, &theirs);
        const secret_ref_t *hit = refs_find(&theirs, secret);
        if (hit != NULL) {
            *holder = json_string_value(json_object_get(json_object_get(obj, "metadata"), "name"));
            if (*holder == NULL)
                *holder = "";
            if (at)
                *at = lo_strdup(hit->field);
        }
        refs_free(&theirs);
        if (hit != NULL)
            return 1;
    }
    return 0;
}

/* Writing an agent or tool: each of its references to a model's Secret is a cause. */
static int check_workload(const rule_input_t *in, const workload_t *w, const secret_refs_t *mine, lo_err_t *err)
{
    side_t models = {.resource = MODELS_RESOURCE, .kind = "LanguageModel", .collect = collect_model};
    if (side_list(in, &models, mine, err) < 0)
        return 1;
    int causes = 0;
    for (size_t i = 0; i < mine->n; i++) {
        const char *model;
        if (!side_find(&models, mine->items[i].secret, &model, NULL))
            continue;
        char why[WHY_MAX];
        snprintf(why, sizeof(why),
                 "Secret \"%.253s\" holds the key of LanguageModel \"%.253s\"; %s never hold API keys",
                 mine->items[i].secret, model, w->holders);
        rule_forbidden(err, mine->items[i].field, why);
        causes++;
    }
    json_decref(models.items);
    return causes;
}

/* The cause for one of a model's references, if an agent (first) or tool reads the Secret: 1 when added. */
static int model_ref_cause(const side_t *sides, const secret_ref_t *ref, lo_err_t *err)
{
    for (size_t s = 0; s < NWORKLOADS; s++) {
        const char *holder;
        char *at = NULL;
        if (!side_find(&sides[s], ref->secret, &holder, &at))
            continue;
        char why[WHY_MAX];
        snprintf(why, sizeof(why),
                 "Secret \"%.253s\" is referenced by %s \"%.253s\" (%.300s); %s never hold API keys: give the model a "
                 "Secret of its own",
                 ref->secret, sides[s].kind, holder, at, sides[s].holders);
        rule_forbidden(err, ref->field, why);
        free(at);
        return 1;
    }
    return 0;
}

/* Writing a model: each of its references to a Secret an agent or tool reads is a cause. */
static int check_model(const rule_input_t *in, const secret_refs_t *mine, lo_err_t *err)
{
    side_t sides[NWORKLOADS];
    int failed = 0, causes = 0;
    for (size_t s = 0; s < NWORKLOADS; s++)
        sides[s] = (side_t){.resource = workloads[s].resource, .kind = workloads[s].kind,
                            .holders = workloads[s].holders, .collect = collect_workload};
    for (size_t s = 0; s < NWORKLOADS && !failed; s++)
        failed = side_list(in, &sides[s], mine, err) < 0;
    for (size_t i = 0; !failed && i < mine->n; i++)
        causes += model_ref_cause(sides, &mine->items[i], err);
    for (size_t s = 0; s < NWORKLOADS; s++)
        json_decref(sides[s].items);
    return failed ? 1 : causes;
}

int keyrules_model_secrets(const rule_input_t *in, lo_err_t *err)
{
    if (in->txn == NULL)
        return 0; /* no store to compare against (admission_rule.h: field-only passes) */
    const workload_t *w = workload_of(in->k);
    int is_model = strcmp(in->k->kind, "LanguageModel") == 0;
    if (w == NULL && !is_model)
        return 0;
    secret_refs_t mine = {0};
    (is_model ? collect_model : collect_workload)(in->obj, &mine);
    int causes = 0;
    if (mine.n > 0)
        causes = is_model ? check_model(in, &mine, err) : check_workload(in, w, &mine, err);
    refs_free(&mine);
    return causes;
}
