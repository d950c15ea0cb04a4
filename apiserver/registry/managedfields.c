/*
 * managedfields.c - server-side apply: field sets (FieldsV1), the apply
 * merge, pruning, conflicts, and Update bookkeeping.
 *
 * The semantics are those of sigs.k8s.io/structured-merge-diff as
 * kube-apiserver runs it, re-derived here for our JSON trees:
 *
 *  - A field set is kept in its serialized FieldsV1 form: a JSON object whose
 *    keys are path elements ("f:name", "k:{...}", "v:...", "i:N"). A node is a
 *    member of the set (its own path is in the set) when it is {} or carries
 *    ".": {}; a node with children and no "." only leads to members. The root
 *    is never a member. Every set this module returns has its keys sorted at
 *    each level, "." first, which is the order the Go serializer writes.
 *  - The set of an object (set_walk) holds every scalar, every atomic list
 *    or map, every list item (member, with its fields under it), empty or
 *    null maps, and map entries that the schema does not declare by name
 *    (additionalProperties, preserve-unknown-fields), which is where "."
 *    comes from in an Apply set.
 *  - The comparison of two objects (cmp_into) yields Added, Modified and
 *    Removed sets; a container that appears or disappears is itself added or
 *    removed, which is where "." comes from in an Update set.
 *  - apiVersion, kind, the metadata node itself and the server-owned
 *    metadata fields are never tracked (kube's strip set), whatever the walk
 *    finds.
 *
 * Schemas: a kind's openAPIV3Schema gives list types (x-kubernetes-list-type
 * map with x-kubernetes-list-map-keys, set, or atomic by default) and map
 * types (x-kubernetes-map-type atomic, else granular). metadata has no
 * properties in the kind files, so the ObjectMeta fields that are tracked
 * come from a small built-in schema (labels and annotations are maps of
 * strings, finalizers a set, ownerReferences a map keyed by uid). Where no
 * schema applies the shape is deduced from the value, as kube does for
 * preserve-unknown-fields: objects are granular, lists are atomic.
 *
 * No global state: everything a call needs lives in an mf_ctx_t on its stack.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include "langop/registry/managedfields.h"

/* ---------------------------------------------------------------------- */
/* Schema access                                                          */

/* What we track of ObjectMeta; everything else in metadata is deduced and
 * the server-owned fields are stripped afterwards. */
static const char meta_schema_text[] =
    "{\"type\":\"object\",\"properties\":{"
    "\"labels\":{\"type\":\"object\",\"additionalProperties\":{\"type\":\"string\"}},"
    "\"annotations\":{\"type\":\"object\",\"additionalProperties\":{\"type\":\"string\"}},"
    "\"finalizers\":{\"type\":\"array\",\"x-kubernetes-list-type\":\"set\",\"items\":{\"type\":\"string\"}},"
    "\"ownerReferences\":{\"type\":\"array\",\"x-kubernetes-list-type\":\"map\","
    "\"x-kubernetes-list-map-keys\":[\"uid\"],\"items\":{\"type\":\"object\",\"properties\":{"
    "\"apiVersion\":{\"type\":\"string\"},\"kind\":{\"type\":\"string\"},\"name\":{\"type\":\"string\"},"
    "\"uid\":{\"type\":\"string\"},\"controller\":{\"type\":\"boolean\"},"
    "\"blockOwnerDeletion\":{\"type\":\"boolean\"}}}},"
    "\"generateName\":{\"type\":\"string\"}}}";

/* Paths never recorded in a managedFields entry (kube's strip set, plus the
 * deletion fields, which only the server sets). */
static const char strip_set_text[] =
    "{\"f:apiVersion\":{},\"f:kind\":{},\"f:metadata\":{\".\":{},"
    "\"f:clusterName\":{},\"f:creationTimestamp\":{},\"f:deletionGracePeriodSeconds\":{},"
    "\"f:deletionTimestamp\":{},\"f:generation\":{},\"f:managedFields\":{},\"f:name\":{},"
    "\"f:namespace\":{},\"f:resourceVersion\":{},\"f:selfLink\":{},\"f:uid\":{}}}";

typedef struct mf_ctx {
    const json_t *root;  /* borrowed: the kind's openAPIV3Schema, or NULL */
    const json_t *meta;  /* borrowed: meta_schema_text, parsed once */
    const json_t *strip; /* borrowed: strip_set_text, parsed once */
    char *bad;           /* first malformed list found by set_walk, caller frees; or NULL */
} mf_ctx_t;

/* The built-in documents, parsed on first use and read-only from then on (any thread). */
static json_t *builtin_meta, *builtin_strip;
static pthread_once_t builtin_once = PTHREAD_ONCE_INIT;

static void builtin_parse(void)
{
    builtin_meta = json_loads(meta_schema_text, 0, NULL);
    builtin_strip = json_loads(strip_set_text, 0, NULL);
    if (builtin_meta == NULL || builtin_strip == NULL)
        lo_fatal("managedfields: built-in schema does not parse");
}

static void ctx_init(mf_ctx_t *c, const schema_kind_t *k)
{
    pthread_once(&builtin_once, builtin_parse);
    c->root = k ? k->openapi_schema : NULL;
    c->meta = builtin_meta;
    c->strip = builtin_strip;
    c->bad = NULL;
}

static void ctx_free(mf_ctx_t *c)
{
    free(c->bad);
}

enum node_kind {
    NK_LEAF,     /* scalar, atomic list or map, or a value that does not fit its schema */
    NK_STRUCT,   /* object merged field by field */
    NK_LIST_MAP, /* list items identified by their key fields */
    NK_LIST_SET, /* list of scalars identified by value */
};

static int str_is(const json_t *j, const char *s)
{
    const char *v = json_string_value(j);
    return v != NULL && strcmp(v, s) == 0;
}

/* The kind of value v (may be NULL: judged on the schema alone) under sch
 * (NULL: no schema, deduce from the value). */
static enum node_kind node_kind(const json_t *sch, const json_t *v)
{
    if (sch == NULL)
        return json_is_object(v) ? NK_STRUCT : NK_LEAF;
    const json_t *type = json_object_get(sch, "type");
    if (str_is(type, "array")) {
        if (v != NULL && !json_is_array(v))
            return NK_LEAF;
        const json_t *lt = json_object_get(sch, "x-kubernetes-list-type");
        if (str_is(lt, "map") && json_array_size(json_object_get(sch, "x-kubernetes-list-map-keys")) > 0)
            return NK_LIST_MAP;
        if (str_is(lt, "set"))
            return NK_LIST_SET;
        return NK_LEAF;
    }
    if (str_is(type, "object") || json_object_get(sch, "properties") ||
        json_object_get(sch, "additionalProperties") ||
        (type == NULL && json_is_true(json_object_get(sch, "x-kubernetes-preserve-unknown-fields")))) {
        if (v != NULL && !json_is_object(v))
            return NK_LEAF;
        if (str_is(json_object_get(sch, "x-kubernetes-map-type"), "atomic"))
            return NK_LEAF;
        return NK_STRUCT;
    }
    return NK_LEAF;
}

