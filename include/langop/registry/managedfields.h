/*
 * managedfields.h - server-side apply: field ownership (metadata.managedFields
 * with FieldsV1 sets), the apply merge, and conflict detection, following
 * sigs.k8s.io/structured-merge-diff as kube-apiserver uses it.
 *
 * A field set (FieldsV1) is a tree: "f:<name>" for an object field,
 * "k:<json of the list-map keys>" for an item of a list-type map (keys from
 * x-kubernetes-list-map-keys), "v:<json value>" for an item of a set, and
 * "." for the field itself when it has children in the set. List types come
 * from the kind's schema: map (merge items by keys), set (union of scalar
 * values), atomic (default for lists: owned and replaced whole); objects
 * merge field by field unless x-kubernetes-map-type: atomic.
 *
 * Ownership rules (the documented SSA behaviour):
 *  - apply by manager M: the fields of the applied config become M's Apply
 *    set; a field set to a different value by another manager's set is a
 *    conflict (409, one cause per field) unless force, in which case it is
 *    taken from that manager; a field M applied before and no longer applies
 *    is removed from the object unless another manager still owns it;
 *  - update (PUT, PATCH, create) by manager M: the fields it changed move to
 *    M's Update entry (operation Update), taken from other managers;
 *  - an entry whose set becomes empty is dropped; entries are per
 *    (manager, operation, subresource).
 * metadata.name, namespace, uid, resourceVersion and other server fields are
 * never tracked, nor are apiVersion and kind (as in kube).
 */
#ifndef LANGOP_MANAGEDFIELDS_H
#define LANGOP_MANAGEDFIELDS_H

#include <jansson.h>
#include "langop/core/common.h"
#include "langop/schema/schema.h"

/** The field set (new FieldsV1 tree) of every leaf and list item obj sets, per k's schema. */
json_t *managedfields_set_of(const schema_kind_t *k, const json_t *obj);

/** Set algebra on FieldsV1 trees (new references). */
json_t *managedfields_union(const json_t *a, const json_t *b);
json_t *managedfields_difference(const json_t *a, const json_t *b);
json_t *managedfields_intersection(const json_t *a, const json_t *b);
int managedfields_empty(const json_t *set);

/**
 * Server-side apply of applied (the manager's full intent) onto live (NULL
 * on create). On success *out is the new object (new reference) with
 * managedFields updated (time = now, apiVersion langop.io/v1alpha1,
 * operation Apply, fieldsType FieldsV1). On conflict: -1 and err 409
 * Conflict, `Apply failed with N conflict(s): conflict with "<manager>"
 * [using langop.io/v1alpha1]: .spec.x`, one details.causes entry
 * {reason FieldManagerConflict, message, field ".spec.x"} per field.
 * subresource is NULL or "status".
 */
int managedfields_apply(const schema_kind_t *k, const json_t *live, const json_t *applied, const char *manager,
                        int force, const char *subresource, json_t **out, lo_err_t *err);

/**
 * Records a non-apply write by manager (create: old NULL): moves the fields
 * that changed between old and next into manager's Update entry, in place
 * on next's metadata.managedFields (entries of old are carried over).
 */
void managedfields_record_update(const schema_kind_t *k, const json_t *old, json_t *next, const char *manager,
                                 const char *subresource);

#endif
