/*
 * test_liststream.c - a LIST answered as it is read (apiserver/registry/
 * liststream.c), through reads_list against a real store: a short list is
 * answered whole; a long one becomes a stream whose pages are bounded and,
 * put together, are the whole List at one resourceVersion, even when the
 * store changes between pages; a limit longer than a page gets the continue
 * token and remainingItemCount of its last item before its first page is
 * written; a page cut by bytes is one too; a page that can no longer be read
 * (the resourceVersion compacted) breaks the answer.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "fixtures.h"
#include "langop/core/continuetoken.h"
#include "langop/registry/liststream.h"
#include "langop/registry/reads.h"
#include "langop/request/options.h"
#include "langop/request/reqinfo.h"

#define NS "team"
#define COLL "/apis/langop.io/v1alpha1/namespaces/" NS "/languagepersonas"
#define TABLE_ACCEPT "application/json;as=Table;v=v1;g=meta.k8s.io"
#define N 1201 /* more than two pages */

typedef struct fx {
    fx_store_t *st;
    const schema_kind_t *kind;
} fx_t;

static json_t *persona(const char *name, const char *tier, size_t pad)
{
    json_t *o = json_pack("{s:s, s:s, s:{s:s, s:s, s:{s:s}}, s:{s:s}}", "apiVersion", "langop.io/v1alpha1", "kind",
                          "LanguagePersona", "metadata", "name", name, "namespace", NS, "labels", "tier", tier,
                          "spec", "tone", "friendly");
    if (pad > 0) {
        char *text = lo_malloc(pad + 1);
        memset(text, 'x', pad);
        text[pad] = '\0';
        json_object_set_new(json_object_get(o, "spec"), "personality", json_string(text));
        free(text);
    }
    return o;
}

/* Puts n personas p00000.. (every third one tier=gold), each padded with pad bytes. */
static void put_personas(store_t *s, const char *prefix, int n, size_t pad)
{
    for (int i = 0; i < n; i++) {
        char name[32];
        snprintf(name, sizeof(name), "%s%05d", prefix, i);
        json_t *o = persona(name, i % 3 == 0 ? "gold" : "silver", pad);
        store_op_t op = {.resource = "languagepersonas", .ns = NS, .name = name, .kind = STORE_WRITE_PUT,
                         .object = o, .expect_rv = STORE_RV_ANY};
        assert_int_equal(store_write(s, &op, 1), STORE_OK);
        store_op_clear(&op);
        json_decref(o);
    }
}

static int setup(void **state)
{
    if (fx_registry_setup(state) != 0)
        return -1;
    fx_t *f = calloc(1, sizeof(*f));
    f->st = fx_store_open("liststream");
    f->kind = schema_kind_by_resource("languagepersonas");
    if (f->st == NULL || f->kind == NULL)
        return -1;
    put_personas(f->st->s, "p", N, 0);
    put_personas(f->st->s, "big", 40, 20000); /* 40 x 20 kB: pages cut by bytes */
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx_t *f = *state;
    fx_store_close(f->st);
    free(f);
    return fx_registry_teardown(state);
}

/* The answer of GET target (with Accept accept) through reads_list. */
static void list(fx_t *f, const char *target, const char *accept, api_response_t *resp)
{
    reqinfo_t info;
    options_t opts;
    lo_err_t err = {0};
    memset(&info, 0, sizeof(info));
    memset(resp, 0, sizeof(*resp));
    assert_int_equal(reqinfo_parse("GET", target, strlen(target), &info, &err), 0);
    if (options_decode(&info, accept, &opts, &err) != 0)
        fail_msg("%s: %s", target, err.message);
    api_request_t req = {.method = "GET", .target = (char *)target};
    handler_request_t hr = {.store = f->st->s, .kind = f->kind, .info = &info, .req = &req, .opts = &opts};
    reads_list(&hr, resp);
    options_free(&opts);
    reqinfo_free(&info);
    lo_err_clear(&err);
}

/* A stream's pages, read to the end, put together (malloc'd); *pages counts them, *broken if one broke. */
static char *drain(fx_t *f, list_stream_t *ls, size_t *pages, int *broken)
{
    lo_buf_t all = {0};
    *pages = 0;
    *broken = 0;
    for (;;) {
        watch_page_t p;
        liststream_next(ls, f->st->s, &p);
        (*pages)++;
        assert_true(p.len <= 2 * LISTSTREAM_PAGE_BYTES + 25000); /* a page's worth, and one object more */
        lo_buf_put(&all, p.data ? p.data : "", p.len);
        int final = p.final;
        *broken = p.broken;
        watch_page_free(&p);
        if (final || *broken)
            break;
        assert_true(*pages < 1000);
    }
    return all.data;
}

/* The whole answer of target as JSON text: the body, or the stream's pages (*streamed says which). */
static json_t *answer(fx_t *f, const char *target, const char *accept, int *streamed, size_t *pages)
{
    api_response_t resp;
    list(f, target, accept, &resp);
    assert_int_equal(resp.status, 200);
    *streamed = resp.list != NULL;
    *pages = 1;
    char *text;
    if (resp.list) {
        int broken;
        text = drain(f, resp.list, pages, &broken);
        assert_false(broken);
    } else {
        text = lo_strndup(resp.body, resp.body_len);
    }
    json_t *v = fx_json(text);
    free(text);
    api_response_free(&resp);
    return v;
}

