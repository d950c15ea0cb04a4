/*
 * table.c - server-side printing: a kind's objects as a meta.k8s.io/v1 Table,
 * the shape kubectl asks for with `Accept: application/json;as=Table;...`.
 *
 * Columns come from the kind's additionalPrinterColumns; Name is always the
 * first column. Cells follow what kube-apiserver does for custom resources:
 * typed columns (integer, number, boolean) carry the typed JSON value, string
 * columns carry text, date columns carry an age such as "5m10s", and a value
 * that is absent, null or of the wrong type is a null cell (kubectl prints
 * <none>). Where kube differs on purpose:
 *   - several values from a [*] path are joined with "," (kube keeps only the
 *     first), so `.spec.models[*].name` lists every model;
 *   - object and array values in string columns are their compact JSON text;
 *   - date cells use HumanDuration ("3h12m", as kubectl prints Pod ages)
 *     rather than the coarser ShortHumanDuration ("3h").
 *
 * Ownership: the Table holds references to parts of the objects it was given
 * (metadata, or whole objects with includeObject=Object) instead of copies, so
 * a list of many objects is not duplicated. Callers must not modify those
 * objects while the Table lives (jansson's reference counts are atomic, so
 * sharing them between threads is safe).
 *
 * No global state; every function may be called from any thread.
 */
#include <assert.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "langop/schema/table.h"

/* Our own wording of what ObjectMeta.name means, as the Name column's description. */
#define NAME_COLUMN_DESCRIPTION                                                            \
    "Name must be unique within a namespace (or, for a cluster-scoped kind, within the "  \
    "cluster). It is chosen by the client, or generated from generateName, when the "     \
    "object is created, and cannot be changed afterwards."

/* ---- includeObject ---------------------------------------------------- */

/* Appends value to buf quoted like Go's %q for ASCII (escapes for the rest),
 * at most max input bytes. buf must hold 4 * max + 8 bytes. */
static void quote_value(const char *value, size_t max, char *buf)
{
    char *o = buf;
    *o++ = '"';
    for (size_t i = 0; value[i] != '\0' && i < max; i++) {
        unsigned char c = (unsigned char)value[i];
        if (c == '"' || c == '\\') {
            *o++ = '\\';
            *o++ = (char)c;
        } else if (c < 0x20 || c >= 0x7f) {
            o += sprintf(o, "\\x%02x", c);
        } else {
            *o++ = (char)c;
        }
    }
    *o++ = '"';
    *o = '\0';
}

int table_parse_include(const char *value, table_include_t *out, lo_err_t *err)
{
    /* kube's TableOptions validation accepts exactly these, case-sensitive. */
    if (value == NULL || value[0] == '\0' || strcmp(value, "Metadata") == 0) {
        *out = TABLE_INCLUDE_METADATA;
        return 0;
    }
    if (strcmp(value, "Object") == 0) {
        *out = TABLE_INCLUDE_OBJECT;
        return 0;
    }
    if (strcmp(value, "None") == 0) {
        *out = TABLE_INCLUDE_NONE;
        return 0;
    }
    enum { QUOTE_MAX = 128 };
    char quoted[4 * QUOTE_MAX + 8];
    quote_value(value, QUOTE_MAX, quoted);
    lo_err_set(err, 400, "BadRequest",
               "Unable to convert to Table as requested: includeObject: Invalid value: %s: "
               "must be 'Metadata', 'Object', 'None', or empty",
               quoted);
    return -1;
}

/* ---- jsonPath subset -------------------------------------------------- */

typedef enum path_step_kind {
    STEP_FIELD,      /* .name or ['name'] */
    STEP_INDEX,      /* [3] or [-1] (from the end, as kube allows) */
    STEP_WILDCARD,   /* [*] or .* : every element or member value */
    STEP_FILTER,     /* [?(@.field=="value")]: the list items whose field equals value */
} path_step_kind_t;

typedef struct path_step {
    path_step_kind_t kind;
    const char *key;   /* STEP_FIELD: points into the path, not NUL-terminated */
    size_t key_len;
    long index;        /* STEP_INDEX */
    const char *value; /* STEP_FILTER: the compared value, without quotes; key/key_len is the field */
    size_t value_len;
} path_step_t;

