/*
 * server.c - the HTTPS front end (see langop/server.h).
 *
 * Life of a request:
 *   loop thread: on_req() copies what the API needs out of the h2o request
 *     into a job (method, target, headers, body, the TLS client's
 *     certificate chain), links a small slot into the request's pool and
 *     queues the job;
 *   worker thread: admit_request() authenticates it (this may wait on a
 *     TokenReview, which is why it is not done on the loop) and answers
 *     401 itself when it fails; else api_handle() fills job->response, then the job is posted
 *     back to the loop through the multithread queue; or the answer is
 *     pending on the store's writer (a write), and the job waits, holding
 *     no thread, until the writer's wake goes on with it: api_resume() in
 *     the wake itself when only an encoding is left (api_resume_light()),
 *     the job then posted to the loop; else back on the worker queue;
 *   loop thread: on_jobs_done() sends the response, logs it, frees the job.
 * If the client goes away first, h2o clears the request's pool; the slot's
 * dispose callback then sets job->req = NULL, and the finished job is
 * dropped without touching the dead request. Both run on the loop thread,
 * so job->req needs no lock.
 *
 * The HTTP edge (langop/http/edge.h) stands around this: on_req refuses
 * bad HTTP/1 framing before a job exists; each job holds a ticket of its
 * connection, which may make it wait there for room; a worker drops a
 * job whose client is gone before it runs it, and counts the others in
 * flight (429 above the limits); on_jobs_done caps the open watches.
 */
#include "langop/http/server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <h2o.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "langop/core/status.h"
#include "langop/core/text.h"
#include "langop/http/edge.h"
#include "langop/http/stream.h"
#include "langop/http/tls.h"

/* h2o itself refuses bodies above this with its own plain 413; up to it,
 * the API answers with a Status (its limit is API_MAX_BODY) */
#define SERVER_MAX_ENTITY (16u * 1024u * 1024u)

/* how often the serving certificate files are checked for a new pair: a
 * stat() of two files, cheap enough for the loop thread */
#define TLS_RELOAD_CHECK_MS 2000

typedef struct job job_t;

typedef struct job_slot {
    job_t *job;        /* NULL once the response was sent */
    edge_conn_t *conn; /* the request's connection at the edge (may be NULL) */
    h2o_req_t *req;    /* valid in the dispose callback: h2o frees it after clearing its pool */
} job_slot_t;

/*
 * A job is a request for api_handle(), or a piece of work another module
 * offloads from the loop (work() on a worker, then done() on the loop).
 */
struct job {
    h2o_multithread_message_t message;   /* must stay first: the queue links it */
    void (*work)(void *arg);             /* set: an offloaded piece of work, not a request */
    void (*done)(void *arg);
    void *arg;
    h2o_req_t *req;                      /* NULL if the request went away (loop thread only) */
    job_slot_t *slot;
    api_request_t request;
    api_response_t response;
    int resuming;                        /* set by the wake: api_resume() rather than api_handle() */
    struct server *srv;
    int64_t started_ms;
    edge_ticket_t ticket;                /* its connection's ticket (langop/http/edge.h) */
    const char *cancelled;               /* set: why it was not run (for the log) */
    job_t *next;                         /* worker queue link */
};

/* A stop (see drain) in phases: new requests are taken until the accepted ones are answered. */
typedef enum server_phase {
    SERVING,
    DRAINING, /* HTTP/1.1 answers close their connection */
    CLOSING,  /* every accepted request is answered: a late one gets 503 */
} server_phase_t;

typedef struct server {
    api_t *api;
    const auth_t *auth;
    h2o_globalconf_t config;
    h2o_context_t ctx;
    h2o_accept_ctx_t accept_ctx;
    tls_t *tls;
    h2o_timeout_t tls_check;             /* the certificate files' reload check */
    h2o_timeout_entry_t tls_check_entry;
    h2o_multithread_queue_t *queue;
    h2o_multithread_receiver_t done_receiver;
    /* worker queue */
    pthread_mutex_t lock;
    pthread_cond_t cond;
    job_t *head, *tail;
    int stopping;
    pthread_t *workers;
    int worker_count;
    stream_hub_t *hub;                   /* open watches */
    edge_t *edge;                        /* the HTTP edge's connections and limits */
    int requests;                        /* atomic: requests accepted and not yet answered */
    server_phase_t phase;                /* the loop's: serving, or how far a stop has come */
} server_t;

static volatile sig_atomic_t stop_requested;

