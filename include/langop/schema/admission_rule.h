/*
 * admission_rule.h - what one admission rule sees and how it answers: the
 * contract between the rule table in admission.c and the modules that hold
 * rules of one topic (modelrules.c: a LanguageModel's provider config;
 * keyrules.c: keys never reach agents).
 *
 * Three sorts of rule, run in this order of sorts where the table mixes
 * them (admission.c says when each runs):
 *  - RULE_FIELD looks at the object alone and adds one 422 cause per
 *    broken field to err; returns how many it added. Runs on the request's
 *    worker, with no store.
 *  - RULE_CROSS reads other objects through in->txn and adds 422 causes
 *    the same way (a reference to something the object may not use). Runs
 *    in the store's writer, atomically with the write, on create and on
 *    update, so two concurrent writes cannot both slip past it.
 *  - RULE_POLICY reads other objects and answers 403 at once: returns 0, or
 *    -1 with err filled (403, or 500 when the store fails).
 *
 * Everything in rule_input_t is borrowed for the duration of the call.
 */
#ifndef LANGOP_ADMISSION_RULE_H
#define LANGOP_ADMISSION_RULE_H

#include <jansson.h>
#include "langop/core/common.h"
#include "langop/schema/schema.h"
#include "langop/storage/store.h"

typedef enum admission_operation {
    ADMISSION_CREATE = 1,
    ADMISSION_UPDATE = 2,
} admission_operation_t;

typedef struct rule_input {
    store_txn_t *txn;            /* NULL for field rules */
    void *cluster;               /* admission.c's cache of the owning LanguageCluster */
    const schema_kind_t *k;
    admission_operation_t op;
    const json_t *old;           /* stored object on update (may be NULL in the writer), NULL on create */
    const json_t *obj;           /* the object about to be stored */
    const char *name;            /* metadata.name, "" when unset */
    const char *ns;              /* metadata.namespace, "" when unset */
} rule_input_t;

typedef enum rule_sort {
    RULE_FIELD,
    RULE_CROSS,
    RULE_POLICY,
} rule_sort_t;

typedef int (*rule_fn)(const rule_input_t *in, lo_err_t *err);

/** Adds a FieldValueInvalid cause: `Invalid value: "<value>": <why>` at field. */
void rule_invalid(lo_err_t *err, const char *field, const char *value, const char *why);

/** Adds a FieldValueRequired cause: `Required value: <why>` at field. */
void rule_required(lo_err_t *err, const char *field, const char *why);

/** Adds a FieldValueForbidden cause: `Forbidden: <why>` at field. */
void rule_forbidden(lo_err_t *err, const char *field, const char *why);

/**
 * Whether key names a credential (api_key, apiKey, X-Api-Key,
 * aws_secret_access_key, client_secret, password ...), by the normal form
 * described in modelrules.c. max_tokens, cache_key and the like do not.
 */
int rule_is_credential_key(const char *key);

#endif
