/*
 * selector.h - Kubernetes label and field selectors.
 *
 * Label selector grammar (apimachinery labels.Parse): requirements separated
 * by commas, all of which must hold:
 *   key=value  key==value  key!=value  key in (v1,v2)  key notin (v1,v2)
 *   key  (exists)   !key  (does not exist)
 * Keys are qualified names ([prefix/]name), values are label values (may be
 * empty). `key!=v` and `notin` also match objects without the key.
 * Field selectors: `path=value`, `path==value`, `path!=value`, comma = AND,
 * over a fixed set of supported dotted paths.
 *
 * Parse errors give NULL and err 400 BadRequest with Kubernetes' wording.
 * An empty or NULL text parses to a selector that matches everything.
 */
#ifndef LANGOP_SELECTOR_H
#define LANGOP_SELECTOR_H

#include <jansson.h>
#include "langop/core/common.h"

typedef struct label_selector label_selector_t;
typedef struct field_selector field_selector_t;

label_selector_t *label_selector_parse(const char *text, lo_err_t *err);

/*
 * The name rules of labels, shared with object metadata: each returns NULL
 * when text is valid, else why not (static text).
 *   key:    a qualified name, [DNS-1123-subdomain "/"] name, the name 1-63 of
 *           [A-Za-z0-9._-] with alphanumeric ends
 *   value:  empty, or a name as above
 *   subdomain: a lower-case DNS-1123 subdomain of at most 253 characters (a
 *           key's prefix; also what object names must be)
 */
const char *label_key_problem(const char *text);
const char *label_value_problem(const char *text);
const char *label_subdomain_problem(const char *text);
/** 1 if the labels object (borrowed; may be NULL = no labels) satisfies sel. */
int label_selector_matches(const label_selector_t *sel, const json_t *labels);
/** 1 if the selector has no requirements. */
int label_selector_empty(const label_selector_t *sel);
void label_selector_free(label_selector_t *sel);

/**
 * Parses a field selector. supported is a NULL-terminated list of dotted
 * paths ("metadata.name", "metadata.namespace"); any other field gives 400
 * `field label not supported: <field>`.
 */
field_selector_t *field_selector_parse(const char *text, const char *const *supported, lo_err_t *err);
/** 1 if obj (borrowed) satisfies sel. A missing field reads as "". */
int field_selector_matches(const field_selector_t *sel, const json_t *obj);
/** If sel requires `path=value` (exact), returns value (borrowed from sel), else NULL. */
const char *field_selector_exact(const field_selector_t *sel, const char *path);
void field_selector_free(field_selector_t *sel);

#endif
