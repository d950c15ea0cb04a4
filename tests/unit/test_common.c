/* test_common.c - the shared helpers of langop/common.h. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <cmocka.h>

#include "langop/core/common.h"

static void test_base64(void **state)
{
    (void)state;
    static const struct {
        const char *plain, *encoded;
    } vectors[] = {
        /* RFC 4648 section 10 */
        {"", ""},         {"f", "Zg=="},         {"fo", "Zm8="},         {"foo", "Zm9v"},
        {"foob", "Zm9vYg=="}, {"fooba", "Zm9vYmE="}, {"foobar", "Zm9vYmFy"},
    };
    for (size_t i = 0; i < sizeof(vectors) / sizeof(vectors[0]); i++) {
        char *enc = lo_base64_encode(vectors[i].plain, strlen(vectors[i].plain));
        assert_string_equal(enc, vectors[i].encoded);
        size_t len = 99;
        unsigned char *dec = lo_base64_decode(enc, &len);
        assert_non_null(dec);
        assert_int_equal(len, strlen(vectors[i].plain));
        assert_memory_equal(dec, vectors[i].plain, len);
        free(dec);
        free(enc);
    }

    /* every byte value, every length up to 64: encode -> decode is the identity */
    unsigned char bytes[256];
    for (int i = 0; i < 256; i++)
        bytes[i] = (unsigned char)(255 - i);
    for (size_t n = 0; n <= 64; n++) {
        char *enc = lo_base64_encode(bytes + 100, n);
        size_t len;
        unsigned char *dec = lo_base64_decode(enc, &len);
        assert_non_null(dec);
        assert_int_equal(len, n);
        assert_memory_equal(dec, bytes + 100, n);
        free(dec);
        free(enc);
    }
    char *enc = lo_base64_encode(bytes, sizeof(bytes));
    size_t len;
    unsigned char *dec = lo_base64_decode(enc, &len);
    assert_int_equal(len, 256);
    assert_memory_equal(dec, bytes, 256);
    free(dec);
    free(enc);

    /* URL-safe alphabet and missing padding are accepted */
    static const struct {
        const char *text;
        const unsigned char bytes[4];
        size_t len;
    } lenient[] = {
        {"-_-_", {0xfb, 0xff, 0xbf}, 3},
        {"+/+/", {0xfb, 0xff, 0xbf}, 3},
        {"Zm8", {'f', 'o'}, 2},
        {"Zg", {'f'}, 1},
        {"_w", {0xff}, 1},
        {"_w==", {0xff}, 1},
    };
    for (size_t i = 0; i < sizeof(lenient) / sizeof(lenient[0]); i++) {
        dec = lo_base64_decode(lenient[i].text, &len);
        if (dec == NULL)
            fail_msg("\"%s\" refused", lenient[i].text);
        assert_int_equal(len, lenient[i].len);
        assert_memory_equal(dec, lenient[i].bytes, len);
        free(dec);
    }

    static const char *const bad[] = {"Z", "Zm9vY", "Zm9v!", "Zm 9v", "Zm9v\n", "%41", "Zm9v\xc3\xa9", "*"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        dec = lo_base64_decode(bad[i], &len);
        if (dec != NULL)
            fail_msg("\"%s\" should be refused", bad[i]);
    }
}

static int is_hex(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
}

static void test_uuid4(void **state)
{
    (void)state;
    char seen[8][37];
    for (int n = 0; n < 8; n++) {
        char u[37];
        memset(u, 'X', sizeof(u));
        lo_uuid4(u);
        assert_int_equal(strlen(u), 36);
        for (int i = 0; i < 36; i++) {
            if (i == 8 || i == 13 || i == 18 || i == 23)
                assert_int_equal(u[i], '-');
            else if (!is_hex(u[i]))
                fail_msg("%s: not lower-case hex at %d", u, i);
        }
        assert_int_equal(u[14], '4');                 /* version 4 */
        assert_non_null(strchr("89ab", u[19]));        /* RFC 4122 variant */
        for (int m = 0; m < n; m++)
            assert_string_not_equal(u, seen[m]);
        memcpy(seen[n], u, sizeof(u));
    }
}

static void test_random_suffix(void **state)
{
    (void)state;
    static const char alphabet[] = "bcdfghjklmnpqrstvwxz2456789";
    int counts[256] = {0};
    char buf[201];
    for (int round = 0; round < 50; round++) {
        memset(buf, 0, sizeof(buf));
        lo_random_suffix(buf, 200);
        assert_int_equal(strlen(buf), 200);
        for (int i = 0; i < 200; i++) {
            if (strchr(alphabet, buf[i]) == NULL)
                fail_msg("'%c' is not in the generateName alphabet", buf[i]);
            counts[(unsigned char)buf[i]]++;
        }
    }
    /* 10000 draws: every letter shows up (the chance that one does not is ~1e-160) */
    for (size_t i = 0; i < strlen(alphabet); i++)
        assert_true(counts[(unsigned char)alphabet[i]] > 0);
    char five[6] = "ZZZZZ";
    lo_random_suffix(five, 5);
    assert_int_equal(strlen(five), 5);
    char none[1] = {'Z'};
    lo_random_suffix(none, 0);
    assert_int_equal(none[0], '\0');
}

