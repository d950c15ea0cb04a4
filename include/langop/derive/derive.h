/*
 * derive.h - derived status, stored with the objects, and the derived-config
 * subresources, computed on read.
 *
 * Derived status fields are pure functions of the stored objects
 * (render.h). They are part of the object a client reads and watches, so
 * they follow the Kubernetes rule: when they change, the object gets a new
 * resourceVersion and watchers a MODIFIED event. The store's writer computes
 * them in the commit that changes their inputs (store.h commit rules):
 * derive_object() completes every object it stores, and derive_settle()
 * gives the dependents of a batch's changes a new revision, in the same
 * commit, if and only if their derived fields change. Reads return the
 * stored bytes.
 *
 *   LanguageCluster  status.gatewayEndpoint; status.models (the model_names
 *                    its gateway serves), modelCount (their number) and
 *                    unservedModels (the models it leaves out, with why);
 *                    agentCount/toolCount/personaCount; phase (Terminating
 *                    while deleted, Ready when status.gatewayReady, else
 *                    Pending) - follows the objects of the namespace of its
 *                    name
 *   LanguageModel    status.gatewayEndpoint; the condition Ready (True,
 *                    Served; False: ClusterNotFound, ClusterTerminating,
 *                    EnvNameClash, InvalidFallback, FallbackNotFound) and
 *                    phase (Ready, Pending when it waits for another
 *                    object, Failed when its own spec must change) - from
 *                    the namespace's gateway render; follows its cluster
 *                    and every model of the namespace
 *   LanguageAgent    status.modelEndpoint, status.models, the condition
 *                    ReferencesResolved (False, reason ModelNotFound /
 *                    ToolNotFound / PersonaNotFound, message naming them),
 *                    phase (Failed, Suspended, or from the Ready condition
 *                    its runner reports: Running, Degraded, else Pending)
 *                    - follows its cluster, and the models, tools and
 *                    persona it names
 *   LanguageTool     status.endpoint, phase (as an agent's, from Ready) -
 *                    from its own object
 *   LanguagePersona  phase Ready - a persona is configuration
 *
 * A derived condition's lastTransitionTime is the time of the commit in
 * which its status last changed (kept from the previous state otherwise).
 * Conditions and fields not derived (an agent's Ready, a cluster's
 * gatewayReady) belong to whoever runs the workloads and pass through.
 *
 * The GatewayConfig and AgentConfig subresources stay computed on read,
 * from one snapshot of the store.
 */
#ifndef LANGOP_DERIVE_H
#define LANGOP_DERIVE_H

#include <jansson.h>
#include "langop/core/common.h"
#include "langop/schema/schema.h"
#include "langop/storage/store.h"

/**
 * Sets the derived status of obj (an object of kind k, modified in place)
 * from what txn sees, obj standing in for the stored state of its own key;
 * current is that stored state (NULL when new), from which derived
 * conditions carry their lastTransitionTime. Returns 0, or -1 with err
 * (store failure).
 */
int derive_object(store_txn_t *txn, const schema_kind_t *k, const json_t *current, json_t *obj,
                  const char *cluster_domain, lo_err_t *err);

/** Whether objects of kind k have derived status at all. */
int derive_has_status(const schema_kind_t *k);

/**
 * After a batch's changes (the writer's settle): stores, through txn, a
 * new revision of every object whose derived status they changed. Returns
 * 0, or -1 with err.
 */
int derive_settle(store_txn_t *txn, const store_change_t *changes, size_t n, const char *cluster_domain,
                  lo_err_t *err);

/**
 * Removes, in place, the derived status fields (and derived conditions) of
 * obj, an object of kind k about to be written: the writer derives them
 * again, so a value a client writes there never stays.
 */
void derive_strip(const schema_kind_t *k, json_t *obj);

/**
 * The GatewayConfig of LanguageCluster `cluster` (new object: kind
 * GatewayConfig, apiVersion langop.io/v1alpha1, metadata {name, namespace?,
 * resourceVersion: the snapshot's}, config (the YAML text), env,
 * unresolved, hash). 404 if the cluster does not exist.
 */
int derive_gateway_config(store_t *store, const char *cluster, const char *cluster_domain, json_t **out,
                          lo_err_t *err);

/** The AgentConfig of LanguageAgent ns/name (config, env, unresolved, hash). 404 if absent. */
int derive_agent_config(store_t *store, const char *ns, const char *name, const char *cluster_domain, json_t **out,
                        lo_err_t *err);

/* ---- the read-only subresources, as data: routing, discovery and OpenAPI iterate this ---- */

typedef int (*derive_subresource_fn)(store_t *store, const char *ns, const char *name, const char *cluster_domain,
                                     json_t **out, lo_err_t *err);

typedef struct derive_subresource {
    const char *kind;            /* the parent kind: "LanguageCluster" */
    const char *name;            /* the subresource: "gatewayconfig" */
    const char *response_kind;   /* the kind it returns: "GatewayConfig" */
    const char *description;     /* for OpenAPI */
    derive_subresource_fn get;   /* ns is "" for a cluster-scoped parent */
} derive_subresource_t;

/** Every derived subresource; ends with an entry whose name is NULL. */
extern const derive_subresource_t derive_subresources[];

/** The derived subresource name of kind, or NULL. */
const derive_subresource_t *derive_subresource_find(const char *kind, const char *name);

#endif
