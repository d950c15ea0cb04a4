/*
 * validate.c - a kind's structural schema applied to an object: pruning of
 * unknown fields, defaulting, and validation with kube's causes and wording.
 *
 * The schema is a borrowed, read-only jansson tree shared by all worker
 * threads: this file only reads it (never increfs it: reference counts are
 * not atomic) and deep-copies the defaults it inserts.
 *
 * Validation mirrors what kube-apiserver does for a custom resource: one pass
 * of OpenAPI schema checks (kube-openapi's validators, in their order), then
 * one pass of x-kubernetes-list-type uniqueness checks. Every violation is a
 * cause; the walk never stops at the first one.
 */
#include "langop/schema/validate.h"

#include <math.h>
#include <pthread.h>
#include <regex.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "langop/core/status.h"

/* ------------------------------------------------------------------------ */
/* Growable strings and field paths                                         */

/* Appends ".name" (or "name" at the root); returns the length to pop back to. */
static size_t path_field(lo_buf_t *path, const char *name)
{
    size_t old = path->len;
    if (old > 0)
        lo_buf_put(path, ".", 1);
    lo_buf_puts(path, name);
    return old;
}

static size_t path_index(lo_buf_t *path, size_t i)
{
    size_t old = path->len;
    lo_buf_printf(path, "[%zu]", i);
    return old;
}

static size_t path_key(lo_buf_t *path, const char *key)
{
    size_t old = path->len;
    lo_buf_printf(path, "[%s]", key);
    return old;
}

/* ------------------------------------------------------------------------ */
/* Values printed the way kube's Go code prints them in messages            */

/* Go's %q for a UTF-8 string (jansson guarantees valid UTF-8). */
static void sb_go_quote(lo_buf_t *sb, const char *s, size_t n)
{
    lo_buf_put(sb, "\"", 1);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        switch (c) {
        case '"': lo_buf_puts(sb, "\\\""); break;
        case '\\': lo_buf_puts(sb, "\\\\"); break;
        case '\a': lo_buf_puts(sb, "\\a"); break;
        case '\b': lo_buf_puts(sb, "\\b"); break;
        case '\f': lo_buf_puts(sb, "\\f"); break;
        case '\n': lo_buf_puts(sb, "\\n"); break;
        case '\r': lo_buf_puts(sb, "\\r"); break;
        case '\t': lo_buf_puts(sb, "\\t"); break;
        case '\v': lo_buf_puts(sb, "\\v"); break;
        default:
            if (c < 0x20 || c == 0x7f)
                lo_buf_printf(sb, "\\x%02x", c);
            else
                lo_buf_put(sb, (const char *)&c, 1);
        }
    }
    lo_buf_put(sb, "\"", 1);
}

/* Go's %v of a float64: shortest round-trip digits, exponent form outside [1e-4, 1e6). */
static void sb_go_float(lo_buf_t *sb, double x)
{
    if (isnan(x)) {
        lo_buf_puts(sb, "NaN");
        return;
    }
    if (isinf(x)) {
        lo_buf_puts(sb, x > 0 ? "+Inf" : "-Inf");
        return;
    }
    if (x == 0) {
        lo_buf_puts(sb, signbit(x) ? "-0" : "0");
        return;
    }
    char e[40];
    int digits = 1;
    for (; digits <= 17; digits++) {
        snprintf(e, sizeof(e), "%.*e", digits - 1, x);
        if (strtod(e, NULL) == x)
            break;
    }
    int exp = atoi(strchr(e, 'e') + 1);
    if (exp < -4 || exp >= 6)
        lo_buf_puts(sb, e);
    else
        lo_buf_printf(sb, "%.*f", digits - 1 - exp > 0 ? digits - 1 - exp : 0, x);
}

static void sb_json(lo_buf_t *sb, const json_t *v)
{
    char *text = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY | JSON_SORT_KEYS);
    if (text == NULL)
        lo_fatal("out of memory");
    lo_buf_puts(sb, text);
    free(text);
}

/* A bad value as field.ErrorBody prints it: strings quoted, numbers and booleans bare. */
static void sb_value(lo_buf_t *sb, const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_STRING: sb_go_quote(sb, json_string_value(v), json_string_length(v)); break;
    case JSON_INTEGER: lo_buf_printf(sb, "%" JSON_INTEGER_FORMAT, json_integer_value(v)); break;
    case JSON_REAL: sb_go_float(sb, json_real_value(v)); break;
    case JSON_TRUE: lo_buf_puts(sb, "true"); break;
    case JSON_FALSE: lo_buf_puts(sb, "false"); break;
    case JSON_NULL: lo_buf_puts(sb, "null"); break;
    default: sb_json(sb, v); break; /* Go prints %#v here; JSON is the readable equivalent */
    }
}

/* Go's %#v of a map[string]interface{} (keys sorted), as kube prints list-map keys. */
static void sb_go_map(lo_buf_t *sb, const json_t *obj)
{
    size_t n = json_object_size(obj);
    const char **keys = lo_calloc(n ? n : 1, sizeof(*keys));
    size_t i = 0;
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)obj, key, v)
        keys[i++] = key;
    for (size_t a = 1; a < n; a++) /* insertion sort: a key has one to three fields */
        for (size_t b = a; b > 0 && strcmp(keys[b - 1], keys[b]) > 0; b--) {
            const char *t = keys[b];
            keys[b] = keys[b - 1];
            keys[b - 1] = t;
        }
    lo_buf_puts(sb, "map[string]interface {}{");
    for (i = 0; i < n; i++) {
        if (i)
            lo_buf_puts(sb, ", ");
        sb_go_quote(sb, keys[i], strlen(keys[i]));
        lo_buf_put(sb, ":", 1);
        sb_value(sb, json_object_get(obj, keys[i]));
    }
    lo_buf_put(sb, "}", 1);
    free(keys);
}

