/*
 * codec.c - bytes <-> jansson trees (see langop/codec.h).
 *
 * YAML is read with libyaml's event parser and built into a jansson tree on
 * an explicit stack bounded by CODEC_MAX_DEPTH, so hostile nesting costs
 * neither recursion nor unbounded memory. Plain scalars are resolved with
 * the YAML 1.1 rules that sigs.k8s.io/yaml (go-yaml v2) applies; the
 * emitter uses the same rules to decide when a string must be quoted, which
 * is what makes encode -> decode an identity.
 */
#include "langop/core/codec.h"
#include "langop/core/text.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#define YAML_ERR_PREFIX "error converting YAML to JSON: yaml: "
#define JSON_ERR_PREFIX "couldn't get version/kind; json parse error: "

/* ------------------------------------------------------------------ */
/* Plain scalar resolution (shared by the decoder and the emitter)     */
/* ------------------------------------------------------------------ */

typedef enum scalar_kind {
    KIND_STRING,
    KIND_NULL,
    KIND_TRUE,
    KIND_FALSE,
    KIND_INT,      /* fits in json_int_t */
    KIND_FLOAT,    /* finite, also integers too large for json_int_t */
    KIND_NONFINITE /* .inf / .nan: YAML has them, JSON does not */
} scalar_kind_t;

static int word_in(const char *s, size_t len, const char *const *words)
{
    for (size_t i = 0; words[i] != NULL; i++)
        if (strlen(words[i]) == len && memcmp(words[i], s, len) == 0)
            return 1;
    return 0;
}

/* Digits of `text` in `base`, with an optional sign already consumed by the caller. */
static int parse_int_digits(const char *text, int base, int negative, json_int_t *out)
{
    if (*text == '\0')
        return -1;
    errno = 0;
    char *end = NULL;
    unsigned long long mag = strtoull(text, &end, base);
    if (errno != 0 || *end != '\0' || *text == '-' || *text == '+' || *text == ' ')
        return -1;
    if (!negative && mag > (unsigned long long)INT64_MAX)
        return -1;
    if (negative && mag > (unsigned long long)INT64_MAX + 1ULL)
        return -1;
    *out = negative ? (json_int_t)(0 - mag) : (json_int_t)mag;
    return 0;
}

/* Go's strconv.ParseInt(s, 0, 64): sign, then 0x / 0o / 0b / leading-0 octal / decimal. */
static int parse_yaml_int(const char *s, json_int_t *out)
{
    int negative = 0;
    if (*s == '+' || *s == '-')
        negative = (*s++ == '-');
    if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X'))
        return parse_int_digits(s + 2, 16, negative, out);
    if (s[0] == '0' && (s[1] == 'o' || s[1] == 'O'))
        return parse_int_digits(s + 2, 8, negative, out);
    if (s[0] == '0' && (s[1] == 'b' || s[1] == 'B'))
        return parse_int_digits(s + 2, 2, negative, out);
    if (s[0] == '0' && s[1] != '\0')
        return parse_int_digits(s + 1, 8, negative, out);
    for (const char *p = s; *p; p++)
        if (*p < '0' || *p > '9')
            return -1;
    return parse_int_digits(s, 10, negative, out);
}

/* go-yaml's float pattern: [-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)? */
static int is_yaml_float(const char *s)
{
    if (*s == '+' || *s == '-')
        s++;
    size_t int_digits = 0, frac_digits = 0;
    while (*s >= '0' && *s <= '9') {
        s++;
        int_digits++;
    }
    if (*s == '.') {
        s++;
        while (*s >= '0' && *s <= '9') {
            s++;
            frac_digits++;
        }
    }
    if (int_digits == 0 && frac_digits == 0)
        return 0;
    if (*s == 'e' || *s == 'E') {
        s++;
        if (*s == '+' || *s == '-')
            s++;
        if (!(*s >= '0' && *s <= '9'))
            return 0;
        while (*s >= '0' && *s <= '9')
            s++;
    }
    return *s == '\0';
}

/*
 * Classifies a plain scalar. *ival / *dval receive the number for KIND_INT /
 * KIND_FLOAT (either may be NULL).
 */
static scalar_kind_t resolve_plain(const char *s, size_t len, json_int_t *ival, double *dval)
{
    static const char *const nulls[] = {"~", "null", "Null", "NULL", NULL};
    static const char *const trues[] = {"true", "True", "TRUE", "yes", "Yes", "YES", "on", "On", "ON", NULL};
    static const char *const falses[] = {"false", "False", "FALSE", "no", "No", "NO", "off", "Off", "OFF", NULL};
    static const char *const nonfinite[] = {".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF", "-.inf", "-.Inf",
                                            "-.INF", ".nan", ".NaN", ".NAN", NULL};
    if (len == 0)
        return KIND_NULL;
    if (word_in(s, len, nulls))
        return KIND_NULL;
    if (word_in(s, len, trues))
        return KIND_TRUE;
    if (word_in(s, len, falses))
        return KIND_FALSE;
    if (word_in(s, len, nonfinite))
        return KIND_NONFINITE;
    /* numbers start with a digit, a sign or a dot; anything longer than this is not one */
    if (!((s[0] >= '0' && s[0] <= '9') || s[0] == '+' || s[0] == '-' || s[0] == '.') || len > 400 ||
        memchr(s, '\0', len) != NULL)
        return KIND_STRING;

    /* go-yaml drops '_' digit separators before trying numbers */
    char plain[401];
    size_t n = 0;
    for (size_t i = 0; i < len; i++)
        if (s[i] != '_')
            plain[n++] = s[i];
    plain[n] = '\0';

    json_int_t iv;
    if (parse_yaml_int(plain, &iv) == 0) {
        if (ival)
            *ival = iv;
        return KIND_INT;
    }
    if (is_yaml_float(plain)) {
        double dv = strtod(plain, NULL);
        if (!isfinite(dv))
            return KIND_NONFINITE;
        if (dval)
            *dval = dv;
        return KIND_FLOAT;
    }
    return KIND_STRING;
}

/* ------------------------------------------------------------------ */
/* YAML decoding                                                       */
/* ------------------------------------------------------------------ */

typedef struct yframe {
    json_t *node; /* borrowed: owned by the parent or by the builder's root */
    char *key;    /* pending mapping key (owned), NULL when a key is expected */
    char *at;     /* owned, only when duplicates are asked for: this node's path ("spec.models[0]") */
} yframe_t;

typedef struct ybuilder {
    yframe_t stack[CODEC_MAX_DEPTH];
    int depth;
    json_t *root; /* owned; NULL until the document has a node */
    json_t *dups; /* borrowed; NULL: duplicate keys are not asked for */
} ybuilder_t;

