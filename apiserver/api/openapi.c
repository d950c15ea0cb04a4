/*
 * openapi.c - the OpenAPI documents, generated once from the schema
 * registry and served as prerendered bytes.
 *
 * The v3 document for langop.io/v1alpha1 is built first, shaped the way
 * kube-apiserver publishes CustomResourceDefinitions: one path per served
 * verb, the CRD's openAPIV3Schema as the kind's schema (extensions kept),
 * metadata wired to ObjectMeta through `allOf` so that its description
 * shows, and the meta.k8s.io schemas the document refers to, so that it is
 * self-contained (the aggregator serves it unmerged). The v2 document is a
 * mechanical translation of the v3 one (references, body parameters,
 * consumes/produces), so the two cannot drift apart.
 *
 * Invariant: after openapi_new() returns, nothing here changes; any number
 * of threads may call openapi_handle() at once.
 */
#include "langop/api/openapi.h"
#include "langop/api/openapiproto.h"
#include "langop/derive/derive.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "langop/core/status.h"
#include "langop/request/negotiate.h"
#include "langop/schema/schema.h"

#define V3_REF "#/components/schemas/"
#define V2_REF "#/definitions/"
#define META "io.k8s.apimachinery.pkg.apis.meta.v1."
#define GV_KEY "apis/" SCHEMA_GROUP_VERSION
#define PATH_V2 "/openapi/v2"
#define PATH_V3 "/openapi/v3"
#define PATH_V3_GV PATH_V3 "/" GV_KEY
#define API_ROOT "/" GV_KEY
#define ONE_YEAR (365 * 24 * 3600)

/* ------------------------------------------------------------------------- */
/* The meta.k8s.io/v1 schemas, as data.                                      */
/* ------------------------------------------------------------------------- */

/*
 * A field's shape, in a small notation:
 *   string | boolean | int32 | int64 | object   a scalar (object: free-form)
 *   Time                                        a reference to META "Time" (capitalised = reference)
 *   [X]                                         an array of X
 *   [X] set | [X] atomic | [X] map:key          ... with its x-kubernetes-list-type
 *   {X}                                         a map from string to X
 */
typedef struct meta_field {
    const char *name;
    const char *shape;
    const char *description;
} meta_field_t;

typedef struct meta_schema {
    const char *name;           /* component name after META */
    const char *type;           /* "object" or "string" */
    const char *format;         /* or NULL */
    const char *description;
    const char *const *required;    /* NULL-terminated or NULL */
    const meta_field_t *fields;     /* terminated by a NULL name, or NULL */
    const char *gvk_kind;       /* the kind of x-kubernetes-group-version-kind (core v1), or NULL */
    int gvk_in_group;           /* also list langop.io/v1alpha1 as a GVK (DeleteOptions) */
    const char *map_type;       /* x-kubernetes-map-type, or NULL */
} meta_schema_t;

static const meta_field_t object_meta_fields[] = {
    {"annotations", "{string}", "Free-form key/value pairs that tools and controllers attach to the object; "
                                "not used for selection."},
    {"creationTimestamp", "Time", "When the server created the object (RFC 3339, UTC). Set by the server; "
                                  "read-only."},
    {"deletionGracePeriodSeconds", "int64", "Seconds the object is given to finish before it is removed; "
                                            "set together with deletionTimestamp. Read-only."},
    {"deletionTimestamp", "Time", "When deletion of the object was requested; the object remains until its "
                                  "finalizers are gone. Set by the server; read-only."},
    {"finalizers", "[string] set", "Names of the parties that must finish clean-up before the object is removed "
                                   "from storage."},
    {"generateName", "string", "A prefix from which the server generates a unique name when name is empty."},
    {"generation", "int64", "A counter the server increments on every change of the desired state (spec). "
                            "Read-only."},
    {"labels", "{string}", "Key/value pairs used to organise and select objects (label selectors)."},
    {"managedFields", "[ManagedFieldsEntry] atomic", "Which field manager owns which fields, as recorded by the "
                                                     "server for server-side apply."},
    {"name", "string", "The object's name, unique within its namespace (or the cluster, for cluster-scoped "
                       "kinds). Cannot be changed."},
    {"namespace", "string", "The namespace the object lives in; empty for cluster-scoped kinds. Cannot be "
                            "changed."},
    {"ownerReferences", "[OwnerReference] map:uid", "Objects this object depends on; when all of them are "
                                                    "deleted, this one is garbage-collected."},
    {"resourceVersion", "string", "An opaque value that changes whenever the object changes; used for "
                                  "optimistic concurrency and to resume watches. Read-only."},
    {"selfLink", "string", "Deprecated; always empty."},
    {"uid", "string", "A unique identifier the server assigns at creation and never reuses. Read-only."},
    {NULL, NULL, NULL},
};

static const meta_field_t list_meta_fields[] = {
    {"continue", "string", "Set when the list was cut short by limit: pass it back as continue to get the next "
                           "page. It expires when the server compacts old versions."},
    {"remainingItemCount", "int64", "How many items follow this page, when the server can tell; an estimate "
                                    "when a selector is in use."},
    {"resourceVersion", "string", "The version of the store this list was read at; a watch from here sees "
                                  "every later change."},
    {"selfLink", "string", "Deprecated; always empty."},
    {NULL, NULL, NULL},
};

static const meta_field_t managed_fields_fields[] = {
    {"apiVersion", "string", "The group/version the fields are expressed in."},
    {"fieldsType", "string", "The format of the fields entry; only FieldsV1 exists."},
    {"fieldsV1", "FieldsV1", "The set of fields this manager owns."},
    {"manager", "string", "The name of the field manager (the fieldManager query parameter)."},
    {"operation", "string", "The kind of write that recorded this entry: Apply or Update."},
    {"subresource", "string", "The subresource written through (for example status), or empty for the main "
                              "resource."},
    {"time", "Time", "When this manager last changed one of its fields."},
    {NULL, NULL, NULL},
};

static const char *const owner_reference_required[] = {"apiVersion", "kind", "name", "uid", NULL};
static const meta_field_t owner_reference_fields[] = {
    {"apiVersion", "string", "Group/version of the owner."},
    {"blockOwnerDeletion", "boolean", "When true, a foreground deletion of the owner waits for this object to "
                                      "be deleted first."},
    {"controller", "boolean", "When true, the owner is the managing controller of this object; at most one "
                              "owner may say so."},
    {"kind", "string", "Kind of the owner."},
    {"name", "string", "Name of the owner."},
    {"uid", "string", "UID of the owner."},
    {NULL, NULL, NULL},
};

