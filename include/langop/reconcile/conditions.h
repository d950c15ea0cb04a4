/*
 * conditions.h - the status conditions the reconcile thread writes on
 * langop objects, as pure functions of what it read (unit-tested apart from
 * any cluster).
 *
 * A condition is {type, status "True"|"False"|"Unknown", reason, message,
 * observedGeneration, lastTransitionTime}, as metav1.Condition. The
 * transition time moves only when status does (as kube's
 * meta.SetStatusCondition), so writing the same verdict again changes
 * nothing and the reconciler writes nothing.
 */
#ifndef LANGOP_RECONCILE_CONDITIONS_H
#define LANGOP_RECONCILE_CONDITIONS_H

#include <jansson.h>

/** A new condition without lastTransitionTime (conditions_set stamps it). */
json_t *condition_new(const char *type, const char *status, const char *reason, const char *message,
                      json_int_t generation);

/**
 * old (borrowed array, may be NULL) with cond (stolen) in place of the
 * condition of its type: a new array. lastTransitionTime is carried from
 * old when the status is the same, else now. *changed is 0 when the result
 * equals old (same type, status, reason, message, observedGeneration).
 */
json_t *conditions_set(const json_t *old, json_t *cond, int *changed);

/**
 * The Ready condition of a langop object from the workload that runs it
 * (borrowed: a Deployment, CronJob or Job as the cluster holds it), new:
 *   Deployment: True/Available when at least spec.replicas (default 1)
 *     replicas are available for the current generation; False with the
 *     Deployment's reason when its Progressing condition is False (e.g.
 *     ProgressDeadlineExceeded); Unknown/Progressing otherwise;
 *   CronJob: True/Scheduled (False/Suspended when spec.suspend);
 *   Job: True/Completed when it succeeded, False with the reason of its
 *     Failed condition when it failed, True/Running while pods are active,
 *     Unknown/Pending before.
 * generation is the langop object's metadata.generation.
 */
json_t *workload_ready_condition(const json_t *workload, json_int_t generation);

#endif
