/*
 * test_admission.c - the admission rules (apiserver/admission.c) against
 * langop/admission.h, run as the server runs them (apiserver/writes.c) on a
 * real store in a throw-away directory: every rule against a read snapshot
 * before the write is queued, then the policy rules once more in the
 * store's writer, as the write's check callback, atomically with it.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "fixtures.h"

#include "langop/schema/admission.h"
#include "langop/schema/schema.h"
#include "langop/storage/store.h"

/* ---- fixture: a fresh store per test; the schema registry per run ---- */

static int setup(void **state)
{
    *state = fx_store_open("test_admission");
    return *state ? 0 : -1;
}

static int teardown(void **state)
{
    fx_store_close(*state);
    return 0;
}

/* ---- objects ---- */

/* A new object of kind in ns (NULL: cluster-scoped) with the given spec (JSON text). */
static json_t *mk(const char *kind, const char *ns, const char *name, const char *spec)
{
    json_t *obj = json_pack("{s:s, s:s, s:{s:s}}", "apiVersion", SCHEMA_GROUP_VERSION, "kind", kind, "metadata",
                            "name", name);
    if (ns)
        json_object_set_new(json_object_get(obj, "metadata"), "namespace", json_string(ns));
    json_object_set_new(obj, "spec", fx_json(spec));
    return obj;
}

static json_t *mk_model(const char *ns, const char *name)
{
    return mk("LanguageModel", ns, name, "{\"provider\": \"openai\", \"modelName\": \"gpt-4o\"}");
}

/* ---- running admission as the server does ---- */

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

/* Every rule, against one read snapshot (the request's worker). */
static int admit_snapshot(fx_store_t *f, const schema_kind_t *k, admission_operation_t op, const json_t *old,
                          const json_t *obj, lo_err_t *err)
{
    lo_err_t e = {0};
    store_txn_t *snap = store_snapshot(f->s, &e);
    assert_non_null(snap);
    int rc = admission_check(snap, k, op, old, obj, err);
    store_snapshot_end(snap);
    return rc;
}

/* store_op_t.check of a create: the policy rules in the writer (ctx: the kind). */
static int policy_check(store_txn_t *txn, const json_t *obj, void *ctx, lo_err_t *err)
{
    return admission_check_writer(txn, ctx, ADMISSION_CREATE, NULL, obj, err);
}

/* The write the server queues once admitted: a create re-checked by policy_check, or an update. */
static store_op_t admitted_op(const schema_kind_t *k, admission_operation_t op, json_t *obj)
{
    store_op_t w = {.resource = k->plural, .ns = meta(obj, "namespace"), .name = meta(obj, "name"),
                    .kind = STORE_WRITE_PUT, .object = obj,
                    .expect_rv = op == ADMISSION_CREATE ? STORE_RV_ABSENT : STORE_RV_ANY};
    if (op == ADMISSION_CREATE) {
        w.check = policy_check;
        w.check_ctx = (void *)k;
    }
    return w;
}

/*
 * Runs admission for obj (borrowed) on a snapshot; when admitted and store
 * is 1, writes a copy with the writer's re-check. Returns 0 when admitted
 * (and stored), else the HTTP code in err.
 */
static int run(fx_store_t *f, admission_operation_t op, const json_t *obj, int store, lo_err_t *err)
{
    const schema_kind_t *k = kind_of(obj);
    json_t *old = NULL;
    if (op == ADMISSION_UPDATE &&
        store_get(f->s, k->plural, meta(obj, "namespace"), meta(obj, "name"), &old, NULL, NULL) != STORE_OK)
        old = NULL;
    int rc = admit_snapshot(f, k, op, old, obj, err);
    json_decref(old);
    if (rc != 0) {
        assert_true(err->code != 0);
        return err->code;
    }
    if (!store)
        return 0;
    json_t *copy = json_deep_copy(obj);
    store_op_t w = admitted_op(k, op, copy);
    rc = store_write(f->s, &w, 1);
    if (rc == STORE_ABORTED) { /* the writer's re-check refused: its error is the answer */
        *err = w.err;
        memset(&w.err, 0, sizeof(w.err));
    } else if (rc != STORE_OK) {
        fail_msg("store_write: rc %d: %s", rc, w.err.message);
    }
    store_op_clear(&w);
    json_decref(copy);
    if (rc == STORE_OK)
        return 0;
    assert_true(err->code != 0);
    return err->code;
}

