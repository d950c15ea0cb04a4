/*
 * openapiproto.c - Swagger 2.0 JSON -> gnostic openapi.v2.Document protobuf
 * (see langop/api/openapiproto.h).
 *
 * The mapping is data: one table per message of OpenAPIv2.proto, each row
 * a JSON key, its field number and how its value is written. Three things
 * do not fit a row, and each has its own rule:
 * - extensions: "x-" keys of a message with a vendor_extension field;
 * - map entries: in a map message (Definitions, Properties, Paths ...)
 *   every key that is no field is one Named{name = 1, value = 2} entry;
 * - oneofs: wrapper messages whose variant depends on the value (TypeItem,
 *   ItemsItem, Parameter ...), each written by a function.
 * Fields are written in field-number order and map entries in sorted key
 * order, as Go's marshaller writes what gnostic parsed from our JSON text,
 * so equal documents give equal bytes (and one ETag).
 *
 * Field numbers are those of gnostic-models openapiv2/OpenAPIv2.proto; a
 * wrong one decodes as an unknown field in kubectl, so the unit test reads
 * the encoding back with its own table of the numbers kubectl relies on.
 *
 * Recursion follows the document's nesting; the document is the one this
 * server builds at start-up, never client input.
 */
#include "langop/api/openapiproto.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "langop/core/protowire.h"

typedef enum value_kind {
    V_STRING,    /* JSON string -> string */
    V_BOOL,      /* true/false -> bool */
    V_INT64,     /* JSON integer -> int64 */
    V_DOUBLE,    /* JSON number -> double */
    V_ANY,       /* any JSON value -> Any {yaml = 2} */
    V_MESSAGE,   /* JSON object -> the sub-message `msg` */
    V_ONEOF,     /* a wrapper whose variant depends on the value: `oneof` writes it */
} value_kind_t;

typedef struct ctx {
    lo_buf_t path;   /* JSON path of the value being written, for errors */
    lo_err_t *err;
} ctx_t;

typedef struct message message_t;

/* Writes value as sub-message `number`. Returns 0 or -1 (error in c). */
typedef int (*oneof_fn)(ctx_t *c, lo_buf_t *b, const json_t *value, uint32_t number);

typedef struct field {
    const char *key;          /* the JSON key; NULL ends a table */
    uint32_t number;
    value_kind_t kind;
    int repeated;             /* the JSON value is an array, each element one field */
    const message_t *msg;     /* V_MESSAGE */
    oneof_fn oneof;           /* V_ONEOF */
} field_t;

struct message {
    const char *name;              /* the proto message, for errors */
    const field_t *fields;         /* by field number; NULL or ended by a NULL key */
    uint32_t vendor_extension;     /* field of repeated NamedAny for "x-" keys; 0: none */
    const field_t *entries;        /* map message: other keys are Named entries at entries->number */
};

#define STR(k, n) {k, n, V_STRING, 0, NULL, NULL}
#define STRS(k, n) {k, n, V_STRING, 1, NULL, NULL}
#define BOOL(k, n) {k, n, V_BOOL, 0, NULL, NULL}
#define INT(k, n) {k, n, V_INT64, 0, NULL, NULL}
#define DBL(k, n) {k, n, V_DOUBLE, 0, NULL, NULL}
#define ANY(k, n) {k, n, V_ANY, 0, NULL, NULL}
#define ANYS(k, n) {k, n, V_ANY, 1, NULL, NULL}
#define MSG(k, n, m) {k, n, V_MESSAGE, 0, &m, NULL}
#define MSGS(k, n, m) {k, n, V_MESSAGE, 1, &m, NULL}
#define ONEOF(k, n, f) {k, n, V_ONEOF, 0, NULL, f}
#define ONEOFS(k, n, f) {k, n, V_ONEOF, 1, NULL, f}
#define END {NULL, 0, V_STRING, 0, NULL, NULL}

static int encode_message(ctx_t *c, lo_buf_t *b, const message_t *m, const json_t *value, uint32_t number);

/* ------------------------------------------------------------------------- */
/* Errors and paths.                                                         */
/* ------------------------------------------------------------------------- */

static size_t path_push_key(ctx_t *c, const char *key)
{
    size_t mark = c->path.len;
    lo_buf_char(&c->path, '.');
    lo_buf_puts(&c->path, key);
    return mark;
}

