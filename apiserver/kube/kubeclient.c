/*
 * kubeclient.c - requests and watches against kube-apiserver with libcurl
 * (langop/kube/kubeclient.h).
 *
 * Each call builds its own easy handle from the read-only client, so
 * threads share nothing but the config's token cache. One attempt is
 * attempt_once(); the retry rule (may_retry) is the only place that
 * decides whether a failed attempt may be repeated.
 */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <curl/curl.h>

#include "langop/core/codec.h"
#include "langop/kube/kubeclient.h"

#define ANSWER_MAX_BYTES (64u << 20)  /* one answer (a big list) */
#define WATCH_LINE_MAX_BYTES (16u << 20)

struct kube_client {
    kube_config_t *cfg;
    kube_client_options_t o;
    char *user_agent;
    /* Connections, TLS sessions and DNS answers shared by the calls' easy
     * handles, so that a call does not pay a new TLS handshake; curl takes
     * locks[data] around each use. */
    CURLSH *share;
    pthread_mutex_t locks[CURL_LOCK_DATA_LAST];
    atomic_int aborted; /* kube_client_abort: every call ends at once */
};

static void share_lock(CURL *h, curl_lock_data data, curl_lock_access access, void *arg)
{
    (void)h, (void)access;
    kube_client_t *c = arg;
    pthread_mutex_lock(&c->locks[data]);
}

static void share_unlock(CURL *h, curl_lock_data data, void *arg)
{
    (void)h;
    kube_client_t *c = arg;
    pthread_mutex_unlock(&c->locks[data]);
}

static void share_init(kube_client_t *c)
{
    for (int i = 0; i < CURL_LOCK_DATA_LAST; i++)
        pthread_mutex_init(&c->locks[i], NULL);
    c->share = curl_share_init();
    if (c->share == NULL)
        lo_fatal("curl_share_init failed");
    curl_share_setopt(c->share, CURLSHOPT_LOCKFUNC, share_lock);
    curl_share_setopt(c->share, CURLSHOPT_UNLOCKFUNC, share_unlock);
    curl_share_setopt(c->share, CURLSHOPT_USERDATA, c);
    curl_share_setopt(c->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS);
    curl_share_setopt(c->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION);
    curl_share_setopt(c->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_CONNECT);
}

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_result;

static void curl_init(void)
{
    curl_init_result = curl_global_init(CURL_GLOBAL_DEFAULT);
}

kube_client_t *kube_client_new(kube_config_t *cfg, const kube_client_options_t *opts,
                               lo_err_t *err)
{
    pthread_once(&curl_once, curl_init);
    if (curl_init_result != CURLE_OK) {
        lo_err_set(err, 0, "", "curl_global_init: %s", curl_easy_strerror(curl_init_result));
        kubeconfig_free(cfg);
        return NULL;
    }
    if (cfg == NULL || cfg->server == NULL) {
        lo_err_set(err, 0, "", "kube client: no server configured");
        kubeconfig_free(cfg);
        return NULL;
    }
    kube_client_t *c = lo_calloc(1, sizeof(*c));
    c->cfg = cfg;
    if (opts)
        c->o = *opts;
    if (c->o.connect_timeout_ms <= 0)
        c->o.connect_timeout_ms = 5000;
    if (c->o.timeout_ms <= 0)
        c->o.timeout_ms = 30000;
    if (c->o.max_retries == 0)
        c->o.max_retries = 4;
    if (c->o.max_retries < 0)
        c->o.max_retries = 0;
    if (c->o.backoff_base_ms <= 0)
        c->o.backoff_base_ms = 200;
    if (c->o.backoff_max_ms <= 0)
        c->o.backoff_max_ms = 5000;
    if (c->o.retry_after_max_ms <= 0)
        c->o.retry_after_max_ms = 30000;
    c->user_agent = lo_strdup(c->o.user_agent ? c->o.user_agent
                                              : "langop-apiserver/" LANGOP_VERSION);
    c->o.user_agent = c->user_agent;
    share_init(c);
    return c;
}

