/* placeholder until the module lands: derives nothing */
#include "langop/derive.h"
#include "langop/status.h"
int derive_status(store_t *store, const schema_kind_t *k, json_t *objects, const char *d, lo_err_t *err)
{ (void)store; (void)k; (void)objects; (void)d; (void)err; return 0; }
int derive_gateway_config(store_t *store, const char *cluster, const char *d, json_t **out, lo_err_t *err)
{ (void)store; (void)d; *out = NULL; status_not_found(err, "languageclusters", "langop.io", cluster); return -1; }
int derive_agent_config(store_t *store, const char *ns, const char *name, const char *d, json_t **out, lo_err_t *err)
{ (void)store; (void)ns; (void)d; *out = NULL; status_not_found(err, "languageagents", "langop.io", name); return -1; }
