/*
 * watch.c - watch semantics without the transport (see langop/watch.h).
 */
#include "langop/registry/watch.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "langop/core/codec.h"
#include "langop/core/status.h"
#include "langop/schema/objmeta.h"

/* ---- parsing ---- */

static int64_t timeout_ms(int64_t seconds)
{
    if (seconds == 0) /* kube: minRequestTimeout * (1 + rand), so that watches do not all end at once */
        seconds = WATCH_MIN_REQUEST_TIMEOUT_S + (int64_t)(rand() % WATCH_MIN_REQUEST_TIMEOUT_S);
    if (seconds > WATCH_MAX_TIMEOUT_S) /* longer means "no end"; kept well clear of overflowing milliseconds */
        seconds = WATCH_MAX_TIMEOUT_S;
    return seconds * 1000;
}

int watch_spec_select(const schema_kind_t *k, const reqinfo_t *info, const options_t *opts, watch_spec_t *out,
                      lo_err_t *err)
{
    memset(out, 0, sizeof(*out));
    out->kind = k;
    if (k->namespaced && info->ns)
        out->ns = lo_strdup(info->ns);
    const options_list_t *l = &opts->list;
    /*
     * The spec outlives the request, so it holds selectors of its own, built
     * from the texts the options checked; the old item form (GET
     * .../<name>?watch=true) watches by name.
     */
    const char *fields = l->field_text;
    char *by_name = info->name ? lo_sprintf("metadata.name=%s%s%s", info->name, fields[0] ? "," : "", fields) : NULL;
    if (by_name)
        fields = by_name;
    out->selecting = l->label_text[0] || fields[0];
    out->fields = field_selector_parse(fields, objmeta_field_labels, err);
    out->labels = label_selector_parse(l->label_text, err);
    free(by_name);
    if (out->labels == NULL || out->fields == NULL) {
        watch_spec_free(out);
        return -1;
    }
    out->format = opts->format;
    out->include = opts->include;
    return 0;
}

