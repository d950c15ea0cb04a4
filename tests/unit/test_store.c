/*
 * test_store.c - the object store (storage/sqlite_store.c) against its
 * contract in langop/store.h, on a throw-away database under /tmp.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <sys/stat.h>
#include <sqlite3.h>

#include "langop/store.h"

#define RES "languagemodels"

/* ---- fixture: a fresh directory and an open store ---- */

typedef struct fx {
    char dir[64];
    char path[96];
    store_t *s;
} fx_t;

static store_t *open_store(const char *path)
{
    lo_err_t err = {0};
    store_options_t opts = {.path = path, .sync_full = 0};
    store_t *s = store_open(&opts, &err);
    if (s == NULL)
        fail_msg("store_open(%s): %s", path, err.message);
    return s;
}

static int setup(void **state)
{
    fx_t *f = calloc(1, sizeof(*f));
    snprintf(f->dir, sizeof(f->dir), "/tmp/test_store.XXXXXX");
    if (mkdtemp(f->dir) == NULL)
        return -1;
    snprintf(f->path, sizeof(f->path), "%s/store.db", f->dir);
    f->s = open_store(f->path);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx_t *f = *state;
    static const char *suffixes[] = {"", "-wal", "-shm", "-journal"};
    store_close(f->s);
    for (size_t i = 0; i < sizeof(suffixes) / sizeof(*suffixes); i++) {
        char p[128];
        snprintf(p, sizeof(p), "%s%s", f->path, suffixes[i]);
        unlink(p);
    }
    rmdir(f->dir);
    free(f);
    return 0;
}

/* ---- objects and mutate callbacks ---- */

static json_t *mk_obj(const char *ns, const char *name, int v)
{
    return json_pack("{s:s, s:{s:s, s:s}, s:{s:i}}", "kind", "LanguageModel", "metadata", "name", name,
                     "namespace", ns, "spec", "v", v);
}

static int64_t obj_rv(const json_t *obj)
{
    const char *s = json_string_value(json_object_get(json_object_get(obj, "metadata"), "resourceVersion"));
    return s ? strtoll(s, NULL, 10) : -1;
}

static int obj_v(const json_t *obj)
{
    return (int)json_integer_value(json_object_get(json_object_get(obj, "spec"), "v"));
}

/* ctx: the desired object (borrowed). */
static int put_cb(store_txn_t *txn, const json_t *current, json_t **next, void *ctx, lo_err_t *err)
{
    (void)txn, (void)current, (void)err;
    *next = json_deep_copy(ctx);
    return STORE_WRITE_PUT;
}

static int delete_cb(store_txn_t *txn, const json_t *current, json_t **next, void *ctx, lo_err_t *err)
{
    (void)txn, (void)current, (void)next, (void)ctx, (void)err;
    return STORE_WRITE_DELETE;
}

static int noop_cb(store_txn_t *txn, const json_t *current, json_t **next, void *ctx, lo_err_t *err)
{
    (void)txn, (void)current, (void)next, (void)ctx, (void)err;
    return STORE_WRITE_NOOP;
}

static int abort_cb(store_txn_t *txn, const json_t *current, json_t **next, void *ctx, lo_err_t *err)
{
    (void)txn, (void)current, (void)next, (void)ctx;
    lo_err_set(err, 409, "Conflict", "refused");
    return -1;
}

static int write_obj(store_t *s, const char *ns, const char *name, store_mutate_fn fn, void *ctx, int dry_run,
                     store_write_result_t *res)
{
    lo_err_t err = {0};
    store_write_t w = {.resource = RES, .ns = ns, .name = name, .mutate = fn, .ctx = ctx, .dry_run = dry_run};
    int rc = store_write(s, &w, res, &err);
    lo_err_clear(&err);
    return rc;
}

/* Creates or replaces ns/name with spec.v = v; returns the new rv. */
static int64_t put(store_t *s, const char *ns, const char *name, int v)
{
    json_t *obj = mk_obj(ns, name, v);
    store_write_result_t res;
    assert_int_equal(write_obj(s, ns, name, put_cb, obj, 0, &res), STORE_OK);
    assert_int_equal(res.kind, STORE_WRITE_PUT);
    int64_t rv = res.rv;
    assert_int_equal(obj_rv(res.object), rv);
    store_write_result_free(&res);
    json_decref(obj);
    return rv;
}

static int64_t del(store_t *s, const char *ns, const char *name)
{
    store_write_result_t res;
    assert_int_equal(write_obj(s, ns, name, delete_cb, NULL, 0, &res), STORE_OK);
    assert_int_equal(res.kind, STORE_WRITE_DELETE);
    int64_t rv = res.rv;
    store_write_result_free(&res);
    return rv;
}

static int64_t current_rv(store_t *s)
{
    int64_t rv = -1;
    assert_int_equal(store_current_rv(s, &rv, NULL), STORE_OK);
    return rv;
}

/* ---- commit hook recorder ---- */

#define HOOK_MAX 4096

typedef struct hook_log {
    size_t n;
    int64_t rv[HOOK_MAX];
    store_event_type_t type[HOOK_MAX];
    char name[HOOK_MAX][32];
    int64_t obj_rv[HOOK_MAX];
} hook_log_t;

static void record_hook(void *ctx, const store_event_t *ev)
{
    hook_log_t *h = ctx;
    if (h->n >= HOOK_MAX)
        return;
    h->rv[h->n] = ev->rv;
    h->type[h->n] = ev->type;
    snprintf(h->name[h->n], sizeof(h->name[0]), "%s", ev->name);
    h->obj_rv[h->n] = obj_rv(ev->object);
    h->n++;
}

/* ---- tests ---- */

