/*
 * test_table.c - server-side printing as `kubectl get` shows it: the columns
 * each kind declares (Name first, priorities kept for -o wide), the cells of
 * real objects (ages like kubectl's, <none> as null, lists joined), the three
 * includeObject forms and their errors, the jsonPath subset, and paths or
 * values that are broken but must not crash the server.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "fixtures.h"

#include "langop/schema/table.h"

/* "2025-01-02T03:04:05Z", the creationTimestamp of the test objects. */
#define CREATED "2025-01-02T03:04:05Z"
static int64_t created;

static int setup_registry(void **state)
{
    (void)state;
    if (fx_registry_setup(state) != 0)
        return -1;
    if (lo_time_parse(CREATED, &created) < 0) {
        print_error("lo_time_parse cannot read " CREATED "\n");
        return -1;
    }
    return 0;
}

static const schema_kind_t *kind(const char *name)
{
    const schema_kind_t *k = schema_kind_by_kind(name);
    if (k == NULL)
        fail_msg("kind %s is not in the registry", name);
    return k;
}

/* Index of the column named name in table's columnDefinitions; fails if absent. */
static size_t column_index(const json_t *table, const char *name)
{
    size_t i;
    json_t *def;
    json_array_foreach(json_object_get(table, "columnDefinitions"), i, def) {
        if (strcmp(json_string_value(json_object_get(def, "name")), name) == 0)
            return i;
    }
    fail_msg("no column %s", name);
    return 0;
}

/* The cell of column name in row r (borrowed). */
static json_t *cell(const json_t *table, size_t r, const char *name)
{
    json_t *row = json_array_get(json_object_get(table, "rows"), r);
    assert_non_null(row);
    json_t *c = json_array_get(json_object_get(row, "cells"), column_index(table, name));
    assert_non_null(c);
    return c;
}

static void assert_string_cell(const json_t *table, size_t r, const char *name, const char *want)
{
    json_t *c = cell(table, r, name);
    if (!json_is_string(c))
        fail_msg("column %s: want \"%s\", got a non-string", name, want);
    assert_string_equal(json_string_value(c), want);
}

/* Every row has exactly one cell per column definition. */
static void assert_rows_aligned(const json_t *table)
{
    size_t ncols = json_array_size(json_object_get(table, "columnDefinitions"));
    size_t i;
    json_t *row;
    json_array_foreach(json_object_get(table, "rows"), i, row)
        assert_int_equal(json_array_size(json_object_get(row, "cells")), ncols);
}

/* ---- HumanDuration ---- */

typedef struct duration_case {
    int64_t seconds;
    const char *want;
} duration_case_t;

static void test_human_duration_thresholds(void **state)
{
    (void)state;
    enum { MIN = 60, HOUR = 3600, DAY = 86400, YEAR = 365 * DAY };
    static const duration_case_t cases[] = {
        { -100, "<invalid>" },
        { -2, "<invalid>" },
        { -1, "0s" },                     /* a clock a second ahead is still "now" */
        { 0, "0s" },
        { 1, "1s" },
        { 59, "59s" },
        { 60, "60s" },
        { 2 * MIN - 1, "119s" },
        { 2 * MIN, "2m" },
        { 2 * MIN + 1, "2m1s" },
        { 5 * MIN + 10, "5m10s" },
        { 10 * MIN - 1, "9m59s" },
        { 10 * MIN, "10m" },
        { 10 * MIN + 59, "10m" },
        { 3 * HOUR - 1, "179m" },
        { 3 * HOUR, "3h" },
        { 3 * HOUR + 59, "3h" },
        { 3 * HOUR + 12 * MIN, "3h12m" },
        { 8 * HOUR - 1, "7h59m" },
        { 8 * HOUR, "8h" },
        { 8 * HOUR + 30 * MIN, "8h" },
        { 48 * HOUR - 1, "47h" },
        { 2 * DAY, "2d" },
        { 2 * DAY + HOUR, "2d1h" },
        { 2 * DAY + HOUR - 1, "2d" },
        { 8 * DAY - 1, "7d23h" },
        { 8 * DAY, "8d" },
        { 8 * DAY + 23 * HOUR, "8d" },
        { 2 * YEAR - 1, "729d" },
        { 2 * YEAR, "2y" },
        { 2 * YEAR + 30 * DAY, "2y30d" },
        { 3 * YEAR, "3y" },
        { 8 * YEAR - 1, "7y364d" },
        { 8 * YEAR, "8y" },
        { 10 * YEAR + 100 * DAY, "10y" },
    };
    int mismatches = 0;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char buf[32];
        memset(buf, 'x', sizeof(buf));
        table_human_duration(cases[i].seconds, buf, sizeof(buf));
        if (strcmp(buf, cases[i].want) != 0) {
            print_error("%lld s: want %s, got %s\n", (long long)cases[i].seconds, cases[i].want, buf);
            mismatches++;
        }
    }
    assert_int_equal(mismatches, 0);
}

