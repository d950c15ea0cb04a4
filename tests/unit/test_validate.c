/*
 * test_validate.c - the structural schema as a kubectl user meets it: which
 * objects are accepted, the 422 causes (field, reason, message in kube's
 * words), the unknown fields that are dropped and reported, and the defaults
 * that appear in the stored object. Small inline schemas cover every keyword;
 * the real kinds cover what the schema files in openapi/ promise.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <cmocka.h>

#include "fixtures.h"

#include "langop/core/status.h"
#include "langop/schema/schema.h"
#include "langop/schema/validate.h"

static const schema_kind_t *model_kind;
static const schema_kind_t *agent_kind;
static const schema_kind_t *tool_kind;
static const schema_kind_t *cluster_kind;

static int setup_registry(void **state)
{
    (void)state;
    if (fx_registry_setup(state) != 0)
        return -1;
    model_kind = schema_kind_by_kind("LanguageModel");
    agent_kind = schema_kind_by_kind("LanguageAgent");
    tool_kind = schema_kind_by_kind("LanguageTool");
    cluster_kind = schema_kind_by_kind("LanguageCluster");
    if (!model_kind || !agent_kind || !tool_kind || !cluster_kind) {
        print_error("registry lacks a kind\n");
        return -1;
    }
    return 0;
}

/* A kind whose openAPIV3Schema is the given tree (borrowed). */
static schema_kind_t fake_kind(const json_t *schema)
{
    schema_kind_t k = { 0 };
    k.kind = "Widget";
    k.plural = "widgets";
    k.openapi_schema = schema;
    return k;
}

static size_t cause_count(const lo_err_t *err)
{
    return err->details ? json_array_size(json_object_get(err->details, "causes")) : 0;
}

static void assert_cause(const lo_err_t *err, size_t i, const char *field, const char *reason, const char *message)
{
    json_t *c = json_array_get(json_object_get(err->details, "causes"), i);
    assert_non_null(c);
    assert_string_equal(json_string_value(json_object_get(c, "field")), field);
    assert_string_equal(json_string_value(json_object_get(c, "reason")), reason);
    assert_string_equal(json_string_value(json_object_get(c, "message")), message);
}

/* ------------------------------------------------------------------------ */
/* Every keyword, on spec.x of a small schema                               */

typedef struct keyword_case {
    const char *schema;   /* the schema of spec.x */
    const char *value;    /* the JSON value of spec.x */
    const char *field;    /* expected cause field; NULL: the value is valid */
    const char *reason;
    const char *message;
} keyword_case_t;

#define OK(schema, value) { schema, value, NULL, NULL, NULL }