static const meta_field_t status_fields[] = {
    {"apiVersion", "string", "Always v1 for a Status."},
    {"code", "int32", "The HTTP status code of the response."},
    {"details", "StatusDetails", "More data about the failure, depending on reason; may be empty."},
    {"kind", "string", "Always Status."},
    {"message", "string", "A readable explanation of what happened."},
    {"metadata", "ListMeta", "List metadata; normally empty."},
    {"reason", "string", "A CamelCase word for the failure (NotFound, AlreadyExists, Conflict, Invalid ...); "
                         "empty when there is nothing more to say."},
    {"status", "string", "Success or Failure."},
    {NULL, NULL, NULL},
};

static const meta_field_t status_details_fields[] = {
    {"causes", "[StatusCause] atomic", "The individual problems found, for example one per invalid field."},
    {"group", "string", "The API group of the resource the failure concerns."},
    {"kind", "string", "The resource (or kind) the failure concerns."},
    {"name", "string", "The name of the object the failure concerns, when there is one."},
    {"retryAfterSeconds", "int32", "How long a client should wait before retrying, when the server says."},
    {"uid", "string", "The UID of the object the failure concerns, when known."},
    {NULL, NULL, NULL},
};

static const meta_field_t status_cause_fields[] = {
    {"field", "string", "The path of the field at fault, for example spec.models[0].name; empty when the "
                        "cause is not about one field."},
    {"message", "string", "A readable description of this cause."},
    {"reason", "string", "A machine-readable word for this cause, for example FieldValueRequired."},
    {NULL, NULL, NULL},
};

static const meta_field_t delete_options_fields[] = {
    {"apiVersion", "string", "Group/version of this representation; v1 or empty."},
    {"dryRun", "[string] atomic", "When it holds All, the request is checked and answered but nothing is "
                                  "changed."},
    {"gracePeriodSeconds", "int64", "Seconds before the object is removed; 0 means now."},
    {"kind", "string", "Always DeleteOptions, or empty."},
    {"orphanDependents", "boolean", "Deprecated; use propagationPolicy."},
    {"preconditions", "Preconditions", "Conditions the object must meet for the delete to go ahead."},
    {"propagationPolicy", "string", "What happens to dependents: Orphan, Background (the default) or "
                                    "Foreground."},
    {NULL, NULL, NULL},
};

static const meta_field_t preconditions_fields[] = {
    {"resourceVersion", "string", "The object's resourceVersion must equal this value."},
    {"uid", "string", "The object's UID must equal this value."},
    {NULL, NULL, NULL},
};

static const meta_schema_t meta_schemas[] = {
    {"ObjectMeta", "object", NULL,
     "The metadata every stored object carries: identity, labels and annotations, and the bookkeeping the "
     "server maintains.", NULL, object_meta_fields, NULL, 0, NULL},
    {"ListMeta", "object", NULL, "The metadata of a list: the version it was read at and how to get the next "
                                 "page.", NULL, list_meta_fields, NULL, 0, NULL},
    {"ManagedFieldsEntry", "object", NULL, "One field manager's claim on a set of fields of the object.", NULL,
     managed_fields_fields, NULL, 0, NULL},
    {"OwnerReference", "object", NULL, "A reference to an object that owns this one; owners and dependents "
                                       "share a namespace.", owner_reference_required, owner_reference_fields,
     NULL, 0, "atomic"},
    {"Time", "string", "date-time", "A point in time, written as RFC 3339 in UTC with second precision.", NULL,
     NULL, NULL, 0, NULL},
    {"FieldsV1", "object", NULL, "A set of field paths in the compact trie format of server-side apply.", NULL,
     NULL, NULL, 0, NULL},
    {"Status", "object", NULL, "The result of a request that did not return an object: an error, or the "
                               "outcome of a delete.", NULL, status_fields, "Status", 0, NULL},
    {"StatusDetails", "object", NULL, "Structured data about a Status: which object it concerns and the "
                                      "individual causes.", NULL, status_details_fields, NULL, 0, NULL},
    {"StatusCause", "object", NULL, "One reason a request failed, often tied to one field.", NULL,
     status_cause_fields, NULL, 0, NULL},
    {"DeleteOptions", "object", NULL, "Options of a delete request, sent as its body.", NULL,
     delete_options_fields, "DeleteOptions", 1, NULL},
    {"Preconditions", "object", NULL, "Conditions that must hold for a delete to go ahead.", NULL,
     preconditions_fields, NULL, 0, NULL},
    {"Patch", "object", NULL, "A patch body; its format is given by the request's Content-Type (JSON patch, "
                              "JSON merge patch or an apply configuration).", NULL, NULL, NULL, 0, NULL},
};

static json_t *gvk(const char *group, const char *version, const char *kind)
{
    return json_pack("{s:s,s:s,s:s}", "group", group, "kind", kind, "version", version);
}

static json_t *ref_to(const char *component)
{
    char *ref = lo_sprintf(V3_REF "%s", component);
    json_t *s = json_pack("{s:s}", "$ref", ref);
    free(ref);
    return s;
}

/* A reference that keeps its siblings: kubectl explain ignores those of a bare $ref. */
static json_t *wrapped_ref(const char *component, const char *description)
{
    return json_pack("{s:[o],s:s}", "allOf", ref_to(component), "description", description);
}

/* The schema of one word of a shape: a scalar or a reference to a meta schema. */
static json_t *word_schema(const char *word, size_t len)
{
    if (isupper((unsigned char)word[0])) {
        char *name = lo_sprintf(META "%.*s", (int)len, word);
        json_t *s = ref_to(name);
        free(name);
        return s;
    }
    if ((len == 5 && strncmp(word, "int32", 5) == 0) || (len == 5 && strncmp(word, "int64", 5) == 0))
        return json_pack("{s:s,s:s%}", "type", "integer", "format", word, len);
    return json_pack("{s:s%}", "type", word, len);
}

static json_t *field_schema(const meta_field_t *f)
{
    const char *shape = f->shape;
    json_t *s;
    if (shape[0] == '[' || shape[0] == '{') {
        const char *end = strchr(shape, shape[0] == '[' ? ']' : '}');
        if (end == NULL)
            lo_fatal("openapi: bad shape %s", shape);
        json_t *inner = word_schema(shape + 1, (size_t)(end - shape - 1));
        if (shape[0] == '{') {
            s = json_pack("{s:s,s:o}", "type", "object", "additionalProperties", inner);
        } else {
            s = json_pack("{s:s,s:o}", "type", "array", "items", inner);
            const char *list_type = end[1] == ' ' ? end + 2 : NULL;
            if (list_type && strncmp(list_type, "map:", 4) == 0) {
                json_object_set_new(s, "x-kubernetes-list-type", json_string("map"));
                json_object_set_new(s, "x-kubernetes-list-map-keys", json_pack("[s]", list_type + 4));
            } else if (list_type) {
                json_object_set_new(s, "x-kubernetes-list-type", json_string(list_type));
            }
        }
    } else if (isupper((unsigned char)shape[0])) {
        char *name = lo_sprintf(META "%s", shape);
        s = wrapped_ref(name, f->description);
        free(name);
        return s;
    } else {
        s = word_schema(shape, strlen(shape));
    }
    json_object_set_new(s, "description", json_string(f->description));
    return s;
}

