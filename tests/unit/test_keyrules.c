/*
 * test_keyrules.c - API keys never reach agents (apiserver/schema/keyrules.c
 * against langop/keyrules.h): the container env a user may set, the Secrets
 * an agent or tool may not share with a LanguageModel of its namespace in
 * either order of creation, on a real store, called directly and as the
 * server's writer runs them (admission_check_writer as a write's check,
 * atomically, also within one batch); and the agent env the renderer
 * hands the workload (render_agent_config): the server's seven, then
 * spec.deployment.env in order, copied.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "fixtures.h"

#include "langop/derive/render.h"
#include "langop/schema/admission.h"
#include "langop/schema/keyrules.h"
#include "langop/schema/schema.h"
#include "langop/storage/store.h"

static int setup(void **state)
{
    *state = fx_store_open("test_keyrules");
    return *state ? 0 : -1;
}

static int teardown(void **state)
{
    fx_store_close(*state);
    return 0;
}

/* ---- objects ---- */

/* JSON from test text that writes ' for " (so it has no apostrophes of its own). New reference. */
static json_t *tjson(const char *text)
{
    char *s = lo_strdup(text);
    for (char *p = s; *p; p++)
        if (*p == '\'')
            *p = '"';
    json_t *v = fx_json(s);
    free(s);
    return v;
}

/* A new object of kind in ns with the given spec (tjson text). */
static json_t *mk(const char *kind, const char *ns, const char *name, const char *spec)
{
    json_t *obj = json_pack("{s:s, s:s, s:{s:s, s:s}}", "apiVersion", SCHEMA_GROUP_VERSION, "kind", kind, "metadata",
                            "name", name, "namespace", ns);
    json_object_set_new(obj, "spec", tjson(spec));
    return obj;
}

/* An agent (or tool) whose spec.deployment.env is env (tjson text of the array). */
static json_t *mk_with_env(const char *kind, const char *ns, const char *name, const char *env)
{
    char *spec = lo_sprintf("{'image': 'ghcr.io/example/agent:1', 'deployment': {'env': %s}}", env);
    json_t *obj = mk(kind, ns, name, spec);
    free(spec);
    return obj;
}

static const char *meta(const json_t *obj, const char *key)
{
    const char *s = json_string_value(json_object_get(json_object_get(obj, "metadata"), key));
    return s ? s : "";
}

static const schema_kind_t *kind_of(const json_t *obj)
{
    const schema_kind_t *k = schema_kind_by_kind(json_string_value(json_object_get(obj, "kind")));
    assert_non_null(k);
    return k;
}

static const char *plural_of(const json_t *obj)
{
    return kind_of(obj)->plural;
}

/* Stores obj (stolen) without admission. */
static void put_raw(fx_store_t *f, json_t *obj)
{
    store_op_t w = {.resource = plural_of(obj), .ns = meta(obj, "namespace"), .name = meta(obj, "name"),
                    .kind = STORE_WRITE_PUT, .object = obj, .expect_rv = STORE_RV_ANY};
    assert_int_equal(store_write(f->s, &w, 1), STORE_OK);
    store_op_clear(&w);
    json_decref(obj);
}

static void put_cluster(fx_store_t *f, const char *name)
{
    json_t *c = json_pack("{s:s, s:s, s:{s:s}, s:{}}", "apiVersion", SCHEMA_GROUP_VERSION, "kind",
                          "LanguageCluster", "metadata", "name", name, "spec");
    store_op_t w = {.resource = "languageclusters", .ns = "", .name = name, .kind = STORE_WRITE_PUT, .object = c,
                    .expect_rv = STORE_RV_ANY};
    assert_int_equal(store_write(f->s, &w, 1), STORE_OK);
    store_op_clear(&w);
    json_decref(c);
}

/* ---- running one rule ---- */

/*
 * Runs rule on obj (borrowed) against a snapshot of f (f NULL: no store,
 * as on the worker's field-only pass). Returns the causes it added; err
 * keeps them (caller clears).
 */
