/*
 * test_schema.c - the kind registry built from the embedded schema files:
 * what kubectl users see (names, scope, short names, categories, printer
 * columns), what `kubectl explain` shows (a description on every field), the
 * defaults that admission applies, and that a broken file is refused with a
 * message naming it.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "langop/schema/schema.h"

/* Test-only entry of openapi/schema.c: the embedded-file loader on other files. */
int schema__registry_load_files(const schema_embedded_file_t *files, size_t n, lo_err_t *err);

static int load_registry(void **state)
{
    (void)state;
    lo_err_t err = { 0 };
    if (schema_registry_load(&err) < 0) {
        print_error("schema_registry_load: %s\n", err.message);
        lo_err_clear(&err);
        return -1;
    }
    return 0;
}

static int free_registry(void **state)
{
    (void)state;
    schema_registry_free();
    return 0;
}

/* What each kind must look like to kubectl, in the order of openapi/meson.build. */
static const struct expected_kind {
    const char *kind, *list_kind, *plural, *singular, *short_name;
    int namespaced;
    const char *columns[8];
} expected[] = {
    { "LanguageCluster", "LanguageClusterList", "languageclusters", "languagecluster", "lcluster", 0,
      { "Phase", "Gateway", "Models", "Age", NULL } },
    { "LanguageModel", "LanguageModelList", "languagemodels", "languagemodel", "lmodel", 1,
      { "Provider", "Model", "Phase", "Ready", "Age", "Endpoint", NULL } },
    { "LanguageAgent", "LanguageAgentList", "languageagents", "languageagent", "lagent", 1,
      { "Mode", "Phase", "Models", "Resolved", "Schedule", "Age", NULL } },
    { "LanguageTool", "LanguageToolList", "languagetools", "languagetool", "ltool", 1,
      { "Type", "Transport", "Mode", "Port", "Phase", "Age", NULL } },
    { "LanguagePersona", "LanguagePersonaList", "languagepersonas", "languagepersona", "lpersona", 1,
      { "Tone", "Phase", "Age", NULL } },
};
#define N_EXPECTED (sizeof(expected) / sizeof(expected[0]))

static size_t list_len(const char *const *list)
{
    size_t n = 0;
    while (list && list[n])
        n++;
    return n;
}

static void test_five_kinds_in_file_order(void **state)
{
    (void)state;
    assert_int_equal(schema_kind_count(), N_EXPECTED);
    for (size_t i = 0; i < N_EXPECTED; i++) {
        const schema_kind_t *k = schema_kind_at(i);
        assert_non_null(k);
        assert_string_equal(k->kind, expected[i].kind);
        assert_string_equal(k->list_kind, expected[i].list_kind);
        assert_string_equal(k->plural, expected[i].plural);
        assert_string_equal(k->singular, expected[i].singular);
        assert_non_null(k->crd);
        assert_non_null(k->openapi_schema);
    }
    assert_null(schema_kind_at(N_EXPECTED));
}

static void test_lookup_by_resource_and_kind(void **state)
{
    (void)state;
    for (size_t i = 0; i < N_EXPECTED; i++) {
        const schema_kind_t *by_res = schema_kind_by_resource(expected[i].plural);
        const schema_kind_t *by_kind = schema_kind_by_kind(expected[i].kind);
        assert_non_null(by_res);
        assert_ptr_equal(by_res, by_kind);
        assert_ptr_equal(by_res, schema_kind_at(i));
    }
    /* Resources are plural and lower-case; kinds are exact. */
    assert_null(schema_kind_by_resource("languagemodel"));
    assert_null(schema_kind_by_resource("LanguageModel"));
    assert_null(schema_kind_by_resource("lmodel"));
    assert_null(schema_kind_by_kind("languagemodels"));
    assert_null(schema_kind_by_kind("Pod"));
    assert_null(schema_kind_by_resource(NULL));
    assert_null(schema_kind_by_kind(NULL));
}

static void test_scope_names_and_subresources(void **state)
{
    (void)state;
    size_t cluster_scoped = 0;
    for (size_t i = 0; i < N_EXPECTED; i++) {
        const schema_kind_t *k = schema_kind_at(i);
        assert_int_equal(k->namespaced, expected[i].namespaced);
        cluster_scoped += !k->namespaced;
        assert_int_equal(list_len(k->short_names), 1);
        assert_string_equal(k->short_names[0], expected[i].short_name);
        assert_int_equal(list_len(k->categories), 1);
        assert_string_equal(k->categories[0], "langop");
        assert_true(k->has_status);
    }
    assert_int_equal(cluster_scoped, 1);
    assert_false(schema_kind_by_kind("LanguageCluster")->namespaced);
}