static void test_human_duration_small_buffer(void **state)
{
    (void)state;
    char buf[4] = "zzz";
    table_human_duration(-5, buf, sizeof(buf));
    assert_string_equal(buf, "<in");   /* truncated, still terminated */
    table_human_duration(5, buf, 0);   /* nothing written */
    assert_string_equal(buf, "<in");
}

/* ---- includeObject ---- */

static void test_parse_include_accepts(void **state)
{
    (void)state;
    static const struct {
        const char *value;
        table_include_t want;
    } cases[] = {
        { NULL, TABLE_INCLUDE_METADATA },
        { "", TABLE_INCLUDE_METADATA },
        { "Metadata", TABLE_INCLUDE_METADATA },
        { "Object", TABLE_INCLUDE_OBJECT },
        { "None", TABLE_INCLUDE_NONE },
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        table_include_t got = (table_include_t)99;
        lo_err_t err = { 0 };
        assert_int_equal(table_parse_include(cases[i].value, &got, &err), 0);
        assert_int_equal(got, cases[i].want);
        assert_int_equal(err.code, 0);
    }
}

static void test_parse_include_rejects(void **state)
{
    (void)state;
    static const struct {
        const char *value;
        const char *quoted;
    } cases[] = {
        { "object", "\"object\"" },   /* values are case-sensitive, as in kube */
        { "All", "\"All\"" },
        { "a\"b\\c\n", "\"a\\\"b\\\\c\\x0a\"" },
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        table_include_t got = TABLE_INCLUDE_NONE;
        lo_err_t err = { 0 };
        assert_true(table_parse_include(cases[i].value, &got, &err) < 0);
        assert_int_equal(err.code, 400);
        assert_string_equal(err.reason, "BadRequest");
        char want[256];
        snprintf(want, sizeof(want),
                 "Unable to convert to Table as requested: includeObject: Invalid value: %s: "
                 "must be 'Metadata', 'Object', 'None', or empty",
                 cases[i].quoted);
        assert_string_equal(err.message, want);
        lo_err_clear(&err);
    }
    /* a huge value is cut, and err may be NULL */
    char *huge = malloc(5000);
    assert_non_null(huge);
    memset(huge, 'q', 4999);
    huge[4999] = '\0';
    table_include_t got;
    lo_err_t err = { 0 };
    assert_true(table_parse_include(huge, &got, &err) < 0);
    assert_true(strlen(err.message) < LO_ERR_MESSAGE_MAX);
    assert_true(table_parse_include(huge, &got, NULL) < 0);
    free(huge);
}

/* ---- jsonPath ---- */

static const char *const PATH_DOC =
    "{\"spec\":{\"name\":\"a\",\"n\":3,\"none\":null,\"list\":[{\"name\":\"x\"},{\"name\":\"y\"},{\"other\":1}],"
    "\"a.b\":\"dotted\",\"nested\":[[1,2],[3]],\"map\":{\"k1\":\"v1\",\"k2\":\"v2\"}}}";

typedef struct path_case {
    const char *path;
    const char *want;   /* JSON of the values found */
} path_case_t;

