/*
 * requestheader.c - the front-proxy's identity headers (see
 * langop/request/requestheader.h).
 */
#include "langop/request/requestheader.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* NULL-terminated lists of lower-cased names (allowed_names keep their case: CNs are exact). */
struct requestheader_config {
    char **username;
    char **group;
    char **extra_prefix;
    char **uid;
    char **allowed_names; /* empty: any */
};

/* "a, b,c" -> {"a","b","c",NULL}; fallback when text is NULL or holds no name. */
static char **list_parse(const char *text, const char *fallback, int lower)
{
    if (text == NULL || strspn(text, " ,") == strlen(text))
        text = fallback;
    size_t cap = 1;
    for (const char *p = text ? text : ""; *p; p++)
        cap += *p == ',';
    char **list = lo_calloc(cap + 1, sizeof(char *));
    size_t n = 0;
    const char *p = text ? text : "";
    while (*p) {
        size_t len = strcspn(p, ",");
        const char *s = p;
        size_t l = len;
        while (l && *s == ' ')
            s++, l--;
        while (l && s[l - 1] == ' ')
            l--;
        if (l) {
            list[n] = lo_strndup(s, l);
            for (char *c = list[n]; lower && *c; c++)
                *c = (char)tolower((unsigned char)*c);
            n++;
        }
        p += len + (p[len] == ',');
    }
    return list;
}

static void list_free(char **list)
{
    for (size_t i = 0; list && list[i]; i++)
        free(list[i]);
    free(list);
}

requestheader_config_t *requestheader_config_new(const char *username_headers, const char *group_headers,
                                                 const char *extra_prefixes, const char *uid_headers,
                                                 const char *allowed_names)
{
    requestheader_config_t *cfg = lo_calloc(1, sizeof(*cfg));
    cfg->username = list_parse(username_headers, REQUESTHEADER_USERNAME_DEFAULT, 1);
    cfg->group = list_parse(group_headers, REQUESTHEADER_GROUP_DEFAULT, 1);
    cfg->extra_prefix = list_parse(extra_prefixes, REQUESTHEADER_EXTRA_PREFIX_DEFAULT, 1);
    cfg->uid = list_parse(uid_headers, REQUESTHEADER_UID_DEFAULT, 1);
    cfg->allowed_names = list_parse(allowed_names, NULL, 0);
    return cfg;
}

void requestheader_config_free(requestheader_config_t *cfg)
{
    if (cfg == NULL)
        return;
    list_free(cfg->username);
    list_free(cfg->group);
    list_free(cfg->extra_prefix);
    list_free(cfg->uid);
    list_free(cfg->allowed_names);
    free(cfg);
}

int requestheader_name_allowed(const requestheader_config_t *cfg, const char *cn)
{
    if (cfg->allowed_names[0] == NULL)
        return 1;
    for (size_t i = 0; cn && cfg->allowed_names[i]; i++)
        if (strcmp(cfg->allowed_names[i], cn) == 0)
            return 1;
    return 0;
}

static int hex_value(int c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

char *requestheader_extra_key(const char *s, size_t n)
{
    char *lower = lo_strndup(s, n);
    for (char *c = lower; *c; c++)
        *c = (char)tolower((unsigned char)*c);
    char *out = lo_malloc(n + 1);
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        if (lower[i] != '%') {
            out[o++] = lower[i];
            continue;
        }
        if (i + 2 >= n) {
            free(out);
            return lower; /* cut short: kube keeps the key as sent */
        }
        int h = hex_value(lower[i + 1]), l = hex_value(lower[i + 2]);
        if (h < 0 || l < 0) {
            free(out);
            return lower;
        }
        out[o++] = (char)(h * 16 + l);
        i += 2;
    }
    out[o] = '\0';
    free(lower);
    return out;
}

/* 1 if name is in list (both lower case). */
static int list_has(char *const *list, const char *name)
{
    for (size_t i = 0; list[i]; i++)
        if (strcmp(list[i], name) == 0)
            return 1;
    return 0;
}

/* The length of the extra prefix name starts with, or 0. */
static size_t extra_prefix_len(const requestheader_config_t *cfg, const char *name)
{
    for (size_t i = 0; cfg->extra_prefix[i]; i++) {
        size_t n = strlen(cfg->extra_prefix[i]);
        if (strncmp(name, cfg->extra_prefix[i], n) == 0 && name[n] != '\0')
            return n;
    }
    return 0;
}

/* The first non-empty value among the headers named in list (in list order), or NULL. */
static const char *first_value(const api_request_t *req, char *const *list)
{
    for (size_t i = 0; list[i]; i++)
        for (size_t h = 0; h < req->header_count; h++)
            if (strcmp(req->headers[h].name, list[i]) == 0 && req->headers[h].value[0] != '\0')
                return req->headers[h].value;
    return NULL;
}

static void add_extra(json_t *extra, const char *key, const char *value)
{
    json_t *values = json_object_get(extra, key);
    if (values == NULL) {
        values = json_array();
        json_object_set_new(extra, key, values);
    }
    json_array_append_new(values, json_string(value));
}

int requestheader_user(const requestheader_config_t *cfg, const api_request_t *req, api_user_t *user)
{
    const char *name = first_value(req, cfg->username);
    if (name == NULL)
        return -1;
    memset(user, 0, sizeof(*user));
    user->name = lo_strdup(name);
    const char *uid = first_value(req, cfg->uid);
    user->uid = uid ? lo_strdup(uid) : NULL;
    size_t g = 0;
    json_t *extra = json_object();
    for (size_t h = 0; h < req->header_count; h++) {
        const api_header_t *hd = &req->headers[h];
        size_t plen;
        if (list_has(cfg->group, hd->name) && hd->value[0] != '\0' && g < API_MAX_GROUPS - 2) {
            user->groups[g++] = lo_strdup(hd->value);
        } else if ((plen = extra_prefix_len(cfg, hd->name)) != 0) {
            char *key = requestheader_extra_key(hd->name + plen, strlen(hd->name + plen));
            add_extra(extra, key, hd->value);
            free(key);
        }
    }
    if (json_object_size(extra) != 0)
        user->extra = extra;
    else
        json_decref(extra);
    return 0;
}

static int claims_identity(const requestheader_config_t *cfg, const char *name)
{
    return list_has(cfg->username, name) || list_has(cfg->group, name) || list_has(cfg->uid, name) ||
           extra_prefix_len(cfg, name) != 0;
}

void requestheader_strip(const requestheader_config_t *cfg, api_request_t *req)
{
    size_t kept = 0;
    for (size_t h = 0; h < req->header_count; h++) {
        if (claims_identity(cfg, req->headers[h].name)) {
            free(req->headers[h].name);
            free(req->headers[h].value);
        } else {
            req->headers[kept++] = req->headers[h];
        }
    }
    req->header_count = kept;
}