static json_t *meta_schema(const meta_schema_t *m)
{
    json_t *s = json_pack("{s:s,s:s}", "description", m->description, "type", m->type);
    if (m->format)
        json_object_set_new(s, "format", json_string(m->format));
    if (m->fields) {
        json_t *props = json_object();
        for (const meta_field_t *f = m->fields; f->name; f++)
            json_object_set_new(props, f->name, field_schema(f));
        json_object_set_new(s, "properties", props);
    }
    if (m->required) {
        json_t *req = json_array();
        for (size_t i = 0; m->required[i]; i++)
            json_array_append_new(req, json_string(m->required[i]));
        json_object_set_new(s, "required", req);
    }
    if (m->map_type)
        json_object_set_new(s, "x-kubernetes-map-type", json_string(m->map_type));
    if (m->gvk_kind) {
        json_t *list = json_pack("[o]", gvk("", "v1", m->gvk_kind));
        if (m->gvk_in_group)
            json_array_append_new(list, gvk(SCHEMA_GROUP, SCHEMA_VERSION, m->gvk_kind));
        json_object_set_new(s, "x-kubernetes-group-version-kind", list);
    }
    return s;
}

/* ------------------------------------------------------------------------- */
/* The kinds' schemas.                                                       */
/* ------------------------------------------------------------------------- */

static const char API_VERSION_TEXT[] =
    "The group and version of the schema this object follows, for example " SCHEMA_GROUP_VERSION ".";
static const char KIND_TEXT[] = "The type of this object, in CamelCase.";
static const char OBJECT_META_TEXT[] = "Standard object metadata: name, namespace, labels, annotations and the "
                                       "server's bookkeeping.";
static const char LIST_META_TEXT[] = "Standard list metadata: resourceVersion and the continue token.";

/* "langop.io" -> "io.langop.v1alpha1.<kind>": the CRD naming of component schemas. */
static char *component_name(const char *kind)
{
    const char *group = SCHEMA_GROUP;
    char reversed[128] = "";
    size_t used = 0;
    const char *end = group + strlen(group);
    while (end > group) {
        const char *start = end;
        while (start > group && start[-1] != '.')
            start--;
        used += (size_t)snprintf(reversed + used, sizeof(reversed) - used, "%s%.*s", used ? "." : "",
                                 (int)(end - start), start);
        if (used >= sizeof(reversed))
            lo_fatal("openapi: group name too long");
        end = start > group ? start - 1 : start;
    }
    return lo_sprintf("%s.%s.%s", reversed, SCHEMA_VERSION, kind);
}

/* The description the CRD gives a property, or fallback. */
static const char *property_description(const json_t *props, const char *name, const char *fallback)
{
    const char *d = json_string_value(json_object_get(json_object_get(props, name), "description"));
    return d && *d ? d : fallback;
}

/* New: the CRD's openAPIV3Schema with the type and object metadata wired in. */
static json_t *kind_schema(const schema_kind_t *k)
{
    json_t *s = json_deep_copy(k->openapi_schema);
    json_t *props = json_object_get(s, "properties");
    if (!json_is_object(props)) {
        props = json_object();
        json_object_set_new(s, "properties", props);
    }
    json_object_set_new(props, "apiVersion",
                        json_pack("{s:s,s:s}", "description",
                                  property_description(props, "apiVersion", API_VERSION_TEXT), "type", "string"));
    json_object_set_new(props, "kind", json_pack("{s:s,s:s}", "description",
                                                 property_description(props, "kind", KIND_TEXT), "type", "string"));
    json_object_set_new(props, "metadata",
                        wrapped_ref(META "ObjectMeta", property_description(props, "metadata", OBJECT_META_TEXT)));
    json_object_set_new(s, "x-kubernetes-group-version-kind",
                        json_pack("[o]", gvk(SCHEMA_GROUP, SCHEMA_VERSION, k->kind)));
    return s;
}

static json_t *list_schema(const schema_kind_t *k, const char *item_component)
{
    char *description = lo_sprintf("A list of %s objects.", k->kind);
    char *items_text = lo_sprintf("The %s objects of the list.", k->kind);
    json_t *s = json_pack(
        "{s:s,s:s,s:[s],s:{s:{s:s,s:s},s:{s:s,s:s,s:o},s:{s:s,s:s},s:o},s:[o]}",
        "description", description, "type", "object", "required", "items", "properties",
        "apiVersion", "description", API_VERSION_TEXT, "type", "string",
        "items", "description", items_text, "type", "array", "items", ref_to(item_component),
        "kind", "description", KIND_TEXT, "type", "string",
        "metadata", wrapped_ref(META "ListMeta", LIST_META_TEXT),
        "x-kubernetes-group-version-kind", gvk(SCHEMA_GROUP, SCHEMA_VERSION, k->list_kind));
    free(description);
    free(items_text);
    if (s == NULL)
        lo_fatal("openapi: cannot build the list schema of %s", k->kind);
    return s;
}

/* ------------------------------------------------------------------------- */
/* Parameters and operations.                                                */
/* ------------------------------------------------------------------------- */

typedef struct query_param {
    const char *name;
    const char *type;
    const char *description;
} query_param_t;

static const query_param_t query_params[] = {
    {"allowWatchBookmarks", "boolean", "With watch: ask for BOOKMARK events that carry the latest "
                                       "resourceVersion."},
    {"continue", "string", "The continue token of the previous page, to read the next one."},
    {"dryRun", "string", "All: check and answer the request without storing anything. No other value is "
                         "accepted."},
    {"fieldManager", "string", "The name of the actor making the change, recorded in managedFields. Required "
                               "for apply patches."},
    {"fieldSelector", "string", "Select objects by field values, for example metadata.name=x or "
                                "metadata.namespace!=y."},
    {"fieldValidation", "string", "What to do with unknown or duplicate fields in the body: Ignore (drop them), "
                                  "Warn (drop them and return a warning; the default) or Strict (fail)."},
    {"force", "boolean", "For apply patches: take ownership of fields that other managers own instead of "
                         "failing with a conflict."},
    {"labelSelector", "string", "Select objects by their labels, for example tier=gold,env!=dev."},
    {"limit", "integer", "The most items to return; the rest are reached through the continue token."},
    {"resourceVersion", "string", "The version to read at or watch from; see resourceVersionMatch."},
    {"resourceVersionMatch", "string", "How resourceVersion applies to a list: Exact or NotOlderThan."},
    {"sendInitialEvents", "boolean", "With watch: start with an ADDED event for every existing object, then a "
                                     "bookmark."},
    {"timeoutSeconds", "integer", "End a list or watch call after this many seconds."},
    {"watch", "boolean", "Stream changes (ADDED, MODIFIED, DELETED) instead of returning a list."},
};

