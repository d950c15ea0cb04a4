/*
 * test_modelrules.c - the admission rules of a LanguageModel's provider
 * config (apiserver/schema/modelrules.c), run through admission_check_fields
 * as the server's worker runs them: each case is a spec and the exact set
 * of causes (field and reason) the 422 must carry, and a valid spec must
 * carry none.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "fixtures.h"

#include "langop/schema/admission.h"
#include "langop/schema/schema.h"

typedef struct rule_case {
    const char *what;
    const char *spec;     /* JSON */
    const char *causes;   /* "field=Reason;field=Reason" sorted by field, "" when valid */
} rule_case_t;

static const rule_case_t cases[] = {
    {"a named provider with what it needs", "{\"provider\": \"azure\", \"modelName\": \"d\", \"endpoint\": "
     "\"https://x.openai.azure.com\", \"apiVersion\": \"2024-06-01\"}", ""},
    {"openai without endpoint: the public API is its default", "{\"provider\": \"openai\", \"modelName\": \"m\"}", ""},
    {"openai-compatible without endpoint", "{\"provider\": \"openai-compatible\", \"modelName\": \"m\"}",
     "spec.endpoint=FieldValueRequired"},
    {"azure without endpoint and apiVersion", "{\"provider\": \"azure\", \"modelName\": \"d\"}",
     "spec.apiVersion=FieldValueRequired;spec.endpoint=FieldValueRequired"},
    {"bedrock without region", "{\"provider\": \"bedrock\", \"modelName\": \"m\"}", "spec.region=FieldValueRequired"},
    {"vertex without project and location", "{\"provider\": \"vertex\", \"modelName\": \"m\"}",
     "spec.location=FieldValueRequired;spec.project=FieldValueRequired"},
    {"a litellmProvider needs nothing more", "{\"litellmProvider\": \"groq\", \"modelName\": \"m\"}", ""},
    {"endpoint of another scheme", "{\"provider\": \"openai\", \"modelName\": \"m\", \"endpoint\": \"file:///x\"}",
     "spec.endpoint=FieldValueInvalid"},
    {"endpoint with userinfo", "{\"provider\": \"openai\", \"modelName\": \"m\", \"endpoint\": "
     "\"https://k:v@api.example.com/v1\"}", "spec.endpoint=FieldValueForbidden"},
    {"endpoint with a space", "{\"provider\": \"openai\", \"modelName\": \"m\", \"endpoint\": "
     "\"https://a b/v1\"}", "spec.endpoint=FieldValueInvalid"},
    {"endpoint with a port only", "{\"provider\": \"openai\", \"modelName\": \"m\", \"endpoint\": \"http://:80\"}",
     "spec.endpoint=FieldValueInvalid"},
    {"endpoint upper-case scheme and IPv6 host", "{\"provider\": \"openai\", \"modelName\": \"m\", \"endpoint\": "
     "\"HTTPS://[::1]:8443/v1\"}", ""},
    {"custom, complete", "{\"provider\": \"custom\", \"modelName\": \"m\", \"litellmParams\": {\"model\": "
     "\"hosted_vllm/m\", \"api_base\": \"http://v:8000\", \"api_key\": {\"secretKeyRef\": {\"name\": \"s\", "
     "\"key\": \"k\"}}}}", ""},
    {"custom without litellmParams", "{\"provider\": \"custom\", \"modelName\": \"m\", \"endpoint\": \"http://v\"}",
     "spec.litellmParams=FieldValueRequired"},
    {"custom without model and endpoint", "{\"provider\": \"custom\", \"modelName\": \"m\", \"litellmParams\": {}}",
     "spec.endpoint=FieldValueRequired;spec.litellmParams.model=FieldValueRequired"},
    {"custom model without its provider", "{\"provider\": \"custom\", \"modelName\": \"m\", \"endpoint\": \"http://v\", "
     "\"litellmParams\": {\"model\": \"gpt-4o\"}}", "spec.litellmParams.model=FieldValueInvalid"},
    {"custom literal key and os.environ", "{\"provider\": \"custom\", \"modelName\": \"m\", \"endpoint\": \"http://v\", "
     "\"litellmParams\": {\"model\": \"a/b\", \"apiKey\": \"sk-1\", \"base\": \"os.environ/OTHER\"}}",
     "spec.litellmParams.apiKey=FieldValueForbidden;spec.litellmParams.base=FieldValueForbidden"},
    {"custom malformed and nested references", "{\"provider\": \"custom\", \"modelName\": \"m\", \"endpoint\": "
     "\"http://v\", \"litellmParams\": {\"model\": \"a/b\", \"x\": {\"secretKeyRef\": {\"name\": \"s\"}}, \"y\": "
     "{\"z\": {\"secretKeyRef\": {\"name\": \"s\", \"key\": \"k\"}}}}}",
     "spec.litellmParams.x=FieldValueInvalid;spec.litellmParams.y.z=FieldValueForbidden"},
    {"custom says it twice, and fields it does not read", "{\"provider\": \"custom\", \"modelName\": \"m\", "
     "\"endpoint\": \"http://v\", \"apiKeySecretRef\": {\"name\": \"s\"}, \"region\": \"r\", \"params\": {}, "
     "\"litellmParams\": {\"model\": \"a/b\", \"api_base\": \"http://w\", \"api_key\": {\"secretKeyRef\": "
     "{\"name\": \"s\", \"key\": \"k\"}}}}",
     "spec.apiKeySecretRef=FieldValueInvalid;spec.endpoint=FieldValueInvalid;spec.params=FieldValueForbidden;"
     "spec.region=FieldValueForbidden"},
    {"litellmParams on another provider", "{\"provider\": \"openai\", \"modelName\": \"m\", \"litellmParams\": {}}",
     "spec.litellmParams=FieldValueForbidden"},
    {"upstreams of a named provider", "{\"provider\": \"bedrock\", \"modelName\": \"m\", \"region\": \"a\", "
     "\"upstreams\": [{\"name\": \"w\", \"region\": \"b\"}, {\"name\": \"x\", \"endpoint\": \"http://u:p@h\", "
     "\"apiVersion\": \"1\", \"litellmParams\": {}}]}",
     "spec.upstreams[1].apiVersion=FieldValueForbidden;spec.upstreams[1].endpoint=FieldValueForbidden;"
     "spec.upstreams[1].litellmParams=FieldValueForbidden"},
    {"upstreams of custom", "{\"provider\": \"custom\", \"modelName\": \"m\", \"endpoint\": \"http://v\", "
     "\"litellmParams\": {\"model\": \"a/b\"}, \"upstreams\": [{\"name\": \"w\", \"litellmParams\": {\"model\": "
     "\"c/d\", \"token\": \"t\", \"api_base\": \"ftp://x\"}}]}",
     "spec.upstreams[0].litellmParams.api_base=FieldValueInvalid;spec.upstreams[0].litellmParams.model="
     "FieldValueForbidden;spec.upstreams[0].litellmParams.token=FieldValueForbidden"},
};