static void on_signal(int sig)
{
    (void)sig;
    stop_requested = 1;
}

/* ---- jobs ---- */

static void job_free(job_t *job)
{
    if (job->srv)
        __atomic_sub_fetch(&job->srv->requests, 1, __ATOMIC_RELAXED);
    edge_ticket_close(&job->ticket);
    api_request_free(&job->request);
    api_response_free(&job->response);
    free(job);
}

static void log_request(const h2o_req_t *req, const api_request_t *areq, const api_response_t *resp,
                        int64_t started_ms, const char *cancelled);

static void queue_job(server_t *srv, job_t *job)
{
    pthread_mutex_lock(&srv->lock);
    job->next = NULL;
    if (srv->tail)
        srv->tail->next = job;
    else
        srv->head = job;
    srv->tail = job;
    pthread_cond_signal(&srv->cond);
    pthread_mutex_unlock(&srv->lock);
}

static job_t *take_job(server_t *srv)
{
    pthread_mutex_lock(&srv->lock);
    while (srv->head == NULL && !srv->stopping)
        pthread_cond_wait(&srv->cond, &srv->lock);
    job_t *job = srv->head;
    if (job) {
        srv->head = job->next;
        if (srv->head == NULL)
            srv->tail = NULL;
    }
    pthread_mutex_unlock(&srv->lock);
    return job;
}

/* edge_dispatch_fn: a job that waited on its connection may go to the workers. */
static void dispatch_ticket(void *ctx, edge_ticket_t *ticket)
{
    queue_job(ctx, H2O_STRUCT_FROM_MEMBER(job_t, ticket, ticket));
}

/* The request's pool is cleared: answered, or its client went away first (then the job is cancelled). */
static void on_slot_dispose(void *p)
{
    job_slot_t *slot = p;
    job_t *job = slot->job;
    if (job != NULL) {
        job->req = NULL;
        if (edge_ticket_cancel(&job->ticket, slot->req)) { /* no worker will see it */
            job->response.status = 499;
            log_request(NULL, &job->request, &job->response, job->started_ms, "while it waited on its connection");
            job_free(job);
        }
    }
    edge_request_gone(slot->conn);
}

/*
 * api_wake_fn, on the store's writer thread: the job's answer can go on.
 * An answer that is only to be encoded is finished here and goes straight
 * to the loop (one hand-off less: no worker wakes for it); the rest goes
 * back to a worker.
 */
static void job_wake(void *ctx)
{
    job_t *job = ctx;
    if (api_resume_light(&job->response)) {
        if (!api_resume(job->srv->api, &job->response)) { /* else pending again: its wake comes later */
            edge_inflight_release(job->srv->edge, &job->ticket); /* as a worker does after its turn */
            h2o_multithread_send_message(&job->srv->done_receiver, &job->message);
        }
        return;
    }
    job->resuming = 1;
    queue_job(job->srv, job);
}

/* 1 if the request's path needs no credentials (health). */
static int path_always_allowed(const api_request_t *areq)
{
    char *path = lo_strndup(areq->target, strcspn(areq->target, "?"));
    int allowed = auth_path_always_allowed(path);
    free(path);
    return allowed;
}

/*
 * The one gate between a request and the API, on a worker: who is asking
 * (authentication; may block on a TokenReview). Authorization follows here.
 * Returns 1 to go on, or 0 with job->response set to the refusal.
 */
static int admit_request(server_t *srv, job_t *job)
{
    api_request_t *areq = &job->request;
    int outcome = auth_request(srv->auth, areq);
    if (outcome == AUTH_UNAUTHORIZED && path_always_allowed(areq)) {
        api_user_free(&areq->user);
        areq->user.name = lo_strdup("system:anonymous");
        areq->user.groups[0] = lo_strdup("system:unauthenticated");
        outcome = AUTH_ANONYMOUS;
    }
    if (outcome != AUTH_UNAUTHORIZED)
        return 1;
    lo_err_t err = {0};
    lo_err_set(&err, 401, "Unauthorized", "Unauthorized");
    api_response_set_error(&job->response, &err);
    lo_err_clear(&err);
    return 0;
}

/*
 * A request's first turn on a worker. A client gone before it (a stream
 * reset, a hang-up) is not served: nothing of it runs. Authentication may
 * wait, so it is asked again before the API runs.
 */
