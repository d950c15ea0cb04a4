/*
 * selector.c - label and field selectors (see langop/selector.h).
 *
 * Label selectors are parsed with a small lexer like apimachinery's
 * labels.Parse: identifiers are runs of anything that is neither white
 * space nor one of `! = ( ) ,`; `in` and `notin` are keywords.
 * Field selectors follow fields.ParseSelector: terms split on unescaped
 * commas, each `field<op>value` with `\` escaping , = ! and \ in values.
 */
#include "langop/core/selector.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------ */
/* Label selectors                                                     */
/* ------------------------------------------------------------------ */

typedef enum label_op {
    OP_EXISTS,
    OP_NOT_EXISTS,
    OP_EQUALS,
    OP_NOT_EQUALS,
    OP_IN,
    OP_NOT_IN,
} label_op_t;

typedef struct label_req {
    label_op_t op;
    char *key;
    char **values; /* owned; OP_EQUALS / OP_NOT_EQUALS have exactly one */
    size_t nvalues;
} label_req_t;

struct label_selector {
    label_req_t *reqs;
    size_t nreqs;
};

typedef enum tok_type {
    TOK_END,
    TOK_IDENT,
    TOK_NOT,     /* ! */
    TOK_EQ,      /* = */
    TOK_DEQ,     /* == */
    TOK_NEQ,     /* != */
    TOK_IN,
    TOK_NOTIN,
    TOK_OPEN,    /* ( */
    TOK_CLOSE,   /* ) */
    TOK_COMMA,
} tok_type_t;

typedef struct lexer {
    const char *p;
    tok_type_t type;
    const char *text; /* the token's text in the input */
    size_t len;
} lexer_t;

static int is_special(char c)
{
    return c == '!' || c == '=' || c == '(' || c == ')' || c == ',';
}

/* Advances to the next token. */
static void lex_next(lexer_t *lx)
{
    while (isspace((unsigned char)*lx->p))
        lx->p++;
    lx->text = lx->p;
    char c = *lx->p;
    if (c == '\0') {
        lx->type = TOK_END;
        lx->len = 0;
        return;
    }
    if (is_special(c)) {
        lx->len = 1;
        if (c == '!' && lx->p[1] == '=')
            lx->type = TOK_NEQ, lx->len = 2;
        else if (c == '=' && lx->p[1] == '=')
            lx->type = TOK_DEQ, lx->len = 2;
        else
            lx->type = c == '!' ? TOK_NOT : c == '=' ? TOK_EQ : c == '(' ? TOK_OPEN : c == ')' ? TOK_CLOSE : TOK_COMMA;
        lx->p += lx->len;
        return;
    }
    const char *start = lx->p;
    while (*lx->p && !isspace((unsigned char)*lx->p) && !is_special(*lx->p))
        lx->p++;
    lx->len = (size_t)(lx->p - start);
    lx->type = TOK_IDENT;
    if (lx->len == 2 && memcmp(start, "in", 2) == 0)
        lx->type = TOK_IN;
    else if (lx->len == 5 && memcmp(start, "notin", 5) == 0)
        lx->type = TOK_NOTIN;
}

static void label_fail_found(const lexer_t *lx, const char *expected, lo_err_t *err)
{
    lo_err_set(err, 400, "BadRequest", "unable to parse requirement: found '%.*s', expected: %s", (int)lx->len,
               lx->text, expected);
}

/* [A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?, at most 63 characters. */
static const char *check_name_part(const char *s, size_t len)
{
    if (len == 0)
        return "name part must be non-empty";
    if (len > 63)
        return "name part must be no more than 63 characters";
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        int alnum = isalnum((unsigned char)c);
        if (!alnum && c != '-' && c != '_' && c != '.')
            return "name part must consist of alphanumeric characters, '-', '_' or '.'";
        if (!alnum && (i == 0 || i == len - 1))
            return "name part must start and end with an alphanumeric character";
    }
    return NULL;
}

/* A lower-case RFC 1123 subdomain of at most 253 characters. */
static const char *check_dns_subdomain(const char *s, size_t len)
{
    if (len == 0)
        return "prefix part must be non-empty";
    if (len > 253)
        return "prefix part must be no more than 253 characters";
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        int alnum = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
        if (!alnum && c != '-' && c != '.')
            return "prefix part must be a lowercase RFC 1123 subdomain";
        /* each dot-separated label starts and ends with an alphanumeric */
        if (!alnum && (i == 0 || i == len - 1 || s[i - 1] == '.' || (c == '.' && s[i - 1] == '-')))
            return "prefix part must be a lowercase RFC 1123 subdomain";
    }
    return NULL;
}

