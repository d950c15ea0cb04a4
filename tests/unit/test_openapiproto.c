/*
 * test_openapiproto.c - the protobuf form of /openapi/v2.
 *
 * Three levels. The wire writer (core/protowire) against bytes worked out
 * by hand from the protobuf encoding rules (the 150 and "testing" examples
 * of the protobuf docs among them). The gnostic mapping (api/openapiproto)
 * against hand-made bytes of small documents, and its errors. Then the real
 * document: /openapi/v2 asked for as protobuf is read back with a reader of
 * this file's own, which knows the field numbers of OpenAPIv2.proto that
 * kubectl relies on, and turned into JSON again: every definition must come
 * back equal to the JSON document's (less the proto3 defaults, which
 * protobuf cannot carry), every Any.yaml must parse as YAML to the value
 * the JSON has, and every operation must keep its GVK, action, parameters
 * and responses. Content negotiation and ETags are checked last.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "langop/api/openapi.h"
#include "langop/api/openapiproto.h"
#include "langop/core/codec.h"
#include "langop/core/protowire.h"
#include "langop/request/reqinfo.h"
#include "langop/schema/schema.h"

#define ACCEPT_PROTO_AT "application/com.github.proto-openapi.spec.v2@v1.0+protobuf"
#define ACCEPT_PROTO "application/com.github.proto-openapi.spec.v2.v1.0+protobuf"

/* ------------------------------------------------------------------------- */
/* Helpers: bytes.                                                           */
/* ------------------------------------------------------------------------- */

static void assert_bytes(const lo_buf_t *b, const unsigned char *want, size_t want_len)
{
    if (b->len != want_len || memcmp(b->data, want, want_len) != 0) {
        char got[512] = "", exp[512] = "";
        for (size_t i = 0; i < b->len && i < 80; i++)
            snprintf(got + strlen(got), sizeof(got) - strlen(got), "%02x ", (unsigned char)b->data[i]);
        for (size_t i = 0; i < want_len && i < 80; i++)
            snprintf(exp + strlen(exp), sizeof(exp) - strlen(exp), "%02x ", want[i]);
        fail_msg("bytes differ\n got  %s(%zu)\n want %s(%zu)", got, b->len, exp, want_len);
    }
}

#define ASSERT_BYTES(buf, ...)                                                                                    \
    do {                                                                                                          \
        static const unsigned char want_[] = {__VA_ARGS__};                                                       \
        assert_bytes((buf), want_, sizeof(want_));                                                                \
    } while (0)

/* ------------------------------------------------------------------------- */
/* The wire writer.                                                          */
/* ------------------------------------------------------------------------- */

static void test_varints(void **state)
{
    (void)state;
    static const struct {
        uint64_t v;
        unsigned char bytes[10];
        size_t len;
    } cases[] = {
        {0, {0x00}, 1},
        {1, {0x01}, 1},
        {127, {0x7f}, 1},
        {128, {0x80, 0x01}, 2},
        {150, {0x96, 0x01}, 2},
        {300, {0xac, 0x02}, 2},
        {16383, {0xff, 0x7f}, 2},
        {16384, {0x80, 0x80, 0x01}, 3},
        {UINT64_MAX, {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}, 10},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        lo_buf_t b = {0};
        protowire_varint(&b, cases[i].v);
        assert_bytes(&b, cases[i].bytes, cases[i].len);
        free(b.data);
    }
}

static void test_scalar_fields(void **state)
{
    (void)state;
    lo_buf_t b = {0};
    protowire_int64(&b, 1, 150);   /* the protobuf docs' first example */
    ASSERT_BYTES(&b, 0x08, 0x96, 0x01);
    lo_buf_truncate(&b, 0);

    protowire_int64(&b, 1, -1);    /* negative int64: ten bytes */
    ASSERT_BYTES(&b, 0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01);
    lo_buf_truncate(&b, 0);

    protowire_string(&b, 2, "testing");
    ASSERT_BYTES(&b, 0x12, 0x07, 't', 'e', 's', 't', 'i', 'n', 'g');
    lo_buf_truncate(&b, 0);

    protowire_bool(&b, 3, 1);
    protowire_bool(&b, 4, 0);
    ASSERT_BYTES(&b, 0x18, 0x01, 0x20, 0x00);
    lo_buf_truncate(&b, 0);

    protowire_double(&b, 1, 1.0);
    protowire_double(&b, 2, -2.5);
    ASSERT_BYTES(&b, 0x09, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xf0, 0x3f,
                 0x11, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x04, 0xc0);
    lo_buf_truncate(&b, 0);

    protowire_bytes(&b, 5, "", 0);
    protowire_tag(&b, 16, PROTOWIRE_BYTES);          /* the first field number of two tag bytes */
    protowire_tag(&b, PROTOWIRE_MAX_FIELD, PROTOWIRE_VARINT);
    ASSERT_BYTES(&b, 0x2a, 0x00, 0x82, 0x01, 0xf8, 0xff, 0xff, 0xff, 0x0f);
    free(b.data);
}

