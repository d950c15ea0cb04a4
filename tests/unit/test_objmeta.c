/*
 * test_objmeta.c - the ObjectMeta rules every kind shares, as a kubectl user
 * meets them: which names and labels are accepted, the 400 and 422 errors
 * and their wording, what the server sets or keeps on create, update,
 * status writes and delete.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <cmocka.h>

#include "fixtures.h"

#include "langop/core/status.h"
#include "langop/schema/objmeta.h"
#include "langop/schema/schema.h"

/* Set once by the group setup from the read-only registry; never written by tests. */
static const schema_kind_t *model_kind;   /* LanguageModel: namespaced, status subresource */
static const schema_kind_t *cluster_kind; /* LanguageCluster: cluster-scoped */

#define GENERATE_NAME_ALPHABET "bcdfghjklmnpqrstvwxz2456789"

static int setup_registry(void **state)
{
    (void)state;
    if (fx_registry_setup(state) != 0)
        return -1;
    model_kind = schema_kind_by_kind("LanguageModel");
    cluster_kind = schema_kind_by_kind("LanguageCluster");
    if (model_kind == NULL || cluster_kind == NULL || !model_kind->has_status || cluster_kind->namespaced) {
        print_error("registry lacks LanguageModel or LanguageCluster as expected\n");
        return -1;
    }
    return 0;
}

/* prefix + fill repeated n times + suffix; caller frees. */
static char *build(const char *prefix, char fill, size_t n, const char *suffix)
{
    size_t pl = strlen(prefix), sl = strlen(suffix);
    char *s = malloc(pl + n + sl + 1);
    assert_non_null(s);
    memcpy(s, prefix, pl);
    memset(s + pl, fill, n);
    memcpy(s + pl + n, suffix, sl + 1);
    return s;
}

/* "abcdefg." repeated, cut to n characters: dotted labels of 7, so no label is near 63. */
static char *dotted(size_t n)
{
    char *s = malloc(n + 1);
    assert_non_null(s);
    for (size_t i = 0; i < n; i++)
        s[i] = "abcdefg."[i % 8];
    s[n] = '\0';
    return s;
}

/* ---- names, qualified names, label values ---- */

typedef struct text_case {
    const char *prefix;
    char fill;
    size_t fill_len;
    const char *suffix;
    int want;
    const char *why;
} text_case_t;

/* Runs every case, reports each mismatch, then fails once if any did. */
static void run_text_cases(const char *what, int (*pred)(const char *), const text_case_t *cases, size_t n)
{
    int mismatches = 0;
    for (size_t i = 0; i < n; i++) {
        char *text = build(cases[i].prefix, cases[i].fill, cases[i].fill_len, cases[i].suffix);
        int got = pred(text);
        if (got != cases[i].want) {
            print_error("%s(\"%.40s%s\" [%zu chars]) = %d, want %d (%s)\n", what, text,
                        strlen(text) > 40 ? "..." : "", strlen(text), got, cases[i].want, cases[i].why);
            mismatches++;
        }
        free(text);
    }
    assert_int_equal(mismatches, 0);
}

static void test_valid_name(void **state)
{
    (void)state;
    static const text_case_t cases[] = {
        { "x", 0, 0, "", 1, "one character" },
        { "my-model", 0, 0, "", 1, "dash inside" },
        { "gpt-4o.openai", 0, 0, "", 1, "dots separate labels" },
        { "0abc9", 0, 0, "", 1, "digits at the ends" },
        { "a.b.c.d", 0, 0, "", 1, "one-character labels" },
        { "MyModel", 0, 0, "", 0, "uppercase" },
        { "my_model", 0, 0, "", 0, "underscore" },
        { "-model", 0, 0, "", 0, "leading dash" },
        { "model-", 0, 0, "", 0, "trailing dash" },
        { ".model", 0, 0, "", 0, "leading dot" },
        { "model.", 0, 0, "", 0, "trailing dot" },
        { "a..b", 0, 0, "", 0, "empty label" },
        { "a.-b", 0, 0, "", 0, "label starting with a dash" },
        { "my model", 0, 0, "", 0, "space" },
        { "a/b", 0, 0, "", 0, "slash" },
        { "", 0, 0, "", 0, "empty" },
        { "", 'a', 253, "", 1, "253 characters, the maximum" },
        { "", 'a', 254, "", 0, "254 characters" },
        { "", 'a', 64, "", 1, "a 64-character label: subdomain names limit only the total length" },
        { "my-", 'a', 120, "-model", 1, "a long name without dots" },
        { "a.", 'b', 251, "", 1, "253 characters with a dot" },
        { "a.", 'b', 252, "", 0, "254 characters with a dot" },
    };
    run_text_cases("objmeta_valid_name", objmeta_valid_name, cases, sizeof(cases) / sizeof(cases[0]));
    assert_int_equal(objmeta_valid_name(NULL), 0);
}

/* Dotted 253/254-character names: isolates the total limit from any per-label rule. */
static void test_valid_name_total_length(void **state)
{
    (void)state;
    char *s253 = dotted(253), *s254 = dotted(254);
    s254[253] = 'x'; /* must not end with '.' */
    s253[252] = 'x';
    int ok253 = objmeta_valid_name(s253), ok254 = objmeta_valid_name(s254);
    free(s253);
    free(s254);
    assert_int_equal(ok253, 1);
    assert_int_equal(ok254, 0);
}

static void test_valid_qualified_name(void **state)
{
    (void)state;
    static const text_case_t cases[] = {
        { "app", 0, 0, "", 1, "plain name" },
        { "MyName", 0, 0, "", 1, "uppercase is allowed in the name part" },
        { "my_name", 0, 0, "", 1, "underscore" },
        { "my.name", 0, 0, "", 1, "dot" },
        { "123-abc", 0, 0, "", 1, "digits" },
        { "app.kubernetes.io/name", 0, 0, "", 1, "prefixed" },
        { "langop.io/Managed_By", 0, 0, "", 1, "prefixed, mixed case name" },
        { "", 'a', 63, "", 1, "63-character name" },
        { "", 'a', 64, "", 0, "64-character name" },
        { "example.com/", 'a', 63, "", 1, "prefix + 63-character name" },
        { "example.com/", 'a', 64, "", 0, "prefix + 64-character name" },
        { "", 'a', 64, ".example.com/x", 1, "prefix with a 64-character label (a subdomain)" },
        { "", 0, 0, "", 0, "empty" },
        { "/name", 0, 0, "", 0, "empty prefix" },
        { "example.com/", 0, 0, "", 0, "empty name after prefix" },
        { "a/b/c", 0, 0, "", 0, "two slashes" },
        { "Example.com/name", 0, 0, "", 0, "uppercase prefix" },
        { "example_com/name", 0, 0, "", 0, "underscore in prefix" },
        { "-name", 0, 0, "", 0, "leading dash" },
        { "name_", 0, 0, "", 0, "trailing underscore" },
        { ".name", 0, 0, "", 0, "leading dot" },
        { "my name", 0, 0, "", 0, "space" },
        { "na:me", 0, 0, "", 0, "colon" },
    };
    run_text_cases("objmeta_valid_qualified_name", objmeta_valid_qualified_name, cases,
                   sizeof(cases) / sizeof(cases[0]));
    assert_int_equal(objmeta_valid_qualified_name(NULL), 0);
}

