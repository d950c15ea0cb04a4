/*
 * schema.c - the registry of kinds (see langop/schema.h).
 *
 * Promise: after schema_registry_load() returns 0, every embedded schema file
 * is a well-formed CustomResourceDefinition of group langop.io with exactly
 * one version, v1alpha1, served and stored; its names, scope, subresources,
 * printer columns and openAPIV3Schema are reachable through a schema_kind_t;
 * and no two kinds share a kind name, resource name or short name. A file
 * that breaks any of this stops the load with an error naming the file and
 * what is wrong, so a bad schema edit fails at startup, never at request time.
 *
 * State: one registry, owned by this file. It is written only by
 * schema_registry_load() and schema_registry_free(), which run before any
 * thread starts and after all have stopped; in between it is read-only, so
 * readers need no lock. A load builds a new registry aside and swaps it in
 * only when every file passed, so a failed load leaves no half-built kinds.
 *
 * Ownership: the registry holds one reference to each decoded CRD document.
 * Every string and json_t reachable from a schema_kind_t is borrowed from
 * that document; the short-name and category arrays are allocated here.
 */
#include "langop/schema/schema.h"

#include <stdlib.h>
#include <string.h>

#include "langop/core/codec.h"

typedef struct registry {
    schema_kind_t *kinds;
    json_t **docs;      /* owned: docs[i] backs kinds[i] */
    size_t count;
} registry_t;

static registry_t registry;

/* Printer column types a Table may carry (CRD additionalPrinterColumns). */
static const char *const column_types[] = {
    "integer", "number", "string", "boolean", "date", NULL,
};

static void kind_release(schema_kind_t *k, json_t *doc)
{
    free((void *)k->short_names);
    free((void *)k->categories);
    json_decref(doc);
    memset(k, 0, sizeof(*k));
}

static void registry_release(registry_t *r)
{
    for (size_t i = 0; i < r->count; i++)
        kind_release(&r->kinds[i], r->docs[i]);
    free(r->kinds);
    free(r->docs);
    memset(r, 0, sizeof(*r));
}

static int in_list(const char *s, const char *const *list)
{
    for (; *list; list++)
        if (strcmp(s, *list) == 0)
            return 1;
    return 0;
}

/* A non-empty string member of obj, or NULL. Borrowed from obj. */
static const char *member_string(const json_t *obj, const char *key)
{
    const char *s = json_string_value(json_object_get(obj, key));
    return (s && *s) ? s : NULL;
}

/*
 * Reads the optional string list obj[key] into a new NULL-terminated array
 * whose strings are borrowed from obj. Returns NULL (err filled) when the
 * member is there but is not a list of non-empty strings.
 */
static const char **string_list(const char *file, const json_t *obj, const char *key, lo_err_t *err)
{
    const json_t *list = json_object_get(obj, key);
    if (list && !json_is_array(list)) {
        lo_err_set(err, 500, "InternalError", "openapi/%s: spec.names.%s is not a list", file, key);
        return NULL;
    }
    size_t n = json_array_size(list);
    const char **out = lo_calloc(n + 1, sizeof(*out));
    for (size_t i = 0; i < n; i++) {
        out[i] = json_string_value(json_array_get(list, i));
        if (out[i] == NULL || *out[i] == '\0') {
            lo_err_set(err, 500, "InternalError", "openapi/%s: spec.names.%s[%zu] is not a non-empty string",
                       file, key, i);
            free(out);
            return NULL;
        }
    }
    return out;
}

static int check_names(const char *file, const json_t *names, schema_kind_t *k, lo_err_t *err)
{
    static const char *const required[] = { "kind", "listKind", "plural", "singular" };
    for (size_t i = 0; i < sizeof(required) / sizeof(required[0]); i++) {
        if (member_string(names, required[i]) == NULL) {
            lo_err_set(err, 500, "InternalError", "openapi/%s: spec.names.%s is missing or empty", file, required[i]);
            return -1;
        }
    }
    k->kind = member_string(names, "kind");
    k->list_kind = member_string(names, "listKind");
    k->plural = member_string(names, "plural");
    k->singular = member_string(names, "singular");
    if ((k->short_names = string_list(file, names, "shortNames", err)) == NULL)
        return -1;
    if ((k->categories = string_list(file, names, "categories", err)) == NULL)
        return -1;
    return 0;
}

/* metadata.name of a CRD must be <plural>.<group>, or kubectl apply refuses it. */
static int check_crd_name(const char *file, const json_t *doc, const schema_kind_t *k, lo_err_t *err)
{
    const char *name = member_string(json_object_get(doc, "metadata"), "name");
    char *want = lo_sprintf("%s.%s", k->plural, SCHEMA_GROUP);
    int ok = name && strcmp(name, want) == 0;
    if (!ok)
        lo_err_set(err, 500, "InternalError", "openapi/%s: metadata.name must be %s", file, want);
    free(want);
    return ok ? 0 : -1;
}

