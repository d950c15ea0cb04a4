/* test_codec.c - JSON/YAML decoding and encoding (langop/codec.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "langop/core/codec.h"

/* Decodes YAML text, asserting success. New reference. */
static json_t *yaml_ok(const char *text)
{
    lo_err_t err = {0};
    json_t *v = codec_decode_yaml(text, strlen(text), &err);
    if (v == NULL)
        fail_msg("YAML %s: unexpected error %s", text, err.message);
    lo_err_clear(&err);
    return v;
}

/* Decodes YAML text, asserting a 400 whose message contains want. */
static void yaml_bad(const char *text, const char *want)
{
    lo_err_t err = {0};
    json_t *v = codec_decode_yaml(text, strlen(text), &err);
    if (v != NULL)
        fail_msg("YAML %s: expected an error", text);
    assert_int_equal(err.code, 400);
    assert_string_equal(err.reason, "BadRequest");
    if (strstr(err.message, want) == NULL)
        fail_msg("YAML %s: message \"%s\" lacks \"%s\"", text, err.message, want);
    lo_err_clear(&err);
}

static void assert_json_is(const json_t *got, const char *want_json)
{
    json_t *want = json_loads(want_json, JSON_DECODE_ANY, NULL);
    assert_non_null(want);
    if (!json_equal(got, want)) {
        char *g = json_dumps(got, JSON_ENCODE_ANY | JSON_COMPACT);
        fail_msg("got %s, want %s", g, want_json);
    }
    /* json_equal does not tell 1 from 1.0: check the type too */
    assert_int_equal(json_typeof(got), json_typeof(want));
    json_decref(want);
}

static void test_yaml_scalars(void **state)
{
    (void)state;
    static const struct {
        const char *yaml;
        const char *json;
    } cases[] = {
        {"v: true", "true"},           {"v: True", "true"},         {"v: yes", "true"},
        {"v: ON", "true"},             {"v: off", "false"},         {"v: No", "false"},
        {"v: FALSE", "false"},         {"v: null", "null"},         {"v: ~", "null"},
        {"v:", "null"},                {"v: NULL", "null"},         {"v: 42", "42"},
        {"v: -7", "-7"},               {"v: +3", "3"},              {"v: 0x1f", "31"},
        {"v: 0o17", "15"},             {"v: 017", "15"},            {"v: 0b101", "5"},
        {"v: 1_000", "1000"},          {"v: 0", "0"},               {"v: 1.5", "1.5"},
        {"v: 1.0", "1.0"},             {"v: -0.25", "-0.25"},       {"v: 1e3", "1000.0"},
        {"v: .5", "0.5"},              {"v: 2.", "2.0"},            {"v: 9223372036854775807", "9223372036854775807"},
        {"v: 99999999999999999999", "1e20"},                        {"v: 08", "8.0"},
        {"v: '42'", "\"42\""},         {"v: \"true\"", "\"true\""}, {"v: ''", "\"\""},
        {"v: y", "\"y\""},             {"v: hello world", "\"hello world\""},
        {"v: 1.2.3", "\"1.2.3\""},     {"v: 0x", "\"0x\""},         {"v: 12abc", "\"12abc\""},
        {"v: 2025-01-02T03:04:05Z", "\"2025-01-02T03:04:05Z\""},  {"v: !!str 5", "\"5\""},
        {"v: !!int \"5\"", "5"},       {"v: !!float 5", "5.0"},     {"v: !!bool yes", "true"},
        {"v: ! 5", "\"5\""},           {"v: |\n  a\n  b\n", "\"a\\nb\\n\""},
        {"v: >-\n  a\n  b\n", "\"a b\""}, {"v: \"tab\\there\"", "\"tab\\there\""},
        {"v: \"\\u00e9t\\u00e9\"", "\"\\u00e9t\\u00e9\""}, {"v: _1", "\"_1\""},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        json_t *doc = yaml_ok(cases[i].yaml);
        json_t *v = json_object_get(doc, "v");
        if (v == NULL)
            fail_msg("%s: no key v", cases[i].yaml);
        assert_json_is(v, cases[i].json);
        json_decref(doc);
    }
}