static void test_crud(void **state)
{
    fx_t *f = *state;
    hook_log_t *h = calloc(1, sizeof(*h));
    store_set_commit_hook(f->s, record_hook, h);
    assert_int_equal(current_rv(f->s), 0);

    /* A client-supplied resourceVersion on create is replaced by the store's. */
    json_t *obj = mk_obj("ns1", "a", 1);
    json_object_set_new(json_object_get(obj, "metadata"), "resourceVersion", json_string("999"));
    store_write_result_t res;
    assert_int_equal(write_obj(f->s, "ns1", "a", put_cb, obj, 0, &res), STORE_OK);
    int64_t rv1 = res.rv;
    assert_true(rv1 > 0);
    assert_int_equal(obj_rv(res.object), rv1);
    store_write_result_free(&res);
    json_decref(obj);

    json_t *got = NULL;
    assert_int_equal(store_get(f->s, RES, "ns1", "a", &got, NULL), STORE_OK);
    assert_int_equal(obj_rv(got), rv1);
    assert_int_equal(obj_v(got), 1);
    json_decref(got);
    assert_int_equal(current_rv(f->s), rv1);

    int64_t rv2 = put(f->s, "ns1", "a", 2);
    assert_true(rv2 > rv1);
    assert_int_equal(store_get(f->s, RES, "ns1", "a", &got, NULL), STORE_OK);
    assert_int_equal(obj_rv(got), rv2);
    assert_int_equal(obj_v(got), 2);
    json_decref(got);

    assert_int_equal(write_obj(f->s, "ns1", "a", delete_cb, NULL, 0, &res), STORE_OK);
    int64_t rv3 = res.rv;
    assert_true(rv3 > rv2);
    assert_int_equal(res.kind, STORE_WRITE_DELETE);
    assert_int_equal(obj_v(res.object), 2);       /* last state */
    assert_int_equal(obj_rv(res.object), rv3);    /* carrying the deletion rv */
    store_write_result_free(&res);

    lo_err_t err = {0};
    assert_int_equal(store_get(f->s, RES, "ns1", "a", &got, &err), STORE_NOT_FOUND);
    assert_null(got);
    assert_int_equal(err.code, 404);
    assert_int_equal(write_obj(f->s, "ns1", "a", delete_cb, NULL, 0, &res), STORE_NOT_FOUND);
    assert_int_equal(current_rv(f->s), rv3);

    /* Same name, other namespace / resource: distinct keys. */
    put(f->s, "ns2", "a", 7);
    assert_int_equal(store_get(f->s, "languageagents", "ns2", "a", &got, NULL), STORE_NOT_FOUND);

    assert_int_equal(h->n, 4);
    assert_int_equal(h->type[0], STORE_EVENT_ADDED);
    assert_int_equal(h->type[1], STORE_EVENT_MODIFIED);
    assert_int_equal(h->type[2], STORE_EVENT_DELETED);
    assert_int_equal(h->type[3], STORE_EVENT_ADDED);
    assert_int_equal(h->rv[0], rv1);
    assert_int_equal(h->rv[1], rv2);
    assert_int_equal(h->rv[2], rv3);
    for (size_t i = 0; i < h->n; i++)
        assert_int_equal(h->obj_rv[i], h->rv[i]);

    int64_t compacted = -1;
    assert_int_equal(store_compacted_rv(f->s, &compacted, NULL), STORE_OK);
    assert_int_equal(compacted, 0);
    store_set_commit_hook(f->s, NULL, NULL);
    free(h);
}

/* DELETE with a last state given by the callback reports that state. */
static int delete_with_state_cb(store_txn_t *txn, const json_t *current, json_t **next, void *ctx, lo_err_t *err)
{
    (void)txn, (void)ctx, (void)err;
    *next = json_deep_copy(current);
    json_object_set_new(json_object_get(*next, "metadata"), "deletionTimestamp", json_string("now"));
    return STORE_WRITE_DELETE;
}

static void test_delete_last_state(void **state)
{
    fx_t *f = *state;
    put(f->s, "ns", "a", 1);
    store_write_result_t res;
    assert_int_equal(write_obj(f->s, "ns", "a", delete_with_state_cb, NULL, 0, &res), STORE_OK);
    assert_string_equal(json_string_value(json_object_get(json_object_get(res.object, "metadata"),
                                                          "deletionTimestamp")),
                        "now");
    assert_int_equal(obj_rv(res.object), res.rv);
    store_write_result_free(&res);
}

static void test_noop(void **state)
{
    fx_t *f = *state;
    hook_log_t *h = calloc(1, sizeof(*h));
    int64_t rv = put(f->s, "ns", "a", 1);
    put(f->s, "ns", "b", 1);
    int64_t cur = current_rv(f->s);
    store_set_commit_hook(f->s, record_hook, h);

    /* Equal content with another resourceVersion is still a no-op. */
    json_t *same = mk_obj("ns", "a", 1);
    json_object_set_new(json_object_get(same, "metadata"), "resourceVersion", json_string("12345"));
    store_write_result_t res;
    assert_int_equal(write_obj(f->s, "ns", "a", put_cb, same, 0, &res), STORE_OK);
    assert_int_equal(res.kind, STORE_WRITE_NOOP);
    assert_int_equal(res.rv, rv);
    assert_int_equal(obj_rv(res.object), rv);
    store_write_result_free(&res);
    json_decref(same);

    assert_int_equal(write_obj(f->s, "ns", "a", noop_cb, NULL, 0, &res), STORE_OK);
    assert_int_equal(res.kind, STORE_WRITE_NOOP);
    assert_int_equal(res.rv, rv);
    assert_int_equal(obj_v(res.object), 1);
    store_write_result_free(&res);

    /* NOOP on an absent object: nothing, rv 0. */
    assert_int_equal(write_obj(f->s, "ns", "zz", noop_cb, NULL, 0, &res), STORE_OK);
    assert_int_equal(res.kind, STORE_WRITE_NOOP);
    assert_null(res.object);
    assert_int_equal(res.rv, 0);

    assert_int_equal(current_rv(f->s), cur);
    assert_int_equal(h->n, 0);
    store_set_commit_hook(f->s, NULL, NULL);
    free(h);
}