static void ybuilder_reset(ybuilder_t *b)
{
    for (int i = 0; i < b->depth; i++) {
        free(b->stack[i].key);
        free(b->stack[i].at);
    }
    b->depth = 0;
    json_decref(b->root);
    b->root = NULL;
}

static void yaml_fail(lo_err_t *err, const yaml_mark_t *mark, const char *fmt, const char *arg)
{
    char what[512];
    snprintf(what, sizeof(what), fmt, arg);
    lo_err_set(err, 400, "BadRequest", YAML_ERR_PREFIX "line %zu, column %zu: %s", mark->line + 1,
               mark->column + 1, what);
}

static void yaml_fail_parser(lo_err_t *err, const yaml_parser_t *p)
{
    const char *problem = p->problem ? p->problem : "malformed document";
    if (p->context != NULL)
        lo_err_set(err, 400, "BadRequest", YAML_ERR_PREFIX "line %zu, column %zu: %s (%s at line %zu)",
                   p->problem_mark.line + 1, p->problem_mark.column + 1, problem, p->context,
                   p->context_mark.line + 1);
    else
        lo_err_set(err, 400, "BadRequest", YAML_ERR_PREFIX "line %zu, column %zu: %s", p->problem_mark.line + 1,
                   p->problem_mark.column + 1, problem);
}

/* Is the innermost open container a mapping waiting for a key? */
static int ybuilder_wants_key(const ybuilder_t *b)
{
    return b->depth > 0 && json_is_object(b->stack[b->depth - 1].node) && b->stack[b->depth - 1].key == NULL;
}

/* The path of what is attached next where the document is (new string), as json_scan_duplicates writes it. */
static char *ybuilder_next_path(const ybuilder_t *b)
{
    if (b->depth == 0)
        return lo_strdup("");
    const yframe_t *top = &b->stack[b->depth - 1];
    if (json_is_array(top->node))
        return lo_sprintf("%s[%zu]", top->at, json_array_size(top->node));
    return lo_sprintf("%s%s%s", top->at, top->at[0] ? "." : "", top->key);
}

/* Notes a key set twice in its mapping (once per path), as sigs.k8s.io/yaml's strict mode finds it. */
static void ybuilder_note_duplicate(ybuilder_t *b)
{
    const yframe_t *top = &b->stack[b->depth - 1];
    if (b->dups == NULL || json_object_get(top->node, top->key) == NULL)
        return;
    char *path = ybuilder_next_path(b);
    size_t i;
    json_t *seen;
    json_array_foreach(b->dups, i, seen) {
        if (strcmp(json_string_value(seen), path) == 0)
            break;
    }
    if (i == json_array_size(b->dups))
        json_array_append_new(b->dups, lo_json_text(path));
    free(path);
}

/* Attaches value (stolen) where the document currently is. */
static void ybuilder_attach(ybuilder_t *b, json_t *value)
{
    if (b->depth == 0) {
        json_decref(b->root);
        b->root = value;
        return;
    }
    yframe_t *top = &b->stack[b->depth - 1];
    if (json_is_array(top->node)) {
        json_array_append_new(top->node, value);
    } else {
        ybuilder_note_duplicate(b);
        json_object_set_new(top->node, top->key, value);
        free(top->key);
        top->key = NULL;
    }
}

#define TAG_PREFIX "tag:yaml.org,2002:"

/* The short name of a standard tag ("str"), "" for no tag or "!", NULL for others. */
static const char *std_tag(const yaml_char_t *tag)
{
    if (tag == NULL || strcmp((const char *)tag, "!") == 0)
        return "";
    if (strncmp((const char *)tag, TAG_PREFIX, strlen(TAG_PREFIX)) != 0)
        return NULL;
    return (const char *)tag + strlen(TAG_PREFIX);
}

/* A scalar event -> new jansson value, or NULL with err set. */
static json_t *scalar_value(const yaml_event_t *ev, lo_err_t *err)
{
    const char *s = (const char *)ev->data.scalar.value;
    size_t len = ev->data.scalar.length;
    const char *tag = std_tag(ev->data.scalar.tag);
    int plain = ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;

    if (tag == NULL) {
        yaml_fail(err, &ev->start_mark, "unsupported tag %s", (const char *)ev->data.scalar.tag);
        return NULL;
    }
    /* "\0" in a quoted scalar: JSON bodies may not carry one either (jansson refuses \u0000), and a stored
     * object holding one could not be read back */
    if (memchr(s, '\0', len) != NULL) {
        yaml_fail(err, &ev->start_mark, "%s", "strings may not contain NUL characters");
        return NULL;
    }
    if (strcmp(tag, "str") == 0 || strcmp(tag, "binary") == 0 || strcmp(tag, "timestamp") == 0 ||
        (*tag == '\0' && (!plain || ev->data.scalar.tag != NULL)))
        return json_stringn(s, len);
    if (*tag != '\0' && strcmp(tag, "int") != 0 && strcmp(tag, "float") != 0 && strcmp(tag, "bool") != 0 &&
        strcmp(tag, "null") != 0) {
        yaml_fail(err, &ev->start_mark, "unsupported tag !!%s", tag);
        return NULL;
    }

    json_int_t iv = 0;
    double dv = 0;
    scalar_kind_t kind = resolve_plain(s, len, &iv, &dv);
    /* an explicit tag must agree with what the text says */
    int ok = *tag == '\0' || (strcmp(tag, "int") == 0 && kind == KIND_INT) ||
             (strcmp(tag, "float") == 0 && (kind == KIND_INT || kind == KIND_FLOAT)) ||
             (strcmp(tag, "bool") == 0 && (kind == KIND_TRUE || kind == KIND_FALSE)) ||
             (strcmp(tag, "null") == 0 && kind == KIND_NULL);
    if (!ok) {
        yaml_fail(err, &ev->start_mark, "cannot decode this value as !!%s", tag);
        return NULL;
    }
    if (strcmp(tag, "float") == 0 && kind == KIND_INT)
        return json_real((double)iv);
    switch (kind) {
    case KIND_NULL:
        return json_null();
    case KIND_TRUE:
        return json_true();
    case KIND_FALSE:
        return json_false();
    case KIND_INT:
        return json_integer(iv);
    case KIND_FLOAT:
        return json_real(dv);
    case KIND_NONFINITE:
        yaml_fail(err, &ev->start_mark, "%s", "infinity and NaN cannot be represented in JSON");
        return NULL;
    case KIND_STRING:
        break;
    }
    return json_stringn(s, len);
}

