/*
 * test_derive.c - computed status and the GatewayConfig / AgentConfig
 * subresources (apiserver/derive.c) against include/langop/derive.h, on a
 * real store in a throw-away directory under /tmp, with the real renderers.
 */
#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "fixtures.h"
#include <valgrind/valgrind.h>

#include "langop/derive.h"
#include "langop/schema.h"
#include "langop/store.h"

#define DOMAIN "cluster.local"
#define CREATED "2025-03-04T05:06:07Z"

/* ---- fixture: a fresh store per test; the schema registry per run ---- */

static int setup(void **state)
{
    *state = fx_store_open("test_derive");
    return *state ? 0 : -1;
}

static int teardown(void **state)
{
    fx_store_close(*state);
    return 0;
}

/* ---- seeding objects ---- */

static int put_cb(store_txn_t *txn, const json_t *current, json_t **next, void *ctx, lo_err_t *err)
{
    (void)txn, (void)current, (void)err;
    *next = json_deep_copy(ctx);
    return STORE_WRITE_PUT;
}

/* Stores obj (stolen) under resource; namespace and name come from its metadata. */
static void put(store_t *s, const char *resource, json_t *obj)
{
    lo_err_t err = {0};
    store_write_result_t res;
    json_t *meta = json_object_get(obj, "metadata");
    const char *ns = json_string_value(json_object_get(meta, "namespace"));
    store_write_t w = {.resource = resource, .ns = ns ? ns : "",
                       .name = json_string_value(json_object_get(meta, "name")), .mutate = put_cb, .ctx = obj};
    if (store_write(s, &w, &res, &err) != STORE_OK)
        fail_msg("store_write %s: %s", resource, err.message);
    store_write_result_free(&res);
    json_decref(obj);
}

/* New object of kind with standard metadata (ns NULL: cluster-scoped) and spec (stolen). */
static json_t *mk(const char *kind, const char *ns, const char *name, json_t *spec)
{
    json_t *meta = json_pack("{s:s, s:s, s:s, s:i}", "name", name, "uid", "00000000-0000-4000-8000-000000000000",
                             "creationTimestamp", CREATED, "generation", 3);
    if (ns)
        json_object_set_new(meta, "namespace", json_string(ns));
    return json_pack("{s:s, s:s, s:o, s:o}", "apiVersion", "langop.io/v1alpha1", "kind", kind, "metadata", meta,
                     "spec", spec);
}

static void put_cluster(store_t *s, const char *name)
{
    put(s, "languageclusters", mk("LanguageCluster", NULL, name, json_object()));
}

static void put_model(store_t *s, const char *ns, const char *name)
{
    put(s, "languagemodels",
        mk("LanguageModel", ns, name, json_pack("{s:s, s:s, s:s}", "provider", "openai", "modelName", "gpt-4o",
                                                "timeout", "5m")));
}

static json_t *mk_tool(const char *ns, const char *name, const char *mode, int port)
{
    return mk("LanguageTool", ns, name,
              json_pack("{s:s, s:s, s:s, s:s, s:i}", "image", "ghcr.io/example/tool:1", "type", "mcp", "transport",
                        "streamable-http", "deploymentMode", mode, "port", port));
}

static void put_tool(store_t *s, const char *ns, const char *name)
{
    put(s, "languagetools", mk_tool(ns, name, "service", 8080));
}

static void put_persona(store_t *s, const char *ns, const char *name)
{
    put(s, "languagepersonas", mk("LanguagePersona", ns, name, json_pack("{s:s}", "tone", "friendly")));
}

/*
 * New LanguageAgent referencing models (comma-separated, in order), tools
 * (comma-separated) and persona (NULL: none).
 */
static json_t *mk_agent(const char *ns, const char *name, const char *models, const char *tools, const char *persona)
{
    json_t *spec = json_pack("{s:s, s:[], s:[]}", "image", "ghcr.io/example/agent:1", "models", "tools");
    const char *lists[2] = {models, tools};
    const char *keys[2] = {"models", "tools"};
    for (int l = 0; l < 2; l++) {
        char *copy = strdup(lists[l] ? lists[l] : ""), *save = NULL;
        for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save))
            json_array_append_new(json_object_get(spec, keys[l]), json_pack("{s:s}", "name", tok));
        free(copy);
    }
    if (persona)
        json_object_set_new(spec, "persona", json_string(persona));
    return mk("LanguageAgent", ns, name, spec);
}