static void test_dry_run(void **state)
{
    fx_t *f = *state;
    hook_log_t *h = calloc(1, sizeof(*h));
    store_set_commit_hook(f->s, record_hook, h);
    json_t *obj = mk_obj("ns", "a", 1);
    json_t *got = NULL;
    store_write_result_t res;

    assert_int_equal(write_obj(f->s, "ns", "a", put_cb, obj, 1, &res), STORE_OK);
    assert_int_equal(res.kind, STORE_WRITE_PUT);
    assert_int_equal(res.rv, 0);
    assert_int_equal(obj_v(res.object), 1);
    assert_int_equal(obj_rv(res.object), -1); /* no resourceVersion on a dry create */
    store_write_result_free(&res);
    assert_int_equal(store_get(f->s, RES, "ns", "a", &got, NULL), STORE_NOT_FOUND);
    assert_int_equal(current_rv(f->s), 0);

    int64_t rv = put(f->s, "ns", "a", 1);
    json_t *changed = mk_obj("ns", "a", 2);
    assert_int_equal(write_obj(f->s, "ns", "a", put_cb, changed, 1, &res), STORE_OK);
    assert_int_equal(res.kind, STORE_WRITE_PUT);
    assert_int_equal(res.rv, 0);
    assert_int_equal(obj_v(res.object), 2);
    store_write_result_free(&res);

    assert_int_equal(write_obj(f->s, "ns", "a", delete_cb, NULL, 1, &res), STORE_OK);
    assert_int_equal(res.kind, STORE_WRITE_DELETE);
    assert_int_equal(res.rv, 0);
    assert_non_null(res.object);
    store_write_result_free(&res);

    assert_int_equal(store_get(f->s, RES, "ns", "a", &got, NULL), STORE_OK);
    assert_int_equal(obj_v(got), 1);
    assert_int_equal(obj_rv(got), rv);
    json_decref(got);
    assert_int_equal(current_rv(f->s), rv);
    assert_int_equal(h->n, 1); /* only the real create */
    store_set_commit_hook(f->s, NULL, NULL);
    json_decref(obj);
    json_decref(changed);
    free(h);
}

static void test_abort(void **state)
{
    fx_t *f = *state;
    int64_t rv = put(f->s, "ns", "a", 1);
    store_write_result_t res;
    lo_err_t err = {0};
    store_write_t w = {.resource = RES, .ns = "ns", .name = "a", .mutate = abort_cb};
    assert_int_equal(store_write(f->s, &w, &res, &err), STORE_ABORTED);
    assert_int_equal(err.code, 409);
    assert_string_equal(err.message, "refused");
    assert_null(res.object);

    json_t *got = NULL;
    assert_int_equal(store_get(f->s, RES, "ns", "a", &got, NULL), STORE_OK);
    assert_int_equal(obj_v(got), 1);
    assert_int_equal(obj_rv(got), rv);
    json_decref(got);
    assert_int_equal(current_rv(f->s), rv);
    /* The writer is usable afterwards. */
    assert_true(put(f->s, "ns", "a", 2) > rv);
}

/* Reads other objects inside the transaction, then creates ns1/d. */
typedef struct txn_probe {
    int get_rc, missing_rc;
    int v_of_a;
    int64_t n_ns1, n_ns2, n_cluster;
    json_t *obj;
} txn_probe_t;

static int txn_cb(store_txn_t *txn, const json_t *current, json_t **next, void *ctx, lo_err_t *err)
{
    txn_probe_t *p = ctx;
    json_t *a = NULL, *missing = NULL;
    assert_null(current);
    p->get_rc = store_txn_get(txn, RES, "ns1", "a", &a, err);
    p->v_of_a = a ? obj_v(a) : -1;
    json_decref(a);
    p->missing_rc = store_txn_get(txn, RES, "ns1", "nope", &missing, err);
    if (store_txn_count(txn, RES, "ns1", &p->n_ns1, err) != STORE_OK ||
        store_txn_count(txn, RES, "ns2", &p->n_ns2, err) != STORE_OK ||
        store_txn_count(txn, RES, "", &p->n_cluster, err) != STORE_OK)
        return -1;
    *next = json_deep_copy(p->obj);
    return STORE_WRITE_PUT;
}

static void test_txn_reads(void **state)
{
    fx_t *f = *state;
    put(f->s, "ns1", "a", 5);
    put(f->s, "ns1", "b", 6);
    put(f->s, "ns2", "c", 7);
    txn_probe_t p = {.obj = mk_obj("ns1", "d", 1)};
    store_write_result_t res;
    assert_int_equal(write_obj(f->s, "ns1", "d", txn_cb, &p, 0, &res), STORE_OK);
    store_write_result_free(&res);
    assert_int_equal(p.get_rc, STORE_OK);
    assert_int_equal(p.v_of_a, 5);
    assert_int_equal(p.missing_rc, STORE_NOT_FOUND);
    assert_int_equal(p.n_ns1, 2);
    assert_int_equal(p.n_ns2, 1);
    assert_int_equal(p.n_cluster, 0);
    json_decref(p.obj);
}

/* ---- lists ---- */

static int list(store_t *s, const store_list_opts_t *o, store_list_result_t *out)
{
    lo_err_t err = {0};
    int rc = store_list(s, o, out, &err);
    lo_err_clear(&err);
    return rc;
}

static const char *item_key(const json_t *items, size_t i, const char *field)
{
    return json_string_value(json_object_get(json_object_get(json_array_get(items, i), "metadata"), field));
}

static int key_cmp(const void *a, const void *b)
{
    const char *const *x = a, *const *y = b;
    int c = strcmp(x[0], y[0]);
    return c ? c : strcmp(x[1], y[1]);
}