static int run_rule(rule_fn rule, fx_store_t *f, admission_operation_t op, const json_t *obj, lo_err_t *err)
{
    store_txn_t *txn = NULL;
    if (f != NULL) {
        txn = store_snapshot(f->s, err);
        assert_non_null(txn);
    }
    rule_input_t in = {.txn = txn, .k = kind_of(obj), .op = op, .obj = obj, .name = meta(obj, "name"),
                       .ns = meta(obj, "namespace")};
    int causes = rule(&in, err);
    if (txn != NULL)
        store_snapshot_end(txn);
    assert_int_equal((size_t)causes, json_array_size(json_object_get(err->details, "causes")));
    return causes;
}

static const char *cause_str(const lo_err_t *err, size_t i, const char *key)
{
    return json_string_value(json_object_get(json_array_get(json_object_get(err->details, "causes"), i), key));
}

/* Cause i is FieldValueForbidden at field, with message "Forbidden: <why>". */
static void assert_forbidden(const lo_err_t *err, size_t i, const char *field, const char *why)
{
    assert_string_equal(cause_str(err, i, "reason"), "FieldValueForbidden");
    assert_string_equal(cause_str(err, i, "field"), field);
    char *msg = lo_sprintf("Forbidden: %s", why);
    assert_string_equal(cause_str(err, i, "message"), msg);
    free(msg);
}

/* The causes keyrules_container_env adds for obj (stolen). */
static int env_causes(json_t *obj_stolen, lo_err_t *err)
{
    int n = run_rule(keyrules_container_env, NULL, ADMISSION_CREATE, obj_stolen, err);
    json_decref(obj_stolen);
    return n;
}

/* ================================================================== */
/* the container env                                                   */
/* ================================================================== */

static void test_agent_server_vars(void **state)
{
    (void)state;
    lo_err_t err = {0};
    json_t *a = mk_with_env("LanguageAgent", "team", "bot",
                            "[{'name': 'MODEL_ENDPOINT', 'value': 'http://evil'}, {'name': 'LLM_MODEL'},"
                            " {'name': 'MCP_SERVERS', 'value': ''}, {'name': 'LOG_LEVEL', 'value': 'x'},"
                            " {'name': 'AGENT_NAME', 'value': 'a'}, {'name': 'AGENT_NAMESPACE'},"
                            " {'name': 'AGENT_UID', 'valueFrom': {'fieldRef': {'fieldPath': 'metadata.uid'}}},"
                            " {'name': 'AGENT_CLUSTER_NAME', 'value': 'c'}, {'name': 'model_endpoint'}]");
    assert_int_equal(env_causes(a, &err), 7);
    assert_forbidden(&err, 0, "spec.deployment.env[0].name",
                     "MODEL_ENDPOINT is set by the server (the gateway's address)");
    assert_forbidden(&err, 1, "spec.deployment.env[1].name", "LLM_MODEL is set by the server (the agent's models)");
    assert_forbidden(&err, 2, "spec.deployment.env[2].name", "MCP_SERVERS is set by the server (the agent's tools)");
    assert_forbidden(&err, 3, "spec.deployment.env[4].name", "AGENT_NAME is set by the server (the agent's name)");
    assert_forbidden(&err, 4, "spec.deployment.env[5].name",
                     "AGENT_NAMESPACE is set by the server (the agent's namespace)");
    assert_forbidden(&err, 5, "spec.deployment.env[6].name", "AGENT_UID is set by the server (the agent's uid)");
    assert_forbidden(&err, 6, "spec.deployment.env[7].name",
                     "AGENT_CLUSTER_NAME is set by the server (the LanguageCluster's name)");
    lo_err_clear(&err);
}

/* Every variable the renderer sets for an agent is one an agent may not set: the two lists agree. */
static void test_server_vars_are_the_rendered_ones(void **state)
{
    (void)state;
    json_t *agent = mk("LanguageAgent", "team", "bot", "{'image': 'i'}");
    json_t *none = json_array();
    render_result_t r;
    lo_err_t err = {0};
    assert_int_equal(render_agent_config(agent, NULL, "cluster.local", none, none, none, &r, &err), 0);
    assert_int_equal(json_array_size(r.env), 7);
    size_t i;
    json_t *entry;
    json_array_foreach(r.env, i, entry) {
        char *env = lo_sprintf("[{'name': '%s', 'value': 'v'}]", json_string_value(json_object_get(entry, "name")));
        lo_err_t e = {0};
        if (env_causes(mk_with_env("LanguageAgent", "team", "bot", env), &e) != 1)
            fail_msg("the server sets %s but an agent may set it too", env);
        lo_err_clear(&e);
        free(env);
    }
    render_result_free(&r);
    json_decref(none);
    json_decref(agent);
}

