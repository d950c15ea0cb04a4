/*
 * text.c - text from a request, made safe to send back (see langop/text.h).
 */
#include "langop/core/text.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The lowest module: common.c builds on it, so it allocates by itself, with common's policy (die on OOM). */
static void *text_alloc(size_t n)
{
    void *p = malloc(n);
    if (p == NULL) {
        fputs("fatal: out of memory (text)\n", stderr);
        abort();
    }
    return p;
}

static const char REPLACEMENT[] = "\xEF\xBF\xBD"; /* U+FFFD */
#define REPLACEMENT_LEN 3

size_t text_utf8_sequence(const unsigned char *s, size_t n)
{
    unsigned char c = s[0];
    if (c < 0x80)
        return 1;
    size_t len;
    unsigned char lo = 0x80, hi = 0xBF; /* bounds of the second byte */
    if (c >= 0xC2 && c <= 0xDF) {
        len = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
        len = 3;
        if (c == 0xE0)
            lo = 0xA0; /* overlong */
        else if (c == 0xED)
            hi = 0x9F; /* surrogates */
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4;
        if (c == 0xF0)
            lo = 0x90; /* overlong */
        else if (c == 0xF4)
            hi = 0x8F; /* above U+10FFFF */
    } else {
        return 0;
    }
    if (n < len || s[1] < lo || s[1] > hi)
        return 0;
    for (size_t i = 2; i < len; i++)
        if ((s[i] & 0xC0) != 0x80)
            return 0;
    return len;
}

/* 1 if none of the 8 bytes at p has its high bit set (ASCII: what request lines and log lines mostly are). */
static int ascii8(const unsigned char *p)
{
    uint64_t w;
    memcpy(&w, p, sizeof w);
    return (w & 0x8080808080808080ull) == 0;
}

int text_utf8_valid(const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s;
    for (size_t i = 0; i < n;) {
        if (n - i >= 8 && ascii8(p + i)) {
            i += 8;
            continue;
        }
        size_t len = text_utf8_sequence(p + i, n - i);
        if (len == 0)
            return 0;
        i += len;
    }
    return 1;
}

/*
 * Writes the repair of s[0..n) into out (cap bytes, room for the NUL),
 * whole characters only. Returns the bytes written, without the NUL.
 */
static size_t repair_into(const unsigned char *s, size_t n, char *out, size_t cap)
{
    size_t o = 0;
    for (size_t i = 0; i < n;) {
        size_t len = text_utf8_sequence(s + i, n - i);
        const char *piece = len ? (const char *)s + i : REPLACEMENT;
        size_t piece_len = len ? len : REPLACEMENT_LEN;
        if (o + piece_len + 1 > cap)
            break;
        memmove(out + o, piece, piece_len);
        o += piece_len;
        i += len ? len : 1;
    }
    out[o] = '\0';
    return o;
}

char *text_utf8_repair(const char *s, size_t n)
{
    size_t cap = n * REPLACEMENT_LEN + 1;
    char *out = text_alloc(cap);
    repair_into((const unsigned char *)s, n, out, cap);
    return out;
}

void text_utf8_repair_in_place(char *buf, size_t cap)
{
    if (cap == 0)
        return;
    size_t n = strnlen(buf, cap - 1);
    buf[n] = '\0';
    if (text_utf8_valid(buf, n))
        return;
    char *copy = text_alloc(n + 1); /* the repair may grow: write from a copy */
    memcpy(copy, buf, n + 1);
    repair_into((const unsigned char *)copy, n, buf, cap);
    free(copy);
}

/* Copies s, repaired, with control characters as spaces and, when quote, '"' and '\' escaped. */
static char *header_text(const char *s, int quote)
{
    size_t n = strlen(s), o = 0;
    char *valid = text_utf8_valid(s, n) ? NULL : text_utf8_repair(s, n); /* mostly valid: no copy */
    const char *in = valid ? valid : s;
    if (valid)
        n = strlen(valid);
    char *out = text_alloc(2 * n + 1);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)in[i];
        if ((c < 0x20 && c != '\t') || c == 0x7F)
            c = ' ';
        if (quote && (c == '"' || c == '\\'))
            out[o++] = '\\';
        out[o++] = (char)c;
    }
    out[o] = '\0';
    free(valid);
    return out;
}

char *text_header_value(const char *s)
{
    return header_text(s, 0);
}

char *text_header_quoted(const char *s)
{
    return header_text(s, 1);
}
