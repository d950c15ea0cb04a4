/*
 * cascade.c - the namespace a LanguageCluster owns goes with it (contract
 * and the reading of Kubernetes: include/langop/registry/cascade.h).
 *
 * The rule runs in the store's writer after a write (store_op_t.after),
 * reading and writing through the writer's transaction:
 *  - after a write of a LanguageCluster being deleted (the marking DELETE,
 *    a DELETE again, any update): every object of its namespace not being
 *    deleted yet is deleted or marked, then the cluster is released if the
 *    namespace is empty;
 *  - after the delete of a namespaced object whose cluster is terminating
 *    with CASCADE_FINALIZER: the cluster is released if that was the last
 *    one (a count per kind, not a list: by the invariant, what is left is
 *    already being deleted).
 * Anything else returns at once, so the rule costs a string compare on the
 * writes that have nothing to do with it.
 *
 * One cluster's namespace goes in one commit, whatever its size (the
 * capacity limits of the cluster bound it when set).
 */
#include "langop/registry/cascade.h"

#include <string.h>

#include "langop/schema/objmeta.h"

/* ---- finalizers ---- */

static int has_finalizer(const json_t *obj, const char *name)
{
    size_t i;
    const json_t *f;
    json_array_foreach(json_object_get(json_object_get(obj, "metadata"), "finalizers"), i, f) {
        if (json_is_string(f) && strcmp(json_string_value(f), name) == 0)
            return 1;
    }
    return 0;
}

/* Removes every occurrence of name from obj's finalizers (obj owned by the caller); none left: the key goes. */
static void remove_finalizer(json_t *obj, const char *name)
{
    json_t *meta = objmeta_metadata(obj);
    json_t *list = json_object_get(meta, "finalizers");
    for (size_t i = json_array_size(list); i-- > 0;) {
        const char *f = json_string_value(json_array_get(list, i));
        if (f && strcmp(f, name) == 0)
            json_array_remove(list, i);
    }
    if (json_array_size(list) == 0)
        json_object_del(meta, "finalizers");
}

int cascade_owns_namespace(const schema_kind_t *k)
{
    return k && strcmp(k->plural, CASCADE_OWNER_RESOURCE) == 0;
}

void cascade_mark(json_t *cluster)
{
    if (objmeta_is_deleting(cluster))
        return;
    objmeta_mark_deleting(cluster);
    json_t *meta = objmeta_metadata(cluster);
    json_t *list = json_object_get(meta, "finalizers");
    if (!json_is_array(list)) {
        list = json_array();
        json_object_set_new(meta, "finalizers", list);
    }
    if (!has_finalizer(cluster, CASCADE_FINALIZER))
        json_array_append_new(list, json_string(CASCADE_FINALIZER));
}

void cascade_result_clear(cascade_result_t *result)
{
    if (result == NULL)
        return;
    json_decref(result->cluster);
    memset(result, 0, sizeof(*result));
}

/* ---- the rule ---- */

typedef struct run {
    store_txn_t *txn;
    int dry_run;           /* only read, and count what would happen */
    cascade_result_t *r;
    lo_err_t *err;
} run_t;

/* Deletes one object of the namespace as a DELETE would: it goes, or is marked and waits for its finalizers. */
static int delete_content(run_t *run, const char *resource, const json_t *item, size_t *remaining)
{
    const char *ns = objmeta_get_string(item, "namespace");
    const char *name = objmeta_get_string(item, "name");
    if (!objmeta_has_finalizers(item)) {
        run->r->deleted++;
        return run->dry_run ? STORE_OK : store_txn_delete(run->txn, resource, ns, name, run->err);
    }
    (*remaining)++;
    if (objmeta_is_deleting(item))
        return STORE_OK;
    run->r->marked++;
    if (run->dry_run)
        return STORE_OK;
    json_t *marked = json_deep_copy(item); /* the listed tree is shared */
    objmeta_mark_deleting(marked);
    int rc = store_txn_put(run->txn, resource, ns, name, marked, run->err);
    json_decref(marked);
    return rc;
}