void kube_client_free(kube_client_t *c)
{
    if (c == NULL)
        return;
    curl_share_cleanup(c->share);
    for (int i = 0; i < CURL_LOCK_DATA_LAST; i++)
        pthread_mutex_destroy(&c->locks[i]);
    kubeconfig_free(c->cfg);
    free(c->user_agent);
    free(c);
}

void kube_client_abort(kube_client_t *c)
{
    atomic_store(&c->aborted, 1);
}

kube_config_t *kube_client_config(kube_client_t *c)
{
    return c->cfg;
}

/* ---- one attempt ---- */

typedef struct attempt {
    CURLcode rc;
    long status;
    int sent;              /* some bytes of the request were written */
    long retry_after_ms;   /* from a Retry-After header; -1 when none */
    lo_buf_t body;
    char curl_error[CURL_ERROR_SIZE];
} attempt_t;

static size_t collect_body(char *data, size_t size, size_t n, void *arg)
{
    lo_buf_t *b = arg;
    size_t len = size * n;
    if (b->len + len > ANSWER_MAX_BYTES)
        return 0;
    lo_buf_put(b, data, len);
    return len;
}

static size_t collect_header(char *data, size_t size, size_t n, void *arg)
{
    attempt_t *a = arg;
    size_t len = size * n;
    static const char name[] = "retry-after:";
    if (len > sizeof(name) - 1 && strncasecmp(data, name, sizeof(name) - 1) == 0) {
        char value[32] = {0};
        size_t vlen = len - (sizeof(name) - 1);
        memcpy(value, data + sizeof(name) - 1, vlen < sizeof(value) - 1 ? vlen : sizeof(value) - 1);
        char *end;
        long secs = strtol(value, &end, 10);
        if (end != value && secs >= 0)
            a->retry_after_ms = secs * 1000;
    }
    return len;
}

/*
 * A new easy handle for method url with auth, TLS and timeouts set;
 * *headers receives the list the caller frees after the transfer. NULL and
 * err when the token cannot be read.
 */
static CURL *easy_new(kube_client_t *c, const char *url, struct curl_slist **headers,
                      const char *content_type, char *errbuf, lo_err_t *err)
{
    kube_config_t *cfg = c->cfg;
    char *token = kubeconfig_token(cfg, err);
    if (token == NULL && cfg->token_file)
        return NULL;
    CURL *h = curl_easy_init();
    if (h == NULL)
        lo_fatal("curl_easy_init failed");
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_SHARE, c->share);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "https");
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, c->o.connect_timeout_ms);
    curl_easy_setopt(h, CURLOPT_USERAGENT, c->user_agent);
    /* Verification is the default; set anyway so no later default can turn it off. */
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 2L);
    if (cfg->ca.data) {
        struct curl_blob blob = {cfg->ca.data, cfg->ca.len, CURL_BLOB_COPY};
        curl_easy_setopt(h, CURLOPT_CAINFO_BLOB, &blob);
    } else if (cfg->ca_file) {
        curl_easy_setopt(h, CURLOPT_CAINFO, cfg->ca_file);
    }
    if (cfg->cert.data) {
        struct curl_blob blob = {cfg->cert.data, cfg->cert.len, CURL_BLOB_COPY};
        curl_easy_setopt(h, CURLOPT_SSLCERT_BLOB, &blob);
        curl_easy_setopt(h, CURLOPT_SSLCERTTYPE, "PEM");
    } else if (cfg->cert_file) {
        curl_easy_setopt(h, CURLOPT_SSLCERT, cfg->cert_file);
        curl_easy_setopt(h, CURLOPT_SSLCERTTYPE, "PEM");
    }
    if (cfg->key.data) {
        struct curl_blob blob = {cfg->key.data, cfg->key.len, CURL_BLOB_COPY};
        curl_easy_setopt(h, CURLOPT_SSLKEY_BLOB, &blob);
        curl_easy_setopt(h, CURLOPT_SSLKEYTYPE, "PEM");
    } else if (cfg->key_file) {
        curl_easy_setopt(h, CURLOPT_SSLKEY, cfg->key_file);
        curl_easy_setopt(h, CURLOPT_SSLKEYTYPE, "PEM");
    }
    struct curl_slist *l = curl_slist_append(NULL, "Accept: application/json");
    if (content_type) {
        char *ct = lo_sprintf("Content-Type: %s", content_type);
        l = curl_slist_append(l, ct);
        free(ct);
    }
    if (token && *token) {
        char *auth = lo_sprintf("Authorization: Bearer %s", token);
        l = curl_slist_append(l, auth);
        memset(auth, 0, strlen(auth));
        free(auth);
    }
    if (token) {
        memset(token, 0, strlen(token));
        free(token);
    }
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, l);
    *headers = l;
    return h;
}