/* "field=Reason;..." of err's causes, sorted (caller frees). */
static char *causes_text(const lo_err_t *err)
{
    const json_t *causes = json_object_get(err->details, "causes");
    size_t n = json_array_size(causes);
    char **items = calloc(n ? n : 1, sizeof(*items));
    for (size_t i = 0; i < n; i++) {
        const json_t *c = json_array_get(causes, i);
        items[i] = lo_sprintf("%s=%s", json_string_value(json_object_get(c, "field")),
                              json_string_value(json_object_get(c, "reason")));
    }
    for (size_t i = 1; i < n; i++) /* insertion sort: a handful of causes */
        for (size_t j = i; j > 0 && strcmp(items[j - 1], items[j]) > 0; j--) {
            char *t = items[j];
            items[j] = items[j - 1];
            items[j - 1] = t;
        }
    char *text = lo_strdup("");
    for (size_t i = 0; i < n; i++) {
        char *next = lo_sprintf("%s%s%s", text, i ? ";" : "", items[i]);
        free(text);
        free(items[i]);
        text = next;
    }
    free(items);
    return text;
}

static void test_cases(void **state)
{
    (void)state;
    const schema_kind_t *k = schema_kind_by_kind("LanguageModel");
    assert_non_null(k);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        json_t *obj = json_pack("{s:s, s:s, s:{s:s, s:s}, s:o}", "apiVersion", SCHEMA_GROUP_VERSION, "kind",
                                "LanguageModel", "metadata", "name", "m", "namespace", "team", "spec",
                                fx_json(cases[i].spec));
        lo_err_t err = {0};
        int rc = admission_check_fields(k, ADMISSION_CREATE, NULL, obj, &err);
        char *got = rc == 0 ? lo_strdup("") : causes_text(&err);
        if (strcmp(got, cases[i].causes) != 0)
            fail_msg("%s: causes \"%s\", want \"%s\" (%s)", cases[i].what, got, cases[i].causes, err.message);
        if (rc != 0)
            assert_int_equal(err.code, 422);
        free(got);
        lo_err_clear(&err);
        json_decref(obj);
    }
}

/* A URL carrying a password is refused without the password reaching the answer. */
static void test_userinfo_not_echoed(void **state)
{
    (void)state;
    json_t *obj = json_pack("{s:s, s:s, s:{s:s, s:s}, s:o}", "apiVersion", SCHEMA_GROUP_VERSION, "kind",
                            "LanguageModel", "metadata", "name", "m", "namespace", "team", "spec",
                            fx_json("{\"provider\": \"openai-compatible\", \"modelName\": \"m\", \"endpoint\": "
                                    "\"https://admin:hunter2@models.local/v1\"}"));
    lo_err_t err = {0};
    assert_int_equal(admission_check_fields(schema_kind_by_kind("LanguageModel"), ADMISSION_CREATE, NULL, obj, &err),
                     -1);
    char *all = json_dumps(err.details, 0);
    assert_null(strstr(all, "hunter2"));
    assert_null(strstr(err.message, "hunter2"));
    free(all);
    lo_err_clear(&err);
    json_decref(obj);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cases),
        cmocka_unit_test(test_userinfo_not_echoed),
    };
    return cmocka_run_group_tests(tests, fx_registry_setup, fx_registry_teardown);
}
