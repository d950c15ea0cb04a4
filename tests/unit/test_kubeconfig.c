/* test_kubeconfig.c - kubeconfig files, in-cluster config, token files (langop/kube/kubeconfig.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <fcntl.h>
#include <unistd.h>
#include <cmocka.h>

#include "langop/kube/kubeconfig.h"

typedef struct tmp {
    char dir[64];
} tmp_t;

static void write_at(const char *dir, const char *name, const char *text)
{
    char path[256];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    char *slash = strrchr(path, '/');
    *slash = '\0';
    mkdir(path, 0700);
    *slash = '/';
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static int setup(void **state)
{
    tmp_t *t = calloc(1, sizeof(*t));
    snprintf(t->dir, sizeof(t->dir), "/tmp/test_kubeconfig.XXXXXX");
    if (mkdtemp(t->dir) == NULL)
        return -1;
    *state = t;
    return 0;
}

static int teardown(void **state)
{
    tmp_t *t = *state;
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", t->dir);
    if (system(cmd) != 0)
        return -1;
    free(t);
    return 0;
}

static char *path_in(const tmp_t *t, const char *name)
{
    return lo_sprintf("%s/%s", t->dir, name);
}

/* Loads kubeconfig text written as "config" in t, asserting success. */
static kube_config_t *load_ok(const tmp_t *t, const char *text, const char *context)
{
    write_at(t->dir, "config", text);
    char *p = path_in(t, "config");
    lo_err_t err = {0};
    kube_config_t *c = kubeconfig_load_file(p, context, &err);
    if (c == NULL)
        fail_msg("kubeconfig_load_file: %s", err.message);
    free(p);
    return c;
}

/* Loads kubeconfig text, asserting a failure whose message contains want. */
static void load_bad(const tmp_t *t, const char *text, const char *want)
{
    write_at(t->dir, "config", text);
    char *p = path_in(t, "config");
    lo_err_t err = {0};
    kube_config_t *c = kubeconfig_load_file(p, NULL, &err);
    if (c != NULL)
        fail_msg("expected an error with \"%s\" for:\n%s", want, text);
    if (strstr(err.message, want) == NULL)
        fail_msg("message \"%s\" lacks \"%s\"", err.message, want);
    free(p);
    lo_err_clear(&err);
}

static void assert_blob(const kube_blob_t *b, const char *want)
{
    assert_non_null(b->data);
    assert_int_equal(b->len, strlen(want));
    assert_memory_equal(b->data, want, b->len);
}

/* base64: "CA PEM" = Q0EgUEVN, "CERT PEM" = Q0VSVCBQRU0=, "KEY PEM" = S0VZIFBFTQ== */
#define TWO_CONTEXTS                                          \
    "apiVersion: v1\n"                                        \
    "kind: Config\n"                                          \
    "current-context: second\n"                               \
    "contexts:\n"                                             \
    "- name: first\n"                                         \
    "  context: {cluster: c1, user: u1}\n"                    \
    "- name: second\n"                                        \
    "  context: {cluster: c2, user: u2}\n"                    \
    "clusters:\n"                                             \
    "- name: c1\n"                                            \
    "  cluster:\n"                                            \
    "    server: https://one.example:6443\n"                  \
    "    certificate-authority: ca.crt\n"                     \
    "- name: c2\n"                                            \
    "  cluster:\n"                                            \
    "    server: https://127.0.0.1:8443/\n"                   \
    "    certificate-authority-data: Q0EgUEVN\n"              \
    "users:\n"                                                \
    "- name: u1\n"                                            \
    "  user:\n"                                               \
    "    client-certificate: sub/client.crt\n"                \
    "    client-key: /ABS/client.key\n"                       \
    "    tokenFile: tok\n"                                    \
    "- name: u2\n"                                            \
    "  user:\n"                                               \
    "    client-certificate-data: Q0VSVCBQRU0=\n"             \
    "    client-key-data: S0VZIFBFTQ==\n"                     \
    "    token: abc.def\n"

/* TWO_CONTEXTS with /ABS replaced by t's folder. */
static char *two_contexts(const tmp_t *t)
{
    const char *src = TWO_CONTEXTS;
    const char *at = strstr(src, "/ABS");
    return lo_sprintf("%.*s%s%s", (int)(at - src), src, t->dir, at + 4);
}

static void write_files(const tmp_t *t)
{
    write_at(t->dir, "ca.crt", "ca\n");
    write_at(t->dir, "sub/client.crt", "cert\n");
    write_at(t->dir, "client.key", "key\n");
    write_at(t->dir, "tok", "file-token\n");
}

