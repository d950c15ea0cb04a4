/*
 * objmeta.c - ObjectMeta rules shared by every kind (see langop/objmeta.h).
 *
 * Messages follow apimachinery's validation wording so that kubectl shows
 * what users of any Kubernetes API are used to reading.
 */
#include "langop/schema/objmeta.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "langop/core/selector.h"
#include "langop/core/status.h"

#define DNS1123_SUBDOMAIN_MSG                                                                                     \
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must "    \
    "start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is "             \
    "'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"

#define ANNOTATIONS_MAX_BYTES (256 * 1024)

const char *const objmeta_field_labels[] = {"metadata.name", "metadata.namespace", NULL};

/* The rules are the label rules of selector.h: object names are DNS-1123 subdomains. */
int objmeta_valid_name(const char *name)
{
    return name != NULL && label_subdomain_problem(name) == NULL;
}

int objmeta_valid_qualified_name(const char *key)
{
    return key != NULL && label_key_problem(key) == NULL;
}

int objmeta_valid_label_value(const char *value)
{
    return value != NULL && label_value_problem(value) == NULL;
}

const char *objmeta_get_string(const json_t *obj, const char *field)
{
    return json_string_value(json_object_get(json_object_get(obj, "metadata"), field));
}

json_t *objmeta_metadata(json_t *obj)
{
    json_t *meta = json_object_get(obj, "metadata");
    if (!json_is_object(meta)) {
        meta = json_object();
        json_object_set_new(obj, "metadata", meta);
    }
    return meta;
}

int objmeta_check_envelope(const schema_kind_t *k, const json_t *obj, lo_err_t *err)
{
    if (!json_is_object(obj)) {
        status_bad_request(err, "the body of the request must be a JSON or YAML object");
        return -1;
    }
    const char *api_version = json_string_value(json_object_get(obj, "apiVersion"));
    const char *kind = json_string_value(json_object_get(obj, "kind"));
    if (kind == NULL || kind[0] == '\0') {
        status_bad_request(err, "Object 'Kind' is missing in the request body");
        return -1;
    }
    if (api_version == NULL || api_version[0] == '\0') {
        status_bad_request(err, "Object 'apiVersion' is missing in the request body");
        return -1;
    }
    if (strcmp(api_version, SCHEMA_GROUP_VERSION) != 0) {
        status_bad_request(err, "the API version in the data (%s) does not match the expected API version (%s)",
                           api_version, SCHEMA_GROUP_VERSION);
        return -1;
    }
    if (strcmp(kind, k->kind) != 0) {
        status_bad_request(err, "the kind in the data (%s) does not match the expected kind (%s)", kind, k->kind);
        return -1;
    }
    json_t *meta = json_object_get(obj, "metadata");
    if (meta != NULL && !json_is_object(meta) && !json_is_null(meta)) {
        status_bad_request(err, "%s in version \"%s\" cannot be handled as a %s: metadata must be an object",
                           k->kind, SCHEMA_VERSION, k->kind);
        return -1;
    }
    return 0;
}

typedef enum meta_type { META_STRING, META_INT64, META_STRING_MAP, META_STRING_LIST, META_OBJECT_LIST } meta_type_t;

/* The fields of ObjectMeta a client may send, by the Go type they decode into. */
static const struct {
    const char *field;
    meta_type_t type;
} meta_types[] = {
    {"name", META_STRING}, {"generateName", META_STRING}, {"namespace", META_STRING}, {"selfLink", META_STRING},
    {"uid", META_STRING}, {"resourceVersion", META_STRING}, {"creationTimestamp", META_STRING},
    {"deletionTimestamp", META_STRING}, {"generation", META_INT64}, {"deletionGracePeriodSeconds", META_INT64},
    {"labels", META_STRING_MAP}, {"annotations", META_STRING_MAP}, {"finalizers", META_STRING_LIST},
    {"ownerReferences", META_OBJECT_LIST}, {"managedFields", META_OBJECT_LIST},
};

