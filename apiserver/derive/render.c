/*
 * render.c - the derived config of a LanguageCluster's gateway and of a
 * LanguageAgent, as pure functions of the stored objects (render.h).
 *
 * Determinism: only objects of the namespace being rendered are read (an
 * object with another metadata.namespace is ignored); models are sorted by
 * metadata.name; an agent's models and tools keep the agent's own order;
 * params keys are sorted (recursively); every other object is built key by
 * key in a fixed order. The hash is sha256(yaml, "\n", env as compact JSON
 * with sorted keys): it changes with everything the workload sees, and only
 * with that (labels, status, unrelated objects and input order do not reach
 * the output).
 *
 * Gateway decisions (the LiteLLM proxy config.yaml):
 *  - model_name is the LanguageModel's metadata.name; litellm_params.model is
 *    "<prefix>/<spec.modelName>" with the prefix of provider_prefixes (or
 *    litellmProvider verbatim). Provider fields (api_version, aws_region_name,
 *    vertex_project, vertex_location) are written only for the provider they
 *    belong to, chosen by the prefix, so litellmProvider "bedrock" gets its
 *    region too.
 *  - timeout: the Go duration in seconds, an integer when whole (300), a real
 *    otherwise (0.5). A duration that does not parse or is not positive is
 *    left out (LiteLLM's default applies); admission keeps such values out.
 *  - rpm / tpm sit inside litellm_params (reference §8.6).
 *  - params are merged last, keys sorted, overriding derived values, except
 *    the keys this renderer fills from Secrets or from the provider (model,
 *    api_key and the credential params below) and any value holding an
 *    "os.environ/" string: those are dropped, so that params can neither
 *    replace a key reference nor read another model's variable.
 *  - apiKeySecretRef -> api_key: os.environ/LANGOP_API_KEY_<NAME> and an env
 *    entry {name, valueFrom: {secretKeyRef: {name, key}}}.
 *  - credentialsSecretRef: one gateway serves every model of the namespace,
 *    so copying a whole Secret into its environment (envFrom) would make two
 *    Bedrock models with different Secrets fight over AWS_ACCESS_KEY_ID, and
 *    the result has no place for an envFrom source. Instead each credential
 *    key that LiteLLM accepts as a parameter for the model's provider
 *    (credential_params) becomes a per-model variable
 *    LANGOP_<SECRET_KEY>_<NAME> with an *optional* secretKeyRef, and the
 *    parameter reads it through os.environ/. A key the Secret does not hold
 *    leaves the variable unset, which LiteLLM reads as "not given". Keys of
 *    other names, and credentialsSecretRef on providers without an entry in
 *    credential_params, reach nothing.
 *  - openai-compatible without apiKeySecretRef: LiteLLM calls it through
 *    the OpenAI client, which refuses to send a request without some key
 *    (LiteLLM docs, "OpenAI-Compatible Endpoints"). The renderer writes the
 *    fixed, non-secret placeholder RENDER_NO_KEY ("no-key"); servers that
 *    check no key ignore the bearer header. (Admission makes sure such a
 *    model has an endpoint, so the placeholder never reaches api.openai.com.)
 *  - provider custom: litellm_params is spec.litellmParams as the user gave
 *    it (keys sorted), except that a top-level value {secretKeyRef: {name,
 *    key}} becomes "os.environ/LANGOP_<PARAM>_<NAME>" with that variable's
 *    secretKeyRef in env; then api_base from endpoint, api_key from
 *    apiKeySecretRef, timeout, rpm and tpm, each only where litellmParams
 *    does not set it. No placeholder key: the user wrote the whole entry.
 *  - spec.upstreams: each item is one more model_list entry with the same
 *    model_name (LiteLLM's load balancing across deployments), rendered from
 *    the model's spec with the item's fields in place of the model's
 *    (litellmParams merged key by key). A Secret reference the item sets
 *    itself is read from a variable of its own, named as the model's with
 *    "<NAME>__<UPSTREAM>" for "<NAME>"; an inherited one reuses the model's
 *    variable. fallbacks and params belong to the model, not its items.
 *  - router_settings.routing_strategy is the LanguageCluster's
 *    spec.gateway.routingStrategy when set (LiteLLM's default otherwise).
 *  - Two models whose variables would share a name (names differing only by
 *    '-' versus '.') would read each other's key: the one that sorts later
 *    is left out of model_list and reported (reason EnvNameClash); served
 *    lists the model_names that remain.
 *  - spec.fallbacks -> router_settings.fallbacks [{name: [targets]}]; a
 *    target not in model_list is left out and reported (FallbackNotFound), a
 *    model naming itself likewise (InvalidFallback), with referencedBy
 *    naming the model that lists it. router_settings appears only when
 *    some fallback remains or a routing strategy is set.
 *  - litellm_settings: {drop_params: true} always, so an agent's
 *    OpenAI-style request does not fail on a provider that lacks a
 *    parameter. No general_settings: nothing in it is needed.
 *
 * Agent decisions (/etc/agent/config.yaml):
 *  - persona: a LanguagePersona that exists is used (its phase is not
 *    consulted, so the config does not flip with the reconciler's status);
 *    empty persona fields are left out.
 *  - tools: only enabled entries; a disabled tool is neither written nor
 *    reported, even if it does not exist.
 *  - models / tools keep the agent's order; a repeated name is written once.
 *    unresolved lists missing models, then tools, then the persona.
 *  - env, in this order: MODEL_ENDPOINT, LLM_MODEL, MCP_SERVERS, AGENT_NAME,
 *    AGENT_NAMESPACE, AGENT_UID, AGENT_CLUSTER_NAME, always all seven (empty
 *    values allowed); then spec.deployment.env in its order, each entry
 *    copied as given (name, and value and/or valueFrom): exactly the env of
 *    the agent container. A user entry naming one of the seven is left
 *    out, so the server's values always hold: admission refuses such
 *    entries (keyrules.h), this covers objects stored before it did.
 */
#include "langop/derive/render.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "langop/core/codec.h"

#define RENDER_NO_KEY "no-key"

/* ------------------------------------------------------------------ */
/* Small helpers                                                       */
/* ------------------------------------------------------------------ */