/* Admission alone (nothing stored); the error is cleared unless the caller keeps it. */
static int check(fx_store_t *f, admission_operation_t op, json_t *obj_stolen)
{
    lo_err_t err = {0};
    int code = run(f, op, obj_stolen, 0, &err);
    lo_err_clear(&err);
    json_decref(obj_stolen);
    return code;
}

/* Stores obj (stolen) without admission, e.g. a LanguageCluster to admit against. */
static void put_raw(fx_store_t *f, const char *resource, json_t *obj)
{
    store_op_t w = {.resource = resource, .ns = meta(obj, "namespace"), .name = meta(obj, "name"),
                    .kind = STORE_WRITE_PUT, .object = obj, .expect_rv = STORE_RV_ANY};
    assert_int_equal(store_write(f->s, &w, 1), STORE_OK);
    store_op_clear(&w);
    json_decref(obj);
}

static void put_cluster(fx_store_t *f, const char *name, const char *spec)
{
    put_raw(f, "languageclusters", mk("LanguageCluster", NULL, name, spec));
}

static void delete_raw(fx_store_t *f, const char *resource, const char *ns, const char *name)
{
    store_op_t w = {.resource = resource, .ns = ns, .name = name, .kind = STORE_WRITE_DELETE,
                    .expect_rv = STORE_RV_ANY};
    assert_int_equal(store_write(f->s, &w, 1), STORE_OK);
    store_op_clear(&w);
}

static int64_t count_of(fx_store_t *f, const char *resource, const char *ns)
{
    lo_err_t err = {0};
    int64_t n = -1;
    store_txn_t *snap = store_snapshot(f->s, &err);
    assert_non_null(snap);
    assert_int_equal(store_txn_count(snap, resource, ns, &n, &err), STORE_OK);
    store_snapshot_end(snap);
    return n;
}

static size_t cause_count(const lo_err_t *err)
{
    return json_array_size(json_object_get(err->details, "causes"));
}

static const char *cause_str(const lo_err_t *err, size_t i, const char *key)
{
    return json_string_value(json_object_get(json_array_get(json_object_get(err->details, "causes"), i), key));
}

/* ================================================================== */
/* LanguageModel: exactly one of provider and litellmProvider          */
/* ================================================================== */

static void test_provider_choice(void **state)
{
    fx_store_t *f = *state;
    put_cluster(f, "team", "{}");
    assert_int_equal(check(f, ADMISSION_CREATE, mk("LanguageModel", "team", "m",
                                                   "{\"provider\": \"openai\", \"modelName\": \"gpt-4o\"}")), 0);
    assert_int_equal(check(f, ADMISSION_CREATE, mk("LanguageModel", "team", "m",
                                                   "{\"litellmProvider\": \"deepseek\", \"modelName\": \"x\"}")), 0);
    assert_int_equal(check(f, ADMISSION_UPDATE, mk("LanguageModel", "team", "m",
                                                   "{\"provider\": null, \"litellmProvider\": \"deepseek\", "
                                                   "\"modelName\": \"x\"}")), 0);

    static const char *const bad[] = {
        "{\"modelName\": \"x\"}",
        "{\"provider\": \"openai\", \"litellmProvider\": \"deepseek\", \"modelName\": \"x\"}",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        json_t *obj = mk("LanguageModel", "team", "m", bad[i]);
        lo_err_t err = {0};
        assert_int_equal(run(f, ADMISSION_CREATE, obj, 0, &err), 422);
        assert_string_equal(err.reason, "Invalid");
        assert_string_equal(err.message, "LanguageModel.langop.io \"m\" is invalid: spec: Invalid value: \"object\": "
                                         "set exactly one of provider or litellmProvider");
        assert_int_equal(cause_count(&err), 1);
        assert_string_equal(cause_str(&err, 0, "field"), "spec");
        assert_string_equal(cause_str(&err, 0, "reason"), "FieldValueInvalid");
        assert_string_equal(json_string_value(json_object_get(err.details, "kind")), "LanguageModel");
        lo_err_clear(&err);
        json_decref(obj);
    }
}

/* ================================================================== */
/* LanguageModel: no credentials in params                             */
/* ================================================================== */

static const char *const harmless_keys[] = {
    "max_tokens", "max_completion_tokens", "maxTokens", "temperature", "top_p", "api_base", "api_version",
    "input_cost_per_token", "output_cost_per_token", "bos_token", "eos_token", "tokenizer", "cache_key",
    "stream_timeout", "aws_region_name", "aws_role_name", "seed", "keyword", "monkey", "tokens",
};