static void test_data_fields_of_current_context(void **state)
{
    tmp_t *t = *state;
    write_files(t);
    char *text = two_contexts(t);
    kube_config_t *c = load_ok(t, text, NULL);
    assert_string_equal(c->server, "https://127.0.0.1:8443");
    assert_blob(&c->ca, "CA PEM");
    assert_null(c->ca_file);
    assert_blob(&c->cert, "CERT PEM");
    assert_blob(&c->key, "KEY PEM");
    assert_null(c->cert_file);
    assert_null(c->key_file);
    assert_string_equal(c->token, "abc.def");
    assert_null(c->token_file);
    lo_err_t err = {0};
    char *tok = kubeconfig_token(c, &err);
    assert_string_equal(tok, "abc.def");
    free(tok);
    kubeconfig_free(c);
    free(text);
}

static void test_file_fields_relative_to_the_config(void **state)
{
    tmp_t *t = *state;
    write_files(t);
    char *text = two_contexts(t);
    kube_config_t *c = load_ok(t, text, "first");
    char *ca = path_in(t, "ca.crt"), *cert = path_in(t, "sub/client.crt"),
         *key = path_in(t, "client.key"), *tok = path_in(t, "tok");
    assert_string_equal(c->server, "https://one.example:6443");
    assert_null(c->ca.data);
    assert_string_equal(c->ca_file, ca);
    assert_string_equal(c->cert_file, cert);
    assert_string_equal(c->key_file, key);
    assert_null(c->token);
    assert_string_equal(c->token_file, tok);
    lo_err_t err = {0};
    char *got = kubeconfig_token(c, &err);
    assert_string_equal(got, "file-token");
    free(got);
    free(ca), free(cert), free(key), free(tok);
    kubeconfig_free(c);
    free(text);
}

static void test_relative_path_of_a_relative_config(void **state)
{
    tmp_t *t = *state;
    write_files(t);
    char *text = two_contexts(t);
    write_at(t->dir, "config", text);
    char cwd[4096];
    assert_non_null(getcwd(cwd, sizeof(cwd)));
    assert_int_equal(chdir("/tmp"), 0);
    char *rel = lo_sprintf("%s/config", t->dir + strlen("/tmp/"));
    lo_err_t err = {0};
    kube_config_t *c = kubeconfig_load_file(rel, "first", &err);
    assert_int_equal(chdir(cwd), 0);
    if (c == NULL)
        fail_msg("%s", err.message);
    char *ca = path_in(t, "ca.crt");
    assert_string_equal(c->ca_file, ca);
    free(ca);
    free(rel);
    kubeconfig_free(c);
    free(text);
}

static void test_data_wins_over_file(void **state)
{
    tmp_t *t = *state;
    kube_config_t *c = load_ok(t,
        "current-context: x\n"
        "contexts: [{name: x, context: {cluster: c, user: u}}]\n"
        "clusters: [{name: c, cluster: {server: 'https://h:1', certificate-authority: /no/such,"
        " certificate-authority-data: Q0EgUEVN}}]\n"
        "users: [{name: u, user: {}}]\n", NULL);
    assert_blob(&c->ca, "CA PEM");
    assert_null(c->ca_file);
    assert_null(c->cert.data);
    assert_null(c->token);
    lo_err_t err = {0};
    assert_null(kubeconfig_token(c, &err));
    kubeconfig_free(c);
}

static void test_json_kubeconfig(void **state)
{
    tmp_t *t = *state;
    kube_config_t *c = load_ok(t,
        "{\"current-context\":\"x\",\"contexts\":[{\"name\":\"x\",\"context\":{\"cluster\":\"c\"}}],"
        "\"clusters\":[{\"name\":\"c\",\"cluster\":{\"server\":\"https://h:2\"}}]}", NULL);
    assert_string_equal(c->server, "https://h:2");
    assert_null(c->ca.data);
    assert_null(c->ca_file);
    kubeconfig_free(c);
}

#define CTX "current-context: x\ncontexts: [{name: x, context: {cluster: c, user: u}}]\n"