/*
 * Walks every schema node reachable through properties, items and
 * additionalProperties; counts nodes, and nodes without a description
 * (printing their path). path holds the node's path; it is extended in place.
 */
static void walk_descriptions(const json_t *node, char *path, size_t cap, size_t *nodes, size_t *missing)
{
    size_t len = strlen(path);
    const char *desc = json_string_value(json_object_get(node, "description"));
    const char *key;
    json_t *child;

    (*nodes)++;
    /* kube-apiserver refuses a description on a CRD's root metadata; /openapi supplies ObjectMeta's */
    const char *dot = strchr(path, '.');
    int root_metadata = dot != NULL && strcmp(dot, ".metadata") == 0;
    if (!root_metadata && (desc == NULL || desc[strspn(desc, " \t\n")] == '\0')) {
        print_error("no description: %s\n", path);
        (*missing)++;
    }
    json_object_foreach(json_object_get(node, "properties"), key, child) {
        snprintf(path + len, cap - len, ".%s", key);
        walk_descriptions(child, path, cap, nodes, missing);
    }
    if ((child = json_object_get(node, "items")) != NULL) {
        snprintf(path + len, cap - len, "[]");
        walk_descriptions(child, path, cap, nodes, missing);
    }
    if (json_is_object(child = json_object_get(node, "additionalProperties"))) {
        snprintf(path + len, cap - len, "{}");
        walk_descriptions(child, path, cap, nodes, missing);
    }
    path[len] = '\0';
}

static void test_every_field_has_a_description(void **state)
{
    (void)state;
    size_t missing = 0;
    for (size_t i = 0; i < schema_kind_count(); i++) {
        const schema_kind_t *k = schema_kind_at(i);
        char path[512];
        size_t nodes = 0;
        snprintf(path, sizeof(path), "%s", k->kind);
        walk_descriptions(k->openapi_schema, path, sizeof(path), &nodes, &missing);
        /* The smallest kind (persona) has more than 15 nodes: the walk really went deep. */
        assert_true(nodes > 15);
    }
    assert_int_equal(missing, 0);
}

static void test_printer_columns(void **state)
{
    (void)state;
    for (size_t i = 0; i < N_EXPECTED; i++) {
        const schema_kind_t *k = schema_kind_at(i);
        const json_t *cols = k->printer_columns;
        int age_seen = 0;
        assert_true(json_is_array(cols));
        assert_int_equal(json_array_size(cols), list_len(expected[i].columns));
        for (size_t c = 0; c < json_array_size(cols); c++) {
            const json_t *col = json_array_get(cols, c);
            const char *name = json_string_value(json_object_get(col, "name"));
            const char *type = json_string_value(json_object_get(col, "type"));
            const char *path = json_string_value(json_object_get(col, "jsonPath"));
            assert_non_null(name);
            assert_non_null(type);
            assert_non_null(path);
            assert_string_equal(name, expected[i].columns[c]);
            assert_int_equal(path[0], '.');
            if (strcmp(name, "Age") == 0) {
                assert_string_equal(type, "date");
                assert_string_equal(path, ".metadata.creationTimestamp");
                age_seen = 1;
            }
        }
        assert_true(age_seen);
    }
}

/* The schema node at a dotted path of property names; "[]" steps into items. Borrowed; NULL if absent. */
static const json_t *field(const char *kind, const char *dotted)
{
    const json_t *node = schema_kind_by_kind(kind)->openapi_schema;
    char buf[256];
    snprintf(buf, sizeof(buf), "%s", dotted);
    for (char *save = NULL, *seg = strtok_r(buf, ".", &save); seg && node; seg = strtok_r(NULL, ".", &save)) {
        size_t n = strlen(seg);
        int items = n > 2 && strcmp(seg + n - 2, "[]") == 0;
        if (items)
            seg[n - 2] = '\0';
        node = json_object_get(json_object_get(node, "properties"), seg);
        if (items)
            node = json_object_get(node, "items");
    }
    return node;
}

static void assert_default_string(const char *kind, const char *path, const char *want)
{
    const json_t *node = field(kind, path);
    if (node == NULL)
        fail_msg("%s: no field %s", kind, path);
    const char *got = json_string_value(json_object_get(node, "default"));
    if (got == NULL || strcmp(got, want) != 0)
        fail_msg("%s.%s: default is %s, want \"%s\"", kind, path, got ? got : "not a string", want);
}

