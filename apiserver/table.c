/* placeholder until the module lands */
#include "langop/table.h"
int table_parse_include(const char *value, table_include_t *out, lo_err_t *err) { (void)value; (void)err; *out = TABLE_INCLUDE_METADATA; return 0; }
json_t *table_render(const schema_kind_t *k, const json_t *objects, const json_t *list_meta, table_include_t include, int with_columns, int64_t now)
{ (void)k; (void)objects; (void)list_meta; (void)include; (void)with_columns; (void)now; return NULL; }
json_t *table_jsonpath(const json_t *obj, const char *path) { (void)obj; (void)path; return json_array(); }
void table_human_duration(int64_t seconds, char *buf, size_t size) { (void)seconds; if (size) buf[0] = 0; }