static size_t path_push_index(ctx_t *c, size_t i)
{
    size_t mark = c->path.len;
    lo_buf_printf(&c->path, "[%zu]", i);
    return mark;
}

static void path_pop(ctx_t *c, size_t mark)
{
    lo_buf_truncate(&c->path, mark);
}

static int fail(ctx_t *c, const char *what)
{
    lo_err_set(c->err, 400, "BadRequest", "openapi v2 as protobuf: %s: %s",
               c->path.len ? lo_buf_str(&c->path) : "(document)", what);
    return -1;
}

/* ------------------------------------------------------------------------- */
/* Values.                                                                   */
/* ------------------------------------------------------------------------- */

/* Any {yaml = 2}: the value as JSON text, with spaces after ':' and ',' so that any YAML parser reads it. */
static int encode_any(ctx_t *c, lo_buf_t *b, const json_t *value, uint32_t number)
{
    char *text = json_dumps(value, JSON_ENCODE_ANY | JSON_SORT_KEYS);
    if (text == NULL)
        return fail(c, "value cannot be written as text");
    size_t mark = protowire_begin(b);
    protowire_string(b, 2, text);
    protowire_end(b, number, mark);
    free(text);
    return 0;
}

/*
 * One value of f as field `number`. Scalars equal to their proto3 default
 * are left out unless keep (an element of a repeated field, whose position
 * is part of its meaning).
 */
static int encode_value(ctx_t *c, lo_buf_t *b, const field_t *f, const json_t *value, uint32_t number, int keep)
{
    switch (f->kind) {
    case V_STRING:
        if (!json_is_string(value))
            return fail(c, "want a string");
        if (keep || json_string_length(value) > 0)
            protowire_bytes(b, number, json_string_value(value), json_string_length(value));
        return 0;
    case V_BOOL:
        if (!json_is_boolean(value))
            return fail(c, "want a boolean");
        if (keep || json_is_true(value))
            protowire_bool(b, number, json_is_true(value));
        return 0;
    case V_INT64:
        if (!json_is_integer(value))
            return fail(c, "want an integer");
        if (keep || json_integer_value(value) != 0)
            protowire_int64(b, number, (int64_t)json_integer_value(value));
        return 0;
    case V_DOUBLE: {
        if (!json_is_number(value))
            return fail(c, "want a number");
        double d = json_number_value(value);
        if (keep || d != 0.0 || signbit(d))   /* Go keeps -0: its bits are not zero */
            protowire_double(b, number, d);
        return 0;
    }
    case V_ANY:
        return encode_any(c, b, value, number);
    case V_MESSAGE:
        return encode_message(c, b, f->msg, value, number);
    case V_ONEOF:
        return f->oneof(c, b, value, number);
    }
    return fail(c, "unknown value kind");
}

static int encode_field(ctx_t *c, lo_buf_t *b, const field_t *f, const json_t *value)
{
    if (!f->repeated)
        return encode_value(c, b, f, value, f->number, 0);
    if (!json_is_array(value))
        return fail(c, "want an array");
    size_t i;
    const json_t *e;
    json_array_foreach(value, i, e) {
        size_t mark = path_push_index(c, i);
        int rc = encode_value(c, b, f, e, f->number, 1);
        path_pop(c, mark);
        if (rc < 0)
            return -1;
    }
    return 0;
}

/* A Named* pair {name = 1, value = 2} as field `number`, its value written as f says. */
static int encode_named(ctx_t *c, lo_buf_t *b, uint32_t number, const field_t *f, const char *name,
                        const json_t *value)
{
    size_t mark = protowire_begin(b);
    if (*name)
        protowire_string(b, 1, name);
    int rc = encode_value(c, b, f, value, 2, 0);
    protowire_end(b, number, mark);
    return rc;
}

/* ------------------------------------------------------------------------- */
/* Messages.                                                                 */
/* ------------------------------------------------------------------------- */

typedef enum key_role { KEY_FIELD, KEY_EXTENSION, KEY_ENTRY, KEY_UNKNOWN } key_role_t;

static const field_t *find_field(const message_t *m, const char *key)
{
    for (const field_t *f = m->fields; f && f->key; f++)
        if (strcmp(f->key, key) == 0)
            return f;
    return NULL;
}