static void test_defaults(void **state)
{
    (void)state;
    assert_default_string("LanguageModel", "spec.timeout", "5m");
    assert_default_string("LanguageModel", "spec.apiKeySecretRef.key", "api-key");
    assert_default_string("LanguageAgent", "spec.models[].role", "primary");
    assert_default_string("LanguageAgent", "spec.execution.mode", "service");
    assert_default_string("LanguageAgent", "spec.execution.concurrencyPolicy", "Forbid");
    assert_default_string("LanguageTool", "spec.type", "mcp");
    assert_default_string("LanguageTool", "spec.transport", "streamable-http");
    assert_default_string("LanguageTool", "spec.deploymentMode", "service");

    const json_t *enabled = field("LanguageAgent", "spec.tools[].enabled");
    assert_non_null(enabled);
    assert_true(json_is_true(json_object_get(enabled, "default")));

    const json_t *port = field("LanguageTool", "spec.port");
    assert_non_null(port);
    assert_true(json_is_integer(json_object_get(port, "default")));
    assert_int_equal(json_integer_value(json_object_get(port, "default")), 8080);
}

static int in_string_array(const json_t *array, const char *s)
{
    size_t i;
    json_t *v;
    json_array_foreach(array, i, v)
        if (json_is_string(v) && strcmp(json_string_value(v), s) == 0)
            return 1;
    return 0;
}

static void assert_required(const char *kind, const char *object_path, const char *name)
{
    const json_t *node = field(kind, object_path);
    if (node == NULL || !in_string_array(json_object_get(node, "required"), name))
        fail_msg("%s.%s: %s is not required", kind, object_path, name);
}

static void assert_list_map(const char *kind, const char *path, const char *key)
{
    const json_t *node = field(kind, path);
    assert_non_null(node);
    assert_string_equal(json_string_value(json_object_get(node, "x-kubernetes-list-type")), "map");
    const json_t *keys = json_object_get(node, "x-kubernetes-list-map-keys");
    assert_int_equal(json_array_size(keys), 1);
    assert_string_equal(json_string_value(json_array_get(keys, 0)), key);
}

static void test_required_fields_and_list_keys(void **state)
{
    (void)state;
    assert_required("LanguageModel", "spec", "modelName");
    assert_required("LanguageModel", "spec.apiKeySecretRef", "name");
    assert_required("LanguageAgent", "spec.models[]", "name");
    assert_required("LanguageAgent", "spec.tools[]", "name");
    assert_required("LanguageTool", "spec", "image");

    assert_list_map("LanguageAgent", "spec.models", "name");
    assert_list_map("LanguageAgent", "spec.tools", "name");
    assert_list_map("LanguageAgent", "spec.ports", "name");
    for (size_t i = 0; i < N_EXPECTED; i++)
        assert_list_map(expected[i].kind, "status.conditions", "type");

    const json_t *fallbacks = field("LanguageModel", "spec.fallbacks");
    assert_non_null(fallbacks);
    assert_string_equal(json_string_value(json_object_get(fallbacks, "x-kubernetes-list-type")), "set");
    assert_string_equal(json_string_value(json_object_get(json_object_get(fallbacks, "items"), "type")), "string");
}

static void test_fields_left_out_are_absent(void **state)
{
    (void)state;
    static const char *const agent_out[] = { "runtime", "workspace", "repository", "networkPolicies",
                                             "credentials", "selfConfigure", "monitoring", NULL };
    static const char *const cluster_out[] = { "ingress", "networkPolicies", "auth", NULL };
    char path[64];
    for (size_t i = 0; agent_out[i]; i++) {
        snprintf(path, sizeof(path), "spec.%s", agent_out[i]);
        assert_null(field("LanguageAgent", path));
    }
    for (size_t i = 0; cluster_out[i]; i++) {
        snprintf(path, sizeof(path), "spec.%s", cluster_out[i]);
        assert_null(field("LanguageCluster", path));
    }
    /* and what must be there, so the lookups above can fail */
    assert_non_null(field("LanguageAgent", "spec.deployment.serviceAccountName"));
    assert_non_null(field("LanguageCluster", "spec.gateway.tolerations[].effect"));
    assert_non_null(field("LanguageCluster", "status.modelCount"));
}

/* A minimal valid CRD; the broken variants below differ from it in one place. */
#define CRD_HEAD "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\n" \
                 "metadata: {name: widgets.langop.io}\n"
#define CRD_NAMES "  names: {kind: Widget, listKind: WidgetList, plural: widgets, singular: widget, shortNames: [wd]}\n"
#define CRD_VERSION(sub, schema) \
    "  versions:\n  - name: v1alpha1\n    served: true\n    storage: true\n" sub \
    "    schema: " schema "\n"
