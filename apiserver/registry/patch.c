/*
 * patch.c - the PATCH formats on jansson trees: JSON patch (RFC 6902 with
 * JSON Pointer, RFC 6901), JSON merge patch (RFC 7386), and the refusal of
 * strategic-merge directives. Pure functions: no I/O, no global state.
 *
 * Error codes. kube-apiserver (endpoints/handlers/patch.go, applying
 * evanphx/json-patch v4) answers a JSON patch body that does not decode as
 * a list of operations with 400 BadRequest, more than 10000 operations with
 * 413 RequestEntityTooLarge, and every error raised while applying it (a
 * failed `test`, a missing path, a bad index, an unknown op) with 422
 * Invalid and the fixed message "the server rejected our request due to an
 * error in our request" (its generic 422 drops the detail). We keep the
 * codes and that sentence, and append the detail, so users learn which
 * operation failed. One deliberate difference: whatever is wrong in the
 * patch itself, seen without the document (op missing or unknown, path or
 * from not a string, value missing, pointer syntax, moving a location into
 * its own child), is 400 BadRequest here, as RFC 5789 asks for a malformed
 * patch document; kube reports the op-level ones as 422. Everything that
 * depends on the document is 422, as in kube.
 *
 * Semantics follow the RFCs where evanphx v4 is laxer:
 *   - array indexes are "0" or digits without a leading zero ("01" and
 *     "-1" are not indexes; evanphx accepts both, counting -1 from the end);
 *   - `test` of a missing location fails (evanphx lets it pass when the
 *     value is null), and numbers compare by value, 1 == 1.0 (evanphx
 *     compares the text, so 1 != 1.0);
 *   - `move` of a location into one of its children is refused.
 *
 * Limits, so that hostile input costs little and never crashes: at most
 * PATCH_MAX_OPS operations; `copy` may add at most PATCH_MAX_COPY_BYTES of
 * JSON text in total (kube arms the same guard at 3 MiB; without it each
 * copy of the document into itself doubles it); no operation may make the
 * document nest deeper than CODEC_MAX_DEPTH, the depth the codec reads
 * back, so every result can be stored and decoded again. Pointers are
 * walked iteratively, so their length costs nothing but time; recursion
 * (depth, equality) is bounded by the nesting of the input values.
 */
#include <assert.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "langop/core/codec.h"
#include "langop/registry/patch.h"

#define PATCH_MAX_OPS 10000
#define PATCH_MAX_COPY_BYTES (3 * 1024 * 1024)
#define PATCH_MAX_DEPTH CODEC_MAX_DEPTH
/* Guard for the strategic walk when a tree did not come through the codec. */
#define STRATEGIC_MAX_DEPTH 1024

/* kube's fixed message for a 422 from a JSON patch that did not apply. */
#define KUBE_PATCH_REJECTED "the server rejected our request due to an error in our request"

/* ---------------------------------------------------------------- ops --- */

typedef enum op_kind { OP_ADD, OP_REMOVE, OP_REPLACE, OP_MOVE, OP_COPY, OP_TEST } op_kind_t;

static const char *const op_names[] = { "add", "remove", "replace", "move", "copy", "test" };

/* One operation, borrowed from the patch tree. */
typedef struct op {
    op_kind_t kind;
    const char *path;       /* JSON Pointer; may hold NUL bytes, hence the length */
    size_t pathlen;
    const char *from;       /* move and copy only */
    size_t fromlen;
    const json_t *value;    /* add, replace and test only */
} op_t;

static bool op_needs_value(op_kind_t k) { return k == OP_ADD || k == OP_REPLACE || k == OP_TEST; }
static bool op_needs_from(op_kind_t k) { return k == OP_MOVE || k == OP_COPY; }

/* ------------------------------------------------------ JSON Pointer --- */

/* RFC 6901 syntax: "" or "/"-prefixed tokens whose '~' is always "~0" or "~1". */
static bool ptr_valid(const char *p, size_t len)
{
    if (len == 0)
        return true;
    if (p[0] != '/')
        return false;
    for (size_t i = 0; i < len; i++)
        if (p[i] == '~' && (i + 1 == len || (p[i + 1] != '0' && p[i + 1] != '1')))
            return false;
    return true;
}