/* A scalar used as a mapping key -> new string (sigs.k8s.io/yaml prints resolved keys), or NULL. */
static char *scalar_key(const yaml_event_t *ev, lo_err_t *err)
{
    const char *s = (const char *)ev->data.scalar.value;
    size_t len = ev->data.scalar.length;
    if (memchr(s, '\0', len) != NULL) {
        yaml_fail(err, &ev->start_mark, "%s", "mapping keys may not contain NUL characters");
        return NULL;
    }
    json_t *v = scalar_value(ev, err);
    if (v == NULL)
        return NULL;
    char *key = NULL;
    switch (json_typeof(v)) {
    case JSON_STRING:
        key = lo_strndup(json_string_value(v), json_string_length(v));
        break;
    case JSON_INTEGER:
        key = lo_sprintf("%" JSON_INTEGER_FORMAT, json_integer_value(v));
        break;
    case JSON_TRUE:
        key = lo_strdup("true");
        break;
    case JSON_FALSE:
        key = lo_strdup("false");
        break;
    case JSON_NULL:
        key = lo_strdup("null");
        break;
    default: /* floats: keep the text as written */
        key = lo_strndup(s, len);
        break;
    }
    json_decref(v);
    return key;
}

/* Handles one node event inside a document. Returns 0, or -1 with err set. */
static int ybuilder_event(ybuilder_t *b, const yaml_event_t *ev, lo_err_t *err)
{
    const yaml_char_t *anchor = NULL;
    switch (ev->type) {
    case YAML_ALIAS_EVENT:
        yaml_fail(err, &ev->start_mark, "%s", "anchors and aliases are not supported");
        return -1;
    case YAML_SCALAR_EVENT:
        anchor = ev->data.scalar.anchor;
        break;
    case YAML_SEQUENCE_START_EVENT:
        anchor = ev->data.sequence_start.anchor;
        break;
    case YAML_MAPPING_START_EVENT:
        anchor = ev->data.mapping_start.anchor;
        break;
    default:
        break;
    }
    if (anchor != NULL) {
        yaml_fail(err, &ev->start_mark, "%s", "anchors and aliases are not supported");
        return -1;
    }

    if (ev->type == YAML_SCALAR_EVENT) {
        if (ybuilder_wants_key(b)) {
            char *key = scalar_key(ev, err);
            if (key == NULL)
                return -1;
            b->stack[b->depth - 1].key = key;
            return 0;
        }
        json_t *v = scalar_value(ev, err);
        if (v == NULL)
            return -1;
        ybuilder_attach(b, v);
        return 0;
    }

    if (ev->type == YAML_SEQUENCE_START_EVENT || ev->type == YAML_MAPPING_START_EVENT) {
        int is_map = ev->type == YAML_MAPPING_START_EVENT;
        const char *tag = std_tag(is_map ? ev->data.mapping_start.tag : ev->data.sequence_start.tag);
        if (tag == NULL || (*tag != '\0' && strcmp(tag, is_map ? "map" : "seq") != 0)) {
            yaml_fail(err, &ev->start_mark, "%s", "unsupported tag on a collection");
            return -1;
        }
        if (ybuilder_wants_key(b)) {
            yaml_fail(err, &ev->start_mark, "%s", "mapping keys must be scalars");
            return -1;
        }
        if (b->depth >= CODEC_MAX_DEPTH) {
            lo_err_set(err, 400, "BadRequest", YAML_ERR_PREFIX "line %zu, column %zu: nesting deeper than %d levels",
                       ev->start_mark.line + 1, ev->start_mark.column + 1, CODEC_MAX_DEPTH);
            return -1;
        }
        json_t *node = is_map ? json_object() : json_array();
        char *at = b->dups ? ybuilder_next_path(b) : NULL;
        ybuilder_attach(b, node); /* the parent (or root) owns it; we keep a borrowed pointer */
        b->stack[b->depth].node = node;
        b->stack[b->depth].key = NULL;
        b->stack[b->depth].at = at;
        b->depth++;
        return 0;
    }

    if (ev->type == YAML_SEQUENCE_END_EVENT || ev->type == YAML_MAPPING_END_EVENT) {
        if (b->depth > 0) {
            b->depth--;
            free(b->stack[b->depth].key);
            free(b->stack[b->depth].at);
            b->stack[b->depth].key = NULL;
            b->stack[b->depth].at = NULL;
        }
        return 0;
    }
    return 0;
}

/*
 * Parses documents; each finished document (new ref, null when empty) is
 * appended to docs. Stops after max_docs documents (0 = all).
 */
static int yaml_parse_docs(const char *buf, size_t len, json_t *docs, size_t max_docs, json_t *dups,
                           lo_err_t *err)
{
    yaml_parser_t parser;
    ybuilder_t b;
    int ret = -1;
    int done = 0;

    memset(&b, 0, sizeof(b));
    b.dups = dups;
    if (!yaml_parser_initialize(&parser))
        lo_fatal("out of memory (yaml parser)");
    yaml_parser_set_input_string(&parser, (const unsigned char *)buf, len);

    while (!done) {
        yaml_event_t ev;
        if (!yaml_parser_parse(&parser, &ev)) {
            yaml_fail_parser(err, &parser);
            goto out;
        }
        int rc = 0;
        switch (ev.type) {
        case YAML_STREAM_END_EVENT:
            done = 1;
            break;
        case YAML_DOCUMENT_START_EVENT:
            ybuilder_reset(&b);
            break;
        case YAML_DOCUMENT_END_EVENT:
            json_array_append_new(docs, b.root ? b.root : json_null());
            b.root = NULL;
            if (max_docs != 0 && json_array_size(docs) >= max_docs)
                done = 1;
            break;
        case YAML_STREAM_START_EVENT:
        case YAML_NO_EVENT:
            break;
        default:
            rc = ybuilder_event(&b, &ev, err);
            break;
        }
        yaml_event_delete(&ev);
        if (rc < 0)
            goto out;
    }
    ret = 0;
out:
    ybuilder_reset(&b);
    yaml_parser_delete(&parser);
    return ret;
}

json_t *codec_decode_yaml_checked(const char *buf, size_t len, json_t **duplicates, lo_err_t *err)
{
    json_t *docs = json_array();
    json_t *dups = duplicates ? json_array() : NULL;
    json_t *out = NULL;
    if (yaml_parse_docs(buf, len, docs, 1, dups, err) == 0)
        out = json_array_size(docs) ? json_incref(json_array_get(docs, 0)) : json_null();
    json_decref(docs);
    if (duplicates && out)
        *duplicates = dups;
    else
        json_decref(dups);
    return out;
}

json_t *codec_decode_yaml(const char *buf, size_t len, lo_err_t *err)
{
    return codec_decode_yaml_checked(buf, len, NULL, err);
}

json_t *codec_decode_yaml_stream(const char *buf, size_t len, lo_err_t *err)
{
    json_t *docs = json_array();
    if (yaml_parse_docs(buf, len, docs, 0, NULL, err) < 0) {
        json_decref(docs);
        return NULL;
    }
    return docs;
}