static const keyword_case_t keyword_cases[] = {
    /* type */
    OK("{\"type\":\"string\"}", "\"a\""),
    { "{\"type\":\"string\"}", "1", "spec.x", "FieldValueTypeInvalid",
      "Invalid value: \"integer\": spec.x in body must be of type string: \"integer\"" },
    OK("{\"type\":\"integer\"}", "3"),
    OK("{\"type\":\"integer\"}", "3.0"), /* kube takes a whole real as an integer */
    { "{\"type\":\"integer\"}", "1.5", "spec.x", "FieldValueTypeInvalid",
      "Invalid value: \"number\": spec.x in body must be of type integer: \"number\"" },
    { "{\"type\":\"integer\"}", "\"3\"", "spec.x", "FieldValueTypeInvalid",
      "Invalid value: \"string\": spec.x in body must be of type integer: \"string\"" },
    OK("{\"type\":\"number\"}", "1.5"),
    OK("{\"type\":\"number\"}", "2"),
    { "{\"type\":\"number\"}", "\"1.5\"", "spec.x", "FieldValueTypeInvalid",
      "Invalid value: \"string\": spec.x in body must be of type number: \"string\"" },
    OK("{\"type\":\"boolean\"}", "false"),
    { "{\"type\":\"boolean\"}", "\"true\"", "spec.x", "FieldValueTypeInvalid",
      "Invalid value: \"string\": spec.x in body must be of type boolean: \"string\"" },
    OK("{\"type\":\"object\"}", "{}"),
    { "{\"type\":\"object\"}", "[]", "spec.x", "FieldValueTypeInvalid",
      "Invalid value: \"array\": spec.x in body must be of type object: \"array\"" },
    OK("{\"type\":\"array\"}", "[]"),
    { "{\"type\":\"array\"}", "{}", "spec.x", "FieldValueTypeInvalid",
      "Invalid value: \"object\": spec.x in body must be of type array: \"object\"" },
    /* nullable */
    OK("{\"type\":\"string\",\"nullable\":true}", "null"),
    { "{\"type\":\"string\"}", "null", "spec.x", "FieldValueTypeInvalid",
      "Invalid value: \"null\": spec.x in body must be of type string: \"null\"" },
    /* x-kubernetes-int-or-string, with a pattern that applies to strings only */
    OK("{\"x-kubernetes-int-or-string\":true,\"pattern\":\"^[0-9]+%$\"}", "5"),
    OK("{\"x-kubernetes-int-or-string\":true,\"pattern\":\"^[0-9]+%$\"}", "\"50%\""),
    { "{\"x-kubernetes-int-or-string\":true,\"pattern\":\"^[0-9]+%$\"}", "\"half\"", "spec.x", "FieldValueInvalid",
      "Invalid value: \"half\": spec.x in body should match '^[0-9]+%$'" },
    { "{\"x-kubernetes-int-or-string\":true}", "true", "spec.x", "FieldValueTypeInvalid",
      "Invalid value: \"boolean\": spec.x in body must be of type integer,string: \"boolean\"" },
    /* enum */
    OK("{\"type\":\"string\",\"enum\":[\"a\",\"b\"]}", "\"b\""),
    { "{\"type\":\"string\",\"enum\":[\"a\",\"b\"]}", "\"c\"", "spec.x", "FieldValueNotSupported",
      "Unsupported value: \"c\": supported values: \"a\", \"b\"" },
    { "{\"type\":\"integer\",\"enum\":[1,2]}", "3", "spec.x", "FieldValueNotSupported",
      "Unsupported value: 3: supported values: \"1\", \"2\"" },
    /* pattern */
    OK("{\"type\":\"string\",\"pattern\":\"^[a-z]+$\"}", "\"abc\""),
    { "{\"type\":\"string\",\"pattern\":\"^[a-z]+$\"}", "\"ab1\"", "spec.x", "FieldValueInvalid",
      "Invalid value: \"ab1\": spec.x in body should match '^[a-z]+$'" },
    { "{\"type\":\"string\",\"pattern\":\"^[a-z]+$\"}", "\"abc\\ndef\"", "spec.x", "FieldValueInvalid",
      "Invalid value: \"abc\\ndef\": spec.x in body should match '^[a-z]+$'" },
    OK("{\"type\":\"string\",\"pattern\":\"b\"}", "\"abc\""), /* unanchored: found anywhere */
    /* minLength / maxLength, counted in characters */
    OK("{\"type\":\"string\",\"minLength\":2}", "\"ab\""),
    { "{\"type\":\"string\",\"minLength\":2}", "\"a\"", "spec.x", "FieldValueInvalid",
      "Invalid value: \"a\": spec.x in body should be at least 2 chars long" },
    OK("{\"type\":\"string\",\"maxLength\":2}", "\"\\u00b5\\u00b5\""), /* 4 bytes, 2 characters */
    { "{\"type\":\"string\",\"maxLength\":2}", "\"\\u00b5\\u00b5\\u00b5\"", "spec.x", "FieldValueTooLong",
      "Too long: may not be more than 2 bytes" },
    { "{\"type\":\"string\",\"maxLength\":1}", "\"ab\"", "spec.x", "FieldValueTooLong",
      "Too long: may not be more than 1 byte" },
    /* minimum / maximum, inclusive and exclusive */
    OK("{\"type\":\"integer\",\"minimum\":1}", "1"),
    { "{\"type\":\"integer\",\"minimum\":1}", "0", "spec.x", "FieldValueInvalid",
      "Invalid value: 0: spec.x in body should be greater than or equal to 1" },
    { "{\"type\":\"integer\",\"minimum\":1,\"exclusiveMinimum\":true}", "1", "spec.x", "FieldValueInvalid",
      "Invalid value: 1: spec.x in body should be greater than 1" },
    OK("{\"type\":\"integer\",\"maximum\":65535}", "65535"),
    { "{\"type\":\"integer\",\"maximum\":65535}", "65536", "spec.x", "FieldValueInvalid",
      "Invalid value: 65536: spec.x in body should be less than or equal to 65535" },
    { "{\"type\":\"integer\",\"maximum\":10,\"exclusiveMaximum\":true}", "10", "spec.x", "FieldValueInvalid",
      "Invalid value: 10: spec.x in body should be less than 10" },
    OK("{\"type\":\"number\",\"minimum\":0.5}", "0.5"),
    { "{\"type\":\"number\",\"minimum\":0.5}", "0.25", "spec.x", "FieldValueInvalid",
      "Invalid value: 0.25: spec.x in body should be greater than or equal to 0.5" },
    /* multipleOf */
    OK("{\"type\":\"integer\",\"multipleOf\":5}", "15"),
    { "{\"type\":\"integer\",\"multipleOf\":5}", "7", "spec.x", "FieldValueInvalid",
      "Invalid value: 7: spec.x in body should be a multiple of 5" },
    /* format */
    OK("{\"type\":\"integer\",\"format\":\"int32\"}", "2147483647"),
    { "{\"type\":\"integer\",\"format\":\"int32\"}", "2147483648", "spec.x", "FieldValueInvalid",
      "Invalid value: 2147483648: Checked value must be of type integer with format int32 in spec.x" },
    OK("{\"type\":\"string\",\"format\":\"date-time\"}", "\"2025-01-02T03:04:05Z\""),
    { "{\"type\":\"string\",\"format\":\"date-time\"}", "\"yesterday\"", "spec.x", "FieldValueTypeInvalid",
      "Invalid value: \"yesterday\": spec.x in body must be of type date-time: \"yesterday\"" },
    /* minItems / maxItems / uniqueItems */
    OK("{\"type\":\"array\",\"minItems\":1}", "[1]"),
    { "{\"type\":\"array\",\"minItems\":1}", "[]", "spec.x", "FieldValueInvalid",
      "Invalid value: 0: spec.x in body should have at least 1 items" },
    OK("{\"type\":\"array\",\"maxItems\":2}", "[1,2]"),
    { "{\"type\":\"array\",\"maxItems\":2}", "[1,2,3]", "spec.x", "FieldValueTooMany",
      "Too many: 3: must have at most 2 items" },
    OK("{\"type\":\"array\",\"uniqueItems\":true}", "[1,2]"),
    { "{\"type\":\"array\",\"uniqueItems\":true}", "[1,2,1]", "spec.x", "FieldValueInvalid",
      "Invalid value: \"\": spec.x in body shouldn't contain duplicates" },
    /* items */
    OK("{\"type\":\"array\",\"items\":{\"type\":\"integer\"}}", "[1,2]"),
    { "{\"type\":\"array\",\"items\":{\"type\":\"integer\"}}", "[1,\"a\"]", "spec.x[1]", "FieldValueTypeInvalid",
      "Invalid value: \"string\": spec.x[1] in body must be of type integer: \"string\"" },
    /* minProperties / maxProperties */
    OK("{\"type\":\"object\",\"minProperties\":1}", "{\"a\":1}"),
    { "{\"type\":\"object\",\"minProperties\":1}", "{}", "spec.x", "FieldValueInvalid",
      "Invalid value: 0: spec.x in body should have at least 1 properties" },
    OK("{\"type\":\"object\",\"maxProperties\":1}", "{\"a\":1}"),
    { "{\"type\":\"object\",\"maxProperties\":1}", "{\"a\":1,\"b\":2}", "spec.x", "FieldValueTooMany",
      "Too many: 2: must have at most 1 item" },
    /* properties, required */
    OK("{\"type\":\"object\",\"required\":[\"y\"],\"properties\":{\"y\":{\"type\":\"string\"}}}", "{\"y\":\"\"}"),
    { "{\"type\":\"object\",\"required\":[\"y\"],\"properties\":{\"y\":{\"type\":\"string\"}}}", "{}", "spec.x.y",
      "FieldValueRequired", "Required value" },
    { "{\"type\":\"object\",\"properties\":{\"y\":{\"type\":\"string\"}}}", "{\"y\":2}", "spec.x.y",
      "FieldValueTypeInvalid", "Invalid value: \"integer\": spec.x.y in body must be of type string: \"integer\"" },
    /* additionalProperties */
    OK("{\"type\":\"object\",\"additionalProperties\":{\"type\":\"string\"}}", "{\"a\":\"1\"}"),
    { "{\"type\":\"object\",\"additionalProperties\":{\"type\":\"string\"}}", "{\"a\":\"1\",\"b\":2}", "spec.x.b",
      "FieldValueTypeInvalid", "Invalid value: \"integer\": spec.x.b in body must be of type string: \"integer\"" },
    /* x-kubernetes-list-type set */
    OK("{\"type\":\"array\",\"x-kubernetes-list-type\":\"set\",\"items\":{\"type\":\"string\"}}", "[\"a\",\"b\"]"),
    { "{\"type\":\"array\",\"x-kubernetes-list-type\":\"set\",\"items\":{\"type\":\"string\"}}", "[\"a\",\"b\",\"a\"]",
      "spec.x[2]", "FieldValueDuplicate", "Duplicate value: \"a\"" },
    OK("{\"type\":\"array\",\"x-kubernetes-list-type\":\"atomic\"}", "[\"a\",\"a\"]"),
    /* x-kubernetes-list-type map */
    OK("{\"type\":\"array\",\"x-kubernetes-list-type\":\"map\",\"x-kubernetes-list-map-keys\":[\"name\"]}",
       "[{\"name\":\"a\"},{\"name\":\"b\"}]"),
    { "{\"type\":\"array\",\"x-kubernetes-list-type\":\"map\",\"x-kubernetes-list-map-keys\":[\"name\"]}",
      "[{\"name\":\"a\",\"v\":1},{\"name\":\"a\",\"v\":2}]", "spec.x[1]", "FieldValueDuplicate",
      "Duplicate value: map[string]interface {}{\"name\":\"a\"}" },
    OK("{\"type\":\"array\",\"x-kubernetes-list-type\":\"map\",\"x-kubernetes-list-map-keys\":[\"name\",\"port\"]}",
       "[{\"name\":\"a\",\"port\":1},{\"name\":\"a\",\"port\":2}]"),
    { "{\"type\":\"array\",\"x-kubernetes-list-type\":\"map\",\"x-kubernetes-list-map-keys\":[\"port\",\"name\"]}",
      "[{\"name\":\"a\",\"port\":1},{\"port\":1,\"name\":\"a\"}]", "spec.x[1]", "FieldValueDuplicate",
      "Duplicate value: map[string]interface {}{\"name\":\"a\", \"port\":1}" },
    { "{\"type\":\"array\",\"x-kubernetes-list-type\":\"map\",\"x-kubernetes-list-map-keys\":[\"name\"]}",
      "[{\"name\":\"a\"},\"b\"]", "spec.x[1]", "FieldValueInvalid",
      "Invalid value: \"b\": must be an object for an array of list-type map" },
    /* patterns in the ECMA dialect of schemas */
    OK("{\"type\":\"string\",\"pattern\":\"^\\\\d+(\\\\.\\\\d+)?$\"}", "\"12.5\""),
    { "{\"type\":\"string\",\"pattern\":\"^\\\\d+$\"}", "\"12a\"", "spec.x", "FieldValueInvalid",
      "Invalid value: \"12a\": spec.x in body should match '^\\d+$'" },
    OK("{\"type\":\"string\",\"pattern\":\"^[\\\\w.\\\\-]+$\"}", "\"a-b.c_d\""),
    { "{\"type\":\"string\",\"pattern\":\"^[\\\\w.\\\\-]+$\"}", "\"a\\\\b\"", "spec.x", "FieldValueInvalid",
      "Invalid value: \"a\\\\b\": spec.x in body should match '^[\\w.\\-]+$'" },
    OK("{\"type\":\"string\",\"pattern\":\"^(?:ab)+?$\"}", "\"abab\""),
    { "{\"type\":\"string\",\"pattern\":\"^a(?=b)\"}", "\"ab\"", "spec.x", "FieldValueInvalid",
      "Invalid value: \"ab\": spec.x: the schema's pattern '^a(?=b)' cannot be evaluated" },
};

