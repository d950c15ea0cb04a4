/*
 * patch.h - the PATCH formats on a jansson tree, with no knowledge of kinds:
 *   JSON patch (RFC 6902, application/json-patch+json),
 *   JSON merge patch (RFC 7386, application/merge-patch+json), also used for
 *   application/strategic-merge-patch+json: none of our lists declares a
 *   patch merge key, so a strategic merge patch means exactly a merge patch
 *   here, and its directives ($patch, $retainKeys, $setElementOrder/...,
 *   $deleteFromPrimitiveList/...) are refused rather than misread.
 *
 * Errors follow kube-apiserver's wording and codes for the same failure
 * (malformed patch 400; an operation that cannot apply, or a failed `test`,
 * as kube answers it). Inputs are borrowed; results are new references.
 */
#ifndef LANGOP_PATCH_H
#define LANGOP_PATCH_H

#include <jansson.h>
#include "langop/core/common.h"

/** Applies an RFC 6902 patch (an array of operations) to a copy of doc. NULL + err on failure. */
json_t *patch_json(const json_t *doc, const json_t *patch, lo_err_t *err);

/** Applies an RFC 7386 merge patch to a copy of doc (patch not an object replaces doc). Never fails. */
json_t *patch_merge(const json_t *doc, const json_t *patch);

/** 0 if patch (a strategic merge patch) carries no directive keys anywhere; else 400 naming it. */
int patch_check_strategic(const json_t *patch, lo_err_t *err);

#endif
