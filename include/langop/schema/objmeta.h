/*
 * objmeta.h - the rules of ObjectMeta and of an object's envelope that
 * every kind shares: type checks, names, namespaces, labels, server-set
 * fields, and what create, update and status writes may change.
 *
 * These follow kube-apiserver's rest.BeforeCreate / BeforeUpdate and
 * apimachinery's ObjectMeta validation, with its wording. Errors are 400
 * BadRequest for a malformed request and 422 Invalid (with one cause per
 * field) for a well-formed object that breaks a rule. All functions are
 * pure: no I/O, no clock except where a timestamp is set.
 */
#ifndef LANGOP_OBJMETA_H
#define LANGOP_OBJMETA_H

#include <stddef.h>
#include <jansson.h>
#include "langop/core/common.h"
#include "langop/schema/schema.h"

#define OBJMETA_NAME_MAX 253

/** The fields every kind supports in a fieldSelector (NULL-terminated). */
extern const char *const objmeta_field_labels[];

/** 1 if name is a DNS-1123 subdomain (what Kubernetes requires of object names). */
int objmeta_valid_name(const char *name);
/** 1 if key is a qualified name ([DNS-subdomain-prefix/]name, name <= 63 of [A-Za-z0-9._-], alnum ends). */
int objmeta_valid_qualified_name(const char *key);
/** 1 if value is a valid label value (empty, or <= 63 of [A-Za-z0-9._-] with alnum ends). */
int objmeta_valid_label_value(const char *value);

/**
 * Checks the envelope of a decoded body: a JSON object whose apiVersion and
 * kind are those of k, with metadata an object if present. 400 otherwise.
 */
int objmeta_check_envelope(const schema_kind_t *k, const json_t *obj, lo_err_t *err);

/**
 * Checks that the metadata of a decoded create or update body has the JSON
 * types of ObjectMeta (strings, int64s, string maps, string lists, lists
 * of objects; null for any): kube decodes metadata into that Go struct, so
 * a body where it does not fit is 400 BadRequest, before any validation.
 */
int objmeta_check_types(const schema_kind_t *k, const json_t *obj, lo_err_t *err);

/**
 * Prepares a create, in place: namespace from the URL (url_ns; "" for
 * cluster-scoped), validation of metadata (name or generateName, labels,
 * annotations, finalizers), server-set uid, creationTimestamp and
 * generation, system fields and status cleared. If the name is to be
 * generated, leaves metadata.name empty: the caller picks it with
 * objmeta_generate_name() (it may need retries on collision).
 */
int objmeta_prepare_create(const schema_kind_t *k, const char *url_ns, json_t *obj, lo_err_t *err);

/** Sets metadata.name = generateName + 5 random characters; 422 if the result is not a valid name. */
int objmeta_generate_name(const schema_kind_t *k, json_t *obj, lo_err_t *err);

/** 1 if obj's name must be generated (metadata.name empty, generateName set). */
int objmeta_needs_generated_name(const json_t *obj);

/**
 * Checks that the body addresses the object of the URL: metadata.name ==
 * url_name, namespace as for create. Fills the namespace if empty. 400 otherwise.
 */
int objmeta_check_target(const schema_kind_t *k, const char *url_ns, const char *url_name, json_t *obj,
                         lo_err_t *err);

/**
 * Preconditions of an update against current: a non-empty
 * metadata.resourceVersion must equal current's (409 Conflict), and a
 * non-empty uid likewise.
 */
int objmeta_check_preconditions(const schema_kind_t *k, const json_t *current, const json_t *body, lo_err_t *err);

/**
 * Builds the object to store for an update of the main resource (PUT):
 * a new reference to body's content with the server-owned metadata of
 * current (uid, creationTimestamp, deletion fields, generation, status
 * taken from current, since status changes go through /status),
 * generation + 1 when anything but metadata and status changed. NULL +
 * 422 if the update breaks a metadata rule.
 */
json_t *objmeta_merge_update(const schema_kind_t *k, const json_t *current, const json_t *body, lo_err_t *err);

/** Builds the object to store for a status update: current with body's status. New reference. */
json_t *objmeta_merge_status(const json_t *current, const json_t *body);

/** 1 if obj has metadata.deletionTimestamp set. */
int objmeta_is_deleting(const json_t *obj);
/** 1 if obj has a non-empty metadata.finalizers. */
int objmeta_has_finalizers(const json_t *obj);
/** Marks obj (modified in place) as being deleted now: deletionTimestamp, deletionGracePeriodSeconds 0. */
void objmeta_mark_deleting(json_t *obj);

/* Borrowed accessors for metadata fields; NULL (or "") when absent. */
const char *objmeta_get_string(const json_t *obj, const char *field);
json_t *objmeta_metadata(json_t *obj);   /* creates metadata {} if absent; borrowed */

#endif