static const char *const list_params[] = {"allowWatchBookmarks", "continue", "fieldSelector", "labelSelector",
                                          "limit", "resourceVersion", "resourceVersionMatch",
                                          "sendInitialEvents", "timeoutSeconds", "watch", NULL};
static const char *const write_params[] = {"dryRun", "fieldManager", "fieldValidation", NULL};
static const char *const patch_params[] = {"dryRun", "fieldManager", "fieldValidation", "force", NULL};
static const char *const delete_params[] = {"dryRun", NULL};
static const char *const deletecollection_params[] = {"continue", "dryRun", "fieldSelector", "labelSelector",
                                                      "limit", "resourceVersion", "resourceVersionMatch",
                                                      "timeoutSeconds", NULL};

static json_t *query_param(const char *name)
{
    for (size_t i = 0; i < sizeof(query_params) / sizeof(query_params[0]); i++) {
        const query_param_t *p = &query_params[i];
        if (strcmp(p->name, name) == 0)
            return json_pack("{s:s,s:s,s:s,s:{s:s,s:b}}", "name", p->name, "in", "query", "description",
                             p->description, "schema", "type", p->type, "uniqueItems", 1);
    }
    lo_fatal("openapi: unknown query parameter %s", name);
}

static json_t *path_param(const char *name, const char *description)
{
    return json_pack("{s:s,s:s,s:s,s:b,s:{s:s,s:b}}", "name", name, "in", "path", "description", description,
                     "required", 1, "schema", "type", "string", "uniqueItems", 1);
}

enum body { BODY_NONE, BODY_OBJECT, BODY_PATCH, BODY_DELETE };
enum result { RESULT_OBJECT, RESULT_LIST, RESULT_STATUS };

typedef struct op_def {
    const char *method;         /* key in the path item */
    const char *action;         /* x-kubernetes-action */
    const char *verb;           /* first word of the operationId and description */
    const char *const *params;  /* operation-level query parameters; NULL for none */
    enum body body;
    enum result result;
    const int codes[4];         /* success codes, 0-terminated */
} op_def_t;

static const op_def_t collection_ops[] = {
    {"get", "list", "list", list_params, BODY_NONE, RESULT_LIST, {200}},
    {"post", "post", "create", write_params, BODY_OBJECT, RESULT_OBJECT, {200, 201, 202}},
    {"delete", "deletecollection", "deletecollection", deletecollection_params, BODY_DELETE, RESULT_STATUS, {200}},
    {NULL, NULL, NULL, NULL, BODY_NONE, RESULT_OBJECT, {0}},
};
static const op_def_t item_ops[] = {
    {"get", "get", "read", NULL, BODY_NONE, RESULT_OBJECT, {200}},
    {"put", "put", "replace", write_params, BODY_OBJECT, RESULT_OBJECT, {200, 201}},
    {"delete", "delete", "delete", delete_params, BODY_DELETE, RESULT_STATUS, {200, 202}},
    {"patch", "patch", "patch", patch_params, BODY_PATCH, RESULT_OBJECT, {200, 201}},
    {NULL, NULL, NULL, NULL, BODY_NONE, RESULT_OBJECT, {0}},
};
static const op_def_t status_ops[] = {
    {"get", "get", "read", NULL, BODY_NONE, RESULT_OBJECT, {200}},
    {"put", "put", "replace", write_params, BODY_OBJECT, RESULT_OBJECT, {200, 201}},
    {"patch", "patch", "patch", patch_params, BODY_PATCH, RESULT_OBJECT, {200, 201}},
    {NULL, NULL, NULL, NULL, BODY_NONE, RESULT_OBJECT, {0}},
};
static const op_def_t derived_ops[] = {
    {"get", "get", "read", NULL, BODY_NONE, RESULT_OBJECT, {200}},
    {NULL, NULL, NULL, NULL, BODY_NONE, RESULT_OBJECT, {0}},
};
static const op_def_t all_namespaces_ops[] = {
    {"get", "list", "list", list_params, BODY_NONE, RESULT_LIST, {200}},
    {NULL, NULL, NULL, NULL, BODY_NONE, RESULT_OBJECT, {0}},
};

/* The patch formats the server implements; strategic merge is left out on purpose
 * (kubectl would compute a strategic merge patch whose list semantics we lack). */
static const char *const patch_types[] = {"application/json-patch+json", "application/merge-patch+json",
                                          "application/apply-patch+yaml", NULL};
static const char *const object_types[] = {"application/json", "application/yaml", NULL};

/* Everything the operations of one path share. */
typedef struct path_ctx {
    const schema_kind_t *kind;
    const char *object;         /* component names */
    const char *list;
    const char *subresource;    /* "status", a derived subresource, or NULL */
    const char *gvk_kind;       /* the kind the operations return, when not the path's kind */
    int namespaced;             /* the path has {namespace} */
    const char *suffix;         /* "ForAllNamespaces" or "" */
} path_ctx_t;

/* "langop.io" + "v1alpha1" -> "LangopIoV1alpha1", as kube names operations. */
static void group_version_camel(char *out, size_t size)
{
    size_t n = 0;
    int upper = 1;
    for (const char *c = SCHEMA_GROUP "." SCHEMA_VERSION; *c && n + 1 < size; c++) {
        if (*c == '.') {
            upper = 1;
            continue;
        }
        out[n++] = upper ? (char)toupper((unsigned char)*c) : *c;
        upper = 0;
    }
    out[n] = '\0';
}

static char *operation_id(const path_ctx_t *p, const op_def_t *op)
{
    char gv[64];
    group_version_camel(gv, sizeof(gv));
    int collection = strcmp(op->verb, "deletecollection") == 0;
    char sub[32] = "";
    if (p->subresource) {
        snprintf(sub, sizeof(sub), "%s", p->subresource);
        sub[0] = (char)toupper((unsigned char)sub[0]);
    }
    return lo_sprintf("%s%s%s%s%s%s%s", collection ? "delete" : op->verb, gv, collection ? "Collection" : "",
                      p->namespaced ? "Namespaced" : "", p->kind->kind, sub, p->suffix);
}

