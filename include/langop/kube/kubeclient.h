/*
 * kubeclient.h - JSON requests to kube-apiserver over HTTPS (libcurl), and
 * watch streams.
 *
 * TLS: the server certificate is always verified (CA from the config, or
 * the system CAs), host name included; there is no switch to turn it off.
 *
 * Time: every call has a connect timeout and a total timeout per attempt
 * (kube_client_options_t); no call waits without bound.
 *
 * Retries, with exponential backoff and jitter (a delay drawn from
 * [d/2, d], d = base * 2^attempt, at most backoff_max_ms), only where a
 * second try cannot do a thing twice:
 *   - any method, when the connection failed before the request was sent
 *     (connect refused, DNS, the server closed before answering with no
 *     bytes of the request written);
 *   - GET (and opening a watch): also on a timeout, a broken connection,
 *     429 and 5xx;
 *   - PUT, PATCH, DELETE: also on 429 (kube-apiserver answers 429 before it
 *     acts on the request);
 *   - POST: never once the request was sent, whatever the answer.
 * A 429 with Retry-After: N waits N seconds (at most retry_after_max_ms)
 * instead of the backoff. A TLS verification failure is never retried.
 *
 * Errors: a non-2xx answer fills err from the answer's Status (code, reason,
 * message; details kept), or from the HTTP status when the body is no
 * Status. A failure with no answer leaves err->code 0, reason "Timeout"
 * for a timeout and "ServiceUnavailable" otherwise, and the curl error in
 * the message.
 *
 * Threads: a kube_client_t may be used from any number of threads at once.
 * Each call uses its own curl easy handle; the client itself is read-only
 * after kube_client_new() except for the token cache (its own lock,
 * kubeconfig.h) and a curl share of kept-alive connections, TLS sessions
 * and DNS answers (one mutex per kind of data), so that calls reuse
 * connections instead of paying a handshake each. Only GETs reuse one:
 * libcurl sends a request again, unasked, when the kept-alive connection
 * it was written on turns out dead, and the retry rule above lets no
 * other method go twice; they open a new connection (with a resumed TLS
 * session from the share). kube_client_new()
 * initialises libcurl once per process (curl_global_init under
 * pthread_once). kube_client_free() only when no call is running.
 */
#ifndef LANGOP_KUBE_KUBECLIENT_H
#define LANGOP_KUBE_KUBECLIENT_H

#include <stdatomic.h>
#include <jansson.h>
#include "langop/core/common.h"
#include "langop/kube/kubeconfig.h"

/* Return codes. */
#define KUBE_OK 0
#define KUBE_EHTTP (-1)      /* an answer that is not 2xx (err from its Status) */
#define KUBE_ETRANSPORT (-2) /* no answer: connection, TLS, protocol */
#define KUBE_ETIMEDOUT (-3)  /* no (complete) answer in time */
#define KUBE_EGONE (-4)      /* watch: resourceVersion too old (410), relist */
#define KUBE_EINVAL (-5)     /* bad arguments, a watch line that is not JSON */

typedef struct kube_client_options {
    long connect_timeout_ms; /* 0: 5000 */
    long timeout_ms;         /* total per attempt (not watches); 0: 30000 */
    int max_retries;         /* retries after the first attempt; 0: 4; <0: none */
    long backoff_base_ms;    /* 0: 200 */
    long backoff_max_ms;     /* 0: 5000 */
    long retry_after_max_ms; /* cap on a Retry-After; 0: 30000 */
    const char *user_agent;  /* NULL: "langop-apiserver/<version>" */
} kube_client_options_t;

typedef struct kube_client kube_client_t;

/**
 * A client for cfg, which it takes (freed by kube_client_free, also on
 * failure). opts may be NULL. NULL and err on failure.
 */
kube_client_t *kube_client_new(kube_config_t *cfg, const kube_client_options_t *opts,
                               lo_err_t *err);
void kube_client_free(kube_client_t *c);

/**
 * Ends every call of c at once, those in flight (within about a second:
 * libcurl looks at it while it waits) and those to come, which fail with
 * KUBE_ETRANSPORT; for shutting down, when a call may wait for a server
 * that does not answer. It cannot be undone. Any thread.
 */
void kube_client_abort(kube_client_t *c);

/** The configuration the client uses (owned by the client). */
kube_config_t *kube_client_config(kube_client_t *c);

typedef struct kube_response {
    long status;  /* HTTP status of the last attempt; 0 when none came */
    json_t *body; /* the decoded answer (new reference, caller decrefs), or NULL */
    int attempts; /* how many times the request was sent or tried */
} kube_response_t;

/**
 * One request. method is "GET", "POST", "PUT", "PATCH" or "DELETE"; path
 * starts with '/' (query included, already escaped) and is appended to the
 * server URL. body (borrowed; may be NULL) is sent as JSON with
 * content_type (NULL: "application/json"; a PATCH passes e.g.
 * "application/merge-patch+json"). resp (may be NULL) receives the status
 * and the body; resp->body is set for error answers too and must be
 * json_decref'd by the caller whatever the return code.
 * Returns KUBE_OK on 2xx, else a negative KUBE_E* code and err.
 */
int kube_request(kube_client_t *c, const char *method, const char *path,
                 const char *content_type, const json_t *body, kube_response_t *resp,
                 lo_err_t *err);

/** kube_request(c, "GET", path, NULL, NULL, ...): *out (new reference) on KUBE_OK. */
int kube_get(kube_client_t *c, const char *path, json_t **out, lo_err_t *err);

/**
 * Called once per watch event: type is "ADDED", "MODIFIED", "DELETED" or
 * "BOOKMARK"; object is borrowed (valid during the call; json_incref to keep
 * it). Return 0 to go on, anything else to end the watch (KUBE_OK).
 * ERROR events are not passed: they end the watch (410 -> KUBE_EGONE).
 */
typedef int (*kube_watch_fn)(void *arg, const char *type, json_t *object);

typedef struct kube_watch_options {
    const char *resource_version; /* start after this; NULL or "": as kube, ADDED for every object first */
    long timeout_ms;              /* end the stream (cleanly) after this; 0: 300000 */
    const atomic_int *stop;       /* when it becomes non-zero, end within ~1 s; may be NULL */
} kube_watch_options_t;

/**
 * Watches path (a collection, query allowed): opens
 * path?watch=1&resourceVersion=RV&allowWatchBookmarks=true&timeoutSeconds=T
 * and calls fn per event, in order, as lines arrive (lines may be split
 * anywhere across reads). Opening is retried as a GET is; once events have
 * come, a broken stream ends the call. *last_rv (may be NULL) receives a
 * new string the caller frees: the resourceVersion of the last event
 * (bookmarks included), or the starting one when none came, so a caller
 * resumes from it. A stream that breaks after events gives
 * KUBE_ETRANSPORT (or KUBE_ETIMEDOUT) with *last_rv to resume from.
 * Returns KUBE_OK when the stream ended (server closed it, timeout_ms, stop,
 * or fn asked); KUBE_EGONE when the resourceVersion is too old (410 answer
 * or ERROR event with code 410); another KUBE_E* code and err otherwise.
 */
int kube_watch(kube_client_t *c, const char *path, const kube_watch_options_t *opts,
               kube_watch_fn fn, void *arg, char **last_rv, lo_err_t *err);

#endif
