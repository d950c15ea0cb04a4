/*
 * test_kubeclient.c - requests, retries, timeouts, TLS and watches
 * (langop/kube/kubeclient.h) against tests/unit/kube_fake_server.py, an
 * HTTPS fake of kube-apiserver with its own CA, started once for the group.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <pthread.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "langop/kube/kubeclient.h"

typedef struct fake {
    char dir[64];
    pid_t pid;
    int port;
    int wrong_name_port; /* a certificate of the same CA for another name */
} fake_t;

static fake_t fk;

static int start_fake(void **state)
{
    (void)state;
    const char *py = getenv("LO_TEST_PYTHON"), *script = getenv("LO_TEST_KUBE_FAKE");
    if (py == NULL || script == NULL) {
        fprintf(stderr, "LO_TEST_PYTHON and LO_TEST_KUBE_FAKE must be set (meson test does)\n");
        return -1;
    }
    snprintf(fk.dir, sizeof(fk.dir), "/tmp/test_kubeclient.XXXXXX");
    if (mkdtemp(fk.dir) == NULL)
        return -1;
    int fds[2];
    if (pipe(fds) < 0)
        return -1;
    fk.pid = fork();
    if (fk.pid == 0) {
        dup2(fds[1], 1);
        close(fds[0]);
        close(fds[1]);
        execl(py, py, script, fk.dir, (char *)NULL);
        _exit(127);
    }
    close(fds[1]);
    FILE *f = fdopen(fds[0], "r");
    char line[32] = {0};
    if (fgets(line, sizeof(line), f) == NULL ||
        sscanf(line, "%d %d", &fk.port, &fk.wrong_name_port) != 2) {
        fprintf(stderr, "kube_fake_server.py did not start\n");
        return -1;
    }
    fclose(f);
    return 0;
}

static int stop_fake(void **state)
{
    (void)state;
    kill(fk.pid, SIGTERM);
    waitpid(fk.pid, NULL, 0);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", fk.dir);
    return system(cmd) == 0 ? 0 : -1;
}

/* The base64 of a file of the fake's folder. Caller frees. */
static char *b64_of(const char *name)
{
    char *path = lo_sprintf("%s/%s", fk.dir, name);
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    char buf[16384];
    size_t n = fread(buf, 1, sizeof(buf), f);
    fclose(f);
    free(path);
    return lo_base64_encode(buf, n);
}

/*
 * A client from a kubeconfig whose cluster has server (NULL: the fake's
 * 127.0.0.1 URL) and cluster_extra, and whose user is user_yaml (flow
 * mapping body). opts may be NULL.
 */