/*
 * Parses the filter at s ("?(@.type==\"Ready\")]" after the '['), the one
 * form CRD printer columns use to pick a condition. Returns the position
 * of the closing ']' or NULL.
 */
static const char *parse_filter(const char *s, const char *end, path_step_t *step)
{
    if (end - s < 4 || memcmp(s, "?(@.", 4) != 0)
        return NULL;
    s += 4;
    step->key = s;
    while (s < end && *s != '=' && *s != ')')
        s++;
    step->key_len = (size_t)(s - step->key);
    if (step->key_len == 0 || end - s < 2 || s[0] != '=' || s[1] != '=')
        return NULL;
    s += 2;
    if (s < end && (*s == '"' || *s == '\'')) {
        char quote = *s++;
        const char *close = memchr(s, quote, (size_t)(end - s));
        if (close == NULL)
            return NULL;
        step->value = s;
        step->value_len = (size_t)(close - s);
        s = close + 1;
    } else {
        step->value = s;
        while (s < end && *s != ')')
            s++;
        step->value_len = (size_t)(s - step->value);
    }
    if (end - s < 2 || s[0] != ')' || s[1] != ']')
        return NULL;
    step->kind = STEP_FILTER;
    return s + 1;
}

/* Parses "[...]" at *p. Returns 0 and advances *p, or -1. */
static int parse_bracket(const char **p, const char *end, path_step_t *step)
{
    const char *s = *p + 1;
    if (s < end && *s == '?') {
        if ((s = parse_filter(s, end, step)) == NULL)
            return -1;
    } else if (s < end && *s == '*') {
        step->kind = STEP_WILDCARD;
        s++;
    } else if (s < end && (*s == '\'' || *s == '"')) {
        char quote = *s++;
        const char *close = memchr(s, quote, (size_t)(end - s));
        if (close == NULL)
            return -1;
        step->kind = STEP_FIELD;
        step->key = s;
        step->key_len = (size_t)(close - s);
        s = close + 1;
    } else {
        int negative = s < end && *s == '-';
        if (negative)
            s++;
        if (s >= end || *s < '0' || *s > '9')
            return -1;
        long v = 0;
        for (; s < end && *s >= '0' && *s <= '9'; s++) {
            if (v > 100000000L)   /* no JSON array is that long: refuse rather than overflow */
                return -1;
            v = v * 10 + (*s - '0');
        }
        step->kind = STEP_INDEX;
        step->index = negative ? -v : v;
    }
    if (s >= end || *s != ']')
        return -1;
    *p = s + 1;
    return 0;
}

/* Parses one step at *p (".name", ".*" or "[...]"). Returns 0 and advances *p, or -1. */
static int parse_step(const char **p, const char *end, path_step_t *step)
{
    const char *s = *p;
    if (*s == '[')
        return parse_bracket(p, end, step);
    if (*s != '.')
        return -1;
    s++;
    if (s < end && *s == '[') {   /* ".['a.b']", as some CRDs write it */
        if (parse_bracket(&s, end, step) < 0)
            return -1;
        *p = s;
        return 0;
    }
    const char *name = s;
    while (s < end && *s != '.' && *s != '[')
        s++;
    if (s == name)
        return -1;
    if (s - name == 1 && *name == '*') {
        step->kind = STEP_WILDCARD;
    } else {
        step->kind = STEP_FIELD;
        step->key = name;
        step->key_len = (size_t)(s - name);
    }
    *p = s;
    return 0;
}

static char *value_text(const json_t *v);

/* Whether a list item's field (borrowed, may be NULL) equals the filter's value, compared as text. */
static int filter_matches(const json_t *field, const path_step_t *step)
{
    if (field == NULL || json_is_object(field) || json_is_array(field))
        return 0;
    char *text = value_text(field);
    int eq = strlen(text) == step->value_len && memcmp(text, step->value, step->value_len) == 0;
    free(text);
    return eq;
}

