/*
 * test_desired.c - the Kubernetes objects of a LanguageCluster
 * (langop/reconcile/desired.h): which objects, their key fields, and which
 * hashes move when a model is added, a key is rotated or a Secret is
 * missing.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "fixtures.h"

#include "langop/reconcile/desired.h"

#define CLUSTER "{metadata: {name: team}, spec: {gateway: {replicas: 2}}}"
#define MODEL(n, secret)                                                                                    \
    "{kind: LanguageModel, metadata: {name: " n ", namespace: team}, spec: {provider: openai, modelName: " \
    "gpt-4o, apiKeySecretRef: {name: " secret ", key: api-key}}}"
#define AGENT(n, model, extra)                                                                          \
    "{kind: LanguageAgent, metadata: {name: " n ", namespace: team, uid: u-" n "}, spec: {image: agent:1, " \
    "models: [{name: " model "}]" extra "}}"

typedef struct world {
    json_t *cluster, *models, *agents, *tools, *personas, *secrets;
} world_t;

static world_t world_new(void)
{
    world_t w = {
        .cluster = fx_yaml(CLUSTER),
        .models = fx_yaml("[" MODEL("m1", "k1") ", " MODEL("m2", "k2") "]"),
        .agents = fx_yaml("[" AGENT("a", "m1", ", tools: [{name: search}, {name: files}]") "]"),
        .tools = fx_yaml("[{kind: LanguageTool, metadata: {name: search, namespace: team}, spec: {image: search:1, "
                      "port: 9000}}, {kind: LanguageTool, metadata: {name: files, namespace: team}, spec: {image: "
                      "files:1, deploymentMode: sidecar}}]"),
        .personas = json_array(),
        .secrets = fx_yaml("{k1: {resourceVersion: '10', keys: [api-key]}, k2: {resourceVersion: '11', keys: "
                        "[api-key]}}"),
    };
    return w;
}

static void world_free(world_t *w)
{
    json_decref(w->cluster), json_decref(w->models), json_decref(w->agents);
    json_decref(w->tools), json_decref(w->personas), json_decref(w->secrets);
}

static desired_t build(const world_t *w)
{
    desired_input_t in = {.cluster = w->cluster, .models = w->models, .agents = w->agents, .tools = w->tools,
                          .personas = w->personas, .secrets = w->secrets};
    desired_options_t o = {.cluster_domain = "cluster.local"};
    desired_t d;
    lo_err_t err = {0};
    if (desired_build(&in, &o, &d, &err) != 0)
        fail_msg("desired_build: %s", err.message);
    return d;
}

/*
 * The value at path: keys joined by '.', array indexes as numbers; a key
 * that itself holds dots (labels, config.yaml) is matched whole, longest
 * first.
 */
static const json_t *j_at(const json_t *v, const char *path)
{
    while (v && *path) {
        if (json_is_array(v)) {
            char *end;
            v = json_array_get(v, strtoul(path, &end, 10));
            path = *end == '.' ? end + 1 : end;
            continue;
        }
        size_t len = strlen(path);
        const json_t *next = NULL;
        while (len > 0 && (next = json_object_getn(v, path, len)) == NULL) {
            while (len > 0 && path[--len] != '.')
                ;
        }
        if (next == NULL)
            return NULL;
        v = next;
        path += len + (path[len] == '.');
    }
    return v;
}

static const char *s_at(const json_t *v, const char *path)
{
    v = j_at(v, path);
    return json_is_string(v) ? json_string_value(v) : NULL;
}

static const json_t *find(const desired_t *d, const char *kind, const char *name)
{
    size_t i;
    json_t *o;
    json_array_foreach(d->objects, i, o) {
        if (strcmp(s_at(o, "kind"), kind) == 0 && strcmp(s_at(o, "metadata.name"), name) == 0)
            return o;
    }
    return NULL;
}

static const char *hash_of(const desired_t *d, const char *kind, const char *name)
{
    const json_t *o = find(d, kind, name);
    if (o == NULL)
        fail_msg("no %s %s", kind, name);
    return desired_applied_hash(o);
}