/* The kind shared by l and r (either may be NULL); a disagreement is a leaf. */
static enum node_kind pair_kind(const json_t *sch, const json_t *l, const json_t *r)
{
    if (l == NULL)
        return node_kind(sch, r);
    enum node_kind kl = node_kind(sch, l);
    if (r == NULL)
        return kl;
    return kl == node_kind(sch, r) ? kl : NK_LEAF;
}

/* Schema of field key of an object under sch (borrowed, NULL when none);
 * *declared says whether the schema names the field. */
static const json_t *child_schema(const mf_ctx_t *c, const json_t *sch, const char *key, int *declared)
{
    int dummy;
    if (declared == NULL)
        declared = &dummy;
    *declared = 0;
    if (sch == NULL)
        return NULL;
    if (sch == c->root && strcmp(key, "metadata") == 0) {
        *declared = 1;
        return c->meta;
    }
    const json_t *f = json_object_get(json_object_get(sch, "properties"), key);
    if (f != NULL) {
        *declared = 1;
        return f;
    }
    const json_t *ap = json_object_get(sch, "additionalProperties");
    return json_is_object(ap) ? ap : NULL;
}

/* ---------------------------------------------------------------------- */
/* Path elements                                                          */

/* "f:<key>", the path element of a struct field; caller frees (a create makes one per field: no printf). */
static char *field_pe(const char *key)
{
    size_t n = strlen(key);
    char *pe = lo_malloc(n + 3);
    pe[0] = 'f';
    pe[1] = ':';
    memcpy(pe + 2, key, n + 1);
    return pe;
}

/* The path element of a list item ("k:{...}" with the keys sorted by name,
 * or "v:<json>"); caller frees. NULL when the item cannot be identified
 * (a key missing without a schema default, or a set item that is not a
 * scalar). */
static char *item_pe(const json_t *sch, enum node_kind nk, const json_t *item)
{
    if (nk == NK_LIST_SET) {
        if (json_is_object(item) || json_is_array(item))
            return NULL;
        char *v = json_dumps(item, JSON_COMPACT | JSON_ENCODE_ANY);
        char *pe = lo_sprintf("v:%s", v);
        free(v);
        return pe;
    }
    if (!json_is_object(item))
        return NULL;
    const json_t *props = json_object_get(json_object_get(sch, "items"), "properties");
    const json_t *keys = json_object_get(sch, "x-kubernetes-list-map-keys");
    json_t *kv = json_object();
    size_t i;
    const json_t *key;
    json_array_foreach(keys, i, key) {
        const char *name = json_string_value(key);
        const json_t *val = name ? json_object_get(item, name) : NULL;
        if (val == NULL && name != NULL)
            val = json_object_get(json_object_get(props, name), "default");
        if (val == NULL) {
            json_decref(kv);
            return NULL;
        }
        json_object_set(kv, name, (json_t *)val); /* read-only use; dumped below and freed */
    }
    char *k = json_dumps(kv, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(kv);
    char *pe = lo_sprintf("k:%s", k);
    free(k);
    return pe;
}

/* How kube prints a path element in a conflict: ".name", "[k=v,...]",
 * "[=v]", "[N]". Caller frees. */
static char *pe_display(const char *pe)
{
    if (strncmp(pe, "f:", 2) == 0)
        return lo_sprintf(".%s", pe + 2);
    if (strncmp(pe, "v:", 2) == 0)
        return lo_sprintf("[=%s]", pe + 2);
    if (strncmp(pe, "i:", 2) == 0)
        return lo_sprintf("[%s]", pe + 2);
    if (strncmp(pe, "k:", 2) == 0) {
        json_t *kv = json_loads(pe + 2, 0, NULL);
        if (json_is_object(kv)) {
            char *acc = lo_strdup("[");
            const char *name;
            json_t *v;
            int first = 1;
            json_object_foreach(kv, name, v) {
                char *vs = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
                char *next = lo_sprintf("%s%s%s=%s", acc, first ? "" : ",", name, vs);
                free(vs);
                free(acc);
                acc = next;
                first = 0;
            }
            json_decref(kv);
            char *out = lo_sprintf("%s]", acc);
            free(acc);
            return out;
        }
        json_decref(kv);
    }
    return lo_strdup(pe);
}

/* The items of a list seen through their path elements. */
typedef struct list_view {
    size_t n;     /* items in the view */
    char **pe;    /* n path elements (NULL: item without identity), owned */
    size_t *pos;  /* n positions in the list */
    json_t *idx;  /* new: path element -> position of its first occurrence */
} list_view_t;

/* A path under construction, on the stack of the walk: rendered only for
 * error messages. */
typedef struct seg {
    const char *pe;
    const struct seg *up;
} seg_t;

static char *seg_render(const seg_t *s)
{
    if (s == NULL)
        return lo_strdup("");
    char *up = seg_render(s->up);
    char *me = pe_display(s->pe);
    char *out = lo_sprintf("%s%s", up, me);
    free(up);
    free(me);
    return out;
}

/* ---------------------------------------------------------------------- */
/* Field sets                                                             */

static int fs_member(const json_t *n)
{
    return n != NULL && (json_object_size(n) == 0 || json_object_get(n, ".") != NULL);
}

static size_t fs_nchildren(const json_t *n)
{
    return json_object_size(n) - (json_object_get(n, ".") ? 1 : 0);
}

/* Makes a node from its children (stolen) and member flag; NULL when the
 * node would hold nothing. */
static json_t *fs_node(json_t *children, int member)
{
    json_object_del(children, ".");
    if (json_object_size(children) == 0) {
        if (member)
            return children;
        json_decref(children);
        return NULL;
    }
    if (member)
        json_object_set_new(children, ".", json_object());
    return children;
}

static void fs_put(json_t *parent, const char *pe, json_t *node)
{
    if (node != NULL)
        json_object_set_new(parent, pe, node);
}

enum fs_op { FS_UNION, FS_DIFF, FS_INTER };

/* a op b on nodes (either may be NULL); new node or NULL. Path-wise: taking
 * a member out does not take out the paths below it. */
static json_t *fs_apply(const json_t *a, const json_t *b, enum fs_op op)
{
    if ((op == FS_INTER && (a == NULL || b == NULL)) || (op != FS_UNION && a == NULL))
        return NULL;
    int ma = fs_member(a), mb = fs_member(b);
    int member = op == FS_UNION ? (ma || mb) : op == FS_DIFF ? (ma && !mb) : (ma && mb);
    json_t *out = json_object();
    const char *key;
    json_t *v;
    if (a != NULL)
        json_object_foreach((json_t *)a, key, v) {
            if (strcmp(key, ".") != 0)
                fs_put(out, key, fs_apply(v, b ? json_object_get(b, key) : NULL, op));
        }
    if (b != NULL && op == FS_UNION)
        json_object_foreach((json_t *)b, key, v) {
            if (strcmp(key, ".") != 0 && (a == NULL || json_object_get(a, key) == NULL))
                fs_put(out, key, fs_apply(NULL, v, op));
        }
    return fs_node(out, member);
}

static int key_cmp(const void *x, const void *y)
{
    return strcmp(*(const char *const *)x, *(const char *const *)y);
}

/* Deep copy of a node with keys in serializer order ("." sorts first). */
static json_t *fs_sorted(const json_t *n)
{
    size_t count = json_object_size(n), i = 0;
    const char **keys = lo_calloc(count ? count : 1, sizeof *keys);
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)n, key, v) keys[i++] = key;
    qsort(keys, count, sizeof *keys, key_cmp);
    json_t *out = json_object();
    for (i = 0; i < count; i++)
        json_object_set_new(out, keys[i], fs_sorted(json_object_get(n, keys[i])));
    free(keys);
    return out;
}

