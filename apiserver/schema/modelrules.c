/*
 * modelrules.c - the admission rules of a LanguageModel's provider config
 * (modelrules.h): configs that cannot work are refused, 422 with one cause
 * per field, instead of rendering a gateway entry that silently calls the
 * wrong place.
 */
#include "langop/schema/modelrules.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* LanguageModel: exactly one of spec.provider and spec.litellmProvider (a null counts as unset). */
int modelrules_provider_choice(const rule_input_t *in, lo_err_t *err)
{
    const json_t *spec = json_object_get(in->obj, "spec");
    const json_t *p = json_object_get(spec, "provider");
    const json_t *l = json_object_get(spec, "litellmProvider");
    int has_p = p && !json_is_null(p), has_l = l && !json_is_null(l);
    if (has_p != has_l)
        return 0;
    rule_invalid(err, "spec", "object", "set exactly one of provider or litellmProvider");
    return 1;
}

/*
 * Credentials in params. A key is compared in a normal form: lower case,
 * words joined by '_', where words are split at non-alphanumerics and at
 * camelCase boundaries (apiKey, X-Api-Key, AWSSecretAccessKey all become
 * api_key, x_api_key, aws_secret_access_key). A key names a credential when
 *  - the whole key is in credential_keys (the names LiteLLM reads), or
 *  - one of its words is in credential_words, or
 *  - a word "token" or "key" follows a word of credential_qualifiers
 *    (access_token, aws_session_token, api_key, private_key).
 * The last rule is narrow on purpose: max_tokens, max_completion_tokens,
 * input_cost_per_token, bos_token and cache_key are model settings.
 */
static const char *const credential_keys[] = {
    "api_key", "aws_access_key_id", "aws_secret_access_key", "aws_session_token", "aws_bearer_token_bedrock",
    "vertex_credentials", "azure_ad_token", "client_secret", "azure_client_secret", "token", "key", NULL,
};
static const char *const credential_words[] = {
    "secret", "secrets", "password", "passwd", "credential", "credentials", "apikey", "authorization", NULL,
};
static const char *const credential_qualifiers[] = {
    "api", "access", "auth", "bearer", "session", "refresh", "id", "ad", "oauth", "identity",
    "private", "secret", "security", "subscription", "account", "master", "sas", NULL,
};

static int in_list(const char *const *list, const char *s, size_t len)
{
    for (int i = 0; list[i]; i++)
        if (strlen(list[i]) == len && strncmp(list[i], s, len) == 0)
            return 1;
    return 0;
}

/* The normal form of key (see above). Caller frees. */
static char *key_normal_form(const char *key)
{
    size_t len = strlen(key);
    char *out = lo_malloc(2 * len + 1);
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)key[i];
        if (!isalnum(c)) {
            if (o > 0 && out[o - 1] != '_')
                out[o++] = '_';
            continue;
        }
        if (isupper(c) && o > 0 && out[o - 1] != '_' && i > 0) {
            unsigned char prev = (unsigned char)key[i - 1], next = (unsigned char)key[i + 1];
            if (islower(prev) || isdigit(prev) || (isupper(prev) && islower(next)))
                out[o++] = '_';
        }
        out[o++] = (char)tolower(c);
    }
    while (o > 0 && out[o - 1] == '_')
        o--;
    out[o] = '\0';
    return out;
}

int rule_is_credential_key(const char *key)
{
    char *norm = key_normal_form(key);
    int found = in_list(credential_keys, norm, strlen(norm));
    const char *prev = NULL;
    size_t prev_len = 0;
    for (const char *w = norm; !found && *w;) {
        size_t wl = strcspn(w, "_");
        if (in_list(credential_words, w, wl))
            found = 1;
        else if (prev && ((wl == 5 && strncmp(w, "token", 5) == 0) || (wl == 3 && strncmp(w, "key", 3) == 0)) &&
                 in_list(credential_qualifiers, prev, prev_len))
            found = 1;
        prev = w;
        prev_len = wl;
        w += wl;
        w += strspn(w, "_");
    }
    free(norm);
    return found;
}

/*
 * What a walk of a parameter tree refuses: keys naming a credential
 * (always, with credential_why; null values count only when nulls_count),
 * and, when strict, Secret references and os.environ/ strings below the top
 * level.
 */
typedef struct tree_rules {
    const char *credential_why;
    int nulls_count;
    int strict;
} tree_rules_t;