static void test_tool_reserved_vars(void **state)
{
    (void)state;
    lo_err_t err = {0};
    json_t *t = mk_with_env("LanguageTool", "team", "web",
                            "[{'name': 'AGENT_NAME', 'value': 'a'}, {'name': 'LLM_MODEL', 'value': 'm'},"
                            " {'name': 'MCP_SERVERS', 'value': 'x'}, {'name': 'MODEL_ENDPOINT', 'value': 'u'}]");
    assert_int_equal(env_causes(t, &err), 2);
    assert_forbidden(&err, 0, "spec.deployment.env[1].name",
                     "LLM_MODEL is reserved for the server (the agent's models)");
    assert_forbidden(&err, 1, "spec.deployment.env[3].name",
                     "MODEL_ENDPOINT is reserved for the server (the gateway's address)");
    lo_err_clear(&err);
}

/* The provider credential variables of the brief, in any case: a literal value is refused, for both kinds. */
static void test_credential_literals(void **state)
{
    (void)state;
    static const char *const names[] = {
        "OPENAI_API_KEY", "ANTHROPIC_API_KEY", "AZURE_API_KEY", "AZURE_OPENAI_API_KEY", "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_BEARER_TOKEN_BEDROCK", "GEMINI_API_KEY", "GOOGLE_API_KEY",
        "VERTEX_CREDENTIALS", "AZURE_CLIENT_SECRET", "COHERE_API_KEY", "MISTRAL_API_KEY", "GROQ_API_KEY",
        "DEEPSEEK_API_KEY", "OPENROUTER_API_KEY", "XAI_API_KEY", "HUGGINGFACE_API_KEY", "TOGETHERAI_API_KEY",
        "LITELLM_MASTER_KEY", "LITELLM_API_KEY", "openai_api_key", "Anthropic_Api_Key", NULL,
    };
    static const char *const kinds[] = {"LanguageAgent", "LanguageTool"};
    for (size_t k = 0; k < 2; k++) {
        for (int i = 0; names[i]; i++) {
            lo_err_t err = {0};
            char *env = lo_sprintf("[{'name': 'LOG_LEVEL', 'value': 'debug'}, {'name': '%s', 'value': "
                                   "'sk-live-0123456789'}]",
                                   names[i]);
            if (env_causes(mk_with_env(kinds[k], "team", "x", env), &err) != 1)
                fail_msg("%s: a literal %s is not refused", kinds[k], names[i]);
            char *why = lo_sprintf("%s is a provider credential; API keys stay in the gateway (reference a Secret "
                                   "with a LanguageModel's apiKeySecretRef)",
                                   names[i]);
            assert_forbidden(&err, 0, "spec.deployment.env[1].value", why);
            free(why);
            free(env);
            lo_err_clear(&err);
        }
    }
}

/* What the literal rule lets through: no value, an empty one, a Secret, a path, other names. */
static void test_credential_without_literal(void **state)
{
    (void)state;
    lo_err_t err = {0};
    json_t *a = mk_with_env(
        "LanguageAgent", "team", "bot",
        "[{'name': 'OPENAI_API_KEY'}, {'name': 'ANTHROPIC_API_KEY', 'value': ''},"
        " {'name': 'GROQ_API_KEY', 'valueFrom': {'secretKeyRef': {'name': 'mine', 'key': 'k'}}},"
        " {'name': 'GOOGLE_APPLICATION_CREDENTIALS', 'value': '/var/run/gcp/key.json'},"
        " {'name': 'OPENAI_BASE_URL', 'value': 'http://x'}, {'name': 'LOG_LEVEL', 'value': 'debug'}]");
    assert_int_equal(env_causes(a, &err), 0);
    /* no env, env not a list, entries without a name: the schema validator's cases, not a crash */
    assert_int_equal(env_causes(mk("LanguageAgent", "team", "bot", "{}"), &err), 0);
    assert_int_equal(env_causes(mk("LanguageAgent", "team", "bot", "{'deployment': {'env': {}}}"), &err), 0);
    assert_int_equal(env_causes(mk_with_env("LanguageAgent", "team", "bot", "[{'value': 'x'}, 7]"), &err), 0);
    /* a kind without a container env */
    assert_int_equal(env_causes(mk_with_env("LanguagePersona", "team", "p", "[{'name': 'MODEL_ENDPOINT'}]"), &err),
                     0);
    lo_err_clear(&err);
}