/* ------------------------------------------------------------------ */
/* JSON decoding                                                       */
/* ------------------------------------------------------------------ */

#define JSON_FLAGS (JSON_DECODE_ANY)

/*
 * Refuses nesting deeper than CODEC_MAX_DEPTH by counting brackets outside
 * strings; works on malformed text too, and reports where the limit was hit.
 */
static int json_check_depth(const char *buf, size_t len, lo_err_t *err)
{
    int depth = 0, in_string = 0;
    size_t line = 1, col = 0;
    for (size_t i = 0; i < len; i++) {
        char c = buf[i];
        col++;
        if (c == '\n') {
            line++;
            col = 0;
        }
        if (in_string) {
            if (c == '\\')
                i++, col++;
            else if (c == '"')
                in_string = 0;
            continue;
        }
        if (c == '"') {
            in_string = 1;
        } else if (c == '{' || c == '[') {
            if (++depth > CODEC_MAX_DEPTH) {
                lo_err_set(err, 400, "BadRequest",
                           JSON_ERR_PREFIX "nesting deeper than %d levels at line %zu, column %zu (byte %zu)",
                           CODEC_MAX_DEPTH, line, col, i);
                return -1;
            }
        } else if (c == '}' || c == ']') {
            depth--;
        }
    }
    return 0;
}

/*
 * The fast path of JSON decoding. jansson's loader reads through a stream
 * that takes one byte at a time, a token buffer and a second pass for
 * duplicate keys: about 60 000 instructions for a 250-byte object, the
 * dearest step of a create. This parser builds the same jansson tree in
 * one pass over the text, and finds duplicate keys on the way (a key
 * already in the object it is building).
 *
 * It takes only text whose meaning it is sure of: ASCII or well-formed
 * UTF-8 in strings, the two-character escapes, plain keys (no escape),
 * integers of up to 18 digits, nesting within CODEC_MAX_DEPTH. Anything
 * else (\u escapes, reals, big integers, malformed text) makes it give up,
 * and jansson decodes the text instead: the language accepted, the trees
 * and the error messages stay jansson's.
 */
typedef struct fseg {
    const char *key;   /* the key of the member being read (objects), or NULL (arrays) */
    size_t key_len;
    size_t index;      /* the element being read (arrays) */
} fseg_t;

typedef struct fdec {
    const char *p, *end;
    int depth;
    fseg_t path[CODEC_MAX_DEPTH + 1]; /* the open containers, outermost first */
    json_t *dups;      /* NULL: duplicates not asked for */
    json_t *reported;  /* paths in dups (owned; made on the first duplicate) */
    char *scratch;     /* unescaped string values (owned) */
    size_t scratch_cap;
} fdec_t;

static void fdec_skip_ws(fdec_t *d)
{
    while (d->p < d->end && (*d->p == ' ' || *d->p == '\n' || *d->p == '\r' || *d->p == '\t'))
        d->p++;
}

/*
 * Reads the string at d->p (just past its opening quote) up to and past its
 * closing quote. *out and *len: its bytes, in the input when it has no
 * escape (*escaped 0), else in d->scratch. Returns -1 to give up.
 */
static int fdec_string(fdec_t *d, const char **out, size_t *len, int *escaped)
{
    const unsigned char *s = (const unsigned char *)d->p, *end = (const unsigned char *)d->end;
    const unsigned char *start = s;
    size_t n = 0; /* bytes written to scratch (once escaped) */
    *escaped = 0;
    while (s < end) {
        unsigned char c = *s;
        if (c == '"') {
            if (*escaped) {
                *out = d->scratch;
                *len = n;
            } else {
                *out = (const char *)start;
                *len = (size_t)(s - start);
            }
            d->p = (const char *)s + 1;
            return 0;
        }
        size_t take = 1;
        if (c < 0x20) {
            return -1;
        } else if (c >= 0x80) {
            take = text_utf8_sequence(s, (size_t)(end - s));
            if (take == 0)
                return -1;
        } else if (c == '\\') {
            if (s + 1 >= end)
                return -1;
            char e;
            switch (s[1]) {
            case '"': e = '"'; break;
            case '\\': e = '\\'; break;
            case '/': e = '/'; break;
            case 'b': e = '\b'; break;
            case 'f': e = '\f'; break;
            case 'n': e = '\n'; break;
            case 'r': e = '\r'; break;
            case 't': e = '\t'; break;
            default: return -1; /* \u and the invalid ones: jansson's */
            }
            if (!*escaped) { /* from here on the string is copied */
                *escaped = 1;
                n = (size_t)(s - start);
                if (d->scratch_cap < (size_t)(end - start)) {
                    d->scratch_cap = (size_t)(end - start);
                    d->scratch = lo_realloc(d->scratch, d->scratch_cap);
                }
                memcpy(d->scratch, start, n);
            }
            d->scratch[n++] = e;
            s += 2;
            continue;
        }
        if (*escaped) {
            memcpy(d->scratch + n, s, take);
            n += take;
        }
        s += take;
    }
    return -1;
}

/* Records the key at the top of the path as a duplicate (dotted path, once). */
static void fdec_duplicate(fdec_t *d)
{
    lo_buf_t b = {0};
    for (int i = 0; i < d->depth; i++) {
        const fseg_t *g = &d->path[i];
        if (g->key) {
            if (b.len > 0)
                lo_buf_char(&b, '.');
            lo_buf_put(&b, g->key, g->key_len);
        } else {
            char idx[32];
            lo_buf_put(&b, idx, (size_t)snprintf(idx, sizeof(idx), "[%zu]", g->index));
        }
    }
    lo_buf_char(&b, '\0');
    if (d->reported == NULL)
        d->reported = json_object();
    if (json_object_get(d->reported, b.data) == NULL) {
        json_object_set_new(d->reported, b.data, json_true());
        json_array_append_new(d->dups, json_string(b.data));
    }
    free(b.data);
}

static json_t *fdec_value(fdec_t *d);

static json_t *fdec_object(fdec_t *d)
{
    json_t *obj = json_object();
    fseg_t *g = &d->path[d->depth++];
    *g = (fseg_t){0};
    fdec_skip_ws(d);
    if (d->p < d->end && *d->p == '}') {
        d->p++;
        d->depth--;
        return obj;
    }
    for (;;) {
        if (d->p >= d->end || *d->p != '"')
            break;
        d->p++;
        const char *key;
        size_t key_len;
        int escaped;
        if (fdec_string(d, &key, &key_len, &escaped) != 0 || escaped || memchr(key, '\0', key_len))
            break;
        fdec_skip_ws(d);
        if (d->p >= d->end || *d->p != ':')
            break;
        d->p++;
        g->key = key;
        g->key_len = key_len;
        if (d->dups && json_object_getn(obj, key, key_len) != NULL)
            fdec_duplicate(d);
        json_t *v = fdec_value(d);
        if (v == NULL)
            break;
        json_object_setn_new_nocheck(obj, key, key_len, v);
        fdec_skip_ws(d);
        if (d->p >= d->end)
            break;
        char c = *d->p++;
        if (c == '}') {
            d->depth--;
            return obj;
        }
        if (c != ',')
            break;
        fdec_skip_ws(d);
    }
    json_decref(obj);
    return NULL;
}