/* ---- reading what derive produced ---- */

/* Derives the one object obj (borrowed, modified) of kind. */
static void derive_one(fx_store_t *f, const char *kind, json_t *obj)
{
    lo_err_t err = {0};
    json_t *one = json_pack("[O]", obj);
    int rc = derive_status(f->s, schema_kind_by_kind(kind), one, DOMAIN, &err);
    if (rc != 0)
        fail_msg("derive_status: %s", err.message);
    json_decref(one);
}

static json_t *status_field(const json_t *obj, const char *key)
{
    return json_object_get(json_object_get(obj, "status"), key);
}

static const char *status_str(const json_t *obj, const char *key)
{
    return json_string_value(status_field(obj, key));
}

/* The condition of type (borrowed) or NULL; fails if it appears more than once. */
static json_t *condition(const json_t *obj, const char *type)
{
    json_t *found = NULL, *c;
    size_t i;
    json_array_foreach(status_field(obj, "conditions"), i, c) {
        if (strcmp(json_string_value(json_object_get(c, "type")), type) == 0) {
            assert_null(found);
            found = c;
        }
    }
    return found;
}

static const char *cond_str(const json_t *obj, const char *key)
{
    json_t *c = condition(obj, "ReferencesResolved");
    assert_non_null(c);
    return json_string_value(json_object_get(c, key));
}

/* "a,b" of a string array, for comparing lists in one assert. Caller frees. */
static char *joined(const json_t *arr)
{
    char *out = strdup("");
    size_t i;
    json_t *v;
    assert_true(json_is_array(arr));
    json_array_foreach(arr, i, v) {
        char *next = lo_sprintf("%s%s%s", out, i ? "," : "", json_string_value(v));
        free(out);
        out = next;
    }
    return out;
}

static void assert_names(const json_t *arr, const char *want)
{
    char *got = joined(arr);
    assert_string_equal(got, want);
    free(got);
}

/* ---- LanguageCluster ---- */

static void test_cluster_counts_and_model_names(void **state)
{
    fx_store_t *f = *state;
    put_cluster(f->s, "c1");
    put_cluster(f->s, "empty");
    put_model(f->s, "c1", "zeta");
    put_model(f->s, "c1", "alpha");
    put_model(f->s, "c1", "mid");
    put_model(f->s, "other", "not-counted");
    put_tool(f->s, "c1", "web");
    put_persona(f->s, "c1", "p1");
    put_persona(f->s, "c1", "p2");
    put(f->s, "languageagents", mk_agent("c1", "a1", "alpha", NULL, NULL));
    put(f->s, "languageagents", mk_agent("c1", "a2", "alpha", NULL, NULL));
    put(f->s, "languageagents", mk_agent("other", "a3", "alpha", NULL, NULL));

    lo_err_t err = {0};
    json_t *objs = json_pack("[o, o]", mk("LanguageCluster", NULL, "c1", json_object()),
                             mk("LanguageCluster", NULL, "empty", json_object()));
    assert_int_equal(derive_status(f->s, schema_kind_by_kind("LanguageCluster"), objs, DOMAIN, &err), 0);

    json_t *c1 = json_array_get(objs, 0);
    assert_string_equal(status_str(c1, "gatewayEndpoint"), "http://gateway.c1.svc.cluster.local:8000");
    assert_names(status_field(c1, "models"), "alpha,mid,zeta");
    assert_int_equal(json_integer_value(status_field(c1, "modelCount")), 3);
    assert_int_equal(json_integer_value(status_field(c1, "agentCount")), 2);
    assert_int_equal(json_integer_value(status_field(c1, "toolCount")), 1);
    assert_int_equal(json_integer_value(status_field(c1, "personaCount")), 2);

    json_t *empty = json_array_get(objs, 1);
    assert_string_equal(status_str(empty, "gatewayEndpoint"), "http://gateway.empty.svc.cluster.local:8000");
    assert_names(status_field(empty, "models"), "");
    assert_int_equal(json_integer_value(status_field(empty, "modelCount")), 0);
    assert_int_equal(json_integer_value(status_field(empty, "agentCount")), 0);
    json_decref(objs);
}