/* ------------------------------------------------------------------------ */
/* Schema keywords                                                          */

static const json_t *kw(const json_t *s, const char *name)
{
    return json_is_object(s) ? json_object_get(s, name) : NULL;
}

static int kw_true(const json_t *s, const char *name)
{
    return json_is_true(kw(s, name));
}

/* A whole number: a JSON integer, or a real with no fraction (kube accepts 1.0 as an integer). */
static int is_whole(const json_t *v)
{
    if (json_is_integer(v))
        return 1;
    if (!json_is_real(v))
        return 0;
    double d = json_real_value(v);
    return isfinite(d) && floor(d) == d;
}

static int kw_count(const json_t *s, const char *name, long long *out)
{
    const json_t *v = kw(s, name);
    if (!is_whole(v))
        return 0;
    *out = (long long)json_number_value(v);
    if (json_is_integer(v))
        *out = json_integer_value(v);
    return 1;
}

/* The object schema of additionalProperties, or NULL (absent, or a bare true/false). */
static const json_t *additional_schema(const json_t *s)
{
    const json_t *ap = kw(s, "additionalProperties");
    return json_is_object(ap) ? ap : NULL;
}

/* Keeps every field under this node: preserve-unknown-fields, or additionalProperties: true. */
static int preserves_unknown(const json_t *s)
{
    return kw_true(s, "x-kubernetes-preserve-unknown-fields");
}

static int is_int_or_string(const json_t *s)
{
    return kw_true(s, "x-kubernetes-int-or-string");
}

/* ------------------------------------------------------------------------ */
/* Patterns: ECMA-262 subset translated to POSIX ERE, compiled once         */

/*
 * The cache is the one piece of global mutable state here: an append-only
 * list of compiled patterns. cache_lock guards the list; each entry's lock
 * serialises regexec on its regex_t (glibc mutates a compiled regex while
 * matching). Entries live until the process exits.
 */
typedef struct rx_entry {
    struct rx_entry *next;
    char *pattern;      /* as written in the schema */
    int compiled;       /* 0: the pattern is not one we can compile */
    regex_t re;
    pthread_mutex_t lock;
} rx_entry_t;

static pthread_mutex_t cache_lock = PTHREAD_MUTEX_INITIALIZER;
static rx_entry_t *cache_head;

/* Appends a bracket expression's members for a class escape (\d, \w, \s); 0 if c is not one. */
static int class_members(char c, lo_buf_t *out)
{
    switch (c) {
    case 'd': lo_buf_puts(out, "0-9"); return 1;
    case 'w': lo_buf_puts(out, "A-Za-z0-9_"); return 1;
    case 's': lo_buf_puts(out, "[:space:]"); return 1;
    default: return 0;
    }
}

static char control_escape(char c)
{
    switch (c) {
    case 'n': return '\n';
    case 't': return '\t';
    case 'r': return '\r';
    case 'f': return '\f';
    case 'v': return '\v';
    default: return 0;
    }
}

/*
 * Translates one ECMA bracket expression starting at p[*i] == '['. POSIX
 * brackets take backslashes literally, so escaped members are written raw,
 * with ']' moved first and '-' last where POSIX wants them.
 */
static int translate_bracket(const char *p, size_t *i, lo_buf_t *out)
{
    lo_buf_t body = { 0 };
    int negate = 0, rbracket = 0, dash = 0, ok = 0;
    size_t j = *i + 1;
    if (p[j] == '^') {
        negate = 1;
        j++;
    }
    if (p[j] == ']') { /* a leading ']' is a member in both dialects */
        rbracket = 1;
        j++;
    }
    for (; p[j] && p[j] != ']'; j++) {
        if (p[j] == '[' && p[j + 1] == ':') { /* POSIX class written in the pattern: keep */
            const char *end = strstr(p + j + 2, ":]");
            if (end == NULL)
                goto out;
            lo_buf_put(&body, p + j, (size_t)(end + 2 - (p + j)));
            j = (size_t)(end + 1 - p);
            continue;
        }
        if (p[j] != '\\') {
            lo_buf_put(&body, p + j, 1);
            continue;
        }
        char c = p[++j];
        if (c == '\0' || c == 'D' || c == 'W' || c == 'S' || c == 'b' || c == 'B' || c == 'u' || c == 'x')
            goto out; /* negated classes and code escapes inside brackets: not supported */
        if (class_members(c, &body))
            continue;
        if (control_escape(c)) {
            char raw = control_escape(c);
            lo_buf_put(&body, &raw, 1);
        } else if (c == ']') {
            rbracket = 1;
        } else if (c == '-') {
            dash = 1;
        } else {
            lo_buf_put(&body, &c, 1);
        }
    }
    if (p[j] != ']')
        goto out;
    lo_buf_put(out, "[", 1);
    if (negate)
        lo_buf_put(out, "^", 1);
    if (rbracket)
        lo_buf_put(out, "]", 1);
    lo_buf_puts(out, lo_buf_str(&body));
    if (dash)
        lo_buf_put(out, "-", 1);
    lo_buf_put(out, "]", 1);
    *i = j;
    ok = 1;
out:
    free(body.data);
    return ok;
}