int watch_spec_parse(const schema_kind_t *k, const reqinfo_t *info, const options_t *opts, watch_spec_t *out,
                     lo_err_t *err)
{
    if (watch_spec_select(k, info, opts, out, err) != 0)
        return -1;
    const options_list_t *l = &opts->list;
    out->with_state = !l->has_rv || l->rv == 0;
    out->rv = l->has_rv ? l->rv : 0;
    out->bookmarks = l->allow_watch_bookmarks;
    out->timeout_ms = timeout_ms(l->timeout_seconds);
    if (out->format == ENCODE_YAML) {
        lo_err_set(err, 406, "NotAcceptable", "a watch is served as application/json or as a Table");
        watch_spec_free(out);
        return -1;
    }
    return 0;
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

void watch_spec_destroy(watch_spec_t *spec)
{
    if (spec == NULL)
        return;
    watch_spec_free(spec);
    free(spec);
}

/* ---- what a watcher sees ---- */

int watch_spec_matches(const watch_spec_t *spec, const json_t *obj)
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
    int now = watch_spec_matches(spec, ev->object);
    if (ev->type != STORE_EVENT_MODIFIED)
        return now ? (int)ev->type : 0;
    /* without the previous state, assume it matched as the new one does */
    int before = ev->prev ? watch_spec_matches(spec, ev->prev) : now;
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
    size_t n;
    char *text = codec_encode_json_len(event, &n);
    json_decref(event);
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

char *watch_encode_body(store_event_type_t type, const char *body, size_t body_len, size_t *len)
{
    static const char head[] = "{\"type\":\"";
    static const char mid[] = "\",\"object\":";
    const char *t = store_event_type_name(type);
    size_t tlen = strlen(t);
    size_t n = sizeof(head) - 1 + tlen + sizeof(mid) - 1 + body_len + 2;
    char *line = lo_malloc(n + 1);
    char *p = line;
    memcpy(p, head, sizeof(head) - 1), p += sizeof(head) - 1;
    memcpy(p, t, tlen), p += tlen;
    memcpy(p, mid, sizeof(mid) - 1), p += sizeof(mid) - 1;
    memcpy(p, body, body_len), p += body_len;
    *p++ = '}';
    *p++ = '\n';
    *p = '\0';
    *len = n;
    return line;
}

/* ---- replay pages ---- */

void watch_cursor_init(watch_cursor_t *c, const watch_spec_t *spec)
{
    memset(c, 0, sizeof(*c));
    c->phase = spec->with_state ? WATCH_PHASE_STATE : WATCH_PHASE_EVENTS;
    c->after_rv = spec->with_state ? 0 : spec->rv;
}

void watch_cursor_free(watch_cursor_t *c)
{
    free(c->after_ns);
    free(c->after_name);
    c->after_ns = c->after_name = NULL;
}

void watch_page_free(watch_page_t *page)
{
    free(page->data);
    memset(page, 0, sizeof(*page));
}

/* A page being filled. */
typedef struct page_buf {
    const watch_spec_t *spec;
    watch_page_t *out;
    size_t cap;
    int with_columns;       /* the next Table line carries the column definitions */
} page_buf_t;

static void page_append(page_buf_t *b, char *line /* stolen */, size_t len)
{
    watch_page_t *out = b->out;
    if (out->len + len + 1 > b->cap) {
        b->cap = (out->len + len + 1) * 2;
        out->data = lo_realloc(out->data, b->cap);
    }
    memcpy(out->data + out->len, line, len);
    out->len += len;
    out->data[out->len] = '\0';
    free(line);
}

static void page_event(page_buf_t *b, store_event_type_t type, const json_t *obj, int64_t rv)
{
    size_t len;
    int columns = b->spec->format == ENCODE_TABLE && b->with_columns;
    char *line = watch_encode(b->spec, type, obj, rv, columns, &len);
    page_append(b, line, len);
    if (columns) {
        b->with_columns = 0;
        b->out->columns_sent = 1;
    }
}

/* The page is one ERROR line with the Status of a store failure rc (err: the store's message). */
static void page_fail(page_buf_t *b, int rc, const watch_spec_t *spec, lo_err_t *err)
{
    char why[LO_ERR_MESSAGE_MAX / 2];
    snprintf(why, sizeof(why), "%.400s", err->message);
    if (rc == STORE_EXPIRED)
        lo_err_set(err, 410, "Expired", "%s", why);
    else if (rc == STORE_FUTURE_RV)
        lo_err_set(err, 504, "Timeout", "%s", why);
    else
        status_internal(err, "reading the replay of %s: %s", spec->kind->plural, why);
    free(b->out->data);
    b->out->data = NULL;
    b->out->len = 0;
    b->cap = 0;
    size_t len;
    char *line = watch_encode_error(err, &len);
    page_append(b, line, len);
    b->out->failed = 1;
}

static int replay_filter(const json_t *obj, void *ctx)
{
    return watch_spec_matches(ctx, obj);
}

static int64_t object_rv(const json_t *obj)
{
    const char *rv = objmeta_get_string(obj, "resourceVersion");
    return rv ? strtoll(rv, NULL, 10) : 0;
}

/* The next page of the objects as of cursor->at_rv, as ADDED; the last one moves the cursor to the log. */
static void read_state_page(store_t *store, page_buf_t *b, watch_cursor_t *cur)
{
    const watch_spec_t *spec = b->spec;
    lo_err_t err = {0};
    store_list_result_t res = {0};
    store_list_opts_t opts = {.resource = spec->kind->plural, .ns = spec->kind->namespaced ? spec->ns : "",
                              .at_rv = cur->at_rv, .after_ns = cur->after_ns, .after_name = cur->after_name,
                              .limit = WATCH_PAGE_ITEMS, .max_bytes = WATCH_PAGE_BYTES, .skip_remaining = 1,
                              .filter = spec->selecting ? replay_filter : NULL, .filter_ctx = (void *)spec};
    int rc = store_list(store, &opts, &res, &err);
    if (rc != STORE_OK) {
        page_fail(b, rc, spec, &err);
        lo_err_clear(&err);
        return;
    }
    size_t i;
    json_t *obj;
    json_array_foreach(res.items, i, obj) page_event(b, STORE_EVENT_ADDED, obj, object_rv(obj));
    cur->at_rv = res.rv;
    watch_cursor_free(cur);
    if (res.more) {
        cur->after_ns = res.last_ns;
        cur->after_name = res.last_name;
        res.last_ns = res.last_name = NULL;
    } else { /* the state is out: what follows is the log after its rv */
        cur->phase = WATCH_PHASE_EVENTS;
        cur->after_rv = res.rv;
        b->out->seen = res.rv;
        b->out->caught_up = 1;
    }
    store_list_result_free(&res);
}

/* What the watcher sees of one logged change, as a line; stops the page once it holds enough. */
static int page_change(void *ctx, const store_event_t *ev)
{
    page_buf_t *b = ctx;
    const json_t *obj;
    int type = watch_event_type(b->spec, ev, &obj);
    if (type != 0)
        page_event(b, (store_event_type_t)type, obj, ev->rv);
    return b->out->len >= WATCH_PAGE_BYTES;
}

static void read_events_page(store_t *store, page_buf_t *b, watch_cursor_t *cur)
{
    const watch_spec_t *spec = b->spec;
    lo_err_t err = {0};
    int64_t up_to = 0, last = 0;
    store_events_opts_t o = {.resource = spec->kind->plural, .ns = spec->kind->namespaced ? spec->ns : "",
                             .after_rv = cur->after_rv, .limit = WATCH_PAGE_ITEMS, .with_prev = spec->selecting};
    int rc = store_events(store, &o, page_change, b, &up_to, &last, &err);
    if (rc != STORE_OK) {
        if (rc == STORE_EXPIRED) { /* kube words it with the horizon */
            int64_t horizon = 0;
            store_compacted_rv(store, &horizon, NULL);
            lo_err_set(&err, 0, "", "too old resource version: %lld (%lld)", (long long)cur->after_rv,
                       (long long)horizon);
        }
        page_fail(b, rc, spec, &err);
        lo_err_clear(&err);
        return;
    }
    cur->after_rv = last;
    b->out->seen = last;
    b->out->caught_up = last == up_to;
}

void watch_read_page(store_t *store, const watch_spec_t *spec, watch_cursor_t *cursor, int with_columns,
                     watch_page_t *out)
{
    memset(out, 0, sizeof(*out));
    page_buf_t b = {.spec = spec, .out = out, .with_columns = with_columns};
    if (cursor->phase == WATCH_PHASE_STATE)
        read_state_page(store, &b, cursor);
    else
        read_events_page(store, &b, cursor);
}
