/*
 * test_conditions.c - conditions the reconcile thread writes
 * (langop/reconcile/conditions.h): transition times that move only with the
 * status, "nothing changed" when nothing did, and Ready from each kind of
 * workload.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "fixtures.h"

#include "langop/reconcile/conditions.h"

static const char *field(const json_t *list, const char *type, const char *key)
{
    size_t i;
    const json_t *c;
    json_array_foreach(list, i, c) {
        if (strcmp(json_string_value(json_object_get(c, "type")), type) == 0)
            return json_string_value(json_object_get(c, key));
    }
    return NULL;
}

static void test_same_verdict_changes_nothing_and_keeps_the_time(void **state)
{
    (void)state;
    json_t *old = fx_yaml("[{type: Other, status: 'True', reason: R, message: m}, {type: Ready, status: 'True', "
                       "reason: Available, message: ok, observedGeneration: 3, lastTransitionTime: "
                       "'2020-01-01T00:00:00Z'}]");
    int changed = -1;
    json_t *out = conditions_set(old, condition_new("Ready", "True", "Available", "ok", 3), &changed);
    assert_int_equal(changed, 0);
    assert_int_equal(json_array_size(out), 2);
    assert_string_equal(field(out, "Ready", "lastTransitionTime"), "2020-01-01T00:00:00Z");
    assert_string_equal(field(out, "Other", "reason"), "R");
    json_decref(out);
    /* a new message with the same status: changed, the time stays */
    out = conditions_set(old, condition_new("Ready", "True", "Available", "better", 3), &changed);
    assert_int_equal(changed, 1);
    assert_string_equal(field(out, "Ready", "lastTransitionTime"), "2020-01-01T00:00:00Z");
    json_decref(out);
    /* a new status: changed, a new time */
    out = conditions_set(old, condition_new("Ready", "False", "Unavailable", "down", 3), &changed);
    assert_int_equal(changed, 1);
    assert_string_not_equal(field(out, "Ready", "lastTransitionTime"), "2020-01-01T00:00:00Z");
    assert_string_equal(field(out, "Ready", "status"), "False");
    json_decref(out);
    /* a new generation observed: changed */
    out = conditions_set(old, condition_new("Ready", "True", "Available", "ok", 4), &changed);
    assert_int_equal(changed, 1);
    json_decref(out);
    json_decref(old);
}

static void test_a_new_type_is_appended(void **state)
{
    (void)state;
    int changed = 0;
    json_t *out = conditions_set(NULL, condition_new("SecretsAvailable", "False", "SecretNotFound", "k", 1), &changed);
    assert_int_equal(changed, 1);
    assert_int_equal(json_array_size(out), 1);
    assert_non_null(field(out, "SecretsAvailable", "lastTransitionTime"));
    json_decref(out);
}

static void expect_ready(const char *workload, const char *status, const char *reason)
{
    json_t *w = fx_yaml(workload);
    json_t *c = workload_ready_condition(w, 7);
    assert_non_null(c);
    assert_string_equal(json_string_value(json_object_get(c, "status")), status);
    assert_string_equal(json_string_value(json_object_get(c, "reason")), reason);
    assert_int_equal(json_integer_value(json_object_get(c, "observedGeneration")), 7);
    json_decref(c);
    json_decref(w);
}

static void test_ready_from_deployments(void **state)
{
    (void)state;
    expect_ready("{kind: Deployment, metadata: {generation: 2}, spec: {replicas: 2}, status: {observedGeneration: 2, "
                 "availableReplicas: 2}}",
                 "True", "Available");
    /* the controller has not seen the new generation yet */
    expect_ready("{kind: Deployment, metadata: {generation: 3}, spec: {replicas: 2}, status: {observedGeneration: 2, "
                 "availableReplicas: 2}}",
                 "Unknown", "Progressing");
    expect_ready("{kind: Deployment, metadata: {generation: 2}, spec: {replicas: 2}, status: {observedGeneration: 2, "
                 "availableReplicas: 1}}",
                 "Unknown", "Progressing");
    expect_ready("{kind: Deployment, metadata: {generation: 1}, spec: {}}", "Unknown", "Progressing");
    expect_ready("{kind: Deployment, metadata: {generation: 1}, spec: {replicas: 1}, status: {observedGeneration: 1, "
                 "conditions: [{type: Progressing, status: 'False', reason: ProgressDeadlineExceeded, message: "
                 "slow}]}}",
                 "False", "ProgressDeadlineExceeded");
    expect_ready("{kind: Deployment, metadata: {generation: 1}, spec: {replicas: 0}, status: {observedGeneration: 1}}",
                 "True", "Available");
}

static void test_ready_from_jobs_and_cronjobs(void **state)
{
    (void)state;
    expect_ready("{kind: CronJob, spec: {schedule: '* * * * *'}}", "True", "Scheduled");
    expect_ready("{kind: CronJob, spec: {suspend: true}}", "False", "Suspended");
    expect_ready("{kind: Job, status: {}}", "Unknown", "Pending");
    expect_ready("{kind: Job, status: {active: 1}}", "True", "Running");
    expect_ready("{kind: Job, status: {conditions: [{type: Complete, status: 'True'}]}}", "True", "Completed");
    expect_ready("{kind: Job, status: {conditions: [{type: Failed, status: 'True', reason: BackoffLimitExceeded}]}}",
                 "False", "BackoffLimitExceeded");
    json_t *svc = fx_yaml("{kind: Service}");
    assert_null(workload_ready_condition(svc, 1));
    json_decref(svc);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_same_verdict_changes_nothing_and_keeps_the_time),
        cmocka_unit_test(test_a_new_type_is_appended),
        cmocka_unit_test(test_ready_from_deployments),
        cmocka_unit_test(test_ready_from_jobs_and_cronjobs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
