/*
 * desired.h - what the cluster should hold for one LanguageCluster: the
 * Kubernetes objects the reconcile thread applies, as a pure function of
 * the langop objects of its namespace, the Secrets it can see and the
 * server's options. No I/O, no clock: the same input gives the same
 * objects, byte for byte, so that a hash of each tells the reconciler
 * whether the cluster already holds it.
 *
 * The configs are the renderers' (render.h): the gateway's config.yaml and
 * environment are render_gateway_config's, an agent's config.yaml and
 * environment render_agent_config's, so what `gatewayconfig` and
 * `agentconfig` show is what runs.
 *
 * What one LanguageCluster <c> gives, in apply order:
 *   Namespace <c> (labels only: an existing namespace is adopted);
 *   ConfigMap gateway-config (config.yaml), Deployment gateway (LiteLLM on
 *   port 4000, its /health/liveliness and /health/readiness probes, one env
 *   var per credential, the config mounted at /etc/litellm), Service
 *   gateway 8000 -> 4000;
 *   per LanguageTool in service mode: Deployment and Service <tool> on its
 *   port (a sidecar tool runs inside the pods of the agents using it, as a
 *   native sidecar: an init container with restartPolicy Always, so that a
 *   task agent's Job still completes);
 *   per LanguageAgent: ConfigMap <agent>-agent (config.yaml, mounted at
 *   /etc/agent), then the workload: a Deployment <agent> (mode service,
 *   plus a Service <agent> when it declares ports), a CronJob <agent> (mode
 *   task with a schedule) or a Job <agent>-<config hash> (task without one:
 *   a Job's pod template cannot change, so a new config is a new Job and
 *   the old one is pruned).
 *
 * Every object carries the labels DESIRED_LABEL_MANAGED_BY = langop-apiserver,
 * DESIRED_LABEL_CLUSTER = <c> (what pruning selects on) and one naming its
 * owner (langop.io/languagecluster, langop.io/languageagent or
 * langop.io/languagetool), and the annotation DESIRED_ANNOTATION_HASH: the
 * sha256 of the object as built, without that annotation.
 *
 * Pods restart when what they run changes: the gateway's pod template has
 * langop.io/config-hash = sha256 of its rendering and of the
 * resourceVersions of the Secrets its models read (a rotated key rolls the
 * gateway); an agent's has the hash of its own rendering only (models it
 * does not reference, and keys, never touch it).
 *
 * A model whose Secret (or a non-optional key of it) is missing is left
 * out of the gateway, with its variables, and listed in unserved
 * ({name, reason: SecretNotFound, message}); the gateway goes on serving
 * the others.
 *
 * Ownership: inputs are borrowed; desired_t owns its arrays (desired_free).
 */
#ifndef LANGOP_RECONCILE_DESIRED_H
#define LANGOP_RECONCILE_DESIRED_H

#include <jansson.h>
#include "langop/core/common.h"

#define DESIRED_MANAGER "langop-apiserver"
#define DESIRED_LABEL_MANAGED_BY "app.kubernetes.io/managed-by"
#define DESIRED_LABEL_CLUSTER "langop.io/cluster"
#define DESIRED_LABEL_OWNER_CLUSTER "langop.io/languagecluster"
#define DESIRED_LABEL_OWNER_AGENT "langop.io/languageagent"
#define DESIRED_LABEL_OWNER_TOOL "langop.io/languagetool"
#define DESIRED_ANNOTATION_HASH "langop.io/applied-hash"
#define DESIRED_ANNOTATION_CONFIG_HASH "langop.io/config-hash"
#define DESIRED_GATEWAY_CONTAINER_PORT 4000
/* A pinned LiteLLM proxy release (--gateway-image replaces it). */
#define DESIRED_GATEWAY_IMAGE "ghcr.io/berriai/litellm:litellm_stable_release_branch-v1.77.5-stable"

typedef struct desired_options {
    const char *gateway_image;  /* NULL: DESIRED_GATEWAY_IMAGE; spec.gateway.image wins over both */
    const char *cluster_domain; /* NULL: cluster.local */
} desired_options_t;

typedef struct desired_input {
    const json_t *cluster;  /* the LanguageCluster */
    const json_t *models;   /* arrays of the namespace's objects (any order; NULL: none) */
    const json_t *agents;
    const json_t *tools;
    const json_t *personas;
    /* The Secrets of the namespace as the reconciler sees them: an object
     * name -> {"resourceVersion": "...", "keys": ["key", ...]}. NULL: not
     * known, every reference counts as present. */
    const json_t *secrets;
} desired_input_t;

typedef struct desired {
    json_t *objects;  /* array, in apply order */
    json_t *unserved; /* array of {name, reason, message}: models left out for their Secrets */
} desired_t;

/** Builds out for in. 0, or -1 with err (input the renderers refuse). */
int desired_build(const desired_input_t *in, const desired_options_t *opts, desired_t *out, lo_err_t *err);
void desired_free(desired_t *d);

/** sha256 hex of obj (compact JSON, sorted keys) without its DESIRED_ANNOTATION_HASH. */
void desired_hash(const json_t *obj, char out[65]);

/** The DESIRED_ANNOTATION_HASH of obj (borrowed), or NULL. */
const char *desired_applied_hash(const json_t *obj);

/**
 * 1 when live (an object as the cluster holds it) has drifted from desired:
 * a field desired sets is missing from live or has another value there.
 * What live has beyond desired (kube's defaults, status, other managers'
 * fields, other labels and annotations) does not count; lists must have
 * desired's length, each element compared the same way; of metadata only
 * labels and annotations are compared. The hash annotation alone cannot
 * tell: whoever edits an object (kubectl edit, another controller) keeps it.
 */
int desired_drifted(const json_t *desired, const json_t *live);

#endif