static int serve_request(server_t *srv, job_t *job)
{
    if (edge_ticket_gone(&job->ticket) || !admit_request(srv, job))
        goto gone_or_refused;
    if (edge_ticket_gone(&job->ticket))
        goto gone_or_refused;
    if (!edge_inflight_acquire(srv->edge, &job->ticket, &job->request, &job->response))
        return 0;
    return api_handle(srv->api, &job->request, &job->response, job_wake, job);
gone_or_refused:
    if (job->response.status == 0) {
        job->cancelled = "before it ran";
        job->response.status = 499;
    }
    return 0;
}

static void *worker_main(void *arg)
{
    server_t *srv = arg;
    job_t *job;
    while ((job = take_job(srv)) != NULL) {
        int pending = 0;
        if (job->work)
            job->work(job->arg);
        else if (job->resuming)
            pending = api_resume(srv->api, &job->response);
        else
            pending = serve_request(srv, job);
        if (pending)
            continue; /* the wake queues it again */
        if (!job->work)
            edge_inflight_release(srv->edge, &job->ticket);
        h2o_multithread_send_message(&srv->done_receiver, &job->message);
    }
    return NULL;
}

/* ---- responses ---- */

static const char *reason_phrase(int status)
{
    switch (status) {
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 301: return "Moved Permanently";
    case 304: return "Not Modified";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 406: return "Not Acceptable";
    case 409: return "Conflict";
    case 410: return "Gone";
    case 413: return "Payload Too Large";
    case 415: return "Unsupported Media Type";
    case 422: return "Unprocessable Entity";
    case 429: return "Too Many Requests";
    case 500: return "Internal Server Error";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    default: return status < 400 ? "OK" : "Error";
    }
}

/* The user's groups, comma-separated, as a quoted-string body (caller frees). */
static char *groups_quoted(const api_user_t *user)
{
    size_t len = 1;
    for (size_t i = 0; i < API_MAX_GROUPS && user->groups[i]; i++)
        len += strlen(user->groups[i]) + 1;
    char *joined = lo_calloc(1, len);
    for (size_t i = 0; i < API_MAX_GROUPS && user->groups[i]; i++) {
        if (i)
            strcat(joined, ",");
        strcat(joined, user->groups[i]);
    }
    char *quoted = text_header_quoted(joined);
    free(joined);
    return quoted;
}

/* Puts ` name="value"`, value quoted (what a client sent is escaped, and not cut: a cut escape would unquote the
 * rest, so it cannot forge a field). */
static void log_field(lo_buf_t *b, const char *name, const char *value)
{
    char *quoted = text_header_quoted(value);
    lo_buf_char(b, ' ');
    lo_buf_puts(b, name);
    lo_buf_put(b, "=\"", 2);
    lo_buf_puts(b, quoted);
    lo_buf_char(b, '"');
    free(quoted);
}

/* One line per request, built without printf (the loop writes thousands a second). */
static void log_request(const h2o_req_t *req, const api_request_t *areq, const api_response_t *resp,
                        int64_t started_ms, const char *cancelled)
{
    char num[32];
    lo_buf_t b = {0};
    lo_buf_reserve(&b, 256);
    lo_buf_puts(&b, "HTTP verb=\"");
    lo_buf_puts(&b, resp->verb[0] ? resp->verb : areq->method);
    lo_buf_puts(&b, "\" URI=\"");
    lo_buf_put(&b, areq->target, strnlen(areq->target, 512));
    lo_buf_char(&b, '"');
    log_field(&b, "user", areq->user.name ? areq->user.name : "");
    lo_buf_put(&b, num, (size_t)snprintf(num, sizeof(num), " code=%d latency=\"%lldms\"", resp->status,
                                         (long long)(lo_now_ms() - started_ms)));
    lo_buf_puts(&b, req == NULL ? " proto=\"-\"" : req->version >= 0x200 ? " proto=\"HTTP/2\"" : " proto=\"HTTP/1.1\"");
    char *groups = groups_quoted(&areq->user);
    lo_buf_puts(&b, " groups=\"");
    lo_buf_puts(&b, groups);
    lo_buf_char(&b, '"');
    free(groups);
    if (areq->user.extra) {
        char *extra = json_dumps(areq->user.extra, JSON_COMPACT | JSON_SORT_KEYS);
        if (extra)
            log_field(&b, "extra", extra);
        free(extra);
    }
    if (resp->impersonated_user)
        log_field(&b, "impersonatedUser", resp->impersonated_user);
    if (cancelled) { /* the server's own words */
        lo_buf_puts(&b, " cancelled=\"client gone ");
        lo_buf_puts(&b, cancelled);
        lo_buf_char(&b, '"');
    }
    lo_log_text(LO_INFO, b.data, b.len);
    free(b.data);
}