static key_role_t key_role(const message_t *m, const char *key)
{
    if (m->vendor_extension && strncmp(key, "x-", 2) == 0)
        return KEY_EXTENSION;
    if (find_field(m, key))
        return KEY_FIELD;
    return m->entries ? KEY_ENTRY : KEY_UNKNOWN;
}

static int compare_keys(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The keys of obj in byte order, the order of our JSON text; new array (caller frees), *n set. */
static const char **sorted_keys(const json_t *obj, size_t *n)
{
    *n = json_object_size(obj);
    const char **keys = lo_calloc(*n ? *n : 1, sizeof(*keys));
    size_t i = 0;
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)obj, key, v)
        keys[i++] = key;
    qsort(keys, *n, sizeof(*keys), compare_keys);
    return keys;
}

/* Writes the keys of obj that have role (extensions or entries), in key order. */
static int encode_keyed(ctx_t *c, lo_buf_t *b, const message_t *m, const json_t *obj, key_role_t role)
{
    static const field_t extension_value = ANY("", 2);
    size_t n;
    const char **keys = sorted_keys(obj, &n);
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        if (key_role(m, keys[i]) != role)
            continue;
        size_t mark = path_push_key(c, keys[i]);
        const json_t *v = json_object_get(obj, keys[i]);
        if (role == KEY_EXTENSION)
            rc = encode_named(c, b, m->vendor_extension, &extension_value, keys[i], v);
        else
            rc = encode_named(c, b, m->entries->number, m->entries, keys[i], v);
        path_pop(c, mark);
    }
    free(keys);
    return rc;
}

/* The fields of m from obj, without a tag of its own. */
static int encode_body(ctx_t *c, lo_buf_t *b, const message_t *m, const json_t *obj)
{
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)obj, key, v) {
        if (key_role(m, key) == KEY_UNKNOWN) {
            size_t mark = path_push_key(c, key);
            int rc = fail(c, "not a field of Swagger 2.0 here");
            path_pop(c, mark);
            return rc;
        }
    }
    for (const field_t *f = m->fields; f && f->key; f++) {
        const json_t *value = json_object_get(obj, f->key);
        if (value == NULL)
            continue;
        size_t mark = path_push_key(c, f->key);
        int rc = encode_field(c, b, f, value);
        path_pop(c, mark);
        if (rc < 0)
            return -1;
    }
    /* In every message the extensions and the entries have the highest numbers: Paths has its
     * extensions (1) before its entries (2), Responses its entries (1) before its extensions (2). */
    int entries_first = m->entries && m->vendor_extension && m->entries->number < m->vendor_extension;
    if (entries_first && encode_keyed(c, b, m, obj, KEY_ENTRY) < 0)
        return -1;
    if (m->vendor_extension && encode_keyed(c, b, m, obj, KEY_EXTENSION) < 0)
        return -1;
    if (m->entries && !entries_first && encode_keyed(c, b, m, obj, KEY_ENTRY) < 0)
        return -1;
    return 0;
}

static int encode_message(ctx_t *c, lo_buf_t *b, const message_t *m, const json_t *value, uint32_t number)
{
    if (!json_is_object(value)) {
        char *what = lo_sprintf("want an object (%s)", m->name);
        int rc = fail(c, what);
        free(what);
        return rc;
    }
    size_t mark = protowire_begin(b);
    int rc = encode_body(c, b, m, value);
    protowire_end(b, number, mark);
    return rc;
}

/* A wrapper message `number` holding value as its field `inner` of message m. */
static int wrap(ctx_t *c, lo_buf_t *b, uint32_t number, const message_t *m, const json_t *value, uint32_t inner)
{
    size_t mark = protowire_begin(b);
    int rc = encode_message(c, b, m, value, inner);
    protowire_end(b, number, mark);
    return rc;
}

/* ------------------------------------------------------------------------- */
/* The messages of OpenAPIv2.proto.                                          */
/* ------------------------------------------------------------------------- */

static const message_t schema_msg, xml_msg, external_docs_msg, properties_msg, file_schema_msg,
    primitives_items_msg, json_reference_msg, body_parameter_msg, query_parameter_msg, form_data_parameter_msg,
    header_parameter_msg, path_parameter_msg, response_msg, headers_msg, header_msg, examples_msg,
    api_key_security_msg, basic_security_msg, oauth2_implicit_msg, oauth2_password_msg, oauth2_application_msg,
    oauth2_access_code_msg, oauth2_scopes_msg;