static void test_missing_and_bad_fields(void **state)
{
    tmp_t *t = *state;
    load_bad(t, "clusters: []\n", "no current-context");
    load_bad(t, "current-context: y\ncontexts: [{name: x, context: {cluster: c}}]\n",
             "no context named y");
    load_bad(t, CTX "clusters: [{name: d, cluster: {server: 'https://h:1'}}]\n",
             "no cluster named c");
    load_bad(t, CTX "clusters: [{name: c, cluster: {server: 'https://h:1'}}]\n",
             "no user named u");
    load_bad(t, CTX "clusters: [{name: c, cluster: {}}]\nusers: [{name: u, user: {}}]\n",
             "cluster.server is missing");
    load_bad(t, CTX "clusters: [{name: c, cluster: {server: 'http://h:1'}}]\n"
             "users: [{name: u, user: {}}]\n", "is not an https:// URL");
    load_bad(t, CTX "clusters: [{name: c, cluster: {server: 'https://h:1',"
             " insecure-skip-tls-verify: true}}]\nusers: [{name: u, user: {}}]\n",
             "insecure-skip-tls-verify is not supported");
    load_bad(t, CTX "clusters: [{name: c, cluster: {server: 'https://h:1',"
             " certificate-authority-data: '%%%'}}]\nusers: [{name: u, user: {}}]\n",
             "cluster.certificate-authority-data is not valid base64");
    load_bad(t, CTX "clusters: [{name: c, cluster: {server: 'https://h:1',"
             " certificate-authority: nothere.crt}}]\nusers: [{name: u, user: {}}]\n",
             "cluster.certificate-authority");
    load_bad(t, CTX "clusters: [{name: c, cluster: {server: 'https://h:1'}}]\n"
             "users: [{name: u, user: {client-certificate-data: Q0EgUEVN}}]\n",
             "client certificate but no client key");
    load_bad(t, CTX "clusters: [{name: c, cluster: {server: 'https://h:1'}}]\n"
             "users: [{name: u, user: {tokenFile: gone}}]\n", "user.tokenFile");
    load_bad(t, CTX "clusters: [{name: c, cluster: {server: 7}}]\nusers: [{name: u, user: {}}]\n",
             "cluster.server must be a string");
    load_bad(t, "a: [unclosed\n", "kubeconfig");

    lo_err_t err = {0};
    assert_null(kubeconfig_load_file("/no/such/kubeconfig", NULL, &err));
    assert_non_null(strstr(err.message, "/no/such/kubeconfig"));
}

static void test_in_cluster(void **state)
{
    tmp_t *t = *state;
    write_at(t->dir, "sa/token", "sa-token-1\n");
    write_at(t->dir, "sa/ca.crt", "ca\n");
    char *tok = path_in(t, "sa/token"), *ca = path_in(t, "sa/ca.crt");
    lo_err_t err = {0};
    kube_incluster_t p = {.token_file = tok, .ca_file = ca, .host = "10.0.0.1", .port = "443"};
    kube_config_t *c = kubeconfig_in_cluster(&p, &err);
    if (c == NULL)
        fail_msg("%s", err.message);
    assert_string_equal(c->server, "https://10.0.0.1:443");
    assert_string_equal(c->ca_file, ca);
    assert_string_equal(c->token_file, tok);
    char *got = kubeconfig_token(c, &err);
    assert_string_equal(got, "sa-token-1");
    free(got);
    kubeconfig_free(c);

    p.host = "fd00::1";
    c = kubeconfig_in_cluster(&p, &err);
    assert_non_null(c);
    assert_string_equal(c->server, "https://[fd00::1]:443");
    kubeconfig_free(c);

    /* from the environment */
    p.host = p.port = NULL;
    setenv("KUBERNETES_SERVICE_HOST", "kube.local", 1);
    setenv("KUBERNETES_SERVICE_PORT", "6443", 1);
    c = kubeconfig_in_cluster(&p, &err);
    assert_non_null(c);
    assert_string_equal(c->server, "https://kube.local:6443");
    kubeconfig_free(c);
    unsetenv("KUBERNETES_SERVICE_PORT");
    assert_null(kubeconfig_in_cluster(&p, &err));
    assert_non_null(strstr(err.message, "KUBERNETES_SERVICE_HOST"));
    unsetenv("KUBERNETES_SERVICE_HOST");

    /* the files must be there */
    p.host = "h", p.port = "1";
    char *none = path_in(t, "sa/none");
    p.token_file = none;
    assert_null(kubeconfig_in_cluster(&p, &err));
    assert_non_null(strstr(err.message, "service account token"));
    p.token_file = tok, p.ca_file = none;
    assert_null(kubeconfig_in_cluster(&p, &err));
    assert_non_null(strstr(err.message, "service account CA"));
    free(none), free(tok), free(ca);
}

static void set_mtime(const char *path, long sec)
{
    struct timespec ts[2] = {{sec, 0}, {sec, 0}};
    assert_int_equal(utimensat(AT_FDCWD, path, ts, 0), 0);
}

static void assert_token(kube_config_t *c, const char *want)
{
    lo_err_t err = {0};
    char *got = kubeconfig_token(c, &err);
    if (got == NULL)
        fail_msg("no token: %s", err.message);
    assert_string_equal(got, want);
    free(got);
}