static char *url_of(kube_client_t *c, const char *path)
{
    return lo_sprintf("%s%s", c->cfg->server, path);
}

/* libcurl's progress callback of a request: non-zero ends the transfer (kube_client_abort). */
static int request_progress(void *arg, curl_off_t dlt, curl_off_t dln, curl_off_t ult, curl_off_t uln)
{
    (void)dlt, (void)dln, (void)ult, (void)uln;
    const kube_client_t *c = arg;
    return atomic_load(&c->aborted) ? 1 : 0;
}

/* One try of a request. 0, or -1 with err when no handle could be made. */
static int attempt_once(kube_client_t *c, const char *method, const char *url,
                        const char *content_type, const char *payload, size_t payload_len,
                        attempt_t *a, lo_err_t *err)
{
    struct curl_slist *headers = NULL;
    free(a->body.data);
    memset(a, 0, sizeof(*a));
    a->retry_after_ms = -1;
    CURL *h = easy_new(c, url, &headers, payload ? content_type : NULL, a->curl_error, err);
    if (h == NULL)
        return -1;
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, c->o.timeout_ms);
    curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, request_progress);
    curl_easy_setopt(h, CURLOPT_XFERINFODATA, c);
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    if (strcmp(method, "GET") == 0) {
        curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
    } else {
        /* libcurl sends a request again, unasked, when the kept-alive
         * connection it reused dies after the request was written; only a
         * GET may go twice (may_retry), so the others take a new one */
        curl_easy_setopt(h, CURLOPT_FRESH_CONNECT, 1L);
    }
    if (payload) {
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, payload);
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)payload_len);
    }
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, collect_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &a->body);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, collect_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, a);
    a->rc = curl_easy_perform(h);
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &a->status);
    long request_size = 0;
    curl_easy_getinfo(h, CURLINFO_REQUEST_SIZE, &request_size);
    a->sent = request_size > 0;
    curl_easy_cleanup(h);
    curl_slist_free_all(headers);
    return 0;
}

/*
 * A failure that another try cannot mend: the server's certificate or ours,
 * a bad URL, an answer over ANSWER_MAX_BYTES (the write callback refused it).
 */
static int permanent(CURLcode rc)
{
    switch (rc) {
    case CURLE_WRITE_ERROR:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_CRL_BADFILE:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
    case CURLE_SSL_ENGINE_NOTFOUND:
    case CURLE_SSL_ENGINE_SETFAILED:
    case CURLE_UNSUPPORTED_PROTOCOL:
    case CURLE_URL_MALFORMAT:
        return 1;
    default:
        return 0;
    }
}

