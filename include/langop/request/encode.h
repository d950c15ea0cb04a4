/*
 * encode.h - choosing and writing the response encoding of an object:
 * JSON (the default), YAML, or (for reads of resources) a server-side
 * Table. Kubernetes serves the first entry of Accept it can, and names it
 * in Content-Type.
 */
#ifndef LANGOP_ENCODE_H
#define LANGOP_ENCODE_H

#include <jansson.h>
#include "langop/core/common.h"
#include "langop/request/message.h"
#include "langop/schema/schema.h"
#include "langop/schema/table.h"

typedef enum encode_format {
    ENCODE_JSON = 0,
    ENCODE_YAML = 1,
    ENCODE_TABLE = 2,     /* application/json;as=Table;v=v1;g=meta.k8s.io */
} encode_format_t;

#define ENCODE_TABLE_CONTENT_TYPE "application/json;as=Table;v=v1;g=meta.k8s.io"

/**
 * Picks the format of the first acceptable Accept entry. table_ok says
 * whether a Table may be chosen (resource reads). Returns 0, or -1 with
 * err 406 NotAcceptable when nothing is acceptable.
 */
int encode_choose(const char *accept, int table_ok, encode_format_t *out, lo_err_t *err);

/** Writes obj (borrowed) as JSON, YAML or (already a Table) Table JSON into resp with status. */
void encode_object(api_response_t *resp, int status, encode_format_t format, const json_t *obj);

/** The Content-Type of an answer in format. */
const char *encode_content_type(encode_format_t format);

/*
 * A List written in pieces, as its items are read, so that a list of any
 * length is never held whole: the head (everything before the first item),
 * then each item, then the end. Put together, the pieces are the bytes
 * encode_object gives for the whole List of kind k -- {"apiVersion",
 * "kind": "<Kind>List", "metadata", "items"} as JSON or YAML -- or, for
 * ENCODE_TABLE, for table_render's Table of it (the column definitions in
 * the head, one row per item, every Age cell computed at now).
 */
typedef struct encode_list encode_list_t;

/**
 * Starts a List of kind k in format; list_meta (borrowed) is its ListMeta
 * (resourceVersion, and continue and remainingItemCount when set). The
 * head is appended to out.
 */
encode_list_t *encode_list_begin(const schema_kind_t *k, encode_format_t format, table_include_t include,
                                 const json_t *list_meta, int64_t now, lo_buf_t *out);
/** Appends one item (borrowed) to out. */
void encode_list_item(encode_list_t *e, const json_t *obj, lo_buf_t *out);
/** Appends the end to out. */
void encode_list_end(encode_list_t *e, lo_buf_t *out);
/** 1 if a piece could not be written (the YAML emitter failed): the List cannot be completed. */
int encode_list_failed(const encode_list_t *e);
void encode_list_free(encode_list_t *e);

#endif