/* TypeItem {repeated string value = 1}: "type" is one name or a list of them. */
static int type_item(ctx_t *c, lo_buf_t *b, const json_t *value, uint32_t number)
{
    static const field_t name = STR("", 1);
    size_t mark = protowire_begin(b);
    int rc = 0;
    if (json_is_string(value)) {
        rc = encode_value(c, b, &name, value, 1, 1);
    } else if (json_is_array(value)) {
        size_t i;
        const json_t *e;
        json_array_foreach(value, i, e)
            if (rc == 0)
                rc = encode_value(c, b, &name, e, 1, 1);
    } else {
        rc = fail(c, "want a type name or a list of them");
    }
    protowire_end(b, number, mark);
    return rc;
}

/* StringArray {repeated string value = 1}: the scopes of a SecurityRequirement. */
static int string_array(ctx_t *c, lo_buf_t *b, const json_t *value, uint32_t number)
{
    if (!json_is_array(value))
        return fail(c, "want a list of scopes");
    return type_item(c, b, value, number);
}

/* ItemsItem {repeated Schema schema = 1}: "items" is one schema or a list of them. */
static int items_item(ctx_t *c, lo_buf_t *b, const json_t *value, uint32_t number)
{
    if (json_is_object(value))
        return wrap(c, b, number, &schema_msg, value, 1);
    if (!json_is_array(value))
        return fail(c, "want a schema or a list of them");
    size_t mark = protowire_begin(b);
    int rc = 0;
    size_t i;
    const json_t *e;
    json_array_foreach(value, i, e) {
        size_t pmark = path_push_index(c, i);
        if (rc == 0)
            rc = encode_message(c, b, &schema_msg, e, 1);
        path_pop(c, pmark);
    }
    protowire_end(b, number, mark);
    return rc;
}

/* AdditionalPropertiesItem {oneof: Schema schema = 1, bool boolean = 2}. */
static int additional_properties(ctx_t *c, lo_buf_t *b, const json_t *value, uint32_t number)
{
    if (json_is_object(value))
        return wrap(c, b, number, &schema_msg, value, 1);
    if (!json_is_boolean(value))
        return fail(c, "want a schema or a boolean");
    size_t mark = protowire_begin(b);
    protowire_bool(b, 2, json_is_true(value));   /* a oneof member: false is written too */
    protowire_end(b, number, mark);
    return 0;
}

/* SchemaItem {oneof: Schema schema = 1, FileSchema file_schema = 2}: a response's schema. */
static int schema_item(ctx_t *c, lo_buf_t *b, const json_t *value, uint32_t number)
{
    const char *type = json_string_value(json_object_get(value, "type"));
    if (type && strcmp(type, "file") == 0)
        return wrap(c, b, number, &file_schema_msg, value, 2);
    return wrap(c, b, number, &schema_msg, value, 1);
}

/* Parameter {oneof: BodyParameter = 1, NonBodyParameter = 2}; NonBodyParameter's variant is "in". */
static int parameter(ctx_t *c, lo_buf_t *b, const json_t *value, uint32_t number)
{
    static const struct {
        const char *in;
        const message_t *msg;
        uint32_t number;   /* in NonBodyParameter */
    } non_body[] = {
        {"header", &header_parameter_msg, 1},
        {"formData", &form_data_parameter_msg, 2},
        {"query", &query_parameter_msg, 3},
        {"path", &path_parameter_msg, 4},
    };
    const char *in = json_string_value(json_object_get(value, "in"));
    if (in && strcmp(in, "body") == 0)
        return wrap(c, b, number, &body_parameter_msg, value, 1);
    for (size_t i = 0; in && i < sizeof(non_body) / sizeof(non_body[0]); i++) {
        if (strcmp(in, non_body[i].in) != 0)
            continue;
        size_t mark = protowire_begin(b);
        int rc = wrap(c, b, 2, non_body[i].msg, value, non_body[i].number);
        protowire_end(b, number, mark);
        return rc;
    }
    return fail(c, "a parameter's \"in\" must be body, header, formData, query or path");
}

/* ParametersItem {oneof: Parameter parameter = 1, JsonReference json_reference = 2}. */
static int parameters_item(ctx_t *c, lo_buf_t *b, const json_t *value, uint32_t number)
{
    if (json_object_get(value, "$ref"))
        return wrap(c, b, number, &json_reference_msg, value, 2);
    size_t mark = protowire_begin(b);
    int rc = parameter(c, b, value, 1);
    protowire_end(b, number, mark);
    return rc;
}