static const char *const credential_keys[] = {
    "api_key", "API_KEY", "apiKey", "ApiKey", "x-api-key", "apikey", "aws_access_key_id", "aws_secret_access_key",
    "AWS_SECRET_ACCESS_KEY", "AWSSecretAccessKey", "aws_session_token", "aws_bearer_token_bedrock",
    "vertex_credentials", "azure_ad_token", "client_secret", "azure_client_secret", "password", "db_password",
    "token", "access_token", "accessToken", "secret", "private_key", "key", "Authorization",
};

static json_t *model_with_params(const char *params)
{
    char spec[512];
    snprintf(spec, sizeof(spec), "{\"provider\": \"openai\", \"modelName\": \"gpt-4o\", \"params\": %s}", params);
    return mk("LanguageModel", "team", "m", spec);
}

static void test_params_harmless_keys(void **state)
{
    fx_store_t *f = *state;
    put_cluster(f, "team", "{}");
    for (size_t i = 0; i < sizeof(harmless_keys) / sizeof(harmless_keys[0]); i++) {
        char params[128];
        snprintf(params, sizeof(params), "{\"%s\": 1}", harmless_keys[i]);
        if (check(f, ADMISSION_CREATE, model_with_params(params)) != 0)
            fail_msg("params key %s was refused", harmless_keys[i]);
    }
    /* nested values without credentials pass too */
    json_t *nested = model_with_params("{\"extra_headers\": {\"X-Trace\": \"1\"}, \"stop\": [\"a\", {\"b\": 1}]}");
    assert_int_equal(check(f, ADMISSION_CREATE, nested), 0);
}

static void test_params_credential_keys(void **state)
{
    fx_store_t *f = *state;
    put_cluster(f, "team", "{}");
    for (size_t i = 0; i < sizeof(credential_keys) / sizeof(credential_keys[0]); i++) {
        char params[128], field[128];
        snprintf(params, sizeof(params), "{\"%s\": \"sk-123\", \"temperature\": 0.2}", credential_keys[i]);
        snprintf(field, sizeof(field), "spec.params.%s", credential_keys[i]);
        json_t *obj = model_with_params(params);
        lo_err_t err = {0};
        if (run(f, ADMISSION_CREATE, obj, 0, &err) != 422)
            fail_msg("params key %s was admitted", credential_keys[i]);
        assert_int_equal(cause_count(&err), 1);
        assert_string_equal(cause_str(&err, 0, "field"), field);
        assert_string_equal(cause_str(&err, 0, "reason"), "FieldValueForbidden");
        assert_string_equal(cause_str(&err, 0, "message"),
                            "Forbidden: credentials must not be set in params: reference a Secret with "
                            "apiKeySecretRef or credentialsSecretRef");
        lo_err_clear(&err);
        json_decref(obj);
    }
}

static void test_params_nested_credentials(void **state)
{
    fx_store_t *f = *state;
    put_cluster(f, "team", "{}");
    json_t *obj = model_with_params("{\"extra_headers\": {\"Authorization\": \"Bearer x\"}, "
                                    "\"deployments\": [{\"name\": \"a\"}, {\"aws_secret_access_key\": \"y\"}]}");
    lo_err_t err = {0};
    assert_int_equal(run(f, ADMISSION_CREATE, obj, 0, &err), 422);
    assert_int_equal(cause_count(&err), 2);
    /* jansson keeps insertion order */
    assert_string_equal(cause_str(&err, 0, "field"), "spec.params.extra_headers.Authorization");
    assert_string_equal(cause_str(&err, 1, "field"), "spec.params.deployments[1].aws_secret_access_key");
    lo_err_clear(&err);
    json_decref(obj);
}

/* Every broken field has its own cause, all in one 422. */
static void test_causes_are_gathered(void **state)
{
    fx_store_t *f = *state;
    put_cluster(f, "team", "{}");
    json_t *obj = mk("LanguageModel", "team", "m",
                     "{\"provider\": \"openai\", \"litellmProvider\": \"x\", \"modelName\": \"x\", "
                     "\"params\": {\"api_key\": \"a\", \"password\": \"b\"}}");
    lo_err_t err = {0};
    assert_int_equal(run(f, ADMISSION_CREATE, obj, 0, &err), 422);
    assert_int_equal(cause_count(&err), 3);
    assert_string_equal(cause_str(&err, 0, "field"), "spec");
    assert_string_equal(cause_str(&err, 1, "field"), "spec.params.api_key");
    assert_string_equal(cause_str(&err, 2, "field"), "spec.params.password");
    assert_non_null(strstr(err.message, "LanguageModel.langop.io \"m\" is invalid: [spec: "));
    lo_err_clear(&err);
    json_decref(obj);
}

