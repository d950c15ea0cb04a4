/*
 * table.h - server-side printing: meta.k8s.io/v1 Table objects built from a
 * kind's additionalPrinterColumns, as `kubectl get` asks for them with
 * Accept: application/json;as=Table;v=v1;g=meta.k8s.io.
 *
 * Columns: Name first (format name), then the schema's columns in order;
 * every column is sent with its priority (kubectl shows priority > 0 only
 * with -o wide). Cells are preformatted as kubectl prints them: a `date`
 * column is a human duration since the timestamp (5m, 3h12m, 2d), an
 * absent value is null (kubectl prints <none>), lists are joined with ",".
 * jsonPath subset: .a.b, list indexes [0], wildcards [*], quoted keys
 * ['a.b'], and the filter CRDs use to pick a condition:
 * [?(@.type=="Ready")].
 */
#ifndef LANGOP_TABLE_H
#define LANGOP_TABLE_H

#include <stdint.h>
#include <jansson.h>
#include "langop/core/common.h"
#include "langop/schema/schema.h"

typedef enum table_include {
    TABLE_INCLUDE_METADATA = 0,   /* default: PartialObjectMetadata per row */
    TABLE_INCLUDE_OBJECT = 1,     /* the full object */
    TABLE_INCLUDE_NONE = 2,       /* "object": null */
} table_include_t;

/** Parses includeObject (NULL = Metadata). 400 BadRequest for anything else. */
int table_parse_include(const char *value, table_include_t *out, lo_err_t *err);

/**
 * Builds a Table (new reference) for objects (borrowed array) of kind k.
 * list_meta (borrowed, may be NULL) becomes the Table's metadata
 * (resourceVersion, continue, remainingItemCount). with_columns = 0 omits
 * columnDefinitions (every watch event after the first). now is the
 * current unix time, for Age cells.
 */
json_t *table_render(const schema_kind_t *k, const json_t *objects, const json_t *list_meta,
                     table_include_t include, int with_columns, int64_t now);

/**
 * One row of a Table of kind k (new reference): the cells of obj
 * (borrowed), and the object as include says. table_render's rows are
 * these, so a Table can be written row by row (encode.h's List in pieces).
 */
json_t *table_render_row(const schema_kind_t *k, const json_t *obj, table_include_t include, int64_t now);

/**
 * A one-row Table (new reference) for one object (borrowed) of kind k, its
 * metadata carrying the object's resourceVersion, as kube answers a get or
 * a write, and sends a Table watch event.
 */
json_t *table_render_object(const schema_kind_t *k, const json_t *obj, table_include_t include, int with_columns,
                            int64_t now);

/** Evaluates a jsonPath of the subset on obj: new array of the values found (maybe empty). */
json_t *table_jsonpath(const json_t *obj, const char *path);

/** apimachinery's HumanDuration: "0s", "59s", "5m10s", "3h12m", "2d", "2y30d" ... into buf. */
void table_human_duration(int64_t seconds, char *buf, size_t size);

#endif