static json_t *keyword_schema(const char *x_schema)
{
    json_t *x = fx_json(x_schema);
    json_t *root = fx_json("{\"type\":\"object\",\"properties\":{\"metadata\":{\"type\":\"object\"},"
                         "\"spec\":{\"type\":\"object\",\"properties\":{}}}}");
    json_object_set_new(json_object_get(json_object_get(json_object_get(root, "properties"), "spec"), "properties"),
                        "x", x);
    return root;
}

static void test_keywords(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(keyword_cases) / sizeof(keyword_cases[0]); i++) {
        const keyword_case_t *tc = &keyword_cases[i];
        print_message("case %zu: %s with %s\n", i, tc->schema, tc->value);
        json_t *schema = keyword_schema(tc->schema);
        schema_kind_t k = fake_kind(schema);
        json_t *obj = fx_json("{\"metadata\":{\"name\":\"w\"},\"spec\":{}}");
        json_object_set_new(json_object_get(obj, "spec"), "x", fx_json(tc->value));
        lo_err_t err = { 0 };
        int rc = validate_object(&k, obj, &err);
        if (tc->field == NULL) {
            if (rc != 0)
                fail_msg("case %zu: unexpected error: %s", i, err.message);
        } else {
            assert_int_equal(rc, -1);
            assert_int_equal(err.code, 422);
            assert_string_equal(err.reason, "Invalid");
            assert_int_equal(cause_count(&err), 1);
            assert_cause(&err, 0, tc->field, tc->reason, tc->message);
        }
        lo_err_clear(&err);
        json_decref(obj);
        json_decref(schema);
    }
}