/* ================================================================== */
/* LanguageAgent: execution.schedule                                   */
/* ================================================================== */

static json_t *agent_with_execution(const char *execution)
{
    char spec[512];
    snprintf(spec, sizeof(spec), "{\"image\": \"agent:1\", \"execution\": %s}", execution);
    return mk("LanguageAgent", "team", "a", spec);
}

/* 0 if schedule is admitted for a task agent, else the HTTP code; the cause is checked on refusal. */
static int check_schedule(fx_store_t *f, const char *schedule)
{
    json_t *exec = json_pack("{s:s, s:s}", "mode", "task", "schedule", schedule);
    char *text = json_dumps(exec, JSON_COMPACT);
    json_t *obj = agent_with_execution(text);
    lo_err_t err = {0};
    int code = run(f, ADMISSION_CREATE, obj, 0, &err);
    if (code == 422) {
        assert_int_equal(cause_count(&err), 1);
        assert_string_equal(cause_str(&err, 0, "field"), "spec.execution.schedule");
        assert_string_equal(cause_str(&err, 0, "reason"), "FieldValueInvalid");
    }
    lo_err_clear(&err);
    json_decref(obj);
    free(text);
    json_decref(exec);
    return code;
}

static const char *const valid_schedules[] = {
    "0 * * * *", "*/5 * * * *", "0 9-17 * * MON-FRI", "0 0 1,15 * *", "30 2 * JAN,jul sun", "0 0 * * 0-6",
    "5-55/10 * * * *", "10/5 * * * *", "59 23 31 12 6", "0 0 ? * *", "  0 0 * * *  ", "0\t0 * * *",
    "0 0 * jan-dec/2 *", "1,2,3-5,*/20 * * * *", "@yearly", "@annually", "@monthly", "@weekly", "@daily",
    "@midnight", "@hourly", "CRON_TZ=Europe/Paris 0 9 * * *", "TZ=UTC @daily",
    "CRON_TZ=America/Port-au-Prince 0 0 * * *",
};

static const char *const invalid_schedules[] = {
    "", "   ", "* * * *", "0 0 * * * *", "60 * * * *", "* 24 * * *", "* * 0 * *", "* * 32 * *", "* * * 13 *",
    "* * * 0 *", "* * * * 7", "*/0 * * * *", "*/x * * * *", "*/ * * * *", "5-1 * * * *", "1-2-3 * * * *",
    "*/2/3 * * * *", "1,,2 * * * *", ",1 * * * *", "1, * * * *", "a * * * *", "* * * FOO *", "* * * * MON-XYZ",
    "* * * * JAN", "-1 * * * *", "*-5 * * * *", "99999999999 * * * *", "@every 1h", "@daily extra", "@reboot",
    "@", "CRON_TZ= 0 0 * * *", "TZ=Europe/Paris", "CRON_TZ=Bad;Zone 0 0 * * *", "0 0 * JAN-DEC/0 *",
};

static void test_schedule_syntax(void **state)
{
    fx_store_t *f = *state;
    put_cluster(f, "team", "{}");
    for (size_t i = 0; i < sizeof(valid_schedules) / sizeof(valid_schedules[0]); i++)
        if (check_schedule(f, valid_schedules[i]) != 0)
            fail_msg("schedule \"%s\" was refused", valid_schedules[i]);
    for (size_t i = 0; i < sizeof(invalid_schedules) / sizeof(invalid_schedules[0]); i++)
        if (check_schedule(f, invalid_schedules[i]) != 422)
            fail_msg("schedule \"%s\" was admitted", invalid_schedules[i]);
}

static void test_schedule_message(void **state)
{
    fx_store_t *f = *state;
    put_cluster(f, "team", "{}");
    json_t *obj = agent_with_execution("{\"mode\": \"task\", \"schedule\": \"0-60 * * * *\"}");
    lo_err_t err = {0};
    assert_int_equal(run(f, ADMISSION_CREATE, obj, 0, &err), 422);
    assert_string_equal(err.message, "LanguageAgent.langop.io \"a\" is invalid: spec.execution.schedule: "
                                     "Invalid value: \"0-60 * * * *\": "
                                     "end of range (60) above maximum (59) in minute field: 0-60");
    lo_err_clear(&err);
    json_decref(obj);

    obj = agent_with_execution("{\"mode\": \"task\", \"schedule\": \"0 0 * * * *\"}");
    assert_int_equal(run(f, ADMISSION_CREATE, obj, 0, &err), 422);
    assert_non_null(strstr(cause_str(&err, 0, "message"), "expected exactly 5 fields"));
    lo_err_clear(&err);
    json_decref(obj);
}