/* The values that step selects from each value of cur, in order: new array. */
static json_t *apply_step(const json_t *cur, const path_step_t *step)
{
    json_t *next = json_array();
    size_t i;
    json_t *v;
    json_array_foreach(cur, i, v) {
        if (step->kind == STEP_FIELD) {
            json_t *x = json_object_getn(v, step->key, step->key_len);
            if (x != NULL)
                json_array_append(next, x);
        } else if (step->kind == STEP_INDEX && json_is_array(v)) {
            long n = (long)json_array_size(v);
            long at = step->index < 0 ? step->index + n : step->index;
            if (at >= 0 && at < n)
                json_array_append(next, json_array_get(v, (size_t)at));
        } else if (step->kind == STEP_WILDCARD && json_is_array(v)) {
            json_array_extend(next, v);
        } else if (step->kind == STEP_FILTER && json_is_array(v)) {
            size_t j;
            json_t *item;
            json_array_foreach(v, j, item) {
                if (filter_matches(json_object_getn(item, step->key, step->key_len), step))
                    json_array_append(next, item);
            }
        } else if (step->kind == STEP_WILDCARD && json_is_object(v)) {
            const char *key;
            json_t *member;
            json_object_foreach(v, key, member)
                json_array_append(next, member);
        }
    }
    return next;
}

json_t *table_jsonpath(const json_t *obj, const char *path)
{
    json_t *cur = json_array();
    if (obj == NULL || path == NULL)
        return cur;
    const char *p = path;
    const char *end = path + strlen(path);
    while (p < end && (*p == ' ' || *p == '\t'))
        p++;
    while (end > p && (end[-1] == ' ' || end[-1] == '\t'))
        end--;
    if (p < end && *p == '{') {   /* the template form "{.spec.x}" */
        if (end - p < 2 || end[-1] != '}')
            return cur;
        p++;
        end--;
    }
    if (p < end && *p == '$')
        p++;
    if (p == end)   /* an empty path selects nothing, as a CRD cannot have one */
        return cur;
    json_array_append(cur, (json_t *)obj);
    while (p < end && json_array_size(cur) > 0) {
        path_step_t step;
        if (parse_step(&p, end, &step) < 0) {
            json_array_clear(cur);   /* a broken path finds nothing */
            break;
        }
        json_t *next = apply_step(cur, &step);
        json_decref(cur);
        cur = next;
    }
    return cur;
}

/* ---- durations -------------------------------------------------------- */

void table_human_duration(int64_t seconds, char *buf, size_t size)
{
    if (size == 0)
        return;
    /* Thresholds as apimachinery's HumanDuration: about 2-3 significant figures. A
     * clock up to a second behind counts as now; further in the future is invalid. */
    if (seconds < -1) {
        snprintf(buf, size, "<invalid>");
        return;
    }
    if (seconds < 0)
        seconds = 0;
    int64_t minutes = seconds / 60, hours = seconds / 3600, days = hours / 24;
    if (seconds < 2 * 60)
        snprintf(buf, size, "%" PRId64 "s", seconds);
    else if (minutes < 10 && seconds % 60 != 0)
        snprintf(buf, size, "%" PRId64 "m%" PRId64 "s", minutes, seconds % 60);
    else if (minutes < 3 * 60)
        snprintf(buf, size, "%" PRId64 "m", minutes);
    else if (hours < 8 && minutes % 60 != 0)
        snprintf(buf, size, "%" PRId64 "h%" PRId64 "m", hours, minutes % 60);
    else if (hours < 48)
        snprintf(buf, size, "%" PRId64 "h", hours);
    else if (hours < 24 * 8 && hours % 24 != 0)
        snprintf(buf, size, "%" PRId64 "d%" PRId64 "h", days, hours % 24);
    else if (hours < 24 * 365 * 2)
        snprintf(buf, size, "%" PRId64 "d", days);
    else if (hours < 24 * 365 * 8 && days % 365 != 0)
        snprintf(buf, size, "%" PRId64 "y%" PRId64 "d", days / 365, days % 365);
    else
        snprintf(buf, size, "%" PRId64 "y", days / 365);
}

/* ---- cells ------------------------------------------------------------ */

/* The shortest text that reads back as d, as Go prints a float64 ("3.9",
 * "1e+06"); jansson would print 17 digits ("3.8999999999999999"). Caller frees. */
static char *real_text(double d)
{
    char buf[40];
    lo_real_text(d, buf, sizeof(buf));
    return lo_strdup(buf);
}

/* The text kubectl would print for v (not null): strings as they are, numbers
 * as Go prints them, anything else as compact JSON. Caller frees. */