static void test_nested_messages(void **state)
{
    (void)state;
    lo_buf_t b = {0};
    /* The protobuf docs' embedded message: field 3 holding {1: 150}. */
    size_t m = protowire_begin(&b);
    protowire_int64(&b, 1, 150);
    protowire_end(&b, 3, m);
    ASSERT_BYTES(&b, 0x1a, 0x03, 0x08, 0x96, 0x01);
    lo_buf_truncate(&b, 0);

    /* Empty sub-messages, nested, after other bytes: marks are offsets. */
    protowire_int64(&b, 1, 1);
    size_t outer = protowire_begin(&b);
    size_t inner = protowire_begin(&b);
    protowire_end(&b, 2, inner);
    protowire_end(&b, 5, outer);
    ASSERT_BYTES(&b, 0x08, 0x01, 0x2a, 0x02, 0x12, 0x00);
    lo_buf_truncate(&b, 0);

    /* A body of 200 bytes: its length takes two bytes, so the body moves up by three. */
    char text[201];
    memset(text, 'x', 200);
    text[200] = '\0';
    m = protowire_begin(&b);
    protowire_string(&b, 1, text);
    protowire_end(&b, 4, m);
    assert_int_equal(b.len, 3 + 3 + 200);
    static const unsigned char head[] = {0x22, 0xcb, 0x01, 0x0a, 0xc8, 0x01};
    assert_memory_equal(b.data, head, sizeof(head));
    for (size_t i = sizeof(head); i < b.len; i++)
        assert_int_equal(b.data[i], 'x');
    assert_int_equal(b.data[b.len], '\0');
    free(b.data);
}

/* ------------------------------------------------------------------------- */
/* A reader of this test's own, for reading encodings back.                  */
/* ------------------------------------------------------------------------- */

typedef struct pb_reader {
    const unsigned char *p, *end;
} pb_reader_t;

typedef struct pb_field {
    uint32_t number;
    int type;
    uint64_t value;                /* varint, or the bits of a fixed64 */
    const unsigned char *data;     /* length-delimited */
    size_t len;
} pb_field_t;

static pb_reader_t pb_over(const void *data, size_t len)
{
    pb_reader_t r = {data, (const unsigned char *)data + len};
    return r;
}

static pb_reader_t pb_sub(const pb_field_t *f)
{
    if (f->type != PROTOWIRE_BYTES)
        fail_msg("field %u: wire type %d where a message belongs", f->number, f->type);
    return pb_over(f->data, f->len);
}

static uint64_t pb_varint(pb_reader_t *r)
{
    uint64_t v = 0;
    for (int shift = 0; shift < 70; shift += 7) {
        if (r->p >= r->end)
            fail_msg("truncated varint");
        unsigned char c = *r->p++;
        v |= (uint64_t)(c & 0x7f) << shift;
        if (!(c & 0x80))
            return v;
    }
    fail_msg("varint longer than ten bytes");
    return 0;
}

/* The next field of r into f: 1, or 0 at the end. Malformed input fails the test. */
static int pb_next(pb_reader_t *r, pb_field_t *f)
{
    if (r->p >= r->end)
        return 0;
    uint64_t tag = pb_varint(r);
    memset(f, 0, sizeof(*f));
    f->number = (uint32_t)(tag >> 3);
    f->type = (int)(tag & 7);
    if (f->number == 0)
        fail_msg("field number 0");
    switch (f->type) {
    case PROTOWIRE_VARINT:
        f->value = pb_varint(r);
        break;
    case PROTOWIRE_FIXED64:
        if (r->end - r->p < 8)
            fail_msg("truncated fixed64");
        for (int i = 0; i < 8; i++)
            f->value |= (uint64_t)r->p[i] << (8 * i);
        r->p += 8;
        break;
    case PROTOWIRE_BYTES:
        f->len = (size_t)pb_varint(r);
        if ((size_t)(r->end - r->p) < f->len)
            fail_msg("field %u: length %zu beyond the end", f->number, f->len);
        f->data = r->p;
        r->p += f->len;
        break;
    default:
        fail_msg("field %u: wire type %d", f->number, f->type);
    }
    return 1;
}

/* The string of a length-delimited field, as a new JSON string (checked UTF-8). */
static json_t *pb_string(const pb_field_t *f)
{
    if (f->type != PROTOWIRE_BYTES)
        fail_msg("field %u: wire type %d where a string belongs", f->number, f->type);
    json_t *s = json_stringn((const char *)f->data, f->len);
    if (s == NULL)
        fail_msg("field %u: not UTF-8", f->number);
    return s;
}

static void want_type(const pb_field_t *f, int type)
{
    if (f->type != type)
        fail_msg("field %u: wire type %d, want %d", f->number, f->type, type);
}

/* Any {yaml = 2}: the value its YAML text stands for, read as kubectl reads it (YAML, go-yaml v2 rules). */
static json_t *pb_any(const pb_field_t *f)
{
    pb_reader_t r = pb_sub(f);
    pb_field_t g;
    json_t *value = NULL;
    while (pb_next(&r, &g)) {
        if (g.number != 2)
            fail_msg("Any: field %u", g.number);
        json_t *text = pb_string(&g);
        lo_err_t err = {0};
        value = codec_decode_yaml(json_string_value(text), json_string_length(text), &err);
        if (value == NULL)
            fail_msg("Any.yaml %s: %s", json_string_value(text), err.message);
        json_decref(text);
    }
    if (value == NULL)
        fail_msg("Any without yaml");
    return value;
}

/* A Named* pair: *name (new) and the value field. */
static void pb_named(const pb_field_t *f, json_t **name, pb_field_t *value)
{
    pb_reader_t r = pb_sub(f);
    pb_field_t g;
    *name = json_string("");
    memset(value, 0, sizeof(*value));
    while (pb_next(&r, &g)) {
        if (g.number == 1) {
            json_decref(*name);
            *name = pb_string(&g);
        } else if (g.number == 2) {
            *value = g;
        } else {
            fail_msg("Named pair: field %u", g.number);
        }
    }
}