static int check_scope(const char *file, const json_t *spec, schema_kind_t *k, lo_err_t *err)
{
    const char *scope = member_string(spec, "scope");
    if (scope && strcmp(scope, "Namespaced") == 0) {
        k->namespaced = 1;
        return 0;
    }
    if (scope && strcmp(scope, "Cluster") == 0) {
        k->namespaced = 0;
        return 0;
    }
    lo_err_set(err, 500, "InternalError", "openapi/%s: spec.scope must be Namespaced or Cluster", file);
    return -1;
}

/* Only the status subresource is served; declaring another would be a promise we do not keep. */
static int check_subresources(const char *file, const json_t *version, schema_kind_t *k, lo_err_t *err)
{
    const json_t *sub = json_object_get(version, "subresources");
    const char *key;
    const json_t *value;

    k->has_status = 0;
    if (sub == NULL)
        return 0;
    if (!json_is_object(sub)) {
        lo_err_set(err, 500, "InternalError", "openapi/%s: versions[0].subresources is not an object", file);
        return -1;
    }
    json_object_foreach((json_t *)sub, key, value) {
        if (strcmp(key, "status") != 0) {
            lo_err_set(err, 500, "InternalError", "openapi/%s: versions[0].subresources.%s is not supported", file, key);
            return -1;
        }
        if (!json_is_object(value)) {
            lo_err_set(err, 500, "InternalError", "openapi/%s: versions[0].subresources.status is not an object", file);
            return -1;
        }
        k->has_status = 1;
    }
    return 0;
}

/*
 * Every column needs name, type and jsonPath, or the Table renderer would
 * emit a column it cannot fill. A version without columns gets an empty
 * list, so that printer_columns is never NULL.
 */
static int check_columns(const char *file, json_t *version, schema_kind_t *k, lo_err_t *err)
{
    json_t *cols = json_object_get(version, "additionalPrinterColumns");
    if (cols == NULL) {
        cols = json_array();
        json_object_set_new(version, "additionalPrinterColumns", cols);
    }
    if (!json_is_array(cols)) {
        lo_err_set(err, 500, "InternalError", "openapi/%s: versions[0].additionalPrinterColumns is not a list", file);
        return -1;
    }
    for (size_t i = 0; i < json_array_size(cols); i++) {
        const json_t *col = json_array_get(cols, i);
        const char *type = member_string(col, "type");
        if (member_string(col, "name") == NULL || member_string(col, "jsonPath") == NULL || type == NULL) {
            lo_err_set(err, 500, "InternalError",
                       "openapi/%s: additionalPrinterColumns[%zu] needs a name, a type and a jsonPath", file, i);
            return -1;
        }
        if (!in_list(type, column_types)) {
            lo_err_set(err, 500, "InternalError", "openapi/%s: additionalPrinterColumns[%zu].type \"%s\" is not a column type",
                       file, i, type);
            return -1;
        }
    }
    k->printer_columns = cols;
    return 0;
}

static int check_version(const char *file, json_t *spec, schema_kind_t *k, lo_err_t *err)
{
    json_t *versions = json_object_get(spec, "versions");
    if (!json_is_array(versions) || json_array_size(versions) != 1) {
        lo_err_set(err, 500, "InternalError", "openapi/%s: spec.versions must list exactly one version", file);
        return -1;
    }
    json_t *v = json_array_get(versions, 0);
    const char *name = member_string(v, "name");
    if (name == NULL || strcmp(name, SCHEMA_VERSION) != 0) {
        lo_err_set(err, 500, "InternalError", "openapi/%s: versions[0].name must be %s", file, SCHEMA_VERSION);
        return -1;
    }
    if (!json_is_true(json_object_get(v, "served")) || !json_is_true(json_object_get(v, "storage"))) {
        lo_err_set(err, 500, "InternalError", "openapi/%s: versions[0] must be served: true and storage: true", file);
        return -1;
    }
    const json_t *schema = json_object_get(json_object_get(v, "schema"), "openAPIV3Schema");
    const char *type = member_string(schema, "type");
    if (!json_is_object(schema) || type == NULL || strcmp(type, "object") != 0) {
        lo_err_set(err, 500, "InternalError",
                   "openapi/%s: versions[0].schema.openAPIV3Schema is missing or not of type object", file);
        return -1;
    }
    k->openapi_schema = schema;
    if (check_subresources(file, v, k, err) < 0)
        return -1;
    return check_columns(file, v, k, err);
}