/*
 * ECMA (the schema's dialect) to POSIX ERE for what CRD patterns use: anchors,
 * classes, groups, alternation, quantifiers. Lazy quantifier marks are dropped
 * (they never change whether a string matches), (?: groups become plain groups.
 * Returns 0 for constructs ERE cannot express (lookaround, backreferences).
 */
static int translate_pattern(const char *p, lo_buf_t *out)
{
    int after_quantifier = 0;
    for (size_t i = 0; p[i]; i++) {
        char c = p[i];
        int quantifier = 0;
        if (c == '[') {
            if (!translate_bracket(p, &i, out))
                return 0;
        } else if (c == '(' && p[i + 1] == '?') {
            if (p[i + 2] != ':')
                return 0;
            lo_buf_put(out, "(", 1);
            i += 2;
        } else if (c == '?' && after_quantifier) {
            /* lazy mark: drop */
        } else if (c == '\\') {
            char e = p[++i];
            if (e == '\0' || (e >= '1' && e <= '9'))
                return 0;
            if (e == 'd' || e == 'w' || e == 's') {
                lo_buf_put(out, "[", 1);
                class_members(e, out);
                lo_buf_put(out, "]", 1);
            } else if (e == 'D' || e == 'W' || e == 'S') {
                lo_buf_put(out, "[^", 2);
                class_members((char)(e - 'A' + 'a'), out);
                lo_buf_put(out, "]", 1);
            } else if (control_escape(e)) {
                char raw = control_escape(e);
                lo_buf_put(out, &raw, 1);
            } else if (strchr(".[]{}()\\*+?|^$", e)) {
                char esc[2] = { '\\', e };
                lo_buf_put(out, esc, 2);
            } else if ((e >= 'a' && e <= 'z') || (e >= 'A' && e <= 'Z')) {
                return 0; /* \b, \u..., \p{...}: not expressible here */
            } else {
                lo_buf_put(out, &e, 1); /* \/ \- \: ... are the character itself */
            }
        } else {
            quantifier = c == '*' || c == '+' || c == '?' || c == '}';
            lo_buf_put(out, &c, 1);
        }
        after_quantifier = quantifier;
    }
    return 1;
}

static rx_entry_t *rx_compile(const char *pattern)
{
    rx_entry_t *e = lo_calloc(1, sizeof(*e));
    e->pattern = lo_strdup(pattern);
    pthread_mutex_init(&e->lock, NULL);
    lo_buf_t ere = { 0 };
    if (translate_pattern(pattern, &ere) && regcomp(&e->re, lo_buf_str(&ere), REG_EXTENDED | REG_NOSUB) == 0)
        e->compiled = 1;
    else
        lo_log(LO_INFO, "schema pattern %s cannot be compiled; every value it constrains is rejected", pattern);
    free(ere.data);
    return e;
}

static rx_entry_t *rx_get(const char *pattern)
{
    pthread_mutex_lock(&cache_lock);
    rx_entry_t *e = cache_head;
    while (e && strcmp(e->pattern, pattern) != 0)
        e = e->next;
    if (e == NULL) { /* compiled under the lock: once per pattern per process */
        e = rx_compile(pattern);
        e->next = cache_head;
        cache_head = e;
    }
    pthread_mutex_unlock(&cache_lock);
    return e;
}

/* 1 match, 0 no match, -1 the pattern cannot be compiled. */
static int rx_match(const char *pattern, const char *s, size_t len)
{
    rx_entry_t *e = rx_get(pattern);
    if (!e->compiled)
        return -1;
    regmatch_t m[1];
    m[0].rm_so = 0; /* REG_STARTEND: the whole string, even with an embedded NUL */
    m[0].rm_eo = (regoff_t)len;
    pthread_mutex_lock(&e->lock);
    int rc = regexec(&e->re, s, 1, m, REG_STARTEND);
    pthread_mutex_unlock(&e->lock);
    return rc == 0;
}

/* ------------------------------------------------------------------------ */
/* Causes                                                                   */

typedef struct vctx {
    lo_err_t *err;  /* may be NULL: only count */
    size_t causes;
    lo_buf_t path;    /* the field path of the node being checked */
} vctx_t;

static void cause(vctx_t *c, const char *reason, const char *field, const char *message)
{
    c->causes++;
    lo_err_add_cause(c->err, reason, message, field);
}

/* "<Type>: <value>: <detail>" with the value printed as kube prints it. */
static void cause_value(vctx_t *c, const char *reason, const char *type, const json_t *value, const char *detail)
{
    lo_buf_t msg = { 0 };
    lo_buf_puts(&msg, type);
    lo_buf_puts(&msg, ": ");
    sb_value(&msg, value);
    if (detail && *detail) {
        lo_buf_puts(&msg, ": ");
        lo_buf_puts(&msg, detail);
    }
    cause(c, reason, lo_buf_str(&c->path), lo_buf_str(&msg));
    free(msg.data);
}