/* ---- LanguageModel ---- */

static void test_model_gateway_endpoint(void **state)
{
    fx_store_t *f = *state;
    put_cluster(f->s, "c1");
    json_t *m = mk("LanguageModel", "c1", "m", json_pack("{s:s, s:s}", "provider", "openai", "modelName", "x"));
    derive_one(f, "LanguageModel", m);
    assert_string_equal(status_str(m, "gatewayEndpoint"), "http://gateway.c1.svc.cluster.local:8000");
    json_decref(m);

    /* No LanguageCluster owns the namespace: no endpoint, even a stale stored one. */
    json_t *orphan = mk("LanguageModel", "gone", "m", json_pack("{s:s}", "modelName", "x"));
    json_object_set_new(orphan, "status", json_pack("{s:s, s:s}", "phase", "Ready", "gatewayEndpoint", "http://stale"));
    derive_one(f, "LanguageModel", orphan);
    assert_null(status_field(orphan, "gatewayEndpoint"));
    assert_string_equal(status_str(orphan, "phase"), "Ready");
    json_decref(orphan);
}

/* ---- LanguageAgent ---- */

static void seed_c1(fx_store_t *f)
{
    put_cluster(f->s, "c1");
    put_model(f->s, "c1", "fast");
    put_model(f->s, "c1", "smart");
    put_tool(f->s, "c1", "web");
    put_tool(f->s, "c1", "files");
    put_persona(f->s, "c1", "helper");
}

static void test_agent_all_resolved(void **state)
{
    fx_store_t *f = *state;
    seed_c1(f);
    json_t *a = mk_agent("c1", "a", "smart,fast", "web,files", "helper");
    derive_one(f, "LanguageAgent", a);

    assert_string_equal(status_str(a, "modelEndpoint"), "http://gateway.c1.svc.cluster.local:8000");
    assert_names(status_field(a, "models"), "smart,fast"); /* the agent's order, not sorted */
    assert_string_equal(cond_str(a, "status"), "True");
    assert_string_equal(cond_str(a, "reason"), "AllReferencesResolved");
    assert_string_equal(cond_str(a, "lastTransitionTime"), CREATED);
    assert_int_equal(json_integer_value(json_object_get(condition(a, "ReferencesResolved"), "observedGeneration")),
                     3);
    json_decref(a);
}

static void test_agent_missing_references(void **state)
{
    fx_store_t *f = *state;
    seed_c1(f);

    /* Every kind missing: the model wins the reason; the message names all. */
    json_t *a = mk_agent("c1", "a", "smart,ghost-model,fast", "web,ghost-tool", "ghost-persona");
    derive_one(f, "LanguageAgent", a);
    assert_string_equal(cond_str(a, "status"), "False");
    assert_string_equal(cond_str(a, "reason"), "ModelNotFound");
    const char *msg = cond_str(a, "message");
    assert_non_null(strstr(msg, "ghost-model"));
    assert_non_null(strstr(msg, "ghost-tool"));
    assert_non_null(strstr(msg, "ghost-persona"));
    assert_null(strstr(msg, "smart"));
    assert_names(status_field(a, "models"), "smart,fast");
    json_decref(a);

    json_t *t = mk_agent("c1", "t", "fast", "web,ghost-tool,other-ghost", "ghost-persona");
    derive_one(f, "LanguageAgent", t);
    assert_string_equal(cond_str(t, "reason"), "ToolNotFound");
    assert_non_null(strstr(cond_str(t, "message"), "ghost-tool"));
    assert_non_null(strstr(cond_str(t, "message"), "other-ghost"));
    assert_names(status_field(t, "models"), "fast");
    json_decref(t);

    json_t *p = mk_agent("c1", "p", "fast", "web", "ghost-persona");
    derive_one(f, "LanguageAgent", p);
    assert_string_equal(cond_str(p, "status"), "False");
    assert_string_equal(cond_str(p, "reason"), "PersonaNotFound");
    assert_non_null(strstr(cond_str(p, "message"), "ghost-persona"));
    json_decref(p);
}

