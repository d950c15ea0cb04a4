/*
 * subresources.c - the table of derived, read-only subresources
 * (langop/derive.h): which kind has which, what it returns, and the
 * function that computes it. Routing, discovery and OpenAPI read this
 * table, so adding one is one entry here.
 */
#include <string.h>

#include "langop/derive/derive.h"

static int get_gateway_config(store_t *store, const char *ns, const char *name, const char *cluster_domain,
                              json_t **out, lo_err_t *err)
{
    (void)ns; /* LanguageCluster is cluster-scoped: its gateway lives in the namespace of its name */
    return derive_gateway_config(store, name, cluster_domain, out, err);
}

const derive_subresource_t derive_subresources[] = {
    {"LanguageCluster", "gatewayconfig", "GatewayConfig",
     "The LiteLLM config of the cluster's shared gateway, computed from its LanguageModels, with the "
     "environment variables that carry their API keys (as Secret references) and any unresolved references.",
     get_gateway_config},
    {"LanguageAgent", "agentconfig", "AgentConfig",
     "The agent's /etc/agent/config.yaml and environment (MODEL_ENDPOINT, LLM_MODEL, MCP_SERVERS ...), "
     "computed from the agent and the models, tools and persona it references.",
     derive_agent_config},
    {NULL, NULL, NULL, NULL, NULL},
};

const derive_subresource_t *derive_subresource_find(const char *kind, const char *name)
{
    for (const derive_subresource_t *s = derive_subresources; s->name; s++) {
        if (strcmp(s->kind, kind) == 0 && strcmp(s->name, name) == 0)
            return s;
    }
    return NULL;
}