/* Adds a NamedAny (a vendor extension) to obj. */
static void add_extension(json_t *obj, const pb_field_t *f)
{
    json_t *name;
    pb_field_t value;
    pb_named(f, &name, &value);
    json_object_set_new(obj, json_string_value(name), pb_any(&value));
    json_decref(name);
}

static json_t *number_value(double d)
{
    return d == (double)(json_int_t)d ? json_integer((json_int_t)d) : json_real(d);
}

/* ------------------------------------------------------------------------- */
/* Schema -> JSON, by the field numbers of OpenAPIv2.proto.                  */
/* ------------------------------------------------------------------------- */

typedef enum { T_STR, T_STRS, T_BOOL, T_INT, T_DBL, T_ANY, T_ANYS } scalar_t;

static const struct {
    uint32_t number;
    const char *key;
    scalar_t type;
} schema_scalars[] = {
    {1, "$ref", T_STR}, {2, "format", T_STR}, {3, "title", T_STR}, {4, "description", T_STR},
    {5, "default", T_ANY}, {6, "multipleOf", T_DBL}, {7, "maximum", T_DBL}, {8, "exclusiveMaximum", T_BOOL},
    {9, "minimum", T_DBL}, {10, "exclusiveMinimum", T_BOOL}, {11, "maxLength", T_INT}, {12, "minLength", T_INT},
    {13, "pattern", T_STR}, {14, "maxItems", T_INT}, {15, "minItems", T_INT}, {16, "uniqueItems", T_BOOL},
    {17, "maxProperties", T_INT}, {18, "minProperties", T_INT}, {19, "required", T_STRS}, {20, "enum", T_ANYS},
    {26, "discriminator", T_STR}, {27, "readOnly", T_BOOL}, {30, "example", T_ANY},
};

static int scalar_into(json_t *obj, const pb_field_t *f)
{
    for (size_t i = 0; i < sizeof(schema_scalars) / sizeof(schema_scalars[0]); i++) {
        if (schema_scalars[i].number != f->number)
            continue;
        const char *key = schema_scalars[i].key;
        double d;
        switch (schema_scalars[i].type) {
        case T_STR:
            json_object_set_new(obj, key, pb_string(f));
            break;
        case T_STRS:
        case T_ANYS:
            if (json_object_get(obj, key) == NULL)
                json_object_set_new(obj, key, json_array());
            json_array_append_new(json_object_get(obj, key),
                                  schema_scalars[i].type == T_STRS ? pb_string(f) : pb_any(f));
            break;
        case T_BOOL:
            want_type(f, PROTOWIRE_VARINT);
            json_object_set_new(obj, key, json_boolean(f->value));
            break;
        case T_INT:
            want_type(f, PROTOWIRE_VARINT);
            json_object_set_new(obj, key, json_integer((json_int_t)f->value));
            break;
        case T_DBL:
            want_type(f, PROTOWIRE_FIXED64);
            memcpy(&d, &f->value, sizeof(d));
            json_object_set_new(obj, key, number_value(d));
            break;
        case T_ANY:
            json_object_set_new(obj, key, pb_any(f));
            break;
        }
        return 1;
    }
    return 0;
}

static json_t *decode_schema(const pb_field_t *f);

/* TypeItem or StringArray {repeated string value = 1}: one name as a string, more as a list. */
static json_t *decode_strings(const pb_field_t *f, int list)
{
    pb_reader_t r = pb_sub(f);
    pb_field_t g;
    json_t *names = json_array();
    while (pb_next(&r, &g)) {
        if (g.number != 1)
            fail_msg("string list: field %u", g.number);
        json_array_append_new(names, pb_string(&g));
    }
    if (list || json_array_size(names) != 1)
        return names;
    json_t *one = json_incref(json_array_get(names, 0));
    json_decref(names);
    return one;
}

/* Properties or Definitions {repeated NamedSchema = 1}. */
static json_t *decode_schema_map(const pb_field_t *f)
{
    pb_reader_t r = pb_sub(f);
    pb_field_t g;
    json_t *map = json_object();
    while (pb_next(&r, &g)) {
        if (g.number != 1)
            fail_msg("schema map: field %u", g.number);
        json_t *name;
        pb_field_t value;
        pb_named(&g, &name, &value);
        json_object_set_new(map, json_string_value(name), decode_schema(&value));
        json_decref(name);
    }
    return map;
}

static json_t *decode_schema(const pb_field_t *f)
{
    pb_reader_t r = pb_sub(f);
    pb_field_t g;
    json_t *s = json_object();
    while (pb_next(&r, &g)) {
        if (scalar_into(s, &g))
            continue;
        pb_reader_t sub;
        pb_field_t h;
        switch (g.number) {
        case 21:   /* AdditionalPropertiesItem: schema = 1 | boolean = 2 */
            sub = pb_sub(&g);
            while (pb_next(&sub, &h)) {
                if (h.number == 1)
                    json_object_set_new(s, "additionalProperties", decode_schema(&h));
                else if (h.number == 2)
                    json_object_set_new(s, "additionalProperties", json_boolean(h.value));
                else
                    fail_msg("AdditionalPropertiesItem: field %u", h.number);
            }
            break;
        case 22:
            json_object_set_new(s, "type", decode_strings(&g, 0));
            break;
        case 23:   /* ItemsItem {repeated Schema = 1}: our document has one schema */
            sub = pb_sub(&g);
            while (pb_next(&sub, &h)) {
                if (h.number != 1 || json_object_get(s, "items"))
                    fail_msg("ItemsItem: field %u", h.number);
                json_object_set_new(s, "items", decode_schema(&h));
            }
            break;
        case 24:
            if (json_object_get(s, "allOf") == NULL)
                json_object_set_new(s, "allOf", json_array());
            json_array_append_new(json_object_get(s, "allOf"), decode_schema(&g));
            break;
        case 25:
            json_object_set_new(s, "properties", decode_schema_map(&g));
            break;
        case 31:
            add_extension(s, &g);
            break;
        default:
            fail_msg("Schema: field %u", g.number);
        }
    }
    return s;
}