static void test_jsonpath_subset(void **state)
{
    (void)state;
    static const path_case_t cases[] = {
        { ".spec.name", "[\"a\"]" },
        { "{.spec.name}", "[\"a\"]" },
        { " {.spec.n} ", "[3]" },
        { "$.spec.n", "[3]" },
        { ".spec.none", "[null]" },          /* present but null: found, and a null cell */
        { ".spec.missing", "[]" },
        { ".spec.missing.deeper", "[]" },
        { ".spec.list[0].name", "[\"x\"]" },
        { ".spec.list[1].name", "[\"y\"]" },
        { ".spec.list[-1].other", "[1]" },
        { ".spec.list[3].name", "[]" },       /* out of range */
        { ".spec.list[-4]", "[]" },
        { ".spec.list[*].name", "[\"x\",\"y\"]" },
        { ".spec.list.name", "[]" },          /* a field of a list: nothing, as in kube */
        { ".spec.name[0]", "[]" },            /* an index into a string: nothing */
        { ".spec['a.b']", "[\"dotted\"]" },
        { ".spec[\"a.b\"]", "[\"dotted\"]" },
        { ".spec.['a.b']", "[\"dotted\"]" },
        { "['spec']['n']", "[3]" },
        { ".spec.nested[*][*]", "[1,2,3]" },
        { ".spec.nested[*][1]", "[2]" },
        { ".spec.map[*]", "[\"v1\",\"v2\"]" },
        { ".spec.map.*", "[\"v1\",\"v2\"]" },
    };
    json_t *doc = fx_json(PATH_DOC);
    int mismatches = 0;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        json_t *got = table_jsonpath(doc, cases[i].path);
        json_t *want = fx_json(cases[i].want);
        if (!json_equal(got, want)) {
            char *text = json_dumps(got, JSON_ENCODE_ANY | JSON_COMPACT);
            print_error("%s: want %s, got %s\n", cases[i].path, cases[i].want, text);
            free(text);
            mismatches++;
        }
        json_decref(want);
        json_decref(got);
    }
    json_decref(doc);
    assert_int_equal(mismatches, 0);
}

static void test_jsonpath_broken_paths_find_nothing(void **state)
{
    (void)state;
    static const char *const broken[] = {
        "", " ", "{}", "{", "}", "{.spec.name", ".spec.name}", "spec.name", "..spec", ".spec..name",
        ".", "[", "]", ".spec[", ".spec[]", ".spec[abc]", ".spec[*", ".spec['a.b'", ".spec['a.b]",
        ".spec[1x]", ".spec.list[99999999999999999999999]", ".spec.list[-]", "$", "$$.spec",
        ".spec.list[0:1]", ".spec.list[?(@.name>'x')]", ".spec.list[?(@.name=='x')", "@.spec",
    };
    json_t *doc = fx_json(PATH_DOC);
    for (size_t i = 0; i < sizeof(broken) / sizeof(broken[0]); i++) {
        json_t *got = table_jsonpath(doc, broken[i]);
        assert_non_null(got);
        if (json_array_size(got) != 0)
            fail_msg("broken path '%s' found %zu values", broken[i], json_array_size(got));
        json_decref(got);
    }
    json_t *got = table_jsonpath(doc, NULL);
    assert_int_equal(json_array_size(got), 0);
    json_decref(got);
    got = table_jsonpath(NULL, ".spec");
    assert_int_equal(json_array_size(got), 0);
    json_decref(got);
    json_decref(doc);
}

/* ---- columns of the real kinds ---- */