/* FieldValueInvalid with kube-openapi's "<path> in body ..." detail. */
static void invalid(vctx_t *c, const json_t *value, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void invalid(vctx_t *c, const json_t *value, const char *fmt, ...)
{
    char *detail = NULL;
    va_list ap;
    va_start(ap, fmt);
    if (vasprintf(&detail, fmt, ap) < 0)
        lo_fatal("out of memory");
    va_end(ap);
    cause_value(c, "FieldValueInvalid", "Invalid value", value, detail);
    free(detail);
}

/* kube reports a type mismatch with the JSON type name of the value as the bad value. */
static void type_invalid(vctx_t *c, const char *want, const char *got)
{
    json_t *name = json_string(got);
    lo_buf_t detail = { 0 };
    lo_buf_printf(&detail, "%s in body must be of type %s: ", lo_buf_str(&c->path), want);
    sb_go_quote(&detail, got, strlen(got));
    cause_value(c, "FieldValueTypeInvalid", "Invalid value", name, lo_buf_str(&detail));
    free(detail.data);
    json_decref(name);
}

static void too_many(vctx_t *c, long long actual, long long max)
{
    char msg[128];
    snprintf(msg, sizeof(msg), "Too many: %lld: must have at most %lld %s", actual, max, max == 1 ? "item" : "items");
    cause(c, "FieldValueTooMany", lo_buf_str(&c->path), msg);
}

/* ------------------------------------------------------------------------ */
/* Schema validation (first pass)                                           */

static void validate_node(vctx_t *c, const json_t *s, const json_t *v);

static const char *json_type_name(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT: return "object";
    case JSON_ARRAY: return "array";
    case JSON_STRING: return "string";
    case JSON_INTEGER: return "integer";
    case JSON_REAL: return "number";
    case JSON_TRUE:
    case JSON_FALSE: return "boolean";
    default: return "null";
    }
}

static int type_matches(const char *want, const json_t *v)
{
    if (strcmp(want, "integer") == 0)
        return is_whole(v);
    if (strcmp(want, "number") == 0)
        return json_is_number(v);
    if (strcmp(want, "boolean") == 0)
        return json_is_boolean(v);
    if (strcmp(want, "string") == 0)
        return json_is_string(v);
    if (strcmp(want, "object") == 0)
        return json_is_object(v);
    if (strcmp(want, "array") == 0)
        return json_is_array(v);
    return 1; /* a type name this validator does not know constrains nothing */
}

/* The type check: 0 when the value has the schema's type (or the schema names none). */
static void check_type(vctx_t *c, const json_t *s, const json_t *v)
{
    if (is_int_or_string(s)) {
        if (!(is_whole(v) || json_is_string(v)))
            type_invalid(c, "integer,string", json_type_name(v));
        return;
    }
    const char *want = json_string_value(kw(s, "type"));
    if (want && !type_matches(want, v))
        type_invalid(c, want, json_type_name(v));
}

static size_t utf8_length(const char *s, size_t n)
{
    size_t chars = 0;
    for (size_t i = 0; i < n; i++)
        chars += ((unsigned char)s[i] & 0xC0) != 0x80;
    return chars;
}

/* kube-openapi's string validator: the first failing of maxLength, minLength, pattern. */
static void check_string(vctx_t *c, const json_t *s, const json_t *v)
{
    const char *str = json_string_value(v);
    size_t bytes = json_string_length(v);
    size_t chars = utf8_length(str, bytes);
    const char *path = lo_buf_str(&c->path);
    long long n;
    if (kw_count(s, "maxLength", &n) && (long long)chars > n) {
        char msg[96];
        snprintf(msg, sizeof(msg), "Too long: may not be more than %lld %s", n, n == 1 ? "byte" : "bytes");
        cause(c, "FieldValueTooLong", path, msg);
        return;
    }
    if (kw_count(s, "minLength", &n) && (long long)chars < n) {
        invalid(c, v, "%s in body should be at least %lld chars long", path, n);
        return;
    }
    const char *pattern = json_string_value(kw(s, "pattern"));
    if (pattern) {
        int m = rx_match(pattern, str, bytes);
        if (m == 0)
            invalid(c, v, "%s in body should match '%s'", path, pattern);
        else if (m < 0)
            invalid(c, v, "%s: the schema's pattern '%s' cannot be evaluated", path, pattern);
    }
}

static void check_format(vctx_t *c, const json_t *s, const json_t *v)
{
    const char *format = json_string_value(kw(s, "format"));
    int64_t t;
    /* Of the string formats kube knows, the schemas here use date-time; others pass. */
    if (format && strcmp(format, "date-time") == 0 && lo_time_parse(json_string_value(v), &t) != 0) {
        lo_buf_t detail = { 0 };
        lo_buf_printf(&detail, "%s in body must be of type date-time: ", lo_buf_str(&c->path));
        sb_go_quote(&detail, json_string_value(v), json_string_length(v));
        cause_value(c, "FieldValueTypeInvalid", "Invalid value", v, lo_buf_str(&detail));
        free(detail.data);
    }
}

/* A bound as kube prints it: an integer for an integer value, else a Go float. */
static void sb_bound(lo_buf_t *sb, const json_t *value, double bound)
{
    if (json_is_integer(value) && floor(bound) == bound && fabs(bound) < 9.2e18)
        lo_buf_printf(sb, "%lld", (long long)bound);
    else
        sb_go_float(sb, bound);
}