static void add_header(h2o_req_t *req, const char *name, const char *value)
{
    size_t nlen = strlen(name);
    char *n = h2o_mem_alloc_pool(&req->pool, nlen);
    memcpy(n, name, nlen);
    h2o_iovec_t v = h2o_strdup(&req->pool, value, strlen(value));
    h2o_add_header_by_str(&req->pool, &req->res.headers, n, nlen, 0, NULL, v.base, v.len);
}

/* The status and headers of resp onto req. */
static void set_response_head(h2o_req_t *req, const api_response_t *resp)
{
    req->res.status = resp->status;
    req->res.reason = reason_phrase(resp->status);
    if (resp->content_type) { /* h2o keeps the pointer: copy into the request's pool */
        h2o_iovec_t ct = h2o_strdup(&req->pool, resp->content_type, strlen(resp->content_type));
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL, ct.base, ct.len);
    }
    int cache_control = 0;
    for (size_t i = 0; i < resp->header_count; i++) {
        add_header(req, resp->header_names[i], resp->header_values[i]);
        cache_control |= strcasecmp(resp->header_names[i], "cache-control") == 0;
    }
    if (!cache_control) /* API answers are per user and change: never cached unless they say so */
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CACHE_CONTROL, NULL, H2O_STRLIT("no-cache, private"));
}

static void send_response(h2o_req_t *req, const api_response_t *resp)
{
    set_response_head(req, resp);
    req->res.content_length = resp->body_len;
    h2o_send_inline(req, resp->body ? resp->body : "", resp->body_len);
}

/* stream_offload_fn: runs work on a worker, then done on the loop. */
static void offload(void *ctx, void (*work)(void *arg), void (*done)(void *arg), void *arg)
{
    job_t *job = lo_calloc(1, sizeof(*job));
    job->work = work;
    job->done = done;
    job->arg = arg;
    queue_job(ctx, job);
}

static void on_jobs_done(h2o_multithread_receiver_t *receiver, h2o_linklist_t *messages)
{
    while (!h2o_linklist_is_empty(messages)) {
        h2o_multithread_message_t *m = H2O_STRUCT_FROM_MEMBER(h2o_multithread_message_t, link, messages->next);
        h2o_linklist_unlink(&m->link);
        job_t *job = (job_t *)m;
        if (job->work) {
            job->done(job->arg);
            free(job);
            continue;
        }
        server_t *srv = H2O_STRUCT_FROM_MEMBER(server_t, done_receiver, receiver);
        if (job->response.watch && !edge_watch_admit(srv->edge, stream_watch_count(srv->hub), &job->response)) {
            job->response.watch_free(job->response.watch);
            job->response.watch = NULL;
        }
        log_request(job->req, &job->request, &job->response, job->started_ms, job->cancelled);
        edge_ticket_done(&job->ticket, job->req != NULL && job->cancelled == NULL);
        if (job->req != NULL) {
            job->slot->job = NULL; /* the request no longer refers to this job */
            /* stopping, or an HTTP/1 peer that hung up (the answer goes nowhere): the connection closes */
            if (srv->phase != SERVING || job->cancelled)
                job->req->http1_is_persistent = 0;
            if (job->response.watch) {
                stream_watch_start(srv->hub, job->req, job->response.watch, job->response.content_type);
                job->response.watch = NULL; /* stolen by the stream */
            } else if (job->response.list) { /* a long List: sent page by page as it is read */
                set_response_head(job->req, &job->response);
                stream_list_start(srv->hub, job->req, job->response.list);
                job->response.list = NULL; /* stolen by the stream */
            } else {
                send_response(job->req, &job->response);
            }
        }
        job_free(job);
    }
}

/* ---- requests ---- */

/* Every header of req into areq (h2o keeps names lower-case). */
static void headers_copy(const h2o_req_t *req, api_request_t *areq)
{
    areq->header_count = req->headers.size;
    areq->headers = lo_calloc(req->headers.size ? req->headers.size : 1, sizeof(*areq->headers));
    for (size_t i = 0; i < req->headers.size; i++) {
        const h2o_header_t *h = &req->headers.entries[i];
        areq->headers[i].name = lo_strndup(h->name->base, h->name->len);
        areq->headers[i].value = lo_strndup(h->value.base, h->value.len);
    }
}