static void test_yaml_structure(void **state)
{
    (void)state;
    json_t *v = yaml_ok("apiVersion: langop.io/v1alpha1\n"
                        "kind: LanguageModel\n"
                        "metadata:\n"
                        "  name: m\n"
                        "  labels: {tier: gold, \"n\": 1}\n"
                        "spec:\n"
                        "  fallbacks:\n"
                        "  - a\n"
                        "  - b\n"
                        "  params: []\n"
                        "  empty: {}\n"
                        "  nested: [[1, 2], {x: y}]\n");
    assert_json_is(v, "{\"apiVersion\":\"langop.io/v1alpha1\",\"kind\":\"LanguageModel\","
                      "\"metadata\":{\"name\":\"m\",\"labels\":{\"tier\":\"gold\",\"n\":1}},"
                      "\"spec\":{\"fallbacks\":[\"a\",\"b\"],\"params\":[],\"empty\":{},"
                      "\"nested\":[[1,2],{\"x\":\"y\"}]}}");
    /* keys keep document order */
    const char *keys[] = {"apiVersion", "kind", "metadata", "spec"};
    size_t i = 0;
    const char *k;
    json_t *e;
    json_object_foreach(v, k, e) assert_string_equal(k, keys[i++]);
    json_decref(v);

    /* non-string keys read back as their JSON text, as sigs.k8s.io/yaml prints them */
    v = yaml_ok("1: a\ntrue: b\nyes: c\n~: d\n0x10: e\n");
    assert_json_is(v, "{\"1\":\"a\",\"true\":\"c\",\"null\":\"d\",\"16\":\"e\"}");
    json_decref(v);

    /* the last duplicate wins */
    v = yaml_ok("a: 1\na: 2\n");
    assert_json_is(v, "{\"a\":2}");
    json_decref(v);

    /* top-level scalars and empty input */
    v = yaml_ok("hello");
    assert_json_is(v, "\"hello\"");
    json_decref(v);
    v = yaml_ok("");
    assert_json_is(v, "null");
    json_decref(v);
    v = yaml_ok("# only a comment\n");
    assert_json_is(v, "null");
    json_decref(v);
}

static void test_yaml_documents(void **state)
{
    (void)state;
    const char *text = "a: 1\n---\nb: 2\n---\n---\nc: [3]\n";
    json_t *first = yaml_ok(text);
    assert_json_is(first, "{\"a\":1}");
    json_decref(first);

    /* the first document is decoded even if a later one is broken */
    first = yaml_ok("a: 1\n---\nb: [\n");
    assert_json_is(first, "{\"a\":1}");
    json_decref(first);

    lo_err_t err = {0};
    json_t *all = codec_decode_yaml_stream(text, strlen(text), &err);
    assert_non_null(all);
    assert_json_is(all, "[{\"a\":1},{\"b\":2},null,{\"c\":[3]}]");
    json_decref(all);

    all = codec_decode_yaml_stream("", 0, &err);
    assert_json_is(all, "[]");
    json_decref(all);

    const char *broken = "a: 1\n---\nb: [\n";
    all = codec_decode_yaml_stream(broken, strlen(broken), &err);
    assert_null(all);
    assert_int_equal(err.code, 400);
    lo_err_clear(&err);
}

static void test_yaml_errors(void **state)
{
    (void)state;
    yaml_bad("a: 1\nb: 2\nc: d: e\n", "line 3");
    yaml_bad("a: 1\nb: 2\nc: d: e\n", "mapping values are not allowed");
    yaml_bad("a: 1\nb: 2\nc: d: e\n", "error converting YAML to JSON: yaml: ");
    yaml_bad("a: [1, 2\n", "line 2");
    yaml_bad("a: \"unterminated\n", "found unexpected end of stream");
    yaml_bad("a: &x 1\nb: *x\n", "anchors and aliases are not supported");
    yaml_bad("base: &b {x: 1}\n", "anchors and aliases");
    yaml_bad("a: *nothing\n", "line 1");
    yaml_bad("a: !custom 1\n", "unsupported tag");
    yaml_bad("a: !!python/object 1\n", "unsupported tag");
    yaml_bad("a: !!int abc\n", "!!int");
    yaml_bad("a: !!seq {}\n", "unsupported tag");
    yaml_bad("? [a, b]\n: c\n", "mapping keys must be scalars");
    yaml_bad("? {a: b}\n: c\n", "line 1");
    yaml_bad("a: .inf\n", "infinity");
    yaml_bad("a: -.Inf\n", "line 1");
    yaml_bad("a: .nan\n", "NaN");
    yaml_bad("\tkey: value\n", "line 1");
    yaml_bad("a: \"\\q\"\n", "line 1");
    /* a value with NUL was accepted, stored, and then could not be read back (found by tests/fuzz) */
    yaml_bad("a: \"x\\0y\"\n", "strings may not contain NUL characters");
    yaml_bad("- 'a'\n- \"\\0\"\n", "line 2");
    yaml_bad("a: !!str \"\\x00\"\n", "NUL");
}