/* Every violation is reported, not just the first; the message is kube's one-liner. */
static void test_all_violations_reported(void **state)
{
    (void)state;
    json_t *schema = fx_json("{\"type\":\"object\",\"properties\":{\"metadata\":{\"type\":\"object\"},"
                           "\"spec\":{\"type\":\"object\",\"required\":[\"b\"],\"properties\":{"
                           "\"a\":{\"type\":\"integer\",\"minimum\":1},\"b\":{\"type\":\"string\"},"
                           "\"c\":{\"type\":\"array\",\"x-kubernetes-list-type\":\"set\",\"items\":{\"type\":\"string\","
                           "\"enum\":[\"x\",\"y\"]}}}}}}");
    schema_kind_t k = fake_kind(schema);
    json_t *obj = fx_json("{\"metadata\":{\"name\":\"w\"},\"spec\":{\"a\":0,\"c\":[\"x\",\"z\",\"x\",\"x\"]}}");
    lo_err_t err = { 0 };
    assert_int_equal(validate_object(&k, obj, &err), -1);
    assert_int_equal(cause_count(&err), 4);
    assert_cause(&err, 0, "spec.a", "FieldValueInvalid",
                 "Invalid value: 0: spec.a in body should be greater than or equal to 1");
    assert_cause(&err, 1, "spec.c[1]", "FieldValueNotSupported",
                 "Unsupported value: \"z\": supported values: \"x\", \"y\"");
    assert_cause(&err, 2, "spec.b", "FieldValueRequired", "Required value");
    /* a third "x" is not reported again: kube names the second appearance only */
    assert_cause(&err, 3, "spec.c[2]", "FieldValueDuplicate", "Duplicate value: \"x\"");
    assert_string_equal(err.message,
                        "Widget.langop.io \"w\" is invalid: [spec.a: Invalid value: 0: spec.a in body should be "
                        "greater than or equal to 1, spec.c[1]: Unsupported value: \"z\": supported values: \"x\", "
                        "\"y\", spec.b: Required value, spec.c[2]: Duplicate value: \"x\"]");
    json_t *details = err.details;
    assert_string_equal(json_string_value(json_object_get(details, "name")), "w");
    assert_string_equal(json_string_value(json_object_get(details, "kind")), "Widget");
    lo_err_clear(&err);
    /* a NULL err still gives the verdict */
    assert_int_equal(validate_object(&k, obj, NULL), -1);
    json_decref(obj);
    json_decref(schema);
}

/* ------------------------------------------------------------------------ */
/* The real kinds                                                           */

static json_t *model(const char *spec)
{
    char *text = lo_sprintf("{\"apiVersion\":\"langop.io/v1alpha1\",\"kind\":\"LanguageModel\","
                            "\"metadata\":{\"name\":\"m\",\"namespace\":\"team\",\"labels\":{\"a\":\"b\"}},"
                            "\"spec\":%s}",
                            spec);
    json_t *obj = fx_json(text);
    free(text);
    return obj;
}

/* Validates obj against k; expects exactly one cause, checked; frees obj. */
static void expect_one_cause(const schema_kind_t *k, json_t *obj, const char *field, const char *reason,
                             const char *message)
{
    lo_err_t err = { 0 };
    assert_int_equal(validate_object(k, obj, &err), -1);
    if (cause_count(&err) != 1)
        fail_msg("expected one cause, got: %s", err.message);
    assert_cause(&err, 0, field, reason, message);
    lo_err_clear(&err);
    json_decref(obj);
}

static void expect_valid(const schema_kind_t *k, json_t *obj)
{
    lo_err_t err = { 0 };
    if (validate_object(k, obj, &err) != 0)
        fail_msg("unexpected error: %s", err.message);
    lo_err_clear(&err);
    json_decref(obj);
}

static void test_model_valid(void **state)
{
    (void)state;
    expect_valid(model_kind, model("{\"provider\":\"openai\",\"modelName\":\"gpt-4o\",\"timeout\":\"90s\","
                                   "\"apiKeySecretRef\":{\"name\":\"k\",\"key\":\"api-key\"},"
                                   "\"params\":{\"anything\":{\"goes\":[1,2]}},\"fallbacks\":[\"a\",\"b-2\"],"
                                   "\"rateLimits\":{\"requestsPerMinute\":60}}"));
    expect_valid(model_kind, model("{\"litellmProvider\":\"hosted_vllm\",\"modelName\":\"m\",\"timeout\":\"5\\u00b5s\"}"));
}

static void test_model_provider_enum(void **state)
{
    (void)state;
    json_t *obj = model("{\"provider\":\"foo\",\"modelName\":\"x\"}");
    lo_err_t err = { 0 };
    assert_int_equal(validate_object(model_kind, obj, &err), -1);
    assert_int_equal(cause_count(&err), 1);
    const char *msg = "Unsupported value: \"foo\": supported values: \"openai\", \"anthropic\", \"openai-compatible\", "
                      "\"azure\", \"bedrock\", \"vertex\", \"gemini\", \"custom\"";
    assert_cause(&err, 0, "spec.provider", "FieldValueNotSupported", msg);
    char *whole = lo_sprintf("LanguageModel.langop.io \"m\" is invalid: spec.provider: %s", msg);
    assert_string_equal(err.message, whole);
    free(whole);
    lo_err_clear(&err);
    json_decref(obj);
}

static void test_model_fields(void **state)
{
    (void)state;
    expect_one_cause(model_kind, model("{\"provider\":\"openai\"}"), "spec.modelName", "FieldValueRequired",
                     "Required value");
    expect_one_cause(model_kind, model("{\"provider\":\"openai\",\"modelName\":\"x\",\"timeout\":\"5x\"}"),
                     "spec.timeout", "FieldValueInvalid",
                     "Invalid value: \"5x\": spec.timeout in body should match '^[0-9]+(ns|us|\xc2\xb5s|ms|s|m|h)$'");
    expect_one_cause(model_kind, model("{\"provider\":\"openai\",\"modelName\":\"x\",\"timeout\":\"5\\u00b5\"}"),
                     "spec.timeout", "FieldValueInvalid",
                     "Invalid value: \"5\xc2\xb5\": spec.timeout in body should match "
                     "'^[0-9]+(ns|us|\xc2\xb5s|ms|s|m|h)$'");
    expect_one_cause(model_kind, model("{\"litellmProvider\":\"Deep-Seek\",\"modelName\":\"x\"}"),
                     "spec.litellmProvider", "FieldValueInvalid",
                     "Invalid value: \"Deep-Seek\": spec.litellmProvider in body should match '^[a-z0-9_]+$'");
    expect_one_cause(model_kind, model("{\"provider\":\"openai\",\"modelName\":\"\"}"), "spec.modelName",
                     "FieldValueInvalid", "Invalid value: \"\": spec.modelName in body should be at least 1 chars long");
    expect_one_cause(model_kind, model("{\"provider\":\"openai\",\"modelName\":\"x\",\"fallbacks\":[\"a\",\"a\"]}"),
                     "spec.fallbacks[1]", "FieldValueDuplicate", "Duplicate value: \"a\"");
    expect_one_cause(model_kind,
                     model("{\"provider\":\"openai\",\"modelName\":\"x\",\"rateLimits\":{\"tokensPerMinute\":0}}"),
                     "spec.rateLimits.tokensPerMinute", "FieldValueInvalid",
                     "Invalid value: 0: spec.rateLimits.tokensPerMinute in body should be greater than or equal to 1");
    expect_one_cause(model_kind, model("{\"provider\":\"openai\",\"modelName\":\"x\",\"apiKeySecretRef\":{}}"),
                     "spec.apiKeySecretRef.name", "FieldValueRequired", "Required value");
    /* spec itself is required */
    expect_one_cause(model_kind, fx_json("{\"metadata\":{\"name\":\"m\"}}"), "spec", "FieldValueRequired",
                     "Required value");
}