/* Walks v (at path): one cause per refused node, none below it. */
static int check_tree(const json_t *v, const char *path, const tree_rules_t *rules, lo_err_t *err)
{
    int causes = 0;
    if (rules->strict && json_is_string(v) && strncmp(json_string_value(v), "os.environ/", 11) == 0) {
        rule_forbidden(err, path, "os.environ/ references are made by the server: give {secretKeyRef: {name, key}}");
        return 1;
    }
    if (rules->strict && json_is_object(v) && json_object_get(v, "secretKeyRef") != NULL) {
        rule_forbidden(err, path, "a Secret reference may only be the value of a top-level parameter");
        return 1;
    }
    if (json_is_object(v)) {
        const char *k;
        json_t *child;
        json_object_foreach((json_t *)v, k, child) {
            char *child_path = lo_sprintf("%s.%s", path, k);
            if (rule_is_credential_key(k) && (rules->nulls_count || !json_is_null(child))) {
                rule_forbidden(err, child_path, rules->credential_why);
                causes++;
            } else {
                causes += check_tree(child, child_path, rules, err);
            }
            free(child_path);
        }
    } else if (json_is_array(v)) {
        size_t i;
        json_t *item;
        json_array_foreach(v, i, item) {
            char *item_path = lo_sprintf("%s[%zu]", path, i);
            causes += check_tree(item, item_path, rules, err);
            free(item_path);
        }
    }
    return causes;
}

/* LanguageModel: spec.params must not carry credentials; they belong in Secrets. */
int modelrules_params_credentials(const rule_input_t *in, lo_err_t *err)
{
    static const tree_rules_t rules = {
        "credentials must not be set in params: reference a Secret with apiKeySecretRef or credentialsSecretRef", 1,
        0};
    return check_tree(json_object_get(json_object_get(in->obj, "spec"), "params"), "spec.params", &rules, err);
}


/* ---- small helpers ---- */

static const json_t *spec_of(const rule_input_t *in)
{
    return json_object_get(in->obj, "spec");
}

static const char *str_of(const json_t *obj, const char *key)
{
    return json_string_value(json_object_get(obj, key));
}

/* A field counts as set when present and not null (as the provider choice counts). */
static int is_set(const json_t *obj, const char *key)
{
    const json_t *v = json_object_get(obj, key);
    return v != NULL && !json_is_null(v);
}

static int provider_is(const json_t *spec, const char *provider)
{
    const char *p = str_of(spec, "provider");
    return p != NULL && strcmp(p, provider) == 0;
}

/* ---- the fields a provider cannot work without ---- */

/*
 * Without these LiteLLM either refuses every call or, worse, calls a
 * default: an openai-compatible model without an endpoint goes to the
 * public OpenAI API. LiteLLM has no sensible default for any of them
 * (vertex_location would default to us-central1, which silently moves data
 * to another region), so each is required. custom's endpoint may also come
 * from litellmParams.api_base (modelrules_custom checks that).
 */
static const struct {
    const char *provider;
    const char *field;
    const char *why;
} required_fields[] = {
    {"openai-compatible", "endpoint",
     "provider openai-compatible needs the server's base URL; without one, calls would go to the public OpenAI API"},
    {"azure", "endpoint", "provider azure needs the resource's endpoint (https://<resource>.openai.azure.com)"},
    {"azure", "apiVersion", "provider azure needs the Azure OpenAI API version, for example 2024-06-01"},
    {"bedrock", "region", "provider bedrock needs the AWS region of the model, for example us-east-1"},
    {"vertex", "project", "provider vertex needs the Google Cloud project"},
    {"vertex", "location", "provider vertex needs the Google Cloud location, for example us-central1"},
};

int modelrules_provider_fields(const rule_input_t *in, lo_err_t *err)
{
    const json_t *spec = spec_of(in);
    int causes = 0;
    for (size_t i = 0; i < sizeof(required_fields) / sizeof(required_fields[0]); i++) {
        if (!provider_is(spec, required_fields[i].provider) || is_set(spec, required_fields[i].field))
            continue;
        char field[64];
        snprintf(field, sizeof(field), "spec.%s", required_fields[i].field);
        rule_required(err, field, required_fields[i].why);
        causes++;
    }
    return causes;
}

/* ---- endpoints ---- */

/*
 * An endpoint is an absolute http or https URL with a host and no userinfo:
 * "https://user:secret@host" would put a credential into the object and the
 * rendered config, where keys never go. Returns NULL if url is fine, else
 * why not (static).
 */
static const char *endpoint_problem(const char *url, int *secret)
{
    size_t scheme;
    *secret = 0;
    for (const unsigned char *p = (const unsigned char *)url; *p; p++)
        if (*p <= 0x20 || *p == 0x7f)
            return "must be a URL without spaces or control characters";
    if (strncasecmp(url, "https://", 8) == 0)
        scheme = 8;
    else if (strncasecmp(url, "http://", 7) == 0)
        scheme = 7;
    else
        return "must be an http:// or https:// URL";
    const char *authority = url + scheme;
    size_t len = strcspn(authority, "/?#");
    if (memchr(authority, '@', len) != NULL) {
        *secret = 1;
        return "must not carry a user name or password: put the key in a Secret and reference it with "
               "apiKeySecretRef";
    }
    if (len == 0 || authority[0] == ':' || (authority[0] == '[' && memchr(authority, ']', len) == NULL))
        return "must name a host";
    return NULL;
}