static char *value_text(const json_t *v)
{
    if (json_is_string(v))
        return lo_strndup(json_string_value(v), json_string_length(v));
    if (json_is_real(v))
        return real_text(json_real_value(v));
    char *text = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT | JSON_SORT_KEYS);
    if (text == NULL)
        lo_fatal("table: cannot encode a cell value");
    return text;
}

/* An RFC 3339 timestamp as the age kubectl shows: new reference. */
static json_t *date_cell(const char *timestamp, int64_t now)
{
    int64_t t;
    if (lo_time_parse(timestamp, &t) < 0)
        return json_string("<invalid>");
    char age[32];
    table_human_duration(now - t, age, sizeof(age));
    return json_string(age);
}

/* The cell for one found value v in a column of type type: new reference. */
static json_t *value_cell(const char *type, const json_t *v, int64_t now)
{
    if (json_is_null(v))
        return json_null();
    if (strcmp(type, "string") == 0) {
        if (json_is_string(v))
            return json_copy((json_t *)v);
        char *text = value_text(v);   /* JSON text: valid UTF-8 */
        json_t *cell = json_string(text);
        free(text);
        return cell;
    }
    if (strcmp(type, "integer") == 0) {
        if (json_is_integer(v))
            return json_integer(json_integer_value(v));
        /* a real is truncated, as kube does; reals beyond int64 have no integer cell */
        double d = json_real_value(v);
        if (json_is_real(v) && fabs(d) < 9.2e18)
            return json_integer((json_int_t)d);
        return json_null();
    }
    if (strcmp(type, "number") == 0)
        return json_is_number(v) ? json_real(json_number_value(v)) : json_null();
    if (strcmp(type, "boolean") == 0)
        return json_is_boolean(v) ? json_boolean(json_is_true(v)) : json_null();
    if (strcmp(type, "date") == 0)
        return json_is_string(v) ? date_cell(json_string_value(v), now) : json_null();
    return json_null();   /* a column type kube does not print */
}

/* Several found values: each one's cell text, nulls skipped, joined with ",". New reference. */
static json_t *joined_cell(const char *type, const json_t *found, int64_t now)
{
    char *joined = NULL;
    size_t len = 0;
    size_t i;
    json_t *v;
    json_array_foreach(found, i, v) {
        json_t *cell = value_cell(type, v, now);
        if (!json_is_null(cell)) {
            char *text = value_text(cell);
            size_t n = strlen(text);
            joined = lo_realloc(joined, len + n + 2);
            if (len > 0)
                joined[len++] = ',';
            memcpy(joined + len, text, n + 1);
            len += n;
            free(text);
        }
        json_decref(cell);
    }
    json_t *result = joined != NULL ? json_string(joined) : NULL;
    free(joined);
    return result != NULL ? result : json_null();
}

/* A printer column we can render: an object with a name and a jsonPath. The
 * column definitions and the cells both skip the others, so they stay aligned. */
static int column_usable(const json_t *col)
{
    return json_is_string(json_object_get(col, "name")) &&
           json_is_string(json_object_get(col, "jsonPath"));
}

static const char *column_type(const json_t *col)
{
    const char *type = json_string_value(json_object_get(col, "type"));
    return type != NULL ? type : "string";
}

/* The cell of column col for obj: new reference. */
static json_t *column_cell(const json_t *col, const json_t *obj, int64_t now)
{
    const char *type = column_type(col);
    json_t *found = table_jsonpath(obj, json_string_value(json_object_get(col, "jsonPath")));
    json_t *cell;
    if (json_array_size(found) == 0)
        cell = json_null();
    else if (json_array_size(found) == 1)
        cell = value_cell(type, json_array_get(found, 0), now);
    else
        cell = joined_cell(type, found, now);
    json_decref(found);
    return cell;
}

/* ---- the Table -------------------------------------------------------- */

static json_t *column_definition(const char *name, const char *type, const char *format,
                                 const char *description, json_int_t priority)
{
    return json_pack("{s:s, s:s, s:s, s:s, s:I}", "name", name, "type", type,
                     "format", format, "description", description, "priority", priority);
}