/* Qualified name: [prefix/]name. Returns NULL when valid, else why not. */
static const char *check_label_key(const char *s, size_t len)
{
    const char *slash = memchr(s, '/', len);
    if (slash == NULL)
        return check_name_part(s, len);
    size_t plen = (size_t)(slash - s);
    if (memchr(slash + 1, '/', len - plen - 1) != NULL)
        return "a qualified name must consist of an optional prefix and a name, separated by a single '/'";
    const char *why = check_dns_subdomain(s, plen);
    return why ? why : check_name_part(slash + 1, len - plen - 1);
}

static const char *check_label_value(const char *s, size_t len)
{
    if (len == 0)
        return NULL;
    if (len > 63)
        return "must be no more than 63 characters";
    return check_name_part(s, len) ? "a valid label must be an empty string or consist of alphanumeric characters, "
                                     "'-', '_' or '.', and must start and end with an alphanumeric character"
                                   : NULL;
}

const char *label_key_problem(const char *text)
{
    return check_label_key(text, strlen(text));
}

const char *label_value_problem(const char *text)
{
    return check_label_value(text, strlen(text));
}

const char *label_subdomain_problem(const char *text)
{
    return check_dns_subdomain(text, strlen(text));
}

/*
 * Room for element n (0-based) of an array that grows by doubling: a
 * reallocation at 0 and at each power of two from 4 on, so that a selector
 * of many terms costs linear time (growing by one copied the array each time).
 */
static void *grow_for(void *p, size_t n, size_t size)
{
    if (n == 0)
        return lo_realloc(p, 4 * size);
    if (n >= 4 && (n & (n - 1)) == 0)
        return lo_realloc(p, 2 * n * size);
    return p;
}

static int add_value(label_req_t *req, const char *s, size_t len, lo_err_t *err)
{
    const char *why = check_label_value(s, len);
    if (why != NULL) {
        lo_err_set(err, 400, "BadRequest", "unable to parse requirement: invalid label value: \"%.*s\": at key: \"%s\": %s",
                   (int)len, s, req->key, why);
        return -1;
    }
    req->values = grow_for(req->values, req->nvalues, sizeof(char *));
    req->values[req->nvalues++] = lo_strndup(s, len);
    return 0;
}

/* Parses "( v1, v2 )" after in/notin; the lexer stands on the '('. */
static int parse_value_set(lexer_t *lx, label_req_t *req, lo_err_t *err)
{
    if (lx->type != TOK_OPEN) {
        label_fail_found(lx, "'('", err);
        return -1;
    }
    lex_next(lx);
    /*
     * "()" names no value at all. kube's parser reads it as the set {""};
     * we refuse it, as the project decided (issue: an empty set is almost
     * always a mistake, and "a in ()" selecting objects without the label
     * silently is worse than a 400): "(a,)" still holds the empty value.
     */
    if (lx->type == TOK_CLOSE) {
        lo_err_set(err, 400, "BadRequest", "unable to parse requirement: for 'in', 'notin' operators, values set "
                                           "can't be empty");
        return -1;
    }
    for (;;) {
        /* an empty slot, as in "(a,)" or "(,a)", is the empty value */
        if (lx->type == TOK_IDENT || lx->type == TOK_IN || lx->type == TOK_NOTIN) {
            if (add_value(req, lx->text, lx->len, err) < 0)
                return -1;
            lex_next(lx);
        } else if (add_value(req, "", 0, err) < 0) {
            return -1;
        }
        if (lx->type == TOK_CLOSE) {
            lex_next(lx);
            return 0;
        }
        if (lx->type != TOK_COMMA) {
            label_fail_found(lx, "',' or ')'", err);
            return -1;
        }
        lex_next(lx);
    }
}

/* Parses one requirement; the lexer stands on its first token and ends on the one after it. */
static int parse_requirement(lexer_t *lx, label_req_t *req, lo_err_t *err)
{
    int negated = 0;
    if (lx->type == TOK_NOT) {
        negated = 1;
        lex_next(lx);
    }
    if (lx->type != TOK_IDENT && lx->type != TOK_IN && lx->type != TOK_NOTIN) {
        label_fail_found(lx, "identifier", err);
        return -1;
    }
    const char *why = check_label_key(lx->text, lx->len);
    if (why != NULL) {
        lo_err_set(err, 400, "BadRequest", "unable to parse requirement: invalid label key \"%.*s\": %s", (int)lx->len,
                   lx->text, why);
        return -1;
    }
    req->key = lo_strndup(lx->text, lx->len);
    lex_next(lx);
    if (negated || lx->type == TOK_COMMA || lx->type == TOK_END) {
        req->op = negated ? OP_NOT_EXISTS : OP_EXISTS;
        return 0;
    }
    switch (lx->type) {
    case TOK_EQ:
    case TOK_DEQ:
    case TOK_NEQ:
        req->op = lx->type == TOK_NEQ ? OP_NOT_EQUALS : OP_EQUALS;
        lex_next(lx);
        if (lx->type == TOK_IDENT || lx->type == TOK_IN || lx->type == TOK_NOTIN) {
            if (add_value(req, lx->text, lx->len, err) < 0)
                return -1;
            lex_next(lx);
            return 0;
        }
        if (lx->type == TOK_COMMA || lx->type == TOK_END)
            return add_value(req, "", 0, err); /* "k=" selects the empty value */
        label_fail_found(lx, "identifier", err);
        return -1;
    case TOK_IN:
    case TOK_NOTIN:
        req->op = lx->type == TOK_IN ? OP_IN : OP_NOT_IN;
        lex_next(lx);
        return parse_value_set(lx, req, err);
    default:
        label_fail_found(lx, "'=', '!=', '==', 'in', 'notin'", err);
        return -1;
    }
}

