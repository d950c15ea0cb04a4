/*
 * test_encode.c - answer encodings (apiserver/request/encode.c), above all
 * a List written in pieces: put together, its pieces must be the bytes the
 * whole-tree encoders give for the same List (encode_object for JSON and
 * YAML, table_render for a Table), for any number of items, with and
 * without continue and remainingItemCount, and for items whose YAML needs
 * quoting, block text, nesting and empty collections.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "fixtures.h"
#include "langop/core/codec.h"
#include "langop/request/encode.h"
#include "langop/schema/table.h"

#define NOW 1767225600 /* 2026-01-01T00:00:00Z: Age cells are computed from this */

static const schema_kind_t *models;

static int setup(void **state)
{
    if (fx_registry_setup(state) != 0)
        return -1;
    models = schema_kind_by_resource("languagemodels");
    return models ? 0 : -1;
}

/* Item i of a test list: every few items one that the YAML emitter has to quote or fold differently. */
static json_t *item(size_t i)
{
    static const char *const odd[] = {"yes", "1.5", "2024-06-01", "a: b", "line one\nline two\n", "", "~",
                                      "ünïcödé", "- dash", "\"quoted\"", "1:30", "null"};
    char name[32];
    snprintf(name, sizeof(name), "m%05zu", i);
    json_t *o = json_pack("{s:s, s:s, s:{s:s, s:s, s:s, s:{s:s}}, s:{s:s, s:s, s:{s:s, s:I, s:f, s:b, s:n, s:[], s:{}}}}",
                          "apiVersion", "langop.io/v1alpha1", "kind", "LanguageModel", "metadata", "name", name,
                          "namespace", "team", "creationTimestamp", "2025-12-31T23:00:00Z", "labels", "tier",
                          odd[i % (sizeof(odd) / sizeof(*odd))], "spec", "provider", "openai", "modelName",
                          odd[(i + 3) % (sizeof(odd) / sizeof(*odd))], "params", "note",
                          odd[(i + 7) % (sizeof(odd) / sizeof(*odd))], "n", (json_int_t)i, "t", 0.25 * (double)i,
                          "on", (int)(i % 2), "none", "empty", "obj");
    assert_non_null(o);
    return o;
}

static json_t *items_of(size_t n)
{
    json_t *a = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(a, item(i));
    return a;
}

/* The List's metadata: with a continue token and a remaining count when more says so. */
static json_t *meta_of(int more)
{
    return more ? json_pack("{s:s, s:s, s:I}", "resourceVersion", "42", "continue", "eyJ2IjoibWV0YS5rOHMuaW8vdjEifQ",
                            "remainingItemCount", (json_int_t)7)
                : json_pack("{s:s}", "resourceVersion", "42");
}

/* What main's encoders give for the whole List (malloc'd, *len set). */
static char *whole(encode_format_t format, const json_t *items, const json_t *meta, table_include_t include,
                   size_t *len)
{
    json_t *list = json_pack("{s:s, s:s, s:O, s:O}", "apiVersion", "langop.io/v1alpha1", "kind", "LanguageModelList",
                             "metadata", meta, "items", items);
    json_t *doc = format == ENCODE_TABLE ? table_render(models, items, meta, include, 1, NOW) : json_incref(list);
    api_response_t resp = {0};
    encode_object(&resp, 200, format, doc);
    char *body = resp.body;
    *len = resp.body_len;
    assert_string_equal(resp.content_type, encode_content_type(format));
    resp.body = NULL;
    api_response_free(&resp);
    json_decref(doc);
    json_decref(list);
    return body;
}

/* The same List in pieces: the head, then the items in pages of page_size, then the end, each piece apart. */
static char *pieces(encode_format_t format, const json_t *items, const json_t *meta, table_include_t include,
                    size_t page_size, size_t *len)
{
    lo_buf_t all = {0};
    lo_buf_t piece = {0};
    encode_list_t *e = encode_list_begin(models, format, include, meta, NOW, &piece);
    size_t n = json_array_size(items);
    for (size_t i = 0; i <= n; i++) {
        if (i == n || (i > 0 && i % page_size == 0)) { /* a page is handed on: nothing of it may be missing */
            lo_buf_put(&all, piece.data ? piece.data : "", piece.len);
            piece.len = 0;
        }
        if (i < n)
            encode_list_item(e, json_array_get(items, i), &piece);
    }
    encode_list_end(e, &piece);
    assert_false(encode_list_failed(e));
    lo_buf_put(&all, piece.data ? piece.data : "", piece.len);
    free(piece.data);
    encode_list_free(e);
    *len = all.len;
    return all.data ? all.data : lo_strdup("");
}