static void test_columns_of_every_kind(void **state)
{
    (void)state;
    assert_true(schema_kind_count() >= 5);
    json_t *none = json_array();
    for (size_t i = 0; i < schema_kind_count(); i++) {
        const schema_kind_t *k = schema_kind_at(i);
        json_t *table = table_render(k, none, NULL, TABLE_INCLUDE_METADATA, 1, created);
        assert_non_null(table);
        assert_string_equal(json_string_value(json_object_get(table, "kind")), "Table");
        assert_string_equal(json_string_value(json_object_get(table, "apiVersion")), "meta.k8s.io/v1");
        assert_true(json_is_array(json_object_get(table, "rows")));
        assert_int_equal(json_array_size(json_object_get(table, "rows")), 0);

        json_t *defs = json_object_get(table, "columnDefinitions");
        assert_int_equal(json_array_size(defs), 1 + json_array_size(k->printer_columns));
        json_t *name = json_array_get(defs, 0);
        assert_string_equal(json_string_value(json_object_get(name, "name")), "Name");
        assert_string_equal(json_string_value(json_object_get(name, "type")), "string");
        assert_string_equal(json_string_value(json_object_get(name, "format")), "name");
        assert_int_equal(json_integer_value(json_object_get(name, "priority")), 0);
        assert_true(strncmp(json_string_value(json_object_get(name, "description")),
                            "Name must be unique within a namespace", 38) == 0);

        /* the schema's columns follow in order, every field present as kube sends them */
        size_t c;
        json_t *col;
        json_array_foreach(k->printer_columns, c, col) {
            json_t *def = json_array_get(defs, c + 1);
            assert_true(json_equal(json_object_get(def, "name"), json_object_get(col, "name")));
            assert_true(json_equal(json_object_get(def, "type"), json_object_get(col, "type")));
            assert_true(json_equal(json_object_get(def, "description"), json_object_get(col, "description")));
            assert_int_equal(json_integer_value(json_object_get(def, "priority")),
                             json_integer_value(json_object_get(col, "priority")));
            assert_true(json_is_string(json_object_get(def, "format")));
            assert_true(json_is_integer(json_object_get(def, "priority")));
            assert_int_equal(json_object_size(def), 5);
        }
        json_decref(table);
    }
    json_decref(none);
}

static void test_model_endpoint_column_is_wide_only(void **state)
{
    (void)state;
    json_t *none = json_array();
    json_t *table = table_render(kind("LanguageModel"), none, NULL, TABLE_INCLUDE_METADATA, 1, created);
    json_t *defs = json_object_get(table, "columnDefinitions");
    json_t *endpoint = json_array_get(defs, column_index(table, "Endpoint"));
    assert_int_equal(json_integer_value(json_object_get(endpoint, "priority")), 1);
    json_t *provider = json_array_get(defs, column_index(table, "Provider"));
    assert_int_equal(json_integer_value(json_object_get(provider, "priority")), 0);
    json_t *age = json_array_get(defs, column_index(table, "Age"));
    assert_string_equal(json_string_value(json_object_get(age, "type")), "date");
    json_decref(table);
    json_decref(none);
}

/* ---- rows ---- */

#define MODEL_GPT                                                                                 \
    "{\"apiVersion\":\"langop.io/v1alpha1\",\"kind\":\"LanguageModel\","                          \
    "\"metadata\":{\"name\":\"gpt\",\"namespace\":\"team\",\"uid\":\"u-1\",\"resourceVersion\":\"7\"," \
    "\"creationTimestamp\":\"" CREATED "\",\"labels\":{\"tier\":\"gold\"}},"                     \
    "\"spec\":{\"provider\":\"openai\",\"modelName\":\"gpt-4o\",\"timeout\":\"5m\"}}"

#define MODEL_LOCAL                                                                               \
    "{\"apiVersion\":\"langop.io/v1alpha1\",\"kind\":\"LanguageModel\","                          \
    "\"metadata\":{\"name\":\"local\",\"namespace\":\"team\",\"creationTimestamp\":\"2024-12-31T03:04:05Z\"}," \
    "\"spec\":{\"litellmProvider\":\"ollama\",\"modelName\":\"llama3\",\"endpoint\":\"http://ollama:11434\"}," \
    "\"status\":{\"phase\":\"Ready\"}}"