/* ================================================================== */
/* Secrets shared with a LanguageModel                                 */
/* ================================================================== */

/* Models of namespace team naming a Secret in each place a model can, and one elsewhere. */
static void put_models(fx_store_t *f)
{
    put_raw(f, mk("LanguageModel", "team", "gpt",
                  "{'provider': 'openai', 'modelName': 'gpt-4o', 'apiKeySecretRef': {'name': 'openai'}}"));
    put_raw(f, mk("LanguageModel", "team", "a-gpt",
                  "{'provider': 'openai', 'modelName': 'gpt-4o', 'apiKeySecretRef': {'name': 'openai'}}"));
    put_raw(f, mk("LanguageModel", "team", "br",
                  "{'provider': 'bedrock', 'modelName': 'm', 'credentialsSecretRef': {'name': 'aws'}}"));
    put_raw(f, mk("LanguageModel", "team", "up",
                  "{'provider': 'openai', 'modelName': 'm', 'upstreams': [{'apiKeySecretRef': {'name': "
                  "'primary'}}, {'credentialsSecretRef': {'name': 'backup'}}, {'litellmParams': {'api_key': "
                  "{'secretKeyRef': {'name': 'up-custom', 'key': 'k'}}}}]}"));
    put_raw(f, mk("LanguageModel", "team", "cust",
                  "{'provider': 'custom', 'modelName': 'm', 'litellmParams': {'api_key': {'secretKeyRef': "
                  "{'name': 'custom-key', 'key': 'k'}}, 'temperature': 0.2}}"));
    put_raw(f, mk("LanguageModel", "other", "gpt",
                  "{'provider': 'openai', 'modelName': 'gpt-4o', 'apiKeySecretRef': {'name': 'elsewhere'}}"));
}

static const char *const shared_env =
    "[{'name': 'SEARCH', 'valueFrom': {'secretKeyRef': {'name': 'search', 'key': 'k'}}},"
    " {'name': 'K1', 'valueFrom': {'secretKeyRef': {'name': 'openai', 'key': 'api-key'}}},"
    " {'name': 'K2', 'valueFrom': {'secretKeyRef': {'name': 'aws', 'key': 'AWS_SECRET_ACCESS_KEY'}}},"
    " {'name': 'K3', 'valueFrom': {'secretKeyRef': {'name': 'primary', 'key': 'k'}}},"
    " {'name': 'CM', 'valueFrom': {'configMapKeyRef': {'name': 'openai', 'key': 'k'}}},"
    " {'name': 'K4', 'valueFrom': {'secretKeyRef': {'name': 'backup', 'key': 'k'}}},"
    " {'name': 'K5', 'valueFrom': {'secretKeyRef': {'name': 'custom-key', 'key': 'k'}}},"
    " {'name': 'K6', 'valueFrom': {'secretKeyRef': {'name': 'elsewhere', 'key': 'k'}}},"
    " {'name': 'K7', 'valueFrom': {'secretKeyRef': {'name': 'up-custom', 'key': 'k'}}}]";