static void test_valid_label_value(void **state)
{
    (void)state;
    static const text_case_t cases[] = {
        { "", 0, 0, "", 1, "empty is valid" },
        { "v1", 0, 0, "", 1, "plain" },
        { "A_b.c-D", 0, 0, "", 1, "mixed case, underscore, dot, dash" },
        { "", 'a', 63, "", 1, "63 characters" },
        { "", 'a', 64, "", 0, "64 characters" },
        { "-a", 0, 0, "", 0, "leading dash" },
        { "a-", 0, 0, "", 0, "trailing dash" },
        { "_a", 0, 0, "", 0, "leading underscore" },
        { "a b", 0, 0, "", 0, "space" },
        { "a/b", 0, 0, "", 0, "slash" },
    };
    run_text_cases("objmeta_valid_label_value", objmeta_valid_label_value, cases, sizeof(cases) / sizeof(cases[0]));
    assert_int_equal(objmeta_valid_label_value(NULL), 0);
}

/* ---- envelope ---- */

static void test_envelope(void **state)
{
    (void)state;
    static const struct {
        const char *body;
        int ok;
        const char *message; /* exact, or NULL */
        const char *contains;
    } cases[] = {
        { "{\"apiVersion\":\"langop.io/v1alpha1\",\"kind\":\"LanguageModel\",\"metadata\":{\"name\":\"x\"}}", 1, NULL, NULL },
        { "{\"apiVersion\":\"langop.io/v1alpha1\",\"kind\":\"LanguageModel\"}", 1, NULL, NULL },
        { "{\"apiVersion\":\"langop.io/v1alpha1\",\"kind\":\"LanguageModel\",\"metadata\":null}", 1, NULL, NULL },
        { "[]", 0, NULL, NULL },
        { "\"LanguageModel\"", 0, NULL, NULL },
        { "{\"apiVersion\":\"langop.io/v1alpha1\",\"metadata\":{\"name\":\"x\"}}", 0, NULL,
          "Object 'Kind' is missing" },
        { "{\"apiVersion\":\"langop.io/v1alpha1\",\"kind\":\"\"}", 0, NULL, "Object 'Kind' is missing" },
        { "{\"apiVersion\":\"langop.io/v1alpha1\",\"kind\":7}", 0, NULL, "Object 'Kind' is missing" },
        { "{\"kind\":\"LanguageModel\"}", 0, NULL, "apiVersion" },
        { "{\"apiVersion\":\"langop.io/v1\",\"kind\":\"LanguageModel\"}", 0,
          "the API version in the data (langop.io/v1) does not match the expected API version (langop.io/v1alpha1)", NULL },
        { "{\"apiVersion\":\"v1\",\"kind\":\"LanguageModel\"}", 0,
          "the API version in the data (v1) does not match the expected API version (langop.io/v1alpha1)", NULL },
        { "{\"apiVersion\":\"langop.io/v1alpha1\",\"kind\":\"LanguageAgent\"}", 0, NULL, "LanguageAgent" },
        { "{\"apiVersion\":\"langop.io/v1alpha1\",\"kind\":\"LanguageModel\",\"metadata\":\"x\"}", 0, NULL,
          "cannot be handled as a LanguageModel" },
        { "{\"apiVersion\":\"langop.io/v1alpha1\",\"kind\":\"LanguageModel\",\"metadata\":[]}", 0, NULL,
          "cannot be handled as a LanguageModel" },
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        json_t *obj = fx_json(cases[i].body);
        lo_err_t err = { 0 };
        int rc = objmeta_check_envelope(model_kind, obj, &err);
        json_decref(obj);
        if (cases[i].ok) {
            assert_int_equal(rc, 0);
            assert_int_equal(err.code, 0);
            continue;
        }
        if (rc != -1 || err.code != 400)
            fail_msg("%s: rc %d code %d, want -1 and 400", cases[i].body, rc, err.code);
        assert_string_equal(err.reason, "BadRequest");
        assert_true(err.message[0] != '\0');
        if (cases[i].message)
            assert_string_equal(err.message, cases[i].message);
        if (cases[i].contains && strstr(err.message, cases[i].contains) == NULL)
            fail_msg("%s: message \"%s\" lacks \"%s\"", cases[i].body, err.message, cases[i].contains);
        lo_err_clear(&err);
    }
}

/* ---- prepare_create ---- */

static const char *meta_str(const json_t *obj, const char *field)
{
    return objmeta_get_string(obj, field);
}

static const json_t *first_cause(const lo_err_t *err)
{
    return json_array_get(json_object_get(err->details, "causes"), 0);
}

static void assert_cause(const json_t *cause, const char *reason, const char *field, const char *message_prefix)
{
    assert_non_null(cause);
    assert_string_equal(json_string_value(json_object_get(cause, "reason")), reason);
    assert_string_equal(json_string_value(json_object_get(cause, "field")), field);
    const char *msg = json_string_value(json_object_get(cause, "message"));
    assert_non_null(msg);
    if (strncmp(msg, message_prefix, strlen(message_prefix)) != 0)
        fail_msg("cause message \"%s\" does not start with \"%s\"", msg, message_prefix);
}

static void test_create_namespace_from_url(void **state)
{
    (void)state;
    static const char *const bodies[] = {
        "{\"metadata\":{\"name\":\"x\"}}",
        "{\"metadata\":{\"name\":\"x\",\"namespace\":\"\"}}",
        "{\"metadata\":{\"name\":\"x\",\"namespace\":null}}",
        "{\"metadata\":{\"name\":\"x\",\"namespace\":\"team-a\"}}",
    };
    for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
        json_t *obj = fx_json(bodies[i]);
        lo_err_t err = { 0 };
        assert_int_equal(objmeta_prepare_create(model_kind, "team-a", obj, &err), 0);
        assert_string_equal(meta_str(obj, "namespace"), "team-a");
        assert_string_equal(meta_str(obj, "name"), "x");
        json_decref(obj);
        lo_err_clear(&err);
    }
}

static void test_create_namespace_mismatch(void **state)
{
    (void)state;
    json_t *obj = fx_json("{\"metadata\":{\"name\":\"x\",\"namespace\":\"other\"}}");
    lo_err_t err = { 0 };
    assert_int_equal(objmeta_prepare_create(model_kind, "team-a", obj, &err), -1);
    assert_int_equal(err.code, 400);
    assert_string_equal(err.reason, "BadRequest");
    assert_string_equal(err.message,
                        "the namespace of the provided object does not match the namespace sent on the request");
    json_decref(obj);
    lo_err_clear(&err);
}

