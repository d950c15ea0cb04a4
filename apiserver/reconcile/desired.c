/*
 * desired.c - the Kubernetes objects of one LanguageCluster (desired.h).
 *
 * Each object is built key by key with jansson and hashed from its compact
 * JSON with sorted keys, so the hash is a function of content only. Every
 * builder returns a new reference; the caller owns it.
 */
#include <stdlib.h>
#include <string.h>

#include "langop/derive/render.h"
#include "langop/reconcile/desired.h"

#define OWNER_CLUSTER DESIRED_LABEL_OWNER_CLUSTER
#define OWNER_AGENT DESIRED_LABEL_OWNER_AGENT
#define OWNER_TOOL DESIRED_LABEL_OWNER_TOOL
#define GATEWAY_CONFIG_DIR "/etc/litellm"
#define AGENT_CONFIG_DIR "/etc/agent"

typedef struct build {
    const desired_input_t *in;
    const char *ns;     /* the cluster's name: its namespace */
    const char *domain;
    const char *gateway_image;
    json_t *objects;    /* borrowed from the desired_t being filled */
} build_t;

static const char *str_of(const json_t *obj, const char *key)
{
    const json_t *v = json_object_get(obj, key);
    return json_is_string(v) ? json_string_value(v) : NULL;
}

static const json_t *at(const json_t *obj, const char *a, const char *b)
{
    const json_t *v = json_object_get(obj, a);
    return b && v ? json_object_get(v, b) : v;
}

static const char *name_of(const json_t *obj)
{
    const char *n = str_of(json_object_get(obj, "metadata"), "name");
    return n ? n : "";
}

/* A deep copy of v (borrowed) when it is a non-empty object or array, else NULL. */
static json_t *copy_nonempty(const json_t *v)
{
    if ((json_is_object(v) && json_object_size(v) > 0) || (json_is_array(v) && json_array_size(v) > 0))
        return json_deep_copy(v);
    return NULL;
}

static void set_if(json_t *obj, const char *key, json_t *v /* stolen, may be NULL */)
{
    if (v)
        json_object_set_new(obj, key, v);
}

/* ---- metadata ---- */

static json_t *labels_for(const build_t *b, const char *owner_label, const char *owner, const char *app)
{
    return json_pack("{s:s, s:s, s:s, s:s, s:s}", DESIRED_LABEL_MANAGED_BY, DESIRED_MANAGER, DESIRED_LABEL_CLUSTER,
                     b->ns, owner_label, owner, "app.kubernetes.io/name", app, "app.kubernetes.io/instance", owner);
}

/* The pod selector of a workload: the two labels that never change. */
static json_t *selector_for(const char *app, const char *owner)
{
    return json_pack("{s:s, s:s}", "app.kubernetes.io/name", app, "app.kubernetes.io/instance", owner);
}

static json_t *object_new(const char *api_version, const char *kind, const char *name, const char *ns,
                          json_t *labels /* stolen */)
{
    json_t *md = json_pack("{s:s, s:o}", "name", name, "labels", labels);
    if (ns)
        json_object_set_new(md, "namespace", json_string(ns));
    return json_pack("{s:s, s:s, s:o}", "apiVersion", api_version, "kind", kind, "metadata", md);
}

void desired_hash(const json_t *obj, char out[65])
{
    json_t *copy = json_deep_copy(obj);
    json_t *ann = json_object_get(json_object_get(copy, "metadata"), "annotations");
    json_object_del(ann, DESIRED_ANNOTATION_HASH);
    if (json_is_object(ann) && json_object_size(ann) == 0)
        json_object_del(json_object_get(copy, "metadata"), "annotations");
    char *text = json_dumps(copy, JSON_COMPACT | JSON_SORT_KEYS);
    lo_sha256_hex(text, strlen(text), out);
    free(text);
    json_decref(copy);
}

const char *desired_applied_hash(const json_t *obj)
{
    return str_of(at(obj, "metadata", "annotations"), DESIRED_ANNOTATION_HASH);
}

