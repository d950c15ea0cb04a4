/*
 * reqinfo.c - method, path and query -> what the request asks for (see
 * langop/reqinfo.h). Follows apiserver's RequestInfoFactory: the path is
 * percent-decoded as a whole and then split on '/', so that an escaped
 * slash cannot smuggle a segment past the checks below.
 */
#include "langop/request/reqinfo.h"

#include <errno.h>

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define MAX_SEGMENTS 16

static int hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

char *reqinfo_percent_decode(const char *src, size_t len, int plus_is_space)
{
    char *out = lo_malloc(len + 1);
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        char c = src[i];
        if (c == '%') {
            int hi = i + 2 < len ? hex_value(src[i + 1]) : -1;
            int lo = i + 2 < len ? hex_value(src[i + 2]) : -1;
            if (hi < 0 || lo < 0)
                goto bad;
            c = (char)(hi * 16 + lo);
            i += 2;
            if (c == '\0')
                goto bad;
        } else if (c == '\0') {
            goto bad;
        } else if (c == '+' && plus_is_space) {
            c = ' ';
        }
        out[n++] = c;
    }
    out[n] = '\0';
    return out;
bad:
    free(out);
    return NULL;
}

/* Splits "a=1&b&c=" into the query table. Returns 0 or -1 with err set. */
static int parse_query(const char *q, size_t len, reqinfo_query_t *query, lo_err_t *err)
{
    size_t start = 0;
    for (size_t i = 0; i <= len; i++) {
        if (i < len && q[i] != '&')
            continue;
        const char *piece = q + start;
        size_t plen = i - start;
        start = i + 1;
        if (plen == 0)
            continue; /* "a=1&&b=2" */
        if (query->count >= REQINFO_MAX_QUERY) {
            lo_err_set(err, 400, "BadRequest", "too many query parameters (at most %d)", REQINFO_MAX_QUERY);
            return -1;
        }
        const char *eq = memchr(piece, '=', plen);
        size_t klen = eq ? (size_t)(eq - piece) : plen;
        char *key = reqinfo_percent_decode(piece, klen, 1);
        char *value = eq ? reqinfo_percent_decode(eq + 1, plen - klen - 1, 1) : lo_strdup("");
        if (key == NULL || value == NULL) {
            lo_err_set(err, 400, "BadRequest", "invalid query: bad percent-encoding in \"%.*s\"", (int)(plen > 200 ? 200 : plen),
                       piece);
            free(key);
            free(value);
            return -1;
        }
        query->keys[query->count] = key;
        query->values[query->count] = value;
        query->count++;
    }
    return 0;
}

/*
 * Splits the decoded path into segments (pointers into path, which is
 * modified). Returns 0, 1 when there are more than MAX_SEGMENTS (no
 * resource path is that long), or -1 with err set for an empty, "." or ".."
 * segment.
 */
static int split_path(char *path, char **seg, size_t *nseg, lo_err_t *err)
{
    size_t len = strlen(path);
    int overflow = 0;
    while (len > 1 && path[len - 1] == '/') /* trailing slashes do not name anything */
        path[--len] = '\0';
    *nseg = 0;
    if (strcmp(path, "/") == 0)
        return 0;
    for (char *p = path + 1; p != NULL;) {
        char *slash = strchr(p, '/');
        if (slash)
            *slash = '\0';
        if (*p == '\0' || strcmp(p, ".") == 0 || strcmp(p, "..") == 0) {
            lo_err_set(err, 400, "BadRequest", "invalid path: empty, '.' or '..' segment");
            return -1;
        }
        if (*nseg < MAX_SEGMENTS)
            seg[(*nseg)++] = p;
        else
            overflow = 1;
        p = slash ? slash + 1 : NULL;
    }
    return overflow;
}

static void set_verb(reqinfo_t *info, const char *method, int watch)
{
    const char *verb = NULL;
    int item = info->name != NULL;
    if (info->is_resource) {
        if (strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0)
            verb = watch ? "watch" : item ? "get" : "list";
        else if (strcmp(method, "POST") == 0)
            verb = "create";
        else if (strcmp(method, "PUT") == 0)
            verb = "update";
        else if (strcmp(method, "PATCH") == 0)
            verb = "patch";
        else if (strcmp(method, "DELETE") == 0)
            verb = item ? "delete" : "deletecollection";
    }
    if (verb != NULL) {
        snprintf(info->verb, sizeof(info->verb), "%s", verb);
        return;
    }
    size_t i;
    for (i = 0; method[i] && i + 1 < sizeof(info->verb); i++)
        info->verb[i] = (char)tolower((unsigned char)method[i]);
    info->verb[i] = '\0';
}

/*
 * Fills group/version/ns/resource/name/subresource from the segments after
 * "apis". Leaves is_resource 0 for shapes that are not resource paths.
 */