static kube_client_t *client_with(const char *server, const char *cluster_extra,
                                  const char *user_yaml, const kube_client_options_t *opts)
{
    char *url = server ? lo_strdup(server) : lo_sprintf("https://127.0.0.1:%d", fk.port);
    char *text = lo_sprintf("current-context: t\n"
                            "contexts: [{name: t, context: {cluster: c, user: u}}]\n"
                            "clusters: [{name: c, cluster: {server: '%s', %s}}]\n"
                            "users: [{name: u, user: {%s}}]\n",
                            url, cluster_extra, user_yaml);
    char *path = lo_sprintf("%s/kubeconfig", fk.dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    lo_err_t err = {0};
    kube_config_t *cfg = kubeconfig_load_file(path, NULL, &err);
    if (cfg == NULL)
        fail_msg("kubeconfig: %s\n%s", err.message, text);
    kube_client_t *c = kube_client_new(cfg, opts, &err);
    assert_non_null(c);
    free(path);
    free(text);
    free(url);
    return c;
}

/* Fast retries, so that the tests do not wait on backoff. */
static const kube_client_options_t fast = {
    .connect_timeout_ms = 2000, .timeout_ms = 5000, .max_retries = 3,
    .backoff_base_ms = 10, .backoff_max_ms = 50,
};

static kube_client_t *token_client(void)
{
    return client_with(NULL, "certificate-authority: ca.crt", "token: t0k", &fast);
}

static const char *str_at(json_t *obj, const char *key)
{
    json_t *v = json_object_get(obj, key);
    return json_is_string(v) ? json_string_value(v) : "(none)";
}

static void test_get_sends_the_token(void **state)
{
    (void)state;
    kube_client_t *c = token_client();
    json_t *got = NULL;
    lo_err_t err = {0};
    assert_int_equal(kube_get(c, "/echo?a=1", &got, &err), KUBE_OK);
    assert_string_equal(str_at(got, "method"), "GET");
    assert_string_equal(str_at(got, "path"), "/echo?a=1");
    assert_string_equal(str_at(got, "authorization"), "Bearer t0k");
    assert_true(json_is_null(json_object_get(got, "clientCN")));
    json_decref(got);
    kube_client_free(c);
}

static void test_client_certificate(void **state)
{
    (void)state;
    /* CA, certificate and key as base64 data (the *_BLOB options) */
    char *ca = b64_of("ca.crt"), *crt = b64_of("client.crt"), *key = b64_of("client.key");
    char *cluster = lo_sprintf("certificate-authority-data: %s", ca);
    char *user = lo_sprintf("client-certificate-data: %s, client-key-data: %s", crt, key);
    kube_client_t *c = client_with(NULL, cluster, user, &fast);
    json_t *got = NULL;
    lo_err_t err = {0};
    if (kube_get(c, "/echo", &got, &err) != KUBE_OK)
        fail_msg("%s", err.message);
    assert_string_equal(str_at(got, "clientCN"), "kc-client");
    assert_true(json_is_null(json_object_get(got, "authorization")));
    json_decref(got);
    kube_client_free(c);
    /* the same from files, by name "localhost" */
    char *url = lo_sprintf("https://localhost:%d", fk.port);
    c = client_with(url, "certificate-authority: ca.crt",
                    "client-certificate: client.crt, client-key: client.key", &fast);
    assert_int_equal(kube_get(c, "/echo", &got, &err), KUBE_OK);
    assert_string_equal(str_at(got, "clientCN"), "kc-client");
    json_decref(got);
    kube_client_free(c);
    free(url), free(ca), free(crt), free(key), free(cluster), free(user);
}

static void test_server_of_another_ca_refused(void **state)
{
    (void)state;
    kube_client_t *c = client_with(NULL, "certificate-authority: other-ca.crt", "token: t0k",
                                   &fast);
    kube_response_t r;
    lo_err_t err = {0};
    assert_int_equal(kube_request(c, "GET", "/echo", NULL, NULL, &r, &err), KUBE_ETRANSPORT);
    assert_int_equal(r.status, 0);
    assert_null(r.body);
    assert_int_equal(r.attempts, 1); /* never retried */
    assert_int_equal(err.code, 0);
    assert_string_equal(err.reason, "ServiceUnavailable");
    if (strstr(err.message, "certificate") == NULL)
        fail_msg("message: %s", err.message);
    kube_client_free(c);
    /* and with no CA at all: the system CAs do not know the fake's either */
    c = client_with(NULL, "name: x", "token: t0k", &fast);
    assert_int_equal(kube_request(c, "GET", "/echo", NULL, NULL, &r, &err), KUBE_ETRANSPORT);
    kube_client_free(c);
}

static void test_server_of_another_name_refused(void **state)
{
    (void)state;
    char *url = lo_sprintf("https://127.0.0.1:%d", fk.wrong_name_port);
    kube_client_t *c = client_with(url, "certificate-authority: ca.crt", "token: t0k", &fast);
    kube_response_t r;
    lo_err_t err = {0};
    assert_int_equal(kube_request(c, "GET", "/echo", NULL, NULL, &r, &err), KUBE_ETRANSPORT);
    assert_int_equal(r.attempts, 1);
    assert_null(r.body);
    kube_client_free(c);
    free(url);
}

static void test_token_file_unreadable(void **state)
{
    (void)state;
    char *tok = lo_sprintf("%s/token-once", fk.dir);
    FILE *f = fopen(tok, "w");
    fputs("x\n", f);
    fclose(f);
    kube_client_t *c = client_with(NULL, "certificate-authority: ca.crt", "tokenFile: token-once",
                                   &fast);
    unlink(tok);
    kube_response_t r;
    lo_err_t err = {0};
    assert_int_equal(kube_request(c, "GET", "/echo", NULL, NULL, &r, &err), KUBE_ETRANSPORT);
    assert_int_equal(r.attempts, 0); /* nothing sent without the token */
    assert_non_null(strstr(err.message, "token file"));
    kube_client_free(c);
    free(tok);
}

static void test_status_error_mapped(void **state)
{
    (void)state;
    kube_client_t *c = token_client();
    kube_response_t r;
    lo_err_t err = {0};
    assert_int_equal(kube_request(c, "GET", "/status/404", NULL, NULL, &r, &err), KUBE_EHTTP);
    assert_int_equal(r.status, 404);
    assert_int_equal(r.attempts, 1);
    assert_int_equal(err.code, 404);
    assert_string_equal(err.reason, "NotFound");
    assert_string_equal(err.message, "thing x: fake 404");
    assert_non_null(err.details);
    assert_string_equal(str_at(err.details, "kind"), "things");
    assert_string_equal(str_at(r.body, "kind"), "Status");
    json_decref(r.body);
    lo_err_clear(&err);
    json_t *obj = json_pack("{s:s}", "kind", "Thing");
    assert_int_equal(kube_request(c, "POST", "/status/409", NULL, obj, &r, &err), KUBE_EHTTP);
    assert_int_equal(err.code, 409);
    assert_string_equal(err.reason, "Conflict");
    json_decref(r.body);
    json_decref(obj);
    lo_err_clear(&err);
    kube_client_free(c);
}

static void test_methods_bodies_and_content_types(void **state)
{
    (void)state;
    kube_client_t *c = token_client();
    static const struct {
        const char *method, *ctype, *want_ctype;
    } cases[] = {
        {"POST", NULL, "application/json"},
        {"PUT", NULL, "application/json"},
        {"PATCH", "application/merge-patch+json", "application/merge-patch+json"},
        {"PATCH", "application/json-patch+json", "application/json-patch+json"},
        {"DELETE", NULL, "application/json"},
    };
    json_t *body = json_pack("{s:s,s:{s:s}}", "kind", "Thing", "metadata", "name", "n1");
    for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
        kube_response_t r;
        lo_err_t err = {0};
        assert_int_equal(kube_request(c, cases[i].method, "/echo", cases[i].ctype, body, &r, &err),
                         KUBE_OK);
        assert_int_equal(r.status, 200);
        assert_string_equal(str_at(r.body, "method"), cases[i].method);
        assert_string_equal(str_at(r.body, "contentType"), cases[i].want_ctype);
        json_t *sent = json_loads(str_at(r.body, "body"), 0, NULL);
        assert_true(json_equal(sent, body));
        json_decref(sent);
        json_decref(r.body);
    }
    json_decref(body);
    /* no body: no content type */
    kube_response_t r;
    lo_err_t err = {0};
    assert_int_equal(kube_request(c, "DELETE", "/echo", NULL, NULL, &r, &err), KUBE_OK);
    assert_true(json_is_null(json_object_get(r.body, "contentType")));
    json_decref(r.body);
    assert_int_equal(kube_request(c, "GET", "echo", NULL, NULL, &r, &err), KUBE_EINVAL);
    kube_client_free(c);
}

