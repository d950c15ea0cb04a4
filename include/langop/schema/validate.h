/*
 * validate.h - applying a kind's structural schema (openAPIV3Schema of its
 * file in openapi/) to an object: pruning unknown fields, defaulting, and
 * validation, the way kube-apiserver treats custom resources.
 *
 * Keywords understood: type (object, array, string, integer, number,
 * boolean), properties, additionalProperties, items, required, enum,
 * pattern, format (int32/int64 ranges), minimum/maximum (+exclusive),
 * minLength/maxLength (in characters), minItems/maxItems,
 * minProperties/maxProperties, nullable, default,
 * x-kubernetes-preserve-unknown-fields, x-kubernetes-int-or-string,
 * x-kubernetes-list-type (atomic, set, map) with x-kubernetes-list-map-keys,
 * x-kubernetes-embedded-resource. metadata is checked as ObjectMeta
 * elsewhere (objmeta.h); here only its name/generateName constraints of
 * the schema apply.
 *
 * Field paths are written as kube writes them: spec.models[0].name, and map
 * entries with dots (spec.deployment.resources.limits.cpu); no leading dot.
 */
#ifndef LANGOP_VALIDATE_H
#define LANGOP_VALIDATE_H

#include <jansson.h>
#include "langop/core/common.h"
#include "langop/schema/schema.h"

/**
 * Removes, in place, every field the schema does not know (outside
 * x-kubernetes-preserve-unknown-fields), at any depth, including unknown
 * top-level fields and unknown metadata fields (ObjectMeta's own).
 * If unknown is not NULL (borrowed array), appends the path of each
 * removed field ("spec.foo", "spec.models[0].bar"), in document order, for
 * kube's warning `unknown field "spec.foo"`.
 */
void validate_prune(const schema_kind_t *k, json_t *obj, json_t *unknown);

/**
 * Applies the schema's defaults in place: a missing property with a
 * `default` gets it (deep copy), at any depth, in list items and map values,
 * after the parent object exists. Never overwrites a present value. A
 * `null` on a field that is not nullable is replaced by its default, or
 * dropped when it has none (as kube does).
 */
void validate_default(const schema_kind_t *k, json_t *obj);

/**
 * Validates obj against the schema. Returns 0, or -1 with err set to 422
 * Invalid (status_invalid wording: `<Kind>.langop.io "<name>" is invalid:
 * <causes>`) with one details.causes entry per violation, each with kube's
 * reason (FieldValueRequired, FieldValueInvalid, FieldValueNotSupported,
 * FieldValueDuplicate, FieldValueTooLong, FieldValueTooMany,
 * FieldValueTypeInvalid) and message.
 */
int validate_object(const schema_kind_t *k, const json_t *obj, lo_err_t *err);

#endif