static const char *const meta_type_names[] = {"string", "int64", "map[string]string", "[]string", "[]object"};

static int fits(const json_t *v, meta_type_t t)
{
    size_t i;
    const char *key;
    json_t *item;
    if (json_is_null(v))
        return 1;
    switch (t) {
    case META_STRING:
        return json_is_string(v);
    case META_INT64:
        return json_is_integer(v);
    case META_STRING_MAP:
        if (!json_is_object(v))
            return 0;
        json_object_foreach((json_t *)v, key, item) {
            if (!json_is_string(item) && !json_is_null(item))
                return 0;
        }
        return 1;
    case META_STRING_LIST:
    case META_OBJECT_LIST:
        if (!json_is_array(v))
            return 0;
        json_array_foreach(v, i, item) {
            if (t == META_STRING_LIST ? !json_is_string(item) && !json_is_null(item)
                                      : !json_is_object(item) && !json_is_null(item))
                return 0;
        }
        return 1;
    }
    return 0;
}

int objmeta_check_types(const schema_kind_t *k, const json_t *obj, lo_err_t *err)
{
    const json_t *meta = json_object_get(obj, "metadata");
    for (size_t i = 0; json_is_object(meta) && i < sizeof(meta_types) / sizeof(meta_types[0]); i++) {
        const json_t *v = json_object_get(meta, meta_types[i].field);
        if (v == NULL || fits(v, meta_types[i].type))
            continue;
        status_bad_request(err, "%s in version \"%s\" cannot be handled as a %s: metadata.%s must be of type %s",
                           k->kind, SCHEMA_VERSION, k->kind, meta_types[i].field, meta_type_names[meta_types[i].type]);
        return -1;
    }
    return 0;
}

/* Namespace rule of rest.BeforeCreate: fill from the URL, refuse a different one. */
static int settle_namespace(const schema_kind_t *k, const char *url_ns, json_t *meta, lo_err_t *err)
{
    json_t *ns_value = json_object_get(meta, "namespace");
    if (ns_value != NULL && !json_is_string(ns_value) && !json_is_null(ns_value)) {
        status_bad_request(err, "metadata.namespace must be a string");
        return -1;
    }
    const char *body_ns = json_string_value(ns_value);
    if (!k->namespaced) {
        json_object_del(meta, "namespace"); /* cluster-scoped: a namespace in the body is dropped */
        return 0;
    }
    if (body_ns == NULL || body_ns[0] == '\0') {
        json_object_set_new(meta, "namespace", lo_json_text(url_ns));
        return 0;
    }
    if (strcmp(body_ns, url_ns) != 0) {
        status_bad_request(err, "the namespace of the provided object does not match the namespace sent on the request");
        return -1;
    }
    return 0;
}

static void invalid_value(lo_err_t *err, const char *field, const char *value, const char *why)
{
    char msg[LO_ERR_MESSAGE_MAX];
    snprintf(msg, sizeof(msg), "Invalid value: \"%.200s\": %s", value, why);
    lo_err_add_cause(err, "FieldValueInvalid", msg, field);
}

static void check_string_map(json_t *map, const char *field, int labels, lo_err_t *err)
{
    if (map == NULL || json_is_null(map))
        return;
    if (!json_is_object(map)) {
        lo_err_add_cause(err, "FieldValueTypeInvalid", "Invalid value: must be an object of strings", field);
        return;
    }
    size_t total = 0;
    const char *key;
    json_t *value;
    json_object_foreach(map, key, value) {
        char path[512];
        snprintf(path, sizeof(path), "%s[%.200s]", field, key);
        if (!objmeta_valid_qualified_name(key))
            invalid_value(err, field, key,
                          "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and "
                          "end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex "
                          "used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')");
        if (!json_is_string(value)) {
            lo_err_add_cause(err, "FieldValueTypeInvalid", "Invalid value: must be a string", path);
            continue;
        }
        total += strlen(key) + json_string_length(value);
        if (labels && !objmeta_valid_label_value(json_string_value(value)))
            invalid_value(err, path, json_string_value(value),
                          "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or "
                          "'.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or "
                          "'my_value',  or '12345', regex used for validation is "
                          "'(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')");
    }
    if (!labels && total > ANNOTATIONS_MAX_BYTES)
        lo_err_add_cause(err, "FieldValueTooLong", "Too long: must have at most 262144 bytes", field);
}