/* A root set for callers (new): never NULL, never a member, sorted. node is stolen. */
static json_t *fs_public(json_t *node)
{
    if (node == NULL)
        return json_object();
    json_object_del(node, ".");
    json_t *s = fs_sorted(node);
    json_decref(node);
    return s;
}

/* Copy of n in which every named field ("f:") with children is also a
 * member, as structured-merge-diff does before pruning: owning a field
 * below keeps the fields above it. */
static json_t *fs_named_members(const json_t *n, int named)
{
    json_t *out = json_object();
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)n, key, v) {
        if (strcmp(key, ".") != 0)
            json_object_set_new(out, key, fs_named_members(v, strncmp(key, "f:", 2) == 0));
    }
    int member = fs_member(n) || (named && json_object_size(out) > 0);
    json_t *node = fs_node(out, member);
    return node ? node : json_object();
}

json_t *managedfields_union(const json_t *a, const json_t *b)
{
    return fs_public(fs_apply(a, b, FS_UNION));
}

json_t *managedfields_difference(const json_t *a, const json_t *b)
{
    return fs_public(fs_apply(a, b, FS_DIFF));
}

json_t *managedfields_intersection(const json_t *a, const json_t *b)
{
    return fs_public(fs_apply(a, b, FS_INTER));
}

int managedfields_empty(const json_t *set)
{
    return set == NULL || fs_nchildren(set) == 0;
}

/* Appends the display path of every member of n to paths (array of strings). */
static void fs_paths(const json_t *n, const char *prefix, json_t *paths)
{
    json_t *sorted = fs_sorted(n);
    const char *key;
    json_t *v;
    json_object_foreach(sorted, key, v) {
        if (strcmp(key, ".") == 0)
            continue;
        char *pe = pe_display(key);
        char *path = lo_sprintf("%s%s", prefix, pe);
        free(pe);
        if (fs_member(v))
            json_array_append_new(paths, json_string(path));
        fs_paths(v, path, paths);
        free(path);
    }
    json_decref(sorted);
}

/* ---------------------------------------------------------------------- */
/* The set of an object                                                   */

/* Records the first malformed list of an applied configuration: msg
 * (stolen) about the list at path at. */
static void ctx_bad(mf_ctx_t *c, const seg_t *at, char *msg)
{
    if (c->bad == NULL) {
        char *path = seg_render(at);
        c->bad = lo_sprintf("%s: %s", path, msg);
        free(path);
    }
    free(msg);
}

static json_t *set_walk(mf_ctx_t *c, const json_t *sch, const json_t *v, const seg_t *at, int *self);

/* The nodes of a list-type map or set; items seen twice are members only,
 * without the fields below them (what kube does with duplicates). */
static json_t *set_walk_list(mf_ctx_t *c, const json_t *sch, enum node_kind nk, const json_t *v,
                             const seg_t *at)
{
    json_t *out = json_object(), *seen = json_object();
    const json_t *isch = json_object_get(sch, "items");
    size_t i;
    json_t *item;
    json_array_foreach(v, i, item) {
        char *pe = item_pe(sch, nk, item);
        if (pe == NULL && nk == NK_LIST_SET) {
            ctx_bad(c, at, lo_sprintf("element %zu: the items of a set must be scalars", i));
            continue;
        }
        if (pe == NULL) {
            char *names = json_dumps(json_object_get(sch, "x-kubernetes-list-map-keys"), JSON_COMPACT);
            ctx_bad(c, at, lo_sprintf("element %zu: associative list with keys %s has an element that "
                                      "omits a key field (and it has no default value)", i, names));
            free(names);
            continue;
        }
        if (json_object_get(seen, pe) != NULL) {
            char *shown = pe_display(pe);
            ctx_bad(c, at, lo_sprintf("element %zu: duplicate entries for key %s", i, shown));
            free(shown);
            json_object_set_new(out, pe, json_object());
        } else {
            seg_t here = {pe, at};
            int self = 0;
            json_t *children = set_walk(c, isch, item, &here, &self);
            fs_put(out, pe, fs_node(children, 1));
            json_object_set_new(seen, pe, json_true());
        }
        free(pe);
    }
    json_decref(seen);
    return out;
}

/* The children (new object) of the set of v under sch; *self is set when v
 * is a member by itself (a scalar, an atomic value). */
static json_t *set_walk(mf_ctx_t *c, const json_t *sch, const json_t *v, const seg_t *at, int *self)
{
    enum node_kind nk = node_kind(sch, v);
    *self = 0;
    if (nk == NK_LIST_MAP || nk == NK_LIST_SET)
        return set_walk_list(c, sch, nk, v, at);
    if (nk == NK_LEAF) {
        *self = 1;
        return json_object();
    }
    json_t *out = json_object();
    const char *key;
    json_t *cv;
    json_object_foreach((json_t *)v, key, cv) {
        int declared = 0, cself = 0;
        const json_t *csch = child_schema(c, sch, key, &declared);
        char *pe = field_pe(key);
        seg_t here = {pe, at};
        json_t *children = set_walk(c, csch, cv, &here, &cself);
        if (json_is_null(cv) || (json_is_object(cv) && json_object_size(cv) == 0) || !declared)
            cself = 1;
        fs_put(out, pe, fs_node(children, cself));
        free(pe);
    }
    return out;
}

/* The tracked set of a whole object (new, public form). */
static json_t *set_of_object(mf_ctx_t *c, const json_t *obj)
{
    int self = 0;
    json_t *children = set_walk(c, c->root, obj, NULL, &self);
    json_t *node = fs_node(children, 0);
    json_t *stripped = fs_apply(node, c->strip, FS_DIFF);
    json_decref(node);
    return fs_public(stripped);
}

json_t *managedfields_set_of(const schema_kind_t *k, const json_t *obj)
{
    mf_ctx_t c;
    ctx_init(&c, k);
    json_t *set = set_of_object(&c, obj);
    ctx_free(&c);
    return set;
}

/* ---------------------------------------------------------------------- */
/* Comparison                                                             */

typedef struct cmp {
    json_t *add, *mod, *rem; /* new: children of one node in each set */
} cmp_t;

static void cmp_into(mf_ctx_t *c, const json_t *sch, const json_t *l, const json_t *r, cmp_t *parent,
                     const char *pe);

static int container_empty(const json_t *v)
{
    return v == NULL || json_is_null(v) || (json_is_object(v) && json_object_size(v) == 0) ||
           (json_is_array(v) && json_array_size(v) == 0);
}

static void cmp_struct(mf_ctx_t *c, const json_t *sch, const json_t *l, const json_t *r, cmp_t *me)
{
    const char *key;
    json_t *v;
    if (json_is_object(l))
        json_object_foreach((json_t *)l, key, v) {
            char *pe = field_pe(key);
            cmp_into(c, child_schema(c, sch, key, NULL), v, json_object_get(r, key), me, pe);
            free(pe);
        }
    if (json_is_object(r))
        json_object_foreach((json_t *)r, key, v) {
            if (json_object_get(l, key) != NULL)
                continue;
            char *pe = field_pe(key);
            cmp_into(c, child_schema(c, sch, key, NULL), NULL, v, me, pe);
            free(pe);
        }
}