static json_t *fdec_array(fdec_t *d)
{
    json_t *arr = json_array();
    fseg_t *g = &d->path[d->depth++];
    *g = (fseg_t){0};
    fdec_skip_ws(d);
    if (d->p < d->end && *d->p == ']') {
        d->p++;
        d->depth--;
        return arr;
    }
    for (;;) {
        json_t *v = fdec_value(d);
        if (v == NULL)
            break;
        json_array_append_new(arr, v);
        g->index++;
        fdec_skip_ws(d);
        if (d->p >= d->end)
            break;
        char c = *d->p++;
        if (c == ']') {
            d->depth--;
            return arr;
        }
        if (c != ',')
            break;
    }
    json_decref(arr);
    return NULL;
}

/* An integer of up to 18 digits (no fraction, no exponent), or NULL. */
static json_t *fdec_integer(fdec_t *d)
{
    const char *s = d->p;
    int negative = s < d->end && *s == '-';
    if (negative)
        s++;
    const char *digits = s;
    json_int_t v = 0;
    while (s < d->end && *s >= '0' && *s <= '9' && s - digits < 18) /* 18 digits fit in v */
        v = v * 10 + (*s++ - '0');
    size_t n = (size_t)(s - digits);
    if (n == 0 || (s < d->end && *s >= '0' && *s <= '9') || (n > 1 && *digits == '0'))
        return NULL; /* none, a 19th digit (jansson's range check decides), a leading zero */
    if (s < d->end && (*s == '.' || *s == 'e' || *s == 'E'))
        return NULL;
    d->p = s;
    return json_integer(negative ? -v : v);
}

static json_t *fdec_literal(fdec_t *d, const char *word, size_t n, json_t *v)
{
    if ((size_t)(d->end - d->p) < n || memcmp(d->p, word, n) != 0)
        return NULL;
    const char *after = d->p + n;
    if (after < d->end && ((*after >= 'a' && *after <= 'z') || (*after >= 'A' && *after <= 'Z')))
        return NULL; /* a longer word: jansson's error */
    d->p = after;
    return v;
}

/* The value at d->p (white space first), or NULL to give up. */
static json_t *fdec_value(fdec_t *d)
{
    fdec_skip_ws(d);
    if (d->p >= d->end)
        return NULL;
    char c = *d->p;
    if (c == '{' || c == '[') {
        if (d->depth >= CODEC_MAX_DEPTH)
            return NULL;
        d->p++;
        return c == '{' ? fdec_object(d) : fdec_array(d);
    }
    if (c == '"') {
        const char *s;
        size_t len;
        int escaped;
        d->p++;
        if (fdec_string(d, &s, &len, &escaped) != 0 || memchr(s, '\0', len))
            return NULL;
        return json_stringn_nocheck(s, len);
    }
    if (c == '-' || (c >= '0' && c <= '9'))
        return fdec_integer(d);
    if (c == 't')
        return fdec_literal(d, "true", 4, json_true());
    if (c == 'f')
        return fdec_literal(d, "false", 5, json_false());
    if (c == 'n')
        return fdec_literal(d, "null", 4, json_null());
    return NULL;
}

json_t *codec_decode_json_fast(const char *buf, size_t len, json_t *dups)
{
    fdec_t d = {.p = buf, .end = buf + len, .dups = dups};
    json_t *v = fdec_value(&d);
    fdec_skip_ws(&d);
    if (v != NULL && d.p != d.end) {
        json_decref(v);
        v = NULL;
    }
    if (v == NULL && dups != NULL)
        json_array_clear(dups);
    json_decref(d.reported);
    free(d.scratch);
    return v;
}

json_t *codec_decode_json(const char *buf, size_t len, lo_err_t *err)
{
    json_t *fast = codec_decode_json_fast(buf, len, NULL);
    if (fast != NULL)
        return fast;
    if (json_check_depth(buf, len, err) < 0)
        return NULL;
    json_error_t jerr;
    json_t *v = json_loadb(buf, len, JSON_FLAGS, &jerr);
    if (v == NULL)
        lo_err_set(err, 400, "BadRequest", JSON_ERR_PREFIX "%s at line %d, column %d (byte %d)", jerr.text,
                   jerr.line, jerr.column, jerr.position);
    return v;
}

/* One open container while scanning for duplicate keys. */
typedef struct jframe {
    int is_object;
    size_t base;   /* length of the path to this container */
    size_t index;  /* next element index (arrays) */
    json_t *seen;  /* keys seen so far (objects; owned) */
} jframe_t;

typedef struct jscan {
    jframe_t stack[CODEC_MAX_DEPTH + 1];
    int depth;
    char *path; /* dotted path of the current value; owned */
    size_t path_len, path_cap;
} jscan_t;

static void jscan_path_set(jscan_t *s, size_t base, const char *sep, const char *seg, size_t seg_len)
{
    size_t sep_len = base == 0 && *sep == '.' ? 0 : strlen(sep);
    size_t need = base + sep_len + seg_len + 1;
    if (need > s->path_cap) {
        s->path_cap = need * 2;
        s->path = lo_realloc(s->path, s->path_cap);
    }
    memcpy(s->path + base, sep, sep_len);
    memcpy(s->path + base + sep_len, seg, seg_len);
    s->path_len = base + sep_len + seg_len;
    s->path[s->path_len] = '\0';
}

/* End of the string token starting at buf[i] == '"' (index just past the closing quote). */
static size_t json_string_end(const char *buf, size_t len, size_t i)
{
    for (i++; i < len; i++) {
        if (buf[i] == '\\')
            i++;
        else if (buf[i] == '"')
            return i + 1;
    }
    return len;
}

/* Reads the key token at buf[i]; records its path; returns the index past it. */
static size_t json_scan_key(jscan_t *s, jframe_t *top, const char *buf, size_t len, size_t i, json_t *reported,
                            json_t *dups)
{
    size_t end = json_string_end(buf, len, i);
    /* a key without escapes is its bytes between the quotes; only others need decoding */
    json_t *k = NULL;
    if (end >= i + 2 && memchr(buf + i + 1, '\\', end - i - 2) == NULL)
        k = json_stringn_nocheck(buf + i + 1, end - i - 2);
    else
        k = json_loadb(buf + i, end - i, JSON_FLAGS, NULL);
    const char *key = json_string_value(k);
    if (key != NULL) {
        jscan_path_set(s, top->base, ".", key, strlen(key));
        if (json_object_get(top->seen, key) == NULL) {
            json_object_set_new(top->seen, key, json_true());
        } else if (json_object_get(reported, s->path) == NULL) {
            json_object_set_new(reported, s->path, json_true());
            json_array_append_new(dups, json_string(s->path));
        }
    }
    json_decref(k);
    return end;
}