static void test_model_rows(void **state)
{
    (void)state;
    json_t *objects = fx_json("[" MODEL_GPT "," MODEL_LOCAL "]");
    int64_t now = created + 5 * 60 + 12;
    json_t *table = table_render(kind("LanguageModel"), objects, NULL, TABLE_INCLUDE_METADATA, 1, now);
    assert_int_equal(json_array_size(json_object_get(table, "rows")), 2);
    assert_rows_aligned(table);

    assert_string_cell(table, 0, "Name", "gpt");
    assert_int_equal(column_index(table, "Name"), 0);
    assert_string_cell(table, 0, "Provider", "openai");
    assert_string_cell(table, 0, "Model", "gpt-4o");
    assert_true(json_is_null(cell(table, 0, "Phase")));      /* no status yet: <none> */
    assert_string_cell(table, 0, "Age", "5m12s");
    assert_true(json_is_null(cell(table, 0, "Endpoint")));

    assert_string_cell(table, 1, "Name", "local");
    assert_true(json_is_null(cell(table, 1, "Provider")));   /* litellmProvider instead */
    assert_string_cell(table, 1, "Model", "llama3");
    assert_string_cell(table, 1, "Phase", "Ready");
    assert_string_cell(table, 1, "Age", "2d");               /* two days and 5m12s */
    assert_string_cell(table, 1, "Endpoint", "http://ollama:11434");

    /* the whole Table encodes */
    char *text = json_dumps(table, JSON_COMPACT);
    assert_non_null(text);
    free(text);
    json_decref(table);
    json_decref(objects);
}

static void test_age_of_future_and_broken_timestamps(void **state)
{
    (void)state;
    json_t *objects = fx_json("[" MODEL_GPT "," MODEL_GPT "," MODEL_GPT "]");
    json_object_set_new(json_object_get(json_array_get(objects, 1), "metadata"), "creationTimestamp",
                        json_string("yesterday"));
    json_object_del(json_object_get(json_array_get(objects, 2), "metadata"), "creationTimestamp");
    json_t *table = table_render(kind("LanguageModel"), objects, NULL, TABLE_INCLUDE_METADATA, 1,
                                 created - 3600);
    assert_string_cell(table, 0, "Age", "<invalid>");   /* created an hour in the future */
    assert_string_cell(table, 1, "Age", "<invalid>");   /* not a time */
    assert_true(json_is_null(cell(table, 2, "Age")));
    json_decref(table);

    table = table_render(kind("LanguageModel"), objects, NULL, TABLE_INCLUDE_METADATA, 1, created - 1);
    assert_string_cell(table, 0, "Age", "0s");          /* a clock a second behind */
    json_decref(table);
    json_decref(objects);
}

/* The filter CRD columns use to show one condition, e.g. the agent's Resolved column. */
static void test_agent_resolved_column_filters_conditions(void **state)
{
    (void)state;
    json_t *objects = fx_json(
        "[{\"apiVersion\":\"langop.io/v1alpha1\",\"kind\":\"LanguageAgent\","
        "\"metadata\":{\"name\":\"a\",\"namespace\":\"team\",\"creationTimestamp\":\"" CREATED "\"},"
        "\"spec\":{\"image\":\"agent:1\"},\"status\":{\"conditions\":["
        "{\"type\":\"Ready\",\"status\":\"True\"},{\"type\":\"ReferencesResolved\",\"status\":\"False\"}]}},"
        "{\"apiVersion\":\"langop.io/v1alpha1\",\"kind\":\"LanguageAgent\","
        "\"metadata\":{\"name\":\"b\",\"namespace\":\"team\",\"creationTimestamp\":\"" CREATED "\"},"
        "\"spec\":{\"image\":\"agent:1\"},\"status\":{\"conditions\":[{\"type\":\"Ready\",\"status\":\"True\"}]}}]");
    json_t *table = table_render(kind("LanguageAgent"), objects, NULL, TABLE_INCLUDE_METADATA, 1, created);
    assert_rows_aligned(table);
    assert_string_cell(table, 0, "Resolved", "False");   /* the ReferencesResolved condition, not Ready */
    assert_true(json_is_null(cell(table, 1, "Resolved"))); /* no such condition: <none> */
    json_decref(table);
    json_t *found = table_jsonpath(json_array_get(objects, 0), ".status.conditions[?(@.type=='Ready')].status");
    assert_int_equal(json_array_size(found), 1);
    assert_string_equal(json_string_value(json_array_get(found, 0)), "True");
    json_decref(found);
    json_decref(objects);
}

