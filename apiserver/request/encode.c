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