static char *operation_description(const path_ctx_t *p, const op_def_t *op)
{
    const char *kind = p->kind->kind;
    const char *sub = p->subresource ? p->subresource : NULL;
    if (strcmp(op->verb, "list") == 0)
        return lo_sprintf("list or watch objects of kind %s%s", kind, *p->suffix ? " in all namespaces" : "");
    if (strcmp(op->verb, "deletecollection") == 0)
        return lo_sprintf("delete a collection of %s objects", kind);
    if (strcmp(op->verb, "create") == 0)
        return lo_sprintf("create a %s", kind);
    if (strcmp(op->verb, "delete") == 0)
        return lo_sprintf("delete a %s", kind);
    const char *what = strcmp(op->verb, "patch") == 0 ? "partially update" : op->verb;
    return lo_sprintf("%s %s%sthe specified %s", what, sub ? sub : "", sub ? " of " : "", kind);
}

static json_t *content_of(const char *const *types, const char *component)
{
    json_t *content = json_object();
    for (size_t i = 0; types[i]; i++)
        json_object_set_new(content, types[i], json_pack("{s:o}", "schema", ref_to(component)));
    return content;
}

static json_t *request_body(const path_ctx_t *p, enum body body)
{
    switch (body) {
    case BODY_OBJECT:
        return json_pack("{s:o,s:b}", "content", content_of(object_types, p->object), "required", 1);
    case BODY_PATCH:
        return json_pack("{s:o,s:b}", "content", content_of(patch_types, META "Patch"), "required", 1);
    case BODY_DELETE: {
        static const char *const json_only[] = {"application/json", NULL};
        return json_pack("{s:o}", "content", content_of(json_only, META "DeleteOptions"));
    }
    case BODY_NONE:
        break;
    }
    return NULL;
}

static const char *code_text(int code)
{
    switch (code) {
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    default: return "Unauthorized";
    }
}

static json_t *responses(const path_ctx_t *p, const op_def_t *op)
{
    static const char *const json_only[] = {"application/json", NULL};
    static const char *const list_types[] = {"application/json", "application/json;stream=watch", NULL};
    const char *component = op->result == RESULT_LIST     ? p->list
                            : op->result == RESULT_STATUS ? META "Status"
                                                          : p->object;
    json_t *out = json_object();
    for (size_t i = 0; op->codes[i]; i++) {
        char code[8];
        snprintf(code, sizeof(code), "%d", op->codes[i]);
        json_object_set_new(out, code,
                            json_pack("{s:s,s:o}", "description", code_text(op->codes[i]), "content",
                                      content_of(op->result == RESULT_LIST ? list_types : json_only, component)));
    }
    json_object_set_new(out, "401", json_pack("{s:s}", "description", code_text(401)));
    return out;
}

static json_t *operation(const path_ctx_t *p, const op_def_t *op)
{
    char *id = operation_id(p, op);
    char *description = operation_description(p, op);
    char tag[64], gv[64];
    group_version_camel(gv, sizeof(gv));
    /* kube's tag: lower-camel group, underscore, version ("langopIo_v1alpha1"). */
    snprintf(tag, sizeof(tag), "%.*s_%s", (int)(strlen(gv) - strlen(SCHEMA_VERSION)), gv, SCHEMA_VERSION);
    tag[0] = (char)tolower((unsigned char)tag[0]);

    json_t *o = json_pack("{s:s,s:s,s:[s],s:o,s:s,s:o}", "operationId", id, "description", description, "tags",
                          tag, "responses", responses(p, op), "x-kubernetes-action", op->action,
                          "x-kubernetes-group-version-kind",
                          gvk(SCHEMA_GROUP, SCHEMA_VERSION, p->gvk_kind ? p->gvk_kind : p->kind->kind));
    free(id);
    free(description);
    if (op->params) {
        json_t *params = json_array();
        for (size_t i = 0; op->params[i]; i++)
            json_array_append_new(params, query_param(op->params[i]));
        json_object_set_new(o, "parameters", params);
    }
    json_t *body = request_body(p, op->body);
    if (body)
        json_object_set_new(o, "requestBody", body);
    return o;
}

static json_t *path_item(const path_ctx_t *p, int item, const op_def_t *ops)
{
    json_t *it = json_object();
    json_t *params = json_array();
    if (item) {
        char *text = lo_sprintf("name of the %s", p->kind->kind);
        json_array_append_new(params, path_param("name", text));
        free(text);
    }
    if (p->namespaced)
        json_array_append_new(params, path_param("namespace", "object name and auth scope, such as for teams "
                                                              "and projects"));
    if (json_array_size(params) > 0)
        json_object_set_new(it, "parameters", params);
    else
        json_decref(params);
    for (const op_def_t *op = ops; op->method; op++)
        json_object_set_new(it, op->method, operation(p, op));
    return it;
}

static void add_kind_paths(json_t *paths, const schema_kind_t *k, const char *object, const char *list)
{
    path_ctx_t p = {.kind = k, .object = object, .list = list, .namespaced = k->namespaced, .suffix = ""};
    char *base = k->namespaced ? lo_sprintf(API_ROOT "/namespaces/{namespace}/%s", k->plural)
                               : lo_sprintf(API_ROOT "/%s", k->plural);
    char *item = lo_sprintf("%s/{name}", base);
    char *status = lo_sprintf("%s/{name}/status", base);

    json_object_set_new(paths, base, path_item(&p, 0, collection_ops));
    json_object_set_new(paths, item, path_item(&p, 1, item_ops));
    if (k->has_status) {
        p.subresource = "status";
        json_object_set_new(paths, status, path_item(&p, 1, status_ops));
        p.subresource = NULL;
    }
    for (const derive_subresource_t *d = derive_subresources; d->name; d++) {
        if (strcmp(d->kind, k->kind) != 0)
            continue;
        char *path = lo_sprintf("%s/{name}/%s", base, d->name);
        char *component = component_name(d->response_kind);
        path_ctx_t dp = p;
        dp.subresource = d->name;
        dp.object = component;
        dp.gvk_kind = d->response_kind;
        json_object_set_new(paths, path, path_item(&dp, 1, derived_ops));
        free(component);
        free(path);
    }
    if (k->namespaced) {
        char *all = lo_sprintf(API_ROOT "/%s", k->plural);
        p.namespaced = 0;
        p.suffix = "ForAllNamespaces";
        json_object_set_new(paths, all, path_item(&p, 0, all_namespaces_ops));
        free(all);
    }
    free(base);
    free(item);
    free(status);
}