/* One cause for field when value (a string, or absent) is not a usable endpoint. */
static int check_endpoint(const json_t *value, const char *field, lo_err_t *err)
{
    const char *url = json_string_value(value);
    int secret;
    const char *why = url ? endpoint_problem(url, &secret) : NULL;
    if (why == NULL)
        return 0;
    if (secret)
        rule_forbidden(err, field, why); /* the value holds a credential: it is not echoed back */
    else
        rule_invalid(err, field, url, why);
    return 1;
}

/* The endpoints of one deployment: endpoint and litellmParams.api_base, under prefix ("spec" or an upstream). */
static int check_deployment_endpoints(const json_t *d, const char *prefix, lo_err_t *err)
{
    char field[128];
    int causes = 0;
    snprintf(field, sizeof(field), "%s.endpoint", prefix);
    causes += check_endpoint(json_object_get(d, "endpoint"), field, err);
    snprintf(field, sizeof(field), "%s.litellmParams.api_base", prefix);
    causes += check_endpoint(json_object_get(json_object_get(d, "litellmParams"), "api_base"), field, err);
    return causes;
}

int modelrules_endpoints(const rule_input_t *in, lo_err_t *err)
{
    const json_t *spec = spec_of(in);
    int causes = check_deployment_endpoints(spec, "spec", err);
    size_t i;
    const json_t *up;
    json_array_foreach(json_object_get(spec, "upstreams"), i, up) {
        char prefix[64];
        snprintf(prefix, sizeof(prefix), "spec.upstreams[%zu]", i);
        causes += check_deployment_endpoints(up, prefix, err);
    }
    return causes;
}

/* ---- provider custom: litellmParams ---- */

static int is_secret_ref(const json_t *v)
{
    return json_is_object(v) && json_object_get(v, "secretKeyRef") != NULL;
}

/* A {secretKeyRef: {name, key}} value, checked; one cause at path when malformed. */
static int check_secret_ref(const json_t *v, const char *path, lo_err_t *err)
{
    const json_t *ref = json_object_get(v, "secretKeyRef");
    const char *name = str_of(ref, "name"), *key = str_of(ref, "key");
    if (json_object_size(v) == 1 && json_object_size(ref) == 2 && name && *name && strlen(name) <= 253 && key &&
        *key && strlen(key) <= 253)
        return 0;
    rule_invalid(err, path, "object",
                 "a Secret reference is exactly {secretKeyRef: {name: <Secret>, key: <key in it>}}");
    return 1;
}

/* Below the top level: no credential keys, no Secret references, no os.environ/ strings. */
static int check_nested_param(const json_t *v, const char *path, lo_err_t *err)
{
    static const tree_rules_t rules = {"credentials must not be set in litellmParams: give the value as "
                                       "{secretKeyRef: {name, key}} of a top-level parameter",
                                       0, 1};
    return check_tree(v, path, &rules, err);
}

/* Every parameter of litellmParams at path: a credential only as a Secret reference. */
static int check_litellm_params(const json_t *params, const char *path, lo_err_t *err)
{
    int causes = 0;
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)params, k, v) {
        char *child = lo_sprintf("%s.%s", path, k);
        if (is_secret_ref(v))
            causes += check_secret_ref(v, child, err);
        else if (rule_is_credential_key(k) && !json_is_null(v)) {
            rule_forbidden(err, child, "credentials must not be set in litellmParams: give {secretKeyRef: {name, key}}");
            causes++;
        } else
            causes += check_nested_param(v, child, err);
        free(child);
    }
    return causes;
}

/* custom's model names its LiteLLM provider explicitly, or LiteLLM would guess one from the name. */
static int check_custom_model(const json_t *params, lo_err_t *err)
{
    const json_t *model = json_object_get(params, "model");
    const char *m = json_string_value(model);
    if (model == NULL) {
        rule_required(err, "spec.litellmParams.model", "the LiteLLM model, as <provider>/<model>");
        return 1;
    }
    const char *slash = m ? strchr(m, '/') : NULL;
    if (slash == NULL || slash == m || slash[1] == '\0') {
        rule_invalid(err, "spec.litellmParams.model", m ? m : "non-string",
                     "must name the LiteLLM provider explicitly, as <provider>/<model> (for example "
                     "hosted_vllm/llama-3.1-8b)");
        return 1;
    }
    return 0;
}

/* Fields of the spec that custom does not read: its parameters are all in litellmParams. */
static const char *const custom_unused[] = {"params", "credentialsSecretRef", "apiVersion", "region", "project",
                                            "location", NULL};