static char *header_copy(const h2o_req_t *req, const h2o_token_t *token)
{
    ssize_t i = h2o_find_header(&req->headers, token, -1);
    if (i < 0)
        return NULL;
    const h2o_iovec_t *v = &req->headers.entries[i].value;
    return lo_strndup(v->base, v->len);
}

/*
 * h2o 2.2.5 has no accessor for a socket's SSL*; its (opaque) TLS state
 * begins with these two members (reference/toolchain.md, pitfall 5). Tied
 * to this h2o version: check it when h2o changes.
 */
struct h2o_socket_ssl_prefix {
    SSL_CTX *ssl_ctx;
    SSL *ossl;
};

/* The client's certificate chain, leaf first, as PEM (new string), or NULL when it sent none. */
static char *peer_chain_pem(h2o_req_t *req)
{
    h2o_socket_t *sock = req->conn->callbacks->get_socket ? req->conn->callbacks->get_socket(req->conn) : NULL;
    if (sock == NULL || sock->ssl == NULL)
        return NULL;
    SSL *ssl = ((struct h2o_socket_ssl_prefix *)sock->ssl)->ossl;
    X509 *leaf = SSL_get0_peer_certificate(ssl);
    if (leaf == NULL)
        return NULL;
    BIO *bio = BIO_new(BIO_s_mem());
    PEM_write_bio_X509(bio, leaf);
    STACK_OF(X509) *chain = SSL_get_peer_cert_chain(ssl); /* server side: without the leaf */
    for (int i = 0; chain && i < sk_X509_num(chain); i++)
        PEM_write_bio_X509(bio, sk_X509_value(chain, i));
    char *data;
    long len = BIO_get_mem_data(bio, &data);
    char *pem = lo_strndup(data, (size_t)len);
    BIO_free(bio);
    return pem;
}

/* A request that came after the last accepted one was answered: the client may retry elsewhere. */
static int refuse_closing(h2o_req_t *req)
{
    static const char body[] = "{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"metadata\":{},\"status\":\"Failure\","
                               "\"message\":\"the server is shutting down\",\"reason\":\"ServiceUnavailable\","
                               "\"code\":503}";
    req->http1_is_persistent = 0;
    req->res.status = 503;
    req->res.reason = reason_phrase(503);
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL, H2O_STRLIT("application/json"));
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_RETRY_AFTER, NULL, H2O_STRLIT("1"));
    req->res.content_length = sizeof(body) - 1;
    h2o_send_inline(req, body, sizeof(body) - 1);
    return 0;
}

/* A request the edge refuses before it becomes a job (bad HTTP/1 framing): answered on the loop. */
static void refuse_request(h2o_req_t *req, const lo_err_t *err)
{
    api_request_t areq = {.method = lo_strndup(req->input.method.base, req->input.method.len),
                          .target = lo_strndup(req->input.path.base, req->input.path.len)};
    api_response_t resp = {0};
    api_response_set_error(&resp, err);
    log_request(req, &areq, &resp, lo_now_ms(), NULL);
    send_response(req, &resp);
    api_response_free(&resp);
    api_request_free(&areq);
}

static int on_req(h2o_handler_t *self, h2o_req_t *req)
{
    server_t *srv = *(server_t **)(self + 1);
    if (srv->phase == CLOSING)
        return refuse_closing(req);
    lo_err_t err = {0};
    if (edge_check_request(req, &err) != 0) {
        refuse_request(req, &err);
        lo_err_clear(&err);
        return 0;
    }
    job_t *job = lo_calloc(1, sizeof(*job));
    job->started_ms = lo_now_ms();
    api_request_t *areq = &job->request;
    areq->method = lo_strndup(req->input.method.base, req->input.method.len);
    areq->target = lo_strndup(req->input.path.base, req->input.path.len);
    areq->accept = header_copy(req, H2O_TOKEN_ACCEPT);
    areq->content_type = header_copy(req, H2O_TOKEN_CONTENT_TYPE);
    areq->if_none_match = header_copy(req, H2O_TOKEN_IF_NONE_MATCH);
    areq->user_agent = header_copy(req, H2O_TOKEN_USER_AGENT);
    headers_copy(req, areq);
    areq->peer_chain_pem = peer_chain_pem(req);
    if (req->entity.base != NULL) {
        areq->body = lo_strndup(req->entity.base, req->entity.len);
        areq->body_len = req->entity.len;
    }
    job->req = req;
    job->srv = srv;
    __atomic_add_fetch(&srv->requests, 1, __ATOMIC_RELAXED);
    job->slot = h2o_mem_alloc_shared(&req->pool, sizeof(job_slot_t), on_slot_dispose);
    job->slot->job = job;
    job->slot->conn = edge_request_begin(req);
    job->slot->req = req;
    if (edge_ticket_open(&job->ticket, job->slot->conn)) /* else it waits on its connection */
        queue_job(srv, job);
    return 0;
}