static void resolve_resource(reqinfo_t *info, char **seg, size_t nseg, int *legacy_watch)
{
    if (nseg < 4 || strcmp(seg[0], "apis") != 0)
        return;
    char **rest = seg + 3;
    size_t nrest = nseg - 3;
    if (strcmp(rest[0], "watch") == 0) { /* the deprecated /apis/g/v/watch/... form */
        *legacy_watch = 1;
        rest++;
        nrest--;
        if (nrest == 0)
            return;
    }
    const char *ns = NULL;
    if (strcmp(rest[0], "namespaces") == 0 && nrest > 1) {
        ns = rest[1];
        /* /namespaces/<ns>/<resource>...; but /namespaces/<ns>[/status|/finalize] is the namespace itself */
        if (nrest > 2 && strcmp(rest[2], "status") != 0 && strcmp(rest[2], "finalize") != 0) {
            rest += 2;
            nrest -= 2;
        }
    }
    if (nrest > 3)
        return; /* resource/name/subresource/more: no such thing */
    info->is_resource = 1;
    info->group = lo_strdup(seg[1]);
    info->version = lo_strdup(seg[2]);
    info->ns = ns ? lo_strdup(ns) : NULL;
    info->resource = lo_strdup(rest[0]);
    info->name = nrest > 1 ? lo_strdup(rest[1]) : NULL;
    info->subresource = nrest > 2 ? lo_strdup(rest[2]) : NULL;
}

/*
 * A target in absolute form ("https://host/apis/..."), which RFC 9112
 * (3.2.2) has servers accept and Go's server reads as its path: skips the
 * scheme and authority. Other targets are left as they are.
 */
/* Returns 1 when the absolute form has no path: its path is "/" (RFC 9110 4.2.3), and *target is its query. */
static int skip_absolute_form(const char **target, size_t *len)
{
    static const char *const schemes[] = {"http://", "https://"};
    for (size_t i = 0; i < 2; i++) {
        size_t n = strlen(schemes[i]);
        if (*len <= n || strncasecmp(*target, schemes[i], n) != 0)
            continue;
        const char *path = memchr(*target + n, '/', *len - n);
        const char *query = memchr(*target + n, '?', *len - n);
        const char *rest = path == NULL || (query != NULL && query < path) ? query : path;
        if (rest == NULL)
            rest = *target + *len;
        *len -= (size_t)(rest - *target);
        *target = rest;
        return rest != path;
    }
    return 0;
}

int reqinfo_parse(const char *method, const char *target, size_t target_len, reqinfo_t *out, lo_err_t *err)
{
    memset(out, 0, sizeof(*out));
    if (method == NULL)
        method = "";
    int root = skip_absolute_form(&target, &target_len);
    const char *q = memchr(target, '?', target_len);
    size_t path_len = q ? (size_t)(q - target) : target_len;

    out->path = root ? lo_strdup("/") : reqinfo_percent_decode(target, path_len, 0);
    if (out->path == NULL) {
        lo_err_set(err, 400, "BadRequest", "invalid path: bad percent-encoding or NUL byte");
        set_verb(out, method, 0);
        return -1;
    }
    /* a request-target is an absolute path (RFC 9112's origin-form) or "*", as Go's server insists ("" or
     * "?a" are a 400 there); the non-resource handlers read past the leading '/' */
    if (out->path[0] != '/' && strcmp(out->path, "*") != 0) {
        lo_err_set(err, 400, "BadRequest", "invalid path: it must begin with '/'");
        set_verb(out, method, 0);
        return -1;
    }
    if (q != NULL && parse_query(q + 1, target_len - path_len - 1, &out->query, err) < 0) {
        set_verb(out, method, 0);
        return -1;
    }

    int legacy_watch = 0;
    if (out->path[0] == '/') {
        char *scratch = lo_strdup(out->path);
        char *seg[MAX_SEGMENTS];
        size_t nseg = 0;
        int rc = split_path(scratch, seg, &nseg, err);
        if (rc == 0)
            resolve_resource(out, seg, nseg, &legacy_watch);
        free(scratch);
        if (rc < 0) {
            set_verb(out, method, 0);
            return -1;
        }
    }

    const char *watch = reqinfo_query_get(out, "watch");
    int wants_watch = legacy_watch || (watch && (strcasecmp(watch, "true") == 0 || strcmp(watch, "1") == 0));
    set_verb(out, method, wants_watch);
    return 0;
}

void reqinfo_free(reqinfo_t *info)
{
    if (info == NULL)
        return;
    free(info->path);
    free(info->group);
    free(info->version);
    free(info->ns);
    free(info->resource);
    free(info->name);
    free(info->subresource);
    for (size_t i = 0; i < info->query.count; i++) {
        free(info->query.keys[i]);
        free(info->query.values[i]);
    }
    memset(info, 0, sizeof(*info));
}

const char *reqinfo_query_get(const reqinfo_t *info, const char *key)
{
    for (size_t i = 0; i < info->query.count; i++)
        if (strcmp(info->query.keys[i], key) == 0)
            return info->query.values[i];
    return NULL;
}