/* ResponseValue {oneof: Response response = 1, JsonReference json_reference = 2}. */
static int response_value(ctx_t *c, lo_buf_t *b, const json_t *value, uint32_t number)
{
    if (json_object_get(value, "$ref"))
        return wrap(c, b, number, &json_reference_msg, value, 2);
    return wrap(c, b, number, &response_msg, value, 1);
}

/* SecurityDefinitionsItem: the variant is the scheme's type and, for oauth2, its flow. */
static int security_definitions_item(ctx_t *c, lo_buf_t *b, const json_t *value, uint32_t number)
{
    static const struct {
        const char *type, *flow;
        const message_t *msg;
        uint32_t number;
    } variants[] = {
        {"basic", NULL, &basic_security_msg, 1},
        {"apiKey", NULL, &api_key_security_msg, 2},
        {"oauth2", "implicit", &oauth2_implicit_msg, 3},
        {"oauth2", "password", &oauth2_password_msg, 4},
        {"oauth2", "application", &oauth2_application_msg, 5},
        {"oauth2", "accessCode", &oauth2_access_code_msg, 6},
    };
    const char *type = json_string_value(json_object_get(value, "type"));
    const char *flow = json_string_value(json_object_get(value, "flow"));
    for (size_t i = 0; type && i < sizeof(variants) / sizeof(variants[0]); i++)
        if (strcmp(type, variants[i].type) == 0 && (!variants[i].flow || (flow && !strcmp(flow, variants[i].flow))))
            return wrap(c, b, number, variants[i].msg, value, variants[i].number);
    return fail(c, "a security scheme must be basic, apiKey or oauth2 with a known flow");
}

/*
 * The validation keywords that parameters, headers and items share,
 * numbered from base in every message that has them.
 */
#define PRIMITIVE_FIELDS(base)                                                                                     \
    STR("type", base), STR("format", (base) + 1), MSG("items", (base) + 2, primitives_items_msg),                   \
        STR("collectionFormat", (base) + 3), ANY("default", (base) + 4), DBL("maximum", (base) + 5),                \
        BOOL("exclusiveMaximum", (base) + 6), DBL("minimum", (base) + 7), BOOL("exclusiveMinimum", (base) + 8),     \
        INT("maxLength", (base) + 9), INT("minLength", (base) + 10), STR("pattern", (base) + 11),                   \
        INT("maxItems", (base) + 12), INT("minItems", (base) + 13), BOOL("uniqueItems", (base) + 14),               \
        ANYS("enum", (base) + 15), DBL("multipleOf", (base) + 16)

static const field_t schema_fields[] = {
    STR("$ref", 1), STR("format", 2), STR("title", 3), STR("description", 4), ANY("default", 5),
    DBL("multipleOf", 6), DBL("maximum", 7), BOOL("exclusiveMaximum", 8), DBL("minimum", 9),
    BOOL("exclusiveMinimum", 10), INT("maxLength", 11), INT("minLength", 12), STR("pattern", 13),
    INT("maxItems", 14), INT("minItems", 15), BOOL("uniqueItems", 16), INT("maxProperties", 17),
    INT("minProperties", 18), STRS("required", 19), ANYS("enum", 20),
    ONEOF("additionalProperties", 21, additional_properties), ONEOF("type", 22, type_item),
    ONEOF("items", 23, items_item), MSGS("allOf", 24, schema_msg), MSG("properties", 25, properties_msg),
    STR("discriminator", 26), BOOL("readOnly", 27), MSG("xml", 28, xml_msg),
    MSG("externalDocs", 29, external_docs_msg), ANY("example", 30), END,
};
static const message_t schema_msg = {"Schema", schema_fields, 31, NULL};

static const field_t named_schema = MSG("", 1, schema_msg);
static const message_t properties_msg = {"Properties", NULL, 0, &named_schema};
static const message_t definitions_msg = {"Definitions", NULL, 0, &named_schema};

static const field_t file_schema_fields[] = {
    STR("format", 1), STR("title", 2), STR("description", 3), ANY("default", 4), STRS("required", 5),
    STR("type", 6), BOOL("readOnly", 7), MSG("externalDocs", 8, external_docs_msg), ANY("example", 9), END,
};
static const message_t file_schema_msg = {"FileSchema", file_schema_fields, 10, NULL};