label_selector_t *label_selector_parse(const char *text, lo_err_t *err)
{
    label_selector_t *sel = lo_calloc(1, sizeof(*sel));
    lexer_t lx = {.p = text ? text : ""};
    lex_next(&lx);
    while (lx.type != TOK_END) {
        sel->reqs = grow_for(sel->reqs, sel->nreqs, sizeof(label_req_t));
        label_req_t *req = &sel->reqs[sel->nreqs++];
        memset(req, 0, sizeof(*req));
        if (parse_requirement(&lx, req, err) < 0)
            goto fail;
        if (lx.type == TOK_COMMA) {
            lex_next(&lx);
            if (lx.type == TOK_END) { /* a trailing comma leaves an empty requirement */
                label_fail_found(&lx, "identifier", err);
                goto fail;
            }
        } else if (lx.type != TOK_END) {
            label_fail_found(&lx, "','", err);
            goto fail;
        }
    }
    return sel;
fail:
    label_selector_free(sel);
    return NULL;
}

static int value_in(const label_req_t *req, const char *v)
{
    for (size_t i = 0; i < req->nvalues; i++)
        if (strcmp(req->values[i], v) == 0)
            return 1;
    return 0;
}

static int req_matches(const label_req_t *req, const json_t *labels)
{
    json_t *jv = json_object_get(labels, req->key);
    const char *v = json_string_value(jv); /* a non-string label has no value that can match */
    switch (req->op) {
    case OP_EXISTS:
        return jv != NULL;
    case OP_NOT_EXISTS:
        return jv == NULL;
    case OP_EQUALS:
    case OP_IN:
        return v != NULL && value_in(req, v);
    case OP_NOT_EQUALS:
    case OP_NOT_IN:
        return v == NULL || !value_in(req, v);
    }
    return 0;
}

int label_selector_matches(const label_selector_t *sel, const json_t *labels)
{
    if (!json_is_object(labels))
        labels = NULL;
    for (size_t i = 0; i < sel->nreqs; i++)
        if (!req_matches(&sel->reqs[i], labels))
            return 0;
    return 1;
}

int label_selector_empty(const label_selector_t *sel)
{
    return sel->nreqs == 0;
}

void label_selector_free(label_selector_t *sel)
{
    if (sel == NULL)
        return;
    for (size_t i = 0; i < sel->nreqs; i++) {
        free(sel->reqs[i].key);
        for (size_t j = 0; j < sel->reqs[i].nvalues; j++)
            free(sel->reqs[i].values[j]);
        free(sel->reqs[i].values);
    }
    free(sel->reqs);
    free(sel);
}

/* ------------------------------------------------------------------ */
/* Field selectors                                                     */
/* ------------------------------------------------------------------ */

typedef struct field_req {
    char *path;
    char *value;
    int negated; /* != */
} field_req_t;

struct field_selector {
    field_req_t *reqs;
    size_t nreqs;
};

/* Removes the escaping backslashes of a field selector value. New string. */
static char *unescape_value(const char *s, size_t len, int *ok)
{
    char *out = lo_malloc(len + 1);
    size_t n = 0;
    *ok = 1;
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '\\') {
            if (i + 1 >= len || strchr("\\,=!", s[i + 1]) == NULL)
                *ok = 0; /* kube: invalid escape sequence */
            else
                i++;
        }
        out[n++] = s[i];
    }
    out[n] = '\0';
    return out;
}

static int path_supported(const char *path, size_t len, const char *const *supported)
{
    for (size_t i = 0; supported && supported[i]; i++)
        if (strlen(supported[i]) == len && memcmp(supported[i], path, len) == 0)
            return 1;
    return 0;
}