static void test_model_status(void **state)
{
    (void)state;
    json_t *obj = model("{\"provider\":\"openai\",\"modelName\":\"x\"}");
    json_object_set_new(obj, "status", fx_json("{\"phase\":\"Ready\",\"observedGeneration\":3,\"conditions\":["
                                             "{\"type\":\"Ready\",\"status\":\"True\",\"reason\":\"Served\","
                                             "\"lastTransitionTime\":\"2025-01-02T03:04:05Z\"}]}"));
    expect_valid(model_kind, json_incref(obj));
    json_object_set_new(json_object_get(obj, "status"), "phase", json_string("Nope"));
    expect_one_cause(model_kind, obj, "status.phase", "FieldValueNotSupported",
                     "Unsupported value: \"Nope\": supported values: \"Pending\", \"Ready\", \"Failed\"");

    obj = model("{\"provider\":\"openai\",\"modelName\":\"x\"}");
    json_object_set_new(obj, "status", fx_json("{\"conditions\":["
                                             "{\"type\":\"Ready\",\"status\":\"True\",\"reason\":\"A\","
                                             "\"lastTransitionTime\":\"2025-01-02T03:04:05Z\"},"
                                             "{\"type\":\"Ready\",\"status\":\"False\",\"reason\":\"B\","
                                             "\"lastTransitionTime\":\"2025-01-02T03:04:05Z\"}]}"));
    expect_one_cause(model_kind, obj, "status.conditions[1]", "FieldValueDuplicate",
                     "Duplicate value: map[string]interface {}{\"type\":\"Ready\"}");
}

static json_t *agent(const char *spec)
{
    char *text = lo_sprintf("{\"apiVersion\":\"langop.io/v1alpha1\",\"kind\":\"LanguageAgent\","
                            "\"metadata\":{\"name\":\"a\"},\"spec\":%s}",
                            spec);
    json_t *obj = fx_json(text);
    free(text);
    return obj;
}

static void test_agent(void **state)
{
    (void)state;
    expect_valid(agent_kind, agent("{\"image\":\"i\",\"models\":[{\"name\":\"gpt\"},{\"name\":\"claude\",\"role\":"
                                   "\"reasoning\"}],\"tools\":[{\"name\":\"web\",\"enabled\":false}],"
                                   "\"ports\":[{\"name\":\"http\",\"port\":8080}],\"deployment\":{\"resources\":"
                                   "{\"limits\":{\"cpu\":\"500m\",\"memory\":\"1Gi\",\"gpu\":1},"
                                   "\"requests\":{\"cpu\":\"0.5\",\"memory\":\"1e3\"}}}}"));
    expect_one_cause(agent_kind, agent("{\"image\":\"i\",\"models\":[{\"name\":\"gpt\"},{\"name\":\"gpt\"}]}"),
                     "spec.models[1]", "FieldValueDuplicate",
                     "Duplicate value: map[string]interface {}{\"name\":\"gpt\"}");
    expect_one_cause(agent_kind, agent("{\"image\":\"i\",\"ports\":[{\"name\":\"http\",\"port\":0}]}"),
                     "spec.ports[0].port", "FieldValueInvalid",
                     "Invalid value: 0: spec.ports[0].port in body should be greater than or equal to 1");
    expect_one_cause(agent_kind, agent("{\"image\":\"i\",\"models\":[{\"name\":\"gpt\",\"role\":\"boss\"}]}"),
                     "spec.models[0].role", "FieldValueNotSupported",
                     "Unsupported value: \"boss\": supported values: \"primary\", \"fallback\", \"reasoning\", "
                     "\"tool-calling\", \"summarization\"");
    expect_one_cause(agent_kind, agent("{\"image\":\"i\",\"deployment\":{\"resources\":{\"limits\":{\"cpu\":\"lots\"}}}}"),
                     "spec.deployment.resources.limits.cpu", "FieldValueInvalid",
                     "Invalid value: \"lots\": spec.deployment.resources.limits.cpu in body should match "
                     "'^[+-]?(([0-9]+(\\.[0-9]*)?)|(\\.[0-9]+))(([KMGTPE]i)|[numkMGTPE]|([eE][+-]?(([0-9]+(\\.[0-9]*)?)"
                     "|(\\.[0-9]+))))?$'");
    expect_one_cause(agent_kind, agent("{\"image\":\"i\",\"deployment\":{\"env\":[{\"name\":\"1BAD\"}]}}"),
                     "spec.deployment.env[0].name", "FieldValueInvalid",
                     "Invalid value: \"1BAD\": spec.deployment.env[0].name in body should match "
                     "'^[-._a-zA-Z][-._a-zA-Z0-9]*$'");
    expect_one_cause(agent_kind, agent("{}"), "spec.image", "FieldValueRequired", "Required value");
}