static void test_the_objects_of_a_cluster(void **state)
{
    (void)state;
    world_t w = world_new();
    desired_t d = build(&w);
    static const char *const want[][2] = {
        {"Namespace", "team"}, {"ConfigMap", "gateway-config"}, {"Deployment", "gateway"}, {"Service", "gateway"},
        {"Deployment", "search"}, {"Service", "search"}, {"ConfigMap", "a-agent"}, {"Deployment", "a"},
    };
    assert_int_equal(json_array_size(d.objects), sizeof(want) / sizeof(*want));
    for (size_t i = 0; i < sizeof(want) / sizeof(*want); i++) {
        const json_t *o = json_array_get(d.objects, i);
        assert_string_equal(s_at(o, "kind"), want[i][0]);
        assert_string_equal(s_at(o, "metadata.name"), want[i][1]);
        assert_string_equal(s_at(o, "metadata.labels.app.kubernetes.io/managed-by"), "langop-apiserver");
        assert_string_equal(s_at(o, "metadata.labels.langop.io/cluster"), "team");
        if (i > 0)
            assert_string_equal(s_at(o, "metadata.namespace"), "team");
        char h[65];
        desired_hash(o, h);
        assert_string_equal(desired_applied_hash(o), h);
    }
    assert_int_equal(json_array_size(d.unserved), 0);
    desired_free(&d);
    world_free(&w);
}

static void test_gateway_deployment_and_service(void **state)
{
    (void)state;
    world_t w = world_new();
    desired_t d = build(&w);
    const json_t *gw = find(&d, "Deployment", "gateway");
    assert_int_equal(json_integer_value(j_at(gw, "spec.replicas")), 2);
    assert_string_equal(s_at(gw, "metadata.labels.langop.io/languagecluster"), "team");
    const json_t *c = j_at(gw, "spec.template.spec.containers.0");
    assert_string_equal(s_at(c, "image"), DESIRED_GATEWAY_IMAGE);
    assert_int_equal(json_integer_value(j_at(c, "ports.0.containerPort")), 4000);
    assert_string_equal(s_at(c, "livenessProbe.httpGet.path"), "/health/liveliness");
    assert_string_equal(s_at(c, "readinessProbe.httpGet.path"), "/health/readiness");
    assert_string_equal(s_at(c, "volumeMounts.0.mountPath"), "/etc/litellm");
    assert_string_equal(s_at(gw, "spec.template.spec.volumes.0.configMap.name"), "gateway-config");
    /* one variable per key, from its Secret, as gatewayconfig.env lists it */
    assert_int_equal(json_array_size(j_at(c, "env")), 2);
    assert_string_equal(s_at(c, "env.0.name"), "LANGOP_API_KEY_M1");
    assert_string_equal(s_at(c, "env.0.valueFrom.secretKeyRef.name"), "k1");
    assert_non_null(s_at(gw, "spec.template.metadata.annotations.langop.io/config-hash"));
    const json_t *svc = find(&d, "Service", "gateway");
    assert_int_equal(json_integer_value(j_at(svc, "spec.ports.0.port")), 8000);
    assert_string_equal(s_at(svc, "spec.ports.0.targetPort"), "http");
    assert_true(json_equal(j_at(svc, "spec.selector"), j_at(gw, "spec.selector.matchLabels")));
    const char *yaml_text = s_at(find(&d, "ConfigMap", "gateway-config"), "data.config.yaml");
    assert_non_null(strstr(yaml_text, "model_name: m1"));
    assert_non_null(strstr(yaml_text, "model_name: m2"));
    desired_free(&d);
    world_free(&w);
}

static void test_agent_workload(void **state)
{
    (void)state;
    world_t w = world_new();
    desired_t d = build(&w);
    const json_t *a = find(&d, "Deployment", "a");
    const json_t *pod = j_at(a, "spec.template.spec");
    assert_string_equal(s_at(pod, "containers.0.image"), "agent:1");
    assert_string_equal(s_at(pod, "containers.0.env.0.name"), "MODEL_ENDPOINT");
    assert_string_equal(s_at(pod, "containers.0.env.0.value"), "http://gateway.team.svc.cluster.local:8000");
    assert_string_equal(s_at(pod, "containers.0.volumeMounts.0.mountPath"), "/etc/agent");
    assert_string_equal(s_at(pod, "volumes.0.configMap.name"), "a-agent");
    /* the sidecar tool is a native sidecar of the agent's pod; the service tool is not */
    assert_int_equal(json_array_size(j_at(pod, "initContainers")), 1);
    assert_string_equal(s_at(pod, "initContainers.0.image"), "files:1");
    assert_string_equal(s_at(pod, "initContainers.0.restartPolicy"), "Always");
    assert_null(find(&d, "Deployment", "files"));
    /* no key anywhere near the agent */
    char *text = json_dumps(a, 0);
    assert_null(strstr(text, "secretKeyRef"));
    free(text);
    desired_free(&d);
    world_free(&w);
}