static void test_create_cluster_scoped_drops_namespace(void **state)
{
    (void)state;
    json_t *obj = fx_json("{\"metadata\":{\"name\":\"prod\",\"namespace\":\"default\"}}");
    lo_err_t err = { 0 };
    assert_int_equal(objmeta_prepare_create(cluster_kind, "", obj, &err), 0);
    assert_null(json_object_get(json_object_get(obj, "metadata"), "namespace"));
    assert_string_equal(meta_str(obj, "name"), "prod");
    json_decref(obj);
    lo_err_clear(&err);
}

static void test_create_refuses_resource_version(void **state)
{
    (void)state;
    json_t *obj = fx_json("{\"metadata\":{\"name\":\"x\",\"resourceVersion\":\"5\"}}");
    lo_err_t err = { 0 };
    assert_int_equal(objmeta_prepare_create(model_kind, "default", obj, &err), -1);
    assert_int_equal(err.code, 400);
    assert_string_equal(err.reason, "BadRequest");
    assert_string_equal(err.message, "resourceVersion should not be set on objects to be created");
    json_decref(obj);
    lo_err_clear(&err);
}

static int is_uuid4(const char *s)
{
    if (s == NULL || strlen(s) != 36)
        return 0;
    for (int i = 0; i < 36; i++) {
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (s[i] != '-')
                return 0;
        } else if (strchr("0123456789abcdef", s[i]) == NULL) {
            return 0;
        }
    }
    return s[14] == '4' && strchr("89ab", s[19]) != NULL;
}

/* A timestamp in kube's form (seconds, Z) within a minute of now. */
static void assert_recent_rfc3339(const char *ts)
{
    assert_non_null(ts);
    assert_int_equal(strlen(ts), 20);
    assert_int_equal(ts[19], 'Z');
    int64_t t = 0;
    assert_int_equal(lo_time_parse(ts, &t), 0);
    int64_t now = (int64_t)time(NULL);
    assert_true(t > now - 60 && t < now + 60);
}

static void test_create_sets_server_fields(void **state)
{
    (void)state;
    json_t *obj = fx_json("{\"apiVersion\":\"langop.io/v1alpha1\",\"kind\":\"LanguageModel\","
                        "\"metadata\":{\"name\":\"x\",\"uid\":\"forged\",\"creationTimestamp\":\"2001-01-01T00:00:00Z\","
                        "\"generation\":7,\"deletionTimestamp\":\"2001-01-01T00:00:00Z\","
                        "\"deletionGracePeriodSeconds\":30,\"selfLink\":\"/apis/x\","
                        "\"labels\":{\"app\":\"chat\"},\"annotations\":{\"note\":\"any text at all!\"},"
                        "\"finalizers\":[\"langop.io/cleanup\"]},"
                        "\"spec\":{\"provider\":\"openai\"},\"status\":{\"phase\":\"Ready\"}}");
    lo_err_t err = { 0 };
    assert_int_equal(objmeta_prepare_create(model_kind, "default", obj, &err), 0);
    const json_t *meta = json_object_get(obj, "metadata");
    assert_true(is_uuid4(meta_str(obj, "uid")));
    assert_recent_rfc3339(meta_str(obj, "creationTimestamp"));
    assert_int_equal(json_integer_value(json_object_get(meta, "generation")), 1);
    assert_true(json_is_integer(json_object_get(meta, "generation")));
    assert_null(json_object_get(meta, "deletionTimestamp"));
    assert_null(json_object_get(meta, "deletionGracePeriodSeconds"));
    assert_null(json_object_get(meta, "selfLink"));
    assert_null(json_object_get(meta, "resourceVersion"));
    /* status is written through /status only */
    assert_null(json_object_get(obj, "status"));
    /* what the user set is kept */
    assert_string_equal(json_string_value(json_object_get(json_object_get(meta, "labels"), "app")), "chat");
    assert_string_equal(json_string_value(json_object_get(json_object_get(meta, "annotations"), "note")),
                        "any text at all!");
    assert_string_equal(json_string_value(json_array_get(json_object_get(meta, "finalizers"), 0)),
                        "langop.io/cleanup");
    assert_string_equal(json_string_value(json_object_get(json_object_get(obj, "spec"), "provider")), "openai");
    json_decref(obj);
    lo_err_clear(&err);
}

static void test_create_uids_differ(void **state)
{
    (void)state;
    json_t *a = fx_json("{\"metadata\":{\"name\":\"a\"}}");
    json_t *b = fx_json("{\"metadata\":{\"name\":\"b\"}}");
    lo_err_t err = { 0 };
    assert_int_equal(objmeta_prepare_create(model_kind, "default", a, &err), 0);
    assert_int_equal(objmeta_prepare_create(model_kind, "default", b, &err), 0);
    assert_string_not_equal(meta_str(a, "uid"), meta_str(b, "uid"));
    json_decref(a);
    json_decref(b);
}

static void test_create_creates_metadata(void **state)
{
    (void)state;
    /* no metadata at all: 422 for the missing name, not a crash */
    json_t *obj = fx_json("{\"spec\":{}}");
    lo_err_t err = { 0 };
    assert_int_equal(objmeta_prepare_create(model_kind, "default", obj, &err), -1);
    assert_int_equal(err.code, 422);
    json_decref(obj);
    lo_err_clear(&err);
}

static void test_create_name_required(void **state)
{
    (void)state;
    static const char *const bodies[] = {
        "{\"metadata\":{}}",
        "{\"metadata\":{\"name\":\"\"}}",
        "{\"metadata\":{\"name\":\"\",\"generateName\":\"\"}}",
    };
    for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
        json_t *obj = fx_json(bodies[i]);
        lo_err_t err = { 0 };
        assert_int_equal(objmeta_prepare_create(model_kind, "default", obj, &err), -1);
        assert_int_equal(err.code, 422);
        assert_string_equal(err.reason, "Invalid");
        assert_string_equal(err.message, "LanguageModel.langop.io \"\" is invalid: metadata.name: Required value: "
                                         "name or generateName is required");
        assert_string_equal(json_string_value(json_object_get(err.details, "kind")), "LanguageModel");
        assert_string_equal(json_string_value(json_object_get(err.details, "group")), "langop.io");
        assert_int_equal(json_array_size(json_object_get(err.details, "causes")), 1);
        assert_cause(first_cause(&err), "FieldValueRequired", "metadata.name", "Required value");
        json_decref(obj);
        lo_err_clear(&err);
    }
}

