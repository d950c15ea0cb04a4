/* placeholder until the module lands */
#include "langop/openapi.h"
#include <stdlib.h>
openapi_t *openapi_new(void) { return NULL; }
void openapi_free(openapi_t *o) { (void)o; }
int openapi_handle(const openapi_t *o, const reqinfo_t *info, const char *accept, const char *if_none_match, api_response_t *resp)
{ (void)o; (void)info; (void)accept; (void)if_none_match; (void)resp; return 0; }