/* Deletes what the namespace holds of one kind; *remaining counts what waits for its finalizers. */
static int delete_kind(run_t *run, const char *resource, const char *ns, size_t *remaining)
{
    json_t *items = NULL;
    if (store_txn_list(run->txn, resource, ns, NULL, NULL, &items, run->err) != STORE_OK)
        return -1;
    int rc = STORE_OK;
    size_t i;
    const json_t *item;
    json_array_foreach(items, i, item) {
        if (rc == STORE_OK)
            rc = delete_content(run, resource, item, remaining);
    }
    json_decref(items);
    return rc == STORE_OK ? 0 : -1;
}

/* Whether the namespace holds no object of any namespaced kind. -1 on a store failure. */
static int namespace_empty(run_t *run, const char *ns)
{
    for (size_t i = 0; i < schema_kind_count(); i++) {
        const schema_kind_t *k = schema_kind_at(i);
        int64_t n = 0;
        if (!k->namespaced)
            continue;
        if (store_txn_count(run->txn, k->plural, ns, &n, run->err) != STORE_OK)
            return -1;
        if (n > 0)
            return 0;
    }
    return 1;
}

/* The namespace is empty: CASCADE_FINALIZER goes, and the cluster with it if no other finalizer holds it. */
static int release(run_t *run, const json_t *cluster)
{
    const char *name = objmeta_get_string(cluster, "name");
    if (!has_finalizer(cluster, CASCADE_FINALIZER))
        return 0; /* not ours to release: its own finalizers decide */
    json_t *next = json_deep_copy(cluster);
    remove_finalizer(next, CASCADE_FINALIZER);
    int rc = STORE_OK;
    run->r->gone = !objmeta_has_finalizers(next);
    if (!run->dry_run && run->r->gone)
        rc = store_txn_delete(run->txn, CASCADE_OWNER_RESOURCE, "", name, run->err);
    else if (!run->dry_run)
        rc = store_txn_put(run->txn, CASCADE_OWNER_RESOURCE, "", name, next, run->err);
    run->r->cluster = next;
    return rc == STORE_OK ? 0 : -1;
}

/* A cluster being deleted (borrowed, as the write left it): its namespace goes, then perhaps the cluster. */
static int settle_cluster(run_t *run, const json_t *cluster)
{
    const char *ns = objmeta_get_string(cluster, "name");
    size_t remaining = 0;
    if (ns == NULL)
        return 0;
    for (size_t i = 0; i < schema_kind_count(); i++) {
        const schema_kind_t *k = schema_kind_at(i);
        if (k->namespaced && delete_kind(run, k->plural, ns, &remaining) != 0)
            return -1;
    }
    return remaining > 0 ? 0 : release(run, cluster);
}

/* An object of namespace ns was deleted: was it the last one its terminating cluster waited for? */
static int after_content_delete(run_t *run, const char *ns)
{
    json_t *cluster = NULL;
    int rc = store_txn_get(run->txn, CASCADE_OWNER_RESOURCE, "", ns, &cluster, NULL, run->err);
    if (rc == STORE_NOT_FOUND)
        return 0;
    if (rc != STORE_OK)
        return -1;
    int ret = 0;
    if (objmeta_is_deleting(cluster) && has_finalizer(cluster, CASCADE_FINALIZER)) {
        int empty = namespace_empty(run, ns);
        ret = empty < 0 ? -1 : empty ? release(run, cluster) : 0;
    }
    json_decref(cluster);
    return ret;
}

static int after_write(store_txn_t *txn, const store_op_t *op, void *ctx, lo_err_t *err)
{
    cascade_result_t scratch = {0};
    run_t run = {.txn = txn, .dry_run = op->dry_run, .r = ctx ? ctx : &scratch, .err = err};
    int ret = 0;
    cascade_result_clear(run.r); /* a batch that runs again runs the rule again */
    if (strcmp(op->resource, CASCADE_OWNER_RESOURCE) == 0) {
        if (op->done_kind != STORE_WRITE_DELETE && objmeta_is_deleting(op->result))
            ret = settle_cluster(&run, op->result);
    } else if (op->done_kind == STORE_WRITE_DELETE && !op->dry_run && op->ns && op->ns[0]) {
        ret = after_content_delete(&run, op->ns);
    }
    cascade_result_clear(&scratch);
    return ret;
}

void cascade_attach(store_op_t *op, cascade_result_t *result)
{
    op->after = after_write;
    op->after_ctx = result;
}