/* ------------------------------------------------------------------------- */
/* The documents.                                                            */
/* ------------------------------------------------------------------------- */

static json_t *security_scheme(void)
{
    return json_pack("{s:s,s:s,s:s,s:s}", "type", "apiKey", "description",
                     "A bearer token in the Authorization header.", "name", "authorization", "in", "header");
}

/* The schema of a derived config object (GatewayConfig, AgentConfig): computed on read, never stored. */
static json_t *derived_schema(const derive_subresource_t *d)
{
    json_t *env_var = json_pack(
        "{s:s,s:s,s:[s],s:{s:{s:s,s:s},s:{s:s,s:s},s:{s:s,s:s,s:b}}}", "type", "object", "description",
        "An environment variable of the workload: a literal value, or a reference to a Secret key.", "required",
        "name", "properties", "name", "type", "string", "description", "The variable's name.", "value", "type",
        "string", "description", "A literal value.", "valueFrom", "type", "object", "description",
        "Where the value comes from (secretKeyRef: the Secret's name and key).",
        "x-kubernetes-preserve-unknown-fields", 1);
    json_t *unresolved = json_pack(
        "{s:s,s:s,s:{s:{s:s,s:s},s:{s:s,s:s},s:{s:s,s:s},s:{s:s,s:s}}}", "type", "object", "description",
        "A reference left out of the config because its target does not exist.", "properties", "kind", "type",
        "string", "description", "The kind referred to.", "name", "type", "string", "description",
        "The name referred to.", "reason", "type", "string", "description",
        "Why it is left out: ModelNotFound, ToolNotFound, PersonaNotFound, ...", "message", "type", "string",
        "description", "A sentence for people.");
    json_t *s = json_pack(
        "{s:s,s:s,s:{s:{s:s,s:s},s:{s:s,s:s},s:o,s:{s:s,s:s},s:{s:s,s:s,s:o},s:{s:s,s:s,s:o},s:{s:s,s:s}}}",
        "type", "object", "description", d->description, "properties", "apiVersion", "type", "string",
        "description", API_VERSION_TEXT, "kind", "type", "string", "description", KIND_TEXT, "metadata",
        wrapped_ref(META "ObjectMeta", OBJECT_META_TEXT), "config", "type", "string", "description",
        "The rendered YAML file, byte for byte what is pushed into the cluster.", "env", "type", "array",
        "description", "The environment that goes with it.", "items", env_var, "unresolved", "type", "array",
        "description", "References left out of the config.", "items", unresolved, "hash", "type", "string",
        "description", "SHA-256 of config and env: it changes exactly when what reaches the workload changes.");
    json_object_set_new(s, "x-kubernetes-group-version-kind",
                        json_pack("[o]", gvk(SCHEMA_GROUP, SCHEMA_VERSION, d->response_kind)));
    return s;
}

static json_t *build_v3(void)
{
    json_t *paths = json_object();
    json_t *schemas = json_object();
    for (size_t i = 0; i < schema_kind_count(); i++) {
        const schema_kind_t *k = schema_kind_at(i);
        char *object = component_name(k->kind);
        char *list = component_name(k->list_kind);
        json_object_set_new(schemas, object, kind_schema(k));
        json_object_set_new(schemas, list, list_schema(k, object));
        add_kind_paths(paths, k, object, list);
        free(object);
        free(list);
    }
    for (const derive_subresource_t *d = derive_subresources; d->name; d++) {
        char *name = component_name(d->response_kind);
        json_object_set_new(schemas, name, derived_schema(d));
        free(name);
    }
    for (size_t i = 0; i < sizeof(meta_schemas) / sizeof(meta_schemas[0]); i++) {
        char *name = lo_sprintf(META "%s", meta_schemas[i].name);
        json_object_set_new(schemas, name, meta_schema(&meta_schemas[i]));
        free(name);
    }
    json_t *doc = json_pack("{s:s,s:{s:s,s:s},s:o,s:{s:o,s:{s:o}},s:[{s:[]}]}", "openapi", "3.0.0", "info",
                            "title", "langop-apiserver", "version", SCHEMA_VERSION, "paths", paths, "components",
                            "schemas", schemas, "securitySchemes", "BearerToken", security_scheme(), "security",
                            "BearerToken");
    if (doc == NULL)
        lo_fatal("openapi: cannot assemble the v3 document");
    return doc;
}

/* ---- Swagger 2.0, translated from the v3 document ---- */

static json_t *v2_schema(const json_t *s);

static json_t *v2_schema_map(const json_t *map)
{
    json_t *out = json_object();
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)map, key, v)
        json_object_set_new(out, key, v2_schema(v));
    return out;
}

/*
 * New: s in Swagger 2.0 terms. References move to #/definitions/; a lone
 * `allOf: [$ref]` becomes a $ref with siblings, as kube publishes v2;
 * keywords that 2.0 lacks (nullable, anyOf, oneOf, not) are dropped.
 */
static json_t *v2_schema(const json_t *s)
{
    if (!json_is_object(s))
        return json_deep_copy(s);
    json_t *out = json_object();
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)s, key, v) {
        if (!strcmp(key, "nullable") || !strcmp(key, "anyOf") || !strcmp(key, "oneOf") || !strcmp(key, "not"))
            continue;
        if (!strcmp(key, "$ref") && json_is_string(v) && !strncmp(json_string_value(v), V3_REF, strlen(V3_REF))) {
            char *ref = lo_sprintf(V2_REF "%s", json_string_value(v) + strlen(V3_REF));
            json_object_set_new(out, key, json_string(ref));
            free(ref);
        } else if (!strcmp(key, "properties") && json_is_object(v)) {
            json_object_set_new(out, key, v2_schema_map(v));
        } else if (!strcmp(key, "items") || !strcmp(key, "additionalProperties")) {
            json_object_set_new(out, key, v2_schema(v));
        } else if (!strcmp(key, "allOf") && json_is_array(v)) {
            json_t *all = json_array();
            size_t i;
            json_t *e;
            json_array_foreach(v, i, e)
                json_array_append_new(all, v2_schema(e));
            json_object_set_new(out, key, all);
        } else {
            json_object_set(out, key, v);   /* plain data: shared, the documents are immutable */
        }
    }
    json_t *all = json_object_get(out, "allOf");
    json_t *only = json_array_get(all, 0);
    if (json_array_size(all) == 1 && json_object_size(only) == 1 && json_object_get(only, "$ref")) {
        json_object_set(out, "$ref", json_object_get(only, "$ref"));
        json_object_del(out, "allOf");
    }
    return out;
}