static void test_create_generate_name_only(void **state)
{
    (void)state;
    json_t *obj = fx_json("{\"metadata\":{\"generateName\":\"chat-\"}}");
    lo_err_t err = { 0 };
    assert_int_equal(objmeta_prepare_create(model_kind, "default", obj, &err), 0);
    assert_true(objmeta_needs_generated_name(obj));
    const char *name = meta_str(obj, "name");
    assert_true(name == NULL || name[0] == '\0');
    json_decref(obj);
}

static void test_create_invalid_name(void **state)
{
    (void)state;
    json_t *obj = fx_json("{\"metadata\":{\"name\":\"My_Model\"}}");
    lo_err_t err = { 0 };
    assert_int_equal(objmeta_prepare_create(model_kind, "default", obj, &err), -1);
    assert_int_equal(err.code, 422);
    assert_string_equal(err.reason, "Invalid");
    const char *want = "LanguageModel.langop.io \"My_Model\" is invalid: metadata.name: Invalid value: \"My_Model\": "
                       "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or "
                       "'.', and must start and end with an alphanumeric character";
    if (strncmp(err.message, want, strlen(want)) != 0)
        fail_msg("message \"%s\"", err.message);
    assert_string_equal(json_string_value(json_object_get(err.details, "name")), "My_Model");
    assert_cause(first_cause(&err), "FieldValueInvalid", "metadata.name", "Invalid value: \"My_Model\": ");
    json_decref(obj);
    lo_err_clear(&err);
}

static void test_create_invalid_labels_annotations_finalizers(void **state)
{
    (void)state;
    static const struct {
        const char *meta;
        const char *reason, *field, *message_prefix;
    } cases[] = {
        { "\"labels\":{\"bad key\":\"v\"}", "FieldValueInvalid", "metadata.labels",
          "Invalid value: \"bad key\": name part must consist of alphanumeric characters" },
        { "\"labels\":{\"app\":\"-chat\"}", "FieldValueInvalid", "metadata.labels",
          "Invalid value: \"-chat\": a valid label must be an empty string or consist of alphanumeric characters" },
        { "\"labels\":{\"app\":7}", "FieldValueTypeInvalid", "metadata.labels", "Invalid value" },
        { "\"labels\":[\"app\"]", "FieldValueTypeInvalid", "metadata.labels", "Invalid value" },
        { "\"annotations\":{\"Example.com/x\":\"v\"}", "FieldValueInvalid", "metadata.annotations",
          "Invalid value: \"Example.com/x\"" },
        { "\"finalizers\":[\"bad finalizer\"]", "FieldValueInvalid", "metadata.finalizers[0]",
          "Invalid value: \"bad finalizer\"" },
        { "\"finalizers\":\"langop.io/x\"", "FieldValueTypeInvalid", "metadata.finalizers", "Invalid value" },
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *text = build("{\"metadata\":{\"name\":\"x\",", 0, 0, "");
        char *body = NULL;
        assert_true(asprintf(&body, "%s%s}}", text, cases[i].meta) > 0);
        free(text);
        json_t *obj = fx_json(body);
        lo_err_t err = { 0 };
        int rc = objmeta_prepare_create(model_kind, "default", obj, &err);
        if (rc != -1 || err.code != 422)
            fail_msg("%s: rc %d code %d, want 422", body, rc, err.code);
        assert_string_equal(err.reason, "Invalid");
        assert_int_equal(json_array_size(json_object_get(err.details, "causes")), 1);
        const json_t *cause = first_cause(&err);
        /* the field may name the key (metadata.labels[app]); it must start with the map's path */
        const char *field = json_string_value(json_object_get(cause, "field"));
        assert_non_null(field);
        if (strncmp(field, cases[i].field, strlen(cases[i].field)) != 0)
            fail_msg("%s: cause field %s, want %s", body, field, cases[i].field);
        assert_string_equal(json_string_value(json_object_get(cause, "reason")), cases[i].reason);
        const char *msg = json_string_value(json_object_get(cause, "message"));
        if (msg == NULL || strncmp(msg, cases[i].message_prefix, strlen(cases[i].message_prefix)) != 0)
            fail_msg("%s: cause message \"%s\", want prefix \"%s\"", body, msg, cases[i].message_prefix);
        if (strncmp(err.message, "LanguageModel.langop.io \"x\" is invalid: metadata.", 49) != 0)
            fail_msg("%s: message \"%s\"", body, err.message);
        free(body);
        json_decref(obj);
        lo_err_clear(&err);
    }
}

static void test_create_annotations_too_long(void **state)
{
    (void)state;
    char *big = build("", 'x', 256 * 1024, "");
    json_t *obj = json_pack("{s:{s:s, s:{s:s}}}", "metadata", "name", "x", "annotations", "note", big);
    free(big);
    lo_err_t err = { 0 };
    assert_int_equal(objmeta_prepare_create(model_kind, "default", obj, &err), -1);
    assert_int_equal(err.code, 422);
    assert_cause(first_cause(&err), "FieldValueTooLong", "metadata.annotations",
                 "Too long: must have at most 262144 bytes");
    json_decref(obj);
    lo_err_clear(&err);

    /* just under the limit (key + value bytes) is fine */
    big = build("", 'x', 256 * 1024 - 4, "");
    obj = json_pack("{s:{s:s, s:{s:s}}}", "metadata", "name", "x", "annotations", "note", big);
    free(big);
    assert_int_equal(objmeta_prepare_create(model_kind, "default", obj, &err), 0);
    json_decref(obj);
    lo_err_clear(&err);
}

/* Several broken fields: one 422 listing them all in brackets. */
static void test_create_several_causes(void **state)
{
    (void)state;
    json_t *obj = fx_json("{\"metadata\":{\"name\":\"Bad_Name\",\"labels\":{\"app\":\"-x\"}}}");
    lo_err_t err = { 0 };
    assert_int_equal(objmeta_prepare_create(model_kind, "default", obj, &err), -1);
    assert_int_equal(err.code, 422);
    assert_int_equal(json_array_size(json_object_get(err.details, "causes")), 2);
    const char *prefix = "LanguageModel.langop.io \"Bad_Name\" is invalid: [metadata.name: Invalid value: ";
    if (strncmp(err.message, prefix, strlen(prefix)) != 0 || err.message[strlen(err.message) - 1] != ']')
        fail_msg("message \"%s\"", err.message);
    json_decref(obj);
    lo_err_clear(&err);
}