static void test_list_order(void **state)
{
    fx_t *f = *state;
    /* Byte-wise traps: upper case before lower, '-' before digits, "" first. */
    const char *keys[][2] = {{"b", "x"}, {"a", "a1"}, {"a", "B"}, {"", "zz"}, {"a", "a-1"},
                             {"B", "q"}, {"a", "a"},  {"b", "a"}, {"", "c"}};
    size_t n = sizeof(keys) / sizeof(*keys);
    for (size_t i = 0; i < n; i++)
        put(f->s, keys[i][0], keys[i][1], (int)i);
    put(f->s, "a", "other-resource-is-not-listed", 0);
    {
        /* an object of another resource, same namespace */
        json_t *o = mk_obj("a", "x", 0);
        store_write_result_t res;
        lo_err_t err = {0};
        store_write_t w = {.resource = "languageagents", .ns = "a", .name = "x", .mutate = put_cb, .ctx = o};
        assert_int_equal(store_write(f->s, &w, &res, &err), STORE_OK);
        store_write_result_free(&res);
        json_decref(o);
    }
    del(f->s, "a", "other-resource-is-not-listed");
    qsort(keys, n, sizeof(*keys), key_cmp);

    store_list_opts_t o = {.resource = RES};
    store_list_result_t r;
    assert_int_equal(list(f->s, &o, &r), STORE_OK);
    assert_int_equal(json_array_size(r.items), n);
    for (size_t i = 0; i < n; i++) {
        assert_string_equal(item_key(r.items, i, "namespace"), keys[i][0]);
        assert_string_equal(item_key(r.items, i, "name"), keys[i][1]);
        assert_true(obj_rv(json_array_get(r.items, i)) > 0);
    }
    assert_int_equal(r.rv, current_rv(f->s));
    assert_int_equal(r.more, 0);
    assert_null(r.last_ns);
    store_list_result_free(&r);

    o.ns = "a";
    assert_int_equal(list(f->s, &o, &r), STORE_OK);
    assert_int_equal(json_array_size(r.items), 4);
    assert_string_equal(item_key(r.items, 0, "name"), "B");
    assert_string_equal(item_key(r.items, 1, "name"), "a");
    assert_string_equal(item_key(r.items, 2, "name"), "a-1");
    assert_string_equal(item_key(r.items, 3, "name"), "a1");
    store_list_result_free(&r);

    o.ns = "none";
    assert_int_equal(list(f->s, &o, &r), STORE_OK);
    assert_int_equal(json_array_size(r.items), 0);
    store_list_result_free(&r);
}

static int even_filter(const json_t *obj, void *ctx)
{
    int *calls = ctx;
    (*calls)++;
    return obj_v(obj) % 2 == 0;
}

/*
 * Pages through the list with limit and continue keys, at the rv of the
 * first page, and checks every matching object comes exactly once and in
 * order. Between pages, mutate() changes the store.
 */
static void page_all(store_t *s, const char *ns, size_t limit, int use_filter, const char *const *want,
                     size_t n_want, void (*mutate)(store_t *, int page))
{
    int calls = 0;
    store_list_opts_t o = {.resource = RES, .ns = ns, .limit = limit};
    if (use_filter) {
        o.filter = even_filter;
        o.filter_ctx = &calls;
    }
    size_t seen = 0;
    char *after_ns = NULL, *after_name = NULL;
    for (int page = 0;; page++) {
        store_list_result_t r;
        assert_int_equal(list(s, &o, &r), STORE_OK);
        if (page == 0)
            o.at_rv = r.rv;
        assert_int_equal(r.rv, o.at_rv);
        size_t got = json_array_size(r.items);
        assert_true(got <= limit);
        for (size_t i = 0; i < got; i++) {
            char key[80];
            snprintf(key, sizeof(key), "%s/%s", item_key(r.items, i, "namespace"), item_key(r.items, i, "name"));
            assert_true(seen < n_want);
            assert_string_equal(key, want[seen]);
            if (use_filter)
                assert_int_equal(obj_v(json_array_get(r.items, i)) % 2, 0);
            seen++;
        }
        free(after_ns);
        free(after_name);
        after_ns = after_name = NULL;
        if (!r.more) {
            assert_int_equal(r.remaining, 0);
            store_list_result_free(&r);
            break;
        }
        assert_int_equal(got, limit);
        assert_int_equal(r.remaining, (int64_t)(n_want - seen));
        assert_string_equal(r.last_ns, item_key(r.items, got - 1, "namespace"));
        assert_string_equal(r.last_name, item_key(r.items, got - 1, "name"));
        after_ns = r.last_ns;
        after_name = r.last_name;
        r.last_ns = r.last_name = NULL;
        o.after_ns = after_ns;
        o.after_name = after_name;
        store_list_result_free(&r);
        if (mutate)
            mutate(s, page);
    }
    assert_int_equal(seen, n_want);
    if (use_filter)
        assert_true(calls > 0);
}

/* Changes made between pages: none of them may show in later pages. */
static void churn(store_t *s, int page)
{
    char name[32];
    snprintf(name, sizeof(name), "zz-new-%d", page);
    put(s, "n1", name, 2);           /* a new matching object after the cursor */
    put(s, "n2", "o00", 2 * (page + 1)); /* a new object before the cursor, then changed */
    if (page == 0) {
        del(s, "n2", "o10");         /* not yet listed */
        put(s, "n2", "o12", 3);      /* no longer matching */
        put(s, "n2", "o14", 4);      /* modified, still matching */
    }
}