/* The retry rule of the header: may this attempt of method be repeated? */
static int may_retry(const char *method, const attempt_t *a)
{
    int get = strcmp(method, "GET") == 0, post = strcmp(method, "POST") == 0;
    if (a->rc != CURLE_OK && a->status == 0) {
        if (permanent(a->rc))
            return 0;
        return !a->sent || get;
    }
    if (a->rc != CURLE_OK)  /* an answer started and broke off */
        return get && !permanent(a->rc);
    if (a->status == 429)
        return !post;
    if (a->status >= 500)
        return get;
    return 0;
}

/* xorshift per thread, seeded from the clock and the thread: jitter needs no quality. */
static uint64_t jitter_next(void)
{
    static __thread uint64_t s;
    if (s == 0)
        s = ((uint64_t)lo_now_ms() << 20) ^ (uint64_t)(uintptr_t)&s ^ 0x9e3779b97f4a7c15ull;
    s ^= s << 13;
    s ^= s >> 7;
    s ^= s << 17;
    return s;
}

/* The wait before retry number attempt (0-based) in ms. */
static long backoff_ms(const kube_client_t *c, int attempt, long retry_after_ms)
{
    if (retry_after_ms >= 0)
        return retry_after_ms < c->o.retry_after_max_ms ? retry_after_ms : c->o.retry_after_max_ms;
    long d = c->o.backoff_base_ms;
    for (int i = 0; i < attempt && d < c->o.backoff_max_ms; i++)
        d *= 2;
    if (d > c->o.backoff_max_ms)
        d = c->o.backoff_max_ms;
    return d / 2 + (long)(jitter_next() % (uint64_t)(d / 2 + 1));
}

/* Sleeps ms, waking every 100 ms to look at stop; returns 1 when stopped. */
static int sleep_ms(long ms, const atomic_int *stop)
{
    while (ms > 0) {
        if (stop && atomic_load(stop))
            return 1;
        long step = ms < 100 ? ms : 100;
        struct timespec ts = {step / 1000, (step % 1000) * 1000000L};
        while (nanosleep(&ts, &ts) < 0 && errno == EINTR) {
        }
        ms -= step;
    }
    return stop && atomic_load(stop);
}

/* ---- errors ---- */

static const char *reason_of(long status)
{
    switch (status) {
    case 400: return "BadRequest";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "NotFound";
    case 405: return "MethodNotAllowed";
    case 406: return "NotAcceptable";
    case 409: return "Conflict";
    case 410: return "Gone";
    case 415: return "UnsupportedMediaType";
    case 422: return "Invalid";
    case 429: return "TooManyRequests";
    case 500: return "InternalError";
    case 503: return "ServiceUnavailable";
    case 504: return "Timeout";
    default: return "Unknown";
    }
}

/* err from a Status object, or from status alone when body is none. */
static void error_from_status(long status, json_t *body, const char *what, lo_err_t *err)
{
    const char *kind = json_string_value(json_object_get(body, "kind"));
    if (kind && strcmp(kind, "Status") == 0) {
        json_int_t code = json_integer_value(json_object_get(body, "code"));
        const char *reason = json_string_value(json_object_get(body, "reason"));
        const char *message = json_string_value(json_object_get(body, "message"));
        lo_err_set(err, code > 0 ? (int)code : (int)status,
                   reason && *reason ? reason : reason_of(status), "%s",
                   message ? message : what);
        json_t *details = json_object_get(body, "details");
        if (err && json_is_object(details))
            lo_err_set_details(err, json_incref(details));
        return;
    }
    lo_err_set(err, (int)status, reason_of(status), "%s: kube-apiserver answered %ld", what,
               status);
}

static int error_from_transport(const attempt_t *a, const char *what, lo_err_t *err)
{
    int timed_out = a->rc == CURLE_OPERATION_TIMEDOUT;
    lo_err_set(err, 0, timed_out ? "Timeout" : "ServiceUnavailable", "%s: %s", what,
               a->curl_error[0] ? a->curl_error : curl_easy_strerror(a->rc));
    return timed_out ? KUBE_ETIMEDOUT : KUBE_ETRANSPORT;
}

/* ---- requests ---- */