/* Name, then the kind's printer columns, each with its priority: new array. */
static json_t *column_definitions(const schema_kind_t *k)
{
    json_t *defs = json_array();
    json_array_append_new(defs, column_definition("Name", "string", "name",
                                                  NAME_COLUMN_DESCRIPTION, 0));
    size_t i;
    json_t *col;
    json_array_foreach(k->printer_columns, i, col) {
        if (!column_usable(col))
            continue;
        const char *path = json_string_value(json_object_get(col, "jsonPath"));
        const char *format = json_string_value(json_object_get(col, "format"));
        const char *description = json_string_value(json_object_get(col, "description"));
        char *fallback = NULL;
        if (description == NULL || description[0] == '\0')
            description = fallback = lo_sprintf("The value at jsonPath %s.", path);
        json_array_append_new(defs, column_definition(
            json_string_value(json_object_get(col, "name")), column_type(col),
            format != NULL ? format : "", description,
            json_integer_value(json_object_get(col, "priority"))));
        free(fallback);
    }
    return defs;
}

/* What a row carries as "object", per includeObject: new reference. */
static json_t *row_object(const schema_kind_t *k, json_t *obj, table_include_t include)
{
    if (include == TABLE_INCLUDE_NONE)
        return json_null();
    if (include == TABLE_INCLUDE_OBJECT) {
        if (json_is_string(json_object_get(obj, "kind")) &&
            json_is_string(json_object_get(obj, "apiVersion")))
            return json_incref(obj);
        /* kubectl decodes the object by its type: make sure it has one */
        json_t *typed = json_copy(obj);
        json_object_set_new(typed, "kind", json_string(k->kind));
        json_object_set_new(typed, "apiVersion", json_string(SCHEMA_GROUP_VERSION));
        return typed;
    }
    json_t *meta = json_object_get(obj, "metadata");
    json_t *partial = json_pack("{s:s, s:s}", "kind", "PartialObjectMetadata",
                                "apiVersion", "meta.k8s.io/v1");
    json_object_set_new(partial, "metadata", json_is_object(meta) ? json_incref(meta) : json_object());
    return partial;
}

json_t *table_render_row(const schema_kind_t *k, const json_t *object, table_include_t include, int64_t now)
{
    json_t *obj = (json_t *)object; /* only read, and given on with a new reference */
    json_t *cells = json_array();
    json_t *name = json_object_get(json_object_get(obj, "metadata"), "name");
    json_array_append_new(cells, json_is_string(name) ? json_copy(name) : json_string(""));
    size_t i;
    json_t *col;
    json_array_foreach(k->printer_columns, i, col) {
        if (column_usable(col))
            json_array_append_new(cells, column_cell(col, obj, now));
    }
    return json_pack("{s:o, s:o}", "cells", cells, "object", row_object(k, obj, include));
}

/* The ListMeta fields of list_meta (borrowed, may be NULL): new object. */
static json_t *table_metadata(const json_t *list_meta)
{
    static const char *const keys[] = { "resourceVersion", "continue", "remainingItemCount" };
    json_t *meta = json_object();
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
        json_t *v = json_object_get(list_meta, keys[i]);
        if (v != NULL && !json_is_null(v))
            json_object_set(meta, keys[i], v);
    }
    return meta;
}

json_t *table_render(const schema_kind_t *k, const json_t *objects, const json_t *list_meta,
                     table_include_t include, int with_columns, int64_t now)
{
    assert(k != NULL);
    json_t *table = json_pack("{s:s, s:s, s:o}", "kind", "Table", "apiVersion", "meta.k8s.io/v1",
                              "metadata", table_metadata(list_meta));
    if (with_columns)
        json_object_set_new(table, "columnDefinitions", column_definitions(k));
    json_t *rows = json_array();
    size_t i;
    json_t *obj;
    json_array_foreach(objects, i, obj) {
        if (json_is_object(obj))
            json_array_append_new(rows, table_render_row(k, obj, include, now));
    }
    json_object_set_new(table, "rows", rows);
    return table;
}

json_t *table_render_object(const schema_kind_t *k, const json_t *obj, table_include_t include, int with_columns,
                            int64_t now)
{
    json_t *one = json_pack("[O]", obj);
    json_t *meta = json_pack("{s:O*}", "resourceVersion",
                             json_object_get(json_object_get(obj, "metadata"), "resourceVersion"));
    json_t *table = table_render(k, one, meta, include, with_columns, now);
    json_decref(meta);
    json_decref(one);
    return table;
}