/* ---- TLS and listening ---- */

static int setup_tls(server_t *srv, const server_options_t *opts, lo_err_t *err)
{
    /* answer http/1.1 explicitly: h2o's own list names h2 only */
    static const h2o_iovec_t alpn[] = {{H2O_STRLIT("h2")}, {H2O_STRLIT("http/1.1")}, {NULL, 0}};
    tls_options_t tls = {.cert_file = opts->cert_file, .key_file = opts->key_file,
                         .min_version = opts->tls_min_version, .cipher_suites = opts->tls_cipher_suites,
                         .request_client_cert = auth_wants_client_certs(srv->auth)};
    srv->tls = tls_new(&tls, alpn, err);
    return srv->tls != NULL ? 0 : -1;
}

/* Certificate rotation: a new pair in the files serves new connections. */
static void on_tls_check(h2o_timeout_entry_t *entry)
{
    server_t *srv = H2O_STRUCT_FROM_MEMBER(server_t, tls_check_entry, entry);
    tls_reload_if_changed(srv->tls);
    h2o_timeout_link(srv->ctx.loop, &srv->tls_check, &srv->tls_check_entry);
}

static void start_tls_check(server_t *srv)
{
    h2o_timeout_init(srv->ctx.loop, &srv->tls_check, TLS_RELOAD_CHECK_MS);
    srv->tls_check_entry.cb = on_tls_check;
    h2o_timeout_link(srv->ctx.loop, &srv->tls_check, &srv->tls_check_entry);
}

static void stop_tls_check(server_t *srv)
{
    h2o_timeout_unlink(&srv->tls_check_entry);
    h2o_timeout_dispose(srv->ctx.loop, &srv->tls_check);
}

static int open_listener(const server_options_t *opts, lo_err_t *err)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICHOST | AI_NUMERICSERV};
    struct addrinfo *res = NULL;
    char port[16];
    snprintf(port, sizeof(port), "%d", opts->port);
    int rc = getaddrinfo(opts->bind_address, port, &hints, &res);
    if (rc != 0) {
        lo_err_set(err, 0, "", "invalid --bind-address %s: %s", opts->bind_address, gai_strerror(rc));
        return -1;
    }
    int fd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int on = 1;
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on)) != 0 ||
        bind(fd, res->ai_addr, res->ai_addrlen) != 0 || listen(fd, SOMAXCONN) != 0 ||
        fcntl(fd, F_SETFL, O_NONBLOCK) != 0) {
        lo_err_set(err, 0, "", "cannot listen on %s:%d: %s", opts->bind_address, opts->port, strerror(errno));
        if (fd >= 0)
            close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    return fd;
}

/*
 * Every connection is a descriptor, and an HTTP/1 one being served a
 * second (edge.c's duplicate for the hang-up check): the soft limit (often
 * 1024) goes up to the hard one, as Go's runtime does for kube-apiserver.
 */