int kube_request(kube_client_t *c, const char *method, const char *path,
                 const char *content_type, const json_t *body, kube_response_t *resp,
                 lo_err_t *err)
{
    kube_response_t local;
    if (resp == NULL)
        resp = &local;
    memset(resp, 0, sizeof(*resp));
    if (method == NULL || path == NULL || path[0] != '/') {
        lo_err_set(err, 0, "", "kube request: a method and a path starting with '/' are needed");
        return KUBE_EINVAL;
    }
    if (atomic_load(&c->aborted)) {
        lo_err_set(err, 0, "ServiceUnavailable", "%s %s: the client is shutting down", method, path);
        return KUBE_ETRANSPORT;
    }
    char *what = lo_sprintf("%s %s", method, path);
    char *url = url_of(c, path);
    size_t payload_len = 0;
    char *payload = body ? codec_encode_json_len(body, &payload_len) : NULL;
    attempt_t a = {0};
    int rc = KUBE_OK, answered = 0;
    for (int attempt = 0;; attempt++) {
        if (attempt_once(c, method, url, content_type ? content_type : "application/json",
                         payload, payload_len, &a, err) < 0) {
            rc = KUBE_ETRANSPORT;
            answered = 0;
            break;
        }
        answered = 1;
        resp->attempts = attempt + 1;
        if (attempt < c->o.max_retries && may_retry(method, &a) && !atomic_load(&c->aborted)) {
            lo_log(LO_DEBUG, "kube: %s: %s, retrying", what,
                   a.rc != CURLE_OK ? curl_easy_strerror(a.rc) : reason_of(a.status));
            if (!sleep_ms(backoff_ms(c, attempt, a.status == 429 ? a.retry_after_ms : -1), &c->aborted))
                continue;
        }
        break;
    }
    if (answered) {
        resp->status = a.status;
        if (a.body.len > 0)
            resp->body = json_loadb(a.body.data, a.body.len, JSON_DECODE_ANY, NULL);
        if (a.rc != CURLE_OK)
            rc = error_from_transport(&a, what, err);
        else if (a.status < 200 || a.status > 299) {
            error_from_status(a.status, resp->body, what, err);
            rc = KUBE_EHTTP;
        } else if (a.body.len > 0 && resp->body == NULL) {
            lo_err_set(err, 0, "", "%s: the answer is not JSON", what);
            rc = KUBE_ETRANSPORT;
        }
    }
    if (resp == &local)
        json_decref(local.body);
    free(a.body.data);
    free(payload);
    free(url);
    free(what);
    return rc;
}

int kube_get(kube_client_t *c, const char *path, json_t **out, lo_err_t *err)
{
    kube_response_t r;
    int rc = kube_request(c, "GET", path, NULL, NULL, &r, err);
    if (rc == KUBE_OK && out) {
        *out = r.body;
        return rc;
    }
    json_decref(r.body);
    if (out)
        *out = NULL;
    return rc;
}

/* ---- watch ---- */

typedef struct watch_state {
    kube_watch_fn fn;
    void *arg;
    const atomic_int *stop;
    const kube_client_t *client;
    CURL *h;
    long status;        /* 0 until the first body bytes */
    lo_buf_t line;      /* the part of a line not yet ended */
    lo_buf_t error_body;/* the body of a non-200 answer */
    char *rv;           /* last resourceVersion seen (owned) */
    int events;
    int result;         /* KUBE_OK, or why the stream was cut */
    int fn_stopped;
    lo_err_t *err;
} watch_state_t;