static void test_list_paging(void **state)
{
    fx_t *f = *state;
    const char *nss[] = {"n0", "n1", "n2"};
    char want_buf[64][24];
    const char *want[64], *want_all[64];
    size_t n_even = 0, n_all = 0;
    for (int i = 0; i < 3; i++) {
        for (int j = 0; j < 15; j++) {
            char name[16];
            snprintf(name, sizeof(name), "o%02d", 15 - j); /* created out of order */
            put(f->s, nss[i], name, 15 - j);
        }
    }
    for (int i = 0; i < 3; i++) {
        for (int j = 1; j <= 15; j++) {
            snprintf(want_buf[n_all], sizeof(want_buf[0]), "%s/o%02d", nss[i], j);
            want_all[n_all] = want_buf[n_all];
            if (j % 2 == 0)
                want[n_even++] = want_buf[n_all];
            n_all++;
        }
    }
    for (size_t limit = 1; limit <= 8; limit += 3) {
        page_all(f->s, NULL, limit, 0, want_all, n_all, NULL);
        page_all(f->s, NULL, limit, 1, want, n_even, NULL);
    }
    page_all(f->s, "n1", 4, 0, want_all + 15, 15, NULL);
    page_all(f->s, "n1", 2, 1, want + 7, 7, NULL);
    /* Changes between pages do not show: pages are read at the first page's rv. */
    page_all(f->s, NULL, 5, 1, want, n_even, churn);
    /* And afterwards a fresh list shows the changes: n2/o10 gone, n2/o00 added. */
    const char *want_n2[15] = {"n2/o00"};
    size_t n_n2 = 1;
    for (size_t i = 30; i < 45; i++)
        if (strcmp(want_all[i], "n2/o10") != 0)
            want_n2[n_n2++] = want_all[i];
    page_all(f->s, "n2", 3, 0, want_n2, n_n2, NULL);
}

static void test_list_continue_keys(void **state)
{
    fx_t *f = *state;
    put(f->s, "a", "x", 0);
    put(f->s, "b", "x", 0);
    put(f->s, "b", "y", 0);
    put(f->s, "c", "x", 0);
    store_list_result_t r;
    /* A continue key in an earlier namespace than ns: the whole namespace follows. */
    store_list_opts_t o = {.resource = RES, .ns = "b", .after_ns = "a", .after_name = "zzz"};
    assert_int_equal(list(f->s, &o, &r), STORE_OK);
    assert_int_equal(json_array_size(r.items), 2);
    store_list_result_free(&r);
    /* In a later namespace: nothing follows. */
    o.after_ns = "c";
    o.after_name = "";
    assert_int_equal(list(f->s, &o, &r), STORE_OK);
    assert_int_equal(json_array_size(r.items), 0);
    assert_int_equal(r.more, 0);
    store_list_result_free(&r);
    /* Strictly after the key. */
    o.ns = NULL;
    o.after_ns = "b";
    o.after_name = "x";
    assert_int_equal(list(f->s, &o, &r), STORE_OK);
    assert_int_equal(json_array_size(r.items), 2);
    assert_string_equal(item_key(r.items, 0, "name"), "y");
    assert_string_equal(item_key(r.items, 1, "namespace"), "c");
    store_list_result_free(&r);
}

static void test_list_at_old_rv(void **state)
{
    fx_t *f = *state;
    put(f->s, "n", "a", 1);
    put(f->s, "n", "b", 2);
    put(f->s, "m", "c", 3);
    int64_t old_rv = current_rv(f->s);
    store_list_opts_t o = {.resource = RES};
    store_list_result_t r;
    assert_int_equal(list(f->s, &o, &r), STORE_OK);
    json_t *old_items = json_incref(r.items);
    store_list_result_free(&r);
    o.ns = "n";
    assert_int_equal(list(f->s, &o, &r), STORE_OK);
    json_t *old_n = json_incref(r.items);
    store_list_result_free(&r);

    put(f->s, "n", "a", 10);
    del(f->s, "n", "b");
    put(f->s, "n", "d", 4);
    del(f->s, "m", "c");
    put(f->s, "m", "c", 30); /* deleted and created again */
    put(f->s, "m", "b", 5);
    int64_t mid_rv = put(f->s, "n", "b", 20); /* and created again */
    del(f->s, "n", "d");

    o.ns = NULL;
    o.at_rv = old_rv;
    assert_int_equal(list(f->s, &o, &r), STORE_OK);
    assert_int_equal(r.rv, old_rv);
    assert_true(json_equal(r.items, old_items));
    store_list_result_free(&r);
    o.ns = "n";
    assert_int_equal(list(f->s, &o, &r), STORE_OK);
    assert_true(json_equal(r.items, old_n));
    store_list_result_free(&r);

    /* At mid_rv: m/b, m/c(30), n/a(10), n/b(20), n/d(4). */
    o.ns = NULL;
    o.at_rv = mid_rv;
    assert_int_equal(list(f->s, &o, &r), STORE_OK);
    assert_int_equal(json_array_size(r.items), 5);
    const char *names[] = {"b", "c", "a", "b", "d"};
    int vs[] = {5, 30, 10, 20, 4};
    for (size_t i = 0; i < 5; i++) {
        assert_string_equal(item_key(r.items, i, "name"), names[i]);
        assert_int_equal(obj_v(json_array_get(r.items, i)), vs[i]);
        assert_true(obj_rv(json_array_get(r.items, i)) <= mid_rv);
    }
    store_list_result_free(&r);

    /* at_rv = current equals a plain list. */
    o.at_rv = 0;
    assert_int_equal(list(f->s, &o, &r), STORE_OK);
    json_t *now = json_incref(r.items);
    int64_t now_rv = r.rv;
    store_list_result_free(&r);
    o.at_rv = now_rv;
    assert_int_equal(list(f->s, &o, &r), STORE_OK);
    assert_true(json_equal(r.items, now));
    assert_int_equal(json_array_size(now), 4);
    store_list_result_free(&r);

    json_decref(old_items);
    json_decref(old_n);
    json_decref(now);
}

