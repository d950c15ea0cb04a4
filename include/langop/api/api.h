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
 * Every request but the health endpoints is authorized (authz.h) before it
 * is routed, impersonation included; a refusal is a 403 Status.
 *
 * Every failure becomes a Kubernetes Status body (status.h) with its HTTP
 * code; api_handle() itself cannot fail.
 */
#ifndef LANGOP_API_H
#define LANGOP_API_H

#include <stddef.h>
#include <stdint.h>
#include "langop/core/common.h"
#include "langop/request/authz.h"
#include "langop/request/message.h"
#include "langop/storage/store.h"

typedef struct api_options {
    const char *server_address;   /* host:port advertised in /api serverAddressByClientCIDRs */
    const char *cluster_domain;   /* the cluster's DNS domain, for derived endpoints (cluster.local) */
    authz_t *authz;               /* borrowed, must outlive the api; NULL: no authorization (unit tests) */
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
/**
 * 1 when what is left of a pending answer, once woken, is only to encode
 * it (no retry, no store access, nothing that waits): api_resume() may then
 * run in the wake itself, on the writer's thread, and spare the hand-off to
 * a worker. Call it from the wake only.
 */
int api_resume_light(const api_response_t *resp);

/**
 * One request from inside the process (the reconcile thread's reads and
 * status writes), answered completely before it returns: the same path as
 * a client's request, authorization included, waiting on the writer where
 * a client's request would be pending. resp must be zeroed; the caller
 * frees it. Never call it on the store's writer thread.
 */
void api_call(api_t *api, const api_request_t *req, api_response_t *resp);

#endif
