/* placeholder until the module lands: accepts everything */
#include "langop/validate.h"
void validate_prune(const schema_kind_t *k, json_t *obj, json_t *unknown) { (void)k; (void)obj; (void)unknown; }
void validate_default(const schema_kind_t *k, json_t *obj) { (void)k; (void)obj; }
int validate_object(const schema_kind_t *k, const json_t *obj, lo_err_t *err) { (void)k; (void)obj; (void)err; return 0; }