/* What desired sets, live holds the same (see desired_drifted). */
static int holds(const json_t *desired, const json_t *live)
{
    if (desired == NULL)
        return 1;
    if (json_is_object(desired)) {
        if (!json_is_object(live))
            return 0;
        const char *k;
        json_t *v;
        json_object_foreach((json_t *)desired, k, v) {
            if (!holds(v, json_object_get(live, k)))
                return 0;
        }
        return 1;
    }
    if (json_is_array(desired)) {
        if (!json_is_array(live) || json_array_size(live) != json_array_size(desired))
            return 0;
        for (size_t i = 0; i < json_array_size(desired); i++)
            if (!holds(json_array_get(desired, i), json_array_get(live, i)))
                return 0;
        return 1;
    }
    return json_equal(desired, live);
}

int desired_drifted(const json_t *desired, const json_t *live)
{
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)desired, k, v) {
        const json_t *lv = json_object_get(live, k);
        if (strcmp(k, "metadata") == 0) {
            if (!holds(json_object_get(v, "labels"), json_object_get(lv, "labels")) ||
                !holds(json_object_get(v, "annotations"), json_object_get(lv, "annotations")))
                return 1;
        } else if (!holds(v, lv)) {
            return 1;
        }
    }
    return 0;
}

/* Seals obj with its hash and appends it (stolen) to the output. */
static void emit(build_t *b, json_t *obj)
{
    char hash[65];
    desired_hash(obj, hash);
    json_t *md = json_object_get(obj, "metadata");
    json_t *ann = json_object_get(md, "annotations");
    if (ann == NULL) {
        ann = json_object();
        json_object_set_new(md, "annotations", ann);
    }
    json_object_set_new(ann, DESIRED_ANNOTATION_HASH, json_string(hash));
    json_array_append_new(b->objects, obj);
}

/* ---- pieces of pod specs ---- */

static json_t *config_map(const build_t *b, const char *name, json_t *labels, const char *yaml)
{
    json_t *cm = object_new("v1", "ConfigMap", name, b->ns, labels);
    json_object_set_new(cm, "data", json_pack("{s:s}", "config.yaml", yaml));
    return cm;
}

static json_t *config_volume(const char *config_map_name)
{
    return json_pack("{s:s, s:{s:s}}", "name", "config", "configMap", "name", config_map_name);
}

static json_t *config_mount(const char *dir)
{
    return json_pack("{s:s, s:s, s:b}", "name", "config", "mountPath", dir, "readOnly", 1);
}

/* env (borrowed) then the user's entries (borrowed, may be NULL) whose names it does not have. */
static json_t *env_merged(const json_t *env, const json_t *user)
{
    json_t *out = json_deep_copy(env);
    size_t i, j;
    json_t *u, *e;
    json_array_foreach(user, i, u) {
        int clash = 0;
        json_array_foreach(env, j, e) {
            const char *a = str_of(u, "name"), *c = str_of(e, "name");
            clash |= a && c && strcmp(a, c) == 0;
        }
        if (!clash)
            json_array_append(out, u);
    }
    return out;
}

/* The pod-level fields a DeploymentSpec-like spec (borrowed, may be NULL) sets. */
static void pod_fields(json_t *pod, const json_t *dep)
{
    set_if(pod, "nodeSelector", copy_nonempty(json_object_get(dep, "nodeSelector")));
    set_if(pod, "tolerations", copy_nonempty(json_object_get(dep, "tolerations")));
    const char *sa = str_of(dep, "serviceAccountName");
    if (sa)
        json_object_set_new(pod, "serviceAccountName", json_string(sa));
}

/* {metadata: {labels, annotations}, spec: pod} (all stolen). */
static json_t *pod_template(json_t *labels, json_t *annotations, json_t *pod)
{
    json_t *md = json_pack("{s:o}", "labels", labels);
    if (json_object_size(annotations) > 0)
        json_object_set_new(md, "annotations", annotations);
    else
        json_decref(annotations);
    return json_pack("{s:o, s:o}", "metadata", md, "spec", pod);
}