/*
 * A schema as protobuf carries it: proto3 leaves out scalars equal to their
 * default (0, false, ""), so the JSON side drops them before comparing.
 */
static void strip_defaults(json_t *s)
{
    if (!json_is_object(s))
        return;
    const char *key;
    json_t *v;
    void *tmp;
    json_object_foreach_safe(s, tmp, key, v) {
        int zero = (json_is_number(v) && json_number_value(v) == 0) || json_is_false(v) ||
                   (json_is_string(v) && json_string_length(v) == 0);
        if (zero && strncmp(key, "x-", 2) != 0 && strcmp(key, "default") && strcmp(key, "example") &&
            strcmp(key, "additionalProperties")) {
            json_object_del(s, key);
        } else if (!strcmp(key, "properties")) {
            const char *name;
            json_t *p;
            json_object_foreach(v, name, p)
                strip_defaults(p);
        } else if (!strcmp(key, "items") || !strcmp(key, "additionalProperties")) {
            strip_defaults(v);
        } else if (!strcmp(key, "allOf")) {
            size_t i;
            json_t *e;
            json_array_foreach(v, i, e)
                strip_defaults(e);
        }
    }
}

/* ------------------------------------------------------------------------- */
/* The gnostic mapping on small documents.                                   */
/* ------------------------------------------------------------------------- */

static json_t *parse(const char *text)
{
    json_error_t jerr;
    json_t *v = json_loads(text, 0, &jerr);
    if (v == NULL)
        fail_msg("test JSON: %s: %s", text, jerr.text);
    return v;
}

static void encode_ok(const char *text, lo_buf_t *out)
{
    json_t *doc = parse(text);
    lo_err_t err = {0};
    memset(out, 0, sizeof(*out));
    if (openapiproto_encode(doc, out, &err) < 0)
        fail_msg("%s: %s", text, err.message);
    json_decref(doc);
}

static void test_small_documents(void **state)
{
    (void)state;
    lo_buf_t b;

    encode_ok("{\"swagger\": \"2.0\", \"info\": {\"title\": \"t\", \"version\": \"v\"}}", &b);
    ASSERT_BYTES(&b, 0x0a, 0x03, '2', '.', '0', 0x12, 0x06, 0x0a, 0x01, 't', 0x12, 0x01, 'v');
    free(b.data);

    /* Document.definitions (9) > NamedSchema (1) {name, Schema {description (4), type (22) TypeItem}} */
    encode_ok("{\"definitions\": {\"A\": {\"type\": \"string\", \"description\": \"d\"}}}", &b);
    ASSERT_BYTES(&b, 0x4a, 0x15, 0x0a, 0x13, 0x0a, 0x01, 'A', 0x12, 0x0e, 0x22, 0x01, 'd', 0xb2, 0x01, 0x08, 0x0a,
                 0x06, 's', 't', 'r', 'i', 'n', 'g');
    free(b.data);

    /* A vendor extension: Schema field 31, NamedAny {name, Any {yaml (2)}}; the JSON text is YAML. */
    encode_ok("{\"definitions\": {\"A\": {\"x-k\": [1]}}}", &b);
    ASSERT_BYTES(&b, 0x4a, 0x16, 0x0a, 0x14, 0x0a, 0x01, 'A', 0x12, 0x0f, 0xfa, 0x01, 0x0c, 0x0a, 0x03, 'x', '-',
                 'k', 0x12, 0x05, 0x12, 0x03, '[', '1', ']');
    free(b.data);

    /* additionalProperties false is a oneof member: written although it is false (field 21, boolean 2). */
    encode_ok("{\"definitions\": {\"A\": {\"additionalProperties\": false, \"minLength\": 0, \"maxLength\": 3}}}",
              &b);
    ASSERT_BYTES(&b, 0x4a, 0x0e, 0x0a, 0x0c, 0x0a, 0x01, 'A', 0x12, 0x07, 0x58, 0x03, 0xaa, 0x01, 0x02, 0x10,
                 0x00);
    free(b.data);

    /* Paths (8): extensions (1) before the entries (2); an Operation's parameter is wrapped three deep. */
    encode_ok("{\"paths\": {\"/a\": {\"get\": {\"parameters\": [{\"in\": \"query\", \"name\": \"q\"}]}},"
              " \"x-e\": true}}", &b);
    ASSERT_BYTES(&b, 0x42, 0x2b,
                 0x0a, 0x0d, 0x0a, 0x03, 'x', '-', 'e', 0x12, 0x06, 0x12, 0x04, 't', 'r', 'u', 'e',
                 0x12, 0x1a, 0x0a, 0x02, '/', 'a', 0x12, 0x14,           /* NamedPathItem {name, PathItem} */
                 0x12, 0x12, 0x42, 0x10,                                 /* get (2) > parameters (8) */
                 0x0a, 0x0e, 0x12, 0x0c, 0x1a, 0x0a,                     /* Parameter > NonBody > query (3) */
                 0x12, 0x05, 'q', 'u', 'e', 'r', 'y', 0x22, 0x01, 'q');  /* in (2), name (4) */
    free(b.data);
}

