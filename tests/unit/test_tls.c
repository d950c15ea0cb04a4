/* test_tls.c - TLS options and the serving pair's reload (langop/http/tls.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "langop/http/server.h"
#include "langop/http/tls.h"

static const h2o_iovec_t alpn[] = {{"h2", 2}, {"http/1.1", 8}, {NULL, 0}};

static void test_min_version(void **state)
{
    (void)state;
    lo_err_t err = {0};
    int v = 0;
    assert_int_equal(tls_parse_min_version("VersionTLS12", &v, &err), 0);
    assert_int_equal(v, TLS1_2_VERSION);
    assert_int_equal(tls_parse_min_version("VersionTLS13", &v, &err), 0);
    assert_int_equal(v, TLS1_3_VERSION);
    assert_int_equal(tls_parse_min_version("VersionTLS11", &v, &err), -1);
    assert_non_null(strstr(err.message, "VersionTLS11"));
    assert_int_equal(tls_parse_min_version("", &v, &err), -1);
}

static void test_cipher_names(void **state)
{
    (void)state;
    lo_err_t err = {0};
    char *t12 = NULL, *t13 = NULL;
    assert_int_equal(tls_translate_cipher_suites("TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, "
                                                 "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,TLS_AES_256_GCM_SHA384",
                                                 &t12, &t13, &err),
                     0);
    assert_string_equal(t12, "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-CHACHA20-POLY1305");
    assert_string_equal(t13, "TLS_AES_256_GCM_SHA384");
    free(t12);
    free(t13);
    assert_int_equal(tls_translate_cipher_suites("TLS_RSA_WITH_AES_128_CBC_SHA", &t12, &t13, &err), 0);
    assert_string_equal(t12, "AES128-SHA");
    assert_string_equal(t13, "");
    free(t12);
    free(t13);
    assert_int_equal(tls_translate_cipher_suites("ECDHE-ECDSA-AES128-GCM-SHA256", &t12, &t13, &err), -1);
    assert_non_null(strstr(err.message, "unknown cipher suite ECDHE-ECDSA-AES128-GCM-SHA256"));
}

/* a fresh self-signed pair in dir (a new key and certificate each time); paths malloc'd */
static void make_pair(const char *dir, char **cert, char **key)
{
    lo_err_t err = {0};
    char *c = lo_sprintf("%s/apiserver.crt", dir), *k = lo_sprintf("%s/apiserver.key", dir);
    unlink(c);
    unlink(k);
    free(c);
    free(k);
    assert_int_equal(server_ensure_self_signed(dir, cert, key, &err), 0);
}

static void remove_pair(const char *dir, char *cert, char *key)
{
    unlink(cert);
    unlink(key);
    rmdir(dir);
    free(cert);
    free(key);
}

static void test_reload(void **state)
{
    (void)state;
    char dir[] = "/tmp/langop-tls-XXXXXX", other[] = "/tmp/langop-tls-XXXXXX";
    assert_non_null(mkdtemp(dir));
    assert_non_null(mkdtemp(other));
    char *cert = NULL, *key = NULL, *ocert = NULL, *okey = NULL;
    make_pair(dir, &cert, &key);
    make_pair(other, &ocert, &okey);
    lo_err_t err = {0};
    tls_options_t opts = {.cert_file = cert, .key_file = key};
    tls_t *tls = tls_new(&opts, alpn, &err);
    assert_non_null(tls);
    SSL_CTX *listen = tls_ctx(tls);
    assert_int_equal(tls_reload_if_changed(tls), 0);

    /* a new pair (new inodes): swapped once; the listening context stays. (opts' paths are
     * borrowed by tls: the same paths come back, into other strings) */
    char *cert2 = NULL, *key2 = NULL;
    make_pair(dir, &cert2, &key2);
    free(cert2);
    free(key2);
    assert_int_equal(tls_reload_if_changed(tls), 1);
    assert_int_equal(tls_reload_if_changed(tls), 0);
    assert_ptr_equal(tls_ctx(tls), listen);

    /* garbage: kept, and reported once per change */
    FILE *fp = fopen(cert, "w");
    fputs("garbage\n", fp);
    fclose(fp);
    assert_int_equal(tls_reload_if_changed(tls), -1);
    assert_int_equal(tls_reload_if_changed(tls), 0);

    /* a certificate whose key does not match: kept */
    unlink(cert);
    assert_int_equal(link(ocert, cert), 0);
    assert_int_equal(tls_reload_if_changed(tls), -1);
    tls_free(tls);

    /* and such a pair does not start */
    tls_options_t mismatch = {.cert_file = ocert, .key_file = key};
    assert_null(tls_new(&mismatch, alpn, &err));
    assert_non_null(strstr(err.message, "cannot load TLS certificate"));
    remove_pair(dir, cert, key);
    remove_pair(other, ocert, okey);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_min_version),
        cmocka_unit_test(test_cipher_names),
        cmocka_unit_test(test_reload),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
