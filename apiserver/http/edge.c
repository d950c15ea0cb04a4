/*
 * edge.c - the HTTP edge (see langop/http/edge.h).
 *
 * What h2o 2.2.5 does and does not, which is why this exists:
 *   - HTTP/1.x: it keeps Host, Content-Length and Transfer-Encoding out of
 *     req->headers (the last Host wins, the first Content-Length, a
 *     Transfer-Encoding over both) and accepts them in any combination. The
 *     raw header block is still at the start of the socket's input buffer
 *     when the handler runs (h2o consumes it after the response), so the
 *     checks read it there. Setting http1_is_persistent = 0 makes h2o close
 *     after the answer without reading further; it reads nothing while a
 *     request is served.
 *   - Its own errors (h2o_send_error_generic) go through the host's
 *     fallback path: a filter there turns their text into a Status.
 *   - HTTP/2: it advertises and enforces 100 concurrent streams, but a
 *     reset stream leaves that count at once, while the server's job for it
 *     may still be queued; nothing bounds resets. GOAWAY is sent here the
 *     way h2o sends its own (h2o/http2_internal.h: the connection's write
 *     buffer, pull_stream_ids.max_open, the HALF_CLOSED state, after which
 *     it ignores new streams and closes once the open ones are answered).
 *     Tied to this h2o version, like the SSL* in server.c.
 *   - Timeouts: TLS handshake 10 s, HTTP/1.1 request 10 s from when the
 *     connection waits for it (not reset by bytes: a trickler is closed),
 *     HTTP/2 idle 10 s but reset by every frame read; hence the sweep.
 *   - A closed HTTP/1.1 connection: h2o stops reading while a request is
 *     served, so it notices a hang-up only when it writes the answer.
 *     Workers poll a duplicate of the socket (POLLRDHUP) instead: the
 *     duplicate lives as long as the edge_conn, so its number cannot be
 *     reused under a worker.
 */
#include "langop/http/edge.h"

#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <h2o/http2.h>
#include <h2o/http2_internal.h>

#include "langop/core/status.h"
#include "langop/request/reqinfo.h"

#define EDGE_SWEEP_MS 1000

enum { INFLIGHT_NONE, INFLIGHT_READONLY, INFLIGHT_MUTATING };

struct edge_conn {
    edge_t *edge;
    h2o_socket_t *sock;          /* NULL once closed */
    edge_conn_t *prev, *next;    /* the edge's connections */
    int live;                    /* requests handed over and not yet cleared */
    int tickets;                 /* tickets open on it (their jobs are alive) */
    int working;                 /* tickets with the workers */
    edge_ticket_t *wait_head, *wait_tail;
    int reset_budget;
    int64_t idle_since_ms;       /* when live last became 0 */
    int peek_fd;                 /* HTTP/1: a duplicate of the socket for workers to poll; -1 none */
};

struct edge {
    edge_options_t opts;
    h2o_context_t *ctx;
    edge_dispatch_fn dispatch;
    void *dispatch_ctx;
    edge_conn_t *conns;
    h2o_timeout_t sweep;
    h2o_timeout_entry_t sweep_entry;
    int readonly_inflight;       /* atomic */
    int mutating_inflight;       /* atomic */
};

/* ---- connections ---- */

static void conn_maybe_free(edge_conn_t *c)
{
    if (c->sock != NULL || c->live > 0 || c->tickets > 0)
        return;
    if (c->prev)
        c->prev->next = c->next;
    else
        c->edge->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    if (c->peek_fd >= 0)
        close(c->peek_fd);
    free(c);
}

/* the socket's on_close callback */
static void on_sock_close(void *p)
{
    edge_conn_t *c = p;
    c->sock = NULL;
    conn_maybe_free(c);
}

void edge_accept(edge_t *edge, h2o_socket_t *sock)
{
    edge_conn_t *c = lo_calloc(1, sizeof(*c));
    c->edge = edge;
    c->sock = sock;
    c->peek_fd = -1;
    c->reset_budget = EDGE_RESET_BUDGET;
    c->idle_since_ms = lo_now_ms();
    c->next = edge->conns;
    if (edge->conns)
        edge->conns->prev = c;
    edge->conns = c;
    sock->on_close.cb = on_sock_close;
    sock->on_close.data = c;
}