static json_t *pod_annotations(const json_t *dep, const char *config_hash)
{
    json_t *ann = json_object();
    const json_t *user = json_object_get(dep, "podAnnotations");
    if (json_is_object(user))
        json_object_update(ann, (json_t *)user);
    if (config_hash)
        json_object_set_new(ann, DESIRED_ANNOTATION_CONFIG_HASH, json_string(config_hash));
    return ann;
}

static json_t *replicas_of(const json_t *dep)
{
    const json_t *r = json_object_get(dep, "replicas");
    return json_integer(json_is_integer(r) ? json_integer_value(r) : 1);
}

static json_t *deployment(const build_t *b, const char *name, json_t *labels, json_t *selector, const json_t *dep,
                          json_t *template)
{
    json_t *d = object_new("apps/v1", "Deployment", name, b->ns, labels);
    json_object_set_new(d, "spec", json_pack("{s:o, s:{s:o}, s:o}", "replicas", replicas_of(dep), "selector",
                                             "matchLabels", selector, "template", template));
    return d;
}

static json_t *service(const build_t *b, const char *name, json_t *labels, json_t *selector, json_t *ports)
{
    json_t *s = object_new("v1", "Service", name, b->ns, labels);
    json_object_set_new(s, "spec", json_pack("{s:s, s:o, s:o}", "type", "ClusterIP", "selector", selector,
                                             "ports", ports));
    return s;
}

/* ---- the gateway ---- */

/* The Secret references of one model's variables (borrowed env of a one-model render). */
static int model_secrets_ok(const build_t *b, const json_t *env, char **why)
{
    size_t i;
    json_t *e;
    json_array_foreach(env, i, e) {
        const json_t *ref = at(json_object_get(e, "valueFrom"), "secretKeyRef", NULL);
        const char *secret = str_of(ref, "name"), *key = str_of(ref, "key");
        if (secret == NULL)
            continue;
        const json_t *seen = json_object_get(b->in->secrets, secret);
        int optional = json_is_true(json_object_get(ref, "optional")), found = 0;
        if (seen == NULL && optional) /* as kubelet: an optional reference may be missing */
            continue;
        if (seen == NULL) {
            *why = lo_sprintf("Secret %s/%s not found", b->ns, secret);
            return 0;
        }
        size_t k;
        json_t *have;
        json_array_foreach(json_object_get(seen, "keys"), k, have) {
            found |= key && json_is_string(have) && strcmp(json_string_value(have), key) == 0;
        }
        if (!found && !optional) {
            *why = lo_sprintf("Secret %s/%s has no key %s", b->ns, secret, key ? key : "");
            return 0;
        }
    }
    return 1;
}

/*
 * m (borrowed) as it will be once the reconciler has written what it finds
 * of its Secrets (a new copy without RENDER_COND_SECRETS): the renderer
 * leaves a model out by that condition, and the Secrets decide it here.
 */
static json_t *without_secrets_condition(const json_t *m)
{
    json_t *copy = json_deep_copy(m);
    json_t *conds = json_object_get(json_object_get(copy, "status"), "conditions");
    for (size_t i = json_array_size(conds); i-- > 0;) {
        const char *type = str_of(json_array_get(conds, i), "type");
        if (type && strcmp(type, RENDER_COND_SECRETS) == 0)
            json_array_remove(conds, i);
    }
    return copy;
}

/* The models whose Secrets are all there (new array); the others go to unserved. */
static json_t *servable_models(const build_t *b, json_t *unserved, lo_err_t *err)
{
    json_t *ok = json_array();
    size_t i;
    json_t *m;
    json_array_foreach(b->in->models, i, m) {
        if (b->in->secrets == NULL) {
            json_array_append(ok, m);
            continue;
        }
        json_t *one = json_pack("[o]", without_secrets_condition(m));
        render_result_t r = {0};
        int rc = render_gateway_config(b->ns, b->domain, b->in->cluster, one, &r, err);
        if (rc != 0) {
            json_decref(one);
            json_decref(ok);
            return NULL;
        }
        char *why = NULL;
        if (model_secrets_ok(b, r.env, &why))
            json_array_append(ok, json_array_get(one, 0));
        else
            json_array_append_new(unserved, json_pack("{s:s, s:s, s:s}", "name", name_of(m), "reason",
                                                      "SecretNotFound", "message", why));
        free(why);
        json_decref(one);
        render_result_free(&r);
    }
    return ok;
}

