/*
 * protowire.c - the protocol buffers wire format, writing side (see
 * langop/core/protowire.h).
 *
 * A sub-message's length is known only once it is written, and its varint
 * takes one to ten bytes, so protowire_end() slides the finished body up to
 * make room for the tag and the length. Each byte moves once per enclosing
 * message: for documents of some hundred kilobytes written once at start-up
 * that is cheaper to read than a sizing pass over the whole tree.
 */
#include "langop/core/protowire.h"

#include <string.h>

#define VARINT_MAX 10   /* bytes of the longest varint (64 bits, 7 a byte) */

/* Writes v as a varint into out; returns the number of bytes. */
static size_t varint_encode(uint64_t v, unsigned char out[VARINT_MAX])
{
    size_t n = 0;
    while (v >= 0x80) {
        out[n++] = (unsigned char)(v | 0x80);
        v >>= 7;
    }
    out[n++] = (unsigned char)v;
    return n;
}

static uint64_t tag_of(uint32_t field, protowire_type_t type)
{
    if (field == 0 || field > PROTOWIRE_MAX_FIELD)
        lo_fatal("protowire: field number %u out of range", field);
    return ((uint64_t)field << 3) | (uint64_t)type;
}

void protowire_varint(lo_buf_t *b, uint64_t v)
{
    unsigned char bytes[VARINT_MAX];
    lo_buf_put(b, bytes, varint_encode(v, bytes));
}

void protowire_tag(lo_buf_t *b, uint32_t field, protowire_type_t type)
{
    protowire_varint(b, tag_of(field, type));
}

void protowire_int64(lo_buf_t *b, uint32_t field, int64_t v)
{
    protowire_tag(b, field, PROTOWIRE_VARINT);
    protowire_varint(b, (uint64_t)v);   /* two's complement: -1 is ten bytes, as protobuf says */
}

void protowire_bool(lo_buf_t *b, uint32_t field, int v)
{
    protowire_tag(b, field, PROTOWIRE_VARINT);
    protowire_varint(b, v ? 1 : 0);
}

void protowire_double(lo_buf_t *b, uint32_t field, double v)
{
    uint64_t bits;
    memcpy(&bits, &v, sizeof(bits));
    unsigned char bytes[8];
    for (int i = 0; i < 8; i++)
        bytes[i] = (unsigned char)(bits >> (8 * i));   /* little-endian whatever the host is */
    protowire_tag(b, field, PROTOWIRE_FIXED64);
    lo_buf_put(b, bytes, sizeof(bytes));
}

void protowire_bytes(lo_buf_t *b, uint32_t field, const void *data, size_t len)
{
    protowire_tag(b, field, PROTOWIRE_BYTES);
    protowire_varint(b, (uint64_t)len);
    if (len > 0)
        lo_buf_put(b, data, len);
}

void protowire_string(lo_buf_t *b, uint32_t field, const char *s)
{
    protowire_bytes(b, field, s, strlen(s));
}

size_t protowire_begin(const lo_buf_t *b)
{
    return b->len;
}

void protowire_end(lo_buf_t *b, uint32_t field, size_t mark)
{
    if (mark > b->len)
        lo_fatal("protowire: end of a sub-message that was not begun here (mark %zu, length %zu)", mark, b->len);
    size_t body = b->len - mark;
    unsigned char head[2 * VARINT_MAX];
    size_t n = varint_encode(tag_of(field, PROTOWIRE_BYTES), head);
    n += varint_encode((uint64_t)body, head + n);
    lo_buf_reserve(b, n);
    memmove(b->data + mark + n, b->data + mark, body);
    memcpy(b->data + mark, head, n);
    b->len += n;
    b->data[b->len] = '\0';   /* lo_buf_t stays NUL-terminated */
}