static void check_finalizers(json_t *finalizers, lo_err_t *err)
{
    if (finalizers == NULL || json_is_null(finalizers))
        return;
    if (!json_is_array(finalizers)) {
        lo_err_add_cause(err, "FieldValueTypeInvalid", "Invalid value: must be a list of strings",
                         "metadata.finalizers");
        return;
    }
    size_t i;
    json_t *f;
    json_array_foreach(finalizers, i, f) {
        char path[64];
        snprintf(path, sizeof(path), "metadata.finalizers[%zu]", i);
        if (!json_is_string(f) || !objmeta_valid_qualified_name(json_string_value(f)))
            invalid_value(err, path, json_is_string(f) ? json_string_value(f) : "",
                          "a finalizer must be a qualified name (e.g. 'example.com/cleanup')");
    }
}

/* apiVersion of an owner: <version> or <group>/<version> (schema.ParseGroupVersion). */
static int valid_group_version(const char *gv)
{
    const char *slash = strchr(gv, '/');
    if (slash == NULL)
        return 1;
    return strchr(slash + 1, '/') == NULL && slash[1] != '\0';
}

/* One owner reference, as apimachinery's validateOwnerReference checks it. */
static void check_owner_reference(const json_t *ref, const char *at, lo_err_t *err)
{
    static const char *const required[] = {"apiVersion", "kind", "name", "uid"};
    char field[96];
    for (size_t i = 0; i < sizeof(required) / sizeof(required[0]); i++) {
        const char *v = json_string_value(json_object_get(ref, required[i]));
        snprintf(field, sizeof(field), "%s.%s", at, required[i]);
        if (v == NULL || v[0] == '\0')
            lo_err_add_cause(err, "FieldValueRequired", "Required value: must not be empty", field);
        else if (i == 0 && !valid_group_version(v))
            invalid_value(err, field, v, "must be <group>/<version> or <version>");
    }
    const char *api_version = json_string_value(json_object_get(ref, "apiVersion"));
    const char *kind = json_string_value(json_object_get(ref, "kind"));
    if (api_version && kind && strcmp(api_version, "v1") == 0 && strcmp(kind, "Event") == 0)
        invalid_value(err, at, "Event", "/v1, Kind=Event is disallowed from being an owner");
}

/* ownerReferences: each complete, and at most one of them the controller. */
static void check_owner_references(const json_t *refs, lo_err_t *err)
{
    if (refs == NULL || json_is_null(refs))
        return;
    if (!json_is_array(refs)) {
        lo_err_add_cause(err, "FieldValueTypeInvalid", "Invalid value: must be a list of objects",
                         "metadata.ownerReferences");
        return;
    }
    size_t i, controllers = 0;
    json_t *ref;
    json_array_foreach(refs, i, ref) {
        char at[64];
        snprintf(at, sizeof(at), "metadata.ownerReferences[%zu]", i);
        if (!json_is_object(ref)) {
            lo_err_add_cause(err, "FieldValueTypeInvalid", "Invalid value: must be an object", at);
            continue;
        }
        check_owner_reference(ref, at, err);
        controllers += json_is_true(json_object_get(ref, "controller"));
    }
    if (controllers > 1)
        lo_err_add_cause(err, "FieldValueInvalid", "Invalid value: Only one reference can have Controller set to true",
                         "metadata.ownerReferences");
}