/* The error channel is optional (common.h): without one, a bad object must still be refused. */
static void test_create_refuses_without_err(void **state)
{
    (void)state;
    json_t *bad_name = fx_json("{\"metadata\":{\"name\":\"Bad_Name\"}}");
    json_t *no_name = fx_json("{\"metadata\":{}}");
    json_t *bad_label = fx_json("{\"metadata\":{\"name\":\"x\",\"labels\":{\"app\":\"-x\"}}}");
    int rc_bad_name = objmeta_prepare_create(model_kind, "default", bad_name, NULL);
    int rc_no_name = objmeta_prepare_create(model_kind, "default", no_name, NULL);
    int rc_bad_label = objmeta_prepare_create(model_kind, "default", bad_label, NULL);
    json_decref(bad_name);
    json_decref(no_name);
    json_decref(bad_label);
    if (rc_bad_name != -1 || rc_no_name != -1 || rc_bad_label != -1)
        fail_msg("with err NULL: name Bad_Name -> %d, no name -> %d, label app=-x -> %d; want -1 each", rc_bad_name,
                 rc_no_name, rc_bad_label);
}

/* ownerReferences as apimachinery's ValidateOwnerReferences checks them: each complete, one controller. */
static void test_create_owner_references(void **state)
{
    (void)state;
    static const struct {
        const char *refs, *field, *reason;
    } cases[] = {
        {"[{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"name\":\"cm\"}]", "metadata.ownerReferences[0].uid",
         "FieldValueRequired"},
        {"[{\"apiVersion\":\"a/b/c\",\"kind\":\"K\",\"name\":\"n\",\"uid\":\"u\"}]",
         "metadata.ownerReferences[0].apiVersion", "FieldValueInvalid"},
        {"[{\"apiVersion\":\"v1\",\"kind\":\"Event\",\"name\":\"n\",\"uid\":\"u\"}]", "metadata.ownerReferences[0]",
         "FieldValueInvalid"},
        {"[{\"apiVersion\":\"v1\",\"kind\":\"A\",\"name\":\"a\",\"uid\":\"1\",\"controller\":true},"
         "{\"apiVersion\":\"v1\",\"kind\":\"B\",\"name\":\"b\",\"uid\":\"2\",\"controller\":true}]",
         "metadata.ownerReferences", "FieldValueInvalid"},
        {"[7]", "metadata.ownerReferences[0]", "FieldValueTypeInvalid"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        json_t *obj = fx_json("{\"metadata\":{\"name\":\"m\"}}");
        json_object_set_new(json_object_get(obj, "metadata"), "ownerReferences", fx_json(cases[i].refs));
        lo_err_t err = { 0 };
        assert_int_equal(objmeta_prepare_create(model_kind, "team-a", obj, &err), -1);
        assert_int_equal(err.code, 422);
        assert_cause(first_cause(&err), cases[i].reason, cases[i].field, "");
        json_decref(obj);
        lo_err_clear(&err);
    }
    json_t *obj = fx_json("{\"metadata\":{\"name\":\"m\",\"ownerReferences\":[{\"apiVersion\":\"langop.io/v1alpha1\","
                          "\"kind\":\"LanguageCluster\",\"name\":\"c\",\"uid\":\"u\",\"controller\":true}]}}");
    lo_err_t err = { 0 };
    assert_int_equal(objmeta_prepare_create(model_kind, "team-a", obj, &err), 0);
    json_decref(obj);
}

/* ---- generateName ---- */

static void test_generate_name(void **state)
{
    (void)state;
    char first[64] = "";
    int differ = 0;
    for (int i = 0; i < 20; i++) {
        json_t *obj = fx_json("{\"metadata\":{\"generateName\":\"chat-\"}}");
        lo_err_t err = { 0 };
        assert_true(objmeta_needs_generated_name(obj));
        assert_int_equal(objmeta_generate_name(model_kind, obj, &err), 0);
        const char *name = meta_str(obj, "name");
        assert_non_null(name);
        assert_int_equal(strlen(name), 10);
        assert_memory_equal(name, "chat-", 5);
        for (int c = 5; c < 10; c++)
            if (strchr(GENERATE_NAME_ALPHABET, name[c]) == NULL)
                fail_msg("generated name %s has '%c' outside kube's alphabet", name, name[c]);
        assert_false(objmeta_needs_generated_name(obj));
        assert_string_equal(meta_str(obj, "generateName"), "chat-");
        if (i == 0)
            snprintf(first, sizeof(first), "%s", name);
        else if (strcmp(first, name) != 0)
            differ = 1;
        json_decref(obj);
    }
    assert_true(differ);
}

static void test_generate_name_invalid_prefix(void **state)
{
    (void)state;
    json_t *obj = fx_json("{\"metadata\":{\"generateName\":\"Chat_\"}}");
    lo_err_t err = { 0 };
    assert_int_equal(objmeta_generate_name(model_kind, obj, &err), -1);
    assert_int_equal(err.code, 422);
    assert_string_equal(err.reason, "Invalid");
    assert_cause(first_cause(&err), "FieldValueInvalid", "metadata.generateName", "Invalid value: \"Chat_\"");
    const char *name = meta_str(obj, "name");
    assert_true(name == NULL || name[0] == '\0');
    json_decref(obj);
    lo_err_clear(&err);
}

/* A long prefix is cut to 58 characters, so that prefix + 5 fits 63, as kube's SimpleNameGenerator does;
 * a prefix that is no valid name prefix (here: over 253 characters) is refused, as ValidateObjectMeta does. */
static void test_generate_name_long_prefix_is_cut(void **state)
{
    (void)state;
    for (size_t n = 199; n <= 300; n += 101) {
        char *prefix = dotted(n);
        json_t *obj = json_pack("{s:{s:s}}", "metadata", "generateName", prefix);
        free(prefix);
        lo_err_t err = { 0 };
        int rc = objmeta_generate_name(model_kind, obj, &err);
        size_t len = meta_str(obj, "name") ? strlen(meta_str(obj, "name")) : 0;
        int code = err.code;
        json_decref(obj);
        lo_err_clear(&err);
        if (n == 199) {
            assert_int_equal(rc, 0);
            assert_int_equal(len, 63);
        } else {
            assert_int_equal(rc, -1);
            assert_int_equal(code, 422);
        }
    }
}

/* A 100-character prefix without dots is a valid name prefix in Kubernetes. */
static void test_generate_name_long_undotted_prefix(void **state)
{
    (void)state;
    char *prefix = build("model-", 'a', 94, "");
    json_t *obj = json_pack("{s:{s:s}}", "metadata", "generateName", prefix);
    free(prefix);
    lo_err_t err = { 0 };
    int rc = objmeta_generate_name(model_kind, obj, &err);
    size_t len = meta_str(obj, "name") ? strlen(meta_str(obj, "name")) : 0;
    char message[LO_ERR_MESSAGE_MAX];
    snprintf(message, sizeof(message), "%s", err.message);
    json_decref(obj);
    lo_err_clear(&err);
    if (rc != 0)
        fail_msg("generateName model-aaa...(100 chars): %s", message);
    assert_int_equal(len, 63);
}

/* ---- check_target ---- */

static void test_check_target(void **state)
{
    (void)state;
    static const struct {
        const schema_kind_t **kind;
        const char *url_ns, *url_name, *body;
        int code;
        const char *message;
        const char *want_ns; /* NULL: absent */
    } cases[] = {
        { &model_kind, "default", "x", "{\"metadata\":{\"name\":\"x\"}}", 0, NULL, "default" },
        { &model_kind, "default", "x", "{\"metadata\":{}}", 0, NULL, "default" },
        { &model_kind, "default", "x", "{}", 0, NULL, "default" },
        { &model_kind, "default", "x", "{\"metadata\":{\"name\":\"x\",\"namespace\":\"default\"}}", 0, NULL,
          "default" },
        { &model_kind, "default", "x", "{\"metadata\":{\"name\":\"y\"}}", 400,
          "the name of the object (y) does not match the name on the URL (x)", NULL },
        { &model_kind, "default", "x", "{\"metadata\":{\"name\":\"x\",\"namespace\":\"other\"}}", 400,
          "the namespace of the provided object does not match the namespace sent on the request", NULL },
        { &cluster_kind, "", "prod", "{\"metadata\":{\"name\":\"prod\",\"namespace\":\"default\"}}", 0, NULL,
          NULL },
        { &cluster_kind, "", "prod", "{\"metadata\":{\"name\":\"dev\"}}", 400,
          "the name of the object (dev) does not match the name on the URL (prod)", NULL },
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        json_t *obj = fx_json(cases[i].body);
        lo_err_t err = { 0 };
        int rc = objmeta_check_target(*cases[i].kind, cases[i].url_ns, cases[i].url_name, obj, &err);
        if (cases[i].code == 0) {
            if (rc != 0)
                fail_msg("case %zu (%s): rc %d: %s", i, cases[i].body, rc, err.message);
            assert_string_equal(meta_str(obj, "name"), cases[i].url_name);
            if (cases[i].want_ns)
                assert_string_equal(meta_str(obj, "namespace"), cases[i].want_ns);
            else
                assert_null(json_object_get(json_object_get(obj, "metadata"), "namespace"));
        } else {
            assert_int_equal(rc, -1);
            assert_int_equal(err.code, 400);
            assert_string_equal(err.reason, "BadRequest");
            assert_string_equal(err.message, cases[i].message);
        }
        json_decref(obj);
        lo_err_clear(&err);
    }
}

/* ---- preconditions ---- */

#define CURRENT_MODEL                                                                                            \
    "{\"apiVersion\":\"langop.io/v1alpha1\",\"kind\":\"LanguageModel\",\"metadata\":{\"name\":\"x\","         \
    "\"namespace\":\"default\",\"uid\":\"11111111-2222-4333-8444-555555555555\",\"resourceVersion\":\"10\","    \
    "\"creationTimestamp\":\"2025-01-02T03:04:05Z\",\"generation\":3,\"labels\":{\"app\":\"chat\"}},"          \
    "\"spec\":{\"provider\":\"openai\",\"modelName\":\"gpt-4o\"},\"status\":{\"phase\":\"Ready\"}}"

static void test_preconditions(void **state)
{
    (void)state;
    json_t *current = fx_json(CURRENT_MODEL);
    static const struct {
        const char *body;
        int code;
        const char *message;
    } cases[] = {
        { "{\"metadata\":{\"name\":\"x\"}}", 0, NULL },
        { "{\"metadata\":{\"name\":\"x\",\"resourceVersion\":\"\"}}", 0, NULL },
        { "{\"metadata\":{\"name\":\"x\",\"resourceVersion\":\"10\"}}", 0, NULL },
        { "{\"metadata\":{\"name\":\"x\",\"uid\":\"11111111-2222-4333-8444-555555555555\"}}", 0, NULL },
        { "{\"metadata\":{\"name\":\"x\",\"resourceVersion\":\"9\"}}", 409,
          "Operation cannot be fulfilled on languagemodels.langop.io \"x\": the object has been modified; please "
          "apply your changes to the latest version and try again" },
        { "{\"metadata\":{\"name\":\"x\",\"resourceVersion\":\"100\"}}", 409,
          "Operation cannot be fulfilled on languagemodels.langop.io \"x\": the object has been modified; please "
          "apply your changes to the latest version and try again" },
        { "{\"metadata\":{\"name\":\"x\",\"uid\":\"99999999-2222-4333-8444-555555555555\"}}", 409,
          "Operation cannot be fulfilled on languagemodels.langop.io \"x\": Precondition failed: UID in "
          "precondition: 99999999-2222-4333-8444-555555555555, UID in object meta: "
          "11111111-2222-4333-8444-555555555555" },
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        json_t *body = fx_json(cases[i].body);
        lo_err_t err = { 0 };
        int rc = objmeta_check_preconditions(model_kind, current, body, &err);
        if (cases[i].code == 0) {
            if (rc != 0)
                fail_msg("%s: rc %d: %s", cases[i].body, rc, err.message);
        } else {
            assert_int_equal(rc, -1);
            assert_int_equal(err.code, 409);
            assert_string_equal(err.reason, "Conflict");
            assert_string_equal(err.message, cases[i].message);
            assert_string_equal(json_string_value(json_object_get(err.details, "name")), "x");
            assert_string_equal(json_string_value(json_object_get(err.details, "group")), "langop.io");
            assert_string_equal(json_string_value(json_object_get(err.details, "kind")), "languagemodels");
        }
        json_decref(body);
        lo_err_clear(&err);
    }
    json_decref(current);
}

/* ---- merge_update ---- */

static void test_merge_update_keeps_server_fields(void **state)
{
    (void)state;
    json_t *current = fx_json(CURRENT_MODEL);
    json_t *body = fx_json("{\"apiVersion\":\"langop.io/v1alpha1\",\"kind\":\"LanguageModel\",\"metadata\":{"
                         "\"name\":\"x\",\"namespace\":\"default\",\"uid\":\"forged\",\"resourceVersion\":\"10\","
                         "\"creationTimestamp\":\"1999-01-01T00:00:00Z\",\"generation\":42,"
                         "\"deletionTimestamp\":\"1999-01-01T00:00:00Z\",\"selfLink\":\"/x\","
                         "\"labels\":{\"app\":\"chat\",\"tier\":\"gold\"}},"
                         "\"spec\":{\"provider\":\"openai\",\"modelName\":\"gpt-4o\"},"
                         "\"status\":{\"phase\":\"Failed\"}}");
    json_t *body_before = json_deep_copy(body);
    json_t *current_before = json_deep_copy(current);
    lo_err_t err = { 0 };
    json_t *next = objmeta_merge_update(model_kind, current, body, &err);
    assert_non_null(next);
    assert_string_equal(meta_str(next, "uid"), "11111111-2222-4333-8444-555555555555");
    assert_string_equal(meta_str(next, "creationTimestamp"), "2025-01-02T03:04:05Z");
    assert_int_equal(json_integer_value(json_object_get(json_object_get(next, "metadata"), "generation")), 3);
    assert_null(json_object_get(json_object_get(next, "metadata"), "deletionTimestamp"));
    assert_null(json_object_get(json_object_get(next, "metadata"), "selfLink"));
    /* status is kept from current: the main resource ignores status changes */
    assert_string_equal(json_string_value(json_object_get(json_object_get(next, "status"), "phase")), "Ready");
    /* the user's metadata changes are taken */
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(json_object_get(next, "metadata"), "labels"), "tier")),
        "gold");
    /* inputs are not touched */
    assert_true(json_equal(body, body_before));
    assert_true(json_equal(current, current_before));
    json_decref(next);
    json_decref(body_before);
    json_decref(current_before);
    json_decref(body);
    json_decref(current);
    lo_err_clear(&err);
}