static long calls_of(kube_client_t *c, const char *key)
{
    char *path = lo_sprintf("/count?of=%s", key);
    json_t *got = NULL;
    lo_err_t err = {0};
    assert_int_equal(kube_get(c, path, &got, &err), KUBE_OK);
    long n = (long)json_integer_value(json_object_get(got, "calls"));
    json_decref(got);
    free(path);
    return n;
}

static void test_get_retried_on_429_with_retry_after(void **state)
{
    (void)state;
    kube_client_t *c = token_client();
    kube_response_t r;
    lo_err_t err = {0};
    int64_t t0 = lo_now_ms();
    assert_int_equal(kube_request(c, "GET", "/flaky/429?key=g429&n=1", NULL, NULL, &r, &err),
                     KUBE_OK);
    int64_t took = lo_now_ms() - t0;
    assert_int_equal(r.attempts, 2);
    assert_int_equal(json_integer_value(json_object_get(r.body, "calls")), 2);
    if (took < 950) /* Retry-After: 1 honoured, not the 10 ms backoff */
        fail_msg("retried after %lld ms", (long long)took);
    json_decref(r.body);
    kube_client_free(c);
}

static void test_get_retried_on_500_and_bounded(void **state)
{
    (void)state;
    kube_client_t *c = token_client();
    kube_response_t r;
    lo_err_t err = {0};
    assert_int_equal(kube_request(c, "GET", "/flaky/500?key=g500&n=2", NULL, NULL, &r, &err),
                     KUBE_OK);
    assert_int_equal(r.attempts, 3);
    json_decref(r.body);
    assert_int_equal(kube_request(c, "GET", "/flaky/503?key=many&n=100", NULL, NULL, &r, &err),
                     KUBE_EHTTP);
    assert_int_equal(r.attempts, 4); /* 1 + max_retries */
    assert_int_equal(calls_of(c, "many"), 4);
    assert_int_equal(err.code, 503);
    json_decref(r.body);
    lo_err_clear(&err);
    kube_client_free(c);
}