static void check_shared(fx_store_t *f, const char *kind, const char *holders)
{
    lo_err_t err = {0};
    json_t *obj = mk_with_env(kind, "team", "bot", shared_env);
    assert_int_equal(run_rule(keyrules_model_secrets, f, ADMISSION_CREATE, obj, &err), 6);
    static const struct {
        const char *field, *secret, *model;
    } want[] = {
        {"spec.deployment.env[1].valueFrom.secretKeyRef.name", "openai", "a-gpt"}, /* the first by name */
        {"spec.deployment.env[2].valueFrom.secretKeyRef.name", "aws", "br"},
        {"spec.deployment.env[3].valueFrom.secretKeyRef.name", "primary", "up"},
        {"spec.deployment.env[5].valueFrom.secretKeyRef.name", "backup", "up"},
        {"spec.deployment.env[6].valueFrom.secretKeyRef.name", "custom-key", "cust"},
        {"spec.deployment.env[8].valueFrom.secretKeyRef.name", "up-custom", "up"},
    };
    for (size_t i = 0; i < 6; i++) {
        char *why = lo_sprintf("Secret \"%s\" holds the key of LanguageModel \"%s\"; %s never hold API keys",
                               want[i].secret, want[i].model, holders);
        assert_forbidden(&err, i, want[i].field, why);
        free(why);
    }
    lo_err_clear(&err);
    /* the same on update; and nothing in another namespace */
    assert_int_equal(run_rule(keyrules_model_secrets, f, ADMISSION_UPDATE, obj, &err), 6);
    lo_err_clear(&err);
    json_object_set_new(json_object_get(obj, "metadata"), "namespace", json_string("third"));
    assert_int_equal(run_rule(keyrules_model_secrets, f, ADMISSION_CREATE, obj, &err), 0);
    json_decref(obj);
}

static void test_agent_reads_model_secret(void **state)
{
    put_models(*state);
    check_shared(*state, "LanguageAgent", "agents");
}

static void test_tool_reads_model_secret(void **state)
{
    put_models(*state);
    check_shared(*state, "LanguageTool", "tools");
}

/* The other direction: a model naming a Secret that an agent's or tool's env already reads. */
static void test_model_names_workload_secret(void **state)
{
    fx_store_t *f = *state;
    put_raw(f, mk_with_env("LanguageAgent", "team", "bot",
                           "[{'name': 'A', 'value': 'x'}, {'name': 'K', 'valueFrom': {'secretKeyRef': "
                           "{'name': 'shared', 'key': 'api-key'}}}]"));
    put_raw(f, mk_with_env("LanguageTool", "team", "web",
                           "[{'name': 'T', 'valueFrom': {'secretKeyRef': {'name': 'toolsec', 'key': 'k'}}},"
                           " {'name': 'S', 'valueFrom': {'secretKeyRef': {'name': 'shared', 'key': 'k'}}}]"));
    put_raw(f, mk_with_env("LanguageAgent", "other", "bot",
                           "[{'name': 'K', 'valueFrom': {'secretKeyRef': {'name': 'elsewhere', 'key': "
                           "'k'}}}]"));
    json_t *m = mk("LanguageModel", "team", "gpt",
                   "{'provider': 'custom', 'modelName': 'm', 'apiKeySecretRef': {'name': 'shared'},"
                   " 'credentialsSecretRef': {'name': 'toolsec'},"
                   " 'upstreams': [{'apiKeySecretRef': {'name': 'fine'}}, {'credentialsSecretRef': {'name': "
                   "'shared'}},"
                   " {'litellmParams': {'api_key': {'secretKeyRef': {'name': 'toolsec'}}}}],"
                   " 'litellmParams': {'api_key': {'secretKeyRef': {'name': 'toolsec', 'key': 'k'}},"
                   " 'vertex_credentials': {'secretKeyRef': {'name': 'elsewhere', 'key': 'k'}}}}");
    lo_err_t err = {0};
    assert_int_equal(run_rule(keyrules_model_secrets, f, ADMISSION_CREATE, m, &err), 5);
    const char *agent_why = "Secret \"shared\" is referenced by LanguageAgent \"bot\" "
                            "(spec.deployment.env[1].valueFrom.secretKeyRef.name); agents never hold API keys: give "
                            "the model a Secret of its own";
    const char *tool_why = "Secret \"toolsec\" is referenced by LanguageTool \"web\" "
                           "(spec.deployment.env[0].valueFrom.secretKeyRef.name); tools never hold API keys: give the "
                           "model a Secret of its own";
    assert_forbidden(&err, 0, "spec.apiKeySecretRef.name", agent_why); /* the agent before the tool */
    assert_forbidden(&err, 1, "spec.credentialsSecretRef.name", tool_why);
    assert_forbidden(&err, 2, "spec.litellmParams.api_key.secretKeyRef.name", tool_why);
    assert_forbidden(&err, 3, "spec.upstreams[1].credentialsSecretRef.name", agent_why);
    assert_forbidden(&err, 4, "spec.upstreams[2].litellmParams.api_key.secretKeyRef.name", tool_why);
    lo_err_clear(&err);
    assert_int_equal(run_rule(keyrules_model_secrets, f, ADMISSION_UPDATE, m, &err), 5);
    lo_err_clear(&err);
    json_decref(m);
}