static void test_merge_update_generation(void **state)
{
    (void)state;
    static const struct {
        const char *body;
        int want_generation;
        const char *why;
    } cases[] = {
        { "{\"metadata\":{\"name\":\"x\",\"labels\":{\"app\":\"chat\"}},"
          "\"spec\":{\"provider\":\"openai\",\"modelName\":\"gpt-4o\"}}",
          3, "same spec" },
        { "{\"metadata\":{\"name\":\"x\",\"labels\":{\"app\":\"other\"},\"annotations\":{\"a\":\"b\"}},"
          "\"spec\":{\"modelName\":\"gpt-4o\",\"provider\":\"openai\"}}",
          3, "metadata only (and spec keys reordered)" },
        { "{\"metadata\":{\"name\":\"x\"},\"spec\":{\"provider\":\"openai\",\"modelName\":\"gpt-4o\"},"
          "\"status\":{\"phase\":\"Failed\"}}",
          3, "status only" },
        { "{\"metadata\":{\"name\":\"x\"},\"spec\":{\"provider\":\"openai\",\"modelName\":\"gpt-4o-mini\"}}", 4,
          "spec changed" },
        { "{\"metadata\":{\"name\":\"x\"},\"spec\":{\"provider\":\"openai\"}}", 4, "spec field removed" },
        { "{\"metadata\":{\"name\":\"x\"}}", 4, "spec removed" },
    };
    json_t *current = fx_json(CURRENT_MODEL);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        json_t *body = fx_json(cases[i].body);
        /* apiVersion and kind as a client sends them */
        json_object_set_new(body, "apiVersion", json_string("langop.io/v1alpha1"));
        json_object_set_new(body, "kind", json_string("LanguageModel"));
        lo_err_t err = { 0 };
        json_t *next = objmeta_merge_update(model_kind, current, body, &err);
        if (next == NULL)
            fail_msg("%s: %s", cases[i].why, err.message);
        json_int_t gen = json_integer_value(json_object_get(json_object_get(next, "metadata"), "generation"));
        if (gen != cases[i].want_generation)
            fail_msg("%s: generation %lld, want %d", cases[i].why, (long long)gen, cases[i].want_generation);
        json_decref(next);
        json_decref(body);
        lo_err_clear(&err);
    }
    json_decref(current);
}