/* sha256 of the rendering and of "name=resourceVersion" of every Secret its env reads, sorted by name. */
static void gateway_config_hash(const build_t *b, const render_result_t *r, char out[65])
{
    json_t *versions = json_object();
    size_t i;
    json_t *e;
    json_array_foreach(r->env, i, e) {
        const char *secret = str_of(at(json_object_get(e, "valueFrom"), "secretKeyRef", NULL), "name");
        const char *rv = secret ? str_of(json_object_get(b->in->secrets, secret), "resourceVersion") : NULL;
        if (secret)
            json_object_set_new(versions, secret, json_string(rv ? rv : ""));
    }
    char *v = json_dumps(versions, JSON_COMPACT | JSON_SORT_KEYS);
    char *all = lo_sprintf("%s\n%s", r->hash, v);
    lo_sha256_hex(all, strlen(all), out);
    free(all);
    free(v);
    json_decref(versions);
}

static json_t *probe(const char *path, int initial_delay_s)
{
    return json_pack("{s:{s:s, s:s}, s:i, s:i, s:i, s:i}", "httpGet", "path", path, "port", "http",
                     "initialDelaySeconds", initial_delay_s, "periodSeconds", 10, "timeoutSeconds", 5,
                     "failureThreshold", 3);
}

static json_t *gateway_resources(const json_t *gw)
{
    json_t *user = copy_nonempty(json_object_get(gw, "resources"));
    if (user)
        return user;
    return json_pack("{s:{s:s, s:s}, s:{s:s, s:s}}", "requests", "cpu", "100m", "memory", "128Mi", "limits", "cpu",
                     "1", "memory", "512Mi");
}

static json_t *gateway_container(const build_t *b, const json_t *gw, const render_result_t *r)
{
    const char *image = str_of(gw, "image");
    json_t *c = json_pack("{s:s, s:s, s:[s,s,s,s], s:[{s:s, s:i, s:s}]}", "name", "gateway", "image",
                          image ? image : b->gateway_image, "args", "--config", GATEWAY_CONFIG_DIR "/config.yaml",
                          "--port", "4000", "ports", "name", "http", "containerPort", DESIRED_GATEWAY_CONTAINER_PORT,
                          "protocol", "TCP");
    json_object_set_new(c, "env", env_merged(r->env, json_object_get(gw, "env")));
    json_object_set_new(c, "resources", gateway_resources(gw));
    json_object_set_new(c, "volumeMounts", json_pack("[o]", config_mount(GATEWAY_CONFIG_DIR)));
    json_object_set_new(c, "livenessProbe", probe("/health/liveliness", 30));
    json_object_set_new(c, "readinessProbe", probe("/health/readiness", 10));
    return c;
}

static int build_gateway(build_t *b, json_t *unserved, lo_err_t *err)
{
    json_t *models = servable_models(b, unserved, err);
    if (models == NULL)
        return -1;
    render_result_t r = {0};
    int rc = render_gateway_config(b->ns, b->domain, b->in->cluster, models, &r, err);
    json_decref(models);
    if (rc != 0)
        return -1;
    const json_t *gw = at(b->in->cluster, "spec", "gateway");
    emit(b, config_map(b, "gateway-config", labels_for(b, OWNER_CLUSTER, b->ns, "litellm-gateway"), r.yaml));
    char hash[65];
    gateway_config_hash(b, &r, hash);
    json_t *pod = json_pack("{s:[o], s:[o]}", "containers", gateway_container(b, gw, &r), "volumes",
                            config_volume("gateway-config"));
    pod_fields(pod, gw);
    json_t *tpl = pod_template(labels_for(b, OWNER_CLUSTER, b->ns, "litellm-gateway"), pod_annotations(gw, hash), pod);
    json_t *d = deployment(b, "gateway", labels_for(b, OWNER_CLUSTER, b->ns, "litellm-gateway"),
                           selector_for("litellm-gateway", b->ns), gw, tpl);
    /* a new gateway pod is ready before the old one goes: agents never see the gateway down */
    json_object_set_new(json_object_get(d, "spec"), "strategy",
                        json_pack("{s:s, s:{s:i, s:i}}", "type", "RollingUpdate", "rollingUpdate", "maxUnavailable",
                                  0, "maxSurge", 1));
    emit(b, d);
    emit(b, service(b, "gateway", labels_for(b, OWNER_CLUSTER, b->ns, "litellm-gateway"),
                    selector_for("litellm-gateway", b->ns),
                    json_pack("[{s:s, s:i, s:s, s:s}]", "name", "http", "port", RENDER_GATEWAY_PORT, "targetPort",
                              "http", "protocol", "TCP")));
    render_result_free(&r);
    return 0;
}