static void test_future_and_expired(void **state)
{
    fx_t *f = *state;
    for (int i = 0; i < 5; i++)
        put(f->s, "n", "a", i);
    int64_t cur = current_rv(f->s);
    store_list_opts_t o = {.resource = RES, .at_rv = cur + 1};
    store_list_result_t r;
    lo_err_t err = {0};
    assert_int_equal(store_list(f->s, &o, &r, &err), STORE_FUTURE_RV);
    assert_null(r.items);
    o.at_rv = cur;
    assert_int_equal(list(f->s, &o, &r), STORE_OK);
    store_list_result_free(&r);

    /* Raise the horizon behind the store's back, as compaction will. */
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
    sqlite3_busy_timeout(db, 5000);
    assert_int_equal(sqlite3_exec(db, "UPDATE meta SET v = 3 WHERE k = 'compacted_rv'", NULL, NULL, NULL),
                     SQLITE_OK);
    sqlite3_close(db);
    int64_t compacted = 0;
    assert_int_equal(store_compacted_rv(f->s, &compacted, NULL), STORE_OK);
    assert_int_equal(compacted, 3);
    o.at_rv = 3;
    assert_int_equal(store_list(f->s, &o, &r, &err), STORE_EXPIRED);
    assert_int_equal(err.code, 410);
    o.at_rv = 1;
    assert_int_equal(store_list(f->s, &o, &r, &err), STORE_EXPIRED);
    o.at_rv = 4;
    assert_int_equal(list(f->s, &o, &r), STORE_OK);
    assert_int_equal(json_array_size(r.items), 1);
    assert_int_equal(obj_v(json_array_get(r.items, 0)), 3);
    store_list_result_free(&r);
    o.at_rv = 0;
    assert_int_equal(list(f->s, &o, &r), STORE_OK);
    store_list_result_free(&r);
    lo_err_clear(&err);
}

/* ---- change feed and compaction ---- */

typedef struct feed {
    size_t n;
    int64_t rv[16];
    store_event_type_t type[16];
    char name[16][8];
    int v[16];
    int prev_v[16];   /* -1 without prev */
} feed_t;

static int record_event(void *ctx, const store_event_t *ev)
{
    feed_t *f = ctx;
    if (f->n >= 16)
        return 1;
    f->rv[f->n] = ev->rv;
    f->type[f->n] = ev->type;
    snprintf(f->name[f->n], sizeof(f->name[0]), "%s", ev->name);
    f->v[f->n] = obj_v(ev->object);
    f->prev_v[f->n] = ev->prev ? obj_v(ev->prev) : -1;
    assert_int_equal(obj_rv(ev->object), ev->rv);
    f->n++;
    return 0;
}

static void test_events_feed(void **state)
{
    fx_t *f = *state;
    int64_t r1 = put(f->s, "n", "a", 0);
    int64_t r2 = put(f->s, "m", "b", 7);
    int64_t r3 = put(f->s, "n", "a", 1);
    int64_t r4 = del(f->s, "m", "b");
    feed_t feed = {0};
    int64_t up_to = 0;
    lo_err_t err = {0};
    assert_int_equal(store_events(f->s, RES, NULL, 0, 1, record_event, &feed, &up_to, &err), STORE_OK);
    assert_int_equal(up_to, r4);
    assert_int_equal(feed.n, 4);
    int64_t want_rv[] = {r1, r2, r3, r4};
    store_event_type_t want_type[] = {STORE_EVENT_ADDED, STORE_EVENT_ADDED, STORE_EVENT_MODIFIED, STORE_EVENT_DELETED};
    for (size_t i = 0; i < 4; i++) {
        assert_int_equal(feed.rv[i], want_rv[i]);
        assert_int_equal(feed.type[i], want_type[i]);
    }
    assert_int_equal(feed.prev_v[2], 0); /* the MODIFIED event carries the state before it */
    assert_int_equal(feed.v[2], 1);
    assert_int_equal(feed.v[3], 7);      /* DELETED carries the last state */

    memset(&feed, 0, sizeof(feed));
    assert_int_equal(store_events(f->s, RES, "n", r1, 0, record_event, &feed, &up_to, &err), STORE_OK);
    assert_int_equal(feed.n, 1);         /* only after r1, only namespace n, no prev asked */
    assert_int_equal(feed.rv[0], r3);
    assert_int_equal(feed.prev_v[0], -1);

    assert_int_equal(store_events(f->s, RES, NULL, r4 + 1, 0, record_event, &feed, &up_to, &err), STORE_FUTURE_RV);
    lo_err_clear(&err);
}

static int64_t count_events(const char *path)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    int64_t n = -1;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, "SELECT COUNT(*) FROM events", -1, &st, NULL), SQLITE_OK);
    if (sqlite3_step(st) == SQLITE_ROW)
        n = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return n;
}

static void test_compaction(void **state)
{
    fx_t *f = *state;
    for (int i = 0; i < 10; i++)
        put(f->s, "n", "a", i);
    put(f->s, "n", "b", 100);
    int64_t b_gone = del(f->s, "n", "b");
    int64_t keep_tail = put(f->s, "n", "c", 5);
    put(f->s, "n", "a", 10);
    int64_t cur = current_rv(f->s);
    assert_int_equal(count_events(f->path), 14);

    lo_err_t err = {0};
    int64_t horizon = 0;
    /* time keeps everything younger than an hour: nothing may go */
    assert_int_equal(store_compact(f->s, 2, 3600, &horizon, &err), STORE_OK);
    assert_int_equal(horizon, 0);
    assert_int_equal(count_events(f->path), 14);

    put(f->s, "n", "a", 11); /* a write after that first run: the WAL is not empty */
    cur = current_rv(f->s);
    struct stat wal;
    char wal_path[300];
    snprintf(wal_path, sizeof(wal_path), "%s-wal", f->path);
    assert_int_equal(stat(wal_path, &wal), 0);
    assert_true(wal.st_size > 0);
    assert_int_equal(store_compact(f->s, 2, 0, &horizon, &err), STORE_OK);
    assert_int_equal(horizon, cur - 2);
    assert_int_equal(stat(wal_path, &wal), 0);
    assert_int_equal(wal.st_size, 0); /* checkpointed and truncated */
    assert_true(b_gone < horizon);
    assert_int_equal(keep_tail, horizon);
    /* kept: a's last event before the horizon (rv 10, superseded only after it), c, a's two newest */
    assert_int_equal(count_events(f->path), 4);

    /* lists and watches from before the horizon are expired; at and after it they are whole */
    store_list_opts_t o = {.resource = RES, .at_rv = horizon - 1};
    store_list_result_t r;
    assert_int_equal(store_list(f->s, &o, &r, &err), STORE_EXPIRED);
    feed_t feed = {0};
    int64_t up_to;
    assert_int_equal(store_events(f->s, RES, NULL, horizon - 1, 0, record_event, &feed, &up_to, &err),
                     STORE_EXPIRED);
    assert_int_equal(err.code, 410);
    assert_int_equal(store_events(f->s, RES, NULL, horizon, 0, record_event, &feed, &up_to, &err), STORE_OK);
    assert_int_equal(feed.n, 2);   /* a's two newest writes: everything after the horizon */
    o.at_rv = horizon + 1;
    assert_int_equal(list(f->s, &o, &r), STORE_OK);
    assert_int_equal(json_array_size(r.items), 2);   /* a (v10, as of that rv) and c; b is gone */
    assert_int_equal(obj_v(json_array_get(r.items, 0)), 10);
    store_list_result_free(&r);
    /* the current state is untouched, and rvs keep growing */
    o.at_rv = 0;
    assert_int_equal(list(f->s, &o, &r), STORE_OK);
    assert_int_equal(json_array_size(r.items), 2);
    assert_int_equal(obj_v(json_array_get(r.items, 0)), 11);
    store_list_result_free(&r);
    assert_true(put(f->s, "n", "d", 1) > cur);
    lo_err_clear(&err);
}