static json_t *v2_parameter(const json_t *p)
{
    json_t *out = json_object();
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)p, key, v) {
        if (strcmp(key, "schema") == 0)
            json_object_update(out, v);   /* 2.0 puts type and friends on the parameter itself */
        else
            json_object_set(out, key, v);
    }
    return out;
}

/* Union of the content types in content into types (array). */
static void add_media_types(json_t *types, const json_t *content)
{
    const char *type;
    json_t *v;
    json_object_foreach((json_t *)content, type, v) {
        size_t i;
        json_t *t;
        int seen = 0;
        json_array_foreach(types, i, t)
            seen |= strcmp(json_string_value(t), type) == 0;
        if (!seen)
            json_array_append_new(types, json_string(type));
    }
}

/* The schema of the first media type of content (every type carries the same one here). */
static const json_t *first_schema(const json_t *content)
{
    void *it = json_object_iter((json_t *)content);
    return it ? json_object_get(json_object_iter_value(it), "schema") : NULL;
}

static json_t *v2_operation(const json_t *op)
{
    json_t *out = json_object();
    json_t *params = json_array();
    const json_t *body = json_object_get(op, "requestBody");
    if (body) {
        json_t *consumes = json_array();
        add_media_types(consumes, json_object_get(body, "content"));
        json_object_set_new(out, "consumes", consumes);
        json_array_append_new(params, json_pack("{s:s,s:s,s:b,s:o}", "name", "body", "in", "body", "required",
                                                json_is_true(json_object_get(body, "required")), "schema",
                                                v2_schema(first_schema(json_object_get(body, "content")))));
    }
    size_t i;
    json_t *p;
    json_array_foreach(json_object_get(op, "parameters"), i, p)
        json_array_append_new(params, v2_parameter(p));
    if (json_array_size(params) > 0)
        json_object_set_new(out, "parameters", params);
    else
        json_decref(params);

    json_t *produces = json_array();
    json_t *responses = json_object();
    const char *code;
    json_t *r;
    json_object_foreach(json_object_get(op, "responses"), code, r) {
        json_t *resp = json_pack("{s:O}", "description", json_object_get(r, "description"));
        const json_t *content = json_object_get(r, "content");
        if (content) {
            add_media_types(produces, content);
            json_object_set_new(resp, "schema", v2_schema(first_schema(content)));
        }
        json_object_set_new(responses, code, resp);
    }
    json_object_set_new(out, "produces", produces);
    json_object_set_new(out, "responses", responses);
    json_object_set_new(out, "schemes", json_pack("[s]", "https"));

    const char *key;
    json_t *v;
    json_object_foreach((json_t *)op, key, v) {
        if (strcmp(key, "requestBody") && strcmp(key, "parameters") && strcmp(key, "responses"))
            json_object_set(out, key, v);
    }
    return out;
}

static json_t *v2_path_item(const json_t *item)
{
    json_t *out = json_object();
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)item, key, v) {
        if (strcmp(key, "parameters") == 0) {
            json_t *params = json_array();
            size_t i;
            json_t *p;
            json_array_foreach(v, i, p)
                json_array_append_new(params, v2_parameter(p));
            json_object_set_new(out, key, params);
        } else {
            json_object_set_new(out, key, v2_operation(v));
        }
    }
    return out;
}

static json_t *build_v2(const json_t *v3)
{
    json_t *paths = json_object();
    const char *path;
    json_t *item;
    json_object_foreach(json_object_get(v3, "paths"), path, item)
        json_object_set_new(paths, path, v2_path_item(item));
    json_t *definitions = v2_schema_map(json_object_get(json_object_get(v3, "components"), "schemas"));
    json_t *doc = json_pack("{s:s,s:O,s:o,s:o,s:{s:o},s:[{s:[]}]}", "swagger", "2.0", "info",
                            json_object_get(v3, "info"), "paths", paths, "definitions", definitions,
                            "securityDefinitions", "BearerToken", security_scheme(), "security", "BearerToken");
    if (doc == NULL)
        lo_fatal("openapi: cannot assemble the v2 document");
    return doc;
}

/* ------------------------------------------------------------------------- */
/* Rendering and serving.                                                    */
/* ------------------------------------------------------------------------- */

typedef struct doc {
    char *body;
    size_t len;
    const char *content_type;
    char hash[65];   /* upper-case hex SHA-256 of body: the ?hash= value */
    char etag[68];   /* the same, quoted */
} doc_t;

/*
 * /openapi/v2 has two representations: each has its own ETag (the hash of
 * its own bytes), so that a cache that forgets Vary cannot answer 304 to a
 * protobuf request with the JSON it holds.
 */
struct openapi {
    doc_t v3_index;
    doc_t v3_gv;
    doc_t v2;
    doc_t v2_proto;
};

/* Takes body (len bytes, malloc'd, any bytes) as doc's content. */
static void doc_set_bytes(doc_t *doc, char *body, size_t len, const char *content_type)
{
    doc->body = body;
    doc->len = len;
    doc->content_type = content_type;
    lo_sha256_hex(doc->body, doc->len, doc->hash);
    for (char *c = doc->hash; *c; c++)
        *c = (char)toupper((unsigned char)*c);
    snprintf(doc->etag, sizeof(doc->etag), "\"%s\"", doc->hash);
}