static void test_agent_models_are_joined(void **state)
{
    (void)state;
    json_t *objects = fx_json(
        "[{\"apiVersion\":\"langop.io/v1alpha1\",\"kind\":\"LanguageAgent\","
        "\"metadata\":{\"name\":\"helper\",\"namespace\":\"team\",\"creationTimestamp\":\"" CREATED "\"},"
        "\"spec\":{\"image\":\"agent:1\",\"models\":[{\"name\":\"gpt\",\"role\":\"primary\"},"
        "{\"name\":\"claude\",\"role\":\"fallback\"}],\"execution\":{\"mode\":\"task\",\"schedule\":\"*/5 * * * *\"}}},"
        "{\"apiVersion\":\"langop.io/v1alpha1\",\"kind\":\"LanguageAgent\","
        "\"metadata\":{\"name\":\"solo\",\"namespace\":\"team\",\"creationTimestamp\":\"" CREATED "\"},"
        "\"spec\":{\"image\":\"agent:1\",\"models\":[{\"name\":\"gpt\"}]}},"
        "{\"apiVersion\":\"langop.io/v1alpha1\",\"kind\":\"LanguageAgent\","
        "\"metadata\":{\"name\":\"empty\",\"namespace\":\"team\",\"creationTimestamp\":\"" CREATED "\"},"
        "\"spec\":{\"image\":\"agent:1\",\"models\":[]}}]");
    json_t *table = table_render(kind("LanguageAgent"), objects, NULL, TABLE_INCLUDE_METADATA, 1,
                                 created + 3 * 3600 + 12 * 60);
    assert_rows_aligned(table);
    assert_string_cell(table, 0, "Models", "gpt,claude");
    assert_string_cell(table, 0, "Mode", "task");
    assert_string_cell(table, 0, "Schedule", "*/5 * * * *");
    assert_string_cell(table, 0, "Age", "3h12m");
    assert_string_cell(table, 1, "Models", "gpt");
    assert_true(json_is_null(cell(table, 1, "Schedule")));
    assert_true(json_is_null(cell(table, 2, "Models")));   /* no models: <none> */
    json_decref(table);
    json_decref(objects);
}

static void test_include_object_variants(void **state)
{
    (void)state;
    json_t *objects = fx_json("[" MODEL_GPT "]");
    json_t *gpt = json_array_get(objects, 0);
    const schema_kind_t *k = kind("LanguageModel");

    json_t *table = table_render(k, objects, NULL, TABLE_INCLUDE_METADATA, 1, created);
    json_t *row = json_array_get(json_object_get(table, "rows"), 0);
    json_t *partial = json_object_get(row, "object");
    assert_string_equal(json_string_value(json_object_get(partial, "kind")), "PartialObjectMetadata");
    assert_string_equal(json_string_value(json_object_get(partial, "apiVersion")), "meta.k8s.io/v1");
    assert_true(json_equal(json_object_get(partial, "metadata"), json_object_get(gpt, "metadata")));
    assert_null(json_object_get(partial, "spec"));   /* metadata only */
    json_decref(table);

    table = table_render(k, objects, NULL, TABLE_INCLUDE_OBJECT, 1, created);
    row = json_array_get(json_object_get(table, "rows"), 0);
    assert_true(json_equal(json_object_get(row, "object"), gpt));
    json_decref(table);

    table = table_render(k, objects, NULL, TABLE_INCLUDE_NONE, 1, created);
    row = json_array_get(json_object_get(table, "rows"), 0);
    json_t *object = json_object_get(row, "object");
    assert_non_null(object);   /* present, as kube sends it: "object": null */
    assert_true(json_is_null(object));
    assert_int_equal(json_array_size(json_object_get(row, "cells")), 7);
    json_decref(table);

    /* an object without its type gets it, so kubectl can decode it */
    json_object_del(gpt, "kind");
    table = table_render(k, objects, NULL, TABLE_INCLUDE_OBJECT, 1, created);
    row = json_array_get(json_object_get(table, "rows"), 0);
    assert_string_equal(json_string_value(json_object_get(json_object_get(row, "object"), "kind")),
                        "LanguageModel");
    assert_null(json_object_get(gpt, "kind"));   /* the caller's object is untouched */
    json_decref(table);
    json_decref(objects);
}