static edge_conn_t *conn_of_sock(h2o_socket_t *sock)
{
    return sock != NULL && sock->on_close.cb == on_sock_close ? sock->on_close.data : NULL;
}

static h2o_socket_t *socket_of(h2o_req_t *req)
{
    return req->conn->callbacks->get_socket ? req->conn->callbacks->get_socket(req->conn) : NULL;
}

/* GOAWAY as h2o sends its own; the connection then takes no new stream and closes once the open ones end. */
static void send_goaway(h2o_http2_conn_t *h2, int errnum, const char *why)
{
    if (h2->state != H2O_HTTP2_CONN_STATE_OPEN)
        return;
    h2o_http2_encode_goaway_frame(&h2->_write.buf, h2->pull_stream_ids.max_open, errnum,
                                  h2o_iovec_init(why, strlen(why)));
    h2o_http2_conn_request_write(h2);
    h2->state = H2O_HTTP2_CONN_STATE_HALF_CLOSED;
}

edge_conn_t *edge_request_begin(h2o_req_t *req)
{
    h2o_socket_t *sock = socket_of(req);
    edge_conn_t *c = conn_of_sock(sock);
    if (c == NULL)
        return NULL;
    c->live++;
    if (req->version < 0x200 && c->peek_fd < 0)
        c->peek_fd = fcntl(h2o_socket_get_fd(sock), F_DUPFD_CLOEXEC, 0); /* -1 (EMFILE): no hang-up check */
    return c;
}

void edge_request_gone(edge_conn_t *c)
{
    if (c == NULL)
        return;
    if (--c->live == 0)
        c->idle_since_ms = lo_now_ms();
    conn_maybe_free(c);
}

/*
 * Once a second: an HTTP/2 connection with no request in the server for
 * the request timeout gets GOAWAY, frames or not (a client trickling a
 * HEADERS frame, or sending only PINGs, resets h2o's idle timer forever).
 */
static void on_sweep(h2o_timeout_entry_t *entry)
{
    edge_t *edge = H2O_STRUCT_FROM_MEMBER(edge_t, sweep_entry, entry);
    int64_t now = lo_now_ms();
    h2o_linklist_t *list = &edge->ctx->http2._conns;
    for (h2o_linklist_t *node = list->next; node != list; node = node->next) {
        h2o_http2_conn_t *h2 = H2O_STRUCT_FROM_MEMBER(h2o_http2_conn_t, _conns, node);
        edge_conn_t *c = conn_of_sock(h2->sock);
        if (c != NULL && c->live == 0 && now - c->idle_since_ms >= edge->opts.request_timeout_ms)
            send_goaway(h2, H2O_HTTP2_ERROR_NONE, "no request within the request timeout");
    }
    h2o_timeout_link(edge->ctx->loop, &edge->sweep, &edge->sweep_entry);
}

edge_t *edge_new(h2o_context_t *ctx, const edge_options_t *opts, edge_dispatch_fn dispatch, void *dispatch_ctx)
{
    edge_t *edge = lo_calloc(1, sizeof(*edge));
    edge->opts = *opts;
    edge->ctx = ctx;
    edge->dispatch = dispatch;
    edge->dispatch_ctx = dispatch_ctx;
    h2o_timeout_init(ctx->loop, &edge->sweep, EDGE_SWEEP_MS);
    edge->sweep_entry.cb = on_sweep;
    h2o_timeout_link(ctx->loop, &edge->sweep, &edge->sweep_entry);
    return edge;
}

void edge_stop(edge_t *edge)
{
    h2o_timeout_unlink(&edge->sweep_entry);
    h2o_timeout_dispose(edge->ctx->loop, &edge->sweep);
}

/* ---- tickets ---- */

int edge_ticket_open(edge_ticket_t *t, edge_conn_t *c)
{
    t->conn = c;
    if (c == NULL) {
        t->where = EDGE_TICKET_WORKING;
        return 1;
    }
    c->tickets++;
    if (c->working < EDGE_CONN_MAX_JOBS) {
        c->working++;
        t->where = EDGE_TICKET_WORKING;
        return 1;
    }
    t->where = EDGE_TICKET_WAITING;
    t->next = NULL;
    if (c->wait_tail)
        c->wait_tail->next = t;
    else
        c->wait_head = t;
    c->wait_tail = t;
    return 0;
}

