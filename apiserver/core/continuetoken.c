/*
 * continuetoken.c - the opaque `continue` token of paginated lists (see
 * langop/continuetoken.h).
 *
 * Tokens are written in URL-safe base64 without padding, as kube-apiserver
 * does, so that they survive a query string even when a client forgets to
 * escape them; decoding accepts the standard alphabet and padding too.
 */
#include "langop/core/continuetoken.h"

#include <stdlib.h>
#include <string.h>

#define TOKEN_VERSION "meta.k8s.io/v1"
#define BAD_TOKEN "continue key is not valid: "

char *continue_token_encode(int64_t rv, const char *ns, const char *name)
{
    char *start = lo_sprintf("%s/%s", ns ? ns : "", name);
    json_t *doc = json_pack("{s:s,s:I,s:s}", "v", TOKEN_VERSION, "rv", (json_int_t)rv, "start", start);
    char *text = json_dumps(doc, JSON_COMPACT);
    if (doc == NULL || text == NULL)
        lo_fatal("continue_token_encode: cannot encode token");
    char *token = lo_base64_encode(text, strlen(text));
    /* standard -> URL-safe alphabet, padding dropped */
    size_t n = 0;
    for (size_t i = 0; token[i]; i++) {
        char c = token[i];
        if (c == '=')
            continue;
        token[n++] = c == '+' ? '-' : c == '/' ? '_' : c;
    }
    token[n] = '\0';
    free(text);
    free(start);
    json_decref(doc);
    return token;
}

int continue_token_decode(const char *token, int64_t *rv, char **ns, char **name, lo_err_t *err)
{
    int ret = -1;
    size_t raw_len = 0;
    unsigned char *raw = NULL;
    json_t *doc = NULL;

    if (token == NULL || *token == '\0') {
        lo_err_set(err, 400, "BadRequest", BAD_TOKEN "empty token");
        goto out;
    }
    raw = lo_base64_decode(token, &raw_len);
    if (raw == NULL) {
        lo_err_set(err, 400, "BadRequest", BAD_TOKEN "illegal base64 data");
        goto out;
    }
    doc = json_loadb((const char *)raw, raw_len, 0, NULL);
    if (!json_is_object(doc)) {
        lo_err_set(err, 400, "BadRequest", BAD_TOKEN "not a JSON object");
        goto out;
    }
    const char *version = json_string_value(json_object_get(doc, "v"));
    json_t *jrv = json_object_get(doc, "rv");
    const char *start = json_string_value(json_object_get(doc, "start"));
    if (version == NULL || strcmp(version, TOKEN_VERSION) != 0 || !json_is_integer(jrv) ||
        json_integer_value(jrv) <= 0) {
        lo_err_set(err, 400, "BadRequest", BAD_TOKEN "incorrect encoded start resourceVersion (version " TOKEN_VERSION ")");
        goto out;
    }
    if (start == NULL || *start == '\0') {
        lo_err_set(err, 400, "BadRequest", BAD_TOKEN "encoded start key must not be empty");
        goto out;
    }
    /* "<namespace>/<name>": exactly one '/', and a name after it */
    const char *slash = strchr(start, '/');
    if (slash == NULL || slash[1] == '\0' || strchr(slash + 1, '/') != NULL ||
        strlen(start) != json_string_length(json_object_get(doc, "start"))) {
        lo_err_set(err, 400, "BadRequest", BAD_TOKEN "malformed start key");
        goto out;
    }
    *rv = json_integer_value(jrv);
    *ns = lo_strndup(start, (size_t)(slash - start));
    *name = lo_strdup(slash + 1);
    ret = 0;
out:
    json_decref(doc);
    free(raw);
    return ret;
}
