/*
 * openapiproto.h - the OpenAPI v2 (Swagger 2.0) document in its protobuf
 * form: gnostic's openapi.v2.Document message (github.com/google/gnostic-models,
 * openapiv2/OpenAPIv2.proto), what kube-apiserver serves for
 * Accept: application/com.github.proto-openapi.spec.v2@v1.0+protobuf and
 * what kubectl 1.27 and 1.28 read for validation, explain and apply.
 *
 * The JSON document is mapped field by field, as gnostic reads Swagger:
 * - objects that are maps (paths, definitions, properties, responses,
 *   securityDefinitions ...) become repeated Named* pairs {name, value},
 *   in sorted key order, the order of the JSON text this server sends;
 * - an "x-" key of an object that allows extensions becomes a NamedAny in
 *   its vendor_extension field; that Any, like every default, example and
 *   enum value, carries the value as text in Any.yaml (JSON text, which is
 *   YAML: kube-openapi and kubectl read it with a YAML parser);
 * - a schema's "type" is a TypeItem (one name or a list), "items" an
 *   ItemsItem (one schema or a list), "additionalProperties" a schema or a
 *   boolean, "$ref" the field _ref;
 * - a parameter is a BodyParameter (in: body) or the NonBodyParameter
 *   sub-schema its "in" names; a parameter or response that is a $ref is a
 *   JsonReference; a security definition is the variant its type (and
 *   flow) names;
 * - proto3 default values (empty strings, 0, false) are left out, as Go's
 *   marshaller does, except where a oneof makes them meaningful.
 * A key Swagger 2.0 does not define, or a value of the wrong JSON type, is
 * an error: the document has two forms and neither may silently lose
 * what the other says.
 */
#ifndef LANGOP_OPENAPIPROTO_H
#define LANGOP_OPENAPIPROTO_H

#include <jansson.h>
#include "langop/core/common.h"

/** The media type kube-apiserver answers protobuf requests with (the one without '@'). */
#define OPENAPIPROTO_MEDIA_TYPE "application/com.github.proto-openapi.spec.v2.v1.0+protobuf"
/** The older spelling, which kubectl sends; '@' is not allowed in a media type token. */
#define OPENAPIPROTO_MEDIA_TYPE_AT "application/com.github.proto-openapi.spec.v2@v1.0+protobuf"

/**
 * Appends the openapi.v2.Document encoding of swagger (a Swagger 2.0
 * object, only read) to out, which the caller owns (free(out->data)).
 * Returns 0, or -1 with err (400 BadRequest, may be NULL) naming the JSON
 * path of the first thing the message cannot carry; out then holds a
 * partial encoding that the caller discards.
 */
int openapiproto_encode(const json_t *swagger, lo_buf_t *out, lo_err_t *err);

#endif