/* Number of reference tokens: the containers a value at p sits inside. */
static size_t ptr_tokens(const char *p, size_t len)
{
    size_t n = 0;
    for (size_t i = 0; i < len; i++)
        n += p[i] == '/';
    return n;
}

/* Decodes the escaped token raw[0..n) into out (n + 1 bytes); returns its length. */
static size_t token_decode(const char *raw, size_t n, char *out)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (raw[i] == '~') {
            out[k++] = raw[i + 1] == '1' ? '/' : '~';
            i++;
        } else {
            out[k++] = raw[i];
        }
    }
    out[k] = '\0';
    return k;
}

/*
 * Array index per RFC 6901: "0" or [1-9][0-9]*, below size, or equal to
 * size (also spelled "-") when allow_end is set (the add position "after
 * the last"). Anything else, including values too big for size_t, is -1.
 */
static int array_index(const char *tok, size_t n, size_t size, bool allow_end, size_t *out)
{
    if (n == 1 && tok[0] == '-') {
        if (!allow_end)
            return -1;
        *out = size;
        return 0;
    }
    if (n == 0 || n > 19 || (n > 1 && tok[0] == '0'))
        return -1;
    size_t v = 0;
    for (size_t i = 0; i < n; i++) {
        if (tok[i] < '0' || tok[i] > '9')
            return -1;
        v = v * 10 + (size_t)(tok[i] - '0');   /* 19 digits fit in 64 bits */
    }
    if (v > size || (v == size && !allow_end))
        return -1;
    *out = v;
    return 0;
}

/* The child named by a decoded token, borrowed; NULL if there is none. */
static json_t *child_get(json_t *c, const char *tok, size_t n)
{
    size_t i;
    if (json_is_object(c))
        return json_object_getn(c, tok, n);
    if (json_is_array(c) && array_index(tok, n, json_array_size(c), false, &i) == 0)
        return json_array_get(c, i);
    return NULL;
}

/*
 * Where a pointer leads: the container that holds its last token, or the
 * document itself when the pointer is "". key lives in a caller's buffer.
 */
typedef struct target {
    json_t *parent;     /* borrowed; NULL for the whole document */
    const char *key;    /* decoded last token */
    size_t keylen;
} target_t;

/*
 * Walks every token but the last. keybuf needs len + 1 bytes. On failure
 * fills why (the detail of a 422) and returns -1.
 */
static int resolve(json_t *root, const char *p, size_t len, char *keybuf, target_t *t,
                   char *why, size_t whysz)
{
    json_t *cur = root;
    size_t pos = 0;

    t->parent = NULL;
    t->key = keybuf;
    t->keylen = 0;
    keybuf[0] = '\0';
    if (len == 0)
        return 0;
    for (;;) {
        size_t end = pos + 1;
        while (end < len && p[end] != '/')
            end++;
        if (!json_is_object(cur) && !json_is_array(cur)) {
            if (pos == 0)
                snprintf(why, whysz, "path %.*s: the document is not an object or array", (int)len, p);
            else
                snprintf(why, whysz, "path %.*s: %.*s is not an object or array", (int)len, p, (int)pos, p);
            return -1;
        }
        size_t klen = token_decode(p + pos + 1, end - pos - 1, keybuf);
        if (end == len) {
            t->parent = cur;
            t->keylen = klen;
            return 0;
        }
        json_t *next = child_get(cur, keybuf, klen);
        if (!next) {
            snprintf(why, whysz, "path %.*s: %.*s does not exist", (int)len, p, (int)end, p);
            return -1;
        }
        cur = next;
        pos = end;
    }
}

/* The value a target names, borrowed; NULL if absent. */
static json_t *target_get(json_t *root, const target_t *t)
{
    return t->parent ? child_get(t->parent, t->key, t->keylen) : root;
}

/* ------------------------------------------------------------ values --- */

