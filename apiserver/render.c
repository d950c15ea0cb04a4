/* placeholder until the module lands */
#include "langop/render.h"
#include <stdlib.h>
void render_result_free(render_result_t *r) { free(r->yaml); json_decref(r->env); json_decref(r->unresolved); r->yaml = NULL; r->env = r->unresolved = NULL; }
char *render_gateway_endpoint(const char *ns, const char *d) { return lo_sprintf("http://gateway.%s.svc.%s:%d", ns, d, RENDER_GATEWAY_PORT); }
char *render_key_env_name(const char *m) { return lo_sprintf("LANGOP_API_KEY_%s", m); }
int render_gateway_config(const char *ns, const char *d, const json_t *models, render_result_t *out, lo_err_t *err)
{ (void)ns; (void)d; (void)models; (void)err; out->yaml = lo_strdup("model_list: []\n"); out->env = json_array(); out->unresolved = json_array(); out->hash[0] = 0; return 0; }
int render_agent_config(const json_t *agent, const json_t *cluster, const char *d, const json_t *models, const json_t *tools, const json_t *personas, render_result_t *out, lo_err_t *err)
{ (void)agent; (void)cluster; (void)d; (void)models; (void)tools; (void)personas; (void)err; out->yaml = lo_strdup("{}\n"); out->env = json_array(); out->unresolved = json_array(); out->hash[0] = 0; return 0; }