/* ---- tools ---- */

static int tool_port(const json_t *tool)
{
    const json_t *p = at(tool, "spec", "port");
    return json_is_integer(p) ? (int)json_integer_value(p) : 8080;
}

static int tool_is_sidecar(const json_t *tool)
{
    const char *mode = str_of(json_object_get(tool, "spec"), "deploymentMode");
    return mode && strcmp(mode, "sidecar") == 0;
}

/* port_name NULL: an unnamed port (a pod's port names must not repeat, and an agent may run several sidecars). */
static json_t *tool_container(const json_t *tool, const char *name, const char *port_name)
{
    const json_t *spec = json_object_get(tool, "spec"), *dep = json_object_get(spec, "deployment");
    const char *image = str_of(spec, "image");
    json_t *port = json_pack("{s:i, s:s}", "containerPort", tool_port(tool), "protocol", "TCP");
    if (port_name)
        json_object_set_new(port, "name", json_string(port_name));
    json_t *c = json_pack("{s:s, s:s, s:[o]}", "name", name, "image", image ? image : "", "ports", port);
    set_if(c, "env", copy_nonempty(json_object_get(dep, "env")));
    set_if(c, "resources", copy_nonempty(json_object_get(dep, "resources")));
    return c;
}

static void build_tool(build_t *b, const json_t *tool)
{
    const char *name = name_of(tool);
    const json_t *dep = at(tool, "spec", "deployment");
    json_t *pod = json_pack("{s:[o]}", "containers", tool_container(tool, "tool", "mcp"));
    pod_fields(pod, dep);
    json_t *tpl = pod_template(labels_for(b, OWNER_TOOL, name, "language-tool"), pod_annotations(dep, NULL), pod);
    emit(b, deployment(b, name, labels_for(b, OWNER_TOOL, name, "language-tool"), selector_for("language-tool", name),
                       dep, tpl));
    emit(b, service(b, name, labels_for(b, OWNER_TOOL, name, "language-tool"), selector_for("language-tool", name),
                    json_pack("[{s:s, s:i, s:s, s:s}]", "name", "mcp", "port", tool_port(tool), "targetPort", "mcp",
                              "protocol", "TCP")));
}

/* ---- agents ---- */

static const json_t *tool_named(const build_t *b, const char *name)
{
    size_t i;
    json_t *t;
    json_array_foreach(b->in->tools, i, t) {
        if (strcmp(name_of(t), name) == 0)
            return t;
    }
    return NULL;
}

/* Native sidecars: the agent's enabled sidecar tools, in the agent's order (NULL when none). */
static json_t *agent_sidecars(const build_t *b, const json_t *agent)
{
    json_t *out = json_array();
    size_t i;
    json_t *ref;
    json_array_foreach(at(agent, "spec", "tools"), i, ref) {
        const char *name = str_of(ref, "name");
        const json_t *tool = name ? tool_named(b, name) : NULL;
        if (tool == NULL || !tool_is_sidecar(tool) || json_is_false(json_object_get(ref, "enabled")))
            continue;
        char *cname = lo_sprintf("tool-%s", name);
        json_t *c = tool_container(tool, cname, NULL);
        json_object_set_new(c, "restartPolicy", json_string("Always"));
        json_array_append_new(out, c);
        free(cname);
    }
    if (json_array_size(out) == 0) {
        json_decref(out);
        return NULL;
    }
    return out;
}