static void test_a_new_model_moves_the_gateway_not_the_agent(void **state)
{
    (void)state;
    world_t w = world_new();
    desired_t before = build(&w);
    json_array_append_new(w.models, fx_yaml(MODEL("m3", "k1")));
    desired_t after = build(&w);
    assert_string_not_equal(hash_of(&before, "ConfigMap", "gateway-config"), hash_of(&after, "ConfigMap", "gateway-config"));
    assert_string_not_equal(hash_of(&before, "Deployment", "gateway"), hash_of(&after, "Deployment", "gateway"));
    assert_string_equal(hash_of(&before, "ConfigMap", "a-agent"), hash_of(&after, "ConfigMap", "a-agent"));
    assert_string_equal(hash_of(&before, "Deployment", "a"), hash_of(&after, "Deployment", "a"));
    assert_string_equal(hash_of(&before, "Service", "gateway"), hash_of(&after, "Service", "gateway"));
    desired_free(&before);
    desired_free(&after);
    world_free(&w);
}

static void test_a_rotated_key_rolls_only_the_gateway(void **state)
{
    (void)state;
    world_t w = world_new();
    desired_t before = build(&w);
    json_object_set_new(json_object_get(w.secrets, "k2"), "resourceVersion", json_string("99"));
    desired_t after = build(&w);
    const char *p = "spec.template.metadata.annotations.langop.io/config-hash";
    assert_string_not_equal(s_at(find(&before, "Deployment", "gateway"), p), s_at(find(&after, "Deployment", "gateway"), p));
    assert_string_equal(hash_of(&before, "ConfigMap", "gateway-config"), hash_of(&after, "ConfigMap", "gateway-config"));
    assert_string_equal(hash_of(&before, "Deployment", "a"), hash_of(&after, "Deployment", "a"));
    /* a Secret no model reads changes nothing */
    desired_free(&after);
    json_object_set_new(w.secrets, "unrelated", fx_yaml("{resourceVersion: '5', keys: [x]}"));
    json_object_set_new(json_object_get(w.secrets, "k2"), "resourceVersion", json_string("11"));
    after = build(&w);
    assert_string_equal(hash_of(&before, "Deployment", "gateway"), hash_of(&after, "Deployment", "gateway"));
    desired_free(&before);
    desired_free(&after);
    world_free(&w);
}

static void test_a_missing_secret_leaves_its_model_out(void **state)
{
    (void)state;
    world_t w = world_new();
    json_object_del(w.secrets, "k2");
    desired_t d = build(&w);
    assert_int_equal(json_array_size(d.unserved), 1);
    assert_string_equal(s_at(d.unserved, "0.name"), "m2");
    assert_string_equal(s_at(d.unserved, "0.reason"), "SecretNotFound");
    assert_string_equal(s_at(d.unserved, "0.message"), "Secret team/k2 not found");
    const char *yaml_text = s_at(find(&d, "ConfigMap", "gateway-config"), "data.config.yaml");
    assert_non_null(strstr(yaml_text, "model_name: m1"));
    assert_null(strstr(yaml_text, "m2"));
    assert_int_equal(json_array_size(j_at(find(&d, "Deployment", "gateway"), "spec.template.spec.containers.0.env")), 1);
    desired_free(&d);
    /* the Secret is there but not the key */
    json_object_set_new(w.secrets, "k2", fx_yaml("{resourceVersion: '12', keys: [other]}"));
    d = build(&w);
    assert_int_equal(json_array_size(d.unserved), 1);
    assert_string_equal(s_at(d.unserved, "0.message"), "Secret team/k2 has no key api-key");
    desired_free(&d);
    /* unknown Secrets (NULL): every model is served */
    json_decref(w.secrets);
    w.secrets = NULL;
    d = build(&w);
    assert_int_equal(json_array_size(d.unserved), 0);
    desired_free(&d);
    world_free(&w);
}

