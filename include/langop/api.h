/*
 * api.h - the API itself, independent of the HTTP transport: a request as
 * the server read it goes in, a complete response comes out.
 *
 * server.c (h2o) builds an api_request_t, authenticates it (auth.h) and
 * calls api_handle() on a worker thread, then sends the api_response_t back
 * on the event loop. Nothing here knows h2o; nothing in server.c knows
 * Kubernetes semantics. api_handle() may block on the store, so it never
 * runs on the event loop.
 *
 * Every failure becomes a Kubernetes Status body (status.h) with its HTTP
 * code; api_handle() itself cannot fail.
 */
#ifndef LANGOP_API_H
#define LANGOP_API_H

#include <stddef.h>
#include <stdint.h>
#include "langop/common.h"
#include "langop/store.h"

#define API_MAX_BODY (3u * 1024u * 1024u)   /* kube-apiserver's limit for a write body */
#define API_MAX_GROUPS 32

/** Who is asking: the result of authentication. */
typedef struct api_user {
    char *name;                       /* e.g. "admin", "system:anonymous" */
    char *uid;                        /* may be NULL */
    char *groups[API_MAX_GROUPS];     /* NULL-terminated, owned */
} api_user_t;

void api_user_copy(api_user_t *dst, const api_user_t *src);
void api_user_free(api_user_t *user);

typedef struct api_request {
    char *method;          /* "GET" ... (owned strings throughout) */
    char *target;          /* path with query, as sent */
    char *accept;          /* NULL when absent */
    char *content_type;
    char *if_none_match;
    char *user_agent;      /* the default field manager is its product name */
    char *body;            /* may be NULL */
    size_t body_len;
    api_user_t user;
} api_request_t;

void api_request_free(api_request_t *req);

#define API_MAX_HEADERS 16

struct watch_spec;

typedef struct api_response {
    int status;                        /* HTTP status */
    char *content_type;                /* owned; NULL for no body */
    char *body;                        /* owned; may be NULL */
    size_t body_len;
    size_t header_count;               /* extra headers (ETag, Warning, Cache-Control ...) */
    char *header_names[API_MAX_HEADERS];   /* owned, lower-case */
    char *header_values[API_MAX_HEADERS];  /* owned */
    char verb[20];                     /* for the request log */
    struct watch_spec *watch;          /* owned; set: answer with a watch stream of this spec (status 200) */
} api_response_t;

void api_response_free(api_response_t *resp);
/** Adds an extra header (copied). Silently drops beyond API_MAX_HEADERS. */
void api_response_add_header(api_response_t *resp, const char *name, const char *value);
/** Sets body to the JSON encoding of value (borrowed) with content_type. */
void api_response_set_json(api_response_t *resp, int status, const char *content_type, const json_t *value);
/** Sets a plain-text body. */
void api_response_set_text(api_response_t *resp, int status, const char *text);
/** Sets a Kubernetes Status body built from err. */
void api_response_set_error(api_response_t *resp, const lo_err_t *err);

typedef struct api_options {
    const char *server_address;   /* host:port advertised in /api serverAddressByClientCIDRs */
    const char *cluster_domain;   /* the cluster's DNS domain, for derived endpoints (cluster.local) */
} api_options_t;

typedef struct api api_t;

/** Creates the API over an open store (borrowed; must outlive the api). Builds discovery once. */
api_t *api_new(store_t *store, const api_options_t *opts);
void api_free(api_t *api);

/** The store the api serves (borrowed): the transport follows its changes for watches. */
store_t *api_store(api_t *api);

/**
 * Overlays the computed status (derive.h) on objects of resource (borrowed
 * array, modified in place). Blocks on the store: not for the loop thread.
 */
void api_derive(api_t *api, const char *resource, json_t *objects);

/** Marks the server ready (readyz) or not. Thread-safe. */
void api_set_ready(api_t *api, int ready);

/** Answers one request. resp must be zeroed; the caller frees it with api_response_free(). */
void api_handle(api_t *api, const api_request_t *req, api_response_t *resp);

#endif
