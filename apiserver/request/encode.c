/*
 * encode.c - response encodings (see langop/encode.h).
 */
#include "langop/request/encode.h"

#include <stdlib.h>
#include <string.h>

#include "langop/core/codec.h"
#include "langop/request/negotiate.h"

static int is_table(const media_type_t *mt)
{
    return strcmp(mt->type, "application") == 0 && strcmp(mt->subtype, "json") == 0 &&
           strcmp(mt->as, "Table") == 0 && strcmp(mt->g, "meta.k8s.io") == 0 && strcmp(mt->v, "v1") == 0;
}

int encode_choose(const char *accept, int table_ok, encode_format_t *out, lo_err_t *err)
{
    media_type_t types[NEGOTIATE_MAX_TYPES];
    size_t n = negotiate_parse_accept(accept, types, NEGOTIATE_MAX_TYPES);
    for (size_t i = 0; i < n; i++) {
        if (table_ok && is_table(&types[i])) {
            *out = ENCODE_TABLE;
            return 0;
        }
        if (negotiate_plain(&types[i], "json")) {
            *out = ENCODE_JSON;
            return 0;
        }
        if (negotiate_plain(&types[i], "yaml")) {
            *out = ENCODE_YAML;
            return 0;
        }
    }
    lo_err_set(err, 406, "NotAcceptable",
               "only the following media types are accepted: application/json, application/yaml%s",
               table_ok ? ", application/json;as=Table;v=v1;g=meta.k8s.io" : "");
    return -1;
}

const char *encode_content_type(encode_format_t format)
{
    switch (format) {
    case ENCODE_YAML: return "application/yaml";
    case ENCODE_TABLE: return ENCODE_TABLE_CONTENT_TYPE;
    case ENCODE_JSON: break;
    }
    return "application/json";
}

void encode_object(api_response_t *resp, int status, encode_format_t format, const json_t *obj)
{
    if (format == ENCODE_YAML) {
        free(resp->content_type);
        free(resp->body);
        resp->status = status;
        resp->content_type = lo_strdup("application/yaml");
        resp->body = codec_encode_yaml(obj);
        resp->body_len = strlen(resp->body);
        return;
    }
    api_response_set_json(resp, status, format == ENCODE_TABLE ? ENCODE_TABLE_CONTENT_TYPE : "application/json", obj);
}

/* ---- a List in pieces ---- */

struct encode_list {
    const schema_kind_t *kind;
    encode_format_t format;
    table_include_t include;
    int64_t now;
    size_t items;              /* written so far (JSON and Table: a comma before each but the first) */
    codec_yaml_seq_t *yaml;    /* ENCODE_YAML */
    int failed;
};

/*
 * The head of a JSON document whose last member is an empty array: its
 * encoding without the closing "]}". The items follow, then "]}".
 */
static void put_json_head(lo_buf_t *out, const json_t *doc)
{
    size_t at = out->len;
    codec_encode_json_to(out, doc);
    if (out->len - at < 3 || memcmp(out->data + out->len - 3, "[]}", 3) != 0)
        lo_fatal("encode_list: the last member of a List head must be an empty array");
    lo_buf_truncate(out, out->len - 2);
}

/* The List of kind k with list_meta and no items (new reference): what encode_object would get. */
static json_t *list_doc(const schema_kind_t *k, const json_t *list_meta, const char *seq_key)
{
    json_t *doc = json_pack("{s:s, s:s, s:O}", "apiVersion", SCHEMA_GROUP_VERSION, "kind", k->list_kind, "metadata",
                            list_meta);
    if (seq_key)
        json_object_set_new(doc, seq_key, json_array());
    return doc;
}

encode_list_t *encode_list_begin(const schema_kind_t *k, encode_format_t format, table_include_t include,
                                 const json_t *list_meta, int64_t now, lo_buf_t *out)
{
    encode_list_t *e = lo_calloc(1, sizeof(*e));
    *e = (encode_list_t){.kind = k, .format = format, .include = include, .now = now};
    json_t *doc;
    switch (format) {
    case ENCODE_TABLE: {
        json_t *none = json_array();
        doc = table_render(k, none, list_meta, include, 1, now);
        json_decref(none);
        put_json_head(out, doc);
        break;
    }
    case ENCODE_YAML:
        doc = list_doc(k, list_meta, NULL);
        e->yaml = codec_yaml_seq_open(doc, "items");
        break;
    case ENCODE_JSON:
    default:
        doc = list_doc(k, list_meta, "items");
        put_json_head(out, doc);
        break;
    }
    json_decref(doc);
    return e;
}

/* What the YAML emitter wrote so far, onto out. */
static void take_yaml(encode_list_t *e, lo_buf_t *out)
{
    size_t len;
    char *text = codec_yaml_seq_take(e->yaml, &len);
    if (text == NULL) {
        e->failed = 1;
        return;
    }
    lo_buf_put(out, text, len);
    free(text);
}

void encode_list_item(encode_list_t *e, const json_t *obj, lo_buf_t *out)
{
    if (e->format == ENCODE_YAML) {
        codec_yaml_seq_add(e->yaml, obj);
        take_yaml(e, out);
    } else {
        if (e->items > 0)
            lo_buf_char(out, ',');
        if (e->format == ENCODE_TABLE) {
            json_t *row = table_render_row(e->kind, obj, e->include, e->now);
            codec_encode_json_to(out, row);
            json_decref(row);
        } else {
            codec_encode_json_to(out, obj);
        }
    }
    e->items++;
}

void encode_list_end(encode_list_t *e, lo_buf_t *out)
{
    if (e->format == ENCODE_YAML) {
        codec_yaml_seq_close(e->yaml);
        take_yaml(e, out);
    } else {
        lo_buf_put(out, "]}", 2);
    }
}

int encode_list_failed(const encode_list_t *e)
{
    return e->failed;
}

void encode_list_free(encode_list_t *e)
{
    if (e == NULL)
        return;
    codec_yaml_seq_free(e->yaml);
    free(e);
}
