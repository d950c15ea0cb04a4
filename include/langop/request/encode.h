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

#endif