/* The reader the document tests use follows that nesting too. */
static void test_reader_follows_the_nesting(void **state)
{
    (void)state;
    lo_buf_t b;
    encode_ok("{\"paths\": {\"/a\": {\"get\": {\"parameters\": [{\"in\": \"query\", \"name\": \"q\"}]}}}}", &b);
    pb_reader_t r = pb_over(b.data, b.len);
    pb_field_t f;
    assert_true(pb_next(&r, &f));
    assert_int_equal(f.number, 8);
    pb_reader_t paths = pb_sub(&f);
    assert_true(pb_next(&paths, &f));
    assert_int_equal(f.number, 2);
    json_t *name;
    pb_field_t item;
    pb_named(&f, &name, &item);
    assert_string_equal(json_string_value(name), "/a");
    json_decref(name);
    static const uint32_t chain[] = {2 /* get */, 8 /* parameters */, 1 /* Parameter */, 2 /* NonBody */,
                                     3 /* query */};
    pb_field_t cur = item;
    for (size_t i = 0; i < sizeof(chain) / sizeof(chain[0]); i++) {
        pb_reader_t sub = pb_sub(&cur);
        assert_true(pb_next(&sub, &cur));
        assert_int_equal(cur.number, chain[i]);
    }
    pb_reader_t q = pb_sub(&cur);
    json_t *in = NULL, *qname = NULL;
    while (pb_next(&q, &f)) {
        if (f.number == 2)
            in = pb_string(&f);
        else if (f.number == 4)
            qname = pb_string(&f);
    }
    assert_non_null(in);
    assert_non_null(qname);
    assert_string_equal(json_string_value(in), "query");
    assert_string_equal(json_string_value(qname), "q");
    json_decref(in);
    json_decref(qname);
    free(b.data);
}

