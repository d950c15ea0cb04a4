/*
 * test_render.c - the gateway and agent renderers (langop/render.h).
 *
 * Golden files: tests/golden/<case>.yaml is the rendered file and
 * tests/golden/<case>.env.json the env, unresolved references and hash, for
 * each input tests/golden/inputs/<case>.yaml. They are compared byte for
 * byte; LANGOP_UPDATE_GOLDEN=1 rewrites them instead (review the diff).
 * The folder is found from this file's path as the compiler saw it
 * (__FILE__, relative to the build directory, which is the parent of the
 * folder holding this executable).
 *
 * check_litellm() is written from the LiteLLM config rules (reference §7)
 * and runs on every rendered gateway config.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <limits.h>
#include <cmocka.h>

#include "langop/core/codec.h"
#include "langop/derive/render.h"

/* ------------------------------------------------------------------ */
/* Files                                                               */
/* ------------------------------------------------------------------ */

/* tests/golden in the source tree (caller frees). */
static char *golden_dir(void)
{
    const char *src = __FILE__; /* .../tests/unit/test_render.c */
    const char *slash = strrchr(src, '/');
    int dir_len = slash ? (int)(slash - src) : 1;
    if (src[0] == '/')
        return lo_sprintf("%.*s/../golden", dir_len, src);
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    assert_true(n > 0);
    exe[n] = '\0';
    for (int up = 0; up < 2; up++) /* <build>/tests/test_render -> <build> */
        *strrchr(exe, '/') = '\0';
    return lo_sprintf("%s/%.*s/../golden", exe, dir_len, src);
}

static char *read_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return NULL;
    size_t cap = 4096, len = 0;
    char *buf = lo_malloc(cap);
    size_t got;
    while ((got = fread(buf + len, 1, cap - len - 1, f)) > 0) {
        len += got;
        if (cap - len < 2)
            buf = lo_realloc(buf, cap *= 2);
    }
    fclose(f);
    buf[len] = '\0';
    return buf;
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "wb");
    if (f == NULL)
        fail_msg("cannot write %s", path);
    fputs(text, f);
    fclose(f);
}

static int updating(void)
{
    const char *v = getenv("LANGOP_UPDATE_GOLDEN");
    return v != NULL && strcmp(v, "1") == 0;
}

/* Compares text with golden file name, or rewrites it when updating. */
static void golden_compare(const char *name, const char *text)
{
    char *dir = golden_dir(), *path = lo_sprintf("%s/%s", dir, name);
    if (updating()) {
        write_file(path, text);
    } else {
        char *want = read_file(path);
        if (want == NULL)
            fail_msg("missing golden file %s (run with LANGOP_UPDATE_GOLDEN=1)", path);
        if (strcmp(want, text) != 0)
            fail_msg("%s differs from the rendered output:\n--- got ---\n%s--- want ---\n%s", path, text, want);
        free(want);
    }
    free(path);
    free(dir);
}

/* The input tree of a case (new). */
static json_t *load_input(const char *name)
{
    char *dir = golden_dir(), *path = lo_sprintf("%s/inputs/%s.yaml", dir, name);
    char *text = read_file(path);
    if (text == NULL)
        fail_msg("missing input %s", path);
    lo_err_t err = {0};
    json_t *v = codec_decode_yaml(text, strlen(text), &err);
    if (v == NULL)
        fail_msg("%s: %s", path, err.message);
    free(text);
    free(path);
    free(dir);
    return v;
}

static json_t *yaml_tree(const char *text)
{
    lo_err_t err = {0};
    json_t *v = codec_decode_yaml(text, strlen(text), &err);
    if (v == NULL)
        fail_msg("rendered YAML does not parse: %s\n%s", err.message, text);
    return v;
}

/* ------------------------------------------------------------------ */
/* The LiteLLM config checker (reference §7)                           */
/* ------------------------------------------------------------------ */

typedef struct check {
    const json_t *env;
    json_t *names;    /* model_name -> true */
    json_t *environ;  /* VAR -> true for every os.environ/VAR */
    char why[512];
} check_t;

static int check_fail(check_t *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int check_fail(check_t *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->why, sizeof(c->why), fmt, ap);
    va_end(ap);
    return -1;
}

/* A key that names a credential must never hold a literal. */
static int credential_key(const char *key)
{
    static const char *const words[] = {"api_key", "secret", "password", "credential", "access_key", NULL};
    size_t len = strlen(key);
    for (int i = 0; words[i]; i++)
        if (strstr(key, words[i]) != NULL)
            return 1;
    return len >= 5 && strcmp(key + len - 5, "token") == 0; /* session_token, not max_tokens */
}