static void wait_unlink(edge_conn_t *c, edge_ticket_t *t)
{
    edge_ticket_t **p = &c->wait_head, *prev = NULL;
    while (*p && *p != t) {
        prev = *p;
        p = &(*p)->next;
    }
    if (*p == NULL)
        return;
    *p = t->next;
    if (c->wait_tail == t)
        c->wait_tail = prev;
    t->next = NULL;
}

int edge_ticket_cancel(edge_ticket_t *t, h2o_req_t *req)
{
    __atomic_store_n(&t->cancelled, 1, __ATOMIC_RELEASE);
    edge_conn_t *c = t->conn;
    if (c == NULL)
        return 0;
    if (--c->reset_budget < 0 && req->version >= 0x200) /* an HTTP/2 request's conn is h2o's HTTP/2 connection */
        send_goaway((h2o_http2_conn_t *)req->conn, H2O_HTTP2_ERROR_ENHANCE_YOUR_CALM, "too many requests reset");
    if (t->where != EDGE_TICKET_WAITING)
        return 0;
    wait_unlink(c, t);
    t->where = EDGE_TICKET_DONE;
    return 1;
}

void edge_ticket_done(edge_ticket_t *t, int answered)
{
    edge_conn_t *c = t->conn;
    if (t->where != EDGE_TICKET_WORKING || c == NULL) {
        t->where = EDGE_TICKET_DONE;
        return;
    }
    t->where = EDGE_TICKET_DONE;
    c->working--;
    if (answered && c->reset_budget < EDGE_RESET_BUDGET)
        c->reset_budget++;
    edge_ticket_t *next = c->wait_head;
    if (next == NULL)
        return;
    c->wait_head = next->next;
    if (c->wait_head == NULL)
        c->wait_tail = NULL;
    next->next = NULL;
    next->where = EDGE_TICKET_WORKING;
    c->working++;
    c->edge->dispatch(c->edge->dispatch_ctx, next);
}

void edge_ticket_close(edge_ticket_t *t)
{
    edge_conn_t *c = t->conn;
    if (c == NULL)
        return;
    if (t->where == EDGE_TICKET_WAITING)
        wait_unlink(c, t);
    else if (t->where == EDGE_TICKET_WORKING)
        c->working--;
    t->where = EDGE_TICKET_DONE;
    t->conn = NULL;
    c->tickets--;
    conn_maybe_free(c);
}

int edge_ticket_gone(edge_ticket_t *t)
{
    if (__atomic_load_n(&t->cancelled, __ATOMIC_ACQUIRE))
        return 1;
    if (t->conn == NULL || t->conn->peek_fd < 0)
        return 0;
    /* HTTP/1: the peer's FIN (or a reset) while h2o does not read; Go's server treats it the same */
    struct pollfd p = {.fd = t->conn->peek_fd, .events = POLLRDHUP};
    return poll(&p, 1, 0) == 1 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR)) != 0;
}

/* ---- limits ---- */

static void too_many(api_response_t *resp, const char *what)
{
    lo_err_t err = {0};
    lo_err_set(&err, 429, "TooManyRequests", "Too many %s, please try again later.", what);
    lo_err_set_details(&err, json_pack("{s:i}", "retryAfterSeconds", EDGE_RETRY_AFTER_S));
    api_response_set_error(resp, &err);
    lo_err_clear(&err);
    char value[16];
    snprintf(value, sizeof(value), "%d", EDGE_RETRY_AFTER_S);
    api_response_add_header(resp, "retry-after", value);
}

static int is_system_master(const api_user_t *user)
{
    for (size_t i = 0; i < API_MAX_GROUPS && user->groups[i]; i++)
        if (strcmp(user->groups[i], "system:masters") == 0)
            return 1;
    return 0;
}