/* Renders value (stolen) with sorted keys, so that equal documents hash alike. */
static void doc_set(doc_t *doc, json_t *value)
{
    char *body = json_dumps(value, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(value);
    if (body == NULL)
        lo_fatal("openapi: cannot encode a document");
    doc_set_bytes(doc, body, strlen(body), "application/json");
}

/* The protobuf form of the v2 document (only read); the document is ours, so failing is a bug. */
static void doc_set_proto(doc_t *doc, const json_t *v2)
{
    lo_buf_t pb = {0};
    lo_err_t err = {0};
    if (openapiproto_encode(v2, &pb, &err) < 0)
        lo_fatal("openapi: cannot encode /openapi/v2 as protobuf: %s", err.message);
    doc_set_bytes(doc, pb.data ? pb.data : lo_strdup(""), pb.len, OPENAPIPROTO_MEDIA_TYPE);
}

openapi_t *openapi_new(void)
{
    openapi_t *o = lo_calloc(1, sizeof(*o));
    json_t *v3 = build_v3();
    json_t *v2 = build_v2(v3);
    doc_set_proto(&o->v2_proto, v2);
    doc_set(&o->v2, v2);
    doc_set(&o->v3_gv, v3);
    char *url = lo_sprintf(PATH_V3_GV "?hash=%s", o->v3_gv.hash);
    doc_set(&o->v3_index, json_pack("{s:{s:{s:s}}}", "paths", GV_KEY, "serverRelativeURL", url));
    free(url);
    return o;
}

void openapi_free(openapi_t *o)
{
    if (o == NULL)
        return;
    free(o->v3_index.body);
    free(o->v3_gv.body);
    free(o->v2.body);
    free(o->v2_proto.body);
    free(o);
}

/* 1 if the If-None-Match list names etag (quoted or not, weak or strong) or is "*". */
static int etag_matches(const char *if_none_match, const doc_t *doc)
{
    const char *p = if_none_match;
    while (p && *p) {
        while (*p == ' ' || *p == '\t' || *p == ',')
            p++;
        const char *end = p;
        while (*end && *end != ',')
            end++;
        const char *tok = p;
        size_t len = (size_t)(end - p);
        while (len > 0 && (tok[len - 1] == ' ' || tok[len - 1] == '\t'))
            len--;
        if (len >= 2 && strncmp(tok, "W/", 2) == 0) {
            tok += 2;
            len -= 2;
        }
        if ((len == 1 && tok[0] == '*') || (len == strlen(doc->etag) && strncmp(tok, doc->etag, len) == 0) ||
            (len == strlen(doc->hash) && strncmp(tok, doc->hash, len) == 0))
            return 1;
        p = end;
    }
    return 0;
}

static void serve(const doc_t *doc, const char *if_none_match, api_response_t *resp)
{
    api_response_add_header(resp, "etag", doc->etag);
    if (if_none_match && etag_matches(if_none_match, doc)) {
        resp->status = 304;
        return;
    }
    resp->status = 200;
    resp->content_type = lo_strdup(doc->content_type);
    resp->body = lo_malloc(doc->len + 1);   /* binary for protobuf: no string copy */
    memcpy(resp->body, doc->body, doc->len);
    resp->body[doc->len] = '\0';
    resp->body_len = doc->len;
}

/* 1 if mt names the protobuf form of /openapi/v2, in either spelling (not by a wildcard). */
static int is_v2_protobuf(const media_type_t *mt)
{
    const char *sub = OPENAPIPROTO_MEDIA_TYPE + strlen("application/");
    const char *sub_at = OPENAPIPROTO_MEDIA_TYPE_AT + strlen("application/");
    return strcmp(mt->type, "application") == 0 &&
           (strcmp(mt->subtype, sub) == 0 || strcmp(mt->subtype, sub_at) == 0);
}

/*
 * The representation of /openapi/v2 for accept: the first entry that names
 * one (a wildcard means JSON, as kube-openapi's handler has it), or NULL.
 */
static const doc_t *choose_v2(const openapi_t *o, const char *accept)
{
    media_type_t types[NEGOTIATE_MAX_TYPES];
    size_t n = negotiate_parse_accept(accept, types, NEGOTIATE_MAX_TYPES);
    for (size_t i = 0; i < n; i++) {
        if (negotiate_plain(&types[i], "json"))
            return &o->v2;
        if (is_v2_protobuf(&types[i]))
            return &o->v2_proto;
    }
    return NULL;
}

/* The v3 documents are JSON only; kubectl asks for them as JSON. */
static int accepts_json(const char *accept)
{
    media_type_t types[NEGOTIATE_MAX_TYPES];
    size_t n = negotiate_parse_accept(accept, types, NEGOTIATE_MAX_TYPES);
    for (size_t i = 0; i < n; i++)
        if (negotiate_plain(&types[i], "json"))
            return 1;
    return 0;
}

static void fail(api_response_t *resp, int code, const char *reason, const char *message)
{
    lo_err_t err = {0};
    lo_err_set(&err, code, reason, "%s", message);
    api_response_set_error(resp, &err);
    lo_err_clear(&err);
}

/* Expires one year from now, in the IMF-fixdate form (locale-independent). */
static void expires_in_a_year(char *buf, size_t size)
{
    static const char days[7][4] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
    static const char months[12][4] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                       "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    time_t t = time(NULL) + ONE_YEAR;
    struct tm tm;
    gmtime_r(&t, &tm);
    snprintf(buf, size, "%s, %02d %s %04d %02d:%02d:%02d GMT", days[tm.tm_wday], tm.tm_mday, months[tm.tm_mon],
             tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

/*
 * The group-version document. With a hash it is immutable under that URL
 * (clients cache it for good); a stale hash is sent on to the current URL.
 */
static void serve_group_version(const openapi_t *o, const reqinfo_t *info, const char *if_none_match,
                                api_response_t *resp)
{
    const char *hash = reqinfo_query_get(info, "hash");
    api_response_add_header(resp, "vary", "Accept");
    if (hash && *hash) {
        if (strcmp(hash, o->v3_gv.hash) != 0) {
            char *url = lo_sprintf(PATH_V3_GV "?hash=%s", o->v3_gv.hash);
            api_response_set_text(resp, 301, "Moved Permanently");
            api_response_add_header(resp, "location", url);
            free(url);
            return;
        }
        char expires[40];
        expires_in_a_year(expires, sizeof(expires));
        api_response_add_header(resp, "cache-control", "public, immutable");
        api_response_add_header(resp, "expires", expires);
    }
    serve(&o->v3_gv, if_none_match, resp);
}

int openapi_handle(const openapi_t *o, const reqinfo_t *info, const char *accept, const char *if_none_match,
                   api_response_t *resp)
{
    if (o == NULL || info == NULL || info->path == NULL)
        return 0;
    const char *path = info->path;
    int v2 = strcmp(path, PATH_V2) == 0;
    int index = strcmp(path, PATH_V3) == 0;
    int gv = strcmp(path, PATH_V3_GV) == 0;
    if (!v2 && !index && !gv && strncmp(path, PATH_V3 "/", strlen(PATH_V3) + 1) != 0)
        return 0;
    if (strcmp(info->verb, "get") != 0 && strcmp(info->verb, "head") != 0)
        return 0;
    if (!v2 && !index && !gv) {
        fail(resp, 404, "NotFound", "the server could not find the requested resource");
        return 1;
    }
    if (v2) {
        const doc_t *doc = choose_v2(o, accept);
        api_response_add_header(resp, "vary", "Accept");
        if (doc == NULL)
            fail(resp, 406, "NotAcceptable", "only the following media types are accepted: application/json, "
                                             OPENAPIPROTO_MEDIA_TYPE);
        else
            serve(doc, if_none_match, resp);
        return 1;
    }
    if (!accepts_json(accept)) {
        fail(resp, 406, "NotAcceptable", "only the following media types are accepted: application/json");
        return 1;
    }
    if (index)
        serve(&o->v3_index, if_none_match, resp);
    else
        serve_group_version(o, info, if_none_match, resp);
    return 1;
}
