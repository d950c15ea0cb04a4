/*
 * protowire.h - the protocol buffers wire format, writing side: varints,
 * tags, doubles, length-delimited bytes and nested messages, appended to a
 * caller's lo_buf_t. It knows no schema: the caller says which field number
 * each value goes to (langop/api/openapiproto.h maps a document onto one).
 *
 * The encoding (protobuf.dev "Encoding"): a field is a tag, the varint of
 * (number << 3 | wire type), then its payload. int64 and bool are varints,
 * a negative int64 as its two's complement in ten bytes; a double is eight
 * bytes, little-endian; strings, bytes and sub-messages are a length varint
 * and the bytes. Every call writes what it is given: leaving out proto3
 * default values (empty string, 0, false) is the caller's decision.
 *
 * Sub-messages: protowire_begin() returns a mark, the caller writes the
 * sub-message's fields, protowire_end() puts the tag and the length in front
 * of them (moving them up by the few bytes these take). Marks nest like
 * brackets. Field numbers are 1 .. 2^29-1; another one, or an end without
 * its begin, is a broken invariant (lo_fatal), as is running out of memory.
 */
#ifndef LANGOP_PROTOWIRE_H
#define LANGOP_PROTOWIRE_H

#include <stddef.h>
#include <stdint.h>
#include "langop/core/common.h"

typedef enum protowire_type {
    PROTOWIRE_VARINT = 0,
    PROTOWIRE_FIXED64 = 1,
    PROTOWIRE_BYTES = 2,   /* length-delimited: strings, bytes, sub-messages, packed repeats */
    PROTOWIRE_FIXED32 = 5,
} protowire_type_t;

/** The largest field number protobuf allows. */
#define PROTOWIRE_MAX_FIELD 536870911u

/** A bare varint (no tag): 7 bits a byte, low bits first, high bit = more follows. */
void protowire_varint(lo_buf_t *b, uint64_t v);

/** A tag: the varint of (field << 3 | type). */
void protowire_tag(lo_buf_t *b, uint32_t field, protowire_type_t type);

/** An int64 field (varint). */
void protowire_int64(lo_buf_t *b, uint32_t field, int64_t v);

/** A bool field: the varint 0 or 1. */
void protowire_bool(lo_buf_t *b, uint32_t field, int v);

/** A double field (fixed64, IEEE 754, little-endian). */
void protowire_double(lo_buf_t *b, uint32_t field, double v);

/** A bytes (or string) field of len bytes. */
void protowire_bytes(lo_buf_t *b, uint32_t field, const void *data, size_t len);

/** A string field: the bytes of s without its NUL. */
void protowire_string(lo_buf_t *b, uint32_t field, const char *s);

/** Starts a sub-message: returns the mark to give protowire_end(). */
size_t protowire_begin(const lo_buf_t *b);

/** Ends the sub-message begun at mark: everything written since becomes field `field`. */
void protowire_end(lo_buf_t *b, uint32_t field, size_t mark);

#endif
