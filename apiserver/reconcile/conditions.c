/*
 * conditions.c - conditions of langop objects from what the cluster holds
 * (conditions.h).
 */
#include <stdio.h>
#include <string.h>

#include "langop/core/common.h"
#include "langop/reconcile/conditions.h"

static const char *str_of(const json_t *obj, const char *key)
{
    const json_t *v = json_object_get(obj, key);
    return json_is_string(v) ? json_string_value(v) : NULL;
}

static int same_str(const char *a, const char *b)
{
    return (a == NULL && b == NULL) || (a && b && strcmp(a, b) == 0);
}

json_t *condition_new(const char *type, const char *status, const char *reason, const char *message,
                      json_int_t generation)
{
    return json_pack("{s:s, s:s, s:s, s:s, s:I}", "type", type, "status", status, "reason", reason, "message",
                     message ? message : "", "observedGeneration", generation);
}

/* The condition of type in list (borrowed), or NULL. */
static const json_t *find_type(const json_t *list, const char *type)
{
    size_t i;
    const json_t *c;
    json_array_foreach(list, i, c) {
        if (same_str(str_of(c, "type"), type))
            return c;
    }
    return NULL;
}

static int same_verdict(const json_t *a, const json_t *b)
{
    static const char *const keys[] = {"status", "reason", "message", NULL};
    for (const char *const *k = keys; *k; k++)
        if (!same_str(str_of(a, *k), str_of(b, *k)))
            return 0;
    return json_equal(json_object_get(a, "observedGeneration"), json_object_get(b, "observedGeneration"));
}

json_t *conditions_set(const json_t *old, json_t *cond, int *changed)
{
    const char *type = str_of(cond, "type");
    const json_t *before = find_type(old, type);
    const char *carried = before && same_str(str_of(before, "status"), str_of(cond, "status"))
                              ? str_of(before, "lastTransitionTime")
                              : NULL;
    char now[40];
    lo_time_rfc3339(now, sizeof(now));
    json_object_set_new(cond, "lastTransitionTime", json_string(carried ? carried : now));
    *changed = before == NULL || !same_verdict(before, cond);
    json_t *out = json_array();
    size_t i;
    json_t *c;
    json_array_foreach(old, i, c) {
        if (c == before)
            json_array_append_new(out, json_incref(cond));
        else
            json_array_append(out, c);
    }
    if (before == NULL)
        json_array_append(out, cond);
    json_decref(cond);
    return out;
}

static json_int_t int_at(const json_t *obj, const char *a, const char *b)
{
    const json_t *v = json_object_get(json_object_get(obj, a), b);
    return json_is_integer(v) ? json_integer_value(v) : -1;
}

static json_t *deployment_ready(const json_t *d, json_int_t gen)
{
    json_int_t want = int_at(d, "spec", "replicas"), avail = int_at(d, "status", "availableReplicas");
    json_int_t seen = int_at(d, "status", "observedGeneration"), dgen = int_at(d, "metadata", "generation");
    if (want < 0)
        want = 1;
    if (avail < 0)
        avail = 0;
    char msg[128];
    if ((seen < 0 || dgen < 0 || seen >= dgen) && avail >= want && seen >= 0) {
        snprintf(msg, sizeof(msg), "%lld of %lld replicas available", (long long)avail, (long long)want);
        return condition_new("Ready", "True", "Available", msg, gen);
    }
    const json_t *p = find_type(json_object_get(json_object_get(d, "status"), "conditions"), "Progressing");
    if (p && same_str(str_of(p, "status"), "False"))
        return condition_new("Ready", "False", str_of(p, "reason") ? str_of(p, "reason") : "NotProgressing",
                             str_of(p, "message"), gen);
    snprintf(msg, sizeof(msg), "waiting for %lld replicas to be available (%lld are)", (long long)want,
             (long long)avail);
    return condition_new("Ready", "Unknown", "Progressing", msg, gen);
}

static json_t *job_ready(const json_t *j, json_int_t gen)
{
    const json_t *conds = json_object_get(json_object_get(j, "status"), "conditions");
    const json_t *failed = find_type(conds, "Failed"), *complete = find_type(conds, "Complete");
    if (complete && same_str(str_of(complete, "status"), "True"))
        return condition_new("Ready", "True", "Completed", "the Job completed", gen);
    if (failed && same_str(str_of(failed, "status"), "True"))
        return condition_new("Ready", "False", str_of(failed, "reason") ? str_of(failed, "reason") : "Failed",
                             str_of(failed, "message"), gen);
    if (int_at(j, "status", "active") > 0)
        return condition_new("Ready", "True", "Running", "the Job's pods are running", gen);
    return condition_new("Ready", "Unknown", "Pending", "the Job has not started", gen);
}

json_t *workload_ready_condition(const json_t *workload, json_int_t generation)
{
    const char *kind = str_of(workload, "kind");
    if (same_str(kind, "Deployment"))
        return deployment_ready(workload, generation);
    if (same_str(kind, "Job"))
        return job_ready(workload, generation);
    if (same_str(kind, "CronJob")) {
        if (json_is_true(json_object_get(json_object_get(workload, "spec"), "suspend")))
            return condition_new("Ready", "False", "Suspended", "the CronJob is suspended", generation);
        return condition_new("Ready", "True", "Scheduled", "the CronJob is scheduled", generation);
    }
    return NULL;
}