static void test_agent_without_cluster(void **state)
{
    fx_store_t *f = *state;
    put_model(f->s, "lonely", "fast");
    json_t *a = mk_agent("lonely", "a", "fast", NULL, NULL);
    derive_one(f, "LanguageAgent", a);
    assert_null(status_field(a, "modelEndpoint"));
    assert_names(status_field(a, "models"), "fast");
    assert_string_equal(cond_str(a, "status"), "True");
    json_decref(a);
}

static void test_existing_status_kept(void **state)
{
    fx_store_t *f = *state;
    seed_c1(f);
    json_t *a = mk_agent("c1", "a", "ghost", NULL, NULL);
    json_object_set_new(a, "status",
                        json_pack("{s:s, s:i, s:[{s:s, s:s, s:s}, {s:s, s:s, s:s}], s:s}", "phase", "Running",
                                  "observedGeneration", 2, "conditions", "type", "Ready", "status", "True", "reason",
                                  "Running", "type", "ReferencesResolved", "status", "True", "reason", "Stale",
                                  "modelEndpoint", "http://stale"));
    derive_one(f, "LanguageAgent", a);
    assert_string_equal(status_str(a, "phase"), "Running");
    assert_int_equal(json_integer_value(status_field(a, "observedGeneration")), 2);
    assert_string_equal(status_str(a, "modelEndpoint"), "http://gateway.c1.svc.cluster.local:8000");
    assert_int_equal(json_array_size(status_field(a, "conditions")), 2);
    assert_string_equal(json_string_value(json_object_get(condition(a, "Ready"), "reason")), "Running");
    assert_string_equal(cond_str(a, "status"), "False");
    assert_string_equal(cond_str(a, "reason"), "ModelNotFound");
    json_decref(a);

    json_t *c = mk("LanguageCluster", NULL, "c1", json_object());
    json_object_set_new(c, "status", json_pack("{s:s, s:b, s:i}", "phase", "Ready", "gatewayReady", 1, "modelCount",
                                               99));
    derive_one(f, "LanguageCluster", c);
    assert_string_equal(status_str(c, "phase"), "Ready");
    assert_true(json_is_true(status_field(c, "gatewayReady")));
    assert_int_equal(json_integer_value(status_field(c, "modelCount")), 2);
    json_decref(c);
}

static void test_two_namespaces_in_one_call(void **state)
{
    fx_store_t *f = *state;
    seed_c1(f);
    put_cluster(f->s, "c2");
    put_model(f->s, "c2", "smart");
    /* Interleaved on purpose: derive groups by namespace, the array keeps its order. */
    json_t *objs = json_pack("[o, o, o, o]", mk_agent("c2", "x", "smart,fast", NULL, NULL),
                             mk_agent("c1", "y", "smart,fast", NULL, NULL), mk_agent("c2", "z", "smart", NULL, NULL),
                             mk_agent("c1", "w", "fast", NULL, NULL));
    lo_err_t err = {0};
    assert_int_equal(derive_status(f->s, schema_kind_by_kind("LanguageAgent"), objs, DOMAIN, &err), 0);

    json_t *x = json_array_get(objs, 0), *y = json_array_get(objs, 1), *z = json_array_get(objs, 2),
           *w = json_array_get(objs, 3);
    assert_string_equal(json_string_value(json_object_get(json_object_get(x, "metadata"), "name")), "x");
    assert_string_equal(status_str(x, "modelEndpoint"), "http://gateway.c2.svc.cluster.local:8000");
    assert_string_equal(cond_str(x, "reason"), "ModelNotFound"); /* fast exists only in c1 */
    assert_names(status_field(x, "models"), "smart");
    assert_string_equal(status_str(y, "modelEndpoint"), "http://gateway.c1.svc.cluster.local:8000");
    assert_string_equal(cond_str(y, "status"), "True");
    assert_names(status_field(y, "models"), "smart,fast");
    assert_string_equal(cond_str(z, "status"), "True");
    assert_string_equal(cond_str(w, "status"), "True");
    json_decref(objs);
}

/* ---- LanguageTool ---- */