static void list_view(list_view_t *v, const json_t *sch, enum node_kind nk, const json_t *list, int unique);
static void list_view_free(list_view_t *v);
static const json_t *list_view_item(const list_view_t *v, const json_t *list, const char *pe);

/* Items matched by path element: applied order first, then the removed ones. */
static void cmp_list(mf_ctx_t *c, const json_t *sch, enum node_kind nk, const json_t *l, const json_t *r,
                     cmp_t *me)
{
    const json_t *isch = json_object_get(sch, "items");
    list_view_t L, R;
    list_view(&L, sch, nk, l, 1);
    list_view(&R, sch, nk, r, 1);
    for (size_t i = 0; i < R.n; i++)
        cmp_into(c, isch, list_view_item(&L, l, R.pe[i]), json_array_get(r, R.pos[i]), me, R.pe[i]);
    for (size_t i = 0; i < L.n; i++)
        if (json_object_get(R.idx, L.pe[i]) == NULL)
            cmp_into(c, isch, json_array_get(l, L.pos[i]), NULL, me, L.pe[i]);
    list_view_free(&L);
    list_view_free(&R);
}

/* Compares l and r (either may be NULL: absent) at path element pe under
 * parent. Leaves (and containers empty on both sides) are added, removed or
 * modified as a whole; a container that appears or disappears is added or
 * removed together with everything below it. */
static void cmp_into(mf_ctx_t *c, const json_t *sch, const json_t *l, const json_t *r, cmp_t *parent,
                     const char *pe)
{
    cmp_t me = {json_object(), json_object(), json_object()};
    int add = 0, mod = 0, rem = 0;
    enum node_kind nk = pair_kind(sch, l, r);
    if (nk == NK_LEAF || (container_empty(l) && container_empty(r))) {
        if (l == NULL)
            add = 1;
        else if (r == NULL)
            rem = 1;
        else if (!json_equal((json_t *)l, (json_t *)r))
            mod = 1;
    } else {
        if (nk == NK_STRUCT)
            cmp_struct(c, sch, l, r, &me);
        else
            cmp_list(c, sch, nk, l, r, &me);
        add = l == NULL;
        rem = r == NULL;
    }
    fs_put(parent->add, pe, fs_node(me.add, add));
    fs_put(parent->mod, pe, fs_node(me.mod, mod));
    fs_put(parent->rem, pe, fs_node(me.rem, rem));
}

/* Compares two whole objects; out's sets are public (stripped, sorted, new). */
static void cmp_objects(mf_ctx_t *c, const json_t *l, const json_t *r, cmp_t *out)
{
    cmp_t me = {json_object(), json_object(), json_object()};
    cmp_struct(c, c->root, l, r, &me);
    json_t **sets[3] = {&me.add, &me.mod, &me.rem};
    json_t **outs[3] = {&out->add, &out->mod, &out->rem};
    for (int i = 0; i < 3; i++) {
        json_t *node = fs_node(*sets[i], 0);
        *outs[i] = fs_public(fs_apply(node, c->strip, FS_DIFF));
        json_decref(node);
    }
}

/*
 * The fields of an object that did not exist before: what cmp_objects(NULL,
 * r) finds in its "added" set once stripped and sorted (every node a
 * member, containers with "."), built in one walk: children sorted as the
 * serializer orders them, the strip set applied on the way down, the
 * object's own managedFields never entered. The general path builds the
 * three sets and copies them twice over; for a create this is the whole of
 * the work, on every create.
 */
typedef struct child {
    char *pe;
    json_t *node;
} child_t;

static int child_cmp(const void *x, const void *y)
{
    return strcmp(((const child_t *)x)->pe, ((const child_t *)y)->pe);
}

static json_t *create_node(mf_ctx_t *c, const json_t *sch, const json_t *r, const json_t *strip, const char *skip);

/* Adds the node of value v at pe to kids (when it holds anything). */
static void create_child(mf_ctx_t *c, const json_t *sch, const json_t *v, const json_t *strip, char *pe /* stolen */,
                         const char *skip, child_t **kids, size_t *n, size_t *cap)
{
    json_t *node = create_node(c, sch, v, strip ? json_object_get(strip, pe) : NULL, skip);
    if (node == NULL) {
        free(pe);
        return;
    }
    if (*n == *cap) {
        *cap = *cap ? 2 * *cap : 8;
        *kids = lo_realloc(*kids, *cap * sizeof(**kids));
    }
    (*kids)[(*n)++] = (child_t){pe, node};
}

/*
 * The node of r (a member unless the strip set takes its membership; NULL
 * when it would hold nothing). skip: a key of r that is never a field
 * (metadata.managedFields).
 */
static json_t *create_node(mf_ctx_t *c, const json_t *sch, const json_t *r, const json_t *strip, const char *skip)
{
    enum node_kind nk = node_kind(sch, r);
    int member = !(strip && fs_member(strip));
    child_t *kids = NULL;
    size_t n = 0, cap = 0;
    if (nk == NK_STRUCT && !container_empty(r)) {
        const char *key;
        json_t *v;
        json_object_foreach((json_t *)r, key, v) {
            if (skip && strcmp(key, skip) == 0)
                continue;
            int top = sch == c->root && strcmp(key, "metadata") == 0;
            create_child(c, child_schema(c, sch, key, NULL), v, strip, field_pe(key),
                         top ? "managedFields" : NULL, &kids, &n, &cap);
        }
    } else if (nk != NK_LEAF && !container_empty(r)) {
        const json_t *isch = json_object_get(sch, "items");
        list_view_t R;
        list_view(&R, sch, nk, r, 1);
        for (size_t i = 0; i < R.n; i++)
            create_child(c, isch, json_array_get(r, R.pos[i]), strip, lo_strdup(R.pe[i]), NULL, &kids, &n, &cap);
        list_view_free(&R);
    }
    if (n == 0 && !member) {
        free(kids);
        return NULL;
    }
    json_t *node = json_object();
    if (member && n > 0)
        json_object_set_new(node, ".", json_object()); /* "." sorts before every field */
    if (n > 1)
        qsort(kids, n, sizeof(*kids), child_cmp);
    for (size_t i = 0; i < n; i++) {
        json_object_set_new(node, kids[i].pe, kids[i].node);
        free(kids[i].pe);
    }
    free(kids);
    return node;
}

/* The public field set of a created object (never NULL). */
static json_t *created_fields_walk(mf_ctx_t *c, const json_t *r)
{
    /* the root is no member of its own set, whatever the strip set says of it */
    json_t *set = create_node(c, c->root, r, c->strip, NULL);
    if (set == NULL)
        return json_object();
    json_object_del(set, ".");
    return set;
}

/*
 * Created sets, remembered by shape. The set of a created object is a
 * function of its kind's schema and of its shape alone: its object keys, the
 * type of each value, and each list whole (a list item's path element comes
 * from its values); a scalar's value never matters. Creates of one kind
 * mostly have one shape, so the set of a shape is kept for the next create
 * with it. The shape is written as a string (key lengths make it
 * unambiguous); a small table of slots under one mutex; shapes longer than
 * SHAPE_MAX are not kept. A kept set is shared, not copied (a copy costs
 * half a walk: jansson's deep copy checks for loops): the created objects
 * hold references to one tree, which nothing edits - entries are copied
 * before an update or an apply changes them (entries_of), as every stored
 * tree is read-only once it is handed to the writer.
 */