static void raise_fd_limit(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

static void on_accept(h2o_socket_t *listener, const char *error)
{
    if (error != NULL)
        return;
    server_t *srv = listener->data;
    h2o_socket_t *sock;
    while ((sock = h2o_evloop_socket_accept(listener)) != NULL) {
        edge_accept(srv->edge, sock);
        h2o_accept(&srv->accept_ctx, sock);
    }
}

static void register_handler(server_t *srv)
{
    h2o_hostconf_t *host = h2o_config_register_host(&srv->config, h2o_iovec_init(H2O_STRLIT("default")), 65535);
    h2o_pathconf_t *path = h2o_config_register_path(host, "/", 0);
    h2o_handler_t *handler = h2o_create_handler(path, sizeof(h2o_handler_t) + sizeof(server_t *));
    handler->on_req = on_req;
    *(server_t **)(handler + 1) = srv;
    edge_register_error_filter(host);
}

/*
 * One worker per CPU, at least two: a write waits on the store's writer
 * without holding its worker, so workers only ever compute; more threads
 * than cores only add switches between them (measured: 2 beat 4 by 5-30%
 * on 2 cores).
 */
static int default_workers(void)
{
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    return cpus < 2 ? 2 : cpus > 64 ? 64 : (int)cpus;
}

static void start_workers(server_t *srv, int count)
{
    srv->worker_count = count;
    srv->workers = lo_calloc((size_t)count, sizeof(pthread_t));
    for (int i = 0; i < count; i++) {
        char name[16];
        h2o_multithread_create_thread(&srv->workers[i], NULL, worker_main, srv);
        snprintf(name, sizeof(name), "api-worker-%d", i % 1000);
        pthread_setname_np(srv->workers[i], name); /* what top -H and perf show */
    }
}

static void stop_workers(server_t *srv)
{
    pthread_mutex_lock(&srv->lock);
    srv->stopping = 1;
    pthread_cond_broadcast(&srv->cond);
    pthread_mutex_unlock(&srv->lock);
    for (int i = 0; i < srv->worker_count; i++)
        pthread_join(srv->workers[i], NULL);
    free(srv->workers);
}

/* h2o keeps its connections in these lists until they are closed */
static int connections_open(server_t *srv)
{
    return !h2o_linklist_is_empty(&srv->ctx.http1._conns) || !h2o_linklist_is_empty(&srv->ctx.http2._conns);
}

/*
 * A graceful stop, within until (--shutdown-grace-period): HTTP/2
 * connections get GOAWAY and HTTP/1.1 ones close after their answer, so
 * few new requests come; what was accepted is answered (writes wait on the
 * store's writer), and a request after that gets 503 (on a kept-alive
 * connection that was idle); then every watch ends after the events of those writes
 * (the writer publishes a batch before it answers it, so one more turn of
 * the loop brings them) with a proper end of stream, and the connections
 * are let close.
 */
static void drain(server_t *srv, int64_t until)
{
    srv->phase = DRAINING;
    h2o_context_request_shutdown(&srv->ctx);
    while (__atomic_load_n(&srv->requests, __ATOMIC_RELAXED) > 0 && lo_now_ms() < until)
        h2o_evloop_run(srv->ctx.loop, 50);
    srv->phase = CLOSING;
    if (lo_now_ms() >= until)
        return;
    h2o_evloop_run(srv->ctx.loop, 0);
    stream_hub_end_watches(srv->hub);
    while (connections_open(srv) && lo_now_ms() < until)
        h2o_evloop_run(srv->ctx.loop, 50);
}

int server_run(api_t *api, const auth_t *auth, const server_options_t *opts, lo_err_t *err)
{
    static server_t srv; /* lives for the process: h2o keeps pointers into it */
    memset(&srv, 0, sizeof(srv));
    srv.api = api;
    srv.auth = auth;
    pthread_mutex_init(&srv.lock, NULL);
    pthread_cond_init(&srv.cond, NULL);
    signal(SIGPIPE, SIG_IGN);
    struct sigaction sa = {.sa_handler = on_signal};
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    raise_fd_limit();
    if (setup_tls(&srv, opts, err) != 0)
        return -1;
    int fd = open_listener(opts, err);
    if (fd < 0)
        return -1;
    h2o_config_init(&srv.config);
    srv.config.max_request_entity_size = SERVER_MAX_ENTITY;
    register_handler(&srv);
    h2o_context_init(&srv.ctx, h2o_evloop_create(), &srv.config);
    edge_options_t eo = {.max_requests_inflight = opts->max_requests_inflight,
                         .max_mutating_requests_inflight = opts->max_mutating_requests_inflight,
                         .max_watches = opts->max_watches, .request_timeout_ms = (int64_t)srv.config.http1.req_timeout};
    srv.edge = edge_new(&srv.ctx, &eo, dispatch_ticket, &srv);
    srv.accept_ctx.ctx = &srv.ctx;
    srv.accept_ctx.hosts = srv.config.hosts;
    srv.accept_ctx.ssl_ctx = tls_ctx(srv.tls);
    start_tls_check(&srv);
    srv.queue = h2o_multithread_create_queue(srv.ctx.loop);
    h2o_multithread_register_receiver(srv.queue, &srv.done_receiver, on_jobs_done);
    h2o_socket_t *listener = h2o_evloop_socket_create(srv.ctx.loop, fd, H2O_SOCKET_FLAG_DONT_READ);
    listener->data = &srv;
    h2o_socket_read_start(listener, on_accept);
    start_workers(&srv, opts->workers > 0 ? opts->workers : default_workers());
    srv.hub = stream_hub_new(srv.ctx.loop, api_store(api), opts->bookmark_interval_ms, offload, &srv);

    api_set_ready(api, 1);
    lo_log(LO_INFO, "Serving securely on %s:%d", opts->bind_address, opts->port);
    while (!stop_requested)
        h2o_evloop_run(srv.ctx.loop, 500);
    api_set_ready(api, 0);
    lo_log(LO_INFO, "Stopping: signal received");
    h2o_socket_read_stop(listener);
    h2o_socket_close(listener);
    drain(&srv, lo_now_ms() + opts->shutdown_grace_ms);
    stop_workers(&srv);
    stream_hub_stop(srv.hub);
    /* deliver what the workers finished; a write the store answers after this (the drain timed out)
     * is committed but not answered: its client sees the connection close */
    h2o_evloop_run(srv.ctx.loop, 0);
    edge_stop(srv.edge);
    stop_tls_check(&srv);
    tls_free(srv.tls);
    return 0;
}

/* ---- self-signed certificate for --cert-dir ---- */

static int write_pem(const char *path, int mode, int (*write)(BIO *, void *), void *obj)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
    if (fd < 0)
        return -1;
    FILE *fp = fdopen(fd, "w");
    BIO *bio = BIO_new_fp(fp, BIO_CLOSE);
    int ok = write(bio, obj);
    BIO_free(bio);
    return ok == 1 ? 0 : -1;
}