static void test_schedule_needs_task_mode(void **state)
{
    fx_store_t *f = *state;
    put_cluster(f, "team", "{}");
    static const char *const refused[] = {
        "{\"mode\": \"service\", \"schedule\": \"0 * * * *\"}",
        "{\"schedule\": \"0 * * * *\"}",  /* absent mode is service */
    };
    for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
        json_t *obj = agent_with_execution(refused[i]);
        lo_err_t err = {0};
        assert_int_equal(run(f, ADMISSION_UPDATE, obj, 0, &err), 422);
        assert_int_equal(cause_count(&err), 1);
        assert_string_equal(cause_str(&err, 0, "field"), "spec.execution.schedule");
        assert_string_equal(cause_str(&err, 0, "reason"), "FieldValueForbidden");
        assert_string_equal(cause_str(&err, 0, "message"), "Forbidden: schedule is only allowed with mode task");
        lo_err_clear(&err);
        json_decref(obj);
    }
    assert_int_equal(check(f, ADMISSION_CREATE, agent_with_execution("{\"mode\": \"service\"}")), 0);
    assert_int_equal(check(f, ADMISSION_CREATE, agent_with_execution("{\"mode\": \"task\"}")), 0);
    assert_int_equal(check(f, ADMISSION_CREATE, mk("LanguageAgent", "team", "a", "{\"image\": \"agent:1\"}")), 0);
    assert_int_equal(check(f, ADMISSION_CREATE,
                           agent_with_execution("{\"mode\": \"task\", \"schedule\": \"0 9 * * *\", "
                                                "\"timezone\": \"Europe/Paris\"}")),
                     0);
    /* a zone in the schedule and a timezone field would contradict each other */
    assert_int_equal(check(f, ADMISSION_CREATE,
                           agent_with_execution("{\"mode\": \"task\", \"schedule\": \"TZ=UTC 0 9 * * *\", "
                                                "\"timezone\": \"Europe/Paris\"}")),
                     422);
}

/* ================================================================== */
/* membership: a LanguageCluster owns the namespace of its name         */
/* ================================================================== */

static void test_membership(void **state)
{
    fx_store_t *f = *state;
    json_t *obj = mk_model("team", "m");
    lo_err_t err = {0};
    assert_int_equal(run(f, ADMISSION_CREATE, obj, 0, &err), 403);
    assert_string_equal(err.reason, "Forbidden");
    assert_string_equal(err.message, "languagemodels.langop.io \"m\" is forbidden: namespace \"team\" is not managed "
                                     "by a LanguageCluster: create LanguageCluster \"team\" first");
    assert_string_equal(json_string_value(json_object_get(err.details, "name")), "m");
    assert_string_equal(json_string_value(json_object_get(err.details, "group")), "langop.io");
    assert_string_equal(json_string_value(json_object_get(err.details, "kind")), "languagemodels");
    lo_err_clear(&err);

    /* every namespaced kind, each named by its resource */
    json_t *persona = mk("LanguagePersona", "team", "p", "{\"tone\": \"calm\"}");
    assert_int_equal(run(f, ADMISSION_CREATE, persona, 0, &err), 403);
    assert_non_null(strstr(err.message, "languagepersonas.langop.io \"p\" is forbidden: namespace \"team\""));
    lo_err_clear(&err);
    json_decref(persona);

    /* a cluster of another name does not help; the right one does */
    put_cluster(f, "other", "{}");
    assert_int_equal(check(f, ADMISSION_CREATE, json_incref(obj)), 403);
    put_cluster(f, "team", "{}");
    assert_int_equal(check(f, ADMISSION_CREATE, json_incref(obj)), 0);
    assert_int_equal(check(f, ADMISSION_CREATE, mk("LanguageTool", "team", "t", "{\"image\": \"tool:1\"}")), 0);
    json_decref(obj);

    /* cluster-scoped kinds are not members of anything */
    assert_int_equal(check(f, ADMISSION_CREATE, mk("LanguageCluster", NULL, "new", "{}")), 0);
}

static void test_membership_only_on_create(void **state)
{
    fx_store_t *f = *state;
    /* an object left behind by a deleted cluster can still be updated (e.g. to drop finalizers) */
    assert_int_equal(check(f, ADMISSION_UPDATE, mk_model("gone", "m")), 0);
}