#define SHAPE_SLOTS 64
#define SHAPE_MAX 4096

typedef struct shape {
    char b[SHAPE_MAX];
    size_t n;
    int over;                   /* longer than SHAPE_MAX: not kept */
} shape_t;

static struct {
    pthread_mutex_t mu;
    struct {
        const json_t *root;     /* the kind's schema; NULL: an empty slot */
        char *shape;
        size_t n;
        json_t *set;
    } slot[SHAPE_SLOTS];
} created_sets = {.mu = PTHREAD_MUTEX_INITIALIZER};

static void shape_put(shape_t *sh, const char *p, size_t n)
{
    if (sh->over || n > SHAPE_MAX - sh->n) {
        sh->over = 1;
        return;
    }
    memcpy(sh->b + sh->n, p, n);
    sh->n += n;
}

static void shape_key(shape_t *sh, const char *key)
{
    char len[24];
    size_t n = strlen(key), i = sizeof len;
    len[--i] = ':';
    size_t v = n;
    do {
        len[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v > 0);
    shape_put(sh, len + i, sizeof len - i);
    shape_put(sh, key, n);
}

/* Appends v's shape; top: v is the object itself (its metadata.managedFields is no field). */
static void shape_of(shape_t *sh, const json_t *v, int top)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT: {
        const char *key;
        json_t *child;
        shape_put(sh, "{", 1);
        json_object_foreach((json_t *)v, key, child) {
            shape_key(sh, key);
            if (top && strcmp(key, "metadata") == 0 && json_is_object(child)) {
                /* create_node's skip: the same walk without managedFields */
                const char *mk;
                json_t *mv;
                shape_put(sh, "{", 1);
                json_object_foreach(child, mk, mv) {
                    if (strcmp(mk, "managedFields") == 0)
                        continue;
                    shape_key(sh, mk);
                    shape_of(sh, mv, 0);
                }
                shape_put(sh, "}", 1);
            } else {
                shape_of(sh, child, 0);
            }
            if (sh->over)
                return;
        }
        shape_put(sh, "}", 1);
        break;
    }
    case JSON_ARRAY: {
        char *text = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
        shape_put(sh, "[", 1);
        shape_key(sh, text ? text : "");
        free(text);
        break;
    }
    case JSON_STRING: shape_put(sh, "s", 1); break;
    case JSON_INTEGER: shape_put(sh, "i", 1); break;
    case JSON_REAL: shape_put(sh, "r", 1); break;
    case JSON_TRUE: shape_put(sh, "t", 1); break;
    case JSON_FALSE: shape_put(sh, "f", 1); break;
    default: shape_put(sh, "n", 1); break;
    }
}

static size_t shape_slot(const mf_ctx_t *c, const shape_t *sh)
{
    uint64_t h = 1469598103934665603ull ^ (uint64_t)(uintptr_t)c->root;
    for (size_t i = 0; i < sh->n; i++)
        h = (h ^ (unsigned char)sh->b[i]) * 1099511628211ull;
    return (size_t)(h % SHAPE_SLOTS);
}

/* The kept set of sh (a new reference to the table's own tree), or NULL. */
static json_t *created_sets_find(const mf_ctx_t *c, const shape_t *sh, size_t i)
{
    json_t *set = NULL;
    pthread_mutex_lock(&created_sets.mu);
    if (created_sets.slot[i].root == c->root && created_sets.slot[i].n == sh->n &&
        memcmp(created_sets.slot[i].shape, sh->b, sh->n) == 0)
        set = json_incref(created_sets.slot[i].set);
    pthread_mutex_unlock(&created_sets.mu);
    return set;
}

static void created_sets_keep(const mf_ctx_t *c, const shape_t *sh, size_t i, json_t *set)
{
    char *shape = lo_malloc(sh->n ? sh->n : 1);
    memcpy(shape, sh->b, sh->n);
    json_t *copy = json_incref(set);
    pthread_mutex_lock(&created_sets.mu);
    char *old_shape = created_sets.slot[i].shape;
    json_t *old_set = created_sets.slot[i].set;
    created_sets.slot[i].root = c->root;
    created_sets.slot[i].shape = shape;
    created_sets.slot[i].n = sh->n;
    created_sets.slot[i].set = copy;
    pthread_mutex_unlock(&created_sets.mu);
    free(old_shape);
    json_decref(old_set);
}

/* The public field set of a created object (never NULL; a new reference to a tree that may be shared). */
static json_t *created_fields(mf_ctx_t *c, const json_t *r)
{
    shape_t *sh = lo_malloc(sizeof *sh);
    sh->n = 0;
    sh->over = c->root == NULL; /* no schema: nothing to key the table by */
    if (!sh->over)
        shape_of(sh, r, 1);
    json_t *set;
    if (sh->over) {
        set = created_fields_walk(c, r);
    } else {
        size_t i = shape_slot(c, sh);
        set = created_sets_find(c, sh, i);
        if (set == NULL) {
            set = created_fields_walk(c, r);
            created_sets_keep(c, sh, i, set);
        }
    }
    free(sh);
    return set;
}

static void cmp_clear(cmp_t *cmp)
{
    json_decref(cmp->add);
    json_decref(cmp->mod);
    json_decref(cmp->rem);
}

/* ---------------------------------------------------------------------- */
/* Merge and prune                                                        */

static json_t *merge_value(mf_ctx_t *c, const json_t *sch, const json_t *l, const json_t *r);

/* Path elements a and b (either may be NULL: no identity) name the same item. */
static int pe_eq(const char *a, const char *b)
{
    return a != NULL && b != NULL && strcmp(a, b) == 0;
}

/* Every item of list, or (unique) only the first occurrence of each
 * identified item. */
static void list_view(list_view_t *v, const json_t *sch, enum node_kind nk, const json_t *list, int unique)
{
    size_t count = json_array_size(list);
    v->n = 0;
    v->pe = lo_calloc(count + 1, sizeof *v->pe);
    v->pos = lo_calloc(count + 1, sizeof *v->pos);
    v->idx = json_object();
    for (size_t i = 0; i < count; i++) {
        char *pe = item_pe(sch, nk, json_array_get(list, i));
        int first = pe != NULL && json_object_get(v->idx, pe) == NULL;
        if (first)
            json_object_set_new(v->idx, pe, json_integer((json_int_t)i));
        if (unique && !first) {
            free(pe);
            continue;
        }
        v->pe[v->n] = pe;
        v->pos[v->n++] = i;
    }
}

static void list_view_free(list_view_t *v)
{
    for (size_t i = 0; i < v->n; i++)
        free(v->pe[i]);
    free(v->pe);
    free(v->pos);
    json_decref(v->idx);
}

/* The live item with path element pe (borrowed), or NULL. */
static const json_t *list_view_item(const list_view_t *v, const json_t *list, const char *pe)
{
    json_t *at = json_object_get(v->idx, pe);
    return at ? json_array_get(list, (size_t)json_integer_value(at)) : NULL;
}