static void test_merge_update_without_current_status(void **state)
{
    (void)state;
    json_t *current = fx_json("{\"metadata\":{\"name\":\"x\",\"uid\":\"u\",\"generation\":1},\"spec\":{}}");
    json_t *body = fx_json("{\"metadata\":{\"name\":\"x\"},\"spec\":{},\"status\":{\"phase\":\"Ready\"}}");
    lo_err_t err = { 0 };
    json_t *next = objmeta_merge_update(model_kind, current, body, &err);
    assert_non_null(next);
    assert_null(json_object_get(next, "status"));
    assert_int_equal(json_integer_value(json_object_get(json_object_get(next, "metadata"), "generation")), 1);
    json_decref(next);
    json_decref(body);
    json_decref(current);
}

static void test_merge_update_invalid_label(void **state)
{
    (void)state;
    json_t *current = fx_json(CURRENT_MODEL);
    json_t *body = fx_json("{\"metadata\":{\"name\":\"x\",\"labels\":{\"app\":\"-bad\"}},\"spec\":{}}");
    lo_err_t err = { 0 };
    json_t *next = objmeta_merge_update(model_kind, current, body, &err);
    assert_null(next);
    assert_int_equal(err.code, 422);
    assert_string_equal(err.reason, "Invalid");
    const char *prefix = "LanguageModel.langop.io \"x\" is invalid: metadata.labels";
    if (strncmp(err.message, prefix, strlen(prefix)) != 0)
        fail_msg("message \"%s\"", err.message);
    json_decref(body);
    json_decref(current);
    lo_err_clear(&err);
}

#define DELETING_MODEL                                                                                           \
    "{\"metadata\":{\"name\":\"x\",\"uid\":\"u\",\"generation\":2,\"resourceVersion\":\"7\","                  \
    "\"deletionTimestamp\":\"2025-01-02T03:04:05Z\",\"deletionGracePeriodSeconds\":0,"                          \
    "\"finalizers\":[\"langop.io/cleanup\"]},\"spec\":{\"provider\":\"openai\"}}"

static void test_merge_update_while_deleting(void **state)
{
    (void)state;
    json_t *current = fx_json(DELETING_MODEL);

    /* adding a finalizer: 422 */
    json_t *body = fx_json("{\"metadata\":{\"name\":\"x\",\"finalizers\":[\"langop.io/cleanup\",\"example.com/hold\"]},"
                         "\"spec\":{\"provider\":\"openai\"}}");
    lo_err_t err = { 0 };
    json_t *next = objmeta_merge_update(model_kind, current, body, &err);
    assert_null(next);
    assert_int_equal(err.code, 422);
    assert_string_equal(err.reason, "Invalid");
    assert_cause(first_cause(&err), "FieldValueForbidden", "metadata.finalizers",
                 "Forbidden: no new finalizers can be added if the object is being deleted, found new finalizers "
                 "[]string{\"example.com/hold\"}");
    assert_string_equal(err.message,
                        "LanguageModel.langop.io \"x\" is invalid: metadata.finalizers: Forbidden: no new finalizers "
                        "can be added if the object is being deleted, found new finalizers "
                        "[]string{\"example.com/hold\"}");
    json_decref(body);
    lo_err_clear(&err);

    /* removing the finalizer (what a controller does to let the delete finish): fine, and the
     * deletion fields stay even though the body leaves them out */
    body = fx_json("{\"metadata\":{\"name\":\"x\",\"finalizers\":[]},\"spec\":{\"provider\":\"openai\"}}");
    next = objmeta_merge_update(model_kind, current, body, &err);
    assert_non_null(next);
    assert_string_equal(meta_str(next, "deletionTimestamp"), "2025-01-02T03:04:05Z");
    assert_false(objmeta_has_finalizers(next));
    assert_true(objmeta_is_deleting(next));
    json_decref(next);
    json_decref(body);
    json_decref(current);
}

