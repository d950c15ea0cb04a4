/*
 * test_kubeclient.c - requests, retries, timeouts, TLS and watches
 * (langop/kube/kubeclient.h) against the kube-apiserver stand-in,
 * tests/standin/kube_standin.py, run as a process for the group.
 *
 * Every request goes to a real API path (the configmaps of the namespace
 * default, /healthz for an answer that is not JSON). Faults are injected
 * through the stand-in's /standin/faults; what reached it is read back from
 * /standin/calls and /standin/log, and what it holds from the API itself,
 * by a control client of its own User-Agent. The stand-in requires a
 * bearer token it knows (callerTokens) or a client certificate, as
 * kube-apiserver does. A second stand-in, on 127.0.0.2, serves the same
 * certificate, which names 127.0.0.1 and localhost only. The certificates
 * come from the stand-in's helpers (deploy/gen-certs.sh, openssl).
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
#include <unistd.h>
#include <cmocka.h>

#include "langop/kube/kubeclient.h"
#include "standin_process.h"

#define CMS "/api/v1/namespaces/default/configmaps"
#define CONTROL_AGENT "test-control"

static struct {
    char dir[64];         /* certificates, kubeconfigs, token files */
    standin_t main;       /* 127.0.0.1 */
    standin_t wrong_name; /* 127.0.0.2: not a name of the certificate */
    kube_client_t *ctl;   /* drives /standin/ and reads back what the stand-in holds */
} sx;

static char *in_dir(const char *name)
{
    return lo_sprintf("%s/%s", sx.dir, name);
}

/* ---- the stand-in's process ---- */

/* ca.crt (and .key), apiserver.crt/.key for 127.0.0.1 and localhost, a
 * client certificate of that CA (CN kc-client), and an unrelated other-ca.crt. */
static const char make_certs_py[] = STANDIN_PY_PRELUDE
    "k.make_serving_certs(d)\n"
    "k.make_client_cert(d, 'ca', 'client', 'kc-client')\n"
    "k.make_ca(d, 'other-ca')\n";

static kube_client_t *client_with(const char *server, const char *cluster_extra,
                                  const char *user_yaml, const kube_client_options_t *opts);
static json_t *jq(const char *text);
static json_t *ctl(const char *method, const char *path, json_t *body);

static const kube_client_options_t control_opts = {
    .timeout_ms = 10000, .max_retries = -1, .user_agent = CONTROL_AGENT,
};

static int stop_all(void **state)
{
    (void)state;
    kube_client_free(sx.ctl);
    sx.ctl = NULL;
    /* both at once: each takes up to half a second to shut down */
    standin_t *all[] = {&sx.main, &sx.wrong_name};
    for (int i = 0; i < 2; i++)
        standin_signal(all[i]);
    for (int i = 0; i < 2; i++)
        standin_reap(all[i]);
    char *cmd = lo_sprintf("rm -rf '%s'", sx.dir);
    int rc = system(cmd);
    free(cmd);
    return rc == 0 ? 0 : -1;
}

static int start_all(void **state)
{
    if (!standin_env_ok())
        return -1;
    snprintf(sx.dir, sizeof(sx.dir), "/tmp/test_kubeclient.XXXXXX");
    if (mkdtemp(sx.dir) == NULL)
        return -1;
    if (standin_python_in(make_certs_py, sx.dir) < 0 || standin_start(&sx.main, sx.dir, "127.0.0.1", NULL) < 0 ||
        standin_start(&sx.wrong_name, sx.dir, "127.0.0.2", NULL) < 0) {
        stop_all(state);
        return -1;
    }
    sx.ctl = client_with(NULL, "certificate-authority: ca.crt", "token: t0k", &control_opts);
    /* the tokens the tests' clients send; and one configmap to read */
    json_decref(ctl("PUT", "/standin/state",
                    jq("{'callerTokens': ['t0k', 'first', 'second-token'],"
                       " 'objects': [{'apiVersion': 'v1', 'kind': 'ConfigMap',"
                       "  'metadata': {'name': 'kc-seed', 'namespace': 'default'},"
                       "  'data': {'a': 'b'}}]}")));
    return 0;
}

/* Before each test: no faults left, counters and log empty. */
static int fresh(void **state)
{
    (void)state;
    json_decref(ctl("DELETE", "/standin/faults", NULL));
    json_decref(ctl("DELETE", "/standin/calls", NULL));
    return 0;
}

/* ---- clients ---- */

/*
 * A client from a kubeconfig whose cluster has server (NULL: the stand-in's
 * 127.0.0.1 URL) and cluster_extra, and whose user is user_yaml (flow
 * mapping body). Relative file names are in the test's folder.
 */