/* A list-type map or set: items matched by path element, merged, and put in
 * the order structured-merge-diff produces: items only in live keep their
 * place, the applied items come in the applied order (a shared item whose
 * live turn comes early waits for its applied turn). */
static json_t *merge_list(mf_ctx_t *c, const json_t *sch, enum node_kind nk, const json_t *l, const json_t *r)
{
    const json_t *isch = json_object_get(sch, "items");
    list_view_t L, R; /* R: applied items without identity were refused before the merge */
    list_view(&L, sch, nk, l, 0);
    list_view(&R, sch, nk, r, 1);
    json_t *merged = json_object(), *out = json_array();
    size_t *shared = lo_calloc(R.n + 1, sizeof *shared), nshared = 0, si = 0, li = 0, ri = 0;
    for (size_t i = 0; i < R.n; i++) /* applied items live also has, in applied order */
        if (json_object_get(L.idx, R.pe[i]) != NULL)
            shared[nshared++] = i;

    while (li < L.n || ri < R.n) {
        const char *ns = si < nshared ? R.pe[shared[si]] : NULL;
        const char *lp = li < L.n ? L.pe[li] : NULL;
        int l_in_r = lp != NULL && json_object_get(R.idx, lp) != NULL;
        if (li < L.n && ri < R.n) {
            if (pe_eq(lp, R.pe[ri])) {
                json_object_set_new(merged, lp, json_true());
                json_array_append_new(out, merge_value(c, isch, json_array_get(l, L.pos[li]),
                                                       json_array_get(r, R.pos[ri])));
                li++, ri++, si++;
                continue;
            }
            if (l_in_r && ns != NULL && !pe_eq(ns, lp)) {
                li++; /* shared item, not its turn yet */
                continue;
            }
        }
        if (li < L.n) {
            if (!l_in_r) {
                json_array_append_new(out, json_deep_copy(json_array_get(l, L.pos[li])));
                li++;
                continue;
            }
            if (json_object_get(merged, lp) != NULL)
                li++; /* already merged with its applied item */
        }
        if (ri < R.n) {
            json_object_set_new(merged, R.pe[ri], json_true());
            json_array_append_new(out, merge_value(c, isch, list_view_item(&L, l, R.pe[ri]),
                                                   json_array_get(r, R.pos[ri])));
            if (pe_eq(ns, R.pe[ri]))
                si++;
            ri++;
        }
    }
    free(shared);
    json_decref(merged);
    list_view_free(&L);
    list_view_free(&R);
    return out;
}

/* The merge of applied r into live l (either may be NULL); new value. */
static json_t *merge_value(mf_ctx_t *c, const json_t *sch, const json_t *l, const json_t *r)
{
    if (r == NULL)
        return json_deep_copy(l);
    if (l == NULL)
        return json_deep_copy(r);
    enum node_kind nk = pair_kind(sch, l, r);
    if (nk == NK_LIST_MAP || nk == NK_LIST_SET)
        return merge_list(c, sch, nk, l, r);
    if (nk != NK_STRUCT)
        return json_deep_copy(r);
    json_t *out = json_deep_copy(l);
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)r, key, v) {
        json_object_set_new(out, key, merge_value(c, child_schema(c, sch, key, NULL), json_object_get(l, key), v));
    }
    return out;
}

/* Removes from v the members of rm that keep does not hold; descends where
 * keep holds something below. */
static void prune_walk(mf_ctx_t *c, const json_t *sch, json_t *v, const json_t *rm, const json_t *keep)
{
    enum node_kind nk = node_kind(sch, v);
    if (nk == NK_STRUCT) {
        const char *key;
        json_t *r;
        json_object_foreach((json_t *)rm, key, r) {
            json_t *cv = strncmp(key, "f:", 2) == 0 ? json_object_get(v, key + 2) : NULL;
            if (cv == NULL)
                continue;
            const json_t *kp = keep ? json_object_get(keep, key) : NULL;
            if (fs_member(r) && kp == NULL && fs_nchildren(r) > 0 && json_is_object(cv)) {
                /* a struct held through its fields: those go, and the struct once empty; what nobody
                 * tracks (metadata.name, uid ...) stays */
                prune_walk(c, child_schema(c, sch, key + 2, NULL), cv, r, NULL);
                if (json_object_size(cv) == 0)
                    json_object_del(v, key + 2);
            } else if (fs_member(r) && kp == NULL) {
                json_object_del(v, key + 2);
            } else if (fs_nchildren(r) > 0) {
                prune_walk(c, child_schema(c, sch, key + 2, NULL), cv, r, kp);
            }
        }
    } else if (nk == NK_LIST_MAP || nk == NK_LIST_SET) {
        const json_t *isch = json_object_get(sch, "items");
        for (size_t i = json_array_size(v); i-- > 0;) {
            json_t *item = json_array_get(v, i);
            char *pe = item_pe(sch, nk, item);
            const json_t *r = pe ? json_object_get(rm, pe) : NULL;
            const json_t *kp = r && keep ? json_object_get(keep, pe) : NULL;
            if (r != NULL && fs_member(r) && kp == NULL)
                json_array_remove(v, i);
            else if (r != NULL && fs_nchildren(r) > 0)
                prune_walk(c, isch, item, r, kp);
            free(pe);
        }
    }
}

/* Removes from merged what the manager applied last time (last), no longer
 * applies, and nobody else owns (owned: every entry's set, the manager's
 * new one included). */
static void prune(mf_ctx_t *c, json_t *merged, const json_t *last, const json_t *owned)
{
    json_t *l = fs_named_members(last, 0), *o = fs_named_members(owned, 0);
    json_t *rm = fs_apply(l, o, FS_DIFF);
    if (rm != NULL)
        prune_walk(c, c->root, merged, rm, o);
    json_decref(rm);
    json_decref(l);
    json_decref(o);
}

/* ---------------------------------------------------------------------- */
/* managedFields entries                                                  */

static const char *entry_str(const json_t *e, const char *field)
{
    const char *s = json_string_value(json_object_get(e, field));
    return s ? s : "";
}

static int entry_is(const json_t *e, const char *manager, const char *op, const char *sub)
{
    return strcmp(entry_str(e, "manager"), manager) == 0 && strcmp(entry_str(e, "operation"), op) == 0 &&
           strcmp(entry_str(e, "subresource"), sub ? sub : "") == 0;
}

/* Borrowed: the entry's set, made an object if it was not one. */
static json_t *entry_fields(json_t *e)
{
    json_t *f = json_object_get(e, "fieldsV1");
    if (!json_is_object(f)) {
        f = json_object();
        json_object_set_new(e, "fieldsV1", f);
    }
    return f;
}

static void entry_touch(json_t *e)
{
    char now[32];
    lo_time_rfc3339(now, sizeof now);
    json_object_set_new(e, "time", json_string(now));
}

/* A new entry of manager with set (stolen), time now. */
static json_t *entry_new(const char *manager, const char *op, const char *sub, json_t *set)
{
    json_t *e = json_object();
    json_object_set_new(e, "manager", json_string(manager));
    json_object_set_new(e, "operation", json_string(op));
    json_object_set_new(e, "apiVersion", json_string(SCHEMA_GROUP_VERSION));
    entry_touch(e);
    json_object_set_new(e, "fieldsType", json_string("FieldsV1"));
    json_object_set_new(e, "fieldsV1", set);
    if (sub != NULL && *sub)
        json_object_set_new(e, "subresource", json_string(sub));
    return e;
}

