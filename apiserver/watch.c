/*
 * watch.c - watch semantics without the transport (see langop/watch.h).
 */
#include "langop/watch.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "langop/derive.h"
#include "langop/objmeta.h"
#include "langop/status.h"

/* ---- parsing ---- */

/* resourceVersion, resourceVersionMatch and sendInitialEvents of a watch. */
static int parse_start(const reqinfo_t *info, watch_spec_t *out, lo_err_t *err)
{
    const char *rv = reqinfo_query_get(info, "resourceVersion");
    const char *match = reqinfo_query_get(info, "resourceVersionMatch");
    const char *initial = reqinfo_query_get(info, "sendInitialEvents");
    if (initial && initial[0]) {
        status_bad_request(err, "sendInitialEvents is forbidden for watch unless the WatchList feature gate is "
                                "enabled");
        return -1;
    }
    if (match && match[0]) {
        status_bad_request(err, "resourceVersionMatch is forbidden for watch");
        return -1;
    }
    if (rv == NULL || rv[0] == '\0' || strcmp(rv, "0") == 0) {
        out->with_state = 1;
        return 0;
    }
    return reqinfo_query_count(info, "resourceVersion", &out->rv, err);
}

static int parse_timeout(const reqinfo_t *info, watch_spec_t *out, lo_err_t *err)
{
    int64_t seconds = 0;
    if (reqinfo_query_count(info, "timeoutSeconds", &seconds, err) != 0)
        return -1;
    if (seconds == 0) /* kube: minRequestTimeout * (1 + rand), so that watches do not all end at once */
        seconds = WATCH_MIN_REQUEST_TIMEOUT_S + (int64_t)(rand() % WATCH_MIN_REQUEST_TIMEOUT_S);
    out->timeout_ms = seconds * 1000;
    return 0;
}

int watch_spec_parse(const schema_kind_t *k, const reqinfo_t *info, const char *accept, watch_spec_t *out,
                     lo_err_t *err)
{
    memset(out, 0, sizeof(*out));
    out->kind = k;
    if (k->namespaced && info->ns)
        out->ns = lo_strdup(info->ns);
    const char *labels = reqinfo_query_get(info, "labelSelector");
    const char *fields = reqinfo_query_get(info, "fieldSelector");
    /* the old item form (GET .../<name>?watch=true) watches by name */
    char *by_name = info->name ? lo_sprintf("metadata.name=%s%s%s", info->name, fields && fields[0] ? "," : "",
                                             fields ? fields : "")
                               : NULL;
    if (by_name)
        fields = by_name;
    out->selecting = (labels && labels[0]) || (fields && fields[0]);
    out->fields = field_selector_parse(fields, objmeta_field_labels, err);
    free(by_name);
    if ((out->labels = label_selector_parse(labels, err)) == NULL || out->fields == NULL ||
        parse_start(info, out, err) != 0 ||
        reqinfo_query_bool(info, "allowWatchBookmarks", 0, &out->bookmarks, err) != 0 ||
        parse_timeout(info, out, err) != 0 || encode_choose(accept, 1, &out->format, err) != 0)
        goto fail;
    if (out->format == ENCODE_YAML) {
        lo_err_set(err, 406, "NotAcceptable", "a watch is served as application/json or as a Table");
        goto fail;
    }
    if (out->format == ENCODE_TABLE &&
        table_parse_include(reqinfo_query_get(info, "includeObject"), &out->include, err) != 0)
        goto fail;
    return 0;
fail:
    watch_spec_free(out);
    return -1;
}

void watch_spec_free(watch_spec_t *spec)
{
    if (spec == NULL)
        return;
    free(spec->ns);
    label_selector_free(spec->labels);
    field_selector_free(spec->fields);
    memset(spec, 0, sizeof(*spec));
}

/* ---- what a watcher sees ---- */

static int matches(const watch_spec_t *spec, const json_t *obj)
{
    const json_t *labels = json_object_get(json_object_get(obj, "metadata"), "labels");
    return label_selector_matches(spec->labels, labels) && field_selector_matches(spec->fields, obj);
}