#define GOOD_SCHEMA "{openAPIV3Schema: {type: object, description: A widget.}}"
#define GOOD_CRD CRD_HEAD "spec:\n  group: langop.io\n  scope: Namespaced\n" CRD_NAMES \
    CRD_VERSION("    subresources: {status: {}}\n", GOOD_SCHEMA)

static void assert_load_fails(const char *text, const char *want_in_message)
{
    schema_embedded_file_t file = { "widgets.yaml", text, strlen(text) };
    lo_err_t err = { 0 };
    assert_int_equal(schema__registry_load_files(&file, 1, &err), -1);
    if (strstr(err.message, "widgets.yaml") == NULL || strstr(err.message, want_in_message) == NULL)
        fail_msg("message \"%s\" should name the file and say \"%s\"", err.message, want_in_message);
    lo_err_clear(&err);
    /* A failed load leaves the loaded registry alone. */
    assert_int_equal(schema_kind_count(), N_EXPECTED);
}

static void test_broken_files_are_refused(void **state)
{
    (void)state;
    assert_load_fails("kind: [unclosed", "widgets.yaml");
    assert_load_fails("- a list\n", "not a YAML mapping");
    assert_load_fails(CRD_HEAD "spec: {}\n", "spec.group");
    assert_load_fails(CRD_HEAD "spec:\n  group: langop.io\n  scope: Namespaced\n"
                      "  names: {kind: Widget, listKind: WidgetList, singular: widget}\n"
                      CRD_VERSION("", GOOD_SCHEMA), "spec.names.plural");
    assert_load_fails(CRD_HEAD "spec:\n  group: langop.io\n  scope: Galaxy\n" CRD_NAMES
                      CRD_VERSION("", GOOD_SCHEMA), "spec.scope");
    assert_load_fails(CRD_HEAD "spec:\n  group: langop.io\n  scope: Namespaced\n" CRD_NAMES
                      CRD_VERSION("", "{}"), "openAPIV3Schema");
    assert_load_fails(CRD_HEAD "spec:\n  group: langop.io\n  scope: Namespaced\n" CRD_NAMES
                      CRD_VERSION("    subresources: {scale: {}}\n", GOOD_SCHEMA), "subresources.scale");
    assert_load_fails(CRD_HEAD "spec:\n  group: langop.io\n  scope: Namespaced\n" CRD_NAMES
                      CRD_VERSION("    additionalPrinterColumns: [{name: Age, type: date}]\n", GOOD_SCHEMA),
                      "jsonPath");
    assert_load_fails("apiVersion: v1\nkind: ConfigMap\n", "CustomResourceDefinition");
}

/* Runs last: replaces the registry, then restores the embedded one. */
static void test_custom_file_and_name_clash(void **state)
{
    lo_err_t err = { 0 };
    schema_embedded_file_t good = { "widgets.yaml", GOOD_CRD, strlen(GOOD_CRD) };
    schema_embedded_file_t twice[2] = { good, good };

    assert_int_equal(schema__registry_load_files(twice, 2, &err), -1);
    assert_non_null(strstr(err.message, "clashes"));
    lo_err_clear(&err);

    assert_int_equal(schema__registry_load_files(&good, 1, &err), 0);
    assert_int_equal(schema_kind_count(), 1);
    const schema_kind_t *w = schema_kind_by_resource("widgets");
    assert_non_null(w);
    assert_true(w->namespaced);
    assert_true(w->has_status);
    assert_string_equal(w->short_names[0], "wd");
    assert_null(w->categories[0]);
    assert_true(json_is_array(w->printer_columns));
    assert_int_equal(json_array_size(w->printer_columns), 0);
    assert_null(schema_kind_by_kind("LanguageModel"));

    assert_int_equal(load_registry(state), 0);
    assert_int_equal(schema_kind_count(), N_EXPECTED);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_five_kinds_in_file_order),
        cmocka_unit_test(test_lookup_by_resource_and_kind),
        cmocka_unit_test(test_scope_names_and_subresources),
        cmocka_unit_test(test_every_field_has_a_description),
        cmocka_unit_test(test_printer_columns),
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_required_fields_and_list_keys),
        cmocka_unit_test(test_fields_left_out_are_absent),
        cmocka_unit_test(test_broken_files_are_refused),
        cmocka_unit_test(test_custom_file_and_name_clash),
    };
    return cmocka_run_group_tests(tests, load_registry, free_registry);
}
