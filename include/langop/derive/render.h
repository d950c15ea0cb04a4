/*
 * render.h - the derived config, as pure functions of stored objects: the
 * LiteLLM config of a LanguageCluster's shared gateway, and the config
 * file and environment of a LanguageAgent. No I/O, no clock: the same
 * objects, in any order, give byte-identical output. The read path
 * (GatewayConfig / AgentConfig subresources, computed status) and the
 * reconcile thread call the same functions: what you see is what is pushed.
 *
 * Secrets never appear in the output: a model's key is read by the gateway
 * from its environment (`api_key: os.environ/<VAR>`), and the variable's
 * secretKeyRef is listed beside the config for whoever runs the gateway.
 *
 * Ownership: inputs are borrowed; a render_result_t owns everything in it
 * (render_result_free).
 */
#ifndef LANGOP_RENDER_H
#define LANGOP_RENDER_H

#include <jansson.h>
#include "langop/core/common.h"

#define RENDER_GATEWAY_PORT 8000

typedef struct render_result {
    char *yaml;          /* the rendered file: valid YAML, keys in a fixed order */
    json_t *env;         /* array of EnvVar objects: {name, value} or {name, valueFrom: {secretKeyRef: {name, key}}} */
    json_t *unresolved;  /* array of {kind, name, reason, message[, referencedBy]}: references left out of the output */
    json_t *served;      /* gateway only: the model_names in model_list, sorted, each once; NULL for an agent */
    char hash[65];       /* sha256 (hex) of what reaches the workload: yaml and env */
} render_result_t;

void render_result_free(render_result_t *r);

/** "http://gateway.<ns>.svc.<domain>:8000" (malloc'd). */
char *render_gateway_endpoint(const char *ns, const char *cluster_domain);

/**
 * The URL agents use for a LanguageTool (borrowed) of namespace ns:
 * http://<tool>.<ns>.svc.<domain>:<port> for deploymentMode service,
 * http://localhost:<port> for a sidecar (it runs in the agent's pod); port
 * defaults to 8080. malloc'd.
 */
char *render_tool_endpoint(const json_t *tool, const char *ns, const char *cluster_domain);

/**
 * The environment variable that carries a model's API key in the gateway:
 * "LANGOP_API_KEY_" + the model's name upper-cased with every character
 * outside [A-Z0-9] turned into '_' (malloc'd). Names are DNS-1123, so two
 * models of one namespace map to distinct variables unless they differ
 * only by '-' versus '.'; the renderer reports such a clash.
 */
char *render_key_env_name(const char *model_name);

/**
 * The LiteLLM proxy config.yaml of the gateway of namespace ns: for each
 * LanguageModel of models (borrowed array, any order) one model_list entry
 * per deployment (its own, then one per spec.upstreams item), all with
 * model_name = the LanguageModel's metadata.name, so LiteLLM balances and
 * retries across them. env lists the secretKeyRef variables they read;
 * unresolved lists models left out (EnvNameClash: name = the model) and
 * fallbacks that cannot be used (FallbackNotFound, InvalidFallback: name =
 * the target, referencedBy = the model listing it); served the model_names
 * in the output. A model whose stored status has the condition
 * RENDER_COND_SECRETS False (the reconcile thread found a Secret or key it
 * reads missing in the cluster) is left out too, unresolved with reason
 * SecretNotFound and that condition's message: the gateway goes on serving
 * the others, and what is read is what the reconcile thread pushes.
 * cluster (the LanguageCluster, may be NULL) gives
 * spec.gateway.routingStrategy. Returns 0, or -1 with err on input that is
 * not a list of LanguageModels.
 */
/* The condition the reconcile thread keeps on a LanguageModel: are the Secrets it reads there? */
#define RENDER_COND_SECRETS "SecretsAvailable"

int render_gateway_config(const char *ns, const char *cluster_domain, const json_t *cluster, const json_t *models,
                          render_result_t *out, lo_err_t *err);

/**
 * What render_gateway_config decides, without the config: out->served and
 * out->unresolved exactly as it gives them; yaml and env NULL, hash empty.
 * The derived status of models and clusters reads this (same decisions,
 * without encoding the YAML on every write).
 */
int render_gateway_verdict(const char *ns, const json_t *models, render_result_t *out, lo_err_t *err);

/**
 * Whether two states a and b of one LanguageModel weigh the same in the
 * verdict: same name, fallbacks, deployments and variables (with their
 * Secret references). Then a change from a to b moves nothing in the
 * verdict of any model of the namespace (what else it changes reaches only
 * the config).
 */
int render_gateway_same(const json_t *a, const json_t *b);

/**
 * The /etc/agent/config.yaml and environment of agent (a LanguageAgent),
 * given the LanguageModels, LanguageTools and LanguagePersonas of its
 * namespace (borrowed arrays, any order). cluster is the LanguageCluster
 * (may be NULL: then AGENT_CLUSTER_NAME is the namespace). References to
 * missing objects are left out and listed in unresolved (reason
 * ModelNotFound, ToolNotFound, PersonaNotFound). Returns 0, or -1 with err.
 */
int render_agent_config(const json_t *agent, const json_t *cluster, const char *cluster_domain, const json_t *models,
                        const json_t *tools, const json_t *personas, render_result_t *out, lo_err_t *err);

#endif