static void test_errors_name_the_path(void **state)
{
    (void)state;
    static const struct {
        const char *doc;
        const char *where;
    } cases[] = {
        {"{\"definitions\": {\"A\": {\"nullable\": true}}}", ".definitions.A.nullable"},
        {"{\"definitions\": {\"A\": {\"maxLength\": \"3\"}}}", ".definitions.A.maxLength"},
        {"{\"definitions\": {\"A\": {\"required\": [\"a\", 1]}}}", ".definitions.A.required[1]"},
        {"{\"definitions\": {\"A\": {\"properties\": []}}}", ".definitions.A.properties"},
        {"{\"paths\": {\"/a\": {\"get\": {\"parameters\": [{\"in\": \"cookie\", \"name\": \"c\"}]}}}}",
         ".paths./a.get.parameters[0]"},
        {"{\"swagger\": \"2.0\", \"openapi\": \"3.0.0\"}", ".openapi"},
        {"{\"securityDefinitions\": {\"s\": {\"type\": \"oauth2\", \"flow\": \"magic\"}}}",
         ".securityDefinitions.s"},
        {"[]", "(document)"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        json_t *doc = parse(cases[i].doc);
        lo_buf_t b = {0};
        lo_err_t err = {0};
        if (openapiproto_encode(doc, &b, &err) == 0)
            fail_msg("%s: encoded", cases[i].doc);
        if (strstr(err.message, cases[i].where) == NULL)
            fail_msg("%s: message \"%s\" does not name %s", cases[i].doc, err.message, cases[i].where);
        assert_int_equal(err.code, 400);
        lo_err_clear(&err);
        free(b.data);
        json_decref(doc);
    }
}

/* ------------------------------------------------------------------------- */
/* The real document.                                                        */
/* ------------------------------------------------------------------------- */

static openapi_t *oa;
static json_t *v2_json;          /* /openapi/v2 as JSON */
static api_response_t proto_resp;   /* /openapi/v2 as protobuf */

static const char *header(const api_response_t *resp, const char *name)
{
    for (size_t i = 0; i < resp->header_count; i++)
        if (strcmp(resp->header_names[i], name) == 0)
            return resp->header_values[i];
    return NULL;
}

static void get_v2(const char *accept, const char *if_none_match, api_response_t *resp)
{
    reqinfo_t info;
    lo_err_t err = {0};
    memset(resp, 0, sizeof(*resp));
    if (reqinfo_parse("GET", "/openapi/v2", strlen("/openapi/v2"), &info, &err) < 0)
        fail_msg("reqinfo_parse: %s", err.message);
    if (!openapi_handle(oa, &info, accept, if_none_match, resp))
        fail_msg("/openapi/v2 is not served");
    reqinfo_free(&info);
}

static int setup(void **state)
{
    (void)state;
    lo_err_t err = {0};
    if (schema_registry_load(&err) < 0) {
        print_error("schema_registry_load: %s\n", err.message);
        lo_err_clear(&err);
        return -1;
    }
    oa = openapi_new();
    api_response_t resp;
    get_v2("application/json", NULL, &resp);
    json_error_t jerr;
    v2_json = json_loadb(resp.body, resp.body_len, 0, &jerr);
    api_response_free(&resp);
    get_v2(ACCEPT_PROTO_AT, NULL, &proto_resp);
    return v2_json && proto_resp.status == 200 ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    api_response_free(&proto_resp);
    json_decref(v2_json);
    openapi_free(oa);
    schema_registry_free();
    return 0;
}

/* The top-level fields of the protobuf document with number n, in order (the caller frees the array). */
static pb_field_t *document_fields(uint32_t n, size_t *count)
{
    pb_field_t *out = calloc(64, sizeof(*out));
    *count = 0;
    pb_reader_t r = pb_over(proto_resp.body, proto_resp.body_len);
    pb_field_t f;
    while (pb_next(&r, &f))
        if (f.number == n && *count < 64)
            out[(*count)++] = f;
    return out;
}

static pb_field_t document_field(uint32_t n)
{
    size_t count;
    pb_field_t *all = document_fields(n, &count);
    if (count != 1)
        fail_msg("document field %u appears %zu times", n, count);
    pb_field_t f = all[0];
    free(all);
    return f;
}

static void test_document_header(void **state)
{
    (void)state;
    assert_string_equal(proto_resp.content_type, OPENAPIPROTO_MEDIA_TYPE);
    pb_field_t f = document_field(1);
    json_t *swagger = pb_string(&f);
    assert_string_equal(json_string_value(swagger), "2.0");
    json_decref(swagger);

    f = document_field(2);   /* Info {title = 1, version = 2} */
    pb_reader_t r = pb_sub(&f);
    json_t *info = json_object();
    pb_field_t g;
    while (pb_next(&r, &g))
        json_object_set_new(info, g.number == 1 ? "title" : g.number == 2 ? "version" : "?", pb_string(&g));
    assert_true(json_equal(info, json_object_get(v2_json, "info")));
    json_decref(info);
}

static void test_definitions_come_back_equal(void **state)
{
    (void)state;
    pb_field_t f = document_field(9);
    json_t *got = decode_schema_map(&f);
    json_t *want = json_deep_copy(json_object_get(v2_json, "definitions"));
    const char *name;
    json_t *s;
    json_object_foreach(want, name, s)
        strip_defaults(s);
    assert_int_equal(json_object_size(got), json_object_size(want));
    json_object_foreach(want, name, s) {
        json_t *g = json_object_get(got, name);
        if (!json_equal(g, s)) {
            char *a = json_dumps(g, JSON_SORT_KEYS), *b = json_dumps(s, JSON_SORT_KEYS);
            fail_msg("definition %s differs\n protobuf %.1500s\n json     %.1500s", name, a ? a : "(missing)", b);
        }
    }
    /* What kubectl explain and apply look for: each kind's GVK, its description, a default. */
    json_t *model = json_object_get(got, "io.langop.v1alpha1.LanguageModel");
    json_t *gvk = json_array_get(json_object_get(model, "x-kubernetes-group-version-kind"), 0);
    assert_string_equal(json_string_value(json_object_get(gvk, "group")), "langop.io");
    assert_string_equal(json_string_value(json_object_get(gvk, "kind")), "LanguageModel");
    assert_string_equal(json_string_value(json_object_get(gvk, "version")), "v1alpha1");
    assert_non_null(strstr(json_string_value(json_object_get(model, "description")), "LanguageModel"));
    json_decref(got);
    json_decref(want);
}

/*
 * One operation in the terms kubectl reads: its x- extensions, the names
 * of its query parameters, the $ref of its body, and each response's $ref.
 */
static json_t *operation_view_json(const json_t *op)
{
    json_t *view = json_object();
    json_t *query = json_array();
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)op, key, v)
        if (!strncmp(key, "x-", 2) || !strcmp(key, "operationId"))
            json_object_set(view, key, v);
    size_t i;
    json_t *p;
    json_array_foreach(json_object_get(op, "parameters"), i, p) {
        const char *in = json_string_value(json_object_get(p, "in"));
        if (!strcmp(in, "body"))
            json_object_set(view, "body", json_object_get(json_object_get(p, "schema"), "$ref"));
        else
            json_array_append(query, json_object_get(p, "name"));
    }
    json_object_set_new(view, "query", query);
    json_t *responses = json_object();
    json_object_foreach(json_object_get(op, "responses"), key, v) {
        json_t *ref = json_object_get(json_object_get(v, "schema"), "$ref");
        json_object_set_new(responses, key, ref ? json_incref(ref) : json_null());
    }
    json_object_set_new(view, "responses", responses);
    return view;
}

/* ParametersItem > Parameter > (BodyParameter | NonBodyParameter > query/path sub-schema): into view. */
static void parameter_into(json_t *view, const pb_field_t *item)
{
    pb_reader_t r = pb_sub(item);
    pb_field_t param, variant, g;
    if (!pb_next(&r, &param) || param.number != 1)
        fail_msg("ParametersItem without a Parameter");
    r = pb_sub(&param);
    if (!pb_next(&r, &variant))
        fail_msg("empty Parameter");
    if (variant.number == 1) {   /* BodyParameter {schema = 5 {_ref = 1}} */
        pb_reader_t body = pb_sub(&variant);
        while (pb_next(&body, &g)) {
            if (g.number != 5)
                continue;
            json_t *schema = decode_schema(&g);
            json_object_set(view, "body", json_object_get(schema, "$ref"));
            json_decref(schema);
        }
        return;
    }
    pb_reader_t nb = pb_sub(&variant);
    pb_field_t sub;
    if (variant.number != 2 || !pb_next(&nb, &sub) || (sub.number != 3 && sub.number != 4))
        fail_msg("NonBodyParameter: not a query or path sub-schema");
    pb_reader_t q = pb_sub(&sub);
    while (pb_next(&q, &g))
        if (g.number == 4)
            json_array_append_new(json_object_get(view, "query"), pb_string(&g));
}