/* New array: copies of the usable entries (objects naming a manager) of
 * obj's metadata.managedFields. */
static json_t *entries_of(const json_t *obj)
{
    json_t *out = json_array();
    const json_t *mf = json_object_get(json_object_get(obj, "metadata"), "managedFields");
    size_t i;
    json_t *e;
    json_array_foreach(mf, i, e) {
        if (json_is_object(e) && json_is_string(json_object_get(e, "manager"))) {
            json_t *copy = json_deep_copy(e);
            entry_fields(copy);
            json_array_append_new(out, copy);
        }
    }
    return out;
}

static int entry_index(const json_t *entries, const char *manager, const char *op, const char *sub)
{
    size_t i;
    json_t *e;
    json_array_foreach(entries, i, e) {
        if (entry_is(e, manager, op, sub))
            return (int)i;
    }
    return -1;
}

static int64_t entry_time(const json_t *e)
{
    int64_t t = 0;
    if (lo_time_parse(entry_str(e, "time"), &t) != 0)
        t = 0;
    return t;
}

/* kube's order of managedFields: operation (Apply before Update), time,
 * manager, apiVersion, subresource. */
static int entry_before(const json_t *a, const json_t *b)
{
    int d = strcmp(entry_str(a, "operation"), entry_str(b, "operation"));
    if (d != 0)
        return d < 0;
    int64_t ta = entry_time(a), tb = entry_time(b);
    if (ta != tb)
        return ta < tb;
    if ((d = strcmp(entry_str(a, "manager"), entry_str(b, "manager"))) != 0)
        return d < 0;
    if ((d = strcmp(entry_str(a, "apiVersion"), entry_str(b, "apiVersion"))) != 0)
        return d < 0;
    return strcmp(entry_str(a, "subresource"), entry_str(b, "subresource")) < 0;
}

/* Drops empty entries, sorts the rest (stable), and stores them as obj's
 * metadata.managedFields (removed when none is left). entries is stolen. */
static void entries_store(json_t *obj, json_t *entries)
{
    size_t n = json_array_size(entries), kept = 0, i;
    json_t **v = lo_calloc(n + 1, sizeof *v);
    for (i = 0; i < n; i++) {
        json_t *e = json_array_get(entries, i);
        if (managedfields_empty(entry_fields(e)))
            continue;
        json_object_set_new(e, "fieldsV1", fs_public(json_deep_copy(entry_fields(e))));
        size_t j = kept++;
        for (; j > 0 && entry_before(e, v[j - 1]); j--)
            v[j] = v[j - 1];
        v[j] = e;
    }
    json_t *meta = json_object_get(obj, "metadata");
    if (!json_is_object(meta)) {
        meta = json_object();
        json_object_set_new(obj, "metadata", meta);
    }
    if (kept == 0) {
        json_object_del(meta, "managedFields");
    } else {
        json_t *out = json_array();
        for (i = 0; i < kept; i++)
            json_array_append(out, v[i]);
        json_object_set_new(meta, "managedFields", out);
    }
    free(v);
    json_decref(entries);
}

/* Deep copy of obj without metadata.managedFields (or {} for NULL). */
static json_t *object_bare(const json_t *obj)
{
    json_t *copy = json_is_object(obj) ? json_deep_copy(obj) : json_object();
    json_object_del(json_object_get(copy, "metadata"), "managedFields");
    return copy;
}

/* Takes changed and removed paths away from every entry but skip (index or
 * -1). Returns nothing; entries are edited in place. */
static void entries_subtract(json_t *entries, int skip, const json_t *changed, const json_t *removed)
{
    size_t i;
    json_t *e;
    json_array_foreach(entries, i, e) {
        if ((int)i == skip)
            continue;
        json_t *a = fs_apply(entry_fields(e), changed, FS_DIFF);
        json_t *b = fs_apply(a, removed, FS_DIFF);
        json_object_set_new(e, "fieldsV1", b ? b : json_object());
        json_decref(a);
    }
}

/* ---------------------------------------------------------------------- */
/* Apply                                                                  */

/* How kube names a manager in a conflict. Caller frees. */
static char *manager_display(const json_t *e)
{
    const char *sub = entry_str(e, "subresource");
    char *s = *sub ? lo_sprintf("\"%s\" with subresource \"%s\"", entry_str(e, "manager"), sub)
                   : lo_sprintf("\"%s\"", entry_str(e, "manager"));
    if (strcmp(entry_str(e, "operation"), "Update") == 0) {
        char *u = lo_sprintf("%s using %s", s, entry_str(e, "apiVersion"));
        free(s);
        s = u;
    }
    return s;
}

static int conflict_cmp(const void *x, const void *y)
{
    const json_t *a = *(json_t *const *)x, *b = *(json_t *const *)y;
    return strcmp(json_string_value(json_object_get(a, "manager")), json_string_value(json_object_get(b, "manager")));
}

/* Fills err with kube's apply conflict Status from conflicts, an array of
 * {manager: display name, paths: [..]} in entry order. */
static void conflict_error(lo_err_t *err, json_t *conflicts)
{
    size_t total = 0, i, j, n = json_array_size(conflicts);
    json_t *c, *p;
    json_array_foreach(conflicts, i, c) total += json_array_size(json_object_get(c, "paths"));

    lo_err_clear(err);
    json_t **sorted = lo_calloc(n + 1, sizeof *sorted);
    json_array_foreach(conflicts, i, c) sorted[i] = c;
    qsort(sorted, n, sizeof *sorted, conflict_cmp);
    char *msg;
    if (total == 1) {
        const char *m = json_string_value(json_object_get(sorted[0], "manager"));
        msg = lo_sprintf("Apply failed with 1 conflict: conflict with %s: %s", m,
                         json_string_value(json_array_get(json_object_get(sorted[0], "paths"), 0)));
    } else {
        msg = lo_sprintf("Apply failed with %zu conflicts:", total);
        for (i = 0; i < n; i++) {
            char *next = lo_sprintf("%s%sconflicts with %s:", msg, i ? "\n" : " ",
                                    json_string_value(json_object_get(sorted[i], "manager")));
            free(msg);
            msg = next;
            json_array_foreach(json_object_get(sorted[i], "paths"), j, p) {
                next = lo_sprintf("%s\n- %s", msg, json_string_value(p));
                free(msg);
                msg = next;
            }
        }
    }
    lo_err_set(err, 409, "Conflict", "%s", msg);
    free(msg);
    free(sorted);
    json_array_foreach(conflicts, i, c) {
        const char *m = json_string_value(json_object_get(c, "manager"));
        char *cause = lo_sprintf("conflict with %s", m);
        json_array_foreach(json_object_get(c, "paths"), j, p)
            lo_err_add_cause(err, "FieldManagerConflict", cause, json_string_value(p));
        free(cause);
    }
}

/* The applied configuration the way it is merged: a copy without the part
 * that the endpoint resets (status on the main resource of a kind with a
 * status subresource, spec on the status subresource). */