static void test_corrupt_body(void **state)
{
    fx_t *f = *state;
    put(f->s, "n", "a", 1);
    put(f->s, "n", "b", 1);
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
    sqlite3_busy_timeout(db, 5000);
    assert_int_equal(sqlite3_exec(db, "UPDATE objects SET body = '{\"trunc' WHERE name = 'a';"
                                      "UPDATE objects SET body = '[1]' WHERE name = 'b'",
                                  NULL, NULL, NULL),
                     SQLITE_OK);
    sqlite3_close(db);

    json_t *got = NULL;
    lo_err_t err = {0};
    assert_int_equal(store_get(f->s, RES, "n", "a", &got, &err), STORE_IO);
    assert_null(got);
    assert_int_equal(err.code, 500);
    assert_int_equal(store_get(f->s, RES, "n", "b", &got, &err), STORE_IO);
    store_list_opts_t o = {.resource = RES};
    store_list_result_t r;
    assert_int_equal(store_list(f->s, &o, &r, &err), STORE_IO);
    assert_null(r.items);
    /* An update of a corrupt object fails cleanly, and the writer still works. */
    store_write_result_t res;
    assert_int_equal(write_obj(f->s, "n", "a", delete_cb, NULL, 0, &res), STORE_IO);
    put(f->s, "n", "c", 1);
    lo_err_clear(&err);
}

static void test_reopen(void **state)
{
    fx_t *f = *state;
    put(f->s, "n", "a", 1);
    put(f->s, "n", "b", 2);
    int64_t rv_c = put(f->s, "n", "c", 3);
    int64_t rv_del = del(f->s, "n", "c"); /* the newest object goes */
    assert_true(rv_del > rv_c);
    store_close(f->s);

    f->s = open_store(f->path);
    assert_int_equal(current_rv(f->s), rv_del);
    json_t *got = NULL;
    assert_int_equal(store_get(f->s, RES, "n", "b", &got, NULL), STORE_OK);
    assert_int_equal(obj_v(got), 2);
    json_decref(got);
    assert_int_equal(store_get(f->s, RES, "n", "c", &got, NULL), STORE_NOT_FOUND);
    int64_t rv = put(f->s, "n", "d", 4);
    assert_true(rv > rv_del);

    /* Even with the newest event gone (as compaction may do), rvs are not reused. */
    store_close(f->s);
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
    char sql[96];
    snprintf(sql, sizeof(sql), "DELETE FROM events WHERE id >= %" PRId64, rv_c);
    assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    f->s = open_store(f->path);
    assert_int_equal(current_rv(f->s), rv);
    assert_true(put(f->s, "n", "e", 5) > rv);
}

static void test_open_options(void **state)
{
    fx_t *f = *state;
    lo_err_t err = {0};
    store_options_t mem = {.path = ":memory:"};
    assert_null(store_open(&mem, &err));
    assert_true(err.message[0] != '\0');
    store_options_t bad = {.path = "/nonexistent-dir/x/store.db"};
    assert_null(store_open(&bad, &err));
    assert_int_equal(err.code, 500);

    int64_t rv = put(f->s, "n", "a", 1);
    store_close(f->s);
    store_options_t full = {.path = f->path, .sync_full = 1};
    f->s = store_open(&full, &err);
    assert_non_null(f->s);
    assert_true(put(f->s, "n", "b", 1) > rv);
    assert_string_equal(store_event_type_name(STORE_EVENT_MODIFIED), "MODIFIED");
    lo_err_clear(&err);
}

/* ---- concurrency ---- */

#define N_THREADS 4
#define N_WRITES 500

typedef struct worker {
    store_t *s;
    int id;
    int64_t rvs[N_WRITES];
    int failures;
} worker_t;