/* Parses one term s[0..len); appends it to sel. */
static int parse_field_term(field_selector_t *sel, const char *s, size_t len, const char *const *supported,
                            lo_err_t *err)
{
    /* the first operator, scanning left to right; "!=" and "==" win over "=" */
    size_t i, oplen = 0;
    int negated = 0;
    for (i = 0; i < len; i++) {
        if (s[i] == '\\') {
            i++;
            continue;
        }
        if (s[i] == '!' && i + 1 < len && s[i + 1] == '=') {
            oplen = 2, negated = 1;
            break;
        }
        if (s[i] == '=') {
            oplen = (i + 1 < len && s[i + 1] == '=') ? 2 : 1;
            break;
        }
    }
    if (oplen == 0) {
        lo_err_set(err, 400, "BadRequest", "invalid selector: '%.*s'; can't understand '%.*s'", (int)len, s, (int)len,
                   s);
        return -1;
    }
    size_t pstart = 0, pend = i;
    while (pstart < pend && isspace((unsigned char)s[pstart]))
        pstart++;
    while (pend > pstart && isspace((unsigned char)s[pend - 1]))
        pend--;
    if (!path_supported(s + pstart, pend - pstart, supported)) {
        lo_err_set(err, 400, "BadRequest", "field label not supported: %.*s", (int)(pend - pstart), s + pstart);
        return -1;
    }
    int ok;
    char *value = unescape_value(s + i + oplen, len - i - oplen, &ok);
    if (!ok) {
        lo_err_set(err, 400, "BadRequest", "invalid selector: '%.*s'; invalid escape sequence in value", (int)len, s);
        free(value);
        return -1;
    }
    sel->reqs = grow_for(sel->reqs, sel->nreqs, sizeof(field_req_t));
    field_req_t *req = &sel->reqs[sel->nreqs++];
    req->path = lo_strndup(s + pstart, pend - pstart);
    req->value = value;
    req->negated = negated;
    return 0;
}

field_selector_t *field_selector_parse(const char *text, const char *const *supported, lo_err_t *err)
{
    field_selector_t *sel = lo_calloc(1, sizeof(*sel));
    const char *s = text ? text : "";
    size_t start = 0, i = 0;
    for (;; i++) {
        if (s[i] == '\\' && s[i + 1] != '\0') {
            i++;
            continue;
        }
        if (s[i] != ',' && s[i] != '\0')
            continue;
        size_t len = i - start;
        size_t blank = 0;
        while (blank < len && isspace((unsigned char)s[start + blank]))
            blank++;
        if (blank < len && parse_field_term(sel, s + start, len, supported, err) < 0) {
            field_selector_free(sel);
            return NULL;
        }
        if (s[i] == '\0')
            break;
        start = i + 1;
    }
    return sel;
}

/* Shortest text that reads back as d. New string. */
static char *real_text(double d)
{
    char buf[40];
    lo_real_text(d, buf, sizeof(buf));
    return lo_strdup(buf);
}

/* The string form of obj at a dotted path: strings as they are, numbers and booleans printed, else "". */
static char *field_value(const json_t *obj, const char *path)
{
    const json_t *cur = obj;
    const char *p = path;
    while (cur != NULL && *p) {
        const char *dot = strchr(p, '.');
        size_t n = dot ? (size_t)(dot - p) : strlen(p);
        cur = json_is_object(cur) ? json_object_getn(cur, p, n) : NULL;
        p += n + (dot ? 1 : 0);
    }
    switch (cur ? json_typeof(cur) : JSON_NULL) {
    case JSON_STRING:
        return lo_strdup(json_string_value(cur));
    case JSON_INTEGER:
        return lo_sprintf("%" JSON_INTEGER_FORMAT, json_integer_value(cur));
    case JSON_REAL:
        return real_text(json_real_value(cur));
    case JSON_TRUE:
        return lo_strdup("true");
    case JSON_FALSE:
        return lo_strdup("false");
    default:
        return lo_strdup("");
    }
}

int field_selector_matches(const field_selector_t *sel, const json_t *obj)
{
    for (size_t i = 0; i < sel->nreqs; i++) {
        char *v = field_value(obj, sel->reqs[i].path);
        int equal = strcmp(v, sel->reqs[i].value) == 0;
        free(v);
        if (equal == sel->reqs[i].negated)
            return 0;
    }
    return 1;
}

const char *field_selector_exact(const field_selector_t *sel, const char *path)
{
    for (size_t i = 0; i < sel->nreqs; i++)
        if (!sel->reqs[i].negated && strcmp(sel->reqs[i].path, path) == 0)
            return sel->reqs[i].value;
    return NULL;
}

void field_selector_free(field_selector_t *sel)
{
    if (sel == NULL)
        return;
    for (size_t i = 0; i < sel->nreqs; i++) {
        free(sel->reqs[i].path);
        free(sel->reqs[i].value);
    }
    free(sel->reqs);
    free(sel);
}