/* envFrom is not in the schema (pruned before admission); were it let through, it would be checked. */
static void test_env_from(void **state)
{
    fx_store_t *f = *state;
    put_models(f);
    json_t *a = mk("LanguageAgent", "team", "bot",
                   "{'deployment': {'envFrom': [{'configMapRef': {'name': 'openai'}}, {'secretRef': "
                   "{'name': 'openai'}}]}}");
    lo_err_t err = {0};
    assert_int_equal(run_rule(keyrules_model_secrets, f, ADMISSION_CREATE, a, &err), 1);
    assert_forbidden(&err, 0, "spec.deployment.envFrom[1].secretRef.name",
                     "Secret \"openai\" holds the key of LanguageModel \"a-gpt\"; agents never hold API keys");
    lo_err_clear(&err);
    put_raw(f, a);
    json_t *m = mk("LanguageModel", "team", "new",
                   "{'provider': 'openai', 'modelName': 'm', 'apiKeySecretRef': {'name': 'openai'}}");
    assert_int_equal(run_rule(keyrules_model_secrets, f, ADMISSION_CREATE, m, &err), 1);
    assert_string_equal(cause_str(&err, 0, "field"), "spec.apiKeySecretRef.name");
    assert_non_null(strstr(cause_str(&err, 0, "message"), "(spec.deployment.envFrom[1].secretRef.name)"));
    lo_err_clear(&err);
    json_decref(m);
}

/* No store (the worker's field-only pass, a NULL txn) or no reference: nothing to read, nothing refused. */
static void test_nothing_to_read(void **state)
{
    fx_store_t *f = *state;
    put_models(f);
    lo_err_t err = {0};
    json_t *a = mk_with_env("LanguageAgent", "team", "bot", shared_env);
    assert_int_equal(run_rule(keyrules_model_secrets, NULL, ADMISSION_CREATE, a, &err), 0);
    json_t *m = mk("LanguageModel", "team", "gpt",
                   "{'provider': 'openai', 'modelName': 'm', 'apiKeySecretRef': {'name': 'openai'}}");
    assert_int_equal(run_rule(keyrules_model_secrets, NULL, ADMISSION_UPDATE, m, &err), 0);
    json_t *plain = mk_with_env("LanguageAgent", "team", "bot", "[{'name': 'A', 'value': 'openai'}]");
    assert_int_equal(run_rule(keyrules_model_secrets, f, ADMISSION_CREATE, plain, &err), 0);
    json_t *persona = mk("LanguagePersona", "team", "p", "{'apiKeySecretRef': {'name': 'openai'}}");
    assert_int_equal(run_rule(keyrules_model_secrets, f, ADMISSION_CREATE, persona, &err), 0);
    json_decref(a);
    json_decref(m);
    json_decref(plain);
    json_decref(persona);
}

/* ================================================================== */
/* as the server runs them                                             */
/* ================================================================== */

/* store_op_t.check as writes.c sets it: the writer's rules (ctx: the operation, cast). */
static int writer_check(store_txn_t *txn, const json_t *obj, void *ctx, lo_err_t *err)
{
    return admission_check_writer(txn, kind_of(obj), (admission_operation_t)(intptr_t)ctx, NULL, obj, err);
}

static store_op_t checked_op(json_t *obj, admission_operation_t op)
{
    return (store_op_t){.resource = plural_of(obj), .ns = meta(obj, "namespace"), .name = meta(obj, "name"),
                        .kind = STORE_WRITE_PUT, .object = obj,
                        .expect_rv = op == ADMISSION_CREATE ? STORE_RV_ABSENT : STORE_RV_ANY,
                        .check = writer_check, .check_ctx = (void *)(intptr_t)op};
}

/* Writes obj (borrowed) with the writer's re-check; returns the op's rc, the refusal in err. */
static int write_checked(fx_store_t *f, json_t *obj, admission_operation_t op, lo_err_t *err)
{
    store_op_t w = checked_op(obj, op);
    store_write(f->s, &w, 1);
    int rc = w.rc;
    *err = w.err;
    memset(&w.err, 0, sizeof(w.err));
    store_op_clear(&w);
    return rc;
}