static const field_t xml_fields[] = {
    STR("name", 1), STR("namespace", 2), STR("prefix", 3), BOOL("attribute", 4), BOOL("wrapped", 5), END,
};
static const message_t xml_msg = {"Xml", xml_fields, 6, NULL};

static const field_t external_docs_fields[] = {STR("description", 1), STR("url", 2), END};
static const message_t external_docs_msg = {"ExternalDocs", external_docs_fields, 3, NULL};

static const field_t json_reference_fields[] = {STR("$ref", 1), STR("description", 2), END};
static const message_t json_reference_msg = {"JsonReference", json_reference_fields, 0, NULL};

static const field_t primitives_items_fields[] = {PRIMITIVE_FIELDS(1), END};
static const message_t primitives_items_msg = {"PrimitivesItems", primitives_items_fields, 18, NULL};

static const field_t header_fields[] = {PRIMITIVE_FIELDS(1), STR("description", 18), END};
static const message_t header_msg = {"Header", header_fields, 19, NULL};

static const field_t named_header = MSG("", 1, header_msg);
static const message_t headers_msg = {"Headers", NULL, 0, &named_header};

static const field_t named_example = ANY("", 1);
static const message_t examples_msg = {"Examples", NULL, 0, &named_example};

static const field_t body_parameter_fields[] = {
    STR("description", 1), STR("name", 2), STR("in", 3), BOOL("required", 4), MSG("schema", 5, schema_msg), END,
};
static const message_t body_parameter_msg = {"BodyParameter", body_parameter_fields, 6, NULL};

/* Query and formData parameters: allowEmptyValue, then the shared keywords from 6. */
static const field_t query_parameter_fields[] = {
    BOOL("required", 1), STR("in", 2), STR("description", 3), STR("name", 4), BOOL("allowEmptyValue", 5),
    PRIMITIVE_FIELDS(6), END,
};
static const message_t query_parameter_msg = {"QueryParameterSubSchema", query_parameter_fields, 23, NULL};
static const message_t form_data_parameter_msg = {"FormDataParameterSubSchema", query_parameter_fields, 23, NULL};

/* Header and path parameters: the shared keywords from 5. */
static const field_t path_parameter_fields[] = {
    BOOL("required", 1), STR("in", 2), STR("description", 3), STR("name", 4), PRIMITIVE_FIELDS(5), END,
};
static const message_t path_parameter_msg = {"PathParameterSubSchema", path_parameter_fields, 22, NULL};
static const message_t header_parameter_msg = {"HeaderParameterSubSchema", path_parameter_fields, 22, NULL};

static const field_t response_fields[] = {
    STR("description", 1), ONEOF("schema", 2, schema_item), MSG("headers", 3, headers_msg),
    MSG("examples", 4, examples_msg), END,
};
static const message_t response_msg = {"Response", response_fields, 5, NULL};

static const field_t named_response_value = ONEOF("", 1, response_value);
static const message_t responses_msg = {"Responses", NULL, 2, &named_response_value};

static const field_t named_string_array = ONEOF("", 1, string_array);
static const message_t security_requirement_msg = {"SecurityRequirement", NULL, 0, &named_string_array};

static const field_t operation_fields[] = {
    STRS("tags", 1), STR("summary", 2), STR("description", 3), MSG("externalDocs", 4, external_docs_msg),
    STR("operationId", 5), STRS("produces", 6), STRS("consumes", 7), ONEOFS("parameters", 8, parameters_item),
    MSG("responses", 9, responses_msg), STRS("schemes", 10), BOOL("deprecated", 11),
    MSGS("security", 12, security_requirement_msg), END,
};
static const message_t operation_msg = {"Operation", operation_fields, 13, NULL};

static const field_t path_item_fields[] = {
    STR("$ref", 1), MSG("get", 2, operation_msg), MSG("put", 3, operation_msg), MSG("post", 4, operation_msg),
    MSG("delete", 5, operation_msg), MSG("options", 6, operation_msg), MSG("head", 7, operation_msg),
    MSG("patch", 8, operation_msg), ONEOFS("parameters", 9, parameters_item), END,
};
static const message_t path_item_msg = {"PathItem", path_item_fields, 10, NULL};

static const field_t named_path_item = MSG("", 2, path_item_msg);
static const message_t paths_msg = {"Paths", NULL, 1, &named_path_item};