/* INFLIGHT_NONE for a long-running request (a watch), else which counter it takes (kube's verbs). */
static int inflight_kind(const api_request_t *areq)
{
    reqinfo_t info = {0};
    lo_err_t err = {0};
    int kind = INFLIGHT_MUTATING;
    if (reqinfo_parse(areq->method, areq->target, strlen(areq->target), &info, &err) != 0)
        kind = INFLIGHT_READONLY; /* answered 400 by the API at once */
    else if (strcmp(info.verb, "watch") == 0)
        kind = INFLIGHT_NONE;
    else if (strcmp(info.verb, "get") == 0 || strcmp(info.verb, "list") == 0)
        kind = INFLIGHT_READONLY;
    reqinfo_free(&info);
    lo_err_clear(&err);
    return kind;
}

int edge_inflight_acquire(edge_t *edge, edge_ticket_t *t, const api_request_t *areq, api_response_t *resp)
{
    t->inflight = INFLIGHT_NONE;
    int kind = inflight_kind(areq);
    int limit = kind == INFLIGHT_READONLY ? edge->opts.max_requests_inflight
                : kind == INFLIGHT_MUTATING ? edge->opts.max_mutating_requests_inflight : 0;
    if (limit <= 0)
        return 1;
    int *counter = kind == INFLIGHT_READONLY ? &edge->readonly_inflight : &edge->mutating_inflight;
    if (__atomic_add_fetch(counter, 1, __ATOMIC_ACQ_REL) <= limit) {
        t->inflight = kind;
        return 1;
    }
    __atomic_sub_fetch(counter, 1, __ATOMIC_ACQ_REL);
    /* kube: a system:masters user is so powerful that it always gets an answer */
    if (is_system_master(&areq->user))
        return 1;
    too_many(resp, "requests");
    return 0;
}

void edge_inflight_release(edge_t *edge, edge_ticket_t *t)
{
    if (t->inflight == INFLIGHT_READONLY)
        __atomic_sub_fetch(&edge->readonly_inflight, 1, __ATOMIC_ACQ_REL);
    else if (t->inflight == INFLIGHT_MUTATING)
        __atomic_sub_fetch(&edge->mutating_inflight, 1, __ATOMIC_ACQ_REL);
    t->inflight = INFLIGHT_NONE;
}

int edge_watch_admit(const edge_t *edge, size_t open_watches, api_response_t *resp)
{
    if (edge->opts.max_watches <= 0 || open_watches < (size_t)edge->opts.max_watches)
        return 1;
    too_many(resp, "watches");
    return 0;
}

/* ---- HTTP/1.x framing ---- */

static int name_is(const char *name, size_t len, const char *want)
{
    return len == strlen(want) && strncasecmp(name, want, len) == 0;
}

/*
 * Adds the values of one Content-Length field (a list such as "5, 5" is
 * several) to *value: 0, or -1 when one is not a number or differs from
 * those seen before (*value < 0: none yet).
 */
static int content_length_values(const char *v, size_t len, long long *value)
{
    size_t i = 0;
    while (i < len) {
        while (i < len && (v[i] == ' ' || v[i] == '\t' || v[i] == ','))
            i++;
        if (i == len)
            break;
        long long n = 0;
        size_t digits = 0;
        for (; i < len && v[i] >= '0' && v[i] <= '9'; i++, digits++) {
            if (n > (LLONG_MAX - 9) / 10)
                return -1;
            n = n * 10 + (v[i] - '0');
        }
        while (i < len && (v[i] == ' ' || v[i] == '\t'))
            i++;
        if (digits == 0 || (i < len && v[i] != ','))
            return -1;
        if (*value >= 0 && *value != n)
            return -1;
        *value = n;
    }
    return 0;
}