/* Nesting of v (a scalar is 0, "{}" is 1), not counted beyond cap + 1. */
static size_t depth_of(const json_t *v, size_t cap)
{
    size_t max = 0, d, i;
    const char *key;
    json_t *child;

    if (!json_is_object(v) && !json_is_array(v))
        return 0;
    if (cap == 0)
        return 1;
    if (json_is_array(v)) {
        json_array_foreach(v, i, child) {
            if ((d = depth_of(child, cap - 1)) > max)
                max = d;
            if (max >= cap)
                break;
        }
    } else {
        json_object_foreach((json_t *)v, key, child) {
            if ((d = depth_of(child, cap - 1)) > max)
                max = d;
            if (max >= cap)
                break;
        }
    }
    return 1 + max;
}

/* JSON equality of RFC 6902 4.6: numbers by value, objects regardless of key order. */
static bool values_equal(const json_t *a, const json_t *b)
{
    if (json_is_number(a) && json_is_number(b)) {
        if (json_is_integer(a) && json_is_integer(b))
            return json_integer_value(a) == json_integer_value(b);
        if (json_is_real(a) && json_is_real(b))
            return json_real_value(a) == json_real_value(b);
        const json_t *r = json_is_real(a) ? a : b, *n = json_is_real(a) ? b : a;
        double d = json_real_value(r);
        /* Exact only for integral reals inside the int64 range. */
        if (!(d >= -9223372036854775808.0 && d < 9223372036854775808.0) || d != floor(d))
            return false;
        return (json_int_t)d == json_integer_value(n);
    }
    if (json_typeof(a) != json_typeof(b))
        return false;
    switch (json_typeof(a)) {
    case JSON_STRING:
        return json_string_length(a) == json_string_length(b) &&
               memcmp(json_string_value(a), json_string_value(b), json_string_length(a)) == 0;
    case JSON_ARRAY:
        if (json_array_size(a) != json_array_size(b))
            return false;
        for (size_t i = 0; i < json_array_size(a); i++)
            if (!values_equal(json_array_get(a, i), json_array_get(b, i)))
                return false;
        return true;
    case JSON_OBJECT: {
        const char *key;
        size_t klen;
        json_t *va;
        if (json_object_size(a) != json_object_size(b))
            return false;
        json_object_keylen_foreach((json_t *)a, key, klen, va) {
            const json_t *vb = json_object_getn(b, key, klen);
            if (!vb || !values_equal(va, vb))
                return false;
        }
        return true;
    }
    default:
        return true;    /* true, false, null: the type says it all */
    }
}

static json_t *copy_or_die(const json_t *v)
{
    json_t *c = json_deep_copy(v);
    if (!c)
        lo_fatal("patch: out of memory copying a JSON value");
    return c;
}

/* --------------------------------------------------------- applying --- */

/* What an operation is doing: its root, scratch buffers and failure detail. */
typedef struct apply {
    json_t *root;           /* owned; may be replaced by add/replace/move/copy at "" */
    size_t copied;          /* bytes of JSON text added by `copy` so far */
    char why[512];
} apply_t;

/* Puts value (stolen) where t names, with add semantics. */
static int target_add(apply_t *a, const target_t *t, const char *p, size_t len, json_t *value)
{
    size_t tokens = ptr_tokens(p, len), i;

    if (tokens > PATCH_MAX_DEPTH || tokens + depth_of(value, PATCH_MAX_DEPTH - tokens) > PATCH_MAX_DEPTH) {
        snprintf(a->why, sizeof a->why, "path %.*s: the document would nest deeper than %d levels",
                 (int)len, p, PATCH_MAX_DEPTH);
        goto fail;
    }
    if (!t->parent) {
        json_decref(a->root);
        a->root = value;
        return 0;
    }
    if (json_is_object(t->parent)) {
        if (json_object_setn_new(t->parent, t->key, t->keylen, value) < 0)
            lo_fatal("patch: out of memory");
        return 0;
    }
    if (array_index(t->key, t->keylen, json_array_size(t->parent), true, &i) < 0) {
        snprintf(a->why, sizeof a->why, "path %.*s: \"%.*s\" is not an index for inserting into an array of %zu items",
                 (int)len, p, (int)t->keylen, t->key, json_array_size(t->parent));
        goto fail;
    }
    if (json_array_insert_new(t->parent, i, value) < 0)
        lo_fatal("patch: out of memory");
    return 0;
fail:
    json_decref(value);
    return -1;
}

