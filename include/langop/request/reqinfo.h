/*
 * reqinfo.h - what a request asks for, from its method, path and query,
 * before anything else looks at it (apiserver's RequestInfo).
 *
 * Path shapes (group langop.io; the core /api/v1 is only discovery here):
 *   /apis/<g>/<v>/<resource>[/<name>[/<subresource>]]
 *   /apis/<g>/<v>/namespaces/<ns>/<resource>[/<name>[/<subresource>]]
 *   /apis/<g>/<v>/namespaces/<name>   (the namespace object itself: resource "namespaces")
 * Anything else (/apis, /version, /healthz, /openapi/v2 ...) is a
 * non-resource request. Verbs follow kube's mapping: GET item -> get, GET
 * collection -> list, GET with watch=true/1 -> watch, POST -> create, PUT ->
 * update, PATCH -> patch, DELETE item -> delete, DELETE collection ->
 * deletecollection. Path segments are percent-decoded.
 */
#ifndef LANGOP_REQINFO_H
#define LANGOP_REQINFO_H

#include <stddef.h>
#include "langop/core/common.h"

#define REQINFO_MAX_QUERY 32

typedef struct reqinfo_query {
    size_t count;
    char *keys[REQINFO_MAX_QUERY];     /* percent-decoded, owned */
    char *values[REQINFO_MAX_QUERY];   /* percent-decoded ('+' -> ' '), owned; "" when no '=' */
} reqinfo_query_t;

typedef struct reqinfo {
    int is_resource;           /* 1 for /apis/<g>/<v>/... resource paths */
    char verb[20];             /* get list watch create update patch delete deletecollection; else lower-case method */
    char *path;                /* decoded path without the query (owned) */
    char *group;               /* owned strings, NULL when absent */
    char *version;
    char *ns;                  /* namespace from the URL */
    char *resource;
    char *name;
    char *subresource;
    reqinfo_query_t query;
} reqinfo_t;

/**
 * Parses method and raw target (path plus optional "?query").
 * Returns 0, or -1 with err 400 for an undecodable path/query (bad
 * percent-escape, NUL byte, too many query parameters).
 * Call reqinfo_free() after either outcome.
 */
int reqinfo_parse(const char *method, const char *target, size_t target_len, reqinfo_t *out, lo_err_t *err);
void reqinfo_free(reqinfo_t *info);

/** The first value of a query parameter (borrowed), or NULL. */
const char *reqinfo_query_get(const reqinfo_t *info, const char *key);

/** Percent-decodes src[0..len) into a new string; plus_is_space for query parts. NULL on bad escape or NUL. */
char *reqinfo_percent_decode(const char *src, size_t len, int plus_is_space);

#endif