/* Fills k from doc, whose references it borrows. On failure k may hold allocations; kind_release() frees them. */
static int kind_from_crd(const char *file, json_t *doc, schema_kind_t *k, lo_err_t *err)
{
    const char *api_version = member_string(doc, "apiVersion");
    const char *kind = member_string(doc, "kind");
    if (api_version == NULL || strcmp(api_version, "apiextensions.k8s.io/v1") != 0 ||
        kind == NULL || strcmp(kind, "CustomResourceDefinition") != 0) {
        lo_err_set(err, 500, "InternalError",
                   "openapi/%s: not an apiextensions.k8s.io/v1 CustomResourceDefinition", file);
        return -1;
    }
    json_t *spec = json_object_get(doc, "spec");
    if (!json_is_object(spec)) {
        lo_err_set(err, 500, "InternalError", "openapi/%s: spec is missing", file);
        return -1;
    }
    const char *group = member_string(spec, "group");
    if (group == NULL || strcmp(group, SCHEMA_GROUP) != 0) {
        lo_err_set(err, 500, "InternalError", "openapi/%s: spec.group must be %s", file, SCHEMA_GROUP);
        return -1;
    }
    const json_t *names = json_object_get(spec, "names");
    if (!json_is_object(names)) {
        lo_err_set(err, 500, "InternalError", "openapi/%s: spec.names is missing", file);
        return -1;
    }
    if (check_names(file, names, k, err) < 0 || check_crd_name(file, doc, k, err) < 0 ||
        check_scope(file, spec, k, err) < 0 || check_version(file, spec, k, err) < 0)
        return -1;
    k->crd = doc;
    return 0;
}

/* Whether word is used by kinds[0..n) as a kind, resource or short name. */
static const schema_kind_t *name_taken(const schema_kind_t *kinds, size_t n, const char *word)
{
    for (size_t i = 0; i < n; i++) {
        const schema_kind_t *k = &kinds[i];
        if (strcmp(k->kind, word) == 0 || strcmp(k->plural, word) == 0 || strcmp(k->singular, word) == 0 ||
            in_list(word, k->short_names))
            return k;
    }
    return NULL;
}

/* kubectl resolves kinds, resources and short names in one namespace; a clash would make one unreachable. */
static int check_unique(const char *file, const schema_kind_t *kinds, size_t n, const schema_kind_t *k, lo_err_t *err)
{
    const char *const words[] = { k->kind, k->plural, k->singular, NULL };
    const schema_kind_t *other = NULL;
    for (size_t i = 0; words[i] && other == NULL; i++)
        other = name_taken(kinds, n, words[i]);
    for (size_t i = 0; k->short_names[i] && other == NULL; i++)
        other = name_taken(kinds, n, k->short_names[i]);
    if (other == NULL)
        return 0;
    lo_err_set(err, 500, "InternalError", "openapi/%s: kind %s clashes with the names of kind %s", file, k->kind,
               other->kind);
    return -1;
}

/*
 * Exported for tests only (no header): loads the given files instead of the
 * embedded ones, with the same checks. Declared by the unit test itself.
 */
int schema__registry_load_files(const schema_embedded_file_t *files, size_t n, lo_err_t *err)
{
    registry_t fresh = {
        .kinds = lo_calloc(n, sizeof(schema_kind_t)),
        .docs = lo_calloc(n, sizeof(json_t *)),
        .count = 0,
    };
    int ret = -1;

    for (size_t i = 0; i < n; i++) {
        const char *file = files[i].name;
        lo_err_t cerr = { 0 };
        json_t *doc = codec_decode_yaml(files[i].text, files[i].len, &cerr);
        if (doc == NULL) {
            lo_err_set(err, 500, "InternalError", "openapi/%s: %s", file, cerr.message);
            lo_err_clear(&cerr);
            goto Exit;
        }
        if (!json_is_object(doc)) {
            lo_err_set(err, 500, "InternalError", "openapi/%s: not a YAML mapping", file);
            json_decref(doc);
            goto Exit;
        }
        /* Counted first so that registry_release() frees whatever kind_from_crd left behind. */
        fresh.docs[fresh.count] = doc;
        schema_kind_t *k = &fresh.kinds[fresh.count++];
        if (kind_from_crd(file, doc, k, err) < 0 || check_unique(file, fresh.kinds, fresh.count - 1, k, err) < 0)
            goto Exit;
    }
    registry_release(&registry);
    registry = fresh;
    ret = 0;
Exit:
    if (ret < 0)
        registry_release(&fresh);
    return ret;
}

int schema_registry_load(lo_err_t *err)
{
    return schema__registry_load_files(schema_embedded_files, schema_embedded_count, err);
}

void schema_registry_free(void)
{
    registry_release(&registry);
}

size_t schema_kind_count(void)
{
    return registry.count;
}

const schema_kind_t *schema_kind_at(size_t i)
{
    return i < registry.count ? &registry.kinds[i] : NULL;
}

const schema_kind_t *schema_kind_by_resource(const char *plural)
{
    for (size_t i = 0; plural && i < registry.count; i++)
        if (strcmp(registry.kinds[i].plural, plural) == 0)
            return &registry.kinds[i];
    return NULL;
}

const schema_kind_t *schema_kind_by_kind(const char *kind)
{
    for (size_t i = 0; kind && i < registry.count; i++)
        if (strcmp(registry.kinds[i].kind, kind) == 0)
            return &registry.kinds[i];
    return NULL;
}