static void test_tool_endpoints(void **state)
{
    fx_store_t *f = *state;
    json_t *objs = json_pack("[o, o, o]", mk_tool("c1", "web", "service", 9000), mk_tool("c1", "fs", "sidecar", 8081),
                             mk("LanguageTool", "c2", "bare", json_pack("{s:s}", "image", "x")));
    lo_err_t err = {0};
    assert_int_equal(derive_status(f->s, schema_kind_by_kind("LanguageTool"), objs, "example.org", &err), 0);
    assert_string_equal(status_str(json_array_get(objs, 0), "endpoint"), "http://web.c1.svc.example.org:9000");
    assert_string_equal(status_str(json_array_get(objs, 1), "endpoint"), "http://localhost:8081");
    /* Defaults (service, 8080) hold even if admission did not fill them in. */
    assert_string_equal(status_str(json_array_get(objs, 2), "endpoint"), "http://bare.c2.svc.example.org:8080");
    json_decref(objs);
}

static void test_persona_has_no_derived_status(void **state)
{
    fx_store_t *f = *state;
    json_t *p = mk("LanguagePersona", "c1", "p", json_object());
    derive_one(f, "LanguagePersona", p);
    assert_null(json_object_get(p, "status"));
    json_decref(p);
}

/* ---- subresources ---- */

static void assert_config_shape(const json_t *o, const char *kind, const char *name, const char *ns)
{
    assert_string_equal(json_string_value(json_object_get(o, "apiVersion")), "langop.io/v1alpha1");
    assert_string_equal(json_string_value(json_object_get(o, "kind")), kind);
    json_t *meta = json_object_get(o, "metadata");
    assert_string_equal(json_string_value(json_object_get(meta, "name")), name);
    if (ns)
        assert_string_equal(json_string_value(json_object_get(meta, "namespace")), ns);
    else
        assert_null(json_object_get(meta, "namespace"));
    const char *rv = json_string_value(json_object_get(meta, "resourceVersion"));
    assert_non_null(rv);
    assert_true(strtoll(rv, NULL, 10) > 0);
    assert_true(json_is_string(json_object_get(o, "config")));
    assert_true(json_is_array(json_object_get(o, "env")));
    assert_true(json_is_array(json_object_get(o, "unresolved")));
    assert_int_equal(strlen(json_string_value(json_object_get(o, "hash"))), 64);
}

static void test_gateway_config_object(void **state)
{
    fx_store_t *f = *state;
    seed_c1(f);
    lo_err_t err = {0};
    json_t *o = NULL;
    assert_int_equal(derive_gateway_config(f->s, "c1", DOMAIN, &o, &err), 0);
    assert_config_shape(o, "GatewayConfig", "c1", NULL);
    const char *config = json_string_value(json_object_get(o, "config"));
    assert_non_null(strstr(config, "fast"));
    assert_non_null(strstr(config, "smart"));
    json_decref(o);

    o = (json_t *)1;
    assert_int_equal(derive_gateway_config(f->s, "nope", DOMAIN, &o, &err), -1);
    assert_null(o);
    assert_int_equal(err.code, 404);
    assert_string_equal(err.reason, "NotFound");
    assert_non_null(strstr(err.message, "languageclusters.langop.io \"nope\" not found"));
    lo_err_clear(&err);
}

static void test_agent_config_object(void **state)
{
    fx_store_t *f = *state;
    seed_c1(f);
    put(f->s, "languageagents", mk_agent("c1", "a", "smart,ghost", "web", NULL));
    lo_err_t err = {0};
    json_t *o = NULL;
    assert_int_equal(derive_agent_config(f->s, "c1", "a", DOMAIN, &o, &err), 0);
    assert_config_shape(o, "AgentConfig", "a", "c1");
    assert_non_null(strstr(json_string_value(json_object_get(o, "config")), "smart"));
    json_t *u = json_array_get(json_object_get(o, "unresolved"), 0);
    assert_string_equal(json_string_value(json_object_get(u, "name")), "ghost");
    json_decref(o);

    /* Same name in another namespace, and an absent name: both 404. */
    assert_int_equal(derive_agent_config(f->s, "c2", "a", DOMAIN, &o, &err), -1);
    assert_null(o);
    assert_int_equal(err.code, 404);
    assert_non_null(strstr(err.message, "languageagents.langop.io \"a\" not found"));
    lo_err_clear(&err);
    assert_int_equal(derive_agent_config(f->s, "c1", "b", DOMAIN, &o, &err), -1);
    assert_int_equal(err.code, 404);
    lo_err_clear(&err);
}