static const char *item_name(const json_t *list, size_t i)
{
    return json_string_value(json_object_get(json_object_get(json_array_get(json_object_get(list, "items"), i),
                                                             "metadata"), "name"));
}

static void test_short_list_answered_whole(void **state)
{
    fx_t *f = *state;
    int streamed;
    size_t pages;
    json_t *l = answer(f, COLL "?labelSelector=tier%3Dgold&limit=5", NULL, &streamed, &pages);
    assert_false(streamed);
    assert_int_equal(json_array_size(json_object_get(l, "items")), 5);
    assert_string_equal(item_name(l, 0), "big00000");
    assert_non_null(json_object_get(json_object_get(l, "metadata"), "continue"));
    /* selectors: no remainingItemCount, as kube */
    assert_null(json_object_get(json_object_get(l, "metadata"), "remainingItemCount"));
    json_decref(l);
}

/* The whole collection, in pages: every object once, in order, at one resourceVersion. */
static void test_long_list_streamed_in_pages(void **state)
{
    fx_t *f = *state;
    int streamed;
    size_t pages;
    json_t *l = answer(f, COLL, NULL, &streamed, &pages);
    assert_true(streamed);
    assert_true(pages >= 3);
    json_t *items = json_object_get(l, "items");
    assert_int_equal(json_array_size(items), N + 40);
    assert_string_equal(item_name(l, 40), "p00000");
    assert_string_equal(item_name(l, N + 39), "p01200");
    assert_string_equal(json_string_value(json_object_get(l, "kind")), "LanguagePersonaList");
    assert_null(json_object_get(json_object_get(l, "metadata"), "continue"));
    json_decref(l);
}

/* A change made while the stream is read is not in it: every page is read at the first one's rv. */
static void test_pages_read_at_one_resource_version(void **state)
{
    fx_t *f = *state;
    api_response_t resp;
    list(f, COLL, NULL, &resp);
    assert_non_null(resp.list);
    put_personas(f->st->s, "p", 1, 5); /* p00000 changes: after the first page */
    json_t *o = persona("p99999", "gold", 0);
    store_op_t op = {.resource = "languagepersonas", .ns = NS, .name = "p99999", .kind = STORE_WRITE_PUT,
                     .object = o, .expect_rv = STORE_RV_ANY};
    assert_int_equal(store_write(f->st->s, &op, 1), STORE_OK);
    size_t pages;
    int broken;
    char *text = drain(f, resp.list, &pages, &broken);
    assert_false(broken);
    json_t *l = fx_json(text);
    assert_int_equal(json_array_size(json_object_get(l, "items")), N + 40); /* not p99999 */
    assert_string_equal(item_name(l, 40), "p00000");                         /* as it was */
    assert_null(json_object_get(json_object_get(json_array_get(json_object_get(l, "items"), 40), "spec"),
                                "personality"));
    json_decref(l);
    free(text);
    api_response_free(&resp);
    /* undo, for the other tests */
    store_op_clear(&op);
    op = (store_op_t){.resource = "languagepersonas", .ns = NS, .name = "p99999", .kind = STORE_WRITE_DELETE,
                      .expect_rv = STORE_RV_ANY};
    assert_int_equal(store_write(f->st->s, &op, 1), STORE_OK);
    store_op_clear(&op);
    json_decref(o);
}

/* limit above a page: the metadata (continue after the limit-th, remainingItemCount) comes first. */
static void test_limit_longer_than_a_page(void **state)
{
    fx_t *f = *state;
    int streamed;
    size_t pages;
    json_t *l = answer(f, COLL "?limit=700", NULL, &streamed, &pages);
    assert_true(streamed);
    json_t *meta = json_object_get(l, "metadata");
    assert_int_equal(json_array_size(json_object_get(l, "items")), 700);
    assert_int_equal(json_integer_value(json_object_get(meta, "remainingItemCount")), N + 40 - 700);
    int64_t rv;
    char *ns = NULL, *name = NULL;
    lo_err_t err = {0};
    const char *token = json_string_value(json_object_get(meta, "continue"));
    assert_int_equal(continue_token_decode(token, &rv, &ns, &name, &err), 0);
    assert_string_equal(ns, NS);
    assert_string_equal(name, item_name(l, 699));
    assert_int_equal(rv, strtoll(json_string_value(json_object_get(meta, "resourceVersion")), NULL, 10));
    free(ns);
    free(name);

    /* the rest, from the token: the remaining items and no further token */
    char *next = lo_sprintf(COLL "?limit=700&continue=%s", token);
    json_t *rest = answer(f, next, NULL, &streamed, &pages);
    assert_int_equal(json_array_size(json_object_get(rest, "items")), N + 40 - 700);
    assert_string_equal(item_name(rest, 0), "p00660");
    assert_null(json_object_get(json_object_get(rest, "metadata"), "continue"));
    assert_null(json_object_get(json_object_get(rest, "metadata"), "remainingItemCount"));
    free(next);
    json_decref(rest);
    json_decref(l);

    /* with a selector: the limit counts matches, and no remainingItemCount */
    l = answer(f, COLL "?limit=600&labelSelector=tier%3Dsilver", NULL, &streamed, &pages);
    assert_true(streamed);
    assert_int_equal(json_array_size(json_object_get(l, "items")), 600);
    meta = json_object_get(l, "metadata");
    assert_null(json_object_get(meta, "remainingItemCount"));
    assert_int_equal(continue_token_decode(json_string_value(json_object_get(meta, "continue")), &rv, &ns, &name,
                                           &err), 0);
    assert_string_equal(name, item_name(l, 599));
    free(ns);
    free(name);
    json_decref(l);
}