static json_t *model_with_key(const char *name, const char *secret)
{
    char *spec = lo_sprintf("{'provider': 'openai', 'modelName': 'm', 'apiKeySecretRef': {'name': '%s'}}",
                            secret);
    json_t *m = mk("LanguageModel", "team", name, spec);
    free(spec);
    return m;
}

static json_t *agent_reading(const char *name, const char *secret)
{
    char *env = lo_sprintf("[{'name': 'K', 'valueFrom': {'secretKeyRef': {'name': '%s', 'key': 'k'}}}]",
                           secret);
    json_t *a = mk_with_env("LanguageAgent", "team", name, env);
    free(env);
    return a;
}

/* The writer refuses, 422 Invalid, whichever comes second; updates as well as creates. */
static void test_in_the_writer(void **state)
{
    fx_store_t *f = *state;
    put_cluster(f, "team");
    lo_err_t err = {0};
    json_t *m = model_with_key("gpt", "openai"), *a = agent_reading("bot", "openai");
    assert_int_equal(write_checked(f, m, ADMISSION_CREATE, &err), STORE_OK);
    assert_int_equal(write_checked(f, a, ADMISSION_CREATE, &err), STORE_ABORTED);
    assert_int_equal(err.code, 422);
    assert_string_equal(err.reason, "Invalid");
    assert_non_null(strstr(err.message, "\"bot\" is invalid"));
    assert_string_equal(cause_str(&err, 0, "field"), "spec.deployment.env[0].valueFrom.secretKeyRef.name");
    lo_err_clear(&err);

    /* an agent stored clean, then updated to read the key */
    json_t *clean = agent_reading("bot", "search");
    assert_int_equal(write_checked(f, clean, ADMISSION_CREATE, &err), STORE_OK);
    assert_int_equal(write_checked(f, a, ADMISSION_UPDATE, &err), STORE_ABORTED);
    assert_int_equal(err.code, 422);
    lo_err_clear(&err);

    /* and a model updated to the agent's Secret */
    json_t *m2 = model_with_key("gpt", "search");
    assert_int_equal(write_checked(f, m2, ADMISSION_UPDATE, &err), STORE_ABORTED);
    assert_int_equal(err.code, 422);
    assert_string_equal(cause_str(&err, 0, "field"), "spec.apiKeySecretRef.name");
    lo_err_clear(&err);
    json_decref(m);
    json_decref(a);
    json_decref(clean);
    json_decref(m2);
}

/* In one batch of the writer, each re-check sees the writes before it: no pair slips through together. */
static void test_within_one_batch(void **state)
{
    fx_store_t *f = *state;
    put_cluster(f, "team");
    json_t *objs[4] = {model_with_key("gpt", "k1"), agent_reading("bot", "k1"), agent_reading("bot2", "k2"),
                       model_with_key("gpt2", "k2")};
    store_op_t ops[4];
    for (int i = 0; i < 4; i++)
        ops[i] = checked_op(objs[i], ADMISSION_CREATE);
    assert_int_equal(store_write(f->s, ops, 4), STORE_OK); /* one submission: one transaction */
    assert_int_equal(ops[0].rc, STORE_OK);
    assert_int_equal(ops[1].rc, STORE_ABORTED);
    assert_int_equal(ops[1].err.code, 422);
    assert_int_equal(ops[2].rc, STORE_OK);
    assert_int_equal(ops[3].rc, STORE_ABORTED);
    assert_int_equal(ops[3].err.code, 422);
    for (int i = 0; i < 4; i++) {
        store_op_clear(&ops[i]);
        json_decref(objs[i]);
    }
}

