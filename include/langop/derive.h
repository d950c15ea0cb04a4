/*
 * derive.h - computed status and the derived-config subresources, on read.
 *
 * Derived fields are pure functions of the stored objects (render.h), never
 * written to the store, and overlaid on the stored status of every object a
 * client reads (get, list, watch events, Table rows):
 *   LanguageCluster  status.gatewayEndpoint, status.models (names),
 *                    status.agentCount/modelCount/toolCount/personaCount
 *   LanguageModel    status.gatewayEndpoint
 *   LanguageAgent    status.modelEndpoint, status.models, and the condition
 *                    ReferencesResolved (False, reason ModelNotFound /
 *                    ToolNotFound / PersonaNotFound, message naming them)
 *   LanguageTool     status.endpoint
 * A list is derived with one read of the related objects per namespace,
 * not one query per object.
 */
#ifndef LANGOP_DERIVE_H
#define LANGOP_DERIVE_H

#include <jansson.h>
#include "langop/common.h"
#include "langop/schema.h"
#include "langop/store.h"

/**
 * Overlays the computed status on each object of objects (borrowed array of
 * objects of kind k, modified in place), reading related objects from
 * store. Returns 0, or -1 with err (store failure).
 */
int derive_status(store_t *store, const schema_kind_t *k, json_t *objects, const char *cluster_domain,
                  lo_err_t *err);

/**
 * derive_status() for a read that must answer anyway: a store failure is
 * logged and the objects keep their stored status.
 */
void derive_overlay(store_t *store, const schema_kind_t *k, json_t *objects, const char *cluster_domain);

/**
 * Removes, in place, the derived status fields (and derived conditions) of
 * obj, an object of kind k about to be stored: they are computed on read,
 * so a value a client writes there is dropped rather than kept.
 */
void derive_strip(const schema_kind_t *k, json_t *obj);

/**
 * The GatewayConfig of LanguageCluster `cluster` (new object: kind
 * GatewayConfig, apiVersion langop.io/v1alpha1, metadata {name, namespace?},
 * config (the YAML text), env, unresolved, hash). 404 if the cluster does
 * not exist.
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