static char *nested(const char *open, const char *close, int depth)
{
    size_t ol = strlen(open), cl = strlen(close);
    char *s = malloc((ol + cl) * (size_t)depth + 1);
    size_t n = 0;
    for (int i = 0; i < depth; i++, n += ol)
        memcpy(s + n, open, ol);
    for (int i = 0; i < depth; i++, n += cl)
        memcpy(s + n, close, cl);
    s[n] = '\0';
    return s;
}

static void test_depth_limit(void **state)
{
    (void)state;
    lo_err_t err = {0};
    char *ok = nested("[", "]", CODEC_MAX_DEPTH);
    char *deep = nested("[", "]", CODEC_MAX_DEPTH + 1);
    char *huge = nested("{\"a\":", "}", 100000);

    json_t *v = yaml_ok(ok);
    json_decref(v);
    yaml_bad(deep, "nesting deeper than 64");
    v = codec_decode_json(ok, strlen(ok), &err);
    assert_non_null(v);
    json_decref(v);
    assert_null(codec_decode_json(deep, strlen(deep), &err));
    assert_int_equal(err.code, 400);
    assert_non_null(strstr(err.message, "nesting deeper than 64"));
    assert_non_null(strstr(err.message, "column 65"));
    assert_null(codec_decode_json(huge, strlen(huge), &err));
    assert_null(codec_decode_yaml(huge, strlen(huge), &err));
    assert_int_equal(err.code, 400);

    /* block-style nesting counts too */
    char block[8192];
    size_t n = 0;
    for (int i = 0; i <= CODEC_MAX_DEPTH; i++)
        n += (size_t)snprintf(block + n, sizeof(block) - n, "%*sk:\n", 2 * i, "");
    yaml_bad(block, "nesting deeper");
    lo_err_clear(&err);
    free(ok);
    free(deep);
    free(huge);
}