int watch_event_type(const watch_spec_t *spec, const store_event_t *ev, const json_t **object)
{
    *object = ev->object;
    if (strcmp(ev->resource, spec->kind->plural) != 0 || (spec->ns && strcmp(ev->ns, spec->ns) != 0))
        return 0;
    if (!spec->selecting)
        return ev->type;
    int now = matches(spec, ev->object);
    if (ev->type != STORE_EVENT_MODIFIED)
        return now ? (int)ev->type : 0;
    /* without the previous state, assume it matched as the new one does */
    int before = ev->prev ? matches(spec, ev->prev) : now;
    if (now && before)
        return STORE_EVENT_MODIFIED;
    if (now)
        return STORE_EVENT_ADDED;
    if (before) {
        *object = ev->prev; /* it left the selector: the client last saw this state */
        return STORE_EVENT_DELETED;
    }
    return 0;
}

/* ---- encoding ---- */

static char *line_of(json_t *event /* stolen */, size_t *len)
{
    char *text = json_dumps(event, JSON_COMPACT);
    json_decref(event);
    if (text == NULL)
        lo_fatal("cannot encode a watch event");
    size_t n = strlen(text);
    text = lo_realloc(text, n + 2);
    text[n] = '\n';
    text[n + 1] = '\0';
    *len = n + 1;
    return text;
}

/* obj with metadata.resourceVersion = rv: obj itself (new ref) when it already says so, else a copy. */
static json_t *with_rv(const json_t *obj, int64_t rv)
{
    char want[24];
    snprintf(want, sizeof(want), "%lld", (long long)rv);
    const char *have = objmeta_get_string(obj, "resourceVersion");
    if (have && strcmp(have, want) == 0)
        return json_incref((json_t *)obj);
    json_t *copy = json_copy((json_t *)obj);
    json_t *meta = json_copy(json_object_get(copy, "metadata"));
    if (meta == NULL)
        meta = json_object();
    json_object_set_new(meta, "resourceVersion", json_string(want));
    json_object_set_new(copy, "metadata", meta);
    return copy;
}

char *watch_encode(const watch_spec_t *spec, store_event_type_t type, const json_t *object, int64_t rv,
                   int with_columns, size_t *len)
{
    json_t *obj = with_rv(object, rv);
    if (spec->format == ENCODE_TABLE) {
        json_t *table = table_render_object(spec->kind, obj, spec->include, with_columns, (int64_t)time(NULL));
        json_decref(obj);
        obj = table;
    }
    return line_of(json_pack("{s:s, s:o}", "type", store_event_type_name(type), "object", obj), len);
}

char *watch_encode_bookmark(const watch_spec_t *spec, int64_t rv, size_t *len)
{
    char text[24];
    snprintf(text, sizeof(text), "%lld", (long long)rv);
    json_t *obj = json_pack("{s:s, s:s, s:{s:s}}", "kind", spec->kind->kind, "apiVersion", SCHEMA_GROUP_VERSION,
                            "metadata", "resourceVersion", text);
    return line_of(json_pack("{s:s, s:o}", "type", "BOOKMARK", "object", obj), len);
}

char *watch_encode_error(const lo_err_t *err, size_t *len)
{
    return line_of(json_pack("{s:s, s:o}", "type", "ERROR", "object", status_from_err(err)), len);
}

/* ---- replay ---- */

typedef struct replay_buf {
    const watch_spec_t *spec;
    store_t *store;
    watch_replay_t *out;
    size_t cap;
    json_t *objects;        /* the events' objects, derived together once the log is read */
    int64_t *rvs;           /* per object: its event's rv and type */
    store_event_type_t *types;
    size_t n, n_cap;
} replay_buf_t;

static void replay_append(replay_buf_t *b, char *line /* stolen */, size_t len)
{
    watch_replay_t *out = b->out;
    if (out->len + len + 1 > b->cap) {
        b->cap = (out->len + len + 1) * 2;
        out->data = lo_realloc(out->data, b->cap);
    }
    memcpy(out->data + out->len, line, len);
    out->len += len;
    out->data[out->len] = '\0';
    free(line);
}