static kube_client_t *client_with(const char *server, const char *cluster_extra,
                                  const char *user_yaml, const kube_client_options_t *opts)
{
    char *text = lo_sprintf("current-context: t\n"
                            "contexts: [{name: t, context: {cluster: c, user: u}}]\n"
                            "clusters: [{name: c, cluster: {server: '%s', %s}}]\n"
                            "users: [{name: u, user: {%s}}]\n",
                            server ? server : sx.main.url, cluster_extra, user_yaml);
    char *path = in_dir("kubeconfig");
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

static void write_file(const char *name, const char *text)
{
    char *path = in_dir(name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    free(path);
}

/* ---- JSON and the stand-in's answers ---- */

/* JSON written with ' for ", to keep it readable in C. New reference. */
static json_t *jq(const char *text)
{
    char *s = lo_strdup(text);
    for (char *p = s; *p; p++)
        if (*p == '\'')
            *p = '"';
    json_error_t e;
    json_t *v = json_loads(s, JSON_DECODE_ANY, &e);
    if (v == NULL)
        fail_msg("jq: %s: %s", e.text, s);
    free(s);
    return v;
}

static const char *str_at(json_t *obj, const char *key)
{
    json_t *v = json_object_get(obj, key);
    return json_is_string(v) ? json_string_value(v) : "(none)";
}

static const char *rv_of(json_t *obj)
{
    return str_at(json_object_get(obj, "metadata"), "resourceVersion");
}

/* A request of the control client (a PATCH is a merge patch); its answer
 * (new reference). body is stolen. */
static json_t *ctl(const char *method, const char *path, json_t *body)
{
    kube_response_t r;
    lo_err_t err = {0};
    const char *ctype = strcmp(method, "PATCH") == 0 ? "application/merge-patch+json" : NULL;
    if (kube_request(sx.ctl, method, path, ctype, body, &r, &err) != KUBE_OK)
        fail_msg("control %s %s: %s", method, path, err.message);
    json_decref(body);
    return r.body;
}

static void add_fault(const char *fault_jq)
{
    json_decref(ctl("POST", "/standin/faults", jq(fault_jq)));
}

static void reset_calls(void)
{
    json_decref(ctl("DELETE", "/standin/calls", NULL));
}

/* How many METHOD path requests reached the stand-in since the last reset. */
static long calls_of(const char *method, const char *path)
{
    json_t *got = ctl("GET", "/standin/calls", NULL);
    char *key = lo_sprintf("%s %s", method, path);
    long n = (long)json_integer_value(json_object_get(json_object_get(got, "calls"), key));
    free(key);
    json_decref(got);
    return n;
}

/* The last request of the stand-in's log that was not the control client's. */
static json_t *last_request(void)
{
    json_t *log = ctl("GET", "/standin/log", NULL);
    json_t *reqs = json_object_get(log, "requests"), *last = NULL;
    for (size_t i = json_array_size(reqs); i-- > 0 && last == NULL;) {
        json_t *e = json_array_get(reqs, i);
        if (strcmp(str_at(e, "userAgent"), CONTROL_AGENT) != 0)
            last = json_incref(e);
    }
    json_decref(log);
    if (last == NULL)
        fail_msg("no request in the stand-in's log");
    return last;
}

/* The configmap name of the namespace default as the stand-in holds it, or NULL. */
static json_t *held(const char *name)
{
    char *path = lo_sprintf(CMS "/%s", name);
    kube_response_t r;
    lo_err_t err = {0};
    int rc = kube_request(sx.ctl, "GET", path, NULL, NULL, &r, &err);
    free(path);
    if (rc == KUBE_EHTTP && r.status == 404) {
        json_decref(r.body);
        lo_err_clear(&err);
        return NULL;
    }
    if (rc != KUBE_OK)
        fail_msg("held %s: %s", name, err.message);
    return r.body;
}

/* A configmap of the namespace default made by the control client; its rv (caller frees). */
static char *put_configmap(const char *name, const char *label)
{
    json_t *cm = json_pack("{s:s,s:s,s:{s:s,s:{s:s}}}", "apiVersion", "v1", "kind", "ConfigMap",
                           "metadata", "name", name, "labels", label, "1");
    json_t *got = ctl("POST", CMS, cm);
    char *rv = lo_strdup(rv_of(got));
    json_decref(got);
    return rv;
}

/* The resourceVersion of the configmap list now (caller frees): a watch from it sees what follows. */
static char *current_rv(void)
{
    json_t *got = ctl("GET", CMS, NULL);
    char *rv = lo_strdup(rv_of(got));
    json_decref(got);
    return rv;
}

/* ---- requests ---- */

static void test_get_sends_the_token(void **state)
{
    (void)state;
    kube_client_t *c = token_client();
    json_t *got = NULL;
    lo_err_t err = {0};
    assert_int_equal(kube_get(c, CMS "?labelSelector=a%3Db", &got, &err), KUBE_OK);
    assert_string_equal(str_at(got, "kind"), "ConfigMapList");
    json_decref(got);
    json_t *req = last_request();
    assert_string_equal(str_at(req, "method"), "GET");
    assert_string_equal(str_at(req, "path"), CMS);
    assert_string_equal(str_at(req, "query"), "labelSelector=a%3Db");
    assert_string_equal(str_at(req, "authorization"), "Bearer t0k");
    assert_non_null(strstr(str_at(req, "userAgent"), "langop-apiserver/"));
    assert_true(json_is_null(json_object_get(req, "clientCN")));
    json_decref(req);
    kube_client_free(c);
}

static char *b64_of(const char *name)
{
    char *path = in_dir(name);
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    char buf[16384];
    size_t n = fread(buf, 1, sizeof(buf), f);
    fclose(f);
    free(path);
    return lo_base64_encode(buf, n);
}

/* A GET of kc-seed with c succeeds, and the stand-in saw kc-client's certificate and no token. */
static void assert_seen_as_kc_client(kube_client_t *c)
{
    json_t *got = NULL;
    lo_err_t err = {0};
    if (kube_get(c, CMS "/kc-seed", &got, &err) != KUBE_OK)
        fail_msg("%s", err.message);
    assert_string_equal(str_at(json_object_get(got, "data"), "a"), "b");
    json_decref(got);
    json_t *req = last_request();
    assert_string_equal(str_at(req, "clientCN"), "kc-client");
    assert_true(json_is_null(json_object_get(req, "authorization")));
    json_decref(req);
}

static void test_client_certificate(void **state)
{
    (void)state;
    /* CA, certificate and key as base64 data (the *_BLOB options) */
    char *ca = b64_of("ca.crt"), *crt = b64_of("client.crt"), *key = b64_of("client.key");
    char *cluster = lo_sprintf("certificate-authority-data: %s", ca);
    char *user = lo_sprintf("client-certificate-data: %s, client-key-data: %s", crt, key);
    kube_client_t *c = client_with(NULL, cluster, user, &fast);
    assert_seen_as_kc_client(c);
    kube_client_free(c);
    /* the same from files, by name "localhost" */
    char *url = lo_sprintf("https://localhost:%d", sx.main.port);
    c = client_with(url, "certificate-authority: ca.crt",
                    "client-certificate: client.crt, client-key: client.key", &fast);
    assert_seen_as_kc_client(c);
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
    assert_int_equal(kube_request(c, "GET", CMS, NULL, NULL, &r, &err), KUBE_ETRANSPORT);
    assert_int_equal(r.status, 0);
    assert_null(r.body);
    assert_int_equal(r.attempts, 1); /* never retried */
    assert_int_equal(err.code, 0);
    assert_string_equal(err.reason, "ServiceUnavailable");
    if (strstr(err.message, "certificate") == NULL)
        fail_msg("message: %s", err.message);
    kube_client_free(c);
    /* and with no CA at all: the system CAs do not know the stand-in's either */
    c = client_with(NULL, "name: x", "token: t0k", &fast);
    assert_int_equal(kube_request(c, "GET", CMS, NULL, NULL, &r, &err), KUBE_ETRANSPORT);
    assert_int_equal(r.attempts, 1);
    kube_client_free(c);
    assert_int_equal(calls_of("GET", CMS), 0); /* no request got past TLS */
}

static void test_server_of_another_name_refused(void **state)
{
    (void)state;
    kube_client_t *c = client_with(sx.wrong_name.url, "certificate-authority: ca.crt",
                                   "token: t0k", &fast);
    kube_response_t r;
    lo_err_t err = {0};
    assert_int_equal(kube_request(c, "GET", CMS, NULL, NULL, &r, &err), KUBE_ETRANSPORT);
    assert_int_equal(r.attempts, 1);
    assert_null(r.body);
    if (strstr(err.message, "127.0.0.2") == NULL)
        fail_msg("message: %s", err.message);
    kube_client_free(c);
}

static void test_token_file_unreadable(void **state)
{
    (void)state;
    write_file("token-once", "x\n");
    kube_client_t *c = client_with(NULL, "certificate-authority: ca.crt", "tokenFile: token-once",
                                   &fast);
    char *tok = in_dir("token-once");
    unlink(tok);
    kube_response_t r;
    lo_err_t err = {0};
    assert_int_equal(kube_request(c, "GET", CMS, NULL, NULL, &r, &err), KUBE_ETRANSPORT);
    assert_int_equal(r.attempts, 0); /* nothing sent without the token */
    assert_non_null(strstr(err.message, "token file"));
    assert_int_equal(calls_of("GET", CMS), 0);
    kube_client_free(c);
    free(tok);
}

static void test_status_error_mapped(void **state)
{
    (void)state;
    kube_client_t *c = token_client();
    kube_response_t r;
    lo_err_t err = {0};
    assert_int_equal(kube_request(c, "GET", CMS "/missing", NULL, NULL, &r, &err), KUBE_EHTTP);
    assert_int_equal(r.status, 404);
    assert_int_equal(r.attempts, 1);
    assert_int_equal(err.code, 404);
    assert_string_equal(err.reason, "NotFound");
    assert_string_equal(err.message, "configmaps \"missing\" not found");
    assert_non_null(err.details);
    assert_string_equal(str_at(err.details, "kind"), "configmaps");
    assert_string_equal(str_at(err.details, "name"), "missing");
    assert_string_equal(str_at(r.body, "kind"), "Status");
    json_decref(r.body);
    lo_err_clear(&err);
    json_t *obj = jq("{'apiVersion': 'v1', 'kind': 'ConfigMap', 'metadata': {'name': 'kc-seed'}}");
    assert_int_equal(kube_request(c, "POST", CMS, NULL, obj, &r, &err), KUBE_EHTTP);
    assert_int_equal(err.code, 409);
    assert_string_equal(err.reason, "AlreadyExists");
    assert_string_equal(err.message, "configmaps \"kc-seed\" already exists");
    json_decref(r.body);
    json_decref(obj);
    lo_err_clear(&err);
    kube_client_free(c);
    /* a token the server does not know */
    c = client_with(NULL, "certificate-authority: ca.crt", "token: nobody", &fast);
    assert_int_equal(kube_request(c, "GET", CMS, NULL, NULL, &r, &err), KUBE_EHTTP);
    assert_int_equal(err.code, 401);
    assert_string_equal(err.reason, "Unauthorized");
    json_decref(r.body);
    lo_err_clear(&err);
    kube_client_free(c);
}

/* The Content-Type of the last request the stand-in had (NULL: none). */
static void assert_sent_content_type(const char *method, const char *want)
{
    json_t *req = last_request();
    assert_string_equal(str_at(req, "method"), method);
    json_t *ct = json_object_get(req, "contentType");
    if (want == NULL && !json_is_null(ct))
        fail_msg("%s sent Content-Type %s", method, json_string_value(ct));
    if (want)
        assert_string_equal(str_at(req, "contentType"), want);
    json_decref(req);
}

static void test_methods_bodies_and_content_types(void **state)
{
    (void)state;
    kube_client_t *c = token_client();
    /* each write, then the data the stand-in holds */
    static const struct {
        const char *method, *path, *ctype, *body, *want_ctype, *want_data;
    } steps[] = {
        {"POST", CMS, NULL,
         "{'apiVersion': 'v1', 'kind': 'ConfigMap', 'metadata': {'name': 'm1'}, 'data': {'a': '1'}}",
         "application/json", "{'a': '1'}"},
        {"PUT", CMS "/m1", NULL,
         "{'apiVersion': 'v1', 'kind': 'ConfigMap', 'metadata': {'name': 'm1'}, 'data': {'a': '2'}}",
         "application/json", "{'a': '2'}"},
        {"PATCH", CMS "/m1", "application/merge-patch+json", "{'data': {'b': '3'}}",
         "application/merge-patch+json", "{'a': '2', 'b': '3'}"},
        {"PATCH", CMS "/m1", "application/json-patch+json",
         "[{'op': 'remove', 'path': '/data/a'}]", "application/json-patch+json", "{'b': '3'}"},
        {"PATCH", CMS "/m1?fieldManager=kc-test", "application/apply-patch+yaml",
         "{'apiVersion': 'v1', 'kind': 'ConfigMap', 'metadata': {'name': 'm1'}, 'data': {'c': '4'}}",
         "application/apply-patch+yaml", "{'b': '3', 'c': '4'}"},
    };
    for (size_t i = 0; i < sizeof(steps) / sizeof(*steps); i++) {
        json_t *body = jq(steps[i].body), *want = jq(steps[i].want_data);
        kube_response_t r;
        lo_err_t err = {0};
        if (kube_request(c, steps[i].method, steps[i].path, steps[i].ctype, body, &r, &err) !=
            KUBE_OK)
            fail_msg("%s %s: %s", steps[i].method, steps[i].path, err.message);
        assert_int_equal(r.status, i == 0 ? 201 : 200);
        assert_string_equal(str_at(json_object_get(r.body, "metadata"), "name"), "m1");
        assert_sent_content_type(steps[i].method, steps[i].want_ctype);
        json_t *now = held("m1");
        if (!json_equal(json_object_get(now, "data"), want))
            fail_msg("after %s %s: data %s", steps[i].method, steps[i].ctype,
                     json_dumps(json_object_get(now, "data"), JSON_COMPACT));
        json_decref(now);
        json_decref(r.body);
        json_decref(body);
        json_decref(want);
    }
    json_t *m1 = held("m1");
    json_t *managers = json_object_get(json_object_get(m1, "metadata"), "managedFields");
    assert_string_equal(str_at(json_array_get(managers, 0), "manager"), "kc-test");
    json_decref(m1);
    /* DELETE with a body: DeleteOptions, whose precondition the stand-in checks */
    json_t *opts = jq("{'kind': 'DeleteOptions', 'apiVersion': 'v1',"
                      " 'preconditions': {'resourceVersion': '1'}}");
    kube_response_t r;
    lo_err_t err = {0};
    assert_int_equal(kube_request(c, "DELETE", CMS "/m1", NULL, opts, &r, &err), KUBE_EHTTP);
    assert_int_equal(err.code, 409);
    assert_sent_content_type("DELETE", "application/json");
    json_decref(r.body);
    json_decref(opts);
    lo_err_clear(&err);
    /* and without: no content type */
    assert_int_equal(kube_request(c, "DELETE", CMS "/m1", NULL, NULL, &r, &err), KUBE_OK);
    assert_string_equal(str_at(r.body, "status"), "Success");
    assert_sent_content_type("DELETE", NULL);
    assert_null(held("m1"));
    json_decref(r.body);
    assert_int_equal(kube_request(c, "GET", "api/v1/namespaces", NULL, NULL, &r, &err),
                     KUBE_EINVAL);
    kube_client_free(c);
}

/* ---- retries ---- */

static void test_get_retried_on_429_with_retry_after(void **state)
{
    (void)state;
    add_fault("{'action': '429', 'method': 'GET', 'path': '" CMS "/kc-seed', 'retryAfter': 1}");
    kube_client_t *c = token_client();
    kube_response_t r;
    lo_err_t err = {0};
    int64_t t0 = lo_now_ms();
    assert_int_equal(kube_request(c, "GET", CMS "/kc-seed", NULL, NULL, &r, &err), KUBE_OK);
    int64_t took = lo_now_ms() - t0;
    assert_int_equal(r.attempts, 2);
    assert_int_equal(calls_of("GET", CMS "/kc-seed"), 2);
    assert_string_equal(str_at(r.body, "kind"), "ConfigMap");
    if (took < 950) /* Retry-After: 1 honoured, not the 10 ms backoff */
        fail_msg("retried after %lld ms", (long long)took);
    json_decref(r.body);
    kube_client_free(c);
}

static void test_get_retried_on_500_and_bounded(void **state)
{
    (void)state;
    add_fault("{'action': '500', 'method': 'GET', 'path': '" CMS "/kc-seed', 'count': 2}");
    kube_client_t *c = token_client();
    kube_response_t r;
    lo_err_t err = {0};
    assert_int_equal(kube_request(c, "GET", CMS "/kc-seed", NULL, NULL, &r, &err), KUBE_OK);
    assert_int_equal(r.attempts, 3);
    assert_int_equal(calls_of("GET", CMS "/kc-seed"), 3);
    json_decref(r.body);
    add_fault("{'action': '500', 'method': 'GET', 'path': '" CMS "', 'count': 100}");
    assert_int_equal(kube_request(c, "GET", CMS, NULL, NULL, &r, &err), KUBE_EHTTP);
    assert_int_equal(r.attempts, 4); /* 1 + max_retries */
    assert_int_equal(calls_of("GET", CMS), 4);
    assert_int_equal(err.code, 500);
    assert_string_equal(err.reason, "InternalError");
    json_decref(r.body);
    lo_err_clear(&err);
    kube_client_free(c);
}

static json_t *configmap(const char *name)
{
    return json_pack("{s:s,s:s,s:{s:s},s:{s:s}}", "apiVersion", "v1", "kind", "ConfigMap",
                     "metadata", "name", name, "data", "k", "v");
}

static void test_post_not_retried_once_sent(void **state)
{
    (void)state;
    kube_client_t *c = token_client();
    json_t *p500 = configmap("p500"), *p429 = configmap("p429");
    kube_response_t r;
    lo_err_t err = {0};
    add_fault("{'action': '500', 'method': 'POST', 'path': '" CMS "'}");
    assert_int_equal(kube_request(c, "POST", CMS, NULL, p500, &r, &err), KUBE_EHTTP);
    assert_int_equal(r.attempts, 1);
    assert_int_equal(err.code, 500);
    json_decref(r.body);
    lo_err_clear(&err);
    add_fault("{'action': '429', 'method': 'POST', 'path': '" CMS "'}");
    assert_int_equal(kube_request(c, "POST", CMS, NULL, p429, &r, &err), KUBE_EHTTP);
    assert_int_equal(r.attempts, 1);
    assert_int_equal(err.code, 429);
    json_decref(r.body);
    lo_err_clear(&err);
    assert_int_equal(calls_of("POST", CMS), 2);
    assert_null(held("p500")); /* a retry would have made them */
    assert_null(held("p429"));
    /* a 500 on PUT is not retried either; a 429 is (the server did nothing) */
    json_t *seed = held("kc-seed");
    json_object_set_new(seed, "data", jq("{'a': 'put'}"));
    add_fault("{'action': '500', 'method': 'PUT', 'path': '" CMS "/kc-seed'}");
    assert_int_equal(kube_request(c, "PUT", CMS "/kc-seed", NULL, seed, &r, &err), KUBE_EHTTP);
    assert_int_equal(calls_of("PUT", CMS "/kc-seed"), 1);
    json_decref(r.body);
    lo_err_clear(&err);
    add_fault("{'action': '429', 'method': 'PUT', 'path': '" CMS "/kc-seed'}");
    assert_int_equal(kube_request(c, "PUT", CMS "/kc-seed", NULL, seed, &r, &err), KUBE_OK);
    assert_int_equal(r.attempts, 2);
    assert_string_equal(str_at(json_object_get(r.body, "data"), "a"), "put");
    json_decref(r.body);
    json_decref(seed);
    json_decref(p500);
    json_decref(p429);
    kube_client_free(c);
}

static void test_dropped_connection_retried_for_get_only(void **state)
{
    (void)state;
    /* the stand-in read the request, then closed the connection: no answer */
    add_fault("{'action': 'drop', 'path': '" CMS "'}");
    kube_client_t *c = token_client();
    kube_response_t r;
    lo_err_t err = {0};
    assert_int_equal(kube_request(c, "GET", CMS, NULL, NULL, &r, &err), KUBE_OK);
    assert_int_equal(r.attempts, 2);
    json_decref(r.body);
    add_fault("{'action': 'drop', 'path': '" CMS "'}");
    json_t *body = configmap("dropped");
    assert_int_equal(kube_request(c, "POST", CMS, NULL, body, &r, &err), KUBE_ETRANSPORT);
    assert_int_equal(r.attempts, 1); /* done or not, nobody knows: not again */
    assert_int_equal(r.status, 0);
    assert_string_equal(err.reason, "ServiceUnavailable");
    assert_int_equal(calls_of("POST", CMS), 1);
    assert_null(held("dropped"));
    json_decref(body);
    /* nor a PUT: only GET is retried after the request was sent */
    json_t *seed = held("kc-seed");
    add_fault("{'action': 'drop', 'path': '" CMS "/kc-seed'}");
    assert_int_equal(kube_request(c, "PUT", CMS "/kc-seed", NULL, seed, &r, &err),
                     KUBE_ETRANSPORT);
    assert_int_equal(r.attempts, 1);
    assert_int_equal(calls_of("PUT", CMS "/kc-seed"), 1);
    json_decref(seed);
    kube_client_free(c);
}

static void test_timeout(void **state)
{
    (void)state;
    kube_client_options_t o = fast;
    o.timeout_ms = 300;
    o.max_retries = 1;
    kube_client_t *c = client_with(NULL, "certificate-authority: ca.crt", "token: t0k", &o);
    add_fault("{'action': 'delay', 'delay': 3, 'method': 'GET', 'path': '" CMS "/kc-seed',"
              " 'count': 2}");
    kube_response_t r;
    lo_err_t err = {0};
    int64_t t0 = lo_now_ms();
    assert_int_equal(kube_request(c, "GET", CMS "/kc-seed", NULL, NULL, &r, &err),
                     KUBE_ETIMEDOUT);
    int64_t took = lo_now_ms() - t0;
    assert_int_equal(r.attempts, 2); /* a GET is retried after a timeout */
    assert_int_equal(calls_of("GET", CMS "/kc-seed"), 2);
    assert_string_equal(err.reason, "Timeout");
    assert_int_equal(err.code, 0);
    if (took > 2000)
        fail_msg("took %lld ms", (long long)took);
    add_fault("{'action': 'delay', 'delay': 3, 'method': 'POST', 'path': '" CMS "'}");
    json_t *body = configmap("slow-post");
    assert_int_equal(kube_request(c, "POST", CMS, NULL, body, &r, &err), KUBE_ETIMEDOUT);
    assert_int_equal(r.attempts, 1); /* a POST that was sent is not */
    assert_int_equal(calls_of("POST", CMS), 1);
    json_decref(body);
    /* the stand-in still does the write, 3 s late: let it land before the tests that follow count versions */
    for (int i = 0; i < 100; i++) {
        kube_response_t g = {0};
        lo_err_t gerr = {0};
        int got = kube_request(c, "GET", CMS "/slow-post", NULL, NULL, &g, &gerr) == KUBE_OK;
        json_decref(g.body);
        lo_err_clear(&gerr);
        if (got)
            break;
        usleep(50 * 1000);
    }
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
    json_t *body = configmap("refused");
    kube_response_t r;
    lo_err_t err = {0};
    assert_int_equal(kube_request(c, "POST", CMS, NULL, body, &r, &err), KUBE_ETRANSPORT);
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
    assert_int_equal(kube_get(c, "/healthz", &got, &err), KUBE_ETRANSPORT); /* "ok" */
    assert_null(got);
    assert_non_null(strstr(err.message, "not JSON"));
    kube_client_free(c);
}

static void assert_sent_token(kube_client_t *c, const char *want)
{
    json_t *got = NULL;
    lo_err_t err = {0};
    if (kube_get(c, CMS "/kc-seed", &got, &err) != KUBE_OK)
        fail_msg("%s", err.message);
    json_decref(got);
    json_t *req = last_request();
    assert_string_equal(str_at(req, "authorization"), want);
    json_decref(req);
}

static void test_token_file_followed(void **state)
{
    (void)state;
    write_file("token", "first\n");
    kube_client_t *c = client_with(NULL, "certificate-authority: ca.crt", "tokenFile: token",
                                   &fast);
    assert_sent_token(c, "Bearer first");
    write_file("token", "second-token\n"); /* as the kubelet rotates it */
    assert_sent_token(c, "Bearer second-token");
    kube_client_free(c);
}

/* ---- threads ---- */

static void *get_many(void *arg)
{
    kube_client_t *c = arg;
    for (int i = 0; i < 10; i++) {
        json_t *got = NULL;
        lo_err_t err = {0};
        if (kube_get(c, CMS "/kc-seed", &got, &err) != KUBE_OK)
            return (void *)1;
        json_decref(got);
    }
    return NULL;
}

static void test_one_client_many_threads(void **state)
{
    (void)state;
    write_file("token-threads", "t0k\n");
    kube_client_t *c = client_with(NULL, "certificate-authority: ca.crt",
                                   "tokenFile: token-threads", &fast);
    pthread_t th[4];
    for (int i = 0; i < 4; i++)
        assert_int_equal(pthread_create(&th[i], NULL, get_many, c), 0);
    for (int i = 0; i < 4; i++) {
        void *res;
        pthread_join(th[i], &res);
        assert_null(res);
    }
    assert_int_equal(calls_of("GET", CMS "/kc-seed"), 40);
    kube_client_free(c);
}

/* ---- watch ---- */

typedef struct seen {
    char what[8][48]; /* "TYPE name" */
    char rv[8][24];
    int n;
    int stop_after;   /* 0: never */
} seen_t;

static int record(void *arg, const char *type, json_t *object)
{
    seen_t *s = arg;
    json_t *md = json_object_get(object, "metadata");
    if (s->n < 8) {
        snprintf(s->what[s->n], sizeof(s->what[0]), "%s %s", type, str_at(md, "name"));
        snprintf(s->rv[s->n], sizeof(s->rv[0]), "%s", str_at(md, "resourceVersion"));
    }
    s->n++;
    return s->stop_after && s->n >= s->stop_after;
}

static void test_watch_events_in_order_split_across_chunks(void **state)
{
    (void)state;
    char *rv0 = current_rv();
    char *rv_a = put_configmap("w-a", "w");
    free(put_configmap("w-b", "w"));
    json_decref(ctl("PATCH", CMS "/w-a", jq("{'data': {'k': 'v'}}")));
    json_decref(ctl("DELETE", CMS "/w-b", NULL));
    char *rv_last = put_configmap("w-other", "not-w"); /* not watched: the bookmark's rv */
    static const char *const want[] = {"ADDED w-a", "ADDED w-b", "MODIFIED w-a", "DELETED w-b",
                                       "BOOKMARK (none)"};
    kube_client_t *c = token_client();
    /* cut in pieces of 7 bytes, then in chunks of 1000 that hold several events */
    static const int sizes[] = {7, 1000};
    for (int i = 0; i < 2; i++) {
        char *fault = lo_sprintf("{'action': 'split', 'size': %d, 'method': 'GET',"
                                 " 'path': '" CMS "'}", sizes[i]);
        add_fault(fault);
        free(fault);
        /* the stand-in sends a bookmark 2 s before a 3 s watch ends; the first
         * run waits for it, the second ends after the events */
        seen_t s = {.stop_after = i == 0 ? 5 : 4};
        kube_watch_options_t o = {.resource_version = rv0, .timeout_ms = 3000};
        char *rv = NULL;
        lo_err_t err = {0};
        int rc = kube_watch(c, CMS "?labelSelector=w%3D1", &o, record, &s, &rv, &err);
        if (rc != KUBE_OK)
            fail_msg("kube_watch %d: %s", rc, err.message);
        assert_int_equal(s.n, s.stop_after);
        for (int k = 0; k < s.n; k++)
            assert_string_equal(s.what[k], want[k]);
        for (int k = 1; k < s.n; k++)
            assert_true(atol(s.rv[k - 1]) < atol(s.rv[k]));
        assert_string_equal(s.rv[0], rv_a);
        assert_string_equal(rv, s.rv[s.n - 1]);
        if (i == 0)
            assert_string_equal(rv, rv_last); /* the bookmark's */
        free(rv);
    }
    json_t *faults = ctl("GET", "/standin/faults", NULL);
    assert_int_equal(json_array_size(json_object_get(faults, "faults")), 0); /* both used */
    json_decref(faults);
    /* the callback ends it */
    seen_t one = {.stop_after = 1};
    kube_watch_options_t o = {.resource_version = rv0, .timeout_ms = 3000};
    char *rv = NULL;
    lo_err_t err = {0};
    assert_int_equal(kube_watch(c, CMS "?labelSelector=w%3D1", &o, record, &one, &rv, &err),
                     KUBE_OK);
    assert_int_equal(one.n, 1);
    assert_string_equal(rv, rv_a);
    free(rv);
    free(rv0), free(rv_a), free(rv_last);
    kube_client_free(c);
}

static void test_watch_gone(void **state)
{
    (void)state;
    char *rv0 = current_rv();
    free(put_configmap("g-a", "g"));
    json_decref(ctl("POST", "/standin/compact", NULL)); /* rv0 is history now */
    kube_client_t *c = token_client();
    seen_t s = {0};
    char *rv = NULL;
    lo_err_t err = {0};
    kube_watch_options_t o = {.resource_version = rv0, .timeout_ms = 10000};
    /* kube answers 200 and a stream of one ERROR event with a 410 Status */
    assert_int_equal(kube_watch(c, CMS "?labelSelector=g%3D1", &o, record, &s, &rv, &err),
                     KUBE_EGONE);
    assert_int_equal(s.n, 0);
    assert_int_equal(err.code, 410);
    assert_string_equal(err.reason, "Expired");
    assert_string_equal(rv, rv0);
    free(rv);
    lo_err_clear(&err);
    free(rv0);
    kube_client_free(c);
}

static void test_watch_ends_on_timeout(void **state)
{
    (void)state;
    char *rv0 = current_rv();
    char *rv_a = put_configmap("t-a", "t"); /* one event, then nothing */
    kube_client_t *c = token_client();
    seen_t s = {0};
    char *rv = NULL;
    lo_err_t err = {0};
    kube_watch_options_t o = {.resource_version = rv0, .timeout_ms = 1000};
    int64_t t0 = lo_now_ms();
    int rc = kube_watch(c, CMS "?labelSelector=t%3D1", &o, record, &s, &rv, &err);
    int64_t took = lo_now_ms() - t0;
    if (rc != KUBE_OK)
        fail_msg("kube_watch %d: %s", rc, err.message);
    assert_int_equal(s.n, 1); /* no bookmark in a watch this short, as kube */
    assert_string_equal(rv, rv_a);
    if (took < 900 || took > 4000)
        fail_msg("ended after %lld ms", (long long)took);
    free(rv), free(rv0), free(rv_a);
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
    char *rv0 = current_rv();
    char *rv_a = put_configmap("s-a", "s");
    kube_client_t *c = token_client();
    seen_t s = {0};
    char *rv = NULL;
    lo_err_t err = {0};
    atomic_store(&stop_flag, 0);
    kube_watch_options_t o = {.resource_version = rv0, .timeout_ms = 30000, .stop = &stop_flag};
    pthread_t th;
    pthread_create(&th, NULL, stop_soon, NULL);
    int64_t t0 = lo_now_ms();
    assert_int_equal(kube_watch(c, CMS "?labelSelector=s%3D1", &o, record, &s, &rv, &err),
                     KUBE_OK);
    int64_t took = lo_now_ms() - t0;
    pthread_join(th, NULL);
    assert_int_equal(s.n, 1);
    assert_string_equal(rv, rv_a);
    if (took > 2500)
        fail_msg("stopped after %lld ms", (long long)took);
    free(rv), free(rv0), free(rv_a);
    kube_client_free(c);
}

static void test_watch_broken_stream(void **state)
{
    (void)state;
    char *rv0 = current_rv();
    char *rv_a = put_configmap("b-a", "b");
    free(put_configmap("b-b", "b"));
    reset_calls();
    kube_client_t *c = token_client();
    kube_watch_options_t o = {.resource_version = rv0, .timeout_ms = 5000};
    char *rv = NULL;
    lo_err_t err = {0};
    /* dropped before it answered: opened again */
    add_fault("{'action': 'drop', 'method': 'GET', 'path': '" CMS "'}");
    seen_t s = {.stop_after = 2};
    assert_int_equal(kube_watch(c, CMS "?labelSelector=b%3D1", &o, record, &s, &rv, &err),
                     KUBE_OK);
    assert_int_equal(s.n, 2);
    assert_int_equal(calls_of("GET", CMS), 2);
    free(rv);
    /* cut after one event: the call ends, with where to resume */
    reset_calls();
    add_fault("{'action': 'drop', 'after': 1, 'method': 'GET', 'path': '" CMS "'}");
    seen_t cut = {0};
    assert_int_equal(kube_watch(c, CMS "?labelSelector=b%3D1", &o, record, &cut, &rv, &err),
                     KUBE_ETRANSPORT);
    assert_int_equal(cut.n, 1);
    assert_string_equal(rv, rv_a);
    assert_int_equal(calls_of("GET", CMS), 1);
    free(rv), free(rv0), free(rv_a);
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
    assert_int_equal(kube_watch(c, CMS, &o, record, &s, &rv, &err), KUBE_ETRANSPORT);
    assert_int_equal(s.n, 0);
    assert_string_equal(rv, "5");
    assert_int_equal(calls_of("GET", CMS), 0);
    free(rv);
    kube_client_free(c);
}

static void *abort_soon(void *arg)
{
    usleep(300 * 1000);
    kube_client_abort(arg);
    return NULL;
}

/* A request waiting on a server that does not answer, and a watch, end at once on kube_client_abort. */
static void test_abort_ends_calls_in_flight(void **state)
{
    (void)state;
    kube_client_options_t o = fast;
    o.timeout_ms = 20000;
    kube_client_t *c = client_with(NULL, "certificate-authority: ca.crt", "token: t0k", &o);
    add_fault("{'action': 'delay', 'delay': 10, 'method': 'GET', 'path': '" CMS "/kc-seed'}");
    pthread_t th;
    pthread_create(&th, NULL, abort_soon, c);
    kube_response_t r;
    lo_err_t err = {0};
    int64_t t0 = lo_now_ms();
    assert_int_equal(kube_request(c, "GET", CMS "/kc-seed", NULL, NULL, &r, &err), KUBE_ETRANSPORT);
    int64_t took = lo_now_ms() - t0;
    pthread_join(th, NULL);
    assert_int_equal(r.attempts, 1); /* not retried */
    if (took > 2000)
        fail_msg("the request ended %lld ms after it began", (long long)took);
    /* after: every call fails at once, a watch too */
    t0 = lo_now_ms();
    assert_int_equal(kube_request(c, "GET", CMS, NULL, NULL, &r, &err), KUBE_ETRANSPORT);
    seen_t s = {0};
    kube_watch_options_t wo = {.timeout_ms = 30000};
    char *rv = NULL;
    assert_int_not_equal(kube_watch(c, CMS, &wo, record, &s, &rv, &err), KUBE_EINVAL);
    if (lo_now_ms() - t0 > 1500)
        fail_msg("calls after the abort took %lld ms", (long long)(lo_now_ms() - t0));
    assert_int_equal(s.n, 0);
    free(rv);
    kube_client_free(c);
}

#define TEST(f) cmocka_unit_test_setup(f, fresh)

int main(void)
{
    const struct CMUnitTest tests[] = {
        TEST(test_get_sends_the_token),
        TEST(test_client_certificate),
        TEST(test_server_of_another_ca_refused),
        TEST(test_server_of_another_name_refused),
        TEST(test_token_file_unreadable),
        TEST(test_status_error_mapped),
        TEST(test_methods_bodies_and_content_types),
        TEST(test_get_retried_on_429_with_retry_after),
        TEST(test_get_retried_on_500_and_bounded),
        TEST(test_post_not_retried_once_sent),
        TEST(test_dropped_connection_retried_for_get_only),
        TEST(test_timeout),
        TEST(test_connection_refused_retried_for_any_method),
        TEST(test_answer_not_json),
        TEST(test_token_file_followed),
        TEST(test_one_client_many_threads),
        TEST(test_watch_events_in_order_split_across_chunks),
        TEST(test_watch_gone),
        TEST(test_watch_ends_on_timeout),
        TEST(test_watch_ends_on_stop),
        TEST(test_watch_broken_stream),
        TEST(test_watch_refused_by_another_ca),
        TEST(test_abort_ends_calls_in_flight),
    };
    return cmocka_run_group_tests(tests, start_all, stop_all);
}