static void test_json_decode(void **state)
{
    (void)state;
    lo_err_t err = {0};
    static const char *const values[] = {"{\"a\":[1,2.5,\"x\",true,null]}", "[]", "42", "\"s\"", "null", " 1.0 "};
    for (size_t i = 0; i < sizeof(values) / sizeof(values[0]); i++) {
        json_t *v = codec_decode_json(values[i], strlen(values[i]), &err);
        if (v == NULL)
            fail_msg("%s: %s", values[i], err.message);
        assert_json_is(v, values[i]);
        json_decref(v);
    }
    json_t *v = codec_decode_json("{\"a\":1,\"a\":2}", 13, &err);
    assert_json_is(v, "{\"a\":2}");
    json_decref(v);

    static const struct {
        const char *text;
        const char *want;
    } bad[] = {
        {"{\"a\": 1,\n \"b\": }", "line 2"},
        {"{\"a\": 1,\n \"b\": }", "couldn't get version/kind; json parse error: "},
        {"", "byte 0"},
        {"{\"a\":1} x", "end of file expected"},
        {"{\"a\":\"\\u0000\"}", "line 1"},
        {"[1,2", "line 1"},
        {"{'a':1}", "column 2"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        v = codec_decode_json(bad[i].text, strlen(bad[i].text), &err);
        if (v != NULL)
            fail_msg("%s: expected an error", bad[i].text);
        assert_int_equal(err.code, 400);
        assert_string_equal(err.reason, "BadRequest");
        if (strstr(err.message, bad[i].want) == NULL)
            fail_msg("%s: message \"%s\" lacks \"%s\"", bad[i].text, err.message, bad[i].want);
    }
    /* a NUL byte inside the buffer is an error, not the end of the text */
    assert_null(codec_decode_json("{\"a\":1}\0junk", 12, &err));
    lo_err_clear(&err);
}

/* The fast path decodes what it takes exactly as jansson does: same tree, same key order. */
static void assert_fast_same(const char *buf, size_t len)
{
    json_t *fast = codec_decode_json_fast(buf, len, NULL);
    if (fast == NULL)
        return;
    json_t *slow = json_loadb(buf, len, JSON_DECODE_ANY, NULL);
    if (slow == NULL)
        fail_msg("the fast path took text jansson refuses: %.*s", (int)len, buf);
    char *a = codec_encode_json(fast), *b = codec_encode_json(slow);
    if (!json_equal(fast, slow) || strcmp(a, b) != 0)
        fail_msg("%.*s: fast %s, jansson %s", (int)len, buf, a, b);
    free(a);
    free(b);
    json_decref(fast);
    json_decref(slow);
}

static void test_json_fast_path(void **state)
{
    (void)state;
    /* what it takes: objects as clients send them, escapes, UTF-8, integers, literals, duplicates */
    static const char *const taken[] = {
        "{\"apiVersion\":\"langop.io/v1alpha1\",\"kind\":\"LanguagePersona\",\"metadata\":{\"generateName\":\"p-\","
        "\"namespace\":\"bench\"},\"spec\":{\"tone\":\"friendly\",\"expertise\":\"k8s\"}}",
        " { \"a\" : [ 1 , -2 , 0 , -0 , 123456789012345678 ] , \"b\" : { } , \"c\" : [ ] } ",
        "{\"s\":\"line\\none\\t\\\"q\\\" \\\\ \\/ \\b\\f\\r\"}",
        "{\"u\":\"caf\xc3\xa9 \xe2\x80\x94 \xf0\x9f\x98\x80 \xed\x9f\xbf \xf4\x8f\xbf\xbf\x7f\"}",
        "[true,false,null,\"x\"]", "42", "\"s\"", "null", "{\"a\":1,\"b\":2,\"a\":3}",
    };
    for (size_t i = 0; i < sizeof(taken) / sizeof(taken[0]); i++) {
        json_t *v = codec_decode_json_fast(taken[i], strlen(taken[i]), NULL);
        if (v == NULL)
            fail_msg("the fast path left to jansson: %s", taken[i]);
        json_decref(v);
        assert_fast_same(taken[i], strlen(taken[i]));
    }
    /* what it leaves to jansson (which decodes or refuses it) */
    static const char *const left[] = {
        "{\"a\":\"\\u0041\"}", "{\"k\\n\":1}", "[1.5]", "[1e3]", "[1234567890123456789]",
        "[123456789012345678901234567890]", "[-99999999999999999999999]", "[9223372036854775808]",
        "[9999999999999999999]", "[01]", "[-]",
        "{\"a\":\"\x01\"}", "{\"a\":\"\xc0\x80\"}", "{\"a\":\"\xed\xa0\x80\"}", "{\"a\":\"\xf5\x80\x80\x80\"}",
        "{\"a\":\"\xe2\x80\"}", "{\"a\":\"\xf0\x8f\xbf\xbf\"}", "{\"a\":\"\xf4\x90\x80\x80\"}", "[truex]",
        "{\"a\":1,}", "[1,]", "{\"a\" 1}", "{\"a\":1} x", "", "   ", "{\"a\":1", "\"abc", "{\"a\":\"x\\q\"}",
        "\xef\xbb\xbf{}",
    };
    for (size_t i = 0; i < sizeof(left) / sizeof(left[0]); i++) {
        json_t *dups = json_array();
        json_t *v = codec_decode_json_fast(left[i], strlen(left[i]), dups);
        if (v != NULL)
            fail_msg("the fast path took: %s", left[i]);
        assert_int_equal(json_array_size(dups), 0);
        json_decref(dups);
    }
    json_t *deep = NULL;
    char nest[2 * (CODEC_MAX_DEPTH + 1) + 1];
    for (int depth = CODEC_MAX_DEPTH; depth <= CODEC_MAX_DEPTH + 1; depth++) {
        memset(nest, '[', (size_t)depth);
        memset(nest + depth, ']', (size_t)depth);
        deep = codec_decode_json_fast(nest, 2 * (size_t)depth, NULL);
        if ((deep != NULL) != (depth <= CODEC_MAX_DEPTH))
            fail_msg("nesting %d: the fast path %s it", depth, deep ? "took" : "left");
        json_decref(deep);
    }

    /* mutations of a seed: whatever the fast path takes, jansson reads the same */
    static const char seed[] = "{\"apiVersion\":\"v1\",\"metadata\":{\"name\":\"a\",\"labels\":{\"x\":\"y\",\"x\":\"z\"}},"
                               "\"spec\":{\"n\":[1,-20,300,{\"t\":true,\"f\":false,\"z\":null}],\"s\":\"a\\nb\\\"c\xc3\xa9\"}}";
    static const char alphabet[] = "{}[]:,-\"\\ \t\n\0az09.eE\xc3\xa9\xff\x80\xed\xf4untrfls/";
    size_t seed_len = sizeof(seed) - 1;
    char buf[sizeof(seed)];
    unsigned int rnd = 4242;
    for (size_t cut = 0; cut <= seed_len; cut++)
        assert_fast_same(seed, cut);
    for (int round = 0; round < 20000; round++) {
        memcpy(buf, seed, seed_len);
        int edits = 1 + round % 4;
        for (int e = 0; e < edits; e++) {
            rnd = rnd * 1103515245u + 12345u;
            buf[(rnd >> 8) % seed_len] = alphabet[(rnd >> 20) % (sizeof(alphabet) - 1)];
        }
        assert_fast_same(buf, seed_len);
    }
}

static void assert_dups(const char *text, const char *want_json)
{
    lo_err_t err = {0};
    json_t *dups = NULL;
    json_t *v = codec_decode_json_checked(text, strlen(text), &dups, &err);
    if (v == NULL)
        fail_msg("%s: %s", text, err.message);
    assert_non_null(dups);
    assert_json_is(dups, want_json);
    json_decref(v);
    json_decref(dups);
}

/* YAML reports its duplicate keys with the same paths as JSON, and keeps the last value. */
static void test_yaml_duplicates(void **state)
{
    (void)state;
    static const struct {
        const char *text, *dups;
    } cases[] = {
        {"a: 1\nb: 2\n", "[]"},
        {"a: 1\na: 2\na: 3\n", "[\"a\"]"},
        {"spec:\n  provider: x\n  model: 1\n  provider: y\n", "[\"spec.provider\"]"},
        {"spec:\n  models:\n  - name: a\n  - {name: b, name: c}\n", "[\"spec.models[1].name\"]"},
        {"- {a: 1}\n- {a: 2}\n", "[]"},
        {"m: {q: [1, {z: 0, z: 0}]}\nm: 2\n", "[\"m.q[1].z\",\"m\"]"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        lo_err_t err = {0};
        json_t *dups = NULL;
        json_t *v = codec_decode_yaml_checked(cases[i].text, strlen(cases[i].text), &dups, &err);
        if (v == NULL)
            fail_msg("%s: %s", cases[i].text, err.message);
        assert_json_is(dups, cases[i].dups);
        json_decref(v);
        json_decref(dups);
    }
    lo_err_t err = {0};
    json_t *dups = NULL;
    json_t *v = codec_decode_yaml_checked("a: 1\na: 2\n", 10, &dups, &err);
    assert_int_equal(json_integer_value(json_object_get(v, "a")), 2);
    json_decref(v);
    json_decref(dups);
    dups = NULL;
    assert_null(codec_decode_yaml_checked("a: [", 4, &dups, &err));
    assert_null(dups);
    lo_err_clear(&err);
}

static void test_json_duplicates(void **state)
{
    (void)state;
    assert_dups("{\"a\":1,\"b\":2}", "[]");
    assert_dups("{\"a\":1,\"a\":2}", "[\"a\"]");
    assert_dups("{\"a\":1,\"a\":2,\"a\":3}", "[\"a\"]");
    assert_dups("{\"spec\":{\"provider\":\"x\",\"model\":1,\"provider\":\"y\"}}", "[\"spec.provider\"]");
    assert_dups("{\"spec\":{\"models\":[{\"name\":\"a\"},{\"name\":\"b\",\"name\":\"c\"}]}}",
                "[\"spec.models[1].name\"]");
    /* the same key in sibling objects is no duplicate */
    assert_dups("[{\"a\":1},{\"a\":2}]", "[]");
    assert_dups("{\"x\":{\"a\":1},\"y\":{\"a\":1}}", "[]");
    /* keys with escapes, values that look like keys, numbers and literals */
    assert_dups("{\"k\\u0061\":\"ka\",\"ka\":-1.5e3, \"s\" : [true,false,null,\"ka\"]}", "[\"ka\"]");
    assert_dups("{ \"m\" : { \"q\" : [ 1 , { \"z\" : 0, \"z\" : 0 } ] } , \"m\": 2}", "[\"m.q[1].z\",\"m\"]");
    assert_dups("[1,[2,{\"a\":{\"b\":1,\"b\":2}}]]", "[\"[1][1].a.b\"]");

    lo_err_t err = {0};
    json_t *sentinel = json_string("sentinel");
    json_t *dups = sentinel;
    assert_null(codec_decode_json_checked("{", 1, &dups, &err));
    assert_null(dups); /* reset on failure */
    json_decref(sentinel);
    json_t *v = codec_decode_json_checked("{\"a\":1,\"a\":1}", 13, NULL, &err);
    assert_non_null(v);
    json_decref(v);
    lo_err_clear(&err);
}

static void test_decode_auto(void **state)
{
    (void)state;
    lo_err_t err = {0};
    const char *json = "  \n{\"a\": 1}";
    json_t *v = codec_decode_auto(json, strlen(json), &err);
    assert_json_is(v, "{\"a\":1}");
    json_decref(v);
    const char *yaml = "a: 1\n";
    v = codec_decode_auto(yaml, strlen(yaml), &err);
    assert_json_is(v, "{\"a\":1}");
    json_decref(v);
    /* JSON errors speak JSON */
    assert_null(codec_decode_auto("[1,", 3, &err));
    assert_non_null(strstr(err.message, "json parse error"));
    lo_err_clear(&err);
}

static void roundtrip(const json_t *v)
{
    char *text = codec_encode_yaml(v);
    assert_non_null(text);
    lo_err_t err = {0};
    json_t *back = codec_decode_yaml(text, strlen(text), &err);
    if (back == NULL)
        fail_msg("cannot read back %s: %s", text, err.message);
    char *a = json_dumps(v, JSON_ENCODE_ANY);
    char *b = json_dumps(back, JSON_ENCODE_ANY);
    /* compare the JSON text: it tells integers from reals, unlike json_equal */
    if (!json_equal(v, back) || strcmp(a, b) != 0)
        fail_msg("round trip changed %s into %s via YAML:\n%s", a, b, text);
    free(a);
    free(b);
    json_decref(back);
    free(text);
}

static void test_yaml_roundtrip(void **state)
{
    (void)state;
    static const char *const strings[] = {
        "", " ", "plain", "true", "True", "yes", "no", "on", "OFF", "y", "n", "null", "~", "Null", "42", "-7",
        "0x1f", "017", "1_000", "1.5", "1e3", ".5", ".inf", "-.inf", ".nan", " lead", "trail ", "a: b",
        "a:b", "#hash", "a #b", "- item", "-", "?", "? x", ":", "[x]", "{x}", "a,b", "*alias", "&anchor",
        "!tag", "%percent", "@at", "`tick", "'single'", "\"double\"", "line1\nline2", "line1\nline2\n",
        "trailing newlines\n\n", "\nleading newline", "  indented\nsecond", "tab\there", "cr\rhere",
        "nul\\0", "bell\a", "unicode éàü 日本", "emoji 😀", "---", "...", "--- x", "a\n  b", "last \n line",
        "key: value\nother: x", "| literal", "> folded", "=", "<<", "2025-01-02T03:04:05Z", "1:20", "0.",
        "+", "+1", "-.5", "1e", "1e+", "1.2.3", "0b2", "0o8", "a\u2028b",
    };
    for (size_t i = 0; i < sizeof(strings) / sizeof(strings[0]); i++) {
        json_t *s = json_string(strings[i]);
        json_t *obj = json_pack("{s:O}", "v", s);
        json_t *key = json_object();
        json_object_set(key, strings[i], s);
        json_t *arr = json_pack("[O,O]", s, s);
        roundtrip(s);
        roundtrip(obj);
        roundtrip(key);
        roundtrip(arr);
        json_decref(s);
        json_decref(obj);
        json_decref(key);
        json_decref(arr);
    }
    /* a string with a NUL inside is written, but not read back: no decoder takes one (JSON neither) */
    json_t *nul = json_stringn("a\0b", 3);
    char *text = codec_encode_yaml(nul);
    yaml_bad(text, "strings may not contain NUL characters");
    free(text);
    json_decref(nul);

    static const double reals[] = {0.0, -0.0, 1.0, -1.0, 0.1, 1.5, 1e20, 1e-7, 3.141592653589793, 1e300, 2.5e-300,
                                   123456789.0, 0.30000000000000004};
    for (size_t i = 0; i < sizeof(reals) / sizeof(reals[0]); i++) {
        json_t *r = json_pack("{s:f}", "r", reals[i]);
        roundtrip(r);
        json_decref(r);
    }
    static const json_int_t ints[] = {0, 1, -1, 42, INT64_MAX, INT64_MIN, 1000000};
    for (size_t i = 0; i < sizeof(ints) / sizeof(ints[0]); i++) {
        json_t *n = json_pack("{s:I}", "n", ints[i]);
        roundtrip(n);
        json_decref(n);
    }
    static const char *const docs[] = {
        "null", "true", "false", "[]", "{}", "[[]]", "[{}]", "{\"a\":{}}", "{\"a\":[]}",
        "{\"a\":[[1,2],[3,[4,{\"b\":null}]]],\"c\":{\"d\":{\"e\":[true,false]}}}",
        "[{\"name\":\"x\",\"v\":[{\"a\":1,\"b\":\"multi\\nline\\n\"}]}]",
        ("{\"metadata\":{\"annotations\":{\"kubectl.kubernetes.io/last-applied-configuration\":"
         "\"{\\\"apiVersion\\\":\\\"v1\\\"}\\n\"}}}"),
    };
    for (size_t i = 0; i < sizeof(docs) / sizeof(docs[0]); i++) {
        json_t *d = json_loads(docs[i], JSON_DECODE_ANY, NULL);
        assert_non_null(d);
        roundtrip(d);
        json_decref(d);
    }
}

static void test_yaml_encode_shape(void **state)
{
    (void)state;
    json_t *v = json_pack("{s:s,s:{s:s,s:i,s:f,s:b},s:[s,s]}", "kind", "LanguageModel", "spec", "provider", "true",
                          "replicas", 2, "temp", 0.7, "on", 1, "list", "a", "b");
    char *text = codec_encode_yaml(v);
    assert_string_equal(text, "kind: LanguageModel\n"
                              "spec:\n"
                              "  provider: \"true\"\n"
                              "  replicas: 2\n"
                              "  temp: 0.7\n"
                              "  \"on\": true\n"
                              "list:\n"
                              "- a\n"
                              "- b\n");
    free(text);
    json_decref(v);

    v = json_pack("{s:s}", "script", "echo hi\necho there\n");
    text = codec_encode_yaml(v);
    assert_string_equal(text, "script: |\n  echo hi\n  echo there\n");
    free(text);
    json_decref(v);
}

/* Strings that YAML 1.1 readers (PyYAML, in the LiteLLM gateway) would read as dates or base-60
 * numbers are quoted; look-alikes that they read as strings stay plain. */
static void test_yaml_encode_yaml11_lookalikes(void **state)
{
    (void)state;
    static const struct {
        const char *value;
        int quoted;
    } cases[] = {
        {"2024-06-01", 1}, {"2024-6-1", 1}, {"2001-12-14t21:59:43.10-05:00", 1}, {"2024-06-01 10:00", 1},
        {"1:30", 1},       {"-1:30:15.5", 1}, {"190:20:30", 1},
        {"2024-06", 0},    {"12:3x", 0},    {"v1:30", 0}, {"20240601", 1 /* an integer */},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        json_t *v = json_pack("{s:s}", "k", cases[i].value);
        char *y = codec_encode_yaml(v);
        char want[128];
        snprintf(want, sizeof(want), cases[i].quoted ? "k: \"%s\"\n" : "k: %s\n", cases[i].value);
        if (strcmp(y, want) != 0)
            fail_msg("%s: got %s, want %s", cases[i].value, y, want);
        json_t *back = codec_decode_yaml(y, strlen(y), NULL);
        assert_true(json_equal(back, v)); /* and our own reader gets the string back */
        json_decref(back);
        free(y);
        json_decref(v);
    }
}

static void test_json_encode(void **state)
{
    (void)state;
    json_t *v = json_pack("{s:f,s:f,s:i,s:[n,b]}", "a", 0.1, "b", 2.0, "c", 3, "d", 1);
    char *text = codec_encode_json(v);
    assert_string_equal(text, "{\"a\":0.1,\"b\":2.0,\"c\":3,\"d\":[null,true]}");
    free(text);
    json_decref(v);
    v = json_pack("[f]", 0.30000000000000004);
    text = codec_encode_json(v);
    json_t *back = json_loads(text, 0, NULL);
    assert_true(json_real_value(json_array_get(back, 0)) == 0.30000000000000004);
    free(text);
    json_decref(back);
    json_decref(v);
    v = json_string("x");
    text = codec_encode_json(v);
    assert_string_equal(text, "\"x\"");
    free(text);
    json_decref(v);
}

/*
 * The encoder against jansson's compact dump, on what both must print the
 * same way (everything but reals, which ours prints shortest): escapes,
 * control characters, multi-byte UTF-8, key order, nesting, empty
 * containers, integer extremes; and what it prints reads back equal.
 */
static void test_json_encode_matches_jansson(void **state)
{
    (void)state;
    static const char *const texts[] = {
        "{\"a\":\"quote \\\" backslash \\\\ slash / tab \\t nl \\n cr \\r bs \\b ff \\f\"}",
        "[\"\\u0001\\u001f\\u007f\", \"\\u00e9\\u20ac\\ud83d\\ude00\", \"\"]",
        "{\"z\":1,\"a\":{\"y\":[],\"b\":{},\"c\":[{},[],null,true,false]}}",
        "[9223372036854775807, -9223372036854775807, 0, -1]",
        "{\"key\":\"v\\u0000al\"}",
    };
    for (size_t i = 0; i < sizeof(texts) / sizeof(*texts); i++) {
        json_error_t e;
        json_t *v = json_loads(texts[i], JSON_ALLOW_NUL, &e);
        assert_non_null(v);
        size_t len;
        char *ours = codec_encode_json_len(v, &len);
        char *theirs = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
        assert_string_equal(ours, theirs);
        assert_int_equal(len, strlen(theirs));
        json_t *back = json_loadb(ours, len, JSON_ALLOW_NUL, &e);
        assert_true(json_equal(back, v));
        free(ours);
        free(theirs);
        json_decref(back);
        json_decref(v);
    }
    /* integers at the edges, and a text longer than the first buffer */
    json_t *v = json_pack("[IIIII]", (json_int_t)INT64_MIN, (json_int_t)INT64_MAX, (json_int_t)-10, (json_int_t)10,
                          (json_int_t)0);
    char *long_text = calloc(1, 5000);
    memset(long_text, 'x', 4999);
    long_text[100] = '\n';
    json_array_append_new(v, json_string(long_text));
    free(long_text);
    char *ours = codec_encode_json(v), *theirs = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
    assert_string_equal(ours, theirs);
    free(ours);
    free(theirs);
    json_decref(v);
}

/* Hostile input: every decoder must return a value or a 400, never crash or leak. */
static void fuzz_one(const char *buf, size_t len)
{
    lo_err_t err = {0};
    json_t *v;
    json_t *dups = NULL;
    v = codec_decode_yaml(buf, len, &err);
    if (v == NULL)
        assert_int_equal(err.code, 400);
    json_decref(v);
    v = codec_decode_yaml_stream(buf, len, &err);
    json_decref(v);
    v = codec_decode_json_checked(buf, len, &dups, &err);
    if (v == NULL)
        assert_int_equal(err.code, 400);
    json_decref(v);
    json_decref(dups);
    lo_err_clear(&err);
}

static void test_fuzz(void **state)
{
    (void)state;
    static const char seed[] = "apiVersion: langop.io/v1alpha1\nkind: LanguageAgent\nmetadata:\n"
                               "  name: \"a\"\n  labels: {x: 'y', z: [1, 2.5, ~]}\nspec:\n  models:\n"
                               "  - name: m\n    role: primary\n  instructions: |\n    be kind\n"
                               "  ? complex\n  : value\n---\n[{\"a\": \"\\u00e9\", \"b\": [true, null]}]\n";
    static const char alphabet[] = "{}[]:,-?|>'\"\\#&*!%@` \t\n\r\0az09.~\xc3\xa9\xff";
    size_t seed_len = sizeof(seed) - 1;
    char buf[sizeof(seed) + 64];
    unsigned int rnd = 12345;

    for (size_t cut = 0; cut <= seed_len; cut++)
        fuzz_one(seed, cut); /* every truncation */
    for (int round = 0; round < 1500; round++) {
        memcpy(buf, seed, seed_len);
        size_t len = seed_len;
        int edits = 1 + round % 8;
        for (int e = 0; e < edits; e++) {
            rnd = rnd * 1103515245u + 12345u;
            size_t pos = (rnd >> 8) % len;
            buf[pos] = alphabet[(rnd >> 20) % (sizeof(alphabet) - 1)];
        }
        rnd = rnd * 1103515245u + 12345u;
        len = (round & 1) ? len : (rnd >> 8) % (len + 1);
        fuzz_one(buf, len);
    }
    for (int round = 0; round < 300; round++) { /* pure noise */
        size_t len = (size_t)round % sizeof(buf);
        for (size_t i = 0; i < len; i++) {
            rnd = rnd * 1103515245u + 12345u;
            buf[i] = alphabet[(rnd >> 16) % (sizeof(alphabet) - 1)];
        }
        fuzz_one(buf, len);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_yaml_scalars),      cmocka_unit_test(test_yaml_structure),
        cmocka_unit_test(test_yaml_documents),    cmocka_unit_test(test_yaml_errors),
        cmocka_unit_test(test_depth_limit),       cmocka_unit_test(test_json_decode),
        cmocka_unit_test(test_json_duplicates),   cmocka_unit_test(test_yaml_duplicates),   cmocka_unit_test(test_decode_auto),
        cmocka_unit_test(test_yaml_roundtrip),    cmocka_unit_test(test_yaml_encode_shape),
        cmocka_unit_test(test_json_encode),       cmocka_unit_test(test_fuzz),
        cmocka_unit_test(test_yaml_encode_yaml11_lookalikes),
        cmocka_unit_test(test_json_encode_matches_jansson),
        cmocka_unit_test(test_json_fast_path),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