/* ---- scale: one pass per namespace ---- */

/* Derives each object of objects alone: what a per-object implementation would cost. Returns ms. */
static int64_t derive_one_by_one(fx_store_t *f, const json_t *objects)
{
    lo_err_t err = {0};
    size_t i;
    json_t *a;
    int64_t t0 = lo_now_ms();
    json_array_foreach(objects, i, a) {
        json_t *one = json_pack("[o]", json_deep_copy(a));
        assert_int_equal(derive_status(f->s, schema_kind_by_kind("LanguageAgent"), one, DOMAIN, &err), 0);
        json_decref(one);
    }
    return lo_now_ms() - t0;
}

/*
 * 1000 agents in a namespace with enough related objects that reading them
 * per agent would dominate: the list derives in one pass, far faster than
 * the same agents derived one at a time (which must read per agent).
 */
static void test_thousand_agents_one_pass(void **state)
{
    fx_store_t *f = *state;
    enum { AGENTS = 1000, EXTRA = 100 };
    seed_c1(f);
    for (int i = 0; i < EXTRA; i++) {
        char name[32];
        snprintf(name, sizeof(name), "extra-%03d", i);
        put_model(f->s, "c1", name);
        put_tool(f->s, "c1", name);
    }
    for (int i = 0; i < AGENTS; i++) {
        char name[32];
        snprintf(name, sizeof(name), "agent-%04d", i);
        put(f->s, "languageagents", mk_agent("c1", name, i % 2 ? "smart,fast" : "fast", "web", "helper"));
    }
    lo_err_t err = {0};
    store_list_opts_t opts = {.resource = "languageagents", .ns = "c1"};
    store_list_result_t res;
    assert_int_equal(store_list(f->s, &opts, &res, &err), STORE_OK);
    assert_int_equal(json_array_size(res.items), AGENTS);
    json_t *pristine = json_deep_copy(res.items);

    int64_t t0 = lo_now_ms();
    assert_int_equal(derive_status(f->s, schema_kind_by_kind("LanguageAgent"), res.items, DOMAIN, &err), 0);
    int64_t batch = lo_now_ms() - t0;
    size_t i;
    json_t *a;
    json_array_foreach(res.items, i, a) {
        assert_string_equal(cond_str(a, "status"), "True");
        assert_names(status_field(a, "models"), i % 2 ? "smart,fast" : "fast");
    }
    if (RUNNING_ON_VALGRIND) { /* timings mean nothing there; the pass above checks memory */
        print_message("under valgrind: %d agents in %" PRId64 " ms\n", AGENTS, batch);
    } else {
        int64_t single = derive_one_by_one(f, pristine);
        print_message("%d agents: one list %" PRId64 " ms, one by one %" PRId64 " ms\n", AGENTS, batch, single);
        assert_true(batch < 500);
        assert_true(batch * 3 < single);
    }
    json_decref(pristine);
    store_list_result_free(&res);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_cluster_counts_and_model_names, setup, teardown),
        cmocka_unit_test_setup_teardown(test_model_gateway_endpoint, setup, teardown),
        cmocka_unit_test_setup_teardown(test_agent_all_resolved, setup, teardown),
        cmocka_unit_test_setup_teardown(test_agent_missing_references, setup, teardown),
        cmocka_unit_test_setup_teardown(test_agent_without_cluster, setup, teardown),
        cmocka_unit_test_setup_teardown(test_existing_status_kept, setup, teardown),
        cmocka_unit_test_setup_teardown(test_two_namespaces_in_one_call, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tool_endpoints, setup, teardown),
        cmocka_unit_test_setup_teardown(test_persona_has_no_derived_status, setup, teardown),
        cmocka_unit_test_setup_teardown(test_gateway_config_object, setup, teardown),
        cmocka_unit_test_setup_teardown(test_agent_config_object, setup, teardown),
        cmocka_unit_test_setup_teardown(test_thousand_agents_one_pass, setup, teardown),
    };
    return cmocka_run_group_tests(tests, fx_registry_setup, fx_registry_teardown);
}