static void check_same(encode_format_t format, size_t n, int more, table_include_t include, size_t page_size)
{
    json_t *items = items_of(n);
    json_t *meta = meta_of(more);
    size_t wlen, plen;
    char *w = whole(format, items, meta, include, &wlen);
    char *p = pieces(format, items, meta, include, page_size, &plen);
    if (wlen != plen || memcmp(w, p, wlen) != 0)
        fail_msg("format %d, %zu items, pages of %zu: the pieces differ from the whole List\n--- whole:\n%.600s\n"
                 "--- pieces:\n%.600s",
                 format, n, page_size, w, p);
    free(w);
    free(p);
    json_decref(meta);
    json_decref(items);
}

static void test_json_pieces_are_the_whole_list(void **state)
{
    (void)state;
    static const size_t counts[] = {0, 1, 2, 13, 500, 1201};
    for (size_t c = 0; c < sizeof(counts) / sizeof(*counts); c++)
        for (int more = 0; more <= 1; more++) {
            check_same(ENCODE_JSON, counts[c], more, TABLE_INCLUDE_METADATA, 1);
            check_same(ENCODE_JSON, counts[c], more, TABLE_INCLUDE_METADATA, 500);
        }
}

static void test_yaml_pieces_are_the_whole_list(void **state)
{
    (void)state;
    static const size_t counts[] = {0, 1, 2, 13, 700};
    for (size_t c = 0; c < sizeof(counts) / sizeof(*counts); c++)
        for (int more = 0; more <= 1; more++) {
            check_same(ENCODE_YAML, counts[c], more, TABLE_INCLUDE_METADATA, 1);
            check_same(ENCODE_YAML, counts[c], more, TABLE_INCLUDE_METADATA, 7);
            check_same(ENCODE_YAML, counts[c], more, TABLE_INCLUDE_METADATA, 500);
        }
}

static void test_table_pieces_are_the_whole_table(void **state)
{
    (void)state;
    static const size_t counts[] = {0, 1, 13, 600};
    static const table_include_t includes[] = {TABLE_INCLUDE_METADATA, TABLE_INCLUDE_OBJECT, TABLE_INCLUDE_NONE};
    for (size_t c = 0; c < sizeof(counts) / sizeof(*counts); c++)
        for (size_t i = 0; i < sizeof(includes) / sizeof(*includes); i++)
            for (int more = 0; more <= 1; more++)
                check_same(ENCODE_TABLE, counts[c], more, includes[i], 250);
}

/* Each piece of a YAML sequence is the text up to what libyaml holds back to look ahead: never a whole item. */
static void test_yaml_pieces_come_as_items_are_added(void **state)
{
    (void)state;
    json_t *head = json_pack("{s:s}", "kind", "LanguageModelList");
    codec_yaml_seq_t *w = codec_yaml_seq_open(head, "items");
    json_t *one = item(1);
    size_t total = 0, len;
    for (int i = 0; i < 50; i++) {
        codec_yaml_seq_add(w, one);
        char *text = codec_yaml_seq_take(w, &len);
        assert_non_null(text);
        assert_true(i == 0 || len > 100); /* every added item comes out (the first one may be held back) */
        total += len;
        free(text);
    }
    codec_yaml_seq_close(w);
    char *rest = codec_yaml_seq_take(w, &len);
    assert_non_null(rest);
    assert_true(len < 400); /* the end holds at most the last item */
    total += len;
    free(rest);
    codec_yaml_seq_free(w);
    json_t *items = json_array();
    for (int i = 0; i < 50; i++)
        json_array_append(items, one);
    json_object_set_new(head, "items", items);
    char *all = codec_encode_yaml(head);
    assert_int_equal(total, strlen(all));
    free(all);
    json_decref(one);
    json_decref(head);
}

static void test_content_types(void **state)
{
    (void)state;
    assert_string_equal(encode_content_type(ENCODE_JSON), "application/json");
    assert_string_equal(encode_content_type(ENCODE_YAML), "application/yaml");
    assert_string_equal(encode_content_type(ENCODE_TABLE), ENCODE_TABLE_CONTENT_TYPE);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_json_pieces_are_the_whole_list),
        cmocka_unit_test(test_yaml_pieces_are_the_whole_list),
        cmocka_unit_test(test_table_pieces_are_the_whole_table),
        cmocka_unit_test(test_yaml_pieces_come_as_items_are_added),
        cmocka_unit_test(test_content_types),
    };
    return cmocka_run_group_tests(tests, setup, fx_registry_teardown);
}
