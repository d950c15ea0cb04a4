/*
 * admission.h - the rules a structural schema cannot say, as C functions
 * registered per kind, run for a create or an update.
 *
 * Where they run: the policy rules in the store's writer, inside the
 * write's transaction (store_op_t.check), which is what makes a count
 * atomic with the write that follows it. The field rules on the request's
 * worker, before the write is queued; only when one fails does the worker
 * run every rule against a read snapshot, because membership comes before
 * validation (kube's NamespaceLifecycle before validation): an invalid
 * object in a namespace without a LanguageCluster is answered 403, not
 * 422. A valid object so needs no snapshot on the worker.
 *
 * Rules (each with its own tests):
 *  - LanguageModel: exactly one of spec.provider and spec.litellmProvider;
 *    spec.params must not carry credentials (api_key, aws_secret_access_key,
 *    vertex_credentials, ...): those belong in Secrets.
 *  - LanguageAgent: spec.execution.schedule is valid cron syntax, and is
 *    only allowed with spec.execution.mode task.
 *  - Every namespaced kind: on create, a LanguageCluster named after the
 *    namespace must exist (403 Forbidden otherwise: a LanguageCluster owns
 *    the namespace of its name).
 *  - Every namespaced kind: on create, the LanguageCluster's
 *    spec.capacity.max<Kind>s (maxModels, maxAgents, maxTools, maxPersonas)
 *    is enforced by counting in the same transaction (403 Forbidden,
 *    message naming the limit).
 * Field rules give 422 Invalid with one cause per field; policy rules give
 * 403 Forbidden in kube's admission wording:
 *   languagemodels.langop.io "x" is forbidden: <why>
 */
#ifndef LANGOP_ADMISSION_H
#define LANGOP_ADMISSION_H

#include <jansson.h>
#include "langop/core/common.h"
#include "langop/schema/admission_rule.h"
#include "langop/schema/schema.h"
#include "langop/storage/store.h"


/**
 * Runs every rule registered for k on obj (the object about to be stored,
 * borrowed). old is the stored object on update, NULL on create. txn reads
 * other objects (a snapshot, or the writer's transaction). Returns 0 or -1
 * with err.
 */
int admission_check(store_txn_t *txn, const schema_kind_t *k, admission_operation_t op, const json_t *old,
                    const json_t *obj, lo_err_t *err);

/** The field rules only (no store read): 0, or -1 with err (422) when one fails. */
int admission_check_fields(const schema_kind_t *k, admission_operation_t op, const json_t *old, const json_t *obj,
                           lo_err_t *err);

/**
 * The rules that read other objects (cross-object 422 rules; membership
 * and capacity, 403), for the writer's atomic re-check, inside the write's
 * transaction. old may be NULL on update (the writer compares anyway).
 */
int admission_check_writer(store_txn_t *txn, const schema_kind_t *k, admission_operation_t op, const json_t *old,
                           const json_t *obj, lo_err_t *err);

/** Whether admission_check_writer has anything to run for k and op (so the writer may skip the call). */
int admission_has_writer_rules(const schema_kind_t *k, admission_operation_t op);

#endif