static json_t *agent_ports(const json_t *spec, int for_service)
{
    json_t *out = json_array();
    size_t i;
    json_t *p;
    json_array_foreach(json_object_get(spec, "ports"), i, p) {
        const json_t *port = json_object_get(p, "port");
        if (!json_is_integer(port))
            continue;
        const char *name = str_of(p, "name"), *proto = str_of(p, "protocol");
        char *pname = name ? lo_strdup(name) : lo_sprintf("port-%d", (int)json_integer_value(port));
        json_t *o = for_service ? json_pack("{s:s, s:I, s:s, s:s}", "name", pname, "port", json_integer_value(port),
                                            "targetPort", pname, "protocol", proto ? proto : "TCP")
                                : json_pack("{s:s, s:I, s:s}", "name", pname, "containerPort",
                                            json_integer_value(port), "protocol", proto ? proto : "TCP");
        json_array_append_new(out, o);
        free(pname);
    }
    return out;
}

static json_t *agent_pod(const build_t *b, const json_t *agent, const render_result_t *r, const char *cm,
                         const char *restart)
{
    const json_t *spec = json_object_get(agent, "spec"), *dep = json_object_get(spec, "deployment");
    const char *image = str_of(spec, "image");
    json_t *c = json_pack("{s:s, s:s, s:O, s:[o]}", "name", "agent", "image", image ? image : "", "env", r->env,
                          "volumeMounts", config_mount(AGENT_CONFIG_DIR));
    json_t *ports = agent_ports(spec, 0);
    set_if(c, "ports", json_array_size(ports) ? ports : (json_decref(ports), NULL));
    set_if(c, "resources", copy_nonempty(json_object_get(dep, "resources")));
    json_t *pod = json_pack("{s:[o], s:[o]}", "containers", c, "volumes", config_volume(cm));
    set_if(pod, "initContainers", agent_sidecars(b, agent));
    if (restart)
        json_object_set_new(pod, "restartPolicy", json_string(restart));
    pod_fields(pod, dep);
    return pod;
}

static json_t *agent_template(const build_t *b, const json_t *agent, const render_result_t *r, const char *cm,
                              const char *restart)
{
    const char *name = name_of(agent);
    const json_t *dep = at(agent, "spec", "deployment");
    return pod_template(labels_for(b, OWNER_AGENT, name, "language-agent"), pod_annotations(dep, r->hash),
                        agent_pod(b, agent, r, cm, restart));
}

static void build_agent_cronjob(build_t *b, const json_t *agent, const render_result_t *r, const char *cm)
{
    const char *name = name_of(agent);
    const json_t *ex = at(agent, "spec", "execution");
    json_t *cj = object_new("batch/v1", "CronJob", name, b->ns, labels_for(b, OWNER_AGENT, name, "language-agent"));
    const char *tz = str_of(ex, "timezone"), *policy = str_of(ex, "concurrencyPolicy");
    json_t *spec = json_pack("{s:s, s:s, s:b, s:{s:{s:i, s:o}}}", "schedule", str_of(ex, "schedule"),
                             "concurrencyPolicy", policy ? policy : "Forbid", "suspend",
                             json_is_true(json_object_get(ex, "suspend")), "jobTemplate", "spec", "backoffLimit", 3,
                             "template", agent_template(b, agent, r, cm, "OnFailure"));
    if (tz)
        json_object_set_new(spec, "timeZone", json_string(tz));
    json_object_set_new(cj, "spec", spec);
    emit(b, cj);
}

static void build_agent_job(build_t *b, const json_t *agent, const render_result_t *r, const char *cm)
{
    const char *name = name_of(agent);
    char *job = lo_sprintf("%.52s-%.10s", name, r->hash); /* within the 63 of a label value */
    json_t *j = object_new("batch/v1", "Job", job, b->ns, labels_for(b, OWNER_AGENT, name, "language-agent"));
    json_object_set_new(j, "spec", json_pack("{s:i, s:o}", "backoffLimit", 3, "template",
                                             agent_template(b, agent, r, cm, "OnFailure")));
    emit(b, j);
    free(job);
}