static void test_terminating_cluster(void **state)
{
    fx_store_t *f = *state;
    json_t *cluster = mk("LanguageCluster", NULL, "team", "{}");
    json_object_set_new(json_object_get(cluster, "metadata"), "deletionTimestamp",
                        json_string("2025-01-02T03:04:05Z"));
    put_raw(f, "languageclusters", cluster);

    json_t *obj = mk_model("team", "m");
    lo_err_t err = {0};
    assert_int_equal(run(f, ADMISSION_CREATE, obj, 0, &err), 403);
    assert_string_equal(err.message, "languagemodels.langop.io \"m\" is forbidden: unable to create new content in "
                                     "namespace team because it is being terminated");
    assert_int_equal(cause_count(&err), 1);
    assert_string_equal(cause_str(&err, 0, "reason"), "NamespaceTerminating");
    assert_string_equal(cause_str(&err, 0, "field"), "metadata.namespace");
    lo_err_clear(&err);
    /* updates of existing members go on while the cluster finalizes */
    assert_int_equal(check(f, ADMISSION_UPDATE, json_incref(obj)), 0);
    json_decref(obj);
}

/* ================================================================== */
/* capacity                                                            */
/* ================================================================== */

static int create(fx_store_t *f, json_t *obj_stolen, lo_err_t *err)
{
    int code = run(f, ADMISSION_CREATE, obj_stolen, 1, err);
    json_decref(obj_stolen);
    return code;
}

static void test_capacity(void **state)
{
    fx_store_t *f = *state;
    lo_err_t err = {0};
    put_cluster(f, "team", "{\"capacity\": {\"maxModels\": 2, \"maxAgents\": 0}}");
    put_cluster(f, "other", "{\"capacity\": {\"maxModels\": 1}}");
    assert_int_equal(create(f, mk_model("other", "m0"), &err), 0);  /* other namespaces do not count */
    assert_int_equal(create(f, mk_model("team", "m1"), &err), 0);
    assert_int_equal(create(f, mk_model("team", "m2"), &err), 0);

    assert_int_equal(create(f, mk_model("team", "m3"), &err), 403);
    assert_string_equal(err.reason, "Forbidden");
    assert_string_equal(err.message, "languagemodels.langop.io \"m3\" is forbidden: exceeded capacity of "
                                     "LanguageCluster \"team\": maxModels=2, used 2");
    assert_string_equal(json_string_value(json_object_get(err.details, "kind")), "languagemodels");
    lo_err_clear(&err);

    /* updates of existing objects are not creates */
    assert_int_equal(check(f, ADMISSION_UPDATE, mk_model("team", "m1")), 0);
    /* an invalid object is answered 422 before the full cluster is */
    assert_int_equal(check(f, ADMISSION_CREATE, mk("LanguageModel", "team", "m4", "{\"modelName\": \"x\"}")), 422);

    /* a limit of 0 admits none; each kind has its own limit; unset means unlimited */
    assert_int_equal(create(f, mk("LanguageAgent", "team", "a", "{\"image\": \"agent:1\"}"), &err), 403);
    assert_non_null(strstr(err.message, "maxAgents=0, used 0"));
    lo_err_clear(&err);
    for (int i = 0; i < 4; i++) {
        char name[16];
        snprintf(name, sizeof(name), "t%d", i);
        assert_int_equal(create(f, mk("LanguageTool", "team", name, "{\"image\": \"tool:1\"}"), &err), 0);
    }
}

/* Raising the limit lets creates through again. */
static void test_capacity_raised(void **state)
{
    fx_store_t *f = *state;
    lo_err_t err = {0};
    put_cluster(f, "team", "{\"capacity\": {\"maxPersonas\": 1}}");
    assert_int_equal(create(f, mk("LanguagePersona", "team", "p1", "{}"), &err), 0);
    assert_int_equal(create(f, mk("LanguagePersona", "team", "p2", "{}"), &err), 403);
    assert_non_null(strstr(err.message, "maxPersonas=1, used 1"));
    lo_err_clear(&err);
    put_cluster(f, "team", "{\"capacity\": {\"maxPersonas\": 2}}");
    assert_int_equal(create(f, mk("LanguagePersona", "team", "p2", "{}"), &err), 0);
}

/*
 * Concurrent creates cannot overshoot: every racer passes the snapshot
 * check (none sees the others' creates), and the writer's re-check, counting
 * in the write's own transaction, refuses the ones beyond the limit.
 */
#define N_THREADS 8
#define MAX_MODELS 5