/* Removes what t names; the caller checked that it exists. */
static void target_remove(const target_t *t)
{
    size_t i;
    if (json_is_object(t->parent)) {
        json_object_deln(t->parent, t->key, t->keylen);
    } else if (array_index(t->key, t->keylen, json_array_size(t->parent), false, &i) == 0) {
        json_array_remove(t->parent, i);
    }
}

/* Resolves p and checks that it names an existing value (not "" if whole is false). */
static json_t *locate(apply_t *a, const char *p, size_t len, char *keybuf, target_t *t, bool whole_ok)
{
    json_t *v;
    if (resolve(a->root, p, len, keybuf, t, a->why, sizeof a->why) < 0)
        return NULL;
    if (!t->parent && !whole_ok) {
        snprintf(a->why, sizeof a->why, "the whole document cannot be removed or moved");
        return NULL;
    }
    if (!(v = target_get(a->root, t)))
        snprintf(a->why, sizeof a->why, "path %.*s does not exist", (int)len, p);
    return v;
}

static int apply_add(apply_t *a, const op_t *op, char *kb)
{
    target_t t;
    if (resolve(a->root, op->path, op->pathlen, kb, &t, a->why, sizeof a->why) < 0)
        return -1;
    return target_add(a, &t, op->path, op->pathlen, copy_or_die(op->value));
}

static int apply_remove(apply_t *a, const op_t *op, char *kb)
{
    target_t t;
    if (!locate(a, op->path, op->pathlen, kb, &t, false))
        return -1;
    target_remove(&t);
    return 0;
}

static int apply_replace(apply_t *a, const op_t *op, char *kb)
{
    target_t t;
    if (!locate(a, op->path, op->pathlen, kb, &t, true))
        return -1;
    /* The location exists, so for arrays add-after-remove lands on the same index. */
    if (t.parent)
        target_remove(&t);
    return target_add(a, &t, op->path, op->pathlen, copy_or_die(op->value));
}

static int apply_test(apply_t *a, const op_t *op, char *kb)
{
    target_t t;
    json_t *v = locate(a, op->path, op->pathlen, kb, &t, true);
    if (v && values_equal(v, op->value))
        return 0;
    if (v)
        snprintf(a->why, sizeof a->why, "testing value %.*s failed", (int)op->pathlen, op->path);
    return -1;
}

static int apply_move(apply_t *a, const op_t *op, char *kb)
{
    target_t t;
    json_t *v;

    if (op->fromlen == op->pathlen && memcmp(op->from, op->path, op->pathlen) == 0)
        return locate(a, op->from, op->fromlen, kb, &t, true) ? 0 : -1;
    if (!(v = locate(a, op->from, op->fromlen, kb, &t, false)))
        return -1;
    json_incref(v);
    target_remove(&t);
    if (resolve(a->root, op->path, op->pathlen, kb, &t, a->why, sizeof a->why) < 0) {
        json_decref(v);
        return -1;
    }
    return target_add(a, &t, op->path, op->pathlen, v);
}

static int apply_copy(apply_t *a, const op_t *op, char *kb)
{
    target_t t;
    json_t *v = locate(a, op->from, op->fromlen, kb, &t, true);
    if (!v)
        return -1;
    /* Measure before copying, so a bomb stops at the limit, not at memory's end. */
    a->copied += json_dumpb(v, NULL, 0, JSON_COMPACT | JSON_ENCODE_ANY);
    if (a->copied > PATCH_MAX_COPY_BYTES) {
        snprintf(a->why, sizeof a->why, "copy operations would add more than %d bytes to the document",
                 PATCH_MAX_COPY_BYTES);
        return -1;
    }
    v = copy_or_die(v);
    if (resolve(a->root, op->path, op->pathlen, kb, &t, a->why, sizeof a->why) < 0) {
        json_decref(v);
        return -1;
    }
    return target_add(a, &t, op->path, op->pathlen, v);
}

