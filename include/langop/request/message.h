/*
 * message.h - the request and the response of one API call, as the
 * transport hands them over and gets them back: plain data, no behaviour
 * beyond building and freeing them. (The api_ prefix: these are what the
 * API, api.h, takes and gives.)
 *
 * The response knows nothing of what it may carry: a watch stream, a List
 * sent in pages or a pending call come with the function that frees them, set by whoever
 * attached them, so this module depends on no layer above it.
 */
#ifndef LANGOP_MESSAGE_H
#define LANGOP_MESSAGE_H

#include <stddef.h>
#include <stdint.h>
#include <jansson.h>
#include "langop/core/common.h"
#include "langop/storage/store.h"

#define API_MAX_BODY (3u * 1024u * 1024u)   /* kube-apiserver's limit for a write body */
#define API_MAX_GROUPS 32

/** Who is asking: the result of authentication. */
typedef struct api_user {
    char *name;                       /* e.g. "admin", "system:anonymous" */
    char *uid;                        /* may be NULL */
    char *groups[API_MAX_GROUPS];     /* NULL-terminated, owned */
    json_t *extra;                    /* owned: {key: [values]} (kube's user.Info extra), or NULL */
} api_user_t;

/** One request header as sent (name lower-cased). */
typedef struct api_header {
    char *name;
    char *value;
} api_header_t;

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
    api_header_t *headers; /* every header, in order (owned): what authentication and impersonation read */
    size_t header_count;
    char *peer_chain_pem;  /* the TLS client's certificate chain, leaf first, PEM (owned), unverified; NULL: none */
    api_user_t user;       /* set by authentication (auth.h) */
} api_request_t;

/** The value of the first header named name (lower case), or NULL. Borrowed. */
const char *api_request_header(const api_request_t *req, const char *name);

void api_request_free(api_request_t *req);

struct watch_spec;
struct list_stream;
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
    int (*light)(void *ctx);           /* optional, asked after the ops are answered: api_resume_light() */
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
    char *impersonated_user;           /* owned; for the request log: who the request ran as, when impersonating */
    struct watch_spec *watch;          /* owned; set: answer with a watch stream of this spec (status 200) */
    void (*watch_free)(struct watch_spec *spec);  /* set with watch: how api_response_free frees it */
    struct list_stream *list;          /* owned; set: the body is this List, sent page by page as it is read */
    void (*list_free)(struct list_stream *list);  /* set with list */
    api_deferred_t deferred;           /* set by a handler: queue these, then resume */
    api_call_t *call;                  /* owned by the api while the answer is pending */
    void (*call_free)(api_call_t *call);          /* set with call */
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

#endif