/* The error channel is optional (common.h): without one, a bad update must still be refused. */
static void test_merge_update_refuses_without_err(void **state)
{
    (void)state;
    json_t *current = fx_json(DELETING_MODEL);
    json_t *add_finalizer = fx_json("{\"metadata\":{\"name\":\"x\",\"finalizers\":[\"langop.io/cleanup\","
                                  "\"example.com/hold\"]},\"spec\":{\"provider\":\"openai\"}}");
    json_t *bad_label = fx_json("{\"metadata\":{\"name\":\"x\",\"labels\":{\"app\":\"-bad\"}},"
                              "\"spec\":{\"provider\":\"openai\"}}");
    json_t *next1 = objmeta_merge_update(model_kind, current, add_finalizer, NULL);
    json_t *next2 = objmeta_merge_update(model_kind, current, bad_label, NULL);
    int refused1 = next1 == NULL, refused2 = next2 == NULL;
    json_decref(next1);
    json_decref(next2);
    json_decref(add_finalizer);
    json_decref(bad_label);
    json_decref(current);
    if (!refused1 || !refused2)
        fail_msg("with err NULL: new finalizer while deleting %s, label app=-bad %s; want both refused (NULL)",
                 refused1 ? "refused" : "accepted", refused2 ? "refused" : "accepted");
}

/* ---- merge_status, deletion ---- */

static void test_merge_status(void **state)
{
    (void)state;
    json_t *current = fx_json(CURRENT_MODEL);
    json_t *current_before = json_deep_copy(current);
    json_t *body = fx_json("{\"metadata\":{\"name\":\"x\",\"labels\":{\"app\":\"changed\"},\"uid\":\"forged\"},"
                         "\"spec\":{\"provider\":\"anthropic\"},"
                         "\"status\":{\"phase\":\"Failed\",\"conditions\":[{\"type\":\"Ready\",\"status\":\"False\"}]}}");
    json_t *next = objmeta_merge_status(current, body);
    assert_non_null(next);
    /* status from the body, everything else from current */
    assert_string_equal(json_string_value(json_object_get(json_object_get(next, "status"), "phase")), "Failed");
    assert_int_equal(json_array_size(json_object_get(json_object_get(next, "status"), "conditions")), 1);
    assert_string_equal(json_string_value(json_object_get(json_object_get(next, "spec"), "provider")), "openai");
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(json_object_get(next, "metadata"), "labels"), "app")),
        "chat");
    assert_string_equal(meta_str(next, "uid"), "11111111-2222-4333-8444-555555555555");
    assert_true(json_equal(current, current_before));
    json_decref(next);
    json_decref(body);

    /* a body without status clears it */
    body = fx_json("{\"metadata\":{\"name\":\"x\"}}");
    next = objmeta_merge_status(current, body);
    assert_null(json_object_get(next, "status"));
    assert_string_equal(json_string_value(json_object_get(json_object_get(next, "spec"), "provider")), "openai");
    json_decref(next);
    json_decref(body);
    json_decref(current_before);
    json_decref(current);
}

static void test_mark_deleting(void **state)
{
    (void)state;
    json_t *obj = fx_json("{\"metadata\":{\"name\":\"x\",\"finalizers\":[\"langop.io/cleanup\"]}}");
    assert_false(objmeta_is_deleting(obj));
    assert_true(objmeta_has_finalizers(obj));
    objmeta_mark_deleting(obj);
    assert_true(objmeta_is_deleting(obj));
    assert_recent_rfc3339(meta_str(obj, "deletionTimestamp"));
    const json_t *grace = json_object_get(json_object_get(obj, "metadata"), "deletionGracePeriodSeconds");
    assert_true(json_is_integer(grace));
    assert_int_equal(json_integer_value(grace), 0);
    json_decref(obj);

    /* a second delete keeps the first deletionTimestamp */
    obj = fx_json("{\"metadata\":{\"name\":\"x\",\"deletionTimestamp\":\"2025-01-02T03:04:05Z\","
                "\"deletionGracePeriodSeconds\":0}}");
    assert_true(objmeta_is_deleting(obj));
    objmeta_mark_deleting(obj);
    assert_string_equal(meta_str(obj, "deletionTimestamp"), "2025-01-02T03:04:05Z");
    json_decref(obj);

    /* no metadata at all */
    obj = fx_json("{}");
    assert_false(objmeta_is_deleting(obj));
    assert_false(objmeta_has_finalizers(obj));
    objmeta_mark_deleting(obj);
    assert_true(objmeta_is_deleting(obj));
    json_decref(obj);

    obj = fx_json("{\"metadata\":{\"finalizers\":[]}}");
    assert_false(objmeta_has_finalizers(obj));
    json_decref(obj);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_name),
        cmocka_unit_test(test_valid_name_total_length),
        cmocka_unit_test(test_valid_qualified_name),
        cmocka_unit_test(test_valid_label_value),
        cmocka_unit_test(test_envelope),
        cmocka_unit_test(test_create_namespace_from_url),
        cmocka_unit_test(test_create_namespace_mismatch),
        cmocka_unit_test(test_create_cluster_scoped_drops_namespace),
        cmocka_unit_test(test_create_refuses_resource_version),
        cmocka_unit_test(test_create_sets_server_fields),
        cmocka_unit_test(test_create_uids_differ),
        cmocka_unit_test(test_create_creates_metadata),
        cmocka_unit_test(test_create_name_required),
        cmocka_unit_test(test_create_generate_name_only),
        cmocka_unit_test(test_create_invalid_name),
        cmocka_unit_test(test_create_invalid_labels_annotations_finalizers),
        cmocka_unit_test(test_create_annotations_too_long),
        cmocka_unit_test(test_create_several_causes),
        cmocka_unit_test(test_create_refuses_without_err),
        cmocka_unit_test(test_create_owner_references),
        cmocka_unit_test(test_generate_name),
        cmocka_unit_test(test_generate_name_invalid_prefix),
        cmocka_unit_test(test_generate_name_long_prefix_is_cut),
        cmocka_unit_test(test_generate_name_long_undotted_prefix),
        cmocka_unit_test(test_check_target),
        cmocka_unit_test(test_preconditions),
        cmocka_unit_test(test_merge_update_keeps_server_fields),
        cmocka_unit_test(test_merge_update_generation),
        cmocka_unit_test(test_merge_update_without_current_status),
        cmocka_unit_test(test_merge_update_invalid_label),
        cmocka_unit_test(test_merge_update_while_deleting),
        cmocka_unit_test(test_merge_update_refuses_without_err),
        cmocka_unit_test(test_merge_status),
        cmocka_unit_test(test_mark_deleting),
    };
    return cmocka_run_group_tests(tests, setup_registry, fx_registry_teardown);
}