/* A string that looks like a key whatever field it sits in. */
static int secret_looking(const char *s)
{
    if (strncmp(s, "sk-", 3) == 0 || strstr(s, "-----BEGIN") != NULL || strstr(s, "\"private_key\"") != NULL)
        return 1;
    const char *akia = strstr(s, "AKIA");
    if (akia != NULL) {
        int n = 0;
        for (const char *p = akia + 4; (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9'); p++)
            n++;
        if (n >= 16)
            return 1;
    }
    return 0;
}

/* Walks every value: records os.environ/ references and refuses literal secrets. */
static int check_values(check_t *c, const char *key, const json_t *v)
{
    const char *k;
    size_t i;
    json_t *child;
    if (json_is_object(v)) {
        json_object_foreach((json_t *)v, k, child) if (check_values(c, k, child) < 0) return -1;
    } else if (json_is_array(v)) {
        json_array_foreach(v, i, child) if (check_values(c, key, child) < 0) return -1;
    } else if (json_is_string(v)) {
        const char *s = json_string_value(v);
        if (strncmp(s, "os.environ/", 11) == 0) {
            if (s[11] == '\0')
                return check_fail(c, "%s: os.environ/ without a variable", key);
            json_object_set_new(c->environ, s + 11, json_true());
            return 0;
        }
        if (secret_looking(s))
            return check_fail(c, "%s: literal secret-looking value", key);
        if (key != NULL && credential_key(key) && !(strcmp(key, "api_key") == 0 && strcmp(s, "no-key") == 0))
            return check_fail(c, "%s: a credential must be read from os.environ/, not written", key);
    } else if (key != NULL && credential_key(key) && !json_is_null(v)) {
        return check_fail(c, "%s: a credential must be a string from os.environ/", key);
    }
    return 0;
}

/* A prefix LiteLLM routes on: [a-z0-9_]+ then '/', then a model. */
static int explicit_prefix(const char *model)
{
    const char *p = model;
    while ((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_')
        p++;
    return p > model && *p == '/' && p[1] != '\0';
}

static int check_models(check_t *c, const json_t *list)
{
    size_t i;
    json_t *m;
    if (!json_is_array(list))
        return check_fail(c, "model_list is not a list");
    json_array_foreach(list, i, m)
    {
        const char *name = json_string_value(json_object_get(m, "model_name"));
        const json_t *lp = json_object_get(m, "litellm_params");
        const char *model = json_string_value(json_object_get(lp, "model"));
        if (name == NULL || *name == '\0')
            return check_fail(c, "model_list[%zu]: no model_name", i);
        if (!json_is_object(lp) || model == NULL)
            return check_fail(c, "%s: no litellm_params.model", name);
        if (!explicit_prefix(model))
            return check_fail(c, "%s: model %s has no explicit provider prefix", name, model);
        const char *limits[] = {"rpm", "tpm", NULL};
        for (int l = 0; limits[l]; l++) {
            const json_t *v = json_object_get(lp, limits[l]);
            if (v != NULL && !(json_is_integer(v) && json_integer_value(v) > 0))
                return check_fail(c, "%s: %s is not a positive integer", name, limits[l]);
        }
        const json_t *t = json_object_get(lp, "timeout");
        if (t != NULL && !(json_is_number(t) && json_number_value(t) > 0))
            return check_fail(c, "%s: timeout is not a positive number of seconds", name);
        json_object_set_new(c->names, name, json_true());
    }
    return 0;
}

/* fallbacks: [{model_name: [model_name...]}], every name in model_list. */
static int check_fallbacks(check_t *c, const char *where, const json_t *fb)
{
    size_t i, j;
    json_t *entry, *t;
    if (fb == NULL)
        return 0;
    if (!json_is_array(fb))
        return check_fail(c, "%s.fallbacks is not a list", where);
    json_array_foreach(fb, i, entry)
    {
        const char *from;
        json_t *targets;
        if (!json_is_object(entry) || json_object_size(entry) != 1)
            return check_fail(c, "%s.fallbacks[%zu] is not a one-key map", where, i);
        json_object_foreach(entry, from, targets)
        {
            if (json_object_get(c->names, from) == NULL)
                return check_fail(c, "%s.fallbacks: %s is not a model_name of model_list", where, from);
            if (!json_is_array(targets) || json_array_size(targets) == 0)
                return check_fail(c, "%s.fallbacks: %s has no target list", where, from);
            json_array_foreach(targets, j, t)
            {
                const char *to = json_string_value(t);
                if (to == NULL || json_object_get(c->names, to) == NULL)
                    return check_fail(c, "%s.fallbacks: target %s of %s is not in model_list", where,
                                      to ? to : "(not a string)", from);
            }
        }
    }
    return 0;
}

/* Every os.environ/ variable has exactly one secretKeyRef entry, and no entry is spare. */
static int check_env(check_t *c)
{
    json_t *seen = json_object();
    size_t i;
    json_t *e;
    int ret = 0;
    json_array_foreach(c->env, i, e)
    {
        const char *name = json_string_value(json_object_get(e, "name"));
        const json_t *ref = json_object_get(json_object_get(e, "valueFrom"), "secretKeyRef");
        if (name == NULL || json_object_get(seen, name) != NULL) {
            ret = check_fail(c, "env[%zu]: missing or repeated name", i);
            break;
        }
        json_object_set_new(seen, name, json_true());
        if (json_object_get(e, "value") != NULL || json_string_value(json_object_get(ref, "name")) == NULL ||
            json_string_value(json_object_get(ref, "key")) == NULL) {
            ret = check_fail(c, "env %s: not a secretKeyRef {name, key}", name);
            break;
        }
        if (json_object_get(c->environ, name) == NULL) {
            ret = check_fail(c, "env %s: no os.environ/ reads it", name);
            break;
        }
    }
    const char *var;
    json_t *v;
    if (ret == 0)
        json_object_foreach(c->environ, var, v) if (json_object_get(seen, var) == NULL)
        {
            ret = check_fail(c, "os.environ/%s has no secretKeyRef in env", var);
            break;
        }
    json_decref(seen);
    return ret;
}

/* 0 when yaml + env is a config a LiteLLM proxy accepts by the §7 rules; -1 with why. */
static int check_litellm(const char *yaml, const json_t *env, char *why, size_t why_size)
{
    check_t c = {env, json_object(), json_object(), ""};
    lo_err_t err = {0};
    int ret = -1;
    json_t *doc = codec_decode_yaml(yaml, strlen(yaml), &err);
    if (doc == NULL) {
        check_fail(&c, "not valid YAML: %s", err.message);
        goto out;
    }
    if (!json_is_object(doc)) {
        check_fail(&c, "the config is not a mapping");
        goto out;
    }
    if (!json_is_array(env)) {
        check_fail(&c, "env is not a list");
        goto out;
    }
    const json_t *router = json_object_get(doc, "router_settings");
    const json_t *settings = json_object_get(doc, "litellm_settings");
    if (check_models(&c, json_object_get(doc, "model_list")) < 0 || check_values(&c, NULL, doc) < 0 ||
        check_fallbacks(&c, "router_settings", json_object_get(router, "fallbacks")) < 0 ||
        check_fallbacks(&c, "litellm_settings", json_object_get(settings, "fallbacks")) < 0 || check_env(&c) < 0)
        goto out;
    ret = 0;
out:
    snprintf(why, why_size, "%s", c.why);
    json_decref(doc);
    json_decref(c.names);
    json_decref(c.environ);
    return ret;
}

static void assert_litellm_ok(const char *yaml, const json_t *env)
{
    char why[512];
    if (check_litellm(yaml, env, why, sizeof(why)) < 0)
        fail_msg("LiteLLM checker: %s\n%s", why, yaml);
}

/* ------------------------------------------------------------------ */
/* Rendering a case                                                    */
/* ------------------------------------------------------------------ */

static const char *domain_of(const json_t *in)
{
    const char *d = json_string_value(json_object_get(in, "clusterDomain"));
    return d ? d : "cluster.local";
}

static void render_gateway_ok(const json_t *in, const json_t *models, render_result_t *r)
{
    lo_err_t err = {0};
    const char *ns = json_string_value(json_object_get(in, "namespace"));
    if (render_gateway_config(ns, domain_of(in), json_object_get(in, "cluster"), models, r, &err) != 0)
        fail_msg("render_gateway_config: %s", err.message);
}

static void render_agent_ok(const json_t *in, const json_t *models, const json_t *tools, const json_t *personas,
                            render_result_t *r)
{
    lo_err_t err = {0};
    if (render_agent_config(json_object_get(in, "agent"), json_object_get(in, "cluster"), domain_of(in), models,
                            tools, personas, r, &err) != 0)
        fail_msg("render_agent_config: %s", err.message);
}

/* env, unresolved and hash as pretty JSON (caller frees). */
static char *extras_text(const render_result_t *r)
{
    json_t *x = json_pack("{s:O, s:O, s:s}", "env", r->env, "unresolved", r->unresolved, "hash", r->hash);
    char *s = json_dumps(x, JSON_INDENT(2));
    char *out = lo_sprintf("%s\n", s);
    free(s);
    json_decref(x);
    return out;
}

/* The rendered file reads back to a tree that encodes to the same bytes. */
static void assert_round_trip(const char *yaml)
{
    json_t *tree = yaml_tree(yaml);
    char *again = codec_encode_yaml(tree);
    assert_non_null(again);
    assert_string_equal(again, yaml);
    free(again);
    json_decref(tree);
}

static void check_golden(const char *name, const render_result_t *r)
{
    char *yaml_name = lo_sprintf("%s.yaml", name), *env_name = lo_sprintf("%s.env.json", name);
    char *extras = extras_text(r);
    assert_int_equal(strlen(r->hash), 64);
    assert_round_trip(r->yaml);
    golden_compare(yaml_name, r->yaml);
    golden_compare(env_name, extras);
    free(extras);
    free(yaml_name);
    free(env_name);
}

static const char *const gateway_cases[] = {
    "gateway-openai",   "gateway-anthropic",     "gateway-azure",      "gateway-bedrock",
    "gateway-vertex",   "gateway-gemini",        "gateway-openai-compatible-key",
    "gateway-openai-compatible-nokey",           "gateway-custom",     "gateway-litellm-provider",
    "gateway-params",   "gateway-ratelimits",    "gateway-fallbacks",  "gateway-clash",
    "gateway-empty",    "gateway-mixed",         "gateway-upstreams",  NULL,
};

static const char *const agent_cases[] = {"agent-full", "agent-missing", "agent-minimal", "agent-env", NULL};

static void test_gateway_golden(void **state)
{
    (void)state;
    for (int i = 0; gateway_cases[i]; i++) {
        json_t *in = load_input(gateway_cases[i]);
        render_result_t r;
        render_gateway_ok(in, json_object_get(in, "models"), &r);
        check_golden(gateway_cases[i], &r);
        assert_litellm_ok(r.yaml, r.env);
        render_result_free(&r);
        json_decref(in);
    }
}

static void test_agent_golden(void **state)
{
    (void)state;
    for (int i = 0; agent_cases[i]; i++) {
        json_t *in = load_input(agent_cases[i]);
        render_result_t r;
        render_agent_ok(in, json_object_get(in, "models"), json_object_get(in, "tools"),
                        json_object_get(in, "personas"), &r);
        check_golden(agent_cases[i], &r);
        render_result_free(&r);
        json_decref(in);
    }
}

/* ------------------------------------------------------------------ */
/* Determinism                                                         */
/* ------------------------------------------------------------------ */

/* A permutation of list (new array, same elements): 0 reversed, else a seeded shuffle. */
static json_t *permuted(const json_t *list, unsigned seed)
{
    size_t n = json_array_size(list);
    json_t *out = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append(out, json_array_get(list, seed == 0 ? n - 1 - i : i));
    uint32_t x = seed * 2654435761u + 1;
    for (size_t i = n; seed != 0 && i > 1; i--) {
        x = x * 1664525u + 1013904223u;
        size_t j = (x >> 8) % i;
        json_t *a = json_incref(json_array_get(out, i - 1)), *b = json_incref(json_array_get(out, j));
        json_array_set_new(out, i - 1, b);
        json_array_set_new(out, j, a);
    }
    return out;
}

static void assert_same_result(const render_result_t *a, const render_result_t *b)
{
    assert_string_equal(a->yaml, b->yaml);
    assert_true(json_equal(a->env, b->env));
    assert_true(json_equal(a->unresolved, b->unresolved));
    assert_string_equal(a->hash, b->hash);
}

static void test_shuffled_input(void **state)
{
    (void)state;
    for (unsigned seed = 0; seed < 6; seed++) {
        for (int i = 0; gateway_cases[i]; i++) {
            json_t *in = load_input(gateway_cases[i]), *models = permuted(json_object_get(in, "models"), seed);
            render_result_t a, b;
            render_gateway_ok(in, json_object_get(in, "models"), &a);
            render_gateway_ok(in, models, &b);
            assert_same_result(&a, &b);
            render_result_free(&a);
            render_result_free(&b);
            json_decref(models);
            json_decref(in);
        }
        for (int i = 0; agent_cases[i]; i++) {
            json_t *in = load_input(agent_cases[i]);
            json_t *m = permuted(json_object_get(in, "models"), seed);
            json_t *t = permuted(json_object_get(in, "tools"), seed);
            json_t *p = permuted(json_object_get(in, "personas"), seed);
            render_result_t a, b;
            render_agent_ok(in, json_object_get(in, "models"), json_object_get(in, "tools"),
                            json_object_get(in, "personas"), &a);
            render_agent_ok(in, m, t, p, &b);
            assert_same_result(&a, &b);
            render_result_free(&a);
            render_result_free(&b);
            json_decref(m);
            json_decref(t);
            json_decref(p);
            json_decref(in);
        }
    }
}

/* ------------------------------------------------------------------ */
/* Hash                                                                */
/* ------------------------------------------------------------------ */

/* Sets the value at a dotted path of root (creating objects), stealing value. */
static void set_path(json_t *root, const char *path, json_t *value)
{
    char *copy = lo_strdup(path), *save = NULL;
    json_t *at = root;
    char *part = strtok_r(copy, ".", &save), *next;
    while ((next = strtok_r(NULL, ".", &save)) != NULL) {
        json_t *child = json_object_get(at, part);
        if (child == NULL) {
            child = json_object();
            json_object_set_new(at, part, child);
        }
        at = child;
        part = next;
    }
    json_object_set_new(at, part, value);
    free(copy);
}

/* A change to the gateway's input: models[index].path = value (JSON text). */
typedef struct change {
    int index;
    const char *path;
    const char *value;
} change_t;

static void gateway_hash_case(const char *name, const change_t *ch, int reaches_output, int yaml_changes)
{
    json_t *in = load_input(name);
    render_result_t before, after;
    render_gateway_ok(in, json_object_get(in, "models"), &before);
    json_t *models = json_deep_copy(json_object_get(in, "models"));
    set_path(json_array_get(models, (size_t)ch->index), ch->path, json_loads(ch->value, JSON_DECODE_ANY, NULL));
    render_gateway_ok(in, models, &after);
    if (reaches_output != (strcmp(before.hash, after.hash) != 0))
        fail_msg("%s: models[%d].%s = %s: hash %s", name, ch->index, ch->path, ch->value,
                 reaches_output ? "unchanged" : "changed");
    assert_int_equal(yaml_changes, strcmp(before.yaml, after.yaml) != 0);
    render_result_free(&before);
    render_result_free(&after);
    json_decref(models);
    json_decref(in);
}

static void test_gateway_hash(void **state)
{
    (void)state;
    static const change_t yaml_changes[] = {
        {0, "spec.modelName", "\"gpt-4.1\""},
        {0, "spec.timeout", "\"6m\""},
        {0, "spec.fallbacks", "[\"cheap\"]"},
        {1, "spec.rateLimits.requestsPerMinute", "5"},
        {2, "spec.endpoint", "\"http://ollama:11435/v1\""},
        {0, "metadata.name", "\"first\""},
    };
    static const change_t env_only[] = {
        {0, "spec.apiKeySecretRef.name", "\"rotated\""},
        {1, "spec.apiKeySecretRef.key", "\"other-key\""},
    };
    static const change_t no_change[] = {
        {0, "metadata.labels", "{\"tier\": \"silver\"}"},
        {0, "metadata.resourceVersion", "\"99\""},
        {1, "status", "{\"phase\": \"Ready\"}"},
        {3, "spec.modelName", "\"other\""}, /* namespace team-b */
    };
    for (size_t i = 0; i < sizeof(yaml_changes) / sizeof(yaml_changes[0]); i++)
        gateway_hash_case("gateway-fallbacks", &yaml_changes[i], 1, 1);
    for (size_t i = 0; i < sizeof(env_only) / sizeof(env_only[0]); i++)
        gateway_hash_case("gateway-fallbacks", &env_only[i], 1, 0);
    for (size_t i = 0; i < sizeof(no_change) / sizeof(no_change[0]); i++)
        gateway_hash_case("gateway-fallbacks", &no_change[i], 0, 0);
}

/* A change to the agent case: in.<path> = value. */
static void agent_hash_case(const char *path, const char *value, int reaches_output)
{
    json_t *in = load_input("agent-full");
    render_result_t before, after;
    render_agent_ok(in, json_object_get(in, "models"), json_object_get(in, "tools"), json_object_get(in, "personas"),
                    &before);
    json_t *changed = json_deep_copy(in);
    json_t *v = json_loads(value, JSON_DECODE_ANY, NULL);
    assert_non_null(v);
    /* path "<list>.<index>.<rest>" addresses an element of models/tools/personas */
    char list[32];
    int index, used = 0;
    if (sscanf(path, "%31[a-z].%d.%n", list, &index, &used) == 2 && used > 0)
        set_path(json_array_get(json_object_get(changed, list), (size_t)index), path + used, v);
    else
        set_path(changed, path, v);
    render_agent_ok(changed, json_object_get(changed, "models"), json_object_get(changed, "tools"),
                    json_object_get(changed, "personas"), &after);
    if (reaches_output != (strcmp(before.hash, after.hash) != 0))
        fail_msg("agent-full: %s = %s: hash %s", path, value, reaches_output ? "unchanged" : "changed");
    render_result_free(&before);
    render_result_free(&after);
    json_decref(changed);
    json_decref(in);
}

static void test_agent_hash(void **state)
{
    (void)state;
    agent_hash_case("agent.spec.instructions", "\"Be brief.\"", 1);
    agent_hash_case("agent.metadata.uid", "\"another-uid\"", 1);
    agent_hash_case("cluster.metadata.name", "\"other\"", 1);
    agent_hash_case("clusterDomain", "\"cluster.local\"", 1);
    agent_hash_case("models.1.spec.modelName", "\"claude-opus-4\"", 1); /* main */
    agent_hash_case("tools.0.spec.port", "9001", 1);
    agent_hash_case("tools.1.spec.deploymentMode", "\"service\"", 1);
    agent_hash_case("personas.0.spec.tone", "\"casual\"", 1);
    agent_hash_case("agent.spec.tools", "[{\"name\": \"web\", \"enabled\": true}]", 1);

    agent_hash_case("models.1.metadata.labels", "{\"a\": \"b\"}", 0);
    agent_hash_case("models.1.spec.apiKeySecretRef", "{\"name\": \"rotated\", \"key\": \"api-key\"}", 0);
    agent_hash_case("models.2.spec.modelName", "\"gpt-5\"", 0); /* unused by the agent */
    agent_hash_case("tools.2.spec.port", "9999", 0);            /* shell is disabled */
    agent_hash_case("personas.0.status", "{\"phase\": \"Pending\"}", 0);
    agent_hash_case("agent.spec.image", "\"ghcr.io/example/agent:2.0\"", 0);
    agent_hash_case("agent.status", "{\"phase\": \"Running\"}", 0);
    agent_hash_case("cluster.metadata.uid", "\"c2\"", 0);
}

/* Appending objects of another namespace changes nothing. */
static void test_other_namespace_ignored(void **state)
{
    (void)state;
    json_t *in = load_input("agent-full");
    render_result_t a, b;
    render_agent_ok(in, json_object_get(in, "models"), json_object_get(in, "tools"), json_object_get(in, "personas"),
                    &a);
    json_t *m = json_deep_copy(json_object_get(in, "models")), *t = json_deep_copy(json_object_get(in, "tools")),
           *p = json_deep_copy(json_object_get(in, "personas"));
    json_array_insert_new(m, 0,
                          json_pack("{s:{s:s, s:s}, s:{s:s, s:s}}", "metadata", "name", "main", "namespace", "other",
                                    "spec", "provider", "openai", "modelName", "gpt-4o"));
    json_array_insert_new(t, 0,
                          json_pack("{s:{s:s, s:s}, s:{s:i}}", "metadata", "name", "web", "namespace", "other", "spec",
                                    "port", 1));
    json_array_insert_new(p, 0,
                          json_pack("{s:{s:s, s:s}, s:{s:s}}", "metadata", "name", "careful", "namespace", "other",
                                    "spec", "tone", "rude"));
    render_agent_ok(in, m, t, p, &b);
    assert_same_result(&a, &b);
    render_result_free(&a);
    render_result_free(&b);
    json_decref(m);
    json_decref(t);
    json_decref(p);
    json_decref(in);
}

/* ------------------------------------------------------------------ */
/* Single behaviours                                                   */
/* ------------------------------------------------------------------ */

static void test_names(void **state)
{
    (void)state;
    char *s = render_gateway_endpoint("team-a", "cluster.local");
    assert_string_equal(s, "http://gateway.team-a.svc.cluster.local:8000");
    free(s);
    s = render_key_env_name("my-model.v2");
    assert_string_equal(s, "LANGOP_API_KEY_MY_MODEL_V2");
    free(s);
    s = render_key_env_name("gpt4o");
    assert_string_equal(s, "LANGOP_API_KEY_GPT4O");
    free(s);
}

/* litellm_params of the single model rendered from spec JSON (new), or NULL. */
static json_t *single_params(const char *spec_json)
{
    json_t *models = json_pack("[{s:{s:s, s:s}, s:o}]", "metadata", "name", "m", "namespace", "ns", "spec",
                               json_loads(spec_json, 0, NULL));
    render_result_t r;
    lo_err_t err = {0};
    assert_int_equal(render_gateway_config("ns", "cluster.local", NULL, models, &r, &err), 0);
    assert_litellm_ok(r.yaml, r.env);
    json_t *doc = yaml_tree(r.yaml);
    json_t *lp = json_incref(json_object_get(json_array_get(json_object_get(doc, "model_list"), 0), "litellm_params"));
    json_decref(doc);
    render_result_free(&r);
    json_decref(models);
    return lp;
}

static void test_timeouts(void **state)
{
    (void)state;
    static const struct {
        const char *timeout;
        const char *want; /* JSON of litellm_params.timeout, or NULL for absent */
    } cases[] = {
        {"5m", "300"},  {"30s", "30"},    {"1h30m", "5400"}, {"500ms", "0.5"}, {"1.5s", "1.5"},
        {"2h", "7200"}, {"90s", "90"},    {"0s", NULL},      {"soon", NULL},   {"5", NULL},
        {"", NULL},     {"1500us", "0.0015"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *spec =
            lo_sprintf("{\"provider\": \"openai\", \"modelName\": \"x\", \"timeout\": \"%s\"}", cases[i].timeout);
        json_t *lp = single_params(spec);
        json_t *got = json_object_get(lp, "timeout");
        if (cases[i].want == NULL) {
            if (got != NULL)
                fail_msg("timeout %s: expected none", cases[i].timeout);
        } else {
            json_t *want = json_loads(cases[i].want, JSON_DECODE_ANY, NULL);
            if (got == NULL || !json_equal(got, want) || json_typeof(got) != json_typeof(want))
                fail_msg("timeout %s: want %s", cases[i].timeout, cases[i].want);
            json_decref(want);
        }
        json_decref(lp);
        free(spec);
    }
}

/* params may never reintroduce a credential or replace the model. */
static void test_params_guard(void **state)
{
    (void)state;
    json_t *lp = single_params("{\"provider\": \"bedrock\", \"modelName\": \"x\", \"region\": \"us-east-1\","
                               " \"credentialsSecretRef\": {\"name\": \"aws\"},"
                               " \"params\": {\"model\": \"gpt\", \"aws_secret_access_key\": \"literal\","
                               " \"aws_region_name\": \"eu-west-1\", \"top_p\": 0.9,"
                               " \"headers\": {\"x\": \"os.environ/LANGOP_API_KEY_OTHER\"}}}");
    assert_string_equal(json_string_value(json_object_get(lp, "model")), "bedrock/x");
    assert_string_equal(json_string_value(json_object_get(lp, "aws_secret_access_key")),
                        "os.environ/LANGOP_AWS_SECRET_ACCESS_KEY_M");
    assert_string_equal(json_string_value(json_object_get(lp, "aws_region_name")), "eu-west-1");
    assert_non_null(json_object_get(lp, "top_p"));
    assert_null(json_object_get(lp, "headers"));
    json_decref(lp);
}

static int has_unresolved(const json_t *list, const char *kind, const char *name, const char *reason)
{
    size_t i;
    json_t *u;
    json_array_foreach(list, i, u) if (strcmp(json_string_value(json_object_get(u, "kind")), kind) == 0 &&
                                       strcmp(json_string_value(json_object_get(u, "name")), name) == 0 &&
                                       strcmp(json_string_value(json_object_get(u, "reason")), reason) == 0 &&
                                       json_string_value(json_object_get(u, "message")) != NULL) return 1;
    return 0;
}

static void test_fallbacks_and_clash_reported(void **state)
{
    (void)state;
    json_t *in = load_input("gateway-fallbacks");
    render_result_t r;
    render_gateway_ok(in, json_object_get(in, "models"), &r);
    assert_true(has_unresolved(r.unresolved, "LanguageModel", "ghost", "FallbackNotFound"));
    assert_true(has_unresolved(r.unresolved, "LanguageModel", "elsewhere", "FallbackNotFound"));
    assert_true(has_unresolved(r.unresolved, "LanguageModel", "cheap", "InvalidFallback"));
    assert_int_equal(json_array_size(r.unresolved), 3);
    json_t *doc = yaml_tree(r.yaml);
    json_t *want = json_loads("[{\"backup\": [\"cheap\"]}, {\"primary\": [\"backup\", \"cheap\"]}]", 0, NULL);
    assert_true(json_equal(json_object_get(json_object_get(doc, "router_settings"), "fallbacks"), want));
    json_decref(want);
    json_decref(doc);
    render_result_free(&r);
    json_decref(in);

    in = load_input("gateway-clash");
    render_gateway_ok(in, json_object_get(in, "models"), &r);
    assert_true(has_unresolved(r.unresolved, "LanguageModel", "a.b", "EnvNameClash"));
    assert_true(has_unresolved(r.unresolved, "LanguageModel", "a.b", "FallbackNotFound"));
    doc = yaml_tree(r.yaml);
    assert_int_equal(json_array_size(json_object_get(doc, "model_list")), 2); /* a-b and c */
    json_decref(doc);
    render_result_free(&r);
    json_decref(in);
}

static void test_agent_references_reported(void **state)
{
    (void)state;
    json_t *in = load_input("agent-missing");
    render_result_t r;
    render_agent_ok(in, json_object_get(in, "models"), json_object_get(in, "tools"), json_object_get(in, "personas"),
                    &r);
    assert_true(has_unresolved(r.unresolved, "LanguageModel", "absent", "ModelNotFound"));
    assert_true(has_unresolved(r.unresolved, "LanguageTool", "nowhere", "ToolNotFound"));
    assert_true(has_unresolved(r.unresolved, "LanguagePersona", "ghost", "PersonaNotFound"));
    assert_int_equal(json_array_size(r.unresolved), 3); /* the disabled "retired" is not reported */
    json_t *doc = yaml_tree(r.yaml);
    assert_null(json_object_get(doc, "persona"));
    assert_int_equal(json_object_size(json_object_get(doc, "models")), 1);
    assert_int_equal(json_object_size(json_object_get(doc, "tools")), 1);
    assert_string_equal(json_string_value(json_object_get(json_array_get(r.env, 1), "value")), "gpt");
    json_decref(doc);
    render_result_free(&r);
    json_decref(in);
}

static void test_agent_env_order(void **state)
{
    (void)state;
    static const char *const names[] = {"MODEL_ENDPOINT", "LLM_MODEL",       "MCP_SERVERS",       "AGENT_NAME",
                                        "AGENT_NAMESPACE", "AGENT_UID", "AGENT_CLUSTER_NAME"};
    static const char *const values[] = {"http://gateway.research.svc.corp.internal:8000",
                                         "main,thinker",
                                         "http://web.research.svc.corp.internal:9000,http://localhost:8080",
                                         "analyst",
                                         "research",
                                         "7d1c2f0e-5b1a-4c8e-9f00-123456789abc",
                                         "research"};
    json_t *in = load_input("agent-full");
    render_result_t r;
    render_agent_ok(in, json_object_get(in, "models"), json_object_get(in, "tools"), json_object_get(in, "personas"),
                    &r);
    assert_int_equal(json_array_size(r.env), 7);
    for (size_t i = 0; i < 7; i++) {
        assert_string_equal(json_string_value(json_object_get(json_array_get(r.env, i), "name")), names[i]);
        assert_string_equal(json_string_value(json_object_get(json_array_get(r.env, i), "value")), values[i]);
    }
    render_result_free(&r);
    json_decref(in);
}

static void test_bad_input(void **state)
{
    (void)state;
    render_result_t r;
    lo_err_t err = {0};
    json_t *notlist = json_object();
    assert_int_equal(render_gateway_config("ns", "cluster.local", NULL, notlist, &r, &err), -1);
    assert_int_not_equal(err.message[0], '\0');
    json_t *nomodel = json_loads("[{\"metadata\": {\"name\": \"m\", \"namespace\": \"ns\"}, \"spec\": {\"provider\": "
                                 "\"openai\"}}]",
                                 0, NULL);
    assert_int_equal(render_gateway_config("ns", "cluster.local", NULL, nomodel, &r, &err), -1);
    json_t *agent = json_loads("{\"metadata\": {\"namespace\": \"ns\"}, \"spec\": {}}", 0, NULL);
    json_t *empty = json_array();
    assert_int_equal(render_agent_config(agent, NULL, "cluster.local", empty, empty, empty, &r, &err), -1);
    lo_err_clear(&err);
    json_decref(notlist);
    json_decref(nomodel);
    json_decref(agent);
    json_decref(empty);
}

/* The checker itself: each rule refuses a config that breaks it. */
static void test_checker_rejects(void **state)
{
    (void)state;
    static const char *const env_ok =
        "[{\"name\": \"K\", \"valueFrom\": {\"secretKeyRef\": {\"name\": \"s\", \"key\": \"api-key\"}}}]";
    static const struct {
        const char *yaml;
        const char *env;
        const char *want; /* part of the reason */
    } cases[] = {
        {"model_list:\n- model_name: a\n  litellm_params: {model: gpt-4o, api_key: os.environ/K}\n", env_ok, "prefix"},
        {"model_list:\n- model_name: a\n  litellm_params: {model: openai/x, api_key: os.environ/K}\n"
         "router_settings:\n  fallbacks:\n  - a: [b]\n",
         env_ok, "not in model_list"},
        {"model_list:\n- model_name: a\n  litellm_params: {model: openai/x, api_key: os.environ/K}\n"
         "litellm_settings:\n  fallbacks:\n  - z: [a]\n",
         env_ok, "not a model_name"},
        {"model_list:\n- model_name: a\n  litellm_params: {model: openai/x, api_key: os.environ/OTHER}\n", "[]",
         "no secretKeyRef"},
        {"model_list:\n- model_name: a\n  litellm_params: {model: openai/x}\n", env_ok, "no os.environ/ reads it"},
        {"model_list:\n- model_name: a\n  litellm_params: {model: openai/x, api_key: hunter2}\n", "[]", "credential"},
        {"model_list:\n- model_name: a\n  litellm_params: {model: openai/x, api_base: sk-abcdef}\n", "[]",
         "secret-looking"},
        {"model_list:\n- model_name: a\n  litellm_params:\n"
         "    {model: bedrock/x, aws_access_key_id: AKIAABCDEFGHIJKLMNOP}\n",
         "[]", "literal"},
        {"model_list:\n- model_name: a\n  litellm_params: {model: openai/x, rpm: 0}\n", "[]", "rpm"},
        {"model_list: [\n", "[]", "YAML"},
        {"model_list:\n- litellm_params: {model: openai/x}\n", "[]", "model_name"},
    };
    char why[512];
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        json_t *env = json_loads(cases[i].env, 0, NULL);
        if (check_litellm(cases[i].yaml, env, why, sizeof(why)) == 0)
            fail_msg("checker accepted case %zu:\n%s", i, cases[i].yaml);
        if (strstr(why, cases[i].want) == NULL)
            fail_msg("case %zu: reason \"%s\" lacks \"%s\"", i, why, cases[i].want);
        json_decref(env);
    }
    json_t *env = json_loads(env_ok, 0, NULL);
    assert_int_equal(check_litellm("model_list:\n- model_name: a\n  litellm_params: {model: openai/x, api_key: "
                                   "os.environ/K, timeout: 300}\n",
                                   env, why, sizeof(why)),
                     0);
    json_decref(env);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_gateway_golden),
        cmocka_unit_test(test_agent_golden),
        cmocka_unit_test(test_shuffled_input),
        cmocka_unit_test(test_gateway_hash),
        cmocka_unit_test(test_agent_hash),
        cmocka_unit_test(test_other_namespace_ignored),
        cmocka_unit_test(test_timeouts),
        cmocka_unit_test(test_params_guard),
        cmocka_unit_test(test_fallbacks_and_clash_reported),
        cmocka_unit_test(test_agent_references_reported),
        cmocka_unit_test(test_agent_env_order),
        cmocka_unit_test(test_bad_input),
        cmocka_unit_test(test_checker_rejects),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