static void test_post_not_retried_once_sent(void **state)
{
    (void)state;
    kube_client_t *c = token_client();
    json_t *body = json_pack("{s:s}", "kind", "Thing");
    kube_response_t r;
    lo_err_t err = {0};
    assert_int_equal(kube_request(c, "POST", "/flaky/500?key=p500&n=1", NULL, body, &r, &err),
                     KUBE_EHTTP);
    assert_int_equal(r.attempts, 1);
    assert_int_equal(calls_of(c, "p500"), 1);
    assert_int_equal(err.code, 500);
    json_decref(r.body);
    lo_err_clear(&err);
    assert_int_equal(kube_request(c, "POST", "/flaky/429?key=p429&n=1", NULL, body, &r, &err),
                     KUBE_EHTTP);
    assert_int_equal(r.attempts, 1);
    assert_int_equal(calls_of(c, "p429"), 1);
    json_decref(r.body);
    lo_err_clear(&err);
    /* a 500 on PUT is not retried either; a 429 is (the server did nothing) */
    assert_int_equal(kube_request(c, "PUT", "/flaky/500?key=u500&n=1", NULL, body, &r, &err),
                     KUBE_EHTTP);
    assert_int_equal(calls_of(c, "u500"), 1);
    json_decref(r.body);
    lo_err_clear(&err);
    assert_int_equal(kube_request(c, "PUT", "/flaky/429?key=u429&n=1", NULL, body, &r, &err),
                     KUBE_OK);
    assert_int_equal(r.attempts, 2);
    json_decref(r.body);
    json_decref(body);
    kube_client_free(c);
}

static void test_timeout(void **state)
{
    (void)state;
    kube_client_options_t o = fast;
    o.timeout_ms = 300;
    o.max_retries = 1;
    kube_client_t *c = client_with(NULL, "certificate-authority: ca.crt", "token: t0k", &o);
    kube_response_t r;
    lo_err_t err = {0};
    int64_t t0 = lo_now_ms();
    assert_int_equal(kube_request(c, "GET", "/slow?ms=3000", NULL, NULL, &r, &err),
                     KUBE_ETIMEDOUT);
    int64_t took = lo_now_ms() - t0;
    assert_int_equal(r.attempts, 2); /* a GET is retried after a timeout */
    assert_string_equal(err.reason, "Timeout");
    assert_int_equal(err.code, 0);
    if (took > 2000)
        fail_msg("took %lld ms", (long long)took);
    json_t *body = json_pack("{s:s}", "kind", "Thing");
    assert_int_equal(kube_request(c, "POST", "/slow?ms=3000", NULL, body, &r, &err),
                     KUBE_ETIMEDOUT);
    assert_int_equal(r.attempts, 1); /* a POST that was sent is not */
    json_decref(body);
    kube_client_free(c);
}