/* Validates user-settable metadata; causes accumulate in err. Returns the number of causes. */
static size_t check_metadata(json_t *meta, lo_err_t *err)
{
    check_string_map(json_object_get(meta, "labels"), "metadata.labels", 1, err);
    check_string_map(json_object_get(meta, "annotations"), "metadata.annotations", 0, err);
    check_finalizers(json_object_get(meta, "finalizers"), err);
    check_owner_references(json_object_get(meta, "ownerReferences"), err);
    return err && err->details ? json_array_size(json_object_get(err->details, "causes")) : 0;
}

static const char *display_name(json_t *meta)
{
    const char *name = json_string_value(json_object_get(meta, "name"));
    if (name && name[0])
        return name;
    const char *gen = json_string_value(json_object_get(meta, "generateName"));
    return gen ? gen : "";
}

/* Moves local (an error being built) into err, which may be NULL. */
static void hand_over(lo_err_t *local, lo_err_t *err)
{
    if (err == NULL) {
        lo_err_clear(local);
        return;
    }
    lo_err_clear(err);
    *err = *local;
    memset(local, 0, sizeof(*local));
}

static int prepare_create(const schema_kind_t *k, const char *url_ns, json_t *obj, lo_err_t *err);

int objmeta_prepare_create(const schema_kind_t *k, const char *url_ns, json_t *obj, lo_err_t *err)
{
    /* causes are counted in a local error, so the checks hold when err is NULL */
    lo_err_t local = {0};
    int rc = prepare_create(k, url_ns, obj, &local);
    if (rc != 0)
        hand_over(&local, err);
    lo_err_clear(&local);
    return rc;
}

static int prepare_create(const schema_kind_t *k, const char *url_ns, json_t *obj, lo_err_t *err)
{
    json_t *meta = objmeta_metadata(obj);
    if (settle_namespace(k, url_ns, meta, err) != 0)
        return -1;
    const char *rv = json_string_value(json_object_get(meta, "resourceVersion"));
    if (rv && rv[0]) {
        status_bad_request(err, "resourceVersion should not be set on objects to be created");
        return -1;
    }
    const char *name = json_string_value(json_object_get(meta, "name"));
    const char *gen = json_string_value(json_object_get(meta, "generateName"));
    if ((name == NULL || name[0] == '\0') && (gen == NULL || gen[0] == '\0'))
        lo_err_add_cause(err, "FieldValueRequired", "Required value: name or generateName is required",
                         "metadata.name");
    else if (name && name[0] && !objmeta_valid_name(name))
        invalid_value(err, "metadata.name", name, DNS1123_SUBDOMAIN_MSG);
    if (check_metadata(meta, err) > 0) {
        status_invalid(err, k->kind, SCHEMA_GROUP, display_name(meta));
        return -1;
    }
    char uid[37], now[32];
    lo_uuid4(uid);
    lo_time_rfc3339(now, sizeof(now));
    json_object_set_new(meta, "uid", json_string(uid));
    json_object_set_new(meta, "creationTimestamp", json_string(now));
    json_object_set_new(meta, "generation", json_integer(1));
    static const char *const cleared[] = {"resourceVersion", "deletionTimestamp", "deletionGracePeriodSeconds",
                                          "selfLink", "managedFields"};
    for (size_t i = 0; i < sizeof(cleared) / sizeof(cleared[0]); i++)
        json_object_del(meta, cleared[i]);
    if (k->has_status)
        json_object_del(obj, "status"); /* status is written through /status only */
    return 0;
}

int objmeta_needs_generated_name(const json_t *obj)
{
    const char *name = objmeta_get_string(obj, "name");
    return name == NULL || name[0] == '\0';
}

/* kube's SimpleNameGenerator keeps at most 58 characters of the prefix, so that a generated name fits 63 */
#define GENERATED_PREFIX_MAX (63 - 5)

/* generateName as kube validates it: a name prefix, so a trailing '-' is allowed (maskTrailingDash). */
static int valid_name_prefix(const char *gen)
{
    size_t n = strlen(gen);
    if (n == 0 || gen[n - 1] != '-')
        return objmeta_valid_name(gen);
    char *masked = lo_strdup(gen);
    masked[n - 1] = 'a';
    int ok = objmeta_valid_name(masked);
    free(masked);
    return ok;
}