static void test_task_agents(void **state)
{
    (void)state;
    world_t w = world_new();
    json_decref(w.agents);
    w.agents = fx_yaml("[" AGENT("nightly", "m1", ", execution: {mode: task, schedule: '0 3 * * *', timezone: UTC}")
                    ", " AGENT("once", "m1", ", execution: {mode: task}") "]");
    desired_t d = build(&w);
    const json_t *cj = find(&d, "CronJob", "nightly");
    assert_non_null(cj);
    assert_string_equal(s_at(cj, "spec.schedule"), "0 3 * * *");
    assert_string_equal(s_at(cj, "spec.timeZone"), "UTC");
    assert_string_equal(s_at(cj, "spec.concurrencyPolicy"), "Forbid");
    assert_string_equal(s_at(cj, "spec.jobTemplate.spec.template.spec.restartPolicy"), "OnFailure");
    assert_null(find(&d, "Deployment", "nightly"));
    /* a Job is named after its config: a new config is a new Job */
    const json_t *job = NULL;
    size_t i;
    json_t *o;
    json_array_foreach(d.objects, i, o) {
        if (strcmp(s_at(o, "kind"), "Job") == 0)
            job = o;
    }
    assert_non_null(job);
    assert_int_equal(strncmp(s_at(job, "metadata.name"), "once-", 5), 0);
    assert_string_equal(s_at(job, "metadata.labels.langop.io/languageagent"), "once");
    desired_free(&d);
    world_free(&w);
}

static void test_input_order_does_not_matter(void **state)
{
    (void)state;
    world_t w = world_new();
    desired_t a = build(&w);
    json_t *rev = json_array();
    for (size_t i = json_array_size(w.models); i-- > 0;)
        json_array_append(rev, json_array_get(w.models, i));
    json_decref(w.models);
    w.models = rev;
    desired_t b = build(&w);
    assert_true(json_equal(a.objects, b.objects));
    desired_free(&a);
    desired_free(&b);
    world_free(&w);
}

static void test_drift_is_what_desired_sets_and_live_does_not_hold(void **state)
{
    (void)state;
    json_t *desired = fx_yaml("{kind: Deployment, metadata: {name: gateway, labels: {a: '1'}, annotations: {h: x}}, "
                              "spec: {replicas: 2, template: {spec: {containers: [{name: gateway, image: i:1, "
                              "ports: [{containerPort: 4000}]}]}}}}");
    /* kube's defaults, status, other labels, other managers' fields: not drift */
    json_t *live = fx_yaml("{kind: Deployment, metadata: {name: gateway, uid: u, resourceVersion: '9', labels: {a: "
                           "'1', b: '2'}, annotations: {h: x, other: y}}, spec: {replicas: 2, progressDeadlineSeconds: "
                           "600, template: {spec: {dnsPolicy: ClusterFirst, containers: [{name: gateway, image: i:1, "
                           "imagePullPolicy: IfNotPresent, ports: [{containerPort: 4000, protocol: TCP}]}]}}}, "
                           "status: {replicas: 2}}");
    assert_int_equal(desired_drifted(desired, live), 0);
    static const char *const edits[] = {
        "{spec: {replicas: 3}}",                                                            /* scaled by hand */
        "{spec: {template: {spec: {containers: [{name: gateway, image: i:2, ports: [{containerPort: 4000}]}]}}}}",
        "{spec: {template: {spec: {containers: [{name: gateway, image: i:1}]}}}}",          /* a field removed */
        "{spec: {template: {spec: {containers: [{name: gateway, image: i:1, ports: [{containerPort: 4000}]}, "
        "{name: intruder, image: x}]}}}}",                                                  /* a container added */
        "{metadata: {labels: {a: '2'}}}",
        "{metadata: {annotations: null}}",
    };
    for (size_t i = 0; i < sizeof(edits) / sizeof(*edits); i++) {
        json_t *edited = json_deep_copy(live), *patch = fx_yaml(edits[i]);
        const char *k;
        json_t *v;
        json_object_foreach(patch, k, v) {
            json_t *target = json_object_get(edited, k);
            if (json_is_object(v) && json_is_object(target))
                json_object_update_recursive(target, v);
        }
        if (strstr(edits[i], "annotations: null"))
            json_object_del(json_object_get(edited, "metadata"), "annotations");
        if (desired_drifted(desired, edited) != 1)
            fail_msg("edit %zu not seen as drift: %s", i, edits[i]);
        json_decref(patch);
        json_decref(edited);
    }
    json_decref(live);
    json_decref(desired);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_the_objects_of_a_cluster),
        cmocka_unit_test(test_gateway_deployment_and_service),
        cmocka_unit_test(test_agent_workload),
        cmocka_unit_test(test_a_new_model_moves_the_gateway_not_the_agent),
        cmocka_unit_test(test_a_rotated_key_rolls_only_the_gateway),
        cmocka_unit_test(test_a_missing_secret_leaves_its_model_out),
        cmocka_unit_test(test_task_agents),
        cmocka_unit_test(test_input_order_does_not_matter),
        cmocka_unit_test(test_drift_is_what_desired_sets_and_live_does_not_hold),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