/*
 * Walks text that jansson has already accepted and appends to dups the
 * path of every object key that appears more than once in its object.
 */
static void json_scan_duplicates(const char *buf, size_t len, json_t *dups)
{
    jscan_t s;
    memset(&s, 0, sizeof(s));
    json_t *reported = json_object();
    int expect_key = 0;
    jscan_path_set(&s, 0, "", "", 0);

    for (size_t i = 0; i < len; i++) {
        char c = buf[i];
        jframe_t *top = s.depth ? &s.stack[s.depth - 1] : NULL;
        if (c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == ':')
            continue;
        if (c == ',') {
            expect_key = top && top->is_object;
            continue;
        }
        if (c == '}' || c == ']') {
            if (s.depth > 0)
                json_decref(s.stack[--s.depth].seen);
            expect_key = 0;
            continue;
        }
        if (top && top->is_object && expect_key && c == '"') {
            i = json_scan_key(&s, top, buf, len, i, reported, dups) - 1;
            expect_key = 0;
            continue;
        }
        /* a value starts here */
        if (top && !top->is_object) {
            char idx[32];
            int n = snprintf(idx, sizeof(idx), "[%zu]", top->index++);
            jscan_path_set(&s, top->base, "", idx, (size_t)n);
        }
        if (c == '{' || c == '[') {
            if (s.depth > CODEC_MAX_DEPTH)
                break; /* codec_decode_json refused this already */
            jframe_t *f = &s.stack[s.depth++];
            f->is_object = c == '{';
            f->base = s.path_len;
            f->index = 0;
            f->seen = f->is_object ? json_object() : NULL;
            expect_key = f->is_object;
        } else if (c == '"') {
            i = json_string_end(buf, len, i) - 1;
        } else { /* number or literal: skip to its end */
            while (i + 1 < len && strchr(",]} \t\r\n", buf[i + 1]) == NULL)
                i++;
        }
    }
    while (s.depth > 0)
        json_decref(s.stack[--s.depth].seen);
    json_decref(reported);
    free(s.path);
}

json_t *codec_decode_json_checked(const char *buf, size_t len, json_t **duplicates, lo_err_t *err)
{
    if (duplicates)
        *duplicates = NULL;
    if (duplicates == NULL)
        return codec_decode_json(buf, len, err);
    json_t *dups = json_array();
    json_t *v = codec_decode_json_fast(buf, len, dups);
    if (v != NULL) {
        *duplicates = dups;
        return v;
    }
    json_decref(dups);
    v = codec_decode_json(buf, len, err);
    if (v == NULL)
        return v;
    *duplicates = json_array();
    json_scan_duplicates(buf, len, *duplicates);
    return v;
}

json_t *codec_decode_auto(const char *buf, size_t len, lo_err_t *err)
{
    size_t i = 0;
    while (i < len && (buf[i] == ' ' || buf[i] == '\t' || buf[i] == '\r' || buf[i] == '\n'))
        i++;
    if (i < len && (buf[i] == '{' || buf[i] == '['))
        return codec_decode_json(buf, len, err);
    return codec_decode_yaml(buf, len, err);
}

/* ------------------------------------------------------------------ */
/* Encoding                                                            */
/* ------------------------------------------------------------------ */

/* ---- JSON output ---- */

/*
 * A compact encoder of our own: jansson's dump goes through a callback per
 * piece and escapes byte by byte, which made it the dearest step of a
 * write. Output: no white space, object keys in the tree's order (jansson
 * keeps insertion order), strings escaped as JSON requires (quote,
 * backslash, control characters; the rest of the UTF-8, which jansson
 * checked when it built the string, as it is), integers in decimal, reals
 * as the shortest text that reads back the same, with a '.' or an
 * exponent so that they stay reals (as Go prints a float64).
 */
/* The bytes a JSON string cannot hold as they are: 1 for each. */
static const unsigned char json_needs_escape[256] = {
    [0x00] = 1, [0x01] = 1, [0x02] = 1, [0x03] = 1, [0x04] = 1, [0x05] = 1, [0x06] = 1, [0x07] = 1,
    [0x08] = 1, [0x09] = 1, [0x0A] = 1, [0x0B] = 1, [0x0C] = 1, [0x0D] = 1, [0x0E] = 1, [0x0F] = 1,
    [0x10] = 1, [0x11] = 1, [0x12] = 1, [0x13] = 1, [0x14] = 1, [0x15] = 1, [0x16] = 1, [0x17] = 1,
    [0x18] = 1, [0x19] = 1, [0x1A] = 1, [0x1B] = 1, [0x1C] = 1, [0x1D] = 1, [0x1E] = 1, [0x1F] = 1,
    ['"'] = 1, ['\\'] = 1,
};

/*
 * The encoder's own appends: the buffer is private to codec_encode_json_len
 * until it returns, so these skip lo_buf's NUL after every byte (it is put
 * once at the end) and its call per byte.
 */
static inline void put_byte(lo_buf_t *b, char c)
{
    if (b->len + 2 > b->cap)
        lo_buf_reserve(b, 1);
    b->data[b->len++] = c;
}

static inline void put_bytes(lo_buf_t *b, const char *s, size_t n)
{
    if (b->len + n + 1 > b->cap)
        lo_buf_reserve(b, n);
    memcpy(b->data + b->len, s, n);
    b->len += n;
}

static void encode_string(lo_buf_t *b, const char *s, size_t n)
{
    static const char hex[] = "0123456789ABCDEF"; /* as jansson prints them */
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0;
    while (i < n && !json_needs_escape[u[i]])
        i++;
    put_byte(b, '"');
    put_bytes(b, s, i); /* most strings are this run alone */
    size_t run = i; /* the start of the bytes not copied yet */
    for (; i < n; i++) {
        unsigned char c = u[i];
        if (!json_needs_escape[c])
            continue;
        put_bytes(b, s + run, i - run);
        run = i + 1;
        char esc[6] = {'\\', 0};
        size_t elen = 2;
        switch (c) {
        case '"': esc[1] = '"'; break;
        case '\\': esc[1] = '\\'; break;
        case '\b': esc[1] = 'b'; break;
        case '\f': esc[1] = 'f'; break;
        case '\n': esc[1] = 'n'; break;
        case '\r': esc[1] = 'r'; break;
        case '\t': esc[1] = 't'; break;
        default:
            esc[1] = 'u', esc[2] = '0', esc[3] = '0', esc[4] = hex[c >> 4], esc[5] = hex[c & 15];
            elen = 6;
        }
        put_bytes(b, esc, elen);
    }
    put_bytes(b, s + run, n - run);
    put_byte(b, '"');
}