/* A limit within a page whose objects fill its bytes: streamed, with the same metadata as one page. */
static void test_limit_cut_by_bytes(void **state)
{
    fx_t *f = *state;
    int streamed;
    size_t pages;
    json_t *l = answer(f, COLL "?limit=30", NULL, &streamed, &pages);
    assert_true(streamed); /* 30 x 20 kB > a page */
    assert_true(pages >= 2);
    assert_int_equal(json_array_size(json_object_get(l, "items")), 30);
    json_t *meta = json_object_get(l, "metadata");
    assert_int_equal(json_integer_value(json_object_get(meta, "remainingItemCount")), N + 10);
    int64_t rv;
    char *ns = NULL, *name = NULL;
    lo_err_t err = {0};
    assert_int_equal(continue_token_decode(json_string_value(json_object_get(meta, "continue")), &rv, &ns, &name,
                                           &err), 0);
    assert_string_equal(name, "big00029");
    free(ns);
    free(name);
    json_decref(l);
}

/* YAML and Table answers stream too, and say the same as the JSON one. */
static void test_yaml_and_table_streamed(void **state)
{
    fx_t *f = *state;
    api_response_t resp;
    list(f, COLL, "application/yaml", &resp);
    assert_non_null(resp.list);
    assert_string_equal(resp.content_type, "application/yaml");
    size_t pages;
    int broken;
    char *text = drain(f, resp.list, &pages, &broken);
    json_t *y = fx_yaml(text);
    free(text);
    api_response_free(&resp);
    int streamed;
    json_t *j = answer(f, COLL, NULL, &streamed, &pages);
    assert_true(json_equal(y, j));
    json_decref(y);

    json_t *t = answer(f, COLL, TABLE_ACCEPT, &streamed, &pages);
    assert_true(streamed);
    json_t *rows = json_object_get(t, "rows");
    assert_int_equal(json_array_size(rows), N + 40);
    assert_string_equal(json_string_value(json_array_get(json_object_get(json_array_get(rows, 41), "cells"), 0)),
                        item_name(j, 41));
    assert_true(json_array_size(json_object_get(t, "columnDefinitions")) >= 1);
    json_decref(t);
    json_decref(j);
}

/* The rv is compacted away between two pages: the answer breaks (the transport cuts it off). */
static void test_compacted_between_pages_breaks(void **state)
{
    fx_t *f = *state;
    api_response_t resp;
    list(f, COLL, NULL, &resp);
    assert_non_null(resp.list);
    put_personas(f->st->s, "p", 2, 0); /* newer revisions of this collection */
    lo_err_t err = {0};
    int64_t horizon = 0;
    assert_int_equal(store_compact(f->st->s, 0, 0, &horizon, &err), STORE_OK);
    size_t pages;
    int broken;
    char *text = drain(f, resp.list, &pages, &broken);
    assert_true(broken);
    assert_int_equal(pages, 2); /* the first page was read before; the second breaks */
    free(text);
    api_response_free(&resp);

    /* and a new list is whole again (once the store is past the horizon: a list at it is refused) */
    put_personas(f->st->s, "q", 1, 0);
    int streamed;
    json_t *l = answer(f, COLL, NULL, &streamed, &pages);
    assert_int_equal(json_array_size(json_object_get(l, "items")), N + 41);
    json_decref(l);
}

/* Errors come before the first byte: a Status, never a stream. */
static void test_errors_before_the_first_page(void **state)
{
    fx_t *f = *state;
    api_response_t resp;
    list(f, COLL "?resourceVersion=999999999&resourceVersionMatch=Exact", NULL, &resp);
    assert_int_equal(resp.status, 504);
    assert_null(resp.list);
    api_response_free(&resp);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_short_list_answered_whole),
        cmocka_unit_test(test_long_list_streamed_in_pages),
        cmocka_unit_test(test_pages_read_at_one_resource_version),
        cmocka_unit_test(test_limit_longer_than_a_page),
        cmocka_unit_test(test_limit_cut_by_bytes),
        cmocka_unit_test(test_yaml_and_table_streamed),
        cmocka_unit_test(test_errors_before_the_first_page),
        cmocka_unit_test(test_compacted_between_pages_breaks), /* last: it compacts the store's history */
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
