/*
 * keyrules.h - the seed's key rule, enforced at admission: API keys never
 * reach agents. A provider key lives in a Secret that a LanguageModel names;
 * only the namespace's LiteLLM gateway reads it (os.environ/ in its config).
 * An agent's container gets the gateway's address (MODEL_ENDPOINT), its
 * model names (LLM_MODEL) and /etc/agent/config.yaml, never a key; a tool's
 * container likewise. (Contract of a rule: admission_rule.h.)
 *
 * Every refusal is a 422 Invalid cause with reason FieldValueForbidden,
 * one per offending field, message "Forbidden: <why>":
 *
 * keyrules_container_env (RULE_FIELD; LanguageAgent and LanguageTool), for
 * each entry i of spec.deployment.env, at most one of:
 *  - a variable the server sets: field spec.deployment.env[i].name,
 *    `MODEL_ENDPOINT is set by the server (the gateway's address)`. For an
 *    agent the seven of the agent env (MODEL_ENDPOINT, LLM_MODEL,
 *    MCP_SERVERS, AGENT_NAME, AGENT_NAMESPACE, AGENT_UID,
 *    AGENT_CLUSTER_NAME); for a tool MODEL_ENDPOINT and LLM_MODEL, worded
 *    "is reserved for the server". Names compare exactly (env names are
 *    case-sensitive).
 *  - a non-empty literal value for a provider credential variable
 *    (OPENAI_API_KEY, AWS_SECRET_ACCESS_KEY ..., the table in keyrules.c,
 *    compared ignoring case): field spec.deployment.env[i].value,
 *    `OPENAI_API_KEY is a provider credential; API keys stay in the gateway
 *    (reference a Secret with a LanguageModel's apiKeySecretRef)`. A literal
 *    key would also be stored in the clear; an empty value holds none.
 *
 * keyrules_model_secrets (RULE_CROSS; LanguageAgent, LanguageTool and
 * LanguageModel): no Secret is both read by an agent's or tool's env and
 * named by a LanguageModel of the same namespace, whichever is written
 * first. The Secrets
 *  - an agent or tool reads: spec.deployment.env[i].valueFrom.secretKeyRef.name,
 *    and spec.deployment.envFrom[i].secretRef.name (not in the schema today,
 *    so pruned before admission; checked so that adding it opens no hole);
 *  - a model names: spec.apiKeySecretRef.name, spec.credentialsSecretRef.name,
 *    spec.litellmParams.<param>.secretKeyRef.name, and the same three under
 *    each upstream: spec.upstreams[i].apiKeySecretRef.name ...
 * Writing an agent (or tool): one cause at each reference to such a Secret,
 * `Secret "openai" holds the key of LanguageModel "gpt"; agents never hold
 * API keys` (tools: "tools never ..."); the model named is the first by name.
 * Writing a model: one cause at each of its references to such a Secret,
 * `Secret "openai" is referenced by LanguageAgent "bot"
 * (spec.deployment.env[1].valueFrom.secretKeyRef.name); agents never hold
 * API keys: give the model a Secret of its own` (agents before tools, each
 * by name). Nothing is read when the object references no Secret, or when
 * in->txn is NULL (no store to read: nothing to compare against). When the
 * store cannot be read the write is refused (cause reason InternalError at
 * the object's first reference): a rule that cannot look must not pass.
 */
#ifndef LANGOP_KEYRULES_H
#define LANGOP_KEYRULES_H

#include "langop/schema/admission_rule.h"

/** RULE_FIELD, LanguageAgent and LanguageTool: the container env a user may set. */
int keyrules_container_env(const rule_input_t *in, lo_err_t *err);

/** RULE_CROSS: no Secret shared between a LanguageModel and an agent's or tool's env. */
int keyrules_model_secrets(const rule_input_t *in, lo_err_t *err);

#endif