/* One event line. 0 to go on, -1 to end the stream (w->result says why). */
static int watch_line(watch_state_t *w, const char *text, size_t len)
{
    while (len > 0 && (text[len - 1] == '\r' || text[len - 1] == ' '))
        len--;
    if (len == 0)
        return 0;
    json_error_t jerr;
    json_t *ev = json_loadb(text, len, 0, &jerr);
    const char *type = json_string_value(json_object_get(ev, "type"));
    json_t *obj = json_object_get(ev, "object");
    if (type == NULL || !json_is_object(obj)) {
        lo_err_set(w->err, 0, "", "watch: an event that is not {type, object}: %s",
                   ev ? "missing fields" : jerr.text);
        json_decref(ev);
        w->result = KUBE_EINVAL;
        return -1;
    }
    if (strcmp(type, "ERROR") == 0) {
        error_from_status(json_integer_value(json_object_get(obj, "code")), obj, "watch", w->err);
        w->result = json_integer_value(json_object_get(obj, "code")) == 410 ? KUBE_EGONE
                                                                            : KUBE_EHTTP;
        json_decref(ev);
        return -1;
    }
    const char *rv = json_string_value(
        json_object_get(json_object_get(obj, "metadata"), "resourceVersion"));
    if (rv && *rv) {
        free(w->rv);
        w->rv = lo_strdup(rv);
    }
    w->events++;
    int stop = w->fn(w->arg, type, obj);
    json_decref(ev);
    if (stop) {
        w->fn_stopped = 1;
        return -1;
    }
    return 0;
}

static size_t watch_write(char *data, size_t size, size_t n, void *arg)
{
    watch_state_t *w = arg;
    size_t len = size * n;
    if (w->status == 0)
        curl_easy_getinfo(w->h, CURLINFO_RESPONSE_CODE, &w->status);
    if (w->status != 200) {
        if (w->error_body.len + len > ANSWER_MAX_BYTES)
            return 0;
        lo_buf_put(&w->error_body, data, len);
        return len;
    }
    const char *p = data, *end = data + len;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        if (nl == NULL) {
            if (w->line.len + (size_t)(end - p) > WATCH_LINE_MAX_BYTES) {
                lo_err_set(w->err, 0, "", "watch: an event longer than %u bytes",
                           WATCH_LINE_MAX_BYTES);
                w->result = KUBE_EINVAL;
                return 0;
            }
            lo_buf_put(&w->line, p, (size_t)(end - p));
            break;
        }
        int r;
        if (w->line.len > 0) {
            lo_buf_put(&w->line, p, (size_t)(nl - p));
            r = watch_line(w, w->line.data, w->line.len);
            lo_buf_truncate(&w->line, 0);
        } else {
            r = watch_line(w, p, (size_t)(nl - p));
        }
        if (r < 0)
            return 0;
        p = nl + 1;
    }
    return len;
}

static int watch_progress(void *arg, curl_off_t dlt, curl_off_t dln, curl_off_t ult,
                          curl_off_t uln)
{
    (void)dlt, (void)dln, (void)ult, (void)uln;
    watch_state_t *w = arg;
    return (w->stop && atomic_load(w->stop)) || atomic_load(&w->client->aborted) ? 1 : 0;
}

static char *watch_url(kube_client_t *c, const char *path, const char *rv, long timeout_ms)
{
    lo_buf_t u = {0};
    lo_buf_printf(&u, "%s%s%cwatch=1&allowWatchBookmarks=true&timeoutSeconds=%ld",
                  c->cfg->server, path, strchr(path, '?') ? '&' : '?',
                  (timeout_ms + 999) / 1000);
    if (rv && *rv) {
        char *e = curl_easy_escape(NULL, rv, 0);
        lo_buf_printf(&u, "&resourceVersion=%s", e);
        curl_free(e);
    }
    return u.data;
}