static void test_connection_refused_retried_for_any_method(void **state)
{
    (void)state;
    /* a port nothing listens on */
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(a);
    assert_int_equal(bind(s, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(getsockname(s, (struct sockaddr *)&a, &len), 0);
    close(s);
    char *url = lo_sprintf("https://127.0.0.1:%d", ntohs(a.sin_port));
    kube_client_t *c = client_with(url, "certificate-authority: ca.crt", "token: t0k", &fast);
    json_t *body = json_pack("{s:s}", "kind", "Thing");
    kube_response_t r;
    lo_err_t err = {0};
    assert_int_equal(kube_request(c, "POST", "/echo", NULL, body, &r, &err), KUBE_ETRANSPORT);
    assert_int_equal(r.attempts, 4);
    assert_string_equal(err.reason, "ServiceUnavailable");
    json_decref(body);
    kube_client_free(c);
    free(url);
}

static void test_answer_not_json(void **state)
{
    (void)state;
    kube_client_t *c = token_client();
    json_t *got = NULL;
    lo_err_t err = {0};
    assert_int_equal(kube_get(c, "/notjson", &got, &err), KUBE_ETRANSPORT);
    assert_null(got);
    assert_non_null(strstr(err.message, "not JSON"));
    kube_client_free(c);
}

static void test_token_file_followed(void **state)
{
    (void)state;
    char *tok = lo_sprintf("%s/token", fk.dir);
    FILE *f = fopen(tok, "w");
    fputs("first\n", f);
    fclose(f);
    kube_client_t *c = client_with(NULL, "certificate-authority: ca.crt", "tokenFile: token",
                                   &fast);
    json_t *got = NULL;
    lo_err_t err = {0};
    assert_int_equal(kube_get(c, "/echo", &got, &err), KUBE_OK);
    assert_string_equal(str_at(got, "authorization"), "Bearer first");
    json_decref(got);
    f = fopen(tok, "w");
    fputs("second-token\n", f);
    fclose(f);
    assert_int_equal(kube_get(c, "/echo", &got, &err), KUBE_OK);
    assert_string_equal(str_at(got, "authorization"), "Bearer second-token");
    json_decref(got);
    kube_client_free(c);
    free(tok);
}

/* ---- threads ---- */

static void *get_many(void *arg)
{
    kube_client_t *c = arg;
    for (int i = 0; i < 10; i++) {
        json_t *got = NULL;
        lo_err_t err = {0};
        if (kube_get(c, "/echo", &got, &err) != KUBE_OK)
            return (void *)1;
        json_decref(got);
    }
    return NULL;
}

static void test_one_client_many_threads(void **state)
{
    (void)state;
    kube_client_t *c = client_with(NULL, "certificate-authority: ca.crt", "tokenFile: token",
                                   &fast);
    pthread_t th[4];
    for (int i = 0; i < 4; i++)
        assert_int_equal(pthread_create(&th[i], NULL, get_many, c), 0);
    for (int i = 0; i < 4; i++) {
        void *res;
        pthread_join(th[i], &res);
        assert_null(res);
    }
    kube_client_free(c);
}

/* ---- watch ---- */

typedef struct seen {
    char lines[16][64]; /* "TYPE name rv" */
    int n;
    int stop_after;     /* 0: never */
} seen_t;

static int record(void *arg, const char *type, json_t *object)
{
    seen_t *s = arg;
    json_t *md = json_object_get(object, "metadata");
    if (s->n < 16)
        snprintf(s->lines[s->n], sizeof(s->lines[0]), "%s %s %s", type, str_at(md, "name"),
                 str_at(md, "resourceVersion"));
    s->n++;
    return s->stop_after && s->n >= s->stop_after;
}

static void test_watch_events_split_across_chunks(void **state)
{
    (void)state;
    kube_client_t *c = token_client();
    seen_t s = {0};
    char *rv = NULL;
    lo_err_t err = {0};
    kube_watch_options_t o = {.resource_version = "5", .timeout_ms = 10000};
    int rc = kube_watch(c, "/watch", &o, record, &s, &rv, &err);
    if (rc != KUBE_OK)
        fail_msg("kube_watch %d: %s", rc, err.message);
    assert_int_equal(s.n, 4);
    assert_string_equal(s.lines[0], "ADDED a 11");
    assert_string_equal(s.lines[1], "MODIFIED a 12");
    assert_string_equal(s.lines[2], "DELETED b 13");
    assert_string_equal(s.lines[3], "BOOKMARK (none) 20");
    assert_string_equal(rv, "20");
    free(rv);
    /* a path with a query of its own */
    seen_t sel = {0};
    assert_int_equal(kube_watch(c, "/watch?labelSelector=a%3Db", &o, record, &sel, &rv, &err),
                     KUBE_OK);
    assert_int_equal(sel.n, 4);
    free(rv);
    /* the callback ends it */
    seen_t one = {.stop_after = 1};
    assert_int_equal(kube_watch(c, "/watch", &o, record, &one, &rv, &err), KUBE_OK);
    assert_int_equal(one.n, 1);
    assert_string_equal(rv, "11");
    free(rv);
    kube_client_free(c);
}

static void test_watch_gone(void **state)
{
    (void)state;
    kube_client_t *c = token_client();
    seen_t s = {0};
    char *rv = NULL;
    lo_err_t err = {0};
    kube_watch_options_t o = {.resource_version = "gone", .timeout_ms = 10000};
    assert_int_equal(kube_watch(c, "/watch", &o, record, &s, &rv, &err), KUBE_EGONE);
    assert_int_equal(s.n, 0);
    assert_int_equal(err.code, 410);
    assert_string_equal(rv, "gone");
    free(rv);
    lo_err_clear(&err);
    /* as an ERROR event in the stream, after one event */
    o.resource_version = "expired";
    assert_int_equal(kube_watch(c, "/watch", &o, record, &s, &rv, &err), KUBE_EGONE);
    assert_int_equal(s.n, 1);
    assert_int_equal(err.code, 410);
    assert_string_equal(err.reason, "Expired");
    assert_string_equal(rv, "11");
    free(rv);
    lo_err_clear(&err);
    kube_client_free(c);
}

static void test_watch_ends_on_timeout(void **state)
{
    (void)state;
    kube_client_t *c = token_client();
    seen_t s = {0};
    char *rv = NULL;
    lo_err_t err = {0};
    kube_watch_options_t o = {.resource_version = "hang", .timeout_ms = 1000};
    int64_t t0 = lo_now_ms();
    int rc = kube_watch(c, "/watch", &o, record, &s, &rv, &err);
    int64_t took = lo_now_ms() - t0;
    if (rc != KUBE_OK)
        fail_msg("kube_watch %d: %s", rc, err.message);
    assert_int_equal(s.n, 1);
    assert_string_equal(rv, "11");
    if (took < 900 || took > 4000)
        fail_msg("ended after %lld ms", (long long)took);
    free(rv);
    kube_client_free(c);
}

static atomic_int stop_flag;

static void *stop_soon(void *arg)
{
    (void)arg;
    usleep(300 * 1000);
    atomic_store(&stop_flag, 1);
    return NULL;
}

static void test_watch_ends_on_stop(void **state)
{
    (void)state;
    kube_client_t *c = token_client();
    seen_t s = {0};
    char *rv = NULL;
    lo_err_t err = {0};
    atomic_store(&stop_flag, 0);
    kube_watch_options_t o = {.resource_version = "hang", .timeout_ms = 30000, .stop = &stop_flag};
    pthread_t th;
    pthread_create(&th, NULL, stop_soon, NULL);
    int64_t t0 = lo_now_ms();
    assert_int_equal(kube_watch(c, "/watch", &o, record, &s, &rv, &err), KUBE_OK);
    int64_t took = lo_now_ms() - t0;
    pthread_join(th, NULL);
    assert_int_equal(s.n, 1);
    assert_string_equal(rv, "11");
    if (took > 2500)
        fail_msg("stopped after %lld ms", (long long)took);
    free(rv);
    kube_client_free(c);
}

static void test_watch_refused_by_another_ca(void **state)
{
    (void)state;
    kube_client_t *c = client_with(NULL, "certificate-authority: other-ca.crt", "token: t0k",
                                   &fast);
    seen_t s = {0};
    char *rv = NULL;
    lo_err_t err = {0};
    kube_watch_options_t o = {.resource_version = "5", .timeout_ms = 5000};
    assert_int_equal(kube_watch(c, "/watch", &o, record, &s, &rv, &err), KUBE_ETRANSPORT);
    assert_int_equal(s.n, 0);
    assert_string_equal(rv, "5");
    free(rv);
    kube_client_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_get_sends_the_token),
        cmocka_unit_test(test_client_certificate),
        cmocka_unit_test(test_server_of_another_ca_refused),
        cmocka_unit_test(test_server_of_another_name_refused),
        cmocka_unit_test(test_token_file_unreadable),
        cmocka_unit_test(test_status_error_mapped),
        cmocka_unit_test(test_methods_bodies_and_content_types),
        cmocka_unit_test(test_get_retried_on_429_with_retry_after),
        cmocka_unit_test(test_get_retried_on_500_and_bounded),
        cmocka_unit_test(test_post_not_retried_once_sent),
        cmocka_unit_test(test_timeout),
        cmocka_unit_test(test_connection_refused_retried_for_any_method),
        cmocka_unit_test(test_answer_not_json),
        cmocka_unit_test(test_token_file_followed),
        cmocka_unit_test(test_one_client_many_threads),
        cmocka_unit_test(test_watch_events_split_across_chunks),
        cmocka_unit_test(test_watch_gone),
        cmocka_unit_test(test_watch_ends_on_timeout),
        cmocka_unit_test(test_watch_ends_on_stop),
        cmocka_unit_test(test_watch_refused_by_another_ca),
    };
    return cmocka_run_group_tests(tests, start_fake, stop_fake);
}