/* Two ways of saying the same thing: field and litellmParams.param may not both be set. */
static int check_custom_twice(const json_t *d, const char *prefix, const char *field, const char *param,
                              lo_err_t *err)
{
    if (!is_set(d, field) || !is_set(json_object_get(d, "litellmParams"), param))
        return 0;
    char path[128], why[160];
    snprintf(path, sizeof(path), "%s.%s", prefix, field);
    snprintf(why, sizeof(why), "set either %s or litellmParams.%s, not both", field, param);
    rule_invalid(err, path, "both", why);
    return 1;
}

static int check_custom(const json_t *spec, lo_err_t *err)
{
    const json_t *params = json_object_get(spec, "litellmParams");
    int causes = 0;
    if (!json_is_object(params)) {
        rule_required(err, "spec.litellmParams",
                      "provider custom takes the LiteLLM parameters of its entry in litellmParams");
        return 1;
    }
    causes += check_custom_model(params, err);
    causes += check_litellm_params(params, "spec.litellmParams", err);
    for (const char *const *f = custom_unused; *f; f++) {
        if (!is_set(spec, *f))
            continue;
        char path[64];
        snprintf(path, sizeof(path), "spec.%s", *f);
        rule_forbidden(err, path, "provider custom does not read it: give the LiteLLM parameter in litellmParams");
        causes++;
    }
    causes += check_custom_twice(spec, "spec", "endpoint", "api_base", err);
    causes += check_custom_twice(spec, "spec", "apiKeySecretRef", "api_key", err);
    if (!is_set(spec, "endpoint") && !is_set(params, "api_base")) {
        rule_required(err, "spec.endpoint",
                      "provider custom needs the server's base URL, in endpoint or litellmParams.api_base");
        causes++;
    }
    return causes;
}

int modelrules_custom(const rule_input_t *in, lo_err_t *err)
{
    const json_t *spec = spec_of(in);
    if (provider_is(spec, "custom"))
        return check_custom(spec, err);
    if (!is_set(spec, "litellmParams"))
        return 0;
    rule_forbidden(err, "spec.litellmParams", "litellmParams is only read with provider custom; use params");
    return 1;
}

/* ---- upstreams ---- */

/* The provider fields an upstream may set, and the provider each belongs to. */
static const struct {
    const char *field;
    const char *provider;
} upstream_provider_fields[] = {
    {"apiVersion", "azure"}, {"region", "bedrock"}, {"project", "vertex"}, {"location", "vertex"},
};

static int check_upstream(const json_t *spec, const json_t *up, size_t i, lo_err_t *err)
{
    char prefix[64], path[128], why[160];
    int causes = 0;
    snprintf(prefix, sizeof(prefix), "spec.upstreams[%zu]", i);
    for (size_t f = 0; f < sizeof(upstream_provider_fields) / sizeof(upstream_provider_fields[0]); f++) {
        if (!is_set(up, upstream_provider_fields[f].field) || provider_is(spec, upstream_provider_fields[f].provider))
            continue;
        snprintf(path, sizeof(path), "%s.%s", prefix, upstream_provider_fields[f].field);
        snprintf(why, sizeof(why), "only provider %s reads it", upstream_provider_fields[f].provider);
        rule_forbidden(err, path, why);
        causes++;
    }
    const json_t *params = json_object_get(up, "litellmParams");
    if (is_set(up, "litellmParams") && !provider_is(spec, "custom")) {
        snprintf(path, sizeof(path), "%s.litellmParams", prefix);
        rule_forbidden(err, path, "litellmParams is only read with provider custom");
        causes++;
    } else if (json_is_object(params)) {
        snprintf(path, sizeof(path), "%s.litellmParams", prefix);
        causes += check_litellm_params(params, path, err);
        if (json_object_get(params, "model")) {
            snprintf(path, sizeof(path), "%s.litellmParams.model", prefix);
            rule_forbidden(err, path, "an upstream serves the model's own model; it changes where and with which key");
            causes++;
        }
    }
    if (provider_is(spec, "custom")) {
        causes += check_custom_twice(up, prefix, "endpoint", "api_base", err);
        causes += check_custom_twice(up, prefix, "apiKeySecretRef", "api_key", err);
        if (is_set(up, "credentialsSecretRef")) {
            snprintf(path, sizeof(path), "%s.credentialsSecretRef", prefix);
            rule_forbidden(err, path, "provider custom does not read it: give the parameter in litellmParams");
            causes++;
        }
    }
    return causes;
}

int modelrules_upstreams(const rule_input_t *in, lo_err_t *err)
{
    const json_t *spec = spec_of(in);
    int causes = 0;
    size_t i;
    const json_t *up;
    json_array_foreach(json_object_get(spec, "upstreams"), i, up)
        causes += check_upstream(spec, up, i, err);
    return causes;
}