int objmeta_generate_name(const schema_kind_t *k, json_t *obj, lo_err_t *err)
{
    json_t *meta = objmeta_metadata(obj);
    const char *gen = json_string_value(json_object_get(meta, "generateName"));
    char suffix[6];
    lo_random_suffix(suffix, 5);
    size_t plen = gen ? strlen(gen) : 0;
    if (plen > GENERATED_PREFIX_MAX)
        plen = GENERATED_PREFIX_MAX;
    char *name = lo_sprintf("%.*s%s", (int)plen, gen ? gen : "", suffix);
    int ret = 0;
    if (!valid_name_prefix(gen ? gen : "") || !objmeta_valid_name(name)) {
        invalid_value(err, "metadata.generateName", gen ? gen : "", DNS1123_SUBDOMAIN_MSG);
        status_invalid(err, k->kind, SCHEMA_GROUP, gen ? gen : "");
        ret = -1;
    } else {
        json_object_set_new(meta, "name", json_string(name));
    }
    free(name);
    return ret;
}

int objmeta_check_target(const schema_kind_t *k, const char *url_ns, const char *url_name, json_t *obj,
                         lo_err_t *err)
{
    json_t *meta = objmeta_metadata(obj);
    const char *name = json_string_value(json_object_get(meta, "name"));
    if (name == NULL || name[0] == '\0') {
        json_object_set_new(meta, "name", lo_json_text(url_name));
    } else if (strcmp(name, url_name) != 0) {
        status_bad_request(err, "the name of the object (%s) does not match the name on the URL (%s)", name,
                           url_name);
        return -1;
    }
    return settle_namespace(k, url_ns, meta, err);
}

int objmeta_check_preconditions(const schema_kind_t *k, const json_t *current, const json_t *body, lo_err_t *err)
{
    const char *name = objmeta_get_string(current, "name");
    const char *want_rv = objmeta_get_string(body, "resourceVersion");
    const char *have_rv = objmeta_get_string(current, "resourceVersion");
    if (want_rv && want_rv[0] && (have_rv == NULL || strcmp(want_rv, have_rv) != 0)) {
        status_conflict(err, k->plural, SCHEMA_GROUP, name,
                        "the object has been modified; please apply your changes to the latest version and try again");
        return -1;
    }
    const char *want_uid = objmeta_get_string(body, "uid");
    const char *have_uid = objmeta_get_string(current, "uid");
    if (want_uid && want_uid[0] && (have_uid == NULL || strcmp(want_uid, have_uid) != 0)) {
        char why[256];
        snprintf(why, sizeof(why), "Precondition failed: UID in precondition: %s, UID in object meta: %s", want_uid,
                 have_uid ? have_uid : "");
        status_conflict(err, k->plural, SCHEMA_GROUP, name, why);
        return -1;
    }
    return 0;
}

/* A copy of obj without metadata and status: what generation tracks. */
static json_t *generation_payload(const json_t *obj)
{
    json_t *copy = json_copy((json_t *)obj);
    json_object_del(copy, "metadata");
    json_object_del(copy, "status");
    return copy;
}

static int spec_changed(const json_t *current, const json_t *next)
{
    json_t *a = generation_payload(current);
    json_t *b = generation_payload(next);
    int changed = !json_equal(a, b);
    json_decref(a);
    json_decref(b);
    return changed;
}

static int contains_string(const json_t *array, const char *s)
{
    size_t i;
    json_t *v;
    json_array_foreach(array, i, v) {
        if (json_is_string(v) && strcmp(json_string_value(v), s) == 0)
            return 1;
    }
    return 0;
}