static void bound_error(vctx_t *c, const json_t *v, const char *relation, double bound)
{
    lo_buf_t b = { 0 };
    sb_bound(&b, v, bound);
    invalid(c, v, "%s in body should be %s %s", lo_buf_str(&c->path), relation, lo_buf_str(&b));
    free(b.data);
}

/* format int32/int64 of an integer field: the value must fit. */
static void check_range(vctx_t *c, const json_t *s, const json_t *v)
{
    const char *format = json_string_value(kw(s, "format"));
    const char *type = json_string_value(kw(s, "type"));
    if (format == NULL || type == NULL || strcmp(type, "integer") != 0 || !is_whole(v))
        return;
    double d = json_number_value(v);
    int out = 0;
    if (strcmp(format, "int32") == 0)
        out = d < -2147483648.0 || d > 2147483647.0;
    else if (strcmp(format, "int64") == 0)
        out = json_is_real(v) && (d < -9223372036854775808.0 || d >= 9223372036854775808.0);
    if (out)
        invalid(c, v, "Checked value must be of type integer with format %s in %s", format, lo_buf_str(&c->path));
}

/* kube-openapi's number validator: range of the format, multipleOf, minimum, maximum. */
static void check_number(vctx_t *c, const json_t *s, const json_t *v)
{
    check_range(c, s, v);
    double d = json_number_value(v);
    const json_t *b;
    if (json_is_number(b = kw(s, "multipleOf")) && json_number_value(b) > 0) {
        double q = d / json_number_value(b);
        if (floor(q) != q) {
            lo_buf_t m = { 0 };
            sb_bound(&m, v, json_number_value(b));
            invalid(c, v, "%s in body should be a multiple of %s", lo_buf_str(&c->path), lo_buf_str(&m));
            free(m.data);
        }
    }
    if (json_is_number(b = kw(s, "minimum"))) {
        double min = json_number_value(b);
        int excl = kw_true(s, "exclusiveMinimum");
        if (excl ? d <= min : d < min)
            bound_error(c, v, excl ? "greater than" : "greater than or equal to", min);
    }
    if (json_is_number(b = kw(s, "maximum"))) {
        double max = json_number_value(b);
        int excl = kw_true(s, "exclusiveMaximum");
        if (excl ? d >= max : d > max)
            bound_error(c, v, excl ? "less than" : "less than or equal to", max);
    }
}

static int json_equal_value(const json_t *a, const json_t *b)
{
    if (json_is_number(a) && json_is_number(b))
        return json_number_value(a) == json_number_value(b);
    return json_equal((json_t *)a, (json_t *)b);
}

static void check_enum(vctx_t *c, const json_t *s, const json_t *v)
{
    const json_t *allowed = kw(s, "enum");
    if (json_array_size(allowed) == 0)
        return;
    for (size_t i = 0; i < json_array_size(allowed); i++)
        if (json_equal_value(json_array_get(allowed, i), v))
            return;
    lo_buf_t msg = { 0 };
    lo_buf_puts(&msg, "Unsupported value: ");
    sb_value(&msg, v);
    lo_buf_puts(&msg, ": supported values: ");
    for (size_t i = 0; i < json_array_size(allowed); i++) {
        const json_t *a = json_array_get(allowed, i);
        if (i)
            lo_buf_puts(&msg, ", ");
        if (json_is_string(a)) {
            sb_go_quote(&msg, json_string_value(a), json_string_length(a));
        } else { /* kube quotes the JSON text of a non-string allowed value */
            lo_buf_t j = { 0 };
            sb_json(&j, a);
            sb_go_quote(&msg, lo_buf_str(&j), j.len);
            free(j.data);
        }
    }
    cause(c, "FieldValueNotSupported", lo_buf_str(&c->path), lo_buf_str(&msg));
    free(msg.data);
}

static void check_array(vctx_t *c, const json_t *s, const json_t *v)
{
    const json_t *items = kw(s, "items");
    size_t n = json_array_size(v);
    if (json_is_object(items)) {
        for (size_t i = 0; i < n; i++) {
            size_t old = path_index(&c->path, i);
            validate_node(c, items, json_array_get(v, i));
            lo_buf_truncate(&c->path, old);
        }
    }
    long long limit;
    if (kw_count(s, "minItems", &limit) && (long long)n < limit) {
        json_t *size = json_integer((json_int_t)n);
        invalid(c, size, "%s in body should have at least %lld items", lo_buf_str(&c->path), limit);
        json_decref(size);
    }
    if (kw_count(s, "maxItems", &limit) && (long long)n > limit)
        too_many(c, (long long)n, limit);
    if (kw_true(s, "uniqueItems")) {
        for (size_t i = 1; i < n; i++)
            for (size_t j = 0; j < i; j++)
                if (json_equal_value(json_array_get(v, i), json_array_get(v, j))) {
                    json_t *empty = json_string("");
                    invalid(c, empty, "%s in body shouldn't contain duplicates", lo_buf_str(&c->path));
                    json_decref(empty);
                    return;
                }
    }
}

