/*
 * fuzz_json.c - the JSON decoder of request bodies (core/codec.c), then the
 * decoded object through validation as each kind.
 *
 * The decoder has two readers: a fast one for the text it is sure of, and
 * jansson for the rest. Where the fast one accepts, jansson must give the
 * same tree (compared by value and by encoding, so key order counts too),
 * and the duplicate keys the fast one reports must be exactly those that
 * make jansson refuse the text under JSON_REJECT_DUPLICATES. Where the
 * decoder refuses, the error must be a 400 that can be sent back.
 */
#include "fuzz.h"

static void check_fast_against_jansson(const char *buf, size_t len)
{
    json_t *dups = json_array();
    json_t *fast = codec_decode_json_fast(buf, len, dups);
    if (fast == NULL) {
        FUZZ_CHECK(json_array_size(dups) == 0, "duplicates reported for text the fast decoder gave up on");
        json_decref(dups);
        return;
    }
    json_error_t jerr;
    json_t *slow = json_loadb(buf, len, JSON_DECODE_ANY, &jerr);
    FUZZ_CHECK(slow != NULL, "the fast decoder accepted what jansson refuses: %s", jerr.text);
    char *a = codec_encode_json(fast), *b = codec_encode_json(slow);
    FUZZ_CHECK(json_equal(fast, slow) && strcmp(a, b) == 0, "the decoders disagree:\n fast    %s\n jansson %s", a, b);
    free(a);
    free(b);
    json_t *strict = json_loadb(buf, len, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, &jerr);
    FUZZ_CHECK((strict == NULL) == (json_array_size(dups) > 0), "the fast decoder found %zu duplicate keys, jansson %s",
               json_array_size(dups), strict ? "none" : jerr.text);
    json_decref(strict);
    json_decref(slow);
    json_decref(fast);
    json_decref(dups);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *buf = (const char *)data;
    check_fast_against_jansson(buf, size);

    lo_err_t err = {0};
    json_t *dups = NULL;
    json_t *v = codec_decode_json_checked(buf, size, &dups, &err);
    json_t *plain = codec_decode_json(buf, size, &err);
    FUZZ_CHECK((v == NULL) == (plain == NULL) && (v == NULL || json_equal(v, plain)),
               "codec_decode_json and codec_decode_json_checked disagree");
    json_decref(plain);
    if (v == NULL) {
        fuzz_check_err(&err, "codec_decode_json");
        lo_err_clear(&err);
        return 0;
    }
    FUZZ_CHECK(json_is_array(dups), "no duplicates array for decoded text");
    for (size_t i = 0; i < json_array_size(dups); i++)
        FUZZ_CHECK(json_is_string(json_array_get(dups, i)), "a duplicate path that is not a string");
    fuzz_check_roundtrip(v);
    fuzz_admit_as_each_kind(v);
    json_decref(dups);
    json_decref(v);
    lo_err_clear(&err);
    return 0;
}