static void replay_event(replay_buf_t *b, store_event_type_t type, const json_t *obj, int64_t rv)
{
    size_t len;
    int columns = b->spec->format == ENCODE_TABLE && !b->out->columns_sent;
    char *line = watch_encode(b->spec, type, obj, rv, columns, &len);
    replay_append(b, line, len);
    b->out->columns_sent |= columns;
}

static int replay_filter(const json_t *obj, void *ctx)
{
    return matches(ctx, obj);
}

/* Keeps what the watcher sees of one logged change; encoded after the scan, once derived. */
static int replay_change(void *ctx, const store_event_t *ev)
{
    replay_buf_t *b = ctx;
    const json_t *obj;
    int type = watch_event_type(b->spec, ev, &obj);
    if (type == 0)
        return 0;
    if (b->n == b->n_cap) {
        b->n_cap = b->n_cap ? 2 * b->n_cap : 64;
        b->rvs = lo_realloc(b->rvs, b->n_cap * sizeof(*b->rvs));
        b->types = lo_realloc(b->types, b->n_cap * sizeof(*b->types));
    }
    b->rvs[b->n] = ev->rv;
    b->types[b->n] = (store_event_type_t)type;
    b->n++;
    json_array_append_new(b->objects, json_deep_copy(obj));
    return 0;
}

/* The kept changes as lines: derived after the log's read transaction (deriving reads the store too). */
static void replay_changes_encode(replay_buf_t *b)
{
    derive_overlay(b->store, b->spec->kind, b->objects, b->spec->cluster_domain);
    for (size_t i = 0; i < b->n; i++)
        replay_event(b, b->types[i], json_array_get(b->objects, i), b->rvs[i]);
}

static void replay_fail(replay_buf_t *b, const lo_err_t *err)
{
    size_t len;
    free(b->out->data);
    b->out->data = NULL;
    b->out->len = 0;
    b->cap = 0;
    char *line = watch_encode_error(err, &len);
    replay_append(b, line, len);
    b->out->failed = 1;
}

/* The current objects, as ADDED, and the rv they are as of. */
static void replay_state(replay_buf_t *b, store_t *store)
{
    const watch_spec_t *spec = b->spec;
    lo_err_t err = {0};
    store_list_result_t res = {0};
    store_list_opts_t opts = {.resource = spec->kind->plural, .ns = spec->kind->namespaced ? spec->ns : "",
                              .filter = spec->selecting ? replay_filter : NULL, .filter_ctx = (void *)spec};
    if (store_list(store, &opts, &res, &err) != STORE_OK) {
        replay_fail(b, &err);
    } else {
        derive_overlay(store, spec->kind, res.items, spec->cluster_domain);
        size_t i;
        json_t *obj;
        json_array_foreach(res.items, i, obj) {
            const char *rv = objmeta_get_string(obj, "resourceVersion");
            replay_event(b, STORE_EVENT_ADDED, obj, rv ? strtoll(rv, NULL, 10) : 0);
        }
        b->out->up_to = res.rv;
    }
    store_list_result_free(&res);
    lo_err_clear(&err);
}

void watch_replay(store_t *store, const watch_spec_t *spec, watch_replay_t *out)
{
    memset(out, 0, sizeof(*out));
    replay_buf_t b = {.spec = spec, .store = store, .out = out};
    if (spec->with_state) {
        replay_state(&b, store);
        return;
    }
    lo_err_t err = {0};
    b.objects = json_array();
    int rc = store_events(store, spec->kind->plural, spec->kind->namespaced ? spec->ns : "", spec->rv,
                          spec->selecting, replay_change, &b, &out->up_to, &err);
    if (rc == STORE_OK)
        replay_changes_encode(&b);
    json_decref(b.objects);
    free(b.rvs);
    free(b.types);
    if (rc != STORE_OK) {
        if (rc == STORE_EXPIRED) {
            int64_t horizon = 0;
            store_compacted_rv(store, &horizon, NULL);
            lo_err_clear(&err);
            lo_err_set(&err, 410, "Expired", "too old resource version: %lld (%lld)", (long long)spec->rv,
                       (long long)horizon);
        }
        replay_fail(&b, &err);
    }
    lo_err_clear(&err);
}

void watch_replay_free(watch_replay_t *replay)
{
    free(replay->data);
    memset(replay, 0, sizeof(*replay));
}
