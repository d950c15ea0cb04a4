/*
 * api.h - the API itself, independent of the HTTP transport: a request as
 * the server read it goes in, a complete response comes out.
 *
 * server.c (h2o) builds an api_request_t, authenticates it (auth.h) and
 * calls api_handle() on a worker thread, then sends the api_response_t back
 * on the event loop. Nothing here knows h2o; nothing in server.c knows
 * Kubernetes semantics. api_handle() reads the store, so it never runs on
 * the event loop.
 *
 * A write does not hold its worker while the store's writer commits it: the
 * handler hands its store ops over (api_response_t.deferred) and
 * api_handle() answers "pending"; when the writer is done it calls the
 * transport's wake function, and the transport calls api_resume() on a
 * worker, which goes on with the handler (answer, or retry after a
 * conflict). A request is pending for as long as its ops are queued: the
 * transport must keep req and resp alive and unchanged until the answer.
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

struct watch_spec;
typedef struct api_response api_response_t;
typedef struct api_call api_call_t;

/** How a handler goes on once its deferred ops are answered (on a worker). */
typedef void (*api_resume_fn)(void *ctx, api_response_t *resp);

/* Store ops a handler waits on before it can answer; ops == NULL: none. */
typedef struct api_deferred {
    store_op_t *ops;
    size_t n;
    api_resume_fn resume;
    void *ctx;
} api_deferred_t;

struct api_response {
    int status;                        /* HTTP status */
    char *content_type;                /* owned; NULL for no body */
    char *body;                        /* owned; may be NULL */
    size_t body_len;
    size_t header_count, header_cap;   /* extra headers (ETag, Warning, Cache-Control ...) */
    char **header_names;               /* owned, lower-case */
    char **header_values;              /* owned, safe to send (langop/text.h) */
    char verb[20];                     /* for the request log */
    struct watch_spec *watch;          /* owned; set: answer with a watch stream of this spec (status 200) */
    api_deferred_t deferred;           /* set by a handler: queue these, then resume */
    api_call_t *call;                  /* owned by the api while the answer is pending */
};

void api_response_free(api_response_t *resp);
/** Adds an extra header (copied; the value made safe by text_header_value). */
void api_response_add_header(api_response_t *resp, const char *name, const char *value);
/** Sets body to the JSON encoding of value (borrowed) with content_type. */
void api_response_set_json(api_response_t *resp, int status, const char *content_type, const json_t *value);
/** Sets body to JSON text already encoded (stolen, malloc'd, len bytes) with content_type. */
void api_response_set_json_text(api_response_t *resp, int status, const char *content_type, char *text, size_t len);
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
 * Gives every stored object its derived status as this build and these
 * options compute it (derive.h), writing only those that differ: run once
 * at start-up, before serving. Returns 0 or -1 with err.
 */
int api_refresh_derived(api_t *api, lo_err_t *err);

/** Marks the server ready (readyz) or not. Thread-safe. */
void api_set_ready(api_t *api, int ready);

/** Called, from the store's writer thread, when a pending answer can go on. Must not block. */
typedef void (*api_wake_fn)(void *ctx);

/**
 * Answers one request. resp must be zeroed; the caller frees it with
 * api_response_free() once it is complete. Returns 0 when resp is complete,
 * 1 when it is pending: wake(wake_ctx) will be called, and the caller then
 * calls api_resume() on a worker thread.
 */
int api_handle(api_t *api, const api_request_t *req, api_response_t *resp, api_wake_fn wake, void *wake_ctx);
/** Goes on with a pending answer after its wake; returns 0 (complete) or 1 (pending again). */
int api_resume(api_t *api, api_response_t *resp);

#endif