static void build_agent_service(build_t *b, const json_t *agent, const render_result_t *r, const char *cm)
{
    const char *name = name_of(agent);
    const json_t *spec = json_object_get(agent, "spec");
    json_t *tpl = agent_template(b, agent, r, cm, NULL);
    emit(b, deployment(b, name, labels_for(b, OWNER_AGENT, name, "language-agent"),
                       selector_for("language-agent", name), json_object_get(spec, "deployment"), tpl));
    json_t *ports = agent_ports(spec, 1);
    if (json_array_size(ports) == 0) {
        json_decref(ports);
        return;
    }
    emit(b, service(b, name, labels_for(b, OWNER_AGENT, name, "language-agent"), selector_for("language-agent", name),
                    ports));
}

static int build_agent(build_t *b, const json_t *agent, lo_err_t *err)
{
    const desired_input_t *in = b->in;
    render_result_t r = {0};
    if (render_agent_config(agent, in->cluster, b->domain, in->models, in->tools, in->personas, &r, err) != 0)
        return -1;
    const char *name = name_of(agent);
    char *cm = lo_sprintf("%s-agent", name);
    emit(b, config_map(b, cm, labels_for(b, OWNER_AGENT, name, "language-agent"), r.yaml));
    const json_t *ex = at(agent, "spec", "execution");
    const char *mode = str_of(ex, "mode");
    if (mode && strcmp(mode, "task") == 0 && str_of(ex, "schedule"))
        build_agent_cronjob(b, agent, &r, cm);
    else if (mode && strcmp(mode, "task") == 0)
        build_agent_job(b, agent, &r, cm);
    else
        build_agent_service(b, agent, &r, cm);
    free(cm);
    render_result_free(&r);
    return 0;
}

/* ---- the whole ---- */

static int cmp_by_name(const void *a, const void *b)
{
    return strcmp(name_of(*(json_t *const *)a), name_of(*(json_t *const *)b));
}

/* The items of list (borrowed) sorted by name, as a borrowed-pointer array (caller frees the array). */
static json_t **sorted(const json_t *list, size_t *n)
{
    *n = json_array_size(list);
    json_t **items = lo_calloc(*n + 1, sizeof(*items));
    for (size_t i = 0; i < *n; i++)
        items[i] = json_array_get(list, i);
    qsort(items, *n, sizeof(*items), cmp_by_name);
    return items;
}

int desired_build(const desired_input_t *in, const desired_options_t *opts, desired_t *out, lo_err_t *err)
{
    memset(out, 0, sizeof(*out));
    build_t b = {.in = in, .ns = name_of(in->cluster), .domain = opts->cluster_domain ? opts->cluster_domain
                                                                                       : "cluster.local",
                 .gateway_image = opts->gateway_image ? opts->gateway_image : DESIRED_GATEWAY_IMAGE};
    out->objects = b.objects = json_array();
    out->unserved = json_array();
    json_t *ns = object_new("v1", "Namespace", b.ns, NULL, labels_for(&b, OWNER_CLUSTER, b.ns, "language-cluster"));
    emit(&b, ns);
    if (build_gateway(&b, out->unserved, err) != 0)
        goto fail;
    size_t n;
    json_t **tools = sorted(in->tools, &n);
    for (size_t i = 0; i < n; i++) {
        if (!tool_is_sidecar(tools[i]))
            build_tool(&b, tools[i]);
    }
    free(tools);
    json_t **agents = sorted(in->agents, &n);
    for (size_t i = 0; i < n; i++) {
        if (build_agent(&b, agents[i], err) != 0) {
            free(agents);
            goto fail;
        }
    }
    free(agents);
    return 0;
fail:
    desired_free(out);
    return -1;
}

void desired_free(desired_t *d)
{
    json_decref(d->objects);
    json_decref(d->unserved);
    memset(d, 0, sizeof(*d));
}