static const field_t named_parameter = ONEOF("", 1, parameter);
static const message_t parameter_definitions_msg = {"ParameterDefinitions", NULL, 0, &named_parameter};

static const field_t named_response = MSG("", 1, response_msg);
static const message_t response_definitions_msg = {"ResponseDefinitions", NULL, 0, &named_response};

static const field_t api_key_security_fields[] = {
    STR("type", 1), STR("name", 2), STR("in", 3), STR("description", 4), END,
};
static const message_t api_key_security_msg = {"ApiKeySecurity", api_key_security_fields, 5, NULL};

static const field_t basic_security_fields[] = {STR("type", 1), STR("description", 2), END};
static const message_t basic_security_msg = {"BasicAuthenticationSecurity", basic_security_fields, 3, NULL};

static const field_t named_scope = STR("", 1);
static const message_t oauth2_scopes_msg = {"Oauth2Scopes", NULL, 0, &named_scope};

static const field_t oauth2_implicit_fields[] = {
    STR("type", 1), STR("flow", 2), MSG("scopes", 3, oauth2_scopes_msg), STR("authorizationUrl", 4),
    STR("description", 5), END,
};
static const message_t oauth2_implicit_msg = {"Oauth2ImplicitSecurity", oauth2_implicit_fields, 6, NULL};

/* Password and application flows have the same fields. */
static const field_t oauth2_token_fields[] = {
    STR("type", 1), STR("flow", 2), MSG("scopes", 3, oauth2_scopes_msg), STR("tokenUrl", 4),
    STR("description", 5), END,
};
static const message_t oauth2_password_msg = {"Oauth2PasswordSecurity", oauth2_token_fields, 6, NULL};
static const message_t oauth2_application_msg = {"Oauth2ApplicationSecurity", oauth2_token_fields, 6, NULL};

static const field_t oauth2_access_code_fields[] = {
    STR("type", 1), STR("flow", 2), MSG("scopes", 3, oauth2_scopes_msg), STR("authorizationUrl", 4),
    STR("tokenUrl", 5), STR("description", 6), END,
};
static const message_t oauth2_access_code_msg = {"Oauth2AccessCodeSecurity", oauth2_access_code_fields, 7, NULL};

static const field_t named_security_definitions_item = ONEOF("", 1, security_definitions_item);
static const message_t security_definitions_msg = {"SecurityDefinitions", NULL, 0, &named_security_definitions_item};

static const field_t contact_fields[] = {STR("name", 1), STR("url", 2), STR("email", 3), END};
static const message_t contact_msg = {"Contact", contact_fields, 4, NULL};

static const field_t license_fields[] = {STR("name", 1), STR("url", 2), END};
static const message_t license_msg = {"License", license_fields, 3, NULL};

static const field_t info_fields[] = {
    STR("title", 1), STR("version", 2), STR("description", 3), STR("termsOfService", 4),
    MSG("contact", 5, contact_msg), MSG("license", 6, license_msg), END,
};
static const message_t info_msg = {"Info", info_fields, 7, NULL};

static const field_t tag_fields[] = {
    STR("name", 1), STR("description", 2), MSG("externalDocs", 3, external_docs_msg), END,
};
static const message_t tag_msg = {"Tag", tag_fields, 4, NULL};

static const field_t document_fields[] = {
    STR("swagger", 1), MSG("info", 2, info_msg), STR("host", 3), STR("basePath", 4), STRS("schemes", 5),
    STRS("consumes", 6), STRS("produces", 7), MSG("paths", 8, paths_msg), MSG("definitions", 9, definitions_msg),
    MSG("parameters", 10, parameter_definitions_msg), MSG("responses", 11, response_definitions_msg),
    MSGS("security", 12, security_requirement_msg), MSG("securityDefinitions", 13, security_definitions_msg),
    MSGS("tags", 14, tag_msg), MSG("externalDocs", 15, external_docs_msg), END,
};
static const message_t document_msg = {"Document", document_fields, 16, NULL};

int openapiproto_encode(const json_t *swagger, lo_buf_t *out, lo_err_t *err)
{
    ctx_t c = {.path = {0}, .err = err};
    int rc = json_is_object(swagger) ? encode_body(&c, out, &document_msg, swagger)
                                     : fail(&c, "want a Swagger 2.0 object");
    free(c.path.data);
    return rc;
}