/* obj.a (or obj.a.b when b is set) as a string, or NULL. Borrowed. */
static const char *str_at(const json_t *obj, const char *a, const char *b)
{
    const json_t *v = json_object_get(obj, a);
    if (b != NULL)
        v = json_object_get(v, b);
    return json_string_value(v);
}

static int nonempty(const char *s)
{
    return s != NULL && *s != '\0';
}

/* Sets obj[key] = string s when s is non-empty. */
static void set_str_if(json_t *obj, const char *key, const char *s)
{
    if (nonempty(s))
        json_object_set_new(obj, key, json_string(s));
}

static json_t *env_value(const char *name, const char *value)
{
    return json_pack("{s:s, s:s}", "name", name, "value", value);
}

static json_t *env_secret(const char *name, const char *secret, const char *key, int optional)
{
    json_t *ref = json_pack("{s:s, s:s}", "name", secret, "key", key);
    if (optional)
        json_object_set_new(ref, "optional", json_true());
    return json_pack("{s:s, s:{s:o}}", "name", name, "valueFrom", "secretKeyRef", ref);
}

static void add_unresolved(json_t *list, const char *kind, const char *name, const char *reason, char *message)
{
    json_array_append_new(list, json_pack("{s:s, s:s, s:s, s:s}", "kind", kind, "name", name, "reason", reason,
                                          "message", message));
    free(message);
}

/* Fills r->hash from r->yaml and r->env. */
static void result_hash(render_result_t *r)
{
    char *env = json_dumps(r->env, JSON_COMPACT | JSON_SORT_KEYS);
    if (env == NULL)
        lo_fatal("render: cannot encode env");
    char *all = lo_sprintf("%s\n%s", r->yaml, env);
    lo_sha256_hex(all, strlen(all), r->hash);
    free(all);
    free(env);
}

/* Moves yaml/env/unresolved into out and hashes; -1 if the YAML emitter failed. */
static int result_finish(json_t *doc, json_t *env, json_t *unresolved, render_result_t *out, lo_err_t *err)
{
    char *yaml = codec_encode_yaml(doc);
    if (yaml == NULL) {
        lo_err_set(err, 500, "InternalError", "render: cannot encode the config as YAML");
        json_decref(env);
        json_decref(unresolved);
        return -1;
    }
    out->yaml = yaml;
    out->env = env;
    out->unresolved = unresolved;
    result_hash(out);
    return 0;
}

void render_result_free(render_result_t *r)
{
    if (r == NULL)
        return;
    free(r->yaml);
    json_decref(r->env);
    json_decref(r->unresolved);
    json_decref(r->served);
    r->yaml = NULL;
    r->env = r->unresolved = r->served = NULL;
    r->hash[0] = '\0';
}

char *render_gateway_endpoint(const char *ns, const char *cluster_domain)
{
    return lo_sprintf("http://gateway.%s.svc.%s:%d", ns, cluster_domain, RENDER_GATEWAY_PORT);
}

