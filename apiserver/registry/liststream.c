/*
 * liststream.c - a LIST answered as it is read (see langop/registry/liststream.h).
 *
 * Threads: liststream_answer runs on the request's worker; liststream_next
 * on whichever worker the transport hands each page to, one page at a
 * time, so a stream is never used by two threads at once.
 */
#include "langop/registry/liststream.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "langop/core/continuetoken.h"
#include "langop/core/status.h"
#include "langop/request/encode.h"
#include "langop/schema/objmeta.h"

struct list_stream {
    watch_spec_t spec;            /* kind, namespace, selectors, format, include */
    int64_t at_rv;                /* every page is read at this rv (0 before the first: the newest) */
    char *after_ns, *after_name;  /* the key of the last item written (NULL: from the start) */
    int64_t left;                 /* items still to write; -1: every one */
    encode_list_t *enc;
    lo_buf_t pending;             /* the first page, written on the request's worker, not handed on yet */
};

static int keep(const json_t *obj, void *ctx)
{
    return watch_spec_matches(ctx, obj);
}

/* The store options of a page of ls: at most items objects after ls's key. */
static store_list_opts_t page_opts(const list_stream_t *ls, size_t items)
{
    const watch_spec_t *spec = &ls->spec;
    return (store_list_opts_t){.resource = spec->kind->plural, .ns = spec->kind->namespaced ? spec->ns : "",
                               .at_rv = ls->at_rv, .after_ns = ls->after_ns, .after_name = ls->after_name,
                               .limit = items, .max_bytes = LISTSTREAM_PAGE_BYTES, .skip_remaining = 1,
                               .filter = spec->selecting ? keep : NULL, .filter_ctx = (void *)spec};
}

/* The objects the next page may hold: a page's worth, or what the limit leaves. */
static size_t page_items(const list_stream_t *ls)
{
    return ls->left >= 0 && ls->left < LISTSTREAM_PAGE_ITEMS ? (size_t)ls->left : LISTSTREAM_PAGE_ITEMS;
}

/* Writes the page's items and moves ls past them; 1 if they were the answer's last. */
static int write_items(list_stream_t *ls, store_list_result_t *res, lo_buf_t *out)
{
    size_t i;
    json_t *obj;
    json_array_foreach(res->items, i, obj) encode_list_item(ls->enc, obj, out);
    if (ls->left >= 0)
        ls->left -= (int64_t)json_array_size(res->items);
    free(ls->after_ns);
    free(ls->after_name);
    ls->after_ns = res->last_ns; /* set when more follow */
    ls->after_name = res->last_name;
    res->last_ns = res->last_name = NULL;
    return !res->more || ls->left == 0;
}

/* ---- the first page ---- */

/* Kubernetes' words for the store's refusals of a list. */
static void list_store_error(const handler_request_t *hr, int rc, lo_err_t *err)
{
    if (rc == STORE_EXPIRED) {
        if (hr->opts->list.has_continue)
            lo_err_set(err, 410, "Expired",
                       "The provided continue parameter is too old to display a consistent list result. You can "
                       "start a new list without the continue parameter.");
        else
            lo_err_set(err, 410, "Expired", "too old resource version");
    } else if (rc == STORE_FUTURE_RV) {
        lo_err_set(err, 504, "Timeout", "Too large resource version");
        lo_err_add_cause(err, "ResourceVersionTooLarge", "Too large resource version", NULL);
    }
}

/* The ListMeta of an answer at rv (new): with continue after (ns, name) and remaining when more follow. */
static json_t *list_meta(int64_t rv, const char *ns, const char *name, int64_t remaining)
{
    json_t *meta = json_object();
    char text[32];
    snprintf(text, sizeof(text), "%lld", (long long)rv);
    json_object_set_new(meta, "resourceVersion", json_string(text));
    if (name) {
        char *token = continue_token_encode(rv, ns, name);
        json_object_set_new(meta, "continue", json_string(token));
        free(token);
        if (remaining >= 0)
            json_object_set_new(meta, "remainingItemCount", json_integer(remaining));
    }
    return meta;
}

/* A scan that keeps nothing: how many objects match, and the key of the limit-th. */
typedef struct count_scan {
    const watch_spec_t *spec;
    int64_t limit;
    int64_t seen;
    char *last_ns, *last_name;
} count_scan_t;

static int count_match(const json_t *obj, void *ctx)
{
    count_scan_t *c = ctx;
    if (c->spec->selecting && !watch_spec_matches(c->spec, obj))
        return 0;
    if (++c->seen == c->limit) {
        const char *ns = objmeta_get_string(obj, "namespace");
        const char *name = objmeta_get_string(obj, "name");
        c->last_ns = lo_strdup(ns ? ns : "");
        c->last_name = lo_strdup(name ? name : "");
    }
    return 0;
}

/*
 * The ListMeta of a limited answer longer than its first page, into *meta
 * (new), from a scan at ls->at_rv from the key the answer starts after
 * (ls's, not yet moved past the first page). Returns the store's code.
 */