static int write_key(BIO *bio, void *key)
{
    return PEM_write_bio_PrivateKey(bio, key, NULL, NULL, 0, NULL, NULL);
}

static int write_cert(BIO *bio, void *cert)
{
    return PEM_write_bio_X509(bio, cert);
}

static void add_ext(X509 *cert, int nid, const char *value)
{
    X509V3_CTX v3;
    X509V3_set_ctx_nodb(&v3);
    X509V3_set_ctx(&v3, cert, cert, NULL, NULL, 0);
    X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, &v3, nid, value);
    if (ext) {
        X509_add_ext(cert, ext, -1);
        X509_EXTENSION_free(ext);
    }
}

static X509 *make_self_signed(EVP_PKEY *key)
{
    X509 *cert = X509_new();
    X509_set_version(cert, 2);
    unsigned char serial[16];
    if (RAND_bytes(serial, sizeof(serial)) != 1)
        lo_fatal("no randomness available");
    serial[0] &= 0x7f;
    BIGNUM *bn = BN_bin2bn(serial, sizeof(serial), NULL);
    BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(cert));
    BN_free(bn);
    X509_gmtime_adj(X509_getm_notBefore(cert), -3600);
    X509_gmtime_adj(X509_getm_notAfter(cert), 365L * 24 * 3600);
    X509_set_pubkey(cert, key);
    X509_NAME *name = X509_get_subject_name(cert);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)"localhost@langop-apiserver", -1, -1,
                               0);
    X509_set_issuer_name(cert, name);
    add_ext(cert, NID_basic_constraints, "critical,CA:TRUE");
    add_ext(cert, NID_key_usage, "critical,digitalSignature,keyEncipherment,keyCertSign");
    add_ext(cert, NID_ext_key_usage, "serverAuth");
    add_ext(cert, NID_subject_alt_name, "DNS:localhost,IP:127.0.0.1,IP:::1");
    X509_sign(cert, key, EVP_sha256());
    return cert;
}

int server_ensure_self_signed(const char *dir, char **cert_path, char **key_path, lo_err_t *err)
{
    char *cert = lo_sprintf("%s/apiserver.crt", dir);
    char *key = lo_sprintf("%s/apiserver.key", dir);
    if (access(cert, R_OK) == 0 && access(key, R_OK) == 0)
        goto done;
    if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
        lo_err_set(err, 0, "", "cannot create --cert-dir %s: %s", dir, strerror(errno));
        goto fail;
    }
    EVP_PKEY *pkey = EVP_EC_gen("P-256");
    X509 *x509 = pkey ? make_self_signed(pkey) : NULL;
    int ok = x509 && write_pem(key, 0600, write_key, pkey) == 0 && write_pem(cert, 0644, write_cert, x509) == 0;
    X509_free(x509);
    EVP_PKEY_free(pkey);
    if (!ok) {
        lo_err_set(err, 0, "", "cannot write a self-signed certificate into %s", dir);
        goto fail;
    }
    lo_log(LO_INFO, "Generated self-signed cert (%s, %s)", cert, key);
done:
    *cert_path = cert;
    *key_path = key;
    return 0;
fail:
    free(cert);
    free(key);
    return -1;
}