static void test_watch_events_after_the_first_omit_columns(void **state)
{
    (void)state;
    json_t *objects = fx_json("[" MODEL_GPT "]");
    json_t *table = table_render(kind("LanguageModel"), objects, NULL, TABLE_INCLUDE_METADATA, 0, created);
    assert_null(json_object_get(table, "columnDefinitions"));
    json_t *row = json_array_get(json_object_get(table, "rows"), 0);
    assert_int_equal(json_array_size(json_object_get(row, "cells")), 7);   /* cells are still full */
    json_decref(table);
    json_decref(objects);
}

static void test_list_meta_copied(void **state)
{
    (void)state;
    json_t *none = json_array();
    json_t *list_meta = fx_json("{\"resourceVersion\":\"104\",\"continue\":\"tok\",\"remainingItemCount\":3,"
                              "\"selfLink\":\"/x\",\"junk\":1}");
    json_t *table = table_render(kind("LanguageModel"), none, list_meta, TABLE_INCLUDE_METADATA, 1, created);
    json_t *want = fx_json("{\"resourceVersion\":\"104\",\"continue\":\"tok\",\"remainingItemCount\":3}");
    assert_true(json_equal(json_object_get(table, "metadata"), want));
    json_decref(want);
    json_decref(table);

    table = table_render(kind("LanguageModel"), none, NULL, TABLE_INCLUDE_METADATA, 1, created);
    json_t *meta = json_object_get(table, "metadata");
    assert_true(json_is_object(meta));
    assert_int_equal(json_object_size(meta), 0);
    json_decref(table);
    json_decref(list_meta);
    json_decref(none);
}

/* ---- columns no real kind has (yet), and broken ones ---- */