/* An integer in decimal, as "%" JSON_INTEGER_FORMAT prints it. */
static void encode_integer(lo_buf_t *b, json_int_t v)
{
    char num[24];
    char *end = num + sizeof(num), *p = end;
    /* in unsigned arithmetic, so that the most negative value has a magnitude too */
    unsigned long long m = v < 0 ? 0ull - (unsigned long long)v : (unsigned long long)v;
    do {
        *--p = (char)('0' + m % 10);
        m /= 10;
    } while (m);
    if (v < 0)
        *--p = '-';
    put_bytes(b, p, (size_t)(end - p));
}

static void format_real(double d, char *buf, size_t size);

static void encode_value(lo_buf_t *b, const json_t *v, int depth)
{
    char num[40];
    if (depth > CODEC_MAX_DEPTH * 4)
        lo_fatal("codec_encode_json: a tree nested %d deep", depth);
    switch (json_typeof(v)) {
    case JSON_OBJECT: {
        const char *key;
        json_t *e;
        int first = 1;
        put_byte(b, '{');
        json_object_foreach((json_t *)v, key, e) {
            if (!first)
                put_byte(b, ',');
            first = 0;
            encode_string(b, key, strlen(key));
            put_byte(b, ':');
            encode_value(b, e, depth + 1);
        }
        put_byte(b, '}');
        return;
    }
    case JSON_ARRAY: {
        size_t i;
        json_t *e;
        put_byte(b, '[');
        json_array_foreach(v, i, e) {
            if (i > 0)
                put_byte(b, ',');
            encode_value(b, e, depth + 1);
        }
        put_byte(b, ']');
        return;
    }
    case JSON_STRING:
        encode_string(b, json_string_value(v), json_string_length(v));
        return;
    case JSON_INTEGER:
        encode_integer(b, json_integer_value(v));
        return;
    case JSON_REAL:
        format_real(json_real_value(v), num, sizeof(num));
        put_bytes(b, num, strlen(num));
        return;
    case JSON_TRUE:
        put_bytes(b, "true", 4);
        return;
    case JSON_FALSE:
        put_bytes(b, "false", 5);
        return;
    case JSON_NULL:
        put_bytes(b, "null", 4);
        return;
    }
}

char *codec_encode_json_len(const json_t *value, size_t *len)
{
    lo_buf_t b = {0};
    lo_buf_reserve(&b, 1023);
    encode_value(&b, value, 0);
    b.data[b.len] = '\0'; /* put_byte and put_bytes leave room for it */
    if (len)
        *len = b.len;
    return b.data;
}

void codec_encode_json_to(lo_buf_t *b, const json_t *value)
{
    lo_buf_reserve(b, 255);
    encode_value(b, value, 0);
    b->data[b->len] = '\0';
}

char *codec_encode_json(const json_t *value)
{
    return codec_encode_json_len(value, NULL);
}

/* Shortest text that reads back as d, always with a '.' or exponent so that it stays a float. */
static void format_real(double d, char *buf, size_t size)
{
    lo_real_text(d, buf, size);
    if (strpbrk(buf, ".eEn") == NULL) /* "n": inf/nan never reach here, jansson refuses them */
        strncat(buf, ".0", size - strlen(buf) - 1);
}

typedef struct ybuf {
    char *data;
    size_t len, cap;
} ybuf_t;

static int ybuf_write(void *data, unsigned char *chunk, size_t size)
{
    ybuf_t *b = data;
    if (b->len + size + 1 > b->cap) {
        b->cap = (b->len + size + 1) * 2;
        b->data = lo_realloc(b->data, b->cap);
    }
    memcpy(b->data + b->len, chunk, size);
    b->len += size;
    b->data[b->len] = '\0';
    return 1;
}

static int emit_scalar(yaml_emitter_t *em, const char *text, size_t len, yaml_scalar_style_t style)
{
    yaml_event_t ev;
    if (!yaml_scalar_event_initialize(&ev, NULL, NULL, (yaml_char_t *)text, (int)len, 1, 1, style))
        return 0;
    return yaml_emitter_emit(em, &ev);
}

static int digits(const char *s, size_t len, size_t *i, size_t min, size_t max)
{
    size_t n = 0;
    while (*i < len && n < max && s[*i] >= '0' && s[*i] <= '9')
        (*i)++, n++;
    return n >= min;
}

/*
 * Plain scalars that other YAML 1.1 readers (PyYAML, which LiteLLM uses)
 * read as something else than a string: timestamps (2024-06-01 becomes a
 * date) and base-60 numbers (1:30 becomes 90). Our own reader keeps them as
 * strings, so only the emitter has to care.
 */
static int yaml11_typed(const char *s, size_t len)
{
    size_t i = 0;
    if (digits(s, len, &i, 4, 4) && i < len && s[i] == '-') {
        i++;
        if (digits(s, len, &i, 1, 2) && i < len && s[i] == '-') {
            i++;
            if (digits(s, len, &i, 1, 2) && (i == len || s[i] == 'T' || s[i] == 't' || s[i] == ' '))
                return 1;
        }
    }
    i = (len > 0 && (s[0] == '-' || s[0] == '+')) ? 1 : 0;
    if (!digits(s, len, &i, 1, SIZE_MAX) || i == len || s[i] != ':')
        return 0;
    while (i < len && s[i] == ':') {
        i++;
        if (!digits(s, len, &i, 1, 2))
            return 0;
    }
    if (i < len && s[i] == '.') {
        i++;
        digits(s, len, &i, 0, SIZE_MAX);
    }
    return i == len;
}

/* Style for a string so that it reads back as that same string. */
static yaml_scalar_style_t string_style(const char *s, size_t len)
{
    static const char *const risky[] = {"y", "Y", "n", "N", "=", NULL}; /* YAML 1.1 readers elsewhere */
    if (resolve_plain(s, len, NULL, NULL) != KIND_STRING || word_in(s, len, risky) || yaml11_typed(s, len))
        return YAML_DOUBLE_QUOTED_SCALAR_STYLE;
    if (memchr(s, '\n', len) != NULL)
        return YAML_LITERAL_SCALAR_STYLE; /* libyaml falls back to quoting when it cannot */
    return YAML_ANY_SCALAR_STYLE;         /* plain when libyaml deems it safe, else quoted */
}