/* Responses {NamedResponseValue = 1} > ResponseValue {Response = 1} > {schema = 2 SchemaItem {Schema = 1}}. */
static void responses_into(json_t *view, const pb_field_t *f)
{
    json_t *responses = json_object_get(view, "responses");
    pb_reader_t r = pb_sub(f);
    pb_field_t g;
    while (pb_next(&r, &g)) {
        if (g.number != 1)
            fail_msg("Responses: field %u", g.number);
        json_t *code;
        pb_field_t value, response, h;
        pb_named(&g, &code, &value);
        pb_reader_t rv = pb_sub(&value);
        if (!pb_next(&rv, &response) || response.number != 1)
            fail_msg("ResponseValue without a Response");
        json_t *ref = json_null();
        pb_reader_t resp = pb_sub(&response);
        while (pb_next(&resp, &h)) {
            if (h.number != 2)
                continue;
            pb_reader_t item = pb_sub(&h);
            pb_field_t schema;
            if (!pb_next(&item, &schema) || schema.number != 1)
                fail_msg("SchemaItem without a Schema");
            json_t *s = decode_schema(&schema);
            json_decref(ref);
            ref = json_incref(json_object_get(s, "$ref"));
            json_decref(s);
        }
        json_object_set_new(responses, json_string_value(code), ref);
        json_decref(code);
    }
}

static json_t *operation_view_proto(const pb_field_t *f)
{
    json_t *view = json_pack("{s:[],s:{}}", "query", "responses");
    pb_reader_t r = pb_sub(f);
    pb_field_t g;
    while (pb_next(&r, &g)) {
        if (g.number == 5)
            json_object_set_new(view, "operationId", pb_string(&g));
        else if (g.number == 8)
            parameter_into(view, &g);
        else if (g.number == 9)
            responses_into(view, &g);
        else if (g.number == 13)
            add_extension(view, &g);
    }
    return view;
}

static void test_operations_keep_what_kubectl_reads(void **state)
{
    (void)state;
    static const char *const methods[] = {NULL, NULL, "get", "put", "post", "delete", "options", "head", "patch"};
    pb_field_t paths = document_field(8);
    pb_reader_t r = pb_sub(&paths);
    pb_field_t f;
    size_t seen = 0, patches = 0;
    while (pb_next(&r, &f)) {
        assert_int_equal(f.number, 2);   /* NamedPathItem; no extensions on Paths */
        json_t *path;
        pb_field_t item, g;
        pb_named(&f, &path, &item);
        const json_t *json_item = json_object_get(json_object_get(v2_json, "paths"), json_string_value(path));
        if (json_item == NULL)
            fail_msg("path %s is not in the JSON document", json_string_value(path));
        pb_reader_t ops = pb_sub(&item);
        while (pb_next(&ops, &g)) {
            if (g.number == 9) {   /* path-level parameters: path sub-schemas */
                json_t *view = json_pack("{s:[]}", "query");
                parameter_into(view, &g);
                json_decref(view);
                continue;
            }
            if (g.number < 2 || g.number > 8)
                fail_msg("%s: PathItem field %u", json_string_value(path), g.number);
            const char *method = methods[g.number];
            json_t *got = operation_view_proto(&g);
            json_t *want = operation_view_json(json_object_get(json_item, method));
            if (!json_equal(got, want)) {
                char *a = json_dumps(got, JSON_SORT_KEYS), *b = json_dumps(want, JSON_SORT_KEYS);
                fail_msg("%s %s\n protobuf %s\n json     %s", method, json_string_value(path), a, b);
            }
            if (!strcmp(method, "patch")) {
                /* kubectl 1.27's query-parameter check: fieldValidation on the PATCH of the GVK */
                assert_true(json_is_object(json_object_get(got, "x-kubernetes-group-version-kind")));
                int has = 0;
                size_t i;
                json_t *name;
                json_array_foreach(json_object_get(got, "query"), i, name)
                    has |= !strcmp(json_string_value(name), "fieldValidation");
                assert_true(has);
                patches++;
            }
            json_decref(got);
            json_decref(want);
            seen++;
        }
        json_decref(path);
    }
    assert_true(seen > 0);
    assert_true(patches > 0);
    size_t want_ops = 0;
    const char *key;
    json_t *item;
    json_object_foreach(json_object_get(v2_json, "paths"), key, item)
        want_ops += json_object_size(item) - (json_object_get(item, "parameters") ? 1 : 0);
    assert_int_equal(seen, want_ops);
}

