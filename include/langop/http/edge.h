/*
 * edge.h - the HTTP edge: what a connection and a request must pass before
 * a worker runs it, where h2o 2.2.5 does not check it itself.
 *
 * Framing (HTTP/1.x, RFC 9112): a request with both Content-Length and
 * Transfer-Encoding, Content-Lengths that differ, more than one
 * Transfer-Encoding, a folded header line, or (HTTP/1.1) no Host or more
 * than one is refused with 400 and its connection closed after the answer,
 * so the bytes behind it are never read as another request. The answers
 * h2o gives by itself before a request reaches the server (a malformed
 * Content-Length, an unknown Transfer-Encoding, a body over its limit) get
 * a Status body too.
 *
 * Connections: every accepted socket gets an edge_conn_t. Each request of
 * it that goes to the workers holds a ticket. When its client goes away
 * first (an HTTP/2 stream reset, a closed connection) the ticket is
 * cancelled, and a worker that takes it does not run it. At most
 * EDGE_CONN_MAX_JOBS tickets of one connection are with the workers at
 * once (h2o's MAX_CONCURRENT_STREAMS); more wait on their connection, and
 * one cancelled while it waits is dropped there. A request cancelled before
 * its answer was ready costs its connection one of EDGE_RESET_BUDGET resets
 * (an answered request gives one back): an HTTP/2 connection out of budget
 * gets GOAWAY (ENHANCE_YOUR_CALM) and is closed, the "rapid reset" defence.
 * An HTTP/2 connection that has had no request in the server for
 * request_timeout_ms gets GOAWAY too, whatever frames it sends: h2o only
 * times out silence there (its HTTP/1.1 request timeout covers the rest).
 *
 * Limits over all connections, as kube's max-in-flight filter: requests
 * being served, watches not counted, at most max_requests_inflight
 * read-only (get, list) and max_mutating_requests_inflight others; beyond,
 * 429 TooManyRequests with Retry-After: 1, except for system:masters; and
 * at most max_watches open watches.
 *
 * Threads: everything runs on the loop thread except edge_ticket_gone()
 * and the in-flight limits (edge_inflight_*), which workers call.
 */
#ifndef LANGOP_EDGE_H
#define LANGOP_EDGE_H

#include <h2o.h>

#include "langop/core/common.h"
#include "langop/request/message.h"

#define EDGE_CONN_MAX_JOBS 100    /* the SETTINGS_MAX_CONCURRENT_STREAMS h2o 2.2.5 sends, fixed */
#define EDGE_RESET_BUDGET 200
#define EDGE_RETRY_AFTER_S 1      /* kube's max-in-flight filter says 1 */

typedef struct edge edge_t;
typedef struct edge_conn edge_conn_t;

typedef struct edge_options {
    int max_requests_inflight;          /* read-only requests being served; 0: no limit */
    int max_mutating_requests_inflight; /* the others; 0: no limit */
    int max_watches;                    /* open watches; 0: no limit */
    int64_t request_timeout_ms;         /* a connection's time to deliver a request (h2o's http1.req_timeout) */
} edge_options_t;

/* Where a ticket is (loop thread only). */
enum { EDGE_TICKET_NEW, EDGE_TICKET_WAITING, EDGE_TICKET_WORKING, EDGE_TICKET_DONE };

/* The edge's part of a job that serves a request. Embedded, zeroed, in the job. */
typedef struct edge_ticket {
    edge_conn_t *conn;          /* the connection it came on; held until edge_ticket_close */
    struct edge_ticket *next;   /* its connection's waiting line */
    int where;                  /* EDGE_TICKET_* */
    int cancelled;              /* atomic: the client went away before the answer */
    int inflight;               /* worker: the in-flight counter it holds, 0 none */
} edge_ticket_t;

/** Hands a ticket that waited on its connection to the workers (loop thread). */
typedef void (*edge_dispatch_fn)(void *ctx, edge_ticket_t *ticket);

/**
 * On the loop thread of ctx, after h2o_context_init. dispatch takes a
 * waiting ticket to the workers once its connection has room. Starts a
 * once-a-second sweep of HTTP/2 connections that send no request.
 */
edge_t *edge_new(h2o_context_t *ctx, const edge_options_t *opts, edge_dispatch_fn dispatch, void *dispatch_ctx);
/** Stops the sweep (at shutdown). The edge and its connections stay, reachable, for the process. */
void edge_stop(edge_t *edge);

/** Gives a socket just accepted its edge_conn_t (freed when the socket and its requests are gone). */
void edge_accept(edge_t *edge, h2o_socket_t *sock);
/** Makes the error answers h2o sends by itself on host (before a request reaches a handler) Status bodies. */
void edge_register_error_filter(h2o_hostconf_t *host);

/**
 * The framing checks of an HTTP/1.x request, in on_req (for HTTP/2: none, 0).
 * Returns 0, or -1 with err 400: the caller answers err, and the
 * connection closes after that answer.
 */
int edge_check_request(h2o_req_t *req, lo_err_t *err);
/** The same on the raw header block head[0..len) (request line first): 0 or -1 with err. */
int edge_http1_framing_check(const char *head, size_t len, int minor_version, lo_err_t *err);

/**
 * A request reached the server (on_req): counts it as live on its
 * connection until edge_request_gone(), and returns that connection (held
 * for the request), or NULL if its socket is not the edge's.
 */
edge_conn_t *edge_request_begin(h2o_req_t *req);
/** The request's memory was cleared (answered, reset or closed), its conn as begin gave it. */
void edge_request_gone(edge_conn_t *conn);

/**
 * A ticket for req's job, on conn (from edge_request_begin; NULL: none).
 * Returns 1 when the job goes to the workers now, 0 when it waits on its
 * connection (the dispatch function takes it there later).
 */
int edge_ticket_open(edge_ticket_t *t, edge_conn_t *conn);
/**
 * The client went away before the answer: called while h2o clears req's
 * memory (req and its connection are still valid then). Returns 1 when the
 * ticket waited on its connection and left it (no worker will see it: free
 * the job now).
 */
int edge_ticket_cancel(edge_ticket_t *t, h2o_req_t *req);
/** The workers are done with the ticket (answered says whether its answer went out); lets the next one go. */
void edge_ticket_done(edge_ticket_t *t, int answered);
/** Releases what the ticket holds (from job_free; any state). */
void edge_ticket_close(edge_ticket_t *t);

/** On a worker: 1 if the client is gone (the ticket was cancelled, or an HTTP/1 peer hung up). */
int edge_ticket_gone(edge_ticket_t *t);

/**
 * On a worker, after authentication, before the API runs the request:
 * counts it in flight (kube's max-in-flight filter). Returns 1 to go on,
 * or 0 with resp set to the 429 answer.
 */
int edge_inflight_acquire(edge_t *edge, edge_ticket_t *t, const api_request_t *areq, api_response_t *resp);
/** The request's answer is ready: it no longer counts (safe when acquire did not count it). */
void edge_inflight_release(edge_t *edge, edge_ticket_t *t);

/** On the loop: 1 if one more watch may open beside open_watches, else 0 with resp set to the 429 answer. */
int edge_watch_admit(const edge_t *edge, size_t open_watches, api_response_t *resp);

#endif