typedef struct racer {
    fx_store_t *f;
    pthread_barrier_t *checked;
    int id;
    int snapshot_code;   /* what the snapshot check answered */
    int code;            /* what the write answered: 0, the re-check's HTTP code, or -1 */
} racer_t;

static void *racer_main(void *arg)
{
    racer_t *r = arg;
    char name[16];
    snprintf(name, sizeof(name), "m%d", r->id);
    json_t *obj = mk_model("team", name);
    const schema_kind_t *k = schema_kind_by_kind("LanguageModel");
    lo_err_t err = {0};
    store_txn_t *snap = store_snapshot(r->f->s, &err); /* no cmocka assert off the main thread */
    if (snap == NULL)
        r->snapshot_code = -1;
    else
        r->snapshot_code = admission_check(snap, k, ADMISSION_CREATE, NULL, obj, &err) == 0 ? 0 : err.code;
    store_snapshot_end(snap);
    lo_err_clear(&err);
    pthread_barrier_wait(r->checked); /* everyone checked before anyone writes */
    store_op_t w = admitted_op(k, ADMISSION_CREATE, obj);
    int rc = store_write(r->f->s, &w, 1);
    r->code = rc == STORE_OK ? 0 : rc == STORE_ABORTED ? w.err.code : -1;
    store_op_clear(&w);
    json_decref(obj);
    return NULL;
}

static void test_capacity_concurrent(void **state)
{
    fx_store_t *f = *state;
    char spec[64];
    snprintf(spec, sizeof(spec), "{\"capacity\": {\"maxModels\": %d}}", MAX_MODELS);
    put_cluster(f, "team", spec);

    pthread_barrier_t checked;
    pthread_barrier_init(&checked, NULL, N_THREADS);
    racer_t racers[N_THREADS];
    pthread_t th[N_THREADS];
    for (int i = 0; i < N_THREADS; i++) {
        racers[i] = (racer_t){.f = f, .checked = &checked, .id = i, .snapshot_code = -2, .code = -2};
        assert_int_equal(pthread_create(&th[i], NULL, racer_main, &racers[i]), 0);
    }
    for (int i = 0; i < N_THREADS; i++)
        pthread_join(th[i], NULL);
    pthread_barrier_destroy(&checked);

    int admitted = 0, refused = 0;
    for (int i = 0; i < N_THREADS; i++) {
        assert_int_equal(racers[i].snapshot_code, 0); /* the early check alone would overshoot */
        if (racers[i].code == 0)
            admitted++;
        else if (racers[i].code == 403)
            refused++;
    }
    assert_int_equal(admitted, MAX_MODELS);
    assert_int_equal(refused, N_THREADS - MAX_MODELS);
    assert_int_equal(count_of(f, "languagemodels", "team"), MAX_MODELS);
}

/* In one batch of the writer, each re-check counts the creates before it. */
static void test_capacity_within_one_batch(void **state)
{
    fx_store_t *f = *state;
    put_cluster(f, "team", "{\"capacity\": {\"maxModels\": 2}}");
    const schema_kind_t *k = schema_kind_by_kind("LanguageModel");
    json_t *objs[4];
    store_op_t ops[4];
    for (int i = 0; i < 4; i++) {
        char name[16];
        snprintf(name, sizeof(name), "m%d", i);
        objs[i] = mk_model("team", name);
        ops[i] = admitted_op(k, ADMISSION_CREATE, objs[i]);
    }
    assert_int_equal(store_write(f->s, ops, 4), STORE_OK); /* one submission: one transaction */
    assert_int_equal(ops[0].rc, STORE_OK);
    assert_int_equal(ops[1].rc, STORE_OK);
    assert_int_equal(ops[2].rc, STORE_ABORTED);
    assert_int_equal(ops[2].err.code, 403);
    assert_non_null(strstr(ops[2].err.message, "maxModels=2, used 2"));
    assert_int_equal(ops[3].rc, STORE_ABORTED);
    for (int i = 0; i < 4; i++) {
        store_op_clear(&ops[i]);
        json_decref(objs[i]);
    }
    assert_int_equal(count_of(f, "languagemodels", "team"), 2);
}