static void test_rfc3339(void **state)
{
    (void)state;
    char buf[32];
    lo_time_rfc3339(buf, sizeof(buf));
    assert_int_equal(strlen(buf), 20);
    /* YYYY-MM-DDTHH:MM:SSZ */
    for (int i = 0; i < 20; i++) {
        const char *shape = "dddd-dd-ddTdd:dd:ddZ";
        if (shape[i] == 'd')
            assert_true(buf[i] >= '0' && buf[i] <= '9');
        else
            assert_int_equal(buf[i], shape[i]);
    }
    int64_t t;
    assert_int_equal(lo_time_parse(buf, &t), 0);
    int64_t now = (int64_t)time(NULL);
    assert_true(t <= now && t >= now - 5);

    static const struct {
        const char *text;
        int64_t want;
    } good[] = {
        {"1970-01-01T00:00:00Z", 0},
        {"2025-01-02T03:04:05Z", 1735787045},
        {"2025-01-02T03:04:05z", 1735787045},
        {"2025-01-02T03:04:05.123456Z", 1735787045},
        {"2025-01-02T04:04:05+01:00", 1735787045},
        {"2025-01-01T22:34:05-04:30", 1735787045},
        {"2024-02-29T12:00:00Z", 1709208000},
    };
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        t = -1;
        if (lo_time_parse(good[i].text, &t) != 0)
            fail_msg("%s refused", good[i].text);
        if (t != good[i].want)
            fail_msg("%s: got %lld, want %lld", good[i].text, (long long)t, (long long)good[i].want);
    }
    static const char *const bad[] = {
        "",
        "garbage",
        "2025-01-02",
        "2025-01-02T03:04:05",       /* no zone */
        "2025-01-02 03:04:05Z",
        "2025-13-02T03:04:05Z",
        "2025-01-02T03:04:05Zjunk",
        "2025-01-02T03:04:05+0100",
        "2025-01-02T03:04:05+01:00junk",
        "2025-01-02T03:04:05+1:00",  /* hours take two digits */
        "2025-01-02T03:04:05+",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        /* an exact-size heap copy, so that reading past the end shows under valgrind */
        char *copy = strdup(bad[i]);
        if (lo_time_parse(copy, &t) != -1)
            fail_msg("\"%s\" should be refused", bad[i]);
        free(copy);
    }
}

static void test_sha256(void **state)
{
    (void)state;
    char out[65];
    lo_sha256_hex("abc", 3, out);
    assert_string_equal(out, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    lo_sha256_hex("", 0, out);
    assert_string_equal(out, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    lo_sha256_hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq", 56, out);
    assert_string_equal(out, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
}

static void test_err(void **state)
{
    (void)state;
    lo_err_t err = {0};
    lo_err_set(&err, 422, "Invalid", "%s \"%s\" is invalid", "LanguageModel.langop.io", "x");
    assert_int_equal(err.code, 422);
    assert_string_equal(err.reason, "Invalid");
    assert_string_equal(err.message, "LanguageModel.langop.io \"x\" is invalid");
    assert_null(err.details);

    lo_err_add_cause(&err, "FieldValueRequired", "Required value", "spec.provider");
    lo_err_add_cause(&err, "FieldValueInvalid", NULL, "spec.port");
    json_t *causes = json_object_get(err.details, "causes");
    assert_int_equal(json_array_size(causes), 2);
    json_t *c0 = json_array_get(causes, 0);
    assert_string_equal(json_string_value(json_object_get(c0, "reason")), "FieldValueRequired");
    assert_string_equal(json_string_value(json_object_get(c0, "message")), "Required value");
    assert_string_equal(json_string_value(json_object_get(c0, "field")), "spec.provider");
    json_t *c1 = json_array_get(causes, 1);
    assert_null(json_object_get(c1, "message"));
    assert_string_equal(json_string_value(json_object_get(c1, "field")), "spec.port");

    /* set keeps details; set_details replaces them */
    lo_err_set(&err, 400, "BadRequest", "other");
    assert_int_equal(json_array_size(json_object_get(err.details, "causes")), 2);
    lo_err_set_details(&err, json_pack("{s:s}", "name", "x"));
    assert_null(json_object_get(err.details, "causes"));
    assert_string_equal(json_string_value(json_object_get(err.details, "name")), "x");
    lo_err_add_cause(&err, "FieldValueDuplicate", "Duplicate value", "spec.models[1]");
    assert_string_equal(json_string_value(json_object_get(err.details, "name")), "x");
    assert_int_equal(json_array_size(json_object_get(err.details, "causes")), 1);

    lo_err_clear(&err);
    assert_int_equal(err.code, 0);
    assert_string_equal(err.message, "");
    assert_null(err.details);

    /* long messages are cut, not overflowed */
    char big[3000];
    memset(big, 'm', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    lo_err_set(&err, 500, "InternalError", "%s", big);
    assert_int_equal(strlen(err.message), LO_ERR_MESSAGE_MAX - 1);

    /* a NULL err is allowed everywhere */
    lo_err_set(NULL, 400, "BadRequest", "x");
    lo_err_add_cause(NULL, "r", "m", "f");
    lo_err_set_details(NULL, json_object());
    lo_err_clear(NULL);
    lo_err_clear(&err);
}

static void test_alloc(void **state)
{
    (void)state;
    char *s = lo_strndup("abcdef", 3);
    assert_string_equal(s, "abc");
    free(s);
    s = lo_sprintf("%s-%d", "x", 42);
    assert_string_equal(s, "x-42");
    free(s);
    s = lo_strdup("");
    assert_string_equal(s, "");
    free(s);
    int64_t a = lo_now_ms();
    int64_t b = lo_now_ms();
    assert_true(b >= a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_base64), cmocka_unit_test(test_uuid4),  cmocka_unit_test(test_random_suffix),
        cmocka_unit_test(test_rfc3339), cmocka_unit_test(test_sha256), cmocka_unit_test(test_err),
        cmocka_unit_test(test_alloc),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