static void test_security(void **state)
{
    (void)state;
    /* securityDefinitions (13) > NamedSecurityDefinitionsItem > api_key_security (2) {type, name, in, description} */
    pb_field_t f = document_field(13);
    pb_reader_t r = pb_sub(&f);
    pb_field_t g, value, variant, h;
    assert_true(pb_next(&r, &g));
    json_t *name;
    pb_named(&g, &name, &value);
    assert_string_equal(json_string_value(name), "BearerToken");
    json_decref(name);
    pb_reader_t item = pb_sub(&value);
    assert_true(pb_next(&item, &variant));
    assert_int_equal(variant.number, 2);
    json_t *scheme = json_object();
    static const char *const keys[] = {NULL, "type", "name", "in", "description"};
    pb_reader_t fields = pb_sub(&variant);
    while (pb_next(&fields, &h)) {
        assert_true(h.number >= 1 && h.number <= 4);
        json_object_set_new(scheme, keys[h.number], pb_string(&h));
    }
    assert_true(json_equal(scheme, json_object_get(json_object_get(v2_json, "securityDefinitions"), "BearerToken")));
    json_decref(scheme);

    /* security (12) > SecurityRequirement > NamedStringArray {BearerToken, StringArray {}} */
    f = document_field(12);
    r = pb_sub(&f);
    assert_true(pb_next(&r, &g));
    pb_named(&g, &name, &value);
    assert_string_equal(json_string_value(name), "BearerToken");
    json_t *scopes = decode_strings(&value, 1);
    assert_int_equal(json_array_size(scopes), 0);
    json_decref(scopes);
    json_decref(name);
}

/* ------------------------------------------------------------------------- */
/* Content negotiation and ETags.                                            */
/* ------------------------------------------------------------------------- */

static void test_negotiation(void **state)
{
    (void)state;
    static const struct {
        const char *accept;
        int status;
        const char *content_type;
    } cases[] = {
        {ACCEPT_PROTO_AT, 200, OPENAPIPROTO_MEDIA_TYPE},   /* kubectl 1.27 - 1.33 */
        {ACCEPT_PROTO, 200, OPENAPIPROTO_MEDIA_TYPE},
        {ACCEPT_PROTO_AT ", application/json", 200, OPENAPIPROTO_MEDIA_TYPE},   /* the first that we serve */
        {"application/json, " ACCEPT_PROTO_AT, 200, "application/json"},
        {"application/vnd.kubernetes.protobuf, " ACCEPT_PROTO, 200, OPENAPIPROTO_MEDIA_TYPE},
        {"*/*", 200, "application/json"},
        {NULL, 200, "application/json"},
        {"application/*", 200, "application/json"},
        {"application/vnd.kubernetes.protobuf", 406, "application/json"},
        {"application/com.github.proto-openapi.spec.v3@v1.0+protobuf", 406, "application/json"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        api_response_t resp;
        get_v2(cases[i].accept, NULL, &resp);
        if (resp.status != cases[i].status || strcmp(resp.content_type, cases[i].content_type) != 0)
            fail_msg("Accept %s: %d %s, want %d %s", cases[i].accept ? cases[i].accept : "(none)", resp.status,
                     resp.content_type, cases[i].status, cases[i].content_type);
        const char *vary = header(&resp, "vary");
        assert_non_null(vary);
        assert_string_equal(vary, "Accept");
        if (resp.status == 200 && strcmp(resp.content_type, OPENAPIPROTO_MEDIA_TYPE) == 0) {
            assert_int_equal(resp.body_len, proto_resp.body_len);
            assert_memory_equal(resp.body, proto_resp.body, resp.body_len);
        }
        api_response_free(&resp);
    }
}

static void test_etags(void **state)
{
    (void)state;
    const char *proto_etag = header(&proto_resp, "etag");
    assert_non_null(proto_etag);
    api_response_t json;
    get_v2("application/json", NULL, &json);
    const char *json_etag = header(&json, "etag");
    assert_non_null(json_etag);
    assert_string_not_equal(proto_etag, json_etag);   /* two representations, two tags */

    api_response_t resp;
    get_v2(ACCEPT_PROTO_AT, proto_etag, &resp);
    assert_int_equal(resp.status, 304);
    assert_null(resp.body);
    assert_string_equal(header(&resp, "etag"), proto_etag);
    api_response_free(&resp);

    get_v2(ACCEPT_PROTO_AT, json_etag, &resp);   /* the JSON's tag does not validate the protobuf */
    assert_int_equal(resp.status, 200);
    api_response_free(&resp);

    get_v2("application/json", proto_etag, &resp);
    assert_int_equal(resp.status, 200);
    api_response_free(&resp);
    api_response_free(&json);

    /* Stable: a second build of the documents gives the same bytes and tag. */
    openapi_t *again = openapi_new();
    openapi_t *first = oa;
    oa = again;
    get_v2(ACCEPT_PROTO, NULL, &resp);
    oa = first;
    assert_string_equal(header(&resp, "etag"), proto_etag);
    assert_int_equal(resp.body_len, proto_resp.body_len);
    assert_memory_equal(resp.body, proto_resp.body, resp.body_len);
    api_response_free(&resp);
    openapi_free(again);
}

int main(void)
{
    const struct CMUnitTest wire[] = {
        cmocka_unit_test(test_varints),
        cmocka_unit_test(test_scalar_fields),
        cmocka_unit_test(test_nested_messages),
        cmocka_unit_test(test_small_documents),
        cmocka_unit_test(test_reader_follows_the_nesting),
        cmocka_unit_test(test_errors_name_the_path),
    };
    const struct CMUnitTest document[] = {
        cmocka_unit_test(test_document_header),
        cmocka_unit_test(test_definitions_come_back_equal),
        cmocka_unit_test(test_operations_keep_what_kubectl_reads),
        cmocka_unit_test(test_security),
        cmocka_unit_test(test_negotiation),
        cmocka_unit_test(test_etags),
    };
    int failed = cmocka_run_group_tests_name("protowire and the gnostic mapping", wire, NULL, NULL);
    failed += cmocka_run_group_tests_name("/openapi/v2 as protobuf", document, setup, teardown);
    return failed;
}