static void test_cluster_metadata_name(void **state)
{
    (void)state;
    expect_valid(cluster_kind, fx_json("{\"metadata\":{\"name\":\"team-a\",\"labels\":{\"x\":\"y\"}},\"spec\":{}}"));
    expect_one_cause(cluster_kind, fx_json("{\"metadata\":{\"name\":\"Team_A\"},\"spec\":{}}"), "metadata.name",
                     "FieldValueInvalid",
                     "Invalid value: \"Team_A\": metadata.name in body should match '^[a-z0-9]([-a-z0-9]*[a-z0-9])?$'");
    char *long_name = lo_sprintf("{\"metadata\":{\"name\":\"%064d\"},\"spec\":{}}", 0);
    expect_one_cause(cluster_kind, fx_json(long_name), "metadata.name", "FieldValueTooLong",
                     "Too long: may not be more than 63 bytes");
    free(long_name);
}

/* Collects every "pattern" string under node into out. */
static void collect_patterns(const json_t *node, json_t *out)
{
    const char *key;
    json_t *v;
    size_t i;
    if (json_is_object(node)) {
        json_object_foreach((json_t *)node, key, v) {
            if (strcmp(key, "pattern") == 0 && json_is_string(v))
                json_array_append(out, v);
            else
                collect_patterns(v, out);
        }
    } else if (json_is_array(node)) {
        json_array_foreach((json_t *)node, i, v)
            collect_patterns(v, out);
    }
}

/* Every pattern of the schema files compiles: a value is judged, never "cannot be evaluated". */
static void test_every_schema_pattern_compiles(void **state)
{
    (void)state;
    json_t *patterns = json_array();
    for (size_t i = 0; i < schema_kind_count(); i++)
        collect_patterns(schema_kind_at(i)->openapi_schema, patterns);
    assert_true(json_array_size(patterns) >= 10);
    size_t i;
    json_t *p;
    json_array_foreach(patterns, i, p) {
        json_t *schema = keyword_schema("{\"type\":\"string\"}");
        json_t *x = json_object_get(json_object_get(json_object_get(json_object_get(schema, "properties"), "spec"),
                                                    "properties"), "x");
        json_object_set(x, "pattern", p);
        schema_kind_t k = fake_kind(schema);
        json_t *obj = fx_json("{\"spec\":{\"x\":\"a b\"}}");
        lo_err_t err = { 0 };
        if (validate_object(&k, obj, &err) != 0 && strstr(err.message, "cannot be evaluated"))
            fail_msg("pattern %s does not compile", json_string_value(p));
        lo_err_clear(&err);
        json_decref(obj);
        json_decref(schema);
    }
    json_decref(patterns);
}

/* The quantity pattern of resources accepts what kubectl users write, and only that. */
static void test_quantity_pattern(void **state)
{
    (void)state;
    static const char *const good[] = { "500m", "1Gi", "2", "0.5", ".5", "1e3", "+1", "128974848", "1E-3", NULL };
    static const char *const bad[] = { "1GB", "abc", "1.5.3", "-", "5 Gi", "1Gi ", NULL };
    for (size_t i = 0; good[i]; i++) {
        char *spec = lo_sprintf("{\"image\":\"i\",\"deployment\":{\"resources\":{\"requests\":{\"memory\":\"%s\"}}}}",
                                good[i]);
        print_message("quantity %s\n", good[i]);
        expect_valid(agent_kind, agent(spec));
        free(spec);
    }
    for (size_t i = 0; bad[i]; i++) {
        char *spec = lo_sprintf("{\"image\":\"i\",\"deployment\":{\"resources\":{\"requests\":{\"memory\":\"%s\"}}}}",
                                bad[i]);
        json_t *obj = agent(spec);
        lo_err_t err = { 0 };
        print_message("quantity %s\n", bad[i]);
        assert_int_equal(validate_object(agent_kind, obj, &err), -1);
        assert_int_equal(cause_count(&err), 1);
        json_t *c = json_array_get(json_object_get(err.details, "causes"), 0);
        assert_string_equal(json_string_value(json_object_get(c, "field")), "spec.deployment.resources.requests.memory");
        assert_string_equal(json_string_value(json_object_get(c, "reason")), "FieldValueInvalid");
        assert_non_null(strstr(json_string_value(json_object_get(c, "message")), "in body should match"));
        lo_err_clear(&err);
        json_decref(obj);
        free(spec);
    }
}

/* ------------------------------------------------------------------------ */
/* Pruning                                                                  */