/* kube refuses new finalizers on an object that is being deleted. */
static void check_no_new_finalizers(const json_t *current, const json_t *next, lo_err_t *err)
{
    if (!objmeta_is_deleting(current))
        return;
    json_t *old = json_object_get(json_object_get(current, "metadata"), "finalizers");
    json_t *now = json_object_get(json_object_get(next, "metadata"), "finalizers");
    size_t i;
    json_t *f;
    json_array_foreach(now, i, f) {
        if (json_is_string(f) && !contains_string(old, json_string_value(f))) {
            char msg[512];
            snprintf(msg, sizeof(msg),
                     "Forbidden: no new finalizers can be added if the object is being deleted, found new "
                     "finalizers []string{\"%.200s\"}",
                     json_string_value(f));
            lo_err_add_cause(err, "FieldValueForbidden", msg, "metadata.finalizers");
            return;
        }
    }
}

static json_t *merge_update(const schema_kind_t *k, const json_t *current, const json_t *body, lo_err_t *err);

json_t *objmeta_merge_update(const schema_kind_t *k, const json_t *current, const json_t *body, lo_err_t *err)
{
    lo_err_t local = {0};
    json_t *next = merge_update(k, current, body, &local);
    if (next == NULL)
        hand_over(&local, err);
    lo_err_clear(&local);
    return next;
}

static json_t *merge_update(const schema_kind_t *k, const json_t *current, const json_t *body, lo_err_t *err)
{
    json_t *next = json_deep_copy(body);
    json_t *meta = objmeta_metadata(next);
    const json_t *cur_meta = json_object_get(current, "metadata");
    static const char *const server_owned[] = {"uid", "creationTimestamp", "deletionTimestamp",
                                               "deletionGracePeriodSeconds", "generation", "resourceVersion",
                                               "managedFields", "selfLink"};
    for (size_t i = 0; i < sizeof(server_owned) / sizeof(server_owned[0]); i++) {
        json_t *v = json_object_get(cur_meta, server_owned[i]);
        if (v)
            json_object_set_new(meta, server_owned[i], json_deep_copy(v));
        else
            json_object_del(meta, server_owned[i]);
    }
    json_object_del(meta, "generateName");
    if (json_object_get(cur_meta, "generateName"))
        json_object_set_new(meta, "generateName", json_deep_copy(json_object_get(cur_meta, "generateName")));
    if (k->has_status) {
        json_t *status = json_object_get(current, "status");
        if (status)
            json_object_set_new(next, "status", json_deep_copy(status));
        else
            json_object_del(next, "status");
    }
    check_metadata(meta, err);
    check_no_new_finalizers(current, next, err);
    if (err && err->details && json_array_size(json_object_get(err->details, "causes")) > 0) {
        status_invalid(err, k->kind, SCHEMA_GROUP, objmeta_get_string(current, "name"));
        json_decref(next);
        return NULL;
    }
    json_int_t generation = json_integer_value(json_object_get(cur_meta, "generation"));
    if (spec_changed(current, next))
        json_object_set_new(meta, "generation", json_integer(generation + 1));
    return next;
}

json_t *objmeta_merge_status(const json_t *current, const json_t *body)
{
    json_t *next = json_deep_copy(current);
    json_t *status = json_object_get(body, "status");
    if (status)
        json_object_set_new(next, "status", json_deep_copy(status));
    else
        json_object_del(next, "status");
    return next;
}

int objmeta_is_deleting(const json_t *obj)
{
    const char *ts = objmeta_get_string(obj, "deletionTimestamp");
    return ts != NULL && ts[0] != '\0';
}

int objmeta_has_finalizers(const json_t *obj)
{
    return json_array_size(json_object_get(json_object_get(obj, "metadata"), "finalizers")) > 0;
}

void objmeta_mark_deleting(json_t *obj)
{
    json_t *meta = objmeta_metadata(obj);
    if (objmeta_is_deleting(obj))
        return;
    char now[32];
    lo_time_rfc3339(now, sizeof(now));
    json_object_set_new(meta, "deletionTimestamp", json_string(now));
    json_object_set_new(meta, "deletionGracePeriodSeconds", json_integer(0));
}
