/*
 * reads.c - the reads of every kind: get, list (paginated, at a
 * resourceVersion), watch (the spec the transport streams) and the derived
 * subresources (see langop/registry/reads.h).
 */
#include "langop/registry/reads.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "langop/core/status.h"
#include "langop/derive/derive.h"
#include "langop/registry/liststream.h"
#include "langop/registry/watch.h"
#include "langop/request/encode.h"
#include "langop/schema/objmeta.h"
#include "langop/schema/table.h"

/*
 * The answer to a read: JSON, YAML, or a Table when the client asks for
 * one. objects is the list's items (or the one object of a get, as a
 * one-element array); list is what JSON/YAML clients get.
 */
static void respond_read(const handler_request_t *hr, api_response_t *resp, const json_t *list, const json_t *objects,
                         const json_t *table_meta)
{
    if (hr->opts->format != ENCODE_TABLE) {
        encode_object(resp, 200, hr->opts->format, list);
    } else {
        json_t *table = table_render(hr->kind, objects, table_meta, hr->opts->include, 1, (int64_t)time(NULL));
        if (table)
            encode_object(resp, 200, ENCODE_TABLE, table);
        else /* a client that accepts a Table also accepts the plain list (kubectl prints it) */
            encode_object(resp, 200, ENCODE_JSON, list);
        json_decref(table);
    }
}

/* ---- get ---- */

void reads_get(const handler_request_t *hr, api_response_t *resp)
{
    lo_err_t err = {0};
    json_t *obj = NULL;
    if (handlers_read_current(hr, hr->info->name, &obj, NULL, &err) != STORE_OK) {
        handlers_respond_error(resp, &err);
    } else {
        json_t *one = json_pack("[O]", obj);
        json_t *meta = json_pack("{s:O*}", "resourceVersion",
                                 json_object_get(json_object_get(obj, "metadata"), "resourceVersion"));
        respond_read(hr, resp, obj, one, meta);
        json_decref(one);
        json_decref(meta);
        json_decref(obj);
    }
    lo_err_clear(&err);
}

/* ---- list ---- */

/*
 * Resolves limit, continue and resourceVersion(+Match), checked together by
 * options_decode(), into the store options of the list's window.
 */
static int list_window(const handler_request_t *hr, store_list_opts_t *opts, lo_err_t *err)
{
    const options_list_t *l = &hr->opts->list;
    opts->limit = (size_t)l->limit;
    if (l->has_continue) {
        opts->at_rv = l->continue_rv;
        opts->after_ns = l->continue_ns;
        opts->after_name = l->continue_name;
        return 0;
    }
    if (!l->has_rv)
        return 0;
    if (l->match == RV_MATCH_EXACT) {
        opts->at_rv = l->rv;
    } else if (l->rv > 0) {
        /* NotOlderThan: the newest state qualifies if it is at least rv */
        int64_t current = 0;
        if (store_current_rv(hr->store, &current, err) != STORE_OK)
            return -1;
        if (l->rv > current) {
            lo_err_set(err, 504, "Timeout", "Too large resource version: %lld, current: %lld", (long long)l->rv,
                       (long long)current);
            lo_err_add_cause(err, "ResourceVersionTooLarge", "Too large resource version", NULL);
            return -1;
        }
    }
    return 0;
}

/* The list, read and sent page by page (liststream.h); a short one is answered whole. */
void reads_list(const handler_request_t *hr, api_response_t *resp)
{
    lo_err_t err = {0};
    store_list_opts_t window = {0};
    if (list_window(hr, &window, &err) != 0)
        handlers_respond_error(resp, &err);
    else
        liststream_answer(hr, &window, resp);
    lo_err_clear(&err);
}

/* ---- watch ---- */

/* Validates the watch and hands its spec to the transport, which streams it. */
void reads_watch(const handler_request_t *hr, api_response_t *resp)
{
    lo_err_t err = {0};
    watch_spec_t *spec = lo_calloc(1, sizeof(*spec));
    if (watch_spec_parse(hr->kind, hr->info, hr->opts, spec, &err) != 0) {
        free(spec);
        handlers_respond_error(resp, &err);
    } else {
        resp->status = 200;
        resp->content_type = lo_strdup(spec->format == ENCODE_TABLE ? ENCODE_TABLE_CONTENT_TYPE : "application/json");
        resp->watch = spec;
        resp->watch_free = watch_spec_destroy;
    }
    lo_err_clear(&err);
}

/* GET of a derived subresource (gatewayconfig, agentconfig): computed now, never stored. */
void reads_derived(const handler_request_t *hr, api_response_t *resp, const derive_subresource_t *sub)
{
    lo_err_t err = {0};
    json_t *obj = NULL;
    if (sub->get(hr->store, handlers_url_ns(hr), hr->info->name, hr->cluster_domain, &obj, &err) != 0) {
        handlers_respond_error(resp, &err);
    } else {
        lo_err_clear(&err);
        if (hr->opts->format == ENCODE_TABLE) { /* a config has no rows */
            lo_err_set(&err, 406, "NotAcceptable",
                       "only the following media types are accepted: application/json, application/yaml");
            handlers_respond_error(resp, &err);
        } else {
            encode_object(resp, 200, hr->opts->format, obj);
        }
    }
    json_decref(obj);
    lo_err_clear(&err);
}