int edge_http1_framing_check(const char *head, size_t len, int minor_version, lo_err_t *err)
{
    const char *end = head + len, *p = memchr(head, '\n', len);
    int hosts = 0, encodings = 0, lengths = 0;
    long long length = -1;
    while (p != NULL && ++p < end) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        if (eol == NULL)
            break;
        size_t n = (size_t)(eol - p);
        if (n > 0 && p[n - 1] == '\r')
            n--;
        if (n == 0)
            break; /* the blank line: end of the header block */
        if (p[0] == ' ' || p[0] == '\t') {
            status_bad_request(err, "obsolete line folding in a request header is not accepted");
            return -1;
        }
        const char *colon = memchr(p, ':', n);
        size_t nlen = colon ? (size_t)(colon - p) : n;
        const char *value = colon ? colon + 1 : p + n;
        size_t vlen = (size_t)(p + n - value);
        if (name_is(p, nlen, "host")) {
            hosts++;
        } else if (name_is(p, nlen, "transfer-encoding")) {
            encodings++;
        } else if (name_is(p, nlen, "content-length")) {
            lengths++;
            if (content_length_values(value, vlen, &length) != 0) {
                status_bad_request(err, "conflicting or invalid Content-Length");
                return -1;
            }
        }
        p = eol;
    }
    if (encodings > 0 && lengths > 0)
        status_bad_request(err, "a request may not have both Content-Length and Transfer-Encoding");
    else if (encodings > 1)
        status_bad_request(err, "more than one Transfer-Encoding header");
    else if (hosts > 1)
        status_bad_request(err, "more than one Host header");
    else if (hosts == 0 && minor_version >= 1)
        status_bad_request(err, "missing required Host header");
    else
        return 0;
    return -1;
}

int edge_check_request(h2o_req_t *req, lo_err_t *err)
{
    if (req->version >= 0x200)
        return 0;
    h2o_socket_t *sock = socket_of(req);
    if (sock == NULL || sock->input == NULL)
        return 0;
    if (edge_http1_framing_check(sock->input->bytes, sock->input->size, req->version & 0xff, err) == 0)
        return 0;
    req->http1_is_persistent = 0; /* h2o closes after the answer and reads nothing more */
    return -1;
}

/* ---- h2o's own error answers as Status ---- */

static const char *reason_of(int status)
{
    switch (status) {
    case 400: return "BadRequest";
    case 413: return "RequestEntityTooLarge";
    default: return "";
    }
}

/* h2o sends its text in one final send: the Status carries it as the message. */
static void status_do_send(h2o_ostream_t *self, h2o_req_t *req, h2o_iovec_t *bufs, size_t bufcnt,
                           h2o_send_state_t state)
{
    char text[256];
    size_t len = 0;
    for (size_t i = 0; i < bufcnt; i++) {
        size_t n = bufs[i].len < sizeof(text) - 1 - len ? bufs[i].len : sizeof(text) - 1 - len;
        memcpy(text + len, bufs[i].base, n);
        len += n;
    }
    text[len] = '\0';
    lo_err_t err = {0};
    lo_err_set(&err, req->res.status, reason_of(req->res.status), "%s", len ? text : req->res.reason);
    json_t *st = status_from_err(&err);
    lo_err_clear(&err);
    char *json = json_dumps(st, JSON_COMPACT);
    json_decref(st);
    h2o_iovec_t body = h2o_strdup(&req->pool, json, strlen(json));
    free(json);
    ssize_t ct = h2o_find_header(&req->res.headers, H2O_TOKEN_CONTENT_TYPE, -1);
    if (ct >= 0)
        req->res.headers.entries[ct].value = h2o_iovec_init(H2O_STRLIT("application/json"));
    req->res.content_length = body.len;
    h2o_ostream_send_next(self, req, bufcnt ? &body : NULL, bufcnt ? 1 : 0, state);
}

static void on_setup_error_ostream(h2o_filter_t *self, h2o_req_t *req, h2o_ostream_t **slot)
{
    (void)self;
    ssize_t ct = h2o_find_header(&req->res.headers, H2O_TOKEN_CONTENT_TYPE, -1);
    if (req->res.status >= 400 && ct >= 0 &&
        h2o_memis(req->res.headers.entries[ct].value.base, req->res.headers.entries[ct].value.len,
                  H2O_STRLIT("text/plain; charset=utf-8"))) {
        h2o_ostream_t *os = h2o_add_ostream(req, sizeof(*os), slot);
        os->do_send = status_do_send;
        slot = &os->next;
    }
    h2o_setup_next_ostream(req, slot);
}

void edge_register_error_filter(h2o_hostconf_t *host)
{
    h2o_filter_t *f = h2o_create_filter(&host->fallback_path, sizeof(*f));
    f->on_setup_ostream = on_setup_error_ostream;
}