/* prefix + name upper-cased, [^A-Z0-9] -> '_'. Caller frees. */
static char *env_name(const char *prefix, const char *name)
{
    size_t plen = strlen(prefix), nlen = strlen(name);
    char *out = lo_malloc(plen + nlen + 1);
    memcpy(out, prefix, plen);
    for (size_t i = 0; i < nlen; i++) {
        char c = name[i];
        if (c >= 'a' && c <= 'z')
            c = (char)(c - 'a' + 'A');
        else if (!((c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')))
            c = '_';
        out[plen + i] = c;
    }
    out[plen + nlen] = '\0';
    return out;
}

char *render_key_env_name(const char *model_name)
{
    return env_name("LANGOP_API_KEY_", model_name);
}

/* ------------------------------------------------------------------ */
/* Durations                                                           */
/* ------------------------------------------------------------------ */

static const struct {
    const char *unit;
    int64_t ns;
} duration_units[] = {
    {"ns", 1},
    {"us", 1000},
    {"\xc2\xb5s", 1000}, /* U+00B5 micro sign */
    {"\xce\xbcs", 1000}, /* U+03BC greek mu */
    {"ms", 1000000},
    {"s", 1000000000LL},
    {"m", 60LL * 1000000000LL},
    {"h", 3600LL * 1000000000LL},
};

/* Matches the longest unit at s; returns its length and sets *unit_ns, or 0. */
static size_t duration_unit(const char *s, int64_t *unit_ns)
{
    size_t best = 0;
    for (size_t i = 0; i < sizeof(duration_units) / sizeof(duration_units[0]); i++) {
        size_t len = strlen(duration_units[i].unit);
        if (len > best && strncmp(s, duration_units[i].unit, len) == 0) {
            best = len;
            *unit_ns = duration_units[i].ns;
        }
    }
    return best;
}

/*
 * Go's time.ParseDuration without sign: one or more "<digits>[.<digits>]<unit>"
 * ("5m", "1h30m", "1.5s", "500ms"), or "0". Returns 0 and *ns, or -1.
 * Values beyond ~290 years overflow and are refused.
 */
static int parse_duration(const char *s, int64_t *ns)
{
    int64_t total = 0;
    if (strcmp(s, "0") == 0) {
        *ns = 0;
        return 0;
    }
    if (*s == '\0')
        return -1;
    while (*s != '\0') {
        int64_t whole = 0, unit = 0;
        double frac = 0, scale = 1;
        int digits = 0;
        for (; *s >= '0' && *s <= '9'; s++, digits++) {
            if (whole > (INT64_MAX - 9) / 10)
                return -1;
            whole = whole * 10 + (*s - '0');
        }
        if (*s == '.')
            for (s++; *s >= '0' && *s <= '9'; s++, digits++)
                frac += (*s - '0') * (scale /= 10);
        size_t ulen = digits > 0 ? duration_unit(s, &unit) : 0;
        if (ulen == 0)
            return -1;
        s += ulen;
        if (whole > (INT64_MAX - total) / unit - 1)
            return -1;
        total += whole * unit + (int64_t)(frac * (double)unit + 0.5);
    }
    *ns = total;
    return 0;
}

/* LiteLLM timeout in seconds (new), or NULL when absent, malformed or not positive. */
static json_t *timeout_seconds(const char *text)
{
    int64_t ns;
    if (text == NULL || parse_duration(text, &ns) < 0 || ns <= 0)
        return NULL;
    if (ns % 1000000000LL == 0)
        return json_integer(ns / 1000000000LL);
    return json_real((double)ns / 1e9);
}

/* ------------------------------------------------------------------ */
/* Gateway                                                             */
/* ------------------------------------------------------------------ */

/* spec.provider -> LiteLLM prefix. */
static const struct {
    const char *provider;
    const char *prefix;
    int no_key_placeholder; /* OpenAI client: some key is required */
} provider_prefixes[] = {
    {"openai", "openai", 0},
    {"anthropic", "anthropic", 0},
    {"azure", "azure", 0},
    {"bedrock", "bedrock", 0},
    {"vertex", "vertex_ai", 0},
    {"gemini", "gemini", 0},
    {"openai-compatible", "openai", 1},
};

/* Provider fields of spec, by LiteLLM prefix. */
static const struct {
    const char *prefix;
    const char *field;
    const char *param;
} provider_fields[] = {
    {"azure", "apiVersion", "api_version"},
    {"bedrock", "region", "aws_region_name"},
    {"vertex_ai", "project", "vertex_project"},
    {"vertex_ai", "location", "vertex_location"},
};

/* Keys of a credentialsSecretRef Secret that LiteLLM takes as parameters, by prefix. */
static const struct {
    const char *prefix;
    const char *secret_key;
    const char *param;
} credential_params[] = {
    {"bedrock", "AWS_ACCESS_KEY_ID", "aws_access_key_id"},
    {"bedrock", "AWS_SECRET_ACCESS_KEY", "aws_secret_access_key"},
    {"bedrock", "AWS_SESSION_TOKEN", "aws_session_token"},
    {"bedrock", "AWS_BEARER_TOKEN_BEDROCK", "api_key"}, /* apiKeySecretRef wins */
    {"vertex_ai", "VERTEX_CREDENTIALS", "vertex_credentials"},
    {"azure", "AZURE_TENANT_ID", "tenant_id"},
    {"azure", "AZURE_CLIENT_ID", "client_id"},
    {"azure", "AZURE_CLIENT_SECRET", "client_secret"},
};

#define N_OF(a) (sizeof(a) / sizeof((a)[0]))

/* params keys a model may not override (see the file comment). */
static int param_protected(const char *key)
{
    if (strcmp(key, "model") == 0 || strcmp(key, "api_key") == 0)
        return 1;
    for (size_t i = 0; i < N_OF(credential_params); i++)
        if (strcmp(key, credential_params[i].param) == 0)
            return 1;
    return 0;
}

/* 1 when v holds a string starting with "os.environ/" anywhere inside. */
static int refers_to_environ(const json_t *v)
{
    const char *k;
    size_t i;
    json_t *child;
    if (json_is_string(v))
        return strncmp(json_string_value(v), "os.environ/", 11) == 0;
    if (json_is_array(v)) {
        json_array_foreach(v, i, child) if (refers_to_environ(child)) return 1;
    } else if (json_is_object(v)) {
        json_object_foreach((json_t *)v, k, child) if (refers_to_environ(child)) return 1;
    }
    return 0;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Deep copy of v with every object's keys in sorted order. New. */
static json_t *sorted_copy(const json_t *v)
{
    if (json_is_array(v)) {
        json_t *out = json_array();
        size_t i;
        json_t *child;
        json_array_foreach(v, i, child) json_array_append_new(out, sorted_copy(child));
        return out;
    }
    if (!json_is_object(v))
        return json_deep_copy(v);
    size_t n = json_object_size(v), i = 0;
    const char **keys = lo_calloc(n ? n : 1, sizeof(*keys));
    const char *k;
    json_t *child;
    json_object_foreach((json_t *)v, k, child) keys[i++] = k;
    qsort(keys, n, sizeof(*keys), cmp_str);
    json_t *out = json_object();
    for (i = 0; i < n; i++)
        json_object_set_new(out, keys[i], sorted_copy(json_object_get(v, keys[i])));
    free(keys);
    return out;
}

/* The LiteLLM prefix of a named provider's or a litellmProvider model's spec, or NULL. Borrowed. */
static const char *model_prefix(const json_t *spec, int *no_key_placeholder)
{
    const char *lp = str_at(spec, "litellmProvider", NULL), *p = str_at(spec, "provider", NULL);
    *no_key_placeholder = 0;
    if (nonempty(lp))
        return lp;
    for (size_t i = 0; p != NULL && i < N_OF(provider_prefixes); i++)
        if (strcmp(p, provider_prefixes[i].provider) == 0) {
            *no_key_placeholder = provider_prefixes[i].no_key_placeholder;
            return provider_prefixes[i].prefix;
        }
    return NULL;
}

static int is_custom(const json_t *spec)
{
    const char *p = str_at(spec, "provider", NULL);
    return p != NULL && strcmp(p, "custom") == 0;
}

/* One model as seen by the gateway: its deployments and the variables they read. */
typedef struct gw_model {
    const json_t *obj; /* borrowed */
    const char *name;  /* borrowed from obj */
    json_t *entries;   /* new: the litellm_params of each deployment, the model's own first */
    json_t *env;       /* new: the env entries they read, each name once */
} gw_model_t;

/* One deployment being built: its spec (the model's, or an upstream's view of it) and whose variables it names. */
typedef struct gw_entry {
    gw_model_t *m;
    const json_t *spec;    /* borrowed */
    const json_t *up;      /* the upstream (borrowed), or NULL for the model's own deployment */
    json_t *params;        /* new: litellm_params */
    int lean;              /* only what decides the env (the verdict): Secret references, nothing else */
} gw_entry_t;

/*
 * The stem of the variables a deployment reads for field: the model's name,
 * or "<model>__<upstream>" when the upstream sets field itself (an inherited
 * Secret reference reuses the model's variable). Caller frees.
 */
static char *var_owner(const gw_entry_t *e, const char *field)
{
    const char *up = str_at(e->up, "name", NULL);
    if (e->up != NULL && nonempty(up) && json_object_get(e->up, field) != NULL)
        return lo_sprintf("%s__%s", e->m->name, up);
    return lo_strdup(e->m->name);
}

static int env_has(const json_t *env, const char *name)
{
    size_t i;
    const json_t *v;
    json_array_foreach(env, i, v) if (strcmp(str_at(v, "name", NULL), name) == 0) return 1;
    return 0;
}

/* Adds "param: os.environ/VAR" to the entry and the matching secretKeyRef to the model's env (once). */
static void add_secret_param(gw_entry_t *e, const char *param, char *var, const char *secret, const char *key,
                             int optional)
{
    char *ref = lo_sprintf("os.environ/%s", var);
    json_object_set_new(e->params, param, json_string(ref));
    if (!env_has(e->m->env, var))
        json_array_append_new(e->m->env, env_secret(var, secret, key, optional));
    free(ref);
    free(var);
}

/* timeout, rpm and tpm from the spec, where the params do not give them already. */
static void add_limits(json_t *params, const json_t *spec)
{
    json_t *timeout = json_object_get(params, "timeout") ? NULL : timeout_seconds(str_at(spec, "timeout", NULL));
    if (timeout != NULL)
        json_object_set_new(params, "timeout", timeout);
    const json_t *limits = json_object_get(spec, "rateLimits");
    if (json_is_integer(json_object_get(limits, "requestsPerMinute")) && !json_object_get(params, "rpm"))
        json_object_set(params, "rpm", json_object_get(limits, "requestsPerMinute"));
    if (json_is_integer(json_object_get(limits, "tokensPerMinute")) && !json_object_get(params, "tpm"))
        json_object_set(params, "tpm", json_object_get(limits, "tokensPerMinute"));
}

/* apiKeySecretRef -> api_key: os.environ/LANGOP_API_KEY_<OWNER>, unless the entry has an api_key already. */
static void add_api_key(gw_entry_t *e)
{
    const char *secret = str_at(e->spec, "apiKeySecretRef", "name");
    if (!nonempty(secret) || json_object_get(e->params, "api_key") != NULL)
        return;
    const char *key = str_at(e->spec, "apiKeySecretRef", "key");
    char *owner = var_owner(e, "apiKeySecretRef");
    add_secret_param(e, "api_key", render_key_env_name(owner), secret, nonempty(key) ? key : "api-key", 0);
    free(owner);
}

/* A named provider's deployment: the prefix, the provider fields, the Secrets, then params. */
static void entry_build_provider(gw_entry_t *e, const char *prefix, int no_key_placeholder)
{
    const json_t *spec = e->spec;
    const char *cred_secret = str_at(spec, "credentialsSecretRef", "name");
    if (!e->lean) { /* none of these is a Secret reference */
        char *model = lo_sprintf("%s/%s", prefix, str_at(spec, "modelName", NULL));
        json_object_set_new(e->params, "model", json_string(model));
        free(model);
        set_str_if(e->params, "api_base", str_at(spec, "endpoint", NULL));
        for (size_t i = 0; i < N_OF(provider_fields); i++)
            if (strcmp(prefix, provider_fields[i].prefix) == 0)
                set_str_if(e->params, provider_fields[i].param, str_at(spec, provider_fields[i].field, NULL));
    }

    add_api_key(e);
    char *owner = var_owner(e, "credentialsSecretRef");
    for (size_t i = 0; nonempty(cred_secret) && i < N_OF(credential_params); i++) {
        if (strcmp(prefix, credential_params[i].prefix) != 0 ||
            json_object_get(e->params, credential_params[i].param) != NULL)
            continue;
        char *var_prefix = lo_sprintf("LANGOP_%s_", credential_params[i].secret_key);
        add_secret_param(e, credential_params[i].param, env_name(var_prefix, owner), cred_secret,
                         credential_params[i].secret_key, 1);
        free(var_prefix);
    }
    free(owner);
    if (e->lean)
        return;
    if (no_key_placeholder && json_object_get(e->params, "api_key") == NULL)
        json_object_set_new(e->params, "api_key", json_string(RENDER_NO_KEY));
    add_limits(e->params, spec);

    json_t *extra = sorted_copy(json_object_get(spec, "params"));
    const char *k;
    json_t *v;
    json_object_foreach(extra, k, v)
    {
        if (!param_protected(k) && !refers_to_environ(v))
            json_object_set(e->params, k, v);
    }
    json_decref(extra);
}

/* {secretKeyRef: {name, key}}: the reference's Secret and key (borrowed), or 0. */
static int secret_ref_of(const json_t *v, const char **secret, const char **key)
{
    const json_t *ref = json_object_get(v, "secretKeyRef");
    if (!json_is_object(v) || json_object_size(v) != 1 || !json_is_object(ref))
        return 0;
    *secret = str_at(ref, "name", NULL);
    *key = str_at(ref, "key", NULL);
    return nonempty(*secret) && nonempty(*key);
}

/*
 * A custom deployment: spec.litellmParams as given (keys sorted), each
 * top-level {secretKeyRef} value read from LANGOP_<PARAM>_<OWNER>; then
 * endpoint, apiKeySecretRef, timeout and rate limits where the params do not
 * set them. Admission refuses literal credentials and os.environ/ strings;
 * one that got in anyway (an old object) is dropped, as params' are.
 */
static void entry_build_custom(gw_entry_t *e)
{
    json_t *given = sorted_copy(json_object_get(e->spec, "litellmParams"));
    const char *k;
    json_t *v;
    json_object_foreach(given, k, v)
    {
        const char *secret, *key;
        if (secret_ref_of(v, &secret, &key)) {
            char *prefix = env_name("LANGOP_", k);
            char *with_sep = lo_sprintf("%s_", prefix);
            /* a parameter the upstream gives itself has its own variable; an inherited one reuses the model's */
            const json_t *up_params = json_object_get(e->up, "litellmParams");
            char *owner = json_object_get(up_params, k) ? var_owner(e, "litellmParams") : lo_strdup(e->m->name);
            add_secret_param(e, k, env_name(with_sep, owner), secret, key, 0);
            free(owner);
            free(with_sep);
            free(prefix);
        } else if (!e->lean && !refers_to_environ(v) && strcmp(k, "api_key") != 0) {
            json_object_set(e->params, k, v);
        }
    }
    json_decref(given);
    if (e->lean) {
        add_api_key(e);
        return;
    }
    if (json_object_get(e->params, "api_base") == NULL)
        set_str_if(e->params, "api_base", str_at(e->spec, "endpoint", NULL));
    add_api_key(e);
    add_limits(e->params, e->spec);
}

/* The params of one deployment of m (new): spec is the model's, or an upstream's view of it. */
static json_t *entry_params(gw_model_t *m, const json_t *spec, const json_t *up, int lean)
{
    gw_entry_t e = {m, spec, up, json_object(), lean};
    if (is_custom(spec)) {
        entry_build_custom(&e);
    } else {
        int placeholder = 0;
        const char *prefix = model_prefix(spec, &placeholder);
        entry_build_provider(&e, prefix, placeholder);
    }
    return e.params;
}

/* The fields an upstream may set; each replaces the model's (litellmParams merge key by key). */
static const char *const upstream_fields[] = {
    "endpoint", "apiKeySecretRef", "credentialsSecretRef", "apiVersion", "region", "project", "location",
    "rateLimits", NULL,
};

/* The model's spec as upstream up sees it (new). */
static json_t *upstream_view(const json_t *spec, const json_t *up)
{
    json_t *view = json_deep_copy(spec);
    json_object_del(view, "upstreams");
    for (const char *const *f = upstream_fields; *f; f++) {
        const json_t *v = json_object_get(up, *f);
        if (v != NULL)
            json_object_set_new(view, *f, json_deep_copy(v));
    }
    const json_t *lp = json_object_get(up, "litellmParams");
    if (json_is_object(lp)) {
        json_t *merged = json_object_get(view, "litellmParams");
        if (!json_is_object(merged)) {
            merged = json_object();
            json_object_set_new(view, "litellmParams", merged);
        }
        json_object_update(merged, (json_t *)lp);
    }
    /* what the upstream sets wins over what it would inherit under custom's other name for it */
    json_t *params = json_object_get(view, "litellmParams");
    if (json_object_get(up, "endpoint") && !json_object_get(lp, "api_base"))
        json_object_del(params, "api_base");
    if (json_object_get(up, "apiKeySecretRef") && !json_object_get(lp, "api_key"))
        json_object_del(params, "api_key");
    return view;
}

/* Builds m->entries and m->env: the model's own deployment, then one per spec.upstreams item, in order. */
/* Whether spec refers to a Secret anywhere a variable could come from (so its deployments read some). */
static int refers_to_secrets(const json_t *spec)
{
    return json_object_get(spec, "apiKeySecretRef") || json_object_get(spec, "credentialsSecretRef") ||
           json_object_get(spec, "litellmParams") || json_array_size(json_object_get(spec, "upstreams")) > 0;
}

static void gw_model_build(gw_model_t *m, int lean)
{
    const json_t *spec = json_object_get(m->obj, "spec");
    m->entries = json_array();
    m->env = json_array();
    if (lean && !refers_to_secrets(spec)) { /* one deployment, no variable: all the verdict reads */
        json_array_append_new(m->entries, json_null());
        return;
    }
    json_array_append_new(m->entries, entry_params(m, spec, NULL, lean));
    size_t i;
    const json_t *up;
    json_array_foreach(json_object_get(spec, "upstreams"), i, up)
    {
        if (!nonempty(str_at(up, "name", NULL)))
            continue;
        json_t *view = upstream_view(spec, up);
        json_array_append_new(m->entries, entry_params(m, view, up, lean));
        json_decref(view);
    }
}

static int cmp_gw_model(const void *a, const void *b)
{
    const gw_model_t *x = a, *y = b;
    int c = strcmp(x->name, y->name);
    if (c != 0)
        return c;
    /* names are unique in a namespace; a total order keeps even bad input deterministic */
    char *sx = json_dumps(x->obj, JSON_COMPACT | JSON_SORT_KEYS);
    char *sy = json_dumps(y->obj, JSON_COMPACT | JSON_SORT_KEYS);
    c = strcmp(sx ? sx : "", sy ? sy : "");
    free(sx);
    free(sy);
    return c;
}

/* Whether spec names its provider well enough to render: a known provider, or custom's <prefix>/<model>. */
static int spec_renderable(const json_t *spec)
{
    int placeholder;
    if (!is_custom(spec))
        return nonempty(str_at(spec, "modelName", NULL)) && model_prefix(spec, &placeholder) != NULL;
    const char *model = str_at(spec, "litellmParams", "model");
    const char *slash = model ? strchr(model, '/') : NULL;
    return slash != NULL && slash != model && slash[1] != '\0';
}

/* Checks one element of the models array; 1 if it belongs to namespace ns, 0 if not, -1 if malformed. */
static int gw_model_check(const json_t *obj, const char *ns, lo_err_t *err)
{
    const char *kind = str_at(obj, "kind", NULL), *name = str_at(obj, "metadata", "name");
    const char *obj_ns = str_at(obj, "metadata", "namespace");
    const json_t *spec = json_object_get(obj, "spec");
    if (!json_is_object(obj) || (kind != NULL && strcmp(kind, "LanguageModel") != 0) || !nonempty(name) ||
        !json_is_object(spec) || !spec_renderable(spec)) {
        lo_err_set(err, 500, "InternalError", "render: %s is not a LanguageModel with a provider and a modelName",
                   nonempty(name) ? name : "an item of the model list");
        return -1;
    }
    return obj_ns == NULL || strcmp(obj_ns, ns) != 0 ? 0 : 1;
}

/*
 * Admits m into the gateway unless one of its variables is already taken
 * (used: var -> model name). Returns 1 if admitted.
 */
static int gw_admit(const gw_model_t *m, json_t *used, json_t *unresolved)
{
    size_t i;
    json_t *e;
    json_array_foreach(m->env, i, e)
    {
        const char *var = str_at(e, "name", NULL);
        const char *owner = json_string_value(json_object_get(used, var));
        if (owner != NULL) {
            add_unresolved(unresolved, "LanguageModel", m->name, "EnvNameClash",
                           lo_sprintf("LanguageModel %s is left out of the gateway: its variable %s is already "
                                      "used by LanguageModel %s",
                                      m->name, var, owner));
            return 0;
        }
    }
    json_array_foreach(m->env, i, e) json_object_set_new(used, str_at(e, "name", NULL), json_string(m->name));
    return 1;
}

/* An unresolved fallback of model `from`: the entry names the target, and the model that lists it. */
static void add_fallback_miss(json_t *unresolved, const char *target, const char *from, const char *reason,
                              char *message)
{
    add_unresolved(unresolved, "LanguageModel", target, reason, message);
    json_object_set_new(json_array_get(unresolved, json_array_size(unresolved) - 1), "referencedBy",
                        json_string(from));
}

/* router_settings.fallbacks entry of m, or NULL; misses go to unresolved. New. */
static json_t *gw_fallbacks(const gw_model_t *m, const json_t *served, const char *ns, json_t *unresolved)
{
    const json_t *list = json_object_get(json_object_get(m->obj, "spec"), "fallbacks");
    json_t *targets = json_array();
    size_t i;
    json_t *t;
    json_array_foreach(list, i, t)
    {
        const char *name = json_string_value(t);
        if (name == NULL)
            continue;
        if (strcmp(name, m->name) == 0)
            add_fallback_miss(unresolved, name, m->name, "InvalidFallback",
                              lo_sprintf("LanguageModel %s lists itself as a fallback", m->name));
        else if (json_object_get(served, name) == NULL)
            add_fallback_miss(unresolved, name, m->name, "FallbackNotFound",
                              lo_sprintf("fallback %s of LanguageModel %s is not a model of the gateway of "
                                         "namespace %s",
                                         name, m->name, ns));
        else
            json_array_append(targets, t);
    }
    if (json_array_size(targets) == 0) {
        json_decref(targets);
        return NULL;
    }
    return json_pack("{s:o}", m->name, targets);
}

/* router_settings (new), or NULL when nothing in it differs from LiteLLM's defaults. */
static json_t *gw_router_settings(const json_t *cluster, json_t *fallbacks)
{
    json_t *rs = json_object();
    const char *strategy = str_at(json_object_get(json_object_get(cluster, "spec"), "gateway"), "routingStrategy", NULL);
    if (json_array_size(fallbacks) > 0)
        json_object_set(rs, "fallbacks", fallbacks);
    set_str_if(rs, "routing_strategy", strategy);
    if (json_object_size(rs) == 0) {
        json_decref(rs);
        return NULL;
    }
    return rs;
}

/* The gateway of ns; with config 0 only what it serves and leaves out (no YAML, env or hash). */
/* The message of obj's RENDER_COND_SECRETS condition when it is False (borrowed), else NULL. */
static const char *secrets_missing(const json_t *obj)
{
    size_t i;
    const json_t *c;
    json_array_foreach(json_object_get(json_object_get(obj, "status"), "conditions"), i, c) {
        const char *type = str_at(c, "type", NULL), *status = str_at(c, "status", NULL);
        if (type && status && strcmp(type, RENDER_COND_SECRETS) == 0 && strcmp(status, "False") == 0) {
            const char *message = str_at(c, "message", NULL);
            return message ? message : "a Secret it reads is missing";
        }
    }
    return NULL;
}

/* Left out for its Secrets: 1, with the unresolved entry added. */
static int gw_secrets_missing(const gw_model_t *m, json_t *unresolved)
{
    const char *why = secrets_missing(m->obj);
    if (why == NULL)
        return 0;
    add_unresolved(unresolved, "LanguageModel", m->name, "SecretNotFound", lo_strdup(why));
    return 1;
}

static int gateway_render(const char *ns, const json_t *cluster, const json_t *models, int config,
                          render_result_t *out, lo_err_t *err)
{
    size_t n = 0, i;
    json_t *obj;
    gw_model_t *ms = NULL;
    json_t *doc = NULL, *list = NULL, *env = NULL, *unresolved = NULL, *used = NULL, *served = NULL, *fb = NULL;
    int ret = -1;

    memset(out, 0, sizeof(*out));
    if (!json_is_array(models)) {
        lo_err_set(err, 500, "InternalError", "render: the models are not a list");
        return -1;
    }
    ms = lo_calloc(json_array_size(models) + 1, sizeof(*ms));
    json_array_foreach(models, i, obj)
    {
        int in = gw_model_check(obj, ns, err);
        if (in < 0)
            goto out;
        if (in)
            ms[n++] = (gw_model_t){obj, str_at(obj, "metadata", "name"), NULL, NULL};
    }
    qsort(ms, n, sizeof(*ms), cmp_gw_model);

    list = json_array();
    env = json_array();
    unresolved = json_array();
    used = json_object();
    served = json_object();
    for (i = 0; i < n; i++) {
        gw_model_build(&ms[i], !config);
        if (json_object_get(served, ms[i].name) != NULL || gw_secrets_missing(&ms[i], unresolved) ||
            !gw_admit(&ms[i], used, unresolved))
            continue;
        json_object_set_new(served, ms[i].name, json_true());
        size_t e;
        json_t *params;
        json_array_foreach(ms[i].entries, e, params) if (config) json_array_append_new(
            list, json_pack("{s:s, s:O}", "model_name", ms[i].name, "litellm_params", params));
        json_array_extend(env, ms[i].env);
    }
    fb = json_array();
    for (i = 0; i < n; i++) {
        if (json_object_get(served, ms[i].name) == NULL)
            continue;
        json_t *entry = gw_fallbacks(&ms[i], served, ns, unresolved);
        if (entry != NULL)
            json_array_append_new(fb, entry);
    }

    if (config) {
        doc = json_pack("{s:O, s:{s:b}}", "model_list", list, "litellm_settings", "drop_params", 1);
        json_t *rs = gw_router_settings(cluster, fb);
        if (rs != NULL)
            json_object_set_new(doc, "router_settings", rs);
        ret = result_finish(doc, env, unresolved, out, err);
    } else {
        out->unresolved = unresolved;
        ret = 0;
        json_decref(env);
    }
    if (ret == 0) {
        out->served = json_array();
        for (i = 0; i < n; i++)
            if (json_object_get(served, ms[i].name) != NULL &&
                (i == 0 || strcmp(ms[i - 1].name, ms[i].name) != 0))
                json_array_append_new(out->served, json_string(ms[i].name));
    }
    env = unresolved = NULL; /* moved into out (or released) */
out:
    for (i = 0; ms != NULL && i < n; i++) {
        json_decref(ms[i].entries);
        json_decref(ms[i].env);
    }
    free(ms);
    json_decref(doc);
    json_decref(list);
    json_decref(env);
    json_decref(unresolved);
    json_decref(used);
    json_decref(served);
    json_decref(fb);
    return ret;
}

int render_gateway_config(const char *ns, const char *cluster_domain, const json_t *cluster, const json_t *models,
                          render_result_t *out, lo_err_t *err)
{
    (void)cluster_domain; /* the gateway's own config does not name its endpoint */
    return gateway_render(ns, cluster, models, 1, out, err);
}

int render_gateway_verdict(const char *ns, const json_t *models, render_result_t *out, lo_err_t *err)
{
    return gateway_render(ns, NULL, models, 0, out, err);
}

/* The lean build of one model: what the verdict reads of it (its variables and deployments). */
static void gw_model_lean(const json_t *obj, gw_model_t *m)
{
    *m = (gw_model_t){obj, str_at(obj, "metadata", "name"), NULL, NULL};
    gw_model_build(m, 1);
}

static int same_or_both_absent(const json_t *a, const json_t *b)
{
    return (a == NULL && b == NULL) || json_equal(a, b);
}

int render_gateway_same(const json_t *a, const json_t *b)
{
    const json_t *sa = json_object_get(a, "spec"), *sb = json_object_get(b, "spec");
    const char *na = str_at(a, "metadata", "name"), *nb = str_at(b, "metadata", "name");
    if (!json_is_object(sa) || !json_is_object(sb) || !nonempty(na) || !nonempty(nb) || strcmp(na, nb) != 0 ||
        !spec_renderable(sa) || !spec_renderable(sb) ||
        !same_or_both_absent(json_object_get(sa, "fallbacks"), json_object_get(sb, "fallbacks")))
        return 0;
    const char *why_a = secrets_missing(a), *why_b = secrets_missing(b);
    if ((why_a == NULL) != (why_b == NULL) || (why_a && strcmp(why_a, why_b) != 0))
        return 0;
    gw_model_t ma, mb;
    gw_model_lean(a, &ma);
    gw_model_lean(b, &mb);
    int same = json_array_size(ma.entries) == json_array_size(mb.entries) && json_equal(ma.env, mb.env);
    json_decref(ma.entries);
    json_decref(ma.env);
    json_decref(mb.entries);
    json_decref(mb.env);
    return same;
}

/* ------------------------------------------------------------------ */
/* Agent                                                               */
/* ------------------------------------------------------------------ */

/* name -> object for the objects of namespace ns (borrowed values held by the new index). */
static json_t *index_by_name(const json_t *objects, const char *ns)
{
    json_t *index = json_object();
    size_t i;
    json_t *obj;
    json_array_foreach(objects, i, obj)
    {
        const char *name = str_at(obj, "metadata", "name"), *obj_ns = str_at(obj, "metadata", "namespace");
        if (nonempty(name) && obj_ns != NULL && strcmp(obj_ns, ns) == 0 && json_object_get(index, name) == NULL)
            json_object_set(index, name, obj);
    }
    return index;
}

/* Appends item to a comma-separated list held in *list (malloc'd). */
static void csv_append(char **list, const char *item)
{
    char *next = **list ? lo_sprintf("%s,%s", *list, item) : lo_strdup(item);
    free(*list);
    *list = next;
}

char *render_tool_endpoint(const json_t *tool, const char *ns, const char *domain)
{
    const json_t *spec = json_object_get(tool, "spec");
    const json_t *port = json_object_get(spec, "port");
    const char *mode = str_at(spec, "deploymentMode", NULL);
    json_int_t p = json_is_integer(port) ? json_integer_value(port) : 8080;
    if (mode != NULL && strcmp(mode, "sidecar") == 0)
        return lo_sprintf("http://localhost:%" JSON_INTEGER_FORMAT, p);
    return lo_sprintf("http://%s.%s.svc.%s:%" JSON_INTEGER_FORMAT, str_at(tool, "metadata", "name"), ns, domain, p);
}

/* The persona section, or NULL (reported when missing). New. */
static json_t *agent_persona(const char *name, const json_t *personas, const char *agent, const char *ns,
                             json_t *unresolved)
{
    const json_t *p = json_object_get(personas, name);
    if (p == NULL) {
        add_unresolved(unresolved, "LanguagePersona", name, "PersonaNotFound",
                       lo_sprintf("LanguageAgent %s: LanguagePersona %s not found in namespace %s", agent, name, ns));
        return NULL;
    }
    const json_t *spec = json_object_get(p, "spec");
    json_t *out = json_pack("{s:s}", "name", name);
    set_str_if(out, "tone", str_at(spec, "tone", NULL));
    set_str_if(out, "personality", str_at(spec, "personality", NULL));
    set_str_if(out, "expertise", str_at(spec, "expertise", NULL));
    return out;
}

/* The tools map (new); *mcp gets the endpoints in the agent's order. */
static json_t *agent_tools(const json_t *refs, const json_t *tools, const char *agent, const char *ns,
                           const char *domain, char **mcp, json_t *unresolved)
{
    json_t *out = json_object();
    size_t i;
    json_t *ref;
    json_array_foreach(refs, i, ref)
    {
        const char *name = str_at(ref, "name", NULL);
        if (!nonempty(name) || json_is_false(json_object_get(ref, "enabled")) || json_object_get(out, name) != NULL)
            continue;
        const json_t *tool = json_object_get(tools, name);
        if (tool == NULL) {
            add_unresolved(unresolved, "LanguageTool", name, "ToolNotFound",
                           lo_sprintf("LanguageAgent %s: LanguageTool %s not found in namespace %s", agent, name, ns));
            continue;
        }
        char *endpoint = render_tool_endpoint(tool, ns, domain);
        json_object_set_new(out, name, json_pack("{s:s, s:s}", "endpoint", endpoint, "protocol", "mcp"));
        csv_append(mcp, endpoint);
        free(endpoint);
    }
    return out;
}

/* The models map (new); *names gets the resolved names in the agent's order. */
static json_t *agent_models(const json_t *refs, const json_t *models, const char *agent, const char *ns,
                            const char *gateway, char **names, json_t *unresolved)
{
    json_t *out = json_object();
    size_t i;
    json_t *ref;
    json_array_foreach(refs, i, ref)
    {
        const char *name = str_at(ref, "name", NULL), *role = str_at(ref, "role", NULL);
        if (!nonempty(name) || json_object_get(out, name) != NULL)
            continue;
        const json_t *spec = json_object_get(json_object_get(models, name), "spec");
        if (spec == NULL) {
            add_unresolved(unresolved, "LanguageModel", name, "ModelNotFound",
                           lo_sprintf("LanguageAgent %s: LanguageModel %s not found in namespace %s", agent, name, ns));
            continue;
        }
        const char *provider = str_at(spec, "provider", NULL);
        json_t *entry = json_pack("{s:s}", "role", nonempty(role) ? role : "primary");
        if (json_is_integer(json_object_get(ref, "priority")))
            json_object_set(entry, "priority", json_object_get(ref, "priority"));
        set_str_if(entry, "provider", nonempty(provider) ? provider : str_at(spec, "litellmProvider", NULL));
        set_str_if(entry, "model", str_at(spec, "modelName", NULL));
        json_object_set_new(entry, "endpoint", json_string(gateway));
        json_object_set_new(out, name, entry);
        csv_append(names, name);
    }
    return out;
}

int render_agent_config(const json_t *agent, const json_t *cluster, const char *cluster_domain, const json_t *models,
                        const json_t *tools, const json_t *personas, render_result_t *out, lo_err_t *err)
{
    const char *name = str_at(agent, "metadata", "name"), *ns = str_at(agent, "metadata", "namespace");
    const char *uid = str_at(agent, "metadata", "uid"), *cluster_name = str_at(cluster, "metadata", "name");
    const json_t *spec = json_object_get(agent, "spec");
    json_t *model_index = NULL, *tool_index = NULL, *persona_index = NULL, *doc = NULL, *env = NULL,
           *unresolved = NULL;
    char *gateway = NULL, *llm = lo_strdup(""), *mcp = lo_strdup("");
    int ret = -1;

    memset(out, 0, sizeof(*out));
    if (!nonempty(name) || !nonempty(ns) || (spec != NULL && !json_is_object(spec)) ||
        (models != NULL && !json_is_array(models)) || (tools != NULL && !json_is_array(tools)) ||
        (personas != NULL && !json_is_array(personas))) {
        lo_err_set(err, 500, "InternalError", "render: not a LanguageAgent with its related object lists");
        goto out;
    }
    model_index = index_by_name(models, ns);
    tool_index = index_by_name(tools, ns);
    persona_index = index_by_name(personas, ns);
    gateway = render_gateway_endpoint(ns, cluster_domain);
    unresolved = json_array();

    /* resolved in the order unresolved lists them: models, tools, persona */
    json_t *model_map = agent_models(json_object_get(spec, "models"), model_index, name, ns, gateway, &llm, unresolved);
    json_t *tool_map =
        agent_tools(json_object_get(spec, "tools"), tool_index, name, ns, cluster_domain, &mcp, unresolved);
    const char *persona_name = str_at(spec, "persona", NULL);
    json_t *persona = nonempty(persona_name) ? agent_persona(persona_name, persona_index, name, ns, unresolved) : NULL;

    doc = json_pack("{s:{s:s, s:s}}", "agent", "name", name, "namespace", ns);
    set_str_if(doc, "instructions", str_at(spec, "instructions", NULL));
    if (persona != NULL)
        json_object_set_new(doc, "persona", persona);
    json_object_set_new(doc, "tools", tool_map);
    json_object_set_new(doc, "models", model_map);

    env = json_array();
    json_array_append_new(env, env_value("MODEL_ENDPOINT", gateway));
    json_array_append_new(env, env_value("LLM_MODEL", llm));
    json_array_append_new(env, env_value("MCP_SERVERS", mcp));
    json_array_append_new(env, env_value("AGENT_NAME", name));
    json_array_append_new(env, env_value("AGENT_NAMESPACE", ns));
    json_array_append_new(env, env_value("AGENT_UID", uid ? uid : ""));
    json_array_append_new(env, env_value("AGENT_CLUSTER_NAME", nonempty(cluster_name) ? cluster_name : ns));

    /* then the user's env, copied (out owns its trees; the agent's are shared, read-only) */
    size_t server_vars = json_array_size(env), i, j;
    json_t *user;
    json_array_foreach(json_object_get(json_object_get(spec, "deployment"), "env"), i, user)
    {
        const char *var = str_at(user, "name", NULL);
        for (j = 0; nonempty(var) && j < server_vars; j++)
            if (strcmp(var, str_at(json_array_get(env, j), "name", NULL)) == 0)
                var = NULL; /* one of the seven */
        if (!nonempty(var))
            continue;
        json_t *entry = json_pack("{s:s}", "name", var);
        if (json_is_string(json_object_get(user, "value")))
            json_object_set_new(entry, "value", json_deep_copy(json_object_get(user, "value")));
        if (json_is_object(json_object_get(user, "valueFrom")))
            json_object_set_new(entry, "valueFrom", json_deep_copy(json_object_get(user, "valueFrom")));
        json_array_append_new(env, entry);
    }

    ret = result_finish(doc, env, unresolved, out, err);
    env = unresolved = NULL; /* moved into out (or released) */
out:
    json_decref(model_index);
    json_decref(tool_index);
    json_decref(persona_index);
    json_decref(doc);
    json_decref(env);
    json_decref(unresolved);
    free(gateway);
    free(llm);
    free(mcp);
    return ret;
}