static int emit_value(yaml_emitter_t *em, const json_t *v)
{
    yaml_event_t ev;
    char num[64];
    switch (json_typeof(v)) {
    case JSON_OBJECT: {
        const char *key;
        json_t *child;
        yaml_mapping_start_event_initialize(&ev, NULL, NULL, 1, YAML_BLOCK_MAPPING_STYLE);
        if (!yaml_emitter_emit(em, &ev))
            return -1;
        json_object_foreach((json_t *)v, key, child)
        {
            size_t klen = strlen(key);
            if (!emit_scalar(em, key, klen, string_style(key, klen)) || emit_value(em, child) < 0)
                return -1;
        }
        yaml_mapping_end_event_initialize(&ev);
        return yaml_emitter_emit(em, &ev) ? 0 : -1;
    }
    case JSON_ARRAY: {
        size_t i;
        json_t *child;
        yaml_sequence_start_event_initialize(&ev, NULL, NULL, 1, YAML_BLOCK_SEQUENCE_STYLE);
        if (!yaml_emitter_emit(em, &ev))
            return -1;
        json_array_foreach(v, i, child) if (emit_value(em, child) < 0) return -1;
        yaml_sequence_end_event_initialize(&ev);
        return yaml_emitter_emit(em, &ev) ? 0 : -1;
    }
    case JSON_STRING: {
        const char *s = json_string_value(v);
        size_t len = json_string_length(v);
        return emit_scalar(em, s, len, string_style(s, len)) ? 0 : -1;
    }
    case JSON_INTEGER:
        snprintf(num, sizeof(num), "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        break;
    case JSON_REAL:
        format_real(json_real_value(v), num, sizeof(num));
        break;
    case JSON_TRUE:
        snprintf(num, sizeof(num), "true");
        break;
    case JSON_FALSE:
        snprintf(num, sizeof(num), "false");
        break;
    case JSON_NULL:
        snprintf(num, sizeof(num), "null");
        break;
    }
    return emit_scalar(em, num, strlen(num), YAML_PLAIN_SCALAR_STYLE) ? 0 : -1;
}

/* An emitter set up as every YAML answer is written: block style, UTF-8 as it is, no folding. */
static void yaml_emitter_setup(yaml_emitter_t *em, ybuf_t *out)
{
    if (!yaml_emitter_initialize(em))
        lo_fatal("out of memory (yaml emitter)");
    yaml_emitter_set_output(em, ybuf_write, out);
    yaml_emitter_set_unicode(em, 1);
    yaml_emitter_set_width(em, -1); /* no folding of long lines */
    yaml_emitter_set_indent(em, 2);
}

/* The stream and document start events; 1 on success. */
static int yaml_emit_start(yaml_emitter_t *em)
{
    yaml_event_t ev;
    yaml_stream_start_event_initialize(&ev, YAML_UTF8_ENCODING);
    if (!yaml_emitter_emit(em, &ev))
        return 0;
    yaml_document_start_event_initialize(&ev, NULL, NULL, NULL, 1);
    return yaml_emitter_emit(em, &ev);
}

/* The document and stream end events, then everything out; 1 on success. */
static int yaml_emit_finish(yaml_emitter_t *em)
{
    yaml_event_t ev;
    yaml_document_end_event_initialize(&ev, 1);
    if (!yaml_emitter_emit(em, &ev))
        return 0;
    yaml_stream_end_event_initialize(&ev);
    if (!yaml_emitter_emit(em, &ev))
        return 0;
    return yaml_emitter_flush(em);
}

char *codec_encode_yaml(const json_t *value)
{
    yaml_emitter_t em;
    ybuf_t out = {NULL, 0, 0};
    yaml_emitter_setup(&em, &out);
    int ok = yaml_emit_start(&em) && emit_value(&em, value) == 0 && yaml_emit_finish(&em);
    if (!ok) {
        lo_log(LO_INFO, "codec_encode_yaml: emitter failed: %s", em.problem ? em.problem : "unknown");
        free(out.data);
        out.data = NULL;
    } else if (out.data == NULL) {
        out.data = lo_strdup("");
    }
    yaml_emitter_delete(&em);
    return out.data;
}

/* ---- YAML written in pieces ---- */

/*
 * The same events codec_encode_yaml would emit for the whole mapping, given
 * as they come: libyaml holds back only the few events it needs to look
 * ahead, so what is taken after each item is all but the end of it.
 */
struct codec_yaml_seq {
    yaml_emitter_t em;
    ybuf_t out;
    int failed;
};

codec_yaml_seq_t *codec_yaml_seq_open(const json_t *head, const char *seq_key)
{
    codec_yaml_seq_t *w = lo_calloc(1, sizeof(*w));
    yaml_emitter_setup(&w->em, &w->out);
    yaml_event_t ev;
    yaml_mapping_start_event_initialize(&ev, NULL, NULL, 1, YAML_BLOCK_MAPPING_STYLE);
    int ok = yaml_emit_start(&w->em) && yaml_emitter_emit(&w->em, &ev);
    const char *key;
    json_t *child;
    json_object_foreach((json_t *)head, key, child)
    {
        size_t klen = strlen(key);
        ok = ok && emit_scalar(&w->em, key, klen, string_style(key, klen)) && emit_value(&w->em, child) == 0;
    }
    size_t slen = strlen(seq_key);
    ok = ok && emit_scalar(&w->em, seq_key, slen, string_style(seq_key, slen));
    yaml_sequence_start_event_initialize(&ev, NULL, NULL, 1, YAML_BLOCK_SEQUENCE_STYLE);
    w->failed = !(ok && yaml_emitter_emit(&w->em, &ev));
    return w;
}

void codec_yaml_seq_add(codec_yaml_seq_t *w, const json_t *item)
{
    if (!w->failed && emit_value(&w->em, item) != 0)
        w->failed = 1;
}

void codec_yaml_seq_close(codec_yaml_seq_t *w)
{
    yaml_event_t ev;
    if (w->failed)
        return;
    yaml_sequence_end_event_initialize(&ev);
    int ok = yaml_emitter_emit(&w->em, &ev);
    yaml_mapping_end_event_initialize(&ev);
    ok = ok && yaml_emitter_emit(&w->em, &ev);
    w->failed = !(ok && yaml_emit_finish(&w->em));
}

char *codec_yaml_seq_take(codec_yaml_seq_t *w, size_t *len)
{
    if (!w->failed && !yaml_emitter_flush(&w->em))
        w->failed = 1;
    if (w->failed) {
        lo_log(LO_INFO, "codec_yaml_seq: emitter failed: %s", w->em.problem ? w->em.problem : "unknown");
        return NULL;
    }
    char *data = w->out.data ? w->out.data : lo_strdup("");
    *len = w->out.len;
    w->out = (ybuf_t){NULL, 0, 0};
    return data;
}

void codec_yaml_seq_free(codec_yaml_seq_t *w)
{
    if (w == NULL)
        return;
    yaml_emitter_delete(&w->em);
    free(w->out.data);
    free(w);
}