typedef int (*apply_fn)(apply_t *, const op_t *, char *);
static const apply_fn apply_fns[] = { apply_add, apply_remove, apply_replace, apply_move, apply_copy, apply_test };

/* ---------------------------------------------------------- parsing --- */

/* Reads a string member of an operation; -1 if present but not a string, 0 absent, 1 read. */
static int op_string(const json_t *o, const char *name, const char **s, size_t *len)
{
    const json_t *v = json_object_get(o, name);
    if (!v)
        return 0;
    if (!json_is_string(v))
        return -1;
    *s = json_string_value(v);
    *len = json_string_length(v);
    return 1;
}

/* Fills op from the i-th operation, or answers 400 naming what is wrong. */
static int op_parse(const json_t *o, size_t i, op_t *op, lo_err_t *err)
{
    const char *name = NULL;
    size_t namelen = 0;
    size_t k;

    memset(op, 0, sizeof *op);
    if (!json_is_object(o)) {
        lo_err_set(err, 400, "BadRequest", "json patch operation %zu is not an object", i);
        return -1;
    }
    if (op_string(o, "op", &name, &namelen) <= 0) {
        lo_err_set(err, 400, "BadRequest", "json patch operation %zu has no \"op\" string", i);
        return -1;
    }
    for (k = 0; k < sizeof op_names / sizeof op_names[0]; k++)
        if (strlen(op_names[k]) == namelen && memcmp(op_names[k], name, namelen) == 0)
            break;
    if (k == sizeof op_names / sizeof op_names[0]) {
        lo_err_set(err, 400, "BadRequest",
                   "json patch operation %zu: unknown op \"%.*s\" (want add, remove, replace, move, copy or test)",
                   i, namelen > 64 ? 64 : (int)namelen, name);
        return -1;
    }
    op->kind = (op_kind_t)k;
    if (op_string(o, "path", &op->path, &op->pathlen) <= 0) {
        lo_err_set(err, 400, "BadRequest", "json patch operation %zu (%s) has no \"path\" string", i, op_names[k]);
        return -1;
    }
    if (!ptr_valid(op->path, op->pathlen)) {
        lo_err_set(err, 400, "BadRequest", "json patch operation %zu (%s): \"path\" %.*s is not a JSON pointer",
                   i, op_names[k], (int)op->pathlen, op->path);
        return -1;
    }
    if (op_needs_value(op->kind) && !(op->value = json_object_get(o, "value"))) {
        lo_err_set(err, 400, "BadRequest", "json patch operation %zu (%s) has no \"value\"", i, op_names[k]);
        return -1;
    }
    if (!op_needs_from(op->kind))
        return 0;
    if (op_string(o, "from", &op->from, &op->fromlen) <= 0) {
        lo_err_set(err, 400, "BadRequest", "json patch operation %zu (%s) has no \"from\" string", i, op_names[k]);
        return -1;
    }
    if (!ptr_valid(op->from, op->fromlen)) {
        lo_err_set(err, 400, "BadRequest", "json patch operation %zu (%s): \"from\" %.*s is not a JSON pointer",
                   i, op_names[k], (int)op->fromlen, op->from);
        return -1;
    }
    if (op->kind == OP_MOVE && op->pathlen > op->fromlen && op->path[op->fromlen] == '/' &&
        memcmp(op->path, op->from, op->fromlen) == 0) {
        lo_err_set(err, 400, "BadRequest", "json patch operation %zu (move): %.*s cannot be moved into its own child %.*s",
                   i, (int)op->fromlen, op->from, (int)op->pathlen, op->path);
        return -1;
    }
    return 0;
}

/* Largest pointer of the patch, to size the token buffer once. */
static size_t ops_max_pointer(const op_t *ops, size_t n)
{
    size_t max = 0;
    for (size_t i = 0; i < n; i++) {
        if (ops[i].pathlen > max)
            max = ops[i].pathlen;
        if (ops[i].fromlen > max)
            max = ops[i].fromlen;
    }
    return max;
}