static void test_token_file_reread_when_it_changes(void **state)
{
    tmp_t *t = *state;
    write_at(t->dir, "sa/token", "aaaa\n");
    write_at(t->dir, "sa/ca.crt", "ca\n");
    char *tok = path_in(t, "sa/token"), *ca = path_in(t, "sa/ca.crt");
    kube_incluster_t p = {.token_file = tok, .ca_file = ca, .host = "h", .port = "1"};
    lo_err_t err = {0};
    kube_config_t *c = kubeconfig_in_cluster(&p, &err);
    assert_non_null(c);
    set_mtime(tok, 1000);
    assert_token(c, "aaaa");
    /* same size, same inode, new mtime */
    write_at(t->dir, "sa/token", "bbbb\n");
    set_mtime(tok, 2000);
    assert_token(c, "bbbb");
    /* a new file renamed over it (as the kubelet's atomic writer does), same mtime */
    write_at(t->dir, "sa/token.new", "cccc\n");
    char *fresh = path_in(t, "sa/token.new");
    set_mtime(fresh, 2000);
    assert_int_equal(rename(fresh, tok), 0);
    assert_token(c, "cccc");
    /* gone for a moment: the last token stays */
    assert_int_equal(unlink(tok), 0);
    assert_token(c, "cccc");
    write_at(t->dir, "sa/token", "a longer token\n");
    assert_token(c, "a longer token");
    kubeconfig_free(c);

    /* never readable: an error */
    unlink(tok);
    write_at(t->dir, "sa/token", "x");
    c = kubeconfig_in_cluster(&p, &err);
    assert_non_null(c);
    unlink(tok);
    assert_null(kubeconfig_token(c, &err));
    assert_non_null(strstr(err.message, "token file"));
    kubeconfig_free(c);
    free(fresh), free(tok), free(ca);
}

/*
 * A kubeconfig naming the service account's files (server, certificate-
 * authority, tokenFile) is the in-cluster configuration, field for field:
 * tests/tools/check_deploy.py reaches its stand-in cluster that way.
 */
static void test_kubeconfig_of_the_service_account_files_is_in_cluster(void **state)
{
    tmp_t *t = *state;
    write_at(t->dir, "sa/token", "sa-token-2\n");
    write_at(t->dir, "sa/ca.crt", "ca\n");
    char *tok = path_in(t, "sa/token"), *ca = path_in(t, "sa/ca.crt");
    char *text = lo_sprintf("apiVersion: v1\nkind: Config\ncurrent-context: c\n"
                            "clusters: [{name: k, cluster: {server: 'https://10.0.0.1:443', "
                            "certificate-authority: '%s'}}]\n"
                            "users: [{name: sa, user: {tokenFile: '%s'}}]\n"
                            "contexts: [{name: c, context: {cluster: k, user: sa}}]\n",
                            ca, tok);
    kube_config_t *f = load_ok(t, text, NULL);
    lo_err_t err = {0};
    kube_incluster_t p = {.token_file = tok, .ca_file = ca, .host = "10.0.0.1", .port = "443"};
    kube_config_t *c = kubeconfig_in_cluster(&p, &err);
    if (c == NULL)
        fail_msg("%s", err.message);
    kube_config_t *both[] = {f, c};
    for (int i = 0; i < 2; i++) {
        kube_config_t *k = both[i];
        assert_string_equal(k->server, "https://10.0.0.1:443");
        assert_string_equal(k->ca_file, ca);
        assert_string_equal(k->token_file, tok);
        assert_null(k->ca.data);
        assert_null(k->cert.data);
        assert_null(k->cert_file);
        assert_null(k->key.data);
        assert_null(k->key_file);
        assert_null(k->token);
        assert_token(k, "sa-token-2");
    }
    kubeconfig_free(f);
    kubeconfig_free(c);
    free(text), free(tok), free(ca);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_data_fields_of_current_context, setup, teardown),
        cmocka_unit_test_setup_teardown(test_file_fields_relative_to_the_config, setup, teardown),
        cmocka_unit_test_setup_teardown(test_relative_path_of_a_relative_config, setup, teardown),
        cmocka_unit_test_setup_teardown(test_data_wins_over_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_json_kubeconfig, setup, teardown),
        cmocka_unit_test_setup_teardown(test_missing_and_bad_fields, setup, teardown),
        cmocka_unit_test_setup_teardown(test_in_cluster, setup, teardown),
        cmocka_unit_test_setup_teardown(test_token_file_reread_when_it_changes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_kubeconfig_of_the_service_account_files_is_in_cluster, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