static void test_typed_and_broken_columns(void **state)
{
    (void)state;
    json_t *columns = fx_json(
        "[{\"name\":\"Count\",\"type\":\"integer\",\"jsonPath\":\".spec.count\"},"
        "{\"name\":\"Ratio\",\"type\":\"number\",\"jsonPath\":\".spec.ratio\"},"
        "{\"name\":\"On\",\"type\":\"boolean\",\"jsonPath\":\".spec.on\"},"
        "{\"name\":\"Blob\",\"type\":\"string\",\"jsonPath\":\".spec.blob\",\"format\":\"byte\"},"
        "{\"name\":\"Num\",\"type\":\"string\",\"jsonPath\":\"{.spec.count}\"},"
        "{\"name\":\"Broken\",\"type\":\"string\",\"jsonPath\":\".spec[\",\"priority\":2},"
        "{\"name\":\"Odd\",\"type\":\"object\",\"jsonPath\":\".spec.blob\"},"
        "{\"name\":\"NoPath\",\"type\":\"string\"},"
        "\"not a column\","
        "{\"name\":\"Counts\",\"type\":\"integer\",\"jsonPath\":\".spec.counts[*]\"}]");
    const schema_kind_t widget = { .kind = "Widget", .printer_columns = columns };
    json_t *objects = fx_json(
        "[{\"metadata\":{\"name\":\"w1\"},\"spec\":{\"count\":3.9,\"ratio\":2,\"on\":false,"
        "\"blob\":{\"b\":[1,2],\"a\":\"x\"},\"counts\":[1,\"two\",3]}},"
        "{\"metadata\":{\"name\":\"w2\"},\"spec\":{\"count\":\"3\",\"ratio\":\"half\",\"on\":\"yes\",\"blob\":[]}},"
        "{\"spec\":{}},"
        "42]");
    json_t *table = table_render(&widget, objects, NULL, TABLE_INCLUDE_NONE, 1, created);
    json_t *defs = json_object_get(table, "columnDefinitions");
    assert_int_equal(json_array_size(defs), 9);   /* Name + 8 columns with a name and a path */
    assert_int_equal(json_array_size(json_object_get(table, "rows")), 3);   /* 42 is no object */
    assert_rows_aligned(table);
    json_t *broken = json_array_get(defs, column_index(table, "Broken"));
    assert_int_equal(json_integer_value(json_object_get(broken, "priority")), 2);
    assert_string_equal(json_string_value(json_object_get(broken, "format")), "");
    assert_string_equal(json_string_value(json_object_get(broken, "description")),
                        "The value at jsonPath .spec[.");
    json_t *blob = json_array_get(defs, column_index(table, "Blob"));
    assert_string_equal(json_string_value(json_object_get(blob, "format")), "byte");

    assert_true(json_is_integer(cell(table, 0, "Count")));
    assert_int_equal(json_integer_value(cell(table, 0, "Count")), 3);   /* truncated, as kube */
    assert_true(json_is_real(cell(table, 0, "Ratio")));
    assert_true(json_real_value(cell(table, 0, "Ratio")) == 2.0);
    assert_true(json_is_false(cell(table, 0, "On")));
    assert_string_cell(table, 0, "Blob", "{\"a\":\"x\",\"b\":[1,2]}");
    assert_string_cell(table, 0, "Num", "3.9");
    assert_true(json_is_null(cell(table, 0, "Broken")));
    assert_true(json_is_null(cell(table, 0, "Odd")));
    assert_string_cell(table, 0, "Counts", "1,3");   /* the string is no integer: left out */

    /* values of the wrong type are <none>, as kube does */
    assert_true(json_is_null(cell(table, 1, "Count")));
    assert_true(json_is_null(cell(table, 1, "Ratio")));
    assert_true(json_is_null(cell(table, 1, "On")));
    assert_string_cell(table, 1, "Blob", "[]");
    assert_string_cell(table, 1, "Num", "3");

    assert_string_cell(table, 2, "Name", "");   /* no metadata at all */
    assert_true(json_is_null(cell(table, 2, "Count")));

    char *text = json_dumps(table, JSON_COMPACT);
    assert_non_null(text);
    free(text);
    json_decref(table);

    /* a kind without printer columns, and no objects array: Name only, no rows */
    const schema_kind_t bare = { .kind = "Bare", .printer_columns = NULL };
    table = table_render(&bare, NULL, NULL, TABLE_INCLUDE_METADATA, 1, created);
    assert_int_equal(json_array_size(json_object_get(table, "columnDefinitions")), 1);
    assert_int_equal(json_array_size(json_object_get(table, "rows")), 0);
    json_decref(table);
    json_decref(objects);
    json_decref(columns);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_human_duration_thresholds),
        cmocka_unit_test(test_human_duration_small_buffer),
        cmocka_unit_test(test_parse_include_accepts),
        cmocka_unit_test(test_parse_include_rejects),
        cmocka_unit_test(test_jsonpath_subset),
        cmocka_unit_test(test_jsonpath_broken_paths_find_nothing),
        cmocka_unit_test(test_columns_of_every_kind),
        cmocka_unit_test(test_model_endpoint_column_is_wide_only),
        cmocka_unit_test(test_model_rows),
        cmocka_unit_test(test_age_of_future_and_broken_timestamps),
        cmocka_unit_test(test_agent_models_are_joined),
        cmocka_unit_test(test_agent_resolved_column_filters_conditions),
        cmocka_unit_test(test_include_object_variants),
        cmocka_unit_test(test_watch_events_after_the_first_omit_columns),
        cmocka_unit_test(test_list_meta_copied),
        cmocka_unit_test(test_typed_and_broken_columns),
    };
    return cmocka_run_group_tests(tests, setup_registry, fx_registry_teardown);
}