static void check_object(vctx_t *c, const json_t *s, const json_t *v)
{
    long long limit;
    long long n = (long long)json_object_size(v);
    /* kube-openapi stops checking an object whose property count is out of bounds */
    if (kw_count(s, "minProperties", &limit) && n < limit) {
        json_t *count = json_integer(n);
        invalid(c, count, "%s in body should have at least %lld properties", lo_buf_str(&c->path), limit);
        json_decref(count);
        return;
    }
    if (kw_count(s, "maxProperties", &limit) && n > limit) {
        too_many(c, n, limit);
        return;
    }
    const json_t *props = kw(s, "properties");
    const json_t *ap = additional_schema(s);
    const char *key;
    json_t *child;
    if (ap) {
        json_object_foreach((json_t *)v, key, child) {
            if (json_object_get(props, key))
                continue;
            size_t old = path_field(&c->path, key);
            validate_node(c, ap, child);
            lo_buf_truncate(&c->path, old);
        }
    }
    const json_t *ps;
    json_object_foreach((json_t *)props, key, ps) {
        if ((child = json_object_get(v, key)) == NULL)
            continue;
        size_t old = path_field(&c->path, key);
        validate_node(c, ps, child);
        lo_buf_truncate(&c->path, old);
    }
    const json_t *required = kw(s, "required");
    for (size_t i = 0; i < json_array_size(required); i++) {
        const char *name = json_string_value(json_array_get(required, i));
        if (name && json_object_get(v, name) == NULL) {
            size_t old = path_field(&c->path, name);
            cause(c, "FieldValueRequired", lo_buf_str(&c->path), "Required value");
            lo_buf_truncate(&c->path, old);
        }
    }
}

/* One node, in kube-openapi's validator order: type, string, format, number, array, enum, object. */
static void validate_node(vctx_t *c, const json_t *s, const json_t *v)
{
    if (!json_is_object(s) || v == NULL)
        return;
    if (json_is_null(v)) {
        int typed = is_int_or_string(s) || json_is_string(kw(s, "type"));
        if (typed && !kw_true(s, "nullable"))
            type_invalid(c, is_int_or_string(s) ? "integer,string" : json_string_value(kw(s, "type")), "null");
        check_enum(c, s, v);
        return;
    }
    check_type(c, s, v);
    if (json_is_string(v)) {
        check_string(c, s, v);
        check_format(c, s, v);
    } else if (json_is_number(v)) {
        check_number(c, s, v);
    } else if (json_is_array(v)) {
        check_array(c, s, v);
    }
    check_enum(c, s, v);
    if (json_is_object(v))
        check_object(c, s, v);
}

/* ------------------------------------------------------------------------ */
/* List types (second pass): set and map uniqueness                         */

typedef struct list_key {
    char *text;     /* canonical JSON of the item (set) or of its key fields (map) */
    size_t index;
} list_key_t;

static int list_key_cmp(const void *a, const void *b)
{
    const list_key_t *x = a, *y = b;
    int r = strcmp(x->text, y->text);
    if (r)
        return r;
    return x->index < y->index ? -1 : x->index > y->index;
}

static int size_cmp(const void *a, const void *b)
{
    size_t x = *(const size_t *)a, y = *(const size_t *)b;
    return x < y ? -1 : x > y;
}

/*
 * The indices kube reports as duplicates: the second appearance of each
 * repeated key, in list order. Sorting keeps this O(n log n) on big lists.
 * Returns the count; *out (caller frees) holds the indices.
 */
static size_t second_appearances(list_key_t *keys, size_t n, size_t **out)
{
    qsort(keys, n, sizeof(*keys), list_key_cmp);
    size_t *dup = lo_calloc(n ? n : 1, sizeof(*dup));
    size_t count = 0;
    for (size_t i = 1; i < n; i++)
        if (strcmp(keys[i].text, keys[i - 1].text) == 0 && (i < 2 || strcmp(keys[i - 1].text, keys[i - 2].text) != 0))
            dup[count++] = keys[i].index;
    qsort(dup, count, sizeof(*dup), size_cmp);
    *out = dup;
    return count;
}

static char *canonical(const json_t *v)
{
    char *text = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY | JSON_SORT_KEYS);
    if (text == NULL)
        lo_fatal("out of memory");
    return text;
}

/* The key fields an item of a list-type map has (an empty object when it has none). */
static json_t *map_key_of(const json_t *item, const json_t *key_names)
{
    json_t *key = json_object();
    for (size_t i = 0; i < json_array_size(key_names); i++) {
        const char *name = json_string_value(json_array_get(key_names, i));
        const json_t *v = name ? json_object_get(item, name) : NULL;
        if (v)
            json_object_set_new(key, name, json_deep_copy(v));
    }
    return key;
}

static void report_duplicates(vctx_t *c, const json_t *list, const json_t *key_names, list_key_t *keys, size_t n)
{
    size_t *dup;
    size_t count = second_appearances(keys, n, &dup);
    for (size_t d = 0; d < count; d++) {
        const json_t *item = json_array_get(list, dup[d]);
        size_t old = path_index(&c->path, dup[d]);
        lo_buf_t msg = { 0 };
        lo_buf_puts(&msg, "Duplicate value: ");
        if (key_names) {
            json_t *key = map_key_of(item, key_names);
            sb_go_map(&msg, key);
            json_decref(key);
        } else {
            sb_value(&msg, item);
        }
        cause(c, "FieldValueDuplicate", lo_buf_str(&c->path), lo_buf_str(&msg));
        free(msg.data);
        lo_buf_truncate(&c->path, old);
    }
    free(dup);
}