/* The writer's re-check is the policy alone: membership and capacity, not the field rules. */
static void test_policy_only(void **state)
{
    fx_store_t *f = *state;
    const schema_kind_t *k = schema_kind_by_kind("LanguageModel");
    json_t *invalid = mk("LanguageModel", "team", "m", "{\"modelName\": \"x\"}"); /* no provider */
    lo_err_t err = {0};

    /* an update has no policy to meet: nothing is read (no transaction needed), nothing refused */
    assert_int_equal(admission_check_writer(NULL, k, ADMISSION_UPDATE, NULL, invalid, &err), 0);
    /* a create without a cluster: membership refuses, whatever the fields */
    store_txn_t *snap = store_snapshot(f->s, &err);
    assert_non_null(snap);
    assert_int_equal(admission_check_writer(snap, k, ADMISSION_CREATE, NULL, invalid, &err), -1);
    assert_int_equal(err.code, 403);
    assert_non_null(strstr(err.message, "is not managed by a LanguageCluster"));
    lo_err_clear(&err);
    store_snapshot_end(snap);

    /* with one: the policy admits the object the field rules refuse */
    put_cluster(f, "team", "{}");
    snap = store_snapshot(f->s, &err);
    assert_non_null(snap);
    assert_int_equal(admission_check_writer(snap, k, ADMISSION_CREATE, NULL, invalid, &err), 0);
    assert_int_equal(admission_check(snap, k, ADMISSION_CREATE, NULL, invalid, &err), -1);
    assert_int_equal(err.code, 422);
    lo_err_clear(&err);
    store_snapshot_end(snap);
    json_decref(invalid);
}

/* A cluster deleted between the early check and the write: the writer's re-check refuses. */
static void test_membership_rechecked_in_writer(void **state)
{
    fx_store_t *f = *state;
    put_cluster(f, "team", "{}");
    const schema_kind_t *k = schema_kind_by_kind("LanguageModel");
    json_t *obj = mk_model("team", "m");
    lo_err_t err = {0};
    assert_int_equal(admit_snapshot(f, k, ADMISSION_CREATE, NULL, obj, &err), 0);
    delete_raw(f, "languageclusters", "", "team");
    store_op_t w = admitted_op(k, ADMISSION_CREATE, obj);
    assert_int_equal(store_write(f->s, &w, 1), STORE_ABORTED);
    assert_int_equal(w.err.code, 403);
    assert_non_null(strstr(w.err.message, "namespace \"team\" is not managed by a LanguageCluster"));
    store_op_clear(&w);
    json_decref(obj);
    assert_int_equal(count_of(f, "languagemodels", "team"), 0);
}

/* err is optional, as everywhere in the error channel. */
static void test_null_err(void **state)
{
    fx_store_t *f = *state;
    (void)f;
    json_t *obj = mk("LanguageModel", "team", "m", "{\"modelName\": \"x\"}");
    assert_int_equal(admission_check(NULL, schema_kind_by_kind("LanguageModel"), ADMISSION_UPDATE, NULL, obj, NULL),
                     -1);
    json_t *ok = mk_model("team", "m");
    assert_int_equal(admission_check(NULL, schema_kind_by_kind("LanguageModel"), ADMISSION_UPDATE, NULL, ok, NULL),
                     0);
    json_decref(obj);
    json_decref(ok);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_provider_choice, setup, teardown),
        cmocka_unit_test_setup_teardown(test_params_harmless_keys, setup, teardown),
        cmocka_unit_test_setup_teardown(test_params_credential_keys, setup, teardown),
        cmocka_unit_test_setup_teardown(test_params_nested_credentials, setup, teardown),
        cmocka_unit_test_setup_teardown(test_causes_are_gathered, setup, teardown),
        cmocka_unit_test_setup_teardown(test_schedule_syntax, setup, teardown),
        cmocka_unit_test_setup_teardown(test_schedule_message, setup, teardown),
        cmocka_unit_test_setup_teardown(test_schedule_needs_task_mode, setup, teardown),
        cmocka_unit_test_setup_teardown(test_membership, setup, teardown),
        cmocka_unit_test_setup_teardown(test_membership_only_on_create, setup, teardown),
        cmocka_unit_test_setup_teardown(test_terminating_cluster, setup, teardown),
        cmocka_unit_test_setup_teardown(test_capacity, setup, teardown),
        cmocka_unit_test_setup_teardown(test_capacity_raised, setup, teardown),
        cmocka_unit_test_setup_teardown(test_capacity_concurrent, setup, teardown),
        cmocka_unit_test_setup_teardown(test_capacity_within_one_batch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_policy_only, setup, teardown),
        cmocka_unit_test_setup_teardown(test_membership_rechecked_in_writer, setup, teardown),
        cmocka_unit_test_setup_teardown(test_null_err, setup, teardown),
    };
    return cmocka_run_group_tests(tests, fx_registry_setup, fx_registry_teardown);
}