static void assert_json_equal(const json_t *got, const char *want_text)
{
    json_t *want = fx_json(want_text);
    if (!json_equal((json_t *)got, want)) {
        char *g = json_dumps(got, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
        char *w = json_dumps(want, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
        print_error("got  %s\nwant %s\n", g, w);
        free(g);
        free(w);
        json_decref(want);
        fail();
    }
    json_decref(want);
}

static void test_prune_agent(void **state)
{
    (void)state;
    json_t *obj = fx_json("{\"apiVersion\":\"langop.io/v1alpha1\",\"kind\":\"LanguageAgent\",\"extra\":1,"
                        "\"metadata\":{\"name\":\"a\",\"labels\":{\"k\":\"v\"},\"color\":\"red\","
                        "\"ownerReferences\":[{\"apiVersion\":\"v1\",\"kind\":\"X\",\"name\":\"o\",\"uid\":\"u\","
                        "\"bogus\":true}]},"
                        "\"spec\":{\"image\":\"i\",\"foo\":{\"deep\":1},"
                        "\"models\":[{\"name\":\"gpt\",\"bar\":2}],"
                        "\"deployment\":{\"env\":[{\"name\":\"E\",\"valueFrom\":{\"secretKeyRef\":{\"name\":\"s\"}}}],"
                        "\"podAnnotations\":{\"a\":\"b\"}}},"
                        "\"status\":{\"phase\":\"Running\",\"mood\":\"good\"}}");
    json_t *unknown = json_array();
    validate_prune(agent_kind, obj, unknown);
    assert_json_equal(unknown, "[\"extra\",\"metadata.color\",\"metadata.ownerReferences[0].bogus\",\"spec.foo\","
                               "\"spec.models[0].bar\",\"status.mood\"]");
    assert_json_equal(obj, "{\"apiVersion\":\"langop.io/v1alpha1\",\"kind\":\"LanguageAgent\","
                           "\"metadata\":{\"name\":\"a\",\"labels\":{\"k\":\"v\"},"
                           "\"ownerReferences\":[{\"apiVersion\":\"v1\",\"kind\":\"X\",\"name\":\"o\",\"uid\":\"u\"}]},"
                           "\"spec\":{\"image\":\"i\",\"models\":[{\"name\":\"gpt\"}],"
                           "\"deployment\":{\"env\":[{\"name\":\"E\",\"valueFrom\":{\"secretKeyRef\":{\"name\":\"s\"}}}],"
                           "\"podAnnotations\":{\"a\":\"b\"}}},"
                           "\"status\":{\"phase\":\"Running\"}}");
    json_decref(unknown);
    json_decref(obj);
}

static void test_prune_keeps_preserved_and_known(void **state)
{
    (void)state;
    const char *text = "{\"apiVersion\":\"langop.io/v1alpha1\",\"kind\":\"LanguageModel\","
                       "\"metadata\":{\"name\":\"m\",\"namespace\":\"n\",\"uid\":\"u\",\"resourceVersion\":\"1\","
                       "\"generation\":1,\"creationTimestamp\":\"2025-01-02T03:04:05Z\",\"annotations\":{},"
                       "\"finalizers\":[],\"managedFields\":[{\"manager\":\"kubectl\",\"operation\":\"Update\","
                       "\"fieldsType\":\"FieldsV1\",\"fieldsV1\":{\"f:spec\":{}}}]},"
                       "\"spec\":{\"provider\":\"openai\",\"modelName\":\"x\",\"params\":{\"temperature\":0.2,"
                       "\"nested\":{\"any\":[1]}}}}";
    json_t *obj = fx_json(text);
    json_t *unknown = json_array();
    validate_prune(model_kind, obj, unknown);
    assert_int_equal(json_array_size(unknown), 0);
    assert_json_equal(obj, text);
    /* without a list to report to, unknown fields still go */
    json_object_set_new(json_object_get(obj, "spec"), "foo", json_true());
    validate_prune(model_kind, obj, NULL);
    assert_json_equal(obj, text);
    json_decref(unknown);
    json_decref(obj);
}

static void test_prune_inline(void **state)
{
    (void)state;
    json_t *schema = fx_json("{\"type\":\"object\",\"properties\":{\"spec\":{\"type\":\"object\",\"properties\":{"
                           "\"keep\":{\"type\":\"object\",\"x-kubernetes-preserve-unknown-fields\":true,"
                           "\"properties\":{\"inner\":{\"type\":\"object\",\"properties\":{\"a\":{\"type\":\"string\"}}}}},"
                           "\"map\":{\"type\":\"object\",\"additionalProperties\":{\"type\":\"object\",\"properties\":"
                           "{\"v\":{\"type\":\"integer\"}}}},"
                           "\"emb\":{\"type\":\"object\",\"x-kubernetes-embedded-resource\":true,\"properties\":{"
                           "\"spec\":{\"type\":\"object\"}}}}}}}");
    schema_kind_t k = fake_kind(schema);
    json_t *obj = fx_json("{\"spec\":{\"keep\":{\"free\":1,\"inner\":{\"a\":\"x\",\"b\":2}},"
                        "\"map\":{\"one\":{\"v\":1,\"w\":2}},"
                        "\"emb\":{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"name\":\"p\",\"zzz\":1},"
                        "\"spec\":{},\"other\":1}}}");
    json_t *unknown = json_array();
    validate_prune(&k, obj, unknown);
    assert_json_equal(unknown, "[\"spec.keep.inner.b\",\"spec.map.one.w\",\"spec.emb.metadata.zzz\","
                               "\"spec.emb.other\"]");
    assert_json_equal(obj, "{\"spec\":{\"keep\":{\"free\":1,\"inner\":{\"a\":\"x\"}},\"map\":{\"one\":{\"v\":1}},"
                           "\"emb\":{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"name\":\"p\"},"
                           "\"spec\":{}}}}");
    json_decref(unknown);
    json_decref(obj);
    json_decref(schema);
}

/* ------------------------------------------------------------------------ */
/* Defaulting                                                               */

static void test_default_model(void **state)
{
    (void)state;
    json_t *obj = model("{\"provider\":\"openai\",\"modelName\":\"x\",\"apiKeySecretRef\":{\"name\":\"s\"}}");
    validate_default(model_kind, obj);
    json_t *spec = json_object_get(obj, "spec");
    assert_string_equal(json_string_value(json_object_get(spec, "timeout")), "5m");
    assert_string_equal(json_string_value(json_object_get(json_object_get(spec, "apiKeySecretRef"), "key")),
                        "api-key");
    /* no object appears where the user wrote none */
    assert_null(json_object_get(spec, "rateLimits"));
    assert_null(json_object_get(spec, "credentialsSecretRef"));
    json_decref(obj);

    /* present values stay */
    obj = model("{\"provider\":\"openai\",\"modelName\":\"x\",\"timeout\":\"90s\","
                "\"apiKeySecretRef\":{\"name\":\"s\",\"key\":\"token\"}}");
    validate_default(model_kind, obj);
    spec = json_object_get(obj, "spec");
    assert_string_equal(json_string_value(json_object_get(spec, "timeout")), "90s");
    assert_string_equal(json_string_value(json_object_get(json_object_get(spec, "apiKeySecretRef"), "key")), "token");
    json_decref(obj);

    /* a null where a default exists becomes the default; a null without one goes */
    obj = model("{\"provider\":\"openai\",\"modelName\":\"x\",\"timeout\":null,\"endpoint\":null}");
    validate_default(model_kind, obj);
    spec = json_object_get(obj, "spec");
    assert_string_equal(json_string_value(json_object_get(spec, "timeout")), "5m");
    assert_null(json_object_get(spec, "endpoint"));
    expect_valid(model_kind, obj);
}

static void test_default_agent_and_tool(void **state)
{
    (void)state;
    json_t *obj = agent("{\"image\":\"i\",\"models\":[{\"name\":\"a\"},{\"name\":\"b\",\"role\":\"fallback\"}],"
                        "\"tools\":[{\"name\":\"t\"},{\"name\":\"u\",\"enabled\":false}],"
                        "\"execution\":{},\"ports\":[{\"name\":\"http\",\"port\":80}]}");
    validate_default(agent_kind, obj);
    assert_json_equal(json_object_get(obj, "spec"),
                      "{\"image\":\"i\",\"models\":[{\"name\":\"a\",\"role\":\"primary\"},"
                      "{\"name\":\"b\",\"role\":\"fallback\"}],"
                      "\"tools\":[{\"name\":\"t\",\"enabled\":true},{\"name\":\"u\",\"enabled\":false}],"
                      "\"execution\":{\"mode\":\"service\",\"concurrencyPolicy\":\"Forbid\"},"
                      "\"ports\":[{\"name\":\"http\",\"port\":80,\"protocol\":\"TCP\"}]}");
    expect_valid(agent_kind, obj);

    obj = fx_json("{\"metadata\":{\"name\":\"t\"},\"spec\":{\"image\":\"i\"}}");
    validate_default(tool_kind, obj);
    assert_json_equal(json_object_get(obj, "spec"), "{\"image\":\"i\",\"type\":\"mcp\",\"transport\":"
                                                    "\"streamable-http\",\"port\":8080,\"deploymentMode\":\"service\"}");
    assert_true(json_is_integer(json_object_get(json_object_get(obj, "spec"), "port")));
    expect_valid(tool_kind, obj);
}

static void test_default_inline(void **state)
{
    (void)state;
    json_t *schema = fx_json("{\"type\":\"object\",\"properties\":{\"spec\":{\"type\":\"object\",\"properties\":{"
                           "\"obj\":{\"type\":\"object\",\"default\":{\"given\":[1]},\"properties\":{"
                           "\"given\":{\"type\":\"array\"},\"b\":{\"type\":\"integer\",\"default\":7}}},"
                           "\"map\":{\"type\":\"object\",\"additionalProperties\":{\"type\":\"object\",\"properties\":{"
                           "\"v\":{\"type\":\"string\",\"default\":\"d\"}}}},"
                           "\"list\":{\"type\":\"array\",\"items\":{\"type\":\"string\",\"default\":\"item\"}},"
                           "\"maybe\":{\"type\":\"string\",\"nullable\":true,\"default\":\"m\"}}}}}");
    schema_kind_t k = fake_kind(schema);
    json_t *a = fx_json("{\"spec\":{\"map\":{\"x\":{},\"y\":{\"v\":\"set\"}},\"list\":[\"a\",null],\"maybe\":null}}");
    validate_default(&k, a);
    /* nested defaults apply inside the defaulted object; the nullable null stays */
    assert_json_equal(a, "{\"spec\":{\"obj\":{\"given\":[1],\"b\":7},\"map\":{\"x\":{\"v\":\"d\"},\"y\":{\"v\":\"set\"}},"
                         "\"list\":[\"a\",\"item\"],\"maybe\":null}}");
    /* the default is a copy: changing one object changes neither the schema nor the next object */
    json_array_append_new(json_object_get(json_object_get(json_object_get(a, "spec"), "obj"), "given"),
                          json_integer(2));
    json_t *b = fx_json("{\"spec\":{}}");
    validate_default(&k, b);
    assert_json_equal(json_object_get(json_object_get(b, "spec"), "obj"), "{\"given\":[1],\"b\":7}");
    json_t *spec_schema = json_object_get(json_object_get(schema, "properties"), "spec");
    assert_json_equal(json_object_get(json_object_get(json_object_get(spec_schema, "properties"), "obj"), "default"),
                      "{\"given\":[1]}");
    assert_int_equal(json_object_get(json_object_get(json_object_get(spec_schema, "properties"), "obj"),
                                     "default")->refcount, 1);
    json_decref(a);
    json_decref(b);
    json_decref(schema);
}

/* ------------------------------------------------------------------------ */
/* Concurrency: worker threads validate at once (run under helgrind too)    */

typedef struct worker {
    int id;
    int failures;
} worker_t;

static void *worker_main(void *arg)
{
    worker_t *w = arg;
    for (int i = 0; i < 50; i++) {
        /* each thread also brings a pattern of its own, so the cache grows while others read it */
        char *text = lo_sprintf("{\"type\":\"object\",\"properties\":{\"spec\":{\"type\":\"object\",\"properties\":"
                                "{\"x\":{\"type\":\"string\",\"pattern\":\"^t%d-[0-9]+$\"}}}}}", w->id * 100 + i % 5);
        json_t *schema = fx_json(text);
        free(text);
        schema_kind_t k = fake_kind(schema);
        char *value = lo_sprintf("{\"spec\":{\"x\":\"t%d-%d\"}}", w->id * 100 + i % 5, i);
        json_t *obj = fx_json(value);
        free(value);
        if (validate_object(&k, obj, NULL) != 0)
            w->failures++;
        json_decref(obj);
        json_decref(schema);

        json_t *m = model(i % 2 ? "{\"provider\":\"openai\",\"modelName\":\"x\",\"timeout\":\"5x\"}"
                                : "{\"provider\":\"openai\",\"modelName\":\"x\",\"timeout\":\"5s\"}");
        lo_err_t err = { 0 };
        int rc = validate_object(model_kind, m, &err);
        if (rc != (i % 2 ? -1 : 0))
            w->failures++;
        lo_err_clear(&err);
        validate_default(model_kind, m);
        json_decref(m);
    }
    return NULL;
}

static void test_concurrent_validation(void **state)
{
    (void)state;
    pthread_t threads[4];
    worker_t workers[4];
    for (int i = 0; i < 4; i++) {
        workers[i] = (worker_t){ .id = i, .failures = 0 };
        assert_int_equal(pthread_create(&threads[i], NULL, worker_main, &workers[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(threads[i], NULL);
        assert_int_equal(workers[i].failures, 0);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_keywords),
        cmocka_unit_test(test_all_violations_reported),
        cmocka_unit_test(test_model_valid),
        cmocka_unit_test(test_model_provider_enum),
        cmocka_unit_test(test_model_fields),
        cmocka_unit_test(test_model_status),
        cmocka_unit_test(test_agent),
        cmocka_unit_test(test_cluster_metadata_name),
        cmocka_unit_test(test_every_schema_pattern_compiles),
        cmocka_unit_test(test_quantity_pattern),
        cmocka_unit_test(test_prune_agent),
        cmocka_unit_test(test_prune_keeps_preserved_and_known),
        cmocka_unit_test(test_prune_inline),
        cmocka_unit_test(test_default_model),
        cmocka_unit_test(test_default_agent_and_tool),
        cmocka_unit_test(test_default_inline),
        cmocka_unit_test(test_concurrent_validation),
    };
    return cmocka_run_group_tests(tests, setup_registry, fx_registry_teardown);
}