static void check_list_type(vctx_t *c, const json_t *s, const json_t *list)
{
    const char *type = json_string_value(kw(s, "x-kubernetes-list-type"));
    size_t n = json_array_size(list);
    if (type == NULL || n == 0)
        return;
    int is_map = strcmp(type, "map") == 0;
    if (!is_map && strcmp(type, "set") != 0)
        return;
    const json_t *key_names = is_map ? kw(s, "x-kubernetes-list-map-keys") : NULL;
    if (is_map) {
        for (size_t i = 0; i < n; i++) {
            const json_t *item = json_array_get(list, i);
            if (!json_is_object(item) && !json_is_null(item)) {
                size_t old = path_index(&c->path, i);
                cause_value(c, "FieldValueInvalid", "Invalid value", item,
                            "must be an object for an array of list-type map");
                lo_buf_truncate(&c->path, old);
                return;
            }
        }
    }
    list_key_t *keys = lo_calloc(n, sizeof(*keys));
    for (size_t i = 0; i < n; i++) {
        const json_t *item = json_array_get(list, i);
        if (is_map) {
            json_t *key = map_key_of(item, key_names);
            keys[i].text = canonical(key);
            json_decref(key);
        } else {
            keys[i].text = canonical(item);
        }
        keys[i].index = i;
    }
    report_duplicates(c, list, key_names, keys, n);
    for (size_t i = 0; i < n; i++)
        free(keys[i].text);
    free(keys);
}

static void validate_lists(vctx_t *c, const json_t *s, const json_t *v)
{
    if (!json_is_object(s))
        return;
    const char *key;
    json_t *child;
    if (json_is_object(v)) {
        const json_t *ap = additional_schema(s);
        const json_t *props = kw(s, "properties");
        if (ap) {
            json_object_foreach((json_t *)v, key, child) {
                size_t old = path_key(&c->path, key); /* kube writes map keys as [key] here */
                validate_lists(c, ap, child);
                lo_buf_truncate(&c->path, old);
            }
        }
        json_object_foreach((json_t *)v, key, child) {
            const json_t *ps = json_object_get(props, key);
            if (ps == NULL)
                continue;
            size_t old = path_field(&c->path, key);
            validate_lists(c, ps, child);
            lo_buf_truncate(&c->path, old);
        }
    } else if (json_is_array(v)) {
        check_list_type(c, s, v);
        const json_t *items = kw(s, "items");
        for (size_t i = 0; i < json_array_size(v); i++) {
            size_t old = path_index(&c->path, i);
            validate_lists(c, items, json_array_get(v, i));
            lo_buf_truncate(&c->path, old);
        }
    }
}

int validate_object(const schema_kind_t *k, const json_t *obj, lo_err_t *err)
{
    if (k == NULL || k->openapi_schema == NULL || obj == NULL)
        return 0;
    vctx_t c = { .err = err };
    validate_node(&c, k->openapi_schema, obj);
    validate_lists(&c, k->openapi_schema, obj);
    free(c.path.data);
    if (c.causes == 0)
        return 0;
    const char *name = json_string_value(json_object_get(json_object_get(obj, "metadata"), "name"));
    status_invalid(err, k->kind, SCHEMA_GROUP, name ? name : "");
    return -1;
}

/* ------------------------------------------------------------------------ */
/* Pruning                                                                  */

static const char *const object_meta_fields[] = {
    "name", "generateName", "namespace", "selfLink", "uid", "resourceVersion", "generation",
    "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds", "labels", "annotations",
    "ownerReferences", "finalizers", "managedFields", NULL,
};
static const char *const owner_reference_fields[] = {
    "apiVersion", "kind", "name", "uid", "controller", "blockOwnerDeletion", NULL,
};
static const char *const managed_fields_entry_fields[] = {
    "manager", "operation", "apiVersion", "time", "fieldsType", "fieldsV1", "subresource", NULL,
};

static int in_list(const char *const *list, const char *s)
{
    for (; *list; list++)
        if (strcmp(*list, s) == 0)
            return 1;
    return 0;
}

typedef struct pctx {
    json_t *unknown;  /* borrowed, may be NULL */
    lo_buf_t path;
} pctx_t;

static void record_unknown(pctx_t *p, const char *key)
{
    if (p->unknown == NULL)
        return;
    size_t old = path_field(&p->path, key);
    json_array_append_new(p->unknown, json_string(lo_buf_str(&p->path)));
    lo_buf_truncate(&p->path, old);
}

/* Drops the fields of obj that are not in known, recording each. */
static void prune_fixed(pctx_t *p, json_t *obj, const char *const *known)
{
    const char *key;
    json_t *child;
    void *tmp;
    json_object_foreach_safe(obj, tmp, key, child) {
        if (in_list(known, key))
            continue;
        record_unknown(p, key);
        json_object_del(obj, key);
    }
}

static void prune_fixed_items(pctx_t *p, json_t *list, const char *const *known)
{
    for (size_t i = 0; i < json_array_size(list); i++) {
        json_t *item = json_array_get(list, i);
        if (!json_is_object(item))
            continue;
        size_t old = path_index(&p->path, i);
        prune_fixed(p, item, known);
        lo_buf_truncate(&p->path, old);
    }
}