json_t *patch_json(const json_t *doc, const json_t *patch, lo_err_t *err)
{
    op_t *ops = NULL;
    char *keybuf = NULL;
    apply_t a = { .root = NULL };
    size_t n, i;

    assert(doc);
    if (!json_is_array(patch)) {
        lo_err_set(err, 400, "BadRequest", "a json patch must be a JSON array of operations");
        return NULL;
    }
    n = json_array_size(patch);
    if (n > PATCH_MAX_OPS) {
        lo_err_set(err, 413, "RequestEntityTooLarge",
                   "Request entity too large: The allowed maximum operations in a JSON patch is %d, got %zu",
                   PATCH_MAX_OPS, n);
        return NULL;
    }
    ops = lo_calloc(n ? n : 1, sizeof *ops);
    for (i = 0; i < n; i++)
        if (op_parse(json_array_get(patch, i), i, &ops[i], err) < 0)
            goto Exit;

    keybuf = lo_malloc(ops_max_pointer(ops, n) + 1);
    a.root = copy_or_die(doc);
    for (i = 0; i < n; i++) {
        if (apply_fns[ops[i].kind](&a, &ops[i], keybuf) < 0) {
            lo_err_set(err, 422, "Invalid", KUBE_PATCH_REJECTED ": json patch operation %zu (%s): %s",
                       i, op_names[ops[i].kind], a.why);
            json_decref(a.root);
            a.root = NULL;
            goto Exit;
        }
    }
Exit:
    free(keybuf);
    free(ops);
    return a.root;
}

/* ------------------------------------------------------ merge patch --- */

/* RFC 7386 MergePatch into target (an object the caller owns), patch an object. */
static void merge_into(json_t *target, const json_t *patch)
{
    const char *key;
    size_t klen;
    json_t *pv;

    json_object_keylen_foreach((json_t *)patch, key, klen, pv) {
        if (json_is_null(pv)) {
            json_object_deln(target, key, klen);
        } else if (json_is_object(pv)) {
            json_t *cur = json_object_getn(target, key, klen);
            if (!json_is_object(cur)) {
                cur = json_object();
                if (!cur || json_object_setn_new(target, key, klen, cur) < 0)
                    lo_fatal("patch: out of memory");
            }
            merge_into(cur, pv);
        } else if (json_object_setn_new(target, key, klen, copy_or_die(pv)) < 0) {
            lo_fatal("patch: out of memory");
        }
    }
}

json_t *patch_merge(const json_t *doc, const json_t *patch)
{
    json_t *result;

    if (!json_is_object(patch))
        return patch ? copy_or_die(patch) : json_null();
    result = json_is_object(doc) ? copy_or_die(doc) : json_object();
    if (!result)
        lo_fatal("patch: out of memory");
    merge_into(result, patch);
    return result;
}

/* -------------------------------------------------- strategic check --- */

static int strategic_walk(const json_t *v, int depth, lo_err_t *err)
{
    const char *key;
    size_t klen, i;
    json_t *child;

    if (depth > STRATEGIC_MAX_DEPTH) {
        lo_err_set(err, 400, "BadRequest", "the patch nests deeper than %d levels", STRATEGIC_MAX_DEPTH);
        return -1;
    }
    if (json_is_array(v)) {
        json_array_foreach(v, i, child)
            if (strategic_walk(child, depth + 1, err) < 0)
                return -1;
        return 0;
    }
    if (!json_is_object(v))
        return 0;
    json_object_keylen_foreach((json_t *)v, key, klen, child) {
        if (klen > 0 && key[0] == '$') {
            lo_err_set(err, 400, "BadRequest",
                       "strategic merge patch directive \"%.*s\" is not supported: this API declares no "
                       "list merge keys; send the change as application/merge-patch+json or application/json-patch+json",
                       klen > 128 ? 128 : (int)klen, key);
            return -1;
        }
        if (strategic_walk(child, depth + 1, err) < 0)
            return -1;
    }
    return 0;
}

int patch_check_strategic(const json_t *patch, lo_err_t *err)
{
    return strategic_walk(patch, 0, err);
}