static int limited_meta(const list_stream_t *ls, store_t *store, int64_t limit, json_t **meta, lo_err_t *err)
{
    count_scan_t c = {.spec = &ls->spec, .limit = limit};
    store_list_opts_t o = page_opts(ls, 0);
    o.max_bytes = 0;
    o.filter = count_match;
    o.filter_ctx = &c;
    store_list_result_t res = {0};
    int rc = store_list(store, &o, &res, err);
    store_list_result_free(&res);
    if (rc == STORE_OK)
        *meta = list_meta(ls->at_rv, c.last_ns, c.seen > limit ? c.last_name : NULL,
                          ls->spec.selecting ? -1 : c.seen - limit);
    free(c.last_ns);
    free(c.last_name);
    return rc;
}

/* The whole answer, written: resp gets it as its body (ls is done with). */
static void answer_whole(list_stream_t *ls, api_response_t *resp)
{
    encode_list_end(ls->enc, &ls->pending);
    if (encode_list_failed(ls->enc)) {
        lo_err_t err = {0};
        status_internal(&err, "the list of %s could not be encoded", ls->spec.kind->plural);
        handlers_respond_error(resp, &err);
        lo_err_clear(&err);
        return;
    }
    char *body = ls->pending.data ? ls->pending.data : lo_strdup("");
    api_response_set_json_text(resp, 200, encode_content_type(ls->spec.format), body, ls->pending.len);
    ls->pending = (lo_buf_t){0};
}

void liststream_answer(const handler_request_t *hr, const store_list_opts_t *window, api_response_t *resp)
{
    lo_err_t err = {0};
    store_list_result_t res = {0};
    json_t *meta = NULL;
    list_stream_t *ls = lo_calloc(1, sizeof(*ls));
    if (watch_spec_select(hr->kind, hr->info, hr->opts, &ls->spec, &err) != 0) {
        handlers_respond_error(resp, &err);
        goto exit;
    }
    ls->at_rv = window->at_rv;
    ls->after_ns = window->after_ns ? lo_strdup(window->after_ns) : NULL;
    ls->after_name = window->after_name ? lo_strdup(window->after_name) : NULL;
    ls->left = window->limit > 0 ? (int64_t)window->limit : -1;
    int64_t limit = ls->left;

    /* a page that can hold the whole limited answer: the store counts what follows it, for the metadata */
    store_list_opts_t o = page_opts(ls, page_items(ls));
    o.skip_remaining = !(limit >= 0 && limit <= LISTSTREAM_PAGE_ITEMS);
    int rc = store_list(hr->store, &o, &res, &err);
    if (rc != STORE_OK) {
        list_store_error(hr, rc, &err);
        handlers_respond_error(resp, &err);
        goto exit;
    }
    ls->at_rv = res.rv;
    int whole = !res.more || (int64_t)json_array_size(res.items) == limit;
    if (whole) /* as kube: no remainingItemCount when selectors filter the list */
        meta = list_meta(res.rv, res.last_ns, res.more ? res.last_name : NULL,
                         ls->spec.selecting ? -1 : res.remaining);
    else if (limit < 0)
        meta = list_meta(res.rv, NULL, NULL, -1);
    else if ((rc = limited_meta(ls, hr->store, limit, &meta, &err)) != STORE_OK) {
        list_store_error(hr, rc, &err);
        handlers_respond_error(resp, &err);
        goto exit;
    }
    ls->enc = encode_list_begin(hr->kind, ls->spec.format, ls->spec.include, meta, (int64_t)time(NULL), &ls->pending);
    write_items(ls, &res, &ls->pending);
    if (whole) {
        answer_whole(ls, resp);
    } else { /* the transport sends the rest as the client takes it */
        resp->status = 200;
        free(resp->content_type);
        resp->content_type = lo_strdup(encode_content_type(ls->spec.format));
        resp->list = ls;
        resp->list_free = liststream_free;
        ls = NULL;
    }
exit:
    json_decref(meta);
    store_list_result_free(&res);
    liststream_free(ls);
    lo_err_clear(&err);
}

/* ---- the following pages ---- */

void liststream_next(list_stream_t *ls, store_t *store, watch_page_t *out)
{
    memset(out, 0, sizeof(*out));
    lo_buf_t buf = ls->pending;
    ls->pending = (lo_buf_t){0};
    if (buf.data == NULL) {
        lo_err_t err = {0};
        store_list_result_t res = {0};
        store_list_opts_t o = page_opts(ls, page_items(ls));
        int rc = store_list(store, &o, &res, &err);
        if (rc != STORE_OK) {
            lo_log(LO_INFO, "list of %s at resourceVersion %lld cut off: %s", ls->spec.kind->plural,
                   (long long)ls->at_rv, err.message);
            out->broken = 1;
        } else if (write_items(ls, &res, &buf)) {
            encode_list_end(ls->enc, &buf);
            out->final = 1;
        }
        store_list_result_free(&res);
        lo_err_clear(&err);
    }
    if (out->broken || encode_list_failed(ls->enc)) {
        free(buf.data);
        out->broken = 1;
        return;
    }
    out->data = buf.data;
    out->len = buf.len;
}

const watch_spec_t *liststream_spec(const list_stream_t *ls)
{
    return &ls->spec;
}

void liststream_free(list_stream_t *ls)
{
    if (ls == NULL)
        return;
    watch_spec_free(&ls->spec);
    free(ls->after_ns);
    free(ls->after_name);
    encode_list_free(ls->enc);
    free(ls->pending.data);
    free(ls);
}