/* ObjectMeta's own fields; the schema's metadata node only constrains name and generateName. */
static void prune_object_meta(pctx_t *p, json_t *meta)
{
    if (!json_is_object(meta))
        return;
    prune_fixed(p, meta, object_meta_fields);
    size_t old = path_field(&p->path, "ownerReferences");
    prune_fixed_items(p, json_object_get(meta, "ownerReferences"), owner_reference_fields);
    lo_buf_truncate(&p->path, old);
    old = path_field(&p->path, "managedFields");
    prune_fixed_items(p, json_object_get(meta, "managedFields"), managed_fields_entry_fields);
    lo_buf_truncate(&p->path, old);
}

static int is_meta_field(const char *key)
{
    return strcmp(key, "apiVersion") == 0 || strcmp(key, "kind") == 0 || strcmp(key, "metadata") == 0;
}

static void prune_node(pctx_t *p, const json_t *s, json_t *v, int resource_root);

/* One field of an object: known, a map value, or unknown (removed unless the node keeps unknowns). */
static void prune_field(pctx_t *p, const json_t *s, json_t *obj, const char *key, json_t *child, int resource_root,
                        int keep_unknown)
{
    size_t old;
    if (resource_root && is_meta_field(key)) {
        if (strcmp(key, "metadata") == 0) {
            old = path_field(&p->path, key);
            prune_object_meta(p, child);
            lo_buf_truncate(&p->path, old);
        }
        return;
    }
    const json_t *ps = json_object_get(kw(s, "properties"), key);
    const json_t *ap = additional_schema(s);
    if (ps == NULL && ap == NULL) {
        if (!keep_unknown && !json_is_true(kw(s, "additionalProperties"))) {
            record_unknown(p, key);
            json_object_del(obj, key);
        }
        return;
    }
    old = path_field(&p->path, key);
    prune_node(p, ps ? ps : ap, child, 0);
    lo_buf_truncate(&p->path, old);
}

static void prune_node(pctx_t *p, const json_t *s, json_t *v, int resource_root)
{
    if (!json_is_object(s))
        return;
    int keep_unknown = preserves_unknown(s);
    int embedded = resource_root || kw_true(s, "x-kubernetes-embedded-resource");
    if (json_is_object(v)) {
        const char *key;
        json_t *child;
        void *tmp;
        json_object_foreach_safe(v, tmp, key, child)
            prune_field(p, s, v, key, child, embedded, keep_unknown);
    } else if (json_is_array(v)) {
        const json_t *items = kw(s, "items");
        for (size_t i = 0; i < json_array_size(v); i++) {
            size_t old = path_index(&p->path, i);
            prune_node(p, items, json_array_get(v, i), 0);
            lo_buf_truncate(&p->path, old);
        }
    }
}

void validate_prune(const schema_kind_t *k, json_t *obj, json_t *unknown)
{
    if (k == NULL || k->openapi_schema == NULL || !json_is_object(obj))
        return;
    pctx_t p = { .unknown = json_is_array(unknown) ? unknown : NULL };
    prune_node(&p, k->openapi_schema, obj, 1);
    free(p.path.data);
}

/* ------------------------------------------------------------------------ */
/* Defaulting                                                               */

/* A missing value, or a null the field may not hold, takes the default (a null default is none). */
static int takes_default(const json_t *s, const json_t *v)
{
    const json_t *d = kw(s, "default");
    return d != NULL && !json_is_null(d) && (v == NULL || (json_is_null(v) && !kw_true(s, "nullable")));
}

static void default_node(const json_t *s, json_t *v);

static void default_object(const json_t *s, json_t *obj)
{
    const json_t *props = kw(s, "properties");
    const json_t *ap = additional_schema(s);
    const char *key;
    json_t *child;
    const json_t *ps;
    void *tmp;
    /* missing properties first, so defaults inside a defaulted object apply below */
    json_object_foreach((json_t *)props, key, ps)
        if (takes_default(ps, json_object_get(obj, key)))
            json_object_set_new(obj, key, json_deep_copy(kw(ps, "default")));
    json_object_foreach_safe(obj, tmp, key, child) {
        const json_t *cs = json_object_get(props, key);
        if (cs == NULL)
            cs = ap;
        if (cs == NULL)
            continue;
        if (json_is_null(child) && takes_default(cs, child)) {
            child = json_deep_copy(kw(cs, "default"));
            json_object_set_new(obj, key, child);
        } else if (json_is_null(child) && !kw_true(cs, "nullable")) {
            /* kube drops a null it may neither keep nor default */
            json_object_del(obj, key);
            continue;
        }
        default_node(cs, child);
    }
}

static void default_node(const json_t *s, json_t *v)
{
    if (!json_is_object(s))
        return;
    if (json_is_object(v)) {
        default_object(s, v);
    } else if (json_is_array(v)) {
        const json_t *items = kw(s, "items");
        for (size_t i = 0; i < json_array_size(v); i++) {
            json_t *item = json_array_get(v, i);
            if (takes_default(items, item)) {
                item = json_deep_copy(kw(items, "default"));
                json_array_set_new(v, i, item);
            }
            default_node(items, item);
        }
    }
}

void validate_default(const schema_kind_t *k, json_t *obj)
{
    if (k == NULL || k->openapi_schema == NULL || !json_is_object(obj))
        return;
    default_node(k->openapi_schema, obj);
}