static void *worker_main(void *arg)
{
    worker_t *w = arg;
    char ns[16];
    snprintf(ns, sizeof(ns), "t%d", w->id);
    for (int i = 0; i < N_WRITES; i++) {
        char name[16];
        snprintf(name, sizeof(name), "o%d", i % 50); /* creates, then updates */
        json_t *obj = mk_obj(ns, name, i);
        store_write_result_t res;
        lo_err_t err = {0};
        store_write_t wr = {.resource = RES, .ns = ns, .name = name, .mutate = put_cb, .ctx = obj};
        if (store_write(w->s, &wr, &res, &err) != STORE_OK || res.kind != STORE_WRITE_PUT)
            w->failures++;
        w->rvs[i] = res.rv;
        store_write_result_free(&res);
        json_decref(obj);
        if (i % 10 == 0) { /* reads on this thread's own connection, while others write */
            json_t *got = NULL;
            if (store_get(w->s, RES, ns, name, &got, &err) != STORE_OK || obj_v(got) != i ||
                obj_rv(got) < w->rvs[i])
                w->failures++;
            json_decref(got);
        }
    }
    return NULL;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static void test_concurrent_writes(void **state)
{
    fx_t *f = *state;
    hook_log_t *h = calloc(1, sizeof(*h));
    worker_t *ws = calloc(N_THREADS, sizeof(*ws));
    pthread_t th[N_THREADS];
    store_set_commit_hook(f->s, record_hook, h);
    for (int i = 0; i < N_THREADS; i++) {
        ws[i].s = f->s;
        ws[i].id = i;
        assert_int_equal(pthread_create(&th[i], NULL, worker_main, &ws[i]), 0);
    }
    for (int i = 0; i < N_THREADS; i++)
        pthread_join(th[i], NULL);

    int64_t *all = calloc(N_THREADS * N_WRITES, sizeof(*all));
    for (int i = 0; i < N_THREADS; i++) {
        assert_int_equal(ws[i].failures, 0);
        for (int j = 0; j < N_WRITES; j++) {
            all[i * N_WRITES + j] = ws[i].rvs[j];
            if (j > 0)
                assert_true(ws[i].rvs[j] > ws[i].rvs[j - 1]);
        }
    }
    qsort(all, N_THREADS * N_WRITES, sizeof(*all), cmp_i64);
    for (int i = 1; i < N_THREADS * N_WRITES; i++)
        assert_true(all[i] > all[i - 1]); /* distinct */
    assert_int_equal(h->n, N_THREADS * N_WRITES);
    for (size_t i = 0; i < h->n; i++) {
        assert_int_equal(h->rv[i], all[i]); /* hook saw every rv, in order */
        if (i > 0)
            assert_true(h->rv[i] > h->rv[i - 1]);
    }
    assert_int_equal(current_rv(f->s), all[N_THREADS * N_WRITES - 1]);
    store_set_commit_hook(f->s, NULL, NULL);
    free(all);
    free(ws);
    free(h);
}

/* ---- durability ---- */

typedef struct ack {
    int64_t index;
    int64_t rv;
} ack_t;

/* The child: writes until killed, reporting each acknowledged write. Never returns. */
static void durability_child(const char *path, int fd)
{
    lo_err_t err = {0};
    store_options_t opts = {.path = path};
    store_t *s = store_open(&opts, &err);
    if (s == NULL)
        _exit(2);
    for (int64_t i = 0; i < 1000000; i++) {
        char name[24];
        snprintf(name, sizeof(name), "k%06" PRId64, i);
        json_t *obj = mk_obj("d", name, (int)i);
        store_write_result_t res;
        store_write_t w = {.resource = RES, .ns = "d", .name = name, .mutate = put_cb, .ctx = obj};
        if (store_write(s, &w, &res, &err) != STORE_OK)
            _exit(3);
        ack_t a = {i, res.rv};
        if (write(fd, &a, sizeof(a)) != (ssize_t)sizeof(a))
            _exit(4);
        store_write_result_free(&res);
        json_decref(obj);
    }
    _exit(5); /* should have been killed long before */
}

static void test_durability_after_kill(void **state)
{
    fx_t *f = *state;
    store_close(f->s); /* the child owns the database until it dies */
    f->s = NULL;
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(fds[0]);
        durability_child(f->path, fds[1]);
    }
    close(fds[1]);

    size_t cap = 1 << 16, n = 0;
    ack_t *acks = calloc(cap, sizeof(*acks));
    int killed = 0;
    for (;;) {
        ack_t a;
        ssize_t got = read(fds[0], &a, sizeof(a));
        if (got == 0)
            break;
        if (got < 0 && errno == EINTR)
            continue;
        assert_int_equal(got, sizeof(a));
        if (n < cap)
            acks[n++] = a;
        if (!killed && n == 300) {
            kill(pid, SIGKILL); /* mid-stream: more acks may still be in the pipe */
            killed = 1;
        }
    }
    close(fds[0]);
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
    assert_true(n >= 300);

    f->s = open_store(f->path);
    for (size_t i = 0; i < n; i++) {
        char name[24];
        snprintf(name, sizeof(name), "k%06" PRId64, acks[i].index);
        json_t *got = NULL;
        assert_int_equal(store_get(f->s, RES, "d", name, &got, NULL), STORE_OK);
        assert_int_equal(obj_rv(got), acks[i].rv);
        assert_int_equal(obj_v(got), (int)acks[i].index);
        json_decref(got);
    }
    assert_true(current_rv(f->s) >= acks[n - 1].rv);
    assert_true(put(f->s, "d", "after", 1) > acks[n - 1].rv);
    free(acks);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_crud, setup, teardown),
        cmocka_unit_test_setup_teardown(test_delete_last_state, setup, teardown),
        cmocka_unit_test_setup_teardown(test_noop, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dry_run, setup, teardown),
        cmocka_unit_test_setup_teardown(test_abort, setup, teardown),
        cmocka_unit_test_setup_teardown(test_txn_reads, setup, teardown),
        cmocka_unit_test_setup_teardown(test_list_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_list_paging, setup, teardown),
        cmocka_unit_test_setup_teardown(test_list_continue_keys, setup, teardown),
        cmocka_unit_test_setup_teardown(test_list_at_old_rv, setup, teardown),
        cmocka_unit_test_setup_teardown(test_future_and_expired, setup, teardown),
        cmocka_unit_test_setup_teardown(test_corrupt_body, setup, teardown),
        cmocka_unit_test_setup_teardown(test_events_feed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_compaction, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reopen, setup, teardown),
        cmocka_unit_test_setup_teardown(test_open_options, setup, teardown),
        cmocka_unit_test_setup_teardown(test_concurrent_writes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_durability_after_kill, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