/* The worker's full check (a field rule failed): field and cross causes in one 422, in table order. */
static void test_full_check_gathers_both(void **state)
{
    fx_store_t *f = *state;
    put_cluster(f, "team");
    put_raw(f, model_with_key("gpt", "openai"));
    json_t *a = mk_with_env("LanguageAgent", "team", "bot",
                            "[{'name': 'OPENAI_API_KEY', 'value': 'sk-live-1'},"
                            " {'name': 'K', 'valueFrom': {'secretKeyRef': {'name': 'openai', 'key': 'k'}}}]");
    lo_err_t err = {0};
    assert_int_equal(admission_check_fields(kind_of(a), ADMISSION_CREATE, NULL, a, &err), -1);
    assert_int_equal(err.code, 422);
    assert_int_equal(json_array_size(json_object_get(err.details, "causes")), 1);
    lo_err_clear(&err);
    store_txn_t *snap = store_snapshot(f->s, &err);
    assert_non_null(snap);
    assert_int_equal(admission_check(snap, kind_of(a), ADMISSION_CREATE, NULL, a, &err), -1);
    store_snapshot_end(snap);
    assert_int_equal(err.code, 422);
    assert_int_equal(json_array_size(json_object_get(err.details, "causes")), 2);
    assert_string_equal(cause_str(&err, 0, "field"), "spec.deployment.env[0].value");
    assert_string_equal(cause_str(&err, 1, "field"), "spec.deployment.env[1].valueFrom.secretKeyRef.name");
    lo_err_clear(&err);
    json_decref(a);
}

/* ================================================================== */
/* the env the agent container gets                                    */
/* ================================================================== */

static void test_rendered_env(void **state)
{
    (void)state;
    json_t *agent = mk_with_env("LanguageAgent", "team", "bot",
                                "[{'name': 'B', 'value': '2'}, {'name': 'MODEL_ENDPOINT', 'value': 'x'},"
                                " {'name': 'A', 'valueFrom': {'secretKeyRef': {'name': 's', 'key': 'k'}}},"
                                " {'name': 'E'}, {'name': 'B', 'value': '3'}]");
    json_t *none = json_array();
    render_result_t r;
    lo_err_t err = {0};
    assert_int_equal(render_agent_config(agent, NULL, "cluster.local", none, none, none, &r, &err), 0);
    json_t *want = tjson("[{'name': 'B', 'value': '2'},"
                           " {'name': 'A', 'valueFrom': {'secretKeyRef': {'name': 's', 'key': 'k'}}},"
                           " {'name': 'E'}, {'name': 'B', 'value': '3'}]");
    assert_int_equal(json_array_size(r.env), 7 + json_array_size(want));
    assert_string_equal(json_string_value(json_object_get(json_array_get(r.env, 0), "name")), "MODEL_ENDPOINT");
    assert_string_equal(json_string_value(json_object_get(json_array_get(r.env, 0), "value")),
                        "http://gateway.team.svc.cluster.local:8000");
    for (size_t i = 0; i < json_array_size(want); i++) {
        json_t *got = json_array_get(r.env, 7 + i);
        if (!json_equal(got, json_array_get(want, i)))
            fail_msg("env[%zu] is %s", 7 + i, json_dumps(got, JSON_COMPACT));
    }
    /* copies: the result owns its trees, the agent's stay untouched */
    json_t *user = json_object_get(json_array_get(json_object_get(json_object_get(json_object_get(agent, "spec"),
                                                                                  "deployment"), "env"), 2),
                                   "valueFrom");
    assert_ptr_not_equal(json_object_get(json_array_get(r.env, 8), "valueFrom"), user);
    render_result_free(&r);
    json_decref(want);
    json_decref(none);
    json_decref(agent);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_agent_server_vars),
        cmocka_unit_test(test_server_vars_are_the_rendered_ones),
        cmocka_unit_test(test_tool_reserved_vars),
        cmocka_unit_test(test_credential_literals),
        cmocka_unit_test(test_credential_without_literal),
        cmocka_unit_test_setup_teardown(test_agent_reads_model_secret, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tool_reads_model_secret, setup, teardown),
        cmocka_unit_test_setup_teardown(test_model_names_workload_secret, setup, teardown),
        cmocka_unit_test_setup_teardown(test_env_from, setup, teardown),
        cmocka_unit_test_setup_teardown(test_nothing_to_read, setup, teardown),
        cmocka_unit_test_setup_teardown(test_in_the_writer, setup, teardown),
        cmocka_unit_test_setup_teardown(test_within_one_batch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_full_check_gathers_both, setup, teardown),
        cmocka_unit_test(test_rendered_env),
    };
    return cmocka_run_group_tests(tests, fx_registry_setup, fx_registry_teardown);
}