/* One attempt to open and follow the stream; fills a as attempt_once does. */
static int watch_once(kube_client_t *c, const char *url, long timeout_ms, watch_state_t *w,
                      attempt_t *a, lo_err_t *err)
{
    struct curl_slist *headers = NULL;
    memset(a, 0, sizeof(*a));
    a->retry_after_ms = -1;
    CURL *h = easy_new(c, url, &headers, NULL, a->curl_error, err);
    if (h == NULL)
        return -1;
    w->h = h;
    w->status = 0;
    lo_buf_truncate(&w->line, 0);
    lo_buf_truncate(&w->error_body, 0);
    /* the server ends the stream at timeoutSeconds too; this bounds a silent one */
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, timeout_ms);
    curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, watch_write);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, w);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, collect_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, a);
    curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, watch_progress);
    curl_easy_setopt(h, CURLOPT_XFERINFODATA, w);
    a->rc = curl_easy_perform(h);
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &a->status);
    long request_size = 0;
    curl_easy_getinfo(h, CURLINFO_REQUEST_SIZE, &request_size);
    a->sent = request_size > 0;
    w->h = NULL;
    curl_easy_cleanup(h);
    curl_slist_free_all(headers);
    return 0;
}

/* How a finished watch attempt ends the call: a KUBE_* code, or 1 to retry. */
static int watch_outcome(kube_client_t *c, watch_state_t *w, const attempt_t *a, int attempt,
                         lo_err_t *err)
{
    if (w->result != KUBE_OK)
        return w->result;
    if (w->fn_stopped || a->rc == CURLE_ABORTED_BY_CALLBACK)
        return KUBE_OK;
    if (a->status == 200) {
        /* a last line without its newline */
        if (a->rc == CURLE_OK && w->line.len > 0 &&
            watch_line(w, w->line.data, w->line.len) < 0 && !w->fn_stopped)
            return w->result;
        if (a->rc == CURLE_OK || a->rc == CURLE_OPERATION_TIMEDOUT)
            return KUBE_OK;
        if (w->events == 0 && attempt < c->o.max_retries)
            return 1;
        return error_from_transport(a, "watch", err);
    }
    if (a->status == 0) {
        if (attempt < c->o.max_retries && may_retry("GET", a))
            return 1;
        return error_from_transport(a, "watch", err);
    }
    if (attempt < c->o.max_retries && may_retry("GET", a))
        return 1;
    json_t *body = json_loadb(w->error_body.data ? w->error_body.data : "", w->error_body.len,
                              0, NULL);
    error_from_status(a->status, body, "watch", err);
    json_decref(body);
    return a->status == 410 ? KUBE_EGONE : KUBE_EHTTP;
}

int kube_watch(kube_client_t *c, const char *path, const kube_watch_options_t *opts,
               kube_watch_fn fn, void *arg, char **last_rv, lo_err_t *err)
{
    kube_watch_options_t o = opts ? *opts : (kube_watch_options_t){0};
    if (last_rv)
        *last_rv = NULL;
    if (path == NULL || path[0] != '/' || fn == NULL) {
        lo_err_set(err, 0, "", "kube watch: a path starting with '/' and a callback are needed");
        return KUBE_EINVAL;
    }
    if (o.timeout_ms <= 0)
        o.timeout_ms = 300000;
    watch_state_t w = {.fn = fn, .arg = arg, .stop = o.stop, .client = c, .err = err};
    if (o.resource_version)
        w.rv = lo_strdup(o.resource_version);
    char *url = watch_url(c, path, o.resource_version, o.timeout_ms);
    attempt_t a;
    int rc;
    for (int attempt = 0;; attempt++) {
        if (watch_once(c, url, o.timeout_ms, &w, &a, err) < 0) {
            rc = KUBE_ETRANSPORT;
            break;
        }
        rc = watch_outcome(c, &w, &a, attempt, err);
        if (rc != 1)
            break;
        if (atomic_load(&c->aborted) ||
            sleep_ms(backoff_ms(c, attempt, a.status == 429 ? a.retry_after_ms : -1), o.stop)) {
            rc = KUBE_OK;
            break;
        }
    }
    if (last_rv)
        *last_rv = w.rv ? w.rv : lo_strdup("");
    else
        free(w.rv);
    free(w.line.data);
    free(w.error_body.data);
    free(url);
    return rc;
}
