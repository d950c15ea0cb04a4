/*
 * test_authconfig.c - the extension-apiserver-authentication ConfigMap's
 * data: PEM values kept, JSON-array strings joined with commas, anything
 * else left out.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "langop/request/authconfig.h"

static void test_parse(void **state)
{
    (void)state;
    json_t *data = json_pack("{s:s,s:s,s:s,s:s,s:s,s:s}",
                             "requestheader-client-ca-file", "-----BEGIN CERTIFICATE-----\n...",
                             "requestheader-allowed-names", "[\"front-proxy-client\",\"aggregator\"]",
                             "requestheader-username-headers", "[\"X-Remote-User\"]",
                             "requestheader-group-headers", "not json",
                             "requestheader-extra-headers-prefix", "[\"X-Remote-Extra-\", 7, \"a,b\"]",
                             "requestheader-uid-headers", "[]");
    authconfig_t cfg;
    authconfig_parse(data, &cfg);
    assert_string_equal(cfg.requestheader_ca_pem, "-----BEGIN CERTIFICATE-----\n...");
    assert_null(cfg.client_ca_pem);
    assert_string_equal(cfg.requestheader_allowed_names, "front-proxy-client,aggregator");
    assert_string_equal(cfg.requestheader_username_headers, "X-Remote-User");
    assert_null(cfg.requestheader_group_headers);                       /* not a JSON array */
    assert_string_equal(cfg.requestheader_extra_prefixes, "X-Remote-Extra-"); /* no numbers, no commas */
    assert_string_equal(cfg.requestheader_uid_headers, "");             /* empty list: the default */
    authconfig_free(&cfg);
    authconfig_free(&cfg); /* zeroed: freeing again is harmless */
    json_decref(data);
    authconfig_parse(NULL, &cfg); /* no data at all */
    assert_null(cfg.requestheader_ca_pem);
    authconfig_free(&cfg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