static json_t *config_of(const schema_kind_t *k, const json_t *applied, const char *subresource)
{
    json_t *cfg = json_deep_copy(applied);
    if (subresource != NULL && strcmp(subresource, "status") == 0)
        json_object_del(cfg, "spec");
    else if (k != NULL && k->has_status)
        json_object_del(cfg, "status");
    return cfg;
}

/* Conflicts of the apply: for every other entry, the fields it owns that
 * the apply changes. New array of {manager, paths}. */
static json_t *find_conflicts(json_t *entries, int mine, const json_t *changed)
{
    json_t *out = json_array();
    size_t i;
    json_t *e;
    json_array_foreach(entries, i, e) {
        if ((int)i == mine)
            continue;
        json_t *both = fs_apply(entry_fields(e), changed, FS_INTER);
        if (both != NULL && fs_nchildren(both) > 0) {
            json_t *paths = json_array();
            fs_paths(both, "", paths);
            char *who = manager_display(e);
            json_array_append_new(out, json_pack("{s:s, s:o}", "manager", who, "paths", paths));
            free(who);
        }
        json_decref(both);
    }
    return out;
}

/* What an apply request must satisfy before anything is merged. */
static int apply_check(const json_t *applied, const char *manager, lo_err_t *err)
{
    if (!json_is_object(applied)) {
        lo_err_set(err, 400, "BadRequest", "the applied configuration must be an object");
        return -1;
    }
    if (manager == NULL || *manager == '\0') {
        lo_err_set(err, 400, "BadRequest", "fieldManager must be set for an apply patch");
        return -1;
    }
    const json_t *amf = json_object_get(json_object_get(applied, "metadata"), "managedFields");
    if (amf != NULL && !json_is_null(amf)) {
        lo_err_set(err, 400, "BadRequest", "metadata.managedFields must be nil");
        return -1;
    }
    return 0;
}

/* Removes from merged what the manager's entry (mine, or -1) held and its
 * new set no longer does, unless another entry owns it. */
static void prune_unapplied(mf_ctx_t *c, json_t *merged, json_t *entries, int mine, const json_t *set)
{
    if (mine < 0)
        return;
    json_t *owned = json_deep_copy(set);
    size_t i;
    json_t *e;
    json_array_foreach(entries, i, e) {
        if ((int)i != mine) {
            json_t *u = managedfields_union(owned, entry_fields(e));
            json_decref(owned);
            owned = u;
        }
    }
    prune(c, merged, entry_fields(json_array_get(entries, (size_t)mine)), owned);
    json_decref(owned);
}

int managedfields_apply(const schema_kind_t *k, const json_t *live, const json_t *applied, const char *manager,
                        int force, const char *subresource, json_t **out, lo_err_t *err)
{
    int ret = -1;
    mf_ctx_t c;
    json_t *cfg = NULL, *set = NULL, *base = NULL, *merged = NULL, *entries = NULL;
    json_t *changed = NULL, *conflicts = NULL;
    cmp_t diff = {NULL, NULL, NULL};

    ctx_init(&c, k);
    *out = NULL;
    if (apply_check(applied, manager, err) != 0)
        goto Exit;
    cfg = config_of(k, applied, subresource);
    set = set_of_object(&c, cfg);
    if (c.bad != NULL) {
        lo_err_set(err, 400, "BadRequest", "failed to create typed patch object: %s", c.bad);
        goto Exit;
    }
    base = object_bare(live);
    merged = merge_value(&c, c.root, live ? base : NULL, cfg);
    entries = entries_of(live);
    int mine = entry_index(entries, manager, "Apply", subresource);
    prune_unapplied(&c, merged, entries, mine, set);

    /* Other managers lose what the apply changes (a conflict unless
     * forced) and what it removes. */
    cmp_objects(&c, base, merged, &diff);
    changed = managedfields_union(diff.add, diff.mod);
    conflicts = find_conflicts(entries, mine, changed);
    if (json_array_size(conflicts) > 0 && !force) {
        conflict_error(err, conflicts);
        goto Exit;
    }
    entries_subtract(entries, mine, changed, diff.rem);

    /* The manager's set is exactly what it applies now. */
    if (mine >= 0) {
        json_t *me = json_array_get(entries, (size_t)mine);
        if (!json_equal(base, merged) || !json_equal(entry_fields(me), set))
            entry_touch(me);
        json_object_set(me, "fieldsV1", set);
    } else {
        json_array_append_new(entries, entry_new(manager, "Apply", subresource, json_incref(set)));
    }
    entries_store(merged, entries);
    entries = NULL;
    *out = merged;
    merged = NULL;
    ret = 0;
Exit:
    json_decref(cfg);
    json_decref(set);
    json_decref(base);
    json_decref(merged);
    json_decref(entries);
    json_decref(changed);
    json_decref(conflicts);
    cmp_clear(&diff);
    ctx_free(&c);
    return ret;
}

/* ---------------------------------------------------------------------- */
/* Update                                                                 */

void managedfields_record_update(const schema_kind_t *k, const json_t *old, json_t *next, const char *manager,
                                 const char *subresource)
{
    if (!json_is_object(next))
        return;
    if (manager == NULL || *manager == '\0')
        manager = "unknown";
    mf_ctx_t c;
    ctx_init(&c, k);

    /* Entries a client wrote into the new object replace the stored ones
     * (that is how managedFields are edited, and [{}] clears them); an
     * absent or empty list carries the stored ones over, so that clients
     * unaware of managedFields cannot drop them. */
    const json_t *written = json_object_get(json_object_get(next, "metadata"), "managedFields");
    if (old == NULL && json_array_size(written) == 0) {
        /* a create: every field is the manager's, and there is nothing to take from anyone */
        json_t *fields = created_fields(&c, next);
        json_t *meta = json_object_get(next, "metadata");
        if (!json_is_object(meta)) {
            meta = json_object();
            json_object_set_new(next, "metadata", meta);
        }
        if (managedfields_empty(fields)) {
            json_object_del(meta, "managedFields");
            json_decref(fields);
        } else {
            json_object_set_new(meta, "managedFields", json_pack("[o]", entry_new(manager, "Update", subresource,
                                                                                  fields)));
        }
        ctx_free(&c);
        return;
    }
    json_t *entries = entries_of(json_array_size(written) > 0 ? next : old);
    json_t *l = object_bare(old), *r = object_bare(next);
    cmp_t diff = {NULL, NULL, NULL};
    cmp_objects(&c, l, r, &diff);
    json_t *changed = managedfields_union(diff.add, diff.mod);

    int mine = entry_index(entries, manager, "Update", subresource);
    entries_subtract(entries, mine, changed, diff.rem);
    if (mine >= 0) {
        json_t *me = json_array_get(entries, (size_t)mine);
        json_t *kept = managedfields_difference(entry_fields(me), diff.rem);
        json_object_set_new(me, "fieldsV1", managedfields_union(kept, changed));
        json_decref(kept);
        if (!managedfields_empty(changed))
            entry_touch(me);
    } else if (!managedfields_empty(changed)) {
        json_array_append_new(entries, entry_new(manager, "Update", subresource, json_incref(changed)));
    }
    entries_store(next, entries);

    json_decref(changed);
    cmp_clear(&diff);
    json_decref(l);
    json_decref(r);
    ctx_free(&c);
}
